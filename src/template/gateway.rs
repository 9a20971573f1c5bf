//! Istio's `gateway` template (`files/gateway-injection-template.yaml`), used by the
//! istio/gateway chart: a router proxy, no init container, no traffic capture.

use super::common::*;
use super::{TemplateInput, env_var, string_array};
use crate::json::{Map, Value, object};

pub fn render<'s>(input: &TemplateInput<'_, 's>) -> Value<'s> {
    let s = input.settings;
    let v = &s.values.global;
    let proxy = &v.proxy;
    let app_containers = app_containers(input);

    let metadata = canonical_metadata(input, &app_containers, Map::new());

    let mut c = Map::new();
    c.insert("name", "istio-proxy".into());
    c.insert("image", proxy_image_ref(input).into());
    c.insert("ports", envoy_prom_ports());
    c.insert("args", string_array(proxy_args(input, "router")));
    if is_set(&proxy.lifecycle) {
        c.insert("lifecycle", Value::borrow_serde(&proxy.lifecycle));
    }
    c.insert(
        "securityContext",
        object([
            ("runAsUser", input.proxy_uid.into()),
            ("runAsGroup", input.proxy_gid.into()),
        ]),
    );
    c.insert("env", Value::from(env(input, &app_containers)));
    if !v.image_pull_policy.is_empty() {
        c.insert("imagePullPolicy", v.image_pull_policy.clone().into());
    }
    c.insert(
        "readinessProbe",
        probe(
            proxy.readiness_initial_delay_seconds.into(),
            proxy.readiness_period_seconds.into(),
            proxy.readiness_failure_threshold.into(),
        ),
    );
    c.insert(
        "volumeMounts",
        Value::from(proxy_volume_mounts(input, false)),
    );

    let pod_security_context = if is_set(&s.values.gateways.security_context) {
        Value::borrow_serde(&s.values.gateways.security_context)
    } else {
        let sysctl = env_var("net.ipv4.ip_unprivileged_port_start", "0");
        object([("sysctls", Value::from(vec![sysctl]))])
    };
    let mut spec = Map::new();
    spec.insert("securityContext", pod_security_context);
    spec.insert("containers", Value::from(vec![Value::Object(c)]));
    spec.insert("volumes", Value::from(volumes(input)));
    if let Some(secrets) = image_pull_secrets(input) {
        spec.insert("imagePullSecrets", secrets);
    }
    object([("metadata", metadata), ("spec", Value::Object(spec))])
}

fn env<'s>(input: &TemplateInput<'_, 's>, app_containers: &[&str]) -> Vec<Value<'s>> {
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
        input.proxy_config.interception_mode().to_owned(),
    ));
    network_and_workload_env(input, input.deploy_name(), &mut env);
    bootstrap_override_env(input, &mut env);
    mesh_env(input, &mut env);
    for (k, val) in input.proxy_config.proxy_metadata() {
        env.push(env_var(k.to_string(), val));
    }
    env
}

fn volumes<'s>(input: &TemplateInput<'_, 's>) -> Vec<Value<'s>> {
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
