//! Writing [`Value`]s as compact JSON. A list still holding the text it was read from is
//! copied as that text; strings are copied whole when they need no escape, which is checked
//! eight bytes at a time (serde_json's writer looks at them byte by byte).

use super::{Map, Value};

impl Value<'_> {
    /// Appends the value's JSON to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            Value::Number(n) => {
                // Writing to a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, n);
            }
            Value::String(s) => write_str(out, s),
            Value::Array(items) if items.text().is_some() => {
                out.extend_from_slice(items.text().unwrap_or_default().as_bytes());
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out);
                }
                out.push(b']');
            }
            Value::Object(m) => m.write(out),
        }
    }
}

impl Map<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (key, value)) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, key);
            out.push(b':');
            value.write(out);
        }
        out.push(b'}');
    }
}

/// A JSON string: copied whole when nothing in it needs escaping (names, paths, values
/// nearly always), else escaped as serde_json escapes, the runs between escapes copied
/// whole (JSON held in an env value or an annotation is mostly such runs).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if needs_no_escape(bytes) {
        out.extend_from_slice(bytes);
    } else {
        let mut run = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape = ESCAPE[usize::from(b)];
            if escape == 0 {
                continue;
            }
            out.extend_from_slice(&bytes[run..i]);
            if escape == b'u' {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let hex = [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]];
                out.extend_from_slice(b"\\u00");
                out.extend_from_slice(&hex);
            } else {
                out.extend_from_slice(&[b'\\', escape]);
            }
            run = i + 1;
        }
        out.extend_from_slice(&bytes[run..]);
    }
    out.push(b'"');
}

/// How serde_json escapes each byte: the letter after the backslash (`u` for `\u00XX`), or
/// 0 to copy it.
static ESCAPE: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// True when no byte is a quote, a backslash or a control character.
#[inline]
pub(crate) fn needs_no_escape(bytes: &[u8]) -> bool {
    let (words, rest) = bytes.as_chunks::<8>();
    if words.iter().any(|&w| needs_escape(u64::from_le_bytes(w))) {
        return false;
    }
    !rest.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Whether any of eight bytes is a quote, a backslash or below 0x20 (exact: the borrow of
/// the subtraction cannot set a high bit on its own, see "hasless" in Bit Twiddling Hacks).
#[inline(always)]
fn needs_escape(chunk: u64) -> bool {
    let below_space = chunk.wrapping_sub(ONES * 0x20) & !chunk & HIGH != 0;
    // Not `||`: three cheap tests beat two branches, for the common all-clear answer.
    below_space | has_byte(chunk, b'"') | has_byte(chunk, b'\\')
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether any of eight bytes is `byte` (exact, as above).
#[inline(always)]
pub(super) fn has_byte(chunk: u64, byte: u8) -> bool {
    let x = chunk ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGH != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "exactly8".into(),
            "sixteen-bytes-ok".into(),
            "q\"uote".into(),
            "back\\slash in a longer string".into(),
            "é ü 日本 \u{7f} \u{80}".into(),
        ];
        for b in 0u8..0x20 {
            samples.push(format!("ab{}cdefghij", b as char));
            samples.push(format!("{}", b as char));
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
    fn writing_gives_the_json_serde_json_reads_back() {
        let text = r#"{"z":1,"a":{"k":"v\n\"x\"","e":[]},"u":"é\u0001","f":1.5e300,"neg":-7,
            "deep":{"b":{"c":{ "kept" : [ 1 , 2 ] }}}}"#;
        let v = Value::parse(text).unwrap();
        let written = v.to_json();
        // Fields stay in their order; a deep list never read is copied as it came.
        assert!(written.starts_with(r#"{"z":1,"a":"#), "{written}");
        assert!(written.contains(r#"{"kept":[ 1 , 2 ]}"#), "{written}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&written).unwrap(),
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
    }

    #[test]
    fn a_changed_object_is_written_from_its_fields() {
        let text = r#"{"a":{"b":{"c":{"d":{"x":1,"y":2}}}}}"#;
        let mut v = Value::parse(text).unwrap();
        let d = v
            .get_mut("a")
            .and_then(|a| a.get_mut("b"))
            .and_then(|b| b.get_mut("c"))
            .and_then(|c| c.get_mut("d"))
            .and_then(Value::as_object_mut)
            .unwrap();
        d.insert("z", 3.into());
        assert_eq!(
            v.to_json(),
            r#"{"a":{"b":{"c":{"d":{"x":1,"y":2,"z":3}}}}}"#
        );
    }
}
