//! Parses the `validate` payload exactly as the policy does (request and settings as JSON)
//! and answers with the Pod unchanged: no decision, no rendering.

use guest::prelude::*;
use kubewarden_policy_sdk::wapc_guest as guest;

extern crate kubewarden_policy_sdk as kubewarden;
use kubewarden::settings::SettingsValidationResponse;
use kubewarden::{mutate_request, protocol_version_guest};

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

#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function("validate", validate);
    register_function("validate_settings", validate_settings);
    register_function("protocol_version", protocol_version_guest);
}

fn validate(payload: &[u8]) -> CallResult {
    let payload: Payload = serde_json::from_slice(payload)?;
    mutate_request(payload.request.object)
}

fn validate_settings(_payload: &[u8]) -> CallResult {
    Ok(serde_json::to_vec(&SettingsValidationResponse {
        valid: true,
        message: None,
    })?)
}
