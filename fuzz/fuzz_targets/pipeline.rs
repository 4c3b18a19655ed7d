//! Fuzzes the pipeline front end (YAML tree, matrix, `${VAR}`, every key, the compiler) with
//! arbitrary text. Whatever the input: no panic, and bounded cost in proportion to its size
//! (issue 14): the peak of live heap bytes stays under `PEAK_PER_BYTE` per input byte plus a
//! constant, and the time under a per-byte budget plus a constant. Quadratic shapes (deep
//! nesting, many steps, nested defaults, matrix products, alias bombs) break one or the other.
//! Run with:
//!   cargo +nightly fuzz run pipeline -- -max_len=102400 -timeout=10 -rss_limit_mb=512

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use woodpecker_k8s_agent::pipeline::compile::{self, CompileOptions};
use woodpecker_k8s_agent::pipeline::yaml;

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap bytes allowed per input byte (a compiled step carries the ~50 `CI_*` variables; a
/// matrix may repeat a workflow 27 times), plus a constant.
const PEAK_PER_BYTE: usize = 2_000;
const PEAK_BASE: usize = 16 << 20;
/// Time allowed per input byte (fuzzing builds are instrumented and slow), plus a constant.
const TIME_PER_BYTE: Duration = Duration::from_micros(200);
const TIME_BASE: Duration = Duration::from_secs(2);

fn env(name: &str) -> Option<String> {
    (name == "CI_COMMIT_BRANCH").then(|| "main".to_string())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let start = Instant::now();
    if let Ok(loaded) = yaml::load("fuzz.yaml", "fuzz", text, &env) {
        for wf in &loaded.workflows {
            let _ = compile::compile(wf, &CompileOptions::default());
        }
    }
    let took = start.elapsed();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(
        peak <= PEAK_BASE + PEAK_PER_BYTE * text.len(),
        "{peak} heap bytes at peak for {} input bytes",
        text.len()
    );
    assert!(
        took <= TIME_BASE + TIME_PER_BYTE * text.len() as u32,
        "{took:?} for {} input bytes",
        text.len()
    );
});
