//! A step's log on its way from the backend to the runtime: a bounded channel of line batches.
//!
//! Lines travel in batches (all the lines one read of the container log yielded, up to
//! [`BATCH`]) so a busy log costs one channel hand-over and at most one wake-up per batch, not
//! per line: per-line hand-overs made the two tasks wake each other 200 000 times for a 19 MB
//! log. The reader still sees one line at a time ([`LogLines::recv`]).

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::sync::mpsc;

/// The most lines in one batch.
pub const BATCH: usize = 64;

/// Items of a step's output, in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub items: Vec<Bytes>,
    /// Each item is known to be one line without its newline (a container log's lines, split
    /// by the follower), so the reader need not look for newlines in them again. Otherwise an
    /// item may hold several lines.
    pub lines: bool,
}

/// The receiving end: the step's lines in order, `None` once the step's log is over.
#[derive(Debug)]
pub struct LogLines {
    rx: mpsc::Receiver<Batch>,
    batch: VecDeque<Bytes>,
}

/// The sending end; cloneable. A send fails only when the reader is gone.
#[derive(Debug, Clone)]
pub struct LogSender {
    tx: mpsc::Sender<Batch>,
}

/// The reader dropped its [`LogLines`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// A channel that holds about `lines` lines (rounded up to whole batches) before a sender waits.
pub fn log_channel(lines: usize) -> (LogSender, LogLines) {
    let (tx, rx) = mpsc::channel(lines.div_ceil(BATCH).max(1));
    let rx = LogLines {
        rx,
        batch: VecDeque::new(),
    };
    (LogSender { tx }, rx)
}

impl LogLines {
    /// The next line, `None` at the end.
    pub async fn recv(&mut self) -> Option<Bytes> {
        loop {
            if let Some(line) = self.batch.pop_front() {
                return Some(line);
            }
            self.batch = self.rx.recv().await?.items.into();
        }
    }

    /// Every item that is ready (at least one), `None` at the end.
    pub async fn recv_many(&mut self) -> Option<Batch> {
        if self.batch.is_empty() {
            loop {
                let batch = self.rx.recv().await?;
                if !batch.items.is_empty() {
                    return Some(batch);
                }
            }
        }
        Some(Batch {
            items: std::mem::take(&mut self.batch).into(),
            lines: false,
        })
    }
}

impl LogSender {
    /// Sends one item (it may hold several lines).
    pub async fn send(&self, item: Bytes) -> Result<(), Closed> {
        self.send_batch(vec![item], false).await
    }

    /// Sends lines known to hold no newline as one batch ([`Batch::lines`]; callers keep
    /// batches at most [`BATCH`] long).
    pub async fn send_lines(&self, lines: Vec<Bytes>) -> Result<(), Closed> {
        self.send_batch(lines, true).await
    }

    async fn send_batch(&self, items: Vec<Bytes>, lines: bool) -> Result<(), Closed> {
        if items.is_empty() {
            return Ok(());
        }
        self.tx.send(Batch { items, lines }).await.map_err(|_| Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[tokio::test]
    async fn lines_arrive_in_order_across_single_sends_and_batches() {
        let (tx, mut rx) = log_channel(256);
        tx.send(b("a")).await.unwrap();
        tx.send_lines(vec![b("b"), b("c")]).await.unwrap();
        tx.send_lines(Vec::new()).await.unwrap();
        tx.send(b("d")).await.unwrap();
        tx.send_lines(vec![b("e"), b("f")]).await.unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some(b("a")));
        assert_eq!(rx.recv().await, Some(b("b")));
        let items = |v: Vec<Bytes>| Some(Batch { items: v, lines: false });
        assert_eq!(rx.recv_many().await, items(vec![b("c")]), "the rest of the batch");
        assert_eq!(rx.recv_many().await, items(vec![b("d")]));
        let lines = Batch {
            items: vec![b("e"), b("f")],
            lines: true,
        };
        assert_eq!(rx.recv_many().await, Some(lines), "a whole batch of lines stays one");
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.recv_many().await, None);
    }

    #[tokio::test]
    async fn a_full_channel_holds_the_sender_and_a_gone_reader_fails_it() {
        let (tx, rx) = log_channel(BATCH * 2);
        for _ in 0..2 {
            tx.send_lines(vec![b("x"); BATCH]).await.unwrap();
        }
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), tx.send(b("y"))).await;
        assert!(third.is_err(), "a third batch waits for the reader");
        drop(rx);
        assert_eq!(tx.send(b("z")).await, Err(Closed));
    }
}
