//! RFC 3339 timestamps as the API writes them (log line stamps, credential expiries): parsed to
//! (seconds since the epoch, nanoseconds) and whole seconds formatted back. One parser for the
//! whole client; [`StampParser`] remembers the last date-and-time so a log's stamps, which share
//! it line after line, cost a comparison and the fraction.

/// A timestamp as (seconds since the epoch, nanoseconds): compared, never string-compared
/// (older kubelets trim trailing zeros of the fraction).
pub type Stamp = (i64, u32);

/// `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|±HH:MM)` to (UTC seconds, nanoseconds).
pub fn parse_rfc3339(s: &str) -> Option<Stamp> {
    StampParser::default().parse(s.as_bytes())
}

/// [`parse_rfc3339`] with a memory of the last `YYYY-MM-DDTHH:MM:SS` it parsed.
#[derive(Debug, Default, Clone)]
pub struct StampParser {
    last: Option<([u8; 19], i64)>,
}

impl StampParser {
    pub fn parse(&mut self, b: &[u8]) -> Option<Stamp> {
        let head: &[u8; 19] = b.get(..19)?.try_into().ok()?;
        let civil = match &self.last {
            Some((h, secs)) if same_head(h, head) => *secs,
            _ => {
                let secs = civil_seconds(head)?;
                self.last = Some((*head, secs));
                secs
            }
        };
        let (nanos, rest) = fraction(&b[19..])?;
        let offset = match rest {
            b"Z" | b"z" => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let (h, m) = (two(*h1, *h2)?, two(*m1, *m2)?);
                if h > 23 || m > 59 {
                    return None;
                }
                let secs = h * 3600 + m * 60;
                if *sign == b'-' { -secs } else { secs }
            }
            _ => return None,
        };
        Some((civil - offset, nanos))
    }

    /// [`Self::parse`] for the kubelet's own form, `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (the 30
    /// bytes of Go's fixed nanosecond layout it writes stamps in): when the date and time are
    /// the last parsed ones, the stamp is those seconds and the nine digits read as one word
    /// and one more, with no slicing on the way (a busy log parses a million of them).
    /// Anything else goes to [`Self::parse`], so the result is always what it would give.
    pub fn parse_usual(&mut self, b: &[u8; 30]) -> Option<Stamp> {
        if let Some((head, secs)) = &self.last
            && b[19] == b'.'
            && b[29] == b'Z'
            && b[28].is_ascii_digit()
            && same_head(head, b.first_chunk::<19>().unwrap_or(&[0; 19]))
            && let Some(eight) = b[20..28].first_chunk::<8>().and_then(|c| eight_digits(*c))
        {
            return Some((*secs, eight * 10 + u32::from(b[28] - b'0')));
        }
        self.parse(b)
    }
}

/// Two `YYYY-MM-DDTHH:MM:SS` heads compared as two words (the line after line case: a slice
/// comparison is a `memcmp` call at the size-optimised level).
fn same_head(a: &[u8; 19], b: &[u8; 19]) -> bool {
    let word = |x: &[u8; 19], at: usize| u128::from_ne_bytes(x[at..at + 16].try_into().unwrap_or_default());
    word(a, 0) == word(b, 0) && word(a, 3) == word(b, 3)
}

/// `YYYY-MM-DDTHH:MM:SS` as seconds since the epoch, read as UTC.
fn civil_seconds(b: &[u8; 19]) -> Option<i64> {
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = two(b[0], b[1])? * 100 + two(b[2], b[3])?;
    let (month, day) = (two(b[5], b[6])?, two(b[8], b[9])?);
    let (hour, minute, second) = (two(b[11], b[12])?, two(b[14], b[15])?, two(b[17], b[18])?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// An optional `.digits` (any count, the first nine kept) and what follows it.
fn fraction(b: &[u8]) -> Option<(u32, &[u8])> {
    let Some(frac) = b.strip_prefix(b".") else {
        return Some((0, b));
    };
    if let Some(eight) = frac.first_chunk::<8>().and_then(|c| eight_digits(*c)) {
        // The common case (a kubelet writes nanoseconds, trailing zeros trimmed): at least
        // eight digits, read at once; then a ninth, and any beyond it skipped.
        let (mut digits, mut nanos) = (8, eight * 10);
        if let Some(c) = frac.get(8).filter(|c| c.is_ascii_digit()) {
            nanos += u32::from(c - b'0');
            digits = 9;
            while frac.get(digits).is_some_and(u8::is_ascii_digit) {
                digits += 1;
            }
        }
        return Some((nanos, &frac[digits..]));
    }
    // One pass: the digits counted, the first nine kept.
    let (mut digits, mut nanos) = (0, 0u32);
    while let Some(c) = frac.get(digits).filter(|c| c.is_ascii_digit()) {
        if digits < 9 {
            nanos = nanos * 10 + u32::from(c - b'0');
        }
        digits += 1;
    }
    if digits == 0 {
        return None;
    }
    let kept = digits.min(9);
    const SCALE: [u32; 10] = [
        1_000_000_000,
        100_000_000,
        10_000_000,
        1_000_000,
        100_000,
        10_000,
        1000,
        100,
        10,
        1,
    ];
    Some((nanos * SCALE[kept], &frac[digits..]))
}

/// Eight ASCII digits as their number, or `None` if any byte is not a digit. All eight at once
/// in one 64-bit word (first digit in the lowest byte): checked, then paired into four numbers
/// of two digits, then into one of eight.
fn eight_digits(bytes: [u8; 8]) -> Option<u32> {
    let word = u64::from_le_bytes(bytes);
    let d = word.wrapping_sub(0x3030_3030_3030_3030);
    // A byte below '0' borrows (its top bit is set), one above '9' reaches 0x80 with 0x46 added.
    if (word.wrapping_add(0x4646_4646_4646_4646) | d) & 0x8080_8080_8080_8080 != 0 {
        return None;
    }
    // Each even byte: ten times its digit plus the next one.
    let pairs = d.wrapping_mul(10).wrapping_add(d >> 8);
    let low = pairs & 0x0000_00FF_0000_00FF;
    let high = (pairs >> 16) & 0x0000_00FF_0000_00FF;
    let n = low
        .wrapping_mul(100 + (1_000_000 << 32))
        .wrapping_add(high.wrapping_mul(1 + (10_000 << 32)))
        >> 32;
    Some(n as u32)
}

fn two(a: u8, b: u8) -> Option<i64> {
    (a.is_ascii_digit() && b.is_ascii_digit()).then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_fraction_offsets_and_separators() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:34:56.123456789Z"),
            Some((1_709_210_096, 123_456_789))
        );
        assert_eq!(
            parse_rfc3339("2024-02-29t12:34:56.12z"),
            Some((1_709_210_096, 120_000_000))
        );
        assert_eq!(
            parse_rfc3339("2024-02-29 12:34:56.123456789123Z"),
            Some((1_709_210_096, 123_456_789)),
            "digits past nanoseconds are dropped"
        );
        assert_eq!(parse_rfc3339("2024-02-29T13:34:56+01:00"), Some((1_709_210_096, 0)));
        assert_eq!(parse_rfc3339("2024-02-29T11:04:56-01:30"), Some((1_709_210_096, 0)));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some((-1, 0)));
    }

    #[test]
    fn rejects_what_is_not_a_valid_instant() {
        for bad in [
            "",
            "2024-02-29",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-02-29T24:00:00Z",
            "2024-02-29T12:34:56",
            "2024-02-29T12:34:56.Z",
            "2024-02-29T12:34:56+1:00",
            "2024-02-29T12:34:56+24:00",
            "x024-02-29T12:34:56Z",
            "2024-02-29T12:34:56Zjunk",
            "2024-02-2９T12:34:56Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_remembered_date_and_time_never_changes_an_answer() {
        let mut p = StampParser::default();
        let stamps = [
            "2024-02-29T12:34:56.1Z",
            "2024-02-29T12:34:56.2Z",
            "2024-02-29T12:34:56.2+01:00",
            "2024-02-29T12:34:57Z",
            "2024-02-29T12:34:5xZ",
            "2024-02-29T12:34:57.000000001Z",
        ];
        for s in stamps {
            assert_eq!(p.parse(s.as_bytes()), parse_rfc3339(s), "{s}");
        }
    }

    #[test]
    fn the_usual_form_parses_as_any_stamp_does() {
        // Each byte of a kubelet stamp replaced by each of a few bytes, each read right after
        // the stamp it varies (so its date and time are remembered) and after another second.
        let usual = *b"2024-02-29T12:34:56.123456789Z";
        let other = *b"2024-02-29T12:34:57.000000001Z";
        let mut p = StampParser::default();
        for at in 0..usual.len() {
            for byte in [
                b'0', b'5', b'9', b'.', b'Z', b'z', b'T', b'+', b'-', b':', b' ', b'/', 0xff,
            ] {
                let mut b = usual;
                b[at] = byte;
                let want = std::str::from_utf8(&b).ok().and_then(parse_rfc3339);
                for before in [usual, other] {
                    assert_eq!(
                        p.parse_usual(&before),
                        parse_rfc3339(std::str::from_utf8(&before).unwrap())
                    );
                    assert_eq!(
                        p.parse_usual(&b),
                        want,
                        "{:?} after {:?}",
                        String::from_utf8_lossy(&b),
                        before
                    );
                }
            }
        }
    }

    /// The fraction read one digit at a time, as the fast path must agree with.
    fn slow_fraction(frac: &[u8]) -> Option<(u32, usize)> {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut nanos = 0u32;
        for i in 0..9 {
            nanos = nanos * 10 + frac.get(i).filter(|_| i < digits).map_or(0, |c| u32::from(c - b'0'));
        }
        (digits > 0).then_some((nanos, digits))
    }

    #[test]
    fn eight_digits_at_once_agree_with_one_at_a_time() {
        // Every digit in every position, fractions of 1 to 12 digits, and every byte that is
        // not a digit in each of the eight positions the word reads.
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for len in 1..=12 {
            for pos in 0..len {
                for d in b'0'..=b'9' {
                    let mut f: Vec<u8> = (0..len).map(|i| b'0' + ((i * 7 + 3) % 10) as u8).collect();
                    f[pos] = d;
                    cases.push(f);
                }
            }
        }
        for pos in 0..9 {
            for bad in (0..=255u8).filter(|c| !c.is_ascii_digit()) {
                let mut f = b"123456789".to_vec();
                f[pos] = bad;
                cases.push(f);
            }
        }
        for f in cases {
            let text = [&b"."[..], &f, b"Z"].concat();
            let fast = fraction(&text).map(|(nanos, rest)| (nanos, text.len() - 1 - rest.len()));
            assert_eq!(fast, slow_fraction(&f), "{}", String::from_utf8_lossy(&text));
            if let Ok(word) = <[u8; 8]>::try_from(&f[..f.len().min(8)]) {
                let slow = word
                    .iter()
                    .all(u8::is_ascii_digit)
                    .then(|| std::str::from_utf8(&word).unwrap().parse().unwrap());
                assert_eq!(eight_digits(word), slow, "{}", String::from_utf8_lossy(&word));
            }
        }
    }

    #[test]
    fn whole_seconds_round_trip() {
        for secs in [0i64, 951_782_400, 1_709_210_096, 4_102_444_800, -86_401] {
            let s = format_seconds(secs);
            assert_eq!(parse_rfc3339(&s), Some((secs, 0)), "{s}");
        }
        assert_eq!(format_seconds(1_709_210_096), "2024-02-29T12:34:56Z");
    }
}
