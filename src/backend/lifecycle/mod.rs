//! The step lifecycle on Kubernetes: the `Backend` implementation that creates step pods,
//! follows them on one shared watch per namespace, streams their logs and cleans up.
//!
//! - [`classify`]: what a pod state means for the step (pure).
//! - [`podwatch`]: the shared per-namespace watch, fanned out to per-pod waiters.
//! - [`pending`]: what the step log says while the pod is not running (pure).
//! - [`follow`]: one step's pod followed on the shared watch, with its timers.

pub mod classify;
pub mod follow;
pub mod pending;
pub mod podwatch;

pub use classify::{Limits, Verdict, Why, classify};
pub use podwatch::{Input, PodWatch, Seen};
