//! `sidecar.istio.io/status` as Istio reads it back. It reads it twice, two ways.
//!
//! [`SidecarInjectionStatus::parse`] is `injectionStatus`: Go's `json.Unmarshal` into its
//! `SidecarInjectionStatus`, which decides whether a Pod counts as injected before and what a
//! re-injection strips (and, in check mode, whether the Pod carries a readable mark). Go's
//! rules differ from a plain JSON reading in three ways that a hand-edited or forged
//! annotation can meet:
//! - keys match the fields case-insensitively (`Containers` is `containers`);
//! - `null` is an empty status, not an error;
//! - a field of the wrong type makes the whole annotation unreadable: Istio then sees no
//!   previous injection at all.
//!
//! [`SidecarInjectionStatus::parse_status`] is `parseStatus`, which what comes after the
//! stripping uses (`reapplyOverwrittenContainers`): a map read by exact keys.

use crate::go_json;
use crate::json::Value;

/// The names a previous injection recorded (Istio's `SidecarInjectionStatus`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SidecarInjectionStatus {
    pub init_containers: Vec<String>,
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
    pub image_pull_secrets: Vec<String>,
    /// `None` when absent or `null` (Go reads both as "").
    pub revision: Option<String>,
}

const REVISION: &str = "revision";

impl SidecarInjectionStatus {
    /// The annotation's value read as Go reads it, or why Go refuses it (naming the key as
    /// written). Keys are taken in their order, so a later key for the same field wins, as
    /// in Go (a key repeated exactly counts where it first appears, with its last value);
    /// other keys are ignored.
    pub fn parse(text: &str) -> Result<SidecarInjectionStatus, String> {
        let text = go_json::lenient(text);
        let value = Value::parse(&text).map_err(|e| e.to_string())?;
        let mut status = SidecarInjectionStatus::default();
        let fields = match &value {
            Value::Null => return Ok(status),
            Value::Object(fields) => fields,
            _ => return Err("must be a JSON object".to_string()),
        };
        for (key, value) in fields.iter() {
            if go_field_match(key, REVISION) {
                match value {
                    // Go leaves a string untouched by `null`.
                    Value::Null => {}
                    Value::String(s) => status.revision = Some(s.to_string()),
                    other => return Err(format!("{key} must be a string, not {}", kind(other))),
                }
            } else if let Some(list) = status.list_for(key) {
                *list = names(key, value, Nulls::Empty)?;
            }
        }
        Ok(status)
    }

    /// The container names as Istio's `parseStatus` reads them for everything after the
    /// stripping (`reapplyOverwrittenContainers`): a JSON object's `containers` and
    /// `initContainers`, by their exact keys; `Ok(None)` when the text is not a JSON object
    /// (Go logs it and reads no names). Go takes each value for a list of strings without
    /// checking: anything else panics in Istio's webhook and fails the request, which is
    /// the `Err` here, naming the value.
    pub fn parse_status(text: &str) -> Result<Option<SidecarInjectionStatus>, String> {
        let text = go_json::lenient(text);
        let Ok(Value::Object(fields)) = Value::parse(&text) else {
            return Ok(None);
        };
        let names = |key: &str| match fields.get(key) {
            Some(value) => names(key, value, Nulls::Refused),
            None => Ok(Vec::new()),
        };
        Ok(Some(SidecarInjectionStatus {
            containers: names("containers")?,
            init_containers: names("initContainers")?,
            ..SidecarInjectionStatus::default()
        }))
    }

    /// The list field Go reads `key` into, if any.
    fn list_for(&mut self, key: &str) -> Option<&mut Vec<String>> {
        [
            ("initContainers", &mut self.init_containers),
            ("containers", &mut self.containers),
            ("volumes", &mut self.volumes),
            ("imagePullSecrets", &mut self.image_pull_secrets),
        ]
        .into_iter()
        .find(|(name, _)| go_field_match(key, name))
        .map(|(_, list)| list)
    }

    /// Whether the previous injection added istio-proxy (as a container or a native one).
    pub fn injected_proxy(&self) -> bool {
        self.containers
            .iter()
            .chain(&self.init_containers)
            .any(|n| n == crate::inject::PROXY)
    }

    /// Whether the previous injection added istio-proxy both as a native sidecar and as a
    /// container (a template chained after the sidecar, as Istio's `spire`).
    pub fn proxy_in_both_lists(&self) -> bool {
        self.containers.iter().any(|n| n == crate::inject::PROXY)
            && self
                .init_containers
                .iter()
                .any(|n| n == crate::inject::PROXY)
    }
}

/// What a `null` name is: "" to Go's struct reading, a panic to `parseStatus`.
#[derive(Clone, Copy, PartialEq)]
enum Nulls {
    Empty,
    Refused,
}

/// A `[]string` as Go reads it: `null` is an empty list.
fn names(key: &str, value: &Value, nulls: Nulls) -> Result<Vec<String>, String> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(format!(
                "{key} must be a list of names, not {}",
                kind(other)
            ));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Null if nulls == Nulls::Empty => Ok(String::new()),
            Value::String(s) => Ok(s.to_string()),
            other => Err(format!(
                "{key}[{i}] must be a name (a string), not {}",
                kind(other)
            )),
        })
        .collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Whether Go's `encoding/json` reads `key` into the field named `name` (ASCII): the same
/// letters in any case, where Unicode's case folding also maps the Kelvin sign to `k` and the
/// long s to `s`, as Go's does.
fn go_field_match(key: &str, name: &str) -> bool {
    let mut key = key.chars();
    for n in name.chars() {
        let same = match key.next() {
            Some(k) if k.eq_ignore_ascii_case(&n) => true,
            Some('\u{212A}') => n.eq_ignore_ascii_case(&'k'),
            Some('\u{17F}') => n.eq_ignore_ascii_case(&'s'),
            _ => false,
        };
        if !same {
            return false;
        }
    }
    key.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SidecarInjectionStatus, String> {
        SidecarInjectionStatus::parse(text)
    }

    #[test]
    fn what_istio_writes_is_read_back() {
        let s = parse(
            r#"{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"imagePullSecrets":null,"revision":"canary"}"#,
        )
        .unwrap();
        assert_eq!(s.init_containers, ["istio-init"]);
        assert_eq!(s.containers, ["istio-proxy"]);
        assert_eq!(s.volumes, ["istio-envoy"]);
        assert!(s.image_pull_secrets.is_empty());
        assert_eq!(s.revision.as_deref(), Some("canary"));
        assert!(s.injected_proxy());
    }

    #[test]
    fn keys_match_their_fields_in_any_case_as_in_go() {
        let s = parse(
            r#"{"CONTAINERS":["istio-proxy"],"InitContainers":["istio-init"],"ReVision":"r"}"#,
        )
        .unwrap();
        assert_eq!(s.containers, ["istio-proxy"]);
        assert_eq!(s.init_containers, ["istio-init"]);
        assert_eq!(s.revision.as_deref(), Some("r"));
        // Go's folding also maps the Kelvin sign to k and the long s to s.
        let s = parse("{\"containerſ\":[\"istio-proxy\"],\"imagePullSecretſ\":[\"a\"]}").unwrap();
        assert_eq!(s.containers, ["istio-proxy"]);
        assert_eq!(s.image_pull_secrets, ["a"]);
        // Other letters do not fold: not a field, ignored.
        let s = parse(r#"{"containerz":["istio-proxy"]}"#).unwrap();
        assert!(s.containers.is_empty());
    }

    #[test]
    fn the_last_key_for_a_field_wins_as_in_go() {
        let s = parse(r#"{"containers":["a"],"Containers":["b"]}"#).unwrap();
        assert_eq!(s.containers, ["b"]);
        let s = parse(r#"{"Containers":["b"],"containers":null}"#).unwrap();
        assert!(s.containers.is_empty());
        // null leaves a string as it was.
        let s = parse(r#"{"revision":"r","revision2":1,"Revision":null}"#).unwrap();
        assert_eq!(s.revision.as_deref(), Some("r"));
    }

    #[test]
    fn null_is_an_empty_status_as_in_go() {
        assert_eq!(parse("null"), Ok(SidecarInjectionStatus::default()));
        assert_eq!(parse(" {} "), Ok(SidecarInjectionStatus::default()));
    }

    #[test]
    fn a_null_name_reads_as_empty_as_in_go() {
        assert_eq!(
            parse(r#"{"containers":["istio-proxy",null]}"#)
                .unwrap()
                .containers,
            ["istio-proxy", ""]
        );
    }

    #[test]
    fn a_field_of_another_type_makes_the_status_unreadable_naming_the_key() {
        for (text, why) in [
            (
                r#"{"containers":"istio-proxy"}"#,
                "containers must be a list of names, not a string",
            ),
            (
                r#"{"Volumes":true}"#,
                "Volumes must be a list of names, not a boolean",
            ),
            (
                r#"{"containers":["istio-proxy",7]}"#,
                "containers[1] must be a name (a string), not a number",
            ),
            (
                r#"{"revision":["r"]}"#,
                "revision must be a string, not a list",
            ),
            // The first mistake in the text is the one named, as Go reports it.
            (
                r#"{"volumes":{},"containers":1}"#,
                "volumes must be a list of names, not an object",
            ),
        ] {
            assert_eq!(parse(text), Err(why.to_string()), "{text}");
        }
    }

    #[test]
    fn parse_status_reads_the_container_lists_by_their_exact_keys_as_istio() {
        let s = SidecarInjectionStatus::parse_status(
            r#"{"containers":["istio-proxy"],"InitContainers":["istio-init"],"volumes":[1]}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.containers, ["istio-proxy"]);
        assert!(s.init_containers.is_empty());
        assert!(s.volumes.is_empty());
        for text in ["null", "[]", "{not json"] {
            assert_eq!(
                SidecarInjectionStatus::parse_status(text),
                Ok(None),
                "{text}"
            );
        }
    }

    #[test]
    fn parse_status_fails_where_istios_reading_panics() {
        for (text, why) in [
            (
                r#"{"containers":"istio-proxy"}"#,
                "containers must be a list of names, not a string",
            ),
            (
                r#"{"initContainers":["istio-init",null]}"#,
                "initContainers[1] must be a name (a string), not null",
            ),
            (
                r#"{"containers":[{"name":"istio-proxy"}]}"#,
                "containers[0] must be a name (a string), not an object",
            ),
        ] {
            assert_eq!(
                SidecarInjectionStatus::parse_status(text),
                Err(why.to_string()),
                "{text}"
            );
        }
    }

    #[test]
    fn unpaired_surrogate_escapes_are_read_as_go_reads_them_not_as_unreadable() {
        let text = r#"{"containers":["istio-proxy","app-\udc00"],"revision":"r\ud800"}"#;
        let s = parse(text).unwrap();
        assert_eq!(s.containers, ["istio-proxy", "app-\u{fffd}"]);
        assert_eq!(s.revision.as_deref(), Some("r\u{fffd}"));
        let s = SidecarInjectionStatus::parse_status(text).unwrap().unwrap();
        assert_eq!(s.containers, ["istio-proxy", "app-\u{fffd}"]);
    }

    #[test]
    fn what_is_not_a_json_object_is_unreadable() {
        for text in ["", "[]", "\"x\"", "7", "{not json", "{} x"] {
            assert!(parse(text).is_err(), "{text}");
        }
        assert_eq!(parse("[]"), Err("must be a JSON object".to_string()));
    }
}
