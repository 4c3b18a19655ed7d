//! The one queue every workflow's step updates and log lines go through, in order, to the
//! server. Log entries are batched into one `Log` call, sent when the batch reaches 1 MiB or
//! on a fixed flush tick (the tick does not restart with every line, unlike the Go agent's
//! timer); a step `Update` first sends the pending batch, so the server sees a step's lines
//! before its final state.
//!
//! The queue is bounded by what its lines cost in memory (text, step uuid and queue slot: a
//! 40-byte line of a step with a 26-character uuid costs 162 bytes, four times its text). Past
//! [`LOG_BACKLOG`] a step's log reader waits for room ([`Reporter::backlog`], the runtime's
//! back-pressure): a log faster than the server, or a server that is down, holds the lines in
//! the kubelet's log file, not here, and none is lost. Past the hard bound given to [`Reporter::new`] (which only many steps' last
//! batches reach) lines are dropped and counted; updates are small and never dropped.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::Duration;

use prost::Message;
use tokio::sync::{Notify, oneshot};

use super::client::Client;
use super::{metrics, proto};
use crate::Shutdown;
use crate::log;

/// The most log bytes one `Log` call carries (the Go agent's limit; gRPC's is 4 MiB).
pub const MAX_BATCH: usize = 1 << 20;

/// The queued lines' cost above which steps' log readers wait: a `Log` call being sent and about
/// three more behind it.
pub const LOG_BACKLOG: usize = 4 * MAX_BATCH;

enum Event {
    Update {
        workflow: String,
        state: proto::StepStateMessage,
    },
    Log(proto::LogEntry),
    Flush(oneshot::Sender<()>),
}

pub struct Reporter {
    queue: Mutex<Queue>,
    notify: Notify,
    max_queued_bytes: usize,
    /// Notified when the queue's cost falls to [`LOG_BACKLOG`], or the sender stops.
    room: Notify,
    /// The sender has stopped: nobody will make room any more.
    stopped: AtomicBool,
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Event>,
    /// The queued lines' [`cost`].
    log_bytes: usize,
}

/// What a queued line costs against the bounds: its text, its step's uuid and its slot.
fn cost(entry: &proto::LogEntry) -> usize {
    size_of::<Event>() + entry.step_uuid.len() + entry.data.len()
}

impl Reporter {
    /// `max_queued_bytes` bounds the log data waiting to be sent.
    pub fn new(max_queued_bytes: usize) -> Reporter {
        Reporter {
            queue: Mutex::default(),
            notify: Notify::new(),
            max_queued_bytes,
            room: Notify::new(),
            stopped: AtomicBool::new(false),
        }
    }

    /// The log entries waiting to be sent, in order.
    #[cfg(test)]
    pub(crate) fn queued_logs(&self) -> Vec<proto::LogEntry> {
        let q = self.queue.lock().expect("reporter queue");
        q.events
            .iter()
            .filter_map(|e| match e {
                Event::Log(entry) => Some(entry.clone()),
                _ => None,
            })
            .collect()
    }

    fn push(&self, event: Event) {
        self.queue.lock().expect("reporter queue").events.push_back(event);
        self.notify.notify_one();
    }

    pub fn update(&self, workflow: &str, state: proto::StepStateMessage) {
        self.push(Event::Update {
            workflow: workflow.to_owned(),
            state,
        });
    }

    /// Queues a line; `false` when the queue is full and the line was dropped.
    pub fn log(&self, entry: proto::LogEntry) -> bool {
        self.log_many([entry]) == 0
    }

    /// Queues lines in order, under one lock; returns how many were dropped (the queue full).
    pub fn log_many(&self, entries: impl IntoIterator<Item = proto::LogEntry>) -> usize {
        let mut dropped = 0;
        {
            let mut q = self.queue.lock().expect("reporter queue");
            for entry in entries {
                let size = cost(&entry);
                if q.log_bytes + size > self.max_queued_bytes {
                    dropped += 1;
                    continue;
                }
                q.log_bytes += size;
                q.events.push_back(Event::Log(entry));
            }
        }
        if dropped > 0 {
            metrics::global().log_lines_dropped.fetch_add(dropped as u64, Relaxed);
        }
        self.notify.notify_one();
        dropped
    }

    fn queued(&self) -> usize {
        self.queue.lock().expect("reporter queue").log_bytes
    }

    /// While the queued lines cost more than [`LOG_BACKLOG`], a wait until they do not (or
    /// the sender stopped); `None`: room now.
    pub fn backlog(&self) -> Option<impl Future<Output = ()> + Send + '_> {
        let full = || self.queued() > LOG_BACKLOG && !self.stopped.load(SeqCst);
        if !full() {
            return None;
        }
        Some(async move {
            loop {
                let room = self.room.notified();
                tokio::pin!(room);
                room.as_mut().enable();
                if !full() {
                    return;
                }
                room.await;
            }
        })
    }

    /// The next event, taken off the queue (making room, see [`Reporter::backlog`]).
    fn pop(&self) -> Option<Event> {
        let (event, room) = {
            let mut q = self.queue.lock().expect("reporter queue");
            let event = q.events.pop_front();
            let mut room = false;
            if let Some(Event::Log(e)) = &event {
                let before = q.log_bytes;
                q.log_bytes -= cost(e);
                room = before > LOG_BACKLOG && q.log_bytes <= LOG_BACKLOG;
            }
            (event, room)
        };
        if room {
            self.room.notify_waiters();
        }
        event
    }

    /// Returns once everything queued before this call was sent (or given up).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        self.push(Event::Flush(tx));
        let _ = rx.await;
    }

    /// Sends the queue until `stop` fires. Calls give up when `stop` fires or their retry
    /// timeout runs out; a batch given up is dropped, as in the Go agent.
    pub async fn run(&self, client: &Client, flush_every: Duration, stop: Shutdown) {
        self.send_queue(client, flush_every, stop).await;
        self.stop_sending();
    }

    /// Nobody makes room any more: steps waiting for it go on (their lines dropped at the hard
    /// bound, as nothing sends them).
    fn stop_sending(&self) {
        self.stopped.store(true, SeqCst);
        self.room.notify_waiters();
    }

    async fn send_queue(&self, client: &Client, flush_every: Duration, mut stop: Shutdown) {
        let mut batch = Batch::default();
        let mut tick = tokio::time::interval(flush_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.notify.notified() => {}
                _ = tick.tick() => batch.send(client, &stop).await,
                _ = stop.wait() => return,
            }
            loop {
                match self.pop() {
                    None => break,
                    Some(Event::Log(entry)) => {
                        let size = entry.encoded_len() + 4;
                        if batch.size + size > MAX_BATCH {
                            batch.send(client, &stop).await;
                        }
                        batch.size += size;
                        batch.entries.push(entry);
                    }
                    Some(Event::Update { workflow, state }) => {
                        batch.send(client, &stop).await;
                        if let Err(e) = client.update(&workflow, state, &stop).await {
                            log::warn(format_args!(
                                "workflow {workflow}: step update not delivered: {}",
                                e.status
                            ));
                        }
                    }
                    Some(Event::Flush(done)) => {
                        batch.send(client, &stop).await;
                        let _ = done.send(());
                    }
                }
            }
        }
    }
}

#[derive(Default)]
struct Batch {
    entries: Vec<proto::LogEntry>,
    size: usize,
}

impl Batch {
    async fn send(&mut self, client: &Client, stop: &Shutdown) {
        if self.entries.is_empty() {
            return;
        }
        let entries = std::mem::take(&mut self.entries);
        let bytes: usize = entries.iter().map(|e| e.data.len()).sum();
        let count = entries.len();
        self.size = 0;
        match client.log(entries, stop).await {
            Ok(()) => {
                metrics::global().log_bytes.fetch_add(bytes as u64, Relaxed);
            }
            Err(e) => log::warn(format_args!("dropped a batch of {count} log lines: {}", e.status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> proto::LogEntry {
        proto::LogEntry {
            step_uuid: "s".into(),
            line: n as i32,
            data: vec![b'x'; 40].into(),
            ..Default::default()
        }
    }

    #[test]
    fn log_queue_is_bounded_by_what_lines_cost_and_updates_are_never_dropped() {
        let each = cost(&entry(0));
        assert!(each > 2 * 41, "a 40-byte line's slot and uuid count too: {each}");
        let r = Reporter::new(2 * each + each / 2);
        assert!(r.log(entry(0)) && r.log(entry(1)));
        let dropped = metrics::global().log_lines_dropped.load(Relaxed);
        assert!(!r.log(entry(2)), "a third line exceeds the bound");
        assert!(metrics::global().log_lines_dropped.load(Relaxed) > dropped);
        r.update("1", proto::StepStateMessage::default());
        let q = r.queue.lock().unwrap();
        assert_eq!((q.events.len(), q.log_bytes), (3, 2 * each));
    }

    #[test]
    fn lines_queued_together_keep_their_order_and_only_the_overflow_is_dropped() {
        let r = Reporter::new(3 * cost(&entry(0)));
        assert_eq!(r.log_many((0..5).map(entry)), 2);
        let lines: Vec<i32> = r.queued_logs().iter().map(|e| e.line).collect();
        assert_eq!(lines, [0, 1, 2]);
    }

    /// Fills `r` with 64 KiB lines until it is past [`LOG_BACKLOG`].
    fn fill_past_the_backlog(r: &Reporter) {
        let mut n = 0;
        while r.queued() <= LOG_BACKLOG {
            assert!(r.log(proto::LogEntry {
                data: vec![b'x'; 64 << 10].into(),
                ..entry(n)
            }));
            n += 1;
        }
    }

    #[tokio::test]
    async fn past_the_backlog_a_step_waits_until_the_sender_takes_lines() {
        let r = Reporter::new(MAX_BATCH * 64);
        assert!(r.backlog().is_none(), "room in an empty queue");
        fill_past_the_backlog(&r);
        let wait = r.backlog().expect("past the backlog a step waits");
        tokio::pin!(wait);
        let early = tokio::time::timeout(Duration::from_millis(20), &mut wait).await;
        assert!(early.is_err(), "room before a line was taken");
        assert!(matches!(r.pop(), Some(Event::Log(_))));
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("room once the sender took a line");
        assert!(r.backlog().is_none());
    }

    #[tokio::test]
    async fn a_stopped_sender_lets_waiting_steps_go_on() {
        let r = Reporter::new(MAX_BATCH * 64);
        fill_past_the_backlog(&r);
        let wait = r.backlog().expect("past the backlog a step waits");
        r.stop_sending();
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("a step still waiting after the sender stopped");
        assert!(r.backlog().is_none(), "nobody makes room: nobody waits");
    }
}
