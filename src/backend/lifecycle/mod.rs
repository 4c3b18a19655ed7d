//! The step lifecycle on Kubernetes: [`KubeBackend`], the `Backend` that creates step pods,
//! follows them on one shared watch per namespace, streams their logs and cleans up.
//!
//! - [`classify`]: what a pod state means for the step (pure).
//! - [`podwatch`]: the shared per-namespace watch, fanned out to per-pod waiters.
//! - [`follow`]: one step's pod followed on the shared watch, with its timers.
//! - [`pending`]: what the step log says while the pod is not running (pure).
//! - [`step`]: the task that drives one step from created pod to result.
//! - [`cleanup`]: destroy a step, a workflow, and the start-up sweep.
//! - [`kubeio`]: the few cluster calls all of the above make.
//!
//! Requests per step: create the pod (plus its Secrets when it has any), one log stream,
//! delete. Events are listed only for a pod still pending after a moment. The state of every
//! pod comes from the shared watch: no per-step GET, no per-step watch.

pub(crate) mod classify;
pub(crate) mod cleanup;
pub(crate) mod error;
pub(crate) mod follow;
pub(crate) mod kubeio;
pub(crate) mod pending;
pub(crate) mod podwatch;
mod registry;
mod settings;
pub(crate) mod step;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;
use tokio::time::{Duration, Instant};

pub use classify::{Limits, Verdict, classify};
pub use error::LifecycleError;
pub use kubeio::KubeIo;
pub use podwatch::{PodWatch, Seen};
pub use settings::{LifecycleSettings, SettingsError};

use super::names::{self, TASK_LABEL};
use super::options::Options;
use super::pod::PodContext;
use super::{LogLines, State, Step, WorkflowConfig};
use crate::Shutdown;
use kube::types::{Namespace, Pod, Service};
use registry::{Registry, RunningWorkflow, StepRun};

/// How long `destroy_workflow` waits for its steps' followers to see their pods go.
const FOLLOWERS_STOP: Duration = Duration::from_secs(10);

pub struct KubeBackend {
    kube: KubeIo,
    opts: Options,
    settings: LifecycleSettings,
    shutdown: Shutdown,
    registry: Mutex<Registry>,
    /// The shared watches and the step followers. Dropping the backend aborts them.
    tasks: Mutex<JoinSet<()>>,
    /// Wakes the reaper of kept failed pods (`KEEP_FAILED_PODS`), started with the first one.
    reaper: Mutex<Option<Arc<tokio::sync::Notify>>>,
}

impl KubeBackend {
    /// A backend with no watch yet (one starts per namespace on first use).
    pub fn new(kube: KubeIo, opts: Options, settings: LifecycleSettings, shutdown: Shutdown) -> Self {
        KubeBackend {
            kube,
            opts,
            settings,
            shutdown,
            registry: Mutex::default(),
            tasks: Mutex::new(JoinSet::new()),
            reaper: Mutex::new(None),
        }
    }

    /// [`KubeBackend::new`], then [`KubeBackend::sweep`]: returns how many leftovers went.
    pub async fn start(
        kube: KubeIo,
        opts: Options,
        settings: LifecycleSettings,
        shutdown: Shutdown,
    ) -> Result<(Self, usize), LifecycleError> {
        let backend = Self::new(kube, opts, settings, shutdown);
        let swept = backend.sweep().await?;
        Ok((backend, swept))
    }

    /// Deletes every object carrying this agent's label whose workflow is not running here
    /// (at start-up: everything an earlier run of this agent left behind).
    pub async fn sweep(&self) -> Result<usize, LifecycleError> {
        if self.settings.agent.is_empty() {
            return Ok(0);
        }
        let running: HashSet<String> = {
            let reg = self.registry.lock().unwrap();
            reg.workflows.keys().map(|t| names::task_label_value(t)).collect()
        };
        let ns = (!self.opts.namespace_per_org).then_some(self.opts.namespace.as_str());
        let swept = cleanup::sweep(&self.kube, ns, &self.settings.agent, &running).await;
        if self.opts.keep_failed_pods.is_some() {
            self.wake_reaper(); // for the pods an earlier run kept and are not due yet
        }
        swept
    }

    /// Wakes (or starts) the task that deletes kept failed pods once their time is up. It lists
    /// this agent's kept pods at each one's due time (and at least every minute), so a restarted
    /// agent reaps what an earlier run kept.
    fn wake_reaper(&self) {
        let mut slot = self.reaper.lock().unwrap();
        if let Some(n) = slot.as_ref() {
            n.notify_one();
            return;
        }
        let notify = Arc::new(tokio::sync::Notify::new());
        *slot = Some(notify.clone());
        let (kube, agent, mut shutdown) = (self.kube.clone(), self.settings.agent.clone(), self.shutdown.clone());
        let ns = (!self.opts.namespace_per_org).then(|| self.opts.namespace.clone());
        self.tasks.lock().unwrap().spawn(async move {
            loop {
                let next = match cleanup::reap_kept(&kube, ns.as_deref(), &agent).await {
                    Ok((_, next)) => next,
                    Err(e) => {
                        crate::log::warn(format_args!("{e}"));
                        None
                    }
                };
                let wait = next.map_or(60, |t| t.saturating_sub(cleanup::now_unix()).clamp(1, 60));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
                    _ = notify.notified() => {}
                    _ = shutdown.wait() => return,
                }
            }
        });
    }

    /// Collects the tasks that have ended, so the set does not grow with every step.
    fn reap(&self) {
        let mut tasks = self.tasks.lock().unwrap();
        while tasks.try_join_next().is_some() {}
    }

    /// How many shared watches run (one per namespace in use).
    pub fn watches(&self) -> usize {
        self.registry.lock().unwrap().watches.len()
    }

    /// The label selector of the shared watches: this agent's pods, or every task's pods.
    fn selector(&self) -> String {
        super::labels::agent_selector(&self.settings.agent).unwrap_or_else(|| TASK_LABEL.to_string())
    }

    fn watch_for(&self, ns: &str) -> Arc<PodWatch> {
        let mut reg = self.registry.lock().unwrap();
        if let Some(w) = reg.watches.get(ns) {
            return w.clone();
        }
        let w = Arc::new(PodWatch::new());
        reg.watches.insert(ns.to_string(), w.clone());
        let (kube, ns, selector, sink, sd) = (
            self.kube.clone(),
            ns.to_string(),
            self.selector(),
            w.clone(),
            self.shutdown.clone(),
        );
        self.tasks
            .lock()
            .unwrap()
            .spawn(async move { kube.watch_pods(&ns, &selector, sink, sd).await });
        w
    }

    fn context(&self, task: &str, org_id: i64) -> PodContext {
        let reg = self.registry.lock().unwrap();
        match reg.workflows.get(task) {
            Some(w) => w.context(),
            None => {
                let mut ctx = PodContext::new(&self.opts, task, org_id, &self.settings.agent);
                ctx.workflow_timeout_secs = self.settings.workflow_timeout_secs;
                ctx
            }
        }
    }

    /// Namespace-per-organisation: the namespace must exist (GET, then create if missing).
    async fn ensure_namespace(&self, org_id: i64) -> Result<(), LifecycleError> {
        let Some(obj) = super::namespace::org_namespace(&self.opts, org_id, &self.settings.agent) else {
            return Ok(());
        };
        let ns = obj.metadata.name.clone();
        let found = self.kube.get_opt::<Namespace>(None, &ns).await;
        if found
            .map_err(|e| LifecycleError::kube(format!("get namespace {ns}"), e))?
            .is_some()
        {
            return Ok(());
        }
        match self.kube.create_cluster(&obj).await {
            Err(e) if !e.is_already_exists() => Err(LifecycleError::kube(format!("create namespace {ns}"), e)),
            _ => Ok(()),
        }
    }

    /// Creates the workspace holder pod (`WORKSPACE_EMPTYDIR`) and waits, up to the start
    /// timeout, until it runs: its node and uid say where the steps find the workspace.
    async fn start_holder(&self, ns: &str, holder: &Pod) -> Result<(String, String), LifecycleError> {
        let name = holder.metadata.name.clone();
        let mut seen = self.watch_for(ns).register(&name);
        let created = match self.kube.create(ns, holder).await {
            Ok(p) => p,
            // A retried setup: the one already there.
            Err(e) if e.is_already_exists() => Pod::default(),
            Err(e) => return Err(LifecycleError::kube(format!("create pod {name}"), e)),
        };
        let running = |s: &Seen| {
            s.pod().is_some_and(|p| {
                (created.metadata.uid.is_empty() || p.metadata.uid == created.metadata.uid)
                    && !p.spec.node_name.is_empty()
                    && p.status.as_ref().is_some_and(|st| st.phase == "Running")
            })
        };
        let limit = self.settings.limits.start_timeout;
        let ok = tokio::time::timeout(limit, seen.wait_for(running))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|s| s.pod().cloned());
        let pod = match ok {
            Some(p) => p,
            None => {
                let why = seen.borrow().pod().and_then(|p| {
                    let obs = classify::Observation {
                        pod: p,
                        gone: false,
                        deleted_by_us: false,
                        pending_for: limit,
                    };
                    match classify(obs, &self.settings.limits) {
                        Verdict::FailedToStart(w) | Verdict::Waiting(Some(w)) => Some(w.to_string()),
                        _ => None,
                    }
                });
                return Err(LifecycleError::Holder {
                    pod: name,
                    why: why.unwrap_or_else(|| format!("not running after {}s", limit.as_secs())),
                });
            }
        };
        Ok((pod.spec.node_name.clone(), pod.metadata.uid.clone()))
    }

    /// A step the agent will not run (`POD_SECURITY_ENFORCE`): nothing is created; its log says
    /// why and it fails, as if its pod had been refused, but before the cluster is asked.
    fn refuse(&self, step: &Step, task: &str, ctx: &PodContext, pod: &str, warnings: Vec<String>, refused: &[String]) {
        let (_, unseen) = tokio::sync::watch::channel(Seen::Unknown);
        let (run, log, outcome) = StepRun::new(&ctx.namespace, pod, Vec::new(), unseen, self.settings.log_buffer);
        let line = format!("[kubernetes] {}", super::render::refusal_line(&self.opts, refused));
        let state = State {
            exit_code: 1,
            exited: false,
            error: Some(line.trim_start_matches("[kubernetes] ").to_string()),
            ..State::default()
        };
        self.registry
            .lock()
            .unwrap()
            .workflows
            .entry(task.to_string())
            .or_insert_with(|| RunningWorkflow::new(ctx.clone()))
            .steps
            .insert(step.uuid.clone(), run);
        self.tasks.lock().unwrap().spawn(async move {
            for w in warnings.into_iter().chain([line]) {
                let _ = log.send(bytes::Bytes::from(w)).await;
            }
            drop(log);
            outcome.send_replace(Some(Some(state)));
        });
    }

    async fn create<K: kube::types::Resource>(&self, ns: &str, obj: &K) -> Result<K, LifecycleError> {
        let action = || format!("create {} {}", K::KIND.to_lowercase(), obj.meta().name);
        self.kube
            .create(ns, obj)
            .await
            .map_err(|e| LifecycleError::kube(action(), e))
    }
}

fn first_step(conf: &WorkflowConfig) -> Option<&Step> {
    conf.stages.iter().flat_map(|s| &s.steps).next()
}

fn build(what: String) -> impl FnOnce(super::pod::BuildError) -> LifecycleError {
    move |e| LifecycleError::Build {
        what,
        source: Box::new(e),
    }
}

impl super::Backend for KubeBackend {
    async fn setup_workflow(&self, conf: &WorkflowConfig, task: &str) -> Result<(), super::BackendError> {
        let first = first_step(conf).ok_or_else(|| LifecycleError::NoSteps { task: task.to_string() })?;
        let mut ctx = self.context(task, first.org_id);
        let ns = ctx.namespace.clone();
        self.ensure_namespace(first.org_id).await?;
        self.watch_for(&ns);
        // The anchor first: every other object of the workflow names it as its owner.
        let svc = super::service::headless_service(&ctx).map_err(build(format!("the service of workflow {task}")))?;
        let svc = match self.kube.create(&ns, &svc).await {
            Ok(s) => s,
            // A retried setup: adopt it (found by its task label: the agent may list, not get).
            Err(e) if e.is_already_exists() => {
                let found = self
                    .kube
                    .list::<Service>(Some(&ns), &super::labels::task_selector(task))
                    .await;
                let name = svc.metadata.name.clone();
                found
                    .ok()
                    .into_iter()
                    .flatten()
                    .find(|s| s.metadata.name == name)
                    .unwrap_or(svc)
            }
            Err(e) => return Err(LifecycleError::kube(format!("create service {}", svc.metadata.name), e).into()),
        };
        ctx.anchor = (!svc.metadata.uid.is_empty()).then(|| super::service::owner_ref(&svc));
        if let Some(holder) = super::volume::workspace_holder(conf, &self.opts, &ctx)
            .map_err(build(format!("the workspace holder of workflow {task}")))?
        {
            let (node, uid) = self.start_holder(&ns, &holder).await?;
            ctx.workspace_dir = super::volume::holder_dir(&self.opts, &uid);
            ctx.colocation = super::affinity::Colocation::Node(node);
        }
        let mut wf = RunningWorkflow::new(ctx.clone());
        if let Some(pvc) = super::volume::workflow_pvc(conf, &self.opts, &ctx)
            .map_err(build(format!("the volume of workflow {task}")))?
        {
            wf.volume = Some(pvc.metadata.name.clone());
            self.registry.lock().unwrap().workflows.insert(task.to_string(), wf);
            match self.kube.create(&ns, &pvc).await {
                Err(e) if !e.is_already_exists() => {
                    return Err(
                        LifecycleError::kube(format!("create persistentvolumeclaim {}", pvc.metadata.name), e).into(),
                    );
                }
                _ => {}
            }
        } else {
            self.registry.lock().unwrap().workflows.insert(task.to_string(), wf);
        }
        Ok(())
    }

    async fn start_step(&self, step: &Step, task: &str) -> Result<(), super::BackendError> {
        self.reap();
        let mut ctx = self.context(task, step.org_id);
        if let Some(node) = self
            .registry
            .lock()
            .unwrap()
            .workflows
            .get_mut(task)
            .and_then(|w| w.pinned_node(&self.opts))
        {
            ctx.colocation = super::affinity::Colocation::Node(node);
        }
        let objs = super::render::step_objects(step, &self.opts, &ctx)
            .map_err(build(format!("the objects of step {}", step.name)))?;
        if !objs.refused.is_empty() {
            self.refuse(step, task, &ctx, &objs.pod.metadata.name, objs.warnings, &objs.refused);
            return Ok(());
        }
        let (pod, warnings) = (objs.pod, objs.warnings);
        let secrets: Vec<_> = objs.registry_secret.into_iter().chain(objs.step_secret).collect();
        let ns = ctx.namespace.clone();
        let name = pod.metadata.name.clone();
        let container = pod
            .spec
            .containers
            .first()
            .map(|c| c.name.clone())
            .unwrap_or_else(|| name.clone());
        let watch = self.watch_for(&ns);
        // Registered before the create, so the pod's whole life is seen.
        let seen = watch.register(&name);
        let (run, log_tx, outcome_tx) = StepRun::new(
            &ns,
            &name,
            secrets.iter().map(|s| s.metadata.name.clone()).collect(),
            seen.clone(),
            self.settings.log_buffer,
        );
        let deleted = run.deleted.clone();
        let volume = {
            let mut reg = self.registry.lock().unwrap();
            let wf = reg
                .workflows
                .entry(task.to_string())
                .or_insert_with(|| RunningWorkflow::new(ctx.clone()));
            wf.steps.insert(step.uuid.clone(), run);
            wf.volume.clone()
        };
        for secret in &secrets {
            match self.kube.create(&ns, secret).await {
                Err(e) if !e.is_already_exists() => {
                    return Err(LifecycleError::kube(format!("create secret {}", secret.metadata.name), e).into());
                }
                _ => {}
            }
        }
        self.create(&ns, &pod).await?;
        let task = step::StepTask {
            kube: self.kube.clone(),
            namespace: ns,
            pod: name.clone(),
            container,
            events_of: std::iter::once(name).chain(volume).collect(),
            warnings,
            follower: follow::Follower::new(seen, self.settings.limits, Instant::now(), deleted),
            pod_object: pod,
            retries: (self.opts.infra_retries, self.opts.infra_retries),
            log: log_tx,
            log_idle: self.settings.log_idle,
            outcome: outcome_tx,
            shutdown: self.shutdown.clone(),
        };
        self.tasks.lock().unwrap().spawn(task.run());
        Ok(())
    }

    async fn tail_step(&self, step: &Step, task: &str) -> Result<LogLines, super::BackendError> {
        let mut reg = self.registry.lock().unwrap();
        let run = reg.step_mut(task, &step.uuid).ok_or_else(|| unknown(step, task))?;
        Ok(run.logs.take().ok_or_else(|| LifecycleError::LogTaken {
            step: step.name.clone(),
        })?)
    }

    async fn wait_step(&self, step: &Step, task: &str) -> Result<State, super::BackendError> {
        let outcome = self.registry.lock().unwrap().outcome(task, &step.uuid);
        let mut outcome = outcome.ok_or_else(|| unknown(step, task))?;
        let shutdown = || LifecycleError::Shutdown {
            step: step.name.clone(),
        };
        let done = outcome.wait_for(|o| o.is_some()).await.map_err(|_| shutdown())?;
        match &*done {
            Some(Some(state)) => Ok(state.clone()),
            _ => Err(shutdown().into()),
        }
    }

    async fn destroy_step(&self, step: &Step, task: &str) -> Result<(), super::BackendError> {
        let grace = Some(self.opts.stop_timeout);
        let run = self.registry.lock().unwrap().workflows.get_mut(task).and_then(|w| {
            w.pinned_node(&self.opts); // remember where the workflow runs before its pods go
            w.steps.remove(&step.uuid)
        });
        let mut out = cleanup::Failures::default();
        let mut keep = None;
        let (ns, pod, secrets) = match run {
            Some(run) => {
                let failed = matches!(&*run.outcome.borrow(), Some(Some(s)) if s.exit_code != 0 || s.error.is_some());
                keep = self.opts.keep_failed_pods.filter(|_| failed);
                run.deleted.store(true, Ordering::SeqCst);
                (run.namespace, run.pod, run.secrets)
            }
            // Never started here (or destroyed twice): delete by name anyway, NotFound is fine.
            None => {
                let ctx = self.context(task, step.org_id);
                let pod = names::pod_name(step).map_err(|e| LifecycleError::Build {
                    what: format!("the pod name of step {}", step.name),
                    source: Box::new(e),
                })?;
                (ctx.namespace, pod, Vec::new())
            }
        };
        for s in &secrets {
            cleanup::delete::<kube::types::Secret>(&self.kube, &ns, s, None, &mut out).await;
        }
        // A failed step's pod stays for debugging (KEEP_FAILED_PODS), unless it cannot be kept.
        let kept = match keep {
            Some(ttl) => match cleanup::keep_pod(&self.kube, &ns, &pod, ttl).await {
                Ok(_) => {
                    self.wake_reaper();
                    true
                }
                Err(e) if e.is_not_found() => true,
                Err(e) => {
                    crate::log::warn(format_args!("could not keep the pod of failed step {}: {e}", step.name));
                    false
                }
            },
            None => false,
        };
        if !kept {
            cleanup::delete::<Pod>(&self.kube, &ns, &pod, grace, &mut out).await;
        }
        Ok(out.into_result(format!("destroy step {}", step.name))?)
    }

    async fn destroy_workflow(&self, conf: &WorkflowConfig, task: &str) -> Result<(), super::BackendError> {
        let wf = self.registry.lock().unwrap().end(task);
        let org = first_step(conf).map_or(0, |s| s.org_id);
        let ns = wf
            .as_ref()
            .map_or_else(|| self.opts.namespace_for(org), |w| w.context().namespace);
        let mut outcomes = Vec::new();
        if let Some(wf) = &wf {
            for run in wf.steps.values() {
                // Detached steps and services end here, with exit 0 (Woodpecker's contract).
                run.deleted.store(true, Ordering::SeqCst);
                outcomes.push(run.outcome.clone());
            }
        }
        let anchor = names::headless_service_name(task).ok();
        let volume = wf.as_ref().and_then(|w| w.volume.clone()).or_else(|| {
            names::volume_claim_name(&conf.volume)
                .ok()
                .filter(|_| !conf.volume.is_empty())
        });
        let objects = cleanup::WorkflowObjects {
            namespace: &ns,
            task,
            anchor: anchor.as_deref(),
            volume: volume.as_deref(),
            grace: Some(self.opts.stop_timeout),
        };
        let result = cleanup::destroy_workflow(&self.kube, objects).await;
        // Let the followers see their pods go, so no task outlives its workflow for long.
        let deadline = Instant::now() + FOLLOWERS_STOP;
        for mut o in outcomes {
            let _ = tokio::time::timeout_at(deadline, o.wait_for(|o| o.is_some())).await;
        }
        Ok(result?)
    }
}

fn unknown(step: &Step, task: &str) -> LifecycleError {
    LifecycleError::UnknownStep {
        step: step.name.clone(),
        task: task.to_string(),
    }
}
