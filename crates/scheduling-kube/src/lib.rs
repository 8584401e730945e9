//! From core objects (Pod, Node, DaemonSet) to the scheduling model, and
//! the model's resources back to Kubernetes quantities: the one adapter the
//! provisioner, the node-group autoscaler and `why-pending` share.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::DaemonSet,
        core::v1::{
            Container, Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodAffinityTerm,
            PodSpec,
        },
    },
    apimachinery::pkg::apis::meta::v1::LabelSelector,
};
use outrigger_scheduling::{
    model::{self, HostPort, SelectorExpr, SelectorOp, TaintEffect, Toleration, TopologySpread},
    requirements::{Operator, Requirement, Requirements},
    resources::Resources,
};

/// A pod's name for messages.
pub fn key(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or("default"),
        p.metadata.name.as_deref().unwrap_or("")
    )
}

/// True for a pod a DaemonSet owns.
pub fn is_daemon(p: &Pod) -> bool {
    p.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet")
}

/// A pod kube-scheduler could not place: pending, unbound, marked
/// Unschedulable, not being deleted, not a daemonset's.
pub fn is_provisionable(p: &Pod) -> bool {
    let status = p.status.as_ref();
    p.metadata.deletion_timestamp.is_none()
        && p.spec.as_ref().is_some_and(|s| s.node_name.is_none())
        && status.and_then(|s| s.phase.as_deref()) == Some("Pending")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("Unschedulable")
                })
            })
        && !is_daemon(p)
}

fn owned_by(p: &Pod, kind: &str) -> bool {
    p.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == kind)
}

/// A static pod (the kubelet's mirror of a manifest file).
pub fn is_static(p: &Pod) -> bool {
    owned_by(p, "Node")
        || p.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
}

/// A pod of a node being deleted that will need a place elsewhere
/// (Karpenter's `IsReschedulable`): not finished and not being deleted (a
/// StatefulSet's pod even then, its successor waits for it to go), not a
/// DaemonSet's, not a static pod.
pub fn is_reschedulable(p: &Pod) -> bool {
    let terminating = p.metadata.deletion_timestamp.is_some();
    is_active(p) && (!terminating || owned_by(p, "StatefulSet")) && !is_daemon(p) && !is_static(p)
}

/// A pod that holds a node's resources: bound and not finished.
pub fn is_active(p: &Pod) -> bool {
    !matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

fn container_requests(c: &Container) -> Result<Resources, String> {
    let Some(req) = c.resources.as_ref().and_then(|r| r.requests.as_ref()) else {
        return Ok(Resources::default());
    };
    Resources::parse(req.iter().map(|(k, v)| (k.as_str(), v.0.as_str())))
        .map_err(|e| format!("container {}: {e}", c.name))
}

/// The requests kube-scheduler counts: containers and sidecars, or the
/// largest init container (with the sidecars started before it), whichever
/// is larger, plus the pod overhead; and one pod.
pub fn effective_requests(spec: &PodSpec) -> Result<Resources, String> {
    let mut regular = Resources::default();
    for c in &spec.containers {
        regular.add(&container_requests(c)?);
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c)?;
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
        } else {
            let mut with = sidecars.clone();
            with.add(&r);
            init_peak = init_peak.max(&with);
        }
    }
    regular.add(&sidecars);
    let mut out = regular.max(&init_peak);
    if let Some(o) = &spec.overhead {
        out.add(
            &Resources::parse(o.iter().map(|(k, v)| (k.as_str(), v.0.as_str())))
                .map_err(|e| format!("overhead: {e}"))?,
        );
    }
    out.pods = 1;
    Ok(out)
}

fn requirement(r: &NodeSelectorRequirement) -> Result<Requirement, String> {
    let op = Operator::parse(&r.operator)
        .ok_or_else(|| format!("{}: unknown operator {:?}", r.key, r.operator))?;
    let values: Vec<&str> = r.values.iter().flatten().map(String::as_str).collect();
    Requirement::new(&r.key, op, &values).map_err(|e| e.to_string())
}

/// A nodeSelectorTerm; `None` when it uses matchFields (a node name,
/// which a new node cannot have).
fn term(t: &NodeSelectorTerm) -> Result<Option<Requirements>, String> {
    if t.match_fields.as_ref().is_some_and(|f| !f.is_empty()) {
        return Ok(None);
    }
    let mut out = Requirements::default();
    for r in t.match_expressions.iter().flatten() {
        out.add(&r.key, requirement(r)?);
    }
    Ok(Some(out))
}

fn selector(s: Option<&LabelSelector>) -> Result<model::LabelSelector, String> {
    let Some(s) = s else {
        // A nil selector matches nothing; model that with a key no pod has.
        return Ok(model::LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![SelectorExpr {
                key: "outrigger.dev/nil-selector".into(),
                op: SelectorOp::Exists,
                values: vec![],
            }],
        });
    };
    model::LabelSelector::try_from(s)
}

fn affinity_term(t: &PodAffinityTerm) -> Result<model::PodAffinityTerm, String> {
    Ok(model::PodAffinityTerm {
        selector: selector(t.label_selector.as_ref())?,
        namespaces: t.namespaces.clone().unwrap_or_default(),
        topology_key: t.topology_key.clone(),
    })
}

/// A pod already bound to a node, as that node's load: what it requests,
/// its labels and ports count; how it chose the node does not (a
/// daemonset's pod names its node through matchFields, which `pod` refuses
/// for a pod still to place).
pub fn bound_pod(p: &Pod) -> Result<model::Pod, String> {
    match pod(p) {
        Ok(m) => Ok(m),
        Err(_) => {
            let mut p = p.clone();
            if let Some(a) = p.spec.as_mut().and_then(|s| s.affinity.as_mut()) {
                a.node_affinity = None;
            }
            pod(&p)
        }
    }
}

/// Everything the solver needs of a pod. `Err` says what it could not
/// read (the pod is then reported, not guessed at).
pub fn pod(p: &Pod) -> Result<model::Pod, String> {
    let spec = p.spec.as_ref().ok_or("no spec")?;
    let mut out = model::Pod::new(
        p.metadata.namespace.as_deref().unwrap_or("default"),
        p.metadata.name.as_deref().unwrap_or(""),
        effective_requests(spec)?,
    );
    out.labels = p.metadata.labels.clone().unwrap_or_default();
    out.node_selector = spec.node_selector.clone().unwrap_or_default();
    out.daemon = is_daemon(p);
    if let Some(na) = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
    {
        if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
            let mut any = false;
            for t in &req.node_selector_terms {
                any = true;
                if let Some(r) = term(t)? {
                    out.required_terms.push(r);
                }
            }
            if any && out.required_terms.is_empty() {
                return Err("its node affinity selects nodes by name (matchFields)".into());
            }
        }
        for w in na
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
        {
            if let Some(r) = term(&w.preference)? {
                out.preferred_terms.push((w.weight, r));
            }
        }
    }
    if let Some(pa) = spec.affinity.as_ref().and_then(|a| a.pod_affinity.as_ref()) {
        for t in pa
            .required_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
        {
            out.affinity.push(affinity_term(t)?);
        }
        for w in pa
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
        {
            out.preferred_affinity
                .push((w.weight, affinity_term(&w.pod_affinity_term)?));
        }
    }
    if let Some(pa) = spec
        .affinity
        .as_ref()
        .and_then(|a| a.pod_anti_affinity.as_ref())
    {
        for t in pa
            .required_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
        {
            out.anti_affinity.push(affinity_term(t)?);
        }
        for w in pa
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
        {
            out.preferred_anti_affinity
                .push((w.weight, affinity_term(&w.pod_affinity_term)?));
        }
    }
    for t in spec.tolerations.iter().flatten() {
        out.tolerations.push(Toleration {
            key: t.key.clone().filter(|k| !k.is_empty()),
            exists: t.operator.as_deref() == Some("Exists"),
            value: t.value.clone().unwrap_or_default(),
            effect: t.effect.as_deref().and_then(TaintEffect::parse),
        });
    }
    for s in spec.topology_spread_constraints.iter().flatten() {
        out.spread.push(TopologySpread {
            max_skew: u32::try_from(s.max_skew).unwrap_or(1).max(1),
            topology_key: s.topology_key.clone(),
            required: s.when_unsatisfiable != "ScheduleAnyway",
            selector: selector(s.label_selector.as_ref())?,
        });
    }
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        for port in c.ports.iter().flatten() {
            if let Some(hp) = port.host_port.filter(|p| *p > 0) {
                out.host_ports.push(HostPort {
                    port: u16::try_from(hp).unwrap_or(0),
                    protocol: port.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    ip: port.host_ip.clone().unwrap_or_default(),
                });
            }
        }
    }
    Ok(out)
}

/// A DaemonSet's pod template as the pod each new node would run.
pub fn daemonset_pod(ds: &DaemonSet) -> Result<model::Pod, String> {
    let tmpl = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .ok_or("no spec")?;
    let p = Pod {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: ds.metadata.name.clone(),
            namespace: ds.metadata.namespace.clone(),
            labels: tmpl.metadata.as_ref().and_then(|m| m.labels.clone()),
            ..Default::default()
        },
        spec: tmpl.spec,
        status: None,
    };
    let mut m = pod(&p)?;
    m.daemon = true;
    Ok(m)
}

/// A node as the solver sees it, with the pods bound to it.
pub fn node(n: &Node, pods: Vec<model::Pod>) -> model::Node {
    let alloc = n
        .status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .map(|a| {
            Resources::parse(a.iter().map(|(k, v)| (k.as_str(), v.0.as_str()))).unwrap_or_default()
        })
        .unwrap_or_default();
    let taints = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| {
            ts.iter()
                .filter_map(|t| {
                    Some(model::Taint {
                        key: t.key.clone(),
                        value: t.value.clone().unwrap_or_default(),
                        effect: TaintEffect::parse(&t.effect)?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let unschedulable = n
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let mut taints: Vec<model::Taint> = taints;
    if unschedulable {
        // A cordoned node takes no new pods.
        taints.push(model::Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            value: String::new(),
            effect: TaintEffect::NoSchedule,
        });
    }
    let labels = n.metadata.labels.clone().unwrap_or_default();
    model::Node {
        name: n.metadata.name.clone().unwrap_or_default(),
        pool: labels
            .get(model::LABEL_NODEPOOL)
            .or_else(|| labels.get(model::LABEL_PROVISIONER))
            .cloned(),
        labels,
        taints,
        allocatable: alloc,
        pods,
        in_flight: false,
        price: None,
        do_not_disrupt: false,
    }
}

/// Resources as a Kubernetes resource map, each in its canonical form
/// (`3920m`, `14162Mi`, `58`); zero entries kept.
pub fn to_quantities(
    r: &Resources,
) -> BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity> {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use outrigger_values::format_resource;
    let mut m = BTreeMap::new();
    for (k, v) in [
        ("cpu", r.cpu_millis),
        ("memory", r.memory_bytes),
        ("pods", r.pods),
        ("ephemeral-storage", r.ephemeral_bytes),
    ] {
        m.insert(k.to_string(), Quantity(format_resource(k, v)));
    }
    for (k, v) in &r.extended {
        m.insert(k.clone(), Quantity(format_resource(k, *v)));
    }
    m
}

/// The PodDisruptionBudgets of the pod's namespace whose selector selects
/// it (a budget without a selector selects nothing).
pub fn matching_pdbs<'a>(
    p: &Pod,
    pdbs: &'a [std::sync::Arc<k8s_openapi::api::policy::v1::PodDisruptionBudget>],
) -> Vec<&'a std::sync::Arc<k8s_openapi::api::policy::v1::PodDisruptionBudget>> {
    if pdbs.is_empty() {
        return vec![];
    }
    let ns = p.metadata.namespace.as_deref().unwrap_or_default();
    let empty = Default::default();
    let labels = p.metadata.labels.as_ref().unwrap_or(&empty);
    pdbs.iter()
        .filter(|b| b.metadata.namespace.as_deref() == Some(ns))
        .filter(|b| {
            b.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|sel| outrigger_values::selector::selects(sel, labels))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_json(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn requests_follow_kube_scheduler() {
        let p = pod_json(serde_json::json!({
            "metadata": {"name": "a", "namespace": "ns"},
            "spec": {
                "initContainers": [
                    {"name": "init", "resources": {"requests": {"cpu": "2"}}},
                    {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}}
                ],
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "250m"}}}
                ],
                "overhead": {"cpu": "10m"}
            }
        }));
        let r = effective_requests(p.spec.as_ref().unwrap()).unwrap();
        // max(750m + 100m sidecar, 2 init) + 10m overhead.
        assert_eq!(r.cpu_millis, 2010);
        assert_eq!(r.memory_bytes, 1 << 30);
        assert_eq!(r.pods, 1);
    }

    #[test]
    fn constraints_are_read() {
        let p = pod_json(serde_json::json!({
            "metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {
                "nodeSelector": {"karpenter.sh/capacity-type": "spot"},
                "affinity": {
                    "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}]}
                    ]}},
                    "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}
                    ]}
                },
                "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "web"}}}],
                "containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}]}]
            }
        }));
        let m = pod(&p).unwrap();
        assert_eq!(m.node_selector["karpenter.sh/capacity-type"], "spot");
        assert_eq!(m.required_terms.len(), 1);
        assert_eq!(m.anti_affinity[0].topology_key, "kubernetes.io/hostname");
        assert!(m.tolerations[0].exists);
        assert!(!m.spread[0].required);
        assert_eq!(m.host_ports[0].port, 8080);
        let bad = pod_json(serde_json::json!({
            "metadata": {"name": "b"},
            "spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "lots"}}}]}
        }));
        assert!(pod(&bad).unwrap_err().contains("container a"));
    }

    #[test]
    fn a_bound_daemonset_pod_is_load() {
        let p = pod_json(serde_json::json!({
            "metadata": {"name": "kube-proxy-x", "namespace": "kube-system",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "kube-proxy", "uid": "u", "controller": true}]},
            "spec": {
                "nodeName": "n1",
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
                ]}}},
                "containers": [{"name": "kube-proxy", "resources": {"requests": {"cpu": "100m"}}}]
            }
        }));
        // Not placeable as a new pod (a node name), but the node's load.
        assert!(pod(&p).is_err());
        let m = bound_pod(&p).unwrap();
        assert_eq!(m.requests.cpu_millis, 100);
        assert_eq!(m.requests.pods, 1);
    }

    #[test]
    fn resources_become_canonical_quantities() {
        let r = Resources::parse([
            ("cpu", "3920m"),
            ("memory", "14162Mi"),
            ("pods", "58"),
            ("ephemeral-storage", "1Ti"),
            ("nvidia.com/gpu", "1"),
        ])
        .unwrap();
        let q = to_quantities(&r);
        let got: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.0.as_str())).collect();
        assert_eq!(
            got,
            [
                ("cpu", "3920m"),
                ("ephemeral-storage", "1Ti"),
                ("memory", "14162Mi"),
                ("nvidia.com/gpu", "1"),
                ("pods", "58"),
            ]
        );
        // And back.
        let back = Resources::parse(q.iter().map(|(k, v)| (k.as_str(), v.0.as_str()))).unwrap();
        assert_eq!(back, r);
    }
}
