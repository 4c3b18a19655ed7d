//! The garbage collector and namespace controller, one task: after every change it deletes
//! objects whose owners are all gone (background propagation) or being deleted in the
//! foreground, releases foreground owners once their dependents are gone, empties terminating
//! namespaces and removes them when empty.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::Shared;
use super::delete::{self, FOREGROUND, Options};
use super::resources;
use super::store::Key;

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

/// One pass over the store.
pub fn sweep(shared: &Shared) {
    let all = shared.store.all();
    let uids: HashSet<&str> = all.iter().filter_map(|(_, o)| o["metadata"]["uid"].as_str()).collect();
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
        let orphaned = !owners.is_empty() && owners.iter().all(|u| !uids.contains(u));
        let owner_foreground = owners.iter().any(|u| foreground_owners.contains(u));
        let in_dying_ns = !key.namespace.is_empty() && dying_namespaces.contains(key.namespace.as_str());
        if (orphaned || owner_foreground || in_dying_ns)
            && !terminating(o)
            && let Some(def) = resources::by_plural(&key.plural)
        {
            let _ = delete::delete(shared, def, key, &Options::default());
        }
    }
    // Foreground owners whose dependents are gone lose the finalizer (and then go).
    for (key, o) in &all {
        let Some(uid) = o["metadata"]["uid"].as_str() else {
            continue;
        };
        if foreground_owners.contains(uid) && !delete::has_dependents(shared, uid) {
            shared.store.update(key, |o| {
                if let Some(f) = o["metadata"]["finalizers"].as_array_mut() {
                    f.retain(|x| x != FOREGROUND);
                    if f.is_empty() {
                        o["metadata"].as_object_mut().map(|m| m.remove("finalizers"));
                    }
                }
            });
            delete::finalize_if_released(shared, key);
        }
    }
    for ns in dying_namespaces {
        let left = shared.store.all().iter().any(|(k, _)| k.namespace == ns);
        if !left {
            delete::remove_now(shared, &Key::new("namespaces", "", ns));
        }
    }
}

/// Runs [`sweep`] after every change until shutdown.
pub async fn run(shared: Arc<Shared>) {
    let mut changed = shared.store.subscribe();
    let mut shutdown = shared.shutdown.clone();
    loop {
        sweep(&shared);
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = shutdown.wait() => return,
        }
    }
}
