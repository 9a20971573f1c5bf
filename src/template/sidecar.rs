//! Istio's default `sidecar` template (`files/injection-template.yaml`), rendered directly
//! into a partial Pod. Field by field it follows the Helm chart's template; values that Go
//! would omit when empty (zero probe delays, absent optional env) are omitted here too.

use super::common::*;
use super::{
    TemplateInput, env_var, exclude_inbound_port, proxy_init_image, string_array,
    truncate_canonical_name,
};
use crate::annotations as ann;
use crate::go_json;
use crate::json::{Map, Value, json, object};

pub fn render<'s>(input: &TemplateInput<'_, 's>) -> Value<'s> {
    let s = input.settings;
    let v = &s.values.global;
    let mode = input.interception_mode();
    let tproxy = mode == "TPROXY";
    let cap_net_bind = input.annotation_or(
        ann::CAP_NET_BIND_SERVICE,
        if v.proxy.cap_net_bind_service {
            "true"
        } else {
            "false"
        },
    ) == "true";
    let native = input.native_sidecar;
    let hold_proxy = (input.proxy_config.hold_application_until_proxy_starts()
        || v.proxy.hold_application_until_proxy_starts)
        && !native;
    let app_containers = app_containers(input);

    let metadata = object([
        ("labels", labels(input)),
        ("annotations", annotations(input, &app_containers, mode)),
    ]);

    // Both containers get the same resources: worked out (quantities parsed) once.
    let resources = resources(input);
    let mut init_containers = Vec::with_capacity(2);
    if mode != "NONE" {
        init_containers.push(init_container(input, mode, tproxy, resources.clone()));
    }
    let proxy = proxy_container(
        input,
        &app_containers,
        (tproxy, cap_net_bind, hold_proxy),
        resources,
    );
    let mut spec = Map::new();
    if native {
        init_containers.push(proxy);
        spec.insert("initContainers", Value::from(init_containers));
    } else {
        spec.insert("initContainers", Value::from(init_containers));
        spec.insert("containers", Value::from(vec![proxy]));
    }
    spec.insert("volumes", Value::from(volumes(input)));
    if let Some(secrets) = image_pull_secrets(input) {
        spec.insert("imagePullSecrets", secrets);
    }
    object([("metadata", metadata), ("spec", Value::Object(spec))])
}

fn labels<'s>(input: &TemplateInput<'_, 's>) -> Value<'s> {
    let mut labels = Map::new();
    labels.insert(
        "security.istio.io/tlsMode",
        input
            .label_nonempty("security.istio.io/tlsMode")
            .unwrap_or("istio")
            .to_owned()
            .into(),
    );
    if input
        .proxy_config
        .proxy_metadata_value("ISTIO_META_ENABLE_HBONE")
        .as_deref()
        == Some("true")
    {
        labels.insert(
            "networking.istio.io/tunnel",
            input
                .label_nonempty("networking.istio.io/tunnel")
                .unwrap_or("http")
                .to_owned()
                .into(),
        );
    }
    labels.insert(
        "service.istio.io/canonical-name",
        truncate_canonical_name(canonical_name(input)).into(),
    );
    labels.insert(
        "service.istio.io/canonical-revision",
        canonical_revision(input).to_owned().into(),
    );
    Value::Object(labels)
}

fn annotations<'s>(
    input: &TemplateInput<'_, 's>,
    app_containers: &[&str],
    mode: &str,
) -> Value<'s> {
    let s = input.settings;
    let proxy = &s.values.global.proxy;
    let mut a = Map::new();
    revision_and_default_container(input, app_containers, &mut a);
    if s.values.pilot.cni.enabled {
        // The CNI plugin reads the effective traffic settings from the pod's annotations.
        if s.values.pilot.cni.provider == "multus" {
            let existing = input
                .annotation("k8s.v1.cni.cncf.io/networks")
                .unwrap_or("");
            a.insert(
                "k8s.v1.cni.cncf.io/networks",
                append_multus_network(existing, "default/istio-cni").into(),
            );
        }
        a.insert(ann::INTERCEPTION_MODE, mode.to_owned().into());
        let include =
            input.annotation_or(ann::INCLUDE_OUTBOUND_IP_RANGES, &proxy.include_ip_ranges);
        if !include.is_empty() {
            a.insert(ann::INCLUDE_OUTBOUND_IP_RANGES, include.to_owned().into());
        }
        let exclude =
            input.annotation_or(ann::EXCLUDE_OUTBOUND_IP_RANGES, &proxy.exclude_ip_ranges);
        if !exclude.is_empty() {
            a.insert(ann::EXCLUDE_OUTBOUND_IP_RANGES, exclude.to_owned().into());
        }
        a.insert(
            ann::INCLUDE_INBOUND_PORTS,
            input
                .annotation_or(ann::INCLUDE_INBOUND_PORTS, &proxy.include_inbound_ports)
                .to_owned()
                .into(),
        );
        a.insert(
            ann::EXCLUDE_INBOUND_PORTS,
            exclude_inbound_port(
                &input.status_port(),
                input.annotation_or(ann::EXCLUDE_INBOUND_PORTS, &proxy.exclude_inbound_ports),
            )
            .into(),
        );
        if input.annotation(ann::INCLUDE_OUTBOUND_PORTS).is_some()
            || !proxy.include_outbound_ports.is_empty()
        {
            a.insert(
                ann::INCLUDE_OUTBOUND_PORTS,
                input
                    .annotation_or(ann::INCLUDE_OUTBOUND_PORTS, &proxy.include_outbound_ports)
                    .to_owned()
                    .into(),
            );
        }
        if input.annotation(ann::EXCLUDE_OUTBOUND_PORTS).is_some()
            || !proxy.exclude_outbound_ports.is_empty()
        {
            a.insert(
                ann::EXCLUDE_OUTBOUND_PORTS,
                input
                    .annotation_or(ann::EXCLUDE_OUTBOUND_PORTS, &proxy.exclude_outbound_ports)
                    .to_owned()
                    .into(),
            );
        }
        for key in [
            ann::KUBEVIRT_INTERFACES,
            ann::REROUTE_VIRTUAL_INTERFACES,
            ann::EXCLUDE_INTERFACES,
        ] {
            if let Some(v) = input.annotation(key).filter(|v| !v.is_empty()) {
                a.insert(key, v.to_owned().into());
            }
        }
    }
    Value::Object(a)
}

/// Istio's `appendMultusNetwork` for the flat (comma-separated) and JSON-list forms.
fn append_multus_network(existing: &str, network: &str) -> String {
    if existing.is_empty() {
        return network.to_string();
    }
    if let Some(i) = existing.rfind(']') {
        let Ok(networks) =
            go_json::unmarshal::<Vec<serde_json::Map<String, serde_json::Value>>>(existing)
        else {
            return existing.to_string();
        };
        let (ns, name) = network.split_once('/').unwrap_or(("", network));
        let present = networks.iter().any(|n| {
            n.get("name").and_then(serde_json::Value::as_str) == Some(name)
                && n.get("namespace")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
                    == ns
        });
        if present {
            return existing.to_string();
        }
        let entry = if ns.is_empty() {
            format!(", {{\"name\": \"{name}\"}}")
        } else {
            format!(", {{\"name\": \"{name}\", \"namespace\": \"{ns}\"}}")
        };
        return format!("{}{entry}{}", &existing[..i], &existing[i..]);
    }
    if existing.split(',').any(|n| n.trim() == network) {
        return existing.to_string();
    }
    format!("{existing}, {network}")
}

fn init_container<'s>(
    input: &TemplateInput<'_, 's>,
    mode: &str,
    tproxy: bool,
    resources: Value<'s>,
) -> Value<'s> {
    let s = input.settings;
    let v = &s.values.global;
    let proxy = &v.proxy;
    let cni = s.values.pilot.cni.enabled;
    let name = if cni {
        "istio-validation"
    } else {
        "istio-init"
    };
    let image_annotation = input.annotation_or(ann::PROXY_IMAGE, &v.proxy_init.image);
    let image = if image_annotation.contains('/') {
        image_annotation.to_string()
    } else {
        proxy_init_image(input)
    };

    let listen = nonzero_or(s.mesh_config.proxy_listen_port, "15001");
    let inbound_listen = nonzero_or(s.mesh_config.proxy_inbound_listen_port, "15006");
    let uid = if tproxy {
        "1337".to_string()
    } else {
        input.proxy_uid.to_string()
    };
    let excluded = exclude_inbound_port(
        &input.status_port(),
        input.annotation_or(ann::EXCLUDE_INBOUND_PORTS, &proxy.exclude_inbound_ports),
    );
    let mut args: Vec<String> = vec![
        "istio-iptables".into(),
        "-p".into(),
        listen,
        "-z".into(),
        inbound_listen,
        "-u".into(),
        uid,
        "-m".into(),
        mode.into(),
        "-i".into(),
        input
            .annotation_or(ann::INCLUDE_OUTBOUND_IP_RANGES, &proxy.include_ip_ranges)
            .into(),
        "-x".into(),
        input
            .annotation_or(ann::EXCLUDE_OUTBOUND_IP_RANGES, &proxy.exclude_ip_ranges)
            .into(),
        "-b".into(),
        input
            .annotation_or(ann::INCLUDE_INBOUND_PORTS, &proxy.include_inbound_ports)
            .into(),
        "-d".into(),
        if excluded.is_empty() {
            "15090,15021".into()
        } else {
            format!("15090,15021,{excluded}")
        },
    ];
    if input.annotation(ann::INCLUDE_OUTBOUND_PORTS).is_some()
        || !proxy.include_outbound_ports.is_empty()
    {
        args.push("-q".into());
        args.push(
            input
                .annotation_or(ann::INCLUDE_OUTBOUND_PORTS, &proxy.include_outbound_ports)
                .into(),
        );
    }
    if input.annotation(ann::EXCLUDE_OUTBOUND_PORTS).is_some()
        || !proxy.exclude_outbound_ports.is_empty()
    {
        args.push("-o".into());
        args.push(
            input
                .annotation_or(ann::EXCLUDE_OUTBOUND_PORTS, &proxy.exclude_outbound_ports)
                .into(),
        );
    }
    if let Some(k) = input.annotation(ann::REROUTE_VIRTUAL_INTERFACES) {
        args.push("-k".into());
        args.push(k.into());
    } else if let Some(k) = input.annotation(ann::KUBEVIRT_INTERFACES) {
        args.push("-k".into());
        args.push(k.into());
    }
    if let Some(c) = input.annotation(ann::EXCLUDE_INTERFACES) {
        args.push("-c".into());
        args.push(c.into());
    }
    args.push(format!(
        "--log_output_level={}",
        input.annotation_or(ann::AGENT_LOG_LEVEL, &v.logging.level)
    ));
    if v.log_as_json {
        args.push("--log_as_json".into());
    }
    if cni {
        args.push("--run-validation".into());
        args.push("--skip-rule-apply".into());
    } else if v.proxy_init.force_apply_iptables {
        args.push("--force-apply".into());
    }
    if v.native_nftables {
        args.push("--native-nftables".into());
    }

    let mut c = Map::new();
    c.insert("name", name.into());
    c.insert("image", image.into());
    c.insert("args", string_array(args));
    let metadata = input.proxy_config.proxy_metadata();
    if !metadata.is_empty() {
        c.insert("env", plain_env(metadata));
    }
    c.insert("resources", resources);
    if !v.image_pull_policy.is_empty() {
        c.insert("imagePullPolicy", v.image_pull_policy.clone().into());
    }
    let mut sc = Map::new();
    sc.insert("allowPrivilegeEscalation", proxy.privileged.into());
    sc.insert("privileged", proxy.privileged.into());
    if cni {
        sc.insert("capabilities", capabilities(&[]));
        sc.insert("readOnlyRootFilesystem", true.into());
        let (uid, gid) = if tproxy {
            (1337, 1337)
        } else {
            (input.proxy_uid, input.proxy_gid)
        };
        sc.insert("runAsGroup", gid.into());
        sc.insert("runAsUser", uid.into());
        sc.insert("runAsNonRoot", true.into());
    } else {
        sc.insert("capabilities", capabilities(&["NET_ADMIN", "NET_RAW"]));
        sc.insert("readOnlyRootFilesystem", false.into());
        sc.insert("runAsGroup", 0.into());
        sc.insert("runAsNonRoot", false.into());
        sc.insert("runAsUser", 0.into());
    }
    if is_set(&proxy.seccomp_profile) {
        sc.insert(
            "seccompProfile",
            Value::borrow_serde(&proxy.seccomp_profile),
        );
    }
    c.insert("securityContext", Value::Object(sc));
    Value::Object(c)
}

fn proxy_container<'s>(
    input: &TemplateInput<'_, 's>,
    app_containers: &[&str],
    (tproxy, cap_net_bind, hold_proxy): (bool, bool, bool),
    resources: Value<'s>,
) -> Value<'s> {
    let s = input.settings;
    let v = &s.values.global;
    let proxy = &v.proxy;
    let image = proxy_image_ref(input);
    let status_port = input.status_port();
    let mut args = proxy_args(input, "sidecar");
    if !proxy.outlier_log_path.is_empty() {
        args.push(format!("--outlierLogPath={}", proxy.outlier_log_path));
    }

    let mut c = Map::new();
    c.insert("name", "istio-proxy".into());
    c.insert("image", image.into());
    if input.native_sidecar {
        c.insert("restartPolicy", "Always".into());
    }
    c.insert("ports", envoy_prom_ports());
    c.insert("args", string_array(args));
    if is_set(&proxy.lifecycle) {
        c.insert("lifecycle", Value::borrow_serde(&proxy.lifecycle));
    } else if hold_proxy {
        c.insert(
            "lifecycle",
            json!({"postStart": {"exec": {"command": ["pilot-agent", "wait"]}}}),
        );
    } else if input.native_sidecar {
        let command = vec![
            "pilot-agent".into(),
            "request".into(),
            format!("--debug-port={status_port}"),
            "POST".into(),
            "drain".into(),
        ];
        c.insert("lifecycle", exec_hook("preStop", command));
    }
    c.insert("env", Value::from(proxy_env(input, app_containers)));
    if !v.image_pull_policy.is_empty() {
        c.insert("imagePullPolicy", v.image_pull_policy.clone().into());
    }
    if status_port != "0" {
        if proxy.startup_probe.enabled {
            c.insert(
                "startupProbe",
                probe(0, 1, proxy.startup_probe.failure_threshold.into()),
            );
        }
        c.insert("readinessProbe", readiness_probe(input));
    }
    c.insert(
        "securityContext",
        proxy_security_context(input, tproxy, cap_net_bind),
    );
    c.insert("resources", resources);
    c.insert(
        "volumeMounts",
        Value::from(proxy_volume_mounts(input, true)),
    );
    Value::Object(c)
}

fn proxy_env<'s>(input: &TemplateInput<'_, 's>, app_containers: &[&str]) -> Vec<Value<'s>> {
    let s = input.settings;
    let v = &s.values.global;
    let mut env = Vec::with_capacity(24);
    if s.mesh_config
        .inbound_traffic_policy
        .mode
        .eq_ignore_ascii_case("LOCALHOST")
    {
        env.push(env_var(
            "REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION",
            "true",
        ));
    }
    identity_env(input, &mut env);
    env.push(resource_field_ref!("ISTIO_CPU_LIMIT", "limits.cpu"));
    env.push(env_var("PROXY_CONFIG", input.proxy_config.to_env_value()));
    env.push(env_var("ISTIO_META_POD_PORTS", pod_ports(input)));
    env.push(env_var(
        "ISTIO_META_APP_CONTAINERS",
        app_containers.join(","),
    ));
    env.push(resource_field_ref!("GOMEMLIMIT", "limits.memory"));
    compliance_env(input, &mut env);
    env.push(env_var("ISTIO_META_CLUSTER_ID", cluster_id(input)));
    env.push(field_ref!("ISTIO_META_NODE_NAME", "spec.nodeName"));
    let meta_mode = match input.annotation(ann::INTERCEPTION_MODE) {
        Some(m) if !m.is_empty() => m,
        _ => input.proxy_config.interception_mode(),
    };
    env.push(env_var(
        "ISTIO_META_INTERCEPTION_MODE",
        meta_mode.to_owned(),
    ));
    let workload = input
        .label_nonempty("service.istio.io/workload-name")
        .unwrap_or(input.deploy_name());
    network_and_workload_env(input, workload, &mut env);
    bootstrap_override_env(input, &mut env);
    mesh_env(input, &mut env);
    if v.proxy.tracer == "datadog"
        && let Some(raw) = input.annotation("apm.datadoghq.com/env")
        && let Ok(serde_json::Value::Object(vars)) = go_json::unmarshal(raw)
    {
        // serde_json's maps are sorted by key, as Go's template ranges over a map.
        for (k, val) in vars {
            let val = match val {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            env.push(env_var(k, val));
        }
    }
    if let Some(attrs) = otel_resource_attributes(input) {
        env.push(env_var("OTEL_RESOURCE_ATTRIBUTES", attrs));
    }
    for (k, val) in input.proxy_config.proxy_metadata() {
        env.push(env_var(k.to_string(), val));
    }
    env
}

fn proxy_security_context<'s>(
    input: &TemplateInput<'_, 's>,
    tproxy: bool,
    cap_net_bind: bool,
) -> Value<'s> {
    let proxy = &input.settings.values.global.proxy;
    let mut sc = Map::new();
    if input
        .proxy_config
        .proxy_metadata_value("IPTABLES_TRACE_LOGGING")
        .as_deref()
        == Some("true")
    {
        sc.insert("allowPrivilegeEscalation", true.into());
        sc.insert("capabilities", capabilities(&["NET_ADMIN"]));
        sc.insert("privileged", true.into());
        sc.insert("readOnlyRootFilesystem", true.into());
        sc.insert("runAsGroup", input.proxy_gid.into());
        sc.insert("runAsNonRoot", false.into());
        sc.insert("runAsUser", 0.into());
    } else {
        sc.insert("allowPrivilegeEscalation", proxy.privileged.into());
        let mut add = Vec::new();
        if tproxy {
            add.push("NET_ADMIN");
        }
        if cap_net_bind {
            add.push("NET_BIND_SERVICE");
        }
        sc.insert("capabilities", capabilities(&add));
        sc.insert("privileged", proxy.privileged.into());
        sc.insert("readOnlyRootFilesystem", true.into());
        if tproxy || cap_net_bind {
            sc.insert("runAsNonRoot", false.into());
            sc.insert("runAsUser", 0.into());
            sc.insert("runAsGroup", 1337.into());
        } else {
            sc.insert("runAsNonRoot", true.into());
            sc.insert("runAsUser", input.proxy_uid.into());
            sc.insert("runAsGroup", input.proxy_gid.into());
        }
    }
    if is_set(&proxy.seccomp_profile) {
        sc.insert(
            "seccompProfile",
            Value::borrow_serde(&proxy.seccomp_profile),
        );
    }
    Value::Object(sc)
}

fn volumes<'s>(input: &TemplateInput<'_, 's>) -> Vec<Value<'s>> {
    let s = input.settings;
    let mut vols = Vec::with_capacity(12);
    vols.push(object([("name", "workload-socket".into())]));
    vols.push(object([("name", "credential-socket".into())]));
    vols.push(workload_certs_volume(input, false));
    vols.extend(bootstrap_override_volume(input));
    vols.push(memory_volume("istio-envoy"));
    vols.push(empty_dir_volume("istio-data"));
    vols.push(podinfo_volume());
    vols.push(istio_token_volume(input));
    vols.extend(istiod_ca_volume(input));
    let crl = if s.values.pilot.crl_config_map_name.is_empty() {
        "istio-ca-crl"
    } else {
        &s.values.pilot.crl_config_map_name
    };
    let config_map = object([("name", crl.into()), ("optional", true.into())]);
    vols.push(object([
        ("name", "istio-ca-crl".into()),
        ("configMap", config_map),
    ]));
    vols.extend(mtls_certs_volume(input));
    for (name, spec) in user_entries(input, ann::USER_VOLUME) {
        vols.push(named(name, spec));
    }
    vols
}

fn nonzero_or(port: u16, default: &str) -> String {
    if port == 0 {
        default.to_string()
    } else {
        port.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::append_multus_network;

    #[test]
    fn multus_networks_list_is_extended_once_as_istio_does() {
        let cni = "default/istio-cni";
        assert_eq!(append_multus_network("", cni), cni);
        assert_eq!(
            append_multus_network("net1", cni),
            "net1, default/istio-cni"
        );
        assert_eq!(
            append_multus_network("net1, default/istio-cni", cni),
            "net1, default/istio-cni"
        );
        assert_eq!(
            append_multus_network(r#"[{"name": "net1"}]"#, cni),
            r#"[{"name": "net1"}, {"name": "istio-cni", "namespace": "default"}]"#
        );
        let present = r#"[{"name": "istio-cni", "namespace": "default"}]"#;
        assert_eq!(append_multus_network(present, cni), present);
        // Unreadable JSON is left as it is.
        assert_eq!(append_multus_network("[{oops]", cni), "[{oops]");
    }

    /// Go reads an unpaired surrogate escape as U+FFFD: the list is read, and extended.
    #[test]
    fn multus_networks_list_with_an_unpaired_surrogate_escape_is_read_as_go_reads_it() {
        assert_eq!(
            append_multus_network(r#"[{"name": "net\ud800"}]"#, "default/istio-cni"),
            r#"[{"name": "net\ud800"}, {"name": "istio-cni", "namespace": "default"}]"#
        );
    }
}
