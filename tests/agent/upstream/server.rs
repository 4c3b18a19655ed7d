//! A Woodpecker server that is not built from our reading of the protocol: its messages are
//! upstream's (`super::proto`, checked against upstream's `.proto`), its access tokens are
//! golang-jwt HS256 tokens as the Go server signs them (`super::jwt`), and it refuses what
//! upstream's `server/rpc` refuses, with upstream's codes and words: a missing or invalid token
//! (UNAUTHENTICATED), a wrong `proto-version` (FAILED_PRECONDITION), a non-numeric workflow id,
//! a workflow of another agent, Init/Done states no agent can produce, Init/Done of a finished
//! workflow, an Update of a step that is not the workflow's (or not final once the workflow is
//! done), log entries of an unknown step, a health report that is not "I am alive!". Every call
//! is recorded, refusals included, so a test can require that none happened.
//!
//! Unary gRPC over h2c on 127.0.0.1:0 (the framing helpers of `agent::server`). `Next` hands out
//! queued workflows and locks each to the agent that took it; `Wait` blocks until `cancel` or
//! `Done`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;

use super::jwt;
use super::proto::*;
use crate::agent::server::{Reply, err, ok, unframe};

/// The methods of upstream's file, in its order.
pub const METHODS: [&str; 12] = [
    "/proto.Woodpecker/Version",
    "/proto.Woodpecker/Next",
    "/proto.Woodpecker/Init",
    "/proto.Woodpecker/Wait",
    "/proto.Woodpecker/Done",
    "/proto.Woodpecker/Extend",
    "/proto.Woodpecker/Update",
    "/proto.Woodpecker/Log",
    "/proto.Woodpecker/RegisterAgent",
    "/proto.Woodpecker/UnregisterAgent",
    "/proto.Woodpecker/ReportHealth",
    "/proto.WoodpeckerAuth/Auth",
];

/// `rpc/proto/version.go`.
const PROTO_VERSION: i32 = 16;

// gRPC codes the Go server answers with.
const UNKNOWN: u8 = 2;
const INVALID_ARGUMENT: u8 = 3;
const FAILED_PRECONDITION: u8 = 9;
const UNIMPLEMENTED: u8 = 12;
const UNAUTHENTICATED: u8 = 16;

#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Auth {
        agent_id: i64,
    },
    Version,
    Register(AgentInfo),
    Unregister {
        agent_id: i64,
    },
    Health,
    Next(Filter),
    Init(String, WorkflowState),
    Wait(String),
    Extend(String),
    Update(String, StepState),
    /// One step's entries, as `server.go` hands them to `RPC.Log`.
    Log(String, Vec<LogEntry>),
    Done(String, WorkflowState),
    Refused {
        method: String,
        code: u8,
        message: String,
    },
}

/// A workflow waiting for an agent: what the queue hands to `Next`.
pub struct Queued {
    pub workflow: Workflow,
    /// The UUIDs of its steps (the server's step table).
    pub steps: Vec<String>,
}

#[derive(Debug, PartialEq)]
enum Phase {
    Pending,
    Running,
    Done,
}

struct Wf {
    agent_id: i64,
    phase: Phase,
    steps: BTreeSet<String>,
    canceled: bool,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    queue: VecDeque<Queued>,
    workflows: BTreeMap<String, Wf>,
    agents: BTreeMap<i64, Option<AgentInfo>>,
    next_agent_id: i64,
}

pub struct State {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
    /// `WOODPECKER_AGENT_SECRET` of the server.
    pub agent_secret: String,
    /// `WOODPECKER_GRPC_SECRET`: the JWT signing key.
    jwt_secret: Vec<u8>,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn start() -> Upstream {
        let state = Arc::new(State {
            inner: Mutex::new(Inner::default()),
            changed: watch::channel(0).0,
            agent_secret: "upstream-agent-secret".into(),
            jwt_secret: b"upstream-grpc-secret".to_vec(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let st = state.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let st = st.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(handle(&st, req).await) }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Upstream { addr, state, task }
    }
}

impl State {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let out = f(&mut self.inner.lock().unwrap());
        self.changed.send_modify(|n| *n += 1);
        out
    }

    pub fn push(&self, queued: Queued) {
        self.with(|i| i.queue.push_back(queued));
    }

    /// Cancel from the UI: the workflow's `Wait` answers `canceled`.
    pub fn cancel(&self, id: &str) {
        self.with(|i| {
            if let Some(wf) = i.workflows.get_mut(id) {
                wf.canceled = true;
            }
        });
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
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

    fn record(&self, call: Call) {
        self.with(|i| i.calls.push(call));
    }

    fn refuse(&self, method: &str, code: u8, message: String) -> http::Response<Reply> {
        self.record(Call::Refused {
            method: method.to_owned(),
            code,
            message: message.clone(),
        });
        err(code, &message)
    }
}

/// `checkAgentPermissionByWorkflow`: the workflow exists (numeric id) and is the agent's.
fn permitted(inner: &Inner, agent_id: i64, id: &str) -> Result<(), String> {
    id.parse::<i64>()
        .map_err(|_| format!("strconv.ParseInt: parsing {id:?}: invalid syntax"))?;
    let wf = inner
        .workflows
        .get(id)
        .ok_or_else(|| format!("cannot find workflow with id {id}"))?;
    if wf.agent_id != agent_id {
        return Err(format!(
            "agent not allowed to interact with workflow: agentId={agent_id} workflowAgentId={}",
            wf.agent_id
        ));
    }
    Ok(())
}

async fn handle(state: &State, req: http::Request<Incoming>) -> http::Response<Reply> {
    let path = req.uri().path().to_owned();
    let headers = req.headers().clone();
    let body: Bytes = req.into_body().collect().await.unwrap().to_bytes();
    if !METHODS.contains(&path.as_str()) {
        return state.refuse(&path, UNIMPLEMENTED, format!("unknown method {path}"));
    }
    if path == "/proto.WoodpeckerAuth/Auth" {
        return auth(state, unframe(body));
    }
    // The authorizer (`authorizer.go`): a valid token, then the proto version if reported.
    let Some(token) = headers.get("token").and_then(|t| t.to_str().ok()) else {
        return state.refuse(&path, UNAUTHENTICATED, "token is not provided".into());
    };
    let agent_id = match jwt::verify(&state.jwt_secret, token, jwt::now()) {
        Ok(id) => id,
        Err(e) => return state.refuse(&path, UNAUTHENTICATED, format!("access token is invalid: {e}")),
    };
    if let Some(v) = headers.get("proto-version") {
        match v.to_str().ok().and_then(|v| v.parse::<i32>().ok()) {
            Some(PROTO_VERSION) => {}
            Some(other) => {
                return state.refuse(
                    &path,
                    FAILED_PRECONDITION,
                    format!(
                        "agent gRPC proto version {other} is incompatible with server proto version {PROTO_VERSION}"
                    ),
                );
            }
            None => return state.refuse(&path, INVALID_ARGUMENT, "invalid gRPC proto version".into()),
        }
    }
    let method = path.rsplit('/').next().unwrap().to_owned();
    match method.as_str() {
        "Version" => {
            state.record(Call::Version);
            ok(&VersionResponse {
                grpc_version: PROTO_VERSION,
                server_version: "3.17.0".into(),
            })
        }
        "RegisterAgent" => {
            let r: RegisterAgentRequest = unframe(body);
            let info = r.info.unwrap_or_default();
            let known = state.with(|i| match i.agents.get_mut(&agent_id) {
                Some(slot) => {
                    *slot = Some(info.clone());
                    i.calls.push(Call::Register(info));
                    true
                }
                None => false,
            });
            if !known {
                return state.refuse(&path, UNKNOWN, "record not exist".into());
            }
            ok(&RegisterAgentResponse { agent_id })
        }
        "UnregisterAgent" => {
            state.with(|i| {
                i.agents.remove(&agent_id);
                i.calls.push(Call::Unregister { agent_id });
            });
            ok(&Empty {})
        }
        "ReportHealth" => {
            let r: ReportHealthRequest = unframe(body);
            if r.status != "I am alive!" {
                return state.refuse(&path, UNKNOWN, "Are you alive?".into());
            }
            state.record(Call::Health);
            ok(&Empty {})
        }
        "Next" => next(state, agent_id, unframe(body)).await,
        "Init" => {
            let r: InitRequest = unframe(body);
            let st = r.state.unwrap_or_default();
            let outcome = state.with(|i| {
                permitted(i, agent_id, &r.id)?;
                let wf = i.workflows.get_mut(&r.id).unwrap();
                if wf.phase == Phase::Done {
                    return Err("agent tried to re-run a finished workflow".to_owned());
                }
                if st.started == 0 || st.canceled {
                    return Err("agent reported an impossible workflow state".to_owned());
                }
                wf.phase = Phase::Running;
                i.calls.push(Call::Init(r.id.clone(), st));
                Ok(())
            });
            reply(state, &path, outcome, &Empty {})
        }
        "Wait" => {
            let r: WaitRequest = unframe(body);
            if let Err(e) = state.with(|i| permitted(i, agent_id, &r.id)) {
                return state.refuse(&path, UNKNOWN, e);
            }
            state.record(Call::Wait(r.id.clone()));
            let canceled = state
                .block_until(|i| {
                    let wf = &i.workflows[&r.id];
                    if wf.canceled {
                        Some(true)
                    } else {
                        (wf.phase == Phase::Done).then_some(false)
                    }
                })
                .await;
            ok(&WaitResponse { canceled })
        }
        "Extend" => {
            let r: ExtendRequest = unframe(body);
            let outcome = state.with(|i| {
                permitted(i, agent_id, &r.id)?;
                i.calls.push(Call::Extend(r.id.clone()));
                Ok(())
            });
            reply(state, &path, outcome, &Empty {})
        }
        "Update" => {
            let r: UpdateRequest = unframe(body);
            let st = r.state.unwrap_or_default();
            let outcome = state.with(|i| {
                let wf = i
                    .workflows
                    .get(&r.id)
                    .ok_or_else(|| format!("cannot find workflow with id {}", r.id))?;
                if !wf.steps.contains(&st.step_uuid) {
                    return Err(format!(
                        "agent returned status with step uuid '{}' which does not belong to current pipeline",
                        st.step_uuid
                    ));
                }
                permitted(i, agent_id, &r.id)?;
                let is_final = st.exited || st.skipped || st.canceled;
                if i.workflows[&r.id].phase == Phase::Done && !is_final {
                    return Err("agent tried to change the state of a finished workflow".to_owned());
                }
                i.calls.push(Call::Update(r.id.clone(), st));
                Ok(())
            });
            reply(state, &path, outcome, &Empty {})
        }
        "Log" => {
            // `server.go`: consecutive entries of one step form one `RPC.Log` call.
            let r: LogRequest = unframe(body);
            let mut groups: Vec<(String, Vec<LogEntry>)> = Vec::new();
            for entry in r.log_entries {
                match groups.last_mut() {
                    Some((step, entries)) if *step == entry.step_uuid => entries.push(entry),
                    _ => groups.push((entry.step_uuid.clone(), vec![entry])),
                }
            }
            let outcome = state.with(|i| {
                for (step, entries) in groups {
                    let (id, _) = i
                        .workflows
                        .iter()
                        .find(|(_, wf)| wf.steps.contains(&step))
                        .ok_or_else(|| format!("could not find step with uuid {step} in store"))?;
                    permitted(i, agent_id, &id.clone())?;
                    i.calls.push(Call::Log(step, entries));
                }
                Ok(())
            });
            reply(state, &path, outcome, &Empty {})
        }
        "Done" => {
            let r: DoneRequest = unframe(body);
            let st = r.state.unwrap_or_default();
            let outcome = state.with(|i| {
                permitted(i, agent_id, &r.id)?;
                let wf = i.workflows.get_mut(&r.id).unwrap();
                if wf.phase == Phase::Done {
                    return Err("agent tried to re-run a finished workflow".to_owned());
                }
                if st.canceled && st.started == 0 {
                    return Err("agent reported an impossible workflow state".to_owned());
                }
                wf.phase = Phase::Done;
                i.calls.push(Call::Done(r.id.clone(), st));
                Ok(())
            });
            reply(state, &path, outcome, &Empty {})
        }
        other => unreachable!("{other} is in METHODS"),
    }
}

fn reply(state: &State, path: &str, outcome: Result<(), String>, msg: &Empty) -> http::Response<Reply> {
    match outcome {
        Ok(()) => ok(msg),
        Err(e) => state.refuse(path, UNKNOWN, e),
    }
}

/// `auth_server.go`: the server's agent secret with id -1 registers a new system agent; with a
/// known id it is that agent; anything else is refused.
fn auth(state: &State, r: AuthRequest) -> http::Response<Reply> {
    let path = METHODS[11];
    state.record(Call::Auth { agent_id: r.agent_id });
    if r.agent_token != state.agent_secret {
        let msg = "agent could not auth: individual agent not found by token: record not exist";
        return state.refuse(path, UNKNOWN, msg.into());
    }
    let id = state.with(|i| {
        if r.agent_id == -1 {
            i.next_agent_id += 1;
            i.agents.insert(i.next_agent_id, None);
            Some(i.next_agent_id)
        } else {
            i.agents.contains_key(&r.agent_id).then_some(r.agent_id)
        }
    });
    let Some(id) = id else {
        let msg = "agent could not auth: AgentID not found in database";
        return state.refuse(path, UNKNOWN, msg.into());
    };
    ok(&AuthResponse {
        status: "ok".into(),
        agent_id: id,
        access_token: jwt::generate(&state.jwt_secret, id, jwt::now()),
    })
}

/// A long poll: the next queued workflow, locked to the agent that takes it.
async fn next(state: &State, agent_id: i64, r: NextRequest) -> http::Response<Reply> {
    state.record(Call::Next(r.filter.unwrap_or_default()));
    let queued = state.block_until(|i| i.queue.pop_front()).await;
    let id = queued.workflow.id.clone();
    state.with(|i| {
        i.workflows.insert(
            id,
            Wf {
                agent_id,
                phase: Phase::Pending,
                steps: queued.steps.iter().cloned().collect(),
                canceled: false,
            },
        )
    });
    ok(&NextResponse {
        workflow: Some(queued.workflow),
    })
}
