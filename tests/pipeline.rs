//! The YAML front end and the runtime: front-end keys and errors, the runtime on an in-test
//! fake backend with tokio's paused clock (`runtime.rs`), and again on the Kubernetes backend
//! against the simulated cluster (`onsim.rs`).

mod errors;
mod fake;
mod frontend;
mod onsim;
mod runtime;
// Hostile files: bounded time and memory.
mod bounded;
