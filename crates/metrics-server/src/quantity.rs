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
