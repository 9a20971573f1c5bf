//! Injecting a Pod that was injected before: what the previous injection recorded
//! (`sidecar.istio.io/status`), and the Pod without it as the templates' input (Istio's
//! `stripPod` + `reinsertOverrides`).

use std::collections::HashSet;

use super::PROXY;
use crate::annotations::{self as ann, STATUS};
use crate::json::Value;
use crate::pod;
use crate::prometheus;

/// The names recorded in `sidecar.istio.io/status` by a previous injection.
#[derive(Debug, Default)]
pub struct Status {
    pub containers: Vec<String>,
    pub init_containers: Vec<String>,
}

impl Status {
    /// The annotation's names, or `None` when it is not a JSON object.
    pub fn parse(raw: &str) -> Option<Status> {
        let v: serde_json::Value = serde_json::from_str(raw).ok()?;
        if !v.is_object() {
            return None;
        }
        let names = |key: &str| -> Vec<String> {
            v.get(key)
                .and_then(serde_json::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(serde_json::Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(Status {
            containers: names("containers"),
            init_containers: names("initContainers"),
        })
    }

    /// Whether the previous injection added istio-proxy (as a container or a native one).
    pub fn injected_proxy(&self) -> bool {
        self.containers
            .iter()
            .chain(&self.init_containers)
            .any(|n| n == PROXY)
    }

    /// Whether the previous injection added istio-proxy both as a native sidecar and as a
    /// container (a template chained after the sidecar, as Istio's `spire`).
    pub fn proxy_in_both_lists(&self) -> bool {
        self.containers.iter().any(|n| n == PROXY)
            && self.init_containers.iter().any(|n| n == PROXY)
    }
}

/// Istio's `stripPod` + `reinsertOverrides`: the template input for a re-injection. `None`
/// means the Pod itself is the input (no previous injection, no overrides).
pub fn strip<'a>(
    pod: &Value<'a>,
    status: Option<&Status>,
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
    let parsed: serde_json::Value = serde_json::from_str(raw).map_err(|e| {
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
