//! The engine's one representation of JSON. A request is read into it once, the engine
//! reads and changes it, and it is written out once.
//!
//! Two things make it cheap where the policy runs (a fresh WebAssembly instance per
//! request, see the README's *Performance*):
//! - strings borrow from the request's text where they can (no copy for a string without
//!   escapes), and objects are lists of fields in their order, not search trees;
//! - a list deep in the request (below [`read::EAGER_DEPTH`]: the containers' env, mounts,
//!   ports, args) stays as its JSON text until something reads it, and is written back as
//!   that text unless something changed it. Most of a Pod is such lists, and injection
//!   reads few of them, so most of a Pod is scanned once and copied once.
//!
//! Neither shows through the API: a [`List`] reads its text on first access. Text that is
//! read and turns out to be something serde_json does not accept (a lone surrogate escape,
//! a number out of range, nesting too deep) makes the request unreadable: see
//! [`take_unreadable`].

mod list;
mod read;
mod write;

pub(crate) use write::needs_no_escape;
pub use write::write_str;

use std::borrow::Cow;

pub use list::List;
pub use read::take_unreadable;
pub use serde_json::Number;

/// A JSON value; strings may borrow from the text it was read from (`'a`).
#[derive(Debug, Clone, Default)]
pub enum Value<'a> {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(List<'a>),
    Object(Map<'a>),
}

/// A key and its value.
type Field<'a> = (Cow<'a, str>, Value<'a>);

/// A JSON object: its fields in order.
#[derive(Debug, Clone, Default)]
pub struct Map<'a> {
    fields: Vec<Field<'a>>,
}

impl<'a> Value<'a> {
    /// What missing keys and wrong types read as.
    const NULL: &'a Value<'a> = &Value::Null;

    /// Reads JSON text; strings without escapes borrow from it.
    pub fn parse(text: &'a str) -> Result<Value<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    pub fn is_string(&self) -> bool {
        matches!(self, Value::String(_))
    }
    pub fn is_boolean(&self) -> bool {
        matches!(self, Value::Bool(_))
    }
    pub fn is_number(&self) -> bool {
        matches!(self, Value::Number(_))
    }
    pub fn is_array(&self) -> bool {
        matches!(self, Value::Array(_))
    }
    pub fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&Vec<Value<'a>>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    /// The list, to change (it is no longer written as the text it was read from).
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value<'a>>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    pub fn as_object(&self) -> Option<&Map<'a>> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_object_mut(&mut self) -> Option<&mut Map<'a>> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// An object's field.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.as_object()?.get(key)
    }
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value<'a>> {
        self.as_object_mut()?.get_mut(key)
    }

    /// The value at a JSON pointer (`/spec/containers/0/name`).
    pub fn pointer(&self, pointer: &str) -> Option<&Value<'a>> {
        if pointer.is_empty() {
            return Some(self);
        }
        let mut at = self;
        for token in pointer.strip_prefix('/')?.split('/') {
            let token = token.replace("~1", "/").replace("~0", "~");
            at = match at {
                Value::Object(m) => m.get(&token)?,
                Value::Array(a) => a.get(token.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(at)
    }

    /// The value, `Null` left in its place.
    pub fn take(&mut self) -> Value<'a> {
        std::mem::take(self)
    }

    /// The same value, owning all its strings (so of any lifetime).
    pub fn into_owned<'b>(self) -> Value<'b> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Number(n) => Value::Number(n),
            Value::String(s) => Value::String(Cow::Owned(s.into_owned())),
            Value::Array(a) => Value::Array(a.into_owned()),
            Value::Object(m) => Value::Object(Map::from_fields(
                m.fields
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                    .collect(),
            )),
        }
    }

    /// The value as serde_json's (maps sorted, as serde_json keeps them).
    pub fn to_serde(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Value::to_serde).collect()),
            Value::Object(m) => {
                // Inserted one by one: collecting would compile another sort into the module.
                let mut out = serde_json::Map::new();
                for (k, v) in m.iter() {
                    out.insert(k.to_string(), v.to_serde());
                }
                serde_json::Value::Object(out)
            }
        }
    }

    /// A value of serde_json's, its strings borrowed.
    pub fn borrow_serde(v: &'a serde_json::Value) -> Value<'a> {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.clone()),
            serde_json::Value::String(s) => Value::String(Cow::Borrowed(s)),
            serde_json::Value::Array(a) => {
                Value::Array(a.iter().map(Value::borrow_serde).collect())
            }
            serde_json::Value::Object(m) => Value::Object(Map::from_fields(
                m.iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Value::borrow_serde(v)))
                    .collect(),
            )),
        }
    }

    /// A value of serde_json's, owned (so of any lifetime).
    pub fn from_serde<'b>(v: &serde_json::Value) -> Value<'b> {
        Value::borrow_serde(v).into_owned()
    }

    /// Compact JSON text, fields in their order.
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write(&mut out);
        // Written from strings and numbers: UTF-8 by construction.
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Objects are equal when they hold the same fields, in any order (as JSON means).
impl<'b> PartialEq<Map<'b>> for Map<'_> {
    fn eq(&self, other: &Map<'b>) -> bool {
        let (a, b) = (&self.fields, &other.fields);
        if a.len() != b.len() {
            return false;
        }
        // The same order is the common case: no search.
        if a.iter().zip(b).all(|((x, _), (y, _))| x == y) {
            return a.iter().zip(b).all(|((_, x), (_, y))| x == y);
        }
        // Sorted rather than searched key by key: objects may have thousands of fields.
        fn sorted(fields: &[Field<'_>]) -> Vec<usize> {
            crate::order::order_of(fields.iter().map(|(k, _)| k.as_ref()).collect())
        }
        let (x, y) = (sorted(a), sorted(b));
        x.iter()
            .zip(&y)
            .all(|(&i, &j)| a[i].0 == b[j].0 && a[i].1 == b[j].1)
    }
}

/// Values are equal as JSON: whatever their lifetimes, objects in any order.
impl<'b> PartialEq<Value<'b>> for Value<'_> {
    fn eq(&self, other: &Value<'b>) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => a == b,
            _ => false,
        }
    }
}

/// A string value compares with a string (as serde_json's does).
impl PartialEq<str> for Value<'_> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for Value<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl<'a> std::ops::Index<&str> for Value<'a> {
    type Output = Value<'a>;
    /// The field, or `Null` (as serde_json's `value["key"]`).
    fn index(&self, key: &str) -> &Value<'a> {
        self.get(key).unwrap_or(Value::NULL)
    }
}

impl<'a> std::ops::Index<usize> for Value<'a> {
    type Output = Value<'a>;
    /// The list's item, or `Null`.
    fn index(&self, i: usize) -> &Value<'a> {
        self.as_array()
            .and_then(|a| a.get(i))
            .unwrap_or(Value::NULL)
    }
}

impl<'a> std::ops::Index<&str> for Map<'a> {
    type Output = Value<'a>;
    /// The field, or `Null`.
    fn index(&self, key: &str) -> &Value<'a> {
        self.get(key).unwrap_or(Value::NULL)
    }
}

impl<'a> Map<'a> {
    pub fn new() -> Self {
        Map::from_fields(Vec::new())
    }

    pub fn with_capacity(n: usize) -> Self {
        Map::from_fields(Vec::with_capacity(n))
    }

    /// An object of these fields, in this order; the keys must be distinct (the templates
    /// write each key once).
    pub fn from_fields(fields: Vec<Field<'a>>) -> Self {
        debug_assert!(
            fields.len() > 64
                || fields
                    .iter()
                    .enumerate()
                    .all(|(i, (k, _))| fields[i + 1..].iter().all(|(o, _)| o != k)),
            "a key set twice"
        );
        Map { fields }
    }

    #[inline(always)]
    fn fields(&self) -> &[Field<'a>] {
        &self.fields
    }

    #[inline(always)]
    fn fields_mut(&mut self) -> &mut Vec<Field<'a>> {
        &mut self.fields
    }

    pub fn len(&self) -> usize {
        self.fields().len()
    }
    pub fn is_empty(&self) -> bool {
        self.fields().is_empty()
    }

    #[inline(always)]
    fn position(&self, key: &str) -> Option<usize> {
        self.fields().iter().position(|(k, _)| k == key)
    }

    #[inline(always)]
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.fields().iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    #[inline(always)]
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value<'a>> {
        self.fields_mut()
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets a field: in its place when it exists (the old value returned), else last.
    pub fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: Value<'a>) -> Option<Value<'a>> {
        let key = key.into();
        match self.position(&key) {
            Some(i) => Some(std::mem::replace(&mut self.fields_mut()[i].1, value)),
            None => {
                self.fields_mut().push((key, value));
                None
            }
        }
    }

    /// Takes a field out; the others keep their order.
    pub fn remove(&mut self, key: &str) -> Option<Value<'a>> {
        let i = self.position(key)?;
        Some(self.fields_mut().remove(i).1)
    }

    /// The field, set to `make()` first when missing (the key copied only then).
    pub fn get_or_insert_with(
        &mut self,
        key: &str,
        make: impl FnOnce() -> Value<'a>,
    ) -> &mut Value<'a> {
        let i = match self.position(key) {
            Some(i) => i,
            None => {
                let fields = self.fields_mut();
                fields.push((Cow::Owned(key.to_owned()), make()));
                fields.len() - 1
            }
        };
        &mut self.fields_mut()[i].1
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value<'a>)> {
        self.fields().iter().map(|(k, v)| (k.as_ref(), v))
    }
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Value<'a>)> {
        self.fields_mut().iter_mut().map(|(k, v)| {
            let k: &Cow<'a, str> = k;
            (k.as_ref(), v)
        })
    }
    /// The fields with their keys as held: cloning a borrowed key copies no text.
    pub fn entries(&self) -> impl Iterator<Item = (&Cow<'a, str>, &Value<'a>)> {
        self.fields().iter().map(|(k, v)| (k, v))
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields().iter().map(|(k, _)| k.as_ref())
    }
    pub fn values(&self) -> impl Iterator<Item = &Value<'a>> {
        self.fields().iter().map(|(_, v)| v)
    }
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Value<'a>> {
        self.fields_mut().iter_mut().map(|(_, v)| v)
    }

    /// Keeps the fields for which `keep(key, value)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut Value<'a>) -> bool) {
        self.fields_mut().retain_mut(|(k, v)| keep(k, v));
    }
}

impl<'a> IntoIterator for Map<'a> {
    type Item = Field<'a>;
    type IntoIter = std::vec::IntoIter<Field<'a>>;
    fn into_iter(self) -> Self::IntoIter {
        self.fields.into_iter()
    }
}

impl<'a, K: Into<Cow<'a, str>>> FromIterator<(K, Value<'a>)> for Map<'a> {
    fn from_iter<I: IntoIterator<Item = (K, Value<'a>)>>(iter: I) -> Self {
        let mut map = Map::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::String(Cow::Borrowed(s))
    }
}
impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::String(Cow::Owned(s))
    }
}
impl<'a> From<Cow<'a, str>> for Value<'a> {
    fn from(s: Cow<'a, str>) -> Self {
        Value::String(s)
    }
}
impl From<bool> for Value<'_> {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
macro_rules! from_integer {
    ($($t:ty),*) => {$(
        impl From<$t> for Value<'_> {
            fn from(n: $t) -> Self {
                Value::Number(n.into())
            }
        }
    )*};
}
from_integer!(i64, u64, i32, u32, u16);
impl<'a> From<Vec<Value<'a>>> for Value<'a> {
    fn from(a: Vec<Value<'a>>) -> Self {
        Value::Array(a.into())
    }
}
impl<'a> From<Map<'a>> for Value<'a> {
    fn from(m: Map<'a>) -> Self {
        Value::Object(m)
    }
}

/// An object from its fields, in order.
pub fn object<'a, K: Into<Cow<'a, str>>, const N: usize>(fields: [(K, Value<'a>); N]) -> Value<'a> {
    Value::Object(Map::from_fields(
        fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
    ))
}

/// A [`Value`] written as JSON, like serde_json's `json!`, for the templates: keys are
/// string literals (borrowed, never copied), values are literals, nested `{...}` / `[...]`,
/// or any expression with a `Value` conversion, in parentheses when it is more than one
/// token: `json!({"name": "istio-proxy", "args": (args), "ports": [{"containerPort": 15090}]})`.
macro_rules! json {
    (null) => {
        $crate::json::Value::Null
    };
    ([$($item:tt),* $(,)?]) => {
        $crate::json::Value::Array($crate::json::List::from(vec![$($crate::json::json!($item)),*]))
    };
    ({$($key:literal : $value:tt),* $(,)?}) => {
        $crate::json::Value::Object($crate::json::Map::from_fields(vec![
            $((::std::borrow::Cow::Borrowed($key), $crate::json::json!($value))),*
        ]))
    };
    ($other:expr) => {
        $crate::json::Value::from($other)
    };
}
pub(crate) use json;

/// A [`Value`] written with serde_json's `json!` (its strings owned): tests write Pods so.
#[cfg(test)]
macro_rules! from_json {
    ($($t:tt)*) => {
        $crate::json::Value::from_serde(&serde_json::json!($($t)*))
    };
}
#[cfg(test)]
pub(crate) use from_json;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_insert_in_place_and_remove_in_order() {
        let mut m = Map::new();
        m.insert("a", 1.into());
        m.insert("b", 2.into());
        m.insert("c", 3.into());
        assert_eq!(m.insert("a", 9.into()), Some(1.into()));
        m.remove("b");
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "c"]);
        *m.get_or_insert_with("d", || Value::Null) = true.into();
        assert_eq!(Value::Object(m).to_json(), r#"{"a":9,"c":3,"d":true}"#);
    }

    #[test]
    fn objects_are_equal_in_any_order() {
        let a = Value::parse(r#"{"a":1,"b":[1,2]}"#).unwrap();
        let b = Value::parse(r#"{"b":[1,2],"a":1}"#).unwrap();
        let c = Value::parse(r#"{"b":[2,1],"a":1}"#).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Many fields, in another order.
        let fields: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
        let mut reversed = fields.clone();
        reversed.reverse();
        let (x, y) = (
            format!("{{{}}}", fields.join(",")),
            format!("{{{}}}", reversed.join(",")),
        );
        assert_eq!(Value::parse(&x).unwrap(), Value::parse(&y).unwrap());
    }

    #[test]
    fn pointers_and_conversions() {
        let s = serde_json::json!({"spec": {"containers": [{"name": "a/b~c"}]}, "x": {"a/b": 1}});
        let v = Value::from_serde(&s);
        assert_eq!(
            v.pointer("/spec/containers/0/name").and_then(Value::as_str),
            Some("a/b~c")
        );
        assert_eq!(v.pointer("/x/a~1b"), Some(&Value::from(1)));
        assert_eq!(v.to_serde(), s);
        assert!(v["missing"]["deeper"].is_null());
    }
}
