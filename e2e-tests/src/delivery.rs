//! kwhost's delivery commands: `push`, `pull`, `manifests`, `artifacthub`
//! (a module of the `kwhost` binary; the work is done in the library's
//! [`kwhost::push`], [`kwhost::manifests`] and [`kwhost::artifacthub`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};

use super::{Args, usage_error};
use kwhost::push::{RemoteOptions, Sources};

pub const USAGE: &str =
    "  kwhost push [-o text|json] [--sources-path FILE] [--docker-config-json-path DIR] [--force]
             MODULE.wasm [registry://]HOST[:PORT]/REPOSITORY:TAG
  kwhost pull [--sources-path FILE] [--docker-config-json-path DIR] -o OUT.wasm
             [registry://]HOST[:PORT]/REPOSITORY(:TAG|@DIGEST)
  kwhost manifests --metadata-path METADATA.yml [--settings-path SETTINGS.yml]
             [--revision R]... [--module URI] [--output-dir DIR]
  kwhost artifacthub --metadata-path METADATA.yml --version X.Y.Z
             [--questions-path QUESTIONS.yml] [--output FILE]";

pub const HELP: &str = "\
push       Pushes an annotated module to an OCI registry as kwctl does and prints the
           digest-pinned reference (`-o json`: {\"immutable_ref\": ...}). HTTPS first;
           registries in the sources file's insecure_sources (kwctl's format) and
           loopback registries (localhost, 127.0.0.0/8, [::1]) are retried without
           certificate checks, then over plain HTTP. Credentials come from Docker's
           config.json. Unannotated modules are refused unless --force.
pull       Pulls a policy and writes its Wasm layer to OUT.wasm.
manifests  Writes the ClusterAdmissionPolicy manifests for both namespaceSelection
           modes (lookup.yml, webhook.yml; lookup-R.yml, webhook-R.yml for revision R).
artifacthub
           Writes artifacthub-pkg.yml as `kwctl scaffold artifacthub` does. --version
           must equal io.kubewarden.policy.version; createdAt is kept from an existing
           output file of the same version.";

fn remote_options(args: &Args) -> Result<RemoteOptions> {
    let sources = match args.value("sources-path") {
        Some(path) => Sources::from_file(Path::new(path))?,
        None => Sources::default(),
    };
    Ok(RemoteOptions {
        sources,
        docker_config_dir: args.value("docker-config-json-path").map(PathBuf::from),
    })
}

pub fn cmd_push(raw: &[String]) -> Result<()> {
    let args = Args::parse(
        raw,
        &[
            ("output", 'o'),
            ("sources-path", '\0'),
            ("docker-config-json-path", '\0'),
        ],
        &["force"],
    )?;
    let (module_path, destination) = match args.positional.as_slice() {
        [module, destination] => (module, destination),
        _ => {
            return Err(usage_error(
                "push needs the module and the destination: kwhost push MODULE.wasm HOST/REPOSITORY:TAG",
            ));
        }
    };
    let json = match args.value("output").unwrap_or("text") {
        "text" => false,
        "json" => true,
        other => {
            return Err(usage_error(format!(
                "--output must be text or json, not {other:?}"
            )));
        }
    };
    let opts = remote_options(&args)?;
    let path = module_path.strip_prefix("file://").unwrap_or(module_path);
    let module = std::fs::read(path).map_err(|e| anyhow!("Cannot open policy file {path}: {e}"))?;
    let pushed = kwhost::push::push_module(&module, destination, &opts, args.switch("force"))?;
    for key in &pushed.dropped {
        eprintln!(
            "WARN: annotation {key} is a multi-line string, it will be removed from the OCI manifest"
        );
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "immutable_ref": pushed.immutable_ref })
        );
    } else {
        println!("Policy successfully pushed: {}", pushed.immutable_ref);
    }
    Ok(())
}

pub fn cmd_pull(raw: &[String]) -> Result<()> {
    let args = Args::parse(
        raw,
        &[
            ("output-path", 'o'),
            ("sources-path", '\0'),
            ("docker-config-json-path", '\0'),
        ],
        &[],
    )?;
    let source = args.one_positional("policy reference")?;
    let output = PathBuf::from(args.required("output-path")?);
    let opts = remote_options(&args)?;
    let pulled = kwhost::push::pull(source, &opts)?;
    std::fs::write(&output, &pulled.module)
        .with_context(|| format!("cannot write {}", output.display()))?;
    Ok(())
}

pub fn cmd_manifests(raw: &[String]) -> Result<()> {
    let args = Args::parse(
        raw,
        &[
            ("metadata-path", 'm'),
            ("settings-path", 's'),
            ("revision", '\0'),
            ("module", '\0'),
            ("output-dir", '\0'),
        ],
        &[],
    )?;
    if !args.positional.is_empty() {
        return Err(usage_error(format!(
            "manifests takes no positional arguments, got {:?}",
            args.positional
        )));
    }
    let metadata_path = args.required("metadata-path")?;
    let metadata = std::fs::read_to_string(metadata_path)
        .map_err(|e| anyhow!("Error opening metadata file {metadata_path}: {e}"))?;
    let settings = args
        .value("settings-path")
        .map(|p| {
            std::fs::read_to_string(p).map_err(|e| anyhow!("Cannot open settings file {p}: {e}"))
        })
        .transpose()?;
    let mut revisions: Vec<String> = args
        .values
        .iter()
        .filter(|(n, _)| n == "revision")
        .map(|(_, v)| v.clone())
        .collect();
    if revisions.is_empty() {
        revisions.push(String::new());
    }
    let files = kwhost::manifests::generate(
        &metadata,
        settings.as_deref(),
        &revisions,
        args.value("module"),
    )?;
    match args.value("output-dir") {
        Some(dir) => {
            let dir = Path::new(dir);
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, text) in &files {
                let path = dir.join(name);
                std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
        None => {
            let all: Vec<&str> = files.iter().map(|(_, text)| text.as_str()).collect();
            print!("{}", all.join("---\n"));
        }
    }
    Ok(())
}

pub fn cmd_artifacthub(raw: &[String]) -> Result<()> {
    let args = Args::parse(
        raw,
        &[
            ("metadata-path", 'm'),
            ("questions-path", 'q'),
            ("version", 'v'),
            ("output", 'o'),
        ],
        &[],
    )?;
    if !args.positional.is_empty() {
        return Err(usage_error(format!(
            "artifacthub takes no positional arguments, got {:?}",
            args.positional
        )));
    }
    let metadata_path = args.required("metadata-path")?;
    let metadata = std::fs::read_to_string(metadata_path)
        .map_err(|e| anyhow!("Error opening metadata file: {e}"))?;
    let questions = args
        .value("questions-path")
        .map(|p| {
            std::fs::read_to_string(p).map_err(|e| anyhow!("Error reading questions file: {e}"))
        })
        .transpose()?;
    let version = args.required("version")?;
    let output = args.value("output").map(PathBuf::from);
    let previous = output
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok());
    let created_at = kwhost::artifacthub::created_at(previous.as_deref(), version);
    let text =
        kwhost::artifacthub::generate(&metadata, questions.as_deref(), version, &created_at)?;
    match output {
        Some(path) => std::fs::write(&path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}
