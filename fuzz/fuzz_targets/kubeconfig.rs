//! Fuzzes kubeconfig resolution (YAML, serde types, the nesting bound, context/cluster/user
//! selection, PEM and base64 checks) with arbitrary text as the one kubeconfig file. Whatever
//! the input: no panic, and bounded cost in proportion to its size (issue 14): libyaml's
//! flow nesting was quadratic (16k levels, 32 KB: 3.8 s) before the nesting pass. The peak
//! of live heap bytes stays under `PEAK_PER_BYTE` per input byte plus a constant, the time
//! under a per-byte budget plus a constant. Run with:
//!   cargo +nightly fuzz run kubeconfig -- -max_len=102400 -timeout=10 -rss_limit_mb=512

#![no_main]

use std::io;
use std::path::{Path, PathBuf};

use std::time::Duration;

use kube::config::{Env, Overrides, infer};
use libfuzzer_sys::fuzz_target;

mod budget;

use budget::{Budget, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap bytes allowed per input byte (yaml_serde holds every event of the document, each
/// about 100 bytes, and the parsed types copy the text), plus a constant.
const BUDGET: Budget = Budget {
    peak_base: 8 << 20,
    peak_per_byte: 400,
    time_base: Duration::from_secs(1),
    // Fuzzing builds are instrumented and slow.
    time_per_byte: Duration::from_micros(50),
};

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
    BUDGET.check(data.len(), || {
        let result = infer(&OneFile(data), &Overrides::default());
        if let Err(err) = &result {
            // Every error can be printed, with its causes.
            let mut next: Option<&dyn std::error::Error> = Some(err);
            while let Some(e) = next {
                let _ = e.to_string();
                next = e.source();
            }
        }
    });
});
