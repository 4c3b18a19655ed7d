//! `when:` decided locally: event, branch, ref, path, platform, repo, instance, cron,
//! environment, matrix, local and evaluate
//! (Woodpecker's `pipeline/frontend/yaml/constraint`). `status` is not decided here: it
//! becomes the step's `on_success`/`on_failure`, which the runtime applies. Pure.

use std::collections::BTreeMap;

use super::expr;
use crate::pipeline::env::Metadata;
use crate::pipeline::error::Error;
use crate::pipeline::yaml::subst::glob_match;
use crate::pipeline::yaml::{List, When};

/// What the constraints are matched against.
pub struct Facts<'a> {
    pub meta: &'a Metadata,
    pub axis: &'a BTreeMap<String, String>,
    pub env: &'a BTreeMap<String, String>,
    /// `exec` runs locally: `when: local: false` excludes.
    pub local: bool,
}

fn matches(list: &List, value: &str) -> bool {
    if list.exclude.iter().any(|p| glob_match(p, value)) {
        return false;
    }
    list.include.is_empty() || list.include.iter().any(|p| glob_match(p, value))
}

fn path_matches(list: &List, files: Option<&Vec<String>>) -> bool {
    if list.is_empty() {
        return true;
    }
    let files = match files {
        Some(f) if !f.is_empty() => f,
        // No changed files known (a manual run): Woodpecker's `on_empty`, true by default.
        _ => return list.on_empty.unwrap_or(true),
    };
    let included = list.include.is_empty() || files.iter().any(|f| list.include.iter().any(|p| path_glob(p, f)));
    let all_excluded = !list.exclude.is_empty() && files.iter().all(|f| list.exclude.iter().any(|p| path_glob(p, f)));
    included && !all_excluded
}

/// `**` spans directories; `*` is treated the same, which is looser than doublestar but never
/// drops a step that would run.
fn path_glob(pattern: &str, path: &str) -> bool {
    glob_match(&pattern.replace("**", "*"), path)
}

fn entry_matches(w: &When, facts: &Facts<'_>, file: &str) -> Result<bool, Error> {
    let m = facts.meta;
    if !w.event.is_empty() && !matches(&w.event, &m.event) {
        return Ok(false);
    }
    if !w.branch.is_empty() && !matches(&w.branch, &m.commit_branch) {
        return Ok(false);
    }
    if !w.reference.is_empty() && !matches(&w.reference, &m.commit_ref) {
        return Ok(false);
    }
    if !path_matches(&w.path, m.changed_files.as_ref()) {
        return Ok(false);
    }
    let others = [
        (&w.platform, &m.platform),
        (&w.repo, &m.repo),
        (&w.instance, &m.system_host),
        (&w.cron, &m.cron),
        (&w.environment, &m.deploy_to),
    ];
    if others
        .iter()
        .any(|(list, value)| !list.is_empty() && !matches(list, value))
    {
        return Ok(false);
    }
    if w.matrix.iter().any(|(k, v)| facts.axis.get(k) != Some(v)) {
        return Ok(false);
    }
    if w.local == Some(false) && facts.local {
        return Ok(false);
    }
    if let Some(src) = &w.evaluate {
        return expr::evaluate(src, facts.env).map_err(|e| {
            Error::invalid(
                file,
                w.evaluate_line,
                &format!("{}.evaluate", w.key),
                format!("`{src}`: {e}"),
            )
        });
    }
    Ok(true)
}

/// Whether a `when:` list lets the item run (no entries: always).
pub fn included(when: &[When], facts: &Facts<'_>, file: &str) -> Result<bool, Error> {
    if when.is_empty() {
        return Ok(true);
    }
    for w in when {
        if entry_matches(w, facts, file)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `(on_success, on_failure)` from the `status` of a `when:` list.
pub fn status(when: &[When]) -> (bool, bool) {
    if when.is_empty() {
        return (true, false);
    }
    let success = when
        .iter()
        .any(|w| w.status.is_empty() || w.status.iter().any(|s| s == "success"));
    let failure = when.iter().any(|w| w.status.iter().any(|s| s == "failure"));
    (success, failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(include: &[&str], exclude: &[&str]) -> List {
        List {
            include: include.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            on_empty: None,
        }
    }

    #[test]
    fn include_exclude_globs() {
        assert!(matches(&list(&["main", "release/*"], &[]), "release/1.0"));
        assert!(!matches(&list(&["main"], &[]), "dev"));
        assert!(!matches(&list(&[], &["wip/*"]), "wip/x"));
    }

    #[test]
    fn paths_use_on_empty_without_changed_files() {
        let l = list(&["src/**"], &[]);
        assert!(path_matches(&l, None));
        assert!(!path_matches(
            &List {
                on_empty: Some(false),
                ..l.clone()
            },
            None
        ));
        assert!(path_matches(&l, Some(&vec!["src/a/b.rs".into()])));
        assert!(!path_matches(&l, Some(&vec!["docs/x.md".into()])));
        assert!(!path_matches(&list(&[], &["*.md"]), Some(&vec!["README.md".into()])));
    }

    fn facts_check(w: &When, meta: &Metadata) -> bool {
        let (axis, env) = (BTreeMap::new(), BTreeMap::new());
        let facts = Facts {
            meta,
            axis: &axis,
            env: &env,
            local: true,
        };
        entry_matches(w, &facts, "ci.yaml").unwrap()
    }

    #[test]
    fn repo_instance_cron_and_environment_match_the_metadata() {
        let meta = Metadata {
            repo: "acme/app".into(),
            cron: "nightly".into(),
            deploy_to: "production".into(),
            ..Metadata::default()
        };
        let when = |f: fn(&mut When)| {
            let mut w = When::default();
            f(&mut w);
            w
        };
        assert!(facts_check(&when(|w| w.repo = list(&["acme/*"], &[])), &meta));
        assert!(!facts_check(&when(|w| w.repo = list(&["mirror/app"], &[])), &meta));
        assert!(facts_check(&when(|w| w.cron = list(&["nightly"], &[])), &meta));
        assert!(!facts_check(&when(|w| w.cron = list(&[], &["nightly"])), &meta));
        assert!(facts_check(&when(|w| w.environment = list(&["prod*"], &[])), &meta));
        // exec knows no server: an instance list never matches, an exclude list always does.
        assert!(!facts_check(&when(|w| w.instance = list(&["ci.acme.dev"], &[])), &meta));
        assert!(facts_check(&when(|w| w.instance = list(&[], &["ci.acme.dev"])), &meta));
    }

    #[test]
    fn status_lists() {
        let w = |s: &[&str]| When {
            status: s.iter().map(|x| x.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(status(&[]), (true, false));
        assert_eq!(status(&[w(&["failure"])]), (false, true));
        assert_eq!(status(&[w(&["success", "failure"])]), (true, true));
        assert_eq!(status(&[w(&[])]), (true, false));
    }
}
