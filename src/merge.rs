//! Kubernetes strategic merge of a partial Pod onto a Pod, for the Pod fields injection
//! templates touch: maps merge recursively (the patch wins, `null` deletes), lists of named
//! things merge by their merge key, every other list is replaced.

use std::collections::{HashMap, VecDeque};

use crate::json::{Map, Value};

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

/// How merged lists are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// As Kubernetes' strategic merge orders them: the patch's items first, in patch order.
    Istio,
    /// The original's items keep their positions, new items are appended, so that the
    /// JSONPatch of the change only adds. Used for lists the user wrote (volumes, pull
    /// secrets, the app containers' env, mounts and ports).
    KeepOriginal,
    /// `KeepOriginal`, also inside Istio's own containers.
    KeepAll,
}

/// Merges `patch` onto `target` in place, ordering every list as Kubernetes does.
pub fn merge<'a>(target: &mut Value<'a>, patch: Value<'a>) {
    merge_value(target, patch, Order::Istio);
}

/// Merges a partial Pod onto a Pod: the user's lists keep their order (new items are
/// appended); inside Istio's own containers (istio-proxy, istio-init, istio-validation) lists
/// are ordered as Kubernetes' strategic merge orders them.
pub fn merge_onto_pod<'a>(pod: &mut Value<'a>, patch: Value<'a>) {
    merge_value(pod, patch, Order::KeepOriginal);
}

/// Merges keeping the original's order everywhere, Istio's containers included: used when
/// re-injecting, where the Pod's order is the previous injection's.
pub fn merge_keeping_order<'a>(pod: &mut Value<'a>, patch: Value<'a>) {
    merge_value(pod, patch, Order::KeepAll);
}

fn merge_value<'a>(target: &mut Value<'a>, patch: Value<'a>, order: Order) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => merge_maps(t, p, order),
        (t, p) => *t = p,
    }
}

fn merge_maps<'a>(target: &mut Map<'a>, patch: Map<'a>, order: Order) {
    for (key, pv) in patch {
        if pv.is_null() {
            target.remove(&key);
            continue;
        }
        match target.get_mut(&key) {
            Some(tv) => match (tv, pv) {
                (Value::Object(t), Value::Object(p)) => merge_maps(t, p, order),
                (Value::Array(t), Value::Array(p)) => {
                    merge_lists(&key, t, p.into_iter().collect(), order)
                }
                (tv, pv) => *tv = pv,
            },
            None => {
                target.insert(key, strip_nulls(pv));
            }
        }
    }
}

/// Kubernetes' `mergeSlice` for lists with a merge key: items present in both are merged,
/// new patch items are added. With `Order::Istio` the result is ordered as the API machinery
/// orders it — the patch's items in patch order, with the original's other items
/// interleaved where the original had them relative to the patch items it also had. With
/// `Order::KeepOriginal` the original's items keep their positions and new ones follow.
fn merge_lists<'a>(field: &str, target: &mut Vec<Value<'a>>, patch: Vec<Value<'a>>, order: Order) {
    let Some(key) = merge_key(field) else {
        *target = patch;
        return;
    };
    let pairing = pair_by_key(key, target, &patch);
    let mut original: Vec<Option<Value<'a>>> =
        std::mem::take(target).into_iter().map(Some).collect();

    // Patch items in patch order, merged onto their original counterpart when there is one,
    // with that item's position.
    let mut patch_items: Vec<(Value<'a>, Option<usize>)> = Vec::with_capacity(patch.len());
    for (p, oi) in patch.into_iter().zip(pairing) {
        if p.get(key).is_none_or(Value::is_null) {
            // No merge key (the API server would have refused such an item): added once,
            // and not again when an equal item is already there.
            let p = strip_nulls(p);
            if !original.iter().flatten().any(|o| *o == p)
                && !patch_items.iter().any(|(i, _)| *i == p)
            {
                patch_items.push((p, None));
            }
            continue;
        }
        match oi.and_then(|oi| original[oi].take().map(|e| (oi, e))) {
            Some((oi, mut existing)) => {
                merge_item(field, &mut existing, p, order);
                patch_items.push((existing, Some(oi)));
            }
            None => patch_items.push((strip_nulls(p), None)),
        }
    }

    let mut out = Vec::with_capacity(original.len() + patch_items.len());
    if order != Order::Istio {
        let mut by_position: Vec<Option<Value<'a>>> = original;
        let mut new_items = Vec::new();
        for (item, oi) in patch_items {
            match oi {
                Some(oi) => by_position[oi] = Some(item),
                None => new_items.push(item),
            }
        }
        out.extend(by_position.into_iter().flatten());
        out.extend(new_items);
    } else {
        // mergeSortedSlice(serverOnly, patchItems, original): a server-only item goes first
        // only when both it and the next patch item were in the original and it came earlier.
        let mut server_only = original
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (v, i)))
            .peekable();
        let mut patch_items = patch_items.into_iter().peekable();
        loop {
            let take_server = match (server_only.peek(), patch_items.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((_, l)), Some((_, r))) => r.is_some_and(|r| *l < r),
            };
            let next = if take_server {
                server_only.next().map(|(v, _)| v)
            } else {
                patch_items.next().map(|(v, _)| v)
            };
            out.extend(next);
        }
    }
    *target = out;
}

/// For each patch item, the original item it pairs with: the n-th patch item with a key
/// pairs with the n-th original item with that key (a template may repeat an env name;
/// pairing by occurrence keeps re-injection stable). Short lists (the usual case) are
/// searched; long ones, as hostile Pods may have, are indexed by the keys' JSON text.
fn pair_by_key<'a>(key: &str, original: &[Value<'a>], patch: &[Value<'a>]) -> Vec<Option<usize>> {
    fn merge_key_of<'v, 'a>(item: &'v Value<'a>, key: &str) -> Option<&'v Value<'a>> {
        item.get(key).filter(|k| !k.is_null())
    }
    let key_of = |item| merge_key_of(item, key);
    if original.len() * patch.len() > 64 {
        let mut positions: HashMap<String, VecDeque<usize>> = HashMap::new();
        for (i, item) in original.iter().enumerate() {
            if let Some(k) = key_of(item) {
                positions.entry(k.to_json()).or_default().push_back(i);
            }
        }
        return patch
            .iter()
            .map(|p| {
                let k = key_of(p)?;
                positions
                    .get_mut(&k.to_json())
                    .and_then(VecDeque::pop_front)
            })
            .collect();
    }
    // Unpaired originals' keys; a paired one's is taken out.
    let mut keys: Vec<Option<&Value<'a>>> = original.iter().map(key_of).collect();
    patch
        .iter()
        .map(|p| {
            let k = key_of(p)?;
            let i = keys
                .iter()
                .position(|ok| ok.is_some_and(|ok| same_key(ok, k)))?;
            keys[i] = None;
            Some(i)
        })
        .collect()
}

/// Whether two merge keys have the same JSON text, as the index compares them.
fn same_key(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Number(x), Value::Number(y)) if !x.is_f64() && !y.is_f64() => x == y,
        // Not `a == b`: floats compare equal when their text differs (0.0 and -0.0).
        _ => a.to_json() == b.to_json(),
    }
}

fn merge_item<'a>(field: &str, existing: &mut Value<'a>, patch: Value<'a>, order: Order) {
    if retains_keys(field)
        && let (Value::Object(e), Value::Object(pm)) = (&mut *existing, &patch)
    {
        e.retain(|k, _| pm.contains_key(k));
    }
    // Istio's own containers are Istio's to order; the user's are not.
    let inner = if order == Order::KeepOriginal
        && field.ends_with("ontainers")
        && matches!(
            existing.get("name").and_then(Value::as_str),
            Some("istio-proxy" | "istio-init" | "istio-validation")
        ) {
        Order::Istio
    } else {
        order
    };
    merge_value(existing, patch, inner);
}

/// A patch's `null` means "delete"; added as new, nulls simply do not appear.
fn strip_nulls(mut v: Value) -> Value {
    strip_nulls_in_place(&mut v);
    v
}

pub(crate) fn strip_nulls_in_place(v: &mut Value) {
    match v {
        Value::Object(m) => {
            // One pass; the (rare) nulls are removed after it.
            let mut has_null = false;
            for v in m.values_mut() {
                match v {
                    Value::Null => has_null = true,
                    Value::Object(_) | Value::Array(_) => strip_nulls_in_place(v),
                    _ => {}
                }
            }
            if has_null {
                m.retain(|_, v| !v.is_null());
            }
        }
        Value::Array(a) => {
            for v in a.iter_mut() {
                if let Value::Object(_) | Value::Array(_) = v {
                    strip_nulls_in_place(v);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::json::from_json as json;

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
        merge(&mut pod, patch);
        // The patch's order wins for the items it names (Y before X); `app`, which only the
        // original has, keeps its place before the first item they share.
        assert_eq!(
            pod,
            json!({"spec": {"containers": [
                {"name": "app", "image": "a"},
                {"name": "istio-proxy", "image": "proxy", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "3"}], "args": ["b", "c"]},
                {"name": "new", "image": "n"}
            ]}})
        );
    }

    #[test]
    fn maps_merge_and_null_deletes() {
        let mut pod = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        merge(
            &mut pod,
            json!({"metadata": {"labels": {"b": null, "c": "3"}, "annotations": {"x": "y"}}}),
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
            json!({"spec": {"volumes": [{"name": "v", "configMap": {"name": "c"}}]}}),
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
            json!({"volumeMounts": [{"name": "b", "mountPath": "/a"}, {"name": "c", "mountPath": "/c"}], "ports": [{"containerPort": 80, "protocol": "TCP"}], "command": ["y"]}),
        );
        assert_eq!(
            c,
            json!({"volumeMounts": [{"name": "b", "mountPath": "/a"}, {"name": "c", "mountPath": "/c"}], "ports": [{"containerPort": 80, "name": "x", "protocol": "TCP"}], "command": ["y"]})
        );
    }

    #[test]
    fn new_patch_items_come_before_original_only_items() {
        // As the API machinery orders them: Istio's volumes come first, then the user's.
        let mut pod = json!({"spec": {"volumes": [{"name": "data"}]}});
        merge(
            &mut pod,
            json!({"spec": {"volumes": [{"name": "a"}, {"name": "b"}]}}),
        );
        assert_eq!(
            pod,
            json!({"spec": {"volumes": [{"name": "a"}, {"name": "b"}, {"name": "data"}]}})
        );
    }

    #[test]
    fn onto_a_pod_the_users_lists_keep_their_order_and_new_items_are_appended() {
        let mut pod = json!({"spec": {
            "volumes": [{"name": "data"}, {"name": "shared", "emptyDir": {}}],
            "containers": [
                {"name": "app", "env": [{"name": "A"}]},
                {"name": "istio-proxy", "image": "auto", "ports": [{"containerPort": 8080}]}
            ]
        }});
        merge_onto_pod(
            &mut pod,
            json!({"spec": {
                "volumes": [{"name": "new"}, {"name": "shared", "emptyDir": {"medium": "Memory"}}],
                "containers": [
                    {"name": "istio-proxy", "image": "proxy", "ports": [{"containerPort": 15090}]},
                    {"name": "app", "env": [{"name": "B"}]}
                ]
            }}),
        );
        assert_eq!(
            pod,
            json!({"spec": {
                "volumes": [{"name": "data"}, {"name": "shared", "emptyDir": {"medium": "Memory"}}, {"name": "new"}],
                "containers": [
                    {"name": "app", "env": [{"name": "A"}, {"name": "B"}]},
                    // Inside Istio's own container, Kubernetes' order: the patch's items first.
                    {"name": "istio-proxy", "image": "proxy", "ports": [{"containerPort": 15090}, {"containerPort": 8080}]}
                ]
            }})
        );
    }

    #[test]
    fn original_only_items_keep_their_place_among_shared_items() {
        let mut l = json!({"env": [{"name": "A"}, {"name": "OLD"}, {"name": "B"}]});
        merge(
            &mut l,
            json!({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C"}]}),
        );
        assert_eq!(
            l,
            json!({"env": [{"name": "A", "value": "1"}, {"name": "OLD"}, {"name": "B", "value": "2"}, {"name": "C"}]})
        );
    }

    #[test]
    fn empty_patch_list_changes_nothing() {
        let mut pod = json!({"spec": {"initContainers": [{"name": "a"}]}});
        merge(&mut pod, json!({"spec": {"initContainers": []}}));
        assert_eq!(pod, json!({"spec": {"initContainers": [{"name": "a"}]}}));
    }
}
