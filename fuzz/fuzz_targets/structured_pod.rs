//! Structured Pods: the bytes steer (through `arbitrary`) a Pod with random labels,
//! annotations (Istio's, valid and invalid), containers, probes and unknown fields, random
//! settings and a random Namespace, run through the `validate` path. Must never panic.
//! `FUZZ_INVARIANTS=1` also checks that re-injection is a no-op.
//!
//! libFuzzer (nightly): `cargo +nightly fuzz run structured_pod`
//! Stable: `cargo run --release --no-default-features --bin structured_pod -- [--mutate SECONDS]`
#![cfg_attr(feature = "libfuzzer", no_main)]

mod support;

#[cfg(feature = "libfuzzer")]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    support::structured_pod(data);
});

#[cfg(not(feature = "libfuzzer"))]
fn main() {
    support::main("structured_pod", support::structured_pod);
}
