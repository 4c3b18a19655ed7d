//! Follows one step's pod on the shared watch: re-classifies it on every change and at the
//! moments a verdict can change with time alone (the grace, the start timeout), and says when it
//! is time to look at the pod's events. No requests of its own: no per-step polling.
//!
//! Knows the classifier and the per-pod receiver; knows nothing of HTTP or logs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;
use tokio::time::{Duration, Instant, sleep_until};

use super::classify::{Limits, Observation, Verdict, classify};
use super::pending;
use super::podwatch::Seen;
use crate::Shutdown;
use kube::types::Pod;

/// Why [`Follower::next`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// A verdict different from the last one returned.
    Verdict(Verdict),
    /// The pod is still pending and it is time to list its events.
    Look,
    /// The agent is shutting down, or the shared watch is gone.
    Stop,
}

pub struct Follower {
    rx: watch::Receiver<Seen>,
    limits: Limits,
    since: Instant,
    next_look: Instant,
    deleted_by_us: Arc<AtomicBool>,
    last: Option<Verdict>,
}

impl Follower {
    /// `since` is when the step was started: the pending clock runs from there.
    pub fn new(rx: watch::Receiver<Seen>, limits: Limits, since: Instant, deleted_by_us: Arc<AtomicBool>) -> Self {
        Follower {
            rx,
            limits,
            since,
            next_look: since + pending::next_look(Duration::ZERO),
            deleted_by_us,
            last: None,
        }
    }

    /// The terminal verdict (`Finished` or `FailedToStart`), once one was returned.
    pub fn terminal(&self) -> Option<&Verdict> {
        self.last
            .as_ref()
            .filter(|v| matches!(v, Verdict::Finished { .. } | Verdict::FailedToStart(_)))
    }

    /// Whether this agent deleted the pod (its end then needs no long log drain).
    pub fn deleted_by_us(&self) -> bool {
        self.deleted_by_us.load(Ordering::SeqCst)
    }

    /// The pod as last seen (`None` before the watch saw it).
    pub fn pod(&self) -> Option<Pod> {
        self.rx.borrow().pod().cloned()
    }

    /// Waits (up to `limit`) until the watch's view of the pod satisfies `pred`; whether it did.
    pub async fn wait_seen(&mut self, limit: Duration, pred: impl FnMut(&Seen) -> bool) -> bool {
        matches!(tokio::time::timeout(limit, self.rx.wait_for(pred)).await, Ok(Ok(_)))
    }

    /// Starts over for a re-created pod: the pending clock, the look schedule, the last verdict.
    pub fn restart(&mut self) {
        self.since = Instant::now();
        self.next_look = self.since + pending::next_look(Duration::ZERO);
        self.last = None;
    }

    /// How long the pod has been pending, as the start timeout counts it.
    pub fn pending_for(&self) -> Duration {
        self.since.elapsed()
    }

    /// Takes `by` off the pending clock: time the cluster spent making progress (a scale-up, an
    /// image pull) does not count against the start timeout (see `pending::PendingLog::credit`).
    pub fn credit(&mut self, by: Duration) {
        self.since = (self.since + by).min(Instant::now());
    }

    /// Classifies the latest state now.
    pub fn verdict(&mut self) -> Verdict {
        let seen = self.rx.borrow_and_update();
        let unseen = Pod::default();
        let (pod, gone) = match &*seen {
            Seen::Unknown => (&unseen, false),
            Seen::Present(p) => (p, false),
            Seen::Gone(p) => (p, true),
        };
        let obs = Observation {
            pod,
            gone,
            deleted_by_us: self.deleted_by_us.load(Ordering::SeqCst),
            pending_for: self.since.elapsed(),
        };
        classify(obs, &self.limits)
    }

    /// Waits for the next thing the caller must act on. After a terminal verdict (`Finished`,
    /// `FailedToStart`) the caller stops calling.
    pub async fn next(&mut self, shutdown: &mut Shutdown) -> Wake {
        loop {
            let v = self.verdict();
            if self.last.as_ref() != Some(&v) {
                self.last = Some(v.clone());
                return Wake::Verdict(v);
            }
            let pending = matches!(v, Verdict::Waiting(_));
            let timer = self.next_timer(pending);
            tokio::select! {
                changed = self.rx.changed() => {
                    if changed.is_err() {
                        return Wake::Stop;
                    }
                }
                _ = sleep_until(timer.unwrap_or_else(far_future)), if timer.is_some() => {
                    if pending && Instant::now() >= self.next_look {
                        self.next_look = Instant::now() + pending::next_look(self.since.elapsed());
                        return Wake::Look;
                    }
                }
                _ = shutdown.wait() => return Wake::Stop,
            }
        }
    }

    /// The next moment the verdict or the look schedule can change without a pod event.
    fn next_timer(&self, pending: bool) -> Option<Instant> {
        if !pending {
            return None;
        }
        let now = Instant::now();
        [
            self.next_look,
            self.since + self.limits.grace,
            self.since + self.limits.start_timeout,
        ]
        .into_iter()
        .filter(|t| *t > now)
        .min()
        .or(Some(now))
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::lifecycle::classify::Why;
    use crate::backend::lifecycle::podwatch::{Input, PodWatch};
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "uid": "u"},
            "spec": {"containers": [{"name": "p"}]},
            "status": status,
        }))
        .unwrap()
    }

    fn limits() -> Limits {
        Limits {
            start_timeout: Duration::from_secs(60),
            grace: Duration::from_secs(20),
        }
    }

    fn follower(w: &PodWatch) -> Follower {
        Follower::new(w.register("p"), limits(), Instant::now(), Arc::default())
    }

    #[tokio::test(start_paused = true)]
    async fn reports_start_then_the_exit_code() {
        let w = PodWatch::new();
        let mut f = follower(&w);
        let mut sd = Shutdown::never();
        assert_eq!(f.next(&mut sd).await, Wake::Verdict(Verdict::Waiting(None)));
        w.apply(Input::Applied(pod(json!({"phase": "Running",
            "containerStatuses": [{"name": "p", "state": {"running": {}}}]}))));
        assert_eq!(f.next(&mut sd).await, Wake::Verdict(Verdict::Started));
        w.apply(Input::Deleted(pod(json!({"phase": "Failed",
            "containerStatuses": [{"name": "p", "state": {"terminated": {"exitCode": 7}}}]}))));
        let Wake::Verdict(Verdict::Finished { state, started: true }) = f.next(&mut sd).await else {
            panic!()
        };
        assert_eq!(state.exit_code, 7);
        assert!(state.error.is_some(), "deleted by someone else");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_pod_gets_looks_then_fails_at_the_timeout() {
        let w = PodWatch::new();
        let t0 = Instant::now();
        let mut f = follower(&w);
        let mut sd = Shutdown::never();
        let msg = "0/1 nodes are available";
        w.apply(Input::Applied(pod(json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg}]}))));
        assert_eq!(
            f.next(&mut sd).await,
            Wake::Verdict(Verdict::Waiting(Some(Why::new("Unschedulable", msg))))
        );
        let mut looks = 0;
        let why = loop {
            match f.next(&mut sd).await {
                Wake::Look => looks += 1,
                Wake::Verdict(Verdict::FailedToStart(why)) => break why,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(t0.elapsed().as_secs(), 60, "fails exactly at the start timeout");
        assert!((3..=6).contains(&looks), "{looks} looks in 60s");
        assert!(why.message.starts_with(msg));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pull_error_fails_after_the_grace_without_any_event() {
        let w = PodWatch::new();
        let t0 = Instant::now();
        let mut f = follower(&w);
        let mut sd = Shutdown::never();
        w.apply(Input::Applied(pod(json!({"phase": "Pending",
            "containerStatuses": [{"name": "p", "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}]}))));
        loop {
            if let Wake::Verdict(Verdict::FailedToStart(why)) = f.next(&mut sd).await {
                assert_eq!(why.reason, "ErrImagePull");
                break;
            }
        }
        assert_eq!(t0.elapsed().as_secs(), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_the_wait() {
        let w = PodWatch::new();
        let mut f = follower(&w);
        let (trigger, mut sd) = crate::shutdown::channel();
        assert!(matches!(f.next(&mut sd).await, Wake::Verdict(_)));
        trigger.fire();
        assert_eq!(f.next(&mut sd).await, Wake::Stop);
    }
}
