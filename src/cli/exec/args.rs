//! `exec`'s flags: what the user typed, checked, no I/O.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub const HELP: &str = "\
Run a local pipeline on a cluster, or on the built-in simulated one with --embedded.

Usage: woodpecker-k8s-agent exec [PATH] [OPTIONS]

PATH is a workflow file or a folder of them (default: .woodpecker/, .woodpecker.yaml,
.woodpecker.yml). Workflows run after the workflows they depend on; independent ones run at
the same time (see --max-workflows), their log lines prefixed with workflow/step.

Options:
      --embedded            run on the simulated cluster (steps run on this host)
      --dry-run             print the compiled workflows (Woodpecker's backend JSON) and exit
      --secret NAME=VALUE   a secret for from_secret (else $NAME from the environment)
      --env K=V             an extra variable for every step
      --event EVENT         the pipeline event (default: manual)
      --branch BRANCH       the commit branch (default: the checkout's, else main)
      --cron NAME           the cron job's name, for `when: cron` (with --event cron)
      --deploy-to ENV       the deployment target (CI_PIPELINE_DEPLOY_TARGET)
      --parallelism N       most steps running at once per workflow (default: no bound)
      --max-workflows N     most workflows running at once (default: 4; 0: no bound)
      --report FILE         write the result as JSON: workflows and steps, status, exit code
      --timeout D           per-workflow timeout, e.g. 90s, 30m, 1h (default: 1h)
      --repo-url URL        clone from URL (without it, and without a git remote, no clone step)
      --kubeconfig FILE     kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, in-cluster)
      --context NAME        kubeconfig context
      --namespace NS        namespace for the pods (default: woodpecker)
  -h, --help                print this help
";

#[derive(Debug, Clone, PartialEq)]
pub struct ExecArgs {
    pub path: Option<PathBuf>,
    pub embedded: bool,
    pub dry_run: bool,
    pub secrets: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    pub event: Option<String>,
    pub branch: Option<String>,
    pub cron: Option<String>,
    pub deploy_to: Option<String>,
    pub parallelism: usize,
    pub max_workflows: usize,
    pub report: Option<PathBuf>,
    pub timeout: Duration,
    pub repo_url: Option<String>,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub help: bool,
}

impl Default for ExecArgs {
    fn default() -> Self {
        ExecArgs {
            path: None,
            embedded: false,
            dry_run: false,
            secrets: BTreeMap::new(),
            env: BTreeMap::new(),
            event: None,
            branch: None,
            cron: None,
            deploy_to: None,
            parallelism: 0,
            max_workflows: 4,
            report: None,
            timeout: Duration::from_secs(3600),
            repo_url: None,
            kubeconfig: None,
            context: None,
            namespace: None,
            help: false,
        }
    }
}

/// `30s`, `5m`, `1h`, `1h30m`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a duration (like 90s, 30m, 1h)"))?;
        num.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(format!("`{s}` is not a duration (like 90s, 30m, 1h)")),
        };
    }
    if !num.is_empty() || total == 0 {
        return Err(format!("`{s}` is not a duration (like 90s, 30m, 1h)"));
    }
    Ok(Duration::from_secs(total))
}

fn pair(flag: &str, v: String) -> Result<(String, String), String> {
    match v.split_once('=') {
        Some((k, val)) if !k.is_empty() => Ok((k.to_owned(), val.to_owned())),
        _ => Err(format!("{flag} expects NAME=VALUE")),
    }
}

pub fn parse(args: Vec<OsString>) -> Result<ExecArgs, String> {
    use lexopt::prelude::*;
    let mut out = ExecArgs::default();
    let mut p = lexopt::Parser::from_args(args);
    let string = |v: Result<OsString, lexopt::Error>, flag: &str| -> Result<String, String> {
        v.map_err(|e| e.to_string())?
            .into_string()
            .map_err(|_| format!("{flag}: not valid UTF-8"))
    };
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("embedded") => out.embedded = true,
            Long("dry-run") => out.dry_run = true,
            Long("secret") => {
                let (k, v) = pair("--secret", string(p.value(), "--secret")?)?;
                out.secrets.insert(k, v);
            }
            Long("env") => {
                let (k, v) = pair("--env", string(p.value(), "--env")?)?;
                out.env.insert(k, v);
            }
            Long("event") => out.event = Some(string(p.value(), "--event")?),
            Long("branch") => out.branch = Some(string(p.value(), "--branch")?),
            Long("cron") => out.cron = Some(string(p.value(), "--cron")?),
            Long("deploy-to") => out.deploy_to = Some(string(p.value(), "--deploy-to")?),
            Long("parallelism") => {
                let v = string(p.value(), "--parallelism")?;
                out.parallelism = v.parse().map_err(|_| format!("--parallelism: `{v}` is not a number"))?;
            }
            Long("max-workflows") => {
                let v = string(p.value(), "--max-workflows")?;
                out.max_workflows = v
                    .parse()
                    .map_err(|_| format!("--max-workflows: `{v}` is not a number"))?;
            }
            Long("report") => out.report = Some(PathBuf::from(p.value().map_err(|e| e.to_string())?)),
            Long("timeout") => out.timeout = parse_duration(&string(p.value(), "--timeout")?)?,
            Long("repo-url") => out.repo_url = Some(string(p.value(), "--repo-url")?),
            Long("kubeconfig") => out.kubeconfig = Some(PathBuf::from(p.value().map_err(|e| e.to_string())?)),
            Long("context") => out.context = Some(string(p.value(), "--context")?),
            Long("namespace") => out.namespace = Some(string(p.value(), "--namespace")?),
            Short('h') | Long("help") => out.help = true,
            Value(v) if out.path.is_none() => out.path = Some(PathBuf::from(v)),
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<ExecArgs, String> {
        parse(list.iter().map(OsString::from).collect())
    }

    #[test]
    fn parses_every_flag() {
        let a = args(&[
            "p.yaml",
            "--embedded",
            "--dry-run",
            "--secret",
            "a=b=c",
            "--env",
            "K=V",
            "--parallelism",
            "4",
            "--timeout",
            "1h30m",
            "--repo-url",
            "https://x/y.git",
            "--namespace",
            "ci",
            "--event",
            "push",
            "--max-workflows",
            "2",
            "--report",
            "out.json",
        ])
        .unwrap();
        assert_eq!(a.path, Some(PathBuf::from("p.yaml")));
        assert!(a.embedded && a.dry_run);
        assert_eq!(a.secrets["a"], "b=c");
        assert_eq!(a.env["K"], "V");
        assert_eq!((a.parallelism, a.timeout), (4, Duration::from_secs(5400)));
        assert_eq!(a.repo_url.as_deref(), Some("https://x/y.git"));
        assert_eq!((a.namespace.as_deref(), a.event.as_deref()), (Some("ci"), Some("push")));
        assert_eq!((a.max_workflows, a.report), (2, Some(PathBuf::from("out.json"))));
    }

    #[test]
    fn rejects_bad_values() {
        assert_eq!(
            args(&["--secret", "novalue"]).unwrap_err(),
            "--secret expects NAME=VALUE"
        );
        assert_eq!(
            args(&["--timeout", "soon"]).unwrap_err(),
            "`soon` is not a duration (like 90s, 30m, 1h)"
        );
        assert_eq!(
            args(&["--parallelism", "x"]).unwrap_err(),
            "--parallelism: `x` is not a number"
        );
        assert_eq!(args(&["a", "b"]).unwrap_err(), "unexpected argument \"b\"");
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
    }
}
