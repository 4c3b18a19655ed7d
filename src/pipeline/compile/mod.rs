//! A [`Workflow`] (what the user wrote) to a `backend::WorkflowConfig` (what the runtime runs), by
//! Woodpecker's compiler (`pipeline/frontend/yaml/compiler`): `when:` filters, the clone
//! step, services in their own stage, stages from `depends_on`, the `CI_*` environment,
//! `from_secret` (at the top of a value or nested in it), `settings:` to `PLUGIN_*` and
//! `environment:` by its `ParamsToEnv` rules, the plugin workspace, volumes, extra hosts.
//! Pure: secrets arrive resolved.

mod expr;
mod glob;
mod params;
mod stages;
pub(crate) mod when;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::backend::types::{HostAlias, Port, SecretValue};
use crate::backend::{Environment, Stage, Step, WorkflowConfig};
use crate::pipeline::env::Metadata;
use crate::pipeline::error::{ErrorKind, PipelineError};
use crate::pipeline::ulid;
use crate::pipeline::yaml::{Container, Value, Workflow};

/// Woodpecker's default clone plugin.
pub const CLONE_IMAGE: &str = "docker.io/woodpeckerci/plugin-git:2.6.5";

/// Where plugins find the workspace whatever `workspace.base` says (Woodpecker's
/// `pluginWorkspaceBase`: their entrypoints must not be shadowed).
pub const PLUGIN_WORKSPACE_BASE: &str = "/woodpecker";

/// Everything a compile needs beyond the workflow.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    pub meta: Metadata,
    /// Secret name -> value, for `from_secret`.
    pub secrets: BTreeMap<String, String>,
    /// Extra variables for every step (`--env`).
    pub env: BTreeMap<String, String>,
    pub workspace_base: String,
    pub workspace_path: String,
    pub clone_image: String,
    /// Running locally (`when: local: false` drops a step).
    pub local: bool,
    /// 1-based position of the workflow in the run.
    pub workflow_number: usize,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
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
    pub config: WorkflowConfig,
    /// e.g. why there is no clone step.
    pub notes: Vec<String>,
}

/// Every secret name a workflow refers to, with where (for resolving them up front).
pub fn secret_names(wf: &Workflow) -> Vec<String> {
    let all = wf.clone.iter().chain(&wf.services).chain(&wf.steps);
    let mut names: Vec<String> = Vec::new();
    for (_, v, _) in all.flat_map(|c| c.environment.iter().chain(&c.settings)) {
        match v {
            Value::FromSecret(n) => names.push(n.clone()),
            Value::Plain(json) => params::nested_secrets(json, &mut names),
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The environment and facts of one workflow: what `when:` is matched against.
fn workflow_env(wf: &Workflow, opts: &CompileOptions) -> (String, String, BTreeMap<String, String>) {
    let base = wf.workspace_base.clone().unwrap_or_else(|| opts.workspace_base.clone());
    let path = wf.workspace_path.clone().unwrap_or_else(|| opts.workspace_path.clone());
    let workspace = join(&base, &path);
    let mut env = opts.meta.environ(&wf.name, opts.workflow_number, &workspace);
    env.extend(opts.env.clone());
    (base, path, env)
}

/// Whether the workflow's own `when:` lets it run.
pub fn workflow_included(wf: &Workflow, opts: &CompileOptions) -> Result<bool, PipelineError> {
    let (_, _, env) = workflow_env(wf, opts);
    let mut when_env = env;
    when_env.extend(wf.axis.clone());
    let facts = when::Facts {
        meta: &opts.meta,
        axis: &wf.axis,
        env: &when_env,
    };
    when::included(&wf.when, &facts, true, &wf.file)
}

/// `(runs on success, runs on failure)` of a workflow after its dependencies: its `runs_on`
/// plus what its `when: status` adds, as Woodpecker's builder computes it (a workflow whose
/// `when` includes `failure` gets both, a quirk of Woodpecker kept on purpose).
pub fn workflow_runs_on(wf: &Workflow, opts: &CompileOptions) -> (bool, bool) {
    let (_, _, mut env) = workflow_env(wf, opts);
    env.extend(wf.axis.clone());
    let facts = when::Facts {
        meta: &opts.meta,
        axis: &wf.axis,
        env: &env,
    };
    let mut runs_on = wf.runs_on.clone();
    let (_, failure) = when::status(&wf.when, &facts, true);
    if failure && !wf.when.is_empty() {
        for s in ["failure", "success"] {
            if !runs_on.iter().any(|r| r == s) {
                runs_on.push(s.into());
            }
        }
    }
    let success = runs_on.is_empty() || runs_on.iter().any(|r| r == "success");
    (success, runs_on.iter().any(|r| r == "failure"))
}

/// Compiles one workflow; `None` when its own `when:` excludes it.
pub fn compile(wf: &Workflow, opts: &CompileOptions) -> Result<Option<Compiled>, PipelineError> {
    compile_as(wf, opts, Mode::Full)
}

/// What [`compile`] would say of a workflow, at a fraction of its cost: the same errors, and
/// the number of stages it would have (`None` when its `when:` excludes it); its steps are
/// built without the workflow's shared `CI_*` environment, which cannot fail. For a plan that
/// looks at every workflow before running any.
pub fn check(wf: &Workflow, opts: &CompileOptions) -> Result<Option<usize>, PipelineError> {
    Ok(compile_as(wf, opts, Mode::Check)?.map(|c| c.config.stages.len()))
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Full,
    Check,
}

fn compile_as(wf: &Workflow, opts: &CompileOptions, mode: Mode) -> Result<Option<Compiled>, PipelineError> {
    let (base, path, env) = workflow_env(wf, opts);
    let mut when_env = env.clone();
    when_env.extend(wf.axis.clone());
    let facts = when::Facts {
        meta: &opts.meta,
        axis: &wf.axis,
        env: &when_env,
    };
    if !when::included(&wf.when, &facts, true, &wf.file)? {
        return Ok(None);
    }
    let prefix = format!("wp_{}_{}", ulid::new().to_lowercase(), opts.workflow_number);
    let volume = format!("{prefix}_default");
    let ctx = StepCtx {
        wf,
        opts,
        base: &base,
        path: &path,
        volume: &volume,
        facts: &facts,
        mode,
        shared_env: Arc::new(env),
        shared_env_axis: Arc::new(when_env.clone()),
    };
    let mut config = WorkflowConfig {
        network: volume.clone(),
        volume: volume.clone(),
        ..Default::default()
    };
    let mut notes = Vec::new();

    if !wf.clone.is_empty() && !wf.skip_clone {
        for c in &wf.clone {
            if when::included(&c.when, &facts, false, &wf.file)? {
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
            steps: vec![ctx.default_clone()?],
        });
    }

    let mut services = Vec::new();
    for c in &wf.services {
        if when::included(&c.when, &facts, false, &wf.file)? {
            services.push(ctx.step(c, "service")?);
        }
    }
    if !services.is_empty() {
        config.stages.push(Stage { steps: services });
    }

    let mut kept: Vec<&Container> = Vec::with_capacity(wf.steps.len());
    for c in &wf.steps {
        if opts.local && !when::is_local(&c.when) {
            continue;
        }
        if when::included(&c.when, &facts, false, &wf.file)? {
            kept.push(c);
        }
    }
    let nodes: Vec<stages::StageNode<'_>> = kept
        .iter()
        .map(|c| stages::StageNode {
            name: &c.name,
            depends_on: c.depends_on.as_deref(),
            line: if c.depends_on_line > 0 {
                c.depends_on_line
            } else {
                c.line
            },
        })
        .collect();
    let levels = stages::stages(&nodes).map_err(|e| match e {
        stages::StageError::Unknown(step, line, dep) => {
            let why = if wf.steps.iter().any(|c| c.name == dep) {
                format!("depends on `{dep}`, which its `when:` excludes from this run (make it `{{name: {dep}, optional: true}}` to run without it)")
            } else {
                format!("depends on `{dep}`, which is not a step of this workflow")
            };
            PipelineError::invalid(&wf.file, line, &format!("steps.{step}.depends_on"), why)
        }
        stages::StageError::Cycle(names, line) => PipelineError::invalid(
            &wf.file,
            line,
            "steps",
            format!("depends_on has a cycle: {}", names.join(" -> ")),
        ),
        stages::StageError::Duplicate(name, line) => PipelineError::invalid(
            &wf.file,
            line,
            &format!("steps.{name}"),
            format!("step name `{name}` is used more than once; with depends_on, step names must be unique"),
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
    opts: &'a CompileOptions,
    base: &'a str,
    path: &'a str,
    volume: &'a str,
    facts: &'a when::Facts<'a>,
    mode: Mode,
    /// `env`, shared by every step's [`Environment`].
    shared_env: Arc<BTreeMap<String, String>>,
    /// `env` and the matrix values: what steps that are not plugins share.
    shared_env_axis: Arc<BTreeMap<String, String>>,
}

impl StepCtx<'_> {
    /// A step's frame: plugins see the workspace under [`PLUGIN_WORKSPACE_BASE`].
    fn blank(&self, name: &str, type_: &str, image: &str, plugin: bool) -> Step {
        let base = if plugin { PLUGIN_WORKSPACE_BASE } else { self.base };
        let workspace = join(base, self.path);
        // The shared variables cannot make a step fail, so a check goes without them.
        // A step's environment: the workflow's, its workspace, then (not for plugins) the
        // matrix values, each over the one before.
        let mut environment = match self.mode {
            Mode::Full if plugin => Environment::over(self.shared_env.clone()),
            Mode::Full => Environment::over(self.shared_env_axis.clone()),
            Mode::Check => Environment::default(),
        };
        if plugin || !self.wf.axis.contains_key("CI_WORKSPACE") {
            environment.insert("CI_WORKSPACE".into(), workspace.clone());
        }
        Step {
            name: name.to_owned(),
            uuid: match self.mode {
                Mode::Full => ulid::new(),
                Mode::Check => String::new(),
            },
            type_: type_.to_owned(),
            image: image.to_owned(),
            working_dir: workspace,
            workspace_base: base.to_owned(),
            environment,
            volumes: vec![format!("{}:{base}", self.volume)],
            on_success: true,
            failure: "fail".into(),
            workflow_labels: self.wf.labels.clone(),
            ..Default::default()
        }
    }

    fn default_clone(&self) -> Result<Step, PipelineError> {
        let mut settings = vec![(
            "depth".to_string(),
            Value::Plain(serde_json::Value::String("0".into())),
            0,
        )];
        if self.opts.meta.event == "tag" {
            settings.push(("tags".into(), Value::Plain(serde_json::Value::String("true".into())), 0));
        }
        let c = Container {
            name: "clone".into(),
            image: self.opts.clone_image.clone(),
            settings,
            ..Default::default()
        };
        self.step(&c, "clone")
    }

    /// `kind`: "clone", "service", or "" for a step (plugin or commands by its shape).
    fn step(&self, c: &Container, kind: &str) -> Result<Step, PipelineError> {
        let plugin = c.is_plugin();
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
        let mut s = self.blank(&c.name, type_, &c.image, plugin);
        let lookup = |name: &str| self.opts.secret(name);
        for (k, v, line) in &c.settings {
            let name = format!("PLUGIN_{}", k.to_uppercase().replace(['.', '-'], "_"));
            let key = format!("{section}.{}.settings.{k}", c.name);
            let (value, secret) = params::to_env(v, &lookup)
                .map_err(|missing| PipelineError::new(&self.wf.file, *line, &key, ErrorKind::MissingSecret(missing)))?;
            if secret {
                s.secret_mapping.insert(name.clone(), value.clone());
            }
            s.environment.insert(name, value);
        }
        for (k, v, line) in &c.environment {
            let key = format!("{section}.{}.environment.{k}", c.name);
            let (value, secret) = params::to_env(v, &lookup)
                .map_err(|missing| PipelineError::new(&self.wf.file, *line, &key, ErrorKind::MissingSecret(missing)))?;
            if secret {
                s.secret_mapping.insert(k.clone(), value.clone());
            }
            s.environment.insert(k.clone(), value);
        }
        s.pull = c.pull;
        s.privileged = c.privileged;
        s.detached = c.detach || kind == "service";
        s.commands = c.commands.clone();
        s.entrypoint = c.entrypoint.clone();
        s.volumes.extend(c.volumes.iter().cloned());
        if let Some(dir) = &c.directory {
            s.working_dir = join(&s.working_dir, dir);
        }
        s.ports = c
            .ports
            .iter()
            .map(|(n, p)| Port {
                number: *n,
                protocol: p.clone(),
            })
            .collect();
        for host in &c.extra_hosts {
            let Some((name, ip)) = host.split_once(':') else {
                return Err(PipelineError::invalid(
                    &self.wf.file,
                    c.line,
                    &format!("{section}.{}.extra_hosts", c.name),
                    format!("`{host}` is not NAME:IP"),
                ));
            };
            s.extra_hosts.push(HostAlias {
                name: name.into(),
                ip: ip.into(),
            });
        }
        s.dns = c.dns.clone();
        s.dns_search = c.dns_search.clone();
        s.devices = c.devices.clone();
        s.tmpfs = c.tmpfs.clone();
        s.network_mode = c.network_mode.clone();
        s.backend_options = c.backend_options.clone();
        (s.on_success, s.on_failure) = when::status(&c.when, self.facts, false);
        s.failure = c
            .failure
            .clone()
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "fail".into());
        Ok(s)
    }
}

impl CompileOptions {
    /// A secret's value: by name, else by its lower-case name (Woodpecker keys secrets so).
    fn secret(&self, name: &str) -> Option<String> {
        self.secrets
            .get(name)
            .or_else(|| self.secrets.get(&name.to_lowercase()))
            .cloned()
    }
}
