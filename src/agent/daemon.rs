//! The agent process: start up (secret, TLS, Auth, Version check, RegisterAgent, agent-id file),
//! then run: health reports every 10 s, token refresh, the report queue, the health endpoint,
//! and one slot per permit of WOODPECKER_MAX_WORKFLOWS (the permit is taken *before* Next, so
//! the agent never asks for more work than it can run). On shutdown: poll no more, let running
//! workflows finish until the drain time is over (then cancel them), flush the reports,
//! unregister if stateless, stop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::client::{CallError, Client};
use super::config::{self, AgentConfig};
use super::grpc::{Channel, ChannelOptions, Code};
use super::health;
use super::idstore::IdStore;
use super::reporter::Reporter;
use super::workflow::{self, WorkflowDeps, WorkflowRunner};
use super::{proto, tls};
use crate::log;
use crate::shutdown::{self, Shutdown};

/// Log bytes the report queue holds while the server is unreachable (then lines are dropped).
const MAX_QUEUED_LOG_BYTES: usize = 64 << 20;

#[derive(Debug)]
pub enum DaemonError {
    AgentConfig(config::AgentConfigError),
    Tls(tls::TlsError),
    HealthBind { addr: String, source: std::io::Error },
    Connect(CallError),
    VersionMismatch { server: i32, server_version: String },
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonError::AgentConfig(_) => write!(f, "agent settings"),
            DaemonError::Tls(_) => write!(f, "TLS for the gRPC connection"),
            DaemonError::HealthBind { addr, .. } => write!(f, "listen on WOODPECKER_HEALTHCHECK_ADDR {addr}"),
            DaemonError::Connect(_) => write!(f, "connect to the Woodpecker server"),
            DaemonError::VersionMismatch { server, server_version } => write!(
                f,
                "GRPC version mismatch: the server (Woodpecker {server_version}) speaks protocol {server}, this agent speaks {} (Woodpecker 3.14 or newer)",
                proto::VERSION
            ),
        }
    }
}

impl std::error::Error for DaemonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DaemonError::AgentConfig(e) => Some(e),
            DaemonError::Tls(e) => Some(e),
            DaemonError::HealthBind { source, .. } => Some(source),
            DaemonError::Connect(e) => Some(e),
            DaemonError::VersionMismatch { .. } => None,
        }
    }
}

/// A connected, registered agent, ready to [`Agent::run`].
pub struct Agent<R> {
    settings: AgentConfig,
    shared: Arc<WorkflowDeps<R>>,
    stateful: bool,
    health_listener: Option<TcpListener>,
}

impl<R: WorkflowRunner> Agent<R> {
    /// Everything up to RegisterAgent; a failure here is a clear error at start. The agent id
    /// is kept in `WOODPECKER_AGENT_CONFIG_FILE`.
    pub async fn start(settings: AgentConfig, runner: Arc<R>) -> Result<Agent<R>, DaemonError> {
        let ids = IdStore::File(settings.config_file.clone());
        Self::start_with(settings, runner, ids).await
    }

    /// [`Agent::start`], with the agent id kept in `ids` (the agent's Lease in a cluster).
    pub async fn start_with(settings: AgentConfig, runner: Arc<R>, ids: IdStore) -> Result<Agent<R>, DaemonError> {
        log::set_level(settings.log_level);
        let secret = settings.secret.load().map_err(DaemonError::AgentConfig)?;
        let tls = match settings.grpc_secure {
            true => Some(tls::client_config(settings.grpc_verify, None).map_err(DaemonError::Tls)?),
            false => None,
        };
        let channel = Channel::new(ChannelOptions {
            address: settings.server.clone(),
            tls,
            keepalive_time: settings.keepalive_time,
            keepalive_timeout: settings.keepalive_timeout,
        });
        let agent_id = ids.read().await;
        let client = Arc::new(Client::new(
            channel,
            secret,
            settings.hostname.clone(),
            agent_id,
            settings.retry_timeout,
        ));
        let health_listener = match settings.healthcheck {
            true => Some(
                health::bind(&settings.healthcheck_addr)
                    .await
                    .map_err(|source| DaemonError::HealthBind {
                        addr: settings.healthcheck_addr.clone(),
                        source,
                    })?,
            ),
            false => None,
        };
        // WOODPECKER_CONNECT_RETRY_COUNT attempts in all, as the Go agent makes.
        let mut attempt = 1;
        let stateful = loop {
            match handshake(&client, &settings, &ids).await {
                Ok(stateful) => break stateful,
                Err(DaemonError::Connect(e))
                    if matches!(e.status.code, Code::Unavailable | Code::DeadlineExceeded)
                        && attempt < settings.connect_attempts =>
                {
                    log::log(
                        log::Level::WARN,
                        &[("error", log::LogValue::Str(&e.status.to_string()))],
                        format_args!(
                            "cannot connect to {}, retrying in {:?} (attempt {attempt} of {})",
                            settings.server, settings.connect_retry_delay, settings.connect_attempts
                        ),
                    );
                    attempt += 1;
                    tokio::time::sleep(settings.connect_retry_delay).await;
                }
                Err(e) => return Err(e),
            }
        };
        log::info(format_args!(
            "registered as agent {} with {} (capacity {})",
            client.agent_id(),
            settings.server,
            settings.max_workflows
        ));
        let shared = Arc::new(WorkflowDeps {
            client,
            reporter: Arc::new(Reporter::new(MAX_QUEUED_LOG_BYTES)),
            runner,
            health: Arc::new(health::HealthState::default()),
            hostname: settings.hostname.clone(),
            platform: settings.platform.clone(),
            extend_interval: settings.extend_interval,
        });
        Ok(Agent {
            settings,
            shared,
            stateful,
            health_listener,
        })
    }

    pub fn agent_id(&self) -> i64 {
        self.shared.client.agent_id()
    }

    /// Where the health endpoint listens (`None` when WOODPECKER_HEALTHCHECK=false).
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Runs until `shutdown` fires and every running workflow has ended.
    pub async fn run(self, shutdown: Shutdown) {
        self.run_with(shutdown, Shutdown::never()).await
    }

    /// [`Agent::run`], where `cancel_now` ends the drain early (a second SIGTERM): running
    /// workflows are canceled at once instead of after the drain time.
    pub async fn run_with(self, mut shutdown: Shutdown, mut cancel_now: Shutdown) {
        let Agent {
            settings,
            shared,
            stateful,
            health_listener,
        } = self;
        let (stop_trigger, stop) = shutdown::channel();
        let mut background = JoinSet::new();
        if let Some(listener) = health_listener {
            background.spawn(health::serve(listener, shared.health.clone(), stop.clone()));
        }
        let (sh, mut st, every) = (shared.clone(), stop.clone(), settings.health_interval);
        background.spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = sh.client.report_health(&st).await {
                            log::warn(format_args!("health report failed: {}", e.status));
                        }
                    }
                    _ = st.wait() => return,
                }
            }
        });
        let (sh, st, every) = (shared.clone(), stop.clone(), settings.token_refresh);
        background.spawn(async move { sh.client.refresh_loop(every, st).await });
        let (sh, st, every) = (shared.clone(), stop.clone(), settings.log_flush_interval);
        background.spawn(async move { sh.reporter.run(&sh.client, every, st).await });

        let labels = filter_labels(&settings);
        let (drain_trigger, drain) = shutdown::channel();
        let (abandon_trigger, abandon) = shutdown::channel();
        let permits = Arc::new(Semaphore::new(settings.max_workflows as usize));
        let mut slots = JoinSet::new();
        loop {
            if settings.single_workflow && !slots.is_empty() {
                // WOODPECKER_AGENT_SINGLE_WORKFLOW: one workflow (or one failed poll), then stop.
                tokio::select! {
                    _ = async { while slots.join_next().await.is_some() {} } => {
                        log::info(format_args!("shutdown single workflow runner"));
                    }
                    _ = shutdown.wait() => {}
                }
                break;
            }
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                _ = shutdown.wait() => break,
            };
            while slots.try_join_next().is_some() {}
            let (sh, labels, sd) = (shared.clone(), labels.clone(), shutdown.clone());
            let (drain, abandon) = (drain.clone(), abandon.clone());
            let backoff = settings.error_backoff;
            slots.spawn(async move {
                slot(&sh, &labels, sd, drain, abandon, backoff).await;
                drop(permit);
            });
        }

        let running = shared.health.running_count();
        log::info(format_args!(
            "shutting down: no new work; waiting up to {:?} for {running} running workflow(s)",
            settings.drain_timeout
        ));
        let drained = tokio::select! {
            _ = async { while slots.join_next().await.is_some() {} } => true,
            _ = tokio::time::sleep(settings.drain_timeout) => false,
            _ = cancel_now.wait() => false,
        };
        if !drained {
            drain_trigger.fire();
            // Canceled workflows clean up and report; if the server is unreachable their
            // reports could retry for minutes each, so after a while they stop trying.
            let reported = tokio::time::timeout(settings.abandon_after, async {
                while slots.join_next().await.is_some() {}
            })
            .await;
            if reported.is_err() {
                log::warn(format_args!("giving up on reports the server did not take"));
                abandon_trigger.fire();
                while slots.join_next().await.is_some() {}
            }
        }
        if !abandon.is_fired() {
            let _ = tokio::time::timeout(settings.abandon_after, shared.reporter.flush()).await;
        }
        if !stateful {
            match shared.client.unregister().await {
                Ok(()) => log::info(format_args!("unregistered agent {}", shared.client.agent_id())),
                Err(e) => log::warn(format_args!("unregister failed: {}", e.status)),
            }
        }
        stop_trigger.fire();
        while background.join_next().await.is_some() {}
        log::info(format_args!("stopped"));
    }
}

/// Auth, persist the id, check the version, register, persist again. `Ok(stateful)`.
async fn handshake(client: &Client, settings: &AgentConfig, ids: &IdStore) -> Result<bool, DaemonError> {
    let id = client.auth().await.map_err(DaemonError::Connect)?;
    let mut stored = ids.write(id).await;
    let version = client.version().await.map_err(DaemonError::Connect)?;
    if version.grpc_version != proto::VERSION {
        return Err(DaemonError::VersionMismatch {
            server: version.grpc_version,
            server_version: version.server_version,
        });
    }
    log::debug(format_args!("server version {}", version.server_version));
    let info = proto::AgentInfo {
        platform: settings.platform.clone(),
        capacity: settings.max_workflows as i32,
        backend: "kubernetes".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        custom_labels: settings.labels.clone(),
    };
    let id = client.register(info).await.map_err(DaemonError::Connect)?;
    if stored.is_ok() {
        stored = ids.write(id).await;
    }
    match (&stored, ids) {
        (Ok(()), _) => {}
        (Err(_), IdStore::File(None)) => log::info(format_args!(
            "WOODPECKER_AGENT_CONFIG_FILE is empty: the agent is stateless and unregisters on exit"
        )),
        (Err(why), _) => log::warn(format_args!("{why}; the agent is stateless and unregisters on exit")),
    }
    Ok(stored.is_ok())
}

/// The default filter labels, overridden by the custom ones (`cmd/agent/core/agent.go`).
pub fn filter_labels(settings: &AgentConfig) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("hostname".to_owned(), settings.hostname.clone()),
        ("platform".to_owned(), settings.platform.clone()),
        ("backend".to_owned(), "kubernetes".to_owned()),
        ("repo".to_owned(), "*".to_owned()),
    ]);
    labels.extend(settings.labels.clone());
    labels
}

/// One permit's worth of work: one Next, and the workflow it returns.
async fn slot<R: WorkflowRunner>(
    sh: &WorkflowDeps<R>,
    labels: &BTreeMap<String, String>,
    mut shutdown: Shutdown,
    drain: Shutdown,
    abandon: Shutdown,
    backoff: std::time::Duration,
) {
    sh.health.polling.fetch_add(1, Relaxed);
    let next = sh.client.next(labels, &shutdown).await;
    sh.health.polling.fetch_sub(1, Relaxed);
    match next {
        Ok(None) => return,
        Ok(Some(wf)) => {
            let id = wf.id.clone();
            match workflow::run(sh, wf, drain, abandon).await {
                Ok(()) => return,
                Err(e) => log::error(format_args!("workflow {id}: init failed, not taken: {}", e.status)),
            }
        }
        Err(e) => log::error(format_args!("polling for work failed: {}", e.status)),
    }
    // As the Go agent: pause after a failed Next or Init before polling again.
    tokio::select! {
        _ = tokio::time::sleep(backoff) => {}
        _ = shutdown.wait() => {}
    }
}
