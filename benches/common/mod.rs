//! Shared by the benchmarks (`benches/`), the robustness tests (`tests/hostile.rs`,
//! `tests/fuzz_corpus.rs`, `tests/proptest_injection.rs`) and the fuzz targets (`fuzz/`):
//! the example Pods of `tests/data/` and a native copy of the wasm `validate` entry point
//! (`src/lib.rs`: parse the payload, evaluate, serialize Kubewarden's ValidationResponse).
#![allow(dead_code)]

use istio_sidecar_injector::engine::{self, AdmissionRequest, GroupVersionKind, Verdict};
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

/// `AdmissionRequest` has no `Clone`; benches need fresh copies outside the timed part.
pub fn clone_request(r: &AdmissionRequest) -> AdmissionRequest {
    AdmissionRequest {
        uid: r.uid.clone(),
        kind: GroupVersionKind {
            group: r.kind.group.clone(),
            version: r.kind.version.clone(),
            kind: r.kind.kind.clone(),
        },
        operation: r.operation.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        object: r.object.clone(),
    }
}

/// A CREATE request of `pod` in `namespace`, as the API server sends it.
pub fn pod_request(pod: Value, namespace: &str) -> AdmissionRequest {
    AdmissionRequest {
        uid: "00000000-0000-4000-8000-000000000000".into(),
        kind: GroupVersionKind {
            group: String::new(),
            version: "v1".into(),
            kind: "Pod".into(),
        },
        operation: "CREATE".into(),
        namespace: namespace.into(),
        name: String::new(),
        object: pod,
    }
}

/// What `src/lib.rs`'s `validate` does with a payload, natively: parse, evaluate (the
/// Namespace lookup answers with `namespace_json`, deserialized as the SDK does with the
/// host's answer), and serialize the ValidationResponse. Returns the response bytes and the
/// verdict (None when the payload was rejected before evaluation).
pub fn validate(payload: &[u8], namespace_json: &[u8]) -> (Vec<u8>, Option<Verdict>) {
    let (reference, verdict) = validate_reference(payload, namespace_json);
    // The wasm entry point answers with `engine::validate`, which keeps the Pod's untouched
    // fields as text; it must answer exactly as the reference path does.
    let fast = engine::validate(payload, &mut engine::SettingsCache::default(), |_| {
        serde_json::from_slice::<Value>(namespace_json).map_err(|e| e.to_string())
    });
    let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).expect("response is JSON");
    assert_eq!(
        parse(&fast),
        parse(&reference),
        "engine::validate differs from parse_payload + evaluate"
    );
    (fast, verdict)
}

/// What the wasm `validate` entry runs (but with the system allocator, so with
/// `engine::validate`, which frees what it built): the settings cache kept across calls as
/// the module keeps it.
pub fn validate_entry(
    payload: &[u8],
    namespace_json: &[u8],
    cache: &mut engine::SettingsCache,
) -> Vec<u8> {
    engine::validate(payload, cache, |_| {
        serde_json::from_slice::<Value>(namespace_json).map_err(|e| e.to_string())
    })
}

/// The Pod `engine::validate` answers for a CREATE of `pod` in `namespace` with these
/// settings (JSON, as Kubewarden sends them), the Namespace lookup answering
/// `namespace_object`: what tests compare with `engine::evaluate`'s Pod.
pub fn validate_mutated(
    pod: &Value,
    namespace: &str,
    settings: &Value,
    namespace_object: Value,
) -> Value {
    let payload = json!({
        "request": {"uid": "test", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "operation": "CREATE", "namespace": namespace, "object": pod},
        "settings": settings,
    });
    let response = engine::validate(
        payload.to_string().as_bytes(),
        &mut engine::SettingsCache::default(),
        |_| Ok(namespace_object),
    );
    let mut response: Value = serde_json::from_slice(&response).expect("response JSON");
    response["mutated_object"].take()
}

/// The reference path: `parse_payload` + `evaluate` + the SDK's response serialized.
pub fn validate_reference(payload: &[u8], namespace_json: &[u8]) -> (Vec<u8>, Option<Verdict>) {
    let (request, settings) = match engine::parse_payload(payload) {
        Ok(parsed) => parsed,
        Err(message) => {
            // kubewarden::reject_request(Some(message), Some(400), None, None)
            let response = ValidationResponse {
                accepted: false,
                message: Some(message),
                code: Some(400),
                mutated_object: None,
                audit_annotations: None,
                warnings: None,
            };
            return (serde_json::to_vec(&response).expect("serializable"), None);
        }
    };
    let verdict = engine::evaluate(request, &settings, |_| {
        serde_json::from_slice::<Value>(namespace_json).map_err(|e| e.to_string())
    });
    let response = ValidationResponse {
        accepted: verdict.accepted(),
        message: verdict.message.clone(),
        code: verdict.code,
        audit_annotations: Some(verdict.audit_annotations().into_iter().collect()),
        warnings: (!verdict.warnings.is_empty()).then(|| verdict.warnings.clone()),
        mutated_object: verdict.mutated.clone(),
    };
    (
        serde_json::to_vec(&response).expect("serializable"),
        Some(verdict),
    )
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
