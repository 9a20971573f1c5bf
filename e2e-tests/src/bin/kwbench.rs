//! `kwbench`: times the policy inside the same wapc + wasmtime host Kubewarden uses, against a
//! baseline module that only parses the request and returns the Pod unchanged.
//!
//! kwbench --policy annotated-policy.wasm --baseline baseline.wasm [--settings-json J]
//!         [--min-seconds S] [--max-ratio R] [--max-size BYTES] [--json OUT.json]
//!         [--check REQUEST.json=STORED.json]... [--max-check-ratio R] REQUEST.json...
//!
//! For each request: warm-up calls, then repeated `validate` calls for at least S seconds
//! (default 1) per module, the two modules alternating in short rounds; reports the median and mean time per call in microseconds (and
//! the first call of a fresh instance, which also parses the settings), the
//! ratio policy/baseline, the module sizes, compile and instantiation times. With
//! `--max-ratio` / `--max-size` the run fails (exit 1) when a budget is exceeded.
//!
//! `--check REQUEST=STORED` times check mode (`action: check`) on STORED, the Pod of REQUEST
//! as the API server stores it once injected, against inject mode on the same Pod (STORED:
//! a re-injection) and on the Pod before injection (REQUEST), in the same alternating
//! rounds; `--max-check-ratio` bounds check / inject on the same Pod.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use kwhost::host::{CompileCache, HostContext, Policy};
use serde_json::{Value, json};

struct Args {
    policy: PathBuf,
    baseline: PathBuf,
    settings: Value,
    min_seconds: f64,
    max_ratio: Option<f64>,
    max_size: Option<u64>,
    json_out: Option<PathBuf>,
    requests: Vec<PathBuf>,
    /// (request, the same Pod stored after injection).
    checks: Vec<(PathBuf, PathBuf)>,
    max_check_ratio: Option<f64>,
}

fn parse_args() -> Result<Args> {
    let mut raw = std::env::args().skip(1);
    let mut args = Args {
        policy: PathBuf::from("annotated-policy.wasm"),
        baseline: PathBuf::new(),
        settings: json!({"namespaceSelection": "webhook"}),
        min_seconds: 1.0,
        max_ratio: None,
        max_size: None,
        json_out: None,
        requests: Vec::new(),
        checks: Vec::new(),
        max_check_ratio: None,
    };
    while let Some(a) = raw.next() {
        let mut value = || raw.next().ok_or_else(|| anyhow!("{a} needs a value"));
        match a.as_str() {
            "--policy" => args.policy = value()?.into(),
            "--baseline" => args.baseline = value()?.into(),
            "--settings-json" => args.settings = serde_json::from_str(&value()?)?,
            "--min-seconds" => args.min_seconds = value()?.parse()?,
            "--max-ratio" => args.max_ratio = Some(value()?.parse()?),
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
            other if other.starts_with("--") => bail!("unknown flag {other}"),
            other => args.requests.push(other.into()),
        }
    }
    if args.baseline.as_os_str().is_empty() || args.requests.is_empty() {
        bail!("usage: kwbench --policy P.wasm --baseline B.wasm [options] REQUEST.json...");
    }
    Ok(args)
}

struct Loaded {
    policy: Policy,
    size: u64,
    compile: Duration,
}

fn load(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {path:?}"))?;
    let start = Instant::now();
    let policy = Policy::compile(&bytes, &CompileCache::Disabled)?;
    Ok(Loaded {
        policy,
        size: bytes.len() as u64,
        compile: start.elapsed(),
    })
}

/// Median, mean and count of one module's timed calls, in microseconds.
struct Timing {
    median: f64,
    mean: f64,
    calls: usize,
}

impl Timing {
    fn of(mut samples: Vec<f64>) -> Timing {
        samples.sort_by(|a, b| a.total_cmp(b));
        Timing {
            median: samples[samples.len() / 2],
            mean: samples.iter().sum::<f64>() / samples.len() as f64,
            calls: samples.len(),
        }
    }
}

/// Times repeated `validate` calls of each (instance, payload) for at least `min` each,
/// alternating between them in short rounds: a machine that slows down or speeds up during
/// the run (other load, frequency changes) then weighs on all alike, and the ratios hold.
fn time_rounds(runs: &[(&kwhost::host::Instance, &[u8])], min: Duration) -> Result<Vec<Timing>> {
    const ROUNDS: u32 = 20;
    for (instance, payload) in runs {
        for _ in 0..20 {
            instance.call_raw("validate", payload)?;
        }
    }
    let round = min / ROUNDS;
    let mut samples = vec![Vec::new(); runs.len()];
    for _ in 0..ROUNDS {
        for ((instance, payload), samples) in runs.iter().zip(samples.iter_mut()) {
            let start = Instant::now();
            let mut n = 0;
            while start.elapsed() < round || n < 5 {
                let t = Instant::now();
                let out = instance.call_raw("validate", payload)?;
                samples.push(t.elapsed().as_secs_f64() * 1e6);
                std::hint::black_box(out);
                n += 1;
            }
        }
    }
    Ok(samples.into_iter().map(Timing::of).collect())
}

/// The `validate` payload of a request file (an AdmissionRequest or AdmissionReview).
fn payload(path: &Path, settings: &Value) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path:?}"))?;
    let request: Value = serde_json::from_str(&text)?;
    let request = request.get("request").cloned().unwrap_or(request);
    Ok(json!({"request": request, "settings": settings}).to_string())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let policy = load(&args.policy)?;
    let baseline = load(&args.baseline)?;
    let ctx = HostContext::default();

    let instantiate = |p: &Policy| -> Result<Duration> {
        let mut total = Duration::ZERO;
        for _ in 0..5 {
            let t = Instant::now();
            std::hint::black_box(p.instantiate(&ctx)?);
            total += t.elapsed();
        }
        Ok(total / 5)
    };
    let policy_inst_time = instantiate(&policy.policy)?;
    let baseline_inst_time = instantiate(&baseline.policy)?;
    let policy_inst = policy.policy.instantiate(&ctx)?;
    let baseline_inst = baseline.policy.instantiate(&ctx)?;
    let min = Duration::from_secs_f64(args.min_seconds);

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    println!(
        "| request | policy median µs | baseline median µs | ratio | policy mean µs | first call µs | calls |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for path in &args.requests {
        let payload = payload(path, &args.settings)?;
        // The policy must actually inject, or the comparison means nothing.
        let answer: Value =
            serde_json::from_slice(&policy_inst.call_raw("validate", payload.as_bytes())?)?;
        if answer.get("mutated_object").is_none_or(Value::is_null) {
            bail!("{path:?}: the policy did not inject ({answer})");
        }
        // The first call of a fresh instance also parses the settings and sizes the
        // per-call arena: reported apart, it is not what every admission pays.
        let fresh = policy.policy.instantiate(&ctx)?;
        let t = Instant::now();
        fresh.call_raw("validate", payload.as_bytes())?;
        let first = t.elapsed().as_secs_f64() * 1e6;
        let [p, b]: [Timing; 2] = time_rounds(
            &[
                (&policy_inst, payload.as_bytes()),
                (&baseline_inst, payload.as_bytes()),
            ],
            min,
        )?
        .try_into()
        .map_err(|_| anyhow!("two timings"))?;
        let (pm, pmean, calls, bm) = (p.median, p.mean, p.calls, b.median);
        let ratio = pm / bm;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        println!("| {name} | {pm:.1} | {bm:.1} | {ratio:.2} | {pmean:.1} | {first:.0} | {calls} |");
        if let Some(max) = args.max_ratio
            && ratio > max
        {
            failures.push(format!("{name}: {ratio:.2}x the baseline (budget {max}x)"));
        }
        rows.push(
            json!({"request": name, "payload_bytes": payload.len(), "policy_median_us": pm,
            "policy_mean_us": pmean, "policy_first_call_us": first, "baseline_median_us": bm, "ratio": ratio, "calls": calls}),
        );
    }
    let mut check_rows = Vec::new();
    if !args.checks.is_empty() {
        let mut check_settings = args.settings.clone();
        check_settings["action"] = "check".into();
        // One instance per mode: each keeps its own settings, as a policy-server policy does.
        let inject_inst = policy.policy.instantiate(&ctx)?;
        let check_inst = policy.policy.instantiate(&ctx)?;
        println!();
        println!(
            "| check mode | check median µs | inject, same Pod µs | ratio | inject, Pod before injection µs | ratio | calls |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (request, stored) in &args.checks {
            let check = payload(stored, &check_settings)?;
            let inject_stored = payload(stored, &args.settings)?;
            let inject_fresh = payload(request, &args.settings)?;
            let answer: Value =
                serde_json::from_slice(&check_inst.call_raw("validate", check.as_bytes())?)?;
            if answer["audit_annotations"]["outcome"] != "sidecar-current" {
                bail!("{stored:?}: check mode did not find the Pod current ({answer})");
            }
            let [c, same, fresh]: [Timing; 3] = time_rounds(
                &[
                    (&check_inst, check.as_bytes()),
                    (&inject_inst, inject_stored.as_bytes()),
                    (&inject_inst, inject_fresh.as_bytes()),
                ],
                min,
            )?
            .try_into()
            .map_err(|_| anyhow!("three timings"))?;
            let ratio = c.median / same.median;
            let ratio_fresh = c.median / fresh.median;
            let name = stored
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            println!(
                "| {name} | {:.1} | {:.1} | {ratio:.2} | {:.1} | {ratio_fresh:.2} | {} |",
                c.median, same.median, fresh.median, c.calls
            );
            if let Some(max) = args.max_check_ratio
                && ratio > max
            {
                failures.push(format!(
                    "{name}: check mode {ratio:.2}x inject mode on the same Pod (budget {max}x)"
                ));
            }
            check_rows.push(json!({"stored": name, "check_median_us": c.median,
                "inject_same_pod_median_us": same.median, "ratio": ratio,
                "inject_before_injection_median_us": fresh.median,
                "ratio_before_injection": ratio_fresh, "calls": c.calls}));
        }
    }
    println!();
    println!(
        "module sizes: policy {} bytes, baseline {} bytes; compile {:.0} ms / {:.0} ms; instantiate {:.2} ms / {:.2} ms",
        policy.size,
        baseline.size,
        policy.compile.as_secs_f64() * 1e3,
        baseline.compile.as_secs_f64() * 1e3,
        policy_inst_time.as_secs_f64() * 1e3,
        baseline_inst_time.as_secs_f64() * 1e3,
    );
    if let Some(max) = args.max_size
        && policy.size > max
    {
        failures.push(format!("module is {} bytes (budget {max})", policy.size));
    }
    if let Some(out) = &args.json_out {
        let summary = json!({
            "requests": rows,
            "check_mode": check_rows,
            "policy_bytes": policy.size,
            "baseline_bytes": baseline.size,
            "policy_compile_ms": policy.compile.as_secs_f64() * 1e3,
            "policy_instantiate_ms": policy_inst_time.as_secs_f64() * 1e3,
            "baseline_instantiate_ms": baseline_inst_time.as_secs_f64() * 1e3,
        });
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).ok();
        }
        std::fs::write(out, serde_json::to_string_pretty(&summary)?)?;
    }
    if failures.is_empty() {
        println!("budgets: ok");
        Ok(())
    } else {
        for f in &failures {
            eprintln!("budget exceeded: {f}");
        }
        std::process::exit(1);
    }
}
