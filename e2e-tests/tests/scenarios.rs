//! Runs every scenario under `e2e-tests/scenarios/*/` against the built policy
//! (`../annotated-policy.wasm`, or `$POLICY_WASM`), through this crate's waPC
//! host or, when `$KWCTL` names a kwctl binary, through `$KWCTL run`.
//!
//! A custom harness (`harness = false`): each scenario is reported by name,
//! all run, then the failed ones are listed and the last line is
//! `N passed, M failed`. `$SCENARIOS_DIR` replaces `e2e-tests/scenarios`. Arguments that are not flags filter scenarios by
//! substring (`cargo test --test scenarios -- labelled`). kwctl runs are
//! separate processes that mostly wait, so they run `$SCENARIO_JOBS` (default 8)
//! at a time; the in-process host runs one at a time unless told otherwise.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kwhost::host::CompileCache;
use kwhost::policy_server::{env_path, version};
use kwhost::scenario::{Evaluator, InProcess, Kwctl, discover, policy_wasm, report, run_all};

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

    let jobs = |default: usize| {
        std::env::var("SCENARIO_JOBS")
            .ok()
            .and_then(|j| j.parse().ok())
            .unwrap_or(default)
    };
    let (evaluator, jobs): (Box<dyn Evaluator + Sync>, usize) = match env_path("KWCTL") {
        Some(kwctl) => {
            let shown = version(&kwctl).unwrap_or_else(|e| format!("{e:#}"));
            println!("scenarios: running through {shown} ({})", kwctl.display());
            (
                Box::new(Kwctl {
                    binary: kwctl,
                    wasm: wasm.clone(),
                    scratch: Path::new(env!("CARGO_TARGET_TMPDIR")).join("kwctl-scenarios"),
                }),
                jobs(8),
            )
        }
        None => {
            let cache = CompileCache::Directory(
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasmtime-cache"),
            );
            match InProcess::new(&wasm, &cache) {
                Ok(host) => (Box::new(host), jobs(1)),
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
    let selected: Vec<PathBuf> = dirs
        .into_iter()
        .filter(|dir| {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
        })
        .collect();

    if report(&run_all(&selected, evaluator.as_ref(), jobs)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
