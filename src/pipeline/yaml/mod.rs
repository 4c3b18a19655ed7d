//! The YAML front end: a workflow file's text to [`Workflow`]s, one per matrix item. Order of
//! work as in Woodpecker: read the matrix from the raw text, then per item substitute
//! `${VAR}` (matrix values over the metadata environment), parse (anchors, aliases and `<<`
//! merges resolved; top-level `variables:` holds anchors), and read every key.
//! Knows nothing of compilation or the backend.

mod locate;
mod matrix;
mod node;
mod parse;
pub mod subst;
pub mod types;

use std::collections::BTreeMap;
use std::path::Path;

pub use types::{Container, List, Value, When, Workflow};

use crate::pipeline::error::{Error, ErrorKind};
use node::{Node, Source};

/// The workflow name of a file: its base name without extension and leading dot.
pub fn workflow_name(path: &Path) -> String {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = base.strip_prefix('.').unwrap_or(&base);
    let base = base
        .strip_suffix(".yaml")
        .or_else(|| base.strip_suffix(".yml"))
        .unwrap_or(base);
    base.to_owned()
}

fn parse_yaml(file: &str, text: &str) -> Result<serde_yaml::Value, Error> {
    let mut value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(0);
        let msg = e.to_string();
        // The parser's own text ends with "at line N column M"; the line is already in front.
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
        Error::new(file, line, "", ErrorKind::Read(format!("not valid YAML: {msg}")))
    })?;
    value
        .apply_merge()
        .map_err(|e| Error::new(file, 0, "", ErrorKind::Read(format!("bad `<<` merge: {e}"))))?;
    Ok(value)
}

/// Reads one file's text. `env` is the metadata environment for `${VAR}`.
pub fn load(file: &str, name: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Workflow>, Error> {
    let raw = parse_yaml(file, text)?;
    let src = Source { file, text };
    let axes = matrix::axes(&Node::root(&raw, &src))?;
    let mut out = Vec::with_capacity(axes.len());
    for axis in axes {
        let lookup = |var: &str| axis.get(var).cloned().or_else(|| env(var));
        let substituted = subst::substitute(text, &lookup)
            .map_err(|(line, msg)| Error::new(file, line, "", ErrorKind::Invalid(msg)))?;
        let value = parse_yaml(file, &substituted)?;
        let src = Source {
            file,
            text: &substituted,
        };
        out.push(parse::workflow(&Node::root(&value, &src), name, axis)?);
    }
    Ok(out)
}

/// Reads a file from disk.
pub fn load_file(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Workflow>, Error> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::new(&file, 0, "", ErrorKind::Read(e.to_string())))?;
    load(&file, &workflow_name(path), &text, env)
}

/// The matrix values of a workflow, for names like `build (GO=1.22, OS=linux)`.
pub fn axis_label(axis: &BTreeMap<String, String>) -> String {
    axis.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
