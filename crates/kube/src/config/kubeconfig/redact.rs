//! Decoder errors without the values they reject.
//!
//! serde's messages quote what they refuse (`invalid type: string "kc-secret-...", expected
//! struct User`), and a kubeconfig holds tokens, passwords and keys: a token pasted one line
//! too high would be printed. kubectl's message for the same file shows none. [`DecodeError`]
//! keeps the field path, the kind of what was found, the expected type and the position, and
//! drops the value: `users[0].user: invalid type: a string, expected struct User at line 9
//! column 11`.

use std::fmt;

/// A kubeconfig that is not a valid kubeconfig document, said without quoting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(String);

impl DecodeError {
    pub fn new(err: &serde_yaml::Error) -> DecodeError {
        let location = err.location().map(|l| (l.line(), l.column()));
        DecodeError(value_free(&err.to_string(), location))
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// serde's `Unexpected` kinds that carry a value, and what is said instead.
const VALUED: &[(&str, &str)] = &[
    ("string \"", "a string"),
    ("integer `", "an integer"),
    ("floating point `", "a floating-point number"),
    ("boolean `", "a boolean"),
    ("character `", "a character"),
];

/// serde's `Unexpected` kinds without a value, kept as they are.
const BARE: &[&str] = &[
    "byte array",
    "unit value",
    "Option value",
    "newtype struct",
    "sequence",
    "map",
    "enum",
    "unit variant",
    "newtype variant",
    "tuple variant",
    "struct variant",
];

/// Rewrites serde's `invalid type: <what>, expected <type>`, `invalid value: ...` and
/// `unknown variant `<v>`, expected ...` with the value left out. Everything between the
/// marker and the last `, expected ` is dropped (a value may itself hold `, expected `; the
/// expected type, written by our own types, never does), so no value survives whatever it
/// holds. Other messages (libyaml's syntax errors, missing fields, depth) quote no value.
pub fn value_free(message: &str, location: Option<(usize, usize)>) -> String {
    for marker in ["invalid type: ", "invalid value: ", "unknown variant "] {
        let Some(at) = message.find(marker) else {
            continue;
        };
        let head = &message[..at + marker.len()];
        let rest = &message[at + marker.len()..];
        let kind = if marker == "unknown variant " {
            "(not shown)".to_owned()
        } else if let Some((_, said)) = VALUED.iter().find(|(prefix, _)| rest.starts_with(prefix)) {
            (*said).to_owned()
        } else if let Some(bare) = BARE.iter().find(|bare| rest.starts_with(**bare)) {
            (*bare).to_owned()
        } else {
            "a value".to_owned()
        };
        return match rest.rfind(", expected ") {
            Some(expected) => format!("{head}{kind}{}", &rest[expected..]),
            None => match location {
                Some((line, column)) => format!("{head}{kind} at line {line} column {column}"),
                None => format!("{head}{kind}"),
            },
        };
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_goes_and_the_path_kind_type_and_place_stay() {
        let cases = [
            (
                r#"users[0].user: invalid type: string "kc-secret-1", expected struct User at line 9 column 11"#,
                "users[0].user: invalid type: a string, expected struct User at line 9 column 11",
            ),
            (
                r#"clusters[0].cluster.insecure-skip-tls-verify: invalid value: string "kc-secret", expected a boolean at line 4 column 30"#,
                "clusters[0].cluster.insecure-skip-tls-verify: invalid value: a string, expected a boolean at line 4 column 30",
            ),
            (
                "users[0].user.token: invalid type: integer `86753098675309`, expected a string at line 2 column 3",
                "users[0].user.token: invalid type: an integer, expected a string at line 2 column 3",
            ),
            (
                "x: invalid type: floating point `1.5`, expected a string",
                "x: invalid type: a floating-point number, expected a string",
            ),
            (
                "x: invalid type: sequence, expected a string at line 1 column 1",
                "x: invalid type: sequence, expected a string at line 1 column 1",
            ),
            // A value that itself holds the words serde uses.
            (
                r#"x: invalid type: string "s3cr3t, expected a string", expected struct User at line 1 column 4"#,
                "x: invalid type: a string, expected struct User at line 1 column 4",
            ),
            (
                "unknown variant `s3cr3t`, expected `A` or `B`",
                "unknown variant (not shown), expected `A` or `B`",
            ),
            (
                "did not find expected key at line 3 column 1",
                "did not find expected key at line 3 column 1",
            ),
        ];
        for (serde, ours) in cases {
            assert_eq!(value_free(serde, None), ours);
        }
        assert_eq!(
            value_free(r#"invalid type: string "s3cr3t""#, Some((2, 5))),
            "invalid type: a string at line 2 column 5"
        );
    }
}
