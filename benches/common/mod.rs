//! Shared by the benchmarks (`benches/`), the robustness tests (`tests/hostile.rs`,
//! `tests/fuzz_corpus.rs`, `tests/proptest_injection.rs`), the golden and check tests and the
//! fuzz targets (`fuzz/`): the example Pods of `tests/data/`, and the policy's `validate`
//! natively, exactly as the wasm entry point runs it (`protocol::validate`: parse the
//! payload, evaluate, write Kubewarden's ValidationResponse).
#![allow(dead_code)]

use istio_sidecar_injector::engine::{self, Verdict};
use istio_sidecar_injector::protocol;
use istio_sidecar_injector::settings::Settings;
use kubewarden_policy_sdk::response::ValidationResponse;
use serde_json::{Value, json};

/// An example AdmissionRequest from `tests/data/`.
pub struct Example {
    /// `1-container`, `3-containers`, `20-containers`.
    pub name: &'static str,
    pub containers: usize,
    /// The AdmissionRequest as JSON.
    pub request: Value,
    /// The `validate` payload: `{"request": ..., "settings": {}}`, as the host sends it.
    pub payload: Vec<u8>,
}

const POD_1: &str = include_str!("../../tests/data/pod-1-containers.json");
const POD_3: &str = include_str!("../../tests/data/pod-3-containers.json");
const POD_20: &str = include_str!("../../tests/data/pod-20-containers.json");
/// The Namespace the example Pods live in (`istio-injection=enabled`).
pub const NAMESPACE: &str = include_str!("../../tests/data/namespace-shop.json");

pub fn examples() -> Vec<Example> {
    [
        ("1-container", 1, POD_1),
        ("3-containers", 3, POD_3),
        ("20-containers", 20, POD_20),
    ]
    .into_iter()
    .map(|(name, containers, text)| {
        let request: Value = serde_json::from_str(text).expect("example request is JSON");
        let payload = payload(&request, &json!({}));
        Example {
            name,
            containers,
            request,
            payload,
        }
    })
    .collect()
}

/// The `validate` payload for a request and settings.
pub fn payload(request: &Value, settings: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"request": request, "settings": settings})).expect("serializable")
}

pub fn namespace() -> Value {
    serde_json::from_str(NAMESPACE).expect("namespace fixture is JSON")
}

/// A CREATE request of `pod` in `namespace`, as the API server sends it.
pub fn pod_request(pod: Value, namespace: &str) -> Value {
    json!({
        "uid": "00000000-0000-4000-8000-000000000000",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "operation": "CREATE",
        "namespace": namespace,
        "object": pod,
    })
}

/// The Namespace lookup answering `namespace_json`, deserialized as the SDK deserializes
/// the host's answer.
fn lookup(namespace_json: &[u8]) -> impl FnOnce(&str) -> Result<Value, String> + '_ {
    |_| serde_json::from_slice::<Value>(namespace_json).map_err(|e| e.to_string())
}

/// What the wasm module's `validate` answers for a payload (`protocol::validate`'s steps),
/// the Namespace lookup answering `namespace_json`: the response bytes, and the verdict
/// they were written from (None when the payload was rejected before evaluation).
pub fn validate(payload: &[u8], namespace_json: &[u8]) -> (Vec<u8>, Option<Verdict<'static>>) {
    let mut seen = None;
    let response = protocol::validate_seeing(payload, lookup(namespace_json), |verdict| {
        seen = Some(verdict.clone().into_owned());
    });
    (response, seen)
}

/// The response of the wasm module's `validate` (`protocol::validate`) to a payload.
pub fn validate_entry(payload: &[u8], namespace_json: &[u8]) -> Vec<u8> {
    protocol::validate(payload, lookup(namespace_json))
}

/// The Pod `validate` answers for a CREATE of `pod` in `namespace` with these settings (JSON,
/// as Kubewarden sends them), the Namespace lookup answering `namespace_object`.
pub fn validate_mutated(
    pod: &Value,
    namespace: &str,
    settings: &Value,
    namespace_object: Value,
) -> Value {
    let payload = payload(&pod_request(pod.clone(), namespace), settings);
    let response = protocol::validate(&payload, |_| Ok(namespace_object));
    let mut response: Value = serde_json::from_slice(&response).expect("response JSON");
    response["mutated_object"].take()
}

/// The verdict on a CREATE of `pod` in `namespace`, the lookup answering `namespace_object`.
pub fn evaluate(
    pod: &Value,
    namespace: &str,
    settings: &Settings,
    namespace_object: Value,
) -> Verdict<'static> {
    engine::evaluate_value(&pod_request(pod.clone(), namespace), settings, |_| {
        Ok(namespace_object)
    })
    .expect("a CREATE request")
}

/// The injected Pod of a verdict, as serde_json's value (Null when not injected).
pub fn mutated(verdict: &Verdict) -> Value {
    verdict
        .mutated
        .as_ref()
        .map_or(Value::Null, |pod| pod.to_serde())
}

/// The response as JSON. The host only ever sends payloads serde_json reads (it builds
/// them with serde_json); what the policy does not read is copied through as it came, so
/// the response is JSON serde_json reads whenever the payload is. For a payload it does not
/// read (nesting past its limit, a lone surrogate escape) the response is `None` when it
/// carries that text through: still an answer, never a panic.
pub fn response_json(payload: &[u8], response: &[u8]) -> Option<Value> {
    match serde_json::from_slice::<Value>(response) {
        Ok(response) => Some(response),
        Err(e) => {
            assert!(
                serde_json::from_slice::<Value>(payload).is_err(),
                "the response to a payload serde_json reads is not JSON: {e}"
            );
            None
        }
    }
}

/// The baseline of issue 5: parse the same payload and answer with the Pod unchanged (the
/// unavoidable cost of getting the Pod in and out).
pub fn baseline(payload: &[u8]) -> Vec<u8> {
    #[derive(serde::Deserialize)]
    struct Payload {
        request: BaselineRequest,
    }
    #[derive(serde::Deserialize)]
    struct BaselineRequest {
        object: Value,
    }
    let p: Payload = serde_json::from_slice(payload).expect("baseline payload");
    let response = ValidationResponse {
        accepted: true,
        message: None,
        code: None,
        mutated_object: Some(p.request.object),
        audit_annotations: None,
        warnings: None,
    };
    serde_json::to_vec(&response).expect("serializable")
}
