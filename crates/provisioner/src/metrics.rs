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
        };
        admin.with_registry(|r| {
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
