//! Log lines as the Go agent writes them with zerolog (`shared/logger` upstream): one JSON object
//! per line, `{"level":"info",<fields>,"time":"2026-01-02T15:04:05Z","message":"..."}`
//! (`caller` before `message` at debug and trace, as Woodpecker adds it there), or, with
//! `WOODPECKER_DEBUG_PRETTY`, zerolog's ConsoleWriter: `3:04PM INF message key=value`, coloured
//! unless told not to. Also zerolog's level names and `ParseLevel`. Pure formatting: the process
//! logger (`crate::log`) decides what is written where.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// A zerolog level: trace -1, debug 0, info 1, warn 2, error 3, fatal 4, panic 5, no level 6,
/// disabled 7; other numbers are levels of their own, as in zerolog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Level(pub i8);

impl Level {
    pub const TRACE: Level = Level(-1);
    pub const DEBUG: Level = Level(0);
    pub const INFO: Level = Level(1);
    pub const WARN: Level = Level(2);
    pub const ERROR: Level = Level(3);
    pub const FATAL: Level = Level(4);
    pub const PANIC: Level = Level(5);
    pub const NO_LEVEL: Level = Level(6);
    pub const DISABLED: Level = Level(7);

    /// The `level` field's value (`LevelFieldMarshalFunc`): `info`, ...; a number otherwise.
    pub fn name(self) -> String {
        match self.0 {
            -1 => "trace".into(),
            0 => "debug".into(),
            1 => "info".into(),
            2 => "warn".into(),
            3 => "error".into(),
            4 => "fatal".into(),
            5 => "panic".into(),
            6 => String::new(),
            7 => "disabled".into(),
            n => n.to_string(),
        }
    }

    /// zerolog's `ParseLevel`: a name in any case (`""` is the empty "no level", which logs
    /// nothing), or a number from -128 to 127. `None` for anything else.
    pub fn parse(s: &str) -> Option<Level> {
        let named = (-1..=7).map(Level).find(|l| l.name().eq_ignore_ascii_case(s));
        named.or_else(|| s.parse::<i8>().ok().map(Level))
    }

    /// ConsoleWriter's short name and colour.
    fn console(self) -> (String, u8) {
        let (name, color) = match self.0 {
            -1 => ("TRC", 34),
            0 => ("DBG", 0),
            1 => ("INF", 32),
            2 => ("WRN", 33),
            3 => ("ERR", 31),
            4 => ("FTL", 31),
            5 => ("PNC", 31),
            _ => {
                let name = self.name();
                let short = if name.is_empty() {
                    "???".to_owned()
                } else {
                    name.chars().take(3).collect::<String>().to_uppercase()
                };
                return (short, 0);
            }
        };
        (name.to_owned(), color)
    }
}

/// A field value.
#[derive(Debug, Clone, Copy)]
pub enum LogValue<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
}

/// One event: what a zerolog call chain carries.
#[derive(Debug, Clone, Copy)]
pub struct LogEvent<'a> {
    pub level: Level,
    pub fields: &'a [(&'a str, LogValue<'a>)],
    pub time: SystemTime,
    /// `file:line`, written at debug and trace.
    pub caller: Option<&'a str>,
    pub message: &'a str,
}

/// The JSON line (with its newline).
pub fn json_line(e: &LogEvent<'_>) -> String {
    let mut out = String::with_capacity(96 + e.message.len());
    out.push('{');
    if e.level != Level::NO_LEVEL {
        out.push_str("\"level\":");
        append_string(&mut out, &e.level.name());
    }
    for (key, value) in e.fields {
        if out.len() > 1 {
            out.push(',');
        }
        append_string(&mut out, key);
        out.push(':');
        match value {
            LogValue::Str(s) => append_string(&mut out, s),
            LogValue::Int(n) => {
                let _ = write!(out, "{n}");
            }
            LogValue::Bool(b) => {
                let _ = write!(out, "{b}");
            }
        }
    }
    if out.len() > 1 {
        out.push(',');
    }
    out.push_str("\"time\":");
    append_string(&mut out, &rfc3339(e.time));
    if let Some(caller) = e.caller {
        out.push_str(",\"caller\":");
        append_string(&mut out, caller);
    }
    if !e.message.is_empty() {
        out.push_str(",\"message\":");
        append_string(&mut out, e.message);
    }
    out.push_str("}\n");
    out
}

/// ConsoleWriter's line (with its newline): time (`3:04PM`), level, caller, message, then the
/// fields sorted by name with `error` first. `color` adds zerolog's ANSI colours.
pub fn console_line(e: &LogEvent<'_>, color: bool) -> String {
    let paint = |s: &str, code: u8| {
        if color && code != 0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let mut parts = vec![paint(&kitchen(e.time), 90)];
    let (name, code) = e.level.console();
    parts.push(paint(&name, code));
    if let Some(caller) = e.caller {
        parts.push(paint(caller, 1) + &paint(" >", 36));
    }
    if !e.message.is_empty() {
        let bold = (1..=5).contains(&e.level.0);
        parts.push(if bold {
            paint(e.message, 1)
        } else {
            e.message.to_owned()
        });
    }
    let mut fields: Vec<&(&str, LogValue<'_>)> = e.fields.iter().collect();
    fields.sort_by_key(|(k, _)| (*k != "error", *k));
    for (key, value) in fields {
        let text = match value {
            LogValue::Str(s) if needs_quote(s) => go_quote(s),
            LogValue::Str(s) => (*s).to_owned(),
            LogValue::Int(n) => n.to_string(),
            LogValue::Bool(b) => b.to_string(),
        };
        parts.push(if *key == "error" {
            paint(&format!("{key}="), 36) + &paint(&paint(&text, 1), 31)
        } else {
            paint(&format!("{key}="), 36) + &text
        });
    }
    let mut line = parts.join(" ");
    line.push('\n');
    line
}

/// zerolog's JSON string: `"` and `\` escaped, `\b \f \n \r \t`, other bytes below 0x20 and
/// 0x7f as `\u00XX`; text as is.
pub fn append_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u00{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether ConsoleWriter quotes a string field.
fn needs_quote(s: &str) -> bool {
    s.bytes()
        .any(|b| !(0x20..=0x7e).contains(&b) || b == b' ' || b == b'\\' || b == b'"')
}

/// Go's `strconv.Quote` for the characters a log field holds.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `time.RFC3339` (zerolog's `TimeFieldFormat`) in UTC: `2026-01-02T15:04:05Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// `time.Kitchen`: `3:04PM`, in UTC.
fn kitchen(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) % 86_400;
    let (h, m) = (secs / 3600, secs % 3600 / 60);
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
    format!("{h12}:{m:02}{}", if h < 12 { "AM" } else { "PM" })
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn levels_parse_as_zerolog() {
        assert_eq!(Level::parse("info"), Some(Level::INFO));
        assert_eq!(Level::parse("WARN"), Some(Level::WARN));
        assert_eq!(Level::parse("Trace"), Some(Level::TRACE));
        assert_eq!(Level::parse("disabled"), Some(Level::DISABLED));
        assert_eq!(Level::parse(""), Some(Level::NO_LEVEL));
        assert_eq!(Level::parse("-5"), Some(Level(-5)));
        assert_eq!(Level::parse("3"), Some(Level::ERROR));
        assert_eq!(Level::parse("warning"), None);
        assert_eq!(Level::parse("off"), None);
        assert_eq!(Level::parse("128"), None);
    }

    #[test]
    fn json_lines_have_zerolog_fields_in_zerolog_order() {
        let e = LogEvent {
            level: Level::WARN,
            fields: &[
                ("error", LogValue::Str("rpc error: \"x\"\n")),
                ("exit_code", LogValue::Int(3)),
            ],
            time: at(1_767_366_245), // 2026-01-02T15:04:05Z
            caller: None,
            message: "cannot connect to ci:9000, retrying in 2s",
        };
        assert_eq!(
            json_line(&e),
            "{\"level\":\"warn\",\"error\":\"rpc error: \\\"x\\\"\\n\",\"exit_code\":3,\
             \"time\":\"2026-01-02T15:04:05Z\",\"message\":\"cannot connect to ci:9000, retrying in 2s\"}\n"
        );
        let plain = LogEvent {
            level: Level::DEBUG,
            fields: &[],
            time: at(0),
            caller: Some("src/agent/daemon.rs:12"),
            message: "tab\there \u{1}\u{7f} é <b>",
        };
        assert_eq!(
            json_line(&plain),
            "{\"level\":\"debug\",\"time\":\"1970-01-01T00:00:00Z\",\"caller\":\"src/agent/daemon.rs:12\",\
             \"message\":\"tab\\there \\u0001\\u007f é <b>\"}\n"
        );
    }

    #[test]
    fn console_lines_as_zerolog_console_writer() {
        let e = LogEvent {
            level: Level::INFO,
            fields: &[("workflow_id", LogValue::Str("12")), ("error", LogValue::Str("a b"))],
            time: at(1_767_366_245),
            caller: None,
            message: "done",
        };
        assert_eq!(
            console_line(&e, false),
            "3:04PM INF done error=\"a b\" workflow_id=12\n"
        );
        assert_eq!(
            console_line(&e, true),
            "\x1b[90m3:04PM\x1b[0m \x1b[32mINF\x1b[0m \x1b[1mdone\x1b[0m \x1b[36merror=\x1b[0m\
             \x1b[31m\x1b[1m\"a b\"\x1b[0m\x1b[0m \x1b[36mworkflow_id=\x1b[0m12\n"
        );
        let midnight = LogEvent {
            level: Level::DEBUG,
            fields: &[],
            time: at(0),
            caller: None,
            message: "x",
        };
        assert_eq!(console_line(&midnight, false), "12:00AM DBG x\n");
    }

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(at(4_107_542_399)), "2100-02-28T23:59:59Z");
        assert_eq!(kitchen(at(12 * 3600 + 5 * 60)), "12:05PM");
    }
}
