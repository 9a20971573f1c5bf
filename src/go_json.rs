//! Go's JSON shape of Kubernetes objects that Istio writes into annotations: struct fields in
//! declaration order, empty lists omitted, `resources` always present. Only used where the
//! policy must reproduce text Istio writes (the `proxy.istio.io/overrides` annotation); the
//! Pod itself is never re-shaped.

use serde_json::{Map, Value};

use crate::json_text::{array, ordered};

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
    ordered(&Value::Object(m), CONTAINER, &|key, v| match key {
        "securityContext" => Some(ordered(v, SECURITY_CONTEXT, &|k, v| {
            (k == "capabilities").then(|| ordered(v, CAPABILITIES, &|_, _| None))
        })),
        "livenessProbe" | "readinessProbe" | "startupProbe" => Some(ordered(v, PROBE, &|k, v| {
            (k == "httpGet").then(|| ordered(v, HTTP_GET, &|_, _| None))
        })),
        "resources" => Some(ordered(v, RESOURCES, &|_, _| None)),
        "env" => Some(each(v, ENV_VAR)),
        "ports" => Some(each(v, CONTAINER_PORT)),
        "volumeMounts" => Some(each(v, VOLUME_MOUNT)),
        _ => None,
    })
}

fn each(list: &Value, order: &[&str]) -> String {
    match list {
        Value::Array(items) => array(items.iter().map(|i| ordered(i, order, &|_, _| None))),
        other => other.to_string(),
    }
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
        let c = json!({"name": "a", "image": "i", "readinessProbe": {"periodSeconds": 1, "httpGet": {"port": 80, "path": "/"}}});
        assert_eq!(
            container(&c),
            r#"{"name":"a","image":"i","resources":{},"readinessProbe":{"httpGet":{"path":"/","port":80},"periodSeconds":1}}"#
        );
    }
}
