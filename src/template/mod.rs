//! Injection templates: each renders a partial Pod (JSON) from the template input, the way
//! Istio's Go templates render YAML. Built-in templates are Rust functions reproducing Istio's
//! Helm chart templates; custom templates come from settings as partial Pods.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::annotations as ann;
use crate::proxy_config::ProxyConfig;
use crate::settings::Settings;

mod common;
pub mod gateway;
pub mod grpc;
pub mod node;
pub mod sidecar;

/// Where the Pod comes from, as Istio's `GetDeployMetaFromPod` derives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployMeta {
    pub name: String,
    pub namespace: String,
    pub api_version: String,
    pub kind: String,
}

/// Everything a template reads (Istio's `SidecarTemplateData`).
pub struct TemplateInput<'a> {
    /// The Pod with any previous injection stripped.
    pub pod: &'a Value,
    pub settings: &'a Settings,
    pub proxy_config: &'a ProxyConfig,
    pub deploy: &'a DeployMeta,
    pub native_sidecar: bool,
    pub proxy_uid: i64,
    pub proxy_gid: i64,
    /// The Pod's annotations and labels, looked up once: templates read them dozens of times.
    annotations: Option<&'a Map<String, Value>>,
    labels: Option<&'a Map<String, Value>>,
    /// The annotations again as a list, when there are few (the fast path parses only the
    /// ones injection reads): most keys share the `sidecar.istio.io/` prefix, so a map
    /// search compares it over and over, while a scan compares lengths first.
    few_annotations: Vec<(&'a str, &'a Value)>,
}

/// Up to this many annotations are scanned rather than searched.
const SCANNED_ANNOTATIONS: usize = 16;

impl<'a> TemplateInput<'a> {
    pub fn new(
        pod: &'a Value,
        settings: &'a Settings,
        proxy_config: &'a ProxyConfig,
        deploy: &'a DeployMeta,
        native_sidecar: bool,
        (proxy_uid, proxy_gid): (i64, i64),
    ) -> Self {
        let metadata = |field: &str| {
            pod.get("metadata")
                .and_then(|m| m.get(field))
                .and_then(Value::as_object)
        };
        let annotations = metadata("annotations");
        let few_annotations = match annotations {
            Some(a) if a.len() <= SCANNED_ANNOTATIONS => {
                a.iter().map(|(k, v)| (k.as_str(), v)).collect()
            }
            _ => Vec::new(),
        };
        TemplateInput {
            pod,
            settings,
            proxy_config,
            deploy,
            native_sidecar,
            proxy_uid,
            proxy_gid,
            annotations,
            labels: metadata("labels"),
            few_annotations,
        }
    }

    pub fn annotations(&self) -> Option<&'a Map<String, Value>> {
        self.annotations
    }

    pub fn labels(&self) -> Option<&'a Map<String, Value>> {
        self.labels
    }

    /// An annotation's value if present (even empty).
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        let value = if self.few_annotations.is_empty() {
            self.annotations.and_then(|a| a.get(key))
        } else {
            self.few_annotations
                .iter()
                .find(|(k, _)| k.len() == key.len() && *k == key)
                .map(|(_, v)| *v)
        };
        value.map(|v| v.as_str().unwrap_or_default())
    }

    /// Istio's template `annotation` helper: the annotation if present, else the default.
    pub fn annotation_or<'b>(&self, key: &str, default: &'b str) -> &'b str
    where
        'a: 'b,
    {
        self.annotation(key).unwrap_or(default)
    }

    /// Sprig's `index .Labels k | default x`: a missing or empty label gives the default.
    pub fn label_nonempty(&self, key: &str) -> Option<&'a str> {
        self.labels
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn deploy_name(&self) -> &'a str {
        &self.deploy.name
    }

    pub fn containers(&self) -> &'a [Value] {
        self.pod
            .get("spec")
            .and_then(|s| s.get("containers"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn interception_mode(&self) -> &'a str {
        self.annotation_or(
            ann::INTERCEPTION_MODE,
            self.proxy_config.interception_mode(),
        )
    }

    /// The status port as the templates print it: the annotation verbatim, else the value.
    pub fn status_port(&self) -> Cow<'a, str> {
        match self.annotation(ann::STATUS_PORT) {
            Some(port) => Cow::Borrowed(port),
            None => Cow::Owned(self.settings.values.global.proxy.status_port.to_string()),
        }
    }
}

/// A JSON object from its fields. `json!` would pass every non-literal field through serde's
/// serializer, a deep copy; here the values are moved in.
pub fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    let mut m = Map::new();
    for (k, v) in fields {
        m.insert(k.to_owned(), v);
    }
    Value::Object(m)
}

/// An env entry `{"name": name, "value": value}`.
pub fn env_var(name: &str, value: impl Into<String>) -> Value {
    object([
        ("name", name.into()),
        ("value", Value::String(value.into())),
    ])
}

/// A list of strings as a JSON array.
pub fn string_array<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Value {
    Value::Array(items.into_iter().map(|s| Value::String(s.into())).collect())
}

/// Renders the named built-in or custom template.
pub fn render(name: &str, input: &TemplateInput) -> Result<Value, String> {
    if let Some(custom) = input.settings.templates.get(name) {
        return custom_template(name, custom);
    }
    match name {
        "sidecar" => Ok(sidecar::render(input).into_value()),
        "gateway" => Ok(gateway::render(input).into_value()),
        "grpc-simple" => Ok(grpc::render_simple(input)),
        "grpc-agent" => Ok(grpc::render_agent(input)),
        other => Err(format!(
            "requested template {other:?} not found; have {}",
            input.settings.known_templates().join(", ")
        )),
    }
}

/// A template from settings: a partial Pod, given as an object or as a YAML/JSON string.
pub fn custom_template(name: &str, template: &Value) -> Result<Value, String> {
    match template {
        Value::Object(_) => Ok(template.clone()),
        Value::String(text) => serde_yaml::from_str::<Value>(text)
            .map_err(|e| format!("template {name:?} is not valid YAML: {e}"))
            .and_then(|v| {
                if v.is_object() {
                    Ok(v)
                } else {
                    Err(format!(
                        "template {name:?} must be a partial Pod (an object)"
                    ))
                }
            }),
        _ => Err(format!(
            "template {name:?} must be a partial Pod (an object)"
        )),
    }
}

/// Image URL as Istio's `imageURL`: `hub/name:tag`, with a known image-type suffix of the tag
/// replaced by `image_type` (`default` removes it).
pub fn image_url(hub: &str, name: &str, tag: &str, image_type: &str) -> String {
    let mut tag = tag;
    if !image_type.is_empty() {
        for known in ["distroless", "debug"] {
            if let Some(stripped) = tag.strip_suffix(known).and_then(|t| t.strip_suffix('-')) {
                tag = stripped;
                break;
            }
        }
    }
    if image_type.is_empty() || image_type == "default" {
        format!("{hub}/{name}:{tag}")
    } else {
        format!("{hub}/{name}:{tag}-{image_type}")
    }
}

/// Istio's `ProxyImage`: image name from values, type from annotation, ProxyConfig or variant.
pub fn proxy_image(input: &TemplateInput) -> String {
    let g = &input.settings.values.global;
    let name = if g.proxy.image.is_empty() {
        "proxyv2"
    } else {
        &g.proxy.image
    };
    image_with_type(input, name, input.proxy_config.image_type())
}

/// Istio's `ProxyInitImage`.
pub fn proxy_init_image(input: &TemplateInput) -> String {
    let g = &input.settings.values.global;
    let name = if g.proxy_init.image.is_empty() {
        "proxyv2"
    } else {
        &g.proxy_init.image
    };
    image_with_type(input, name, "")
}

fn image_with_type(input: &TemplateInput, name: &str, proxy_config_type: &str) -> String {
    let g = &input.settings.values.global;
    let mut image_type = proxy_config_type;
    if image_type.is_empty() {
        image_type = &g.variant;
    }
    if let Some(t) = input.annotation(ann::PROXY_IMAGE_TYPE) {
        image_type = t;
    }
    image_url(&g.hub, name, &g.tag, image_type)
}

/// Istio's `excludeInboundPort`: appends the status port to the excluded list unless it is
/// 0, blank or already there.
pub fn exclude_inbound_port(status_port: &str, excluded: &str) -> String {
    let port = status_port.trim();
    if port.is_empty() || port == "0" {
        return excluded.to_string();
    }
    let mut out: Vec<&str> = Vec::new();
    for p in excluded.split(',') {
        if p == port {
            return excluded.to_string();
        }
        let p = p.trim();
        if !p.is_empty() {
            out.push(p);
        }
    }
    out.push(port);
    out.join(",")
}

/// Sprig's `trunc 63 | trimAll "-_."` on a canonical name.
pub fn truncate_canonical_name(name: &str) -> String {
    let truncated: String = name.chars().take(63).collect();
    truncated
        .trim_matches(|c| c == '-' || c == '_' || c == '.')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_read_the_same_scanned_or_searched() {
        let settings = Settings::default();
        let proxy_config = ProxyConfig::with_overlay(&settings.mesh_config.default_config, None);
        let deploy = DeployMeta::default();
        for count in [0, 3, SCANNED_ANNOTATIONS, SCANNED_ANNOTATIONS + 1, 40] {
            let mut annotations: Map<String, Value> = (0..count)
                .map(|i| {
                    (
                        format!("sidecar.istio.io/k{i}"),
                        Value::from(format!("v{i}")),
                    )
                })
                .collect();
            annotations.insert("sidecar.istio.io/number".into(), 7.into());
            let pod = serde_json::json!({"metadata": {"annotations": annotations}});
            let input = TemplateInput::new(&pod, &settings, &proxy_config, &deploy, false, (1, 1));
            assert_eq!(
                input.few_annotations.is_empty(),
                count + 1 > SCANNED_ANNOTATIONS
            );
            for i in 0..count {
                let expected = format!("v{i}");
                let key = format!("sidecar.istio.io/k{i}");
                assert_eq!(input.annotation(&key), Some(expected.as_str()));
            }
            // Not a string: present, read as empty (as the map lookup always did).
            assert_eq!(input.annotation("sidecar.istio.io/number"), Some(""));
            assert_eq!(input.annotation("sidecar.istio.io/k"), None);
            assert_eq!(input.annotation("sidecar.istio.io/absent"), None);
        }
    }

    /// Every `Node::Raw` constant the built-in templates render, under settings that reach
    /// each of them, is valid JSON (a Value path would otherwise read it as null).
    #[test]
    fn raw_constants_are_json() {
        fn check(node: &node::Node, seen: &mut usize) {
            match node {
                node::Node::Raw(text) => {
                    *seen += 1;
                    let parsed: Result<Value, _> = serde_json::from_str(text);
                    assert!(parsed.is_ok(), "not JSON: {text}");
                }
                node::Node::Arr(items) => items.iter().for_each(|i| check(i, seen)),
                node::Node::Obj(m) => {
                    let value = node::Node::Obj(m.clone()).into_value();
                    assert!(value.is_object());
                    for field in ["spec", "containers", "initContainers", "env", "volumes"] {
                        if let Some(child) = m.get(field) {
                            check(child, seen);
                        }
                    }
                    for field in [
                        "volumeMounts",
                        "ports",
                        "lifecycle",
                        "readinessProbe",
                        "startupProbe",
                        "securityContext",
                        "capabilities",
                        "emptyDir",
                        "downwardAPI",
                        "valueFrom",
                        "httpGet",
                        "drop",
                    ] {
                        if let Some(child) = m.get(field) {
                            check(child, seen);
                        }
                    }
                }
                _ => {}
            }
        }
        let pod = serde_json::json!({
            "metadata": {"annotations": {"sidecar.istio.io/bootstrapOverride": "cm"}},
            "spec": {"containers": [{"name": "app"}]},
        });
        let mut variants = vec![Settings::default()];
        let mut gke = Settings::default();
        gke.values.global.ca_name = "GkeWorkloadCertificate".into();
        gke.values.global.mount_mtls_certs = true;
        variants.push(gke);
        let mut native = Settings {
            native_sidecars: true,
            ..Settings::default()
        };
        native.values.pilot.cni.enabled = true;
        variants.push(native);
        let mut hold = Settings::default();
        hold.values.global.proxy.hold_application_until_proxy_starts = true;
        variants.push(hold);
        let mut seen = 0;
        for settings in &variants {
            let proxy_config =
                ProxyConfig::with_overlay(&settings.mesh_config.default_config, None);
            let deploy = DeployMeta::default();
            let input = TemplateInput::new(
                &pod,
                settings,
                &proxy_config,
                &deploy,
                settings.native_sidecars,
                (1337, 1337),
            );
            check(&sidecar::render(&input), &mut seen);
            check(&gateway::render(&input), &mut seen);
        }
        assert!(seen > 60, "{seen} constants seen");
    }

    #[test]
    fn image_urls() {
        assert_eq!(image_url("h", "proxyv2", "1.2", ""), "h/proxyv2:1.2");
        assert_eq!(
            image_url("h", "proxyv2", "1.2", "distroless"),
            "h/proxyv2:1.2-distroless"
        );
        assert_eq!(
            image_url("h", "proxyv2", "1.2-debug", "distroless"),
            "h/proxyv2:1.2-distroless"
        );
        assert_eq!(
            image_url("h", "proxyv2", "1.2-debug", "default"),
            "h/proxyv2:1.2"
        );
        assert_eq!(
            image_url("h", "proxyv2", "1.2-debug", ""),
            "h/proxyv2:1.2-debug"
        );
    }

    #[test]
    fn exclude_inbound_ports() {
        assert_eq!(exclude_inbound_port("15020", ""), "15020");
        assert_eq!(exclude_inbound_port("15020", "80, 81"), "80,81,15020");
        assert_eq!(exclude_inbound_port("15020", "80,15020"), "80,15020");
        assert_eq!(exclude_inbound_port("0", "80"), "80");
        assert_eq!(exclude_inbound_port("", ""), "");
    }

    #[test]
    fn canonical_name_truncation() {
        assert_eq!(truncate_canonical_name("-a.b_"), "a.b");
        let long = format!("{}-x", "a".repeat(62));
        assert_eq!(truncate_canonical_name(&long), "a".repeat(62));
    }
}
