//! Timestamps as CloudWatch Logs wants them: milliseconds since the epoch.
//!
//! Container runtimes write RFC 3339 times with nanoseconds
//! (`2026-11-30T10:00:00.123456789Z`); every line's time is read, so the
//! common shape is read by hand, and anything else through `jiff`.

/// Milliseconds since the Unix epoch of an RFC 3339 time, `None` if it is
/// not one.
pub fn millis(s: &str) -> Option<i64> {
    fast(s.as_bytes()).or_else(|| {
        s.parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond())
    })
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut n = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(c - b'0');
    }
    Some(n)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`, checked field by
/// field; anything unusual (leap seconds, lower-case `t`/`z`, a space) is
/// left to `jiff`.
fn fast(b: &[u8]) -> Option<i64> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0i64;
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let frac = &rest[1..1 + n];
        for i in 0..3 {
            millis = millis * 10 + frac.get(i).map_or(0, |c| i64::from(c - b'0'));
        }
        rest = &rest[1 + n..];
    }
    let offset_minutes = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2])?;
            let m = digits(&[*m1, *m2])?;
            if h > 23 || m > 59 {
                return None;
            }
            let o = h * 60 + m;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_times() {
        assert_eq!(millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            millis("2026-11-30T10:00:00.123456789Z"),
            Some(1_796_032_800_123)
        );
        assert_eq!(
            millis("2026-11-30T11:00:00.5+01:00"),
            Some(1_796_032_800_500)
        );
        assert_eq!(millis("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(millis("2023-02-29T00:00:00Z"), None);
        assert_eq!(millis("2026-11-30T10:00:00"), None);
        assert_eq!(millis("yesterday"), None);
        assert_eq!(millis("2026-11-30T10:00:00.Z"), None);
    }

    #[test]
    fn agrees_with_jiff() {
        for s in [
            "2000-02-29T23:59:59.999Z",
            "1999-12-31T23:59:59-08:00",
            "2100-03-01T00:00:00.000000001Z",
        ] {
            let j = s.parse::<jiff::Timestamp>().expect("jiff").as_millisecond();
            assert_eq!(fast(s.as_bytes()), Some(j), "{s}");
        }
    }
}
