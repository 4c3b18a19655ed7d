//! A small process-wide metrics registry (atomics, no labels) and its Prometheus text
//! rendering for `/metrics`. Any room of the app may bump a counter through [`global`]; the
//! Kubernetes client keeps its own counters ([`kube::Client::stats`]), read when rendering from
//! the client given to [`Metrics::watch_client`].

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Metrics {
    pub workflows_running: AtomicI64,
    pub workflows_total: AtomicU64,
    pub steps_started: AtomicU64,
    pub steps_failed: AtomicU64,
    pub log_bytes: AtomicU64,
    pub log_lines_dropped: AtomicU64,
    pub grpc_requests: AtomicU64,
    pub grpc_errors: AtomicU64,
    /// Workflows of dead agents whose objects this process deleted (`backend::reaper`).
    pub reaped_workflows: AtomicU64,
    pub reaped_objects: AtomicU64,
    /// The agent's Kubernetes client, whose counters the apiserver rows show.
    kube: OnceLock<kube::Client>,
}

static GLOBAL: Metrics = Metrics {
    workflows_running: AtomicI64::new(0),
    workflows_total: AtomicU64::new(0),
    steps_started: AtomicU64::new(0),
    steps_failed: AtomicU64::new(0),
    log_bytes: AtomicU64::new(0),
    log_lines_dropped: AtomicU64::new(0),
    grpc_requests: AtomicU64::new(0),
    grpc_errors: AtomicU64::new(0),
    reaped_workflows: AtomicU64::new(0),
    reaped_objects: AtomicU64::new(0),
    kube: OnceLock::new(),
};

/// The process's registry.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

impl Metrics {
    /// Shows `client`'s request and watch counters (and its clones') from now on; the first
    /// client given wins.
    pub fn watch_client(&self, client: &kube::Client) {
        let _ = self.kube.set(client.clone());
    }

    pub fn grpc_request(&self, failed: bool) {
        self.grpc_requests.fetch_add(1, Relaxed);
        if failed {
            self.grpc_errors.fetch_add(1, Relaxed);
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        self.render_with(self.kube.get().map(kube::Client::stats).unwrap_or_default())
    }

    fn render_with(&self, kube: kube::Stats) -> String {
        let rows: [(&str, &str, &str, i64); 13] = [
            (
                "woodpecker_agent_workflows_running",
                "gauge",
                "Workflows running now.",
                self.workflows_running.load(Relaxed),
            ),
            (
                "woodpecker_agent_workflows_total",
                "counter",
                "Workflows taken from the server.",
                self.workflows_total.load(Relaxed) as i64,
            ),
            (
                "woodpecker_agent_steps_started_total",
                "counter",
                "Steps started.",
                self.steps_started.load(Relaxed) as i64,
            ),
            (
                "woodpecker_agent_steps_failed_total",
                "counter",
                "Steps that finished with an error or a non-zero exit code.",
                self.steps_failed.load(Relaxed) as i64,
            ),
            (
                "woodpecker_agent_apiserver_requests_total",
                "counter",
                "Requests sent to the Kubernetes apiserver.",
                kube.requests as i64,
            ),
            (
                "woodpecker_agent_apiserver_errors_total",
                "counter",
                "Apiserver requests that failed.",
                kube.errors as i64,
            ),
            (
                "woodpecker_agent_watch_restarts_total",
                "counter",
                "Watch streams re-opened.",
                kube.watch_restarts as i64,
            ),
            (
                "woodpecker_agent_log_bytes_total",
                "counter",
                "Log bytes sent to the server.",
                self.log_bytes.load(Relaxed) as i64,
            ),
            (
                "woodpecker_agent_log_lines_dropped_total",
                "counter",
                "Log lines dropped because the upload buffer was full.",
                self.log_lines_dropped.load(Relaxed) as i64,
            ),
            (
                "woodpecker_agent_grpc_requests_total",
                "counter",
                "gRPC calls to the server.",
                self.grpc_requests.load(Relaxed) as i64,
            ),
            (
                "woodpecker_agent_grpc_errors_total",
                "counter",
                "gRPC calls that failed.",
                self.grpc_errors.load(Relaxed) as i64,
            ),
            (
                "woodpecker_agent_reaped_workflows_total",
                "counter",
                "Workflows of agents whose Lease ran out, whose objects this agent deleted.",
                self.reaped_workflows.load(Relaxed) as i64,
            ),
            (
                "woodpecker_agent_reaped_objects_total",
                "counter",
                "Objects of agents whose Lease ran out deleted by this agent.",
                self.reaped_objects.load(Relaxed) as i64,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.workflows_running.store(2, Relaxed);
        let text = m.render_with(kube::Stats {
            requests: 2,
            errors: 1,
            watch_restarts: 0,
        });
        assert!(
            text.contains("# TYPE woodpecker_agent_workflows_running gauge\nwoodpecker_agent_workflows_running 2\n")
        );
        assert!(text.contains("\nwoodpecker_agent_apiserver_requests_total 2\n"));
        assert!(text.contains("\nwoodpecker_agent_apiserver_errors_total 1\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.split_once(' ').unwrap();
            assert!(name.starts_with("woodpecker_agent_"), "{line}");
            value.parse::<i64>().unwrap();
        }
    }
}
