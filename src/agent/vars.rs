//! The Go agent's variables: every `WOODPECKER_*` it reads (its own flags, the logger's, and the
//! Docker and local backends' that it reads whatever backend it runs), and how urfave/cli v3
//! reads a value, so that a value, an empty one included, means here what it means there:
//!
//! - a string that is set is that string, even empty;
//! - a bool that is set but empty is `false`; otherwise Go's `strconv.ParseBool`;
//! - an int or a duration that is set but empty keeps its default; otherwise Go's
//!   `strconv.ParseInt(s, 0, 64)` or `time.ParseDuration`;
//! - of several variables for one setting, the first one that is set wins.
//!
//! Values are taken as written: only the agent secret and the labels are trimmed, as in Go.

use std::time::Duration;

use super::config::AgentConfigError;
use crate::go;

/// What this agent does with one of the Go agent's variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Read, with the Go agent's meaning.
    Honoured,
    /// Read; [`Settings::differences`](super::config::AgentConfig) says how its meaning differs.
    Differs,
    /// Not read; named at start in one warning line when set, with this reason.
    Ignored(&'static str),
}

const DOCKER: &str = "a Docker backend setting; this agent has only the Kubernetes backend";
const LOCAL: &str = "a local backend setting; this agent has only the Kubernetes backend";

/// Every `WOODPECKER_*` variable the Go agent (3.x, `cmd/agent/core/flags.go`,
/// `shared/logger/logger.go`, `pipeline/backend/{docker,local,kubernetes}/flags.go`) reads, and
/// what this agent does with it. The Kubernetes backend's own are in `backend::options`.
pub const GO_AGENT_VARS: &[(&str, Use)] = &[
    ("WOODPECKER_SERVER", Use::Honoured),
    ("WOODPECKER_AGENT_SECRET", Use::Honoured),
    ("WOODPECKER_AGENT_SECRET_FILE", Use::Honoured),
    ("WOODPECKER_GRPC_SECURE", Use::Honoured),
    ("WOODPECKER_GRPC_SKIP_VERIFY", Use::Differs),
    ("WOODPECKER_GRPC_VERIFY", Use::Differs),
    ("WOODPECKER_RETRY_TIMEOUT", Use::Honoured),
    (
        "WOODPECKER_LOG_ENTRY_STREAM_BUFFER_SIZE",
        Use::Ignored("the log queue is bounded by bytes (steps wait past 4 MiB), not by entries"),
    ),
    ("WOODPECKER_HOSTNAME", Use::Honoured),
    ("WOODPECKER_AGENT_CONFIG_FILE", Use::Honoured),
    ("WOODPECKER_AGENT_LABELS", Use::Honoured),
    ("WOODPECKER_FILTER_LABELS", Use::Honoured),
    ("WOODPECKER_MAX_WORKFLOWS", Use::Honoured),
    ("WOODPECKER_MAX_PROCS", Use::Honoured),
    ("WOODPECKER_AGENT_SINGLE_WORKFLOW", Use::Honoured),
    ("WOODPECKER_HEALTHCHECK", Use::Honoured),
    ("WOODPECKER_HEALTHCHECK_ADDR", Use::Honoured),
    ("WOODPECKER_KEEPALIVE_TIME", Use::Differs),
    ("WOODPECKER_KEEPALIVE_TIMEOUT", Use::Differs),
    ("WOODPECKER_BACKEND", Use::Honoured),
    ("WOODPECKER_CONNECT_RETRY_COUNT", Use::Honoured),
    ("WOODPECKER_CONNECT_RETRY_DELAY", Use::Honoured),
    ("WOODPECKER_LOG_LEVEL", Use::Honoured),
    ("WOODPECKER_LOG_FILE", Use::Honoured),
    ("WOODPECKER_DEBUG_PRETTY", Use::Honoured),
    ("WOODPECKER_DEBUG_NOCOLOR", Use::Honoured),
    ("WOODPECKER_BACKEND_DOCKER_HOST", Use::Ignored(DOCKER)),
    ("WOODPECKER_BACKEND_DOCKER_API_VERSION", Use::Ignored(DOCKER)),
    ("WOODPECKER_BACKEND_DOCKER_CERT_PATH", Use::Ignored(DOCKER)),
    ("WOODPECKER_BACKEND_DOCKER_TLS_VERIFY", Use::Ignored(DOCKER)),
    ("WOODPECKER_BACKEND_DOCKER_ENABLE_IPV6", Use::Ignored(DOCKER)),
    ("WOODPECKER_BACKEND_DOCKER_NETWORK", Use::Ignored(DOCKER)),
    ("WOODPECKER_BACKEND_DOCKER_VOLUMES", Use::Ignored(DOCKER)),
    ("WOODPECKER_BACKEND_DOCKER_APPARMOR_PROFILE", Use::Ignored(DOCKER)),
    ("WOODPECKER_BACKEND_DOCKER_STOP_TIMEOUT", Use::Ignored(DOCKER)),
    ("WOODPECKER_BACKEND_DOCKER_LIMIT_MEM_SWAP", Use::Ignored(DOCKER)),
    ("WOODPECKER_LIMIT_MEM_SWAP", Use::Ignored(DOCKER)),
    ("WOODPECKER_BACKEND_DOCKER_LIMIT_MEM", Use::Ignored(DOCKER)),
    ("WOODPECKER_LIMIT_MEM", Use::Ignored(DOCKER)),
    ("WOODPECKER_BACKEND_DOCKER_LIMIT_SHM_SIZE", Use::Ignored(DOCKER)),
    ("WOODPECKER_LIMIT_SHM_SIZE", Use::Ignored(DOCKER)),
    ("WOODPECKER_BACKEND_DOCKER_LIMIT_CPU_QUOTA", Use::Ignored(DOCKER)),
    ("WOODPECKER_LIMIT_CPU_QUOTA", Use::Ignored(DOCKER)),
    ("WOODPECKER_BACKEND_DOCKER_LIMIT_CPU_SHARES", Use::Ignored(DOCKER)),
    ("WOODPECKER_LIMIT_CPU_SHARES", Use::Ignored(DOCKER)),
    ("WOODPECKER_BACKEND_DOCKER_LIMIT_CPU_SET", Use::Ignored(DOCKER)),
    ("WOODPECKER_LIMIT_CPU_SET", Use::Ignored(DOCKER)),
    ("WOODPECKER_BACKEND_LOCAL_TEMP_DIR", Use::Ignored(LOCAL)),
    ("WOODPECKER_BACKEND_LOCAL_ISOLATED_HOME", Use::Ignored(LOCAL)),
];

/// The ignored variables that are set (to anything but an empty value, which means the default
/// to Go as well), each with its reason; `None` when there are none.
pub fn ignored_line(env: &impl Fn(&str) -> Option<String>) -> Option<String> {
    let set: Vec<String> = GO_AGENT_VARS
        .iter()
        .filter_map(|(var, use_)| match use_ {
            Use::Ignored(why) => env(var).filter(|v| !v.is_empty()).map(|_| format!("{var} ({why})")),
            _ => None,
        })
        .collect();
    (!set.is_empty()).then(|| format!("ignoring {}", set.join(", ")))
}

/// Reads variables with urfave/cli's rules (see the module doc).
pub struct Vars<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Vars<'_> {
    /// The raw value, empty included.
    pub fn string(&self, var: &str) -> Option<String> {
        (self.env)(var)
    }

    /// The first of `vars` that is set, and its name.
    pub fn first(&self, vars: &[&'static str]) -> Option<(&'static str, String)> {
        vars.iter().find_map(|v| self.string(v).map(|s| (*v, s)))
    }

    /// A bool: empty is `false`, as urfave/cli sets it.
    pub fn bool(&self, var: &'static str) -> Result<Option<bool>, AgentConfigError> {
        match self.string(var) {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(Some(false)),
            Some(v) => go::strconv::parse_bool(&v).map(Some).ok_or(AgentConfigError::Invalid {
                var,
                value: v,
                expected: "true or false (Go's strconv.ParseBool: 1, t, T, TRUE, true, True, 0, f, ...)",
            }),
        }
    }

    pub fn bool_or(&self, var: &'static str, default: bool) -> Result<bool, AgentConfigError> {
        Ok(self.bool(var)?.unwrap_or(default))
    }

    /// An int of the first set variable of `vars`; empty keeps the default.
    pub fn int(&self, vars: &[&'static str], default: i64) -> Result<i64, AgentConfigError> {
        match self.first(vars) {
            None => Ok(default),
            Some((_, v)) if v.is_empty() => Ok(default),
            Some((var, v)) => go::strconv::parse_int(&v).ok_or(AgentConfigError::Invalid {
                var,
                value: v,
                expected: "a whole number",
            }),
        }
    }

    /// A duration in Go's syntax (`90s`, `1m30s`, `0`); empty keeps the default.
    pub fn duration(&self, var: &'static str, default: Duration) -> Result<Duration, AgentConfigError> {
        match self.string(var) {
            None => Ok(default),
            Some(v) if v.is_empty() => Ok(default),
            Some(v) => go::duration::setting(&v, false).map_err(|e| AgentConfigError::Duration {
                var,
                value: v,
                source: e,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::BTreeMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn empty_values_mean_what_they_mean_to_urfave_cli() {
        let env = vars(&[
            ("B", ""),
            ("I", ""),
            ("D", ""),
            ("S", ""),
            ("WOODPECKER_MAX_WORKFLOWS", ""),
            ("WOODPECKER_MAX_PROCS", "4"),
        ]);
        let v = Vars { env: &env };
        assert!(!v.bool_or("B", true).unwrap());
        assert!(v.bool_or("unset", true).unwrap());
        assert_eq!(v.int(&["I"], 5).unwrap(), 5);
        assert_eq!(v.duration("D", Duration::from_secs(2)).unwrap(), Duration::from_secs(2));
        assert_eq!(v.string("S").as_deref(), Some(""));
        // The first variable that is set wins, even when it is empty.
        assert_eq!(
            v.int(&["WOODPECKER_MAX_WORKFLOWS", "WOODPECKER_MAX_PROCS"], 1).unwrap(),
            1
        );
    }

    #[test]
    fn values_parse_by_go_rules() {
        let env = vars(&[("I", "0x10"), ("D", "1m30s"), ("B", "T"), ("X", "yes"), ("S", "90")]);
        let v = Vars { env: &env };
        assert_eq!(v.int(&["I"], 0).unwrap(), 16);
        assert_eq!(v.duration("D", Duration::ZERO).unwrap(), Duration::from_secs(90));
        assert!(v.bool_or("B", false).unwrap());
        assert!(v.bool_or("X", false).unwrap_err().to_string().starts_with("X=\"yes\""));
        let err = v.duration("S", Duration::ZERO).unwrap_err();
        assert_eq!(
            crate::error_chain::one_line(&err),
            "S=\"90\" is not a duration: time: missing unit in duration \"90\""
        );
    }

    #[test]
    fn ignored_variables_are_named_with_their_reason() {
        let env = vars(&[
            ("WOODPECKER_LOG_ENTRY_STREAM_BUFFER_SIZE", "200"),
            ("WOODPECKER_BACKEND_DOCKER_NETWORK", "ci"),
            ("WOODPECKER_BACKEND_LOCAL_TEMP_DIR", ""),
        ]);
        let line = ignored_line(&env).unwrap();
        assert_eq!(
            line,
            "ignoring WOODPECKER_LOG_ENTRY_STREAM_BUFFER_SIZE (the log queue is bounded by bytes \
             (steps wait past 4 MiB), not by entries), WOODPECKER_BACKEND_DOCKER_NETWORK (a Docker backend \
             setting; this agent has only the Kubernetes backend)"
        );
        assert_eq!(ignored_line(&vars(&[])), None);
    }
}
