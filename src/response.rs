//! Kubewarden's `ValidationResponse` as JSON text, with the mutated Pod written by
//! `pod_text` (its untouched fields copied through as text). Same fields, order and nulls
//! as the SDK's `ValidationResponse` serialized by serde.

use crate::engine::Verdict;
use crate::pod_text::{self, Lost, Rest};

/// The answer to a payload that cannot be read: rejected with HTTP 400, like the SDK's
/// `reject_request(Some(message), Some(400), None, None)`.
pub fn malformed(message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 112);
    out.extend_from_slice(b"{\"accepted\":false,\"message\":");
    pod_text::write_str(&mut out, message);
    out.extend_from_slice(
        b",\"code\":400,\"mutated_object\":null,\"audit_annotations\":null,\"warnings\":null}",
    );
    out
}

/// The verdict's response; `Err(Lost)` when the Pod's text fields found no place in it.
pub fn write(out: &mut Vec<u8>, verdict: &Verdict, rest: &Rest<'_>) -> Result<(), Lost> {
    out.extend_from_slice(b"{\"accepted\":");
    out.extend_from_slice(if verdict.accepted() {
        b"true"
    } else {
        b"false"
    });
    out.extend_from_slice(b",\"message\":");
    match &verdict.message {
        Some(m) => pod_text::write_str(out, m),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"code\":");
    match verdict.code {
        Some(code) => out.extend_from_slice(code.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"mutated_object\":");
    match &verdict.mutated {
        Some(pod) => pod_text::write_pod(out, pod, rest, &verdict.prerendered)?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"audit_annotations\":{");
    for (i, (key, value)) in verdict.audit_annotations().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        pod_text::write_str(out, key);
        out.push(b':');
        pod_text::write_str(out, value);
    }
    out.extend_from_slice(b"},\"warnings\":");
    if verdict.warnings.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        out.push(b'[');
        for (i, w) in verdict.warnings.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            pod_text::write_str(out, w);
        }
        out.push(b']');
    }
    out.push(b'}');
    Ok(())
}
