//! Istio's proxyless gRPC templates: `grpc-simple` (a bootstrap init container, no agent) and
//! `grpc-agent` (the agent without Envoy, serving xDS and certificates to the app over UDS).

use serde_json::{Map, Value, json};

use super::common::*;
use super::node::{self, Node, NodeMap};
use super::{TemplateInput, object, string_array};
use crate::annotations as ann;

const BOOTSTRAP_SCRIPT: &str = r#"NODE_ID="sidecar~${INSTANCE_IP}~${POD_NAME}.${POD_NAMESPACE}~cluster.local"
SERVER_URI="dns:///istiod.${ISTIO_NAMESPACE}.svc:15010"
echo '
{
  "xds_servers": [
    {
      "server_uri": "'${SERVER_URI}'",
      "channel_creds": [{"type": "insecure"}],
      "server_features" : ["xds_v3"]
    }
  ],
  "node": {
    "id": "'${NODE_ID}'",
    "metadata": {
      "GENERATOR": "grpc"
    }
  }
}' > /var/lib/grpc/data/bootstrap.json"#;

pub fn render_simple(input: &TemplateInput) -> Value {
    let bootstrap_mount =
        json!({"mountPath": "/var/lib/grpc/data/", "name": "grpc-io-proxyless-bootstrap"});
    let init = json!({
        "name": "grpc-bootstrap-init",
        "image": "busybox:1.28",
        "volumeMounts": [bootstrap_mount],
        "env": [
            Value::from(field_ref!("INSTANCE_IP", "status.podIP")),
            Value::from(field_ref!("POD_NAME", "metadata.name")),
            Value::from(field_ref!("POD_NAMESPACE", "metadata.namespace")),
            {"name": "ISTIO_NAMESPACE", "value": format!("{}\n", input.settings.values.global.istio_namespace)},
        ],
        "command": ["sh", "-c", BOOTSTRAP_SCRIPT],
    });
    let containers: Vec<Value> = input
        .containers()
        .iter()
        .map(|c| {
            json!({
                "name": c.get("name").cloned().unwrap_or(Value::Null),
                "env": [
                    {"name": "GRPC_XDS_BOOTSTRAP", "value": "/var/lib/grpc/data/bootstrap.json"},
                    {"name": "GRPC_GO_LOG_VERBOSITY_LEVEL", "value": "99"},
                    {"name": "GRPC_GO_LOG_SEVERITY_LEVEL", "value": "info"},
                ],
                "volumeMounts": [bootstrap_mount],
            })
        })
        .collect();
    json!({
        "metadata": {"annotations": {ann::REWRITE_PROBERS: "false"}},
        "spec": {
            "initContainers": [init],
            "containers": containers,
            "volumes": [{"name": "grpc-io-proxyless-bootstrap", "emptyDir": {}}],
        },
    })
}

pub fn render_agent(input: &TemplateInput) -> Value {
    let s = input.settings;
    let v = &s.values.global;
    let app_containers = app_containers(input);

    let mut annotations = NodeMap::new();
    annotations.insert(ann::REWRITE_PROBERS.into(), "false".into());
    let metadata = Value::from(canonical_metadata(input, &app_containers, annotations));

    let mut c = Map::new();
    c.insert("name".into(), "istio-proxy".into());
    c.insert("image".into(), proxy_image_ref(input).into());
    c.insert(
        "ports".into(),
        json!([{"containerPort": 15020, "protocol": "TCP", "name": "mesh-metrics"}]),
    );
    c.insert("args".into(), string_array(proxy_args(input, "sidecar")));
    c.insert(
        "lifecycle".into(),
        json!({"postStart": {"exec": {"command": ["pilot-agent", "wait", "--url=http://localhost:15020/healthz/ready"]}}}),
    );
    c.insert("env".into(), Value::Array(env(input, &app_containers)));
    if !v.image_pull_policy.is_empty() {
        c.insert("imagePullPolicy".into(), v.image_pull_policy.clone().into());
    }
    // In Istio's template the status-port condition also encloses resources and mounts.
    if input.status_port() != "0" {
        let mut readiness = Value::from(readiness_probe(input));
        readiness["httpGet"]["port"] = json!(15020);
        c.insert("readinessProbe".into(), readiness);
        c.insert("resources".into(), resources(input));
        c.insert("volumeMounts".into(), Value::Array(agent_mounts(input)));
    }
    for (name, spec) in user_entries(input, ann::USER_VOLUME_MOUNT) {
        let mounts = c
            .entry("volumeMounts")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = mounts.as_array_mut() {
            list.push(named(name, spec).into());
        }
    }

    let mut containers = vec![Value::Object(c)];
    for name in &app_containers {
        containers.push(json!({
            "name": name,
            "env": [
                {"name": "GRPC_XDS_EXPERIMENTAL_SECURITY_SUPPORT", "value": "true"},
                {"name": "GRPC_XDS_BOOTSTRAP", "value": "/etc/istio/proxy/grpc-bootstrap.json"},
            ],
            "volumeMounts": [
                {"mountPath": "/var/lib/istio/data", "name": "istio-data"},
                {"mountPath": "/etc/istio/proxy", "name": "istio-xds"},
                Value::from(workload_certs_mount(input)),
            ],
        }));
    }

    let mut spec = Map::new();
    spec.insert("containers".into(), Value::Array(containers));
    spec.insert("volumes".into(), Value::Array(agent_volumes(input)));
    if let Some(secrets) = image_pull_secrets(input) {
        spec.insert("imagePullSecrets".into(), secrets.into());
    }
    object([("metadata", metadata), ("spec", Value::Object(spec))])
}

fn env(input: &TemplateInput, app_containers: &[&str]) -> Vec<Value> {
    use node::env_var;
    let s = input.settings;
    let mut env = vec![
        env_var("ISTIO_META_GENERATOR", "grpc"),
        env_var("OUTPUT_CERTS", "/var/lib/istio/data"),
    ];
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
    env.push(env_var("PROXY_CONFIG", input.proxy_config.to_env_value()));
    env.push(env_var("ISTIO_META_POD_PORTS", pod_ports(input)));
    env.push(env_var(
        "ISTIO_META_APP_CONTAINERS",
        app_containers.join(","),
    ));
    env.push(env_var("ISTIO_META_CLUSTER_ID", cluster_id(input)));
    env.push(field_ref!("ISTIO_META_NODE_NAME", "spec.nodeName"));
    network_and_workload_env(input, input.deploy_name(), &mut env);
    mesh_env(input, &mut env);
    for (k, val) in input.proxy_config.proxy_metadata() {
        env.push(env_var(k.to_string(), val));
    }
    env.push(env_var("ISTIO_META_DNS_CAPTURE", "false"));
    env.push(env_var("DISABLE_ENVOY", "true"));
    env.into_iter().map(Node::into_value).collect()
}

fn agent_mounts(input: &TemplateInput) -> Vec<Value> {
    let v = &input.settings.values.global;
    let mut mounts = vec![
        json!({"name": "workload-socket", "mountPath": "/var/run/secrets/workload-spiffe-uds"}),
        workload_certs_mount(input).into(),
    ];
    if v.pilot_cert_provider == "istiod" {
        mounts.push(json!({"mountPath": "/var/run/secrets/istio", "name": "istiod-ca-cert"}));
    }
    mounts.push(json!({"mountPath": "/var/lib/istio/data", "name": "istio-data"}));
    mounts.push(json!({"mountPath": "/etc/istio/proxy", "name": "istio-xds"}));
    mounts.push(json!({"mountPath": "/var/run/secrets/tokens", "name": "istio-token"}));
    if v.mount_mtls_certs {
        mounts.push(json!({"mountPath": "/etc/certs/", "name": "istio-certs", "readOnly": true}));
    }
    mounts.push(json!({"name": "istio-podinfo", "mountPath": "/etc/istio/pod"}));
    mounts
}

fn agent_volumes(input: &TemplateInput) -> Vec<Value> {
    let mut vols = vec![
        json!({"name": "workload-socket"}),
        workload_certs_volume(input, false).into(),
    ];
    vols.extend(bootstrap_override_volume(input).map(Value::from));
    vols.push(json!({"emptyDir": {"medium": "Memory"}, "name": "istio-xds"}));
    vols.push(json!({"name": "istio-data", "emptyDir": {}}));
    vols.push(podinfo_volume().into());
    vols.push(istio_token_volume(input).into());
    vols.extend(istiod_ca_volume(input).map(Value::from));
    vols.extend(mtls_certs_volume(input).map(Value::from));
    for (name, spec) in user_entries(input, ann::USER_VOLUME) {
        vols.push(named(name, spec).into());
    }
    vols
}
