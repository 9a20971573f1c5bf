//! `kwhost annotate` against the real `kwctl annotate` (`KWCTL=/path/to/kwctl`): both annotate
//! `../policy.wasm` with `policy-metadata.yml` and `README.md`, as `make` does, and
//!
//! - the modules carry the same `io.kubewarden.metadata` section, byte for byte, with
//!   `io.kubewarden.kwctl` the version of that kwctl;
//! - `kwctl inspect` (table and `-o yaml`) prints the same for both;
//! - the kwhost-annotated module passes every scenario through the real kwctl, and the
//!   kwctl-annotated one every scenario in the project's own host (the other two pairs are
//!   `tests/scenarios.rs` with and without `KWCTL`); with `POLICY_SERVER` set too, the
//!   kwhost-annotated module also goes through policy-server (`tests/policy_server.rs`,
//!   section `kwhost-annotated-scenarios`), while the kwctl-annotated one, which `make`
//!   writes with `KWCTL` set, goes through every section there.
//!
//! kwctl also re-encodes the code section, so the files differ in size; both sizes are printed.
//! Without `KWCTL` the test says it is skipped and passes.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};
use kwhost::host::CompileCache;
use kwhost::metadata::{KWCTL_VERSION, METADATA_SECTION, Metadata, read_custom_section};
use kwhost::policy_server::{env_path, version};
use kwhost::scenario::{InProcess, Kwctl, discover, report, run_all};

fn main() -> ExitCode {
    let Some(kwctl) = env_path("KWCTL") else {
        println!(
            "annotate parity skipped: KWCTL is not set \
             (KWCTL=/path/to/kwctl compares kwhost annotate with kwctl annotate)"
        );
        return ExitCode::SUCCESS;
    };
    match run(&kwctl) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            println!("annotate parity ... FAILED\n    error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(kwctl: &Path) -> Result<bool> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let policy = root.join("policy.wasm");
    if !policy.exists() {
        bail!(
            "{} not found: run `make policy.wasm` in the repository root",
            policy.display()
        );
    }
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("annotate-parity");
    std::fs::create_dir_all(&scratch)?;
    let annotate = |binary: &Path, output: &Path| -> Result<()> {
        let out = Command::new(binary)
            .arg("annotate")
            .args(["-m", "policy-metadata.yml", "-u", "README.md", "-o"])
            .arg(output)
            .arg("policy.wasm")
            .current_dir(&root)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {binary:?}"))?;
        if !out.status.success() {
            bail!(
                "{} annotate failed ({}): {}",
                binary.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };
    let by_kwhost = scratch.join("kwhost-annotated.wasm");
    let by_kwctl = scratch.join("kwctl-annotated.wasm");
    annotate(Path::new(env!("CARGO_BIN_EXE_kwhost")), &by_kwhost)?;
    annotate(kwctl, &by_kwctl)?;

    let kwctl_version = version(kwctl)?;
    println!(
        "annotate parity: {kwctl_version} ({}) against kwhost (mimics kwctl {KWCTL_VERSION}); \
         kwhost-annotated {} bytes, kwctl-annotated {} bytes",
        kwctl.display(),
        std::fs::metadata(&by_kwhost)?.len(),
        std::fs::metadata(&by_kwctl)?.len()
    );
    let mut failures = Vec::new();

    let section = |path: &Path| -> Result<Vec<u8>> {
        read_custom_section(&std::fs::read(path)?, METADATA_SECTION)?
            .with_context(|| format!("{} has no {METADATA_SECTION} section", path.display()))
    };
    let (ours, theirs) = (section(&by_kwhost)?, section(&by_kwctl)?);
    if ours != theirs {
        failures.push(format!(
            "the {METADATA_SECTION} sections differ:\n  kwhost: {}\n  kwctl:  {}",
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        ));
    }
    let recorded = serde_json::from_slice::<Metadata>(&theirs)?
        .annotations
        .and_then(|a| a.get("io.kubewarden.kwctl").cloned());
    if recorded.as_deref() != Some(KWCTL_VERSION)
        || !kwctl_version.ends_with(&format!(" {KWCTL_VERSION}"))
    {
        failures.push(format!(
            "kwctl records io.kubewarden.kwctl {recorded:?} and says {kwctl_version:?}; \
             kwhost mimics {KWCTL_VERSION} (kwhost::metadata::KWCTL_VERSION)"
        ));
    }

    for args in [&["inspect"][..], &["inspect", "-o", "yaml"]] {
        let inspect = |module: &Path| -> Result<String> {
            let out = Command::new(kwctl)
                .args(args)
                .arg(module)
                .stdin(Stdio::null())
                .output()?;
            if !out.status.success() {
                bail!(
                    "kwctl {} {} failed: {}",
                    args.join(" "),
                    module.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let (ours, theirs) = (inspect(&by_kwhost)?, inspect(&by_kwctl)?);
        if ours != theirs {
            let line = ours
                .lines()
                .zip(theirs.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            failures.push(format!(
                "`kwctl {}` differs from line {}: kwhost-annotated {:?}, kwctl-annotated {:?}",
                args.join(" "),
                line + 1,
                ours.lines().nth(line),
                theirs.lines().nth(line)
            ));
        } else {
            println!(
                "`kwctl {}` prints the same {} lines for both",
                args.join(" "),
                ours.lines().count()
            );
        }
    }

    let dirs: Vec<PathBuf> = discover(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios"))?;
    println!("\nthe kwhost-annotated module through {kwctl_version}:");
    let through_kwctl = Kwctl {
        binary: kwctl.to_path_buf(),
        wasm: by_kwhost.clone(),
        scratch: scratch.join("kwctl-scenarios"),
    };
    if !report(&run_all(&dirs, &through_kwctl, 8)) {
        failures.push("the kwhost-annotated module fails scenarios through kwctl".to_string());
    }
    println!("\nthe kwctl-annotated module in the project's own host:");
    let in_process = InProcess::new(
        &by_kwctl,
        &CompileCache::Directory(Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasmtime-cache")),
    )?;
    if !report(&run_all(&dirs, &in_process, 1)) {
        failures.push("the kwctl-annotated module fails scenarios in kwhost".to_string());
    }

    if failures.is_empty() {
        println!("\nannotate parity ... ok");
        Ok(true)
    } else {
        println!("\nannotate parity ... FAILED");
        for f in &failures {
            println!("    {f}");
        }
        Ok(false)
    }
}
