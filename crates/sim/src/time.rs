//! Wall-clock timestamps as the apiserver and kubelet print them: RFC 3339 in UTC, with whole
//! seconds for object metadata and nine fraction digits for log lines. Pure functions over
//! nanoseconds since the Unix epoch; no chrono.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, now.
pub fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// `2026-11-28T00:24:02Z`, the form of `creationTimestamp` and condition times.
pub fn rfc3339(nanos: i128) -> String {
    let (date, secs) = split(nanos);
    format!("{date}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `2026-11-28T00:24:02.123456789Z`, the kubelet's `timestamps=true` prefix.
pub fn rfc3339_nanos(nanos: i128) -> String {
    let (date, secs) = split(nanos);
    let frac = nanos.rem_euclid(1_000_000_000);
    format!(
        "{date}T{:02}:{:02}:{:02}.{frac:09}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The current time in the metadata form.
pub fn now() -> String {
    rfc3339(now_nanos())
}

fn split(nanos: i128) -> (String, i64) {
    let total = nanos.div_euclid(1_000_000_000) as i64;
    let days = total.div_euclid(86_400);
    let secs = total.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (format!("{y:04}-{m:02}-{d:02}"), secs)
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses RFC 3339 (`Z` or a numeric offset, optional fraction) into nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let mut rest = &s[19..];
    let mut frac: i128 = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut f = r[..digits.min(9)].to_string();
        while f.len() < 9 {
            f.push('0');
        }
        frac = f.parse().ok()?;
        rest = &r[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let v = o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60;
            if o.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se - offset;
    Some(secs as i128 * 1_000_000_000 + frac)
}

/// A short age as kubectl prints it: `5s`, `3m`, `2h`, `4d`.
pub fn age(since_nanos: i128, now_nanos: i128) -> String {
    let s = ((now_nanos - since_nanos) / 1_000_000_000).max(0);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 * 3 => format!("{}m", s / 60),
        s if s < 86_400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let t = parse_rfc3339("2026-11-28T00:24:02.5Z").unwrap();
        assert_eq!(rfc3339(t), "2026-11-28T00:24:02Z");
        assert_eq!(rfc3339_nanos(t), "2026-11-28T00:24:02.500000000Z");
        assert_eq!(
            parse_rfc3339("2026-11-28T01:24:02+01:00"),
            parse_rfc3339("2026-11-28T00:24:02Z")
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert!(parse_rfc3339("yesterday").is_none());
    }

    #[test]
    fn ages_like_kubectl() {
        let s = 1_000_000_000i128;
        assert_eq!(age(0, 5 * s), "5s");
        assert_eq!(age(0, 300 * s), "5m");
        assert_eq!(age(0, 5 * 3600 * s), "5h");
        assert_eq!(age(0, 3 * 86_400 * s), "3d");
    }
}
