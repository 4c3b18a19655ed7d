//! What the lifecycle needs beyond Woodpecker's options: the agent's identity, the start
//! limits and buffer sizes. Plain data.

use super::classify::Limits;

/// What the lifecycle needs beyond Woodpecker's options.
#[derive(Debug, Clone)]
pub struct LifecycleSettings {
    /// This agent's id: the value of the agent label on every object, the watch's selector and
    /// what the start-up sweep deletes. Must be unique per agent and stable across restarts.
    pub agent: String,
    pub limits: Limits,
    /// The workflow timeout, for the pods' `activeDeadlineSeconds` backstop.
    pub workflow_timeout_secs: Option<i64>,
    /// Log lines buffered per step before the follower waits for the reader. The lines are
    /// slices of the stream's read buffers, so what they hold is the buffers they pin: one
    /// batch (64 lines) keeps that to a buffer or two per stream, and the follower fills the
    /// next batch while the reader takes this one.
    pub log_buffer: usize,
    /// Once a pod is over, how long its log may go without a byte before it is cut.
    pub log_idle: std::time::Duration,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        LifecycleSettings {
            agent: String::new(),
            limits: Limits::default(),
            workflow_timeout_secs: None,
            log_buffer: 64,
            log_idle: std::time::Duration::from_secs(30),
        }
    }
}

/// `WOODPECKER_BACKEND_K8S_START_TIMEOUT`: how long a step's pod may take to start.
pub const START_TIMEOUT_VAR: &str = "WOODPECKER_BACKEND_K8S_START_TIMEOUT";
/// `WOODPECKER_BACKEND_K8S_START_GRACE`: how long retryable start errors (image pulls, a
/// missing secret) are given before the step fails.
pub const START_GRACE_VAR: &str = "WOODPECKER_BACKEND_K8S_START_GRACE";

/// A bad value of one of our variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub var: &'static str,
    pub value: String,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}={:?}: expected seconds or a Go duration such as 300, 90s, 1m30s or 1h",
            self.var, self.value
        )
    }
}

impl std::error::Error for SettingsError {}

impl LifecycleSettings {
    /// The settings for agent `agent`, the limits read through `lookup` (the process env, or a
    /// map in tests); unset variables keep the defaults.
    pub fn from_lookup(
        agent: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<LifecycleSettings, SettingsError> {
        // The one options table parses them, as it does for `--backend-k8s-start-timeout`.
        let (start_timeout, grace) = crate::backend::Options::start_limits(&lookup).map_err(|e| {
            let var = if e.var == START_GRACE_VAR {
                START_GRACE_VAR
            } else {
                START_TIMEOUT_VAR
            };
            SettingsError {
                var,
                value: lookup(var).unwrap_or_default(),
            }
        })?;
        Ok(LifecycleSettings {
            agent: agent.to_string(),
            limits: Limits { start_timeout, grace },
            ..LifecycleSettings::default()
        })
    }

    /// The settings for agent `agent` with the limits of `opts` (flags included).
    pub fn from_options(agent: &str, opts: &crate::backend::Options) -> LifecycleSettings {
        LifecycleSettings {
            agent: agent.to_string(),
            limits: Limits {
                start_timeout: opts.start_timeout,
                grace: opts.start_grace,
            },
            ..LifecycleSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn limits_from_the_environment() {
        let env = |k: &str| match k {
            START_TIMEOUT_VAR => Some("10m".to_string()),
            START_GRACE_VAR => Some("45".to_string()),
            _ => None,
        };
        let s = LifecycleSettings::from_lookup("a1", env).unwrap();
        assert_eq!(s.agent, "a1");
        assert_eq!(s.limits.start_timeout, Duration::from_secs(600));
        assert_eq!(s.limits.grace, Duration::from_secs(45));
        let d = LifecycleSettings::from_lookup("a1", |_| None).unwrap();
        assert_eq!(d.limits, Limits::default());
    }

    #[test]
    fn a_bad_duration_names_the_variable() {
        let err =
            LifecycleSettings::from_lookup("a", |k| (k == START_GRACE_VAR).then(|| "soon".to_string())).unwrap_err();
        assert_eq!(err.var, START_GRACE_VAR);
        assert!(
            err.to_string()
                .starts_with("WOODPECKER_BACKEND_K8S_START_GRACE=\"soon\""),
            "{err}"
        );
        let grace = |v: &str| LifecycleSettings::from_lookup("a", |k| (k == START_GRACE_VAR).then(|| v.to_string()));
        assert_eq!(grace("2h").unwrap().limits.grace, Duration::from_secs(7200));
        assert_eq!(grace("1m30s").unwrap().limits.grace, Duration::from_secs(90));
        assert!(grace("1d").is_err() && grace("m").is_err() && grace("-5s").is_err());
    }
}
