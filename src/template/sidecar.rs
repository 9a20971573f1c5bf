//! Istio's default `sidecar` template (`files/injection-template.yaml`), rendered directly
//! into a partial Pod. Field by field it follows the Helm chart's template; values that Go
//! would omit when empty (zero probe delays, absent optional env) are omitted here too.

use serde_json::Value;

use super::common::*;
use super::node::{Node, NodeMap, env_var, lit, object, raw_json, string_array};
use super::{TemplateInput, exclude_inbound_port, proxy_init_image, truncate_canonical_name};
use crate::annotations as ann;

pub fn render(input: &TemplateInput) -> Node {
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
    let mut spec = NodeMap::new();
    if native {
        init_containers.push(proxy);
        spec.insert("initContainers".into(), Node::Arr(init_containers));
    } else {
        spec.insert("initContainers".into(), Node::Arr(init_containers));
        spec.insert("containers".into(), Node::Arr(vec![proxy]));
    }
    spec.insert("volumes".into(), Node::Arr(volumes(input)));
    if let Some(secrets) = image_pull_secrets(input) {
        spec.insert("imagePullSecrets".into(), secrets);
    }
    object([("metadata", metadata), ("spec", Node::Obj(spec))])
}

fn labels(input: &TemplateInput) -> Node {
    let mut labels = NodeMap::new();
    labels.insert(
        "security.istio.io/tlsMode".into(),
        input
            .label_nonempty("security.istio.io/tlsMode")
            .unwrap_or("istio")
            .into(),
    );
    if input
        .proxy_config
        .proxy_metadata_value("ISTIO_META_ENABLE_HBONE")
        .as_deref()
        == Some("true")
    {
        labels.insert(
            "networking.istio.io/tunnel".into(),
            input
                .label_nonempty("networking.istio.io/tunnel")
                .unwrap_or("http")
                .into(),
        );
    }
    labels.insert(
        "service.istio.io/canonical-name".into(),
        truncate_canonical_name(canonical_name(input)).into(),
    );
    labels.insert(
        "service.istio.io/canonical-revision".into(),
        canonical_revision(input).into(),
    );
    Node::Obj(labels)
}

fn annotations(input: &TemplateInput, app_containers: &[&str], mode: &str) -> Node {
    let s = input.settings;
    let proxy = &s.values.global.proxy;
    let mut a = NodeMap::new();
    revision_and_default_container(input, app_containers, &mut a);
    if s.values.pilot.cni.enabled {
        // The CNI plugin reads the effective traffic settings from the pod's annotations.
        if s.values.pilot.cni.provider == "multus" {
            let existing = input
                .annotation("k8s.v1.cni.cncf.io/networks")
                .unwrap_or("");
            a.insert(
                "k8s.v1.cni.cncf.io/networks".into(),
                append_multus_network(existing, "default/istio-cni").into(),
            );
        }
        a.insert(ann::INTERCEPTION_MODE.into(), mode.into());
        let include =
            input.annotation_or(ann::INCLUDE_OUTBOUND_IP_RANGES, &proxy.include_ip_ranges);
        if !include.is_empty() {
            a.insert(ann::INCLUDE_OUTBOUND_IP_RANGES.into(), include.into());
        }
        let exclude =
            input.annotation_or(ann::EXCLUDE_OUTBOUND_IP_RANGES, &proxy.exclude_ip_ranges);
        if !exclude.is_empty() {
            a.insert(ann::EXCLUDE_OUTBOUND_IP_RANGES.into(), exclude.into());
        }
        a.insert(
            ann::INCLUDE_INBOUND_PORTS.into(),
            input
                .annotation_or(ann::INCLUDE_INBOUND_PORTS, &proxy.include_inbound_ports)
                .into(),
        );
        a.insert(
            ann::EXCLUDE_INBOUND_PORTS.into(),
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
                ann::INCLUDE_OUTBOUND_PORTS.into(),
                input
                    .annotation_or(ann::INCLUDE_OUTBOUND_PORTS, &proxy.include_outbound_ports)
                    .into(),
            );
        }
        if input.annotation(ann::EXCLUDE_OUTBOUND_PORTS).is_some()
            || !proxy.exclude_outbound_ports.is_empty()
        {
            a.insert(
                ann::EXCLUDE_OUTBOUND_PORTS.into(),
                input
                    .annotation_or(ann::EXCLUDE_OUTBOUND_PORTS, &proxy.exclude_outbound_ports)
                    .into(),
            );
        }
        for key in [
            ann::KUBEVIRT_INTERFACES,
            ann::REROUTE_VIRTUAL_INTERFACES,
            ann::EXCLUDE_INTERFACES,
        ] {
            if let Some(v) = input.annotation(key).filter(|v| !v.is_empty()) {
                a.insert(key.into(), v.into());
            }
        }
    }
    Node::Obj(a)
}

/// Istio's `appendMultusNetwork` for the flat (comma-separated) and JSON-list forms.
fn append_multus_network(existing: &str, network: &str) -> String {
    if existing.is_empty() {
        return network.to_string();
    }
    if let Some(i) = existing.rfind(']') {
        let Ok(networks) = serde_json::from_str::<Vec<serde_json::Map<String, Value>>>(existing)
        else {
            return existing.to_string();
        };
        let (ns, name) = network.split_once('/').unwrap_or(("", network));
        let present = networks.iter().any(|n| {
            n.get("name").and_then(Value::as_str) == Some(name)
                && n.get("namespace").and_then(Value::as_str).unwrap_or("") == ns
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

fn init_container(input: &TemplateInput, mode: &str, tproxy: bool, resources: Value) -> Node {
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

    let mut c = NodeMap::new();
    c.insert("name".into(), lit(name));
    c.insert("image".into(), image.into());
    c.insert("args".into(), string_array(args));
    let metadata = input.proxy_config.proxy_metadata();
    if !metadata.is_empty() {
        c.insert("env".into(), plain_env(metadata));
    }
    c.insert("resources".into(), resources.into());
    if !v.image_pull_policy.is_empty() {
        c.insert("imagePullPolicy".into(), v.image_pull_policy.clone().into());
    }
    let mut sc = NodeMap::new();
    sc.insert("allowPrivilegeEscalation".into(), proxy.privileged.into());
    sc.insert("privileged".into(), proxy.privileged.into());
    if cni {
        sc.insert("capabilities".into(), capabilities(&[]));
        sc.insert("readOnlyRootFilesystem".into(), true.into());
        let (uid, gid) = if tproxy {
            (1337, 1337)
        } else {
            (input.proxy_uid, input.proxy_gid)
        };
        sc.insert("runAsGroup".into(), gid.into());
        sc.insert("runAsUser".into(), uid.into());
        sc.insert("runAsNonRoot".into(), true.into());
    } else {
        sc.insert(
            "capabilities".into(),
            capabilities(&["NET_ADMIN", "NET_RAW"]),
        );
        sc.insert("readOnlyRootFilesystem".into(), false.into());
        sc.insert("runAsGroup".into(), 0.into());
        sc.insert("runAsNonRoot".into(), false.into());
        sc.insert("runAsUser".into(), 0.into());
    }
    if is_set(&proxy.seccomp_profile) {
        sc.insert(
            "seccompProfile".into(),
            proxy.seccomp_profile.clone().into(),
        );
    }
    c.insert("securityContext".into(), Node::Obj(sc));
    Node::Obj(c)
}

fn proxy_container(
    input: &TemplateInput,
    app_containers: &[&str],
    (tproxy, cap_net_bind, hold_proxy): (bool, bool, bool),
    resources: Value,
) -> Node {
    let s = input.settings;
    let v = &s.values.global;
    let proxy = &v.proxy;
    let image = proxy_image_ref(input);
    let status_port = input.status_port();
    let mut args = proxy_args(input, "sidecar");
    if !proxy.outlier_log_path.is_empty() {
        args.push(format!("--outlierLogPath={}", proxy.outlier_log_path));
    }

    let mut c = NodeMap::new();
    c.insert("name".into(), lit("istio-proxy"));
    c.insert("image".into(), image.into());
    if input.native_sidecar {
        c.insert("restartPolicy".into(), lit("Always"));
    }
    c.insert("ports".into(), envoy_prom_ports());
    c.insert("args".into(), string_array(args));
    if is_set(&proxy.lifecycle) {
        c.insert("lifecycle".into(), proxy.lifecycle.clone().into());
    } else if hold_proxy {
        c.insert(
            "lifecycle".into(),
            raw_json!(r#"{"postStart":{"exec":{"command":["pilot-agent","wait"]}}}"#),
        );
    } else if input.native_sidecar {
        let command = vec![
            "pilot-agent".into(),
            "request".into(),
            format!("--debug-port={status_port}"),
            "POST".into(),
            "drain".into(),
        ];
        c.insert("lifecycle".into(), exec_hook("preStop", command));
    }
    c.insert("env".into(), Node::Arr(proxy_env(input, app_containers)));
    if !v.image_pull_policy.is_empty() {
        c.insert("imagePullPolicy".into(), v.image_pull_policy.clone().into());
    }
    if status_port != "0" {
        if proxy.startup_probe.enabled {
            c.insert(
                "startupProbe".into(),
                probe(0, 1, proxy.startup_probe.failure_threshold.into()),
            );
        }
        c.insert("readinessProbe".into(), readiness_probe(input));
    }
    c.insert(
        "securityContext".into(),
        proxy_security_context(input, tproxy, cap_net_bind),
    );
    c.insert("resources".into(), resources.into());
    c.insert(
        "volumeMounts".into(),
        Node::Arr(proxy_volume_mounts(input, true)),
    );
    Node::Obj(c)
}

fn proxy_env(input: &TemplateInput, app_containers: &[&str]) -> Vec<Node> {
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
    env.push(env_var("ISTIO_META_INTERCEPTION_MODE", meta_mode));
    let workload = input
        .label_nonempty("service.istio.io/workload-name")
        .unwrap_or(input.deploy_name());
    network_and_workload_env(input, workload, &mut env);
    bootstrap_override_env(input, &mut env);
    mesh_env(input, &mut env);
    if v.proxy.tracer == "datadog"
        && let Some(raw) = input.annotation("apm.datadoghq.com/env")
        && let Ok(Value::Object(vars)) = serde_json::from_str::<Value>(raw)
    {
        let mut vars: Vec<(&String, &Value)> = vars.iter().collect();
        vars.sort_by(|a, b| a.0.cmp(b.0));
        for (k, val) in vars {
            let val = match val {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            env.push(env_var(k.to_string(), val));
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

fn proxy_security_context(input: &TemplateInput, tproxy: bool, cap_net_bind: bool) -> Node {
    let proxy = &input.settings.values.global.proxy;
    let mut sc = NodeMap::new();
    if input
        .proxy_config
        .proxy_metadata_value("IPTABLES_TRACE_LOGGING")
        .as_deref()
        == Some("true")
    {
        sc.insert("allowPrivilegeEscalation".into(), true.into());
        sc.insert("capabilities".into(), capabilities(&["NET_ADMIN"]));
        sc.insert("privileged".into(), true.into());
        sc.insert("readOnlyRootFilesystem".into(), true.into());
        sc.insert("runAsGroup".into(), input.proxy_gid.into());
        sc.insert("runAsNonRoot".into(), false.into());
        sc.insert("runAsUser".into(), 0.into());
    } else {
        sc.insert("allowPrivilegeEscalation".into(), proxy.privileged.into());
        let mut add = Vec::new();
        if tproxy {
            add.push("NET_ADMIN");
        }
        if cap_net_bind {
            add.push("NET_BIND_SERVICE");
        }
        sc.insert("capabilities".into(), capabilities(&add));
        sc.insert("privileged".into(), proxy.privileged.into());
        sc.insert("readOnlyRootFilesystem".into(), true.into());
        if tproxy || cap_net_bind {
            sc.insert("runAsNonRoot".into(), false.into());
            sc.insert("runAsUser".into(), 0.into());
            sc.insert("runAsGroup".into(), 1337.into());
        } else {
            sc.insert("runAsNonRoot".into(), true.into());
            sc.insert("runAsUser".into(), input.proxy_uid.into());
            sc.insert("runAsGroup".into(), input.proxy_gid.into());
        }
    }
    if is_set(&proxy.seccomp_profile) {
        sc.insert(
            "seccompProfile".into(),
            proxy.seccomp_profile.clone().into(),
        );
    }
    Node::Obj(sc)
}

fn volumes(input: &TemplateInput) -> Vec<Node> {
    let s = input.settings;
    let mut vols = Vec::with_capacity(12);
    vols.push(object([("name", lit("workload-socket"))]));
    vols.push(object([("name", lit("credential-socket"))]));
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
