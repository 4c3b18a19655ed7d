//! One pod's life on the simulated node: scheduling (or Unschedulable), init containers in
//! order, then the containers together: config errors, image pulls, Created/Started, the
//! runner, termination; phase, conditions and Events throughout; activeDeadlineSeconds;
//! graceful deletion (Killing, then the object is removed). restartPolicy is treated as Never.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::Shared;
use super::events::{self, Source};
use super::kubelet::NODE;
use super::podstatus::{Container, PodStatus, State};
use super::runner::{Kill, PodFault, killed, scripted};
use super::store::{Key, random_hex};
use super::time;
use super::{delete, scheduler};

/// The pod conditions the kubelet (here, with the scheduler's) writes; others are kept.
const KUBELET_CONDITIONS: &[&str] = &[
    "PodScheduled",
    "PodReadyToStartContainers",
    "Initialized",
    "ContainersReady",
    "Ready",
];

pub(super) struct Ctx {
    pub(super) shared: Arc<Shared>,
    pub(super) key: Key,
    uid: String,
    pub(super) pod: Value,
    status: Mutex<PodStatus>,
    /// Bound to the node: from then on a lost node means silence.
    bound: std::sync::atomic::AtomicBool,
}

impl Ctx {
    /// Writes the status (only onto the same pod, not a same-named successor).
    fn publish(&self) {
        if self.silenced() {
            return;
        }
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner()).to_json();
        let uid = self.uid.clone();
        self.shared.store.update(&self.key, |o| {
            if o["metadata"]["uid"] == uid.as_str() {
                // Conditions other writers own (DisruptionTarget) survive the kubelet's updates.
                let theirs = o["status"]["conditions"].as_array().into_iter().flatten();
                let theirs: Vec<Value> = theirs
                    .filter(|c| !KUBELET_CONDITIONS.contains(&c["type"].as_str().unwrap_or("")))
                    .cloned()
                    .collect();
                if let Some(list) = st["conditions"].as_array_mut() {
                    list.extend(theirs);
                }
                let is_final = |s: &Value| matches!(s["phase"].as_str(), Some("Succeeded" | "Failed"));
                if is_final(&st) && !is_final(&o["status"]) {
                    let ends = &self.shared.pod_ends;
                    ends.ended(&self.key.namespace, &self.key.name, std::time::Instant::now());
                }
                o["status"] = st;
            }
        });
    }

    /// The pod is on a node that stopped reporting: its kubelet's writes go nowhere.
    fn silenced(&self) -> bool {
        self.bound.load(std::sync::atomic::Ordering::SeqCst) && self.shared.node_lost()
    }

    fn with(&self, f: impl FnOnce(&mut PodStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
        self.publish();
    }

    pub(super) fn event(&self, warning: bool, reason: &str, message: &str, container: Option<&str>) {
        if self.silenced() {
            return;
        }
        let pod = self.shared.store.get(&self.key).unwrap_or_else(|| self.pod.clone());
        let fp = container.map(|c| format!("spec.containers{{{c}}}"));
        let source = if reason == "Scheduled" || reason == "FailedScheduling" {
            Source::Scheduler
        } else {
            Source::Kubelet
        };
        events::record(&self.shared, &pod, warning, reason, message, source, fp.as_deref());
    }

    pub(super) fn set_container(&self, init: bool, i: usize, f: impl FnOnce(&mut Container)) {
        self.with(|st| {
            let list = if init { &mut st.init } else { &mut st.containers };
            if let Some(c) = list.get_mut(i) {
                f(c);
            }
            refresh(st);
        });
    }

    pub(super) fn tick(&self) -> Duration {
        self.shared.tick
    }
}

/// Recomputes phase and readiness from the container states.
fn refresh(st: &mut PodStatus) {
    if st.phase == "Succeeded" || st.phase == "Failed" {
        return;
    }
    let started = st.containers.iter().all(|c| !matches!(c.state, State::Waiting { .. }));
    let running = st.containers.iter().any(|c| matches!(c.state, State::Running { .. }));
    let all_running = st.containers.iter().all(|c| matches!(c.state, State::Running { .. }));
    if started && running {
        st.phase = "Running".into();
    }
    let reason = if all_running { None } else { Some("ContainersNotReady") };
    let names: Vec<&str> = st
        .containers
        .iter()
        .filter(|c| !matches!(c.state, State::Running { .. }))
        .map(|c| c.name.as_str())
        .collect();
    let msg = (!all_running).then(|| format!("containers with unready status: [{}]", names.join(" ")));
    st.condition("ContainersReady", all_running, reason, msg.as_deref());
    st.condition("Ready", all_running, reason, msg.as_deref());
}

/// Sleeps, or returns early with the kill.
pub(super) async fn pause(d: Duration, kill: &mut watch::Receiver<Option<Kill>>) -> Option<Kill> {
    tokio::select! {
        _ = tokio::time::sleep(d) => None,
        k = killed(kill) => Some(k),
    }
}

/// Runs the pod until it is finished or deleted.
pub async fn run(shared: Arc<Shared>, key: Key, mut kill: watch::Receiver<Option<Kill>>) {
    let Some(pod) = shared.store.get(&key) else { return };
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let rules = shared.rules();
    let ctx = Arc::new(Ctx {
        status: Mutex::new(PodStatus::new(&pod)),
        shared: shared.clone(),
        key,
        uid,
        pod: pod.clone(),
        bound: Default::default(),
    });
    if pause(ctx.tick(), &mut kill).await.is_some() {
        return;
    }
    // Scheduling.
    let mut reported = false;
    loop {
        let why = if scripted::pod_fault(&rules, &pod) == Some(PodFault::Unschedulable) {
            Some("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.".to_string())
        } else {
            scheduler::blocker(&shared, &pod)
        };
        let Some(why) = why else { break };
        if !reported {
            ctx.with(|st| st.condition("PodScheduled", false, Some("Unschedulable"), Some(&why)));
            ctx.event(true, "FailedScheduling", &why, None);
            reported = true;
        }
        if pause(ctx.tick(), &mut kill).await.is_some() {
            return;
        }
    }
    let ip = format!("10.42.0.{}", u8::from_str_radix(&random_hex(1), 16).unwrap_or(7).max(2));
    let uid = ctx.uid.clone();
    ctx.bound.store(true, std::sync::atomic::Ordering::SeqCst);
    ctx.shared.store.update(&ctx.key, |o| {
        if o["metadata"]["uid"] == uid.as_str() {
            o["spec"]["nodeName"] = json!(NODE);
        }
    });
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    ctx.with(|st| {
        st.condition("PodScheduled", true, None, None);
        st.start_time = Some(time::now());
        st.pod_ip = Some(ip);
        let has_init = !st.init.is_empty();
        st.condition("PodReadyToStartContainers", true, None, None);
        st.condition(
            "Initialized",
            !has_init,
            has_init.then_some("ContainersNotInitialized"),
            None,
        );
        refresh(st);
    });
    ctx.event(
        false,
        "Scheduled",
        &format!("Successfully assigned {ns}/{name} to {NODE}"),
        None,
    );

    // Kills from the kubelet, the deadline, both seen by every container.
    let (itx, irx) = watch::channel(None::<Kill>);
    let mut helpers = JoinSet::new();
    let deadline = pod["spec"]["activeDeadlineSeconds"]
        .as_i64()
        .map(|s| Duration::from_secs(s.max(0) as u64));
    {
        let mut ext = kill.clone();
        let itx = itx.clone();
        helpers.spawn(async move {
            let k = tokio::select! {
                k = killed(&mut ext) => k,
                _ = async { match deadline { Some(d) => tokio::time::sleep(d).await, None => std::future::pending().await } } => Kill::Deadline,
            };
            itx.send_replace(Some(k));
        });
    }

    let inits: Vec<Value> = pod["spec"]["initContainers"].as_array().cloned().unwrap_or_default();
    let mut failed_init = false;
    for (i, c) in inits.iter().enumerate() {
        let exit = super::container::run(
            ctx.clone(),
            true,
            i,
            c.clone(),
            scripted::plan(&rules, shared.until_deleted_label.as_deref(), &pod, c),
            irx.clone(),
        )
        .await;
        if exit.as_ref().is_none_or(|e| e.code != 0) {
            failed_init = true;
            break;
        }
    }
    if !failed_init && !inits.is_empty() {
        ctx.with(|st| {
            st.condition("Initialized", true, None, None);
            for c in &mut st.containers {
                c.state = State::Waiting {
                    reason: "ContainerCreating".into(),
                    message: None,
                };
            }
        });
    }
    if !failed_init && irx.borrow().is_none() {
        let mut set = JoinSet::new();
        for (i, c) in pod["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let plan = scripted::plan(&rules, shared.until_deleted_label.as_deref(), &pod, &c);
            set.spawn(super::container::run(ctx.clone(), false, i, c, plan, irx.clone()));
        }
        while set.join_next().await.is_some() {}
    }
    let why = *irx.borrow();
    let evicted = scripted::pod_fault(&rules, &pod) == Some(PodFault::Evicted);
    ctx.with(|st| {
        let all_ok = !failed_init
            && st
                .containers
                .iter()
                .all(|c| c.terminated().is_some_and(|e| e.code == 0));
        st.phase = if all_ok { "Succeeded" } else { "Failed" }.into();
        match why {
            Some(Kill::Deadline) => {
                st.phase = "Failed".into();
                st.reason = Some("DeadlineExceeded".into());
                st.message = Some("Pod was active on the node longer than the specified deadline".into());
            }
            _ if evicted => {
                st.phase = "Failed".into();
                st.reason = Some("Evicted".into());
                st.message =
                    Some("The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. ".into());
            }
            _ => {}
        }
        st.condition("ContainersReady", false, Some("PodCompleted"), None);
        st.condition("Ready", false, Some("PodCompleted"), None);
        st.condition("PodReadyToStartContainers", false, None, None);
    });
    if why == Some(Kill::Deadline) {
        ctx.event(
            true,
            "DeadlineExceeded",
            "Pod was active on the node longer than the specified deadline",
            None,
        );
    }
    if evicted {
        ctx.event(true, "Evicted", "The node was low on resource: memory.", None);
    }
    // A deleted pod goes once its containers are dead; a finished one waits for its deletion.
    if kill.borrow().is_none() {
        let _ = killed(&mut kill).await;
    }
    helpers.abort_all();
    delete::finalize_if_released(&ctx.shared, &ctx.key);
}
