//! Builds a `validate` payload (request + settings) and a Namespace from unstructured fuzzer
//! bytes: a Pod with random labels, annotations (Istio's, with valid, invalid and random
//! values), containers with ports/probes/lifecycle/env, volumes and unknown fields, random
//! settings and namespace labels. Every byte string gives some input (running out of bytes
//! gives defaults), so the fuzzer's mutations steer the structure.
//!
//! Shared by `fuzz/fuzz_targets/structured_pod.rs` and `tests/fuzz_corpus.rs`.
#![allow(dead_code)]

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Value, json};

/// Istio annotations and values worth trying (valid and invalid).
const ANNOTATIONS: &[(&str, &[&str])] = &[
    ("sidecar.istio.io/inject", &["true", "false", "", "yes"]),
    (
        "proxy.istio.io/config",
        &[
            "",
            "{}",
            "holdApplicationUntilProxyStarts: true",
            "concurrency: 2",
            "statusPort: 15999",
            "interceptionMode: TPROXY",
            "proxyMetadata:\n  ISTIO_META_DNS_CAPTURE: \"true\"",
            "statusPort: nope",
            "[1",
            "a: &a [1]\nb: [*a, *a]",
        ],
    ),
    (
        "sidecar.istio.io/proxyCPU",
        &["100m", "1", "0.5", "abc", "1e3", "9223372036854775807"],
    ),
    (
        "sidecar.istio.io/proxyMemory",
        &["128Mi", "1G", "-1", "1Ei"],
    ),
    ("sidecar.istio.io/proxyCPULimit", &["2", "x", "0"]),
    ("sidecar.istio.io/proxyMemoryLimit", &["1Gi", "1e-3"]),
    (
        "sidecar.istio.io/interceptionMode",
        &["REDIRECT", "TPROXY", "NONE", "bogus"],
    ),
    (
        "status.sidecar.istio.io/port",
        &["15020", "15999", "0", "x", "65536", "-1"],
    ),
    (
        "readiness.status.sidecar.istio.io/initialDelaySeconds",
        &["5", "x", "4294967296"],
    ),
    (
        "readiness.status.sidecar.istio.io/periodSeconds",
        &["10", "0"],
    ),
    (
        "readiness.status.sidecar.istio.io/failureThreshold",
        &["3", "-3"],
    ),
    (
        "traffic.sidecar.istio.io/includeOutboundIPRanges",
        &[
            "*",
            "10.0.0.0/8,192.168.0.0/16",
            "",
            "bad",
            "::/0",
            "10.0.0.0/33",
        ],
    ),
    (
        "traffic.sidecar.istio.io/excludeOutboundIPRanges",
        &["169.254.169.254/32", ""],
    ),
    (
        "traffic.sidecar.istio.io/excludeInboundPorts",
        &["8080,9090", "", "x", "1-2"],
    ),
    (
        "traffic.sidecar.istio.io/includeInboundPorts",
        &["*", "80", "0"],
    ),
    (
        "traffic.sidecar.istio.io/excludeOutboundPorts",
        &["5432", "65536"],
    ),
    ("traffic.sidecar.istio.io/includeOutboundPorts", &["443"]),
    (
        "traffic.sidecar.istio.io/excludeInterfaces",
        &["eth1", "a b"],
    ),
    ("traffic.sidecar.istio.io/kubevirtInterfaces", &["net1"]),
    ("istio.io/reroute-virtual-interfaces", &["net1,net2"]),
    (
        "sidecar.istio.io/rewriteAppHTTPProbers",
        &["true", "false", "maybe", "T"],
    ),
    ("sidecar.istio.io/capNetBindService", &["true", "x"]),
    ("prometheus.io/scrape", &["true", "false", "x"]),
    (
        "prometheus.io/port",
        &["9090", "15020", "15090", "bad", "0"],
    ),
    ("prometheus.io/path", &["/metrics", "/m"]),
    ("prometheus-io/port", &["9091"]),
    ("prometheus.istio.io/merge-metrics", &["true", "false"]),
    (
        "prometheus.istio.io/scrape-targets",
        &["9090:/a,9091", ":/x", "15020"],
    ),
    (
        "inject.istio.io/templates",
        &[
            "sidecar",
            "gateway",
            "grpc-agent",
            "grpc-simple",
            "sidecar,custom",
            "nope",
            ",",
            "",
        ],
    ),
    ("sidecar.istio.io/nativeSidecar", &["true", "false", ""]),
    (
        "sidecar.istio.io/status",
        &[
            r#"{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"imagePullSecrets":null,"revision":"default"}"#,
            "{}",
            "garbage",
            "[]",
            r#"{"containers":"x"}"#,
        ],
    ),
    (
        "proxy.istio.io/overrides",
        &[
            "{}",
            "garbage",
            r#"{"containers":[{"name":"istio-proxy","env":[{"name":"OVR","value":"1"}]}]}"#,
            r#"{"containers":[{"name":1}],"initContainers":"x"}"#,
        ],
    ),
    (
        "sidecar.istio.io/userVolume",
        &[r#"{"uv":{"emptyDir":{}}}"#, "garbage", r#"{"uv":1}"#],
    ),
    (
        "sidecar.istio.io/userVolumeMount",
        &[r#"{"uv":{"mountPath":"/uv"}}"#, "[]"],
    ),
    ("sidecar.istio.io/logLevel", &["debug", "info", "nope"]),
    ("sidecar.istio.io/componentLogLevel", &["misc:error"]),
    ("sidecar.istio.io/agentLogLevel", &["debug"]),
    ("sidecar.istio.io/proxyImage", &["example.com/proxy:1", ""]),
    ("sidecar.istio.io/proxyImageType", &["distroless", "debug"]),
    ("sidecar.istio.io/bootstrapOverride", &["custom-bootstrap"]),
    ("kubectl.kubernetes.io/default-container", &["app"]),
    ("kubectl.kubernetes.io/default-logs-container", &["app"]),
    ("istio.io/rev", &["canary", "default"]),
    (
        "k8s.v1.cni.cncf.io/networks",
        &["net1", "", r#"[{"name":"n"}]"#, "[x"],
    ),
    ("apm.datadoghq.com/env", &[r#"{"DD_ENV":"prod"}"#, "x"]),
];

const LABEL_KEYS: &[&str] = &[
    "app",
    "version",
    "app.kubernetes.io/name",
    "app.kubernetes.io/version",
    "sidecar.istio.io/inject",
    "istio.io/rev",
    "security.istio.io/tlsMode",
    "service.istio.io/canonical-name",
    "service.istio.io/canonical-revision",
    "service.istio.io/workload-name",
    "topology.istio.io/network",
];

const WORDS: &[&str] = &[
    "",
    "true",
    "false",
    "enabled",
    "disabled",
    "canary",
    "default",
    "app",
    "istio-proxy",
    "istio-init",
    "istio-validation",
    "http",
    "grpc",
    "15020",
    "-x-",
    "TRUE",
];

const CONTAINER_NAMES: &[&str] = &[
    "app",
    "web",
    "istio-proxy",
    "istio-init",
    "istio-validation",
    "enable-core-dump",
];

/// True with probability 1/n; false once the bytes run out (so short inputs give plain,
/// mostly valid Pods and settings rather than every rare variant at once).
fn chance(u: &mut Unstructured, n: u8) -> Result<bool> {
    Ok(u.arbitrary::<u8>()? % n == n - 1)
}

fn word(u: &mut Unstructured) -> Result<String> {
    if !chance(u, 4)? {
        Ok(u.choose(WORDS)?.to_string())
    } else {
        let s: String = u.arbitrary()?;
        Ok(s.chars().take(40).collect())
    }
}

/// Arbitrary JSON, at most `depth` levels deep.
pub fn json(u: &mut Unstructured, depth: u32) -> Result<Value> {
    let kind = u.int_in_range(0..=if depth == 0 { 5 } else { 7 })?;
    Ok(match kind {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => Value::from(u.arbitrary::<u64>()?),
        4 => Value::from(f64::from(u.arbitrary::<i32>()?) / 8.0),
        5 => Value::from(word(u)?),
        6 => {
            let n = u.int_in_range(0..=4)?;
            Value::Array((0..n).map(|_| json(u, depth - 1)).collect::<Result<_>>()?)
        }
        _ => {
            let n = u.int_in_range(0..=4)?;
            let mut m = Map::new();
            for _ in 0..n {
                m.insert(word(u)?, json(u, depth - 1)?);
            }
            Value::Object(m)
        }
    })
}

fn port(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.int_in_range(0..=4)? {
        0 => json!(*u.choose(&[80, 8080, 9090, 15020, 15021, 15090])?),
        1 => json!(u.arbitrary::<u16>()?),
        2 => json!(*u.choose(&["http", "grpc", "missing", ""])?),
        3 => json!(u.arbitrary::<i64>()?),
        _ => json(u, 1)?,
    })
}

fn handler(u: &mut Unstructured, probe: bool) -> Result<Value> {
    let mut h = Map::new();
    match u.int_in_range(0..=4)? {
        0 => {
            let mut g = json!({ "port": port(u)? });
            if u.arbitrary()? {
                g["path"] = json!(word(u)?);
            }
            if u.arbitrary()? {
                g["scheme"] = json!(*u.choose(&["HTTP", "HTTPS", "x"])?);
            }
            if u.arbitrary()? {
                g["httpHeaders"] = json!([{"name": "X", "value": word(u)?}]);
            }
            h.insert("httpGet".into(), g);
        }
        1 => {
            h.insert("tcpSocket".into(), json!({ "port": port(u)? }));
        }
        2 => {
            h.insert(
                "grpc".into(),
                json!({ "port": port(u)?, "service": word(u)? }),
            );
        }
        3 => {
            h.insert("exec".into(), json!({"command": ["true"]}));
        }
        _ => {
            h.insert(word(u)?, json(u, 2)?);
        }
    }
    if probe && u.arbitrary()? {
        h.insert("timeoutSeconds".into(), json!(u.arbitrary::<i32>()?));
    }
    if probe && u.arbitrary()? {
        h.insert("periodSeconds".into(), json!(u.int_in_range(1..=60)?));
    }
    Ok(Value::Object(h))
}

fn container(u: &mut Unstructured) -> Result<Value> {
    let mut c = Map::new();
    let name = if chance(u, 3)? {
        u.choose(CONTAINER_NAMES)?.to_string()
    } else {
        format!("c{}", u.int_in_range(0..=20)?)
    };
    c.insert("name".into(), name.clone().into());
    c.insert(
        "image".into(),
        if chance(u, 5)? {
            "auto".into()
        } else {
            format!("example.com/{name}:1")
        }
        .into(),
    );
    let n = u.int_in_range(0..=3)?;
    let mut ports = Vec::new();
    for _ in 0..n {
        let mut p = json!({ "containerPort": port(u)? });
        if u.arbitrary()? {
            p["name"] = json!(*u.choose(&["http", "grpc", "metrics", "tcp"])?);
        }
        ports.push(p);
    }
    if !ports.is_empty() {
        c.insert("ports".into(), ports.into());
    }
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        if chance(u, 3)? {
            c.insert(probe.into(), handler(u, true)?);
        }
    }
    if chance(u, 3)? {
        let mut l = Map::new();
        for hook in ["preStop", "postStart"] {
            if u.arbitrary()? {
                l.insert(hook.into(), handler(u, false)?);
            }
        }
        c.insert("lifecycle".into(), Value::Object(l));
    }
    let n = u.int_in_range(0..=3)?;
    if n > 0 {
        let env: Vec<Value> = (0..n)
            .map(|i| Ok(json!({"name": format!("E{i}"), "value": word(u)?})))
            .collect::<Result<_>>()?;
        c.insert("env".into(), env.into());
    }
    if chance(u, 4)? {
        c.insert(
            "volumeMounts".into(),
            json!([{"name": *u.choose(&["data", "istio-envoy", "uv"])?, "mountPath": format!("/m/{}", u.int_in_range(0..=9)?)}]),
        );
    }
    if chance(u, 4)? {
        c.insert(
            "securityContext".into(),
            json!({"runAsUser": u.arbitrary::<i64>()?, "runAsGroup": u.int_in_range(0..=70000)?}),
        );
    }
    if chance(u, 4)? {
        c.insert("resources".into(), json!({"limits": {"cpu": word(u)?}}));
    }
    if chance(u, 5)? {
        c.insert(word(u)?, json(u, 3)?);
    }
    Ok(Value::Object(c))
}

fn settings(u: &mut Unstructured) -> Result<Value> {
    let selector = |u: &mut Unstructured| -> Result<Value> {
        Ok(match u.int_in_range(0..=4)? {
            0 => json!({"matchLabels": {"app": word(u)?}}),
            1 => {
                json!({"matchExpressions": [{"key": word(u)?, "operator": *u.choose(&["In", "NotIn", "Exists", "DoesNotExist", "Bad"])?, "values": [word(u)?]}]})
            }
            2 => json!({}),
            _ => json(u, 2)?,
        })
    };
    let mut s = json!({
        "policy": *u.choose(&["enabled", "disabled", "bogus"])?,
        "revision": *u.choose(&["", "canary"])?,
        "namespaceSelection": *u.choose(&["lookup", "webhook"])?,
        "enableNamespacesByDefault": u.arbitrary::<bool>()?,
        "defaultTemplates": *u.choose(&[
            &["sidecar"][..], &["sidecar", "custom"][..], &["grpc-agent"][..], &["gateway"][..], &["grpc-simple"][..], &["custom"][..],
        ])?,
        "templates": {"custom": {
            "metadata": {"annotations": {"custom.example.com/injected": "yes"}},
            "spec": {"containers": [{"name": "istio-proxy", "env": [{"name": "CUSTOM", "value": "1"}]}]},
        }},
        "nativeSidecars": u.arbitrary::<bool>()?,
        "values": {
            "global": {
                "network": *u.choose(&["", "net1"])?,
                "multiCluster": {"clusterName": *u.choose(&["", "c1"])?},
                "platform": *u.choose(&["", "openshift"])?,
                "proxy": {
                    "holdApplicationUntilProxyStarts": u.arbitrary::<bool>()?,
                    "privileged": u.arbitrary::<bool>()?,
                    "startupProbe": {"enabled": u.arbitrary::<bool>()?},
                },
            },
            "pilot": {"cni": {"enabled": u.arbitrary::<bool>()?, "provider": *u.choose(&["", "multus"])?}},
            "sidecarInjectorWebhook": {"rewriteAppHTTPProbe": u.arbitrary::<bool>()?},
        },
        "meshConfig": {"enablePrometheusMerge": u.arbitrary::<bool>()?},
    });
    let n = u.int_in_range(0..=2)?;
    s["neverInjectSelector"] = Value::Array((0..n).map(|_| selector(u)).collect::<Result<_>>()?);
    let n = u.int_in_range(0..=2)?;
    s["alwaysInjectSelector"] = Value::Array((0..n).map(|_| selector(u)).collect::<Result<_>>()?);
    if chance(u, 4)? {
        s["injectedAnnotations"] = json!({"injected.example.com/by": word(u)?});
    }
    if chance(u, 8)? {
        // Any settings key with any value (validate_settings would refuse most).
        let key = *u.choose(&[
            "policy",
            "values",
            "meshConfig",
            "templates",
            "aliases",
            "bogus",
        ])?;
        s[key] = json(u, 3)?;
    }
    Ok(s)
}

fn pod(u: &mut Unstructured) -> Result<Value> {
    let mut labels = Map::new();
    for _ in 0..u.int_in_range(0..=5)? {
        let key = if !chance(u, 3)? {
            u.choose(LABEL_KEYS)?.to_string()
        } else {
            word(u)?
        };
        labels.insert(key, word(u)?.into());
    }
    let mut annotations = Map::new();
    for _ in 0..u.int_in_range(0..=8)? {
        let (key, values) = *u.choose(ANNOTATIONS)?;
        let value = if !chance(u, 5)? {
            u.choose(values)?.to_string()
        } else {
            word(u)?
        };
        annotations.insert(key.into(), value.into());
    }
    if chance(u, 6)? {
        annotations.insert(word(u)?, word(u)?.into());
    }
    let mut meta = json!({"name": "pod-x", "generateName": "shop-7d9f8b6c5-",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "shop-7d9f8b6c5", "uid": "u", "controller": true}]});
    if !labels.is_empty() {
        meta["labels"] = Value::Object(labels);
    }
    if !annotations.is_empty() {
        meta["annotations"] = Value::Object(annotations);
    }
    if chance(u, 3)? {
        meta["namespace"] = json!(*u.choose(&["shop", "", "kube-system", "other"])?);
    }
    let n = u.int_in_range(1..=4)?;
    let containers: Vec<Value> = (0..n).map(|_| container(u)).collect::<Result<_>>()?;
    let n = u.int_in_range(0..=2)?;
    let inits: Vec<Value> = (0..n).map(|_| container(u)).collect::<Result<_>>()?;
    let mut spec = json!({ "containers": containers });
    if !inits.is_empty() {
        spec["initContainers"] = inits.into();
    }
    if u.arbitrary()? {
        let n = u.int_in_range(0..=3)?;
        let v: Vec<Value> = (0..n)
            .map(|_| Ok(json!({"name": *u.choose(&["data", "istio-envoy", "uv", "istio-data"])?, "emptyDir": {}})))
            .collect::<Result<_>>()?;
        spec["volumes"] = v.into();
    }
    if chance(u, 6)? {
        spec["hostNetwork"] = json!(u.arbitrary::<bool>()?);
    }
    if chance(u, 6)? {
        spec["securityContext"] = json!({"runAsUser": u.arbitrary::<i64>()?});
    }
    if chance(u, 5)? {
        spec[word(u)?] = json(u, 3)?;
    }
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec});
    if chance(u, 10)? {
        // Replace a whole section with arbitrary JSON.
        let section = *u.choose(&["metadata", "spec"])?;
        pod[section] = json(u, 3)?;
    }
    Ok(pod)
}

fn namespace(u: &mut Unstructured) -> Result<Value> {
    let mut labels = Map::new();
    labels.insert("kubernetes.io/metadata.name".into(), "shop".into());
    if u.arbitrary()? {
        labels.insert(
            "istio-injection".into(),
            json!(*u.choose(&["enabled", "disabled", ""])?),
        );
    }
    if u.arbitrary()? {
        labels.insert(
            "istio.io/rev".into(),
            json!(*u.choose(&["canary", "default"])?),
        );
    }
    let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": labels}});
    if chance(u, 4)? {
        ns["metadata"]["annotations"] = json!({
            "openshift.io/sa.scc.uid-range": *u.choose(&["1000680000/10000", "1-2", "x", "4294967295/2"])?,
            "openshift.io/sa.scc.supplemental-groups": *u.choose(&["1000680000/10000", "5/1,bad", ""])?,
        });
    }
    if chance(u, 10)? {
        ns = json(u, 3)?;
    }
    Ok(ns)
}

/// A structured input: the `validate` payload and the Namespace the lookup returns.
pub struct Structured {
    pub pod: Value,
    pub settings: Value,
    pub namespace: Value,
    pub operation: &'static str,
}

impl Structured {
    pub fn from_bytes(data: &[u8]) -> Structured {
        let mut u = Unstructured::new(data);
        let operation = if chance(&mut u, 10).unwrap_or(false) {
            u.choose(&["UPDATE", "DELETE", "CONNECT", ""])
                .copied()
                .unwrap_or("UPDATE")
        } else {
            "CREATE"
        };
        // Each part falls back to a plain default when the bytes run out mid-way.
        let settings = settings(&mut u).unwrap_or_else(|_| json!({}));
        let namespace = namespace(&mut u).unwrap_or_else(|_| json!({"metadata": {"name": "shop"}}));
        let pod = pod(&mut u).unwrap_or_else(|_| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                   "spec": {"containers": [{"name": "app", "image": "app"}]}})
        });
        Structured {
            pod,
            settings,
            namespace,
            operation,
        }
    }

    pub fn request(&self) -> Value {
        json!({
            "uid": "fuzz", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": self.operation, "namespace": "shop", "name": "", "object": self.pod,
        })
    }

    pub fn payload(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({"request": self.request(), "settings": self.settings}))
            .unwrap_or_default()
    }

    pub fn namespace_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.namespace).unwrap_or_default()
    }
}
