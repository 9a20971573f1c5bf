//! The Pod as the engine sees it, and the rest of it as raw JSON text.
//!
//! Most of a Pod is never read by injection: managed fields, tolerations, affinity, the
//! application containers' env, mounts, commands and resources. Parsing those into
//! `serde_json::Value`s and formatting them again costs more than injecting the sidecar, so
//! [`split`] parses only the fields the engine reads and keeps the others as borrowed
//! `RawValue` text, and [`write_pod`] writes the engine's Pod with that text spliced back in
//! verbatim. Anything unusual (custom templates, deep nesting, text a Value cannot hold)
//! makes [`split`] decline, and the caller parses the whole payload as before; re-injection,
//! duplicate or unnamed containers and fields of an unexpected shape keep the containers
//! whole. Either way the engine's checks and messages stay the same.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::annotations as ann;
use crate::settings::Settings;

/// Fields the engine reads or writes, by object. Everything else in these objects is
/// passed through as text.
const METADATA_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "labels",
    "annotations",
    "ownerReferences",
];
const SPEC_FIELDS: &[&str] = &[
    "containers",
    "initContainers",
    "volumes",
    "imagePullSecrets",
    "hostNetwork",
    "securityContext",
    "serviceAccountName",
];
/// Of an application container: its identity, ports and probes (probe rewriting, pod
/// ports), lifecycle hooks (rewritten like probes), security context (OpenShift UIDs),
/// image (OpenTelemetry service version) and restart policy (native sidecars).
const CONTAINER_FIELDS: &[&str] = &[
    "name",
    "image",
    "ports",
    "readinessProbe",
    "livenessProbe",
    "startupProbe",
    "lifecycle",
    "securityContext",
    "restartPolicy",
];
/// Container fields the Pod shape check looks at, and the JSON type it expects of them
/// (`[` a list of objects, `{` an object). A raw value of another shape makes the container
/// fully parsed so that the check reports it.
const CHECKED_CONTAINER_FIELDS: &[(&str, u8)] =
    &[("env", b'['), ("volumeMounts", b'['), ("resources", b'{')];
/// Containers the templates define; they are merged with the template and always parsed.
const TEMPLATE_CONTAINERS: &[&str] = &["istio-proxy", "istio-init", "istio-validation"];
/// Built-in templates that touch no application container (`grpc-*` add env and mounts to
/// every container).
const SPLITTING_TEMPLATES: &[&str] = &["sidecar", "gateway"];

/// An object's fields kept as text, in input order, without duplicate keys.
type Fields<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// What [`split`] kept as text, by the object it belongs to.
#[derive(Default, Debug)]
pub struct Rest<'a> {
    top: Fields<'a>,
    metadata: Fields<'a>,
    spec: Fields<'a>,
    /// Application containers by name (unique across `containers` and `initContainers`).
    containers: Vec<(String, Fields<'a>)>,
}

impl Rest<'_> {
    pub fn is_empty(&self) -> bool {
        self.top.is_empty()
            && self.metadata.is_empty()
            && self.spec.is_empty()
            && self.containers.is_empty()
    }
}

/// Nesting beyond this (within the Pod) is left to the whole parse, which has serde_json's
/// recursion limit: text copied through must not be deeper than the host can read back.
const MAX_DEPTH: usize = 100;

/// Parses the Pod text into the engine's Value (only the fields it reads) and the rest.
/// None when splitting is not safe: the caller then parses the whole payload as before.
pub fn split<'a>(object: &'a RawValue, settings: &Settings) -> Option<(Value, Rest<'a>)> {
    if !settings.templates.is_empty() || deeper_than(object.get(), MAX_DEPTH) {
        // Custom templates may write any field of the Pod.
        return None;
    }
    try_split(object, settings)
}

/// Whether JSON text nests arrays and objects deeper than `limit`.
fn deeper_than(text: &str, limit: usize) -> bool {
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

fn try_split<'a>(object: &'a RawValue, settings: &Settings) -> Option<(Value, Rest<'a>)> {
    let top = fields(object)?;
    let mut rest = Rest::default();
    let mut pod = Map::new();
    let mut spec_raw = None;
    for (key, raw) in top {
        match key.as_ref() {
            "metadata" => {
                let (metadata, metadata_rest) = split_fields(raw, METADATA_FIELDS)?;
                pod.insert("metadata".into(), Value::Object(metadata));
                rest.metadata = metadata_rest;
            }
            "spec" => spec_raw = Some(raw),
            "apiVersion" | "kind" => {
                pod.insert(key.into_owned(), serde_json::from_str(raw.get()).ok()?);
            }
            _ => rest.top.push((key, raw)),
        }
    }
    if let Some(raw) = spec_raw {
        let split_apps = containers_may_split(&pod, settings);
        let spec = split_spec(raw, split_apps, &mut rest)?;
        pod.insert("spec".into(), Value::Object(spec));
    }
    Some((Value::Object(pod), rest))
}

/// Application containers are split only when the selected templates leave them alone and
/// this is a first injection (re-injection strips whatever the status annotation names).
fn containers_may_split(pod: &Map<String, Value>, settings: &Settings) -> bool {
    let annotations = pod
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object);
    if annotations.is_some_and(|a| a.contains_key(ann::STATUS)) {
        return false;
    }
    let splitting = |name: &str| match settings.aliases.get(name) {
        Some(targets) => targets
            .iter()
            .all(|t| SPLITTING_TEMPLATES.contains(&t.as_str())),
        None => SPLITTING_TEMPLATES.contains(&name),
    };
    match annotations
        .and_then(|a| a.get(ann::TEMPLATES))
        .and_then(Value::as_str)
    {
        Some(list) => list.split(',').all(|n| splitting(n.trim())),
        None => settings.default_templates.iter().all(|n| splitting(n)),
    }
}

fn split_spec<'a>(
    raw: &'a RawValue,
    split_apps: bool,
    rest: &mut Rest<'a>,
) -> Option<Map<String, Value>> {
    let mut spec = Map::new();
    let mut names: Vec<String> = Vec::new();
    for (key, raw) in fields(raw)? {
        let key = key.as_ref();
        if split_apps
            && matches!(key, "containers" | "initContainers")
            && let Ok(RawArray(items)) = serde_json::from_str(raw.get())
        {
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                list.push(split_container(item, &mut names, &mut rest.containers)?);
            }
            spec.insert(key.to_string(), Value::Array(list));
            continue;
        }
        if SPEC_FIELDS.contains(&key) {
            spec.insert(key.to_string(), serde_json::from_str(raw.get()).ok()?);
        } else {
            rest.spec.push((Cow::Owned(key.to_string()), raw));
        }
    }
    Some(spec)
}

/// One item of a container list. Containers the templates define, and containers whose
/// text fields do not have the shape the Pod check expects, are parsed whole. None (no
/// split at all) for an unnamed container or a name seen before.
fn split_container<'a>(
    raw: &'a RawValue,
    names: &mut Vec<String>,
    rest: &mut Vec<(String, Fields<'a>)>,
) -> Option<Value> {
    let whole = || serde_json::from_str::<Value>(raw.get()).ok();
    let Some(pairs) = fields(raw) else {
        return whole();
    };
    let name: String = match pairs.iter().rev().find(|(k, _)| k == "name") {
        Some((_, n)) => serde_json::from_str(n.get()).ok()?,
        None => return None,
    };
    if names.contains(&name) {
        return None;
    }
    names.push(name.clone());
    if TEMPLATE_CONTAINERS.contains(&name.as_str()) || !checked_shapes_hold(&pairs) {
        return whole();
    }
    let mut map = Map::new();
    let mut text = Fields::new();
    for (key, raw) in pairs {
        if CONTAINER_FIELDS.contains(&key.as_ref()) {
            map.insert(key.into_owned(), serde_json::from_str(raw.get()).ok()?);
        } else {
            text.push((key, raw));
        }
    }
    if !text.is_empty() {
        rest.push((name, text));
    }
    Some(Value::Object(map))
}

fn checked_shapes_hold(pairs: &Fields<'_>) -> bool {
    pairs.iter().all(|(key, raw)| {
        let Some(&(_, open)) = CHECKED_CONTAINER_FIELDS.iter().find(|(f, _)| f == key) else {
            return true;
        };
        let text = raw.get().trim_start();
        if text == "null" {
            return true;
        }
        match open {
            b'[' => serde_json::from_str::<RawArray>(text)
                .is_ok_and(|RawArray(items)| items.iter().all(|i| i.get().starts_with('{'))),
            _ => text.starts_with('{'),
        }
    })
}

/// Splits one object: fields in `visible` parsed into a map, the others kept as text.
fn split_fields<'a>(
    raw: &'a RawValue,
    visible: &[&str],
) -> Option<(Map<String, Value>, Fields<'a>)> {
    let mut map = Map::new();
    let mut rest = Fields::new();
    for (key, raw) in fields(raw)? {
        if visible.contains(&key.as_ref()) {
            map.insert(key.into_owned(), serde_json::from_str(raw.get()).ok()?);
        } else {
            rest.push((key, raw));
        }
    }
    Some((map, rest))
}

/// The fields of a JSON object as (unescaped key, raw value), the last of duplicate keys
/// winning as in serde_json's maps. None when `raw` is not an object.
fn fields(raw: &RawValue) -> Option<Fields<'_>> {
    let RawObject(mut pairs) = serde_json::from_str(raw.get()).ok()?;
    dedup_last_wins(&mut pairs);
    Some(pairs)
}

fn dedup_last_wins(pairs: &mut Fields<'_>) {
    let has_duplicates = pairs
        .iter()
        .enumerate()
        .any(|(i, (k, _))| pairs[..i].iter().any(|(p, _)| p == k));
    if has_duplicates {
        let mut seen: Vec<Cow<'_, str>> = Vec::new();
        let mut kept = Fields::new();
        for (k, v) in pairs.drain(..).rev() {
            if !seen.contains(&k) {
                seen.push(k.clone());
                kept.push((k, v));
            }
        }
        kept.reverse();
        *pairs = kept;
    }
}

/// A JSON object read as its fields, values left as text.
struct RawObject<'a>(Fields<'a>);

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Fields::new();
                while let Some(Key(k)) = map.next_key()? {
                    pairs.push((k, map.next_value()?));
                }
                Ok(RawObject(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

/// A JSON array read as its items, left as text.
struct RawArray<'a>(Vec<&'a RawValue>);

impl<'de> Deserialize<'de> for RawArray<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawArray<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(RawArray(items))
            }
        }
        d.deserialize_seq(V)
    }
}

/// An object key, borrowed from the input unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A field kept as text found no place in the engine's Pod (its object was removed or
/// rewritten), so the caller must answer from a whole parse instead.
#[derive(Debug, PartialEq, Eq)]
pub struct Lost;

/// Writes the engine's Pod as JSON with the fields kept as text spliced back in verbatim.
pub fn write_pod(out: &mut Vec<u8>, pod: &Value, rest: &Rest<'_>) -> Result<(), Lost> {
    let Value::Object(top) = pod else {
        return if rest.is_empty() {
            write_value(out, pod);
            Ok(())
        } else {
            Err(Lost)
        };
    };
    let mut placed = Placed::default();
    let mut spliced = vec![0u8; rest.containers.len()];
    write_object(out, top, &rest.top, |out, key, value| match (key, value) {
        ("metadata", Value::Object(m)) => {
            placed.metadata = true;
            write_object(out, m, &rest.metadata, plain)
        }
        ("spec", Value::Object(s)) => {
            placed.spec = true;
            write_object(out, s, &rest.spec, |out, key, value| match (key, value) {
                ("containers" | "initContainers", Value::Array(items)) => {
                    write_containers(out, items, &rest.containers, &mut spliced)
                }
                _ => plain(out, key, value),
            })
        }
        _ => plain(out, key, value),
    })?;
    let all_placed = (placed.metadata || rest.metadata.is_empty())
        && (placed.spec || rest.spec.is_empty())
        && spliced.iter().all(|&n| n == 1);
    if all_placed { Ok(()) } else { Err(Lost) }
}

#[derive(Default)]
struct Placed {
    metadata: bool,
    spec: bool,
}

fn write_containers(
    out: &mut Vec<u8>,
    items: &[Value],
    containers: &[(String, Fields<'_>)],
    spliced: &mut [u8],
) -> Result<(), Lost> {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let text = item
            .get("name")
            .and_then(Value::as_str)
            .and_then(|name| containers.iter().position(|(n, _)| n == name));
        match (item, text) {
            (Value::Object(map), Some(at)) => {
                spliced[at] = spliced[at].saturating_add(1);
                write_object(out, map, &containers[at].1, plain)?;
            }
            _ => write_value(out, item),
        }
    }
    out.push(b']');
    Ok(())
}

fn plain(out: &mut Vec<u8>, _key: &str, value: &Value) -> Result<(), Lost> {
    write_value(out, value);
    Ok(())
}

/// An object: the map's fields (values written by `child`), then the text fields. A text
/// field the engine also wrote would be a duplicate key: that is a lost field too.
fn write_object(
    out: &mut Vec<u8>,
    map: &Map<String, Value>,
    text: &Fields<'_>,
    mut child: impl FnMut(&mut Vec<u8>, &str, &Value) -> Result<(), Lost>,
) -> Result<(), Lost> {
    out.push(b'{');
    let mut first = true;
    for (key, value) in map {
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, key);
        out.push(b':');
        child(out, key, value)?;
    }
    for (key, raw) in text {
        if map.contains_key(key.as_ref()) {
            return Err(Lost);
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, key);
        out.push(b':');
        out.extend_from_slice(raw.get().as_bytes());
    }
    out.push(b'}');
    Ok(())
}

/// Compact JSON, as `serde_json::to_writer` writes it.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            // Cannot fail: writing to a Vec.
            let _ = serde_json::to_writer(&mut *out, n);
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, value)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write_value(out, value);
            }
            out.push(b'}');
        }
    }
}

/// A JSON string: quotes, backslashes and control characters escaped, the rest copied in
/// runs.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}
