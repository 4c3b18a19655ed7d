//! What the runtime reports while it runs a workflow: step states and log lines. The agent
//! forwards them to the server (Update, Log); `exec` prints them.
//!
//! CONTRACT: shared by `pipeline::runtime` (produces) and `agent` / `cli::exec` (consume).
//! Extend, do not rename, without telling both sides.

use crate::backend::Step;

/// Woodpecker's log entry types (`rpc.LogEntryType`), with its wire numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Stdout = 0,
    Stderr = 1,
    ExitCode = 2,
    Metadata = 3,
    Progress = 4,
}

/// One line of a step's output. Its step (and so its step uuid) is the one the tracer is
/// handed it with: a line carries nothing per step, so making and dropping one touches no
/// shared counter (the lines of a busy log are made on one thread and dropped on another).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// 0-based, per step, without gaps.
    pub line: u32,
    /// Seconds since the step started.
    pub time: i64,
    pub kind: LogKind,
    /// The line without its trailing newline.
    pub data: bytes::Bytes,
}

/// A run of a step's stdout lines as a container log gave them: numbered `first`, `first + 1`,
/// and so on, all at `time`, each item one line without its newline (masked already). A tracer
/// that prints them takes them as they are instead of a [`LogLine`] each
/// ([`Tracer::log_batch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineBatch {
    pub first: u32,
    pub time: i64,
    pub lines: Vec<bytes::Bytes>,
}

impl LineBatch {
    /// The batch as [`LogLine`]s.
    pub fn into_lines(self) -> Vec<LogLine> {
        let time = self.time;
        let lines = self.lines.into_iter().zip(self.first..);
        lines
            .map(|(data, line)| LogLine {
                line,
                time,
                kind: LogKind::Stdout,
                data,
            })
            .collect()
    }
}

/// A step's state as the server's `Update` carries it (`rpc.StepState`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepState {
    pub step_uuid: String,
    /// Unix seconds; 0 when not started.
    pub started: i64,
    /// Unix seconds; 0 while running.
    pub finished: i64,
    pub exited: bool,
    pub exit_code: i32,
    pub error: String,
    pub canceled: bool,
    pub skipped: bool,
}

/// Receives the runtime's reports. Called from many tasks at once; must not block for long.
pub trait Tracer: Send + Sync + 'static {
    /// A step changed state (started, finished, skipped, canceled).
    fn step_state(&self, step: &Step, state: &StepState);
    /// A step wrote a line (lines of one step arrive in order).
    fn log_line(&self, step: &Step, line: LogLine);
    /// Several lines of one step, in order (all a read of its log yielded); by default one
    /// [`Self::log_line`] each.
    fn log_lines(&self, step: &Step, lines: Vec<LogLine>) {
        for line in lines {
            self.log_line(step, line);
        }
    }
    /// A run of stdout lines as a container log gave them (the usual case of a busy log); by
    /// default made into [`LogLine`]s for [`Self::log_lines`].
    fn log_batch(&self, step: &Step, batch: LineBatch) {
        self.log_lines(step, batch.into_lines());
    }
    /// When the tracer holds more than it may (a slow terminal), a wait until it has room:
    /// the step's log reader awaits it, so only that step is held back. `None`: room now.
    fn backlog(&self) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>> {
        None
    }
}
