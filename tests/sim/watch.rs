//! Watch: resourceVersion semantics, selector transitions, bookmarks, 410, Tables, expiry.

use std::time::Duration;

use serde_json::json;
use sim::SimConfig;

use super::{pod, pods_path};
use crate::common::{Next, Raw, fast_config, start_sim, start_sim_with};

fn rv(v: &serde_json::Value) -> u64 {
    v["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn watch_from_a_list_rv_sees_changes_strictly_after_it() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    raw.post(&pods_path(), &pod("before")).await;
    let list = raw.get(&pods_path()).await.json();
    let list_rv = rv(&list);
    let (status, mut w) = raw
        .lines(
            &format!(
                "{}?watch=1&resourceVersion={list_rv}&fieldSelector=metadata.name%3Dw1",
                pods_path()
            ),
            None,
        )
        .await;
    assert_eq!(status, 200);
    raw.post(&pods_path(), &pod("w1")).await;
    let ev = w.event(5).await;
    assert_eq!(
        (ev["type"].as_str(), ev["object"]["metadata"]["name"].as_str()),
        (Some("ADDED"), Some("w1"))
    );
    assert_eq!(ev["object"]["kind"], "Pod");
    let mut last = rv(&ev["object"]);
    assert!(last > list_rv);
    // MODIFIED events follow the kubelet until Succeeded; RVs increase.
    loop {
        let ev = w.event(5).await;
        assert_eq!(ev["type"], "MODIFIED");
        assert!(rv(&ev["object"]) > last);
        last = rv(&ev["object"]);
        if ev["object"]["status"]["phase"] == "Succeeded" {
            break;
        }
    }
    // Deletion of a finished pod: DELETED at once.
    raw.delete(
        &format!("{}/w1", pods_path()),
        Some(&json!({"propagationPolicy": "Background"})),
    )
    .await;
    let ev = w.event(5).await;
    assert_eq!(ev["type"], "DELETED");
    sim.shutdown().await;
}

#[tokio::test]
async fn watch_without_rv_replays_current_state_and_replays_history_from_an_old_rv() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    let first = raw.post(&pods_path(), &pod("h1")).await.json();
    let (_, mut w) = raw.lines(&format!("{}?watch=true", pods_path()), None).await;
    let ev = w.event(5).await;
    assert_eq!(
        (ev["type"].as_str(), ev["object"]["metadata"]["name"].as_str()),
        (Some("ADDED"), Some("h1"))
    );
    // From the creation RV - 1 the creation itself is replayed, then its modifications.
    let (_, mut w2) = raw
        .lines(
            &format!("{}?watch=true&resourceVersion={}", pods_path(), rv(&first) - 1),
            None,
        )
        .await;
    let ev = w2.event(5).await;
    assert_eq!((ev["type"].as_str(), rv(&ev["object"])), (Some("ADDED"), rv(&first)));
    sim.shutdown().await;
}

#[tokio::test]
async fn label_selector_transitions_become_added_and_deleted() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    let mut p = pod("lab");
    p["metadata"]["labels"] = json!({"keep": "no"});
    raw.post(&pods_path(), &p).await;
    let rv0 = sim.resource_version();
    let (_, mut w) = raw
        .lines(
            &format!("{}?watch=1&resourceVersion={rv0}&labelSelector=keep%3Dyes", pods_path()),
            None,
        )
        .await;
    let path = format!("{}/lab", pods_path());
    raw.call(
        http::Method::PATCH,
        &path,
        Some(&json!({"metadata": {"labels": {"keep": "yes"}}})),
    )
    .await;
    let ev = w.event(5).await;
    assert_eq!(ev["type"], "ADDED");
    raw.call(
        http::Method::PATCH,
        &path,
        Some(&json!({"metadata": {"labels": {"keep": "no"}}})),
    )
    .await;
    // Kubelet MODIFIED events may come in between while labelled yes; skip to the DELETED.
    loop {
        let ev = w.event(5).await;
        if ev["type"] == "DELETED" {
            assert_eq!(ev["object"]["metadata"]["labels"]["keep"], "no");
            break;
        }
        assert_eq!(ev["type"], "MODIFIED");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn bookmarks_and_timeout_seconds() {
    let sim = start_sim_with(SimConfig {
        bookmark_interval: Duration::from_millis(50),
        ..fast_config()
    })
    .await;
    let raw = Raw::new(&sim);
    let rv0 = sim.resource_version();
    let (_, mut w) = raw
        .lines(
            &format!(
                "{}?watch=1&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion={rv0}",
                pods_path()
            ),
            None,
        )
        .await;
    let ev = w.event(5).await;
    assert_eq!(ev["type"], "BOOKMARK");
    assert_eq!(ev["object"]["kind"], "Pod");
    assert!(rv(&ev["object"]) >= rv0);
    let started = std::time::Instant::now();
    loop {
        match w.next(5).await {
            Next::Line(l) => assert!(l.contains("BOOKMARK"), "{l}"),
            Next::End => break,
            Next::Broken => panic!("watch broke instead of ending at timeoutSeconds"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    sim.shutdown().await;
}

#[tokio::test]
async fn an_rv_older_than_the_history_window_gets_a_410_error_event() {
    let sim = start_sim_with(SimConfig {
        history_window: 5,
        ..fast_config()
    })
    .await;
    let raw = Raw::new(&sim);
    let old = sim.resource_version();
    for i in 0..4 {
        raw.post(
            &format!("/api/v1/namespaces/{}/secrets", super::NS),
            &json!({"metadata": {"name": format!("s{i}")}}),
        )
        .await;
    }
    for i in 4..8 {
        raw.post(
            &format!("/api/v1/namespaces/{}/secrets", super::NS),
            &json!({"metadata": {"name": format!("s{i}")}}),
        )
        .await;
    }
    let (status, mut w) = raw
        .lines(&format!("{}?watch=1&resourceVersion={old}", pods_path()), None)
        .await;
    assert_eq!(status, 200);
    let ev = w.event(5).await;
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(
        (ev["object"]["code"].as_u64(), ev["object"]["reason"].as_str()),
        (Some(410), Some("Expired"))
    );
    assert!(
        ev["object"]["message"]
            .as_str()
            .unwrap()
            .starts_with("too old resource version")
    );
    assert_eq!(w.next(5).await, Next::End);
    sim.shutdown().await;
}

#[tokio::test]
async fn table_watch_sends_one_row_tables() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    let rv0 = sim.resource_version();
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let (_, mut w) = raw
        .lines(&format!("{}?watch=1&resourceVersion={rv0}", pods_path()), Some(accept))
        .await;
    raw.post(&pods_path(), &pod("t1")).await;
    let ev = w.event(5).await;
    assert_eq!(ev["object"]["kind"], "Table");
    assert_eq!(ev["object"]["rows"][0]["cells"][0], "t1");
    assert_eq!(ev["object"]["rows"][0]["object"]["metadata"]["namespace"], super::NS);
    sim.shutdown().await;
}

#[tokio::test]
async fn send_initial_events_ends_the_initial_state_with_a_marked_bookmark() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    raw.post(&pods_path(), &pod("i1")).await;
    let q =
        "watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&resourceVersion=";
    let (_, mut w) = raw.lines(&format!("{}?{q}", pods_path()), None).await;
    let ev = w.event(5).await;
    assert_eq!(
        (ev["type"].as_str(), ev["object"]["metadata"]["name"].as_str()),
        (Some("ADDED"), Some("i1"))
    );
    let ev = w.event(5).await;
    assert_eq!(ev["type"], "BOOKMARK");
    assert_eq!(
        ev["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn open_watches_can_be_expired_and_history_compacted() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    let rv0 = sim.resource_version();
    let (_, mut w) = raw
        .lines(&format!("{}?watch=1&resourceVersion={rv0}", pods_path()), None)
        .await;
    raw.post(&pods_path(), &pod("c1")).await;
    assert_eq!(w.event(5).await["type"], "ADDED");
    sim.faults().expire_open_watches();
    sim.compact_history();
    loop {
        let ev = w.event(5).await;
        if ev["type"] == "ERROR" {
            assert_eq!(ev["object"]["code"], 410);
            break;
        }
    }
    assert_eq!(w.next(5).await, Next::End);
    // Resuming from the old RV fails too; from the current one works.
    let (_, mut w) = raw
        .lines(&format!("{}?watch=1&resourceVersion={rv0}", pods_path()), None)
        .await;
    assert_eq!(w.event(5).await["object"]["reason"], "Expired");
    let now = sim.resource_version();
    let (_, mut w) = raw
        .lines(&format!("{}?watch=1&resourceVersion={now}", pods_path()), None)
        .await;
    raw.post(&pods_path(), &pod("c2")).await;
    // The kubelet goes on with c1 meanwhile (binding, status): its MODIFIED events may come
    // first on a busy box. c2's first event must be its ADDED.
    let ev = loop {
        let ev = w.event(5).await;
        if ev["object"]["metadata"]["name"] != "c1" {
            break ev;
        }
        assert_eq!(ev["type"], "MODIFIED", "{ev}");
    };
    assert_eq!(
        (ev["type"].as_str(), ev["object"]["metadata"]["name"].as_str()),
        (Some("ADDED"), Some("c2"))
    );
    sim.shutdown().await;
}
