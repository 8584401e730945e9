//! The status ConfigMap's document (`kube-system/cluster-autoscaler-status`,
//! key `status`), in Cluster Autoscaler 1.34's YAML shape: the cluster's
//! health and node counts, scale-up and scale-down state, and the same per
//! node group with its target, minimum and maximum.

use std::fmt::Write as _;

/// Node counts (`nodeCounts.registered`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: i64,
    pub ready: i64,
    pub not_started: i64,
    pub unready: i64,
    /// Instances the cloud has that never registered.
    pub unregistered: i64,
}

/// One node group's status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupStatus {
    pub name: String,
    pub counts: Counts,
    pub target: i64,
    pub min: i64,
    pub max: i64,
    /// `NoActivity`, `InProgress` or `Backoff`.
    pub scale_up: &'static str,
    pub backoff_reason: Option<String>,
    /// Unneeded nodes of the group.
    pub scale_down_candidates: i64,
}

/// The whole document.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Status {
    /// RFC 3339.
    pub time: String,
    pub counts: Counts,
    /// `Healthy` or `Unhealthy` (too many unready nodes: no scaling).
    pub health: &'static str,
    pub scale_up: &'static str,
    pub scale_down_candidates: i64,
    /// When the last scale-up and scale-down happened (RFC 3339).
    pub last_scale_up: Option<String>,
    pub last_scale_down: Option<String>,
    pub groups: Vec<GroupStatus>,
}

fn counts(out: &mut String, indent: &str, c: &Counts) {
    let _ = writeln!(out, "{indent}nodeCounts:");
    let _ = writeln!(out, "{indent}  registered:");
    let _ = writeln!(out, "{indent}    total: {}", c.total);
    let _ = writeln!(out, "{indent}    ready: {}", c.ready);
    let _ = writeln!(out, "{indent}    notStarted: {}", c.not_started);
    let _ = writeln!(out, "{indent}    unready: {}", c.unready);
    let _ = writeln!(out, "{indent}  unregistered: {}", c.unregistered);
}

fn scale_down(out: &mut String, indent: &str, candidates: i64, time: &str) {
    let _ = writeln!(out, "{indent}scaleDown:");
    let status = if candidates > 0 {
        "CandidatesPresent"
    } else {
        "NoCandidates"
    };
    let _ = writeln!(out, "{indent}  status: {status}");
    if candidates > 0 {
        let _ = writeln!(out, "{indent}  candidates: {candidates}");
    }
    let _ = writeln!(out, "{indent}  lastProbeTime: \"{time}\"");
}

impl Status {
    /// The YAML upstream writes.
    pub fn to_yaml(&self) -> String {
        let t = &self.time;
        let mut out = String::new();
        let _ = writeln!(out, "time: \"{t}\"");
        let _ = writeln!(out, "autoscalerStatus: Running");
        let _ = writeln!(out, "clusterWide:");
        let _ = writeln!(out, "  health:");
        let _ = writeln!(out, "    status: {}", self.health);
        counts(&mut out, "    ", &self.counts);
        let _ = writeln!(out, "    lastProbeTime: \"{t}\"");
        let _ = writeln!(out, "  scaleUp:");
        let _ = writeln!(out, "    status: {}", self.scale_up);
        let _ = writeln!(out, "    lastProbeTime: \"{t}\"");
        if let Some(s) = &self.last_scale_up {
            let _ = writeln!(out, "    lastTransitionTime: \"{s}\"");
        }
        scale_down(&mut out, "  ", self.scale_down_candidates, t);
        if let Some(s) = &self.last_scale_down {
            let _ = writeln!(out, "    lastTransitionTime: \"{s}\"");
        }
        if self.groups.is_empty() {
            let _ = writeln!(out, "nodeGroups: []");
        } else {
            let _ = writeln!(out, "nodeGroups:");
        }
        for g in &self.groups {
            let _ = writeln!(out, "- name: {}", g.name);
            let _ = writeln!(out, "  health:");
            let healthy = g.counts.unready * 2 <= g.counts.total.max(1);
            let _ = writeln!(
                out,
                "    status: {}",
                if healthy { "Healthy" } else { "Unhealthy" }
            );
            counts(&mut out, "    ", &g.counts);
            let _ = writeln!(out, "    cloudProviderTarget: {}", g.target);
            let _ = writeln!(out, "    minSize: {}", g.min);
            let _ = writeln!(out, "    maxSize: {}", g.max);
            let _ = writeln!(out, "    lastProbeTime: \"{t}\"");
            let _ = writeln!(out, "  scaleUp:");
            let _ = writeln!(out, "    status: {}", g.scale_up);
            if let Some(r) = &g.backoff_reason {
                let _ = writeln!(out, "    backoffInfo:");
                let _ = writeln!(out, "      errorCode: {}", yaml_str(r));
            }
            let _ = writeln!(out, "    lastProbeTime: \"{t}\"");
            scale_down(&mut out, "  ", g.scale_down_candidates, t);
        }
        out
    }
}

/// A string as a YAML double-quoted scalar.
fn yaml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_has_upstreams_shape() {
        let s = Status {
            time: "2026-11-30T10:00:00Z".into(),
            counts: Counts {
                total: 5,
                ready: 5,
                ..Default::default()
            },
            health: "Healthy",
            scale_up: "InProgress",
            scale_down_candidates: 0,
            last_scale_up: Some("2026-11-30T09:59:50Z".into()),
            last_scale_down: None,
            groups: vec![GroupStatus {
                name: "eks-ng-1-demo".into(),
                counts: Counts {
                    total: 5,
                    ready: 5,
                    ..Default::default()
                },
                target: 7,
                min: 3,
                max: 10,
                scale_up: "InProgress",
                backoff_reason: None,
                scale_down_candidates: 0,
            }],
        };
        let y = s.to_yaml();
        for line in [
            "autoscalerStatus: Running",
            "clusterWide:",
            "    status: Healthy",
            "        total: 5",
            "    status: InProgress",
            "    status: NoCandidates",
            "- name: eks-ng-1-demo",
            "    cloudProviderTarget: 7",
            "    minSize: 3",
            "    maxSize: 10",
        ] {
            assert!(y.lines().any(|l| l == line), "{line:?} missing in\n{y}");
        }
    }
}
