//! Stage C: render the templates onto the Pod and post-process it, as Istio's `injectPod`
//! does. The Pod is JSON throughout, so fields the policy does not know survive untouched.

use serde_json::{Map, Value, json};

use crate::annotations::{self as ann, STATUS};
use crate::merge::merge;
use crate::pod;
use crate::probes;
use crate::prometheus;
use crate::proxy_config::ProxyConfig;
use crate::settings::Settings;
use crate::template::{self, TemplateInput};

const PROXY: &str = "istio-proxy";
const INIT: &str = "istio-init";
const VALIDATION: &str = "istio-validation";
const CORE_DUMP: &str = "enable-core-dump";

/// Injects the sidecar into `pod` (consumed and returned). `namespace` is the Pod's
/// namespace; `namespace_annotations` feed OpenShift's UID ranges.
pub fn inject(
    mut pod: Value,
    settings: &Settings,
    namespace: &str,
    namespace_annotations: Option<&Map<String, Value>>,
) -> Result<Value, String> {
    ann::validate(pod::metadata_map(&pod, "annotations"))?;

    let templates = selected_templates(&pod, settings)?;
    let proxy_config = ProxyConfig::effective(
        &settings.mesh_config.default_config,
        pod::metadata_map(&pod, "annotations")
            .and_then(|a| a.get(ann::PROXY_CONFIG))
            .and_then(Value::as_str),
    )?;
    let mesh_status_port = ProxyConfig::effective(&settings.mesh_config.default_config, None)
        .map(|pc| pc.status_port())
        .unwrap_or(crate::proxy_config::DEFAULT_STATUS_PORT);
    let network = pod::metadata_map(&pod, "labels")
        .and_then(|l| l.get("topology.istio.io/network"))
        .and_then(Value::as_str)
        .unwrap_or(&settings.values.global.network)
        .to_string();
    let deploy = pod::deploy_meta(&pod, namespace);
    let (proxy_uid, proxy_gid) = proxy_ids(namespace_annotations);
    let native_default = settings.native_sidecars;
    let native_annotation = annotation(&pod, ann::NATIVE_SIDECAR).map(str::to_string);
    // The template's rule: any non-empty annotation value except "false" means native.
    let native_for_template = match native_annotation.as_deref() {
        Some(v) if !v.is_empty() => v != "false",
        _ => native_default,
    };
    // RunTemplate's rule for moving a user-declared istio-proxy: exact "true"/"false".
    let native_for_move = match native_annotation.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => native_default,
    };

    let previous_status = annotation(&pod, STATUS).and_then(parse_status);
    let original_overrides = OriginalContainers::capture(&pod);

    // Render every template from the stripped Pod, merging each onto both the template Pod
    // (what we inject) and the Pod itself.
    let stripped = strip(&pod, previous_status.as_ref(), mesh_status_port)?;
    let mut template_pod = json!({});
    for name in &templates {
        let rendered = {
            let input = TemplateInput {
                pod: stripped.as_ref().unwrap_or(&pod),
                settings,
                proxy_config: &proxy_config,
                deploy: &deploy,
                native_sidecar: native_for_template,
                proxy_uid,
                proxy_gid,
                network: &network,
            };
            template::render(name, &input)?
        };
        merge(&mut template_pod, &rendered);
        if native_for_move
            && has_container(&template_pod, "initContainers", PROXY)
            && has_container(&pod, "containers", PROXY)
        {
            move_container_to_init(&mut pod, PROXY);
        }
        merge(&mut pod, &rendered);
    }

    reapply_user_containers(
        &mut pod,
        &template_pod,
        &original_overrides,
        previous_status.as_ref(),
    )?;

    post_process(
        &mut pod,
        &template_pod,
        settings,
        &network,
        mesh_status_port,
        &proxy_config,
    )?;
    Ok(pod)
}

fn annotation<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    pod::metadata_map(pod, "annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// Template names from `inject.istio.io/templates` or the default, with aliases expanded.
fn selected_templates(pod: &Value, settings: &Settings) -> Result<Vec<String>, String> {
    let names: Vec<String> = match annotation(pod, ann::TEMPLATES) {
        Some(list) => list.split(',').map(|n| n.trim().to_string()).collect(),
        None => settings.default_templates.clone(),
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        match settings.aliases.get(&name) {
            Some(targets) => out.extend(targets.iter().cloned()),
            None => out.push(name),
        }
    }
    for name in &out {
        if !settings.template_known(name) || settings.aliases.contains_key(name) {
            return Err(format!(
                "requested template {name:?} not found; have {}",
                settings.known_templates().join(", ")
            ));
        }
    }
    Ok(out)
}

/// The names recorded in `sidecar.istio.io/status` by a previous injection.
#[derive(Debug, Default)]
pub struct Status {
    pub containers: Vec<String>,
    pub init_containers: Vec<String>,
}

fn parse_status(raw: &str) -> Option<Status> {
    let v: Value = serde_json::from_str(raw).ok()?;
    let names = |key: &str| -> Vec<String> {
        v.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    if !v.is_object() {
        return None;
    }
    Some(Status {
        containers: names("containers"),
        init_containers: names("initContainers"),
    })
}

/// Istio's `stripPod` + `reinsertOverrides`: the template input for a re-injection. `None`
/// means the Pod itself is the input (no previous injection, no overrides).
fn strip(
    pod: &Value,
    status: Option<&Status>,
    mesh_status_port: u16,
) -> Result<Option<Value>, String> {
    let overrides = annotation(pod, ann::PROXY_OVERRIDES);
    if status.is_none() && overrides.is_none() {
        return Ok(None);
    }
    let mut stripped = pod.clone();
    if let Some(status) = status {
        for (field, names) in [
            ("containers", &status.containers),
            ("initContainers", &status.init_containers),
        ] {
            if let Some(list) = pod::containers_mut(&mut stripped, field) {
                list.retain(|c| !names.iter().any(|n| n == pod::name_of(c)));
            }
        }
        let annotations = pod::metadata_map_mut(&mut stripped, "annotations");
        if prometheus::current_port(annotations) == Some(mesh_status_port.to_string().as_str()) {
            prometheus::clear(annotations);
        }
        annotations.remove(STATUS);
    }
    if let Some(raw) = overrides {
        let parsed: Value = serde_json::from_str(raw).map_err(|e| {
            format!(
                "invalid value for annotation '{}': {e}",
                ann::PROXY_OVERRIDES
            )
        })?;
        for field in ["containers", "initContainers"] {
            let Some(saved) = parsed.get(field).and_then(Value::as_array) else {
                continue;
            };
            for c in saved {
                if !has_container(&stripped, field, pod::name_of(c)) {
                    pod::list_mut(&mut stripped, field).push(c.clone());
                }
            }
        }
    }
    Ok(Some(stripped))
}

fn has_container(pod: &Value, field: &str, name: &str) -> bool {
    pod::containers(pod, field)
        .iter()
        .any(|c| pod::name_of(c) == name)
}

fn move_container_to_init(pod: &mut Value, name: &str) {
    let Some(list) = pod::containers_mut(pod, "containers") else {
        return;
    };
    let Some(i) = list.iter().position(|c| pod::name_of(c) == name) else {
        return;
    };
    let c = list.remove(i);
    pod::list_mut(pod, "initContainers").push(c);
}

/// The user's own istio-proxy / istio-init / istio-validation containers, captured before
/// the templates are merged, so they can be re-applied on top (Istio's overrides).
struct OriginalContainers {
    containers: Vec<Value>,
    init_containers: Vec<Value>,
    saved: Option<Value>,
}

impl OriginalContainers {
    fn capture(pod: &Value) -> Self {
        let pick = |field: &str| -> Vec<Value> {
            pod::containers(pod, field)
                .iter()
                .filter(|c| matches!(pod::name_of(c), PROXY | INIT | VALIDATION))
                .cloned()
                .collect()
        };
        OriginalContainers {
            containers: pick("containers"),
            init_containers: pick("initContainers"),
            saved: annotation(pod, ann::PROXY_OVERRIDES).and_then(|s| serde_json::from_str(s).ok()),
        }
    }

    /// Istio looks for an injected container's user version among the containers, and for
    /// an injected init container's among the containers and the init containers.
    fn find(&self, field: &str, name: &str) -> Option<&Value> {
        let in_containers = self.containers.iter().find(|c| pod::name_of(c) == name);
        if field == "containers" {
            in_containers
        } else {
            in_containers.or_else(|| {
                self.init_containers
                    .iter()
                    .find(|c| pod::name_of(c) == name)
            })
        }
    }

    fn saved(&self, field: &str, name: &str) -> Option<&Value> {
        self.saved
            .as_ref()?
            .get(field)?
            .as_array()?
            .iter()
            .find(|c| pod::name_of(c) == name)
    }
}

/// Istio's `reapplyOverwrittenContainers`: a container the user declared with the name of an
/// injected one overrides the injected fields (`image: auto` keeps the injected image).
fn reapply_user_containers(
    pod: &mut Value,
    template_pod: &Value,
    originals: &OriginalContainers,
    status: Option<&Status>,
) -> Result<(), String> {
    let mut applied = Map::new();
    for (field, previously) in [
        ("containers", status.map(|s| &s.containers)),
        ("initContainers", status.map(|s| &s.init_containers)),
    ] {
        let mut overlays = Vec::new();
        for c in pod::containers(template_pod, field) {
            let name = pod::name_of(c);
            if previously.is_some_and(|names| names.iter().any(|n| n == name)) {
                continue;
            }
            let found = originals
                .saved(field, name)
                .or_else(|| originals.find(field, name));
            let Some(found) = found else { continue };
            let mut overlay = found.clone();
            if overlay.get("image").and_then(Value::as_str) == Some("auto")
                && let Some(m) = overlay.as_object_mut()
            {
                m.remove("image");
            }
            let target_field = if has_container(pod, field, name) {
                field
            } else {
                other(field)
            };
            merge(pod, &json!({"spec": {target_field: [overlay.clone()]}}));
            overlays.push(overlay);
        }
        if !overlays.is_empty() {
            applied.insert(field.to_string(), Value::Array(overlays));
        }
    }
    if status.is_none() && !applied.is_empty() {
        let mut ordered = Map::new();
        for key in ["containers", "initContainers"] {
            if let Some(v) = applied.remove(key) {
                ordered.insert(key.into(), v);
            }
        }
        pod::metadata_map_mut(pod, "annotations").insert(
            ann::PROXY_OVERRIDES.into(),
            Value::Object(ordered).to_string().into(),
        );
    }
    Ok(())
}

fn other(field: &str) -> &'static str {
    if field == "containers" {
        "initContainers"
    } else {
        "containers"
    }
}

/// Istio's `postProcessPod`.
fn post_process(
    pod: &mut Value,
    template_pod: &Value,
    settings: &Settings,
    network: &str,
    mesh_status_port: u16,
    _proxy_config: &ProxyConfig,
) -> Result<(), String> {
    // Cluster and network envs are moved to the end of the proxy env, sorted (overwriteClusterInfo).
    let mut cluster_envs: Vec<(&str, &str)> = Vec::new();
    let cluster = settings.values.global.multi_cluster.cluster_name.as_str();
    if !cluster.is_empty() {
        cluster_envs.push(("ISTIO_META_CLUSTER_ID", cluster));
    }
    if !network.is_empty() {
        cluster_envs.push(("ISTIO_META_NETWORK", network));
    }
    if !cluster_envs.is_empty()
        && let Some(env) = proxy_env_mut(pod)
    {
        env.retain(|e| {
            !cluster_envs
                .iter()
                .any(|(k, _)| e.get("name").and_then(Value::as_str) == Some(k))
        });
        for (k, v) in &cluster_envs {
            env.push(json!({"name": k, "value": v}));
        }
    }

    // Prometheus metrics merge.
    let merge_env = {
        let annotations = pod::metadata_map_mut(pod, "annotations");
        prometheus::apply(
            annotations,
            settings.mesh_config.enable_prometheus_merge,
            mesh_status_port,
        )?
    };
    if let Some(env) = merge_env
        && let Some(list) = proxy_env_mut(pod)
    {
        list.push(env);
    }
    let proxy_env_snapshot: Vec<Value> = proxy_env_mut(pod).map(|e| e.clone()).unwrap_or_default();
    prometheus::apply_secure_port(
        pod::metadata_map_mut(pod, "annotations"),
        &proxy_env_snapshot,
    );

    // Probe rewriting.
    let has_proxy =
        has_container(pod, "containers", PROXY) || has_container(pod, "initContainers", PROXY);
    if has_proxy
        && probes::enabled(
            pod::metadata_map(pod, "annotations"),
            settings
                .values
                .sidecar_injector_webhook
                .rewrite_app_http_probe,
        )
    {
        if let Some(dumped) = probes::dump(pod, mesh_status_port) {
            let previously_injected = annotation(pod, STATUS).is_some();
            if let Some(env) = proxy_env_mut(pod) {
                merge_or_append_probers(env, previously_injected, dumped);
            }
        }
        probes::rewrite(pod, mesh_status_port);
    }

    // Metadata: network label, status, injected annotations.
    if !network.is_empty() {
        pod::metadata_map_mut(pod, "labels")
            .insert("topology.istio.io/network".into(), network.into());
    }
    let status = status_annotation(template_pod, &settings.revision);
    let annotations = pod::metadata_map_mut(pod, "annotations");
    annotations.insert(STATUS.into(), status.into());
    for (k, v) in &settings.injected_annotations {
        annotations.insert(k.clone(), v.clone().into());
    }

    reorder(pod, settings, _proxy_config);
    Ok(())
}

/// Istio's `mergeOrAppendProbers`: on re-injection the existing probers are kept (they
/// describe the app's original probes, which the Pod no longer shows).
fn merge_or_append_probers(env: &mut Vec<Value>, previously_injected: bool, new: String) {
    if previously_injected
        && let Some(existing) = env
            .iter_mut()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(probes::ENV))
    {
        let old: Option<std::collections::BTreeMap<String, Value>> = existing
            .get("value")
            .and_then(Value::as_str)
            .and_then(|v| serde_json::from_str(v).ok());
        let fresh: Option<std::collections::BTreeMap<String, Value>> =
            serde_json::from_str(&new).ok();
        if let (Some(old), Some(mut merged)) = (old, fresh) {
            merged.extend(old);
            if let Ok(value) = serde_json::to_string(&merged) {
                *existing = json!({"name": probes::ENV, "value": value});
            }
        }
        return;
    }
    env.push(json!({"name": probes::ENV, "value": new}));
}

fn proxy_env_mut(pod: &mut Value) -> Option<&mut Vec<Value>> {
    let spec = pod.get_mut("spec")?;
    // The proxy is a container (classic) or an init container (native).
    let in_containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(|c| pod::name_of(c) == PROXY));
    let field = if in_containers {
        "containers"
    } else {
        "initContainers"
    };
    let container = spec
        .get_mut(field)?
        .as_array_mut()?
        .iter_mut()
        .find(|c| pod::name_of(c) == PROXY)?;
    let obj = container.as_object_mut()?;
    let env = obj.entry("env").or_insert_with(|| Value::Array(Vec::new()));
    if !env.is_array() {
        *env = Value::Array(Vec::new());
    }
    env.as_array_mut()
}

/// `sidecar.istio.io/status`: the names the templates injected, in Istio's exact compact
/// format (fixed key order, Go's `null` for an empty list).
pub fn status_annotation(template_pod: &Value, revision: &str) -> String {
    let names = |field: &str| -> String {
        let list: Vec<&str> = pod::containers(template_pod, field)
            .iter()
            .map(pod::name_of)
            .collect();
        if list.is_empty() {
            "null".into()
        } else {
            serde_json::to_string(&list).unwrap_or_else(|_| "null".into())
        }
    };
    let revision = if revision.is_empty() {
        "default"
    } else {
        revision
    };
    format!(
        "{{\"initContainers\":{},\"containers\":{},\"volumes\":{},\"imagePullSecrets\":{},\"revision\":{}}}",
        names("initContainers"),
        names("containers"),
        names("volumes"),
        names("imagePullSecrets"),
        Value::String(revision.into()),
    )
}

/// Istio's `reorderPod`.
fn reorder(pod: &mut Value, settings: &Settings, proxy_config: &ProxyConfig) {
    let hold = proxy_config.hold_application_until_proxy_starts()
        || settings
            .values
            .global
            .proxy
            .hold_application_until_proxy_starts;
    if let Some(list) = pod::containers_mut(pod, "containers") {
        move_named(list, PROXY, !hold);
    }
    let native = has_container(pod, "initContainers", PROXY);
    let Some(inits) = pod::containers_mut(pod, "initContainers") else {
        return;
    };
    if native {
        for name in [CORE_DUMP, PROXY, VALIDATION, INIT] {
            move_named(inits, name, false);
        }
    } else {
        move_named(inits, VALIDATION, false);
        move_named(inits, INIT, true);
        move_named(inits, CORE_DUMP, true);
    }
}

/// Istio's `modifyContainers` with MoveFirst/MoveLast: every container of that name is
/// taken out and the last one re-inserted at the front or the back.
fn move_named(list: &mut Vec<Value>, name: &str, last: bool) {
    let mut found = None;
    list.retain(|c| {
        if pod::name_of(c) == name {
            found = Some(c.clone());
            false
        } else {
            true
        }
    });
    if let Some(c) = found {
        if last {
            list.push(c);
        } else {
            list.insert(0, c);
        }
    }
}

/// Istio's `GetProxyIDs`: 1337/1337, or OpenShift's preallocated ranges from the namespace.
fn proxy_ids(namespace_annotations: Option<&Map<String, Value>>) -> (i64, i64) {
    let mut uid = 1337;
    let mut gid = 1337;
    let Some(a) = namespace_annotations else {
        return (uid, gid);
    };
    // "start/size": the proxy gets the highest UID of the range.
    if let Some(range) = a
        .get("openshift.io/sa.scc.uid-range")
        .and_then(Value::as_str)
        && let Some(max) = range_max(range)
    {
        uid = max;
    }
    if let Some(groups) = a
        .get("openshift.io/sa.scc.supplemental-groups")
        .and_then(Value::as_str)
        && let Some(first) = groups.split(',').next()
        && let Some(max) = range_max(first.trim())
    {
        gid = max;
    }
    (uid, gid)
}

fn range_max(range: &str) -> Option<i64> {
    let (start, size) = range
        .split_once('/')
        .or_else(|| range.split_once('-').map(|(a, b)| (a, b)))?;
    let start: i64 = start.trim().parse().ok()?;
    if range.contains('/') {
        let size: i64 = size.trim().parse().ok()?;
        (size > 0).then(|| start + size - 1)
    } else {
        let end: i64 = size.trim().parse().ok()?;
        (end >= start).then_some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_format_is_istios() {
        let t = json!({"spec": {"initContainers": [{"name": "istio-init"}], "containers": [{"name": "istio-proxy"}], "volumes": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(
            status_annotation(&t, ""),
            r#"{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["a","b"],"imagePullSecrets":null,"revision":"default"}"#
        );
    }

    #[test]
    fn move_named_keeps_last_duplicate() {
        let mut l = vec![
            json!({"name": "a", "i": 1}),
            json!({"name": "b"}),
            json!({"name": "a", "i": 2}),
        ];
        move_named(&mut l, "a", false);
        assert_eq!(l, vec![json!({"name": "a", "i": 2}), json!({"name": "b"})]);
    }

    #[test]
    fn openshift_ranges() {
        let a = json!({"openshift.io/sa.scc.uid-range": "1000680000/10000", "openshift.io/sa.scc.supplemental-groups": "1000680000/10000"});
        assert_eq!(proxy_ids(a.as_object()), (1000689999, 1000689999));
        assert_eq!(proxy_ids(None), (1337, 1337));
    }
}
