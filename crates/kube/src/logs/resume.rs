//! Resuming a log without loss or repeat, apart from any I/O: parse the kubelet's RFC 3339
//! line timestamps, remember the last delivered stamp and how many lines carried it, and drop
//! exactly the repeat after a reconnect with `sinceTime`. Knows nothing of HTTP or pods.

use bytes::{Buf, Bytes};

use crate::decode::Piece;
use crate::time::StampParser;
pub use crate::time::{Stamp, format_seconds, parse_rfc3339};

/// The resume bookkeeping, apart from I/O: strips timestamps, remembers the last delivered
/// stamp and its count, and drops the repeat after a reconnect.
#[derive(Debug, Default, Clone)]
pub struct Dedup {
    /// The last delivered line's stamp, and how many delivered lines had exactly it.
    last: Option<(Stamp, u32)>,
    /// While replaying after a reconnect: lines before this stamp, and this many at it, repeat.
    skip: Option<(Stamp, u32)>,
    /// Whether the head of the current (cut) line was delivered, so its pieces are too.
    head_delivered: bool,
    parser: StampParser,
}

impl Dedup {
    /// Where to resume: the `sinceTime` for the next request.
    pub fn since_time(&self) -> Option<String> {
        self.last.map(|(stamp, _)| format_seconds(stamp.0))
    }

    /// A new stream starts (from `since_time`): what follows repeats up to the last line.
    pub fn restart(&mut self) {
        self.skip = self.last;
        self.head_delivered = false;
    }

    /// Whether a stream line (stamp included) is older than the last delivered line: true
    /// too when nothing was delivered or the line has no stamp.
    pub fn before_last(&mut self, line: &Bytes) -> bool {
        match (self.last, split_with(&mut self.parser, line)) {
            (Some((t, _)), Some((stamp, _))) => stamp < t,
            _ => true,
        }
    }

    /// The text to deliver for one piece of the stream, if it is new.
    pub fn accept(&mut self, piece: Piece) -> Option<Bytes> {
        if piece.cont {
            return self.head_delivered.then_some(piece.data);
        }
        let at = self.accept_head(&piece.data)?;
        // The piece itself, moved past its stamp: no new reference to the buffer.
        let mut text = piece.data;
        text.advance(at);
        Some(text)
    }

    /// For the head of a stream line (the whole line, or the first piece of a cut one), stamp
    /// included: where its text starts if the line is new, `None` if it repeats. A line without
    /// a timestamp (which should not happen with timestamps=true) is new, all of it text.
    pub fn accept_head(&mut self, line: &[u8]) -> Option<usize> {
        let Some((stamp, at)) = stamp_end(&mut self.parser, line) else {
            self.head_delivered = true;
            return Some(0);
        };
        if let Some((t, n)) = &mut self.skip {
            if stamp < *t || (stamp == *t && *n > 0) {
                if stamp == *t {
                    *n -= 1;
                }
                self.head_delivered = false;
                return None;
            }
            self.skip = None;
        }
        self.last = match self.last {
            Some((t, n)) if t == stamp => Some((t, n + 1)),
            _ => Some((stamp, 1)),
        };
        self.head_delivered = true;
        Some(at)
    }
}

/// Splits `"<RFC 3339> <text>"` into the parsed stamp and the text (a zero-copy slice).
pub fn split_stamp(line: &Bytes) -> Option<(Stamp, Bytes)> {
    split_with(&mut StampParser::default(), line)
}

fn split_with(parser: &mut StampParser, line: &Bytes) -> Option<(Stamp, Bytes)> {
    let (stamp, at) = stamp_end(parser, line)?;
    Some((stamp, line.slice(at..)))
}

/// The stamp of a stream line and where its text starts (after the space).
fn stamp_end(parser: &mut StampParser, line: &[u8]) -> Option<(Stamp, usize)> {
    // The kubelet's usual stamp (nine fraction digits, `Z`) and its space, without a search:
    // a stamp that parses has no space before it when its date and time are split by a `T`,
    // so the search below would have found this space too.
    if let Some(usual) = line.first_chunk::<31>()
        && usual[30] == b' '
        && usual[10] == b'T'
        && let Some(stamp) = parser.parse_usual(usual.first_chunk::<30>().unwrap_or(&[0; 30]))
    {
        return Some((stamp, 31));
    }
    search_stamp_end(parser, line)
}

/// [`stamp_end`] by searching: the first space within 40 bytes ends the stamp.
fn search_stamp_end(parser: &mut StampParser, line: &[u8]) -> Option<(Stamp, usize)> {
    let space = memchr::memchr(b' ', &line[..line.len().min(40)]);
    let (head, at) = match space {
        Some(i) => (&line[..i], i + 1),
        None => (line, line.len()),
    };
    Some((parser.parse(head)?, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_stamp_is_found_as_the_search_finds_it() {
        let stamps = [
            "2026-12-03T11:22:33.123456789Z",
            "2026-12-03T11:22:33.12345678Z",
            "2026-12-03T11:22:33Z",
            "2026-12-03T11:22:33.123456789+01:00",
            "2026-12-03t11:22:33.123456789Z",
            "2026-12-03 11:22:33.123456789Z",
            "2026-12-03T11:22:33.1234567891Z",
            "2026-12-03T11:22:33.123456789X",
            "2026-12-03T11:22:3 .123456789Z",
            "2026-12-03T11:22:33.12345 789Z",
            "2026-13-03T11:22:33.123456789Z",
            "",
        ];
        let mut parser = StampParser::default();
        for stamp in stamps {
            for rest in ["", " ", " text", "  two spaces", "x", "Z text"] {
                let line = format!("{stamp}{rest}");
                assert_eq!(
                    stamp_end(&mut parser, line.as_bytes()),
                    search_stamp_end(&mut StampParser::default(), line.as_bytes()),
                    "{line:?}"
                );
            }
        }
    }
}
