//! `kwbench`: the policy's cost where it runs. policy-server builds a fresh WebAssembly
//! instance for every AdmissionReview, so each request is timed as it pays it there: a new
//! instance, one `validate`, the instance dropped. The same is timed, in the same
//! alternating rounds, for modules that show what the cost means:
//!
//! - the floor (`--floor`): reads the request and answers with the policy's own answer,
//!   precomputed; the cost of getting this request in and this answer out;
//! - the baseline (`--baseline`): parses the request and returns the Pod unchanged;
//! - Kubewarden's pod-ndots (`--ndots`), a mutating policy in production use.
//!
//! The warm call (one instance called again and again) is shown beside, for comparison
//! only: production never takes it. Instances run with the epoch deadlines policy-server
//! sets by default (its timeout protection), so the compiled code checks the epoch as it
//! does there.
//!
//! ```text
//! kwbench --policy annotated-policy.wasm --floor floor.wasm --baseline baseline.wasm
//!         [--ndots pod-ndots.wasm] [--settings-json J] [--min-seconds S]
//!         [--max-fresh-ratio NAME=R]... [--max-size BYTES] [--json OUT.json]
//!         [--check REQUEST=STORED]... [--max-check-ratio R]
//!         [--policy-server BIN [--max-server-ratio NAME=R]... [--server-seconds S]]
//!         REQUEST.json...
//! ```
//!
//! `--max-fresh-ratio pod-1-containers.json=1.5`: the policy's fresh call at most 1.5x the
//! floor's for that request. `--check REQUEST=STORED` times check mode on STORED (REQUEST's
//! Pod as the API server stores it once injected) against inject mode on the same Pod.
//! `--compare OTHER.wasm` (repeatable) times another build of the policy beside it, with its
//! settings, for A/B comparisons. `--policy-server`: the same modules behind a real
//! policy-server over HTTP, p50, p99 and requests/s at concurrency 1 (the modules taking
//! turns request by request, in a random order each turn) and 8;
//! `--max-server-ratio pod-1-containers.json=1.2` bounds the policy's p50 for that request
//! against the floor's, and the policy must then be no slower than pod-ndots for it (the
//! ratio is printed with a 95% interval, from the turns resampled, which says how much one
//! run's ratio can be trusted; the budget is judged on the ratio itself). Exits 1 when a
//! budget is exceeded. `--profile-fresh N`: only N fresh calls of the policy on the
//! first request (for `perf record` with `KWHOST_PERFMAP=1`); `--profile-warm N`: N calls of
//! one instance instead, to tell what only a first call pays. With `KWHOST_PERFMAP=1` and
//! `--policy-server`, the modules' functions are named inside policy-server too
//! ([`kwhost::perf_map`]), for `perf record` around the whole run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use kwhost::host::{CompileCache, HostContext, Instance, Policy};
use kwhost::perf_map;
use kwhost::policy_server::{self, PolicyEntry, PolicyServer};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

struct Args {
    policy: PathBuf,
    floor: Option<PathBuf>,
    baseline: Option<PathBuf>,
    ndots: Option<PathBuf>,
    /// Other builds of the policy, timed beside it with its settings (A/B comparisons).
    compare: Vec<PathBuf>,
    settings: Value,
    min_seconds: f64,
    max_fresh: Vec<(String, f64)>,
    max_size: Option<u64>,
    json_out: Option<PathBuf>,
    requests: Vec<PathBuf>,
    /// (request, the same Pod stored after injection).
    checks: Vec<(PathBuf, PathBuf)>,
    max_check_ratio: Option<f64>,
    policy_server: Option<PathBuf>,
    /// (request file name, the policy's policy-server p50 at most this times the floor's);
    /// the policy must then also be no slower than pod-ndots there.
    max_server: Vec<(String, f64)>,
    server_seconds: f64,
    profile_fresh: Option<usize>,
    profile_warm: Option<usize>,
}

fn parse_args() -> Result<Args> {
    let mut raw = std::env::args().skip(1);
    let mut args = Args {
        policy: PathBuf::from("annotated-policy.wasm"),
        floor: None,
        baseline: None,
        ndots: None,
        compare: Vec::new(),
        settings: json!({"namespaceSelection": "webhook"}),
        min_seconds: 1.0,
        max_fresh: Vec::new(),
        max_size: None,
        json_out: None,
        requests: Vec::new(),
        checks: Vec::new(),
        max_check_ratio: None,
        policy_server: None,
        max_server: Vec::new(),
        server_seconds: 2.0,
        profile_fresh: None,
        profile_warm: None,
    };
    while let Some(a) = raw.next() {
        let mut value = || raw.next().ok_or_else(|| anyhow!("{a} needs a value"));
        match a.as_str() {
            "--policy" => args.policy = value()?.into(),
            "--floor" => args.floor = Some(value()?.into()),
            "--baseline" => args.baseline = Some(value()?.into()),
            "--ndots" => args.ndots = Some(value()?.into()),
            "--compare" => args.compare.push(value()?.into()),
            "--settings-json" => args.settings = serde_json::from_str(&value()?)?,
            "--min-seconds" => args.min_seconds = value()?.parse()?,
            "--max-fresh-ratio" => args.max_fresh.push(named_ratio(&a, &value()?)?),
            "--max-size" => args.max_size = Some(value()?.parse()?),
            "--json" => args.json_out = Some(value()?.into()),
            "--check" => {
                let pair = value()?;
                let (request, stored) = pair
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--check takes REQUEST.json=STORED.json"))?;
                args.checks.push((request.into(), stored.into()));
            }
            "--max-check-ratio" => args.max_check_ratio = Some(value()?.parse()?),
            "--policy-server" => args.policy_server = Some(value()?.into()),
            "--max-server-ratio" => args.max_server.push(named_ratio(&a, &value()?)?),
            "--server-seconds" => args.server_seconds = value()?.parse()?,
            "--profile-fresh" => args.profile_fresh = Some(value()?.parse()?),
            "--profile-warm" => args.profile_warm = Some(value()?.parse()?),
            other if other.starts_with("--") => bail!("unknown flag {other}"),
            other => args.requests.push(other.into()),
        }
    }
    if args.requests.is_empty() {
        bail!(
            "usage: kwbench --policy P.wasm --floor F.wasm --baseline B.wasm [options] REQUEST.json..."
        );
    }
    Ok(args)
}

/// A budget given as `NAME=RATIO` (a request file's name, a ratio) to `flag`.
fn named_ratio(flag: &str, pair: &str) -> Result<(String, f64)> {
    let (name, ratio) = pair
        .split_once('=')
        .ok_or_else(|| anyhow!("{flag} takes NAME=RATIO"))?;
    Ok((name.to_string(), ratio.parse()?))
}

/// A compiled module and the settings it runs with.
struct Module {
    name: String,
    path: PathBuf,
    policy: Policy,
    size: u64,
    compile: Duration,
    settings: Value,
    /// Its regions of compiled code, when a perf map is written (empty otherwise).
    code: Vec<perf_map::Region>,
}

fn load(name: &str, path: &Path, settings: Value) -> Result<Module> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {path:?}"))?;
    let before = perf_map::enabled().then(perf_map::own_code).transpose()?;
    let start = Instant::now();
    let policy = Policy::compile(&bytes, &CompileCache::Disabled)?;
    let compile = start.elapsed();
    let code = match before {
        Some(before) => perf_map::own_code()?
            .into_iter()
            .filter(|r| !before.contains(r))
            .collect(),
        None => Vec::new(),
    };
    Ok(Module {
        name: name.to_string(),
        path: path.to_path_buf(),
        policy,
        size: bytes.len() as u64,
        compile,
        settings,
        code,
    })
}

/// Median, 99th percentile and count of timed calls, in microseconds.
#[derive(Debug, Clone, Copy)]
struct Timing {
    median: f64,
    p99: f64,
    calls: usize,
}

impl Timing {
    fn of(mut samples: Vec<f64>) -> Timing {
        samples.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Timing {
            median: at(0.5),
            p99: at(0.99),
            calls: samples.len(),
        }
    }
}

/// How a call is made: on a new instance each time (as policy-server does), or on one
/// instance kept warm.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    Fresh,
    Warm,
}

/// One thing to time: a module's `validate` on a payload.
struct Run<'a> {
    module: &'a Module,
    payload: Vec<u8>,
    warm: Instance,
}

impl<'a> Run<'a> {
    fn new(module: &'a Module, request: &Value) -> Result<Self> {
        let payload = json!({"request": request, "settings": module.settings}).to_string();
        let warm = module.policy.instantiate(&HostContext::default())?;
        Ok(Run {
            module,
            payload: payload.into_bytes(),
            warm,
        })
    }

    /// One call: a new instance, `validate`, the instance dropped (all timed), or a call of
    /// the warm instance.
    fn call(&self, way: Way) -> Result<f64> {
        let start = Instant::now();
        match way {
            Way::Fresh => {
                let instance = self.module.policy.instantiate(&HostContext::default())?;
                std::hint::black_box(instance.call_raw("validate", &self.payload)?);
                drop(instance);
            }
            Way::Warm => {
                std::hint::black_box(self.warm.call_raw("validate", &self.payload)?);
            }
        }
        Ok(start.elapsed().as_secs_f64() * 1e6)
    }

    fn answer(&self) -> Result<Value> {
        Ok(serde_json::from_slice(
            &self.warm.call_raw("validate", &self.payload)?,
        )?)
    }
}

/// Times each run for at least `min` in all, alternating between them in short rounds: a
/// machine that slows down or speeds up during the run (other load, frequency changes) then
/// weighs on all alike, and the ratios hold.
fn time_rounds(runs: &[&Run], way: Way, min: Duration) -> Result<Vec<Timing>> {
    const ROUNDS: u32 = 20;
    // Untimed turns first, for a quarter of `min` and at least ten calls each. Right after the
    // modules are compiled, fresh instances ran 6% to 27% slower for a while, the bigger
    // modules more (the first request's policy / floor read 1.56x where the next run read 1.43x).
    let warm_up = Instant::now();
    let mut turns = 0;
    while turns < 10 || warm_up.elapsed() < min / 4 {
        for run in runs {
            run.call(way)?;
        }
        turns += 1;
    }
    let round = min / ROUNDS;
    let mut samples = vec![Vec::new(); runs.len()];
    for _ in 0..ROUNDS {
        for (run, samples) in runs.iter().zip(samples.iter_mut()) {
            let start = Instant::now();
            let mut n = 0;
            while start.elapsed() < round || n < 5 {
                samples.push(run.call(way)?);
                n += 1;
            }
        }
    }
    Ok(samples.into_iter().map(Timing::of).collect())
}

fn read_request(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path:?}"))?;
    let request: Value = serde_json::from_str(&text)?;
    Ok(request.get("request").cloned().unwrap_or(request))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let policy = load("policy", &args.policy, args.settings.clone())?;
    for (n, way) in [
        (args.profile_fresh, Way::Fresh),
        (args.profile_warm, Way::Warm),
    ] {
        if let Some(n) = n {
            let run = Run::new(&policy, &read_request(&args.requests[0])?)?;
            for _ in 0..n {
                run.call(way)?;
            }
            return Ok(());
        }
    }
    let mut others = Vec::new();
    for (name, path) in [
        ("floor", &args.floor),
        ("baseline", &args.baseline),
        ("pod-ndots", &args.ndots),
    ] {
        if let Some(path) = path {
            others.push(load(name, path, json!({}))?);
        }
    }
    for (i, path) in args.compare.iter().enumerate() {
        others.push(load(
            &format!("compare-{}", i + 1),
            path,
            args.settings.clone(),
        )?);
    }
    let floor = others.iter().find(|m| m.name == "floor");
    let ndots = others.iter().find(|m| m.name == "pod-ndots");
    let min = Duration::from_secs_f64(args.min_seconds);
    let mut failures = Vec::new();
    let mut rows = Vec::new();

    println!(
        "Per request as policy-server pays it (a new instance, validate, dropped), medians in µs:\n"
    );
    let mut header = String::from("| request | policy");
    for m in &others {
        header.push_str(&format!(" | {}", m.name));
    }
    if floor.is_some() {
        header.push_str(" | policy / floor");
    }
    header.push_str(" | policy warm | floor warm |");
    println!("{header}");
    println!("|---{}|", "|---:".repeat(header.matches(" | ").count()));
    for path in &args.requests {
        let name = file_name(path);
        let request = read_request(path)?;
        let policy_run = Run::new(&policy, &request)?;
        // The policy must inject, or the comparison means nothing; the floor must give the
        // policy's very answer.
        let answer = policy_run.answer()?;
        if answer.get("mutated_object").is_none_or(Value::is_null) {
            bail!("{name}: the policy did not inject ({answer})");
        }
        let other_runs: Vec<Run> = others
            .iter()
            .map(|m| Run::new(m, &request))
            .collect::<Result<_>>()?;
        for run in &other_runs {
            if run.module.name == "floor" && run.answer()? != answer {
                bail!("{name}: the floor's answer is not the policy's (rebuild the floor module)");
            }
        }
        let mut runs: Vec<&Run> = vec![&policy_run];
        runs.extend(other_runs.iter());
        let fresh = time_rounds(&runs, Way::Fresh, min)?;
        let warm_runs: Vec<&Run> = runs
            .iter()
            .copied()
            .filter(|r| r.module.name == "policy" || r.module.name == "floor")
            .collect();
        let warm = time_rounds(&warm_runs, Way::Warm, min / 2)?;
        let mut line = format!("| {name} | {:.0}", fresh[0].median);
        let mut row = json!({"request": name, "policy_fresh_us": fresh[0].median,
            "policy_warm_us": warm[0].median, "calls": fresh[0].calls});
        for (m, t) in others.iter().zip(&fresh[1..]) {
            line.push_str(&format!(" | {:.0}", t.median));
            row[format!("{}_fresh_us", m.name)] = json!(t.median);
        }
        if floor.is_some() {
            let at = 1 + others.iter().position(|m| m.name == "floor").unwrap_or(0);
            let ratio = fresh[0].median / fresh[at].median;
            line.push_str(&format!(" | {ratio:.2}"));
            row["ratio_to_floor"] = json!(ratio);
            if let Some((_, max)) = args.max_fresh.iter().find(|(n, _)| *n == name)
                && ratio > *max
            {
                failures.push(format!(
                    "{name}: a fresh call is {ratio:.2}x the floor's (budget {max}x)"
                ));
            }
            if let Some(w) = warm.get(1) {
                row["floor_warm_us"] = json!(w.median);
            }
        }
        line.push_str(&format!(
            " | {:.0} | {} |",
            warm[0].median,
            warm.get(1)
                .map_or("-".to_string(), |w| format!("{:.0}", w.median))
        ));
        println!("{line}");
        rows.push(row);
    }

    let check_rows = check_mode(&args, &policy, min, &mut failures)?;

    println!();
    for m in std::iter::once(&policy).chain(&others) {
        let fresh = m.policy.instantiate(&HostContext::default());
        let t = Instant::now();
        for _ in 0..20 {
            std::hint::black_box(m.policy.instantiate(&HostContext::default())?);
        }
        drop(fresh);
        println!(
            "{}: {} bytes, compiled in {:.0} ms, instantiated in {:.0} µs",
            m.name,
            m.size,
            m.compile.as_secs_f64() * 1e3,
            t.elapsed().as_secs_f64() * 1e6 / 20.0
        );
    }
    if let Some(max) = args.max_size
        && policy.size > max
    {
        failures.push(format!(
            "the policy module is {} bytes (budget {max})",
            policy.size
        ));
    }

    let server_rows = match &args.policy_server {
        Some(binary) => server_bench(&args, binary, &policy, &others, floor, ndots, &mut failures)?,
        None => {
            println!(
                "\npolicy-server benchmark skipped: no --policy-server (POLICY_SERVER not set)"
            );
            Vec::new()
        }
    };

    if let Some(out) = &args.json_out {
        let summary = json!({
            "requests": rows,
            "check_mode": check_rows,
            "policy_server": server_rows,
            "policy_bytes": policy.size,
        });
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).ok();
        }
        std::fs::write(out, serde_json::to_string_pretty(&summary)?)?;
    }
    if failures.is_empty() {
        println!("\nbudgets: ok");
        Ok(())
    } else {
        for f in &failures {
            eprintln!("budget exceeded: {f}");
        }
        std::process::exit(1);
    }
}

/// Check mode on stored Pods against inject mode on the same Pods, fresh calls.
fn check_mode(
    args: &Args,
    policy: &Module,
    min: Duration,
    failures: &mut Vec<String>,
) -> Result<Vec<Value>> {
    if args.checks.is_empty() {
        return Ok(Vec::new());
    }
    let mut check_settings = args.settings.clone();
    check_settings["action"] = "check".into();
    let checking = Module {
        name: "check".to_string(),
        path: policy.path.clone(),
        policy: Policy::load(&policy.path, &CompileCache::Disabled)?,
        size: policy.size,
        compile: policy.compile,
        settings: check_settings,
        code: Vec::new(),
    };
    println!("\nCheck mode, fresh calls, medians in µs:\n");
    println!(
        "| stored Pod | check | inject, same Pod | ratio | inject, Pod before injection | ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for (request, stored) in &args.checks {
        let stored_request = read_request(stored)?;
        let check = Run::new(&checking, &stored_request)?;
        let answer = check.answer()?;
        if answer["audit_annotations"]["outcome"] != "sidecar-current" {
            bail!("{stored:?}: check mode did not find the Pod current ({answer})");
        }
        let same = Run::new(policy, &stored_request)?;
        let before = Run::new(policy, &read_request(request)?)?;
        let t = time_rounds(&[&check, &same, &before], Way::Fresh, min)?;
        let (ratio, ratio_before) = (t[0].median / t[1].median, t[0].median / t[2].median);
        let name = file_name(stored);
        println!(
            "| {name} | {:.0} | {:.0} | {ratio:.2} | {:.0} | {ratio_before:.2} |",
            t[0].median, t[1].median, t[2].median
        );
        if let Some(max) = args.max_check_ratio
            && ratio > max
        {
            failures.push(format!(
                "{name}: check mode {ratio:.2}x inject mode on the same Pod (budget {max}x)"
            ));
        }
        rows.push(json!({"stored": name, "check_us": t[0].median, "inject_same_pod_us": t[1].median,
            "ratio": ratio, "inject_before_injection_us": t[2].median, "ratio_before_injection": ratio_before}));
    }
    Ok(rows)
}

/// The same modules behind one real policy-server, over HTTP: each request's p50, p99 and
/// requests/s at concurrency 1 and 8. At concurrency 1 the modules take turns request by
/// request (their requests/s: requests over the time spent waiting on them); at 8, slot by
/// slot in 20 rounds.
fn server_bench(
    args: &Args,
    binary: &Path,
    policy: &Module,
    others: &[Module],
    floor: Option<&Module>,
    ndots: Option<&Module>,
    failures: &mut Vec<String>,
) -> Result<Vec<Value>> {
    let dir = std::env::temp_dir().join(format!("kwbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let modules: Vec<&Module> = std::iter::once(policy).chain(others).collect();
    let entries = modules
        .iter()
        .map(|m| PolicyEntry {
            id: m.name.to_string(),
            settings: m.settings.as_object().cloned().unwrap_or_else(Map::new),
            timeout_eval_seconds: None,
            module: Some(m.path.clone()),
        })
        .collect();
    let config = policy_server::Config {
        binary: binary.to_path_buf(),
        module: policy.path.clone(),
        entries,
        dir: dir.clone(),
        workers: 2,
        policy_timeout: None,
    };
    let server = PolicyServer::start(&config)?;
    if perf_map::enabled() {
        let named: Vec<(&str, &[perf_map::Region])> = modules
            .iter()
            .map(|m| (m.name.as_str(), m.code.as_slice()))
            .collect();
        match perf_map::share_with(server.pid(), &named) {
            Ok(shared) => println!(
                "\nperf: {} functions named in {} ({} regions of policy-server's code)",
                shared.symbols, shared.path, shared.regions
            ),
            Err(e) => println!("\nperf: policy-server's code left unnamed: {e:#}"),
        }
    }
    println!(
        "\npolicy-server {} over HTTP on 127.0.0.1 (--workers 2), {} s per module and concurrency, in µs:\n",
        policy_server::version(binary).unwrap_or_default(),
        args.server_seconds
    );
    println!(
        "| request | module | c=1 p50 | c=1 p99 | c=1 req/s | c=8 p50 | c=8 p99 | c=8 req/s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for path in &args.requests {
        let name = file_name(path);
        let request = read_request(path)?;
        let body = serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview", "request": request}))?;
        let mut results: Vec<[(Timing, f64); 2]> = Vec::new();
        for module in &modules {
            // Each module must answer before it is timed.
            let (status, answer) = server
                .client
                .post(&format!("/validate/{}", module.name), body.clone())?;
            if status != 200 {
                bail!(
                    "{}: HTTP {status}: {}",
                    module.name,
                    String::from_utf8_lossy(&answer)
                );
            }
        }
        let mut samples = vec![[Vec::new(), Vec::new()]; modules.len()];
        let mut elapsed = vec![[0f64; 2]; modules.len()];
        let ids: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
        let per_module = Duration::from_secs_f64(args.server_seconds);
        // Concurrency 1, the budgets' measure: request by request.
        let one_by_one = send_interleaved(&server, &ids, &body, per_module * ids.len() as u32)?;
        for (i, lat) in one_by_one.into_iter().enumerate() {
            elapsed[i][0] = lat.iter().sum::<f64>() / 1e6;
            samples[i][0] = lat;
        }
        // Concurrency 8 measures each module's throughput, so each has the server to itself
        // for a slot; 20 short rounds spread the machine's drift over all.
        const ROUNDS: u32 = 20;
        for _ in 0..ROUNDS {
            for (i, module) in modules.iter().enumerate() {
                let (lat, took) = send_for(&server, &module.name, &body, 8, per_module / ROUNDS)?;
                samples[i][1].extend(lat);
                elapsed[i][1] += took;
            }
        }
        for (i, module) in modules.iter().enumerate() {
            let per = |j: usize| {
                let n = samples[i][j].len();
                (Timing::of(samples[i][j].clone()), n as f64 / elapsed[i][j])
            };
            let (c1, c8) = (per(0), per(1));
            println!(
                "| {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                module.name, c1.0.median, c1.0.p99, c1.1, c8.0.median, c8.0.p99, c8.1
            );
            rows.push(json!({"request": name, "module": module.name,
                "c1_p50_us": c1.0.median, "c1_p99_us": c1.0.p99, "c1_rps": c1.1,
                "c8_p50_us": c8.0.median, "c8_p99_us": c8.0.p99, "c8_rps": c8.1}));
            results.push([c1, c8]);
        }
        let index_of =
            |m: Option<&Module>| m.and_then(|m| modules.iter().position(|x| x.name == m.name));
        let p50 = |i: usize| results[i][0].0.median;
        let policy_p50 = p50(0);
        let budget = args
            .max_server
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| *r);
        if let (Some(max), Some(floor)) = (budget, index_of(floor)) {
            let ratio = policy_p50 / p50(floor);
            println!("  {name}: policy p50 / floor p50 = {ratio:.2}");
            if ratio > max {
                failures.push(format!(
                    "{name}: policy-server p50 {ratio:.2}x the floor's (budget {max}x)"
                ));
            }
        }
        if let Some(ndots) = index_of(ndots) {
            let ratio = policy_p50 / p50(ndots);
            let (low, high) = p50_ratio_interval(&samples[0][0], &samples[ndots][0]);
            println!(
                "  {name}: policy p50 / pod-ndots p50 = {ratio:.2} (95% interval {low:.2} to {high:.2}, over {} turns)",
                samples[0][0].len()
            );
            // On the policy's row of this request (the first of its rows).
            let policy_row = rows.len() - modules.len();
            rows[policy_row]["c1_p50_over_ndots"] = json!(ratio);
            rows[policy_row]["c1_p50_over_ndots_interval_95"] = json!([low, high]);
            if budget.is_some() && ratio > 1.0 {
                failures.push(format!(
                    "{name}: policy-server p50 {ratio:.2}x pod-ndots' (budget 1x)"
                ));
            }
        }
    }
    drop(server);
    std::fs::remove_dir_all(&dir).ok();
    Ok(rows)
}

/// The ratio of two modules' p50s at concurrency 1, as a 95% interval: the turns resampled
/// with replacement 1,000 times (a turn holds one request of each module, so a request
/// stays paired with the other module's request of the same turn, on the same machine
/// state), the ratio of the resampled p50s each time, the 2.5th and 97.5th percentiles. The
/// budget is still judged on the measured ratio; the interval says how far that one number
/// can be trusted.
fn p50_ratio_interval(a: &[f64], b: &[f64]) -> (f64, f64) {
    const RESAMPLES: usize = 1000;
    let turns = a.len().min(b.len());
    if turns == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = SmallRng::seed_from_u64(7);
    let mut ratios = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        let picks: Vec<usize> = (0..turns).map(|_| rng.gen_range(0..turns)).collect();
        let p50 = |x: &[f64]| Timing::of(picks.iter().map(|&t| x[t]).collect()).median;
        ratios.push(p50(a) / p50(b));
    }
    ratios.sort_by(|x, y| x.total_cmp(y));
    (
        ratios[RESAMPLES / 40],
        ratios[RESAMPLES - 1 - RESAMPLES / 40],
    )
}

/// One client sending `body` to each of `ids` in turn, one request at a time, for `slot` in
/// all: each module's latencies in µs. Its requests then meet the same machine as the
/// others' (interleaved request by request, not slot by slot): on a shared machine whose
/// speed drifts by tens of percent within seconds, that is what makes the p50s comparable.
/// Each turn takes the modules in a new random order (seeded: the same from run to run), so
/// that none always follows the same one: what ran just before a request (its code and
/// memory in the caches, or not) weighs on all modules alike.
fn send_interleaved(
    server: &PolicyServer,
    ids: &[&str],
    body: &[u8],
    slot: Duration,
) -> Result<Vec<Vec<f64>>> {
    let urls: Vec<String> = ids
        .iter()
        .map(|id| server.client.url(&format!("/validate/{id}")))
        .collect();
    let http = server.client.http().clone();
    server.client.runtime().block_on(async move {
        let start = Instant::now();
        let mut latencies = vec![Vec::new(); urls.len()];
        let mut rng = SmallRng::seed_from_u64(13);
        let mut order: Vec<usize> = (0..urls.len()).collect();
        while start.elapsed() < slot {
            order.shuffle(&mut rng);
            for &i in &order {
                let latency = timed_post(&http, &urls[i], body)
                    .await
                    .with_context(|| ids[i].to_string())?;
                latencies[i].push(latency);
            }
        }
        Ok(latencies)
    })
}

/// One POST of `body` to `url`, which must answer 200: its latency in µs.
async fn timed_post(http: &reqwest::Client, url: &str, body: &[u8]) -> Result<f64> {
    let t = Instant::now();
    let (status, _) = policy_server::post(http, url, body.to_vec()).await?;
    if status != 200 {
        bail!("HTTP {status}");
    }
    Ok(t.elapsed().as_secs_f64() * 1e6)
}

/// `concurrency` clients sending `body` to `/validate/<id>` back to back for `slot`: each
/// answer's latency in µs, and the seconds it took.
fn send_for(
    server: &PolicyServer,
    id: &str,
    body: &[u8],
    concurrency: usize,
    slot: Duration,
) -> Result<(Vec<f64>, f64)> {
    let url = server.client.url(&format!("/validate/{id}"));
    let http = server.client.http().clone();
    server.client.runtime().block_on(async move {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (http, url, body) = (http.clone(), url.clone(), body.to_vec());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                while start.elapsed() < slot {
                    latencies.push(timed_post(&http, &url, &body).await?);
                }
                Ok::<_, anyhow::Error>(latencies)
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await??);
        }
        Ok((all, start.elapsed().as_secs_f64()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Latencies that wander as a shared machine does, from a fixed seed.
    fn wandering(seed: u64, n: usize) -> Vec<f64> {
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..n).map(|_| 1000.0 + rng.gen_range(0.0..400.0)).collect()
    }

    #[test]
    fn the_ratio_interval_of_a_module_against_itself_is_exactly_one() {
        let a = wandering(1, 500);
        assert_eq!(p50_ratio_interval(&a, &a), (1.0, 1.0));
    }

    #[test]
    fn the_ratio_interval_keeps_the_turns_paired() {
        // Each turn of b takes twice as long as the same turn of a: resampling turns, not
        // requests, the ratio is 0.5 in every resample, however much the turns differ.
        let a = wandering(2, 500);
        let b: Vec<f64> = a.iter().map(|x| x * 2.0).collect();
        assert_eq!(p50_ratio_interval(&a, &b), (0.5, 0.5));
    }

    #[test]
    fn the_ratio_interval_of_two_noisy_modules_holds_their_measured_ratio() {
        let (a, b) = (wandering(3, 800), wandering(4, 800));
        let measured = Timing::of(a.clone()).median / Timing::of(b.clone()).median;
        let (low, high) = p50_ratio_interval(&a, &b);
        assert!(low < measured && measured < high, "{low} {measured} {high}");
        // Two draws of the same spread: the interval is a few percent wide around 1.
        assert!(low > 0.9 && high < 1.1 && high - low > 0.01, "{low} {high}");
    }

    #[test]
    fn the_ratio_interval_without_turns_is_not_a_number() {
        let (low, high) = p50_ratio_interval(&[], &[]);
        assert!(low.is_nan() && high.is_nan());
    }
}
