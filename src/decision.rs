//! Whether a Pod gets a sidecar: stage A (Istio's webhook selectors, normally applied by the
//! API server) and stage B (Istio's `injectRequired`). Plain functions over plain data.

use crate::annotations::INJECT;
use crate::json::{Map, Value};
use crate::settings::{Policy, SelectorList, Settings};

/// Namespaces Istio never injects (`IgnoredNamespaces`).
pub const IGNORED_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];

pub const NS_INJECTION_LABEL: &str = "istio-injection";
pub const REV_LABEL: &str = "istio.io/rev";
pub const NS_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// What the policy did, as written to the `outcome` audit annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Injected,
    Skipped,
    NotSelected,
    Rejected,
    /// Check mode: injected, and injecting again would change nothing in meaning.
    SidecarCurrent,
    /// Check mode: the injector would inject the Pod, which has no sidecar.
    SidecarMissing,
    /// Check mode: the Pod carries an injected sidecar the injector would not give it now.
    SidecarUnexpected,
    /// Check mode: injecting the Pod again would change its injected parts.
    SidecarOutdated,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Injected => "injected",
            Outcome::Skipped => "skipped",
            Outcome::NotSelected => "not-selected",
            Outcome::Rejected => "rejected",
            Outcome::SidecarCurrent => "sidecar-current",
            Outcome::SidecarMissing => "sidecar-missing",
            Outcome::SidecarUnexpected => "sidecar-unexpected",
            Outcome::SidecarOutdated => "sidecar-outdated",
        }
    }

    /// Whether the Pod is admitted (in check mode: whether it passes).
    pub fn accepted(self) -> bool {
        !matches!(
            self,
            Outcome::Rejected
                | Outcome::SidecarMissing
                | Outcome::SidecarUnexpected
                | Outcome::SidecarOutdated
        )
    }
}

/// A stable machine code plus a short human explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: &'static str,
    pub text: String,
}

impl Reason {
    pub fn new(code: &'static str, text: impl Into<String>) -> Self {
        Reason {
            code,
            text: text.into(),
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.text)
    }
}

/// The labels and facts of a Pod that the decision reads (borrowed for `'a` from a Pod
/// whose own lifetime is `'v`).
#[derive(Debug, Clone, Copy)]
pub struct PodFacts<'a, 'v> {
    pub labels: Option<&'a Map<'v>>,
    pub annotations: Option<&'a Map<'v>>,
    pub host_network: bool,
    /// `metadata.namespace`, or the request's namespace when the Pod has none.
    pub namespace: &'a str,
}

impl PodFacts<'_, '_> {
    fn label(&self, key: &str) -> Option<&str> {
        str_entry(self.labels, key)
    }
    fn annotation(&self, key: &str) -> Option<&str> {
        str_entry(self.annotations, key)
    }
}

/// The Namespace as the API server sees it when matching webhook selectors.
#[derive(Debug, Clone, Copy)]
pub struct NamespaceFacts<'a, 'v> {
    pub name: &'a str,
    pub labels: Option<&'a Map<'v>>,
}

impl NamespaceFacts<'_, '_> {
    fn label(&self, key: &str) -> Option<&str> {
        str_entry(self.labels, key)
    }
}

fn str_entry<'a>(map: Option<&'a Map>, key: &str) -> Option<&'a str> {
    map.and_then(|m| m.get(key)).and_then(Value::as_str)
}

/// Stage A: which of Istio's MutatingWebhookConfiguration entries would send this Pod to
/// the injector. Returns the entry name, or why none does.
pub fn select(
    settings: &Settings,
    ns: &NamespaceFacts,
    pod: &PodFacts,
) -> Result<&'static str, Reason> {
    select_traced(settings, ns, pod, &mut Trail::default())
}

/// [`select`], each entry consulted recorded in `trail`.
fn select_traced(
    settings: &Settings,
    ns: &NamespaceFacts,
    pod: &PodFacts,
    trail: &mut Trail,
) -> Result<&'static str, Reason> {
    let rev = settings.revision_or_default();
    let default_revision = settings.revision.is_empty();
    let ns_injection = ns.label(NS_INJECTION_LABEL);
    let ns_rev = ns.label(REV_LABEL);
    let pod_inject = pod.label(INJECT);
    let pod_rev = pod.label(REV_LABEL);
    let pod_not_false = pod_inject != Some("false");

    // The entries in the order Istio's chart lists them, each with its selectors.
    let mut entries: Vec<(&'static str, bool)> = vec![
        // rev.namespace: istio.io/rev In [rev], istio-injection DoesNotExist; pod inject NotIn [false]
        (
            "rev.namespace",
            ns_rev == Some(rev) && ns_injection.is_none() && pod_not_false,
        ),
        // rev.object: namespace has neither label; pod inject NotIn [false], pod istio.io/rev In [rev]
        (
            "rev.object",
            ns_rev.is_none() && ns_injection.is_none() && pod_not_false && pod_rev == Some(rev),
        ),
    ];
    if default_revision {
        // namespace: istio-injection In [enabled]; pod inject NotIn [false]
        entries.push((
            "namespace",
            ns_injection == Some("enabled") && pod_not_false,
        ));
        // object: namespace has neither label; pod inject In [true], pod istio.io/rev DoesNotExist
        entries.push((
            "object",
            ns_injection.is_none()
                && ns_rev.is_none()
                && pod_inject == Some("true")
                && pod_rev.is_none(),
        ));
        // auto (enableNamespacesByDefault): no namespace labels, namespace not a system one,
        // pod has neither the inject label nor a revision label.
        if settings.enable_namespaces_by_default {
            entries.push((
                "auto",
                ns_injection.is_none()
                    && ns_rev.is_none()
                    && !IGNORED_NAMESPACES.contains(&ns.label(NS_NAME_LABEL).unwrap_or(ns.name))
                    && pod_inject.is_none()
                    && pod_rev.is_none(),
            ));
        }
    }
    for (entry, matches) in entries {
        trail.step(
            Stage::Selection,
            entry,
            if matches { "match" } else { "no match" },
            matches,
        );
        if matches {
            return Ok(entry);
        }
    }
    Err(not_selected_reason(settings, ns, pod))
}

/// Explains why no webhook entry matched, most specific cause first.
fn not_selected_reason(settings: &Settings, ns: &NamespaceFacts, pod: &PodFacts) -> Reason {
    let rev = settings.revision_or_default();
    if pod.label(INJECT) == Some("false") {
        return Reason::new(
            "pod-label-false",
            "pod label sidecar.istio.io/inject=false opts out of injection",
        );
    }
    if let Some(v) = ns.label(NS_INJECTION_LABEL) {
        if v != "enabled" {
            return Reason::new(
                "namespace-injection-disabled",
                format!("namespace {} has label istio-injection={v}", ns.name),
            );
        }
        return Reason::new(
            "namespace-other-revision",
            format!(
                "namespace {} has label istio-injection=enabled, which selects the default revision, not revision {rev}",
                ns.name
            ),
        );
    }
    if let Some(v) = ns.label(REV_LABEL) {
        return Reason::new(
            "namespace-other-revision",
            format!(
                "namespace {} has label istio.io/rev={v}, which selects another revision than {rev}",
                ns.name
            ),
        );
    }
    if let Some(v) = pod.label(REV_LABEL) {
        return Reason::new(
            "pod-other-revision",
            format!("pod label istio.io/rev={v} selects another revision than {rev}"),
        );
    }
    if settings.enable_namespaces_by_default
        && settings.revision.is_empty()
        && pod.label(INJECT).is_none()
    {
        return Reason::new(
            "ignored-namespace",
            format!(
                "namespace {} is a system namespace, never injected by default",
                ns.name
            ),
        );
    }
    if let Some(v) = pod.label(INJECT)
        && v != "true"
    {
        return Reason::new(
            "not-labelled",
            format!(
                "namespace {} is not labelled for injection and pod label sidecar.istio.io/inject={v:?} is not \"true\"",
                ns.name
            ),
        );
    }
    Reason::new(
        "not-labelled",
        format!(
            "neither namespace {} (istio-injection=enabled, istio.io/rev={rev}) nor the pod (label sidecar.istio.io/inject=true or istio.io/rev={rev}) opts in to injection",
            ns.name
        ),
    )
}

/// The two stages of the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Stage A: Istio's webhook entries (`namespaceSelection: lookup` only).
    Selection,
    /// Stage B: Istio's `injectRequired`.
    InjectRequired,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Selection => "A",
            Stage::InjectRequired => "B",
        }
    }
}

/// One rule of the decision, as it was consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub stage: Stage,
    /// A webhook entry (`rev.namespace`, `rev.object`, `namespace`, `object`, `auto`) in
    /// stage A; a check of `injectRequired` (`host-network`, `ignored-namespace`,
    /// `inject-label`, `inject-annotation`, `never-inject-selector`,
    /// `always-inject-selector`, `policy`) in stage B.
    pub rule: &'static str,
    /// What it found: `match` / `no match`, `yes` / `no`, a value, `absent`.
    pub result: String,
    /// This rule decided: the entry that selected the Pod, or the check whose answer
    /// `injectRequired` gave.
    pub decided: bool,
}

/// The rules of a decision in the order they were consulted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trail(pub Vec<Step>);

impl Trail {
    fn step(&mut self, stage: Stage, rule: &'static str, result: impl Into<String>, decided: bool) {
        self.0.push(Step {
            stage,
            rule,
            result: result.into(),
            decided,
        });
    }

    /// Marks the stage-B step named `rule` as the one that decided.
    fn decided(&mut self, rule: &str) {
        if let Some(step) = self
            .0
            .iter_mut()
            .rev()
            .find(|s| s.stage == Stage::InjectRequired && s.rule == rule)
        {
            step.decided = true;
        }
    }

    /// One line for an audit annotation: `A: rule=result, ...; B: ...`, the deciding rule
    /// marked with `*`.
    pub fn compact(&self) -> String {
        let mut out = String::new();
        for stage in [Stage::Selection, Stage::InjectRequired] {
            let steps: Vec<String> = self
                .0
                .iter()
                .filter(|s| s.stage == stage)
                .map(|s| {
                    format!(
                        "{}={}{}",
                        s.rule,
                        s.result,
                        if s.decided { "*" } else { "" }
                    )
                })
                .collect();
            if steps.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(stage.as_str());
            out.push_str(": ");
            out.push_str(&steps.join(", "));
        }
        out
    }
}

/// What the injector decides for a Pod: stages A and B.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `Injected` when the Pod is to be injected, else `NotSelected` (stage A) or `Skipped`
    /// (stage B).
    pub outcome: Outcome,
    pub reason: Reason,
    pub warnings: Vec<String>,
    /// Every rule consulted, in order.
    pub trail: Trail,
    /// The webhook entry that selected the Pod (stage A, lookup mode).
    pub selected_by: Option<&'static str>,
}

impl Decision {
    pub fn injects(&self) -> bool {
        self.outcome == Outcome::Injected
    }
}

/// Stages A and B. `namespace` is the Pod's Namespace when the policy applies Istio's webhook
/// selectors itself (`namespaceSelection: lookup`), `None` when the webhook's own selectors
/// already did stage A.
pub fn decide(settings: &Settings, namespace: Option<&NamespaceFacts>, pod: &PodFacts) -> Decision {
    let mut trail = Trail::default();
    let selected_by = match namespace.map(|ns| select_traced(settings, ns, pod, &mut trail)) {
        None => None,
        Some(Ok(entry)) => Some(entry),
        Some(Err(reason)) => {
            return Decision {
                outcome: Outcome::NotSelected,
                reason,
                warnings: Vec::new(),
                trail,
                selected_by: None,
            };
        }
    };
    let requirement = inject_required(settings, pod);
    trail.0.extend(requirement.trail.0);
    let mut reason = requirement.reason;
    if let Some(entry) = selected_by {
        reason.text = format!("{} (selected by webhook rule {entry})", reason.text);
    }
    Decision {
        outcome: if requirement.required {
            Outcome::Injected
        } else {
            Outcome::Skipped
        },
        reason,
        warnings: requirement.warnings,
        trail,
        selected_by,
    }
}

/// The result of stage B.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub required: bool,
    pub reason: Reason,
    pub warnings: Vec<String>,
    /// The checks consulted, in order.
    pub trail: Trail,
}

/// Stage B, Istio's `injectRequired`, in Istio's order.
pub fn inject_required(settings: &Settings, pod: &PodFacts) -> Requirement {
    let mut warnings = Vec::new();
    let mut trail = Trail::default();
    let b = Stage::InjectRequired;
    let done = |required: bool, reason: Reason, warnings: Vec<String>, mut trail: Trail| {
        trail.decided(rule_of(reason.code));
        Requirement {
            required,
            reason,
            warnings,
            trail,
        }
    };

    trail.step(b, "host-network", yes_no(pod.host_network), false);
    if pod.host_network {
        return done(
            false,
            Reason::new("host-network", "pod uses hostNetwork"),
            warnings,
            trail,
        );
    }
    let ignored = IGNORED_NAMESPACES.contains(&pod.namespace);
    trail.step(b, "ignored-namespace", yes_no(ignored), false);
    if ignored {
        return done(
            false,
            Reason::new(
                "ignored-namespace",
                format!("namespace {} is never injected", pod.namespace),
            ),
            warnings,
            trail,
        );
    }

    // The label wins over the (deprecated) annotation whenever it is present, even empty.
    let label = pod.labels.and_then(|l| l.get(INJECT));
    trail.step(
        b,
        "inject-label",
        shown(label.map(|v| v.as_str().unwrap_or_default())),
        false,
    );
    let (value, source) = match label {
        Some(v) => (v.as_str().unwrap_or_default(), "label"),
        None => {
            let annotation = pod.annotation(INJECT);
            trail.step(b, "inject-annotation", shown(annotation), false);
            (annotation.unwrap_or_default(), "annotation")
        }
    };
    // `explicit` is Some(inject) when the pod decides; None means "use the default".
    let mut explicit: Option<(bool, Reason)> = match value {
        "true" => Some((
            true,
            Reason::new(
                if source == "label" {
                    "pod-label-true"
                } else {
                    "pod-annotation-true"
                },
                format!("pod {source} sidecar.istio.io/inject=true"),
            ),
        )),
        "false" => Some((
            false,
            Reason::new(
                if source == "label" {
                    "pod-label-false"
                } else {
                    "pod-annotation-false"
                },
                format!("pod {source} sidecar.istio.io/inject=false"),
            ),
        )),
        "" => None,
        other => {
            warnings.push(format!(
                "ignored invalid value {other:?} of pod {source} sidecar.istio.io/inject: only \"true\" and \"false\" are accepted; falling back to the default injection policy"
            ));
            None
        }
    };

    if explicit.is_none() {
        let found = first_matching_selector(
            "neverInjectSelector",
            &settings.never_inject_selector,
            pod,
            &mut warnings,
        );
        trail.step(
            b,
            "never-inject-selector",
            selector_result(found, &settings.never_inject_selector),
            false,
        );
        explicit = found.map(|i| {
            (
                false,
                Reason::new(
                    "never-inject-selector",
                    format!("pod labels match neverInjectSelector[{i}]"),
                ),
            )
        });
    }
    if explicit.is_none() {
        let found = first_matching_selector(
            "alwaysInjectSelector",
            &settings.always_inject_selector,
            pod,
            &mut warnings,
        );
        trail.step(
            b,
            "always-inject-selector",
            selector_result(found, &settings.always_inject_selector),
            false,
        );
        explicit = found.map(|i| {
            (
                true,
                Reason::new(
                    "always-inject-selector",
                    format!("pod labels match alwaysInjectSelector[{i}]"),
                ),
            )
        });
    }

    trail.step(b, "policy", settings.policy.as_str(), false);
    match (&settings.policy, explicit) {
        (Policy::Enabled | Policy::Disabled, Some((inject, reason))) => {
            done(inject, reason, warnings, trail)
        }
        (Policy::Enabled, None) => done(
            true,
            Reason::new("policy-enabled", "injection policy is enabled"),
            warnings,
            trail,
        ),
        (Policy::Disabled, None) => done(
            false,
            Reason::new(
                "policy-disabled",
                "injection policy is disabled and the pod does not ask for injection",
            ),
            warnings,
            trail,
        ),
        (Policy::Invalid(other), _) => done(
            false,
            Reason::new(
                "invalid-policy",
                format!(
                    "policy {other:?} is neither \"enabled\" nor \"disabled\"; injection is off"
                ),
            ),
            warnings,
            trail,
        ),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A label or annotation value as the trail shows it.
fn shown(value: Option<&str>) -> String {
    match value {
        None => "absent".to_string(),
        Some(v) => format!("{v:?}"),
    }
}

fn selector_result(found: Option<usize>, selectors: &SelectorList) -> String {
    match found {
        Some(i) => format!("match [{i}]"),
        None if selectors.is_empty() => "none set".to_string(),
        None => "no match".to_string(),
    }
}

/// The stage-B check behind a reason code.
fn rule_of(code: &str) -> &'static str {
    match code {
        "host-network" => "host-network",
        "ignored-namespace" => "ignored-namespace",
        "pod-label-true" | "pod-label-false" => "inject-label",
        "pod-annotation-true" | "pod-annotation-false" => "inject-annotation",
        "never-inject-selector" => "never-inject-selector",
        "always-inject-selector" => "always-inject-selector",
        _ => "policy",
    }
}

/// Index of the first non-empty, well-formed selector matching the pod labels. Malformed and
/// empty selectors are skipped with a warning, as Istio skips them with a log line.
fn first_matching_selector(
    field: &str,
    selectors: &SelectorList,
    pod: &PodFacts,
    warnings: &mut Vec<String>,
) -> Option<usize> {
    for (i, selector) in selectors.iter().enumerate() {
        match selector {
            Err(e) => warnings.push(format!("ignored invalid selector {field}[{i}]: {e}")),
            Ok(sel) if sel.is_empty() => warnings.push(format!(
                "ignored empty selector {field}[{i}]: it would match every pod, so Istio skips it"
            )),
            Ok(sel) => {
                if sel.matches(pod.labels) {
                    return Some(i);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::json::from_json as json;

    fn settings(v: Value) -> Settings {
        Settings::from_value(&v.to_serde()).unwrap()
    }

    struct Case {
        ns_labels: Value<'static>,
        pod_labels: Value<'static>,
        pod_annotations: Value<'static>,
    }

    fn case(
        ns_labels: Value<'static>,
        pod_labels: Value<'static>,
        pod_annotations: Value<'static>,
    ) -> Case {
        Case {
            ns_labels,
            pod_labels,
            pod_annotations,
        }
    }

    /// "Y", "N" (called, not required) or "N-ns" (not selected), as the truth table writes it.
    fn run(s: &Settings, c: &Case) -> &'static str {
        run_in(s, c, "demo")
    }

    fn run_in(s: &Settings, c: &Case, ns_name: &str) -> &'static str {
        let ns = NamespaceFacts {
            name: ns_name,
            labels: c.ns_labels.as_object(),
        };
        let pod = PodFacts {
            labels: c.pod_labels.as_object(),
            annotations: c.pod_annotations.as_object(),
            host_network: false,
            namespace: ns_name,
        };
        if select(s, &ns, &pod).is_err() {
            return "N-ns";
        }
        if inject_required(s, &pod).required {
            "Y"
        } else {
            "N"
        }
    }

    /// Every row of the truth table of istio-injection.md section (b).
    #[test]
    fn truth_table() {
        let en = settings(json!({}));
        let dis = settings(json!({"policy": "disabled"}));
        let none = json!({});
        let enabled = json!({"istio-injection": "enabled"});
        let rows: Vec<(&str, Case, &str, &str)> = vec![
            (
                "none/nothing",
                case(none.clone(), none.clone(), none.clone()),
                "N-ns",
                "N-ns",
            ),
            (
                "none/L=true",
                case(none.clone(), json!({INJECT: "true"}), none.clone()),
                "Y",
                "Y",
            ),
            (
                "none/L=false",
                case(none.clone(), json!({INJECT: "false"}), none.clone()),
                "N-ns",
                "N-ns",
            ),
            (
                "none/A=true",
                case(none.clone(), none.clone(), json!({INJECT: "true"})),
                "N-ns",
                "N-ns",
            ),
            (
                "none/A=false",
                case(none.clone(), none.clone(), json!({INJECT: "false"})),
                "N-ns",
                "N-ns",
            ),
            (
                "none/L=yes",
                case(none.clone(), json!({INJECT: "yes"}), none.clone()),
                "N-ns",
                "N-ns",
            ),
            (
                "none/L=True",
                case(none.clone(), json!({INJECT: "True"}), none.clone()),
                "N-ns",
                "N-ns",
            ),
            (
                "none/rev=default",
                case(none.clone(), json!({REV_LABEL: "default"}), none.clone()),
                "Y",
                "N",
            ),
            (
                "none/rev=default+L=true",
                case(
                    none.clone(),
                    json!({REV_LABEL: "default", INJECT: "true"}),
                    none.clone(),
                ),
                "Y",
                "Y",
            ),
            (
                "none/L=true+rev=canary",
                case(
                    none.clone(),
                    json!({REV_LABEL: "canary", INJECT: "true"}),
                    none.clone(),
                ),
                "N-ns",
                "N-ns",
            ),
            (
                "enabled/nothing",
                case(enabled.clone(), none.clone(), none.clone()),
                "Y",
                "N",
            ),
            (
                "enabled/L=true",
                case(enabled.clone(), json!({INJECT: "true"}), none.clone()),
                "Y",
                "Y",
            ),
            (
                "enabled/L=false",
                case(enabled.clone(), json!({INJECT: "false"}), none.clone()),
                "N-ns",
                "N-ns",
            ),
            (
                "enabled/A=true",
                case(enabled.clone(), none.clone(), json!({INJECT: "true"})),
                "Y",
                "Y",
            ),
            (
                "enabled/A=false",
                case(enabled.clone(), none.clone(), json!({INJECT: "false"})),
                "N",
                "N",
            ),
            (
                "enabled/L=yes",
                case(enabled.clone(), json!({INJECT: "yes"}), none.clone()),
                "Y",
                "N",
            ),
            (
                "enabled/L=on",
                case(enabled.clone(), json!({INJECT: "on"}), none.clone()),
                "Y",
                "N",
            ),
            (
                "enabled/A=True",
                case(enabled.clone(), none.clone(), json!({INJECT: "True"})),
                "Y",
                "N",
            ),
            (
                "enabled/A=FALSE",
                case(enabled.clone(), none.clone(), json!({INJECT: "FALSE"})),
                "Y",
                "N",
            ),
            (
                "enabled/L=true+A=false",
                case(
                    enabled.clone(),
                    json!({INJECT: "true"}),
                    json!({INJECT: "false"}),
                ),
                "Y",
                "Y",
            ),
            (
                "enabled/L=false+A=true",
                case(
                    enabled.clone(),
                    json!({INJECT: "false"}),
                    json!({INJECT: "true"}),
                ),
                "N-ns",
                "N-ns",
            ),
            (
                "enabled/L=empty+A=false",
                case(
                    enabled.clone(),
                    json!({INJECT: ""}),
                    json!({INJECT: "false"}),
                ),
                "Y",
                "N",
            ),
            (
                "enabled/rev=canary",
                case(enabled.clone(), json!({REV_LABEL: "canary"}), none.clone()),
                "Y",
                "N",
            ),
            (
                "disabled/nothing",
                case(
                    json!({"istio-injection": "disabled"}),
                    none.clone(),
                    none.clone(),
                ),
                "N-ns",
                "N-ns",
            ),
            (
                "disabled/L=true",
                case(
                    json!({"istio-injection": "disabled"}),
                    json!({INJECT: "true"}),
                    none.clone(),
                ),
                "N-ns",
                "N-ns",
            ),
            (
                "injection=true/anything",
                case(
                    json!({"istio-injection": "true"}),
                    json!({INJECT: "true"}),
                    none.clone(),
                ),
                "N-ns",
                "N-ns",
            ),
            (
                "nsrev=default/nothing",
                case(json!({REV_LABEL: "default"}), none.clone(), none.clone()),
                "Y",
                "N",
            ),
            (
                "nsrev=default/L=false",
                case(
                    json!({REV_LABEL: "default"}),
                    json!({INJECT: "false"}),
                    none.clone(),
                ),
                "N-ns",
                "N-ns",
            ),
            (
                "nsrev=default/A=false",
                case(
                    json!({REV_LABEL: "default"}),
                    none.clone(),
                    json!({INJECT: "false"}),
                ),
                "N",
                "N",
            ),
            (
                "nsrev=default/L=true",
                case(
                    json!({REV_LABEL: "default"}),
                    json!({INJECT: "true"}),
                    none.clone(),
                ),
                "Y",
                "Y",
            ),
            (
                "nsrev=canary/nothing",
                case(json!({REV_LABEL: "canary"}), none.clone(), none.clone()),
                "N-ns",
                "N-ns",
            ),
            (
                "nsrev=canary/L=true",
                case(
                    json!({REV_LABEL: "canary"}),
                    json!({INJECT: "true"}),
                    none.clone(),
                ),
                "N-ns",
                "N-ns",
            ),
            (
                "enabled+nsrev=canary",
                case(
                    json!({"istio-injection": "enabled", REV_LABEL: "canary"}),
                    none.clone(),
                    none.clone(),
                ),
                "Y",
                "N",
            ),
        ];
        for (name, c, want_en, want_dis) in &rows {
            assert_eq!(run(&en, c), *want_en, "{name} with policy enabled");
            assert_eq!(run(&dis, c), *want_dis, "{name} with policy disabled");
        }
    }

    #[test]
    fn canary_revision_injector() {
        let canary = settings(json!({"revision": "canary"}));
        let none = json!({});
        // Pod asking for canary in an unlabelled namespace.
        assert_eq!(
            run(
                &canary,
                &case(
                    none.clone(),
                    json!({REV_LABEL: "canary", INJECT: "true"}),
                    none.clone()
                )
            ),
            "Y"
        );
        assert_eq!(
            run(
                &canary,
                &case(none.clone(), json!({REV_LABEL: "canary"}), none.clone())
            ),
            "Y"
        );
        // Namespace labelled for canary behaves like an enabled namespace.
        let ns = json!({REV_LABEL: "canary"});
        assert_eq!(
            run(&canary, &case(ns.clone(), none.clone(), none.clone())),
            "Y"
        );
        assert_eq!(
            run(
                &canary,
                &case(ns.clone(), json!({INJECT: "false"}), none.clone())
            ),
            "N-ns"
        );
        assert_eq!(
            run(
                &canary,
                &case(ns.clone(), none.clone(), json!({INJECT: "false"}))
            ),
            "N"
        );
        // istio-injection outranks istio.io/rev: the canary injector is not called.
        assert_eq!(
            run(
                &canary,
                &case(
                    json!({"istio-injection": "enabled", REV_LABEL: "canary"}),
                    none.clone(),
                    none.clone()
                )
            ),
            "N-ns"
        );
        // The default-revision entries do not exist for a revisioned injector.
        assert_eq!(
            run(
                &canary,
                &case(
                    json!({"istio-injection": "enabled"}),
                    none.clone(),
                    none.clone()
                )
            ),
            "N-ns"
        );
        assert_eq!(
            run(
                &canary,
                &case(none.clone(), json!({INJECT: "true"}), none.clone())
            ),
            "N-ns"
        );
        // Pod revision label with a namespace revision label: the namespace decides.
        assert_eq!(
            run(
                &canary,
                &case(
                    json!({REV_LABEL: "stable"}),
                    json!({REV_LABEL: "canary"}),
                    none.clone()
                )
            ),
            "N-ns"
        );
    }

    #[test]
    fn enable_namespaces_by_default() {
        let auto = settings(json!({"enableNamespacesByDefault": true}));
        let auto_dis = settings(json!({"enableNamespacesByDefault": true, "policy": "disabled"}));
        let none = json!({});
        assert_eq!(
            run(&auto, &case(none.clone(), none.clone(), none.clone())),
            "Y"
        );
        assert_eq!(
            run(&auto_dis, &case(none.clone(), none.clone(), none.clone())),
            "N"
        );
        assert_eq!(
            run(
                &auto,
                &case(none.clone(), none.clone(), json!({INJECT: "false"}))
            ),
            "N"
        );
        assert_eq!(
            run(
                &auto,
                &case(none.clone(), none.clone(), json!({INJECT: "yes"}))
            ),
            "Y"
        );
        // The auto entry requires the label to be absent.
        assert_eq!(
            run(
                &auto,
                &case(none.clone(), json!({INJECT: "yes"}), none.clone())
            ),
            "N-ns"
        );
        assert_eq!(
            run(
                &auto,
                &case(none.clone(), json!({INJECT: "true"}), none.clone())
            ),
            "Y"
        );
        // System namespaces are excluded from the auto entry.
        for ns in IGNORED_NAMESPACES {
            assert_eq!(
                run_in(&auto, &case(none.clone(), none.clone(), none.clone()), ns),
                "N-ns",
                "{ns}"
            );
        }
        // The API server's kubernetes.io/metadata.name label is what the selector reads.
        assert_eq!(
            run_in(
                &auto,
                &case(
                    json!({NS_NAME_LABEL: "kube-system"}),
                    none.clone(),
                    none.clone()
                ),
                "renamed"
            ),
            "N-ns"
        );
        // Other namespaces labelled otherwise are unaffected.
        assert_eq!(
            run(
                &auto,
                &case(
                    json!({"istio-injection": "disabled"}),
                    none.clone(),
                    none.clone()
                )
            ),
            "N-ns"
        );
        // A revisioned injector has no auto entry.
        let canary_auto =
            settings(json!({"enableNamespacesByDefault": true, "revision": "canary"}));
        assert_eq!(
            run(
                &canary_auto,
                &case(none.clone(), none.clone(), none.clone())
            ),
            "N-ns"
        );
    }

    fn pod<'a>(
        labels: &'a Value<'static>,
        annotations: &'a Value<'static>,
        ns: &'a str,
        host_network: bool,
    ) -> PodFacts<'a, 'static> {
        PodFacts {
            labels: labels.as_object(),
            annotations: annotations.as_object(),
            host_network,
            namespace: ns,
        }
    }

    #[test]
    fn host_network_is_never_injected() {
        let s = settings(json!({}));
        let labels = json!({INJECT: "true"});
        let r = inject_required(&s, &pod(&labels, &json!({}), "demo", true));
        assert!(!r.required);
        assert_eq!(r.reason.code, "host-network");
    }

    #[test]
    fn ignored_namespaces_are_never_injected() {
        let s = settings(json!({"alwaysInjectSelector": [{"matchLabels": {"a": "b"}}]}));
        let labels = json!({INJECT: "true", "a": "b"});
        for ns in IGNORED_NAMESPACES {
            let r = inject_required(&s, &pod(&labels, &json!({}), ns, false));
            assert!(!r.required, "{ns}");
            assert_eq!(r.reason.code, "ignored-namespace");
        }
        // istio-system is not in the list.
        assert!(inject_required(&s, &pod(&labels, &json!({}), "istio-system", false)).required);
    }

    #[test]
    fn label_wins_over_annotation_even_when_empty() {
        let s = settings(json!({"policy": "disabled"}));
        let r = inject_required(
            &s,
            &pod(
                &json!({INJECT: "true"}),
                &json!({INJECT: "false"}),
                "d",
                false,
            ),
        );
        assert!(r.required);
        assert_eq!(r.reason.code, "pod-label-true");
        let r = inject_required(
            &s,
            &pod(&json!({INJECT: ""}), &json!({INJECT: "true"}), "d", false),
        );
        assert!(!r.required);
        assert_eq!(r.reason.code, "policy-disabled");
        let r = inject_required(&s, &pod(&json!({}), &json!({INJECT: "true"}), "d", false));
        assert!(r.required);
        assert_eq!(r.reason.code, "pod-annotation-true");
    }

    #[test]
    fn invalid_values_warn_and_fall_back_to_policy() {
        let s = settings(json!({}));
        for v in ["yes", "True", "on", "FALSE", "1", "y"] {
            let r = inject_required(&s, &pod(&json!({INJECT: v}), &json!({}), "d", false));
            assert!(r.required, "{v}");
            assert_eq!(r.reason.code, "policy-enabled");
            assert_eq!(r.warnings.len(), 1, "{v}");
            assert!(
                r.warnings[0].contains(&format!("{v:?}")),
                "{:?}",
                r.warnings
            );
        }
    }

    #[test]
    fn never_before_always_and_explicit_beats_selectors() {
        let s = settings(json!({
            "neverInjectSelector": [{"matchLabels": {"never": "yes"}}],
            "alwaysInjectSelector": [{"matchExpressions": [{"key": "always", "operator": "Exists"}]}],
            "policy": "disabled",
        }));
        let r = inject_required(&s, &pod(&json!({"always": ""}), &json!({}), "d", false));
        assert!(r.required);
        assert_eq!(r.reason.code, "always-inject-selector");
        let r = inject_required(
            &s,
            &pod(
                &json!({"always": "", "never": "yes"}),
                &json!({}),
                "d",
                false,
            ),
        );
        assert!(!r.required);
        assert_eq!(r.reason.code, "never-inject-selector");
        let r = inject_required(
            &s,
            &pod(
                &json!({"never": "yes", INJECT: "true"}),
                &json!({}),
                "d",
                false,
            ),
        );
        assert!(r.required);
        assert_eq!(r.reason.code, "pod-label-true");
        // Invalid explicit value: selectors are consulted.
        let r = inject_required(
            &s,
            &pod(
                &json!({"never": "yes", INJECT: "yes"}),
                &json!({}),
                "d",
                false,
            ),
        );
        assert!(!r.required);
        assert_eq!(r.reason.code, "never-inject-selector");
        let en = settings(json!({"neverInjectSelector": [{"matchLabels": {"never": "yes"}}]}));
        let r = inject_required(
            &en,
            &pod(
                &json!({"never": "yes"}),
                &json!({INJECT: "true"}),
                "d",
                false,
            ),
        );
        assert!(r.required, "annotation true beats selector");
    }

    #[test]
    fn empty_and_malformed_selectors_are_ignored_with_a_warning() {
        // Settings as they are read; `validate_settings` would refuse the malformed one.
        let s2 = settings(json!({"policy": "disabled", "alwaysInjectSelector": [
            {},
            {"matchExpressions": [{"key": "a", "operator": "Bad"}]},
            {"matchLabels": {}},
        ]}));
        let r = inject_required(&s2, &pod(&json!({"a": "b"}), &json!({}), "d", false));
        assert!(!r.required, "empty selectors must not match everything");
        assert_eq!(r.warnings.len(), 3, "{:?}", r.warnings);
        assert!(r.warnings[1].contains("alwaysInjectSelector[1]"));
    }

    #[test]
    fn policy_must_be_exact() {
        for p in ["Enabled", "", "on", "true"] {
            let mut s = settings(json!({}));
            s.policy = p.into();
            let r = inject_required(&s, &pod(&json!({INJECT: "true"}), &json!({}), "d", false));
            assert!(!r.required, "{p:?}");
            assert_eq!(r.reason.code, "invalid-policy");
        }
    }

    #[test]
    fn not_selected_reasons_are_specific() {
        let s = settings(json!({}));
        let reason = |ns: Value<'static>, labels: Value<'static>| {
            let ns_facts = NamespaceFacts {
                name: "demo",
                labels: ns.as_object(),
            };
            let p = pod(&labels, &Value::Null, "demo", false);
            select(&s, &ns_facts, &p).unwrap_err().code
        };
        assert_eq!(
            reason(json!({}), json!({INJECT: "false"})),
            "pod-label-false"
        );
        assert_eq!(
            reason(json!({"istio-injection": "disabled"}), json!({})),
            "namespace-injection-disabled"
        );
        assert_eq!(
            reason(json!({REV_LABEL: "canary"}), json!({})),
            "namespace-other-revision"
        );
        assert_eq!(
            reason(json!({}), json!({REV_LABEL: "canary"})),
            "pod-other-revision"
        );
        assert_eq!(reason(json!({}), json!({})), "not-labelled");
    }

    fn trail_of(s: &Settings, ns_labels: &Value, p: &PodFacts) -> String {
        let ns = NamespaceFacts {
            name: p.namespace,
            labels: ns_labels.as_object(),
        };
        decide(s, Some(&ns), p).trail.compact()
    }

    #[test]
    fn trail_lists_every_rule_consulted_in_order_with_the_deciding_ones_marked() {
        let s = settings(json!({}));
        let none = json!({});
        let p = pod(&none, &none, "demo", false);
        assert_eq!(
            trail_of(&s, &json!({"istio-injection": "enabled"}), &p),
            "A: rev.namespace=no match, rev.object=no match, namespace=match*; \
             B: host-network=no, ignored-namespace=no, inject-label=absent, inject-annotation=absent, \
             never-inject-selector=none set, always-inject-selector=none set, policy=enabled*"
        );
    }

    #[test]
    fn trail_stops_where_the_decision_is_made() {
        let s = settings(json!({"policy": "disabled"}));
        let none = json!({});
        let label = json!({INJECT: "true"});
        // The label decides: selectors are not consulted, the policy is (and loses).
        assert_eq!(
            trail_of(&s, &json!({}), &pod(&label, &none, "demo", false)),
            "A: rev.namespace=no match, rev.object=no match, namespace=no match, object=match*; \
             B: host-network=no, ignored-namespace=no, inject-label=\"true\"*, policy=disabled"
        );
        assert_eq!(
            trail_of(
                &s,
                &json!({"istio-injection": "enabled"}),
                &pod(&none, &none, "demo", true)
            ),
            "A: rev.namespace=no match, rev.object=no match, namespace=match*; B: host-network=yes*"
        );
        // Not selected: stage B is never reached.
        assert_eq!(
            trail_of(
                &s,
                &json!({"istio-injection": "disabled"}),
                &pod(&none, &none, "demo", false)
            ),
            "A: rev.namespace=no match, rev.object=no match, namespace=no match, object=no match"
        );
        // Webhook mode: stage B only.
        let never = settings(json!({"neverInjectSelector": [{"matchLabels": {"app": "x"}}]}));
        let app = json!({"app": "x"});
        let d = decide(&never, None, &pod(&app, &none, "demo", false));
        assert_eq!(
            d.trail.compact(),
            "B: host-network=no, ignored-namespace=no, inject-label=absent, inject-annotation=absent, \
             never-inject-selector=match [0]*, policy=enabled"
        );
        assert_eq!(d.selected_by, None);
    }
}
