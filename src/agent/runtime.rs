//! The production [`WorkflowRunner`]: the shared runtime (`pipeline::run_workflow`) on a
//! [`Backend`] (the Kubernetes backend in the shipped agent). The agent keeps the workflow
//! timeout itself (it fires the cancel), so the runtime gets none.

use std::sync::Arc;

use super::workflow::{WorkflowEnd, WorkflowRunner};
use crate::Shutdown;
use crate::backend::{Backend, WorkflowConfig};
use crate::pipeline::trace::Tracer;
use crate::pipeline::{RuntimeOptions, run_workflow};

pub struct PipelineRunner<B> {
    pub backend: Arc<B>,
    pub opts: RuntimeOptions,
}

impl<B: Backend> PipelineRunner<B> {
    pub fn new(backend: Arc<B>) -> Self {
        PipelineRunner {
            backend,
            opts: RuntimeOptions::default(),
        }
    }
}

impl<B: Backend> WorkflowRunner for PipelineRunner<B> {
    async fn run(&self, conf: WorkflowConfig, task: String, tracer: Arc<dyn Tracer>, cancel: Shutdown) -> WorkflowEnd {
        let out = run_workflow(self.backend.clone(), conf, task, self.opts.clone(), tracer, cancel).await;
        WorkflowEnd {
            canceled: out.canceled,
            error: out.error,
            cleanup_error: out.cleanup_error,
        }
    }
}
