//! What the backend remembers about running workflows and steps: the shared watches, each
//! workflow's context (namespace, anchor, pinned node) and each step's handles (its log, its
//! outcome, whether we deleted it). Plain data behind the backend's mutex; no I/O.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::watch;

use super::podwatch::{PodWatch, Seen};
use super::step::StepOutcome;
use crate::backend::affinity::Colocation;
use crate::backend::options::Options;
use crate::backend::pod::PodContext;
use crate::backend::{LogLines, LogSender, log_channel};

#[derive(Default)]
pub struct Registry {
    /// One shared pod watch per namespace.
    pub watches: HashMap<String, Arc<PodWatch>>,
    /// By task id.
    pub workflows: HashMap<String, RunningWorkflow>,
    /// The outcomes of recently destroyed workflows' steps, by task and step uuid: the runtime
    /// waits for detached steps and services in the background, possibly after DestroyWorkflow.
    ended: VecDeque<(String, HashMap<String, watch::Receiver<StepOutcome>>)>,
}

/// How many destroyed workflows keep their steps' outcomes for late `wait_step` calls.
const ENDED_KEPT: usize = 64;

impl Registry {
    pub fn step_mut(&mut self, task: &str, uuid: &str) -> Option<&mut StepRun> {
        self.workflows.get_mut(task)?.steps.get_mut(uuid)
    }

    /// A step's outcome, while its workflow runs or shortly after it was destroyed.
    pub fn outcome(&self, task: &str, uuid: &str) -> Option<watch::Receiver<StepOutcome>> {
        if let Some(run) = self.workflows.get(task).and_then(|w| w.steps.get(uuid)) {
            return Some(run.outcome.clone());
        }
        let (_, steps) = self.ended.iter().rev().find(|(t, _)| t == task)?;
        steps.get(uuid).cloned()
    }

    /// Removes a workflow, keeping its steps' outcomes for a while.
    pub fn end(&mut self, task: &str) -> Option<RunningWorkflow> {
        let wf = self.workflows.remove(task)?;
        let outcomes = wf.steps.iter().map(|(u, r)| (u.clone(), r.outcome.clone())).collect();
        if self.ended.len() == ENDED_KEPT {
            self.ended.pop_front();
        }
        self.ended.push_back((task.to_string(), outcomes));
        Some(wf)
    }
}

pub struct RunningWorkflow {
    ctx: PodContext,
    /// The workspace PVC, if the workflow has one.
    pub volume: Option<String>,
    /// By step uuid.
    pub steps: HashMap<String, StepRun>,
}

impl RunningWorkflow {
    pub fn new(ctx: PodContext) -> Self {
        RunningWorkflow {
            ctx,
            volume: None,
            steps: HashMap::new(),
        }
    }

    pub fn context(&self) -> PodContext {
        self.ctx.clone()
    }

    /// With a ReadWriteOnce workspace, the node every later pod must use: the node of the first
    /// pod that was placed. The pod affinity on the task label is not enough on its own: the
    /// scheduler ignores finished pods, so once the earlier steps are done it no longer holds.
    pub fn pinned_node(&mut self, opts: &Options) -> Option<String> {
        if opts.storage_rwx {
            return None;
        }
        if let Colocation::Node(n) = &self.ctx.colocation {
            return Some(n.clone());
        }
        let node = self.steps.values().find_map(|s| {
            let seen = s.seen.borrow();
            seen.pod().map(|p| p.spec.node_name.clone()).filter(|n| !n.is_empty())
        })?;
        self.ctx.colocation = Colocation::Node(node.clone());
        Some(node)
    }
}

pub struct StepRun {
    pub namespace: String,
    pub pod: String,
    pub secrets: Vec<String>,
    /// Set before this agent deletes the pod: its end is then not an error.
    pub deleted: Arc<AtomicBool>,
    /// Handed out once, by `tail_step`.
    pub logs: Option<LogLines>,
    pub outcome: watch::Receiver<StepOutcome>,
    /// The pod as the shared watch sees it (for the pinned node).
    pub seen: watch::Receiver<Seen>,
}

impl StepRun {
    /// The run and the ends its task writes to: the log and the outcome.
    pub fn new(
        namespace: &str,
        pod: &str,
        secrets: Vec<String>,
        seen: watch::Receiver<Seen>,
        log_buffer: usize,
    ) -> (StepRun, LogSender, watch::Sender<StepOutcome>) {
        let (log_tx, log_rx) = log_channel(log_buffer);
        let (outcome_tx, outcome_rx) = watch::channel(None);
        let run = StepRun {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            secrets,
            deleted: Arc::default(),
            logs: Some(log_rx),
            outcome: outcome_rx,
            seen,
        };
        (run, log_tx, outcome_tx)
    }
}
