//! Parses the `validate` payload exactly as the policy does (request and settings as JSON)
//! and answers with the Pod unchanged: no decision, no rendering.

use guest::prelude::*;
use kubewarden_policy_sdk::mutate_request;
use kubewarden_policy_sdk::wapc_guest as guest;

include!("../../bench-guest.rs");

#[derive(serde::Deserialize)]
struct Payload {
    request: Request,
    #[serde(default)]
    #[allow(dead_code)]
    settings: serde_json::Value,
}

#[derive(serde::Deserialize)]
struct Request {
    #[serde(default)]
    object: serde_json::Value,
}

fn validate(payload: &[u8]) -> CallResult {
    let payload: Payload = serde_json::from_slice(payload)?;
    mutate_request(payload.request.object)
}
