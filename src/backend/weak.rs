//! Mapstructure-style weak decoding of JSON values, as Woodpecker decodes
//! `backend_options` (numbers and bools as strings, strings as numbers and bools with Go's
//! parsing rules, a single value as a one-element list, case-insensitive keys), collecting a
//! warning with the field path for everything it cannot use. Knows no option names.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::go::strconv::{parse_bool as parse_go_bool, parse_int as parse_go_int};

/// A decoding context: a path prefix for messages and the warnings collected so far.
pub struct Dec<'a> {
    pub warnings: &'a mut Vec<String>,
}

impl Dec<'_> {
    pub fn warn(&mut self, path: &str, msg: impl std::fmt::Display) {
        self.warnings.push(format!("{path}: {msg}"));
    }

    /// The object at `v`, warning about keys outside `known`; `None` (with a warning) if `v` is
    /// not an object. Null counts as an empty object.
    pub fn object<'v>(&mut self, v: &'v Value, path: &str, known: &[&str]) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => {
                for k in m.keys() {
                    if !known.iter().any(|n| n.eq_ignore_ascii_case(k)) {
                        self.warn(&format!("{path}.{k}"), "unknown option, ignored");
                    }
                }
                Some(m)
            }
            Value::Null => None,
            other => {
                self.warn(path, format!("expected a map, got {}", kind(other)));
                None
            }
        }
    }
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// mapstructure's key lookup: an exact match, else a case-insensitive one. A `null` value is no
/// value (mapstructure leaves the field as it was when its input is nil).
pub fn get<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    m.get(key)
        .or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
        .filter(|v| !v.is_null())
}

/// Weak string: bools become `1`/`0`, numbers their shortest decimal form.
pub fn weak_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => f.to_string(),
            _ => n.to_string(),
        }),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// Weak bool: strings via Go's `ParseBool`, numbers are true when non-zero.
pub fn weak_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.is_empty() => Some(false),
        Value::String(s) => parse_go_bool(s),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        _ => None,
    }
}

/// Weak int: strings with base auto-detection (`0x`, `0o`, `0b`, leading `0` = octal).
pub fn weak_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) if s.is_empty() => Some(0),
        Value::String(s) => parse_go_int(s),
        _ => None,
    }
}

/// A map of strings with weak values. Warns and returns `None` when `v` is not a map.
pub fn weak_string_map(v: &Value, path: &str, warnings: &mut Vec<String>) -> Option<BTreeMap<String, String>> {
    let mut d = Dec { warnings };
    match v {
        Value::Null => Some(BTreeMap::new()),
        Value::Object(m) => {
            let mut out = BTreeMap::new();
            for (k, val) in m {
                match weak_string(val) {
                    Some(s) => {
                        out.insert(k.clone(), s);
                    }
                    None => d.warn(&format!("{path}.{k}"), format!("expected a string, got {}", kind(val))),
                }
            }
            Some(out)
        }
        other => {
            d.warn(path, format!("expected a map, got {}", kind(other)));
            None
        }
    }
}

/// A list; a single non-list value is a one-element list (weak decoding), null is empty.
pub fn weak_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

pub fn string_field(d: &mut Dec, m: &Map<String, Value>, key: &str, path: &str) -> Option<String> {
    let v = get(m, key)?;
    let s = weak_string(v);
    if s.is_none() {
        d.warn(&format!("{path}.{key}"), format!("expected a string, got {}", kind(v)));
    }
    s
}

pub fn bool_field(d: &mut Dec, m: &Map<String, Value>, key: &str, path: &str) -> Option<bool> {
    let v = get(m, key)?;
    let b = weak_bool(v);
    if b.is_none() {
        d.warn(&format!("{path}.{key}"), format!("expected a bool, got {}", kind(v)));
    }
    b
}

pub fn int_field(d: &mut Dec, m: &Map<String, Value>, key: &str, path: &str) -> Option<i64> {
    let v = get(m, key)?;
    let i = weak_int(v);
    if i.is_none() {
        d.warn(
            &format!("{path}.{key}"),
            format!("expected an integer, got {}", kind(v)),
        );
    }
    i
}

pub fn map_field(d: &mut Dec, m: &Map<String, Value>, key: &str, path: &str) -> BTreeMap<String, String> {
    get(m, key)
        .and_then(|v| weak_string_map(v, &format!("{path}.{key}"), d.warnings))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn weak_conversions() {
        assert_eq!(weak_string(&json!(true)).as_deref(), Some("1"));
        assert_eq!(weak_string(&json!(1.25)).as_deref(), Some("1.25"));
        assert_eq!(weak_string(&json!(-3)).as_deref(), Some("-3"));
        assert_eq!(weak_string(&json!([1])), None);
        assert_eq!(weak_bool(&json!("T")), Some(true));
        assert_eq!(weak_bool(&json!("no")), None);
        assert_eq!(weak_bool(&json!(2)), Some(true));
        assert_eq!(weak_int(&json!("0b101")), Some(5));
        assert_eq!(weak_int(&json!("-0o17")), Some(-15));
        assert_eq!(weak_int(&json!("1_000")), Some(1000));
        assert_eq!(weak_int(&json!(true)), Some(1));
        assert_eq!(weak_int(&json!("12abc")), None);
    }
}
