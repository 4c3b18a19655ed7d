//! The YAML front end and the runtime. Runtime tests run on an in-test fake backend
//! (`pipeline/fake.rs`) with tokio's paused clock.

mod fake;
mod frontend;
mod runtime;
