//! The two-sample store and the usage math.
//!
//! Per node and per container it keeps the last two points of one scrape
//! batch after another. CPU usage is the difference of cumulative CPU over the
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
//!   are those of its earliest container.

use std::collections::{BTreeMap, HashMap};

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

/// (namespace, name)
pub type PodKey = (String, String);

/// One scrape batch: the points of every node scraped successfully.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub nodes: HashMap<String, Point>,
    pub pods: HashMap<PodKey, BTreeMap<String, Point>>,
}

fn secs_to_nanos(s: f64) -> Option<i64> {
    (0.0..9.2e9).contains(&s).then(|| (s * 1e9).round() as i64)
}

fn to_u64(v: f64, scale: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0 && v * scale < 1.8e19).then(|| (v * scale).round() as u64)
}

impl Batch {
    /// Adds one node's scrape, taken at `scraped_at` (used where a sample
    /// carries no timestamp). Returns the number of points dropped.
    pub fn add_node(&mut self, node: &str, scrape: &Scrape, scraped_at: Nanos) -> usize {
        let ts = |ms: Option<i64>| ms.map_or(scraped_at, |m| m.saturating_mul(1_000_000));
        let mut dropped = 0;
        match (scrape.node_cpu, scrape.node_memory) {
            (Some(cpu), Some(mem)) => {
                let timestamp = ts(cpu.timestamp_ms);
                match (to_u64(cpu.value, 1e9), to_u64(mem.value, 1.0)) {
                    (Some(c), Some(m)) if c > 0 && m > 0 && timestamp > 0 => {
                        self.nodes.insert(
                            node.to_string(),
                            Point {
                                timestamp,
                                start_time: 0,
                                cumulative_cpu: c,
                                memory_bytes: m,
                            },
                        );
                    }
                    _ => dropped += 1,
                }
            }
            (None, None) => {}
            _ => dropped += 1,
        }
        let mut pods: HashMap<PodKey, Option<BTreeMap<String, Point>>> = HashMap::new();
        for ((ns, pod, container), s) in &scrape.containers {
            let slot = pods
                .entry((ns.clone(), pod.clone()))
                .or_insert_with(|| Some(BTreeMap::new()));
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
                Some(p) => {
                    containers.insert(container.clone(), p);
                }
                None => {
                    // One bad container drops the whole pod.
                    *slot = None;
                    dropped += 1;
                }
            }
        }
        for (key, containers) in pods {
            if let Some(c) = containers
                && !c.is_empty()
            {
                self.pods.insert(key, c);
            }
        }
        dropped
    }
}

/// The store. Not synchronised: the server wraps it in a lock.
#[derive(Debug, Clone)]
pub struct Store {
    resolution: Nanos,
    nodes: HashMap<String, Pair>,
    pods: HashMap<PodKey, BTreeMap<String, Pair>>,
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
            nodes: HashMap::new(),
            pods: HashMap::new(),
        }
    }

    /// Replaces the content with a new batch, carrying previous points over.
    pub fn store(&mut self, batch: Batch) {
        let nodes = batch
            .nodes
            .into_iter()
            .map(|(name, p)| {
                let pair = next_pair(self.nodes.get(&name), p, self.resolution, false);
                (name, pair)
            })
            .collect();
        let pods = batch
            .pods
            .into_iter()
            .map(|(key, containers)| {
                let old = self.pods.get(&key);
                let next = containers
                    .into_iter()
                    .map(|(c, p)| {
                        let pair = next_pair(old.and_then(|o| o.get(&c)), p, self.resolution, true);
                        (c, pair)
                    })
                    .collect();
                (key, next)
            })
            .collect();
        self.nodes = nodes;
        self.pods = pods;
    }

    pub fn node(&self, name: &str) -> Option<Usage> {
        self.nodes.get(name).and_then(usage)
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodUsage> {
        let containers = self.pods.get(&(namespace.to_string(), name.to_string()))?;
        let mut out = Vec::with_capacity(containers.len());
        for (c, pair) in containers {
            out.push((c.clone(), usage(pair)?));
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
            .filter(|(_, p)| usage(p).is_some())
            .map(|(n, _)| n.as_str())
    }

    /// Pods with metrics.
    pub fn pod_keys(&self) -> impl Iterator<Item = &PodKey> {
        self.pods.keys()
    }

    /// (node points, container points) held, for the storage_points metric.
    pub fn points(&self) -> (usize, usize) {
        let count = |p: &Pair| 1 + usize::from(p.prev.is_some());
        (
            self.nodes.values().map(count).sum(),
            self.pods.values().flat_map(|c| c.values()).map(count).sum(),
        )
    }

    /// Ready when both points exist for some node (upstream: storage ready
    /// once a rate can be computed).
    pub fn ready(&self) -> bool {
        self.nodes.values().any(|p| p.prev.is_some())
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
                ("default".to_string(), "web".to_string()),
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
        assert!(b.pods.contains_key(&("d".to_string(), "q".to_string())));
        assert_eq!(
            b.pods[&("d".to_string(), "q".to_string())]["a"].timestamp,
            100 * S
        );
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
