//! Go's JSON shape of Kubernetes objects that Istio writes into annotations: struct fields in
//! declaration order, empty lists omitted, `resources` always present. Only used where the
//! policy must reproduce text Istio writes (the `proxy.istio.io/overrides` annotation); the
//! Pod itself is never re-shaped.

use serde_json::{Map, Value};

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

/// A container as Go's `json.Marshal(corev1.Container)` writes it.
pub fn container(c: &Value) -> Value {
    let Value::Object(m) = c else {
        return c.clone();
    };
    // ResourceRequirements is a struct, never omitted.
    let mut m = m.clone();
    m.entry("resources")
        .or_insert_with(|| Value::Object(Map::new()));
    Value::Object(ordered(&m, CONTAINER, |key, v| match key {
        "securityContext" => reorder(v, SECURITY_CONTEXT, |k, v| {
            if k == "capabilities" {
                reorder(v, CAPABILITIES, keep)
            } else {
                v.clone()
            }
        }),
        "livenessProbe" | "readinessProbe" | "startupProbe" => reorder(v, PROBE, |k, v| {
            if k == "httpGet" {
                reorder(v, HTTP_GET, keep)
            } else {
                v.clone()
            }
        }),
        "resources" => reorder(v, RESOURCES, keep),
        "env" => each(v, ENV_VAR),
        "ports" => each(v, CONTAINER_PORT),
        "volumeMounts" => each(v, VOLUME_MOUNT),
        _ => v.clone(),
    }))
}

fn keep(_: &str, v: &Value) -> Value {
    v.clone()
}

fn each(list: &Value, order: &[&str]) -> Value {
    match list {
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| reorder(i, order, keep)).collect())
        }
        other => other.clone(),
    }
}

fn reorder(v: &Value, order: &[&str], inner: impl Fn(&str, &Value) -> Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(ordered(m, order, inner)),
        other => other.clone(),
    }
}

/// Known fields in `order`, then unknown ones as given; empty lists dropped (omitempty).
fn ordered(
    m: &Map<String, Value>,
    order: &[&str],
    inner: impl Fn(&str, &Value) -> Value,
) -> Map<String, Value> {
    let mut out = Map::new();
    let keep_value = |v: &Value| !v.is_null() && !v.as_array().is_some_and(Vec::is_empty);
    for key in order {
        if let Some(v) = m.get(*key).filter(|v| keep_value(v)) {
            out.insert((*key).to_string(), inner(key, v));
        }
    }
    for (k, v) in m {
        if !order.contains(&k.as_str()) && keep_value(v) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_fields_in_go_order_with_resources() {
        let c = json!({"securityContext": {"runAsGroup": 2, "runAsUser": 1}, "imagePullPolicy": "Always", "name": "istio-proxy", "env": []});
        assert_eq!(
            container(&c).to_string(),
            r#"{"name":"istio-proxy","resources":{},"imagePullPolicy":"Always","securityContext":{"runAsUser":1,"runAsGroup":2}}"#
        );
        let c = json!({"name": "a", "image": "i", "readinessProbe": {"periodSeconds": 1, "httpGet": {"port": 80, "path": "/"}}});
        assert_eq!(
            container(&c).to_string(),
            r#"{"name":"a","image":"i","resources":{},"readinessProbe":{"httpGet":{"path":"/","port":80},"periodSeconds":1}}"#
        );
    }
}
