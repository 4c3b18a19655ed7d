//! The `preflight` subcommand: parse flags, resolve the connection, run
//! `backend::preflight`, print the report, exit non-zero when a check failed.

use std::error::Error as StdError;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::backend::options::{Flags, Options as BackendOptions};
use crate::backend::preflight::{PreflightOptions, preflight};
use kube::config::{Overrides, redact_userinfo};
use kube::retry::RetryPolicy;
use kube::{Client, ClientOptions, Config};

const USAGE: &str = "\
Usage: woodpecker-k8s-agent preflight [OPTIONS]

Checks that the cluster is reachable, we are authenticated, the namespace exists, RBAC allows
every call the agent makes, and the storage class fits STORAGE_RWX. Prints one line per check;
exits 1 when a check failed.

PreflightOptions:
  --kubeconfig FILE       kubeconfig to use (default: KUBECONFIG, ~/.kube/config, in-cluster)
  --context NAME          kubeconfig context (default: the current context)
  --namespace NAME        where steps run (default: WOODPECKER_BACKEND_K8S_NAMESPACE or woodpecker)
  --storage-class NAME    the workflow volume's class (default: WOODPECKER_BACKEND_K8S_STORAGE_CLASS,
                          else the cluster default)
  --storage-rwx BOOL      ReadWriteMany volumes (default: WOODPECKER_BACKEND_K8S_STORAGE_RWX or true)
  --namespace-per-org     check the per-organisation namespace mode's cluster-wide permissions
  --backend-k8s-*         any backend flag, as for `agent` (they are all validated)
  -h, --help              print this help
";

/// What the user asked for: where to connect, and what to check.
#[derive(Debug, Clone)]
pub struct PreflightArgs {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub options: PreflightOptions,
    pub help: bool,
}

/// Parses flags over the `WOODPECKER_BACKEND_K8S_*` settings that `env` provides. The short
/// flags are aliases of the backend's `--backend-k8s-*` flags, which are accepted too.
pub fn parse(
    args: Vec<OsString>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<PreflightArgs, Box<dyn StdError + Send + Sync>> {
    use lexopt::prelude::*;
    let mut flags = Flags::default();
    let mut out = PreflightArgs {
        kubeconfig: None,
        context: None,
        options: PreflightOptions::default(),
        help: false,
    };
    let mut parser = lexopt::Parser::from_args(args);
    let text = |parser: &mut lexopt::Parser, flag: &str| -> Result<String, String> {
        let value = parser.value().map_err(|e| format!("{flag}: {e}"))?;
        value
            .into_string()
            .map_err(|v| format!("{flag}: `{}` is not UTF-8", v.to_string_lossy()))
    };
    while let Some(arg) = parser.next()? {
        match arg {
            Long("kubeconfig") => out.kubeconfig = Some(text(&mut parser, "--kubeconfig")?.into()),
            Long("context") => out.context = Some(text(&mut parser, "--context")?),
            Long("help") | Short('h') => out.help = true,
            Long(flag @ ("namespace" | "storage-class" | "storage-rwx")) => {
                let flag = flag.to_string();
                let value = text(&mut parser, &format!("--{flag}"))?;
                flags.set(&flag, &value);
            }
            Short('n') => {
                let value = text(&mut parser, "--namespace")?;
                flags.set("namespace", &value);
            }
            Long("namespace-per-org") => {
                flags.set("namespace-per-org", "true");
            }
            Long(long) => {
                let long = long.to_string();
                if !flags.take(&long, &mut parser)? {
                    return Err(format!("preflight: unknown option --{long}; see --help").into());
                }
            }
            _ => return Err(format!("preflight: {}", arg.unexpected()).into()),
        }
    }
    let backend = BackendOptions::from_lookup(flags.over(env))?;
    out.options = PreflightOptions::from_backend(&backend);
    if out.options.namespace.is_empty() {
        return Err("--namespace: the namespace must not be empty".into());
    }
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
    let _ = writeln!(
        out,
        "preflight of {server}, namespace `{}`\n{report}",
        args.options.namespace
    );
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
        let err = |list: &[&str]| parse(args(list), none).unwrap_err().to_string();
        assert!(err(&["--storage-rwx", "maybe"]).contains("STORAGE_RWX"));
        assert!(err(&["--bogus"]).contains("--bogus"));
        assert!(err(&["--namespace"]).contains("--namespace"));
        assert!(err(&["--backend-k8s-volume-size", "ten"]).contains("VOLUME_SIZE"));
        let per_org = parse(
            args(&["--namespace-per-org", "--backend-k8s-storage-class", "nfs"]),
            none,
        )
        .unwrap();
        assert!(per_org.options.namespace_per_org);
        assert_eq!(per_org.options.storage_class, "nfs");
    }
}
