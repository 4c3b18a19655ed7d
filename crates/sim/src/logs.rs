//! Container logs as the kubelet keeps them: timestamped lines per (namespace, pod, container),
//! readable until the pod is deleted, and the `pods/{name}/log` endpoint over them (follow,
//! timestamps, sinceSeconds/sinceTime cut to whole seconds and inclusive, tailLines, limitBytes,
//! and the kubelet's 400 texts for containers that have not started).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::Shared;
use super::faults::LogFault;
use super::status::ApiError;
use super::store::Key;
use super::time;
use super::wire::{self, Aborted, Query, Resp};

/// One line as the kubelet's log file keeps it: stamped once, when written, so serving it is
/// a copy (`<RFC 3339 nanos> <text>\n`; `text_at` is where the text starts).
#[derive(Debug, Clone)]
struct Line {
    ts: i128,
    stamped: Bytes,
    text_at: usize,
}

impl Line {
    fn new(ts: i128, text: &[u8]) -> Line {
        let stamp = time::rfc3339_nanos(ts);
        let mut b = Vec::with_capacity(stamp.len() + text.len() + 2);
        b.extend_from_slice(stamp.as_bytes());
        b.push(b' ');
        b.extend_from_slice(text);
        b.push(b'\n');
        Line {
            ts,
            stamped: b.into(),
            text_at: stamp.len() + 1,
        }
    }

    /// The line as served, with or without its stamp, newline included.
    fn wire(&self, timestamps: bool) -> &[u8] {
        if timestamps {
            &self.stamped
        } else {
            &self.stamped[self.text_at..]
        }
    }

    fn text(&self) -> &[u8] {
        &self.stamped[self.text_at..self.stamped.len() - 1]
    }
}

/// The log of one container.
#[derive(Debug)]
pub struct ContainerLog {
    lines: Mutex<(Vec<Line>, bool)>,
    changed: watch::Sender<u64>,
}

impl ContainerLog {
    fn new() -> Self {
        ContainerLog {
            lines: Mutex::new((Vec::new(), false)),
            changed: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, (Vec<Line>, bool)> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one line (without its newline), stamped now.
    pub fn push(&self, line: impl AsRef<[u8]>) {
        self.push_all(&[line]);
    }

    /// Appends lines written at once (a script without a pace: a container that prints a file
    /// in one write). They are stamped before the lock is taken, and followers see all of them
    /// together, as a kubelet reading its log file finds one write's lines in one read.
    pub fn push_all<S: AsRef<[u8]>>(&self, lines: &[S]) {
        if lines.is_empty() {
            return;
        }
        let mut ts = time::now_nanos();
        let mut stamped: Vec<Line> = lines
            .iter()
            .map(|line| {
                ts = ts.max(time::now_nanos());
                Line::new(ts, line.as_ref())
            })
            .collect();
        let mut l = self.lock();
        // Stamps never go back: a line pushed meanwhile may carry a later one.
        let last = l.0.last().map_or(0, |x| x.ts);
        if stamped[0].ts < last {
            stamped = lines.iter().map(|line| Line::new(last, line.as_ref())).collect();
        }
        l.0.extend(stamped);
        let n = l.0.len() as u64;
        drop(l);
        self.changed.send_replace(n);
    }

    /// The container ended: followers drain and stop.
    pub fn finish(&self) {
        self.lock().1 = true;
        self.changed.send_modify(|n| *n += 1);
    }

    /// Resolves once the container has ended (or its pod is gone).
    async fn finished(&self) {
        let mut changed = self.changed.subscribe();
        let _ = changed.wait_for(|_| self.lock().1).await;
    }

    /// Lines from index `from`, and whether the log is finished.
    fn since(&self, from: usize) -> (Vec<Line>, bool) {
        let l = self.lock();
        (l.0.get(from..).unwrap_or(&[]).to_vec(), l.1)
    }

    /// Every line's text, for tests and the sim's own reports.
    pub fn text(&self) -> Vec<String> {
        self.lock()
            .0
            .iter()
            .map(|l| String::from_utf8_lossy(l.text()).into_owned())
            .collect()
    }
}

type LogKey = (String, String, String);

/// All container logs of the node.
#[derive(Debug, Default)]
pub struct LogStore(Mutex<HashMap<LogKey, Arc<ContainerLog>>>);

impl LogStore {
    fn lock(&self) -> MutexGuard<'_, HashMap<LogKey, Arc<ContainerLog>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The log of a container, created empty on first use.
    pub fn open(&self, ns: &str, pod: &str, container: &str) -> Arc<ContainerLog> {
        self.lock()
            .entry((ns.into(), pod.into(), container.into()))
            .or_insert_with(|| Arc::new(ContainerLog::new()))
            .clone()
    }

    pub fn get(&self, ns: &str, pod: &str, container: &str) -> Option<Arc<ContainerLog>> {
        self.lock().get(&(ns.into(), pod.into(), container.into())).cloned()
    }

    /// The pod is gone: its logs end and disappear.
    pub fn remove_pod(&self, ns: &str, pod: &str) {
        let mut map = self.lock();
        let keys: Vec<LogKey> = map.keys().filter(|k| k.0 == ns && k.1 == pod).cloned().collect();
        for k in keys {
            if let Some(l) = map.remove(&k) {
                l.finish();
            }
        }
    }
}

fn waiting_message(reason: &str) -> String {
    match reason {
        "ErrImagePull" => "image can't be pulled".into(),
        "ImagePullBackOff" => "trying and failing to pull image".into(),
        r => r.into(),
    }
}

/// Which container the request means, or the apiserver's 400.
fn pick_container(pod: &Value, name: &str, asked: Option<&str>) -> Result<String, ApiError> {
    let names = |list: &str| -> Vec<String> {
        pod["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(String::from))
            .collect()
    };
    let (main, init) = (names("containers"), names("initContainers"));
    match asked {
        Some(c) if !c.is_empty() => {
            if main.iter().chain(&init).any(|n| n == c) {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        _ if main.len() == 1 => Ok(main[0].clone()),
        _ => {
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                main.join(" ")
            );
            if !init.is_empty() {
                msg.push_str(&format!(" or one of the init containers: [{}]", init.join(" ")));
            }
            Err(ApiError::bad_request(msg))
        }
    }
}

fn render(lines: &[Line], timestamps: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines.iter().map(|l| l.wire(timestamps).len()).sum());
    for l in lines {
        out.extend_from_slice(l.wire(timestamps));
    }
    out
}

/// `GET /api/v1/namespaces/{ns}/pods/{name}/log`.
pub async fn handle(shared: &Arc<Shared>, ns: &str, name: &str, q: &Query) -> Result<Resp, ApiError> {
    let pod = shared
        .store
        .get(&Key::new("pods", ns, name))
        .ok_or_else(|| ApiError::not_found("pods", name))?;
    let container = pick_container(&pod, name, q.get("container"))?;
    if q.flag("previous") {
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{name}\" not found"
        )));
    }
    if pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty() {
        // Upstream: an unbound pod has no log location, and the apiserver answers 200, empty.
        return Ok(wire::bytes(200, "text/plain", Bytes::new()));
    }
    let statuses = pod["status"]["containerStatuses"].as_array().into_iter().flatten();
    let inits = pod["status"]["initContainerStatuses"].as_array().into_iter().flatten();
    let status = statuses.chain(inits).find(|c| c["name"] == container.as_str());
    let state = status.map(|s| &s["state"]);
    let waiting = match state {
        None => Some("ContainerCreating"),
        Some(s) if s["waiting"].is_object() => Some(s["waiting"]["reason"].as_str().unwrap_or("ContainerCreating")),
        Some(_) => None,
    };
    if let Some(reason) = waiting {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {}",
            waiting_message(reason)
        )));
    }
    let log = shared.logs.get(ns, name, &container);
    let timestamps = q.flag("timestamps");
    let mut cutoff = None;
    if let Some(s) = q.int("sinceSeconds")? {
        if s <= 0 {
            return Err(ApiError::bad_request("sinceSeconds must be greater than 0"));
        }
        cutoff = Some(time::now_nanos() - s as i128 * 1_000_000_000);
    }
    if let Some(t) = q.get("sinceTime") {
        if cutoff.is_some() {
            return Err(ApiError::bad_request(
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            ));
        }
        let t = time::parse_rfc3339(t).ok_or_else(|| ApiError::bad_request(format!("invalid sinceTime {t:?}")))?;
        // The apiserver forwards sinceTime to the kubelet with second precision.
        cutoff = Some(t.div_euclid(1_000_000_000) * 1_000_000_000);
    }
    let tail = q.int("tailLines")?;
    let (lines, done) = log.as_ref().map_or((Vec::new(), true), |l| l.since(0));
    let mut seen = lines.len();
    let mut first: Vec<Line> = lines.into_iter().filter(|l| cutoff.is_none_or(|c| l.ts >= c)).collect();
    if let Some(t) = tail {
        let t = t.max(0) as usize;
        if first.len() > t {
            first.drain(..first.len() - t);
        }
    }
    let follow = q.flag("follow") && !done;
    let mut out = Out {
        limit: q.int("limitBytes")?.map(|n| n.max(0) as usize),
        fault: shared.faults.take_log_fault(),
        timestamps,
        shared: shared.clone(),
        log: log.clone(),
    };
    let size: usize = first.iter().map(|l| l.wire(timestamps).len()).sum();
    if !follow && out.fault.is_none() && shared.faults.log_rate().is_none() && size <= CHUNK {
        // A short finished log: one plain body.
        let mut body = render(&first, timestamps);
        out.limit(&mut body);
        return Ok(wire::bytes(200, "text/plain", body));
    }
    let (tx, resp) = wire::stream("text/plain");
    let shutdown = shared.shutdown.clone();
    let task = async move {
        let mut changed = log.as_ref().map(|l| l.changed.subscribe());
        let mut more = first;
        loop {
            if !out.send(&tx, &more).await {
                return;
            }
            let (Some(log), Some(changed)) = (log.as_ref().filter(|_| follow), changed.as_mut()) else {
                return;
            };
            let done;
            (more, done) = log.since(seen);
            if more.is_empty() {
                if done {
                    return;
                }
                tokio::select! {
                    r = changed.changed() => if r.is_err() { return },
                    _ = tx.closed() => return,
                    _ = shutdown.cancelled() => { let _ = tx.send(Err(Aborted)).await; return }
                }
            }
            seen += more.len();
        }
    };
    shared.spawn(task);
    Ok(resp)
}

/// The most bytes of log in one body chunk (the kubelet, too, copies its file in pieces).
const CHUNK: usize = 64 << 10;

/// A log response on its way out: the `limitBytes` left, and an armed fault with its bytes
/// left (see [`LogFault`]); the throttle is read as each piece goes out.
struct Out {
    limit: Option<usize>,
    fault: Option<LogFault>,
    timestamps: bool,
    shared: Arc<Shared>,
    log: Option<Arc<ContainerLog>>,
}

impl Out {
    /// Cuts `body` to the bytes `limitBytes` still allows; true once the limit is reached.
    fn limit(&mut self, body: &mut Vec<u8>) -> bool {
        let Some(l) = &mut self.limit else { return false };
        if body.len() >= *l {
            body.truncate(*l);
            *l = 0;
            return true;
        }
        *l -= body.len();
        false
    }

    /// Sends `lines` in chunks of at most [`CHUNK`] bytes; false once the response is over
    /// (the limit reached, the armed fault ended it, or the reader left).
    async fn send(&mut self, tx: &mpsc::Sender<wire::Chunk>, lines: &[Line]) -> bool {
        let mut rest = lines;
        while !rest.is_empty() {
            let mut n = 0;
            let mut size = 0;
            while n < rest.len() && (n == 0 || size + rest[n].wire(self.timestamps).len() <= CHUNK) {
                size += rest[n].wire(self.timestamps).len();
                n += 1;
            }
            let mut chunk = render(&rest[..n], self.timestamps);
            rest = &rest[n..];
            let limited = self.limit(&mut chunk);
            let mut chunk = Bytes::from(chunk);
            if let Some(fault) = self.fault.take() {
                let left = fault.bytes();
                if chunk.len() < left || (chunk.len() == left && matches!(fault, LogFault::Stall { .. })) {
                    self.fault = Some(with_bytes(fault, left - chunk.len()));
                } else {
                    let head = chunk.split_to(left);
                    match fault {
                        LogFault::Reset { .. } => {
                            self.emit(tx, head).await;
                            // Let hyper flush what was sent, then break the connection.
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            let _ = tx.send(Err(Aborted)).await;
                            return false;
                        }
                        LogFault::End {
                            at_line, after_exit, ..
                        } => {
                            // A chunk starts at a line boundary, so a cut back to it is one.
                            let keep = if at_line {
                                head.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
                            } else {
                                head.len()
                            };
                            self.emit(tx, head.slice(..keep)).await;
                            if after_exit && let Some(log) = &self.log {
                                tokio::select! {
                                    () = log.finished() => {}
                                    _ = tx.closed() => {}
                                }
                            }
                            // Dropping the sender ends the body cleanly.
                            return false;
                        }
                        LogFault::Stall { pause, .. } => {
                            if !self.emit(tx, head).await {
                                return false;
                            }
                            tokio::select! {
                                () = tokio::time::sleep(pause) => {}
                                _ = tx.closed() => return false,
                            }
                        }
                    }
                }
            }
            if !self.emit(tx, chunk).await {
                return false;
            }
            if limited {
                return false;
            }
        }
        true
    }

    /// Sends one piece of body, at the throttle's pace when one is set; false when the reader
    /// left.
    async fn emit(&self, tx: &mpsc::Sender<wire::Chunk>, mut data: Bytes) -> bool {
        while !data.is_empty() {
            let rate = self.shared.faults.log_rate();
            // At a throttle, pieces of a twentieth of a second.
            let n = rate.map_or(data.len(), |r| data.len().min((r as usize / 20).max(1)));
            let piece = data.split_to(n);
            if tx.send(Ok(piece)).await.is_err() {
                return false;
            }
            if let Some(r) = rate {
                tokio::time::sleep(std::time::Duration::from_secs_f64(n as f64 / r as f64)).await;
            }
        }
        true
    }
}

fn with_bytes(fault: LogFault, bytes: usize) -> LogFault {
    match fault {
        LogFault::Reset { .. } => LogFault::Reset { bytes },
        LogFault::End {
            at_line, after_exit, ..
        } => LogFault::End {
            bytes,
            at_line,
            after_exit,
        },
        LogFault::Stall { pause, .. } => LogFault::Stall { bytes, pause },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_written_at_once_arrive_together_in_order_with_stamps_that_never_go_back() {
        let log = ContainerLog::new();
        log.push("first");
        let seen = log.changed.subscribe();
        log.push_all(&["a", "b", "c"]);
        assert_eq!(log.text(), ["first", "a", "b", "c"]);
        // One notification for the whole write: a follower reads all three in one go.
        assert_eq!(*seen.borrow(), 4);
        let (lines, done) = log.since(1);
        assert!(!done);
        assert_eq!(lines.len(), 3);
        let stamps: Vec<i128> = log.lock().0.iter().map(|l| l.ts).collect();
        assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
        // Served with the stamp the line was written with.
        let wire = String::from_utf8(lines[0].wire(true).to_vec()).unwrap();
        assert!(
            wire.ends_with(" a\n") && wire.starts_with(&time::rfc3339_nanos(lines[0].ts)),
            "{wire}"
        );
    }
}
