//! The messages of `proto/woodpecker.proto` (package `proto`, protocol version 16), derived by
//! hand with `prost::Message`: no `protoc`, no build script. Tags and types must match the
//! `.proto`; `tests/agent/proto_check.rs` checks both against the protocol table.
//!
//! Knows the wire shapes only; nothing about when or why a message is sent.

use std::collections::BTreeMap;

use bytes::Bytes;

/// The protocol version this agent speaks (`rpc/proto/version.go` upstream).
pub const VERSION: i32 = 16;

/// The gRPC method paths.
pub mod method {
    pub const AUTH: &str = "/proto.WoodpeckerAuth/Auth";
    pub const VERSION: &str = "/proto.Woodpecker/Version";
    pub const NEXT: &str = "/proto.Woodpecker/Next";
    pub const INIT: &str = "/proto.Woodpecker/Init";
    pub const WAIT: &str = "/proto.Woodpecker/Wait";
    pub const DONE: &str = "/proto.Woodpecker/Done";
    pub const EXTEND: &str = "/proto.Woodpecker/Extend";
    pub const UPDATE: &str = "/proto.Woodpecker/Update";
    pub const LOG: &str = "/proto.Woodpecker/Log";
    pub const REGISTER_AGENT: &str = "/proto.Woodpecker/RegisterAgent";
    pub const UNREGISTER_AGENT: &str = "/proto.Woodpecker/UnregisterAgent";
    pub const REPORT_HEALTH: &str = "/proto.Woodpecker/ReportHealth";
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StepStateMessage {
    #[prost(string, tag = "1")]
    pub step_uuid: String,
    #[prost(int64, tag = "2")]
    pub started: i64,
    #[prost(int64, tag = "3")]
    pub finished: i64,
    #[prost(bool, tag = "4")]
    pub exited: bool,
    #[prost(int32, tag = "5")]
    pub exit_code: i32,
    #[prost(string, tag = "6")]
    pub error: String,
    #[prost(bool, tag = "7")]
    pub canceled: bool,
    #[prost(bool, tag = "8")]
    pub skipped: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkflowState {
    #[prost(int64, tag = "1")]
    pub started: i64,
    #[prost(int64, tag = "2")]
    pub finished: i64,
    #[prost(string, tag = "3")]
    pub error: String,
    #[prost(bool, tag = "4")]
    pub canceled: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogEntry {
    #[prost(string, tag = "1")]
    pub step_uuid: String,
    #[prost(int64, tag = "2")]
    pub time: i64,
    #[prost(int32, tag = "3")]
    pub line: i32,
    #[prost(int32, tag = "4")]
    pub r#type: i32,
    #[prost(bytes = "bytes", tag = "5")]
    pub data: Bytes,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Filter {
    #[prost(btree_map = "string, string", tag = "1")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkflowMessage {
    #[prost(string, tag = "1")]
    pub id: String,
    /// Minutes; 0 means the agent's default (60).
    #[prost(int64, tag = "2")]
    pub timeout: i64,
    /// JSON of `backend::WorkflowConfig`.
    #[prost(bytes = "bytes", tag = "3")]
    pub payload: Bytes,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentInfo {
    #[prost(string, tag = "1")]
    pub platform: String,
    #[prost(int32, tag = "2")]
    pub capacity: i32,
    #[prost(string, tag = "3")]
    pub backend: String,
    #[prost(string, tag = "4")]
    pub version: String,
    #[prost(btree_map = "string, string", tag = "5")]
    pub custom_labels: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NextRequest {
    #[prost(message, optional, tag = "1")]
    pub filter: Option<Filter>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InitRequest {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub state: Option<WorkflowState>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WaitRequest {
    #[prost(string, tag = "1")]
    pub id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DoneRequest {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub state: Option<WorkflowState>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExtendRequest {
    #[prost(string, tag = "1")]
    pub id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateRequest {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub state: Option<StepStateMessage>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogRequest {
    #[prost(message, repeated, tag = "1")]
    pub log_entries: Vec<LogEntry>,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Empty {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReportHealthRequest {
    /// Must be exactly [`ALIVE`].
    #[prost(string, tag = "1")]
    pub status: String,
}

/// The only status the server accepts in `ReportHealth`.
pub const ALIVE: &str = "I am alive!";

#[derive(Clone, PartialEq, prost::Message)]
pub struct RegisterAgentRequest {
    #[prost(message, optional, tag = "1")]
    pub info: Option<AgentInfo>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthRequest {
    #[prost(string, tag = "1")]
    pub agent_token: String,
    /// -1 when unknown.
    #[prost(int64, tag = "2")]
    pub agent_id: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionResponse {
    #[prost(int32, tag = "1")]
    pub grpc_version: i32,
    #[prost(string, tag = "2")]
    pub server_version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NextResponse {
    /// Unset: nothing for this agent, poll again.
    #[prost(message, optional, tag = "1")]
    pub workflow: Option<WorkflowMessage>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RegisterAgentResponse {
    #[prost(int64, tag = "1")]
    pub agent_id: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WaitResponse {
    #[prost(bool, tag = "1")]
    pub canceled: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthResponse {
    #[prost(string, tag = "1")]
    pub status: String,
    #[prost(int64, tag = "2")]
    pub agent_id: i64,
    /// A JWT, valid for one hour; opaque to the agent.
    #[prost(string, tag = "3")]
    pub access_token: String,
}
