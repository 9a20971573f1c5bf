//! Istio's proxyless gRPC templates: `grpc-simple` (a bootstrap init container, no agent) and
//! `grpc-agent` (the agent without Envoy, serving xDS and certificates to the app over UDS).

use super::common::*;
use super::{TemplateInput, env_var, string_array};
use crate::annotations as ann;
use crate::json::{List, Map, Value, json, object};

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

pub fn render_simple<'s>(input: &TemplateInput<'_, 's>) -> Value<'s> {
    let bootstrap_mount =
        || json!({"mountPath": "/var/lib/grpc/data/", "name": "grpc-io-proxyless-bootstrap"});
    let istio_namespace = format!("{}\n", input.settings.values.global.istio_namespace);
    let init = json!({
        "name": "grpc-bootstrap-init",
        "image": "busybox:1.28",
        "volumeMounts": [(bootstrap_mount())],
        "env": [
            (field_ref!("INSTANCE_IP", "status.podIP")),
            (field_ref!("POD_NAME", "metadata.name")),
            (field_ref!("POD_NAMESPACE", "metadata.namespace")),
            {"name": "ISTIO_NAMESPACE", "value": istio_namespace}
        ],
        "command": ["sh", "-c", BOOTSTRAP_SCRIPT]
    });
    let containers: Vec<Value<'s>> = input
        .containers()
        .iter()
        .map(|c| {
            json!({
                "name": (c.get("name").cloned().unwrap_or_default().into_owned()),
                "env": [
                    {"name": "GRPC_XDS_BOOTSTRAP", "value": "/var/lib/grpc/data/bootstrap.json"},
                    {"name": "GRPC_GO_LOG_VERBOSITY_LEVEL", "value": "99"},
                    {"name": "GRPC_GO_LOG_SEVERITY_LEVEL", "value": "info"}
                ],
                "volumeMounts": [(bootstrap_mount())]
            })
        })
        .collect();
    let mut annotations = Map::new();
    annotations.insert(ann::REWRITE_PROBERS, "false".into());
    json!({
        "metadata": {"annotations": (annotations)},
        "spec": {
            "initContainers": [init],
            "containers": containers,
            "volumes": [{"name": "grpc-io-proxyless-bootstrap", "emptyDir": {}}]
        }
    })
}

pub fn render_agent<'s>(input: &TemplateInput<'_, 's>) -> Value<'s> {
    let s = input.settings;
    let v = &s.values.global;
    let app_containers = app_containers(input);

    let mut annotations = Map::new();
    annotations.insert(ann::REWRITE_PROBERS, "false".into());
    let metadata = canonical_metadata(input, &app_containers, annotations);

    let mut c = Map::new();
    c.insert("name", "istio-proxy".into());
    c.insert("image", proxy_image_ref(input).into());
    c.insert(
        "ports",
        json!([{"containerPort": 15020, "protocol": "TCP", "name": "mesh-metrics"}]),
    );
    c.insert("args", string_array(proxy_args(input, "sidecar")));
    c.insert(
        "lifecycle",
        json!({"postStart": {"exec": {"command": ["pilot-agent", "wait", "--url=http://localhost:15020/healthz/ready"]}}}),
    );
    c.insert("env", Value::from(env(input, &app_containers)));
    if !v.image_pull_policy.is_empty() {
        c.insert("imagePullPolicy", v.image_pull_policy.clone().into());
    }
    // In Istio's template the status-port condition also encloses resources and mounts.
    if input.status_port() != "0" {
        let mut readiness = readiness_probe(input);
        if let Some(get) = readiness.get_mut("httpGet") {
            crate::pod::ensure_object(get).insert("port", 15020.into());
        }
        c.insert("readinessProbe", readiness);
        c.insert("resources", resources(input));
        c.insert("volumeMounts", Value::from(agent_mounts(input)));
    }
    for (name, spec) in user_entries(input, ann::USER_VOLUME_MOUNT) {
        let mounts = c.get_or_insert_with("volumeMounts", || Value::Array(List::default()));
        if let Some(list) = mounts.as_array_mut() {
            list.push(named(name, spec));
        }
    }

    let mut containers = vec![Value::Object(c)];
    for name in &app_containers {
        containers.push(json!({
            "name": ((*name).to_owned()),
            "env": [
                {"name": "GRPC_XDS_EXPERIMENTAL_SECURITY_SUPPORT", "value": "true"},
                {"name": "GRPC_XDS_BOOTSTRAP", "value": "/etc/istio/proxy/grpc-bootstrap.json"}
            ],
            "volumeMounts": [
                {"mountPath": "/var/lib/istio/data", "name": "istio-data"},
                {"mountPath": "/etc/istio/proxy", "name": "istio-xds"},
                (workload_certs_mount(input))
            ]
        }));
    }

    let mut spec = Map::new();
    spec.insert("containers", Value::from(containers));
    spec.insert("volumes", Value::from(agent_volumes(input)));
    if let Some(secrets) = image_pull_secrets(input) {
        spec.insert("imagePullSecrets", secrets);
    }
    object([("metadata", metadata), ("spec", Value::Object(spec))])
}

fn env<'s>(input: &TemplateInput<'_, 's>, app_containers: &[&str]) -> Vec<Value<'s>> {
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
    env
}

fn agent_mounts<'s>(input: &TemplateInput<'_, 's>) -> Vec<Value<'s>> {
    let v = &input.settings.values.global;
    let mut mounts = vec![
        json!({"name": "workload-socket", "mountPath": "/var/run/secrets/workload-spiffe-uds"}),
        workload_certs_mount(input),
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

fn agent_volumes<'s>(input: &TemplateInput<'_, 's>) -> Vec<Value<'s>> {
    let mut vols = vec![
        json!({"name": "workload-socket"}),
        workload_certs_volume(input, false),
    ];
    vols.extend(bootstrap_override_volume(input));
    vols.push(json!({"emptyDir": {"medium": "Memory"}, "name": "istio-xds"}));
    vols.push(json!({"name": "istio-data", "emptyDir": {}}));
    vols.push(podinfo_volume());
    vols.push(istio_token_volume(input));
    vols.extend(istiod_ca_volume(input));
    vols.extend(mtls_certs_volume(input));
    for (name, spec) in user_entries(input, ann::USER_VOLUME) {
        vols.push(named(name, spec));
    }
    vols
}
