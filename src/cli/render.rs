//! The `render` subcommand: prints every Kubernetes object the backend would create for a
//! workflow given in Woodpecker's backend JSON format, using the agent options from the
//! environment and `--backend-k8s-*` flags, without contacting a cluster. Output is a `v1 List`
//! in JSON or multi-document YAML, deterministic (no timestamps or uids). Warnings about ignored
//! step options go to stderr. Secret values are always printed as `[REDACTED]`.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use crate::backend::options::{self, Flags, Options};

mod yaml;
use crate::backend::{WorkflowConfig, render};

const USAGE: &str = "\
Usage: woodpecker-k8s-agent render WORKFLOW.json [OPTIONS]

Prints the objects the Kubernetes backend would create for a workflow (Woodpecker's backend
JSON, as the server sends it). Agent options come from WOODPECKER_BACKEND_K8S_* or the flags.

Options:
  --task-uuid ID     the task id (default: the workflow id from the volume name)
  --agent NAME       the agent label value (default: none)
  -o, --output FMT   json (a v1 List, default) or yaml (one document per object)
  -h, --help         this help

Backend options (flag, then environment variable):
";

/// What can go wrong; Display names the step, the cause is the source.
#[derive(Debug)]
enum RenderError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Decode {
        path: PathBuf,
        source: crate::go::json::JsonError,
    },
    Options(options::OptionsError),
    Build(crate::backend::BuildError),
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::Read { path, .. } => write!(f, "read workflow {}", path.display()),
            RenderError::Decode { path, .. } => {
                write!(f, "decode workflow {} (Woodpecker backend JSON)", path.display())
            }
            RenderError::Options(_) => write!(f, "backend options"),
            RenderError::Build(_) => write!(f, "build objects"),
        }
    }
}

impl std::error::Error for RenderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RenderError::Read { source, .. } => Some(source),
            RenderError::Decode { source, .. } => Some(source),
            RenderError::Options(e) => Some(e),
            RenderError::Build(e) => Some(e),
        }
    }
}

struct Args {
    workflow: PathBuf,
    task: Option<String>,
    agent: String,
    yaml: bool,
    flags: Flags,
}

fn parse_args(args: Vec<OsString>) -> Result<Option<Args>, lexopt::Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let (mut workflow, mut task, mut agent, mut yaml) = (None, None, String::new(), false);
    let mut flags = Flags::default();
    while let Some(arg) = p.next()? {
        match arg {
            Long("task-uuid") => task = Some(p.value()?.string()?),
            Long("agent") => agent = p.value()?.string()?,
            Short('o') | Long("output") => {
                yaml = match p.value()?.string()?.as_str() {
                    "json" => false,
                    "yaml" => true,
                    other => return Err(format!("unknown output format {other:?} (json or yaml)").into()),
                }
            }
            Short('h') | Long("help") => return Ok(None),
            Long(l) => {
                let l = l.to_string();
                if !flags.take(&l, &mut p)? {
                    return Err(Long(&l).unexpected());
                }
            }
            Value(v) if workflow.is_none() => workflow = Some(PathBuf::from(v)),
            other => return Err(other.unexpected()),
        }
    }
    let workflow = workflow.ok_or("missing WORKFLOW.json (see --help)")?;
    Ok(Some(Args {
        workflow,
        task,
        agent,
        yaml,
        flags,
    }))
}

pub fn run(args: Vec<OsString>) -> super::Result {
    let Some(args) = parse_args(args)? else {
        print!("{USAGE}{}", options::usage());
        return Ok(ExitCode::SUCCESS);
    };
    let text = std::fs::read(&args.workflow).map_err(|source| RenderError::Read {
        path: args.workflow.clone(),
        source,
    })?;
    let conf: WorkflowConfig = crate::go::json::from_slice(&text).map_err(|source| RenderError::Decode {
        path: args.workflow.clone(),
        source,
    })?;
    let opts = Options::from_lookup(args.flags.over(|k| std::env::var(k).ok())).map_err(RenderError::Options)?;
    let task = args.task.unwrap_or_else(|| render::default_task(&conf));
    let rendered = render::workflow(&conf, &task, &opts, &args.agent, true).map_err(RenderError::Build)?;
    for w in &rendered.warnings {
        eprintln!("warning: {w}");
    }
    let out = if args.yaml {
        rendered.objects.iter().map(yaml::document).collect::<String>()
    } else {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": rendered.objects});
        let mut s = serde_json::to_string_pretty(&list).expect("a Value always serialises");
        s.push('\n');
        s
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
