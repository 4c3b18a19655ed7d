//! The workflow payload as Woodpecker's Go server writes it: upstream's struct table
//! (`pipeline/backend/types`, HEAD a4cb541: field order, JSON keys, Go kinds, `omitempty`) and
//! `encoding/json`'s marshalling rules over it, so tests feed the agent and `render` what a real
//! server sends rather than what our own serializer writes.
//!
//! Go's rules applied: struct fields in declaration order; a nil slice, map or pointer without
//! `omitempty` is `null`; `omitempty` drops `false`, `0`, `""` and empty or nil slices and maps
//! (never a struct); map keys sorted; strings escaped as Go escapes them (`<`, `>`, `&`, U+2028 and
//! U+2029 as `\u` escapes, other control characters as `\u00XX` but for `\n`, `\r`, `\t`).

use serde_json::Value;

/// A Go type, as far as JSON is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Go {
    String,
    Bool,
    Int,
    /// A named struct of [`FIELDS`].
    Struct(&'static str),
    Slice(&'static Go),
    /// `map[string]V`.
    Map(&'static Go),
    /// `any` (`map[string]any` values).
    Any,
    Ptr(&'static Go),
}

impl Go {
    /// Slices, maps, pointers and interfaces: what Go can hold as nil and write as `null`.
    pub fn nilable(self) -> bool {
        matches!(self, Go::Slice(_) | Go::Map(_) | Go::Ptr(_) | Go::Any)
    }
}

pub struct Field {
    /// The Go struct the field belongs to.
    pub owner: &'static str,
    pub key: &'static str,
    pub go: Go,
    pub omitempty: bool,
}

const fn f(owner: &'static str, key: &'static str, go: Go, omitempty: bool) -> Field {
    Field {
        owner,
        key,
        go,
        omitempty,
    }
}

const STR: Go = Go::String;
const STRS: Go = Go::Slice(&Go::String);
const STR_MAP: Go = Go::Map(&Go::String);

/// Every field of the workflow payload, from upstream's Go struct tags, in declaration order.
/// `types.Config` is the payload's top level.
pub const FIELDS: &[Field] = &[
    // config.go
    f("Config", "pipeline", Go::Slice(&Go::Ptr(&Go::Struct("Stage"))), false),
    f("Config", "network", STR, false),
    f("Config", "volume", STR, false),
    f("Config", "secrets", Go::Slice(&Go::Ptr(&Go::Struct("Secret"))), false),
    // stage.go
    f("Stage", "steps", Go::Slice(&Go::Ptr(&Go::Struct("Step"))), true),
    // step.go
    f("Step", "name", STR, false),
    f("Step", "org_id", Go::Int, true),
    f("Step", "uuid", STR, false),
    f("Step", "type", STR, true),
    f("Step", "image", STR, true),
    f("Step", "pull", Go::Bool, true),
    f("Step", "detach", Go::Bool, true),
    f("Step", "privileged", Go::Bool, true),
    f("Step", "working_dir", STR, true),
    f("Step", "workspace_base", STR, true),
    f("Step", "environment", STR_MAP, true),
    f("Step", "secret_mapping", STR_MAP, true),
    f("Step", "entrypoint", STRS, true),
    f("Step", "commands", STRS, true),
    f("Step", "extra_hosts", Go::Slice(&Go::Struct("HostAlias")), true),
    f("Step", "volumes", STRS, true),
    f("Step", "tmpfs", STRS, true),
    f("Step", "devices", STRS, true),
    f("Step", "networks", Go::Slice(&Go::Struct("Conn")), true),
    f("Step", "dns", STRS, true),
    f("Step", "dns_search", STRS, true),
    f("Step", "on_failure", Go::Bool, true),
    f("Step", "on_success", Go::Bool, true),
    f("Step", "failure", STR, true),
    f("Step", "auth_config", Go::Struct("Auth"), false),
    f("Step", "network_mode", STR, true),
    f("Step", "ports", Go::Slice(&Go::Struct("Port")), true),
    f("Step", "backend_options", Go::Map(&Go::Any), true),
    f("Step", "workflow_labels", STR_MAP, true),
    // network.go
    f("Port", "number", Go::Int, true),
    f("Port", "protocol", STR, true),
    f("HostAlias", "name", STR, true),
    f("HostAlias", "ip", STR, true),
    // conn.go
    f("Conn", "name", STR, false),
    f("Conn", "aliases", STRS, false),
    // secret.go
    f("Secret", "name", STR, true),
    f("Secret", "value", STR, true),
    // auth.go
    f("Auth", "username", STR, true),
    f("Auth", "password", STR, true),
];

pub fn fields_of(owner: &str) -> impl Iterator<Item = &'static Field> + '_ {
    FIELDS.iter().filter(move |f| f.owner == owner)
}

/// Marshals `value` (our JSON of a `Config`, any subset of its fields) as Go's server would
/// marshal the same `types.Config`: every field of the table, nil where `value` has none.
pub fn marshal_config(value: &Value) -> String {
    let mut out = String::new();
    marshal(&mut out, Some(value), Go::Struct("Config"));
    out
}

fn marshal(out: &mut String, value: Option<&Value>, go: Go) {
    match go {
        Go::String => string(out, value.and_then(Value::as_str).unwrap_or("")),
        Go::Bool => out.push_str(if value.and_then(Value::as_bool).unwrap_or(false) {
            "true"
        } else {
            "false"
        }),
        Go::Int => out.push_str(&value.and_then(Value::as_i64).unwrap_or(0).to_string()),
        Go::Ptr(inner) => match value {
            None | Some(Value::Null) => out.push_str("null"),
            Some(v) => marshal(out, Some(v), *inner),
        },
        Go::Slice(elem) => match value.and_then(Value::as_array) {
            None => out.push_str("null"),
            Some(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    marshal(out, Some(item), *elem);
                }
                out.push(']');
            }
        },
        Go::Map(elem) => match value.and_then(Value::as_object) {
            None => out.push_str("null"),
            Some(map) => {
                out.push('{');
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    string(out, k);
                    out.push(':');
                    marshal(out, map.get(k), *elem);
                }
                out.push('}');
            }
        },
        Go::Any => match value {
            None | Some(Value::Null) => out.push_str("null"),
            Some(Value::Object(_)) => marshal(out, value, Go::Map(&Go::Any)),
            Some(Value::Array(items)) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    marshal(out, Some(item), Go::Any);
                }
                out.push(']');
            }
            Some(Value::String(s)) => string(out, s),
            Some(other) => out.push_str(&other.to_string()),
        },
        Go::Struct(name) => {
            out.push('{');
            let mut first = true;
            for field in fields_of(name) {
                let v = value.and_then(|v| v.get(field.key)).filter(|v| !v.is_null());
                if field.omitempty && is_empty(v, field.go) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                string(out, field.key);
                out.push(':');
                marshal(out, v, field.go);
            }
            out.push('}');
        }
    }
}

/// Go's `isEmptyValue`: false, 0, "", and nil or empty slices, maps and pointers; never a struct.
fn is_empty(value: Option<&Value>, go: Go) -> bool {
    match (go, value) {
        (Go::Struct(_), _) => false,
        (_, None) => true,
        (Go::String, Some(v)) => v.as_str().is_none_or(str::is_empty),
        (Go::Bool, Some(v)) => !v.as_bool().unwrap_or(false),
        (Go::Int, Some(v)) => v.as_i64().unwrap_or(0) == 0,
        (Go::Slice(_), Some(v)) => v.as_array().is_none_or(Vec::is_empty),
        (Go::Map(_), Some(v)) => v.as_object().is_none_or(serde_json::Map::is_empty),
        (Go::Ptr(_) | Go::Any, Some(v)) => v.is_null(),
    }
}

/// A string as Go's `encoding/json` escapes it (with its default HTML escaping).
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marshals_like_go() {
        let v = serde_json::json!({"pipeline": [{"steps": [{"name": "a<b", "auth_config": {}}]}]});
        assert_eq!(
            marshal_config(&v),
            r#"{"pipeline":[{"steps":[{"name":"a\u003cb","uuid":"","auth_config":{}}]}],"network":"","volume":"","secrets":null}"#
        );
    }
}
