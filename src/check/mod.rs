//! Check mode (`action: check`): the injector's decision, then a comparison instead of a
//! mutation. Kubewarden's audit scanner sends every stored Pod; the answer says whether the
//! Pod has the sidecar the injector would give it now:
//!
//! | code | accepted | when |
//! |---|---|---|
//! | `sidecar-current` | yes | injected, and injecting again changes nothing in meaning |
//! | `not-selected`, `skipped` | yes | not injected, and the injector would not inject it, or would add no `istio-proxy` (`skipped`) |
//! | `sidecar-missing` | no | the injector would add `istio-proxy`, and the Pod has none |
//! | `sidecar-unexpected` | no | it carries an injected sidecar the injector would not give it |
//! | `sidecar-outdated` | no | injecting it again would change the injected parts |
//!
//! The check rests on re-injection: injecting an injected Pod with the same settings changes
//! nothing, so whatever injecting the stored Pod again changes (in meaning: see
//! [`meaning`]) is what the injector would do differently now.

mod difference;
mod meaning;
mod workload;

use crate::annotations::STATUS;
use crate::decision::{Decision, Outcome, Reason};
use crate::engine::Verdict;
use crate::inject;
use crate::injection_status::SidecarInjectionStatus;
use crate::json::{Map, Value};
use crate::pod;
use crate::settings::Settings;

pub use difference::differences;
pub use meaning::normalize;

/// At most this many differences are named in a message.
const NAMED_DIFFERENCES: usize = 5;

/// Checks the stored `pod` against the injector's `decision` (stages A and B, made with the
/// same settings).
pub fn check<'a>(
    pod: &Value<'a>,
    namespace: &str,
    namespace_annotations: Option<&Map>,
    decision: Decision,
    settings: &'a Settings,
) -> Verdict<'a> {
    let injected = match injected_by(pod) {
        Ok(injected) => injected,
        Err(reason) => return Verdict::bad_input(reason),
    };
    let rule = format!("Rule: {}.", decision.reason);

    if !decision.injects() {
        // Another revision's Pods are that revision's injector's business.
        let other_revision = decision.reason.code.ends_with("-other-revision");
        if injected && !other_revision {
            let text = format!(
                "the Pod carries an injected istio-proxy ({STATUS}), but the injector would not inject it now. {rule} {}",
                workload::restart_advice(pod, namespace, "remove the sidecar")
            );
            return rejected(Outcome::SidecarUnexpected, decision, text);
        }
        return Verdict::of_decision(decision.outcome, decision);
    }

    let reinjected = inject::inject(pod.clone(), settings, namespace, namespace_annotations);
    if !injected {
        let what = match &reinjected {
            Ok(p) if has_proxy(p) => "would add one",
            // Its templates add no proxy (`grpc-simple`, a custom template): there is no
            // sidecar to miss, and the Pod passes with the injector's reason.
            Ok(_) => return Verdict::of_decision(Outcome::Skipped, decision),
            Err(_) => "would inject it",
        };
        let mut text = format!("the Pod has no istio-proxy, but the injector {what}. {rule}");
        if let Err(e) = &reinjected {
            text.push_str(&format!(" Injecting it would fail: {e}."));
        }
        text.push(' ');
        text.push_str(&workload::restart_advice(
            pod,
            namespace,
            "inject the sidecar",
        ));
        return rejected(Outcome::SidecarMissing, decision, text);
    }

    let changes = match &reinjected {
        Ok(expected) => differences(pod, expected),
        Err(e) => vec![format!("injecting it again would fail: {e}")],
    };
    if changes.is_empty() {
        return Verdict::of_decision(Outcome::SidecarCurrent, decision);
    }
    let mut text = String::from("injecting the Pod again would change it: ");
    text.push_str(&changes[..changes.len().min(NAMED_DIFFERENCES)].join("; "));
    if changes.len() > NAMED_DIFFERENCES {
        text.push_str(&format!("; and {} more", changes.len() - NAMED_DIFFERENCES));
    }
    text.push_str(". ");
    text.push_str(&workload::restart_advice(
        pod,
        namespace,
        "update the sidecar",
    ));
    rejected(Outcome::SidecarOutdated, decision, text)
}

/// Whether a previous injection left its mark (`sidecar.istio.io/status`). In check mode a
/// mark that Istio cannot read is bad input: the injector would silently inject such a Pod
/// again, but a report must not guess. What Istio reads and refuses is Go's reading
/// ([`SidecarInjectionStatus::parse`]).
fn injected_by(pod: &Value) -> Result<bool, Reason> {
    let Some(status) = pod::metadata_map(pod, "annotations").and_then(|a| a.get(STATUS)) else {
        return Ok(false);
    };
    let text = status.as_str().unwrap_or_default();
    match SidecarInjectionStatus::parse(text) {
        Ok(_) => Ok(true),
        Err(why) => Err(Reason::new(
            "invalid-pod",
            format!("the Pod cannot be read: metadata.annotations.{STATUS}: {why}"),
        )),
    }
}

fn has_proxy(pod: &Value) -> bool {
    ["containers", "initContainers"]
        .iter()
        .flat_map(|f| pod::containers(pod, f))
        .any(|c| pod::name_of(c) == "istio-proxy")
}

/// A rejection whose message starts with its code, which is what a PolicyReport shows.
fn rejected<'a>(outcome: Outcome, decision: Decision, text: String) -> Verdict<'a> {
    Verdict {
        message: Some(format!("{}: {text}", outcome.as_str())),
        ..Verdict::of_decision(outcome, decision)
    }
}
