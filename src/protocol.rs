//! Kubewarden's `validate` call on the wire: the payload `{"request": AdmissionRequest,
//! "settings": ...}` in, a `ValidationResponse` out, both JSON. The only module that reads or
//! writes the wire format; the engine sees the parsed request and settings.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::engine::{self, AdmissionRequest, Verdict};
use crate::json::{self, write_str};
use crate::settings::Settings;

/// The `validate` payload. The Pod's strings borrow from it; the settings are parsed from
/// their text.
#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(default, borrow)]
    request: Option<AdmissionRequest<'a>>,
    #[serde(default, borrow)]
    settings: Option<&'a RawValue>,
}

/// The whole `validate` call: payload bytes in, `ValidationResponse` JSON out.
pub fn validate(
    payload: &[u8],
    lookup_namespace: impl FnOnce(&str) -> Result<serde_json::Value, String>,
) -> Vec<u8> {
    answer(payload, lookup_namespace, |_| {}, Disposal::Drop)
}

/// [`validate`], handing the verdict the response is written from to `see` (tests look at
/// it); not called when the request cannot be read.
pub fn validate_seeing(
    payload: &[u8],
    lookup_namespace: impl FnOnce(&str) -> Result<serde_json::Value, String>,
    see: impl FnOnce(&Verdict),
) -> Vec<u8> {
    answer(payload, lookup_namespace, see, Disposal::Drop)
}

/// What becomes of the request, the settings and the verdict once the answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposal {
    /// Freed, as usual.
    Drop,
    /// Left where they are, for an instance about to be discarded: policy-server builds a
    /// fresh instance for every request and drops it after the call, memory and all, so
    /// freeing a few thousand allocations one by one first is pure cost (3 to 6% of a
    /// fresh request, measured with `kwbench --compare`).
    Leave,
}

/// [`validate`], with the request, settings and verdict disposed of as `disposal` says.
pub fn validate_disposing(
    payload: &[u8],
    lookup_namespace: impl FnOnce(&str) -> Result<serde_json::Value, String>,
    disposal: Disposal,
) -> Vec<u8> {
    answer(payload, lookup_namespace, |_| {}, disposal)
}

fn answer(
    payload: &[u8],
    lookup_namespace: impl FnOnce(&str) -> Result<serde_json::Value, String>,
    see: impl FnOnce(&Verdict),
    disposal: Disposal,
) -> Vec<u8> {
    match parse(payload) {
        Ok((request, settings)) => {
            let verdict = engine::evaluate(request, &settings, lookup_namespace);
            let out = match json::take_unreadable() {
                None => {
                    see(&verdict);
                    response(&verdict, payload.len())
                }
                Some(why) => malformed(&format!("malformed validate request: {why}")),
            };
            if disposal == Disposal::Leave {
                std::mem::forget(verdict);
                std::mem::forget(settings);
            }
            out
        }
        Err(message) => malformed(&message),
    }
}

/// The request and the settings of a payload, or what is wrong with it.
pub fn parse(payload: &[u8]) -> Result<(AdmissionRequest<'_>, Settings), String> {
    // Forget what an earlier call could not read (the module may be called again).
    json::take_unreadable();
    let malformed = |e: &dyn std::fmt::Display| format!("malformed validate request: {e}");
    // UTF-8 checked once, not string by string.
    let text = std::str::from_utf8(payload).map_err(|e| malformed(&e))?;
    let p: Payload = serde_json::from_str(text).map_err(|e| malformed(&e))?;
    let request = p
        .request
        .ok_or_else(|| "malformed validate request: no \"request\"".to_string())?;
    let settings = match p.settings {
        None => Settings::default(),
        Some(raw) => Settings::from_slice(raw.get().as_bytes())
            .map_err(|e| format!("invalid settings: {e}"))?,
    };
    Ok((request, settings))
}

/// The verdict as Kubewarden's `ValidationResponse`: the SDK's fields in the SDK's order,
/// as serde writes them, with the injected Pod written from the engine's JSON (what it did
/// not read is copied as it came). `size_hint` is the request's size: the Pod is written
/// back whole.
pub fn response(verdict: &Verdict, size_hint: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_hint + size_hint / 2 + 16384);
    out.extend_from_slice(b"{\"accepted\":");
    out.extend_from_slice(if verdict.accepted() {
        b"true"
    } else {
        b"false"
    });
    out.extend_from_slice(b",\"message\":");
    match &verdict.message {
        Some(m) => write_str(&mut out, m),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"code\":");
    match verdict.code {
        Some(code) => out.extend_from_slice(code.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"mutated_object\":");
    match &verdict.mutated {
        Some(pod) => pod.write(&mut out),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"audit_annotations\":");
    // Writing strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, &verdict.audit_annotations());
    out.extend_from_slice(b",\"warnings\":");
    let warnings = (!verdict.warnings.is_empty()).then_some(&verdict.warnings);
    let _ = serde_json::to_writer(&mut out, &warnings);
    out.push(b'}');
    out
}

/// The answer to a payload that cannot be read: rejected with HTTP 400, as the SDK's
/// `reject_request(Some(message), Some(400), None, None)`.
pub fn malformed(message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 128);
    out.extend_from_slice(b"{\"accepted\":false,\"message\":");
    write_str(&mut out, message);
    out.extend_from_slice(
        b",\"code\":400,\"mutated_object\":null,\"audit_annotations\":null,\"warnings\":null}",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(payload: &str) -> serde_json::Value {
        serde_json::from_slice(&validate(payload.as_bytes(), |_| {
            Err("no cluster".to_string())
        }))
        .unwrap()
    }

    #[test]
    fn leaving_the_request_in_memory_gives_the_same_answer() {
        let pod = std::fs::read_to_string("tests/data/pod-3-containers.json").unwrap();
        let request: serde_json::Value = serde_json::from_str(&pod).unwrap();
        let request = request.get("request").cloned().unwrap_or(request);
        for settings in [
            r#"{"namespaceSelection":"webhook"}"#,
            r#"{"policy":"wrong"}"#,
        ] {
            let payload = format!(r#"{{"request":{request},"settings":{settings}}}"#);
            let lookup = |_: &str| Err("no cluster".to_string());
            let dropped = validate_disposing(payload.as_bytes(), lookup, Disposal::Drop);
            let left = validate_disposing(payload.as_bytes(), lookup, Disposal::Leave);
            assert_eq!(String::from_utf8(left), String::from_utf8(dropped));
        }
    }

    #[test]
    fn a_malformed_payload_is_rejected_with_400_and_says_why() {
        for (payload, says) in [
            ("{", "malformed validate request"),
            ("{}", "no \"request\""),
            (
                r#"{"request": {}, "settings": {"policy": 3}}"#,
                "invalid settings: policy",
            ),
        ] {
            let a = answer(payload);
            assert_eq!(a["accepted"], false, "{payload}");
            assert_eq!(a["code"], 400, "{payload}");
            assert!(
                a["message"].as_str().unwrap().contains(says),
                "{payload}: {a}"
            );
            assert_eq!(a["audit_annotations"], serde_json::Value::Null);
        }
    }

    #[test]
    fn the_response_has_the_sdk_fields_in_order() {
        let a = String::from_utf8(validate(
            br#"{"request": {"operation": "DELETE", "kind": {"kind": "Pod"}}}"#,
            |_| unreachable!("not looked up"),
        ))
        .unwrap();
        assert!(
            a.starts_with(r#"{"accepted":true,"message":null,"code":null,"mutated_object":null,"audit_annotations":{"outcome":"not-selected""#),
            "{a}"
        );
        assert!(a.ends_with(r#","warnings":null}"#), "{a}");
    }

    #[test]
    fn an_injected_pod_keeps_the_fields_it_does_not_know() {
        let a = answer(
            r#"{"settings": {"namespaceSelection": "webhook"}, "request": {"uid": "u", "operation": "CREATE",
                "kind": {"kind": "Pod", "version": "v1"}, "namespace": "shop",
                "object": {"metadata": {"name": "p", "x-unknown": {"deep": [1, "é\"\u0001"]}},
                           "spec": {"containers": [{"name": "app", "image": "a", "futureField": true}]}}}}"#,
        );
        assert_eq!(a["audit_annotations"]["outcome"], "injected", "{a}");
        let pod = &a["mutated_object"];
        assert_eq!(pod["metadata"]["x-unknown"]["deep"][1], "é\"\u{1}");
        assert_eq!(pod["spec"]["containers"][0]["futureField"], true);
        assert_eq!(pod["spec"]["containers"][1]["name"], "istio-proxy");
    }
}
