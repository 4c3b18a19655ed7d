//! Fuzzes both stream decoders with arbitrary bytes in arbitrary chunks: the line splitter must
//! reassemble the input exactly with every piece within its bound, and the watch JSON framing
//! must never hold more than its cap plus one chunk, whatever the input.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use kube::decode::{JsonLines, LineSplitter};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    // The first byte picks the bound, the second seeds the chunk sizes.
    let max = 1 + data[0] as usize;
    let mut seed = u32::from(data[1]) | 1;
    let input = &data[2..];

    let mut chunks = Vec::new();
    let mut i = 0;
    while i < input.len() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = 1 + (seed as usize % 97);
        let end = (i + n).min(input.len());
        chunks.push(Bytes::copy_from_slice(&input[i..end]));
        i = end;
    }

    let mut lines = LineSplitter::new(max);
    let mut rebuilt = Vec::with_capacity(input.len() + 1);
    for chunk in &chunks {
        let n = chunk.len();
        lines.push(chunk.clone());
        for piece in lines.by_ref() {
            assert!(piece.data.len() <= max);
            rebuilt.extend_from_slice(&piece.data);
            if !piece.cut {
                rebuilt.push(b'\n');
            }
        }
        assert!(lines.buffered() <= max + n);
    }
    if let Some(piece) = lines.finish() {
        // The unterminated last line: its bytes, no newline.
        rebuilt.extend_from_slice(&piece.data);
    }
    assert_eq!(rebuilt, input);

    let mut json = JsonLines::new(max);
    for chunk in chunks {
        let n = chunk.len();
        json.push(chunk);
        for line in json.by_ref() {
            if let Ok(line) = line {
                assert!(line.len() <= max && !line.contains(&b'\n'));
            }
        }
        assert!(json.buffered() <= max + n);
    }
    json.finish();
});
