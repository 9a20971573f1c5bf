//! The whole evaluation of one admission request, as plain data in and out. The Kubewarden
//! entry point (lib.rs) supplies the Namespace lookup as a closure, so this module never
//! calls the host and runs the same natively, in benchmarks and in a browser build.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::decision::{self, NamespaceFacts, Outcome, PodFacts, Reason};
use crate::inject;
use crate::pod;
use crate::settings::{NamespaceSelection, Settings};

/// The fields of a Kubernetes AdmissionRequest the policy reads.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct AdmissionRequest {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub operation: String,
    pub namespace: String,
    pub name: String,
    pub object: Value,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

/// What the policy answers; lib.rs turns it into Kubewarden's ValidationResponse.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub reason: Reason,
    pub warnings: Vec<String>,
    /// The injected Pod, when injecting.
    pub mutated: Option<Value>,
    /// The rejection message, when rejecting.
    pub message: Option<String>,
}

impl Verdict {
    pub fn accepted(&self) -> bool {
        self.outcome != Outcome::Rejected
    }

    fn new(outcome: Outcome, reason: Reason, warnings: Vec<String>) -> Self {
        let message = (outcome == Outcome::Rejected).then(|| reason.text.clone());
        Verdict {
            outcome,
            reason,
            warnings,
            mutated: None,
            message,
        }
    }

    /// `auditAnnotations`: the outcome and `code: text` reason.
    pub fn audit_annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("outcome".to_string(), self.outcome.as_str().to_string()),
            ("reason".to_string(), self.reason.to_string()),
        ])
    }
}

/// Evaluates a request whose settings are already parsed. `lookup_namespace` is called at
/// most once, with the namespace name, and only in `lookup` mode.
pub fn evaluate(
    request: AdmissionRequest,
    settings: &Settings,
    lookup_namespace: impl FnOnce(&str) -> Result<Value, String>,
) -> Verdict {
    let is_pod = request.kind.kind == "Pod" && request.kind.group.is_empty();
    if !is_pod || request.operation != "CREATE" {
        return Verdict::new(
            Outcome::NotSelected,
            Reason::new(
                "not-pod-create",
                format!(
                    "{} of {} is not a Pod creation",
                    if request.operation.is_empty() {
                        "request"
                    } else {
                        &request.operation
                    },
                    if request.kind.kind.is_empty() {
                        "an unknown kind"
                    } else {
                        &request.kind.kind
                    }
                ),
            ),
            Vec::new(),
        );
    }
    let pod = request.object;
    if pod.is_null() {
        return Verdict::new(
            Outcome::NotSelected,
            Reason::new("no-object", "the request carries no Pod"),
            Vec::new(),
        );
    }
    if let Err(e) = pod::check_shape(&pod) {
        return Verdict::new(
            Outcome::Rejected,
            Reason::new("invalid-pod", format!("the Pod cannot be read: {e}")),
            Vec::new(),
        );
    }
    // Istio fills an empty pod namespace from the request (pods created by controllers).
    let namespace = match pod::metadata_str(&pod, "namespace") {
        "" => request.namespace.clone(),
        ns => ns.to_string(),
    };

    let namespace_object = match settings.namespace_selection {
        NamespaceSelection::Webhook => None,
        NamespaceSelection::Lookup => match lookup_namespace(&namespace) {
            Ok(ns) => Some(ns),
            Err(e) => {
                return Verdict::new(
                    Outcome::Rejected,
                    Reason::new(
                        "namespace-lookup-failed",
                        format!(
                            "cannot read Namespace {namespace:?} to decide sidecar injection: {e}. \
                             Grant the policy access with `contextAwareResources: [{{apiVersion: v1, kind: Namespace}}]` \
                             in the ClusterAdmissionPolicy (kwctl: --allow-context-aware), or use `namespaceSelection: webhook`"
                        ),
                    ),
                    Vec::new(),
                );
            }
        },
    };
    let ns_labels = namespace_object
        .as_ref()
        .and_then(|ns| ns.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object);
    let ns_annotations = namespace_object
        .as_ref()
        .and_then(|ns| ns.get("metadata"))
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object);

    let facts = PodFacts {
        labels: pod::metadata_map(&pod, "labels"),
        annotations: pod::metadata_map(&pod, "annotations"),
        host_network: pod::host_network(&pod),
        namespace: &namespace,
    };
    let selected_by = if namespace_object.is_some() {
        let ns = NamespaceFacts {
            name: &namespace,
            labels: ns_labels,
        };
        match decision::select(settings, &ns, &facts) {
            Ok(entry) => Some(entry),
            Err(reason) => return Verdict::new(Outcome::NotSelected, reason, Vec::new()),
        }
    } else {
        None
    };

    let requirement = decision::inject_required(settings, &facts);
    let mut reason = requirement.reason;
    if let Some(entry) = selected_by {
        reason.text = format!("{} (selected by webhook rule {entry})", reason.text);
    }
    if !requirement.required {
        return Verdict::new(Outcome::Skipped, reason, requirement.warnings);
    }

    match inject::inject(pod, settings, &namespace, ns_annotations) {
        Ok(injected) => Verdict {
            mutated: Some(injected),
            ..Verdict::new(Outcome::Injected, reason, requirement.warnings)
        },
        Err(e) => Verdict::new(
            Outcome::Rejected,
            Reason::new("injection-failed", format!("sidecar injection failed: {e}")),
            requirement.warnings,
        ),
    }
}

/// Parses the `validate` payload `{"request": ..., "settings": ...}`.
pub fn parse_payload(payload: &[u8]) -> Result<(AdmissionRequest, Settings), String> {
    #[derive(Deserialize)]
    struct Payload {
        #[serde(default)]
        request: Option<AdmissionRequest>,
        #[serde(default)]
        settings: Value,
    }
    let p: Payload =
        serde_json::from_slice(payload).map_err(|e| format!("malformed validate request: {e}"))?;
    let request = p
        .request
        .ok_or_else(|| "malformed validate request: no \"request\"".to_string())?;
    let settings =
        Settings::from_value(&p.settings).map_err(|e| format!("invalid settings: {e}"))?;
    Ok((request, settings))
}
