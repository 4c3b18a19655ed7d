//! Log streams go on a connection of their own, spoken without hyper (kube's `h1`): the same
//! TLS variants, proxy, credentials and errors as every other call, and every way an HTTP/1.1
//! reply can frame its body, against a plain server that writes its reply a few bytes at a
//! time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Secret;
use kube::config::AuthConfig;
use kube::params::LogParams;
use sim::ScriptRule;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{connect_proxy, follow_to_end, plain_http_pods, pod, pods_with};
use crate::common::start_sim;

#[tokio::test]
async fn a_log_is_read_over_every_tls_variant_and_through_a_proxy() {
    let sim = start_sim().await;
    let other = start_sim().await;
    let want: Vec<String> = (0..500)
        .map(|i| format!("line {i:03} of a log read on its own"))
        .collect();
    sim.script(ScriptRule::name("own").logs(want.clone()));
    let base = sim.kube_config();
    pods_with(base.clone()).create(&pod("own", "o")).await.unwrap();

    let mut named = base.clone();
    named.tls.server_name = Some("localhost".into());
    let mut insecure = base.clone();
    insecure.tls.ca_pem = None;
    insecure.tls.insecure_skip_verify = true;
    let (cert, key) = sim.client_certificate("alice", &["system:masters"]).unwrap();
    let mut mtls = base.clone();
    mtls.auth = AuthConfig::ClientCertificate;
    mtls.tls.client_cert_pem = Some(cert.into_bytes());
    mtls.tls.client_key_pem = Some(Secret::new(key));
    let (proxy, tunnels) = connect_proxy().await;
    let mut proxied = base.clone();
    proxied.proxy_url = Some(proxy.parse().unwrap());
    for (what, cfg) in [
        ("the CA, by IP SAN", base.clone()),
        ("tls-server-name", named.clone()),
        ("insecure", insecure),
        ("a client certificate", mtls),
        ("a CONNECT proxy", proxied),
    ] {
        let got = follow_to_end(&pods_with(cfg), "own", Duration::from_secs(10)).await;
        assert_eq!(got, want, "{what}");
    }
    let tunnels = tunnels.lock().unwrap().clone();
    assert!(!tunnels.is_empty(), "the log went around the proxy");
    assert!(
        tunnels.iter().all(|t| *t == format!("CONNECT {} HTTP/1.1", sim.addr())),
        "{tunnels:?}"
    );

    // Verification failures are as final on a log's connection as on any other.
    let params = LogParams {
        container: Some("step".into()),
        ..Default::default()
    };
    let mut wrong_ca = base.clone();
    wrong_ca.tls.ca_pem = other.kube_config().tls.ca_pem;
    named.tls.server_name = Some("kubernetes.invalid".into());
    for cfg in [wrong_ca, named] {
        let err = pods_with(cfg).log_stream("own", &params).await.unwrap_err();
        assert!(err.is_tls() && !err.is_transport(), "{err}");
    }
    // Without the client certificate the server does not know us, on this connection too.
    let mut nobody = base;
    nobody.auth = AuthConfig::ClientCertificate;
    let err = pods_with(nobody).log_stream("own", &params).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    other.shutdown().await;
    sim.shutdown().await;
}

/// A plain-HTTP server that answers the n-th connection's request with `replies[n]` (the last
/// one for any later connection), written `piece` bytes at a time, then closes. Records each
/// request head.
async fn scripted_server(replies: Vec<Vec<u8>>, piece: usize) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut conn, _)) = listener.accept().await {
            let reply = replies[n.min(replies.len() - 1)].clone();
            n += 1;
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let Ok(b) = conn.read_u8().await else { return };
                    head.push(b);
                }
                seen.lock().unwrap().push(String::from_utf8(head).unwrap());
                for part in reply.chunks(piece) {
                    if conn.write_all(part).await.is_err() {
                        return;
                    }
                    conn.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            });
        }
    });
    (format!("http://{addr}"), heads)
}

/// Reads the whole body of `p`'s log from a server that replies `reply`: the bytes read
/// before an error, the error, the request heads the server saw and its address.
async fn read_reply(reply: &[u8], piece: usize) -> (String, Option<kube::Error>, Vec<String>, String) {
    let (server, heads) = scripted_server(vec![reply.to_vec()], piece).await;
    let api = plain_http_pods(&server, AuthConfig::None);
    let params = LogParams {
        container: Some("step".into()),
        ..Default::default()
    };
    let mut got = Vec::new();
    let mut stream = match api.log_stream("p", &params).await {
        Ok(stream) => stream,
        Err(e) => return (String::new(), Some(e), heads.lock().unwrap().clone(), server),
    };
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .unwrap()
        {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    assert_eq!(stream.received(), got.len() as u64);
    let heads = heads.lock().unwrap().clone();
    (String::from_utf8(got).unwrap(), err, heads, server)
}

#[tokio::test]
async fn a_log_reply_is_read_whole_however_its_body_is_framed() {
    let body = "first line\nsecond line\nthird, the last\n";
    let chunked = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
        b;ext=1\r\nfirst line\n\r\nC\r\nsecond line\n\r\n10\r\nthird, the last\n\r\n0\r\nX-Trailer: t\r\n\r\n";
    let length = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let close = format!("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{body}");
    let continued = format!("HTTP/1.1 100 Continue\r\n\r\n{chunked}");
    for (what, reply) in [
        ("chunked", chunked.to_string()),
        ("content-length", length),
        ("until close", close),
        ("after a 100 Continue", continued),
    ] {
        for piece in [1, 7, 4096] {
            let (got, err, heads, server) = read_reply(reply.as_bytes(), piece).await;
            assert!(err.is_none(), "{what}, pieces of {piece}: {err:?}");
            assert_eq!(got, body, "{what}, pieces of {piece}");
            let head = &heads[0];
            assert!(
                head.starts_with("GET /api/v1/namespaces/woodpecker/pods/p/log?container=step HTTP/1.1\r\n"),
                "{head}"
            );
            let host = server.strip_prefix("http://").unwrap();
            assert!(head.contains(&format!("\r\nHost: {host}\r\n")), "{head}");
            assert!(head.contains("accept: application/json\r\n"), "{head}");
            assert!(head.contains("user-agent: woodpecker-k8s-agent/"), "{head}");
            assert!(!head.to_ascii_lowercase().contains("authorization"), "{head}");
        }
    }
}

#[tokio::test]
async fn a_log_reply_cut_short_is_an_error_after_what_came_whole() {
    let chunked_cut = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nfirst line\n\r\n20\r\nsecond";
    let length_cut = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst line\nsecond";
    let head_cut = "HTTP/1.1 200 OK\r\nContent-Le";
    let bad_framing = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nfirst line\nXX";
    for (what, reply, before) in [
        ("in a chunk", chunked_cut, "first line\nsecond"),
        ("before the length", length_cut, "first line\nsecond"),
        ("in the head", head_cut, ""),
        ("in the framing", bad_framing, "first line\n"),
    ] {
        let (got, err, ..) = read_reply(reply.as_bytes(), 5).await;
        let err = err.unwrap_or_else(|| panic!("{what}: a cut reply read as whole"));
        assert!(err.is_transport(), "{what}: {err}");
        assert_eq!(got, before, "{what}");
    }
}

#[tokio::test]
async fn a_log_refused_keeps_the_servers_reason_and_a_401_asks_for_credentials_again() {
    let status = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"container \"step\" in pod \"p\" is waiting to start: ContainerCreating","reason":"BadRequest","code":400}"#;
    let refused = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{status}\r\n0\r\n\r\n",
        status.len()
    );
    let (_, err, heads, _) = read_reply(refused.as_bytes(), 9).await;
    let err = err.expect("a 400 read as a log");
    assert!(
        err.to_string().contains("is waiting to start: ContainerCreating"),
        "{err}"
    );
    assert_eq!(heads.len(), 1, "a 400 is not retried");

    let unauthorized = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;
    let replies = vec![
        format!(
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: {}\r\n\r\n{unauthorized}",
            unauthorized.len()
        )
        .into_bytes(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n".to_vec(),
    ];
    let (server, heads) = scripted_server(replies, 4).await;
    let api = plain_http_pods(&server, AuthConfig::Token(Secret::new("a-token")));
    let mut stream = api.log_stream("p", &LogParams::default()).await.unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = stream.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, b"ok\n");
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(
        heads.iter().all(|h| h.contains("authorization: Bearer a-token\r\n")),
        "{heads:?}"
    );
}
