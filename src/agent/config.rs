//! The agent's settings, from the same environment variables as `woodpecker-agent`, read by its
//! rules (`super::vars`: what an empty value means, Go's bools, ints and durations). Pure:
//! [`AgentConfig::from_env`] takes a lookup closure, so tests never touch the process environment;
//! reading the secret file and the agent-id file are separate small I/O steps.
//!
//! Knows variable names, defaults and formats; nothing about gRPC or the cluster.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::values::{check_address, parse_labels};
use super::vars::Vars;
use crate::log::{self, Level};
use kube::Secret;

/// AgentConfig for one agent process. Public fields: tests shorten the intervals.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// `host:port` of the server's gRPC port.
    pub server: String,
    pub secret: SecretSource,
    pub grpc_secure: bool,
    /// Verify the server's certificate (ours by default; the Go agent skips it by default).
    pub grpc_verify: bool,
    pub max_workflows: u32,
    /// Exit after the first workflow (`WOODPECKER_AGENT_SINGLE_WORKFLOW`).
    pub single_workflow: bool,
    /// Custom labels; override the default filter labels and go to RegisterAgent.
    pub labels: BTreeMap<String, String>,
    pub hostname: String,
    /// Where the agent id is kept; `None` (set empty) makes the agent stateless.
    pub config_file: Option<PathBuf>,
    pub healthcheck: bool,
    pub healthcheck_addr: String,
    /// The process log's level (the command line sets its format and destination, see
    /// [`log_config`]).
    pub log_level: Level,
    pub keepalive_time: Option<Duration>,
    pub keepalive_timeout: Duration,
    /// Total time a retried call may take; `None` retries forever (`0` in the variable).
    pub retry_timeout: Option<Duration>,
    /// Connection attempts at start (`WOODPECKER_CONNECT_RETRY_COUNT`, at least 1).
    pub connect_attempts: u32,
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
    /// Where a value set here means something else to the Go agent: said at start in one line.
    pub differences: Vec<String>,
    /// Said at start, one line each (e.g. a deprecated variable).
    pub notes: Vec<String>,
}

/// Where the agent secret comes from: the file wins when it can be read, as in the Go agent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SecretSource {
    pub file: Option<PathBuf>,
    pub inline: Option<Secret>,
}

/// A missing or malformed setting; names the variable.
#[derive(Debug)]
pub enum AgentConfigError {
    Missing {
        var: &'static str,
        hint: &'static str,
    },
    Invalid {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
    Duration {
        var: &'static str,
        value: String,
        source: crate::go::duration::DurationError,
    },
    ReadSecret {
        path: PathBuf,
        source: std::io::Error,
    },
    EmptySecret {
        path: PathBuf,
    },
}

impl fmt::Display for AgentConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentConfigError::Missing { var, hint } => write!(f, "{var} is not set ({hint})"),
            AgentConfigError::Invalid { var, value, expected } => {
                write!(f, "{var}={value:?} is not valid: expected {expected}")
            }
            AgentConfigError::Duration { var, value, .. } => write!(f, "{var}={value:?} is not a duration"),
            AgentConfigError::ReadSecret { path, .. } => write!(f, "read the agent secret from {}", path.display()),
            AgentConfigError::EmptySecret { path } => write!(f, "the agent secret file {} is empty", path.display()),
        }
    }
}

impl std::error::Error for AgentConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AgentConfigError::ReadSecret { source, .. } => Some(source),
            AgentConfigError::Duration { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The process log's settings (`shared/logger` upstream): level (`info`; empty logs nothing, as
/// zerolog's "no level"), destination (`stderr`, `stdout` or a file), zerolog JSON unless
/// `WOODPECKER_DEBUG_PRETTY`; both pretty and colour default to whether stdout is a terminal.
pub fn log_config(
    env: &dyn Fn(&str) -> Option<String>,
    stdout_is_terminal: bool,
) -> Result<log::LogConfig, AgentConfigError> {
    let v = Vars { env };
    let level = match v.string("WOODPECKER_LOG_LEVEL") {
        None => Level::INFO,
        Some(s) => Level::parse(&s).ok_or(AgentConfigError::Invalid {
            var: "WOODPECKER_LOG_LEVEL",
            value: s,
            expected: "trace, debug, info, warn, error, fatal, panic, disabled or a zerolog level number",
        })?,
    };
    let sink = match v.string("WOODPECKER_LOG_FILE").as_deref() {
        None | Some("" | "stderr") => log::Sink::Stderr,
        Some("stdout") => log::Sink::Stdout,
        Some(path) => log::Sink::File(path.into()),
    };
    let pretty = v.bool_or("WOODPECKER_DEBUG_PRETTY", stdout_is_terminal)?;
    // A file never gets colours.
    let no_color = v.bool_or("WOODPECKER_DEBUG_NOCOLOR", !stdout_is_terminal)? || matches!(sink, log::Sink::File(_));
    let format = match pretty {
        true => log::LogFormat::Pretty { color: !no_color },
        false => log::LogFormat::Json,
    };
    Ok(log::LogConfig { level, format, sink })
}

impl AgentConfig {
    /// Reads every `WOODPECKER_*` setting through `env`. `default_hostname` is the OS hostname.
    pub fn from_env(
        env: impl Fn(&str) -> Option<String>,
        default_hostname: &str,
    ) -> Result<AgentConfig, AgentConfigError> {
        let v = Vars { env: &env };
        let mut differences = Vec::new();
        let mut notes = Vec::new();
        let secret = secret_source(&v)?;
        let server = v.string("WOODPECKER_SERVER").unwrap_or_else(|| "localhost:9000".into());
        check_address("WOODPECKER_SERVER", &server, false)?;
        let grpc_secure = v.bool_or("WOODPECKER_GRPC_SECURE", false)?;
        let skip = grpc_skip_verify(&v, grpc_secure, &mut notes, &mut differences)?;
        let single_workflow = v.bool_or("WOODPECKER_AGENT_SINGLE_WORKFLOW", false)?;
        let max_workflows = max_workflows(&v, single_workflow, &mut notes)?;
        let labels = match v.first(&["WOODPECKER_AGENT_LABELS", "WOODPECKER_FILTER_LABELS"]) {
            None => BTreeMap::new(),
            Some((var, s)) => parse_labels(var, &s)?,
        };
        let backend = v.string("WOODPECKER_BACKEND").unwrap_or_else(|| "auto-detect".into());
        if backend != "auto-detect" && backend != "kubernetes" {
            return Err(AgentConfigError::Invalid {
                var: "WOODPECKER_BACKEND",
                value: backend,
                expected: "`kubernetes` or `auto-detect` (this agent has only the Kubernetes backend)",
            });
        }
        let healthcheck_addr = healthcheck_addr(&v)?;
        let keepalive_time = v.duration("WOODPECKER_KEEPALIVE_TIME", Duration::ZERO)?;
        let keepalive_timeout = v.duration("WOODPECKER_KEEPALIVE_TIMEOUT", Duration::from_secs(20))?;
        keepalive_difference(&v, &mut differences);
        let connect_attempts = connect_attempts(&v)?;
        // The Go agent validates it too before it ignores it.
        v.int(&["WOODPECKER_LOG_ENTRY_STREAM_BUFFER_SIZE"], 100)?;
        let config_file = match v.string("WOODPECKER_AGENT_CONFIG_FILE") {
            None => Some(PathBuf::from("/etc/woodpecker/agent.conf")),
            Some(p) if p.is_empty() => None,
            Some(p) => Some(PathBuf::from(p)),
        };
        Ok(AgentConfig {
            server,
            secret,
            grpc_secure,
            grpc_verify: !skip,
            max_workflows,
            single_workflow,
            labels,
            hostname: v
                .string("WOODPECKER_HOSTNAME")
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| default_hostname.to_owned()),
            config_file,
            healthcheck: v.bool_or("WOODPECKER_HEALTHCHECK", true)?,
            healthcheck_addr,
            log_level: log_config(&env, false)?.level,
            keepalive_time: Some(keepalive_time).filter(|d| !d.is_zero()),
            keepalive_timeout,
            retry_timeout: Some(v.duration("WOODPECKER_RETRY_TIMEOUT", Duration::from_secs(120))?)
                .filter(|d| !d.is_zero()),
            connect_attempts,
            connect_retry_delay: v.duration("WOODPECKER_CONNECT_RETRY_DELAY", Duration::from_secs(2))?,
            drain_timeout: v.duration("WOODPECKER_DRAIN_TIMEOUT", Duration::from_secs(300))?,
            abandon_after: Duration::from_secs(30),
            platform: platform(),
            health_interval: Duration::from_secs(10),
            extend_interval: Duration::from_secs(20),
            token_refresh: Duration::from_secs(30 * 60),
            log_flush_interval: Duration::from_secs(1),
            error_backoff: Duration::from_secs(5),
            differences,
            notes,
        })
    }

    /// The start-up lines about the settings: notes, differences from the Go agent (one
    /// line), ignored variables (one line). `env` is the same lookup `from_env` read.
    pub fn start_warnings(&self, env: &impl Fn(&str) -> Option<String>) -> Vec<String> {
        let mut lines = self.notes.clone();
        if !self.differences.is_empty() {
            lines.push(format!(
                "settings that mean something else to the Go agent: {}",
                self.differences.join("; ")
            ));
        }
        lines.extend(super::vars::ignored_line(env));
        lines
    }
}

/// `WOODPECKER_AGENT_SECRET_FILE` or `WOODPECKER_AGENT_SECRET` (trimmed); one is required.
fn secret_source(v: &Vars<'_>) -> Result<SecretSource, AgentConfigError> {
    let secret = SecretSource {
        file: v
            .string("WOODPECKER_AGENT_SECRET_FILE")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
        inline: v
            .string("WOODPECKER_AGENT_SECRET")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .map(Secret::new),
    };
    if secret.file.is_none() && secret.inline.is_none() {
        return Err(AgentConfigError::Missing {
            var: "WOODPECKER_AGENT_SECRET",
            hint: "set it or WOODPECKER_AGENT_SECRET_FILE to the server's agent secret or an agent token",
        });
    }
    Ok(secret)
}

/// Whether to skip verifying the server certificate. Both variables are the Go agent's *skip*
/// switch; the deprecated one counts only alone. Unset, we verify where the Go agent does not.
fn grpc_skip_verify(
    v: &Vars<'_>,
    grpc_secure: bool,
    notes: &mut Vec<String>,
    differences: &mut Vec<String>,
) -> Result<bool, AgentConfigError> {
    Ok(
        match (
            v.bool("WOODPECKER_GRPC_SKIP_VERIFY")?,
            v.bool("WOODPECKER_GRPC_VERIFY")?,
        ) {
            (Some(skip), _) => skip,
            (None, Some(skip)) => {
                notes.push(format!(
                    "WOODPECKER_GRPC_VERIFY is deprecated, use WOODPECKER_GRPC_SKIP_VERIFY; as in the Go \
                     agent it is the skip switch, so WOODPECKER_GRPC_VERIFY={skip} {} the server certificate",
                    if skip { "does not verify" } else { "verifies" }
                ));
                skip
            }
            (None, None) => {
                if grpc_secure {
                    differences.push(
                        "the server certificate is verified (unset WOODPECKER_GRPC_SKIP_VERIFY: the Go agent \
                         skips verification; set WOODPECKER_GRPC_SKIP_VERIFY=true for that)"
                            .to_owned(),
                    );
                }
                false
            }
        },
    )
}

/// `WOODPECKER_MAX_WORKFLOWS` (1 to 1000), forced to 1 in single-workflow mode as the Go agent.
fn max_workflows(v: &Vars<'_>, single_workflow: bool, notes: &mut Vec<String>) -> Result<u32, AgentConfigError> {
    let n = v.int(&["WOODPECKER_MAX_WORKFLOWS", "WOODPECKER_MAX_PROCS"], 1)?;
    let n = u32::try_from(n)
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or(AgentConfigError::Invalid {
            var: "WOODPECKER_MAX_WORKFLOWS",
            value: n.to_string(),
            expected: "a whole number from 1 to 1000",
        })?;
    if single_workflow && n > 1 {
        notes.push(format!(
            "max-workflows forced from {n} to 1 due to agent running single workflow mode."
        ));
        return Ok(1);
    }
    Ok(n)
}

/// `WOODPECKER_HEALTHCHECK_ADDR`; empty is Go's http.Server default, port 80.
fn healthcheck_addr(v: &Vars<'_>) -> Result<String, AgentConfigError> {
    let addr = match v.string("WOODPECKER_HEALTHCHECK_ADDR") {
        None => ":3000".into(),
        Some(a) if a.is_empty() => ":80".into(),
        Some(a) => a,
    };
    check_address("WOODPECKER_HEALTHCHECK_ADDR", &addr, true)?;
    Ok(addr)
}

/// The keepalive variables are applied here; the Go agent reads them and never applies them.
fn keepalive_difference(v: &Vars<'_>, differences: &mut Vec<String>) {
    let set: Vec<&str> = ["WOODPECKER_KEEPALIVE_TIME", "WOODPECKER_KEEPALIVE_TIMEOUT"]
        .into_iter()
        .filter(|var| v.string(var).is_some_and(|s| !s.is_empty()))
        .collect();
    if !set.is_empty() {
        differences.push(format!(
            "{} applied (the Go agent reads them under another flag name and never applies them)",
            set.join(" and ")
        ));
    }
}

/// `WOODPECKER_CONNECT_RETRY_COUNT`: at least one attempt.
fn connect_attempts(v: &Vars<'_>) -> Result<u32, AgentConfigError> {
    let n = v.int(&["WOODPECKER_CONNECT_RETRY_COUNT"], 5)?;
    u32::try_from(n)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or(AgentConfigError::Invalid {
            var: "WOODPECKER_CONNECT_RETRY_COUNT",
            value: n.to_string(),
            expected: "at least 1 connection attempt (the Go agent exits without connecting)",
        })
}

impl SecretSource {
    /// The secret, whitespace-trimmed: the file's when it can be read, else the inline one (as
    /// urfave/cli's value source chain in the Go agent; the fallback is logged here).
    pub fn load(&self) -> Result<Secret, AgentConfigError> {
        let Some(path) = &self.file else {
            return self.inline.clone().ok_or(AgentConfigError::Missing {
                var: "WOODPECKER_AGENT_SECRET",
                hint: "set it or WOODPECKER_AGENT_SECRET_FILE",
            });
        };
        match std::fs::read_to_string(path) {
            Ok(text) if text.trim().is_empty() => Err(AgentConfigError::EmptySecret { path: path.clone() }),
            Ok(text) => Ok(Secret::new(text.trim())),
            Err(source) => match &self.inline {
                Some(inline) => {
                    log::warn(format_args!(
                        "cannot read WOODPECKER_AGENT_SECRET_FILE {} ({source}); using WOODPECKER_AGENT_SECRET",
                        path.display()
                    ));
                    Ok(inline.clone())
                }
                None => Err(AgentConfigError::ReadSecret {
                    path: path.clone(),
                    source,
                }),
            },
        }
    }
}

/// The agent id persisted across restarts: `{"agent_id": N}`, -1 when there is no file (or it
/// is missing or unreadable).
pub fn read_agent_id(path: Option<&Path>) -> i64 {
    path.and_then(|p| std::fs::read(p).ok())
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

/// Writes the agent id as the Go agent does (`{"agent_id":N}`); `Ok` makes the agent
/// "stateful" (it will not unregister on exit).
pub fn write_agent_id(path: &Path, id: i64) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, format!("{{\"agent_id\":{id}}}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn parse(vars: &[(&str, &str)]) -> Result<AgentConfig, AgentConfigError> {
        AgentConfig::from_env(env(vars), "node-1")
    }

    #[test]
    fn defaults_match_the_go_agent() {
        let s = parse(&[("WOODPECKER_AGENT_SECRET", "s3cret")]).unwrap();
        assert_eq!(s.server, "localhost:9000");
        assert_eq!(s.secret.inline, Some(Secret::new("s3cret")));
        assert!(!s.grpc_secure && s.grpc_verify && s.healthcheck && !s.single_workflow);
        assert_eq!((s.max_workflows, s.hostname.as_str()), (1, "node-1"));
        assert_eq!(s.healthcheck_addr, ":3000");
        assert_eq!(s.config_file, Some(PathBuf::from("/etc/woodpecker/agent.conf")));
        assert_eq!(s.keepalive_time, None);
        assert_eq!(s.retry_timeout, Some(Duration::from_secs(120)));
        assert_eq!((s.connect_attempts, s.connect_retry_delay), (5, Duration::from_secs(2)));
        assert_eq!(s.log_level, Level::INFO);
        assert!(s.differences.is_empty() && s.notes.is_empty());
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn reads_every_variable() {
        let s = parse(&[
            ("WOODPECKER_SERVER", "ci.example.com:443"),
            ("WOODPECKER_AGENT_SECRET_FILE", "/run/secret"),
            ("WOODPECKER_GRPC_SECURE", "true"),
            ("WOODPECKER_GRPC_SKIP_VERIFY", "true"),
            ("WOODPECKER_MAX_WORKFLOWS", "4"),
            ("WOODPECKER_AGENT_LABELS", "gpu=true, zone=eu"),
            ("WOODPECKER_HOSTNAME", "runner"),
            ("WOODPECKER_HEALTHCHECK", "false"),
            ("WOODPECKER_HEALTHCHECK_ADDR", "127.0.0.1:3001"),
            ("WOODPECKER_LOG_LEVEL", "debug"),
            ("WOODPECKER_KEEPALIVE_TIME", "6m"),
            ("WOODPECKER_KEEPALIVE_TIMEOUT", "30s"),
            ("WOODPECKER_RETRY_TIMEOUT", "0"),
            ("WOODPECKER_CONNECT_RETRY_COUNT", "3"),
            ("WOODPECKER_CONNECT_RETRY_DELAY", "1m30s"),
            ("WOODPECKER_DRAIN_TIMEOUT", "1h2m"),
        ])
        .unwrap();
        assert_eq!(s.server, "ci.example.com:443");
        assert_eq!(s.secret.file, Some("/run/secret".into()));
        assert!(s.grpc_secure && !s.grpc_verify && !s.healthcheck);
        assert_eq!(s.max_workflows, 4);
        assert_eq!(s.labels.get("zone").map(String::as_str), Some("eu"));
        assert_eq!(s.labels.get("gpu").map(String::as_str), Some("true"));
        assert_eq!((s.hostname.as_str(), s.log_level), ("runner", Level::DEBUG));
        assert_eq!(s.keepalive_time, Some(Duration::from_secs(360)));
        assert_eq!(s.keepalive_timeout, Duration::from_secs(30));
        assert_eq!(s.retry_timeout, None);
        assert_eq!(
            (s.connect_attempts, s.connect_retry_delay),
            (3, Duration::from_secs(90))
        );
        assert_eq!(s.drain_timeout, Duration::from_secs(3720));
        // The keepalive settings work here; the Go agent never applies them.
        assert_eq!(s.differences.len(), 1, "{:?}", s.differences);
        assert!(s.differences[0].starts_with("WOODPECKER_KEEPALIVE_TIME and WOODPECKER_KEEPALIVE_TIMEOUT applied"));
    }

    #[test]
    fn every_variable_of_the_go_agent_is_read_or_named_as_ignored() {
        use super::super::vars::{GO_AGENT_VARS, Use, ignored_line};
        let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let lookup = |k: &str| {
            seen.borrow_mut().insert(k.to_owned());
            (k == "WOODPECKER_AGENT_SECRET").then(|| "x".to_owned())
        };
        AgentConfig::from_env(lookup, "h").unwrap();
        log_config(&lookup, false).unwrap();
        for (var, use_) in GO_AGENT_VARS {
            match use_ {
                Use::Ignored(why) => {
                    let line = ignored_line(&|k: &str| (k == *var).then(|| "1".to_owned())).unwrap();
                    assert_eq!(line, format!("ignoring {var} ({why})"));
                }
                Use::Honoured | Use::Differs => assert!(seen.borrow().contains(*var), "{var} is not read"),
            }
        }
    }

    #[test]
    fn tls_switches_read_as_the_go_agent_reads_them() {
        let verify = |vars: &[(&str, &str)]| {
            let mut all = vec![("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_GRPC_SECURE", "true")];
            all.extend_from_slice(vars);
            parse(&all).unwrap()
        };
        // Unset: ours verifies, and says at start that the Go agent would not.
        let s = verify(&[]);
        assert!(s.grpc_verify);
        assert_eq!(s.differences.len(), 1);
        assert!(
            s.differences[0].contains("the Go agent skips verification"),
            "{:?}",
            s.differences
        );
        // Set: the same meaning as in Go, nothing to say.
        for (vars, want) in [
            (&[("WOODPECKER_GRPC_SKIP_VERIFY", "true")][..], false),
            (&[("WOODPECKER_GRPC_SKIP_VERIFY", "false")][..], true),
            (&[("WOODPECKER_GRPC_SKIP_VERIFY", "")][..], true),
            (
                &[
                    ("WOODPECKER_GRPC_SKIP_VERIFY", "false"),
                    ("WOODPECKER_GRPC_VERIFY", "true"),
                ][..],
                true,
            ),
        ] {
            let s = verify(vars);
            assert_eq!(s.grpc_verify, want, "{vars:?}");
            assert!(s.differences.is_empty() && s.notes.is_empty(), "{vars:?}");
        }
        // The deprecated WOODPECKER_GRPC_VERIFY is the same *skip* switch: true skips.
        for (value, want) in [("true", false), ("false", true), ("", true)] {
            let s = verify(&[("WOODPECKER_GRPC_VERIFY", value)]);
            assert_eq!(s.grpc_verify, want, "{value:?}");
            assert!(
                s.notes[0].starts_with("WOODPECKER_GRPC_VERIFY is deprecated"),
                "{:?}",
                s.notes
            );
        }
    }

    #[test]
    fn empty_values_mean_what_they_mean_to_go() {
        let s = parse(&[
            ("WOODPECKER_AGENT_SECRET", "x"),
            ("WOODPECKER_HOSTNAME", ""),
            ("WOODPECKER_AGENT_CONFIG_FILE", ""),
            ("WOODPECKER_HEALTHCHECK", ""),
            ("WOODPECKER_HEALTHCHECK_ADDR", ""),
            ("WOODPECKER_MAX_WORKFLOWS", ""),
            ("WOODPECKER_CONNECT_RETRY_COUNT", ""),
            ("WOODPECKER_RETRY_TIMEOUT", ""),
            ("WOODPECKER_AGENT_LABELS", ""),
            ("WOODPECKER_LOG_LEVEL", ""),
        ])
        .unwrap();
        assert_eq!(s.hostname, "node-1");
        assert_eq!(s.config_file, None, "empty: stateless");
        assert!(!s.healthcheck, "an empty bool is false");
        assert_eq!(s.healthcheck_addr, ":80", "Go's http.Server default");
        assert_eq!((s.max_workflows, s.connect_attempts), (1, 5));
        assert_eq!(s.retry_timeout, Some(Duration::from_secs(120)));
        assert!(s.labels.is_empty());
        assert_eq!(s.log_level, Level::NO_LEVEL, "zerolog's empty level logs nothing");
        let err = parse(&[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_SERVER", "")]).unwrap_err();
        assert!(err.to_string().starts_with("WOODPECKER_SERVER=\"\""), "{err}");
        let err = parse(&[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_BACKEND", "")]).unwrap_err();
        assert!(err.to_string().starts_with("WOODPECKER_BACKEND=\"\""), "{err}");
        assert!(parse(&[("WOODPECKER_AGENT_SECRET", " ")]).is_err());
    }

    #[test]
    fn single_workflow_mode_runs_one_at_a_time() {
        let s = parse(&[
            ("WOODPECKER_AGENT_SECRET", "x"),
            ("WOODPECKER_AGENT_SINGLE_WORKFLOW", "true"),
            ("WOODPECKER_MAX_WORKFLOWS", "3"),
        ])
        .unwrap();
        assert!(s.single_workflow);
        assert_eq!(s.max_workflows, 1);
        assert_eq!(
            s.notes,
            ["max-workflows forced from 3 to 1 due to agent running single workflow mode."]
        );
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "WOODPECKER_AGENT_SECRET is not set"),
            (
                &[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_MAX_WORKFLOWS", "0")],
                "WOODPECKER_MAX_WORKFLOWS=\"0\"",
            ),
            (
                &[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_MAX_PROCS", "many")],
                "WOODPECKER_MAX_PROCS=\"many\"",
            ),
            (
                &[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_AGENT_LABELS", "a=1,b")],
                "WOODPECKER_AGENT_LABELS",
            ),
            (
                &[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_FILTER_LABELS", "a=")],
                "WOODPECKER_FILTER_LABELS",
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
            (
                &[
                    ("WOODPECKER_AGENT_SECRET", "x"),
                    ("WOODPECKER_CONNECT_RETRY_COUNT", "0"),
                ],
                "WOODPECKER_CONNECT_RETRY_COUNT=\"0\"",
            ),
            (
                &[
                    ("WOODPECKER_AGENT_SECRET", "x"),
                    ("WOODPECKER_LOG_ENTRY_STREAM_BUFFER_SIZE", "big"),
                ],
                "WOODPECKER_LOG_ENTRY_STREAM_BUFFER_SIZE",
            ),
            (
                &[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_DRAIN_TIMEOUT", "300")],
                "WOODPECKER_DRAIN_TIMEOUT=\"300\" is not a duration",
            ),
        ];
        for (vars, want) in cases {
            let err = parse(vars).unwrap_err().to_string();
            assert!(err.contains(want), "{vars:?}: {err}");
        }
    }

    #[test]
    fn log_settings_as_the_go_logger_reads_them() {
        let cfg = |vars: &[(&str, &str)], tty: bool| log_config(&env(vars), tty).unwrap();
        // Not a terminal (a pod): JSON on stderr at info.
        let c = cfg(&[], false);
        assert_eq!(
            (c.level, c.format, c.sink),
            (Level::INFO, log::LogFormat::Json, log::Sink::Stderr)
        );
        // A terminal: pretty and coloured by default; both switches turn that off.
        assert_eq!(cfg(&[], true).format, log::LogFormat::Pretty { color: true });
        assert_eq!(
            cfg(&[("WOODPECKER_DEBUG_PRETTY", "false")], true).format,
            log::LogFormat::Json
        );
        assert_eq!(
            cfg(&[("WOODPECKER_DEBUG_PRETTY", "true")], false).format,
            log::LogFormat::Pretty { color: false }
        );
        assert_eq!(
            cfg(
                &[("WOODPECKER_DEBUG_PRETTY", "1"), ("WOODPECKER_DEBUG_NOCOLOR", "")],
                false
            )
            .format,
            log::LogFormat::Pretty { color: true },
            "an empty bool is false"
        );
        let file = cfg(
            &[
                ("WOODPECKER_LOG_FILE", "/var/log/agent.log"),
                ("WOODPECKER_DEBUG_PRETTY", "t"),
            ],
            true,
        );
        assert_eq!(file.sink, log::Sink::File("/var/log/agent.log".into()));
        assert_eq!(
            file.format,
            log::LogFormat::Pretty { color: false },
            "files get no colours"
        );
        assert_eq!(cfg(&[("WOODPECKER_LOG_FILE", "stdout")], false).sink, log::Sink::Stdout);
        assert_eq!(cfg(&[("WOODPECKER_LOG_FILE", "")], false).sink, log::Sink::Stderr);
        assert_eq!(cfg(&[("WOODPECKER_LOG_LEVEL", "TRACE")], false).level, Level::TRACE);
        assert_eq!(cfg(&[("WOODPECKER_LOG_LEVEL", "-3")], false).level, Level(-3));
        assert!(log_config(&env(&[("WOODPECKER_LOG_LEVEL", "warning")]), false).is_err());
    }

    #[test]
    fn agent_id_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("wp-agent-id-{}", std::process::id()));
        let path = dir.join("agent.conf");
        assert_eq!(read_agent_id(Some(&path)), -1);
        assert_eq!(read_agent_id(None), -1);
        write_agent_id(&path, 42).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"agent_id\":42}");
        assert_eq!(read_agent_id(Some(&path)), 42);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn secret_file_wins_is_trimmed_and_never_empty() {
        let path = std::env::temp_dir().join(format!("wp-agent-secret-{}", std::process::id()));
        std::fs::write(&path, "  tok3n\n").unwrap();
        let both = SecretSource {
            file: Some(path.clone()),
            inline: Some(Secret::new("inline")),
        };
        assert_eq!(both.load().unwrap().expose(), "tok3n");
        std::fs::write(&path, "\n").unwrap();
        assert!(both.load().unwrap_err().to_string().contains("empty"));
        std::fs::remove_file(&path).unwrap();
        // An unreadable file falls back to the inline secret, as urfave/cli's value chain does.
        assert_eq!(both.load().unwrap().expose(), "inline");
        let file_only = SecretSource {
            file: Some(path),
            inline: None,
        };
        assert!(
            file_only
                .load()
                .unwrap_err()
                .to_string()
                .starts_with("read the agent secret")
        );
    }
}
