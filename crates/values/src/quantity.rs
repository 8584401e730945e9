//! Kubernetes quantities (`100m`, `1.5Gi`, `2e3`, `128974848`), parsed
//! exactly into nano-units, and printed in the one canonical form the API
//! server uses: decimal (`3155m`, `4`, `2k`) for cpu and counts, binary
//! (`120Mi`, `1Ti`) for bytes. Every quantity Outrigger prints goes through
//! [`Quantity`]'s `Display`, [`Quantity::binary`] or [`format_resource`].
//!
//! The grammar is `<sign><digits>[.<digits>]<suffix>` with a binary-SI
//! suffix (Ki Mi Gi Ti Pi Ei), a decimal-SI suffix (n u m k M G T P E, or
//! none) or a decimal exponent (`e`/`E` and a signed integer). As in
//! Kubernetes, precision finer than a nano-unit is rounded up. Values are
//! held as `i128` nano-units, which is exact for every quantity up to 1e29.

use std::fmt;

/// A quantity in nano-units (1 = 1e-9 of the unit: of a core for cpu, of a
/// byte for memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Quantity(pub i128);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid quantity {input:?}: {reason}")]
pub struct QuantityError {
    pub input: String,
    pub reason: &'static str,
}

const NANO: i128 = 1_000_000_000;
/// Beyond this a value no longer fits the nano-unit representation.
const MAX_NANOS: i128 = 10i128.pow(38);

fn err(input: &str, reason: &'static str) -> QuantityError {
    QuantityError {
        input: input.to_string(),
        reason,
    }
}

impl Quantity {
    pub const ZERO: Quantity = Quantity(0);

    pub fn from_nanos(n: i128) -> Self {
        Quantity(n)
    }

    pub fn from_units(u: i64) -> Self {
        Quantity(u as i128 * NANO)
    }

    pub fn from_millis(m: i64) -> Self {
        Quantity(m as i128 * 1_000_000)
    }

    pub fn nanos(self) -> i128 {
        self.0
    }

    /// Milli-units, rounded up (Kubernetes `MilliValue`).
    pub fn milli_ceil(self) -> i128 {
        div_ceil(self.0, 1_000_000)
    }

    /// Whole units, rounded up (Kubernetes `Value`).
    pub fn value_ceil(self) -> i128 {
        div_ceil(self.0, NANO)
    }

    pub fn parse(input: &str) -> Result<Self, QuantityError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(err(input, "empty"));
        }
        let (neg, body) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (number, suffix) = body.split_at(num_end);
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err(input, "no digits"));
        }
        if frac_part.contains('.') {
            return Err(err(input, "more than one decimal point"));
        }
        // (multiplier numerator, power of ten) applied to the number.
        let (mul, pow10): (i128, i32) = match suffix {
            "" => (1, 0),
            "n" => (1, -9),
            "u" => (1, -6),
            "m" => (1, -3),
            "k" => (1, 3),
            "M" => (1, 6),
            "G" => (1, 9),
            "T" => (1, 12),
            "P" => (1, 15),
            "E" => (1, 18),
            "Ki" => (1 << 10, 0),
            "Mi" => (1 << 20, 0),
            "Gi" => (1 << 30, 0),
            "Ti" => (1 << 40, 0),
            "Pi" => (1 << 50, 0),
            "Ei" => (1 << 60, 0),
            e if e.starts_with(['e', 'E']) => {
                let exp: i32 = e[1..].parse().map_err(|_| err(input, "invalid exponent"))?;
                if !(-40..=40).contains(&exp) {
                    return Err(err(input, "exponent out of range"));
                }
                (1, exp)
            }
            _ => return Err(err(input, "unknown suffix")),
        };
        // digits as an integer, scaled by 10^-frac_len
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 38 {
            return Err(err(input, "too many digits"));
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| err(input, "invalid digits"))?
        };
        // nanos = mantissa * mul * 10^(pow10 + 9 - frac_len), rounded up
        let exp = pow10 + 9 - frac_part.len() as i32;
        let value = mantissa
            .checked_mul(mul)
            .ok_or_else(|| err(input, "too large"))?;
        let nanos = if exp >= 0 {
            let scale = 10i128
                .checked_pow(exp as u32)
                .ok_or_else(|| err(input, "too large"))?;
            value
                .checked_mul(scale)
                .ok_or_else(|| err(input, "too large"))?
        } else {
            let scale = 10i128.checked_pow((-exp) as u32).unwrap_or(i128::MAX);
            div_ceil(value, scale)
        };
        if nanos > MAX_NANOS {
            return Err(err(input, "too large"));
        }
        Ok(Quantity(if neg { -nanos } else { nanos }))
    }
}

fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && ((a > 0) == (b > 0)) {
        q + 1
    } else {
        q
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl Quantity {
    /// Kubernetes' canonical form of a binary-SI quantity (bytes): the
    /// largest of `Ki`..`Ei` that represents a whole value of 1024 or more
    /// exactly (`120Mi`, `1Ti`, `1536Ki`), the plain number for other whole
    /// values from 1024 (`2000`), and the decimal form below 1024 or for a
    /// fraction (`1k`, `999`, `1500m`).
    pub fn binary(self) -> Binary {
        Binary(self)
    }
}

/// [`Quantity::binary`]'s display.
#[derive(Clone, Copy, Debug)]
pub struct Binary(Quantity);

impl fmt::Display for Binary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.0;
        if n % NANO == 0 && n.abs() >= 1024 * NANO {
            let units = n / NANO;
            for (suffix, size) in [
                ("Ei", 1i128 << 60),
                ("Pi", 1 << 50),
                ("Ti", 1 << 40),
                ("Gi", 1 << 30),
                ("Mi", 1 << 20),
                ("Ki", 1 << 10),
            ] {
                if units % size == 0 {
                    return write!(f, "{}{suffix}", units / size);
                }
            }
            // Whole, but no binary suffix fits: the plain number.
            return write!(f, "{units}");
        }
        write!(f, "{}", self.0)
    }
}

/// Whether a resource is counted in bytes (printed in binary form).
pub fn is_bytes(resource: &str) -> bool {
    matches!(resource, "memory" | "ephemeral-storage" | "storage")
        || resource.starts_with("hugepages-")
}

/// A resource value as Kubernetes prints it: `value` in the resource's
/// base unit scaled by `1/scale` (cpu is usually held in millicores:
/// `scale` 1000). Bytes in binary form, everything else decimal.
pub fn format_scaled(resource: &str, value: i64, scale: i64) -> String {
    let q = Quantity(value as i128 * NANO / scale.max(1) as i128);
    if is_bytes(resource) {
        q.binary().to_string()
    } else {
        q.to_string()
    }
}

/// A resource value as Kubernetes prints it, cpu given in millicores and
/// everything else in its base unit: `format_resource("cpu", 3155)` is
/// `3155m`, `("memory", 1 << 40)` is `1Ti`, `("pods", 6)` is `6`.
pub fn format_resource(resource: &str, value: i64) -> String {
    let scale = if resource == "cpu" { 1000 } else { 1 };
    format_scaled(resource, value, scale)
}

/// Canonical decimal form: the largest of `""`, `m`, `u`, `n` (or `k`..`E`)
/// that represents the value exactly.
impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n == 0 {
            return write!(f, "0");
        }
        for (suffix, scale) in [
            ("E", 10i128.pow(27)),
            ("P", 10i128.pow(24)),
            ("T", 10i128.pow(21)),
            ("G", 10i128.pow(18)),
            ("M", 10i128.pow(15)),
            ("k", 10i128.pow(12)),
            ("", NANO),
            ("m", 1_000_000),
            ("u", 1_000),
        ] {
            if n % scale == 0 {
                return write!(f, "{}{suffix}", n / scale);
            }
        }
        write!(f, "{n}n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(s: &str) -> i128 {
        Quantity::parse(s).unwrap().nanos()
    }

    #[test]
    fn suffixes() {
        assert_eq!(q("1"), NANO);
        assert_eq!(q("100m"), 100_000_000);
        assert_eq!(q("1.5"), 1_500_000_000);
        assert_eq!(q("250u"), 250_000);
        assert_eq!(q("7n"), 7);
        assert_eq!(q("1k"), 1000 * NANO);
        assert_eq!(q("1Ki"), 1024 * NANO);
        assert_eq!(q("128Mi"), 128 * (1 << 20) * NANO);
        assert_eq!(q("1.5Gi"), 3 * (1 << 29) * NANO);
        assert_eq!(q("2e3"), 2000 * NANO);
        assert_eq!(q("12E-3"), 12_000_000);
        assert_eq!(q("-2"), -2 * NANO);
        assert_eq!(q(".5"), NANO / 2);
        assert_eq!(q("5."), 5 * NANO);
        assert_eq!(q("0"), 0);
    }

    #[test]
    fn finer_than_nano_rounds_up() {
        assert_eq!(q("0.0000000001"), 1);
        assert_eq!(q("1.0000000001"), NANO + 1);
        assert_eq!(q("0.5n"), 1);
    }

    #[test]
    fn kubernetes_rounding() {
        let c = Quantity::parse("100500u").unwrap(); // 100.5m
        assert_eq!(c.milli_ceil(), 101);
        let m = Quantity::parse("0.5").unwrap();
        assert_eq!(m.value_ceil(), 1);
        assert_eq!(Quantity::parse("3155m").unwrap().milli_ceil(), 3155);
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "", "m", "1.2.3", "1Kb", "1 Gi", "--1", "1e", "1e99", "abc", ".",
        ] {
            assert!(Quantity::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn binary_display() {
        let b = |s: &str| Quantity::parse(s).unwrap().binary().to_string();
        assert_eq!(b("120Mi"), "120Mi");
        assert_eq!(b("1Ti"), "1Ti");
        assert_eq!(b("1024Gi"), "1Ti");
        assert_eq!(b("1536Ki"), "1536Ki");
        assert_eq!(b("1000"), "1k");
        assert_eq!(b("999"), "999");
        assert_eq!(b("2000"), "2000");
        assert_eq!(b("1024"), "1Ki");
        assert_eq!(b("1023"), "1023");
        assert_eq!(b("0"), "0");
        assert_eq!(b("1.5"), "1500m");
        assert_eq!(b("-2Gi"), "-2Gi");
    }

    #[test]
    fn resources_print_as_kubernetes_prints_them() {
        assert_eq!(format_resource("cpu", 3155), "3155m");
        assert_eq!(format_resource("cpu", 4000), "4");
        assert_eq!(format_resource("memory", 120 << 20), "120Mi");
        assert_eq!(format_resource("memory", 1 << 40), "1Ti");
        assert_eq!(format_resource("ephemeral-storage", 20 << 30), "20Gi");
        assert_eq!(format_resource("hugepages-2Mi", 4 << 20), "4Mi");
        assert_eq!(format_resource("pods", 6), "6");
        assert_eq!(format_resource("nvidia.com/gpu", 1), "1");
        assert_eq!(format_resource("memory", 0), "0");
        assert_eq!(format_scaled("cpu", 12_345, 1_000_000_000), "12345n");
        assert_eq!(format_scaled("cpu", 2_000_000_000, 1_000_000_000), "2");
    }

    #[test]
    fn canonical_display() {
        assert_eq!(Quantity::parse("1000m").unwrap().to_string(), "1");
        assert_eq!(Quantity::parse("1500m").unwrap().to_string(), "1500m");
        assert_eq!(Quantity::parse("2k").unwrap().to_string(), "2k");
        assert_eq!(Quantity::parse("7n").unwrap().to_string(), "7n");
        assert_eq!(Quantity::ZERO.to_string(), "0");
    }

    proptest! {
        #[test]
        fn display_round_trips(n in -(10i128.pow(30))..10i128.pow(30)) {
            let s = Quantity(n).to_string();
            prop_assert_eq!(Quantity::parse(&s).unwrap(), Quantity(n));
        }

        #[test]
        fn binary_round_trips(n in -(10i128.pow(20))..10i128.pow(20)) {
            let s = Quantity(n).binary().to_string();
            prop_assert_eq!(Quantity::parse(&s).unwrap(), Quantity(n));
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = Quantity::parse(&s);
        }

        #[test]
        fn binary_suffixes_are_exact(v in 0i64..1_000_000, i in 0usize..6) {
            let (suffix, mul) = [("Ki", 1i128 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40), ("Pi", 1 << 50), ("Ei", 1 << 60)][i];
            prop_assert_eq!(q(&format!("{v}{suffix}")), v as i128 * mul * NANO);
        }
    }
}
