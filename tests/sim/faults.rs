//! Fault injection (status replies, resets, delays, cut streams, token expiry) and the request record.

use std::time::{Duration, Instant};

use sim::{FaultReply, RequestMatch, ScriptRule, Times};

use super::{NS, phase, pod, pods_path};
use crate::common::{Next, Raw, start_sim, wait_pod};

#[tokio::test]
async fn status_faults_answer_the_next_matching_requests() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    sim.faults().fail(
        RequestMatch::path("/pods").method("GET"),
        FaultReply::TooManyRequests { retry_after: 2 },
        Times::Once,
    );
    let r = raw.get(&pods_path()).await;
    assert_eq!(
        (
            r.status,
            r.headers.get("retry-after").map(|v| v.to_str().unwrap().to_string())
        ),
        (429, Some("2".into()))
    );
    assert_eq!(r.json()["details"]["retryAfterSeconds"], 2);
    assert_eq!(raw.get(&pods_path()).await.status, 200, "only once");
    sim.faults()
        .fail(RequestMatch::any().method("POST"), FaultReply::Internal, Times::N(2));
    assert_eq!(raw.post(&pods_path(), &pod("a")).await.status, 500);
    assert_eq!(raw.post(&pods_path(), &pod("a")).await.status, 500);
    assert_eq!(raw.post(&pods_path(), &pod("a")).await.status, 201);
    sim.faults().fail(
        RequestMatch::any(),
        FaultReply::Unavailable { retry_after: Some(1) },
        Times::Once,
    );
    assert_eq!(raw.get(&pods_path()).await.status, 503);
    sim.faults().fail(RequestMatch::any(), FaultReply::Gone, Times::Once);
    assert_eq!(raw.get(&pods_path()).await.json()["reason"], "Expired");
    sim.faults().fail(
        RequestMatch::any(),
        FaultReply::Delay(Duration::from_millis(200)),
        Times::Once,
    );
    let t = Instant::now();
    assert_eq!(raw.get(&pods_path()).await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
    sim.faults().fail(RequestMatch::any(), FaultReply::Reset, Times::Once);
    // Raw panics on transport errors, so the request runs in a task whose failure we observe.
    let raw2 = raw.clone();
    let reset = tokio::spawn(async move { raw2.get(&format!("{}?reset=1", pods_path())).await });
    assert!(reset.await.is_err(), "a reset connection fails the request");

    // The record: method, path, query, status, watch.
    let recs = sim.requests();
    assert!(
        recs.iter()
            .any(|r| r.status == 429 && r.method == "GET" && r.path == pods_path())
    );
    assert!(
        recs.iter()
            .any(|r| r.status == 0 && r.param("reset").as_deref() == Some("1"))
    );
    sim.clear_requests();
    let _ = raw
        .lines(
            &format!(
                "{}?watch=1&timeoutSeconds=1&fieldSelector=metadata.name%3Da",
                pods_path()
            ),
            None,
        )
        .await;
    let recs = sim.requests();
    assert_eq!(recs.len(), 1);
    assert!(recs[0].watch && recs[0].param("fieldSelector").as_deref() == Some("metadata.name=a"));
    sim.shutdown().await;
}

#[tokio::test]
async fn token_expiry_and_renewal() {
    let sim = start_sim().await;
    let mut raw = Raw::new(&sim);
    sim.faults().expire_token();
    assert_eq!(raw.get(&pods_path()).await.status, 401);
    assert_eq!(raw.get(&pods_path()).await.status, 401, "until a new token is set");
    sim.faults().set_token("fresh-token");
    assert_eq!(raw.get(&pods_path()).await.status, 401, "the old token stays invalid");
    raw.token = Some("fresh-token".into());
    assert_eq!(raw.get(&pods_path()).await.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn watches_and_log_streams_are_cut() {
    let sim = start_sim().await;
    sim.script(ScriptRule::name("l").logs(["0123456789", "abcdefghij"]));
    let raw = Raw::new(&sim);
    raw.post(&pods_path(), &pod("l")).await;
    wait_pod(&sim, NS, "l", "Succeeded", |p| phase(p) == "Succeeded").await;
    sim.faults().cut_watches_after(1, false);
    let (_, mut w) = raw.lines(&format!("{}?watch=1", pods_path()), None).await;
    assert!(matches!(w.next(5).await, Next::Line(_)));
    assert_eq!(w.next(5).await, Next::Broken);
    // Only once: the next watch is whole.
    let (_, mut w) = raw
        .lines(&format!("{}?watch=1&timeoutSeconds=1", pods_path()), None)
        .await;
    assert!(matches!(w.next(5).await, Next::Line(_)));
    assert_eq!(w.next(5).await, Next::End);

    sim.faults().cut_logs_after(12, true);
    for _ in 0..2 {
        let (_, mut l) = raw.lines(&format!("{}/l/log", pods_path()), None).await;
        assert_eq!(l.next(5).await, Next::Line("0123456789".into()));
        assert_eq!(l.next(5).await, Next::Broken);
    }
    sim.faults().clear();
    let whole = raw.get(&format!("{}/l/log", pods_path())).await.text();
    assert_eq!(whole, "0123456789\nabcdefghij\n");
    sim.shutdown().await;
}
