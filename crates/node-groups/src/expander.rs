//! Expanders: which scale-up option to take. `--expander` is a comma list
//! applied in order, each keeping the best of what the previous one kept;
//! a tie left at the end is broken at random (as upstream since 1.23).

use std::collections::BTreeMap;

use regex::Regex;

use crate::{group::NodeGroup, scaleup::Estimate};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expander {
    /// Any option.
    Random,
    /// The option that schedules the most pods.
    MostPods,
    /// The least idle cpu, then memory, after the scale-up (upstream's
    /// default).
    LeastWaste,
    /// The cheapest option per pod it schedules.
    Price,
    /// The highest priority in `cluster-autoscaler-priority-expander`.
    Priority,
    /// The fewest new nodes.
    LeastNodes,
}

impl Expander {
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "random" => Self::Random,
            "most-pods" => Self::MostPods,
            "least-waste" => Self::LeastWaste,
            "price" => Self::Price,
            "priority" => Self::Priority,
            "least-nodes" => Self::LeastNodes,
            other => {
                return Err(format!(
                    "unknown expander {other:?} (random, most-pods, least-waste, price, priority, least-nodes)"
                ));
            }
        })
    }

    /// A comma list, as `--expander` takes it.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, String> {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(Self::parse)
            .collect()
    }
}

/// The priority expander's configuration: priority -> group-name regexes
/// (the `priorities` key of its ConfigMap, YAML such as
/// `10:\n  - .*t2\.large.*\n50:\n  - .*t3\.large.*`).
#[derive(Clone, Debug, Default)]
pub struct Priorities(Vec<(i64, Vec<Regex>)>);

impl Priorities {
    /// Parses the ConfigMap's `priorities` value: a map of integers to
    /// lists of regular expressions (matched against the whole group name).
    pub fn parse(yaml: &str) -> Result<Self, String> {
        let mut out: BTreeMap<i64, Vec<Regex>> = BTreeMap::new();
        let mut current: Option<i64> = None;
        for (n, raw) in yaml.lines().enumerate() {
            let line = raw.split(" #").next().unwrap_or("").trim_end();
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let trimmed = line.trim_start();
            if let Some(item) = trimmed.strip_prefix("- ") {
                let p = current
                    .ok_or_else(|| format!("line {}: a list item before any priority", n + 1))?;
                let pat = unquote(item.trim());
                let re = Regex::new(&format!("^(?:{pat})$"))
                    .map_err(|e| format!("line {}: {pat:?}: {e}", n + 1))?;
                out.entry(p).or_default().push(re);
            } else if let Some((k, rest)) = trimmed.split_once(':') {
                let p: i64 = unquote(k.trim())
                    .parse()
                    .map_err(|_| format!("line {}: priority {k:?} is not an integer", n + 1))?;
                current = Some(p);
                let rest = rest.trim();
                // Flow form: `10: [a, b]`.
                if let Some(inner) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                    for pat in inner
                        .split(',')
                        .map(|x| unquote(x.trim()))
                        .filter(|x| !x.is_empty())
                    {
                        let re = Regex::new(&format!("^(?:{pat})$"))
                            .map_err(|e| format!("line {}: {pat:?}: {e}", n + 1))?;
                        out.entry(p).or_default().push(re);
                    }
                } else if !rest.is_empty() {
                    return Err(format!("line {}: expected a list of regexes", n + 1));
                }
            } else {
                return Err(format!(
                    "line {}: expected `<priority>:` or `- <regex>`",
                    n + 1
                ));
            }
        }
        Ok(Self(out.into_iter().rev().collect()))
    }

    /// The priority of a group: the highest whose regexes match its name.
    pub fn of(&self, group: &str) -> Option<i64> {
        self.0
            .iter()
            .find(|(_, res)| res.iter().any(|r| r.is_match(group)))
            .map(|(p, _)| *p)
    }
}

fn unquote(s: &str) -> String {
    s.trim_matches(|c| c == '"' || c == '\'').to_string()
}

fn keep_best<K: PartialOrd + Copy>(
    options: &[Estimate],
    keep: Vec<usize>,
    key: impl Fn(&Estimate) -> Option<K>,
) -> Vec<usize> {
    let scored: Vec<(usize, K)> = keep
        .iter()
        .filter_map(|i| key(&options[*i]).map(|k| (*i, k)))
        .collect();
    let Some(best) = scored
        .iter()
        .map(|(_, k)| *k)
        .fold(None, |m: Option<K>, k| match m {
            Some(m) if m >= k => Some(m),
            _ => Some(k),
        })
    else {
        return keep;
    };
    scored
        .into_iter()
        .filter(|(_, k)| *k >= best)
        .map(|(i, _)| i)
        .collect()
}

fn ratio(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The option the chain of expanders chooses (an index into `options`);
/// `pick` breaks the final tie (given the number of tied options, returns
/// one index below it).
pub fn choose(
    chain: &[Expander],
    options: &[Estimate],
    groups: &[NodeGroup],
    priorities: &Priorities,
    pick: impl FnOnce(usize) -> usize,
) -> Option<usize> {
    if options.is_empty() {
        return None;
    }
    let mut keep: Vec<usize> = (0..options.len()).collect();
    for e in chain {
        if keep.len() <= 1 {
            break;
        }
        keep = match e {
            Expander::Random => keep,
            Expander::MostPods => keep_best(options, keep, |o| Some(o.pods.len() as i64)),
            Expander::LeastNodes => keep_best(options, keep, |o| Some(-o.nodes)),
            Expander::LeastWaste => keep_best(options, keep, |o| {
                let cpu = 1.0 - ratio(o.requests.cpu_millis, o.allocatable.cpu_millis);
                let mem = 1.0 - ratio(o.requests.memory_bytes, o.allocatable.memory_bytes);
                // Lower waste is better: negate, in millionths for a total order.
                Some(-((cpu + mem) * 1e6).round() as i64)
            }),
            Expander::Price => keep_best(options, keep, |o| {
                (o.price > 0.0)
                    .then(|| -((o.price / o.pods.len().max(1) as f64) * 1e6).round() as i64)
            }),
            Expander::Priority => keep_best(options, keep, |o| {
                groups.get(o.group).and_then(|g| priorities.of(&g.id))
            }),
        };
    }
    let n = keep.len();
    keep.get(pick(n).min(n.saturating_sub(1))).copied()
}

#[cfg(test)]
mod tests {
    use outrigger_scheduling::resources::Resources;

    use super::*;

    fn option(
        group: usize,
        nodes: i64,
        pods: usize,
        cpu_req: i64,
        cpu_alloc: i64,
        price: f64,
    ) -> Estimate {
        Estimate {
            group,
            nodes,
            pods: (0..pods).collect(),
            requests: Resources {
                cpu_millis: cpu_req,
                memory_bytes: 1 << 30,
                ..Default::default()
            },
            allocatable: Resources {
                cpu_millis: cpu_alloc,
                memory_bytes: 2 << 30,
                ..Default::default()
            },
            price,
        }
    }

    fn groups(names: &[&str]) -> Vec<NodeGroup> {
        names
            .iter()
            .map(|n| NodeGroup {
                id: n.to_string(),
                min: 0,
                max: 10,
                target: 0,
                instances: vec![],
                template: None,
            })
            .collect()
    }

    #[test]
    fn most_pods_takes_the_option_that_schedules_more() {
        let o = [option(0, 1, 2, 0, 1, 0.0), option(1, 2, 5, 0, 1, 0.0)];
        let g = groups(&["a", "b"]);
        assert_eq!(
            choose(&[Expander::MostPods], &o, &g, &Default::default(), |_| 0),
            Some(1)
        );
    }

    #[test]
    fn least_waste_takes_the_least_idle_cpu_and_memory() {
        // 1900/2000 cpu used beats 1000/4000.
        let o = [
            option(0, 1, 1, 1000, 4000, 0.0),
            option(1, 1, 1, 1900, 2000, 0.0),
        ];
        let g = groups(&["a", "b"]);
        assert_eq!(
            choose(&[Expander::LeastWaste], &o, &g, &Default::default(), |_| 0),
            Some(1)
        );
    }

    #[test]
    fn a_chain_narrows_in_order_and_random_breaks_the_tie() {
        let o = [
            option(0, 1, 3, 0, 1, 0.0),
            option(1, 1, 3, 0, 1, 0.0),
            option(2, 1, 1, 0, 1, 0.0),
        ];
        let g = groups(&["a", "b", "c"]);
        let chain = Expander::parse_list("most-pods,random").unwrap();
        assert_eq!(
            choose(&chain, &o, &g, &Default::default(), |n| {
                assert_eq!(n, 2);
                1
            }),
            Some(1)
        );
    }

    #[test]
    fn priority_takes_the_highest_matching_regex() {
        let p = Priorities::parse("10:\n  - .*t2\\.large.*\n50:\n  - .*t3\\.large.*\n").unwrap();
        assert_eq!(p.of("ng-t3.large-a"), Some(50));
        assert_eq!(p.of("ng-t2.large"), Some(10));
        assert_eq!(p.of("other"), None);
        let o = [option(0, 1, 1, 0, 1, 0.0), option(1, 1, 1, 0, 1, 0.0)];
        let g = groups(&["ng-t2.large", "ng-t3.large"]);
        assert_eq!(choose(&[Expander::Priority], &o, &g, &p, |_| 0), Some(1));
    }

    #[test]
    fn price_takes_the_cheapest_per_pod() {
        let o = [option(0, 1, 2, 0, 1, 0.20), option(1, 1, 4, 0, 1, 0.30)];
        let g = groups(&["a", "b"]);
        assert_eq!(
            choose(&[Expander::Price], &o, &g, &Default::default(), |_| 0),
            Some(1)
        );
    }

    #[test]
    fn unknown_expanders_and_bad_priorities_are_errors() {
        assert!(
            Expander::parse_list("least-waste,cheapest")
                .unwrap_err()
                .contains("cheapest")
        );
        assert!(
            Priorities::parse("ten:\n  - a\n")
                .unwrap_err()
                .contains("ten")
        );
        assert!(Priorities::parse("10:\n  - (\n").is_err());
        assert_eq!(Priorities::parse("10: [a, b]\n").unwrap().of("b"), Some(10));
    }
}
