//! Istio's `gateway` template (`files/gateway-injection-template.yaml`), used by the
//! istio/gateway chart: a router proxy, no init container, no traffic capture.

use serde_json::{Map, Value, json};

use super::TemplateInput;
use super::common::*;

pub fn render(input: &TemplateInput) -> Value {
    let s = input.settings;
    let v = &s.values.global;
    let proxy = &v.proxy;
    let app_containers = app_containers(input);

    let metadata = canonical_metadata(input, &app_containers, Map::new());

    let mut c = Map::new();
    c.insert("name".into(), "istio-proxy".into());
    c.insert("image".into(), proxy_image_ref(input).into());
    c.insert(
        "ports".into(),
        json!([{"containerPort": 15090, "protocol": "TCP", "name": "http-envoy-prom"}]),
    );
    c.insert("args".into(), json!(proxy_args(input, "router")));
    if is_set(&proxy.lifecycle) {
        c.insert("lifecycle".into(), proxy.lifecycle.clone());
    }
    c.insert(
        "securityContext".into(),
        json!({"runAsUser": input.proxy_uid, "runAsGroup": input.proxy_gid}),
    );
    c.insert("env".into(), Value::Array(env(input, &app_containers)));
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
        Value::Array(proxy_volume_mounts(input, false)),
    );

    let pod_security_context = if is_set(&s.values.gateways.security_context) {
        s.values.gateways.security_context.clone()
    } else {
        json!({"sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]})
    };
    let mut spec = Map::new();
    spec.insert("securityContext".into(), pod_security_context);
    spec.insert("containers".into(), json!([Value::Object(c)]));
    spec.insert("volumes".into(), Value::Array(volumes(input)));
    image_pull_secrets(input, &mut spec);
    json!({"metadata": metadata, "spec": spec})
}

fn env(input: &TemplateInput, app_containers: &[&str]) -> Vec<Value> {
    let mut env = Vec::with_capacity(24);
    identity_env(input, &mut env);
    env.push(resource_field_ref("ISTIO_CPU_LIMIT", "limits.cpu"));
    env.push(json!({"name": "PROXY_CONFIG", "value": input.proxy_config.to_env_value()}));
    env.push(json!({"name": "ISTIO_META_POD_PORTS", "value": pod_ports(input)}));
    env.push(resource_field_ref("GOMEMLIMIT", "limits.memory"));
    compliance_env(input, &mut env);
    env.push(json!({"name": "ISTIO_META_APP_CONTAINERS", "value": app_containers.join(",")}));
    env.push(json!({"name": "ISTIO_META_CLUSTER_ID", "value": cluster_id(input)}));
    env.push(field_ref("ISTIO_META_NODE_NAME", "spec.nodeName"));
    // Gateways take the interception mode from ProxyConfig only.
    env.push(json!({"name": "ISTIO_META_INTERCEPTION_MODE", "value": input.proxy_config.interception_mode()}));
    network_and_workload_env(input, input.deploy_name(), &mut env);
    bootstrap_override_env(input, &mut env);
    mesh_env(input, &mut env);
    for (k, val) in input.proxy_config.proxy_metadata() {
        env.push(json!({"name": k, "value": val}));
    }
    env
}

fn volumes(input: &TemplateInput) -> Vec<Value> {
    let mut vols = vec![
        json!({"name": "workload-socket"}),
        json!({"emptyDir": {}, "name": "credential-socket"}),
        workload_certs_volume(input, true),
    ];
    vols.extend(bootstrap_override_volume(input));
    vols.push(json!({"emptyDir": {"medium": "Memory"}, "name": "istio-envoy"}));
    vols.push(json!({"name": "istio-data", "emptyDir": {}}));
    vols.push(podinfo_volume());
    vols.push(istio_token_volume(input));
    vols.extend(istiod_ca_volume(input));
    vols.extend(mtls_certs_volume(input));
    vols
}
