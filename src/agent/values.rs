//! The value formats of `woodpecker-agent`'s settings, as Go parses them: booleans
//! (`strconv.ParseBool`), durations (`time.ParseDuration`), label lists, log levels and
//! listen/dial addresses. Pure; errors name the variable.

use std::collections::BTreeMap;
use std::time::Duration;

use super::config::{Error, Level};

/// Go's strconv.ParseBool.
pub fn parse_bool(var: &'static str, v: &str) -> Result<bool, Error> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(Error::Invalid {
            var,
            value: v.into(),
            expected: "true or false",
        }),
    }
}

pub fn parse_level(v: &str) -> Option<Level> {
    Some(match v.to_ascii_lowercase().as_str() {
        "trace" => Level::Trace,
        "debug" => Level::Debug,
        "info" => Level::Info,
        "warn" | "warning" => Level::Warn,
        "error" | "fatal" | "panic" => Level::Error,
        "disabled" | "off" => Level::Disabled,
        _ => return None,
    })
}

/// `k=v,k2=v2`; a key without `=value` is an error, as in the Go agent.
pub fn parse_labels(v: &str) -> Result<BTreeMap<String, String>, Error> {
    let mut labels = BTreeMap::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('=') {
            Some((k, val)) if !k.trim().is_empty() => {
                labels.insert(k.trim().to_owned(), val.trim().to_owned());
            }
            _ => {
                return Err(Error::Invalid {
                    var: "WOODPECKER_AGENT_LABELS",
                    value: v.into(),
                    expected: "a comma list of key=value",
                });
            }
        }
    }
    Ok(labels)
}

/// `host:port` or `:port` (all interfaces); port 0 (any free port) only for listening.
pub fn check_address(var: &'static str, v: &str, listen: bool) -> Result<(), Error> {
    let ok = !v.contains("://")
        && v.rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok_and(|p| p > 0 || listen));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            var,
            value: v.into(),
            expected: "host:port (no scheme; unix sockets are not supported)",
        })
    }
}

/// Go's time.ParseDuration for the units people use: `300ms`, `20s`, `5m`, `1h30m`, `0`.
pub fn parse_duration(v: &str) -> Option<Duration> {
    if v == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = v;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += Duration::from_secs_f64(number * scale);
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("5d"), None);
    }
}
