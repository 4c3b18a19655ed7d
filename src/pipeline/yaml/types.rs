//! What the user wrote in a workflow file, after anchors, merges and `${VAR}` substitution:
//! plain data with the line each item sits on, no defaults applied and nothing resolved
//! (Woodpecker's `pipeline/frontend/yaml/types`). The compiler
//! ([`crate::pipeline::compile`]) turns it into a `backend::WorkflowConfig`.

use std::collections::BTreeMap;

/// A value of `environment:` or `settings:`: the YAML value as JSON (numbers keep their type,
/// as Go's `map[string]any` does), in which a map with a `from_secret` key stands for that
/// secret, at the top or nested (Woodpecker resolves both).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Plain(serde_json::Value),
    /// `{from_secret: NAME}` as the whole value.
    FromSecret(String),
}

/// Include/exclude glob lists (`branch: main`, `branch: [a, b]`,
/// `branch: {include: [...], exclude: [...]}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct List {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl List {
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }
}

/// `path:`: include/exclude globs, the commit-message escape hatch and the empty-commit rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathList {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub ignore_message: String,
    /// Whether the constraint matches when no changed files are known (default true).
    pub on_empty: Option<bool>,
}

/// One `when:` entry; a `when:` list matches when any entry does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct When {
    /// Where it was written (`steps.test.when`), for errors.
    pub key: String,
    pub line: usize,
    pub evaluate_line: usize,
    pub status: Vec<String>,
    /// Event names (Woodpecker's `event` is a plain list: no include/exclude).
    pub event: Vec<String>,
    pub branch: List,
    pub reference: List,
    pub path: PathList,
    pub platform: List,
    /// `owner/name` of the repository.
    pub repo: List,
    /// The Woodpecker server's host.
    pub instance: List,
    /// The cron job's name.
    pub cron: List,
    /// `matrix:` as include/exclude maps of globs.
    pub matrix_include: BTreeMap<String, String>,
    pub matrix_exclude: BTreeMap<String, String>,
    pub local: Option<bool>,
    pub evaluate: Option<String>,
}

/// One entry of `depends_on`: `build` or `{name: lint, optional: true}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dep {
    pub name: String,
    /// An optional dependency that is not part of the run is dropped instead of failing.
    pub optional: bool,
}

impl Dep {
    pub fn required(name: &str) -> Dep {
        Dep {
            name: name.to_owned(),
            optional: false,
        }
    }
}

/// A step, a service or a clone step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Container {
    pub name: String,
    pub line: usize,
    pub image: String,
    pub pull: bool,
    pub commands: Vec<String>,
    pub entrypoint: Vec<String>,
    /// In file order; key, value, the value's line. Null values are left out (Woodpecker
    /// sets no variable for them).
    pub environment: Vec<(String, Value, usize)>,
    pub settings: Vec<(String, Value, usize)>,
    /// `None` when the key is absent (matters: any `depends_on` turns the steps into a DAG).
    pub depends_on: Option<Vec<Dep>>,
    pub depends_on_line: usize,
    pub detach: bool,
    /// As written; anything but `ignore` fails the workflow (Woodpecker's linter warns about
    /// values other than fail, ignore, cancel).
    pub failure: Option<String>,
    pub privileged: bool,
    pub volumes: Vec<String>,
    pub directory: Option<String>,
    pub ports: Vec<(u16, String)>,
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub devices: Vec<String>,
    pub tmpfs: Vec<String>,
    pub network_mode: String,
    pub backend_options: BTreeMap<String, serde_json::Value>,
    pub when: Vec<When>,
}

impl Container {
    /// Woodpecker's `IsPlugin`: no commands, no entrypoint, no environment.
    pub fn is_plugin(&self) -> bool {
        self.commands.is_empty() && self.entrypoint.is_empty() && self.environment.is_empty()
    }
}

/// One workflow file (one matrix item of it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Workflow {
    /// The file's base name without extension and leading dot.
    pub name: String,
    /// The file as the user named it, for errors.
    pub file: String,
    /// The matrix item this workflow was expanded for (empty without a matrix).
    pub axis: BTreeMap<String, String>,
    pub when: Vec<When>,
    pub depends_on: Vec<Dep>,
    /// Deprecated `runs_on` (`success`, `failure`): when the workflow runs after its
    /// dependencies ended.
    pub runs_on: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub workspace_base: Option<String>,
    pub workspace_path: Option<String>,
    /// `clone:` steps replacing the default clone.
    pub clone: Vec<Container>,
    pub skip_clone: bool,
    pub services: Vec<Container>,
    pub steps: Vec<Container>,
}
