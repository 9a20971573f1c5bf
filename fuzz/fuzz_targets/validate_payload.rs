//! Arbitrary bytes as the `validate` payload, through `protocol` exactly as the wasm entry
//! point runs it. Must never panic.
//!
//! libFuzzer (nightly): `cargo +nightly fuzz run validate_payload`
//! Stable: `cargo run --release --no-default-features --bin validate_payload -- [--mutate SECONDS]`
#![cfg_attr(feature = "libfuzzer", no_main)]

mod support;

#[cfg(feature = "libfuzzer")]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    support::validate_payload(data);
});

#[cfg(not(feature = "libfuzzer"))]
fn main() {
    support::main("validate_payload", support::validate_payload);
}
