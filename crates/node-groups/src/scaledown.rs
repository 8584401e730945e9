//! Scale-down: which nodes are unneeded — requests below the utilization
//! threshold for cpu and memory, and every pod on them able to move to
//! another node (the shared solver, over the remaining nodes only: a
//! scale-down never counts on a new node) — what keeps the others, and
//! which unneeded nodes to remove now.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use outrigger_scheduling::{
    model::{Node, Pod, Problem, Target},
    reduce::{Reduced, has_pod_terms, smallest},
    resources::Resources,
    solver::solve,
};

use crate::group::NodeGroup;

/// `--scale-down-*` and `--skip-nodes-*` settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `--scale-down-utilization-threshold` (0.5).
    pub threshold: f64,
    /// `--skip-nodes-with-local-storage` (true).
    pub skip_local_storage: bool,
    /// `--skip-nodes-with-system-pods` (true).
    pub skip_system_pods: bool,
    /// `--ignore-daemonsets-utilization` (false).
    pub ignore_daemonsets_utilization: bool,
    /// `--skip-nodes-with-custom-controller-pods` (true).
    pub skip_custom_controller_pods: bool,
    /// `--blocking-system-pod-distruption-timeout` (1h).
    pub blocking_system_pod_timeout: Duration,
    /// `--scale-down-unready-enabled` (true): unready nodes are candidates
    /// too (removed after `--scale-down-unready-time`).
    pub unready_enabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            skip_local_storage: true,
            skip_system_pods: true,
            ignore_daemonsets_utilization: false,
            skip_custom_controller_pods: SKIP_NODES_WITH_CUSTOM_CONTROLLER_PODS,
            blocking_system_pod_timeout: BLOCKING_SYSTEM_POD_DISRUPTION_TIMEOUT,
            unready_enabled: true,
        }
    }
}

/// Upstream's `--blocking-system-pod-distruption-timeout` default: a
/// kube-system pod no PodDisruptionBudget selects keeps its node only
/// while it is younger than this.
pub const BLOCKING_SYSTEM_POD_DISRUPTION_TIMEOUT: Duration = Duration::from_secs(3600);
/// Upstream's `--skip-nodes-with-custom-controller-pods` default: a pod
/// counts as replicated only if its controller is one of
/// [`REPLICATED_KINDS`].
pub const SKIP_NODES_WITH_CUSTOM_CONTROLLER_PODS: bool = true;
/// The controllers upstream knows to bring a pod back elsewhere.
pub const REPLICATED_KINDS: [&str; 4] =
    ["ReplicationController", "Job", "ReplicaSet", "StatefulSet"];

/// What the drain rules need of a pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodFacts {
    /// `namespace/name`.
    pub key: String,
    pub namespace: String,
    pub requests: Resources,
    /// Its controller is a DaemonSet, or it is annotated
    /// `cluster-autoscaler.kubernetes.io/daemonset-pod: "true"`.
    pub daemon: bool,
    /// A static pod (its mirror on the API server).
    pub mirror: bool,
    /// The kind of its controlling owner, if any.
    pub controller: Option<String>,
    /// `cluster-autoscaler.kubernetes.io/safe-to-evict`: `"true"` or
    /// `"false"`; any other value is no answer.
    pub safe_to_evict: Option<bool>,
    /// Its hostPath and non-memory emptyDir volumes.
    pub local_volumes: Vec<String>,
    /// `cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes`.
    pub safe_local_volumes: Vec<String>,
    /// A PodDisruptionBudget selects it.
    pub has_pdb: bool,
    /// A PodDisruptionBudget selecting it allows no disruption now.
    pub pdb_blocks: bool,
    /// Finished for good (failed, or succeeded and not to be restarted).
    pub terminal: bool,
    /// Deleted longer ago than its grace period and 30 seconds more: it is
    /// as good as gone.
    pub long_terminating: bool,
    /// Since its creation, if it has a creation time.
    pub age: Option<Duration>,
}

/// What the scale-down needs of a node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFacts {
    pub name: String,
    /// Index into the groups, if a group has it.
    pub group: Option<usize>,
    pub ready: bool,
    /// `cluster-autoscaler.kubernetes.io/scale-down-disabled: "true"`.
    pub scale_down_disabled: bool,
    /// Being deleted, or already tainted for deletion.
    pub deleting: bool,
    pub allocatable: Resources,
    /// What the cluster-wide limits count.
    pub capacity: Resources,
    pub pods: Vec<PodFacts>,
}

/// Why a pod keeps its node: upstream's `BlockingPodReason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockingReason {
    ControllerNotFound,
    MinReplicasReached,
    NotReplicated,
    LocalStorageRequested,
    NotSafeToEvictAnnotation,
    UnmovableKubeSystemPod,
    NotEnoughPdb,
    UnexpectedError,
}

impl std::fmt::Display for BlockingReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ControllerNotFound => "ControllerNotFound",
            Self::MinReplicasReached => "MinReplicasReached",
            Self::NotReplicated => "NotReplicated",
            Self::LocalStorageRequested => "LocalStorageRequested",
            Self::NotSafeToEvictAnnotation => "NotSafeToEvictAnnotation",
            Self::UnmovableKubeSystemPod => "UnmovableKubeSystemPod",
            Self::NotEnoughPdb => "NotEnoughPdb",
            Self::UnexpectedError => "UnexpectedError",
        })
    }
}

/// What a drain does with a pod (upstream's drainability outcomes).
#[derive(Clone, Debug, PartialEq)]
pub enum Drainability {
    /// The rule has no say; the next one decides.
    Undefined,
    /// The pod moves (a daemonset's pod goes with its node).
    DrainOk,
    /// The pod neither moves nor keeps its node.
    SkipDrain,
    /// The pod keeps its node.
    Blocked {
        reason: BlockingReason,
        message: String,
    },
}

/// One drain rule, upstream's names and order (see [`rules`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// Static pods are skipped.
    Mirror,
    /// Pods deleted long ago are skipped.
    LongTerminating,
    /// Daemonset pods go with their node.
    DaemonSet,
    /// `safe-to-evict: "true"` moves the pod whatever the rules after it say.
    SafeToEvict,
    /// Finished pods hold nothing.
    Terminal,
    /// A pod no known controller brings back keeps its node.
    Replicated { skip_custom_controller_pods: bool },
    /// A kube-system pod no PodDisruptionBudget selects keeps its node,
    /// until it is older than the timeout.
    System { disruption_timeout: Duration },
    /// `safe-to-evict: "false"` keeps the node.
    NotSafeToEvict,
    /// Local storage not listed in `safe-to-evict-local-volumes` keeps it.
    LocalStorage,
    /// A PodDisruptionBudget allowing no disruption keeps it.
    Pdb,
}

impl Rule {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Mirror => "Mirror",
            Self::LongTerminating => "LongTerminating",
            Self::DaemonSet => "DaemonSet",
            Self::SafeToEvict => "SafeToEvict",
            Self::Terminal => "Terminal",
            Self::Replicated { .. } => "Replicated",
            Self::System { .. } => "System",
            Self::NotSafeToEvict => "NotSafeToEvict",
            Self::LocalStorage => "LocalStorage",
            Self::Pdb => "PDB",
        }
    }

    /// This rule's say on the pod.
    pub fn drainable(&self, p: &PodFacts) -> Drainability {
        let blocked = |reason, message| Drainability::Blocked { reason, message };
        match *self {
            Self::Mirror if p.mirror => Drainability::SkipDrain,
            Self::LongTerminating if p.long_terminating => Drainability::SkipDrain,
            Self::DaemonSet if p.daemon => Drainability::DrainOk,
            Self::SafeToEvict if p.safe_to_evict == Some(true) => Drainability::DrainOk,
            Self::Terminal if p.terminal => Drainability::DrainOk,
            Self::Replicated {
                skip_custom_controller_pods,
            } => match &p.controller {
                None => blocked(
                    BlockingReason::NotReplicated,
                    format!("pod {} is not replicated (no controller)", p.key),
                ),
                Some(kind)
                    if skip_custom_controller_pods
                        && !REPLICATED_KINDS.contains(&kind.as_str()) =>
                {
                    blocked(
                        BlockingReason::NotReplicated,
                        format!(
                            "pod {} is not replicated (its controller is a {kind}, not a {})",
                            p.key,
                            REPLICATED_KINDS.join(", ")
                        ),
                    )
                }
                Some(_) => Drainability::Undefined,
            },
            Self::System { disruption_timeout } if p.namespace == "kube-system" && !p.has_pdb => {
                if p.age.is_some_and(|a| a > disruption_timeout) {
                    Drainability::DrainOk
                } else {
                    blocked(
                        BlockingReason::UnmovableKubeSystemPod,
                        format!(
                            "non-daemonset, non-mirrored kube-system pod {} has no pod disruption budget",
                            p.key
                        ),
                    )
                }
            }
            Self::NotSafeToEvict if p.safe_to_evict == Some(false) => blocked(
                BlockingReason::NotSafeToEvictAnnotation,
                format!(
                    "pod {} is annotated cluster-autoscaler.kubernetes.io/safe-to-evict: \"false\"",
                    p.key
                ),
            ),
            Self::LocalStorage => {
                let unsafe_volumes: Vec<&str> = p
                    .local_volumes
                    .iter()
                    .filter(|v| !p.safe_local_volumes.contains(v))
                    .map(|v| v.as_str())
                    .collect();
                if unsafe_volumes.is_empty() {
                    Drainability::Undefined
                } else {
                    blocked(
                        BlockingReason::LocalStorageRequested,
                        format!(
                            "pod {} has local storage ({})",
                            p.key,
                            unsafe_volumes.join(", ")
                        ),
                    )
                }
            }
            Self::Pdb if p.pdb_blocks => blocked(
                BlockingReason::NotEnoughPdb,
                format!("pod {}: not enough pod disruption budget to move it", p.key),
            ),
            _ => Drainability::Undefined,
        }
    }
}

/// Upstream's default rules, in its order, with our settings.
pub fn rules(cfg: &Config) -> Vec<Rule> {
    let mut rules = vec![
        Rule::Mirror,
        Rule::LongTerminating,
        Rule::DaemonSet,
        Rule::SafeToEvict,
        Rule::Terminal,
        Rule::Replicated {
            skip_custom_controller_pods: cfg.skip_custom_controller_pods,
        },
    ];
    if cfg.skip_system_pods {
        rules.push(Rule::System {
            disruption_timeout: cfg.blocking_system_pod_timeout,
        });
    }
    rules.push(Rule::NotSafeToEvict);
    if cfg.skip_local_storage {
        rules.push(Rule::LocalStorage);
    }
    rules.push(Rule::Pdb);
    rules
}

/// The first say of these rules on the pod.
pub fn drainable(rules: &[Rule], p: &PodFacts) -> Drainability {
    rules
        .iter()
        .map(|r| r.drainable(p))
        .find(|d| *d != Drainability::Undefined)
        .unwrap_or(Drainability::Undefined)
}

/// Why a pod keeps its node (upstream's drain rules), if it does.
pub fn drain_blocker(p: &PodFacts, cfg: &Config) -> Option<String> {
    match drainable(&rules(cfg), p) {
        Drainability::Blocked { message, .. } => Some(message),
        _ => None,
    }
}

/// A node's pods a drain moves (indices into its pods).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodsToMove {
    /// To reschedule elsewhere.
    pub pods: Vec<usize>,
    /// Daemonset pods, going with the node.
    pub daemonset_pods: Vec<usize>,
}

/// The pod that keeps a node.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockingPod {
    /// Index into the node's pods.
    pub pod: usize,
    pub reason: BlockingReason,
    pub message: String,
}

/// What draining a node with these pods would move, or the first pod that
/// keeps it (upstream's `GetPodsToMove`). Skipped pods are in neither list.
pub fn pods_to_move(pods: &[PodFacts], cfg: &Config) -> Result<PodsToMove, BlockingPod> {
    let rules = rules(cfg);
    let mut out = PodsToMove::default();
    for (i, p) in pods.iter().enumerate() {
        match drainable(&rules, p) {
            Drainability::Undefined | Drainability::DrainOk => {
                if p.daemon {
                    out.daemonset_pods.push(i);
                } else {
                    out.pods.push(i);
                }
            }
            Drainability::SkipDrain => {}
            Drainability::Blocked { reason, message } => {
                return Err(BlockingPod {
                    pod: i,
                    reason,
                    message,
                });
            }
        }
    }
    Ok(out)
}

/// A node's requests over its allocatable.
#[derive(Clone, Debug, PartialEq)]
pub struct Utilization {
    pub cpu: f64,
    pub memory: f64,
    /// `cpu` or `memory`: the higher (memory on a tie).
    pub resource: &'static str,
    /// The higher of the two.
    pub utilization: f64,
}

/// Upstream's utilization: per resource, the pods' requests over
/// allocatable. Pods deleted long ago and finished pods count for nothing;
/// with `skip_daemonset_pods` (resp. `skip_mirror_pods`) those pods' requests
/// come off the allocatable instead of counting. An allocatable cpu or
/// memory of zero makes it unknown.
pub fn calculate(
    n: &NodeFacts,
    skip_daemonset_pods: bool,
    skip_mirror_pods: bool,
) -> Result<Utilization, String> {
    let of = |name: &str, get: fn(&Resources) -> i64| -> Result<f64, String> {
        let alloc = get(&n.allocatable);
        if alloc == 0 {
            return Err(format!("{name} allocatable is 0 on {}", n.name));
        }
        let (mut used, mut off) = (0i64, 0i64);
        for p in &n.pods {
            let r = get(&p.requests);
            if (skip_daemonset_pods && p.daemon) || (skip_mirror_pods && p.mirror) {
                off += r;
            } else if !(p.long_terminating || p.terminal) {
                used += r;
            }
        }
        Ok(used as f64 / (alloc - off) as f64)
    };
    let cpu = of("cpu", |r| r.cpu_millis)?;
    let memory = of("memory", |r| r.memory_bytes)?;
    Ok(if cpu > memory {
        Utilization {
            cpu,
            memory,
            resource: "cpu",
            utilization: cpu,
        }
    } else {
        Utilization {
            cpu,
            memory,
            resource: "memory",
            utilization: memory,
        }
    })
}

/// The node's utilization with our settings (daemonset pods left out with
/// `ignore_daemonsets_utilization`; mirror pods count, upstream's default).
pub fn utilization(n: &NodeFacts, cfg: &Config) -> Result<Utilization, String> {
    calculate(n, cfg.ignore_daemonsets_utilization, false)
}

/// Why a node is not a scale-down candidate (upstream's eligibility).
#[derive(Clone, Debug, PartialEq)]
pub enum Ineligible {
    /// No group has it.
    NotAutoscaled,
    BeingDeleted,
    ScaleDownDisabled,
    NotReady,
    MinSizeReached,
    /// Its utilization cannot be told.
    UnknownUtilization(String),
    NotUnderutilized {
        utilization: f64,
        threshold: f64,
    },
}

impl std::fmt::Display for Ineligible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAutoscaled => f.write_str("no node group has the node"),
            Self::BeingDeleted => f.write_str("the node is being deleted"),
            Self::ScaleDownDisabled => f.write_str(
                "scale-down is disabled on the node (cluster-autoscaler.kubernetes.io/scale-down-disabled)",
            ),
            Self::NotReady => f.write_str("the node is not ready"),
            Self::MinSizeReached => f.write_str("its node group is at its minimum size"),
            Self::UnknownUtilization(e) => write!(f, "its utilization is unknown: {e}"),
            Self::NotUnderutilized {
                utilization,
                threshold,
            } => write!(
                f,
                "the node is not underutilized: {:.0}% of its cpu or memory is requested (threshold {:.0}%)",
                utilization * 100.0,
                threshold * 100.0
            ),
        }
    }
}

/// Whether the node may be looked at for removal, and its utilization if
/// so. Unready nodes are, unless `unready_enabled` is off (they are removed
/// after `--scale-down-unready-time` instead of the unneeded time: see
/// [`choose_removals`]); a node at or below the threshold is underutilized.
pub fn eligibility(
    f: &NodeFacts,
    groups: &[NodeGroup],
    cfg: &Config,
) -> Result<Utilization, Ineligible> {
    let Some(g) = f.group else {
        return Err(Ineligible::NotAutoscaled);
    };
    if f.deleting {
        return Err(Ineligible::BeingDeleted);
    }
    if f.scale_down_disabled {
        return Err(Ineligible::ScaleDownDisabled);
    }
    let u = utilization(f, cfg).map_err(Ineligible::UnknownUtilization)?;
    if !f.ready && !cfg.unready_enabled {
        return Err(Ineligible::NotReady);
    }
    if groups.get(g).is_some_and(|g| g.target <= g.min) {
        return Err(Ineligible::MinSizeReached);
    }
    if u.utilization > cfg.threshold {
        return Err(Ineligible::NotUnderutilized {
            utilization: u.utilization,
            threshold: cfg.threshold,
        });
    }
    Ok(u)
}

/// A node that can go.
#[derive(Clone, Debug, PartialEq)]
pub struct Unneeded {
    /// Index into the nodes.
    pub node: usize,
    pub utilization: f64,
    /// No pod to move.
    pub empty: bool,
    /// Where each pod would go: (pod key, node name).
    pub moves: Vec<(String, String)>,
}

/// The nodes that can go, and why each other node of a group stays.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Found {
    pub unneeded: Vec<Unneeded>,
    /// Node index -> why it stays.
    pub kept: BTreeMap<usize, String>,
}

/// Finds the unneeded nodes: [`eligibility`], then no pod keeping the node
/// ([`pods_to_move`]) and the pods to move fitting elsewhere. `nodes` are
/// the solver's view of the cluster's nodes (with their pods), `facts[i]`
/// the same node's facts.
/// Nodes are tried least utilized first; once one is found unneeded, its
/// pods are counted on the nodes they would move to and it takes no pods,
/// so two unneeded nodes never count on the same room.
pub fn find_unneeded(
    nodes: &[Node],
    facts: &[NodeFacts],
    groups: &[NodeGroup],
    cfg: &Config,
) -> Found {
    find_unneeded_with(nodes, facts, groups, cfg, true)
}

/// [`find_unneeded`], with the reduced simulation allowed or not (the
/// tests check that both find the same).
fn find_unneeded_with(
    nodes: &[Node],
    facts: &[NodeFacts],
    groups: &[NodeGroup],
    cfg: &Config,
    allow_reduce: bool,
) -> Found {
    let mut found = Found::default();
    let mut order = vec![];
    // Per node, its pods a drain does not reschedule (daemonset, skipped
    // and finished pods).
    let mut staying: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (i, f) in facts.iter().enumerate() {
        if f.group.is_none() {
            continue;
        }
        let u = match eligibility(f, groups, cfg) {
            Ok(u) => u.utilization,
            Err(why) => {
                found.kept.insert(i, why.to_string());
                continue;
            }
        };
        let moving = match pods_to_move(&f.pods, cfg) {
            Ok(m) => m,
            Err(b) => {
                found.kept.insert(i, b.message);
                continue;
            }
        };
        // Finished pods hold nothing: a node with only those is empty.
        let moving: BTreeSet<usize> = moving
            .pods
            .into_iter()
            .filter(|p| !f.pods[*p].terminal)
            .collect();
        order.push((u, moving.is_empty(), i));
        staying.insert(
            i,
            (0..f.pods.len())
                .filter(|p| !moving.contains(p))
                .map(|p| f.pods[p].key.clone())
                .collect(),
        );
    }
    // Empty nodes first, then least utilized.
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.total_cmp(&b.0)).then(a.2.cmp(&b.2)));
    // Without pod terms among the pods to move, the simulation runs on
    // reduced nodes (`reduce`), and first on a few nodes only.
    let simple = allow_reduce
        && !order
            .iter()
            .filter(|(_, empty, _)| !empty)
            .any(|(_, _, i)| nodes[*i].pods.iter().any(has_pod_terms));
    let mut sim = Sim {
        nodes,
        full: if simple { vec![] } else { nodes.to_vec() },
        reduced: simple.then(|| Reduced::new(nodes)),
        moved_in: BTreeMap::new(),
        gone: BTreeSet::new(),
        solver_order: {
            let mut o: Vec<usize> = (0..nodes.len()).collect();
            o.sort_by(|a, b| {
                (nodes[*a].in_flight, &nodes[*a].name).cmp(&(nodes[*b].in_flight, &nodes[*b].name))
            });
            o
        },
    };
    for (u, empty, i) in order {
        if empty {
            sim.gone.insert(i);
            found.unneeded.push(Unneeded {
                node: i,
                utilization: u,
                empty: true,
                moves: vec![],
            });
            continue;
        }
        // Its pods to reschedule, and those an earlier unneeded node's plan
        // put here.
        let stay = staying.remove(&i).unwrap_or_default();
        let mut movable: Vec<Pod> = nodes[i]
            .pods
            .iter()
            .filter(|p| !p.daemon && !stay.contains(&p.key()))
            .cloned()
            .collect();
        movable.extend(sim.moved_in.remove(&i).unwrap_or_default());
        match sim.place(i, movable) {
            Err(why) => {
                found.kept.insert(i, why);
            }
            Ok(moves) => {
                sim.gone.insert(i);
                found.unneeded.push(Unneeded {
                    node: i,
                    utilization: u,
                    empty: false,
                    moves,
                });
            }
        }
    }
    found
}

/// The removal simulation's state: the nodes, with the pods moved onto
/// them so far, and the nodes gone.
struct Sim<'a> {
    /// The nodes as they are.
    nodes: &'a [Node],
    /// Every node with its pods and those moved there (when pods to move
    /// have pod terms; else empty).
    full: Vec<Node>,
    /// The same nodes reduced, when no pod to move has pod terms.
    reduced: Option<Reduced>,
    /// Pods moved onto a node by an earlier removal (they move again if it
    /// goes too).
    moved_in: BTreeMap<usize, Vec<Pod>>,
    gone: BTreeSet<usize>,
    /// The nodes' indices in the order the solver tries nodes:
    /// (in-flight, name).
    solver_order: Vec<usize>,
}

/// With reduced nodes, the first try has nodes for this many times the
/// pods' requests (and at least [`FIRST_TRY_NODES`]).
const FIRST_TRY_ROOM: i64 = 2;
const FIRST_TRY_NODES: usize = 8;

impl Sim<'_> {
    /// Where node `i`'s pods would go on the other nodes left, or why one
    /// cannot go; on success the pods count on their new nodes.
    fn place(&mut self, i: usize, pods: Vec<Pod>) -> Result<Vec<(String, String)>, String> {
        let others: Vec<usize> = (0..self.nodes.len())
            .filter(|j| *j != i && !self.gone.contains(j))
            .collect();
        let (plan, problem, index) = match &self.reduced {
            None => {
                let problem = Problem {
                    pods,
                    nodes: others.iter().map(|j| self.full[*j].clone()).collect(),
                    ..Default::default()
                };
                (solve(&problem), problem, others)
            }
            Some(r) => {
                // The solver tries nodes in (in-flight, name) order: a first
                // try on the first few it would be given, enough for the pods
                // twice over, gives the same placements if every pod finds a
                // node there with no preference given up; else the try on
                // all of them.
                let least = smallest(&pods);
                let want = Resources::sum(pods.iter().map(|p| &p.requests));
                let mut few = vec![];
                let mut room = Resources::default();
                let mut more = false;
                for &j in &self.solver_order {
                    if j == i || self.gone.contains(&j) || !r.keeps(j, least.as_ref()) {
                        continue;
                    }
                    if few.len() >= FIRST_TRY_NODES
                        && room.cpu_millis >= FIRST_TRY_ROOM * want.cpu_millis
                        && room.memory_bytes >= FIRST_TRY_ROOM * want.memory_bytes
                        && room.pods >= FIRST_TRY_ROOM * want.pods
                    {
                        more = true;
                        break;
                    }
                    let n = &r.nodes[j];
                    room.add(
                        &n.allocatable
                            .minus(&Resources::sum(n.pods.iter().map(|p| &p.requests))),
                    );
                    few.push(j);
                }
                let mut first = None;
                if more {
                    let problem = Problem {
                        pods: pods.clone(),
                        nodes: few.iter().map(|j| r.nodes[*j].clone()).collect(),
                        ..Default::default()
                    };
                    let plan = solve(&problem);
                    if plan.unplaced.is_empty() && plan.relaxed.is_empty() {
                        first = Some((plan, problem, few));
                    }
                }
                match first {
                    Some(done) => done,
                    None => {
                        let (nodes, index) = r.for_pods(others.iter().copied(), &pods);
                        let problem = Problem {
                            pods,
                            nodes,
                            ..Default::default()
                        };
                        let plan = solve(&problem);
                        if plan.unplaced.is_empty() {
                            (plan, problem, index)
                        } else {
                            // A pod fits nowhere: asked again of every node,
                            // so the reason counts them all.
                            let (all, index) = r.all(others.into_iter());
                            let problem = Problem {
                                nodes: all,
                                ..problem
                            };
                            (solve(&problem), problem, index)
                        }
                    }
                }
            }
        };
        if let Some(u0) = plan.unplaced.first() {
            return Err(format!(
                "pod {} has nowhere to go: {}",
                problem.pods[u0.pod].key(),
                u0.reason
            ));
        }
        let mut moves = vec![];
        for (p, t) in &plan.placements {
            if let Target::Node(n) = t {
                let dest = index[*n];
                let pod = problem.pods[*p].clone();
                moves.push((pod.key(), self.nodes[dest].name.clone()));
                match &mut self.reduced {
                    Some(r) => r.add(dest, pod.clone()),
                    None => self.full[dest].pods.push(pod.clone()),
                }
                self.moved_in.entry(dest).or_default().push(pod);
            }
        }
        Ok(moves)
    }
}

/// Timing and bounds of removals.
#[derive(Clone, Debug, PartialEq)]
pub struct Removal {
    /// `--scale-down-unneeded-time` (10 min).
    pub unneeded_time: Duration,
    /// `--scale-down-unready-time` (20 min): how long an unready node must
    /// have been unneeded.
    pub unready_time: Duration,
    /// `--max-empty-bulk-delete` (10).
    pub max_empty_bulk: usize,
    /// What the cluster-wide minimums (`--cores-total`, `--memory-total`
    /// min) leave to remove: (millicores, bytes) of capacity; `None` is no
    /// minimum.
    pub left_above_min: (Option<i64>, Option<i64>),
}

impl Default for Removal {
    fn default() -> Self {
        Self {
            unneeded_time: Duration::from_secs(600),
            unready_time: Duration::from_secs(1200),
            max_empty_bulk: 10,
            left_above_min: (None, None),
        }
    }
}

/// Why an unneeded node is not removed now, if it is not.
fn held_by_minimums(f: &NodeFacts, left: &(Option<i64>, Option<i64>)) -> Option<&'static str> {
    match left {
        (Some(cpu), _) if f.capacity.cpu_millis > *cpu => Some("minimal cluster cpu limit reached"),
        (_, Some(mem)) if f.capacity.memory_bytes > *mem => {
            Some("minimal cluster memory limit reached")
        }
        _ => None,
    }
}

/// What to remove now: empty nodes unneeded for long enough in bulk, else
/// one non-empty node; never a group below its minimum (nodes already
/// being deleted counted).
pub fn choose_removals(
    found: &Found,
    since: &BTreeMap<usize, Duration>,
    facts: &[NodeFacts],
    groups: &[NodeGroup],
    deleting_per_group: &BTreeMap<usize, i64>,
    r: &Removal,
) -> (Vec<usize>, Option<usize>) {
    let mut left: BTreeMap<usize, i64> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            (
                i,
                g.target - deleting_per_group.get(&i).copied().unwrap_or(0) - g.min,
            )
        })
        .collect();
    let ripe = |u: &Unneeded| {
        let wait = if facts[u.node].ready {
            r.unneeded_time
        } else {
            r.unready_time
        };
        since.get(&u.node).is_some_and(|d| *d >= wait)
    };
    let mut minimums = r.left_above_min;
    let take = |f: &NodeFacts, minimums: &mut (Option<i64>, Option<i64>)| {
        if held_by_minimums(f, minimums).is_some() {
            return false;
        }
        if let Some(c) = minimums.0.as_mut() {
            *c -= f.capacity.cpu_millis;
        }
        if let Some(m) = minimums.1.as_mut() {
            *m -= f.capacity.memory_bytes;
        }
        true
    };
    let mut empty = vec![];
    for u in found.unneeded.iter().filter(|u| u.empty && ripe(u)) {
        if empty.len() >= r.max_empty_bulk {
            break;
        }
        let f = &facts[u.node];
        let Some(g) = f.group else {
            continue;
        };
        let room = left.entry(g).or_insert(0);
        if *room > 0 && take(f, &mut minimums) {
            *room -= 1;
            empty.push(u.node);
        }
    }
    if !empty.is_empty() {
        return (empty, None);
    }
    let drain = found
        .unneeded
        .iter()
        .filter(|u| !u.empty && ripe(u))
        .find(|u| {
            let f = &facts[u.node];
            f.group
                .is_some_and(|g| left.get(&g).copied().unwrap_or(0) > 0)
                && held_by_minimums(f, &minimums).is_none()
        })
        .map(|u| u.node);
    (vec![], drain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(key: &str) -> PodFacts {
        PodFacts {
            key: format!("default/{key}"),
            namespace: "default".into(),
            controller: Some("ReplicaSet".into()),
            ..Default::default()
        }
    }

    /// Random clusters (fixed seeds): the reduced simulation finds the same
    /// unneeded nodes, kept nodes and moves as the one over every pod.
    #[test]
    fn the_reduced_simulation_finds_what_the_full_one_finds() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..30 {
            let count = 5 + next(40) as usize;
            let groups = vec![NodeGroup {
                id: "g".into(),
                min: 0,
                max: 100,
                target: count as i64,
                instances: vec![],
                template: None,
            }];
            let mut nodes = vec![];
            let mut facts = vec![];
            for i in 0..count {
                let alloc = Resources {
                    cpu_millis: 2000 + 2000 * next(2) as i64,
                    memory_bytes: 8 << 30,
                    pods: 20,
                    ..Default::default()
                };
                let mut pods = vec![];
                for j in 0..next(12) {
                    let mut p = outrigger_scheduling::model::Pod::new(
                        "default",
                        &format!("p{round}-{i}-{j}"),
                        Resources {
                            cpu_millis: 50 + 50 * next(8) as i64,
                            memory_bytes: (128 + 128 * next(8) as i64) << 20,
                            pods: 1,
                            ..Default::default()
                        },
                    );
                    if next(10) == 0 {
                        p.host_ports.push(outrigger_scheduling::model::HostPort {
                            port: 8080,
                            protocol: "TCP".into(),
                            ip: String::new(),
                        });
                    }
                    pods.push(p);
                }
                let name = format!("n{i:03}");
                facts.push(NodeFacts {
                    name: name.clone(),
                    group: Some(0),
                    ready: true,
                    allocatable: alloc.clone(),
                    capacity: alloc.clone(),
                    pods: pods
                        .iter()
                        .map(|p| PodFacts {
                            requests: p.requests.clone(),
                            ..pod(&p.name)
                        })
                        .collect(),
                    ..Default::default()
                });
                nodes.push(Node {
                    name,
                    allocatable: alloc,
                    pods,
                    ..Default::default()
                });
            }
            let cfg = Config::default();
            let reduced = find_unneeded_with(&nodes, &facts, &groups, &cfg, true);
            let full = find_unneeded_with(&nodes, &facts, &groups, &cfg, false);
            assert_eq!(reduced, full, "round {round}");
        }
    }

    #[test]
    fn drain_rules_as_upstream() {
        let cfg = Config::default();
        assert_eq!(drain_blocker(&pod("a"), &cfg), None);
        let mut p = pod("a");
        p.safe_to_evict = Some(false);
        assert!(drain_blocker(&p, &cfg).unwrap().contains("safe-to-evict"));
        let mut p = pod("a");
        p.controller = None;
        assert!(drain_blocker(&p, &cfg).unwrap().contains("not replicated"));
        p.safe_to_evict = Some(true);
        assert_eq!(drain_blocker(&p, &cfg), None);
        let mut p = pod("a");
        p.namespace = "kube-system".into();
        assert!(drain_blocker(&p, &cfg).unwrap().contains("kube-system"));
        p.has_pdb = true;
        assert_eq!(drain_blocker(&p, &cfg), None);
        let mut p = pod("a");
        p.local_volumes = vec!["cache".into(), "data".into()];
        assert!(drain_blocker(&p, &cfg).unwrap().contains("cache, data"));
        p.safe_local_volumes = vec!["cache".into(), "data".into()];
        assert_eq!(drain_blocker(&p, &cfg), None);
        let mut p = pod("a");
        p.local_volumes = vec!["cache".into()];
        let relaxed = Config {
            skip_local_storage: false,
            ..Config::default()
        };
        assert_eq!(drain_blocker(&p, &relaxed), None);
        let mut p = pod("a");
        p.pdb_blocks = true;
        assert!(
            drain_blocker(&p, &cfg)
                .unwrap()
                .contains("disruption budget")
        );
        // Daemonset and mirror pods never block.
        let mut p = pod("a");
        p.controller = None;
        p.daemon = true;
        assert_eq!(drain_blocker(&p, &cfg), None);
    }

    #[test]
    fn utilization_is_the_larger_of_cpu_and_memory() {
        let mut n = NodeFacts {
            allocatable: Resources {
                cpu_millis: 2000,
                memory_bytes: 4 << 30,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut p = pod("a");
        p.requests = Resources {
            cpu_millis: 500,
            memory_bytes: 3 << 30,
            ..Default::default()
        };
        n.pods.push(p);
        let mut ds = pod("ds");
        ds.daemon = true;
        ds.requests.cpu_millis = 500;
        n.pods.push(ds);
        let cfg = Config::default();
        let u = |n: &NodeFacts, c: &Config| utilization(n, c).unwrap().utilization;
        assert!((u(&n, &cfg) - 0.75).abs() < 1e-9);
        let ignore = Config {
            ignore_daemonsets_utilization: true,
            ..Config::default()
        };
        assert!((u(&n, &ignore) - 0.75).abs() < 1e-9);
        n.pods[0].requests.memory_bytes = 1 << 30;
        assert!((u(&n, &cfg) - 0.5).abs() < 1e-9);
        // Ignored daemonset requests come off the allocatable: 500m of
        // 2000m - 500m.
        assert!((u(&n, &ignore) - 1.0 / 3.0).abs() < 1e-9);
        // No allocatable memory: unknown, not 0.
        n.allocatable.memory_bytes = 0;
        assert!(utilization(&n, &cfg).is_err());
    }

    fn one_node_group() -> Vec<NodeGroup> {
        vec![NodeGroup {
            id: "g".into(),
            min: 0,
            max: 10,
            target: 1,
            instances: vec![],
            template: None,
        }]
    }

    /// Nodes of group 0, 2 cpu / 4Gi each, with these pods (solver view
    /// and facts alike).
    fn group_nodes(pods: Vec<Vec<PodFacts>>) -> (Vec<Node>, Vec<NodeFacts>) {
        let allocatable = Resources {
            cpu_millis: 2000,
            memory_bytes: 4 << 30,
            pods: 110,
            ..Default::default()
        };
        let mut nodes = vec![];
        let mut facts = vec![];
        for (i, pods) in pods.into_iter().enumerate() {
            nodes.push(Node {
                name: format!("n{i}"),
                labels: Default::default(),
                taints: vec![],
                allocatable: allocatable.clone(),
                pods: pods
                    .iter()
                    .map(|p| {
                        let (ns, name) = p.key.split_once('/').unwrap();
                        let mut m =
                            outrigger_scheduling::model::Pod::new(ns, name, p.requests.clone());
                        m.daemon = p.daemon;
                        m
                    })
                    .collect(),
                in_flight: false,
                pool: None,
                price: None,
                do_not_disrupt: false,
            });
            facts.push(NodeFacts {
                name: format!("n{i}"),
                group: Some(0),
                ready: true,
                allocatable: allocatable.clone(),
                pods,
                ..Default::default()
            });
        }
        (nodes, facts)
    }

    fn lone_node(pods: Vec<PodFacts>) -> (Vec<Node>, Vec<NodeFacts>) {
        group_nodes(vec![pods])
    }

    fn cpu_pod(name: &str, cpu_millis: i64) -> PodFacts {
        let mut p = pod(name);
        p.requests.cpu_millis = cpu_millis;
        p
    }

    #[test]
    fn pods_planned_onto_a_node_move_again_if_it_goes_too() {
        // n0 (10%) goes first, its pod planned onto n1 or n2; n2 (75%) stays
        // with 500m free, too little for n1's 400m and n0's 200m: whichever
        // way n0's pod went, n1 cannot go as well.
        let (nodes, facts) = group_nodes(vec![
            vec![cpu_pod("a", 200)],
            vec![cpu_pod("b", 400)],
            vec![cpu_pod("c", 1500)],
        ]);
        let mut groups = one_node_group();
        groups[0].target = 3;
        let found = find_unneeded(&nodes, &facts, &groups, &Config::default());
        assert_eq!(
            found.unneeded.iter().map(|u| u.node).collect::<Vec<_>>(),
            vec![0],
            "{found:?}"
        );
        assert!(found.kept[&1].contains("nowhere to go"), "{found:?}");
    }

    #[test]
    fn skipped_pods_are_not_moved() {
        // Mirror and long-terminating pods neither block nor need room: the
        // node, alone, is empty.
        let mut mirror = pod("static");
        mirror.mirror = true;
        mirror.controller = None;
        let mut gone = pod("gone");
        gone.long_terminating = true;
        let (nodes, facts) = lone_node(vec![mirror, gone]);
        let found = find_unneeded(&nodes, &facts, &one_node_group(), &Config::default());
        assert_eq!(found.unneeded.len(), 1, "{found:?}");
        assert!(found.unneeded[0].empty);
        // A pod to move, and nowhere to go: kept.
        let (nodes, facts) = lone_node(vec![pod("web")]);
        let found = find_unneeded(&nodes, &facts, &one_node_group(), &Config::default());
        assert!(found.kept[&0].contains("nowhere to go"), "{found:?}");
    }

    #[test]
    fn daemonset_pods_count_on_an_otherwise_empty_node() {
        // Upstream has no shortcut for empty nodes: daemonset requests above
        // the threshold keep the node unless they are ignored.
        let mut ds = pod("ds");
        ds.daemon = true;
        ds.requests.cpu_millis = 1200;
        let (nodes, facts) = lone_node(vec![ds]);
        let found = find_unneeded(&nodes, &facts, &one_node_group(), &Config::default());
        assert!(found.kept[&0].contains("not underutilized"), "{found:?}");
        let ignore = Config {
            ignore_daemonsets_utilization: true,
            ..Config::default()
        };
        let found = find_unneeded(&nodes, &facts, &one_node_group(), &ignore);
        assert!(
            found.unneeded.len() == 1 && found.unneeded[0].empty,
            "{found:?}"
        );
    }
}
