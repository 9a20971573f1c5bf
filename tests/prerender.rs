//! `engine::validate` keeps Istio's containers and volumes aside as trees (`prerender`) on a
//! first injection with the `sidecar` template. These cases sit on the edges of when it may:
//! each must answer exactly as the reference path (`parse_payload` + `evaluate`) does, which
//! `common::validate` asserts, and inject what the case expects.

#[path = "../benches/common/mod.rs"]
mod common;

use serde_json::{Value, json};

fn payload(pod: Value, settings: Value) -> Vec<u8> {
    json!({
        "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "operation": "CREATE", "namespace": "shop", "object": pod},
        "settings": settings,
    })
    .to_string()
    .into_bytes()
}

/// The injected Pod, checked against the reference path.
fn injected(pod: Value, settings: Value) -> Value {
    let namespace = json!({"metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}}});
    let (response, _) = common::validate(&payload(pod, settings), namespace.to_string().as_bytes());
    let mut response: Value = serde_json::from_slice(&response).unwrap();
    let pod = response["mutated_object"].take();
    assert!(pod.is_object(), "not injected: {response}");
    pod
}

fn pod(annotations: Value, spec: Value) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "shop", "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "app:1",
                                  "ports": [{"containerPort": 8080}],
                                  "readinessProbe": {"httpGet": {"path": "/r", "port": 8080}},
                                  "env": [{"name": "A", "value": "1"}]}]},
    });
    if let (Some(s), Value::Object(extra)) = (pod["spec"].as_object_mut(), spec) {
        s.extend(extra);
    }
    pod
}

fn names(pod: &Value, field: &str) -> Vec<String> {
    pod["spec"][field]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|i| i["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_plain_first_injection_writes_the_kept_trees() {
    let out = injected(
        pod(json!({"prometheus.io/scrape": "true"}), json!({})),
        json!({}),
    );
    assert_eq!(names(&out, "containers"), ["app", "istio-proxy"]);
    assert_eq!(names(&out, "initContainers"), ["istio-init"]);
    let proxy = &out["spec"]["containers"][1];
    // What injection added after rendering reached the kept proxy: the probers and the
    // Prometheus merge, at the end of its env.
    let env: Vec<&str> = proxy["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        &env[env.len() - 2..],
        ["ISTIO_PROMETHEUS_ANNOTATIONS", "ISTIO_KUBE_APP_PROBERS"]
    );
    assert!(proxy["resources"].is_object());
    assert!(names(&out, "volumes").contains(&"istio-envoy".to_string()));
}

#[test]
fn a_user_volume_named_like_a_template_volume_is_merged() {
    let spec =
        json!({"volumes": [{"name": "istio-envoy", "emptyDir": {"medium": "Disk"}, "x": 1}]});
    let out = injected(pod(json!({}), spec), json!({}));
    let envoy: Vec<&Value> = out["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["name"] == "istio-envoy")
        .collect();
    assert_eq!(envoy.len(), 1);
}

#[test]
fn a_user_volume_annotation_repeating_a_template_volume_name() {
    let annotations = json!({
        "sidecar.istio.io/userVolume": r#"{"istio-envoy": {"emptyDir": {}}, "extra": {"configMap": {"name": "c"}}}"#,
        "sidecar.istio.io/userVolumeMount": r#"{"extra": {"mountPath": "/extra"}}"#,
    });
    let out = injected(pod(annotations, json!({})), json!({}));
    assert!(names(&out, "volumes").contains(&"extra".to_string()));
}

#[test]
fn a_user_container_named_like_a_template_container() {
    let spec = json!({"initContainers": [{"name": "istio-init", "image": "mine"}]});
    let out = injected(pod(json!({}), spec), json!({}));
    assert_eq!(names(&out, "initContainers"), ["istio-init"]);
    let mut with_proxy = pod(json!({}), json!({}));
    with_proxy["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "istio-proxy", "resources": {"limits": {"cpu": "2"}}}));
    let out = injected(with_proxy, json!({}));
    assert_eq!(
        out["spec"]["containers"][1]["resources"]["limits"]["cpu"],
        "2"
    );
}

#[test]
fn settings_with_nulls_empty_env_values_and_a_cluster_name() {
    let settings = json!({
        "values": {"global": {
            "proxy": {"lifecycle": {"preStop": {"exec": {"command": ["x"]}}, "postStart": null}},
            "multiCluster": {"clusterName": "east"},
        }},
    });
    let out = injected(pod(json!({}), json!({})), settings);
    let proxy = &out["spec"]["containers"][1];
    assert!(proxy["lifecycle"].get("postStart").is_none());
    let cluster: Vec<&Value> = proxy["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "ISTIO_META_CLUSTER_ID")
        .collect();
    assert_eq!(
        cluster,
        [&json!({"name": "ISTIO_META_CLUSTER_ID", "value": "east"})]
    );
    // No app container: ISTIO_META_APP_CONTAINERS renders empty and loses its value.
    let mut lone = pod(json!({}), json!({}));
    lone["spec"]["containers"] = json!([{"name": "istio-proxy"}]);
    injected(lone, json!({}));
}

#[test]
fn native_sidecars_and_cni_keep_their_trees_too() {
    let settings = json!({"nativeSidecars": true, "values": {"pilot": {"cni": {"enabled": true}}}});
    let out = injected(pod(json!({}), json!({})), settings);
    assert_eq!(
        names(&out, "initContainers"),
        ["istio-validation", "istio-proxy"]
    );
    assert_eq!(out["spec"]["initContainers"][1]["restartPolicy"], "Always");
}

#[test]
fn proxy_metadata_read_after_rendering_keeps_values() {
    let annotations = json!({
        "proxy.istio.io/config": "proxyMetadata:\n  ENVOY_SECURE_MERGED_METRICS_PORT: \"15091\"\n  ISTIO_KUBE_APP_PROBERS: \"{}\"\n",
        "prometheus.io/scrape": "true",
    });
    let out = injected(pod(annotations, json!({})), json!({}));
    assert_eq!(
        out["metadata"]["annotations"]["prometheus.istio.io/secure-port"],
        "15091"
    );
}

/// Which of the cases above keep trees aside (the others inject through values).
#[test]
fn trees_are_kept_only_where_nothing_reads_or_merges_them() {
    use istio_sidecar_injector::inject::{Containers, inject_with};
    use istio_sidecar_injector::settings::Settings;
    let kept = |pod: Value, settings: Value| {
        let settings: Settings = serde_json::from_value(settings).unwrap();
        let (_, kept) = inject_with(pod, &settings, "shop", None, Containers::Prerendered).unwrap();
        (kept.containers.len(), kept.volumes.len())
    };
    let (containers, volumes) = kept(pod(json!({}), json!({})), json!({}));
    assert_eq!(containers, 2);
    assert!(volumes >= 7, "{volumes}");
    let user_volume = json!({"volumes": [{"name": "istio-envoy", "emptyDir": {}}]});
    assert_eq!(kept(pod(json!({}), user_volume), json!({})), (2, 0));
    let repeated = json!({"sidecar.istio.io/userVolume": r#"{"istio-envoy": {"emptyDir": {}}}"#});
    assert_eq!(kept(pod(repeated, json!({})), json!({})), (2, 0));
    let user_init = json!({"initContainers": [{"name": "istio-init"}]});
    assert_eq!(kept(pod(json!({}), user_init), json!({})).0, 0);
    let cluster = json!({"values": {"global": {"multiCluster": {"clusterName": "east"}}}});
    assert_eq!(kept(pod(json!({}), json!({})), cluster), (0, 0));
    let read_later = json!({
        "proxy.istio.io/config": "proxyMetadata:\n  ENVOY_SECURE_MERGED_METRICS_PORT: \"1\"\n",
    });
    assert_eq!(kept(pod(read_later, json!({})), json!({})), (0, 0));
    // Without Prerendered, never.
    let settings = Settings::default();
    let (_, none) = inject_with(
        pod(json!({}), json!({})),
        &settings,
        "shop",
        None,
        Containers::AsValues,
    )
    .unwrap();
    assert!(none.is_empty());
}
