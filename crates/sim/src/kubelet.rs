//! The kubelet of the one simulated node, `sim-node-1`: one task that notices pods (from the
//! store's change feed), starts a lifecycle task per pod (owned in a JoinSet) and tells it when
//! its pod is being deleted or is gone. The lifecycle itself lives in `podrun`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::Shared;
use super::delete;
use super::podrun;
use super::runner::Kill;
use super::store::Key;

pub const NODE: &str = "sim-node-1";

/// Runs until shutdown, then stops every pod (their processes included). Works from the store's
/// change feed of pods: each change costs the pod it touched, not a scan of every pod.
pub async fn run(shared: Arc<Shared>) {
    let feed = shared.store.feed(|c| c.key.plural == "pods");
    let shutdown = shared.shutdown.clone();
    let mut tasks: JoinSet<String> = JoinSet::new();
    let mut kills: HashMap<String, watch::Sender<Option<Kill>>> = HashMap::new();
    // Which pod each running task runs, and back: a removed or replaced pod is found by key.
    let mut running: HashMap<Key, String> = HashMap::new();
    let mut keys_of: HashMap<String, Key> = HashMap::new();
    let mut done: HashSet<String> = HashSet::new();
    // Pods that existed before the feed: all of them, once.
    let mut todo: Vec<Key> = shared.store.scan_kind("pods", None, |k, _| Some(k.clone()));
    loop {
        todo.extend(feed.take());
        for key in std::mem::take(&mut todo) {
            let pod = shared.store.get(&key);
            let uid = pod
                .as_ref()
                .map(|p| p["metadata"]["uid"].as_str().unwrap_or("").to_string());
            // The pod a task runs is gone (or another took its name): stop it now.
            if let Some(old) = running.get(&key)
                && uid.as_ref() != Some(old)
            {
                if let Some(kill) = kills.get(old)
                    && kill.borrow().is_none()
                {
                    kill.send_replace(Some(Kill::Deleted { grace: Duration::ZERO }));
                }
                running.remove(&key);
            }
            let (Some(pod), Some(uid)) = (pod, uid) else { continue };
            // A lost node's kubelet does nothing for its pods (their deletion hangs, as there).
            if shared.node_lost() && pod["spec"]["nodeName"] == NODE {
                continue;
            }
            let m = &pod["metadata"];
            let deleting = m["deletionTimestamp"].is_string();
            if let Some(kill) = kills.get(&uid) {
                if deleting {
                    let grace =
                        Duration::from_secs(m["deletionGracePeriodSeconds"].as_i64().unwrap_or(30).max(0) as u64);
                    if kill.borrow().is_none() {
                        kill.send_replace(Some(Kill::Deleted { grace }));
                    }
                }
                continue;
            }
            let terminal = matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
            if deleting {
                // Nothing runs it (finished, or never started here): it may go.
                delete::finalize_if_released(&shared, &key);
                if !terminal && !done.contains(&uid) && pod["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty())
                {
                    delete::remove_now(&shared, &key);
                }
                continue;
            }
            if terminal || done.contains(&uid) {
                continue;
            }
            let (tx, rx) = watch::channel(None);
            kills.insert(uid.clone(), tx);
            running.insert(key.clone(), uid.clone());
            keys_of.insert(uid.clone(), key.clone());
            let s = shared.clone();
            tasks.spawn(async move {
                podrun::run(s, key, rx).await;
                uid
            });
        }
        tokio::select! {
            _ = feed.changed() => {}
            Some(Ok(uid)) = tasks.join_next(), if !tasks.is_empty() => {
                kills.remove(&uid);
                // Look at its pod once more, as it is now that nothing runs it.
                if let Some(key) = keys_of.remove(&uid) {
                    if running.get(&key) == Some(&uid) {
                        running.remove(&key);
                    }
                    todo.push(key);
                }
                done.insert(uid);
            }
            _ = shutdown.cancelled() => break,
        }
    }
    for kill in kills.values() {
        kill.send_replace(Some(Kill::Deleted { grace: Duration::ZERO }));
    }
    while tasks.join_next().await.is_some() {}
}
