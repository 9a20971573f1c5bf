//! The ClusterAdmissionPolicy manifests in `manifests/`:
//!
//! - every policy has what injection needs (`mutating: true`,
//!   `failurePolicy: Fail`, `timeoutSeconds: 10`, CREATE of pods, the module
//!   `registry://<ociUrl>:v<version>` of `policy-metadata.yml`, the right
//!   `namespaceSelection` and `revision` settings);
//! - the label selectors of the webhook-mode policies, evaluated here with
//!   Kubernetes' LabelSelector semantics, select exactly the Pods that Istio's
//!   MutatingWebhookConfiguration sends to istiod (stage A of
//!   `istio-injection.md`): the truth-table rows of the README, and every
//!   combination of the injection labels;
//! - the lookup-mode policy is called for every namespace but the four Istio
//!   ignores;
//! - the files are what `make manifests` writes (no drift).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use serde_yaml::Value;
use support::{TempDir, kwhost, root};

type Labels = BTreeMap<String, String>;

const IGNORED: [&str; 4] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];
/// `MANIFEST_REVISIONS` in the Makefile.
const REVISIONS: [&str; 2] = ["default", "canary"];

fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn load(name: &str) -> Vec<Value> {
    let path = root().join("manifests").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `make manifests`", path.display()));
    documents(&text)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Kubernetes LabelSelector semantics (LabelSelectorAsSelector): matchLabels
/// and every matchExpressions term must hold; NotIn and DoesNotExist hold
/// when the key is absent; an absent selector matches everything.
fn selects(selector: Option<&Value>, labels: &Labels) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    if let Some(match_labels) = selector.get("matchLabels").and_then(Value::as_mapping) {
        for (k, v) in match_labels {
            if labels.get(k.as_str().unwrap()).map(String::as_str) != v.as_str() {
                return false;
            }
        }
    }
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    expressions.iter().all(|e| {
        let key = e["key"].as_str().unwrap();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_sequence)
            .map(|s| s.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        let value = labels.get(key).map(String::as_str);
        match e["operator"].as_str().unwrap() {
            "In" => {
                assert!(!values.is_empty(), "In needs values: {e:?}");
                value.is_some_and(|v| values.contains(&v))
            }
            "NotIn" => {
                assert!(!values.is_empty(), "NotIn needs values: {e:?}");
                value.is_none_or(|v| !values.contains(&v))
            }
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => panic!("unknown operator {other}"),
        }
    })
}

/// Whether the API server would call `policy` for a Pod with `pod` labels in
/// namespace `ns` with `ns_labels` (plus kubernetes.io/metadata.name, which
/// the API server puts on every Namespace).
fn calls(policy: &Value, ns: &str, ns_labels: &Labels, pod: &Labels) -> bool {
    let mut ns_labels = ns_labels.clone();
    ns_labels.insert("kubernetes.io/metadata.name".into(), ns.into());
    let spec = &policy["spec"];
    selects(spec.get("namespaceSelector"), &ns_labels) && selects(spec.get("objectSelector"), pod)
}

fn any_calls(policies: &[Value], ns: &str, ns_labels: &Labels, pod: &Labels) -> bool {
    policies.iter().any(|p| calls(p, ns, ns_labels, pod))
}

/// Istio's stage A for revision `rv` (istio-injection.md section (a)),
/// written from the spec rather than from the manifests: A1 rev.namespace,
/// A2 rev.object, and for the default revision A3 namespace, A4 object, A5
/// auto (with enableNamespacesByDefault).
fn istio_selects(rv: &str, auto: bool, ns: &str, ns_l: &Labels, pod: &Labels) -> bool {
    let get = |l: &Labels, k: &str| l.get(k).cloned();
    let injection = get(ns_l, "istio-injection");
    let ns_rev = get(ns_l, "istio.io/rev");
    let inject = get(pod, "sidecar.istio.io/inject");
    let pod_rev = get(pod, "istio.io/rev");
    let not_false = inject.as_deref() != Some("false");
    let a1 = ns_rev.as_deref() == Some(rv) && injection.is_none() && not_false;
    let a2 = ns_rev.is_none() && injection.is_none() && not_false && pod_rev.as_deref() == Some(rv);
    if rv != "default" {
        return a1 || a2;
    }
    let a3 = injection.as_deref() == Some("enabled") && not_false;
    let a4 = injection.is_none()
        && ns_rev.is_none()
        && inject.as_deref() == Some("true")
        && pod_rev.is_none();
    let a5 = auto
        && injection.is_none()
        && ns_rev.is_none()
        && !IGNORED.contains(&ns)
        && inject.is_none()
        && pod_rev.is_none();
    a1 || a2 || a3 || a4 || a5
}

fn metadata_annotation(key: &str) -> String {
    let text = std::fs::read_to_string(root().join("policy-metadata.yml")).unwrap();
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    doc["annotations"][key].as_str().unwrap().to_string()
}

#[test]
fn every_policy_has_what_injection_needs() {
    let module = format!(
        "registry://{}:v{}",
        metadata_annotation("io.kubewarden.policy.ociUrl"),
        metadata_annotation("io.kubewarden.policy.version")
    );
    let rules: Value = serde_yaml::from_str(
        "- {apiGroups: [''], apiVersions: [v1], resources: [pods], operations: [CREATE]}",
    )
    .unwrap();
    let mut names = BTreeSet::new();
    for revision in REVISIONS {
        let suffix = if revision == "default" {
            String::new()
        } else {
            format!("-{revision}")
        };
        for mode in ["lookup", "webhook"] {
            let file = format!("{mode}{suffix}.yml");
            let policies = load(&file);
            let expected_count = match (mode, revision) {
                ("lookup", _) => 1,
                ("webhook", "default") => 4,
                _ => 2,
            };
            assert_eq!(policies.len(), expected_count, "{file}");
            for p in &policies {
                let name = p["metadata"]["name"].as_str().unwrap();
                assert!(
                    names.insert(name.to_string()),
                    "duplicate policy name {name}"
                );
                assert_eq!(
                    p["apiVersion"], "policies.kubewarden.io/v1",
                    "{file} {name}"
                );
                assert_eq!(p["kind"], "ClusterAdmissionPolicy", "{file} {name}");
                let spec = &p["spec"];
                assert_eq!(
                    spec["module"].as_str(),
                    Some(module.as_str()),
                    "{file} {name}"
                );
                assert_eq!(spec["mutating"], Value::Bool(true), "{file} {name}");
                assert_eq!(spec["failurePolicy"], "Fail", "{file} {name}");
                assert_eq!(spec["timeoutSeconds"], 10, "{file} {name}");
                assert_eq!(spec["rules"], rules, "{file} {name}");
                assert_eq!(
                    spec["settings"]["namespaceSelection"], mode,
                    "{file} {name}"
                );
                match revision {
                    "default" => {
                        assert!(spec["settings"].get("revision").is_none(), "{file} {name}")
                    }
                    r => assert_eq!(spec["settings"]["revision"], r, "{file} {name}"),
                }
                assert_eq!(
                    p["metadata"]["labels"]["istio.io/rev"], revision,
                    "{file} {name}"
                );
                let context_aware = spec.get("contextAwareResources");
                if mode == "lookup" {
                    let expected: Value =
                        serde_yaml::from_str("- {apiVersion: v1, kind: Namespace}").unwrap();
                    assert_eq!(
                        context_aware,
                        Some(&expected),
                        "{file}: lookup reads Namespaces"
                    );
                    assert!(spec.get("objectSelector").is_none(), "{file}");
                } else {
                    assert!(
                        context_aware.is_none(),
                        "{file} {name}: webhook mode needs no lookup"
                    );
                }
            }
            if mode == "webhook" {
                let entries: BTreeSet<&str> = policies
                    .iter()
                    .map(|p| {
                        p["metadata"]["annotations"]["istio-sidecar-injector.kubewarden.io/webhook-entry"]
                            .as_str()
                            .unwrap()
                    })
                    .collect();
                let mut expected = BTreeSet::from([
                    "rev.namespace.sidecar-injector.istio.io",
                    "rev.object.sidecar-injector.istio.io",
                ]);
                if revision == "default" {
                    expected.insert("namespace.sidecar-injector.istio.io");
                    expected.insert("object.sidecar-injector.istio.io");
                }
                assert_eq!(entries, expected, "{file}");
            }
        }
    }
}

/// (namespace labels, pod labels, default revision selects, canary selects)
/// for the README / istio-injection.md truth-table rows; pod annotations do
/// not exist for selectors, so the A= rows are the "nothing" rows.
#[allow(clippy::type_complexity)]
const TRUTH_TABLE: &[(&[(&str, &str)], &[(&str, &str)], bool, bool)] = &[
    (&[], &[], false, false),
    (&[], &[("sidecar.istio.io/inject", "true")], true, false),
    (&[], &[("sidecar.istio.io/inject", "false")], false, false),
    (&[], &[("sidecar.istio.io/inject", "yes")], false, false),
    (&[], &[("sidecar.istio.io/inject", "True")], false, false),
    (&[], &[("istio.io/rev", "default")], true, false),
    (
        &[],
        &[
            ("istio.io/rev", "default"),
            ("sidecar.istio.io/inject", "true"),
        ],
        true,
        false,
    ),
    (
        &[],
        &[
            ("sidecar.istio.io/inject", "true"),
            ("istio.io/rev", "canary"),
        ],
        false,
        true,
    ),
    (&[("istio-injection", "enabled")], &[], true, false),
    (
        &[("istio-injection", "enabled")],
        &[("sidecar.istio.io/inject", "true")],
        true,
        false,
    ),
    (
        &[("istio-injection", "enabled")],
        &[("sidecar.istio.io/inject", "false")],
        false,
        false,
    ),
    (
        &[("istio-injection", "enabled")],
        &[("sidecar.istio.io/inject", "yes")],
        true,
        false,
    ),
    (
        &[("istio-injection", "enabled")],
        &[("sidecar.istio.io/inject", "FALSE")],
        true,
        false,
    ),
    (
        &[("istio-injection", "enabled")],
        &[("sidecar.istio.io/inject", "")],
        true,
        false,
    ),
    (
        &[("istio-injection", "enabled")],
        &[("istio.io/rev", "canary")],
        true,
        false,
    ),
    (&[("istio-injection", "disabled")], &[], false, false),
    (
        &[("istio-injection", "disabled")],
        &[("sidecar.istio.io/inject", "true")],
        false,
        false,
    ),
    (
        &[("istio-injection", "disabled")],
        &[("istio.io/rev", "canary")],
        false,
        false,
    ),
    (
        &[("istio-injection", "true")],
        &[("sidecar.istio.io/inject", "true")],
        false,
        false,
    ),
    (&[("istio.io/rev", "default")], &[], true, false),
    (
        &[("istio.io/rev", "default")],
        &[("sidecar.istio.io/inject", "false")],
        false,
        false,
    ),
    (
        &[("istio.io/rev", "default")],
        &[("sidecar.istio.io/inject", "true")],
        true,
        false,
    ),
    (&[("istio.io/rev", "canary")], &[], false, true),
    (
        &[("istio.io/rev", "canary")],
        &[("sidecar.istio.io/inject", "true")],
        false,
        true,
    ),
    (
        &[("istio.io/rev", "canary")],
        &[("sidecar.istio.io/inject", "false")],
        false,
        false,
    ),
    (
        &[("istio-injection", "enabled"), ("istio.io/rev", "canary")],
        &[],
        true,
        false,
    ),
];

#[test]
fn webhook_selectors_follow_the_truth_table() {
    let default = load("webhook.yml");
    let canary = load("webhook-canary.yml");
    for (ns, pod, want_default, want_canary) in TRUTH_TABLE {
        let (ns, pod) = (labels(ns), labels(pod));
        assert_eq!(
            any_calls(&default, "bookinfo", &ns, &pod),
            *want_default,
            "default revision, namespace {ns:?}, pod {pod:?}"
        );
        assert_eq!(
            any_calls(&canary, "bookinfo", &ns, &pod),
            *want_canary,
            "canary revision, namespace {ns:?}, pod {pod:?}"
        );
        // The table agrees with the stage A rules the oracle encodes.
        assert_eq!(
            istio_selects("default", false, "bookinfo", &ns, &pod),
            *want_default
        );
        assert_eq!(
            istio_selects("canary", false, "bookinfo", &ns, &pod),
            *want_canary
        );
    }
}

/// Every combination of the four labels stage A reads.
fn combinations() -> Vec<(Labels, Labels)> {
    let opt = |key: &str, values: &[Option<&str>]| -> Vec<Option<(String, String)>> {
        values
            .iter()
            .map(|v| v.map(|v| (key.to_string(), v.to_string())))
            .collect()
    };
    let injection = opt(
        "istio-injection",
        &[None, Some("enabled"), Some("disabled"), Some("true")],
    );
    let ns_rev = opt(
        "istio.io/rev",
        &[None, Some("default"), Some("canary"), Some("")],
    );
    let inject = opt(
        "sidecar.istio.io/inject",
        &[None, Some("true"), Some("false"), Some(""), Some("yes")],
    );
    let pod_rev = opt("istio.io/rev", &[None, Some("default"), Some("canary")]);
    let mut out = Vec::new();
    for a in &injection {
        for b in &ns_rev {
            for c in &inject {
                for d in &pod_rev {
                    let ns: Labels = [a, b].into_iter().flatten().cloned().collect();
                    let pod: Labels = [c, d].into_iter().flatten().cloned().collect();
                    out.push((ns, pod));
                }
            }
        }
    }
    out
}

#[test]
fn webhook_selectors_equal_istio_for_every_label_combination() {
    let default = load("webhook.yml");
    let canary = load("webhook-canary.yml");
    let mut selected = (0, 0);
    for (ns, pod) in combinations() {
        for namespace in ["bookinfo", "istio-system", "kube-system"] {
            let d = any_calls(&default, namespace, &ns, &pod);
            let c = any_calls(&canary, namespace, &ns, &pod);
            assert_eq!(
                d,
                istio_selects("default", false, namespace, &ns, &pod),
                "default: ns {namespace} {ns:?}, pod {pod:?}"
            );
            assert_eq!(
                c,
                istio_selects("canary", false, namespace, &ns, &pod),
                "canary: ns {namespace} {ns:?}, pod {pod:?}"
            );
            // Istio's entries of one revision are disjoint: one call at most.
            let count = default
                .iter()
                .filter(|p| calls(p, namespace, &ns, &pod))
                .count();
            assert!(
                count <= 1,
                "{count} default-revision policies for ns {ns:?}, pod {pod:?}"
            );
            selected.0 += usize::from(d);
            selected.1 += usize::from(c);
        }
    }
    assert!(
        selected.0 > 0 && selected.1 > 0,
        "the enumeration selects something: {selected:?}"
    );
}

#[test]
fn enable_namespaces_by_default_adds_istio_auto_entry() {
    let dir = TempDir::new("manifests-auto");
    let settings = dir.0.join("settings.yml");
    std::fs::write(&settings, "enableNamespacesByDefault: true\n").unwrap();
    let out = kwhost(&[
        "manifests",
        "--metadata-path",
        "policy-metadata.yml",
        "--settings-path",
        settings.to_str().unwrap(),
        "--output-dir",
        dir.0.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let policies = documents(&std::fs::read_to_string(dir.0.join("webhook.yml")).unwrap());
    assert_eq!(policies.len(), 5);
    for p in &policies {
        assert_eq!(
            p["spec"]["settings"]["enableNamespacesByDefault"],
            Value::Bool(true)
        );
    }
    for (ns, pod) in combinations() {
        for namespace in [
            "bookinfo",
            "istio-system",
            "kube-system",
            "local-path-storage",
        ] {
            assert_eq!(
                any_calls(&policies, namespace, &ns, &pod),
                istio_selects("default", true, namespace, &ns, &pod),
                "auto: ns {namespace} {ns:?}, pod {pod:?}"
            );
        }
    }
}

#[test]
fn lookup_policy_skips_only_the_ignored_namespaces() {
    for file in ["lookup.yml", "lookup-canary.yml"] {
        let policies = load(file);
        let any_pod = [labels(&[]), labels(&[("sidecar.istio.io/inject", "true")])];
        let any_ns = [labels(&[]), labels(&[("istio-injection", "enabled")])];
        for pod in &any_pod {
            for ns_labels in &any_ns {
                for ns in ["default", "bookinfo", "istio-system", "kubewarden"] {
                    assert!(
                        any_calls(&policies, ns, ns_labels, pod),
                        "{file}: {ns} is handled"
                    );
                }
                for ns in IGNORED {
                    assert!(
                        !any_calls(&policies, ns, ns_labels, pod),
                        "{file}: {ns} is skipped"
                    );
                }
            }
        }
    }
}

#[test]
fn manifests_are_what_make_manifests_writes() {
    let dir = TempDir::new("manifests-drift");
    let mut args = vec![
        "manifests",
        "--metadata-path",
        "policy-metadata.yml",
        "--settings-path",
        "manifests/settings.yml",
    ];
    for r in REVISIONS {
        args.extend(["--revision", r]);
    }
    args.extend(["--output-dir", dir.0.to_str().unwrap()]);
    let out = kwhost(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = |d: &Path| -> BTreeSet<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yml") && n != "settings.yml")
            .collect()
    };
    let committed = root().join("manifests");
    assert_eq!(
        listing(&committed),
        listing(&dir.0),
        "the files in manifests/"
    );
    for name in listing(&dir.0) {
        let generated = std::fs::read_to_string(dir.0.join(&name)).unwrap();
        let current = std::fs::read_to_string(committed.join(&name)).unwrap();
        assert!(
            generated == current,
            "manifests/{name} differs from what `make manifests` writes: run `make manifests`"
        );
    }
}

#[test]
fn injector_policies_are_not_audited() {
    for file in [
        "lookup.yml",
        "lookup-canary.yml",
        "webhook.yml",
        "webhook-canary.yml",
    ] {
        for p in load(file) {
            assert_eq!(
                p["spec"]["backgroundAudit"],
                Value::Bool(false),
                "{file}: audited, an injector could only report pass"
            );
        }
    }
}

#[test]
fn check_policies_report_and_never_mutate() {
    for (revision, suffix) in [("default", ""), ("canary", "-canary")] {
        for (file, mode) in [
            (format!("check{suffix}.yml"), "monitor"),
            (format!("check-protect{suffix}.yml"), "protect"),
        ] {
            let policies = load(&file);
            assert_eq!(policies.len(), 1, "{file}");
            let spec = &policies[0]["spec"];
            assert_eq!(spec["mode"], mode, "{file}");
            assert_eq!(spec["mutating"], Value::Bool(false), "{file}");
            assert_eq!(spec["backgroundAudit"], Value::Bool(true), "{file}");
            assert_eq!(spec["settings"]["action"], "check", "{file}");
            assert_eq!(spec["settings"]["namespaceSelection"], "lookup", "{file}");
            match revision {
                "default" => assert!(spec["settings"].get("revision").is_none(), "{file}"),
                r => assert_eq!(spec["settings"]["revision"], r, "{file}"),
            }
            let expected: Value =
                serde_yaml::from_str("- {apiVersion: v1, kind: Namespace}").unwrap();
            assert_eq!(spec["contextAwareResources"], expected, "{file}");
            let pod = labels(&[]);
            let ns = labels(&[("istio-injection", "enabled")]);
            if mode == "monitor" {
                // A report never stands in the way of a Pod, and sees every namespace.
                assert_eq!(spec["failurePolicy"], "Ignore", "{file}");
                for name in IGNORED.iter().chain(&["default", "bookinfo"]) {
                    assert!(any_calls(&policies, name, &ns, &pod), "{file}: {name}");
                }
            } else {
                // A guard fails closed, and leaves the system namespaces alone.
                assert_eq!(spec["failurePolicy"], "Fail", "{file}");
                for name in IGNORED {
                    assert!(!any_calls(&policies, name, &ns, &pod), "{file}: {name}");
                }
                assert!(any_calls(&policies, "bookinfo", &ns, &pod), "{file}");
            }
        }
    }
}
