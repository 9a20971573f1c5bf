//! Pod annotations Istio validates before injecting (Istio's `validate.go`), and the parsers
//! of the value formats they use. A bad value rejects the Pod, but only when the Pod would
//! be injected: the check runs in stage C.

use crate::json::Map;
use crate::quantity::Quantity;

pub const INJECT: &str = "sidecar.istio.io/inject";
pub const STATUS: &str = "sidecar.istio.io/status";
pub const TEMPLATES: &str = "inject.istio.io/templates";
pub const PROXY_CONFIG: &str = "proxy.istio.io/config";
pub const PROXY_OVERRIDES: &str = "proxy.istio.io/overrides";
pub const NATIVE_SIDECAR: &str = "sidecar.istio.io/nativeSidecar";
pub const INTERCEPTION_MODE: &str = "sidecar.istio.io/interceptionMode";
pub const PROXY_IMAGE: &str = "sidecar.istio.io/proxyImage";
pub const PROXY_IMAGE_TYPE: &str = "sidecar.istio.io/proxyImageType";
pub const PROXY_CPU: &str = "sidecar.istio.io/proxyCPU";
pub const PROXY_MEMORY: &str = "sidecar.istio.io/proxyMemory";
pub const PROXY_CPU_LIMIT: &str = "sidecar.istio.io/proxyCPULimit";
pub const PROXY_MEMORY_LIMIT: &str = "sidecar.istio.io/proxyMemoryLimit";
pub const LOG_LEVEL: &str = "sidecar.istio.io/logLevel";
pub const COMPONENT_LOG_LEVEL: &str = "sidecar.istio.io/componentLogLevel";
pub const AGENT_LOG_LEVEL: &str = "sidecar.istio.io/agentLogLevel";
pub const BOOTSTRAP_OVERRIDE: &str = "sidecar.istio.io/bootstrapOverride";
pub const USER_VOLUME: &str = "sidecar.istio.io/userVolume";
pub const USER_VOLUME_MOUNT: &str = "sidecar.istio.io/userVolumeMount";
pub const REWRITE_PROBERS: &str = "sidecar.istio.io/rewriteAppHTTPProbers";
pub const CAP_NET_BIND_SERVICE: &str = "sidecar.istio.io/capNetBindService";
pub const STATUS_PORT: &str = "status.sidecar.istio.io/port";
pub const READINESS_INITIAL_DELAY: &str = "readiness.status.sidecar.istio.io/initialDelaySeconds";
pub const READINESS_PERIOD: &str = "readiness.status.sidecar.istio.io/periodSeconds";
pub const READINESS_FAILURE_THRESHOLD: &str = "readiness.status.sidecar.istio.io/failureThreshold";
pub const INCLUDE_OUTBOUND_IP_RANGES: &str = "traffic.sidecar.istio.io/includeOutboundIPRanges";
pub const EXCLUDE_OUTBOUND_IP_RANGES: &str = "traffic.sidecar.istio.io/excludeOutboundIPRanges";
pub const INCLUDE_INBOUND_PORTS: &str = "traffic.sidecar.istio.io/includeInboundPorts";
pub const EXCLUDE_INBOUND_PORTS: &str = "traffic.sidecar.istio.io/excludeInboundPorts";
pub const INCLUDE_OUTBOUND_PORTS: &str = "traffic.sidecar.istio.io/includeOutboundPorts";
pub const EXCLUDE_OUTBOUND_PORTS: &str = "traffic.sidecar.istio.io/excludeOutboundPorts";
pub const EXCLUDE_INTERFACES: &str = "traffic.sidecar.istio.io/excludeInterfaces";
pub const KUBEVIRT_INTERFACES: &str = "traffic.sidecar.istio.io/kubevirtInterfaces";
pub const REROUTE_VIRTUAL_INTERFACES: &str = "istio.io/reroute-virtual-interfaces";
pub const PROMETHEUS_MERGE_METRICS: &str = "prometheus.istio.io/merge-metrics";
pub const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";
pub const DEFAULT_LOGS_CONTAINER: &str = "kubectl.kubernetes.io/default-logs-container";
pub const REVISION: &str = "istio.io/rev";

type Check = fn(&str) -> Result<(), String>;

/// The annotations Istio validates, sorted by name so that messages are stable.
const VALIDATED: &[(&str, Check)] = &[
    (REROUTE_VIRTUAL_INTERFACES, validate_interfaces),
    (PROMETHEUS_MERGE_METRICS, validate_bool),
    (PROXY_CONFIG, validate_proxy_config),
    (READINESS_FAILURE_THRESHOLD, validate_u32),
    (READINESS_INITIAL_DELAY, validate_u32),
    (READINESS_PERIOD, validate_u32),
    (INTERCEPTION_MODE, validate_interception_mode),
    (PROXY_CPU, validate_quantity),
    (PROXY_CPU_LIMIT, validate_quantity),
    (PROXY_MEMORY, validate_quantity),
    (PROXY_MEMORY_LIMIT, validate_quantity),
    (STATUS_PORT, validate_status_port),
    (EXCLUDE_INBOUND_PORTS, validate_exclude_inbound_ports),
    (EXCLUDE_INTERFACES, validate_interfaces),
    (EXCLUDE_OUTBOUND_IP_RANGES, validate_exclude_ip_ranges),
    (EXCLUDE_OUTBOUND_PORTS, validate_exclude_outbound_ports),
    (INCLUDE_INBOUND_PORTS, validate_include_inbound_ports),
    (INCLUDE_OUTBOUND_IP_RANGES, validate_include_ip_ranges),
    (KUBEVIRT_INTERFACES, validate_interfaces),
];

/// Checks every validated annotation present; the error lists each bad one with its value,
/// in Istio's wording: `invalid value 'X' for annotation 'Y': reason`.
pub fn validate(annotations: Option<&Map>) -> Result<(), String> {
    validate_and_parse_proxy_config(annotations).map(|_| ())
}

/// `validate`, also returning the parsed `proxy.istio.io/config` (if present), so that
/// injection does not parse it a second time.
pub fn validate_and_parse_proxy_config(
    annotations: Option<&Map>,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, String> {
    let Some(annotations) = annotations else {
        return Ok(None);
    };
    let mut errors: Vec<String> = Vec::new();
    let mut proxy_config = None;
    for (name, check) in VALIDATED {
        let Some(value) = annotations.get(name) else {
            continue;
        };
        let value = value.as_str().unwrap_or_default();
        let checked = if *name == PROXY_CONFIG {
            crate::proxy_config::parse_annotation(value)
                .map(|parsed| proxy_config = Some(parsed))
                .map_err(proxy_config_error)
        } else {
            check(value)
        };
        if let Err(e) = checked {
            errors.push(format!(
                "invalid value '{value}' for annotation '{name}': {e}"
            ));
        }
    }
    if errors.is_empty() {
        Ok(proxy_config)
    } else {
        Err(errors.join("; "))
    }
}

fn validate_interception_mode(mode: &str) -> Result<(), String> {
    match mode {
        "REDIRECT" | "TPROXY" | "NONE" => Ok(()),
        _ => Err(format!(
            "interceptionMode invalid, use REDIRECT,TPROXY,NONE: {mode}"
        )),
    }
}

fn validate_status_port(port: &str) -> Result<(), String> {
    parse_port(port)
        .map(|_| ())
        .map_err(|e| format!("excludeInboundPorts invalid: {e}"))
}

fn validate_u32(value: &str) -> Result<(), String> {
    parse_go_uint(value, u32::MAX as u64)
        .map(|_| ())
        .ok_or_else(|| format!("strconv.ParseUint: parsing {value:?}: invalid syntax"))
}

fn validate_bool(value: &str) -> Result<(), String> {
    parse_go_bool(value)
        .map(|_| ())
        .ok_or_else(|| format!("strconv.ParseBool: parsing {value:?}: invalid syntax"))
}

fn validate_quantity(value: &str) -> Result<(), String> {
    if value.chars().any(char::is_control) {
        return Err("value contains control characters".into());
    }
    Quantity::parse(value)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn validate_proxy_config(value: &str) -> Result<(), String> {
    crate::proxy_config::parse_annotation(value)
        .map(|_| ())
        .map_err(proxy_config_error)
}

fn proxy_config_error(e: String) -> String {
    format!("failed to convert to apply proxy config: {e}")
}

fn validate_include_ip_ranges(value: &str) -> Result<(), String> {
    if value == "*" {
        return Ok(());
    }
    validate_cidr_list(value).map_err(|e| format!("includeIPRanges invalid: {e}"))
}

fn validate_exclude_ip_ranges(value: &str) -> Result<(), String> {
    validate_cidr_list(value).map_err(|e| format!("excludeIPRanges invalid: {e}"))
}

fn validate_include_inbound_ports(value: &str) -> Result<(), String> {
    if value == "*" {
        return Ok(());
    }
    parse_port_list(value)
        .map(|_| ())
        .map_err(|e| format!("includeInboundPorts invalid: {e}"))
}

fn validate_exclude_inbound_ports(value: &str) -> Result<(), String> {
    parse_port_list(value)
        .map(|_| ())
        .map_err(|e| format!("excludeInboundPorts invalid: {e}"))
}

fn validate_exclude_outbound_ports(value: &str) -> Result<(), String> {
    parse_port_list(value)
        .map(|_| ())
        .map_err(|e| format!("excludeOutboundPorts invalid: {e}"))
}

/// Interface name lists (`-c`, `-k`): comma separated, each 1 to 15 characters starting
/// with a letter, then letters, digits, `_`, `.` or `-`.
fn validate_interfaces(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    for iface in value.split(',') {
        let iface = iface.trim();
        if iface.is_empty() {
            return Err("empty interface name".into());
        }
        if iface.len() > 15 {
            return Err(format!("interface name {iface:?} too long (max 15 chars)"));
        }
        let mut chars = iface.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
            return Err(format!(
                "interface name {iface:?} contains invalid characters"
            ));
        }
    }
    Ok(())
}

/// A comma-separated CIDR list as Go's `netip.ParsePrefix` accepts each entry; empty is valid.
pub fn validate_cidr_list(cidrs: &str) -> Result<(), String> {
    if cidrs.is_empty() {
        return Ok(());
    }
    for cidr in cidrs.split(',') {
        if !is_prefix(cidr) {
            return Err(format!("failed parsing cidr '{cidr}'"));
        }
    }
    Ok(())
}

fn is_prefix(s: &str) -> bool {
    let Some((addr, bits)) = s.split_once('/') else {
        return false;
    };
    // Go rejects zones in prefixes, signs, and leading zeros in the length.
    if addr.contains('%') || bits.is_empty() || (bits.len() > 1 && bits.starts_with('0')) {
        return false;
    }
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    if !bits
        .to_string()
        .eq(s.split_once('/').map_or("", |(_, b)| b))
    {
        return false;
    }
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// Parses one port as Go's `strconv.ParseUint(strings.TrimSpace(p), 10, 16)` does.
pub fn parse_port(port: &str) -> Result<u16, String> {
    parse_go_uint(port.trim(), u16::MAX as u64)
        .map(|p| p as u16)
        .ok_or_else(|| format!("failed parsing port '{port}'"))
}

/// A comma-separated port list; blank means none.
pub fn parse_port_list(ports: &str) -> Result<Vec<u16>, String> {
    let trimmed = ports.trim();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    trimmed
        .split(',')
        .map(|p| parse_port(p).map_err(|e| format!("failed parsing port '{p}': {e}")))
        .collect()
}

/// Go's `strconv.ParseUint(s, 10, bits)`: ASCII digits only (underscores are not allowed in
/// base 10), no sign, within `max`.
pub fn parse_go_uint(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|v| *v <= max)
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::from_json as json;

    fn check(name: &str, value: &str) -> Result<(), String> {
        let v = json!({ name: value });
        validate(v.as_object())
    }

    #[test]
    fn good_values_pass() {
        for (name, value) in [
            (INTERCEPTION_MODE, "TPROXY"),
            (INTERCEPTION_MODE, "NONE"),
            (STATUS_PORT, "0"),
            (STATUS_PORT, " 15021 "),
            (READINESS_PERIOD, "10"),
            (INCLUDE_OUTBOUND_IP_RANGES, "*"),
            (INCLUDE_OUTBOUND_IP_RANGES, "10.0.0.0/8,fd00::/8"),
            (EXCLUDE_OUTBOUND_IP_RANGES, ""),
            (INCLUDE_INBOUND_PORTS, "*"),
            (INCLUDE_INBOUND_PORTS, "80, 8080"),
            (EXCLUDE_INBOUND_PORTS, ""),
            (EXCLUDE_OUTBOUND_PORTS, "15000"),
            (EXCLUDE_INTERFACES, "eth1,net1"),
            (PROMETHEUS_MERGE_METRICS, "F"),
            (PROXY_CPU, "200m"),
            (PROXY_MEMORY_LIMIT, "1Gi"),
        ] {
            assert!(check(name, value).is_ok(), "{name}={value}");
        }
    }

    #[test]
    fn bad_values_name_the_annotation_and_value() {
        for (name, value) in [
            (INTERCEPTION_MODE, "redirect"),
            (STATUS_PORT, "70000"),
            (STATUS_PORT, "-1"),
            (READINESS_INITIAL_DELAY, "-1"),
            (READINESS_FAILURE_THRESHOLD, "x"),
            (INCLUDE_OUTBOUND_IP_RANGES, "10.0.0.0/33"),
            (INCLUDE_OUTBOUND_IP_RANGES, "10.0.0.0"),
            (INCLUDE_OUTBOUND_IP_RANGES, "*,10.0.0.0/8"),
            (EXCLUDE_OUTBOUND_IP_RANGES, "1.1.1.1/24 "),
            (EXCLUDE_OUTBOUND_IP_RANGES, "010.0.0.0/8"),
            (INCLUDE_INBOUND_PORTS, "80,http"),
            (EXCLUDE_INBOUND_PORTS, "99999"),
            (EXCLUDE_OUTBOUND_PORTS, "a"),
            (EXCLUDE_INTERFACES, "1eth"),
            (KUBEVIRT_INTERFACES, "a,,b"),
            (REROUTE_VIRTUAL_INTERFACES, "averyveryverylonginterface"),
            (PROMETHEUS_MERGE_METRICS, "yes"),
            (PROXY_CPU, "lots"),
            (PROXY_MEMORY, "1\n"),
        ] {
            let err = check(name, value).expect_err(&format!("{name}={value} must fail"));
            assert!(
                err.contains(&format!("invalid value '{value}' for annotation '{name}'")),
                "{err}"
            );
        }
    }

    #[test]
    fn all_errors_are_reported() {
        let v = json!({INTERCEPTION_MODE: "x", STATUS_PORT: "y"});
        let err = validate(v.as_object()).unwrap_err();
        assert!(
            err.contains(INTERCEPTION_MODE) && err.contains(STATUS_PORT),
            "{err}"
        );
    }

    #[test]
    fn unvalidated_annotations_are_ignored() {
        assert!(check(INCLUDE_OUTBOUND_PORTS, "not-a-port").is_ok());
        assert!(check("example.com/anything", "x").is_ok());
        assert!(validate(None).is_ok());
    }

    #[test]
    fn go_parsers() {
        assert_eq!(
            parse_go_uint("4294967295", u32::MAX as u64),
            Some(4294967295)
        );
        assert_eq!(parse_go_uint("4294967296", u32::MAX as u64), None);
        assert_eq!(parse_go_uint("+1", 10), None);
        assert_eq!(parse_go_bool("T"), Some(true));
        assert_eq!(parse_go_bool("yes"), None);
        assert_eq!(parse_port_list(" 1, 2 ").unwrap(), vec![1, 2]);
        assert!(parse_port_list("").unwrap().is_empty());
    }
}
