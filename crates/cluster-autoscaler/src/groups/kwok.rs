//! Groups of kwok nodes, for clusters without a cloud, in the format of
//! upstream's kwok cloud provider: the ConfigMap `kwok-provider-config`
//! (key `config`; `nodegroups.fromNodeLabelKey` names the label whose value
//! is a node's group, `configmap.name` the templates' ConfigMap,
//! `nodes.skipTaint`) and the templates ConfigMap (`kwok-provider-templates`
//! by default, key `templates`: Node YAML, several documents or a `List`),
//! each template one group, its size bounds in the annotations
//! `cluster-autoscaler.kwok.nodegroup/{min,max}-count` (0 and 200 when
//! absent). A scale-up creates Node objects that the cluster's kwok runs
//! (named `<group>-<suffix>`, providerID `kwok:<name>`); a removal deletes
//! the Node.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::{Api, Client, ResourceExt, api::PostParams, runtime::reflector::Store};
use outrigger_node_groups::group::{NodeGroup, Template};
use outrigger_scheduling::model::{Taint, TaintEffect};
use outrigger_scheduling::resources::Resources;
use serde::Deserialize;

use super::{GroupError, NodeGroupProvider};

pub const CONFIG_CONFIGMAP: &str = "kwok-provider-config";
pub const TEMPLATES_CONFIGMAP: &str = "kwok-provider-templates";
pub const GROUP_ANNOTATION: &str = "cluster-autoscaler.kwok.nodegroup/name";
pub const MIN_ANNOTATION: &str = "cluster-autoscaler.kwok.nodegroup/min-count";
pub const MAX_ANNOTATION: &str = "cluster-autoscaler.kwok.nodegroup/max-count";
pub const PROVIDER_ID_PREFIX: &str = "kwok:";
const DEFAULT_GROUP_LABEL: &str = "kwok-nodegroup";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    nodegroups: GroupsConfig,
    #[serde(default)]
    nodes: NodesConfig,
    #[serde(default)]
    configmap: ConfigMapConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupsConfig {
    from_node_label_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodesConfig {
    #[serde(default)]
    skip_taint: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
struct ConfigMapConfig {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NodeList {
    items: Vec<Node>,
}

pub struct Kwok {
    client: Client,
    namespace: String,
    nodes: Store<Node>,
    configmaps: Store<ConfigMap>,
}

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
            nodes,
            configmaps,
        }
    }

    fn configmap(&self, name: &str) -> Option<std::sync::Arc<ConfigMap>> {
        self.configmaps
            .find(|c| c.name_any() == name && c.namespace().as_deref() == Some(&self.namespace))
    }

    fn config(&self) -> Result<Config, GroupError> {
        let Some(cm) = self.configmap(CONFIG_CONFIGMAP) else {
            return Ok(Config::default());
        };
        let text = cm
            .data
            .as_ref()
            .and_then(|d| d.get("config"))
            .cloned()
            .unwrap_or_default();
        serde_saphyr::from_str(&text).map_err(|e| GroupError::Invalid {
            group: CONFIG_CONFIGMAP.into(),
            message: format!("key config: {e}"),
        })
    }

    /// The templates: Node YAML documents or a List.
    fn templates(&self, cfg: &Config) -> Result<Vec<Node>, GroupError> {
        let name = cfg.configmap.name.as_deref().unwrap_or(TEMPLATES_CONFIGMAP);
        let Some(cm) = self.configmap(name) else {
            return Ok(vec![]);
        };
        let text = cm
            .data
            .as_ref()
            .and_then(|d| d.get("templates"))
            .cloned()
            .unwrap_or_default();
        parse_templates(&text).map_err(|message| GroupError::Invalid {
            group: name.to_string(),
            message,
        })
    }

    fn members(&self, group: &str) -> Vec<std::sync::Arc<Node>> {
        self.nodes
            .state()
            .into_iter()
            .filter(|n| n.annotations().get(GROUP_ANNOTATION).map(String::as_str) == Some(group))
            .filter(|n| n.metadata.deletion_timestamp.is_none())
            .collect()
    }
}

/// Node YAML: documents separated by `---`, or one `List`.
pub fn parse_templates(text: &str) -> Result<Vec<Node>, String> {
    let mut out = vec![];
    for doc in text.split("\n---") {
        let doc = doc.trim().trim_start_matches("---").trim();
        if doc.is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_saphyr::from_str(doc).map_err(|e| format!("key templates: {e}"))?;
        if v.get("kind").and_then(|k| k.as_str()) == Some("List") {
            let l: NodeList =
                serde_json::from_value(v).map_err(|e| format!("key templates: {e}"))?;
            out.extend(l.items);
        } else {
            out.push(serde_json::from_value(v).map_err(|e| format!("key templates: {e}"))?);
        }
    }
    Ok(out)
}

fn resources(
    m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> Resources {
    m.map(|m| {
        Resources::parse(m.iter().map(|(k, v)| (k.as_str(), v.0.as_str()))).unwrap_or_default()
    })
    .unwrap_or_default()
}

fn count(n: &Node, key: &str, default: i64) -> i64 {
    n.annotations()
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn group_of(n: &Node, label: &str) -> Option<String> {
    n.labels().get(label).cloned()
}

#[async_trait]
impl NodeGroupProvider for Kwok {
    fn name(&self) -> &'static str {
        "kwok"
    }

    async fn groups(&self) -> Result<Vec<NodeGroup>, GroupError> {
        let cfg = self.config()?;
        let label = cfg
            .nodegroups
            .from_node_label_key
            .clone()
            .unwrap_or_else(|| DEFAULT_GROUP_LABEL.to_string());
        let mut out = vec![];
        for t in self.templates(&cfg)? {
            let Some(id) = group_of(&t, &label) else {
                tracing::warn!(template = %t.name_any(), label = %label, "a kwok template without its group label is ignored");
                continue;
            };
            let members = self.members(&id);
            let spec = t.spec.clone().unwrap_or_default();
            let status = t.status.clone().unwrap_or_default();
            let mut taints: Vec<Taint> = spec
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
            if cfg.nodes.skip_taint == Some(false) {
                taints.push(Taint {
                    key: "kwok-provider".into(),
                    value: "true".into(),
                    effect: TaintEffect::NoSchedule,
                });
            }
            let capacity = resources(status.capacity.as_ref());
            let allocatable = resources(status.allocatable.as_ref().or(status.capacity.as_ref()));
            let template = Template {
                taints,
                ..Template::from_node(None, t.labels(), &[], &capacity, &allocatable)
            };
            out.push(NodeGroup {
                min: count(&t, MIN_ANNOTATION, 0),
                max: count(&t, MAX_ANNOTATION, 200),
                target: members.len() as i64,
                instances: members
                    .iter()
                    .map(|n| format!("{PROVIDER_ID_PREFIX}{}", n.name_any()))
                    .collect(),
                template: Some(template),
                id,
            });
        }
        Ok(out)
    }

    async fn set_target(&self, group: &str, target: i64) -> Result<(), GroupError> {
        let cfg = self.config()?;
        let label = cfg
            .nodegroups
            .from_node_label_key
            .clone()
            .unwrap_or_else(|| DEFAULT_GROUP_LABEL.to_string());
        let template = self
            .templates(&cfg)?
            .into_iter()
            .find(|t| group_of(t, &label).as_deref() == Some(group))
            .ok_or_else(|| GroupError::NotFound(group.to_string()))?;
        let have = self.members(group).len() as i64;
        let api: Api<Node> = Api::all(self.client.clone());
        for _ in have..target {
            let name = format!("{group}-{}", outrigger_runtime::name_suffix());
            let mut n = template.clone();
            n.metadata = Default::default();
            n.metadata.name = Some(name.clone());
            let mut labels = template.labels().clone();
            labels.insert("kubernetes.io/hostname".into(), name.clone());
            n.metadata.labels = Some(labels);
            let mut annotations = BTreeMap::new();
            annotations.insert("kwok.x-k8s.io/node".to_string(), "fake".to_string());
            annotations.insert(GROUP_ANNOTATION.to_string(), group.to_string());
            n.metadata.annotations = Some(annotations);
            let mut spec = n.spec.clone().unwrap_or_default();
            spec.provider_id = Some(format!("{PROVIDER_ID_PREFIX}{name}"));
            n.spec = Some(spec);
            if let Some(st) = n.status.as_mut() {
                st.conditions = None;
                st.addresses = Some(vec![k8s_openapi::api::core::v1::NodeAddress {
                    type_: "InternalIP".into(),
                    address: "127.0.0.1".into(),
                }]);
            }
            api.create(&PostParams::default(), &n)
                .await
                .map_err(|e| GroupError::Cloud(format!("creating node {name}: {e}")))?;
            tracing::info!(group, node = %name, "created kwok node");
        }
        Ok(())
    }

    async fn delete_instance(&self, _group: &str, provider_id: &str) -> Result<(), GroupError> {
        let name = provider_id
            .strip_prefix(PROVIDER_ID_PREFIX)
            .unwrap_or(provider_id);
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
