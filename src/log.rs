//! The process log: every line the process writes about itself (not a step's output, not a
//! subcommand's report) goes through here, filtered by one level and written in one format.
//!
//! The agent configures it from `WOODPECKER_LOG_LEVEL`, `WOODPECKER_LOG_FILE`,
//! `WOODPECKER_DEBUG_PRETTY` and `WOODPECKER_DEBUG_NOCOLOR` as the Go agent does
//! (`shared/logger` upstream): zerolog JSON lines by default, zerolog's console format when
//! pretty (see [`crate::go::zerolog`]). Until then, and in the other subcommands, lines are
//! plain text on stderr (`warning: ...`), as the command-line tools print them. Any room may log;
//! this module knows nothing of them. Never pass a secret here.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI8, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use crate::go::zerolog::{self, LogEvent};
pub use crate::go::zerolog::{Level, LogValue};

/// How lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `warning: message key=value` (the subcommands' style).
    Plain,
    /// zerolog's JSON line (the Go agent's default).
    Json,
    /// zerolog's ConsoleWriter (`WOODPECKER_DEBUG_PRETTY`).
    Pretty { color: bool },
}

/// Where lines go (`WOODPECKER_LOG_FILE`: `stderr`, `stdout` or a file path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    Stderr,
    Stdout,
    /// Appended to (created with mode 0660), reopened by [`reopen`] (SIGUSR1 in the agent), so
    /// log rotation works as with the Go agent.
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub level: Level,
    pub format: LogFormat,
    pub sink: Sink,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: Level::INFO,
            format: LogFormat::Plain,
            sink: Sink::Stderr,
        }
    }
}

/// A log file that could not be opened; names it.
#[derive(Debug)]
pub struct OpenError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not open log file '{}'", self.path.display())
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

struct Output {
    format: LogFormat,
    sink: Sink,
    file: Option<File>,
}

static LEVEL: AtomicI8 = AtomicI8::new(Level::INFO.0);
static OUTPUT: Mutex<Output> = Mutex::new(Output {
    format: LogFormat::Plain,
    sink: Sink::Stderr,
    file: None,
});

fn output() -> MutexGuard<'static, Output> {
    OUTPUT.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets level, format and destination for the rest of the process.
pub fn init(config: &LogConfig) -> Result<(), OpenError> {
    let file = match &config.sink {
        Sink::File(path) => Some(open(path)?),
        _ => None,
    };
    let mut out = output();
    *out = Output {
        format: config.format,
        sink: config.sink.clone(),
        file,
    };
    LEVEL.store(config.level.0, Ordering::Relaxed);
    Ok(())
}

/// Only the format (the agent starts in JSON before its settings are read, as Go's default).
pub fn set_format(format: LogFormat) {
    output().format = format;
}

pub fn set_level(level: Level) {
    LEVEL.store(level.0, Ordering::Relaxed);
}

/// Reopens the log file (after it was rotated); nothing for stderr and stdout.
pub fn reopen() -> Result<(), OpenError> {
    let mut out = output();
    if let Sink::File(path) = out.sink.clone() {
        out.file = Some(open(&path)?);
    }
    Ok(())
}

fn open(path: &std::path::Path) -> Result<File, OpenError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o660)
        .open(path)
        .map_err(|source| OpenError {
            path: path.to_owned(),
            source,
        })
}

/// Whether a line at `level` would be written (zerolog: at or above the set level).
pub fn enabled(level: Level) -> bool {
    level >= Level(LEVEL.load(Ordering::Relaxed)) && level < Level::NO_LEVEL
}

/// Writes one line with `fields`, if `level` is enabled.
#[track_caller]
pub fn log(level: Level, fields: &[(&str, LogValue<'_>)], message: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let location = std::panic::Location::caller();
    let caller = format!("{}:{}", location.file(), location.line());
    let message = message.to_string();
    let mut guard = output();
    let out = &mut *guard;
    let event = LogEvent {
        level,
        fields,
        time: SystemTime::now(),
        // As Woodpecker: the caller only when debugging.
        caller: (Level(LEVEL.load(Ordering::Relaxed)) <= Level::DEBUG).then_some(caller.as_str()),
        message: &message,
    };
    let line = match out.format {
        LogFormat::Plain => plain_line(&event),
        LogFormat::Json => zerolog::json_line(&event),
        LogFormat::Pretty { color } => {
            // zerolog's colorize: NO_COLOR turns colours off too.
            let color = color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            zerolog::console_line(&event, color)
        }
    };
    let bytes = line.as_bytes();
    let _ = match (&out.sink, out.file.as_mut()) {
        (Sink::Stdout, _) => std::io::stdout().lock().write_all(bytes),
        (Sink::File(_), Some(file)) => file.write_all(bytes),
        _ => std::io::stderr().lock().write_all(bytes),
    };
}

fn plain_line(e: &LogEvent<'_>) -> String {
    let word = match e.level {
        Level::WARN => "warning".to_owned(),
        other => other.name(),
    };
    let mut line = format!("{word}: {}", e.message);
    for (key, value) in e.fields {
        match value {
            LogValue::Str(s) => line.push_str(&format!(" {key}={s}")),
            LogValue::Int(n) => line.push_str(&format!(" {key}={n}")),
            LogValue::Bool(b) => line.push_str(&format!(" {key}={b}")),
        }
    }
    line.push('\n');
    line
}

/// Reopens the log file on every SIGUSR1 (log rotation), as the Go agent's log file does; runs
/// until the task is dropped.
pub async fn reopen_on_sigusr1() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
        return;
    };
    while usr1.recv().await.is_some() {
        if let Err(e) = reopen() {
            log(
                Level::ERROR,
                &[("error", LogValue::Str(&crate::error_chain::one_line(&e)))],
                format_args!("could not reopen the log file"),
            );
        }
    }
}

#[track_caller]
pub fn trace(message: fmt::Arguments<'_>) {
    log(Level::TRACE, &[], message)
}

#[track_caller]
pub fn debug(message: fmt::Arguments<'_>) {
    log(Level::DEBUG, &[], message)
}

#[track_caller]
pub fn info(message: fmt::Arguments<'_>) {
    log(Level::INFO, &[], message)
}

#[track_caller]
pub fn warn(message: fmt::Arguments<'_>) {
    log(Level::WARN, &[], message)
}

#[track_caller]
pub fn error(message: fmt::Arguments<'_>) {
    log(Level::ERROR, &[], message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_filter_as_zerolog() {
        // The global level is shared by the unit tests of this process: read it, do not set it.
        let at = |set: Level, level: Level| level >= set && level < Level::NO_LEVEL;
        assert!(at(Level::INFO, Level::WARN) && !at(Level::INFO, Level::DEBUG));
        assert!(at(Level(-5), Level::TRACE));
        assert!(!at(Level::NO_LEVEL, Level::PANIC) && !at(Level::DISABLED, Level::ERROR));
        assert!(!enabled(Level::NO_LEVEL));
    }

    #[test]
    fn plain_lines_read_like_the_subcommands() {
        let e = LogEvent {
            level: Level::WARN,
            fields: &[("error", LogValue::Str("boom"))],
            time: SystemTime::now(),
            caller: None,
            message: "the shared pod watch failed",
        };
        assert_eq!(plain_line(&e), "warning: the shared pod watch failed error=boom\n");
    }
}
