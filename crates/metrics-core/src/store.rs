//! The two-sample store and the usage math.
//!
//! Per node and per container it keeps the last two points of one scrape
//! cycle after another. CPU usage is the difference of cumulative CPU over the
//! time between the two points (that time is the `window`); memory is the last
//! working set. The rules follow upstream metrics-server:
//! - a node point with a zero timestamp, CPU or memory is dropped, and a pod is
//!   dropped if any of its containers reports zero CPU or memory;
//! - a container whose start time moved past the last point restarted: its old
//!   point is not used as the previous one;
//! - if the start time goes backwards, or cumulative CPU decreases, there is
//!   no usage for that node or container;
//! - a container started less than one resolution (but at least 10 s) before
//!   its first point gets a synthetic previous point at its start time with
//!   zero CPU, so one scrape already yields a rate;
//! - a pod has metrics only if every container has; its timestamp and window
//!   are those of its earliest container;
//! - what a cycle did not report (a node that failed, a pod gone) is dropped
//!   at the end of the cycle.
//!
//! A cycle is [`Store::begin`], one [`Store::put_scrape`] per node scraped,
//! [`Store::end`]. Entries are updated in place and looked up by borrowed
//! names, so a cycle allocates only for nodes, pods and containers it has not
//! seen before.

use std::{
    collections::HashMap,
    hash::{Hash, Hasher},
};

use hashbrown::Equivalent;

use crate::parse::Scrape;

/// Nanoseconds since the Unix epoch.
pub type Nanos = i64;

/// One sample of one node or container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub timestamp: Nanos,
    /// Start time of the container (or the node: 0 when unknown).
    pub start_time: Nanos,
    /// Cumulative CPU, in nanocore-seconds (CPU seconds x 1e9).
    pub cumulative_cpu: u64,
    pub memory_bytes: u64,
}

/// Usage over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub timestamp: Nanos,
    pub window: Nanos,
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pair {
    prev: Option<Point>,
    last: Point,
}

/// (namespace, name) of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl PodKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// A borrowed [`PodKey`], for lookups without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodRef<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
}

impl Hash for PodRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Hashes exactly as the derived Hash of PodKey does.
        self.namespace.hash(state);
        self.name.hash(state);
    }
}

impl Equivalent<PodKey> for PodRef<'_> {
    fn equivalent(&self, key: &PodKey) -> bool {
        self.namespace == key.namespace && self.name == key.name
    }
}

fn secs_to_nanos(s: f64) -> Option<i64> {
    (0.0..9.2e9).contains(&s).then(|| (s * 1e9).round() as i64)
}

fn to_u64(v: f64, scale: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0 && v * scale < 1.8e19).then(|| (v * scale).round() as u64)
}

/// The valid points of one node's scrape, borrowed from it.
#[derive(Debug, Default)]
pub struct Validated<'s> {
    pub node: Option<Point>,
    /// Pods whose every container is valid, with their containers.
    pub pods: HashMap<(&'s str, &'s str), Vec<(&'s str, Point)>>,
    /// Node and pod points dropped by the rules.
    pub dropped: usize,
}

/// Applies the drop rules to one node's scrape, taken at `scraped_at` (used
/// where a sample carries no timestamp).
pub fn validate<'s>(scrape: &'s Scrape<'_>, scraped_at: Nanos) -> Validated<'s> {
    let ts = |ms: Option<i64>| ms.map_or(scraped_at, |m| m.saturating_mul(1_000_000));
    let mut out = Validated::default();
    match (scrape.node_cpu, scrape.node_memory) {
        (Some(cpu), Some(mem)) => {
            let timestamp = ts(cpu.timestamp_ms);
            match (to_u64(cpu.value, 1e9), to_u64(mem.value, 1.0)) {
                (Some(c), Some(m)) if c > 0 && m > 0 && timestamp > 0 => {
                    out.node = Some(Point {
                        timestamp,
                        start_time: 0,
                        cumulative_cpu: c,
                        memory_bytes: m,
                    });
                }
                _ => out.dropped += 1,
            }
        }
        (None, None) => {}
        _ => out.dropped += 1,
    }
    // None once one of the pod's containers was dropped.
    type Containers<'s> = Option<Vec<(&'s str, Point)>>;
    let mut pods: HashMap<(&str, &str), Containers<'_>> = HashMap::new();
    for ((ns, pod, container), s) in &scrape.containers {
        let slot = pods
            .entry((ns.as_ref(), pod.as_ref()))
            .or_insert_with(|| Some(Vec::new()));
        let Some(containers) = slot else { continue };
        let point = match (s.cpu, s.memory) {
            (Some(cpu), Some(mem)) => {
                let timestamp = ts(cpu.timestamp_ms);
                match (to_u64(cpu.value, 1e9), to_u64(mem.value, 1.0)) {
                    (Some(c), Some(m)) if c > 0 && m > 0 && timestamp > 0 => Some(Point {
                        timestamp,
                        start_time: s.start_time.and_then(secs_to_nanos).unwrap_or(0),
                        cumulative_cpu: c,
                        memory_bytes: m,
                    }),
                    _ => None,
                }
            }
            _ => None,
        };
        match point {
            Some(p) => containers.push((container.as_ref(), p)),
            None => {
                // One bad container drops the whole pod.
                *slot = None;
                out.dropped += 1;
            }
        }
    }
    out.pods = pods
        .into_iter()
        .filter_map(|(k, v)| v.filter(|c| !c.is_empty()).map(|c| (k, c)))
        .collect();
    out
}

/// The points of one scrape cycle, owned (for tests and tools; the server
/// puts each node's scrape into the store as it arrives).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub nodes: HashMap<String, Point>,
    pub pods: HashMap<PodKey, Vec<(String, Point)>>,
}

impl Batch {
    /// Adds one node's scrape. Returns the number of points dropped.
    pub fn add_node(&mut self, node: &str, scrape: &Scrape<'_>, scraped_at: Nanos) -> usize {
        let v = validate(scrape, scraped_at);
        if let Some(p) = v.node {
            self.nodes.insert(node.to_string(), p);
        }
        for ((ns, pod), containers) in v.pods {
            self.pods.insert(
                PodKey::new(ns, pod),
                containers
                    .into_iter()
                    .map(|(c, p)| (c.to_string(), p))
                    .collect(),
            );
        }
        v.dropped
    }
}

#[derive(Debug, Clone)]
struct NodeEntry {
    pair: Pair,
    seen: u64,
}

#[derive(Debug, Clone)]
struct PodEntry {
    containers: Vec<(Box<str>, Pair)>,
    seen: u64,
}

/// The store. Not synchronised: the server wraps it in a lock.
#[derive(Debug, Clone)]
pub struct Store {
    resolution: Nanos,
    cycle: u64,
    nodes: hashbrown::HashMap<String, NodeEntry>,
    pods: hashbrown::HashMap<PodKey, PodEntry>,
}

const NEW_CONTAINER_MIN_AGE: Nanos = 10_000_000_000;

fn next_pair(old: Option<&Pair>, new: Point, resolution: Nanos, is_container: bool) -> Pair {
    if let Some(old) = old {
        if new.timestamp <= old.last.timestamp {
            // The same (or an older) sample again: nothing new to learn.
            return *old;
        }
        // Same instance if it started before the last point was taken.
        if new.start_time <= old.last.timestamp {
            return Pair {
                prev: Some(old.last),
                last: new,
            };
        }
    }
    let age = new.timestamp - new.start_time;
    let prev =
        (is_container && new.start_time > 0 && age >= NEW_CONTAINER_MIN_AGE && age < resolution)
            .then_some(Point {
                timestamp: new.start_time,
                start_time: new.start_time,
                cumulative_cpu: 0,
                memory_bytes: 0,
            });
    Pair { prev, last: new }
}

fn usage(p: &Pair) -> Option<Usage> {
    let prev = p.prev?;
    let last = p.last;
    if last.start_time < prev.start_time || last.cumulative_cpu < prev.cumulative_cpu {
        return None;
    }
    let window = last.timestamp - prev.timestamp;
    if window <= 0 {
        return None;
    }
    let cpu = (last.cumulative_cpu - prev.cumulative_cpu) as u128 * 1_000_000_000 / window as u128;
    Some(Usage {
        timestamp: last.timestamp,
        window,
        cpu_nanocores: u64::try_from(cpu).unwrap_or(u64::MAX),
        memory_bytes: last.memory_bytes,
    })
}

/// Metrics of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    pub timestamp: Nanos,
    pub window: Nanos,
    pub containers: Vec<(String, Usage)>,
}

impl Store {
    pub fn new(resolution: std::time::Duration) -> Self {
        Self {
            resolution: i64::try_from(resolution.as_nanos()).unwrap_or(i64::MAX),
            cycle: 0,
            nodes: hashbrown::HashMap::new(),
            pods: hashbrown::HashMap::new(),
        }
    }

    /// Starts a scrape cycle.
    pub fn begin(&mut self) {
        self.cycle += 1;
    }

    /// Records one node's point.
    pub fn put_node(&mut self, name: &str, p: Point) {
        let (res, cycle) = (self.resolution, self.cycle);
        match self.nodes.get_mut(name) {
            Some(e) => {
                e.pair = next_pair(Some(&e.pair), p, res, false);
                e.seen = cycle;
            }
            None => {
                self.nodes.insert(
                    name.to_string(),
                    NodeEntry {
                        pair: next_pair(None, p, res, false),
                        seen: cycle,
                    },
                );
            }
        }
    }

    /// Records one pod's containers (all of them: a container not listed is
    /// gone).
    pub fn put_pod(&mut self, namespace: &str, name: &str, containers: &[(&str, Point)]) {
        let (res, cycle) = (self.resolution, self.cycle);
        let key = PodRef { namespace, name };
        let next = |old: Option<&[(Box<str>, Pair)]>| -> Vec<(Box<str>, Pair)> {
            containers
                .iter()
                .map(|(c, p)| {
                    let prev = old
                        .and_then(|o| o.iter().find(|(n, _)| &**n == *c))
                        .map(|(_, pair)| pair);
                    ((*c).into(), next_pair(prev, *p, res, true))
                })
                .collect()
        };
        match self.pods.get_mut(&key) {
            Some(e) => {
                let same_names = e.containers.len() == containers.len()
                    && e.containers
                        .iter()
                        .zip(containers)
                        .all(|((a, _), (b, _))| &**a == *b);
                if same_names {
                    for ((_, pair), (_, p)) in e.containers.iter_mut().zip(containers) {
                        *pair = next_pair(Some(pair), *p, res, true);
                    }
                } else {
                    e.containers = next(Some(&e.containers));
                }
                e.seen = cycle;
            }
            None => {
                self.pods.insert(
                    PodKey::new(namespace, name),
                    PodEntry {
                        containers: next(None),
                        seen: cycle,
                    },
                );
            }
        }
    }

    /// Records one node's scrape; returns the number of points dropped.
    pub fn put_scrape(&mut self, node: &str, scrape: &Scrape<'_>, scraped_at: Nanos) -> usize {
        let mut v = validate(scrape, scraped_at);
        if let Some(p) = v.node {
            self.put_node(node, p);
        }
        for ((ns, pod), containers) in &mut v.pods {
            containers.sort_unstable_by(|a, b| a.0.cmp(b.0));
            self.put_pod(ns, pod, containers);
        }
        v.dropped
    }

    /// Ends a cycle: forgets what it did not report.
    pub fn end(&mut self) {
        let cycle = self.cycle;
        self.nodes.retain(|_, e| e.seen == cycle);
        self.pods.retain(|_, e| e.seen == cycle);
    }

    /// A whole cycle from a batch.
    pub fn store(&mut self, batch: Batch) {
        self.begin();
        for (name, p) in &batch.nodes {
            self.put_node(name, *p);
        }
        for (key, containers) in &batch.pods {
            let mut cs: Vec<(&str, Point)> =
                containers.iter().map(|(c, p)| (c.as_str(), *p)).collect();
            cs.sort_unstable_by(|a, b| a.0.cmp(b.0));
            self.put_pod(&key.namespace, &key.name, &cs);
        }
        self.end();
    }

    pub fn node(&self, name: &str) -> Option<Usage> {
        self.nodes.get(name).and_then(|e| usage(&e.pair))
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodUsage> {
        let e = self.pods.get(&PodRef { namespace, name })?;
        let mut out = Vec::with_capacity(e.containers.len());
        for (c, pair) in &e.containers {
            out.push((c.to_string(), usage(pair)?));
        }
        let earliest = out.iter().map(|(_, u)| u).min_by_key(|u| u.timestamp)?;
        Some(PodUsage {
            timestamp: earliest.timestamp,
            window: earliest.window,
            containers: out,
        })
    }

    /// Names of nodes with metrics.
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.nodes
            .iter()
            .filter(|(_, e)| usage(&e.pair).is_some())
            .map(|(n, _)| n.as_str())
    }

    /// Pods with points.
    pub fn pod_keys(&self) -> impl Iterator<Item = &PodKey> {
        self.pods.keys()
    }

    /// (node points, container points) held, for the storage_points metric.
    pub fn points(&self) -> (usize, usize) {
        let count = |p: &Pair| 1 + usize::from(p.prev.is_some());
        (
            self.nodes.values().map(|e| count(&e.pair)).sum(),
            self.pods
                .values()
                .flat_map(|e| e.containers.iter())
                .map(|(_, p)| count(p))
                .sum(),
        )
    }

    /// Ready when both points exist for some node (upstream: storage ready
    /// once a rate can be computed).
    pub fn ready(&self) -> bool {
        self.nodes.values().any(|e| e.pair.prev.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;
    use proptest::prelude::*;
    use std::time::Duration;

    const S: Nanos = 1_000_000_000;

    fn pt(ts: i64, start: i64, cpu_s: f64, mem: u64) -> Point {
        Point {
            timestamp: ts * S,
            start_time: start * S,
            cumulative_cpu: (cpu_s * 1e9) as u64,
            memory_bytes: mem,
        }
    }

    fn node_batch(p: Point) -> Batch {
        Batch {
            nodes: [("n1".to_string(), p)].into(),
            pods: HashMap::new(),
        }
    }

    fn pod_batch(cs: &[(&str, Point)]) -> Batch {
        Batch {
            nodes: HashMap::new(),
            pods: [(
                PodKey::new("default", "web"),
                cs.iter().map(|(n, p)| (n.to_string(), *p)).collect(),
            )]
            .into(),
        }
    }

    #[test]
    fn cpu_rate_over_window() {
        let mut s = Store::new(Duration::from_secs(15));
        s.store(node_batch(pt(100, 0, 10.0, 500)));
        assert_eq!(s.node("n1"), None, "one point gives no rate");
        s.store(node_batch(pt(115, 0, 13.0, 700)));
        let u = s.node("n1").unwrap();
        assert_eq!(u.window, 15 * S);
        assert_eq!(u.cpu_nanocores, 200_000_000); // 3 cpu-seconds over 15 s
        assert_eq!(u.memory_bytes, 700);
        assert!(s.ready());
    }

    #[test]
    fn decreasing_counter_gives_no_usage() {
        let mut s = Store::new(Duration::from_secs(15));
        s.store(node_batch(pt(100, 0, 10.0, 500)));
        s.store(node_batch(pt(115, 0, 9.0, 500)));
        assert_eq!(s.node("n1"), None);
        // and the next good point yields a rate again
        s.store(node_batch(pt(130, 0, 12.0, 500)));
        assert_eq!(s.node("n1").unwrap().cpu_nanocores, 200_000_000);
    }

    #[test]
    fn restarted_container_does_not_use_old_point() {
        let mut s = Store::new(Duration::from_secs(15));
        s.store(pod_batch(&[("app", pt(100, 10, 50.0, 1))]));
        s.store(pod_batch(&[("app", pt(115, 10, 53.0, 1))]));
        assert_eq!(
            s.pod("default", "web").unwrap().containers[0]
                .1
                .cpu_nanocores,
            200_000_000
        );
        // restarted at t=112 (after the last point), counter restarted
        s.store(pod_batch(&[("app", pt(130, 112, 1.0, 1))]));
        assert_eq!(s.pod("default", "web"), None);
        s.store(pod_batch(&[("app", pt(145, 112, 2.5, 1))]));
        assert_eq!(
            s.pod("default", "web").unwrap().containers[0]
                .1
                .cpu_nanocores,
            100_000_000
        );
    }

    #[test]
    fn new_container_gets_synthetic_previous_point() {
        let mut s = Store::new(Duration::from_secs(60));
        // started 20 s before its first point, resolution 60 s
        s.store(pod_batch(&[("app", pt(120, 100, 4.0, 1))]));
        let u = s.pod("default", "web").unwrap();
        assert_eq!(u.window, 20 * S);
        assert_eq!(u.containers[0].1.cpu_nanocores, 200_000_000);
        // started 5 s before: too young
        let mut s = Store::new(Duration::from_secs(60));
        s.store(pod_batch(&[("app", pt(105, 100, 1.0, 1))]));
        assert_eq!(s.pod("default", "web"), None);
    }

    #[test]
    fn pod_needs_every_container_and_uses_earliest() {
        let mut s = Store::new(Duration::from_secs(15));
        s.store(pod_batch(&[
            ("a", pt(100, 1, 1.0, 1)),
            ("b", pt(101, 1, 1.0, 1)),
        ]));
        s.store(pod_batch(&[
            ("a", pt(115, 1, 2.0, 1)),
            ("b", pt(117, 1, 2.0, 1)),
        ]));
        let u = s.pod("default", "web").unwrap();
        assert_eq!(u.timestamp, 115 * S);
        assert_eq!(u.window, 15 * S);
        assert_eq!(u.containers.len(), 2);
        // b disappears from one batch: it starts over, so the pod has no metrics
        s.store(pod_batch(&[("a", pt(130, 1, 3.0, 1))]));
        s.store(pod_batch(&[
            ("a", pt(145, 1, 4.0, 1)),
            ("b", pt(147, 1, 4.0, 1)),
        ]));
        assert_eq!(s.pod("default", "web"), None);
    }

    #[test]
    fn put_scrape_matches_batches_and_ends_cycles() {
        let body = |cpu: f64| {
            format!(
                "node_cpu_usage_seconds_total {cpu}\nnode_memory_working_set_bytes 5\n\
container_cpu_usage_seconds_total{{namespace=\"d\",pod=\"p\",container=\"b\"}} {cpu}\n\
container_memory_working_set_bytes{{namespace=\"d\",pod=\"p\",container=\"b\"}} 7\n\
container_cpu_usage_seconds_total{{namespace=\"d\",pod=\"p\",container=\"a\"}} {cpu}\n\
container_memory_working_set_bytes{{namespace=\"d\",pod=\"p\",container=\"a\"}} 9\n"
            )
        };
        let mut a = Store::new(Duration::from_secs(15));
        let mut b = Store::new(Duration::from_secs(15));
        for (i, cpu) in [1.0, 4.0, 10.0].into_iter().enumerate() {
            let text = body(cpu);
            let scrape = parse(&text);
            let at = (100 + 15 * i as i64) * S;
            a.begin();
            assert_eq!(a.put_scrape("n1", &scrape, at), 0);
            a.end();
            let mut batch = Batch::default();
            batch.add_node("n1", &scrape, at);
            b.store(batch);
        }
        assert_eq!(a.node("n1"), b.node("n1"));
        assert_eq!(a.pod("d", "p"), b.pod("d", "p"));
        let p = a.pod("d", "p").unwrap();
        assert_eq!(
            p.containers
                .iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(p.containers[0].1.cpu_nanocores, 400_000_000);
        // A cycle that does not report the node forgets it and its pods.
        a.begin();
        a.end();
        assert_eq!(a.node("n1"), None);
        assert_eq!(a.pod("d", "p"), None);
        assert_eq!(a.points(), (0, 0));
    }

    #[test]
    fn pod_ref_hashes_like_pod_key() {
        use std::hash::BuildHasher;
        let s = std::hash::RandomState::new();
        assert_eq!(
            s.hash_one(PodKey::new("ns", "name")),
            s.hash_one(PodRef {
                namespace: "ns",
                name: "name"
            })
        );
    }

    #[test]
    fn batch_drops_zero_values() {
        let body = "node_cpu_usage_seconds_total 0\nnode_memory_working_set_bytes 5\n\
container_cpu_usage_seconds_total{namespace=\"d\",pod=\"p\",container=\"a\"} 1\n\
container_memory_working_set_bytes{namespace=\"d\",pod=\"p\",container=\"a\"} 0\n\
container_cpu_usage_seconds_total{namespace=\"d\",pod=\"q\",container=\"a\"} 1\n\
container_memory_working_set_bytes{namespace=\"d\",pod=\"q\",container=\"a\"} 10\n";
        let mut b = Batch::default();
        let dropped = b.add_node("n1", &parse(body), 100 * S);
        assert_eq!(dropped, 2);
        assert!(b.nodes.is_empty());
        assert_eq!(b.pods.len(), 1);
        let q = &b.pods[&PodKey::new("d", "q")];
        assert_eq!(q[0].0, "a");
        assert_eq!(q[0].1.timestamp, 100 * S);
    }

    proptest! {
        /// CPU usage is never more than the counter grew over the window,
        /// and the store never panics on any sequence of points.
        #[test]
        fn rate_is_exact(steps in proptest::collection::vec((1i64..100, 0u64..1_000_000_000_000u64, 0i64..3), 1..20)) {
            let mut s = Store::new(Duration::from_secs(15));
            let mut ts = 1000 * S;
            let mut cpu = 0u64;
            let mut start = S;
            let mut prev: Option<Point> = None;
            for (dt, inc, restart) in steps {
                ts += dt * S;
                if restart == 0 { start = ts - S; cpu = 0; }
                cpu = cpu.saturating_add(inc);
                let p = Point { timestamp: ts, start_time: start, cumulative_cpu: cpu.max(1), memory_bytes: 1 };
                s.store(node_batch(p));
                if let (Some(u), Some(pr)) = (s.node("n1"), prev) {
                    prop_assert_eq!(u.window, p.timestamp - pr.timestamp);
                    let expect = (p.cumulative_cpu - pr.cumulative_cpu) as u128 * 1_000_000_000 / u.window as u128;
                    prop_assert_eq!(u.cpu_nanocores as u128, expect);
                }
                prev = Some(p);
            }
        }
    }
}
