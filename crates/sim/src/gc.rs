//! The garbage collector and namespace controller, one task: after every change that can
//! matter (the store's change feed) it deletes
//! objects whose owners are all gone (background propagation) or being deleted in the
//! foreground, releases foreground owners once their dependents are gone, empties terminating
//! namespaces and removes them when empty.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::Shared;
use super::delete::{self, FOREGROUND, Options};
use super::store::{Change, ChangeKind, Key};
use super::{resources, storage};

fn owner_uids(o: &Value) -> Vec<&str> {
    o["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str())
        .collect()
}

fn terminating(o: &Value) -> bool {
    o["metadata"]["deletionTimestamp"].is_string()
}

/// One pass over the store. Returns whether a namespace is terminating (then any change may
/// matter: the kubelet still writes events into it).
pub fn sweep(shared: &Shared) -> bool {
    // Only objects that can matter: owned, terminating, or namespaces.
    let dying: HashSet<String> = shared
        .store
        .scan_kind("namespaces", None, |k, o| terminating(o).then(|| k.name.clone()))
        .into_iter()
        .collect();
    let all: Vec<(Key, Value)> = shared.store.scan(|k, o| {
        let relevant = o["metadata"]["ownerReferences"].is_array()
            || terminating(o)
            || k.plural == "namespaces"
            || dying.contains(&k.namespace);
        relevant.then(|| (k.clone(), o.clone()))
    });
    let wanted: HashSet<String> = all.iter().flat_map(|(_, o)| owner_uids(o)).map(String::from).collect();
    let existing: HashSet<String> = shared
        .store
        .scan(|_, o| {
            o["metadata"]["uid"]
                .as_str()
                .filter(|u| wanted.contains(*u))
                .map(String::from)
        })
        .into_iter()
        .collect();
    let foreground_owners: HashSet<&str> = all
        .iter()
        .filter(|(_, o)| {
            terminating(o)
                && o["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|x| x == FOREGROUND))
        })
        .filter_map(|(_, o)| o["metadata"]["uid"].as_str())
        .collect();
    let dying_namespaces: HashSet<&str> = all
        .iter()
        .filter(|(k, o)| k.plural == "namespaces" && terminating(o))
        .map(|(k, _)| k.name.as_str())
        .collect();
    for (key, o) in &all {
        let owners = owner_uids(o);
        let orphaned = !owners.is_empty() && owners.iter().all(|u| !existing.contains(*u));
        let owner_foreground = owners.iter().any(|u| foreground_owners.contains(u));
        let in_dying_ns = !key.namespace.is_empty() && dying_namespaces.contains(key.namespace.as_str());
        if (orphaned || owner_foreground || in_dying_ns)
            && !terminating(o)
            && let Some(def) = resources::by_plural(&key.plural)
        {
            let _ = delete::delete(shared, def, key, &Options::default());
        }
    }
    // Terminating claims no running pod uses lose the protection finalizer (and then go).
    for (key, o) in &all {
        if key.plural == "persistentvolumeclaims"
            && terminating(o)
            && !storage::claim_in_use(shared, &key.namespace, &key.name)
        {
            delete::drop_finalizer(shared, key, storage::PVC_PROTECTION);
        }
    }
    // Foreground owners whose dependents are gone lose the finalizer (and then go).
    for (key, o) in &all {
        let Some(uid) = o["metadata"]["uid"].as_str() else {
            continue;
        };
        if foreground_owners.contains(uid) && !delete::has_dependents(shared, uid) {
            delete::drop_finalizer(shared, key, FOREGROUND);
        }
    }
    let busy = !dying_namespaces.is_empty();
    for ns in dying_namespaces {
        let left = !shared.store.scan(|k, _| (k.namespace == ns).then_some(())).is_empty();
        if !left {
            delete::remove_now(shared, &Key::new("namespaces", "", ns));
        }
    }
    busy
}

fn claims(o: &Value) -> bool {
    o["spec"]["volumes"]
        .as_array()
        .is_some_and(|v| v.iter().any(|v| v["persistentVolumeClaim"].is_object()))
}

/// Whether a change can give the collector work: something went away (owners, dependents, a
/// namespace's content), is being deleted, names owners anew, is a namespace, or is a pod using
/// claims that stopped running (a terminating claim may be released). Status updates of live,
/// unowned objects (almost every change while pods run) cannot.
fn relevant(c: &Change) -> bool {
    let o = &*c.object;
    let prev = c.prev.as_deref();
    c.kind == ChangeKind::Deleted
        || c.key.plural == "namespaces"
        || terminating(o)
        || &o["metadata"]["ownerReferences"] != prev.map_or(&Value::Null, |p| &p["metadata"]["ownerReferences"])
        || (c.key.plural == "pods" && claims(o) && prev.is_some_and(|p| p["status"]["phase"] != o["status"]["phase"]))
}

/// Runs [`sweep`] after every change that can matter (see [`relevant`]; every change while a
/// namespace terminates) until shutdown.
pub async fn run(shared: Arc<Shared>) {
    let feed = shared.store.feed(relevant);
    let mut changed = shared.store.subscribe();
    let shutdown = shared.shutdown.clone();
    loop {
        feed.take();
        changed.borrow_and_update();
        let busy = sweep(&shared);
        tokio::select! {
            _ = feed.changed() => {}
            r = changed.changed(), if busy => if r.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
    }
}
