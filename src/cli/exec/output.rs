//! What `exec` prints: each log line prefixed by its step (coloured on a terminal), a live
//! status line of the running steps on a terminal, and a summary table at the end. Implements
//! the runtime's [`Tracer`]; knows nothing of backends.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::backend::{Config, Step};
use crate::pipeline::trace::{LogKind, LogLine, StepState, Tracer};

const COLORS: &[&str] = &["36", "33", "35", "32", "34", "91", "96", "93"];

#[derive(Debug, Clone)]
struct Row {
    workflow: String,
    name: String,
    failure: String,
    color: &'static str,
    started: Option<Instant>,
    finished: Option<Instant>,
    state: Option<StepState>,
    /// Why the pod is not running yet, from the backend's `[kubernetes] ... is waiting:` line;
    /// cleared by the step's first own output.
    pending: Option<String>,
}

struct State {
    out: Box<dyn Write + Send>,
    status_shown: bool,
    rows: Vec<Row>,
    by_uuid: HashMap<String, usize>,
    workflows: usize,
}

/// The terminal (or pipe) `exec` writes to.
pub struct Printer {
    state: Mutex<State>,
    /// Colours and the live status line.
    tty: bool,
}

impl Printer {
    pub fn new(out: Box<dyn Write + Send>, tty: bool) -> Self {
        Printer {
            state: Mutex::new(State {
                out,
                status_shown: false,
                rows: Vec::new(),
                by_uuid: HashMap::new(),
                workflows: 0,
            }),
            tty,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Prints a line of `exec`'s own (headers, notes), above the status line.
    pub fn say(&self, text: &str) {
        let mut s = self.lock();
        self.write_line(&mut s, text);
    }

    /// Announces a workflow and registers its steps for the summary.
    pub fn begin_workflow(&self, name: &str, config: &Config, notes: &[String]) {
        let mut s = self.lock();
        s.workflows += 1;
        let header = if self.tty {
            format!("\x1b[1m# {name}\x1b[0m")
        } else {
            format!("# {name}")
        };
        self.write_line(&mut s, &header);
        for note in notes {
            self.write_line(&mut s, &format!("  note: {note}"));
        }
        for step in config.stages.iter().flat_map(|st| &st.steps) {
            let color = COLORS[s.rows.len() % COLORS.len()];
            let idx = s.rows.len();
            s.by_uuid.insert(step.uuid.clone(), idx);
            s.rows.push(Row {
                workflow: name.to_owned(),
                name: step.name.clone(),
                failure: step.failure.clone(),
                color,
                started: None,
                finished: None,
                state: None,
                pending: None,
            });
        }
    }

    fn write_line(&self, s: &mut State, text: &str) {
        if self.tty && s.status_shown {
            let _ = write!(s.out, "\r\x1b[2K");
        }
        let _ = writeln!(s.out, "{text}");
        if self.tty {
            let status = status_line(&s.rows);
            s.status_shown = !status.is_empty();
            if s.status_shown {
                let _ = write!(s.out, "\x1b[2m{status}\x1b[0m");
            }
        }
        let _ = s.out.flush();
    }

    /// Redraws the status line (call about once a second on a terminal).
    pub fn tick(&self) {
        if !self.tty {
            return;
        }
        let mut s = self.lock();
        let status = status_line(&s.rows);
        let _ = write!(s.out, "\r\x1b[2K");
        s.status_shown = !status.is_empty();
        if s.status_shown {
            let _ = write!(s.out, "\x1b[2m{status}\x1b[0m");
        }
        let _ = s.out.flush();
    }

    /// Clears the status line and prints the summary table.
    pub fn finish(&self) {
        let mut s = self.lock();
        if self.tty && s.status_shown {
            let _ = write!(s.out, "\r\x1b[2K");
            s.status_shown = false;
        }
        let table = summary(&s.rows, s.workflows > 1);
        let _ = write!(s.out, "\n{table}");
        let _ = s.out.flush();
    }
}

fn status_line(rows: &[Row]) -> String {
    let running: Vec<String> = rows
        .iter()
        .filter(|r| r.started.is_some() && r.finished.is_none())
        .map(|r| {
            let time = secs(r.started.map(|t| t.elapsed()).unwrap_or_default());
            match &r.pending {
                Some(why) => format!("{} {time} (waiting: {why})", r.name),
                None => format!("{} {time}", r.name),
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

/// A finished step's result word.
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

/// The summary table: step, result, exit code, duration (and the error of failed steps).
fn summary(rows: &[Row], with_workflow: bool) -> String {
    let name = |r: &Row| {
        if with_workflow {
            format!("{}/{}", r.workflow, r.name)
        } else {
            r.name.clone()
        }
    };
    let width = rows.iter().map(|r| name(r).len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:<width$}  {:<17}  {:>4}  {:>8}\n",
        "STEP", "RESULT", "EXIT", "DURATION"
    );
    for r in rows {
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
            name(r),
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
        if line.kind != LogKind::Stdout {
            return;
        }
        let mut s = self.lock();
        let text = String::from_utf8_lossy(&line.data);
        let (name, color) = match s.by_uuid.get(&step.uuid) {
            Some(&i) => {
                s.rows[i].pending = pending_reason(&text);
                (s.rows[i].name.clone(), s.rows[i].color)
            }
            None => (step.name.clone(), COLORS[0]),
        };
        let prefix = if self.tty {
            format!("\x1b[{color}m[{name}]\x1b[0m")
        } else {
            format!("[{name}]")
        };
        self.write_line(&mut s, &format!("{prefix} {text}"));
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

    #[test]
    fn status_line_shows_why_a_step_waits() {
        let mut row = Row {
            workflow: "ci".into(),
            name: "build".into(),
            failure: "fail".into(),
            color: COLORS[0],
            started: Some(Instant::now()),
            finished: None,
            state: None,
            pending: pending_reason("[kubernetes] pod wp-1 is waiting: ErrImagePull: pull access denied"),
        };
        assert_eq!(row.pending.as_deref(), Some("ErrImagePull"));
        assert!(status_line(std::slice::from_ref(&row)).starts_with("running: build 0.0s (waiting: ErrImagePull)"));
        row.pending = pending_reason("compiling...");
        assert_eq!(status_line(&[row]), "running: build 0.0s");
    }

    #[test]
    fn prefixes_lines_and_summarises() {
        let buf = Buf::default();
        let p = Printer::new(Box::new(buf.clone()), false);
        let (a, b, c) = (step("build", "fail"), step("flaky", "ignore"), step("deploy", "fail"));
        let conf = Config {
            stages: vec![Stage {
                steps: vec![a.clone(), b.clone(), c.clone()],
            }],
            ..Default::default()
        };
        p.begin_workflow("ci", &conf, &["no clone step".into()]);
        p.step_state(
            &a,
            &StepState {
                step_uuid: a.uuid.clone(),
                ..Default::default()
            },
        );
        let line = LogLine {
            step_uuid: a.uuid.clone(),
            line: 0,
            time: 0,
            kind: LogKind::Stdout,
            data: "hello".into(),
        };
        p.log_line(&a, line);
        let done = |s: &Step, code| StepState {
            step_uuid: s.uuid.clone(),
            exited: true,
            exit_code: code,
            finished: 1,
            ..Default::default()
        };
        p.step_state(&a, &done(&a, 0));
        p.step_state(
            &b,
            &StepState {
                step_uuid: b.uuid.clone(),
                ..Default::default()
            },
        );
        p.step_state(&b, &done(&b, 3));
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
}
