//! Typed readers for the value kinds of the AWS Load Balancer Controller's
//! annotations (all values are strings): string, bool, int, stringList
//! (comma-separated, trimmed, empty items dropped), stringMap
//! (`k1=v1,k2=v2`) and JSON. A reader returns `Ok(None)` when the
//! annotation is absent and [`ModelError::InvalidAnnotation`] naming the
//! full key and what is accepted when the value cannot be read.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use crate::ModelError;

/// Service annotations: this prefix + `aws-load-balancer-<suffix>`.
pub const SERVICE_PREFIX: &str = "service.beta.kubernetes.io/";
/// Ingress (and backend Service) annotations: this prefix + suffix.
pub const INGRESS_PREFIX: &str = "alb.ingress.kubernetes.io/";

/// `service.beta.kubernetes.io/aws-load-balancer-<suffix>`.
pub fn svc_key(suffix: &str) -> String {
    format!("{SERVICE_PREFIX}aws-load-balancer-{suffix}")
}

/// `alb.ingress.kubernetes.io/<suffix>`.
pub fn ing_key(suffix: &str) -> String {
    format!("{INGRESS_PREFIX}{suffix}")
}

/// An object's annotations (absent = none).
pub type Annotations = BTreeMap<String, String>;

/// The raw value.
pub fn string<'a>(ann: &'a Annotations, key: &str) -> Option<&'a str> {
    ann.get(key).map(String::as_str)
}

/// A boolean as Go's `strconv.ParseBool` reads it (`true`, `false`, `1`,
/// `0`, `t`, `f`, `TRUE`, `False`, ...).
pub fn bool(ann: &Annotations, key: &str) -> Result<Option<bool>, ModelError> {
    let Some(raw) = string(ann, key) else {
        return Ok(None);
    };
    parse_bool(raw)
        .map(Some)
        .ok_or_else(|| ModelError::invalid(key, raw, "true, false"))
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A decimal integer.
pub fn int(ann: &Annotations, key: &str) -> Result<Option<i64>, ModelError> {
    let Some(raw) = string(ann, key) else {
        return Ok(None);
    };
    raw.parse::<i64>()
        .map(Some)
        .map_err(|_| ModelError::invalid(key, raw, "an integer"))
}

/// A decimal integer within `min..=max`.
pub fn int_in(ann: &Annotations, key: &str, min: i64, max: i64) -> Result<Option<i64>, ModelError> {
    let accepted = || format!("an integer from {min} to {max}");
    let Some(raw) = string(ann, key) else {
        return Ok(None);
    };
    match raw.parse::<i64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(Some(v)),
        _ => Err(ModelError::invalid(key, raw, accepted())),
    }
}

/// Comma-separated values, each trimmed, empty ones dropped.
pub fn string_list(ann: &Annotations, key: &str) -> Option<Vec<String>> {
    string(ann, key).map(split_list)
}

/// What [`string_list`] does to a value.
pub fn split_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `k1=v1,k2=v2`: items trimmed, empty items dropped; every item needs an
/// `=` and a non-empty key (the value may be empty).
pub fn string_map(
    ann: &Annotations,
    key: &str,
) -> Result<Option<BTreeMap<String, String>>, ModelError> {
    let Some(raw) = string(ann, key) else {
        return Ok(None);
    };
    parse_string_map(raw).map(Some).ok_or_else(|| {
        ModelError::invalid(
            key,
            raw,
            "comma-separated key=value pairs, e.g. k1=v1,k2=v2",
        )
    })
}

/// What [`string_map`] does to a value (`None` if it is not a map).
pub fn parse_string_map(raw: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in split_list(raw) {
        let (k, v) = item.split_once('=')?;
        if k.is_empty() {
            return None;
        }
        out.insert(k.to_string(), v.to_string());
    }
    Some(out)
}

/// A JSON document; `accepted` describes the expected shape. The parser's
/// own complaint is appended to it.
pub fn json<T: DeserializeOwned>(
    ann: &Annotations,
    key: &str,
    accepted: &str,
) -> Result<Option<T>, ModelError> {
    let Some(raw) = string(ann, key) else {
        return Ok(None);
    };
    serde_json::from_str(raw)
        .map(Some)
        .map_err(|e| ModelError::invalid(key, raw, format!("{accepted} ({e})")))
}

/// One of a fixed set of words (exact match).
pub fn one_of<T: Copy>(
    ann: &Annotations,
    key: &str,
    choices: &[(&str, T)],
) -> Result<Option<T>, ModelError> {
    let Some(raw) = string(ann, key) else {
        return Ok(None);
    };
    pick(key, raw, choices).map(Some)
}

/// `raw` as one of `choices`, or the error naming `key` and the choices.
pub fn pick<T: Copy>(key: &str, raw: &str, choices: &[(&str, T)]) -> Result<T, ModelError> {
    choices
        .iter()
        .find(|(word, _)| *word == raw)
        .map(|(_, v)| *v)
        .ok_or_else(|| ModelError::invalid(key, raw, accepted_words(choices)))
}

/// `a, b, c`.
pub fn accepted_words<T>(choices: &[(&str, T)]) -> String {
    choices
        .iter()
        .map(|(w, _)| *w)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `raw` is an IPv4 or IPv6 CIDR (`10.0.0.0/8`, `::/0`).
pub fn is_cidr(raw: &str) -> bool {
    let Some((addr, len)) = raw.split_once('/') else {
        return false;
    };
    let Ok(bits) = len.parse::<u8>() else {
        return false;
    };
    if bits.to_string() != len {
        return false;
    }
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// Whether `raw` is a health-check matcher: codes and ranges separated by
/// commas (`200`, `200-399`, `200,202`).
pub fn is_matcher(raw: &str) -> bool {
    !raw.is_empty()
        && raw.split(',').all(|part| {
            let mut ends = part.splitn(2, '-');
            let a = ends.next().unwrap_or("");
            let b = ends.next();
            let num =
                |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|c| c.is_ascii_digit());
            num(a) && b.is_none_or(num)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> Annotations {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn lists_and_maps_trim_and_drop_empty_items() {
        let a = ann(&[("l", " a, b ,,c "), ("m", " k1=v1 , k2=, k3=a=b ,")]);
        assert_eq!(string_list(&a, "l").unwrap(), ["a", "b", "c"]);
        let m = string_map(&a, "m").unwrap().unwrap();
        assert_eq!(m["k1"], "v1");
        assert_eq!(m["k2"], "");
        assert_eq!(m["k3"], "a=b");
        assert_eq!(string_list(&a, "absent"), None);
    }

    #[test]
    fn bad_values_name_the_key_and_the_accepted_values() {
        let a = ann(&[("m", "k1=v1,oops"), ("m2", "=v"), ("b", "yes"), ("i", "3s")]);
        let e = string_map(&a, "m").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value \"k1=v1,oops\" for annotation m: accepted values are comma-separated key=value pairs, e.g. k1=v1,k2=v2"
        );
        assert!(string_map(&a, "m2").is_err());
        assert_eq!(
            bool(&a, "b").unwrap_err().to_string(),
            "invalid value \"yes\" for annotation b: accepted values are true, false"
        );
        assert!(int(&a, "i").is_err());
        assert_eq!(bool(&a, "absent"), Ok(None));
    }

    #[test]
    fn go_bools_and_ranges() {
        for (raw, want) in [("1", true), ("True", true), ("f", false), ("FALSE", false)] {
            assert_eq!(parse_bool(raw), Some(want));
        }
        let a = ann(&[("o", "1001"), ("p", "-1000")]);
        assert!(int_in(&a, "o", -1000, 1000).is_err());
        assert_eq!(int_in(&a, "p", -1000, 1000), Ok(Some(-1000)));
    }

    #[test]
    fn cidrs_and_matchers() {
        for ok in ["0.0.0.0/0", "10.0.0.0/8", "::/0", "2001:db8::/32"] {
            assert!(is_cidr(ok), "{ok}");
        }
        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0/8", "x/1", "10.0.0.0/08"] {
            assert!(!is_cidr(bad), "{bad}");
        }
        for ok in ["200", "200-399", "200,202", "0-99"] {
            assert!(is_matcher(ok), "{ok}");
        }
        for bad in ["", "ok", "200-", "2000", "200;202"] {
            assert!(!is_matcher(bad), "{bad}");
        }
    }
}
