//! Stage C: the sidecar put into the Pod, as Istio's `injectPod` does it: render the
//! templates from the Pod (`RunTemplate`), merge them onto it, re-apply the user's own
//! versions of the injected containers (`reapplyOverwrittenContainers`), then post-process
//! (`postProcessPod`, in [`post_process`]). The Pod is JSON throughout, so fields the policy
//! does not know survive untouched.

mod post_process;
mod reinjection;
mod user_containers;

use crate::annotations::{self as ann, STATUS};
use crate::json::{Map, Value, object};
use crate::merge::{merge, merge_keeping_order, merge_onto_pod};
use crate::pod;
use crate::proxy_config::ProxyConfig;
use crate::settings::Settings;
use crate::template::{self, TemplateInput};

use crate::injection_status::SidecarInjectionStatus;
use user_containers::OriginalContainers;

pub(crate) const PROXY: &str = "istio-proxy";
const INIT: &str = "istio-init";
const VALIDATION: &str = "istio-validation";
const CORE_DUMP: &str = "enable-core-dump";

/// What injection needs besides the Pod: the settings and the facts of its namespace.
struct Context<'c> {
    settings: &'c Settings,
    /// The Pod's effective ProxyConfig: the mesh's, with `proxy.istio.io/config` on top.
    proxy_config: ProxyConfig,
    /// The mesh-wide status port (`meshConfig.defaultConfig.statusPort`): the Prometheus
    /// merge and probe rewriting use it; the pod annotation only the templates.
    mesh_status_port: u16,
    /// `topology.istio.io/network` of the Pod, else the mesh's network.
    network: String,
}

/// Injects the sidecar into `pod` (consumed and returned). `namespace` is the Pod's
/// namespace; `namespace_annotations` feed OpenShift's UID ranges.
pub fn inject<'s>(
    mut pod: Value<'s>,
    settings: &'s Settings,
    namespace: &str,
    namespace_annotations: Option<&Map>,
) -> Result<Value<'s>, String> {
    // Validation parses proxy.istio.io/config; the result is used as is.
    let proxy_config_overlay =
        ann::validate_and_parse_proxy_config(pod::metadata_map(&pod, "annotations"))?;
    let templates = selected_templates(&pod, settings)?;
    let context = Context {
        settings,
        proxy_config: ProxyConfig::with_overlay(
            &settings.mesh_config.default_config,
            proxy_config_overlay,
        ),
        mesh_status_port: crate::proxy_config::status_port(&settings.mesh_config.default_config),
        network: pod::label(&pod, "topology.istio.io/network")
            .unwrap_or(&settings.values.global.network)
            .to_string(),
    };
    // Istio reads the previous injection's record twice, two ways: as Go's struct to strip
    // it (`injectionStatus`: nothing stripped when Go cannot read it), and by exact keys for
    // everything after (`parseStatus`).
    let status = pod::annotation(&pod, STATUS);
    let stripped_status = status.and_then(|s| SidecarInjectionStatus::parse(s).ok());
    // The second reading's failure is raised where Istio's webhook fails, after merging.
    let (previous_status, unreadable_status) =
        match status.map_or(Ok(None), SidecarInjectionStatus::parse_status) {
            Ok(recorded) => (recorded, None),
            Err(why) => (None, Some(why)),
        };
    let already_injected = status.is_some();

    let openshift = settings
        .values
        .global
        .platform
        .eq_ignore_ascii_case("openshift");
    if openshift {
        user_containers::reset_proxy_user_matching_app(&mut pod);
    }
    let proxy_ids = proxy_ids(namespace_annotations.filter(|_| openshift));
    let native = NativeSidecar::of(&pod, settings);

    let rendered = run_templates(
        &pod,
        &templates,
        &context,
        namespace,
        stripped_status.as_ref(),
        (native.for_template, proxy_ids),
    )?;
    let template_pod = TemplateNames::of(&rendered);
    // The user's versions of containers the templates define are re-applied on top later.
    let originals = OriginalContainers::capture(&pod, &template_pod);

    merge_templates(&mut pod, rendered, native, previous_status.as_ref());
    user_containers::normalize_injected(&mut pod, &template_pod, &originals);
    // Where Istio's second reading meets a name that is not a string, Go panics and
    // Istio's webhook fails the request: the Pod is refused here, saying why.
    if let Some(why) = unreadable_status {
        return Err(format!("{STATUS}: {why} (Istio's webhook fails on it)"));
    }
    user_containers::reapply(
        &mut pod,
        &template_pod,
        &originals,
        previous_status.as_ref(),
        already_injected,
    );
    user_containers::adjust_init_container_user(
        &mut pod,
        &originals,
        &context.proxy_config,
        previous_status
            .as_ref()
            .is_some_and(SidecarInjectionStatus::injected_proxy),
    );

    post_process::post_process(&mut pod, &template_pod, &context)?;
    Ok(pod)
}

/// Istio's `RunTemplate`: every template rendered from the same input, the Pod with any
/// previous injection stripped (Istio renders all from it).
fn run_templates<'s>(
    pod: &Value<'s>,
    templates: &[String],
    context: &Context<'s>,
    namespace: &str,
    status: Option<&SidecarInjectionStatus>,
    (native_sidecar, proxy_ids): (bool, (i64, i64)),
) -> Result<Vec<Value<'s>>, String> {
    let stripped = match reinjection::strip(pod, status, context.mesh_status_port)? {
        Some(mut stripped) => {
            user_containers::move_proxy_last(&mut stripped);
            Some(stripped)
        }
        None => user_containers::user_proxy_last(pod),
    };
    let input_pod = stripped.as_ref().unwrap_or(pod);
    let deploy = pod::deploy_meta(pod, namespace);
    let input = TemplateInput::new(
        input_pod,
        context.settings,
        &context.proxy_config,
        &deploy,
        native_sidecar,
        proxy_ids,
    );
    templates
        .iter()
        .map(|name| template::render(name, &input))
        .collect()
}

/// Whether istio-proxy is a native sidecar: the annotation, else the setting.
#[derive(Clone, Copy)]
struct NativeSidecar {
    /// The template's rule: any non-empty annotation value except "false" means native.
    for_template: bool,
    /// `RunTemplate`'s rule for moving a user-declared istio-proxy: exact "true"/"false".
    for_move: bool,
}

impl NativeSidecar {
    fn of(pod: &Value, settings: &Settings) -> Self {
        let annotation = pod::annotation(pod, ann::NATIVE_SIDECAR);
        let default = settings.native_sidecars;
        NativeSidecar {
            for_template: match annotation {
                Some(v) if !v.is_empty() => v != "false",
                _ => default,
            },
            for_move: match annotation {
                Some("true") => true,
                Some("false") => false,
                _ => default,
            },
        }
    }
}

/// Merges each rendered template onto the Pod, in order.
fn merge_templates<'s>(
    pod: &mut Value<'s>,
    rendered: Vec<Value<'s>>,
    native: NativeSidecar,
    previous_status: Option<&SidecarInjectionStatus>,
) {
    // Whether a template so far injects istio-proxy as an init container (merging names
    // only adds, so this is Istio's check on the template Pod merged so far).
    let mut proxy_in_init = false;
    // A container istio-proxy moves to the init containers: the user's own, or a classic
    // sidecar injected before (re-injected as a native one). But when the previous injection
    // was native already, a container istio-proxy beside it came from a template chained
    // after the sidecar (Istio's `spire`), and stays.
    let native_proxy_beside_container =
        previous_status.is_some_and(SidecarInjectionStatus::proxy_in_both_lists);
    for r in rendered {
        proxy_in_init = proxy_in_init || pod::has_container(&r, "initContainers", PROXY);
        if native.for_move
            && proxy_in_init
            && !native_proxy_beside_container
            && pod::has_container(pod, "containers", PROXY)
        {
            pod::move_container_to_init(pod, PROXY);
        }
        if previous_status.is_some() {
            // Re-injection: the previous injection's order is kept everywhere, so that
            // injecting again changes nothing.
            merge_keeping_order(pod, r);
        } else {
            merge_onto_pod(pod, r);
        }
    }
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
fn names_of<'a>(rendered: &Value<'a>) -> Value<'a> {
    let mut spec = Map::new();
    for field in NAMED_LISTS {
        if let Some(items) = rendered
            .get("spec")
            .and_then(|s| s.get(field))
            .and_then(Value::as_array)
        {
            let names = items
                .iter()
                .map(|i| object([("name", i.get("name").cloned().unwrap_or_default())]))
                .collect();
            spec.insert(field, Value::Array(names));
        }
    }
    object([("spec", Value::Object(spec))])
}

/// At most this many templates are chained (after aliases, repeats in a row counted once):
/// each costs a rendering and a merge, and a Pod listing thousands must be refused with a
/// message rather than time out in the webhook.
const MAX_TEMPLATES: usize = 64;

/// Template names from `inject.istio.io/templates` or the default, with aliases expanded.
/// A template repeated in a row is applied once: merging the same partial Pod again
/// changes nothing.
fn selected_templates(pod: &Value, settings: &Settings) -> Result<Vec<String>, String> {
    let names: Vec<String> = match pod::annotation(pod, ann::TEMPLATES) {
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

/// Istio's `GetProxyIDs`: 1337/1337, or OpenShift's preallocated ranges from the namespace.
fn proxy_ids(namespace_annotations: Option<&Map>) -> (i64, i64) {
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
    use crate::json::json;

    #[test]
    fn status_format_is_istios() {
        let t = json!({"spec": {"initContainers": [{"name": "istio-init"}], "containers": [{"name": "istio-proxy"}], "volumes": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(
            post_process::status_annotation(&TemplateNames::of(&[t]), ""),
            r#"{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["a","b"],"imagePullSecrets":null,"revision":"default"}"#
        );
    }

    fn pod_with_templates(list: &str) -> Value<'_> {
        let mut annotations = Map::new();
        annotations.insert(ann::TEMPLATES, list.into());
        json!({"metadata": {"annotations": (annotations)}})
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
    fn openshift_ranges() {
        let ids = |text: &str| {
            let a = Value::parse(text).unwrap();
            proxy_ids(a.as_object())
        };
        assert_eq!(
            ids(
                r#"{"openshift.io/sa.scc.uid-range": "1000680000/10000", "openshift.io/sa.scc.supplemental-groups": "1000680000/10000"}"#
            ),
            (1000689999, 1000689999)
        );
        assert_eq!(
            ids(r#"{"openshift.io/sa.scc.uid-range": "1000-1999"}"#),
            (1999, 1999)
        );
        assert_eq!(
            ids(r#"{"openshift.io/sa.scc.supplemental-groups": "5000/10,bad"}"#),
            (1337, 1337)
        );
        assert_eq!(proxy_ids(None), (1337, 1337));
    }
}
