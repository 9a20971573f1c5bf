//! Kubernetes strategic merge of a partial Pod onto a Pod, for the Pod fields injection
//! templates touch: maps merge recursively (the patch wins, `null` deletes), lists of named
//! things merge by their merge key, every other list is replaced.

use serde_json::{Map, Value};

/// The merge key of a list field of a Pod, by field name (Kubernetes' `patchMergeKey`).
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "imagePullSecrets"
        | "env"
        | "resourceClaims"
        | "schedulingGates" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "ports" => Some("containerPort"),
        "hostAliases" => Some("ip"),
        _ => None,
    }
}

/// Volumes use `retainKeys`: a merged volume keeps only the keys the patch names, so that a
/// volume source is replaced rather than combined with another.
fn retains_keys(field: &str) -> bool {
    field == "volumes"
}

/// Merges `patch` onto `target` in place.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => merge_maps(t, p),
        (t, p) => *t = p.clone(),
    }
}

fn merge_maps(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, pv) in patch {
        if pv.is_null() {
            target.remove(key);
            continue;
        }
        match target.get_mut(key) {
            Some(tv) => match (tv, pv) {
                (Value::Object(t), Value::Object(p)) => merge_maps(t, p),
                (Value::Array(t), Value::Array(p)) => merge_lists(key, t, p),
                (tv, pv) => *tv = pv.clone(),
            },
            None => {
                target.insert(key.clone(), strip_nulls(pv));
            }
        }
    }
}

fn merge_lists(field: &str, target: &mut Vec<Value>, patch: &[Value]) {
    let Some(key) = merge_key(field) else {
        *target = patch.to_vec();
        return;
    };
    for item in patch {
        let Some(id) = item.get(key) else {
            target.push(strip_nulls(item));
            continue;
        };
        match target.iter_mut().find(|t| t.get(key) == Some(id)) {
            Some(existing) => {
                if retains_keys(field)
                    && let (Value::Object(e), Value::Object(p)) = (&mut *existing, item)
                {
                    e.retain(|k, _| p.contains_key(k));
                }
                merge(existing, item);
            }
            None => target.push(strip_nulls(item)),
        }
    }
}

/// A patch's `null` means "delete"; added as new, nulls simply do not appear.
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name_and_append() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "app", "image": "a"},
            {"name": "istio-proxy", "image": "auto", "env": [{"name": "X", "value": "1"}], "args": ["a"]}
        ]}});
        let patch = json!({"spec": {"containers": [
            {"name": "istio-proxy", "image": "proxy", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "3"}], "args": ["b", "c"]},
            {"name": "new", "image": "n"}
        ]}});
        merge(&mut pod, &patch);
        assert_eq!(
            pod,
            json!({"spec": {"containers": [
                {"name": "app", "image": "a"},
                {"name": "istio-proxy", "image": "proxy", "env": [{"name": "X", "value": "3"}, {"name": "Y", "value": "2"}], "args": ["b", "c"]},
                {"name": "new", "image": "n"}
            ]}})
        );
    }

    #[test]
    fn maps_merge_and_null_deletes() {
        let mut pod = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        merge(
            &mut pod,
            &json!({"metadata": {"labels": {"b": null, "c": "3"}, "annotations": {"x": "y"}}}),
        );
        assert_eq!(
            pod,
            json!({"metadata": {"labels": {"a": "1", "c": "3"}, "annotations": {"x": "y"}}})
        );
    }

    #[test]
    fn volumes_retain_only_patch_keys() {
        let mut pod = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}});
        merge(
            &mut pod,
            &json!({"spec": {"volumes": [{"name": "v", "configMap": {"name": "c"}}]}}),
        );
        assert_eq!(
            pod,
            json!({"spec": {"volumes": [{"name": "v", "configMap": {"name": "c"}}]}})
        );
    }

    #[test]
    fn mounts_merge_by_path_ports_by_number_other_lists_replace() {
        let mut c = json!({"volumeMounts": [{"name": "a", "mountPath": "/a"}], "ports": [{"containerPort": 80, "name": "x"}], "command": ["x"]});
        merge(
            &mut c,
            &json!({"volumeMounts": [{"name": "b", "mountPath": "/a"}, {"name": "c", "mountPath": "/c"}], "ports": [{"containerPort": 80, "protocol": "TCP"}], "command": ["y"]}),
        );
        assert_eq!(
            c,
            json!({"volumeMounts": [{"name": "b", "mountPath": "/a"}, {"name": "c", "mountPath": "/c"}], "ports": [{"containerPort": 80, "name": "x", "protocol": "TCP"}], "command": ["y"]})
        );
    }

    #[test]
    fn empty_patch_list_changes_nothing() {
        let mut pod = json!({"spec": {"initContainers": [{"name": "a"}]}});
        merge(&mut pod, &json!({"spec": {"initContainers": []}}));
        assert_eq!(pod, json!({"spec": {"initContainers": [{"name": "a"}]}}));
    }
}
