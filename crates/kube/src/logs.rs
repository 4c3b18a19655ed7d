//! Container logs: the raw `/log` stream, and [`LogFollower`], which turns it into lines that
//! survive dropped connections with nothing lost or repeated. Knows pods and containers, not
//! steps.
//!
//! How the follower resumes (spec section 5): it always asks for `timestamps=true`, strips the
//! prefix, and remembers the timestamp `T` of the last delivered line and how many delivered
//! lines carried exactly `T`. After a drop it reconnects with `sinceTime=T`, which the
//! apiserver cuts to whole seconds and the kubelet applies inclusively, so it drops lines
//! before `T` and the first `n` lines at `T`.
//!
//! When a stream ends it asks the pod: a container that is still running or not yet started
//! (the 400 "waiting to start" reply, or an empty 200 for an unscheduled pod) means wait and
//! reconnect. A clean end is never taken as the end of the log, even once the container is
//! done: through a real apiserver a broken kubelet stream reaches the client as a clean end,
//! possibly mid-line. So once the container is done, whether the last stream ended or broke, a
//! confirming non-follow read from the last delivered timestamp (deduplicated as any resume)
//! collects what is left, and only its clean end completes the log. An unfinished last line
//! of a follow stream is never delivered: the confirming read sends it again, whole. The
//! confirming read first asks for only the last [`CONFIRM_TAIL`] lines since that second: they
//! do when their first line is older than the last delivered one, or when there are fewer of
//! them (the tail then holds the whole second; its lines are held until that is known);
//! otherwise it reads the whole second again.
//!
//! A line of up to [`FollowOptions::max_line`] bytes of text (1 MiB by default, as Woodpecker's
//! line copier) is one line; a longer one is delivered in pieces of exactly that many bytes.
//! Known limit: if the connection drops between two pieces, the rest of that one line is not
//! re-sent (it is skipped as a duplicate).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::api::Api;
use super::client::{BodyStream, Req};
use super::decode::{LineSplitter, Piece};

mod recut;
mod resume;
use super::error::{Error, Result};
use super::params::LogParams;
use super::retry::{Backoff, BackoffConfig};
use super::types::Pod;
pub use resume::{Dedup, Stamp, format_seconds, parse_rfc3339, split_stamp};

/// A raw log body: bytes as the kubelet sends them.
///
/// Read straight from a connection of its own (`h1`: decrypted records are handed out as they
/// are, framing removed, with no task or buffer between the socket and the caller); a
/// read-ahead task of ours once only added a hop per chunk and pinned one more read buffer per
/// stream (README "Logs under load"). Dropping the stream closes the connection.
#[derive(Debug)]
pub struct LogStream {
    body: BodyStream,
    received: Arc<AtomicU64>,
}

impl LogStream {
    fn new(body: BodyStream, received: Arc<AtomicU64>) -> LogStream {
        LogStream { body, received }
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Relaxed)
    }

    /// The next chunk, `None` at a clean end. Cancel safe: a chunk is taken from the body only
    /// when it is returned.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        let next = self.body.chunk().await;
        if let Ok(Some(chunk)) = &next {
            self.received.fetch_add(chunk.len() as u64, Relaxed);
        }
        next
    }
}

impl Api<Pod> {
    /// `GET .../pods/{name}/log`. With `follow`, it has no overall deadline but the client's
    /// `log_idle_timeout` between chunks.
    pub async fn log_stream(&self, name: &str, params: &LogParams) -> Result<LogStream> {
        let path = format!("{}/log{}", self.item_path(name), params.query().as_str());
        let idle = self.client.options().log_idle_timeout;
        let body = self.client.request_own_stream(&Req::get(path), idle).await?;
        Ok(LogStream::new(body, Arc::default()))
    }

    async fn log_stream_counted(&self, name: &str, params: &LogParams, received: &Arc<AtomicU64>) -> Result<LogStream> {
        let path = format!("{}/log{}", self.item_path(name), params.query().as_str());
        let idle = self.client.options().log_idle_timeout;
        let body = self.client.request_own_stream(&Req::get(path), idle).await?;
        Ok(LogStream::new(body, received.clone()))
    }

    /// Lines of one container's log, following it to the end across drops.
    pub fn follow_log(&self, name: &str, container: &str, options: FollowOptions) -> LogFollower {
        LogFollower {
            api: self.clone(),
            pod: name.to_string(),
            container: container.to_string(),
            backoff: Backoff::new(options.backoff),
            lines: LineSplitter::new(options.max_line + STAMP_ROOM),
            recut: recut::Recut::new(options.max_line),
            stream: None,
            delay: None,
            ready: Vec::new(),
            taken: 0,
            dedup: Dedup::default(),
            got_lines: false,
            final_pass: false,
            tail_first: true,
            tail_check: false,
            held: None,
            received: Arc::default(),
            final_failures: 0,
            finished: false,
            done: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Longer lines are split into pieces of exactly this many bytes of text (the timestamp is
    /// not counted). Memory: a stream holds up to this much more only while such a line passes.
    pub max_line: usize,
    /// Between reconnects and while the container has not started.
    pub backoff: BackoffConfig,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            max_line: MAX_LINE,
            backoff: BackoffConfig {
                initial: Duration::from_millis(250),
                max: Duration::from_secs(5),
            },
        }
    }
}

/// The default [`FollowOptions::max_line`]: 1 MiB, Woodpecker's `MaxLogLineLength`.
pub const MAX_LINE: usize = 1 << 20;

/// Room for the timestamp prefix in the splitter's bound: RFC 3339 with nine fraction digits
/// and an offset is 35 bytes, plus the space (the stamp parser looks at 40).
const STAMP_ROOM: usize = 40;

/// The most lines split ahead of the reader (see [`LogFollower::split_some`]).
const SPLIT_AHEAD: usize = 64;

/// The lines a confirming read asks for first (with `sinceTime`); see the module doc.
pub const CONFIRM_TAIL: i64 = 100;

/// How long a clean end of stream waits for the caller's `done` signal (see
/// [`LogFollower::with_done`]) before it counts as a drop and reconnects.
pub const DONE_LAG: Duration = Duration::from_secs(3);

/// Follows one container's log; see the module doc.
#[derive(Debug)]
pub struct LogFollower {
    api: Api<Pod>,
    pod: String,
    container: String,
    backoff: Backoff,
    lines: LineSplitter,
    /// Cuts over-long lines at exactly `max_line` bytes of text.
    recut: recut::Recut,
    stream: Option<LogStream>,
    delay: Option<Duration>,
    /// Lines split and not yet handed out: those from `taken` on.
    ready: Vec<Bytes>,
    taken: usize,
    dedup: Dedup,
    /// The current stream delivered at least one new line.
    got_lines: bool,
    /// The container is done: the confirming non-follow read is open or next.
    final_pass: bool,
    /// The confirming read asks for the last [`CONFIRM_TAIL`] lines only (until they turn out
    /// not to reach back far enough).
    tail_first: bool,
    /// The current stream is such a tail: its first line must be older than the last delivered.
    tail_check: bool,
    /// The tail's pieces while it is not yet known to reach back far enough.
    held: Option<Vec<Piece>>,
    /// Bytes received over every stream.
    received: Arc<AtomicU64>,
    final_failures: u32,
    finished: bool,
    /// Whether the container is done, as the caller already knows it (a shared watch), instead
    /// of a GET of the pod at each stream end.
    done: Option<tokio::sync::watch::Receiver<bool>>,
}

impl LogFollower {
    /// Takes "is the container done?" from `done` instead of GETting the pod. At a clean end
    /// of stream it waits up to [`DONE_LAG`] for `done`, as the watch may report the container's
    /// end a moment after the kubelet closed its log.
    pub fn with_done(mut self, done: tokio::sync::watch::Receiver<bool>) -> Self {
        self.done = Some(done);
        self
    }

    /// The next line without its newline and timestamp, or `None` when the container is done
    /// and everything was delivered. An `Err` is final (e.g. the pod does not exist).
    ///
    /// Cancel safety: every state change is stored in the follower before an `.await`, and
    /// lines are queued here before they are handed out, so a call dropped at an `.await`
    /// (one that lost a `select!`) loses no line it had read: the next call reads on from the
    /// same stream, or (for a stream that was being opened) opens it again from the last
    /// delivered stamp, de-duplicated, so a drop costs at most one more request. Still, drive
    /// it from one task where you can, as the backend does.
    pub async fn next_line(&mut self) -> Result<Option<Bytes>> {
        if !self.fill().await? {
            return Ok(None);
        }
        let line = std::mem::take(&mut self.ready[self.taken]);
        self.taken += 1;
        Ok(Some(line))
    }

    /// Reads until a line is ready to hand out (true) or the log is complete (false); see
    /// [`Self::next_line`] for errors and cancel safety.
    async fn fill(&mut self) -> Result<bool> {
        loop {
            if self.taken < self.ready.len() {
                return Ok(true);
            }
            // Everything split was handed out: the next lines start a new batch.
            self.ready.clear();
            self.taken = 0;
            if self.finished {
                return Ok(false);
            }
            if self.split_some() {
                continue;
            }
            if let Some(d) = self.delay {
                tokio::time::sleep(d).await;
                self.delay = None;
            }
            let Some(stream) = &mut self.stream else {
                self.open().await?;
                continue;
            };
            match stream.chunk().await {
                // Split at the top of the loop, a batch at a time.
                Ok(Some(chunk)) => self.lines.push(chunk),
                Ok(None) if self.final_pass => {
                    // The confirming read's end is the log's end; an unfinished last line is
                    // the log's own last line, delivered whole.
                    self.stream = None;
                    let held = self.held.take().unwrap_or_default();
                    for piece in held.into_iter().chain(self.lines.finish()) {
                        self.accept(piece);
                    }
                    self.recut.flush(&mut self.ready);
                    self.finished = true;
                }
                Ok(None) => {
                    self.stream = None;
                    // An unfinished line comes again, whole, with the next read.
                    self.lines.reset();
                    self.recut.flush(&mut self.ready);
                    if self.container_done(true).await? {
                        self.final_pass = true;
                    } else {
                        // Still running or not started: follow again.
                        self.delay = Some(if self.got_lines {
                            self.backoff.reset();
                            Duration::ZERO
                        } else {
                            self.backoff.next_delay()
                        });
                    }
                }
                Err(e) => {
                    self.stream = None;
                    self.held = None;
                    self.lines.reset();
                    self.recut.flush(&mut self.ready);
                    self.delay = Some(self.backoff.next_delay());
                    if self.final_pass {
                        self.final_failures += 1;
                        if self.final_failures >= 5 {
                            self.finished = true;
                            return Err(e);
                        }
                    } else if self.container_done(false).await? {
                        self.final_pass = true;
                    }
                }
            }
        }
    }

    /// Splits what was received into `ready`, up to [`SPLIT_AHEAD`] lines at a time, so the
    /// queue of split lines stays small whatever a chunk holds (one allocation of its size per
    /// stream). True when it took anything from the splitter.
    fn split_some(&mut self) -> bool {
        let mut took = false;
        loop {
            // Whole lines the fast way as far as they go, then one piece the general way (the
            // line carried over from the last chunk, a piece of a cut line, a tail's line),
            // then the fast way again.
            took |= self.split_whole();
            if self.ready.len() >= SPLIT_AHEAD {
                break;
            }
            let Some(piece) = self.lines.next() else { break };
            took = true;
            if std::mem::take(&mut self.tail_check) && !self.dedup.before_last(&piece.data) {
                // The tail starts at the last delivered stamp: right only if the tail holds
                // every line since the second, so fewer than CONFIRM_TAIL lines. Held until
                // that is known.
                self.held = Some(Vec::new());
            }
            match &mut self.held {
                Some(held) if held.len() + 1 >= CONFIRM_TAIL as usize => {
                    // It may have cut into the lines at that stamp: read the whole second
                    // again.
                    self.held = None;
                    self.stream = None;
                    self.lines.reset();
                    self.tail_first = false;
                    break;
                }
                Some(held) => held.push(piece),
                None => self.accept(piece),
            }
        }
        took
    }

    /// [`Self::split_some`]'s fast path, for a stream in its steady state (no tail held or to
    /// check, no line being cut): each whole line goes from the chunk to `ready` as one slice of
    /// it past its stamp, as [`Self::accept`] would put it there, without the piece and the
    /// re-cut in between (a busy log splits a million lines). Stops where a line needs more
    /// (too long to pass the re-cut unchanged) and leaves it to the general path.
    fn split_whole(&mut self) -> bool {
        if self.held.is_some() || self.tail_check || !self.recut.is_idle() {
            return false;
        }
        let (ready, dedup) = (&mut self.ready, &mut self.dedup);
        // A stream line no longer than this has no more text than the re-cut passes whole.
        let max = self.recut.max();
        let (mut took, mut new) = (false, false);
        self.lines.take_whole(|input, line| {
            if ready.len() >= SPLIT_AHEAD || line.len() > max {
                return false;
            }
            took = true;
            if let Some(at) = dedup.accept_head(&input[line.clone()]) {
                new = true;
                ready.push(input.slice(line.start + at..line.end));
            }
            true
        });
        self.got_lines |= new;
        took
    }

    /// Bytes received so far over every stream of this follower, counted as they arrive: a
    /// caller can tell a stream that is slow from one that sends nothing.
    pub fn progress(&self) -> Arc<AtomicU64> {
        self.received.clone()
    }

    /// The next lines, at most `max` (and at least one): those already read are handed out
    /// together, so a busy log costs its reader one call per batch. `None` as for
    /// [`Self::next_line`].
    ///
    /// A line is a slice of the chunk it came in (not a copy), so lines held by the caller keep
    /// that chunk's read buffer alive. hyper reads a stream into a buffer of up to the client's
    /// cap (16 KiB) and moves to a new one when less room is left than its next read asks for:
    /// 8 KiB while reads are small, so such a buffer is at least half used; up to 16 KiB while
    /// reads fill it, and then buffers are full. So what the caller holds pins about twice its
    /// stream bytes (stamps and chunk framing included) plus a buffer or two (one more where
    /// a busy stream turns quiet), not a buffer per line.
    pub async fn next_lines(&mut self, max: usize) -> Result<Option<Vec<Bytes>>> {
        if !self.fill().await? {
            return Ok(None);
        }
        let max = max.max(1);
        if self.taken == 0 && self.ready.len() <= max {
            // The usual case: the lines split together go out together, in a vector of their
            // number (a batch may wait in the caller's queues a while: one of a few lines must
            // not hold room for SPLIT_AHEAD), and `ready` keeps its room for the next ones.
            return Ok(Some(self.ready.drain(..).collect()));
        }
        let end = self.ready.len().min(self.taken + max);
        let batch = self.ready[self.taken..end].iter_mut().map(std::mem::take).collect();
        self.taken = end;
        Ok(Some(batch))
    }

    /// Sends every line into `tx` until the log ends, the receiver is dropped, or `shutdown`
    /// completes. A line being read when `shutdown` completes is lost with the stream.
    pub async fn pump(
        mut self,
        tx: mpsc::Sender<Bytes>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                line = self.next_line() => match line? {
                    Some(line) => if tx.send(line).await.is_err() { return Ok(()) },
                    None => return Ok(()),
                },
                _ = &mut shutdown => return Ok(()),
            }
        }
    }

    async fn open(&mut self) -> Result<()> {
        let since_time = self.dedup.since_time();
        let tail = self.final_pass && self.tail_first && since_time.is_some();
        let params = LogParams {
            container: Some(self.container.clone()),
            follow: !self.final_pass,
            timestamps: true,
            since_time,
            tail_lines: tail.then_some(CONFIRM_TAIL),
            ..Default::default()
        };
        match self.api.log_stream_counted(&self.pod, &params, &self.received).await {
            Ok(stream) => {
                self.stream = Some(stream);
                self.dedup.restart();
                self.tail_check = tail;
                self.got_lines = false;
                Ok(())
            }
            Err(e) if is_not_started(&e) || e.is_transport() => {
                self.delay = Some(self.backoff.next_delay());
                Ok(())
            }
            Err(e) => {
                self.finished = true;
                Err(e)
            }
        }
    }

    /// Whether the container will write no more: terminated, the pod finished, or gone.
    async fn container_done(&self, ended: bool) -> Result<bool> {
        if let Some(mut done) = self.done.clone() {
            if *done.borrow_and_update() || !ended {
                return Ok(*done.borrow());
            }
            // A clean end while the caller still saw the container running. The kubelet ends a
            // follow stream cleanly only once the container is over (a cut connection is an
            // error, handled above), so wait a moment for the caller's news of that end.
            let waited = tokio::time::timeout(DONE_LAG, done.wait_for(|d| *d)).await;
            return Ok(matches!(waited, Ok(Ok(_))));
        }
        match self.api.get(&self.pod).await {
            Ok(pod) => Ok(container_finished(&pod, &self.container)),
            Err(e) if e.is_not_found() => Ok(true),
            // Cannot tell: keep following (the next open will say more).
            Err(e) if e.is_transport() => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn accept(&mut self, piece: Piece) {
        let more = piece.cut;
        if let Some(line) = self.dedup.accept(piece) {
            // Only new lines count: a reconnect that merely repeats backs off.
            self.got_lines = true;
            self.recut.push(line, more, &mut self.ready);
        }
    }
}

/// A 400 meaning "not yet": the container is waiting to start (or being created).
fn is_not_started(e: &Error) -> bool {
    e.is_bad_request()
        && [
            "waiting to start",
            "ContainerCreating",
            "PodInitializing",
            "does not have a host",
        ]
        .iter()
        .any(|m| e.message().contains(m))
}

pub fn container_finished(pod: &Pod, container: &str) -> bool {
    let Some(status) = &pod.status else { return false };
    if matches!(status.phase.as_str(), "Succeeded" | "Failed") {
        return true;
    }
    status
        .container_statuses
        .iter()
        .chain(&status.init_container_statuses)
        .any(|c| c.name == container && c.state.terminated.is_some())
}

#[cfg(test)]
mod tests;
