//! `kwctl scaffold artifacthub`: `artifacthub-pkg.yml` from the policy
//! metadata and `questions-ui.yml` (kwctl `scaffold/artifacthub.rs`,
//! policy-evaluator `policy_artifacthub.rs`): the same fields in the same
//! order, serialized with the same serde_yaml, so the output is kwctl's.
//!
//! Differences, on purpose: the version is given (`make artifacthub` takes it
//! from Cargo.toml) and must equal `io.kubewarden.policy.version`; `createdAt`
//! is given too ([`created_at`] keeps an existing file's value while the
//! version is unchanged, so regenerating is reproducible).

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use serde::Serialize;

use crate::metadata::{Metadata, validate_semver};

/// kwctl's comment header (with its trailing space).
pub const HEADER: &str = "# Kubewarden Artifacthub Package config
#
# Use this config to submit the policy to https://artifacthub.io.
#
# This config can be saved to its default location with:
#   kwctl scaffold artifacthub > artifacthub-pkg.yml ";

const RECOMMENDATION: &str =
    "https://artifacthub.io/packages/helm/kubewarden/kubewarden-controller";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactHubPkg {
    version: String,
    name: String,
    display_name: String,
    created_at: String,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    license: Option<String>,
    #[serde(rename = "homeURL", skip_serializing_if = "Option::is_none")]
    home_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    containers_images: Option<Vec<ContainerImage>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keywords: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    links: Option<Vec<Link>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    install: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maintainers: Option<Vec<Maintainer>>,
    provider: Named,
    recommendations: Vec<Url>,
    annotations: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct ContainerImage {
    name: &'static str,
    image: String,
}

#[derive(Serialize)]
struct Link {
    name: &'static str,
    url: String,
}

#[derive(Serialize, Debug, PartialEq)]
struct Maintainer {
    name: String,
    email: String,
}

#[derive(Serialize)]
struct Named {
    name: &'static str,
}

#[derive(Serialize)]
struct Url {
    url: &'static str,
}

/// The `createdAt` to write: the one of `previous` (the existing
/// artifacthub-pkg.yml) when it is for the same `version`, else now (UTC).
pub fn created_at(previous: Option<&str>, version: &str) -> String {
    let kept = previous
        .and_then(|text| serde_yaml::from_str::<serde_yaml::Value>(text).ok())
        .and_then(|doc| {
            let same = doc.get("version").and_then(yaml_scalar).as_deref() == Some(version);
            let created = doc.get("createdAt").and_then(yaml_scalar);
            same.then_some(created).flatten()
        });
    kept.unwrap_or_else(now_rfc3339)
}

fn yaml_scalar(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The current UTC time as RFC 3339 (`YYYY-MM-DDTHH:MM:SSZ`).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339_from_unix(secs)
}

/// Unix seconds to `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian calendar).
pub fn rfc3339_from_unix(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn missing(key: &str) -> anyhow::Error {
    anyhow!("policy metadata must specify \"{key}\" in annotations")
}

/// A URL as the `url` crate prints it (host-only URLs get a `/`).
fn parse_url(annotation: &str, value: &str) -> Result<String> {
    let bad = |why: &str| {
        anyhow!("annotation \"{annotation}\" in policy metadata must be a well formed URL: {why}")
    };
    let (scheme, rest) = value.split_once("://").ok_or_else(|| bad("no scheme"))?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return Err(bad("invalid scheme"));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || value.chars().any(char::is_whitespace) {
        return Err(bad("empty host or whitespace"));
    }
    let scheme = scheme.to_ascii_lowercase();
    let rest = if rest.len() == host.len() {
        format!("{}/", host.to_ascii_lowercase())
    } else {
        format!("{}{}", host.to_ascii_lowercase(), &rest[host.len()..])
    };
    Ok(format!("{scheme}://{rest}"))
}

/// `Name <email>, Other <email2>` (RFC 5322 name-addr list) -> maintainers.
fn parse_maintainers(value: &str) -> Result<Vec<Maintainer>> {
    let key = "io.kubewarden.policy.author";
    let mut entries = Vec::new();
    let (mut current, mut in_angle, mut in_quote) = (String::new(), false, false);
    for c in value.chars() {
        match c {
            '"' if !in_angle => in_quote = !in_quote,
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            ',' if !in_angle && !in_quote => {
                entries.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    entries.push(current);
    let mut maintainers = Vec::new();
    for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let (name, email) = match (entry.find('<'), entry.rfind('>')) {
            (Some(open), Some(close)) if open < close => (
                entry[..open].trim().trim_matches('"').trim().to_string(),
                entry[open + 1..close].trim().to_string(),
            ),
            _ => (String::new(), entry.to_string()),
        };
        let valid = email.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty()
                && !d.is_empty()
                && !d.contains('@')
                && !email.contains(char::is_whitespace)
        });
        if !valid {
            bail!("annotation \"{key}\" in policy metadata must be a well formed email: {email:?}");
        }
        maintainers.push(Maintainer { name, email });
    }
    if maintainers.is_empty() {
        bail!(
            "annotation \"{key}\" in policy metadata is malformed, must be csv values of name <email>"
        );
    }
    Ok(maintainers)
}

/// `artifacthub-pkg.yml` (header included) for `version`.
pub fn generate(
    metadata_yaml: &str,
    questions: Option<&str>,
    version: &str,
    created_at: &str,
) -> Result<String> {
    let metadata = Metadata::from_yaml(metadata_yaml)?;
    let annotations = metadata
        .annotations
        .clone()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            anyhow!("no annotations in policy metadata. policy metadata must specify annotations")
        })?;
    let get = |key: &str| annotations.get(key).cloned().ok_or_else(|| missing(key));

    let metadata_version = get("io.kubewarden.policy.version")?;
    validate_semver(&metadata_version)
        .map_err(|e| anyhow!("policy version must be in semver: {e}"))?;
    if metadata_version != version {
        bail!(
            "version mismatch: {version} (Cargo.toml) but io.kubewarden.policy.version is {metadata_version} in the policy metadata; bump them together"
        );
    }
    if questions.is_some_and(str::is_empty) {
        bail!("questions-ui content cannot be empty");
    }

    let oci_url = get("io.kubewarden.policy.ociUrl")?;
    let image = oci_client::Reference::try_from(format!("{oci_url}:v{version}").as_str())
        .map_err(|e| anyhow!("annotation \"io.kubewarden.policy.ociUrl\" in policy metadata must be a well formed URL: {e}"))?
        .to_string();

    let keywords = annotations
        .get("io.artifacthub.keywords")
        .map(|csv| {
            let words: Vec<String> = csv.split(',').map(|w| w.trim_matches(' ').to_string()).collect();
            if words.iter().any(String::is_empty) {
                bail!("annotation \"io.artifacthub.keywords\" in policy metadata is malformed, must be csv values");
            }
            Ok(words)
        })
        .transpose()?;

    let links = annotations
        .get("io.kubewarden.policy.source")
        .map(|source| -> Result<Vec<Link>> {
            let source = parse_url("io.kubewarden.policy.source", source)?;
            let on_github = source
                .split_once("://")
                .map(|(_, rest)| rest.split('/').next() == Some("github.com"))
                .unwrap_or(false);
            if !on_github {
                return Ok(vec![Link {
                    name: "source",
                    url: source,
                }]);
            }
            let release = match annotations.get("com.github.release.tag") {
                Some(tag) => url_encode(tag),
                None => format!("v{version}"),
            };
            Ok(vec![
                Link {
                    name: "policy",
                    url: format!("{source}/releases/download/{release}/policy.wasm"),
                },
                Link {
                    name: "source",
                    url: source,
                },
            ])
        })
        .transpose()?;

    let mut pkg_annotations = BTreeMap::new();
    pkg_annotations.insert(
        "kubewarden/mutation".to_string(),
        metadata.mutating.to_string(),
    );
    if !metadata.context_aware_resources.is_empty() {
        pkg_annotations.insert(
            "kubewarden/contextAwareResources".to_string(),
            serde_yaml::to_string(&metadata.context_aware_resources)?,
        );
    }
    pkg_annotations.insert(
        "kubewarden/rules".to_string(),
        serde_yaml::to_string(&metadata.rules)?,
    );
    if let Some(questions) = questions {
        pkg_annotations.insert("kubewarden/questions-ui".to_string(), questions.to_string());
    }
    if let Some(hidden) = annotations.get("io.kubewarden.hidden-ui") {
        let hidden: bool = hidden.parse().map_err(|_| {
            anyhow!(
                "annotation \"io.kubewarden.hidden-ui\" in policy metadata must be a boolean string"
            )
        })?;
        pkg_annotations.insert("kubewarden/hidden-ui".to_string(), hidden.to_string());
    }
    if let Some(resources) = annotations.get("io.artifacthub.resources") {
        pkg_annotations.insert("kubewarden/resources".to_string(), resources.clone());
    }

    let pkg = ArtifactHubPkg {
        version: version.to_string(),
        name: get("io.kubewarden.policy.title")?,
        display_name: get("io.artifacthub.displayName")?,
        created_at: created_at.to_string(),
        description: get("io.kubewarden.policy.description")?,
        license: annotations.get("io.kubewarden.policy.license").cloned(),
        home_url: annotations
            .get("io.kubewarden.policy.url")
            .map(|u| parse_url("io.kubewarden.policy.url", u))
            .transpose()?,
        containers_images: Some(vec![ContainerImage {
            name: "policy",
            image: image.clone(),
        }]),
        keywords,
        links,
        install: Some(install(&image)),
        maintainers: annotations
            .get("io.kubewarden.policy.author")
            .map(|a| parse_maintainers(a))
            .transpose()?,
        provider: Named { name: "kubewarden" },
        recommendations: vec![Url {
            url: RECOMMENDATION,
        }],
        annotations: pkg_annotations,
    };
    Ok(format!("{HEADER}\n{}", serde_yaml::to_string(&pkg)?))
}

/// kwctl's install instructions.
fn install(oci_url: &str) -> String {
    format!(
        "The policy can be obtained using [kwctl](https://docs.kubewarden.io/howtos/install-kwctl):
```console
kwctl pull {oci_url}
```
Then, generate the policy manifest and tune it to your liking. For example:
```console
kwctl scaffold manifest -t ClusterAdmissionPolicy registry://{oci_url}
```
"
    )
}

/// `application/x-www-form-urlencoded` byte serialization (as `url`'s
/// `form_urlencoded::byte_serialize`).
fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_from_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339_from_unix(1_795_564_800 + 3_723),
            "2026-11-25T01:02:03Z"
        );
    }

    #[test]
    fn created_at_is_kept_for_the_same_version() {
        let previous = "version: 0.1.0\ncreatedAt: 2026-11-25T00:00:00Z\n";
        assert_eq!(created_at(Some(previous), "0.1.0"), "2026-11-25T00:00:00Z");
        assert_ne!(created_at(Some(previous), "0.2.0"), "2026-11-25T00:00:00Z");
        assert_ne!(created_at(None, "0.1.0"), "2026-11-25T00:00:00Z");
    }

    #[test]
    fn maintainers() {
        assert_eq!(
            parse_maintainers("Tux Tuxedo <tux@example.com>, \"Pid, Gin\" <pidgin@example.com>")
                .unwrap(),
            vec![
                Maintainer {
                    name: "Tux Tuxedo".into(),
                    email: "tux@example.com".into()
                },
                Maintainer {
                    name: "Pid, Gin".into(),
                    email: "pidgin@example.com".into()
                },
            ]
        );
        assert!(parse_maintainers("Nobody <not-an-email>").is_err());
    }

    #[test]
    fn urls_and_tags() {
        assert_eq!(
            parse_url("k", "https://GitHub.com").unwrap(),
            "https://github.com/"
        );
        assert_eq!(
            parse_url("k", "https://github.com/a/b").unwrap(),
            "https://github.com/a/b"
        );
        assert!(parse_url("k", "github.com/a").is_err());
        assert_eq!(
            url_encode("policies/pod-ndots/v1.0.0"),
            "policies%2Fpod-ndots%2Fv1.0.0"
        );
    }

    const METADATA: &str = "rules: []\nmutating: true\nannotations:\n  io.kubewarden.policy.title: t\n  io.artifacthub.displayName: T\n  io.kubewarden.policy.description: d\n  io.kubewarden.policy.ociUrl: ghcr.io/o/t\n  io.kubewarden.policy.version: 1.0.0\n  io.kubewarden.policy.source: https://example.com/src\n";

    #[test]
    fn errors_and_minimal_output() {
        let out = generate(METADATA, None, "1.0.0", "2026-01-01T00:00:00Z").unwrap();
        assert!(out.starts_with(HEADER));
        assert!(out.contains("image: ghcr.io/o/t:v1.0.0"));
        // Not on GitHub: only the source link.
        assert!(out.contains("links:\n- name: source\n  url: https://example.com/src\n"));
        assert!(
            generate(METADATA, None, "1.0.1", "x")
                .unwrap_err()
                .to_string()
                .contains("version mismatch")
        );
        assert!(generate(METADATA, Some(""), "1.0.0", "x").is_err());
        assert!(generate("rules: []\nmutating: true\n", None, "1.0.0", "x").is_err());
    }
}
