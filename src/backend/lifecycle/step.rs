//! One step from pod creation to its result: explains the wait while the pod is pending (its
//! reason and Warning events, into the step log), follows the container log to its end, then
//! reports the exact result. Runs as one task per step, owned by the backend's `JoinSet`.
//!
//! Knows the follower, the log and event calls of `kubeio`; knows nothing of other steps.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::{Duration, timeout};

use super::classify::{Verdict, Why, infra_reason, is_infra};
use super::follow::{Follower, Wake};
use super::kubeio::KubeIo;
use super::pending::PendingLog;
use super::podwatch::Seen;
use crate::Shutdown;
use crate::backend::State;
use crate::backend::loglines::{BATCH, LogSender};
use crate::error_chain::one_line as chain;
use kube::types::Pod;

/// After this agent deleted the pod (cancel, detached steps and services), how long its log may
/// go without a byte before it is cut; the pod's own end gets [`StepTask::log_idle`].
const LOG_IDLE_DELETED: Duration = Duration::from_secs(2);

/// How long a re-created pod's predecessor may take to disappear, and the new one to show up.
const RECREATE_WAIT: Duration = Duration::from_secs(60);

/// Why a step's log ended before the follower said it was complete.
enum LogEnd {
    /// The follower gave up (its error).
    Broke(String),
    /// No byte for this long after the pod ended.
    Cut(Duration),
}

/// The step's result once known: `Some(None)` when the agent stopped before it was.
pub type StepOutcome = Option<Option<State>>;

pub struct StepTask {
    pub kube: KubeIo,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// Objects whose events explain a pending pod: the pod and the workflow volume.
    pub events_of: Vec<String>,
    /// The builders' warnings: the first lines of the log.
    pub warnings: Vec<String>,
    pub follower: Follower,
    /// The pod as built, to create it again after an infrastructure failure.
    pub pod_object: Pod,
    /// New pods left for infrastructure failures before the command starts, of how many.
    pub retries: (u32, u32),
    pub log: LogSender,
    /// Once the pod is over, how long its log may go without a byte before it is cut (said
    /// in the step log and the agent log). A log that still moves is never cut: the kubelet
    /// ends it.
    pub log_idle: Duration,
    pub outcome: watch::Sender<StepOutcome>,
    pub shutdown: Shutdown,
}

impl StepTask {
    pub async fn run(mut self) {
        let state = self.drive().await;
        self.outcome.send_replace(Some(state));
    }

    async fn drive(&mut self) -> Option<State> {
        for w in std::mem::take(&mut self.warnings) {
            self.say(w).await;
        }
        let mut pending = PendingLog::new();
        let mut shutdown = self.shutdown.clone();
        // 1. Until the container runs (or the pod is over).
        loop {
            match self.follower.next(&mut shutdown).await {
                Wake::Stop => return None,
                Wake::Look => self.look(&mut pending).await,
                Wake::Verdict(Verdict::Waiting(why)) => {
                    if let Some(line) = pending.why_line(&self.pod, why.as_ref()) {
                        self.say(line).await;
                    }
                }
                Wake::Verdict(Verdict::Started) => break,
                Wake::Verdict(Verdict::Finished { state, started }) => {
                    if started {
                        // It ran and ended between two looks: its whole log is still there.
                        self.read_log().await;
                    } else {
                        self.look(&mut pending).await;
                        let infra = state.error.clone().filter(|e| infra_reason(e).is_some());
                        if let Some(why) = infra
                            && self.recreate(&why).await
                        {
                            pending = PendingLog::new();
                            continue;
                        }
                    }
                    return Some(state);
                }
                Wake::Verdict(Verdict::FailedToStart(why)) => {
                    self.look(&mut pending).await;
                    if is_infra(&why.reason) && self.recreate(&why.to_string()).await {
                        pending = PendingLog::new();
                        continue;
                    }
                    let why = match self.follower.pod() {
                        Some(_) => why,
                        // The pod was created, yet the watch never showed it: say so, rather
                        // than blame the pod.
                        None => Why::new(
                            "NotWatched",
                            format!(
                                "the shared pod watch of namespace {} never reported this pod; can the agent list and watch pods there?",
                                self.namespace
                            ),
                        ),
                    };
                    return Some(self.failed_to_start(why).await);
                }
            }
        }
        // 2. Running: the log to its end, while the watch keeps the pod's state current.
        self.read_log().await;
        // 3. The result (the log reader may already have seen it).
        loop {
            match self.follower.terminal().cloned() {
                Some(Verdict::Finished { state, .. }) => return Some(state),
                Some(Verdict::FailedToStart(why)) => return Some(self.failed_to_start(why).await),
                _ => {}
            }
            if self.follower.next(&mut shutdown).await == Wake::Stop {
                return None;
            }
        }
    }

    /// A new pod in place of one the cluster took away before the step's command started
    /// (`why`); false when no retry is left, the agent is deleting the step, or it failed.
    async fn recreate(&mut self, why: &str) -> bool {
        let (left, total) = self.retries;
        if left == 0 || self.follower.deleted_by_us() {
            return false;
        }
        self.retries.0 -= 1;
        let pod = self.pod.clone();
        self.say(format!(
            "[kubernetes] pod {pod} was taken away before the step started ({why}); starting a new one (retry {} of {total})",
            total - left + 1
        ))
        .await;
        // It never ran: nothing to stop gracefully, and the name must be free again.
        match self.kube.delete::<Pod>(&self.namespace, &pod, Some(0)).await {
            Err(e) if !e.is_not_found() => {
                self.say(format!("[kubernetes] could not delete pod {pod}: {}", chain(&e)))
                    .await;
                return false;
            }
            _ => {}
        }
        if !self
            .follower
            .wait_seen(RECREATE_WAIT, |s| matches!(s, Seen::Gone(_)))
            .await
        {
            self.say(format!(
                "[kubernetes] pod {pod} did not go away within {RECREATE_WAIT:?}"
            ))
            .await;
            return false;
        }
        if self.follower.deleted_by_us() {
            return false; // canceled meanwhile
        }
        let uid = match self.kube.create(&self.namespace, &self.pod_object).await {
            Ok(created) => created.metadata.uid,
            Err(e) => {
                self.say(format!("[kubernetes] could not create pod {pod} again: {}", chain(&e)))
                    .await;
                return false;
            }
        };
        let seen_new = |s: &Seen| matches!(s, Seen::Present(p) if p.metadata.uid == uid);
        self.follower.wait_seen(RECREATE_WAIT, seen_new).await;
        self.follower.restart();
        true
    }

    async fn failed_to_start(&self, why: Why) -> State {
        self.say(format!("[kubernetes] pod {} could not start: {why}", self.pod))
            .await;
        State {
            exit_code: 1,
            exited: false,
            error: Some(format!("could not start: {why}")),
            ..State::default()
        }
    }

    /// Follows the container log to its end. The shared watch says when the container is
    /// over; from then on the follower reads on until the kubelet ends the stream (and the
    /// confirming read is done), and is cut only when no byte came for the idle limit while
    /// it waited for one (not while it waited for the step's reader).
    async fn read_log(&mut self) {
        let (done_tx, done_rx) = watch::channel(false);
        let mut lines = self
            .kube
            .follow_log(&self.namespace, &self.pod, &self.container, done_rx);
        let received = lines.progress();
        let delivered = AtomicU64::new(0);
        // Both futures below run in this one task; atomics only because the task must be Sync.
        let sending = AtomicBool::new(false);
        let log = &self.log;
        let log_idle = self.log_idle;
        let follower = &mut self.follower;
        let mut shutdown = self.shutdown.clone();
        let pump = async {
            loop {
                match lines.next_lines(BATCH).await {
                    Ok(Some(batch)) => {
                        delivered.fetch_add(batch.len() as u64, Relaxed);
                        sending.store(true, Relaxed);
                        let _ = log.send_lines(batch).await;
                        sending.store(false, Relaxed);
                    }
                    Ok(None) => return None,
                    Err(e) => return Some(chain(&e)),
                }
            }
        };
        let idle = async {
            while follower.terminal().is_none() {
                if follower.next(&mut shutdown).await == Wake::Stop {
                    return None;
                }
            }
            done_tx.send_replace(true);
            // Our own delete (cancel, detached steps): the rest of the log is not awaited long.
            let limit = if follower.deleted_by_us() {
                LOG_IDLE_DELETED
            } else {
                log_idle
            };
            let tick = (limit / 4).min(Duration::from_secs(1));
            let (mut last, mut quiet) = (received.load(Relaxed), Duration::ZERO);
            loop {
                tokio::time::sleep(tick).await;
                let now = received.load(Relaxed);
                if now != last || sending.load(Relaxed) {
                    (last, quiet) = (now, Duration::ZERO);
                    continue;
                }
                quiet += tick;
                if quiet >= limit {
                    return Some(limit);
                }
            }
        };
        let end = tokio::select! {
            broke = pump => broke.map(LogEnd::Broke),
            cut = idle => cut.map(LogEnd::Cut),
        };
        // After our own delete the log may be gone before its last read: not worth a line.
        if self.follower.deleted_by_us() {
            return;
        }
        let pod = &self.pod;
        let n = delivered.load(Relaxed);
        let why = match end {
            None => return,
            Some(LogEnd::Broke(e)) => format!("the log of pod {pod} broke off after {n} lines: {e}"),
            Some(LogEnd::Cut(limit)) => format!(
                "the log of pod {pod} was cut after {n} lines: no byte for {}s after the pod ended",
                limit.as_secs_f64()
            ),
        };
        crate::log::log(
            crate::log::Level::WARN,
            &[
                ("pod", crate::log::LogValue::Str(pod)),
                ("lines", crate::log::LogValue::Int(n as i64)),
            ],
            format_args!("{why}"),
        );
        self.say(format!("[kubernetes] {why}")).await;
    }

    /// Lists the pending pod's events (and the volume's), writing the new warnings.
    async fn look(&mut self, pending: &mut PendingLog) {
        for name in self.events_of.clone() {
            let listed = timeout(Duration::from_secs(10), self.kube.events_for(&self.namespace, &name)).await;
            if let Ok(Ok(events)) = listed {
                for line in pending.event_lines(&events) {
                    self.say(line).await;
                }
                // Issue 17 hook: scale-ups and image pulls do not count against the start timeout.
                if name == self.pod {
                    let scheduled = self.follower.pod().is_some_and(|p| !p.spec.node_name.is_empty());
                    let progress = super::pending::progress(&events, scheduled);
                    let (credit, line) = pending.credit(&self.pod, self.follower.pending_for(), progress);
                    self.follower.credit(credit);
                    if let Some(line) = line {
                        self.say(line).await;
                    }
                }
            }
            // A failed look is not worth failing the step for: the next one may work, and
            // the start timeout bounds the wait anyway.
        }
    }

    async fn say(&self, line: String) {
        self.say_bytes(Bytes::from(line)).await;
    }

    /// A closed receiver (nobody tails) is fine: the step still runs to its result.
    async fn say_bytes(&self, line: Bytes) {
        let _ = self.log.send(line).await;
    }
}
