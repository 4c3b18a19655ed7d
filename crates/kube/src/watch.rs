//! Resumable watch streams over chunked HTTP. Knows nothing of steps or pods.
//!
//! - [`WatchStream`]: one watch request; raw events (ADDED/MODIFIED/DELETED/BOOKMARK/ERROR)
//!   decoded from the newline-JSON body; ends at the server's `timeoutSeconds`.
//! - [`Watcher`]: list-then-watch that never gives up: resumes from the last resourceVersion
//!   after a clean end, a dropped connection or an idle timeout (jittered backoff), and on 410
//!   (as an ERROR event or an HTTP reply) re-lists and reports [`Event::Restarted`] with the
//!   complete current state so the consumer can reconcile.
//!
//! Errors from [`Watcher::next`] are reports, not the end: the next call carries on
//! (kube-rs#1615 is what happens when consumers stop on the first error). Both `next`s are
//! cancel-safe enough to sit in a `select!` with a shutdown signal: no event is lost when the
//! other branch wins, as state changes only after an await completes.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::api::Api;
use super::client::{BodyStream, Req};
use super::decode::JsonLines;
use super::error::{Error, Result};
use super::params::WatchParams;
use super::retry::{Backoff, BackoffConfig};
use super::types::{Resource, Status};

/// The hard cap on one watch event (the apiserver's objects stay under ~1.5 MiB).
pub const MAX_EVENT: usize = 16 << 20;

/// One event as the apiserver sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent<K> {
    Added(K),
    Modified(K),
    Deleted(K),
    /// Only the resourceVersion is meaningful.
    Bookmark {
        resource_version: String,
    },
    /// A `Status`: 410 Expired means "re-list"; others are server trouble.
    Error(Status),
}

/// The envelope of a watch line. The object stays raw until the type says what it is, so `K`
/// is decoded by the same byte-slice decoder as GETs and lists (an adjacently tagged enum would
/// buffer it and compile a second decoder of `K` for the buffer).
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(borrow)]
    object: &'a serde_json::value::RawValue,
}

#[derive(Deserialize)]
struct BookmarkObject {
    metadata: BookmarkMeta,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BookmarkMeta {
    #[serde(default)]
    resource_version: String,
}

const EVENT_TYPES: &[&str] = &["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"];

/// Decodes one watch line. A bare `Status` line (no event envelope) is an error event.
pub fn decode_event<K: Resource>(line: &[u8]) -> std::result::Result<WatchEvent<K>, serde_json::Error> {
    decode_envelope(line).or_else(|e| {
        #[derive(Deserialize)]
        struct KindOnly {
            kind: String,
        }
        match serde_json::from_slice::<KindOnly>(line) {
            Ok(k) if k.kind == "Status" => serde_json::from_slice(line).map(WatchEvent::Error),
            _ => Err(e),
        }
    })
}

fn decode_envelope<K: Resource>(line: &[u8]) -> std::result::Result<WatchEvent<K>, serde_json::Error> {
    let wire = serde_json::from_slice::<Wire>(line)?;
    let object = wire.object.get().as_bytes();
    match wire.kind.as_str() {
        "ADDED" => serde_json::from_slice(object).map(WatchEvent::Added),
        "MODIFIED" => serde_json::from_slice(object).map(WatchEvent::Modified),
        "DELETED" => serde_json::from_slice(object).map(WatchEvent::Deleted),
        "BOOKMARK" => serde_json::from_slice::<BookmarkObject>(object).map(|b| WatchEvent::Bookmark {
            resource_version: b.metadata.resource_version,
        }),
        "ERROR" => serde_json::from_slice(object).map(WatchEvent::Error),
        other => Err(serde::de::Error::unknown_variant(other, EVENT_TYPES)),
    }
}

/// One watch request's events.
#[derive(Debug)]
pub struct WatchStream<K> {
    body: BodyStream,
    lines: JsonLines,
    done: bool,
    _kind: std::marker::PhantomData<fn() -> K>,
}

impl<K: Resource> WatchStream<K> {
    /// The next event; `None` once the stream ended (cleanly, or after an error was returned).
    pub async fn next(&mut self) -> Option<Result<WatchEvent<K>>> {
        loop {
            if let Some(line) = self.lines.next() {
                let what = self.body.what();
                return Some(match line {
                    Ok(line) => decode_event(&line).map_err(|source| Error::Decode {
                        what: what.to_string(),
                        source: source.into(),
                    }),
                    Err(big) => Err(Error::TooLarge {
                        what: what.to_string(),
                        limit: big.limit,
                    }),
                });
            }
            if self.done {
                return None;
            }
            match self.body.chunk().await {
                Ok(Some(chunk)) => self.lines.push(chunk),
                Ok(None) => {
                    self.done = true;
                    self.lines.finish();
                }
                Err(e) => {
                    self.done = true;
                    self.lines.reset();
                    return Some(Err(e));
                }
            }
        }
    }
}

impl<K: Resource> Api<K> {
    /// One watch from `resource_version` (empty = "now", with synthetic ADDED events for what
    /// exists). The read-idle limit is `timeoutSeconds` + 5 s, like kube-rs.
    pub async fn watch(&self, params: &WatchParams, resource_version: &str) -> Result<WatchStream<K>> {
        let path = format!(
            "{}{}",
            self.collection_path(self.namespace()),
            params.query(resource_version).as_str()
        );
        let idle = Duration::from_secs(u64::from(params.timeout_seconds) + 5);
        let body = self.client.request_stream(&Req::get(path), idle).await?;
        Ok(WatchStream {
            body,
            lines: JsonLines::new(MAX_EVENT),
            done: false,
            _kind: std::marker::PhantomData,
        })
    }

    /// A list-then-watch that resumes and re-lists by itself.
    pub fn watcher(&self, params: WatchParams) -> Watcher<K> {
        Watcher::new(self.clone(), params)
    }
}

/// What a [`Watcher`] reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<K> {
    /// Created or changed.
    Applied(K),
    Deleted(K),
    /// The full current state after a (re-)list: the first event, and again after a 410.
    /// Objects missing from it were deleted while we could not see.
    Restarted(Vec<K>),
}

#[derive(Debug)]
enum State<K> {
    /// Must list (start, or after 410 / an ERROR event).
    Relist,
    /// Must open a watch from this resourceVersion.
    Resume(String),
    Watching {
        stream: Box<WatchStream<K>>,
        rv: String,
        opened: Instant,
        events: u32,
    },
}

/// List-then-watch with automatic recovery; see the module doc.
#[derive(Debug)]
pub struct Watcher<K> {
    api: Api<K>,
    params: WatchParams,
    state: State<K>,
    backoff: Backoff,
    /// Sleep before the next attempt (set after a failure).
    delay: Option<Duration>,
    /// When the last list finished: a 410 right after it backs off instead of looping.
    listed_at: Option<Instant>,
}

impl<K: Resource> Watcher<K> {
    pub fn new(api: Api<K>, params: WatchParams) -> Self {
        Watcher {
            api,
            params,
            state: State::Relist,
            backoff: Backoff::new(BackoffConfig::WATCH),
            delay: None,
            listed_at: None,
        }
    }

    /// Overrides the reconnect backoff (tests use short ones).
    pub fn with_backoff(mut self, config: BackoffConfig) -> Self {
        self.backoff = Backoff::new(config);
        self
    }

    /// The next event. Never ends; an `Err` reports a failure that is being retried.
    pub async fn next(&mut self) -> Result<Event<K>> {
        loop {
            if let Some(d) = self.delay {
                tokio::time::sleep(d).await;
                self.delay = None;
            }
            // The state is changed only after an await completes, so dropping this future in a
            // `select!` loses nothing.
            let (stream, rv, opened, events) = match &mut self.state {
                State::Relist => match self.api.list_all(&self.params.to_list()).await {
                    Ok(list) => {
                        self.listed_at = Some(Instant::now());
                        self.state = State::Resume(list.metadata.resource_version);
                        return Ok(Event::Restarted(list.items));
                    }
                    Err(e) => return Err(self.fail(State::Relist, e)),
                },
                State::Resume(rv) => {
                    let rv = rv.clone();
                    match self.api.watch(&self.params, &rv).await {
                        Ok(stream) => {
                            self.state = State::Watching {
                                stream: Box::new(stream),
                                rv,
                                opened: Instant::now(),
                                events: 0,
                            };
                            continue;
                        }
                        // HTTP 410 on the watch itself: too old, re-list (quietly).
                        Err(e) if e.is_gone() => {
                            self.relist_after_gone();
                            continue;
                        }
                        Err(e) => return Err(self.fail(State::Resume(rv), e)),
                    }
                }
                State::Watching {
                    stream,
                    rv,
                    opened,
                    events,
                } => (stream, rv, opened, events),
            };
            let ev = match stream.next().await {
                None => {
                    // A clean end (timeoutSeconds): resume at once, unless it came right after
                    // opening with nothing in it (client-go's VeryShortWatch guard).
                    let quick = *events == 0 && opened.elapsed() < Duration::from_secs(1);
                    self.state = State::Resume(std::mem::take(rv));
                    if quick {
                        self.delay = Some(self.backoff.next_delay());
                    }
                    continue;
                }
                // The stream is intact; we only lost track of one object.
                Some(Err(e @ (Error::TooLarge { .. } | Error::Decode { .. }))) => return Err(e),
                Some(Err(e)) => {
                    let rv = std::mem::take(rv);
                    return Err(self.fail(State::Resume(rv), e));
                }
                Some(Ok(ev)) => ev,
            };
            *events += 1;
            match ev {
                WatchEvent::Added(k) | WatchEvent::Modified(k) => {
                    *rv = k.meta().resource_version.clone();
                    self.backoff.reset();
                    return Ok(Event::Applied(k));
                }
                WatchEvent::Deleted(k) => {
                    *rv = k.meta().resource_version.clone();
                    self.backoff.reset();
                    return Ok(Event::Deleted(k));
                }
                WatchEvent::Bookmark { resource_version } => *rv = resource_version,
                WatchEvent::Error(status) => {
                    let err = Error::Api {
                        what: format!("watching {}", K::PLURAL),
                        status: Box::new(status),
                    };
                    // 410: our resourceVersion is too old: re-list now, quietly (the consumer
                    // sees `Restarted`). Other ERRORs: re-list after a backoff, as client-go.
                    if err.is_gone() {
                        self.relist_after_gone();
                    } else {
                        return Err(self.fail(State::Relist, err));
                    }
                }
            }
        }
    }

    /// A 410: re-list. Right after a list (the server keeps refusing what it just gave us),
    /// back off rather than spin.
    fn relist_after_gone(&mut self) {
        self.state = State::Relist;
        if self.listed_at.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            self.delay = Some(self.backoff.next_delay());
        }
    }

    /// Records a failure: where to go next, after a backoff; returns the error to report.
    fn fail(&mut self, next: State<K>, err: Error) -> Error {
        self.api
            .client
            .counters()
            .watch_restarts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.state = next;
        self.delay = Some(self.backoff.next_delay());
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Pod;

    #[test]
    fn decodes_every_event_type() {
        let added: WatchEvent<Pod> =
            decode_event(br#"{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","resourceVersion":"5"}}}"#).unwrap();
        assert!(matches!(added, WatchEvent::Added(p) if p.metadata.name == "a"));
        let bm: WatchEvent<Pod> = decode_event(
            br#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"9"}}}"#,
        )
        .unwrap();
        assert_eq!(
            bm,
            WatchEvent::Bookmark {
                resource_version: "9".into()
            }
        );
        let err: WatchEvent<Pod> = decode_event(
            br#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#,
        )
        .unwrap();
        assert!(matches!(err, WatchEvent::Error(s) if s.code == 410 && s.reason == "Expired"));
        let bare: WatchEvent<Pod> = decode_event(br#"{"kind":"Status","code":500,"message":"x"}"#).unwrap();
        assert!(matches!(bare, WatchEvent::Error(s) if s.code == 500));
        assert!(decode_event::<Pod>(br#"{"type":"WHAT","object":{}}"#).is_err());
        assert!(decode_event::<Pod>(b"garbage").is_err());
    }
}
