//! Fault injection: answer matching requests with an error status, reset or delay them, cut
//! watch streams short, break, end, stall or throttle log streams, expire the bearer token,
//! deny access reviews. Tests arm faults
//! through [`Faults`]; the server consults it on every request. No I/O.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Which requests a fault applies to. Empty fields match anything.
#[derive(Debug, Clone, Default)]
pub struct RequestMatch {
    /// `GET`, `POST`, ... (exact).
    pub method: Option<String>,
    /// A substring of the path.
    pub path_contains: Option<String>,
    /// Only watch requests (`true`) or only non-watch requests (`false`).
    pub watch: Option<bool>,
}

impl RequestMatch {
    pub fn any() -> Self {
        Self::default()
    }
    pub fn path(s: &str) -> Self {
        RequestMatch {
            path_contains: Some(s.into()),
            ..Self::default()
        }
    }
    pub fn method(mut self, m: &str) -> Self {
        self.method = Some(m.to_uppercase());
        self
    }
    pub fn watch(mut self, w: bool) -> Self {
        self.watch = Some(w);
        self
    }
    pub fn matches(&self, method: &str, path: &str, watch: bool) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self.path_contains.as_deref().is_none_or(|p| path.contains(p))
            && self.watch.is_none_or(|w| w == watch)
    }
}

/// What a matched request gets instead of its answer.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultReply {
    /// 410 Expired (`too old resource version`).
    Gone,
    /// 429 with `Retry-After: secs`.
    TooManyRequests { retry_after: u32 },
    /// 500 InternalError.
    Internal,
    /// 403 Forbidden with this message (as RBAC words it).
    Forbidden { message: String },
    /// 503 ServiceUnavailable, with `Retry-After` when given.
    Unavailable { retry_after: Option<u32> },
    /// The connection is closed without an answer.
    Reset,
    /// The real answer, late.
    Delay(Duration),
}

/// What an armed log fault does to a log stream once it has sent `bytes` bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LogFault {
    /// The connection breaks: the client sees an error.
    Reset { bytes: usize },
    /// The body ends cleanly, as a broken kubelet stream reaches a client through the
    /// apiserver (its stream copy ignores the error). `at_line`: the end falls after the last
    /// whole line within `bytes` (else wherever `bytes` falls, mid-line included).
    /// `after_exit`: the end waits until the container has exited (the bytes before it are
    /// sent at once).
    End {
        bytes: usize,
        at_line: bool,
        after_exit: bool,
    },
    /// Nothing is sent for `pause`, then the stream goes on.
    Stall { bytes: usize, pause: Duration },
}

impl LogFault {
    pub fn bytes(&self) -> usize {
        match *self {
            LogFault::Reset { bytes } | LogFault::End { bytes, .. } | LogFault::Stall { bytes, .. } => bytes,
        }
    }
}

/// How many times a fault fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Times {
    Once,
    N(usize),
    Always,
}

#[derive(Debug)]
struct Armed {
    matcher: RequestMatch,
    reply: FaultReply,
    left: Option<usize>,
}

#[derive(Debug, Default)]
struct State {
    armed: Vec<Armed>,
    /// Cut watch streams after this many events; `bool` = every time (else once).
    watch_cut: Option<(usize, bool)>,
    /// The fault of the next (or every) log stream; `bool` = every time (else once).
    log_fault: Option<(LogFault, bool)>,
    /// Every log stream sends at most this many bytes a second.
    log_rate: Option<u64>,
    token: String,
    token_expired: bool,
    denied_verbs: Vec<String>,
}

/// The fault switchboard of one simulated cluster.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
    /// Bumped to end every open watch with a 410 ERROR event.
    expire_watches: tokio::sync::watch::Sender<u64>,
}

impl Faults {
    pub(crate) fn new(token: String) -> Self {
        Faults {
            state: Mutex::new(State {
                token,
                ..State::default()
            }),
            expire_watches: tokio::sync::watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers the next matching request(s) with `reply`.
    pub fn fail(&self, matcher: RequestMatch, reply: FaultReply, times: Times) {
        let left = match times {
            Times::Once => Some(1),
            Times::N(n) => Some(n),
            Times::Always => None,
        };
        self.lock().armed.push(Armed { matcher, reply, left });
    }

    /// Ends every watch stream (or only the next one) after `events` events, abruptly.
    pub fn cut_watches_after(&self, events: usize, every_time: bool) {
        self.lock().watch_cut = Some((events, every_time));
    }

    /// Ends every log stream (or only the next one) after `bytes` bytes, abruptly.
    pub fn cut_logs_after(&self, bytes: usize, every_time: bool) {
        self.log_fault(LogFault::Reset { bytes }, every_time);
    }

    /// Ends every log stream (or only the next one) cleanly after `bytes` bytes, mid-line if
    /// that is where they fall; see [`LogFault::End`].
    pub fn end_logs_after(&self, bytes: usize, every_time: bool) {
        let end = LogFault::End {
            bytes,
            at_line: false,
            after_exit: false,
        };
        self.log_fault(end, every_time);
    }

    /// Arms `fault` for the next log stream that opens (every one with `every_time`); it
    /// replaces an armed log fault.
    pub fn log_fault(&self, fault: LogFault, every_time: bool) {
        self.lock().log_fault = Some((fault, every_time));
    }

    /// Every log stream (open ones included) sends at most `bytes_per_sec`; `None` lifts it.
    pub fn throttle_logs(&self, bytes_per_sec: Option<u64>) {
        self.lock().log_rate = bytes_per_sec.filter(|r| *r > 0);
    }

    /// From now on every bearer token is rejected with 401 until [`Faults::set_token`].
    pub fn expire_token(&self) {
        self.lock().token_expired = true;
    }

    /// Accepts `token` (and no longer the old one).
    pub fn set_token(&self, token: &str) {
        let mut s = self.lock();
        s.token = token.to_string();
        s.token_expired = false;
    }

    /// Every watch open now gets an `ERROR` event with a 410 `Expired` Status and ends, as
    /// after an etcd compaction (combine with `Sim::compact_history` so resuming fails too).
    pub fn expire_open_watches(&self) {
        self.expire_watches.send_modify(|n| *n += 1);
    }

    pub(crate) fn watch_expiry(&self) -> tokio::sync::watch::Receiver<u64> {
        self.expire_watches.subscribe()
    }

    /// SelfSubjectAccessReviews for `verb` answer `allowed: false`.
    pub fn deny_verb(&self, verb: &str) {
        self.lock().denied_verbs.push(verb.to_string());
    }

    /// Disarms everything (the token stays as it is).
    pub fn clear(&self) {
        let mut s = self.lock();
        s.armed.clear();
        s.watch_cut = None;
        s.log_fault = None;
        s.log_rate = None;
        s.denied_verbs.clear();
    }

    pub(crate) fn take_reply(&self, method: &str, path: &str, watch: bool) -> Option<FaultReply> {
        let mut s = self.lock();
        let i = s.armed.iter().position(|a| a.matcher.matches(method, path, watch))?;
        let reply = s.armed[i].reply.clone();
        if let Some(left) = &mut s.armed[i].left {
            *left -= 1;
            if *left == 0 {
                s.armed.remove(i);
            }
        }
        Some(reply)
    }

    pub(crate) fn take_watch_cut(&self) -> Option<usize> {
        let mut s = self.lock();
        let (n, every) = s.watch_cut?;
        if !every {
            s.watch_cut = None;
        }
        Some(n)
    }

    pub(crate) fn take_log_fault(&self) -> Option<LogFault> {
        let mut s = self.lock();
        let (f, every) = s.log_fault?;
        if !every {
            s.log_fault = None;
        }
        Some(f)
    }

    pub(crate) fn log_rate(&self) -> Option<u64> {
        self.lock().log_rate
    }

    pub(crate) fn token_ok(&self, presented: &str) -> bool {
        let s = self.lock();
        let (a, b) = (s.token.as_bytes(), presented.as_bytes());
        // Constant-time comparison: no early exit on the first differing byte.
        !s.token_expired
            && !a.is_empty()
            && a.len() == b.len()
            && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    pub(crate) fn verb_denied(&self, verb: &str) -> bool {
        self.lock().denied_verbs.iter().any(|v| v == verb || v == "*")
    }
}
