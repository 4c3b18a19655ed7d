//! A [`Workflow`] (what the user wrote) to a `backend::Config` (what the runtime runs), by
//! Woodpecker's compile rules (spec §5, §6.1): `when:` filters, the clone step, services in
//! their own stage, stages from `depends_on`, the `CI_*` environment, `from_secret`,
//! `settings:` to `PLUGIN_*`, workspace and volumes. Pure: secrets arrive resolved.

mod expr;
mod stages;
pub mod when;

use std::collections::BTreeMap;

use crate::backend::types::{Port, SecretValue};
use crate::backend::{Config, Stage, Step};
use crate::pipeline::env::Metadata;
use crate::pipeline::error::{Error, ErrorKind};
use crate::pipeline::ulid;
use crate::pipeline::yaml::{Container, Value, Workflow};

/// Woodpecker's default clone plugin.
pub const CLONE_IMAGE: &str = "docker.io/woodpeckerci/plugin-git:2.6.5";

/// Everything a compile needs beyond the workflow.
#[derive(Debug, Clone)]
pub struct Options {
    pub meta: Metadata,
    /// Secret name -> value, for `from_secret`.
    pub secrets: BTreeMap<String, String>,
    /// Extra variables for every step (`--env`).
    pub env: BTreeMap<String, String>,
    pub workspace_base: String,
    pub workspace_path: String,
    pub clone_image: String,
    /// Running locally (`when: local: false` excludes).
    pub local: bool,
    /// 1-based position of the workflow in the run.
    pub workflow_number: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            meta: Metadata::default(),
            secrets: BTreeMap::new(),
            env: BTreeMap::new(),
            workspace_base: "/woodpecker".into(),
            workspace_path: "src".into(),
            clone_image: CLONE_IMAGE.into(),
            local: true,
            workflow_number: 1,
        }
    }
}

/// A compiled workflow and what the user should be told about it.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub name: String,
    pub config: Config,
    /// e.g. why there is no clone step.
    pub notes: Vec<String>,
}

/// Every secret name a workflow refers to, with where (for resolving them up front).
pub fn secret_names(wf: &Workflow) -> Vec<String> {
    let all = wf.clone.iter().chain(&wf.services).chain(&wf.steps);
    let mut names: Vec<String> = all
        .flat_map(|c| c.environment.iter().chain(&c.settings))
        .filter_map(|(_, v, _)| match v {
            Value::FromSecret(n) => Some(n.clone()),
            Value::Plain(_) => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Compiles one workflow; `None` when its own `when:` excludes it.
pub fn compile(wf: &Workflow, opts: &Options) -> Result<Option<Compiled>, Error> {
    let base = wf.workspace_base.clone().unwrap_or_else(|| opts.workspace_base.clone());
    let path = wf.workspace_path.clone().unwrap_or_else(|| opts.workspace_path.clone());
    let workspace = join(&base, &path);
    let mut env = opts.meta.environ(&wf.name, opts.workflow_number, &workspace);
    env.extend(opts.env.clone());
    let facts = when::Facts {
        meta: &opts.meta,
        axis: &wf.axis,
        env: &env,
        local: opts.local,
    };
    if !when::included(&wf.when, &facts, &wf.file)? {
        return Ok(None);
    }
    let prefix = format!("wp_{}_{}", ulid::new().to_lowercase(), opts.workflow_number);
    let volume = format!("{prefix}_default");
    let ctx = StepCtx {
        wf,
        opts,
        env: &env,
        base: &base,
        workspace: &workspace,
        volume: &volume,
    };
    let mut config = Config {
        network: volume.clone(),
        volume: volume.clone(),
        ..Default::default()
    };
    let mut notes = Vec::new();

    if !wf.clone.is_empty() {
        for c in &wf.clone {
            if when::included(&c.when, &facts, &wf.file)? {
                config.stages.push(Stage {
                    steps: vec![ctx.step(c, "clone")?],
                });
            }
        }
    } else if wf.skip_clone {
        notes.push("skip_clone: no clone step".into());
    } else if opts.meta.clone_url.is_empty() {
        notes.push("no clone step: no remote URL (pass --repo-url to clone)".into());
    } else {
        config.stages.push(Stage {
            steps: vec![ctx.default_clone()],
        });
    }

    let mut services = Vec::new();
    for c in &wf.services {
        if when::included(&c.when, &facts, &wf.file)? {
            services.push(ctx.step(c, "service")?);
        }
    }
    if !services.is_empty() {
        config.stages.push(Stage { steps: services });
    }

    let mut kept: Vec<&Container> = Vec::new();
    for c in &wf.steps {
        if when::included(&c.when, &facts, &wf.file)? {
            kept.push(c);
        }
    }
    let nodes: Vec<stages::Node<'_>> = kept
        .iter()
        .map(|c| stages::Node {
            name: &c.name,
            depends_on: c.depends_on.as_deref(),
            line: c.line,
        })
        .collect();
    let levels = stages::stages(&nodes).map_err(|e| match e {
        stages::StageError::Unknown(step, line, dep) => {
            let why = if wf.steps.iter().any(|c| c.name == dep) {
                format!("depends on `{dep}`, which its `when:` excludes from this run")
            } else {
                format!("depends on `{dep}`, which is not a step of this workflow")
            };
            Error::invalid(&wf.file, line, &format!("steps.{step}.depends_on"), why)
        }
        stages::StageError::Cycle(names, line) => Error::invalid(
            &wf.file,
            line,
            "steps",
            format!("depends_on has a cycle: {}", names.join(" -> ")),
        ),
    })?;
    for level in levels {
        let steps = level
            .iter()
            .map(|&i| ctx.step(kept[i], ""))
            .collect::<Result<Vec<_>, _>>()?;
        config.stages.push(Stage { steps });
    }
    config.secrets = opts
        .secrets
        .iter()
        .map(|(name, value)| SecretValue {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    Ok(Some(Compiled {
        name: wf.name.clone(),
        config,
        notes,
    }))
}

fn join(a: &str, b: &str) -> String {
    if b.starts_with('/') {
        return b.to_owned();
    }
    format!("{}/{}", a.trim_end_matches('/'), b.trim_start_matches("./"))
        .trim_end_matches('/')
        .to_owned()
}

struct StepCtx<'a> {
    wf: &'a Workflow,
    opts: &'a Options,
    env: &'a BTreeMap<String, String>,
    base: &'a str,
    workspace: &'a str,
    volume: &'a str,
}

impl StepCtx<'_> {
    fn blank(&self, name: &str, type_: &str, image: &str) -> Step {
        Step {
            name: name.to_owned(),
            uuid: ulid::new(),
            type_: type_.to_owned(),
            image: image.to_owned(),
            working_dir: self.workspace.to_owned(),
            workspace_base: self.base.to_owned(),
            environment: self.env.clone(),
            volumes: vec![format!("{}:{}", self.volume, self.base)],
            on_success: true,
            failure: "fail".into(),
            workflow_labels: self.wf.labels.clone(),
            ..Default::default()
        }
    }

    fn default_clone(&self) -> Step {
        let mut s = self.blank("clone", "clone", &self.opts.clone_image);
        s.environment.insert("PLUGIN_DEPTH".into(), "0".into());
        if self.opts.meta.event == "tag" {
            s.environment.insert("PLUGIN_TAGS".into(), "true".into());
        }
        s
    }

    /// `kind`: "clone", "service", or "" for a step (plugin or commands by its shape).
    fn step(&self, c: &Container, kind: &str) -> Result<Step, Error> {
        let plugin = c.commands.is_empty() && c.entrypoint.is_empty() && c.environment.is_empty();
        let type_ = match kind {
            "" if plugin => "plugin",
            "" => "commands",
            k => k,
        };
        let section = match kind {
            "clone" => "clone",
            "service" => "services",
            _ => "steps",
        };
        let mut s = self.blank(&c.name, type_, &c.image);
        if type_ != "plugin" {
            s.environment.extend(self.wf.axis.clone());
        }
        for (k, v, line) in &c.environment {
            let key = format!("{section}.{}.environment.{k}", c.name);
            let value = self.value(v, *line, &key)?;
            if let Value::FromSecret(_) = v {
                s.secret_mapping.insert(k.clone(), value.clone());
            }
            s.environment.insert(k.clone(), value);
        }
        for (k, v, line) in &c.settings {
            let name = format!("PLUGIN_{}", k.to_uppercase().replace(['.', '-'], "_"));
            let key = format!("{section}.{}.settings.{k}", c.name);
            let value = self.value(v, *line, &key)?;
            if let Value::FromSecret(_) = v {
                s.secret_mapping.insert(name.clone(), value.clone());
            }
            s.environment.insert(name, value);
        }
        s.pull = c.pull;
        s.privileged = c.privileged;
        s.detached = c.detach || kind == "service";
        s.commands = c.commands.clone();
        s.entrypoint = c.entrypoint.clone();
        s.volumes.extend(c.volumes.iter().cloned());
        if let Some(dir) = &c.directory {
            s.working_dir = join(self.workspace, dir);
        }
        s.ports = c
            .ports
            .iter()
            .map(|(n, p)| Port {
                number: *n,
                protocol: p.clone(),
            })
            .collect();
        s.backend_options = c.backend_options.clone();
        (s.on_success, s.on_failure) = when::status(&c.when);
        s.failure = c.failure.clone().unwrap_or_else(|| "fail".into());
        Ok(s)
    }

    /// An environment or settings value as a string; `from_secret` resolved.
    fn value(&self, v: &Value, line: usize, key: &str) -> Result<String, Error> {
        match v {
            Value::FromSecret(name) => self
                .opts
                .secrets
                .get(name)
                .cloned()
                .ok_or_else(|| Error::new(&self.wf.file, line, key, ErrorKind::MissingSecret(name.clone()))),
            Value::Plain(serde_json::Value::String(s)) => Ok(s.clone()),
            Value::Plain(serde_json::Value::Array(items)) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
                Ok(items.iter().map(plain).collect::<Vec<_>>().join(","))
            }
            Value::Plain(other) => Ok(plain(other)),
        }
    }
}

/// A JSON value as a setting: strings bare, everything else as JSON.
fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}
