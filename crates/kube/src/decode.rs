//! Incremental byte-stream decoders for streamed HTTP bodies: a newline splitter with a hard
//! length bound, the newline-JSON framing of watch bodies on top of it, and the log line
//! splitter. Pure: no I/O, no async, no knowledge of Kubernetes objects.
//!
//! Chunk boundaries are not line boundaries (one watch event may span many chunks, one chunk
//! may hold many events), so the splitter carries the unfinished line between chunks. Memory is
//! bounded by the line limit plus the chunk being consumed: a line longer than the limit is cut
//! into pieces of at most `max` bytes. Complete lines inside a chunk are zero-copy slices of it.

use bytes::{Bytes, BytesMut};

/// One piece of a line, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub data: Bytes,
    /// This piece continues an earlier piece of the same line (the line was over-long).
    pub cont: bool,
    /// The line goes on after this piece (it was cut at the bound).
    pub cut: bool,
}

impl Piece {
    /// A whole line: neither cut nor a continuation.
    pub fn is_whole(&self) -> bool {
        !self.cont && !self.cut
    }
}

/// Splits a byte stream at `\n`, cutting lines longer than `max` bytes into pieces.
///
/// Feed it with [`push`](Self::push), then drain [`next`](Self::next) until `None` before the
/// next push; at end of stream [`finish`](Self::finish) returns the unterminated last line.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    /// The start of the current line, from earlier chunks. Invariant: `carry.len() <= max`.
    carry: BytesMut,
    /// The unconsumed rest of the current chunk.
    input: Bytes,
    /// The next piece continues a cut line.
    in_cut_line: bool,
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        LineSplitter {
            max: max.max(1),
            carry: BytesMut::new(),
            input: Bytes::new(),
            in_cut_line: false,
        }
    }

    /// Bytes held between calls (the unfinished line and the unconsumed input).
    pub fn buffered(&self) -> usize {
        self.carry.len() + self.input.len()
    }

    pub fn push(&mut self, chunk: Bytes) {
        if self.input.is_empty() {
            self.input = chunk;
        } else {
            // The caller did not drain: keep correctness, at the cost of one copy.
            let mut joined = BytesMut::with_capacity(self.input.len() + chunk.len());
            joined.extend_from_slice(&self.input);
            joined.extend_from_slice(&chunk);
            self.input = joined.freeze();
        }
    }

    /// The unterminated last line at end of stream, if any bytes of it are buffered.
    pub fn finish(&mut self) -> Option<Piece> {
        let mut last = None;
        if !self.input.is_empty() || !self.carry.is_empty() {
            let rest = std::mem::take(&mut self.input);
            let data = self.take_with_carry(rest);
            let cont = self.in_cut_line;
            last = Some(Piece { data, cont, cut: false });
        }
        self.in_cut_line = false;
        last
    }

    /// Drops the unfinished line and unconsumed input (after a broken connection).
    pub fn reset(&mut self) {
        self.carry.clear();
        self.input = Bytes::new();
        self.in_cut_line = false;
    }

    /// The fast path for a caller that takes whole lines as they are: while nothing is carried
    /// over from an earlier chunk and no line is being cut, hands each whole line at the front
    /// of the input (without its newline, within the bound) to `take` as a range of the input,
    /// and consumes it if `take` returns true. Stops at the first line `take` refuses (it is
    /// left for [`Iterator::next`]) or when no whole line is left. A line costs one newline
    /// search here and whatever `take` does: no [`Piece`] is made.
    pub fn take_whole(&mut self, mut take: impl FnMut(&Bytes, std::ops::Range<usize>) -> bool) {
        if !self.carry.is_empty() || self.in_cut_line {
            return;
        }
        let input = &self.input;
        let mut at = 0;
        // One search over the chunk, not one set up per line.
        for end in memchr::memchr_iter(b'\n', input) {
            if end - at > self.max || !take(input, at..end) {
                break;
            }
            at = end + 1;
        }
        if at == self.input.len() {
            self.input = Bytes::new();
        } else {
            bytes::Buf::advance(&mut self.input, at);
        }
    }

    fn take_with_carry(&mut self, tail: Bytes) -> Bytes {
        if self.carry.is_empty() {
            tail
        } else {
            self.carry.extend_from_slice(&tail);
            self.carry.split().freeze()
        }
    }
}

impl Iterator for LineSplitter {
    type Item = Piece;

    /// The next piece, or `None` when the rest needs more input.
    fn next(&mut self) -> Option<Piece> {
        if self.input.is_empty() {
            return None;
        }
        let room = self.max - self.carry.len();
        // A line of exactly `room` more bytes still fits when its newline follows.
        let window = self.input.len().min(room + 1);
        if let Some(i) = memchr::memchr(b'\n', &self.input[..window]) {
            // Cut, then shortened: one reference taken, not two and one given back (a busy
            // log splits a million lines).
            let mut line = self.input.split_to(i + 1);
            line.truncate(i);
            let data = self.take_with_carry(line);
            let cont = std::mem::take(&mut self.in_cut_line);
            return Some(Piece { data, cont, cut: false });
        }
        if self.input.len() > room {
            // Cut before a UTF-8 sequence rather than inside it (at most 3 bytes back), so the
            // pieces of a long text line stay valid text.
            let mut at = room;
            while at > 0 && room - at < 3 && (self.input[at] & 0xC0) == 0x80 {
                at -= 1;
            }
            if (self.input[at] & 0xC0) == 0x80 || (at == 0 && self.carry.is_empty()) {
                at = room;
            }
            let head = self.input.split_to(at);
            let data = self.take_with_carry(head);
            let cont = std::mem::replace(&mut self.in_cut_line, true);
            return Some(Piece { data, cont, cut: true });
        }
        self.carry.extend_from_slice(&self.input);
        self.input = Bytes::new();
        None
    }
}

/// A watch body line that exceeded the size cap; it was skipped whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversize {
    pub limit: usize,
}

/// Newline-delimited JSON framing for watch bodies: yields whole lines, skips blank lines, and
/// reports (once) and skips any line over the cap without holding more than the cap in memory.
#[derive(Debug)]
pub struct JsonLines {
    lines: LineSplitter,
    limit: usize,
}

impl JsonLines {
    pub fn new(limit: usize) -> Self {
        JsonLines {
            lines: LineSplitter::new(limit),
            limit,
        }
    }

    pub fn push(&mut self, chunk: Bytes) {
        self.lines.push(chunk);
    }

    pub fn buffered(&self) -> usize {
        self.lines.buffered()
    }

    /// At end of stream. A partial last event is dropped, as the apiserver never sends one on
    /// purpose; a cut one was already reported.
    pub fn finish(&mut self) {
        self.lines.finish();
    }

    pub fn reset(&mut self) {
        self.lines.reset();
    }

    fn accept(&self, piece: Piece) -> Option<Result<Bytes, Oversize>> {
        if piece.cut && !piece.cont {
            return Some(Err(Oversize { limit: self.limit }));
        }
        if piece.cut || piece.cont || piece.data.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        Some(Ok(piece.data))
    }
}

impl Iterator for JsonLines {
    type Item = Result<Bytes, Oversize>;

    fn next(&mut self) -> Option<Result<Bytes, Oversize>> {
        while let Some(piece) = self.lines.next() {
            if let Some(item) = self.accept(piece) {
                return Some(item);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Seeded, so a failure replays.
    use crate::retry::XorShift;

    fn random_chunks(rng: &mut XorShift, data: &[u8]) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let big = rng.below(4) == 0;
            let n = 1 + rng.below(if big { 4096 } else { 17 });
            let end = (i + n).min(data.len());
            out.push(Bytes::copy_from_slice(&data[i..end]));
            i = end;
        }
        out
    }

    /// For `seed`: the generator, a line bound, and random text of lines up to three times
    /// that long (any byte but a newline), maybe with an unterminated last line.
    fn random_lines(seed: u64) -> (XorShift, usize, Vec<u8>) {
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let max = 1 + rng.below(64);
        let mut data = Vec::new();
        for _ in 0..rng.below(60) {
            let len = rng.below(3 * max);
            data.extend(
                (0..len)
                    .map(|_| (rng.next() as u8) | 1)
                    .map(|b| if b == b'\n' { b'x' } else { b }),
            );
            data.push(b'\n');
        }
        if rng.below(2) == 0 {
            data.extend_from_slice(b"tail");
        }
        (rng, max, data)
    }

    #[test]
    fn joins_lines_across_chunks_and_splits_many_per_chunk() {
        let mut s = LineSplitter::new(100);
        s.push(Bytes::from_static(b"ab"));
        assert_eq!(s.next(), None);
        s.push(Bytes::from_static(b"c\nd\n\nef"));
        let got: Vec<_> = std::iter::from_fn(|| s.next()).map(|p| p.data).collect();
        assert_eq!(got, vec![&b"abc"[..], b"d", b""]);
        assert_eq!(s.finish().unwrap().data, &b"ef"[..]);
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn cuts_long_lines_at_the_bound_and_keeps_exact_fits() {
        let mut s = LineSplitter::new(4);
        s.push(Bytes::from_static(b"abcd\nabcdefghij\nxy"));
        let got: Vec<_> = std::iter::from_fn(|| s.next()).collect();
        let shape: Vec<_> = got.iter().map(|p| (&p.data[..], p.cont, p.cut)).collect();
        assert_eq!(
            shape,
            vec![
                (&b"abcd"[..], false, false),
                (b"abcd", false, true),
                (b"efgh", true, true),
                (b"ij", true, false),
            ]
        );
        assert_eq!(s.finish().unwrap().data, &b"xy"[..]);
    }

    #[test]
    fn cuts_do_not_split_utf8_sequences() {
        let line = "é€😀".repeat(20);
        for max in 4..13 {
            let mut s = LineSplitter::new(max);
            s.push(Bytes::from(format!("{line}\n")));
            let pieces: Vec<_> = s.by_ref().collect();
            let mut joined = Vec::new();
            for p in &pieces {
                assert!(std::str::from_utf8(&p.data).is_ok(), "max {max}: {:?}", p.data);
                assert!(p.data.len() <= max && !p.data.is_empty());
                joined.extend_from_slice(&p.data);
            }
            assert_eq!(joined, line.as_bytes());
        }
    }

    /// Random text with random line lengths (some over the bound), fed in random chunks:
    /// joining the pieces back gives exactly the input, no piece exceeds the bound, and the
    /// buffer never holds more than the bound plus one chunk.
    #[test]
    fn randomized_reassembly_is_exact_and_bounded() {
        for seed in 1..200u64 {
            let (mut rng, max, data) = random_lines(seed);
            let mut s = LineSplitter::new(max);
            let mut rebuilt = Vec::new();
            let emit = |p: Piece, rebuilt: &mut Vec<u8>| {
                assert!(p.data.len() <= max, "seed {seed}: piece over bound");
                rebuilt.extend_from_slice(&p.data);
                if !p.cut {
                    rebuilt.push(b'\n');
                }
            };
            for chunk in random_chunks(&mut rng, &data) {
                let n = chunk.len();
                s.push(chunk);
                for p in s.by_ref() {
                    emit(p, &mut rebuilt);
                }
                assert!(s.buffered() <= max + n, "seed {seed}: buffer grew past bound");
            }
            if let Some(p) = s.finish() {
                emit(p, &mut rebuilt);
                rebuilt.pop();
            }
            assert_eq!(rebuilt, data, "seed {seed}");
        }
    }

    /// The same random input split by [`LineSplitter::next`] alone and by `take_whole` taking
    /// what a random caller accepts (the rest left to `next`): the same pieces in the same
    /// order, each whole line taken being one piece `next` would have made.
    #[test]
    fn whole_lines_taken_fast_are_the_pieces_next_makes() {
        for seed in 1..200u64 {
            let (mut rng, max, data) = random_lines(seed);
            let chunks = random_chunks(&mut rng, &data);
            let split = |fast: bool, rng: &mut XorShift| {
                let mut s = LineSplitter::new(max);
                let mut out = Vec::new();
                for chunk in &chunks {
                    s.push(chunk.clone());
                    loop {
                        if fast {
                            s.take_whole(|input, line| {
                                let take = rng.below(4) != 0;
                                if take {
                                    assert!(line.len() <= max, "seed {seed}: a whole line over the bound");
                                    out.push(Piece {
                                        data: input.slice(line),
                                        cont: false,
                                        cut: false,
                                    });
                                }
                                take
                            });
                        }
                        match s.next() {
                            Some(p) => out.push(p),
                            None => break,
                        }
                    }
                }
                out.extend(s.finish());
                out
            };
            let slow = split(false, &mut rng);
            assert_eq!(split(true, &mut rng), slow, "seed {seed}");
        }
    }

    #[test]
    fn json_lines_yield_events_and_skip_oversize_ones_once() {
        let mut j = JsonLines::new(16);
        j.push(Bytes::from_static(
            b"{\"a\":1}\n\n{\"b\":\"0123456789abcdefgh\"}\n{\"c\":3}\n",
        ));
        let got: Vec<_> = std::iter::from_fn(|| j.next()).collect();
        assert_eq!(
            got,
            vec![
                Ok(Bytes::from_static(b"{\"a\":1}")),
                Err(Oversize { limit: 16 }),
                Ok(Bytes::from_static(b"{\"c\":3}")),
            ]
        );
    }

    /// Events and garbage (binary noise, huge lines) in random chunks: every short line comes
    /// out exactly once and in order, every long line is reported once, nothing panics.
    #[test]
    fn json_lines_randomized_with_garbage() {
        for seed in 1..200u64 {
            let mut rng = XorShift(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
            let limit = 8 + rng.below(256);
            let mut data = Vec::new();
            let mut want = Vec::new();
            for i in 0..rng.below(80) {
                let len = if rng.below(5) == 0 {
                    limit + 1 + rng.below(2 * limit)
                } else {
                    1 + rng.below(limit)
                };
                let mut line: Vec<u8> = (0..len).map(|_| rng.next() as u8).filter(|&b| b != b'\n').collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    line = format!("{i}").into_bytes();
                }
                want.push(if line.len() > limit {
                    Err(Oversize { limit })
                } else {
                    Ok(Bytes::from(line.clone()))
                });
                data.extend_from_slice(&line);
                data.push(b'\n');
            }
            let mut j = JsonLines::new(limit);
            let mut got = Vec::new();
            for chunk in random_chunks(&mut rng, &data) {
                let n = chunk.len();
                j.push(chunk);
                got.extend(std::iter::from_fn(|| j.next()));
                assert!(j.buffered() <= limit + n, "seed {seed}");
            }
            j.finish();
            assert_eq!(got, want, "seed {seed}");
        }
    }
}
