//! The Pod, as the engine holds it ([`crate::json`]): shape checks with messages that name
//! the field, the accessors every step of the decision, the injection and the check reads it
//! with, and the few derived facts injection needs (Istio's `GetDeployMetaFromPod`).

use crate::json::{List, Map, Value};

use crate::template::DeployMeta;

/// Checks the parts of the Pod the policy reads, so that later code can rely on their types.
/// The API server sends well-formed Pods; this guards against hand-written requests.
pub fn check_shape(pod: &Value) -> Result<(), String> {
    let Some(obj) = pod.as_object() else {
        return Err("object: the Pod must be a JSON object".into());
    };
    if let Some(meta) = obj.get("metadata") {
        let Some(meta) = meta.as_object() else {
            return Err("metadata: must be an object".into());
        };
        for field in ["labels", "annotations"] {
            match meta.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::Object(m)) => {
                    if let Some((k, _)) = m.iter().find(|(_, v)| !v.is_string()) {
                        return Err(format!("metadata.{field}.{k}: must be a string"));
                    }
                }
                Some(_) => return Err(format!("metadata.{field}: must be a map of strings")),
            }
        }
        for field in ["name", "namespace", "generateName"] {
            if let Some(v) = meta.get(field)
                && !(v.is_string() || v.is_null())
            {
                return Err(format!("metadata.{field}: must be a string"));
            }
        }
        if let Some(refs) = meta.get("ownerReferences")
            && !(refs.is_array() || refs.is_null())
        {
            return Err("metadata.ownerReferences: must be a list".into());
        }
    }
    if let Some(spec) = obj.get("spec") {
        let Some(spec) = spec.as_object() else {
            return Err("spec: must be an object".into());
        };
        for field in [
            "containers",
            "initContainers",
            "volumes",
            "imagePullSecrets",
        ] {
            match spec.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let Some(item) = item.as_object() else {
                            return Err(format!("spec.{field}[{i}]: must be an object"));
                        };
                        if let Some(name) = item.get("name")
                            && !name.is_string()
                        {
                            return Err(format!("spec.{field}[{i}].name: must be a string"));
                        }
                        if field.ends_with("ontainers") {
                            check_container(&format!("spec.{field}[{i}]"), item)?;
                        }
                    }
                }
                Some(_) => return Err(format!("spec.{field}: must be a list")),
            }
        }
        if let Some(v) = spec.get("hostNetwork")
            && !(v.is_boolean() || v.is_null())
        {
            return Err("spec.hostNetwork: must be a boolean".into());
        }
    }
    Ok(())
}

/// Container fields the shape check requires to be lists of objects (or null).
pub const CONTAINER_LIST_FIELDS: [&str; 3] = ["env", "ports", "volumeMounts"];
/// Container fields the shape check requires to be objects (or null).
pub const CONTAINER_OBJECT_FIELDS: [&str; 3] = ["securityContext", "resources", "lifecycle"];

fn check_container(path: &str, c: &Map) -> Result<(), String> {
    for field in CONTAINER_LIST_FIELDS {
        match c.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                if let Some(i) = items.first_non_object() {
                    return Err(format!("{path}.{field}[{i}]: must be an object"));
                }
            }
            Some(_) => return Err(format!("{path}.{field}: must be a list")),
        }
    }
    for field in CONTAINER_OBJECT_FIELDS {
        if let Some(v) = c.get(field)
            && !(v.is_object() || v.is_null())
        {
            return Err(format!("{path}.{field}: must be an object"));
        }
    }
    Ok(())
}

pub fn metadata_map<'p, 'a>(pod: &'p Value<'a>, field: &str) -> Option<&'p Map<'a>> {
    pod.get("metadata")?.get(field)?.as_object()
}

pub fn metadata_str<'p>(pod: &'p Value, field: &str) -> &'p str {
    pod.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn host_network(pod: &Value) -> bool {
    pod.get("spec")
        .and_then(|s| s.get("hostNetwork"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Mutable access to `metadata.<field>` as a map, created when missing.
pub fn metadata_map_mut<'p, 'a>(pod: &'p mut Value<'a>, field: &str) -> &'p mut Map<'a> {
    let meta = ensure_object(pod).get_or_insert_with("metadata", || Value::Object(Map::new()));
    let entry = ensure_object(meta).get_or_insert_with(field, || Value::Object(Map::new()));
    ensure_object(entry)
}

/// The value as an object, replacing it with an empty one if it is not.
pub fn ensure_object<'p, 'a>(v: &'p mut Value<'a>) -> &'p mut Map<'a> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        // Just made an object above.
        _ => unreachable!(),
    }
}

/// `spec.<field>` as a mutable list, created when missing.
pub fn list_mut<'p, 'a>(pod: &'p mut Value<'a>, field: &str) -> &'p mut Vec<Value<'a>> {
    let spec = ensure_object(pod).get_or_insert_with("spec", || Value::Object(Map::new()));
    let entry = ensure_object(spec).get_or_insert_with(field, || Value::Array(List::default()));
    if !entry.is_array() {
        *entry = Value::Array(List::default());
    }
    match entry {
        Value::Array(a) => a,
        // Just made an array above.
        _ => unreachable!(),
    }
}

/// `spec.<field>` as a list of containers (empty when missing).
pub fn containers<'p, 'a>(pod: &'p Value<'a>, field: &str) -> &'p [Value<'a>] {
    pod.get("spec")
        .and_then(|s| s.get(field))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

pub fn containers_mut<'p, 'a>(
    pod: &'p mut Value<'a>,
    field: &str,
) -> Option<&'p mut Vec<Value<'a>>> {
    pod.get_mut("spec")?.get_mut(field)?.as_array_mut()
}

pub fn name_of<'p>(c: &'p Value) -> &'p str {
    c.get("name").and_then(Value::as_str).unwrap_or_default()
}

/// `metadata.annotations[key]`, when it is a string.
pub fn annotation<'p>(pod: &'p Value, key: &str) -> Option<&'p str> {
    metadata_map(pod, "annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// `metadata.labels[key]`, when it is a string.
pub fn label<'p>(pod: &'p Value, key: &str) -> Option<&'p str> {
    metadata_map(pod, "labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// Whether `spec.<field>` has a container named `name`.
pub fn has_container(pod: &Value, field: &str, name: &str) -> bool {
    containers(pod, field).iter().any(|c| name_of(c) == name)
}

/// The container `name` of `spec.<field>`.
pub fn container_mut<'p, 'a>(
    pod: &'p mut Value<'a>,
    field: &str,
    name: &str,
) -> Option<&'p mut Value<'a>> {
    containers_mut(pod, field)?
        .iter_mut()
        .find(|c| name_of(c) == name)
}

/// Istio's `FindSidecar`-style lookup: the container `name`, among the containers first,
/// then among the init containers (where a native sidecar is).
pub fn find_container_mut<'p, 'a>(pod: &'p mut Value<'a>, name: &str) -> Option<&'p mut Value<'a>> {
    let field = if has_container(pod, "containers", name) {
        "containers"
    } else {
        "initContainers"
    };
    container_mut(pod, field, name)
}

/// Moves the container `name` from the containers to the end of the init containers.
pub fn move_container_to_init(pod: &mut Value, name: &str) {
    let Some(list) = containers_mut(pod, "containers") else {
        return;
    };
    let Some(i) = list.iter().position(|c| name_of(c) == name) else {
        return;
    };
    let c = list.remove(i);
    list_mut(pod, "initContainers").push(c);
}

/// The `env` list of the container `name` (found as [`find_container_mut`] finds it),
/// created when missing.
pub fn container_env_mut<'p, 'a>(
    pod: &'p mut Value<'a>,
    name: &str,
) -> Option<&'p mut Vec<Value<'a>>> {
    let container = ensure_object(find_container_mut(pod, name)?);
    let env = container.get_or_insert_with("env", || Value::Array(List::default()));
    if !env.is_array() {
        *env = Value::Array(List::default());
    }
    env.as_array_mut()
}

/// Istio's `GetDeployMetaFromPod`: name, namespace and owner kind of the workload.
pub fn deploy_meta(pod: &Value<'_>, namespace: &str) -> DeployMeta {
    let name = metadata_str(pod, "name");
    let mut meta = DeployMeta {
        name: name.to_string(),
        namespace: namespace.to_string(),
        api_version: "v1".into(),
        kind: "Pod".into(),
    };
    let labels = metadata_map(pod, "labels");
    let label = |k: &str| {
        labels
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    if !metadata_str(pod, "generateName").is_empty() {
        let controller = pod
            .get("metadata")
            .and_then(|m| m.get("ownerReferences"))
            .and_then(Value::as_array)
            .and_then(|refs| {
                refs.iter()
                    .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
            });
        if let Some(owner) = controller {
            let field = |k: &str| owner.get(k).and_then(Value::as_str).unwrap_or_default();
            let (owner_name, kind) = (field("name"), field("kind"));
            meta.api_version = field("apiVersion").to_string();
            meta.kind = kind.to_string();
            meta.name = owner_name.to_string();
            let hash = label("pod-template-hash");
            let rollout_hash = label("rollouts-pod-template-hash");
            if kind == "ReplicaSet" && !hash.is_empty() && owner_name.ends_with(hash) {
                meta.name = trim_suffix(owner_name, &format!("-{hash}")).to_string();
                meta.kind = "Deployment".into();
            } else if kind == "ReplicaSet"
                && !rollout_hash.is_empty()
                && owner_name.ends_with(rollout_hash)
            {
                meta.name = trim_suffix(owner_name, &format!("-{rollout_hash}")).to_string();
                meta.kind = "Rollout".into();
                meta.api_version = "v1alpha1".into();
            } else if kind == "ReplicationController" && !label("deploymentconfig").is_empty() {
                meta.name = label("deploymentconfig").to_string();
                meta.kind = "DeploymentConfig".into();
            } else if kind == "Job"
                && let Some(cron) = cron_job_name(owner_name)
            {
                meta.name = cron.to_string();
                meta.kind = "CronJob".into();
                meta.api_version = "batch/v1".into();
            }
        }
    }
    if meta.name.is_empty() {
        meta.name = name.to_string();
    }
    meta
}

fn trim_suffix<'a>(s: &'a str, suffix: &str) -> &'a str {
    s.strip_suffix(suffix).unwrap_or(s)
}

/// `(.+)-\d{8,10}$`: a Job created by a CronJob carries a scheduled-time suffix.
fn cron_job_name(job: &str) -> Option<&str> {
    let (prefix, digits) = job.rsplit_once('-')?;
    let ok = (8..=10).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    // The greedy `(.+)` may itself end in '-', which rsplit_once keeps in the prefix.
    if ok && !prefix.is_empty() {
        Some(prefix)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::json::from_json as json;

    #[test]
    fn shape_errors_name_the_field() {
        assert!(
            check_shape(&json!({"metadata": {"labels": {"a": 1}}}))
                .unwrap_err()
                .contains("metadata.labels.a")
        );
        assert!(
            check_shape(&json!({"spec": {"containers": "x"}}))
                .unwrap_err()
                .contains("spec.containers")
        );
        assert!(
            check_shape(&json!({"spec": {"containers": [{"name": "a", "env": [1]}]}}))
                .unwrap_err()
                .contains("spec.containers[0].env[0]")
        );
        assert!(check_shape(&json!([])).is_err());
        assert!(
            check_shape(
                &json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}})
            )
            .is_ok()
        );
    }

    #[test]
    fn container_list_items_that_are_not_objects_are_refused_before_they_are_read() {
        // Read from text, as the policy reads a request: the containers' lists are still
        // their text when the shape is checked.
        for (list, at) in [
            (r#""env": [{"name": "A"}, 1]"#, "spec.containers[0].env[1]"),
            (r#""ports": ["80"]"#, "spec.containers[0].ports[0]"),
            (
                r#""volumeMounts": [{"name": "v"}, [{"a": 1}], null]"#,
                "spec.containers[0].volumeMounts[1]",
            ),
        ] {
            let text = format!(r#"{{"spec": {{"containers": [{{"name": "a", {list}}}]}}}}"#);
            let pod = Value::parse(&text).unwrap();
            let Some(Value::Array(items)) = pod["spec"]["containers"][0]
                .as_object()
                .and_then(|c| c.values().nth(1))
            else {
                panic!("a list");
            };
            assert!(!items.is_read(), "{list}: still text");
            let e = check_shape(&pod).unwrap_err();
            assert!(e.contains(at), "{list}: {e}");
            assert!(!items.is_read(), "{list}: scanned, not read");
        }
        let text =
            r#"{"spec": {"containers": [{"name": "a", "env": [{"name": "A", "value": "[1]"}]}]}}"#;
        assert!(check_shape(&Value::parse(text).unwrap()).is_ok());
    }

    #[test]
    fn deploy_meta_of_a_bare_pod() {
        let m = deploy_meta(&json!({"metadata": {"name": "p"}}), "ns");
        assert_eq!(
            m,
            DeployMeta {
                name: "p".into(),
                namespace: "ns".into(),
                api_version: "v1".into(),
                kind: "Pod".into()
            }
        );
    }

    #[test]
    fn deploy_meta_of_a_deployment_pod() {
        let pod = json!({"metadata": {
            "generateName": "web-7d4b9c-",
            "labels": {"pod-template-hash": "7d4b9c"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c", "controller": true}]
        }});
        let m = deploy_meta(&pod, "ns");
        assert_eq!(
            (m.name.as_str(), m.kind.as_str(), m.api_version.as_str()),
            ("web", "Deployment", "apps/v1")
        );
    }

    #[test]
    fn deploy_meta_of_cronjob_and_others() {
        let owner = |kind: &str, name: &str| {
            json!({"metadata": {"generateName": "x-", "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": kind, "name": name, "controller": true}]}})
        };
        let m = deploy_meta(&owner("Job", "backup-28000000"), "ns");
        assert_eq!((m.name.as_str(), m.kind.as_str()), ("backup", "CronJob"));
        let m = deploy_meta(&owner("Job", "backup-1"), "ns");
        assert_eq!((m.name.as_str(), m.kind.as_str()), ("backup-1", "Job"));
        let m = deploy_meta(&owner("StatefulSet", "db"), "ns");
        assert_eq!((m.name.as_str(), m.kind.as_str()), ("db", "StatefulSet"));
        // Without generateName the owner is not consulted.
        let m = deploy_meta(
            &json!({"metadata": {"name": "p", "ownerReferences": [{"kind": "Job", "name": "j", "controller": true}]}}),
            "ns",
        );
        assert_eq!(m.kind, "Pod");
    }
}
