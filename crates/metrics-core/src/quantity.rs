//! Kubernetes quantity strings for resource usage, in the canonical form the
//! API server would print: CPU as a decimal quantity from nanocores, memory as
//! a binary quantity from bytes.

/// CPU nanocores as a canonical decimal quantity: `2`, `250m`, `1500u`, `12345n`.
pub fn cpu_from_nanocores(n: u64) -> String {
    if n == 0 {
        return "0".to_string();
    }
    if n.is_multiple_of(1_000_000_000) {
        format!("{}", n / 1_000_000_000)
    } else if n.is_multiple_of(1_000_000) {
        format!("{}m", n / 1_000_000)
    } else if n.is_multiple_of(1_000) {
        format!("{}u", n / 1_000)
    } else {
        format!("{n}n")
    }
}

/// Bytes as a canonical binary quantity: `512Mi`, `1524Ki`, `1000`.
pub fn memory_from_bytes(b: u64) -> String {
    if b == 0 {
        return "0".to_string();
    }
    const UNITS: [(&str, u64); 5] = [
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    for (suffix, size) in UNITS {
        if b.is_multiple_of(size) {
            return format!("{}{suffix}", b / size);
        }
    }
    b.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cpu_forms() {
        assert_eq!(cpu_from_nanocores(0), "0");
        assert_eq!(cpu_from_nanocores(2_000_000_000), "2");
        assert_eq!(cpu_from_nanocores(250_000_000), "250m");
        assert_eq!(cpu_from_nanocores(1_500_000), "1500u");
        assert_eq!(cpu_from_nanocores(12_345), "12345n");
    }

    #[test]
    fn memory_forms() {
        assert_eq!(memory_from_bytes(0), "0");
        assert_eq!(memory_from_bytes(512 << 20), "512Mi");
        assert_eq!(memory_from_bytes(1524 * 1024), "1524Ki");
        assert_eq!(memory_from_bytes(1000), "1000");
        assert_eq!(memory_from_bytes(3 << 30), "3Gi");
    }

    fn parse_cpu(s: &str) -> u64 {
        let (num, mul) = match s.char_indices().last() {
            Some((i, 'm')) => (&s[..i], 1_000_000),
            Some((i, 'u')) => (&s[..i], 1_000),
            Some((i, 'n')) => (&s[..i], 1),
            _ => (s, 1_000_000_000),
        };
        num.parse::<u64>().unwrap() * mul
    }

    proptest! {
        #[test]
        fn cpu_round_trips(n in 0u64..10_000_000_000_000) {
            prop_assert_eq!(parse_cpu(&cpu_from_nanocores(n)), n);
        }
    }
}

/// A duration as Go's `time.Duration.String()` prints it (`metav1.Duration`
/// in JSON): `15s`, `15.012s`, `1m0s`, `500ms`, `0s`.
pub fn go_duration(nanos: i64) -> String {
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

#[cfg(test)]
mod duration_tests {
    use super::go_duration;

    #[test]
    fn like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(15_000_000_000), "15s");
        assert_eq!(go_duration(15_012_000_000), "15.012s");
        assert_eq!(go_duration(60_000_000_000), "1m0s");
        assert_eq!(go_duration(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(999), "999ns");
        assert_eq!(go_duration(-2_000_000_000), "-2s");
    }
}
