//! `settings:` and `environment:` values to variable values, by Woodpecker's `ParamsToEnv`:
//! booleans and numbers as Go prints them (`%v`: `1.1`, `1e+06`), strings as they are, a list
//! of plain values joined with commas, anything else (maps, lists of maps) as JSON; a
//! `{from_secret: NAME}` map is that secret's value, at the top of a value or anywhere inside
//! it, and then the variable is secret (masked, in the step's secret mapping). Pure.

use serde_json::Value as J;

use crate::pipeline::yaml::Value;

/// The variable's value and whether a secret went into it. `Err` names a secret that is not
/// set.
pub fn to_env(v: &Value, secret: &dyn Fn(&str) -> Option<String>) -> Result<(String, bool), String> {
    match v {
        Value::FromSecret(name) => secret(name).map(|s| (s, true)).ok_or_else(|| name.clone()),
        Value::Plain(json) => {
            let mut used = false;
            let out = sanitize(json, secret, &mut used)?;
            Ok((out, used))
        }
    }
}

/// Every secret a value names, nested ones included.
pub fn nested_secrets(v: &J, out: &mut Vec<String>) {
    match v {
        J::Object(map) => match map.get("from_secret") {
            Some(J::String(name)) => out.push(name.clone()),
            _ => map.values().for_each(|v| nested_secrets(v, out)),
        },
        J::Array(items) => items.iter().for_each(|v| nested_secrets(v, out)),
        _ => {}
    }
}

fn is_plain(v: &J) -> bool {
    matches!(v, J::Bool(_) | J::Number(_) | J::String(_))
}

fn sanitize(v: &J, secret: &dyn Fn(&str) -> Option<String>, used: &mut bool) -> Result<String, String> {
    match v {
        J::Null => Ok(String::new()),
        J::Bool(b) => Ok(b.to_string()),
        J::String(s) => Ok(s.clone()),
        J::Number(n) => Ok(go_number(n)),
        J::Object(map) => {
            if let Some(J::String(name)) = map.get("from_secret") {
                *used = true;
                return secret(name).ok_or_else(|| name.clone());
            }
            complex(v, secret, used)
        }
        J::Array(items) if items.is_empty() => Ok(String::new()),
        J::Array(items) if items.iter().all(|i| i.is_null() || is_plain(i)) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| sanitize(i, secret, used))
                .collect::<Result<_, _>>()?;
            Ok(parts.join(","))
        }
        J::Array(_) => complex(v, secret, used),
    }
}

/// JSON of a value with every nested `from_secret` replaced by the secret.
fn complex(v: &J, secret: &dyn Fn(&str) -> Option<String>, used: &mut bool) -> Result<String, String> {
    fn inject(v: &J, secret: &dyn Fn(&str) -> Option<String>, used: &mut bool) -> Result<J, String> {
        Ok(match v {
            J::Object(map) => {
                if let Some(J::String(name)) = map.get("from_secret") {
                    *used = true;
                    return secret(name).map(J::String).ok_or_else(|| name.clone());
                }
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    out.insert(k.clone(), inject(v, secret, used)?);
                }
                J::Object(out)
            }
            J::Array(items) => J::Array(
                items
                    .iter()
                    .map(|i| inject(i, secret, used))
                    .collect::<Result<_, _>>()?,
            ),
            other => other.clone(),
        })
    }
    Ok(inject(v, secret, used)?.to_string())
}

/// A number as Go's `fmt` `%v` prints an int64 or a float64.
pub fn go_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    go_float(n.as_f64().unwrap_or(0.0))
}

/// Go's `%v` for a float64 (strconv's shortest `g`): the shortest round-trip digits, in
/// exponent form (`1e+06`, `1.5e-05`) when the exponent is below -4 or at least 6.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `1.234567e6`.
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(v: J) -> String {
        to_env(&Value::Plain(v), &|n| (n == "tok").then(|| "s3cr3t".to_string()))
            .unwrap()
            .0
    }

    #[test]
    fn values_as_woodpecker_writes_them() {
        assert_eq!(env(json!(true)), "true");
        assert_eq!(env(json!(0)), "0");
        assert_eq!(env(json!(1.5)), "1.5");
        assert_eq!(env(json!(["latest", "1.0", 2])), "latest,1.0,2");
        assert_eq!(env(json!(["a", null, "b"])), "a,,b");
        assert_eq!(env(json!([])), "");
        assert_eq!(env(json!({"b": 1, "a": "x"})), r#"{"a":"x","b":1}"#);
        assert_eq!(env(json!([{"a": 1}])), r#"[{"a":1}]"#);
    }

    #[test]
    fn secrets_anywhere_in_a_value() {
        let secret = |n: &str| (n == "tok").then(|| "s3cr3t".to_string());
        let v = Value::Plain(json!([{"registry": "r", "password": {"from_secret": "tok"}}]));
        assert_eq!(
            to_env(&v, &secret),
            Ok((r#"[{"password":"s3cr3t","registry":"r"}]"#.to_string(), true))
        );
        assert_eq!(
            to_env(&Value::FromSecret("tok".into()), &secret),
            Ok(("s3cr3t".into(), true))
        );
        assert_eq!(to_env(&Value::FromSecret("nope".into()), &secret), Err("nope".into()));
        let mut names = Vec::new();
        nested_secrets(
            &json!({"a": [{"from_secret": "x"}], "b": {"from_secret": "y"}}),
            &mut names,
        );
        assert_eq!(names, ["x", "y"]);
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(1.1), "1.1");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(123456789.0), "1.23456789e+08");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
    }
}
