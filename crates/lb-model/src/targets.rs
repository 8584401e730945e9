//! The targets behind a target group: pod IPs from EndpointSlices (ip) or
//! node instance IDs on the NodePort (instance). Sorted, without
//! duplicates, so two calls on the same objects give the same list.

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::model::{IpAddressType, Target, TargetGroup};

/// The label EndpointSlices carry with their Service's name.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Nodes with this label never take load balancer traffic.
pub const LABEL_EXCLUDE_FROM_LB: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// The older label of the same meaning.
pub const LABEL_EXCLUDE_BALANCER_ALPHA: &str =
    "alpha.service-controller.kubernetes.io/exclude-balancer";
/// Fargate nodes cannot be instance targets.
pub const LABEL_COMPUTE_TYPE: &str = "eks.amazonaws.com/compute-type";
/// Cluster Autoscaler's taint on a node it is about to remove.
pub const TAINT_TO_BE_DELETED_CA: &str = "ToBeDeletedByClusterAutoscaler";
/// Karpenter's taint on a node it is about to remove.
pub const TAINT_DISRUPTED_KARPENTER: &str = "karpenter.sh/disrupted";

/// The ready endpoints of the group's Service port: slices labelled with
/// the Service's name in its namespace, of the group's address family,
/// the slice port whose name is the Service port's name (empty for an
/// unnamed port), endpoints whose `ready` condition is not false.
pub fn ip_targets(tg: &TargetGroup, slices: &[EndpointSlice]) -> Vec<Target> {
    let b = &tg.backend;
    let family = match tg.ip_address_type {
        IpAddressType::Ipv6 => "IPv6",
        _ => "IPv4",
    };
    let want_port = b.port_name.as_deref().unwrap_or_default();
    let mut out = vec![];
    for slice in slices {
        let m = &slice.metadata;
        if m.namespace.as_deref().unwrap_or("default") != b.namespace
            || m.labels.as_ref().and_then(|l| l.get(LABEL_SERVICE_NAME)) != Some(&b.service)
            || slice.address_type != family
        {
            continue;
        }
        let Some(port) = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or_default() == want_port)
            .and_then(|p| p.port)
        else {
            continue;
        };
        for ep in &slice.endpoints {
            let ready = ep.conditions.as_ref().and_then(|c| c.ready) != Some(false);
            if !ready {
                continue;
            }
            out.extend(ep.addresses.iter().map(|ip| Target {
                id: ip.clone(),
                port,
            }));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The instance ID in a node's providerID (`aws:///zone/i-0123...`): its
/// last path segment.
pub fn instance_id(node: &Node) -> Option<&str> {
    let pid = node.spec.as_ref()?.provider_id.as_deref()?;
    pid.rsplit('/').next().filter(|s| !s.is_empty())
}

/// Whether a node may take the group's traffic: not being deleted, not
/// about to be removed by Cluster Autoscaler or Karpenter, not excluded
/// by label, not Fargate, and carrying the group's node labels.
pub fn node_is_target(tg: &TargetGroup, node: &Node) -> bool {
    if node.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if labels.contains_key(LABEL_EXCLUDE_FROM_LB)
        || labels.contains_key(LABEL_EXCLUDE_BALANCER_ALPHA)
        || labels.get(LABEL_COMPUTE_TYPE).map(String::as_str) == Some("fargate")
    {
        return false;
    }
    let leaving = node
        .spec
        .iter()
        .flat_map(|s| s.taints.iter().flatten())
        .any(|t| {
            t.key == TAINT_TO_BE_DELETED_CA
                || (t.key == TAINT_DISRUPTED_KARPENTER && t.effect == "NoSchedule")
        });
    if leaving {
        return false;
    }
    tg.backend
        .node_labels
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

/// Every eligible node's instance ID on the group's NodePort (none when
/// the Service port has no NodePort).
pub fn instance_targets(tg: &TargetGroup, nodes: &[Node]) -> Vec<Target> {
    let Some(port) = tg.backend.node_port else {
        return vec![];
    };
    let mut out: Vec<Target> = nodes
        .iter()
        .filter(|n| node_is_target(tg, n))
        .filter_map(|n| instance_id(n))
        .map(|id| Target {
            id: id.to_string(),
            port,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}
