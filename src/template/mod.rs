//! Injection templates: each renders a partial Pod from the template input, the way Istio's
//! Go templates render YAML. Built-in templates are Rust functions reproducing Istio's Helm
//! chart templates; custom templates come from settings as partial Pods.
//!
//! A template reads the Pod (`'p`) and the settings (`'s`) and renders a partial Pod that
//! may borrow from the settings but not from the Pod, which it is then merged onto.

use std::borrow::Cow;

use crate::annotations as ann;
use crate::json::{Map, Value};
use crate::proxy_config::ProxyConfig;
use crate::settings::Settings;

mod common;
pub mod gateway;
pub mod grpc;
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
pub struct TemplateInput<'p, 's> {
    /// The Pod with any previous injection stripped.
    pub pod: &'p Value<'s>,
    pub settings: &'s Settings,
    pub proxy_config: &'p ProxyConfig,
    pub deploy: &'p DeployMeta,
    pub native_sidecar: bool,
    pub proxy_uid: i64,
    pub proxy_gid: i64,
    /// The Pod's annotations and labels, looked up once: templates read them dozens of times.
    annotations: Option<&'p Map<'s>>,
    labels: Option<&'p Map<'s>>,
}

impl<'p, 's> TemplateInput<'p, 's> {
    pub fn new(
        pod: &'p Value<'s>,
        settings: &'s Settings,
        proxy_config: &'p ProxyConfig,
        deploy: &'p DeployMeta,
        native_sidecar: bool,
        (proxy_uid, proxy_gid): (i64, i64),
    ) -> Self {
        TemplateInput {
            pod,
            settings,
            proxy_config,
            deploy,
            native_sidecar,
            proxy_uid,
            proxy_gid,
            annotations: crate::pod::metadata_map(pod, "annotations"),
            labels: crate::pod::metadata_map(pod, "labels"),
        }
    }

    pub fn annotations(&self) -> Option<&'p Map<'s>> {
        self.annotations
    }

    pub fn labels(&self) -> Option<&'p Map<'s>> {
        self.labels
    }

    /// An annotation's value if present (even empty; a value that is not a string reads
    /// as empty).
    pub fn annotation(&self, key: &str) -> Option<&'p str> {
        self.annotations
            .and_then(|a| a.get(key))
            .map(|v| v.as_str().unwrap_or_default())
    }

    /// Istio's template `annotation` helper: the annotation if present, else the default.
    pub fn annotation_or<'b>(&self, key: &str, default: &'b str) -> &'b str
    where
        'p: 'b,
    {
        self.annotation(key).unwrap_or(default)
    }

    /// Sprig's `index .Labels k | default x`: a missing or empty label gives the default.
    pub fn label_nonempty(&self, key: &str) -> Option<&'p str> {
        self.labels
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn deploy_name(&self) -> &'p str {
        &self.deploy.name
    }

    pub fn containers(&self) -> &'p [Value<'s>] {
        crate::pod::containers(self.pod, "containers")
    }

    pub fn interception_mode(&self) -> &'p str {
        self.annotation_or(
            ann::INTERCEPTION_MODE,
            self.proxy_config.interception_mode(),
        )
    }

    /// The status port as the templates print it: the annotation verbatim, else the value.
    pub fn status_port(&self) -> Cow<'p, str> {
        match self.annotation(ann::STATUS_PORT) {
            Some(port) => Cow::Borrowed(port),
            None => Cow::Owned(self.settings.values.global.proxy.status_port.to_string()),
        }
    }
}

/// An env entry `{"name": name, "value": value}`.
pub fn env_var<'s>(name: impl Into<Cow<'s, str>>, value: impl Into<Cow<'s, str>>) -> Value<'s> {
    Value::Object(Map::from_fields(vec![
        (Cow::Borrowed("name"), Value::String(name.into())),
        (Cow::Borrowed("value"), Value::String(value.into())),
    ]))
}

/// A list of strings as a JSON array.
pub fn string_array<'s, S: Into<Cow<'s, str>>>(items: impl IntoIterator<Item = S>) -> Value<'s> {
    Value::Array(items.into_iter().map(|s| Value::String(s.into())).collect())
}

/// Renders the named built-in or custom template.
pub fn render<'s>(name: &str, input: &TemplateInput<'_, 's>) -> Result<Value<'s>, String> {
    if let Some(custom) = input.settings.templates.get(name) {
        return custom_template(name, custom);
    }
    match name {
        "sidecar" => Ok(sidecar::render(input)),
        "gateway" => Ok(gateway::render(input)),
        "grpc-simple" => Ok(grpc::render_simple(input)),
        "grpc-agent" => Ok(grpc::render_agent(input)),
        other => Err(format!(
            "requested template {other:?} not found; have {}",
            input.settings.known_templates().join(", ")
        )),
    }
}

/// A template from settings: a partial Pod, given as an object or as a YAML/JSON string.
pub fn custom_template<'s>(
    name: &str,
    template: &'s serde_json::Value,
) -> Result<Value<'s>, String> {
    let not_a_pod = || format!("template {name:?} must be a partial Pod (an object)");
    match template {
        serde_json::Value::Object(_) => Ok(Value::borrow_serde(template)),
        serde_json::Value::String(text) => {
            let parsed = serde_yaml::from_str::<serde_json::Value>(text)
                .map_err(|e| format!("template {name:?} is not valid YAML: {e}"))?;
            if parsed.is_object() {
                Ok(Value::from_serde(&parsed))
            } else {
                Err(not_a_pod())
            }
        }
        _ => Err(not_a_pod()),
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
