//! Builtin template functions (`not`, `len`, `index`, `slice`, `eq`, `ne`,
//! `lt`, `le`, `gt`, `ge`, `html`, `js`, `urlquery`) with Go's semantics and
//! error messages. `and`/`or` (short-circuit) and the `print` family live
//! in the executor, which owns argument evaluation and output limits.

use std::cmp::Ordering;
use std::rc::Rc;

use super::gofmt::{PrintError, Printer, is_print};
use super::value::{Str, Val};

/// Go's `len`: byte length of strings, element count of arrays and maps.
pub(super) fn len(v: &Val<'_>) -> Result<Val<'static>, String> {
    match v {
        Val::Str(s) => Ok(Val::Int(s.as_str().len() as i64)),
        Val::Array(a) => Ok(Val::Int(a.len() as i64)),
        Val::Object(m) => Ok(Val::Int(m.len() as i64)),
        Val::Nil => Err("len of nil pointer".into()),
        Val::Missing => Err("len of untyped nil".into()),
        other => Err(format!("len of type {}", other.type_name())),
    }
}

/// Go's `indexArg`: an integer index in `0..=cap`.
fn index_arg(index: &Val<'_>, cap: usize) -> Result<usize, String> {
    let x: i128 = match index {
        Val::Int(i) => *i as i128,
        // Go converts with int64(u), which wraps for huge values.
        Val::Uint(u) => *u as i64 as i128,
        Val::Missing | Val::Nil => return Err("cannot index slice/array with nil".into()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            ));
        }
    };
    if x < 0 || x > cap as i128 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

/// Go's `index item idx...`.
pub(super) fn index<'a>(item: Val<'a>, indexes: &[Val<'a>]) -> Result<Val<'a>, String> {
    if item.is_nil() {
        return Err("index of untyped nil".into());
    }
    let mut item = item;
    // Indexing a string yields a byte (Go's uint8), which cannot be indexed.
    let mut is_byte = false;
    for idx in indexes {
        if is_byte {
            return Err("can't index item of type uint8".into());
        }
        item = match item {
            Val::Nil | Val::Missing => return Err("index of nil pointer".into()),
            Val::Array(a) => {
                let x = index_arg(idx, a.len())?;
                match a.get(x) {
                    Some(e) => Val::from_json(e),
                    // Go's reflect panics on x == len; text/template reports it.
                    None => return Err("reflect: slice index out of range".into()),
                }
            }
            Val::Str(s) => {
                let b = s.as_str().as_bytes();
                let x = index_arg(idx, b.len())?;
                is_byte = true;
                match b.get(x) {
                    Some(&c) => Val::Int(c as i64),
                    None => return Err("reflect: string index out of range".into()),
                }
            }
            Val::Object(m) => match idx {
                Val::Str(k) => m.get(k.as_str()).map_or(Val::Nil, Val::from_json),
                Val::Missing | Val::Nil => {
                    return Err("value is nil; should be of type string".into());
                }
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            other => {
                return Err(format!("can't index item of type {}", other.type_name()));
            }
        };
    }
    Ok(item)
}

/// Byte-range substring of a runtime string (lossy if the range splits a
/// UTF-8 sequence, since Rust strings must stay valid UTF-8).
fn substr<'a>(s: &Str<'a>, from: usize, to: usize) -> Val<'a> {
    match s {
        Str::Borrowed(b) => match b.get(from..to) {
            Some(sub) => Val::Str(Str::Borrowed(sub)),
            None => Val::owned_str(
                String::from_utf8_lossy(b.as_bytes().get(from..to).unwrap_or(&[])).into_owned(),
            ),
        },
        Str::Owned(o) => {
            let text = match o.get(from..to) {
                Some(sub) => sub.to_string(),
                None => {
                    String::from_utf8_lossy(o.as_bytes().get(from..to).unwrap_or(&[])).into_owned()
                }
            };
            Val::Str(Str::Owned(Rc::from(text)))
        }
    }
}

/// Go's `slice item [i [j [k]]]`.
pub(super) fn slice<'a>(item: Val<'a>, indexes: &[Val<'a>]) -> Result<Val<'a>, String> {
    if item.is_nil() {
        return Err("slice of untyped nil".into());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let len = match &item {
        Val::Str(s) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.as_str().len()
        }
        Val::Array(a) => a.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let mut idx = [0usize, len, 0];
    for (i, index) in indexes.iter().enumerate() {
        idx[i] = index_arg(index, len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok(match item {
        Val::Str(s) => substr(&s, idx[0], idx[1]),
        Val::Array(a) => Val::Array(a.get(idx[0]..idx[1]).unwrap_or(&[])),
        other => other,
    })
}

// ----- comparison -------------------------------------------------------------

const ERR_BAD_COMPARISON_TYPE: &str = "invalid type for comparison";
const ERR_NO_COMPARISON: &str = "missing argument for comparison";

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Bool,
    Number,
    String,
    Invalid,
}

fn basic_kind(v: &Val<'_>) -> Kind {
    match v {
        Val::Bool(_) => Kind::Bool,
        Val::Int(_) | Val::Uint(_) | Val::Float(_) => Kind::Number,
        Val::Str(_) => Kind::String,
        _ => Kind::Invalid,
    }
}

/// Exact comparison of an integer with a float.
fn cmp_int_float(i: i128, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f >= 1.7e38 {
        return Some(Ordering::Less);
    }
    if f <= -1.7e38 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    let ord = i.cmp(&(t as i128));
    if ord != Ordering::Equal {
        return Some(ord);
    }
    let frac = f - t;
    Some(if frac > 0.0 {
        Ordering::Less
    } else if frac < 0.0 {
        Ordering::Greater
    } else {
        Ordering::Equal
    })
}

/// Numeric comparison across int, uint and float (by value).
fn cmp_numbers(a: &Val<'_>, b: &Val<'_>) -> Option<Ordering> {
    let int = |v: &Val<'_>| match v {
        Val::Int(i) => Some(*i as i128),
        Val::Uint(u) => Some(*u as i128),
        _ => None,
    };
    match (a, b) {
        (Val::Float(x), Val::Float(y)) => x.partial_cmp(y),
        (Val::Float(x), other) => int(other)
            .and_then(|i| cmp_int_float(i, *x))
            .map(Ordering::reverse),
        (other, Val::Float(y)) => int(other).and_then(|i| cmp_int_float(i, *y)),
        _ => Some(int(a)?.cmp(&int(b)?)),
    }
}

fn sprint_s(v: &Val<'_>) -> String {
    let mut p = Printer::new(4096);
    p.sprintf("%s", std::slice::from_ref(v));
    p.finish().unwrap_or_default()
}

fn sprint_v(v: &Val<'_>) -> String {
    let mut p = Printer::new(4096);
    p.sprint(std::slice::from_ref(v));
    p.finish().unwrap_or_default()
}

fn incompatible(a: &Val<'_>, b: &Val<'_>) -> String {
    format!(
        "incompatible types for comparison: {} and {}",
        a.type_name(),
        b.type_name()
    )
}

/// Go's `eq arg1 arg2...`: true if arg1 equals any of the others. Numbers
/// compare by value regardless of int/float.
pub(super) fn eq(a: &Val<'_>, rest: &[Val<'_>]) -> Result<bool, String> {
    if rest.is_empty() {
        return Err(ERR_NO_COMPARISON.into());
    }
    let k1 = basic_kind(a);
    for b in rest {
        let k2 = basic_kind(b);
        let truth = if k1 != k2 {
            if !a.is_nil() && !b.is_nil() {
                return Err(incompatible(a, b));
            }
            false
        } else {
            match (a, b) {
                (Val::Bool(x), Val::Bool(y)) => x == y,
                (Val::Str(x), Val::Str(y)) => x.as_str() == y.as_str(),
                _ if k1 == Kind::Number => cmp_numbers(a, b) == Some(Ordering::Equal),
                // Invalid kinds: nil, arrays and maps.
                _ if a.is_nil() || b.is_nil() => a.is_nil() == b.is_nil(),
                (Val::Array(_), Val::Array(_)) | (Val::Object(_), Val::Object(_)) => {
                    return Err(format!(
                        "non-comparable type {}: {}",
                        sprint_s(b),
                        b.type_name()
                    ));
                }
                _ => {
                    return Err(format!(
                        "non-comparable types {}: {}, {}: {}",
                        sprint_s(a),
                        a.type_name(),
                        b.type_name(),
                        sprint_v(b)
                    ));
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's `ne`.
pub(super) fn ne(a: &Val<'_>, b: &Val<'_>) -> Result<bool, String> {
    Ok(!eq(a, std::slice::from_ref(b))?)
}

/// Go's `lt`: numbers (by value) and strings only.
pub(super) fn lt(a: &Val<'_>, b: &Val<'_>) -> Result<bool, String> {
    let k1 = basic_kind(a);
    if k1 == Kind::Invalid {
        return Err(ERR_BAD_COMPARISON_TYPE.into());
    }
    let k2 = basic_kind(b);
    if k2 == Kind::Invalid {
        return Err(ERR_BAD_COMPARISON_TYPE.into());
    }
    if k1 != k2 {
        return Err(incompatible(a, b));
    }
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Ok(x.as_str().as_bytes() < y.as_str().as_bytes()),
        _ if k1 == Kind::Number => Ok(cmp_numbers(a, b) == Some(Ordering::Less)),
        _ => Err(ERR_BAD_COMPARISON_TYPE.into()),
    }
}

/// Go's `le`.
pub(super) fn le(a: &Val<'_>, b: &Val<'_>) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(a, std::slice::from_ref(b))
}

/// Go's `gt`.
pub(super) fn gt(a: &Val<'_>, b: &Val<'_>) -> Result<bool, String> {
    Ok(!le(a, b)?)
}

/// Go's `ge`.
pub(super) fn ge(a: &Val<'_>, b: &Val<'_>) -> Result<bool, String> {
    Ok(!lt(a, b)?)
}

// ----- escaping ---------------------------------------------------------------

/// Go's `evalArgs`: a lone string argument as is, otherwise `fmt.Sprint`
/// of the arguments with nil values shown as `<no value>`.
pub(super) fn eval_args(args: &[Val<'_>], limit: usize) -> Result<String, PrintError> {
    if let [Val::Str(s)] = args {
        return Ok(s.as_str().to_string());
    }
    let converted: Vec<Val<'_>> = args
        .iter()
        .map(|a| {
            if a.is_nil() {
                Val::Str(Str::Borrowed("<no value>"))
            } else {
                a.clone()
            }
        })
        .collect();
    let mut p = Printer::new(limit);
    p.sprint(&converted);
    p.finish()
}

/// Go's `template.HTMLEscapeString`.
pub(super) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            _ => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub(super) fn js_escape(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            _ if (c as u32) < 0x20 => {
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(HEX[b >> 4] as char);
                out.push(HEX[b & 0xF] as char);
            }
            _ if c.is_ascii() || is_print(c) => out.push(c),
            _ => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(super) fn query_escape(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xF) as usize] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(x: &'static str) -> Val<'static> {
        Val::Str(Str::Borrowed(x))
    }

    #[test]
    fn escaping() {
        assert_eq!(
            html_escape("<a href='x'>&\"\0"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&#34;\u{FFFD}"
        );
        assert_eq!(
            js_escape("a'b\"c<>&=\\\n\té\u{2028}`\u{1}\u{1f}\u{7f}\u{80}"),
            "a\\'b\\\"c\\u003C\\u003E\\u0026\\u003D\\\\\\u000A\\u0009é\\u2028`\\u0001\\u001F\u{7f}\\u0080"
        );
        assert_eq!(query_escape("a b&c=d/é~_-."), "a+b%26c%3Dd%2F%C3%A9~_-.");
        assert_eq!(query_escape("\0 +%"), "%00+%2B%25");
    }

    #[test]
    fn eval_args_joins() {
        assert_eq!(eval_args(&[s("<x>")], 100), Ok("<x>".into()));
        assert_eq!(
            eval_args(&[Val::Int(1), Val::Int(2)], 100),
            Ok("1 2".into())
        );
        assert_eq!(eval_args(&[Val::Nil], 100), Ok("<no value>".into()));
        assert_eq!(eval_args(&[], 100), Ok(String::new()));
    }

    #[test]
    fn comparisons() {
        assert_eq!(eq(&Val::Int(1), &[Val::Float(1.0)]), Ok(true));
        assert_eq!(eq(&Val::Uint(u64::MAX), &[Val::Int(-1)]), Ok(false));
        assert_eq!(eq(&s("a"), &[s("b"), s("a")]), Ok(true));
        assert_eq!(
            eq(&s("a"), &[Val::Int(1)]),
            Err("incompatible types for comparison: string and int".into())
        );
        assert_eq!(eq(&Val::Missing, &[s("x")]), Ok(false));
        assert_eq!(eq(&Val::Missing, &[Val::Nil]), Ok(true));
        assert_eq!(eq(&Val::Int(1), &[]), Err(ERR_NO_COMPARISON.into()));
        let list = json!([1, 2, 3]);
        assert_eq!(
            eq(&Val::from_json(&list), &[Val::from_json(&list)]),
            Err("non-comparable type [%!s(int=1) %!s(int=2) %!s(int=3)]: []interface {}".into())
        );
        assert_eq!(lt(&Val::Int(1), &Val::Float(2.5)), Ok(true));
        assert_eq!(lt(&Val::Float(2.5), &Val::Int(2)), Ok(false));
        assert_eq!(lt(&Val::Int(-1), &Val::Uint(u64::MAX)), Ok(true));
        assert_eq!(lt(&s("a"), &s("b")), Ok(true));
        assert_eq!(
            lt(&Val::Int(1), &s("a")),
            Err("incompatible types for comparison: int and string".into())
        );
        assert_eq!(
            lt(&Val::Bool(true), &Val::Bool(false)),
            Err(ERR_BAD_COMPARISON_TYPE.into())
        );
        assert_eq!(
            lt(&Val::Missing, &Val::Int(1)),
            Err(ERR_BAD_COMPARISON_TYPE.into())
        );
        assert_eq!(le(&Val::Int(2), &Val::Int(2)), Ok(true));
        assert_eq!(gt(&Val::Int(3), &Val::Int(2)), Ok(true));
        assert_eq!(ge(&Val::Int(1), &Val::Int(2)), Ok(false));
        assert_eq!(ne(&Val::Int(1), &Val::Int(2)), Ok(true));
        assert_eq!(
            cmp_int_float(i64::MAX as i128, 9.223372036854776e18),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn index_and_slice() {
        let data = json!({"list": [1, 2, 3], "m": {"a": 1}, "nested": {"a": [1, {"x": null}]}});
        let d = Val::from_json(&data);
        let list = index(d.clone(), &[s("list")]).unwrap_or(Val::Missing);
        assert!(matches!(
            index(list.clone(), &[Val::Int(1)]),
            Ok(Val::Int(2))
        ));
        assert_eq!(
            index(list.clone(), &[Val::Int(3)]).err(),
            Some("reflect: slice index out of range".into())
        );
        assert_eq!(
            index(list.clone(), &[Val::Int(-1)]).err(),
            Some("index out of range: -1".into())
        );
        assert_eq!(
            index(list.clone(), &[s("a")]).err(),
            Some("cannot index slice/array with type string".into())
        );
        assert_eq!(
            index(d.clone(), &[s("m"), Val::Int(1)]).err(),
            Some("value has type int; should be string".into())
        );
        assert!(matches!(index(d.clone(), &[s("zz")]), Ok(Val::Nil)));
        assert_eq!(
            index(
                d.clone(),
                &[s("nested"), s("a"), Val::Int(1), s("x"), s("y")]
            )
            .err(),
            Some("index of nil pointer".into())
        );
        assert_eq!(
            index(Val::Missing, &[]).err(),
            Some("index of untyped nil".into())
        );
        assert!(matches!(index(s("abc"), &[Val::Int(1)]), Ok(Val::Int(98))));
        assert_eq!(
            index(s("abc"), &[Val::Int(1), Val::Int(0)]).err(),
            Some("can't index item of type uint8".into())
        );
        assert!(matches!(slice(list.clone(), &[Val::Int(1)]), Ok(Val::Array(a)) if a.len() == 2));
        assert_eq!(
            slice(list.clone(), &[Val::Int(0), Val::Int(5)]).err(),
            Some("index out of range: 5".into())
        );
        assert_eq!(
            slice(s("abc"), &[Val::Int(2), Val::Int(1)]).err(),
            Some("invalid slice index: 2 > 1".into())
        );
        assert!(
            matches!(slice(s("abcdef"), &[Val::Int(1), Val::Int(3)]), Ok(Val::Str(x)) if x.as_str() == "bc")
        );
        assert!(
            matches!(slice(s("é"), &[Val::Int(0), Val::Int(1)]), Ok(Val::Str(x)) if x.as_str() == "\u{FFFD}")
        );
        assert_eq!(
            slice(s("abc"), &[Val::Int(1), Val::Int(2), Val::Int(3)]).err(),
            Some("cannot 3-index slice a string".into())
        );
        assert_eq!(
            slice(d, &[Val::Int(1)]).err(),
            Some("can't slice item of type map[string]interface {}".into())
        );
    }

    #[test]
    fn lengths() {
        let data = json!({"a": [1, 2], "m": {"x": 1}});
        assert!(matches!(len(&s("héllo")), Ok(Val::Int(6))));
        assert!(matches!(len(&Val::from_json(&data)), Ok(Val::Int(2))));
        assert_eq!(len(&Val::Int(3)).err(), Some("len of type int".into()));
        assert_eq!(len(&Val::Nil).err(), Some("len of nil pointer".into()));
    }
}
