//! Agent mode against an in-test Woodpecker server (`agent/server.rs`) built from our `.proto`
//! messages: the full protocol flow, cancel, token expiry, a server restart, capacity, secret
//! masking, drain on shutdown, the version check, and the health endpoint; end to end on the
//! simulated cluster (`agent/e2e.rs`); and the shipped binary against a server that is not ours
//! (`agent/upstream.rs`: upstream's messages, signed tokens, Go-marshalled payloads); the agent's
//! own life: Leases, kill -9, duplicate identities, scale-down, a soak (`agent/lifecycle.rs`).

mod e2e;
mod fake;
mod flows;
mod lifecycle;
mod logging;
mod proto_check;
mod server;
mod startup;
mod upstream;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use bytes::Bytes;
use server::{Call, Server};
use woodpecker_k8s_agent::agent::AgentConfig;
use woodpecker_k8s_agent::agent::{Agent, PipelineRunner, WorkflowRunner, proto};
use woodpecker_k8s_agent::shutdown::{self, Trigger};

/// A step of a test workflow: name and its fake script.
type StepSpec<'a> = (&'a str, &'a [&'a str]);

fn uuid(wf: &str, step: &str) -> String {
    format!("01J{wf}{step}").to_uppercase()
}

fn workflow(id: &str, steps: &[StepSpec], secrets: &[&str]) -> proto::WorkflowMessage {
    let stages: Vec<_> = steps
        .iter()
        .map(|(name, cmds)| {
            serde_json::json!({"steps": [{
                "name": name, "uuid": uuid(id, name), "type": "commands", "image": "alpine:3",
                "commands": cmds, "on_success": true, "failure": "fail", "auth_config": {},
                "environment": {"CI_REPO": "octo/hello", "CI_PIPELINE_NUMBER": "7"},
                "volumes": [format!("wp_01jtest_{id}_default:/woodpecker")],
            }]})
        })
        .collect();
    let secrets: Vec<_> = secrets
        .iter()
        .enumerate()
        .map(|(i, v)| serde_json::json!({"name": format!("s{i}"), "value": v}))
        .collect();
    let mut payload = serde_json::json!({
        "pipeline": stages, "network": format!("wp_01jtest_{id}_default"),
        "volume": format!("wp_01jtest_{id}_default"),
    });
    // As Woodpecker's server compiles it: no secret is a nil slice, which Go writes as `null`.
    if !secrets.is_empty() {
        payload["secrets"] = secrets.into();
    }
    proto::WorkflowMessage {
        id: id.into(),
        timeout: 0,
        payload: Bytes::from(crate::common::gomarshal::marshal_config(&payload)),
    }
}

struct Running {
    trigger: Trigger,
    task: tokio::task::JoinHandle<()>,
    health: Option<std::net::SocketAddr>,
    dir: PathBuf,
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wp-agent-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn settings(server: &Server, dir: &std::path::Path, extra: &[(&str, &str)]) -> AgentConfig {
    let mut env: BTreeMap<String, String> = [
        ("WOODPECKER_SERVER", server.addr.to_string()),
        ("WOODPECKER_AGENT_SECRET", server.state.secret.clone()),
        (
            "WOODPECKER_AGENT_CONFIG_FILE",
            dir.join("agent.conf").display().to_string(),
        ),
        ("WOODPECKER_HEALTHCHECK", "false".into()),
        ("WOODPECKER_LOG_LEVEL", "debug".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut s = AgentConfig::from_env(|k| env.get(k).cloned(), "test-host").unwrap();
    s.health_interval = Duration::from_millis(200);
    s.extend_interval = Duration::from_millis(100);
    s.log_flush_interval = Duration::from_millis(50);
    s.error_backoff = Duration::from_millis(50);
    s.connect_retry_delay = Duration::from_millis(50);
    s.abandon_after = Duration::from_millis(500);
    s
}

async fn start<R: WorkflowRunner>(server: &Server, name: &str, extra: &[(&str, &str)], runner: Arc<R>) -> Running {
    let dir = temp_dir(name);
    let agent = Agent::start(settings(server, &dir, extra), runner)
        .await
        .expect("agent starts");
    let health = agent.health_addr();
    let (trigger, shutdown) = shutdown::channel();
    let task = tokio::spawn(agent.run(shutdown));
    Running {
        trigger,
        task,
        health,
        dir,
    }
}

impl Running {
    async fn stop(self) {
        self.trigger.fire();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("agent stops")
            .unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The calls about workflow `id`, in order, as short names.
fn flow(calls: &[Call], id: &str) -> Vec<String> {
    let step_of = |u: &str| u.trim_start_matches(&uuid(id, "")).to_lowercase();
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Init(w, _) if w == id => Some("init".into()),
            Call::Update(w, s) if w == id => Some(if s.skipped {
                format!("skip {}", step_of(&s.step_uuid))
            } else if s.finished == 0 {
                format!("start {}", step_of(&s.step_uuid))
            } else if s.canceled {
                format!("cancel {}", step_of(&s.step_uuid))
            } else {
                format!("end {} {}", step_of(&s.step_uuid), s.exit_code)
            }),
            Call::Log(entries) => {
                let mine: Vec<String> = entries
                    .iter()
                    .filter(|e| e.step_uuid.starts_with(&uuid(id, "")))
                    .map(|e| {
                        format!(
                            "log {} {} {}",
                            step_of(&e.step_uuid),
                            e.line,
                            String::from_utf8_lossy(&e.data)
                        )
                    })
                    .collect();
                (!mine.is_empty()).then(|| mine.join("\n"))
            }
            Call::Done(w, s) => (w == id).then(|| format!("done canceled={} error={:?}", s.canceled, s.error)),
            _ => None,
        })
        .flat_map(|s| s.split('\n').map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

fn done(calls: &[Call], id: &str) -> bool {
    calls.iter().any(|c| matches!(c, Call::Done(w, _) if w == id))
}
