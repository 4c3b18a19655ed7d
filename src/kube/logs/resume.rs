//! Resuming a log without loss or repeat, apart from any I/O: parse the kubelet's RFC 3339
//! line timestamps, remember the last delivered stamp and how many lines carried it, and drop
//! exactly the repeat after a reconnect with `sinceTime`. Knows nothing of HTTP or pods.

use bytes::Bytes;

use crate::kube::decode::Piece;

/// A log timestamp as (seconds since the epoch, nanoseconds): compared, never string-compared
/// (older kubelets trim trailing zeros of the fraction).
pub type Stamp = (i64, u32);

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

    /// The text to deliver for one piece of the stream, if it is new.
    pub fn accept(&mut self, piece: Piece) -> Option<Bytes> {
        if piece.cont {
            return self.head_delivered.then_some(piece.data);
        }
        let Some((stamp, text)) = split_stamp(&piece.data) else {
            // No timestamp (should not happen with timestamps=true): pass it on as is.
            self.head_delivered = true;
            return Some(piece.data);
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
        Some(text)
    }
}

/// Splits `"<RFC 3339> <text>"` into the parsed stamp and the text (a zero-copy slice).
pub fn split_stamp(line: &Bytes) -> Option<(Stamp, Bytes)> {
    let space = line.iter().take(40).position(|&b| b == b' ');
    let (head, rest) = match space {
        Some(i) => (&line[..i], line.slice(i + 1..)),
        None => (&line[..], Bytes::new()),
    };
    let stamp = parse_rfc3339(std::str::from_utf8(head).ok()?)?;
    Some((stamp, rest))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to (UTC seconds, nanoseconds).
pub fn parse_rfc3339(s: &str) -> Option<Stamp> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = (i - start).min(9);
        if digits == 0 {
            return None;
        }
        nanos *= 10u32.pow(9 - digits as u32);
    }
    let offset = match &s[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && &tz[3..4] == ":" => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    Some((secs, nanos))
}

/// Whole seconds as `YYYY-MM-DDTHH:MM:SSZ` (what `sinceTime` gets cut to anyway).
pub fn format_seconds(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// Howard Hinnant's civil calendar algorithms (public domain).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
