//! The one queue every workflow's step updates and log lines go through, in order, to the
//! server. Log entries are batched into one `Log` call, sent when the batch reaches 1 MiB or
//! on a fixed flush tick (the tick does not restart with every line, unlike the Go agent's
//! timer); a step `Update` first sends the pending batch, so the server sees a step's lines
//! before its final state. The queue is bounded by log bytes: past the bound, lines are dropped
//! and counted (updates are small and never dropped). While the server is down, calls retry and
//! the queue fills; that is the buffer that carries running workflows over a server restart.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use prost::Message;
use tokio::sync::{Notify, oneshot};

use super::client::Client;
use super::{metrics, proto};
use crate::Shutdown;
use crate::log;

/// The most log bytes one `Log` call carries (the Go agent's limit; gRPC's is 4 MiB).
pub const MAX_BATCH: usize = 1 << 20;

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
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Event>,
    log_bytes: usize,
}

impl Reporter {
    /// `max_queued_bytes` bounds the log data waiting to be sent.
    pub fn new(max_queued_bytes: usize) -> Reporter {
        Reporter {
            queue: Mutex::default(),
            notify: Notify::new(),
            max_queued_bytes,
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
        let size = entry.data.len();
        {
            let mut q = self.queue.lock().expect("reporter queue");
            if q.log_bytes + size > self.max_queued_bytes {
                metrics::global().log_lines_dropped.fetch_add(1, Relaxed);
                return false;
            }
            q.log_bytes += size;
            q.events.push_back(Event::Log(entry));
        }
        self.notify.notify_one();
        true
    }

    /// Returns once everything queued before this call was sent (or given up).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        self.push(Event::Flush(tx));
        let _ = rx.await;
    }

    /// Sends the queue until `stop` fires. Calls give up when `stop` fires or their retry
    /// timeout runs out; a batch given up is dropped, as in the Go agent.
    pub async fn run(&self, client: &Client, flush_every: Duration, mut stop: Shutdown) {
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
                let event = {
                    let mut q = self.queue.lock().expect("reporter queue");
                    let event = q.events.pop_front();
                    if let Some(Event::Log(e)) = &event {
                        q.log_bytes -= e.data.len();
                    }
                    event
                };
                match event {
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
    fn log_queue_is_bounded_by_bytes_and_updates_are_never_dropped() {
        let r = Reporter::new(100);
        assert!(r.log(entry(0)) && r.log(entry(1)));
        let dropped = metrics::global().log_lines_dropped.load(Relaxed);
        assert!(!r.log(entry(2)), "a third 40-byte line exceeds 100 bytes");
        assert!(metrics::global().log_lines_dropped.load(Relaxed) > dropped);
        r.update("1", proto::StepStateMessage::default());
        let q = r.queue.lock().unwrap();
        assert_eq!((q.events.len(), q.log_bytes), (3, 80));
    }
}
