//! Golden tests: for each directory under `tests/golden/`, `case.json` holds a Pod, the
//! settings and the namespace labels; `expected.json` is the whole Pod the policy must
//! produce. The expectations were written from Istio's documented behaviour and its chart
//! templates, and checked field by field against the Pods Istio's own injector produces for
//! the same knobs. Run with `UPDATE_GOLDEN=1` to rewrite them after an intended change, then
//! review the diff.
//!
//! Every case is also re-injected: the output evaluated again must come back unchanged.

#[path = "../benches/common/mod.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};

use istio_sidecar_injector::decision::Outcome;
use istio_sidecar_injector::engine::Verdict;
use istio_sidecar_injector::settings::Settings;
use serde_json::{Value, json};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .expect("tests/golden exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("case.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Evaluates the Pod with parsed settings, and checks that the wasm entry's path (the
/// payload, with the settings as JSON, through `protocol::validate`) answers the same Pod.
fn inject(pod: &Value, settings_json: &Value, ns_labels: &Value) -> Verdict<'static> {
    let settings = Settings::from_value(settings_json).expect("settings");
    let verdict = evaluate(pod, &settings, ns_labels);
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let ns = json!({"metadata": {"name": namespace, "labels": ns_labels}});
    assert_eq!(
        common::validate_mutated(pod, namespace, settings_json, ns),
        common::mutated(&verdict),
        "the module's answer and evaluate disagree on {}",
        pod["metadata"]["name"]
    );
    verdict
}

fn evaluate(pod: &Value, settings: &Settings, ns_labels: &Value) -> Verdict<'static> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let ns = json!({"metadata": {"name": namespace, "labels": ns_labels}});
    common::evaluate(pod, namespace, settings, ns)
}

#[test]
fn golden_pods() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    let all = cases();
    assert!(all.len() >= 30, "golden cases missing");
    for dir in &all {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let case: Value = serde_json::from_str(&fs::read_to_string(dir.join("case.json")).unwrap())
            .unwrap_or_else(|e| panic!("{name}: case.json: {e}"));
        let settings =
            Settings::from_value(&case["settings"]).unwrap_or_else(|e| panic!("{name}: {e}"));
        settings
            .validate()
            .unwrap_or_else(|e| panic!("{name}: settings: {e}"));
        let verdict = inject(&case["pod"], &case["settings"], &case["namespaceLabels"]);
        assert_eq!(
            verdict.outcome,
            Outcome::Injected,
            "{name}: {}",
            verdict.reason
        );
        let injected = common::mutated(&verdict);

        let expected_path = dir.join("expected.json");
        if update {
            let text = serde_json::to_string_pretty(&injected).unwrap() + "\n";
            fs::write(&expected_path, text).unwrap();
        } else {
            let expected: Value =
                serde_json::from_str(&fs::read_to_string(&expected_path).unwrap_or_else(|e| {
                    panic!("{name}: {e} (run with UPDATE_GOLDEN=1 to create it)")
                }))
                .unwrap();
            if injected != expected {
                failures.push(format!(
                    "{name}: injected Pod differs from expected.json\n{}",
                    first_difference(&injected, &expected, String::new()).unwrap_or_default()
                ));
            }
        }

        let again = inject(&injected, &case["settings"], &case["namespaceLabels"]);
        assert_eq!(again.outcome, Outcome::Injected, "{name}: re-injection");
        let again = common::mutated(&again);
        if again != injected {
            failures.push(format!(
                "{name}: re-injection changed the Pod\n{}",
                first_difference(&again, &injected, String::new()).unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The first path where two JSON values differ, with both values.
fn first_difference(ours: &Value, expected: &Value, path: String) -> Option<String> {
    match (ours, expected) {
        (Value::Object(a), Value::Object(b)) => {
            for k in a.keys().chain(b.keys()) {
                let p = format!("{path}/{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => {
                        if let Some(d) = first_difference(x, y, p) {
                            return Some(d);
                        }
                    }
                    (x, y) => return Some(format!("{p}: ours {x:?}, expected {y:?}")),
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, format!("{path}/{i}"))),
        (a, b) if a == b => None,
        (a, b) => Some(format!("{path}: ours {a}, expected {b}")),
    }
}

/// Re-injecting a Pod that carries a classic sidecar with native sidecars on moves the
/// proxy to the init containers, as Istio does (its golden `merge-probers`): only a container
/// `istio-proxy` beside a native one (a chained template's, see `sidecar-spire`) stays.
#[test]
fn classic_sidecar_reinjected_as_native_moves_to_the_init_containers() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}});
    let labels = json!({"istio-injection": "enabled"});
    let classic = common::mutated(&evaluate(&pod, &Settings::default(), &labels));
    let native = Settings::from_value(&json!({"nativeSidecars": true})).unwrap();
    let again = common::mutated(&evaluate(&classic, &native, &labels));
    let names = |field: &str| -> Vec<&str> {
        again["spec"][field]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect()
    };
    assert_eq!(names("containers"), ["app"]);
    assert_eq!(names("initContainers"), ["istio-init", "istio-proxy"]);
    assert_eq!(
        again["spec"]["initContainers"][1]["restartPolicy"],
        "Always"
    );
}
