//! The waPC host: loads a policy module with wasmtime-provider + wapc (the
//! crates policy-evaluator uses), answers the guest's host calls the way
//! kwctl does in replay mode, and runs `protocol_version`,
//! `validate_settings` and `validate`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow};
use serde_json::{Map, Value, json};
use wapc::WapcHost;
use wasmtime_provider::wasmtime::{Cache, CacheConfig, Config, Engine, ProfilingStrategy};
use wasmtime_provider::{WasmtimeEngineProviderBuilder, WasmtimeEngineProviderPre};

use crate::metadata::{ContextAwareResource, ExecutionMode, Metadata, PolicyType, ProtocolVersion};
use crate::response::{
    AdmissionRequest, AdmissionResponse, SettingsValidationResponse, ValidationResponse,
};
use crate::session::{
    CallbackRequestType, GetResourceRequest, ListAllResourcesRequest,
    ListResourcesByNamespaceRequest, Replay, Session,
};

type HostError = Box<dyn std::error::Error + Send + Sync>;

/// A compiled policy module, ready to be instantiated many times.
pub struct Policy {
    pre: WasmtimeEngineProviderPre,
    /// The engine it was compiled by (its epoch is the one the instances' deadlines count).
    engine: Engine,
    /// Metadata embedded by `annotate`, if the module has any.
    pub metadata: Option<Metadata>,
}

/// The epoch deadlines policy-server gives every instance with its default timeout
/// protection (`--policy-timeout 2`: two ticks of its one-second epoch ticker). The
/// compiled code then checks the epoch at every function entry and loop, as it does in
/// policy-server, and that is what this host must time. No ticker runs here, so the
/// deadline passes only when something advances the epoch ([`Policy::advance_epoch`]).
const EPOCH_DEADLINES: wasmtime_provider::EpochDeadlines = wasmtime_provider::EpochDeadlines {
    wapc_init: 2,
    wapc_func: 2,
};

/// The engine modules are compiled by: wasmtime's defaults, as policy-server's, with epoch
/// interruption on, as policy-server turns it on for its timeout protection, and the
/// function-references proposal on, as policy-server and kwctl turn it on for Go's policies
/// (which need it to load; this policy compiles to the same code with it or without). With
/// `KWHOST_PERFMAP` set it writes `/tmp/perf-<pid>.map`, so that `perf record` / `perf
/// report` name the module's functions (build the module unstripped to get Rust names);
/// that engine has no compile cache.
fn engine(cache: &CompileCache) -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_function_references(true);
    if crate::perf_map::enabled() {
        config.profiler(ProfilingStrategy::PerfMap);
    } else if let CompileCache::Directory(dir) = cache {
        std::fs::create_dir_all(dir).ok();
        let mut cache_config = CacheConfig::new();
        cache_config.with_directory(dir);
        config.cache(Some(
            Cache::new(cache_config).map_err(|e| anyhow!("cannot use the compile cache: {e}"))?,
        ));
    }
    Engine::new(&config).map_err(|e| anyhow!("cannot build Wasmtime engine: {e}"))
}

/// Where compiled modules are cached (wasmtime's on-disk cache), if anywhere.
#[derive(Debug, Clone, Default)]
pub enum CompileCache {
    #[default]
    Disabled,
    Directory(std::path::PathBuf),
}

impl Policy {
    pub fn load(path: &std::path::Path, cache: &CompileCache) -> Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read policy module {path:?}"))?;
        Self::from_bytes(&bytes, cache)
            .with_context(|| format!("cannot load policy module {path:?}"))
    }

    /// Compiles a module meant to be run: its metadata, if any, must describe
    /// a Kubernetes waPC policy.
    pub fn from_bytes(bytes: &[u8], cache: &CompileCache) -> Result<Self> {
        let policy = Self::compile(bytes, cache)?;
        if let Some(md) = &policy.metadata {
            if md.execution_mode != ExecutionMode::KubewardenWapc {
                return Err(anyhow!(
                    "the policy's executionMode is {:?}: kwhost only runs kubewarden-wapc policies",
                    md.execution_mode
                ));
            }
            if md.policy_type == PolicyType::Raw {
                return Err(anyhow!("raw policies are not supported by kwhost"));
            }
        }
        Ok(policy)
    }

    /// Compiles a module whatever its metadata says.
    pub fn compile(bytes: &[u8], cache: &CompileCache) -> Result<Self> {
        crate::metadata::check_module(bytes)?;
        let metadata = Metadata::from_module(bytes)?;
        let engine = engine(cache)?;
        let pre = WasmtimeEngineProviderBuilder::new()
            .module_bytes(bytes)
            .engine(engine.clone())
            .build_pre()
            .map_err(|e| anyhow!("cannot build Wasmtime engine: {e}"))?;
        Ok(Self {
            pre,
            engine,
            metadata,
        })
    }

    /// Advances the engine's epoch by one tick, as policy-server's ticker does every second:
    /// a call (or the instance's `wapc_init`) still running two ticks after it started is
    /// interrupted.
    pub fn advance_epoch(&self) {
        self.engine.increment_epoch();
    }

    /// A fresh instance whose host calls are served by `ctx`.
    pub fn instantiate(&self, ctx: &HostContext) -> Result<Instance> {
        let engine = self
            .pre
            .rehydrate(Some(EPOCH_DEADLINES))
            .map_err(|e| anyhow!("cannot build Wasmtime engine: {e}"))?;
        let state = Arc::new(Mutex::new(HostState {
            allowed_resources: ctx.allowed_resources.clone(),
            replay: ctx.session.clone().map(Replay::new),
            logs: Vec::new(),
        }));
        let cb_state = Arc::clone(&state);
        let callback =
            move |_id: u64, binding: &str, namespace: &str, operation: &str, payload: &[u8]| {
                let mut state = cb_state
                    .lock()
                    .map_err(|_| HostError::from("host state poisoned"))?;
                state.host_call(binding, namespace, operation, payload)
            };
        let host = WapcHost::new(Box::new(engine), Some(Box::new(callback)))
            .map_err(|e| anyhow!("cannot build Wapc host: {e}"))?;
        Ok(Instance { host, state })
    }

    /// The context-aware resources the policy may read: those of its metadata
    /// when `allow_context_aware` (kwctl `--allow-context-aware`), none otherwise.
    pub fn allowed_resources(&self, allow_context_aware: bool) -> BTreeSet<ContextAwareResource> {
        match (&self.metadata, allow_context_aware) {
            (Some(md), true) => md.context_aware_resources.clone(),
            _ => BTreeSet::new(),
        }
    }
}

/// What the host offers to the guest during one evaluation.
#[derive(Debug, Clone, Default)]
pub struct HostContext {
    pub allowed_resources: BTreeSet<ContextAwareResource>,
    /// Recorded answers for host capability calls (kwctl replay mode).
    pub session: Option<Session>,
}

struct HostState {
    allowed_resources: BTreeSet<ContextAwareResource>,
    replay: Option<Replay>,
    logs: Vec<String>,
}

fn not_granted(api_version: &str, kind: &str) -> HostError {
    format!(
        "Policy has not been granted access to Kubernetes {api_version}/{kind} resources. The violation has been reported."
    )
    .into()
}

impl HostState {
    /// policy-evaluator's `runtimes::callback::host_callback`, with the
    /// requests answered by the replay session instead of a cluster/registry.
    fn host_call(
        &mut self,
        binding: &str,
        namespace: &str,
        operation: &str,
        payload: &[u8],
    ) -> std::result::Result<Vec<u8>, HostError> {
        if binding != "kubewarden" {
            return Err(format!("unknown binding: {binding}").into());
        }
        let unknown_operation =
            || -> HostError { format!("unknown operation: {operation}").into() };
        let request: CallbackRequestType = match namespace {
            "tracing" => {
                return match operation {
                    "log" => {
                        self.logs
                            .push(String::from_utf8_lossy(payload).into_owned());
                        Ok(Vec::new())
                    }
                    _ => Err(unknown_operation()),
                };
            }
            "kubernetes" => match operation {
                "get_resource" => {
                    let req: GetResourceRequest = serde_json::from_slice(payload)?;
                    self.check_access(&req.api_version, &req.kind)?;
                    req.into()
                }
                "list_resources_by_namespace" => {
                    let req: ListResourcesByNamespaceRequest = serde_json::from_slice(payload)?;
                    self.check_access(&req.api_version, &req.kind)?;
                    req.into()
                }
                "list_resources_all" => {
                    let req: ListAllResourcesRequest = serde_json::from_slice(payload)?;
                    self.check_access(&req.api_version, &req.kind)?;
                    req.into()
                }
                "can_i" => return Err("kwhost cannot serve kubernetes/can_i requests".into()),
                _ => return Err(unknown_operation()),
            },
            "oci" => match operation {
                "v1/manifest_digest" => CallbackRequestType::OciManifestDigest {
                    image: serde_json::from_slice(payload)?,
                },
                "v1/oci_manifest" => CallbackRequestType::OciManifest {
                    image: serde_json::from_slice(payload)?,
                },
                "v1/oci_manifest_config" => CallbackRequestType::OciManifestAndConfig {
                    image: serde_json::from_slice(payload)?,
                },
                "v1/verify" | "v2/verify" => {
                    return Err(format!("kwhost cannot serve oci/{operation} requests").into());
                }
                _ => return Err(unknown_operation()),
            },
            "net" => match operation {
                "v1/dns_lookup_host" => CallbackRequestType::DNSLookupHost {
                    host: serde_json::from_slice(payload)?,
                },
                _ => return Err(unknown_operation()),
            },
            "crypto" => match operation {
                "v1/is_certificate_trusted" => {
                    return Err(
                        "kwhost cannot serve crypto/v1/is_certificate_trusted requests".into(),
                    );
                }
                _ => return Err(unknown_operation()),
            },
            _ => return Err(format!("unknown namespace: {namespace}").into()),
        };
        match self.replay.as_mut() {
            Some(replay) => replay.answer(&request).map_err(HostError::from),
            None => Err(format!(
                "kwhost has no cluster, registry or network access: the {namespace}/{operation} request {request:?} needs a --replay-host-capabilities-interactions session"
            )
            .into()),
        }
    }

    fn check_access(&self, api_version: &str, kind: &str) -> std::result::Result<(), HostError> {
        let wanted = ContextAwareResource {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        };
        if self.allowed_resources.contains(&wanted) {
            Ok(())
        } else {
            Err(not_granted(api_version, kind))
        }
    }
}

/// One instantiated policy plus the state of its host.
pub struct Instance {
    host: WapcHost,
    state: Arc<Mutex<HostState>>,
}

impl Instance {
    /// The guest's `tracing/log` events (JSON documents), drained.
    pub fn take_logs(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|mut s| std::mem::take(&mut s.logs))
            .unwrap_or_default()
    }

    /// How many recorded exchanges the guest did not consume.
    pub fn session_leftovers(&self) -> usize {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.replay.as_ref().map(Replay::leftovers))
            .unwrap_or(0)
    }

    /// A raw waPC call, for benchmarks: the guest's answer bytes, untouched.
    pub fn call_raw(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>> {
        self.host
            .call(operation, payload)
            .map_err(|e| anyhow!("cannot invoke '{operation}' waPC function: {e}"))
    }

    pub fn protocol_version(&self) -> Result<ProtocolVersion> {
        let res = self
            .host
            .call("protocol_version", &[])
            .map_err(|e| anyhow!("cannot invoke 'protocol_version' waPC function : {e}"))?;
        ProtocolVersion::from_guest_payload(&res)
    }

    /// policy-evaluator's `validate_settings` for waPC policies: a guest error
    /// or an unreadable answer count as invalid settings, with kwctl's text.
    pub fn validate_settings(&self, settings: &Map<String, Value>) -> SettingsValidationResponse {
        let payload = Value::Object(settings.clone()).to_string();
        match self.host.call("validate_settings", payload.as_bytes()) {
            Ok(res) => {
                serde_json::from_slice(&res).unwrap_or_else(|e| SettingsValidationResponse {
                    valid: false,
                    message: Some(format!("error: InvalidResponseWithError({e:?})")),
                })
            }
            Err(err) => SettingsValidationResponse {
                valid: false,
                message: Some(format!(
                    "Error invoking settings validation callback: {err:?}"
                )),
            },
        }
    }

    /// policy-evaluator's `validate` for waPC policies.
    pub fn validate(
        &self,
        request: &AdmissionRequest,
        settings: &Map<String, Value>,
    ) -> AdmissionResponse {
        let uid = request.uid.as_str();
        let params = json!({ "request": request, "settings": settings });
        let payload = params.to_string();
        match self.host.call("validate", payload.as_bytes()) {
            Ok(res) => serde_json::from_slice::<ValidationResponse>(&res)
                .map_err(|e| anyhow!("invalid response from policy: {e}"))
                .and_then(|resp| {
                    AdmissionResponse::from_validation_response(uid, request.object.as_ref(), &resp)
                        .map_err(|e| anyhow!("invalid response format: {e}"))
                })
                .unwrap_or_else(|e| {
                    AdmissionResponse::reject_internal_server_error(uid, &e.to_string())
                }),
            Err(e) => AdmissionResponse::reject_internal_server_error(uid, &e.to_string()),
        }
    }
}

/// Settings as kwctl accepts them: a YAML/JSON mapping, or null/empty for `{}`.
pub fn parse_settings(text: &str) -> Result<Map<String, Value>> {
    let value: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_yaml::from_str(text)?
    };
    match value {
        Value::Null => Ok(Map::new()),
        Value::Object(map) => Ok(map),
        _ => Err(anyhow!("Invalid settings in CRD, not an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(allowed: &[(&str, &str)], session: Option<Session>) -> HostState {
        HostState {
            allowed_resources: allowed
                .iter()
                .map(|(a, k)| ContextAwareResource {
                    api_version: a.to_string(),
                    kind: k.to_string(),
                })
                .collect(),
            replay: session.map(Replay::new),
            logs: Vec::new(),
        }
    }

    const GET_NS: &[u8] = br#"{"api_version":"v1","kind":"Namespace","name":"demo","namespace":null,"disable_cache":false,"field_masks":null}"#;

    #[test]
    fn tracing_is_always_allowed() {
        let mut s = state(&[], None);
        assert_eq!(
            s.host_call("kubewarden", "tracing", "log", b"{\"msg\":1}")
                .unwrap(),
            Vec::<u8>::new()
        );
        assert_eq!(s.logs, vec!["{\"msg\":1}".to_string()]);
        assert_eq!(
            s.host_call("kubewarden", "tracing", "nope", b"")
                .unwrap_err()
                .to_string(),
            "unknown operation: nope"
        );
    }

    #[test]
    fn routing_errors() {
        let mut s = state(&[], None);
        assert_eq!(
            s.host_call("other", "tracing", "log", b"")
                .unwrap_err()
                .to_string(),
            "unknown binding: other"
        );
        assert_eq!(
            s.host_call("kubewarden", "weird", "x", b"")
                .unwrap_err()
                .to_string(),
            "unknown namespace: weird"
        );
        assert_eq!(
            s.host_call("kubewarden", "kubernetes", "x", b"")
                .unwrap_err()
                .to_string(),
            "unknown operation: x"
        );
    }

    #[test]
    fn context_aware_access_is_gated() {
        let mut s = state(&[], Some(Session::namespace_lookup("demo", None)));
        assert_eq!(
            s.host_call("kubewarden", "kubernetes", "get_resource", GET_NS)
                .unwrap_err()
                .to_string(),
            "Policy has not been granted access to Kubernetes v1/Namespace resources. The violation has been reported."
        );
        let mut s = state(
            &[("v1", "Pod")],
            Some(Session::namespace_lookup("demo", None)),
        );
        assert!(
            s.host_call("kubewarden", "kubernetes", "get_resource", GET_NS)
                .is_err()
        );
    }

    #[test]
    fn get_resource_is_replayed() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "labels": {"istio-injection": "enabled"}}});
        let mut s = state(
            &[("v1", "Namespace")],
            Some(Session::namespace_lookup("demo", Some(&ns))),
        );
        let out = s
            .host_call("kubewarden", "kubernetes", "get_resource", GET_NS)
            .unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), ns);
        // The session is used up now.
        assert_eq!(
            s.host_call("kubewarden", "kubernetes", "get_resource", GET_NS)
                .unwrap_err()
                .to_string(),
            "the list of recorded responses is empty"
        );
    }

    #[test]
    fn sdk_payload_without_field_masks_is_accepted() {
        // Older SDKs do not send `field_masks`.
        let mut s = state(
            &[("v1", "Namespace")],
            Some(Session::namespace_lookup("demo", None)),
        );
        let old = br#"{"api_version":"v1","kind":"Namespace","name":"demo","namespace":null,"disable_cache":false}"#;
        assert_eq!(
            s.host_call("kubewarden", "kubernetes", "get_resource", old)
                .unwrap_err()
                .to_string(),
            "Cannot find v1/Namespace named 'demo' inside of namespace 'None'"
        );
    }

    #[test]
    fn no_session_means_no_answer() {
        let mut s = state(&[("v1", "Namespace")], None);
        let err = s
            .host_call("kubewarden", "kubernetes", "get_resource", GET_NS)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--replay-host-capabilities-interactions"),
            "{err}"
        );
    }

    #[test]
    fn settings_parsing() {
        assert!(parse_settings("").unwrap().is_empty());
        assert!(parse_settings("{}").unwrap().is_empty());
        assert!(parse_settings("null").unwrap().is_empty());
        assert_eq!(
            parse_settings("policy: enabled\n").unwrap()["policy"],
            "enabled"
        );
        assert_eq!(parse_settings(r#"{"a": [1]}"#).unwrap()["a"], json!([1]));
        assert!(parse_settings("[1, 2]").is_err());
    }
}
