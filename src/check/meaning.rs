//! Pods compared in meaning. A stored Pod has been through the API server: it fills in
//! defaults, drops Go's zero values, writes quantities in canonical form and adds server-set
//! metadata and status. Check mode compares such a Pod with its re-injection, which has not
//! been through the API server. [`normalize`] brings both to one form in which two Pods that
//! mean the same compare equal: defaults and zero values taken out, quantities canonical,
//! what the server sets removed. Applied to both sides, so it may remove more than the API
//! server adds: a field equal to its default means the same whether it is written or not.
//!
//! The rules are Kubernetes' own (`pkg/apis/core/v1/defaults.go`, the ServiceAccount,
//! DefaultTolerationSeconds and Priority admission plugins, and `omitempty` in the Go types).

use crate::json::{Map, Value};

use crate::quantity::Quantity;

/// Metadata the API server sets; never the Pod's meaning.
const SERVER_SET_METADATA: [&str; 9] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generateName",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// PodSpec fields and the value the API server (or an admission plugin) gives them when
/// absent.
fn pod_spec_default(key: &str) -> Option<Value<'static>> {
    Some(match key {
        "dnsPolicy" => "ClusterFirst".into(),
        "restartPolicy" => "Always".into(),
        "schedulerName" => "default-scheduler".into(),
        "terminationGracePeriodSeconds" => 30.into(),
        "enableServiceLinks" => true.into(),
        "preemptionPolicy" => "PreemptLowerPriority".into(),
        "priority" => 0.into(),
        "serviceAccountName" | "serviceAccount" => "default".into(),
        _ => return None,
    })
}

/// Probe fields and their defaults (`SetDefaults_Probe`).
fn probe_default(key: &str) -> Option<i64> {
    match key {
        "timeoutSeconds" => Some(1),
        "periodSeconds" => Some(10),
        "successThreshold" => Some(1),
        "failureThreshold" => Some(3),
        _ => None,
    }
}

/// Fields whose zero value means something else than leaving them out (Go pointers):
/// `runAsUser: 0` is root, `allowPrivilegeEscalation: false` forbids what absence allows.
/// Every other zero value (`0`, `false`, `""`, `[]`, `{}`, `null`) is what Go's `omitempty`
/// drops, and means the same as no value.
const MEANINGFUL_ZEROS: [&str; 13] = [
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "allowPrivilegeEscalation",
    "automountServiceAccountToken",
    "enableServiceLinks",
    "hostUsers",
    "terminationGracePeriodSeconds",
    "tolerationSeconds",
    "activeDeadlineSeconds",
    "defaultMode",
    "mode",
    "expirationSeconds",
];

/// Maps whose entries are data: an empty value there is a value (`sidecar.istio.io/inject: ""`
/// is a label that is present).
const DATA_MAPS: [&str; 4] = ["labels", "annotations", "nodeSelector", "matchLabels"];

/// The env entry holding the JSON of every container's ports (Istio's template).
const POD_PORTS_ENV: &str = "ISTIO_META_POD_PORTS";

/// The mount path of the service-account token volume the ServiceAccount admission plugin
/// adds to every container.
const SERVICE_ACCOUNT_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// What normalizing a Pod's parts needs to know of the whole Pod: the service-account
/// token volumes, whose mounts mean nothing either.
#[derive(Debug, Default)]
pub struct PodContext {
    token_volumes: Vec<String>,
}

impl PodContext {
    pub fn of(pod: &Value) -> Self {
        let token_volumes = pod
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .map(|volumes| {
                volumes
                    .iter()
                    .filter(|v| is_service_account_token_volume(v))
                    .filter_map(|v| v.get("name").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        PodContext { token_volumes }
    }
}

/// Brings `pod` to the form in which Pods that mean the same are equal: every part through
/// the normalizer of its kind below.
pub fn normalize(pod: &mut Value) {
    let context = PodContext::of(pod);
    let Some(obj) = pod.as_object_mut() else {
        return;
    };
    let fields = std::mem::take(obj);
    for (key, value) in fields {
        let normalized = match key.as_ref() {
            "metadata" => Some(object_of(&value, metadata_field)),
            "spec" => Some(object_of(&value, |k, v| match k {
                "containers" | "initContainers" | "ephemeralContainers" => {
                    Some(list_of(v, |c| Some(container(c, &context))))
                }
                "volumes" => Some(list_of(v, volume)),
                _ => spec_field(&value, k, v),
            })),
            _ => pod_field(&key, &value),
        };
        if let Some(v) = normalized.filter(|v| !is_zero(v)) {
            obj.insert(key, v);
        }
    }
}

/// An object with each field through `field` (`None` drops the field).
fn object_of<'a>(
    v: &Value<'a>,
    field: impl Fn(&str, &Value<'a>) -> Option<Value<'a>>,
) -> Value<'a> {
    match v {
        Value::Object(m) => Value::Object(
            m.entries()
                .filter_map(|(k, v)| field(k, v).filter(|v| !is_zero(v)).map(|v| (k.clone(), v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A list with each item through `item` (`None` drops the item).
fn list_of<'a>(v: &Value<'a>, item: impl Fn(&Value<'a>) -> Option<Value<'a>>) -> Value<'a> {
    match v {
        Value::Array(items) => Value::Array(items.iter().filter_map(item).collect()),
        other => other.clone(),
    }
}

/// A top-level field of the Pod; `status` is the node's, not the Pod's meaning.
pub fn pod_field<'a>(key: &str, value: &Value<'a>) -> Option<Value<'a>> {
    (key != "status").then(|| zeros_dropped(value.clone()))
}

/// A field of `metadata`; what the server sets means nothing. Labels and annotations are
/// data, kept as they are.
pub fn metadata_field<'a>(key: &str, value: &Value<'a>) -> Option<Value<'a>> {
    if SERVER_SET_METADATA.contains(&key) {
        return None;
    }
    if DATA_MAPS.contains(&key) {
        return Some(value.clone());
    }
    Some(zeros_dropped(value.clone()))
}

/// A field of the PodSpec other than its containers and volumes (`spec` is the whole
/// PodSpec, for the fields that mirror others); `None` when it means nothing.
pub fn spec_field<'a>(spec: &Value<'a>, key: &str, value: &Value<'a>) -> Option<Value<'a>> {
    if key == "nodeName" || pod_spec_default(key).is_some_and(|d| d == *value) {
        return None;
    }
    // The deprecated `serviceAccount` mirrors `serviceAccountName`.
    if key == "serviceAccount" && spec.get("serviceAccountName") == Some(value) {
        return None;
    }
    let mut value = value.clone();
    match key {
        "tolerations" => {
            if let Some(tolerations) = value.as_array_mut() {
                tolerations.retain(|t| !is_default_toleration(t));
            }
        }
        "overhead" => canonical_quantities(&mut value),
        _ => {}
    }
    Some(zeros_dropped(value))
}

/// A container or init container.
pub fn container<'a>(c: &Value<'a>, context: &PodContext) -> Value<'a> {
    let mut c = c.clone();
    if let Some(map) = c.as_object_mut() {
        normalize_container(map, &context.token_volumes);
    }
    zeros_dropped(c)
}

/// A volume; `None` for the service-account token volume.
pub fn volume<'a>(v: &Value<'a>) -> Option<Value<'a>> {
    if is_service_account_token_volume(v) {
        return None;
    }
    let mut v = v.clone();
    normalize_volume(&mut v);
    Some(zeros_dropped(v))
}

fn zeros_dropped(mut v: Value) -> Value {
    drop_zeros(&mut v);
    v
}

/// The tolerations DefaultTolerationSeconds adds to every Pod.
fn is_default_toleration(t: &Value) -> bool {
    let field = |k: &str| t.get(k).and_then(Value::as_str);
    matches!(
        field("key"),
        Some("node.kubernetes.io/not-ready" | "node.kubernetes.io/unreachable")
    ) && field("operator") == Some("Exists")
        && field("effect") == Some("NoExecute")
        && t.get("tolerationSeconds").and_then(Value::as_i64) == Some(300)
        && t.as_object().is_some_and(|m| m.len() == 4)
}

/// The projected service-account token volume (`kube-api-access-*`) the ServiceAccount
/// admission plugin adds.
fn is_service_account_token_volume(v: &Value) -> bool {
    let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
    name.starts_with("kube-api-access-")
        && v.pointer("/projected/sources")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|s| s.get("serviceAccountToken").is_some()))
}

fn normalize_container(c: &mut Map, token_volumes: &[String]) {
    if c.get("terminationMessagePath").and_then(Value::as_str) == Some("/dev/termination-log") {
        c.remove("terminationMessagePath");
    }
    if c.get("terminationMessagePolicy").and_then(Value::as_str) == Some("File") {
        c.remove("terminationMessagePolicy");
    }
    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
    if c.get("imagePullPolicy").and_then(Value::as_str) == Some(default_pull_policy(image)) {
        c.remove("imagePullPolicy");
    }
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        ports.iter_mut().for_each(normalize_port);
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            normalize_probe(p);
        }
    }
    if let Some(lifecycle) = c.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for handler in lifecycle.values_mut().filter_map(Value::as_object_mut) {
            normalize_handler(handler);
        }
    }
    if let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) {
        env.iter_mut().for_each(normalize_env_var);
    }
    if let Some(resources) = c.get_mut("resources").and_then(Value::as_object_mut) {
        normalize_resources(resources);
    }
    // In-place resize (on by default since Kubernetes 1.33) defaults every resource to
    // NotRequired.
    if let Some(policies) = c.get_mut("resizePolicy").and_then(Value::as_array_mut) {
        policies.retain(|p| p.get("restartPolicy").and_then(Value::as_str) != Some("NotRequired"));
    }
    if let Some(mounts) = c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
        mounts.retain(|m| {
            let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
            let path = m.get("mountPath").and_then(Value::as_str);
            !(path == Some(SERVICE_ACCOUNT_MOUNT) && token_volumes.iter().any(|v| v == name))
        });
    }
}

/// `SetDefaults_Container`: `Always` for `:latest` or an image without tag or digest,
/// `IfNotPresent` otherwise.
fn default_pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((name, _)) => (name, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, tag)| tag);
    match tag {
        Some("latest") => "Always",
        None if !digest => "Always",
        _ => "IfNotPresent",
    }
}

fn normalize_port(port: &mut Value) {
    if let Some(p) = port.as_object_mut()
        && p.get("protocol").and_then(Value::as_str) == Some("TCP")
    {
        p.remove("protocol");
    }
}

fn normalize_probe(p: &mut Map) {
    p.retain(|key, value| probe_default(key).is_none_or(|d| value.as_i64() != Some(d)));
    normalize_handler(p);
}

/// The action of a probe or lifecycle handler: `httpGet` defaults to path `/` and scheme
/// `HTTP`.
fn normalize_handler(h: &mut Map) {
    if let Some(get) = h.get_mut("httpGet").and_then(Value::as_object_mut) {
        if get.get("path").and_then(Value::as_str) == Some("/") {
            get.remove("path");
        }
        if get.get("scheme").and_then(Value::as_str) == Some("HTTP") {
            get.remove("scheme");
        }
    }
}

fn normalize_env_var(e: &mut Value) {
    if let Some(from) = e.get_mut("valueFrom").and_then(Value::as_object_mut) {
        normalize_value_from(from);
    }
    // Istio renders the containers' ports into this entry: ports the API server defaulted
    // (protocol TCP) mean the same as the ones it had not yet.
    if e.get("name").and_then(Value::as_str) == Some(POD_PORTS_ENV)
        && let Some(value) = e.get_mut("value")
        && let Some(serde_json::Value::Array(ports)) =
            value.as_str().and_then(|s| serde_json::from_str(s).ok())
    {
        let mut ports: Vec<Value> = ports.iter().map(Value::from_serde).collect();
        for port in &mut ports {
            normalize_port(port);
            drop_zeros(port);
        }
        *value = Value::from(ports).to_json().into();
    }
}

/// `fieldRef.apiVersion` defaults to `v1`, `resourceFieldRef.divisor` to `0` (which means 1).
fn normalize_value_from(from: &mut Map) {
    if let Some(field) = from.get_mut("fieldRef").and_then(Value::as_object_mut)
        && field.get("apiVersion").and_then(Value::as_str) == Some("v1")
    {
        field.remove("apiVersion");
    }
    if let Some(resource) = from
        .get_mut("resourceFieldRef")
        .and_then(Value::as_object_mut)
        && let Some(divisor) = resource.get_mut("divisor")
    {
        if quantity(divisor).is_some_and(|q| q.is_zero()) {
            resource.remove("divisor");
        } else {
            canonical_quantity(divisor);
        }
    }
}

/// Quantities canonical; a request equal to its limit is what the API server defaults a
/// missing request to.
fn normalize_resources(resources: &mut Map) {
    for section in ["requests", "limits"] {
        if let Some(list) = resources.get_mut(section) {
            canonical_quantities(list);
        }
    }
    let limits = resources.get("limits").and_then(Value::as_object).cloned();
    if let (Some(limits), Some(requests)) = (
        limits,
        resources.get_mut("requests").and_then(Value::as_object_mut),
    ) {
        requests.retain(|name, value| limits.get(name) != Some(&*value));
    }
}

fn normalize_volume(v: &mut Value) {
    let Some(v) = v.as_object_mut() else {
        return;
    };
    for source in ["configMap", "secret", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(source).and_then(Value::as_object_mut)
            && s.get("defaultMode").and_then(Value::as_i64) == Some(0o644)
        {
            s.remove("defaultMode");
        }
    }
    if let Some(items) = v
        .get_mut("downwardAPI")
        .and_then(|d| d.get_mut("items"))
        .and_then(Value::as_array_mut)
    {
        items.iter_mut().for_each(normalize_downward_item);
    }
    if let Some(sources) = v
        .get_mut("projected")
        .and_then(|p| p.get_mut("sources"))
        .and_then(Value::as_array_mut)
    {
        for source in sources.iter_mut() {
            if let Some(token) = source
                .get_mut("serviceAccountToken")
                .and_then(Value::as_object_mut)
                && token.get("expirationSeconds").and_then(Value::as_i64) == Some(3600)
            {
                token.remove("expirationSeconds");
            }
            if let Some(items) = source
                .get_mut("downwardAPI")
                .and_then(|d| d.get_mut("items"))
                .and_then(Value::as_array_mut)
            {
                items.iter_mut().for_each(normalize_downward_item);
            }
        }
    }
    if let Some(limit) = v.get_mut("emptyDir").and_then(|e| e.get_mut("sizeLimit")) {
        canonical_quantity(limit);
    }
}

fn normalize_downward_item(item: &mut Value) {
    if let Some(item) = item.as_object_mut() {
        normalize_value_from(item);
    }
}

fn quantity(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s).ok(),
        Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    }
}

fn canonical_quantity(v: &mut Value) {
    if let Some(q) = quantity(v) {
        *v = Value::String(q.canonical().into());
    }
}

/// Every value of a resource list (`{cpu: 2000m, memory: 1024Mi}`) in canonical form.
fn canonical_quantities(list: &mut Value) {
    if let Some(list) = list.as_object_mut() {
        list.values_mut().for_each(canonical_quantity);
    }
}

/// Takes out the fields whose value is a zero value, except the few where zero is a value;
/// an object or list left empty goes too.
fn drop_zeros(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if !DATA_MAPS.contains(&key) {
                    drop_zeros(value);
                }
            }
            map.retain(|key, value| MEANINGFUL_ZEROS.contains(&key) || !is_zero(value));
        }
        Value::Array(items) => items.iter_mut().for_each(drop_zeros),
        _ => {}
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same_meaning(a: serde_json::Value, b: serde_json::Value) -> bool {
        let (mut a, mut b) = (Value::from_serde(&a), Value::from_serde(&b));
        normalize(&mut a);
        normalize(&mut b);
        a == b
    }

    fn pod(container: serde_json::Value) -> serde_json::Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [container]}})
    }

    #[test]
    fn defaulted_container_fields_mean_nothing() {
        assert!(same_meaning(
            pod(json!({"name": "app", "image": "app:1.0",
                "ports": [{"containerPort": 80}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 80}}})),
            pod(
                json!({"name": "app", "image": "app:1.0", "imagePullPolicy": "IfNotPresent",
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 80, "scheme": "HTTP"},
                    "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}})
            ),
        ));
    }

    #[test]
    fn pull_policy_default_follows_the_tag() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("registry:5000/nginx"), "Always");
        assert_eq!(
            default_pull_policy("registry:5000/nginx:1.2"),
            "IfNotPresent"
        );
        assert_eq!(default_pull_policy("nginx@sha256:abc"), "IfNotPresent");
        // An explicit policy other than the default is a difference.
        assert!(!same_meaning(
            pod(json!({"name": "app", "image": "app:1.0"})),
            pod(json!({"name": "app", "image": "app:1.0", "imagePullPolicy": "Always"})),
        ));
    }

    #[test]
    fn quantities_compare_in_canonical_form() {
        assert!(same_meaning(
            pod(
                json!({"name": "p", "resources": {"limits": {"cpu": "2000m", "memory": "1024Mi"}}})
            ),
            pod(
                json!({"name": "p", "resources": {"limits": {"cpu": "2", "memory": "1Gi"},
                "requests": {"cpu": "2"}}})
            ),
        ));
        assert!(!same_meaning(
            pod(json!({"name": "p", "resources": {"limits": {"cpu": "2000m"}}})),
            pod(json!({"name": "p", "resources": {"limits": {"cpu": "1"}}})),
        ));
    }

    #[test]
    fn server_set_metadata_status_and_scheduling_mean_nothing() {
        let a = json!({"metadata": {"name": "p", "generateName": "p-", "uid": "u",
            "resourceVersion": "1", "creationTimestamp": "2026-01-01T00:00:00Z",
            "managedFields": [{"manager": "kubectl"}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "a"}], "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always", "schedulerName": "default-scheduler",
                "terminationGracePeriodSeconds": 30, "securityContext": {}, "enableServiceLinks": true,
                "preemptionPolicy": "PreemptLowerPriority", "priority": 0,
                "serviceAccountName": "default", "serviceAccount": "default",
                "tolerations": [
                    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]},
            "status": {"phase": "Running"}});
        assert!(same_meaning(
            a,
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}})
        ));
    }

    #[test]
    fn service_account_token_volume_and_mounts_mean_nothing() {
        let a = json!({"spec": {"containers": [{"name": "a", "volumeMounts": [
                {"name": "kube-api-access-x7k2p", "mountPath": SERVICE_ACCOUNT_MOUNT, "readOnly": true}]}],
            "volumes": [{"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}]}});
        assert!(same_meaning(
            a,
            json!({"spec": {"containers": [{"name": "a"}]}})
        ));
    }

    #[test]
    fn meaningful_zeros_stay() {
        assert!(!same_meaning(
            pod(json!({"name": "p", "securityContext": {"runAsUser": 0}})),
            pod(json!({"name": "p", "securityContext": {}})),
        ));
        assert!(!same_meaning(
            pod(json!({"name": "p", "securityContext": {"allowPrivilegeEscalation": false}})),
            pod(json!({"name": "p"})),
        ));
        // An empty label is a label.
        assert!(!same_meaning(
            json!({"metadata": {"labels": {"sidecar.istio.io/inject": ""}}}),
            json!({"metadata": {"labels": {}}}),
        ));
        // Go's omitempty zeros are not values.
        assert!(same_meaning(
            pod(
                json!({"name": "p", "readinessProbe": {"initialDelaySeconds": 0, "periodSeconds": 15},
                "volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": false}],
                "env": [{"name": "E", "value": ""}]})
            ),
            pod(json!({"name": "p", "readinessProbe": {"periodSeconds": 15},
                "volumeMounts": [{"name": "v", "mountPath": "/v"}], "env": [{"name": "E"}]})),
        ));
    }

    #[test]
    fn volume_defaults_mean_nothing() {
        let a = json!({"spec": {"volumes": [
            {"name": "a"},
            {"name": "b", "configMap": {"name": "cm"}},
            {"name": "c", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            {"name": "d", "projected": {"sources": [{"serviceAccountToken": {"path": "t", "audience": "istio-ca"}}]}}]}});
        let b = json!({"spec": {"volumes": [
            {"name": "a", "emptyDir": {}},
            {"name": "b", "configMap": {"name": "cm", "defaultMode": 420}},
            {"name": "c", "downwardAPI": {"defaultMode": 420, "items": [{"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}}]}},
            {"name": "d", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {"path": "t", "audience": "istio-ca", "expirationSeconds": 3600}}]}}]}});
        assert!(same_meaning(a, b));
    }

    #[test]
    fn env_field_refs_and_pod_ports_defaults_mean_nothing() {
        let a = pod(json!({"name": "p", "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": POD_PORTS_ENV, "value": "[\n{\"name\":\"http\",\"containerPort\":8080}\n]"}]}));
        let b = pod(json!({"name": "p", "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "0"}}},
            {"name": POD_PORTS_ENV, "value": "[{\"containerPort\":8080,\"name\":\"http\",\"protocol\":\"TCP\"}]"}]}));
        assert!(same_meaning(a, b));
    }
}
