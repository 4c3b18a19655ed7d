//! Step logs under faults, through the backend: a log stream that ends cleanly too early
//! (mid-line, just before the container exits and after it), or crawls, still gives the step
//! every line exactly once and no fragment.

use std::time::Duration;

use sim::ScriptRule;
use sim::faults::LogFault;
use woodpecker_k8s_agent::backend::Backend;

use super::harness::*;
use crate::common::assert_lines_exactly;

/// 600 lines over about 1.2 s, each about 66 bytes on the wire.
fn paced(tag: &str) -> Vec<String> {
    (0..600)
        .map(|i| format!("{tag} line {i:04} of the build, a few words"))
        .collect()
}

/// Runs one step whose log is `want`, `fault` armed for its first log stream.
async fn run_with(h: &H, task: &str, image: &str, want: &[String], fault: Option<LogFault>) -> Vec<String> {
    h.sim.script(
        ScriptRule::image(image)
            .logs(want.to_vec())
            .every(Duration::from_millis(2)),
    );
    if let Some(f) = fault {
        h.sim.faults().log_fault(f, false);
    }
    let s = step("logs", image, task);
    let conf = workflow(task, std::slice::from_ref(&s));
    h.backend.setup_workflow(&conf, task).await.unwrap();
    let (lines, state) = run_step(&h.backend, &s, task).await;
    assert_eq!(state.exit_code, 0, "{state:?}");
    h.backend.destroy_workflow(&conf, task).await.unwrap();
    assert_clean(&h.sim, task).await;
    lines
}

/// The clean end falls mid-line about 80 lines before the container's end, so the container
/// exits well within the follower's wait for the watch's news (`DONE_LAG`): the log must still
/// be read to its end. And a clean end mid-line after the exit.
#[tokio::test]
async fn a_clean_end_mid_line_before_or_after_the_exit_loses_nothing() {
    let h = harness().await;
    let want = paced("late");
    let fault = LogFault::End {
        bytes: 34_500,
        at_line: false,
        after_exit: false,
    };
    assert_lines_exactly("late", &run_with(&h, "61", "t/late", &want, Some(fault)).await, &want);
    let want = paced("exited");
    let fault = LogFault::End {
        bytes: 5_000,
        at_line: false,
        after_exit: true,
    };
    assert_lines_exactly(
        "exited",
        &run_with(&h, "62", "t/exited", &want, Some(fault)).await,
        &want,
    );
}

/// A stream throttled below the container's pace ends seconds after the pod did: it is never
/// cut while bytes still arrive, however long that takes (here 4 times the idle limit).
#[tokio::test]
async fn a_crawling_log_is_read_to_its_end() {
    let h = harness_log_idle(Duration::from_secs(1)).await;
    // 40 kB at 10 kB/s: about 3 s behind the pod's end.
    h.sim.faults().throttle_logs(Some(10_000));
    let want = paced("crawl");
    assert_lines_exactly("crawl", &run_with(&h, "63", "t/crawl", &want, None).await, &want);
}

/// A stream that sends nothing for longer than the idle limit after the pod ended is cut, and
/// the step log says so with the count delivered; the step still reports its result.
#[tokio::test]
async fn a_log_silent_past_the_idle_limit_is_cut_and_says_so() {
    let h = harness_log_idle(Duration::from_secs(1)).await;
    let want = paced("silent");
    let fault = LogFault::Stall {
        bytes: 5_000,
        pause: Duration::from_secs(30),
    };
    let got = run_with(&h, "64", "t/silent", &want, Some(fault)).await;
    let (note, lines) = got.split_last().expect("lines");
    let n = lines.len();
    assert!(n > 0 && n < want.len(), "{n} lines before the cut");
    assert_lines_exactly("silent", lines, &want[..n]);
    assert!(
        note.starts_with("[kubernetes] the log of pod wp-")
            && note.ends_with(&format!(" was cut after {n} lines: no byte for 1s after the pod ended")),
        "{note}"
    );
}
