//! The health endpoint, like the Go agent's: `GET /healthz` (200, or 500 when a workflow runs
//! past its timeout plus one hour), `/varz` and `/stats` (JSON: polling and running counts and
//! the running workflows), `/version`, and `/metrics` (Prometheus text). A minimal HTTP/1.1
//! server on a tokio listener, one request per connection: the shipped binary has no hyper
//! server, and probes need nothing more.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::metrics;
use crate::Shutdown;

/// What the agent is doing now; shared by the slots (writers) and the endpoint (reader).
#[derive(Debug, Default)]
pub struct HealthState {
    pub polling: AtomicUsize,
    running: Mutex<BTreeMap<String, Running>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Running {
    pub id: String,
    pub repository: String,
    pub pipeline_number: String,
    /// Unix seconds.
    pub pipeline_started: i64,
    /// Seconds.
    pub pipeline_timeout: i64,
}

impl HealthState {
    pub fn add(&self, r: Running) {
        self.running.lock().expect("health state").insert(r.id.clone(), r);
    }

    pub fn remove(&self, id: &str) {
        self.running.lock().expect("health state").remove(id);
    }

    pub fn running_count(&self) -> usize {
        self.running.lock().expect("health state").len()
    }

    /// False when a workflow runs past started + timeout + 1 h (it is stuck).
    pub fn healthy(&self, now: i64) -> bool {
        let running = self.running.lock().expect("health state");
        running
            .values()
            .all(|r| now <= r.pipeline_started + r.pipeline_timeout + 3600)
    }

    fn stats_json(&self) -> String {
        let running = self.running.lock().expect("health state").clone();
        serde_json::json!({
            "polling_count": self.polling.load(Relaxed),
            "running_count": running.len(),
            "running": running,
        })
        .to_string()
    }
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// `:3000` means every interface, as in Go.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let addr = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_owned()
    };
    TcpListener::bind(addr).await
}

/// Serves until `stop` fires.
pub async fn serve(listener: TcpListener, state: std::sync::Arc<HealthState>, mut stop: Shutdown) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let state = state.clone();
                    conns.spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(10), handle(stream, &state)).await;
                    });
                }
                Err(e) => {
                    crate::log::warn(format_args!("health endpoint: accept: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = stop.wait() => break,
        }
    }
    conns.shutdown().await;
}

async fn handle(mut stream: TcpStream, state: &HealthState) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = path.split('?').next().unwrap_or_default();
    let (status, kind, body) = respond(method, path, state);
    let reply = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

/// The pure part: status line, content type, body.
fn respond(method: &str, path: &str, state: &HealthState) -> (&'static str, &'static str, String) {
    const JSON: &str = "application/json";
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", "text/plain", "method not allowed\n".into());
    }
    let health = if state.healthy(now_unix()) {
        "200 OK"
    } else {
        "500 Internal Server Error"
    };
    match path {
        "/healthz" => (health, "text/plain", String::new()),
        "/varz" | "/stats" => (health, JSON, state.stats_json()),
        "/version" => (
            "200 OK",
            JSON,
            serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "source": "https://github.com/woodpecker-ci/woodpecker",
            })
            .to_string(),
        ),
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics::global().render()),
        _ => ("404 Not Found", "text/plain", "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_fails_for_a_stuck_workflow() {
        let state = HealthState::default();
        assert_eq!(respond("GET", "/healthz", &state).0, "200 OK");
        state.add(Running {
            id: "7".into(),
            repository: "o/r".into(),
            pipeline_number: "3".into(),
            pipeline_started: now_unix() - 7200,
            pipeline_timeout: 60,
        });
        assert_eq!(respond("GET", "/healthz", &state).0, "500 Internal Server Error");
        let (_, _, body) = respond("GET", "/stats", &state);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["running_count"], 1);
        assert_eq!(v["running"]["7"]["repository"], "o/r");
        state.remove("7");
        assert_eq!(respond("GET", "/healthz", &state).0, "200 OK");
        assert_eq!(respond("POST", "/healthz", &state).0, "405 Method Not Allowed");
        assert_eq!(respond("GET", "/nope", &state).0, "404 Not Found");
    }
}
