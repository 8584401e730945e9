//! Cluster Autoscaler's words, in one place: the annotations, taints and
//! Auto Scaling group tags users and other tools rely on, its Event
//! reasons, ConfigMap names and log lines. Change one of these only to
//! follow upstream.

/// `"false"` keeps a pod's node; `"true"` lets a pod that would otherwise
/// block (no controller, local storage, kube-system) be moved.
pub const SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";
/// Comma-separated volumes of a pod that may be lost on scale-down.
pub const SAFE_TO_EVICT_LOCAL_VOLUMES: &str =
    "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes";
/// `"true"` on a node: never scaled down.
pub const SCALE_DOWN_DISABLED: &str = "cluster-autoscaler.kubernetes.io/scale-down-disabled";
/// A per-pod scale-up delay (a duration).
pub const POD_SCALE_UP_DELAY: &str = "cluster-autoscaler.kubernetes.io/pod-scale-up-delay";

/// The taint on a node being removed (NoSchedule; the value is the Unix
/// time it was added). Other tools check for this key.
pub const TO_BE_DELETED_TAINT: &str = "ToBeDeletedByClusterAutoscaler";
/// The soft taint on an unneeded node (PreferNoSchedule; the value is the
/// Unix time since when it has been unneeded).
pub const DELETION_CANDIDATE_TAINT: &str = "DeletionCandidateOfClusterAutoscaler";

/// Auto Scaling group tags describing the nodes of a group at zero.
pub const TEMPLATE_LABEL_TAG: &str = "k8s.io/cluster-autoscaler/node-template/label/";
pub const TEMPLATE_TAINT_TAG: &str = "k8s.io/cluster-autoscaler/node-template/taint/";
pub const TEMPLATE_RESOURCES_TAG: &str = "k8s.io/cluster-autoscaler/node-template/resources/";

/// The status ConfigMap (in the autoscaler's namespace).
pub const STATUS_CONFIGMAP: &str = "cluster-autoscaler-status";
/// The priority expander's ConfigMap and its key.
pub const PRIORITY_CONFIGMAP: &str = "cluster-autoscaler-priority-expander";
pub const PRIORITY_KEY: &str = "priorities";

/// Event reasons.
pub const TRIGGERED_SCALE_UP: &str = "TriggeredScaleUp";
pub const NOT_TRIGGER_SCALE_UP: &str = "NotTriggerScaleUp";
pub const SCALED_UP_GROUP: &str = "ScaledUpGroup";
pub const SCALE_DOWN: &str = "ScaleDown";
pub const SCALE_DOWN_EMPTY: &str = "ScaleDownEmpty";
pub const SCALE_DOWN_FAILED: &str = "ScaleDownFailed";

/// Reasons a group was not tried for a pod.
pub const MAX_GROUP_SIZE_REACHED: &str = "max node group size reached";
pub const IN_BACKOFF: &str = "in backoff after failed scale-up";
pub const NOT_READY_FOR_SCALE_UP: &str = "not ready for scale-up";

/// One group's part of a scale-up, as upstream prints it:
/// `{eks-ng-1-demo 3->5 (max: 10)}`.
pub fn scale_up_item(group: &str, from: i64, to: i64, max: i64) -> String {
    format!("{{{group} {from}->{to} (max: {max})}}")
}

/// `Scale-up: setting group eks-ng-1-demo size to 5 instead of 3 (max: 10)`.
pub fn setting_group_size(group: &str, from: i64, to: i64, max: i64) -> String {
    format!("Scale-up: setting group {group} size to {to} instead of {from} (max: {max})")
}

/// A TriggeredScaleUp Event's note.
pub fn pod_triggered_scale_up(items: &[String]) -> String {
    format!("pod triggered scale-up: [{}]", items.join(" "))
}

/// A NotTriggerScaleUp Event's note.
pub fn pod_did_not_trigger_scale_up(reasons: &str) -> String {
    format!("pod didn't trigger scale-up: {reasons}")
}

/// A ScaleDown Event's note on a node.
pub const NODE_MARKED: &str = "marked the node as toBeDeleted/unschedulable";
/// A ScaleDown Event's note on a pod evicted from a node being removed.
pub const POD_DELETED: &str = "deleting pod for node scale down";
