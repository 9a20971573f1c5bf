//! The whole evaluation of one admission request, as plain data in and out. The Kubewarden
//! entry point (lib.rs) supplies the Namespace lookup as a closure, so this module never
//! calls the host and runs the same natively, in benchmarks and in a browser build.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::check;
use crate::decision::{self, Decision, NamespaceFacts, Outcome, PodFacts, Reason, Trail};
use crate::inject::{self, Containers};
use crate::pod;
use crate::pod_text;
use crate::prerender::Prerendered;
use crate::response;
use crate::settings::{Action, NamespaceSelection, Settings};

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
    /// The HTTP code of a rejection, when it has one (400: the request cannot be read).
    pub code: Option<u16>,
    /// The rules of the decision, in the order they were consulted.
    pub trail: Trail,
    /// The webhook entry that selected the Pod (lookup mode).
    pub selected_by: Option<&'static str>,
    /// Injected containers kept aside, their placeholders in `mutated` (the `validate`
    /// path only; see `prerender`).
    pub prerendered: Prerendered,
}

impl Verdict {
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
            prerendered: Prerendered::default(),
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
        let mut annotations = BTreeMap::from([
            ("outcome".to_string(), self.outcome.as_str().to_string()),
            ("reason".to_string(), self.reason.to_string()),
        ]);
        if !self.trail.0.is_empty() {
            annotations.insert("trail".to_string(), self.trail.compact());
        }
        annotations
    }
}

/// Injection only ever handles Pod creations.
fn is_pod_create(kind: &GroupVersionKind, operation: &str) -> bool {
    kind.kind == "Pod" && kind.group.is_empty() && operation == "CREATE"
}

/// Evaluates a request whose settings are already parsed. `lookup_namespace` is called at
/// most once, with the namespace name, and only in `lookup` mode.
pub fn evaluate(
    request: AdmissionRequest,
    settings: &Settings,
    lookup_namespace: impl FnOnce(&str) -> Result<Value, String>,
) -> Verdict {
    evaluate_with(request, settings, lookup_namespace, Containers::AsValues)
}

/// [`evaluate`], the injected containers returned as `containers` says.
fn evaluate_with(
    request: AdmissionRequest,
    settings: &Settings,
    lookup_namespace: impl FnOnce(&str) -> Result<Value, String>,
    containers: Containers,
) -> Verdict {
    let subject = match Subject::admit(request, settings, lookup_namespace) {
        Ok(subject) => subject,
        Err(verdict) => return *verdict,
    };
    let decision = subject.decide(settings);
    match settings.action {
        Action::Inject => subject.inject(decision, settings, containers),
        Action::Check => check::check(
            &subject.pod,
            &subject.namespace,
            subject.namespace_annotations(),
            decision,
            settings,
        ),
    }
}

/// A Pod creation the policy decides on: the Pod, its namespace, and the Namespace object
/// when the policy looked it up.
struct Subject {
    pod: Value,
    namespace: String,
    namespace_object: Option<Value>,
}

impl Subject {
    /// The request's Pod, or the verdict on a request that is not a readable Pod creation
    /// (or whose Namespace cannot be read).
    fn admit(
        request: AdmissionRequest,
        settings: &Settings,
        lookup_namespace: impl FnOnce(&str) -> Result<Value, String>,
    ) -> Result<Subject, Box<Verdict>> {
        if !is_pod_create(&request.kind, &request.operation) {
            return Err(Box::new(Verdict::new(
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
                Ok(ns) => Some(ns),
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

    fn namespace_metadata(&self, field: &str) -> Option<&Map<String, Value>> {
        self.namespace_object
            .as_ref()
            .and_then(|ns| ns.get("metadata"))
            .and_then(|m| m.get(field))
            .and_then(Value::as_object)
    }

    /// The Namespace's annotations (OpenShift's UID ranges), when it was looked up.
    fn namespace_annotations(&self) -> Option<&Map<String, Value>> {
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
    fn inject(self, decision: Decision, settings: &Settings, containers: Containers) -> Verdict {
        if !decision.injects() {
            return Verdict::of_decision(decision.outcome, decision);
        }
        let namespace_annotations = self.namespace_annotations().cloned();
        match inject::inject_with(
            self.pod,
            settings,
            &self.namespace,
            namespace_annotations.as_ref(),
            containers,
        ) {
            Ok((injected, prerendered)) => Verdict {
                mutated: Some(injected),
                prerendered,
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

/// Parses the `validate` payload `{"request": ..., "settings": ...}`.
pub fn parse_payload(payload: &[u8]) -> Result<(AdmissionRequest, Settings), String> {
    parse_payload_with(payload, Settings::from_value)
}

/// Parses the payload; `settings` turns the settings JSON into what the caller needs.
fn parse_payload_with<S>(
    payload: &[u8],
    settings: impl FnOnce(&Value) -> Result<S, String>,
) -> Result<(AdmissionRequest, S), String> {
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
    let settings = settings(&p.settings).map_err(|e| format!("invalid settings: {e}"))?;
    Ok((request, settings))
}

/// Settings parsed once per distinct settings text: Kubewarden sends the policy's settings
/// with every request, unchanged for the policy's lifetime.
#[derive(Default)]
pub struct SettingsCache {
    text: Option<String>,
    settings: Settings,
    fills: u64,
}

impl SettingsCache {
    /// How many times the cache was filled (a caller that allocates per call can tell
    /// whether the cache was filled during one, and [`refresh`](Self::refresh) it after).
    pub fn fills(&self) -> u64 {
        self.fills
    }

    /// Parses the cached text again into freshly allocated settings.
    pub fn refresh(&mut self) {
        if let Some(text) = self.text.take() {
            let text = text.as_str().to_owned();
            let settings = serde_json::from_str::<Value>(&text)
                .map_err(|e| e.to_string())
                .and_then(|v| Settings::from_value(&v));
            if let Ok(settings) = settings {
                self.settings = settings;
                self.text = Some(text);
            }
        }
    }

    /// The settings for this raw text (`None` or `null` for the defaults).
    pub fn get(&mut self, raw: Option<&RawValue>) -> Result<&Settings, String> {
        let text = raw.map_or("null", RawValue::get);
        if self.text.as_deref() != Some(text) {
            let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
            self.settings = Settings::from_value(&value)?;
            self.text = Some(text.to_string());
            self.fills += 1;
        }
        Ok(&self.settings)
    }
}

/// The `validate` payload with the Pod and the settings left as text. The types are named
/// as `parse_payload`'s, for the same error messages.
mod text {
    use super::*;

    #[derive(Deserialize)]
    pub struct Payload<'a> {
        #[serde(default, borrow)]
        pub request: Option<AdmissionRequest<'a>>,
        #[serde(default, borrow)]
        pub settings: Option<&'a RawValue>,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase", default)]
    pub struct AdmissionRequest<'a> {
        pub uid: String,
        pub kind: GroupVersionKind,
        pub operation: String,
        pub namespace: String,
        pub name: String,
        #[serde(borrow)]
        pub object: Option<pod_text::PodParts<'a>>,
    }

    impl AdmissionRequest<'_> {
        /// The request with the engine's Pod in place of the text parts.
        pub fn into_request(self, object: Value) -> super::AdmissionRequest {
            super::AdmissionRequest {
                uid: self.uid,
                kind: self.kind,
                operation: self.operation,
                namespace: self.namespace,
                name: self.name,
                object,
            }
        }
    }
}

/// The whole `validate` call: payload bytes in, Kubewarden `ValidationResponse` JSON out.
/// The Pod is split ([`pod_text::PodParts`]) so that what injection never reads is copied
/// through as text; the answer is the same as `parse_payload` + `evaluate` + serializing.
pub fn validate(
    payload: &[u8],
    settings: &mut SettingsCache,
    lookup_namespace: impl FnOnce(&str) -> Result<Value, String>,
) -> Vec<u8> {
    validate_disposing(payload, settings, lookup_namespace, Dispose::Drop)
}

/// [`validate`] for a caller that frees the whole call's memory at once (the wasm module's
/// per-call arena, `call_arena`): unless `all_in_arena()` says otherwise when the answer is
/// written, the injected Pod and the rest of the working data are not dropped one node at
/// a time, which is pure cost there. Natively this leaks: use [`validate`].
pub fn validate_in_arena(
    payload: &[u8],
    settings: &mut SettingsCache,
    lookup_namespace: impl FnOnce(&str) -> Result<Value, String>,
    all_in_arena: impl Fn() -> bool,
) -> Vec<u8> {
    validate_disposing(
        payload,
        settings,
        lookup_namespace,
        Dispose::ForgetIf(&all_in_arena),
    )
}

#[derive(Clone, Copy)]
enum Dispose<'f> {
    Drop,
    /// Forget the working data when the function says everything is in the arena.
    ForgetIf(&'f dyn Fn() -> bool),
}

fn validate_disposing(
    payload: &[u8],
    settings: &mut SettingsCache,
    lookup_namespace: impl FnOnce(&str) -> Result<Value, String>,
    dispose: Dispose<'_>,
) -> Vec<u8> {
    // UTF-8 checked once for the whole payload: strings and raw text are then borrowed
    // without checking each again.
    let parsed: Result<text::Payload, _> = match std::str::from_utf8(payload) {
        Ok(text) => serde_json::from_str(text).map_err(|_| ()),
        Err(_) => Err(()),
    };
    let parsed = match parsed {
        Ok(p) => p,
        // Invalid UTF-8, or an error the raw scan words differently: the whole parse
        // reports it.
        Err(()) => {
            return match parse_payload(payload) {
                Ok((request, settings)) => reference(request, &settings, lookup_namespace),
                Err(message) => response::malformed(&message),
            };
        }
    };
    let Some(mut request) = parsed.request else {
        return response::malformed("malformed validate request: no \"request\"");
    };
    let settings = match settings.get(parsed.settings) {
        Ok(s) => s,
        Err(e) => return response::malformed(&format!("invalid settings: {e}")),
    };
    // Check mode reads the whole Pod: it is compared with its re-injection, field by field.
    if settings.action == Action::Check {
        return reference_from(payload, settings, lookup_namespace);
    }
    let is_pod_create = is_pod_create(&request.kind, &request.operation);
    let object = request.object.take().filter(|_| is_pod_create);
    let (pod, rest) = match object.map(|o| o.assemble(settings)) {
        None => (Value::Null, pod_text::Rest::default()),
        Some(Some(split)) => split,
        // Not splittable (custom templates, or text a Value could not hold such as a lone
        // surrogate escape or deep nesting): the whole parse answers, errors reported with
        // their position in the payload.
        Some(None) => return reference_from(payload, settings, lookup_namespace),
    };
    // The lookup may be needed twice (see `Lost` below); the host is asked once.
    let mut lookup = Some(lookup_namespace);
    let mut answer = None;
    let mut cached_lookup = |name: &str| {
        if let Some(f) = lookup.take() {
            answer = Some(f(name));
        }
        answer.clone().unwrap_or_else(|| Err("no namespace".into()))
    };
    let verdict = evaluate_with(
        request.into_request(pod),
        settings,
        &mut cached_lookup,
        Containers::Prerendered,
    );
    let mut out = Vec::with_capacity(payload.len() * 2);
    match response::write(&mut out, &verdict, &rest) {
        Ok(()) => {
            if let Dispose::ForgetIf(all_in_arena) = dispose
                && all_in_arena()
            {
                std::mem::forget(verdict);
                std::mem::forget(rest);
            }
            out
        }
        // Something kept as text had no place in the result: answer from a whole parse.
        Err(pod_text::Lost) => reference_from(payload, settings, cached_lookup),
    }
}

/// `validate` without the text split: `parse_payload` + `evaluate`, settings from the cache.
fn reference_from(
    payload: &[u8],
    settings: &Settings,
    lookup_namespace: impl FnOnce(&str) -> Result<Value, String>,
) -> Vec<u8> {
    match parse_payload_with(payload, |_| Ok(())) {
        Ok((request, ())) => reference(request, settings, lookup_namespace),
        Err(message) => response::malformed(&message),
    }
}

fn reference(
    request: AdmissionRequest,
    settings: &Settings,
    lookup_namespace: impl FnOnce(&str) -> Result<Value, String>,
) -> Vec<u8> {
    let verdict = evaluate(request, settings, lookup_namespace);
    let mut out = Vec::new();
    // Cannot lose anything: there is no text to place.
    let _ = response::write(&mut out, &verdict, &pod_text::Rest::default());
    out
}
