//! Python's `str()` and `repr()` of JSON values, as Tracardi prints what a reference finds.

use super::*;

/// Python's `str(value)`.
pub fn python_str(value: &Value) -> String {
    let mut out = Output::unbounded();
    // Without a limit, writing cannot fail.
    let _ = write_str_value(&mut out, value);
    out.text
}

/// Python's `repr(value)`.
pub fn python_repr(value: &Value) -> String {
    let mut out = Output::unbounded();
    // Without a limit, writing cannot fail.
    let _ = write_repr(&mut out, value);
    out.text
}

pub(super) fn write_str_value(out: &mut Output, value: &Value) -> Result<(), Full> {
    match value {
        Value::String(s) => out.push(s),
        other => write_repr(out, other),
    }
}

pub(super) fn write_repr(out: &mut Output, value: &Value) -> Result<(), Full> {
    match value {
        Value::Null => out.push("None"),
        Value::Bool(true) => out.push("True"),
        Value::Bool(false) => out.push("False"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push(&i.to_string())
            } else if let Some(u) = n.as_u64() {
                out.push(&u.to_string())
            } else {
                out.push(&python_float_repr(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Value::String(s) => write_str_repr(out, s),
        Value::Array(list) => {
            out.push("[")?;
            for (i, item) in list.iter().enumerate() {
                if i > 0 {
                    out.push(", ")?;
                }
                write_repr(out, item)?;
            }
            out.push("]")
        }
        Value::Object(map) => {
            out.push("{")?;
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(", ")?;
                }
                write_str_repr(out, key)?;
                out.push(": ")?;
                write_repr(out, item)?;
            }
            out.push("}")
        }
    }
}

/// Python's `repr(float)`: the shortest digits that read back as the same float, in positional
/// notation when the decimal exponent is in -4..16, else as `d.ddde±XX`.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` prints the shortest round-trip digits too: `-1.2345e-5`, `1e16`.
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::from(sign);
    if !(-4..16).contains(&exponent) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        out.push_str(&format!("e{exp_sign}{:02}", exponent.unsigned_abs()));
        return out;
    }
    // Position of the decimal point after the first `point` digits.
    let point = exponent + 1;
    if point <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat(point.unsigned_abs() as usize));
        out.push_str(&digits);
    } else {
        let point = point as usize;
        if point >= digits.len() {
            out.push_str(&digits);
            out.push_str(&"0".repeat(point - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
    out
}

/// Python's `repr(str)`: single quotes unless the text has `'` and no `"`; escapes `\\`, the
/// quote, `\t \n \r`, other control characters, and the characters Python does not consider
/// printable.
pub(super) fn write_str_repr(out: &mut Output, s: &str) -> Result<(), Full> {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push_char(quote)?;
    for c in s.chars() {
        match c {
            '\\' => out.push("\\\\")?,
            '\t' => out.push("\\t")?,
            '\n' => out.push("\\n")?,
            '\r' => out.push("\\r")?,
            c if c == quote => {
                out.push_char('\\')?;
                out.push_char(c)?;
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push(&format!("\\x{:02x}", c as u32))?;
            }
            c if c.is_ascii() || python_printable(c) => out.push_char(c)?,
            c if (c as u32) <= 0xff => out.push(&format!("\\x{:02x}", c as u32))?,
            c if (c as u32) <= 0xffff => out.push(&format!("\\u{:04x}", c as u32))?,
            c => out.push(&format!("\\U{:08x}", c as u32))?,
        }
    }
    out.push_char(quote)
}

/// Python's `str.isprintable()` for one non-ASCII character: false for the general categories
/// Cc, Cf, Co, Cs, Cn, Zl, Zp and Zs. The Cc, Cf, Co, Zl, Zp and Zs sets are listed in full (as of
/// Unicode 15); of Cn (unassigned) only the noncharacters and the wholly unassigned planes 4–13
/// are known here, so a code point assigned after Unicode 15, or still unassigned inside an
/// assigned block, prints as itself where Python would escape it.
pub(super) fn python_printable(c: char) -> bool {
    let cp = c as u32;
    let not_printable = matches!(cp,
        // Cc
        0x80..=0x9f
        // Zs (besides the ASCII space), Zl, Zp
        | 0xa0 | 0x1680 | 0x2000..=0x200a | 0x2028 | 0x2029 | 0x202f | 0x205f | 0x3000
        // Cf
        | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff
        | 0xfff9..=0xfffb | 0x110bd | 0x110cd | 0x13430..=0x1343f | 0x1bca0..=0x1bca3
        | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f
        // Co
        | 0xe000..=0xf8ff | 0xf0000..=0x10ffff
        // Cn: noncharacters and unassigned planes
        | 0xfdd0..=0xfdef | 0x40000..=0xdffff
    ) || (cp & 0xfffe) == 0xfffe;
    !not_printable
}
