//! Istio's Prometheus "metrics merge": the app's `prometheus.io/*` annotations move into the
//! proxy's `ISTIO_PROMETHEUS_ANNOTATIONS` env and the pod is pointed at the agent's merged
//! endpoint.

use crate::annotations::{PROMETHEUS_MERGE_METRICS, parse_go_bool};
use crate::json::{Map, Value};
use crate::json_text::{Object, array};

const SCRAPE: &str = "prometheus_io_scrape";
const PORT: &str = "prometheus_io_port";
const PATH: &str = "prometheus_io_path";
const SCRAPE_TARGETS: &str = "prometheus_istio_io_scrape_targets";
const SECURE_PORT: &str = "prometheus_istio_io_secure_port";

/// Reserved data-plane ports, with the reason users see when they point a scrape at one.
const RESERVED: &[(&str, &str)] = &[
    ("15000", "Envoy admin"),
    ("15001", "outbound traffic capture"),
    ("15004", "pilot debug"),
    ("15006", "inbound traffic capture"),
    ("15008", "HBONE tunnel"),
    ("15020", "pilot-agent status / merged Prometheus"),
    ("15021", "Envoy health"),
    ("15053", "DNS proxy"),
    ("15090", "Envoy Prometheus (already merged)"),
];

/// Whether `key` names `sanitized` under Prometheus' `SanitizeLabelName` (every character
/// outside `[a-zA-Z0-9_]` becomes `_`), so `prometheus.io/scrape` and `prometheus-io/scrape`
/// name the same setting. Compared without allocating: this runs for every annotation.
fn is(key: &str, sanitized: &str) -> bool {
    key.len() == sanitized.len()
        && key.bytes().zip(sanitized.bytes()).all(|(k, s)| {
            let k = if k.is_ascii_alphanumeric() || k == b'_' {
                k
            } else {
                b'_'
            };
            k == s
        })
}

/// Which of the merge's annotations `key` is, if any.
fn kind(key: &str) -> Option<&'static str> {
    // Cheap filter first: all of them start with "prometheus".
    if !key.starts_with("prometheus") {
        return None;
    }
    [SCRAPE, PORT, PATH, SCRAPE_TARGETS, SECURE_PORT]
        .into_iter()
        .find(|s| is(key, s))
}

/// The merge's annotations (every spelling) as `(kind, key, value)`, by key: where two
/// spellings of one setting are present, their order decides, and it must not depend on
/// the order the Pod lists them in.
fn merge_annotations<'m>(annotations: &'m Map) -> Vec<(&'static str, &'m str, &'m str)> {
    let found: Vec<_> = annotations
        .iter()
        .filter_map(|(k, v)| kind(k).map(|kind| (kind, k, v.as_str().unwrap_or_default())))
        .collect();
    crate::order::sorted_by_key(found, |a| a.1)
}

fn find<'m>(annotations: &'m Map, sanitized: &str) -> Option<&'m str> {
    merge_annotations(annotations)
        .into_iter()
        .find(|(kind, _, _)| *kind == sanitized)
        .map(|(_, _, v)| v)
}

/// `prometheus.io/port` (any spelling), if present.
pub fn current_port<'m>(annotations: &'m Map) -> Option<&'m str> {
    find(annotations, PORT)
}

/// Removes every spelling of the scrape, port, path and scrape-targets annotations.
pub fn clear(annotations: &mut Map) {
    annotations.retain(|k, _| !matches!(kind(k), Some(SCRAPE | PORT | PATH | SCRAPE_TARGETS)));
}

fn scrape_enabled(annotations: &Map) -> bool {
    merge_annotations(annotations)
        .into_iter()
        .filter(|(kind, _, _)| *kind == SCRAPE)
        .find_map(|(_, _, v)| parse_go_bool(v))
        .unwrap_or(true)
}

fn merge_enabled(annotations: &Map, mesh_default: bool) -> bool {
    annotations
        .get(PROMETHEUS_MERGE_METRICS)
        .and_then(Value::as_str)
        .and_then(parse_go_bool)
        .unwrap_or(mesh_default)
}

fn check_port(port: &str, target: &str, what: &str) -> Result<(), String> {
    let canon = port
        .parse::<i64>()
        .ok()
        .filter(|p| (1..=65535).contains(p))
        .map(|p| p.to_string())
        .ok_or_else(|| format!("invalid prometheus {what}: invalid port {port:?}"))?;
    if canon == target {
        return Err(format!(
            "invalid prometheus {what}: port {port} conflicts with agent port"
        ));
    }
    if let Some((_, reason)) = RESERVED.iter().find(|(p, _)| *p == canon) {
        return Err(format!(
            "invalid prometheus {what}: port {port} is reserved for Istio ({reason}) and cannot be scraped"
        ));
    }
    Ok(())
}

/// Applies the merge to the Pod's annotations, returning the env var to add to the proxy
/// (if any). `status_port` is the mesh ProxyConfig status port.
pub fn apply<'a>(
    annotations: &mut Map<'a>,
    mesh_merge_default: bool,
    status_port: u16,
) -> Result<Option<Value<'a>>, String> {
    if !scrape_enabled(annotations) || !merge_enabled(annotations, mesh_merge_default) {
        return Ok(None);
    }
    let target = status_port.to_string();
    if current_port(annotations) == Some(target.as_str()) {
        // Already pointing at the agent: a re-injection, or the user's own choice.
        return Ok(None);
    }
    let mut scrape = String::new();
    let mut path = String::new();
    let mut port = String::new();
    let mut targets: Vec<(String, String)> = Vec::new();
    for (kind, _, v) in merge_annotations(annotations) {
        match kind {
            PORT => port = v.to_string(),
            SCRAPE => scrape = v.to_string(),
            PATH => path = v.to_string(),
            SCRAPE_TARGETS => {
                if let Some(parsed) = parse_targets(v) {
                    targets = parsed;
                }
            }
            _ => {}
        }
    }
    if let Some((p, pa)) = targets.first() {
        port = p.clone();
        path = pa.clone();
        for (p, _) in &targets {
            check_port(p, &target, "scrape targets")?;
        }
    } else if !port.is_empty() {
        check_port(&port, &target, "scrape configuration")?;
    }
    let env = if scrape.is_empty() && path.is_empty() && port.is_empty() && targets.is_empty() {
        None
    } else {
        // Go's json.Marshal of PrometheusScrapeConfiguration: scrape, path, port, targets.
        let mut cfg = Object::new()
            .string("scrape", &scrape)
            .string("path", &path)
            .string("port", &port);
        if !targets.is_empty() {
            let list = array(
                targets
                    .iter()
                    .map(|(p, pa)| Object::new().string("port", p).string("path", pa).finish()),
            );
            cfg = cfg.raw("targets", &list);
        }
        Some(crate::template::env_var(
            "ISTIO_PROMETHEUS_ANNOTATIONS",
            cfg.finish(),
        ))
    };
    clear(annotations);
    annotations.insert("prometheus.io/port", target.into());
    annotations.insert("prometheus.io/path", "/stats/prometheus".into());
    annotations.insert("prometheus.io/scrape", "true".into());
    Ok(env)
}

/// `port:path` pairs; an empty path means `/metrics`; `None` when an entry has no port.
fn parse_targets(raw: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for entry in raw.split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let (port, path) = match entry.split_once(':') {
            Some((p, pa)) => (p.trim(), pa.trim()),
            None => (entry, ""),
        };
        if port.is_empty() {
            return None;
        }
        let path = if path.is_empty() { "/metrics" } else { path };
        out.push((port.to_string(), path.to_string()));
    }
    Some(out)
}

/// The proxy's secure merged-metrics port (`ENVOY_SECURE_MERGED_METRICS_PORT`), if set and
/// not 0.
pub fn secure_port<'e>(proxy_env: &'e [Value]) -> Option<&'e str> {
    proxy_env.iter().find_map(|e| {
        (e.get("name").and_then(Value::as_str) == Some("ENVOY_SECURE_MERGED_METRICS_PORT"))
            .then(|| e.get("value").and_then(Value::as_str))
            .flatten()
            .filter(|v| !v.is_empty() && *v != "0")
    })
}

/// Istio's `applySecurePrometheusAnnotation`: advertise the proxy's secure merged-metrics
/// port (see `secure_port`) unless the user already set the annotation.
pub fn apply_secure_port(annotations: &mut Map, port: Option<&str>) {
    if annotations.keys().any(|k| is(k, SECURE_PORT)) {
        return;
    }
    if let Some(port) = port {
        annotations.insert("prometheus.istio.io/secure-port", port.to_owned().into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn annos(v: serde_json::Value) -> Map<'static> {
        Value::from_serde(&v)
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn plain_pod_gets_agent_annotations_and_no_env() {
        let mut a = annos(json!({}));
        assert_eq!(apply(&mut a, true, 15020).unwrap(), None);
        assert_eq!(
            a,
            annos(
                json!({"prometheus.io/port": "15020", "prometheus.io/path": "/stats/prometheus", "prometheus.io/scrape": "true"})
            )
        );
    }

    #[test]
    fn app_annotations_move_into_env() {
        let mut a = annos(
            json!({"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/m"}),
        );
        let env = apply(&mut a, true, 15020).unwrap().unwrap();
        assert_eq!(
            env["value"],
            "{\"scrape\":\"true\",\"path\":\"/m\",\"port\":\"8080\"}"
        );
        assert_eq!(a["prometheus.io/port"], "15020");
    }

    #[test]
    fn scrape_false_or_merge_off_leaves_pod_alone() {
        for v in [
            json!({"prometheus.io/scrape": "false"}),
            json!({"prometheus-io/scrape": "0"}),
            json!({PROMETHEUS_MERGE_METRICS: "false"}),
        ] {
            let mut a = annos(v.clone());
            assert_eq!(apply(&mut a, true, 15020).unwrap(), None);
            assert_eq!(a, annos(v));
        }
        let mut a = annos(json!({}));
        apply(&mut a, false, 15020).unwrap();
        assert!(a.is_empty());
    }

    #[test]
    fn reserved_or_bad_ports_reject() {
        for port in ["15090", "15020", "abc", "0"] {
            let mut a = annos(json!({"prometheus.io/port": port}));
            if port == "15020" {
                assert_eq!(apply(&mut a, true, 15020).unwrap(), None, "already merged");
            } else {
                assert!(apply(&mut a, true, 15020).is_err(), "{port}");
            }
        }
    }

    #[test]
    fn scrape_targets() {
        let mut a = annos(json!({"prometheus.istio.io/scrape-targets": "8080:/a, 9090"}));
        let env = apply(&mut a, true, 15020).unwrap().unwrap();
        assert_eq!(
            env["value"],
            "{\"scrape\":\"\",\"path\":\"/a\",\"port\":\"8080\",\"targets\":[{\"port\":\"8080\",\"path\":\"/a\"},{\"port\":\"9090\",\"path\":\"/metrics\"}]}"
        );
        assert!(!a.contains_key("prometheus.istio.io/scrape-targets"));
    }
}
