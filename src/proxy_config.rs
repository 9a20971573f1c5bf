//! The effective ProxyConfig of a Pod: `meshConfig.defaultConfig` overlaid with the pod's
//! `proxy.istio.io/config` annotation (YAML or JSON), as istiod's `GetProxyConfigOrDefault`
//! does when no ProxyConfig resources exist.

use serde_json::{Map, Value};

use crate::json_text::Object;

/// Istio's default status port (`ProxyConfig.statusPort`).
pub const DEFAULT_STATUS_PORT: u16 = 15020;

/// Typed view of the ProxyConfig fields injection reads; `raw` keeps everything for
/// `PROXY_CONFIG`.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    pub raw: Map<String, Value>,
}

impl ProxyConfig {
    /// Merges the annotation (if any) onto the mesh default config.
    pub fn effective(
        default_config: &Map<String, Value>,
        annotation: Option<&str>,
    ) -> Result<ProxyConfig, String> {
        let overlay = annotation.map(parse_annotation).transpose()?;
        Ok(Self::with_overlay(default_config, overlay))
    }

    /// `effective` with the annotation already parsed (`parse_annotation`).
    pub fn with_overlay(
        default_config: &Map<String, Value>,
        overlay: Option<Map<String, Value>>,
    ) -> ProxyConfig {
        let mut raw = default_config.clone();
        if let Some(overlay) = overlay {
            merge_into(&mut raw, overlay);
        }
        ProxyConfig { raw }
    }

    pub fn status_port(&self) -> u16 {
        status_port(&self.raw)
    }

    pub fn hold_application_until_proxy_starts(&self) -> bool {
        match self.raw.get("holdApplicationUntilProxyStarts") {
            Some(Value::Bool(b)) => *b,
            // protojson BoolValue written as {"value": true}
            Some(Value::Object(m)) => m.get("value").and_then(Value::as_bool).unwrap_or(false),
            _ => false,
        }
    }

    /// `REDIRECT` unless set (the proto enum default).
    pub fn interception_mode(&self) -> &str {
        self.raw
            .get("interceptionMode")
            .and_then(Value::as_str)
            .unwrap_or("REDIRECT")
    }

    pub fn image_type(&self) -> &str {
        self.raw
            .get("image")
            .and_then(|i| i.get("imageType"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// proxyMetadata entries, sorted by key as Go's template `range` over a map is.
    pub fn proxy_metadata(&self) -> Vec<(&str, String)> {
        let out: Vec<(&str, String)> = match self.raw.get("proxyMetadata") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| (k.as_str(), scalar_to_string(v)))
                .collect(),
            _ => Vec::new(),
        };
        crate::order::sorted_by_key(out, |e| e.0)
    }

    pub fn proxy_metadata_value(&self, key: &str) -> Option<String> {
        self.raw
            .get("proxyMetadata")
            .and_then(|m| m.get(key))
            .map(scalar_to_string)
    }

    /// `PROXY_CONFIG`: the config without the fields equal to Istio's defaults (Istio's
    /// `cleanProxyConfig`) and without proto3 zero values, as compact JSON in the proto's
    /// declaration order (as protojson writes it), followed by a newline.
    pub fn to_env_value(&self) -> String {
        if self.raw.is_empty() {
            return "{}\n".to_string();
        }
        let fields = FIELD_ORDER
            .iter()
            .filter_map(|name| self.raw.get_key_value(*name))
            .chain(
                self.raw
                    .iter()
                    .filter(|(k, _)| !FIELD_ORDER.contains(&k.as_str())),
            )
            .filter(|(k, v)| !is_default_or_zero(k, v));
        // serde_json's maps are sorted, as proto maps (proxyMetadata) are written.
        let mut s = fields
            .fold(Object::new(), |o, (k, v)| o.value(k, v))
            .finish();
        s.push('\n');
        s
    }
}

/// ProxyConfig's fields in declaration order (mesh/v1alpha1/proxy.proto), JSON names.
const FIELD_ORDER: &[&str] = &[
    "configPath",
    "binaryPath",
    "serviceCluster",
    "tracingServiceName",
    "drainDuration",
    "discoveryAddress",
    "discoveryRefreshDelay",
    "zipkinAddress",
    "statsdUdpAddress",
    "envoyMetricsServiceAddress",
    "proxyAdminPort",
    "availabilityZone",
    "controlPlaneAuthPolicy",
    "customConfigFile",
    "statNameLength",
    "concurrency",
    "proxyBootstrapTemplatePath",
    "interceptionMode",
    "tracing",
    "sds",
    "envoyAccessLogService",
    "envoyMetricsService",
    "proxyMetadata",
    "runtimeValues",
    "statusPort",
    "extraStatTags",
    "gatewayTopology",
    "terminationDrainDuration",
    "meshId",
    "readinessProbe",
    "proxyStatsMatcher",
    "holdApplicationUntilProxyStarts",
    "caCertificatesPem",
    "image",
    "privateKeyProvider",
    "proxyHeaders",
    "fileFlushInterval",
    "fileFlushMinSizeKb",
    "statsCompression",
    "connectionSettings",
];

/// Fields Istio drops because they equal `mesh.DefaultProxyConfig()`, and proto3 zero values
/// of plain scalars, which protojson never writes.
fn is_default_or_zero(name: &str, v: &Value) -> bool {
    let is_default = match (name, v) {
        ("configPath", Value::String(s)) => s == "./etc/istio/proxy",
        ("binaryPath", Value::String(s)) => s == "/usr/local/bin/envoy",
        ("serviceCluster", Value::String(s)) => s == "istio-proxy",
        ("drainDuration", Value::String(s)) => s == "45s",
        ("terminationDrainDuration", Value::String(s)) => s == "5s",
        ("discoveryAddress", Value::String(s)) => s == "istiod.istio-system.svc:15012",
        ("controlPlaneAuthPolicy", Value::String(s)) => s == "MUTUAL_TLS" || s == "NONE",
        ("interceptionMode", Value::String(s)) => s == "REDIRECT",
        ("proxyAdminPort", Value::Number(n)) => n.as_u64() == Some(15000),
        ("statNameLength", Value::Number(n)) => n.as_u64() == Some(189),
        ("statusPort", Value::Number(n)) => n.as_u64() == Some(DEFAULT_STATUS_PORT as u64),
        _ => false,
    };
    if is_default {
        return true;
    }
    // Wrapper types (concurrency, holdApplicationUntilProxyStarts, ...) are written even
    // when zero; plain proto3 scalars and enums are not.
    let plain_scalar = !matches!(
        name,
        "concurrency" | "holdApplicationUntilProxyStarts" | "statsCompression"
    );
    match v {
        Value::Null => true,
        Value::String(s) => plain_scalar && s.is_empty(),
        Value::Number(n) => plain_scalar && n.as_f64() == Some(0.0),
        Value::Bool(b) => plain_scalar && !b,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty() && matches!(name, "proxyMetadata" | "runtimeValues"),
    }
}

/// A ProxyConfig's `statusPort`, or Istio's default when unset or zero.
pub fn status_port(config: &Map<String, Value>) -> u16 {
    config
        .get("statusPort")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .unwrap_or(DEFAULT_STATUS_PORT)
}

fn scalar_to_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Parses a `proxy.istio.io/config` value (YAML, of which JSON is a subset) and checks the
/// types of the fields injection relies on.
pub fn parse_annotation(text: &str) -> Result<Map<String, Value>, String> {
    if let Some(map) = parse_simple(text) {
        check_types(&map)?;
        return Ok(map);
    }
    // A ProxyConfig nests a few levels; deep flow nesting only makes the YAML scanner slow
    // (quadratic) before its own recursion limit rejects it.
    if flow_depth(text) > MAX_FLOW_DEPTH {
        return Err(format!("nested deeper than {MAX_FLOW_DEPTH} levels"));
    }
    let value: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let map = match value {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => return Err(format!("expected a ProxyConfig object, got {other}")),
    };
    check_types(&map)?;
    Ok(map)
}

const MAX_FLOW_DEPTH: usize = 64;

/// The usual form of the annotation, `key: scalar` lines (`holdApplicationUntilProxyStarts:
/// true`), read without the YAML parser, which costs far more. Scalars resolve as serde_yaml
/// resolves them; only booleans, decimal integers and plain words are taken. `None` for
/// anything else (nesting, quotes, comments, repeated keys, ...): the parser decides.
fn parse_simple(text: &str) -> Option<Map<String, Value>> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return None;
    }
    let mut map = Map::new();
    for line in body.split('\n') {
        let (key, value) = line.split_once(": ")?;
        if !is_plain_word(key) || yaml_keyword(key) {
            return None;
        }
        if map.insert(key.to_string(), simple_scalar(value)?).is_some() {
            return None;
        }
    }
    Some(map)
}

/// `[A-Za-z][A-Za-z0-9_]*`: a plain YAML scalar that is a string unless it is a keyword.
fn is_plain_word(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Words YAML (or Rust's float parsing, which serde_yaml tries) gives a meaning.
fn yaml_keyword(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "null" | "inf" | "infinity" | "nan"
    )
}

fn simple_scalar(v: &str) -> Option<Value> {
    match v {
        "true" | "True" | "TRUE" => Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => Some(Value::Bool(false)),
        // Decimal integers without a leading zero (YAML reads `010` otherwise).
        _ if (1..=18).contains(&v.len())
            && v.bytes().all(|b| b.is_ascii_digit())
            && (v == "0" || !v.starts_with('0')) =>
        {
            v.parse::<u64>().ok().map(Value::from)
        }
        _ if is_plain_word(v) && !yaml_keyword(v) => Some(Value::String(v.to_string())),
        _ => None,
    }
}

/// The deepest `[`/`{` nesting of the text (quotes are not tracked: over-counting only
/// rejects absurd inputs earlier).
fn flow_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn check_types(map: &Map<String, Value>) -> Result<(), String> {
    if let Some(v) = map.get("statusPort")
        && v.as_u64().is_none_or(|p| p > 65535)
    {
        return Err(format!("statusPort: {v} is not a port"));
    }
    if let Some(v) = map.get("interceptionMode") {
        match v.as_str() {
            Some("REDIRECT" | "TPROXY" | "NONE") => {}
            _ => return Err(format!("interceptionMode: invalid value {v}")),
        }
    }
    if let Some(v) = map.get("holdApplicationUntilProxyStarts")
        && !(v.is_boolean() || v.get("value").is_some_and(Value::is_boolean))
    {
        return Err(format!(
            "holdApplicationUntilProxyStarts: {v} is not a bool"
        ));
    }
    if let Some(v) = map.get("proxyMetadata") {
        let Some(m) = v.as_object() else {
            return Err("proxyMetadata: must be a map of strings".into());
        };
        if let Some((k, _)) = m.iter().find(|(_, v)| v.is_object() || v.is_array()) {
            return Err(format!("proxyMetadata.{k}: must be a string"));
        }
    }
    if let Some(v) = map.get("image")
        && !v.is_object()
    {
        return Err("image: must be an object".into());
    }
    Ok(())
}

/// Proto-merge semantics for the fields we know: maps merge key by key, everything else is
/// replaced.
fn merge_into(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => merge_into(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults() {
        let pc = ProxyConfig::effective(&Map::new(), None).unwrap();
        assert_eq!(pc.status_port(), 15020);
        assert_eq!(pc.interception_mode(), "REDIRECT");
        assert!(!pc.hold_application_until_proxy_starts());
        assert_eq!(pc.to_env_value(), "{}\n");
    }

    #[test]
    fn annotation_overrides_mesh_defaults_and_merges_metadata() {
        let mesh = json!({"proxyMetadata": {"A": "1", "B": "2"}, "statusPort": 15020});
        let pc = ProxyConfig::effective(
            mesh.as_object().unwrap(),
            Some("holdApplicationUntilProxyStarts: true\nproxyMetadata:\n  B: three\n"),
        )
        .unwrap();
        assert!(pc.hold_application_until_proxy_starts());
        assert_eq!(
            pc.proxy_metadata(),
            vec![("A", "1".to_string()), ("B", "three".to_string())]
        );
        assert_eq!(
            pc.to_env_value(),
            "{\"proxyMetadata\":{\"A\":\"1\",\"B\":\"three\"},\"holdApplicationUntilProxyStarts\":true}\n"
        );
    }

    #[test]
    fn json_annotation_and_bad_types() {
        assert!(parse_annotation("{\"interceptionMode\": \"TPROXY\"}").is_ok());
        assert!(parse_annotation("interceptionMode: SOMETHING").is_err());
        assert!(parse_annotation("statusPort: abc").is_err());
        assert!(parse_annotation("[1, 2]").is_err());
        assert!(parse_annotation("a: [").is_err());
        assert!(parse_annotation("").unwrap().is_empty());
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(
            parse_annotation(&deep)
                .unwrap_err()
                .contains("nested deeper")
        );
    }

    #[test]
    fn simple_annotations_read_as_the_yaml_parser_reads_them() {
        for text in [
            "holdApplicationUntilProxyStarts: true\n",
            "holdApplicationUntilProxyStarts: True",
            "interceptionMode: TPROXY\nstatusPort: 15021\n",
            "concurrency: 0\nimage_type: distroless\nmeshId: FALSE",
        ] {
            let yaml: Value = serde_yaml::from_str(text).unwrap();
            assert_eq!(
                parse_simple(text).map(Value::Object),
                Some(yaml),
                "{text:?}"
            );
        }
        // Left to the parser: keywords, leading zeros, quotes, comments, nesting, repeats.
        for text in [
            "",
            "\n",
            "a: null",
            "a: ~",
            "a: nan",
            "a: .inf",
            "a: 010",
            "a: 1.5",
            "a: -1",
            "a: \"x\"",
            "a: x # c",
            "a:  x",
            "a: x ",
            "true: x",
            "a:\n  b: c",
            "a: 1\na: 2",
            "---\na: 1",
            "a: 1\r\n",
            "a: 1234567890123456789",
        ] {
            assert_eq!(parse_simple(text), None, "{text:?}");
        }
    }
}
