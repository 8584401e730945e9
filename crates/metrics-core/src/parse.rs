//! A parser for the kubelet's `/metrics/resource` (Prometheus text format).
//!
//! It reads the five series metrics-server reads and ignores every other
//! line. It never panics: a malformed line is counted and skipped.

use std::{borrow::Cow, collections::HashMap};

pub const NODE_CPU: &str = "node_cpu_usage_seconds_total";
pub const NODE_MEMORY: &str = "node_memory_working_set_bytes";
pub const CONTAINER_CPU: &str = "container_cpu_usage_seconds_total";
pub const CONTAINER_MEMORY: &str = "container_memory_working_set_bytes";
pub const CONTAINER_START: &str = "container_start_time_seconds";

/// A value with its optional timestamp (milliseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// The series of one container, as scraped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSeries {
    pub cpu: Option<Sample>,
    pub memory: Option<Sample>,
    pub start_time: Option<f64>,
}

/// (namespace, pod, container), borrowed from the scraped body unless a
/// label value had escapes.
pub type ContainerKey<'a> = (Cow<'a, str>, Cow<'a, str>, Cow<'a, str>);

/// Everything read from one scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape<'a> {
    pub node_cpu: Option<Sample>,
    pub node_memory: Option<Sample>,
    pub containers: HashMap<ContainerKey<'a>, ContainerSeries>,
    /// Lines of a known series that could not be parsed.
    pub malformed: usize,
}

impl Scrape<'_> {
    /// The series of one container.
    pub fn container(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Option<&ContainerSeries> {
        self.containers
            .iter()
            .find(|((n, p, c), _)| n == namespace && p == pod && c == container)
            .map(|(_, s)| s)
    }
}

/// One sample line: name, labels, value, timestamp.
#[derive(Debug, PartialEq)]
struct Line<'a> {
    name: &'a str,
    labels: Labels<'a>,
    sample: Sample,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Parses a Go-style float: decimal, exponent, NaN, +Inf/-Inf.
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => {
            if s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
            {
                return None;
            }
            s.parse().ok()
        }
    }
}

/// Label names with their (possibly unescaped) values.
type Labels<'a> = Vec<(&'a str, Cow<'a, str>)>;

fn parse_labels(s: &str) -> Option<(Labels<'_>, &str)> {
    // s starts just after '{'; returns the labels and the rest after '}'.
    let mut labels = vec![];
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            return Some((labels, r));
        }
        let end = rest.find(|c: char| !is_name_char(c))?;
        if end == 0 {
            return None;
        }
        let name = &rest[..end];
        rest = rest[end..]
            .trim_start()
            .strip_prefix('=')?
            .trim_start()
            .strip_prefix('"')?;
        let close = rest.find(['"', '\\'])?;
        let value = if rest.as_bytes()[close] == b'"' {
            // The common case: no escapes, borrow the value.
            let v = Cow::Borrowed(&rest[..close]);
            rest = &rest[close + 1..];
            v
        } else {
            let mut value = String::with_capacity(close + 8);
            let mut chars = rest.char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '"' => break i,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        other => {
                            value.push('\\');
                            value.push(other);
                        }
                    },
                    c => value.push(c),
                }
            };
            rest = &rest[end + 1..];
            Cow::Owned(value)
        };
        labels.push((name, value));
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return None;
        }
    }
}

fn parse_line(line: &str) -> Option<Line<'_>> {
    let line = line.trim();
    let name_end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
    let name = &line[..name_end];
    if !name.starts_with(is_name_start) {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = vec![];
    if let Some(r) = rest.strip_prefix('{') {
        let (l, r) = parse_labels(r)?;
        labels = l;
        rest = r;
    }
    let mut fields = rest.split_whitespace();
    let value = parse_value(fields.next()?)?;
    let timestamp_ms = match fields.next() {
        Some(t) => Some(t.parse::<i64>().ok()?),
        None => None,
    };
    if fields.next().is_some() {
        return None;
    }
    Some(Line {
        name,
        labels,
        sample: Sample {
            value,
            timestamp_ms,
        },
    })
}

fn take_label<'a>(labels: &mut Vec<(&str, Cow<'a, str>)>, name: &str) -> Option<Cow<'a, str>> {
    let i = labels.iter().position(|(n, _)| *n == name)?;
    Some(labels.swap_remove(i).1)
}

/// One sample of any series, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of the series named in `names` (cAdvisor's
/// `/metrics/cadvisor`, for the node agent's network and filesystem
/// figures); malformed lines are skipped.
pub fn series(body: &str, names: &[&str]) -> Vec<Series> {
    body.lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.starts_with('#') && names.iter().any(|n| t.starts_with(n))
        })
        .filter_map(parse_line)
        .filter(|l| names.contains(&l.name))
        .map(|l| Series {
            name: l.name.to_string(),
            labels: l
                .labels
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into_owned()))
                .collect(),
            value: l.sample.value,
        })
        .collect()
}

/// Parses a scrape body.
pub fn parse(body: &str) -> Scrape<'_> {
    let mut out = Scrape::default();
    for raw in body.lines() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // Only lines of the five series are parsed at all.
        let known = [
            NODE_CPU,
            NODE_MEMORY,
            CONTAINER_CPU,
            CONTAINER_MEMORY,
            CONTAINER_START,
        ]
        .into_iter()
        .find(|n| {
            trimmed.starts_with(n)
                && trimmed[n.len()..].starts_with(|c: char| c == '{' || c.is_whitespace())
        });
        let Some(series) = known else { continue };
        let Some(mut line) = parse_line(trimmed) else {
            out.malformed += 1;
            continue;
        };
        debug_assert_eq!(line.name, series);
        match series {
            NODE_CPU => out.node_cpu = Some(line.sample),
            NODE_MEMORY => out.node_memory = Some(line.sample),
            _ => {
                let (Some(ns), Some(pod), Some(c)) = (
                    take_label(&mut line.labels, "namespace"),
                    take_label(&mut line.labels, "pod"),
                    take_label(&mut line.labels, "container"),
                ) else {
                    out.malformed += 1;
                    continue;
                };
                let entry = out.containers.entry((ns, pod, c)).or_default();
                match series {
                    CONTAINER_CPU => entry.cpu = Some(line.sample),
                    CONTAINER_MEMORY => entry.memory = Some(line.sample),
                    _ => entry.start_time = Some(line.sample.value),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KUBELET: &str = r#"# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="metrics-server",namespace="kube-system",pod="metrics-server-7d8f9c7c8-xkzqb"} 4.710446 1633253812125
container_cpu_usage_seconds_total{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 10.3 1633253812125
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="metrics-server",namespace="kube-system",pod="metrics-server-7d8f9c7c8-xkzqb"} 1.6973824e+07 1633253812125
container_memory_working_set_bytes{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 1.2e+07 1633253812125
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="metrics-server",namespace="kube-system",pod="metrics-server-7d8f9c7c8-xkzqb"} 1.6332537e+09 1633253700000
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 357.35491 1633253809720
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1.616273408e+09 1633253809720
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
pod_cpu_usage_seconds_total{namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 10.3 1633253812125
scrape_error 0
"#;

    #[test]
    fn reads_the_five_series() {
        let s = parse(KUBELET);
        assert_eq!(s.malformed, 0);
        assert_eq!(
            s.node_cpu,
            Some(Sample {
                value: 357.35491,
                timestamp_ms: Some(1633253809720)
            })
        );
        assert_eq!(s.node_memory.map(|m| m.value), Some(1.616273408e9));
        assert_eq!(s.containers.len(), 2);
        let ms = s
            .container(
                "kube-system",
                "metrics-server-7d8f9c7c8-xkzqb",
                "metrics-server",
            )
            .unwrap();
        assert_eq!(ms.cpu.map(|c| c.value), Some(4.710446));
        assert_eq!(ms.memory.map(|c| c.value), Some(16973824.0));
        assert_eq!(ms.start_time, Some(1.6332537e9));
    }

    #[test]
    fn kwok_output_without_timestamps() {
        let body = "container_cpu_usage_seconds_total{container=\"pause\",namespace=\"default\",pod=\"p\"} 0.5\nnode_cpu_usage_seconds_total 0.0053\n";
        let s = parse(body);
        assert_eq!(s.node_cpu.map(|c| c.timestamp_ms), Some(None));
        assert_eq!(s.containers.len(), 1);
    }

    #[test]
    fn escaped_labels_and_order() {
        let body = r#"container_memory_working_set_bytes{pod="a\"b",namespace="n\\s", container="c\nd"} 5"#;
        let s = parse(body);
        assert_eq!(
            s.container("n\\s", "a\"b", "c\nd")
                .and_then(|c| c.memory)
                .map(|m| m.value),
            Some(5.0)
        );
    }

    #[test]
    fn malformed_lines_are_counted_not_fatal() {
        let body = "node_cpu_usage_seconds_total abc\nnode_memory_working_set_bytes{ 5\ncontainer_cpu_usage_seconds_total{pod=\"x\"} 1\nnode_memory_working_set_bytes 7 1 2\nnode_cpu_usage_seconds_total_other 1\n";
        let s = parse(body);
        assert_eq!(s.malformed, 4);
        assert_eq!(s.node_cpu, None);
        assert!(s.containers.is_empty());
    }

    proptest! {
        #[test]
        fn never_panics_on_garbage(s in "\\PC{0,200}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_near_misses(
            name in prop::sample::select(vec![NODE_CPU, CONTAINER_CPU, CONTAINER_MEMORY, CONTAINER_START]),
            rest in "[{}=\",a-z0-9 .\\\\eE+-]{0,60}",
        ) {
            let _ = parse(&format!("{name}{rest}\n"));
        }

        #[test]
        fn round_trips_values(v in 0.0f64..1e12, ts in proptest::option::of(0i64..4_000_000_000_000)) {
            let line = match ts {
                Some(t) => format!("{NODE_MEMORY} {v} {t}\n"),
                None => format!("{NODE_MEMORY} {v}\n"),
            };
            let s = parse(&line);
            prop_assert_eq!(s.node_memory, Some(Sample { value: v, timestamp_ms: ts }));
        }
    }
}
