//! The lifecycle's only door to the cluster: the handful of calls it makes, over `kube`.
//! Everything else in the lifecycle is written against these, so the request budget per step
//! can be read off one file.
//!
//! Knows the client; knows nothing of steps or workflows.

use std::sync::Arc;

use tokio::sync::watch;

use super::podwatch::{Input, PodWatch};
use crate::Shutdown;
use kube::api::Api;
use kube::logs::{FollowOptions, LogFollower};
use kube::params::{DeleteParams, ListParams, WatchParams};
use kube::types::{Event as KubeEvent, Pod, Resource};
use kube::watch::{Event, Watcher};
use kube::{Client, Error};

/// How often a failing shared watch is reported.
const WATCH_ERROR_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct KubeIo {
    client: Client,
}

impl KubeIo {
    pub fn new(client: Client) -> Self {
        KubeIo { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn api<K: Resource>(&self, ns: Option<&str>) -> Api<K> {
        match ns {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    pub async fn create<K: Resource>(&self, ns: &str, obj: &K) -> Result<K, Error> {
        self.api::<K>(Some(ns)).create(obj).await
    }

    pub async fn get_opt<K: Resource>(&self, ns: Option<&str>, name: &str) -> Result<Option<K>, Error> {
        self.api::<K>(ns).get_opt(name).await
    }

    /// Deletes with `grace` seconds (the object's default when `None`), background propagation.
    pub async fn delete<K: Resource>(&self, ns: &str, name: &str, grace: Option<i64>) -> Result<(), Error> {
        let params = DeleteParams {
            grace_period_seconds: grace,
            propagation_policy: Some("Background".into()),
            preconditions: None,
        };
        self.api::<K>(Some(ns)).delete(name, &params).await
    }

    /// Deletes an owner and waits for nothing: the garbage collector removes its dependents.
    pub async fn delete_cascading<K: Resource>(&self, ns: &str, name: &str) -> Result<(), Error> {
        self.delete::<K>(ns, name, None).await
    }

    /// A JSON merge patch of one object.
    pub async fn merge_patch<K: Resource>(&self, ns: &str, name: &str, patch: &serde_json::Value) -> Result<K, Error> {
        self.api::<K>(Some(ns)).merge_patch(name, patch).await
    }

    pub async fn list<K: Resource>(&self, ns: Option<&str>, label_selector: &str) -> Result<Vec<K>, Error> {
        let list = self.api::<K>(ns).list_all(&ListParams::labels(label_selector)).await?;
        Ok(list.items)
    }

    /// The events about one object (`involvedObject.name`), for a pending pod's log.
    pub async fn events_for(&self, ns: &str, name: &str) -> Result<Vec<KubeEvent>, Error> {
        let params = ListParams::fields(format!("involvedObject.name={name}"));
        Ok(self.api::<KubeEvent>(Some(ns)).list(&params).await?.items)
    }

    /// The container's log, line by line, resumed across dropped streams. It ends when `done`
    /// (the shared watch's knowledge that the container ended) is true and the log has been
    /// read to its end, so no GET of the pod is needed.
    pub fn follow_log(&self, ns: &str, pod: &str, container: &str, done: watch::Receiver<bool>) -> LogFollower {
        self.api::<Pod>(Some(ns))
            .follow_log(pod, container, FollowOptions::default())
            .with_done(done)
    }

    /// The shared watch of one namespace: label-selected pods, fed to `sink` until shutdown.
    /// The watcher relists after a 410 and resumes after drops; errors in between are retried
    /// by it, never surfaced to a step.
    pub async fn watch_pods(&self, ns: &str, label_selector: &str, sink: Arc<PodWatch>, mut shutdown: Shutdown) {
        let mut watcher = Watcher::new(self.api::<Pod>(Some(ns)), WatchParams::labels(label_selector));
        let mut last_said: Option<tokio::time::Instant> = None;
        loop {
            let event = tokio::select! {
                ev = watcher.next() => ev,
                _ = shutdown.wait() => return,
            };
            match event {
                Ok(Event::Applied(p)) => sink.apply(Input::Applied(p)),
                Ok(Event::Deleted(p)) => sink.apply(Input::Deleted(p)),
                Ok(Event::Restarted(list)) => sink.apply(Input::Restarted(list)),
                // Being retried by the watcher (with backoff); a step only ever sees states. Said
                // in the process log at most once a minute, so a watch that keeps failing is not
                // silent.
                Err(e) => {
                    if last_said.is_none_or(|t| t.elapsed() >= WATCH_ERROR_EVERY) {
                        last_said = Some(tokio::time::Instant::now());
                        crate::log::log(
                            crate::log::Level::WARN,
                            &[("error", crate::log::LogValue::Str(&crate::error_chain::one_line(&e)))],
                            format_args!("the shared pod watch of namespace {ns} failed (retrying)"),
                        );
                    }
                }
            }
        }
    }

    /// Creates a cluster-scoped object (a Namespace).
    pub async fn create_cluster<K: Resource>(&self, obj: &K) -> Result<K, Error> {
        self.api::<K>(None).create(obj).await
    }
}
