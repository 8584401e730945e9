//! Expanders: which scale-up option to take. `--expander` is a comma list
//! of filters applied in order, each keeping the options it likes best of
//! those the previous one kept; as soon as one option is left it is taken,
//! and a tie left at the end is broken at random (as upstream since 1.23).
//! `random` keeps one option, so nothing may follow it, and no expander may
//! be named twice.

use std::collections::BTreeMap;

use regex::Regex;

use crate::{
    group::NodeGroup,
    scaleup::Estimate,
    upstream::{PRIORITY_CONFIGMAP, PRIORITY_KEY},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expander {
    /// Any one option.
    Random,
    /// The options that schedule the most pods.
    MostPods,
    /// The least idle cpu plus memory share of the new nodes' capacity
    /// (upstream's default).
    LeastWaste,
    /// The best price score: the new nodes' price against the pods' worth,
    /// weighed by how far the node is from the size preferred for a
    /// cluster this big.
    Price,
    /// The highest priority in `cluster-autoscaler-priority-expander`.
    Priority,
    /// The fewest new nodes.
    LeastNodes,
}

impl Expander {
    pub fn name(self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::MostPods => "most-pods",
            Self::LeastWaste => "least-waste",
            Self::Price => "price",
            Self::Priority => "priority",
            Self::LeastNodes => "least-nodes",
        }
    }

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

    /// A comma list, as `--expander` takes it: no expander twice, nothing
    /// after `random` (it always leaves one option).
    pub fn parse_list(s: &str) -> Result<Vec<Self>, String> {
        let mut out: Vec<Self> = vec![];
        for name in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let e = Self::parse(name)?;
            if out.contains(&e) {
                return Err(format!("expander {name} is given more than once"));
            }
            if out.last() == Some(&Self::Random) {
                return Err(format!(
                    "expander {name} comes after random, which always leaves one option: it would never be used"
                ));
            }
            out.push(e);
        }
        Ok(out)
    }
}

// --- the priority expander's configuration ---------------------------------

/// The priority expander's configuration: priority -> group-name regexes
/// (the `priorities` key of its ConfigMap, YAML such as
/// `10:\n  - .*t2\.large.*\n50:\n  - .*t3\.large.*`). A regex matches
/// anywhere in the group's name, as Go's `regexp` does unanchored.
#[derive(Clone, Debug, Default)]
pub struct Priorities(Vec<(i64, Vec<Regex>)>);

/// The error for a ConfigMap whose `priorities` is empty.
pub fn empty_priorities_error() -> String {
    format!(
        "priority configuration in {PRIORITY_CONFIGMAP} configmap is empty; please provide valid configuration"
    )
}

/// The error for a ConfigMap without the `priorities` key.
pub fn missing_priorities_error() -> String {
    format!("Wrong configmap for priority expander, doesn't contain {PRIORITY_KEY} key")
}

impl Priorities {
    /// Parses the ConfigMap's `priorities` value: a YAML map of integers to
    /// lists of regular expressions (plain, 'single' or "double" quoted
    /// scalars, block or flow lists, comments). Errors are worded as
    /// upstream's, which it puts in a `PriorityConfigMapInvalid` Event.
    pub fn parse(yaml: &str) -> Result<Self, String> {
        if yaml.is_empty() {
            return Err(empty_priorities_error());
        }
        let config = parse_yaml_int_map(yaml)
            .map_err(|e| format!("Can't parse YAML with priorities in the configmap: {e}"))?;
        let mut out: BTreeMap<i64, Vec<Regex>> = BTreeMap::new();
        for (p, list) in config {
            let res = out.entry(p).or_default();
            for re in list {
                let r = Regex::new(&re).map_err(|e| {
                    format!("Can't compile regexp rule for priority {p} and rule {re}: {e}")
                })?;
                res.push(r);
            }
        }
        Ok(Self(out.into_iter().rev().collect()))
    }

    /// The priority of a group: the highest whose regexes match (anywhere
    /// in) its name.
    pub fn of(&self, group: &str) -> Option<i64> {
        self.0
            .iter()
            .find(|(_, res)| res.iter().any(|r| r.is_match(group)))
            .map(|(p, _)| *p)
    }

    /// Whether no priority is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The groups (by name) no priority matches: the priority expander
    /// leaves them out when another group matches, and warns of each
    /// ([`not_matched_message`]).
    pub fn unmatched<'a>(&self, groups: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        groups
            .into_iter()
            .filter(|g| self.of(g).is_none())
            .collect()
    }
}

/// The Event reason for a group no priority matches (on the ConfigMap).
pub const PRIORITY_NOT_MATCHED_REASON: &str = "PriorityConfigMapNotMatchedGroup";

/// The note of that Event.
pub fn not_matched_message(group: &str) -> String {
    format!(
        "Priority expander: node group {group} not found in priority expander configuration. The group won't be used."
    )
}

/// A YAML document that is a map of integers to lists of strings (or null).
fn parse_yaml_int_map(text: &str) -> Result<Vec<(i64, Vec<String>)>, String> {
    let mut out: Vec<(i64, Vec<String>)> = vec![];
    // The key whose block list is being read, and its indentation.
    let mut current: Option<usize> = None;
    let mut key_indent = 0;
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let body = raw.trim_start_matches(' ');
        if body.starts_with('\t') {
            return Err(format!(
                "line {line_no}: found a tab character in indentation"
            ));
        }
        let indent = raw.len() - body.len();
        let body = strip_comment(body).trim_end();
        if body.is_empty() || body == "---" {
            continue;
        }
        if let Some(item) = body
            .strip_prefix('-')
            .filter(|r| r.is_empty() || r.starts_with(' '))
        {
            let Some(k) = current else {
                return Err(format!("line {line_no}: a list item outside of a priority"));
            };
            if indent < key_indent {
                return Err(format!("line {line_no}: a list item outside of a priority"));
            }
            let (value, rest) = scalar(item.trim_start(), line_no)?;
            if !rest.trim().is_empty() {
                return Err(format!("line {line_no}: unexpected {:?}", rest.trim()));
            }
            out[k].1.push(value);
            continue;
        }
        if indent > 0 && current.is_some() {
            return Err(format!(
                "line {line_no}: expected a list item (`- <regex>`)"
            ));
        }
        let (key, rest) = scalar(body, line_no)?;
        let Some(rest) = rest.trim_start().strip_prefix(':') else {
            return Err(format!("line {line_no}: expected `<priority>:`"));
        };
        let p: i64 = key.trim().parse().map_err(|_| {
            format!("line {line_no}: cannot unmarshal {key:?} into an integer priority")
        })?;
        if out.iter().any(|(q, _)| *q == p) {
            return Err(format!("line {line_no}: mapping key {p:?} already defined"));
        }
        out.push((p, vec![]));
        let k = out.len() - 1;
        let rest = rest.trim();
        if rest.is_empty() || rest == "~" || rest == "null" {
            current = Some(k);
            key_indent = indent;
        } else if let Some(inner) = rest.strip_prefix('[') {
            current = None;
            let mut s = inner.trim_start();
            loop {
                if let Some(after) = s.strip_prefix(']') {
                    if !after.trim().is_empty() {
                        return Err(format!("line {line_no}: unexpected {:?}", after.trim()));
                    }
                    break;
                }
                if s.is_empty() {
                    return Err(format!("line {line_no}: unterminated flow sequence"));
                }
                let (value, after) = flow_scalar(s, line_no)?;
                out[k].1.push(value);
                let after = after.trim_start();
                s = match after.strip_prefix(',') {
                    Some(a) => a.trim_start(),
                    None if after.starts_with(']') => after,
                    None => {
                        return Err(format!("line {line_no}: expected `,` or `]`"));
                    }
                };
            }
        } else {
            return Err(format!(
                "line {line_no}: cannot unmarshal {rest:?} into a list of regexes"
            ));
        }
    }
    Ok(out)
}

/// The line without its comment (`#` at the start or after a blank, outside
/// quotes).
fn strip_comment(s: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    let mut escaped = false;
    let mut closed_single = false;
    for (i, c) in s.char_indices() {
        let was_closed = std::mem::take(&mut closed_single);
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => {
                quote = None;
                closed_single = q == '\'';
            }
            Some(_) => {}
            // `''` inside single quotes is a quote.
            None if c == '\'' && was_closed => quote = Some(c),
            None if c == '#' && (prev == ' ' || prev == '\t') => return &s[..i],
            None if (c == '"' || c == '\'')
                && (prev == ' ' || prev == '[' || prev == ',' || i == 0) =>
            {
                quote = Some(c)
            }
            None => {}
        }
        prev = c;
    }
    s
}

/// A scalar at the start of `s` (quoted, or plain up to `: ` or the end),
/// and what follows it.
fn scalar(s: &str, line: usize) -> Result<(String, &str), String> {
    if s.starts_with('"') || s.starts_with('\'') {
        return quoted(s, line);
    }
    // A plain scalar: a key ends at `:` followed by a blank or the end.
    let bytes = s.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ') {
            return Ok((s[..i].trim_end().to_string(), &s[i..]));
        }
    }
    Ok((s.trim_end().to_string(), ""))
}

/// A scalar in a flow sequence: quoted, or plain up to `,` or `]`.
fn flow_scalar(s: &str, line: usize) -> Result<(String, &str), String> {
    if s.starts_with('"') || s.starts_with('\'') {
        return quoted(s, line);
    }
    let end = s.find([',', ']']).unwrap_or(s.len());
    Ok((s[..end].trim_end().to_string(), &s[end..]))
}

/// A single- or double-quoted scalar at the start of `s` and what follows.
fn quoted(s: &str, line: usize) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    let Some((_, q)) = chars.next() else {
        return Err(format!("line {line}: expected a scalar"));
    };
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        if q == '\'' {
            if c == '\'' {
                if s[i + 1..].starts_with('\'') {
                    chars.next();
                    out.push('\'');
                    continue;
                }
                return Ok((out, &s[i + 1..]));
            }
            out.push(c);
            continue;
        }
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => {
                let Some((_, e)) = chars.next() else {
                    break;
                };
                let hex = |chars: &mut std::str::CharIndices<'_>, n: usize| {
                    let h: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                    u32::from_str_radix(&h, 16)
                        .ok()
                        .filter(|_| h.len() == n)
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("line {line}: bad escape \\{e}{h}"))
                };
                out.push(match e {
                    '0' => '\0',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    't' | '\t' => '\t',
                    'n' => '\n',
                    'v' => '\u{b}',
                    'f' => '\u{c}',
                    'r' => '\r',
                    'e' => '\u{1b}',
                    ' ' => ' ',
                    '"' => '"',
                    '/' => '/',
                    '\\' => '\\',
                    'N' => '\u{85}',
                    '_' => '\u{a0}',
                    'L' => '\u{2028}',
                    'P' => '\u{2029}',
                    'x' => hex(&mut chars, 2)?,
                    'u' => hex(&mut chars, 4)?,
                    'U' => hex(&mut chars, 8)?,
                    other => {
                        return Err(format!(
                            "line {line}: found unknown escape character {other:?} in a double-quoted scalar"
                        ));
                    }
                });
            }
            c => out.push(c),
        }
    }
    Err(format!(
        "line {line}: found unexpected end of a quoted scalar"
    ))
}

// --- pricing ----------------------------------------------------------------

/// What pods are worth per hour, for the price expander: their cpu and
/// memory requests at these rates. The default splits an m5.large's
/// on-demand price (2 vCPUs, 8 GiB, $0.096 an hour in the bundled table)
/// into a cpu and a memory rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PodPricing {
    /// $ per core-hour.
    pub per_core: f64,
    /// $ per GiB-hour.
    pub per_gib: f64,
}

impl Default for PodPricing {
    fn default() -> Self {
        Self {
            per_core: 0.0336,
            per_gib: 0.0036,
        }
    }
}

impl PodPricing {
    /// The hourly worth of these requests.
    pub fn price(&self, cpu_millis: i64, memory_bytes: i64) -> f64 {
        cpu_millis as f64 / 1000.0 * self.per_core
            + memory_bytes as f64 / (1u64 << 30) as f64 * self.per_gib
    }
}

/// The node size (cpu, millicores) preferred for a cluster of this many
/// nodes: one core up to 2 nodes, doubling each time the cluster triples
/// (2 up to 6, 4 up to 20, 8 up to 60, 16 up to 200), 32 beyond.
pub fn preferred_node_cpu_millis(cluster_nodes: usize) -> i64 {
    let cores = match cluster_nodes {
        0..=2 => 1,
        3..=6 => 2,
        7..=20 => 4,
        21..=60 => 8,
        61..=200 => 16,
        _ => 32,
    };
    cores * 1000
}

/// How far a node's cpu is from the preferred one's: the larger of the two
/// ratios (1 is a perfect fit).
pub fn node_unfitness(preferred_cpu_millis: i64, cpu_millis: i64) -> f64 {
    let (a, b) = (preferred_cpu_millis as f64, cpu_millis as f64);
    (a / b).max(b / a)
}

/// The price of a stabilizing pod added to both sides of the price ratio:
/// half a core and 500 MiB.
fn stabilization_price(pricing: &PodPricing) -> f64 {
    pricing.price(500, 500 << 20)
}

/// The price expander's score of one option (lower is better), or `None`
/// when its nodes have no price.
pub fn price_score(
    o: &Estimate,
    group: &NodeGroup,
    cluster_nodes: usize,
    pricing: &PodPricing,
) -> Option<f64> {
    let t = group.template.as_ref()?;
    let node_price = t.price?;
    let stabilization = stabilization_price(pricing);
    let total_node_price = node_price * o.nodes as f64;
    let total_pod_price = pricing.price(o.pod_requests.cpu_millis, o.pod_requests.memory_bytes);
    let price_ratio = (total_node_price + stabilization) / (total_pod_price + stabilization);
    let unfitness = node_unfitness(
        preferred_node_cpu_millis(cluster_nodes),
        t.capacity.cpu_millis,
    );
    // The more nodes, the less their size matters.
    let suppressed = (unfitness - 1.0) * (1.0 - ((o.nodes - 1) as f64 / 15.0).tanh()) + 1.0;
    Some(suppressed * price_ratio)
}

/// The least-waste expander's score of one option (lower is better): the
/// idle share of the new nodes' cpu capacity plus that of their memory,
/// after the option's pods; `None` when its group has no template.
pub fn waste_score(o: &Estimate, group: &NodeGroup) -> Option<f64> {
    let t = group.template.as_ref()?;
    let cpu = t.capacity.cpu_millis.saturating_mul(o.nodes);
    let mem = t.capacity.memory_bytes.saturating_mul(o.nodes);
    let wasted_cpu = (cpu - o.pod_requests.cpu_millis) as f64 / cpu as f64;
    let wasted_mem = (mem - o.pod_requests.memory_bytes) as f64 / mem as f64;
    Some(wasted_cpu + wasted_mem)
}

// --- choosing ---------------------------------------------------------------

/// What the expanders look at besides the options.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub groups: &'a [NodeGroup],
    pub priorities: &'a Priorities,
    /// Nodes in the cluster (the price expander's preferred node size).
    pub cluster_nodes: usize,
    pub pricing: PodPricing,
}

/// The options (indices) with the lowest score, in order; options without
/// a score are left out.
fn lowest(keep: &[usize], score: impl Fn(usize) -> Option<f64>) -> Vec<usize> {
    let mut best: Vec<usize> = vec![];
    let mut best_score = 0.0;
    for &i in keep {
        let Some(s) = score(i) else { continue };
        if best.is_empty() || s < best_score {
            best = vec![i];
            best_score = s;
        } else if s == best_score {
            best.push(i);
        }
    }
    best
}

/// One expander as a filter: the options it likes best of `keep`.
pub fn filter(
    e: Expander,
    options: &[Estimate],
    keep: Vec<usize>,
    ctx: &Context<'_>,
    pick: &mut dyn FnMut(usize) -> usize,
) -> Vec<usize> {
    let group = |i: usize| ctx.groups.get(options[i].group);
    match e {
        Expander::Random => {
            if keep.len() <= 1 {
                keep
            } else {
                let n = keep.len();
                vec![keep[pick(n).min(n - 1)]]
            }
        }
        Expander::MostPods => {
            let most = keep.iter().map(|i| options[*i].pods.len()).max();
            keep.into_iter()
                .filter(|i| Some(options[*i].pods.len()) == most)
                .collect()
        }
        Expander::LeastNodes => lowest(&keep, |i| {
            (options[i].nodes != 0).then_some(options[i].nodes as f64)
        }),
        Expander::LeastWaste => lowest(&keep, |i| waste_score(&options[i], group(i)?)),
        Expander::Price => {
            let best = lowest(&keep, |i| {
                price_score(&options[i], group(i)?, ctx.cluster_nodes, &ctx.pricing)
            });
            // Deliberately unlike upstream (which refuses to start without
            // a pricing model): when no option's nodes have a price, the
            // price expander keeps them all.
            if best.is_empty() { keep } else { best }
        }
        Expander::Priority => {
            if ctx.priorities.is_empty() {
                return keep;
            }
            let mut best: Vec<usize> = vec![];
            let mut max = -1;
            for &i in &keep {
                let Some(p) = group(i).and_then(|g| ctx.priorities.of(&g.id)) else {
                    continue;
                };
                if p < max {
                    continue;
                }
                if p > max {
                    max = p;
                    best.clear();
                }
                best.push(i);
            }
            if best.is_empty() { keep } else { best }
        }
    }
}

/// The option the chain of expanders chooses (an index into `options`);
/// `pick` breaks a final tie (given the number of tied options, returns
/// one index below it); it is not called when one option is left.
pub fn choose(
    chain: &[Expander],
    options: &[Estimate],
    ctx: &Context<'_>,
    mut pick: impl FnMut(usize) -> usize,
) -> Option<usize> {
    let mut keep: Vec<usize> = (0..options.len()).collect();
    for e in chain {
        keep = filter(*e, options, keep, ctx, &mut pick);
        if keep.len() == 1 {
            return keep.first().copied();
        }
    }
    match keep.len() {
        0 => None,
        1 => keep.first().copied(),
        n => keep.get(pick(n).min(n - 1)).copied(),
    }
}

#[cfg(test)]
mod tests {
    use outrigger_scheduling::resources::Resources;

    use super::*;
    use crate::group::Template;

    fn option(group: usize, nodes: i64, pods: usize, cpu_req: i64) -> Estimate {
        Estimate {
            group,
            nodes,
            pods: (0..pods).collect(),
            requests: Resources::default(),
            pod_requests: Resources {
                cpu_millis: cpu_req,
                memory_bytes: 1 << 30,
                ..Default::default()
            },
            allocatable: Resources::default(),
            price: 0.0,
        }
    }

    fn groups(shapes: &[(&str, i64, Option<f64>)]) -> Vec<NodeGroup> {
        shapes
            .iter()
            .map(|(n, cpu, price)| {
                let r = Resources {
                    cpu_millis: *cpu,
                    memory_bytes: 2 << 30,
                    pods: 110,
                    ..Default::default()
                };
                let mut t = Template::from_node(None, &Default::default(), &[], &r, &r);
                t.price = *price;
                NodeGroup {
                    id: n.to_string(),
                    min: 0,
                    max: 10,
                    target: 0,
                    instances: vec![],
                    template: Some(t),
                }
            })
            .collect()
    }

    fn ctx<'a>(groups: &'a [NodeGroup], priorities: &'a Priorities) -> Context<'a> {
        Context {
            groups,
            priorities,
            cluster_nodes: 3,
            pricing: PodPricing::default(),
        }
    }

    #[test]
    fn most_pods_takes_the_option_that_schedules_more() {
        let o = [option(0, 1, 2, 0), option(1, 2, 5, 0)];
        let g = groups(&[("a", 1000, None), ("b", 1000, None)]);
        let p = Priorities::default();
        assert_eq!(
            choose(&[Expander::MostPods], &o, &ctx(&g, &p), |_| 0),
            Some(1)
        );
    }

    #[test]
    fn least_waste_takes_the_least_idle_cpu_and_memory() {
        // 1900/2000 cpu used beats 1000/4000.
        let o = [option(0, 1, 1, 1000), option(1, 1, 1, 1900)];
        let g = groups(&[("a", 4000, None), ("b", 2000, None)]);
        let p = Priorities::default();
        assert_eq!(
            choose(&[Expander::LeastWaste], &o, &ctx(&g, &p), |_| 0),
            Some(1)
        );
    }

    #[test]
    fn a_chain_narrows_in_order_and_random_breaks_the_tie() {
        let o = [option(0, 1, 3, 0), option(1, 1, 3, 0), option(2, 1, 1, 0)];
        let g = groups(&[("a", 1000, None), ("b", 1000, None), ("c", 1000, None)]);
        let p = Priorities::default();
        let chain = Expander::parse_list("most-pods,random").unwrap();
        assert_eq!(
            choose(&chain, &o, &ctx(&g, &p), |n| {
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
        let o = [option(0, 1, 1, 0), option(1, 1, 1, 0)];
        let g = groups(&[("ng-t2.large", 1000, None), ("ng-t3.large", 1000, None)]);
        assert_eq!(
            choose(&[Expander::Priority], &o, &ctx(&g, &p), |_| 0),
            Some(1)
        );
    }

    #[test]
    fn price_prefers_the_cheaper_nodes_for_the_same_pods() {
        let o = [option(0, 1, 2, 1000), option(1, 1, 2, 1000)];
        let g = groups(&[("a", 2000, Some(0.20)), ("b", 2000, Some(0.10))]);
        let p = Priorities::default();
        assert_eq!(choose(&[Expander::Price], &o, &ctx(&g, &p), |_| 0), Some(1));
    }

    #[test]
    fn unknown_repeated_or_shadowed_expanders_and_bad_priorities_are_errors() {
        assert!(
            Expander::parse_list("least-waste,cheapest")
                .unwrap_err()
                .contains("cheapest")
        );
        assert!(Expander::parse_list("least-waste,least-waste").is_err());
        assert!(Expander::parse_list("random,least-waste").is_err());
        assert!(
            Priorities::parse("ten:\n  - a\n")
                .unwrap_err()
                .contains("ten")
        );
        assert!(Priorities::parse("10:\n  - (\n").is_err());
        assert_eq!(Priorities::parse("10: [a, b]\n").unwrap().of("b"), Some(10));
    }

    #[test]
    fn priorities_yaml_scalars() {
        let p = Priorities::parse(
            "# groups\n5:\n  - 'it''s' # quoted\n10: [\"x\\\\.y\", plain]\n20:\n- \"a#b\"\n",
        )
        .unwrap();
        assert_eq!(p.of("it's"), Some(5));
        assert_eq!(p.of("x.y"), Some(10));
        assert_eq!(p.of("xzy"), None);
        assert_eq!(p.of("plain"), Some(10));
        assert_eq!(p.of("a#b"), Some(20));
        // YAML rejects `\.` in double quotes, a duplicate key, a scalar.
        assert!(Priorities::parse("10:\n  - \".*\\.x\"\n").is_err());
        assert!(Priorities::parse("10:\n  - a\n10:\n  - b\n").is_err());
        assert!(Priorities::parse("10: a\n").is_err());
        assert_eq!(Priorities::parse("").unwrap_err(), empty_priorities_error());
    }
}
