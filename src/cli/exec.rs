//! The `exec` subcommand: read workflow files, compile them, and either print them
//! (`--dry-run`) or run them one after another through the runtime on a cluster (or the
//! embedded simulated one), printing logs, a live status line and a summary. Ctrl-C/SIGTERM
//! cancel: the runtime removes every object before we exit. This file is the I/O shell; the
//! work is in `crate::pipeline`.

mod args;
mod cluster;
mod output;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::backend::{Backend, Config};
use crate::pipeline::compile::{self, Compiled, Options};
use crate::pipeline::env::Metadata;
use crate::pipeline::runtime::logs::MASK;
use crate::pipeline::yaml::{self, Workflow};
use crate::pipeline::{RuntimeOptions, files, run_workflow, ulid};
use crate::shutdown::{self, Shutdown};

pub use args::{Args, parse_duration};
pub use output::Printer;

/// One workflow of the run: what was written, and what it compiled to (`None`: its `when:`
/// excludes it).
pub struct Planned {
    pub workflow: Workflow,
    pub compiled: Option<Compiled>,
    /// The checkout the workflow file belongs to.
    pub repo_dir: std::path::PathBuf,
}

pub fn run(argv: Vec<OsString>) -> super::Result {
    let args = args::parse(argv)?;
    if args.help {
        print!("{}", args::HELP);
        return Ok(ExitCode::SUCCESS);
    }
    let plan = plan(&args, &|name| std::env::var(name).ok())?;
    if args.dry_run {
        for p in &plan {
            match &p.compiled {
                Some(c) => {
                    eprintln!("# {}", label(&p.workflow));
                    println!("{}", serde_json::to_string_pretty(&masked(&c.config))?);
                }
                None => eprintln!("# {}: skipped (its `when:` does not match)", label(&p.workflow)),
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rt = super::runtime()?;
    let ok = rt.block_on(async {
        let mut tasks = JoinSet::new();
        let cancel = signals(&mut tasks);
        let printer = Arc::new(Printer::new(Box::new(std::io::stdout()), stdout_is_tty()));
        let result = if args.embedded {
            embedded(&args, plan, printer, cancel).await
        } else {
            cluster::on_cluster(&args, plan, printer, cancel).await
        };
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        result
    })?;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Runs on a simulated cluster started here, whose host runner runs each step's commands on
/// this machine (no images are pulled) with the workspace volume bound at `/woodpecker`.
#[cfg(feature = "sim")]
async fn embedded(
    args: &Args,
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
    _args: &Args,
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

/// Finds, loads, orders and compiles the workflows. `getenv` reads the process environment
/// (secrets not given with `--secret`).
pub fn plan(
    args: &Args,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Planned>, Box<dyn std::error::Error + Send + Sync>> {
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
    let defaults = Options::default();
    let workspace = format!("{}/{}", defaults.workspace_base, defaults.workspace_path);
    let mut workflows = Vec::new();
    for path in &paths {
        // `${VAR}` sees the metadata as the workflow will (its name included).
        let mut subst_env = meta.environ(&yaml::workflow_name(path), 0, &workspace);
        subst_env.extend(args.env.clone());
        let lookup = |name: &str| subst_env.get(name).cloned();
        workflows.extend(yaml::load_file(path, &lookup)?);
    }
    let workflows = files::order(workflows)?;
    let mut out = Vec::with_capacity(workflows.len());
    for (i, wf) in workflows.into_iter().enumerate() {
        let mut secrets = std::collections::BTreeMap::new();
        for name in compile::secret_names(&wf) {
            let value = args
                .secrets
                .get(&name)
                .cloned()
                .or_else(|| getenv(&name))
                .or_else(|| getenv(&name.to_uppercase()));
            if let Some(v) = value {
                secrets.insert(name, v);
            }
        }
        // Every --secret is known to the pipeline (and masked in logs), used or not.
        for (k, v) in &args.secrets {
            secrets.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let opts = Options {
            meta: meta.clone(),
            secrets,
            env: args.env.clone(),
            workflow_number: i + 1,
            ..Default::default()
        };
        let compiled = compile::compile(&wf, &opts)?;
        out.push(Planned {
            workflow: wf,
            compiled,
            repo_dir: repo_dir.clone(),
        });
    }
    Ok(out)
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
pub fn masked(config: &Config) -> Config {
    let mut c = config.clone();
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
    c
}

/// Runs the planned workflows in order on `backend`; true when all that ran succeeded. A
/// workflow whose `depends_on` failed is not run.
pub async fn execute<B: Backend>(
    backend: Arc<B>,
    plan: Vec<Planned>,
    args: &Args,
    printer: Arc<Printer>,
    cancel: Shutdown,
) -> bool {
    let mut ticker = JoinSet::new();
    {
        let printer = printer.clone();
        ticker.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                printer.tick();
            }
        });
    }
    let mut ok = true;
    let mut failed: Vec<String> = Vec::new();
    for p in plan {
        let name = label(&p.workflow);
        if cancel.is_fired() {
            break;
        }
        let Some(compiled) = p.compiled else {
            printer.say(&format!("# {name}: skipped (its `when:` does not match)"));
            continue;
        };
        if let Some(dep) = p.workflow.depends_on.iter().find(|d| failed.contains(d)) {
            printer.say(&format!("# {name}: not run (it depends on `{dep}`, which failed)"));
            failed.push(p.workflow.name.clone());
            ok = false;
            continue;
        }
        printer.begin_workflow(&name, &compiled.config, &compiled.notes);
        let opts = RuntimeOptions {
            parallelism: args.parallelism,
            workflow_timeout: Some(args.timeout),
            ..Default::default()
        };
        let task = ulid::new().to_lowercase();
        let outcome = run_workflow(
            backend.clone(),
            compiled.config,
            task,
            opts,
            printer.clone(),
            cancel.clone(),
        )
        .await;
        if !outcome.success {
            ok = false;
            failed.push(p.workflow.name.clone());
            let why = match (&outcome.error, outcome.timed_out, outcome.canceled) {
                (Some(e), _, _) => format!("error: {e}"),
                (None, true, _) => format!("timed out after {}s", args.timeout.as_secs()),
                (None, false, true) => "canceled".into(),
                (None, false, false) => "failed".into(),
            };
            printer.say(&format!("# {name}: {why}"));
        }
    }
    ticker.abort_all();
    while ticker.join_next().await.is_some() {}
    printer.finish();
    ok
}

/// Fires on Ctrl-C or SIGTERM. The task is owned by `tasks`.
pub fn signals(tasks: &mut JoinSet<()>) -> Shutdown {
    let (trigger, shutdown) = shutdown::channel();
    let signals = shutdown::Signals::install();
    tasks.spawn(async move {
        match signals {
            Ok(mut signals) => signals.next().await,
            Err(_) => std::future::pending().await,
        }
        eprintln!("\ncanceling: stopping the running steps and removing every object...");
        trigger.fire();
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
        let c = Config {
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
