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
//! reconnect; a terminated container or a finished/deleted pod means the log is complete. If
//! the last stream broke rather than ended, one final non-follow read collects the tail.
//!
//! Known limit: a line longer than the bound is delivered in pieces; if the connection drops
//! between two pieces, the rest of that one line is not re-sent (it is skipped as a duplicate).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::api::Api;
use super::client::{BodyStream, Req};
use super::decode::{LineSplitter, Piece};

mod resume;
use super::error::{Error, Result};
use super::params::LogParams;
use super::retry::{Backoff, BackoffConfig};
use super::types::Pod;
pub use resume::{Dedup, Stamp, format_seconds, parse_rfc3339, split_stamp};

/// A raw log body: bytes as the kubelet sends them.
///
/// A task of its own reads the connection up to [`READ_AHEAD`] chunks ahead of the caller, so
/// TLS and HTTP work on the next chunk while the caller splits this one (on a busy log the two
/// otherwise take turns: measured 20 to 30% slower for a 19 MB log). Dropping the stream stops
/// that task and closes the connection.
#[derive(Debug)]
pub struct LogStream {
    chunks: mpsc::Receiver<Result<Bytes>>,
    reader: tokio::task::AbortHandle,
}

/// Chunks read ahead of the caller (each at most one HTTP chunk, 64 KiB from a kubelet).
pub const READ_AHEAD: usize = 2;

impl LogStream {
    fn spawn(mut body: BodyStream) -> LogStream {
        let (tx, chunks) = mpsc::channel(READ_AHEAD);
        let reader = tokio::spawn(async move {
            loop {
                let next = body.chunk().await.transpose();
                let end = !matches!(next, Some(Ok(_)));
                let Some(next) = next else { return };
                if tx.send(next).await.is_err() || end {
                    return;
                }
            }
        });
        LogStream {
            chunks,
            reader: reader.abort_handle(),
        }
    }

    /// The next chunk, `None` at a clean end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        self.chunks.recv().await.transpose()
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Api<Pod> {
    /// `GET .../pods/{name}/log`. With `follow`, it has no overall deadline but the client's
    /// `log_idle_timeout` between chunks.
    pub async fn log_stream(&self, name: &str, params: &LogParams) -> Result<LogStream> {
        let path = format!("{}/log{}", self.item_path(name), params.query().as_str());
        let idle = self.client.options().log_idle_timeout;
        let body = self.client.request_stream(&Req::get(path), idle).await?;
        Ok(LogStream::spawn(body))
    }

    /// Lines of one container's log, following it to the end across drops.
    pub fn follow_log(&self, name: &str, container: &str, options: FollowOptions) -> LogFollower {
        LogFollower {
            api: self.clone(),
            pod: name.to_string(),
            container: container.to_string(),
            backoff: Backoff::new(options.backoff),
            lines: LineSplitter::new(options.max_line),
            stream: None,
            delay: None,
            ready: VecDeque::new(),
            dedup: Dedup::default(),
            got_lines: false,
            final_pass: false,
            final_failures: 0,
            finished: false,
            done: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Longer lines are split into pieces of this many bytes (the timestamp prefix included).
    pub max_line: usize,
    /// Between reconnects and while the container has not started.
    pub backoff: BackoffConfig,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            max_line: 64 << 10,
            backoff: BackoffConfig {
                initial: Duration::from_millis(250),
                max: Duration::from_secs(5),
            },
        }
    }
}

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
    stream: Option<LogStream>,
    delay: Option<Duration>,
    ready: VecDeque<Bytes>,
    dedup: Dedup,
    /// The current stream delivered at least one new line.
    got_lines: bool,
    /// The container is done but the last stream broke: one non-follow read remains.
    final_pass: bool,
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
    pub async fn next_line(&mut self) -> Result<Option<Bytes>> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Ok(Some(line));
            }
            if self.finished {
                return Ok(None);
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
                Ok(Some(chunk)) => {
                    self.lines.push(chunk);
                    while let Some(piece) = self.lines.next() {
                        self.accept(piece);
                    }
                }
                Ok(None) => {
                    self.stream = None;
                    if self.final_pass || self.container_done(true).await? {
                        if let Some(piece) = self.lines.finish() {
                            self.accept(piece);
                        }
                        self.finished = true;
                    } else {
                        // Still running or not started: the unfinished line comes again.
                        self.lines.reset();
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
                    self.lines.reset();
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

    /// The next lines, at most `max` (and at least one): those already read are handed out
    /// together, so a busy log costs its reader one call per batch. `None` as for
    /// [`Self::next_line`].
    pub async fn next_lines(&mut self, max: usize) -> Result<Option<Vec<Bytes>>> {
        let Some(first) = self.next_line().await? else {
            return Ok(None);
        };
        let more = self.ready.len().min(max.saturating_sub(1));
        let mut out = Vec::with_capacity(more + 1);
        out.push(first);
        out.extend(self.ready.drain(..more));
        Ok(Some(out))
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
        let params = LogParams {
            container: Some(self.container.clone()),
            follow: !self.final_pass,
            timestamps: true,
            since_time: self.dedup.since_time(),
            ..Default::default()
        };
        match self.api.log_stream(&self.pod, &params).await {
            Ok(stream) => {
                self.stream = Some(stream);
                self.dedup.restart();
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
        if let Some(line) = self.dedup.accept(piece) {
            // Only new lines count: a reconnect that merely repeats backs off.
            self.got_lines = true;
            self.ready.push_back(line);
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
