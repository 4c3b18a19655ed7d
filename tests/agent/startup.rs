//! Startup and the edges around it: the version check, a wrong secret, the persisted agent
//! id, TLS with and without verification, the health endpoint and metrics.

use super::*;
#[tokio::test]
async fn version_mismatch_is_a_clear_error() {
    let server = Server::start(14).await;
    let dir = temp_dir("version");
    let err = Agent::start(settings(&server, &dir, &[]), fake::runner())
        .await
        .err()
        .expect("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("GRPC version mismatch") && msg.contains("protocol 14"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn wrong_secret_fails_at_start_without_printing_it() {
    let server = Server::start(16).await;
    let dir = temp_dir("secret");
    let s = settings(&server, &dir, &[("WOODPECKER_AGENT_SECRET", "not-the-secret")]);
    let err = Agent::start(s, fake::runner()).await.err().expect("must fail");
    let mut chain = err.to_string();
    let mut src = std::error::Error::source(&err);
    while let Some(e) = src {
        chain.push_str(&format!(": {e}"));
        src = e.source();
    }
    assert!(chain.contains("UNAUTHENTICATED"), "{chain}");
    assert!(!chain.contains("not-the-secret"), "{chain}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn agent_id_is_reused_across_restarts() {
    let server = Server::start(16).await;
    let dir = temp_dir("id");
    std::fs::write(dir.join("agent.conf"), "{\"agent_id\": 42}").unwrap();
    let agent = Agent::start(settings(&server, &dir, &[]), fake::runner())
        .await
        .unwrap();
    assert_eq!(server.state.calls()[0], Call::Auth { agent_id: 42 });
    drop(agent);
    let _ = std::fs::remove_dir_all(dir);
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn health_endpoint_and_metrics() {
    let server = Server::start(16).await;
    server
        .state
        .push(workflow("91", &[("a", &["echo x", "sleep 30000"])], &[]));
    let extra = [
        ("WOODPECKER_HEALTHCHECK", "true"),
        ("WOODPECKER_HEALTHCHECK_ADDR", "127.0.0.1:0"),
    ];
    let agent = start(&server, "health", &extra, fake::runner()).await;
    let addr = agent.health.expect("health endpoint");
    // `agent ping` (the image's healthcheck) against it, and against nothing.
    let ping = |addr: String| {
        agent_command(&[("WOODPECKER_HEALTHCHECK_ADDR", &addr)])
            .arg("ping")
            .output()
            .unwrap()
    };
    server
        .state
        .until(10, "the first line", |c| flow(c, "91").iter().any(|l| l == "log a 0 x"))
        .await;
    assert!(http_get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
    let ok = tokio::task::spawn_blocking(move || ping(addr.to_string()))
        .await
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let bad = tokio::task::spawn_blocking(move || ping(free.to_string()))
        .await
        .unwrap();
    // As the Go agent: a fatal log line and exit 1 (Docker's "unhealthy").
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("connect to the health endpoint"));
    let stats = http_get(addr, "/stats").await;
    assert!(
        stats.contains("\"running_count\":1") && stats.contains("\"repository\":\"octo/hello\""),
        "{stats}"
    );
    assert!(http_get(addr, "/version").await.contains("\"version\""));
    let metrics = http_get(addr, "/metrics").await;
    let running = metrics
        .lines()
        .find(|l| l.starts_with("woodpecker_agent_workflows_running "))
        .unwrap();
    assert_ne!(running, "woodpecker_agent_workflows_running 0", "{metrics}");
    assert!(metrics.contains("# TYPE woodpecker_agent_steps_started_total counter"));
    // ReportHealth runs on its own.
    server
        .state
        .until(5, "a health report", |c| c.contains(&Call::Health))
        .await;
    server.state.cancel("91");
    server.state.until(10, "Done", |c| done(c, "91")).await;
    agent.stop().await;
}

#[tokio::test]
async fn tls_with_and_without_verification() {
    let server = Server::start_tls().await;
    let dir = temp_dir("tls");
    // Verifying (the default): the self-signed certificate is refused, after the connect retries.
    let s = settings(&server, &dir, &[("WOODPECKER_GRPC_SECURE", "true")]);
    let err = Agent::start(s, fake::runner()).await.err().expect("must refuse");
    let mut chain = err.to_string();
    let mut src = std::error::Error::source(&err);
    while let Some(e) = src {
        chain.push_str(&format!(": {e}"));
        src = e.source();
    }
    assert!(
        chain.contains("UNAVAILABLE") && chain.to_lowercase().contains("certificate"),
        "{chain}"
    );
    assert!(server.state.calls().is_empty());
    // The deprecated WOODPECKER_GRPC_VERIFY=false is, as in the Go agent, "do not skip": refused.
    let s = settings(
        &server,
        &dir,
        &[("WOODPECKER_GRPC_SECURE", "true"), ("WOODPECKER_GRPC_VERIFY", "false")],
    );
    assert!(Agent::start(s, fake::runner()).await.is_err());
    // WOODPECKER_GRPC_SKIP_VERIFY=true, and the deprecated WOODPECKER_GRPC_VERIFY=true (the Go
    // agent's same skip switch): the same server is accepted and a workflow runs over TLS.
    for (n, var) in [(95, "WOODPECKER_GRPC_SKIP_VERIFY"), (96, "WOODPECKER_GRPC_VERIFY")] {
        let id = n.to_string();
        server.state.push(workflow(&id, &[("a", &["echo over tls"])], &[]));
        let agent = start(
            &server,
            "tls",
            &[("WOODPECKER_GRPC_SECURE", "true"), (var, "true")],
            fake::runner(),
        )
        .await;
        server.state.until(10, "Done", |c| done(c, &id)).await;
        assert_eq!(
            flow(&server.state.calls(), &id),
            [
                "init",
                "start a",
                "log a 0 over tls",
                "end a 0",
                "done canceled=false error=\"\""
            ],
            "{var}"
        );
        agent.stop().await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn connect_retry_count_is_the_number_of_attempts() {
    // A server that takes each connection and drops it: every Auth fails as UNAVAILABLE.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    let acceptor = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            count.fetch_add(1, SeqCst);
            drop(conn);
        }
    });
    let server = Server::start(16).await;
    let dir = temp_dir("retry-count");
    for attempts in [1, 3] {
        accepted.store(0, SeqCst);
        let mut s = settings(
            &server,
            &dir,
            &[("WOODPECKER_CONNECT_RETRY_COUNT", &attempts.to_string())],
        );
        s.server = addr.to_string();
        let err = Agent::start(s, fake::runner())
            .await
            .err()
            .expect("nothing to connect to");
        assert!(err.to_string().contains("connect to the Woodpecker server"), "{err}");
        assert_eq!(
            accepted.load(SeqCst),
            attempts,
            "WOODPECKER_CONNECT_RETRY_COUNT={attempts}"
        );
    }
    acceptor.abort();
    let _ = std::fs::remove_dir_all(dir);
}

pub(super) fn agent_command(env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_woodpecker-k8s-agent"));
    cmd.arg("agent")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn binary_refuses_bad_settings_naming_the_variable() {
    // As `log.Fatal` in the Go agent: the last line is a fatal JSON log line, exit status 1.
    let fatal = |env: &[(&str, &str)]| {
        let out = agent_command(env).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let last: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
        assert_eq!(
            (&last["level"], &last["message"]),
            (&"fatal".into(), &"error running agent".into())
        );
        last["error"].as_str().unwrap().to_owned()
    };
    let err = fatal(&[("WOODPECKER_AGENT_SECRET", "x"), ("WOODPECKER_MAX_WORKFLOWS", "many")]);
    assert!(err.contains("WOODPECKER_MAX_WORKFLOWS=\"many\" is not valid"), "{err}");
    assert!(fatal(&[]).contains("WOODPECKER_AGENT_SECRET is not set"));
}

#[tokio::test]
async fn single_workflow_mode_stops_after_one_workflow() {
    let server = Server::start(16).await;
    server.state.push(workflow("97", &[("a", &["echo one"])], &[]));
    server.state.push(workflow("98", &[("a", &["echo two"])], &[]));
    let dir = temp_dir("single");
    let s = settings(&server, &dir, &[("WOODPECKER_AGENT_SINGLE_WORKFLOW", "true")]);
    let agent = Agent::start(s, fake::runner()).await.unwrap();
    // No shutdown from outside: the agent stops by itself once its one workflow is done.
    let (_trigger, shutdown) = shutdown::channel();
    tokio::time::timeout(Duration::from_secs(20), agent.run(shutdown))
        .await
        .expect("the agent stops after one workflow");
    let calls = server.state.calls();
    assert!(done(&calls, "97") && !calls.iter().any(|c| matches!(c, Call::Init(w, _) if w == "98")));
    assert_eq!(calls.iter().filter(|c| matches!(c, Call::Next(_))).count(), 1);
    let _ = std::fs::remove_dir_all(dir);
}
