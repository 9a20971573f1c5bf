//! The Pod as the engine sees it, and the rest of it as raw JSON text.
//!
//! Most of a Pod is never read by injection: managed fields, tolerations, affinity, most
//! annotations, the application containers' env, mounts, commands and resources. Parsing
//! those into `serde_json::Value`s and formatting them again costs more than injecting the
//! sidecar, so [`PodParts`] (read in the same pass as the rest of the payload) parses only
//! the fields the engine reads and borrows the others as `RawValue` text,
//! [`PodParts::assemble`] hands the engine its Pod, and [`write_pod`] writes the engine's
//! Pod with that text spliced back in verbatim. Anything unusual (custom templates, deep
//! nesting, text a Value cannot hold) makes `assemble` decline, and the caller parses the
//! whole payload as before; re-injection, duplicate container names and fields of an
//! unexpected shape keep the containers (or annotations) whole. Either way the engine's
//! checks and messages stay the same.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::annotations as ann;
use crate::pod;
use crate::prerender::Prerendered;
use crate::settings::Settings;
use crate::template::node::NodeMap;

/// Visitor methods for every JSON value but objects (and arrays, when the visitor reads
/// them itself): the value whole, as serde_json's own Value would read it.
macro_rules! scalars_whole {
    ($wrap:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Value::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Value::Null))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok($wrap(Value::Bool(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok($wrap(Value::from(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok($wrap(Value::from(v)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok($wrap(Value::from(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok($wrap(Value::String(v.to_string())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok($wrap(Value::String(v)))
        }
    };
}

/// `scalars_whole!` plus arrays, whole.
macro_rules! whole_otherwise {
    ($wrap:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Value::deserialize(SeqAccessDeserializer::new(seq)).map($wrap)
        }
        scalars_whole!($wrap);
    };
}

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
/// Annotations the engine reads or rewrites: Istio's (`*istio.io/*`), Prometheus' (any
/// spelling starts with `prometheus`), the CNI networks, kubectl's default containers,
/// Datadog's env and OpenTelemetry's resource attributes. The others pass through as text.
fn engine_reads_annotation(key: &str) -> bool {
    has_istio_domain(key)
        || key.starts_with("prometheus")
        || key.starts_with("resource.opentelemetry.io/")
        || matches!(
            key,
            "k8s.v1.cni.cncf.io/networks"
                | "kubectl.kubernetes.io/default-container"
                | "kubectl.kubernetes.io/default-logs-container"
                | "apm.datadoghq.com/env"
        )
}

/// `key.contains("istio.io/")`, without building a substring searcher for every key: each
/// occurrence ends at a `/` preceded by `istio.io`.
fn has_istio_domain(key: &str) -> bool {
    let bytes = key.as_bytes();
    bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'/' && bytes[..i].ends_with(b"istio.io"))
}

/// Containers the templates define; they are merged with the template and always parsed.
const TEMPLATE_CONTAINERS: &[&str] = &["istio-proxy", "istio-init", "istio-validation"];
/// Built-in templates that touch no application container (`grpc-*` add env and mounts to
/// every container).
const SPLITTING_TEMPLATES: &[&str] = &["sidecar", "gateway"];

/// An object's fields kept as text, in input order, without duplicate keys.
type Fields<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// What [`PodParts::assemble`] kept as text, by the object it belongs to.
#[derive(Default, Debug)]
pub struct Rest<'a> {
    top: Fields<'a>,
    metadata: Fields<'a>,
    annotations: Fields<'a>,
    spec: Fields<'a>,
    /// Application containers by name (unique across `containers` and `initContainers`).
    containers: Vec<(String, Fields<'a>)>,
    /// Volumes by name (unique).
    volumes: Vec<(String, Fields<'a>)>,
}

impl Rest<'_> {
    pub fn is_empty(&self) -> bool {
        self.top.is_empty()
            && self.metadata.is_empty()
            && self.annotations.is_empty()
            && self.spec.is_empty()
            && self.containers.is_empty()
            && self.volumes.is_empty()
    }
}

/// Nesting beyond this (within a field kept as text) is left to the whole parse, which has
/// serde_json's recursion limit: text copied through must not be deeper than the host can
/// read back.
const MAX_DEPTH: usize = 100;

/// The Pod as read in one pass over the payload: what the engine reads parsed, the rest
/// borrowed as text. [`PodParts::assemble`] turns it into the engine's Value and the rest.
#[derive(Debug)]
pub struct PodParts<'a> {
    /// The top level when it is not an object.
    whole: Option<Value>,
    top: Map<String, Value>,
    top_text: Fields<'a>,
    metadata: Option<Metadata<'a>>,
    spec: Option<Spec<'a>>,
}

#[derive(Debug)]
enum Metadata<'a> {
    Split {
        fields: Map<String, Value>,
        text: Fields<'a>,
        annotations: Option<Part<'a>>,
    },
    Whole(Value),
}

/// An object split into parsed fields and text, or any other JSON value, whole.
#[derive(Debug)]
enum Part<'a> {
    Split(Map<String, Value>, Fields<'a>),
    Whole(Value),
}

#[derive(Debug)]
enum Spec<'a> {
    Split {
        fields: Map<String, Value>,
        text: Fields<'a>,
        /// `containers`, `initContainers` and `volumes`, when they are lists.
        lists: Vec<(&'static str, Vec<Part<'a>>)>,
    },
    Whole(Value),
}

impl<'a> PodParts<'a> {
    /// The engine's Pod and the text to splice back. None when the split must not be used
    /// (custom templates, text a Value could not hold): the caller parses the whole payload.
    pub fn assemble(self, settings: &Settings) -> Option<(Value, Rest<'a>)> {
        if let Some(whole) = self.whole {
            return Some((whole, Rest::default()));
        }
        if !settings.templates.is_empty() {
            // Custom templates may write any field of the Pod.
            return None;
        }
        let mut rest = Rest::default();
        let mut pod = self.top;
        if !texts_ok(&self.top_text) {
            return None;
        }
        rest.top = self.top_text;
        match self.metadata {
            Some(Metadata::Split {
                mut fields,
                text,
                annotations,
            }) => {
                if !texts_ok(&text) {
                    return None;
                }
                match annotations {
                    Some(Part::Split(mut map, text)) => {
                        // The Pod check must see values that are not strings.
                        if text.iter().all(|(_, raw)| raw.get().starts_with('"')) {
                            if !texts_ok(&text) {
                                return None;
                            }
                            rest.annotations = text;
                        } else {
                            for (key, raw) in text {
                                map.insert(key.into_owned(), serde_json::from_str(raw.get()).ok()?);
                            }
                        }
                        fields.insert("annotations".into(), Value::Object(map));
                    }
                    Some(Part::Whole(v)) => {
                        fields.insert("annotations".into(), v);
                    }
                    None => {}
                }
                pod.insert("metadata".into(), Value::Object(fields));
                rest.metadata = text;
            }
            Some(Metadata::Whole(v)) => {
                pod.insert("metadata".into(), v);
            }
            None => {}
        }
        match self.spec {
            Some(Spec::Split {
                mut fields,
                text,
                lists,
            }) => {
                if !texts_ok(&text) {
                    return None;
                }
                rest.spec = text;
                let split_apps = containers_may_split(&pod, settings);
                let names = app_container_names(&lists);
                for (key, items) in lists {
                    let list = if key == "volumes" {
                        volumes(items, split_apps, &mut rest.volumes)?
                    } else {
                        let mut list = Vec::with_capacity(items.len());
                        for item in items {
                            list.push(container(item, split_apps, &names, &mut rest.containers)?);
                        }
                        list
                    };
                    fields.insert(key.to_string(), Value::Array(list));
                }
                pod.insert("spec".into(), Value::Object(fields));
            }
            Some(Spec::Whole(v)) => {
                pod.insert("spec".into(), v);
            }
            None => {}
        }
        Some((Value::Object(pod), rest))
    }
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

/// Names of split containers that appear once across both lists; the others stay whole.
fn app_container_names(lists: &[(&'static str, Vec<Part<'_>>)]) -> Vec<String> {
    let all: Vec<&str> = lists
        .iter()
        .filter(|(key, _)| *key != "volumes")
        .flat_map(|(_, items)| items)
        .filter_map(|item| match item {
            Part::Split(fields, _) => fields.get("name").and_then(Value::as_str),
            Part::Whole(_) => None,
        })
        .collect();
    // Counted in a map: a hostile Pod may have thousands of containers.
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for n in &all {
        *counts.entry(n).or_default() += 1;
    }
    all.iter()
        .filter(|n| counts[*n] == 1)
        .map(|n| n.to_string())
        .collect()
}

/// The Pod's volumes: all injection reads of them is their names (template volumes are
/// merged in by name; a volume the template also defines gets the template's fields, and a
/// field both define shows up as a duplicate key, which the writer reports as lost). Kept
/// whole when the names are not unique or containers are not split (re-injection strips
/// volumes by name, `grpc-*` templates add their own).
fn volumes<'a>(
    items: Vec<Part<'a>>,
    split: bool,
    rest: &mut Vec<(String, Fields<'a>)>,
) -> Option<Vec<Value>> {
    let names: Vec<Option<&str>> = items
        .iter()
        .map(|item| match item {
            Part::Split(fields, _) => fields.get("name").and_then(Value::as_str),
            Part::Whole(_) => None,
        })
        .collect();
    // Counted in a map: a hostile Pod may have thousands of volumes.
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for n in names.iter().flatten() {
        *counts.entry(n).or_default() += 1;
    }
    let unique = |name: &str| counts.get(name) == Some(&1);
    let keep: Vec<Option<String>> = names
        .iter()
        .map(|n| n.filter(|n| split && unique(n)).map(str::to_string))
        .collect();
    let mut list = Vec::with_capacity(items.len());
    for (item, keep) in items.into_iter().zip(keep) {
        match item {
            Part::Whole(v) => list.push(v),
            Part::Split(mut fields, text) => {
                match keep {
                    Some(name) if !text.is_empty() => {
                        if !texts_ok(&text) {
                            return None;
                        }
                        rest.push((name, text));
                    }
                    _ => {
                        for (key, raw) in text {
                            fields.insert(key.into_owned(), serde_json::from_str(raw.get()).ok()?);
                        }
                    }
                }
                list.push(Value::Object(fields));
            }
        }
    }
    Some(list)
}

/// One container: its text kept aside when it may be, else parsed whole.
fn container<'a>(
    item: Part<'a>,
    split_apps: bool,
    unique_names: &[String],
    rest: &mut Vec<(String, Fields<'a>)>,
) -> Option<Value> {
    let (mut fields, text) = match item {
        Part::Whole(v) => return Some(v),
        Part::Split(fields, text) => (fields, text),
    };
    if text.is_empty() {
        return Some(Value::Object(fields));
    }
    let name = fields.get("name").and_then(Value::as_str).unwrap_or("");
    let keep_text = split_apps
        && !TEMPLATE_CONTAINERS.contains(&name)
        && unique_names.iter().any(|n| n == name);
    // One scan of each field answers both: may the text be copied, and do the shape
    // check's rules hold (if not, the container is parsed whole so that the check reports
    // it).
    let scans: Vec<(bool, Scan)> = if keep_text {
        text.iter()
            .map(|(key, raw)| {
                let scan = Scan::of(raw.get());
                (shape_holds(key, raw.get(), &scan), scan)
            })
            .collect()
    } else {
        Vec::new()
    };
    if keep_text && scans.iter().all(|(shape, _)| *shape) {
        if !scans.iter().all(|(_, scan)| scan.copyable) {
            return None;
        }
        rest.push((name.to_string(), text));
    } else {
        for (key, raw) in text {
            fields.insert(key.into_owned(), serde_json::from_str(raw.get()).ok()?);
        }
    }
    Some(Value::Object(fields))
}

/// Whether the Pod shape check's container rule (`pod::check_shape`) for `key` holds for
/// this text: a list of objects, an object, or null, where the check wants those.
fn shape_holds(key: &str, text: &str, scan: &Scan) -> bool {
    if text == "null" {
        return true;
    }
    if pod::CONTAINER_LIST_FIELDS.contains(&key) {
        scan.list_of_objects
    } else if pod::CONTAINER_OBJECT_FIELDS.contains(&key) {
        text.starts_with('{')
    } else {
        true
    }
}

fn texts_ok(fields: &Fields<'_>) -> bool {
    fields.iter().all(|(_, raw)| Scan::of(raw.get()).copyable)
}

/// What one pass over a value's text (valid JSON, as the raw scan left it) finds.
struct Scan {
    /// The text can be copied through as the whole parse would have read it: nesting
    /// within [`MAX_DEPTH`], no `\u` escape of a surrogate (a Value cannot hold a lone one)
    /// and no number with an exponent (a Value cannot hold `1e400`). The raw scan checks
    /// none of these; anything doubtful goes to the whole parse, which decides.
    copyable: bool,
    /// The text is a list whose items are all objects.
    list_of_objects: bool,
}

impl Scan {
    fn of(text: &str) -> Scan {
        let bytes = text.as_bytes();
        let doubtful = Scan {
            copyable: false,
            list_of_objects: false,
        };
        if bytes.first() == Some(&b'"') && !bytes.contains(&b'\\') {
            // A plain string (most annotations): nothing to check.
            return Scan {
                copyable: true,
                list_of_objects: false,
            };
        }
        let list = bytes.first() == Some(&b'[');
        let mut list_of_objects = list;
        // Inside the top-level list, before an item's first byte.
        let mut item_next = false;
        let (mut depth, mut i) = (0usize, 0);
        while i < bytes.len() {
            let b = bytes[i];
            if item_next && !b.is_ascii_whitespace() {
                item_next = false;
                list_of_objects &= b == b'{' || b == b']';
            }
            match b {
                b'"' => {
                    i += 1;
                    // The plain run of a string, eight bytes at a time.
                    while let Some(chunk) = bytes.get(i..i + 8) {
                        let word = u64::from_le_bytes([
                            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6],
                            chunk[7],
                        ]);
                        if has_byte(word, b'"') || has_byte(word, b'\\') {
                            break;
                        }
                        i += 8;
                    }
                    while i < bytes.len() && bytes[i] != b'"' {
                        if bytes[i] == b'\\' {
                            if bytes.get(i + 1) == Some(&b'u')
                                && matches!(bytes.get(i + 2), Some(b'd' | b'D'))
                                && matches!(
                                    bytes.get(i + 3),
                                    Some(b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
                                )
                            {
                                return doubtful;
                            }
                            i += 1;
                        }
                        i += 1;
                    }
                }
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return doubtful;
                    }
                    item_next = list && depth == 1;
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b',' => item_next = list && depth == 1,
                b'e' | b'E' if i > 0 && matches!(bytes[i - 1], b'0'..=b'9' | b'.') => {
                    return doubtful;
                }
                _ => {}
            }
            i += 1;
        }
        Scan {
            copyable: true,
            list_of_objects,
        }
    }
}

// ---------------------------------------------------------------------------------------
// One-pass deserialization
// ---------------------------------------------------------------------------------------

// For any `'a` the input outlives, so that a borrowing struct can hold `PodParts<'a>`.
impl<'de: 'a, 'a> Deserialize<'de> for PodParts<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PodParts<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pod = PodParts {
                    whole: None,
                    top: Map::new(),
                    top_text: Fields::new(),
                    metadata: None,
                    spec: None,
                };
                while let Some(Key(key)) = map.next_key()? {
                    match key.as_ref() {
                        "metadata" => pod.metadata = Some(map.next_value::<Metadata>()?),
                        "spec" => pod.spec = Some(map.next_value::<Spec>()?),
                        "apiVersion" | "kind" => {
                            pod.top.insert(key.into_owned(), map.next_value()?);
                        }
                        _ => pod.top_text.push((key, map.next_value()?)),
                    }
                }
                Ok(pod)
            }
            whole_otherwise!(|v| PodParts {
                whole: Some(v),
                top: Map::new(),
                top_text: Fields::new(),
                metadata: None,
                spec: None,
            });
        }
        d.deserialize_any(V)
    }
}

/// Reads an object into the fields the predicate picks (parsed) and the others (text).
struct PartSeed(fn(&str) -> bool);

impl<'de> DeserializeSeed<'de> for PartSeed {
    type Value = Part<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V(fn(&str) -> bool);
        impl<'de> Visitor<'de> for V {
            type Value = Part<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Map::new();
                let mut text = Fields::new();
                while let Some(Key(key)) = map.next_key()? {
                    if (self.0)(&key) {
                        fields.insert(key.into_owned(), map.next_value()?);
                    } else {
                        text.push((key, map.next_value()?));
                    }
                }
                Ok(Part::Split(fields, text))
            }
            whole_otherwise!(Part::Whole);
        }
        d.deserialize_any(V(self.0))
    }
}

impl<'de> Deserialize<'de> for Metadata<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Metadata<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Map::new();
                let mut text = Fields::new();
                let mut annotations = None;
                while let Some(Key(key)) = map.next_key()? {
                    if key == "annotations" {
                        annotations = Some(map.next_value_seed(PartSeed(engine_reads_annotation))?);
                    } else if METADATA_FIELDS.contains(&key.as_ref()) {
                        fields.insert(key.into_owned(), map.next_value()?);
                    } else {
                        text.push((key, map.next_value()?));
                    }
                }
                Ok(Metadata::Split {
                    fields,
                    text,
                    annotations,
                })
            }
            whole_otherwise!(Metadata::Whole);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Spec<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Spec<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Map::new();
                let mut text = Fields::new();
                let mut lists: Vec<(&'static str, Vec<Part<'de>>)> = Vec::new();
                while let Some(Key(key)) = map.next_key()? {
                    let list: Option<(&'static str, ListSeed)> = match key.as_ref() {
                        "containers" => Some(("containers", ListSeed(container_field))),
                        "initContainers" => Some(("initContainers", ListSeed(container_field))),
                        "volumes" => Some(("volumes", ListSeed(|key| key == "name"))),
                        _ => None,
                    };
                    if let Some((list_key, seed)) = list {
                        lists.retain(|(k, _)| *k != list_key);
                        fields.remove(list_key);
                        match map.next_value_seed(seed)? {
                            ItemList::Items(items) => lists.push((list_key, items)),
                            ItemList::Whole(v) => {
                                fields.insert(list_key.to_string(), v);
                            }
                        }
                    } else if SPEC_FIELDS.contains(&key.as_ref()) {
                        fields.insert(key.into_owned(), map.next_value()?);
                    } else {
                        text.push((key, map.next_value()?));
                    }
                }
                Ok(Spec::Split {
                    fields,
                    text,
                    lists,
                })
            }
            whole_otherwise!(Spec::Whole);
        }
        d.deserialize_any(V)
    }
}

fn container_field(key: &str) -> bool {
    CONTAINER_FIELDS.contains(&key)
}

enum ItemList<'a> {
    Items(Vec<Part<'a>>),
    Whole(Value),
}

/// A list whose items are split by the predicate (any other JSON value is read whole).
struct ListSeed(fn(&str) -> bool);

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = ItemList<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V(fn(&str) -> bool);
        impl<'de> Visitor<'de> for V {
            type Value = ItemList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element_seed(PartSeed(self.0))? {
                    items.push(item);
                }
                Ok(ItemList::Items(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Value::deserialize(MapAccessDeserializer::new(map)).map(ItemList::Whole)
            }
            scalars_whole!(ItemList::Whole);
        }
        d.deserialize_any(V(self.0))
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
pub fn write_pod(
    out: &mut Vec<u8>,
    pod: &Value,
    rest: &Rest<'_>,
    prerendered: &Prerendered,
) -> Result<(), Lost> {
    let Value::Object(top) = pod else {
        return if rest.is_empty() && prerendered.is_empty() {
            write_value(out, pod);
            Ok(())
        } else {
            Err(Lost)
        };
    };
    let mut placed = Placed::default();
    let mut spliced = vec![0u8; rest.containers.len()];
    let mut spliced_volumes = vec![0u8; rest.volumes.len()];
    // Placeholders replaced by their kept container.
    let mut written = 0;
    write_object(out, top, &rest.top, |out, key, value| match (key, value) {
        ("metadata", Value::Object(m)) => {
            placed.metadata = true;
            write_object(out, m, &rest.metadata, |out, key, value| {
                match (key, value) {
                    ("annotations", Value::Object(a)) => {
                        placed.annotations = true;
                        write_object(out, a, &rest.annotations, plain)
                    }
                    _ => plain(out, key, value),
                }
            })
        }
        ("spec", Value::Object(s)) => {
            placed.spec = true;
            write_object(out, s, &rest.spec, |out, key, value| match (key, value) {
                ("containers" | "initContainers", Value::Array(items)) => write_named(
                    out,
                    items,
                    &rest.containers,
                    &mut spliced,
                    Kept::Placeholders(&prerendered.containers),
                    &mut written,
                ),
                ("volumes", Value::Array(items)) => write_named(
                    out,
                    items,
                    &rest.volumes,
                    &mut spliced_volumes,
                    Kept::Appended(&prerendered.volumes),
                    &mut written,
                ),
                _ => plain(out, key, value),
            })
        }
        _ => plain(out, key, value),
    })?;
    let all_placed = (placed.metadata || rest.metadata.is_empty())
        && (placed.annotations || rest.annotations.is_empty())
        && (placed.spec || rest.spec.is_empty())
        && spliced.iter().chain(&spliced_volumes).all(|&n| n == 1)
        && written == prerendered.containers.len() + prerendered.volumes.len();
    if all_placed { Ok(()) } else { Err(Lost) }
}

#[derive(Default)]
struct Placed {
    metadata: bool,
    annotations: bool,
    spec: bool,
}

/// A list of named objects (containers, volumes), each with its text fields spliced back;
/// `spliced` counts how often each was placed. A placeholder (an object with only a name)
/// of a container kept aside is written as that container; `written` counts those.
fn write_named(
    out: &mut Vec<u8>,
    items: &[Value],
    texts: &[(String, Fields<'_>)],
    spliced: &mut [u8],
    kept: Kept<'_>,
    written: &mut usize,
) -> Result<(), Lost> {
    out.push(b'[');
    // The first text of each name, found in a map when there are many (a hostile Pod's
    // thousands of containers), by a scan when there are few.
    let index: Option<std::collections::HashMap<&str, usize>> = (texts.len() > 16).then(|| {
        let mut index = std::collections::HashMap::new();
        for (i, (n, _)) in texts.iter().enumerate() {
            index.entry(n.as_str()).or_insert(i);
        }
        index
    });
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if let Kept::Placeholders(kept) = kept
            && let Value::Object(map) = item
            && map.len() == 1
            && let Some(name) = map.get("name").and_then(Value::as_str)
            && let Some(tree) = kept_tree(kept, name)
        {
            *written += 1;
            tree.write(out);
            continue;
        }
        let text = item
            .get("name")
            .and_then(Value::as_str)
            .and_then(|name| match &index {
                Some(index) => index.get(name).copied(),
                None => texts.iter().position(|(n, _)| n == name),
            });
        match (item, text) {
            (Value::Object(map), Some(at)) => {
                spliced[at] = spliced[at].saturating_add(1);
                write_object(out, map, &texts[at].1, plain)?;
            }
            _ => write_value(out, item),
        }
    }
    if let Kept::Appended(kept) = kept {
        for (i, (_, tree)) in kept.iter().enumerate() {
            if i > 0 || !items.is_empty() {
                out.push(b',');
            }
            *written += 1;
            tree.write(out);
        }
    }
    out.push(b']');
    Ok(())
}

/// Trees kept aside for a list: standing in for placeholders (containers: names are read
/// and containers reordered), or appended after the list's items (volumes: nothing reads
/// them once merged).
#[derive(Clone, Copy)]
enum Kept<'k> {
    Placeholders(&'k [(String, NodeMap)]),
    Appended(&'k [(String, NodeMap)]),
}

/// The kept tree a placeholder named `name` stands for (two or three containers: reordering
/// may have moved them, so they are found by name).
fn kept_tree<'k>(kept: &'k [(String, NodeMap)], name: &str) -> Option<&'k NodeMap> {
    kept.iter().find(|(n, _)| n == name).map(|(_, t)| t)
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
    // A sketch of the map's keys: a text key whose bit is not set cannot be among them,
    // and needs no search.
    let mut keys = 0u64;
    for (key, value) in map {
        if !first {
            out.push(b',');
        }
        first = false;
        keys |= key_bit(key);
        write_str(out, key);
        out.push(b':');
        child(out, key, value)?;
    }
    for (key, raw) in text {
        if keys & key_bit(key) != 0 && map.contains_key(key.as_ref()) {
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

/// One of 64 bits for a key, from its length and last two bytes (keys that share a prefix,
/// as annotations do, differ there).
fn key_bit(key: &str) -> u64 {
    let b = key.as_bytes();
    let (last, before) = match b {
        [.., x, y] => (*y as usize, *x as usize),
        [y] => (*y as usize, 0),
        [] => (0, 0),
    };
    1 << ((b.len() * 7 + last * 3 + before) & 63)
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
/// runs. Most strings need no escape at all, which is checked eight bytes at a time.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if needs_no_escape(bytes) {
        out.extend_from_slice(bytes);
    } else {
        write_escaped(out, bytes);
    }
    out.push(b'"');
}

/// True when no byte of `bytes` needs escaping (the common case: names, paths, values).
fn needs_no_escape(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        if needs_escape(word) {
            return false;
        }
    }
    !chunks.remainder().iter().any(|&b| ESCAPED[b as usize])
}

/// The string's bytes with what needs it escaped, runs between escapes copied whole.
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !ESCAPED[b as usize] {
            continue;
        }
        if let Some(escape) = escape(b) {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(escape);
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Whether any of eight bytes is `byte` (exact: see [`needs_escape`]).
fn has_byte(chunk: u64, byte: u8) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = chunk ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGH != 0
}

/// Whether any of eight bytes is a quote, a backslash or below 0x20 (exact: the borrow of
/// the subtraction cannot set a high bit on its own, see "hasless" in Bit Twiddling Hacks).
fn needs_escape(chunk: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = chunk.wrapping_sub(ONES * 0x20) & !chunk & HIGH != 0;
    // Not `||`: three cheap tests beat two branches, for the common all-clear answer.
    below_space | has_byte(chunk, b'"') | has_byte(chunk, b'\\')
}

/// The escape of one byte, as serde_json writes it, or None to copy it.
fn escape(b: u8) -> Option<&'static [u8]> {
    match b {
        b'"' => Some(b"\\\""),
        b'\\' => Some(b"\\\\"),
        b'\n' => Some(b"\\n"),
        b'\r' => Some(b"\\r"),
        b'\t' => Some(b"\\t"),
        0x08 => Some(b"\\b"),
        0x0c => Some(b"\\f"),
        0..0x20 => Some(&UNICODE_ESCAPES[b as usize]),
        _ => None,
    }
}

/// The bytes a JSON string escapes: control characters, `"` and `\\`.
static ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// `\u00XX` for every control character.
static UNICODE_ESCAPES: [[u8; 6]; 32] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0u8; 6]; 32];
    let mut b = 0;
    while b < 32 {
        table[b] = [b'\\', b'u', b'0', b'0', HEX[b >> 4], HEX[b & 0xf]];
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "exactly8".into(),
            "sixteen bytes ok".into(),
            "quote \" and backslash \\ at odd places\"".into(),
            "ünïcødé ✓ and 🚀 mixed with \n\t\r\u{8}\u{c}".into(),
        ];
        for b in 0u8..0x20 {
            for pad in 0..10 {
                samples.push(format!(
                    "{}{}{}",
                    "x".repeat(pad),
                    b as char,
                    "y".repeat(9 - pad)
                ));
            }
        }
        for s in samples {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&s).unwrap()
            );
        }
    }

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        let v = json!({"a": [1, -2, 3.5, 1e-7, true, false, null, "s"], "b": {"c": {}, "d": []}});
        let mut out = Vec::new();
        write_value(&mut out, &v);
        assert_eq!(out, serde_json::to_vec(&v).unwrap());
    }

    fn parts(pod: &Value) -> PodParts<'static> {
        let text: &'static str = Box::leak(pod.to_string().into_boxed_str());
        serde_json::from_str(text).unwrap()
    }

    fn round_trip(pod: &Value, settings: &Settings) -> (Value, Value) {
        let (engine_pod, rest) = parts(pod).assemble(settings).expect("splittable");
        let mut out = Vec::new();
        write_pod(&mut out, &engine_pod, &rest, &Prerendered::default()).expect("nothing lost");
        (engine_pod, serde_json::from_slice(&out).unwrap())
    }

    fn app_pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"app": "a"}, "managedFields": [{"manager": "m"}],
                         "uid": "u", "annotations": {"sidecar.istio.io/proxyCPU": "1",
                         "prometheus-io/scrape": "true", "example.com/note": "kept as text"}},
            "spec": {
                "tolerations": [{"key": "k"}], "nodeSelector": {"n": "1"},
                "containers": [{"name": "app", "image": "i", "env": [{"name": "E", "value": "1"}],
                                "ports": [{"containerPort": 80}], "resources": {},
                                "command": ["run"]}],
                "initContainers": [{"name": "setup", "args": ["x"]}],
                "volumes": [{"name": "data", "emptyDir": {}}, {"name": "conf", "configMap": {"name": "c"}}]
            },
            "status": {}
        })
    }

    #[test]
    fn the_engine_sees_only_what_it_reads_and_the_rest_comes_back_verbatim() {
        let pod = app_pod();
        let (engine_pod, written) = round_trip(&pod, &Settings::default());
        assert_eq!(written, pod);
        // What injection never reads is not parsed.
        assert!(engine_pod["metadata"].get("managedFields").is_none());
        assert!(engine_pod["spec"].get("tolerations").is_none());
        assert!(engine_pod.get("status").is_none());
        assert_eq!(
            engine_pod["metadata"]["annotations"],
            json!({"sidecar.istio.io/proxyCPU": "1", "prometheus-io/scrape": "true"})
        );
        assert_eq!(
            engine_pod["spec"]["volumes"],
            json!([{"name": "data"}, {"name": "conf"}])
        );
        let app = &engine_pod["spec"]["containers"][0];
        assert_eq!(app["ports"], json!([{"containerPort": 80}]));
        assert!(app.get("env").is_none() && app.get("command").is_none());
    }

    #[test]
    fn containers_stay_whole_when_the_templates_or_a_previous_injection_may_touch_them() {
        let whole_app = |pod: &Value, settings: &Settings| {
            let (engine_pod, written) = round_trip(pod, settings);
            assert_eq!(&written, pod);
            engine_pod["spec"]["containers"][0].get("env").is_some()
        };
        let settings = Settings::default();
        assert!(!whole_app(&app_pod(), &settings));
        let mut grpc = app_pod();
        grpc["metadata"]["annotations"] = json!({"inject.istio.io/templates": "grpc-agent"});
        assert!(
            whole_app(&grpc, &settings),
            "grpc templates add env to every container"
        );
        let mut reinjected = app_pod();
        reinjected["metadata"]["annotations"] = json!({"sidecar.istio.io/status": "{}"});
        assert!(whole_app(&reinjected, &settings));
        let mut proxy = app_pod();
        proxy["spec"]["containers"][0]["name"] = json!("istio-proxy");
        assert!(
            whole_app(&proxy, &settings),
            "the template merges istio-proxy"
        );
        let mut twice = app_pod();
        twice["spec"]["initContainers"][0]["name"] = json!("app");
        assert!(whole_app(&twice, &settings), "duplicate names");
        let mut bad_env = app_pod();
        bad_env["spec"]["containers"][0]["env"] = json!([1]);
        assert!(
            whole_app(&bad_env, &settings),
            "the Pod check must see a malformed env"
        );
    }

    #[test]
    fn volumes_with_a_shared_name_stay_whole() {
        let mut pod = app_pod();
        pod["spec"]["volumes"][1]["name"] = json!("data");
        let (engine_pod, written) = round_trip(&pod, &Settings::default());
        assert_eq!(written, pod);
        assert_eq!(engine_pod["spec"]["volumes"], pod["spec"]["volumes"]);
    }

    #[test]
    fn annotations_that_are_not_strings_are_parsed_for_the_pod_check() {
        let mut pod = app_pod();
        pod["metadata"]["annotations"]["example.com/number"] = json!(3);
        let (engine_pod, written) = round_trip(&pod, &Settings::default());
        assert_eq!(written, pod);
        assert_eq!(
            engine_pod["metadata"]["annotations"]["example.com/number"],
            json!(3)
        );
    }

    #[test]
    fn text_a_value_could_not_hold_and_custom_templates_decline_the_split() {
        let settings = Settings::default();
        for raw in [
            r#"{"status": {"x": "\ud800"}}"#,
            r#"{"metadata": {"annotations": {"example.com/x": "\ud800"}}}"#,
            r#"{"status": {"n": 1e400}}"#,
            &format!(r#"{{"status": {}{}}}"#, "[".repeat(101), "]".repeat(101)),
        ] {
            let parts: PodParts = serde_json::from_str(raw).unwrap();
            assert!(parts.assemble(&settings).is_none(), "{raw}");
        }
        let mut custom = Settings::default();
        custom.templates.insert("mine".into(), json!({}));
        assert!(parts(&app_pod()).assemble(&custom).is_none());
        // Not an object: whole, and the engine's shape check reports it.
        let (whole, rest) = parts(&json!([1])).assemble(&settings).unwrap();
        assert_eq!(whole, json!([1]));
        assert!(rest.is_empty());
    }

    #[test]
    fn text_with_no_place_in_the_result_is_reported_lost() {
        let (mut engine_pod, rest) = parts(&app_pod()).assemble(&Settings::default()).unwrap();
        engine_pod["spec"]["containers"] = json!([]);
        let mut out = Vec::new();
        assert_eq!(
            write_pod(&mut out, &engine_pod, &rest, &Prerendered::default()),
            Err(Lost)
        );
        let (mut engine_pod, rest) = parts(&app_pod()).assemble(&Settings::default()).unwrap();
        engine_pod["metadata"]["managedFields"] = json!([]);
        assert_eq!(
            write_pod(&mut out, &engine_pod, &rest, &Prerendered::default()),
            Err(Lost),
            "duplicate key"
        );
    }

    #[test]
    fn the_istio_domain_check_is_a_substring_check() {
        for key in [
            "sidecar.istio.io/inject",
            "istio.io/rev",
            "traffic.sidecar.istio.io/excludeOutboundPorts",
            "a/b/istio.io/c",
            "istio.io",
            "istio.io-/x",
            "notistio.io/x",
            "xistio.io//",
            "/istio.io/",
            "istio/io/",
            "example.com/istio.io",
            "",
            "/",
        ] {
            assert_eq!(has_istio_domain(key), key.contains("istio.io/"), "{key:?}");
        }
    }

    #[test]
    fn one_scan_finds_copyable_text_and_lists_of_objects() {
        let lists = [
            ("[]", true),
            ("[{}]", true),
            ("[ {\"a\": 1} ,\n {\"b\": [1, \"x\"]} ]", true),
            ("[1]", false),
            ("[{}, \"x\"]", false),
            ("[[{}]]", false),
            ("[{\"a\": [1, 2]}, null]", false),
            ("{\"a\": [{}]}", false),
            ("\"[{}]\"", false),
        ];
        for (text, expected) in lists {
            let scan = Scan::of(text);
            assert!(scan.copyable, "{text}");
            assert_eq!(scan.list_of_objects, expected, "{text}");
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let shallow = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        for (text, copyable) in [
            ("[{\"n\": 1e400}]", false),
            ("[{\"n\": 1.5E3}]", false),
            ("[{\"uid\": \"5e4\", \"n\": 12}]", true),
            ("\"\\ud800\"", false),
            ("\"\\u00e9 and \\\\ud800\"", true),
            (deep.as_str(), false),
            (shallow.as_str(), true),
        ] {
            assert_eq!(Scan::of(text).copyable, copyable, "{text}");
        }
        assert!(shape_holds("env", "null", &Scan::of("null")));
        assert!(!shape_holds("env", "{}", &Scan::of("{}")));
        assert!(shape_holds("resources", "{}", &Scan::of("{}")));
        assert!(!shape_holds("resources", "[]", &Scan::of("[]")));
        assert!(shape_holds("args", "[1]", &Scan::of("[1]")));
    }
}
