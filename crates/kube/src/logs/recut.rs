//! The pieces of an over-long log line, cut at exactly the line bound counted in text bytes. The
//! splitter below bounds whole stream lines, timestamp included, and a kubelet timestamp's
//! length varies (RFC 3339 with up to nine fraction digits), so its cuts fall a few bytes off;
//! this re-cuts the text: a line of up to `max` bytes is one piece, a longer one becomes pieces
//! of exactly `max` bytes and the rest, its bytes unchanged. Pure. Holds less than `max` bytes,
//! and only while a cut line is in flight.

use bytes::{Bytes, BytesMut};

#[derive(Debug)]
pub struct Recut {
    max: usize,
    /// The text of the current cut line not handed out yet.
    pending: BytesMut,
    /// A piece of the current line was handed out.
    emitted: bool,
}

impl Recut {
    pub fn new(max: usize) -> Self {
        Recut {
            max: max.max(1),
            pending: BytesMut::new(),
            emitted: false,
        }
    }

    /// Holds no part of a line: a whole line of at most `max` bytes would pass as it is.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && !self.emitted
    }

    /// The bound: the most bytes of text in one piece.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Takes the text of one piece; `more`: the line goes on in the next piece. Complete pieces
    /// go to `out`.
    pub fn push(&mut self, text: Bytes, more: bool, out: &mut Vec<Bytes>) {
        let mut text = if self.pending.is_empty() {
            text
        } else {
            self.pending.extend_from_slice(&text);
            std::mem::take(&mut self.pending).freeze()
        };
        while text.len() > self.max || (more && text.len() == self.max) {
            out.push(text.split_to(self.max));
            self.emitted = true;
        }
        if more {
            self.pending.extend_from_slice(&text);
        } else {
            // A line of exactly N times `max` ends with its last full piece.
            if !text.is_empty() || !self.emitted {
                out.push(text);
            }
            self.emitted = false;
        }
    }

    /// The stream broke inside a cut line: hands out what there is of it.
    pub fn flush(&mut self, out: &mut Vec<Bytes>) {
        if !self.pending.is_empty() {
            out.push(std::mem::take(&mut self.pending).freeze());
        }
        self.emitted = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(max: usize, pieces: &[(&[u8], bool)]) -> Vec<Vec<u8>> {
        let mut r = Recut::new(max);
        let mut out = Vec::new();
        for (text, more) in pieces {
            r.push(Bytes::copy_from_slice(text), *more, &mut out);
        }
        out.into_iter().map(|b| b.to_vec()).collect()
    }

    #[test]
    fn whole_lines_pass_untouched() {
        assert_eq!(
            run(4, &[(b"abcd", false), (b"", false), (b"x", false)]),
            [&b"abcd"[..], b"", b"x"]
        );
    }

    #[test]
    fn cut_lines_are_recut_at_exactly_max_text_bytes() {
        // The splitter's pieces are off by the timestamp: 6 + 5 + 2 bytes of text.
        let out = run(
            4,
            &[(b"abcdef", true), (b"ghijk", true), (b"lm", false), (b"next", false)],
        );
        assert_eq!(out, [&b"abcd"[..], b"efgh", b"ijkl", b"m", b"next"]);
        // Exactly twice the bound: no empty piece after it.
        assert_eq!(run(4, &[(b"abcde", true), (b"fgh", false)]), [&b"abcd"[..], b"efgh"]);
        // A piece of exactly the bound whose line goes on.
        assert_eq!(run(4, &[(b"abcd", true), (b"e", false)]), [&b"abcd"[..], b"e"]);
    }

    #[test]
    fn a_broken_line_hands_out_what_there_is() {
        let mut r = Recut::new(4);
        let mut out = Vec::new();
        r.push(Bytes::from_static(b"abcdef"), true, &mut out);
        r.flush(&mut out);
        r.push(Bytes::from_static(b"xy"), false, &mut out);
        assert_eq!(out, [&b"abcd"[..], b"ef", b"xy"]);
    }
}
