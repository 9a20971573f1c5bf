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

/// `explain(pod, namespace, settings)`: see [`explain::explain`]. Each argument is YAML or
/// JSON text; a JS object is taken as its JSON, `null` and `undefined` as `""`. Never throws.
#[wasm_bindgen(js_name = explain)]
pub fn explain_js(pod: JsValue, namespace: JsValue, settings: JsValue) -> JsValue {
    let answer = match (
        text("pod", &pod),
        text("namespace", &namespace),
        text("settings", &settings),
    ) {
        (Ok(pod), Ok(namespace), Ok(settings)) => explain(&pod, &namespace, &settings),
        (Err(invalid), _, _) | (_, Err(invalid), _) | (_, _, Err(invalid)) => invalid,
    };
    to_js(&answer)
}

/// `validateSettings(settings)`: `{valid, message}`, as the module's `validate_settings`.
/// Takes text, a JS object (as its JSON), `null` or `undefined` (the defaults).
#[wasm_bindgen(js_name = validateSettings)]
pub fn validate_settings_js(settings: JsValue) -> JsValue {
    let answer = match text("settings", &settings) {
        Ok(settings) => validate_settings(&settings),
        Err(_) => {
            serde_json::json!({"valid": false, "message": "settings: cannot be written as JSON"})
        }
    };
    to_js(&answer)
}

/// An argument as text: a string as it is, `null`/`undefined` as nothing, anything else as
/// its JSON. What cannot be written as JSON (a cycle, a BigInt) is an `invalid` answer:
/// wasm-bindgen's own `&str` arguments would throw on anything but a string.
fn text(input: &'static str, value: &JsValue) -> Result<String, serde_json::Value> {
    if let Some(text) = value.as_string() {
        return Ok(text);
    }
    if value.is_null() || value.is_undefined() {
        return Ok(String::new());
    }
    js_sys::JSON::stringify(value)
        .ok()
        .and_then(|json| json.as_string())
        .ok_or_else(|| explain::unreadable(input, "cannot be written as JSON".to_string()))
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
