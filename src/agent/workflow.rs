//! One workflow from the server, start to end (`agent/runner.go` upstream): decode the payload,
//! `Wait` for a cancel in the background, `Extend` the lease on a ticker, `Init`, run it with the
//! [`WorkflowRunner`], flush its updates and logs, `Done`. Cancels on a server cancel, on the
//! workflow timeout, and when the agent's drain time is over.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::client::{CallError, Client};
use super::health::{self, now_unix};
use super::reporter::Reporter;
use super::tracer::AgentTracer;
use super::{metrics, proto};
use crate::backend::WorkflowConfig;
use crate::log;
use crate::pipeline::trace::Tracer;
use crate::shutdown::{self, Shutdown, Trigger};

/// How a workflow ended, as the runtime reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkflowEnd {
    /// Canceled by the server, the timeout or the agent's shutdown.
    pub canceled: bool,
    /// A backend or runtime error (a failing step is not one: the step states carry that).
    pub error: Option<String>,
    /// Cleanup did not finish (objects may be left for the reaper).
    pub cleanup_error: Option<String>,
}

/// Runs a workflow: `pipeline::run_workflow` on the Kubernetes backend in production, a fake in
/// the protocol tests. Must return once `cancel` fires (after cleaning up).
pub trait WorkflowRunner: Send + Sync + 'static {
    fn run(
        &self,
        conf: WorkflowConfig,
        task: String,
        tracer: Arc<dyn Tracer>,
        cancel: Shutdown,
    ) -> impl Future<Output = WorkflowEnd> + Send;
}

/// `Workflow.timeout` is in minutes; 0 (or less) means the Go agent's default of one hour.
pub fn workflow_timeout(minutes: i64) -> Duration {
    Duration::from_secs(60 * if minutes > 0 { minutes as u64 } else { 60 })
}

/// What every workflow of an agent shares.
pub struct WorkflowDeps<R> {
    pub client: Arc<Client>,
    pub reporter: Arc<Reporter>,
    pub runner: Arc<R>,
    pub health: Arc<health::HealthState>,
    pub hostname: String,
    pub platform: String,
    pub extend_interval: Duration,
}

/// Runs `wf` to its end. `Err` only when `Init` failed (the workflow was not taken). `drain`
/// cancels the workflow (the agent's drain time is over); `abandon` stops waiting for the
/// server to take its reports (it is unreachable and the agent must exit).
pub async fn run<R: WorkflowRunner>(
    sh: &WorkflowDeps<R>,
    wf: proto::WorkflowMessage,
    drain: Shutdown,
    mut abandon: Shutdown,
) -> Result<(), CallError> {
    let id = wf.id.clone();
    let timeout = workflow_timeout(wf.timeout);
    let decoded = crate::go::json::from_slice::<WorkflowConfig>(&wf.payload);
    let (trigger, cancel) = shutdown::channel();
    let trigger = Arc::new(trigger);
    let (aux_stop_trigger, aux_stop) = shutdown::channel();
    let mut aux = tokio::task::JoinSet::new();
    aux.spawn(wait_for_cancel(
        sh.client.clone(),
        id.clone(),
        trigger.clone(),
        aux_stop.clone(),
    ));
    aux.spawn(extend_lease(
        sh.client.clone(),
        id.clone(),
        sh.extend_interval,
        aux_stop.clone(),
    ));
    aux.spawn(cancel_at_deadline(
        id.clone(),
        timeout,
        drain,
        trigger.clone(),
        aux_stop.clone(),
    ));

    let started = now_unix();
    let init = proto::WorkflowState {
        started,
        ..Default::default()
    };
    if let Err(e) = sh.client.init(&id, init, &Shutdown::never()).await {
        aux_stop_trigger.fire();
        while aux.join_next().await.is_some() {}
        return Err(e);
    }
    metrics::global()
        .workflows_total
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    metrics::global()
        .workflows_running
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);

    let outcome = match decoded {
        Err(e) => WorkflowEnd {
            canceled: false,
            error: Some(format!("decode the workflow payload: {e}")),
            cleanup_error: None,
        },
        Ok(conf) => run_decoded(sh, &id, conf, started, timeout, cancel.clone()).await,
    };
    // Every update and line of this workflow reaches the server before Done.
    tokio::select! {
        _ = sh.reporter.flush() => {}
        _ = abandon.wait() => {}
    }
    report_done(sh, &id, started, outcome, cancel.is_fired(), &abandon).await;
    sh.health.remove(&id);
    metrics::global()
        .workflows_running
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    aux_stop_trigger.fire();
    while aux.join_next().await.is_some() {}
    Ok(())
}

/// Wait: a server cancel (or a lost lease) cancels the workflow. Unlike the Go agent, an
/// unreachable server does not cancel: only the server's answer (a cancel, or a refusal such as
/// an expired lease) does, so a workflow outlives a long outage.
async fn wait_for_cancel(client: Arc<Client>, id: String, cancel: Arc<Trigger>, stop: Shutdown) {
    loop {
        match client.wait(&id, &stop).await {
            Ok(Some(true)) => {
                log::info(format_args!("workflow {id}: canceled by the server"));
                cancel.fire();
            }
            Ok(_) => {}
            Err(e) if e.status.code.is_retryable() => {
                log::warn(format_args!(
                    "workflow {id}: server unreachable, still waiting: {}",
                    e.status
                ));
                continue;
            }
            Err(e) => {
                log::warn(format_args!("workflow {id}: wait refused, canceling: {}", e.status));
                cancel.fire();
            }
        }
        return;
    }
}

/// Extends the workflow's lease on the server every `every`; errors are only logged.
async fn extend_lease(client: Arc<Client>, id: String, every: Duration, mut stop: Shutdown) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = client.extend(&id, &stop).await {
                    log::warn(format_args!("workflow {id}: extend failed: {}", e.status));
                }
            }
            _ = stop.wait() => return,
        }
    }
}

/// The workflow deadline and the end of the agent's drain time both cancel.
async fn cancel_at_deadline(
    id: String,
    timeout: Duration,
    mut drain: Shutdown,
    cancel: Arc<Trigger>,
    mut stop: Shutdown,
) {
    tokio::select! {
        _ = tokio::time::sleep(timeout) => {
            log::warn(format_args!("workflow {id}: timed out after {timeout:?}"));
            cancel.fire();
        }
        _ = drain.wait() => {
            log::warn(format_args!("workflow {id}: drain time is over, canceling"));
            cancel.fire();
        }
        _ = stop.wait() => {}
    }
}

/// Runs a decoded workflow: registered for the health report, with the agent's own
/// variables (`CI_MACHINE`, `CI_SYSTEM_PLATFORM`) on every step.
async fn run_decoded<R: WorkflowRunner>(
    sh: &WorkflowDeps<R>,
    id: &str,
    mut conf: WorkflowConfig,
    started: i64,
    timeout: Duration,
    cancel: Shutdown,
) -> WorkflowEnd {
    let env0 = conf
        .stages
        .first()
        .and_then(|s| s.steps.first())
        .map(|s| &s.environment);
    let get = |k: &str| env0.and_then(|e| e.get(k)).cloned().unwrap_or_default();
    sh.health.add(health::Running {
        id: id.to_owned(),
        repository: get("CI_REPO"),
        pipeline_number: get("CI_PIPELINE_NUMBER"),
        pipeline_started: started,
        pipeline_timeout: timeout.as_secs() as i64,
    });
    log::info(format_args!(
        "workflow {id}: started ({} {})",
        get("CI_REPO"),
        get("CI_PIPELINE_NUMBER")
    ));
    for step in conf.stages.iter_mut().flat_map(|s| s.steps.iter_mut()) {
        step.environment.insert("CI_MACHINE".into(), sh.hostname.clone());
        step.environment
            .insert("CI_SYSTEM_PLATFORM".into(), sh.platform.clone());
    }
    let tracer = Arc::new(AgentTracer {
        workflow: id.to_owned(),
        reporter: sh.reporter.clone(),
    });
    sh.runner.run(conf, id.to_owned(), tracer, cancel).await
}

/// `Done`: canceled (by the runtime, or by a cancel that came after it ended) or the error.
async fn report_done<R>(
    sh: &WorkflowDeps<R>,
    id: &str,
    started: i64,
    outcome: WorkflowEnd,
    cancel_fired: bool,
    abandon: &Shutdown,
) {
    let canceled = outcome.canceled || cancel_fired;
    let state = proto::WorkflowState {
        started,
        finished: now_unix(),
        error: if canceled {
            String::new()
        } else {
            outcome.error.clone().unwrap_or_default()
        },
        canceled,
    };
    match sh.client.done(id, state, abandon).await {
        Ok(()) => log::info(format_args!(
            "workflow {id}: done{}{}",
            if canceled { " (canceled)" } else { "" },
            outcome.error.map(|e| format!(" with error: {e}")).unwrap_or_default()
        )),
        Err(e) => log::error(format_args!("workflow {id}: done not delivered: {}", e.status)),
    }
    if canceled && let Some(e) = &outcome.cleanup_error {
        log::warn(format_args!(
            "workflow {id}: cleanup after the cancel did not finish ({e}); the reaper removes what is left"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_is_minutes_with_an_hour_default() {
        assert_eq!(workflow_timeout(0), Duration::from_secs(3600));
        assert_eq!(workflow_timeout(-5), Duration::from_secs(3600));
        assert_eq!(workflow_timeout(15), Duration::from_secs(900));
    }
}
