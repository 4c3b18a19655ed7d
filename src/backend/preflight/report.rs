//! The preflight report: one line per check, `ok`, `warn` or `FAIL` with the reason. Pure.

use std::fmt;

/// How one check came out, with the sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    Ok(String),
    /// Works now but may bite later, or could not be checked.
    Warn(String),
    /// The agent cannot run workflows until this is fixed.
    Fail(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Short and stable: `cluster`, `authentication`, `namespace`, `rbac: create pods`, `storage`.
    pub name: String,
    pub outcome: CheckOutcome,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn push(&mut self, name: impl Into<String>, outcome: CheckOutcome) {
        self.checks.push(Check {
            name: name.into(),
            outcome,
        });
    }

    /// True when no check failed (warnings allowed).
    pub fn passed(&self) -> bool {
        !self.checks.iter().any(|c| matches!(c.outcome, CheckOutcome::Fail(_)))
    }

    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, CheckOutcome::Fail(_)))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for check in &self.checks {
            let (tag, text) = match &check.outcome {
                CheckOutcome::Ok(t) => ("ok  ", t),
                CheckOutcome::Warn(t) => ("warn", t),
                CheckOutcome::Fail(t) => ("FAIL", t),
            };
            writeln!(f, "{tag}  {:width$}  {text}", check.name)?;
        }
        let failed = self.failures().count();
        let warned = self
            .checks
            .iter()
            .filter(|c| matches!(c.outcome, CheckOutcome::Warn(_)))
            .count();
        if failed == 0 {
            write!(f, "preflight passed ({} checks, {warned} warnings)", self.checks.len())
        } else {
            write!(f, "preflight FAILED: {failed} of {} checks failed", self.checks.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_aligned_line_per_check_and_a_verdict() {
        let mut report = Report::default();
        report.push("cluster", CheckOutcome::Ok("v1.32.0".into()));
        report.push("rbac: delete pods", CheckOutcome::Fail("no RBAC rule allows it".into()));
        report.push("storage", CheckOutcome::Warn("cannot tell".into()));
        assert!(!report.passed());
        assert_eq!(
            report.to_string(),
            "ok    cluster            v1.32.0\n\
             FAIL  rbac: delete pods  no RBAC rule allows it\n\
             warn  storage            cannot tell\n\
             preflight FAILED: 1 of 3 checks failed"
        );
        report.checks.remove(1);
        assert!(report.passed());
        assert!(report.to_string().ends_with("preflight passed (2 checks, 1 warnings)"));
    }
}
