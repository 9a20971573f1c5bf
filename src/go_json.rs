//! Go's JSON where it differs from serde_json's, on both sides of an annotation:
//! - the shape of Kubernetes objects that Istio writes into annotations: struct fields in
//!   declaration order, empty lists omitted, `resources` always present. Only used where the
//!   policy must reproduce text Istio writes (the `proxy.istio.io/overrides` annotation); the
//!   Pod itself is never re-shaped;
//! - what Go's `json.Unmarshal` accepts in the JSON that users write into annotations
//!   ([`unmarshal`], [`lenient`]).

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::json_text::{ordered, plain, push_value, write_ordered};
use crate::quantity;

const CONTAINER: &[&str] = &[
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "ports",
    "envFrom",
    "env",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "restartPolicyRules",
    "volumeMounts",
    "volumeDevices",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
];

const SECURITY_CONTEXT: &[&str] = &[
    "capabilities",
    "privileged",
    "seLinuxOptions",
    "windowsOptions",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "readOnlyRootFilesystem",
    "allowPrivilegeEscalation",
    "procMount",
    "seccompProfile",
    "appArmorProfile",
];

const PROBE: &[&str] = &[
    "exec",
    "httpGet",
    "tcpSocket",
    "grpc",
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
    "terminationGracePeriodSeconds",
];

const HTTP_GET: &[&str] = &["path", "port", "host", "scheme", "httpHeaders"];
const RESOURCES: &[&str] = &["limits", "requests", "claims"];
const CAPABILITIES: &[&str] = &["add", "drop"];
const ENV_VAR: &[&str] = &["name", "value", "valueFrom"];
const CONTAINER_PORT: &[&str] = &["name", "hostPort", "containerPort", "protocol", "hostIP"];
const VOLUME_MOUNT: &[&str] = &[
    "name",
    "readOnly",
    "recursiveReadOnly",
    "mountPath",
    "subPath",
    "mountPropagation",
    "subPathExpr",
];

/// A container as Go's `json.Marshal(corev1.Container)` writes it, as JSON text.
pub fn container(c: &Value) -> String {
    let Value::Object(m) = c else {
        return c.to_string();
    };
    // ResourceRequirements is a struct, never omitted.
    let mut m = m.clone();
    m.entry("resources")
        .or_insert_with(|| Value::Object(Map::new()));
    ordered(&Value::Object(m), CONTAINER, &|key, v, out| {
        match key {
            "securityContext" => write_ordered(out, v, SECURITY_CONTEXT, &|k, v, out| {
                k == "capabilities" && {
                    write_ordered(out, v, CAPABILITIES, &plain);
                    true
                }
            }),
            "livenessProbe" | "readinessProbe" | "startupProbe" => {
                write_ordered(out, v, PROBE, &|k, v, out| {
                    k == "httpGet" && {
                        write_ordered(out, v, HTTP_GET, &plain);
                        true
                    }
                })
            }
            "resources" => write_ordered(out, v, RESOURCES, &|k, v, out| {
                matches!(k, "limits" | "requests") && {
                    push_value(out, &canonical_quantities(v));
                    true
                }
            }),
            "env" => each(out, v, ENV_VAR),
            "ports" => each(out, v, CONTAINER_PORT),
            "volumeMounts" => each(out, v, VOLUME_MOUNT),
            _ => return false,
        }
        true
    })
}

/// A resource list as Go writes it: every quantity in `MarshalJSON`'s form (`3000m` is
/// `"3"`); what is not a quantity is left as it is.
fn canonical_quantities(list: &Value) -> Value {
    let Value::Object(m) = list else {
        return list.clone();
    };
    let canonical = |v: &Value| match v.as_str().map(quantity::canonicalize) {
        Some(Ok(q)) => Value::String(q),
        _ => v.clone(),
    };
    // Inserted one by one: collecting would compile another sort into the module.
    let mut out = serde_json::Map::new();
    for (k, v) in m {
        out.insert(k.clone(), canonical(v));
    }
    Value::Object(out)
}

/// A list of objects, each in Go's field order.
fn each(out: &mut String, list: &Value, order: &[&str]) {
    let Value::Array(items) = list else {
        write_ordered(out, list, order, &plain);
        return;
    };
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_ordered(out, item, order, &plain);
    }
    out.push(']');
}

/// JSON text read as Go's `json.Unmarshal` reads it: what Istio reads with it, the policy
/// reads with this (or with [`lenient`] first, for the engine's borrowed JSON).
pub fn unmarshal<T: serde::de::DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_str(&lenient(text))
}

/// JSON text as Go's `json.Unmarshal` reads it, for serde_json: a `\uXXXX` escape of a
/// surrogate that is not half of a pair is read by Go as U+FFFD, where serde_json refuses the
/// whole text. Istio reads the JSON annotations users write (`sidecar.istio.io/userVolume`,
/// `userVolumeMount`, `apm.datadoghq.com/env`, the CNI networks list) and the JSON it
/// recorded in a Pod before (`sidecar.istio.io/status`, `proxy.istio.io/overrides`, the
/// agent's `ISTIO_KUBE_APP_PROBERS`) with Go, so such a value must count as written, not
/// as unreadable. Text without such an escape is returned as it is.
pub fn lenient(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(unit) = utf16_escape(bytes, i) else {
            // Another escape (`\\` too): two bytes, so that an escaped backslash before a
            // `u` is not read as the start of a `\u` escape.
            i += 2;
            continue;
        };
        let high = (0xD800..0xDC00).contains(&unit);
        let paired =
            high && utf16_escape(bytes, i + 6).is_some_and(|low| (0xDC00..0xE000).contains(&low));
        if paired {
            i += 12;
        } else if (0xD800..0xE000).contains(&unit) {
            // Go takes only this escape: what follows it is read on its own.
            let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
            out.push_str(&text[copied..i]);
            out.push_str("\\ufffd");
            i += 6;
            copied = i;
        } else {
            i += 6;
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    }
}

/// The code unit of the `\uXXXX` escape at `at`, if there is one.
fn utf16_escape(bytes: &[u8], at: usize) -> Option<u32> {
    let [b'\\', b'u', hex @ ..] = bytes.get(at..at + 6)? else {
        return None;
    };
    hex.iter()
        .try_fold(0, |unit, &b| Some(unit << 4 | char::from(b).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_reads_unpaired_surrogate_escapes_as_replacement_characters_as_go_does() {
        let read = |text: &str| serde_json::from_str::<Value>(&lenient(text)).unwrap();
        for (text, go) in [
            (r#""\ud800""#, "\u{fffd}"),
            (r#""\udfff""#, "\u{fffd}"),
            (r#""a\ud800b""#, "a\u{fffd}b"),
            // Go takes the high half alone, then reads the next escape as itself.
            (r#""\ud800\u0041""#, "\u{fffd}A"),
            (r#""\ud800\ud800""#, "\u{fffd}\u{fffd}"),
            (r#""\udc00\ud800""#, "\u{fffd}\u{fffd}"),
            (r#""\ud800\ud83d\ude00""#, "\u{fffd}\u{1f600}"),
            // A pair is a pair.
            (r#""\ud83d\ude00""#, "\u{1f600}"),
            (r#""\uD83D\uDE00""#, "\u{1f600}"),
            // An escaped backslash before `ud800` is not an escape of a surrogate.
            (r#""\\ud800""#, "\\ud800"),
            (r#""\\\ud800""#, "\\\u{fffd}"),
        ] {
            assert_eq!(read(text), json!(go), "{text}");
        }
        assert_eq!(
            read(r#"{"\udc00": ["\ud800", 1]}"#),
            json!({"\u{fffd}": ["\u{fffd}", 1]}),
            "keys and nested values too"
        );
    }

    #[test]
    fn lenient_leaves_text_without_unpaired_surrogates_untouched() {
        for text in [
            r#"{"a": "b"}"#,
            r#""\ud83d\ude00 \u00e9 \n \\u""#,
            r#""\u12"#,
            r#""\"#,
            "",
        ] {
            assert!(
                matches!(lenient(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
        // Malformed text stays malformed.
        assert!(serde_json::from_str::<Value>(&lenient(r#""\uzzzz""#)).is_err());
    }

    #[test]
    fn container_fields_in_go_order_with_resources() {
        let c = json!({"securityContext": {"runAsGroup": 2, "runAsUser": 1}, "imagePullPolicy": "Always", "name": "istio-proxy", "env": []});
        assert_eq!(
            container(&c),
            r#"{"name":"istio-proxy","resources":{},"imagePullPolicy":"Always","securityContext":{"runAsUser":1,"runAsGroup":2}}"#
        );
        let c = json!({"name": "istio-proxy", "resources": {"limits": {"cpu": "3000m", "memory": "1024Mi"}, "requests": {"cpu": "bad"}}});
        assert_eq!(
            container(&c),
            r#"{"name":"istio-proxy","resources":{"limits":{"cpu":"3","memory":"1Gi"},"requests":{"cpu":"bad"}}}"#,
            "quantities as Go's MarshalJSON writes them"
        );
        let c = json!({"name": "a", "image": "i", "readinessProbe": {"periodSeconds": 1, "httpGet": {"port": 80, "path": "/"}}});
        assert_eq!(
            container(&c),
            r#"{"name":"a","image":"i","resources":{},"readinessProbe":{"httpGet":{"path":"/","port":80},"periodSeconds":1}}"#
        );
    }
}
