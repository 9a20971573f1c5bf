//! The wasm module's per-call arena (`call_arena`), installed here as this test binary's
//! global allocator exactly as `lib.rs` installs it in the module: the engine's `validate`
//! runs inside `CallArena::run`, the settings cache is refreshed outside it when filled, and
//! every answer must equal the reference path's (computed outside the arena). Anything the
//! engine kept across calls in arena memory (a lazily built static, say) would be
//! overwritten by the next call and show up here as a wrong answer or a crash.
//!
//! No test harness (`harness = false`): the arena is for single-threaded programs, and the
//! harness runs tests on other threads.

#[path = "../benches/common/mod.rs"]
mod common;

use istio_sidecar_injector::call_arena::CallArena;
use istio_sidecar_injector::engine::{self, SettingsCache};
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: CallArena = CallArena::new();

fn main() {
    let namespace = common::NAMESPACE.as_bytes();
    let mut payloads: Vec<Vec<u8>> = common::examples().into_iter().map(|e| e.payload).collect();
    // Other settings on the same instance: the cache is refilled (inside the arena) and
    // must be refreshed outside it.
    let request = common::examples().remove(0).request;
    payloads.push(common::payload(
        &request,
        &json!({"nativeSidecars": true, "namespaceSelection": "webhook"}),
    ));
    payloads.push(common::payload(&request, &json!({"namespaceSelection": "webhook", "values": {"global": {"proxy": {"privileged": true}}}})));
    // Larger than the first block (the call overflows to the system allocator, the next
    // block is bigger), then small again.
    let mut big = request.clone();
    let app = big["object"]["spec"]["containers"][0].clone();
    big["object"]["spec"]["containers"] = (0..1000)
        .map(|i| {
            let mut c = app.clone();
            c["name"] = json!(format!("app-{i}"));
            c
        })
        .collect();
    big["object"]["metadata"]["annotations"]["example.com/huge"] = json!("x".repeat(3 << 20));
    payloads.insert(
        1,
        common::payload(&big, &json!({"namespaceSelection": "webhook"})),
    );

    // The engine runs in the arena first, so that anything it builds once (and keeps) is
    // built there; the references are computed afterwards.
    let mut cache = SettingsCache::default();
    let mut answers = Vec::new();
    let mut overflows = 0;
    for round in 0..6 {
        for (i, payload) in payloads.iter().enumerate() {
            let fills = cache.fills();
            let response = ALLOCATOR.run(|| {
                engine::validate_in_arena(
                    payload,
                    &mut cache,
                    |_| serde_json::from_slice(namespace).map_err(|e| e.to_string()),
                    || !ALLOCATOR.overflowed(),
                )
            });
            if cache.fills() != fills {
                cache.refresh();
            }
            overflows += usize::from(ALLOCATOR.overflowed());
            // Read after the call, as the host reads the module's answer.
            let answer: Value = serde_json::from_slice(&response)
                .unwrap_or_else(|e| panic!("round {round}, payload {i}: not JSON: {e}"));
            answers.push((round, i, answer));
        }
    }
    let expected: Vec<Value> = payloads
        .iter()
        .map(|p| serde_json::from_slice(&common::validate_reference(p, namespace).0).unwrap())
        .collect();
    for (round, i, answer) in &answers {
        assert!(
            *answer == expected[*i],
            "round {round}, payload {i}: the answer differs from the reference path"
        );
    }
    // The big Pod did not fit the block: its data was dropped, not forgotten.
    assert!(overflows > 0, "no call overflowed the block");
    println!(
        "arena: {} calls answered as the reference path ({overflows} overflowed the block)",
        answers.len()
    );
}
