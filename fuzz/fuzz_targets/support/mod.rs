//! What both fuzz targets share: running one input through the policy exactly as the wasm
//! `validate` entry does, and the `main` used when the targets are built as plain binaries
//! (`--no-default-features`, stable toolchain): replaying a corpus, or a simple mutational
//! fuzzer for machines without nightly/libFuzzer.
#![allow(dead_code)]

#[path = "../../../benches/common/mod.rs"]
pub mod common;
pub mod structured;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use istio_sidecar_injector::decision::Outcome;
use serde_json::Value;

/// What an input did, coarsely: the fuzzer keeps inputs that reach a new one.
pub type Signature = String;

/// Runs a `validate` payload; returns the outcome, reason code and the start of the message
/// (digits dropped) as the signature.
pub fn run_payload(payload: &[u8], namespace: &[u8]) -> Signature {
    let (response, verdict) = common::validate(payload, namespace);
    // The response must be JSON the host can read whenever the host could send the payload.
    let parsed = common::response_json(payload, &response).unwrap_or_default();
    assert!(parsed.is_null() || parsed.get("accepted").is_some_and(Value::is_boolean));
    match verdict {
        None => format!(
            "malformed:{}",
            shape(parsed["message"].as_str().unwrap_or(""))
        ),
        Some(v) => format!(
            "{}:{}:{}",
            v.outcome.as_str(),
            v.reason.code,
            shape(v.message.as_deref().unwrap_or(""))
        ),
    }
}

/// The first six words of a message, without quoted values, numbers and punctuation, so
/// that messages differing only in the offending value share a signature (coarse on
/// purpose: the pool must not fill with one input per garbage value).
fn shape(message: &str) -> String {
    let unquoted: String = message.split(['"', '\'', '`']).step_by(2).collect();
    let words: Vec<&str> = unquoted
        .split(|c: char| !(c.is_ascii_alphabetic() || c == '-'))
        .filter(|w| !w.is_empty() && w.len() <= 24)
        .take(6)
        .collect();
    words.join(" ")
}

/// The `validate_payload` target: arbitrary bytes as the payload.
pub fn validate_payload(data: &[u8]) -> Signature {
    run_payload(data, common::NAMESPACE.as_bytes())
}

/// The `structured_pod` target: bytes steer a Pod, settings and Namespace built with
/// `arbitrary`. With `FUZZ_INVARIANTS=1` it also checks that re-injecting the injected Pod
/// changes nothing (known engine bugs make this fail; see tests/proptest_injection.rs).
pub fn structured_pod(data: &[u8]) -> Signature {
    let input = structured::Structured::from_bytes(data);
    let namespace = input.namespace_bytes();
    let (response, verdict) = common::validate(&input.payload(), &namespace);
    let Some(verdict) = verdict else {
        let parsed: Value = serde_json::from_slice(&response).expect("the response is JSON");
        return format!(
            "malformed:{}",
            shape(parsed["message"].as_str().unwrap_or(""))
        );
    };
    let injected = verdict.mutated.as_ref().map(|pod| pod.to_serde());
    if std::env::var_os("FUZZ_INVARIANTS").is_some()
        && let Some(injected) = &injected
        && reinjection_applies(&input.pod, injected)
    {
        let again = structured::Structured {
            pod: injected.clone(),
            settings: input.settings.clone(),
            namespace: input.namespace.clone(),
            operation: input.operation,
        };
        let (_, second) = common::validate(&again.payload(), &namespace);
        let second = second.expect("the injected Pod parses");
        assert_eq!(
            second.outcome,
            Outcome::Injected,
            "{}\ninput: {}\nsettings: {}\ninjected: {}",
            second.reason,
            input.pod,
            input.settings,
            injected
        );
        let again = common::mutated(&second);
        assert!(
            &again == injected,
            "re-injection changed the Pod at {}\ninput: {}\nsettings: {}",
            first_difference("", injected, &again),
            input.pod,
            input.settings
        );
    }
    format!(
        "{}:{}:{}",
        verdict.outcome.as_str(),
        verdict.reason.code,
        shape(verdict.message.as_deref().unwrap_or(""))
    )
}

/// The first place two JSON values differ, as a path with both values.
fn first_difference(path: &str, a: &Value, b: &Value) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if w == v => {}
                    Some(w) => return first_difference(&format!("{path}/{k}"), v, w),
                    None => return format!("{path}/{k}: removed (was {v})"),
                }
            }
            match y.keys().find(|k| !x.contains_key(*k)) {
                Some(k) => format!("{path}/{k}: added {}", y[k]),
                None => format!("{path}: ?"),
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find(|(_, (v, w))| v != w)
            .map(|(i, (v, w))| first_difference(&format!("{path}/{i}"), v, w))
            .unwrap_or_default(),
        _ => format!("{path}: {a} became {b}"),
    }
}

/// The re-injection check skips what tests/proptest_injection.rs skips: a Pod that already
/// carries `sidecar.istio.io/status` without having been injected, a Pod declaring
/// `istio-init`/`istio-validation` itself, and an output with one name in both container
/// lists (the API server refuses it, so it is never re-injected).
fn reinjection_applies(input: &Value, injected: &Value) -> bool {
    let names = |pod: &Value, field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let forged_status = !input["metadata"]["annotations"]["sidecar.istio.io/status"].is_null();
    let reserved = ["containers", "initContainers"].iter().any(|f| {
        names(input, f)
            .iter()
            .any(|n| n == "istio-init" || n == "istio-validation")
    });
    let mut all = names(injected, "containers");
    all.extend(names(injected, "initContainers"));
    let unique: std::collections::BTreeSet<&String> = all.iter().collect();
    !forged_status && !reserved && unique.len() == all.len()
}

// -----------------------------------------------------------------------------------------
// Plain-binary mode: replay and a simple mutational fuzzer.
// -----------------------------------------------------------------------------------------

const USAGE: &str = "usage:
  TARGET [FILE|DIR]...                       replay every file (default: fuzz/corpus/TARGET)
  TARGET --mutate SECONDS [--seed N] [--save DIR] [--max-len BYTES] [--slow-ms MS] [DIR]...
        mutate the corpus files for SECONDS with a xorshift PRNG; inputs that reach a new
        outcome/reason signature join the pool (and DIR given by --save); crashes and inputs
        slower than --slow-ms (default 1000) are written to fuzz/artifacts/TARGET/
        (the pool is capped at 10,000 inputs and --save at 500 files)";

fn files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            entries.sort();
            out.extend(entries.into_iter().filter(|p| p.is_file()));
        } else if p.is_file() {
            out.push(p.clone());
        }
    }
    out
}

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// FNV-1a, for artifact names.
fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

fn save(dir: &Path, prefix: &str, data: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).ok();
    let path = dir.join(format!("{prefix}{:016x}", hash(data)));
    std::fs::write(&path, data).ok();
    path
}

pub fn main(name: &str, target: fn(&[u8]) -> Signature) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{}", USAGE.replace("TARGET", name));
        return;
    }
    // Quiet panics: they are reported with the input that caused them.
    std::panic::set_hook(Box::new(|_| {}));
    if let Some(i) = args.iter().position(|a| a == "--mutate") {
        let secs: u64 = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(60);
        let opt = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1).cloned())
        };
        let mut skip = vec![i, i + 1];
        for flag in ["--seed", "--save", "--max-len", "--slow-ms"] {
            if let Some(j) = args.iter().position(|a| a == flag) {
                skip.extend([j, j + 1]);
            }
        }
        let dirs: Vec<PathBuf> = args
            .iter()
            .enumerate()
            .filter(|(j, _)| !skip.contains(j))
            .map(|(_, a)| PathBuf::from(a))
            .collect();
        let code = mutate(
            name,
            target,
            MutateOptions {
                duration: Duration::from_secs(secs),
                seed: opt("--seed")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0x9E3779B97F4A7C15),
                save: opt("--save").map(PathBuf::from),
                max_len: opt("--max-len")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(64 * 1024),
                slow: Duration::from_millis(
                    opt("--slow-ms")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(1000),
                ),
                dirs,
            },
        );
        std::process::exit(code);
    }
    let paths: Vec<PathBuf> = if args.is_empty() {
        vec![fuzz_dir().join("corpus").join(name)]
    } else {
        args.iter().map(PathBuf::from).collect()
    };
    let mut failed = 0;
    let list = files(&paths);
    let start = Instant::now();
    for f in &list {
        let data = std::fs::read(f).unwrap_or_default();
        let t = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| target(&data))) {
            Ok(sig) => println!("{}: {} ({:?})", f.display(), sig, t.elapsed()),
            Err(p) => {
                failed += 1;
                println!("{}: PANIC {}", f.display(), panic_message(p.as_ref()));
            }
        }
    }
    println!(
        "{name}: replayed {} inputs in {:?}, {failed} panicked",
        list.len(),
        start.elapsed()
    );
    std::process::exit(if failed > 0 { 1 } else { 0 });
}

struct MutateOptions {
    duration: Duration,
    seed: u64,
    save: Option<PathBuf>,
    max_len: usize,
    slow: Duration,
    dirs: Vec<PathBuf>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Tokens worth splicing into JSON payloads.
const DICTIONARY: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u",
    "\\ud800",
    "\\udc00",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e999",
    "-0",
    "65535",
    "65536",
    "15020",
    "15090",
    "4294967296",
    "9223372036854775808",
    "\"\"",
    "{}",
    "[]",
    "\"istio-proxy\"",
    "\"istio-init\"",
    "\"istio-validation\"",
    "\"containers\"",
    "\"initContainers\"",
    "\"volumes\"",
    "\"name\"",
    "\"httpGet\"",
    "\"tcpSocket\"",
    "\"grpc\"",
    "\"port\"",
    "\"lifecycle\"",
    "\"annotations\"",
    "\"labels\"",
    "\"sidecar.istio.io/inject\"",
    "\"sidecar.istio.io/status\"",
    "\"proxy.istio.io/config\"",
    "\"proxy.istio.io/overrides\"",
    "\"inject.istio.io/templates\"",
    "\"prometheus.io/port\"",
    "\"status.sidecar.istio.io/port\"",
    "\"hostNetwork\"",
    "\"settings\"",
    "\"request\"",
    "\"object\"",
    "\"CREATE\"",
    "\"Pod\"",
];

/// Bytes that are not UTF-8 or not allowed raw in JSON strings.
const BYTE_TOKENS: &[&[u8]] = &[
    b"\xff",
    b"\x00",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
];

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>], max_len: usize) {
    let len = data.len();
    match rng.below(10) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = rng.next() as u8;
        }
        2 => {
            let i = rng.below(len + 1);
            data.insert(i, rng.next() as u8);
        }
        3 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            data.drain(i..i + n);
        }
        4 | 5 => {
            let token = if rng.below(8) == 0 {
                BYTE_TOKENS[rng.below(BYTE_TOKENS.len())]
            } else {
                DICTIONARY[rng.below(DICTIONARY.len())].as_bytes()
            };
            let i = rng.below(len + 1);
            data.splice(i..i, token.iter().copied());
        }
        6 if len > 1 => {
            // Duplicate a chunk (grows lists and nesting).
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(256));
            let chunk = data[i..i + n].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, chunk);
        }
        7 if !pool.is_empty() => {
            // Splice a piece of another input.
            let other = &pool[rng.below(pool.len())];
            if !other.is_empty() {
                let i = rng.below(other.len());
                let n = 1 + rng.below((other.len() - i).min(512));
                let at = rng.below(len + 1);
                data.splice(at..at, other[i..i + n].iter().copied());
            }
        }
        8 if len > 0 => {
            // Replace a run of digits with an interesting number.
            let start = rng.below(len);
            if let Some(i) = (start..len).find(|&i| data[i].is_ascii_digit()) {
                let end = (i..len).find(|&j| !data[j].is_ascii_digit()).unwrap_or(len);
                let n = [
                    "0",
                    "-1",
                    "65536",
                    "4294967296",
                    "1e999",
                    "15020",
                    "18446744073709551616",
                ][rng.below(7)];
                data.splice(i..end, n.bytes());
            }
        }
        _ if len > 0 => {
            data.truncate(rng.below(len));
        }
        _ => data.push(rng.next() as u8),
    }
    data.truncate(max_len);
}

const MAX_POOL: usize = 10_000;
const MAX_SIGNATURES: usize = 100_000;
const MAX_SAVED: usize = 500;

fn mutate(name: &str, target: fn(&[u8]) -> Signature, o: MutateOptions) -> i32 {
    let dirs = if o.dirs.is_empty() {
        vec![fuzz_dir().join("corpus").join(name)]
    } else {
        o.dirs.clone()
    };
    let mut pool: Vec<Vec<u8>> = files(&dirs)
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .collect();
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    pool.truncate(MAX_POOL / 2);
    let artifacts = fuzz_dir().join("artifacts").join(name);
    let mut rng = Rng(o.seed | 1);
    let mut seen = std::collections::BTreeSet::new();
    for input in &pool {
        if let Ok(sig) = catch_unwind(AssertUnwindSafe(|| target(input))) {
            seen.insert(sig);
        }
    }
    let seeds = pool.len();
    let start = Instant::now();
    let (mut execs, mut crashes, mut slow, mut saved) = (0u64, 0u64, 0u64, 0usize);
    let verbose = std::env::var_os("FUZZ_VERBOSE").is_some();
    let mut slowest = Duration::ZERO;
    let mut last_report = Instant::now();
    while start.elapsed() < o.duration {
        let mut data = pool[rng.below(pool.len())].clone();
        // Mostly one or two mutations, so that many inputs stay well-formed JSON.
        for _ in 0..1 + (rng.next().trailing_zeros() as usize).min(7) {
            mutate_once(&mut rng, &mut data, &pool, o.max_len);
        }
        let t = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| target(&data)));
        let took = t.elapsed();
        execs += 1;
        slowest = slowest.max(took);
        match result {
            Ok(sig) => {
                if seen.len() < MAX_SIGNATURES && seen.insert(sig.clone()) {
                    if verbose {
                        eprintln!("new signature: {sig}");
                    }
                    if pool.len() < MAX_POOL {
                        pool.push(data.clone());
                    } else {
                        let i = seeds + rng.below(MAX_POOL - seeds);
                        pool[i] = data.clone();
                    }
                    if let Some(dir) = &o.save
                        && saved < MAX_SAVED
                    {
                        saved += 1;
                        save(dir, "sig-", &data);
                    }
                }
            }
            Err(p) => {
                crashes += 1;
                let path = save(&artifacts, "crash-", &data);
                eprintln!("CRASH {}: {}", path.display(), panic_message(p.as_ref()));
            }
        }
        if took > o.slow {
            slow += 1;
            let path = save(&artifacts, "slow-", &data);
            eprintln!("SLOW {:?} {}", took, path.display());
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            last_report = Instant::now();
            eprintln!(
                "#{execs} {:?} pool {} signatures {} crashes {crashes} slow {slow} exec/s {:.0}",
                start.elapsed(),
                pool.len(),
                seen.len(),
                execs as f64 / start.elapsed().as_secs_f64()
            );
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{name}: {execs} executions in {:.0?} ({:.0}/s) from {seeds} seeds; pool {} inputs, {} outcome signatures; {crashes} crashes, {slow} slower than {:?} (slowest {:?})",
        elapsed,
        execs as f64 / elapsed.as_secs_f64(),
        pool.len(),
        seen.len(),
        o.slow,
        slowest
    );
    if crashes > 0 { 1 } else { 0 }
}
