//! `explain`: the policy's answer for a Pod, a Namespace and settings, with why, the exact
//! JSONPatch the cluster would apply, and what kwctl needs to give the same answer.

use istio_sidecar_injector::engine::{self, Verdict};
use istio_sidecar_injector::settings::{NamespaceSelection, Settings};
use serde_json::{Value, json};

use crate::input::{self, Problem};

/// The answer for a Pod (or an AdmissionRequest or AdmissionReview), a Namespace (an
/// object, a map of its labels, or `""` when the webhook's selectors do stage A) and the
/// settings (`""` for the defaults), each YAML or JSON:
///
/// `{outcome, reason: {code, text}, selectedBy, trail: [{stage, rule, result, decided}],
/// warnings, message, patch, pod, reproduce: {request, settings, session}}`.
///
/// `patch` is `json_patch::diff` of the request's Pod and the injected Pod, as Kubewarden's
/// host computes it; `pod` is the injected Pod or null. Bad input gives `outcome: invalid`
/// with `message`, and `error: {input, line, column, path}` saying where.
pub fn explain(pod: &str, namespace: &str, settings: &str) -> Value {
    match run(pod, namespace, settings) {
        Ok(answer) => answer,
        Err(problem) => invalid(&problem),
    }
}

/// `{valid, message}`, as the module's `validate_settings` answers for the same settings.
pub fn validate_settings(settings: &str) -> Value {
    let checked = input::document("settings", settings)
        .map_err(|p| p.message)
        .and_then(|doc| Settings::from_value(&doc.unwrap_or(Value::Null)))
        .and_then(|s| s.validate());
    match checked {
        Ok(()) => json!({"valid": true, "message": null}),
        Err(message) => json!({"valid": false, "message": message}),
    }
}

fn run(pod: &str, namespace: &str, settings: &str) -> Result<Value, Problem> {
    let request_json = input::request(input::document("pod", pod)?)?;
    let pod_namespace = input::pod_namespace(&request_json);
    let namespace_object = input::document("namespace", namespace)?
        .map(|doc| input::namespace(doc, &pod_namespace))
        .transpose()?;
    let settings_json = input::settings(
        input::document("settings", settings)?,
        namespace_object.is_some(),
    )?;
    let parsed = Settings::from_value(&settings_json)
        .and_then(|s| s.validate().map(|()| s))
        .map_err(|message| Problem {
            path: message.split_once(": ").map(|(path, _)| path.to_string()),
            ..Problem::new("settings", format!("invalid settings: {message}"))
        })?;
    let lookup_answer = namespace_object.clone();
    let verdict = engine::evaluate_value(&request_json, &parsed, |_| {
        lookup_answer.ok_or_else(|| "no Namespace given".to_string())
    })
    .map_err(|e| Problem::new("pod", format!("pod: {e}")))?;
    let original = request_json.get("object").cloned().unwrap_or(Value::Null);
    let injected = verdict.mutated.as_ref().map(|pod| pod.to_serde());

    let mut warnings = verdict.warnings.clone();
    let looked_up = parsed.namespace_selection == NamespaceSelection::Lookup;
    if namespace_object.is_some() && !looked_up {
        warnings.push(
            "the Namespace is not read: with namespaceSelection: webhook the webhook's selectors do stage A"
                .to_string(),
        );
    }
    let patch = match &injected {
        Some(injected) => serde_json::to_value(json_patch::diff(&original, injected))
            .unwrap_or(Value::Array(Vec::new())),
        None => Value::Array(Vec::new()),
    };
    Ok(json!({
        "outcome": verdict.outcome.as_str(),
        "reason": {"code": verdict.reason.code, "text": verdict.reason.text},
        "selectedBy": verdict.selected_by,
        "trail": trail(&verdict),
        "warnings": warnings,
        "message": verdict.message,
        "patch": patch,
        "pod": injected,
        "reproduce": reproduce(&request_json, &settings_json, namespace_object.as_ref().filter(|_| looked_up)),
    }))
}

fn trail(verdict: &Verdict) -> Value {
    Value::Array(
        verdict
            .trail
            .0
            .iter()
            .map(|s| {
                json!({"stage": s.stage.as_str(), "rule": s.rule, "result": s.result, "decided": s.decided})
            })
            .collect(),
    )
}

fn invalid(p: &Problem) -> Value {
    let code = format!("invalid-{}", p.input);
    json!({
        "outcome": "invalid",
        "reason": {"code": code, "text": p.message},
        "selectedBy": null,
        "trail": [],
        "warnings": [],
        "message": p.message,
        "error": {"input": p.input, "line": p.line, "column": p.column, "path": p.path},
        "patch": [],
        "pod": null,
        "reproduce": null,
    })
}

/// The files `kwctl run` needs to give the same answer: the request, the settings and, in
/// lookup mode, the session that answers the Namespace lookup (kwctl's replay format).
fn reproduce(request: &Value, settings: &Value, namespace: Option<&Value>) -> Value {
    let session = namespace.map(|ns| {
        let name = ns.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        // The payload is a YAML single-quoted string: quotes doubled.
        let payload = ns.to_string().replace('\'', "''");
        format!(
            "- type: Exchange\n  request: |\n    !KubernetesGetResource\n    api_version: v1\n    kind: Namespace\n    name: {name}\n    namespace: null\n    disable_cache: false\n    field_masks: null\n  response:\n    type: Success\n    payload: '{payload}'\n"
        )
    });
    let mut command =
        String::from("kwctl run --request-path request.json --settings-path settings.json");
    if session.is_some() {
        command
            .push_str(" --allow-context-aware --replay-host-capabilities-interactions session.yml");
    }
    command.push_str(" annotated-policy.wasm");
    json!({
        "command": command,
        "request": serde_json::to_string_pretty(request).unwrap_or_default(),
        "settings": serde_json::to_string_pretty(settings).unwrap_or_default(),
        "session": session,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  containers:\n  - name: app\n    image: app:1\n";

    #[test]
    fn labelled_namespace_gives_a_second_container_and_the_patch_that_adds_it() {
        let a = explain(POD, "istio-injection: enabled", "");
        assert_eq!(a["outcome"], "injected", "{a}");
        assert_eq!(a["reason"]["code"], "policy-enabled");
        assert_eq!(a["selectedBy"], "namespace");
        let names: Vec<&str> = a["pod"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["app", "istio-proxy"]);
        let ops = a["patch"].as_array().unwrap();
        assert!(
            ops.iter()
                .any(|o| o["op"] == "add" && o["path"] == "/spec/containers/1"),
            "{ops:?}"
        );
        let decided: Vec<&str> = a["trail"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["decided"] == true)
            .map(|s| s["rule"].as_str().unwrap())
            .collect();
        assert_eq!(decided, ["namespace", "policy"]);
        assert!(
            a["reproduce"]["session"]
                .as_str()
                .unwrap()
                .contains("name: shop")
        );
    }

    #[test]
    fn no_namespace_is_webhook_selection() {
        let a = explain(POD, "", "policy: disabled");
        assert_eq!(
            (a["outcome"].as_str(), a["reason"]["code"].as_str()),
            (Some("skipped"), Some("policy-disabled"))
        );
        assert_eq!(a["selectedBy"], Value::Null);
        assert_eq!(a["reproduce"]["session"], Value::Null);
        assert!(
            a["trail"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["stage"] == "B")
        );
    }

    #[test]
    fn bad_input_is_invalid_and_says_where() {
        let a = explain("metadata: [", "", "");
        assert_eq!(a["outcome"], "invalid");
        assert_eq!(a["error"]["input"], "pod");
        assert!(a["error"]["line"].is_number(), "{a}");
        let a = explain(
            POD,
            "",
            "values:\n  global:\n    proxy:\n      statusPort: high\n",
        );
        assert_eq!(a["outcome"], "invalid");
        assert_eq!(a["error"]["path"], "values.global.proxy.statusPort", "{a}");
        let a = explain("kind: Deployment\nmetadata: {name: x}\n", "", "");
        assert!(a["message"].as_str().unwrap().contains("Deployment"), "{a}");
    }

    #[test]
    fn validate_settings_answers_as_the_module() {
        assert_eq!(
            validate_settings(""),
            json!({"valid": true, "message": null})
        );
        let v = validate_settings("policy: maybe");
        assert_eq!(v["valid"], false);
        assert_eq!(
            v["message"],
            "policy: \"maybe\" is not valid, use \"enabled\" or \"disabled\""
        );
        // The same answer the module gives for the same settings as JSON.
        let json_text = serde_json::json!({"policy": "maybe"}).to_string();
        let module = Settings::from_slice(json_text.as_bytes()).and_then(|s| s.validate());
        assert_eq!(v["message"].as_str(), module.err().as_deref());
    }
}
