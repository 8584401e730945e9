//! Durations as Kubernetes and its add-ons write them: Go's
//! `time.ParseDuration` syntax (`30s`, `1h30m`, `1.5h`, `300ms`, `0`) for
//! flags and API fields, Karpenter's `Never`, and Go's
//! `time.Duration.String()` for printing (`15s`, `1m0s`, `500ms`).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    pub input: String,
    pub reason: &'static str,
}

fn err(input: &str, reason: &'static str) -> DurationError {
    DurationError {
        input: input.to_string(),
        reason,
    }
}

/// Nanoseconds per unit, longest unit names first so `ms` wins over `m`.
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a duration in Go's syntax: a sequence of decimal numbers, each
/// with an optional fraction and a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`,
/// `h`); `0` alone needs no unit. Negative durations are refused (nothing
/// Outrigger reads may be negative).
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(err(input, "empty"));
    }
    if s.starts_with('-') {
        return Err(err(input, "negative"));
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(num_end);
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if int.is_empty() && frac.is_empty() {
            return Err(err(input, "expected a number"));
        }
        if frac.contains('.') {
            return Err(err(input, "more than one decimal point"));
        }
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        if unit.is_empty() {
            return Err(err(input, "missing unit (ns, us, ms, s, m, h)"));
        }
        let per = UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, n)| *n)
            .ok_or_else(|| err(input, "unknown unit (ns, us, ms, s, m, h)"))?;
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| err(input, "number too large"))?
        };
        let mut part = whole
            .checked_mul(per)
            .ok_or_else(|| err(input, "too large"))?;
        // The fraction, truncated to nanoseconds as Go does.
        let mut scale = per;
        for d in frac.bytes().take(30) {
            scale /= 10;
            if scale == 0 {
                break;
            }
            part += u128::from(d - b'0') * scale;
        }
        total = total
            .checked_add(part)
            .ok_or_else(|| err(input, "too large"))?;
        rest = next;
    }
    if total > i64::MAX as u128 {
        return Err(err(input, "too large"));
    }
    Ok(Duration::from_nanos(total as u64))
}

/// Karpenter's nillable durations (`consolidateAfter`, `expireAfter`,
/// `terminationGracePeriod`): `Never` is `None`, anything else a Go
/// duration.
pub fn parse_or_never(input: &str) -> Result<Option<Duration>, DurationError> {
    if input.trim() == "Never" {
        return Ok(None);
    }
    parse(input).map(Some)
}

/// A duration as Go's `time.Duration.String()` prints it (`metav1.Duration`
/// in JSON): `15s`, `15.012s`, `1m0s`, `500ms`, `0s`.
pub fn format_go(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let frac = |int: u64, frac: u64, digits: u32| {
        let mut f = format!("{frac:0width$}", width = digits as usize);
        while f.ends_with('0') {
            f.pop();
        }
        if f.is_empty() {
            int.to_string()
        } else {
            format!("{int}.{f}")
        }
    };
    let s = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", frac(u / 1_000, u % 1_000, 3))
    } else if u < 1_000_000_000 {
        format!("{}ms", frac(u / 1_000_000, u % 1_000_000, 6))
    } else {
        let mut out = String::new();
        let h = u / 3_600_000_000_000;
        u %= 3_600_000_000_000;
        let m = u / 60_000_000_000;
        u %= 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&format!(
            "{}s",
            frac(u / 1_000_000_000, u % 1_000_000_000, 9)
        ));
        out
    };
    if neg { format!("-{s}") } else { s }
}

/// [`format_go`] of a `Duration` (saturating at Go's largest duration).
pub fn format(d: Duration) -> String {
    format_go(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_like_go() {
        let secs = Duration::from_secs;
        assert_eq!(parse("30s"), Ok(secs(30)));
        assert_eq!(parse("1h30m"), Ok(secs(5400)));
        assert_eq!(parse("1.5h"), Ok(secs(5400)));
        assert_eq!(parse("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse("1m30s"), Ok(secs(90)));
        assert_eq!(parse("720h"), Ok(secs(720 * 3600)));
        assert_eq!(parse("2h45m10.5s"), Ok(Duration::from_millis(9_910_500)));
        assert_eq!(parse("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse("10µs"), Ok(Duration::from_micros(10)));
        assert_eq!(parse("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse(".5s"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn refuses_what_go_refuses() {
        for s in ["", "10", "5d", "1h 30m", "abc", "1..5s", "s", "-1s", "1e3s"] {
            assert!(parse(s).is_err(), "{s}");
        }
        assert!(parse("9999999999h").is_err());
    }

    #[test]
    fn never_is_none() {
        assert_eq!(parse_or_never("Never"), Ok(None));
        assert_eq!(parse_or_never("30s"), Ok(Some(Duration::from_secs(30))));
        assert!(parse_or_never("never").is_err());
    }

    #[test]
    fn prints_like_go() {
        assert_eq!(format_go(0), "0s");
        assert_eq!(format_go(15_000_000_000), "15s");
        assert_eq!(format_go(15_012_000_000), "15.012s");
        assert_eq!(format_go(60_000_000_000), "1m0s");
        assert_eq!(format_go(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(format_go(500_000_000), "500ms");
        assert_eq!(format_go(1_500), "1.5µs");
        assert_eq!(format_go(-2_000_000_000), "-2s");
        assert_eq!(format(Duration::from_secs(600)), "10m0s");
    }

    proptest! {
        #[test]
        fn round_trips(n in 0i64..i64::MAX) {
            let s = format_go(n);
            prop_assert_eq!(parse(&s), Ok(Duration::from_nanos(n as u64)));
        }

        #[test]
        fn never_panics(s in "\\PC{0,30}") {
            let _ = parse(&s);
        }
    }
}
