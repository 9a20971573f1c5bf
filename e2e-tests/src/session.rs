//! kwctl's host-capabilities session files
//! (`kwctl run --record-host-capabilities-interactions` /
//! `--replay-host-capabilities-interactions`).
//!
//! Format (kwctl `callback_handler/proxy.rs`): a YAML list of
//!
//! ```yaml
//! - type: Exchange
//!   request: |            # serde_yaml of policy-evaluator's CallbackRequestType
//!     !KubernetesGetResource
//!     api_version: v1
//!     kind: Namespace
//!     name: demo
//!     namespace: null
//!     disable_cache: false
//!     field_masks: null   # written by current kwctl; older files omit it
//!   response:
//!     type: Success       # or `type: Error` + `message: ...`
//!     payload: '{"apiVersion":"v1","kind":"Namespace",...}'   # the raw reply, a string
//! ```
//!
//! Replay semantics (kwctl `produce_recorded_response`): exchanges are consumed
//! strictly in order; each guest request must be *equal* to the next recorded
//! one (all fields), otherwise the guest gets
//! `Replay error: unexpected request. Was expecting {expected:?}, got {got:?} instead`;
//! when none is left it gets `the list of recorded responses is empty`.

use std::collections::{BTreeSet, VecDeque};

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

/// The subset of policy-evaluator's `CallbackRequestType` this host can
/// replay. Variant and field names (and so the YAML tags and the `Debug`
/// text in replay errors) are the same as kwctl's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::enum_variant_names)]
pub enum CallbackRequestType {
    OciManifestDigest {
        image: String,
    },
    OciManifest {
        image: String,
    },
    OciManifestAndConfig {
        image: String,
    },
    DNSLookupHost {
        host: String,
    },
    KubernetesListResourceNamespace {
        api_version: String,
        kind: String,
        namespace: String,
        label_selector: Option<String>,
        field_selector: Option<String>,
        field_masks: Option<BTreeSet<String>>,
    },
    KubernetesListResourceAll {
        api_version: String,
        kind: String,
        label_selector: Option<String>,
        field_selector: Option<String>,
        field_masks: Option<BTreeSet<String>>,
    },
    KubernetesGetResource {
        api_version: String,
        kind: String,
        name: String,
        namespace: Option<String>,
        disable_cache: bool,
        field_masks: Option<BTreeSet<String>>,
    },
}

/// The guest's `kubernetes/get_resource` payload (SDK `GetResourceRequest`).
#[derive(Debug, Deserialize)]
pub struct GetResourceRequest {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub disable_cache: bool,
    pub field_masks: Option<BTreeSet<String>>,
}

/// The guest's `kubernetes/list_resources_by_namespace` payload.
#[derive(Debug, Deserialize)]
pub struct ListResourcesByNamespaceRequest {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub field_masks: Option<BTreeSet<String>>,
}

/// The guest's `kubernetes/list_resources_all` payload.
#[derive(Debug, Deserialize)]
pub struct ListAllResourcesRequest {
    pub api_version: String,
    pub kind: String,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub field_masks: Option<BTreeSet<String>>,
}

impl From<GetResourceRequest> for CallbackRequestType {
    fn from(r: GetResourceRequest) -> Self {
        Self::KubernetesGetResource {
            api_version: r.api_version,
            kind: r.kind,
            name: r.name,
            namespace: r.namespace,
            disable_cache: r.disable_cache,
            field_masks: r.field_masks,
        }
    }
}

impl From<ListResourcesByNamespaceRequest> for CallbackRequestType {
    fn from(r: ListResourcesByNamespaceRequest) -> Self {
        Self::KubernetesListResourceNamespace {
            api_version: r.api_version,
            kind: r.kind,
            namespace: r.namespace,
            label_selector: r.label_selector,
            field_selector: r.field_selector,
            field_masks: r.field_masks,
        }
    }
}

impl From<ListAllResourcesRequest> for CallbackRequestType {
    fn from(r: ListAllResourcesRequest) -> Self {
        Self::KubernetesListResourceAll {
            api_version: r.api_version,
            kind: r.kind,
            label_selector: r.label_selector,
            field_selector: r.field_selector,
            field_masks: r.field_masks,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Response {
    Success { payload: String },
    Error { message: String },
}

/// One list entry. kwctl writes `type: Exchange` (a tagged struct); a
/// single-variant tagged enum gives the same YAML and insists on the tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Entry {
    Exchange { request: String, response: Response },
}

/// A recorded exchange whose request has been decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// `Err(tag text)` when the request is of a kind this host cannot replay.
    pub request: std::result::Result<CallbackRequestType, String>,
    pub response: Response,
}

/// A whole session file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    pub exchanges: Vec<Exchange>,
}

impl Session {
    pub fn from_yaml(yaml: &str) -> Result<Self> {
        let entries: Vec<Entry> =
            serde_yaml::from_str(yaml).context("cannot deserialize host capabilities session")?;
        let exchanges = entries
            .into_iter()
            .enumerate()
            .map(|(i, Entry::Exchange { request, response })| {
                let decoded = match serde_yaml::from_str::<CallbackRequestType>(&request) {
                    Ok(r) => Ok(r),
                    Err(e) => {
                        let tag = request.split_whitespace().next().unwrap_or("");
                        if KNOWN_UNSUPPORTED_TAGS.contains(&tag) {
                            Err(tag.to_string())
                        } else {
                            return Err(anyhow!(
                                "session exchange #{i}: cannot decode request {request:?}: {e}"
                            ));
                        }
                    }
                };
                Ok(Exchange {
                    request: decoded,
                    response,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { exchanges })
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Cannot open host capabilities interactions file {path:?}"))?;
        Self::from_yaml(&text).with_context(|| format!("cannot deserialize contents of {path:?}"))
    }

    /// Serializes as kwctl's recorder does. Exchanges whose request could not
    /// be decoded cannot be written back.
    pub fn to_yaml(&self) -> Result<String> {
        let entries = self
            .exchanges
            .iter()
            .map(|x| {
                let request = match &x.request {
                    Ok(r) => serde_yaml::to_string(r)?,
                    Err(tag) => return Err(anyhow!("cannot re-encode a {tag} request")),
                };
                Ok(Entry::Exchange {
                    request,
                    response: x.response.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(serde_yaml::to_string(&entries)?)
    }

    /// The fixture a namespace lookup needs: the guest's
    /// `get_resource(v1/Namespace name)` answered with `namespace` (or with
    /// kwctl's not-found error when `None`).
    pub fn namespace_lookup(name: &str, namespace: Option<&serde_json::Value>) -> Self {
        let request = CallbackRequestType::KubernetesGetResource {
            api_version: "v1".to_string(),
            kind: "Namespace".to_string(),
            name: name.to_string(),
            namespace: None,
            disable_cache: false,
            field_masks: None,
        };
        let response = match namespace {
            Some(ns) => Response::Success {
                payload: ns.to_string(),
            },
            None => Response::Error {
                message: format!(
                    "Cannot find v1/Namespace named '{name}' inside of namespace 'None'"
                ),
            },
        };
        Self {
            exchanges: vec![Exchange {
                request: Ok(request),
                response,
            }],
        }
    }
}

/// Request kinds kwctl can record but this host does not model.
const KNOWN_UNSUPPORTED_TAGS: &[&str] = &[
    "!SigstorePubKeyVerify",
    "!SigstoreKeylessVerify",
    "!SigstoreKeylessPrefixVerify",
    "!SigstoreGithubActionsVerify",
    "!SigstoreCertificateVerify",
    "!KubernetesGetResourcePluralName",
    "!HasKubernetesListResourceAllResultChangedSinceInstant",
    "!KubernetesCanI",
    "!CryptoIsCertificateTrusted",
];

/// Replays a session, in order, as kwctl's proxy does.
#[derive(Debug, Default)]
pub struct Replay {
    pending: VecDeque<Exchange>,
}

impl Replay {
    pub fn new(session: Session) -> Self {
        Self {
            pending: session.exchanges.into(),
        }
    }

    /// Answers one guest request; `Err` is the host error text the guest sees.
    pub fn answer(
        &mut self,
        request: &CallbackRequestType,
    ) -> std::result::Result<Vec<u8>, String> {
        let Some(exchange) = self.pending.pop_front() else {
            return Err("the list of recorded responses is empty".to_string());
        };
        let expected = match exchange.request {
            Ok(r) => r,
            Err(tag) => {
                return Err(format!(
                    "Replay error: unexpected request. Was expecting a {tag} request (which kwhost cannot replay), got {request:?} instead"
                ));
            }
        };
        if &expected != request {
            return Err(format!(
                "Replay error: unexpected request. Was expecting {expected:?}, got {request:?} instead"
            ));
        }
        match exchange.response {
            Response::Success { payload } => Ok(payload.into_bytes()),
            Response::Error { message } => Err(message),
        }
    }

    /// Exchanges not consumed (kwctl warns about them at shutdown).
    pub fn leftovers(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped exactly like kwctl's own test data
    /// (`crates/kwctl/tests/data/host-capabilities-sessions/*.yml`).
    const KWCTL_SESSION: &str = r#"- type: Exchange
  request: |
    !KubernetesGetResource
    api_version: v1
    kind: Namespace
    name: test-policy
    namespace: null
    disable_cache: false
  response:
    type: Success
    payload: '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"test-policy","labels":{"istio-injection":"enabled"}}}'
- type: Exchange
  request: |
    !KubernetesGetResource
    api_version: v1
    kind: Namespace
    name: missing
    namespace: null
    disable_cache: false
  response:
    type: Error
    message: Cannot find v1/Namespace named 'missing' inside of namespace 'None'
- type: Exchange
  request: |
    !KubernetesListResourceAll
    api_version: networking.k8s.io/v1
    kind: Ingress
    label_selector: null
    field_selector: null
  response:
    type: Success
    payload: |
      {"apiVersion": "v1", "kind": "List", "items": []}
"#;

    fn get_ns(name: &str) -> CallbackRequestType {
        CallbackRequestType::KubernetesGetResource {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            name: name.into(),
            namespace: None,
            disable_cache: false,
            field_masks: None,
        }
    }

    #[test]
    fn parses_kwctl_files() {
        let s = Session::from_yaml(KWCTL_SESSION).unwrap();
        assert_eq!(s.exchanges.len(), 3);
        assert_eq!(s.exchanges[0].request, Ok(get_ns("test-policy")));
        assert!(
            matches!(&s.exchanges[1].response, Response::Error { message } if message.contains("'missing'"))
        );
        assert!(matches!(
            &s.exchanges[2].request,
            Ok(CallbackRequestType::KubernetesListResourceAll {
                field_masks: None,
                ..
            })
        ));
    }

    #[test]
    fn round_trip_and_format() {
        let s = Session::from_yaml(KWCTL_SESSION).unwrap();
        let yaml = s.to_yaml().unwrap();
        assert_eq!(Session::from_yaml(&yaml).unwrap(), s);
        // Same shape as kwctl's recorder: tagged entries, the request a tagged YAML string.
        assert!(
            yaml.starts_with(
                "- type: Exchange\n  request: |\n    !KubernetesGetResource\n    api_version: v1\n"
            ),
            "{yaml}"
        );
        assert!(yaml.contains("    field_masks: null\n"), "{yaml}");
        assert!(
            yaml.contains("  response:\n    type: Success\n    payload: "),
            "{yaml}"
        );
    }

    #[test]
    fn namespace_fixture() {
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}});
        let s = Session::namespace_lookup("demo", Some(&ns));
        let back = Session::from_yaml(&s.to_yaml().unwrap()).unwrap();
        assert_eq!(back, s);
        let mut replay = Replay::new(back);
        let payload = replay.answer(&get_ns("demo")).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&payload).unwrap(),
            ns
        );

        let missing = Session::namespace_lookup("gone", None);
        assert_eq!(
            Replay::new(missing).answer(&get_ns("gone")),
            Err("Cannot find v1/Namespace named 'gone' inside of namespace 'None'".to_string())
        );
    }

    #[test]
    fn replay_is_ordered_and_strict() {
        let mut replay = Replay::new(Session::from_yaml(KWCTL_SESSION).unwrap());
        // Asking for the second recorded request first is an error, and consumes the first.
        let err = replay.answer(&get_ns("missing")).unwrap_err();
        assert!(err.starts_with("Replay error: unexpected request. Was expecting KubernetesGetResource { api_version: \"v1\", kind: \"Namespace\", name: \"test-policy\", namespace: None, disable_cache: false, field_masks: None }, got "), "{err}");
        assert_eq!(
            replay.answer(&get_ns("missing")),
            Err("Cannot find v1/Namespace named 'missing' inside of namespace 'None'".to_string())
        );
        assert_eq!(replay.leftovers(), 1);
        let mut replay = Replay::new(Session::default());
        assert_eq!(
            replay.answer(&get_ns("x")),
            Err("the list of recorded responses is empty".to_string())
        );
    }

    #[test]
    fn disable_cache_must_match() {
        let mut replay = Replay::new(Session::namespace_lookup("demo", None));
        let req = CallbackRequestType::KubernetesGetResource {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            name: "demo".into(),
            namespace: None,
            disable_cache: true,
            field_masks: None,
        };
        assert!(replay.answer(&req).unwrap_err().starts_with("Replay error"));
    }

    #[test]
    fn unsupported_and_broken_requests() {
        let yaml = "- type: Exchange\n  request: |\n    !KubernetesCanI\n    disable_cache: false\n  response:\n    type: Error\n    message: x\n";
        let s = Session::from_yaml(yaml).unwrap();
        assert_eq!(s.exchanges[0].request, Err("!KubernetesCanI".to_string()));
        assert!(Replay::new(s).answer(&get_ns("a")).is_err());

        let broken = "- type: Exchange\n  request: |\n    !NoSuchThing\n    a: 1\n  response:\n    type: Error\n    message: x\n";
        assert!(Session::from_yaml(broken).is_err());
        assert!(Session::from_yaml("- request: x\n").is_err());
    }
}
