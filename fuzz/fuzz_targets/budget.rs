//! The cost bound the fuzz targets share (issue 14): a counting allocator for the peak of live
//! heap bytes, and a check that one input stayed within a budget in proportion to its size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts live heap bytes and their peak.
pub struct Counting;

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

/// Heap and time allowed for one input: a constant plus so much per input byte.
pub struct Budget {
    pub peak_base: usize,
    pub peak_per_byte: usize,
    pub time_base: Duration,
    pub time_per_byte: Duration,
}

impl Budget {
    /// Runs `work` on an input of `len` bytes and panics (a fuzzing finding) when it took
    /// more heap at its peak, or more time, than the budget allows.
    pub fn check(&self, len: usize, work: impl FnOnce()) {
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let start = Instant::now();
        work();
        let took = start.elapsed();
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
        assert!(
            peak <= self.peak_base + self.peak_per_byte * len,
            "{peak} heap bytes at peak for {len} input bytes"
        );
        assert!(
            took <= self.time_base + self.time_per_byte * len as u32,
            "{took:?} for {len} input bytes"
        );
    }
}
