//! Reading JSON text into [`Value`]s: all of it at once but for the lists deep in the
//! document, which are read when first accessed.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{Field, List, Map, Number, Value};

/// Lists down to this depth below the document's root are read at once (for a Pod: the
/// containers and volumes, and the lists of the metadata); deeper ones (a container's env,
/// mounts, ports, args) when first accessed. Objects are always read at once: the bulk of
/// a Pod is in its lists, and the objects injection reads (probes, security contexts)
/// are small and deep, where reading each on access cost more than reading it with the
/// rest (measured on a 20-container Pod in the policy's module).
pub const EAGER_DEPTH: u16 = 3;

/// Lists down to this depth are kept as text; deeper ones are read at once with what holds
/// them. A value whose kind is not known yet must be scanned as text first, and an object
/// then read from that text again: done at one depth only (the containers' fields, where
/// the bulk of a Pod's lists are), that costs little.
const LAZY_UNTIL: u16 = EAGER_DEPTH + 1;

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
        Seed::at(0, &Stack::default()).deserialize(d)
    }
}

/// A value at `depth` below the document's root.
struct Seed<'s, 'a> {
    depth: u16,
    stack: &'s Stack<'a>,
}

/// The fields and items of the objects and lists being read, innermost last. Each object
/// or list gathers its own here and takes them out in one allocation of the exact size
/// when it ends: growing a vector per object, copy after copy, cost more than reading
/// the fields (measured in a fresh instance of the policy's module).
#[derive(Default)]
struct Stack<'a> {
    fields: RefCell<Vec<Field<'a>>>,
    /// The keys' hashes, beside `fields`.
    hashes: RefCell<Vec<u64>>,
    items: RefCell<Vec<Value<'a>>>,
}

impl<'s, 'a> Seed<'s, 'a> {
    fn at(depth: u16, stack: &'s Stack<'a>) -> Self {
        Seed { depth, stack }
    }

    fn child(&self) -> Self {
        Seed::at(self.depth.saturating_add(1), self.stack)
    }
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for Seed<'_, 'a> {
    type Value = Value<'a>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value<'a>, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom(format_args!(
                "nested more than {MAX_DEPTH} levels deep"
            )));
        }
        if self.depth <= EAGER_DEPTH || self.depth > LAZY_UNTIL {
            return d.deserialize_any(self);
        }
        // Its extent first (the text scanned, nothing built): a list stays text.
        let raw = <&'de RawValue>::deserialize(d)?;
        value_of_text(raw.get(), self.depth, self.stack).map_err(de::Error::custom)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for Seed<'_, 'a> {
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
        let items = &self.stack.items;
        let base = items.borrow().len();
        let mut read = || {
            while let Some(item) = seq.next_element_seed(self.child())? {
                items.borrow_mut().push(item);
            }
            Ok(())
        };
        let result = read();
        let mine: Vec<Value<'a>> = items.borrow_mut().drain(base..).collect();
        result.map(|()| Value::Array(List::from(mine)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value<'a>, A::Error> {
        let base = self.stack.fields.borrow().len();
        let mut index = None;
        let mut read = || {
            while let Some(Key(key)) = access.next_key::<Key>()? {
                let value = access.next_value_seed(self.child())?;
                self.stack.push_field(base, &mut index, key, value);
            }
            Ok(())
        };
        let result = read();
        self.stack.hashes.borrow_mut().truncate(base);
        let fields: Vec<Field<'a>> = self.stack.fields.borrow_mut().drain(base..).collect();
        result.map(|()| Value::Object(Map::from_fields(fields)))
    }
}

impl<'a> Stack<'a> {
    /// Past this many fields in one object, keys are looked up through a map of their
    /// hashes (a hostile Pod may have tens of thousands of annotations).
    const SCANNED: usize = 256;

    /// A field of the object whose fields start at `base`. A duplicate key keeps the last
    /// value, as serde_json does. Keys are compared by a 64-bit hash first (no string
    /// comparison for distinct keys).
    fn push_field(
        &self,
        base: usize,
        index: &mut Option<HashMap<u64, Vec<usize>>>,
        key: Cow<'a, str>,
        value: Value<'a>,
    ) {
        let mut fields = self.fields.borrow_mut();
        let mut hashes = self.hashes.borrow_mut();
        let hash = key_hash(&key);
        let same = |i: &usize| hashes[*i] == hash && fields[*i].0 == key;
        let duplicate = match index {
            Some(index) => index
                .get(&hash)
                .and_then(|at| at.iter().copied().find(same)),
            None => (base..fields.len()).find(same),
        };
        if let Some(i) = duplicate {
            fields[i].1 = value;
            return;
        }
        if fields.len() - base == Self::SCANNED {
            let mut built: HashMap<u64, Vec<usize>> = HashMap::new();
            for (i, h) in hashes.iter().enumerate().skip(base) {
                built.entry(*h).or_default().push(i);
            }
            *index = Some(built);
        }
        if let Some(index) = index {
            index.entry(hash).or_default().push(fields.len());
        }
        hashes.push(hash);
        fields.push((key, value));
    }
}

/// A cheap hash of a key, eight bytes at a time (FxHash's mixing).
fn key_hash(key: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut hash = key.len() as u64;
    let (words, rest) = key.as_bytes().as_chunks::<8>();
    for &word in words {
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    let mut last = [0; 8];
    last[..rest.len()].copy_from_slice(rest);
    (hash.rotate_left(5) ^ u64::from_le_bytes(last)).wrapping_mul(K)
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

/// The value of a JSON text whose extent is known (it was scanned as a whole), `depth`
/// deep: a list stays text until accessed; the rest is read now.
fn value_of_text<'a>(
    text: &'a str,
    depth: u16,
    stack: &Stack<'a>,
) -> Result<Value<'a>, serde_json::Error> {
    match text.as_bytes().first() {
        Some(b'[') => Ok(Value::Array(List::of_text(text, depth))),
        Some(b'"') => match text.get(1..text.len() - 1) {
            // Without escapes the text between the quotes is the string.
            Some(inner) if !inner.contains('\\') => Ok(Value::String(Cow::Borrowed(inner))),
            _ => serde_json::from_str::<String>(text).map(|s| Value::String(Cow::Owned(s))),
        },
        Some(b'{') => {
            serde_json::Deserializer::from_str(text).deserialize_any(Seed::at(depth, stack))
        }
        Some(b't') => Ok(Value::Bool(true)),
        Some(b'f') => Ok(Value::Bool(false)),
        Some(b'n') => Ok(Value::Null),
        _ => text.parse::<Number>().map(Value::Number),
    }
}

/// The items of a list's text, `depth` deep (reads as empty, noted, when it cannot be
/// read: see [`take_unreadable`]).
pub(super) fn list_items(text: &str, depth: u16) -> Vec<Value<'_>> {
    let mut reader = serde_json::Deserializer::from_str(text);
    // The list itself is `depth` deep: its items are read as its children.
    match Seed::at(depth, &Stack::default()).deserialize_list(&mut reader) {
        Ok(items) => items,
        Err(e) => {
            unreadable(e);
            Vec::new()
        }
    }
}

/// The position of the first item of a list's text that is not an object, found without
/// reading the items (a shape check must not read what injection never reads). The text is
/// JSON already found well formed when its extent was scanned, so its items' first bytes
/// tell their kinds; strings, most of such a list, are skipped eight bytes at a time.
pub(super) fn first_non_object(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut depth, mut item, mut at_item) = (0usize, 0, false);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b.is_ascii_whitespace() {
            continue;
        }
        if at_item {
            at_item = false;
            match b {
                b'{' => {}
                b']' if item == 0 => return None,
                _ => return Some(item),
            }
        }
        match b {
            b'"' => i = string_end(bytes, i),
            b'[' | b'{' => {
                depth += 1;
                at_item = depth == 1;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => {
                item += 1;
                at_item = true;
            }
            _ => {}
        }
    }
    None
}

/// Where the string whose text starts at `i` (after its opening quote) ends: just past its
/// closing quote.
fn string_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        if let Some(&word) = bytes[i..].first_chunk::<8>() {
            let word = u64::from_le_bytes(word);
            if !super::write::has_byte(word, b'"') && !super::write::has_byte(word, b'\\') {
                i += 8;
                continue;
            }
        }
        match bytes[i] {
            b'"' => return i + 1,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    i
}

impl<'a> Seed<'_, 'a> {
    /// A list's items, read as the items of a list at this seed's depth.
    fn deserialize_list<'de: 'a>(
        self,
        reader: &mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
    ) -> Result<Vec<Value<'a>>, serde_json::Error> {
        match reader.deserialize_seq(self)? {
            Value::Array(items) => Ok(items.into_iter().collect()),
            _ => Ok(Vec::new()),
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
    fn deep_lists_stay_text_until_read_and_read_the_same() {
        let text = pod_text(2);
        let v = Value::parse(&text).unwrap();
        let container = &v["spec"]["containers"][0];
        // The containers (depth 2) are read; a container's env (depth 4) is still text.
        let Value::Array(env) = &container["env"] else {
            panic!("env is a list");
        };
        assert_eq!(env.text(), Some(r#"[{"name":"A","value":"1"}]"#));
        assert_eq!(env[0]["name"], "A");
        // Objects are read at once, however deep.
        assert_eq!(container["resources"]["limits"]["cpu"], "1");
        assert_eq!(
            v.to_serde(),
            serde_json::from_str::<serde_json::Value>(&text).unwrap()
        );
        assert_eq!(take_unreadable(), None);
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_as_serde_json() {
        for n in [3, 40, 300] {
            let mut fields = String::new();
            for i in 0..n {
                fields.push_str(&format!("\"k{i}\":{i},"));
            }
            fields.push_str("\"k1\":\"last\"");
            // At the top, and at the depth whose values are scanned as text first.
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
    fn the_first_item_that_is_not_an_object_is_found_past_strings_and_nesting() {
        for text in [
            "[]",
            " [ ] ",
            r#"[{"a":"x,]}{\"\\"},{"b":[1,{"c":"]"}]}]"#,
            r#"[{"a":"01234567\"89abcdef,ghij"}, "s"]"#,
            r#"[{"a":"\\\\"},[{}],{}]"#,
            r#"[ {} , {"k":{"n":[[],{}]}} , null ]"#,
            r#"[1]"#,
            r#"[{"long":"a long value with no escapes at all, in eight-byte words"},true]"#,
        ] {
            let truth = serde_json::from_str::<Vec<serde_json::Value>>(text)
                .unwrap()
                .iter()
                .position(|v| !v.is_object());
            assert_eq!(first_non_object(text), truth, "{text}");
        }
    }

    #[test]
    fn text_that_cannot_be_read_is_refused_when_read() {
        for (bad, why) in [(r#""\ud800""#, "escape"), ("1e400", "number out of range")] {
            // In a deep object: read at once, so the text is refused at once.
            let text = format!(r#"{{"a":{{"b":{{"c":{{"d":{{"e":{bad},"f":1}}}}}}}}}}"#);
            let e = Value::parse(&text).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
            // In a deep list: read on access, noted, and read as empty.
            let text = format!(r#"{{"a":{{"b":{{"c":{{"d":[{{"e":{bad}}}]}}}}}}}}"#);
            let v = Value::parse(&text).expect("the extent of the deep list is found");
            assert_eq!(take_unreadable(), None, "nothing read yet");
            assert!(v["a"]["b"]["c"]["d"].as_array().unwrap().is_empty());
            let noted = take_unreadable().expect("noted");
            assert!(noted.contains(why), "{noted}");
            assert_eq!(take_unreadable(), None, "taken once");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let text = format!(r#"{{"a":{{"b":{{"c":{{"d":{deep}}}}}}}}}"#);
        let v = Value::parse(&text).unwrap();
        let _ = v.to_serde();
        let noted = take_unreadable().unwrap();
        assert!(noted.contains("nested more than 128"), "{noted}");
    }
}
