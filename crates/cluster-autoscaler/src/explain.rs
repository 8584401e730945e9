//! `outrigger why-pending` for the node-group autoscaler: why is this pod
//! pending, in the autoscaler's own words. It reads what the running
//! autoscaler decided for the pod in its loops (its `TriggeredScaleUp` and
//! `NotTriggerScaleUp` Events, each group's reason named) and the state of
//! its node groups (the status ConfigMap: sizes, limits, backoff), next to
//! kube-scheduler's verdict; it does not guess with flags it cannot see.

use std::fmt::Write as _;

use k8s_openapi::api::{
    coordination::v1::Lease,
    core::v1::{ConfigMap, Event, Pod},
};
use kube::{Api, Client, ResourceExt, api::ListParams};
use outrigger_node_groups::upstream::{
    NOT_TRIGGER_SCALE_UP, SCALE_DOWN, STATUS_CONFIGMAP, TRIGGERED_SCALE_UP,
};

/// The answer for a pod, from its Events and the status document (the
/// `status` key of the status ConfigMap), as text for a terminal.
pub fn explain(pod: &Pod, events: &[Event], status: Option<&str>) -> String {
    let mut out = String::new();
    let key = format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any());
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
        let _ = writeln!(out, "pod {key} is {phase} on node {node}: not pending.");
        return out;
    }
    let _ = writeln!(out, "pod {key}: {phase}");
    let scheduled = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
    match scheduled {
        Some(c) if c.reason.as_deref() == Some("Unschedulable") => {
            let _ = writeln!(
                out,
                "kube-scheduler: {}",
                c.message.as_deref().unwrap_or("unschedulable")
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "kube-scheduler: has not marked it unschedulable (yet); the autoscaler only acts on pods it has"
            );
        }
    }
    // The autoscaler's decisions, newest last.
    let mut mine: Vec<&Event> = events
        .iter()
        .filter(|e| {
            matches!(
                e.reason.as_deref(),
                Some(TRIGGERED_SCALE_UP | NOT_TRIGGER_SCALE_UP | SCALE_DOWN)
            )
        })
        .collect();
    mine.sort_by_key(|e| last_seen(e));
    match mine.last() {
        None => {
            let _ = writeln!(
                out,
                "cluster-autoscaler: no decision on this pod yet. It considers pods kube-scheduler marked unschedulable, once they are older than --new-pod-scale-up-delay and if their priority is at least --expendable-pods-priority-cutoff; is it running (its Lease, its log)?"
            );
        }
        Some(e) => {
            let when = last_seen(e);
            let times = e.count.unwrap_or(1).max(1);
            let _ = writeln!(
                out,
                "cluster-autoscaler, {}{}: {}",
                if when.is_empty() {
                    "at an unknown time"
                } else {
                    &when
                },
                if times > 1 {
                    format!(" (seen {times} times)")
                } else {
                    String::new()
                },
                e.message.as_deref().unwrap_or_default()
            );
            match e.reason.as_deref() {
                Some(TRIGGERED_SCALE_UP) => {
                    let _ = writeln!(
                        out,
                        "  a scale-up was asked for it: the pod waits for the new node to register and be ready."
                    );
                }
                Some(NOT_TRIGGER_SCALE_UP) => {
                    let _ = writeln!(
                        out,
                        "  no node group can give it a node; each group's reason is above."
                    );
                }
                _ => {}
            }
        }
    }
    if let Some(groups) = status.and_then(groups_of) {
        let _ = writeln!(out, "node groups (the autoscaler's status ConfigMap):");
        out.push_str(&groups);
    } else {
        let _ = writeln!(
            out,
            "node groups: no status ConfigMap {STATUS_CONFIGMAP} (is the autoscaler running with --write-status-configmap?)"
        );
    }
    out
}

fn last_seen(e: &Event) -> String {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
        .or_else(|| {
            e.series
                .as_ref()
                .and_then(|s| s.last_observed_time.as_ref())
                .map(|t| t.0.to_string())
        })
        .unwrap_or_default()
}

/// One line per group of the status document: its size, bounds, and
/// scale-up state (with its backoff, if any).
fn groups_of(status: &str) -> Option<String> {
    let doc: serde_json::Value = serde_saphyr::from_str(status).ok()?;
    let groups = doc.get("nodeGroups")?.as_array()?;
    let mut out = String::new();
    let num = |v: &serde_json::Value, path: &[&str]| {
        let mut v = v;
        for p in path {
            v = v.get(p)?;
        }
        v.as_i64()
    };
    for g in groups {
        let name = g.get("name").and_then(|n| n.as_str()).unwrap_or("?");
        let ready = num(g, &["health", "nodeCounts", "registered", "ready"]);
        let total = num(g, &["health", "nodeCounts", "registered", "total"]);
        let target = num(g, &["health", "cloudProviderTarget"]);
        let (min, max) = (
            num(g, &["health", "minSize"]),
            num(g, &["health", "maxSize"]),
        );
        let scale_up = g
            .get("scaleUp")
            .and_then(|s| s.get("status"))
            .and_then(|s| s.as_str())
            .unwrap_or("?");
        let show = |n: Option<i64>| n.map_or("?".to_string(), |n| n.to_string());
        let _ = write!(
            out,
            "  {name}: {} of {} nodes ready, target {}, min {}, max {}, scale-up {scale_up}",
            show(ready),
            show(total),
            show(target),
            show(min),
            show(max)
        );
        if target.is_some() && target == max {
            let _ = write!(out, " (at its maximum)");
        }
        if let Some(code) = g
            .get("scaleUp")
            .and_then(|s| s.get("backoffInfo"))
            .and_then(|b| b.get("errorCode"))
            .and_then(|c| c.as_str())
        {
            let _ = write!(out, ", backing off: {code}");
        }
        out.push('\n');
    }
    Some(out)
}

/// Whether the node-group autoscaler leads now: its Lease
/// (`outrigger-cluster-autoscaler`, the runtime's default name) has a
/// holder that renewed it within the lease duration.
pub async fn leads(client: &Client, namespace: &str) -> bool {
    let Ok(Some(lease)) = Api::<Lease>::namespaced(client.clone(), namespace)
        .get_opt("outrigger-cluster-autoscaler")
        .await
    else {
        return false;
    };
    let Some(spec) = lease.spec else {
        return false;
    };
    let held = spec.holder_identity.is_some_and(|h| !h.is_empty());
    let fresh = spec.renew_time.is_some_and(|t| {
        let age = jiff::Timestamp::now().duration_since(t.0);
        age.as_secs() <= i64::from(spec.lease_duration_seconds.unwrap_or(15))
    });
    held && fresh
}

/// Reads the pod, its Events and the status ConfigMap (in `namespace`,
/// the autoscaler's), and explains.
pub async fn why_pending(
    client: Client,
    pod_namespace: &str,
    pod_name: &str,
    namespace: &str,
) -> Result<String, WhyError> {
    let pod = Api::<Pod>::namespaced(client.clone(), pod_namespace)
        .get_opt(pod_name)
        .await?
        .ok_or_else(|| WhyError::NotFound(format!("{pod_namespace}/{pod_name}")))?;
    let mut lp = ListParams::default().fields(&format!("involvedObject.name={pod_name}"));
    if let Some(uid) = pod.metadata.uid.as_deref() {
        lp = ListParams::default().fields(&format!(
            "involvedObject.name={pod_name},involvedObject.uid={uid}"
        ));
    }
    let events = Api::<Event>::namespaced(client.clone(), pod_namespace)
        .list(&lp)
        .await?
        .items;
    let status = Api::<ConfigMap>::namespaced(client, namespace)
        .get_opt(STATUS_CONFIGMAP)
        .await?
        .and_then(|c| c.data.and_then(|mut d| d.remove("status")));
    Ok(explain(&pod, &events, status.as_deref()))
}

#[derive(Debug, thiserror::Error)]
pub enum WhyError {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("pod {0} not found")]
    NotFound(String),
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::core::v1::{PodCondition, PodStatus},
        apimachinery::pkg::apis::meta::v1::Time,
    };
    use outrigger_node_groups::status::{Counts, GroupStatus, Status};

    use super::*;

    fn pending() -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some("big".into());
        p.metadata.namespace = Some("default".into());
        p.status = Some(PodStatus {
            phase: Some("Pending".into()),
            conditions: Some(vec![PodCondition {
                type_: "PodScheduled".into(),
                status: "False".into(),
                reason: Some("Unschedulable".into()),
                message: Some("0/3 nodes are available: 3 Insufficient cpu.".into()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        p
    }

    fn event(reason: &str, message: &str, at: &str) -> Event {
        Event {
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_timestamp: Some(Time(at.parse().unwrap_or_default())),
            ..Default::default()
        }
    }

    fn status(target: i64, backoff: Option<&str>) -> String {
        Status {
            time: "2026-11-30T10:00:00Z".into(),
            counts: Counts::default(),
            health: "Healthy",
            scale_up: "NoActivity",
            scale_down_candidates: 0,
            last_scale_up: None,
            last_scale_down: None,
            groups: vec![GroupStatus {
                name: "eks-ng-1-demo".into(),
                counts: Counts {
                    total: 3,
                    ready: 3,
                    ..Default::default()
                },
                target,
                min: 3,
                max: 10,
                scale_up: if backoff.is_some() {
                    "Backoff"
                } else {
                    "NoActivity"
                },
                backoff_reason: backoff.map(str::to_string),
                scale_down_candidates: 0,
            }],
        }
        .to_yaml()
    }

    #[test]
    fn the_last_decision_and_each_group_are_told() {
        let events = vec![
            event(
                TRIGGERED_SCALE_UP,
                "pod triggered scale-up: [{eks-ng-1-demo 3->4 (max: 10)}]",
                "2026-11-30T09:00:00Z",
            ),
            event(
                NOT_TRIGGER_SCALE_UP,
                "pod didn't trigger scale-up: 1 max node group size reached (eks-ng-1-demo)",
                "2026-11-30T10:00:00Z",
            ),
            event("Scheduled", "unrelated", "2026-11-30T10:01:00Z"),
        ];
        let text = explain(&pending(), &events, Some(&status(10, None)));
        assert!(text.contains("kube-scheduler: 0/3 nodes are available: 3 Insufficient cpu."));
        assert!(
            text.contains("max node group size reached (eks-ng-1-demo)"),
            "{text}"
        );
        assert!(!text.contains("3->4"), "only the latest decision: {text}");
        assert!(text.contains("no node group can give it a node"));
        assert!(
            text.contains("eks-ng-1-demo: 3 of 3 nodes ready, target 10, min 3, max 10"),
            "{text}"
        );
        assert!(text.contains("(at its maximum)"));
    }

    #[test]
    fn a_backoff_and_no_decision_yet_are_told() {
        let text = explain(
            &pending(),
            &[],
            Some(&status(4, Some("InsufficientInstanceCapacity"))),
        );
        assert!(text.contains("no decision on this pod yet"), "{text}");
        assert!(
            text.contains("backing off: InsufficientInstanceCapacity"),
            "{text}"
        );
        assert!(!text.contains("at its maximum"));
        let text = explain(&pending(), &[], None);
        assert!(text.contains("no status ConfigMap cluster-autoscaler-status"));
    }

    #[test]
    fn a_scheduled_pod_is_not_pending() {
        let mut p = pending();
        p.spec.get_or_insert_default().node_name = Some("n1".into());
        if let Some(s) = p.status.as_mut() {
            s.phase = Some("Running".into());
        }
        assert_eq!(
            explain(&p, &[], None),
            "pod default/big is Running on node n1: not pending.\n"
        );
    }
}
