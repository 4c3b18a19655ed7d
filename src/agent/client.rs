//! Woodpecker's RPCs over a [`Channel`]: the access token (Auth, refresh before expiry and after
//! UNAUTHENTICATED), the per-call metadata (`token`, `hostname`, `proto-version`), and the retry
//! rules of the Go agent (`agent/rpc/client_grpc.go`): exponential backoff from 10 ms to 10 s,
//! on UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, DATA_LOSS and UNAUTHENTICATED, bounded by the
//! retry timeout. Knows the protocol's calls, not what a workflow is.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::grpc::{Channel, Code, Status};
use super::metrics;
use super::proto::{self, method};
use crate::Shutdown;
use kube::Secret;

pub struct Client {
    channel: Channel,
    secret: Secret,
    hostname: String,
    token: RwLock<Arc<Secret>>,
    /// Serialises re-authentication so that a burst of UNAUTHENTICATED answers auths once.
    auth_lock: tokio::sync::Mutex<()>,
    agent_id: std::sync::atomic::AtomicI64,
    retry_timeout: Option<Duration>,
}

/// A call that was given up: its method and the last status.
#[derive(Debug)]
pub struct CallError {
    pub method: &'static str,
    pub status: Status,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "call {}", self.method)
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.status)
    }
}

type Result<T> = std::result::Result<T, CallError>;

impl Client {
    pub fn new(
        channel: Channel,
        secret: Secret,
        hostname: String,
        agent_id: i64,
        retry_timeout: Option<Duration>,
    ) -> Client {
        Client {
            channel,
            secret,
            hostname,
            token: RwLock::new(Arc::new(Secret::default())),
            auth_lock: tokio::sync::Mutex::new(()),
            agent_id: agent_id.into(),
            retry_timeout,
        }
    }

    pub fn agent_id(&self) -> i64 {
        self.agent_id.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Exchanges the agent secret for an access token; returns the agent id the server resolved.
    pub async fn auth(&self) -> Result<i64> {
        let _guard = self.auth_lock.lock().await;
        self.auth_locked().await
    }

    async fn auth_locked(&self) -> Result<i64> {
        let req = proto::AuthRequest {
            agent_token: self.secret.expose().to_owned(),
            agent_id: self.agent_id(),
        };
        let resp: proto::AuthResponse = self
            .channel
            .unary(method::AUTH, &req, &[], Some(Duration::from_secs(5)))
            .await
            .map_err(|status| CallError {
                method: method::AUTH,
                status,
            })?;
        metrics::global().grpc_request(false);
        *self.token.write().expect("token lock") = Arc::new(Secret::new(resp.access_token));
        self.agent_id.store(resp.agent_id, std::sync::atomic::Ordering::Relaxed);
        Ok(resp.agent_id)
    }

    /// Re-authenticates unless another call already replaced the rejected token.
    async fn refresh_after_reject(&self, rejected: &Arc<Secret>) {
        let _guard = self.auth_lock.lock().await;
        if Arc::ptr_eq(&self.token.read().expect("token lock"), rejected)
            && let Err(e) = self.auth_locked().await
        {
            crate::log::warn(format_args!("re-authentication failed: {}", e.status));
        }
    }

    /// Refreshes the token every `every` (the JWT lives 1 h), retrying each second on failure.
    pub async fn refresh_loop(&self, every: Duration, mut shutdown: Shutdown) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait() => return,
            }
            while let Err(e) = self.auth().await {
                crate::log::warn(format_args!("token refresh failed, retrying in 1s: {}", e.status));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.wait() => return,
                }
            }
        }
    }

    /// One attempt of a token-carrying call; an UNAUTHENTICATED answer refreshes the token
    /// (once) and is returned for the caller's retry loop to repeat.
    async fn call_once<Req, Resp>(
        &self,
        path: &'static str,
        req: &Req,
        deadline: Option<Duration>,
    ) -> std::result::Result<Resp, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let token = self.token.read().expect("token lock").clone();
        let metadata = [
            ("token", token.expose()),
            ("hostname", self.hostname.as_str()),
            ("proto-version", "16"),
        ];
        let result = self.channel.unary(path, req, &metadata, deadline).await;
        metrics::global().grpc_request(result.is_err());
        if let Err(status) = &result
            && status.code == Code::Unauthenticated
        {
            self.refresh_after_reject(&token).await;
        }
        result
    }

    /// Retries a call as the Go agent does. `cancel` firing gives up at once (`Ok(None)`).
    async fn call_retry<Req, Resp>(
        &self,
        path: &'static str,
        req: &Req,
        deadline: Option<Duration>,
        cancel: &Shutdown,
    ) -> Result<Option<Resp>>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let start = Instant::now();
        let mut delay = Duration::from_millis(10);
        let mut cancel = cancel.clone();
        loop {
            let attempt = tokio::select! {
                r = self.call_once(path, req, deadline) => r,
                _ = cancel.wait() => return Ok(None),
            };
            let status = match attempt {
                Ok(resp) => return Ok(Some(resp)),
                Err(status) => status,
            };
            let out_of_time = self.retry_timeout.is_some_and(|t| start.elapsed() + delay > t);
            if !status.code.is_retryable() || out_of_time {
                return Err(CallError { method: path, status });
            }
            crate::log::debug(format_args!("{path} failed, retrying in {delay:?}: {status}"));
            tokio::select! {
                _ = tokio::time::sleep(jitter(delay)) => {}
                _ = cancel.wait() => return Ok(None),
            }
            delay = (delay.mul_f64(1.5)).min(Duration::from_secs(10));
        }
    }

    /// Not retried (as in Go); checked against [`proto::VERSION`] by the caller.
    pub async fn version(&self) -> Result<proto::VersionResponse> {
        let r = self
            .call_once(method::VERSION, &proto::Empty {}, Some(Duration::from_secs(30)))
            .await;
        r.map_err(|status| CallError {
            method: method::VERSION,
            status,
        })
    }

    pub async fn register(&self, info: proto::AgentInfo) -> Result<i64> {
        let req = proto::RegisterAgentRequest { info: Some(info) };
        let r: std::result::Result<proto::RegisterAgentResponse, _> = self
            .call_once(method::REGISTER_AGENT, &req, Some(Duration::from_secs(30)))
            .await;
        let id = r
            .map_err(|status| CallError {
                method: method::REGISTER_AGENT,
                status,
            })?
            .agent_id;
        self.agent_id.store(id, std::sync::atomic::Ordering::Relaxed);
        Ok(id)
    }

    pub async fn unregister(&self) -> Result<()> {
        let r: std::result::Result<proto::Empty, _> = self
            .call_once(method::UNREGISTER_AGENT, &proto::Empty {}, Some(Duration::from_secs(5)))
            .await;
        r.map(|_| ()).map_err(|status| CallError {
            method: method::UNREGISTER_AGENT,
            status,
        })
    }

    pub async fn report_health(&self, cancel: &Shutdown) -> Result<()> {
        let req = proto::ReportHealthRequest {
            status: proto::ALIVE.into(),
        };
        self.call_retry::<_, proto::Empty>(method::REPORT_HEALTH, &req, Some(Duration::from_secs(10)), cancel)
            .await
            .map(|_| ())
    }

    /// The long poll. `Ok(None)`: nothing assigned (or canceled); poll again.
    pub async fn next(
        &self,
        labels: &std::collections::BTreeMap<String, String>,
        cancel: &Shutdown,
    ) -> Result<Option<proto::WorkflowMessage>> {
        let req = proto::NextRequest {
            filter: Some(proto::Filter { labels: labels.clone() }),
        };
        let resp: Option<proto::NextResponse> = self.call_retry(method::NEXT, &req, None, cancel).await?;
        Ok(resp.and_then(|r| r.workflow))
    }

    pub async fn init(&self, id: &str, state: proto::WorkflowState, cancel: &Shutdown) -> Result<()> {
        let req = proto::InitRequest {
            id: id.into(),
            state: Some(state),
        };
        self.call_retry::<_, proto::Empty>(method::INIT, &req, Some(Duration::from_secs(30)), cancel)
            .await
            .map(|_| ())
    }

    /// Blocks until the server cancels (`true`) or releases (`false`) the workflow.
    pub async fn wait(&self, id: &str, cancel: &Shutdown) -> Result<Option<bool>> {
        let req = proto::WaitRequest { id: id.into() };
        let resp: Option<proto::WaitResponse> = self.call_retry(method::WAIT, &req, None, cancel).await?;
        Ok(resp.map(|r| r.canceled))
    }

    pub async fn done(&self, id: &str, state: proto::WorkflowState, cancel: &Shutdown) -> Result<()> {
        let req = proto::DoneRequest {
            id: id.into(),
            state: Some(state),
        };
        self.call_retry::<_, proto::Empty>(method::DONE, &req, Some(Duration::from_secs(30)), cancel)
            .await
            .map(|_| ())
    }

    pub async fn extend(&self, id: &str, cancel: &Shutdown) -> Result<()> {
        let req = proto::ExtendRequest { id: id.into() };
        self.call_retry::<_, proto::Empty>(method::EXTEND, &req, Some(Duration::from_secs(30)), cancel)
            .await
            .map(|_| ())
    }

    pub async fn update(&self, id: &str, state: proto::StepStateMessage, cancel: &Shutdown) -> Result<()> {
        let req = proto::UpdateRequest {
            id: id.into(),
            state: Some(state),
        };
        self.call_retry::<_, proto::Empty>(method::UPDATE, &req, Some(Duration::from_secs(30)), cancel)
            .await
            .map(|_| ())
    }

    pub async fn log(&self, entries: Vec<proto::LogEntry>, cancel: &Shutdown) -> Result<()> {
        let req = proto::LogRequest { log_entries: entries };
        self.call_retry::<_, proto::Empty>(method::LOG, &req, Some(Duration::from_secs(30)), cancel)
            .await
            .map(|_| ())
    }
}

/// Backoff jitter of ±50 % (the Go library's default randomisation factor 0.5).
fn jitter(d: Duration) -> Duration {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 1];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    d.mul_f64(0.5 + f64::from(b[0]) / 255.0)
}
