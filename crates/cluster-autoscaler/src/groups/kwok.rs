//! Groups of kwok nodes, for clusters without a cloud, in the format of
//! upstream's kwok cloud provider. Its configuration is the ConfigMap
//! `kwok-provider-config` (or the one `KWOK_PROVIDER_CONFIGMAP` names), key
//! `config`, checked as upstream does: `readNodesFrom` (`configmap`, with
//! `configmap.name`, or `cluster`), `nodegroups.fromNodeLabelKey` or
//! `nodegroups.fromNodeAnnotationKey` (one of them), `nodes.skipTaint`
//! (without it, template nodes get the taint `kwok-provider=true:NoSchedule`)
//! and `nodes.gpuConfig`. Template nodes come from the named ConfigMap (key
//! `templates`: Node YAML, several documents or a `List`) or from the
//! cluster's nodes; each one carrying the grouping key is a group (named by
//! its `cluster-autoscaler.kwok.nodegroup/name` annotation, else the key's
//! value; the first template of a name wins), its size bounds in the
//! annotations `cluster-autoscaler.kwok.nodegroup/{min,max,desired}-count`
//! (0, 200 and min when absent). Unlike upstream, both ConfigMaps are read
//! on every loop, so edits apply without a restart. A scale-up creates
//! Node objects that the cluster's kwok runs (named `<group>-<suffix>`,
//! providerID `kwok:<name>`); a removal deletes the Node (one kwok runs,
//! the group above its min).

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Node, NodeAddress, Taint as KubeTaint};
use kube::{Api, Client, ResourceExt, api::PostParams, runtime::reflector::Store};
use outrigger_node_groups::group::{NodeGroup, Template};
use outrigger_scheduling::model::{Taint, TaintEffect};
use outrigger_scheduling::resources::Resources;
use serde::Deserialize;

use super::{GroupError, NodeGroupProvider};

pub const CONFIG_CONFIGMAP: &str = "kwok-provider-config";
/// The environment variable naming another configuration ConfigMap.
pub const CONFIG_CONFIGMAP_ENV: &str = "KWOK_PROVIDER_CONFIGMAP";
/// The configuration ConfigMap's key.
pub const CONFIG_KEY: &str = "config";
/// Upstream's sample name of the templates ConfigMap.
pub const TEMPLATES_CONFIGMAP: &str = "kwok-provider-templates";
/// The templates ConfigMap's key.
pub const TEMPLATES_KEY: &str = "templates";
pub const GROUP_ANNOTATION: &str = "cluster-autoscaler.kwok.nodegroup/name";
pub const MIN_ANNOTATION: &str = "cluster-autoscaler.kwok.nodegroup/min-count";
pub const MAX_ANNOTATION: &str = "cluster-autoscaler.kwok.nodegroup/max-count";
pub const DESIRED_ANNOTATION: &str = "cluster-autoscaler.kwok.nodegroup/desired-count";
/// `fake` on the nodes kwok runs (and the provider may delete).
pub const MANAGED_ANNOTATION: &str = "kwok.x-k8s.io/node";
/// Where kwok serves a node's resource metrics.
pub const METRICS_PATH_ANNOTATION: &str = "metrics.k8s.io/resource-metrics-path";
pub const PROVIDER_ID_PREFIX: &str = "kwok:";
/// How many Node objects a scale-up creates at once.
const CREATE_CONCURRENCY: usize = 16;
/// The taint on template nodes unless `nodes.skipTaint` (NoSchedule).
pub const PROVIDER_TAINT_KEY: &str = "kwok-provider";
const DEFAULT_MIN: i64 = 0;
const DEFAULT_MAX: i64 = 200;

/// Where template nodes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplatesFrom {
    /// A ConfigMap (in the autoscaler's namespace) by name.
    ConfigMap(String),
    /// The cluster's nodes.
    Cluster,
}

/// What names a node's group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grouping {
    Label(String),
    Annotation(String),
}

/// The kwok provider's configuration, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderConfig {
    pub templates_from: TemplatesFrom,
    pub grouping: Grouping,
    pub skip_taint: bool,
    /// `nodes.gpuConfig.gpuLabelKey` (read, checked, otherwise unused).
    pub gpu_label: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    read_nodes_from: String,
    nodegroups: Option<RawGroups>,
    nodes: Option<RawNodes>,
    configmap: Option<RawConfigMap>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawGroups {
    #[serde(default)]
    from_node_label_key: String,
    #[serde(default)]
    from_node_annotation_key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNodes {
    #[serde(default)]
    skip_taint: bool,
    gpu_config: Option<RawGpu>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawGpu {
    #[serde(default)]
    gpu_label_key: String,
    #[serde(rename = "availableGPUTypes")]
    available_gpu_types: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Default, Deserialize)]
struct RawConfigMap {
    #[serde(default)]
    name: String,
}

/// The configuration ConfigMap's name: `KWOK_PROVIDER_CONFIGMAP`'s value
/// when set and not blank, else `kwok-provider-config`.
pub fn config_configmap_name(env: Option<&str>) -> String {
    env.map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(CONFIG_CONFIGMAP)
        .to_string()
}

/// The `config` key's YAML (or JSON), checked as upstream checks it.
pub fn parse_config(text: &str) -> Result<ProviderConfig, String> {
    let raw: RawConfig =
        serde_saphyr::from_str(text).map_err(|e| format!("failed to decode kwok config: {e}"))?;
    let templates_from = match raw.read_nodes_from.as_str() {
        "configmap" => {
            let cm = raw.configmap.as_ref().ok_or(
                "please specify a value for 'configmap' in kwok config (currently empty or undefined)",
            )?;
            if cm.name.trim().is_empty() {
                return Err(
                    "please specify 'configmap.name' in kwok config (currently empty or undefined)"
                        .into(),
                );
            }
            TemplatesFrom::ConfigMap(cm.name.trim().to_string())
        }
        "cluster" => TemplatesFrom::Cluster,
        other => {
            return Err(format!(
                "'readNodesFrom' in kwok config is invalid (expected: 'configmap' or 'cluster'): {other:?}"
            ));
        }
    };
    let groups = raw.nodegroups.as_ref().ok_or(
        "please specify a value for 'nodegroups' in kwok config (currently empty or undefined)",
    )?;
    let label = groups.from_node_label_key.trim();
    let annotation = groups.from_node_annotation_key.trim();
    let grouping = match (label.is_empty(), annotation.is_empty()) {
        (true, true) => {
            return Err("please specify either 'nodegroups.fromNodeLabelKey' or 'nodegroups.fromNodeAnnotationKey' in kwok provider config (currently empty or undefined)".into());
        }
        (false, false) => {
            return Err("please specify either 'nodegroups.fromNodeLabelKey' or 'nodegroups.fromNodeAnnotationKey' in kwok provider config (you can't use both)".into());
        }
        (false, true) => Grouping::Label(groups.from_node_label_key.clone()),
        (true, false) => Grouping::Annotation(groups.from_node_annotation_key.clone()),
    };
    let nodes = raw.nodes.unwrap_or_default();
    let gpu_label = match &nodes.gpu_config {
        None => None,
        Some(g) if !g.gpu_label_key.is_empty() && g.available_gpu_types.is_some() => {
            Some(g.gpu_label_key.clone())
        }
        Some(_) => {
            return Err(
                "nodes.gpuConfig.gpuLabelKey or nodes.gpuConfig.availableGPUTypes is empty".into(),
            );
        }
    };
    Ok(ProviderConfig {
        templates_from,
        grouping,
        skip_taint: nodes.skip_taint,
        gpu_label,
    })
}

/// A List of anything.
#[derive(Debug, Deserialize)]
struct List {
    #[serde(default)]
    items: Vec<serde_json::Value>,
}

fn kind(v: &serde_json::Value) -> Option<&str> {
    v.get("kind").and_then(|k| k.as_str())
}

/// Quantities written as YAML numbers (`cpu: 4`) as the strings the API
/// types take.
fn quantities_as_strings(v: &mut serde_json::Value) {
    for field in ["capacity", "allocatable"] {
        if let Some(m) = v
            .get_mut("status")
            .and_then(|s| s.get_mut(field))
            .and_then(|m| m.as_object_mut())
        {
            for q in m.values_mut() {
                if q.is_number() {
                    *q = serde_json::Value::String(q.to_string());
                }
            }
        }
    }
}

fn node(mut v: serde_json::Value) -> Result<Node, String> {
    quantities_as_strings(&mut v);
    serde_json::from_value(v).map_err(|e| format!("key templates: {e}"))
}

/// The templates ConfigMap's `templates` key: Node YAML documents (other
/// kinds among several documents are skipped, as upstream), or one `List`
/// (its Nodes); one Node alone is taken too (upstream refuses it). An
/// empty key, YAML that does not parse, or one document that is neither
/// is an error.
pub fn parse_templates(text: &str) -> Result<Vec<Node>, String> {
    if text.trim().is_empty() {
        return Err(format!("no {TEMPLATES_KEY:?} key (or it is empty)"));
    }
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text).map_err(|e| format!("key templates: {e}"))?;
    let nodes = match docs.as_slice() {
        [] => return Err("key templates: no document".into()),
        [one] if kind(one) == Some("List") => {
            let l: List =
                serde_json::from_value(one.clone()).map_err(|e| format!("key templates: {e}"))?;
            l.items
                .into_iter()
                .filter(|i| kind(i) == Some("Node"))
                .map(node)
                .collect::<Result<Vec<_>, _>>()?
        }
        // Upstream wants a List for a single template; one Node is plain
        // enough to take.
        [one] if kind(one) == Some("Node") => vec![node(one.clone())?],
        [_] => {
            return Err(
                "invalid templates file (found something other than nodes in the file)".into(),
            );
        }
        many => many
            .iter()
            .filter(|d| kind(d) == Some("Node"))
            .cloned()
            .map(node)
            .collect::<Result<Vec<_>, _>>()?,
    };
    Ok(nodes)
}

fn non_empty(m: &BTreeMap<String, String>, key: &str) -> Option<String> {
    m.get(key).filter(|v| !v.is_empty()).cloned()
}

/// Whether a node carries the grouping key (a template must to be a
/// group).
pub fn has_group_key(n: &Node, grouping: &Grouping) -> bool {
    match grouping {
        Grouping::Label(k) => non_empty(n.labels(), k).is_some(),
        Grouping::Annotation(k) => non_empty(n.annotations(), k).is_some(),
    }
}

/// A node's group: its `cluster-autoscaler.kwok.nodegroup/name`
/// annotation, else the grouping key's value.
pub fn group_name(n: &Node, grouping: &Grouping) -> Option<String> {
    non_empty(n.annotations(), GROUP_ANNOTATION).or_else(|| match grouping {
        Grouping::Label(k) => non_empty(n.labels(), k),
        Grouping::Annotation(k) => non_empty(n.annotations(), k),
    })
}

/// A template's (min, max) from its annotations (0 and 200 when absent);
/// a value that is not a number, max below min, or a desired count
/// outside them is an error naming the node.
pub fn sizes(n: &Node) -> Result<(i64, i64), String> {
    let read = |key: &str, default: i64| -> Result<i64, String> {
        match non_empty(n.annotations(), key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                format!(
                    "invalid value {v:?} for annotation key '{key}' for node '{}'",
                    n.name_any()
                )
            }),
        }
    };
    let min = read(MIN_ANNOTATION, DEFAULT_MIN)?;
    let max = read(MAX_ANNOTATION, DEFAULT_MAX)?;
    let desired = read(DESIRED_ANNOTATION, min)?;
    if max < min {
        return Err(format!(
            "max-count '{max}' cannot be lower than min-count '{min}' for the node '{}'",
            n.name_any()
        ));
    }
    if desired < min || desired > max {
        return Err(format!(
            "desired-count '{desired}' cannot be lower than min-count '{min}' or greater than max-count '{max}' for the node '{}'",
            n.name_any()
        ));
    }
    Ok((min, max))
}

/// The taint template nodes get unless `nodes.skipTaint`.
pub fn provider_taint() -> KubeTaint {
    KubeTaint {
        key: PROVIDER_TAINT_KEY.into(),
        value: Some("true".into()),
        effect: "NoSchedule".into(),
        time_added: None,
    }
}

/// A template node as the provider uses it: with the provider's taint
/// unless `nodes.skipTaint`.
pub fn template_node(n: &Node, cfg: &ProviderConfig) -> Node {
    let mut n = n.clone();
    if !cfg.skip_taint {
        n.spec
            .get_or_insert_with(Default::default)
            .taints
            .get_or_insert_with(Vec::new)
            .push(provider_taint());
    }
    n
}

/// Whether a node is one of the group's: a kwok providerID (as upstream
/// takes a node as the provider's) and the group's name, not being
/// deleted.
pub fn is_member(n: &Node, group: &str, grouping: &Grouping) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.provider_id.as_deref())
        .is_some_and(|p| p.starts_with("kwok"))
        && n.metadata.deletion_timestamp.is_none()
        && group_name(n, grouping).as_deref() == Some(group)
}

/// A node's providerID (`kwok:<name>` if it has none).
pub fn provider_id(n: &Node) -> String {
    n.spec
        .as_ref()
        .and_then(|s| s.provider_id.clone())
        .unwrap_or_else(|| format!("{PROVIDER_ID_PREFIX}{}", n.name_any()))
}

fn resources(
    m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> Resources {
    m.map(|m| {
        Resources::parse(m.iter().map(|(k, v)| (k.as_str(), v.0.as_str()))).unwrap_or_default()
    })
    .unwrap_or_default()
}

/// The groups: one per template carrying the grouping key (the first of a
/// name wins), with its size bounds, its members among `nodes` (target:
/// how many), and its template (the template node's labels but the
/// hostname, taints, capacity and allocatable).
pub fn node_groups(
    cfg: &ProviderConfig,
    templates: &[Node],
    nodes: &[&Node],
) -> Result<Vec<NodeGroup>, String> {
    let mut out: Vec<NodeGroup> = vec![];
    for t in templates {
        if !has_group_key(t, &cfg.grouping) {
            continue;
        }
        let Some(id) = group_name(t, &cfg.grouping) else {
            continue;
        };
        if out.iter().any(|g| g.id == id) {
            continue;
        }
        let (min, max) = sizes(t)?;
        let t = template_node(t, cfg);
        let spec = t.spec.clone().unwrap_or_default();
        let status = t.status.clone().unwrap_or_default();
        let taints: Vec<Taint> = spec
            .taints
            .iter()
            .flatten()
            .filter_map(|x| {
                Some(Taint {
                    key: x.key.clone(),
                    value: x.value.clone().unwrap_or_default(),
                    effect: TaintEffect::parse(&x.effect)?,
                })
            })
            .collect();
        let capacity = resources(status.capacity.as_ref());
        let allocatable = resources(status.allocatable.as_ref().or(status.capacity.as_ref()));
        let members: Vec<&&Node> = nodes
            .iter()
            .filter(|n| is_member(n, &id, &cfg.grouping))
            .collect();
        out.push(NodeGroup {
            min,
            max,
            target: members.len() as i64,
            instances: members.iter().map(|n| provider_id(n)).collect(),
            template: Some(Template::from_node(
                None,
                t.labels(),
                &taints,
                &capacity,
                &allocatable,
            )),
            id,
        });
    }
    Ok(out)
}

/// The group's template node (the first template of its name).
pub fn group_template<'a>(
    cfg: &ProviderConfig,
    templates: &'a [Node],
    group: &str,
) -> Option<&'a Node> {
    templates.iter().find(|t| {
        has_group_key(t, &cfg.grouping) && group_name(t, &cfg.grouping).as_deref() == Some(group)
    })
}

/// How many nodes to create for `target` when the group has `have`: an
/// error past its max, as upstream's; none when it has enough already.
pub fn nodes_to_add(have: i64, target: i64, max: i64) -> Result<i64, String> {
    if target > max {
        return Err(format!(
            "size increase too large, desired: {target} max: {max}"
        ));
    }
    Ok((target - have).max(0))
}

/// A new node of the group, named `name`, from its template node: the
/// template's labels (the hostname the node's name), annotations (with
/// the kwok, group and metrics-path ones), spec (providerID
/// `kwok:<name>`) and status (no conditions: kwok sets them).
pub fn new_node(template: &Node, group: &str, name: &str) -> Node {
    let mut n = template.clone();
    n.metadata = Default::default();
    n.metadata.name = Some(name.to_string());
    let mut labels = template.labels().clone();
    labels.insert("kubernetes.io/hostname".into(), name.to_string());
    n.metadata.labels = Some(labels);
    let mut annotations = template.annotations().clone();
    annotations.insert(MANAGED_ANNOTATION.into(), "fake".into());
    annotations.insert(GROUP_ANNOTATION.into(), group.to_string());
    annotations.insert(
        METRICS_PATH_ANNOTATION.into(),
        format!("/metrics/nodes/{name}/metrics/resource"),
    );
    n.metadata.annotations = Some(annotations);
    let mut spec = n.spec.clone().unwrap_or_default();
    spec.provider_id = Some(format!("{PROVIDER_ID_PREFIX}{name}"));
    n.spec = Some(spec);
    if let Some(st) = n.status.as_mut() {
        st.conditions = None;
        st.addresses = Some(vec![NodeAddress {
            type_: "InternalIP".into(),
            address: "127.0.0.1".into(),
        }]);
    }
    n
}

/// Whether `nodes` may be deleted from a group of `size` nodes whose min
/// is `min`: not at or below min, only nodes kwok runs (as upstream).
pub fn check_delete(nodes: &[&Node], size: i64, min: i64) -> Result<(), String> {
    if size <= min {
        return Err("min size reached, nodes will not be deleted".into());
    }
    if size - (nodes.len() as i64) < min {
        return Err("can't delete nodes because nodegroup size would go below min size".into());
    }
    for n in nodes {
        if n.annotations().get(MANAGED_ANNOTATION).map(String::as_str) != Some("fake") {
            return Err(format!(
                "can't delete node '{}' because it is not managed by kwok",
                n.name_any()
            ));
        }
    }
    Ok(())
}

pub struct Kwok {
    client: Client,
    namespace: String,
    config_name: String,
    nodes: Store<Node>,
    configmaps: Store<ConfigMap>,
    /// Nodes this provider created that the node cache has not shown yet,
    /// per group (name, when): they count in the group's target, as a
    /// cloud's desired capacity counts instances still launching, so that
    /// the next loop does not ask for them again.
    created: std::sync::Mutex<BTreeMap<String, Vec<(String, std::time::Instant)>>>,
}

/// How long a created node may take to show in the node cache before it
/// no longer counts.
const CREATED_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

impl Kwok {
    pub fn new(
        client: Client,
        namespace: &str,
        nodes: Store<Node>,
        configmaps: Store<ConfigMap>,
    ) -> Self {
        Self {
            client,
            namespace: namespace.to_string(),
            config_name: config_configmap_name(std::env::var(CONFIG_CONFIGMAP_ENV).ok().as_deref()),
            nodes,
            configmaps,
            created: Default::default(),
        }
    }

    /// How many nodes of `group` were created and are not in the cache yet
    /// (forgetting those seen, or too old).
    fn not_seen_yet(&self, group: &str) -> i64 {
        use outrigger_runtime::sync::LockExt;
        let mut created = self.created.locked();
        let Some(list) = created.get_mut(group) else {
            return 0;
        };
        list.retain(|(name, at)| {
            at.elapsed() < CREATED_GRACE
                && self
                    .nodes
                    .get(&kube::runtime::reflector::ObjectRef::new(name))
                    .is_none()
        });
        list.len() as i64
    }

    fn invalid(&self, what: &str, message: String) -> GroupError {
        GroupError::Invalid {
            group: format!("ConfigMap {}/{what}", self.namespace),
            message,
        }
    }

    fn data(&self, name: &str, key: &str) -> Result<String, GroupError> {
        let cm = self
            .configmaps
            .find(|c| c.name_any() == name && c.namespace().as_deref() == Some(&self.namespace))
            .ok_or_else(|| self.invalid(name, "not found".into()))?;
        Ok(cm
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .cloned()
            .unwrap_or_default())
    }

    fn config(&self) -> Result<ProviderConfig, GroupError> {
        let text = self.data(&self.config_name, CONFIG_KEY)?;
        parse_config(&text).map_err(|m| self.invalid(&self.config_name, m))
    }

    /// The template nodes: the ConfigMap's, or the cluster's nodes (those
    /// kwok does not run first, then by name).
    fn templates(&self, cfg: &ProviderConfig) -> Result<Vec<Node>, GroupError> {
        match &cfg.templates_from {
            TemplatesFrom::ConfigMap(name) => {
                let text = self.data(name, TEMPLATES_KEY)?;
                parse_templates(&text).map_err(|m| self.invalid(name, m))
            }
            TemplatesFrom::Cluster => {
                let mut nodes: Vec<Node> = self
                    .nodes
                    .state()
                    .iter()
                    .map(|n| n.as_ref().clone())
                    .collect();
                nodes.sort_by_key(|n| {
                    (
                        n.annotations().contains_key(MANAGED_ANNOTATION),
                        n.name_any(),
                    )
                });
                Ok(nodes)
            }
        }
    }

    /// The group's template node, size bounds and members now.
    fn group(&self, group: &str) -> Result<(Node, i64, i64, Vec<Node>), GroupError> {
        let cfg = self.config()?;
        let templates = self.templates(&cfg)?;
        let t = group_template(&cfg, &templates, group)
            .ok_or_else(|| GroupError::NotFound(group.to_string()))?;
        let (min, max) = sizes(t).map_err(|message| GroupError::Invalid {
            group: group.to_string(),
            message,
        })?;
        let members = self
            .nodes
            .state()
            .iter()
            .filter(|n| is_member(n, group, &cfg.grouping))
            .map(|n| n.as_ref().clone())
            .collect();
        Ok((template_node(t, &cfg), min, max, members))
    }
}

#[async_trait]
impl NodeGroupProvider for Kwok {
    fn name(&self) -> &'static str {
        "kwok"
    }

    async fn groups(&self) -> Result<Vec<NodeGroup>, GroupError> {
        let cfg = self.config()?;
        let templates = self.templates(&cfg)?;
        let state = self.nodes.state();
        let nodes: Vec<&Node> = state.iter().map(|n| n.as_ref()).collect();
        let mut groups = node_groups(&cfg, &templates, &nodes)
            .map_err(|m| self.invalid(&self.config_name, m))?;
        for g in &mut groups {
            g.target += self.not_seen_yet(&g.id);
        }
        Ok(groups)
    }

    async fn set_target(&self, group: &str, target: i64) -> Result<(), GroupError> {
        let (template, _, max, members) = self.group(group)?;
        let current = members.len() as i64 + self.not_seen_yet(group);
        let add = nodes_to_add(current, target, max).map_err(|message| GroupError::Invalid {
            group: group.to_string(),
            message,
        })?;
        let api: Api<Node> = Api::all(self.client.clone());
        // The nodes are created a few at a time; the first error is told.
        let results: Vec<Result<(), GroupError>> = futures::stream::iter(0..add)
            .map(|_| {
                let api = api.clone();
                let name = format!("{group}-{}", outrigger_runtime::name_suffix());
                let n = new_node(&template, group, &name);
                async move {
                    api.create(&PostParams::default(), &n)
                        .await
                        .map_err(|e| GroupError::Cloud(format!("creating node {name}: {e}")))?;
                    tracing::info!(group, node = %name, "created kwok node");
                    {
                        use outrigger_runtime::sync::LockExt;
                        self.created
                            .locked()
                            .entry(group.to_string())
                            .or_default()
                            .push((name, std::time::Instant::now()));
                    }
                    Ok(())
                }
            })
            .buffer_unordered(CREATE_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn delete_instance(&self, group: &str, provider_id: &str) -> Result<(), GroupError> {
        let Some(node) = self.nodes.find(|n| self::provider_id(n) == provider_id) else {
            // Gone already.
            return Ok(());
        };
        let name = node.name_any();
        let name = name.as_str();
        let (_, min, _, members) = self.group(group)?;
        check_delete(&[node.as_ref()], members.len() as i64, min).map_err(|message| {
            GroupError::Invalid {
                group: group.to_string(),
                message,
            }
        })?;
        let api: Api<Node> = Api::all(self.client.clone());
        match api.delete(name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(GroupError::Cloud(format!("deleting node {name}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_as_documents_or_a_list() {
        let docs = "apiVersion: v1\nkind: Node\nmetadata:\n  name: a\n  labels: {kwok-nodegroup: small}\n---\napiVersion: v1\nkind: Node\nmetadata:\n  name: b\n";
        let t = parse_templates(docs).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].labels()["kwok-nodegroup"], "small");
        let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata: {name: c}\n";
        assert_eq!(parse_templates(list).unwrap()[0].name_any(), "c");
        assert!(parse_templates("kind: Node\nmetadata: [").is_err());
    }
}
