//! Streams against the simulated cluster: a raw watch, the Watcher across cuts and 410s, a
//! log followed across broken streams, streams that end cleanly too early (at a line boundary
//! and mid-line, before and after the container exits), stall or crawl, `pump`, and events by
//! field selector.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kube::logs::FollowOptions;
use kube::types::{Event as KubeEvent, Pod, Resource};
use kube::watch::{Event, WatchEvent};
use kube::{Api, ListParams, WatchParams};
use sim::faults::{FaultReply, LogFault, RequestMatch, Times};
use sim::{ScriptRule, SimConfig};

use super::{FAST_BACKOFF, NS, follow_to_end, pod, pods};
use crate::common::{assert_lines_exactly, fast_config, start_sim, start_sim_with};
#[tokio::test]
async fn a_raw_watch_sees_changes_after_the_list() {
    let sim = start_sim().await;
    let api = pods(&sim);
    let rv = api
        .list(&ListParams::labels("app=raw"))
        .await
        .unwrap()
        .metadata
        .resource_version;
    let mut stream = api.watch(&WatchParams::labels("app=raw"), &rv).await.unwrap();
    api.create(&pod("raw-1", "raw")).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap();
    assert!(matches!(ev, Some(Ok(WatchEvent::Added(p))) if p.metadata.name == "raw-1"));
    sim.shutdown().await;
}

/// Names seen as Applied until `want` are all there; Restarted lists count too.
async fn collect_names(w: &mut kube::watch::Watcher<Pod>, want: &BTreeSet<String>, restarted: &mut u32) {
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !want.is_subset(&seen) {
        assert!(Instant::now() < deadline, "saw only {seen:?}");
        match tokio::time::timeout(Duration::from_secs(5), w.next())
            .await
            .expect("watcher stalled")
        {
            Ok(Event::Applied(p)) => {
                seen.insert(p.meta().name.clone());
            }
            Ok(Event::Restarted(list)) => {
                *restarted += 1;
                seen.extend(list.into_iter().map(|p| p.metadata.name));
            }
            Ok(Event::Deleted(_)) | Err(_) => {}
        }
    }
}

#[tokio::test]
async fn the_watcher_resumes_after_cuts_and_relists_after_410() {
    let sim = start_sim().await;
    let api = pods(&sim);
    let mut w = api.watcher(WatchParams::labels("app=w")).with_backoff(FAST_BACKOFF);
    let mut restarted = 0;
    match w.next().await.unwrap() {
        Event::Restarted(list) => assert!(list.is_empty()),
        other => panic!("the first event is the list, got {other:?}"),
    }
    // Every watch stream is cut after 2 events: the watcher must resume from its last RV.
    sim.faults().cut_watches_after(2, true);
    let mut want = BTreeSet::new();
    for i in 0..6 {
        api.create(&pod(&format!("w-{i}"), "w")).await.unwrap();
        want.insert(format!("w-{i}"));
    }
    collect_names(&mut w, &want, &mut restarted).await;
    assert_eq!(restarted, 0, "cuts must resume, not re-list");
    let resumed = sim
        .requests()
        .iter()
        .filter(|r| r.watch && r.param("resourceVersion").is_some())
        .count();
    assert!(resumed >= 2, "expected several resumed watches, saw {resumed}");

    // An HTTP 410 on the next watch: re-list, reported as Restarted with everything.
    sim.faults()
        .fail(RequestMatch::any().watch(true), FaultReply::Gone, Times::Once);
    api.create(&pod("w-6", "w")).await.unwrap();
    want.insert("w-6".into());
    let before = restarted;
    collect_names(&mut w, &want, &mut restarted).await;
    wait_restart(&mut w, &mut restarted, before).await;

    sim.shutdown().await;
}

/// A resourceVersion older than the server's history: the 410 comes from the server itself.
#[tokio::test]
async fn the_watcher_relists_when_its_resource_version_is_too_old() {
    let sim = start_sim_with(SimConfig {
        history_window: 5,
        ..fast_config()
    })
    .await;
    let api = pods(&sim);
    let mut w = api.watcher(WatchParams::labels("app=old")).with_backoff(FAST_BACKOFF);
    assert!(matches!(w.next().await.unwrap(), Event::Restarted(_)));
    // The first watch ends after one event; while we do not read, the history moves on.
    sim.faults().cut_watches_after(1, false);
    api.create(&pod("old-0", "old")).await.unwrap();
    assert!(matches!(w.next().await.unwrap(), Event::Applied(_)));
    for i in 0..20 {
        api.create(&pod(&format!("noise-{i}"), "noise")).await.unwrap();
    }
    let mut restarted = 0;
    wait_restart(&mut w, &mut restarted, 0).await;
    // The simulated cluster answers a stale watch as the apiserver usually does: 200 and an
    // ERROR event with code 410 (the HTTP 410 shape is the previous test's). So no watch got an
    // HTTP 410 here, and the collection was listed again after the stale watch.
    let reqs = sim.requests();
    assert!(reqs.iter().all(|r| !(r.watch && r.status == 410)));
    let stale = reqs
        .iter()
        .position(|r| r.watch && r.param("resourceVersion").is_some())
        .expect("a resumed watch");
    assert!(
        reqs[stale..]
            .iter()
            .any(|r| !r.watch && r.method == "GET" && r.path.ends_with("/pods")),
        "no re-list after the stale watch"
    );
    sim.shutdown().await;
}

async fn wait_restart(w: &mut kube::watch::Watcher<Pod>, restarted: &mut u32, before: u32) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while *restarted == before {
        assert!(Instant::now() < deadline, "no re-list after a 410");
        if let Ok(Ok(Event::Restarted(_))) = tokio::time::timeout(Duration::from_secs(5), w.next()).await {
            *restarted += 1;
        }
    }
}

#[tokio::test]
async fn a_log_followed_across_drops_loses_and_repeats_nothing() {
    let sim = start_sim().await;
    let want: Vec<String> = (0..300).map(|i| format!("line {i:03} of the build")).collect();
    sim.script(
        ScriptRule::name("logs-1")
            .logs(want.clone())
            .every(Duration::from_millis(3))
            .start_delay(Duration::from_millis(200)),
    );
    let api = pods(&sim);
    // One-shot cuts, each taken by the next log stream that opens: the first stream breaks
    // after 1500 bytes, and every reconnect arms the next one (mid-line cuts included).
    sim.faults().cut_logs_after(1500, false);
    api.create(&pod("logs-1", "l")).await.unwrap();
    // Opened before the container starts: the empty 200 / 400 "waiting" replies mean retry.
    let mut follower = api.follow_log(
        "logs-1",
        "step",
        FollowOptions {
            backoff: FAST_BACKOFF,
            ..FollowOptions::default()
        },
    );
    let mut got = Vec::new();
    let cuts = [4000usize, 2500, 6100];
    let mut next_cut = 0;
    while let Some(line) = tokio::time::timeout(Duration::from_secs(10), follower.next_line())
        .await
        .expect("the follower stalled")
        .unwrap()
    {
        got.push(String::from_utf8(line.to_vec()).unwrap());
        if got.len() % 70 == 1 && next_cut < cuts.len() {
            sim.faults().cut_logs_after(cuts[next_cut], false);
            next_cut += 1;
        }
    }
    assert_eq!(got, want);
    let opened = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/log") && r.status == 200)
        .count();
    assert!(opened >= 3, "expected reconnects, saw {opened} log requests");
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.path.ends_with("/log") && r.param("sinceTime").is_some())
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn events_of_one_pod_by_field_selector() {
    let sim = start_sim().await;
    sim.script(ScriptRule::name("stuck").unschedulable());
    let api = pods(&sim);
    api.create(&pod("stuck", "e")).await.unwrap();
    let events: Api<KubeEvent> = Api::namespaced(api.client().clone(), NS);
    let found = crate::common::wait_for("a FailedScheduling event", 10, || {
        let events = events.clone();
        async move {
            let list = events
                .list(&ListParams::fields("involvedObject.name=stuck"))
                .await
                .unwrap();
            list.items.into_iter().find(|e| e.reason == "FailedScheduling")
        }
    })
    .await;
    assert_eq!(found.involved_object.name, "stuck");
    sim.shutdown().await;
}

#[tokio::test]
async fn pump_feeds_a_channel_until_the_log_ends() {
    let sim = start_sim().await;
    let want: Vec<String> = (0..50).map(|i| format!("pumped {i}")).collect();
    sim.script(ScriptRule::name("pump-1").logs(want.clone()));
    let api = pods(&sim);
    api.create(&pod("pump-1", "p")).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let follower = api.follow_log("pump-1", "step", FollowOptions::default());
    let task = tokio::spawn(follower.pump(tx, std::future::pending()));
    let mut got = Vec::new();
    while let Some(line) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("pump stalled")
    {
        got.push(String::from_utf8(line.to_vec()).unwrap());
    }
    task.await.unwrap().unwrap();
    assert_eq!(got, want);
    sim.shutdown().await;
}

/// The server ends each watch after `timeoutSeconds` (a clean end), and a 500 refuses one
/// watch: the watcher reports the 500, keeps its place, and resumes without a re-list.
#[tokio::test]
async fn the_watcher_resumes_after_server_timeouts_and_errors() {
    let sim = start_sim().await;
    let api = pods(&sim);
    let params = WatchParams {
        timeout_seconds: 1,
        ..WatchParams::labels("app=t")
    };
    let mut w = api.watcher(params).with_backoff(FAST_BACKOFF);
    assert!(matches!(w.next().await.unwrap(), Event::Restarted(_)));
    sim.faults()
        .fail(RequestMatch::any().watch(true), FaultReply::Internal, Times::Once);
    let err = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.code), Some(500), "{err}");
    let mut restarted = 0;
    // Two server timeouts pass (while we wait in `next`) before the pod appears.
    let creator = api.clone();
    let create = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        creator.create(&pod("t-1", "t")).await.unwrap();
    });
    collect_names(&mut w, &BTreeSet::from(["t-1".to_string()]), &mut restarted).await;
    create.await.unwrap();
    assert_eq!(restarted, 0, "a clean end or a refused watch must not re-list");
    let watches = sim.requests().iter().filter(|r| r.watch && r.status == 200).count();
    assert!(
        watches >= 2,
        "expected the watch to be re-opened after timeouts, saw {watches}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn dropping_a_log_stream_ends_it_on_the_server() {
    let sim = start_sim().await;
    sim.script(ScriptRule::name("endless").logs(["tick"]).run_until_deleted());
    let api = pods(&sim);
    api.create(&pod("endless", "e")).await.unwrap();
    let params = kube::params::LogParams {
        container: Some("step".into()),
        follow: true,
        ..Default::default()
    };
    // Until the pod is bound and running, the log is an empty 200 or a 400: open again.
    let t0 = Instant::now();
    let stream = loop {
        assert!(t0.elapsed() < Duration::from_secs(10), "the log never streamed");
        if let Ok(mut s) = api.log_stream("endless", &params).await
            && let Ok(Ok(Some(_))) = tokio::time::timeout(Duration::from_secs(5), s.chunk()).await
        {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(sim.open_streams(), 1, "the follow is being served");
    // The stream reads ahead in a task of its own, now waiting for a line that never comes: dropping
    // the stream must stop that task and close the connection, or the server keeps a follow
    // open for nobody.
    drop(stream);
    let t0 = Instant::now();
    while sim.open_streams() > 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the server still serves a dropped log"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sim.shutdown().await;
}

/// The lines of a log paced over about 1.2 s: each about 66 bytes on the wire, stamp included.
fn paced_log(tag: &str) -> Vec<String> {
    (0..600)
        .map(|i| format!("{tag} line {i:04} of the build, a few words"))
        .collect()
}

/// Runs pod `name` with `want` as its log and `fault` armed for its first log stream, follows
/// it to the end, and checks every line came exactly once and whole; returns the log requests.
async fn follow_through(
    sim: &sim::Sim,
    name: &str,
    want: &[String],
    fault: Option<LogFault>,
) -> Vec<sim::RecordedRequest> {
    sim.script(
        ScriptRule::name(name)
            .logs(want.to_vec())
            .every(Duration::from_millis(2)),
    );
    if let Some(f) = fault {
        sim.faults().log_fault(f, false);
    }
    let api = pods(sim);
    api.create(&pod(name, "f")).await.unwrap();
    let got = follow_to_end(&api, name, Duration::from_secs(20)).await;
    assert_lines_exactly(name, &got, want);
    sim.requests()
        .into_iter()
        .filter(|r| r.path.ends_with(&format!("/{name}/log")) && r.status == 200)
        .collect()
}

/// The confirming read: the last log request does not follow.
fn confirmed(name: &str, logs: &[sim::RecordedRequest]) {
    let last = logs.last().expect("log requests");
    assert!(
        last.param("follow").is_none(),
        "{name}: the log was not confirmed by a non-follow read: {logs:?}"
    );
}

/// A stream that ends cleanly before the log does is never taken as the whole log: at a line
/// boundary or mid-line, while the container runs or after it exited.
#[tokio::test]
async fn a_log_stream_that_ends_cleanly_too_early_loses_nothing_and_delivers_no_fragment() {
    let sim = start_sim().await;
    for (name, at_line, after_exit) in [
        ("end-line-running", true, false),
        ("end-mid-running", false, false),
        ("end-line-exited", true, true),
        ("end-mid-exited", false, true),
    ] {
        let want = paced_log(name);
        // 5000 bytes is about line 75, mid-line (5000 is no multiple of a line's length).
        let fault = LogFault::End {
            bytes: 5000,
            at_line,
            after_exit,
        };
        let logs = follow_through(&sim, name, &want, Some(fault)).await;
        assert!(logs.len() >= 2, "{name}: the early end was followed by another read");
        confirmed(name, &logs);
    }
    sim.shutdown().await;
}

/// A stream that stalls (while the container runs, and across its exit) and one that crawls
/// (throttled, then ended cleanly mid-line after the exit) still deliver every line once.
#[tokio::test]
async fn a_stalled_or_throttled_log_stream_loses_nothing() {
    let sim = start_sim().await;
    for (name, pause) in [("stall-short", 300), ("stall-past-exit", 2000)] {
        let want = paced_log(name);
        let fault = LogFault::Stall {
            bytes: 5000,
            pause: Duration::from_millis(pause),
        };
        let logs = follow_through(&sim, name, &want, Some(fault)).await;
        let queries: Vec<&str> = logs.iter().map(|r| r.query.as_str()).collect();
        assert!(
            logs.len() <= 3,
            "{name}: one follow, and a confirming read (twice at most): {queries:?}"
        );
        eprintln!("{name}: {queries:?}");
        confirmed(name, &logs);
    }
    // 40 kB at 25 kB/s: the stream lags the container by more than a second.
    sim.faults().throttle_logs(Some(25_000));
    let want = paced_log("crawl");
    let logs = follow_through(&sim, "crawl", &want, None).await;
    confirmed("crawl", &logs);
    let want = paced_log("crawl-cut");
    let fault = LogFault::End {
        bytes: 30_000,
        at_line: false,
        after_exit: true,
    };
    let logs = follow_through(&sim, "crawl-cut", &want, Some(fault)).await;
    confirmed("crawl-cut", &logs);
    sim.shutdown().await;
}
