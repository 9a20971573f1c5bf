//! A Pod as the Kubernetes API server stores it, for check-mode tests: what `kubectl get pod
//! -o json` shows after the Pod was created (and injected by a mutating webhook).
//!
//! Written from Kubernetes' rules, independently of the policy's own comparison
//! (`src/check/meaning.rs`), which must accept what these rules produce:
//! - decoding into Go types: `omitempty` drops empty strings and lists, and the zero of the
//!   non-pointer numbers and booleans; quantities are written in canonical form;
//! - `pkg/apis/core/v1/defaults.go`: `SetDefaults_Pod`, `_PodSpec`, `_Container`,
//!   `_ContainerPort`, `_Probe`, `_HTTPGetAction`, `_ObjectFieldSelector`,
//!   `_ResourceFieldSelector`, `_Volume`, `_ConfigMapVolumeSource`, `_SecretVolumeSource`,
//!   `_DownwardAPIVolumeSource`, `_ProjectedVolumeSource`, `_ServiceAccountTokenProjection`,
//!   and the in-place resize policy of Kubernetes 1.33;
//! - admission plugins: ServiceAccount (the `kube-api-access-*` volume and its mounts),
//!   DefaultTolerationSeconds, Priority;
//! - what the server and the node set: uid, resourceVersion, creationTimestamp, generation,
//!   managedFields, the name from generateName, nodeName and status.
#![allow(dead_code)]

use istio_sidecar_injector::quantity::Quantity;
use serde_json::{Map, Value, json};

/// The stored form of `pod`, created in `namespace`. `seed` varies the generated names.
pub fn store(pod: &Value, namespace: &str, seed: u32) -> Value {
    let mut pod = pod.clone();
    go_round_trip(&mut pod, "");
    let obj = pod.as_object_mut().expect("a Pod is an object");
    let suffix = five_chars(seed);

    let meta = obj
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("metadata");
    if meta.get("name").is_none()
        && let Some(prefix) = meta.get("generateName").and_then(Value::as_str)
    {
        let name = format!("{prefix}{suffix}");
        meta.insert("name".into(), name.into());
    }
    meta.entry("namespace").or_insert_with(|| namespace.into());
    meta.insert(
        "uid".into(),
        format!("6f1c2b0e-8d3a-4c59-9b1e-{seed:012}").into(),
    );
    meta.insert("resourceVersion".into(), (41_000 + seed).to_string().into());
    meta.insert("creationTimestamp".into(), "2026-11-30T09:14:07Z".into());
    meta.insert("generation".into(), 1.into());
    meta.insert(
        "managedFields".into(),
        json!([{"apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}},
                "manager": "kube-controller-manager", "operation": "Update",
                "time": "2026-11-30T09:14:07Z"}]),
    );

    let spec = obj
        .entry("spec")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("spec");
    default_pod_spec(spec);
    service_account_admission(spec, &suffix);
    default_toleration_seconds(spec);
    spec.insert("nodeName".into(), "worker-2".into());

    let statuses: Vec<Value> = spec
        .get("containers")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|c| {
                    json!({"name": c["name"], "ready": true, "restartCount": 0,
                                 "image": c["image"], "started": true,
                                 "state": {"running": {"startedAt": "2026-11-30T09:14:11Z"}}})
                })
                .collect()
        })
        .unwrap_or_default();
    obj.insert(
        "status".into(),
        json!({"phase": "Running", "hostIP": "10.0.0.12", "podIP": "10.244.2.17",
               "podIPs": [{"ip": "10.244.2.17"}], "qosClass": "Burstable",
               "startTime": "2026-11-30T09:14:07Z",
               "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null,
                               "lastTransitionTime": "2026-11-30T09:14:12Z"}],
               "containerStatuses": statuses}),
    );
    pod
}

/// Five lowercase characters, as the API server appends to generated names.
fn five_chars(seed: u32) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = seed.wrapping_mul(2_654_435_761).wrapping_add(12_345);
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u32) as usize] as char;
            n /= ALPHABET.len() as u32;
            c
        })
        .collect()
}

/// Non-pointer numeric and boolean fields of the Pod's Go types, by the object that holds
/// them: their zero value is dropped by `omitempty`.
fn non_pointer_zero_field(parent: &str, key: &str) -> bool {
    match parent {
        "probe" => matches!(
            key,
            "initialDelaySeconds"
                | "timeoutSeconds"
                | "periodSeconds"
                | "successThreshold"
                | "failureThreshold"
        ),
        "volumeMount" => key == "readOnly",
        "port" => key == "hostPort",
        "container" => matches!(key, "stdin" | "stdinOnce" | "tty"),
        "spec" => matches!(key, "hostNetwork" | "hostPID" | "hostIPC"),
        _ => false,
    }
}

/// What decoding into Go's types and encoding again does: empty strings, lists and the zeros
/// of non-pointer fields are dropped, quantities become canonical. `kind` names the kind of
/// object `v` is (or of the items, for a list).
fn go_round_trip(v: &mut Value, kind: &str) {
    match v {
        Value::Object(map) => {
            if kind == "data" {
                return;
            }
            for (key, value) in map.iter_mut() {
                if kind == "resourceList" {
                    if let Some(q) = value.as_str().and_then(|s| Quantity::parse(s).ok()) {
                        *value = q.canonical().into();
                    }
                    continue;
                }
                let child = match (kind, key.as_str()) {
                    ("", "spec") => "spec",
                    ("", "metadata") => "metadata",
                    ("metadata", "labels" | "annotations") => "data",
                    ("spec", "containers" | "initContainers") => "container",
                    ("container", "livenessProbe" | "readinessProbe" | "startupProbe") => "probe",
                    ("container", "volumeMounts") => "volumeMount",
                    ("container", "ports") => "port",
                    ("container", "resources") => "resources",
                    ("resources", "requests" | "limits") => "resourceList",
                    _ => "other",
                };
                go_round_trip(value, child);
            }
            map.retain(|key, value| {
                let dropped = match value {
                    Value::String(s) => s.is_empty(),
                    Value::Array(a) => a.is_empty(),
                    Value::Null => true,
                    Value::Bool(false) => non_pointer_zero_field(kind, key),
                    Value::Number(n) => n.as_i64() == Some(0) && non_pointer_zero_field(kind, key),
                    _ => false,
                };
                !dropped
            });
        }
        Value::Array(items) => {
            for item in items {
                go_round_trip(item, kind);
            }
        }
        _ => {}
    }
}

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.entry(key.to_string()).or_insert(value);
}

fn default_pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "dnsPolicy", "ClusterFirst".into());
    set_default(spec, "restartPolicy", "Always".into());
    set_default(spec, "terminationGracePeriodSeconds", 30.into());
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", "default-scheduler".into());
    set_default(spec, "enableServiceLinks", true.into());
    set_default(spec, "priority", 0.into());
    set_default(spec, "preemptionPolicy", "PreemptLowerPriority".into());
    let account = spec
        .get("serviceAccountName")
        .cloned()
        .unwrap_or_else(|| "default".into());
    spec.insert("serviceAccountName".into(), account.clone());
    spec.insert("serviceAccount".into(), account);

    for field in ["containers", "initContainers"] {
        if let Some(list) = spec.get_mut(field).and_then(Value::as_array_mut) {
            for c in list.iter_mut().filter_map(Value::as_object_mut) {
                default_container(c);
            }
        }
    }
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in volumes.iter_mut().filter_map(Value::as_object_mut) {
            default_volume(v);
        }
    }
}

fn default_container(c: &mut Map<String, Value>) {
    // ResourceRequirements is a struct, which `omitempty` never drops.
    set_default(c, "resources", json!({}));
    set_default(c, "terminationMessagePath", "/dev/termination-log".into());
    set_default(c, "terminationMessagePolicy", "File".into());
    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
    let last = image.rsplit('/').next().unwrap_or(image);
    let tag = if image.contains('@') {
        ""
    } else {
        last.split_once(':').map_or("latest", |(_, t)| t)
    };
    let policy = if tag == "latest" {
        "Always"
    } else {
        "IfNotPresent"
    };
    set_default(c, "imagePullPolicy", policy.into());
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", "TCP".into());
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            set_default(p, "timeoutSeconds", 1.into());
            set_default(p, "periodSeconds", 10.into());
            set_default(p, "successThreshold", 1.into());
            set_default(p, "failureThreshold", 3.into());
            default_http_get(p);
        }
    }
    if let Some(lifecycle) = c.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for handler in lifecycle.values_mut().filter_map(Value::as_object_mut) {
            default_http_get(handler);
        }
    }
    if let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) {
        for e in env.iter_mut() {
            if let Some(from) = e.get_mut("valueFrom").and_then(Value::as_object_mut) {
                default_value_from(from);
            }
        }
    }
    // SetDefaults_Pod: a resource with a limit and no request gets the limit as request.
    if let Some(resources) = c.get_mut("resources").and_then(Value::as_object_mut)
        && let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned()
    {
        let requests = resources
            .entry("requests")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("requests");
        for (name, limit) in limits {
            requests.entry(name).or_insert(limit);
        }
    }
    // Kubernetes 1.33 (in-place resize on by default): a policy per resource in use.
    let in_use: Vec<String> = ["cpu", "memory"]
        .into_iter()
        .filter(|r| {
            ["requests", "limits"].iter().any(|s| {
                c.get("resources")
                    .and_then(|x| x.get(*s))
                    .and_then(|x| x.get(*r))
                    .is_some()
            })
        })
        .map(str::to_string)
        .collect();
    if !in_use.is_empty() && !c.contains_key("restartPolicy") {
        c.entry("resizePolicy").or_insert_with(|| {
            in_use
                .iter()
                .map(|r| json!({"resourceName": r, "restartPolicy": "NotRequired"}))
                .collect()
        });
    }
}

fn default_http_get(handler: &mut Map<String, Value>) {
    if let Some(get) = handler.get_mut("httpGet").and_then(Value::as_object_mut) {
        set_default(get, "path", "/".into());
        set_default(get, "scheme", "HTTP".into());
    }
}

fn default_value_from(from: &mut Map<String, Value>) {
    if let Some(f) = from.get_mut("fieldRef").and_then(Value::as_object_mut) {
        set_default(f, "apiVersion", "v1".into());
    }
    if let Some(r) = from
        .get_mut("resourceFieldRef")
        .and_then(Value::as_object_mut)
    {
        set_default(r, "divisor", "0".into());
    }
}

fn default_volume(v: &mut Map<String, Value>) {
    let sources = v.keys().filter(|k| *k != "name").count();
    if sources == 0 {
        v.insert("emptyDir".into(), json!({}));
    }
    for source in ["configMap", "secret", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(source).and_then(Value::as_object_mut) {
            set_default(s, "defaultMode", 420.into());
        }
    }
    if let Some(items) = v
        .get_mut("downwardAPI")
        .and_then(|d| d.get_mut("items"))
        .and_then(Value::as_array_mut)
    {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            default_value_from(item);
        }
    }
    if let Some(sources) = v
        .get_mut("projected")
        .and_then(|p| p.get_mut("sources"))
        .and_then(Value::as_array_mut)
    {
        for s in sources.iter_mut() {
            if let Some(t) = s
                .get_mut("serviceAccountToken")
                .and_then(Value::as_object_mut)
            {
                set_default(t, "expirationSeconds", 3600.into());
            }
        }
    }
}

/// The ServiceAccount admission plugin: the projected token volume, mounted read-only into
/// every container and init container.
fn service_account_admission(spec: &mut Map<String, Value>, suffix: &str) {
    let name = format!("kube-api-access-{suffix}");
    let volume = json!({"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}});
    spec.entry("volumes")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("volumes")
        .push(volume);
    for field in ["containers", "initContainers"] {
        if let Some(list) = spec.get_mut(field).and_then(Value::as_array_mut) {
            for c in list.iter_mut().filter_map(Value::as_object_mut) {
                c.entry("volumeMounts")
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .expect("volumeMounts")
                    .push(json!({"name": name, "readOnly": true,
                        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}));
            }
        }
    }
}

fn default_toleration_seconds(spec: &mut Map<String, Value>) {
    let tolerations = spec
        .entry("tolerations")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("tolerations");
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        tolerations.push(
            json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": 300}),
        );
    }
}
