//! Times the validate path natively (parse payload, evaluate, serialize the response) on a
//! request file: `cargo run --release --example profile -- REQUEST.json [ITERATIONS]
//! [--baseline | --validate]` (the baseline module's work; the wasm entry's `engine::validate`).

use std::time::Instant;

use istio_sidecar_injector::call_arena::CallArena;
use istio_sidecar_injector::engine;

/// The wasm module's allocator, so that `--validate` costs what the module's call does.
#[global_allocator]
static ALLOCATOR: CallArena = CallArena::new();
use serde_json::{Value, json};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = std::fs::read_to_string(&args[0]).expect("request file");
    let request: Value = serde_json::from_str(&text).expect("json");
    let payload =
        json!({"request": request, "settings": {"namespaceSelection": "webhook"}}).to_string();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    if args.get(2).map(String::as_str) == Some("--baseline") {
        // What the baseline module does: parse the payload, serialize the Pod unchanged.
        #[derive(serde::Deserialize)]
        struct Payload {
            request: Req,
        }
        #[derive(serde::Deserialize)]
        struct Req {
            object: Value,
        }
        let t = Instant::now();
        for _ in 0..n {
            let p: Payload = serde_json::from_slice(payload.as_bytes()).expect("payload");
            std::hint::black_box(serde_json::to_vec(&p.request.object).expect("ser"));
        }
        println!(
            "baseline {:.1} µs",
            t.elapsed().as_secs_f64() / n as f64 * 1e6
        );
        return;
    }
    if args.get(2).map(String::as_str) == Some("--validate") {
        // What the wasm entry does: engine::validate with the settings cache.
        let mut cache = engine::SettingsCache::default();
        let t = Instant::now();
        for _ in 0..n {
            let fills = cache.fills();
            std::hint::black_box(ALLOCATOR.run(|| {
                engine::validate_in_arena(
                    payload.as_bytes(),
                    &mut cache,
                    |_| Err("no".into()),
                    || !ALLOCATOR.overflowed(),
                )
            }));
            if cache.fills() != fills {
                cache.refresh();
            }
        }
        println!(
            "validate {:.1} µs",
            t.elapsed().as_secs_f64() / n as f64 * 1e6
        );
        return;
    }
    let mut stages = [0f64; 3];
    for _ in 0..n {
        let t0 = Instant::now();
        let (req, settings) = engine::parse_payload(payload.as_bytes()).expect("payload");
        let t1 = Instant::now();
        let verdict = engine::evaluate(req, &settings, |_| Err("no".into()));
        let t2 = Instant::now();
        let out = serde_json::to_vec(&verdict.mutated).expect("ser");
        let t3 = Instant::now();
        std::hint::black_box(out);
        stages[0] += (t1 - t0).as_secs_f64();
        stages[1] += (t2 - t1).as_secs_f64();
        stages[2] += (t3 - t2).as_secs_f64();
    }
    let us = |s: f64| s / n as f64 * 1e6;
    println!(
        "parse {:.1} µs, evaluate {:.1} µs, serialize {:.1} µs",
        us(stages[0]),
        us(stages[1]),
        us(stages[2])
    );
}
