//! Kubewarden entry points of the Istio sidecar injector policy. Everything else is a plain
//! engine (`engine`, `decision`, `inject`, `template`, `settings`) that never calls the host:
//! the only host call, the Namespace lookup, is made here and handed to the engine.

pub mod annotations;
pub mod check;
pub mod decision;
pub mod engine;
pub mod go_json;
pub mod inject;
pub mod injection_status;
pub mod json;
pub mod json_text;
pub mod merge;
pub mod order;
pub mod pod;
pub mod probes;
pub mod prometheus;
pub mod protocol;
pub mod proxy_config;
pub mod quantity;
pub mod selector;
pub mod settings;
pub mod template;

// The Kubewarden entry points exist only in the policy module (WASI); the browser build of
// the engine (`web/`) has none.
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod entry {
    use guest::prelude::*;
    use kubewarden_policy_sdk::wapc_guest as guest;

    extern crate kubewarden_policy_sdk as kubewarden;
    use kubewarden::host_capabilities::kubernetes::{GetResourceRequest, get_resource};
    use kubewarden::protocol_version_guest;
    use kubewarden::settings::SettingsValidationResponse;

    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::protocol::{self, Disposal};
    use crate::settings::Settings;

    #[unsafe(no_mangle)]
    pub extern "C" fn wapc_init() {
        register_function("validate", validate);
        register_function("validate_settings", validate_settings);
        register_function("protocol_version", protocol_version_guest);
    }

    /// Whether this instance has answered a `validate` call already.
    static VALIDATED: AtomicBool = AtomicBool::new(false);

    /// One AdmissionReview. policy-server runs each in a fresh instance, so nothing is kept
    /// from one call to the next: the settings come with every payload. What the first
    /// call read and built is left in memory, which goes with the instance; an instance
    /// that is called again (kwctl bench) frees from its second call on, so at most one
    /// request's memory is ever left.
    fn validate(payload: &[u8]) -> CallResult {
        let disposal = if VALIDATED.swap(true, Ordering::Relaxed) {
            Disposal::Drop
        } else {
            Disposal::Leave
        };
        Ok(protocol::validate_disposing(
            payload,
            lookup_namespace,
            disposal,
        ))
    }

    fn lookup_namespace(name: &str) -> Result<serde_json::Value, String> {
        let request = GetResourceRequest {
            api_version: "v1".to_string(),
            kind: "Namespace".to_string(),
            name: name.to_string(),
            namespace: None,
            disable_cache: false,
            field_masks: None,
        };
        get_resource::<serde_json::Value>(&request).map_err(|e| e.to_string())
    }

    /// Settings are checked here rather than with the SDK's helper so that type errors name
    /// the field (`values.global.proxy.statusPort: invalid type ...`) instead of failing the call.
    fn validate_settings(payload: &[u8]) -> CallResult {
        let result = Settings::from_slice(payload).and_then(|s| s.validate());
        let response = SettingsValidationResponse {
            valid: result.is_ok(),
            message: result.err(),
        };
        Ok(serde_json::to_vec(&response)?)
    }
}
