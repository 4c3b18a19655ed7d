//! A step's log stream to numbered [`LogLine`]s: split on newlines and at 1 MiB, secrets masked,
//! time in seconds since the stream opened (Woodpecker's `pipeline/log` line writer, spec §4.5).
//! Knows nothing of backends or tracers beyond the line type.

use bytes::{Buf, Bytes};
use tokio::time::Instant;

use crate::backend::Batch;
use crate::pipeline::trace::{LineBatch, LogKind, LogLine};

/// Lines longer than this are cut into chunks of this size.
pub const MAX_LINE: usize = 1 << 20;

/// What a masked secret reads as.
pub const MASK: &str = "********";

/// Replaces secret values in log lines: the one masker of every line a step writes, in agent
/// mode and in `exec`. Values are trimmed; values of 3 characters or fewer are not masked (too
/// many false hits); multi-line secrets are masked line by line.
#[derive(Clone, Default)]
pub struct Masker {
    /// Each value's searcher, longest value first. Built once: `memmem::find` builds one per
    /// call, which cost about 500 instructions a line for a single secret (callgrind, agent
    /// mode).
    needles: Vec<memchr::memmem::Finder<'static>>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Masker {{ {} values }}", self.needles.len())
    }
}

impl Masker {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles: Vec<Vec<u8>> = values
            .into_iter()
            .flat_map(|v| v.lines())
            .map(str::trim)
            .filter(|v| v.len() > 3)
            .map(|v| v.as_bytes().to_vec())
            .collect();
        // Longest first, so a secret that contains another is masked whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        let needles = needles
            .into_iter()
            .map(|n| memchr::memmem::Finder::new(&n).into_owned())
            .collect();
        Masker { needles }
    }

    pub fn mask(&self, line: Bytes) -> Bytes {
        if !self.needles.iter().any(|n| n.find(&line).is_some()) {
            return line;
        }
        let mut out = Vec::with_capacity(line.len());
        let mut i = 0;
        'outer: while i < line.len() {
            for n in self.needles.iter().map(|f| f.needle()) {
                if line[i..].starts_with(n) {
                    out.extend_from_slice(MASK.as_bytes());
                    i += n.len();
                    continue 'outer;
                }
            }
            out.push(line[i]);
            i += 1;
        }
        Bytes::from(out)
    }
}

/// Numbers one step's lines.
#[derive(Debug)]
pub struct LineWriter {
    next: u32,
    opened: Instant,
    masker: Masker,
}

impl LineWriter {
    pub fn new(masker: Masker) -> Self {
        LineWriter {
            next: 0,
            opened: Instant::now(),
            masker,
        }
    }

    /// Seconds since the stream opened.
    pub fn elapsed(&self) -> i64 {
        self.opened.elapsed().as_secs() as i64
    }

    /// The lines of one item from the backend (normally exactly one line).
    #[cfg(test)]
    fn lines(&mut self, item: Bytes) -> Vec<LogLine> {
        let mut out = Vec::new();
        let batch = Batch {
            items: vec![item],
            lines: false,
        };
        self.batch_into(batch, &mut out);
        out
    }

    /// The usual batch (a container log's lines, none to cut) numbered as it is, each line
    /// masked in place when there are secrets; any other batch back as it came, for
    /// [`Self::batch_into`].
    pub fn line_batch(&mut self, mut batch: Batch) -> Result<LineBatch, Batch> {
        if !batch.lines || batch.items.iter().any(|l| l.len() > MAX_LINE) {
            return Err(batch);
        }
        if !self.masker.needles.is_empty() {
            for line in &mut batch.items {
                *line = self.masker.mask(std::mem::take(line));
            }
        }
        let first = self.next;
        self.next += batch.items.len() as u32;
        Ok(LineBatch {
            first,
            time: self.elapsed(),
            lines: batch.items,
        })
    }

    /// The lines of a batch of items, appended to `out`, all stamped with the time the batch
    /// arrived (one clock read per batch, not per line).
    pub fn batch_into(&mut self, batch: Batch, out: &mut Vec<LogLine>) {
        let batch = match self.line_batch(batch) {
            Ok(lines) => return out.extend(lines.into_lines()),
            Err(batch) => batch,
        };
        let time = self.elapsed();
        for item in batch.items {
            if batch.lines {
                self.line_into(time, item, out);
            } else {
                self.lines_into(time, item, out);
            }
        }
    }

    fn lines_into(&mut self, time: i64, item: Bytes, out: &mut Vec<LogLine>) {
        let mut rest = item;
        if rest.last() == Some(&b'\n') {
            rest.truncate(rest.len() - 1);
        }
        while let Some(at) = memchr::memchr(b'\n', &rest) {
            let line = rest.split_to(at);
            rest.advance(1);
            self.line_into(time, line, out);
        }
        self.line_into(time, rest, out);
    }

    /// One line without a newline: cut at [`MAX_LINE`], masked.
    fn line_into(&mut self, time: i64, mut line: Bytes, out: &mut Vec<LogLine>) {
        while line.len() > MAX_LINE {
            let chunk = line.split_to(MAX_LINE);
            out.push(self.entry(time, LogKind::Stdout, self.masker.mask(chunk)));
        }
        out.push(self.entry(time, LogKind::Stdout, self.masker.mask(line)));
    }

    /// The closing entry carrying the exit code.
    pub fn exit_code(&mut self, code: i32) -> LogLine {
        let time = self.elapsed();
        self.entry(time, LogKind::ExitCode, Bytes::from(code.to_string()))
    }

    fn entry(&mut self, time: i64, kind: LogKind, data: Bytes) -> LogLine {
        let line = self.next;
        self.next += 1;
        LogLine { line, time, kind, data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[LogLine]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(&l.data).into_owned())
            .collect()
    }

    /// The usual batch goes out as it came, numbered on from the lines before it and masked;
    /// the same lines through `batch_into` give the same entries; a batch that needs splitting
    /// or cutting comes back untouched.
    #[tokio::test]
    async fn a_batch_of_lines_is_numbered_and_masked_as_it_is() {
        let lines = |v: &[&str]| Batch {
            items: v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect(),
            lines: true,
        };
        let mut w = LineWriter::new(Masker::new(["hunter22"]));
        let mut out = Vec::new();
        w.batch_into(lines(&["zero"]), &mut out);
        let got = w
            .line_batch(lines(&["one", "pw hunter22 !", ""]))
            .expect("the usual batch");
        assert_eq!(got.first, 1);
        let texts: Vec<&[u8]> = got.lines.iter().map(|l| &l[..]).collect();
        assert_eq!(texts, [&b"one"[..], b"pw ******** !", b""]);
        out.extend(got.into_lines());
        let mut again = Vec::new();
        let mut w2 = LineWriter::new(Masker::new(["hunter22"]));
        w2.batch_into(lines(&["zero"]), &mut again);
        w2.batch_into(lines(&["one", "pw hunter22 !", ""]), &mut again);
        assert_eq!(out, again);
        let numbers: Vec<u32> = out.iter().map(|l| l.line).collect();
        assert_eq!(numbers, [0, 1, 2, 3]);
        let not_lines = Batch {
            items: vec![Bytes::from_static(b"a\nb")],
            lines: false,
        };
        assert_eq!(
            w.line_batch(not_lines),
            Err(Batch {
                items: vec![Bytes::from_static(b"a\nb")],
                lines: false
            })
        );
        let long = lines(&[&"x".repeat(MAX_LINE + 1)]);
        assert!(
            w.line_batch(long).is_err(),
            "a line over the bound is cut by batch_into"
        );
        assert_eq!(
            w.line_batch(lines(&["next"])).map(|b| b.first),
            Ok(4),
            "nothing numbered meanwhile"
        );
    }

    #[test]
    fn masks_trimmed_long_values_only() {
        let m = Masker::new(["  hunter22 \n", "abc", "line1\nline2"]);
        let out = m.mask(Bytes::from_static(b"pw=hunter22 short=abc l=line2"));
        assert_eq!(&out[..], b"pw=******** short=abc l=********");
    }

    #[test]
    fn masks_every_occurrence_and_leaves_short_values() {
        let m = Masker::new(["hunter2", "abc", "   "]);
        let out = m.mask(Bytes::from_static(b"a hunter2 b hunter2hunter2 abc"));
        assert_eq!(&out[..], b"a ******** b **************** abc");
    }

    #[test]
    fn masks_the_longer_secret_first() {
        let m = Masker::new(["secret", "secret-long"]);
        assert_eq!(&m.mask(Bytes::from_static(b"x secret-long y"))[..], b"x ******** y");
    }

    #[tokio::test]
    async fn numbers_lines_and_splits() {
        let mut w = LineWriter::new(Masker::default());
        let a = w.lines(Bytes::from_static(b"one\n"));
        let b = w.lines(Bytes::from_static(b"two\nthree"));
        assert_eq!(texts(&a), ["one"]);
        assert_eq!(texts(&b), ["two", "three"]);
        assert_eq!(b.iter().map(|l| l.line).collect::<Vec<_>>(), [1, 2]);
        let big = w.lines(Bytes::from(vec![b'x'; MAX_LINE * 2 + 5]));
        assert_eq!(
            big.iter().map(|l| l.data.len()).collect::<Vec<_>>(),
            [MAX_LINE, MAX_LINE, 5]
        );
        let exit = w.exit_code(3);
        assert_eq!(
            (exit.line, exit.kind, &exit.data[..]),
            (6, LogKind::ExitCode, &b"3"[..])
        );
    }

    #[tokio::test]
    async fn a_batch_of_lines_is_numbered_cut_and_masked_as_text_is() {
        let mut w = LineWriter::new(Masker::new(["hunter22"]));
        let mut out = Vec::new();
        let items = vec![
            Bytes::from_static(b"pw hunter22"),
            Bytes::new(),
            Bytes::from(vec![b'x'; MAX_LINE + 1]),
        ];
        w.batch_into(Batch { items, lines: true }, &mut out);
        let lens: Vec<usize> = out.iter().map(|l| l.data.len()).collect();
        assert_eq!(lens, [11, 0, MAX_LINE, 1]);
        assert_eq!(&out[0].data[..], b"pw ********");
        assert_eq!(out.iter().map(|l| l.line).collect::<Vec<_>>(), [0, 1, 2, 3]);
    }

    #[tokio::test]
    async fn a_batch_of_short_lines_is_masked_line_by_line() {
        let mut w = LineWriter::new(Masker::new(["hunter22"]));
        let mut out = Vec::new();
        let items = vec![Bytes::from_static(b"pw hunter22"), Bytes::from_static(b"hunter2 x")];
        w.batch_into(Batch { items, lines: true }, &mut out);
        assert_eq!(texts(&out), ["pw ********", "hunter2 x"]);
        assert_eq!(out.iter().map(|l| l.line).collect::<Vec<_>>(), [0, 1]);
    }

    #[tokio::test]
    async fn batches_without_secrets_are_numbered_on_from_text_and_still_cut() {
        let mut w = LineWriter::new(Masker::default());
        let mut out = Vec::new();
        let lines = |items: Vec<Bytes>| Batch { items, lines: true };
        w.batch_into(lines(vec![Bytes::from_static(b"a"), Bytes::new()]), &mut out);
        w.batch_into(
            Batch {
                items: vec![Bytes::from_static(b"b\nc")],
                lines: false,
            },
            &mut out,
        );
        w.batch_into(lines(vec![Bytes::from_static(b"d")]), &mut out);
        // A line over the bound in an otherwise plain batch is cut as ever.
        w.batch_into(
            lines(vec![Bytes::from_static(b"e"), Bytes::from(vec![b'x'; MAX_LINE + 2])]),
            &mut out,
        );
        w.batch_into(lines(vec![Bytes::from_static(b"f")]), &mut out);
        let lens: Vec<usize> = out.iter().map(|l| l.data.len()).collect();
        assert_eq!(lens, [1, 0, 1, 1, 1, 1, MAX_LINE, 2, 1]);
        assert_eq!(
            texts(&out).iter().filter(|t| t.len() < 2).cloned().collect::<Vec<_>>(),
            ["a", "", "b", "c", "d", "e", "f"]
        );
        assert_eq!(
            out.iter().map(|l| l.line).collect::<Vec<_>>(),
            (0..9).collect::<Vec<_>>()
        );
        assert!(out.iter().all(|l| l.kind == LogKind::Stdout && l.time == 0));
    }

    #[tokio::test]
    async fn empty_line_is_kept() {
        let mut w = LineWriter::new(Masker::default());
        assert_eq!(texts(&w.lines(Bytes::new())), [""]);
    }
}
