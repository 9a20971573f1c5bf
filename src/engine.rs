//! The whole evaluation of one admission request, as plain data in and out: the request's
//! Pod, the settings and the Namespace lookup in, a [`Verdict`] out. The Kubewarden entry
//! point (lib.rs) supplies the lookup as a closure, so this module never calls the host and
//! runs the same natively, in benchmarks and in the browser build (`web/`).
//!
//! A Pod's way through: [`evaluate`] admits the request ([`Subject::admit`]: a readable Pod
//! creation, and its Namespace when the policy looks it up), decides (`decision`: stages A
//! and B), then injects (`inject`) or, in check mode, compares (`check`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::check;
use crate::decision::{self, Decision, NamespaceFacts, Outcome, PodFacts, Reason, Trail};
use crate::inject;
use crate::json::{Map, Value};
use crate::pod;
use crate::settings::{Action, NamespaceSelection, Settings};

/// The fields of a Kubernetes AdmissionRequest the policy reads. The Pod's strings are
/// borrowed from the request's text.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct AdmissionRequest<'a> {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub operation: String,
    pub namespace: String,
    pub name: String,
    #[serde(borrow)]
    pub object: Value<'a>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

/// What the policy answers; `protocol` turns it into Kubewarden's ValidationResponse.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict<'a> {
    pub outcome: Outcome,
    pub reason: Reason,
    pub warnings: Vec<String>,
    /// The injected Pod, when injecting.
    pub mutated: Option<Value<'a>>,
    /// The rejection message, when rejecting.
    pub message: Option<String>,
    /// The HTTP code of a rejection, when it has one (400: the request cannot be read).
    pub code: Option<u16>,
    /// The rules of the decision, in the order they were consulted.
    pub trail: Trail,
    /// The webhook entry that selected the Pod (lookup mode).
    pub selected_by: Option<&'static str>,
}

impl Verdict<'_> {
    /// The verdict, owning what it holds (the injected Pod borrows from the request's text).
    pub fn into_owned(self) -> Verdict<'static> {
        Verdict {
            mutated: self.mutated.map(Value::into_owned),
            ..self
        }
    }

    pub fn accepted(&self) -> bool {
        self.outcome.accepted()
    }

    /// A verdict without a mutation; a rejection's message is the reason's text.
    pub fn new(outcome: Outcome, reason: Reason, warnings: Vec<String>) -> Self {
        let message = (outcome == Outcome::Rejected).then(|| reason.text.clone());
        Verdict {
            outcome,
            reason,
            warnings,
            mutated: None,
            message,
            code: None,
            trail: Trail::default(),
            selected_by: None,
        }
    }

    /// A verdict on a decision, with its reason, warnings and trail; `outcome` is the
    /// decision's or, in check mode, the check's.
    pub fn of_decision(outcome: Outcome, decision: Decision) -> Self {
        Verdict {
            trail: decision.trail,
            selected_by: decision.selected_by,
            ..Verdict::new(outcome, decision.reason, decision.warnings)
        }
    }

    /// A rejection of input that cannot be read (HTTP 400).
    pub fn bad_input(reason: Reason) -> Self {
        Verdict {
            code: Some(400),
            ..Verdict::new(Outcome::Rejected, reason, Vec::new())
        }
    }

    /// `auditAnnotations`: the outcome, the `code: text` reason and, when there was a
    /// decision, its trail in one line.
    pub fn audit_annotations(&self) -> BTreeMap<String, String> {
        // Inserted, not built from an array: that would add another sort to the module.
        let mut annotations = BTreeMap::new();
        annotations.insert("outcome".to_string(), self.outcome.as_str().to_string());
        annotations.insert("reason".to_string(), self.reason.to_string());
        if !self.trail.0.is_empty() {
            annotations.insert("trail".to_string(), self.trail.compact());
        }
        annotations
    }
}

/// Evaluates a request. `lookup_namespace` is called at most once, with the namespace name,
/// and only in `lookup` mode.
pub fn evaluate<'a>(
    request: AdmissionRequest<'a>,
    settings: &'a Settings,
    lookup_namespace: impl FnOnce(&str) -> Result<serde_json::Value, String>,
) -> Verdict<'a> {
    let subject = match Subject::admit(request, settings, lookup_namespace) {
        Ok(subject) => subject,
        Err(verdict) => return *verdict,
    };
    let decision = subject.decide(settings);
    match settings.action {
        Action::Inject => subject.inject(decision, settings),
        Action::Check => check::check(
            &subject.pod,
            &subject.namespace,
            subject.namespace_annotations(),
            decision,
            settings,
        ),
    }
}

/// [`evaluate`] for a request held as serde_json's value (tests, examples, benches): the
/// request is written out and read as the policy reads it. `Err` when it is not an
/// AdmissionRequest, or holds text the engine could not read (the policy answers 400 then).
pub fn evaluate_value(
    request: &serde_json::Value,
    settings: &Settings,
    lookup_namespace: impl FnOnce(&str) -> Result<serde_json::Value, String>,
) -> Result<Verdict<'static>, String> {
    let text = request.to_string();
    crate::json::take_unreadable();
    let request: AdmissionRequest =
        serde_json::from_str(&text).map_err(|e| format!("not an AdmissionRequest: {e}"))?;
    let verdict = evaluate(request, settings, lookup_namespace).into_owned();
    match crate::json::take_unreadable() {
        None => Ok(verdict),
        Some(why) => Err(format!("the request cannot be read: {why}")),
    }
}

/// The error the module's Namespace lookup (lib.rs) returns when the host answers
/// `get_resource` with the error `message`: the Kubewarden SDK's `Error::HostCall` around
/// waPC's host error. For callers that stand in for the host (the browser build). Written
/// out rather than made with the SDK's types, which would link the waPC guest (and its
/// imports) into the browser's module; the test below holds it to the SDK's words.
pub fn lookup_host_error(message: &str) -> String {
    format!("error invoking host capability kubernetes.get_resource: Host error: {message}")
}

/// Injection only ever handles Pod creations.
fn is_pod_create(kind: &GroupVersionKind, operation: &str) -> bool {
    kind.kind == "Pod" && kind.group.is_empty() && operation == "CREATE"
}

/// A Pod creation the policy decides on: the Pod, its namespace, and the Namespace object
/// when the policy looked it up.
struct Subject<'a> {
    pod: Value<'a>,
    namespace: String,
    namespace_object: Option<Value<'static>>,
}

impl<'a> Subject<'a> {
    /// The request's Pod, or the verdict on a request that is not a readable Pod creation
    /// (or whose Namespace cannot be read).
    fn admit(
        request: AdmissionRequest<'a>,
        settings: &Settings,
        lookup_namespace: impl FnOnce(&str) -> Result<serde_json::Value, String>,
    ) -> Result<Self, Box<Verdict<'a>>> {
        if !is_pod_create(&request.kind, &request.operation) {
            return Err(Box::new(Verdict::new(
                Outcome::NotSelected,
                Reason::new("not-pod-create", not_a_pod_creation(&request)),
                Vec::new(),
            )));
        }
        let pod = request.object;
        if pod.is_null() {
            return Err(Box::new(Verdict::new(
                Outcome::NotSelected,
                Reason::new("no-object", "the request carries no Pod"),
                Vec::new(),
            )));
        }
        if let Err(e) = pod::check_shape(&pod) {
            return Err(Box::new(Verdict::bad_input(Reason::new(
                "invalid-pod",
                format!("the Pod cannot be read: {e}"),
            ))));
        }
        // Istio fills an empty pod namespace from the request (pods created by controllers).
        let namespace = match pod::metadata_str(&pod, "namespace") {
            "" => request.namespace,
            ns => ns.to_string(),
        };
        let namespace_object = match settings.namespace_selection {
            NamespaceSelection::Webhook => None,
            NamespaceSelection::Lookup => match lookup_namespace(&namespace) {
                Ok(ns) => Some(Value::from_serde(&ns)),
                Err(e) => {
                    return Err(Box::new(Verdict::new(
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
                    )));
                }
            },
        };
        Ok(Subject {
            pod,
            namespace,
            namespace_object,
        })
    }

    fn namespace_metadata(&self, field: &str) -> Option<&Map<'static>> {
        self.namespace_object
            .as_ref()
            .and_then(|ns| ns.get("metadata"))
            .and_then(|m| m.get(field))
            .and_then(Value::as_object)
    }

    /// The Namespace's annotations (OpenShift's UID ranges), when it was looked up.
    fn namespace_annotations(&self) -> Option<&Map<'static>> {
        self.namespace_metadata("annotations")
    }

    /// Stages A (when the policy looked the Namespace up) and B.
    fn decide(&self, settings: &Settings) -> Decision {
        let facts = PodFacts {
            labels: pod::metadata_map(&self.pod, "labels"),
            annotations: pod::metadata_map(&self.pod, "annotations"),
            host_network: pod::host_network(&self.pod),
            namespace: &self.namespace,
        };
        let namespace = self.namespace_object.as_ref().map(|_| NamespaceFacts {
            name: &self.namespace,
            labels: self.namespace_metadata("labels"),
        });
        decision::decide(settings, namespace.as_ref(), &facts)
    }

    /// Inject mode: the injected Pod when the decision says so.
    fn inject(self, decision: Decision, settings: &'a Settings) -> Verdict<'a> {
        if !decision.injects() {
            return Verdict::of_decision(decision.outcome, decision);
        }
        let namespace_annotations = self.namespace_annotations().cloned();
        match inject::inject(
            self.pod,
            settings,
            &self.namespace,
            namespace_annotations.as_ref(),
        ) {
            Ok(injected) => Verdict {
                mutated: Some(injected),
                ..Verdict::of_decision(Outcome::Injected, decision)
            },
            Err(e) => {
                let reason =
                    Reason::new("injection-failed", format!("sidecar injection failed: {e}"));
                Verdict::of_decision(Outcome::Rejected, Decision { reason, ..decision })
            }
        }
    }
}

/// Why a request is not for the injector: `UPDATE of Pod is not a Pod creation`.
fn not_a_pod_creation(request: &AdmissionRequest) -> String {
    let operation = match request.operation.as_str() {
        "" => "request",
        op => op,
    };
    let kind = match request.kind.kind.as_str() {
        "" => "an unknown kind",
        kind => kind,
    };
    format!("{operation} of {kind} is not a Pod creation")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluate_value_refuses_a_request_with_text_the_engine_cannot_read() {
        // A container's port holding lists nested deeper than the engine reads: kept as
        // text while the request is read, refused when the template reads the ports.
        let mut deep = serde_json::json!(9080);
        for _ in 0..200 {
            deep = serde_json::json!([deep]);
        }
        let deep = serde_json::json!([{"containerPort": 9080, "x": deep}]);
        let request = serde_json::json!({
            "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE", "namespace": "shop",
            "object": {"metadata": {"name": "p"},
                       "spec": {"containers": [{"name": "app", "ports": deep}]}}});
        let settings =
            Settings::from_value(&serde_json::json!({"namespaceSelection": "webhook"})).unwrap();
        let e = evaluate_value(&request, &settings, |_| Err("no cluster".into())).unwrap_err();
        assert!(e.contains("nested more than 128"), "{e}");
        // The note is taken: the next request is not refused for it.
        let mut fine = request.clone();
        fine["object"]["spec"]["containers"][0]["ports"] =
            serde_json::json!([{"containerPort": 9080}]);
        assert!(evaluate_value(&fine, &settings, |_| Err("no cluster".into())).is_ok());
    }

    #[test]
    fn a_lookup_host_error_is_the_sdks_words() {
        use kubewarden_policy_sdk::wapc_guest::errors;
        let message = "Cannot find v1/Namespace named 'shop'";
        // As `kubernetes::get_resource` wraps what `wapc_guest::host_call` returns.
        let sdk = kubewarden_policy_sdk::Error::HostCall {
            operation: "kubernetes.get_resource".to_string(),
            source: Box::new(errors::new(errors::ErrorKind::HostError(
                message.as_bytes().to_vec(),
            ))),
        };
        assert_eq!(lookup_host_error(message), sdk.to_string());
    }
}
