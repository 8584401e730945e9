//! Karpenter's words, in one place: the labels, annotations, taints and
//! finalizer it puts on objects, its condition types, Event reasons and
//! the log lines users grep for (the seed's `Created node with 3 pods
//! requesting ...`, `Added TTL to empty node`...). Metric names are in
//! `metrics.rs`. Change one of these only to follow upstream.

use crate::cloud::Launched;

/// The finalizer held on NodeClaims until their instance is gone.
pub const FINALIZER: &str = "karpenter.sh/termination";
/// When a node became empty (the empty-node TTL counts from it).
pub const EMPTINESS: &str = "karpenter.sh/emptiness-timestamp";
/// The taint a node being terminated gets.
pub const DISRUPTED_TAINT: &str = "karpenter.sh/disrupted";
/// Which API a claim's pool came from (`nodepool` or `provisioner`);
/// Outrigger's own, kept off the node.
pub const POOL_KIND: &str = "karpenter.sh/nodepool-kind";

/// On a pod: it keeps its node (`"true"`, or a duration since it
/// started); on a Node or NodeClaim: the node is not disrupted.
pub const DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";
/// When a deleting claim's `terminationGracePeriod` runs out (RFC 3339),
/// written at the start of its termination.
pub const TERMINATION_TIMESTAMP: &str = "karpenter.sh/nodeclaim-termination-timestamp";
/// On a claim: the hash of its pool's template when it was created, and
/// the hash's version (drift compares them with the pool's now).
pub const NODEPOOL_HASH: &str = "karpenter.sh/nodepool-hash";
pub const NODEPOOL_HASH_VERSION: &str = "karpenter.sh/nodepool-hash-version";
/// Outrigger's own, on a NodePool (or Provisioner): the least a
/// consolidation must save, `"0.05"` ($/h) or `"20%"` of the price of the
/// nodes it removes. Off by default (Karpenter's behaviour).
pub const MIN_SAVINGS: &str = "outrigger.dev/consolidation-min-savings";

/// Node labels Karpenter's lifecycle writes: the node registered with its
/// claim, the node initialized (Ready, its startup and ephemeral taints
/// gone).
pub const REGISTERED_LABEL: &str = "karpenter.sh/registered";
pub const INITIALIZED_LABEL: &str = "karpenter.sh/initialized";

/// Taints a node carries only until it is ready (Karpenter's
/// `KnownEphemeralTaints` and its unregistered taint), as (key, effect).
pub const EPHEMERAL_TAINTS: [(&str, &str); 4] = [
    ("node.kubernetes.io/not-ready", "NoSchedule"),
    ("node.kubernetes.io/unreachable", "NoSchedule"),
    (
        "node.cloudprovider.kubernetes.io/uninitialized",
        "NoSchedule",
    ),
    ("karpenter.sh/unregistered", "NoExecute"),
];

/// NodeClaim condition types.
pub const LAUNCHED: &str = "Launched";
pub const REGISTERED: &str = "Registered";
pub const INITIALIZED: &str = "Initialized";
pub const READY: &str = "Ready";
pub const CONSOLIDATABLE: &str = "Consolidatable";
pub const DRIFTED: &str = "Drifted";
pub const EXPIRED: &str = "Expired";
/// Set on the candidates of a disruption command, its reason the
/// method's (`Underutilized`, `Empty`, `Drifted`).
pub const DISRUPTION_REASON: &str = "DisruptionReason";

/// Event reasons.
pub const NOMINATED: &str = "Nominated";
pub const FAILED_SCHEDULING: &str = "FailedScheduling";
pub const LAUNCH_FAILED: &str = "LaunchFailed";
pub const VALIDATION_FAILED: &str = "ValidationFailed";
pub const LIMIT_REACHED: &str = "LimitReached";
pub const DISRUPTION_BLOCKED: &str = "DisruptionBlocked";
pub const UNCONSOLIDATABLE: &str = "Unconsolidatable";
pub const DISRUPTION_LAUNCHING: &str = "DisruptionLaunching";
pub const DISRUPTION_WAITING_READINESS: &str = "DisruptionWaitingReadiness";
pub const DISRUPTION_TERMINATING: &str = "DisruptionTerminating";
/// A pod deleted for its node's `terminationGracePeriod` (on the pod).
pub const DISRUPTED: &str = "Disrupted";
/// A draining node with a deadline (on the node).
pub const TGP_EXPIRING: &str = "TerminationGracePeriodExpiring";

/// Log lines.
pub const WAITING_FOR_PODS: &str = "Waiting for unschedulable pods";
pub const ADDED_TTL: &str = "Added TTL to empty node";
pub const REMOVED_TTL: &str = "Removed emptiness TTL from node";
pub const CORDONED: &str = "Cordoned node";
pub const DELETED_NODE: &str = "Deleted node";
pub const FOUND_PODS: &str = "found provisionable pod(s)";
pub const COMPUTED_CLAIMS: &str = "computed new nodeclaim(s) to fit pod(s)";
pub const GC_CLAIM: &str = "garbage collecting nodeclaim with no cloudprovider representation";
pub const EXPIRED_CLAIM: &str = "deleting expired nodeclaim";
pub const MARKED_CONSOLIDATABLE: &str = "marking consolidatable";
pub const REMOVED_CONSOLIDATABLE: &str = "removing consolidatable status condition";
pub const ABANDONED: &str = "abandoning disruption attempt, command is no longer valid";

/// `Launched instance: i-0de2575ffe2589d78, hostname: ip-172-31-101-124...,
/// type: m6i.xlarge, zone: ap-southeast-1a, capacityType: spot`.
pub fn launched_instance(l: &Launched) -> String {
    format!(
        "Launched instance: {}, hostname: {}, type: {}, zone: {}, capacityType: {}",
        l.instance_id, l.node_name, l.instance_type, l.zone, l.capacity_type
    )
}

/// `Triggering termination after 30s for empty node`.
pub fn triggering_termination(ttl_seconds: u64) -> String {
    format!("Triggering termination after {ttl_seconds}s for empty node")
}

/// `Created node with 3 pods requesting {...} from types m6i.xlarge`, from
/// the solver's claim line.
pub fn created(claim_line: &str) -> String {
    format!("Created {claim_line}")
}

/// A Nominated Event's note.
pub fn nominated(claim: &str) -> String {
    format!("Pod should schedule on: nodeclaim/{claim}")
}

/// A FailedScheduling Event's note.
pub fn failed_to_schedule(reason: &str) -> String {
    format!("Failed to schedule pod, {reason}")
}

/// `disrupting nodeclaim(s) via replace, terminating 1 nodes (3 pods)
/// ip-10-0-1-2/m5.2xlarge/on-demand and replacing with spot node from
/// types m5.large, c5.large and 13 other(s)`.
pub fn disrupting(
    decision: &str,
    nodes: &[(String, String, String)],
    pods: usize,
    replacement: Option<(&str, &[String])>,
) -> String {
    let list: Vec<String> = nodes
        .iter()
        .map(|(n, t, ct)| format!("{n}/{t}/{ct}"))
        .collect();
    let mut s = format!(
        "disrupting nodeclaim(s) via {decision}, terminating {} nodes ({pods} pods) {}",
        nodes.len(),
        list.join(", ")
    );
    if let Some((ct, types)) = replacement {
        s.push_str(&format!(
            " and replacing with {ct} node from types {}",
            type_list(types)
        ));
    }
    s
}

/// At most five names, then `and N other(s)`, as Karpenter lists types.
pub fn type_list(types: &[String]) -> String {
    if types.len() <= 5 {
        return types.join(", ");
    }
    format!("{} and {} other(s)", types[..5].join(", "), types.len() - 5)
}
