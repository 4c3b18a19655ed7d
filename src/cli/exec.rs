//! The `exec` subcommand: read workflow files, compile them, and either print them
//! (`--dry-run`) or run them through the runtime on a cluster (or the embedded simulated one):
//! each workflow after those it depends on, independent ones at the same time (bounded by
//! `--max-workflows`), printing logs, a live status line, a summary, and with `--report` a
//! JSON result. Which workflows run, and after what, follows Woodpecker's builder and queue
//! ([`plan`], [`execute`]). Ctrl-C/SIGTERM cancel: the runtime removes every object before we
//! exit. This file is the I/O shell; the work is in `crate::pipeline`.

mod args;
mod cluster;
mod lease;
mod output;
mod schedule;
mod text;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::backend::WorkflowConfig;
use crate::pipeline::compile::{self, CompileOptions, Compiled};
use crate::pipeline::env::Metadata;
use crate::pipeline::error::Warning;
use crate::pipeline::files;
use crate::pipeline::runtime::logs::MASK;
use crate::pipeline::yaml::{self, Workflow};
use crate::shutdown::{self, Shutdown};

pub use args::{ExecArgs, parse_duration};
pub use output::{FlowStatus, Printer};
pub use schedule::execute;

/// One workflow of the run: what was written, and what becomes of it.
pub struct Planned {
    pub workflow: Workflow,
    pub fate: Fate,
    /// The checkout the workflow file belongs to.
    pub repo_dir: std::path::PathBuf,
    /// Compiled once before a run, so that what is prepared (the workspace claim) and what
    /// runs are the same workflow.
    pub compiled: Option<Compiled>,
}

/// What becomes of a planned workflow.
pub enum Fate {
    /// It runs once the workflows it depends on (by name) have ended, if they ended in a way
    /// its `runs_on` accepts (`on_success`, `on_failure`). It compiled without error; it is
    /// compiled again, with `opts`, when it is printed or run, so that a run holds one
    /// compiled workflow at a time where it can (a 27-item matrix of thousands of steps).
    Run {
        opts: Box<CompileOptions>,
        depends_on: Vec<String>,
        on_success: bool,
        on_failure: bool,
    },
    /// Left out before anything runs, and why (its `when:`, a missing dependency, no steps).
    Left(String),
}

impl Planned {
    /// Whether it runs.
    pub fn runs(&self) -> bool {
        matches!(self.fate, Fate::Run { .. })
    }

    /// The compiled workflow (it compiled in [`plan`] already, so this does not fail there).
    pub fn compile(&self) -> Option<Compiled> {
        if let Some(c) = &self.compiled {
            return Some(c.clone());
        }
        match &self.fate {
            Fate::Run { opts, .. } => compile::compile(&self.workflow, opts).ok().flatten(),
            Fate::Left(_) => None,
        }
    }
}

/// The workflows of a run and the warnings about their files.
pub struct Plan {
    pub workflows: Vec<Planned>,
    pub warnings: Vec<Warning>,
}

pub fn run(argv: Vec<OsString>) -> super::Result {
    let args = args::parse(argv)?;
    if args.help {
        print!("{}", args::HELP);
        return Ok(ExitCode::SUCCESS);
    }
    let plan = plan(&args, &|name| std::env::var(name).ok())?;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let plan = plan.workflows;
    if !plan.iter().any(Planned::runs) {
        for p in &plan {
            if let Fate::Left(why) = &p.fate {
                eprintln!("# {}: {why}", label(&p.workflow));
            }
        }
        return Err("no workflow to run: every one was left out (see above; --event selects by event)".into());
    }
    if args.dry_run {
        use std::io::Write;
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        for p in &plan {
            match &p.fate {
                Fate::Run { depends_on, .. } => {
                    if depends_on.is_empty() {
                        eprintln!("# {}", label(&p.workflow));
                    } else {
                        eprintln!("# {} (after {})", label(&p.workflow), depends_on.join(", "));
                    }
                    let Some(mut compiled) = p.compile() else { continue };
                    mask(&mut compiled.config);
                    serde_json::to_writer_pretty(&mut out, &compiled.config)?;
                    out.write_all(b"\n")?;
                }
                Fate::Left(why) => eprintln!("# {}: {why}", label(&p.workflow)),
            }
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut plan = plan;
    for p in &mut plan {
        p.compiled = p.compile();
    }
    let rt = super::runtime()?;
    let ok = rt.block_on(async {
        let mut tasks = JoinSet::new();
        let cancel = signals(&mut tasks, !args.embedded);
        let printer = Arc::new(Printer::new(Box::new(std::io::stdout()), stdout_is_tty()));
        let result = if args.embedded {
            embedded(&args, plan, printer.clone(), cancel).await
        } else {
            cluster::on_cluster(&args, plan, printer.clone(), cancel).await
        };
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        if let (Ok(_), Some(path)) = (&result, &args.report) {
            let json = serde_json::to_string_pretty(&printer.report()).unwrap_or_default();
            std::fs::write(path, json + "\n").map_err(|e| format!("--report {}: {e}", path.display()))?;
        }
        result
    })?;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Runs on a simulated cluster started here, whose host runner runs each step's commands on
/// this machine (no images are pulled) with the workspace volume bound at `/woodpecker`.
#[cfg(feature = "sim")]
async fn embedded(
    args: &ExecArgs,
    plan: Vec<Planned>,
    printer: Arc<Printer>,
    cancel: Shutdown,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    use sim::{RunnerKind, Sim, SimConfig};
    let sim = Sim::start(SimConfig {
        runner: RunnerKind::Host,
        // Services run until the workflow ends (their images' entrypoints are not run).
        run_until_deleted_label: Some(crate::backend::labels::SERVICE.into()),
        ..SimConfig::default()
    })
    .await?;
    printer.say(&format!(
        "embedded cluster at {} (host runner: step commands run on this machine, not in their images)",
        sim.url()
    ));
    let namespace = cluster::backend_options(args, true)?.namespace;
    if let Some(repo) = plan.first().map(|p| p.repo_dir.clone()) {
        let copied = cluster::seed_workspaces(&sim, &namespace, &plan, &repo)?;
        if copied > 0 {
            printer.say(&format!(
                "workspace: {copied} tracked files of {} copied in",
                repo.display()
            ));
        }
    }
    let result = cluster::with_config(sim.kube_config(), true, args, plan, printer, cancel).await;
    sim.shutdown().await;
    result
}

#[cfg(not(feature = "sim"))]
async fn embedded(
    _args: &ExecArgs,
    _plan: Vec<Planned>,
    _printer: Arc<Printer>,
    _cancel: Shutdown,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    Err("--embedded needs the simulated cluster; this binary was built without the `sim` feature".into())
}

/// The workflow's name with its matrix values.
fn label(wf: &Workflow) -> String {
    if wf.axis.is_empty() {
        wf.name.clone()
    } else {
        format!("{} ({})", wf.name, yaml::axis_label(&wf.axis))
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Finds, loads and compiles the workflows, and decides which run after which, as
/// Woodpecker's builder does: files in name order, one workflow per matrix item; a workflow
/// its `when:` excludes, or with no step left, is left out (and does not take a number); then
/// a workflow whose required `depends_on` names no workflow of the run is left out, and so is
/// what requires it. `getenv` reads the process environment (secrets not given with `--secret`).
pub fn plan(
    args: &ExecArgs,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, Box<dyn std::error::Error + Send + Sync>> {
    let cwd = std::env::current_dir()?;
    let paths = files::discover(args.path.as_deref(), Path::new("."))?;
    let repo_dir = repo_dir(&paths[0], &cwd);
    let mut meta = Metadata::from_git(&repo_dir);
    if let Some(url) = &args.repo_url {
        meta.apply_remote(url);
    }
    if let Some(event) = &args.event {
        meta.event = event.clone();
    }
    meta.cron = args.cron.clone().unwrap_or_default();
    meta.deploy_to = args.deploy_to.clone().unwrap_or_default();
    if let Some(branch) = &args.branch {
        meta.commit_branch = branch.clone();
        meta.commit_ref = format!("refs/heads/{branch}");
    }
    meta.machine = hostname();
    let defaults = CompileOptions::default();
    let workspace = format!("{}/{}", defaults.workspace_base, defaults.workspace_path);
    let mut workflows = Vec::new();
    let mut warnings = Vec::new();
    for path in &paths {
        // `${VAR}` sees the metadata as the workflow will (its name included).
        let mut subst_env = meta.environ(&yaml::workflow_name(path), 0, &workspace);
        subst_env.extend(args.env.clone());
        let lookup = |name: &str| subst_env.get(name).cloned();
        let loaded = yaml::load_file(path, &lookup)?;
        workflows.extend(loaded.workflows);
        warnings.extend(loaded.warnings);
    }
    let mut fates: Vec<Fate> = Vec::with_capacity(workflows.len());
    let mut number = 1;
    for wf in &workflows {
        let opts = CompileOptions {
            meta: meta.clone(),
            secrets: secrets_for(wf, args, getenv),
            env: args.env.clone(),
            workflow_number: number,
            ..Default::default()
        };
        let fate = match compile::check(wf, &opts)? {
            None => Fate::Left("skipped: its `when:` does not match".into()),
            Some(0) => Fate::Left("skipped: no step of it runs".into()),
            Some(_) => {
                number += 1;
                let (on_success, on_failure) = compile::workflow_runs_on(wf, &opts);
                Fate::Run {
                    opts: Box::new(opts),
                    depends_on: Vec::new(),
                    on_success,
                    on_failure,
                }
            }
        };
        fates.push(fate);
    }
    // Which of the runnable workflows keep their dependencies.
    let runnable: Vec<usize> = (0..workflows.len())
        .filter(|&i| matches!(fates[i], Fate::Run { .. }))
        .collect();
    let items: Vec<(&str, &[yaml::Dep])> = runnable
        .iter()
        .map(|&i| (workflows[i].name.as_str(), workflows[i].depends_on.as_slice()))
        .collect();
    for (k, result) in files::filter_missing(&items).into_iter().enumerate() {
        let i = runnable[k];
        match result {
            Ok(left) => {
                if let Fate::Run { depends_on, .. } = &mut fates[i] {
                    *depends_on = left;
                }
            }
            Err(d) => {
                let why = if workflows.iter().any(|w| w.name == d.missing) {
                    format!(
                        "left out: it depends on `{}`, which does not run (make it `{{name: {}, optional: true}}` to run without it)",
                        d.missing, d.missing
                    )
                } else {
                    format!(
                        "left out: it depends on `{}`, which is no workflow of this run",
                        d.missing
                    )
                };
                fates[i] = Fate::Left(why);
            }
        }
    }
    let deps: Vec<(&str, &[String])> = workflows
        .iter()
        .zip(&fates)
        .filter_map(|(w, f)| match f {
            Fate::Run { depends_on, .. } => Some((w.name.as_str(), depends_on.as_slice())),
            Fate::Left(_) => None,
        })
        .collect();
    if let Some(names) = files::cycle(&deps) {
        let file = workflows
            .iter()
            .find(|w| w.name == names[0])
            .map(|w| w.file.clone())
            .unwrap_or_default();
        return Err(crate::pipeline::PipelineError::invalid(
            &file,
            0,
            "depends_on",
            format!("workflows depend on each other in a cycle: {}", names.join(", ")),
        )
        .into());
    }
    let workflows = workflows
        .into_iter()
        .zip(fates)
        .map(|(workflow, fate)| Planned {
            workflow,
            fate,
            repo_dir: repo_dir.clone(),
            compiled: None,
        })
        .collect();
    Ok(Plan { workflows, warnings })
}

/// The secrets a workflow names, from `--secret` or the environment; every `--secret` is known
/// to the pipeline (and masked in logs), used or not.
fn secrets_for(wf: &Workflow, args: &ExecArgs, getenv: &dyn Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    let mut secrets = BTreeMap::new();
    for name in compile::secret_names(wf) {
        let value = args
            .secrets
            .get(&name)
            .or_else(|| args.secrets.get(&name.to_lowercase()))
            .cloned()
            .or_else(|| getenv(&name))
            .or_else(|| getenv(&name.to_uppercase()));
        if let Some(v) = value {
            secrets.insert(name, v);
        }
    }
    for (k, v) in &args.secrets {
        secrets.entry(k.clone()).or_insert_with(|| v.clone());
    }
    secrets
}

/// The checkout a pipeline belongs to: the folder holding the file, or above `.woodpecker/`.
fn repo_dir(first: &Path, cwd: &Path) -> std::path::PathBuf {
    let dir = first
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| cwd.to_path_buf());
    if dir.file_name().is_some_and(|n| n == ".woodpecker") {
        return dir.parent().map(Path::to_path_buf).unwrap_or(dir);
    }
    dir
}

/// The config with every secret value replaced, for printing.
pub fn masked(config: &WorkflowConfig) -> WorkflowConfig {
    let mut c = config.clone();
    mask(&mut c);
    c
}

/// Replaces every secret value of a config, in place.
pub fn mask(c: &mut WorkflowConfig) {
    for s in &mut c.secrets {
        s.value = MASK.into();
    }
    for step in c.stages.iter_mut().flat_map(|s| &mut s.steps) {
        let keys: Vec<String> = step.secret_mapping.keys().cloned().collect();
        for k in keys {
            step.secret_mapping.insert(k.clone(), MASK.into());
            step.environment.insert(k, MASK.into());
        }
        if !step.auth_config.password.is_empty() {
            step.auth_config.password = MASK.into();
        }
    }
}

/// Fires on Ctrl-C or SIGTERM. With `second_exits`, a second one exits at once, without the
/// clean-up the first started (which waits for the cluster, and the cluster may be gone): what
/// the run created is then reaped by a later `exec` or agent once the run's Lease runs out.
/// (The embedded cluster's clean-up is local and ends the steps' processes, so there a second
/// signal only says it is under way.) The task is owned by `tasks`.
pub fn signals(tasks: &mut JoinSet<()>, second_exits: bool) -> Shutdown {
    let (trigger, shutdown) = shutdown::channel();
    let signals = shutdown::Signals::install();
    tasks.spawn(async move {
        let Ok(mut signals) = signals else {
            return std::future::pending().await;
        };
        signals.next().await;
        let again = if second_exits { " (again to exit at once)" } else { "" };
        eprintln!("\ncanceling: stopping the running steps and removing every object{again}...");
        trigger.fire();
        loop {
            signals.next().await;
            if second_exits {
                eprintln!(
                    "exiting without the clean-up: a later `exec` or agent in this namespace removes what this run created once its lease runs out"
                );
                std::process::exit(130);
            }
            eprintln!("still canceling: stopping the steps' processes");
        }
    });
    shutdown
}

/// Whether stdout is a terminal (colours and a status line) and colours are wanted.
pub fn stdout_is_tty() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::types::SecretValue;
    use crate::backend::{Stage, Step};

    #[test]
    fn masked_hides_every_secret_value() {
        let step = Step {
            environment: [("TOKEN".to_string(), "s3cr3t".to_string()), ("A".into(), "b".into())].into(),
            secret_mapping: [("TOKEN".to_string(), "s3cr3t".to_string())].into(),
            ..Default::default()
        };
        let c = WorkflowConfig {
            stages: vec![Stage { steps: vec![step] }],
            secrets: vec![SecretValue {
                name: "token".into(),
                value: "s3cr3t".into(),
            }],
            ..Default::default()
        };
        let json = serde_json::to_string(&masked(&c)).unwrap();
        assert!(!json.contains("s3cr3t"), "{json}");
        assert!(json.contains(r#""TOKEN":"********""#) && json.contains(r#""A":"b""#));
    }

    #[test]
    fn repo_dir_is_above_the_woodpecker_folder() {
        let cwd = Path::new("/x");
        assert_eq!(repo_dir(Path::new("/r/.woodpecker/a.yaml"), cwd), Path::new("/r"));
        assert_eq!(repo_dir(Path::new("/r/ci.yaml"), cwd), Path::new("/r"));
        assert_eq!(repo_dir(Path::new("ci.yaml"), cwd), Path::new("/x"));
    }
}
