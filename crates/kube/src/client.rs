//! HTTPS transport to one apiserver: hyper-util's pooled client over hyper-rustls (ring) over
//! our TCP/CONNECT connector, and for container logs a connection of their own spoken by `h1`
//! (no hyper, rustls' unbuffered API: a fraction of the buffers, see there). Adds credentials
//! (re-asked once after a 401), retries by [`RetryPolicy`], a connect timeout and a request
//! timeout for ordinary calls, and a read-idle limit (no overall deadline) for watch and log
//! streams, the same on both transports. Turns non-2xx replies into typed [`Error::Api`].
//! Knows paths only as strings; which resource they name is `api`'s job.
//!
//! HTTP/1.1 only, on purpose: each watch or log stream gets its own connection, so one stuck
//! stream cannot stall the others, and dead connections are found by TCP keepalive and the
//! per-stream idle limit (the spec's "HTTP/1.1 + idle deadlines" option).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::ServerName;

use super::auth::Credentials;
use super::config::{Config, TlsConfig};
use super::connector::{Connector, Proxy};
use super::error::{BoxError, Error, Result, status_from_body};
use super::h1;
use super::retry::{Backoff, Outcome, RetryPolicy, retry_after};
use super::tls;

/// Largest non-streamed reply body we read (a big LIST).
const MAX_BODY: usize = 64 << 20;
/// The most hyper buffers of one connection's incoming bytes (see `Client::new`).
pub const HTTP_READ_BUF: usize = 16 << 10;
/// The most idle connections the pool keeps. A burst of parallel calls (every step of a wide
/// workflow creating its pod at once) opens one connection per call; without a cap each stayed
/// for the idle timeout with its buffers (about 30 KB of heap each: hyper's write buffer and
/// dispatch channel, rustls' state). Calls outside such bursts need a few at most.
pub const POOL_IDLE: usize = 4;

/// Timeouts and retries. The defaults suit the agent; tests shorten them.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// TCP connect (+ proxy CONNECT). client-go dials with 30 s.
    pub connect_timeout: Duration,
    /// One attempt of an ordinary call, from sending to the last body byte; for streams, until
    /// the reply head.
    pub request_timeout: Duration,
    /// A log stream with no bytes for this long is treated as dropped (and resumed). Watches
    /// use their `timeoutSeconds` + 5 s instead.
    pub log_idle_timeout: Duration,
    pub retry: RetryPolicy,
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            log_idle_timeout: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            user_agent: concat!("woodpecker-k8s-agent/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// A cheap-to-clone handle to one apiserver; clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// What a client and its clones have done so far, for the caller's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Request attempts (a retried request counts once per attempt).
    pub requests: u64,
    /// Attempts that did not end in a 2xx reply.
    pub errors: u64,
    /// Watches re-opened after a failure (by any [`crate::watch::Watcher`] on this client).
    pub watch_restarts: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
    pub(crate) watch_restarts: AtomicU64,
}

struct Inner {
    http: HyperClient<HttpsConnector<Connector>, Full<Bytes>>,
    /// `scheme://authority[/prefix]`, no trailing slash.
    base: String,
    namespace: String,
    credentials: Credentials,
    /// Impersonation headers, sent with every request.
    impersonate: Vec<(http::HeaderName, http::HeaderValue)>,
    options: ClientOptions,
    counters: Counters,
    /// Connections the connector has opened (see [`Connector::connects`]).
    connects: Arc<AtomicU64>,
    /// Which CA the server's certificate is checked against, for TLS errors.
    ca: String,
    own: OwnConnections,
}

/// What a connection of its own (a log stream, see `h1`) is made with.
struct OwnConnections {
    connector: Connector,
    /// For https: the TLS configuration and the `tls-server-name` override, if any.
    tls: Option<(Arc<rustls::ClientConfig>, Option<ServerName<'static>>)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.base)
            .field("namespace", &self.inner.namespace)
            .finish_non_exhaustive()
    }
}

/// One request as the API layer describes it.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub method: Method,
    /// Path and query, starting with `/`.
    pub path: String,
    pub body: Option<Bytes>,
}

impl Req {
    pub fn get(path: String) -> Req {
        Req {
            method: Method::GET,
            path,
            body: None,
        }
    }

    /// `METHOD /path` without the query, for error messages.
    fn what(&self) -> String {
        let path = self.path.split('?').next().unwrap_or_default();
        format!("{} {path}", self.method)
    }
}

impl Client {
    /// Counters shared by this client and its clones.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            requests: c.requests.load(Relaxed),
            errors: c.errors.load(Relaxed),
            watch_restarts: c.watch_restarts.load(Relaxed),
        }
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    pub fn new(config: Config) -> Result<Client> {
        Client::with_options(config, ClientOptions::default())
    }

    pub fn with_options(config: Config, options: ClientOptions) -> Result<Client> {
        let setup = |what: String| Error::Setup { what, source: None };
        let scheme = config.server.scheme_str().unwrap_or_default();
        let authority = config
            .server
            .authority()
            .ok_or_else(|| setup(format!("server URL {} has no host", config.server)))?;
        let credentials = Credentials::new(&config.auth).map_err(|e| Error::Auth { source: Box::new(e) })?;
        let tls_config = match scheme {
            "https" => tls::client_config(&config.tls, credentials.exec_cert_resolver())?,
            // Never used for plain http, but the connector type wants one.
            "http" => tls::client_config(
                &TlsConfig {
                    insecure_skip_verify: true,
                    ..Default::default()
                },
                None,
            )?,
            other => return Err(setup(format!("server URL scheme {other:?} is not http or https"))),
        };
        let proxy = match &config.proxy_url {
            Some(uri) => Some(Proxy::from_uri(uri).map_err(setup)?),
            None => None,
        };
        let connects = Arc::new(AtomicU64::new(0));
        let connector = Connector {
            proxy,
            connect_timeout: options.connect_timeout,
            connects: connects.clone(),
        };
        let ca = trust_description(&config.tls);
        let server_name = config.tls.server_name.as_deref().map(tls::server_name).transpose()?;
        let own = OwnConnections {
            // A counter of its own: the pool's counts only its own connections (see
            // `pooled_attempt`), and a log's connection opening beside a pooled call must not
            // make that call's reused connection look new.
            connector: Connector {
                connects: Arc::default(),
                ..connector.clone()
            },
            tls: (scheme == "https").then(|| (Arc::new(tls_config.clone()), server_name.clone())),
        };
        let mut builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config)
            .https_or_http();
        if let Some(name) = server_name {
            builder = builder.with_server_name_resolver(FixedServerNameResolver::new(name));
        }
        let https = builder.enable_http1().wrap_connector(connector);
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(POOL_IDLE)
            // hyper's read buffer otherwise grows to ~400 KiB per connection while a server
            // keeps it full (a busy watch, a big LIST): 16 KiB bounds it (each chunk a reader
            // holds pins one such buffer; for logs, which went through here until `h1`, 32 KiB
            // cost ~70 KiB more per stream at the same CPU and throughput, README "Logs under
            // load"), and keeps each buffer below musl's mmap threshold (128 KiB), so it is not
            // mapped and unmapped per chunk.
            .http1_max_buf_size(HTTP_READ_BUF)
            .build(https);
        let prefix = config.server.path().trim_end_matches('/');
        let impersonate = config
            .impersonate
            .headers()
            .map_err(|problem| setup(format!("impersonation: {problem}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base: format!("{scheme}://{authority}{prefix}"),
                namespace: config.namespace,
                credentials,
                impersonate,
                options,
                counters: Counters::default(),
                connects,
                ca,
                own,
            }),
        })
    }

    /// The namespace from the kubeconfig context or the service account.
    pub fn default_namespace(&self) -> &str {
        &self.inner.namespace
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Sends one request on the pooled client through auth, retries and the request timeout,
    /// and returns the reply head once it is 2xx; any other reply becomes [`Error::Api`].
    pub(crate) async fn send(&self, req: &Req) -> Result<Response<Incoming>> {
        match self.send_via(req, Via::Pool).await? {
            Reply::Pooled(resp) => Ok(resp),
            Reply::Own(_) => unreachable!("asked for the pool"),
        }
    }

    /// One attempt on the transport `via`.
    async fn attempt(&self, request: Request<Full<Bytes>>, via: Via, what: &str) -> Attempt<Reply> {
        match via {
            Via::Pool => self.pooled_attempt(request, what).await.map(Reply::Pooled),
            // Boxed: every ordinary call's future would otherwise carry room for the state of
            // a connect, a TLS handshake and a reply head.
            Via::Own => Box::pin(self.own_attempt(request, what)).await.map(Reply::Own),
        }
    }

    /// One attempt on the pooled client.
    async fn pooled_attempt(&self, request: Request<Full<Bytes>>, what: &str) -> Attempt<Response<Incoming>> {
        let connects_before = self.inner.connects.load(Ordering::SeqCst);
        self.inner.http.request(request).await.map_err(|e| {
            let reused = self.inner.connects.load(Ordering::SeqCst) == connects_before;
            self.transport_error(what, e, reused)
        })
    }

    /// One attempt on a connection of its own (see `h1`). A failure before the request was
    /// written (connecting, the TLS handshake) is `NotSent`, as hyper's connector errors are.
    async fn own_attempt(&self, request: Request<Full<Bytes>>, what: &str) -> Attempt<h1::Response> {
        let own = &self.inner.own;
        let not_sent = |e: BoxError| transport(what, e, Outcome::NotSent);
        let tcp = own.connector.connect(request.uri()).await.map_err(not_sent)?;
        let conn = match &own.tls {
            None => h1::Conn::plain(tcp),
            Some((config, name)) => {
                let name = match name {
                    Some(name) => name.clone(),
                    None => {
                        tls::server_name(request.uri().host().unwrap_or_default()).map_err(|e| (e, Outcome::Final))?
                    }
                };
                match h1::Conn::tls(tcp, config.clone(), name).await {
                    Ok(conn) => conn,
                    Err(e) => return Err(self.tls_failure(what, e).unwrap_or_else(not_sent)),
                }
            }
        };
        match h1::exchange(conn, &h1::request_head(&request)).await {
            Ok(resp) => Ok(resp),
            Err(e) => Err(self
                .tls_failure(what, e)
                .unwrap_or_else(|e| transport(what, e, Outcome::TransportError))),
        }
    }

    /// A TLS verification failure in `e` as the final error it is; otherwise `e` back.
    fn tls_failure(&self, what: &str, e: impl Into<BoxError>) -> std::result::Result<(Error, Outcome), BoxError> {
        let e: BoxError = e.into();
        match tls::final_failure(e.as_ref()) {
            Some(reason) => {
                let err = Error::Tls {
                    what: what.to_owned(),
                    reason,
                    ca: self.inner.ca.clone(),
                    source: e,
                };
                Ok((err, Outcome::Final))
            }
            None => Err(e),
        }
    }

    /// The attempt loop under [`Client::send`]: builds the request (asking for credentials),
    /// makes an attempt `via` a transport within the request timeout, re-authenticates once
    /// after a 401, turns other non-2xx replies into [`Error::Api`], and retries by the policy.
    /// Not generic over the transport: the loop is large, and one copy of it serves both.
    async fn send_via(&self, req: &Req, via: Via) -> Result<Reply> {
        let opts = &self.inner.options;
        let what = req.what();
        let mut backoff = Backoff::new(opts.retry.backoff);
        let mut reauthenticated = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = self.build(req).await?;
            let outcome = tokio::time::timeout(opts.request_timeout, self.attempt(request, via, &what)).await;
            let ok = matches!(&outcome, Ok(Ok(r)) if r.status().is_success());
            self.inner.counters.requests.fetch_add(1, Relaxed);
            if !ok {
                self.inner.counters.errors.fetch_add(1, Relaxed);
            }
            let (err, outcome) = match outcome {
                Ok(Ok(resp)) if resp.status().is_success() => return Ok(resp),
                Ok(Ok(resp)) => {
                    let code = resp.status();
                    if code == StatusCode::UNAUTHORIZED && !reauthenticated {
                        // An expired token or exec credential: ask for a fresh one, once.
                        reauthenticated = true;
                        self.inner.credentials.invalidate();
                        attempt -= 1;
                        continue;
                    }
                    let after = retry_after(resp.headers());
                    let body = resp.error_body(opts.request_timeout).await;
                    let status = status_from_body(code.as_u16(), req.method == Method::POST, &body);
                    let err = Error::Api {
                        what: what.clone(),
                        status: Box::new(status),
                    };
                    (
                        err,
                        Outcome::Reply {
                            status: code,
                            retry_after: after,
                        },
                    )
                }
                Ok(Err(failed)) => failed,
                Err(_) => (
                    Error::Timeout {
                        what: what.clone(),
                        after: opts.request_timeout,
                    },
                    Outcome::TransportError,
                ),
            };
            match opts.retry.decide(&req.method, attempt, outcome, &mut backoff) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(err),
            }
        }
    }

    /// A failed attempt as an error and the retry decision's view of it: a TLS verification
    /// failure is final; a request that never reached the server (connecting failed, hyper
    /// gave it back unsent, or a reused connection was closed before a byte of the reply) may
    /// be retried for every verb; anything else is an ordinary transport error.
    fn transport_error(&self, what: &str, e: hyper_util::client::legacy::Error, reused: bool) -> (Error, Outcome) {
        let hyper_err = {
            let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            let mut found = None;
            while let Some(cause) = next {
                if let Some(h) = cause.downcast_ref::<hyper::Error>() {
                    found = Some(h);
                    break;
                }
                next = cause.source();
            }
            found
        };
        let not_sent =
            e.is_connect() || hyper_err.is_some_and(|h| h.is_canceled() || (reused && h.is_incomplete_message()));
        let outcome = if not_sent {
            Outcome::NotSent
        } else {
            Outcome::TransportError
        };
        self.tls_failure(what, e)
            .unwrap_or_else(|source| transport(what, source, outcome))
    }

    async fn build(&self, req: &Req) -> Result<Request<Full<Bytes>>> {
        let uri = format!("{}{}", self.inner.base, req.path);
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(&uri)
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, &self.inner.options.user_agent);
        if req.body.is_some() {
            let kind = if req.method == Method::PATCH {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            builder = builder.header(header::CONTENT_TYPE, kind);
        }
        let auth = self
            .inner
            .credentials
            .authorization()
            .await
            .map_err(|e| Error::Auth { source: Box::new(e) })?;
        if let Some(value) = auth {
            builder = builder.header(header::AUTHORIZATION, value);
        }
        for (name, value) in &self.inner.impersonate {
            builder = builder.header(name, value);
        }
        builder
            .body(Full::new(req.body.clone().unwrap_or_default()))
            .map_err(|e| Error::Setup {
                what: format!("building the request {}", req.what()),
                source: Some(Box::new(e)),
            })
    }

    /// An ordinary call: the whole reply body, within the request timeout.
    pub(crate) async fn request_bytes(&self, req: &Req) -> Result<Bytes> {
        let what = req.what();
        let timeout = self.inner.options.request_timeout;
        let resp = self.send(req).await?;
        let read = Limited::new(resp.into_body(), MAX_BODY).collect();
        match tokio::time::timeout(timeout, read).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) => Err(Error::Transport { what, source: e }),
            Err(_) => Err(Error::Timeout { what, after: timeout }),
        }
    }

    /// GETs a path outside the resource APIs (`/version`, `/healthz`) and decodes its JSON.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.request_json(&Req::get(path.to_string())).await
    }

    pub(crate) async fn request_json<T: serde::de::DeserializeOwned>(&self, req: &Req) -> Result<T> {
        let body = self.request_bytes(req).await?;
        serde_json::from_slice(&body).map_err(|source| Error::Decode {
            what: req.what(),
            source: source.into(),
        })
    }

    /// A streamed reply on the pooled client (a watch): no overall deadline, but `idle`
    /// between chunks.
    pub(crate) async fn request_stream(&self, req: &Req, idle: Duration) -> Result<BodyStream> {
        let resp = self.send(req).await?;
        Ok(BodyStream {
            body: Source::Pooled(resp.into_body()),
            idle,
            what: req.what(),
            ended: false,
        })
    }

    /// A streamed GET on a connection of its own (a container log, see `h1`), with the same
    /// credentials, retries and errors as [`Client::send`].
    pub(crate) async fn request_own_stream(&self, req: &Req, idle: Duration) -> Result<BodyStream> {
        let Reply::Own(resp) = self.send_via(req, Via::Own).await? else {
            unreachable!("asked for a connection of its own")
        };
        Ok(BodyStream {
            body: Source::Own(resp.body),
            idle,
            what: req.what(),
            ended: false,
        })
    }
}

/// One attempt's reply head, or its failure and how the retry policy sees it.
type Attempt<R> = std::result::Result<R, (Error, Outcome)>;

/// A failed attempt that is not a final TLS failure, as the retry policy sees it.
fn transport(what: &str, source: BoxError, outcome: Outcome) -> (Error, Outcome) {
    let err = Error::Transport {
        what: what.to_owned(),
        source,
    };
    (err, outcome)
}

/// Which transport an attempt goes by.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// hyper's pooled client.
    Pool,
    /// A connection of its own (`h1`).
    Own,
}

/// A reply head from either transport.
enum Reply {
    Pooled(Response<Incoming>),
    Own(h1::Response),
}

/// The most of an error reply's body that is read.
const MAX_ERROR_BODY: usize = 1 << 20;

impl Reply {
    fn status(&self) -> StatusCode {
        match self {
            Reply::Pooled(resp) => resp.status(),
            Reply::Own(resp) => resp.status,
        }
    }

    fn headers(&self) -> &http::HeaderMap {
        match self {
            Reply::Pooled(resp) => resp.headers(),
            Reply::Own(resp) => &resp.headers,
        }
    }

    /// The body of an error reply, bounded in size and time; failures yield an empty body.
    async fn error_body(self, timeout: Duration) -> Bytes {
        match self {
            Reply::Pooled(resp) => {
                let read = Limited::new(resp.into_body(), MAX_ERROR_BODY).collect();
                match tokio::time::timeout(timeout, read).await {
                    Ok(Ok(collected)) => collected.to_bytes(),
                    _ => Bytes::new(),
                }
            }
            Reply::Own(resp) => tokio::time::timeout(timeout, resp.body.collect(MAX_ERROR_BODY))
                .await
                .unwrap_or_default(),
        }
    }
}

/// The body of a streamed reply, read chunk by chunk under a read-idle limit.
pub struct BodyStream {
    body: Source,
    idle: Duration,
    what: String,
    ended: bool,
}

enum Source {
    Pooled(Incoming),
    Own(h1::Body),
}

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = match self.body {
            Source::Pooled(_) => "pooled",
            Source::Own(_) => "own",
        };
        f.debug_struct("BodyStream")
            .field("what", &self.what)
            .field("connection", &on)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl BodyStream {
    /// The next chunk, or `None` at a clean end. An error ends the stream too. Cancel safe.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        let body = match &mut self.body {
            Source::Pooled(body) => body,
            Source::Own(body) => {
                if self.ended {
                    return Ok(None);
                }
                let next = match tokio::time::timeout(self.idle, body.data()).await {
                    Ok(Ok(next)) => {
                        self.ended = next.is_none();
                        return Ok(next);
                    }
                    Ok(Err(e)) => Error::Transport {
                        what: self.what.clone(),
                        source: Box::new(e),
                    },
                    Err(_) => Error::Timeout {
                        what: self.what.clone(),
                        after: self.idle,
                    },
                };
                self.ended = true;
                return Err(next);
            }
        };
        while !self.ended {
            let frame = match tokio::time::timeout(self.idle, body.frame()).await {
                Err(_) => {
                    self.ended = true;
                    return Err(Error::Timeout {
                        what: self.what.clone(),
                        after: self.idle,
                    });
                }
                Ok(frame) => frame,
            };
            match frame {
                None => self.ended = true,
                Some(Err(e)) => {
                    self.ended = true;
                    return Err(Error::Transport {
                        what: self.what.clone(),
                        source: Box::new(e),
                    });
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        return Ok(Some(data));
                    }
                }
            }
        }
        Ok(None)
    }

    pub fn what(&self) -> &str {
        &self.what
    }
}

/// What the server's certificate is checked against, as TLS errors name it: a file path,
/// the inline `certificate-authority-data`, or the system bundle; never the bytes.
fn trust_description(tls: &TlsConfig) -> String {
    if tls.insecure_skip_verify {
        return "none (insecure-skip-tls-verify)".into();
    }
    match (&tls.ca_pem, tls.ca_source.as_deref()) {
        (None, _) => "the system CA bundle".into(),
        (Some(_), Some("certificate-authority-data")) => "inline certificate-authority-data".into(),
        (Some(_), Some(path)) => format!("`{path}`"),
        (Some(_), None) => "the configured certificate authority".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(server: &str) -> Config {
        Config {
            server: server.parse().unwrap(),
            namespace: "ns".into(),
            tls: TlsConfig::default(),
            proxy_url: None,
            auth: Default::default(),
            impersonate: Default::default(),
            origin: Default::default(),
        }
    }

    #[test]
    fn base_keeps_a_path_prefix_and_refuses_other_schemes() {
        let c = Client::new(config("http://127.0.0.1:8080/k8s/clusters/c-1/")).unwrap();
        assert_eq!(c.inner.base, "http://127.0.0.1:8080/k8s/clusters/c-1");
        assert_eq!(c.default_namespace(), "ns");
        let err = Client::new(config("ftp://h")).unwrap_err();
        assert!(err.to_string().contains("ftp"), "{err}");
    }

    #[test]
    fn request_descriptions_drop_the_query() {
        assert_eq!(Req::get("/api/v1/pods?watch=1".into()).what(), "GET /api/v1/pods");
    }
}
