//! What `exec` prints: each log line prefixed by its step (by workflow/step when the run has
//! several workflows, coloured on a terminal), a live status line of the running steps on a
//! terminal, and at the end a table of the workflows and one of every step, including the
//! steps of workflows that did not run (skipped). The same rows give the `--report` JSON.
//! Implements the runtime's [`Tracer`]; knows nothing of backends.
//!
//! All output goes through one queue that a thread of its own writes out, everything that
//! gathered since its last write in system calls of about [`GATHER`] bytes, never flushed per
//! line. The steps' log lines are queued as they come (a batch of a step is one entry, its
//! lines not copied) and the writer thread formats them (prefix, invalid UTF-8 replaced), so a
//! busy log costs the steps' task a move per batch and the formatting runs beside it. A slow
//! terminal does not stall the run: the queue holds up to [`OUT_BOUND`] bytes, then the steps
//! whose lines arrive wait for room ([`Tracer::backlog`]), each on its own (its log reader
//! waits, so its follower stops reading; other steps go on).

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::backend::{Step, WorkflowConfig};
use crate::pipeline::trace::{LineBatch, LogKind, LogLine, StepState, Tracer};

use super::text::Text;

const COLORS: &[&str] = &["36", "33", "35", "32", "34", "91", "96", "93"];

/// Bytes held for the terminal before steps' log readers wait for room. A queued line counts
/// its text as printed and its [`LogLine`]. Four times [`GATHER`], so a busy log's reader goes
/// on while the writer gathers and writes (at 256 KiB with 64 KiB gathers it waited for room
/// most of the time: README, "Round of 2026-12-03, fifth session"); one run's fixed cost, not
/// one per stream.
pub const OUT_BOUND: usize = 512 << 10;

/// Once the writer thread has something to write, it waits up to [`GATHER_WAIT`] for this many
/// bytes, so that a busy log is written (and the writer woken) once per this much, not once per
/// batch of lines.
const GATHER: usize = 128 << 10;
const GATHER_WAIT: Duration = Duration::from_millis(1);

/// What the writer thread is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// Woken (or just done writing): about to take what is queued.
    Busy,
    /// Writing what it took, without the lock.
    Writing,
    /// Waiting for something to write.
    Idle,
    /// Has something, waits up to [`GATHER_WAIT`] for [`GATHER`] bytes.
    Gathering,
}

/// What waits for the writer thread, in order.
enum Out {
    /// Bytes as they are written.
    Text(Vec<u8>),
    /// A batch of one step's log lines, each to be written after `prefix`.
    Lines { prefix: Arc<[u8]>, lines: Vec<LogLine> },
    /// The same for a container log's lines as they came ([`LineBatch`]).
    Batch { prefix: Arc<[u8]>, lines: Vec<Bytes> },
}

impl Out {
    /// What the piece counts against [`OUT_BOUND`]: its text as printed and, for lines, what
    /// holds each of them in the queue.
    fn cost(&self) -> usize {
        match self {
            Out::Text(text) => text.len(),
            Out::Lines { prefix, lines } => lines_cost(prefix, lines.iter().map(|l| &l.data[..]), size_of::<LogLine>()),
            Out::Batch { prefix, lines } => lines_cost(prefix, lines.iter().map(|l| &l[..]), size_of::<Bytes>()),
        }
    }
}

/// Each line's text as printed and what holds it in the queue (`item` bytes a line).
fn lines_cost<'a>(prefix: &[u8], lines: impl ExactSizeIterator<Item = &'a [u8]>, item: usize) -> usize {
    let n = lines.len();
    let text: usize = lines.map(<[u8]>::len).sum();
    text + n * (prefix.len() + 1 + item)
}

/// How a workflow ended, in Woodpecker's status words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowStatus {
    Success,
    Failure,
    /// Canceled (Ctrl-C, SIGTERM, timeout).
    Killed,
    /// Not run: a dependency ended in a way its `runs_on` does not accept.
    Skipped,
}

impl FlowStatus {
    pub fn word(self) -> &'static str {
        match self {
            FlowStatus::Success => "success",
            FlowStatus::Failure => "failure",
            FlowStatus::Killed => "killed",
            FlowStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone)]
struct Row {
    workflow: usize,
    name: String,
    failure: String,
    color: &'static str,
    started: Option<Instant>,
    finished: Option<Instant>,
    state: Option<StepState>,
    /// Why the pod is not running yet, from the backend's `[kubernetes] ... is waiting:` line;
    /// cleared by the step's first own output.
    pending: Option<String>,
    /// `[name] ` as printed (coloured on a terminal), made at the first line.
    prefix: Option<Arc<[u8]>>,
}

#[derive(Debug, Clone)]
struct Flow {
    label: String,
    name: String,
    axis: std::collections::BTreeMap<String, String>,
    status: Option<FlowStatus>,
    /// Why it did not run, or the runtime's error.
    why: Option<String>,
    started: Option<Instant>,
    finished: Option<Instant>,
}

struct State {
    /// For the terminal, not yet taken by the writer thread.
    out: Vec<Out>,
    /// What `out` holds, in bytes (see [`OUT_BOUND`]).
    queued: usize,
    /// What the writer thread does; whoever adds bytes wakes it only when it waits for them
    /// (a wake-up is a system call, and a busy log adds bytes far more often than the writer
    /// writes).
    writer: Writer,
    /// [`Printer::kick`] decided to wake the writer: done once the lock is released.
    wake_writer: bool,
    /// Threads in [`Printer::drain`], woken when the writer is done with what it took.
    drainers: usize,
    /// The printer is gone: the writer writes what is left and ends.
    closed: bool,
    status_shown: bool,
    rows: Vec<Row>,
    by_uuid: HashMap<String, usize>,
    flows: Vec<Flow>,
}

impl State {
    /// Bytes to write as they are, after what is queued.
    fn put(&mut self, bytes: &[u8]) {
        self.queued += bytes.len();
        match self.out.last_mut() {
            Some(Out::Text(text)) => text.extend_from_slice(bytes),
            _ => self.out.push(Out::Text(bytes.to_vec())),
        }
    }

    /// Several workflows: lines and rows name the workflow too.
    fn multi(&self) -> bool {
        self.flows.len() > 1
    }

    fn row_name(&self, r: &Row) -> String {
        if self.multi() {
            format!("{}/{}", self.flows[r.workflow].label, r.name)
        } else {
            r.name.clone()
        }
    }
}

/// The printer's lock. Wakes the writer thread, if [`Printer::kick`] asked for it, once
/// released: a thread woken while the lock is still held would at once wait for the lock.
struct Locked<'a> {
    guard: Option<std::sync::MutexGuard<'a, State>>,
    wake: &'a Condvar,
}

impl std::ops::Deref for Locked<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.guard.as_deref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.guard.as_deref_mut().expect("held until dropped")
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            let wake = std::mem::take(&mut guard.wake_writer);
            drop(guard);
            if wake {
                self.wake.notify_one();
            }
        }
    }
}

/// The terminal (or pipe) `exec` writes to.
pub struct Printer {
    shared: Arc<Shared>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// Colours and the live status line.
    tty: bool,
}

/// What the printer and its writer thread share.
struct Shared {
    state: Mutex<State>,
    /// Wakes the writer (bytes to write, or closed).
    wake: Condvar,
    /// Wakes those waiting for the writer to be idle ([`Printer::drain`]).
    idle: Condvar,
    /// Wakes steps waiting for room in the buffer.
    room: tokio::sync::Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Printer {
    pub fn new(out: Box<dyn Write + Send>, tty: bool) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                out: Vec::new(),
                queued: 0,
                writer: Writer::Busy,
                wake_writer: false,
                drainers: 0,
                closed: false,
                status_shown: false,
                rows: Vec::new(),
                by_uuid: HashMap::new(),
                flows: Vec::new(),
            }),
            wake: Condvar::new(),
            idle: Condvar::new(),
            room: tokio::sync::Notify::new(),
        });
        let for_writer = shared.clone();
        let writer = std::thread::Builder::new()
            .name("exec-output".into())
            .spawn(move || write_out(&for_writer, out))
            .ok();
        Printer { shared, writer, tty }
    }

    fn lock(&self) -> Locked<'_> {
        Locked {
            guard: Some(self.shared.lock()),
            wake: &self.shared.wake,
        }
    }

    /// Queues a batch of one step's lines (made by `out` from the step's prefix) for the writer,
    /// counted against [`OUT_BOUND`]; `last` is the batch's last line, which sets or clears the
    /// step's waiting reason.
    fn queue_lines(&self, step: &Step, last: &[u8], out: impl FnOnce(Arc<[u8]>) -> Out) {
        let mut guard = self.lock();
        let s = &mut *guard;
        let row = s.by_uuid.get(&step.uuid).copied();
        let prefix = match row {
            Some(i) => match &s.rows[i].prefix {
                Some(prefix) => prefix.clone(),
                None => {
                    let prefix = self.prefix(&s.row_name(&s.rows[i]), s.rows[i].color);
                    s.rows[i].prefix = Some(prefix.clone());
                    prefix
                }
            },
            None => self.prefix(&step.name, COLORS[0]),
        };
        if let Some(i) = row {
            // Each line sets or clears the reason: the batch's last one has the last word.
            s.rows[i].pending = last
                .starts_with(b"[kubernetes] ")
                .then(|| pending_reason(&String::from_utf8_lossy(last)))
                .flatten();
        }
        self.clear_status(s);
        let piece = out(prefix);
        s.queued += piece.cost();
        s.out.push(piece);
        self.draw_status(s);
        self.kick(s);
    }

    /// Hands what `s` gathered to the writer thread: wakes it (once the lock is released) if
    /// it waits for bytes, or gathers them and [`GATHER`] is reached or someone waits for the
    /// output (a writer that is writing takes them when it is done).
    fn kick(&self, s: &mut State) {
        let wake = match s.writer {
            Writer::Idle => !s.out.is_empty(),
            Writer::Gathering => s.queued >= GATHER || s.drainers > 0,
            Writer::Busy | Writer::Writing => false,
        };
        if wake {
            s.writer = Writer::Busy;
            s.wake_writer = true;
        }
    }

    /// Waits until everything gathered so far is written.
    fn drain(&self) {
        let mut s = self.shared.lock();
        s.drainers += 1;
        while (!s.out.is_empty() || s.writer == Writer::Writing) && self.writer.is_some() {
            self.kick(&mut s);
            if std::mem::take(&mut s.wake_writer) {
                self.shared.wake.notify_one();
            }
            s = self.shared.idle.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.drainers -= 1;
    }

    /// Prints a line of `exec`'s own (headers, notes), above the status line.
    pub fn say(&self, text: &str) {
        let mut s = self.lock();
        self.write_line(&mut s, text);
    }

    /// Registers a workflow of the run and its steps (for the summary and the report); call
    /// for every workflow before any starts. Returns its index.
    pub fn add_workflow(
        &self,
        label: &str,
        name: &str,
        axis: &std::collections::BTreeMap<String, String>,
        config: &WorkflowConfig,
    ) -> usize {
        let mut s = self.lock();
        let idx = s.flows.len();
        s.flows.push(Flow {
            label: label.to_owned(),
            name: name.to_owned(),
            axis: axis.clone(),
            status: None,
            why: None,
            started: None,
            finished: None,
        });
        for step in config.stages.iter().flat_map(|st| &st.steps) {
            let color = COLORS[s.rows.len() % COLORS.len()];
            let row = s.rows.len();
            s.by_uuid.insert(step.uuid.clone(), row);
            s.rows.push(Row {
                workflow: idx,
                name: step.name.clone(),
                failure: step.failure.clone(),
                color,
                started: None,
                finished: None,
                state: None,
                pending: None,
                prefix: None,
            });
        }
        idx
    }

    /// Announces that a registered workflow starts.
    pub fn begin_workflow(&self, idx: usize, notes: &[String]) {
        let mut s = self.lock();
        s.flows[idx].started = Some(Instant::now());
        let name = s.flows[idx].label.clone();
        let header = if self.tty {
            format!("\x1b[1m# {name}\x1b[0m")
        } else {
            format!("# {name}")
        };
        self.write_line(&mut s, &header);
        for note in notes {
            self.write_line(&mut s, &format!("  note: {note}"));
        }
    }

    /// Records how a workflow ended (and says why when it did not succeed).
    pub fn end_workflow(&self, idx: usize, status: FlowStatus, why: Option<String>) {
        let mut s = self.lock();
        let flow = &mut s.flows[idx];
        flow.status = Some(status);
        flow.finished = Some(Instant::now());
        flow.why = why.clone();
        let label = flow.label.clone();
        if let Some(why) = why {
            self.write_line(&mut s, &format!("# {label}: {why}"));
        }
    }

    /// A registered workflow that will not run: every step of it is skipped.
    pub fn skip_workflow(&self, idx: usize, why: &str) {
        let mut s = self.lock();
        let flow = &mut s.flows[idx];
        flow.status = Some(FlowStatus::Skipped);
        flow.why = Some(why.to_owned());
        let label = flow.label.clone();
        for r in s.rows.iter_mut().filter(|r| r.workflow == idx) {
            r.state = Some(StepState {
                skipped: true,
                ..Default::default()
            });
        }
        self.write_line(&mut s, &format!("# {label}: skipped ({why})"));
    }

    fn write_line(&self, s: &mut State, text: &str) {
        self.clear_status(s);
        s.put(text.as_bytes());
        s.put(b"\n");
        self.draw_status(s);
        self.kick(s);
    }

    fn clear_status(&self, s: &mut State) {
        if self.tty && s.status_shown {
            s.put(b"\r\x1b[2K");
        }
    }

    fn draw_status(&self, s: &mut State) {
        if self.tty {
            let status = status_line(s);
            s.status_shown = !status.is_empty();
            if s.status_shown {
                s.put(format!("\x1b[2m{status}\x1b[0m").as_bytes());
            }
        }
    }

    /// Redraws the status line (call about once a second on a terminal).
    pub fn tick(&self) {
        if !self.tty {
            return;
        }
        let mut s = self.lock();
        s.put(b"\r\x1b[2K");
        s.status_shown = false;
        self.draw_status(&mut s);
        self.kick(&mut s);
    }

    /// Clears the status line and prints the summary tables.
    pub fn finish(&self) {
        let mut s = self.lock();
        if self.tty && s.status_shown {
            s.put(b"\r\x1b[2K");
            s.status_shown = false;
        }
        let mut text = String::from("\n");
        if s.multi() {
            text.push_str(&workflow_table(&s));
            text.push('\n');
        }
        text.push_str(&summary(&s));
        s.put(text.as_bytes());
        self.kick(&mut s);
        drop(s);
        self.drain();
    }

    /// The run as JSON: status, then every workflow with its steps (status, exit code, error,
    /// duration).
    pub fn report(&self) -> serde_json::Value {
        let s = self.lock();
        let secs = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => serde_json::json!((b - a).as_secs_f64()),
            _ => serde_json::Value::Null,
        };
        let flows: Vec<serde_json::Value> = s
            .flows
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let steps: Vec<serde_json::Value> = s
                    .rows
                    .iter()
                    .filter(|r| r.workflow == i)
                    .map(|r| {
                        let st = r.state.clone().unwrap_or_default();
                        serde_json::json!({
                            "name": r.name,
                            "status": step_status(r, f.status),
                            "exit_code": st.exit_code,
                            "error": st.error,
                            "failure": r.failure,
                            "duration_seconds": secs(r.started, r.finished),
                        })
                    })
                    .collect();
                serde_json::json!({
                    "name": f.name,
                    "matrix": f.axis,
                    "status": f.status.map(FlowStatus::word).unwrap_or("pending"),
                    "error": f.why.clone().unwrap_or_default(),
                    "duration_seconds": secs(f.started, f.finished),
                    "steps": steps,
                })
            })
            .collect();
        let ran: Vec<FlowStatus> = s.flows.iter().filter_map(|f| f.status).collect();
        let status = if ran.contains(&FlowStatus::Killed) {
            "killed"
        } else if ran.contains(&FlowStatus::Failure) {
            "failure"
        } else {
            "success"
        };
        serde_json::json!({ "status": status, "workflows": flows })
    }
}

fn status_line(s: &State) -> String {
    let running: Vec<String> = s
        .rows
        .iter()
        .filter(|r| r.started.is_some() && r.finished.is_none())
        .map(|r| {
            let time = secs(r.started.map(|t| t.elapsed()).unwrap_or_default());
            let name = s.row_name(r);
            match &r.pending {
                Some(why) => format!("{name} {time} (waiting: {why})"),
                None => format!("{name} {time}"),
            }
        })
        .collect();
    if running.is_empty() {
        String::new()
    } else {
        format!("running: {}", running.join(", "))
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The short reason of a backend "is waiting" line (`ImagePullBackOff`, `Unschedulable`).
fn pending_reason(text: &str) -> Option<String> {
    let rest = text.strip_prefix("[kubernetes] ")?;
    let why = rest.split_once(" is waiting: ")?.1;
    Some(why.split(':').next().unwrap_or(why).trim().to_owned())
}

/// A step's result word for the table.
fn result(r: &Row) -> String {
    let Some(st) = &r.state else {
        return if r.started.is_some() {
            "running".into()
        } else {
            "not run".into()
        };
    };
    if st.skipped {
        return "skipped".into();
    }
    if st.canceled {
        return "canceled".into();
    }
    let failed = st.exit_code != 0 || !st.error.is_empty();
    match (failed, r.failure == "ignore") {
        (false, _) => "success".into(),
        (true, true) => "failure (ignored)".into(),
        (true, false) => "failure".into(),
    }
}

/// A step's status in Woodpecker's words, for the report.
fn step_status(r: &Row, flow: Option<FlowStatus>) -> &'static str {
    match &r.state {
        Some(st) if st.skipped => "skipped",
        Some(st) if st.canceled => "killed",
        Some(st) if st.exit_code != 0 || !st.error.is_empty() => "failure",
        Some(_) => "success",
        None if r.started.is_some() => "running",
        None if flow == Some(FlowStatus::Killed) => "killed",
        None => "skipped",
    }
}

/// The workflow table of a run with several workflows.
fn workflow_table(s: &State) -> String {
    let width = s.flows.iter().map(|f| f.label.len()).max().unwrap_or(8).max(8);
    let mut out = format!("{:<width$}  RESULT\n", "WORKFLOW");
    for f in &s.flows {
        let word = f.status.map(FlowStatus::word).unwrap_or("not run");
        match (&f.why, f.status) {
            (Some(why), Some(FlowStatus::Skipped)) => out.push_str(&format!("{:<width$}  {word} ({why})\n", f.label)),
            _ => out.push_str(&format!("{:<width$}  {word}\n", f.label)),
        }
    }
    out
}

/// The summary table: step, result, exit code, duration (and the error of failed steps).
fn summary(s: &State) -> String {
    let width = s.rows.iter().map(|r| s.row_name(r).len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:<width$}  {:<17}  {:>4}  {:>8}\n",
        "STEP", "RESULT", "EXIT", "DURATION"
    );
    for r in &s.rows {
        let exit = match &r.state {
            Some(st) if st.exited => st.exit_code.to_string(),
            _ => "-".into(),
        };
        let duration = match (r.started, r.finished) {
            (Some(a), Some(b)) => secs(b - a),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "{:<width$}  {:<17}  {:>4}  {:>8}\n",
            s.row_name(r),
            result(r),
            exit,
            duration
        ));
        if let Some(st) = &r.state
            && !st.error.is_empty()
            && !st.canceled
        {
            out.push_str(&format!("{:<width$}  error: {}\n", "", st.error));
        }
    }
    out
}

impl Tracer for Printer {
    fn step_state(&self, step: &Step, state: &StepState) {
        let mut s = self.lock();
        let Some(&i) = s.by_uuid.get(&step.uuid) else { return };
        let now = Instant::now();
        let fin = state.finished != 0 || state.skipped || state.canceled;
        let row = &mut s.rows[i];
        if fin {
            row.finished = Some(now);
            row.started.get_or_insert(now);
            row.state = Some(state.clone());
        } else {
            row.started = Some(now);
        }
    }

    fn log_line(&self, step: &Step, line: LogLine) {
        self.log_lines(step, vec![line]);
    }

    /// One lock, one prefix lookup and one hand-over to the writer for the whole batch; the
    /// writer thread formats the lines.
    fn log_lines(&self, step: &Step, mut lines: Vec<LogLine>) {
        if lines.iter().any(|l| l.kind != LogKind::Stdout) {
            lines.retain(|l| l.kind == LogKind::Stdout);
        }
        let Some(last) = lines.last().map(|l| l.data.clone()) else {
            return;
        };
        self.queue_lines(step, &last, |prefix| Out::Lines { prefix, lines });
    }

    /// [`Self::log_lines`] for a container log's lines as they came: queued as they are, no
    /// [`LogLine`] made of each.
    fn log_batch(&self, step: &Step, batch: LineBatch) {
        let Some(last) = batch.lines.last().cloned() else {
            return;
        };
        let lines = batch.lines;
        self.queue_lines(step, &last, |prefix| Out::Batch { prefix, lines });
    }

    fn backlog(&self) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>> {
        if self.lock().queued <= OUT_BOUND || self.writer.is_none() {
            return None;
        }
        Some(Box::pin(async move {
            loop {
                let room = self.shared.room.notified();
                tokio::pin!(room);
                room.as_mut().enable();
                if self.lock().queued <= OUT_BOUND {
                    return;
                }
                room.await;
            }
        }))
    }
}

impl Printer {
    /// `[name] ` as a line starts, coloured on a terminal.
    fn prefix(&self, name: &str, color: &str) -> Arc<[u8]> {
        let text = if self.tty {
            format!("\x1b[{color}m[{name}]\x1b[0m ")
        } else {
            format!("[{name}] ")
        };
        text.into_bytes().into()
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        self.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// The writer thread: takes everything gathered, formats it and writes it in one go, until
/// closed.
fn write_out(shared: &Shared, mut out: Box<dyn Write + Send>) {
    let mut taken = Vec::new();
    let mut text = Text::default();
    let mut s = shared.lock();
    loop {
        while s.out.is_empty() && !s.closed {
            s.writer = Writer::Idle;
            s = shared.wake.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        if s.queued < GATHER && !s.closed && s.drainers == 0 {
            s.writer = Writer::Gathering;
            s = shared
                .wake
                .wait_timeout(s, GATHER_WAIT)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        s.writer = Writer::Busy;
        if s.out.is_empty() {
            return;
        }
        std::mem::swap(&mut s.out, &mut taken);
        let full = s.queued > OUT_BOUND;
        s.queued = 0;
        s.writer = Writer::Writing;
        drop(s);
        // Steps wait only while more than the bound is queued, and it was all just taken.
        if full {
            shared.room.notify_waiters();
        }
        // Written a gather's worth at a time: the text buffer stays near GATHER whatever was
        // taken, and each piece's lines (and the read buffers they keep) go as it is formatted.
        // A closed stdout (`exec ... | head`) is not worth stopping the run for.
        for piece in taken.drain(..) {
            format_into(&mut text, piece);
            if text.len() >= GATHER {
                let _ = out.write_all(text.as_slice());
                text.clear();
            }
        }
        let _ = out.write_all(text.as_slice()).and_then(|()| out.flush());
        text.clear();
        text.shrink_to(2 * GATHER);
        s = shared.lock();
        s.writer = Writer::Busy;
        if s.drainers > 0 {
            shared.idle.notify_all();
        }
    }
}

/// Appends `piece` as it is printed: each line after its prefix, invalid UTF-8 replaced.
fn format_into(text: &mut Text, piece: Out) {
    match piece {
        Out::Text(bytes) => text.put(&bytes),
        Out::Lines { prefix, lines } => put_lines(text, &prefix, lines.iter().map(|l| &l.data[..])),
        Out::Batch { prefix, lines } => put_lines(text, &prefix, lines.iter().map(|l| &l[..])),
    }
}

/// Each line after `prefix`: the batch as it came, checked once (one pass over the whole batch
/// costs less than one per line); again line by line only if something in it is not UTF-8.
fn put_lines<'a>(text: &mut Text, prefix: &[u8], lines: impl Iterator<Item = &'a [u8]> + Clone) {
    let start = text.len();
    for line in lines.clone() {
        text.put_line(prefix, line);
    }
    if std::str::from_utf8(&text.as_slice()[start..]).is_err() {
        text.truncate(start);
        for line in lines {
            text.put_line(prefix, String::from_utf8_lossy(line).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Stage;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn step(name: &str, failure: &str) -> Step {
        Step {
            name: name.into(),
            uuid: format!("U-{name}"),
            failure: failure.into(),
            ..Default::default()
        }
    }

    fn config(steps: &[&Step]) -> WorkflowConfig {
        WorkflowConfig {
            stages: vec![Stage {
                steps: steps.iter().map(|s| (*s).clone()).collect(),
            }],
            ..Default::default()
        }
    }

    fn line(text: &str) -> LogLine {
        LogLine {
            line: 0,
            time: 0,
            kind: LogKind::Stdout,
            data: text.to_owned().into(),
        }
    }

    fn started(s: &Step) -> StepState {
        StepState {
            step_uuid: s.uuid.clone(),
            ..Default::default()
        }
    }

    fn done(s: &Step, code: i32) -> StepState {
        StepState {
            step_uuid: s.uuid.clone(),
            exited: true,
            exit_code: code,
            finished: 1,
            ..Default::default()
        }
    }

    /// Keeps what is written and each write call's length; blocks each call until the test
    /// lets it through (a slow terminal).
    #[derive(Clone)]
    struct Slow {
        text: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<Vec<usize>>>,
        gate: Arc<Mutex<std::sync::mpsc::Receiver<()>>>,
    }

    impl Write for Slow {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let _ = self.gate.lock().unwrap().recv();
            self.text.lock().unwrap().extend_from_slice(b);
            self.writes.lock().unwrap().push(b.len());
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_batch_is_one_write_and_a_slow_terminal_holds_back_only_when_full() {
        let (open, gate) = std::sync::mpsc::channel();
        let writes = Arc::new(Mutex::new(Vec::new()));
        let slow = Slow {
            text: Arc::default(),
            writes: writes.clone(),
            gate: Arc::new(Mutex::new(gate)),
        };
        let p = Printer::new(Box::new(slow), false);
        let a = step("a", "fail");
        p.add_workflow("ci", "ci", &Default::default(), &config(&[&a]));
        let batch = |n: usize, text: &str| (0..n).map(|_| line(text)).collect::<Vec<_>>();
        // The writer takes this batch and blocks in its write.
        p.log_lines(&a, batch(100, "x"));
        while p.lock().writer != Writer::Writing {
            std::thread::yield_now();
        }
        assert!(p.backlog().is_none(), "room while under the bound");
        // More than the bound gathers behind the blocked write: the step must wait.
        let long = "y".repeat(1000);
        p.log_lines(&a, batch(OUT_BOUND / 1000 + 10, &long));
        {
            let mut wait = p.backlog().expect("a full buffer asks the step to wait");
            assert!(
                tokio::time::timeout(Duration::from_millis(50), wait.as_mut())
                    .await
                    .is_err(),
                "room before the terminal took anything"
            );
            // The terminal reads on: the wait ends.
            for _ in 0..2 {
                open.send(()).unwrap();
            }
            tokio::time::timeout(Duration::from_secs(5), wait)
                .await
                .expect("room once written");
        }
        drop(open);
        drop(p);
        let writes = writes.lock().unwrap();
        assert_eq!(writes[0], 100 * "[a] x\n".len(), "the first batch in one write");
        assert_eq!(writes.len(), 2, "the rest in a second write: {writes:?}");
    }

    #[test]
    fn what_queued_behind_a_write_goes_out_a_gather_at_a_time_in_order() {
        let (open, gate) = std::sync::mpsc::channel();
        let out = Slow {
            text: Arc::default(),
            writes: Arc::default(),
            gate: Arc::new(Mutex::new(gate)),
        };
        let p = Printer::new(Box::new(out.clone()), false);
        let a = step("a", "fail");
        p.add_workflow("ci", "ci", &Default::default(), &config(&[&a]));
        let text = |i: usize| format!("{i:05}{}", "z".repeat(995));
        let mut next = 0;
        let mut batch = |n: usize| {
            let lines: Vec<LogLine> = (next..next + n).map(|i| line(&text(i))).collect();
            next += n;
            lines
        };
        p.log_lines(&a, batch(1));
        while p.lock().writer != Writer::Writing {
            std::thread::yield_now();
        }
        // Three batches of about 100 KB each wait behind the blocked write (under the bound).
        for _ in 0..3 {
            p.log_lines(&a, batch(100));
        }
        assert!(p.backlog().is_none(), "under the bound");
        drop(open);
        drop(p);
        let each = "[a] ".len() + 1000 + 1;
        let writes = out.writes.lock().unwrap().clone();
        assert_eq!(
            writes,
            [each, 200 * each, 100 * each],
            "two batches pass a gather, then the rest"
        );
        let expected: String = (0..301).map(|i| format!("[a] {}\n", text(i))).collect();
        assert!(
            *out.text.lock().unwrap() == expected.as_bytes(),
            "every line once, in order"
        );
    }

    #[test]
    fn only_the_lines_that_are_not_utf8_are_replaced() {
        let buf = Buf::default();
        let p = Printer::new(Box::new(buf.clone()), false);
        let a = step("a", "fail");
        p.add_workflow("ci", "ci", &Default::default(), &config(&[&a]));
        let raw = |b: &[u8]| LogLine {
            data: bytes::Bytes::copy_from_slice(b),
            ..line("")
        };
        // A multi-byte character cut in two by a line split: each half is invalid alone.
        let e = "é".as_bytes();
        p.log_lines(
            &a,
            vec![
                raw(b"fine"),
                raw(&[b'x', e[0]]),
                raw(&[e[1], b'y']),
                raw("ünï".as_bytes()),
            ],
        );
        p.log_lines(&a, vec![raw("ok ✓".as_bytes())]);
        p.finish();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).expect("exec writes UTF-8");
        assert!(
            text.starts_with("[a] fine\n[a] x\u{fffd}\n[a] \u{fffd}y\n[a] ünï\n[a] ok ✓\n"),
            "{text}"
        );
    }

    /// A container log's batch as it came prints as its lines would one by one: prefixed,
    /// invalid UTF-8 replaced, its last line setting the step's waiting reason; counted against
    /// the bound while queued.
    #[test]
    fn a_batch_as_it_came_prints_as_its_lines_would() {
        let e = "é".as_bytes();
        let texts: Vec<Vec<u8>> = vec![b"fine".to_vec(), vec![b'x', e[0]], vec![e[1], b'y'], b"".to_vec()];
        let printed = |batch: bool| {
            let buf = Buf::default();
            let p = Printer::new(Box::new(buf.clone()), false);
            let a = step("a", "fail");
            p.add_workflow("ci", "ci", &Default::default(), &config(&[&a]));
            p.step_state(&a, &started(&a));
            let lines: Vec<Bytes> = texts.iter().map(|t| Bytes::copy_from_slice(t)).collect();
            let waiting = Bytes::from_static(b"[kubernetes] pod wp-1 is waiting: ErrImagePull: denied");
            let queued = |p: &Printer| p.lock().queued;
            let before = queued(&p);
            if batch {
                p.log_batch(
                    &a,
                    LineBatch {
                        first: 0,
                        time: 0,
                        lines,
                    },
                );
                assert!(queued(&p) >= before + 4 * 4, "the batch counts against the bound");
                p.log_batch(
                    &a,
                    LineBatch {
                        first: 4,
                        time: 0,
                        lines: vec![waiting],
                    },
                );
            } else {
                let lines = LineBatch {
                    first: 0,
                    time: 0,
                    lines,
                }
                .into_lines();
                p.log_lines(&a, lines);
                p.log_lines(
                    &a,
                    LineBatch {
                        first: 4,
                        time: 0,
                        lines: vec![waiting],
                    }
                    .into_lines(),
                );
            }
            let status = status_line(&p.lock());
            p.finish();
            let text = String::from_utf8(buf.0.lock().unwrap().clone()).expect("exec writes UTF-8");
            (text, status)
        };
        let (text, status) = printed(true);
        assert!(
            text.starts_with("[a] fine\n[a] x\u{fffd}\n[a] \u{fffd}y\n[a] \n[a] [kubernetes] pod wp-1"),
            "{text}"
        );
        assert!(status.contains("(waiting: ErrImagePull)"), "{status}");
        assert_eq!(printed(true), printed(false));
    }

    #[test]
    fn status_line_shows_why_a_step_waits() {
        let p = Printer::new(Box::new(Buf::default()), false);
        let b = step("build", "fail");
        p.add_workflow("ci", "ci", &Default::default(), &config(&[&b]));
        p.step_state(&b, &started(&b));
        p.log_line(
            &b,
            line("[kubernetes] pod wp-1 is waiting: ErrImagePull: pull access denied"),
        );
        assert!(status_line(&p.lock()).starts_with("running: build 0.0s (waiting: ErrImagePull)"));
        p.log_line(&b, line("compiling..."));
        assert_eq!(status_line(&p.lock()), "running: build 0.0s");
    }

    #[test]
    fn prefixes_lines_and_summarises() {
        let buf = Buf::default();
        let p = Printer::new(Box::new(buf.clone()), false);
        let (a, b, c) = (step("build", "fail"), step("flaky", "ignore"), step("deploy", "fail"));
        let ci = p.add_workflow("ci", "ci", &Default::default(), &config(&[&a, &b, &c]));
        p.begin_workflow(ci, &["no clone step".into()]);
        p.step_state(&a, &started(&a));
        p.log_line(&a, line("hello"));
        p.step_state(&a, &done(&a, 0));
        p.step_state(&b, &started(&b));
        p.step_state(&b, &done(&b, 3));
        p.end_workflow(ci, FlowStatus::Success, None);
        p.finish();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(&lines[..3], ["# ci", "  note: no clone step", "[build] hello"]);
        assert!(lines[4].starts_with("STEP    RESULT"), "{text}");
        assert!(lines[5].starts_with("build   success               0  "), "{text}");
        assert!(lines[6].starts_with("flaky   failure (ignored)     3  "), "{text}");
        assert_eq!(lines[7], "deploy  not run               -         -");
        assert!(!text.contains('\x1b'), "no colours off a terminal");
    }

    #[test]
    fn several_workflows_name_the_workflow_and_skipped_ones_have_rows() {
        let buf = Buf::default();
        let p = Printer::new(Box::new(buf.clone()), false);
        let (a, b) = (step("compile", "fail"), step("ship", "fail"));
        let build = p.add_workflow("build", "build", &Default::default(), &config(&[&a]));
        let deploy = p.add_workflow("deploy", "deploy", &Default::default(), &config(&[&b]));
        p.begin_workflow(build, &[]);
        p.step_state(&a, &started(&a));
        p.log_line(&a, line("oops"));
        p.step_state(&a, &done(&a, 2));
        p.end_workflow(build, FlowStatus::Failure, Some("failed".into()));
        p.skip_workflow(deploy, "it depends on `build`, which failed");
        p.finish();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("[build/compile] oops\n"), "{text}");
        assert!(
            text.contains("# deploy: skipped (it depends on `build`, which failed)"),
            "{text}"
        );
        assert!(
            text.contains("deploy    skipped (it depends on `build`, which failed)"),
            "{text}"
        );
        assert!(text.contains("build/compile  failure               2"), "{text}");
        assert!(text.contains("deploy/ship    skipped               -"), "{text}");
        let report = p.report();
        assert_eq!(report["status"], "failure");
        assert_eq!(report["workflows"][0]["steps"][0]["exit_code"], 2);
        assert_eq!(report["workflows"][0]["steps"][0]["status"], "failure");
        assert_eq!(report["workflows"][1]["status"], "skipped");
        assert_eq!(report["workflows"][1]["steps"][0]["status"], "skipped");
    }
}
