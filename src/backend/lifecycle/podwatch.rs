//! The shared pod watch of one namespace, fanned out to the steps that wait on its pods.
//!
//! One watch per namespace for the whole agent (label-selected to this agent's pods) feeds
//! [`PodWatch::apply`]; each step holds a [`watch::Receiver`] for its own pod. Knows nothing of
//! HTTP or of what a pod state means (that is `classify`): the input is a small [`Input`] enum,
//! so the dispatcher is tested without a cluster.
//!
//! Why a `tokio::sync::watch` channel per pod: it is a bounded channel of one slot that keeps
//! the latest state, so (1) the shared watch never blocks on a slow step, (2) a step that
//! registers late reads the latest known state at once, and (3) nothing is lost that matters:
//! intermediate states are superseded, and a pod's last state (even after `DELETED`, which
//! carries it) is what decides the step.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use kube::types::Pod;

/// What the shared watch saw (the client's `Watcher` events, minus the HTTP).
#[derive(Debug, Clone)]
pub enum Input {
    /// Added or modified.
    Applied(Pod),
    /// Deleted; the pod's last state.
    Deleted(Pod),
    /// The watch relisted (after a 410 or a reconnect): the complete current set.
    Restarted(Vec<Pod>),
}

/// One pod as the shared watch last saw it.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Seen {
    /// Registered, not seen yet.
    #[default]
    Unknown,
    Present(Pod),
    /// Deleted (or missing from a relist); its last known state.
    Gone(Pod),
}

impl Seen {
    pub fn pod(&self) -> Option<&Pod> {
        match self {
            Seen::Unknown => None,
            Seen::Present(p) | Seen::Gone(p) => Some(p),
        }
    }
}

/// The per-namespace dispatcher. A std `Mutex` fits: it is held only for map updates, never
/// across an await, and `watch::Sender::send_*` does not block.
#[derive(Debug, Default)]
pub struct PodWatch {
    pods: Mutex<HashMap<String, watch::Sender<Seen>>>,
}

impl PodWatch {
    pub fn new() -> Self {
        PodWatch::default()
    }

    /// Starts following pod `name`. Register *before* creating the pod, so its whole life is
    /// seen; the receiver replays the latest state if the pod was already seen. Dropping the
    /// receiver unregisters.
    pub fn register(&self, name: &str) -> watch::Receiver<Seen> {
        let mut pods = self.pods.lock().unwrap();
        // Forget pods that are gone and no longer waited on (their waiters left after the
        // DELETED event), so entries do not pile up between relists.
        pods.retain(|_, tx| tx.receiver_count() > 0 || !matches!(*tx.borrow(), Seen::Gone(_)));
        pods.entry(name.to_owned())
            .or_insert_with(|| watch::channel(Seen::Unknown).0)
            .subscribe()
    }

    /// How many pods are tracked (seen or waited on).
    pub fn len(&self) -> usize {
        self.pods.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Feeds one event of the shared watch to the waiters.
    pub fn apply(&self, input: Input) {
        let mut pods = self.pods.lock().unwrap();
        match input {
            Input::Applied(pod) => {
                // Kept even with no waiter: a step may register a moment after its pod shows up.
                let tx = pods
                    .entry(pod.metadata.name.clone())
                    .or_insert_with(|| watch::channel(Seen::Unknown).0);
                set(tx, Seen::Present(pod));
            }
            Input::Deleted(pod) => {
                let name = pod.metadata.name.clone();
                let Some(tx) = pods.get(&name) else { return };
                if !same_object(&tx.borrow(), &pod) {
                    return; // an older pod of that name; ours is still there
                }
                if tx.receiver_count() == 0 {
                    pods.remove(&name);
                } else {
                    set(tx, Seen::Gone(pod));
                }
            }
            Input::Restarted(list) => {
                let mut listed: HashMap<String, Pod> = list.into_iter().map(|p| (p.metadata.name.clone(), p)).collect();
                // Re-check every tracked pod against the relist: a termination or a deletion
                // that happened while the watch was down shows up here.
                pods.retain(|name, tx| match listed.remove(name) {
                    Some(pod) => {
                        set(tx, Seen::Present(pod));
                        true
                    }
                    None if tx.receiver_count() == 0 => false,
                    None => {
                        let gone = match &*tx.borrow() {
                            Seen::Present(p) => Some(Seen::Gone(p.clone())),
                            // Never seen: the relist may predate the create; keep waiting.
                            Seen::Unknown | Seen::Gone(_) => None,
                        };
                        if let Some(gone) = gone {
                            set(tx, gone);
                        }
                        true
                    }
                });
                for (name, pod) in listed {
                    pods.insert(name, watch::channel(Seen::Present(pod)).0);
                }
            }
        }
    }
}

/// Sends only real changes, so a relist that repeats known states wakes nobody.
fn set(tx: &watch::Sender<Seen>, seen: Seen) {
    tx.send_if_modified(|cur| {
        if *cur == seen {
            false
        } else {
            *cur = seen;
            true
        }
    });
}

fn same_object(cur: &Seen, deleted: &Pod) -> bool {
    match cur.pod() {
        Some(p) if !p.metadata.uid.is_empty() && !deleted.metadata.uid.is_empty() => {
            p.metadata.uid == deleted.metadata.uid
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, uid: &str, phase: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = name.into();
        p.metadata.uid = uid.into();
        p.status = Some(kube::types::PodStatus {
            phase: phase.into(),
            ..Default::default()
        });
        p
    }

    fn phase(seen: &Seen) -> (&'static str, String) {
        let kind = match seen {
            Seen::Unknown => "unknown",
            Seen::Present(_) => "present",
            Seen::Gone(_) => "gone",
        };
        let phase = seen.pod().and_then(|p| p.status.as_ref()).map(|s| s.phase.clone());
        (kind, phase.unwrap_or_default())
    }

    #[tokio::test]
    async fn fans_out_to_the_waiter_of_each_pod() {
        let w = PodWatch::new();
        let mut a = w.register("a");
        let mut b = w.register("b");
        w.apply(Input::Applied(pod("a", "1", "Running")));
        a.changed().await.unwrap();
        assert_eq!(phase(&a.borrow_and_update()), ("present", "Running".into()));
        assert!(!b.has_changed().unwrap(), "b must not wake for a's events");
        w.apply(Input::Applied(pod("b", "2", "Pending")));
        b.changed().await.unwrap();
        assert_eq!(phase(&b.borrow_and_update()), ("present", "Pending".into()));
    }

    #[test]
    fn a_late_registrant_gets_the_latest_state() {
        let w = PodWatch::new();
        w.apply(Input::Applied(pod("a", "1", "Pending")));
        w.apply(Input::Applied(pod("a", "1", "Succeeded")));
        let a = w.register("a");
        assert_eq!(phase(&a.borrow()), ("present", "Succeeded".into()));
    }

    #[test]
    fn deleted_keeps_the_last_state_for_waiters_and_forgets_the_rest() {
        let w = PodWatch::new();
        let a = w.register("a");
        w.apply(Input::Applied(pod("a", "1", "Running")));
        w.apply(Input::Applied(pod("b", "2", "Running")));
        assert_eq!(w.len(), 2);
        w.apply(Input::Deleted(pod("a", "1", "Failed")));
        w.apply(Input::Deleted(pod("b", "2", "Failed")));
        assert_eq!(phase(&a.borrow()), ("gone", "Failed".into()));
        assert_eq!(w.len(), 1, "b had no waiter and is forgotten");
        drop(a);
        drop(w.register("c"));
        assert_eq!(w.len(), 1, "a gone pod nobody waits on goes at the next registration");
        w.apply(Input::Restarted(vec![]));
        assert!(w.is_empty(), "unregistered entries go on the next relist");
    }

    #[test]
    fn a_delete_of_an_older_namesake_is_ignored() {
        let w = PodWatch::new();
        let a = w.register("a");
        w.apply(Input::Applied(pod("a", "new", "Running")));
        w.apply(Input::Deleted(pod("a", "old", "Succeeded")));
        assert_eq!(phase(&a.borrow()), ("present", "Running".into()));
    }

    #[tokio::test]
    async fn a_relist_reveals_what_the_dropped_watch_missed() {
        let w = PodWatch::new();
        let mut done = w.register("done");
        let mut deleted = w.register("deleted");
        let mut unborn = w.register("unborn");
        let mut same = w.register("same");
        w.apply(Input::Applied(pod("done", "1", "Running")));
        w.apply(Input::Applied(pod("deleted", "2", "Running")));
        w.apply(Input::Applied(pod("same", "3", "Running")));
        for rx in [&mut done, &mut deleted, &mut same] {
            rx.borrow_and_update();
        }
        // The watch dropped; meanwhile "done" finished and "deleted" vanished. 410, relist:
        w.apply(Input::Restarted(vec![
            pod("done", "1", "Succeeded"),
            pod("same", "3", "Running"),
            pod("stranger", "4", "Running"),
        ]));
        done.changed().await.unwrap();
        assert_eq!(phase(&done.borrow_and_update()), ("present", "Succeeded".into()));
        deleted.changed().await.unwrap();
        assert_eq!(phase(&deleted.borrow_and_update()), ("gone", "Running".into()));
        assert!(!unborn.has_changed().unwrap(), "never seen: keep waiting");
        assert_eq!(phase(&unborn.borrow_and_update()), ("unknown", String::new()));
        assert!(!same.has_changed().unwrap(), "an unchanged pod wakes nobody");
        assert_eq!(phase(&w.register("stranger").borrow()), ("present", "Running".into()));
    }

    #[tokio::test]
    async fn many_waiters_on_one_pod_all_see_the_end() {
        let w = std::sync::Arc::new(PodWatch::new());
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let mut rx = w.register("p");
            tasks.spawn(async move {
                loop {
                    if matches!(&*rx.borrow_and_update(), Seen::Gone(_)) {
                        return;
                    }
                    rx.changed().await.unwrap();
                }
            });
        }
        w.apply(Input::Applied(pod("p", "1", "Running")));
        w.apply(Input::Deleted(pod("p", "1", "Running")));
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
    }
}
