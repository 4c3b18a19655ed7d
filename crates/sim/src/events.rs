//! Core v1 Events as the kubelet, scheduler and provisioners record them: named
//! `<object>.<hex nanos>`, with involvedObject, reason, message, type, source and counts. As
//! client-go's event correlator does, an event the same as one already recorded (same object,
//! source, type, reason and message) is not recorded again: the first one's `count` goes up and
//! its `lastTimestamp` moves (the kubelet's back-off events look so on a cluster).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use super::Shared;
use super::store::Key;
use super::time;

/// Who reports an event.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    Kubelet,
    Scheduler,
    Provisioner,
    NodeController,
    TaintEviction,
    VolumeController,
}

impl Source {
    fn component(self) -> &'static str {
        match self {
            Source::Kubelet => "kubelet",
            Source::Scheduler => "default-scheduler",
            Source::Provisioner => "rancher.io/local-path_local-path-provisioner",
            Source::NodeController => "node-controller",
            Source::TaintEviction => "taint-eviction-controller",
            Source::VolumeController => "persistentvolume-controller",
        }
    }
}

/// Records an event about `obj` (a stored object with kind, apiVersion and metadata).
pub fn record(
    shared: &Shared,
    obj: &Value,
    warning: bool,
    reason: &str,
    message: &str,
    source: Source,
    field_path: Option<&str>,
) {
    let m = &obj["metadata"];
    let ns = m["namespace"].as_str().unwrap_or("default");
    let name = m["name"].as_str().unwrap_or("");
    let nanos = time::now_nanos();
    let now = time::rfc3339(nanos);
    // A repeat (the correlator's key: the object, who, what and why) only counts up the first.
    let same = format!(
        "{ns}\0{}\0{}\0{}\0{warning}\0{reason}\0{message}",
        m["uid"].as_str().unwrap_or(name),
        field_path.unwrap_or(""),
        source.component()
    );
    let store = &shared.store;
    let mut seen = shared.events.0.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(key) = seen.get(&same) {
        let bumped = store.update(key, |e| {
            e["count"] = json!(e["count"].as_i64().unwrap_or(1) + 1);
            e["lastTimestamp"] = json!(now);
        });
        if bumped.is_some() {
            return;
        }
    }
    // Strictly increasing suffixes, so two events in the same nanosecond keep distinct names.
    static LAST: AtomicU64 = AtomicU64::new(0);
    let n = (nanos as u64).saturating_sub(1);
    let prev = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| Some(l.max(n) + 1))
        .unwrap_or(0);
    let stamp = prev.max(n) + 1;
    let mut involved = json!({"kind": obj["kind"], "namespace": ns, "name": name, "uid": m["uid"],
                              "apiVersion": obj["apiVersion"], "resourceVersion": m["resourceVersion"]});
    if let Some(fp) = field_path {
        involved["fieldPath"] = json!(fp);
    }
    let host = if matches!(source, Source::Kubelet) {
        json!({"component": source.component(), "host": "sim-node-1"})
    } else {
        json!({"component": source.component()})
    };
    let ev = json!({
        "kind": "Event", "apiVersion": "v1",
        "metadata": {"name": format!("{name}.{stamp:x}")},
        "involvedObject": involved,
        "reason": reason, "message": message, "type": if warning { "Warning" } else { "Normal" },
        "source": host, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        "reportingComponent": source.component(), "reportingInstance": if matches!(source, Source::Kubelet) { "sim-node-1" } else { "" },
    });
    // Events of a namespace that is gone are dropped, as the apiserver would refuse them.
    if let Ok(created) = store.create("events", ns, ev) {
        let name = created["metadata"]["name"].as_str().unwrap_or_default();
        seen.insert(same, Key::new("events", ns, name));
    }
}

/// A sim's events recorded so far, by what makes two of them the same: where a repeat goes.
#[derive(Debug, Default)]
pub struct Recorded(Mutex<HashMap<String, Key>>);
