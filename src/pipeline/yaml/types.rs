//! What the user wrote in a workflow file, after anchors, merges and `${VAR}` substitution:
//! plain data with the line each item sits on, no defaults applied and nothing resolved. The
//! compiler ([`crate::pipeline::compile`]) turns it into a `backend::Config`.

use std::collections::BTreeMap;

/// A value of `environment:` or `settings:`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar, list or map as JSON (settings keep structure; environment wants scalars).
    Plain(serde_json::Value),
    /// `{from_secret: NAME}`.
    FromSecret(String),
}

/// Include/exclude glob lists (`branch: main`, `branch: [a, b]`,
/// `branch: {include: [...], exclude: [...]}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct List {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// `path:` only: whether a constraint matches when no changed files are known.
    pub on_empty: Option<bool>,
}

impl List {
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }
}

/// One `when:` entry; a `when:` list matches when any entry does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct When {
    /// Where it was written (`steps.test.when`), for errors.
    pub key: String,
    pub line: usize,
    pub evaluate_line: usize,
    pub status: Vec<String>,
    pub event: List,
    pub branch: List,
    pub reference: List,
    pub path: List,
    pub platform: List,
    /// `owner/name` of the repository.
    pub repo: List,
    /// The Woodpecker server's host.
    pub instance: List,
    /// The cron job's name.
    pub cron: List,
    /// The deployment target.
    pub environment: List,
    pub matrix: BTreeMap<String, String>,
    pub local: Option<bool>,
    pub evaluate: Option<String>,
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
    /// In file order; key, value, the value's line.
    pub environment: Vec<(String, Value, usize)>,
    pub settings: Vec<(String, Value, usize)>,
    /// `None` when the key is absent (matters: any `depends_on` turns the steps into a DAG).
    pub depends_on: Option<Vec<String>>,
    pub detach: bool,
    pub failure: Option<String>,
    pub privileged: bool,
    pub volumes: Vec<String>,
    pub directory: Option<String>,
    pub ports: Vec<(u16, String)>,
    pub backend_options: BTreeMap<String, serde_json::Value>,
    pub when: Vec<When>,
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
    pub depends_on: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub workspace_base: Option<String>,
    pub workspace_path: Option<String>,
    /// `clone:` steps replacing the default clone.
    pub clone: Vec<Container>,
    pub skip_clone: bool,
    pub services: Vec<Container>,
    pub steps: Vec<Container>,
}
