//! One step through the backend: skip check, start, tail, drain the logs, wait, destroy, and
//! the final state (spec §4.2 step 3, §4.3, §4.4). Detached steps and services hand their
//! wait/destroy to the workflow as a background future once started.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Ctx, StepEnd, Stop, add_runtime_env, call, cleanup, logs::LineWriter, unix_now};
use crate::backend::{Backend, LogLines, State, Step};
use crate::pipeline::trace::StepState;

/// What Woodpecker writes as the error of a step stopped by a cancel.
pub const CANCELED: &str = "Canceled";

/// Runs a step of a stage. `failed` is the workflow's error state when the stage started.
pub(crate) async fn run<B: Backend>(
    ctx: Arc<Ctx<B>>,
    mut step: Step,
    failed: bool,
    semaphore: Arc<Semaphore>,
) -> StepEnd {
    let uuid = step.uuid.clone();
    if (failed && !step.on_failure) || (!failed && !step.on_success) {
        ctx.report(
            &step,
            StepState {
                step_uuid: uuid,
                skipped: true,
                ..Default::default()
            },
        );
        return StepEnd::Ok;
    }
    let mut cancel = ctx.cancel.clone();
    let permit = tokio::select! {
        p = semaphore.acquire_owned() => p.ok(),
        _ = cancel.wait() => None,
    };
    let Some(permit) = permit else {
        ctx.report(&step, canceled_state(&uuid, 0, false));
        return StepEnd::Canceled;
    };
    // "Started": everything zero but the uuid, so the server stamps its own time.
    ctx.report(
        &step,
        StepState {
            step_uuid: uuid.clone(),
            ..Default::default()
        },
    );
    let now = unix_now();
    let step_type = step.type_.clone();
    add_runtime_env(
        &mut step.environment,
        &step.name.clone(),
        &step_type,
        failed,
        ctx.workflow_started,
        now,
    );

    let started = call(ctx.backend.start_step(&step, &ctx.task), &mut cancel, &ctx.stop).await;
    let started_at = unix_now();
    let logs = match started {
        Ok(()) => call(ctx.backend.tail_step(&step, &ctx.task), &mut cancel, &ctx.stop).await,
        Err(e) => Err(e),
    };
    let logs = match logs {
        Ok(logs) => logs,
        // A start or tail failure counts against the workflow even with `failure: ignore`;
        // the pod, if any, goes with DestroyWorkflow (Woodpecker calls neither wait nor destroy).
        Err(Stop::Canceled) => {
            ctx.report(&step, canceled_state(&uuid, started_at, false));
            return StepEnd::Canceled;
        }
        Err(Stop::Failed(_)) if ctx.cancel.is_fired() => {
            ctx.report(&step, canceled_state(&uuid, started_at, false));
            return StepEnd::Canceled;
        }
        Err(Stop::Failed(e)) => {
            ctx.report(
                &step,
                StepState {
                    step_uuid: uuid,
                    started: started_at,
                    finished: unix_now(),
                    exited: true,
                    error: e.clone(),
                    ..Default::default()
                },
            );
            return StepEnd::Failed { error: Some(e) };
        }
    };
    if step.detached {
        drop(permit);
        // Only a start failure of a detached step counts against the workflow.
        return StepEnd::Detached(Box::pin(async move {
            finish(ctx, step, logs, started_at, None).await;
        }));
    }
    finish(ctx, step, logs, started_at, Some(permit)).await
}

/// Drains the logs, waits, destroys and reports the final state.
async fn finish<B: Backend>(
    ctx: Arc<Ctx<B>>,
    step: Step,
    mut logs: LogLines,
    started_at: i64,
    _permit: Option<OwnedSemaphorePermit>,
) -> StepEnd {
    let uuid = step.uuid.clone();
    let mut cancel = ctx.cancel.clone();
    let mut writer = LineWriter::new(ctx.masker.clone());
    let (drained, waited): (bool, Result<State, Stop>) = if step.detached {
        // A detached step or service ends when DestroyWorkflow deletes it, and a backend may
        // forget the workflow's steps right then: wait from the start, beside the logs.
        let mut drained = false;
        let both = async {
            let wait = ctx.backend.wait_step(&step, &ctx.task);
            let ((), waited) = tokio::join!(drain(&ctx, &step, &mut logs, &mut writer), wait);
            drained = true;
            waited
        };
        let waited = call(both, &mut cancel, &ctx.stop).await;
        (drained, waited)
    } else {
        // Logs are drained completely before WaitStep, so the stream must end with the container.
        let drained = tokio::select! {
            _ = drain(&ctx, &step, &mut logs, &mut writer) => true,
            _ = cancel.wait() => false,
        };
        let waited = if drained {
            call(ctx.backend.wait_step(&step, &ctx.task), &mut cancel, &ctx.stop).await
        } else {
            Err(Stop::Canceled)
        };
        (drained, waited)
    };
    drop(logs);
    let waited = match waited {
        Ok(state) => Some(Ok(state)),
        Err(Stop::Canceled) => None,
        Err(Stop::Failed(_)) if ctx.cancel.is_fired() => None,
        Err(Stop::Failed(e)) => Some(Err(e)),
    };
    let limit = ctx.cancel.is_fired().then_some(ctx.opts.cleanup_timeout);
    let destroyed = cleanup(ctx.backend.destroy_step(&step, &ctx.task), limit)
        .await
        .map_err(|e| format!("destroy step: {e}"));

    let Some(waited) = waited else {
        ctx.report(&step, canceled_state(&uuid, started_at, drained));
        return StepEnd::Canceled;
    };
    let ignore = step.failure == "ignore";
    let mut state = StepState {
        step_uuid: uuid,
        started: started_at,
        ..Default::default()
    };
    let end = match (waited, destroyed) {
        (Ok(s), destroyed) => {
            state.exited = s.exited || s.error.is_none();
            state.exit_code = s.exit_code;
            if let Some(e) = &s.error {
                state.error = e.clone();
            } else if s.oom_killed {
                state.error = "OOM killed".into();
            }
            if let Err(e) = &destroyed
                && state.error.is_empty()
            {
                state.error = e.clone();
            }
            let step_failed = s.exit_code != 0 || s.oom_killed || s.error.is_some();
            if ctx.opts.exit_code_entry {
                ctx.tracer.log_line(&step, writer.exit_code(s.exit_code));
            }
            match (ignore, step_failed, destroyed) {
                (true, _, _) => StepEnd::Ok,
                (false, _, Err(e)) => StepEnd::Failed { error: Some(e) },
                (false, true, Ok(())) => StepEnd::Failed { error: s.error.clone() },
                (false, false, Ok(())) => StepEnd::Ok,
            }
        }
        (Err(e), _) => {
            state.exited = true;
            state.error = e.clone();
            if ignore {
                StepEnd::Ok
            } else {
                StepEnd::Failed { error: Some(e) }
            }
        }
    };
    state.finished = unix_now();
    ctx.report(&step, state);
    end
}

async fn drain<B>(ctx: &Ctx<B>, step: &Step, logs: &mut LogLines, writer: &mut LineWriter) {
    while let Some(batch) = logs.recv_many().await {
        // Room first, then the batch: a step that adds its batch and only then waits lets every
        // step that was waiting add one more when room comes, so the tracer's buffer would
        // grow by a batch per running step.
        if let Some(room) = ctx.tracer.backlog() {
            room.await;
        }
        match writer.line_batch(batch) {
            Ok(lines) => ctx.tracer.log_batch(step, lines),
            Err(batch) => {
                let mut lines = Vec::new();
                writer.batch_into(batch, &mut lines);
                ctx.tracer.log_lines(step, lines);
            }
        }
    }
}

fn canceled_state(uuid: &str, started: i64, exited: bool) -> StepState {
    StepState {
        step_uuid: uuid.to_owned(),
        started,
        finished: unix_now(),
        exited,
        error: CANCELED.into(),
        canceled: true,
        ..Default::default()
    }
}
