//! JSON in as Go's `encoding/json` decodes it, for everything a Woodpecker server (a Go program)
//! sends: the workflow payload and the JSON inside it.
//!
//! Go's rules that serde's derive does not follow, and that a Go server relies on:
//! - `null` leaves a field as it was: a struct field given `null` is decoded as if it were absent
//!   (its serde default: the zero value, or a declared default, as Go keeps a value set before
//!   `Unmarshal`). Go's encoder writes `null` for every nil slice or map without `omitempty`
//!   (`"secrets": null`). Inside a list or a map, `null` is the element's zero value (`["a",
//!   null]` is `["a", ""]` for strings). Only an untyped value (`map[string]any`, our
//!   `serde_json::Value`) keeps a real `null`.
//! - Object keys match field names exactly first, then without regard to case.
//! - A key given twice: the last wins (serde's derive would refuse a duplicate field).
//! - Unknown keys are ignored (serde's default too).
//!
//! Errors name the path of the field (`pipeline[0].steps[2].ports[0].number`) and the kinds
//! involved, never the value: a payload carries secrets.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde_json::{Map, Number, Value};

/// Decodes `bytes` with Go's rules (see the module doc).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| JsonError {
        path: String::new(),
        // serde_json's syntax errors name a line and column, not a value.
        message: format!("not valid JSON: {e}"),
    })?;
    from_value(&value)
}

/// Decodes an already parsed value with Go's rules.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, JsonError> {
    T::deserialize(GoValue { value, at: &Path::Root })
}

/// A decoding error: where, and what kind of value was wrong. Never the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// `pipeline[0].steps[1].image`, or empty for the document itself.
    pub path: String,
    pub message: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "`{}`: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for JsonError {}

impl de::Error for JsonError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        JsonError {
            path: String::new(),
            message: msg.to_string(),
        }
    }

    // serde's defaults quote the value (`invalid type: string "hunter2"`): name its kind only.
    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        de::Error::custom(format_args!("expected {exp}, found {}", kind(&unexp)))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        de::Error::custom(format_args!("{} out of range, expected {exp}", kind(&unexp)))
    }

    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        de::Error::custom(format_args!("unknown value, expected one of {}", expected.join(", ")))
    }
}

fn kind(unexp: &de::Unexpected<'_>) -> &'static str {
    use de::Unexpected::*;
    match unexp {
        Bool(_) => "a boolean",
        Unsigned(_) | Signed(_) => "an integer",
        Float(_) => "a number",
        Char(_) | Str(_) => "a string",
        Bytes(_) => "bytes",
        Unit | Option => "null",
        NewtypeStruct | Other(_) => "a value",
        Seq => "a list",
        Map => "an object",
        Enum | UnitVariant | NewtypeVariant | TupleVariant | StructVariant => "an enum",
    }
}

/// Where a value sits in the document, built only when an error needs it.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, key) => {
                let p = parent.render();
                if p.is_empty() {
                    key.to_string()
                } else {
                    format!("{p}.{key}")
                }
            }
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

/// One JSON value read by Go's rules.
struct GoValue<'a> {
    value: &'a Value,
    at: &'a Path<'a>,
}

impl GoValue<'_> {
    /// Gives an error from below this value the path of this value, unless a deeper one has it.
    fn locate(&self, mut e: JsonError) -> JsonError {
        if e.path.is_empty() {
            e.path = self.at.render();
        }
        e
    }

    fn wrong_type(&self, exp: &dyn de::Expected) -> JsonError {
        let found = match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "a list",
            Value::Object(_) => "an object",
        };
        self.locate(de::Error::custom(format_args!("expected {exp}, found {found}")))
    }

    fn number<'de, V: Visitor<'de>>(&self, n: &Number, visitor: V) -> Result<V::Value, JsonError> {
        let r = if let Some(u) = n.as_u64() {
            visitor.visit_u64(u)
        } else if let Some(i) = n.as_i64() {
            visitor.visit_i64(i)
        } else {
            visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
        };
        r.map_err(|e| self.locate(e))
    }
}

/// Every scalar request: `null` is the zero value, the right kind is passed on, any other kind
/// is an error naming both kinds.
macro_rules! scalar {
    ($($method:ident => $zero:expr),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
            match self.value {
                Value::Null => {
                    let zero: fn(V) -> Result<V::Value, JsonError> = $zero;
                    zero(visitor).map_err(|e| self.locate(e))
                }
                _ => self.deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for GoValue<'_> {
    type Error = JsonError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        let r = match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => return self.number(n, visitor),
            Value::String(s) => visitor.visit_str(s),
            Value::Array(items) => return self.seq(items, visitor),
            Value::Object(map) => return self.map(map, None, visitor),
        };
        r.map_err(|e| self.locate(e))
    }

    scalar! {
        deserialize_bool => |v| v.visit_bool(false),
        deserialize_i8 => |v| v.visit_i64(0),
        deserialize_i16 => |v| v.visit_i64(0),
        deserialize_i32 => |v| v.visit_i64(0),
        deserialize_i64 => |v| v.visit_i64(0),
        deserialize_u8 => |v| v.visit_u64(0),
        deserialize_u16 => |v| v.visit_u64(0),
        deserialize_u32 => |v| v.visit_u64(0),
        deserialize_u64 => |v| v.visit_u64(0),
        deserialize_f32 => |v| v.visit_f64(0.0),
        deserialize_f64 => |v| v.visit_f64(0.0),
        deserialize_char => |v| v.visit_str(""),
        deserialize_str => |v| v.visit_str(""),
        deserialize_string => |v| v.visit_str(""),
        deserialize_bytes => |v| v.visit_bytes(&[]),
        deserialize_byte_buf => |v| v.visit_bytes(&[]),
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self.value {
            Value::Null => visitor.visit_none().map_err(|e| self.locate(e)),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, JsonError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self.value {
            Value::Null => self.seq(&[], visitor),
            Value::Array(items) => self.seq(items, visitor),
            _ => Err(self.wrong_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, JsonError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self.value {
            Value::Null => self.map(&Map::new(), None, visitor),
            Value::Object(map) => self.map(map, None, visitor),
            _ => Err(self.wrong_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        match self.value {
            Value::Null => self.map(&Map::new(), Some(fields), visitor),
            Value::Object(map) => self.map(map, Some(fields), visitor),
            _ => Err(self.wrong_type(&visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        match self.value {
            Value::String(s) => visitor
                .visit_enum(s.as_str().into_deserializer())
                .map_err(|e: JsonError| self.locate(e)),
            _ => Err(self.wrong_type(&visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        visitor.visit_unit()
    }
}

impl GoValue<'_> {
    fn seq<'de, V: Visitor<'de>>(&self, items: &[Value], visitor: V) -> Result<V::Value, JsonError> {
        let access = Items {
            items: items.iter().enumerate(),
            at: self.at,
        };
        visitor.visit_seq(access).map_err(|e| self.locate(e))
    }

    /// An object. For a struct (`fields` known), keys are matched to field names as Go matches
    /// them: exactly, else without regard to case; a field named twice keeps the exact key.
    fn map<'de, V: Visitor<'de>>(
        &self,
        map: &Map<String, Value>,
        fields: Option<&'static [&'static str]>,
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        let entries: Vec<(&str, &Value)> = match fields {
            None => map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            Some(fields) => struct_entries(map, fields),
        };
        let access = Entries {
            entries: entries.into_iter(),
            value: None,
            at: self.at,
        };
        visitor.visit_map(access).map_err(|e| self.locate(e))
    }
}

fn struct_entries<'m>(map: &'m Map<String, Value>, fields: &'static [&'static str]) -> Vec<(&'m str, &'m Value)> {
    let mut out: Vec<(&str, &Value)> = Vec::with_capacity(map.len());
    for (key, value) in map {
        if value.is_null() {
            continue;
        }
        if fields.contains(&key.as_str()) {
            out.retain(|(k, _)| k != key);
            out.push((key.as_str(), value));
            continue;
        }
        let folded = fields
            .iter()
            .find(|f| f.eq_ignore_ascii_case(key) || f.to_lowercase() == key.to_lowercase());
        match folded {
            // An exact key for the same field wins over a folded one.
            Some(field) if map.contains_key(*field) => {}
            Some(field) => {
                out.retain(|(k, _)| k != field);
                out.push((field, value));
            }
            None => out.push((key.as_str(), value)),
        }
    }
    out
}

struct Items<'a, I> {
    items: I,
    at: &'a Path<'a>,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a Value)>> SeqAccess<'de> for Items<'a, I> {
    type Error = JsonError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, JsonError> {
        let Some((i, value)) = self.items.next() else {
            return Ok(None);
        };
        let at = Path::Index(self.at, i);
        seed.deserialize(GoValue { value, at: &at }).map(Some)
    }
}

struct Entries<'a, I> {
    entries: I,
    value: Option<(&'a str, &'a Value)>,
    at: &'a Path<'a>,
}

impl<'de, 'a, I: Iterator<Item = (&'a str, &'a Value)>> MapAccess<'de> for Entries<'a, I> {
    type Error = JsonError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, JsonError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        seed.deserialize(de::value::StrDeserializer::<JsonError>::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, JsonError> {
        let (key, value) = self.value.take().expect("serde asks for a value after its key");
        let at = Path::Key(self.at, key);
        seed.deserialize(GoValue { value, at: &at })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(default)]
    struct Inner {
        name: String,
        aliases: Vec<String>,
        number: u16,
    }

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(default)]
    struct Outer {
        #[serde(rename = "pipeline")]
        stages: Vec<Inner>,
        env: BTreeMap<String, String>,
        any: BTreeMap<String, Value>,
        flag: bool,
        count: i64,
        maybe: Option<String>,
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    struct WithDefault {
        #[serde(default = "minus_one")]
        id: i64,
    }

    fn minus_one() -> i64 {
        -1
    }

    #[test]
    fn a_null_field_keeps_its_default_as_go_keeps_a_preset_value() {
        let got: WithDefault = from_slice(br#"{"id":null}"#).unwrap();
        assert_eq!(got.id, -1);
        let got: WithDefault = from_slice(br#"{"id":7}"#).unwrap();
        assert_eq!(got.id, 7);
    }

    fn decode(text: &str) -> Result<Outer, JsonError> {
        from_slice(text.as_bytes())
    }

    #[test]
    fn null_is_the_zero_value_of_every_kind() {
        let all_null = r#"{"pipeline":null,"env":null,"any":null,"flag":null,"count":null,"maybe":null,"inner":null}"#;
        assert_eq!(decode(all_null).unwrap(), Outer::default());
        assert_eq!(decode("{}").unwrap(), Outer::default());
        assert_eq!(decode("null").unwrap(), Outer::default());
    }

    #[test]
    fn null_inside_lists_and_maps_is_the_element_zero() {
        let got = decode(r#"{"pipeline":[null,{"aliases":["a",null],"number":null}],"env":{"K":null}}"#).unwrap();
        assert_eq!(got.stages[0], Inner::default());
        assert_eq!(got.stages[1].aliases, ["a", ""]);
        assert_eq!(got.env["K"], "");
    }

    #[test]
    fn untyped_values_keep_a_real_null() {
        let got = decode(r#"{"any":{"kubernetes":null,"x":[null]}}"#).unwrap();
        assert_eq!(got.any["kubernetes"], Value::Null);
        assert_eq!(got.any["x"], serde_json::json!([null]));
    }

    #[test]
    fn keys_match_exactly_first_then_without_case() {
        let got = decode(r#"{"Flag":true,"COUNT":3,"inner":{"NAME":"x"}}"#).unwrap();
        assert!(got.flag);
        assert_eq!(got.count, 3);
        assert_eq!(got.inner.name, "x");
        // Both spellings: the exact one wins; map keys are never folded.
        let got = decode(r#"{"Count":1,"count":2,"env":{"Flag":"a","flag":"b"}}"#).unwrap();
        assert_eq!(got.count, 2);
        assert_eq!(got.env.len(), 2);
    }

    #[test]
    fn the_last_duplicate_key_wins_and_unknown_keys_are_ignored() {
        let got = decode(r#"{"count":1,"count":2,"unknown":{"deep":[1]}}"#).unwrap();
        assert_eq!(got.count, 2);
    }

    #[test]
    fn errors_name_the_path_and_kinds_never_the_value() {
        let e = decode(r#"{"pipeline":[{},{"name":"hunter2secret-1","aliases":[7]}]}"#).unwrap_err();
        assert_eq!(e.path, "pipeline[1].aliases[0]");
        assert!(e.message.contains("expected a string"), "{e}");
        let e = decode(r#"{"inner":{"name":"hunter2secret-2","number":70000}}"#).unwrap_err();
        assert_eq!(e.to_string(), "`inner.number`: an integer out of range, expected u16");
        let e = decode(r#"{"flag":"hunter2secret-3"}"#).unwrap_err();
        assert_eq!(e.to_string(), "`flag`: expected a boolean, found a string");
        let e = decode(r#"{"env":"hunter2secret-4"}"#).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = decode(r#"{"count": 1.5}"#).unwrap_err();
        assert_eq!(e.path, "count");
        let e = decode(r#"{"count": "#).unwrap_err();
        assert!(e.message.starts_with("not valid JSON"), "{e}");
    }
}
