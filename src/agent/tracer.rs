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
        self.reporter.log(proto::LogEntry {
            step_uuid: step.uuid.clone(),
            time: line.time,
            line: line.line as i32,
            r#type: entry_type(line.kind),
            data: line.data,
        });
    }
}
