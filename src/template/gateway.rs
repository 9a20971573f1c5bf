//! Istio's `gateway` template (`files/gateway-injection-template.yaml`), used by the
//! istio/gateway chart: a router proxy, no init container, no traffic capture.

use super::TemplateInput;
use super::common::*;
use super::node::{Node, NodeMap, env_var, object, string_array};

pub fn render(input: &TemplateInput) -> Node {
    let s = input.settings;
    let v = &s.values.global;
    let proxy = &v.proxy;
    let app_containers = app_containers(input);

    let metadata = canonical_metadata(input, &app_containers, NodeMap::new());

    let mut c = NodeMap::new();
    c.insert("name".into(), "istio-proxy".into());
    c.insert("image".into(), proxy_image_ref(input).into());
    c.insert("ports".into(), envoy_prom_ports());
    c.insert("args".into(), string_array(proxy_args(input, "router")));
    if is_set(&proxy.lifecycle) {
        c.insert("lifecycle".into(), proxy.lifecycle.clone().into());
    }
    c.insert(
        "securityContext".into(),
        object([
            ("runAsUser", input.proxy_uid.into()),
            ("runAsGroup", input.proxy_gid.into()),
        ]),
    );
    c.insert("env".into(), Node::Arr(env(input, &app_containers)));
    if !v.image_pull_policy.is_empty() {
        c.insert("imagePullPolicy".into(), v.image_pull_policy.clone().into());
    }
    c.insert(
        "readinessProbe".into(),
        probe(
            proxy.readiness_initial_delay_seconds.into(),
            proxy.readiness_period_seconds.into(),
            proxy.readiness_failure_threshold.into(),
        ),
    );
    c.insert(
        "volumeMounts".into(),
        Node::Arr(proxy_volume_mounts(input, false)),
    );

    let pod_security_context = if is_set(&s.values.gateways.security_context) {
        s.values.gateways.security_context.clone().into()
    } else {
        let sysctl = env_var("net.ipv4.ip_unprivileged_port_start", "0");
        object([("sysctls", Node::Arr(vec![sysctl]))])
    };
    let mut spec = NodeMap::new();
    spec.insert("securityContext".into(), pod_security_context);
    spec.insert("containers".into(), Node::Arr(vec![Node::Obj(c)]));
    spec.insert("volumes".into(), Node::Arr(volumes(input)));
    if let Some(secrets) = image_pull_secrets(input) {
        spec.insert("imagePullSecrets".into(), secrets);
    }
    object([("metadata", metadata), ("spec", Node::Obj(spec))])
}

fn env(input: &TemplateInput, app_containers: &[&str]) -> Vec<Node> {
    let mut env = Vec::with_capacity(24);
    identity_env(input, &mut env);
    env.push(resource_field_ref!("ISTIO_CPU_LIMIT", "limits.cpu"));
    env.push(env_var("PROXY_CONFIG", input.proxy_config.to_env_value()));
    env.push(env_var("ISTIO_META_POD_PORTS", pod_ports(input)));
    env.push(resource_field_ref!("GOMEMLIMIT", "limits.memory"));
    compliance_env(input, &mut env);
    env.push(env_var(
        "ISTIO_META_APP_CONTAINERS",
        app_containers.join(","),
    ));
    env.push(env_var("ISTIO_META_CLUSTER_ID", cluster_id(input)));
    env.push(field_ref!("ISTIO_META_NODE_NAME", "spec.nodeName"));
    // Gateways take the interception mode from ProxyConfig only.
    env.push(env_var(
        "ISTIO_META_INTERCEPTION_MODE",
        input.proxy_config.interception_mode(),
    ));
    network_and_workload_env(input, input.deploy_name(), &mut env);
    bootstrap_override_env(input, &mut env);
    mesh_env(input, &mut env);
    for (k, val) in input.proxy_config.proxy_metadata() {
        env.push(env_var(k.to_string(), val));
    }
    env
}

fn volumes(input: &TemplateInput) -> Vec<Node> {
    let mut vols = vec![
        object([("name", "workload-socket".into())]),
        empty_dir_volume("credential-socket"),
        workload_certs_volume(input, true),
    ];
    vols.extend(bootstrap_override_volume(input));
    vols.push(memory_volume("istio-envoy"));
    vols.push(empty_dir_volume("istio-data"));
    vols.push(podinfo_volume());
    vols.push(istio_token_volume(input));
    vols.extend(istiod_ca_volume(input));
    vols.extend(mtls_certs_volume(input));
    vols
}
