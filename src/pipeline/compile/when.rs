//! `when:` decided locally by Woodpecker's `constraint.Match`: event, branch (not for tags),
//! ref, path (only for push and pull request events), platform, repo, instance, cron (only
//! for cron events), matrix (steps only), and evaluate; a list matches when any entry does.
//! Globs are doublestar's ([`super::glob`]). `status` is not decided here: it becomes the
//! step's `on_success`/`on_failure` (from the entries that match, as Woodpecker computes
//! them), which the runtime applies; `local: false` drops a step from a local run. Pure.

use std::collections::BTreeMap;

use super::expr;
use super::glob;
use crate::pipeline::env::Metadata;
use crate::pipeline::error::PipelineError;
use crate::pipeline::yaml::{List, PathList, When};

/// What the constraints are matched against.
pub struct Facts<'a> {
    pub meta: &'a Metadata,
    pub axis: &'a BTreeMap<String, String>,
    pub env: &'a BTreeMap<String, String>,
}

fn list_matches(list: &List, value: &str) -> bool {
    if list.exclude.iter().any(|p| glob::matches(p, value)) {
        return false;
    }
    list.include.is_empty() || list.include.iter().any(|p| glob::matches(p, value))
}

fn path_matches(p: &PathList, files: Option<&Vec<String>>, message: &str) -> bool {
    if !p.ignore_message.is_empty() && message.to_lowercase().contains(&p.ignore_message.to_lowercase()) {
        return true;
    }
    let files = match files {
        Some(f) if !f.is_empty() => f,
        // No changed files known (a manual run, an empty commit): `on_empty`, true by default.
        _ => return p.on_empty.unwrap_or(true),
    };
    if !p.exclude.is_empty() && files.iter().all(|f| p.exclude.iter().any(|x| glob::matches(x, f))) {
        return false;
    }
    p.include.is_empty() || files.iter().any(|f| p.include.iter().any(|x| glob::matches(x, f)))
}

fn matrix_matches(w: &When, axis: &BTreeMap<String, String>) -> bool {
    let value = |k: &str| axis.get(k).map(String::as_str).unwrap_or("");
    if !w.matrix_exclude.is_empty() && w.matrix_exclude.iter().all(|(k, v)| glob::matches(v, value(k))) {
        return false;
    }
    w.matrix_include.iter().all(|(k, v)| glob::matches(v, value(k)))
}

fn is_pull(event: &str) -> bool {
    matches!(event, "pull_request" | "pull_request_closed" | "pull_request_metadata")
}

/// One entry; `global` for the workflow's own `when` (no matrix filter there).
fn entry_matches(w: &When, facts: &Facts<'_>, global: bool, file: &str) -> Result<bool, PipelineError> {
    let m = facts.meta;
    let mut ok = global || matrix_matches(w, facts.axis);
    ok = ok
        && list_matches(&w.platform, &m.platform)
        && (w.event.is_empty() || w.event.contains(&m.event))
        && list_matches(&w.repo, &m.repo)
        && list_matches(&w.reference, &m.commit_ref)
        && list_matches(&w.instance, &m.system_host);
    if is_pull(&m.event) || m.event == "push" {
        ok = ok && path_matches(&w.path, m.changed_files.as_ref(), &m.commit_message);
    }
    if m.event != "tag" {
        ok = ok && list_matches(&w.branch, &m.commit_branch);
    }
    if m.event == "cron" {
        ok = ok && list_matches(&w.cron, &m.cron);
    }
    if let Some(src) = &w.evaluate {
        let result = expr::evaluate(src, facts.env).map_err(|e| {
            PipelineError::invalid(
                file,
                w.evaluate_line,
                &format!("{}.evaluate", w.key),
                format!("`{}`: {e}", crate::pipeline::error::shorten(src)),
            )
        })?;
        ok = ok && result;
    }
    Ok(ok)
}

/// Whether a `when:` list lets the item run (no entries: always).
pub fn included(when: &[When], facts: &Facts<'_>, global: bool, file: &str) -> Result<bool, PipelineError> {
    if when.is_empty() {
        return entry_matches(&When::default(), facts, global, file);
    }
    for w in when {
        if entry_matches(w, facts, global, file)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Woodpecker's `IsLocal`: false when any entry says `local: false`.
pub fn is_local(when: &[When]) -> bool {
    when.iter().all(|w| w.local != Some(false))
}

/// `(on_success, on_failure)`: from the `status` of the entries that match (no entries: runs
/// on success only). An entry without `status` means success.
pub fn status(when: &[When], facts: &Facts<'_>, global: bool) -> (bool, bool) {
    if when.is_empty() {
        return (true, false);
    }
    let matching: Vec<&When> = when
        .iter()
        .filter(|w| entry_matches(w, facts, global, "").unwrap_or(false))
        .collect();
    let success = matching
        .iter()
        .any(|w| w.status.is_empty() || w.status.iter().any(|s| s == "success"));
    let failure = matching.iter().any(|w| w.status.iter().any(|s| s == "failure"));
    (success, failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(include: &[&str], exclude: &[&str]) -> List {
        List {
            include: include.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn include_exclude_globs() {
        assert!(list_matches(&list(&["main", "release/*"], &[]), "release/1.0"));
        assert!(!list_matches(&list(&["main"], &[]), "dev"));
        assert!(!list_matches(&list(&[], &["wip/*"]), "wip/x"));
    }

    #[test]
    fn paths_use_on_empty_and_ignore_message() {
        let p = |inc: &[&str], exc: &[&str]| PathList {
            include: inc.iter().map(|s| s.to_string()).collect(),
            exclude: exc.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let l = p(&["src/**"], &[]);
        assert!(path_matches(&l, None, ""));
        assert!(!path_matches(
            &PathList {
                on_empty: Some(false),
                ..l.clone()
            },
            None,
            ""
        ));
        assert!(path_matches(&l, Some(&vec!["src/a/b.rs".into()]), ""));
        assert!(!path_matches(&l, Some(&vec!["docs/x.md".into()]), ""));
        assert!(!path_matches(&p(&[], &["*.md"]), Some(&vec!["README.md".into()]), ""));
        let ignore = PathList {
            ignore_message: "[ALL]".into(),
            ..l
        };
        assert!(path_matches(&ignore, Some(&vec!["docs/x.md".into()]), "fix: all [all]"));
    }

    fn check(w: &When, meta: &Metadata) -> bool {
        let (axis, env) = (BTreeMap::new(), BTreeMap::new());
        let facts = Facts {
            meta,
            axis: &axis,
            env: &env,
        };
        entry_matches(w, &facts, false, "ci.yaml").unwrap()
    }

    #[test]
    fn branch_is_not_checked_for_tags_nor_cron_outside_cron_events() {
        let w = When {
            branch: list(&["main"], &[]),
            cron: list(&["nightly"], &[]),
            ..Default::default()
        };
        let mut meta = Metadata {
            commit_branch: "dev".into(),
            ..Metadata::default()
        };
        assert!(!check(&w, &meta));
        meta.event = "tag".into();
        assert!(check(&w, &meta), "a tag has no branch to filter");
        meta.event = "cron".into();
        meta.commit_branch = "main".into();
        assert!(!check(&w, &meta), "a cron event checks the cron name");
        meta.cron = "nightly".into();
        assert!(check(&w, &meta));
    }

    #[test]
    fn repo_and_instance_match_the_metadata() {
        let meta = Metadata {
            repo: "acme/app".into(),
            ..Metadata::default()
        };
        let when = |f: fn(&mut When)| {
            let mut w = When::default();
            f(&mut w);
            w
        };
        assert!(check(&when(|w| w.repo = list(&["acme/*"], &[])), &meta));
        assert!(!check(&when(|w| w.repo = list(&["mirror/app"], &[])), &meta));
        // exec knows no server: an instance list never matches, an exclude list always does.
        assert!(!check(&when(|w| w.instance = list(&["ci.acme.dev"], &[])), &meta));
        assert!(check(&when(|w| w.instance = list(&[], &["ci.acme.dev"])), &meta));
    }

    #[test]
    fn status_comes_from_the_matching_entries() {
        let meta = Metadata::default();
        let (axis, env) = (BTreeMap::new(), BTreeMap::new());
        let facts = Facts {
            meta: &meta,
            axis: &axis,
            env: &env,
        };
        let w = |s: &[&str], event: &str| When {
            status: s.iter().map(|x| x.to_string()).collect(),
            event: if event.is_empty() {
                vec![]
            } else {
                vec![event.to_string()]
            },
            ..Default::default()
        };
        assert_eq!(status(&[], &facts, false), (true, false));
        assert_eq!(status(&[w(&["failure"], "")], &facts, false), (false, true));
        assert_eq!(status(&[w(&["success", "failure"], "")], &facts, false), (true, true));
        // The failure entry is for pushes; this run is manual.
        assert_eq!(
            status(&[w(&["failure"], "push"), w(&[], "manual")], &facts, false),
            (true, false)
        );
    }
}
