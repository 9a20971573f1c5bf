//! The ClusterAdmissionPolicy manifests of the policy (`make manifests`),
//! generated from `policy-metadata.yml` and optional settings.
//!
//! - `namespaceSelection: lookup`: one policy per revision; the policy reads
//!   the Pod's Namespace itself (`contextAwareResources`), and the
//!   `namespaceSelector` only keeps the webhook away from the namespaces
//!   Istio never injects.
//! - `namespaceSelection: webhook`: one policy per entry of Istio's
//!   MutatingWebhookConfiguration (`mutatingwebhook.yaml`), with the same
//!   `namespaceSelector`/`objectSelector`, so the API server does stage A as
//!   it does for istiod: `rev.namespace` and `rev.object` for every revision,
//!   `namespace` and `object` for the default revision only, and `auto` when
//!   `enableNamespacesByDefault` is set.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail};
use serde_yaml::{Mapping, Value};

use crate::metadata::Metadata;

/// Namespaces Istio never injects (`IgnoredNamespaces`, inject.go).
pub const IGNORED_NAMESPACES: [&str; 4] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];

/// Label the API server puts on every Namespace (its name).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// Annotation naming the Istio webhook entry a webhook-mode policy reproduces.
pub const WEBHOOK_ENTRY_ANNOTATION: &str = "istio-sidecar-injector.kubewarden.io/webhook-entry";

const INJECT_LABEL: &str = "sidecar.istio.io/inject";
const REV_LABEL: &str = "istio.io/rev";
const INJECTION_LABEL: &str = "istio-injection";

/// One `matchExpressions` requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: String,
    pub values: Vec<String>,
}

fn req(key: &str, operator: &str, values: &[&str]) -> Requirement {
    Requirement {
        key: key.to_string(),
        operator: operator.to_string(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

/// One of Istio's webhook entries for revision `rv` (`default` for the
/// default revision): name, namespace requirements, object requirements.
#[derive(Debug, Clone)]
pub struct WebhookEntry {
    /// Istio's name, e.g. `rev.namespace.sidecar-injector.istio.io`.
    pub istio_name: String,
    /// Suffix of the policy name, e.g. `rev-namespace`.
    pub short: &'static str,
    pub namespace: Vec<Requirement>,
    pub object: Vec<Requirement>,
}

/// Istio's webhook entries for `revision` ("" = default revision).
pub fn webhook_entries(revision: &str, enable_namespaces_by_default: bool) -> Vec<WebhookEntry> {
    let rv = if revision.is_empty() {
        "default"
    } else {
        revision
    };
    let mut entries = vec![
        WebhookEntry {
            istio_name: "rev.namespace.sidecar-injector.istio.io".into(),
            short: "rev-namespace",
            namespace: vec![
                req(REV_LABEL, "In", &[rv]),
                req(INJECTION_LABEL, "DoesNotExist", &[]),
            ],
            object: vec![req(INJECT_LABEL, "NotIn", &["false"])],
        },
        WebhookEntry {
            istio_name: "rev.object.sidecar-injector.istio.io".into(),
            short: "rev-object",
            namespace: vec![
                req(REV_LABEL, "DoesNotExist", &[]),
                req(INJECTION_LABEL, "DoesNotExist", &[]),
            ],
            object: vec![
                req(INJECT_LABEL, "NotIn", &["false"]),
                req(REV_LABEL, "In", &[rv]),
            ],
        },
    ];
    if revision.is_empty() {
        entries.push(WebhookEntry {
            istio_name: "namespace.sidecar-injector.istio.io".into(),
            short: "namespace",
            namespace: vec![req(INJECTION_LABEL, "In", &["enabled"])],
            object: vec![req(INJECT_LABEL, "NotIn", &["false"])],
        });
        entries.push(WebhookEntry {
            istio_name: "object.sidecar-injector.istio.io".into(),
            short: "object",
            namespace: vec![
                req(INJECTION_LABEL, "DoesNotExist", &[]),
                req(REV_LABEL, "DoesNotExist", &[]),
            ],
            object: vec![
                req(INJECT_LABEL, "In", &["true"]),
                req(REV_LABEL, "DoesNotExist", &[]),
            ],
        });
        if enable_namespaces_by_default {
            entries.push(WebhookEntry {
                istio_name: "auto.sidecar-injector.istio.io".into(),
                short: "auto",
                namespace: vec![
                    req(INJECTION_LABEL, "DoesNotExist", &[]),
                    req(REV_LABEL, "DoesNotExist", &[]),
                    req(NAMESPACE_NAME_LABEL, "NotIn", &IGNORED_NAMESPACES),
                ],
                object: vec![
                    req(INJECT_LABEL, "DoesNotExist", &[]),
                    req(REV_LABEL, "DoesNotExist", &[]),
                ],
            });
        }
    }
    entries
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn mapping(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(s(k), v);
    }
    Value::Mapping(m)
}

fn selector(requirements: &[Requirement]) -> Value {
    let expressions = requirements
        .iter()
        .map(|r| {
            let mut pairs = vec![("key", s(&r.key)), ("operator", s(&r.operator))];
            if !r.values.is_empty() {
                pairs.push((
                    "values",
                    Value::Sequence(r.values.iter().map(|v| s(v)).collect()),
                ));
            }
            mapping(pairs)
        })
        .collect();
    mapping(vec![("matchExpressions", Value::Sequence(expressions))])
}

/// What every manifest shares, from the metadata.
struct Common {
    title: String,
    module: String,
    rules: Value,
    mutating: bool,
    background_audit: bool,
    context_aware_resources: Value,
    annotations: Vec<(String, String)>,
    base_settings: Mapping,
    enable_namespaces_by_default: bool,
}

impl Common {
    fn new(metadata_yaml: &str, settings_yaml: Option<&str>, module: Option<&str>) -> Result<Self> {
        let metadata = Metadata::from_yaml(metadata_yaml)?;
        let annotations = metadata.annotations.clone().unwrap_or_default();
        let get = |key: &str| {
            annotations
                .get(key)
                .cloned()
                .ok_or_else(|| anyhow!("policy metadata: annotation {key} is missing"))
        };
        let title = get("io.kubewarden.policy.title")?;
        let module = match module {
            Some(m) if m.contains("://") => m.to_string(),
            Some(m) => format!("registry://{m}"),
            None => format!(
                "registry://{}:v{}",
                get("io.kubewarden.policy.ociUrl")?,
                get("io.kubewarden.policy.version")?
            ),
        };
        if !metadata.mutating {
            bail!("policy metadata: mutating must be true for an injector");
        }
        let base_settings = match settings_yaml {
            None => Mapping::new(),
            Some(text) => {
                match serde_yaml::from_str::<Value>(text).context("cannot parse the settings")? {
                    Value::Mapping(m) => m,
                    Value::Null => Mapping::new(),
                    _ => bail!("the settings must be a YAML mapping"),
                }
            }
        };
        let enable_namespaces_by_default = match base_settings.get("enableNamespacesByDefault") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                bail!("settings: enableNamespacesByDefault must be a boolean, not {other:?}")
            }
        };
        let kept = [
            "io.kubewarden.policy.severity",
            "io.kubewarden.policy.category",
        ];
        Ok(Common {
            title,
            module,
            rules: serde_yaml::to_value(&metadata.rules)?,
            mutating: metadata.mutating,
            background_audit: metadata.background_audit,
            context_aware_resources: serde_yaml::to_value(&metadata.context_aware_resources)?,
            annotations: kept
                .iter()
                .filter_map(|k| annotations.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect(),
            base_settings,
            enable_namespaces_by_default,
        })
    }

    fn settings(&self, shape: &Shape) -> Value {
        let mut m = Mapping::new();
        if shape.check.is_some() {
            m.insert(s("action"), s("check"));
        }
        m.insert(s("namespaceSelection"), s(shape.selection));
        if !shape.revision.is_empty() {
            m.insert(s("revision"), s(shape.revision));
        }
        for (k, v) in &self.base_settings {
            if !matches!(
                k.as_str(),
                Some("namespaceSelection" | "revision" | "action")
            ) {
                m.insert(k.clone(), v.clone());
            }
        }
        Value::Mapping(m)
    }

    fn policy(&self, shape: &Shape) -> Value {
        let rv = if shape.revision.is_empty() {
            "default"
        } else {
            shape.revision
        };
        let mut labels = Mapping::new();
        labels.insert(s("app.kubernetes.io/part-of"), s(&self.title));
        labels.insert(s("istio.io/rev"), s(rv));
        let mut annotations = Mapping::new();
        for (k, v) in &self.annotations {
            annotations.insert(s(k), s(v));
        }
        if let Some(entry) = shape.entry {
            annotations.insert(s(WEBHOOK_ENTRY_ANNOTATION), s(entry));
        }
        // The injector mutates and is not audited (audited, it could only report `pass`);
        // the check never mutates and is what the audit scanner runs.
        let (mode, mutating, background_audit, failure_policy) = match shape.check {
            None => ("protect", self.mutating, self.background_audit, "Fail"),
            // A report must never stand in the way of a Pod.
            Some(CheckMode::Monitor) => ("monitor", false, true, "Ignore"),
            Some(CheckMode::Protect) => ("protect", false, true, "Fail"),
        };
        let mut spec = vec![
            ("policyServer", s("default")),
            ("mode", s(mode)),
            ("module", s(&self.module)),
            ("settings", self.settings(shape)),
            ("rules", self.rules.clone()),
            ("mutating", Value::Bool(mutating)),
            ("backgroundAudit", Value::Bool(background_audit)),
            ("failurePolicy", s(failure_policy)),
            ("timeoutSeconds", Value::Number(10.into())),
        ];
        if let Some(namespace_selector) = &shape.namespace_selector {
            spec.push(("namespaceSelector", namespace_selector.clone()));
        }
        if let Some(object_selector) = &shape.object_selector {
            spec.push(("objectSelector", object_selector.clone()));
        }
        if shape.context_aware {
            spec.push((
                "contextAwareResources",
                self.context_aware_resources.clone(),
            ));
        }
        let mut metadata = vec![("name", s(&shape.name)), ("labels", Value::Mapping(labels))];
        if !annotations.is_empty() {
            metadata.push(("annotations", Value::Mapping(annotations)));
        }
        mapping(vec![
            ("apiVersion", s("policies.kubewarden.io/v1")),
            ("kind", s("ClusterAdmissionPolicy")),
            ("metadata", mapping(metadata)),
            ("spec", mapping(spec)),
        ])
    }
}

/// The check-mode policies (`action: check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckMode {
    /// Reports only: the audit scanner writes a PolicyReport result per Pod.
    Monitor,
    /// Also refuses new Pods that would fail the check.
    Protect,
}

/// One ClusterAdmissionPolicy.
struct Shape<'a> {
    name: String,
    revision: &'a str,
    /// `namespaceSelection`: `lookup` or `webhook`.
    selection: &'a str,
    /// The Istio webhook entry a webhook-mode policy reproduces.
    entry: Option<&'a str>,
    namespace_selector: Option<Value>,
    object_selector: Option<Value>,
    context_aware: bool,
    check: Option<CheckMode>,
}

/// Every namespace but those Istio never injects.
fn injectable_namespaces() -> Value {
    selector(&[Requirement {
        key: NAMESPACE_NAME_LABEL.into(),
        operator: "NotIn".into(),
        values: IGNORED_NAMESPACES.iter().map(|n| n.to_string()).collect(),
    }])
}

fn document(comment: &str, value: &Value) -> Result<String> {
    let mut out = String::new();
    for line in comment.lines() {
        out.push('#');
        if !line.is_empty() {
            out.push(' ');
            out.push_str(line);
        }
        out.push('\n');
    }
    out.push_str(&serde_yaml::to_string(value)?);
    Ok(out)
}

/// Normalizes a revision flag: `default` and "" are the default revision.
pub fn normalize_revision(revision: &str) -> &str {
    if revision == "default" { "" } else { revision }
}

/// The manifests for every revision, as `(file name, YAML text)`: `lookup[-R].yml`,
/// `webhook[-R].yml`, `check[-R].yml` and `check-protect[-R].yml`.
pub fn generate(
    metadata_yaml: &str,
    settings_yaml: Option<&str>,
    revisions: &[String],
    module: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let common = Common::new(metadata_yaml, settings_yaml, module)?;
    let mut files = Vec::new();
    let mut seen = BTreeMap::new();
    for revision in revisions {
        let revision = normalize_revision(revision);
        if seen.insert(revision.to_string(), ()).is_some() {
            continue;
        }
        if !revision.is_empty() && !is_dns_label(revision) {
            bail!("revision {revision:?} is not a valid label value / name suffix");
        }
        let suffix = if revision.is_empty() {
            String::new()
        } else {
            format!("-{revision}")
        };
        let rv = if revision.is_empty() {
            "default"
        } else {
            revision
        };
        let header = format!(
            "Generated by `make manifests` (kwhost manifests) from policy-metadata.yml and\n\
             manifests/settings.yml: do not edit.\n\
             Istio revision: {rv}. Apply the lookup file OR the webhook file, not both."
        );

        // Lookup mode: one policy.
        let lookup = common.policy(&Shape {
            name: format!("{}{suffix}", common.title),
            revision,
            selection: "lookup",
            entry: None,
            namespace_selector: Some(injectable_namespaces()),
            object_selector: None,
            context_aware: true,
            check: None,
        });
        let text = document(
            &format!(
                "{header}\n\n\
                 namespaceSelection: lookup. The policy reads each Pod's Namespace (v1/Namespace is\n\
                 granted in contextAwareResources) and applies Istio's webhook selectors itself\n\
                 (istio-injection=enabled, istio.io/rev={rv}, the Pod labels), so this one policy\n\
                 serves the whole cluster. The namespaceSelector only keeps the API server from\n\
                 calling it for the namespaces Istio never injects."
            ),
            &lookup,
        )?;
        files.push((format!("lookup{suffix}.yml"), text));

        // Webhook mode: Istio's entries.
        let mut docs = Vec::new();
        for entry in webhook_entries(revision, common.enable_namespaces_by_default) {
            let policy = common.policy(&Shape {
                name: format!("{}{suffix}-{}", common.title, entry.short),
                revision,
                selection: "webhook",
                entry: Some(&entry.istio_name),
                namespace_selector: Some(selector(&entry.namespace)),
                object_selector: Some(selector(&entry.object)),
                context_aware: false,
                check: None,
            });
            let comment = if docs.is_empty() {
                format!(
                    "{header}\n\n\
                     namespaceSelection: webhook. One policy per entry of Istio's MutatingWebhookConfiguration\n\
                     for revision {rv}, with the same namespaceSelector and objectSelector: the API\n\
                     server selects the Pods (stage A) exactly as it does for istiod, and the policy\n\
                     starts at injectRequired. No access to Namespaces is needed.\n\n{}",
                    entry.istio_name
                )
            } else {
                entry.istio_name.clone()
            };
            docs.push(document(&comment, &policy)?);
        }
        files.push((format!("webhook{suffix}.yml"), docs.join("---\n")));

        // Check mode: the same decision, reported instead of acted on.
        let check_header = format!(
            "Generated by `make manifests` (kwhost manifests) from policy-metadata.yml and\n\
             manifests/settings.yml: do not edit.\n\
             Istio revision: {rv}. Runs beside the injector (this policy's or istiod's): it never\n\
             mutates. Use the same settings as the injector (manifests/settings.yml)."
        );
        let check = common.policy(&Shape {
            name: format!("{}-check{suffix}", common.title),
            revision,
            selection: "lookup",
            entry: None,
            namespace_selector: None,
            object_selector: None,
            context_aware: true,
            check: Some(CheckMode::Monitor),
        });
        let text = document(
            &format!(
                "{check_header}\n\n\
                 action: check, mode: monitor, backgroundAudit: true. Kubewarden's audit scanner\n\
                 sends every stored Pod; the PolicyReports then show each Pod as pass\n\
                 (sidecar-current, not-selected, skipped) or fail (sidecar-missing,\n\
                 sidecar-unexpected, sidecar-outdated) with what to do. New Pods are never refused.\n\
                 Every namespace is checked, so that a sidecar where none belongs is found too."
            ),
            &check,
        )?;
        files.push((format!("check{suffix}.yml"), text));

        let guard = common.policy(&Shape {
            name: format!("{}-check-protect{suffix}", common.title),
            revision,
            selection: "lookup",
            entry: None,
            namespace_selector: Some(injectable_namespaces()),
            object_selector: None,
            context_aware: true,
            check: Some(CheckMode::Protect),
        });
        let text = document(
            &format!(
                "{check_header}\n\n\
                 action: check, mode: protect: also a guard. Validating webhooks run after every\n\
                 mutating one, so it sees each new Pod as the injector left it, and refuses the Pods\n\
                 that fail the check: above all those that escaped injection (for example while\n\
                 istiod's webhook, failurePolicy Ignore, was down), but also those injected\n\
                 differently from these settings. The system namespaces are left out."
            ),
            &guard,
        )?;
        files.push((format!("check-protect{suffix}.yml"), text));
    }
    Ok(files)
}

/// RFC 1123 label: what a revision must be to suffix a policy name.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = "rules:\n- apiGroups: ['']\n  apiVersions: [v1]\n  resources: [pods]\n  operations: [CREATE]\nmutating: true\nbackgroundAudit: false\ncontextAwareResources:\n- apiVersion: v1\n  kind: Namespace\nannotations:\n  io.kubewarden.policy.title: injector\n  io.kubewarden.policy.ociUrl: ghcr.io/x/injector\n  io.kubewarden.policy.version: 1.2.3\n";

    #[test]
    fn files_per_revision() {
        let files = generate(METADATA, None, &["default".into(), "canary".into()], None).unwrap();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "lookup.yml",
                "webhook.yml",
                "check.yml",
                "check-protect.yml",
                "lookup-canary.yml",
                "webhook-canary.yml",
                "check-canary.yml",
                "check-protect-canary.yml",
            ]
        );
        assert!(
            files[0]
                .1
                .contains("module: registry://ghcr.io/x/injector:v1.2.3")
        );
        assert_eq!(
            files[1].1.matches("kind: ClusterAdmissionPolicy").count(),
            4
        );
        assert_eq!(
            files[5].1.matches("kind: ClusterAdmissionPolicy").count(),
            2
        );
        assert!(files[5].1.contains("revision: canary"));
    }

    #[test]
    fn settings_are_carried_and_auto_entry() {
        let files = generate(
            METADATA,
            Some("enableNamespacesByDefault: true\nrevision: ignored\nvalues: {global: {tag: '1.0'}}\n"),
            &[String::new()],
            Some("registry.local/p:v9"),
        )
        .unwrap();
        assert!(files[1].1.contains("name: injector-auto"));
        assert!(
            files[0]
                .1
                .contains("module: registry://registry.local/p:v9")
        );
        assert!(!files[0].1.contains("ignored"));
        assert!(files[0].1.contains("enableNamespacesByDefault: true"));
        assert!(generate(METADATA, Some("[]"), &[String::new()], None).is_err());
        assert!(generate(METADATA, None, &["Canary".into()], None).is_err());
    }
}
