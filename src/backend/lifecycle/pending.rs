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

/// Remembers what the log already said, so each reason and event appears once.
#[derive(Debug, Default)]
pub struct PendingLog {
    said: HashSet<String>,
    last_why: Option<Why>,
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

    /// Lines for the Warning events not shown yet, oldest first. An event counted again with the
    /// same reason and message is not repeated.
    pub fn event_lines(&mut self, events: &[Event]) -> Vec<String> {
        let mut warnings: Vec<&Event> = events.iter().filter(|e| e.type_ == "Warning").collect();
        warnings.sort_by(|a, b| stamp(a).cmp(stamp(b)));
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
