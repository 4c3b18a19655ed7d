//! The workflow payload as a Go server sends it: the table of upstream's fields
//! (`common/gomarshal.rs`) checked against our types, every field `null` or absent through the
//! decoder and through `render`, and a Go-marshalled payload through the agent (`agent/flows.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use woodpecker_k8s_agent::backend::WorkflowConfig;
use woodpecker_k8s_agent::go;

use crate::common::gomarshal::{FIELDS, Go, fields_of, marshal_config};

/// A payload with every field of every struct set to something non-empty, including every kind
/// of nested struct, so that each field of the table has an occurrence to null out.
fn full() -> Value {
    json!({
        "pipeline": [{"steps": [{
            "name": "build", "org_id": 3, "uuid": "01JFULL0000000000000000000", "type": "commands",
            "image": "alpine:3", "pull": true, "detach": true, "privileged": true,
            "working_dir": "/woodpecker/src", "workspace_base": "/woodpecker",
            "environment": {"CI_REPO": "octo/full"}, "secret_mapping": {"TOKEN": "t0ken-value"},
            "entrypoint": ["/bin/sh", "-c"], "commands": ["make"],
            "extra_hosts": [{"name": "db.internal", "ip": "10.0.0.2"}],
            "volumes": ["wp_01jfull_1_default:/woodpecker"], "tmpfs": ["/tmp"], "devices": ["/dev/fuse"],
            "networks": [{"name": "wp_01jfull_1_default", "aliases": ["build"]}],
            "dns": ["10.96.0.10"], "dns_search": ["corp.example.com"], "on_failure": true,
            "on_success": true, "failure": "ignore", "auth_config": {"username": "u", "password": "p4ssword"},
            "network_mode": "bridge", "ports": [{"number": 8080, "protocol": "tcp"}],
            "backend_options": {"kubernetes": {"labels": {"team": "a"}}},
            "workflow_labels": {"tier": "t"},
        }]}],
        "network": "wp_01jfull_1_default",
        "volume": "wp_01jfull_1_default",
        "secrets": [{"name": "token", "value": "t0ken-value"}],
    })
}

/// Applies `f` to every object of Go struct `owner` in `config`.
fn each_object(config: &mut Value, owner: &str, f: &mut dyn FnMut(&mut serde_json::Map<String, Value>)) {
    fn walk(v: &mut Value, go: Go, owner: &str, f: &mut dyn FnMut(&mut serde_json::Map<String, Value>)) {
        match go {
            Go::Struct(name) => {
                let Some(map) = v.as_object_mut() else { return };
                if name == owner {
                    f(map);
                }
                for field in fields_of(name) {
                    if let Some(child) = map.get_mut(field.key) {
                        walk(child, field.go, owner, f);
                    }
                }
            }
            Go::Slice(elem) => {
                for item in v.as_array_mut().into_iter().flatten() {
                    walk(item, *elem, owner, f);
                }
            }
            Go::Ptr(inner) => walk(v, *inner, owner, f),
            Go::String | Go::Bool | Go::Int | Go::Map(_) | Go::Any => {}
        }
    }
    walk(config, Go::Struct("Config"), owner, f);
}

fn decode(v: &Value) -> WorkflowConfig {
    go::json::from_slice(v.to_string().as_bytes()).unwrap_or_else(|e| panic!("decode {v}: {e}"))
}

/// Our encoding, as JSON, to compare what was decoded.
fn encoded(c: &WorkflowConfig) -> Value {
    serde_json::to_value(c).unwrap()
}

#[test]
fn the_table_names_exactly_the_fields_of_our_types() {
    // Decoding the full payload and encoding it again keeps every key of the table (nothing is
    // dropped on the way), and our types write no key that the table lacks.
    let back = encoded(&decode(&full()));
    assert_eq!(back, full(), "a field of the table is not kept by our types");
    let mut seen = std::collections::BTreeSet::new();
    for owner in ["Config", "Stage", "Step", "Port", "HostAlias", "Conn", "Secret", "Auth"] {
        let mut back = back.clone();
        each_object(&mut back, owner, &mut |map| {
            for key in map.keys() {
                assert!(
                    fields_of(owner).any(|f| f.key == key),
                    "our {owner} writes `{key}`, which upstream's table does not have"
                );
                seen.insert((owner.to_string(), key.clone()));
            }
        });
    }
    for field in FIELDS {
        assert!(
            seen.contains(&(field.owner.to_string(), field.key.to_string())),
            "the full payload has no {}.{}",
            field.owner,
            field.key
        );
    }
}

#[test]
fn every_field_null_decodes_as_if_absent() {
    let mut nilable = 0;
    for field in FIELDS {
        let (mut nulled, mut absent) = (full(), full());
        each_object(&mut nulled, field.owner, &mut |m| {
            m.insert(field.key.into(), Value::Null);
        });
        each_object(&mut absent, field.owner, &mut |m| {
            m.remove(field.key);
        });
        assert_eq!(
            encoded(&decode(&nulled)),
            encoded(&decode(&absent)),
            "{}.{}: null and absent differ",
            field.owner,
            field.key
        );
        nilable += usize::from(field.go.nilable());
    }
    assert_eq!(nilable, 18, "slices, maps and pointers in upstream's types");
}

#[test]
fn every_field_empty_decodes() {
    for field in FIELDS {
        let empty = match field.go {
            Go::String => json!(""),
            Go::Bool => json!(false),
            Go::Int => json!(0),
            Go::Struct(_) | Go::Map(_) => json!({}),
            Go::Slice(_) => json!([]),
            Go::Any | Go::Ptr(_) => Value::Null,
        };
        let mut v = full();
        each_object(&mut v, field.owner, &mut |m| {
            m.insert(field.key.into(), empty.clone());
        });
        decode(&v);
    }
}

/// The payload of a repository without secrets, networks or options, as Go writes it.
fn go_minimal() -> String {
    marshal_config(&json!({
        "pipeline": [{"steps": [{
            "name": "build", "uuid": "01JGOMIN000000000000000000", "type": "commands", "image": "alpine:3",
            "commands": ["echo hi"], "on_success": true, "auth_config": {},
            "volumes": ["wp_01jgomin_1_default:/woodpecker"],
            "networks": [{"name": "wp_01jgomin_1_default"}],
        }]}],
        "volume": "wp_01jgomin_1_default",
    }))
}

#[test]
fn go_writes_null_for_nil_slices_and_we_decode_it() {
    let text = go_minimal();
    assert!(text.contains(r#""secrets":null"#), "{text}");
    assert!(text.contains(r#""aliases":null"#), "{text}");
    let conf: WorkflowConfig = go::json::from_slice(text.as_bytes()).expect("a Go server's payload decodes");
    assert!(conf.secrets.is_empty());
    assert_eq!(conf.stages[0].steps[0].commands, ["echo hi"]);
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn render(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_woodpecker-k8s-agent"))
        .args(["render", "--task-uuid", "01jgonull", "--agent", "a"])
        .arg(path)
        .env_clear()
        .output()
        .expect("run the binary")
}

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wp-payload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn stdout(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "render {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Three variants of [`full`]: every nil-able field `null`, the same fields removed, and every
/// optional (`omitempty` or nil-able) field absent; all but the two fields that hold the steps
/// (without them nothing would be left to run).
pub(crate) fn variants() -> (Value, Value, Value) {
    let keep = |owner: &str, key: &str| (owner, key) == ("Config", "pipeline") || (owner, key) == ("Stage", "steps");
    let (mut nulled, mut removed, mut absent) = (full(), full(), full());
    for field in FIELDS.iter().filter(|f| !keep(f.owner, f.key)) {
        if field.go.nilable() {
            each_object(&mut nulled, field.owner, &mut |m| {
                m.insert(field.key.into(), Value::Null);
            });
            each_object(&mut removed, field.owner, &mut |m| {
                m.remove(field.key);
            });
        }
        if field.omitempty || field.go.nilable() {
            each_object(&mut absent, field.owner, &mut |m| {
                m.remove(field.key);
            });
        }
    }
    (nulled, removed, absent)
}

#[test]
fn render_takes_every_nilable_field_null_and_every_optional_field_absent() {
    let (nulled, removed, absent) = variants();
    let nulled_out = stdout("nulled", render(&write("nulled.json", &nulled.to_string())));
    assert!(nulled_out.contains("\"kind\": \"Pod\""), "{nulled_out}");
    let removed_out = stdout("removed", render(&write("removed.json", &removed.to_string())));
    assert_eq!(nulled_out, removed_out, "null and absent render differently");
    let absent_out = stdout("absent", render(&write("absent.json", &absent.to_string())));
    assert!(absent_out.contains("\"kind\": \"Pod\""), "{absent_out}");

    let everything_null = r#"{"pipeline":null,"network":null,"volume":null,"secrets":null}"#;
    stdout("all null", render(&write("all-null.json", everything_null)));

    let go = stdout("go minimal", render(&write("go.json", &go_minimal())));
    assert!(go.contains("wp-01jgomin000000000000000000"), "{go}");
}

#[test]
fn a_bad_field_is_named_by_its_path_without_its_value() {
    let mut v = full();
    v["pipeline"][0]["steps"][0]["ports"] = json!([{"number": "s3cr3t-port"}]);
    let out = render(&write("bad.json", &v.to_string()));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pipeline[0].steps[0].ports[0].number"), "{err}");
    assert!(!err.contains("s3cr3t"), "{err}");
}

#[test]
fn null_step_options_are_no_options_as_in_mapstructure() {
    let step = |opts: Value| {
        json!({"pipeline": [{"steps": [{"name": "a", "uuid": "01JOPTS", "image": "alpine:3",
            "auth_config": {}, "backend_options": opts}]}], "volume": "wp_01jopts_1_default"})
    };
    let nulls = json!({"kubernetes": {"resources": null, "labels": null, "tolerations": null,
        "securityContext": {"runAsUser": null, "privileged": null}, "nodeSelector": null,
        "secrets": null, "runtimeClassName": null, "serviceAccountName": null, "affinity": null}});
    let with_nulls = render(&write("opts-null.json", &step(nulls).to_string()));
    let without = render(&write("opts-none.json", &step(json!({"kubernetes": null})).to_string()));
    assert_eq!(
        String::from_utf8_lossy(&with_nulls.stderr),
        "",
        "no warning for a null option"
    );
    assert_eq!(stdout("nulls", with_nulls), stdout("none", without));
}

/// Issue 14: a decoding error never shows the value it refuses (a payload carries secrets).
/// Every field of the table gets values of each wrong kind that hold a marker, as a string
/// and as a number (serde's own messages quote both); the error names the field, never the
/// marker.
#[test]
fn no_decoding_error_shows_the_value_it_refuses() {
    const TEXT: &str = "wp-marker-5ecret";
    const NUMBER: i64 = 867_530_999;
    fn wrong(go: Go) -> Vec<Value> {
        match go {
            Go::String => vec![json!(NUMBER), json!([TEXT]), json!({ "k": TEXT })],
            Go::Bool | Go::Int => vec![json!(TEXT), json!([NUMBER])],
            Go::Struct(_) | Go::Slice(_) | Go::Map(_) => vec![json!(TEXT), json!(NUMBER)],
            Go::Ptr(inner) => wrong(*inner),
            Go::Any => Vec::new(),
        }
    }
    let mut refused = 0;
    for field in FIELDS {
        for bad in wrong(field.go) {
            let mut v = full();
            each_object(&mut v, field.owner, &mut |m| {
                m.insert(field.key.into(), bad.clone());
            });
            let Err(e) = go::json::from_slice::<WorkflowConfig>(v.to_string().as_bytes()) else {
                continue;
            };
            refused += 1;
            let text = woodpecker_k8s_agent::error_chain::one_line(&e);
            assert!(text.contains(field.key), "{}.{}: {text}", field.owner, field.key);
            for marker in [TEXT.to_string(), NUMBER.to_string(), "5ecret".into()] {
                assert!(!text.contains(&marker), "{}.{} = {bad}: {text}", field.owner, field.key);
            }
        }
    }
    assert!(refused > 2 * FIELDS.len(), "only {refused} wrong values refused");
}
