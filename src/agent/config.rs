//! The agent's settings, from the same environment variables as `woodpecker-agent`. Pure:
//! [`Settings::from_env`] takes a lookup closure, so tests never touch the process
//! environment; reading the secret file and the agent-id file are separate small I/O steps.
//!
//! Knows variable names, defaults and formats; nothing about gRPC or the cluster.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::values::{check_address, parse_bool, parse_duration, parse_labels, parse_level};
use kube::Secret;

/// Settings for one agent process. Public fields: tests shorten the intervals.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `host:port` of the server's gRPC port.
    pub server: String,
    pub secret: SecretSource,
    pub grpc_secure: bool,
    pub grpc_verify: bool,
    pub max_workflows: u32,
    /// Custom labels; override the default filter labels and go to RegisterAgent.
    pub labels: BTreeMap<String, String>,
    pub hostname: String,
    pub config_file: PathBuf,
    pub healthcheck: bool,
    pub healthcheck_addr: String,
    pub log_level: Level,
    pub keepalive_time: Option<Duration>,
    pub keepalive_timeout: Duration,
    /// Total time a retried call may take; `None` retries forever (`0` in the variable).
    pub retry_timeout: Option<Duration>,
    pub connect_retry_count: u32,
    pub connect_retry_delay: Duration,
    /// After SIGTERM, how long running workflows may go on before they are canceled.
    pub drain_timeout: Duration,
    /// After the drain time, how long canceled workflows may keep retrying their reports.
    pub abandon_after: Duration,
    /// `os/arch`, as Go names them.
    pub platform: String,
    pub health_interval: Duration,
    pub extend_interval: Duration,
    pub token_refresh: Duration,
    pub log_flush_interval: Duration,
    /// Pause after a failed Next or Init (5 s in the Go agent).
    pub error_backoff: Duration,
}

/// Where the agent secret comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretSource {
    Inline(Secret),
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Disabled,
}

/// A missing or malformed setting; names the variable.
#[derive(Debug)]
pub enum Error {
    Missing {
        var: &'static str,
        hint: &'static str,
    },
    Invalid {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
    Conflict {
        a: &'static str,
        b: &'static str,
    },
    ReadSecret {
        path: PathBuf,
        source: std::io::Error,
    },
    EmptySecret {
        path: PathBuf,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Missing { var, hint } => write!(f, "{var} is not set ({hint})"),
            Error::Invalid { var, value, expected } => write!(f, "{var}={value:?} is not valid: expected {expected}"),
            Error::Conflict { a, b } => write!(f, "{a} and {b} are both set; set only one"),
            Error::ReadSecret { path, .. } => write!(f, "read the agent secret from {}", path.display()),
            Error::EmptySecret { path } => write!(f, "the agent secret file {} is empty", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::ReadSecret { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Settings {
    /// Reads every `WOODPECKER_*` setting through `env`. `default_hostname` is the OS hostname.
    pub fn from_env(env: impl Fn(&str) -> Option<String>, default_hostname: &str) -> Result<Settings, Error> {
        // Empty counts as unset, as urfave/cli treats it.
        let get = |var: &str| env(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let secret = match (get("WOODPECKER_AGENT_SECRET"), get("WOODPECKER_AGENT_SECRET_FILE")) {
            (Some(_), Some(_)) => {
                return Err(Error::Conflict {
                    a: "WOODPECKER_AGENT_SECRET",
                    b: "WOODPECKER_AGENT_SECRET_FILE",
                });
            }
            (Some(s), None) => SecretSource::Inline(Secret::new(s)),
            (None, Some(p)) => SecretSource::File(PathBuf::from(p)),
            (None, None) => {
                return Err(Error::Missing {
                    var: "WOODPECKER_AGENT_SECRET",
                    hint: "set it or WOODPECKER_AGENT_SECRET_FILE to the server's agent secret or an agent token",
                });
            }
        };
        let server = get("WOODPECKER_SERVER").unwrap_or_else(|| "localhost:9000".into());
        check_address("WOODPECKER_SERVER", &server, false)?;
        let grpc_verify = match (get("WOODPECKER_GRPC_VERIFY"), get("WOODPECKER_GRPC_SKIP_VERIFY")) {
            (Some(_), Some(_)) => {
                return Err(Error::Conflict {
                    a: "WOODPECKER_GRPC_VERIFY",
                    b: "WOODPECKER_GRPC_SKIP_VERIFY",
                });
            }
            (Some(v), None) => parse_bool("WOODPECKER_GRPC_VERIFY", &v)?,
            (None, Some(v)) => !parse_bool("WOODPECKER_GRPC_SKIP_VERIFY", &v)?,
            (None, None) => true,
        };
        let max_workflows = match get("WOODPECKER_MAX_WORKFLOWS").or_else(|| get("WOODPECKER_MAX_PROCS")) {
            None => 1,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or(Error::Invalid {
                    var: "WOODPECKER_MAX_WORKFLOWS",
                    value: v,
                    expected: "a whole number from 1 to 1000",
                })?,
        };
        let labels = match get("WOODPECKER_AGENT_LABELS").or_else(|| get("WOODPECKER_FILTER_LABELS")) {
            None => BTreeMap::new(),
            Some(v) => parse_labels(&v)?,
        };
        let backend = get("WOODPECKER_BACKEND").unwrap_or_else(|| "auto-detect".into());
        if backend != "auto-detect" && backend != "kubernetes" {
            return Err(Error::Invalid {
                var: "WOODPECKER_BACKEND",
                value: backend,
                expected: "`kubernetes` or `auto-detect` (this agent has only the Kubernetes backend)",
            });
        }
        let healthcheck_addr = get("WOODPECKER_HEALTHCHECK_ADDR").unwrap_or_else(|| ":3000".into());
        check_address("WOODPECKER_HEALTHCHECK_ADDR", &healthcheck_addr, true)?;
        let duration = |var: &'static str, default: Option<Duration>| match get(var) {
            None => Ok(default),
            Some(v) => parse_duration(&v).map(Some).ok_or(Error::Invalid {
                var,
                value: v,
                expected: "a duration such as 30s, 5m or 1h30m",
            }),
        };
        let retry_timeout =
            duration("WOODPECKER_RETRY_TIMEOUT", Some(Duration::from_secs(120)))?.filter(|d| !d.is_zero());
        Ok(Settings {
            server,
            secret,
            grpc_secure: opt_bool(&get, "WOODPECKER_GRPC_SECURE", false)?,
            grpc_verify,
            max_workflows,
            labels,
            hostname: get("WOODPECKER_HOSTNAME").unwrap_or_else(|| default_hostname.to_owned()),
            config_file: get("WOODPECKER_AGENT_CONFIG_FILE")
                .unwrap_or_else(|| "/etc/woodpecker/agent.conf".into())
                .into(),
            healthcheck: opt_bool(&get, "WOODPECKER_HEALTHCHECK", true)?,
            healthcheck_addr,
            log_level: match get("WOODPECKER_LOG_LEVEL") {
                None => Level::Info,
                Some(v) => parse_level(&v).ok_or(Error::Invalid {
                    var: "WOODPECKER_LOG_LEVEL",
                    value: v,
                    expected: "trace, debug, info, warn, error, fatal, panic or disabled",
                })?,
            },
            keepalive_time: duration("WOODPECKER_KEEPALIVE_TIME", None)?.filter(|d| !d.is_zero()),
            keepalive_timeout: duration("WOODPECKER_KEEPALIVE_TIMEOUT", Some(Duration::from_secs(20)))?
                .unwrap_or(Duration::from_secs(20)),
            retry_timeout,
            connect_retry_count: match get("WOODPECKER_CONNECT_RETRY_COUNT") {
                None => 5,
                Some(v) => v.parse().map_err(|_| Error::Invalid {
                    var: "WOODPECKER_CONNECT_RETRY_COUNT",
                    value: v,
                    expected: "a whole number",
                })?,
            },
            connect_retry_delay: duration("WOODPECKER_CONNECT_RETRY_DELAY", Some(Duration::from_secs(2)))?
                .unwrap_or(Duration::from_secs(2)),
            drain_timeout: duration("WOODPECKER_DRAIN_TIMEOUT", Some(Duration::from_secs(300)))?.unwrap_or_default(),
            abandon_after: Duration::from_secs(30),
            platform: platform(),
            health_interval: Duration::from_secs(10),
            extend_interval: Duration::from_secs(20),
            token_refresh: Duration::from_secs(30 * 60),
            log_flush_interval: Duration::from_secs(1),
            error_backoff: Duration::from_secs(5),
        })
    }
}

impl SecretSource {
    /// The secret, read and whitespace-trimmed from its file if it has one.
    pub fn load(&self) -> Result<Secret, Error> {
        match self {
            SecretSource::Inline(s) => Ok(s.clone()),
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::ReadSecret {
                    path: path.clone(),
                    source,
                })?;
                let text = text.trim();
                if text.is_empty() {
                    return Err(Error::EmptySecret { path: path.clone() });
                }
                Ok(Secret::new(text))
            }
        }
    }
}

/// The agent id persisted across restarts: `{"agent_id": N}`, -1 when missing or unreadable.
pub fn read_agent_id(path: &Path) -> i64 {
    std::fs::read(path)
        .ok()
        .and_then(|b| crate::go::json::from_slice::<AgentConfigFile>(&b).ok())
        .map(|f| f.agent_id)
        .unwrap_or(-1)
}

/// The Go agent's `AgentConfig` (`{"agent_id": N}`), read by Go's rules.
#[derive(serde::Deserialize)]
struct AgentConfigFile {
    #[serde(default = "no_agent_id")]
    agent_id: i64,
}

fn no_agent_id() -> i64 {
    -1
}

/// Writes the agent id; `Ok` makes the agent "stateful" (it will not unregister on exit).
pub fn write_agent_id(path: &Path, id: i64) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, format!("{{\"agent_id\":{id}}}\n"))
}

/// Go's os/arch for this build (`linux/amd64`).
pub fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

fn opt_bool(get: &impl Fn(&str) -> Option<String>, var: &'static str, default: bool) -> Result<bool, Error> {
    get(var).map_or(Ok(default), |v| parse_bool(var, &v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Settings, Error> {
        let map: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_env(|k| map.get(k).cloned(), "node-1")
    }

    #[test]
    fn defaults_match_the_go_agent() {
        let s = parse(&[("WOODPECKER_AGENT_SECRET", "s3cret")]).unwrap();
        assert_eq!(s.server, "localhost:9000");
        assert_eq!(s.secret, SecretSource::Inline(Secret::new("s3cret")));
        assert!(!s.grpc_secure && s.grpc_verify && s.healthcheck);
        assert_eq!((s.max_workflows, s.hostname.as_str()), (1, "node-1"));
        assert_eq!(s.healthcheck_addr, ":3000");
        assert_eq!(s.config_file, PathBuf::from("/etc/woodpecker/agent.conf"));
        assert_eq!(s.keepalive_time, None);
        assert_eq!(s.retry_timeout, Some(Duration::from_secs(120)));
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn reads_every_variable() {
        let s = parse(&[
            ("WOODPECKER_SERVER", "ci.example.com:443"),
            ("WOODPECKER_AGENT_SECRET_FILE", "/run/secret"),
            ("WOODPECKER_GRPC_SECURE", "true"),
            ("WOODPECKER_GRPC_VERIFY", "false"),
            ("WOODPECKER_MAX_WORKFLOWS", "4"),
            ("WOODPECKER_AGENT_LABELS", "gpu=true, zone=eu"),
            ("WOODPECKER_HOSTNAME", "runner"),
            ("WOODPECKER_HEALTHCHECK", "false"),
            ("WOODPECKER_HEALTHCHECK_ADDR", "127.0.0.1:3001"),
            ("WOODPECKER_LOG_LEVEL", "debug"),
            ("WOODPECKER_KEEPALIVE_TIME", "6m"),
            ("WOODPECKER_KEEPALIVE_TIMEOUT", "30s"),
            ("WOODPECKER_RETRY_TIMEOUT", "0"),
        ])
        .unwrap();
        assert_eq!(s.server, "ci.example.com:443");
        assert_eq!(s.secret, SecretSource::File("/run/secret".into()));
        assert!(s.grpc_secure && !s.grpc_verify && !s.healthcheck);
        assert_eq!(s.max_workflows, 4);
        assert_eq!(s.labels.get("zone").map(String::as_str), Some("eu"));
        assert_eq!(s.labels.get("gpu").map(String::as_str), Some("true"));
        assert_eq!((s.hostname.as_str(), s.log_level), ("runner", Level::Debug));
        assert_eq!(s.keepalive_time, Some(Duration::from_secs(360)));
        assert_eq!(s.keepalive_timeout, Duration::from_secs(30));
        assert_eq!(s.retry_timeout, None);
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "WOODPECKER_AGENT_SECRET is not set"),
            (
                &[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_AGENT_SECRET_FILE", "/f")],
                "both set",
            ),
            (
                &[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_MAX_WORKFLOWS", "0")],
                "WOODPECKER_MAX_WORKFLOWS=\"0\"",
            ),
            (
                &[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_AGENT_LABELS", "a=1,b")],
                "WOODPECKER_AGENT_LABELS",
            ),
            (
                &[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_GRPC_SECURE", "yes")],
                "WOODPECKER_GRPC_SECURE",
            ),
            (
                &[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_SERVER", "http://h:9000")],
                "WOODPECKER_SERVER",
            ),
            (
                &[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_KEEPALIVE_TIME", "5 min")],
                "WOODPECKER_KEEPALIVE_TIME",
            ),
            (
                &[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_LOG_LEVEL", "loud")],
                "WOODPECKER_LOG_LEVEL",
            ),
            (
                &[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_BACKEND", "docker")],
                "WOODPECKER_BACKEND",
            ),
        ];
        for (vars, want) in cases {
            let err = parse(vars).unwrap_err().to_string();
            assert!(err.contains(want), "{vars:?}: {err}");
        }
    }

    #[test]
    fn agent_id_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("wp-agent-id-{}", std::process::id()));
        let path = dir.join("agent.conf");
        assert_eq!(read_agent_id(&path), -1);
        write_agent_id(&path, 42).unwrap();
        assert_eq!(read_agent_id(&path), 42);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn secret_file_is_trimmed_and_never_empty() {
        let path = std::env::temp_dir().join(format!("wp-agent-secret-{}", std::process::id()));
        std::fs::write(&path, "  tok3n\n").unwrap();
        assert_eq!(SecretSource::File(path.clone()).load().unwrap().expose(), "tok3n");
        std::fs::write(&path, "\n").unwrap();
        assert!(
            SecretSource::File(path.clone())
                .load()
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        std::fs::remove_file(path).unwrap();
    }
}
