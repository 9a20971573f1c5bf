//! Pieces shared by the built-in templates: the env entries, probes, resources and volume
//! helpers that Istio's templates spell out identically.

use super::{TemplateInput, env_var, string_array};
use crate::json::{Map, Value, json, object};

/// `{"name": NAME, "valueFrom": {"fieldRef": {"fieldPath": PATH}}}`.
macro_rules! field_ref {
    ($name:literal, $path:literal) => {
        $crate::json::json!({"name": $name, "valueFrom": {"fieldRef": {"fieldPath": $path}}})
    };
}

/// `{"name": NAME, "valueFrom": {"resourceFieldRef": {"divisor": "1", "resource": R}}}`.
macro_rules! resource_field_ref {
    ($name:literal, $resource:literal) => {
        $crate::json::json!({"name": $name, "valueFrom": {"resourceFieldRef": {"divisor": "1", "resource": $resource}}})
    };
}

/// A volume mount `{"mountPath": PATH, "name": NAME}`.
macro_rules! mount {
    ($name:literal, $path:literal) => {
        $crate::json::json!({"mountPath": $path, "name": $name})
    };
}
use crate::annotations as ann;
use crate::go_json;
use crate::json_text::Object;
use crate::quantity::Quantity;
pub(super) use {field_ref, resource_field_ref};

/// `ISTIO_META_POD_PORTS`: every container port as Go marshals `ContainerPort` (field order
/// name, hostPort, containerPort, protocol, hostIP; empty fields omitted), one per line.
pub(super) fn pod_ports(input: &TemplateInput) -> String {
    let mut out = String::with_capacity(256);
    out.push('[');
    let mut first = true;
    for c in input.containers() {
        let Some(ports) = c.get("ports").and_then(Value::as_array) else {
            continue;
        };
        for p in ports {
            out.push_str("\n    ");
            if !first {
                out.push(',');
            }
            first = false;
            out = append_container_port(out, p);
        }
    }
    out.push_str("\n]");
    out
}

/// Appends a port's JSON to `out`.
fn append_container_port(out: String, p: &Value) -> String {
    let str_field = |k: &str| p.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let num_field = |k: &str| p.get(k).and_then(Value::as_i64).filter(|n| *n != 0);
    let mut o = Object::append_to(out);
    if let Some(v) = str_field("name") {
        o = o.string("name", v);
    }
    if let Some(v) = num_field("hostPort") {
        o = o.number("hostPort", v);
    }
    let port = p.get("containerPort").and_then(Value::as_i64).unwrap_or(0);
    o = o.number("containerPort", port);
    if let Some(v) = str_field("protocol") {
        o = o.string("protocol", v);
    }
    if let Some(v) = str_field("hostIP") {
        o = o.string("hostIP", v);
    }
    o.finish()
}

/// The template's `resources` block: the proxy resource annotations if any is set (then only
/// those), else `values.global.proxy.resources`. Quantities are written in canonical form, as
/// Kubernetes serialises them.
pub(super) fn resources<'s>(input: &TemplateInput<'_, 's>) -> Value<'s> {
    let keys = [
        (ann::PROXY_CPU, "requests", "cpu"),
        (ann::PROXY_MEMORY, "requests", "memory"),
        (ann::PROXY_CPU_LIMIT, "limits", "cpu"),
        (ann::PROXY_MEMORY_LIMIT, "limits", "memory"),
    ];
    let mut out = Map::new();
    if keys.iter().any(|(k, _, _)| input.annotation(k).is_some()) {
        for (key, section, resource) in keys {
            if let Some(v) = input.annotation(key) {
                let entry = out.get_or_insert_with(section, || Value::Object(Map::new()));
                if let Some(m) = entry.as_object_mut() {
                    m.insert(resource, canonical_quantity(v).into());
                }
            }
        }
        return Value::Object(out);
    }
    if let Some(sections) = input.settings.values.global.proxy.resources.as_object() {
        for (section, entries) in sections {
            let Some(entries) = entries.as_object() else {
                continue;
            };
            let mut m = Map::new();
            for (resource, q) in entries {
                let text = match q {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    _ => continue,
                };
                m.insert(resource.as_str(), canonical_quantity(&text).into());
            }
            if !m.is_empty() {
                out.insert(section.as_str(), Value::Object(m));
            }
        }
    }
    Value::Object(out)
}

pub(super) fn canonical_quantity(text: &str) -> String {
    Quantity::parse(text)
        .map(|q| q.canonical())
        .unwrap_or_else(|_| text.to_string())
}

/// Entries of a `userVolume`/`userVolumeMount` annotation (a JSON object name -> spec), in
/// key order as Go's template `range` over a map yields them. Unparsable values add nothing.
pub(super) fn user_entries(input: &TemplateInput, key: &str) -> Vec<(String, serde_json::Value)> {
    let Some(raw) = input.annotation(key) else {
        return Vec::new();
    };
    let Ok(serde_json::Value::Object(map)) = go_json::unmarshal(raw) else {
        return Vec::new();
    };
    // serde_json's maps are sorted by key.
    map.into_iter().collect()
}

/// A user volume or mount: its name, then the fields of its spec.
pub(super) fn named<'s>(name: String, spec: serde_json::Value) -> Value<'s> {
    let mut m = Map::new();
    m.insert("name", name.into());
    if let serde_json::Value::Object(fields) = spec {
        for (k, v) in fields {
            if k != "name" {
                m.insert(k, Value::from_serde(&v));
            }
        }
    }
    Value::Object(m)
}

pub(super) fn probe<'s>(initial_delay: u64, period: u64, failure_threshold: u64) -> Value<'s> {
    let mut p = Map::new();
    p.insert("httpGet", json!({"path": "/healthz/ready", "port": 15021}));
    // Go omits zero int32 fields (omitempty).
    if initial_delay != 0 {
        p.insert("initialDelaySeconds", initial_delay.into());
    }
    if period != 0 {
        p.insert("periodSeconds", period.into());
    }
    p.insert("timeoutSeconds", 3.into());
    if failure_threshold != 0 {
        p.insert("failureThreshold", failure_threshold.into());
    }
    Value::Object(p)
}

pub(super) fn annotation_number(input: &TemplateInput, key: &str, default: u32) -> u64 {
    input
        .annotation(key)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(default as u64)
}

pub(super) fn plain_env<'s>(entries: Vec<(&str, String)>) -> Value<'s> {
    Value::Array(
        entries
            .into_iter()
            .map(|(k, v)| env_var(k.to_string(), v))
            .collect(),
    )
}

/// Helm's truthiness for a value of the settings: present and non-empty.
pub(super) fn is_set(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => false,
        serde_json::Value::Object(m) => !m.is_empty(),
        serde_json::Value::Array(a) => !a.is_empty(),
        serde_json::Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// `CA_ADDR`: the configured CA, else this revision's istiod.
pub(super) fn ca_addr(input: &TemplateInput) -> String {
    let s = input.settings;
    let v = &s.values.global;
    if !v.ca_address.is_empty() {
        v.ca_address.clone()
    } else if s.revision.is_empty() {
        format!("istiod.{}.svc:15012", v.istio_namespace)
    } else {
        format!("istiod-{}.{}.svc:15012", s.revision, v.istio_namespace)
    }
}

/// The env every template starts with: cert provider, CA address and the downward-API
/// identity of the pod.
pub(super) fn identity_env<'s>(input: &TemplateInput<'_, 's>, env: &mut Vec<Value<'s>>) {
    let v = &input.settings.values.global;
    env.push(env_var(
        "PILOT_CERT_PROVIDER",
        v.pilot_cert_provider.as_str(),
    ));
    env.push(env_var("CA_ADDR", ca_addr(input)));
    env.push(field_ref!("POD_NAME", "metadata.name"));
    env.push(field_ref!("POD_NAMESPACE", "metadata.namespace"));
    env.push(field_ref!("INSTANCE_IP", "status.podIP"));
    env.push(field_ref!("SERVICE_ACCOUNT", "spec.serviceAccountName"));
    env.push(field_ref!("HOST_IP", "status.hostIP"));
}

pub(super) fn cluster_id<'s>(input: &TemplateInput<'_, 's>) -> &'s str {
    let name = &input.settings.values.global.multi_cluster.cluster_name;
    if name.is_empty() { "Kubernetes" } else { name }
}

/// `ISTIO_META_NETWORK` (when a network is set in values), then the workload name and owner.
pub(super) fn network_and_workload_env<'s>(
    input: &TemplateInput<'_, 's>,
    workload: &str,
    env: &mut Vec<Value<'s>>,
) {
    let v = &input.settings.values.global;
    if !v.network.is_empty() {
        env.push(env_var("ISTIO_META_NETWORK", v.network.as_str()));
    }
    if !workload.is_empty() {
        env.push(env_var("ISTIO_META_WORKLOAD_NAME", workload.to_owned()));
    }
    let d = input.deploy;
    if !d.api_version.is_empty() && !d.name.is_empty() {
        let ns = if d.namespace.is_empty() {
            "default"
        } else {
            &d.namespace
        };
        env.push(env_var(
            "ISTIO_META_OWNER",
            format!(
                "kubernetes://apis/{}/namespaces/{ns}/{}s/{}",
                d.api_version,
                d.kind.to_lowercase(),
                d.name
            ),
        ));
    }
}

/// `ISTIO_META_MESH_ID` and `TRUST_DOMAIN`.
pub(super) fn mesh_env<'s>(input: &TemplateInput<'_, 's>, env: &mut Vec<Value<'s>>) {
    let s = input.settings;
    let v = &s.values.global;
    let trust_domain = if s.mesh_config.trust_domain.is_empty() {
        &v.trust_domain
    } else {
        &s.mesh_config.trust_domain
    };
    if !v.mesh_id.is_empty() {
        env.push(env_var("ISTIO_META_MESH_ID", v.mesh_id.as_str()));
    } else if !trust_domain.is_empty() {
        env.push(env_var("ISTIO_META_MESH_ID", trust_domain.as_str()));
    }
    if !trust_domain.is_empty() {
        env.push(env_var("TRUST_DOMAIN", trust_domain.as_str()));
    }
}

pub(super) fn bootstrap_override_env<'s>(input: &TemplateInput<'_, 's>, env: &mut Vec<Value<'s>>) {
    if input.annotation(ann::BOOTSTRAP_OVERRIDE).is_some() {
        env.push(env_var(
            "ISTIO_BOOTSTRAP_OVERRIDE",
            "/etc/istio/custom-bootstrap/custom_bootstrap.json",
        ));
    }
}

/// Names of the app containers (all but istio-proxy), in order.
pub(super) fn app_containers<'p>(input: &TemplateInput<'p, '_>) -> Vec<&'p str> {
    input
        .containers()
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .filter(|n| *n != "istio-proxy")
        .collect()
}

/// The canonical service name: label, `app.kubernetes.io/name`, `app`, workload name.
pub(super) fn canonical_name<'p>(input: &TemplateInput<'p, '_>) -> &'p str {
    input
        .label_nonempty("service.istio.io/canonical-name")
        .or_else(|| input.label_nonempty("app.kubernetes.io/name"))
        .or_else(|| input.label_nonempty("app"))
        .unwrap_or(input.deploy_name())
}

pub(super) fn canonical_revision<'p>(input: &TemplateInput<'p, '_>) -> &'p str {
    input
        .label_nonempty("service.istio.io/canonical-revision")
        .or_else(|| input.label_nonempty("app.kubernetes.io/version"))
        .or_else(|| input.label_nonempty("version"))
        .unwrap_or("latest")
}

/// The proxy's readiness probe on the agent, with the `readiness.status.sidecar.istio.io/*`
/// annotations over the values.
pub(super) fn readiness_probe<'s>(input: &TemplateInput<'_, 's>) -> Value<'s> {
    let proxy = &input.settings.values.global.proxy;
    probe(
        annotation_number(
            input,
            ann::READINESS_INITIAL_DELAY,
            proxy.readiness_initial_delay_seconds,
        ),
        annotation_number(input, ann::READINESS_PERIOD, proxy.readiness_period_seconds),
        annotation_number(
            input,
            ann::READINESS_FAILURE_THRESHOLD,
            proxy.readiness_failure_threshold,
        ),
    )
}

/// The metadata of the gateway and proxyless templates: the canonical labels (untruncated,
/// unlike the sidecar template's), `istio.io/rev` and the default-container annotations.
pub(super) fn canonical_metadata<'s>(
    input: &TemplateInput<'_, 's>,
    app_containers: &[&str],
    mut annotations: Map<'s>,
) -> Value<'s> {
    revision_and_default_container(input, app_containers, &mut annotations);
    let labels = object([
        (
            "service.istio.io/canonical-name",
            canonical_name(input).to_owned().into(),
        ),
        (
            "service.istio.io/canonical-revision",
            canonical_revision(input).to_owned().into(),
        ),
    ]);
    object([
        ("labels", labels),
        ("annotations", Value::Object(annotations)),
    ])
}

/// The agent's volume mounts shared by the sidecar and gateway templates; the sidecar adds
/// the CRL mount and the user's mounts.
pub(super) fn proxy_volume_mounts<'s>(
    input: &TemplateInput<'_, 's>,
    sidecar: bool,
) -> Vec<Value<'s>> {
    let v = &input.settings.values.global;
    let mut mounts = Vec::with_capacity(12);
    mounts.push(mount!(
        "workload-socket",
        "/var/run/secrets/workload-spiffe-uds"
    ));
    mounts.push(mount!(
        "credential-socket",
        "/var/run/secrets/credential-uds"
    ));
    mounts.push(workload_certs_mount(input));
    if v.pilot_cert_provider == "istiod" {
        mounts.push(mount!("istiod-ca-cert", "/var/run/secrets/istio"));
        if sidecar {
            mounts.push(mount!("istio-ca-crl", "/var/run/secrets/istio/crl"));
        }
    }
    mounts.push(mount!("istio-data", "/var/lib/istio/data"));
    if input.annotation(ann::BOOTSTRAP_OVERRIDE).is_some() {
        mounts.push(mount!(
            "custom-bootstrap-volume",
            "/etc/istio/custom-bootstrap"
        ));
    }
    mounts.push(mount!("istio-envoy", "/etc/istio/proxy"));
    mounts.push(mount!("istio-token", "/var/run/secrets/tokens"));
    if v.mount_mtls_certs {
        mounts.push(object([
            ("mountPath", "/etc/certs/".into()),
            ("name", "istio-certs".into()),
            ("readOnly", true.into()),
        ]));
    }
    mounts.push(mount!("istio-podinfo", "/etc/istio/pod"));
    if sidecar {
        for (name, spec) in user_entries(input, ann::USER_VOLUME_MOUNT) {
            mounts.push(named(name, spec));
        }
    }
    mounts
}

/// Capabilities dropping ALL, adding `add` (the `add` list only when not empty).
pub(super) fn capabilities<'s>(add: &[&'static str]) -> Value<'s> {
    let mut caps = Map::new();
    if !add.is_empty() {
        caps.insert("add", string_array(add.iter().copied()));
    }
    caps.insert("drop", json!(["ALL"]));
    Value::Object(caps)
}

/// The agent's Envoy Prometheus port list.
pub(super) fn envoy_prom_ports<'s>() -> Value<'s> {
    json!([{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}])
}

/// A lifecycle with one exec hook: `{hook: {"exec": {"command": command}}}`.
pub(super) fn exec_hook<'s>(hook: &'static str, command: Vec<String>) -> Value<'s> {
    let exec = object([("command", string_array(command))]);
    object([(hook, object([("exec", exec)]))])
}

/// `{"name": name, "emptyDir": {}}`.
pub(super) fn empty_dir_volume<'s>(name: &'static str) -> Value<'s> {
    object([
        ("name", name.into()),
        ("emptyDir", Value::Object(Map::new())),
    ])
}

/// `{"name": name, "emptyDir": {"medium": "Memory"}}`.
pub(super) fn memory_volume<'s>(name: &'static str) -> Value<'s> {
    object([
        ("name", name.into()),
        ("emptyDir", json!({"medium": "Memory"})),
    ])
}

/// `istio.io/rev` and the kubectl default-container annotations (only if absent).
pub(super) fn revision_and_default_container<'s>(
    input: &TemplateInput<'_, 's>,
    app_containers: &[&str],
    annotations: &mut Map<'s>,
) {
    annotations.insert("istio.io/rev", input.settings.revision_or_default().into());
    if let Some(first) = app_containers.first() {
        if input.annotation(ann::DEFAULT_LOGS_CONTAINER).is_none() {
            annotations.insert(ann::DEFAULT_LOGS_CONTAINER, (*first).to_owned().into());
        }
        if input.annotation(ann::DEFAULT_CONTAINER).is_none() {
            annotations.insert(ann::DEFAULT_CONTAINER, (*first).to_owned().into());
        }
    }
}

/// The proxy image: the annotation verbatim if it (or the values image) is a full
/// reference, else hub/name:tag.
pub(super) fn proxy_image_ref(input: &TemplateInput) -> String {
    let image = input.annotation_or(ann::PROXY_IMAGE, &input.settings.values.global.proxy.image);
    if image.contains('/') {
        image.to_string()
    } else {
        super::proxy_image(input)
    }
}

/// The projected istio-token, the istiod CA certificate and downward-API volumes.
pub(super) fn istio_token_volume<'s>(input: &TemplateInput<'_, 's>) -> Value<'s> {
    let token = object([
        ("path", "istio-token".into()),
        ("expirationSeconds", 43200.into()),
        (
            "audience",
            input.settings.values.global.sds.token.aud.as_str().into(),
        ),
    ]);
    let source = object([("serviceAccountToken", token)]);
    let projected = object([("sources", Value::from(vec![source]))]);
    object([("name", "istio-token".into()), ("projected", projected)])
}

pub(super) fn podinfo_volume<'s>() -> Value<'s> {
    object([
        ("name", "istio-podinfo".into()),
        (
            "downwardAPI",
            json!({"items": [
                {"fieldRef": {"fieldPath": "metadata.labels"}, "path": "labels"},
                {"fieldRef": {"fieldPath": "metadata.annotations"}, "path": "annotations"}
            ]}),
        ),
    ])
}

/// `istiod-ca-cert` when istiod is the cert provider.
pub(super) fn istiod_ca_volume<'s>(input: &TemplateInput<'_, 's>) -> Option<Value<'s>> {
    let s = input.settings;
    let v = &s.values.global;
    if v.pilot_cert_provider != "istiod" {
        return None;
    }
    let trust_bundle_api = s
        .values
        .pilot
        .env
        .get("ENABLE_CLUSTER_TRUST_BUNDLE_API")
        .is_some_and(|v| v.as_bool() == Some(true));
    Some(if trust_bundle_api {
        let name = if v.trust_bundle_name.is_empty() {
            "root-cert"
        } else {
            &v.trust_bundle_name
        };
        let bundle = object([
            ("name", format!("istio.io:istiod-ca:{name}").into()),
            ("path", "root-cert.pem".into()),
        ]);
        let source = object([("clusterTrustBundle", bundle)]);
        let projected = object([("sources", Value::from(vec![source]))]);
        object([("name", "istiod-ca-cert".into()), ("projected", projected)])
    } else {
        let name = if v.trust_bundle_name.is_empty() {
            "istio-ca-root-cert"
        } else {
            &v.trust_bundle_name
        };
        object([
            ("name", "istiod-ca-cert".into()),
            ("configMap", object([("name", name.into())])),
        ])
    })
}

/// `istio-certs` (values.global.mountMtlsCerts), named after the service account.
pub(super) fn mtls_certs_volume<'s>(input: &TemplateInput<'_, 's>) -> Option<Value<'s>> {
    if !input.settings.values.global.mount_mtls_certs {
        return None;
    }
    let sa = input
        .pod
        .get("spec")
        .and_then(|s| s.get("serviceAccountName"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default");
    let secret = object([
        ("optional", true.into()),
        ("secretName", format!("istio.{sa}").into()),
    ]);
    Some(object([("name", "istio-certs".into()), ("secret", secret)]))
}

pub(super) fn workload_certs_volume<'s>(
    input: &TemplateInput<'_, 's>,
    empty_dir: bool,
) -> Value<'s> {
    if input.settings.values.global.ca_name == "GkeWorkloadCertificate" {
        let csi = object([(
            "driver",
            "workloadcertificates.security.cloud.google.com".into(),
        )]);
        object([("name", "gke-workload-certificate".into()), ("csi", csi)])
    } else if empty_dir {
        object([
            ("emptyDir", Value::Object(Map::new())),
            ("name", "workload-certs".into()),
        ])
    } else {
        object([("name", "workload-certs".into())])
    }
}

pub(super) fn workload_certs_mount<'s>(input: &TemplateInput<'_, 's>) -> Value<'s> {
    if input.settings.values.global.ca_name == "GkeWorkloadCertificate" {
        json!({
            "mountPath": "/var/run/secrets/workload-spiffe-credentials",
            "name": "gke-workload-certificate",
            "readOnly": true
        })
    } else {
        mount!(
            "workload-certs",
            "/var/run/secrets/workload-spiffe-credentials"
        )
    }
}

pub(super) fn bootstrap_override_volume<'s>(input: &TemplateInput<'_, 's>) -> Option<Value<'s>> {
    input.annotation(ann::BOOTSTRAP_OVERRIDE).map(|cm| {
        object([
            ("name", "custom-bootstrap-volume".into()),
            ("configMap", object([("name", cm.to_owned().into())])),
        ])
    })
}

pub(super) fn image_pull_secrets<'s>(input: &TemplateInput<'_, 's>) -> Option<Value<'s>> {
    let secrets = &input.settings.values.global.image_pull_secrets;
    (!secrets.is_empty()).then(|| {
        let list = secrets
            .iter()
            .map(|n| object([("name", n.as_str().into())]))
            .collect();
        Value::Array(list)
    })
}

/// The agent's command-line arguments after `proxy <mode>`.
pub(super) fn proxy_args(input: &TemplateInput, mode: &str) -> Vec<String> {
    let v = &input.settings.values.global;
    let proxy = &v.proxy;
    let mut args: Vec<String> = vec![
        "proxy".into(),
        mode.into(),
        "--domain".into(),
        format!("$(POD_NAMESPACE).svc.{}", proxy.cluster_domain),
        format!(
            "--proxyLogLevel={}",
            input.annotation_or(ann::LOG_LEVEL, &proxy.log_level)
        ),
        format!(
            "--proxyComponentLogLevel={}",
            input.annotation_or(ann::COMPONENT_LOG_LEVEL, &proxy.component_log_level)
        ),
        format!(
            "--log_output_level={}",
            input.annotation_or(ann::AGENT_LOG_LEVEL, &v.logging.level)
        ),
    ];
    if v.sts.service_port != 0 {
        args.push(format!("--stsPort={}", v.sts.service_port));
    }
    if v.log_as_json {
        args.push("--log_as_json".into());
    }
    args
}

/// `COMPLIANCE_POLICY` (istiod's env, given as `values.pilot.env.COMPLIANCE_POLICY`) and,
/// for FIPS 140-3, Go's `GODEBUG=fips140=only`.
pub(super) fn compliance_env<'s>(input: &TemplateInput<'_, 's>, env: &mut Vec<Value<'s>>) {
    let Some(policy) = input
        .settings
        .values
        .pilot
        .env
        .get("COMPLIANCE_POLICY")
        .and_then(serde_json::Value::as_str)
        .filter(|p| !p.is_empty())
    else {
        return;
    };
    env.push(env_var("COMPLIANCE_POLICY", policy));
    if policy == "fips-140-3" {
        env.push(env_var("GODEBUG", "fips140=only"));
    }
}

/// `OTEL_RESOURCE_ATTRIBUTES` when an OpenTelemetry extension provider asks for semantic
/// conventions: service.namespace, service.version and service.instance.id, each from its
/// `resource.opentelemetry.io/*` annotation or derived from the Pod.
pub(super) fn otel_resource_attributes(input: &TemplateInput) -> Option<String> {
    let wanted = input
        .settings
        .mesh_config
        .extension_providers
        .iter()
        .any(|p| {
            p.get("opentelemetry")
                .and_then(|o| o.get("serviceAttributeEnrichment"))
                .and_then(serde_json::Value::as_str)
                == Some("OTEL_SEMANTIC_CONVENTIONS")
        });
    if !wanted {
        return None;
    }
    let annotation = |k: &str| input.annotation(k).filter(|v| !v.is_empty());
    let namespace = input.deploy.namespace.as_str();
    let containers = input.containers();
    let mut attrs: Vec<String> = Vec::new();
    if let Some(v) = annotation("resource.opentelemetry.io/service.namespace") {
        attrs.push(format!("service.namespace={v}"));
    } else if !namespace.is_empty() {
        attrs.push(format!("service.namespace={namespace}"));
    }
    if let Some(v) = annotation("resource.opentelemetry.io/service.version")
        .or_else(|| input.label_nonempty("app.kubernetes.io/version"))
    {
        attrs.push(format!("service.version={v}"));
    } else if let [only] = containers {
        let image = only
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (tag, digest) = image_tag_digest(image);
        let version = match (tag, digest) {
            ("", "") => None,
            (tag, "") => Some(tag.to_string()),
            ("", digest) => Some(digest.to_string()),
            (tag, digest) => Some(format!("{tag}@{digest}")),
        };
        if let Some(v) = version {
            attrs.push(format!("service.version={v}"));
        }
    }
    if let Some(v) = annotation("resource.opentelemetry.io/service.instance.id") {
        attrs.push(format!("service.instance.id={v}"));
    } else if let Some(first) = containers.first() {
        let name = first
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        attrs.push(format!(
            "service.instance.id={namespace}.$(POD_NAME).{name}"
        ));
    }
    (!attrs.is_empty()).then(|| attrs.join(","))
}

/// The tag (after the last `:` following the last `/`) and the digest (after `@`).
fn image_tag_digest(image: &str) -> (&str, &str) {
    let (image, digest) = image.split_once('@').unwrap_or((image, ""));
    let last_slash = image.rfind('/');
    let tag = match image.rfind(':') {
        Some(c) if last_slash.is_none_or(|s| c > s) => &image[c + 1..],
        _ => "",
    };
    (tag, digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags_and_digests() {
        assert_eq!(image_tag_digest("reg:5000/app:1.2"), ("1.2", ""));
        assert_eq!(image_tag_digest("reg:5000/app"), ("", ""));
        assert_eq!(image_tag_digest("app:1@sha256:ab"), ("1", "sha256:ab"));
        assert_eq!(image_tag_digest("app@sha256:ab"), ("", "sha256:ab"));
    }
}
