//! Kubernetes `LabelSelector`, as Istio's sidecar injector uses it.
//!
//! Istio (`pkg/kube/inject/inject.go`, `injectRequired`) converts every
//! `neverInjectSelector` / `alwaysInjectSelector` entry with
//! `metav1.LabelSelectorAsSelector`:
//!
//! * conversion error → the selector is ignored (with a warning);
//! * result `Empty()` (no requirements) → the selector is ignored;
//! * otherwise the selector is matched against the pod's labels.
//!
//! [`Selector::parse`] mirrors `LabelSelectorAsSelector`
//! (`k8s.io/apimachinery/pkg/apis/meta/v1/helpers.go`) and the
//! `labels.NewRequirement` validation it calls (`pkg/labels/selector.go`,
//! `IsQualifiedName`/`IsLabelKey` and `IsValidLabelValue`):
//!
//! * `matchLabels` entries become `key = value` requirements (`selection.Equals`,
//!   which matches exactly like `In [value]`). Their keys **and values are
//!   validated** like any other requirement, so an invalid label value in
//!   `matchLabels` is a conversion error.
//! * `matchExpressions` operators must be exactly `In`, `NotIn`, `Exists` or
//!   `DoesNotExist` (case-sensitive). `In`/`NotIn` need at least one value,
//!   `Exists`/`DoesNotExist` must have none. Every value must be a valid label
//!   value (the empty string is valid).
//! * Nothing is deduplicated: repeated values stay, and a key used by several
//!   requirements gives several requirements (they are ANDed, so this never
//!   changes a match result). Go sorts requirements by key; order does not
//!   matter for matching either.
//! * A selector with neither `matchLabels` nor `matchExpressions` entries
//!   (`{}`, `{"matchLabels": {}}`, `{"matchExpressions": []}`, nulls) is
//!   `labels.Everything()`: [`Selector::is_empty`] is true and it matches every
//!   pod. A *nil* `*LabelSelector` would instead give `labels.Nothing()` (not
//!   empty, matches nothing); Istio never passes nil (its lists hold values, and
//!   a JSON `null` list item decodes to the zero, i.e. empty, selector).
//!
//! Decoding follows Go's `encoding/json` where it is lenient about nulls: a
//! `null` `matchLabels`/`matchExpressions`/`values` is absent, and a `null`
//! string (label value, key, operator, list item) decodes as `""`; a `null`
//! `matchExpressions` item is the zero requirement (operator `""`, so invalid).
//!
//! Deliberate differences (all about *which* inputs are errors, never about
//! matching):
//!
//! * Unknown fields are an error (Go's `encoding/json` ignores them) and field
//!   names are case-sensitive (Go's matching is case-insensitive): these
//!   selectors come from policy settings, where a typo must not pass silently.
//! * [`Selector::parse`] of a non-object (including `null`) is an error. In Go
//!   a `null` item of the selector list is the empty selector, which Istio
//!   ignores; a caller that ignores selectors that fail to parse (as Istio does
//!   with conversion errors) ends up with the same result.
//! * When several problems exist, one error is reported: JSON type problems
//!   first (in Go they fail decoding before any validation), then validation
//!   problems in Go's order (`matchLabels` — in document order, where Go's map
//!   order is random — then `matchExpressions` in order; per requirement the
//!   operator, the key, the number of values, then each value).

use serde_json::{Map, Value};
use std::fmt;

/// Maximum length of the name part of a qualified name (label key), in bytes.
const QUALIFIED_NAME_MAX_LEN: usize = 63;
/// Maximum length of a label value, in bytes.
const LABEL_VALUE_MAX_LEN: usize = 63;
/// Maximum length of a DNS-1123 subdomain (label key prefix), in bytes.
const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;

const MATCH_LABELS: &str = "matchLabels";
const MATCH_EXPRESSIONS: &str = "matchExpressions";

/// A label selector operator (`metav1.LabelSelectorOperator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `In`: the key is present and its value is in the set.
    /// `matchLabels` entries use this with a single value.
    In,
    /// `NotIn`: the key is absent, or its value is not in the set.
    NotIn,
    /// `Exists`: the key is present (with any value, even empty).
    Exists,
    /// `DoesNotExist`: the key is absent.
    DoesNotExist,
}

impl Operator {
    /// Parses an operator exactly as `LabelSelectorAsSelector` does
    /// (case-sensitive, no trimming).
    pub fn from_name(name: &str) -> Option<Operator> {
        match name {
            "In" => Some(Operator::In),
            "NotIn" => Some(Operator::NotIn),
            "Exists" => Some(Operator::Exists),
            "DoesNotExist" => Some(Operator::DoesNotExist),
            _ => None,
        }
    }

    /// The API name of the operator.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated requirement (`labels.Requirement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator (`matchLabels` entries are `In` with one value).
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, as given (not sorted, not deduplicated).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// `labels.Requirement.Matches`.
    pub fn matches(&self, labels: Option<&crate::json::Map>) -> bool {
        let value = labels
            .and_then(|l| l.get(self.key.as_str()))
            .and_then(crate::json::Value::as_str);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.has_value(v)),
            Operator::NotIn => value.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }

    fn has_value(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }
}

/// A label selector converted like `metav1.LabelSelectorAsSelector`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Parses a `LabelSelector` JSON object
    /// `{matchLabels: {k: v}, matchExpressions: [{key, operator, values}]}` with
    /// exactly `LabelSelectorAsSelector`'s validation (see the module docs for
    /// the rules and the deliberate differences: unknown fields and non-object
    /// input are errors).
    pub fn parse(v: &Value) -> Result<Selector, SelectorError> {
        let Some(obj) = v.as_object() else {
            return Err(SelectorError::WrongType {
                path: String::new(),
                expected: "object",
                found: json_type(v),
            });
        };
        // Pass 1: JSON shape only, so that decoding problems win over
        // validation problems, as in Go where decoding happens first.
        walk(obj, None)?;
        // Pass 2: validate and build, in LabelSelectorAsSelector's order.
        let mut requirements = Vec::with_capacity(count_entries(obj));
        walk(obj, Some(&mut requirements))?;
        Ok(Selector { requirements })
    }

    /// True when the selector has no requirements at all (`labels.Selector.Empty()`),
    /// e.g. `{}` or `{"matchLabels": {}}`. Such a selector matches everything;
    /// Istio ignores it.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, `matchLabels` first (document order), then
    /// `matchExpressions` in order.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Kubernetes semantics: all requirements ANDed. `In`: key present and
    /// value in the set; `NotIn`: key absent or value not in the set;
    /// `Exists`: key present (even with an empty value); `DoesNotExist`: key
    /// absent. `labels` is the pod's `metadata.labels`; a missing map has no
    /// labels and a non-string label value counts as absent.
    /// An empty selector matches everything.
    pub fn matches(&self, labels: Option<&crate::json::Map>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

/// Why a selector could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectorError {
    /// A JSON value has the wrong type (the selector itself when `path` is empty).
    WrongType {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    /// An object has a field a `LabelSelector` does not have.
    UnknownField { path: String, field: String },
    /// The operator is not `In`, `NotIn`, `Exists` or `DoesNotExist`.
    InvalidOperator { path: String, operator: String },
    /// The key is not a valid qualified name.
    InvalidKey {
        path: String,
        key: String,
        reason: String,
    },
    /// `In`/`NotIn` without values.
    MissingValues { path: String, operator: Operator },
    /// `Exists`/`DoesNotExist` with values.
    UnexpectedValues { path: String, operator: Operator },
    /// A value is not a valid label value.
    InvalidValue {
        path: String,
        value: String,
        reason: String,
    },
}

impl SelectorError {
    /// True for JSON shape problems (wrong types, unknown fields). In Go these
    /// fail decoding the whole configuration, whereas the other errors are
    /// `LabelSelectorAsSelector` errors, for which Istio only ignores the
    /// selector.
    pub fn is_decode_error(&self) -> bool {
        matches!(
            self,
            SelectorError::WrongType { .. } | SelectorError::UnknownField { .. }
        )
    }
}

fn write_path(f: &mut fmt::Formatter<'_>, path: &str) -> fmt::Result {
    if path.is_empty() {
        f.write_str("selector: ")
    } else {
        write!(f, "{path}: ")
    }
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectorError::WrongType {
                path,
                expected,
                found,
            } => {
                write_path(f, path)?;
                write!(f, "expected {expected}, found {found}")
            }
            SelectorError::UnknownField { path, field } => {
                write_path(f, path)?;
                write!(f, "unknown field {field:?}")
            }
            SelectorError::InvalidOperator { path, operator } => {
                write_path(f, path)?;
                write!(f, "{operator:?} is not a valid operator")
            }
            SelectorError::InvalidKey { path, key, reason } => {
                write_path(f, path)?;
                write!(f, "invalid label key {key:?}: {reason}")
            }
            SelectorError::MissingValues { path, operator } => {
                write_path(f, path)?;
                write!(
                    f,
                    "values must be non-empty for operator {operator} (for 'in', 'notin' operators, values set can't be empty)"
                )
            }
            SelectorError::UnexpectedValues { path, operator } => {
                write_path(f, path)?;
                write!(
                    f,
                    "values must be empty for operator {operator} (values set must be empty for exists and does not exist)"
                )
            }
            SelectorError::InvalidValue {
                path,
                value,
                reason,
            } => {
                write_path(f, path)?;
                write!(f, "invalid label value {value:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for SelectorError {}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong_type(path: impl FnOnce() -> String, expected: &'static str, v: &Value) -> SelectorError {
    SelectorError::WrongType {
        path: path(),
        expected,
        found: json_type(v),
    }
}

/// A string field as Go decodes it into a `string`: `null` leaves it `""`.
fn go_string(v: Option<&Value>, path: impl FnOnce() -> String) -> Result<&str, SelectorError> {
    match v {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(wrong_type(path, "string", other)),
    }
}

fn count_entries(obj: &Map<String, Value>) -> usize {
    let labels = obj
        .get(MATCH_LABELS)
        .and_then(Value::as_object)
        .map_or(0, Map::len);
    let exprs = obj
        .get(MATCH_EXPRESSIONS)
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    labels + exprs
}

/// Walks the selector. With `out == None` only the JSON shape is checked;
/// with `Some`, requirements are validated and collected.
fn walk(
    obj: &Map<String, Value>,
    mut out: Option<&mut Vec<Requirement>>,
) -> Result<(), SelectorError> {
    if out.is_none()
        && let Some(field) = obj
            .keys()
            .find(|k| *k != MATCH_LABELS && *k != MATCH_EXPRESSIONS)
    {
        return Err(SelectorError::UnknownField {
            path: String::new(),
            field: field.clone(),
        });
    }

    match obj.get(MATCH_LABELS) {
        None | Some(Value::Null) => {}
        Some(Value::Object(labels)) => {
            for (key, value) in labels {
                let value = go_string(Some(value), || format!("{MATCH_LABELS}[{key:?}]"))?;
                if let Some(out) = out.as_deref_mut() {
                    // labels.NewRequirement(k, selection.Equals, []string{v})
                    check_key(key, || MATCH_LABELS.to_owned())?;
                    check_value(value, || format!("{MATCH_LABELS}[{key:?}]"))?;
                    out.push(Requirement {
                        key: key.clone(),
                        operator: Operator::In,
                        values: vec![value.to_owned()],
                    });
                }
            }
        }
        Some(other) => return Err(wrong_type(|| MATCH_LABELS.to_owned(), "object", other)),
    }

    match obj.get(MATCH_EXPRESSIONS) {
        None | Some(Value::Null) => {}
        Some(Value::Array(exprs)) => {
            for (i, expr) in exprs.iter().enumerate() {
                let requirement = expression(i, expr, out.is_some())?;
                if let (Some(out), Some(r)) = (out.as_deref_mut(), requirement) {
                    out.push(r);
                }
            }
        }
        Some(other) => {
            return Err(wrong_type(|| MATCH_EXPRESSIONS.to_owned(), "array", other));
        }
    }
    Ok(())
}

/// One `matchExpressions` item. Returns `Ok(None)` when only checking shape.
fn expression(
    i: usize,
    expr: &Value,
    validate: bool,
) -> Result<Option<Requirement>, SelectorError> {
    let path = |field: &str| format!("{MATCH_EXPRESSIONS}[{i}]{field}");
    let fields = match expr {
        // A null item decodes to the zero LabelSelectorRequirement.
        Value::Null => None,
        Value::Object(fields) => Some(fields),
        other => return Err(wrong_type(|| path(""), "object", other)),
    };
    let get = |name: &str| fields.and_then(|f| f.get(name));
    if !validate
        && let Some(field) = fields.and_then(|f| {
            f.keys()
                .find(|k| !matches!(k.as_str(), "key" | "operator" | "values"))
        })
    {
        return Err(SelectorError::UnknownField {
            path: path(""),
            field: field.clone(),
        });
    }
    let key = go_string(get("key"), || path(".key"))?;
    let operator = go_string(get("operator"), || path(".operator"))?;
    let values: &[Value] = match get("values") {
        None | Some(Value::Null) => &[],
        Some(Value::Array(values)) => values,
        Some(other) => return Err(wrong_type(|| path(".values"), "array", other)),
    };
    for (j, value) in values.iter().enumerate() {
        go_string(Some(value), || path(&format!(".values[{j}]")))?;
    }
    if !validate {
        return Ok(None);
    }

    // LabelSelectorAsSelector: the operator is checked before NewRequirement.
    let Some(op) = Operator::from_name(operator) else {
        return Err(SelectorError::InvalidOperator {
            path: path(".operator"),
            operator: operator.to_owned(),
        });
    };
    // labels.NewRequirement: key, then the number of values, then each value.
    check_key(key, || path(".key"))?;
    match op {
        Operator::In | Operator::NotIn if values.is_empty() => {
            return Err(SelectorError::MissingValues {
                path: path(".values"),
                operator: op,
            });
        }
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
            return Err(SelectorError::UnexpectedValues {
                path: path(".values"),
                operator: op,
            });
        }
        _ => {}
    }
    let mut owned = Vec::with_capacity(values.len());
    for (j, value) in values.iter().enumerate() {
        let value = go_string(Some(value), || path(&format!(".values[{j}]")))?;
        check_value(value, || path(&format!(".values[{j}]")))?;
        owned.push(value.to_owned());
    }
    Ok(Some(Requirement {
        key: key.to_owned(),
        operator: op,
        values: owned,
    }))
}

fn check_key(key: &str, path: impl FnOnce() -> String) -> Result<(), SelectorError> {
    match label_key_problems(key) {
        None => Ok(()),
        Some(reason) => Err(SelectorError::InvalidKey {
            path: path(),
            key: key.to_owned(),
            reason,
        }),
    }
}

fn check_value(value: &str, path: impl FnOnce() -> String) -> Result<(), SelectorError> {
    match label_value_problems(value) {
        None => Ok(()),
        Some(reason) => Err(SelectorError::InvalidValue {
            path: path(),
            value: value.to_owned(),
            reason,
        }),
    }
}

const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$` (Go's `$` is end of text).
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
fn is_dns1123_subdomain_shape(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        let lower_alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(first), Some(last)) => {
                lower_alnum(first)
                    && lower_alnum(last)
                    && b.iter().all(|c| lower_alnum(c) || *c == b'-')
            }
            _ => false,
        }
    })
}

fn push_problem(out: &mut Option<String>, msg: &str) {
    match out {
        Some(s) => {
            s.push_str("; ");
            s.push_str(msg);
        }
        None => *out = Some(msg.to_owned()),
    }
}

/// `validation.IsQualifiedName` (`content.IsLabelKey`): `None` when valid,
/// otherwise Go's messages joined with `"; "`.
pub fn label_key_problems(key: &str) -> Option<String> {
    let mut problems = None;
    let mut parts = key.split('/');
    let first = parts.next().unwrap_or("");
    let name = match (parts.next(), parts.next()) {
        (None, _) => first,
        (Some(name), None) => {
            let prefix = first;
            if prefix.is_empty() {
                push_problem(&mut problems, "prefix part must be non-empty");
            } else {
                if prefix.len() > DNS1123_SUBDOMAIN_MAX_LEN {
                    push_problem(
                        &mut problems,
                        "prefix part must be no more than 253 characters",
                    );
                }
                if !is_dns1123_subdomain_shape(prefix) {
                    push_problem(&mut problems, "prefix part ");
                    if let Some(p) = problems.as_mut() {
                        p.push_str(DNS1123_SUBDOMAIN_MSG);
                    }
                }
            }
            name
        }
        (Some(_), Some(_)) => {
            let mut msg = String::from("a qualified name ");
            msg.push_str(QUALIFIED_NAME_MSG);
            msg.push_str(
                " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            );
            return Some(msg);
        }
    };
    if name.is_empty() {
        push_problem(&mut problems, "name part must be non-empty");
    } else if name.len() > QUALIFIED_NAME_MAX_LEN {
        push_problem(
            &mut problems,
            "name part must be no more than 63 characters",
        );
    }
    if !is_qualified_name_part(name) {
        push_problem(&mut problems, "name part ");
        if let Some(p) = problems.as_mut() {
            p.push_str(QUALIFIED_NAME_MSG);
        }
    }
    problems
}

/// `validation.IsValidLabelValue`: `None` when valid (the empty string is
/// valid), otherwise Go's messages joined with `"; "`.
pub fn label_value_problems(value: &str) -> Option<String> {
    let mut problems = None;
    if value.len() > LABEL_VALUE_MAX_LEN {
        push_problem(&mut problems, "must be no more than 63 characters");
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        push_problem(&mut problems, LABEL_VALUE_MSG);
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(v: Value) -> Selector {
        match Selector::parse(&v) {
            Ok(s) => s,
            Err(e) => panic!("{v} should parse: {e}"),
        }
    }

    fn err(v: Value) -> SelectorError {
        match Selector::parse(&v) {
            Ok(s) => panic!("{v} should fail, got {s:?}"),
            Err(e) => e,
        }
    }

    fn labels(v: Value) -> crate::json::Map<'static> {
        match crate::json::Value::from_serde(&v) {
            crate::json::Value::Object(m) => m,
            _ => panic!("labels must be an object"),
        }
    }

    fn m(s: &Selector, l: Value) -> bool {
        s.matches(Some(&labels(l)))
    }

    #[test]
    fn match_labels_is_equality() {
        let s = sel(json!({"matchLabels": {"app": "web"}}));
        assert!(!s.is_empty());
        assert_eq!(s.requirements().len(), 1);
        assert_eq!(s.requirements()[0].operator(), Operator::In);
        assert!(m(&s, json!({"app": "web", "x": "y"})));
        assert!(!m(&s, json!({"app": "db"})));
        assert!(!m(&s, json!({})));
        assert!(!s.matches(None));
        // Values are compared exactly.
        assert!(!m(&s, json!({"app": "Web"})));
    }

    #[test]
    fn operator_in() {
        let s = sel(json!({"matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "staging"]}
        ]}));
        assert!(m(&s, json!({"env": "prod"})));
        assert!(m(&s, json!({"env": "staging"})));
        assert!(!m(&s, json!({"env": "dev"})));
        assert!(!m(&s, json!({"other": "prod"})));
        assert!(!s.matches(None));
    }

    #[test]
    fn operator_in_with_empty_value() {
        let s = sel(json!({"matchExpressions": [
            {"key": "env", "operator": "In", "values": [""]}
        ]}));
        assert!(m(&s, json!({"env": ""})));
        assert!(!m(&s, json!({"env": "x"})));
        assert!(!m(&s, json!({})));
    }

    #[test]
    fn operator_not_in() {
        let s = sel(json!({"matchExpressions": [
            {"key": "env", "operator": "NotIn", "values": ["prod"]}
        ]}));
        assert!(!m(&s, json!({"env": "prod"})));
        assert!(m(&s, json!({"env": "dev"})));
        // Absent key matches NotIn.
        assert!(m(&s, json!({"app": "x"})));
        assert!(m(&s, json!({})));
        assert!(s.matches(None));
    }

    #[test]
    fn operator_exists() {
        let s = sel(json!({"matchExpressions": [{"key": "team", "operator": "Exists"}]}));
        assert!(m(&s, json!({"team": "a"})));
        // Exists matches a label with an empty value.
        assert!(m(&s, json!({"team": ""})));
        assert!(!m(&s, json!({"other": "a"})));
        assert!(!s.matches(None));
        // Explicit empty / null values are fine.
        sel(json!({"matchExpressions": [{"key": "team", "operator": "Exists", "values": []}]}));
        sel(json!({"matchExpressions": [{"key": "team", "operator": "Exists", "values": null}]}));
    }

    #[test]
    fn operator_does_not_exist() {
        let s = sel(json!({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}));
        assert!(!m(&s, json!({"team": "a"})));
        assert!(!m(&s, json!({"team": ""})));
        assert!(m(&s, json!({"other": "a"})));
        assert!(m(&s, json!({})));
        assert!(s.matches(None));
    }

    #[test]
    fn non_string_label_values_are_absent() {
        let exists = sel(json!({"matchExpressions": [{"key": "n", "operator": "Exists"}]}));
        assert!(!m(&exists, json!({"n": 1})));
        assert!(!m(&exists, json!({"n": null})));
        let not_in = sel(json!({"matchExpressions": [
            {"key": "n", "operator": "NotIn", "values": ["1"]}
        ]}));
        assert!(m(&not_in, json!({"n": 1})));
        let in_ = sel(json!({"matchExpressions": [
            {"key": "n", "operator": "In", "values": ["true"]}
        ]}));
        assert!(!m(&in_, json!({"n": true})));
    }

    #[test]
    fn requirements_are_anded() {
        let s = sel(json!({
            "matchLabels": {"app": "web", "tier": "front"},
            "matchExpressions": [
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }));
        assert_eq!(s.requirements().len(), 5);
        assert!(m(
            &s,
            json!({"app": "web", "tier": "front", "team": "x", "env": "prod"})
        ));
        assert!(m(&s, json!({"app": "web", "tier": "front", "team": "x"})));
        assert!(!m(
            &s,
            json!({"app": "web", "tier": "front", "team": "x", "env": "dev"})
        ));
        assert!(!m(&s, json!({"app": "web", "tier": "back", "team": "x"})));
        assert!(!m(&s, json!({"app": "web", "tier": "front"})));
        assert!(!m(
            &s,
            json!({"app": "web", "tier": "front", "team": "x", "legacy": ""})
        ));
    }

    #[test]
    fn same_key_twice_is_kept_and_anded() {
        // No deduplication: both requirements must hold.
        let s = sel(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "app", "operator": "In", "values": ["db", "db"]}]
        }));
        assert_eq!(s.requirements().len(), 2);
        assert_eq!(s.requirements()[1].values(), ["db", "db"]);
        assert!(!m(&s, json!({"app": "web"})));
        assert!(!m(&s, json!({"app": "db"})));
    }

    #[test]
    fn empty_selectors() {
        for v in [
            json!({}),
            json!({"matchLabels": {}}),
            json!({"matchExpressions": []}),
            json!({"matchLabels": {}, "matchExpressions": []}),
            json!({"matchLabels": null, "matchExpressions": null}),
        ] {
            let s = sel(v.clone());
            assert!(s.is_empty(), "{v}");
            // labels.Everything() matches everything.
            assert!(s.matches(None));
            assert!(m(&s, json!({"a": "b"})));
        }
        assert!(!sel(json!({"matchLabels": {"a": "b"}})).is_empty());
        assert!(!sel(json!({"matchExpressions": [{"key": "a", "operator": "Exists"}]})).is_empty());
    }

    #[test]
    fn nulls_decode_like_go() {
        // null label value is "" (valid), matching an empty-valued label.
        let s = sel(json!({"matchLabels": {"a": null}}));
        assert!(m(&s, json!({"a": ""})));
        assert!(!m(&s, json!({"a": "x"})));
        // null list value is "".
        let s =
            sel(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": [null]}]}));
        assert_eq!(s.requirements()[0].values(), [""]);
        // A null expression is the zero requirement: operator "" is invalid.
        assert_eq!(
            err(json!({"matchExpressions": [null]})),
            SelectorError::InvalidOperator {
                path: "matchExpressions[0].operator".into(),
                operator: String::new()
            }
        );
        // Missing key is "" which is invalid.
        assert!(matches!(
            err(json!({"matchExpressions": [{"operator": "Exists"}]})),
            SelectorError::InvalidKey { .. }
        ));
    }

    #[test]
    fn invalid_operator() {
        let e = err(json!({"matchExpressions": [
            {"key": "a", "operator": "Exists"},
            {"key": "a", "operator": "Foo", "values": ["x"]}
        ]}));
        assert_eq!(
            e.to_string(),
            "matchExpressions[1].operator: \"Foo\" is not a valid operator"
        );
        assert!(!e.is_decode_error());
        // Case-sensitive, and the string-selector spellings are not accepted.
        for op in [
            "in", "notin", "exists", "IN", "Equals", "=", "!=", "Gt", "Lt", " In",
        ] {
            assert!(
                matches!(
                    err(
                        json!({"matchExpressions": [{"key": "a", "operator": op, "values": ["1"]}]})
                    ),
                    SelectorError::InvalidOperator { .. }
                ),
                "{op}"
            );
        }
        // The operator is checked before the key.
        assert!(matches!(
            err(json!({"matchExpressions": [{"key": "bad key", "operator": "Bad"}]})),
            SelectorError::InvalidOperator { .. }
        ));
    }

    #[test]
    fn value_count_rules() {
        for op in ["In", "NotIn"] {
            for values in [json!([]), json!(null)] {
                let e = err(
                    json!({"matchExpressions": [{"key": "a", "operator": op, "values": values}]}),
                );
                assert!(matches!(e, SelectorError::MissingValues { .. }), "{op}");
                assert!(e.to_string().starts_with("matchExpressions[0].values: "));
            }
            let e = err(json!({"matchExpressions": [{"key": "a", "operator": op}]}));
            assert!(matches!(e, SelectorError::MissingValues { .. }), "{op}");
        }
        for op in ["Exists", "DoesNotExist"] {
            let e =
                err(json!({"matchExpressions": [{"key": "a", "operator": op, "values": ["x"]}]}));
            assert!(matches!(e, SelectorError::UnexpectedValues { .. }), "{op}");
            // Even an empty-string value counts.
            let e =
                err(json!({"matchExpressions": [{"key": "a", "operator": op, "values": [""]}]}));
            assert!(matches!(e, SelectorError::UnexpectedValues { .. }), "{op}");
        }
    }

    #[test]
    fn invalid_keys() {
        let long_name = "a".repeat(64);
        let long_prefix = format!("{}/a", "a".repeat(254));
        let bad = [
            "",
            "bad key",
            "-a",
            "a-",
            "_a",
            "a.",
            "a/b/c",
            "/a",
            "a/",
            "/",
            "Example.com/a",
            "exa_mple.com/a",
            "-example.com/a",
            "example..com/a",
            "example.com./a",
            "ünïcode",
            "a\n",
            long_name.as_str(),
            long_prefix.as_str(),
        ];
        for key in bad {
            let e = err(json!({"matchExpressions": [{"key": key, "operator": "Exists"}]}));
            assert!(
                matches!(e, SelectorError::InvalidKey { ref path, .. } if path == "matchExpressions[0].key"),
                "{key:?}: {e:?}"
            );
            let e = err(json!({"matchLabels": {key: "v"}}));
            assert!(
                matches!(e, SelectorError::InvalidKey { ref path, .. } if path == "matchLabels"),
                "{key:?}: {e:?}"
            );
        }
        let max_name = "a".repeat(63);
        let max_prefix = format!("{}.{}/{}", "a".repeat(63), "b".repeat(189), "c".repeat(63));
        assert_eq!(max_prefix.len(), 253 + 1 + 63);
        let good = [
            "a",
            "A",
            "1",
            "app",
            "app.kubernetes.io/name",
            "sidecar.istio.io/inject",
            "a_b-c.d",
            "MyName",
            "123-abc",
            "x/y",
            "1.2.3/Z",
            max_name.as_str(),
            max_prefix.as_str(),
        ];
        for key in good {
            sel(json!({"matchExpressions": [{"key": key, "operator": "Exists"}]}));
            sel(json!({"matchLabels": {key: ""}}));
        }
    }

    #[test]
    fn key_messages_follow_go() {
        assert_eq!(
            label_key_problems("/"),
            Some(format!(
                "prefix part must be non-empty; name part must be non-empty; name part {QUALIFIED_NAME_MSG}"
            ))
        );
        assert_eq!(
            label_key_problems(&"a".repeat(64)),
            Some("name part must be no more than 63 characters".to_owned())
        );
        let e = err(json!({"matchLabels": {"bad key": "v"}}));
        assert!(
            e.to_string().starts_with(
                "matchLabels: invalid label key \"bad key\": name part must consist of"
            ),
            "{e}"
        );
        assert!(label_key_problems("a/b/c").is_some_and(|m| m.starts_with("a qualified name")));
    }

    #[test]
    fn invalid_values() {
        let long = "v".repeat(64);
        let bad = [
            "bad value",
            "-v",
            "v-",
            ".v",
            "v.",
            "a/b",
            "ü",
            "v\n",
            long.as_str(),
        ];
        for value in bad {
            let e = err(
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["ok", value]}]}),
            );
            assert!(
                matches!(e, SelectorError::InvalidValue { ref path, .. } if path == "matchExpressions[0].values[1]"),
                "{value:?}: {e:?}"
            );
            // matchLabels values are validated too.
            let e = err(json!({"matchLabels": {"a": value}}));
            assert!(
                matches!(e, SelectorError::InvalidValue { ref path, .. } if path == "matchLabels[\"a\"]"),
                "{value:?}: {e:?}"
            );
        }
        let max = "v".repeat(63);
        for value in ["", "v", "V_1-2.3", "12345", max.as_str()] {
            sel(
                json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": [value]}]}),
            );
            sel(json!({"matchLabels": {"a": value}}));
        }
        assert_eq!(
            label_value_problems(&format!("{long}-")),
            Some(format!(
                "must be no more than 63 characters; {LABEL_VALUE_MSG}"
            ))
        );
    }

    #[test]
    fn malformed_json() {
        // Not an object.
        for v in [json!(null), json!("a=b"), json!([]), json!(1), json!(true)] {
            let e = err(v.clone());
            assert!(matches!(e, SelectorError::WrongType { .. }), "{v}");
            assert!(e.is_decode_error());
        }
        assert_eq!(
            err(json!("app=web")).to_string(),
            "selector: expected object, found string"
        );
        // Unknown fields, field names are case-sensitive.
        for v in [
            json!({"matchLabel": {}}),
            json!({"MatchLabels": {"a": "b"}}),
            json!({"matchLabels": {}, "extra": 1}),
        ] {
            let e = err(v.clone());
            assert!(matches!(e, SelectorError::UnknownField { .. }), "{v}");
            assert!(e.is_decode_error());
        }
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "value": ["x"]}]}))
                .to_string(),
            "matchExpressions[0]: unknown field \"value\""
        );
        // Wrong types.
        let cases = [
            (json!({"matchLabels": []}), "matchLabels"),
            (json!({"matchLabels": "a=b"}), "matchLabels"),
            (json!({"matchLabels": {"a": 1}}), "matchLabels[\"a\"]"),
            (json!({"matchLabels": {"a": true}}), "matchLabels[\"a\"]"),
            (json!({"matchExpressions": {}}), "matchExpressions"),
            (json!({"matchExpressions": ["a"]}), "matchExpressions[0]"),
            (
                json!({"matchExpressions": [{"key": 1, "operator": "Exists"}]}),
                "matchExpressions[0].key",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": ["In"]}]}),
                "matchExpressions[0].operator",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]}),
                "matchExpressions[0].values",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]}),
                "matchExpressions[0].values[0]",
            ),
        ];
        for (v, want) in cases {
            let e = err(v.clone());
            assert!(
                matches!(e, SelectorError::WrongType { ref path, .. } if path == want),
                "{v}: {e:?}"
            );
        }
        // Decoding problems win over validation problems, wherever they are.
        let e = err(json!({
            "matchLabels": {"bad key": "v"},
            "matchExpressions": [{"key": "a", "operator": "In", "values": [2]}]
        }));
        assert!(e.is_decode_error(), "{e:?}");
    }

    #[test]
    fn validation_order_follows_go() {
        // matchLabels before matchExpressions, whatever the document order.
        let e = err(json!({
            "matchExpressions": [{"key": "a", "operator": "Bad"}],
            "matchLabels": {"a": "bad value"}
        }));
        assert!(matches!(e, SelectorError::InvalidValue { .. }), "{e:?}");
        // Key before value count, value count before values.
        let e = err(json!({"matchExpressions": [{"key": "bad key", "operator": "In"}]}));
        assert!(matches!(e, SelectorError::InvalidKey { .. }), "{e:?}");
        let e = err(
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["bad value"]}]}),
        );
        assert!(matches!(e, SelectorError::UnexpectedValues { .. }), "{e:?}");
    }
}
