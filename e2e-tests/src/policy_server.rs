//! A real Kubewarden policy-server (`POLICY_SERVER=/path/to/policy-server`), driven as the
//! Kubernetes API server drives it: started on 127.0.0.1 with the annotated module
//! (`file://`), one policy entry per set of settings, and AdmissionReviews POSTed over HTTP
//! to `/validate/<id>` (or `/audit/<id>`, what the audit scanner calls).
//!
//! - [`Config`] / [`PolicyServer`]: the `policies.yml` and the running process, killed when
//!   dropped (also when a test fails half-way).
//! - [`Client`]: sends AdmissionReviews and reads the answers (reqwest on a tokio runtime).
//! - [`Served`]: an [`Evaluator`], so that [`crate::scenario::check`] verifies the
//!   policy-server's answers exactly as those of the other hosts.
//! - [`plan`]: which scenarios can run there. No Kubernetes API is reachable, so a policy
//!   that reads the Pod's Namespace cannot get it; see [`Plan`].

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};

use crate::response::{AdmissionRequest, AdmissionResponse};
use crate::scenario::{Evaluator, Outcome, Scenario};

/// What policy-server answers when the policy runs past its evaluation deadline.
pub const TIMEOUT_MESSAGE: &str =
    "Policy execution interrupted because it exceeded the allowed execution time";

/// policy-server's request body limit (axum's default, `DefaultBodyLimit`): a body of this
/// many bytes is read, one more byte gets HTTP 413.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// How policy-server starts an evaluation deadline when none is given (`--policy-timeout`).
pub const DEFAULT_POLICY_TIMEOUT_SECONDS: u64 = 2;

/// One entry of `policies.yml`.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyEntry {
    /// The policy id: the path is `/validate/<id>`.
    pub id: String,
    pub settings: Map<String, Value>,
    /// `timeoutEvalSeconds`: this policy's evaluation deadline (else `--policy-timeout`).
    pub timeout_eval_seconds: Option<u64>,
    /// Another annotated module than the config's (benchmarks serve several).
    pub module: Option<PathBuf>,
}

impl PolicyEntry {
    /// `allowedToMutate`, as the project's manifests deploy the policy: the injector may
    /// mutate (`mutating: true`), check mode may not (`manifests/check.yml`, `mutating:
    /// false`), so policy-server would refuse a check-mode answer that mutated.
    pub fn allowed_to_mutate(&self) -> bool {
        !check_mode(&self.settings)
    }
}

/// Whether the settings run check mode (`action: check`).
pub fn check_mode(settings: &Map<String, Value>) -> bool {
    settings.get("action").and_then(Value::as_str) == Some("check")
}

/// How to start a policy-server.
#[derive(Debug, Clone)]
pub struct Config {
    pub binary: PathBuf,
    /// The annotated module, served as `file://<absolute path>`.
    pub module: PathBuf,
    pub entries: Vec<PolicyEntry>,
    /// Scratch directory: `policies.yml`, the download and sigstore directories, the log.
    pub dir: PathBuf,
    /// `--workers`.
    pub workers: usize,
    /// `--policy-timeout` (seconds); policy-server's default when `None`.
    pub policy_timeout: Option<u64>,
}

impl Config {
    /// The `policies.yml` policy-server reads: an entry may mutate (`allowedToMutate`, the
    /// ClusterAdmissionPolicy's `mutating`) unless it runs check mode
    /// ([`PolicyEntry::allowed_to_mutate`]); none has context-aware resources.
    pub fn policies_yaml(&self) -> Result<String> {
        let mut policies = Map::new();
        for entry in &self.entries {
            let path = entry.module.as_ref().unwrap_or(&self.module);
            let module = std::path::absolute(path)
                .with_context(|| format!("cannot make {path:?} absolute"))?;
            let mut policy = json!({
                "module": format!("file://{}", module.display()),
                "allowedToMutate": entry.allowed_to_mutate(),
                "settings": entry.settings,
            });
            if let Some(seconds) = entry.timeout_eval_seconds {
                policy["timeoutEvalSeconds"] = json!(seconds);
            }
            if policies.insert(entry.id.clone(), policy).is_some() {
                bail!("two policy entries have the id {:?}", entry.id);
            }
        }
        Ok(serde_yaml::to_string(&Value::Object(policies))?)
    }

    fn command(&self, port: u16, readiness_port: u16) -> Result<Command> {
        let policies = self.dir.join("policies.yml");
        std::fs::write(&policies, self.policies_yaml()?)?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--policies")
            .arg(&policies)
            .arg("--policies-download-dir")
            .arg(self.dir.join("downloads"))
            .arg("--sigstore-cache-dir")
            .arg(self.dir.join("sigstore"))
            .arg("--ignore-kubernetes-connection-failure")
            .args(["--addr", "127.0.0.1"])
            .arg("--port")
            .arg(port.to_string())
            .arg("--readiness-probe-port")
            .arg(readiness_port.to_string())
            .arg("--workers")
            .arg(self.workers.to_string())
            .args(["--log-level", "warn", "--log-no-color"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        if let Some(seconds) = self.policy_timeout {
            cmd.arg("--policy-timeout").arg(seconds.to_string());
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // Killed when the thread that starts it ends, so that a test process killed
            // without unwinding (no drop guard) leaves no policy-server behind. Start it
            // from a thread that outlives it (the tests use the main thread).
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        Ok(cmd)
    }

    /// Spawns policy-server on these ports, with stdout and stderr in `log`.
    fn spawn(&self, log: &Path, port: u16, readiness_port: u16) -> Result<ChildGuard> {
        std::fs::create_dir_all(&self.dir)?;
        let out = File::create(log).with_context(|| format!("cannot create {log:?}"))?;
        let err = out.try_clone()?;
        let child = self
            .command(port, readiness_port)?
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot run {:?}", self.binary))?;
        Ok(ChildGuard(child))
    }
}

/// A child process, killed (and reaped) when dropped, also when a test fails half-way.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nobody listens on now (the OS's choice for 127.0.0.1:0).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `$NAME` as a path, if set and not empty (`make` may pass `NAME=` for unset).
pub fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The first line of `<binary> --version` (`policy-server 1.36.0-beta.1`).
pub fn version(binary: &Path) -> Result<String> {
    let out = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {binary:?}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("{binary:?} --version printed nothing"))
}

/// A running policy-server; killed (and reaped) when dropped.
pub struct PolicyServer {
    child: ChildGuard,
    pub client: Client,
    pub log: PathBuf,
    /// How long it took to answer on its readiness port.
    pub startup: Duration,
}

/// How long policy-server may take to load the module and validate every entry's settings.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

impl PolicyServer {
    /// Starts policy-server and waits until `/readiness` answers 200. A port taken between
    /// choosing it and binding it is retried on other ports.
    pub fn start(config: &Config) -> Result<Self> {
        let log = config.dir.join("policy-server.log");
        for attempt in 1..=3 {
            let (port, readiness_port) = (free_port()?, free_port()?);
            let client = Client::new(port)?;
            let started = Instant::now();
            let mut server = PolicyServer {
                child: config.spawn(&log, port, readiness_port)?,
                client,
                log: log.clone(),
                startup: Duration::ZERO,
            };
            let ready = format!("http://127.0.0.1:{readiness_port}/readiness");
            loop {
                if let Some(status) = server.child.0.try_wait()? {
                    let output = server.output();
                    if output.contains("Address already in use") && attempt < 3 {
                        break;
                    }
                    bail!("policy-server exited ({status}) before it was ready:\n{output}");
                }
                if server.client.get_status(&ready) == Some(200) {
                    server.startup = started.elapsed();
                    return Ok(server);
                }
                if started.elapsed() > STARTUP_TIMEOUT {
                    bail!(
                        "policy-server was not ready after {STARTUP_TIMEOUT:?}:\n{}",
                        server.output()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        bail!(
            "policy-server could not bind its ports:\n{}",
            read_log(&log)
        )
    }

    /// Starts policy-server expecting it to refuse its configuration: it must exit, with a
    /// failure status, before `timeout`. Returns the status and everything it printed.
    pub fn expect_refusal(config: &Config, timeout: Duration) -> Result<(ExitStatus, String)> {
        let log = config.dir.join("policy-server.log");
        let (port, readiness_port) = (free_port()?, free_port()?);
        let client = Client::new(readiness_port)?;
        let mut child = config.spawn(&log, port, readiness_port)?;
        let ready = format!("http://127.0.0.1:{readiness_port}/readiness");
        let started = Instant::now();
        loop {
            if let Some(status) = child.0.try_wait()? {
                return Ok((status, read_log(&log)));
            }
            if client.get_status(&ready) == Some(200) {
                bail!(
                    "policy-server started (readiness 200) instead of refusing the settings:\n{}",
                    read_log(&log)
                );
            }
            if started.elapsed() > timeout {
                bail!(
                    "policy-server neither started nor exited within {timeout:?}:\n{}",
                    read_log(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything policy-server printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        read_log(&self.log)
    }

    /// Its process ID.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.0.try_wait(), Ok(None))
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The two endpoints an AdmissionReview can be sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// What the API server calls: the answer is processed for the policy's mode.
    Validate,
    /// What the audit scanner calls.
    Audit,
}

impl Endpoint {
    pub fn path(self, id: &str) -> String {
        match self {
            Endpoint::Validate => format!("/validate/{id}"),
            Endpoint::Audit => format!("/audit/{id}"),
        }
    }
}

/// An HTTP client for one policy-server: plain HTTP on 127.0.0.1, never through a proxy.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
}

/// How long one request may take before it counts as lost.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl Client {
    pub fn new(port: u16) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start a tokio runtime")?;
        // reqwest is built with rustls but no crypto provider (see Cargo.toml); plain HTTP
        // needs none, but the builder insists on one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(128)
            .build()
            .context("cannot build an HTTP client")?;
        Ok(Self {
            runtime,
            http,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The status of a GET, `None` when nothing answers.
    fn get_status(&self, url: &str) -> Option<u16> {
        self.runtime.block_on(async {
            let response = self
                .http
                .get(url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .ok()?;
            Some(response.status().as_u16())
        })
    }

    /// POSTs a JSON body; the HTTP status and the whole answer.
    pub fn post(&self, path: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>)> {
        self.runtime
            .block_on(post(&self.http, &self.url(path), body))
    }

    /// Sends `request` in an AdmissionReview and returns the AdmissionResponse.
    pub fn review(
        &self,
        endpoint: Endpoint,
        id: &str,
        request: &AdmissionRequest,
    ) -> Result<AdmissionResponse> {
        let (status, body) = self.post(&endpoint.path(id), review_body(request)?)?;
        if status != 200 {
            bail!(
                "policy-server answered HTTP {status} on {}: {}",
                endpoint.path(id),
                String::from_utf8_lossy(&body)
            );
        }
        parse_review(&body)
    }
}

/// POSTs a JSON body with `http`; the HTTP status and the whole answer.
pub async fn post(http: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>)> {
    let response = http
        .post(url)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("POST {url}: reading the answer"))?;
    Ok((status, bytes.to_vec()))
}

/// The body the API server sends: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":…}`.
pub fn review_body(request: &AdmissionRequest) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request,
    }))?)
}

/// The AdmissionResponse of an AdmissionReview answer, which must be one
/// (`apiVersion: admission.k8s.io/v1`, `kind: AdmissionReview`, a `response`).
pub fn parse_review(body: &[u8]) -> Result<AdmissionResponse> {
    let review: Value = serde_json::from_slice(body).with_context(|| {
        format!(
            "policy-server's answer is not JSON: {}",
            String::from_utf8_lossy(&body[..body.len().min(500)])
        )
    })?;
    if review.get("apiVersion").and_then(Value::as_str) != Some("admission.k8s.io/v1")
        || review.get("kind").and_then(Value::as_str) != Some("AdmissionReview")
    {
        bail!(
            "policy-server's answer is not an admission.k8s.io/v1 AdmissionReview: {}",
            truncated(&review)
        );
    }
    let response = review.get("response").ok_or_else(|| {
        anyhow!(
            "policy-server's AdmissionReview has no response: {}",
            truncated(&review)
        )
    })?;
    serde_json::from_value(response.clone()).with_context(|| {
        format!(
            "policy-server's response is not an AdmissionResponse: {}",
            truncated(response)
        )
    })
}

fn truncated(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(500) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// How a scenario runs under policy-server, which has no Kubernetes API here.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// The policy makes no host call (webhook mode, or no session: not a Pod CREATE): the
    /// scenario runs as it is.
    AsIs,
    /// Lookup mode, and stage A selected the Pod (the scenario's outcome is neither
    /// `not-selected` nor a failed lookup): the API server's selectors of a webhook-mode
    /// policy would send it as well, so it runs with `namespaceSelection: webhook` and must
    /// give the same outcome, patch and warnings.
    Webhook,
    /// `validate_settings` refuses the settings: policy-server must refuse to start.
    InvalidSettings,
    /// Not run, and why.
    Skip(&'static str),
}

impl Plan {
    pub fn label(&self) -> &'static str {
        match self {
            Plan::AsIs => "as is (no host call)",
            Plan::Webhook => "in namespaceSelection: webhook (stage A selected the Pod)",
            Plan::InvalidSettings => "invalid settings (policy-server must refuse to start)",
            Plan::Skip(why) => why,
        }
    }
}

/// The reason codes of stage A leaving a Pod out (`decision::not_selected_reason`).
const STAGE_A_REASONS: [&str; 5] = [
    "pod-label-false",
    "namespace-injection-disabled",
    "namespace-other-revision",
    "pod-other-revision",
    "not-labelled",
];

/// The rule that decides which scenarios run through policy-server; see [`Plan`].
pub fn plan(scenario: &Scenario) -> Plan {
    let expected = &scenario.expected;
    if expected.settings_invalid.is_some() {
        return Plan::InvalidSettings;
    }
    let webhook = scenario.settings.get("namespaceSelection") == Some(&json!("webhook"));
    if webhook || scenario.session.is_none() {
        return Plan::AsIs;
    }
    if expected
        .reason
        .as_deref()
        .is_some_and(|r| r.starts_with("namespace-lookup-failed"))
    {
        return Plan::Skip("skipped: the Namespace lookup fails (closed); needs a Kubernetes API");
    }
    // Check mode reports a Pod stage A leaves out with its own outcome (a sidecar there is
    // unexpected); the reason is stage A's then. In lookup mode a pod label
    // sidecar.istio.io/inject=false never passes stage A either.
    let stage_a_reason = expected.reason.as_deref().is_some_and(|r| {
        STAGE_A_REASONS
            .iter()
            .any(|code| r == *code || r.starts_with(&format!("{code}:")))
    });
    match expected.outcome.as_deref() {
        Some("not-selected") => Plan::Skip(
            "skipped: stage A (the Namespace lookup) leaves the Pod out; in webhook mode the API server's selectors would not send it",
        ),
        Some(_) if stage_a_reason => Plan::Skip(
            "skipped: stage A (the Namespace lookup) leaves the Pod out; in webhook mode the API server's selectors would not send it",
        ),
        Some(_) => Plan::Webhook,
        None => Plan::Skip(
            "skipped: expected.yml names no outcome to tell whether stage A selects the Pod",
        ),
    }
}

/// The scenario as policy-server runs it ([`Plan::AsIs`] / [`Plan::Webhook`]), `None` for
/// the others.
pub fn served_scenario(scenario: &Scenario) -> Option<Scenario> {
    match plan(scenario) {
        Plan::AsIs => Some(scenario.clone()),
        Plan::Webhook => {
            let mut served = scenario.clone();
            served
                .settings
                .insert("namespaceSelection".into(), json!("webhook"));
            served.session = None;
            Some(served)
        }
        Plan::InvalidSettings | Plan::Skip(_) => None,
    }
}

/// A key for a settings object (its compact JSON; maps are sorted).
pub fn settings_key(settings: &Map<String, Value>) -> String {
    Value::Object(settings.clone()).to_string()
}

/// One policy entry per distinct settings among `scenarios`, named after the first scenario
/// that has them.
pub fn entries_for(scenarios: &[Scenario]) -> Vec<PolicyEntry> {
    let mut seen = BTreeMap::new();
    let mut entries = Vec::new();
    for scenario in scenarios {
        let key = settings_key(&scenario.settings);
        if seen.insert(key, ()).is_none() {
            entries.push(PolicyEntry {
                id: scenario.name.clone(),
                settings: scenario.settings.clone(),
                timeout_eval_seconds: None,
                module: None,
            });
        }
    }
    entries
}

/// Scenarios answered by a running policy-server: each request goes to the entry whose
/// settings are the scenario's.
pub struct Served<'a> {
    pub client: &'a Client,
    pub endpoint: Endpoint,
    ids: BTreeMap<String, String>,
}

impl<'a> Served<'a> {
    pub fn new(client: &'a Client, endpoint: Endpoint, entries: &[PolicyEntry]) -> Self {
        let ids = entries
            .iter()
            .map(|e| (settings_key(&e.settings), e.id.clone()))
            .collect();
        Self {
            client,
            endpoint,
            ids,
        }
    }

    /// The id of the entry with the scenario's settings.
    pub fn id(&self, scenario: &Scenario) -> Result<&str> {
        self.ids
            .get(&settings_key(&scenario.settings))
            .map(String::as_str)
            .ok_or_else(|| anyhow!("no policy entry has the settings of {}", scenario.name))
    }
}

impl Evaluator for Served<'_> {
    fn evaluate(&self, scenario: &Scenario, request: &AdmissionRequest) -> Result<Outcome> {
        let response = self
            .client
            .review(self.endpoint, self.id(scenario)?, request)?;
        if response.uid != request.uid {
            bail!(
                "policy-server answered uid {:?} to request {:?}",
                response.uid,
                request.uid
            );
        }
        Ok(Outcome::Response(response))
    }
}

/// The outcomes every load run must mix (`auditAnnotations.outcome`).
pub const LOAD_MIX: [&str; 4] = ["injected", "skipped", "rejected", "not-selected"];

/// How a load run's answers fail its outcome mix. `sent[i]` is the outcome request `i` must
/// get; `answers` holds, per answer received, the request's index and the outcome it got
/// (`None`: no answer, the request was lost). Every outcome of `required` must have been
/// sent; every request answered exactly once, with its own outcome; and so, outcome by
/// outcome, as many answers as requests sent.
pub fn load_mix_failures(
    sent: &[String],
    answers: &[(usize, Option<String>)],
    required: &[&str],
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut sent_by_outcome: BTreeMap<&str, usize> = BTreeMap::new();
    for outcome in sent {
        *sent_by_outcome.entry(outcome).or_default() += 1;
    }
    for outcome in required {
        if !sent_by_outcome.contains_key(outcome) {
            failures.push(format!(
                "the mix sends no {outcome} Pod (sent: {sent_by_outcome:?})"
            ));
        }
    }
    let mut answered_by_outcome: BTreeMap<&str, usize> = BTreeMap::new();
    let mut times_answered = vec![0usize; sent.len()];
    let (mut lost, mut wrong) = (0, 0);
    for (i, got) in answers {
        let Some(want) = sent.get(*i) else {
            failures.push(format!("an answer to request {i}, which was never sent"));
            continue;
        };
        times_answered[*i] += 1;
        match got {
            None => lost += 1,
            Some(got) => {
                *answered_by_outcome.entry(got).or_default() += 1;
                if got != want {
                    wrong += 1;
                }
            }
        }
    }
    let never = times_answered.iter().filter(|n| **n == 0).count();
    let twice = times_answered.iter().filter(|n| **n > 1).count();
    if lost + never > 0 {
        failures.push(format!(
            "{} of {} requests lost ({lost} without an answer, {never} never sent or never back)",
            lost + never,
            sent.len()
        ));
    }
    if twice > 0 {
        failures.push(format!("{twice} requests counted more than once"));
    }
    if wrong > 0 {
        failures.push(format!(
            "{wrong} answers with another outcome than their Pod's"
        ));
    }
    let outcomes: std::collections::BTreeSet<&str> = sent_by_outcome
        .keys()
        .chain(answered_by_outcome.keys())
        .copied()
        .collect();
    for outcome in outcomes {
        let (s, a) = (
            sent_by_outcome.get(outcome).copied().unwrap_or(0),
            answered_by_outcome.get(outcome).copied().unwrap_or(0),
        );
        if s != a {
            failures.push(format!("{outcome}: {s} sent, {a} answered so"));
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Expected;

    fn scenario(settings: Value, session: bool, expected: &str) -> Scenario {
        let request = AdmissionRequest::from_value(&json!({
            "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE", "userInfo": {},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                       "spec": {"containers": [{"name": "app"}]}}
        }))
        .unwrap();
        Scenario {
            name: "s".into(),
            dir: PathBuf::from("/nonexistent"),
            request,
            settings: settings.as_object().unwrap().clone(),
            session: session.then(|| crate::session::Session::namespace_lookup("demo", None)),
            expected: serde_yaml::from_str::<Expected>(expected).unwrap(),
        }
    }

    #[test]
    fn plans() {
        let injected = "allowed: true\noutcome: injected\n";
        assert_eq!(plan(&scenario(json!({}), false, injected)), Plan::AsIs);
        assert_eq!(
            plan(&scenario(
                json!({"namespaceSelection": "webhook"}),
                true,
                injected
            )),
            Plan::AsIs
        );
        assert_eq!(plan(&scenario(json!({}), true, injected)), Plan::Webhook);
        assert_eq!(
            plan(&scenario(
                json!({}),
                true,
                "allowed: true\noutcome: skipped\n"
            )),
            Plan::Webhook
        );
        assert!(matches!(
            plan(&scenario(
                json!({}),
                true,
                "allowed: true\noutcome: not-selected\n"
            )),
            Plan::Skip(_)
        ));
        assert!(matches!(
            plan(&scenario(
                json!({}),
                true,
                "allowed: false\noutcome: rejected\nreason: namespace-lookup-failed\n"
            )),
            Plan::Skip(_)
        ));
        assert!(matches!(
            plan(&scenario(json!({}), true, "allowed: true\n")),
            Plan::Skip(_)
        ));
        // Check mode: a Pod stage A leaves out has its own outcome, and stage A's reason.
        assert!(matches!(
            plan(&scenario(
                json!({"action": "check"}),
                true,
                "allowed: false\noutcome: sidecar-unexpected\nreason: namespace-injection-disabled\n"
            )),
            Plan::Skip(_)
        ));
        assert_eq!(
            plan(&scenario(
                json!({"action": "check"}),
                true,
                "allowed: false\noutcome: sidecar-missing\nreason: policy-enabled\n"
            )),
            Plan::Webhook
        );
        // ... but one stage B decides (the pod annotation) runs in webhook mode.
        assert_eq!(
            plan(&scenario(
                json!({"action": "check"}),
                true,
                "allowed: false\noutcome: sidecar-unexpected\nreason: pod-annotation-false\n"
            )),
            Plan::Webhook
        );
        assert_eq!(
            plan(&scenario(
                json!({"policy": "x"}),
                false,
                "settings_invalid: x\n"
            )),
            Plan::InvalidSettings
        );

        let served =
            served_scenario(&scenario(json!({"policy": "disabled"}), true, injected)).unwrap();
        assert_eq!(
            Value::Object(served.settings),
            json!({"policy": "disabled", "namespaceSelection": "webhook"})
        );
        assert!(served.session.is_none());
    }

    #[test]
    fn one_entry_per_settings() {
        let mut a = scenario(json!({"policy": "disabled"}), false, "allowed: true\n");
        a.name = "a".into();
        let mut b = a.clone();
        b.name = "b".into();
        let mut c = scenario(json!({}), false, "allowed: true\n");
        c.name = "c".into();
        let entries = entries_for(&[a, b.clone(), c]);
        assert_eq!(
            entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["a", "c"]
        );
        let client = Client::new(1).unwrap();
        let served = Served::new(&client, Endpoint::Validate, &entries);
        assert_eq!(served.id(&b).unwrap(), "a");
    }

    #[test]
    fn policies_file() {
        let config = Config {
            binary: PathBuf::from("policy-server"),
            module: PathBuf::from("/abs/annotated-policy.wasm"),
            entries: vec![
                PolicyEntry {
                    id: "plain".into(),
                    settings: Map::new(),
                    timeout_eval_seconds: None,
                    module: None,
                },
                PolicyEntry {
                    id: "deadline".into(),
                    settings: json!({"namespaceSelection": "webhook"})
                        .as_object()
                        .unwrap()
                        .clone(),
                    timeout_eval_seconds: Some(2),
                    module: Some(PathBuf::from("/abs/other.wasm")),
                },
            ],
            dir: PathBuf::from("/nonexistent"),
            workers: 2,
            policy_timeout: None,
        };
        let yaml: Value = serde_yaml::from_str(&config.policies_yaml().unwrap()).unwrap();
        assert_eq!(
            yaml,
            json!({
                "deadline": {"module": "file:///abs/other.wasm", "allowedToMutate": true,
                             "settings": {"namespaceSelection": "webhook"}, "timeoutEvalSeconds": 2},
                "plain": {"module": "file:///abs/annotated-policy.wasm", "allowedToMutate": true,
                          "settings": {}}
            })
        );
        let mut twice = config.clone();
        twice.entries[1].id = "plain".into();
        assert!(twice.policies_yaml().is_err());
    }

    #[test]
    fn check_mode_entries_are_registered_non_mutating() {
        let entry = |id: &str, settings: Value| PolicyEntry {
            id: id.into(),
            settings: settings.as_object().unwrap().clone(),
            timeout_eval_seconds: None,
            module: None,
        };
        let config = Config {
            binary: PathBuf::from("policy-server"),
            module: PathBuf::from("/abs/annotated-policy.wasm"),
            entries: vec![
                entry("inject", json!({"action": "inject"})),
                entry("check", json!({"action": "check"})),
                entry(
                    "check-webhook",
                    json!({"action": "check", "namespaceSelection": "webhook"}),
                ),
            ],
            dir: PathBuf::from("/nonexistent"),
            workers: 2,
            policy_timeout: None,
        };
        let yaml: Value = serde_yaml::from_str(&config.policies_yaml().unwrap()).unwrap();
        assert_eq!(yaml["inject"]["allowedToMutate"], json!(true));
        assert_eq!(yaml["check"]["allowedToMutate"], json!(false));
        assert_eq!(yaml["check-webhook"]["allowedToMutate"], json!(false));
    }

    #[test]
    fn load_answers_match_the_outcome_mix_sent_none_lost() {
        let sent: Vec<String> = [
            "injected",
            "skipped",
            "rejected",
            "not-selected",
            "injected",
        ]
        .map(String::from)
        .to_vec();
        let answer = |i: usize, o: &str| (i, Some(o.to_string()));
        let all: Vec<_> = sent.iter().enumerate().map(|(i, o)| answer(i, o)).collect();
        assert!(load_mix_failures(&sent, &all, &LOAD_MIX).is_empty());
        // In any order.
        let reversed: Vec<_> = all.iter().rev().cloned().collect();
        assert!(load_mix_failures(&sent, &reversed, &LOAD_MIX).is_empty());

        // An injected Pod answered as skipped: wrong, and the counts differ.
        let mut swapped = all.clone();
        swapped[0] = answer(0, "skipped");
        let f = load_mix_failures(&sent, &swapped, &LOAD_MIX);
        assert!(
            f.iter()
                .any(|f| f.contains("1 answers with another outcome")),
            "{f:?}"
        );
        assert!(
            f.iter().any(|f| f == "injected: 2 sent, 1 answered so"),
            "{f:?}"
        );
        assert!(
            f.iter().any(|f| f == "skipped: 1 sent, 2 answered so"),
            "{f:?}"
        );

        // Two answers swapped between Pods of different outcomes: the totals agree, but
        // each answer must be its own Pod's.
        let mut crossed = all.clone();
        crossed[0] = answer(0, "rejected");
        crossed[2] = answer(2, "injected");
        let f = load_mix_failures(&sent, &crossed, &LOAD_MIX);
        assert_eq!(f, ["2 answers with another outcome than their Pod's"]);

        // A lost request, and one never answered at all.
        let mut lost = all.clone();
        lost[1] = (1, None);
        lost.pop();
        let f = load_mix_failures(&sent, &lost, &LOAD_MIX);
        assert!(
            f.iter().any(|f| f.starts_with("2 of 5 requests lost")),
            "{f:?}"
        );

        // One answer counted twice.
        let mut twice = all.clone();
        twice.push(answer(4, "injected"));
        let f = load_mix_failures(&sent, &twice, &LOAD_MIX);
        assert!(
            f.iter().any(|f| f == "1 requests counted more than once"),
            "{f:?}"
        );

        // A mix without rejected Pods is not the mix.
        let no_rejected: Vec<String> = ["injected", "skipped", "not-selected"]
            .map(String::from)
            .to_vec();
        let answers: Vec<_> = no_rejected
            .iter()
            .enumerate()
            .map(|(i, o)| answer(i, o))
            .collect();
        let f = load_mix_failures(&no_rejected, &answers, &LOAD_MIX);
        assert!(
            f.len() == 1 && f[0].starts_with("the mix sends no rejected Pod"),
            "{f:?}"
        );
    }

    #[test]
    fn review_answers() {
        let ok = br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"uid":"u","allowed":true,"auditAnnotations":{"outcome":"injected"},"warnings":null}}"#;
        let resp = parse_review(ok).unwrap();
        assert_eq!(resp.uid, "u");
        assert!(resp.allowed);
        for bad in [
            &br#"{"message":"unknown policy: nope","status":404}"#[..],
            br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#,
            br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"allowed":true}}"#,
            b"not json",
        ] {
            assert!(parse_review(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let request = AdmissionRequest::from_value(&json!({
            "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE", "userInfo": {}
        }))
        .unwrap();
        let body: Value = serde_json::from_slice(&review_body(&request).unwrap()).unwrap();
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(body["kind"], "AdmissionReview");
        assert_eq!(body["request"]["uid"], "u");
    }

    #[test]
    fn env_paths() {
        // SAFETY: this test alone uses these variables.
        unsafe {
            std::env::set_var("KWHOST_TEST_EMPTY_PATH", "");
            std::env::set_var("KWHOST_TEST_SOME_PATH", "/x");
        }
        assert_eq!(env_path("KWHOST_TEST_EMPTY_PATH"), None);
        assert_eq!(env_path("KWHOST_TEST_UNSET_PATH"), None);
        assert_eq!(env_path("KWHOST_TEST_SOME_PATH"), Some(PathBuf::from("/x")));
    }
}
