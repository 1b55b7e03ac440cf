//! Runtime values: a borrowed view of `serde_json::Value` data plus the
//! scalars produced by template literals and builtin functions, modelled
//! on how Go sees `map[string]interface{}` data through reflection.

use std::fmt;
use std::rc::Rc;

use serde_json::{Map, Value};

/// A string that is either borrowed from the template/data or produced at
/// run time (cheap to clone either way).
#[derive(Clone)]
pub(super) enum Str<'a> {
    Borrowed(&'a str),
    Owned(Rc<str>),
}

impl Str<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            Str::Borrowed(s) => s,
            Str::Owned(s) => s,
        }
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A value during execution.
///
/// `Missing` is Go's invalid `reflect.Value` (what a missing map key
/// yields; printed as `<no value>`); `Nil` is a nil `interface{}` (JSON
/// `null` or the `nil` literal; printed as `<nil>` by `print`).
#[derive(Clone, Debug)]
pub(super) enum Val<'a> {
    Missing,
    Nil,
    Bool(bool),
    Int(i64),
    /// Only used for integers above `i64::MAX`.
    Uint(u64),
    Float(f64),
    Str(Str<'a>),
    Array(&'a [Value]),
    Object(&'a Map<String, Value>),
}

impl<'a> Val<'a> {
    pub fn from_json(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Nil,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Val::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Val::Uint(u)
                } else {
                    Val::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => Val::Str(Str::Borrowed(s)),
            Value::Array(a) => Val::Array(a),
            Value::Object(m) => Val::Object(m),
        }
    }

    pub fn owned_str(s: String) -> Val<'a> {
        Val::Str(Str::Owned(Rc::from(s)))
    }

    /// Missing or nil.
    pub fn is_nil(&self) -> bool {
        matches!(self, Val::Missing | Val::Nil)
    }

    /// Go's `isTrue`: false, 0, nil and empty strings/arrays/maps are false.
    pub fn truth(&self) -> bool {
        match self {
            Val::Missing | Val::Nil => false,
            Val::Bool(b) => *b,
            Val::Int(i) => *i != 0,
            Val::Uint(u) => *u != 0,
            Val::Float(f) => *f != 0.0,
            Val::Str(s) => !s.as_str().is_empty(),
            Val::Array(a) => !a.is_empty(),
            Val::Object(m) => !m.is_empty(),
        }
    }

    /// The Go type name of the value (as printed by `%T` and in errors).
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Missing | Val::Nil => "interface {}",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Uint(_) => "uint64",
            Val::Float(_) => "float64",
            Val::Str(_) => "string",
            Val::Array(_) => "[]interface {}",
            Val::Object(_) => "map[string]interface {}",
        }
    }
}

/// Map entries sorted by key (Go prints and ranges over maps in key order),
/// independent of serde_json's `preserve_order` feature.
pub(super) fn sorted_entries(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut v: Vec<(&String, &Value)> = m.iter().collect();
    v.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn from_json_kinds() {
        let v =
            json!({"i": 1, "n": -2, "u": 18446744073709551615u64, "f": 0.5, "s": "x", "z": null});
        let Val::Object(m) = Val::from_json(&v) else {
            panic!("expected object");
        };
        let get = |k: &str| m.get(k).map(Val::from_json);
        assert!(matches!(get("i"), Some(Val::Int(1))));
        assert!(matches!(get("n"), Some(Val::Int(-2))));
        assert!(matches!(get("u"), Some(Val::Uint(u64::MAX))));
        assert!(matches!(get("f"), Some(Val::Float(f)) if f == 0.5));
        assert!(matches!(get("s"), Some(Val::Str(_))));
        assert!(matches!(get("z"), Some(Val::Nil)));
    }

    #[test]
    fn truthiness() {
        let empty_a = json!([]);
        let empty_o = json!({});
        let full_a = json!([0]);
        assert!(!Val::Missing.truth());
        assert!(!Val::Nil.truth());
        assert!(!Val::Bool(false).truth());
        assert!(!Val::Int(0).truth());
        assert!(!Val::Float(0.0).truth());
        assert!(!Val::Str(Str::Borrowed("")).truth());
        assert!(!Val::from_json(&empty_a).truth());
        assert!(!Val::from_json(&empty_o).truth());
        assert!(Val::from_json(&full_a).truth());
        assert!(Val::Int(-1).truth());
        assert!(Val::owned_str("x".into()).truth());
    }

    #[test]
    fn sorted() {
        let v = json!({"b": 1, "a": 2, "B": 3});
        let Value::Object(m) = &v else {
            panic!("expected object");
        };
        let keys: Vec<&str> = sorted_entries(m).iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["B", "a", "b"]);
    }
}
