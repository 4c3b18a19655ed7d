//! The error of the [`Backend`](super::Backend) contract, in the kinds the runtime must tell
//! apart: work stopped (not failed), a workflow the cluster cannot run as written, the cluster
//! or the connection failing, a step the backend cannot follow. The message and the causes are
//! the inner error's, unchanged.

use std::fmt;

/// A boxed error of the layer below (the lifecycle's, the object builders', the client's).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
pub enum BackendError {
    /// The work was stopped (the agent is shutting down): the step is canceled, not failed.
    Canceled(BoxError),
    /// The workflow cannot run as written (an object cannot be built from it, no step).
    Setup(BoxError),
    /// The cluster or the connection to it failed.
    Infrastructure(BoxError),
    /// The backend cannot follow this step (not started by it, its log already taken).
    Step(BoxError),
}

impl BackendError {
    pub fn is_canceled(&self) -> bool {
        matches!(self, BackendError::Canceled(_))
    }

    fn inner(&self) -> &BoxError {
        match self {
            BackendError::Canceled(e)
            | BackendError::Setup(e)
            | BackendError::Infrastructure(e)
            | BackendError::Step(e) => e,
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner().fmt(f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner().source()
    }
}
