//! Hostile pipeline files (issue 14): about 100 KB of every shape that used to cost quadratic
//! time or memory (deep nesting, many steps, a chain of dependencies, nested `${A:-...}`, a
//! matrix product, alias bombs, deep expressions, long globs) must compile or fail through
//! `exec --dry-run` within a time and a peak RSS bound; and `exec --dry-run` of 20,000 steps
//! too. The binary is the test build unless `HOSTILE_BIN` names another (the release build,
//! for the README's numbers: `HOSTILE_BIN=target/release/woodpecker-k8s-agent cargo test
//! --release --test tests pipeline::bounded -- --nocapture`).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Peak RSS allowed for 100 KB of input (the budget).
const RSS_LIMIT_KIB: i64 = 64 * 1024;

fn bin() -> PathBuf {
    std::env::var_os("HOSTILE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_woodpecker-k8s-agent")))
}

/// Runs `exec --dry-run FILE` and returns (success, wall time, peak RSS in KiB, stderr).
fn dry_run(name: &str, text: &str) -> (bool, Duration, i64, String) {
    let dir = std::env::temp_dir().join(format!("wp-hostile-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, text).unwrap();
    let start = Instant::now();
    #[allow(clippy::zombie_processes)] // reaped by waitpid below
    let child = Command::new(bin())
        .args(["exec", "--dry-run"])
        .arg(&file)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    let pid = child.id() as libc::pid_t;
    // The child's own peak (VmHWM of its address space), polled until it exits: wait4's
    // ru_maxrss would count this test process too (a spawned child inherits its high-water
    // mark at exec).
    let status_file = format!("/proc/{pid}/status");
    let watcher = std::thread::spawn(move || {
        let mut peak = 0i64;
        while let Ok(text) = std::fs::read_to_string(&status_file) {
            let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            else {
                break;
            };
            peak = peak.max(kib);
            std::thread::sleep(Duration::from_millis(2));
        }
        peak
    });
    let mut stderr = String::new();
    use std::io::Read;
    child.stderr.expect("stderr").read_to_string(&mut stderr).unwrap();
    let mut status = 0;
    // SAFETY: reaping our own child.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid");
    let peak = watcher.join().unwrap_or(0);
    let elapsed = start.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (ok, elapsed, peak, stderr)
}

fn steps(n: usize, chain: bool) -> String {
    let mut t = String::from("skip_clone: true\nsteps:\n");
    for i in 0..n {
        t.push_str(&format!("  - name: s{i}\n    image: x\n    commands: [echo {i}]\n"));
        if chain && i > 0 {
            t.push_str(&format!("    depends_on: [s{}]\n", i - 1));
        }
    }
    t
}

/// The shapes, each about 100 KB, and whether they should compile.
fn shapes() -> Vec<(&'static str, String, bool)> {
    let kb = 100 * 1024;
    let mut out = Vec::new();
    out.push((
        "deep-flow",
        format!("steps: {}{}", "[".repeat(kb / 2), "]".repeat(kb / 2)),
        false,
    ));
    out.push((
        "deep-block",
        format!("steps:\n  a:\n    image: {}x\n", "- ".repeat(kb / 2)),
        false,
    ));
    out.push(("many-steps", steps(kb / 54, false), true));
    out.push(("dependency-chain", steps(kb / 76, true), true));
    out.push((
        "nested-defaults",
        format!(
            "steps:\n  a:\n    image: {}x{}\n",
            "${A:-".repeat(kb / 6),
            "}".repeat(kb / 6)
        ),
        false,
    ));
    out.push((
        "nested-defaults-ok",
        format!(
            "steps:\n  a:\n    image: x\n    commands:\n{}",
            "      - echo ${A:-${B:-${C:-x}}}\n".repeat(kb / 36)
        ),
        true,
    ));
    let mut matrix = String::from("matrix:\n");
    for i in 0..10 {
        matrix.push_str(&format!("  A{i}: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n"));
    }
    out.push(("matrix-10x10", format!("{matrix}{}", steps(kb / 40 / 27, false)), true));
    out.push(("matrix-times-steps", format!("{matrix}{}", steps(kb / 55, false)), true));
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..9 {
        let prev = if i == 0 { "a".to_string() } else { format!("l{}", i - 1) };
        bomb.push_str(&format!("l{i}: &l{i} [{}]\n", vec![format!("*{prev}"); 10].join(", ")));
    }
    out.push(("alias-bomb", format!("{bomb}steps:\n  a:\n    image: x\n"), false));
    out.push((
        "deep-expression",
        format!(
            "steps:\n  a:\n    image: x\n    when:\n      evaluate: '{}true{}'\n",
            "(".repeat(kb / 2),
            ")".repeat(kb / 2)
        ),
        false,
    ));
    out.push((
        "long-glob",
        format!(
            "steps:\n  b:\n    image: x\n  a:\n    image: x\n    when:\n      branch: '{}b'\n",
            "*a".repeat(kb / 2)
        ),
        true,
    ));
    out.push((
        "one-long-line",
        format!("steps:\n  a:\n    image: x\n    commands: [\"{}\"]\n", "x".repeat(kb)),
        true,
    ));
    let mut keys = String::from("steps:\n  a:\n    image: x\n    environment:\n");
    for i in 0..kb / 16 {
        keys.push_str(&format!("      K{i}: v\n"));
    }
    out.push(("many-keys", keys, true));
    out
}

#[test]
fn hostile_files_compile_or_fail_in_bounded_time_and_memory() {
    // Generous for a debug build on a shared machine; a quadratic shape takes minutes.
    let time_limit = Duration::from_secs(if std::env::var_os("HOSTILE_BIN").is_some() {
        1
    } else {
        20
    });
    let mut wrong = Vec::new();
    for (name, text, should_compile) in shapes() {
        let (ok, took, rss, stderr) = dry_run(name, &text);
        println!(
            "{name:<20} {:>4} KB  {:>7.3} s  {:>6.1} MiB  {}",
            text.len() / 1024,
            took.as_secs_f64(),
            rss as f64 / 1024.0,
            if ok {
                "compiles"
            } else {
                stderr.lines().last().unwrap_or("")
            }
        );
        if ok != should_compile {
            wrong.push(format!("{name}: compiled {ok}, want {should_compile}: {stderr}"));
        }
        if took > time_limit || rss > RSS_LIMIT_KIB {
            wrong.push(format!(
                "{name}: {took:?}, {rss} KiB (limits {time_limit:?}, {RSS_LIMIT_KIB} KiB)"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn dry_run_of_twenty_thousand_steps() {
    let text = steps(20_000, false);
    let (ok, took, rss, stderr) = dry_run("twenty-thousand", &text);
    println!(
        "20000 steps ({} KB): {:.3} s, {:.1} MiB",
        text.len() / 1024,
        took.as_secs_f64(),
        rss as f64 / 1024.0
    );
    assert!(ok, "{stderr}");
    let limit = Duration::from_secs(if std::env::var_os("HOSTILE_BIN").is_some() {
        2
    } else {
        40
    });
    assert!(took < limit, "{took:?}");
}
