//! End-to-end scenarios: one directory each under `e2e-tests/scenarios/`.
//!
//! ```text
//! scenarios/<name>/request.json   AdmissionRequest (or AdmissionReview)
//! scenarios/<name>/settings.yml   policy settings (optional, `{}` if absent)
//! scenarios/<name>/session.yml    kwctl host-capabilities session (optional);
//!                                 when present the policy runs with
//!                                 --allow-context-aware and this replay file
//! scenarios/<name>/expected.yml   see [`Expected`]
//! ```
//!
//! A scenario runs through an [`Evaluator`]: this crate's in-process waPC host
//! ([`InProcess`]) or a real kwctl binary ([`Kwctl`]), and [`check`] compares
//! the outcome with `expected.yml` plus generic checks on every patch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::host::{CompileCache, HostContext, Policy, parse_settings};
use crate::response::{AdmissionRequest, AdmissionResponse};
use crate::session::Session;

/// `expected.yml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Required unless `settings_invalid` is set.
    #[serde(default)]
    pub allowed: Option<bool>,
    /// `auditAnnotations["outcome"]` must equal this.
    #[serde(default)]
    pub outcome: Option<String>,
    /// `auditAnnotations["reason"]` (format `code: human text`) must start
    /// with this; a bare code must be followed by `:` or end the reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// `status.message` must contain this (a string, or a list of strings that must
    /// all be in it).
    #[serde(default, deserialize_with = "one_or_many")]
    pub message_contains: Vec<String>,
    /// `status.code` must be this (400: the request cannot be read).
    #[serde(default)]
    pub code: Option<u16>,
    /// Each string must be a substring of some warning.
    #[serde(default)]
    pub warnings_contain: Vec<String>,
    /// `validate_settings` must fail with a message containing this (and no
    /// response is expected).
    #[serde(default)]
    pub settings_invalid: Option<String>,
    #[serde(default)]
    pub patch: Option<PatchExpectation>,
    /// Each entry must match some op of the decoded patch (`value` only
    /// compared when given).
    #[serde(default)]
    pub patch_ops: Vec<ExpectedOp>,
    /// After applying the patch to `request.object`: number of
    /// `spec.containers` with each name.
    #[serde(default)]
    pub containers_named: BTreeMap<String, usize>,
    /// Same for `spec.initContainers`.
    #[serde(default)]
    pub init_containers_named: BTreeMap<String, usize>,
}

/// A string, or a list of strings.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PatchExpectation {
    None,
    Present,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectedOp {
    pub op: String,
    pub path: String,
    #[serde(default)]
    pub value: Option<Value>,
}

/// A scenario directory, loaded.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub dir: PathBuf,
    pub request: AdmissionRequest,
    pub settings: Map<String, Value>,
    pub session: Option<Session>,
    pub expected: Expected,
}

impl Scenario {
    pub fn load(dir: &Path) -> Result<Self> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        let read = |file: &str| -> Result<String> {
            std::fs::read_to_string(dir.join(file)).with_context(|| format!("cannot read {file}"))
        };
        let request =
            AdmissionRequest::from_json(&read("request.json")?).context("request.json")?;
        let settings = match dir.join("settings.yml").exists() {
            true => parse_settings(&read("settings.yml")?).context("settings.yml")?,
            false => Map::new(),
        };
        let session = match dir.join("session.yml").exists() {
            true => Some(Session::from_yaml(&read("session.yml")?).context("session.yml")?),
            false => None,
        };
        let expected: Expected =
            serde_yaml::from_str(&read("expected.yml")?).context("expected.yml")?;
        if expected.settings_invalid.is_none() && expected.allowed.is_none() {
            bail!("expected.yml: `allowed` is required (unless `settings_invalid` is set)");
        }
        Ok(Self {
            name,
            dir: dir.to_path_buf(),
            request,
            settings,
            session,
            expected,
        })
    }

    pub fn settings_path(&self) -> Option<PathBuf> {
        Some(self.dir.join("settings.yml")).filter(|p| p.exists())
    }

    pub fn session_path(&self) -> Option<PathBuf> {
        Some(self.dir.join("session.yml")).filter(|p| p.exists())
    }
}

/// Every scenario directory under `root`, sorted by name.
pub fn discover(root: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(root).with_context(|| format!("cannot list {root:?}"))? {
        let path = entry?.path();
        if path.is_dir() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// What running the policy on a request gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(AdmissionResponse),
    /// `validate_settings` refused the settings; kwctl's message.
    SettingsInvalid(String),
}

/// Something that can run the policy: the in-process host or kwctl.
pub trait Evaluator {
    /// Runs `request` with the scenario's settings and session.
    fn evaluate(&self, scenario: &Scenario, request: &AdmissionRequest) -> Result<Outcome>;
}

/// This crate's waPC host, in process; the module is compiled once.
pub struct InProcess {
    policy: Policy,
}

impl InProcess {
    pub fn new(wasm: &Path, cache: &CompileCache) -> Result<Self> {
        Ok(Self {
            policy: Policy::load(wasm, cache)?,
        })
    }
}

impl Evaluator for InProcess {
    fn evaluate(&self, scenario: &Scenario, request: &AdmissionRequest) -> Result<Outcome> {
        // As `kwctl run [--allow-context-aware --replay-host-capabilities-interactions session.yml]`.
        let ctx = HostContext {
            allowed_resources: self.policy.allowed_resources(scenario.session.is_some()),
            session: scenario.session.clone(),
        };
        let instance = self.policy.instantiate(&ctx)?;
        let settings = instance.validate_settings(&scenario.settings);
        if !settings.valid {
            return Ok(Outcome::SettingsInvalid(format!(
                "Provided settings are not valid: {}",
                settings.message.unwrap_or_default()
            )));
        }
        Ok(Outcome::Response(
            instance.validate(request, &scenario.settings),
        ))
    }
}

/// A real kwctl binary (`KWCTL=/path/to/kwctl`).
pub struct Kwctl {
    pub binary: PathBuf,
    pub wasm: PathBuf,
    pub scratch: PathBuf,
}

impl Evaluator for Kwctl {
    fn evaluate(&self, scenario: &Scenario, request: &AdmissionRequest) -> Result<Outcome> {
        std::fs::create_dir_all(&self.scratch)?;
        let request_path = self.scratch.join(format!("{}-request.json", scenario.name));
        std::fs::write(&request_path, serde_json::to_vec_pretty(request)?)?;
        let mut cmd = std::process::Command::new(&self.binary);
        cmd.arg("run").arg("--request-path").arg(&request_path);
        if let Some(settings) = scenario.settings_path() {
            cmd.arg("--settings-path").arg(settings);
        }
        if let Some(session) = scenario.session_path() {
            cmd.arg("--allow-context-aware")
                .arg("--replay-host-capabilities-interactions")
                .arg(session);
        }
        cmd.arg(&self.wasm);
        let out = cmd
            .output()
            .with_context(|| format!("cannot run {:?}", self.binary))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            if let Some(pos) = stderr.find("Provided settings are not valid: ") {
                return Ok(Outcome::SettingsInvalid(
                    stderr[pos..].trim_end().to_string(),
                ));
            }
            bail!("kwctl failed ({}): {}", out.status, stderr.trim_end());
        }
        // The response is the last JSON line (the guest may print on stdout too).
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .ok_or_else(|| anyhow!("kwctl printed no response; stderr: {}", stderr.trim_end()))?;
        Ok(Outcome::Response(
            serde_json::from_str(line).context("cannot parse kwctl's response")?,
        ))
    }
}

/// The JSONPatch ops that may be something else than `add`: the fields
/// Istio's injector itself rewrites (see `shared/spec/policy.md` section 1):
///
/// - `/metadata/annotations/prometheus.io~1*` (metrics merge),
/// - `/metadata/annotations/sidecar.istio.io~1status` (re-injection),
/// - `/spec/containers/N/{readiness,liveness,startup}Probe[/...]` and the same
///   under `initContainers` (probe rewriting),
/// - `/spec/containers/N/lifecycle[/...]`,
/// - anything inside a container the user declared under the name of one of
///   Istio's own containers (`istio-proxy`, `istio-init`, `istio-validation`):
///   Istio merges such a container with its template (for example the
///   gateway template's `image: auto`).
pub fn is_istio_rewrite(path: &str, original: &Value) -> bool {
    if let Some(key) = path.strip_prefix("/metadata/annotations/") {
        return key.starts_with("prometheus.io~1") || key == "sidecar.istio.io~1status";
    }
    let segments: Vec<&str> = path.split('/').collect();
    // ["", "spec", "containers"|"initContainers", N, field, ...]
    let ["", "spec", list, index, field, ..] = segments.as_slice() else {
        return false;
    };
    let Ok(index) = index.parse::<usize>() else {
        return false;
    };
    let declared_name = original
        .pointer(&format!("/spec/{list}/{index}/name"))
        .and_then(Value::as_str);
    if matches!(
        declared_name,
        Some("istio-proxy" | "istio-init" | "istio-validation")
    ) {
        return true;
    }
    match *list {
        "containers" => {
            matches!(
                *field,
                "readinessProbe" | "livenessProbe" | "startupProbe" | "lifecycle"
            )
        }
        "initContainers" => matches!(*field, "readinessProbe" | "livenessProbe" | "startupProbe"),
        _ => false,
    }
}

fn count_named(pod: &Value, list: &str, name: &str) -> usize {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .map_or(0, |items| {
            items
                .iter()
                .filter(|c| c.get("name").and_then(Value::as_str) == Some(name))
                .count()
        })
}

fn reason_matches(reason: &str, expected: &str) -> bool {
    match reason.strip_prefix(expected) {
        None => false,
        Some(rest) => expected.contains(':') || rest.is_empty() || rest.starts_with(':'),
    }
}

/// Runs the scenario and returns the list of failed checks (empty = passed).
pub fn check(scenario: &Scenario, evaluator: &dyn Evaluator) -> Result<Vec<String>> {
    let expected = &scenario.expected;
    let mut failures = Vec::new();
    let outcome = evaluator.evaluate(scenario, &scenario.request)?;

    let response = match (outcome, &expected.settings_invalid) {
        (Outcome::SettingsInvalid(msg), Some(want)) => {
            if !msg.contains(want.as_str()) {
                failures.push(format!(
                    "settings rejected with {msg:?}, which does not contain {want:?}"
                ));
            }
            return Ok(failures);
        }
        (Outcome::Response(resp), Some(want)) => {
            failures.push(format!(
                "settings were expected to be invalid ({want:?}), got a response: {}",
                resp.to_line()
            ));
            return Ok(failures);
        }
        (Outcome::SettingsInvalid(msg), None) => {
            failures.push(format!("settings unexpectedly rejected: {msg}"));
            return Ok(failures);
        }
        (Outcome::Response(resp), None) => resp,
    };
    let shown = response.to_line();
    let annotation = |key: &str| response.audit_annotations.as_ref().and_then(|a| a.get(key));

    if let Some(allowed) = expected.allowed
        && response.allowed != allowed
    {
        failures.push(format!(
            "allowed is {}, expected {allowed}",
            response.allowed
        ));
    }
    if let Some(outcome) = &expected.outcome
        && annotation("outcome") != Some(outcome)
    {
        failures.push(format!(
            "auditAnnotations.outcome is {:?}, expected {outcome:?}",
            annotation("outcome")
        ));
    }
    if let Some(reason) = &expected.reason
        && !annotation("reason").is_some_and(|r| reason_matches(r, reason))
    {
        failures.push(format!(
            "auditAnnotations.reason is {:?}, expected code {reason:?}",
            annotation("reason")
        ));
    }
    for text in &expected.message_contains {
        let message = response.status.as_ref().and_then(|s| s.message.as_deref());
        if !message.is_some_and(|m| m.contains(text.as_str())) {
            failures.push(format!(
                "status.message is {message:?}, expected it to contain {text:?}"
            ));
        }
    }
    if let Some(code) = expected.code {
        let got = response.status.as_ref().and_then(|s| s.code);
        if got != Some(code) {
            failures.push(format!("status.code is {got:?}, expected {code}"));
        }
    }
    let warnings = response.warnings.clone().unwrap_or_default();
    for text in &expected.warnings_contain {
        if !warnings.iter().any(|w| w.contains(text.as_str())) {
            failures.push(format!(
                "no warning contains {text:?} (warnings: {warnings:?})"
            ));
        }
    }

    let patch = match response.decoded_patch() {
        Ok(p) => p,
        Err(e) => {
            failures.push(format!("{e}"));
            None
        }
    };
    match (expected.patch, &patch) {
        (Some(PatchExpectation::None), Some(p)) => {
            failures.push(format!(
                "expected no patch, got {}",
                serde_json::to_string(p)?
            ));
        }
        (Some(PatchExpectation::Present), None) => {
            failures.push("expected a patch, got none".to_string())
        }
        _ => {}
    }
    let ops: Vec<Value> = match &patch {
        Some(p) => serde_json::to_value(p)?
            .as_array()
            .cloned()
            .unwrap_or_default(),
        None => Vec::new(),
    };
    for want in &expected.patch_ops {
        let found = ops.iter().any(|op| {
            op["op"] == want.op.as_str()
                && op["path"] == want.path.as_str()
                && want
                    .value
                    .as_ref()
                    .is_none_or(|v| op.get("value") == Some(v))
        });
        if !found {
            failures.push(format!(
                "no patch op matches {{op: {}, path: {}{}}}",
                want.op,
                want.path,
                want.value
                    .as_ref()
                    .map(|v| format!(", value: {v}"))
                    .unwrap_or_default()
            ));
        }
    }

    // The object as the API server would store it.
    let original = scenario.request.object.clone().unwrap_or(Value::Null);
    let mut patched = original.clone();
    if let Some(p) = &patch
        && let Err(e) = json_patch::patch(&mut patched, p)
    {
        failures.push(format!("the patch does not apply to request.object: {e}"));
        patched = original.clone();
    }
    for (list, wanted) in [
        ("containers", &expected.containers_named),
        ("initContainers", &expected.init_containers_named),
    ] {
        for (name, count) in wanted {
            let got = count_named(&patched, list, name);
            if got != *count {
                failures.push(format!(
                    "spec.{list} has {got} named {name:?}, expected {count}"
                ));
            }
        }
    }

    if patch.is_some() {
        // (a) only additions, except what Istio itself rewrites.
        for op in &ops {
            let (kind, path) = (
                op["op"].as_str().unwrap_or(""),
                op["path"].as_str().unwrap_or(""),
            );
            if kind != "add" && !is_istio_rewrite(path, &original) {
                failures.push(format!(
                    "patch op {op} is not an addition nor an Istio rewrite"
                ));
            }
        }
        // (b) the patched object is a Pod, and injecting it again changes nothing.
        if patched.get("kind").and_then(Value::as_str) != Some("Pod")
            || patched
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .is_none()
        {
            failures.push("the patched object is not a Pod with spec.containers".to_string());
        } else {
            let mut again = scenario.request.clone();
            again.object = Some(patched);
            again.operation = "CREATE".to_string();
            match evaluator.evaluate(scenario, &again)? {
                Outcome::Response(second) => match second.decoded_patch() {
                    Ok(None) => {}
                    Ok(Some(p2)) => failures.push(format!(
                        "not idempotent: running the policy on its own output patches again: {}",
                        serde_json::to_string(&p2)?
                    )),
                    Err(e) => failures.push(format!("second run: {e}")),
                },
                Outcome::SettingsInvalid(msg) => failures.push(format!("second run: {msg}")),
            }
        }
    }

    if !failures.is_empty() {
        failures.push(format!("response: {shown}"));
    }
    Ok(failures)
}

/// One scenario's result: its name and the failed checks (empty = passed), or why it could
/// not run.
pub type ScenarioResult = (String, Result<Vec<String>>);

/// Loads and checks every scenario of `dirs` with `evaluator`, `jobs` at a time (kwctl runs
/// are separate processes that mostly wait), the first one alone so that an evaluator that
/// compiles the module on first use (kwctl's cache) compiles it once. Results in `dirs` order.
pub fn run_all(
    dirs: &[PathBuf],
    evaluator: &(dyn Evaluator + Sync),
    jobs: usize,
) -> Vec<ScenarioResult> {
    let name = |dir: &PathBuf| {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string())
    };
    let run = |dir: &PathBuf| Scenario::load(dir).and_then(|s| check(&s, evaluator));
    let results: Vec<std::sync::Mutex<Option<Result<Vec<String>>>>> =
        dirs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let Some(dir) = dirs.get(i) else { break };
            let result = run(dir);
            *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        }
    };
    if !dirs.is_empty() {
        // The first scenario alone.
        let result = run(&dirs[0]);
        *results[0].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        next.store(1, std::sync::atomic::Ordering::SeqCst);
    }
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(work);
        }
    });
    dirs.iter()
        .zip(results)
        .map(|(dir, result)| {
            let result = result
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err(anyhow!("not run")));
            (name(dir), result)
        })
        .collect()
}

/// Prints each result (`scenario NAME ... ok`, or FAILED and the failed checks), then the
/// failed ones and `N passed, M failed`; whether all passed.
pub fn report(results: &[ScenarioResult]) -> bool {
    let mut failed = Vec::new();
    for (name, result) in results {
        match result {
            Ok(failures) if failures.is_empty() => println!("scenario {name} ... ok"),
            Ok(failures) => {
                println!("scenario {name} ... FAILED");
                for f in failures {
                    println!("    {f}");
                }
                failed.push(name.as_str());
            }
            Err(e) => {
                println!("scenario {name} ... FAILED");
                println!("    error: {e:#}");
                failed.push(name.as_str());
            }
        }
    }
    if !failed.is_empty() {
        println!("\nfailed scenarios:");
        for name in &failed {
            println!("    {name}");
        }
    }
    println!(
        "{} passed, {} failed",
        results.len() - failed.len(),
        failed.len()
    );
    failed.is_empty()
}

/// Resolves the module the scenarios run on: `$POLICY_WASM` or
/// `<repo>/annotated-policy.wasm`.
pub fn policy_wasm(manifest_dir: &Path) -> PathBuf {
    std::env::var_os("POLICY_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("..").join("annotated-policy.wasm"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_rewrites() {
        let pod = serde_json::json!({"spec": {
            "containers": [{"name": "app"}, {"name": "istio-proxy", "image": "auto"}],
            "initContainers": [{"name": "setup"}]
        }});
        for ok in [
            "/metadata/annotations/prometheus.io~1port",
            "/metadata/annotations/prometheus.io~1scrape",
            "/metadata/annotations/sidecar.istio.io~1status",
            "/spec/containers/0/readinessProbe",
            "/spec/containers/3/livenessProbe/httpGet/port",
            "/spec/containers/0/startupProbe/httpGet/path",
            "/spec/initContainers/0/startupProbe/httpGet/port",
            "/spec/containers/0/lifecycle/postStart",
            "/spec/containers/1/image",
            "/spec/containers/1/args/0",
        ] {
            assert!(is_istio_rewrite(ok, &pod), "{ok}");
        }
        for bad in [
            "/metadata/annotations",
            "/metadata/annotations/sidecar.istio.io~1inject",
            "/metadata/labels/prometheus.io~1port",
            "/spec/containers/0/image",
            "/spec/containers/0",
            "/spec/containers/1",
            "/spec/containers",
            "/spec/containers/x/readinessProbe",
            "/spec/initContainers/0/lifecycle",
            "/spec/initContainers/0/image",
            "/spec/volumes/0/readinessProbe",
        ] {
            assert!(!is_istio_rewrite(bad, &pod), "{bad}");
        }
    }

    #[test]
    fn reason_codes() {
        assert!(reason_matches(
            "namespace-label: namespace has istio-injection=enabled",
            "namespace-label"
        ));
        assert!(reason_matches("namespace-label", "namespace-label"));
        assert!(!reason_matches(
            "namespace-label-missing: x",
            "namespace-label"
        ));
        assert!(reason_matches(
            "host-network: pod uses hostNetwork",
            "host-network: pod"
        ));
        assert!(!reason_matches("other: x", "namespace-label"));
    }

    #[test]
    fn expected_file_format() {
        let e: Expected = serde_yaml::from_str(
            r#"
description: "labelled namespace injects istio-proxy"
allowed: true
outcome: injected
reason: namespace-label
warnings_contain: ["a"]
patch: present
patch_ops:
  - {op: add, path: /spec/containers/1}
  - {op: add, path: /metadata/annotations/sidecar.istio.io~1status, value: "x"}
containers_named:
  istio-proxy: 1
init_containers_named: {istio-init: 1}
"#,
        )
        .unwrap();
        assert_eq!(e.allowed, Some(true));
        assert_eq!(e.patch, Some(PatchExpectation::Present));
        assert_eq!(e.patch_ops[1].value, Some(Value::String("x".into())));
        assert_eq!(e.patch_ops[0].value, None);
        assert_eq!(e.init_containers_named["istio-init"], 1);
        // Typos are caught.
        assert!(serde_yaml::from_str::<Expected>("allowed: true\nalowed: false\n").is_err());
        assert!(serde_yaml::from_str::<Expected>("allowed: true\npatch: maybe\n").is_err());
    }

    /// A fake evaluator: answers with a fixed response the first time and
    /// with `second` when given the patched object.
    struct Fake {
        first: AdmissionResponse,
        second: AdmissionResponse,
    }

    impl Evaluator for Fake {
        fn evaluate(&self, scenario: &Scenario, request: &AdmissionRequest) -> Result<Outcome> {
            Ok(Outcome::Response(
                if request.object == scenario.request.object {
                    self.first.clone()
                } else {
                    self.second.clone()
                },
            ))
        }
    }

    fn scenario(expected: &str) -> Scenario {
        let request = AdmissionRequest::from_value(&serde_json::json!({
            "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE", "userInfo": {},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                       "spec": {"containers": [{"name": "app"}]}}
        }))
        .unwrap();
        Scenario {
            name: "fake".into(),
            dir: PathBuf::from("/nonexistent"),
            request,
            settings: Map::new(),
            session: None,
            expected: serde_yaml::from_str(expected).unwrap(),
        }
    }

    fn mutate(s: &Scenario, f: impl Fn(&mut Value)) -> AdmissionResponse {
        let mut mutated = s.request.object.clone().unwrap();
        f(&mut mutated);
        let resp = crate::response::ValidationResponse {
            accepted: true,
            mutated_object: Some(mutated),
            audit_annotations: Some(BTreeMap::from([
                ("outcome".to_string(), "injected".to_string()),
                (
                    "reason".to_string(),
                    "namespace-label: labelled".to_string(),
                ),
            ])),
            ..Default::default()
        };
        AdmissionResponse::from_validation_response("u", s.request.object.as_ref(), &resp).unwrap()
    }

    const INJECTED: &str = r#"
allowed: true
outcome: injected
reason: namespace-label
patch: present
patch_ops: [{op: add, path: /spec/containers/1}]
containers_named: {istio-proxy: 1, app: 1}
"#;

    #[test]
    fn passing_injection() {
        let s = scenario(INJECTED);
        let first = mutate(&s, |p| {
            p["spec"]["containers"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"name": "istio-proxy"}))
        });
        let second = AdmissionResponse {
            uid: "u".into(),
            allowed: true,
            ..Default::default()
        };
        assert_eq!(
            check(&s, &Fake { first, second }).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn not_idempotent_and_replacing_user_fields() {
        let s = scenario(INJECTED);
        let first = mutate(&s, |p| {
            p["spec"]["containers"][0]["image"] = "changed".into();
            p["spec"]["containers"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"name": "istio-proxy"}))
        });
        // The second run injects again.
        let second = mutate(&s, |p| {
            p["metadata"]["labels"] = serde_json::json!({"x": "y"})
        });
        let failures = check(
            &s,
            &Fake {
                first: first.clone(),
                second,
            },
        )
        .unwrap();
        assert!(
            failures.iter().any(|f| f.contains("not idempotent")),
            "{failures:?}"
        );

        // A `replace` of a user field is flagged.
        let s = scenario(INJECTED);
        let first = mutate(&s, |p| {
            p["spec"]["containers"][0]["name"] = "renamed".into();
            p["spec"]["containers"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"name": "istio-proxy"}))
        });
        let second = AdmissionResponse {
            uid: "u".into(),
            allowed: true,
            ..Default::default()
        };
        let failures = check(&s, &Fake { first, second }).unwrap();
        assert!(
            failures.iter().any(|f| f.contains("not an addition")),
            "{failures:?}"
        );
        assert!(
            failures.iter().any(|f| f.contains("has 0 named \"app\"")),
            "{failures:?}"
        );
    }

    #[test]
    fn mismatches_are_reported() {
        let s = scenario(
            "allowed: false\noutcome: rejected\nmessage_contains: boom\nwarnings_contain: [w]\npatch: none\n",
        );
        let resp = AdmissionResponse {
            uid: "u".into(),
            allowed: true,
            ..Default::default()
        };
        let failures = check(
            &s,
            &Fake {
                first: resp.clone(),
                second: resp,
            },
        )
        .unwrap();
        assert_eq!(failures.len(), 5, "{failures:?}"); // 4 checks + the response line
    }

    #[test]
    fn settings_expectations() {
        struct Invalid;
        impl Evaluator for Invalid {
            fn evaluate(&self, _: &Scenario, _: &AdmissionRequest) -> Result<Outcome> {
                Ok(Outcome::SettingsInvalid(
                    "Provided settings are not valid: policy: \"x\"".into(),
                ))
            }
        }
        assert!(
            check(&scenario("settings_invalid: 'policy: \"x\"'\n"), &Invalid)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            check(&scenario("settings_invalid: other\n"), &Invalid)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            check(&scenario("allowed: true\n"), &Invalid).unwrap().len(),
            1
        );
    }
}
