//! `kwhost`: the subset of kwctl this project's tests need, with kwctl's flags
//! and output, so scripts work with either binary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};

use kwhost::host::{CompileCache, HostContext, Policy, parse_settings};
use kwhost::metadata::{KWCTL_VERSION, Metadata, major_minor, release};
use kwhost::response::AdmissionRequest;
use kwhost::session::Session;

mod delivery;

const USAGE: &str = "\
kwhost: a kwctl-compatible host for Kubewarden waPC policies (subset of kwctl)

USAGE:
  kwhost run --request-path FILE [--settings-path FILE | --settings-json JSON]
             [--allow-context-aware] [--replay-host-capabilities-interactions SESSION.yml]
             [--disable-wasmtime-cache] MODULE.wasm
  kwhost annotate --metadata-path METADATA.yml [--usage-path README.md] --output-path OUT.wasm IN.wasm
  kwhost inspect MODULE.wasm
  kwhost session-namespace NAME [--namespace-json JSON | --not-found]
{DELIVERY_USAGE}

run        Evaluates one AdmissionRequest (or AdmissionReview; `-` reads stdin) and
           prints kwctl's AdmissionResponse line on stdout. Host capability calls are
           answered only from the replay session; Kubernetes resources are readable
           only with --allow-context-aware and if listed in the module's
           contextAwareResources. Compiled modules are cached under
           $KWHOST_CACHE_DIR (default: $XDG_CACHE_HOME/kwhost or ~/.cache/kwhost).
annotate   Embeds the metadata (custom section io.kubewarden.metadata) as kwctl does.
inspect    Prints the embedded metadata JSON.
session-namespace
           Prints a kwctl session file answering the policy's get_resource(v1/Namespace
           NAME) with the given Namespace object (or kwctl's not-found error).
{DELIVERY_HELP}

Short flags as kwctl: -r request, -s settings, -m metadata, -u usage, -o output.
Exit codes: 0 evaluation ran (allowed or not), 1 error, 2 usage error.";

/// [`USAGE`] with the delivery commands filled in.
fn usage() -> String {
    USAGE
        .replace("{DELIVERY_USAGE}", delivery::USAGE)
        .replace("{DELIVERY_HELP}", delivery::HELP)
}

/// A usage error (exit code 2), as opposed to a runtime failure (exit code 1).
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage_error(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// Parsed command-line flags: `--name value`, `--name=value`, `-x value`,
/// boolean switches, and positional arguments.
struct Args {
    values: Vec<(String, String)>,
    switches: Vec<String>,
    positional: Vec<String>,
}

impl Args {
    fn parse(raw: &[String], with_value: &[(&str, char)], switches: &[&str]) -> Result<Self> {
        let mut args = Args {
            values: Vec::new(),
            switches: Vec::new(),
            positional: Vec::new(),
        };
        let mut it = raw.iter();
        while let Some(arg) = it.next() {
            if let Some(long) = arg.strip_prefix("--") {
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (long, None),
                };
                if switches.contains(&name) {
                    if inline.is_some() {
                        return Err(usage_error(format!("--{name} takes no value")));
                    }
                    args.switches.push(name.to_string());
                } else if with_value.iter().any(|(n, _)| *n == name) {
                    let value = match inline {
                        Some(v) => v,
                        None => it
                            .next()
                            .cloned()
                            .ok_or_else(|| usage_error(format!("--{name} needs a value")))?,
                    };
                    args.values.push((name.to_string(), value));
                } else {
                    return Err(usage_error(format!("unknown flag --{name}")));
                }
            } else if arg.len() == 2 && arg.starts_with('-') {
                let short = arg.chars().nth(1).unwrap_or('-');
                let (name, _) = with_value
                    .iter()
                    .find(|(_, s)| *s == short)
                    .ok_or_else(|| usage_error(format!("unknown flag {arg}")))?;
                let value = it
                    .next()
                    .cloned()
                    .ok_or_else(|| usage_error(format!("{arg} needs a value")))?;
                args.values.push((name.to_string(), value));
            } else {
                args.positional.push(arg.clone());
            }
        }
        Ok(args)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str> {
        self.value(name)
            .ok_or_else(|| usage_error(format!("--{name} is required")))
    }

    fn switch(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }

    fn one_positional(&self, what: &str) -> Result<&str> {
        match self.positional.as_slice() {
            [one] => Ok(one),
            [] => Err(usage_error(format!("missing {what}"))),
            more => Err(usage_error(format!("expected one {what}, got {more:?}"))),
        }
    }
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let result = match raw.first().map(String::as_str) {
        Some("run") => cmd_run(&raw[1..]),
        Some("annotate") => cmd_annotate(&raw[1..]),
        Some("inspect") => cmd_inspect(&raw[1..]),
        Some("session-namespace") => cmd_session_namespace(&raw[1..]),
        Some("push") => delivery::cmd_push(&raw[1..]),
        Some("pull") => delivery::cmd_pull(&raw[1..]),
        Some("manifests") => delivery::cmd_manifests(&raw[1..]),
        Some("artifacthub") => delivery::cmd_artifacthub(&raw[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{}", usage());
            Ok(())
        }
        Some("-V" | "--version") => {
            println!(
                "kwhost {} (mimics kwctl {KWCTL_VERSION})",
                env!("CARGO_PKG_VERSION")
            );
            Ok(())
        }
        Some(other) => Err(usage_error(format!("unknown command {other:?}"))),
        None => Err(usage_error("missing command")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<UsageError>().is_some() => {
            eprintln!("error: {e}\n\n{}", usage());
            ExitCode::from(2)
        }
        Err(e) => {
            // Same shape as kwctl (anyhow error returned from main).
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn module_path(uri: &str) -> PathBuf {
    PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri))
}

fn cache_dir() -> CompileCache {
    if let Some(dir) = std::env::var_os("KWHOST_CACHE_DIR") {
        return CompileCache::Directory(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")));
    base.map_or(CompileCache::Disabled, |b| {
        CompileCache::Directory(b.join("kwhost"))
    })
}

fn cmd_run(raw: &[String]) -> Result<()> {
    let args = Args::parse(
        raw,
        &[
            ("request-path", 'r'),
            ("settings-path", 's'),
            ("settings-json", '\0'),
            ("replay-host-capabilities-interactions", '\0'),
        ],
        &["allow-context-aware", "disable-wasmtime-cache"],
    )?;
    let module = module_path(args.one_positional("policy module")?);
    let request_path = args.required("request-path")?;

    let request_text = if request_path == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| anyhow!("Error reading request from stdin: {e}"))?
    } else {
        std::fs::read_to_string(request_path)
            .map_err(|e| anyhow!("Error opening request file {request_path}; {e}"))?
    };
    let settings = if let Some(path) = args.value("settings-path") {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("Cannot open settings file {path}: {e}"))?;
        parse_settings(&text).map_err(|e| anyhow!("Cannot parse settings file {path}: {e}"))?
    } else if let Some(json) = args.value("settings-json") {
        serde_json::from_str::<serde_json::Value>(json)
            .map_err(|e| anyhow!("Cannot parse settings JSON: {e}"))?;
        parse_settings(json)?
    } else {
        serde_json::Map::new()
    };
    let session = args
        .value("replay-host-capabilities-interactions")
        .map(|p| Session::from_file(Path::new(p)))
        .transpose()?;

    let cache = if args.switch("disable-wasmtime-cache") {
        CompileCache::Disabled
    } else {
        cache_dir()
    };
    let policy = Policy::load(&module, &cache)?;
    check_minimum_version(policy.metadata.as_ref())?;
    let request = AdmissionRequest::from_json(&request_text)?;

    let allow_context_aware = args.switch("allow-context-aware");
    if !allow_context_aware
        && policy
            .metadata
            .as_ref()
            .is_some_and(|m| !m.context_aware_resources.is_empty())
    {
        eprintln!(
            "WARN: Policy requires access to Kubernetes resources at evaluation time. During this execution the access to Kubernetes resources is denied. This can cause the policy to not behave properly"
        );
    }
    let ctx = HostContext {
        allowed_resources: policy.allowed_resources(allow_context_aware),
        session,
    };
    if !ctx.allowed_resources.is_empty() && ctx.session.is_none() {
        bail!(
            "the policy may read Kubernetes resources but kwhost has no cluster: pass --replay-host-capabilities-interactions SESSION.yml"
        );
    }

    let instance = policy.instantiate(&ctx)?;
    let settings_response = instance.validate_settings(&settings);
    let outcome = if settings_response.valid {
        Ok(instance.validate(&request, &settings))
    } else {
        Err(anyhow!(
            "Provided settings are not valid: {}",
            settings_response.message.unwrap_or_default()
        ))
    };
    for line in instance.take_logs() {
        eprintln!("policy log: {line}");
    }
    let leftovers = instance.session_leftovers();
    if leftovers > 0 {
        eprintln!("WARN: Some of the recorded exchanges have not been replayed ({leftovers} left)");
    }
    println!("{}", outcome?.to_line());
    Ok(())
}

/// kwctl refuses to run a policy that needs a newer Kubewarden: semver order, with the
/// policy's patch ignored, so a pre-release such as 1.36.0-beta.1 is older than 1.36.0.
fn check_minimum_version(metadata: Option<&Metadata>) -> Result<()> {
    let Some(wanted) = metadata.and_then(|m| m.minimum_kubewarden_version.as_deref()) else {
        return Ok(());
    };
    let (Some((major, minor)), Some((have, pre_release))) =
        (major_minor(wanted), release(KWCTL_VERSION))
    else {
        return Ok(());
    };
    let need = (major, minor, 0);
    if have < need || (have == need && pre_release) {
        bail!(
            "Policy required Kubewarden version {major}.{minor}.0 or greater. But it's running on {KWCTL_VERSION}"
        );
    }
    Ok(())
}

fn cmd_annotate(raw: &[String]) -> Result<()> {
    let args = Args::parse(
        raw,
        &[
            ("metadata-path", 'm'),
            ("usage-path", 'u'),
            ("output-path", 'o'),
        ],
        &[],
    )?;
    let input = PathBuf::from(args.one_positional("WebAssembly module to annotate")?);
    let metadata = PathBuf::from(args.required("metadata-path")?);
    let output = PathBuf::from(args.required("output-path")?);
    let usage = args.value("usage-path").map(PathBuf::from);
    kwhost::annotate::annotate_file(&input, &metadata, usage.as_deref(), &output)?;
    Ok(())
}

fn cmd_inspect(raw: &[String]) -> Result<()> {
    let args = Args::parse(raw, &[], &[])?;
    let path = module_path(args.one_positional("policy module")?);
    let module = std::fs::read(&path).with_context(|| format!("cannot read {path:?}"))?;
    match kwhost::metadata::read_custom_section(&module, kwhost::metadata::METADATA_SECTION)? {
        Some(data) => {
            println!("{}", String::from_utf8_lossy(&data));
            Ok(())
        }
        None => bail!("No Kubewarden metadata found inside of {path:?}"),
    }
}

fn cmd_session_namespace(raw: &[String]) -> Result<()> {
    let args = Args::parse(raw, &[("namespace-json", '\0')], &["not-found"])?;
    let name = args.one_positional("namespace name")?;
    let namespace = match (args.value("namespace-json"), args.switch("not-found")) {
        (Some(_), true) => {
            return Err(usage_error(
                "--namespace-json and --not-found exclude each other",
            ));
        }
        (Some(json), false) => {
            Some(serde_json::from_str(json).context("--namespace-json is not JSON")?)
        }
        (None, true) => None,
        (None, false) => Some(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name}
        })),
    };
    print!(
        "{}",
        Session::namespace_lookup(name, namespace.as_ref()).to_yaml()?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    const VALUES: &[(&str, char)] = &[("request-path", 'r'), ("settings-json", '\0')];

    #[test]
    fn long_short_and_inline_flags() {
        let args = Args::parse(
            &strings(&[
                "-r",
                "req.json",
                "--settings-json={\"a\":1}",
                "--allow-context-aware",
                "policy.wasm",
            ]),
            VALUES,
            &["allow-context-aware"],
        )
        .unwrap();
        assert_eq!(args.value("request-path"), Some("req.json"));
        assert_eq!(args.value("settings-json"), Some("{\"a\":1}"));
        assert!(args.switch("allow-context-aware"));
        assert_eq!(args.one_positional("module").unwrap(), "policy.wasm");
        // The last occurrence wins.
        let args = Args::parse(
            &strings(&["--request-path", "a", "--request-path", "b"]),
            VALUES,
            &[],
        )
        .unwrap();
        assert_eq!(args.value("request-path"), Some("b"));
    }

    #[test]
    fn usage_errors() {
        let is_usage = |r: Result<Args>| {
            r.err()
                .is_some_and(|e| e.downcast_ref::<UsageError>().is_some())
        };
        assert!(is_usage(Args::parse(&strings(&["--nope"]), VALUES, &[])));
        assert!(is_usage(Args::parse(&strings(&["-x", "1"]), VALUES, &[])));
        assert!(is_usage(Args::parse(
            &strings(&["--request-path"]),
            VALUES,
            &[]
        )));
        assert!(is_usage(Args::parse(
            &strings(&["--flag=1"]),
            VALUES,
            &["flag"]
        )));
        let args = Args::parse(&strings(&["a.wasm", "b.wasm"]), VALUES, &[]).unwrap();
        assert!(args.one_positional("module").is_err());
        assert!(args.required("request-path").is_err());
    }

    #[test]
    fn minimum_version() {
        let md = |v: &str| {
            let mut m = Metadata::from_yaml("rules: []\nmutating: false\n").unwrap();
            m.minimum_kubewarden_version = Some(v.to_string());
            m
        };
        assert!(check_minimum_version(None).is_ok());
        assert!(check_minimum_version(Some(&md("1.35.9"))).is_ok());
        assert!(check_minimum_version(Some(&md("1.20.0"))).is_ok());
        // What kwctl 1.36.0-beta.1 says: its pre-release is older than 1.36.0.
        for newer in ["1.36.0", "1.36.7", "1.37.0", "2.0.0"] {
            let (major, minor) = major_minor(newer).unwrap();
            let err = check_minimum_version(Some(&md(newer)))
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                format!(
                    "Policy required Kubewarden version {major}.{minor}.0 or greater. But it's running on 1.36.0-beta.1"
                )
            );
        }
    }
}
