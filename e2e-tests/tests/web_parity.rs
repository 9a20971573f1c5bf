//! The explainer agrees with the policy: every case, run through `explain` from `web/pkg`
//! (the module the page loads, in Node with `initSync`) and through the annotated policy
//! module in this crate's waPC host, gives the same outcome, reason, trail, rejection
//! message, warnings and JSONPatch (the op lists compared exactly: both are
//! `json_patch::diff` of the same two Pods); `validateSettings` of the module's settings
//! answers as the module's `validate_settings`.
//!
//! The cases:
//! - every e2e scenario (`scenarios/*`): `request.json`, `settings.yml`, and `session.yml`
//!   given to `explain` as its Namespace input (a kwctl session), or `""` when there is none
//!   (webhook selection; a Pod creation in lookup mode without a session is given `[]`, a
//!   session with nothing recorded, as kwctl without `--allow-context-aware` has no answer
//!   either);
//! - every golden case (`../tests/golden/*/case.json`), the Pod and settings as YAML, the
//!   namespace as its labels;
//! - a decision matrix, Istio's truth table and more: Namespace labels x Pod labels and
//!   annotations x settings x namespace, in both selection modes (lookup: the Namespace
//!   given; webhook: none).
//!
//! Settings the module refuses (`validate_settings`) are `outcome: "invalid"` in `explain`,
//! with the settings' error carrying the same message: `invalid settings: <message>`.
//!
//! Runs when `WEB_PKG` names the wasm-bindgen output (`make web-tests` sets it after
//! `make web`); otherwise it says it is skipped. `POLICY_WASM` as for the scenarios.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, anyhow, bail};
use kwhost::host::{CompileCache, parse_settings};
use kwhost::policy_server::env_path;
use kwhost::response::AdmissionRequest;
use kwhost::scenario::{Evaluator, Expected, InProcess, Outcome, Scenario, discover, policy_wasm};
use kwhost::session::Session;
use serde_json::{Map, Value, json};

/// One case: what `explain` gets, and the same as the policy module gets it.
struct Case {
    name: String,
    pod: String,
    namespace: String,
    settings: String,
    policy: Scenario,
}

fn main() -> ExitCode {
    let Some(pkg) = env_path("WEB_PKG") else {
        println!(
            "web parity: skipped: WEB_PKG is not set (`make web-tests` builds web/pkg and sets it)"
        );
        println!("0 passed, 0 failed");
        return ExitCode::SUCCESS;
    };
    match run(&pkg) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("web parity: {e:#}");
            println!("0 passed, 1 failed");
            ExitCode::FAILURE
        }
    }
}

fn run(pkg: &Path) -> Result<bool> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let wasm = policy_wasm(manifest_dir);
    let cache =
        CompileCache::Directory(Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasmtime-cache"));
    let host = InProcess::new(&wasm, &cache)
        .with_context(|| format!("cannot load the policy {}", wasm.display()))?;

    let mut groups: Vec<(&str, Vec<Case>)> = vec![
        ("scenario", scenario_cases(&manifest_dir.join("scenarios"))?),
        (
            "golden",
            golden_cases(&manifest_dir.join("../tests/golden"))?,
        ),
        ("matrix", matrix_cases()?),
    ];
    let cases: Vec<&Case> = groups.iter().flat_map(|(_, c)| c).collect();
    let answers = explain_in_node(pkg, manifest_dir, &cases)?;
    if answers.len() != cases.len() {
        bail!("{} answers for {} cases", answers.len(), cases.len());
    }

    let (mut passed, mut failed) = (0, 0);
    let mut answers = answers.into_iter();
    for (group, cases) in &mut groups {
        let mut group_failed = 0;
        for case in cases.iter() {
            let explained = answers.next().unwrap_or(Value::Null);
            let module = host
                .evaluate(&case.policy, &case.policy.request)
                .with_context(|| format!("{group} {}: the policy module", case.name))?;
            let differences = compare(&module, &explained);
            if differences.is_empty() {
                passed += 1;
            } else {
                failed += 1;
                group_failed += 1;
                println!("{group} {} ... FAILED", case.name);
                for d in differences {
                    println!("    {d}");
                }
            }
        }
        println!(
            "web parity: {group}: {} cases, {} agree",
            cases.len(),
            cases.len() - group_failed
        );
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

/// `explain` on every case, in one Node process.
fn explain_in_node(pkg: &Path, manifest_dir: &Path, cases: &[&Case]) -> Result<Vec<Value>> {
    let input: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({"name": c.name, "pod": c.pod, "namespace": c.namespace, "settings": c.settings,
                   "moduleSettings": Value::Object(c.policy.settings.clone()).to_string()})
        })
        .collect();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-parity-cases.json");
    std::fs::write(&path, serde_json::to_vec(&input)?)?;
    let script = manifest_dir.join("../web/tests/explain-cases.mjs");
    let out = Command::new(std::env::var_os("NODE").unwrap_or_else(|| "node".into()))
        .arg(&script)
        .arg(&path)
        .env("WEB_PKG", pkg)
        .output()
        .context("cannot run node (Node 20 or later)")?;
    if !out.status.success() {
        bail!(
            "node {} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("node printed no JSON list of answers")
}

/// What differs between the module's answer and `explain`'s; empty when they agree.
fn compare(module: &Outcome, explained: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut same = |what: &str, module: Value, explained: Value| {
        if module != explained {
            diffs.push(format!("{what}: policy {module}, explain {explained}"));
        }
    };
    // validateSettings on the module's settings answers as the module's validate_settings.
    let settings_check = match module {
        Outcome::SettingsInvalid(message) => json!({"valid": false, "message":
            message.strip_prefix("Provided settings are not valid: ").unwrap_or(message)}),
        Outcome::Response(_) => json!({"valid": true, "message": null}),
    };
    same(
        "validateSettings",
        settings_check,
        explained["settingsCheck"].clone(),
    );
    match module {
        Outcome::SettingsInvalid(message) => {
            let message = message
                .strip_prefix("Provided settings are not valid: ")
                .unwrap_or(message);
            same("outcome", json!("invalid"), explained["outcome"].clone());
            let settings_error = explained["errors"]
                .as_array()
                .and_then(|errors| errors.iter().find(|e| e["input"] == "settings"));
            same(
                "settings error",
                json!(format!("invalid settings: {message}")),
                settings_error.map_or(Value::Null, |e| e["message"].clone()),
            );
        }
        Outcome::Response(response) => {
            let annotations = response.audit_annotations.clone().unwrap_or_default();
            let annotation = |key: &str| annotations.get(key).map_or(Value::Null, |v| json!(v));
            same(
                "outcome",
                annotation("outcome"),
                explained["outcome"].clone(),
            );
            let reason = format!(
                "{}: {}",
                explained["reason"]["code"].as_str().unwrap_or_default(),
                explained["reason"]["text"].as_str().unwrap_or_default()
            );
            same("reason", annotation("reason"), json!(reason));
            same(
                "trail",
                annotation("trail"),
                compact_trail(&explained["trail"]),
            );
            same(
                "auditAnnotations",
                json!(response.audit_annotations),
                explained["auditAnnotations"].clone(),
            );
            same(
                "message",
                json!(response.status.as_ref().and_then(|s| s.message.clone())),
                explained["message"].clone(),
            );
            same(
                "warnings",
                json!(response.warnings.clone().unwrap_or_default()),
                explained["warnings"].clone(),
            );
            same(
                "allowed",
                json!(response.allowed),
                json!(accepted(explained["outcome"].as_str().unwrap_or_default())),
            );
            let patch = match response.decoded_patch() {
                Ok(Some(p)) => serde_json::to_value(p).unwrap_or(Value::Null),
                Ok(None) => json!([]),
                Err(e) => json!(format!("{e}")),
            };
            same("patch", patch, explained["patch"].clone());
        }
    }
    diffs
}

/// Whether the outcome admits the Pod (or passes the check), as the policy's `accepted`.
fn accepted(outcome: &str) -> bool {
    !matches!(
        outcome,
        "rejected" | "invalid" | "sidecar-missing" | "sidecar-unexpected" | "sidecar-outdated"
    )
}

/// `explain`'s trail as the policy's `trail` audit annotation writes it (`A: entry=result*,
/// ...; B: ...`); null when empty, as the policy then writes none.
fn compact_trail(trail: &Value) -> Value {
    let steps = trail.as_array().cloned().unwrap_or_default();
    let stages: Vec<String> = ["A", "B"]
        .iter()
        .filter_map(|stage| {
            let shown: Vec<String> = steps
                .iter()
                .filter(|s| s["stage"] == *stage)
                .map(|s| {
                    format!(
                        "{}={}{}",
                        s["rule"].as_str().unwrap_or_default(),
                        s["result"].as_str().unwrap_or_default(),
                        if s["decided"] == true { "*" } else { "" }
                    )
                })
                .collect();
            (!shown.is_empty()).then(|| format!("{stage}: {}", shown.join(", ")))
        })
        .collect();
    if stages.is_empty() {
        Value::Null
    } else {
        json!(stages.join("; "))
    }
}

fn scenario_cases(root: &Path) -> Result<Vec<Case>> {
    discover(root)?
        .iter()
        .map(|dir| {
            let policy = Scenario::load(dir)?;
            let read = |file: &str| std::fs::read_to_string(dir.join(file));
            let settings = read("settings.yml").unwrap_or_default();
            let namespace = match read("session.yml") {
                Ok(session) => session,
                // No session: nothing answers a lookup. In webhook mode none is made.
                Err(_) if webhook(&policy.settings) => String::new(),
                Err(_) => "[]".to_string(),
            };
            Ok(Case {
                name: policy.name.clone(),
                pod: read("request.json")?,
                namespace,
                settings,
                policy,
            })
        })
        .collect()
}

fn webhook(settings: &Map<String, Value>) -> bool {
    settings.get("namespaceSelection").and_then(Value::as_str) == Some("webhook")
}

fn golden_cases(root: &Path) -> Result<Vec<Case>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .with_context(|| format!("cannot list {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("case.json").is_file())
        .collect();
    dirs.sort();
    dirs.iter()
        .map(|dir| {
            let name = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let case: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("case.json"))?)
                    .with_context(|| format!("{name}: case.json"))?;
            let pod = &case["pod"];
            let namespace = pod
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string();
            let settings = case["settings"].as_object().cloned().unwrap_or_default();
            let labels = case["namespaceLabels"].clone();
            Ok(Case {
                name,
                // YAML, as a person pastes it.
                pod: serde_yaml::to_string(pod)?,
                namespace: serde_json::to_string(&labels)?,
                settings: if settings.is_empty() {
                    String::new()
                } else {
                    serde_yaml::to_string(&settings)?
                },
                policy: lookup_case(pod, &namespace, labels, settings)?,
            })
        })
        .collect()
}

/// The policy's side of a Pod created in `namespace`, in lookup mode: the session answers
/// with the Namespace labelled `labels`.
fn lookup_case(
    pod: &Value,
    namespace: &str,
    labels: Value,
    settings: Map<String, Value>,
) -> Result<Scenario> {
    let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels}});
    scenario(
        pod,
        namespace,
        settings,
        Some(Session::namespace_lookup(namespace, Some(&object))),
    )
}

fn scenario(
    pod: &Value,
    namespace: &str,
    settings: Map<String, Value>,
    session: Option<Session>,
) -> Result<Scenario> {
    let request = AdmissionRequest::from_value(&admission_request(pod, namespace))?;
    Ok(Scenario {
        name: String::new(),
        dir: PathBuf::new(),
        request,
        settings,
        session,
        expected: Expected::default(),
    })
}

/// The AdmissionRequest the API server sends for the Pod's creation in `namespace`.
fn admission_request(pod: &Value, namespace: &str) -> Value {
    let gvk = json!({"group": "", "version": "v1", "kind": "Pod"});
    let gvr = json!({"group": "", "version": "v1", "resource": "pods"});
    json!({
        "uid": "5f0c6a52-0e4b-4a8e-b1d2-7c1f00000001",
        "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
        "name": pod.pointer("/metadata/name").cloned().unwrap_or(json!("")),
        "namespace": namespace,
        "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": pod,
        "dryRun": false,
    })
}

/// Istio's truth table and around it: every combination of the Namespace's labels, the
/// Pod's inject and revision labels and annotations, the settings that change the decision,
/// and an ordinary or a system namespace, in lookup mode (the Namespace given to `explain`,
/// a session to the module) and in webhook mode (none).
fn matrix_cases() -> Result<Vec<Case>> {
    const INJECT: &str = "sidecar.istio.io/inject";
    const REV: &str = "istio.io/rev";
    let namespace_labels: &[&[(&str, &str)]] = &[
        &[],
        &[("istio-injection", "enabled")],
        &[("istio-injection", "disabled")],
        &[(REV, "default")],
        &[(REV, "canary")],
        &[("istio-injection", "enabled"), (REV, "canary")],
    ];
    let pods = [
        PodVariant::new("plain", &[], &[]),
        PodVariant::new("label-true", &[(INJECT, "true")], &[]),
        PodVariant::new("label-false", &[(INJECT, "false")], &[]),
        PodVariant::new("annotation-true", &[], &[(INJECT, "true")]),
        PodVariant::new("annotation-false", &[], &[(INJECT, "false")]),
        PodVariant::new("label-yes", &[(INJECT, "yes")], &[]),
        PodVariant::new("annotation-yes", &[], &[(INJECT, "yes")]),
        PodVariant::new(
            "label-empty-annotation-false",
            &[(INJECT, "")],
            &[(INJECT, "false")],
        ),
        PodVariant::new(
            "label-true-annotation-false",
            &[(INJECT, "true")],
            &[(INJECT, "false")],
        ),
        PodVariant::new("rev-default", &[(REV, "default")], &[]),
        PodVariant::new("rev-canary", &[(REV, "canary")], &[]),
        PodVariant::new(
            "rev-default-label-true",
            &[(REV, "default"), (INJECT, "true")],
            &[],
        ),
        PodVariant::new(
            "rev-canary-label-true",
            &[(REV, "canary"), (INJECT, "true")],
            &[],
        ),
        PodVariant {
            host_network: true,
            ..PodVariant::new("host-network-label-true", &[(INJECT, "true")], &[])
        },
        PodVariant::new("tier-batch", &[("tier", "batch")], &[]),
        PodVariant::new("mesh-on", &[("mesh", "on")], &[]),
        PodVariant {
            names_namespace: false,
            ..PodVariant::new("namespace-from-request", &[], &[])
        },
    ];
    let settings: &[(&str, &str)] = &[
        ("defaults", ""),
        ("policy-disabled", "policy: disabled\n"),
        ("revision-canary", "revision: canary\n"),
        ("namespaces-by-default", "enableNamespacesByDefault: true\n"),
        (
            "selectors-policy-disabled",
            "policy: disabled\nneverInjectSelector:\n- matchLabels: {tier: batch}\nalwaysInjectSelector:\n- matchExpressions: [{key: mesh, operator: Exists}]\n- {}\n",
        ),
        ("check", "action: check\n"),
    ];
    let mut cases = Vec::new();
    for ns in ["demo", "kube-system"] {
        for variant in &pods {
            let (pod_name, pod_names_ns) = (variant.name, variant.names_namespace);
            let pod = variant.pod(ns);
            for &(settings_name, settings_text) in settings {
                let settings_map = parse_settings(settings_text)
                    .map_err(|e| anyhow!("settings {settings_name}: {e:#}"))?;
                // Lookup mode: the Namespace's labels, and its name when the Pod has none.
                for (i, ns_labels) in namespace_labels.iter().enumerate() {
                    let mut labels: Map<String, Value> = ns_labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), json!(v)))
                        .collect();
                    labels.insert("kubernetes.io/metadata.name".into(), json!(ns));
                    let labels = Value::Object(labels);
                    let namespace_input = if pod_names_ns {
                        serde_json::to_string(&labels)?
                    } else {
                        format!(
                            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels: {labels}\n"
                        )
                    };
                    cases.push(Case {
                        name: format!("lookup/{ns}/ns{i}/{pod_name}/{settings_name}"),
                        pod: serde_yaml::to_string(&pod)?,
                        namespace: namespace_input,
                        settings: settings_text.to_string(),
                        policy: lookup_case(&pod, ns, labels, settings_map.clone())?,
                    });
                }
                // Webhook mode: no Namespace; a Pod that names no namespace is sent in its
                // AdmissionRequest, which does.
                let mut webhook_settings = settings_map.clone();
                webhook_settings.insert("namespaceSelection".into(), json!("webhook"));
                cases.push(Case {
                    name: format!("webhook/{ns}/{pod_name}/{settings_name}"),
                    pod: if pod_names_ns {
                        serde_json::to_string(&pod)?
                    } else {
                        serde_json::to_string(&admission_request(&pod, ns))?
                    },
                    namespace: String::new(),
                    // Said or implied by the empty Namespace: both are webhook selection.
                    settings: if settings_name == "defaults" {
                        "namespaceSelection: webhook\n".to_string()
                    } else {
                        settings_text.to_string()
                    },
                    policy: scenario(&pod, ns, webhook_settings, None)?,
                });
            }
        }
    }
    Ok(cases)
}

/// A Pod of the matrix: its labels and annotations besides `app: web`.
struct PodVariant<'a> {
    name: &'a str,
    labels: &'a [(&'a str, &'a str)],
    annotations: &'a [(&'a str, &'a str)],
    host_network: bool,
    /// `metadata.namespace` is written (else the request's namespace is the Pod's).
    names_namespace: bool,
}

impl<'a> PodVariant<'a> {
    fn new(
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
        annotations: &'a [(&'a str, &'a str)],
    ) -> Self {
        PodVariant {
            name,
            labels,
            annotations,
            host_network: false,
            names_namespace: true,
        }
    }

    /// The Pod a ReplicaSet creates in `namespace`.
    fn pod(&self, namespace: &str) -> Value {
        let mut meta = json!({
            "name": "web-7d4b9c8f6-x2x9q",
            "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c8f6",
                                 "uid": "0d2c1b4a-1111-4222-8333-444455556666", "controller": true}],
        });
        if self.names_namespace {
            meta["namespace"] = json!(namespace);
        }
        for (k, v) in self.labels {
            meta["labels"][*k] = json!(v);
        }
        for (k, v) in self.annotations {
            meta["annotations"][*k] = json!(v);
        }
        let mut spec = json!({"containers": [{
            "name": "web", "image": "registry.example.com/web:1.4.2",
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        }]});
        if self.host_network {
            spec["hostNetwork"] = json!(true);
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
    }
}
