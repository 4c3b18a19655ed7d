//! Masks secret values in log lines before they leave the agent, as Woodpecker does: values
//! are whitespace-trimmed, values of 3 characters or fewer are not masked, and a multi-line
//! secret is masked line by line (each of its lines is a value of its own). Pure.

use bytes::Bytes;

use crate::backend::types::SecretValue;

pub const MASK: &[u8] = b"********";

/// The secret values of one workflow, longest first so that a secret containing another is
/// masked whole.
#[derive(Clone, Default)]
pub struct Masker {
    values: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Masker {{ {} values }}", self.values.len())
    }
}

impl Masker {
    pub fn new(secrets: &[SecretValue]) -> Masker {
        let mut values: Vec<Vec<u8>> = secrets
            .iter()
            .flat_map(|s| s.value.lines())
            .map(str::trim)
            .filter(|v| v.len() > 3)
            .map(|v| v.as_bytes().to_vec())
            .collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        values.dedup();
        Masker { values }
    }

    /// The line with every occurrence of every value replaced by `********`.
    pub fn mask(&self, line: Bytes) -> Bytes {
        if self.values.iter().all(|v| find(&line, v, 0).is_none()) {
            return line;
        }
        let mut out = line.to_vec();
        for value in &self.values {
            let mut from = 0;
            while let Some(at) = find(&out, value, from) {
                out.splice(at..at + value.len(), MASK.iter().copied());
                from = at + MASK.len();
            }
        }
        Bytes::from(out)
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(values: &[&str]) -> Masker {
        let secrets: Vec<SecretValue> = values
            .iter()
            .map(|v| SecretValue {
                name: "s".into(),
                value: v.to_string(),
            })
            .collect();
        Masker::new(&secrets)
    }

    fn mask(m: &Masker, line: &str) -> String {
        String::from_utf8(m.mask(Bytes::copy_from_slice(line.as_bytes())).to_vec()).unwrap()
    }

    #[test]
    fn masks_every_occurrence() {
        let m = masker(&["hunter2", " padded-secret \n"]);
        assert_eq!(mask(&m, "a hunter2 b hunter2hunter2"), "a ******** b ****************");
        assert_eq!(mask(&m, "x=padded-secret"), "x=********");
        assert_eq!(mask(&m, "nothing here"), "nothing here");
    }

    #[test]
    fn short_values_are_left_alone() {
        let m = masker(&["abc", "   "]);
        assert_eq!(mask(&m, "abc abc"), "abc abc");
    }

    #[test]
    fn multi_line_secrets_mask_line_by_line() {
        let m = masker(&["-----BEGIN KEY-----\nMIIEvQIBADANBgkq\n-----END KEY-----"]);
        assert_eq!(mask(&m, "MIIEvQIBADANBgkq"), "********");
        assert_eq!(mask(&m, "-----END KEY-----"), "********");
    }

    #[test]
    fn longer_secret_wins_over_its_prefix() {
        let m = masker(&["pass", "password123"]);
        assert_eq!(mask(&m, "password123 pass"), "******** ********");
    }
}
