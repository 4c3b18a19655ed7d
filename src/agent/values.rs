//! The value formats of `woodpecker-agent`'s settings beyond Go's scalars (those are in
//! `crate::go`): label lists and listen/dial addresses. Pure; errors name the variable.

use std::collections::BTreeMap;

use super::config::AgentConfigError;

/// `k=v,k2=v2` as the Go agent reads it (urfave/cli's trimmed string slice, then
/// `stringSliceAddToMap`): items trimmed, empty items dropped, split at the first `=`; an item
/// without a key or without a value is an error.
pub fn parse_labels(var: &'static str, v: &str) -> Result<BTreeMap<String, String>, AgentConfigError> {
    let mut labels = BTreeMap::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('=') {
            Some((k, val)) if !k.is_empty() && !val.is_empty() => {
                labels.insert(k.to_owned(), val.to_owned());
            }
            _ => {
                return Err(AgentConfigError::Invalid {
                    var,
                    value: v.into(),
                    expected: "a comma list of key=value, each with a key and a value",
                });
            }
        }
    }
    Ok(labels)
}

/// `host:port` or `:port` (all interfaces); port 0 (any free port) only for listening.
pub fn check_address(var: &'static str, v: &str, listen: bool) -> Result<(), AgentConfigError> {
    let ok = !v.contains("://")
        && v.rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok_and(|p| p > 0 || listen));
    if ok {
        Ok(())
    } else {
        Err(AgentConfigError::Invalid {
            var,
            value: v.into(),
            expected: "host:port (no scheme; unix sockets are not supported)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_as_the_go_agent_reads_them() {
        let l = parse_labels("V", " a=1 ,, b=x=y,c = d").unwrap();
        assert_eq!(l.get("a").map(String::as_str), Some("1"));
        assert_eq!(l.get("b").map(String::as_str), Some("x=y"));
        assert_eq!(l.get("c ").map(String::as_str), Some(" d"));
        for bad in ["a", "a=", "=b"] {
            assert!(parse_labels("V", bad).is_err(), "{bad}");
        }
    }
}
