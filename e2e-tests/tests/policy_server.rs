//! The policy under a real Kubewarden policy-server (`POLICY_SERVER=/path/to/policy-server`),
//! called as the Kubernetes API server calls it: policy-server runs on 127.0.0.1 with the
//! annotated module (`../annotated-policy.wasm` or `$POLICY_WASM`, as `file://`), one policy
//! entry per distinct scenario settings (check mode's registered as non-mutating, as
//! `manifests/check.yml` deploys it), and AdmissionReviews are POSTed over HTTP.
//!
//! Sections (arguments that are not flags select sections by substring,
//! `cargo test --test policy_server -- load`):
//!
//! - `scenarios`: every scenario that needs no Namespace lookup (the rule:
//!   `kwhost::policy_server::plan`), with `expected.yml`'s outcome and patch, the re-injection
//!   check, and the very answer of the project's own host;
//! - `audit`: `/audit/<id>` gives the answer of `/validate/<id>`, the mutation aside, and the
//!   check-mode scenarios cover every check-mode answer;
//! - `kwhost-annotated-scenarios` (with `KWCTL` set, when `make` annotates with kwctl): the
//!   `scenarios` and `audit` checks on `../policy.wasm` annotated by the project's own host,
//!   served by entries of its own;
//! - `body-limit`: the largest body policy-server reads (2 MiB) is answered, a larger one gets
//!   policy-server's own HTTP 413;
//! - `load`: 1,000 requests at concurrency 64, injected, skipped, rejected and not selected
//!   Pods plus the largest Pods policy-server accepts; every answer checked, the outcome mix
//!   counted against what was sent, none lost; p50/p99 printed;
//! - `deadline`: hostile Pods of up to 2 MiB, under an evaluation deadline of 2 s
//!   (`--policy-timeout 2`, `timeoutEvalSeconds: 2`), are answered by the policy, never by
//!   policy-server's "exceeded the allowed execution time";
//! - `invalid-settings`: with each scenario's invalid settings policy-server refuses to start,
//!   printing the policy's message that names the field.
//!
//! Lookup mode needs a Kubernetes API, which is not reachable here: `tests/scenarios.rs`
//! covers it through kwctl's recorded sessions. Without `POLICY_SERVER` the suite says it is
//! skipped and passes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use kwhost::host::CompileCache;
use kwhost::policy_server::{
    BODY_LIMIT, Client, Config, DEFAULT_POLICY_TIMEOUT_SECONDS, Endpoint, LOAD_MIX, Plan,
    PolicyEntry, PolicyServer, Served, TIMEOUT_MESSAGE, check_mode, entries_for, env_path,
    load_mix_failures, parse_review, plan, review_body, served_scenario, version,
};
use kwhost::response::{AdmissionRequest, AdmissionResponse};
use kwhost::scenario::{Evaluator, InProcess, Outcome, Scenario, check, discover, policy_wasm};
use serde_json::{Map, Value, json};

/// The entry for the Pods built here: webhook mode, with its own evaluation deadline.
const LIMITS_ID: &str = "limits";
/// The evaluation deadline of every policy (`--policy-timeout`, policy-server's default, and
/// `timeoutEvalSeconds` on [`LIMITS_ID`]).
const DEADLINE_SECONDS: u64 = DEFAULT_POLICY_TIMEOUT_SECONDS;
const WORKERS: usize = 2;
const LOAD_REQUESTS: usize = 1000;
const LOAD_CONCURRENCY: usize = 64;
/// Every this many load requests, one is a largest Pod.
const LOAD_LARGEST_EVERY: usize = 50;
/// Room left in a largest body for the load run's longer uids.
const UID_ROOM: usize = 64;

/// The section that runs the module annotated by the project's own host (with `KWCTL`).
const KWHOST_ANNOTATED: &str = "kwhost-annotated-scenarios";

/// The sections, in order; all but the last share one running policy-server.
const SECTIONS: [&str; 7] = [
    "scenarios",
    "audit",
    KWHOST_ANNOTATED,
    "body-limit",
    "load",
    "deadline",
    "invalid-settings",
];

fn main() -> ExitCode {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let Some(binary) = env_path("POLICY_SERVER") else {
        println!(
            "policy-server suite skipped: POLICY_SERVER is not set \
             (POLICY_SERVER=/path/to/policy-server runs it)"
        );
        return ExitCode::SUCCESS;
    };
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut suite = Suite {
        filters,
        passed: 0,
        failed: Vec::new(),
    };
    if !SECTIONS.iter().any(|s| suite.selected(s)) {
        println!(
            "policy-server suite: no section matches {:?}; the sections are {}",
            suite.filters,
            SECTIONS.join(", ")
        );
        println!("0 passed, 1 failed");
        return ExitCode::FAILURE;
    }
    if let Err(e) = run(&binary, manifest_dir, &mut suite) {
        println!("policy-server suite ... FAILED\n    error: {e:#}");
        suite.failed.push("setup".to_string());
    }
    if !suite.failed.is_empty() {
        println!("\nfailed sections:");
        for name in &suite.failed {
            println!("    {name}");
        }
    }
    println!("{} passed, {} failed", suite.passed, suite.failed.len());
    if suite.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

struct Suite {
    filters: Vec<String>,
    passed: usize,
    failed: Vec<String>,
}

impl Suite {
    fn selected(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f.as_str()))
    }

    /// Says that a selected section did not run, and why.
    fn skip(&self, name: &str, why: &str) {
        if self.selected(name) {
            println!("\n== {name}\nsection {name} ... skipped: {why}");
        }
    }

    /// Runs one section, which returns its failed checks (empty = passed).
    fn section(&mut self, name: &str, f: impl FnOnce() -> Result<Vec<String>>) {
        if !self.selected(name) {
            return;
        }
        println!("\n== {name}");
        let started = Instant::now();
        let result = f();
        let took = started.elapsed().as_secs_f64();
        match result {
            Ok(failures) if failures.is_empty() => {
                println!("section {name} ... ok ({took:.1} s)");
                self.passed += 1;
            }
            Ok(failures) => {
                println!("section {name} ... FAILED ({took:.1} s)");
                for f in failures {
                    println!("    {f}");
                }
                self.failed.push(name.to_string());
            }
            Err(e) => {
                println!("section {name} ... FAILED ({took:.1} s)\n    error: {e:#}");
                self.failed.push(name.to_string());
            }
        }
    }
}

/// A scratch directory under the target dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("policy-server-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {dir:?}"))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A scenario as policy-server runs it, and the scenario it comes from.
struct ServedScenario {
    original: Scenario,
    served: Scenario,
    plan: Plan,
}

fn run(binary: &Path, manifest_dir: &Path, suite: &mut Suite) -> Result<()> {
    let wasm = policy_wasm(manifest_dir);
    if !wasm.exists() {
        bail!(
            "policy module {} not found: run `make annotated-policy.wasm` in the repository root \
             (or point POLICY_WASM at an annotated policy module)",
            wasm.display()
        );
    }
    println!(
        "policy-server suite: {} ({}), policy {}",
        version(binary)?,
        binary.display(),
        wasm.display()
    );
    let scratch = Scratch::new()?;

    let root = std::env::var_os("SCENARIOS_DIR")
        .map_or_else(|| manifest_dir.join("scenarios"), PathBuf::from);
    let mut served = Vec::new();
    let mut invalid = Vec::new();
    let mut by_plan: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let dirs = discover(&root)?;
    let total = dirs.len();
    for dir in dirs {
        let scenario = Scenario::load(&dir).with_context(|| format!("scenario {dir:?}"))?;
        let plan = plan(&scenario);
        by_plan
            .entry(plan.label())
            .or_default()
            .push(scenario.name.clone());
        match served_scenario(&scenario) {
            Some(s) => served.push(ServedScenario {
                original: scenario,
                served: s,
                plan,
            }),
            None if plan == Plan::InvalidSettings => invalid.push(scenario),
            None => {}
        }
    }
    println!(
        "scenarios: {} of {total} in {} run through policy-server, {} as invalid settings:",
        served.len(),
        root.display(),
        invalid.len()
    );
    for (label, names) in &by_plan {
        println!("  {label}: {}", names.join(", "));
    }

    let needs_server = &SECTIONS[..SECTIONS.len() - 1];
    if needs_server.iter().any(|s| suite.selected(s)) {
        let scenarios: Vec<Scenario> = served.iter().map(|s| s.served.clone()).collect();
        let mut entries = entries_for(&scenarios);
        entries.push(PolicyEntry {
            id: LIMITS_ID.to_string(),
            settings: webhook_settings(),
            timeout_eval_seconds: Some(DEADLINE_SECONDS),
            module: None,
        });
        // With kwctl at hand, `make` annotates with kwctl: the module annotated by the
        // project's own host is served too, by entries of its own.
        let kwhost_annotated = (env_path("KWCTL").is_some() && suite.selected(KWHOST_ANNOTATED))
            .then(|| annotate_with_kwhost(manifest_dir, &scratch.0));
        let kwhost_entries: Vec<PolicyEntry> = match &kwhost_annotated {
            Some(Ok(module)) => entries_for(&scenarios)
                .into_iter()
                .map(|entry| PolicyEntry {
                    id: format!("kwhost-annotated-{}", entry.id),
                    module: Some(module.clone()),
                    ..entry
                })
                .collect(),
            _ => Vec::new(),
        };
        let config = Config {
            binary: binary.to_path_buf(),
            module: wasm.clone(),
            entries: entries.iter().chain(&kwhost_entries).cloned().collect(),
            dir: scratch.0.join("server"),
            workers: WORKERS,
            policy_timeout: Some(DEADLINE_SECONDS),
        };
        let mut server = PolicyServer::start(&config)?;
        println!(
            "policy-server ready in {:.1} s on {}: {} policy entries, --workers {WORKERS}, \
             --policy-timeout {DEADLINE_SECONDS} (its default), timeoutEvalSeconds \
             {DEADLINE_SECONDS} on `{LIMITS_ID}`",
            server.startup.as_secs_f64(),
            server.client.url(""),
            config.entries.len()
        );
        let reference = InProcess::new(
            &wasm,
            &CompileCache::Directory(Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasmtime-cache")),
        )?;
        let client = &server.client;
        let validate = Served::new(client, Endpoint::Validate, &entries);
        let policies = registered_policies(&config)?;
        suite.section("scenarios", || {
            scenarios_section(&served, &validate, &reference, &policies)
        });
        suite.section("audit", || audit_section(&served, client, &entries));
        match &kwhost_annotated {
            Some(module) => suite.section(KWHOST_ANNOTATED, || {
                kwhost_annotated_section(
                    module,
                    &served,
                    client,
                    &kwhost_entries,
                    &reference,
                    &policies,
                )
            }),
            None => suite.skip(
                KWHOST_ANNOTATED,
                "KWCTL is not set, so make annotated the module under test with kwhost itself \
                 (the sections above ran it)",
            ),
        }
        suite.section("body-limit", || body_limit_section(client));
        suite.section("load", || load_section(&served, &validate));
        suite.section("deadline", || deadline_section(client));
        if !server.is_running() {
            println!(
                "policy-server exited during the tests:\n{}",
                server.output()
            );
            suite.failed.push("policy-server kept running".to_string());
        }
    }

    suite.section("invalid-settings", || {
        invalid_settings_section(binary, &wasm, &invalid, &scratch.0)
    });
    Ok(())
}

/// `../policy.wasm` annotated by the project's own host, as `make` does without kwctl
/// (`kwhost annotate -m policy-metadata.yml -u README.md`), in the scratch directory.
fn annotate_with_kwhost(manifest_dir: &Path, scratch: &Path) -> Result<PathBuf> {
    let root = manifest_dir.join("..");
    let policy = root.join("policy.wasm");
    if !policy.exists() {
        bail!(
            "{} not found: run `make policy.wasm` in the repository root",
            policy.display()
        );
    }
    let output = scratch.join("kwhost-annotated.wasm");
    kwhost::annotate::annotate_file(
        &policy,
        &root.join("policy-metadata.yml"),
        Some(&root.join("README.md")),
        &output,
    )
    .context("kwhost annotate")?;
    Ok(output)
}

/// Issue 10's metadata parity under policy-server: the module annotated by kwhost passes the
/// `scenarios` and `audit` sections too, through entries of its own in the same
/// policy-server (the module under test is kwctl's when `KWCTL` is set).
fn kwhost_annotated_section(
    module: &Result<PathBuf>,
    served: &[ServedScenario],
    client: &Client,
    entries: &[PolicyEntry],
    reference: &InProcess,
    policies: &Value,
) -> Result<Vec<String>> {
    let module = module.as_ref().map_err(|e| anyhow!("{e:#}"))?;
    println!(
        "the kwhost-annotated module {} ({} bytes), through {} policy entries of its own",
        module.display(),
        std::fs::metadata(module)?.len(),
        entries.len()
    );
    if entries.is_empty() {
        bail!("no policy entry serves the kwhost-annotated module");
    }
    let validate = Served::new(client, Endpoint::Validate, entries);
    let mut failures = scenarios_section(served, &validate, reference, policies)?;
    for f in audit_section(served, client, entries)? {
        failures.push(format!("audit: {f}"));
    }
    Ok(failures)
}

fn webhook_settings() -> Map<String, Value> {
    let mut settings = Map::new();
    settings.insert("namespaceSelection".into(), json!("webhook"));
    settings
}

/// `expected.yml` through policy-server (with the generic patch and re-injection checks of
/// `check`), the same answer as the project's host with the same settings, and for a
/// scenario moved to webhook mode the same answer as in lookup mode but for the webhook rule
/// the reason names.
fn scenarios_section(
    served: &[ServedScenario],
    validate: &Served,
    reference: &InProcess,
    policies: &Value,
) -> Result<Vec<String>> {
    let mut failed = Vec::new();
    let mut check_mode_ids = BTreeMap::new();
    for s in served {
        let name = &s.served.name;
        let mut failures = check(&s.served, validate)?;
        if check_mode(&s.served.settings) {
            // Registered as manifests/check.yml deploys it: policy-server may not let it
            // mutate. Its answer is asserted all the same (`check`, and below).
            let id = validate.id(&s.served)?;
            let allowed = &policies[id]["allowedToMutate"];
            if allowed != &json!(false) {
                failures.push(format!(
                    "check mode runs through policy entry {id}, whose allowedToMutate is \
                     {allowed}, not false (manifests/check.yml: mutating: false)"
                ));
            }
            *check_mode_ids.entry(id.to_string()).or_insert(0) += 1;
        }
        let answer = response(validate.evaluate(&s.served, &s.served.request)?)?;
        let host = response(reference.evaluate(&s.served, &s.served.request)?)?;
        failures.extend(differences(
            &answer,
            &host,
            "the project's host (kwhost)",
            false,
        ));
        if s.plan == Plan::Webhook {
            let lookup = response(reference.evaluate(&s.original, &s.original.request)?)?;
            failures.extend(differences(
                &answer,
                &lookup,
                "the lookup-mode scenario",
                true,
            ));
        }
        let mode = match s.plan {
            Plan::Webhook => "webhook",
            _ => "as is",
        };
        if failures.is_empty() {
            println!("scenario {name} ({mode}) ... ok");
        } else {
            println!("scenario {name} ({mode}) ... FAILED");
            for f in &failures {
                println!("    {f}");
            }
            failed.push(format!("scenario {name}"));
        }
    }
    if check_mode_ids.is_empty() {
        failed.push("no check-mode scenario ran".to_string());
    }
    println!(
        "scenarios: {} in check mode, answered by the entries {:?}, registered with \
         allowedToMutate: false",
        check_mode_ids.values().sum::<usize>(),
        check_mode_ids.keys().collect::<Vec<_>>()
    );
    Ok(failed)
}

/// The `policies.yml` the running policy-server read, by policy id.
fn registered_policies(config: &Config) -> Result<Value> {
    let path = config.dir.join("policies.yml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path:?}"))?;
    serde_yaml::from_str(&text).with_context(|| format!("{path:?}"))
}

fn response(outcome: Outcome) -> Result<AdmissionResponse> {
    match outcome {
        Outcome::Response(r) => Ok(r),
        Outcome::SettingsInvalid(msg) => Err(anyhow!("settings refused: {msg}")),
    }
}

/// The code of a `code: human text` reason.
fn reason_code(response: &AdmissionResponse) -> Option<&str> {
    let reason = response.audit_annotations.as_ref()?.get("reason")?;
    Some(reason.split(':').next().unwrap_or(reason))
}

/// How `got` differs from `want` (the patch compared decoded); with `reason_code_only` the
/// reasons need only have the same code.
fn differences(
    got: &AdmissionResponse,
    want: &AdmissionResponse,
    what: &str,
    reason_code_only: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, same: bool, g: String, w: String| {
        if !same {
            out.push(format!("{name} differs from {what}: {g} instead of {w}"));
        }
    };
    field(
        "uid",
        got.uid == want.uid,
        got.uid.clone(),
        want.uid.clone(),
    );
    field(
        "allowed",
        got.allowed == want.allowed,
        got.allowed.to_string(),
        want.allowed.to_string(),
    );
    let (gp, wp) = (
        got.decoded_patch().ok().flatten(),
        want.decoded_patch().ok().flatten(),
    );
    field(
        "the patch",
        gp == wp && got.patch_type == want.patch_type,
        short(&serde_json::to_string(&gp).unwrap_or_default(), 300),
        short(&serde_json::to_string(&wp).unwrap_or_default(), 300),
    );
    // In lookup mode a reason (and a check-mode message naming it) also says which webhook
    // entry selected the Pod; in webhook mode the API server's selectors did.
    let status = |r: &AdmissionResponse| {
        let mut status = r.status.clone();
        if reason_code_only && let Some(message) = status.as_mut().and_then(|s| s.message.as_mut())
        {
            *message = without_selecting_entry(message);
        }
        status
    };
    field(
        "status",
        status(got) == status(want),
        format!("{:?}", got.status),
        format!("{:?}", want.status),
    );
    field(
        "warnings",
        got.warnings == want.warnings,
        format!("{:?}", got.warnings),
        format!("{:?}", want.warnings),
    );
    if reason_code_only {
        let outcome = |r: &AdmissionResponse| {
            r.audit_annotations
                .as_ref()
                .and_then(|a| a.get("outcome").cloned())
        };
        field(
            "auditAnnotations.outcome",
            outcome(got) == outcome(want),
            format!("{:?}", outcome(got)),
            format!("{:?}", outcome(want)),
        );
        field(
            "the reason code",
            reason_code(got) == reason_code(want),
            format!("{:?}", reason_code(got)),
            format!("{:?}", reason_code(want)),
        );
    } else {
        field(
            "auditAnnotations",
            got.audit_annotations == want.audit_annotations,
            format!("{:?}", got.audit_annotations),
            format!("{:?}", want.audit_annotations),
        );
    }
    out
}

/// `text` without the ` (selected by webhook rule <entry>)` a lookup-mode reason carries.
fn without_selecting_entry(text: &str) -> String {
    const MARK: &str = " (selected by webhook rule ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let after = &rest[at + MARK.len()..];
        match after.find(')') {
            Some(end) => rest = &after[end + 1..],
            None => {
                rest = after;
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text`, cut after `max` characters.
fn short(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
        None => text.to_string(),
    }
}

/// `/audit/<id>` answers as `/validate/<id>`: same uid, verdict, status, auditAnnotations
/// and warnings. Its patch, when it sends one, is the very patch of `/validate`.
fn audit_section(
    served: &[ServedScenario],
    client: &Client,
    entries: &[PolicyEntry],
) -> Result<Vec<String>> {
    let validate = Served::new(client, Endpoint::Validate, entries);
    let audit = Served::new(client, Endpoint::Audit, entries);
    let mut failures = Vec::new();
    let (mut mutating, mut audit_patches) = (0, 0);
    let mut check_outcomes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in served {
        let request = &s.served.request;
        let v = response(validate.evaluate(&s.served, request)?)?;
        let a = response(audit.evaluate(&s.served, request)?)?;
        if check_mode(&s.served.settings)
            && let Some(outcome) = a.audit_annotations.as_ref().and_then(|m| m.get("outcome"))
        {
            check_outcomes
                .entry(outcome.clone())
                .or_default()
                .push(s.served.name.clone());
        }
        let mut without_mutation = v.clone();
        if v.patch.is_some() {
            mutating += 1;
            if a.patch.is_some() {
                audit_patches += 1;
            } else {
                without_mutation.patch = None;
                without_mutation.patch_type = None;
            }
        }
        for d in differences(&a, &without_mutation, "/validate", false) {
            failures.push(format!("{}: /audit {d}", s.served.name));
        }
    }
    println!(
        "audit: {} scenarios, /audit and /validate agree on uid, allowed, status, \
         auditAnnotations and warnings; {audit_patches} of the {mutating} mutating answers \
         carry the same patch on /audit too (policy-server returns the policy's unprocessed \
         answer there)",
        served.len()
    );
    // What the audit scanner calls check mode for: every answer it can give is covered.
    for outcome in CHECK_OUTCOMES {
        match check_outcomes.get(outcome) {
            Some(names) => println!("audit: check mode {outcome}: {}", names.join(", ")),
            None => failures.push(format!(
                "no check-mode scenario is answered {outcome} on /audit"
            )),
        }
    }
    Ok(failures)
}

/// The answers of check mode the `audit` section must see on `/audit`.
const CHECK_OUTCOMES: [&str; 6] = [
    "sidecar-current",
    "sidecar-missing",
    "sidecar-unexpected",
    "sidecar-outdated",
    "skipped",
    "rejected",
];

/// A Pod CREATE in namespace `demo` with one container, the base of the Pods built here.
fn base_request(uid: &str) -> Value {
    json!({
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "web",
        "namespace": "demo",
        "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "demo", "labels": {"app": "web"}},
            "spec": {
                "containers": [{"name": "app", "image": "nginx:1.27",
                                "ports": [{"containerPort": 8080, "protocol": "TCP"}]}],
                "restartPolicy": "Always"
            }
        },
        "dryRun": false
    })
}

/// How one hostile or large Pod is built from the base Pod (`n` = how many items).
type Shape = fn(&mut Value, usize);

/// The base request with `shape` applied with the largest `n` whose AdmissionReview is at
/// most `limit` bytes; the request and `n`.
fn fill(uid: &str, shape: Shape, limit: usize) -> Result<(AdmissionRequest, usize)> {
    // The base request has only fields AdmissionRequest keeps, so the AdmissionReview of the
    // JSON value is as long as the one sent (checked at the end).
    let build = |n: usize| -> Result<(Value, usize)> {
        let mut request = base_request(uid);
        shape(&mut request["object"], n);
        let mut review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});
        let len = serde_json::to_vec(&review)?.len();
        Ok((review["request"].take(), len))
    };
    let first = build(1)?.1;
    if first > limit {
        bail!("even one item is over {limit} bytes");
    }
    // Secant steps towards the limit (sizes grow about linearly), then bracket and bisect.
    let (mut n, mut len) = (1, first);
    for _ in 0..6 {
        let per_item = if n == 1 {
            (build(2)?.1 - first) as f64
        } else {
            (len - first) as f64 / (n - 1) as f64
        };
        let next = ((n as f64 + (limit as f64 - len as f64) / per_item.max(1.0)) as usize).max(1);
        if next == n {
            break;
        }
        (n, len) = (next, build(next)?.1);
    }
    let (mut low, mut high) = if len <= limit { (n, n + 1) } else { (1, n) };
    let mut step = 1;
    while build(high)?.1 <= limit {
        low = high;
        high += step;
        step *= 2;
    }
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if build(mid)?.1 <= limit {
            low = mid;
        } else {
            high = mid;
        }
    }
    let request = AdmissionRequest::from_value(&build(low)?.0)?;
    let sent = review_body(&request)?.len();
    if sent > limit {
        bail!("the AdmissionReview is {sent} bytes, over {limit}");
    }
    Ok((request, low))
}

fn spec(object: &mut Value) -> &mut Map<String, Value> {
    object["spec"]
        .as_object_mut()
        .expect("the base Pod has a spec")
}

fn app(object: &mut Value) -> &mut Map<String, Value> {
    object["spec"]["containers"][0]
        .as_object_mut()
        .expect("the base Pod has a container")
}

fn annotate(object: &mut Value, key: &str, value: String) {
    object["metadata"]["annotations"][key] = Value::String(value);
}

/// A realistic, fat container: ports, env, probes, resources, a mount.
fn fat_container(i: usize) -> Value {
    let port = 8000 + i % 1000;
    json!({
        "name": format!("app-{i}"),
        "image": format!("registry.example.com/team/app-{i}:1.2.3"),
        "ports": [{"name": format!("http-{}", i % 100), "containerPort": port, "protocol": "TCP"}],
        "env": (0..10).map(|j| json!({"name": format!("VAR_{j}"), "value": "x".repeat(20)})).collect::<Vec<_>>(),
        "readinessProbe": {"httpGet": {"path": "/ready", "port": port}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/live", "port": port}},
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
        "volumeMounts": [{"name": "data", "mountPath": format!("/data/{i}")}]
    })
}

fn fat_containers(object: &mut Value, n: usize) {
    spec(object).insert(
        "containers".into(),
        Value::Array((0..n).map(fat_container).collect()),
    );
    spec(object).insert("volumes".into(), json!([{"name": "data", "emptyDir": {}}]));
}

fn huge_annotation(object: &mut Value, n: usize) {
    annotate(object, "example.com/huge", "x".repeat(n));
}

/// The hostile Pods, each as large as policy-server reads: the shape and what it stresses.
const HOSTILE: &[(&str, Shape)] = &[
    ("containers", |o, n| {
        let list = (0..n)
            .map(|i| json!({"name": format!("c{i}"), "image": "busybox"}))
            .collect();
        spec(o).insert("containers".into(), Value::Array(list));
    }),
    ("probed-containers", |o, n| {
        let probe = |path: &str| json!({"httpGet": {"path": path, "port": 8080}});
        let list = (0..n)
            .map(|i| {
                json!({"name": format!("c{i}"), "image": "busybox",
                       "readinessProbe": probe("/r"), "livenessProbe": probe("/l"),
                       "startupProbe": probe("/s")})
            })
            .collect();
        spec(o).insert("containers".into(), Value::Array(list));
    }),
    ("fat-containers", fat_containers),
    ("volumes", |o, n| {
        let volumes = (0..n)
            .map(|i| json!({"name": format!("v{i}"), "emptyDir": {}}))
            .collect();
        let mounts = (0..n)
            .map(|i| json!({"name": format!("v{i}"), "mountPath": format!("/v/{i}")}))
            .collect();
        spec(o).insert("volumes".into(), Value::Array(volumes));
        app(o).insert("volumeMounts".into(), Value::Array(mounts));
    }),
    ("env", |o, n| {
        let env = (0..n)
            .map(|i| json!({"name": format!("E{i}"), "value": "v"}))
            .collect();
        app(o).insert("env".into(), Value::Array(env));
    }),
    ("ports", |o, n| {
        let ports = (0..n)
            .map(|i| json!({"name": format!("p{i}"), "containerPort": 1 + i % 65535}))
            .collect();
        app(o).insert("ports".into(), Value::Array(ports));
    }),
    ("huge-annotation", huge_annotation),
    ("annotations", |o, n| {
        for i in 0..n {
            annotate(o, &format!("a{i}.example.com/key"), "value".into());
        }
    }),
    ("labels", |o, n| {
        for i in 0..n {
            o["metadata"]["labels"][format!("l{i}")] = json!("v".repeat(63));
        }
    }),
    ("long-label-values", |o, n| {
        for i in 0..16 {
            o["metadata"]["labels"][format!("long-{i}")] = json!("v".repeat(n));
        }
    }),
    ("user-volumes", |o, n| {
        let volumes: Map<String, Value> = (0..n)
            .map(|i| (format!("v{i}"), json!({"emptyDir": {}})))
            .collect();
        let mounts: Map<String, Value> = (0..n)
            .map(|i| (format!("v{i}"), json!({"mountPath": format!("/v/{i}")})))
            .collect();
        annotate(
            o,
            "sidecar.istio.io/userVolume",
            Value::Object(volumes).to_string(),
        );
        annotate(
            o,
            "sidecar.istio.io/userVolumeMount",
            Value::Object(mounts).to_string(),
        );
    }),
    ("nested-unknown-fields", |o, n| {
        // As deep as policy-server's JSON parser goes (it refuses 128 levels): the tree sits
        // at level 5 of the AdmissionReview.
        let tree = (0..120).fold(json!({"leaf": true}), |inner, _| json!({"x": inner}));
        spec(o).insert("unknownTrees".into(), Value::Array(vec![tree; n]));
    }),
    ("outbound-ip-ranges", |o, n| {
        let ranges: Vec<String> = (0..n)
            .map(|i| format!("10.{}.{}.0/24", (i >> 8) & 255, i & 255))
            .collect();
        annotate(
            o,
            "traffic.sidecar.istio.io/includeOutboundIPRanges",
            ranges.join(","),
        );
    }),
    ("inbound-ports", |o, n| {
        let ports: Vec<String> = (0..n).map(|i| (1 + i % 65535).to_string()).collect();
        annotate(
            o,
            "traffic.sidecar.istio.io/excludeInboundPorts",
            ports.join(","),
        );
    }),
    ("proxy-config", |o, n| {
        let entries: String = (0..n).map(|i| format!("  K{i}: v\n")).collect();
        annotate(
            o,
            "proxy.istio.io/config",
            format!("proxyMetadata:\n{entries}"),
        );
    }),
    ("templates", |o, n| {
        annotate(o, "inject.istio.io/templates", vec!["sidecar"; n].join(","));
    }),
];

/// A YAML alias bomb ("billion laughs") as the proxy config: 9^9 strings once expanded.
fn yaml_aliases(object: &mut Value) {
    let mut yaml = String::from(
        "proxyMetadata: {X: y}\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    let names: Vec<char> = ('a'..='j').collect();
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 9].join(", ");
        yaml.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
    }
    annotate(object, "proxy.istio.io/config", yaml);
}

/// The largest body policy-server reads is answered; one byte more, or 10 MiB, gets its own
/// HTTP 413 (the API server would report the webhook call as failed).
fn body_limit_section(client: &Client) -> Result<Vec<String>> {
    let mut failures = Vec::new();
    let path = Endpoint::Validate.path(LIMITS_ID);
    // A body of exactly `len` bytes: the base Pod with an annotation of the right length.
    let body = |len: usize| -> Result<Vec<u8>> {
        let mut request = base_request("body-limit");
        huge_annotation(&mut request["object"], 0);
        let empty = review_body(&AdmissionRequest::from_value(&request)?)?.len();
        huge_annotation(&mut request["object"], len - empty);
        let body = review_body(&AdmissionRequest::from_value(&request)?)?;
        if body.len() != len {
            bail!("built a body of {} bytes instead of {len}", body.len());
        }
        Ok(body)
    };
    let (largest, over, ten_mib) = (
        body(BODY_LIMIT)?,
        body(BODY_LIMIT + 1)?,
        body(10 * 1024 * 1024)?,
    );
    for (what, body, want) in [
        ("the largest body", largest.clone(), 200),
        ("one byte more", over, 413),
        ("10 MiB", ten_mib, 413),
    ] {
        let len = body.len();
        let started = Instant::now();
        let answer = client.post(&path, body);
        let took = started.elapsed().as_secs_f64();
        let (status, answer) = match answer {
            Ok(a) => a,
            // policy-server answers 413 as soon as the limit is passed and closes the
            // connection: a client still sending megabytes may get a broken pipe instead
            // of the answer. Refused either way, if policy-server is still there.
            Err(e) if want == 413 => {
                println!(
                    "{what} ({len} bytes): connection closed while sending, in {took:.2} s (policy-server stops reading at its limit): {e:#}"
                );
                match client.post(&path, largest.clone()) {
                    Ok((200, _)) => {}
                    other => failures.push(format!(
                        "after {what}, the largest body is not answered: {:?}",
                        other.map(|(s, _)| s)
                    )),
                }
                continue;
            }
            Err(e) => {
                failures.push(format!("{what} ({len} bytes): {e:#}"));
                continue;
            }
        };
        let mut line = format!("{what} ({len} bytes): HTTP {status} in {took:.2} s");
        if status == 200 {
            match parse_review(&answer) {
                Ok(r) => line.push_str(&format!(", {}", outcome_of(&r))),
                Err(e) => failures.push(format!("{what}: {e:#}")),
            }
        } else {
            line.push_str(&format!(
                ": {}",
                short(&String::from_utf8_lossy(&answer), 300)
            ));
        }
        println!("{line}");
        if status != want {
            failures.push(format!(
                "{what} ({len} bytes): HTTP {status}, expected {want}"
            ));
        }
    }
    Ok(failures)
}

fn outcome_of(response: &AdmissionResponse) -> String {
    let annotation = |k: &str| {
        response
            .audit_annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .map_or("-", String::as_str)
    };
    let mut text = format!(
        "allowed {}, outcome {}, reason {:?}",
        response.allowed,
        annotation("outcome"),
        short(annotation("reason"), 120)
    );
    if let Some(message) = response.status.as_ref().and_then(|s| s.message.as_deref()) {
        text.push_str(&format!(", message {:?}", short(message, 120)));
    }
    text
}

/// One kind of request in the load run, and the answer it must get (apart from the uid).
struct LoadCase {
    name: String,
    path: String,
    request: AdmissionRequest,
    outcome: String,
    answer: AdmissionResponse,
}

/// What one load request got: the time it took and the outcome of its answer.
enum LoadResult {
    Correct(Duration, String),
    /// Answered, but not as it should have been (its outcome, when it has one).
    Wrong(Duration, Option<String>, String),
    /// No answer (connection error, timeout).
    Lost(String),
}

impl LoadResult {
    /// The outcome of the answer; `None` for a lost request.
    fn outcome(&self) -> Option<String> {
        match self {
            LoadResult::Correct(_, outcome) => Some(outcome.clone()),
            LoadResult::Wrong(_, outcome, _) => Some(
                outcome
                    .clone()
                    .unwrap_or_else(|| "(no AdmissionReview)".to_string()),
            ),
            LoadResult::Lost(_) => None,
        }
    }
}

fn load_section(served: &[ServedScenario], validate: &Served) -> Result<Vec<String>> {
    let client = validate.client;
    // The cases and their reference answers, asked one at a time.
    let reference = |name: String, path: String, request: AdmissionRequest| -> Result<LoadCase> {
        let (status, body) = client.post(&path, review_body(&request)?)?;
        if status != 200 {
            bail!(
                "{name}: HTTP {status}: {}",
                short(&String::from_utf8_lossy(&body), 300)
            );
        }
        let answer = parse_review(&body).with_context(|| name.clone())?;
        let outcome = answer
            .audit_annotations
            .as_ref()
            .and_then(|a| a.get("outcome"))
            .cloned()
            .ok_or_else(|| anyhow!("{name}: the answer has no outcome"))?;
        Ok(LoadCase {
            name,
            path,
            request,
            outcome,
            answer,
        })
    };
    let mut cases = Vec::new();
    for s in served {
        let path = Endpoint::Validate.path(validate.id(&s.served)?);
        let case = reference(s.served.name.clone(), path, s.served.request.clone())?;
        if s.served.expected.outcome.as_deref() != Some(case.outcome.as_str())
            || s.served.expected.allowed != Some(case.answer.allowed)
        {
            bail!(
                "{}: outcome {}, allowed {}; expected.yml says {:?}, allowed {:?}",
                case.name,
                case.outcome,
                case.answer.allowed,
                s.served.expected.outcome,
                s.served.expected.allowed
            );
        }
        cases.push(case);
    }
    let regular = cases.len();
    let limits = Endpoint::Validate.path(LIMITS_ID);
    let (fat, containers) = fill("load-largest", fat_containers, BODY_LIMIT - UID_ROOM)?;
    let (annotated, _) = fill("load-largest", huge_annotation, BODY_LIMIT - UID_ROOM)?;
    let largest = [
        (format!("largest Pod ({containers} fat containers)"), fat),
        ("largest annotation".to_string(), annotated),
    ];
    for (name, request) in largest {
        let case = reference(name, limits.clone(), request)?;
        if case.outcome != "injected" {
            bail!("{}: {}", case.name, outcome_of(&case.answer));
        }
        cases.push(case);
    }

    // The requests: the scenarios in turn, every LOAD_LARGEST_EVERY-th a largest Pod.
    let mut plan = Vec::with_capacity(LOAD_REQUESTS);
    let (mut next_regular, mut next_largest) = (0, 0);
    for i in 0..LOAD_REQUESTS {
        let case = if i % LOAD_LARGEST_EVERY == LOAD_LARGEST_EVERY / 2 {
            next_largest += 1;
            regular + (next_largest - 1) % (cases.len() - regular)
        } else {
            next_regular += 1;
            (next_regular - 1) % regular
        };
        let mut request = cases[case].request.clone();
        request.uid = format!("load-{i:04}-{}", cases[case].name.replace(' ', "-"));
        let body = review_body(&request)?;
        if body.len() > BODY_LIMIT {
            bail!("{}: {} bytes, over the body limit", request.uid, body.len());
        }
        plan.push((case, request.uid, body));
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (case, _, _) in &plan {
        *counts.entry(cases[*case].outcome.clone()).or_default() += 1;
    }
    let largest_sent = plan.iter().filter(|(c, _, _)| *c >= regular).count();

    let cases = Arc::new(cases);
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let results: Vec<(usize, LoadResult)> = client.runtime().block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..LOAD_CONCURRENCY {
            let (cases, plan, next) = (Arc::clone(&cases), Arc::clone(&plan), Arc::clone(&next));
            let http = client.http().clone();
            let base = client.url("");
            tasks.push(tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((case, uid, body)) = plan.get(i) else {
                        break;
                    };
                    let case = &cases[*case];
                    let sent = Instant::now();
                    let answer = kwhost::policy_server::post(
                        &http,
                        &format!("{base}{}", case.path),
                        body.clone(),
                    )
                    .await;
                    let took = sent.elapsed();
                    done.push((i, judge(case, uid, took, answer)));
                }
                done
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            match task.await {
                Ok(done) => all.extend(done),
                Err(e) => eprintln!("a load task failed: {e}"),
            }
        }
        all
    });
    let wall = started.elapsed();

    // The mix: every request's answer has its Pod's outcome, outcome by outcome as many
    // answers as requests sent, none lost.
    let sent: Vec<String> = plan
        .iter()
        .map(|(case, _, _)| cases[*case].outcome.clone())
        .collect();
    let answers: Vec<(usize, Option<String>)> =
        results.iter().map(|(i, r)| (*i, r.outcome())).collect();
    let mut failures = load_mix_failures(&sent, &answers, &LOAD_MIX);
    let mut answered: BTreeMap<String, usize> = BTreeMap::new();
    for (_, outcome) in &answers {
        let outcome = outcome.clone().unwrap_or_else(|| "(lost)".to_string());
        *answered.entry(outcome).or_default() += 1;
    }
    let mut latencies = Vec::new();
    let (mut correct, mut wrong, mut lost) = (0, 0, 0);
    for (i, result) in &results {
        match result {
            LoadResult::Correct(took, _) => {
                correct += 1;
                latencies.push(*took);
            }
            LoadResult::Wrong(took, _, why) => {
                wrong += 1;
                latencies.push(*took);
                failures.push(format!("request {i}: {why}"));
            }
            LoadResult::Lost(why) => {
                lost += 1;
                failures.push(format!("request {i} lost: {why}"));
            }
        }
    }
    let unanswered = LOAD_REQUESTS - results.len();
    lost += unanswered;
    if unanswered > 0 {
        failures.push(format!(
            "{unanswered} requests were never sent or never came back"
        ));
    }
    latencies.sort();
    let pct = |p: f64| -> f64 {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "load: {LOAD_REQUESTS} requests at concurrency {LOAD_CONCURRENCY} over {} kinds \
         ({largest_sent} of them the largest Pods, up to {:.2} MiB)",
        cases.len(),
        plan.iter().map(|(_, _, b)| b.len()).max().unwrap_or(0) as f64 / 1048576.0
    );
    println!("load: outcomes sent     {counts:?}");
    println!("load: outcomes answered {answered:?}");
    println!(
        "load: {correct} answered correctly, {wrong} wrong, {lost} lost; p50 {:.1} ms, p99 {:.1} ms, \
         max {:.1} ms; {:.0} requests/s ({:.1} s)",
        pct(0.50),
        pct(0.99),
        pct(1.0),
        LOAD_REQUESTS as f64 / wall.as_secs_f64(),
        wall.as_secs_f64()
    );
    failures.truncate(20);
    Ok(failures)
}

/// Whether a load answer is the case's reference answer with the request's uid.
fn judge(case: &LoadCase, uid: &str, took: Duration, answer: Result<(u16, Vec<u8>)>) -> LoadResult {
    let (status, body) = match answer {
        Ok(a) => a,
        Err(e) => return LoadResult::Lost(format!("{}: {e:#}", case.name)),
    };
    if status != 200 {
        return LoadResult::Wrong(
            took,
            None,
            format!(
                "{}: HTTP {status}: {}",
                case.name,
                short(&String::from_utf8_lossy(&body), 300)
            ),
        );
    }
    let got = match parse_review(&body) {
        Ok(r) => r,
        Err(e) => return LoadResult::Wrong(took, None, format!("{}: {e:#}", case.name)),
    };
    let outcome = got
        .audit_annotations
        .as_ref()
        .and_then(|a| a.get("outcome"));
    if got.uid != uid {
        return LoadResult::Wrong(
            took,
            outcome.cloned(),
            format!("{}: uid {:?} instead of {uid:?}", case.name, got.uid),
        );
    }
    if outcome != Some(&case.outcome) {
        return LoadResult::Wrong(
            took,
            outcome.cloned(),
            format!(
                "{}: outcome {outcome:?} instead of {:?} ({})",
                case.name,
                case.outcome,
                outcome_of(&got)
            ),
        );
    }
    let mut want = case.answer.clone();
    want.uid = got.uid.clone();
    if got != want {
        return LoadResult::Wrong(
            took,
            outcome.cloned(),
            format!(
                "{}: the answer differs from the one given alone: {}",
                case.name,
                outcome_of(&got)
            ),
        );
    }
    LoadResult::Correct(took, case.outcome.clone())
}

/// Hostile Pods, one at a time, under the evaluation deadline: each must be answered by the
/// policy (allowed, or rejected with the policy's message), never interrupted.
fn deadline_section(client: &Client) -> Result<Vec<String>> {
    let path = Endpoint::Validate.path(LIMITS_ID);
    let mut pods = Vec::new();
    for (name, shape) in HOSTILE {
        let (request, n) = fill(&format!("hostile-{name}"), *shape, BODY_LIMIT)?;
        pods.push((format!("{name} (n = {n})"), request));
    }
    let mut bomb = base_request("hostile-yaml-aliases");
    yaml_aliases(&mut bomb["object"]);
    pods.push((
        "yaml-aliases (9^9 strings once expanded)".to_string(),
        AdmissionRequest::from_value(&bomb)?,
    ));

    println!(
        "deadline: {} hostile Pods, one at a time, to `{LIMITS_ID}` (timeoutEvalSeconds \
         {DEADLINE_SECONDS}, --policy-timeout {DEADLINE_SECONDS})",
        pods.len()
    );
    let mut failures = Vec::new();
    for (name, request) in pods {
        let body = review_body(&request)?;
        let len = body.len();
        let started = Instant::now();
        let answer = client.post(&path, body);
        let took = started.elapsed().as_secs_f64();
        let size = format!("{:.2} MiB", len as f64 / 1048576.0);
        let verdict = match answer {
            Err(e) => Err(format!("no answer: {e:#}")),
            Ok((status, body)) if status != 200 => Err(format!(
                "HTTP {status}: {}",
                short(&String::from_utf8_lossy(&body), 300)
            )),
            Ok((_, body)) => match parse_review(&body) {
                Err(e) => Err(format!("{e:#}")),
                Ok(r) => hostile_verdict(&request, &r),
            },
        };
        match verdict {
            Ok(text) => println!("hostile {name}, {size}: {text} in {took:.2} s"),
            Err(why) => {
                println!("hostile {name}, {size}: FAILED in {took:.2} s: {why}");
                failures.push(format!("{name}, {size}: {why}"));
            }
        }
    }
    Ok(failures)
}

/// An answer from the policy itself: the request's uid, an outcome, and either allowed or
/// rejected with the policy's own message; never policy-server's deadline message.
fn hostile_verdict(
    request: &AdmissionRequest,
    response: &AdmissionResponse,
) -> std::result::Result<String, String> {
    let message = response.status.as_ref().and_then(|s| s.message.as_deref());
    if message.is_some_and(|m| m.contains(TIMEOUT_MESSAGE)) {
        return Err(format!(
            "policy-server interrupted the policy: {:?} (the evaluation took longer than the \
             {DEADLINE_SECONDS} s deadline)",
            message.unwrap_or_default()
        ));
    }
    if response.uid != request.uid {
        return Err(format!(
            "uid {:?} instead of {:?}",
            response.uid, request.uid
        ));
    }
    let outcome = response
        .audit_annotations
        .as_ref()
        .and_then(|a| a.get("outcome"))
        .map(String::as_str);
    match (response.allowed, outcome) {
        (true, Some("injected" | "skipped" | "not-selected")) => Ok(outcome_of(response)),
        (false, Some("rejected")) if message.is_some_and(|m| !m.is_empty()) => {
            Ok(outcome_of(response))
        }
        _ => Err(format!(
            "not an answer of the policy: {}",
            outcome_of(response)
        )),
    }
}

/// With the invalid settings of each scenario, policy-server refuses to start and prints the
/// policy's message, which names the field.
fn invalid_settings_section(
    binary: &Path,
    wasm: &Path,
    invalid: &[Scenario],
    scratch: &Path,
) -> Result<Vec<String>> {
    let mut failures = Vec::new();
    if invalid.is_empty() {
        failures.push("no scenario has invalid settings".to_string());
    }
    for scenario in invalid {
        let want = scenario
            .expected
            .settings_invalid
            .as_deref()
            .unwrap_or_default();
        let config = Config {
            binary: binary.to_path_buf(),
            module: wasm.to_path_buf(),
            entries: vec![PolicyEntry {
                id: scenario.name.clone(),
                settings: scenario.settings.clone(),
                timeout_eval_seconds: None,
                module: None,
            }],
            dir: scratch.join(&scenario.name),
            workers: 1,
            policy_timeout: None,
        };
        let (status, output) = match PolicyServer::expect_refusal(&config, Duration::from_secs(120))
        {
            Ok(refusal) => refusal,
            Err(e) => {
                println!("{} ... FAILED", scenario.name);
                failures.push(format!("{}: {e:#}", scenario.name));
                continue;
            }
        };
        let line = output
            .lines()
            .find(|l| l.contains("Policy settings are invalid: "))
            .map(str::trim);
        match line {
            Some(line) if !status.success() && line.contains(want) => {
                println!("{} ... refused ({status}): {line}", scenario.name);
            }
            _ => {
                println!("{} ... FAILED ({status})", scenario.name);
                failures.push(format!(
                    "{}: expected policy-server to exit with an error and print \
                     \"Policy settings are invalid: …{want}…\"; it exited with {status}, \
                     printing:\n{}",
                    scenario.name,
                    output.trim_end()
                ));
            }
        }
    }
    Ok(failures)
}
