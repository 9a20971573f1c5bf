//! What the user typed: three documents in YAML or JSON (a Pod, a Namespace, the settings),
//! read into the JSON the engine takes, with errors that say where.

use serde_json::{Map, Value, json};

/// Input that cannot be used, and where it goes wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// `pod`, `namespace` or `settings`.
    pub input: &'static str,
    pub message: String,
    /// 1-based, for a document that cannot be parsed.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The field at fault, for settings (`values.global.proxy.statusPort`).
    pub path: Option<String>,
}

impl Problem {
    pub fn new(input: &'static str, message: impl Into<String>) -> Self {
        Problem {
            input,
            message: message.into(),
            line: None,
            column: None,
            path: None,
        }
    }
}

/// A YAML or JSON document; `None` when the text is blank. JSON (text starting with `{` or
/// `[`) is read as JSON, so that its numbers and errors are JSON's.
pub fn document(input: &'static str, text: &str) -> Result<Option<Value>, Problem> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return serde_json::from_str(text).map(Some).map_err(|e| Problem {
            line: Some(e.line()),
            column: Some(e.column()),
            ..Problem::new(input, format!("{input}: {e}"))
        });
    }
    let value = serde_yaml::from_str::<Value>(text).map_err(|e| {
        let at = e.location();
        Problem {
            line: at.as_ref().map(|l| l.line()),
            column: at.as_ref().map(|l| l.column()),
            ..Problem::new(input, format!("{input}: {e}"))
        }
    })?;
    // serde_yaml lets a document nest one level deeper than serde_json does: the same
    // document is refused alike in either form.
    if nesting(&value) > JSON_NESTING {
        return Err(Problem::new(
            input,
            format!(
                "{input}: recursion limit exceeded: nested deeper than {JSON_NESTING} lists and maps, as JSON input may be"
            ),
        ));
    }
    Ok((!value.is_null()).then_some(value))
}

/// How many lists and maps serde_json reads inside one another before it refuses the text.
const JSON_NESTING: usize = 127;

/// How many lists and maps are nested at the deepest point of `value`.
fn nesting(value: &Value) -> usize {
    let inner = match value {
        Value::Array(items) => items.iter().map(nesting).max(),
        Value::Object(fields) => fields.values().map(nesting).max(),
        _ => return 0,
    };
    1 + inner.unwrap_or(0)
}

/// The AdmissionRequest for the Pod input: a Pod (created in its namespace, else in the
/// namespace the Namespace input names, else in `default`), an AdmissionRequest, or an
/// AdmissionReview.
pub fn request(doc: Option<Value>, namespace_hint: Option<&str>) -> Result<Value, Problem> {
    let Some(doc) = doc else {
        return Err(Problem::new(
            "pod",
            "pod: empty: paste a Pod, an AdmissionRequest or an AdmissionReview",
        ));
    };
    let Value::Object(obj) = &doc else {
        return Err(Problem::new(
            "pod",
            "pod: must be a Pod, an AdmissionRequest or an AdmissionReview (a mapping)",
        ));
    };
    let kind = obj.get("kind");
    if kind.and_then(Value::as_str) == Some("AdmissionReview") {
        return match obj.get("request") {
            Some(r @ Value::Object(_)) => Ok(r.clone()),
            _ => Err(Problem::new(
                "pod",
                "pod: the AdmissionReview has no request",
            )),
        };
    }
    // An AdmissionRequest names its kind as a group/version/kind object.
    if kind.is_some_and(Value::is_object) || obj.contains_key("operation") {
        return Ok(doc);
    }
    match kind.and_then(Value::as_str) {
        None | Some("Pod") => {}
        Some(other) => {
            return Err(Problem::new(
                "pod",
                format!(
                    "pod: the document is a {other}, not a Pod, an AdmissionRequest or an AdmissionReview"
                ),
            ));
        }
    }
    let meta = obj.get("metadata");
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .or(namespace_hint)
        .unwrap_or("default");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut request = json!({
        "uid": "00000000-0000-4000-8000-00000000e491",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": name,
        "namespace": namespace,
        "operation": "CREATE",
        "userInfo": {"username": "explain"},
        "dryRun": false,
    });
    // Moved in, not copied as `json!` would.
    if let Some(fields) = request.as_object_mut() {
        fields.insert("object".into(), doc);
    }
    Ok(request)
}

/// What the policy's Namespace lookup answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// The Namespace object.
    Answers(Value),
    /// An error, as the host returns it (a recorded session's `Error`, or a session that
    /// does not answer this lookup).
    Fails(String),
}

/// The Namespace input, read.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceInput {
    /// The namespace it describes, when it names one: a Pod that names none is created
    /// there (the API server fills the Pod's namespace from the request's).
    pub names: Option<String>,
    /// A recorded kwctl session, which answers only the lookup it recorded.
    recorded: bool,
    lookup: Lookup,
}

impl NamespaceInput {
    /// What the lookup of the Pod's namespace answers, and a warning when the input
    /// describes another namespace.
    pub fn lookup(&self, pod_namespace: &str) -> (Lookup, Option<String>) {
        match (&self.lookup, self.names.as_deref()) {
            (Lookup::Answers(_), Some(name)) if name != pod_namespace => {
                if self.recorded {
                    // As kwctl replays it: the recorded request is not the one made.
                    return (
                        Lookup::Fails(format!(
                            "Replay error: unexpected request. Was expecting the Namespace {name:?}, got the Namespace {pod_namespace:?} instead"
                        )),
                        None,
                    );
                }
                (
                    self.lookup.clone(),
                    Some(format!(
                        "the Namespace input is named {name:?}, but the Pod is created in {pod_namespace:?}: its labels are taken as those of {pod_namespace:?}"
                    )),
                )
            }
            (Lookup::Answers(ns), None) => {
                // A map of labels: the Namespace object of the Pod's namespace.
                let mut ns = ns.clone();
                if let Some(meta) = ns.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("name".into(), pod_namespace.into());
                }
                (Lookup::Answers(ns), None)
            }
            _ => (self.lookup.clone(), None),
        }
    }
}

/// The Namespace input: a Namespace object, a map of its labels, or a kwctl
/// host-capabilities session (`--replay-host-capabilities-interactions`), as recorded from
/// a cluster or downloaded from the page, whose first exchange answers the lookup.
pub fn namespace(doc: Value) -> Result<NamespaceInput, Problem> {
    let obj = match doc {
        Value::Object(obj) => obj,
        Value::Array(entries) => return session(&entries),
        _ => {
            return Err(Problem::new(
                "namespace",
                "namespace: must be a Namespace, a map of its labels, a kwctl session, or empty",
            ));
        }
    };
    if obj.contains_key("metadata")
        || obj.contains_key("apiVersion")
        || obj.get("kind").and_then(Value::as_str) == Some("Namespace")
    {
        if let Some(kind) = obj.get("kind").and_then(Value::as_str)
            && kind != "Namespace"
        {
            return Err(Problem::new(
                "namespace",
                format!("namespace: the document is a {kind}, not a Namespace"),
            ));
        }
        let ns = Value::Object(obj);
        if let Some(labels) = ns.pointer("/metadata/labels")
            && !labels.is_null()
            && !is_string_map(labels)
        {
            return Err(Problem {
                path: Some("metadata.labels".into()),
                ..Problem::new(
                    "namespace",
                    "namespace: metadata.labels must be a map of strings (quote values such as \"true\")",
                )
            });
        }
        let names = ns
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        return Ok(NamespaceInput {
            names,
            recorded: false,
            lookup: Lookup::Answers(ns),
        });
    }
    let labels = Value::Object(obj);
    if !is_string_map(&labels) {
        return Err(Problem::new(
            "namespace",
            "namespace: a map of labels must have string values (quote values such as \"true\")",
        ));
    }
    Ok(NamespaceInput {
        names: None,
        recorded: false,
        lookup: Lookup::Answers(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"labels": labels}}),
        ),
    })
}

/// A kwctl session: kwctl replays exchanges in order, so the first one must be the
/// policy's only host call, `get_resource(v1/Namespace NAME)`.
fn session(entries: &[Value]) -> Result<NamespaceInput, Problem> {
    let bad = |what: &str| {
        Problem::new(
            "namespace",
            format!("namespace: not a kwctl session: {what}"),
        )
    };
    let Some(first) = entries.first() else {
        return Ok(NamespaceInput {
            names: None,
            recorded: true,
            lookup: Lookup::Fails("the list of recorded responses is empty".into()),
        });
    };
    if first.get("type").and_then(Value::as_str) != Some("Exchange") {
        return Err(bad("the first entry has no `type: Exchange`"));
    }
    let request = first
        .get("request")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("the first exchange has no request"))?;
    // `!KubernetesGetResource` tags the request's first line (serde_yaml's enum form).
    let (tag, fields) = request
        .trim_start()
        .split_once('\n')
        .unwrap_or((request, ""));
    let fields: Value = serde_yaml::from_str(fields).unwrap_or(Value::Null);
    let field = |key: &str| fields.get(key).and_then(Value::as_str).unwrap_or_default();
    let names = (tag.trim() == "!KubernetesGetResource"
        && field("api_version") == "v1"
        && field("kind") == "Namespace")
        .then(|| field("name").to_string());
    let Some(name) = names else {
        return Ok(NamespaceInput {
            names: None,
            recorded: true,
            lookup: Lookup::Fails(format!(
                "Replay error: unexpected request. Was expecting {}, got the Namespace lookup instead",
                request.trim()
            )),
        });
    };
    let response = first.get("response").unwrap_or(&Value::Null);
    let lookup = match response.get("type").and_then(Value::as_str) {
        Some("Success") => {
            let payload = response
                .get("payload")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match serde_json::from_str::<Value>(payload) {
                Ok(ns @ Value::Object(_)) => Lookup::Answers(ns),
                Ok(_) => return Err(bad("the recorded Namespace is not an object")),
                Err(e) => Lookup::Fails(format!("cannot decode the recorded Namespace: {e}")),
            }
        }
        Some("Error") => Lookup::Fails(
            response
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        _ => {
            return Err(bad(
                "the first exchange's response is neither `type: Success` nor `type: Error`",
            ));
        }
    };
    Ok(NamespaceInput {
        names: Some(name),
        recorded: true,
        lookup,
    })
}

fn is_string_map(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.values().all(Value::is_string))
}

/// The settings as JSON: an empty input is the defaults. An empty Namespace input means
/// that the webhook's selectors did stage A (`namespaceSelection: webhook`); the note says so
/// when the settings asked for `lookup`. Settings that are not a mapping are left for the
/// policy's own parsing to refuse, in its words.
pub fn settings(doc: Option<Value>, namespace_given: bool) -> (Value, Option<String>) {
    let mut settings = doc.unwrap_or_else(|| Value::Object(Map::new()));
    let mut note = None;
    if !namespace_given && let Some(obj) = settings.as_object_mut() {
        let asked = obj.insert("namespaceSelection".into(), "webhook".into());
        if asked.as_ref().and_then(Value::as_str) == Some("lookup") {
            note = Some(
                "namespaceSelection: lookup, but no Namespace is given: evaluated as namespaceSelection: webhook (give the Namespace to evaluate stage A)"
                    .to_string(),
            );
        }
    }
    (settings, note)
}

/// The field a settings message names: `validate_settings` messages start with the field's
/// path (`values.global.proxy.statusPort: ...`), or with `settings:` when it is the whole.
pub fn settings_path(message: &str) -> Option<String> {
    let (path, _) = message.split_once(": ")?;
    let is_path = !path.is_empty()
        && path != "settings"
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/[]".contains(c));
    is_path.then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_errors_say_where() {
        let p = document("pod", "metadata:\n  name: web\n  labels: [unclosed\n").unwrap_err();
        assert_eq!(p.input, "pod");
        assert!(p.line.is_some() && p.column.is_some(), "{p:?}");
        let p = document("pod", "{\"metadata\": }").unwrap_err();
        assert_eq!((p.line, p.column), (Some(1), Some(14)), "{p:?}");
    }

    #[test]
    fn yaml_nests_as_deep_as_json_and_no_deeper() {
        let lists = |depth: usize| format!("a: {}{}", "[".repeat(depth), "]".repeat(depth));
        let as_json =
            |depth: usize| format!("{{\"a\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
        // The map around the lists is one level.
        for depth in [JSON_NESTING - 2, JSON_NESTING - 1, JSON_NESTING] {
            let json = document("pod", &as_json(depth)).map(|_| ());
            let yaml = document("pod", &lists(depth)).map(|_| ());
            assert_eq!(
                json.is_ok(),
                yaml.is_ok(),
                "{depth} lists: {json:?} / {yaml:?}"
            );
            assert_eq!(
                json.is_ok(),
                depth < JSON_NESTING,
                "{depth} lists: {json:?}"
            );
        }
        let p = document("pod", &lists(JSON_NESTING)).unwrap_err();
        assert!(p.message.contains("recursion limit exceeded"), "{p:?}");
    }

    #[test]
    fn a_pod_an_admission_request_and_a_review_give_the_same_request() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
                         "spec": {"containers": [{"name": "app"}]}});
        let from_pod = request(Some(pod.clone()), None).unwrap();
        assert_eq!(from_pod["namespace"], "shop");
        assert_eq!(from_pod["operation"], "CREATE");
        assert_eq!(from_pod["object"], pod);
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": from_pod});
        assert_eq!(request(Some(review), None).unwrap(), from_pod);
        assert_eq!(request(Some(from_pod.clone()), None).unwrap(), from_pod);
    }

    #[test]
    fn a_pod_without_namespace_is_created_in_the_namespace_input_else_default() {
        let pod = json!({"kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": []}});
        assert_eq!(
            request(Some(pod.clone()), Some("kube-system")).unwrap()["namespace"],
            "kube-system"
        );
        assert_eq!(request(Some(pod), None).unwrap()["namespace"], "default");
        // The Pod's own namespace wins.
        let pod = json!({"kind": "Pod", "metadata": {"namespace": "shop"}});
        assert_eq!(
            request(Some(pod), Some("other")).unwrap()["namespace"],
            "shop"
        );
    }

    #[test]
    fn a_document_that_is_not_a_pod_is_refused() {
        let p = request(Some(json!({"kind": "Deployment", "metadata": {}})), None).unwrap_err();
        assert!(p.message.contains("is a Deployment"), "{p:?}");
        assert!(request(Some(json!(["a"])), None).is_err());
        assert!(request(None, None).is_err());
    }

    #[test]
    fn namespace_from_labels_or_object() {
        let ns = namespace(json!({"istio-injection": "enabled"})).unwrap();
        assert_eq!(ns.names, None);
        let (Lookup::Answers(obj), None) = ns.lookup("shop") else {
            panic!("{ns:?}")
        };
        assert_eq!(obj["metadata"]["name"], "shop");
        assert_eq!(obj["metadata"]["labels"]["istio-injection"], "enabled");

        let input =
            json!({"kind": "Namespace", "metadata": {"name": "shop", "labels": {"a": "b"}}});
        let ns = namespace(input.clone()).unwrap();
        assert_eq!(ns.names.as_deref(), Some("shop"));
        assert_eq!(ns.lookup("shop"), (Lookup::Answers(input.clone()), None));
        // Another namespace's object: its labels are used, with a warning.
        let (lookup, warning) = ns.lookup("other");
        assert_eq!(lookup, Lookup::Answers(input));
        assert!(warning.unwrap().contains("\"shop\""));

        assert!(namespace(json!({"istio-injection": true})).is_err());
        assert!(namespace(json!({"kind": "Pod", "metadata": {}})).is_err());
        assert!(namespace(json!("text")).is_err());
    }

    const SESSION: &str = "- type: Exchange\n  request: |\n    !KubernetesGetResource\n    api_version: v1\n    kind: Namespace\n    name: demo\n    namespace: null\n    disable_cache: false\n    field_masks: null\n  response:\n    type: Success\n    payload: '{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"labels\":{\"istio-injection\":\"enabled\"},\"name\":\"demo\"}}'\n";

    #[test]
    fn a_kwctl_session_answers_the_lookup_it_recorded_and_only_that() {
        let doc = document("namespace", SESSION).unwrap().unwrap();
        let ns = namespace(doc).unwrap();
        assert_eq!(ns.names.as_deref(), Some("demo"));
        let (Lookup::Answers(obj), None) = ns.lookup("demo") else {
            panic!("{ns:?}")
        };
        assert_eq!(obj["metadata"]["labels"]["istio-injection"], "enabled");
        let (Lookup::Fails(e), None) = ns.lookup("shop") else {
            panic!("{ns:?}")
        };
        assert!(e.starts_with("Replay error: unexpected request"), "{e}");

        let failing = SESSION.replace(
            "type: Success\n    payload: '{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"labels\":{\"istio-injection\":\"enabled\"},\"name\":\"demo\"}}'",
            "type: Error\n    message: Cannot find v1/Namespace named 'demo' inside of namespace 'None'",
        );
        let ns = namespace(document("namespace", &failing).unwrap().unwrap()).unwrap();
        assert_eq!(
            ns.lookup("demo").0,
            Lookup::Fails(
                "Cannot find v1/Namespace named 'demo' inside of namespace 'None'".into()
            )
        );
        let empty = namespace(json!([])).unwrap();
        assert_eq!(
            empty.lookup("demo").0,
            Lookup::Fails("the list of recorded responses is empty".into())
        );
        assert!(namespace(json!([{"type": "Other"}])).is_err());
    }

    #[test]
    fn settings_messages_name_their_field() {
        assert_eq!(
            settings_path("values.global.proxy.statusPort: invalid type").as_deref(),
            Some("values.global.proxy.statusPort")
        );
        assert_eq!(
            settings_path("neverInjectSelector[0]: bad").as_deref(),
            Some("neverInjectSelector[0]")
        );
        assert_eq!(settings_path("settings: expected a map"), None);
        assert_eq!(settings_path("no field here"), None);
    }

    #[test]
    fn no_namespace_means_webhook_selection() {
        assert_eq!(settings(None, false).0["namespaceSelection"], "webhook");
        assert!(settings(None, true).0.get("namespaceSelection").is_none());
        let (lookup, note) = settings(Some(json!({"namespaceSelection": "lookup"})), false);
        assert_eq!(lookup["namespaceSelection"], "webhook");
        assert!(note.unwrap().contains("no Namespace is given"));
        // Not a mapping: left for the policy to refuse.
        assert_eq!(settings(Some(json!("x")), false).0, json!("x"));
    }
}
