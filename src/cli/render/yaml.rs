//! YAML output for `render`: block style, with every string that a YAML 1.1 reader could take
//! for something else written double-quoted. kubectl (sigs.k8s.io/yaml) and PyYAML read YAML
//! 1.1, where `yes`, `on`, `y`, `1_000` or `2024-01-01` are not strings; a general-purpose YAML
//! 1.2 emitter leaves those plain, and an env value `on` would then fail to apply. Knows only
//! JSON values.

use serde_json::Value;

/// Words YAML 1.1 reads as booleans or null.
const SPECIAL: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE", "on",
    "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~",
];

/// A string that reads back as the same string in YAML 1.1 and 1.2 without quotes: starts with
/// a letter or `/`, continues with letters, digits and `-_./`, is not a special word, and does
/// not end in `:`-like punctuation that could start a mapping.
fn plain_ok(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else { return false };
    (first.is_ascii_alphabetic() || first == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !SPECIAL.contains(&s)
}

fn scalar(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        Value::from(s).to_string()
    }
}

fn inline(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(scalar(s)),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(o) if o.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn write(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                match inline(val) {
                    Some(s) => out.push_str(&format!("{pad}{}: {s}\n", scalar(k))),
                    None => {
                        out.push_str(&format!("{pad}{}:\n", scalar(k)));
                        // Sequences sit at their key's indent, as kubectl writes them.
                        write(val, if val.is_array() { indent } else { indent + 2 }, out);
                    }
                }
            }
        }
        Value::Array(a) => {
            for item in a {
                match inline(item) {
                    Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                    None => {
                        // The first line of the nested block goes after the dash.
                        let mut nested = String::new();
                        write(item, indent + 2, &mut nested);
                        out.push_str(&format!("{pad}- {}", &nested[indent + 2..]));
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", inline(other).unwrap_or_default())),
    }
}

/// One YAML document (starting with `---`) for `v`.
pub fn document(v: &Value) -> String {
    let mut out = String::from("---\n");
    match inline(v) {
        Some(s) => out.push_str(&format!("{s}\n")),
        None => write(v, 0, &mut out),
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ambiguous_strings_are_quoted() {
        for s in [
            "yes",
            "on",
            "Off",
            "y",
            "~",
            "null",
            "true",
            "0x10",
            "1_000",
            "012",
            "1e3",
            ".inf",
            "2024-01-01",
            "",
        ] {
            assert_eq!(scalar(s), format!("\"{s}\""), "{s}");
        }
        for s in [
            "alpine",
            "/woodpecker/src",
            "wp-01abc",
            "kubernetes.io/arch",
            "ReadWriteMany",
            "a_b",
        ] {
            assert_eq!(scalar(s), s);
        }
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(scalar("line\nnext \"q\""), r#""line\nnext \"q\"""#);
        assert_eq!(scalar("echo $CI_SCRIPT | base64 -d"), "\"echo $CI_SCRIPT | base64 -d\"");
    }

    #[test]
    fn block_layout() {
        let v = json!({"kind": "Pod", "spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "on"}],
                       "resources": {}}], "n": 1, "ok": true, "list": ["a", "0"], "empty": []}});
        let want = "---\nkind: Pod\nspec:\n  containers:\n  - env:\n    - name: A\n      value: \"on\"\n    name: c\n    \
                    resources: {}\n  empty: []\n  list:\n  - a\n  - \"0\"\n  \"n\": 1\n  ok: true\n";
        assert_eq!(document(&v), want);
        // `n` is a YAML 1.1 boolean, so even the key is quoted. What we write reads back as the
        // same value.
        let back: Value = serde_yaml::from_str(&want[4..]).unwrap();
        assert_eq!(back, v);
    }
}
