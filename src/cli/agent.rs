//! The `agent` subcommand (the default): set up the process log, read the `WOODPECKER_*`
//! settings, connect to the server and run its workflows until SIGTERM/SIGINT, then drain (a
//! second signal cancels the running workflows at once) and exit 0; an error is a fatal log line
//! and exit 1, as with the Go agent. `agent ping` GETs the health endpoint (the container
//! image's healthcheck).

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::agent::config::{self, AgentConfig};
use crate::agent::idstore::IdStore;
use crate::agent::lease;
use crate::agent::{Agent, PipelineRunner};
use crate::backend::Options;
use crate::backend::lifecycle::{self, KubeBackend, KubeIo};
use crate::backend::preflight;
use crate::backend::reaper;
use crate::log;
use crate::shutdown::{self, Shutdown};
use kube::config::Overrides;

const HELP: &str = "\
Usage: woodpecker-k8s-agent agent [ping]

Connects to a Woodpecker server (protocol 16, server 3.14 or newer) and runs its workflows as
Kubernetes pods. Configured like woodpecker-agent, by environment variables:
  WOODPECKER_SERVER (localhost:9000), WOODPECKER_AGENT_SECRET or WOODPECKER_AGENT_SECRET_FILE,
  WOODPECKER_GRPC_SECURE (false), WOODPECKER_GRPC_SKIP_VERIFY (unset: verify),
  WOODPECKER_MAX_WORKFLOWS (1), WOODPECKER_AGENT_SINGLE_WORKFLOW (false),
  WOODPECKER_AGENT_LABELS (k=v,...), WOODPECKER_HOSTNAME, WOODPECKER_AGENT_CONFIG_FILE
  (/etc/woodpecker/agent.conf), WOODPECKER_HEALTHCHECK (true), WOODPECKER_HEALTHCHECK_ADDR
  (:3000), WOODPECKER_LOG_LEVEL (info), WOODPECKER_LOG_FILE (stderr), WOODPECKER_DEBUG_PRETTY,
  WOODPECKER_DEBUG_NOCOLOR, WOODPECKER_KEEPALIVE_TIME, WOODPECKER_KEEPALIVE_TIMEOUT,
  WOODPECKER_RETRY_TIMEOUT (2m), WOODPECKER_CONNECT_RETRY_COUNT (5),
  WOODPECKER_CONNECT_RETRY_DELAY (2s), WOODPECKER_DRAIN_TIMEOUT (5m), plus the backend's
  WOODPECKER_BACKEND_K8S_* settings.

`ping` exits 0 when the running agent's /healthz answers 200.
";

pub fn run(args: Vec<OsString>) -> super::Result {
    let mut parser = lexopt::Parser::from_args(args);
    let mut ping = false;
    while let Some(arg) = parser.next()? {
        match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => {
                print!("{HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            lexopt::Arg::Value(v) if v == "ping" => ping = true,
            other => return Err(other.unexpected().into()),
        }
    }
    // Like the Go agent, every line is a log line, the last words included: zerolog's JSON until
    // the log settings are read, then theirs; an error ends the process as `log.Fatal` does.
    log::set_format(log::LogFormat::Json);
    match run_agent(ping) {
        Ok(code) => Ok(code),
        Err(err) => {
            log::log(
                log::Level::FATAL,
                &[("error", log::LogValue::Str(&crate::error_chain::one_line(err.as_ref())))],
                format_args!("error running agent"),
            );
            Ok(ExitCode::from(1))
        }
    }
}

fn run_agent(ping: bool) -> super::Result {
    let env = |k: &str| std::env::var(k).ok();
    // SAFETY: isatty only inspects the descriptor.
    let stdout_is_terminal = unsafe { libc::isatty(1) } == 1;
    let log_config = config::log_config(&env, stdout_is_terminal)?;
    log::init(&log_config)?;
    let rt = super::runtime()?;
    if ping {
        // Only the address matters here (the image's healthcheck has no agent secret).
        let addr = env("WOODPECKER_HEALTHCHECK_ADDR").filter(|a| !a.is_empty());
        return rt.block_on(self::ping(addr.as_deref().unwrap_or(":3000")));
    }
    log::info(format_args!("log level: {}", log_config.level.name()));
    log::log(
        log::Level::INFO,
        &[("version", log::LogValue::Str(env!("CARGO_PKG_VERSION")))],
        format_args!("Starting Woodpecker agent"),
    );
    let settings = AgentConfig::from_env(env, &os_hostname())?;
    for line in settings.start_warnings(&env) {
        log::warn(format_args!("{line}"));
    }
    // Every setting is checked before anything connects.
    let opts = Options::from_lookup(env)?;
    // The agent label on every object this agent creates, what the start-up sweep removes and
    // the name of its Lease: the hostname, so run the agent with a stable one (a StatefulSet's
    // pod name, or WOODPECKER_HOSTNAME), and one per replica.
    let backend_settings = lifecycle::LifecycleSettings::from_lookup(&settings.hostname, env)?;
    let reap = reaper::ReaperSettings::from_lookup(env)?;
    let kube_config = kube::Config::infer(&Overrides::default())?;
    rt.block_on(async move {
        let client = kube::Client::new(kube_config)?;
        crate::metrics::global().watch_client(&client);
        // Preflight at start (issue 6): findings go to the log, and the agent runs on either
        // way: a cluster briefly unreachable at start must not crash-loop the pod.
        let checks = preflight::PreflightOptions::from_backend(&opts);
        log_preflight(&preflight::preflight(&client, &checks).await);
        // The first signal drains; a second one cancels the running workflows at once. A lost
        // Lease does both: another process now runs as this agent.
        let (trigger, shutdown) = shutdown::channel();
        let (cancel_trigger, cancel_now) = shutdown::channel();
        let (stop_lease, lease_stop) = shutdown::channel();
        let (lost_trigger, lost) = shutdown::channel();
        let signals = tokio::spawn(on_signals(
            shutdown::Signals::install()?,
            lost,
            [trigger, cancel_trigger],
        ));
        let held = match hold_lease(&client, &opts, &settings, &reap, shutdown.clone()).await? {
            Held::Yes(held) => Some(held),
            Held::Unavailable => None,
            Held::Signalled => return Ok(ExitCode::SUCCESS),
        };
        if let Some(h) = &held {
            tokio::spawn(h.clone().keep(lease_stop.clone()));
            let mut lost = h.lost();
            tokio::spawn(async move {
                lost.wait().await;
                lost_trigger.fire();
            });
        }
        let (base_ns, per_org) = (opts.namespace.clone(), opts.namespace_per_org);
        let (stop_backend, backend_shutdown) = shutdown::channel();
        let kube = KubeIo::new(client);
        let (backend, swept) = KubeBackend::start(kube.clone(), opts, backend_settings, backend_shutdown).await?;
        if swept > 0 {
            log::info(format_args!(
                "removed {swept} objects left by an earlier run of this agent"
            ));
        }
        // Leftovers of agents whose Lease ran out: at start, then every interval.
        let reaper = held.as_ref().map(|_| {
            let objects_ns = (!per_org).then_some(base_ns.as_str());
            let r = reaper::Reaper::new(kube.clone(), &base_ns, objects_ns, &settings.hostname, reap);
            tokio::spawn(r.run(lease_stop.clone()))
        });
        // WOODPECKER_AGENT_CONFIG_FILE set empty still means stateless, as with the Go agent.
        let ids = match &held {
            Some(lease) if settings.config_file.is_some() => IdStore::Lease {
                lease: lease.clone(),
                file: settings.config_file.clone(),
            },
            _ => IdStore::File(settings.config_file.clone()),
        };
        let agent = Agent::start_with(settings, Arc::new(PipelineRunner::new(Arc::new(backend))), ids).await?;
        let rotate = tokio::spawn(log::reopen_on_sigusr1());
        agent.run_with(shutdown, cancel_now).await;
        stop_backend.fire();
        stop_lease.fire();
        if let Some(r) = reaper {
            let _ = r.await;
        }
        signals.abort();
        rotate.abort();
        if let Some(h) = held {
            if let Some(why) = h.why_lost() {
                return Err(format!("lost lease {}: {why}", h.describe()).into());
            }
            h.release().await;
        }
        Ok(ExitCode::SUCCESS)
    })
}

enum Held {
    Yes(Arc<lease::Held>),
    /// RBAC without leases: the agent runs as before, unprotected.
    Unavailable,
    /// SIGTERM/SIGINT while waiting for another holder.
    Signalled,
}

/// Takes this agent's Lease, waiting while another live process holds it.
async fn hold_lease(
    client: &kube::Client,
    opts: &Options,
    settings: &AgentConfig,
    reap: &reaper::ReaperSettings,
    shutdown: Shutdown,
) -> Result<Held, Box<dyn std::error::Error + Send + Sync>> {
    let lease_opts = lease::LeaseOptions {
        namespace: opts.namespace.clone(),
        agent: settings.hostname.clone(),
        holder: reaper::Holder::Agent,
        identity: lease::process_identity(&os_hostname()),
        duration: reap.lease_duration,
    };
    let identity = lease_opts.identity.clone();
    // SIGTERM while waiting ends the wait.
    let result = lease::acquire(client.clone(), lease_opts, shutdown).await;
    match result {
        Ok(Some(held)) => {
            log::info(format_args!("holding lease {} as {identity}", held.describe()));
            Ok(Held::Yes(held))
        }
        Ok(None) => {
            log::info(format_args!("stopped while waiting for the lease"));
            Ok(Held::Signalled)
        }
        Err(e) if e.is_forbidden() => {
            log::error(format_args!(
                "{}: forbidden; running without a Lease: a second process with this identity is not \
                 detected and leftovers of crashed agents are not reaped (grant leases get, list, create, \
                 update and delete in {}: deploy/base/role.yaml)",
                crate::error_chain::one_line(&e),
                opts.namespace
            ));
            Ok(Held::Unavailable)
        }
        Err(e) => Err(e.into()),
    }
}

/// One log line per check that is not plainly ok, and the verdict.
fn log_preflight(report: &preflight::Report) {
    for check in &report.checks {
        match &check.outcome {
            preflight::CheckOutcome::Ok(text) => log::debug(format_args!("preflight {}: {text}", check.name)),
            preflight::CheckOutcome::Warn(text) => log::warn(format_args!("preflight {}: {text}", check.name)),
            preflight::CheckOutcome::Fail(text) => log::error(format_args!("preflight {}: {text}", check.name)),
        }
    }
    match report.failures().count() {
        0 => log::info(format_args!("preflight passed ({} checks)", report.checks.len())),
        n => log::error(format_args!(
            "preflight failed {n} of {} checks; steps may fail until this is fixed \
             (`woodpecker-k8s-agent preflight` shows the report)",
            report.checks.len()
        )),
    }
}

/// Fires each trigger on the next SIGTERM or SIGINT, in order; a lost Lease fires both.
async fn on_signals(mut signals: shutdown::Signals, mut lost: Shutdown, triggers: [shutdown::Trigger; 2]) {
    for trigger in &triggers {
        tokio::select! {
            _ = signals.next() => trigger.fire(),
            _ = lost.wait() => {
                log::error(format_args!("the agent's lease was lost: cancelling the running workflows and stopping"));
                triggers.iter().for_each(shutdown::Trigger::fire);
                return;
            }
        }
    }
}

async fn ping(addr: &str) -> super::Result {
    let addr = if addr.starts_with(':') {
        format!("127.0.0.1{addr}")
    } else {
        addr.to_owned()
    };
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect to the health endpoint {addr}: {e}"))?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    let status = reply.lines().next().unwrap_or_default().to_owned();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(format!("{addr}/healthz answered `{status}`").into())
    }
}

fn os_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
