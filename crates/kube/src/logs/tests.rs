//! Unit tests for the log follower's pure parts: timestamps, and resume without loss or repeat.

use super::*;

fn piece(s: &str) -> Piece {
    Piece {
        data: Bytes::copy_from_slice(s.as_bytes()),
        cont: false,
        cut: false,
    }
}

fn feed(d: &mut Dedup, lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| d.accept(piece(l)))
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .collect()
}

#[test]
fn resume_drops_exactly_the_repeat_even_with_equal_stamps() {
    let mut d = Dedup::default();
    let first = feed(
        &mut d,
        &[
            "2024-01-01T00:00:01.500000000Z a",
            "2024-01-01T00:00:02.250000000Z b",
            "2024-01-01T00:00:02.250000000Z c",
        ],
    );
    assert_eq!(first, ["a", "b", "c"]);
    // The connection drops; we ask from the whole second, the kubelet resends from it.
    assert_eq!(d.since_time().as_deref(), Some("2024-01-01T00:00:02Z"));
    d.restart();
    let second = feed(
        &mut d,
        &[
            "2024-01-01T00:00:02.100000000Z early",
            "2024-01-01T00:00:02.250000000Z b",
            "2024-01-01T00:00:02.250000000Z c",
            "2024-01-01T00:00:02.250000000Z d",
            "2024-01-01T00:00:02.9Z e",
        ],
    );
    assert_eq!(
        second,
        ["d", "e"],
        "lines at the same stamp after the counted ones are new"
    );
}

/// A random log with many equal stamps, cut by random drops: what comes out is exactly the
/// log, once, in order.
#[test]
fn randomized_drops_lose_and_repeat_nothing() {
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..50 {
        let mut log = Vec::new();
        let mut t: i64 = 1_700_000_000_000;
        for i in 0..200 {
            t += (next() % 3) as i64 * 400; // milliseconds; often equal, sometimes same second
            let stamp = format!("{}.{:09}Z", &format_seconds(t / 1000)[..19], (t % 1000) * 1_000_000);
            log.push((t, format!("{stamp} line-{i}")));
        }
        let mut d = Dedup::default();
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < log.len() {
            // Serve from the resume point (whole seconds, inclusive) up to a random drop.
            let since_ms = d
                .since_time()
                .map(|s| parse_rfc3339(&s).unwrap().0 * 1000)
                .unwrap_or(i64::MIN);
            let start = log.iter().position(|(t, _)| *t >= since_ms).unwrap();
            let end = (pos + 1 + (next() % 40) as usize).min(log.len());
            d.restart();
            for (_, line) in &log[start..end] {
                if let Some(text) = d.accept(piece(line)) {
                    out.push(String::from_utf8(text.to_vec()).unwrap());
                }
            }
            pos = end;
        }
        let want: Vec<_> = (0..200).map(|i| format!("line-{i}")).collect();
        assert_eq!(out, want);
    }
}

#[test]
fn pieces_of_a_long_line_follow_their_head() {
    let mut d = Dedup::default();
    let head = Piece {
        data: Bytes::from_static(b"2024-01-01T00:00:01Z aaaa"),
        cont: false,
        cut: true,
    };
    let tail = Piece {
        data: Bytes::from_static(b"bbbb"),
        cont: true,
        cut: false,
    };
    assert_eq!(d.accept(head.clone()).as_deref(), Some(&b"aaaa"[..]));
    assert_eq!(d.accept(tail.clone()).as_deref(), Some(&b"bbbb"[..]));
    d.restart();
    assert_eq!(d.accept(head), None);
    assert_eq!(d.accept(tail), None);
}

#[test]
fn invalid_utf8_passes_through() {
    let mut d = Dedup::default();
    let raw = Piece {
        data: Bytes::from_static(b"2024-01-01T00:00:01Z \xff\xfe ok"),
        cont: false,
        cut: false,
    };
    assert_eq!(d.accept(raw).as_deref(), Some(&b"\xff\xfe ok"[..]));
}

#[test]
fn finished_containers() {
    let mut pod = Pod::default();
    assert!(!container_finished(&pod, "step"));
    let status: crate::types::PodStatus = serde_json::from_value(serde_json::json!({
        "phase": "Running",
        "containerStatuses": [{"name": "step", "state": {"terminated": {"exitCode": 0}}}]
    }))
    .unwrap();
    pod.status = Some(status);
    assert!(container_finished(&pod, "step"));
    assert!(!container_finished(&pod, "other"));
}

#[test]
fn before_last_compares_with_the_last_delivered_stamp() {
    let mut d = Dedup::default();
    let line = |s: &str| Bytes::copy_from_slice(s.as_bytes());
    assert!(d.before_last(&line("2024-01-01T00:00:09Z x")), "nothing delivered yet");
    feed(&mut d, &["2024-01-01T00:00:02.5Z a"]);
    assert!(d.before_last(&line("2024-01-01T00:00:02.4Z early")));
    assert!(
        !d.before_last(&line("2024-01-01T00:00:02.5Z same")),
        "an equal stamp is not older"
    );
    assert!(!d.before_last(&line("2024-01-01T00:00:03Z later")));
}
