//! What a step's log says while its pod is not running yet: why Kubernetes is keeping it
//! waiting, and the Warning Events of the pod (and of the workflow volume). Decides when to
//! look (not aggressively) and which lines are new.
//!
//! Pure: events and reasons in, log lines out. The listing itself is in `mod.rs`.

use std::collections::HashSet;
use std::time::Duration;

use kube::types::Event;

use super::classify::Why;

/// When to list events again, given how long the pod has been pending: not before it has been
/// pending for a moment (most pods start within a second or two), then at a slowing pace.
pub fn next_look(pending_for: Duration) -> Duration {
    let steps = [2, 5, 10, 20, 30];
    let secs = pending_for.as_secs();
    let at = steps
        .iter()
        .copied()
        .find(|s| *s > secs)
        .unwrap_or((secs / 30 + 1) * 30);
    Duration::from_secs(at) - pending_for.min(Duration::from_secs(at))
}

/// Progress the cluster is making on a pending pod, which does not count against the start
/// timeout: a node being added for it, or its image being pulled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The cluster autoscaler (`TriggeredScaleUp`) or Karpenter (`Nominated`) is adding a node
    /// for the pod, which is not scheduled yet. The event's message.
    ScaleUp(String),
    /// The kubelet started pulling an image (`Pulling`) and has not finished or failed yet.
    Pulling(String),
}

/// Reasons of pod events that say a node is being added for the pod: the cluster autoscaler's
/// `TriggeredScaleUp`, Karpenter's `Nominated` (a NodeClaim is launched for it).
const SCALE_UP_REASONS: &[&str] = &["TriggeredScaleUp", "Nominated"];

/// The most the start timeout is extended by, in all, however long the progress lasts: a scale-up
/// or pull that never ends must still fail the step.
pub const MAX_CREDIT: Duration = Duration::from_secs(30 * 60);

/// What progress the events show for a pod not running yet (`scheduled`: whether it has a node).
pub fn progress(events: &[Event], scheduled: bool) -> Option<Progress> {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by(by_stamp);
    if !scheduled
        && let Some(e) = sorted
            .iter()
            .rev()
            .find(|e| SCALE_UP_REASONS.contains(&e.reason.as_str()))
    {
        return Some(Progress::ScaleUp(e.message.trim_end().to_string()));
    }
    // A pull is in progress when the latest pull event is `Pulling` and no pull has failed yet:
    // retries after a failure count against the grace as before.
    if sorted.iter().any(|e| matches!(e.reason.as_str(), "Failed" | "BackOff")) {
        return None;
    }
    let last_pull = sorted.iter().rev().find(|e| {
        matches!(
            e.reason.as_str(),
            "Pulling" | "Pulled" | "Failed" | "BackOff" | "ErrImageNeverPull"
        )
    })?;
    (last_pull.reason == "Pulling").then(|| Progress::Pulling(last_pull.message.trim_end().to_string()))
}

/// Remembers what the log already said, so each reason and event appears once.
#[derive(Debug, Default)]
pub struct PendingLog {
    said: HashSet<String>,
    last_why: Option<Why>,
    last_progress: Option<Progress>,
    /// When the previous look happened (`None`: none yet), for the credit.
    last_look: Option<Duration>,
    credited: Duration,
}

impl PendingLog {
    pub fn new() -> Self {
        PendingLog::default()
    }

    /// A line when the reason the pod waits changed (`None` when it did not, or there is none).
    pub fn why_line(&mut self, pod: &str, why: Option<&Why>) -> Option<String> {
        let why = why?;
        if self.last_why.as_ref() == Some(why) {
            return None;
        }
        self.last_why = Some(why.clone());
        Some(format!("[kubernetes] pod {pod} is waiting: {why}"))
    }

    /// At a look after `pending_for` of pending: how much time to take off the start timeout's
    /// clock (the time since the previous look, when the cluster is making `progress`, up to
    /// [`MAX_CREDIT`] in all), and a line when what the pod waits for changed.
    pub fn credit(
        &mut self,
        pod: &str,
        pending_for: Duration,
        progress: Option<Progress>,
    ) -> (Duration, Option<String>) {
        let since = self.last_look.unwrap_or(Duration::ZERO);
        let mut credit = Duration::ZERO;
        if progress.is_some() {
            credit = pending_for
                .saturating_sub(since)
                .min(MAX_CREDIT.saturating_sub(self.credited));
            self.credited += credit;
        }
        // The clock the caller keeps runs `credit` behind from now on.
        self.last_look = Some(pending_for - credit);
        if progress == self.last_progress {
            return (credit, None);
        }
        self.last_progress = progress.clone();
        let Some(progress) = progress else {
            return (credit, None);
        };
        let line = match progress {
            Progress::ScaleUp(msg) => format!(
                "[kubernetes] pod {pod} is waiting for a new node ({msg}); the time this takes does not count against the start timeout"
            ),
            Progress::Pulling(msg) => format!(
                "[kubernetes] pod {pod} is waiting for its image ({msg}); the time this takes does not count against the start timeout"
            ),
        };
        (credit, Some(line))
    }

    /// Lines for the Warning events not shown yet, oldest first. An event counted again with the
    /// same reason and message is not repeated.
    pub fn event_lines(&mut self, events: &[Event]) -> Vec<String> {
        let mut warnings: Vec<&Event> = events.iter().filter(|e| e.type_ == "Warning").collect();
        warnings.sort_by(by_stamp);
        let mut lines = Vec::new();
        for e in warnings {
            let object = format!("{} {}", e.involved_object.kind.to_lowercase(), e.involved_object.name);
            let line = format!("[kubernetes] {object}: {}: {}", e.reason, e.message.trim_end());
            if self.said.insert(line.clone()) {
                lines.push(line);
            }
        }
        lines
    }
}

/// Oldest first; one function, so both sorts share one copy of the sort code.
fn by_stamp(a: &&Event, b: &&Event) -> std::cmp::Ordering {
    stamp(a).cmp(stamp(b))
}

fn stamp(e: &Event) -> &str {
    e.last_timestamp
        .as_deref()
        .or(e.first_timestamp.as_deref())
        .or(e.metadata.creation_timestamp.as_deref())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, name: &str, type_: &str, reason: &str, message: &str, at: &str) -> Event {
        let mut e = Event::default();
        e.involved_object.kind = kind.into();
        e.involved_object.name = name.into();
        e.type_ = type_.into();
        e.reason = reason.into();
        e.message = message.into();
        e.last_timestamp = Some(at.into());
        e
    }

    #[test]
    fn looks_at_a_slowing_pace() {
        let at = |s| next_look(Duration::from_secs(s)).as_secs();
        assert_eq!(at(0), 2);
        assert_eq!(at(2), 3);
        assert_eq!(at(5), 5);
        assert_eq!(at(10), 10);
        assert_eq!(at(29), 1);
        assert_eq!(at(30), 30);
        assert_eq!(at(75), 15);
        // Over a 5-minute start timeout that is at most 14 looks.
        let mut t = 0;
        let mut looks = 0;
        while t < 300 {
            t += at(t);
            looks += 1;
        }
        assert!(looks <= 14, "{looks}");
    }

    #[test]
    fn warnings_once_each_oldest_first_normals_never() {
        let mut log = PendingLog::new();
        let events = vec![
            event(
                "Pod",
                "wp-1",
                "Warning",
                "FailedMount",
                "MountVolume failed\n",
                "2026-01-01T00:00:05Z",
            ),
            event("Pod", "wp-1", "Normal", "Scheduled", "assigned", "2026-01-01T00:00:01Z"),
            event(
                "Pod",
                "wp-1",
                "Warning",
                "FailedScheduling",
                "0/1 nodes",
                "2026-01-01T00:00:02Z",
            ),
        ];
        assert_eq!(
            log.event_lines(&events),
            vec![
                "[kubernetes] pod wp-1: FailedScheduling: 0/1 nodes",
                "[kubernetes] pod wp-1: FailedMount: MountVolume failed",
            ]
        );
        assert!(log.event_lines(&events).is_empty());
        let pvc = event(
            "PersistentVolumeClaim",
            "wp-vol",
            "Warning",
            "ProvisioningFailed",
            "no class",
            "x",
        );
        assert_eq!(
            log.event_lines(&[pvc]),
            vec!["[kubernetes] persistentvolumeclaim wp-vol: ProvisioningFailed: no class"]
        );
    }

    #[test]
    fn scale_ups_and_pulls_are_progress_and_credited() {
        let scale = event(
            "Pod",
            "wp-1",
            "Normal",
            "TriggeredScaleUp",
            "pod triggered scale-up: [{pool 0->1 (max: 3)}]",
            "2026-01-01T00:00:01Z",
        );
        let karpenter = event(
            "Pod",
            "wp-1",
            "Normal",
            "Nominated",
            "Pod should schedule on: nodeclaim/default-x",
            "2026-01-01T00:00:01Z",
        );
        let pulling = event(
            "Pod",
            "wp-1",
            "Normal",
            "Pulling",
            "Pulling image \"big:1\"",
            "2026-01-01T00:00:03Z",
        );
        let pulled = event(
            "Pod",
            "wp-1",
            "Normal",
            "Pulled",
            "Successfully pulled",
            "2026-01-01T00:00:09Z",
        );
        assert_eq!(
            progress(std::slice::from_ref(&scale), false),
            Some(Progress::ScaleUp(
                "pod triggered scale-up: [{pool 0->1 (max: 3)}]".into()
            ))
        );
        assert!(matches!(
            progress(std::slice::from_ref(&karpenter), false),
            Some(Progress::ScaleUp(_))
        ));
        assert_eq!(
            progress(std::slice::from_ref(&scale), true),
            None,
            "scheduled: the scale-up is over"
        );
        assert!(matches!(
            progress(&[scale.clone(), pulling.clone()], true),
            Some(Progress::Pulling(_))
        ));
        assert_eq!(progress(&[scale, pulling.clone(), pulled], true), None);
        let failed = event(
            "Pod",
            "wp-1",
            "Warning",
            "Failed",
            "Error: ErrImagePull",
            "2026-01-01T00:00:02Z",
        );
        assert_eq!(
            progress(&[failed, pulling], true),
            None,
            "a retry after a failed pull is no progress"
        );

        let mut log = PendingLog::new();
        let s = |n| Duration::from_secs(n);
        let up = Some(Progress::ScaleUp("x".into()));
        // Looks at 2 s, then (on the credited clock) 2 s later again, then without progress.
        let (c, line) = log.credit("wp-1", s(2), up.clone());
        assert_eq!(c, s(2));
        assert!(line.unwrap().contains("waiting for a new node (x)"));
        let (c, line) = log.credit("wp-1", s(2), up.clone());
        assert_eq!(
            (c, line),
            (s(2), None),
            "the caller's clock ran 2 s behind, so 2 s more"
        );
        let (c, _) = log.credit("wp-1", s(3), None);
        assert_eq!(c, Duration::ZERO);
        // Never more than MAX_CREDIT in all.
        let mut log = PendingLog::new();
        let (c, _) = log.credit("wp-1", MAX_CREDIT + s(100), up);
        assert_eq!(c, MAX_CREDIT);
    }

    #[test]
    fn a_reason_is_said_when_it_changes() {
        let mut log = PendingLog::new();
        let a = Why::new("Unschedulable", "0/1 nodes");
        assert_eq!(
            log.why_line("wp-1", Some(&a)).as_deref(),
            Some("[kubernetes] pod wp-1 is waiting: Unschedulable: 0/1 nodes")
        );
        assert_eq!(log.why_line("wp-1", Some(&a)), None);
        assert_eq!(log.why_line("wp-1", None), None);
        let b = Why::new("ErrImagePull", "not found");
        assert!(log.why_line("wp-1", Some(&b)).is_some());
    }
}
