//! ConfigMap rules the apiserver applies beyond names (which `admit` checks for every kind):
//! key syntax, a key in both `data` and `binaryData`, `binaryData` base64, the 1 MiB total, and
//! `immutable` on update. Texts as the apiserver prints them. Pure.

use base64::Engine;
use serde_json::Value;

use super::status::Cause;

const KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const MAX_BYTES: usize = 1024 * 1024;
const IMMUTABLE_MSG: &str = "Forbidden: field is immutable when `immutable` is set";

fn key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        && k != "."
        && k != ".."
        && !k.starts_with("..")
}

/// The causes that make a new or replaced ConfigMap invalid (empty when it is fine).
pub fn validate(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut total = 0usize;
    for field in ["data", "binaryData"] {
        let Some(map) = obj[field].as_object() else {
            if !obj[field].is_null() {
                causes.push(Cause::invalid(field, "<value>", "must be a map of strings"));
            }
            continue;
        };
        for (k, v) in map {
            let path = format!("{field}[{k}]");
            if !key_ok(k) {
                causes.push(Cause::invalid(path.clone(), k, KEY_MSG));
            }
            if field == "binaryData" && obj["data"].get(k).is_some() {
                causes.push(Cause::invalid(path.clone(), k, "duplicate of key present in data"));
            }
            match v.as_str() {
                None => causes.push(Cause::invalid(path, "<value>", "must be a string")),
                Some(s) if field == "binaryData" => match base64::engine::general_purpose::STANDARD.decode(s) {
                    Ok(b) => total += k.len() + b.len(),
                    Err(_) => causes.push(Cause::invalid(path, "<value>", "must be base64 encoded")),
                },
                Some(s) => total += k.len() + s.len(),
            }
        }
    }
    if total > MAX_BYTES {
        causes.push(Cause {
            reason: "FieldValueTooLong",
            field: "data".into(),
            message: format!("Too long: must have at most {MAX_BYTES} bytes"),
        });
    }
    causes
}

/// The causes that forbid replacing `old` by `new`: an immutable ConfigMap keeps its data and
/// stays immutable.
pub fn update_causes(old: &Value, new: &Value) -> Vec<Cause> {
    let mut causes = validate(new);
    if old["immutable"] == true {
        let forbidden = |field: &str| Cause {
            reason: "FieldValueForbidden",
            field: field.into(),
            message: IMMUTABLE_MSG.into(),
        };
        if new["immutable"] != true {
            causes.push(forbidden("immutable"));
        }
        let empty = Value::Object(Default::default());
        for field in ["data", "binaryData"] {
            let (a, b) = (&old[field], &new[field]);
            let a = if a.is_null() { &empty } else { a };
            let b = if b.is_null() { &empty } else { b };
            if a != b {
                causes.push(forbidden(field));
            }
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_duplicates_and_base64_are_checked() {
        assert!(validate(&json!({"data": {"a.b_C-1": "x"}, "binaryData": {"bin": "AAE="}})).is_empty());
        let c = validate(&json!({"data": {"bad key": "x", "k": "y"}, "binaryData": {"k": "!!"}}));
        let fields: Vec<&str> = c.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["data[bad key]", "binaryData[k]", "binaryData[k]"]);
        assert!(c[0].message.contains("a valid config key"));
        assert!(!validate(&json!({"data": {"..x": "y"}})).is_empty());
        let big = "x".repeat(MAX_BYTES);
        assert_eq!(validate(&json!({"data": {"k": big}}))[0].reason, "FieldValueTooLong");
    }

    #[test]
    fn immutable_config_maps_keep_their_data() {
        let old = json!({"immutable": true, "data": {"a": "1"}});
        assert!(update_causes(&old, &json!({"immutable": true, "data": {"a": "1"}})).is_empty());
        let c = update_causes(&old, &json!({"data": {"a": "2"}}));
        let fields: Vec<&str> = c.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["immutable", "data"]);
        assert!(update_causes(&json!({"data": {"a": "1"}}), &json!({"data": {"a": "2"}})).is_empty());
    }
}
