//! The YAML front end: a workflow file's text to [`Workflow`]s, one per matrix item, plus the
//! warnings Woodpecker's linter would give. Order of work as in Woodpecker: read the matrix
//! from the raw text, then per item substitute `${VAR}` (matrix values over the metadata
//! environment), parse (anchors, aliases and `<<` merges of maps and lists resolved;
//! top-level `variables:` holds anchors), and read every key. Every node knows its line (from
//! the parser itself, [`tree`]), in any indentation or flow style. Knows nothing of
//! compilation or the backend.

mod events;
mod matrix;
mod node;
mod parse;
pub(crate) mod subst;
pub(crate) mod tree;
pub(crate) mod types;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

pub use parse::EVENTS;
pub use types::{Container, Dep, List, PathList, Value, When, Workflow};

use crate::pipeline::error::{ErrorKind, PipelineError, Warning};
use node::{Node, Source};

/// The most a workflow file may hold; Woodpecker's server refuses larger configs too.
pub const MAX_FILE: u64 = 10 << 20;

/// What one file gave: its workflows and the warnings about it (each once).
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub workflows: Vec<Workflow>,
    pub warnings: Vec<Warning>,
}

/// The workflow name of a file: its base name without extension and leading dot.
pub fn workflow_name(path: &Path) -> String {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Woodpecker's SanitizePath: trim `.yml`, then `.yaml`, then one leading dot.
    let base = base.strip_suffix(".yml").unwrap_or(&base);
    let base = base.strip_suffix(".yaml").unwrap_or(base);
    base.strip_prefix('.').unwrap_or(base).to_owned()
}

fn tree_of(file: &str, text: &str) -> Result<tree::Yaml, PipelineError> {
    tree::parse(text).map_err(|e| PipelineError::new(file, e.line as usize, "", ErrorKind::Read(e.msg)))
}

/// Reads one file's text. `env` is the metadata environment for `${VAR}`.
pub fn load(file: &str, name: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, PipelineError> {
    let raw = tree_of(file, text)?;
    let src = Source::new(file);
    let axes = matrix::axes(&Node::root(&raw, &src))?;
    let mut warnings = src.warnings.into_inner();
    warnings.extend(parse::deprecated_vars(file, text));
    let mut workflows = Vec::with_capacity(axes.len());
    for axis in axes {
        let lookup = |var: &str| axis.get(var).cloned().or_else(|| env(var));
        let substituted;
        let parsed;
        let doc = if text.contains('$') {
            substituted = subst::substitute(text, &lookup)
                .map_err(|(line, msg)| PipelineError::new(file, line, "", ErrorKind::Invalid(msg)))?;
            parsed = tree_of(file, &substituted)?;
            &parsed
        } else {
            &raw
        };
        let src = Source::new(file);
        workflows.push(parse::workflow(&Node::root(doc, &src), name, axis)?);
        warnings.extend(src.warnings.into_inner());
    }
    let mut seen = HashSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    Ok(Loaded { workflows, warnings })
}

/// Reads a file from disk (at most [`MAX_FILE`] bytes).
pub fn load_file(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, PipelineError> {
    use std::io::Read;
    let file = path.display().to_string();
    let read_err = |e: std::io::Error| PipelineError::new(&file, 0, "", ErrorKind::Read(e.to_string()));
    let f = std::fs::File::open(path).map_err(read_err)?;
    let mut text = String::new();
    f.take(MAX_FILE + 1).read_to_string(&mut text).map_err(read_err)?;
    if text.len() as u64 > MAX_FILE {
        return Err(PipelineError::new(
            &file,
            0,
            "",
            ErrorKind::Read(format!("larger than {} MiB; not a workflow file", MAX_FILE >> 20)),
        ));
    }
    load(&file, &workflow_name(path), &text, env)
}

/// The matrix values of a workflow, for names like `build (GO=1.22, OS=linux)`.
pub fn axis_label(axis: &BTreeMap<String, String>) -> String {
    axis.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
