//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) as regression tests: every input must
//! get an answer without a panic, within a generous time budget, and the response must be
//! JSON. The same code as the fuzz targets (fuzz/fuzz_targets/support) builds the inputs,
//! so a crash the fuzzer saved there (`fuzz/artifacts/...`, copied into the corpus) stays
//! fixed.

#[path = "../benches/common/mod.rs"]
mod common;
#[path = "../fuzz/fuzz_targets/support/structured.rs"]
mod structured;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn budget() -> Duration {
    Duration::from_millis(if cfg!(debug_assertions) { 2_000 } else { 500 })
}

fn replay(target: &str, name: &str, payload: &[u8], namespace: &[u8]) {
    let start = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| common::validate(payload, namespace)));
    let elapsed = start.elapsed();
    let (response, _) = result.unwrap_or_else(|_| {
        panic!(
            "{target}/{name}: the policy panicked on {}",
            String::from_utf8_lossy(&payload[..payload.len().min(500)])
        )
    });
    if let Some(response) = common::response_json(payload, &response) {
        assert!(response["accepted"].is_boolean(), "{target}/{name}");
    }
    assert!(
        elapsed < budget(),
        "{target}/{name}: {elapsed:?}, over the budget of {:?}",
        budget()
    );
}

#[test]
fn validate_payload_corpus() {
    for (name, data) in corpus("validate_payload") {
        replay(
            "validate_payload",
            &name,
            &data,
            common::NAMESPACE.as_bytes(),
        );
    }
}

#[test]
fn structured_pod_corpus() {
    for (name, data) in corpus("structured_pod") {
        let input = structured::Structured::from_bytes(&data);
        replay(
            "structured_pod",
            &name,
            &input.payload(),
            &input.namespace_bytes(),
        );
    }
}
