//! The Artifact Hub package: `artifacthub/artifacthub-pkg.yml` is what
//! `make artifacthub` (`kwhost artifacthub`, kwctl's `scaffold artifacthub`)
//! writes from `policy-metadata.yml` and `questions-ui.yml`; the versions of
//! Cargo.toml, the metadata and the package agree; and `questions-ui.yml`
//! offers every top-level setting of `src/settings/read.rs` with a type, a default
//! and a help text.

mod support;

use std::collections::BTreeSet;
use std::process::Output;

use serde_yaml::Value;
use support::{TempDir, kwhost, root};

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn yaml(relative: &str) -> Value {
    serde_yaml::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// `version` of Cargo.toml's `[package]` (what `make artifacthub` passes).
fn cargo_version() -> String {
    let text = read("Cargo.toml");
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(v) = line.strip_prefix("version") {
            return v
                .trim()
                .trim_start_matches('=')
                .trim()
                .trim_matches('"')
                .to_string();
        }
    }
    panic!("no [package] version in Cargo.toml");
}

/// Runs `make artifacthub`'s command on a copy of the committed file (so the
/// committed createdAt is the previous one) and returns the output.
fn regenerate(dir: &TempDir, metadata: &str, version: &str) -> (Output, String) {
    let output = dir.0.join("artifacthub-pkg.yml");
    std::fs::copy(root().join("artifacthub/artifacthub-pkg.yml"), &output).unwrap();
    let out = kwhost(&[
        "artifacthub",
        "--metadata-path",
        metadata,
        "--version",
        version,
        "--questions-path",
        "questions-ui.yml",
        "--output",
        output.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&output).unwrap();
    (out, text)
}

#[test]
fn package_is_what_make_artifacthub_writes() {
    let dir = TempDir::new("artifacthub-drift");
    let (out, generated) = regenerate(&dir, "policy-metadata.yml", &cargo_version());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        generated == read("artifacthub/artifacthub-pkg.yml"),
        "artifacthub/artifacthub-pkg.yml differs from what `make artifacthub` writes: run `make artifacthub`"
    );
}

#[test]
fn versions_agree() {
    let version = cargo_version();
    let metadata = yaml("policy-metadata.yml");
    assert_eq!(
        metadata["annotations"]["io.kubewarden.policy.version"].as_str(),
        Some(version.as_str()),
        "Cargo.toml and io.kubewarden.policy.version must be bumped together"
    );
    let pkg = yaml("artifacthub/artifacthub-pkg.yml");
    assert_eq!(pkg["version"].as_str(), Some(version.as_str()));
    let image = pkg["containersImages"][0]["image"].as_str().unwrap();
    assert_eq!(
        image,
        format!(
            "{}:v{version}",
            metadata["annotations"]["io.kubewarden.policy.ociUrl"]
                .as_str()
                .unwrap()
        )
    );
    let links = pkg["links"].as_sequence().unwrap();
    assert!(
        links.iter().any(|l| l["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/releases/download/v{version}/policy.wasm"))),
        "{links:?}"
    );
}

#[test]
fn package_carries_the_metadata_and_the_questions() {
    let pkg = yaml("artifacthub/artifacthub-pkg.yml");
    let metadata = yaml("policy-metadata.yml");
    let annotations = &pkg["annotations"];
    assert_eq!(annotations["kubewarden/mutation"], "true");
    assert_eq!(
        annotations["kubewarden/resources"],
        metadata["annotations"]["io.artifacthub.resources"]
    );
    assert_eq!(
        annotations["kubewarden/questions-ui"].as_str(),
        Some(read("questions-ui.yml").as_str())
    );
    let rules: Value =
        serde_yaml::from_str(annotations["kubewarden/rules"].as_str().unwrap()).unwrap();
    assert_eq!(rules, metadata["rules"]);
    let context: Value = serde_yaml::from_str(
        annotations["kubewarden/contextAwareResources"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(context, metadata["contextAwareResources"]);
    for key in [
        "name",
        "displayName",
        "createdAt",
        "description",
        "license",
        "homeURL",
        "install",
        "maintainers",
    ] {
        assert!(pkg.get(key).is_some(), "{key} missing");
    }
    assert_eq!(pkg["provider"]["name"], "kubewarden");
}

#[test]
fn created_at_is_kept_until_the_version_changes() {
    let committed = yaml("artifacthub/artifacthub-pkg.yml");
    let dir = TempDir::new("artifacthub-version");
    // A mismatch between Cargo.toml's version and the metadata is refused.
    let (out, _) = regenerate(&dir, "policy-metadata.yml", "99.0.0");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("version mismatch"));
    // A new version gets a new createdAt.
    let metadata = read("policy-metadata.yml").replace(
        &format!("io.kubewarden.policy.version: {}", cargo_version()),
        "io.kubewarden.policy.version: 99.0.0",
    );
    let bumped = dir.0.join("metadata.yml");
    std::fs::write(&bumped, metadata).unwrap();
    let (out, text) = regenerate(&dir, bumped.to_str().unwrap(), "99.0.0");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pkg: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(pkg["version"], "99.0.0");
    assert_ne!(pkg["createdAt"], committed["createdAt"]);
    assert!(
        pkg["containersImages"][0]["image"]
            .as_str()
            .unwrap()
            .ends_with(":v99.0.0")
    );
}

/// The top-level settings keys: `SETTINGS_KEYS` of src/settings/read.rs, the list the policy
/// reads and outside of which it refuses a key.
fn settings_keys() -> Vec<String> {
    let text = read("src/settings/read.rs");
    let start = text
        .find("const SETTINGS_KEYS: &[&str] = &[")
        .expect("SETTINGS_KEYS in src/settings/read.rs");
    let body = &text[start..];
    let body = &body[body.find('[').unwrap() + 1..body.find("];").unwrap()];
    let keys: Vec<String> = body
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    assert!(keys.len() > 5, "parsed {keys:?}");
    keys
}

#[test]
fn questions_cover_every_setting() {
    let questions = yaml("questions-ui.yml");
    let questions = questions["questions"]
        .as_sequence()
        .expect("a questions list");
    let variables: Vec<&str> = questions
        .iter()
        .map(|q| q["variable"].as_str().unwrap())
        .collect();
    let keys = settings_keys();
    for key in &keys {
        assert!(
            variables
                .iter()
                .any(|v| v == key || v.starts_with(&format!("{key}."))),
            "setting {key} has no question in questions-ui.yml"
        );
    }
    let known: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    for q in questions {
        let variable = q["variable"].as_str().unwrap();
        let top = variable.split('.').next().unwrap();
        assert!(known.contains(top), "question {variable} is not a setting");
        for field in ["label", "type", "description"] {
            let value = q.get(field).and_then(Value::as_str).unwrap_or_default();
            assert!(
                !value.trim().is_empty(),
                "question {variable}: {field} is missing"
            );
        }
        assert!(
            q.get("default").is_some(),
            "question {variable}: default is missing"
        );
        check_nested(variable, q);
    }
}

/// Types and defaults of enum options and nested questions.
fn check_nested(variable: &str, q: &Value) {
    let kind = q["type"].as_str().unwrap();
    let known = [
        "string",
        "int",
        "boolean",
        "enum",
        "array[",
        "map[",
        "sequence[",
        "password",
        "multiline",
    ];
    assert!(
        known.contains(&kind),
        "question {variable}: unknown type {kind}"
    );
    if kind == "enum" {
        let options: Vec<&Value> = q["options"]
            .as_sequence()
            .expect("enum options")
            .iter()
            .collect();
        assert!(
            options.contains(&&q["default"]),
            "question {variable}: default is not an option"
        );
    }
    for nested in ["sequence_questions", "subquestions"] {
        for sub in q
            .get(nested)
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let name = format!("{variable}.{}", sub["variable"].as_str().unwrap());
            assert!(
                sub.get("type").is_some() && sub.get("default").is_some(),
                "{name}: type and default"
            );
            check_nested(&name, sub);
        }
    }
}
