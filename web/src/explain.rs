//! `explain`: the policy's answer for a Pod, a Namespace and settings, with why, the exact
//! JSONPatch the cluster would apply, and what kwctl needs to give the same answer.

use istio_sidecar_injector::engine::{self, AdmissionRequest, Verdict};
use istio_sidecar_injector::json;
use istio_sidecar_injector::settings::{NamespaceSelection, Settings};
use serde_json::{Value, json};

use crate::input::{self, Lookup, Problem};

/// The answer for a Pod (or an AdmissionRequest or AdmissionReview), a Namespace (an
/// object, a map of its labels, a kwctl session answering the lookup, or `""` when the
/// webhook's selectors do stage A) and the settings (`""` for the defaults), each YAML or
/// JSON:
///
/// `{outcome, reason: {code, text}, selectedBy, trail: [{stage, rule, result, decided}],
/// warnings, notes, message, auditAnnotations, patch, pod, containers, initContainers,
/// reproduce: {command, request, settings, session}}`.
///
/// `patch` is `json_patch::diff` of the request's Pod and the injected Pod, as Kubewarden's
/// host computes it; `pod` is the injected Pod or null; `warnings` are the policy's, `notes`
/// the explainer's remarks on its input; `auditAnnotations` the response's, as the policy
/// writes them (`outcome`, `reason`, `trail` in one line); `containers` and `initContainers`
/// name those of the Pod as stored (the injected one, else the one sent). Bad input gives
/// `outcome: invalid` with `message`, `error: {input, line, column, path, message}` saying
/// where, and `errors`, every input's problem.
pub fn explain(pod: &str, namespace: &str, settings: &str) -> Value {
    match run(pod, namespace, settings) {
        Ok(answer) => answer,
        Err(problems) => invalid(&problems),
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

fn run(pod: &str, namespace: &str, settings: &str) -> Result<Value, Vec<Problem>> {
    // Each input is read on its own, so that every one that is wrong says so at once.
    let namespace_input = input::document("namespace", namespace)
        .and_then(|doc| doc.map(input::namespace).transpose());
    let hint = namespace_input
        .as_ref()
        .ok()
        .and_then(|ns| ns.as_ref())
        .and_then(|ns| ns.names.as_deref());
    let request_json = input::document("pod", pod).and_then(|doc| input::request(doc, hint));
    let namespace_given = !matches!(namespace_input, Ok(None));
    let (settings_json, settings_note) = match input::document("settings", settings)
        .map(|doc| input::settings(doc, namespace_given))
    {
        Ok((json, note)) => (Ok(json), note),
        Err(problem) => (Err(problem), None),
    };
    let parsed = settings_json
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|json| {
            Settings::from_value(json)
                .and_then(|s| s.validate().map(|()| s))
                .map_err(|message| Problem {
                    path: input::settings_path(&message),
                    ..Problem::new("settings", format!("invalid settings: {message}"))
                })
        });
    // The request as the policy reads it: as JSON text, which the engine's Pod borrows from.
    let request_text = request_json
        .as_ref()
        .map(Value::to_string)
        .map_err(Clone::clone);
    // Forget what an earlier call could not read (see `json::take_unreadable`).
    json::take_unreadable();
    let request = request_text
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|text| {
            serde_json::from_str::<AdmissionRequest>(text)
                .map_err(|e| Problem::new("pod", format!("pod: not an AdmissionRequest: {e}")))
        });
    let (request_json, namespace_input, settings_json, parsed, request) = match (
        request_json,
        namespace_input,
        settings_json,
        parsed,
        request,
    ) {
        (Ok(r), Ok(n), Ok(s), Ok(p), Ok(q)) => (r, n, s, p, q),
        (r, n, _, p, q) => {
            let problems = [r.err(), q.err(), n.err(), p.err()];
            let mut problems: Vec<Problem> = problems.into_iter().flatten().collect();
            problems.dedup();
            return Err(problems);
        }
    };

    // The Namespace lookup the engine makes (in lookup mode, for a Pod creation), answered
    // from the Namespace input: the name asked for is the policy's.
    let mut asked: Option<(String, Lookup)> = None;
    let mut mismatch = None;
    let verdict = engine::evaluate(request, &parsed, |name| {
        let Some(ns) = &namespace_input else {
            return Err("no Namespace given".to_string());
        };
        let (lookup, warning) = ns.lookup(name);
        mismatch = warning;
        let answer = match &lookup {
            Lookup::Answers(ns) => Ok(ns.clone()),
            // As the module's lookup sees a host error.
            Lookup::Fails(e) => Err(engine::lookup_host_error(e)),
        };
        asked = Some((name.to_string(), lookup));
        answer
    });
    let injected = verdict.mutated.as_ref().map(json::Value::to_serde);
    // Text of the request read only when the engine reached it, and found unreadable: the
    // module refuses such a request (`malformed validate request`), and so does this.
    if let Some(why) = json::take_unreadable() {
        return Err(vec![Problem::new(
            "pod",
            format!("pod: cannot be read: {why}"),
        )]);
    }
    // The Pod as sent, as the host reads it for the patch.
    let original = request_json.get("object").unwrap_or(&Value::Null);

    // The explainer's own remarks on its input, apart from the policy's warnings (which are
    // the module's, word for word).
    let mut notes: Vec<String> = settings_note.into_iter().collect();
    notes.extend(mismatch);
    if parsed.namespace_selection == NamespaceSelection::Webhook && namespace_input.is_some() {
        notes.push(
            "the Namespace is not read: with namespaceSelection: webhook the webhook's selectors do stage A"
                .to_string(),
        );
    }
    let patch = match &injected {
        Some(injected) => serde_json::to_value(json_patch::diff(original, injected))
            .unwrap_or(Value::Array(Vec::new())),
        None => Value::Array(Vec::new()),
    };
    // The Pod as the API server stores it: the injected one, else the one sent.
    let stored = injected.as_ref().unwrap_or(original);
    let (containers, init_containers) =
        (names(stored, "containers"), names(stored, "initContainers"));
    let mut answer = json!({
        "outcome": verdict.outcome.as_str(),
        "reason": {"code": verdict.reason.code, "text": verdict.reason.text},
        "selectedBy": verdict.selected_by,
        "trail": trail(&verdict),
        "warnings": verdict.warnings,
        "notes": notes,
        "message": verdict.message,
        "auditAnnotations": verdict.audit_annotations(),
        "containers": containers,
        "initContainers": init_containers,
        "reproduce": reproduce(&request_json, &settings_json, asked.as_ref()),
    });
    // Moved in, not copied as `json!` would: with a large Pod they are most of the answer.
    if let Some(fields) = answer.as_object_mut() {
        fields.insert("patch".into(), patch);
        fields.insert("pod".into(), injected.unwrap_or(Value::Null));
    }
    Ok(answer)
}

/// The names of `spec.<list>`, in order.
fn names(pod: &Value, list: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|c| {
                    c.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
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

/// `outcome: invalid` for an input that is not text (a JS value that cannot be written as
/// JSON).
pub fn unreadable(input: &'static str, message: String) -> Value {
    invalid(&[Problem::new(input, format!("{input}: {message}"))])
}

/// `outcome: invalid`: `error` is the first problem (the Pod's, then the Namespace's, then
/// the settings'), `errors` all of them, each with where it is.
fn invalid(problems: &[Problem]) -> Value {
    let where_ = |p: &Problem| json!({"input": p.input, "line": p.line, "column": p.column, "path": p.path, "message": p.message});
    let first = problems
        .first()
        .cloned()
        .unwrap_or_else(|| Problem::new("pod", "invalid input"));
    let message = problems
        .iter()
        .map(|p| p.message.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    json!({
        "outcome": "invalid",
        "reason": {"code": format!("invalid-{}", first.input), "text": first.message},
        "selectedBy": null,
        "trail": [],
        "warnings": [],
        "notes": [],
        "message": message,
        "auditAnnotations": null,
        "error": where_(&first),
        "errors": problems.iter().map(where_).collect::<Vec<_>>(),
        "patch": [],
        "pod": null,
        "containers": [],
        "initContainers": [],
        "reproduce": null,
    })
}

/// The files `kwctl run` needs to give the same answer: the request, the settings and, when
/// the policy looked the Namespace up, the session that answers that lookup (`asked`: the
/// name, and the answer) as the input did (kwctl's replay format, as
/// `--record-host-capabilities-interactions` writes it).
fn reproduce(request: &Value, settings: &Value, asked: Option<&(String, Lookup)>) -> Value {
    let session = asked.map(|(namespace, lookup)| {
        let response = match lookup {
            // Single-quoted YAML scalars: quotes doubled, nothing else escaped.
            Lookup::Answers(ns) => {
                format!("type: Success\n    payload: '{}'", ns.to_string().replace('\'', "''"))
            }
            Lookup::Fails(message) => format!(
                "type: Error\n    message: '{}'",
                message.replace('\'', "''").replace('\n', " ")
            ),
        };
        // Quoted only when YAML needs it (a name such as `123`), as kwctl's recorder does.
        let name = serde_yaml::to_string(namespace).unwrap_or_default();
        let name = name.trim_end();
        format!(
            "- type: Exchange\n  request: |\n    !KubernetesGetResource\n    api_version: v1\n    kind: Namespace\n    name: {name}\n    namespace: null\n    disable_cache: false\n    field_masks: null\n  response:\n    {response}\n"
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
    fn every_bad_input_says_where_at_once() {
        let a = explain(
            "metadata:\n  name: [web\n",
            "istio-injection: true",
            "policy: maybe\n",
        );
        assert_eq!(a["outcome"], "invalid");
        let inputs: Vec<&str> = a["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["input"].as_str().unwrap())
            .collect();
        assert_eq!(inputs, ["pod", "namespace", "settings"], "{a}");
        assert_eq!(a["error"]["input"], "pod");
        assert_eq!(a["error"]["line"], 3, "{a}");
        assert_eq!(a["errors"][2]["path"], "policy");
        assert_eq!(a["reason"]["code"], "invalid-pod");
        // An unknown top-level key is named as the field.
        let a = explain(POD, "", "nativeSidecar: true");
        assert_eq!(a["error"]["path"], "nativeSidecar", "{a}");
    }

    #[test]
    fn a_pod_without_namespace_is_created_in_the_namespace_given() {
        let pod =
            "kind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: app, image: app}]}\n";
        let ns = "kind: Namespace\nmetadata:\n  name: kube-system\n  labels: {istio-injection: enabled}\n";
        let a = explain(pod, ns, "");
        assert_eq!(
            (a["outcome"].as_str(), a["reason"]["code"].as_str()),
            (Some("skipped"), Some("ignored-namespace")),
            "{a}"
        );
        assert_eq!(a["containers"], json!(["app"]));
        // A Namespace named otherwise than the Pod's: its labels count, with a warning.
        let a = explain(POD, ns, "");
        assert_eq!(a["outcome"], "injected", "{a}");
        assert_eq!(a["containers"], json!(["app", "istio-proxy"]));
        assert!(
            a["notes"][0].as_str().unwrap().contains("kube-system"),
            "{a}"
        );
    }

    #[test]
    fn the_explainers_remarks_are_notes_and_the_warnings_stay_the_policys() {
        let pod = POD.replace(
            "  name: web\n",
            "  name: web\n  labels: {sidecar.istio.io/inject: \"yes\"}\n",
        );
        let a = explain(
            &pod,
            "istio-injection: enabled",
            "namespaceSelection: webhook",
        );
        assert_eq!(a["notes"].as_array().unwrap().len(), 1, "{a}");
        assert!(a["notes"][0].as_str().unwrap().contains("not read"));
        let warnings = a["warnings"].as_array().unwrap();
        assert_eq!(warnings.len(), 1, "{a}");
        assert!(
            warnings[0]
                .as_str()
                .unwrap()
                .contains("ignored invalid value \"yes\"")
        );
    }

    #[test]
    fn a_failing_lookup_is_rejected_and_reproduced_as_a_failing_session() {
        let session = "- type: Exchange\n  request: |\n    !KubernetesGetResource\n    api_version: v1\n    kind: Namespace\n    name: shop\n  response:\n    type: Error\n    message: it's gone\n";
        let a = explain(POD, session, "");
        assert_eq!(
            (a["outcome"].as_str(), a["reason"]["code"].as_str()),
            (Some("rejected"), Some("namespace-lookup-failed")),
            "{a}"
        );
        assert!(a["message"].as_str().unwrap().contains("it's gone"), "{a}");
        let replay = a["reproduce"]["session"].as_str().unwrap();
        assert!(
            replay.ends_with("    type: Error\n    message: 'it''s gone'\n"),
            "{replay}"
        );
        // The replayed session reads back as the same input.
        assert_eq!(explain(POD, replay, "")["message"], a["message"]);
    }

    #[test]
    fn the_session_answers_the_lookup_the_policy_makes_and_only_when_it_makes_one() {
        // An AdmissionRequest whose Pod and request name no namespace: the policy looks up
        // the namespace "", and the session must answer that lookup for kwctl to replay it.
        let mut request = json!({"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "object": {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "app", "image": "app"}]}}});
        let a = explain(&request.to_string(), "istio-injection: enabled", "");
        assert_eq!(a["outcome"], "injected", "{a}");
        let session = a["reproduce"]["session"].as_str().unwrap();
        assert!(session.contains("    name: ''\n"), "{session}");
        // Not a Pod creation: no lookup, so no session and no context-aware access.
        request["operation"] = json!("UPDATE");
        let a = explain(&request.to_string(), "istio-injection: enabled", "");
        assert_eq!(a["outcome"], "not-selected", "{a}");
        assert_eq!(a["reproduce"]["session"], Value::Null, "{a}");
        assert!(
            !a["reproduce"]["command"]
                .as_str()
                .unwrap()
                .contains("--allow-context-aware")
        );
    }

    #[test]
    fn settings_that_are_not_a_mapping_are_refused_in_the_policys_words() {
        for text in ["5", "- policy: enabled"] {
            let a = explain(POD, "", text);
            assert_eq!(a["outcome"], "invalid", "{a}");
            let json = serde_json::to_vec(&input::document("s", text).unwrap()).unwrap();
            let module = Settings::from_slice(&json).unwrap_err();
            assert_eq!(a["message"], format!("invalid settings: {module}"));
        }
    }

    #[test]
    fn lookup_asked_without_a_namespace_is_webhook_selection_and_a_note_says_so() {
        let a = explain(POD, "", "namespaceSelection: lookup");
        assert_eq!(a["outcome"], "injected", "{a}");
        assert_eq!(a["selectedBy"], Value::Null);
        assert!(
            a["notes"][0]
                .as_str()
                .unwrap()
                .contains("no Namespace is given"),
            "{a}"
        );
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
