//! What differs between a stored Pod and its re-injection, in meaning (see [`meaning`]), as
//! short lines a person reads in a PolicyReport: the most telling first (the proxy image,
//! the revision, then resources, args, env, ports, volumes, then the rest).

use crate::json::{Map, Value};

use super::meaning;
use crate::annotations::{REVISION, STATUS};
use crate::injection_status::SidecarInjectionStatus;

/// How telling a difference is; differences are listed in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    ProxyImage,
    Image,
    Revision,
    Resources,
    Args,
    Env,
    Ports,
    Volumes,
    Other,
}

#[derive(Debug)]
struct Difference {
    rank: Rank,
    /// Where within its rank: Istio's containers first, then by container.
    place: (u8, String),
    text: String,
}

/// The differences between the stored Pod and what injecting it again gives, most telling
/// first; empty when the two mean the same. Parts that are equal as they are need no
/// normalizing: most of a Pod comes back from re-injection untouched.
pub fn differences<'a>(stored: &Value<'a>, reinjected: &Value<'a>) -> Vec<String> {
    let mut found = Vec::new();
    let (old_rev, new_rev) = (revision(stored), revision(reinjected));
    if old_rev != new_rev {
        found.push(Difference {
            rank: Rank::Revision,
            place: (0, String::new()),
            text: format!("revision {} → {}", show_opt(old_rev), show_opt(new_rev)),
        });
    }
    let pods = Pair {
        old: stored,
        new: reinjected,
        old_context: meaning::PodContext::of(stored),
        new_context: meaning::PodContext::of(reinjected),
    };
    pods.compare(&mut found);
    most_telling_first(found)
}

/// By rank, then place, then text, through the module's one sort (`order.rs`): the key joins
/// them so that comparing keys compares them in turn (fixed-width rank and place, then the
/// container name ended by a NUL, which no name holds, then the text).
fn most_telling_first(found: Vec<Difference>) -> Vec<String> {
    let keyed: Vec<(String, String)> = found
        .into_iter()
        .map(|d| {
            let (rank, (group, name)) = (d.rank as u8, &d.place);
            let key = format!(
                "{}{}{name}\0{}",
                char::from(rank),
                char::from(*group),
                d.text
            );
            (key, d.text)
        })
        .collect();
    crate::order::sorted_by_key(keyed, |(key, _)| key)
        .into_iter()
        .map(|(_, text)| text)
        .collect()
}

/// The two Pods being compared.
struct Pair<'p, 'a> {
    old: &'p Value<'a>,
    new: &'p Value<'a>,
    old_context: meaning::PodContext,
    new_context: meaning::PodContext,
}

/// The revision a Pod was injected by: `sidecar.istio.io/status`'s, else `istio.io/rev`'s.
fn revision<'a>(pod: &Value<'a>) -> Option<String> {
    let annotations = pod.pointer("/metadata/annotations")?;
    annotations
        .get(STATUS)
        .and_then(Value::as_str)
        .and_then(|s| SidecarInjectionStatus::parse(s).ok()?.revision)
        .or_else(|| annotations.get(REVISION)?.as_str().map(str::to_string))
}

impl<'a> Pair<'_, 'a> {
    fn compare(&self, out: &mut Vec<Difference>) {
        for (key, a, b) in fields(self.old, self.new) {
            if a == b {
                continue;
            }
            match key {
                "metadata" => compare_metadata(a, b, out),
                "spec" => self.compare_spec(a, b, out),
                _ => {
                    let x = a.and_then(|v| meaning::pod_field(key, v));
                    let y = b.and_then(|v| meaning::pod_field(key, v));
                    other(out, key, x.as_ref(), y.as_ref())
                }
            }
        }
    }

    fn compare_spec(
        &self,
        old: Option<&Value<'a>>,
        new: Option<&Value<'a>>,
        out: &mut Vec<Difference>,
    ) {
        let empty = Value::Object(Map::new());
        let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
        for (key, a, b) in fields(old, new) {
            if a == b {
                continue;
            }
            match key {
                "containers" | "initContainers" => {
                    let init = key == "initContainers";
                    for (name, x, y) in pair_by(a, b, "name") {
                        let x = x.map(|c| meaning::container(c, &self.old_context));
                        let y = y.map(|c| meaning::container(c, &self.new_context));
                        if x == y {
                            continue;
                        }
                        let who = if init {
                            format!("init container {name}")
                        } else {
                            name.clone()
                        };
                        let place = (istio_rank(&name), who.clone());
                        match (x, y) {
                            (Some(x), Some(y)) => compare_container(&name, &who, &x, &y, out),
                            (x, y) => push(
                                out,
                                Rank::Other,
                                place,
                                format!("{who}: {}", presence(x.as_ref(), y.as_ref())),
                            ),
                        }
                    }
                }
                "volumes" => {
                    for (name, x, y) in pair_by(a, b, "name") {
                        let (x, y) = (x.and_then(meaning::volume), y.and_then(meaning::volume));
                        if x == y {
                            continue;
                        }
                        let text = format!("volume {name}: {}", change(x.as_ref(), y.as_ref()));
                        push(out, Rank::Volumes, (9, name), text);
                    }
                }
                _ => {
                    let x = a.and_then(|v| meaning::spec_field(old, key, v));
                    let y = b.and_then(|v| meaning::spec_field(new, key, v));
                    other(out, &format!("spec.{key}"), x.as_ref(), y.as_ref())
                }
            }
        }
    }
}

fn compare_metadata<'a>(
    old: Option<&Value<'a>>,
    new: Option<&Value<'a>>,
    out: &mut Vec<Difference>,
) {
    let empty = Value::Object(Map::new());
    let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    for (key, a, b) in fields(old, new) {
        if a == b {
            continue;
        }
        let word = match key {
            "labels" => "label",
            "annotations" => "annotation",
            _ => {
                let x = a.and_then(|v| meaning::metadata_field(key, v));
                let y = b.and_then(|v| meaning::metadata_field(key, v));
                other(out, &format!("metadata.{key}"), x.as_ref(), y.as_ref());
                continue;
            }
        };
        let (a, b) = (a.unwrap_or(&empty), b.unwrap_or(&empty));
        for (name, x, y) in fields(a, b) {
            // Bookkeeping: what it says that matters (the revision) is compared apart, the
            // rest is what the Pod itself shows.
            if word == "annotation" && (name == STATUS || name == REVISION) {
                continue;
            }
            if x != y {
                push(
                    out,
                    Rank::Other,
                    (3, String::new()),
                    format!("{word} {name}: {} → {}", show(x), show(y)),
                );
            }
        }
    }
}

fn compare_container<'a>(
    name: &str,
    who: &str,
    old: &Value<'a>,
    new: &Value<'a>,
    out: &mut Vec<Difference>,
) {
    let place = (istio_rank(name), who.to_string());
    for (key, a, b) in fields(old, new) {
        if a == b {
            continue;
        }
        let mut add = |rank, text| push(out, rank, place.clone(), text);
        match key {
            "image" => add(
                if name == "istio-proxy" {
                    Rank::ProxyImage
                } else {
                    Rank::Image
                },
                format!("{who} image: {} → {}", show(a), show(b)),
            ),
            "resources" => add(
                Rank::Resources,
                format!("{who} resources: {}", leaves_opt(a, b)),
            ),
            "args" | "command" => add(Rank::Args, format!("{who} {key}: {}", list_change(a, b))),
            "env" => {
                for (var, x, y) in pair_by(a, b, "name") {
                    add(
                        Rank::Env,
                        format!("{who} env {var}: {} → {}", env_value(x), env_value(y)),
                    );
                }
            }
            "ports" => {
                for (port, x, y) in pair_by(a, b, "containerPort") {
                    add(Rank::Ports, format!("{who} port {port}: {}", change(x, y)));
                }
            }
            "volumeMounts" => {
                for (path, x, y) in pair_by(a, b, "mountPath") {
                    add(
                        Rank::Volumes,
                        format!("{who} mount {path}: {}", change(x, y)),
                    );
                }
            }
            _ => add(Rank::Other, format!("{who} {key}: {}", leaves_opt(a, b))),
        }
    }
}

/// Istio's own containers come first.
fn istio_rank(name: &str) -> u8 {
    match name {
        "istio-proxy" => 0,
        "istio-init" => 1,
        "istio-validation" => 2,
        _ => 5,
    }
}

fn push(out: &mut Vec<Difference>, rank: Rank, place: (u8, String), text: String) {
    out.push(Difference {
        rank,
        place,
        text: shorten(&text, 240),
    });
}

/// A field compared as a whole, outside the parts above.
fn other<'a>(out: &mut Vec<Difference>, path: &str, a: Option<&Value<'a>>, b: Option<&Value<'a>>) {
    if a != b {
        push(
            out,
            Rank::Other,
            (8, path.to_string()),
            format!("{path}: {}", leaves_opt(a, b)),
        );
    }
}

/// The fields of two objects side by side, by key: `(key, a's value, b's value)`. Sorted
/// and merged, not looked up key by key: a Pod may have tens of thousands of annotations.
#[allow(clippy::type_complexity)]
fn fields<'v, 'a>(
    a: &'v Value<'a>,
    b: &'v Value<'a>,
) -> Vec<(&'v str, Option<&'v Value<'a>>, Option<&'v Value<'a>>)> {
    let sorted = |v: &'v Value<'a>| {
        let fields: Vec<(&'v str, &'v Value<'a>)> = v
            .as_object()
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        crate::order::sorted_by_key(fields, |f| f.0)
    };
    let (a, b) = (sorted(a), sorted(b));
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let order = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.0.cmp(y.0),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                out.push((a[i].0, Some(a[i].1), None));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push((b[j].0, None, Some(b[j].1)));
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((a[i].0, Some(a[i].1), Some(b[j].1)));
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// The items of two lists paired by a key field, those that differ only; items without the
/// key are paired by position.
#[allow(clippy::type_complexity)]
fn pair_by<'v, 'a>(
    a: Option<&'v Value<'a>>,
    b: Option<&'v Value<'a>>,
    key: &str,
) -> Vec<(String, Option<&'v Value<'a>>, Option<&'v Value<'a>>)> {
    let items = |v: Option<&'v Value<'a>>| -> Vec<(String, &'v Value<'a>)> {
        v.and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let k = match item.get(key) {
                            Some(Value::String(s)) => s.to_string(),
                            Some(other) => other.to_json(),
                            None => format!("#{i}"),
                        };
                        (k, item)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (old, new) = (items(a), items(b));
    let mut names: Vec<String> = Vec::new();
    for (k, _) in old.iter().chain(&new) {
        if !names.contains(k) {
            names.push(k.clone());
        }
    }
    let find = |list: &[(String, &'v Value<'a>)], k: &str| {
        list.iter().find(|(n, _)| n == k).map(|(_, v)| *v)
    };
    names
        .into_iter()
        .map(|k| {
            let (x, y) = (find(&old, &k), find(&new, &k));
            (k, x, y)
        })
        .filter(|(_, x, y)| x != y)
        .collect()
}

fn presence<'a>(a: Option<&Value<'a>>, b: Option<&Value<'a>>) -> &'static str {
    match (a, b) {
        (None, Some(_)) => "would be added",
        (Some(_), None) => "would be removed",
        _ => "differs",
    }
}

/// An item added, removed, or its fields that differ.
fn change<'a>(a: Option<&Value<'a>>, b: Option<&Value<'a>>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => leaves(a, b),
        _ => presence(a, b).to_string(),
    }
}

fn leaves_opt<'a>(a: Option<&Value<'a>>, b: Option<&Value<'a>>) -> String {
    let null = Value::Null;
    leaves(a.unwrap_or(&null), b.unwrap_or(&null))
}

/// The leaves that differ, as `path old → new`, comma-separated.
fn leaves<'a>(a: &Value<'a>, b: &Value<'a>) -> String {
    let mut changes = Vec::new();
    collect_leaves(Some(a), Some(b), String::new(), &mut changes);
    changes.join(", ")
}

fn collect_leaves<'a>(
    a: Option<&Value<'a>>,
    b: Option<&Value<'a>>,
    path: String,
    out: &mut Vec<String>,
) {
    // An object on one side only is shown by its leaves too.
    let empty = Value::Object(Map::new());
    let (a, b) = match (a, b) {
        (Some(x @ Value::Object(_)), None | Some(Value::Null)) => (Some(x), Some(&empty)),
        (None | Some(Value::Null), Some(y @ Value::Object(_))) => (Some(&empty), Some(y)),
        other => other,
    };
    match (a, b) {
        (Some(x @ Value::Object(_)), Some(y @ Value::Object(_))) => {
            for (k, xv, yv) in fields(x, y) {
                if xv != yv {
                    let p = if path.is_empty() {
                        k.to_string()
                    } else {
                        format!("{path}.{k}")
                    };
                    collect_leaves(xv, yv, p, out);
                }
            }
        }
        (a, b) => {
            let a = a.filter(|v| !v.is_null());
            let b = b.filter(|v| !v.is_null());
            let change = format!("{} → {}", show(a), show(b));
            out.push(if path.is_empty() {
                change
            } else {
                format!("{path} {change}")
            });
        }
    }
}

/// A list of strings that changed: what goes and what comes.
fn list_change<'a>(a: Option<&Value<'a>>, b: Option<&Value<'a>>) -> String {
    let words = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|l| l.iter().map(|x| show(Some(x))).collect())
            .unwrap_or_default()
    };
    let (old, new) = (words(a), words(b));
    let gone: Vec<&str> = old
        .iter()
        .filter(|w| !new.contains(w))
        .map(String::as_str)
        .collect();
    let come: Vec<&str> = new
        .iter()
        .filter(|w| !old.contains(w))
        .map(String::as_str)
        .collect();
    if gone.is_empty() && come.is_empty() {
        return "reordered".to_string();
    }
    let side = |w: &[&str]| {
        if w.is_empty() {
            "(none)".to_string()
        } else {
            w.join(" ")
        }
    };
    format!("{} → {}", side(&gone), side(&come))
}

fn env_value<'a>(e: Option<&Value<'a>>) -> String {
    match e {
        None => "(none)".to_string(),
        Some(e) => match (e.get("value"), e.get("valueFrom")) {
            (Some(v), _) => show(Some(v)),
            (None, Some(from)) => show(Some(from)),
            (None, None) => "\"\"".to_string(),
        },
    }
}

fn show_opt(s: Option<String>) -> String {
    s.unwrap_or_else(|| "(none)".to_string())
}

/// A value as a person reads it: strings as they are, the rest as compact JSON.
fn show<'a>(v: Option<&Value<'a>>) -> String {
    let text = match v {
        None => "(none)".to_string(),
        Some(Value::String(s)) if s.is_empty() => "\"\"".to_string(),
        Some(Value::String(s)) => s.to_string(),
        Some(other) => other.to_json(),
    };
    shorten(&text, 100)
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn differences(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
        super::differences(&Value::from_serde(old), &Value::from_serde(new))
    }

    #[test]
    fn differences_are_ordered_by_rank_then_place_then_text() {
        let d = |rank, group, name: &str, text: &str| Difference {
            rank,
            place: (group, name.to_string()),
            text: text.to_string(),
        };
        // Names that are prefixes of others, groups and ranks out of order, equal places.
        let found = vec![
            d(Rank::Other, 0, "", "z"),
            d(Rank::Env, 1, "app2", "a"),
            d(Rank::Env, 1, "app", "b"),
            d(Rank::Env, 0, "zz", "c"),
            d(Rank::ProxyImage, 9, "", "d"),
            d(Rank::Env, 1, "app", "a"),
            d(Rank::Volumes, 9, "v", "e"),
            d(Rank::Volumes, 9, "", "f"),
        ];
        let mut oracle: Vec<_> = found
            .iter()
            .map(|x| (x.rank, x.place.clone(), x.text.clone()))
            .collect();
        oracle.sort();
        let expected: Vec<String> = oracle.into_iter().map(|(_, _, text)| text).collect();
        assert_eq!(most_telling_first(found), expected);
        assert_eq!(expected, ["d", "c", "a", "b", "a", "f", "e", "z"]);
    }

    fn injected(image: &str, rev: &str) -> serde_json::Value {
        json!({"metadata": {"name": "p", "annotations": {
            STATUS: format!("{{\"initContainers\":[\"istio-init\"],\"containers\":[\"istio-proxy\"],\"volumes\":[],\"imagePullSecrets\":null,\"revision\":\"{rev}\"}}"),
            REVISION: rev}},
            "spec": {"containers": [{"name": "app", "image": "app:1"},
                {"name": "istio-proxy", "image": image, "args": ["proxy", "sidecar"],
                 "resources": {"limits": {"cpu": "2000m"}},
                 "env": [{"name": "A", "value": "1"}],
                 "ports": [{"containerPort": 15090, "name": "http-envoy-prom"}]}],
                "volumes": [{"name": "istio-envoy", "emptyDir": {"medium": "Memory"}}]}})
    }

    #[test]
    fn the_same_pod_has_no_differences() {
        let p = injected("docker.io/istio/proxyv2:1.30.3", "default");
        assert!(differences(&p, &p).is_empty());
    }

    #[test]
    fn proxy_image_and_revision_come_first() {
        let mut old = injected("docker.io/istio/proxyv2:1.29.2", "canary");
        old["spec"]["containers"][1]["env"][0]["value"] = "2".into();
        old["spec"]["containers"][0]["image"] = "app:0".into();
        let new = injected("docker.io/istio/proxyv2:1.30.3", "default");
        assert_eq!(
            differences(&old, &new),
            [
                "istio-proxy image: docker.io/istio/proxyv2:1.29.2 → docker.io/istio/proxyv2:1.30.3",
                "app image: app:0 → app:1",
                "revision canary → default",
                "istio-proxy env A: 2 → 1",
            ]
        );
    }

    #[test]
    fn each_kind_of_difference_is_named() {
        let old = injected("i", "default");
        let mut new = old.clone();
        let proxy = &mut new["spec"]["containers"][1];
        proxy["resources"]["limits"]["cpu"] = "1".into();
        proxy["args"] = json!(["proxy", "sidecar", "--concurrency=2"]);
        proxy["ports"][0]["name"] = "metrics".into();
        proxy["securityContext"] = json!({"runAsUser": 1337});
        new["spec"]["volumes"][0]["emptyDir"]["medium"] = "".into();
        new["spec"]["volumes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "extra", "emptyDir": {}}));
        assert_eq!(
            differences(&old, &new),
            [
                "istio-proxy resources: limits.cpu 2 → 1",
                "istio-proxy args: (none) → --concurrency=2",
                "istio-proxy port 15090: name http-envoy-prom → metrics",
                "volume extra: would be added",
                "volume istio-envoy: emptyDir.medium Memory → (none)",
                "istio-proxy securityContext: runAsUser (none) → 1337",
            ]
        );
    }

    #[test]
    fn defaults_and_canonical_quantities_are_no_difference() {
        let old = injected("docker.io/istio/proxyv2:1.30.3", "default");
        let mut stored = old.clone();
        let proxy = &mut stored["spec"]["containers"][1];
        proxy["resources"]["limits"]["cpu"] = "2".into();
        proxy["ports"][0]["protocol"] = "TCP".into();
        proxy["terminationMessagePath"] = "/dev/termination-log".into();
        stored["metadata"]["uid"] = "x".into();
        stored["status"] = json!({"phase": "Running"});
        assert!(differences(&stored, &old).is_empty());
    }
}
