//! The kubelet of the one simulated node, `sim-node-1`: one task that notices pods, starts a
//! lifecycle task per pod (owned in a JoinSet) and tells it when its pod is being deleted or is
//! gone. The lifecycle itself lives in `podrun`.

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

/// Runs until shutdown, then stops every pod (their processes included).
pub async fn run(shared: Arc<Shared>) {
    let mut changed = shared.store.subscribe();
    let shutdown = shared.shutdown.clone();
    let mut tasks: JoinSet<String> = JoinSet::new();
    let mut kills: HashMap<String, watch::Sender<Option<Kill>>> = HashMap::new();
    let mut done: HashSet<String> = HashSet::new();
    loop {
        while let Some(Ok(uid)) = tasks.try_join_next() {
            kills.remove(&uid);
            done.insert(uid);
        }
        // Only pods that need attention are cloned: new ones, and ones being deleted.
        let mut present = HashSet::new();
        let pods = shared.store.scan(|k, pod| {
            if k.plural != "pods" {
                return None;
            }
            let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
            present.insert(uid.to_string());
            let deleting = pod["metadata"]["deletionTimestamp"].is_string();
            let known = kills.contains_key(uid) || done.contains(uid);
            (deleting || !known).then(|| pod.clone())
        });
        for pod in &pods {
            let m = &pod["metadata"];
            let uid = m["uid"].as_str().unwrap_or("").to_string();
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
            let key = Key::new(
                "pods",
                m["namespace"].as_str().unwrap_or(""),
                m["name"].as_str().unwrap_or(""),
            );
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
            let s = shared.clone();
            tasks.spawn(async move {
                podrun::run(s, key, rx).await;
                uid
            });
        }
        for (uid, kill) in &kills {
            if !present.contains(uid) && kill.borrow().is_none() {
                kill.send_replace(Some(Kill::Deleted { grace: Duration::ZERO }));
            }
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { break },
            Some(Ok(uid)) = tasks.join_next(), if !tasks.is_empty() => {
                kills.remove(&uid);
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
