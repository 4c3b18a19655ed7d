//! The kube client against the simulated cluster over real TLS: CRUD and every error reason,
//! TLS variants (CA with an IP SAN, tls-server-name, insecure, mutual TLS), a CONNECT proxy,
//! retries (429/503 with Retry-After, resets, timeouts) and a rotated token. Watches and logs
//! are in `client/streams.rs`.

// Watch and log streams across cuts, 410s and broken connections.
mod streams;
// Log streams on connections of their own: TLS variants, a proxy, credentials, body framings.
mod log_connections;
// TLS edges against a tiny server of our own: an X.509 v1 client certificate, final failures.
mod tls;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Secret;
use kube::config::{AuthConfig, Config, Impersonation};
use kube::params::Preconditions;
use kube::retry::BackoffConfig;
use kube::types::Pod;
use kube::{Api, Client, ClientOptions, DeleteParams, ListParams};
use serde_json::json;
use sim::Sim;
use sim::faults::{FaultReply, RequestMatch, Times};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::start_sim;

const NS: &str = "woodpecker";

/// A one-container pod, as a step's.
fn pod(name: &str, app: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "step", "image": "alpine:3.20"}]}
    }))
    .unwrap()
}

fn pods(sim: &Sim) -> Api<Pod> {
    Api::namespaced(Client::new(sim.kube_config()).unwrap(), NS)
}

fn fast_options() -> ClientOptions {
    let mut o = ClientOptions::default();
    o.retry.backoff = BackoffConfig {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
    };
    o
}

const FAST_BACKOFF: BackoffConfig = BackoffConfig {
    initial: Duration::from_millis(10),
    max: Duration::from_millis(100),
};

/// Statuses the sim answered for requests whose path ends with `suffix`.
fn statuses(sim: &Sim, method: &str, suffix: &str) -> Vec<u16> {
    sim.requests()
        .iter()
        .filter(|r| r.method == method && r.path.ends_with(suffix))
        .map(|r| r.status)
        .collect()
}

#[tokio::test]
async fn crud_and_error_reasons_over_tls() {
    let sim = start_sim().await;
    let api = pods(&sim);
    let created = api.create(&pod("crud-1", "crud")).await.unwrap();
    assert!(!created.metadata.uid.is_empty() && !created.metadata.resource_version.is_empty());

    let dup = api.create(&pod("crud-1", "crud")).await.unwrap_err();
    assert!(dup.is_already_exists(), "{dup}");
    assert!(dup.message().contains("already exists"), "{dup}");

    assert_eq!(api.get("crud-1").await.unwrap().metadata.uid, created.metadata.uid);
    assert!(api.get_opt("missing").await.unwrap().is_none());
    let missing = api.get("missing").await.unwrap_err();
    assert!(missing.is_not_found());
    // The client counts its own attempts: create, create (409), get, get_opt (404), get (404).
    let stats = api.client().stats();
    assert_eq!(
        (stats.requests, stats.errors, stats.watch_restarts),
        (5, 3, 0),
        "{stats:?}"
    );
    assert!(
        missing
            .to_string()
            .starts_with("GET /api/v1/namespaces/woodpecker/pods/missing: 404 NotFound"),
        "{missing}"
    );

    let list = api.list(&ListParams::labels("app=crud")).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(!list.metadata.resource_version.is_empty());

    let invalid = api.create(&pod("Bad_Name", "crud")).await.unwrap_err();
    assert!(invalid.is_invalid(), "{invalid}");

    let elsewhere: Api<Pod> = Api::namespaced(api.client().clone(), "no-such-namespace");
    assert!(elsewhere.create(&pod("x", "crud")).await.unwrap_err().is_not_found());

    let wrong_uid = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..DeleteParams::immediate()
    };
    let conflict = api.delete("crud-1", &wrong_uid).await.unwrap_err();
    assert!(conflict.is_conflict(), "{conflict}");

    sim.faults().fail(
        RequestMatch::path("/pods/crud-1").method("GET"),
        FaultReply::Gone,
        Times::Once,
    );
    assert!(api.get("crud-1").await.unwrap_err().is_gone());

    api.delete("crud-1", &DeleteParams::immediate()).await.unwrap();
    assert!(
        api.delete("crud-1", &DeleteParams::immediate())
            .await
            .unwrap_err()
            .is_not_found()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_bad_token_is_unauthorized_and_never_printed() {
    let sim = start_sim().await;
    let mut cfg = sim.kube_config();
    cfg.auth = AuthConfig::Token(Secret::new("wrong-token"));
    let err = pods_with(cfg).get("x").await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert!(!format!("{err} {err:?}").contains("wrong-token"));
    sim.shutdown().await;
}

#[tokio::test]
async fn every_request_acts_as_the_impersonated_user() {
    let sim = start_sim().await;
    let mut cfg = sim.kube_config();
    cfg.impersonate = Impersonation {
        user: Some("system:serviceaccount:woodpecker:woodpecker-agent".into()),
        groups: vec!["system:serviceaccounts".into()],
        ..Impersonation::default()
    };
    let api = pods_with(cfg.clone());
    api.create(&pod("as-agent", "imp")).await.unwrap();
    api.get("as-agent").await.unwrap();
    let users: Vec<String> = sim.requests().iter().map(|r| r.user.clone()).collect();
    assert_eq!(users.len(), 2, "{users:?}");
    assert!(
        users
            .iter()
            .all(|u| u == "system:serviceaccount:woodpecker:woodpecker-agent"),
        "{users:?}"
    );
    // Groups without a user: the apiserver refuses (and so we learn the headers went out).
    cfg.impersonate.user = None;
    let err = pods_with(cfg).get("as-agent").await.unwrap_err();
    assert!(err.to_string().contains("without impersonating a user"), "{err}");
    sim.shutdown().await;
}

/// Follows `name`'s log (container `step`) to its end, each line within `within`.
async fn follow_to_end(api: &Api<Pod>, name: &str, within: Duration) -> Vec<String> {
    let options = kube::logs::FollowOptions {
        backoff: FAST_BACKOFF,
        ..Default::default()
    };
    let mut follower = api.follow_log(name, "step", options);
    let mut got = Vec::new();
    while let Some(line) = tokio::time::timeout(within, follower.next_line())
        .await
        .expect("the follower stalled")
        .unwrap()
    {
        got.push(String::from_utf8(line.to_vec()).unwrap());
    }
    got
}

fn pods_with(cfg: Config) -> Api<Pod> {
    Api::namespaced(Client::with_options(cfg, fast_options()).unwrap(), NS)
}

#[tokio::test]
async fn tls_variants() {
    let sim = start_sim().await;
    let other = start_sim().await;
    let base = sim.kube_config();

    // The server is 127.0.0.1: the CA check matches the certificate's IP SAN.
    assert!(pods_with(base.clone()).get_opt("x").await.unwrap().is_none());

    let mut wrong_ca = base.clone();
    wrong_ca.tls.ca_pem = other.kube_config().tls.ca_pem;
    let err = pods_with(wrong_ca).get("x").await.unwrap_err();
    // Both sims' CAs carry the same name: the signature is what fails.
    assert!(err.is_tls(), "{err}");

    let mut named = base.clone();
    named.tls.server_name = Some("localhost".into());
    assert!(pods_with(named.clone()).get_opt("x").await.unwrap().is_none());
    named.tls.server_name = Some("kubernetes.invalid".into());
    let err = pods_with(named).get("x").await.unwrap_err();
    assert!(err.is_tls(), "{err}");
    assert!(
        err.to_string().contains("not valid for the name `kubernetes.invalid`"),
        "{err}"
    );

    let mut insecure = base.clone();
    insecure.tls.ca_pem = None;
    insecure.tls.insecure_skip_verify = true;
    assert!(pods_with(insecure).get_opt("x").await.unwrap().is_none());

    let (cert, key) = sim.client_certificate("alice", &["system:masters"]).unwrap();
    let mut mtls = base.clone();
    mtls.auth = AuthConfig::ClientCertificate;
    assert!(pods_with(mtls.clone()).get("x").await.unwrap_err().is_unauthorized());
    mtls.tls.client_cert_pem = Some(cert.into_bytes());
    mtls.tls.client_key_pem = Some(Secret::new(key));
    assert!(pods_with(mtls).get_opt("x").await.unwrap().is_none());

    let mut bad = base;
    bad.tls.ca_pem = Some(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n".to_vec());
    let err = Client::new(bad).unwrap_err();
    assert!(err.to_string().contains("certificate-authority-data"), "{err}");
    other.shutdown().await;
    sim.shutdown().await;
}

/// A minimal HTTP CONNECT proxy on 127.0.0.1:0; records the CONNECT lines it served.
async fn connect_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    head.push(inbound.read_u8().await.unwrap());
                }
                let head = String::from_utf8(head).unwrap();
                let target = head.split_whitespace().nth(1).unwrap().to_string();
                log.lock().unwrap().push(head.lines().next().unwrap().to_string());
                let mut outbound = tokio::net::TcpStream::connect(&target).await.unwrap();
                inbound
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

/// Pods of `sim` through a CONNECT proxy, and the proxy's record of its tunnels.
async fn proxied_pods(sim: &Sim) -> (Api<Pod>, Arc<Mutex<Vec<String>>>) {
    let (proxy, seen) = connect_proxy().await;
    let mut cfg = sim.kube_config();
    cfg.proxy_url = Some(proxy.parse().unwrap());
    (pods_with(cfg), seen)
}

#[tokio::test]
async fn through_a_connect_proxy_on_one_reused_connection() {
    let sim = start_sim().await;
    let (api, seen) = proxied_pods(&sim).await;
    api.create(&pod("via-proxy", "p")).await.unwrap();
    assert_eq!(api.get("via-proxy").await.unwrap().metadata.name, "via-proxy");
    api.list(&ListParams::labels("app=p")).await.unwrap();
    assert!(api.get_opt("nothing").await.unwrap().is_none());
    // Sequential calls reuse one pooled connection: one tunnel for four requests.
    let lines = seen.lock().unwrap().clone();
    assert_eq!(lines, [format!("CONNECT {} HTTP/1.1", sim.addr())]);
    sim.shutdown().await;
}

/// A burst of parallel calls (50 steps creating their pods) opens a connection per call;
/// afterwards the pool keeps only `POOL_IDLE` of them, not one idle TLS connection (about
/// 30 KB of buffers) per step of the widest burst for a minute.
#[tokio::test]
async fn after_a_burst_of_calls_the_pool_keeps_a_few_connections() {
    let sim = start_sim().await;
    let (api, seen) = proxied_pods(&sim).await;
    sim.faults().fail(
        RequestMatch::path("/pods/slow").method("GET"),
        FaultReply::Delay(Duration::from_millis(300)),
        Times::Always,
    );
    let burst = 12;
    for round in 1..=2 {
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..burst {
            let api = api.clone();
            calls.spawn(async move { api.get_opt("slow").await.unwrap() });
        }
        while let Some(done) = calls.join_next().await {
            assert!(done.unwrap().is_none());
        }
        let opened = seen.lock().unwrap().len();
        // Each round's calls overlap: one connection each, but for those kept from the last.
        let want = burst + (round - 1) * (burst - kube::client::POOL_IDLE);
        assert_eq!(opened, want, "round {round}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn retries_follow_retry_after_and_only_replay_reads() {
    let sim = start_sim().await;
    let api = pods_with(sim.kube_config());
    api.create(&pod("r-1", "r")).await.unwrap();
    sim.clear_requests();

    // 429 with Retry-After: 1 is waited out and retried.
    sim.faults().fail(
        RequestMatch::path("/pods/r-1").method("GET"),
        FaultReply::TooManyRequests { retry_after: 1 },
        Times::Once,
    );
    let start = Instant::now();
    api.get("r-1").await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert_eq!(statuses(&sim, "GET", "/pods/r-1"), [429, 200]);

    // 503 without Retry-After: no retry.
    sim.clear_requests();
    sim.faults().fail(
        RequestMatch::path("/pods/r-1").method("GET"),
        FaultReply::Unavailable { retry_after: None },
        Times::Once,
    );
    assert_eq!(api.get("r-1").await.unwrap_err().status().unwrap().code, 503);
    assert_eq!(statuses(&sim, "GET", "/pods/r-1"), [503]);

    // 503 with Retry-After on a POST: status retries apply to every verb.
    sim.clear_requests();
    sim.faults().fail(
        RequestMatch::path("/pods").method("POST"),
        FaultReply::Unavailable { retry_after: Some(1) },
        Times::Once,
    );
    api.create(&pod("r-2", "r")).await.unwrap();
    assert_eq!(statuses(&sim, "POST", "/pods"), [503, 201]);

    // A reset connection: a GET is replayed, a POST is not (it may have been applied).
    sim.clear_requests();
    sim.faults().fail(
        RequestMatch::path("/pods/r-1").method("GET"),
        FaultReply::Reset,
        Times::Once,
    );
    api.get("r-1").await.unwrap();
    assert_eq!(statuses(&sim, "GET", "/pods/r-1"), [0, 200]);
    sim.clear_requests();
    sim.faults().fail(
        RequestMatch::path("/pods").method("POST"),
        FaultReply::Reset,
        Times::Once,
    );
    let err = api.create(&pod("r-3", "r")).await.unwrap_err();
    assert!(err.is_transport(), "{err}");
    assert_eq!(statuses(&sim, "POST", "/pods"), [0]);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_slow_reply_times_out_and_the_read_is_retried() {
    let sim = start_sim().await;
    let mut options = fast_options();
    options.request_timeout = Duration::from_millis(300);
    let api: Api<Pod> = Api::namespaced(Client::with_options(sim.kube_config(), options.clone()).unwrap(), NS);
    sim.faults().fail(
        RequestMatch::path("/pods/slow").method("GET"),
        FaultReply::Delay(Duration::from_secs(2)),
        Times::Once,
    );
    let start = Instant::now();
    assert!(api.get_opt("slow").await.unwrap().is_none());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the retry did not cut the slow reply short"
    );

    options.retry.max_attempts = 1;
    let once: Api<Pod> = Api::namespaced(Client::with_options(sim.kube_config(), options).unwrap(), NS);
    sim.faults().fail(
        RequestMatch::path("/pods/slow").method("GET"),
        FaultReply::Delay(Duration::from_secs(2)),
        Times::Once,
    );
    let err = once.get("slow").await.unwrap_err();
    assert!(matches!(err, kube::Error::Timeout { .. }), "{err}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_rotated_token_file_is_reread_after_a_401() {
    let sim = start_sim().await;
    let dir = std::env::temp_dir().join(format!("client-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, format!("{}\n", sim.token())).unwrap();
    let mut cfg = sim.kube_config();
    cfg.auth = AuthConfig::TokenFile(file.clone());
    let api = pods_with(cfg);
    assert!(api.get_opt("x").await.unwrap().is_none());

    std::fs::write(&file, "rotated-token\n").unwrap();
    sim.faults().set_token("rotated-token");
    sim.clear_requests();
    assert!(api.get_opt("x").await.unwrap().is_none());
    assert_eq!(statuses(&sim, "GET", "/pods/x"), [401, 404]);
    std::fs::remove_dir_all(&dir).unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn a_403_status_is_forbidden_and_keeps_its_message() {
    let sim = start_sim().await;
    let message = "pods \"x\" is forbidden: User \"system:serviceaccount:woodpecker:agent\" cannot get resource \"pods\" in API group \"\" in the namespace \"woodpecker\"";
    sim.faults().fail(
        RequestMatch::path("/pods/x").method("GET"),
        FaultReply::Forbidden {
            message: message.into(),
        },
        Times::Once,
    );
    let err = pods_with(sim.kube_config()).get("x").await.unwrap_err();
    assert!(err.is_forbidden(), "{err}");
    assert!(!err.is_unauthorized() && !err.is_not_found(), "{err}");
    assert_eq!(err.message(), message);
    let status = err.status().expect("a Status from the body");
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"), "{status:?}");
    assert!(err.to_string().contains("403 Forbidden"), "{err}");
    sim.shutdown().await;
}

/// Reads one HTTP/1.1 request (head and `content-length` body); `None` at end of stream.
async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(conn.read_u8().await.ok()?);
    }
    let head = String::from_utf8(head).unwrap();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    conn.read_exact(&mut body).await.ok()?;
    Some(head.lines().next().unwrap().to_string())
}

/// A plain-HTTP server that answers `answered` requests per connection (keep-alive, a clean
/// end) and then closes the connection on the next request without a byte of reply: what a
/// client sees when the server closed an idle pooled connection just as it was reused (Go's
/// transport: "server closed idle connection", nothing of the request was taken). Records
/// `(connection, request line, answered)`.
async fn closing_server(answered: usize) -> (String, Arc<Mutex<Vec<(usize, String, bool)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut conn, _)) = listener.accept().await {
            n += 1;
            let seen = seen.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let Some(line) = read_request(&mut conn).await else {
                        return;
                    };
                    let answer = i < answered;
                    seen.lock().unwrap().push((n, line, answer));
                    if !answer {
                        return; // dropped: FIN, no reply
                    }
                    let body = serde_json::to_string(&pod("p", "a")).unwrap();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    conn.write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    (format!("http://{addr}"), log)
}

fn plain_http_pods(server: &str, auth: AuthConfig) -> Api<Pod> {
    let config = Config {
        server: server.parse().unwrap(),
        namespace: NS.into(),
        tls: Default::default(),
        proxy_url: None,
        auth,
        impersonate: Impersonation::default(),
        origin: Default::default(),
    };
    Api::namespaced(Client::with_options(config, fast_options()).unwrap(), NS)
}

/// A DELETE on a pooled connection that the server closed right after a clean reply got a
/// transport error and was not retried (the step became a failure). The request never reached
/// the server: it is retried for every verb, on a new connection, as Go's transport does.
#[tokio::test]
async fn a_request_on_a_reused_connection_the_server_closed_is_retried_for_every_verb() {
    let (server, log) = closing_server(1).await;
    let pods = plain_http_pods(&server, AuthConfig::None);
    pods.get("p").await.unwrap();
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    pods.create(&pod("p", "a")).await.unwrap();
    let seen = log.lock().unwrap().clone();
    let path = "/api/v1/namespaces/woodpecker/pods";
    assert_eq!(
        seen,
        [
            (1, format!("GET {path}/p HTTP/1.1"), true),
            (1, format!("DELETE {path}/p HTTP/1.1"), false),
            (2, format!("DELETE {path}/p HTTP/1.1"), true),
            (2, format!("POST {path} HTTP/1.1"), false),
            (3, format!("POST {path} HTTP/1.1"), true),
        ]
    );

    // On a fresh connection the same silence may mean the server took the request: a DELETE
    // is not retried (a GET still is, like any transport error).
    let (server, log) = closing_server(0).await;
    let pods = plain_http_pods(&server, AuthConfig::None);
    let err = pods.delete("p", &DeleteParams::default()).await.unwrap_err();
    assert!(err.is_transport(), "{err}");
    assert_eq!(log.lock().unwrap().len(), 1);
}
