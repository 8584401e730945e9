//! The provisioner's metrics, under Karpenter's names.

use prometheus_client::metrics::{
    counter::Counter,
    family::Family,
    gauge::Gauge,
    histogram::{Histogram, exponential_buckets},
};

type Labels = Vec<(String, String)>;

#[derive(Clone)]
pub struct Metrics {
    pub pending_pods: Gauge,
    pub created: Family<Labels, Counter>,
    pub launched: Family<Labels, Counter>,
    pub terminated: Family<Labels, Counter>,
    pub solve_seconds: Histogram,
    pub batch_seconds: Histogram,
    /// Disruption (Karpenter's `karpenter_voluntary_disruption_*`).
    pub disruption_decisions: Family<Labels, Counter>,
    pub disruption_eligible: Family<Labels, Gauge>,
    pub disruption_seconds: Histogram,
    pub disruption_rejected: Family<Labels, Counter>,
    pub disrupted: Family<Labels, Counter>,
    pub allowed_disruptions: Family<Labels, Gauge>,
    /// Interruption (Karpenter's `karpenter_interruption_*`).
    pub interruption_received: Family<Labels, Counter>,
    pub interruption_deleted: Counter,
    pub interruption_latency: Histogram,
}

impl Metrics {
    pub fn register(admin: &outrigger_runtime::admin::AdminState) -> Self {
        let m = Metrics {
            pending_pods: Gauge::default(),
            created: Family::default(),
            launched: Family::default(),
            terminated: Family::default(),
            solve_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            batch_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            disruption_decisions: Family::default(),
            disruption_eligible: Family::default(),
            disruption_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            disruption_rejected: Family::default(),
            disrupted: Family::default(),
            allowed_disruptions: Family::default(),
            interruption_received: Family::default(),
            interruption_deleted: Counter::default(),
            // Karpenter's DurationBuckets.
            interruption_latency: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6,
                0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0,
                8.0, 9.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 120.0, 150.0, 300.0,
                450.0, 600.0,
            ]),
        };
        admin.with_registry(|r| {
            r.register_collector(Box::new(outrigger_aws::AllCalls));
            r.register(
                "karpenter_provisioner_unschedulable_pods",
                "Pods kube-scheduler marked unschedulable at the last batch",
                m.pending_pods.clone(),
            );
            r.register(
                "karpenter_nodeclaims_created",
                "NodeClaims created, by nodepool and reason",
                m.created.clone(),
            );
            r.register(
                "karpenter_nodeclaims_launched",
                "NodeClaims launched by the provider, by nodepool",
                m.launched.clone(),
            );
            r.register(
                "karpenter_nodeclaims_terminated",
                "NodeClaims terminated, by nodepool and reason",
                m.terminated.clone(),
            );
            r.register(
                "karpenter_provisioner_scheduling_duration_seconds",
                "Time to solve one batch of pending pods",
                m.solve_seconds.clone(),
            );
            r.register(
                "outrigger_provisioner_batch_to_nodeclaims_seconds",
                "From a batch window closing to every NodeClaim of its plan created (snapshot, solve, creates)",
                m.batch_seconds.clone(),
            );
            r.register(
                "karpenter_voluntary_disruption_decisions",
                "Disruption decisions, by decision, reason and consolidation type",
                m.disruption_decisions.clone(),
            );
            r.register(
                "karpenter_voluntary_disruption_eligible_nodes",
                "Nodes that may be disrupted at the last pass, by reason",
                m.disruption_eligible.clone(),
            );
            r.register(
                "karpenter_voluntary_disruption_decision_evaluation_duration_seconds",
                "Time to find a disruption decision (one pass)",
                m.disruption_seconds.clone(),
            );
            r.register(
                "outrigger_disruption_commands_abandoned",
                "Disruption commands dropped at validation, by reason",
                m.disruption_rejected.clone(),
            );
            r.register(
                "karpenter_nodeclaims_disrupted",
                "NodeClaims disrupted, by reason, nodepool and capacity type",
                m.disrupted.clone(),
            );
            r.register(
                "karpenter_nodepools_allowed_disruptions",
                "Disruptions a pool's budgets allow now, by nodepool and reason",
                m.allowed_disruptions.clone(),
            );
            r.register(
                "karpenter_interruption_received_messages",
                "Count of messages received from the SQS queue. Broken down by message type and whether the message was actionable.",
                m.interruption_received.clone(),
            );
            r.register(
                "karpenter_interruption_deleted_messages",
                "Count of messages deleted from the SQS queue.",
                m.interruption_deleted.clone(),
            );
            r.register(
                "karpenter_interruption_message_queue_duration_seconds",
                "Amount of time an interruption message is on the queue before it is processed by karpenter.",
                m.interruption_latency.clone(),
            );
        });
        m
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
