//! Kubewarden policy metadata: the model `kwctl annotate` embeds into a module,
//! its validation, and the `io.kubewarden.metadata` custom section itself.
//!
//! The JSON written into the custom section must be byte-for-byte what kwctl
//! writes, because kwctl and policy-server parse it back. kwctl serializes
//! policy-evaluator's `Metadata` struct with serde_json (no `preserve_order`),
//! so the key order is the struct's field order and maps/sets are sorted:
//! `protocolVersion, rules, annotations?, mutating, backgroundAudit,
//! executionMode, policyType, contextAwareResources, hostCapabilities?,
//! minimumKubewardenVersion?` (`?` = omitted when absent).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

/// Name of the custom section that holds the metadata.
pub const METADATA_SECTION: &str = "io.kubewarden.metadata";
/// Annotation kwctl adds with its own version.
pub const ANNOTATION_KWCTL_VERSION: &str = "io.kubewarden.kwctl";
/// Annotation kwctl adds with the contents of the usage file (`-u README.md`).
pub const ANNOTATION_POLICY_USAGE: &str = "io.kubewarden.policy.usage";
/// The kwctl release this host mimics: the one the project is tested with
/// (`../shared/kubewarden/`, kwctl and policy-server 1.36.0-beta.1).
pub const KWCTL_VERSION: &str = "1.36.0-beta.1";

#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolVersion {
    #[serde(rename = "Unknown")]
    Unknown,
    #[serde(rename = "v1")]
    V1,
}

impl ProtocolVersion {
    /// Parses the payload returned by the guest's `protocol_version` function
    /// (a JSON string such as `"v1"`).
    pub fn from_guest_payload(payload: &[u8]) -> Result<Self> {
        serde_json::from_slice(payload).map_err(|e| {
            anyhow!(
                "Cannot convert value to ProtocolVersion: {:?} (payload: {})",
                e,
                String::from_utf8_lossy(payload)
            )
        })
    }
}

#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionMode {
    #[default]
    #[serde(rename = "kubewarden-wapc")]
    KubewardenWapc,
    #[serde(rename = "opa")]
    Opa,
    #[serde(rename = "gatekeeper")]
    Gatekeeper,
    #[serde(rename = "wasi")]
    Wasi,
}

#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolicyType {
    #[default]
    #[serde(rename = "kubernetes")]
    Kubernetes,
    #[serde(rename = "raw")]
    Raw,
}

#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    #[serde(rename = "CREATE")]
    Create,
    #[serde(rename = "UPDATE")]
    Update,
    #[serde(rename = "DELETE")]
    Delete,
    #[serde(rename = "CONNECT")]
    Connect,
    #[serde(rename = "*")]
    All,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub api_groups: Vec<String>,
    pub api_versions: Vec<String>,
    pub resources: Vec<String>,
    pub operations: Vec<Operation>,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "camelCase")]
pub struct ContextAwareResource {
    pub api_version: String,
    pub kind: String,
}

/// Mirror of policy-evaluator's `policy_metadata::Metadata` (same serde
/// attributes, hence the same JSON). Unknown keys (e.g. the legacy
/// `contextAware`) are ignored and dropped, as kwctl does.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub protocol_version: Option<ProtocolVersion>,
    pub rules: Vec<Rule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    pub mutating: bool,
    #[serde(default = "default_true")]
    pub background_audit: bool,
    #[serde(default)]
    pub execution_mode: ExecutionMode,
    #[serde(default)]
    pub policy_type: PolicyType,
    #[serde(default)]
    pub context_aware_resources: BTreeSet<ContextAwareResource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_capabilities: Option<BTreeSet<String>>,
    /// A semver string; kept verbatim (validated by [`validate_semver`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_kubewarden_version: Option<String>,
}

const fn default_true() -> bool {
    true
}

impl Metadata {
    /// Parses a `metadata.yml` as `kwctl annotate` does.
    pub fn from_yaml(yaml: &str) -> Result<Self> {
        serde_yaml::from_str(yaml).map_err(|e| anyhow!("Error unmarshalling metadata {e}"))
    }

    /// The compact JSON kwctl stores in the custom section.
    pub fn to_section_json(&self) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(self)?)
    }

    /// Reads the metadata embedded in a module, if any (first custom section
    /// with the right name, like policy-evaluator's `Metadata::from_contents`).
    pub fn from_module(module: &[u8]) -> Result<Option<Self>> {
        match read_custom_section(module, METADATA_SECTION)? {
            Some(data) => Ok(Some(serde_json::from_slice(&data).with_context(|| {
                format!("cannot deserialize the {METADATA_SECTION} custom section")
            })?)),
            None => Ok(None),
        }
    }

    /// The checks kwctl runs (policy-evaluator's `validator` rules) before
    /// writing the section. Returns every problem found, one per line.
    pub fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        match self.protocol_version {
            None => errors.push("protocolVersion: is required".to_string()),
            Some(ProtocolVersion::Unknown)
                if self.execution_mode == ExecutionMode::KubewardenWapc =>
            {
                errors.push("protocolVersion: Must specify a valid protocol version".to_string())
            }
            Some(_) => {}
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let field = |name: &str| format!("rules[{i}].{name}");
            for (name, list) in [
                ("apiGroups", &rule.api_groups),
                ("apiVersions", &rule.api_versions),
                ("resources", &rule.resources),
            ] {
                if list.is_empty() {
                    errors.push(format!("{}: must have at least one element", field(name)));
                }
            }
            if rule.operations.is_empty() {
                errors.push(format!(
                    "{}: must have at least one element",
                    field("operations")
                ));
            }
            for (name, list) in [
                ("apiGroups", &rule.api_groups),
                ("apiVersions", &rule.api_versions),
            ] {
                if list.iter().any(|s| s == "*") && list.len() > 1 {
                    errors.push(format!(
                        "{}: No other elements can be defined when '*' is used",
                        field(name)
                    ));
                }
            }
            if rule.operations.contains(&Operation::All) && rule.operations.len() > 1 {
                errors.push(format!(
                    "{}: No other elements can be defined when '*' is used",
                    field("operations")
                ));
            }
            if let Err(e) = validate_resources(&rule.resources) {
                errors.push(format!("{}: {e}", field("resources")));
            }
        }
        for car in &self.context_aware_resources {
            if car.api_version.is_empty() || car.kind.is_empty() {
                errors.push(format!(
                    "contextAwareResources: apiVersion and kind must not be empty (got {:?}/{:?})",
                    car.api_version, car.kind
                ));
            }
        }
        if let Some(v) = &self.minimum_kubewarden_version
            && let Err(e) = validate_semver(v)
        {
            errors.push(format!("minimumKubewardenVersion: {e}"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            bail!("Metadata is invalid:\n  {}", errors.join("\n  "))
        }
    }
}

/// Kubernetes' resource-list rules, as policy-evaluator transposes them from
/// the apiserver's admissionregistration validation.
fn validate_resources(data: &[String]) -> std::result::Result<(), String> {
    let mut wildcard_sub_of: HashSet<&str> = HashSet::new(); // x/*
    let mut wildcard_res_for: HashSet<&str> = HashSet::new(); // */x
    let mut has_double_wildcard = false;
    let mut has_single_wildcard = false;
    let mut has_resource_without_subresource = false;

    for resource in data {
        if resource.is_empty() {
            return Err("empty resource is not allowed".to_string());
        }
        match resource.as_str() {
            "*/*" => has_double_wildcard = true,
            "*" => has_single_wildcard = true,
            _ => {}
        }
        let Some((res, sub)) = resource.split_once('/') else {
            has_resource_without_subresource = resource != "*";
            continue;
        };
        if wildcard_sub_of.contains(res) {
            return Err(format!(
                "if '{resource}/*' is present, must not specify {res}"
            ));
        }
        if wildcard_res_for.contains(sub) {
            return Err(format!(
                "if '*/{sub}' is present, must not specify {resource}"
            ));
        }
        if sub == "*" {
            wildcard_sub_of.insert(res);
        }
        if res == "*" {
            wildcard_res_for.insert(sub);
        }
    }
    if data.len() > 1 && has_double_wildcard {
        return Err("if '*/*' is present, must not specify other resources".to_string());
    }
    if has_single_wildcard && has_resource_without_subresource {
        return Err(
            "if '*' is present, must not specify other resources without subresources".to_string(),
        );
    }
    Ok(())
}

/// Strict SemVer 2.0.0 syntax check (what the `semver` crate accepts for a
/// `Version`): `MAJOR.MINOR.PATCH[-PRE][+BUILD]`, no leading zeros.
pub fn validate_semver(v: &str) -> std::result::Result<(), String> {
    let bad = || format!("{v:?} is not a valid semantic version (MAJOR.MINOR.PATCH)");
    let (rest, build) = match v.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| !numeric(p) || (p.len() > 1 && p.starts_with('0')))
    {
        return Err(bad());
    }
    let ident_ok =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if let Some(pre) = pre
        && pre
            .split('.')
            .any(|id| !ident_ok(id) || (numeric(id) && id.len() > 1 && id.starts_with('0')))
    {
        return Err(bad());
    }
    if let Some(build) = build
        && build.split('.').any(|id| !ident_ok(id))
    {
        return Err(bad());
    }
    Ok(())
}

/// `(major, minor)` of a version string already checked by [`validate_semver`].
pub fn major_minor(v: &str) -> Option<(u64, u64)> {
    let mut it = v.split(['.', '-', '+']);
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// `(major, minor, patch)` of a semver string and whether it is a pre-release
/// (`1.36.0-beta.1` comes before `1.36.0`).
pub fn release(v: &str) -> Option<((u64, u64, u64), bool)> {
    let core = v.split('+').next()?;
    let (numbers, pre) = match core.split_once('-') {
        Some((numbers, _)) => (numbers, true),
        None => (core, false),
    };
    let mut it = numbers.split('.').map(|n| n.parse().ok());
    Some(((it.next()??, it.next()??, it.next()??), pre))
}

/// One top-level section of a module: its id and the byte range it spans in
/// the module, header (id + LEB128 size) included.
struct RawSection {
    id: u8,
    start: usize,
    content_start: usize,
    end: usize,
}

const WASM_HEADER_LEN: usize = 8;

fn read_leb_u32(bytes: &[u8], pos: &mut usize) -> Result<u32> {
    let mut result: u32 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes
            .get(*pos)
            .ok_or_else(|| anyhow!("unexpected end of module while reading a LEB128 value"))?;
        *pos += 1;
        result |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(result);
        }
    }
    bail!("invalid LEB128 value")
}

fn raw_sections(module: &[u8]) -> Result<Vec<RawSection>> {
    if module.len() < WASM_HEADER_LEN || &module[0..4] != b"\0asm" {
        bail!("not a WebAssembly module (missing \\0asm header)");
    }
    if module[4..8] != [1, 0, 0, 0] {
        bail!(
            "not a core WebAssembly module (version {:?})",
            &module[4..8]
        );
    }
    let mut sections = Vec::new();
    let mut pos = WASM_HEADER_LEN;
    while pos < module.len() {
        let start = pos;
        let id = module[pos];
        pos += 1;
        let size = read_leb_u32(module, &mut pos)? as usize;
        let content_start = pos;
        let end = content_start
            .checked_add(size)
            .filter(|end| *end <= module.len())
            .ok_or_else(|| anyhow!("section {id} at offset {start} overruns the module"))?;
        sections.push(RawSection {
            id,
            start,
            content_start,
            end,
        });
        pos = end;
    }
    Ok(sections)
}

fn custom_section_name(module: &[u8], section: &RawSection) -> Result<(String, usize)> {
    let mut pos = section.content_start;
    let len = read_leb_u32(module, &mut pos)? as usize;
    let name = module
        .get(pos..pos + len)
        .filter(|_| pos + len <= section.end)
        .ok_or_else(|| anyhow!("malformed custom section name"))?;
    Ok((String::from_utf8_lossy(name).into_owned(), pos + len))
}

/// Checks the module is well formed by running it through wasmparser.
pub fn check_module(module: &[u8]) -> Result<()> {
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        payload.map_err(|e| anyhow!("cannot parse WebAssembly module: {e}"))?;
    }
    Ok(())
}

/// Data of the first custom section called `name` (found with wasmparser, as
/// kwctl/policy-server do).
pub fn read_custom_section(module: &[u8], name: &str) -> Result<Option<Vec<u8>>> {
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        if let wasmparser::Payload::CustomSection(reader) =
            payload.map_err(|e| anyhow!("cannot parse WebAssembly module: {e}"))?
            && reader.name() == name
        {
            return Ok(Some(reader.data().to_vec()));
        }
    }
    Ok(None)
}

/// Returns `module` with every custom section called `name` removed and one
/// new custom section `name` holding `data` appended at the end.
///
/// kwctl (through walrus) re-encodes the whole module and appends a second
/// section when one already exists, leaving the stale one first (which is the
/// one readers pick). We replace instead, and keep every other byte as is.
pub fn write_custom_section(module: &[u8], name: &str, data: &[u8]) -> Result<Vec<u8>> {
    use wasm_encoder::{Encode, Section};

    let mut out = remove_custom_sections(module, name)?;
    let custom = wasm_encoder::CustomSection {
        name: name.into(),
        data: data.into(),
    };
    out.push(custom.id());
    custom.encode(&mut out);
    Ok(out)
}

/// Returns `module` without the custom sections called `name`; every other
/// byte is kept as is.
pub fn remove_custom_sections(module: &[u8], name: &str) -> Result<Vec<u8>> {
    let sections = raw_sections(module)?;
    let mut out = Vec::with_capacity(module.len());
    out.extend_from_slice(&module[..WASM_HEADER_LEN]);
    for section in &sections {
        if section.id == 0 && custom_section_name(module, section)?.0 == name {
            continue;
        }
        out.extend_from_slice(&module[section.start..section.end]);
    }
    Ok(out)
}

/// Names of the module's exports (used to detect Rego policies: their exports
/// start with `opa_`).
pub fn export_names(module: &[u8]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        if let wasmparser::Payload::ExportSection(reader) =
            payload.map_err(|e| anyhow!("cannot parse WebAssembly module: {e}"))?
        {
            for export in reader {
                names.push(export?.name.to_string());
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA_YML: &str = r#"
rules:
- apiGroups: [""]
  apiVersions: ["v1"]
  resources: ["pods"]
  operations: ["CREATE"]
mutating: true
contextAware: true
contextAwareResources:
- apiVersion: v1
  kind: Namespace
hostCapabilities: [kubernetes/get_resource]
executionMode: kubewarden-wapc
annotations:
  io.kubewarden.policy.title: istio-sidecar-injector
  io.artifacthub.displayName: Istio sidecar injector
"#;

    /// A minimal valid module: header + one type section + one custom section.
    fn tiny_module() -> Vec<u8> {
        let mut module = wasm_encoder::Module::new();
        let mut types = wasm_encoder::TypeSection::new();
        types.ty().function([], []);
        module.section(&types);
        module.section(&wasm_encoder::CustomSection {
            name: "producers-ish".into(),
            data: b"abc".as_slice().into(),
        });
        module.finish()
    }

    #[test]
    fn json_has_kwctl_key_order_and_omissions() {
        let mut md = Metadata::from_yaml(METADATA_YML).unwrap();
        md.protocol_version = Some(ProtocolVersion::V1);
        let json = String::from_utf8(md.to_section_json().unwrap()).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"protocolVersion":"v1","rules":[{"apiGroups":[""],"apiVersions":["v1"],"#,
                r#""resources":["pods"],"operations":["CREATE"]}],"#,
                r#""annotations":{"io.artifacthub.displayName":"Istio sidecar injector","#,
                r#""io.kubewarden.policy.title":"istio-sidecar-injector"},"#,
                r#""mutating":true,"backgroundAudit":true,"executionMode":"kubewarden-wapc","#,
                r#""policyType":"kubernetes","contextAwareResources":[{"apiVersion":"v1","kind":"Namespace"}],"#,
                r#""hostCapabilities":["kubernetes/get_resource"]}"#
            )
        );
    }

    #[test]
    fn defaults_and_optional_keys() {
        let md = Metadata::from_yaml(
            "rules: []\nmutating: false\nbackgroundAudit: false\nminimumKubewardenVersion: 1.10.0\n",
        )
        .unwrap();
        let json = String::from_utf8(md.to_section_json().unwrap()).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"protocolVersion":null,"rules":[],"mutating":false,"backgroundAudit":false,"#,
                r#""executionMode":"kubewarden-wapc","policyType":"kubernetes","contextAwareResources":[],"#,
                r#""minimumKubewardenVersion":"1.10.0"}"#
            )
        );
        // kwctl requires a protocol version.
        assert!(md.validate().is_err());
    }

    #[test]
    fn missing_required_keys_are_errors() {
        assert!(Metadata::from_yaml("mutating: true\n").is_err());
        assert!(Metadata::from_yaml("rules: []\n").is_err());
        assert!(Metadata::from_yaml("rules: []\nmutating: true\nexecutionMode: bogus\n").is_err());
    }

    #[test]
    fn validation_rules() {
        let base = |rule: &str| {
            let mut md =
                Metadata::from_yaml(&format!("rules:\n- {rule}\nmutating: true\n")).unwrap();
            md.protocol_version = Some(ProtocolVersion::V1);
            md.validate()
        };
        assert!(
            base(
                r#"{apiGroups: [""], apiVersions: [v1], resources: [pods], operations: [CREATE]}"#
            )
            .is_ok()
        );
        assert!(
            base(r#"{apiGroups: [], apiVersions: [v1], resources: [pods], operations: [CREATE]}"#)
                .is_err()
        );
        assert!(base(r#"{apiGroups: ["", "*"], apiVersions: [v1], resources: [pods], operations: [CREATE]}"#).is_err());
        assert!(base(r#"{apiGroups: [""], apiVersions: [v1], resources: [pods], operations: ["*", CREATE]}"#).is_err());
        assert!(base(r#"{apiGroups: [""], apiVersions: [v1], resources: ["*", pods], operations: [CREATE]}"#).is_err());
        assert!(base(r#"{apiGroups: [""], apiVersions: [v1], resources: ["*", "a/b", "a/*", "*/b"], operations: [CREATE]}"#).is_ok());
        assert!(base(r#"{apiGroups: [""], apiVersions: [v1], resources: ["a/*", "a/x"], operations: [CREATE]}"#).is_err());
        assert!(base(r#"{apiGroups: [""], apiVersions: [v1], resources: ["*/*", "a"], operations: [CREATE]}"#).is_err());
        assert!(
            base(r#"{apiGroups: [""], apiVersions: [v1], resources: [""], operations: [CREATE]}"#)
                .is_err()
        );

        let mut md = Metadata::from_yaml("rules: []\nmutating: true\n").unwrap();
        md.protocol_version = Some(ProtocolVersion::Unknown);
        assert!(md.validate().is_err());
        md.execution_mode = ExecutionMode::Opa;
        assert!(md.validate().is_ok());
    }

    #[test]
    fn semver_checks() {
        for ok in ["1.0.0", "1.35.0", "0.1.2-rc.1+build.5", "10.20.30"] {
            assert!(validate_semver(ok).is_ok(), "{ok}");
        }
        for bad in ["1.0", "01.0.0", "1.0.0-", "v1.0.0", "1.0.0-01", ""] {
            assert!(validate_semver(bad).is_err(), "{bad}");
        }
        assert_eq!(major_minor("1.36.0-beta.1"), Some((1, 36)));
        assert_eq!(release("1.36.0-beta.1"), Some(((1, 36, 0), true)));
        assert_eq!(release("1.36.2+build.5"), Some(((1, 36, 2), false)));
        assert_eq!(release("1.36.2-rc.1+build-5"), Some(((1, 36, 2), true)));
        assert_eq!(release("1.36"), None);
    }

    #[test]
    fn custom_section_written_and_read_back() {
        let module = tiny_module();
        assert_eq!(
            read_custom_section(&module, METADATA_SECTION).unwrap(),
            None
        );

        let once = write_custom_section(&module, METADATA_SECTION, br#"{"a":1}"#).unwrap();
        check_module(&once).unwrap();
        assert!(
            once.starts_with(&module),
            "original bytes are kept, section appended"
        );
        assert_eq!(
            read_custom_section(&once, METADATA_SECTION)
                .unwrap()
                .as_deref(),
            Some(br#"{"a":1}"#.as_slice())
        );

        // Annotating again replaces the section instead of adding a second one.
        let twice = write_custom_section(&once, METADATA_SECTION, br#"{"b":2}"#).unwrap();
        check_module(&twice).unwrap();
        assert_eq!(
            read_custom_section(&twice, METADATA_SECTION)
                .unwrap()
                .as_deref(),
            Some(br#"{"b":2}"#.as_slice())
        );
        let count = raw_sections(&twice)
            .unwrap()
            .iter()
            .filter(|s| s.id == 0 && custom_section_name(&twice, s).unwrap().0 == METADATA_SECTION)
            .count();
        assert_eq!(count, 1);
        // The unrelated custom section survives.
        assert!(
            read_custom_section(&twice, "producers-ish")
                .unwrap()
                .is_some()
        );
        // And removing it gives back the original module.
        assert_eq!(
            remove_custom_sections(&twice, METADATA_SECTION).unwrap(),
            module
        );
    }

    #[test]
    fn metadata_read_from_module() {
        let mut md = Metadata::from_yaml(METADATA_YML).unwrap();
        md.protocol_version = Some(ProtocolVersion::V1);
        let module = write_custom_section(
            &tiny_module(),
            METADATA_SECTION,
            &md.to_section_json().unwrap(),
        )
        .unwrap();
        assert_eq!(Metadata::from_module(&module).unwrap(), Some(md));
        assert_eq!(Metadata::from_module(&tiny_module()).unwrap(), None);
    }

    #[test]
    fn garbage_is_not_a_module() {
        assert!(write_custom_section(b"hello world", METADATA_SECTION, b"{}").is_err());
        assert!(check_module(b"\0asm\x01\0\0\0\x01\xff").is_err());
    }
}
