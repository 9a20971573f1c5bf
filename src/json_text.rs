//! JSON text with a fixed key order. serde_json's maps are sorted; the strings Istio writes
//! into annotations and env vars (Go struct order, proto declaration order) are not, so
//! those are written with this small builder.

use serde_json::Value;

/// An object being written, fields in the order they are added.
#[derive(Default)]
pub struct Object {
    text: String,
    empty: bool,
}

impl Object {
    pub fn new() -> Self {
        Self::append_to(String::with_capacity(64))
    }

    /// An object written at the end of `text` (`finish` gives the whole text back), so that
    /// objects in a larger text need no buffer of their own.
    pub fn append_to(mut text: String) -> Self {
        text.push('{');
        Object { text, empty: true }
    }

    /// Adds a field whose value is already JSON text.
    pub fn raw(mut self, key: &str, json: &str) -> Self {
        self.key(key);
        self.text.push_str(json);
        self
    }

    /// Adds a field with a JSON value (nested maps in serde_json's sorted order).
    pub fn value(mut self, key: &str, value: &Value) -> Self {
        self.key(key);
        push_value(&mut self.text, value);
        self
    }

    /// Adds a string field.
    pub fn string(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        push_string(&mut self.text, value);
        self
    }

    /// Adds an integer field.
    pub fn number(mut self, key: &str, value: i64) -> Self {
        use std::fmt::Write;
        self.key(key);
        let _ = write!(self.text, "{value}");
        self
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.text.push(',');
        }
        self.empty = false;
        push_string(&mut self.text, key);
        self.text.push(':');
    }

    pub fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

/// How a field's value is written: `nested(key, value, out)` writes it itself and returns
/// true, or returns false to have it written as is.
pub type Nested<'a> = &'a dyn Fn(&str, &Value, &mut String) -> bool;

/// Nothing nested.
pub fn plain(_: &str, _: &Value, _: &mut String) -> bool {
    false
}

/// Writes `value`'s fields in `order`, then the remaining ones, skipping nulls and empty
/// lists (Go's omitempty); `nested` may write a field's value itself.
pub fn ordered(value: &Value, order: &[&str], nested: Nested) -> String {
    let mut out = String::with_capacity(64);
    write_ordered(&mut out, value, order, nested);
    out
}

/// `ordered`, written at the end of `out`.
pub fn write_ordered(out: &mut String, value: &Value, order: &[&str], nested: Nested) {
    let Value::Object(m) = value else {
        push_value(out, value);
        return;
    };
    let keep = |v: &Value| !v.is_null() && !v.as_array().is_some_and(Vec::is_empty);
    let known = order.iter().filter_map(|k| m.get_key_value(*k));
    let rest = m.iter().filter(|(k, _)| !order.contains(&k.as_str()));
    out.push('{');
    let mut first = true;
    for (k, v) in known.chain(rest) {
        if keep(v) {
            if !first {
                out.push(',');
            }
            first = false;
            push_string(out, k);
            out.push(':');
            if !nested(k, v, out) {
                push_value(out, v);
            }
        }
    }
    out.push('}');
}

/// A JSON array of already-written elements.
pub fn array(items: impl IntoIterator<Item = String>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

/// Writes a value exactly as serde_json's compact serializer does (maps in their sorted
/// order), straight into `out`.
pub fn push_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // A Number displays exactly as serde_json serializes it.
        Value::Number(n) => {
            use std::fmt::Write;
            let _ = write!(out, "{n}");
        }
        Value::String(s) => push_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_value(out, item);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(out, k);
                out.push(':');
                push_value(out, v);
            }
            out.push('}');
        }
    }
}

pub fn push_string(out: &mut String, s: &str) {
    if crate::json::needs_no_escape(s.as_bytes()) {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        let mut escaped = Vec::with_capacity(s.len() + 8);
        crate::json::write_str(&mut escaped, s);
        // Escaped from a str: UTF-8.
        out.push_str(&String::from_utf8_lossy(&escaped));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_in_the_given_order() {
        let text = Object::new().value("z", &json!(1)).raw("a", "[]").finish();
        assert_eq!(text, r#"{"z":1,"a":[]}"#);
        let v = json!({"b": 1, "a": 2, "c": null, "d": [], "e": "x"});
        assert_eq!(ordered(&v, &["b", "a"], &plain), r#"{"b":1,"a":2,"e":"x"}"#);
        assert_eq!(array(["1".to_string(), "2".to_string()]), "[1,2]");
        let text = Object::new().value("q\"\u{1}é", &json!("x")).finish();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"q\"\u{1}é": "x"})
        );
        let v =
            json!({"n": -1, "f": 0.5, "b": false, "z": null, "s": "a\"b", "l": [1, {"k": "v"}]});
        let text = ordered(&v, &[], &plain);
        assert_eq!(
            text,
            r#"{"b":false,"f":0.5,"l":[1,{"k":"v"}],"n":-1,"s":"a\"b"}"#
        );
        // Strings are escaped exactly as serde_json escapes them.
        let text = Object::new().string("s", "\u{7f}\n\u{1}é").finish();
        assert_eq!(text, json!({"s": "\u{7f}\n\u{1}é"}).to_string());
    }
}
