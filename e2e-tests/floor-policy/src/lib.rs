//! Reads the `validate` payload as every Kubewarden Rust policy reads it (the SDK's
//! `ValidationRequest`: the AdmissionRequest with its object as JSON) and answers with the
//! policy's answer for that request, precomputed by the engine at build time: the cost of
//! getting the request in and the very same answer out, and nothing else.

use guest::prelude::*;
use kubewarden_policy_sdk::reject_request;
use kubewarden_policy_sdk::request::ValidationRequest;
use kubewarden_policy_sdk::wapc_guest as guest;

include!("../../bench-guest.rs");
include!(concat!(env!("OUT_DIR"), "/answers.rs"));

fn validate(payload: &[u8]) -> CallResult {
    let request = ValidationRequest::<serde_json::Value>::new(payload)?;
    let uid = request.request.uid.as_str();
    match ANSWERS.iter().find(|(u, _)| *u == uid) {
        Some((_, answer)) => Ok(answer.to_vec()),
        None => reject_request(
            Some("floor-policy: not a benchmark request".to_string()),
            Some(400),
            None,
            None,
        ),
    }
}
