//! `kwctl push` and `kwctl pull` for OCI registries (kwctl `push.rs`,
//! policy-fetcher `registry/mod.rs`), with the `oci-client` crate kwctl uses.
//!
//! The artifact is exactly kwctl's: an OCI image manifest (`schemaVersion: 2`,
//! sent as `application/vnd.oci.image.manifest.v1+json`), the config blob `{}`
//! with media type `application/vnd.wasm.config.v1+json`, one layer holding
//! the annotated module with media type
//! `application/vnd.wasm.content.layer.v1+wasm`, and the module's single-line
//! metadata annotations on the manifest, plus `org.opencontainers.image.source`
//! copied from `io.kubewarden.policy.source`.
//!
//! Transport, as kwctl: HTTPS with the system's roots first. A registry listed
//! in the sources file's `insecure_sources` (kwctl's `--sources-path` format),
//! or on a loopback address (`localhost`, `127.0.0.0/8`, `[::1]`), is then
//! retried with HTTPS without certificate checks, then with plain HTTP.
//!
//! A push is reported only once the registry has accepted the manifest, the
//! digest it answered is the digest of the manifest sent, and the tag
//! resolves to that digest: an upload that stopped half-way is an error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::metadata::{Metadata, export_names};

pub use oci_client::manifest::{
    OCI_IMAGE_MEDIA_TYPE, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE,
};

/// `io.kubewarden.policy.source`, copied to [`OCI_IMAGE_SOURCE`].
pub const ANNOTATION_POLICY_SOURCE: &str = "io.kubewarden.policy.source";
/// `org.opencontainers.image.source` (lets tools such as renovate find updates).
pub const OCI_IMAGE_SOURCE: &str = "org.opencontainers.image.source";
/// The config blob kwctl pushes.
pub const CONFIG_BLOB: &[u8] = b"{}";

/// The subset of kwctl's sources file (`--sources-path`) that matters for
/// pushing and pulling: registries reachable without verified TLS.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Sources {
    #[serde(default)]
    pub insecure_sources: BTreeSet<String>,
}

impl Sources {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read sources file {}", path.display()))?;
        serde_yaml::from_str(&text)
            .with_context(|| format!("cannot parse sources file {}", path.display()))
    }

    /// Whether `registry` (`host[:port]`) may be reached without verified TLS:
    /// listed in `insecure_sources`, or on a loopback address.
    pub fn is_insecure(&self, registry: &str) -> bool {
        self.insecure_sources.contains(registry) || is_loopback(registry)
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        registry.split(':').next().unwrap_or_default()
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Options shared by push and pull.
#[derive(Debug, Clone, Default)]
pub struct RemoteOptions {
    pub sources: Sources,
    /// Directory holding Docker's `config.json` (kwctl's
    /// `--docker-config-json-path`); default `$DOCKER_CONFIG`, then `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
}

/// The manifest annotations kwctl derives from the metadata annotations:
/// multi-line values dropped (OCI annotations are single-line), the others
/// trimmed, and `org.opencontainers.image.source` added from
/// `io.kubewarden.policy.source` unless already set.
pub fn oci_annotations(annotations: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = annotations
        .iter()
        .filter(|(_, v)| v.lines().count() <= 1)
        .map(|(k, v)| (k.clone(), v.trim().to_string()))
        .collect();
    if let Some(source) = out.get(ANNOTATION_POLICY_SOURCE).cloned() {
        out.entry(OCI_IMAGE_SOURCE.to_string()).or_insert(source);
    }
    out
}

/// The multi-line annotations [`oci_annotations`] leaves out.
pub fn dropped_annotations(annotations: &BTreeMap<String, String>) -> Vec<String> {
    annotations
        .iter()
        .filter(|(_, v)| v.lines().count() > 1)
        .map(|(k, _)| k.clone())
        .collect()
}

/// `registry://host/repo:tag` or `host/repo:tag` -> `host/repo:tag`.
pub fn strip_scheme(uri: &str) -> &str {
    uri.strip_prefix("registry://").unwrap_or(uri)
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    let hash = Sha256::digest(data);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in hash.iter() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

fn parse_reference(uri: &str) -> Result<Reference> {
    let image = strip_scheme(uri);
    Reference::try_from(image).map_err(|e| anyhow!("invalid OCI reference {image:?}: {e}"))
}

/// What a push produced.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// `host/repo@sha256:...`, as `kwctl push` prints it.
    pub immutable_ref: String,
    pub manifest_digest: String,
    /// The annotations written on the manifest.
    pub annotations: BTreeMap<String, String>,
    /// Multi-line metadata annotations left out of the manifest.
    pub dropped: Vec<String>,
}

/// `kwctl push [--force] MODULE URI`: refuses a module without Kubewarden
/// metadata unless `force` (never a Rego one), then pushes it.
pub fn push_module(
    module: &[u8],
    destination: &str,
    opts: &RemoteOptions,
    force: bool,
) -> Result<Pushed> {
    crate::metadata::check_module(module).map_err(|e| anyhow!("Error parsing wasm module: {e}"))?;
    let metadata = Metadata::from_module(module)?;
    let metadata_annotations = match &metadata {
        Some(m) => m.annotations.clone().unwrap_or_default(),
        None if !force => bail!(
            "Cannot push a policy that is not annotated. Use `annotate` command or `push --force`"
        ),
        None => {
            if export_names(module)?.iter().any(|n| n.starts_with("opa_")) {
                bail!("Rego policies cannot be pushed without metadata");
            }
            eprintln!("Warning: pushing a non-annotated policy!");
            BTreeMap::new()
        }
    };
    let annotations = oci_annotations(&metadata_annotations);
    let dropped = dropped_annotations(&metadata_annotations);
    let annotations_opt = metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .map(|_| annotations.clone());
    let (immutable_ref, manifest_digest) =
        push_artifact(module, destination, annotations_opt, opts)?;
    Ok(Pushed {
        immutable_ref,
        manifest_digest,
        annotations,
        dropped,
    })
}

/// The image manifest kwctl pushes for `module`.
pub fn build_manifest(
    module: &[u8],
    annotations: Option<BTreeMap<String, String>>,
) -> (Vec<ImageLayer>, Config, OciImageManifest) {
    let layers = vec![ImageLayer::new(
        module.to_vec(),
        WASM_LAYER_MEDIA_TYPE.to_string(),
        None,
    )];
    let config = Config::new(
        CONFIG_BLOB.to_vec(),
        WASM_CONFIG_MEDIA_TYPE.to_string(),
        None,
    );
    let manifest = OciImageManifest::build(&layers, &config, annotations);
    (layers, config, manifest)
}

/// The bytes oci-client sends for `manifest` (canonical JSON).
pub fn manifest_bytes(manifest: &OciImageManifest) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut body, olpc_cjson::CanonicalFormatter::new());
    serde::Serialize::serialize(&OciManifest::Image(manifest.clone()), &mut ser)?;
    Ok(body)
}

/// Pushes the artifact; returns the digest-pinned reference and the digest.
pub fn push_artifact(
    module: &[u8],
    destination: &str,
    annotations: Option<BTreeMap<String, String>>,
    opts: &RemoteOptions,
) -> Result<(String, String)> {
    let reference = parse_reference(destination)?;
    if reference.digest().is_some() {
        bail!(
            "cannot push to a digest reference ({destination}): give a tag, e.g. host/repository:v1.0.0"
        );
    }
    let (layers, config, manifest) = build_manifest(module, annotations);
    let expected_digest = sha256_digest(&manifest_bytes(&manifest)?);
    let auth = registry_auth(reference.resolve_registry(), opts)?;
    let target = format!(
        "{}/{}:{}",
        reference.registry(),
        reference.repository(),
        reference.tag().unwrap_or("latest")
    );

    let digest = with_protocols(&reference, opts, |client| {
        let (reference, layers, config, manifest, auth) =
            (&reference, &layers, config.clone(), manifest.clone(), &auth);
        let expected = expected_digest.clone();
        async move {
            let response = client
                .push(reference, layers, config, auth, Some(manifest))
                .await
                .map_err(Failure::from_oci)?;
            let digest = digest_from_manifest_url(&response.manifest_url)
                .map_err(Failure::Other)?;
            if digest != expected {
                return Err(Failure::Other(anyhow!(
                    "the registry stored the manifest under {digest}, but the manifest sent has digest {expected}"
                )));
            }
            // The tag must now name the complete artifact.
            let tagged = client
                .fetch_manifest_digest(reference, auth)
                .await
                .map_err(|e| Failure::Other(anyhow!("the pushed tag cannot be read back: {}", chain(&e))))?;
            if tagged != expected {
                return Err(Failure::Other(anyhow!(
                    "after the push the tag resolves to {tagged}, not to the pushed manifest {expected}"
                )));
            }
            Ok(digest)
        }
    })
    .with_context(|| format!("could not push policy to {target}"))?;

    let immutable_ref = format!(
        "{}/{}@{digest}",
        reference.registry(),
        reference.repository()
    );
    Ok((immutable_ref, digest))
}

/// The digest at the end of the manifest URL the registry answered
/// (`Location` header), checked like kwctl's `build_immutable_ref`.
pub fn digest_from_manifest_url(manifest_url: &str) -> Result<String> {
    let digest = manifest_url
        .rsplit_once('/')
        .map(|(_, d)| d)
        .ok_or_else(|| {
            anyhow!("cannot extract the manifest digest from the registry's answer: {manifest_url}")
        })?;
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| anyhow!("invalid manifest digest {digest:?} in the registry's answer"))?;
    let len = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        other => bail!("unknown digest algorithm {other:?} for manifest {digest}"),
    };
    if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("the digest of the returned manifest is not valid: {digest}");
    }
    Ok(digest.to_string())
}

/// What a pull produced.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub module: Vec<u8>,
    pub manifest: Option<OciImageManifest>,
    pub digest: Option<String>,
}

/// `kwctl pull`: fetches the artifact and returns its Wasm layer (chosen by
/// the layer media type, as policy-fetcher does).
pub fn pull(source: &str, opts: &RemoteOptions) -> Result<Pulled> {
    let reference = parse_reference(source)?;
    let auth = registry_auth(reference.resolve_registry(), opts)?;
    let image = with_protocols(&reference, opts, |client| {
        let (reference, auth) = (&reference, &auth);
        async move {
            client
                .pull(reference, auth, vec![WASM_LAYER_MEDIA_TYPE])
                .await
                .map_err(Failure::from_oci)
        }
    })
    .with_context(|| format!("could not pull policy {}", strip_scheme(source)))?;

    let layer = image
        .layers
        .into_iter()
        .find(|l| l.media_type == WASM_LAYER_MEDIA_TYPE)
        .ok_or_else(|| {
            anyhow!(
                "{} has no layer of type {WASM_LAYER_MEDIA_TYPE}",
                strip_scheme(source)
            )
        })?;
    if let Some(descriptor) = image.manifest.as_ref().and_then(|m| {
        m.layers
            .iter()
            .find(|d| d.media_type == WASM_LAYER_MEDIA_TYPE)
    }) {
        let actual = sha256_digest(&layer.data);
        if descriptor.digest != actual {
            bail!(
                "the pulled layer has digest {actual}, the manifest says {}",
                descriptor.digest
            );
        }
    }
    Ok(Pulled {
        module: layer.data.to_vec(),
        manifest: image.manifest,
        digest: image.digest,
    })
}

/// A failed attempt: `Transport` when no HTTP answer came back (connection
/// refused, TLS handshake failed, timeout), so another protocol may work.
enum Failure {
    Transport(anyhow::Error),
    Other(anyhow::Error),
}

impl Failure {
    fn from_oci(e: OciDistributionError) -> Self {
        let transport = matches!(&e, OciDistributionError::RequestError(r) if r.is_connect() || r.is_timeout() || r.status().is_none() && r.is_request());
        let message = describe(&e);
        if transport {
            Failure::Transport(anyhow!(message))
        } else {
            Failure::Other(anyhow!(message))
        }
    }
}

/// The error with its causes, on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A clear message for an oci-client error, with a hint for the usual causes.
fn describe(e: &OciDistributionError) -> String {
    match e {
        OciDistributionError::UnauthorizedError { url } => format!(
            "the registry refused the request with HTTP 401 (not authorized) at {url}; log in with `docker login <registry>` or pass --docker-config-json-path"
        ),
        OciDistributionError::AuthenticationFailure(message) => format!(
            "the registry refused the credentials: {}; log in with `docker login <registry>` or pass --docker-config-json-path",
            message.trim()
        ),
        OciDistributionError::ServerError { code, url, message } => {
            let why = match code {
                401 | 403 => {
                    "not authorized: check the credentials (`docker login <registry>`) and the permissions on the repository"
                }
                405 => {
                    "uploads are not allowed here: a read-only registry or a pull-through cache?"
                }
                404 => "not found",
                400..=499 => "request refused",
                _ => "server error",
            };
            let verb = if *code >= 500 {
                "failed"
            } else {
                "refused the request"
            };
            format!(
                "the registry {verb} with HTTP {code} ({why}) at {url}: {}",
                message.trim()
            )
        }
        OciDistributionError::RegistryError { envelope, url } => {
            let errors: Vec<String> = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect();
            format!(
                "the registry refused the request at {url}: {}",
                errors.join("; ")
            )
        }
        _ => chain(e),
    }
}

/// Runs `op` with HTTPS, then (insecure registries only) HTTPS without
/// certificate checks, then plain HTTP, like policy-fetcher's
/// `try_with_protocols`. An HTTP answer (other than a TLS failure) ends the
/// tries: that registry speaks this protocol, and it said no.
fn with_protocols<T, F, Fut>(reference: &Reference, opts: &RemoteOptions, op: F) -> Result<T>
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, Failure>>,
{
    install_crypto_provider();
    let registry = reference.resolve_registry().to_string();
    let mut attempts: Vec<(&str, ClientConfig)> =
        vec![("https", client_config(ClientProtocol::Https, false))];
    if opts.sources.is_insecure(&registry) {
        attempts.push((
            "https without certificate checks",
            client_config(ClientProtocol::Https, true),
        ));
        attempts.push(("http", client_config(ClientProtocol::Http, false)));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut tried: Vec<&str> = Vec::new();
    let count = attempts.len();
    for (i, (label, config)) in attempts.into_iter().enumerate() {
        let client = Client::new(config);
        tried.push(label);
        match runtime.block_on(op(client)) {
            Ok(value) => return Ok(value),
            Err(Failure::Transport(_)) if i + 1 < count => {}
            Err(Failure::Transport(e)) => {
                let text = format!("{e:#}");
                let hint = if text.contains("certificate") && tried.len() == 1 {
                    "if it uses a self-signed or private certificate, list it in the insecure_sources of a sources file (--sources-path)"
                } else {
                    "is it running, and is the address right?"
                };
                return Err(anyhow!(
                    "cannot reach the registry {registry} (tried {}): {text}; {hint}",
                    tried.join(", then ")
                ));
            }
            Err(Failure::Other(e)) if tried.len() > 1 => {
                return Err(anyhow!("{e:#} (over {label}, HTTPS having failed)"));
            }
            Err(Failure::Other(e)) => return Err(e),
        }
    }
    unreachable!("the last attempt always returns")
}

fn client_config(protocol: ClientProtocol, accept_invalid_certificates: bool) -> ClientConfig {
    ClientConfig {
        protocol,
        accept_invalid_certificates,
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        read_timeout: Some(std::time::Duration::from_secs(120)),
        ..Default::default()
    }
}

/// reqwest is built without a default TLS provider (see Cargo.toml): use ring.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Credentials for `registry` from Docker's `config.json`, as kwctl reads
/// them (the `auths` entries and credential helpers); anonymous otherwise.
fn registry_auth(registry: &str, opts: &RemoteOptions) -> Result<RegistryAuth> {
    let dir = opts
        .docker_config_dir
        .clone()
        .or_else(|| std::env::var_os("DOCKER_CONFIG").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")));
    let Some(path) = dir.map(|d| d.join("config.json")) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && opts.docker_config_dir.is_none() => {
            return Ok(RegistryAuth::Anonymous);
        }
        Err(e) => return Err(anyhow!("cannot read {}: {e}", path.display())),
    };
    let config: DockerConfig =
        serde_json::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))?;
    let keys = [
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
    ];
    let docker_hub = registry == "docker.io"
        || registry == "index.docker.io"
        || registry == "registry-1.docker.io";
    let entry = keys.iter().find_map(|k| config.auths.get(k)).or_else(|| {
        docker_hub
            .then(|| config.auths.get("https://index.docker.io/v1/"))
            .flatten()
    });
    if let Some(entry) = entry {
        if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
            return Ok(RegistryAuth::Basic(user.clone(), password.clone()));
        }
        if let Some(auth) = &entry.auth {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .with_context(|| {
                    format!(
                        "{}: the auth entry for {registry} is not base64",
                        path.display()
                    )
                })?;
            let decoded = String::from_utf8(decoded).with_context(|| {
                format!(
                    "{}: the auth entry for {registry} is not UTF-8",
                    path.display()
                )
            })?;
            let (user, password) = decoded.split_once(':').ok_or_else(|| {
                anyhow!(
                    "{}: the auth entry for {registry} is not user:password",
                    path.display()
                )
            })?;
            return Ok(RegistryAuth::Basic(user.to_string(), password.to_string()));
        }
        if entry.identitytoken.is_some() {
            eprintln!(
                "Warning: identity token credentials for {registry} are not supported (as in kwctl); using anonymous access"
            );
        }
    }
    let helper = config
        .cred_helpers
        .get(registry)
        .or(config.creds_store.as_ref());
    if let Some(helper) = helper
        && let Some(auth) = credential_helper(helper, registry)?
    {
        return Ok(auth);
    }
    Ok(RegistryAuth::Anonymous)
}

/// Asks `docker-credential-<helper> get` for `registry`'s credentials.
fn credential_helper(helper: &str, registry: &str) -> Result<Option<RegistryAuth>> {
    use std::io::Write;
    let program = format!("docker-credential-{helper}");
    let mut child = match std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!(
                "Warning: cannot run the Docker credential helper {program}: {e}; using anonymous access"
            );
            return Ok(None);
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(registry.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct HelperAnswer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("{program} answered something else than credentials"))?;
    Ok(Some(if answer.username == "<token>" {
        RegistryAuth::Bearer(answer.secret)
    } else {
        RegistryAuth::Basic(answer.username, answer.secret)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_like_kwctl() {
        let mut a = BTreeMap::new();
        a.insert(
            ANNOTATION_POLICY_SOURCE.to_string(),
            "https://example.com/src".to_string(),
        );
        a.insert(
            "io.kubewarden.policy.usage".to_string(),
            "line one\nline two".to_string(),
        );
        a.insert(
            "io.kubewarden.policy.description".to_string(),
            "ends with a newline\n".to_string(),
        );
        a.insert("empty".to_string(), String::new());
        let out = oci_annotations(&a);
        assert!(!out.contains_key("io.kubewarden.policy.usage"));
        assert_eq!(
            out["io.kubewarden.policy.description"],
            "ends with a newline"
        );
        assert_eq!(out[OCI_IMAGE_SOURCE], "https://example.com/src");
        assert_eq!(out["empty"], "");
        assert_eq!(dropped_annotations(&a), vec!["io.kubewarden.policy.usage"]);

        // An explicit org.opencontainers.image.source wins.
        a.insert(OCI_IMAGE_SOURCE.to_string(), "oci.example".to_string());
        assert_eq!(oci_annotations(&a)[OCI_IMAGE_SOURCE], "oci.example");
    }

    #[test]
    fn loopback_registries() {
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "ghcr.io",
            "10.0.0.1:5000",
            "registry.local:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
        let sources: Sources =
            serde_yaml::from_str("insecure_sources: [\"registry.local:5000\"]").unwrap();
        assert!(sources.is_insecure("registry.local:5000"));
        assert!(!sources.is_insecure("registry.local"));
    }

    #[test]
    fn manifest_digests() {
        let url = format!(
            "http://127.0.0.1:5000/v2/x/manifests/sha256:{}",
            "a".repeat(64)
        );
        assert_eq!(
            digest_from_manifest_url(&url).unwrap(),
            format!("sha256:{}", "a".repeat(64))
        );
        assert!(digest_from_manifest_url("http://h/v2/x/manifests/sha256:abc").is_err());
        assert!(digest_from_manifest_url("http://h/v2/x/manifests/md5:abc").is_err());
        assert_eq!(
            sha256_digest(b"{}"),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn manifest_shape() {
        let (_, _, manifest) = build_manifest(b"\0asm\x01\0\0\0", Some(BTreeMap::new()));
        let json: serde_json::Value =
            serde_json::from_slice(&manifest_bytes(&manifest).unwrap()).unwrap();
        assert_eq!(json["schemaVersion"], 2);
        assert!(json.get("mediaType").is_none());
        assert_eq!(json["config"]["mediaType"], WASM_CONFIG_MEDIA_TYPE);
        assert_eq!(json["config"]["size"], 2);
        assert_eq!(json["layers"][0]["mediaType"], WASM_LAYER_MEDIA_TYPE);
        assert_eq!(json["layers"][0]["size"], 8);
    }
}
