//! Runs the engine natively on a request: `cargo run --example evaluate -- REQUEST.json
//! [SETTINGS.json] [NAMESPACE.json]`. The request may be a bare AdmissionRequest or a Pod
//! (then wrapped in a CREATE request in namespace `default`). Prints the verdict and the Pod.

use std::fs;

use istio_sidecar_injector::engine;
use istio_sidecar_injector::settings::Settings;
use serde_json::{Value, json};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let read = |p: &str| -> Result<Value, String> {
        let text = fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("{p}: {e}"))
    };
    let input = read(
        args.first()
            .ok_or("usage: evaluate REQUEST.json [SETTINGS.json] [NAMESPACE.json]")?,
    )?;
    let request = if input.get("kind") == Some(&json!("Pod")) {
        json!({"uid": "example", "kind": {"group": "", "version": "v1", "kind": "Pod"},
               "operation": "CREATE", "namespace": "default", "object": input})
    } else {
        input
    };
    let settings = match args.get(1) {
        Some(p) => Settings::from_value(&read(p)?)?,
        None => Settings::default(),
    };
    let namespace = match args.get(2) {
        Some(p) => read(p)?,
        None => json!({"metadata": {"name": "default", "labels": {"istio-injection": "enabled"}}}),
    };
    let verdict = engine::evaluate_value(&request, &settings, |_| Ok(namespace))?;
    let out = json!({
        "outcome": verdict.outcome.as_str(),
        "reason": verdict.reason.to_string(),
        "warnings": verdict.warnings,
        "message": verdict.message,
        "pod": verdict.mutated.map(|pod| pod.to_serde()),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
    );
    Ok(())
}
