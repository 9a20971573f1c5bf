//! Policy settings: Istio's injector ConfigMap (`config`) plus the Helm `values` and the
//! `meshConfig` fields the templates read, with Istio's defaults.
//!
//! Names follow Istio's own (camelCase) so users can paste what they already have. Unknown
//! top-level keys are rejected (a typo must not silently do nothing); inside `values` and
//! `meshConfig` unknown keys are accepted because users paste whole Helm values files, of
//! which the injector reads only a part.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};

mod read;

use crate::quantity::Quantity;
use crate::selector::{Selector, SelectorError};

/// Templates shipped with the policy, as Istio's Helm chart ships them.
pub const BUILTIN_TEMPLATES: &[&str] = &["sidecar", "gateway", "grpc-simple", "grpc-agent"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NamespaceSelection {
    /// The policy reads the Namespace and applies Istio's webhook selectors itself.
    #[default]
    Lookup,
    /// The ClusterAdmissionPolicy's selectors already did stage A.
    Webhook,
}

/// What the policy does with a Pod the injector would inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Inject the sidecar (the injector).
    #[default]
    Inject,
    /// Never mutate: compare the Pod with what injection would make of it, and reject the
    /// Pods that lack their sidecar, carry a stale one or carry one they should not (for
    /// Kubewarden's audit scanner, or as a guard beside another injector).
    Check,
}

/// Istio's injection policy (the injector ConfigMap's `policy`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Policy {
    /// Every selected Pod is injected unless it opts out.
    #[default]
    Enabled,
    /// Only the Pods that opt in are injected.
    Disabled,
    /// Anything else: Istio turns injection off (and `validate_settings` refuses it).
    Invalid(String),
}

impl Policy {
    pub fn as_str(&self) -> &str {
        match self {
            Policy::Enabled => "enabled",
            Policy::Disabled => "disabled",
            Policy::Invalid(other) => other,
        }
    }
}

impl From<&str> for Policy {
    fn from(policy: &str) -> Self {
        match policy {
            "enabled" => Policy::Enabled,
            "disabled" => Policy::Disabled,
            other => Policy::Invalid(other.to_string()),
        }
    }
}

/// Label selectors, compiled when the settings are read: a Pod is matched against them, not
/// against their JSON. One that does not compile is kept with its error (Istio skips it with
/// a warning; `validate_settings` refuses it).
#[derive(Debug, Clone, Default)]
pub struct SelectorList(Vec<Result<Selector, SelectorError>>);

impl SelectorList {
    pub fn iter(&self) -> std::slice::Iter<'_, Result<Selector, SelectorError>> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub action: Action,
    pub policy: Policy,
    pub revision: String,
    pub namespace_selection: NamespaceSelection,
    pub enable_namespaces_by_default: bool,
    pub never_inject_selector: SelectorList,
    pub always_inject_selector: SelectorList,
    pub default_templates: Vec<String>,
    pub templates: Map<String, Value>,
    pub aliases: BTreeMap<String, Vec<String>>,
    pub injected_annotations: BTreeMap<String, String>,
    pub native_sidecars: bool,
    pub values: Values,
    pub mesh_config: MeshConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            action: Action::Inject,
            policy: Policy::Enabled,
            revision: String::new(),
            namespace_selection: NamespaceSelection::Lookup,
            enable_namespaces_by_default: false,
            never_inject_selector: SelectorList::default(),
            always_inject_selector: SelectorList::default(),
            default_templates: vec!["sidecar".into()],
            templates: Map::new(),
            aliases: BTreeMap::new(),
            injected_annotations: BTreeMap::new(),
            native_sidecars: false,
            values: Values::default(),
            mesh_config: MeshConfig::default(),
        }
    }
}

/// The subset of Istio's Helm values that the injection templates read.
#[derive(Debug, Clone, Default)]
pub struct Values {
    pub global: Global,
    pub pilot: Pilot,
    pub sidecar_injector_webhook: SidecarInjectorWebhook,
    pub gateways: Gateways,
}

#[derive(Debug, Clone)]
pub struct Global {
    pub hub: String,
    pub tag: String,
    pub variant: String,
    pub image_pull_policy: String,
    pub image_pull_secrets: Vec<String>,
    pub proxy: ProxyValues,
    pub proxy_init: ProxyInitValues,
    pub logging: Logging,
    pub log_as_json: bool,
    pub native_nftables: bool,
    pub sts: Sts,
    pub ca_address: String,
    pub istio_namespace: String,
    pub pilot_cert_provider: String,
    pub ca_name: String,
    pub multi_cluster: MultiCluster,
    pub network: String,
    pub mesh_id: String,
    pub trust_domain: String,
    pub mount_mtls_certs: bool,
    pub sds: Sds,
    pub trust_bundle_name: String,
    /// `openshift` turns on Istio's OpenShift handling (UID ranges from the namespace).
    pub platform: String,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            hub: "docker.io/istio".into(),
            tag: "1.30.3".into(),
            variant: String::new(),
            image_pull_policy: String::new(),
            image_pull_secrets: Vec::new(),
            proxy: ProxyValues::default(),
            proxy_init: ProxyInitValues::default(),
            logging: Logging::default(),
            log_as_json: false,
            native_nftables: false,
            sts: Sts::default(),
            ca_address: String::new(),
            istio_namespace: "istio-system".into(),
            pilot_cert_provider: "istiod".into(),
            ca_name: String::new(),
            multi_cluster: MultiCluster::default(),
            network: String::new(),
            mesh_id: String::new(),
            trust_domain: String::new(),
            mount_mtls_certs: false,
            sds: Sds::default(),
            trust_bundle_name: String::new(),
            platform: String::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProxyValues {
    pub image: String,
    pub cluster_domain: String,
    pub log_level: String,
    pub component_log_level: String,
    pub include_ip_ranges: String,
    pub exclude_ip_ranges: String,
    pub include_inbound_ports: String,
    pub exclude_inbound_ports: String,
    pub include_outbound_ports: String,
    pub exclude_outbound_ports: String,
    pub status_port: u16,
    pub readiness_initial_delay_seconds: u32,
    pub readiness_period_seconds: u32,
    pub readiness_failure_threshold: u32,
    pub startup_probe: StartupProbe,
    /// `{requests: {cpu, memory}, limits: {cpu, memory}}`; `null` entries are omitted.
    pub resources: Value,
    pub privileged: bool,
    pub seccomp_profile: Value,
    pub hold_application_until_proxy_starts: bool,
    pub lifecycle: Value,
    pub cap_net_bind_service: bool,
    pub outlier_log_path: String,
    pub tracer: String,
}

impl Default for ProxyValues {
    fn default() -> Self {
        ProxyValues {
            image: "proxyv2".into(),
            cluster_domain: "cluster.local".into(),
            log_level: "warning".into(),
            component_log_level: "misc:error".into(),
            include_ip_ranges: "*".into(),
            exclude_ip_ranges: String::new(),
            include_inbound_ports: "*".into(),
            exclude_inbound_ports: String::new(),
            include_outbound_ports: String::new(),
            exclude_outbound_ports: String::new(),
            status_port: 15020,
            readiness_initial_delay_seconds: 0,
            readiness_period_seconds: 15,
            readiness_failure_threshold: 4,
            startup_probe: StartupProbe::default(),
            resources: serde_json::json!({
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"cpu": "2000m", "memory": "1024Mi"},
            }),
            privileged: false,
            seccomp_profile: Value::Object(Map::new()),
            hold_application_until_proxy_starts: false,
            lifecycle: Value::Object(Map::new()),
            cap_net_bind_service: false,
            outlier_log_path: String::new(),
            tracer: "none".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StartupProbe {
    pub enabled: bool,
    pub failure_threshold: u32,
}

impl Default for StartupProbe {
    fn default() -> Self {
        StartupProbe {
            enabled: true,
            failure_threshold: 600,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProxyInitValues {
    pub image: String,
    pub force_apply_iptables: bool,
}

impl Default for ProxyInitValues {
    fn default() -> Self {
        ProxyInitValues {
            image: "proxyv2".into(),
            force_apply_iptables: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Logging {
    pub level: String,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            level: "default:info".into(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Sts {
    pub service_port: u16,
}

#[derive(Debug, Clone, Default)]
pub struct MultiCluster {
    pub cluster_name: String,
}

#[derive(Debug, Clone, Default)]
pub struct Sds {
    pub token: SdsToken,
}

#[derive(Debug, Clone)]
pub struct SdsToken {
    pub aud: String,
}

impl Default for SdsToken {
    fn default() -> Self {
        SdsToken {
            aud: "istio-ca".into(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Pilot {
    pub cni: Cni,
    pub env: Map<String, Value>,
    pub crl_config_map_name: String,
}

#[derive(Debug, Clone, Default)]
pub struct Cni {
    pub enabled: bool,
    pub provider: String,
}

#[derive(Debug, Clone)]
pub struct SidecarInjectorWebhook {
    pub rewrite_app_http_probe: bool,
}

impl Default for SidecarInjectorWebhook {
    fn default() -> Self {
        SidecarInjectorWebhook {
            rewrite_app_http_probe: true,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Gateways {
    pub security_context: Value,
    pub seccomp_profile: Value,
}

/// The MeshConfig fields the injector reads.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    pub trust_domain: String,
    pub enable_prometheus_merge: bool,
    /// ProxyConfig defaults for every proxy; kept as JSON because only a few fields matter
    /// to injection and the rest is passed through to `PROXY_CONFIG`.
    pub default_config: Map<String, Value>,
    pub inbound_traffic_policy: InboundTrafficPolicy,
    pub proxy_listen_port: u16,
    pub proxy_inbound_listen_port: u16,
    pub extension_providers: Vec<Value>,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            trust_domain: "cluster.local".into(),
            enable_prometheus_merge: true,
            default_config: Map::new(),
            inbound_traffic_policy: InboundTrafficPolicy::default(),
            proxy_listen_port: 0,
            proxy_inbound_listen_port: 0,
            extension_providers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct InboundTrafficPolicy {
    pub mode: String,
}

impl Settings {
    /// Parses settings JSON; the error names the offending field path.
    pub fn from_slice(bytes: &[u8]) -> Result<Settings, String> {
        let trimmed = bytes.iter().all(u8::is_ascii_whitespace);
        if trimmed || bytes == b"null" {
            return Ok(Settings::default());
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("settings: {e}"))?;
        Settings::from_value(&value)
    }

    /// Parses settings from an already-parsed JSON value.
    pub fn from_value(value: &Value) -> Result<Settings, String> {
        read::settings(value)
    }

    /// The revision name as Istio writes it (`default` for the default revision).
    pub fn revision_or_default(&self) -> &str {
        if self.revision.is_empty() {
            "default"
        } else {
            &self.revision
        }
    }

    /// Semantic checks beyond types; every message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let mut errors = String::new();
        let mut fail = |msg: String| {
            if !errors.is_empty() {
                errors.push_str("; ");
            }
            errors.push_str(&msg);
        };

        if let Policy::Invalid(other) = &self.policy {
            fail(format!(
                "policy: {other:?} is not valid, use \"enabled\" or \"disabled\""
            ));
        }
        if !self.revision.is_empty() && !is_label_value(&self.revision) {
            fail(format!(
                "revision: {:?} is not a valid label value",
                self.revision
            ));
        }
        for (field, list) in [
            ("neverInjectSelector", &self.never_inject_selector),
            ("alwaysInjectSelector", &self.always_inject_selector),
        ] {
            for (i, sel) in list.iter().enumerate() {
                if let Err(e) = sel {
                    fail(format!("{field}[{i}]: {e}"));
                }
            }
        }
        if self.default_templates.is_empty() {
            fail("defaultTemplates: must name at least one template".into());
        }
        for (i, name) in self.default_templates.iter().enumerate() {
            if !self.template_known(name) {
                fail(format!(
                    "defaultTemplates[{i}]: unknown template {name:?}; known: {}",
                    self.known_templates().join(", ")
                ));
            }
        }
        for (name, tmpl) in &self.templates {
            // An object, or Istio's own form: the partial Pod as a YAML string.
            if let Err(e) = crate::template::custom_template(name, tmpl) {
                fail(format!("templates.{name}: {e}"));
            }
        }
        for (alias, targets) in &self.aliases {
            for t in targets {
                if !self.template_known(t) {
                    fail(format!("aliases.{alias}: unknown template {t:?}"));
                }
            }
        }
        for key in self.injected_annotations.keys() {
            if crate::selector::label_key_problems(key).is_some() {
                fail(format!(
                    "injectedAnnotations: {key:?} is not a valid annotation key"
                ));
            }
        }
        let proxy = &self.values.global.proxy;
        validate_resources("values.global.proxy.resources", &proxy.resources, &mut fail);
        for (field, value) in [
            (
                "values.global.proxy.includeIPRanges",
                &proxy.include_ip_ranges,
            ),
            (
                "values.global.proxy.excludeIPRanges",
                &proxy.exclude_ip_ranges,
            ),
        ] {
            if value != "*"
                && let Err(e) = crate::annotations::validate_cidr_list(value)
            {
                fail(format!("{field}: {value:?} is not valid: {e}"));
            }
        }
        for (field, value, star) in [
            (
                "values.global.proxy.includeInboundPorts",
                &proxy.include_inbound_ports,
                true,
            ),
            (
                "values.global.proxy.excludeInboundPorts",
                &proxy.exclude_inbound_ports,
                false,
            ),
            (
                "values.global.proxy.includeOutboundPorts",
                &proxy.include_outbound_ports,
                false,
            ),
            (
                "values.global.proxy.excludeOutboundPorts",
                &proxy.exclude_outbound_ports,
                false,
            ),
        ] {
            if !(star && value == "*")
                && let Err(e) = crate::annotations::parse_port_list(value)
            {
                fail(format!("{field}: {value:?} is not valid: {e}"));
            }
        }
        for (field, value) in [
            ("values.global.proxy.logLevel", &proxy.log_level),
            (
                "values.global.proxy.componentLogLevel",
                &proxy.component_log_level,
            ),
            (
                "values.global.logging.level",
                &self.values.global.logging.level,
            ),
        ] {
            if value.chars().any(char::is_control) {
                fail(format!("{field}: contains control characters"));
            }
        }
        if self.values.global.hub.is_empty() {
            fail("values.global.hub: must not be empty".into());
        }
        if self.values.global.tag.is_empty() {
            fail("values.global.tag: must not be empty".into());
        }
        if let Some(port) = self.mesh_config.default_config.get("statusPort")
            && port.as_u64().is_none_or(|p| p > 65535)
        {
            fail(format!(
                "meshConfig.defaultConfig.statusPort: {port} is not a port number"
            ));
        }

        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Whether `name` names a built-in template, a `templates` entry or an alias.
    pub fn template_known(&self, name: &str) -> bool {
        BUILTIN_TEMPLATES.contains(&name)
            || self.templates.contains_key(name)
            || self.aliases.contains_key(name)
    }

    pub fn known_templates(&self) -> Vec<String> {
        let mut names: Vec<String> = BUILTIN_TEMPLATES.iter().map(|s| s.to_string()).collect();
        for name in self.templates.keys() {
            if !names.iter().any(|n| n == name) {
                names.push(name.clone());
            }
        }
        crate::order::sorted_by_key(names, |n| n)
    }
}

fn validate_resources(field: &str, resources: &Value, fail: &mut impl FnMut(String)) {
    let Some(map) = resources.as_object() else {
        if !resources.is_null() {
            fail(format!(
                "{field}: must be an object with requests and limits"
            ));
        }
        return;
    };
    for (section, entries) in map {
        if entries.is_null() {
            continue;
        }
        let Some(entries) = entries.as_object() else {
            fail(format!("{field}.{section}: must be an object"));
            continue;
        };
        for (resource, quantity) in entries {
            match quantity {
                Value::Null => {}
                Value::String(s) => {
                    if Quantity::parse(s).is_err() {
                        fail(format!(
                            "{field}.{section}.{resource}: {s:?} is not a quantity"
                        ));
                    }
                }
                Value::Number(n) => {
                    if Quantity::parse(&n.to_string()).is_err() {
                        fail(format!(
                            "{field}.{section}.{resource}: {n} is not a quantity"
                        ));
                    }
                }
                other => fail(format!(
                    "{field}.{section}.{resource}: {other} is not a quantity"
                )),
            }
        }
    }
}

/// A valid Kubernetes label value: at most 63 characters, alphanumerics with `-_.` inside.
pub fn is_label_value(v: &str) -> bool {
    if v.is_empty() {
        return true;
    }
    let bytes = v.as_bytes();
    v.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Renders a list of quoted names for messages.
pub fn quoted_list(names: &[String]) -> String {
    let mut out = String::new();
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{n:?}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Settings, String> {
        let s = Settings::from_slice(v.to_string().as_bytes())?;
        s.validate()?;
        Ok(s)
    }

    #[test]
    fn empty_settings_give_istio_defaults() {
        let s = Settings::from_slice(b"{}").unwrap();
        assert_eq!(s.policy, Policy::Enabled);
        assert_eq!(s.namespace_selection, NamespaceSelection::Lookup);
        assert_eq!(s.default_templates, vec!["sidecar"]);
        assert_eq!(s.values.global.proxy.status_port, 15020);
        assert_eq!(s.values.global.proxy.include_ip_ranges, "*");
        assert_eq!(s.values.global.istio_namespace, "istio-system");
        assert_eq!(s.mesh_config.trust_domain, "cluster.local");
        assert!(s.mesh_config.enable_prometheus_merge);
        assert!(s.values.sidecar_injector_webhook.rewrite_app_http_probe);
        assert!(s.validate().is_ok());
        assert!(Settings::from_slice(b"").is_ok());
        assert!(Settings::from_slice(b"null").is_ok());
    }

    #[test]
    fn nested_values_keep_defaults_of_unset_siblings() {
        let s = parse(json!({"values": {"global": {"proxy": {"statusPort": 15999}}}})).unwrap();
        assert_eq!(s.values.global.proxy.status_port, 15999);
        assert_eq!(s.values.global.proxy.log_level, "warning");
        assert_eq!(s.values.global.hub, "docker.io/istio");
    }

    #[test]
    fn unknown_top_level_key_is_rejected_with_its_name() {
        let err = parse(json!({"polcy": "enabled"})).unwrap_err();
        assert!(err.contains("polcy"), "{err}");
    }

    #[test]
    fn unknown_keys_inside_values_are_accepted() {
        assert!(parse(json!({"values": {"global": {"istiod": {"enableAnalysis": true}}}})).is_ok());
    }

    #[test]
    fn invalid_policy_is_rejected() {
        let err = parse(json!({"policy": "Enabled"})).unwrap_err();
        assert!(err.starts_with("policy:"), "{err}");
        assert!(parse(json!({"policy": "disabled"})).is_ok());
    }

    #[test]
    fn invalid_namespace_selection_names_the_field() {
        let err = parse(json!({"namespaceSelection": "magic"})).unwrap_err();
        assert!(err.starts_with("namespaceSelection:"), "{err}");
        let s = parse(json!({"namespaceSelection": "webhook"})).unwrap();
        assert_eq!(s.namespace_selection, NamespaceSelection::Webhook);
    }

    #[test]
    fn wrong_type_names_the_nested_field() {
        let err = parse(json!({"values": {"global": {"proxy": {"statusPort": "x"}}}})).unwrap_err();
        assert!(err.starts_with("values.global.proxy.statusPort:"), "{err}");
    }

    #[test]
    fn malformed_selector_is_rejected() {
        let err = parse(json!({"neverInjectSelector": [
            {"matchExpressions": [{"key": "a", "operator": "Foo"}]}
        ]}))
        .unwrap_err();
        assert!(err.starts_with("neverInjectSelector[0]:"), "{err}");
        let err = parse(json!({"alwaysInjectSelector": [{}, {"matchExpressions": [
            {"key": "a", "operator": "In", "values": []}
        ]}]}))
        .unwrap_err();
        assert!(err.starts_with("alwaysInjectSelector[1]:"), "{err}");
    }

    #[test]
    fn empty_selector_is_accepted_and_ignored_later() {
        assert!(parse(json!({"neverInjectSelector": [{}]})).is_ok());
    }

    #[test]
    fn unknown_default_template_is_rejected() {
        let err = parse(json!({"defaultTemplates": ["sidecar", "nope"]})).unwrap_err();
        assert!(err.starts_with("defaultTemplates[1]:"), "{err}");
        assert!(
            parse(json!({"defaultTemplates": ["custom"], "templates": {"custom": {}}})).is_ok()
        );
        let err = parse(json!({"defaultTemplates": []})).unwrap_err();
        assert!(err.starts_with("defaultTemplates:"), "{err}");
    }

    #[test]
    fn templates_may_be_objects_or_yaml_strings() {
        assert!(
            parse(json!({"templates": {"a": {"spec": {}}, "b": "spec:\n  containers: []\n"}}))
                .is_ok()
        );
        let err = parse(json!({"templates": {"bad": "spec: [unclosed"}})).unwrap_err();
        assert!(err.starts_with("templates.bad:"), "{err}");
        let err = parse(json!({"templates": {"list": "- a"}})).unwrap_err();
        assert!(err.starts_with("templates.list:"), "{err}");
        let err = parse(json!({"templates": {"num": 3}})).unwrap_err();
        assert!(err.starts_with("templates.num:"), "{err}");
    }

    #[test]
    fn invalid_quantity_names_the_field_and_value() {
        let err = parse(json!({"values": {"global": {"proxy": {"resources": {
            "requests": {"cpu": "abc"}}}}}}))
        .unwrap_err();
        assert_eq!(
            err,
            "values.global.proxy.resources.requests.cpu: \"abc\" is not a quantity"
        );
    }

    #[test]
    fn invalid_port_lists_and_ranges_are_rejected() {
        let err = parse(json!({"values": {"global": {"proxy": {"excludeInboundPorts": "80,x"}}}}))
            .unwrap_err();
        assert!(
            err.starts_with("values.global.proxy.excludeInboundPorts:"),
            "{err}"
        );
        let err =
            parse(json!({"values": {"global": {"proxy": {"includeIPRanges": "10.0.0.0/33"}}}}))
                .unwrap_err();
        assert!(
            err.starts_with("values.global.proxy.includeIPRanges:"),
            "{err}"
        );
        let err =
            parse(json!({"values": {"global": {"proxy": {"statusPort": 70000}}}})).unwrap_err();
        assert!(err.starts_with("values.global.proxy.statusPort:"), "{err}");
    }

    #[test]
    fn invalid_revision_is_rejected() {
        let err = parse(json!({"revision": "Not Valid"})).unwrap_err();
        assert!(err.starts_with("revision:"), "{err}");
        assert!(parse(json!({"revision": "canary-1"})).is_ok());
    }

    #[test]
    fn invalid_injected_annotation_key_is_rejected() {
        let err = parse(json!({"injectedAnnotations": {"bad key": "x"}})).unwrap_err();
        assert!(err.starts_with("injectedAnnotations:"), "{err}");
    }

    #[test]
    fn label_values() {
        assert!(is_label_value(""));
        assert!(is_label_value("a-b.c_d"));
        assert!(!is_label_value("-a"));
        assert!(!is_label_value(&"a".repeat(64)));
    }
}
