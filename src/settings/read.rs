//! Reading settings JSON into [`Settings`], naming the field of every mistake
//! (`values.global.proxy.statusPort: invalid type: string "x", expected a port number`).
//!
//! Written out field by field rather than derived with serde: serde's derived readers for
//! these fifteen structs were 93 KB of the 731 KB policy module (the module's size has a
//! budget, README Performance), and the settings are read again on every request, because
//! policy-server runs each one in a fresh instance. Each reader starts from Istio's
//! defaults and overwrites what the settings give; a missing field keeps its default, a
//! present one must have the field's type (`null` included: it is not "unset").

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use super::{
    Action, Cni, Gateways, Global, InboundTrafficPolicy, Logging, MeshConfig, MultiCluster,
    NamespaceSelection, Pilot, Policy, ProxyInitValues, ProxyValues, Sds, SdsToken, SelectorList,
    Settings, SidecarInjectorWebhook, StartupProbe, Sts, Values,
};
use crate::selector::Selector;

/// The top-level keys; any other is refused (a typo must not silently do nothing).
const SETTINGS_KEYS: &[&str] = &[
    "action",
    "policy",
    "revision",
    "namespaceSelection",
    "enableNamespacesByDefault",
    "neverInjectSelector",
    "alwaysInjectSelector",
    "defaultTemplates",
    "templates",
    "aliases",
    "injectedAnnotations",
    "nativeSidecars",
    "values",
    "meshConfig",
];

/// Reads settings from their JSON; `null` gives the defaults.
pub fn settings(value: &Value) -> Result<Settings, String> {
    let mut s = Settings::default();
    if value.is_null() {
        return Ok(s);
    }
    let f = Fields::of(value, At::Root)?;
    if let Some(key) = f.map.keys().find(|k| !SETTINGS_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "{key}: unknown field, expected one of {}",
            SETTINGS_KEYS.join(", ")
        ));
    }
    f.read("action", &mut s.action, action)?;
    f.read("policy", &mut s.policy, policy)?;
    f.read("revision", &mut s.revision, string)?;
    f.read(
        "namespaceSelection",
        &mut s.namespace_selection,
        namespace_selection,
    )?;
    f.read(
        "enableNamespacesByDefault",
        &mut s.enable_namespaces_by_default,
        boolean,
    )?;
    f.read(
        "neverInjectSelector",
        &mut s.never_inject_selector,
        selectors,
    )?;
    f.read(
        "alwaysInjectSelector",
        &mut s.always_inject_selector,
        selectors,
    )?;
    f.read("defaultTemplates", &mut s.default_templates, strings)?;
    f.read("templates", &mut s.templates, object)?;
    f.read("aliases", &mut s.aliases, string_lists)?;
    f.read(
        "injectedAnnotations",
        &mut s.injected_annotations,
        string_map,
    )?;
    f.read("nativeSidecars", &mut s.native_sidecars, boolean)?;
    f.nested("values", &mut s.values, values)?;
    f.nested("meshConfig", &mut s.mesh_config, mesh_config)?;
    Ok(s)
}

// Inside `values` and `meshConfig` other keys are not looked at: users paste whole Helm
// values files and mesh configs, of which the injector reads a part.

fn values(out: &mut Values, f: &Fields) -> Result<(), String> {
    f.nested("global", &mut out.global, global)?;
    f.nested("pilot", &mut out.pilot, pilot)?;
    f.nested(
        "sidecarInjectorWebhook",
        &mut out.sidecar_injector_webhook,
        sidecar_injector_webhook,
    )?;
    f.nested("gateways", &mut out.gateways, gateways)
}

fn global(out: &mut Global, f: &Fields) -> Result<(), String> {
    f.read("hub", &mut out.hub, string)?;
    f.read("tag", &mut out.tag, string)?;
    f.read("variant", &mut out.variant, string)?;
    f.read("imagePullPolicy", &mut out.image_pull_policy, string)?;
    f.read("imagePullSecrets", &mut out.image_pull_secrets, strings)?;
    f.nested("proxy", &mut out.proxy, proxy)?;
    f.nested("proxy_init", &mut out.proxy_init, proxy_init)?;
    f.nested("logging", &mut out.logging, logging)?;
    f.read("logAsJson", &mut out.log_as_json, boolean)?;
    f.read("nativeNftables", &mut out.native_nftables, boolean)?;
    f.nested("sts", &mut out.sts, sts)?;
    f.read("caAddress", &mut out.ca_address, string)?;
    f.read("istioNamespace", &mut out.istio_namespace, string)?;
    f.read("pilotCertProvider", &mut out.pilot_cert_provider, string)?;
    f.read("caName", &mut out.ca_name, string)?;
    f.nested("multiCluster", &mut out.multi_cluster, multi_cluster)?;
    f.read("network", &mut out.network, string)?;
    f.read("meshID", &mut out.mesh_id, string)?;
    f.read("trustDomain", &mut out.trust_domain, string)?;
    f.read("mountMtlsCerts", &mut out.mount_mtls_certs, boolean)?;
    f.nested("sds", &mut out.sds, sds)?;
    f.read("trustBundleName", &mut out.trust_bundle_name, string)?;
    f.read("platform", &mut out.platform, string)
}

fn proxy(out: &mut ProxyValues, f: &Fields) -> Result<(), String> {
    f.read("image", &mut out.image, string)?;
    f.read("clusterDomain", &mut out.cluster_domain, string)?;
    f.read("logLevel", &mut out.log_level, string)?;
    f.read("componentLogLevel", &mut out.component_log_level, string)?;
    f.read("includeIPRanges", &mut out.include_ip_ranges, string)?;
    f.read("excludeIPRanges", &mut out.exclude_ip_ranges, string)?;
    f.read(
        "includeInboundPorts",
        &mut out.include_inbound_ports,
        string,
    )?;
    f.read(
        "excludeInboundPorts",
        &mut out.exclude_inbound_ports,
        string,
    )?;
    f.read(
        "includeOutboundPorts",
        &mut out.include_outbound_ports,
        string,
    )?;
    f.read(
        "excludeOutboundPorts",
        &mut out.exclude_outbound_ports,
        string,
    )?;
    f.read("statusPort", &mut out.status_port, port)?;
    f.read(
        "readinessInitialDelaySeconds",
        &mut out.readiness_initial_delay_seconds,
        count,
    )?;
    f.read(
        "readinessPeriodSeconds",
        &mut out.readiness_period_seconds,
        count,
    )?;
    f.read(
        "readinessFailureThreshold",
        &mut out.readiness_failure_threshold,
        count,
    )?;
    f.nested("startupProbe", &mut out.startup_probe, startup_probe)?;
    f.read("resources", &mut out.resources, any)?;
    f.read("privileged", &mut out.privileged, boolean)?;
    f.read("seccompProfile", &mut out.seccomp_profile, any)?;
    f.read(
        "holdApplicationUntilProxyStarts",
        &mut out.hold_application_until_proxy_starts,
        boolean,
    )?;
    f.read("lifecycle", &mut out.lifecycle, any)?;
    f.read("capNetBindService", &mut out.cap_net_bind_service, boolean)?;
    f.read("outlierLogPath", &mut out.outlier_log_path, string)?;
    f.read("tracer", &mut out.tracer, string)
}

fn startup_probe(out: &mut StartupProbe, f: &Fields) -> Result<(), String> {
    f.read("enabled", &mut out.enabled, boolean)?;
    f.read("failureThreshold", &mut out.failure_threshold, count)
}

fn proxy_init(out: &mut ProxyInitValues, f: &Fields) -> Result<(), String> {
    f.read("image", &mut out.image, string)?;
    f.read("forceApplyIptables", &mut out.force_apply_iptables, boolean)
}

fn logging(out: &mut Logging, f: &Fields) -> Result<(), String> {
    f.read("level", &mut out.level, string)
}

fn sts(out: &mut Sts, f: &Fields) -> Result<(), String> {
    f.read("servicePort", &mut out.service_port, port)
}

fn multi_cluster(out: &mut MultiCluster, f: &Fields) -> Result<(), String> {
    f.read("clusterName", &mut out.cluster_name, string)
}

fn sds(out: &mut Sds, f: &Fields) -> Result<(), String> {
    f.nested("token", &mut out.token, sds_token)
}

fn sds_token(out: &mut SdsToken, f: &Fields) -> Result<(), String> {
    f.read("aud", &mut out.aud, string)
}

fn pilot(out: &mut Pilot, f: &Fields) -> Result<(), String> {
    f.nested("cni", &mut out.cni, cni)?;
    f.read("env", &mut out.env, object)?;
    f.read("crlConfigMapName", &mut out.crl_config_map_name, string)
}

fn cni(out: &mut Cni, f: &Fields) -> Result<(), String> {
    f.read("enabled", &mut out.enabled, boolean)?;
    f.read("provider", &mut out.provider, string)
}

fn sidecar_injector_webhook(out: &mut SidecarInjectorWebhook, f: &Fields) -> Result<(), String> {
    f.read(
        "rewriteAppHTTPProbe",
        &mut out.rewrite_app_http_probe,
        boolean,
    )
}

fn gateways(out: &mut Gateways, f: &Fields) -> Result<(), String> {
    f.read("securityContext", &mut out.security_context, any)?;
    f.read("seccompProfile", &mut out.seccomp_profile, any)
}

fn mesh_config(out: &mut MeshConfig, f: &Fields) -> Result<(), String> {
    f.read("trustDomain", &mut out.trust_domain, string)?;
    f.read(
        "enablePrometheusMerge",
        &mut out.enable_prometheus_merge,
        boolean,
    )?;
    f.read("defaultConfig", &mut out.default_config, object)?;
    f.nested(
        "inboundTrafficPolicy",
        &mut out.inbound_traffic_policy,
        inbound_traffic_policy,
    )?;
    f.read("proxyListenPort", &mut out.proxy_listen_port, port)?;
    f.read(
        "proxyInboundListenPort",
        &mut out.proxy_inbound_listen_port,
        port,
    )?;
    f.read("extensionProviders", &mut out.extension_providers, any_list)
}

fn inbound_traffic_policy(out: &mut InboundTrafficPolicy, f: &Fields) -> Result<(), String> {
    f.read("mode", &mut out.mode, string)
}

/// The fields of one settings object, each read by its name into its slot, which keeps its
/// default when the field is absent.
struct Fields<'v, 'a> {
    map: &'v Map<String, Value>,
    at: At<'a>,
}

impl<'v, 'a> Fields<'v, 'a> {
    fn of(v: &'v Value, at: At<'a>) -> Result<Self, String> {
        Ok(Fields {
            map: fields(v, at)?,
            at,
        })
    }

    /// A field read by `read`, one reader per type: kept out of line (size).
    #[inline(never)]
    fn read<T>(
        &self,
        name: &str,
        slot: &mut T,
        read: fn(&Value, At) -> Result<T, String>,
    ) -> Result<(), String> {
        if let Some(v) = self.map.get(name) {
            *slot = read(v, self.at.key(name))?;
        }
        Ok(())
    }

    /// An object whose own fields are read over its defaults.
    #[inline(never)]
    fn nested<T>(
        &self,
        name: &str,
        slot: &mut T,
        read: fn(&mut T, &Fields) -> Result<(), String>,
    ) -> Result<(), String> {
        if let Some(v) = self.map.get(name) {
            read(slot, &Fields::of(v, self.at.key(name))?)?;
        }
        Ok(())
    }
}

fn action(v: &Value, at: At) -> Result<Action, String> {
    choice(
        v,
        at,
        &[("inject", Action::Inject), ("check", Action::Check)],
    )
}

fn namespace_selection(v: &Value, at: At) -> Result<NamespaceSelection, String> {
    choice(
        v,
        at,
        &[
            ("lookup", NamespaceSelection::Lookup),
            ("webhook", NamespaceSelection::Webhook),
        ],
    )
}

/// Any word: Istio turns injection off for one it does not know, and `validate_settings`
/// refuses it.
fn policy(v: &Value, at: At) -> Result<Policy, String> {
    Ok(Policy::from(string(v, at)?.as_str()))
}

fn string_lists(v: &Value, at: At) -> Result<BTreeMap<String, Vec<String>>, String> {
    map_of(v, at, strings)
}

fn string_map(v: &Value, at: At) -> Result<BTreeMap<String, String>, String> {
    map_of(v, at, string)
}

/// An object of free names, each value read by `read`.
fn map_of<T>(
    v: &Value,
    at: At,
    read: fn(&Value, At) -> Result<T, String>,
) -> Result<BTreeMap<String, T>, String> {
    let mut out = BTreeMap::new();
    for (name, value) in fields(v, at)? {
        out.insert(name.clone(), read(value, at.key(name))?);
    }
    Ok(out)
}

/// Passed on as written (resources, security contexts, lifecycle hooks).
fn any(v: &Value, _: At) -> Result<Value, String> {
    Ok(v.clone())
}

fn any_list(v: &Value, at: At) -> Result<Vec<Value>, String> {
    list(v, at).cloned()
}

// The readers of one value each, called from many places: kept out of line, the module's
// size matters more here than a call.

#[inline(never)]
fn fields<'v>(v: &'v Value, at: At) -> Result<&'v Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| invalid_type(v, at, "an object"))
}

#[inline(never)]
fn list<'v>(v: &'v Value, at: At) -> Result<&'v Vec<Value>, String> {
    v.as_array().ok_or_else(|| invalid_type(v, at, "a list"))
}

#[inline(never)]
fn object(v: &Value, at: At) -> Result<Map<String, Value>, String> {
    fields(v, at).cloned()
}

#[inline(never)]
fn string(v: &Value, at: At) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(invalid_type(v, at, "a string")),
    }
}

#[inline(never)]
fn strings(v: &Value, at: At) -> Result<Vec<String>, String> {
    let items = list(v, at)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(string(item, at.index(i))?);
    }
    Ok(out)
}

#[inline(never)]
fn boolean(v: &Value, at: At) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| invalid_type(v, at, "true or false"))
}

#[inline(never)]
fn port(v: &Value, at: At) -> Result<u16, String> {
    u16::try_from(whole_number(v, at, "a port number")?)
        .map_err(|_| format!("{at}: invalid value: {v}, expected a port number (0 to 65535)"))
}

#[inline(never)]
fn count(v: &Value, at: At) -> Result<u32, String> {
    u32::try_from(whole_number(v, at, "a whole number")?)
        .map_err(|_| format!("{at}: invalid value: {v}, expected a whole number (0 to 4294967295)"))
}

/// A number without a fraction, not negative.
fn whole_number(v: &Value, at: At, expected: &str) -> Result<u64, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("{at}: invalid value: {n}, expected {expected}")),
        _ => Err(invalid_type(v, at, expected)),
    }
}

/// One of a few words (the enums).
fn choice<T: Copy>(v: &Value, at: At, options: &[(&str, T)]) -> Result<T, String> {
    let word = string(v, at)?;
    match options.iter().find(|(name, _)| *name == word) {
        Some(&(_, choice)) => Ok(choice),
        None => {
            let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
            Err(format!(
                "{at}: unknown value {word:?}, expected one of {}",
                names.join(", ")
            ))
        }
    }
}

/// Label selectors, compiled now; one that does not compile keeps its error (Istio skips it
/// with a warning; `validate_settings` refuses it).
fn selectors(v: &Value, at: At) -> Result<SelectorList, String> {
    Ok(SelectorList(
        list(v, at)?.iter().map(Selector::parse).collect(),
    ))
}

#[inline(never)]
fn invalid_type(v: &Value, at: At, expected: &str) -> String {
    let found = match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
    };
    format!("{at}: invalid type: {found}, expected {expected}")
}

/// Where a value sits in the settings, written as messages name it
/// (`values.global.proxy.statusPort`, `neverInjectSelector[0]`). Built on the stack as the
/// readers descend; written only for a message.
#[derive(Clone, Copy)]
enum At<'a> {
    Root,
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    fn key<'p>(&'p self, key: &'p str) -> At<'p> {
        At::Key(self, key)
    }
    fn index(&self, i: usize) -> At<'_> {
        At::Index(self, i)
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            At::Root => f.write_str("settings"),
            At::Key(At::Root, key) => f.write_str(key),
            At::Key(parent, key) => write!(f, "{parent}.{key}"),
            At::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> Result<Settings, String> {
        settings(&v)
    }

    /// Every field the readers know, each set away from its default: a key misspelt in a
    /// reader would leave its default here.
    #[test]
    fn every_field_is_read_under_istios_name() {
        let s = read(
            serde_json::from_str(
                r#"{
            "action": "check",
            "policy": "disabled",
            "revision": "canary",
            "namespaceSelection": "webhook",
            "enableNamespacesByDefault": true,
            "neverInjectSelector": [{"matchLabels": {"a": "b"}}],
            "alwaysInjectSelector": [{"matchLabels": {"c": "d"}}, {}],
            "defaultTemplates": ["sidecar", "extra"],
            "templates": {"extra": {"spec": {}}},
            "aliases": {"both": ["sidecar", "extra"]},
            "injectedAnnotations": {"team": "mesh"},
            "nativeSidecars": true,
            "values": {
                "global": {
                    "hub": "h", "tag": "t", "variant": "distroless",
                    "imagePullPolicy": "Always", "imagePullSecrets": ["s"],
                    "proxy": {
                        "image": "img", "clusterDomain": "cd", "logLevel": "debug",
                        "componentLogLevel": "c:d", "includeIPRanges": "10.0.0.0/8",
                        "excludeIPRanges": "10.1.0.0/16", "includeInboundPorts": "80",
                        "excludeInboundPorts": "81", "includeOutboundPorts": "82",
                        "excludeOutboundPorts": "83", "statusPort": 15999,
                        "readinessInitialDelaySeconds": 1, "readinessPeriodSeconds": 2,
                        "readinessFailureThreshold": 3,
                        "startupProbe": {"enabled": false, "failureThreshold": 7},
                        "resources": {"requests": {"cpu": "1"}}, "privileged": true,
                        "seccompProfile": {"type": "RuntimeDefault"},
                        "holdApplicationUntilProxyStarts": true,
                        "lifecycle": {"preStop": {}}, "capNetBindService": true,
                        "outlierLogPath": "/o", "tracer": "zipkin"
                    },
                    "proxy_init": {"image": "init", "forceApplyIptables": true},
                    "logging": {"level": "all:debug"},
                    "logAsJson": true, "nativeNftables": true,
                    "sts": {"servicePort": 15443},
                    "caAddress": "ca:15012", "istioNamespace": "mesh",
                    "pilotCertProvider": "kubernetes", "caName": "GkeWorkloadCertificate",
                    "multiCluster": {"clusterName": "east"}, "network": "net1",
                    "meshID": "m1", "trustDomain": "td", "mountMtlsCerts": true,
                    "sds": {"token": {"aud": "aud1"}}, "trustBundleName": "tb",
                    "platform": "openshift"
                },
                "pilot": {
                    "cni": {"enabled": true, "provider": "multus"},
                    "env": {"X": "1"},
                    "crlConfigMapName": "crl"
                },
                "sidecarInjectorWebhook": {"rewriteAppHTTPProbe": false},
                "gateways": {"securityContext": {"runAsUser": 1}, "seccompProfile": {"type": "x"}}
            },
            "meshConfig": {
                "trustDomain": "mtd", "enablePrometheusMerge": false,
                "defaultConfig": {"concurrency": 2},
                "inboundTrafficPolicy": {"mode": "localhost"},
                "proxyListenPort": 15002, "proxyInboundListenPort": 15007,
                "extensionProviders": [{"name": "p"}]
            }
        }"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(s.action, Action::Check);
        assert_eq!(s.policy, Policy::Disabled);
        assert_eq!(s.revision, "canary");
        assert_eq!(s.namespace_selection, NamespaceSelection::Webhook);
        assert!(s.enable_namespaces_by_default);
        assert_eq!(s.never_inject_selector.iter().count(), 1);
        assert_eq!(s.always_inject_selector.iter().count(), 2);
        assert_eq!(s.default_templates, ["sidecar", "extra"]);
        assert!(s.templates.contains_key("extra"));
        assert_eq!(s.aliases["both"], ["sidecar", "extra"]);
        assert_eq!(s.injected_annotations["team"], "mesh");
        assert!(s.native_sidecars);

        let g = &s.values.global;
        assert_eq!(
            (g.hub.as_str(), g.tag.as_str(), g.variant.as_str()),
            ("h", "t", "distroless")
        );
        assert_eq!(g.image_pull_policy, "Always");
        assert_eq!(g.image_pull_secrets, ["s"]);
        let p = &g.proxy;
        assert_eq!(
            [
                &p.image,
                &p.cluster_domain,
                &p.log_level,
                &p.component_log_level,
                &p.include_ip_ranges,
                &p.exclude_ip_ranges,
                &p.include_inbound_ports,
                &p.exclude_inbound_ports,
                &p.include_outbound_ports,
                &p.exclude_outbound_ports,
                &p.outlier_log_path,
                &p.tracer,
            ],
            [
                "img",
                "cd",
                "debug",
                "c:d",
                "10.0.0.0/8",
                "10.1.0.0/16",
                "80",
                "81",
                "82",
                "83",
                "/o",
                "zipkin"
            ]
        );
        assert_eq!(p.status_port, 15999);
        assert_eq!(
            (
                p.readiness_initial_delay_seconds,
                p.readiness_period_seconds,
                p.readiness_failure_threshold
            ),
            (1, 2, 3)
        );
        assert!(!p.startup_probe.enabled);
        assert_eq!(p.startup_probe.failure_threshold, 7);
        assert_eq!(p.resources, json!({"requests": {"cpu": "1"}}));
        assert_eq!(p.seccomp_profile, json!({"type": "RuntimeDefault"}));
        assert_eq!(p.lifecycle, json!({"preStop": {}}));
        assert!(p.privileged && p.hold_application_until_proxy_starts && p.cap_net_bind_service);
        assert_eq!(g.proxy_init.image, "init");
        assert!(g.proxy_init.force_apply_iptables);
        assert_eq!(g.logging.level, "all:debug");
        assert!(g.log_as_json && g.native_nftables && g.mount_mtls_certs);
        assert_eq!(g.sts.service_port, 15443);
        assert_eq!(
            [
                &g.ca_address,
                &g.istio_namespace,
                &g.pilot_cert_provider,
                &g.ca_name,
                &g.multi_cluster.cluster_name,
                &g.network,
                &g.mesh_id,
                &g.trust_domain,
                &g.sds.token.aud,
                &g.trust_bundle_name,
                &g.platform,
            ],
            [
                "ca:15012",
                "mesh",
                "kubernetes",
                "GkeWorkloadCertificate",
                "east",
                "net1",
                "m1",
                "td",
                "aud1",
                "tb",
                "openshift"
            ]
        );
        let pilot = &s.values.pilot;
        assert!(pilot.cni.enabled);
        assert_eq!(pilot.cni.provider, "multus");
        assert_eq!(pilot.env["X"], "1");
        assert_eq!(pilot.crl_config_map_name, "crl");
        assert!(!s.values.sidecar_injector_webhook.rewrite_app_http_probe);
        assert_eq!(s.values.gateways.security_context, json!({"runAsUser": 1}));
        assert_eq!(s.values.gateways.seccomp_profile, json!({"type": "x"}));

        let m = &s.mesh_config;
        assert_eq!(m.trust_domain, "mtd");
        assert!(!m.enable_prometheus_merge);
        assert_eq!(m.default_config["concurrency"], 2);
        assert_eq!(m.inbound_traffic_policy.mode, "localhost");
        assert_eq!(
            (m.proxy_listen_port, m.proxy_inbound_listen_port),
            (15002, 15007)
        );
        assert_eq!(m.extension_providers, [json!({"name": "p"})]);
    }

    #[test]
    fn null_is_not_unset_and_is_refused_naming_the_field() {
        let err = read(json!({"values": {"global": {"hub": null}}})).unwrap_err();
        assert_eq!(
            err,
            "values.global.hub: invalid type: null, expected a string"
        );
        let err = read(json!({"meshConfig": null})).unwrap_err();
        assert!(err.starts_with("meshConfig: invalid type: null"), "{err}");
    }

    #[test]
    fn numbers_must_be_whole_and_fit_the_field() {
        for (port, wrong) in [
            (json!(1.5), "1.5"),
            (json!(-1), "-1"),
            (json!(65536), "65536"),
        ] {
            let err =
                read(json!({"values": {"global": {"proxy": {"statusPort": port}}}})).unwrap_err();
            assert!(
                err.starts_with(&format!(
                    "values.global.proxy.statusPort: invalid value: {wrong}, expected a port number"
                )),
                "{err}"
            );
        }
        let err = read(json!({"values": {"global": {"proxy": {
            "readinessPeriodSeconds": 4_294_967_296u64}}}}))
        .unwrap_err();
        assert!(
            err.starts_with("values.global.proxy.readinessPeriodSeconds: invalid value"),
            "{err}"
        );
        let err = read(json!({"meshConfig": {"proxyListenPort": "15001"}})).unwrap_err();
        assert_eq!(
            err,
            "meshConfig.proxyListenPort: invalid type: string \"15001\", expected a port number"
        );
    }

    #[test]
    fn list_items_are_named_by_their_index() {
        let err = read(json!({"defaultTemplates": ["sidecar", 3]})).unwrap_err();
        assert_eq!(
            err,
            "defaultTemplates[1]: invalid type: number 3, expected a string"
        );
        let err = read(json!({"aliases": {"a": ["sidecar", false]}})).unwrap_err();
        assert!(
            err.starts_with("aliases.a[1]: invalid type: boolean false"),
            "{err}"
        );
    }

    #[test]
    fn words_outside_a_choice_are_refused_with_the_choices() {
        let err = read(json!({"action": "audit"})).unwrap_err();
        assert_eq!(
            err,
            "action: unknown value \"audit\", expected one of inject, check"
        );
    }

    #[test]
    fn an_unknown_top_level_key_is_refused_with_the_known_ones() {
        let err = read(json!({"nativeSidecar": true})).unwrap_err();
        assert!(err.starts_with("nativeSidecar: unknown field, expected one of action, policy"));
        assert!(err.contains("nativeSidecars"), "{err}");
    }

    #[test]
    fn settings_that_are_not_an_object_are_refused() {
        let err = read(json!(["sidecar"])).unwrap_err();
        assert_eq!(err, "settings: invalid type: a list, expected an object");
        assert!(read(Value::Null).is_ok());
    }
}
