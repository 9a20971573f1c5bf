//! The injected containers kept as template trees until the answer is written.
//!
//! Built as JSON values, merged onto the Pod and written out, Istio's containers cost more
//! than everything else `validate` does with a small Pod. On a first injection with the
//! built-in `sidecar` template and none of the Pod's containers named like them, the merge
//! of a container is an append and nothing later reads its fields. So the rendered tree is
//! kept aside, the Pod gets a placeholder `{"name": ...}` appended in its place (names are
//! all the rest of the injection looks at), and the writer writes the tree where the
//! placeholder is (`pod_text::write_pod`). Volumes likewise, when none of the Pod's has a
//! template volume's name; nothing reads those after the merge, so the writer appends
//! them to the Pod's volumes without placeholders. What injection adds to the proxy's env
//! afterwards (probers, Prometheus) lands on the placeholder and is moved onto the tree by
//! [`Prerendered::absorb`].
//!
//! `evaluate` never does this: its answer is the reference the `validate` path is tested
//! against, field for field.

use serde_json::Value;

use crate::pod;
use crate::template::node::{Node, NodeMap};

/// Proxy env entries the injection reads or rewrites after rendering: a template that sets
/// one keeps its containers as values. (The cluster and network entries, which injection
/// moves to the end of the env, are the caller's to check: see `inject`.)
const ENV_READ_LATER: [&str; 2] = ["ENVOY_SECURE_MERGED_METRICS_PORT", crate::probes::ENV];

/// The containers and volumes a template rendered, by name, kept as trees.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prerendered {
    /// The template's init containers, then its containers.
    pub containers: Vec<(String, NodeMap)>,
    /// How many of `containers` are init containers.
    init_containers: usize,
    /// The template's lists taken out (even empty: merging would have added it).
    lists: Vec<&'static str>,
    pub volumes: Vec<(String, NodeMap)>,
}

impl Prerendered {
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// The tree of the container named `name`, if it is one.
    pub fn get(&self, name: &str) -> Option<&NodeMap> {
        self.containers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c)
    }

    /// Splits a rendered template: its containers (and volumes) are taken out, kept here as
    /// trees; [`Prerendered::place`] puts their placeholders in the Pod. Returns the rest of
    /// the template as a value. Nothing is kept aside (and the whole template is a value)
    /// when the Pod already has a container of one of those names (its fields are merged
    /// with the template's), or when the proxy's env holds an entry injection reads or
    /// rewrites later.
    pub fn split(template: Node, pod: &Value) -> (Value, Prerendered) {
        let Node::Obj(mut top) = template else {
            return (template.into_value(), Prerendered::default());
        };
        let names = |fields: &[&str]| -> Vec<&str> {
            fields
                .iter()
                .flat_map(|f| pod::containers(pod, f))
                .map(pod::name_of)
                .collect()
        };
        let pod_containers = names(&["containers", "initContainers"]);
        if !splittable(&top, &pod_containers) {
            return (Node::Obj(top).into_value(), Prerendered::default());
        }
        let pod_volumes = names(&["volumes"]);
        let mut kept = Prerendered::default();
        if let Some(Node::Obj(spec)) = top.get_mut("spec") {
            for field in ["initContainers", "containers"] {
                let Some(Node::Arr(list)) = spec.remove(field) else {
                    continue;
                };
                kept.lists.push(field);
                for item in list {
                    let Node::Obj(mut container) = item else {
                        continue;
                    };
                    let name = container
                        .get("name")
                        .and_then(Node::as_str)
                        .unwrap_or_default()
                        .to_string();
                    normalize(&mut container);
                    kept.containers.push((name, container));
                }
                if field == "initContainers" {
                    kept.init_containers = kept.containers.len();
                }
            }
            // Volumes merge by name too: an append, unless the Pod has one of the names.
            if let Some(Node::Arr(list)) = spec.get("volumes")
                && list.len() <= MAX_KEPT_VOLUMES
                && list.iter().all(|v| volume_name_free(v, &pod_volumes))
                && names_unique(list.iter())
                && let Some(Node::Arr(list)) = spec.remove("volumes")
            {
                kept.lists.push("volumes");
                for item in list {
                    if let Node::Obj(mut volume) = item {
                        let name = volume
                            .get("name")
                            .and_then(Node::as_str)
                            .unwrap_or_default()
                            .to_string();
                        volume.strip_nulls();
                        kept.volumes.push((name, volume));
                    }
                }
            }
        }
        (Node::Obj(top).into_value(), kept)
    }

    /// The names kept, by Pod list, in template order.
    pub fn names(&self, field: &str) -> Option<impl Iterator<Item = &str>> {
        let (kept, split) = (&self.containers, self.init_containers);
        let list = match field {
            "initContainers" => &kept[..split],
            "containers" => &kept[split..],
            "volumes" => &self.volumes[..],
            _ => return None,
        };
        self.lists
            .contains(&field)
            .then(|| list.iter().map(|(n, _)| n.as_str()))
    }

    /// Appends a placeholder for each kept container to its list in `pod`, where merging
    /// the template would have appended it (none of the Pod's containers has its name).
    /// Kept volumes get none: nothing reads the Pod's volumes after the merge, and the
    /// writer appends them to the list, made here if the Pod has none.
    pub fn place(&self, pod: &mut Value) {
        if self.lists.contains(&"volumes") {
            pod::list_mut(pod, "volumes");
        }
        for field in ["initContainers", "containers"] {
            let names: Vec<&str> = match self.names(field) {
                Some(names) => names.collect(),
                None => continue,
            };
            let list = pod::list_mut(pod, field);
            for name in names {
                let mut placeholder = serde_json::Map::new();
                placeholder.insert("name".into(), name.into());
                list.push(Value::Object(placeholder));
            }
        }
    }

    /// Moves what injection added to each placeholder in `pod` (env entries, the only thing
    /// it adds) onto the kept tree, leaving the bare placeholder.
    pub fn absorb(&mut self, pod: &mut Value) {
        let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        for (name, container) in &mut self.containers {
            let Some(placeholder) = spec
                .iter_mut()
                .filter(|(f, _)| *f == "containers" || *f == "initContainers")
                .filter_map(|(_, list)| list.as_array_mut())
                .flat_map(|l| l.iter_mut())
                .find(|c| pod::name_of(c) == name.as_str())
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let added: Vec<(String, Value)> = std::mem::take(placeholder)
                .into_iter()
                .filter(|(k, _)| k != "name")
                .collect();
            placeholder.insert("name".into(), Value::String(name.clone()));
            for (key, value) in added {
                match (key.as_str(), container.get_mut("env"), value) {
                    ("env", Some(Node::Arr(env)), Value::Array(items)) => {
                        env.extend(items.into_iter().map(Node::Json));
                    }
                    (_, _, value) => {
                        container.remove(&key);
                        container.insert(key.into(), value.into());
                    }
                }
            }
        }
    }
}

/// A named object volume whose name no volume of the Pod has.
fn volume_name_free(volume: &Node, pod_volumes: &[&str]) -> bool {
    let Some(name) = volume
        .get("name")
        .and_then(Node::as_str)
        .filter(|n| !n.is_empty())
    else {
        return false;
    };
    matches!(volume, Node::Obj(_)) && !pod_volumes.contains(&name)
}

/// Whether the named items of a list have different names (each placeholder must stand for
/// one tree).
fn names_unique<'n>(list: impl IntoIterator<Item = &'n Node>) -> bool {
    let names: Vec<&str> = list
        .into_iter()
        .filter_map(|i| i.get("name").and_then(Node::as_str))
        .collect();
    names
        .iter()
        .enumerate()
        .all(|(i, n)| !names[i + 1..].contains(n))
}

/// Up to this many template volumes are kept as trees (a `userVolume` annotation can add
/// thousands; those go the way of values, and the name checks stay short).
const MAX_KEPT_VOLUMES: usize = 32;

/// No container of the template's names among the Pod's, no env entry read later.
fn splittable(template: &NodeMap, pod_containers: &[&str]) -> bool {
    let Some(spec) = template.get("spec") else {
        return true;
    };
    let taken = |name: &str| pod_containers.contains(&name);
    let lists: Vec<&Vec<Node>> = ["initContainers", "containers"]
        .iter()
        .filter_map(|f| match spec.get(f) {
            Some(Node::Arr(list)) => Some(list),
            _ => None,
        })
        .collect();
    let containers = || lists.iter().flat_map(|l| l.iter());
    names_unique(containers())
        && containers().all(|c| {
            let name = c.get("name").and_then(Node::as_str);
            let env_ok = match c.get("env") {
                None => true,
                Some(Node::Arr(env)) => env.iter().all(|e| {
                    e.get("name")
                        .and_then(Node::as_str)
                        .is_none_or(|n| !ENV_READ_LATER.contains(&n))
                }),
                Some(_) => false,
            };
            matches!(c, Node::Obj(_)) && name.is_some_and(|n| !n.is_empty() && !taken(n)) && env_ok
        })
}

/// What merging onto the Pod and `inject::normalize_injected` do to a container the
/// template added: nulls dropped (a merge patch's null deletes), env entries whose value is
/// empty lose it, empty lists go, and `resources` is always there.
fn normalize(container: &mut NodeMap) {
    container.strip_nulls();
    if let Some(Node::Arr(env)) = container.get_mut("env") {
        for entry in env.iter_mut() {
            match entry {
                Node::Obj(e) if e.get("value").and_then(Node::as_str) == Some("") => {
                    e.remove("value");
                }
                Node::Json(Value::Object(e))
                    if e.get("value").and_then(Value::as_str) == Some("") =>
                {
                    e.remove("value");
                }
                _ => {}
            }
        }
    }
    container.retain(|_, v| !v.is_empty_list());
    if container.get("resources").is_none() {
        container.insert(
            "resources".into(),
            Node::Json(Value::Object(Default::default())),
        );
    }
}
