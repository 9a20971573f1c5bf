//! `kwctl annotate -m metadata.yml [-u README.md] -o out.wasm in.wasm`
//! (kwctl `annotate.rs` + `backend.rs`).

use anyhow::{Context, Result, anyhow, bail};

use crate::host::{CompileCache, HostContext, Policy};
use crate::metadata::{
    ANNOTATION_KWCTL_VERSION, ANNOTATION_POLICY_USAGE, ExecutionMode, KWCTL_VERSION,
    METADATA_SECTION, Metadata, ProtocolVersion, export_names, remove_custom_sections,
    write_custom_section,
};

/// The metadata kwctl would embed for `module`: the YAML parsed, the
/// protocol version detected, kwctl's annotations added, then validated.
pub fn prepare_metadata(
    module: &[u8],
    metadata_yaml: &str,
    usage: Option<&str>,
) -> Result<Metadata> {
    let mut metadata = Metadata::from_yaml(metadata_yaml)?;

    // Backend detection: a module exporting `opa_*` symbols was built from Rego.
    let is_rego = export_names(module)?.iter().any(|n| n.starts_with("opa_"));
    metadata.protocol_version = Some(match metadata.execution_mode {
        ExecutionMode::Wasi => ProtocolVersion::Unknown,
        ExecutionMode::Opa | ExecutionMode::Gatekeeper if is_rego => ProtocolVersion::Unknown,
        ExecutionMode::Opa | ExecutionMode::Gatekeeper => bail!(
            "Wrong value inside of policy's metadata for 'executionMode'. The policy has not been created using Rego"
        ),
        ExecutionMode::KubewardenWapc if is_rego => bail!(
            "Wrong value inside of policy's metadata for 'executionMode'. This policy has been created using Rego"
        ),
        ExecutionMode::KubewardenWapc => detect_protocol_version(module)
            .map_err(|e| anyhow!("Error while detecting Kubewarden protocol version: {e:#}"))?,
    });

    let mut annotations = metadata.annotations.take().unwrap_or_default();
    annotations.insert(
        ANNOTATION_KWCTL_VERSION.to_string(),
        KWCTL_VERSION.to_string(),
    );
    if let Some(usage) = usage {
        annotations.insert(ANNOTATION_POLICY_USAGE.to_string(), usage.to_string());
    }
    metadata.annotations = Some(annotations);

    metadata.validate()?;
    Ok(metadata)
}

/// Instantiates the module and calls its `protocol_version` waPC function
/// (any metadata already embedded is ignored).
fn detect_protocol_version(module: &[u8]) -> Result<ProtocolVersion> {
    let module = remove_custom_sections(module, METADATA_SECTION)?;
    Policy::compile(&module, &CompileCache::Disabled)?
        .instantiate(&HostContext::default())?
        .protocol_version()
        .context("Cannot compute ProtocolVersion used by the policy")
}

/// Runs `kwctl annotate`: reads the module, the metadata YAML and the usage
/// file, and writes the annotated module to `output`.
pub fn annotate_file(
    wasm: &std::path::Path,
    metadata_path: &std::path::Path,
    usage_path: Option<&std::path::Path>,
    output: &std::path::Path,
) -> Result<Metadata> {
    let usage = usage_path
        .map(|p| std::fs::read_to_string(p).map_err(|e| anyhow!("Error reading usage file: {e}")))
        .transpose()?;
    let module = std::fs::read(wasm).map_err(|e| anyhow!("Error reading wasm file: {e}"))?;
    crate::metadata::check_module(&module)
        .map_err(|e| anyhow!("Error parsing wasm module: {e}"))?;
    let yaml = std::fs::read_to_string(metadata_path)
        .map_err(|e| anyhow!("Error opening metadata file: {e}"))?;
    let metadata = prepare_metadata(&module, &yaml, usage.as_deref())?;
    let annotated = write_custom_section(&module, METADATA_SECTION, &metadata.to_section_json()?)?;
    std::fs::write(output, annotated).with_context(|| format!("cannot write {output:?}"))?;
    Ok(metadata)
}
