//! Probe rewriting (Istio's `app_probe.go`): with mTLS the kubelet cannot reach the app's
//! HTTP/TCP/gRPC probes, so they are pointed at the agent's status port under
//! `/app-health/<container>/...`, and the originals are handed to the agent in
//! `ISTIO_KUBE_APP_PROBERS`.

use std::collections::BTreeMap;

use crate::annotations::{REWRITE_PROBERS, STATUS_PORT, parse_go_bool};
use crate::json::{Map, Value, object};
use crate::json_text::{Object, plain, push_string, write_ordered};
use crate::pod;

const PROXY: &str = "istio-proxy";
pub const ENV: &str = "ISTIO_KUBE_APP_PROBERS";

/// Istio's `ShouldRewriteAppHTTPProbers`: a parseable annotation wins over the setting.
pub fn enabled(annotations: Option<&Map>, setting: bool) -> bool {
    annotations
        .and_then(|a| a.get(REWRITE_PROBERS))
        .and_then(Value::as_str)
        .and_then(parse_go_bool)
        .unwrap_or(setting)
}

/// The handlers the agent takes over: field, whether it is a probe (else a lifecycle hook),
/// and the agent URL around the container name (`status.FormatProberURL`).
const HANDLERS: [(&str, bool, &str, &str); 5] = [
    ("readinessProbe", true, "/app-health/", "/readyz"),
    ("livenessProbe", true, "/app-health/", "/livez"),
    ("startupProbe", true, "/app-health/", "/startupz"),
    ("preStop", false, "/app-lifecycle/", "/prestopz"),
    ("postStart", false, "/app-lifecycle/", "/poststartz"),
];

/// A handler's agent URL; written only for handlers that are there.
fn url(container: &str, prefix: &str, suffix: &str) -> String {
    let mut url = String::with_capacity(prefix.len() + container.len() + suffix.len());
    url.push_str(prefix);
    url.push_str(container);
    url.push_str(suffix);
    url
}

/// `ISTIO_KUBE_APP_PROBERS` for the Pod: original probes keyed by their new URL, sorted.
/// Named ports are resolved; probes already aimed at `target_port` and unresolvable named
/// ports are left out. `None` when there is nothing to hand over.
/// `target_port` is the mesh status port (Istio's check); a probe aimed at the pod's own
/// status port (the `status.sidecar.istio.io/port` annotation, where `rewrite` points
/// probes) is also left out, so that a re-injection never hands the agent a probe of itself.
pub fn dump(pod_value: &Value, target_port: u16) -> Option<String> {
    take_over(&mut pod_value.clone(), target_port)
}

/// Probe rewriting in one pass over the containers: `rewrite`, returning what `dump` gives
/// for the Pod before it (each handler is read before it is rewritten).
pub fn take_over(pod_value: &mut Value, mesh_status_port: u16) -> Option<String> {
    let port = rewrite_port(pod_value, mesh_status_port);
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    // Init containers first: of two containers with one name, the later one's probers win.
    for field in ["initContainers", "containers"] {
        let Some(list) = pod::containers_mut(pod_value, field) else {
            continue;
        };
        for c in list.iter_mut() {
            let name = pod::name_of(c).to_string();
            if name == PROXY {
                continue;
            }
            for (field, is_probe, prefix, suffix) in HANDLERS {
                let handler = if is_probe {
                    c.get(field)
                } else {
                    c.get("lifecycle").and_then(|l| l.get(field))
                };
                let Some(handler) = handler else {
                    continue;
                };
                let url = url(&name, prefix, suffix);
                let text = prober_text(
                    handler,
                    is_probe,
                    &|port_name| named_port(c, port_name),
                    mesh_status_port,
                    port,
                );
                let handler = if is_probe {
                    c.get_mut(field)
                } else {
                    c.get_mut("lifecycle").and_then(|l| l.get_mut(field))
                };
                if let Some(h) = handler.and_then(Value::as_object_mut) {
                    convert(h, &url, port, is_probe);
                }
                if let Some(text) = text {
                    out.insert(url, text);
                }
            }
        }
    }
    if out.is_empty() {
        return None;
    }
    let text = String::with_capacity(out.iter().map(|(u, p)| u.len() + p.len() + 4).sum());
    let object = out
        .iter()
        .fold(Object::append_to(text), |o, (url, prober)| {
            o.raw(url, prober)
        });
    Some(object.finish())
}

/// A container's port number by name, for probes that name their port.
fn named_port(container: &Value, name: &str) -> Option<i64> {
    if name.is_empty() {
        return None;
    }
    container
        .get("ports")
        .and_then(Value::as_array)?
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
        .map(|p| p.get("containerPort").and_then(Value::as_i64).unwrap_or(0))
}

/// `ISTIO_KUBE_APP_PROBERS` text: keys sorted (a Go map), each prober in Go's field order.
pub fn probers_text(probers: &BTreeMap<String, serde_json::Value>) -> String {
    let mut out = String::with_capacity(128 * probers.len());
    out.push('{');
    for (i, (url, p)) in probers.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_string(&mut out, url);
        out.push(':');
        write_prober(&mut out, p);
    }
    out.push('}');
    out
}

/// A `Prober` as Go writes it: the action (`HTTPGetAction`: path, port, host, scheme,
/// httpHeaders; `TCPSocketAction`: port, host; `GRPCAction`: port, service), then the timeout.
fn write_prober(out: &mut String, p: &serde_json::Value) {
    write_ordered(
        out,
        p,
        &["httpGet", "tcpSocket", "grpc", "timeoutSeconds"],
        &|k, v, out| {
            match k {
                "httpGet" => write_ordered(
                    out,
                    v,
                    &["path", "port", "host", "scheme", "httpHeaders"],
                    &plain,
                ),
                "tcpSocket" => write_ordered(out, v, &["port", "host"], &plain),
                // GRPCAction.service is a pointer without omitempty: null is written.
                "grpc" => {
                    let null = serde_json::Value::Null;
                    let text = Object::append_to(std::mem::take(out))
                        .value("port", v.get("port").unwrap_or(&null))
                        .value("service", v.get("service").unwrap_or(&null))
                        .finish();
                    *out = text;
                }
                _ => return false,
            }
            true
        },
    )
}

/// A probe or lifecycle handler as the agent's `Prober`, as Go writes it: the action
/// (`HTTPGetAction`: path, port, host, scheme, httpHeaders; `TCPSocketAction`: port, host;
/// `GRPCAction`: port, service), then the probe's timeout. Written straight from the
/// handler. `None` when the handler is not handed over: no action the agent runs, a named
/// port the container does not have, or a port already aimed at the agent (`target_port`,
/// the mesh status port, before named ports are resolved; `own_port` after).
fn prober_text(
    handler: &Value,
    is_probe: bool,
    port_named: &dyn Fn(&str) -> Option<i64>,
    target_port: u16,
    own_port: i64,
) -> Option<String> {
    let (action, a) = if let Some(h) = handler.get("httpGet").filter(|v| v.is_object()) {
        ("httpGet", h)
    } else if let Some(t) = handler.get("tcpSocket").filter(|v| v.is_object()) {
        ("tcpSocket", t)
    } else if is_probe && let Some(g) = handler.get("grpc").filter(|v| v.is_object()) {
        ("grpc", g)
    } else {
        return None;
    };
    let mut out = String::with_capacity(96);
    out.push_str("{\"");
    out.push_str(action);
    out.push_str("\":");
    // The text is Go's: what is not a string or a number is written with sorted keys, as
    // serde_json's values are.
    let serde = |v: Option<&Value>| v.map_or(serde_json::Value::Null, Value::to_serde);
    // A missing port is Go's zero.
    let port = a
        .get("port")
        .map_or(serde_json::Value::from(0), Value::to_serde);
    if action == "grpc" {
        // Ports are not resolved; GRPCAction.service is a pointer without omitempty.
        let grpc = Object::append_to(out)
            .value("port", &port)
            .value("service", &serde(a.get("service")));
        out = grpc.finish();
    } else {
        let port = match port {
            serde_json::Value::String(name) => serde_json::Value::from(port_named(&name)?),
            serde_json::Value::Number(n) if n.as_i64() == Some(target_port as i64) => {
                return None;
            }
            other => other,
        };
        if port.as_i64() == Some(own_port) {
            return None;
        }
        let non_empty = |k: &str| a.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let mut o = Object::append_to(out);
        if action == "httpGet"
            && let Some(path) = non_empty("path")
        {
            o = o.string("path", path);
        }
        // Go's omitempty drops what serializes empty.
        if !port.is_null() && !port.as_array().is_some_and(Vec::is_empty) {
            o = o.value("port", &port);
        }
        if let Some(host) = non_empty("host") {
            o = o.string("host", host);
        }
        if action == "httpGet" {
            if let Some(scheme) = non_empty("scheme") {
                o = o.string("scheme", scheme);
            }
            if let Some(headers) = a
                .get("httpHeaders")
                .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            {
                o = o.value("httpHeaders", &serde(Some(headers)));
            }
        }
        out = o.finish();
    }
    if is_probe
        && let Some(t) = handler.get("timeoutSeconds").and_then(Value::as_i64)
        && t != 0
    {
        out.push_str(",\"timeoutSeconds\":");
        out.push_str(&t.to_string());
    }
    out.push('}');
    Some(out)
}

/// The port `rewrite` points probes at: the pod's status-port annotation (even if invalid,
/// as Istio's `Atoi` gives 0), else the mesh default.
fn rewrite_port(pod_value: &Value, mesh_status_port: u16) -> i64 {
    match pod::metadata_map(pod_value, "annotations")
        .and_then(|a| a.get(STATUS_PORT))
        .and_then(Value::as_str)
    {
        Some(v) => v.parse::<i64>().unwrap_or(0),
        None => mesh_status_port as i64,
    }
}

/// Rewrites every container's probes and lifecycle handlers (except the proxy's) to the
/// agent. The status port is the pod annotation's (even if invalid, as Istio's `Atoi`
/// gives 0) or the mesh default.
pub fn rewrite(pod_value: &mut Value, mesh_status_port: u16) {
    take_over(pod_value, mesh_status_port);
}

fn convert(handler: &mut Map, url: &str, port: i64, is_probe: bool) {
    if let Some(Value::Object(http)) = handler.get_mut("httpGet") {
        http.insert("path", url.to_owned().into());
        http.insert("port", port.into());
        if let Some(scheme) = http.get_mut("scheme")
            && scheme.as_str() == Some("HTTPS")
        {
            *scheme = "HTTP".into();
        }
        return;
    }
    let replaced = if handler.get("tcpSocket").is_some_and(Value::is_object) {
        "tcpSocket"
    } else if is_probe && handler.get("grpc").is_some_and(Value::is_object) {
        "grpc"
    } else {
        return;
    };
    handler.remove(replaced);
    handler.insert(
        "httpGet",
        object([("path", url.to_owned().into()), ("port", port.into())]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(v: &serde_json::Value) -> Value<'static> {
        Value::from_serde(v)
    }

    /// The former implementation, through an intermediate `Prober` value: `prober_text`
    /// must write what this gives.
    mod reference {
        use serde_json::{Map, Value, json};

        /// A probe or lifecycle handler as the agent's `Prober`: one action plus the timeout.
        pub(super) fn internal_prober(handler: &Value, is_probe: bool) -> Option<Value> {
            let mut p = Map::new();
            if let Some(h) = handler.get("httpGet").filter(|v| v.is_object()) {
                p.insert("httpGet".into(), http_get_action(h));
            } else if let Some(t) = handler.get("tcpSocket").filter(|v| v.is_object()) {
                p.insert("tcpSocket".into(), tcp_socket_action(t));
            } else if is_probe && let Some(g) = handler.get("grpc").filter(|v| v.is_object()) {
                let mut a = Map::new();
                a.insert("port".into(), g.get("port").cloned().unwrap_or(json!(0)));
                a.insert(
                    "service".into(),
                    g.get("service").cloned().unwrap_or(Value::Null),
                );
                p.insert("grpc".into(), Value::Object(a));
            } else {
                return None;
            }
            if is_probe
                && let Some(t) = handler.get("timeoutSeconds").and_then(Value::as_i64)
                && t != 0
            {
                p.insert("timeoutSeconds".into(), t.into());
            }
            Some(Value::Object(p))
        }

        /// Go's field order and omitempty rules for `HTTPGetAction`.
        fn http_get_action(h: &Value) -> Value {
            let mut a = Map::new();
            if let Some(v) = h
                .get("path")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                a.insert("path".into(), v.into());
            }
            a.insert("port".into(), h.get("port").cloned().unwrap_or(json!(0)));
            if let Some(v) = h
                .get("host")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                a.insert("host".into(), v.into());
            }
            if let Some(v) = h
                .get("scheme")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                a.insert("scheme".into(), v.into());
            }
            if let Some(v) = h
                .get("httpHeaders")
                .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            {
                a.insert("httpHeaders".into(), v.clone());
            }
            Value::Object(a)
        }

        fn tcp_socket_action(t: &Value) -> Value {
            let mut a = Map::new();
            a.insert("port".into(), t.get("port").cloned().unwrap_or(json!(0)));
            if let Some(v) = t
                .get("host")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                a.insert("host".into(), v.into());
            }
            Value::Object(a)
        }

        pub(super) fn aims_at(prober: &Value, port: i64) -> bool {
            ["httpGet", "tcpSocket"].iter().any(|a| {
                prober
                    .get(a)
                    .and_then(|h| h.get("port"))
                    .and_then(Value::as_i64)
                    == Some(port)
            })
        }

        pub(super) fn resolve_port(
            mut prober: Value,
            port_named: &dyn Fn(&str) -> Option<i64>,
            target_port: u16,
        ) -> Option<Value> {
            if prober.get("grpc").is_some() {
                return Some(prober);
            }
            let action = if prober.get("httpGet").is_some() {
                "httpGet"
            } else {
                "tcpSocket"
            };
            let port = prober.get_mut(action)?.get_mut("port")?;
            match port {
                Value::String(name) => {
                    let number = port_named(name)?;
                    *port = number.into();
                }
                Value::Number(n) if n.as_i64() == Some(target_port as i64) => {
                    return None;
                }
                _ => {}
            }
            Some(prober)
        }
    }

    fn pod_with(containers: serde_json::Value) -> Value<'static> {
        value(&json!({"metadata": {}, "spec": {"containers": containers}}))
    }

    #[test]
    fn http_tcp_grpc_and_lifecycle_are_rewritten() {
        let mut p = pod_with(json!([{
            "name": "app",
            "ports": [{"name": "http", "containerPort": 80}],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http", "scheme": "HTTPS"}, "timeoutSeconds": 5, "periodSeconds": 2},
            "livenessProbe": {"tcpSocket": {"port": 81}},
            "startupProbe": {"grpc": {"port": 82}},
            "lifecycle": {"preStop": {"httpGet": {"port": 83}}, "postStart": {"exec": {"command": ["x"]}}}
        }, {"name": "istio-proxy", "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}}}]));
        let dumped = dump(&p, 15020).unwrap();
        assert_eq!(
            dumped,
            r#"{"/app-health/app/livez":{"tcpSocket":{"port":81}},"/app-health/app/readyz":{"httpGet":{"path":"/ready","port":80,"scheme":"HTTPS"},"timeoutSeconds":5},"/app-health/app/startupz":{"grpc":{"port":82,"service":null}},"/app-lifecycle/app/prestopz":{"httpGet":{"port":83}}}"#
        );
        rewrite(&mut p, 15020);
        let p = p.to_serde();
        let c = &p["spec"]["containers"][0];
        assert_eq!(
            c["readinessProbe"],
            json!({"httpGet": {"path": "/app-health/app/readyz", "port": 15020, "scheme": "HTTP"}, "timeoutSeconds": 5, "periodSeconds": 2})
        );
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"path": "/app-health/app/livez", "port": 15020}})
        );
        assert_eq!(
            c["startupProbe"],
            json!({"httpGet": {"path": "/app-health/app/startupz", "port": 15020}})
        );
        assert_eq!(
            c["lifecycle"]["preStop"],
            json!({"httpGet": {"path": "/app-lifecycle/app/prestopz", "port": 15020}})
        );
        assert_eq!(
            c["lifecycle"]["postStart"],
            json!({"exec": {"command": ["x"]}})
        );
        // The proxy's own probe is untouched.
        assert_eq!(
            p["spec"]["containers"][1]["readinessProbe"]["httpGet"]["port"],
            15021
        );
        // Rewritten probes point at the status port, so a second dump has nothing left.
        assert_eq!(dump(&value(&p), 15020), None);
    }

    #[test]
    fn unresolvable_named_ports_and_exec_are_skipped() {
        let p = pod_with(
            json!([{"name": "a", "livenessProbe": {"httpGet": {"port": "nope"}}, "readinessProbe": {"exec": {"command": ["true"]}}}]),
        );
        assert_eq!(dump(&p, 15020), None);
    }

    #[test]
    fn status_port_annotation_is_the_target() {
        let mut p = value(
            &json!({"metadata": {"annotations": {STATUS_PORT: "15999"}}, "spec": {"containers": [{"name": "a", "livenessProbe": {"httpGet": {"port": 8080}}}]}}),
        );
        rewrite(&mut p, 15020);
        assert_eq!(
            p.to_serde()["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"],
            15999
        );
    }

    #[test]
    fn annotation_overrides_setting() {
        let a = value(&json!({REWRITE_PROBERS: "false"}));
        assert!(!enabled(a.as_object(), true));
        let a = value(&json!({REWRITE_PROBERS: "maybe"}));
        assert!(enabled(a.as_object(), true));
        assert!(!enabled(None, false));
    }

    #[test]
    fn prober_text_writes_what_the_prober_value_gave() {
        use reference::*;
        let ports =
            json!([{"name": "http", "containerPort": 8080}, {"name": "", "containerPort": 1}]);
        let port_named = |name: &str| {
            if name.is_empty() {
                return None;
            }
            ports
                .as_array()?
                .iter()
                .find(|p| p.get("name").and_then(serde_json::Value::as_str) == Some(name))
                .map(|p| {
                    p.get("containerPort")
                        .and_then(serde_json::Value::as_i64)
                        .unwrap_or(0)
                })
        };
        let handlers = [
            json!({"httpGet": {"path": "/ready", "port": "http", "scheme": "HTTPS", "host": "h", "httpHeaders": [{"name": "a", "value": "b"}]}, "timeoutSeconds": 5}),
            json!({"httpGet": {"path": "", "port": 80, "scheme": "", "host": "", "httpHeaders": []}, "timeoutSeconds": 0}),
            json!({"httpGet": {"port": null}}),
            json!({"httpGet": {"port": []}}),
            json!({"httpGet": {"port": [1]}, "timeoutSeconds": "3"}),
            json!({"httpGet": {}}),
            json!({"httpGet": {"port": "nope"}}),
            json!({"httpGet": {"port": ""}}),
            json!({"httpGet": {"port": 15020}}),
            json!({"httpGet": {"port": 15021}}),
            json!({"httpGet": {"port": 8080.0}}),
            json!({"httpGet": {"port": {"a": 1}, "path": 3}}),
            json!({"httpGet": "x", "tcpSocket": {"port": 81, "host": "h"}}),
            json!({"tcpSocket": {"port": "http", "extra": 1}, "timeoutSeconds": 2}),
            json!({"tcpSocket": {}}),
            json!({"grpc": {"port": 82}}),
            json!({"grpc": {"port": 15020, "service": "s"}, "timeoutSeconds": 1}),
            json!({"grpc": {"service": null}}),
            json!({"exec": {"command": ["x"]}}),
            json!({}),
            json!(null),
        ];
        for h in &handlers {
            for is_probe in [true, false] {
                for (target, own) in [(15020, 15020), (15020, 15021), (15020, 8080)] {
                    let expected = internal_prober(h, is_probe)
                        .and_then(|p| resolve_port(p, &port_named, target))
                        .filter(|p| !aims_at(p, own))
                        .map(|p| {
                            let mut s = String::new();
                            write_prober(&mut s, &p);
                            s
                        });
                    assert_eq!(
                        prober_text(&value(h), is_probe, &port_named, target, own),
                        expected,
                        "{h} probe={is_probe} target={target} own={own}"
                    );
                }
            }
        }
    }
}
