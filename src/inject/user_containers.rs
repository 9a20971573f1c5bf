//! The user's own versions of the containers Istio injects (`istio-proxy`, `istio-init`,
//! `istio-validation`): Istio's `reapplyOverwrittenContainers`, the record of them in
//! `proxy.istio.io/overrides`, and what they change around them.

use super::{INIT, PROXY, TemplateNames, VALIDATION};
use crate::annotations as ann;
use crate::go_json;
use crate::injection_status::SidecarInjectionStatus;
use crate::json::{Map, Value, object};
use crate::merge::merge_onto_pod;
use crate::pod;
use crate::proxy_config::ProxyConfig;

/// The user's own istio-proxy / istio-init / istio-validation containers, captured before
/// the templates are merged, so they can be re-applied on top (Istio's overrides).
pub struct OriginalContainers<'a> {
    containers: Vec<Value<'a>>,
    init_containers: Vec<Value<'a>>,
    /// `proxy.istio.io/overrides`, as a previous injection recorded them.
    saved: Option<serde_json::Value>,
}

impl<'a> OriginalContainers<'a> {
    /// Captures the Pod's containers whose names a template defines, and the user's own
    /// istio-proxy (which also steers the init container's user).
    pub fn capture(pod: &Value<'a>, template_pod: &TemplateNames) -> Self {
        let wanted = |name: &str| {
            name == PROXY
                || ["containers", "initContainers"]
                    .iter()
                    .any(|f| template_pod.has(f, name))
        };
        let pick = |field: &str| -> Vec<Value<'a>> {
            pod::containers(pod, field)
                .iter()
                .filter(|c| wanted(pod::name_of(c)))
                .cloned()
                .collect()
        };
        OriginalContainers {
            containers: pick("containers"),
            init_containers: pick("initContainers"),
            saved: pod::annotation(pod, ann::PROXY_OVERRIDES)
                .and_then(|s| go_json::unmarshal(s).ok()),
        }
    }

    /// The user's istio-proxy as Istio's `FindSidecar` finds it in the original Pod. On a
    /// re-injection the Pod's istio-proxy is the previous injection: the user's version is
    /// then the one saved in `proxy.istio.io/overrides`, if any.
    fn user_proxy(&self, reinjected: bool) -> Option<Value<'a>> {
        if reinjected {
            return self
                .saved("containers", PROXY)
                .or_else(|| self.saved("initContainers", PROXY));
        }
        self.containers
            .iter()
            .chain(self.init_containers.iter())
            .find(|c| pod::name_of(c) == PROXY)
            .cloned()
    }

    /// Istio looks for an injected container's user version among the containers, and for
    /// an injected init container's among the containers and the init containers.
    fn find(&self, field: &str, name: &str) -> Option<&Value<'a>> {
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

    /// The container `name` recorded under `field` in `proxy.istio.io/overrides`.
    fn saved(&self, field: &str, name: &str) -> Option<Value<'a>> {
        self.saved
            .as_ref()?
            .get(field)?
            .as_array()?
            .iter()
            .find(|c| c.get("name").and_then(serde_json::Value::as_str) == Some(name))
            .map(Value::from_serde)
    }

    fn has_saved(&self, field: &str, name: &str) -> bool {
        self.saved(field, name).is_some()
    }

    /// Whether the user wrote a container of this name (now, or recorded before).
    fn user_defined(&self, field: &str, name: &str) -> bool {
        self.find(field, name).is_some() || self.has_saved(field, name)
    }
}

/// Istio's `reapplyOverwrittenContainers`: a container the user declared with the name of an
/// injected one overrides the injected fields (`image: auto` keeps the injected image). On a
/// first injection (no `sidecar.istio.io/status` at all, `already_injected` false, however
/// unreadable the one there is) the overrides are recorded in `proxy.istio.io/overrides`.
pub fn reapply<'a>(
    pod: &mut Value<'a>,
    template_pod: &TemplateNames,
    originals: &OriginalContainers<'a>,
    status: Option<&SidecarInjectionStatus>,
    already_injected: bool,
) {
    let mut applied: Vec<(&str, String)> = Vec::new();
    for (field, previously) in [
        ("containers", status.map(|s| &s.containers)),
        ("initContainers", status.map(|s| &s.init_containers)),
    ] {
        let mut overlays = Vec::new();
        for name in template_pod.list(field) {
            let name = name.as_str();
            // On re-injection the Pod's copy of an injected container is the previous
            // injection, not a user override. Istio then drops the user's overrides; the
            // saved ones (proxy.istio.io/overrides) are re-applied here instead, so that
            // re-injecting changes nothing.
            let reinjected = previously.is_some_and(|names| names.iter().any(|n| n == name));
            // On a first injection the Pod's own container is what the user wrote (a stray
            // overrides annotation copied from another Pod must not replace it: recording it
            // would make the next re-injection see a different Pod).
            let found = if reinjected {
                originals.saved(field, name)
            } else {
                originals
                    .find(field, name)
                    .cloned()
                    .or_else(|| originals.saved(field, name))
            };
            let Some(mut overlay) = found else { continue };
            if let Some(m) = overlay.as_object_mut() {
                if m.get("image").and_then(Value::as_str) == Some("auto") {
                    m.remove("image");
                }
                // The saved copy is Go-shaped; its empty `resources` is not the user's.
                if m.get("resources")
                    .is_some_and(|r| r.as_object().is_some_and(Map::is_empty))
                {
                    m.remove("resources");
                }
            }
            let target_field = if pod::has_container(pod, field, name) {
                field
            } else {
                other(field)
            };
            overlays.push(crate::go_json::container(&overlay.to_serde()));
            let spec = object([(target_field, Value::from(vec![overlay]))]);
            merge_onto_pod(pod, object([("spec", spec)]));
        }
        if !overlays.is_empty() {
            applied.push((field, crate::json_text::array(overlays)));
        }
    }
    if !already_injected && !applied.is_empty() {
        // Go's ParsedContainers: containers, then initContainers.
        let text = applied
            .iter()
            .fold(crate::json_text::Object::new(), |o, (k, v)| o.raw(k, v))
            .finish();
        pod::metadata_map_mut(pod, "annotations").insert(ann::PROXY_OVERRIDES, text.into());
    }
}

fn other(field: &str) -> &'static str {
    if field == "containers" {
        "initContainers"
    } else {
        "containers"
    }
}

/// Istio's `adjustInitContainerUser`: a user-set `runAsUser`/`runAsGroup` on istio-proxy
/// carries over to the traffic-capture container (`-u`, and the CNI validation container's
/// user); under TPROXY the proxy must stay root.
pub fn adjust_init_container_user(
    pod: &mut Value,
    originals: &OriginalContainers,
    proxy_config: &ProxyConfig,
    reinjected: bool,
) {
    let Some(user) = originals.user_proxy(reinjected) else {
        return;
    };
    let sc = user.get("securityContext");
    let run_as_user = sc.and_then(|s| s.get("runAsUser")).and_then(Value::as_i64);
    let run_as_group = sc.and_then(|s| s.get("runAsGroup")).and_then(Value::as_i64);
    if run_as_user.is_none() && run_as_group.is_none() {
        return;
    }
    let Some(init_name) = [INIT, VALIDATION]
        .into_iter()
        .find(|n| pod::has_container(pod, "initContainers", n))
    else {
        return;
    };
    let tproxy = proxy_config.interception_mode() == "TPROXY"
        || pod::annotation(pod, ann::INTERCEPTION_MODE) == Some("TPROXY");
    if tproxy
        && run_as_user.is_some()
        && let Some(proxy) = pod::find_container_mut(pod, PROXY)
        && let Some(sc) = proxy
            .get_mut("securityContext")
            .and_then(Value::as_object_mut)
    {
        sc.insert("runAsUser", 0.into());
    }
    let Some(init) = pod::container_mut(pod, "initContainers", init_name) else {
        return;
    };
    if !tproxy && init_name == VALIDATION {
        let sc = pod::ensure_object(init)
            .get_or_insert_with("securityContext", || Value::Object(Map::new()));
        let sc = pod::ensure_object(sc);
        if let Some(u) = run_as_user {
            sc.insert("runAsUser", u.into());
        }
        if let Some(g) = run_as_group {
            sc.insert("runAsGroup", g.into());
        }
    }
    // iptables' --uid-owner must not be 0.
    let Some(uid) = run_as_user.filter(|u| *u != 0) else {
        return;
    };
    if let Some(args) = init.get_mut("args").and_then(Value::as_array_mut)
        && let Some(i) = args.iter().position(|a| a.as_str() == Some("-u"))
        && i + 1 < args.len()
    {
        args[i + 1] = uid.to_string().into();
    }
}

/// Containers Istio adds pass through Go's typed Pod, which drops empty lists and always
/// writes `resources`. The same is done to the containers the templates added (never to the
/// user's own containers).
pub fn normalize_injected(
    pod: &mut Value,
    template_pod: &TemplateNames,
    originals: &OriginalContainers,
) {
    for field in ["containers", "initContainers"] {
        let names = template_pod.list(field);
        let Some(list) = pod::containers_mut(pod, field) else {
            continue;
        };
        for c in list.iter_mut() {
            let name = pod::name_of(c);
            if !names.iter().any(|n| n == name) {
                continue;
            }
            let user_defined = originals.user_defined(field, name);
            let istio_container = matches!(name, PROXY | INIT | VALIDATION);
            let obj = pod::ensure_object(c);
            // EnvVar.value is omitempty (ISTIO_META_APP_CONTAINERS may render empty).
            if istio_container && let Some(env) = obj.get_mut("env").and_then(Value::as_array_mut) {
                for e in env.iter_mut().filter_map(Value::as_object_mut) {
                    if e.get("value").and_then(Value::as_str) == Some("") {
                        e.remove("value");
                    }
                }
            }
            // What the user wrote stays as written, empty lists included.
            if !user_defined {
                obj.retain(|_, v| !v.as_array().is_some_and(Vec::is_empty));
                obj.get_or_insert_with("resources", || Value::Object(Map::new()));
            }
        }
    }
}

/// A re-injection renders from a Pod where the user's istio-proxy (re-inserted from
/// `proxy.istio.io/overrides`) comes after the app containers. The first injection renders
/// from the same order, so that `ISTIO_META_POD_PORTS` does not change between the two
/// (Istio renders from the user's order the first time only). `None` when nothing moves.
pub fn user_proxy_last<'a>(pod: &Value<'a>) -> Option<Value<'a>> {
    let containers = pod::containers(pod, "containers");
    let i = containers.iter().position(|c| pod::name_of(c) == PROXY)?;
    if i + 1 == containers.len() {
        return None;
    }
    let mut moved = pod.clone();
    move_proxy_last(&mut moved);
    Some(moved)
}

pub fn move_proxy_last(pod: &mut Value) {
    if let Some(list) = pod::containers_mut(pod, "containers")
        && let Some(i) = list.iter().position(|c| pod::name_of(c) == PROXY)
    {
        let c = list.remove(i);
        list.push(c);
    }
}

/// OpenShift assigns the same `runAsUser` to every container, which would make the proxy's
/// traffic indistinguishable from the app's: Istio drops the proxy's user and group when
/// they equal the app's (`isSidecarUserMatchingAppUser`).
pub fn reset_proxy_user_matching_app(pod: &mut Value) {
    let run_as_user = |c: &Value| {
        c.get("securityContext")
            .and_then(|s| s.get("runAsUser"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let mut proxy_user = None;
    let mut app_user = 0;
    for c in pod::containers(pod, "containers")
        .iter()
        .chain(pod::containers(pod, "initContainers"))
    {
        match pod::name_of(c) {
            PROXY => {
                if c.get("securityContext").is_some_and(Value::is_object) {
                    proxy_user = Some(run_as_user(c));
                }
            }
            INIT | VALIDATION => {}
            _ => app_user = run_as_user(c),
        }
    }
    if proxy_user != Some(app_user) {
        return;
    }
    if let Some(sc) = pod::find_container_mut(pod, PROXY)
        .and_then(|c| c.get_mut("securityContext"))
        .and_then(Value::as_object_mut)
    {
        sc.remove("runAsUser");
        sc.remove("runAsGroup");
    }
}
