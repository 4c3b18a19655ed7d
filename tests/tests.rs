//! Integration tests, built as one binary. One line per submodule says what it covers.

#![allow(dead_code)]

mod common;

// The agent on a Woodpecker server built from our .proto.
mod agent;
// Smoke: the binary's top-level commands.
mod cli;
// The client against the simulated cluster over TLS: CRUD, errors, watch, logs, retries.
mod client;
// deploy/ manifests and the static build.
mod deploy;
// `exec` end to end on the embedded cluster.
mod exec;
// The simulated cluster driven by the real kubectl.
mod kubectl;
// kubeconfig resolution, with kubectl as the oracle.
mod kubeconfig;
// The backend's step lifecycle on the simulated cluster.
mod lifecycle;
// The walls between the rooms: imports against the arrows, the shipped build without the sim.
mod layers;
// The YAML front end and the runtime.
mod pipeline;
// Workflow payloads as a Go server marshals them: null, absent and empty fields.
mod payload;
// `preflight` against the simulated cluster.
mod preflight;
// `render` golden files and schema validation.
mod render;
// The simulated cluster's own semantics.
mod sim;
