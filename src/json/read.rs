//! Reading JSON text into [`Value`]s: the top of a document at once, its deeper objects
//! when first accessed.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{Field, Map, Number, Value};

/// Objects down to this depth below the document's root are read at once (for a Pod: the
/// Pod, its metadata and spec, their maps and lists, and the containers and volumes
/// themselves); deeper ones are read when first accessed. Chosen by measuring a
/// 20-container Pod: reading the containers' own fields lazily as well only read most
/// objects twice, since injection reads every container's name.
pub const EAGER_DEPTH: u16 = 3;

/// Objects and lists nested deeper than this are refused, as serde_json refuses them.
const MAX_DEPTH: u16 = 128;

thread_local! {
    /// Why text read on access could not be read, until [`take_unreadable`].
    static UNREADABLE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Why some text read since the last call could not be read, if it could not. Such text
/// reads as empty (an empty object, an empty string, zero), so an answer computed from it
/// must not be given: the request is refused instead.
pub fn take_unreadable() -> Option<String> {
    UNREADABLE.with(|u| u.borrow_mut().take())
}

fn unreadable(what: impl fmt::Display) {
    UNREADABLE.with(|u| {
        u.borrow_mut().get_or_insert_with(|| what.to_string());
    });
}

impl<'de: 'a, 'a> Deserialize<'de> for Value<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Seed::<'a> {
            depth: 0,
            lifetime: PhantomData,
        }
        .deserialize(d)
    }
}

/// A value at `depth` below the document's root.
struct Seed<'a> {
    depth: u16,
    lifetime: PhantomData<Value<'a>>,
}

impl<'a> Seed<'a> {
    fn at(depth: u16) -> Self {
        Seed {
            depth,
            lifetime: PhantomData,
        }
    }
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for Seed<'a> {
    type Value = Value<'a>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value<'a>, D::Error> {
        if self.depth > EAGER_DEPTH {
            // Only its extent is found now (the text scanned, nothing built).
            let raw = <&'de RawValue>::deserialize(d)?;
            return Ok(value_of_text(raw.get(), self.depth));
        }
        d.deserialize_any(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for Seed<'a> {
    type Value = Value<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value<'a>, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value<'a>, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value<'a>, D::Error> {
        self.deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value<'a>, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value<'a>, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value<'a>, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value<'a>, E> {
        Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Value<'a>, E> {
        Ok(Value::String(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value<'a>, E> {
        Ok(Value::String(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Value<'a>, E> {
        Ok(Value::String(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'a>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(Seed::at(self.depth + 1))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value<'a>, A::Error> {
        let mut fields = Fields::default();
        while let Some(Key(key)) = access.next_key::<Key>()? {
            let value = access.next_value_seed(Seed::at(self.depth + 1))?;
            fields.push(key, value);
        }
        Ok(Value::Object(Map::from_fields(fields.list)))
    }
}

/// Fields being read. A duplicate key keeps the last value, as serde_json does; past a
/// few fields duplicates are found through a set (a hostile Pod may have tens of thousands
/// of annotations).
#[derive(Default)]
struct Fields<'a> {
    list: Vec<Field<'a>>,
    seen: Option<HashMap<Cow<'a, str>, usize>>,
}

impl<'a> Fields<'a> {
    const SCANNED: usize = 16;

    fn push(&mut self, key: Cow<'a, str>, value: Value<'a>) {
        if self.list.len() == Self::SCANNED && self.seen.is_none() {
            let seen = self
                .list
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i));
            self.seen = Some(seen.collect());
        }
        let duplicate = match &mut self.seen {
            Some(seen) => match seen.get(&key) {
                Some(&i) => Some(i),
                None => {
                    seen.insert(key.clone(), self.list.len());
                    None
                }
            },
            None => self.list.iter().position(|(k, _)| *k == key),
        };
        match duplicate {
            Some(i) => self.list[i].1 = value,
            None => self.list.push((key, value)),
        }
    }
}

/// A key as serde hands it over: borrowed from the text when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor<'a>(PhantomData<Key<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor(PhantomData))
    }
}

/// The value of a JSON text whose extent is known (it was scanned as a whole): an object
/// stays text until accessed; the rest is read now, a list one level deep.
fn value_of_text(text: &str, depth: u16) -> Value<'_> {
    match text.as_bytes().first() {
        Some(b'{') if depth <= MAX_DEPTH => Value::Object(Map::of_text(Cow::Borrowed(text), depth)),
        Some(b'[') if depth <= MAX_DEPTH => match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(items) => Value::Array(
                items
                    .into_iter()
                    .map(|item| value_of_text(item.get(), depth + 1))
                    .collect(),
            ),
            Err(e) => unread(e, Value::Array(Vec::new())),
        },
        Some(b'{' | b'[') => unread(
            format_args!("nested more than {MAX_DEPTH} levels deep"),
            Value::Null,
        ),
        Some(b'"') => match text.get(1..text.len() - 1) {
            // Without escapes the text between the quotes is the string.
            Some(inner) if !inner.contains('\\') => Value::String(Cow::Borrowed(inner)),
            _ => match serde_json::from_str::<String>(text) {
                Ok(s) => Value::String(Cow::Owned(s)),
                Err(e) => unread(e, Value::String(Cow::Borrowed(""))),
            },
        },
        Some(b't') => Value::Bool(true),
        Some(b'f') => Value::Bool(false),
        Some(b'n') => Value::Null,
        _ => match text.parse::<Number>() {
            Ok(n) => Value::Number(n),
            Err(e) => unread(e, Value::Number(0.into())),
        },
    }
}

/// `empty`, noting why the text it stands for could not be read.
fn unread(why: impl fmt::Display, empty: Value<'_>) -> Value<'_> {
    unreadable(why);
    empty
}

/// The fields of an object's text, their objects left as text.
pub(super) fn object_fields(text: &str, depth: u16) -> Vec<Field<'_>> {
    struct Level<'a>(u16, PhantomData<Field<'a>>);
    impl<'de: 'a, 'a> Visitor<'de> for Level<'a> {
        type Value = Vec<Field<'a>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut fields = Fields::default();
            while let Some((Key(key), raw)) = access.next_entry::<Key, &'de RawValue>()? {
                fields.push(key, value_of_text(raw.get(), self.0 + 1));
            }
            Ok(fields.list)
        }
    }
    let mut reader = serde_json::Deserializer::from_str(text);
    match reader.deserialize_map(Level(depth, PhantomData)) {
        Ok(fields) => fields,
        Err(e) => {
            unreadable(e);
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_text(containers: usize) -> String {
        let c =
            r#"{"name":"app","env":[{"name":"A","value":"1"}],"resources":{"limits":{"cpu":"1"}}}"#;
        let list = vec![c; containers].join(",");
        format!(r#"{{"metadata":{{"name":"p"}},"spec":{{"containers":[{list}]}}}}"#)
    }

    #[test]
    fn parsing_borrows_strings_without_escapes() {
        let text = r#"{"a":"plain","b":"esc\"aped","n":[1,-2,3.5,null,true]}"#;
        let v = Value::parse(text).unwrap();
        assert!(matches!(
            v.get("a"),
            Some(Value::String(Cow::Borrowed("plain")))
        ));
        assert!(matches!(v.get("b"), Some(Value::String(Cow::Owned(s))) if s == "esc\"aped"));
        assert_eq!(
            v.to_serde(),
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
    }

    #[test]
    fn deep_objects_stay_text_until_read_and_read_the_same() {
        let text = pod_text(2);
        let v = Value::parse(&text).unwrap();
        let container = &v["spec"]["containers"][0];
        // The container (depth 3) is read; its resources (depth 4) are still text.
        let Value::Object(resources) = &container["resources"] else {
            panic!("resources is an object");
        };
        assert_eq!(resources.text.as_deref(), Some(r#"{"limits":{"cpu":"1"}}"#));
        assert!(resources.read.get().is_none());
        assert_eq!(resources["limits"]["cpu"], "1");
        assert_eq!(
            v.to_serde(),
            serde_json::from_str::<serde_json::Value>(&text).unwrap()
        );
        assert_eq!(take_unreadable(), None);
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_as_serde_json() {
        for n in [3, 40] {
            let mut fields = String::new();
            for i in 0..n {
                fields.push_str(&format!("\"k{i}\":{i},"));
            }
            fields.push_str("\"k1\":\"last\"");
            // At the top, and deep enough to be read on access.
            let text = format!(r#"{{{fields},"a":{{"b":{{"c":{{"d":{{{fields}}}}}}}}}}}"#);
            let v = Value::parse(&text).unwrap();
            assert_eq!(v.as_object().unwrap().len(), n + 1);
            assert_eq!(v["a"]["b"]["c"]["d"].as_object().unwrap().len(), n);
            assert_eq!(
                v.to_serde(),
                serde_json::from_str::<serde_json::Value>(&text).unwrap()
            );
        }
    }

    #[test]
    fn text_that_cannot_be_read_when_accessed_is_noted_and_reads_empty() {
        for (bad, why) in [(r#""\ud800""#, "escape"), ("1e400", "number out of range")] {
            let text = format!(r#"{{"a":{{"b":{{"c":{{"d":{{"e":{bad},"f":1}}}}}}}}}}"#);
            let v = Value::parse(&text).expect("the extent of the deep object is found");
            assert_eq!(take_unreadable(), None, "nothing read yet");
            let d = &v["a"]["b"]["c"]["d"];
            assert_eq!(d["f"], Value::from(1));
            let noted = take_unreadable().expect("noted");
            assert!(noted.contains(why), "{noted}");
            assert_eq!(take_unreadable(), None, "taken once");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let text = format!(r#"{{"a":{{"b":{{"c":{{"d":{{"e":{deep}}}}}}}}}}}"#);
        let v = Value::parse(&text).unwrap();
        let _ = v.to_serde();
        assert!(take_unreadable().unwrap().contains("nested"));
    }
}
