//! Hostile input: each request must get an answer (inject, skip, or a clear rejection)
//! within a time budget, and nothing may panic or overflow the stack.
//!
//! The answer is produced exactly as the wasm `validate` entry produces it (see
//! `benches/common/mod.rs`): `protocol::validate` parses the payload, evaluates and writes
//! the response. Every call runs under `catch_unwind`, so a panic fails the test with the
//! input that caused it.
//!
//! Budget: `HOSTILE_BUDGET_MS` (default 2,000 ms in a debug build, 500 ms optimized), per
//! call, measured natively as the CPU time of the calling thread (Linux
//! `/proc/thread-self/schedstat`, so that other builds and parallel tests on the machine do
//! not make it flaky; wall time elsewhere), and the wall time must stay under three times
//! the budget. Kubewarden's policy-server times policies out after 2 s.
//!
//! A rejection must carry a message, and the message must stay in proportion to the payload
//! (Istio's messages quote the bad value, so a 1 MiB bad annotation gives a message of about
//! 1 MiB; Rust's `{:?}` quoting turns a DEL byte into `\u{7f}`, so up to 6x; more would mean
//! the value is echoed once per container or similar).

#[path = "../benches/common/mod.rs"]
mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use istio_sidecar_injector::decision::Outcome;
use serde_json::{Value, json};

fn budget() -> Duration {
    let default = if cfg!(debug_assertions) { 2_000 } else { 500 };
    let ms = std::env::var("HOSTILE_BUDGET_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Duration::from_millis(ms)
}

/// What the policy answered.
#[derive(Debug)]
struct Answer {
    /// `injected`, `skipped`, `not-selected`, `rejected`, or `malformed` (the payload was
    /// rejected before evaluation, as `reject_request(.., 400)`).
    outcome: String,
    reason_code: String,
    message: Option<String>,
    mutated: Option<Value>,
    elapsed: Duration,
}

/// Nanoseconds this thread has run on a CPU, where Linux tells.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Runs the validate path on `payload`, failing the test on a panic or a blown budget.
fn answer(what: &str, payload: &[u8]) -> Answer {
    // The budget is for one call of what the module runs (`protocol::validate`); the
    // verdict the answer was written from is worked out after, untimed.
    let start = Instant::now();
    let cpu_start = thread_cpu_ns();
    let timed = catch_unwind(AssertUnwindSafe(|| {
        common::validate_entry(payload, common::NAMESPACE.as_bytes())
    }));
    let wall = start.elapsed();
    let elapsed = match (cpu_start, thread_cpu_ns()) {
        (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)),
        _ => wall,
    };
    let result = timed.and_then(|entry| {
        catch_unwind(AssertUnwindSafe(|| {
            let (response, verdict) = common::validate(payload, common::NAMESPACE.as_bytes());
            assert_eq!(
                entry, response,
                "{what}: the module's entry answered differently"
            );
            (response, verdict)
        }))
    });
    let (response, verdict) = match result {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "{what}: the policy panicked ({msg}) on a {} byte payload starting {:?}",
                payload.len(),
                String::from_utf8_lossy(&payload[..payload.len().min(300)])
            );
        }
    };
    // Null when the payload is text the host could not send, carried through.
    let response = common::response_json(payload, &response).unwrap_or_default();
    assert!(
        elapsed <= budget() && wall <= 3 * budget(),
        "{what}: answered in {elapsed:?} of CPU ({wall:?} wall), over the budget of {:?}",
        budget()
    );
    let answer = match verdict {
        None => Answer {
            outcome: "malformed".into(),
            reason_code: String::new(),
            message: response["message"].as_str().map(str::to_string),
            mutated: None,
            elapsed,
        },
        Some(v) => Answer {
            outcome: v.outcome.as_str().into(),
            reason_code: v.reason.code.into(),
            message: v.message.clone(),
            mutated: v.mutated.as_ref().map(|pod| pod.to_serde()),
            elapsed,
        },
    };
    // A rejection must explain itself.
    if matches!(answer.outcome.as_str(), "rejected" | "malformed") {
        assert_eq!(response["accepted"], json!(false), "{what}");
        let m = answer.message.as_deref().unwrap_or_default();
        assert!(!m.is_empty(), "{what}: rejected without a message");
        assert!(
            m.len() <= 8 * payload.len() + 4096,
            "{what}: the rejection message ({} bytes) is out of proportion to the payload ({} bytes)",
            m.len(),
            payload.len()
        );
    } else if !response.is_null() {
        assert_eq!(response["accepted"], json!(true), "{what}");
    }
    eprintln!(
        "{what}: {} {} in {:?} ({} byte payload) {}",
        answer.outcome,
        answer.reason_code,
        answer.elapsed,
        payload.len(),
        answer
            .message
            .as_deref()
            .map(|m| &m[..m.len().min(160)])
            .unwrap_or("")
    );
    answer
}

/// The 1-container example request, changed by `edit`, as a payload with `settings`.
fn example_payload(edit: impl FnOnce(&mut Value), settings: Value) -> Vec<u8> {
    let mut request = common::examples().remove(0).request;
    edit(&mut request["object"]);
    common::payload(&request, &settings)
}

fn example(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    example_payload(edit, json!({}))
}

const MIB: usize = 1 << 20;

/// The item named `name` of the list at `pointer` in `value`.
fn named<'v>(value: &'v Value, pointer: &str, name: &str) -> &'v Value {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .and_then(|items| items.iter().find(|item| item["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {pointer}"))
}

#[test]
fn ten_mib_annotation_value_is_injected() {
    let payload = example(|pod| {
        pod["metadata"]["annotations"]["example.com/blob"] = json!("a".repeat(10 * MIB));
    });
    assert!(payload.len() > 10 * MIB);
    let a = answer("10 MiB annotation", &payload);
    assert_eq!(a.outcome, "injected");
    let pod = a.mutated.unwrap();
    assert_eq!(
        pod["metadata"]["annotations"]["example.com/blob"]
            .as_str()
            .map(str::len),
        Some(10 * MIB)
    );
}

#[test]
fn ten_mib_of_env_vars_is_injected() {
    let payload = example(|pod| {
        let env: Vec<Value> = (0..150_000)
            .map(|i| json!({"name": format!("VAR_{i:06}"), "value": format!("value-{i:06}-{}", "v".repeat(40))}))
            .collect();
        pod["spec"]["containers"][0]["env"] = Value::Array(env);
    });
    assert!(payload.len() > 10 * MIB, "{}", payload.len());
    let a = answer("10 MiB of env vars", &payload);
    assert_eq!(a.outcome, "injected");
    let pod = a.mutated.unwrap();
    let app = named(&pod, "/spec/containers", "app");
    assert_eq!(app["env"].as_array().unwrap().len(), 150_000);
}

#[test]
fn thousand_containers_are_injected() {
    let payload = example(|pod| {
        let template = pod["spec"]["containers"][0].clone();
        let containers: Vec<Value> = (0..1000)
            .map(|i| {
                let mut c = template.clone();
                c["name"] = json!(format!("c{i}"));
                c
            })
            .collect();
        pod["spec"]["containers"] = Value::Array(containers);
    });
    let a = answer("1,000 containers", &payload);
    assert_eq!(a.outcome, "injected");
    let pod = a.mutated.unwrap();
    assert_eq!(pod["spec"]["containers"].as_array().unwrap().len(), 1001);
    // Every app probe was handed to the agent.
    let proxy = named(&pod, "/spec/containers", "istio-proxy");
    let probers = named(proxy, "/env", "ISTIO_KUBE_APP_PROBERS");
    let probers: Value = serde_json::from_str(probers["value"].as_str().unwrap()).unwrap();
    // readiness (http, named port), liveness (tcp), startup (grpc), preStop (http).
    assert_eq!(probers.as_object().unwrap().len(), 4000);
}

#[test]
fn thousand_init_containers_and_volumes_are_injected() {
    let payload = example(|pod| {
        let inits: Vec<Value> = (0..1000)
            .map(|i| json!({"name": format!("init-{i}"), "image": "busybox", "command": ["true"]}))
            .collect();
        let volumes: Vec<Value> = (0..1000)
            .map(|i| json!({"name": format!("v{i}"), "emptyDir": {}}))
            .collect();
        pod["spec"]["initContainers"] = Value::Array(inits);
        pod["spec"]["volumes"] = Value::Array(volumes);
    });
    assert_eq!(
        answer("1,000 init containers", &payload).outcome,
        "injected"
    );
}

/// `[[[[...]]]]` or `{"a":{"a":...}}` `depth` levels deep.
fn nested(depth: usize, object: bool) -> String {
    let (open, close) = if object { ("{\"a\":", "}") } else { ("[", "]") };
    let mut s = String::with_capacity(depth * (open.len() + close.len()) + 1);
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push('1');
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

/// The example payload with `raw` (JSON text) spliced in as `spec.extra`.
fn with_raw_unknown_field(raw: &str) -> Vec<u8> {
    let base = String::from_utf8(example(|pod| pod["spec"]["extra"] = json!("@@RAW@@"))).unwrap();
    base.replacen("\"@@RAW@@\"", raw, 1).into_bytes()
}

/// A field nested deeper than serde_json reads (a payload the host could not have sent: it
/// builds payloads with serde_json). Objects are read at once, so nested objects are refused
/// as serde_json refuses them, naming why; a list deep in the Pod is only read when
/// accessed, and one nobody reads is copied through as it came, never recursed into.
#[test]
fn deeply_nested_unknown_field_is_refused_or_carried_through_without_recursion() {
    for depth in [129, 1_000, 10_000, 100_000] {
        let what = format!("objects nested {depth} deep");
        let a = answer(&what, &with_raw_unknown_field(&nested(depth, true)));
        assert_eq!(a.outcome, "malformed", "{what}");
        let message = a.message.unwrap_or_default();
        assert!(
            message.contains("nested more than 128 levels"),
            "{what}: {message}"
        );

        let raw = nested(depth, false);
        let payload = with_raw_unknown_field(&raw);
        let what = format!("lists nested {depth} deep");
        assert_eq!(answer(&what, &payload).outcome, "injected", "{what}");
        let response = common::validate_entry(&payload, common::NAMESPACE.as_bytes());
        let text = String::from_utf8(response).unwrap();
        assert!(text.contains(&format!("\"extra\":{raw}")), "{what}");
    }
}

#[test]
fn nesting_below_the_limit_survives_injection() {
    // serde_json allows 128 levels; the Pod object itself sits 3 levels deep in the payload
    // (payload -> request -> object -> spec -> extra).
    let raw = nested(120, true);
    let payload = with_raw_unknown_field(&raw);
    let a = answer("nesting depth 120", &payload);
    assert_eq!(a.outcome, "injected");
    let expected: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(a.mutated.unwrap()["spec"]["extra"], expected);
}

#[test]
fn deeply_nested_json_inside_annotation_values() {
    // Annotations whose values the policy parses as JSON or YAML.
    for key in [
        "proxy.istio.io/overrides",
        "sidecar.istio.io/status",
        "sidecar.istio.io/userVolume",
        "sidecar.istio.io/userVolumeMount",
        "proxy.istio.io/config",
        "sidecar.istio.io/bootstrapOverride",
        "k8s.v1.cni.cncf.io/networks",
        "apm.datadoghq.com/env",
    ] {
        for depth in [200, 10_000] {
            for object in [false, true] {
                let value = if object {
                    format!("{{\"x\":{}}}", nested(depth, true))
                } else {
                    nested(depth, false)
                };
                let payload = example(|pod| {
                    pod["metadata"]["annotations"][key] = json!(value);
                });
                answer(
                    &format!("{key} nested {depth} (object: {object})"),
                    &payload,
                );
            }
        }
    }
}

#[test]
fn yaml_bombs_in_proxy_config() {
    // "Billion laughs" with aliases, and deep flow nesting.
    let mut laughs = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names: Vec<char> = ('b'..='j').collect();
    let mut prev = 'a';
    for n in names {
        laughs.push_str(&format!(
            "{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
        prev = n;
    }
    let deep_flow = format!("proxyMetadata: {}", nested(10_000, false));
    let deep_block: String = (0..5_000)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    for (name, yaml) in [
        ("billion laughs", laughs),
        ("deep flow", deep_flow),
        ("deep block", deep_block),
    ] {
        let payload = example(|pod| {
            pod["metadata"]["annotations"]["proxy.istio.io/config"] = json!(yaml);
        });
        let a = answer(&format!("proxy.istio.io/config {name}"), &payload);
        assert_eq!(a.outcome, "rejected", "{name}");
        assert!(
            a.message.unwrap().contains("proxy.istio.io/config"),
            "{name}: the message names the annotation"
        );
    }
}

#[test]
fn non_utf8_bytes_are_a_clean_rejection() {
    let base = example(|pod| {
        pod["metadata"]["annotations"]["example.com/bytes"] = json!("@@BYTES@@");
    });
    let at = base
        .windows(9)
        .position(|w| w == b"@@BYTES@@")
        .expect("marker");
    for bytes in [
        &b"\xff"[..],
        b"\xc3\x28",               // invalid continuation
        b"\xe2\x82",               // truncated sequence
        b"\xc0\xaf",               // overlong '/'
        b"\xed\xa0\x80",           // UTF-8 encoded surrogate U+D800
        b"\xf4\x90\x80\x80",       // above U+10FFFF
        b"\x00\x01\x1f",           // raw control characters
        b"ok\xfe\xfe\xfe\xfe\xfe", // mixed
    ] {
        let mut payload = base[..at].to_vec();
        payload.extend_from_slice(bytes);
        payload.extend_from_slice(&base[at + 9..]);
        let a = answer(&format!("bytes {bytes:x?} in a string"), &payload);
        assert_eq!(a.outcome, "malformed", "{bytes:x?}");
    }
    // Outside strings, at the start, and a UTF-16 / UTF-8 BOM.
    for payload in [
        [&b"\xff\xfe"[..], &base].concat(),
        [&b"\xef\xbb\xbf"[..], &base].concat(),
        base.iter().flat_map(|b| [*b, 0]).collect::<Vec<u8>>(),
        [&base[..base.len() - 1], &b"\x80}"[..]].concat(),
    ] {
        assert_eq!(answer("non-UTF-8 framing", &payload).outcome, "malformed");
    }
}

#[test]
fn invalid_utf16_surrogate_escapes() {
    for (escape, valid) in [
        (r"\ud800", false),
        (r"\udfff", false),
        (r"\ud800\u0041", false),
        (r"\udc00\ud800", false),
        (r"\ud800\ud800", false),
        (r"\ud83d\ude00", true), // a valid pair: U+1F600
        (r"\u0000", true),
    ] {
        for place in [
            "annotation value",
            "annotation key",
            "label value",
            "container name",
        ] {
            let base = String::from_utf8(example(|pod| match place {
                "annotation value" => {
                    pod["metadata"]["annotations"]["example.com/x"] = json!("@@E@@");
                }
                "annotation key" => {
                    pod["metadata"]["annotations"]["@@E@@"] = json!("x");
                }
                "label value" => pod["metadata"]["labels"]["example.com/x"] = json!("@@E@@"),
                _ => pod["spec"]["containers"][0]["name"] = json!("@@E@@"),
            }))
            .unwrap();
            let payload = base.replacen("@@E@@", escape, 1);
            let a = answer(&format!("{escape} in {place}"), payload.as_bytes());
            if valid {
                assert_ne!(a.outcome, "malformed", "{escape} in {place}");
            } else {
                assert_eq!(a.outcome, "malformed", "{escape} in {place}");
                assert!(
                    a.message
                        .as_deref()
                        .is_some_and(|m| m.contains("surrogate") || m.contains("escape")),
                    "{escape}: the message says what is wrong"
                );
            }
        }
    }
}

/// Istio reads the JSON users write into annotations with Go, which takes a `\uD800` escape
/// that is not half of a pair as U+FFFD. The volume and the mount count as written, not as
/// unreadable (which would drop them), and the Multus list is read and extended.
#[test]
fn unpaired_surrogate_escapes_in_json_annotations_are_read_as_go_reads_them() {
    let payload = example(|pod| {
        let annotations = &mut pod["metadata"]["annotations"];
        annotations["sidecar.istio.io/userVolume"] =
            json!(r#"{"extra":{"hostPath":{"path":"/data/\ud800"}}}"#);
        annotations["sidecar.istio.io/userVolumeMount"] =
            json!(r#"{"extra":{"mountPath":"/mnt/\udc00x"}}"#);
    });
    let a = answer("unpaired surrogates in userVolume", &payload);
    assert_eq!(a.outcome, "injected", "{:?}", a.message);
    let pod = a.mutated.unwrap();
    let volume = named(&pod, "/spec/volumes", "extra");
    assert_eq!(volume["hostPath"]["path"], "/data/\u{fffd}");
    let proxy = named(&pod, "/spec/containers", "istio-proxy");
    let mount = named(proxy, "/volumeMounts", "extra");
    assert_eq!(mount["mountPath"], "/mnt/\u{fffd}x");
}

/// With the Datadog tracer, Istio's template reads `apm.datadoghq.com/env` with Go's
/// `fromJSON`: its entries become the proxy's env, in key order, and an unpaired surrogate
/// escape is U+FFFD rather than a list dropped as unreadable.
#[test]
fn datadog_env_annotation_is_read_as_go_reads_it() {
    let payload = example_payload(
        |pod| {
            pod["metadata"]["annotations"]["apm.datadoghq.com/env"] =
                json!(r#"{"DD_SERVICE":"shop\ud800","DD_ENV":"prod"}"#);
        },
        json!({"values": {"global": {"proxy": {"tracer": "datadog"}}}}),
    );
    let a = answer("datadog env with an unpaired surrogate", &payload);
    assert_eq!(a.outcome, "injected", "{:?}", a.message);
    let pod = a.mutated.unwrap();
    let proxy = named(&pod, "/spec/containers", "istio-proxy");
    assert_eq!(named(proxy, "/env", "DD_SERVICE")["value"], "shop\u{fffd}");
    let names: Vec<&str> = proxy["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .filter(|n| n.starts_with("DD_"))
        .collect();
    assert_eq!(names, ["DD_ENV", "DD_SERVICE"]);
}

/// The example Pod injected, `edit`ed as a later request would carry it, and injected again.
fn reinjected(edit: impl FnOnce(&mut Value)) -> Answer {
    let first = answer("the example", &example(|_| {}));
    assert_eq!(first.outcome, "injected", "{:?}", first.message);
    let mut request = common::examples().remove(0).request;
    request["object"] = first.mutated.unwrap();
    edit(&mut request["object"]);
    answer("re-injection", &common::payload(&request, &json!({})))
}

/// What Istio recorded in a Pod it injected is read back with Go on re-injection too: the
/// user's istio-proxy saved in `proxy.istio.io/overrides` and the agent's probers.
#[test]
fn unpaired_surrogate_escapes_in_what_injection_recorded_are_read_as_go_reads_them() {
    // The user's istio-proxy, as an earlier injection saved it.
    let a = reinjected(|pod| {
        pod["metadata"]["annotations"]["proxy.istio.io/overrides"] = json!(
            r#"{"containers":[{"name":"istio-proxy","env":[{"name":"X","value":"x\ud800"}],"resources":{}}]}"#
        );
    });
    assert_eq!(a.outcome, "injected", "{:?}", a.message);
    let pod = a.mutated.unwrap();
    let proxy = named(&pod, "/spec/containers", "istio-proxy");
    assert_eq!(named(proxy, "/env", "X")["value"], "x\u{fffd}");

    // A prober the agent was handed by an earlier injection, read when a probe the Pod
    // gained since is handed over too.
    let a = reinjected(|pod| {
        let containers = pod["spec"]["containers"].as_array_mut().unwrap();
        let app = containers.iter_mut().find(|c| c["name"] == "app").unwrap();
        app["livenessProbe"] = json!({"tcpSocket": {"port": 8080}});
        let proxy = containers
            .iter_mut()
            .find(|c| c["name"] == "istio-proxy")
            .unwrap();
        let env = proxy["env"].as_array_mut().unwrap();
        let probers = env
            .iter_mut()
            .find(|e| e["name"] == "ISTIO_KUBE_APP_PROBERS")
            .unwrap();
        let value = probers["value"].as_str().unwrap().replacen(
            '{',
            r#"{"/app-health/x\ud800/livez":{"tcpSocket":{"port":80}},"#,
            1,
        );
        probers["value"] = json!(value);
    });
    assert_eq!(a.outcome, "injected", "{:?}", a.message);
    let pod = a.mutated.unwrap();
    let proxy = named(&pod, "/spec/containers", "istio-proxy");
    let probers = named(proxy, "/env", "ISTIO_KUBE_APP_PROBERS")["value"]
        .as_str()
        .unwrap();
    let probers: Value = serde_json::from_str(probers).unwrap();
    assert!(
        probers.get("/app-health/x\u{fffd}/livez").is_some(),
        "the earlier prober is kept, as Go read it: {probers}"
    );
}

/// Every annotation the policy reads, with a 256 KiB value of several shapes.
#[test]
fn huge_values_of_istio_annotations() {
    let keys = [
        "sidecar.istio.io/inject",
        "sidecar.istio.io/status",
        "inject.istio.io/templates",
        "proxy.istio.io/config",
        "proxy.istio.io/overrides",
        "sidecar.istio.io/nativeSidecar",
        "sidecar.istio.io/interceptionMode",
        "sidecar.istio.io/proxyImage",
        "sidecar.istio.io/proxyImageType",
        "sidecar.istio.io/proxyCPU",
        "sidecar.istio.io/proxyMemory",
        "sidecar.istio.io/proxyCPULimit",
        "sidecar.istio.io/proxyMemoryLimit",
        "sidecar.istio.io/logLevel",
        "sidecar.istio.io/componentLogLevel",
        "sidecar.istio.io/agentLogLevel",
        "sidecar.istio.io/bootstrapOverride",
        "sidecar.istio.io/userVolume",
        "sidecar.istio.io/userVolumeMount",
        "sidecar.istio.io/rewriteAppHTTPProbers",
        "sidecar.istio.io/capNetBindService",
        "status.sidecar.istio.io/port",
        "readiness.status.sidecar.istio.io/initialDelaySeconds",
        "readiness.status.sidecar.istio.io/periodSeconds",
        "readiness.status.sidecar.istio.io/failureThreshold",
        "traffic.sidecar.istio.io/includeOutboundIPRanges",
        "traffic.sidecar.istio.io/excludeOutboundIPRanges",
        "traffic.sidecar.istio.io/includeInboundPorts",
        "traffic.sidecar.istio.io/excludeInboundPorts",
        "traffic.sidecar.istio.io/includeOutboundPorts",
        "traffic.sidecar.istio.io/excludeOutboundPorts",
        "traffic.sidecar.istio.io/excludeInterfaces",
        "traffic.sidecar.istio.io/kubevirtInterfaces",
        "istio.io/reroute-virtual-interfaces",
        "prometheus.istio.io/merge-metrics",
        "prometheus.io/scrape",
        "prometheus.io/port",
        "prometheus.io/path",
        "kubectl.kubernetes.io/default-container",
        "kubectl.kubernetes.io/default-logs-container",
        "k8s.v1.cni.cncf.io/networks",
        "istio.io/rev",
        "apm.datadoghq.com/env",
        "ambient.istio.io/redirection",
    ];
    // 256 KiB: the API server's limit for all of a Pod's annotations together.
    let n = 256 * 1024;
    let shapes: Vec<(&str, String)> = vec![
        ("digits", "9".repeat(n)),
        ("letters", "a".repeat(n)),
        ("commas", ",".repeat(n)),
        (
            "port list",
            (0..n / 6)
                .map(|i| (i % 65536).to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        (
            "cidr list",
            (0..n / 16)
                .map(|i| format!("10.{}.{}.0/24", (i / 256) % 256, i % 256))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("exponent", format!("1e{}", "9".repeat(1000))),
        ("control chars", "\u{1}\u{7f}\"\\'".repeat(n / 5)),
        (
            "quantity",
            format!("{}.{}Mi", "1".repeat(n / 2), "5".repeat(n / 2)),
        ),
        // A few keys with huge values; many keys are the quadratic cases below.
        (
            "json object",
            json!({"a": {"emptyDir": {}, "x": "y".repeat(n / 2)}, "b": "z".repeat(n / 2)})
                .to_string(),
        ),
    ];
    for key in keys {
        for (shape, value) in &shapes {
            let payload = example(|pod| {
                pod["metadata"]["annotations"][key] = json!(value);
            });
            let a = answer(&format!("{key} = 256 KiB of {shape}"), &payload);
            if a.outcome == "rejected" {
                let m = a.message.unwrap();
                // prometheus.io/* errors say "invalid prometheus scrape configuration"
                // without the key (src/prometheus.rs `check_port`).
                assert!(
                    m.contains(key)
                        || m.contains("template")
                        || m.contains("annotation")
                        || (key.starts_with("prometheus") && m.contains("prometheus")),
                    "{key} ({shape}): the rejection does not name the annotation: {}",
                    &m[..m.len().min(300)]
                );
            }
        }
    }
}

#[test]
fn huge_label_and_annotation_counts() {
    let payload = example(|pod| {
        let labels: serde_json::Map<String, Value> = (0..50_000)
            .map(|i| (format!("example.com/label-{i}"), json!(format!("v{i}"))))
            .collect();
        let annotations: serde_json::Map<String, Value> = (0..50_000)
            .map(|i| {
                (
                    format!("example.com/annotation-{i}"),
                    json!("x".repeat(100)),
                )
            })
            .collect();
        pod["metadata"]["labels"] = Value::Object(labels);
        pod["metadata"]["annotations"] = Value::Object(annotations);
    });
    assert_eq!(
        answer("100,000 labels and annotations", &payload).outcome,
        "injected"
    );
}

#[test]
fn huge_selectors_and_namespace_settings() {
    // 10,000 selectors, each with a long matchExpressions list.
    let selectors: Vec<Value> = (0..2_000)
        .map(|i| json!({"matchExpressions": [{"key": format!("k{i}"), "operator": "In", "values": (0..20).map(|j| format!("v{j}")).collect::<Vec<_>>()}]}))
        .collect();
    let payload = example_payload(
        |_| {},
        json!({"neverInjectSelector": selectors, "alwaysInjectSelector": selectors}),
    );
    assert_eq!(answer("4,000 selectors", &payload).outcome, "injected");
}

#[test]
fn odd_numbers_in_ports_and_probes() {
    for n in [
        json!(-1),
        json!(0),
        json!(65536),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1.5),
        json!(1e300),
        json!("http"),
        json!("no-such-port"),
        json!(null),
        json!([]),
        json!({}),
    ] {
        let payload = example(|pod| {
            let c = &mut pod["spec"]["containers"][0];
            c["ports"][0]["containerPort"] = n.clone();
            c["readinessProbe"]["httpGet"]["port"] = n.clone();
            c["livenessProbe"]["tcpSocket"]["port"] = n.clone();
            c["startupProbe"]["grpc"]["port"] = n.clone();
            c["startupProbe"]["timeoutSeconds"] = n.clone();
            c["securityContext"]["runAsUser"] = n.clone();
            pod["spec"]["securityContext"]["runAsUser"] = n.clone();
        });
        answer(&format!("port/probe number {n}"), &payload);
    }
    // Number literals JSON allows but no type holds.
    for lit in [
        "1e999",
        "-1e999",
        "123456789012345678901234567890",
        "-0",
        "1E+2",
    ] {
        let base = String::from_utf8(example(|pod| {
            pod["spec"]["containers"][0]["ports"][0]["containerPort"] = json!("@@N@@");
        }))
        .unwrap();
        let payload = base.replacen("\"@@N@@\"", lit, 1);
        answer(&format!("number literal {lit}"), payload.as_bytes());
    }
}

#[test]
fn wrong_types_everywhere_are_rejected_or_ignored() {
    // Replace each field the policy reads with every JSON type in turn.
    let fields: &[&[&str]] = &[
        &["metadata"],
        &["metadata", "labels"],
        &["metadata", "annotations"],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "generateName"],
        &["metadata", "ownerReferences"],
        &["spec"],
        &["spec", "containers"],
        &["spec", "initContainers"],
        &["spec", "volumes"],
        &["spec", "hostNetwork"],
        &["spec", "securityContext"],
        &["spec", "imagePullSecrets"],
        &["spec", "containers", "0"],
        &["spec", "containers", "0", "name"],
        &["spec", "containers", "0", "ports"],
        &["spec", "containers", "0", "env"],
        &["spec", "containers", "0", "readinessProbe"],
        &["spec", "containers", "0", "readinessProbe", "httpGet"],
        &["spec", "containers", "0", "lifecycle"],
        &["spec", "containers", "0", "lifecycle", "preStop"],
        &["spec", "containers", "0", "securityContext"],
        &["spec", "containers", "0", "resources"],
        &["spec", "containers", "0", "volumeMounts"],
    ];
    let values = [
        json!(null),
        json!(true),
        json!(7),
        json!("s"),
        json!([]),
        json!([1, "x", null]),
        json!({}),
        json!({"name": 1}),
    ];
    for path in fields {
        for v in &values {
            let payload = example(|pod| {
                let mut at = pod;
                for (i, seg) in path.iter().enumerate() {
                    let last = i + 1 == path.len();
                    let next = match seg.parse::<usize>() {
                        Ok(idx) => &mut at[idx],
                        Err(_) => &mut at[*seg],
                    };
                    if last {
                        *next = v.clone();
                        return;
                    }
                    at = next;
                }
            });
            answer(&format!("{} = {v}", path.join(".")), &payload);
        }
    }
}

#[test]
fn payload_shapes() {
    for payload in [
        &b""[..],
        b"null",
        b"[]",
        b"{}",
        b"{\"request\": null}",
        b"{\"request\": {}}",
        b"{\"request\": 1}",
        b"{\"request\": {\"operation\": \"CREATE\", \"kind\": {\"kind\": \"Pod\"}}}",
        b"{\"request\": {\"operation\": \"CREATE\", \"kind\": {\"kind\": \"Pod\"}, \"object\": 5}}",
        b"{\"request\": {\"operation\": \"CREATE\", \"kind\": {\"kind\": \"Pod\"}, \"object\": {}}, \"settings\": []}",
        b"{\"request\": {\"operation\": \"CREATE\", \"kind\": {\"kind\": \"Pod\"}, \"object\": {}}, \"settings\": {\"policy\": 1}}",
        b"{\"request\": {}, \"request\": {}}",
        b"{\"request\": {}} trailing",
        b"   {\"request\": {}}   ",
        b"{\"request\": {\"object\": {}}, \"settings\": null}",
    ] {
        answer(
            &format!("payload {:?}", String::from_utf8_lossy(payload)),
            payload,
        );
    }
    // Every strict prefix of a real payload.
    let full = &common::examples()[0].payload;
    for cut in (0..full.len()).step_by(97) {
        let a = answer("truncated payload", &full[..cut]);
        assert_eq!(a.outcome, "malformed");
    }
}

#[test]
fn reinjection_of_a_huge_pod_is_a_no_op() {
    let payload = example(|pod| {
        let template = pod["spec"]["containers"][0].clone();
        pod["spec"]["containers"] = Value::Array(
            (0..300)
                .map(|i| {
                    let mut c = template.clone();
                    c["name"] = json!(format!("c{i}"));
                    c
                })
                .collect(),
        );
        pod["metadata"]["annotations"]["example.com/blob"] = json!("b".repeat(2 * MIB));
    });
    let first = answer("300 containers", &payload).mutated.unwrap();
    let again = common::payload(
        &json!({
            "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE", "namespace": "shop", "object": first,
        }),
        &json!({}),
    );
    let second = answer("300 containers, re-injected", &again);
    assert_eq!(second.outcome, Outcome::Injected.as_str());
    assert!(
        second.mutated.unwrap() == first,
        "re-injection changed the Pod"
    );
}

// Quadratic paths (found by this file). Each of these inputs fits in what the API server
// accepts (annotations up to 256 KiB, a Pod up to about 1.5 MiB), yet the time to answer
// grew with the square of the number of items, so a few hundred KiB took seconds. Each case runs in a child process
// (this test binary, running the ignored test `hostile_child` with `HOSTILE_CASE` set), which
// is killed after three budgets, so a slow case fails fast without burning CPU afterwards.

/// The payload of a quadratic case, by name.
fn quadratic_case(case: &str) -> Vec<u8> {
    match case {
        "user-proxy-env" => example(|pod| {
            let env: Vec<Value> = (0..16_000)
                .map(|i| json!({"name": format!("E{i}"), "value": "x"}))
                .collect();
            let c = json!({"name": "istio-proxy", "image": "auto", "env": env});
            pod["spec"]["containers"].as_array_mut().unwrap().push(c);
        }),
        "user-volume" => {
            let volumes: serde_json::Map<String, Value> =
                (0..21_000).map(|i| (format!("v{i}"), json!({}))).collect();
            let value = Value::Object(volumes).to_string();
            assert!(value.len() <= 256 * 1024, "{}", value.len());
            example(|pod| {
                pod["metadata"]["annotations"]["sidecar.istio.io/userVolume"] = json!(value);
            })
        }
        "deep-proxy-config" => {
            let value = format!("proxyMetadata: {}", nested(32_000, false));
            assert!(value.len() <= 64 * 1024 + 32, "{}", value.len());
            example(|pod| {
                pod["metadata"]["annotations"]["proxy.istio.io/config"] = json!(value);
            })
        }
        "overrides" => {
            let containers: Vec<Value> = (0..14_000)
                .map(|i| json!({"name": format!("c{i}")}))
                .collect();
            let value = json!({ "containers": containers }).to_string();
            assert!(value.len() <= 256 * 1024, "{}", value.len());
            example(|pod| {
                pod["metadata"]["annotations"]["proxy.istio.io/overrides"] = json!(value);
            })
        }
        "status" => {
            let names: Vec<String> = (0..28_000).map(|i| format!("c{i}")).collect();
            let value = json!({ "containers": names }).to_string();
            assert!(value.len() <= 256 * 1024, "{}", value.len());
            example(|pod| {
                pod["metadata"]["annotations"]["sidecar.istio.io/status"] = json!(value);
                pod["spec"]["containers"] = Value::Array(
                    (0..10_000)
                        .map(|i| json!({"name": format!("x{i}"), "image": "i"}))
                        .collect(),
                );
            })
        }
        other => panic!("unknown case {other}"),
    }
}

/// Runs in the child process: answers one quadratic case (and does nothing otherwise).
#[test]
#[ignore = "helper: run by the quadratic_* tests in a child process"]
fn hostile_child() {
    if let Ok(case) = std::env::var("HOSTILE_CASE") {
        answer(&case, &quadratic_case(&case));
    }
}

fn in_child(case: &str, what: &str) {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "hostile_child", "--nocapture"])
        .env("HOSTILE_CASE", case)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the test binary");
    // Building the payload takes a moment in a debug build; it is not part of the budget.
    let deadline = Instant::now() + 3 * budget() + Duration::from_secs(5);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            let lines: Vec<&str> = err
                .lines()
                .filter(|l| l.contains(case) || l.contains("panicked"))
                .collect();
            assert!(status.success(), "{what}: {}", lines.join("\n"));
            eprintln!("{}", lines.join("\n"));
            return;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "{what}: no answer after {:?} (budget {:?}); killed",
                3 * budget(),
                budget()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// src/merge.rs `merge_lists` used to find duplicates with `patch_keys[..i].contains(..)`,
/// scanning every earlier patch item for each patch item: O(n²) for a list of n named
/// items. Reached by a user-declared `istio-proxy` container (Istio's supported way to
/// override the injected proxy), whose env list is merged onto the injected one. Measured
/// natively (release) before the fix: 8,000 env vars 0.7 s, 16,000 3.0 s, 32,000 17 s.
/// Fixed by the merge rewrite in 3a1267b; quadratic again since aba34c6, which pairs patch
/// items with original items by occurrence: for each patch item `seen.iter().filter(..)
/// .count()` and `index_of`'s `.filter(..).nth(occurrence)` scan linearly (src/merge.rs
/// `merge_lists`). 16,000 env vars: 4.0 s of CPU in a debug build.
#[test]
fn quadratic_merge_of_user_istio_proxy_env() {
    in_child("user-proxy-env", "user istio-proxy with 16,000 env vars");
}

/// The same merge, reached from the `sidecar.istio.io/userVolume` annotation: its entries
/// become template volumes merged onto the Pod's. A 256 KiB annotation (the API server's
/// limit for all annotations) holds about 21,000 volumes. Measured natively (release)
/// before the fix: 16,000 entries 0.9 s, 32,000 5.1 s. Fixed in 3a1267b.
#[test]
fn quadratic_merge_of_user_volume_annotation() {
    in_child("user-volume", "userVolume annotation with 21,000 volumes");
}

/// `proxy.istio.io/config` is parsed with serde_yaml (src/proxy_config.rs
/// `parse_annotation`), whose libyaml scanner takes O(depth²) on deep flow nesting before
/// the recursion limit rejects it. Measured natively (release): depth 16,000 (32 KiB of
/// `[`/`]`) 0.36 s, 32,000 (64 KiB) 1.3 s; `{"a":` nesting 32,000 deep (256 KiB) 2.5 s.
/// Fixed in b0db4de (absurd nesting is rejected before parsing); a regression test.
#[test]
fn quadratic_yaml_scan_of_deep_proxy_config() {
    in_child(
        "deep-proxy-config",
        "proxy.istio.io/config nested 32,000 deep",
    );
}

/// src/inject.rs `strip`: each container saved in `proxy.istio.io/overrides` is added to
/// the template input unless `has_container` finds it in the list it is growing: O(n²).
/// Measured natively (debug): 4,000 containers 0.34 s, 8,000 1.05 s. Fixed in b0db4de.
#[test]
fn quadratic_strip_of_overrides_annotation() {
    in_child(
        "overrides",
        "proxy.istio.io/overrides with 14,000 containers",
    );
}

/// src/inject.rs `strip`: on re-injection every Pod container is looked up in the name
/// lists of `sidecar.istio.io/status` (`names.iter().any(..)`): O(containers × names).
/// Measured natively (debug): 8,000 names × 8,000 containers 1.9 s. Fixed in b0db4de.
#[test]
fn quadratic_strip_of_status_annotation() {
    in_child(
        "status",
        "status annotation with 28,000 names and 10,000 containers",
    );
}
