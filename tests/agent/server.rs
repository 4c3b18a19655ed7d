//! A Woodpecker server for the tests, built from the same messages as the agent: unary gRPC over
//! h2c on 127.0.0.1:0 (hyper's server side), with its own framing code. It records every call in
//! order, hands out queued workflows on `Next`, blocks `Wait` until a cancel or `Done`, checks
//! tokens and the proto-version header, and can expire its tokens, stop and restart on the same
//! port with its state intact. `start_tls` serves the same behind a self-signed certificate.

use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use tokio::sync::watch;
use tokio::task::JoinSet;
use woodpecker_k8s_agent::agent::proto;

/// One call the server received, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Auth { agent_id: i64 },
    Version,
    Register(proto::AgentInfo),
    Unregister,
    Health,
    Next(proto::Filter),
    Init(String, proto::WorkflowState),
    Wait(String),
    Extend(String),
    Update(String, proto::StepStateMessage),
    Log(Vec<proto::LogEntry>),
    Done(String, proto::WorkflowState),
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    queue: VecDeque<proto::WorkflowMessage>,
    canceled: BTreeSet<String>,
    done: BTreeSet<String>,
    running: BTreeSet<String>,
    max_running: usize,
    polling: usize,
    max_polling: usize,
    tokens: BTreeSet<String>,
    issued: usize,
    next_agent_id: i64,
}

pub struct State {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
    pub secret: String,
    pub grpc_version: i32,
}

pub struct Server {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    tasks: JoinSet<()>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Server {
    pub async fn start(grpc_version: i32) -> Server {
        Server::start_with(grpc_version, None).await
    }

    /// The same server behind TLS with a fresh self-signed certificate for 127.0.0.1.
    pub async fn start_tls() -> Server {
        let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        let cert = rustls::pki_types::CertificateDer::from(key.cert.der().to_vec());
        let pkey = rustls::pki_types::PrivateKeyDer::try_from(key.signing_key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], pkey)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Server::start_with(16, Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(grpc_version: i32, tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
        let state = Arc::new(State {
            inner: Mutex::new(Inner {
                next_agent_id: 100,
                ..Default::default()
            }),
            changed: watch::channel(0).0,
            secret: "agent-s3cret".into(),
            grpc_version,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = Server {
            addr,
            state,
            tasks: JoinSet::new(),
            tls,
        };
        server.serve(listener);
        server
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let state = self.state.clone();
        let tls = self.tls.clone();
        self.tasks.spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let state = state.clone();
                let tls = tls.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, req).await) }
                    });
                    let h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                    let _ = match tls {
                        None => h2.serve_connection(TokioIo::new(stream), svc).await,
                        Some(tls) => match tls.accept(stream).await {
                            Ok(stream) => h2.serve_connection(TokioIo::new(stream), svc).await,
                            Err(_) => return, // the agent refused our certificate
                        },
                    };
                });
            }
        });
    }

    /// Drops the listener and every connection (calls in flight fail).
    pub async fn stop(&mut self) {
        self.tasks.shutdown().await;
    }

    /// Listens again on the same port, with the same state (tokens stay valid).
    pub async fn restart(&mut self) {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("rebind {}: {e}", self.addr);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("rebind {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }
}

impl State {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let out = f(&mut self.inner.lock().unwrap());
        self.changed.send_modify(|n| *n += 1);
        out
    }

    pub fn push(&self, wf: proto::WorkflowMessage) {
        self.with(|i| i.queue.push_back(wf));
    }

    pub fn cancel(&self, id: &str) {
        self.with(|i| i.canceled.insert(id.to_owned()));
    }

    /// Every token issued so far becomes invalid.
    pub fn expire_tokens(&self) {
        self.with(|i| i.tokens.clear());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    pub fn max_running(&self) -> usize {
        self.inner.lock().unwrap().max_running
    }

    pub fn max_polling(&self) -> usize {
        self.inner.lock().unwrap().max_polling
    }

    pub fn done_count(&self) -> usize {
        self.inner.lock().unwrap().done.len()
    }

    /// Waits (up to `secs`) until `f` holds on the recorded calls.
    pub async fn until(&self, secs: u64, what: &str, f: impl Fn(&[Call]) -> bool) {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if f(&self.inner.lock().unwrap().calls) {
                return;
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                panic!("timed out waiting for {what}; calls: {:#?}", self.calls());
            }
        }
    }

    /// Blocks until `f` yields a value (long polls).
    async fn block_until<T>(&self, f: impl Fn(&mut Inner) -> Option<T>) -> T {
        let mut rx = self.changed.subscribe();
        loop {
            rx.borrow_and_update();
            if let Some(v) = f(&mut self.inner.lock().unwrap()) {
                self.changed.send_modify(|n| *n += 1);
                return v;
            }
            rx.changed().await.unwrap();
        }
    }
}

pub fn frame(msg: &impl Message) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u8(0);
    b.put_u32(msg.encoded_len() as u32);
    msg.encode(&mut b).unwrap();
    b.freeze()
}

pub fn unframe<M: Message + Default>(mut body: Bytes) -> M {
    assert_eq!(body.get_u8(), 0, "the agent must not compress");
    let len = body.get_u32() as usize;
    assert_eq!(body.len(), len, "one whole message per request");
    M::decode(body).unwrap()
}

/// A unary response body: one optional message, then the status trailers.
pub struct Reply {
    data: Option<Bytes>,
    trailers: Option<http::HeaderMap>,
}

impl Body for Reply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(d) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(d))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }
}

pub fn ok(msg: &impl Message) -> http::Response<Reply> {
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    http::Response::builder()
        .header("content-type", "application/grpc")
        .body(Reply {
            data: Some(frame(msg)),
            trailers: Some(trailers),
        })
        .unwrap()
}

/// A trailers-only error response.
pub fn err(code: u8, message: &str) -> http::Response<Reply> {
    http::Response::builder()
        .header("content-type", "application/grpc")
        .header("grpc-status", code.to_string())
        .header("grpc-message", message.replace(' ', "%20"))
        .body(Reply {
            data: None,
            trailers: None,
        })
        .unwrap()
}

async fn handle(state: &State, req: http::Request<Incoming>) -> http::Response<Reply> {
    let path = req.uri().path().to_owned();
    let headers = req.headers().clone();
    assert_eq!(headers.get("content-type").unwrap(), "application/grpc");
    assert_eq!(headers.get("te").unwrap(), "trailers");
    let body = req.into_body().collect().await.unwrap().to_bytes();
    if path == "/proto.WoodpeckerAuth/Auth" {
        let r: proto::AuthRequest = unframe(body);
        if r.agent_token != state.secret {
            return err(16, "invalid agent token");
        }
        let (id, token) = state.with(|i| {
            i.calls.push(Call::Auth { agent_id: r.agent_id });
            let id = if r.agent_id > 0 {
                r.agent_id
            } else {
                i.next_agent_id += 1;
                i.next_agent_id
            };
            i.issued += 1;
            let token = format!("jwt-{}", i.issued);
            i.tokens.insert(token.clone());
            (id, token)
        });
        return ok(&proto::AuthResponse {
            status: "ok".into(),
            agent_id: id,
            access_token: token,
        });
    }
    let token = headers
        .get("token")
        .and_then(|t| t.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !state.inner.lock().unwrap().tokens.contains(&token) {
        return err(16, "invalid or expired token");
    }
    if let Some(v) = headers.get("proto-version")
        && v != "16"
    {
        return err(9, "proto version mismatch");
    }
    assert!(headers.get("hostname").is_some(), "{path} without hostname metadata");
    let record = |c: Call| state.with(|i| i.calls.push(c));
    match path.as_str() {
        "/proto.Woodpecker/Version" => {
            record(Call::Version);
            ok(&proto::VersionResponse {
                grpc_version: state.grpc_version,
                server_version: "3.17.0-test".into(),
            })
        }
        "/proto.Woodpecker/RegisterAgent" => {
            let r: proto::RegisterAgentRequest = unframe(body);
            record(Call::Register(r.info.unwrap()));
            let id = state.inner.lock().unwrap().next_agent_id;
            ok(&proto::RegisterAgentResponse { agent_id: id })
        }
        "/proto.Woodpecker/UnregisterAgent" => {
            record(Call::Unregister);
            ok(&proto::Empty {})
        }
        "/proto.Woodpecker/ReportHealth" => {
            let r: proto::ReportHealthRequest = unframe(body);
            if r.status != "I am alive!" {
                return err(2, "Are you alive?");
            }
            record(Call::Health);
            ok(&proto::Empty {})
        }
        "/proto.Woodpecker/Next" => {
            let r: proto::NextRequest = unframe(body);
            state.with(|i| {
                i.calls.push(Call::Next(r.filter.unwrap_or_default()));
                i.polling += 1;
                i.max_polling = i.max_polling.max(i.polling);
            });
            // Un-count the poll whether it is answered or dropped (agent shutdown, server stop).
            struct Unpoll<'a>(&'a State);
            impl Drop for Unpoll<'_> {
                fn drop(&mut self) {
                    self.0.with(|i| i.polling -= 1);
                }
            }
            let _unpoll = Unpoll(state);
            let wf = state.block_until(|i| i.queue.pop_front()).await;
            ok(&proto::NextResponse { workflow: Some(wf) })
        }
        "/proto.Woodpecker/Init" => {
            let r: proto::InitRequest = unframe(body);
            let st = r.state.unwrap_or_default();
            if st.started == 0 || st.canceled {
                return err(2, "impossible workflow state");
            }
            state.with(|i| {
                i.calls.push(Call::Init(r.id.clone(), st));
                i.running.insert(r.id.clone());
                i.max_running = i.max_running.max(i.running.len());
            });
            ok(&proto::Empty {})
        }
        "/proto.Woodpecker/Wait" => {
            let r: proto::WaitRequest = unframe(body);
            record(Call::Wait(r.id.clone()));
            let canceled = state
                .block_until(|i| {
                    if i.canceled.contains(&r.id) {
                        Some(true)
                    } else if i.done.contains(&r.id) {
                        Some(false)
                    } else {
                        None
                    }
                })
                .await;
            ok(&proto::WaitResponse { canceled })
        }
        "/proto.Woodpecker/Extend" => {
            let r: proto::ExtendRequest = unframe(body);
            record(Call::Extend(r.id));
            ok(&proto::Empty {})
        }
        "/proto.Woodpecker/Update" => {
            let r: proto::UpdateRequest = unframe(body);
            record(Call::Update(r.id, r.state.unwrap()));
            ok(&proto::Empty {})
        }
        "/proto.Woodpecker/Log" => {
            let r: proto::LogRequest = unframe(body);
            record(Call::Log(r.log_entries));
            ok(&proto::Empty {})
        }
        "/proto.Woodpecker/Done" => {
            let r: proto::DoneRequest = unframe(body);
            let st = r.state.unwrap_or_default();
            if st.canceled && st.started == 0 {
                return err(2, "impossible workflow state");
            }
            state.with(|i| {
                i.calls.push(Call::Done(r.id.clone(), st));
                i.running.remove(&r.id);
                i.done.insert(r.id.clone());
            });
            ok(&proto::Empty {})
        }
        other => err(12, &format!("unknown method {other}")),
    }
}
