//! Which workflow files a run reads and in what order: a file, a folder of `*.yaml`/`*.yml`,
//! or the defaults (`.woodpecker/`, `.woodpecker.yaml`, `.woodpecker.yml`); then the loaded
//! workflows ordered by their `depends_on` (a workflow runs after every workflow it names,
//! file order otherwise). Reads directories only; loading is [`crate::pipeline::yaml`]'s.

use std::path::{Path, PathBuf};

use crate::pipeline::error::Error;
use crate::pipeline::yaml::Workflow;

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

/// Orders workflows so each runs after those it `depends_on`; unknown names and cycles are
/// errors naming the file.
pub fn order(workflows: Vec<Workflow>) -> Result<Vec<Workflow>, Error> {
    for wf in &workflows {
        for dep in &wf.depends_on {
            if !workflows.iter().any(|w| &w.name == dep) {
                return Err(Error::invalid(
                    &wf.file,
                    0,
                    "depends_on",
                    format!("no workflow is named `{dep}`"),
                ));
            }
        }
    }
    let mut placed: Vec<bool> = vec![false; workflows.len()];
    let mut out_idx = Vec::with_capacity(workflows.len());
    while out_idx.len() < workflows.len() {
        let ready = (0..workflows.len()).find(|&i| {
            !placed[i]
                && workflows[i].depends_on.iter().all(|d| {
                    workflows
                        .iter()
                        .enumerate()
                        .filter(|(_, w)| &w.name == d)
                        .all(|(j, _)| placed[j])
                })
        });
        let Some(i) = ready else {
            let stuck: Vec<&str> = (0..workflows.len())
                .filter(|&i| !placed[i])
                .map(|i| workflows[i].name.as_str())
                .collect();
            let first = workflows
                .iter()
                .find(|w| w.name == stuck[0])
                .map(|w| w.file.as_str())
                .unwrap_or("");
            return Err(Error::invalid(
                first,
                0,
                "depends_on",
                format!("workflows depend on each other in a cycle: {}", stuck.join(", ")),
            ));
        };
        placed[i] = true;
        out_idx.push(i);
    }
    let mut slots: Vec<Option<Workflow>> = workflows.into_iter().map(Some).collect();
    Ok(out_idx.into_iter().filter_map(|i| slots[i].take()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wf(name: &str, deps: &[&str]) -> Workflow {
        Workflow {
            name: name.into(),
            file: format!("{name}.yaml"),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        }
    }

    fn names(w: &[Workflow]) -> Vec<&str> {
        w.iter().map(|w| w.name.as_str()).collect()
    }

    #[test]
    fn orders_by_depends_on() {
        let out = order(vec![
            wf("deploy", &["test", "build"]),
            wf("build", &[]),
            wf("test", &["build"]),
        ])
        .unwrap();
        assert_eq!(names(&out), ["build", "test", "deploy"]);
    }

    #[test]
    fn unknown_and_cycles() {
        assert_eq!(
            order(vec![wf("a", &["zz"])]).unwrap_err().to_string(),
            "a.yaml: depends_on: no workflow is named `zz`"
        );
        assert_eq!(
            order(vec![wf("a", &["b"]), wf("b", &["a"]), wf("c", &[])])
                .unwrap_err()
                .to_string(),
            "a.yaml: depends_on: workflows depend on each other in a cycle: a, b"
        );
    }
}
