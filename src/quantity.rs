//! Kubernetes `resource.Quantity` (`k8s.io/apimachinery/pkg/api/resource`):
//! parsing with `ParseQuantity`'s grammar and formatting as Go emits it
//! (`Quantity.String()` / `MarshalJSON`).
//!
//! Istio renders resource values (annotations such as
//! `sidecar.istio.io/proxyCPU: 200m`, or Helm values) into a Pod that Go then
//! marshals, so what ends up in the Pod is [`Quantity::canonical`]; Istio's
//! `validate.go` rejects values for which `resource.ParseQuantity` fails, which
//! is [`Quantity::parse`] failing.
//!
//! # Grammar (`parseQuantityString` + the suffixer)
//!
//! `[+-]` sign, digits, optional `.` and digits, then a suffix: binary
//! `Ki Mi Gi Ti Pi Ei`, decimal `n u m "" k M G T P E`, or an exponent
//! `e`/`E` followed by a Go `int64` (optional sign). Quirks kept from Go:
//! `"."`, `"-"`, `"+"`, `"1."`, `".5"` are valid; a suffix alone
//! (`"m"`, `"Ki"`, `"e3"`) is zero — but `"Pi"`, `"Ei"` and `"e-10"` are errors
//! ("unable to parse numeric part") because Go's slow path needs a digit; an
//! exponent outside `int64` is an error while one outside `int32` wraps (Go's
//! `int32(parsed)`). No whitespace is accepted (`Quantity.UnmarshalJSON`
//! trims the string before parsing; `ParseQuantity` does not).
//!
//! # Value
//!
//! Decimal values keep arbitrary precision (as Go's `inf.Dec`), rounded up
//! (away from zero) to whole nanos: `0.1n` → `1n`, `1.5m` stays `1500u`.
//! Binary-suffixed values are capped at 2^63-1 in magnitude (`9Ei` →
//! `"9223372036854775807"`), and a binary value strictly between 0 and 1 is
//! switched to decimal format at parse time.
//!
//! # Canonical form (`CanonicalizeBytes`)
//!
//! Zero is `"0"`. Binary format is used only when |value| >= 1024 and the value
//! is an integer (otherwise decimal-SI), with the largest binary suffix that
//! leaves an integer (`1024Mi` → `"1Gi"`, `1.5Ki` → `"1536"`, `0.1Ki` →
//! `"102400m"`). Decimal formats strip trailing zeros into the exponent and
//! lower the exponent to a multiple of 3 (`2000m` → `"2"`, `1000` → `"1k"`,
//! `0.5` → `"500m"`, `1e3` → `"1e3"`, `1.5e3` → `"1500"`). A decimal-SI
//! exponent above 18 has no suffix in Go's table, and Go then emits the bare
//! mantissa (`1000E` → `"1"`, `1e21`-sized decimal-SI values likewise); this
//! is reproduced as is.
//!
//! When the input already looks canonical to Go's fast path, Go keeps **the
//! input string itself** and `String()`/`MarshalJSON` return it verbatim. The
//! test is loose, so some non-canonical spellings survive unchanged, and are
//! reproduced here: `"+100m"`, `"0100m"`, `"1.500"`, `"5.001k"`, `"1E3"`,
//! `"1e+3"`, `"1e03"`, `"+1Ki"`, `"01Ki"`.
//!
//! # Deliberate differences
//!
//! * For a mantissa of more than 18 digits with an enormous exponent
//!   (e.g. `1234567890123456789e999999999`) Go's `inf.Dec` rounding materialises
//!   10^exponent and effectively never returns; here the mathematically same
//!   result is produced directly.
//! * [`Quantity::value`]/[`Quantity::milli_value`] return `None` where Go's
//!   `Value()`/`MilliValue()` silently overflow, and always round away from
//!   zero (Go's slow path rounds negative values toward +∞).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The three formattings of a quantity (`resource.Format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// e.g. `12e6`
    DecimalExponent,
    /// e.g. `12Mi` (12 * 2^20)
    BinarySI,
    /// e.g. `12M` (12 * 10^6)
    DecimalSI,
}

/// `ParseQuantity`'s errors; `Display` gives Go's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantityError {
    /// `ErrFormatWrong`: empty input, or characters outside the grammar.
    FormatWrong,
    /// `ErrNumeric`: the numeric part could not be parsed.
    Numeric,
    /// `ErrSuffix`: unknown suffix.
    Suffix,
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuantityError::FormatWrong => {
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            }
            QuantityError::Numeric => "unable to parse numeric part of quantity",
            QuantityError::Suffix => "unable to parse quantity's suffix",
        })
    }
}

impl std::error::Error for QuantityError {}

/// A parsed quantity. Equality and ordering compare numeric values only
/// (like Go's `Cmp`/`Equal`), not formats.
#[derive(Debug, Clone)]
pub struct Quantity {
    negative: bool,
    /// ASCII digits of the unscaled magnitude, no leading zeros; empty is zero.
    digits: Vec<u8>,
    /// Base-10 exponent: magnitude = digits * 10^exp (Go's `int64Amount.scale`,
    /// or minus `inf.Dec.Scale()`, with Go's `int32` wrapping).
    exp: i32,
    format: Format,
    /// Go kept an `int64Amount` (fast path) rather than an `inf.Dec`.
    fast: bool,
    /// Go's cached string `Quantity.s`, set when the input was reused verbatim.
    verbatim: Option<Box<str>>,
}

const MAX_INT64_DIGITS: &[u8] = b"9223372036854775807";
const BINARY_SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

impl Quantity {
    /// `resource.ParseQuantity`.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        let (mut q, reuse) = parse_parts(s)?;
        if reuse {
            q.verbatim = Some(s.into());
        }
        Ok(q)
    }

    /// The string Go emits for this quantity (`String()`/`MarshalJSON`).
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(self.digits.len() + 16);
        // Writing to a String cannot fail, and write_canonical only fails on
        // writer errors.
        let _ = self.write_canonical(&mut out);
        out
    }

    /// True when the value is zero.
    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// True when the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The format remembered from the input (after Go's adjustments: binary
    /// values between 0 and 1 become decimal-SI).
    pub fn format(&self) -> Format {
        self.format
    }

    /// Go's `Value()`: the value rounded up away from zero to an integer;
    /// `None` if it does not fit in an `i64`.
    pub fn value(&self) -> Option<i64> {
        self.scaled(0)
    }

    /// Go's `MilliValue()`: the value in thousandths rounded up away from zero;
    /// `None` if it does not fit in an `i64`.
    pub fn milli_value(&self) -> Option<i64> {
        self.scaled(-3)
    }

    fn scaled(&self, target: i32) -> Option<i64> {
        if self.digits.is_empty() {
            return Some(0);
        }
        let shift = i64::from(self.exp) - i64::from(target);
        let magnitude = if shift >= 0 {
            let mut v = digits_to_u64(&self.digits)?;
            for _ in 0..shift {
                v = v.checked_mul(10)?;
            }
            v
        } else {
            let drop = usize::try_from(shift.unsigned_abs()).unwrap_or(usize::MAX);
            if drop >= self.digits.len() {
                1
            } else {
                let (kept, tail) = self.digits.split_at(self.digits.len() - drop);
                let v = digits_to_u64(kept)?;
                if tail.iter().any(|&d| d != b'0') {
                    v.checked_add(1)?
                } else {
                    v
                }
            }
        };
        if self.negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        }
    }

    /// Writes [`Quantity::canonical`] without allocating.
    pub fn write_canonical<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        if let Some(s) = &self.verbatim {
            return w.write_str(s);
        }
        if self.digits.is_empty() {
            return w.write_str("0");
        }
        let mut format = self.format;
        if format == Format::BinarySI {
            if cmp_magnitude(&self.digits, self.exp, b"1024", 0) == Ordering::Less {
                // "This avoids rounding and hopefully confusion, too."
                format = Format::DecimalSI;
            } else if let Some(mut n) = self.exact_integer() {
                let mut times = 0;
                while n >= 1024 && n % 1024 == 0 {
                    n /= 1024;
                    times += 1;
                }
                if self.negative {
                    w.write_char('-')?;
                }
                write!(w, "{n}")?;
                return w.write_str(BINARY_SUFFIXES.get(times).copied().unwrap_or(""));
            } else {
                // Not an integer: "Don't lose precision-- show as DecimalSI".
                format = Format::DecimalSI;
            }
        }

        let trailing = self.digits.iter().rev().take_while(|&&d| d == b'0').count();
        let significant = &self.digits[..self.digits.len() - trailing];
        let mut exponent = self.exp.wrapping_add(trailing as i32);
        let mut pad = 0;
        let single_step = match exponent % 3 {
            1 | -2 => 1,
            2 | -1 => 2,
            _ => 0,
        };
        if self.fast && single_step > 0 && fits_i64_scaled(significant, single_step) {
            // int64Amount.AsCanonicalBytes adjusts once (×10 or ×100); this
            // differs from the loop below only when Go's int32 exponent wraps.
            pad = single_step;
            exponent = exponent.wrapping_sub(single_step);
        } else {
            while exponent % 3 != 0 {
                pad += 1;
                exponent = exponent.wrapping_sub(1);
            }
        }
        if self.negative {
            w.write_char('-')?;
        }
        w.write_str(std::str::from_utf8(significant).map_err(|_| fmt::Error)?)?;
        for _ in 0..pad {
            w.write_char('0')?;
        }
        match format {
            Format::DecimalExponent => {
                if exponent != 0 {
                    write!(w, "e{exponent}")?;
                }
                Ok(())
            }
            _ => w.write_str(match exponent {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                18 => "E",
                // 0, and (Go quirk) exponents with no decimal-SI suffix.
                _ => "",
            }),
        }
    }

    /// The magnitude as an integer, if it is one and fits in a `u64`.
    fn exact_integer(&self) -> Option<u64> {
        if self.exp >= 0 {
            let mut v = digits_to_u64(&self.digits)?;
            for _ in 0..self.exp {
                v = v.checked_mul(10)?;
            }
            Some(v)
        } else {
            let frac = usize::try_from(self.exp.unsigned_abs()).ok()?;
            let split = self.digits.len().checked_sub(frac)?;
            let (int_part, frac_part) = self.digits.split_at(split);
            if frac_part.iter().any(|&d| d != b'0') {
                return None;
            }
            digits_to_u64(int_part)
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_canonical(f)
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    /// Numeric comparison (Go's `Quantity.Cmp`).
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => cmp_magnitude(&self.digits, self.exp, &other.digits, other.exp),
            (true, true) => cmp_magnitude(&other.digits, other.exp, &self.digits, self.exp),
        }
    }
}

/// Parses `s` and returns its canonical form (what Go would emit).
pub fn canonicalize(s: &str) -> Result<String, QuantityError> {
    let (q, reuse) = parse_parts(s)?;
    if reuse {
        Ok(s.to_owned())
    } else {
        Ok(q.canonical())
    }
}

/// The pieces `parseQuantityString` finds.
struct Scanned<'a> {
    positive: bool,
    /// Go's `value` (the numeric text) contains a digit: `inf.Dec.SetString`
    /// fails otherwise.
    has_digit: bool,
    /// Integer digits with leading zeros stripped (Go substitutes "0" if empty).
    num: &'a [u8],
    denom: &'a [u8],
    suffix: &'a [u8],
}

fn is_digit(c: &u8) -> bool {
    c.is_ascii_digit()
}

/// `parseQuantityString`.
fn scan(s: &[u8]) -> Result<Scanned<'_>, QuantityError> {
    let mut pos = 0;
    let mut positive = true;
    match s.first() {
        Some(b'-') => {
            positive = false;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    let sign_end = pos;
    while s.get(pos) == Some(&b'0') {
        pos += 1;
    }
    let had_zeros = pos > sign_end;
    let done = |pos: usize| pos >= s.len();
    let num_start = pos;
    while s.get(pos).is_some_and(is_digit) {
        pos += 1;
    }
    let num = s.get(num_start..pos).unwrap_or_default();
    let mut scanned = Scanned {
        positive,
        has_digit: true,
        num,
        denom: b"",
        suffix: b"",
    };
    if done(pos) {
        // Only zeros after the sign (Go: value "0"), or digits up to the end.
        return Ok(scanned);
    }
    if s.get(pos) == Some(&b'.') {
        pos += 1;
        let denom_start = pos;
        while s.get(pos).is_some_and(is_digit) {
            pos += 1;
        }
        scanned.denom = s.get(denom_start..pos).unwrap_or_default();
    }
    scanned.has_digit = had_zeros || !scanned.num.is_empty() || !scanned.denom.is_empty();
    let suffix_start = pos;
    while s.get(pos).is_some_and(|c| b"eEinumkKMGTP".contains(c)) {
        pos += 1;
    }
    if !done(pos) {
        if matches!(s.get(pos), Some(b'-' | b'+')) {
            pos += 1;
        }
        while s.get(pos).is_some_and(is_digit) {
            pos += 1;
        }
        if !done(pos) {
            return Err(QuantityError::FormatWrong);
        }
    }
    scanned.suffix = s.get(suffix_start..).unwrap_or_default();
    Ok(scanned)
}

/// Go's `strconv.ParseInt(s, 10, 64)`.
fn parse_go_int64(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut magnitude: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// The suffixer's `interpret`: (binary?, exponent, format).
fn interpret(suffix: &[u8]) -> Option<(bool, i32, Format)> {
    let decimal = |e| Some((false, e, Format::DecimalSI));
    let binary = |e| Some((true, e, Format::BinarySI));
    match suffix {
        b"" => decimal(0),
        b"n" => decimal(-9),
        b"u" => decimal(-6),
        b"m" => decimal(-3),
        b"k" => decimal(3),
        b"M" => decimal(6),
        b"G" => decimal(9),
        b"T" => decimal(12),
        b"P" => decimal(15),
        b"E" => decimal(18),
        b"Ki" => binary(10),
        b"Mi" => binary(20),
        b"Gi" => binary(30),
        b"Ti" => binary(40),
        b"Pi" => binary(50),
        b"Ei" => binary(60),
        [b'e' | b'E', rest @ ..] if !rest.is_empty() => {
            // Go: int32(parsed) truncates.
            parse_go_int64(rest).map(|e| (false, e as i32, Format::DecimalExponent))
        }
        _ => None,
    }
}

fn digits_to_u64(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |v, &d| {
        v.checked_mul(10)?
            .checked_add(u64::from(d.wrapping_sub(b'0')))
    })
}

/// digits * 10^zeros fits in an i64 (Go's int64MultiplyScale10/100).
fn fits_i64_scaled(digits: &[u8], zeros: i32) -> bool {
    let factor = if zeros == 1 { 10 } else { 100 };
    digits_to_u64(digits)
        .and_then(|v| v.checked_mul(factor))
        .is_some_and(|v| i64::try_from(v).is_ok())
}

/// Compares digits_a * 10^exp_a with digits_b * 10^exp_b (no leading zeros,
/// empty is zero).
fn cmp_magnitude(a: &[u8], exp_a: i32, b: &[u8], exp_b: i32) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        (false, false) => {}
    }
    // Number of digits before the decimal point (may be <= 0).
    let int_len = |d: &[u8], e: i32| d.len() as i64 + i64::from(e);
    match int_len(a, exp_a).cmp(&int_len(b, exp_b)) {
        Ordering::Equal => {}
        other => return other,
    }
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(b'0');
        let y = b.get(i).copied().unwrap_or(b'0');
        if x != y {
            return x.cmp(&y);
        }
    }
    Ordering::Equal
}

/// digits *= 2^k, for 0 < k <= 60.
fn mul_pow2(digits: &mut Vec<u8>, k: u32) {
    let factor: u128 = 1u128 << k.min(60);
    let mut carry: u128 = 0;
    for d in digits.iter_mut().rev() {
        let v = u128::from(d.wrapping_sub(b'0')) * factor + carry;
        *d = b'0' + (v % 10) as u8;
        carry = v / 10;
    }
    let mut prefix = [0u8; 40];
    let mut len = 0;
    while carry > 0 {
        if let Some(slot) = prefix.get_mut(len) {
            *slot = b'0' + (carry % 10) as u8;
            len += 1;
        }
        carry /= 10;
    }
    let prefix = prefix.get(..len).unwrap_or_default();
    digits.splice(0..0, prefix.iter().rev().copied());
}

/// Adds one unit in the last place.
fn increment(digits: &mut Vec<u8>) {
    for d in digits.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return;
        }
    }
    digits.insert(0, b'1');
}

/// Go's `ParseQuantity`; the flag tells whether Go keeps the input string.
fn parse_parts(s: &str) -> Result<(Quantity, bool), QuantityError> {
    if s.is_empty() {
        return Err(QuantityError::FormatWrong);
    }
    let scanned = scan(s.as_bytes())?;
    let (is_binary, exponent, mut format) =
        interpret(scanned.suffix).ok_or(QuantityError::Suffix)?;
    let num: &[u8] = if scanned.num.is_empty() {
        b"0"
    } else {
        scanned.num
    };
    let denom = scanned.denom;
    // Go: int32(len(denom)).
    let denom_len = denom.len() as i32;

    // Go's fast path (int64Amount). It gives the same value as the slow path;
    // it only decides whether the input string is kept and whether a missing
    // digit is an error.
    let precision: i64 = if is_binary {
        if denom.is_empty() {
            15 - num.len() as i64 - i64::from(exponent) * 3 / 10 - 1
        } else {
            -1
        }
    } else {
        18 - (num.len() as i64 + denom.len() as i64)
    };
    let mut fast = false;
    let mut reuse = false;
    let scale = if is_binary { 0 } else { exponent }.wrapping_sub(denom_len);
    if precision >= 0 && scale >= -9 {
        // At most 18 digits: fits.
        let value = num
            .iter()
            .chain(denom)
            .try_fold(0i64, |v, &d| {
                v.checked_mul(10)?
                    .checked_add(i64::from(d.wrapping_sub(b'0')))
            })
            .ok_or(QuantityError::Numeric)?;
        let mantissa = if is_binary {
            1i64.checked_shl(exponent.unsigned_abs()).unwrap_or(0)
        } else {
            1
        };
        if value.checked_mul(mantissa).is_some() {
            fast = true;
            reuse = if is_binary {
                exponent % 10 == 0 && value & 0x07 != 0
            } else {
                let ends_000 = num
                    .iter()
                    .chain(denom)
                    .rev()
                    .take(3)
                    .filter(|&&d| d == b'0')
                    .count()
                    == 3;
                scale % 3 == 0 && !ends_000 && num.first() != Some(&b'0')
            };
        }
    }
    if !fast && !scanned.has_digit {
        return Err(QuantityError::Numeric);
    }

    let mut digits = Vec::with_capacity(num.len() + denom.len() + if is_binary { 19 } else { 0 });
    for &d in num.iter().chain(denom) {
        if !(digits.is_empty() && d == b'0') {
            digits.push(d);
        }
    }
    let mut exp = scale;
    if !digits.is_empty() {
        if is_binary {
            mul_pow2(&mut digits, exponent.unsigned_abs());
        }
        // Round up (away from zero) to nanos: inf.Dec scale > 9.
        let inf_scale = exp.wrapping_neg();
        if inf_scale > 9 {
            let drop = i64::from(inf_scale) - 9;
            match usize::try_from(drop) {
                Ok(drop) if drop < digits.len() => {
                    let keep = digits.len() - drop;
                    let inexact = digits
                        .get(keep..)
                        .is_some_and(|t| t.iter().any(|&d| d != b'0'));
                    digits.truncate(keep);
                    if inexact {
                        increment(&mut digits);
                    }
                }
                _ => {
                    digits.clear();
                    digits.push(b'1');
                }
            }
            exp = -9;
        }
        if is_binary {
            if cmp_magnitude(&digits, exp, MAX_INT64_DIGITS, 0) == Ordering::Greater {
                digits.clear();
                digits.extend_from_slice(MAX_INT64_DIGITS);
                exp = 0;
            }
            if cmp_magnitude(&digits, exp, b"1", 0) == Ordering::Less {
                format = Format::DecimalSI;
            }
        }
    } else {
        exp = 0;
    }
    let negative = !scanned.positive && !digits.is_empty();
    Ok((
        Quantity {
            negative,
            digits,
            exp,
            format,
            fast,
            verbatim: None,
        },
        reuse,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        match canonicalize(s) {
            Ok(c) => c,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn q(s: &str) -> Quantity {
        match Quantity::parse(s) {
            Ok(q) => q,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    /// Input → canonical string, checked through both `canonicalize` and
    /// `Quantity::parse(..).canonical()` / `Display`.
    fn check(cases: &[(&str, &str)]) {
        for &(input, want) in cases {
            assert_eq!(canon(input), want, "canonicalize({input:?})");
            let parsed = q(input);
            assert_eq!(parsed.canonical(), want, "parse({input:?}).canonical()");
            assert_eq!(parsed.to_string(), want, "parse({input:?}).to_string()");
        }
    }

    #[test]
    fn brief_examples() {
        check(&[
            ("200m", "200m"),
            ("2000m", "2"),
            ("1024Mi", "1Gi"),
            ("0.5", "500m"),
            ("1000", "1k"),
            ("1e3", "1e3"),
            ("100m", "100m"),
            ("0", "0"),
            ("0m", "0"),
            ("0Mi", "0"),
            ("1n", "1n"),
            ("1.5m", "1500u"),
            ("0.1Ki", "102400m"),
        ]);
    }

    // TestQuantityParse (value and format), expressed through the canonical string.
    #[test]
    fn k8s_quantity_parse_table() {
        check(&[
            ("0n", "0"),
            ("0u", "0"),
            ("0Ki", "0"),
            ("0k", "0"),
            ("0M", "0"),
            ("0Gi", "0"),
            ("0G", "0"),
            ("0Ti", "0"),
            ("0T", "0"),
            ("1", "1"),
            // Binary suffixes
            ("1Ki", "1Ki"),
            ("8Ki", "8Ki"),
            ("7Mi", "7Mi"),
            ("6Gi", "6Gi"),
            ("5Ti", "5Ti"),
            ("4Pi", "4Pi"),
            ("3Ei", "3Ei"),
            ("10Ti", "10Ti"),
            ("100Ti", "100Ti"),
            // Decimal suffixes
            ("5n", "5n"),
            ("4u", "4u"),
            ("3m", "3m"),
            ("9", "9"),
            ("8k", "8k"),
            ("50k", "50k"),
            ("7M", "7M"),
            ("6G", "6G"),
            ("5T", "5T"),
            ("40T", "40T"),
            ("300T", "300T"),
            ("2P", "2P"),
            ("1E", "1E"),
            // Decimal exponents
            ("1E-3", "1E-3"),
            ("1e3", "1e3"),
            ("1E6", "1E6"),
            ("1e9", "1e9"),
            ("1E12", "1E12"),
            ("1e15", "1e15"),
            ("1E18", "1E18"),
            // Nonstandard but still parsable
            ("1e14", "100e12"),
            ("1e13", "10e12"),
            ("100.035k", "100.035k"),
            // Things that look like floating point
            ("0.001", "1m"),
            ("0.0005k", "500m"),
            ("0.005", "5m"),
            ("0.05", "50m"),
            ("0.5", "500m"),
            ("0.00050k", "500m"),
            ("0.00500", "5m"),
            ("0.05000", "50m"),
            ("0.50000", "500m"),
            ("0.5e0", "500e-3"),
            ("0.5e-1", "50e-3"),
            ("0.5e-2", "5e-3"),
            ("10.035M", "10.035M"),
            ("1.2e3", "1200"),
            ("1.3E+6", "1300e3"),
            ("1.40e9", "1400e6"),
            ("1.53E12", "1530e9"),
            ("1.6e15", "1600e12"),
            ("1.7E18", "1700e15"),
            ("9.01", "9010m"),
            ("8.1k", "8100"),
            ("7.123456M", "7.123456M"),
            ("6.987654321G", "6.987654321G"),
            ("5.444T", "5.444T"),
            ("40.1T", "40100G"),
            ("300.2T", "300200G"),
            ("2.5P", "2500T"),
            ("1.01E", "1010P"),
            // Things that saturate/round
            ("3.001n", "4n"),
            ("1.1E-9", "2e-9"),
            ("0.0000000001", "1n"),
            ("0.0000000005", "1n"),
            ("0.00000000050", "1n"),
            ("0.5e-9", "1e-9"),
            ("0.9n", "1n"),
            ("0.00000012345", "124n"),
            ("0.00000012354", "124n"),
            ("9Ei", "9223372036854775807"),
            ("9223372036854775807Ki", "9223372036854775807"),
            ("12E", "12E"),
            // Fractional binary
            ("100.035Ki", "102435840m"),
            ("0.5Mi", "512Ki"),
            ("0.05Gi", "53687091200m"),
            ("0.025Ti", "27487790694400m"),
            // Things written by trolls
            ("0.000000000001Ki", "2n"),
            (".001", "1m"),
            (".0001k", "100m"),
            ("1.", "1."),
            ("1.G", "1.G"),
        ]);
        assert_eq!(q("0.000000000001Ki").format(), Format::DecimalSI);
        assert_eq!(q("0.5Mi").format(), Format::BinarySI);
        assert_eq!(q("1e3").format(), Format::DecimalExponent);
        assert_eq!(q("1E").format(), Format::DecimalSI);
    }

    #[test]
    fn k8s_parse_negative_and_plus_variants() {
        // TestQuantityParse repeats its table with "-" and "+" prefixes.
        let cases = [
            ("1Ki", "1024"),
            ("5n", "5n"),
            ("0.5", "500m"),
            ("1.2e3", "1200"),
            ("9Ei", "9223372036854775807"),
            ("100.035Ki", "102435840m"),
            ("0.000000000001Ki", "2n"),
            ("3.001n", "4n"),
        ];
        for (input, magnitude) in cases {
            let neg = q(&format!("-{input}"));
            let pos = q(&format!("+{input}"));
            assert!(neg.is_negative(), "{input}");
            assert_eq!(neg, q(&format!("-{magnitude}")), "-{input}");
            assert_eq!(pos, q(magnitude), "+{input}");
            assert_eq!(neg.format(), q(input).format(), "-{input}");
            assert_eq!(pos.format(), q(input).format(), "+{input}");
        }
        check(&[
            ("-1Ki", "-1Ki"),
            ("-1024Mi", "-1Gi"),
            ("-9Ei", "-9223372036854775807"),
            ("-0.5", "-500m"),
            ("-1.5m", "-1500u"),
            ("-0.0000000001", "-1n"),
            ("-100.035Ki", "-102435840m"),
            ("-1000", "-1k"),
            ("-1e3", "-1e3"),
            ("-0", "0"),
            ("-0Mi", "0"),
            ("+0", "0"),
        ]);
    }

    // TestQuantityString: the canonical form, its parse keeping the string,
    // and the alternate spellings.
    #[test]
    fn k8s_quantity_string_table() {
        let table = [
            ("1Gi", "1024Mi"),
            ("300Mi", "307200Ki"),
            ("6Ki", ""),
            ("1001Gi", "1025024Mi"),
            ("1Ti", "1024Gi"),
            ("5", "5000m"),
            ("500m", "0.5"),
            ("1G", "1000M"),
            ("1G", "0.001T"),
            ("1m", "1000u"),
            ("80m", ""),
            ("1080m", "1.08"),
            ("1080m", "1080000000n"),
            ("300M", ""),
            ("1T", ""),
            ("1234567M", ""),
            ("1234567m", ""),
            ("3k", ""),
            ("1025", ""),
            ("0", ""),
            ("1e9", ".001e12"),
            ("1e-3", "0.001e0"),
            ("1e-9", "1000e-12"),
            ("80e-3", ""),
            ("300e6", ""),
            ("1e12", ""),
            ("1e3", ""),
            ("3e3", ""),
            ("0", "00"),
            ("1n", ""),
            ("80n", ""),
            ("1080n", ""),
            ("1u", ""),
            ("80u", ""),
            ("1080u", ""),
        ];
        for (canonical, alternate) in table {
            assert_eq!(canon(canonical), canonical);
            if canonical != "0" {
                assert_eq!(canon(&format!("-{canonical}")), format!("-{canonical}"));
            }
            if !alternate.is_empty() {
                assert_eq!(canon(alternate), canonical, "alternate {alternate:?}");
            }
        }
    }

    // TestQuantityParseEmit.
    #[test]
    fn k8s_parse_emit_table() {
        check(&[
            ("1Ki", "1Ki"),
            ("1Mi", "1Mi"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1000M", "1G"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            ("-1Ki", "-1Ki"),
            ("-1024Mi", "-1Gi"),
            ("-1000M", "-1G"),
            ("-.001Ki", "-1024m"),
            ("-.000001Ki", "-1024u"),
            ("-.000000001Ki", "-1024n"),
            ("-.000000000001Ki", "-2n"),
        ]);
    }

    // TestParseQuantity: arbitrary precision beyond int64.
    #[test]
    fn k8s_big_values() {
        let same = [
            "-999999999999999999",
            "999999999999999999",
            "-9999999999999999999",
            "9999999999999999999",
            "-1E",
            "1E",
            "-10E",
            "10E",
            "-1000000000000000001",
            "1000000000000000001",
            "-10000000000000000001",
            "10000000000000000001",
            "-9223372036854775809",
            "9223372036854775806",
            "-9223372036854775808",
            "9223372036854775807",
            "-9223372036854775807",
            "9223372036854775808",
        ];
        for s in same {
            assert_eq!(canon(s), s);
        }
        check(&[
            ("999999999999999999.0", "999999999999999999"),
            ("-999999999999999999.1", "-999999999999999999100m"),
            ("999999999999999999.1", "999999999999999999100m"),
            ("1000000000000000000", "1E"),
            ("-1000000000000000000", "-1E"),
            ("9999999999999999999.0", "9999999999999999999"),
            ("1.0E", "1E"),
            ("-1.0E", "-1E"),
            ("1000000000000000000.0", "1E"),
            ("9999999999999999999000m", "9999999999999999999"),
            ("-9999999999999999999000m", "-9999999999999999999"),
            ("9999999999999999999.1", "9999999999999999999100m"),
            ("1.0000000000000000001E", "1000000000000000000100m"),
            ("-1000000000000000000.1", "-1000000000000000000100m"),
            ("1.000000000000000001E", "1000000000000000001"),
            ("10000000000000000000", "10E"),
            ("-10.0E", "-10E"),
            ("10000000000000000000000m", "10E"),
            ("10.0000000000000000001E", "10000000000000000000100m"),
            ("10.000000000000000001E", "10000000000000000001"),
            ("-9223372036854775809.0", "-9223372036854775809"),
            ("9223372036854775806000m", "9223372036854775806"),
            ("-9223372036854775808.1", "-9223372036854775808100m"),
            ("9223372036854775808.1", "9223372036854775808100m"),
        ]);
    }

    #[test]
    fn binary_canonicalization() {
        check(&[
            ("1536Ki", "1536Ki"),
            ("1.5Ki", "1536"),
            ("1.5Mi", "1536Ki"),
            ("1023", "1023"),
            ("2048", "2048"),
            ("1048576Ki", "1Gi"),
            ("0.5Ki", "512"),
            ("1.1Ki", "1126400m"),
            ("7Ei", "7Ei"),
            ("8Ei", "9223372036854775807"),
            ("8191Pi", "8191Pi"),
            ("8192Pi", "9223372036854775807"),
            ("1Pi", "1Pi"),
            ("0.5Ei", "512Pi"),
        ]);
        // Below 1 the format becomes decimal at parse time.
        assert_eq!(q("0.0001Ki").format(), Format::DecimalSI);
        assert_eq!(canon("0.0001Ki"), "102400u");
    }

    /// Inputs Go keeps verbatim (`Quantity.s`): its canonical-looking test is loose.
    #[test]
    fn go_keeps_some_inputs_verbatim() {
        check(&[
            ("+100m", "+100m"),
            ("0100m", "0100m"),
            ("1.500", "1.500"),
            ("5.001k", "5.001k"),
            ("1E3", "1E3"),
            ("1e+3", "1e+3"),
            ("1e03", "1e03"),
            ("1.5e1", "1.5e1"),
            ("+1Ki", "+1Ki"),
            ("01Ki", "01Ki"),
            ("1025Ki", "1025Ki"),
            ("-100m", "-100m"),
        ]);
        // ...and those it does not.
        check(&[
            ("+1000m", "1"),
            ("1.5", "1500m"),
            ("1.000", "1"),
            ("8Ki", "8Ki"),
            ("+8Ki", "8Ki"),
            ("08Ki", "8Ki"),
            ("1e-1", "100e-3"),
            ("10e2", "1e3"),
            ("1.0E", "1E"),
        ]);
    }

    #[test]
    fn go_quirks() {
        // A bare suffix, sign or dot is zero.
        for s in [
            "m", "Ki", "Mi", "Gi", "Ti", "k", "E", "e3", "E+5", "e-9", ".", "-", "+", "-.", "+.",
            "000", "-0.000", "0.0e99",
        ] {
            let parsed = q(s);
            assert!(parsed.is_zero(), "{s}");
            assert_eq!(parsed.canonical(), "0", "{s}");
        }
        // ...unless Go takes the slow path, which needs a digit.
        for s in ["Pi", "Ei", "e-10", "-e-10", ".e-10", "+Pi"] {
            assert_eq!(
                Quantity::parse(s).err(),
                Some(QuantityError::Numeric),
                "{s}"
            );
        }
        // Decimal-SI exponents beyond "E" have no suffix: Go prints the mantissa.
        check(&[
            ("1000E", "1"),
            ("1000000000000000000000", "1"),
            ("2000000000000000000000000", "2"),
            ("10000E", "10"),
        ]);
        // Exponents wrap at int32 like Go's int32(parsed).
        check(&[
            ("1e4294967296", "1e4294967296"), // kept verbatim: int32 wraps to 0
            ("2e4294967299", "2e4294967299"),
            ("1.5e2147483647", "1.5e2147483647"),
            ("1000e2147483647", "1e-2147483646"),
            ("10e2147483647", "10e2147483647"),
        ]);
        // Outside int64: unable to parse the suffix.
        assert_eq!(
            Quantity::parse("1e9223372036854775808").err(),
            Some(QuantityError::Suffix)
        );
        check(&[("1e-9223372036854775808", "1e-9223372036854775808")]);
    }

    #[test]
    fn rounding_up_to_nanos() {
        check(&[
            ("1.5m", "1500u"),
            ("1.5u", "1500n"),
            ("1.5n", "2n"),
            ("0.1n", "1n"),
            ("1e-10", "1e-9"),
            ("1e-999999", "1e-9"),
            ("-1e-999999", "-1e-9"),
            ("999.9999999999u", "1m"),
            ("0.0000000019", "2n"),
            ("1.0000000001", "1000000001n"),
        ]);
    }

    #[test]
    fn invalid_inputs() {
        let cases = [
            ("", QuantityError::FormatWrong),
            ("abc", QuantityError::FormatWrong),
            ("aoeu", QuantityError::FormatWrong),
            ("1.2.3", QuantityError::FormatWrong),
            ("1Qi", QuantityError::FormatWrong),
            (" 1", QuantityError::FormatWrong),
            ("1 ", QuantityError::FormatWrong),
            ("--1", QuantityError::Suffix),
            ("1.1.M", QuantityError::FormatWrong),
            ("1+1.0M", QuantityError::FormatWrong),
            ("0.1mi", QuantityError::Suffix),
            ("0.1am", QuantityError::FormatWrong),
            (".5i", QuantityError::Suffix),
            ("1i", QuantityError::Suffix),
            ("-3.01i", QuantityError::Suffix),
            ("-3.01e-", QuantityError::Suffix),
            ("1e", QuantityError::Suffix),
            ("1E+", QuantityError::Suffix),
            ("1K", QuantityError::Suffix),
            ("1KiB", QuantityError::FormatWrong),
            ("1mm", QuantityError::Suffix),
            ("1ee3", QuantityError::Suffix),
            ("1e3.5", QuantityError::FormatWrong),
            ("1e3m", QuantityError::FormatWrong),
            ("1,5", QuantityError::FormatWrong),
            ("0x10", QuantityError::FormatWrong),
            ("1\n", QuantityError::FormatWrong),
            ("½", QuantityError::FormatWrong),
            ("1µ", QuantityError::FormatWrong),
            ("Inf", QuantityError::FormatWrong),
            ("NaN", QuantityError::FormatWrong),
        ];
        for (input, want) in cases {
            assert_eq!(Quantity::parse(input).err(), Some(want), "{input:?}");
            assert_eq!(canonicalize(input).err(), Some(want), "{input:?}");
        }
        assert_eq!(
            QuantityError::FormatWrong.to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        assert_eq!(
            QuantityError::Suffix.to_string(),
            "unable to parse quantity's suffix"
        );
        assert_eq!(
            "12x".parse::<Quantity>().err(),
            Some(QuantityError::FormatWrong)
        );
    }

    #[test]
    fn comparison_and_values() {
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("1k"), q("1000"));
        assert_eq!(q("1e3"), q("1k"));
        assert_eq!(q("0"), q("-0Mi"));
        assert!(q("1Ki") > q("1k"));
        assert!(q("100m") < q("1"));
        assert!(q("-1") < q("0"));
        assert!(q("-2") < q("-1"));
        assert!(q("1n") > q("0"));
        assert!(q("999999999999999999999") > q("9Ei"));
        assert!(q("1.5") > q("1499999999n"));
        assert_eq!(q("200m").milli_value(), Some(200));
        assert_eq!(q("2").milli_value(), Some(2000));
        assert_eq!(q("1.5m").milli_value(), Some(2));
        assert_eq!(q("1n").milli_value(), Some(1));
        assert_eq!(q("-1.5m").milli_value(), Some(-2));
        assert_eq!(q("1Gi").value(), Some(1_073_741_824));
        assert_eq!(q("100m").value(), Some(1));
        assert_eq!(q("0").value(), Some(0));
        assert_eq!(q("9Ei").value(), Some(i64::MAX));
        assert_eq!(q("9Ei").milli_value(), None);
        assert_eq!(q("1e30").value(), None);
        assert_eq!(q("-9223372036854775808").value(), Some(i64::MIN));
        assert_eq!(q("9223372036854775808").value(), None);
        assert_eq!(q("1e-999999").value(), Some(1));
        assert!(q("0m").is_zero());
        assert!(!q("1n").is_zero());
        assert!(!q("-0").is_negative());
        assert!(q("-1n").is_negative());
    }

    #[test]
    fn write_canonical_does_not_need_a_string() {
        let mut out = String::new();
        let _ = q("1024Mi").write_canonical(&mut out);
        assert_eq!(out, "1Gi");
    }
}
