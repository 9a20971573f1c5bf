//! Times the `validate` call natively, stage by stage (parse the payload, evaluate, write the
//! response), on a request file: `cargo run --release --example profile -- REQUEST.json
//! [ITERATIONS]`. For profilers (`perf`, `valgrind --tool=callgrind`) on native code; speed
//! is judged in the wasm host (`make bench`).

use std::time::Instant;

use istio_sidecar_injector::{engine, protocol};
use serde_json::{Value, json};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = std::fs::read_to_string(&args[0]).expect("request file");
    let request: Value = serde_json::from_str(&text).expect("json");
    let request = request.get("request").cloned().unwrap_or(request);
    let payload =
        json!({"request": request, "settings": {"namespaceSelection": "webhook"}}).to_string();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let mut stages = [0f64; 3];
    for _ in 0..n {
        let t0 = Instant::now();
        let (request, settings) = protocol::parse(payload.as_bytes()).expect("payload");
        let t1 = Instant::now();
        let verdict = engine::evaluate(request, &settings, |_| Err("no lookup".into()));
        let t2 = Instant::now();
        let out = protocol::response(&verdict, payload.len());
        let t3 = Instant::now();
        std::hint::black_box(out);
        stages[0] += (t1 - t0).as_secs_f64();
        stages[1] += (t2 - t1).as_secs_f64();
        stages[2] += (t3 - t2).as_secs_f64();
    }
    let us = |s: f64| s / n as f64 * 1e6;
    println!(
        "parse {:.1} µs, evaluate {:.1} µs, respond {:.1} µs",
        us(stages[0]),
        us(stages[1]),
        us(stages[2])
    );
}
