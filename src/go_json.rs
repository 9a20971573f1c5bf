//! Go's JSON shape of Kubernetes objects that Istio writes into annotations: struct fields in
//! declaration order, empty lists omitted, `resources` always present. Only used where the
//! policy must reproduce text Istio writes (the `proxy.istio.io/overrides` annotation); the
//! Pod itself is never re-shaped.

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
