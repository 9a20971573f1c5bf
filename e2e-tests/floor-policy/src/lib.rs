//! Reads the `validate` payload as every Kubewarden Rust policy reads it (the SDK's
//! `ValidationRequest`: the AdmissionRequest with its object as JSON) and answers with the
//! policy's answer for that request, precomputed by the engine at build time: the cost of
//! getting the request in and the very same answer out, and nothing else.

use guest::prelude::*;
use kubewarden_policy_sdk::wapc_guest as guest;

extern crate kubewarden_policy_sdk as kubewarden;
use kubewarden::settings::SettingsValidationResponse;
use kubewarden::request::ValidationRequest;
use kubewarden::{protocol_version_guest, reject_request};

include!(concat!(env!("OUT_DIR"), "/answers.rs"));

#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function("validate", validate);
    register_function("validate_settings", validate_settings);
    register_function("protocol_version", protocol_version_guest);
}

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

fn validate_settings(_payload: &[u8]) -> CallResult {
    Ok(serde_json::to_vec(&SettingsValidationResponse {
        valid: true,
        message: None,
    })?)
}
