//! The runtime's [`Tracer`] for one workflow in agent mode: step states become `Update`s, log
//! lines become `LogEntry`s, both through the [`Reporter`] queue. Lines arrive masked: the
//! runtime's line writer masks every secret once, for the agent and `exec` alike. Also bumps the
//! step counters of the metrics registry.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::reporter::Reporter;
use super::{metrics, proto};
use crate::backend::Step;
use crate::pipeline::trace::{LogKind, LogLine, StepState, Tracer};

pub struct AgentTracer {
    pub workflow: String,
    pub reporter: Arc<Reporter>,
}

/// Woodpecker's `rpc.LogEntryType` number: `LogKind`'s discriminants are the wire values.
fn entry_type(kind: LogKind) -> i32 {
    kind as i32
}

impl Tracer for AgentTracer {
    fn step_state(&self, _step: &Step, s: &StepState) {
        let m = metrics::global();
        if s.finished == 0 && !s.exited && !s.skipped && !s.canceled && s.error.is_empty() {
            m.steps_started.fetch_add(1, Relaxed);
        } else if !s.skipped && !s.canceled && (s.exit_code != 0 || !s.error.is_empty()) {
            m.steps_failed.fetch_add(1, Relaxed);
        }
        let state = proto::StepStateMessage {
            step_uuid: s.step_uuid.clone(),
            started: s.started,
            finished: s.finished,
            exited: s.exited,
            exit_code: s.exit_code,
            error: s.error.clone(),
            canceled: s.canceled,
            skipped: s.skipped,
        };
        self.reporter.update(&self.workflow, state);
    }

    fn log_line(&self, step: &Step, line: LogLine) {
        self.reporter.log(log_entry(step, line));
    }

    /// The batch's text is first copied into one buffer of its own: a container log's lines
    /// are slices of its stream's read buffers, and the queue may hold them through a server
    /// outage (up to its bound), so each would otherwise keep its read buffer alive, stamps and
    /// framing included. Copied, what they hold is what the queue's bound counts.
    fn log_lines(&self, step: &Step, lines: Vec<LogLine>) {
        let total = lines.iter().map(|l| l.data.len()).sum();
        let mut text = bytes::BytesMut::with_capacity(total);
        for line in &lines {
            text.extend_from_slice(&line.data);
        }
        let mut text = text.freeze();
        self.reporter.log_many(lines.into_iter().map(|mut line| {
            line.data = text.split_to(line.data.len());
            log_entry(step, line)
        }));
    }

    /// The reporter's back-pressure: past its backlog the step's log reader waits for room,
    /// and the kubelet's log file holds the lines meanwhile.
    fn backlog(&self) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>> {
        let wait = self.reporter.backlog()?;
        Some(Box::pin(wait))
    }
}

fn log_entry(step: &Step, line: LogLine) -> proto::LogEntry {
    proto::LogEntry {
        step_uuid: step.uuid.clone(),
        time: line.time,
        line: line.line as i32,
        r#type: entry_type(line.kind),
        data: line.data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::trace::LogKind;

    /// A tracer on a reporter of `bound` bytes, and a step `U`.
    fn tracer(bound: usize) -> (AgentTracer, Arc<Reporter>, Step) {
        let reporter = Arc::new(Reporter::new(bound));
        let tracer = AgentTracer {
            workflow: "w".into(),
            reporter: reporter.clone(),
        };
        let step = Step {
            uuid: "U".into(),
            ..Default::default()
        };
        (tracer, reporter, step)
    }

    #[test]
    fn queued_lines_do_not_keep_their_read_buffer() {
        let (tracer, reporter, step) = tracer(1 << 20);
        let chunk = bytes::Bytes::from(b"2024-01-01T00:00:00Z one\n2024-01-01T00:00:00Z two\n".to_vec());
        let line = |at: usize, n: u32| LogLine {
            line: n,
            time: 0,
            kind: LogKind::Stdout,
            data: chunk.slice(at..at + 3),
        };
        tracer.log_lines(&step, vec![line(21, 0), line(46, 1)]);
        let queued = reporter.queued_logs();
        let texts: Vec<&[u8]> = queued.iter().map(|e| &e.data[..]).collect();
        assert_eq!(texts, [&b"one"[..], b"two"]);
        assert!(queued.iter().all(|e| e.step_uuid == "U"));
        assert!(
            chunk.try_into_mut().is_ok(),
            "a queued line still holds the read buffer"
        );
    }

    #[test]
    fn a_step_waits_while_the_reporter_is_past_its_backlog() {
        let (tracer, _, step) = tracer(64 << 20);
        assert!(tracer.backlog().is_none());
        let line = |n: u32| LogLine {
            line: n,
            time: 0,
            kind: LogKind::Stdout,
            data: bytes::Bytes::from(vec![b'x'; 64 << 10]),
        };
        let lines: Vec<LogLine> = (0..(crate::agent::reporter::LOG_BACKLOG >> 16) as u32 + 1)
            .map(line)
            .collect();
        tracer.log_lines(&step, lines);
        assert!(tracer.backlog().is_some(), "past the reporter's backlog the step waits");
    }
}
