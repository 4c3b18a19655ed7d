//! Errors of the step lifecycle. Each names the workflow or step and the object concerned;
//! the Kubernetes error is the `source`, never repeated in the message.

use std::fmt;

/// A boxed error from another layer (the object builders).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
pub enum LifecycleError {
    /// The workflow has no step, so there is no namespace to run in.
    NoSteps { task: String },
    /// An object of the workflow could not be built from its definition.
    Build { what: String, source: BoxError },
    /// A request to the cluster failed. `action` is what was being done (`create pod wp-x`).
    Kube { action: String, source: kube::Error },
    /// `tail_step` or `wait_step` for a step this agent did not start (or already destroyed).
    UnknownStep { step: String, task: String },
    /// The step's log was already handed out by an earlier `tail_step`.
    LogTaken { step: String },
    /// The agent is shutting down; the step's result is unknown.
    Shutdown { step: String },
    /// The workspace holder pod (`WORKSPACE_EMPTYDIR`) did not start.
    Holder { pod: String, why: String },
    /// Several deletes failed; every failure is listed (cleanup keeps going past each).
    Cleanup {
        what: String,
        failures: Vec<(String, kube::Error)>,
    },
}

impl LifecycleError {
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        LifecycleError::Kube {
            action: action.into(),
            source,
        }
    }
}

impl fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LifecycleError::NoSteps { task } => write!(f, "workflow {task} has no steps"),
            LifecycleError::Build { what, .. } => write!(f, "build {what}"),
            LifecycleError::Kube { action, .. } => f.write_str(action),
            LifecycleError::UnknownStep { step, task } => {
                write!(f, "step {step} of workflow {task} was not started by this agent")
            }
            LifecycleError::LogTaken { step } => write!(f, "the log of step {step} is already being read"),
            LifecycleError::Shutdown { step } => write!(f, "step {step}: the agent is shutting down"),
            LifecycleError::Holder { pod, why } => write!(f, "workspace holder pod {pod} did not start: {why}"),
            // The one place a message carries causes: there are several and `source()` holds one.
            LifecycleError::Cleanup { what, failures } => {
                write!(f, "{what}: {} object(s) not deleted", failures.len())?;
                for (object, err) in failures {
                    write!(f, "; {object}: {err}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LifecycleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LifecycleError::Build { source, .. } => Some(source.as_ref()),
            LifecycleError::Kube { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The kinds the runtime tells apart: a shutdown cancels, a workflow that cannot be built is a
/// setup error, a step this backend cannot follow is the step's, the rest is the cluster's.
impl From<LifecycleError> for crate::backend::BackendError {
    fn from(e: LifecycleError) -> Self {
        use crate::backend::BackendError as B;
        match e {
            LifecycleError::Shutdown { .. } => B::Canceled(Box::new(e)),
            LifecycleError::NoSteps { .. } | LifecycleError::Build { .. } | LifecycleError::Holder { .. } => {
                B::Setup(Box::new(e))
            }
            LifecycleError::UnknownStep { .. } | LifecycleError::LogTaken { .. } => B::Step(Box::new(e)),
            LifecycleError::Kube { .. } | LifecycleError::Cleanup { .. } => B::Infrastructure(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendError;

    type IsKind = fn(&BackendError) -> bool;

    #[test]
    fn each_lifecycle_error_has_its_kind_and_keeps_its_message() {
        let cases: Vec<(LifecycleError, IsKind)> = vec![
            (LifecycleError::Shutdown { step: "a".into() }, |e| {
                matches!(e, BackendError::Canceled(_))
            }),
            (LifecycleError::NoSteps { task: "t".into() }, |e| {
                matches!(e, BackendError::Setup(_))
            }),
            (
                LifecycleError::UnknownStep {
                    step: "a".into(),
                    task: "t".into(),
                },
                |e| matches!(e, BackendError::Step(_)),
            ),
            (
                LifecycleError::Cleanup {
                    what: "delete".into(),
                    failures: Vec::new(),
                },
                |e| matches!(e, BackendError::Infrastructure(_)),
            ),
        ];
        for (e, kind) in cases {
            let text = e.to_string();
            let b = BackendError::from(e);
            assert!(kind(&b), "{b:?}");
            assert_eq!(b.to_string(), text);
        }
    }
}
