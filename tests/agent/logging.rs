//! The agent's own log, from the shipped binary: zerolog JSON lines by default, and
//! `WOODPECKER_LOG_LEVEL`, `WOODPECKER_DEBUG_PRETTY`, `WOODPECKER_DEBUG_NOCOLOR` and
//! `WOODPECKER_LOG_FILE` as the Go agent reads them; a backend warning goes through the same
//! log. Most cases end at start-up (no cluster configured), which makes them quick.

use sim::{FaultReply, RequestMatch, ScriptRule, Times};

use super::e2e::{BACKEND_ENV, leftovers, sigterm};
use super::startup::agent_command;
use super::*;

/// Runs the agent until it stops for want of a cluster: (exit code, stdout, stderr).
fn until_no_cluster(extra: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut env = vec![("WOODPECKER_AGENT_SECRET", "x")];
    env.extend_from_slice(extra);
    let out = agent_command(&env).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[test]
fn json_lines_by_default_with_zerolog_fields() {
    let (code, stdout, stderr) = until_no_cluster(&[("WOODPECKER_LOG_ENTRY_STREAM_BUFFER_SIZE", "10")]);
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    let lines = json_lines(&stderr);
    let messages: Vec<&str> = lines.iter().map(|l| l["message"].as_str().unwrap()).collect();
    assert_eq!(messages[..2], ["log level: info", "Starting Woodpecker agent"]);
    assert_eq!(lines[1]["version"], env!("CARGO_PKG_VERSION"));
    // The ignored variable, named with its reason in one warning line.
    let ignored: Vec<_> = lines.iter().filter(|l| l["level"] == "warn").collect();
    assert_eq!(ignored.len(), 1, "{stderr}");
    assert!(
        ignored[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("ignoring WOODPECKER_LOG_ENTRY_STREAM_BUFFER_SIZE (")
    );
    let last = lines.last().unwrap();
    assert_eq!(
        (&last["level"], &last["message"]),
        (&"fatal".into(), &"error running agent".into())
    );
    assert!(last["error"].as_str().unwrap().contains("no Kubernetes configuration"));
    // zerolog's key order: level, the event's fields, time, message; no caller above debug.
    let raw = stderr.lines().last().unwrap();
    assert!(
        raw.starts_with(r#"{"level":"fatal","error":""#) && raw.contains(r#"","time":""#),
        "{raw}"
    );
    assert!(lines.iter().all(|l| l.get("caller").is_none()));
}

#[test]
fn the_log_level_filters_as_zerolog() {
    let (_, _, stderr) = until_no_cluster(&[("WOODPECKER_LOG_LEVEL", "error")]);
    let levels: Vec<_> = json_lines(&stderr).into_iter().map(|l| l["level"].clone()).collect();
    assert_eq!(levels, ["fatal"]);
    let (_, _, stderr) = until_no_cluster(&[("WOODPECKER_LOG_LEVEL", "debug")]);
    let lines = json_lines(&stderr);
    assert!(
        lines
            .iter()
            .all(|l| l["caller"].as_str().is_some_and(|c| c.contains(".rs:")))
    );
    // Empty is zerolog's "no level": nothing at all, as with the Go agent.
    let (code, stdout, stderr) = until_no_cluster(&[("WOODPECKER_LOG_LEVEL", "")]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (Some(1), "", ""));
    // A level zerolog does not know stops the agent, in a JSON line.
    let (code, _, stderr) = until_no_cluster(&[("WOODPECKER_LOG_LEVEL", "warning")]);
    assert_eq!(code, Some(1));
    let lines = json_lines(&stderr);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("WOODPECKER_LOG_LEVEL=\"warning\"")
    );
}

#[test]
fn pretty_lines_with_and_without_colour() {
    let (_, _, plain) = until_no_cluster(&[
        ("WOODPECKER_DEBUG_PRETTY", "true"),
        ("WOODPECKER_DEBUG_NOCOLOR", "true"),
    ]);
    for line in plain.lines() {
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(time.ends_with("AM") || time.ends_with("PM"), "{line}");
        assert!(["INF ", "WRN ", "FTL "].iter().any(|l| rest.starts_with(l)), "{line}");
    }
    assert!(
        plain
            .lines()
            .last()
            .unwrap()
            .contains("FTL error running agent error=\""),
        "{plain}"
    );
    assert!(!plain.contains('\x1b'));
    // An empty NOCOLOR is false: colours (stdout is not a terminal, which would turn them off).
    let (_, _, coloured) = until_no_cluster(&[("WOODPECKER_DEBUG_PRETTY", "1"), ("WOODPECKER_DEBUG_NOCOLOR", "")]);
    assert!(coloured.contains("\x1b[32mINF\x1b[0m"), "{coloured}");
}

#[test]
fn the_log_file_gets_the_lines() {
    let dir = temp_dir("log-file");
    let path = dir.join("agent.log");
    std::fs::write(&path, "kept\n").unwrap();
    let (code, stdout, stderr) = until_no_cluster(&[("WOODPECKER_LOG_FILE", path.to_str().unwrap())]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (Some(1), "", ""));
    let text = std::fs::read_to_string(&path).unwrap();
    let (kept, lines) = text.split_once('\n').unwrap();
    assert_eq!(kept, "kept", "appended, not truncated");
    assert_eq!(json_lines(lines).last().unwrap()["level"], "fatal");
    let (_, stdout, stderr) = until_no_cluster(&[("WOODPECKER_LOG_FILE", "stdout")]);
    assert_eq!(stderr, "");
    assert_eq!(json_lines(&stdout).last().unwrap()["message"], "error running agent");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_backend_warning_is_a_log_line_at_its_level() {
    let sim = crate::common::start_sim().await;
    // The first watch of the shared pod watch is refused: the backend warns, then recovers.
    sim.faults().fail(
        RequestMatch::path("/pods").watch(true),
        FaultReply::Forbidden {
            message: "pods is forbidden: watch refused for this test".into(),
        },
        Times::Once,
    );
    sim.script(ScriptRule::name("wp-01j251a").logs(["ok"]));
    let server = Server::start(16).await;
    server.state.push(workflow("251", &[("a", &["true"])], &[]));
    let dir = temp_dir("backend-warning");
    let (addr, conf, kubeconfig) = (
        server.addr.to_string(),
        dir.join("agent.conf").display().to_string(),
        sim.kubeconfig_path().display().to_string(),
    );
    let mut env = vec![
        ("WOODPECKER_SERVER", addr.as_str()),
        ("WOODPECKER_AGENT_SECRET", server.state.secret.as_str()),
        ("WOODPECKER_AGENT_CONFIG_FILE", conf.as_str()),
        ("WOODPECKER_HEALTHCHECK_ADDR", "127.0.0.1:0"),
        ("WOODPECKER_LOG_LEVEL", "warn"),
        ("KUBECONFIG", kubeconfig.as_str()),
    ];
    env.extend(BACKEND_ENV);
    let child = tokio::process::Command::from(agent_command(&env))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    server.state.until(60, "Done", |c| done(c, "251")).await;
    sigterm(&child);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines = json_lines(&stderr);
    let warning = lines
        .iter()
        .find(|l| l["message"] == "the shared pod watch of namespace woodpecker failed (retrying)")
        .unwrap_or_else(|| panic!("no watch warning in {stderr}"));
    assert_eq!(warning["level"], "warn");
    assert!(
        warning["error"]
            .as_str()
            .unwrap()
            .contains("watch refused for this test"),
        "{warning}"
    );
    assert!(lines.iter().all(|l| l["level"] != "info"), "{stderr}");
    assert_eq!(leftovers(&sim).await, Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
    sim.shutdown().await;
}
