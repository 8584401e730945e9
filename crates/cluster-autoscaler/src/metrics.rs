//! Cluster Autoscaler's metrics, under its names (`cluster_autoscaler_*`).

use prometheus_client::metrics::{
    counter::Counter,
    family::Family,
    gauge::Gauge,
    histogram::{Histogram, exponential_buckets},
};

type Labels = Vec<(String, String)>;

#[derive(Clone)]
pub struct Metrics {
    pub safe_to_autoscale: Gauge,
    pub nodes_count: Family<Labels, Gauge>,
    pub node_groups_count: Family<Labels, Gauge>,
    pub unschedulable_pods: Gauge,
    pub scaled_up_nodes: Counter,
    pub scaled_down_nodes: Family<Labels, Counter>,
    pub failed_scale_ups: Family<Labels, Counter>,
    pub evicted_pods: Counter,
    pub unneeded_nodes: Gauge,
    pub errors: Family<Labels, Counter>,
    pub last_activity: Family<Labels, Gauge>,
    pub function_duration: Family<Labels, Histogram>,
}

fn histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 18))
}

impl Metrics {
    pub fn register(admin: &outrigger_runtime::admin::AdminState) -> Self {
        let m = Metrics {
            safe_to_autoscale: Gauge::default(),
            nodes_count: Family::default(),
            node_groups_count: Family::default(),
            unschedulable_pods: Gauge::default(),
            scaled_up_nodes: Counter::default(),
            scaled_down_nodes: Family::default(),
            failed_scale_ups: Family::default(),
            evicted_pods: Counter::default(),
            unneeded_nodes: Gauge::default(),
            errors: Family::default(),
            last_activity: Family::default(),
            function_duration: Family::new_with_constructor(histogram),
        };
        admin.with_registry(|r| {
            r.register_collector(Box::new(outrigger_aws::AllCalls));
            let r = r.sub_registry_with_prefix("cluster_autoscaler");
            r.register(
                "cluster_safe_to_autoscale",
                "Whether or not cluster is healthy enough for autoscaling. 1 if it is, 0 otherwise.",
                m.safe_to_autoscale.clone(),
            );
            r.register(
                "nodes_count",
                "Number of nodes in cluster.",
                m.nodes_count.clone(),
            );
            r.register(
                "node_groups_count",
                "Number of node groups managed by CA.",
                m.node_groups_count.clone(),
            );
            r.register(
                "unschedulable_pods_count",
                "Number of unschedulable pods in the cluster.",
                m.unschedulable_pods.clone(),
            );
            r.register(
                "scaled_up_nodes",
                "Number of nodes added by CA.",
                m.scaled_up_nodes.clone(),
            );
            r.register(
                "scaled_down_nodes",
                "Number of nodes removed by CA.",
                m.scaled_down_nodes.clone(),
            );
            r.register(
                "failed_scale_ups",
                "Number of times scale-up operation has failed.",
                m.failed_scale_ups.clone(),
            );
            r.register(
                "evicted_pods",
                "Number of pods evicted by CA",
                m.evicted_pods.clone(),
            );
            r.register(
                "unneeded_nodes_count",
                "Number of nodes currently considered unneeded by CA.",
                m.unneeded_nodes.clone(),
            );
            r.register(
                "errors",
                "The number of CA loops failed due to an error.",
                m.errors.clone(),
            );
            r.register(
                "last_activity",
                "Last time certain part of CA logic executed.",
                m.last_activity.clone(),
            );
            r.register(
                "function_duration_seconds",
                "Time taken by various parts of CA main loop.",
                m.function_duration.clone(),
            );
        });
        m
    }

    pub fn observe(&self, function: &str, seconds: f64) {
        self.function_duration
            .get_or_create(&vec![("function".to_string(), function.to_string())])
            .observe(seconds);
        self.last_activity
            .get_or_create(&vec![("activity".to_string(), function.to_string())])
            .set(jiff::Timestamp::now().as_second());
    }
}
