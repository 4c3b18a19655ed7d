//! The workflow as Woodpecker's server sends it (`pipeline/backend/types`): its `Config` (here `WorkflowConfig`) with its
//! stages and steps, in Woodpecker's backend JSON format, plus the step `State` a backend
//! returns. Every field defaults on decode (Go's `omitempty`); unknown keys are ignored.
//!
//! CONTRACT: shared by `backend` (objects, lifecycle), `pipeline` (the YAML front end produces
//! it, the runtime consumes it) and `agent` (decodes the server's payload). Field names and
//! JSON keys are Woodpecker's; extend, do not rename.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::environment::Environment;

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// One compiled workflow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkflowConfig {
    /// Stages run one after another; the steps of a stage run in parallel.
    #[serde(rename = "pipeline")]
    pub stages: Vec<Stage>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub network: String,
    /// The workspace volume name, `wp_<ulid>_<workflow id>_default`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub volume: String,
    /// Every secret of the pipeline in clear text, for log masking only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretValue>,
}

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretValue {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretValue {{ name: {:?}, value: [REDACTED] }}", self.name)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stage {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
}

/// `clone`, `service`, `plugin`, `commands` or `cache`.
pub type StepType = String;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Step {
    pub name: String,
    pub uuid: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub org_id: i64,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: StepType,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(skip_serializing_if = "is_false")]
    pub pull: bool,
    #[serde(rename = "detach", skip_serializing_if = "is_false")]
    pub detached: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub workspace_base: String,
    #[serde(skip_serializing_if = "Environment::is_empty")]
    pub environment: Environment,
    /// Env var name -> value, for every variable that came from a secret.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_mapping: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<HostAlias>,
    /// `name:path[:mode]`; the first is the workflow workspace.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Conn>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub on_success: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub on_failure: bool,
    /// `fail` (default), `ignore` or `cancel`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub failure: String,
    /// Always present on the wire (no omitempty), may be `{}`.
    pub auth_config: Auth,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub network_mode: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Free-form; the Kubernetes options live under `kubernetes`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub backend_options: BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub workflow_labels: BTreeMap<String, String>,
}

impl Step {
    pub fn is_service(&self) -> bool {
        self.type_ == "service"
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostAlias {
    pub name: String,
    pub ip: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Conn {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Port {
    pub number: u16,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
}

/// Registry credentials.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Auth {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Auth {{ username: {:?}, password: [REDACTED] }}", self.username)
    }
}

/// What a finished step reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Unix seconds, filled in by the runtime.
    pub started: i64,
    pub exit_code: i32,
    pub exited: bool,
    pub oom_killed: bool,
    /// Why the step failed beyond its exit code (eviction, a lost node, deleted from outside,
    /// could not start: the Kubernetes reason and message). `None` for a plain exit.
    pub error: Option<String>,
}
