//! The simulated cluster: an in-process Kubernetes apiserver and kubelet, faithful enough that
//! the real kubectl works against it. The harness for our tests and `exec --embedded`.
//! Must not depend on `kube::client` (it is the client's test bed); it uses only the
//! serde-free JSON of objects and builds a `kube::Config` for convenience.
//!
//! Layout:
//! - [`Sim`] / [`SimConfig`] (this file): start, stop, the handle tests use.
//! - `server` (TLS, auth, faults, record) -> `api` (routing, CRUD) -> `admit` (validation and
//!   defaults), `delete` (grace, finalizers, propagation), `watch`, `logs`, `table`,
//!   `discovery`, `openapi`, `storage` (StorageClass, PVC binding).
//! - `store` (objects, resourceVersions, history), `select` (selectors), `status` (errors).
//! - `kubelet` -> `podrun` (one pod's life) -> `runner` (scripted rules or host processes).
//! - `gc` (owner references, foreground deletion, namespace termination).
//! - `faults`, `record`, `certs`, `events`, `time`, `wire`.

mod access;
mod admit;
mod api;
pub mod certs;
mod configmap;
mod container;
mod delete;
mod discovery;
mod events;
pub mod faults;
mod fields;
mod gc;
mod kubelet;
mod logs;
mod nodelost;
mod openapi;
mod page;
mod podrun;
mod podstatus;
mod proto;
pub mod record;
mod resources;
pub mod runner;
mod scheduler;
mod select;
mod server;
mod status;
mod storage;
mod store;
mod table;
pub mod time;
mod watch;
mod wire;
mod write;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinSet;

pub use faults::{FaultReply, Faults, RequestMatch, Times};
pub use kubelet::NODE;
pub use record::RecordedRequest;
pub use runner::{Matcher, PodFault, RunnerKind, ScriptRule};

use kube::config::Config;
use store::{Key, Store};
use tokio_util::sync::CancellationToken;

/// How to start a simulated cluster.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// HTTPS with a fresh CA (default) or plain HTTP.
    pub tls: bool,
    pub runner: RunnerKind,
    /// Namespaces that exist from the start.
    pub namespaces: Vec<String>,
    /// How many changes watches can resume across; older resourceVersions get 410.
    pub history_window: usize,
    /// Where the kubeconfig, certificates and volume folders go; default a fresh temp dir
    /// (removed at shutdown).
    pub dir: Option<PathBuf>,
    /// The kubelet's pace between lifecycle steps.
    pub tick: Duration,
    /// The port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// How often watches with allowWatchBookmarks get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// A pod carrying this label key (any value) stands for a long-running server: a container
    /// with nothing else to do (no script rule; in the host runner, no command) runs until the
    /// pod is deleted. None: every such container exits 0 at once.
    pub run_until_deleted_label: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            tls: true,
            runner: RunnerKind::Scripted,
            namespaces: vec!["default".into(), "woodpecker".into()],
            history_window: 1000,
            dir: None,
            tick: Duration::from_millis(20),
            port: 0,
            bookmark_interval: Duration::from_secs(1),
            run_until_deleted_label: None,
        }
    }
}

/// State shared by the server, the kubelet and the garbage collector.
pub(crate) struct Shared {
    store: Store,
    logs: logs::LogStore,
    faults: Faults,
    recorder: record::Recorder,
    pod_ends: record::PodEnds,
    /// Shared, not copied, into every pod's run: a rule may carry a long log.
    rules: Mutex<Vec<Arc<ScriptRule>>>,
    shutdown: CancellationToken,
    streams: Mutex<JoinSet<()>>,
    dir: PathBuf,
    tick: Duration,
    runner: RunnerKind,
    bookmark_interval: Duration,
    until_deleted_label: Option<String>,
    /// The node stopped reporting (`Sim::lose_node`): its kubelet is silent from then on.
    node_lost: std::sync::atomic::AtomicBool,
    /// Where a repeated event goes (its first copy's count goes up).
    events: events::Recorded,
}

impl Shared {
    fn node_lost(&self) -> bool {
        self.node_lost.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Spawns a stream task (watch, log follow), owned here and aborted at shutdown.
    fn spawn(&self, f: impl Future<Output = ()> + Send + 'static) {
        let mut set = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        while set.try_join_next().is_some() {}
        set.spawn(f);
    }

    fn rules(&self) -> Vec<Arc<ScriptRule>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A running simulated cluster.
pub struct Sim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls: bool,
    token: String,
    pki: Option<certs::Pki>,
    kubeconfig: PathBuf,
    temp_dir: Option<PathBuf>,
    trigger: CancellationToken,
    tasks: JoinSet<()>,
}

impl Sim {
    pub async fn start(cfg: SimConfig) -> io::Result<Sim> {
        let (dir, temp_dir) = match &cfg.dir {
            Some(d) => (d.clone(), None),
            None => {
                let d = std::env::temp_dir().join(format!("woodpecker-sim-{}", store::random_hex(6)));
                (d.clone(), Some(d))
            }
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", dir.display())))?;
        let token = store::random_hex(24);
        let pki = if cfg.tls { Some(certs::Pki::generate()?) } else { None };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", cfg.port)).await?;
        let addr = listener.local_addr()?;
        let trigger = CancellationToken::new();
        let shutdown = trigger.clone();
        let shared = Arc::new(Shared {
            store: Store::new(cfg.history_window),
            logs: logs::LogStore::default(),
            faults: Faults::new(token.clone()),
            recorder: record::Recorder::default(),
            pod_ends: record::PodEnds::default(),
            rules: Mutex::new(Vec::new()),
            shutdown,
            streams: Mutex::new(JoinSet::new()),
            dir: dir.clone(),
            tick: cfg.tick,
            runner: cfg.runner,
            bookmark_interval: cfg.bookmark_interval,
            until_deleted_label: cfg.run_until_deleted_label.clone(),
            node_lost: Default::default(),
            events: Default::default(),
        });
        for ns in &cfg.namespaces {
            let obj = admit::admit_create(
                resources::by_plural("namespaces").expect("namespaces"),
                "",
                json!({"metadata": {"name": ns}}),
                None,
            )
            .map_err(|e| io::Error::other(format!("namespace {ns:?}: {}", e.message)))?;
            shared
                .store
                .create("namespaces", "", obj)
                .map_err(|e| io::Error::other(e.message))?;
        }
        shared
            .store
            .create("storageclasses", "", storage::local_path_class())
            .map_err(|e| io::Error::other(e.message))?;
        shared
            .store
            .create("nodes", "", scheduler::node_object())
            .map_err(|e| io::Error::other(e.message))?;
        if cfg.runner == RunnerKind::Host {
            runner::cgroup::warn_once();
        }
        let acceptor = match &pki {
            Some(p) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(p.server_config()?))),
            None => None,
        };
        let mut tasks = JoinSet::new();
        tasks.spawn(server::serve(shared.clone(), listener, acceptor));
        tasks.spawn(kubelet::run(shared.clone()));
        tasks.spawn(gc::run(shared.clone()));
        let sim = Sim {
            shared,
            addr,
            tls: cfg.tls,
            token,
            pki,
            kubeconfig: dir.join("kubeconfig"),
            temp_dir,
            trigger,
            tasks,
        };
        sim.write_kubeconfig()?;
        Ok(sim)
    }

    fn write_kubeconfig(&self) -> io::Result<()> {
        access::write_kubeconfig(&self.kubeconfig, &self.url(), self.ca_pem(), &self.token)
    }

    /// `https://127.0.0.1:PORT` (or `http://`).
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig for this cluster: CA data + bearer token, context `sim`, namespace `woodpecker`.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Where the sim keeps its files (kubeconfig, volume folders).
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The host folder backing a PVC.
    pub fn claim_dir(&self, ns: &str, claim: &str) -> PathBuf {
        storage::claim_dir(&self.shared, ns, claim)
    }

    /// The same as the kubeconfig, already resolved.
    pub fn kube_config(&self) -> Config {
        access::config(&self.url(), self.ca_pem(), &self.token, &self.kubeconfig)
    }

    /// The CA certificate (PEM), when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.pki.as_ref().map(|p| p.ca_pem.as_str())
    }

    /// A client certificate and key (PEM) the sim accepts, for `user` in `groups`.
    pub fn client_certificate(&self, user: &str, groups: &[&str]) -> io::Result<(String, String)> {
        self.pki
            .as_ref()
            .ok_or_else(|| io::Error::other("client certificates need TLS"))?
            .client_cert(user, groups)
    }

    /// The bearer token the kubeconfig carries.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The cluster's current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.current_rv()
    }

    /// Forgets the change history: a watch resuming from any older resourceVersion gets 410.
    pub fn compact_history(&self) {
        self.shared.store.compact();
    }

    /// Watch and log-follow streams still being served: one ends when its client goes away.
    pub fn open_streams(&self) -> usize {
        let mut set = self.shared.streams.lock().unwrap_or_else(|p| p.into_inner());
        while set.try_join_next().is_some() {}
        set.len()
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.all()
    }

    pub fn clear_requests(&self) {
        self.shared.recorder.clear()
    }

    /// When the kubelet made the pod's phase final (Succeeded or Failed), read from the
    /// monotonic clock just before it wrote that status; `None` before that, and once the pod
    /// is removed. For measuring how soon a client reacts to a pod's end.
    pub fn pod_ended_at(&self, ns: &str, name: &str) -> Option<std::time::Instant> {
        self.shared.pod_ends.get(ns, name)
    }

    /// Adds a behaviour rule for the scripted runner (later rules win).
    pub fn script(&self, rule: ScriptRule) {
        self.shared
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(rule));
    }

    /// Objects in the store, for assertions ("nothing left behind").
    pub fn objects(&self, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        self.shared.store.list(plural, namespace).0
    }

    /// How many objects of a plural (in one namespace, or all) satisfy `f`, without copying
    /// them (for waits over many objects).
    pub fn count(&self, plural: &str, namespace: Option<&str>, f: impl Fn(&Value) -> bool) -> usize {
        self.shared
            .store
            .scan_kind(plural, namespace, |_, o| f(o).then_some(()))
            .len()
    }

    /// One object from the store.
    pub fn object(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.shared.store.get(&Key::new(plural, namespace, name))
    }

    /// The lines a container has logged so far.
    pub fn log_lines(&self, ns: &str, pod: &str, container: &str) -> Vec<String> {
        self.shared
            .logs
            .get(ns, pod, container)
            .map(|l| l.text())
            .unwrap_or_default()
    }

    /// Deletes a pod as if someone else ran `kubectl delete pod` (default grace period).
    pub fn delete_pod_externally(&self, ns: &str, name: &str) {
        if let Some(def) = resources::by_plural("pods") {
            let _ = delete::delete(
                &self.shared,
                def,
                &Key::new("pods", ns, name),
                &delete::Options::default(),
            );
        }
    }

    /// The node stops reporting, as when its machine or network fails: the control plane
    /// marks it `Unknown` and taints it `node.kubernetes.io/unreachable`, marks its pods not
    /// Ready, and deletes those that do not tolerate the taint (`DeletionByTaintManager`; at once,
    /// or after their `tolerationSeconds`). Those stay Terminating: no kubelet confirms their end.
    /// Nothing on the node reports again; new pods stay Pending (untolerated taint).
    pub fn lose_node(&self) {
        nodelost::lose(&self.shared);
    }

    /// The lost node's machine is gone for good: the Node object is deleted and the pod garbage
    /// collector fails and removes the pods bound to it (`DeletionByPodGC`).
    pub fn remove_lost_node(&self) {
        nodelost::remove_node(&self.shared);
    }

    /// Stops serving, kills every pod and removes a temporary directory.
    pub async fn shutdown(mut self) {
        self.trigger.cancel();
        while self.tasks.join_next().await.is_some() {}
        {
            let mut streams = self.shared.streams.lock().unwrap_or_else(|p| p.into_inner());
            streams.abort_all();
        }
        if let Some(d) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.trigger.cancel();
        if let Some(d) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handle_can_move_between_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Sim>();
    }

    #[tokio::test]
    async fn kube_config_matches_the_written_kubeconfig_and_redacts_the_token() {
        let sim = Sim::start(SimConfig::default()).await.unwrap();
        let cfg = sim.kube_config();
        assert_eq!(cfg.server.to_string().trim_end_matches('/'), sim.url());
        assert_eq!(cfg.namespace, "woodpecker");
        assert!(
            cfg.tls
                .ca_pem
                .as_deref()
                .is_some_and(|p| p.starts_with(b"-----BEGIN CERTIFICATE-----"))
        );
        assert!(!format!("{cfg:?}").contains(sim.token()));
        let text = std::fs::read_to_string(sim.kubeconfig_path()).unwrap();
        assert!(text.contains(&format!("server: {}", sim.url())) && text.contains("current-context: sim"));
        let dir = sim.dir().to_path_buf();
        sim.shutdown().await;
        assert!(!dir.exists(), "the temporary directory is removed");
    }
}
