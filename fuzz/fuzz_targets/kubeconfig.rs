//! Fuzzes kubeconfig resolution (YAML, serde types, the nesting bound, context/cluster/user
//! selection, PEM and base64 checks) with arbitrary text as the one kubeconfig file. Whatever
//! the input: no panic, and bounded cost in proportion to its size (issue 14): libyaml's
//! flow nesting was quadratic (16k levels, 32 KB: 3.8 s) before the nesting pass. The peak
//! of live heap bytes stays under `PEAK_PER_BYTE` per input byte plus a constant, the time
//! under a per-byte budget plus a constant. Run with:
//!   cargo +nightly fuzz run kubeconfig -- -max_len=102400 -timeout=10 -rss_limit_mb=512

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube::config::{Env, Overrides, infer};
use libfuzzer_sys::fuzz_target;

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

/// Heap bytes allowed per input byte (yaml_serde holds every event of the document, each
/// about 100 bytes, and the parsed types copy the text), plus a constant.
const PEAK_PER_BYTE: usize = 400;
const PEAK_BASE: usize = 8 << 20;
/// Time allowed per input byte (fuzzing builds are instrumented and slow), plus a constant.
const TIME_PER_BYTE: Duration = Duration::from_micros(50);
const TIME_BASE: Duration = Duration::from_secs(1);

/// One kubeconfig file, `/k/config`, and nothing else: every file it names is missing, and
/// the in-cluster variables are unset.
struct OneFile<'a>(&'a [u8]);

impl Env for OneFile<'_> {
    fn var(&self, name: &str) -> Option<String> {
        (name == "KUBECONFIG").then(|| "/k/config".to_owned())
    }

    fn home_dir(&self) -> Option<PathBuf> {
        None
    }

    fn read_file(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        if path != Path::new("/k/config") {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such file"));
        }
        kube::config::check_bound(self.0.to_vec(), limit)
    }
}

fuzz_target!(|data: &[u8]| {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let start = Instant::now();
    let result = infer(&OneFile(data), &Overrides::default());
    if let Err(err) = &result {
        // Every error can be printed, with its causes.
        let mut next: Option<&dyn std::error::Error> = Some(err);
        while let Some(e) = next {
            let _ = e.to_string();
            next = e.source();
        }
    }
    drop(result);
    let took = start.elapsed();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(
        peak <= PEAK_BASE + PEAK_PER_BYTE * data.len(),
        "{peak} heap bytes at peak for {} input bytes",
        data.len()
    );
    assert!(
        took <= TIME_BASE + TIME_PER_BYTE * data.len() as u32,
        "{took:?} for {} input bytes",
        data.len()
    );
});
