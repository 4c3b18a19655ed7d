//! Go's `strconv` rules for settings and leniently decoded options: `ParseBool`, and
//! `ParseInt(s, 0, 64)` (what urfave/cli's int flags and mapstructure's weak decoding call:
//! base prefixes `0x`, `0o`, `0b`, a leading `0` for octal, `_` between digits).

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`; `None` for a syntax or range error.
pub fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_uint(body)?;
    if neg {
        (magnitude <= 1 << 63).then(|| (magnitude as i64).wrapping_neg())
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`.
fn parse_uint(s: &str) -> Option<u64> {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    let lower = |b: u8| b | 0x20;
    let (base, digits): (u64, &[u8]) = match bytes {
        [b'0', p, _, ..] if lower(*p) == b'b' => (2, &bytes[2..]),
        [b'0', p, _, ..] if lower(*p) == b'o' => (8, &bytes[2..]),
        [b'0', p, _, ..] if lower(*p) == b'x' => (16, &bytes[2..]),
        [b'0', ..] => (8, &bytes[1..]),
        _ => (10, bytes),
    };
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in digits {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => c - b'0',
            _ if lower(c).is_ascii_lowercase() => lower(c) - b'a' + 10,
            _ => return None,
        };
        if u64::from(d) >= base {
            return None;
        }
        n = n.checked_mul(base)?.checked_add(u64::from(d))?;
    }
    if underscores && !underscore_ok(s) {
        return None;
    }
    Some(n)
}

/// Underscores only between digits, or between a base prefix and a digit (Go's `underscoreOK`).
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let lower = |c: u8| c | 0x20;
    // The last class seen: '^' start, '0' a digit or base prefix, '_' an underscore, '!' other.
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(lower(b[1]), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = lower(b[1]) == b'x';
    }
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&lower(c))) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else if saw == b'_' {
            return false;
        } else {
            saw = b'!';
        }
    }
    saw != b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_as_go_spells_them() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "yes", "on", "tRuE", " true", "2"] {
            assert_eq!(parse_bool(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ints_with_go_base_prefixes() {
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("42", 42),
            ("-42", -42),
            ("+42", 42),
            ("010", 8),
            ("0o17", 15),
            ("0O17", 15),
            ("0x1F", 31),
            ("0b101", 5),
            ("1_000", 1000),
            ("0x_1f", 31),
            ("0_17", 15),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ];
        for (s, want) in ok {
            assert_eq!(parse_int(s), Some(*want), "{s}");
        }
        for bad in [
            "",
            "-",
            "0x",
            "08",
            "1.5",
            " 1",
            "1_",
            "_1",
            "1__0",
            "9223372036854775808",
            "-9223372036854775809",
            "abc",
        ] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }
}
