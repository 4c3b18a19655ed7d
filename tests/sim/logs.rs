//! Logs: follow, timestamps, sinceTime, tailLines, limitBytes, and the 400 while a container waits.

use std::time::Duration;

use sim::ScriptRule;
use sim::time;

use super::{NS, phase, pod, pods_path};
use crate::common::{Next, Raw, start_sim, wait_pod};

fn log_path(name: &str, query: &str) -> String {
    format!("{}/{name}/log?{query}", pods_path())
}

#[tokio::test]
async fn waiting_container_gives_the_kubelets_400() {
    let sim = start_sim().await;
    sim.script(ScriptRule::name("slow").start_delay(Duration::from_secs(30)));
    let raw = Raw::new(&sim);
    raw.post(&pods_path(), &pod("slow")).await;
    wait_pod(&sim, NS, "slow", "scheduled", |p| p["spec"]["nodeName"].is_string()).await;
    let r = raw.get(&log_path("slow", "container=main")).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "container \"main\" in pod \"slow\" is waiting to start: ContainerCreating"
    );
    let r = raw.get(&log_path("slow", "container=nope")).await;
    assert_eq!(
        (r.status, r.json()["message"].as_str().unwrap()),
        (400, "container nope is not valid for pod slow")
    );
    assert_eq!(raw.get(&log_path("missing", "")).await.status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn follow_streams_lines_as_they_come_and_ends_with_the_container() {
    let sim = start_sim().await;
    sim.script(
        ScriptRule::name("chatty")
            .logs(["one", "two", "three"])
            .every(Duration::from_millis(100)),
    );
    let raw = Raw::new(&sim);
    raw.post(&pods_path(), &pod("chatty")).await;
    wait_pod(&sim, NS, "chatty", "running", |p| phase(p) == "Running").await;
    let (status, mut lines) = raw.lines(&log_path("chatty", "follow=true"), None).await;
    assert_eq!(status, 200);
    let t0 = std::time::Instant::now();
    assert_eq!(lines.next(5).await, Next::Line("one".into()));
    assert_eq!(lines.next(5).await, Next::Line("two".into()));
    assert_eq!(lines.next(5).await, Next::Line("three".into()));
    assert_eq!(lines.next(5).await, Next::End);
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "lines were paced, not dumped"
    );
    // After the end the whole log stays readable until the pod is deleted.
    wait_pod(&sim, NS, "chatty", "succeeded", |p| phase(p) == "Succeeded").await;
    assert_eq!(raw.get(&log_path("chatty", "")).await.text(), "one\ntwo\nthree\n");
    assert_eq!(raw.get(&log_path("chatty", "tailLines=1")).await.text(), "three\n");
    assert_eq!(raw.get(&log_path("chatty", "limitBytes=6")).await.text(), "one\ntw");
    raw.delete(&format!("{}/chatty", pods_path()), None).await;
    assert_eq!(raw.get(&log_path("chatty", "")).await.status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn timestamps_and_since_time_cut_to_whole_seconds_inclusive() {
    let sim = start_sim().await;
    sim.script(
        ScriptRule::name("ts")
            .logs(["a", "b"])
            .every(Duration::from_millis(1100)),
    );
    let raw = Raw::new(&sim);
    raw.post(&pods_path(), &pod("ts")).await;
    wait_pod(&sim, NS, "ts", "done", |p| phase(p) == "Succeeded").await;
    let text = raw.get(&log_path("ts", "timestamps=true")).await.text();
    let stamps: Vec<(i128, String)> = text
        .lines()
        .map(|l| {
            let (ts, line) = l.split_once(' ').unwrap();
            assert_eq!(ts.len(), "2026-11-28T00:24:02.123456789Z".len(), "{ts}");
            (time::parse_rfc3339(ts).unwrap(), line.to_string())
        })
        .collect();
    assert_eq!(stamps.iter().map(|s| s.1.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    // sinceTime = b's timestamp plus a fraction: still includes b (cut to the second), not a.
    let b = stamps[1].0;
    let since = time::rfc3339_nanos(b + 1);
    let since = since.replace(':', "%3A");
    assert_eq!(
        raw.get(&log_path("ts", &format!("sinceTime={since}"))).await.text(),
        "b\n"
    );
    let since_a = time::rfc3339(stamps[0].0).replace(':', "%3A");
    assert_eq!(
        raw.get(&log_path("ts", &format!("sinceTime={since_a}"))).await.text(),
        "a\nb\n"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_log_larger_than_one_chunk_arrives_whole_and_limits_cut_across_chunks() {
    let sim = start_sim().await;
    // About 300 KB: several of the sim's 64 KiB body chunks.
    let lines: Vec<String> = (0..3000).map(|i| format!("{i:05} {}", "x".repeat(94))).collect();
    sim.script(ScriptRule::name("big").logs(lines.clone()));
    let raw = Raw::new(&sim);
    raw.post(&pods_path(), &pod("big")).await;
    wait_pod(&sim, NS, "big", "done", |p| phase(p) == "Succeeded").await;
    let whole: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(raw.get(&log_path("big", "")).await.text(), whole);
    assert_eq!(raw.get(&log_path("big", "follow=true")).await.text(), whole);
    let limit = 200_001;
    assert_eq!(
        raw.get(&log_path("big", &format!("limitBytes={limit}"))).await.text(),
        whole[..limit]
    );
    let stamped = raw.get(&log_path("big", "timestamps=true")).await.text();
    let texts: Vec<&str> = stamped.lines().map(|l| l.split_once(' ').unwrap().1).collect();
    assert_eq!(texts, lines, "every line once, in order, behind its stamp");
    sim.shutdown().await;
}
