//! Istio's `postProcessPod`: what injection does to the Pod after the templates are merged,
//! one named step each, in Istio's order.

use std::collections::BTreeMap;

use super::{CORE_DUMP, Context, INIT, NAMED_LISTS, PROXY, TemplateNames, VALIDATION};
use crate::annotations::STATUS;
use crate::go_json;
use crate::json::Value;
use crate::json_text::push_string;
use crate::pod;
use crate::probes;
use crate::prometheus;
use crate::template::env_var;

pub(super) fn post_process(
    pod: &mut Value,
    template_pod: &TemplateNames,
    context: &Context,
) -> Result<(), String> {
    overwrite_cluster_info(pod, context);
    apply_prometheus_merge(pod, context)?;
    apply_secure_prometheus_annotation(pod);
    apply_rewrite(pod, context);
    apply_metadata(pod, template_pod, context);
    reorder_pod(pod, context);
    Ok(())
}

/// `overwriteClusterInfo`: the cluster ID and network envs go to the end of the proxy's env.
fn overwrite_cluster_info(pod: &mut Value, context: &Context) {
    let mut cluster_envs: Vec<(&str, &str)> = Vec::new();
    let cluster = context
        .settings
        .values
        .global
        .multi_cluster
        .cluster_name
        .as_str();
    if !cluster.is_empty() {
        cluster_envs.push(("ISTIO_META_CLUSTER_ID", cluster));
    }
    if !context.network.is_empty() {
        cluster_envs.push(("ISTIO_META_NETWORK", &context.network));
    }
    if cluster_envs.is_empty() {
        return;
    }
    let reinjection = pod::annotation(pod, STATUS).is_some();
    let Some(env) = pod::container_env_mut(pod, PROXY) else {
        return;
    };
    let name_is = |e: &Value, k: &str| e.get("name").and_then(Value::as_str) == Some(k);
    if reinjection {
        // Already moved by the previous injection: updated in place.
        for (k, v) in cluster_envs {
            let var = env_var(k, v.to_owned());
            match env.iter_mut().find(|e| name_is(e, k)) {
                Some(e) => *e = var,
                None => env.push(var),
            }
        }
    } else {
        env.retain(|e| !cluster_envs.iter().any(|(k, _)| name_is(e, k)));
        for (k, v) in cluster_envs {
            env.push(env_var(k, v.to_owned()));
        }
    }
}

/// `applyPrometheusMerge`: the app's `prometheus.io/*` annotations point at the agent, which
/// scrapes the app where they pointed (`ISTIO_PROMETHEUS_ANNOTATIONS`).
fn apply_prometheus_merge(pod: &mut Value, context: &Context) -> Result<(), String> {
    let merge_env = prometheus::apply(
        pod::metadata_map_mut(pod, "annotations"),
        context.settings.mesh_config.enable_prometheus_merge,
        context.mesh_status_port,
    )?;
    if let Some(env) = merge_env
        && let Some(list) = pod::container_env_mut(pod, PROXY)
    {
        list.push(env);
    }
    Ok(())
}

/// `applySecurePrometheusAnnotation`: a proxy that serves its metrics over mTLS says so.
fn apply_secure_prometheus_annotation(pod: &mut Value) {
    let secure_port = ["containers", "initContainers"]
        .iter()
        .flat_map(|f| pod::containers(pod, f))
        .find(|c| pod::name_of(c) == PROXY)
        .and_then(|c| c.get("env"))
        .and_then(Value::as_array)
        .and_then(|env| prometheus::secure_port(env))
        .map(str::to_string);
    prometheus::apply_secure_port(
        pod::metadata_map_mut(pod, "annotations"),
        secure_port.as_deref(),
    );
}

/// `applyRewrite`: the app's HTTP, TCP and gRPC probes aim at the agent, which is handed
/// the probes as they were (`ISTIO_KUBE_APP_PROBERS`).
fn apply_rewrite(pod: &mut Value, context: &Context) {
    let has_proxy = pod::has_container(pod, "containers", PROXY)
        || pod::has_container(pod, "initContainers", PROXY);
    let enabled = probes::enabled(
        pod::metadata_map(pod, "annotations"),
        context
            .settings
            .values
            .sidecar_injector_webhook
            .rewrite_app_http_probe,
    );
    if !has_proxy || !enabled {
        return;
    }
    if let Some(dumped) = probes::take_over(pod, context.mesh_status_port) {
        let previously_injected = pod::annotation(pod, STATUS).is_some();
        if let Some(env) = pod::container_env_mut(pod, PROXY) {
            merge_or_append_probers(env, previously_injected, dumped);
        }
    }
}

/// Istio's `mergeOrAppendProbers`: on re-injection the existing probers are kept (they
/// describe the app's original probes, which the Pod no longer shows).
fn merge_or_append_probers(env: &mut Vec<Value>, previously_injected: bool, new: String) {
    if previously_injected
        && let Some(existing) = env
            .iter_mut()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(probes::ENV))
    {
        let old: Option<BTreeMap<String, serde_json::Value>> = existing
            .get("value")
            .and_then(Value::as_str)
            .and_then(|v| go_json::unmarshal(v).ok());
        let fresh: Option<BTreeMap<String, serde_json::Value>> = serde_json::from_str(&new).ok();
        if let (Some(old), Some(mut merged)) = (old, fresh) {
            merged.extend(old);
            *existing = env_var(probes::ENV, probes::probers_text(&merged));
        }
        return;
    }
    env.push(env_var(probes::ENV, new));
}

/// `applyMetadata`: the network label, the status annotation and `injectedAnnotations`.
fn apply_metadata(pod: &mut Value, template_pod: &TemplateNames, context: &Context) {
    if !context.network.is_empty() {
        pod::metadata_map_mut(pod, "labels")
            .insert("topology.istio.io/network", context.network.clone().into());
    }
    let status = status_annotation(template_pod, &context.settings.revision);
    let annotations = pod::metadata_map_mut(pod, "annotations");
    annotations.insert(STATUS, status.into());
    for (k, v) in &context.settings.injected_annotations {
        annotations.insert(k.clone(), v.clone().into());
    }
}

/// `sidecar.istio.io/status`: the names the templates injected, in Istio's exact compact
/// format (fixed key order, Go's `null` for an empty list).
pub(super) fn status_annotation(template_pod: &TemplateNames, revision: &str) -> String {
    let mut out = String::with_capacity(256);
    for (i, (field, list)) in NAMED_LISTS.iter().zip(&template_pod.0).enumerate() {
        out.push_str(if i == 0 { "{" } else { "," });
        push_string(&mut out, field);
        out.push(':');
        if list.is_empty() {
            out.push_str("null");
            continue;
        }
        for (j, name) in list.iter().enumerate() {
            out.push(if j == 0 { '[' } else { ',' });
            push_string(&mut out, name);
        }
        out.push(']');
    }
    let revision = if revision.is_empty() {
        "default"
    } else {
        revision
    };
    out.push_str(",\"revision\":");
    push_string(&mut out, revision);
    out.push('}');
    out
}

/// `reorderPod`: istio-proxy last among the containers (first when the app must wait for
/// it), and the init containers in the order traffic capture needs.
fn reorder_pod(pod: &mut Value, context: &Context) {
    let hold = context.proxy_config.hold_application_until_proxy_starts()
        || context
            .settings
            .values
            .global
            .proxy
            .hold_application_until_proxy_starts;
    if let Some(list) = pod::containers_mut(pod, "containers") {
        move_named(list, PROXY, !hold);
    }
    let native = pod::has_container(pod, "initContainers", PROXY);
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
    // Moved, not copied: the proxy container is the largest thing in the Pod.
    let Some(keep) = list.iter().rposition(|c| pod::name_of(c) == name) else {
        return;
    };
    let c = list.remove(keep);
    list.retain(|c| pod::name_of(c) != name);
    if last {
        list.push(c);
    } else {
        list.insert(0, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;

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
}
