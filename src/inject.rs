//! Stage C: render the templates onto the Pod and post-process it, as Istio's `injectPod`
//! does. The Pod is JSON throughout, so fields the policy does not know survive untouched.

use serde_json::{Map, Value, json};

use crate::annotations::{self as ann, STATUS};
use crate::merge::{merge, merge_keeping_order, merge_onto_pod};
use crate::pod;
use crate::prerender::Prerendered;
use crate::probes;
use crate::prometheus;
use crate::proxy_config::ProxyConfig;
use crate::settings::Settings;
use crate::template::{self, TemplateInput, env_var, object};

const PROXY: &str = "istio-proxy";
const INIT: &str = "istio-init";
const VALIDATION: &str = "istio-validation";
const CORE_DUMP: &str = "enable-core-dump";

/// How the injected containers come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containers {
    /// In the Pod, as values.
    AsValues,
    /// Where possible, as placeholders in the Pod and trees aside (see `prerender`).
    Prerendered,
}

/// Injects the sidecar into `pod` (consumed and returned). `namespace` is the Pod's
/// namespace; `namespace_annotations` feed OpenShift's UID ranges.
pub fn inject(
    pod: Value,
    settings: &Settings,
    namespace: &str,
    namespace_annotations: Option<&Map<String, Value>>,
) -> Result<Value, String> {
    inject_with(
        pod,
        settings,
        namespace,
        namespace_annotations,
        Containers::AsValues,
    )
    .map(|(pod, _)| pod)
}

/// [`inject`], with the injected containers returned as `containers` says.
pub fn inject_with(
    mut pod: Value,
    settings: &Settings,
    namespace: &str,
    namespace_annotations: Option<&Map<String, Value>>,
    containers: Containers,
) -> Result<(Value, Prerendered), String> {
    // Validation parses proxy.istio.io/config; the result is used as is.
    let proxy_config_overlay =
        ann::validate_and_parse_proxy_config(pod::metadata_map(&pod, "annotations"))?;

    let templates = selected_templates(&pod, settings)?;
    let proxy_config =
        ProxyConfig::with_overlay(&settings.mesh_config.default_config, proxy_config_overlay);
    // The mesh-wide status port (Istio's meshConfig.defaultConfig.statusPort) drives the
    // Prometheus merge and probe rewriting; the pod annotation only the templates.
    let mesh_status_port = crate::proxy_config::status_port(&settings.mesh_config.default_config);
    let network = pod::metadata_map(&pod, "labels")
        .and_then(|l| l.get("topology.istio.io/network"))
        .and_then(Value::as_str)
        .unwrap_or(&settings.values.global.network)
        .to_string();
    let deploy = pod::deploy_meta(&pod, namespace);
    let openshift = settings
        .values
        .global
        .platform
        .eq_ignore_ascii_case("openshift");
    let (proxy_uid, proxy_gid) = proxy_ids(namespace_annotations.filter(|_| openshift));
    if openshift {
        reset_proxy_user_matching_app(&mut pod);
    }
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

    // Render every template from the stripped Pod (Istio renders all from the same input).
    let stripped = match strip(&pod, previous_status.as_ref(), mesh_status_port)? {
        Some(mut stripped) => {
            move_proxy_last(&mut stripped);
            Some(stripped)
        }
        None => user_proxy_last(&pod),
    };
    // Keeping containers aside needs the first injection of the built-in sidecar template
    // alone, with no cluster or network env to move to the end of the proxy's env.
    let prerender = containers == Containers::Prerendered
        && stripped.is_none()
        && previous_status.is_none()
        && templates == ["sidecar"]
        && !settings.templates.contains_key("sidecar")
        && settings.values.global.multi_cluster.cluster_name.is_empty()
        && network.is_empty();
    let mut prerendered = Prerendered::default();
    let rendered: Vec<Value> = {
        let input = TemplateInput::new(
            stripped.as_ref().unwrap_or(&pod),
            settings,
            &proxy_config,
            &deploy,
            native_for_template,
            (proxy_uid, proxy_gid),
        );
        if prerender {
            let (template, kept) = Prerendered::split(template::sidecar::render(&input), &pod);
            prerendered = kept;
            vec![template]
        } else {
            templates
                .iter()
                .map(|name| template::render(name, &input))
                .collect::<Result<_, _>>()?
        }
    };
    drop(stripped);

    let template_pod = TemplateNames::of(&rendered).with_kept(&prerendered);
    // The user's versions of containers the templates define are re-applied on top later.
    let originals = OriginalContainers::capture(&pod, &template_pod);

    // Merge each template onto the Pod, in order.
    // Whether a template so far injects istio-proxy as an init container (merging names
    // only adds, so this is Istio's check on the template Pod merged so far).
    let mut proxy_in_init = false;
    // A container istio-proxy moves to the init containers: the user's own, or a classic
    // sidecar injected before (re-injected as a native one). But when the previous injection
    // was native already, a container istio-proxy beside it came from a template chained
    // after the sidecar (Istio's `spire`), and stays.
    let injected_proxy_container = previous_status.as_ref().is_some_and(|st| {
        st.containers.iter().any(|n| n == PROXY) && st.init_containers.iter().any(|n| n == PROXY)
    });
    for r in rendered {
        proxy_in_init = proxy_in_init || has_container(&r, "initContainers", PROXY);
        if native_for_move
            && proxy_in_init
            && !injected_proxy_container
            && has_container(&pod, "containers", PROXY)
        {
            move_container_to_init(&mut pod, PROXY);
        }
        if previous_status.is_some() {
            // Re-injection: the previous injection's order is kept everywhere, so that
            // injecting again changes nothing.
            merge_keeping_order(&mut pod, r);
        } else {
            merge_onto_pod(&mut pod, r);
        }
    }
    prerendered.place(&mut pod);
    normalize_injected(&mut pod, &template_pod, &originals, &prerendered);

    reapply_user_containers(
        &mut pod,
        &template_pod,
        &originals,
        previous_status.as_ref(),
    )?;
    let reinjected = previous_status.as_ref().is_some_and(|st| {
        st.containers
            .iter()
            .chain(&st.init_containers)
            .any(|n| n == PROXY)
    });
    adjust_init_container_user(&mut pod, &originals, &proxy_config, reinjected);

    post_process(
        &mut pod,
        &template_pod,
        settings,
        &network,
        mesh_status_port,
        &proxy_config,
    )?;
    prerendered.absorb(&mut pod);
    Ok((pod, prerendered))
}

/// The Pod lists whose items Istio reads back by name from the template Pod.
const NAMED_LISTS: [&str; 4] = [
    "initContainers",
    "containers",
    "volumes",
    "imagePullSecrets",
];

/// What the templates inject, by name: Istio's template Pod (the rendered templates merged),
/// as far as it is read — the names in its containers, init containers, volumes and pull
/// secrets, in `NAMED_LISTS` order.
struct TemplateNames([Vec<String>; 4]);

impl TemplateNames {
    fn of(rendered: &[Value]) -> Self {
        let names = |pod: &Value| {
            NAMED_LISTS.map(|field| {
                pod::containers(pod, field)
                    .iter()
                    .map(|c| pod::name_of(c).to_string())
                    .collect()
            })
        };
        if let [only] = rendered {
            // Merged onto nothing, a template is its own template Pod.
            return TemplateNames(names(only));
        }
        let mut template_pod = Value::Object(Map::new());
        for r in rendered {
            merge(&mut template_pod, names_of(r));
        }
        TemplateNames(names(&template_pod))
    }

    /// With the names of the trees kept aside, which the rendered template no longer holds.
    fn with_kept(mut self, kept: &Prerendered) -> Self {
        for (field, names) in NAMED_LISTS.iter().zip(self.0.iter_mut()) {
            if let Some(kept) = kept.names(field) {
                *names = kept.map(str::to_string).collect();
            }
        }
        self
    }

    /// The names in one of `NAMED_LISTS`.
    fn list(&self, field: &str) -> &[String] {
        NAMED_LISTS
            .iter()
            .position(|f| *f == field)
            .map_or(&[], |i| &self.0[i])
    }

    fn has(&self, field: &str, name: &str) -> bool {
        self.list(field).iter().any(|n| n == name)
    }
}

/// The names of what a rendered template injects, as a partial Pod.
fn names_of(rendered: &Value) -> Value {
    let mut spec = Map::new();
    for field in NAMED_LISTS {
        if let Some(items) = rendered
            .get("spec")
            .and_then(|s| s.get(field))
            .and_then(Value::as_array)
        {
            let names = items
                .iter()
                .map(|i| object([("name", i.get("name").cloned().unwrap_or(Value::Null))]))
                .collect();
            spec.insert(field.to_string(), Value::Array(names));
        }
    }
    object([("spec", Value::Object(spec))])
}

fn annotation<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    pod::metadata_map(pod, "annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// At most this many templates are chained (after aliases, repeats in a row counted once):
/// each costs a rendering and a merge, and a Pod listing thousands must be refused with a
/// message rather than time out in the webhook.
const MAX_TEMPLATES: usize = 64;

/// Template names from `inject.istio.io/templates` or the default, with aliases expanded.
/// A template repeated in a row is applied once: merging the same partial Pod again
/// changes nothing.
fn selected_templates(pod: &Value, settings: &Settings) -> Result<Vec<String>, String> {
    let names: Vec<String> = match annotation(pod, ann::TEMPLATES) {
        Some(list) => list.split(',').map(|n| n.trim().to_string()).collect(),
        None => settings.default_templates.clone(),
    };
    let mut out: Vec<String> = Vec::with_capacity(names.len().min(MAX_TEMPLATES));
    for name in names {
        let expanded = match settings.aliases.get(&name) {
            Some(targets) => targets.clone(),
            None => vec![name],
        };
        for name in expanded {
            if out.last() != Some(&name) {
                out.push(name);
            }
        }
        if out.len() > MAX_TEMPLATES {
            return Err(format!(
                "annotation '{}' asks for more than {MAX_TEMPLATES} templates",
                ann::TEMPLATES
            ));
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
            // A set: hostile Pods may list thousands of names.
            let names: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
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
        let parsed: Value = serde_json::from_str(raw).map_err(|e| {
            format!(
                "invalid value for annotation '{}': {e}",
                ann::PROXY_OVERRIDES
            )
        })?;
        let mut present: std::collections::HashSet<(&str, String)> =
            ["containers", "initContainers"]
                .iter()
                .flat_map(|f| {
                    pod::containers(&stripped, f)
                        .iter()
                        .map(move |c| (*f, pod::name_of(c).to_string()))
                })
                .collect();
        let mut additions: Vec<(&str, Value)> = Vec::new();
        for field in ["containers", "initContainers"] {
            let Some(saved) = parsed.get(field).and_then(Value::as_array) else {
                continue;
            };
            // A forged annotation may hold anything: only named containers count.
            for c in saved
                .iter()
                .filter(|c| c.get("name").is_some_and(Value::is_string))
            {
                // With native sidecars Istio records a user's istio-proxy under
                // initContainers even when the user declared it as a container (it was
                // moved there); without restartPolicy it was a container, and it goes back
                // there so that the template sees the same Pod as the first time.
                let field = if field == "initContainers"
                    && pod::name_of(c) == PROXY
                    && c.get("restartPolicy").is_none()
                {
                    "containers"
                } else {
                    field
                };
                if present.insert((field, pod::name_of(c).to_string())) {
                    additions.push((field, c.clone()));
                }
            }
        }
        for (field, c) in additions {
            pod::list_mut(&mut stripped, field).push(c);
        }
    }
    Ok(Some(stripped))
}

/// A re-injection renders from a Pod where the user's istio-proxy (re-inserted from
/// `proxy.istio.io/overrides`) comes after the app containers. The first injection renders
/// from the same order, so that `ISTIO_META_POD_PORTS` does not change between the two
/// (Istio renders from the user's order the first time only). `None` when nothing moves.
fn user_proxy_last(pod: &Value) -> Option<Value> {
    let containers = pod::containers(pod, "containers");
    let i = containers.iter().position(|c| pod::name_of(c) == PROXY)?;
    if i + 1 == containers.len() {
        return None;
    }
    let mut moved = pod.clone();
    move_proxy_last(&mut moved);
    Some(moved)
}

fn move_proxy_last(pod: &mut Value) {
    if let Some(list) = pod::containers_mut(pod, "containers")
        && let Some(i) = list.iter().position(|c| pod::name_of(c) == PROXY)
    {
        let c = list.remove(i);
        list.push(c);
    }
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
    /// Captures the Pod's containers whose names a template defines, and the user's own
    /// istio-proxy (which also steers the init container's user).
    fn capture(pod: &Value, template_pod: &TemplateNames) -> Self {
        let wanted = |name: &str| {
            name == PROXY
                || ["containers", "initContainers"]
                    .iter()
                    .any(|f| template_pod.has(f, name))
        };
        let pick = |field: &str| -> Vec<Value> {
            pod::containers(pod, field)
                .iter()
                .filter(|c| wanted(pod::name_of(c)))
                .cloned()
                .collect()
        };
        OriginalContainers {
            containers: pick("containers"),
            init_containers: pick("initContainers"),
            saved: annotation(pod, ann::PROXY_OVERRIDES).and_then(|s| serde_json::from_str(s).ok()),
        }
    }

    /// The user's istio-proxy as Istio's `FindSidecar` finds it in the original Pod. On a
    /// re-injection the Pod's istio-proxy is the previous injection: the user's version is
    /// then the one saved in `proxy.istio.io/overrides`, if any.
    fn user_proxy(&self, reinjected: bool) -> Option<&Value> {
        if reinjected {
            return self
                .saved("containers", PROXY)
                .or_else(|| self.saved("initContainers", PROXY));
        }
        self.containers
            .iter()
            .chain(self.init_containers.iter())
            .find(|c| pod::name_of(c) == PROXY)
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
    template_pod: &TemplateNames,
    originals: &OriginalContainers,
    status: Option<&Status>,
) -> Result<(), String> {
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
                    .or_else(|| originals.saved(field, name))
            };
            let Some(found) = found else { continue };
            let mut overlay = found.clone();
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
            let target_field = if has_container(pod, field, name) {
                field
            } else {
                other(field)
            };
            overlays.push(crate::go_json::container(&overlay));
            let spec = object([(target_field, Value::Array(vec![overlay]))]);
            merge_onto_pod(pod, object([("spec", spec)]));
        }
        if !overlays.is_empty() {
            applied.push((field, crate::json_text::array(overlays)));
        }
    }
    if status.is_none() && !applied.is_empty() {
        // Go's ParsedContainers: containers, then initContainers.
        let text = applied
            .iter()
            .fold(crate::json_text::Object::new(), |o, (k, v)| o.raw(k, v))
            .finish();
        pod::metadata_map_mut(pod, "annotations").insert(ann::PROXY_OVERRIDES.into(), text.into());
    }
    Ok(())
}

/// Istio's `adjustInitContainerUser`: a user-set `runAsUser`/`runAsGroup` on istio-proxy
/// carries over to the traffic-capture container (`-u`, and the CNI validation container's
/// user); under TPROXY the proxy must stay root.
fn adjust_init_container_user(
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
        .find(|n| has_container(pod, "initContainers", n))
    else {
        return;
    };
    let tproxy = proxy_config.interception_mode() == "TPROXY"
        || annotation(pod, ann::INTERCEPTION_MODE) == Some("TPROXY");
    if tproxy
        && run_as_user.is_some()
        && let Some(proxy) = find_container_mut(pod, PROXY)
        && let Some(sc) = proxy
            .get_mut("securityContext")
            .and_then(Value::as_object_mut)
    {
        sc.insert("runAsUser".into(), 0.into());
    }
    let Some(init) = pod::containers_mut(pod, "initContainers")
        .and_then(|l| l.iter_mut().find(|c| pod::name_of(c) == init_name))
    else {
        return;
    };
    if !tproxy && init_name == VALIDATION {
        let sc = pod::ensure_object(init)
            .entry("securityContext")
            .or_insert_with(|| json!({}));
        let sc = pod::ensure_object(sc);
        if let Some(u) = run_as_user {
            sc.insert("runAsUser".into(), u.into());
        }
        if let Some(g) = run_as_group {
            sc.insert("runAsGroup".into(), g.into());
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

/// Istio's `FindSidecar`-style lookup: containers first, then init containers.
fn find_container_mut<'a>(pod: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    let field = if has_container(pod, "containers", name) {
        "containers"
    } else {
        "initContainers"
    };
    pod::containers_mut(pod, field)?
        .iter_mut()
        .find(|c| pod::name_of(c) == name)
}

/// Containers Istio adds pass through Go's typed Pod, which drops empty lists and always
/// writes `resources`. The same is done to the containers the templates added (never to the
/// user's own containers).
fn normalize_injected(
    pod: &mut Value,
    template_pod: &TemplateNames,
    originals: &OriginalContainers,
    prerendered: &Prerendered,
) {
    for field in ["containers", "initContainers"] {
        let names = template_pod.list(field);
        let Some(list) = pod::containers_mut(pod, field) else {
            continue;
        };
        for c in list.iter_mut() {
            let name = pod::name_of(c);
            // A placeholder: its tree was normalized when it was set aside.
            if !names.iter().any(|n| n == name) || prerendered.get(name).is_some() {
                continue;
            }
            let user_defined =
                originals.find(field, name).is_some() || originals.saved(field, name).is_some();
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
                obj.entry("resources").or_insert_with(|| json!({}));
            }
        }
    }
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
    template_pod: &TemplateNames,
    settings: &Settings,
    network: &str,
    mesh_status_port: u16,
    proxy_config: &ProxyConfig,
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
    let reinjection = annotation(pod, STATUS).is_some();
    if !cluster_envs.is_empty()
        && let Some(env) = proxy_env_mut(pod)
    {
        if reinjection {
            // Already moved by the previous injection: update in place.
            for (k, v) in &cluster_envs {
                match env
                    .iter_mut()
                    .find(|e| e.get("name").and_then(Value::as_str) == Some(k))
                {
                    Some(e) => *e = env_var(k, *v),
                    None => env.push(env_var(k, *v)),
                }
            }
        } else {
            env.retain(|e| {
                !cluster_envs
                    .iter()
                    .any(|(k, _)| e.get("name").and_then(Value::as_str) == Some(k))
            });
            for (k, v) in &cluster_envs {
                env.push(env_var(k, *v));
            }
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
        // The app's probes, as they were, are handed to the agent; the Pod's now aim at it.
        if let Some(dumped) = probes::take_over(pod, mesh_status_port) {
            let previously_injected = annotation(pod, STATUS).is_some();
            if let Some(env) = proxy_env_mut(pod) {
                merge_or_append_probers(env, previously_injected, dumped);
            }
        }
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

    reorder(pod, settings, proxy_config);
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
            *existing = env_var(probes::ENV, probes::probers_text(&merged));
        }
        return;
    }
    env.push(env_var(probes::ENV, new));
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
fn status_annotation(template_pod: &TemplateNames, revision: &str) -> String {
    use crate::json_text::push_string;
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

/// OpenShift assigns the same `runAsUser` to every container, which would make the proxy's
/// traffic indistinguishable from the app's: Istio drops the proxy's user and group when
/// they equal the app's (`isSidecarUserMatchingAppUser`).
fn reset_proxy_user_matching_app(pod: &mut Value) {
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
    if let Some(sc) = find_container_mut(pod, PROXY)
        .and_then(|c| c.get_mut("securityContext"))
        .and_then(Value::as_object_mut)
    {
        sc.remove("runAsUser");
        sc.remove("runAsGroup");
    }
}

/// Istio's `GetProxyIDs`: 1337/1337, or OpenShift's preallocated ranges from the namespace.
fn proxy_ids(namespace_annotations: Option<&Map<String, Value>>) -> (i64, i64) {
    let mut uid = 1337;
    let mut gid = 1337;
    let Some(a) = namespace_annotations else {
        return (uid, gid);
    };
    // The proxy gets the highest UID of the namespace's range...
    let annotation = |k: &str| a.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    if let Some(max) = annotation("openshift.io/sa.scc.uid-range").and_then(range_max) {
        uid = max;
    }
    // ...and the highest GID of the first supplemental group block (falling back to the UID
    // range); every block must parse.
    let groups = annotation("openshift.io/sa.scc.supplemental-groups")
        .or_else(|| annotation("openshift.io/sa.scc.uid-range"));
    if let Some(groups) = groups {
        let blocks: Option<Vec<i64>> = groups.split(',').map(range_max).collect();
        if let Some(first) = blocks.as_ref().and_then(|b| b.first()) {
            gid = *first;
        }
    }
    (uid, gid)
}

/// The last ID of an OpenShift block, `start/size` or `start-end`.
fn range_max(range: &str) -> Option<i64> {
    let parse = |s: &str| s.trim().parse::<u32>().ok().map(i64::from);
    if let Some((start, size)) = range.split_once('/') {
        let (start, size) = (parse(start)?, parse(size)?);
        (size > 0).then(|| start + size - 1)
    } else {
        let (start, end) = range.split_once('-')?;
        let (_, end) = (parse(start)?, parse(end)?);
        Some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_format_is_istios() {
        let t = json!({"spec": {"initContainers": [{"name": "istio-init"}], "containers": [{"name": "istio-proxy"}], "volumes": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(
            status_annotation(&TemplateNames::of(&[t]), ""),
            r#"{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["a","b"],"imagePullSecrets":null,"revision":"default"}"#
        );
    }

    fn pod_with_templates(list: &str) -> Value {
        json!({"metadata": {"annotations": {ann::TEMPLATES: list}}})
    }

    #[test]
    fn templates_repeated_in_a_row_are_applied_once() {
        let s = Settings::default();
        let t = selected_templates(&pod_with_templates("sidecar, sidecar,sidecar"), &s).unwrap();
        assert_eq!(t, ["sidecar"]);
        // Not in a row: each is applied in its place.
        let t = selected_templates(&pod_with_templates("sidecar,gateway,sidecar"), &s).unwrap();
        assert_eq!(t, ["sidecar", "gateway", "sidecar"]);
        let long = vec!["sidecar"; 100_000].join(",");
        assert_eq!(
            selected_templates(&pod_with_templates(&long), &s).unwrap(),
            ["sidecar"]
        );
    }

    #[test]
    fn more_than_sixty_four_templates_are_refused_naming_the_annotation() {
        let s = Settings::default();
        let alternating = vec!["sidecar,gateway"; 33].join(",");
        let err = selected_templates(&pod_with_templates(&alternating), &s).unwrap_err();
        assert_eq!(
            err,
            "annotation 'inject.istio.io/templates' asks for more than 64 templates"
        );
        let fine = vec!["sidecar,gateway"; 32].join(",");
        assert_eq!(
            selected_templates(&pod_with_templates(&fine), &s)
                .unwrap()
                .len(),
            64
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
        let a = json!({"openshift.io/sa.scc.uid-range": "1000-1999"});
        assert_eq!(proxy_ids(a.as_object()), (1999, 1999));
        let a = json!({"openshift.io/sa.scc.supplemental-groups": "5000/10,bad"});
        assert_eq!(proxy_ids(a.as_object()), (1337, 1337));
        assert_eq!(proxy_ids(None), (1337, 1337));
    }
}
