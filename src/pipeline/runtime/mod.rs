//! The runtime: drives a [`Backend`] through one compiled workflow in Woodpecker's order and
//! with its failure semantics (spec §4): setup; stages one after another; the steps of a stage
//! in parallel (bounded by [`RuntimeOptions::parallelism`]); `when: status` decided when a stage
//! starts; `failure: ignore`; detached steps and services in the background until
//! `destroy_workflow`; a workflow timeout; cancel; and `destroy_workflow` always, last.
//! Every state change and log line goes to the [`Tracer`]. Knows the backend contract, not
//! Kubernetes, and not who reads the trace (agent or `exec`).

mod env;
pub(crate) mod logs;
mod step;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::backend::{Backend, BackendError, Step, WorkflowConfig};
use crate::pipeline::trace::{StepState, Tracer};
use crate::shutdown::{self, Shutdown, Trigger};

pub use env::add_runtime_env;
pub use logs::Masker;

/// How a workflow runs. `Default` gives unbounded parallelism (as Woodpecker), no timeout, a
/// 30 s cleanup deadline and no exit-code log entries.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// The most steps of one workflow running at once; 0 means no bound.
    pub parallelism: usize,
    /// The workflow deadline; when it passes the workflow is canceled (reported as canceled,
    /// as Woodpecker reports a timeout).
    pub workflow_timeout: Option<Duration>,
    /// The deadline of cleanup calls made after a cancel (`destroy_step`, `destroy_workflow`),
    /// and of waiting for detached steps to report after `destroy_workflow`.
    pub cleanup_timeout: Duration,
    /// Close each step's log with a [`LogKind::ExitCode`](crate::pipeline::trace::LogKind)
    /// entry holding the exit code. Woodpecker's Go runtime (v3) sends none (spec §4.5), so the
    /// agent leaves this off; `exec` does not need it either.
    pub exit_code_entry: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            parallelism: 0,
            workflow_timeout: None,
            cleanup_timeout: Duration::from_secs(30),
            exit_code_entry: false,
        }
    }
}

/// How a workflow ended.
#[derive(Debug, Clone, Default)]
pub struct WorkflowOutcome {
    /// No step failed (ignoring `failure: ignore` steps), no backend error, not canceled.
    pub success: bool,
    /// Canceled by the caller's `Shutdown` or by the timeout (`Done(canceled=true)`).
    pub canceled: bool,
    /// The cancel came from [`RuntimeOptions::workflow_timeout`].
    pub timed_out: bool,
    /// A runtime or backend error (what the agent puts in `Done.error`); `None` when the only
    /// failures were steps exiting non-zero, and when canceled.
    pub error: Option<String>,
    /// DestroyWorkflow did not finish (after a cancel too, where `error` stays `None`): objects
    /// of the workflow may be left in the cluster, for a reaper or a later sweep.
    pub cleanup_error: Option<String>,
    /// Unix seconds.
    pub started: i64,
    pub finished: i64,
    /// The final state of every step that got one (skipped, finished or canceled), in the
    /// workflow's order. Steps of stages never reached are absent.
    pub steps: Vec<(Step, StepState)>,
}

/// Unix seconds now.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An error and its causes on one line, as the server shows a step error.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    crate::error_chain::one_line(err)
}

/// Why a backend call gave no result.
pub(crate) enum Stop {
    /// The workflow was canceled while it waited, or the backend says the work was stopped.
    Canceled,
    /// The backend failed; the error and its causes on one line.
    Failed(String),
}

impl From<BackendError> for Stop {
    fn from(e: BackendError) -> Self {
        if e.is_canceled() {
            Stop::Canceled
        } else {
            Stop::Failed(error_chain(&e))
        }
    }
}

/// A backend call, or the workflow's cancel, whichever comes first; a backend that says the
/// work was stopped cancels the workflow.
///
/// The call is boxed before the returned future exists: an async caller is as large as its
/// largest await point for as long as it lives, and a backend call (a pod's creation, its
/// deletion) is larger than the log drain that takes most of a step's life (a step task was
/// 12.6 KB with its calls inline, 3.1 KB with them boxed; README "Logs under load").
pub(crate) fn call<'a, T>(
    work: impl Future<Output = Result<T, BackendError>> + 'a,
    cancel: &'a mut Shutdown,
    stop: &'a Trigger,
) -> impl Future<Output = Result<T, Stop>> + 'a {
    let work = Box::pin(work);
    async move {
        let result = tokio::select! {
            r = work => r.map_err(Stop::from),
            _ = cancel.wait() => Err(Stop::Canceled),
        };
        if matches!(result, Err(Stop::Canceled)) {
            stop.fire();
        }
        result
    }
}

/// A cleanup call, bounded by `limit` after a cancel; boxed as [`call`] is.
pub(crate) fn cleanup<'a>(
    work: impl Future<Output = Result<(), BackendError>> + 'a,
    limit: Option<Duration>,
) -> impl Future<Output = Result<(), String>> + 'a {
    let work = Box::pin(work);
    async move {
        let result = match limit {
            Some(limit) => tokio::time::timeout(limit, work)
                .await
                .unwrap_or_else(|_| Err(BackendError::Infrastructure("timed out".into()))),
            None => work.await,
        };
        result.map_err(|e| error_chain(&e))
    }
}

/// What the step tasks share.
pub(crate) struct Ctx<B> {
    pub backend: Arc<B>,
    pub task: String,
    pub tracer: Arc<dyn Tracer>,
    pub opts: RuntimeOptions,
    pub masker: Masker,
    pub workflow_started: i64,
    /// Fires on the caller's cancel or the timeout.
    pub cancel: Shutdown,
    /// Fires `cancel` (a backend that says the work was stopped).
    pub stop: Arc<Trigger>,
    pub finals: Mutex<Vec<(Step, StepState)>>,
}

impl<B> Ctx<B> {
    /// Sends a state to the tracer, and keeps it when it is final.
    pub fn report(&self, step: &Step, state: StepState) {
        self.tracer.step_state(step, &state);
        if state.finished != 0 || state.skipped || state.canceled {
            self.finals
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((step.clone(), state));
        }
    }
}

/// The rest of a detached step (drain, wait, destroy, final report), run in the background.
pub(crate) type Background = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How one step's task ended, as far as the stage is concerned.
pub(crate) enum StepEnd {
    /// Succeeded, skipped, or failed with `failure: ignore`.
    Ok,
    /// The step failed; `error` is set for a backend error (not for a non-zero exit).
    Failed {
        error: Option<String>,
    },
    Canceled,
    /// Started; the rest runs in the background.
    Detached(Background),
}

/// Runs one workflow to its end. Never panics on backend errors: they end up in the outcome.
pub async fn run_workflow<B: Backend>(
    backend: Arc<B>,
    conf: WorkflowConfig,
    task: String,
    opts: RuntimeOptions,
    tracer: Arc<dyn Tracer>,
    cancel: Shutdown,
) -> WorkflowOutcome {
    let started = unix_now();
    let (trigger, inner) = shutdown::channel();
    let trigger = Arc::new(trigger);
    let watchdog = Watchdog::start(&cancel, opts.workflow_timeout, trigger.clone());
    let ctx = Arc::new(Ctx {
        backend: backend.clone(),
        task: task.clone(),
        tracer,
        masker: Masker::new(conf.secrets.iter().map(|s| s.value.as_str())),
        opts: opts.clone(),
        workflow_started: started,
        cancel: inner.clone(),
        stop: trigger.clone(),
        finals: Mutex::new(Vec::new()),
    });

    let mut result = Progress::default();
    let mut cancel_wait = inner.clone();
    match call(backend.setup_workflow(&conf, &task), &mut cancel_wait, &trigger).await {
        Err(Stop::Canceled) => {}
        Err(Stop::Failed(_)) if inner.is_fired() => {}
        Err(Stop::Failed(e)) => result.fail(Some(format!("setup workflow: {e}"))),
        Ok(()) => run_stages(&ctx, &conf, &mut result).await,
    }

    let canceled = inner.is_fired();
    // DestroyWorkflow always runs, and stops detached steps and services; after a cancel it
    // gets its own deadline.
    let limit = canceled.then_some(opts.cleanup_timeout);
    let cleanup_error = cleanup(backend.destroy_workflow(&conf, &task), limit).await.err();
    if let Some(e) = &cleanup_error
        && !canceled
    {
        result.fail(Some(format!("destroy workflow: {e}")));
    }
    // Detached steps report their final state once their pods are gone.
    let drained = tokio::time::timeout(opts.cleanup_timeout, async {
        while result.background.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        result.background.shutdown().await;
    }
    let timed_out = canceled && !cancel.is_fired() && watchdog.stop().await;

    WorkflowOutcome {
        success: !canceled && !result.failed && result.error.is_none(),
        canceled,
        timed_out,
        error: if canceled { None } else { result.error },
        cleanup_error,
        started,
        finished: unix_now(),
        steps: final_states(&ctx, &conf),
    }
}

/// What the stages have come to so far.
#[derive(Default)]
struct Progress {
    failed: bool,
    /// The first error (what the agent reports in `Done.error`).
    error: Option<String>,
    /// The rest of detached steps and services, running beside the stages.
    background: JoinSet<()>,
}

impl Progress {
    fn fail(&mut self, error: Option<String>) {
        self.failed = true;
        if self.error.is_none() {
            self.error = error;
        }
    }
}

/// The stages one after another, the steps of a stage at once (at most `parallelism`), until
/// the end or a cancel.
async fn run_stages<B: Backend>(ctx: &Arc<Ctx<B>>, conf: &WorkflowConfig, result: &mut Progress) {
    let permits = if ctx.opts.parallelism == 0 {
        Semaphore::MAX_PERMITS
    } else {
        ctx.opts.parallelism
    };
    let semaphore = Arc::new(Semaphore::new(permits));
    for stage in &conf.stages {
        if ctx.cancel.is_fired() {
            break;
        }
        let failed_at_start = result.failed;
        let mut steps = JoinSet::new();
        for s in &stage.steps {
            steps.spawn(step::run(ctx.clone(), s.clone(), failed_at_start, semaphore.clone()));
        }
        while let Some(joined) = steps.join_next().await {
            match joined {
                Ok(StepEnd::Ok | StepEnd::Canceled) => {}
                Ok(StepEnd::Detached(rest)) => {
                    result.background.spawn(rest);
                }
                Ok(StepEnd::Failed { error }) => result.fail(error),
                Err(join) => result.fail(Some(format!("a step task died: {join}"))),
            }
        }
    }
}

/// Cancels the workflow on the caller's cancel or at the timeout, and remembers which.
struct Watchdog {
    task: JoinSet<()>,
    /// Set when the timeout, not the caller or the backend, canceled the workflow.
    timed_out: Arc<std::sync::atomic::AtomicBool>,
}

impl Watchdog {
    fn start(cancel: &Shutdown, timeout: Option<Duration>, trigger: Arc<Trigger>) -> Self {
        let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut task = JoinSet::new();
        let mut outer = cancel.clone();
        let flag = timed_out.clone();
        task.spawn(async move {
            tokio::select! {
                _ = outer.wait() => {}
                _ = sleep_or_forever(timeout) => flag.store(true, std::sync::atomic::Ordering::SeqCst),
            };
            trigger.fire();
        });
        Watchdog { task, timed_out }
    }

    /// Stops it; whether the timeout fired.
    async fn stop(mut self) -> bool {
        self.task.abort_all();
        while self.task.join_next().await.is_some() {}
        self.timed_out.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The final state of every step, in the workflow's order.
fn final_states<B>(ctx: &Ctx<B>, conf: &WorkflowConfig) -> Vec<(Step, StepState)> {
    let order: HashMap<&str, usize> = conf
        .stages
        .iter()
        .flat_map(|s| &s.steps)
        .enumerate()
        .map(|(i, s)| (s.uuid.as_str(), i))
        .collect();
    let mut steps = std::mem::take(&mut *ctx.finals.lock().unwrap_or_else(|p| p.into_inner()));
    steps.sort_by_key(|(s, _)| order.get(s.uuid.as_str()).copied().unwrap_or(usize::MAX));
    steps
}

async fn sleep_or_forever(timeout: Option<Duration>) {
    match timeout {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
