//! Writes `answers.rs`: for each benchmark request of `tests/data/`, its uid and the
//! policy's answer to it, as the engine gives it with the benchmark's settings.

use std::fmt::Write as _;
use std::path::Path;

use istio_sidecar_injector::protocol;
use serde_json::{Value, json};

/// The requests `make bench` times, and the settings it times them with.
const REQUESTS: [&str; 3] = [
    "pod-1-containers.json",
    "pod-3-containers.json",
    "pod-20-containers.json",
];
const SETTINGS: &str = r#"{"namespaceSelection":"webhook"}"#;

fn main() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("answers.rs");
    let settings: Value = serde_json::from_str(SETTINGS).expect("settings");
    let mut code = String::from(
        "/// (request uid, the policy's answer).\npub const ANSWERS: &[(&str, &[u8])] = &[\n",
    );
    for name in REQUESTS {
        let path = data.join(name);
        println!("cargo::rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).expect("benchmark request");
        let request: Value = serde_json::from_str(&text).expect("request JSON");
        let request = request.get("request").cloned().unwrap_or(request);
        let payload = json!({"request": request, "settings": settings}).to_string();
        let answer = protocol::validate(payload.as_bytes(), |_| {
            Err("the benchmark runs in webhook mode".to_string())
        });
        let uid = request["uid"].as_str().expect("the request has a uid");
        writeln!(code, "    ({uid:?}, &{answer:?}),").expect("write");
    }
    code.push_str("];\n");
    std::fs::write(out, code).expect("write answers.rs");
    println!("cargo::rerun-if-changed=../../src");
}
