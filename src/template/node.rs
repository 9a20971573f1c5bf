//! What the built-in templates build: JSON as a light tree. Object keys are mostly the
//! templates' own literals, so they are borrowed rather than allocated, and an object is a
//! list of fields rather than a search tree. The tree becomes a `serde_json::Value` to be
//! merged onto the Pod, or is written as JSON text directly (`write`): the same JSON as the
//! Value, keys in the order the template set them.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::pod_text::{write_str, write_value};

/// An object key: a template's literal, or a name from the Pod or the settings.
pub type Key = Cow<'static, str>;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Bool(bool),
    Int(i64),
    Str(Cow<'static, str>),
    /// A constant of the templates as compact JSON text, spelled out in the code (see
    /// [`raw_json!`]): written as is, parsed when the template becomes a Value. Only the
    /// code makes one; nothing read from a request or the settings can.
    Raw(&'static str),
    Arr(Vec<Node>),
    Obj(NodeMap),
    /// A value taken as is (from the settings, or parsed from an annotation).
    Json(Value),
}

/// An object's fields in insertion order. The templates set each key once (checked in debug
/// builds when the object is written); as a Value, a later field would replace an earlier
/// one of the same key, as `Map::insert` does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeMap(Vec<(Key, Node)>);

impl NodeMap {
    /// Room for the fields of most objects the templates build (growing a list copies it).
    pub fn new() -> Self {
        NodeMap(Vec::with_capacity(8))
    }

    pub fn with_capacity(n: usize) -> Self {
        NodeMap(Vec::with_capacity(n))
    }

    pub fn insert(&mut self, key: Key, value: Node) {
        self.0.push((key, value));
    }

    /// The value of `key` (the last one set).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.0
            .iter_mut()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes every field `key`, returning the value of the last.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let mut last = None;
        let mut i = 0;
        while i < self.0.len() {
            if self.0[i].0 == key {
                last = Some(self.0.remove(i).1);
            } else {
                i += 1;
            }
        }
        last
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&str, &Node) -> bool) {
        self.0.retain(|(k, v)| keep(k, v));
    }

    fn keys_unique(&self) -> bool {
        self.0
            .iter()
            .enumerate()
            .all(|(i, (k, _))| self.0[i + 1..].iter().all(|(other, _)| other != k))
    }

    /// The JSON text of the object, fields in the order they were set. The templates set
    /// each key once (checked in debug builds), so the text holds what the Value would,
    /// in another key order.
    pub fn write(&self, out: &mut Vec<u8>) {
        debug_assert!(self.keys_unique(), "a key set twice: {self:?}");
        out.push(b'{');
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, key);
            out.push(b':');
            value.write(out);
        }
        out.push(b'}');
    }

    /// What a merge patch's nulls do to a new object (`merge::strip_nulls`): a field whose
    /// value is null is left out, at every depth (list items that are null stay).
    pub fn strip_nulls(&mut self) {
        self.0
            .retain(|(_, v)| !matches!(v, Node::Json(Value::Null)));
        for (_, v) in &mut self.0 {
            v.strip_nulls();
        }
    }

    pub fn into_map(self) -> Map<String, Value> {
        let mut m = Map::new();
        for (k, v) in self.0 {
            m.insert(k.into_owned(), v.into_value());
        }
        m
    }
}

impl Node {
    pub fn into_value(self) -> Value {
        match self {
            Node::Bool(b) => Value::Bool(b),
            Node::Int(i) => Value::from(i),
            Node::Str(s) => Value::String(s.into_owned()),
            // The constants are valid JSON (`tests::raw_constants_are_json`).
            Node::Raw(text) => serde_json::from_str(text).unwrap_or(Value::Null),
            Node::Arr(items) => Value::Array(items.into_iter().map(Node::into_value).collect()),
            Node::Obj(m) => Value::Object(m.into_map()),
            Node::Json(v) => v,
        }
    }

    /// The JSON text of `self.clone().into_value()`, as `pod_text::write_value` writes it.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Node::Bool(true) => out.extend_from_slice(b"true"),
            Node::Bool(false) => out.extend_from_slice(b"false"),
            Node::Int(i) => write_value(out, &Value::from(*i)),
            Node::Str(s) => write_str(out, s),
            Node::Raw(text) => out.extend_from_slice(text.as_bytes()),
            Node::Arr(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out);
                }
                out.push(b']');
            }
            Node::Obj(m) => m.write(out),
            Node::Json(v) => write_value(out, v),
        }
    }

    /// `merge::strip_nulls` on this node's objects.
    fn strip_nulls(&mut self) {
        match self {
            Node::Obj(m) => m.strip_nulls(),
            Node::Arr(items) => items.iter_mut().for_each(Node::strip_nulls),
            Node::Json(v) => crate::merge::strip_nulls_in_place(v),
            // The constants hold no null.
            Node::Bool(_) | Node::Int(_) | Node::Str(_) | Node::Raw(_) => {}
        }
    }

    /// An empty list (Go drops those from the containers Istio adds).
    pub fn is_empty_list(&self) -> bool {
        match self {
            Node::Arr(items) => items.is_empty(),
            Node::Json(Value::Array(items)) => items.is_empty(),
            Node::Raw(text) => *text == "[]",
            _ => false,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            Node::Json(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The field `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Obj(m) => m.get(key),
            _ => None,
        }
    }
}

impl From<Node> for Value {
    fn from(n: Node) -> Value {
        n.into_value()
    }
}

impl From<Value> for Node {
    fn from(v: Value) -> Node {
        Node::Json(v)
    }
}

impl From<&str> for Node {
    fn from(s: &str) -> Node {
        Node::Str(Cow::Owned(s.to_owned()))
    }
}

impl From<&String> for Node {
    fn from(s: &String) -> Node {
        Node::Str(Cow::Owned(s.clone()))
    }
}

impl From<String> for Node {
    fn from(s: String) -> Node {
        Node::Str(Cow::Owned(s))
    }
}

/// A literal string of the template, not copied.
pub fn lit(s: &'static str) -> Node {
    Node::Str(Cow::Borrowed(s))
}

/// A constant JSON value of the templates, from literals joined at compile time: e.g.
/// `raw_json!(r#"{"medium":"Memory"}"#)`. Its text must be valid compact JSON, which
/// `tests::raw_constants_are_json` checks for every constant the templates render.
macro_rules! raw_json {
    ($($part:expr),+ $(,)?) => {
        $crate::template::node::Node::Raw(concat!($($part),+))
    };
}
pub(crate) use raw_json;

impl From<bool> for Node {
    fn from(b: bool) -> Node {
        Node::Bool(b)
    }
}

macro_rules! int_nodes {
    ($($t:ty),*) => {$(
        impl From<$t> for Node {
            fn from(i: $t) -> Node {
                Node::Int(i64::from(i))
            }
        }
    )*};
}
int_nodes!(i32, i64, u16, u32);

impl From<u64> for Node {
    fn from(i: u64) -> Node {
        i64::try_from(i).map_or_else(|_| Node::Json(Value::from(i)), Node::Int)
    }
}

impl From<Vec<Node>> for Node {
    fn from(items: Vec<Node>) -> Node {
        Node::Arr(items)
    }
}

impl From<NodeMap> for Node {
    fn from(m: NodeMap) -> Node {
        Node::Obj(m)
    }
}

/// An object from its fields, moved in.
pub fn object<const N: usize>(fields: [(&'static str, Node); N]) -> Node {
    let mut m = NodeMap::with_capacity(N);
    for (k, v) in fields {
        m.insert(Cow::Borrowed(k), v);
    }
    Node::Obj(m)
}

/// An env entry `{"name": name, "value": value}` (a literal name is not copied).
pub fn env_var(name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Node {
    object([
        ("name", Node::Str(name.into())),
        ("value", Node::Str(Cow::Owned(value.into()))),
    ])
}

pub fn string_array<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Node {
    Node::Arr(
        items
            .into_iter()
            .map(|s| Node::Str(Cow::Owned(s.into())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(n: &Node) -> String {
        let mut out = Vec::new();
        n.write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_and_value_agree() {
        let mut m = NodeMap::new();
        m.insert("zeta".into(), 1.into());
        m.insert("alpha".into(), "a\"b\n".into());
        m.insert("mid".into(), Node::Json(json!({"y": [1, null], "x": 2.5})));
        m.insert(
            "list".into(),
            Node::Arr(vec![true.into(), u64::MAX.into(), object([]), (-3).into()]),
        );
        let node = Node::Obj(m);
        let value = node.clone().into_value();
        assert_eq!(value["alpha"], "a\"b\n");
        let written: Value = serde_json::from_str(&text(&node)).unwrap();
        assert_eq!(written, value);
        // In the order set, not sorted.
        assert!(text(&node).starts_with("{\"zeta\":1,\"alpha\""));
        assert_eq!(node.get("alpha").and_then(Node::as_str), Some("a\"b\n"));
    }

    #[test]
    fn nulls_are_stripped_as_a_merge_patch_strips_them() {
        let mut m = NodeMap::new();
        m.insert("gone".into(), Node::Json(Value::Null));
        m.insert(
            "kept".into(),
            Node::Json(json!({"a": null, "b": [null, {"c": null}]})),
        );
        m.insert("list".into(), Node::Arr(vec![Node::Json(Value::Null)]));
        m.strip_nulls();
        let value = Node::Obj(m).into_value();
        assert_eq!(value, json!({"kept": {"b": [null, {}]}, "list": [null]}));
    }
}
