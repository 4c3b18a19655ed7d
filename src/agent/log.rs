//! The agent's own log: one line per event on stderr, `level=... msg=...`, filtered by
//! WOODPECKER_LOG_LEVEL. Deliberately tiny (no tracing): the agent logs a few lines per
//! workflow. Never pass a secret here; `kube::Secret` prints as `[REDACTED]` anyway.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use super::config::Level;

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 >= LEVEL.load(Ordering::Relaxed) && level != Level::Disabled
}

pub fn log(level: Level, msg: fmt::Arguments<'_>) {
    if enabled(level) {
        let name = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error | Level::Disabled => "error",
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        eprintln!(
            "time={}.{:03} level={name} msg=\"{msg}\"",
            now.as_secs(),
            now.subsec_millis()
        );
    }
}

pub fn debug(msg: fmt::Arguments<'_>) {
    log(Level::Debug, msg)
}

pub fn info(msg: fmt::Arguments<'_>) {
    log(Level::Info, msg)
}

pub fn warn(msg: fmt::Arguments<'_>) {
    log(Level::Warn, msg)
}

pub fn error(msg: fmt::Arguments<'_>) {
    log(Level::Error, msg)
}
