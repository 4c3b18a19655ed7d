//! Which planned workflow runs when: each once the workflows it depends on have ended, if they
//! ended in a way its `runs_on` accepts (Woodpecker's queue), independent ones at the same time,
//! at most `--max-workflows` at once. A workflow whose dependencies did not end as it needs is
//! skipped, with the reason; after a cancel, those not started are killed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::{ExecArgs, Fate, FlowStatus, Planned, Printer, label};
use crate::backend::Backend;
use crate::pipeline::compile::Compiled;
use crate::pipeline::{RuntimeOptions, Tracer, run_workflow, ulid};
use crate::shutdown::Shutdown;

/// A workflow waiting to run, running, or ended (`status`).
struct Queued {
    name: String,
    /// Its row in the printer.
    flow: usize,
    /// Taken when it starts.
    compiled: Option<Compiled>,
    depends_on: Vec<String>,
    on_success: bool,
    on_failure: bool,
    status: Option<FlowStatus>,
}

/// What becomes of a waiting workflow now.
#[derive(Debug, PartialEq)]
enum Decision {
    /// A dependency has not ended yet.
    Wait,
    /// The run was canceled before it started.
    Cancel,
    /// Its dependencies ended in a way it does not run after.
    Skip(String),
    Start,
}

/// Runs the planned workflows on `backend`; true when every workflow that ran succeeded.
pub async fn execute<B: Backend>(
    backend: Arc<B>,
    plan: Vec<Planned>,
    args: &ExecArgs,
    printer: Arc<Printer>,
    cancel: Shutdown,
) -> bool {
    let ticker = tokio::spawn(status_ticker(printer.clone()));
    let mut queue = enqueue(plan, &printer);
    let bound = match args.max_workflows {
        0 => usize::MAX,
        n => n,
    };
    let mut running = JoinSet::new();
    let mut flow_of_task = HashMap::new();
    loop {
        // One pass over the waiting workflows. One that ends without running (killed, skipped)
        // may decide others, so then the pass is made again; a start decides nothing else.
        let mut ended = false;
        for i in 0..queue.len() {
            let q = &queue[i];
            if q.status.is_some() || q.compiled.is_none() {
                continue;
            }
            match decide(&queue, q, cancel.is_fired()) {
                Decision::Wait => {}
                Decision::Cancel => {
                    ended = true;
                    end(
                        &mut queue[i],
                        &printer,
                        FlowStatus::Killed,
                        "canceled before it started",
                    );
                }
                Decision::Skip(why) => {
                    ended = true;
                    let q = &mut queue[i];
                    q.status = Some(FlowStatus::Skipped);
                    q.compiled = None;
                    printer.skip_workflow(q.flow, &why);
                }
                Decision::Start if running.len() < bound => {
                    let q = &mut queue[i];
                    let Some(compiled) = q.compiled.take() else { continue };
                    let run = run_one(backend.clone(), compiled, q.flow, printer.clone(), args, cancel.clone());
                    flow_of_task.insert(running.spawn(run).id(), q.flow);
                }
                Decision::Start => {}
            }
        }
        if ended {
            continue;
        }
        // Nothing more to decide until a running workflow ends; none running: done.
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        let (flow, status) = match joined {
            Ok((id, status)) => (flow_of_task[&id], status),
            Err(e) => {
                let flow = flow_of_task[&e.id()];
                let q = queue.iter_mut().find(|q| q.flow == flow).expect("a queued flow");
                end(
                    q,
                    &printer,
                    FlowStatus::Failure,
                    &format!("its task ended abnormally: {e}"),
                );
                continue;
            }
        };
        if let Some(q) = queue.iter_mut().find(|q| q.flow == flow) {
            q.status = Some(status);
        }
    }
    ticker.abort();
    let _ = ticker.await;
    printer.finish();
    let ran: Vec<FlowStatus> = queue
        .iter()
        .filter_map(|q| q.status)
        .filter(|s| *s != FlowStatus::Skipped)
        .collect();
    !ran.is_empty() && ran.iter().all(|s| *s == FlowStatus::Success)
}

/// Redraws the live status line every second.
async fn status_ticker(printer: Arc<Printer>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        printer.tick();
    }
}

/// The workflows that will run, each with its row; those left out are said and dropped.
fn enqueue(plan: Vec<Planned>, printer: &Printer) -> Vec<Queued> {
    let mut queue = Vec::new();
    for mut p in plan {
        let compiled = p.compiled.take().or_else(|| p.compile());
        match p.fate {
            Fate::Left(why) => printer.say(&format!("# {}: {why}", label(&p.workflow))),
            Fate::Run {
                depends_on,
                on_success,
                on_failure,
                ..
            } => {
                let Some(compiled) = compiled else { continue };
                let flow = printer.add_workflow(
                    &label(&p.workflow),
                    &p.workflow.name,
                    &p.workflow.axis,
                    &compiled.config,
                );
                queue.push(Queued {
                    name: p.workflow.name,
                    flow,
                    compiled: Some(compiled),
                    depends_on,
                    on_success,
                    on_failure,
                    status: None,
                });
            }
        }
    }
    queue
}

/// Whether `q` starts, waits, is skipped or killed, from how its dependencies ended.
fn decide(queue: &[Queued], q: &Queued, canceled: bool) -> Decision {
    let deps: Option<Vec<(&str, FlowStatus)>> = q
        .depends_on
        .iter()
        .flat_map(|d| queue.iter().filter(move |it| &it.name == d))
        .map(|it| it.status.map(|s| (it.name.as_str(), s)))
        .collect();
    let Some(deps) = deps else { return Decision::Wait };
    if canceled {
        return Decision::Cancel;
    }
    let statuses: Vec<FlowStatus> = deps.iter().map(|(_, s)| *s).collect();
    if should_run(q.on_success, q.on_failure, &statuses) {
        return Decision::Start;
    }
    Decision::Skip(match deps.iter().find(|(_, s)| *s != FlowStatus::Success) {
        Some((name, s)) => format!("it depends on `{name}`, which ended {}", s.word()),
        None => "its dependencies succeeded and it runs on failure only".to_string(),
    })
}

/// Whether a workflow runs after its dependencies ended with `statuses`, by Woodpecker's
/// `Task.ShouldRun`: on success only (the default), every dependency must have succeeded; on
/// failure only, none may have; with both, it always runs.
fn should_run(on_success: bool, on_failure: bool, statuses: &[FlowStatus]) -> bool {
    match (on_success, on_failure) {
        (true, true) => true,
        (true, false) => statuses.iter().all(|s| *s == FlowStatus::Success),
        (false, true) => statuses.iter().all(|s| *s != FlowStatus::Success),
        (false, false) => false,
    }
}

/// Ends a workflow that did not (or no longer) run, with the reason.
fn end(q: &mut Queued, printer: &Printer, status: FlowStatus, why: &str) {
    q.status = Some(status);
    q.compiled = None;
    printer.end_workflow(q.flow, status, Some(why.into()));
}

/// Runs one workflow through the runtime and prints how it ended.
fn run_one<B: Backend>(
    backend: Arc<B>,
    compiled: Compiled,
    flow: usize,
    printer: Arc<Printer>,
    args: &ExecArgs,
    cancel: Shutdown,
) -> impl std::future::Future<Output = FlowStatus> + Send + 'static {
    let (timeout, parallelism) = (args.timeout, args.parallelism);
    async move {
        printer.begin_workflow(flow, &compiled.notes);
        let opts = RuntimeOptions {
            parallelism,
            workflow_timeout: Some(timeout),
            ..Default::default()
        };
        let task = ulid::new().to_lowercase();
        let tracer: Arc<dyn Tracer> = printer.clone();
        let outcome = run_workflow(backend, compiled.config, task, opts, tracer, cancel).await;
        let (status, why) = match (&outcome.error, outcome.timed_out, outcome.canceled) {
            _ if outcome.success => (FlowStatus::Success, None),
            (Some(e), _, _) => (FlowStatus::Failure, Some(format!("error: {e}"))),
            (None, true, _) => (
                FlowStatus::Killed,
                Some(format!("timed out after {}s", timeout.as_secs())),
            ),
            (None, false, true) => (FlowStatus::Killed, Some("canceled".into())),
            (None, false, false) => (FlowStatus::Failure, Some("failed".into())),
        };
        // After a cancel or a timeout the runtime gives cleanup a deadline; say when it did not
        // finish, so nobody takes the cluster for clean.
        let why = match (&outcome.cleanup_error, outcome.canceled) {
            (Some(e), true) => Some(format!(
                "{}; cleanup did not finish ({e}): objects of this run may be left in the cluster, \
                 until a later run's reaper removes them once this run's Lease has expired",
                why.unwrap_or_default()
            )),
            _ => why,
        };
        printer.end_workflow(flow, status, why);
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(name: &str, deps: &[&str], on_success: bool, on_failure: bool, status: Option<FlowStatus>) -> Queued {
        Queued {
            name: name.into(),
            flow: 0,
            compiled: None,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            on_success,
            on_failure,
            status,
        }
    }

    #[test]
    fn a_workflow_waits_for_every_dependency_then_runs_as_its_runs_on_says() {
        use FlowStatus::*;
        let q = |a, b| vec![queued("a", &[], true, false, a), queued("b", &[], true, false, b)];
        let after = |on_success, on_failure| queued("c", &["a", "b"], on_success, on_failure, None);
        assert_eq!(
            decide(&q(Some(Success), None), &after(true, false), false),
            Decision::Wait
        );
        assert_eq!(
            decide(&q(Some(Success), Some(Success)), &after(true, false), false),
            Decision::Start
        );
        assert_eq!(
            decide(&q(Some(Success), Some(Failure)), &after(true, false), false),
            Decision::Skip("it depends on `b`, which ended failure".into())
        );
        assert_eq!(
            decide(&q(Some(Failure), Some(Killed)), &after(false, true), false),
            Decision::Start
        );
        assert_eq!(
            decide(&q(Some(Success), Some(Success)), &after(false, true), false),
            Decision::Skip("its dependencies succeeded and it runs on failure only".into())
        );
        assert_eq!(
            decide(&q(Some(Failure), Some(Success)), &after(true, true), false),
            Decision::Start
        );
        // A skipped dependency has ended, and not successfully.
        assert!(matches!(
            decide(&q(Some(Skipped), Some(Success)), &after(true, false), false),
            Decision::Skip(_)
        ));
        // Canceled: what has not started is killed once its dependencies ended, not before.
        assert_eq!(
            decide(&q(Some(Success), Some(Success)), &after(true, false), true),
            Decision::Cancel
        );
        assert_eq!(
            decide(&q(Some(Success), None), &after(true, false), true),
            Decision::Wait
        );
        // No dependencies: it starts at once.
        assert_eq!(
            decide(&[], &queued("x", &[], true, false, None), false),
            Decision::Start
        );
    }
}
