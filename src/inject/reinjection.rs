//! Injecting a Pod that was injected before: the Pod without what the previous injection
//! recorded (`sidecar.istio.io/status`, read by [`crate::injection_status`]) as the
//! templates' input (Istio's `stripPod` + `reinsertOverrides`).

use std::collections::HashSet;

use super::PROXY;
use crate::annotations::{self as ann, STATUS};
use crate::go_json;
use crate::injection_status::SidecarInjectionStatus;
use crate::json::Value;
use crate::pod;
use crate::prometheus;

/// Istio's `stripPod` + `reinsertOverrides`: the template input for a re-injection. `None`
/// means the Pod itself is the input (no previous injection, no overrides).
pub fn strip<'a>(
    pod: &Value<'a>,
    status: Option<&SidecarInjectionStatus>,
    mesh_status_port: u16,
) -> Result<Option<Value<'a>>, String> {
    let overrides = pod::annotation(pod, ann::PROXY_OVERRIDES);
    if status.is_none() && overrides.is_none() {
        return Ok(None);
    }
    let mut stripped = pod.clone();
    if let Some(status) = status {
        for (field, names) in [
            ("containers", &status.containers),
            ("initContainers", &status.init_containers),
        ] {
            // A set: hostile Pods may list thousands of names.
            let names: HashSet<&str> = names.iter().map(String::as_str).collect();
            if let Some(list) = pod::containers_mut(&mut stripped, field) {
                list.retain(|c| !names.contains(pod::name_of(c)));
            }
        }
        let annotations = pod::metadata_map_mut(&mut stripped, "annotations");
        if prometheus::current_port(annotations) == Some(mesh_status_port.to_string().as_str()) {
            prometheus::clear(annotations);
        }
        annotations.remove(STATUS);
    }
    if let Some(raw) = overrides {
        reinsert_overrides(&mut stripped, raw)?;
    }
    Ok(Some(stripped))
}

/// The user's containers recorded in `proxy.istio.io/overrides`, put back where the user
/// declared them (unless the Pod has them).
fn reinsert_overrides(stripped: &mut Value, raw: &str) -> Result<(), String> {
    let parsed: serde_json::Value = go_json::unmarshal(raw).map_err(|e| {
        format!(
            "invalid value for annotation '{}': {e}",
            ann::PROXY_OVERRIDES
        )
    })?;
    let mut present: HashSet<(&str, String)> = ["containers", "initContainers"]
        .iter()
        .flat_map(|f| {
            pod::containers(stripped, f)
                .iter()
                .map(move |c| (*f, pod::name_of(c).to_string()))
        })
        .collect();
    let mut additions: Vec<(&str, Value)> = Vec::new();
    for field in ["containers", "initContainers"] {
        let Some(saved) = parsed.get(field).and_then(serde_json::Value::as_array) else {
            continue;
        };
        // A forged annotation may hold anything: only named containers count.
        for c in saved
            .iter()
            .filter(|c| c.get("name").is_some_and(serde_json::Value::is_string))
        {
            let name = c
                .get("name")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            // With native sidecars Istio records a user's istio-proxy under
            // initContainers even when the user declared it as a container (it was
            // moved there); without restartPolicy it was a container, and it goes back
            // there so that the template sees the same Pod as the first time.
            let field =
                if field == "initContainers" && name == PROXY && c.get("restartPolicy").is_none() {
                    "containers"
                } else {
                    field
                };
            if present.insert((field, name.to_string())) {
                additions.push((field, Value::from_serde(c)));
            }
        }
    }
    for (field, c) in additions {
        pod::list_mut(stripped, field).push(c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Pod injected before: the proxy and its init container, and Prometheus redirected to
    /// the status port.
    const INJECTED: &str = r#"{"metadata": {"annotations": {"prometheus.io/port": "15020",
        "prometheus.io/scrape": "true", "prometheus.io/path": "/stats/prometheus"}},
        "spec": {"initContainers": [{"name": "istio-init"}],
                 "containers": [{"name": "app"}, {"name": "istio-proxy"}]}}"#;

    /// The template input for the injected Pod carrying `status`, as `stripPod` makes it from
    /// what `injectionStatus` reads; `None`: the Pod itself.
    fn strip_with(status: &str) -> Option<serde_json::Value> {
        let mut pod: serde_json::Value = serde_json::from_str(INJECTED).unwrap();
        pod["metadata"]["annotations"][STATUS] = status.into();
        let text = pod.to_string();
        let pod = Value::parse(&text).unwrap();
        let read = SidecarInjectionStatus::parse(status).ok();
        strip(&pod, read.as_ref(), 15020)
            .unwrap()
            .map(|p| p.to_serde())
    }

    fn names(pod: &serde_json::Value, field: &str) -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn status_keys_in_another_case_strip_what_they_name_as_istio() {
        let input = strip_with(r#"{"InitContainers":["istio-init"],"CONTAINERS":["istio-proxy"]}"#)
            .unwrap();
        assert_eq!(names(&input, "containers"), ["app"]);
        assert!(names(&input, "initContainers").is_empty());
        assert_eq!(input["metadata"]["annotations"].get(STATUS), None);
    }

    #[test]
    fn a_status_go_cannot_read_strips_nothing_as_istio() {
        // The revision as a number: Go refuses the whole record, names and all.
        for status in [
            r#"{"initContainers":["istio-init"],"containers":["istio-proxy"],"revision":5}"#,
            r#"{"initContainers":["istio-init"],"containers":["istio-proxy",7]}"#,
            "{not json",
        ] {
            assert_eq!(strip_with(status), None, "{status}");
        }
    }

    #[test]
    fn a_null_status_strips_only_the_record_and_the_prometheus_redirect_as_istio() {
        let input = strip_with("null").unwrap();
        assert_eq!(names(&input, "containers"), ["app", "istio-proxy"]);
        assert_eq!(names(&input, "initContainers"), ["istio-init"]);
        assert_eq!(input["metadata"]["annotations"], serde_json::json!({}));
    }
}
