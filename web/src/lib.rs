//! The policy's engine for the browser (`wasm32-unknown-unknown`, wasm-bindgen): the same
//! decision, injection and check as the Kubewarden module, without the Kubewarden entry
//! points. `explain` answers as the cluster would, and says why; `validateSettings` answers
//! as the module's `validate_settings`.

mod example;
mod explain;
mod input;

use wasm_bindgen::prelude::*;

pub use example::example;
pub use explain::{explain, validate_settings};

/// `explain(pod, namespace, settings)`: see [`explain::explain`]. Never throws.
#[wasm_bindgen(js_name = explain)]
pub fn explain_js(pod: &str, namespace: &str, settings: &str) -> JsValue {
    to_js(&explain(pod, namespace, settings))
}

/// `validateSettings(settings)`: `{valid, message}`, as the module's `validate_settings`.
#[wasm_bindgen(js_name = validateSettings)]
pub fn validate_settings_js(settings: &str) -> JsValue {
    to_js(&validate_settings(settings))
}

/// `example()`: `{pod, namespace, settings}`, the YAML texts of `make run`'s example.
#[wasm_bindgen(js_name = example)]
pub fn example_js() -> JsValue {
    to_js(&example())
}

/// A plain JS object, through JSON (every value here is JSON).
fn to_js(value: &serde_json::Value) -> JsValue {
    js_sys::JSON::parse(&value.to_string()).unwrap_or(JsValue::NULL)
}
