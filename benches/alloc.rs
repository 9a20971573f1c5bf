//! Bytes and allocations per `validate` call, counted by a global allocator, for the example
//! Pods of `tests/data/`, plus a plain wall-clock mean per call. policy-server runs every
//! call in a fresh WebAssembly instance, whose memory starts empty: what a call allocates at
//! its peak is memory the instance must grow and touch, every time. Writes a JSON summary to
//! `target/bench-results/engine.json` and prints a Markdown table.
//!
//! `cargo bench --bench alloc` (`-- --iterations N` to change the timing loop, default 200).
//! Run without `--bench` (as `cargo test --benches` does) it makes one quick pass and writes
//! nothing.
//!
//! Counting follows dhat's rules: every `alloc` and every `realloc` is one allocation of its
//! (new) size, so `bytes` is the total requested over the call, not the peak. `peak_bytes`
//! is the highest number of live bytes during the call, above what was live before it.
//! The native allocator's numbers approximate the wasm module's (same code, same sizes of
//! data structures except for pointer width: wasm32 pointers are half as wide).

#[path = "common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use istio_sidecar_injector::{engine, protocol};
use serde_json::{Value, json};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

fn grow(size: u64) {
    ALLOCS.fetch_add(1, Relaxed);
    BYTES.fetch_add(size, Relaxed);
    let live = LIVE.fetch_add(size, Relaxed) + size;
    PEAK.fetch_max(live, Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size() as u64);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grow(layout.size() as u64);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as u64, Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size() as u64, Relaxed);
        grow(new_size as u64);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Default, Clone, Copy)]
struct Counts {
    allocations: u64,
    bytes: u64,
    peak_bytes: u64,
}

/// Counts what `f` allocates (the value it returns is dropped inside the measurement).
fn count<T>(f: impl FnOnce() -> T) -> Counts {
    let allocs = ALLOCS.load(Relaxed);
    let bytes = BYTES.load(Relaxed);
    let live = LIVE.load(Relaxed);
    PEAK.store(live, Relaxed);
    drop(black_box(f()));
    Counts {
        allocations: ALLOCS.load(Relaxed) - allocs,
        bytes: BYTES.load(Relaxed) - bytes,
        peak_bytes: PEAK.load(Relaxed).saturating_sub(live),
    }
}

/// Mean wall-clock nanoseconds of `f` over `n` calls (after `n / 10` warm-up calls); the
/// input of each call is made by `setup`, outside the timed part.
fn mean_ns<I, T>(n: u32, mut setup: impl FnMut() -> I, mut f: impl FnMut(I) -> T) -> f64 {
    for _ in 0..n / 10 {
        drop(black_box(f(setup())));
    }
    let mut total = 0u128;
    for _ in 0..n {
        let input = setup();
        let start = Instant::now();
        let out = f(input);
        total += start.elapsed().as_nanos();
        drop(black_box(out));
    }
    total as f64 / f64::from(n.max(1))
}

fn results_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("bench-results");
    }
    // target/<profile>/deps/alloc-<hash>
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench-results")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let iterations: u32 = args
        .iter()
        .position(|a| a == "--iterations")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 200 } else { 1 });

    let namespace_bytes = common::NAMESPACE.as_bytes();
    let mut pods = Vec::new();
    println!("| Pod | call | allocations | bytes | peak bytes | µs/call (native) |");
    println!("|---|---|---:|---:|---:|---:|");

    for ex in common::examples() {
        // validate: the wasm entry, from payload bytes to response bytes.
        let (response, verdict) = common::validate(&ex.payload, namespace_bytes);
        let verdict = verdict.expect("payload parses");
        assert_eq!(verdict.outcome.as_str(), "injected", "{}", ex.name);
        let validate = count(|| common::validate_entry(&ex.payload, namespace_bytes));
        let validate_ns = mean_ns(
            iterations,
            || (),
            |()| common::validate_entry(&ex.payload, namespace_bytes),
        );

        // evaluate: validate without writing the response.
        let evaluate_call = || {
            let (request, settings) = protocol::parse(&ex.payload).expect("payload parses");
            let verdict = engine::evaluate(request, &settings, |_| Ok(common::namespace()));
            verdict.mutated.is_some()
        };
        let evaluate = count(evaluate_call);
        let evaluate_ns = mean_ns(iterations, || (), |()| evaluate_call());

        // reinject: validate on the Pod the first injection produced.
        let injected = common::mutated(&verdict);
        let again = common::payload(&common::pod_request(injected, "shop"), &json!({}));
        let reinject = count(|| common::validate_entry(&again, namespace_bytes));
        let reinject_ns = mean_ns(
            iterations,
            || (),
            |()| common::validate_entry(&again, namespace_bytes),
        );

        // baseline: parse and answer with the Pod unchanged.
        let baseline = count(|| common::baseline(&ex.payload));
        let baseline_ns = mean_ns(iterations, || (), |()| common::baseline(&ex.payload));

        let entry = |c: Counts, ns: f64| {
            json!({"allocations": c.allocations, "bytes": c.bytes, "peak_bytes": c.peak_bytes,
                   "mean_ns": ns.round()})
        };
        for (what, c, t) in [
            ("validate", validate, validate_ns),
            ("parse + evaluate", evaluate, evaluate_ns),
            ("reinject", reinject, reinject_ns),
            ("baseline", baseline, baseline_ns),
        ] {
            println!(
                "| {} | {what} | {} | {} | {} | {:.1} |",
                ex.name,
                c.allocations,
                c.bytes,
                c.peak_bytes,
                t / 1000.0
            );
        }
        pods.push(json!({
            "pod": ex.name,
            "containers": ex.containers,
            "payload_bytes": ex.payload.len(),
            "response_bytes": response.len(),
            "validate": entry(validate, validate_ns),
            "evaluate": entry(evaluate, evaluate_ns),
            "reinject": entry(reinject, reinject_ns),
            "baseline": entry(baseline, baseline_ns),
        }));
    }

    if !full {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let artifact = |name: &str| -> Value {
        std::fs::metadata(root.join(name))
            .map(|m| json!(m.len()))
            .unwrap_or(Value::Null)
    };
    let summary = json!({
        "iterations": iterations,
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "machine": machine(),
        "pods": pods,
        "artifacts": {
            "policy.wasm": artifact("policy.wasm"),
            "annotated-policy.wasm": artifact("annotated-policy.wasm"),
        },
        "notes": "allocations/bytes: every alloc and realloc counted at its (new) size over one call; peak_bytes: highest live bytes above the start; mean_ns: wall clock per call, input prepared outside the timing; native build, not wasm",
    });
    let dir = results_dir();
    std::fs::create_dir_all(&dir).expect("create bench-results");
    let path = dir.join("engine.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&summary).expect("serializable"),
    )
    .expect("write engine.json");
    println!("wrote {}", path.display());
}

/// The CPU model and core count, for the README's "measured on" line.
fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    json!({"cpu": cpu, "cores": cores, "os": std::env::consts::OS, "arch": std::env::consts::ARCH})
}
