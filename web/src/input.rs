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
    serde_yaml::from_str::<Value>(text)
        .map(|v| (!v.is_null()).then_some(v))
        .map_err(|e| {
            let at = e.location();
            Problem {
                line: at.as_ref().map(|l| l.line()),
                column: at.as_ref().map(|l| l.column()),
                ..Problem::new(input, format!("{input}: {e}"))
            }
        })
}

/// The AdmissionRequest for the Pod input: a Pod (created in its namespace, or `default`),
/// an AdmissionRequest, or an AdmissionReview.
pub fn request(doc: Option<Value>) -> Result<Value, Problem> {
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
        .unwrap_or("default");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok(json!({
        "uid": "00000000-0000-4000-8000-00000000e491",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": name,
        "namespace": namespace,
        "operation": "CREATE",
        "userInfo": {"username": "explain"},
        "object": doc,
        "dryRun": false,
    }))
}

/// The namespace the Pod is created in: the Pod's own, else the request's.
pub fn pod_namespace(request: &Value) -> String {
    let from_pod = request
        .pointer("/object/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty());
    from_pod
        .or_else(|| request.get("namespace").and_then(Value::as_str))
        .unwrap_or("default")
        .to_string()
}

/// The Namespace object the policy's lookup answers with: the Namespace input (a Namespace
/// object, or a map of its labels), in the Pod's namespace.
pub fn namespace(doc: Value, pod_namespace: &str) -> Result<Value, Problem> {
    let Value::Object(obj) = doc else {
        return Err(Problem::new(
            "namespace",
            "namespace: must be a Namespace, a map of its labels, or empty",
        ));
    };
    if obj.contains_key("metadata") || obj.get("kind").and_then(Value::as_str) == Some("Namespace")
    {
        let mut ns = Value::Object(obj);
        let name = ns.pointer("/metadata/name").and_then(Value::as_str);
        if let Some(name) = name
            && name != pod_namespace
        {
            return Err(Problem::new(
                "namespace",
                format!(
                    "namespace: the Namespace is {name:?}, but the Pod is created in {pod_namespace:?}"
                ),
            ));
        }
        if let Some(labels) = ns.pointer("/metadata/labels")
            && !labels.is_null()
            && !is_string_map(labels)
        {
            return Err(Problem::new(
                "namespace",
                "namespace: metadata.labels must be a map of strings",
            ));
        }
        if let Some(meta) = ns.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("name".into(), pod_namespace.into());
        }
        return Ok(ns);
    }
    let labels = Value::Object(obj);
    if !is_string_map(&labels) {
        return Err(Problem::new(
            "namespace",
            "namespace: a map of labels must have string values (quote values such as \"true\")",
        ));
    }
    let mut meta = Map::new();
    meta.insert("name".into(), pod_namespace.into());
    meta.insert("labels".into(), labels);
    Ok(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta}))
}

fn is_string_map(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.values().all(Value::is_string))
}

/// The settings as JSON: an empty input is the defaults. An empty Namespace input means
/// that the webhook's selectors did stage A (`namespaceSelection: webhook`).
pub fn settings(doc: Option<Value>, namespace_given: bool) -> Result<Value, Problem> {
    let mut settings = match doc {
        None => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(Problem::new("settings", "settings: must be a mapping")),
    };
    if !namespace_given && let Some(obj) = settings.as_object_mut() {
        obj.insert("namespaceSelection".into(), "webhook".into());
    }
    Ok(settings)
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
    fn a_pod_an_admission_request_and_a_review_give_the_same_request() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
                         "spec": {"containers": [{"name": "app"}]}});
        let from_pod = request(Some(pod.clone())).unwrap();
        assert_eq!(from_pod["namespace"], "shop");
        assert_eq!(from_pod["operation"], "CREATE");
        assert_eq!(from_pod["object"], pod);
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": from_pod});
        assert_eq!(request(Some(review)).unwrap(), from_pod);
        assert_eq!(request(Some(from_pod.clone())).unwrap(), from_pod);
    }

    #[test]
    fn a_document_that_is_not_a_pod_is_refused() {
        let p = request(Some(json!({"kind": "Deployment", "metadata": {}}))).unwrap_err();
        assert!(p.message.contains("is a Deployment"), "{p:?}");
        assert!(request(Some(json!(["a"]))).is_err());
        assert!(request(None).is_err());
    }

    #[test]
    fn namespace_from_labels_or_object() {
        let ns = namespace(json!({"istio-injection": "enabled"}), "shop").unwrap();
        assert_eq!(ns["metadata"]["name"], "shop");
        assert_eq!(ns["metadata"]["labels"]["istio-injection"], "enabled");
        let obj = json!({"kind": "Namespace", "metadata": {"name": "shop", "labels": {"a": "b"}}});
        assert_eq!(
            namespace(obj, "shop").unwrap()["metadata"]["labels"]["a"],
            "b"
        );
        let other = json!({"kind": "Namespace", "metadata": {"name": "other"}});
        assert!(namespace(other, "shop").is_err());
        assert!(namespace(json!({"istio-injection": true}), "shop").is_err());
    }

    #[test]
    fn no_namespace_means_webhook_selection() {
        assert_eq!(
            settings(None, false).unwrap()["namespaceSelection"],
            "webhook"
        );
        assert!(
            settings(None, true)
                .unwrap()
                .get("namespaceSelection")
                .is_none()
        );
        assert!(settings(Some(json!("x")), true).is_err());
    }
}
