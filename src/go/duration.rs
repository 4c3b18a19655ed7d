//! Go's `time.ParseDuration`, the one duration parser of every duration setting (the agent's
//! `WOODPECKER_*` and the backend's `WOODPECKER_BACKEND_K8S_*`): `300ms`, `1.5h`, `1h30m`,
//! `-2s`, `.5s`, `0`; units `ns`, `us` (`µs`, `μs`), `ms`, `s`, `m`, `h`; a number without a
//! unit is an error (except `0`), as in Go. [`setting`] is the form a setting takes: not
//! negative, and, for the settings that Woodpecker reads as whole seconds, a bare number of
//! seconds too. Errors read like Go's (`time: unknown unit "d" in duration "5d"`).

use std::fmt;
use std::time::Duration;

/// Nanoseconds in each unit Go knows.
const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000), // U+00B5, the micro sign
    ("μs", 1_000), // U+03BC, the Greek mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

const LIMIT: u64 = 1 << 63;

/// A text `time.ParseDuration` refuses, with Go's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    Invalid(String),
    MissingUnit(String),
    UnknownUnit {
        unit: String,
        text: String,
    },
    /// Parsed, but below zero where a setting must not be.
    Negative(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Invalid(s) => write!(f, "time: invalid duration {}", quote(s)),
            DurationError::MissingUnit(s) => write!(f, "time: missing unit in duration {}", quote(s)),
            DurationError::UnknownUnit { unit, text } => {
                write!(f, "time: unknown unit {} in duration {}", quote(unit), quote(text))
            }
            DurationError::Negative(s) => write!(f, "{} is negative", quote(s)),
        }
    }
}

impl std::error::Error for DurationError {}

/// Go's `time.ParseDuration`: signed nanoseconds.
pub fn parse(text: &str) -> Result<i64, DurationError> {
    let invalid = || DurationError::Invalid(text.to_owned());
    let mut s = text.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let before = s.len();
        let (whole, rest) = leading_int(s).ok_or_else(invalid)?;
        s = rest;
        let pre = before != s.len();
        let (mut frac, mut scale, mut post) = (0u64, 1f64, false);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            (frac, scale, s) = leading_fraction(s);
            post = before != s.len();
        }
        if !pre && !post {
            return Err(invalid());
        }
        let end = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if end == 0 {
            return Err(DurationError::MissingUnit(text.to_owned()));
        }
        let unit_text = &s[..end];
        s = &s[end..];
        let Some(&(_, unit)) = UNITS.iter().find(|(name, _)| name.as_bytes() == unit_text) else {
            return Err(DurationError::UnknownUnit {
                unit: String::from_utf8_lossy(unit_text).into_owned(),
                text: text.to_owned(),
            });
        };
        if whole > LIMIT / unit {
            return Err(invalid());
        }
        let mut v = whole * unit;
        if frac > 0 {
            // As Go: float64 keeps a fraction of an hour exact to the nanosecond.
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total += v;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((total as i64).wrapping_neg());
    }
    if total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(total as i64)
}

/// A duration setting: Go's grammar, not negative. With `bare_seconds`, a plain whole number
/// is seconds, as Woodpecker reads its int-seconds options (`STOP_TIMEOUT=20`).
pub fn setting(text: &str, bare_seconds: bool) -> Result<Duration, DurationError> {
    if bare_seconds && !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| DurationError::Invalid(text.to_owned()));
    }
    let nanos = parse(text)?;
    if nanos < 0 {
        return Err(DurationError::Negative(text.to_owned()));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// `[0-9]*` as an integer; `None` on overflow, as Go's `leadingInt`.
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if x > LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(s[i] - b'0');
        if x > LIMIT {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// `[0-9]*` after the point: the digits, their scale, the rest; precision stops at overflow.
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let (mut x, mut scale, mut overflow) = (0u64, 1f64, false);
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if !overflow {
            if x > (LIMIT - 1) / 10 {
                overflow = true;
            } else {
                let y = x * 10 + u64::from(s[i] - b'0');
                if y > LIMIT {
                    overflow = true;
                } else {
                    x = y;
                    scale *= 10.0;
                }
            }
        }
        i += 1;
    }
    (x, scale, &s[i..])
}

/// The `time` package's own `quote`: control and non-ASCII characters as `\x` bytes.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='\u{7f}' => out.push(c),
            c => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn parses_what_go_parses() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600_000_000),
            ("5.s", 5 * S),
            (".5s", S / 2),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4_000_000),
            ("100.00100s", 100 * S + 1_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12µs", 12_000),
            ("12μs", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14 * S),
            ("15m", 15 * 60 * S),
            ("16h", 16 * 3600 * S),
            ("3h30m", (3 * 3600 + 30 * 60) * S),
            ("1m30s", 90 * S),
            ("10.5s4m", 4 * 60 * S + 10 * S + S / 2),
            ("-2m3.4s", -(2 * 60 * S + 3 * S + 400_000_000)),
            ("1h2m3s4ms5us6ns", 3600 * S + 2 * 60 * S + 3 * S + 4_000_000 + 5_000 + 6),
            ("39h9m14.425s", (39 * 3600 + 9 * 60 + 14) * S + 425_000_000),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * 60 * S),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("0.100000000000000000000h", 6 * 60 * S),
            ("0.830103483285477580700h", 49 * 60 * S + 48 * S + 372_539_827),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses_with_its_words() {
        let cases: &[(&str, &str)] = &[
            ("", r#"time: invalid duration """#),
            ("3", r#"time: missing unit in duration "3""#),
            ("-", r#"time: invalid duration "-""#),
            ("s", r#"time: invalid duration "s""#),
            (".", r#"time: invalid duration ".""#),
            ("-.", r#"time: invalid duration "-.""#),
            (".s", r#"time: invalid duration ".s""#),
            ("+.s", r#"time: invalid duration "+.s""#),
            ("1d", r#"time: unknown unit "d" in duration "1d""#),
            ("1..5s", r#"time: missing unit in duration "1..5s""#),
            ("5 min", r#"time: unknown unit " min" in duration "5 min""#),
            ("\u{663}s", r#"time: invalid duration "\xd9\xa3s""#),
            ("5µx", r#"time: unknown unit "\xc2\xb5x" in duration "5\xc2\xb5x""#),
            (
                "9223372036854775808ns",
                r#"time: invalid duration "9223372036854775808ns""#,
            ),
            (
                "9223372036854775.808us",
                r#"time: invalid duration "9223372036854775.808us""#,
            ),
            (
                "-9223372036854775809ns",
                r#"time: invalid duration "-9223372036854775809ns""#,
            ),
            ("3000000h", r#"time: invalid duration "3000000h""#),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).unwrap_err().to_string(), *want, "{text:?}");
        }
    }

    #[test]
    fn settings_are_not_negative_and_may_be_bare_seconds() {
        assert_eq!(setting("1m30s", false), Ok(Duration::from_secs(90)));
        assert_eq!(setting("1m30s", true), Ok(Duration::from_secs(90)));
        assert_eq!(setting("90", true), Ok(Duration::from_secs(90)));
        assert_eq!(setting("0", false), Ok(Duration::ZERO));
        assert_eq!(setting("300ms", true), Ok(Duration::from_millis(300)));
        assert_eq!(
            setting("90", false).unwrap_err().to_string(),
            r#"time: missing unit in duration "90""#
        );
        assert_eq!(setting("-1s", false).unwrap_err().to_string(), r#""-1s" is negative"#);
        assert!(setting("-1", true).is_err());
    }
}
