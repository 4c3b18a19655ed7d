//! Watch streams: newline-delimited JSON events over a chunked response, starting strictly
//! after the requested resourceVersion (unset or "0": synthetic ADDED events for the current
//! state first), filtered by namespace and selectors (an object that stops matching arrives as
//! DELETED, one that starts matching as ADDED), with bookmarks, `timeoutSeconds`, a 410 ERROR
//! event when the history no longer reaches back, and one-row Tables for `kubectl get -w`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use super::Shared;
use super::resources::ResourceDef;
use super::select::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Change, ChangeKind};
use super::table;
use super::wire::{self, Aborted, Chunk, Query, Resp};

/// What one watch request asked for.
pub struct WatchSpec {
    pub def: &'static ResourceDef,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub table: bool,
}

impl WatchSpec {
    fn matches(&self, obj: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| obj["metadata"]["namespace"].as_str().unwrap_or("") == ns)
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }

    fn frame(&self, kind: &str, obj: &Value) -> Bytes {
        let object = if self.table && kind != "ERROR" && kind != "BOOKMARK" {
            let rv = obj["metadata"]["resourceVersion"].as_str().unwrap_or("");
            table::table(self.def.plural, std::slice::from_ref(obj), rv, false)
        } else {
            obj.clone()
        };
        let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    /// The event (if any) a change produces for this watcher.
    fn event(&self, ch: &Change) -> Option<(&'static str, Value)> {
        if ch.key.plural != self.def.plural {
            return None;
        }
        let now = self.matches(&ch.object);
        let before = ch.prev.as_deref().is_some_and(|p| self.matches(p));
        let obj = (*ch.object).clone();
        match ch.kind {
            ChangeKind::Added if now => Some(("ADDED", obj)),
            ChangeKind::Deleted if before || now => Some(("DELETED", obj)),
            ChangeKind::Modified if now && before => Some(("MODIFIED", obj)),
            ChangeKind::Modified if now => Some(("ADDED", obj)),
            ChangeKind::Modified if before => Some(("DELETED", obj)),
            _ => None,
        }
    }
}

fn bookmark(def: &ResourceDef, rv: u64) -> Value {
    json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": {"resourceVersion": rv.to_string()}})
}

/// Starts a watch and returns its streamed response.
pub fn handle(shared: &Arc<Shared>, spec: WatchSpec, q: &Query) -> Result<Resp, ApiError> {
    let start = match q.get("resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v:?}")))?,
        ),
    };
    let timeout = q
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let bookmarks = q.flag("allowWatchBookmarks");
    let initial_end = q.flag("sendInitialEvents") && bookmarks;
    let start = if q.flag("sendInitialEvents") { None } else { start };
    let (tx, resp) = wire::stream("application/json");
    let shared2 = shared.clone();
    let cut = shared.faults.take_watch_cut();
    let task = async move {
        let shared = shared2;
        let store = &shared.store;
        let mut changed = store.subscribe();
        let mut expiry = shared.faults.watch_expiry();
        let mut sent = 0usize;
        let send = |b: Bytes| {
            let tx = tx.clone();
            async move { tx.send(Ok(b)).await.is_ok() }
        };
        let abort = |tx: tokio::sync::mpsc::Sender<Chunk>| async move {
            // Let hyper flush what was sent, then break the connection.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let _ = tx.send(Err(Aborted)).await;
        };
        if cut == Some(0) {
            return abort(tx).await;
        }
        let mut last = match start {
            Some(rv) => rv,
            None => {
                let (items, rv) = store.list(spec.def.plural, spec.namespace.as_deref());
                for o in items.iter().filter(|o| spec.matches(o)) {
                    if !send(spec.frame("ADDED", o)).await {
                        return;
                    }
                    sent += 1;
                    if cut.is_some_and(|n| sent >= n) {
                        return abort(tx).await;
                    }
                }
                if initial_end {
                    // Streaming list (KEP-3157): the end of the initial events is a marked BOOKMARK.
                    let mut b = bookmark(spec.def, rv);
                    b["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
                    if !send(spec.frame("BOOKMARK", &b)).await {
                        return;
                    }
                }
                rv
            }
        };
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let shutdown = shared.shutdown.clone();
        let mut tick = tokio::time::interval(shared.bookmark_interval);
        tick.tick().await;
        loop {
            match store.changes_since(last) {
                Err(too_old) => {
                    let e = ApiError::expired(format!(
                        "too old resource version: {last} ({})",
                        too_old.oldest.saturating_sub(1)
                    ));
                    let _ = send(spec.frame("ERROR", &e.status_json())).await;
                    return;
                }
                Ok(changes) => {
                    for ch in changes {
                        last = ch.rv;
                        if let Some((kind, obj)) = spec.event(&ch) {
                            if !send(spec.frame(kind, &obj)).await {
                                return;
                            }
                            sent += 1;
                            if cut.is_some_and(|n| sent >= n) {
                                return abort(tx).await;
                            }
                        }
                    }
                }
            }
            let until = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = tick.tick(), if bookmarks => {
                    if !send(spec.frame("BOOKMARK", &bookmark(spec.def, last))).await {
                        return;
                    }
                }
                _ = until => {
                    if bookmarks {
                        let _ = send(spec.frame("BOOKMARK", &bookmark(spec.def, last))).await;
                    }
                    return;
                }
                _ = tx.closed() => return,
                _ = expiry.changed() => {
                    let e = ApiError::expired(format!("too old resource version: {last} ({})", shared.store.current_rv()));
                    let _ = send(spec.frame("ERROR", &e.status_json())).await;
                    return;
                }
                _ = shutdown.cancelled() => return abort(tx).await,
            }
        }
    };
    shared.spawn(task);
    Ok(resp)
}
