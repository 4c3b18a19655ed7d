//! Which workflow files a run reads: a file, a folder of `*.yaml`/`*.yml` (sorted by name, as
//! Woodpecker sorts them), or the defaults (`.woodpecker/`, `.woodpecker.yaml`,
//! `.woodpecker.yml`); then which workflows stay in the run by their `depends_on`
//! (Woodpecker's `filterMissingDependencies`), and cycles among them. Reads directories only;
//! loading is [`crate::pipeline::yaml`]'s.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::pipeline::yaml::Dep;

/// The workflow files for `path` (or the defaults under `dir`), sorted by name within a folder.
pub fn discover(path: Option<&Path>, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => {
            // Relative to "." stays relative, so errors name `.woodpecker.yaml`, not a long path.
            let at = |c: &str| {
                if dir == Path::new(".") {
                    PathBuf::from(c)
                } else {
                    dir.join(c)
                }
            };
            let candidates = [".woodpecker", ".woodpecker.yaml", ".woodpecker.yml"].map(at);
            candidates.into_iter().find(|c| c.exists()).ok_or_else(|| {
                format!(
                    "no pipeline found in {}: expected .woodpecker/, .woodpecker.yaml or .woodpecker.yml (or pass a PATH)",
                    dir.display()
                )
            })?
        }
    };
    if !path.is_dir() {
        if !path.exists() {
            return Err(format!("{}: no such file or directory", path.display()));
        }
        return Ok(vec![path]);
    }
    let entries = std::fs::read_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no .yaml or .yml files in this folder", path.display()));
    }
    Ok(files)
}

/// Why a workflow was left out of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub index: usize,
    /// The required dependency that is not part of the run.
    pub missing: String,
}

/// The names of the workflows still alive.
fn present<'a>(items: &[(&'a str, &[Dep])], alive: &[bool]) -> HashSet<&'a str> {
    items
        .iter()
        .zip(alive)
        .filter(|(_, a)| **a)
        .map(|((name, _), _)| *name)
        .collect()
}

/// Woodpecker's `filterMissingDependencies`: `items` are (workflow name, its `depends_on`) of
/// the workflows that will run. A workflow with a required dependency that names no workflow
/// of the run is dropped, and so, in turn, is what requires it; optional dependencies that
/// name nothing are forgotten. Returns, per item, its dependencies left, or why it was dropped.
pub fn filter_missing(items: &[(&str, &[Dep])]) -> Vec<Result<Vec<String>, Dropped>> {
    let mut alive = vec![true; items.len()];
    let mut why: Vec<Option<String>> = vec![None; items.len()];
    loop {
        let present = present(items, &alive);
        let mut changed = false;
        for (i, (_, deps)) in items.iter().enumerate() {
            if !alive[i] {
                continue;
            }
            if let Some(d) = deps.iter().find(|d| !d.optional && !present.contains(d.name.as_str())) {
                alive[i] = false;
                why[i] = Some(d.name.clone());
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let present = present(items, &alive);
    items
        .iter()
        .enumerate()
        .map(|(i, (_, deps))| match why[i].take() {
            Some(missing) => Err(Dropped { index: i, missing }),
            None => {
                let mut left: Vec<String> = deps
                    .iter()
                    .filter(|d| present.contains(d.name.as_str()))
                    .map(|d| d.name.clone())
                    .collect();
                left.dedup();
                Ok(left)
            }
        })
        .collect()
}

/// The workflows on a `depends_on` cycle among `items` (name, dependencies), if any.
pub fn cycle(items: &[(&str, &[String])]) -> Option<Vec<String>> {
    let mut done: HashSet<&str> = HashSet::new();
    let mut left: Vec<usize> = (0..items.len()).collect();
    loop {
        let before = left.len();
        left.retain(|&i| {
            let ready = items[i].1.iter().all(|d| done.contains(d.as_str()) || d == items[i].0);
            let self_loop = items[i].1.iter().any(|d| d == items[i].0);
            if ready && !self_loop {
                done.insert(items[i].0);
                false
            } else {
                true
            }
        });
        if left.is_empty() {
            return None;
        }
        if left.len() == before {
            let mut names: Vec<String> = left.iter().map(|&i| items[i].0.to_owned()).collect();
            names.dedup();
            return Some(names);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(name: &str, optional: bool) -> Dep {
        Dep {
            name: name.into(),
            optional,
        }
    }

    #[test]
    fn missing_required_dependencies_drop_the_workflow_and_its_dependants() {
        let check = [dep("check-a", false), dep("ghost", false)];
        let deploy = [dep("deploy", false)];
        let opt = [dep("check-a", false), dep("check-b", true)];
        let items: Vec<(&str, &[Dep])> = vec![
            ("check-a", &[]),
            ("deploy", &check),
            ("notify", &deploy),
            ("release", &opt),
        ];
        let out = filter_missing(&items);
        assert_eq!(out[0], Ok(vec![]));
        assert_eq!(
            out[1],
            Err(Dropped {
                index: 1,
                missing: "ghost".into()
            })
        );
        assert_eq!(
            out[2],
            Err(Dropped {
                index: 2,
                missing: "deploy".into()
            })
        );
        assert_eq!(out[3], Ok(vec!["check-a".to_string()]));
    }

    #[test]
    fn cycles_are_named() {
        let (a, b) = (vec!["b".to_string()], vec!["a".to_string()]);
        let items: Vec<(&str, &[String])> = vec![("a", &a), ("b", &b), ("c", &[])];
        assert_eq!(cycle(&items), Some(vec!["a".to_string(), "b".to_string()]));
        let items: Vec<(&str, &[String])> = vec![("a", &[]), ("b", &b)];
        assert_eq!(cycle(&items), None);
    }
}
