//! The example of `make run`, for the page's editors: demo/request.json's Pod, the Namespace
//! demo/session.yml answers the lookup with, and demo/settings.yml. Compiled in, so that the
//! page and `make run` cannot drift apart.

use serde_json::{Value, json};

const REQUEST: &str = include_str!("../../demo/request.json");
const SESSION: &str = include_str!("../../demo/session.yml");
const SETTINGS: &str = include_str!("../../demo/settings.yml");

/// `{pod, namespace, settings}`, each as YAML text.
pub fn example() -> Value {
    json!({
        "pod": pod_yaml().unwrap_or_default(),
        "namespace": namespace_yaml().unwrap_or_default(),
        "settings": SETTINGS,
    })
}

/// The request's Pod. Read as a YAML value, which keeps the file's key order (a JSON map here
/// sorts its keys).
fn pod_yaml() -> Option<String> {
    let request: serde_yaml::Value = serde_yaml::from_str(REQUEST).ok()?;
    serde_yaml::to_string(request.get("object")?).ok()
}

/// The Namespace the session's only exchange answers with.
fn namespace_yaml() -> Option<String> {
    let session: serde_yaml::Value = serde_yaml::from_str(SESSION).ok()?;
    let payload = session.get(0)?.get("response")?.get("payload")?.as_str()?;
    let namespace: serde_yaml::Value = serde_yaml::from_str(payload).ok()?;
    serde_yaml::to_string(&namespace).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain;

    #[test]
    fn the_example_is_make_run_and_injects() {
        let e = example();
        let pod = e["pod"].as_str().unwrap();
        assert!(pod.starts_with("apiVersion: v1\nkind: Pod\n"), "{pod}");
        assert!(pod.contains("name: reviews-v1-5b9c7d8f6-x2x9q"), "{pod}");
        let namespace = e["namespace"].as_str().unwrap();
        assert!(
            namespace.contains("istio-injection: enabled"),
            "{namespace}"
        );
        assert!(namespace.contains("name: bookinfo"), "{namespace}");
        assert_eq!(e["settings"], SETTINGS);

        let a = explain::explain(pod, namespace, e["settings"].as_str().unwrap());
        assert_eq!(a["outcome"], "injected", "{a}");
        assert_eq!(a["selectedBy"], "namespace");
        // The files to reproduce it carry the same Namespace lookup as demo/session.yml.
        let session = a["reproduce"]["session"].as_str().unwrap();
        assert!(session.contains("name: bookinfo\n"), "{session}");
        assert!(
            session.contains("\"istio-injection\":\"enabled\""),
            "{session}"
        );
    }
}
