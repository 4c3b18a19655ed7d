//! The messages of upstream's `rpc/proto/woodpecker.proto` (`testdata/upstream/woodpecker.proto`,
//! verbatim), derived by hand as prost-build would generate them (its field names, `Vec<u8>` for
//! `bytes`, `HashMap` for maps), independently of the agent's own `agent::proto`. The test below
//! parses upstream's file and checks every message of it against these structs, field by field:
//! number, wire type and value on the wire, and the field names.

use std::collections::HashMap;

#[derive(Clone, PartialEq, prost::Message)]
pub struct StepState {
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
    #[prost(bytes = "vec", tag = "5")]
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Filter {
    #[prost(map = "string, string", tag = "1")]
    pub labels: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Workflow {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(int64, tag = "2")]
    pub timeout: i64,
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
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
    pub state: Option<StepState>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogRequest {
    #[prost(message, repeated, tag = "1")]
    pub log_entries: Vec<LogEntry>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReportHealthRequest {
    #[prost(string, tag = "1")]
    pub status: String,
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
    #[prost(map = "string, string", tag = "5")]
    pub custom_labels: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RegisterAgentRequest {
    #[prost(message, optional, tag = "1")]
    pub info: Option<AgentInfo>,
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
    #[prost(message, optional, tag = "1")]
    pub workflow: Option<Workflow>,
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
pub struct AuthRequest {
    #[prost(string, tag = "1")]
    pub agent_token: String,
    #[prost(int64, tag = "2")]
    pub agent_id: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthResponse {
    #[prost(string, tag = "1")]
    pub status: String,
    #[prost(int64, tag = "2")]
    pub agent_id: i64,
    #[prost(string, tag = "3")]
    pub access_token: String,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use prost::Message;

    use super::*;
    use crate::agent::proto_check::{Fields, check_against, parse_proto};

    /// Upstream's file, verbatim.
    fn upstream() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/upstream/woodpecker.proto"
        ))
        .expect("testdata/upstream/woodpecker.proto")
    }

    // Populated instances, by the convention of `check_against`: an integer field `n` holds
    // `n * 1000 + 7`, a bool `true`, a string or bytes field `<Message>.<n>`, a map one entry
    // `k<n>` -> `v<n>`, a message field a populated message.
    fn s(msg: &str, n: u32) -> String {
        format!("{msg}.{n}")
    }

    fn step_state() -> StepState {
        StepState {
            step_uuid: s("StepState", 1),
            started: 2007,
            finished: 3007,
            exited: true,
            exit_code: 5007,
            error: s("StepState", 6),
            canceled: true,
            skipped: true,
        }
    }

    fn workflow_state() -> WorkflowState {
        WorkflowState {
            started: 1007,
            finished: 2007,
            error: s("WorkflowState", 3),
            canceled: true,
        }
    }

    fn log_entry() -> LogEntry {
        LogEntry {
            step_uuid: s("LogEntry", 1),
            time: 2007,
            line: 3007,
            r#type: 4007,
            data: s("LogEntry", 5).into_bytes(),
        }
    }

    fn filter() -> Filter {
        Filter {
            labels: [("k1".to_owned(), "v1".to_owned())].into(),
        }
    }

    fn agent_info() -> AgentInfo {
        AgentInfo {
            platform: s("AgentInfo", 1),
            capacity: 2007,
            backend: s("AgentInfo", 3),
            version: s("AgentInfo", 4),
            custom_labels: [("k5".to_owned(), "v5".to_owned())].into(),
        }
    }

    /// Every message of the file, encoded from these structs, with the Rust field names in
    /// declaration order.
    fn encoded() -> BTreeMap<&'static str, (Vec<u8>, &'static [&'static str])> {
        let id = |m: &str| s(m, 1);
        BTreeMap::from([
            (
                "StepState",
                (
                    step_state().encode_to_vec(),
                    &[
                        "step_uuid",
                        "started",
                        "finished",
                        "exited",
                        "exit_code",
                        "error",
                        "canceled",
                        "skipped",
                    ][..],
                ),
            ),
            (
                "WorkflowState",
                (
                    workflow_state().encode_to_vec(),
                    &["started", "finished", "error", "canceled"][..],
                ),
            ),
            (
                "LogEntry",
                (
                    log_entry().encode_to_vec(),
                    &["step_uuid", "time", "line", "type", "data"][..],
                ),
            ),
            ("Filter", (filter().encode_to_vec(), &["labels"][..])),
            (
                "Workflow",
                (
                    Workflow {
                        id: id("Workflow"),
                        timeout: 2007,
                        payload: s("Workflow", 3).into_bytes(),
                    }
                    .encode_to_vec(),
                    &["id", "timeout", "payload"][..],
                ),
            ),
            (
                "NextRequest",
                (NextRequest { filter: Some(filter()) }.encode_to_vec(), &["filter"][..]),
            ),
            (
                "InitRequest",
                (
                    InitRequest {
                        id: id("InitRequest"),
                        state: Some(workflow_state()),
                    }
                    .encode_to_vec(),
                    &["id", "state"][..],
                ),
            ),
            (
                "WaitRequest",
                (WaitRequest { id: id("WaitRequest") }.encode_to_vec(), &["id"][..]),
            ),
            (
                "DoneRequest",
                (
                    DoneRequest {
                        id: id("DoneRequest"),
                        state: Some(workflow_state()),
                    }
                    .encode_to_vec(),
                    &["id", "state"][..],
                ),
            ),
            (
                "ExtendRequest",
                (
                    ExtendRequest {
                        id: id("ExtendRequest"),
                    }
                    .encode_to_vec(),
                    &["id"][..],
                ),
            ),
            (
                "UpdateRequest",
                (
                    UpdateRequest {
                        id: id("UpdateRequest"),
                        state: Some(step_state()),
                    }
                    .encode_to_vec(),
                    &["id", "state"][..],
                ),
            ),
            (
                "LogRequest",
                (
                    LogRequest {
                        log_entries: vec![log_entry(), log_entry()],
                    }
                    .encode_to_vec(),
                    &["log_entries"][..],
                ),
            ),
            ("Empty", (Empty {}.encode_to_vec(), &[][..])),
            (
                "ReportHealthRequest",
                (
                    ReportHealthRequest {
                        status: id("ReportHealthRequest"),
                    }
                    .encode_to_vec(),
                    &["status"][..],
                ),
            ),
            (
                "AgentInfo",
                (
                    agent_info().encode_to_vec(),
                    &["platform", "capacity", "backend", "version", "custom_labels"][..],
                ),
            ),
            (
                "RegisterAgentRequest",
                (
                    RegisterAgentRequest {
                        info: Some(agent_info()),
                    }
                    .encode_to_vec(),
                    &["info"][..],
                ),
            ),
            (
                "VersionResponse",
                (
                    VersionResponse {
                        grpc_version: 1007,
                        server_version: s("VersionResponse", 2),
                    }
                    .encode_to_vec(),
                    &["grpc_version", "server_version"][..],
                ),
            ),
            (
                "NextResponse",
                (
                    NextResponse {
                        workflow: Some(Workflow {
                            id: id("Workflow"),
                            timeout: 2007,
                            payload: s("Workflow", 3).into_bytes(),
                        }),
                    }
                    .encode_to_vec(),
                    &["workflow"][..],
                ),
            ),
            (
                "RegisterAgentResponse",
                (
                    RegisterAgentResponse { agent_id: 1007 }.encode_to_vec(),
                    &["agent_id"][..],
                ),
            ),
            (
                "WaitResponse",
                (WaitResponse { canceled: true }.encode_to_vec(), &["canceled"][..]),
            ),
            (
                "AuthRequest",
                (
                    AuthRequest {
                        agent_token: id("AuthRequest"),
                        agent_id: 2007,
                    }
                    .encode_to_vec(),
                    &["agent_token", "agent_id"][..],
                ),
            ),
            (
                "AuthResponse",
                (
                    AuthResponse {
                        status: id("AuthResponse"),
                        agent_id: 2007,
                        access_token: s("AuthResponse", 3),
                    }
                    .encode_to_vec(),
                    &["status", "agent_id", "access_token"][..],
                ),
            ),
        ])
    }

    /// protoc's Rust field name for a `.proto` field name (`logEntries` -> `log_entries`).
    fn snake(name: &str) -> String {
        let mut out = String::new();
        for c in name.chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn messages_match_upstreams_proto_field_by_field() {
        let (package, messages, rpcs) = parse_proto(&upstream());
        assert_eq!(package, "proto");
        let ours = encoded();
        let names: Vec<&str> = messages.keys().map(String::as_str).collect();
        let derived: Vec<&str> = ours.keys().copied().collect();
        assert_eq!(names, derived, "every message of upstream's file, and no other");
        let fields: Fields = messages.clone();
        for (name, (bytes, rust_names)) in &ours {
            check_against(&fields, name, bytes.clone());
            let proto_names: Vec<String> = messages[*name].iter().map(|(_, n, _)| snake(n)).collect();
            assert_eq!(&proto_names, rust_names, "{name}: field names");
        }
        // The methods the server answers are upstream's.
        let paths: Vec<String> = rpcs.iter().map(|(s, m, _, _)| format!("/proto.{s}/{m}")).collect();
        assert_eq!(paths, super::super::server::METHODS);
    }
}
