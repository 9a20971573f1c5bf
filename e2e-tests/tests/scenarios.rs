//! Runs every scenario under `e2e-tests/scenarios/*/` against the built policy
//! (`../annotated-policy.wasm`, or `$POLICY_WASM`), through this crate's waPC
//! host or, when `$KWCTL` names a kwctl binary, through `$KWCTL run`.
//!
//! A custom harness (`harness = false`): each scenario is reported by name,
//! all run, then the failed ones are listed and the last line is
//! `N passed, M failed`. `$SCENARIOS_DIR` replaces `e2e-tests/scenarios`. Arguments that are not flags filter scenarios by
//! substring (`cargo test --test scenarios -- labelled`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kwhost::host::CompileCache;
use kwhost::scenario::{Evaluator, InProcess, Kwctl, Scenario, check, discover, policy_wasm};

fn main() -> ExitCode {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();

    let wasm = policy_wasm(manifest_dir);
    if !wasm.exists() {
        eprintln!(
            "scenarios: policy module {} not found.\n\
             Build it first: run `make annotated-policy.wasm` in the repository root \
             (or point POLICY_WASM at an annotated policy module).",
            wasm.display()
        );
        println!("0 passed, 1 failed");
        return ExitCode::FAILURE;
    }

    let evaluator: Box<dyn Evaluator> = match std::env::var_os("KWCTL") {
        Some(kwctl) => {
            println!(
                "scenarios: running through kwctl {}",
                PathBuf::from(&kwctl).display()
            );
            Box::new(Kwctl {
                binary: PathBuf::from(kwctl),
                wasm: wasm.clone(),
                scratch: Path::new(env!("CARGO_TARGET_TMPDIR")).join("kwctl-scenarios"),
            })
        }
        None => {
            let cache = CompileCache::Directory(
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasmtime-cache"),
            );
            match InProcess::new(&wasm, &cache) {
                Ok(host) => Box::new(host),
                Err(e) => {
                    eprintln!("scenarios: cannot load {}: {e:#}", wasm.display());
                    println!("0 passed, 1 failed");
                    return ExitCode::FAILURE;
                }
            }
        }
    };

    let root = std::env::var_os("SCENARIOS_DIR")
        .map_or_else(|| manifest_dir.join("scenarios"), PathBuf::from);
    let dirs = match discover(&root) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("scenarios: {e:#}");
            println!("0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "scenarios: {} in {}, policy {}",
        dirs.len(),
        root.display(),
        wasm.display()
    );

    let mut passed = 0;
    let mut failed: Vec<String> = Vec::new();
    for dir in dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let result = Scenario::load(&dir).and_then(|s| check(&s, evaluator.as_ref()));
        match result {
            Ok(failures) if failures.is_empty() => {
                println!("scenario {name} ... ok");
                passed += 1;
            }
            Ok(failures) => {
                println!("scenario {name} ... FAILED");
                for f in failures {
                    println!("    {f}");
                }
                failed.push(name);
            }
            Err(e) => {
                println!("scenario {name} ... FAILED");
                println!("    error: {e:#}");
                failed.push(name);
            }
        }
    }

    if !failed.is_empty() {
        println!("\nfailed scenarios:");
        for name in &failed {
            println!("    {name}");
        }
    }
    println!("{passed} passed, {} failed", failed.len());
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
