//! Fuzzes the pipeline front end (YAML tree, matrix, `${VAR}`, every key, the compiler) with
//! arbitrary text. Whatever the input: no panic, and bounded cost in proportion to its size
//! (issue 14): the peak of live heap bytes stays under `PEAK_PER_BYTE` per input byte plus a
//! constant, and the time under a per-byte budget plus a constant. Quadratic shapes (deep
//! nesting, many steps, nested defaults, matrix products, alias bombs) break one or the other.
//! Run with:
//!   cargo +nightly fuzz run pipeline -- -max_len=102400 -timeout=10 -rss_limit_mb=512

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use woodpecker_k8s_agent::pipeline::compile::{self, CompileOptions};
use woodpecker_k8s_agent::pipeline::yaml;

mod budget;

use budget::{Budget, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap bytes allowed per input byte (a compiled step carries the ~50 `CI_*` variables; a
/// matrix may repeat a workflow 27 times), plus a constant.
const BUDGET: Budget = Budget {
    peak_base: 16 << 20,
    peak_per_byte: 2_000,
    time_base: Duration::from_secs(2),
    // Fuzzing builds are instrumented and slow.
    time_per_byte: Duration::from_micros(200),
};

fn env(name: &str) -> Option<String> {
    (name == "CI_COMMIT_BRANCH").then(|| "main".to_string())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    BUDGET.check(text.len(), || {
        if let Ok(loaded) = yaml::load("fuzz.yaml", "fuzz", text, &env) {
            for wf in &loaded.workflows {
                let _ = compile::compile(wf, &CompileOptions::default());
            }
        }
    });
});
