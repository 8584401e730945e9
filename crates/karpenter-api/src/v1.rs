//! `karpenter.sh/v1`: NodePool and NodeClaim, with Karpenter's field names,
//! defaults, validation and printer columns.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::Taint,
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::Condition},
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How the label's value is compared with `values`: In, NotIn, Exists,
/// DoesNotExist, Gt, Lt, or Gte and Lte (Karpenter's inclusive forms of
/// Gt and Lt). Gt, Lt, Gte and Lte take one integer value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
    Gte,
    Lte,
}

/// A node selector requirement, with the number of distinct values a node
/// claim must keep for the key (`minValues`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelectorRequirementWithMinValues {
    /// The label key.
    #[schemars(
        length(max = 316),
        regex(
            pattern = r"^(([a-zA-Z0-9]|[a-zA-Z0-9][-a-zA-Z0-9]*[a-zA-Z0-9])\.)*([a-zA-Z0-9]|[a-zA-Z0-9][-a-zA-Z0-9]*[a-zA-Z0-9])(\/(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]))?$|^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
        )
    )]
    pub key: String,
    pub operator: Operator,
    /// The values the operator compares with: at least one for In, none
    /// for Exists and DoesNotExist, a single integer for Gt, Lt, Gte, Lte.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(max = 63)))]
    pub values: Vec<String>,
    /// The fewest distinct values of the key (e.g. instance types) a node
    /// claim must keep to choose from (1 to 50; unset: no minimum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 50))]
    pub min_values: Option<i64>,
}

/// The node class a node pool or claim launches with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeClassReference {
    /// The node class's API group: `karpenter.k8s.aws` (EC2NodeClass) or
    /// `karpenter.kwok.sh` (KWOKNodeClass).
    #[schemars(length(min = 1))]
    pub group: String,
    /// The node class's kind: `EC2NodeClass` or `KWOKNodeClass`; it
    /// decides which provider launches the nodes.
    #[schemars(length(min = 1))]
    pub kind: String,
    /// The node class's name.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// Labels and annotations a node pool's nodes get.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateMetadata {
    /// Labels put on every node claim and node of the pool (pods may
    /// select them). Labels Karpenter sets itself are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations for the pool's nodes. Accepted for compatibility; not
    /// acted on yet.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn default_expire_after() -> Option<String> {
    Some("720h".to_string())
}

/// What the node claims of a pool look like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimTemplateSpec {
    /// Taints every node of the pool gets; only pods that tolerate them
    /// are placed there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    /// Taints that are present at startup and removed by something else
    /// (a CNI, a GPU operator) before the node takes pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_taints: Vec<Taint>,
    /// Requirements on the nodes' labels (instance type, zone, capacity
    /// type, architecture, ...); a node satisfies all of them (at most 100).
    #[schemars(length(max = 100))]
    #[x_kube(validation = Rule::new("self.all(x, x.operator == 'In' ? x.values.size() != 0 : true)").message("requirements with operator 'In' must have a value defined"))]
    #[x_kube(validation = Rule::new("self.all(x, (x.operator == 'Gt' || x.operator == 'Lt' || x.operator == 'Gte' || x.operator == 'Lte') ? (x.values.size() == 1 && x.values[0].matches('^[0-9]+$')) : true)").message("requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value"))]
    #[x_kube(validation = Rule::new("self.all(x, (x.operator == 'In' && has(x.minValues)) ? x.values.size() >= x.minValues : true)").message("requirements with 'minValues' must have at least that many values specified in the 'values' field"))]
    pub requirements: Vec<NodeSelectorRequirementWithMinValues>,
    /// The node class (cloud-specific settings) the pool's nodes launch
    /// with.
    pub node_class_ref: NodeClassReference,
    /// How long a node may take to drain before it is terminated anyway
    /// (unset: wait for as long as it takes). Accepted for compatibility;
    /// not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(s|m|h))+$"))]
    pub termination_grace_period: Option<String>,
    /// How long a node lives before its claim is deleted and its pods move
    /// (default 720h; `Never` to keep it), whatever the disruption budgets.
    #[serde(
        default = "default_expire_after",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(regex(pattern = r"^(([0-9]+(s|m|h))+|Never)$"))]
    pub expire_after: Option<String>,
}

/// The template of the node claims (and so the nodes) a pool creates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeClaimTemplate {
    #[serde(default)]
    pub metadata: TemplateMetadata,
    pub spec: NodeClaimTemplateSpec,
}

/// Which nodes consolidation may remove: `WhenEmpty` (only nodes without
/// workload pods) or `WhenEmptyOrUnderutilized` (default; also nodes whose
/// pods fit elsewhere). Outrigger only removes empty nodes, under
/// `WhenEmpty`; it does not consolidate under-used nodes yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConsolidationPolicy {
    WhenEmpty,
    #[default]
    WhenEmptyOrUnderutilized,
}

/// A reason a node is disrupted: Underutilized, Empty or Drifted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DisruptionReason {
    Underutilized,
    Empty,
    Drifted,
}

fn default_budget_nodes() -> String {
    "10%".to_string()
}

/// How many of a pool's nodes may be disrupted at once. Accepted for
/// compatibility; not acted on yet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Budget {
    /// The disruption reasons the budget limits (unset: all of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<DisruptionReason>,
    /// How many nodes may be disrupted at once: a count or a percentage of
    /// the pool's nodes (default `10%`; `0` blocks disruption).
    #[serde(default = "default_budget_nodes")]
    #[schemars(regex(pattern = r"^((100|[0-9]{1,2})%|[0-9]+)$"))]
    pub nodes: String,
    /// A cron schedule (UTC) for when the budget starts to apply; set
    /// together with `duration`. Unset: always applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// How long the budget applies each time `schedule` fires (e.g. `8h`,
    /// `1h30m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$"))]
    pub duration: Option<String>,
}

fn default_budgets() -> Vec<Budget> {
    vec![Budget {
        reasons: vec![],
        nodes: default_budget_nodes(),
        schedule: None,
        duration: None,
    }]
}

fn default_consolidate_after() -> String {
    "0s".to_string()
}

/// When and how the pool's nodes may be removed or replaced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Disruption {
    /// How long a node must stay empty before it is removed (default `0s`;
    /// `Never` disables it). Outrigger acts on it under `WhenEmpty` only.
    #[serde(default = "default_consolidate_after")]
    #[schemars(regex(pattern = r"^(([0-9]+(s|m|h))+|Never)$"))]
    pub consolidate_after: String,
    #[serde(default)]
    pub consolidation_policy: ConsolidationPolicy,
    /// Limits on how many nodes may be disrupted at once (default: one
    /// budget of `10%`; at most 50). Accepted for compatibility; not acted
    /// on yet.
    #[serde(default = "default_budgets")]
    #[schemars(length(max = 50))]
    #[x_kube(validation = Rule::new("self.all(x, has(x.schedule) == has(x.duration))").message("'schedule' must be set with 'duration'"))]
    pub budgets: Vec<Budget>,
}

impl Default for Disruption {
    fn default() -> Self {
        Self {
            consolidate_after: default_consolidate_after(),
            consolidation_policy: ConsolidationPolicy::default(),
            budgets: default_budgets(),
        }
    }
}

/// A pool of nodes Karpenter may launch: their template, limits,
/// disruption settings and priority.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "karpenter.sh",
    version = "v1",
    kind = "NodePool",
    plural = "nodepools",
    status = "NodePoolStatus",
    category = "karpenter",
    doc = "A NodePool says which nodes Karpenter may launch for pending pods: their labels, taints, requirements and node class, how many, and when they may be removed.",
    printcolumn = r#"{"name":"NodeClass","type":"string","jsonPath":".spec.template.spec.nodeClassRef.name"}"#,
    printcolumn = r#"{"name":"Nodes","type":"string","jsonPath":".status.resources.nodes"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Weight","type":"integer","jsonPath":".spec.weight","priority":1}"#,
    printcolumn = r#"{"name":"CPU","type":"string","jsonPath":".status.resources.cpu","priority":1}"#,
    printcolumn = r#"{"name":"Memory","type":"string","jsonPath":".status.resources.memory","priority":1}"#
)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolSpec {
    pub template: NodeClaimTemplate,
    #[serde(default)]
    pub disruption: Disruption,
    /// Most resources (capacity) the pool's nodes may have together.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Quantity>,
    /// Higher first when several pools fit a pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub weight: Option<i32>,
}

/// What the pool has now, as the controller observed it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolStatus {
    /// Capacity of the pool's nodes (and `nodes`, their number).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Quantity>,
    /// How many nodes the pool has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<i64>,
    /// The generation of the node class the pool's status was computed
    /// against. Not set by Outrigger yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_class_observed_generation: Option<i64>,
    /// The pool's conditions: ValidationSucceeded, NodeClassReady,
    /// LimitReached and Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A request for one node: requirements it must meet and the resources
/// it must have; the provider launches it and the Node registers.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "karpenter.sh",
    version = "v1",
    kind = "NodeClaim",
    plural = "nodeclaims",
    status = "NodeClaimStatus",
    category = "karpenter",
    doc = "A NodeClaim is Karpenter's request for one node, made from a NodePool: the provider launches an instance for it and the Node that registers is linked to it. Deleting it drains and removes the node.",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".metadata.labels.node\\.kubernetes\\.io/instance-type"}"#,
    printcolumn = r#"{"name":"Capacity","type":"string","jsonPath":".metadata.labels.karpenter\\.sh/capacity-type"}"#,
    printcolumn = r#"{"name":"Zone","type":"string","jsonPath":".metadata.labels.topology\\.kubernetes\\.io/zone"}"#,
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".status.nodeName"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"ID","type":"string","jsonPath":".status.providerID","priority":1}"#,
    printcolumn = r#"{"name":"NodePool","type":"string","jsonPath":".metadata.labels.karpenter\\.sh/nodepool","priority":1}"#,
    printcolumn = r#"{"name":"NodeClass","type":"string","jsonPath":".spec.nodeClassRef.name","priority":1}"#
)]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimSpec {
    /// Taints the node registers with; only pods that tolerate them are
    /// placed there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    /// Taints the node registers with that something else (a CNI, a GPU
    /// operator) removes once it is ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_taints: Vec<Taint>,
    /// Requirements on the node's labels (instance type, zone, capacity
    /// type, ...) the launched instance must meet (at most 100).
    #[schemars(length(max = 100))]
    pub requirements: Vec<NodeSelectorRequirementWithMinValues>,
    /// What the pods the claim was made for (and the daemonsets) request.
    #[serde(default)]
    pub resources: ResourceRequirements,
    /// The node class (cloud-specific settings) the node launches with.
    pub node_class_ref: NodeClassReference,
    /// How long the node may take to drain before it is terminated anyway
    /// (unset: wait for as long as it takes). Accepted for compatibility;
    /// not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(s|m|h))+$"))]
    pub termination_grace_period: Option<String>,
    /// How long the node lives before the claim is deleted and its pods
    /// move (default 720h; `Never` to keep it), whatever the disruption
    /// budgets.
    #[serde(
        default = "default_expire_after",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(regex(pattern = r"^(([0-9]+(s|m|h))+|Never)$"))]
    pub expire_after: Option<String>,
}

/// What the claim's pods (and daemonsets) request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceRequirements {
    /// The resources (cpu, memory, pods, ...) the node must be able to
    /// hold for them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, Quantity>,
}

/// What was launched for the claim, as the controller observed it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimStatus {
    /// The name of the Node that registered for the claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// The provider's ID of the launched instance (e.g.
    /// `aws:///<zone>/<instance-id>`), which its Node also carries.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "providerID"
    )]
    pub provider_id: Option<String>,
    /// The image (AMI) the instance was launched from. Not set by
    /// Outrigger yet.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "imageID")]
    pub image_id: Option<String>,
    /// The launched instance type's resources.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, Quantity>,
    /// The resources left for pods once system overhead is taken out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: BTreeMap<String, Quantity>,
    /// The claim's conditions: Launched, Registered, Initialized and Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// When a pod was last placed on or removed from the node. Not set by
    /// Outrigger yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pod_event_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}
