//! Native timing of the engine on the example Pods of `tests/data/` (1, 3 and 20 containers,
//! HTTP/TCP/gRPC probes, 30 annotations), with Criterion:
//!
//! - `evaluate/<pod>`: `engine::evaluate` on an already parsed request (decide + render +
//!   post-process); the request clone is made outside the timed part.
//! - `reinject/<pod>`: `engine::evaluate` on the Pod the first injection produced (the
//!   idempotent re-injection path).
//! - `decide_only/<pod>`: the same Pod with `sidecar.istio.io/inject: "false"`: shape
//!   check, namespace selection and `injectRequired`, no rendering.
//! - `validate/<pod>`: what the wasm `validate` entry does from the raw payload bytes:
//!   `engine::validate` (the Pod split into parsed fields and text, evaluate, the response
//!   written), settings cached across calls as the module caches them. Natively the system
//!   allocator is used; the module uses its per-call arena (`call_arena`).
//! - `baseline/<pod>`: parse the same payload and answer with the Pod unchanged.
//!
//! `cargo bench --bench engine` (or `-- --quick` for a fast run, `-- validate` to filter).
//! Estimates land in `target/criterion/<group>/<pod>/new/estimates.json`; `benches/table.py`
//! turns them and `target/bench-results/engine.json` (from `--bench alloc`) into a table.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use istio_sidecar_injector::engine::{self, AdmissionRequest};
use istio_sidecar_injector::settings::Settings;
use serde_json::{Value, json};

fn parsed(request: &Value) -> AdmissionRequest {
    serde_json::from_value(request.clone()).expect("example request parses")
}

fn benches(c: &mut Criterion) {
    let settings = Settings::default();
    let namespace = common::namespace();
    let namespace_bytes = common::NAMESPACE.as_bytes();
    let examples = common::examples();

    let mut group = c.benchmark_group("evaluate");
    for ex in &examples {
        let request = parsed(&ex.request);
        group.throughput(Throughput::Bytes(ex.payload.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(ex.name), |b| {
            b.iter_batched(
                || (common::clone_request(&request), namespace.clone()),
                |(r, ns)| black_box(engine::evaluate(r, &settings, |_| Ok(ns))),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("reinject");
    for ex in &examples {
        let first = engine::evaluate(parsed(&ex.request), &settings, |_| Ok(namespace.clone()));
        let injected = first.mutated.expect("example pods are injected");
        let request = common::pod_request(injected, "shop");
        group.bench_function(BenchmarkId::from_parameter(ex.name), |b| {
            b.iter_batched(
                || (common::clone_request(&request), namespace.clone()),
                |(r, ns)| black_box(engine::evaluate(r, &settings, |_| Ok(ns))),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("decide_only");
    for ex in &examples {
        let mut request = parsed(&ex.request);
        request.object["metadata"]["labels"]["sidecar.istio.io/inject"] = json!("false");
        group.bench_function(BenchmarkId::from_parameter(ex.name), |b| {
            b.iter_batched(
                || (common::clone_request(&request), namespace.clone()),
                |(r, ns)| black_box(engine::evaluate(r, &settings, |_| Ok(ns))),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("validate");
    for ex in &examples {
        group.throughput(Throughput::Bytes(ex.payload.len() as u64));
        let mut cache = engine::SettingsCache::default();
        group.bench_function(BenchmarkId::from_parameter(ex.name), |b| {
            b.iter(|| {
                black_box(common::validate_entry(
                    black_box(&ex.payload),
                    namespace_bytes,
                    &mut cache,
                ))
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("baseline");
    for ex in &examples {
        group.throughput(Throughput::Bytes(ex.payload.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(ex.name), |b| {
            b.iter(|| black_box(common::baseline(black_box(&ex.payload))))
        });
    }
    group.finish();
}

criterion_group!(engine_benches, benches);
criterion_main!(engine_benches);
