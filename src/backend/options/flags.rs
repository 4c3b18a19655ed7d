//! The `--backend-k8s-*` command-line flags: the same options as the variables, by their flag
//! names, winning over the environment.

use std::collections::BTreeMap;

use super::{ENV_PREFIX, FLAG_PREFIX, VARS};

/// `--backend-k8s-*` flags given on the command line, keyed by their env var name; they win
/// over the environment.
#[derive(Debug, Default, Clone)]
pub struct Flags(BTreeMap<String, String>);

impl Flags {
    /// If `long` (without `--`) is a backend flag, takes its value from `parser` (bool flags may
    /// stand alone, meaning true) and returns true.
    pub fn take(&mut self, long: &str, parser: &mut lexopt::Parser) -> Result<bool, lexopt::Error> {
        let Some(name) = long.strip_prefix(FLAG_PREFIX) else {
            return Ok(false);
        };
        let Some(&(suffix, _, is_bool)) = VARS.iter().find(|(_, f, _)| *f == name) else {
            return Ok(false);
        };
        let value = if is_bool {
            parser
                .optional_value()
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_else(|| "true".into())
        } else {
            parser.value()?.to_string_lossy().into_owned()
        };
        self.0.insert(format!("{ENV_PREFIX}{suffix}"), value);
        Ok(true)
    }

    /// Sets a flag by its name (without `--backend-k8s-`), for tests and callers without lexopt.
    pub fn set(&mut self, flag: &str, value: &str) -> bool {
        match VARS.iter().find(|(_, f, _)| *f == flag) {
            Some((suffix, _, _)) => {
                self.0.insert(format!("{ENV_PREFIX}{suffix}"), value.to_string());
                true
            }
            None => false,
        }
    }

    /// A lookup that consults the flags first, then `env`.
    pub fn over<'a>(&'a self, env: impl Fn(&str) -> Option<String> + 'a) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| self.0.get(k).cloned().or_else(|| env(k))
    }
}

/// Usage lines for the `--backend-k8s-*` flags.
pub fn usage() -> String {
    VARS.iter()
        .map(|(suffix, flag, _)| format!("  --{FLAG_PREFIX}{flag:<38} ${ENV_PREFIX}{suffix}\n"))
        .collect()
}
