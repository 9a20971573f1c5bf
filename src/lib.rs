//! Kubewarden entry points of the Istio sidecar injector policy. Everything else is a plain
//! engine (`engine`, `decision`, `inject`, `template`, `settings`) that never calls the host:
//! the only host call, the Namespace lookup, is made here and handed to the engine.

pub mod annotations;
pub mod call_arena;
pub mod check;
pub mod decision;
pub mod engine;
pub mod go_json;
pub mod inject;
pub mod json_text;
pub mod merge;
pub mod pod;
pub mod pod_text;
pub mod prerender;
pub mod probes;
pub mod prometheus;
pub mod proxy_config;
pub mod quantity;
pub mod response;
pub mod selector;
pub mod settings;
pub mod template;

// The Kubewarden entry points and the per-call allocator exist only in the policy module
// (WASI); the browser build of the engine (`web/`) has neither.
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod entry {
    use guest::prelude::*;
    use kubewarden_policy_sdk::wapc_guest as guest;

    extern crate kubewarden_policy_sdk as kubewarden;
    use kubewarden::host_capabilities::kubernetes::{GetResourceRequest, get_resource};
    use kubewarden::protocol_version_guest;
    use kubewarden::settings::SettingsValidationResponse;
    use std::cell::RefCell;

    use crate::call_arena::CallArena;
    use crate::engine;
    use crate::settings::Settings;

    #[unsafe(no_mangle)]
    pub extern "C" fn wapc_init() {
        register_function("validate", validate);
        register_function("validate_settings", validate_settings);
        register_function("protocol_version", protocol_version_guest);
    }

    #[global_allocator]
    static ALLOCATOR: CallArena = CallArena::new();

    thread_local! {
        /// The policy's settings, parsed on the first request (they never change).
        static SETTINGS: RefCell<engine::SettingsCache> = RefCell::default();
    }

    fn validate(payload: &[u8]) -> CallResult {
        Ok(SETTINGS.with_borrow_mut(|cache| {
            let fills = cache.fills();
            let response = ALLOCATOR.run(|| {
                engine::validate_in_arena(payload, cache, lookup_namespace, || {
                    !ALLOCATOR.overflowed()
                })
            });
            if cache.fills() != fills {
                // Filled inside the call's arena, which the next call reuses: parse the
                // settings again into memory that lasts.
                cache.refresh();
            }
            response
        }))
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
