//! Our `proto/woodpecker.proto` and the hand-derived prost structs against the protocol table
//! (shared/spec/woodpecker-agent-protocol.md §1.2), encoded here by hand: the `.proto` is parsed
//! by a tiny parser, and a fully populated instance of every struct is encoded and read back by
//! field number, wire type and value. Our `.proto` also declares exactly what upstream's file
//! (`testdata/upstream/woodpecker.proto`) declares; `upstream/proto.rs` uses the same checks.

use std::collections::BTreeMap;

use bytes::Bytes;
use prost::Message;
use woodpecker_k8s_agent::agent::proto::*;

/// (number, name, type) of one field.
type Field = (u32, &'static str, &'static str);

/// message -> its fields, as in the spec.
#[rustfmt::skip]
const TABLE: &[(&str, &[Field])] = &[
    ("StepState", &[(1, "step_uuid", "string"), (2, "started", "int64"), (3, "finished", "int64"), (4, "exited", "bool"),
        (5, "exit_code", "int32"), (6, "error", "string"), (7, "canceled", "bool"), (8, "skipped", "bool")]),
    ("WorkflowState", &[(1, "started", "int64"), (2, "finished", "int64"), (3, "error", "string"), (4, "canceled", "bool")]),
    ("LogEntry", &[(1, "step_uuid", "string"), (2, "time", "int64"), (3, "line", "int32"), (4, "type", "int32"), (5, "data", "bytes")]),
    ("Filter", &[(1, "labels", "map<string,string>")]),
    ("Workflow", &[(1, "id", "string"), (2, "timeout", "int64"), (3, "payload", "bytes")]),
    ("AgentInfo", &[(1, "platform", "string"), (2, "capacity", "int32"), (3, "backend", "string"), (4, "version", "string"),
        (5, "customLabels", "map<string,string>")]),
    ("NextRequest", &[(1, "filter", "Filter")]),
    ("InitRequest", &[(1, "id", "string"), (2, "state", "WorkflowState")]),
    ("WaitRequest", &[(1, "id", "string")]),
    ("DoneRequest", &[(1, "id", "string"), (2, "state", "WorkflowState")]),
    ("ExtendRequest", &[(1, "id", "string")]),
    ("UpdateRequest", &[(1, "id", "string"), (2, "state", "StepState")]),
    ("LogRequest", &[(1, "logEntries", "repeated LogEntry")]),
    ("Empty", &[]),
    ("ReportHealthRequest", &[(1, "status", "string")]),
    ("RegisterAgentRequest", &[(1, "info", "AgentInfo")]),
    ("AuthRequest", &[(1, "agent_token", "string"), (2, "agent_id", "int64")]),
    ("VersionResponse", &[(1, "grpc_version", "int32"), (2, "server_version", "string")]),
    ("NextResponse", &[(1, "workflow", "Workflow")]),
    ("RegisterAgentResponse", &[(1, "agent_id", "int64")]),
    ("WaitResponse", &[(1, "canceled", "bool")]),
    ("AuthResponse", &[(1, "status", "string"), (2, "agent_id", "int64"), (3, "access_token", "string")]),
];

#[rustfmt::skip]
const RPCS: &[(&str, &str, &str, &str)] = &[
    ("Woodpecker", "Version", "Empty", "VersionResponse"),
    ("Woodpecker", "Next", "NextRequest", "NextResponse"),
    ("Woodpecker", "Init", "InitRequest", "Empty"),
    ("Woodpecker", "Wait", "WaitRequest", "WaitResponse"),
    ("Woodpecker", "Done", "DoneRequest", "Empty"),
    ("Woodpecker", "Extend", "ExtendRequest", "Empty"),
    ("Woodpecker", "Update", "UpdateRequest", "Empty"),
    ("Woodpecker", "Log", "LogRequest", "Empty"),
    ("Woodpecker", "RegisterAgent", "RegisterAgentRequest", "RegisterAgentResponse"),
    ("Woodpecker", "UnregisterAgent", "Empty", "Empty"),
    ("Woodpecker", "ReportHealth", "ReportHealthRequest", "Empty"),
    ("WoodpeckerAuth", "Auth", "AuthRequest", "AuthResponse"),
];

/// message -> its fields (number, name, type), in declaration order.
pub type Fields = BTreeMap<String, Vec<(u32, String, String)>>;

type Parsed = (String, Fields, Vec<(String, String, String, String)>);

/// package, messages, rpcs (service, method, request, response).
pub fn parse_proto(text: &str) -> Parsed {
    let text: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let spaced: String = text
        .replace("map<string, string>", "map<string,string>")
        .chars()
        .flat_map(|c| {
            if "{};()=".contains(c) {
                vec![' ', c, ' ']
            } else {
                vec![c]
            }
        })
        .collect();
    let tokens: Vec<String> = spaced.split_whitespace().map(str::to_owned).collect();
    let (mut package, mut messages, mut rpcs) = (String::new(), BTreeMap::new(), Vec::new());
    let mut i = 0;
    let mut service = String::new();
    while i < tokens.len() {
        match tokens[i].as_str() {
            "package" => package = tokens[i + 1].clone(),
            "service" => service = tokens[i + 1].clone(),
            "rpc" => {
                // rpc Name ( Req ) returns ( Resp )
                assert_eq!((tokens[i + 2].as_str(), tokens[i + 5].as_str()), ("(", "returns"));
                rpcs.push((
                    service.clone(),
                    tokens[i + 1].clone(),
                    tokens[i + 3].clone(),
                    tokens[i + 7].clone(),
                ));
            }
            "message" => {
                let name = tokens[i + 1].clone();
                assert_eq!(tokens[i + 2], "{");
                let mut fields = Vec::new();
                i += 3;
                while tokens[i] != "}" {
                    let semi = (i..).find(|&j| tokens[j] == ";").unwrap();
                    let f = &tokens[i..semi];
                    // [repeated] type name = number
                    let (ty, rest) = if f[0] == "repeated" {
                        (format!("repeated {}", f[1]), &f[2..])
                    } else {
                        (f[0].clone(), &f[1..])
                    };
                    assert_eq!(rest[1], "=", "{name}: {f:?}");
                    fields.push((rest[2].parse().unwrap(), rest[0].clone(), ty));
                    i = semi + 1;
                }
                messages.insert(name, fields);
            }
            _ => {}
        }
        i += 1;
    }
    (package, messages, rpcs)
}

#[test]
fn proto_file_matches_the_protocol_table() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/proto/woodpecker.proto")).unwrap();
    let (package, messages, rpcs) = parse_proto(&text);
    assert_eq!(package, "proto");
    assert!(text.contains("syntax = \"proto3\";"));
    let want: BTreeMap<String, Vec<(u32, String, String)>> = TABLE
        .iter()
        .map(|(m, fs)| {
            (
                m.to_string(),
                fs.iter().map(|(n, f, t)| (*n, f.to_string(), t.to_string())).collect(),
            )
        })
        .collect();
    assert_eq!(messages, want);
    let want_rpcs: Vec<_> = RPCS
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect();
    assert_eq!(rpcs, want_rpcs);
    // The method paths the client calls are the ones the .proto declares.
    let paths = [
        method::VERSION,
        method::NEXT,
        method::INIT,
        method::WAIT,
        method::DONE,
        method::EXTEND,
        method::UPDATE,
        method::LOG,
        method::REGISTER_AGENT,
        method::UNREGISTER_AGENT,
        method::REPORT_HEALTH,
        method::AUTH,
    ];
    let declared: Vec<String> = rpcs.iter().map(|(s, m, _, _)| format!("/proto.{s}/{m}")).collect();
    assert_eq!(paths.to_vec(), declared);
    assert_eq!(VERSION, 16);
}

#[test]
fn our_proto_declares_what_upstreams_declares() {
    let read = |path: &str| std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let ours = parse_proto(&read("proto/woodpecker.proto"));
    let upstream = parse_proto(&read("testdata/upstream/woodpecker.proto"));
    assert_eq!(ours.0, upstream.0, "package");
    assert_eq!(ours.1, upstream.1, "messages, field numbers, names and types");
    assert_eq!(ours.2, upstream.2, "services and methods");
}

/// A raw field: (number, wire type, varint value or bytes).
#[derive(Debug)]
enum Raw {
    Varint(u64),
    Len(Bytes),
}

fn varint(b: &mut &[u8]) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = b[0];
        *b = &b[1..];
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    v
}

fn raw_fields(mut b: &[u8]) -> Vec<(u32, Raw)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        let (num, wire) = ((key >> 3) as u32, key & 7);
        match wire {
            0 => out.push((num, Raw::Varint(varint(&mut b)))),
            2 => {
                let len = varint(&mut b) as usize;
                out.push((num, Raw::Len(Bytes::copy_from_slice(&b[..len]))));
                b = &b[len..];
            }
            other => panic!("unexpected wire type {other} for field {num}"),
        }
    }
    out
}

/// Every field of `name` is present, once per value, with the wire type and value its table
/// type implies. Convention for the populated instances: an integer field `n` holds `n * 1000
/// + 7`, a bool `true`, a string or bytes field the text `<Message>.<n>`, a map one entry
/// `k<n>` -> `v<n>`, and a message field a populated message.
fn check(name: &str, encoded: Vec<u8>) {
    let table: Fields = TABLE
        .iter()
        .map(|(m, fs)| {
            (
                m.to_string(),
                fs.iter().map(|(n, f, t)| (*n, f.to_string(), t.to_string())).collect(),
            )
        })
        .collect();
    check_against(&table, name, encoded)
}

/// [`check`] against the fields of `table` (a parsed `.proto`).
pub fn check_against(table: &Fields, name: &str, encoded: Vec<u8>) {
    let fields = &table[name];
    let raw = raw_fields(&encoded);
    let nums: std::collections::BTreeSet<u32> = raw.iter().map(|(n, _)| *n).collect();
    let want: std::collections::BTreeSet<u32> = fields.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(nums, want, "{name}: field numbers on the wire");
    for (num, field, ty) in fields {
        let values: Vec<&Raw> = raw.iter().filter(|(n, _)| n == num).map(|(_, r)| r).collect();
        let ctx = format!("{name}.{field} (#{num}, {ty})");
        match ty.as_str() {
            "int32" | "int64" => assert!(
                matches!(values[..], [Raw::Varint(v)] if *v == u64::from(num * 1000 + 7)),
                "{ctx}: {values:?}"
            ),
            "bool" => assert!(matches!(values[..], [Raw::Varint(1)]), "{ctx}: {values:?}"),
            "string" | "bytes" => {
                let want = format!("{name}.{num}");
                assert!(
                    matches!(values[..], [Raw::Len(b)] if b[..] == *want.as_bytes()),
                    "{ctx}: {values:?}"
                )
            }
            "map<string,string>" => {
                let [Raw::Len(entry)] = values[..] else {
                    panic!("{ctx}: {values:?}")
                };
                let kv = raw_fields(entry);
                assert!(
                    matches!(&kv[..], [(1, Raw::Len(k)), (2, Raw::Len(v))] if k[..] == *format!("k{num}").as_bytes() && v[..] == *format!("v{num}").as_bytes()),
                    "{ctx}: {kv:?}"
                );
            }
            sub => {
                let sub = sub.trim_start_matches("repeated ");
                assert!(!values.is_empty(), "{ctx}: missing");
                for v in values {
                    let Raw::Len(b) = v else {
                        panic!("{ctx}: not length-delimited")
                    };
                    check_against(table, sub, b.to_vec());
                }
            }
        }
    }
}

fn s(msg: &str, n: u32) -> String {
    format!("{msg}.{n}")
}

fn b(msg: &str, n: u32) -> Bytes {
    Bytes::from(s(msg, n))
}

fn step_state() -> StepStateMessage {
    StepStateMessage {
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
        data: b("LogEntry", 5),
    }
}

fn filter() -> Filter {
    Filter {
        labels: [("k1".into(), "v1".into())].into(),
    }
}

fn workflow() -> WorkflowMessage {
    WorkflowMessage {
        id: s("Workflow", 1),
        timeout: 2007,
        payload: b("Workflow", 3),
    }
}

fn agent_info() -> AgentInfo {
    AgentInfo {
        platform: s("AgentInfo", 1),
        capacity: 2007,
        backend: s("AgentInfo", 3),
        version: s("AgentInfo", 4),
        custom_labels: [("k5".into(), "v5".into())].into(),
    }
}

#[test]
fn prost_structs_match_the_protocol_table() {
    check("StepState", step_state().encode_to_vec());
    check("WorkflowState", workflow_state().encode_to_vec());
    check("LogEntry", log_entry().encode_to_vec());
    check("Filter", filter().encode_to_vec());
    check("Workflow", workflow().encode_to_vec());
    check("AgentInfo", agent_info().encode_to_vec());
    check("NextRequest", NextRequest { filter: Some(filter()) }.encode_to_vec());
    check(
        "InitRequest",
        InitRequest {
            id: s("InitRequest", 1),
            state: Some(workflow_state()),
        }
        .encode_to_vec(),
    );
    check(
        "WaitRequest",
        WaitRequest {
            id: s("WaitRequest", 1),
        }
        .encode_to_vec(),
    );
    check(
        "DoneRequest",
        DoneRequest {
            id: s("DoneRequest", 1),
            state: Some(workflow_state()),
        }
        .encode_to_vec(),
    );
    check(
        "ExtendRequest",
        ExtendRequest {
            id: s("ExtendRequest", 1),
        }
        .encode_to_vec(),
    );
    check(
        "UpdateRequest",
        UpdateRequest {
            id: s("UpdateRequest", 1),
            state: Some(step_state()),
        }
        .encode_to_vec(),
    );
    check(
        "LogRequest",
        LogRequest {
            log_entries: vec![log_entry(), log_entry()],
        }
        .encode_to_vec(),
    );
    check("Empty", Empty {}.encode_to_vec());
    check(
        "ReportHealthRequest",
        ReportHealthRequest {
            status: s("ReportHealthRequest", 1),
        }
        .encode_to_vec(),
    );
    check(
        "RegisterAgentRequest",
        RegisterAgentRequest {
            info: Some(agent_info()),
        }
        .encode_to_vec(),
    );
    check(
        "AuthRequest",
        AuthRequest {
            agent_token: s("AuthRequest", 1),
            agent_id: 2007,
        }
        .encode_to_vec(),
    );
    check(
        "VersionResponse",
        VersionResponse {
            grpc_version: 1007,
            server_version: s("VersionResponse", 2),
        }
        .encode_to_vec(),
    );
    check(
        "NextResponse",
        NextResponse {
            workflow: Some(workflow()),
        }
        .encode_to_vec(),
    );
    check(
        "RegisterAgentResponse",
        RegisterAgentResponse { agent_id: 1007 }.encode_to_vec(),
    );
    check("WaitResponse", WaitResponse { canceled: true }.encode_to_vec());
    check(
        "AuthResponse",
        AuthResponse {
            status: s("AuthResponse", 1),
            agent_id: 2007,
            access_token: s("AuthResponse", 3),
        }
        .encode_to_vec(),
    );
    // -1 (an unknown agent id) is a ten-byte varint, as Go encodes int64.
    let raw = raw_fields(
        &AuthRequest {
            agent_token: String::new(),
            agent_id: -1,
        }
        .encode_to_vec(),
    );
    assert!(matches!(raw[..], [(2, Raw::Varint(u64::MAX))]));
}
