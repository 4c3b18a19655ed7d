//! The `preflight` subcommand: parse flags, resolve the connection, run
//! `backend::preflight`, print the report, exit non-zero when a check failed.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::backend::preflight::{Options, preflight};
use crate::kube::config::{Overrides, redact_userinfo};
use crate::kube::retry::RetryPolicy;
use crate::kube::{Client, ClientOptions, Config};

const USAGE: &str = "\
Usage: woodpecker-k8s-agent preflight [OPTIONS]

Checks that the cluster is reachable, we are authenticated, the namespace exists, RBAC allows
every call the agent makes, and the storage class fits STORAGE_RWX. Prints one line per check;
exits 1 when a check failed.

Options:
  --kubeconfig FILE       kubeconfig to use (default: KUBECONFIG, ~/.kube/config, in-cluster)
  --context NAME          kubeconfig context (default: the current context)
  --namespace NAME        where steps run (default: WOODPECKER_BACKEND_K8S_NAMESPACE or woodpecker)
  --storage-class NAME    the workflow volume's class (default: WOODPECKER_BACKEND_K8S_STORAGE_CLASS,
                          else the cluster default)
  --storage-rwx BOOL      ReadWriteMany volumes (default: WOODPECKER_BACKEND_K8S_STORAGE_RWX or true)
  --namespace-per-org     check the per-organisation namespace mode's cluster-wide permissions
  -h, --help              print this help
";

/// What the user asked for: where to connect, and what to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub options: Options,
    pub help: bool,
}

/// Parses flags over the `WOODPECKER_BACKEND_K8S_*` settings that `env` provides.
pub fn parse(args: Vec<OsString>, env: impl Fn(&str) -> Option<String>) -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut options = Options::from_env(env)?;
    let mut out = Args {
        kubeconfig: None,
        context: None,
        options: Options::default(),
        help: false,
    };
    let mut parser = lexopt::Parser::from_args(args);
    let text = |parser: &mut lexopt::Parser, flag: &str| -> Result<String, String> {
        let value = parser.value().map_err(|e| format!("{flag}: {e}"))?;
        value
            .into_string()
            .map_err(|v| format!("{flag}: `{}` is not UTF-8", v.to_string_lossy()))
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("kubeconfig") => out.kubeconfig = Some(text(&mut parser, "--kubeconfig")?.into()),
            Long("context") => out.context = Some(text(&mut parser, "--context")?),
            Long("namespace") | Short('n') => options.namespace = text(&mut parser, "--namespace")?,
            Long("storage-class") => options.storage_class = text(&mut parser, "--storage-class")?,
            Long("storage-rwx") => {
                let v = text(&mut parser, "--storage-rwx")?;
                options.storage_rwx = match v.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(format!("--storage-rwx: `{v}` is not true or false")),
                };
            }
            Long("namespace-per-org") => options.namespace_per_org = true,
            Long("help") | Short('h') => out.help = true,
            _ => return Err(format!("preflight: {}", arg.unexpected())),
        }
    }
    if options.namespace.is_empty() {
        return Err("--namespace: the namespace must not be empty".into());
    }
    out.options = options;
    Ok(out)
}

pub fn run(args: Vec<OsString>) -> super::Result {
    let args = parse(args, |k| std::env::var(k).ok())?;
    if args.help {
        print!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let overrides = Overrides {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespace: None,
    };
    let config = Config::infer(&overrides)?;
    // Answer within seconds: preflight is run by people waiting for it, and at agent start.
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            max_attempts: 3,
            max_retry_after: Duration::from_secs(5),
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    };
    let server = redact_userinfo(&config.server);
    let client = Client::with_options(config, options)?;
    let report = super::runtime()?.block_on(preflight(&client, &args.options));
    // A closed stdout (`| head`) must not turn the verdict into a panic: the exit code carries it.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "preflight of {server}, namespace `{}`\n{report}", args.options.namespace);
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn flags_override_the_environment() {
        let env = |k: &str| match k {
            "WOODPECKER_BACKEND_K8S_NAMESPACE" => Some("from-env".to_string()),
            "WOODPECKER_BACKEND_K8S_STORAGE_CLASS" => Some("nfs".to_string()),
            _ => None,
        };
        let parsed = parse(
            args(&[
                "--kubeconfig",
                "/k",
                "--context=dev",
                "-n",
                "ci",
                "--storage-rwx",
                "false",
            ]),
            env,
        )
        .unwrap();
        assert_eq!(parsed.kubeconfig, Some(PathBuf::from("/k")));
        assert_eq!(parsed.context.as_deref(), Some("dev"));
        assert_eq!(parsed.options.namespace, "ci");
        assert_eq!(parsed.options.storage_class, "nfs");
        assert!(!parsed.options.storage_rwx);
        let defaults = parse(args(&[]), env).unwrap();
        assert_eq!(defaults.options.namespace, "from-env");
        assert!(defaults.options.storage_rwx);
    }

    #[test]
    fn bad_flags_say_which() {
        let none = |_: &str| None;
        assert!(
            parse(args(&["--storage-rwx", "maybe"]), none)
                .unwrap_err()
                .contains("--storage-rwx")
        );
        assert!(parse(args(&["--bogus"]), none).unwrap_err().contains("--bogus"));
        assert!(parse(args(&["--namespace"]), none).unwrap_err().contains("--namespace"));
        assert!(
            parse(args(&["--namespace", ""]), none)
                .unwrap_err()
                .contains("must not be empty")
        );
    }
}
