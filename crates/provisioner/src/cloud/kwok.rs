//! Nodes kwok runs, for clusters without a cloud: the provider creates the
//! Node object itself (kwok's controller makes it Ready and runs its pods),
//! from a bundled AWS-shaped catalogue, for claims whose node class is a
//! KWOKNodeClass.

use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Node;
use kube::{Api, Client, ResourceExt, api::PostParams, runtime::reflector::Store};
use outrigger_karpenter_api::{
    nodeclass::KWOKNodeClass,
    v1::{NodeClaim, NodeClassReference},
};
use outrigger_scheduling::{
    eks,
    model::{
        CAPACITY_ON_DEMAND, CAPACITY_SPOT, InstanceType, LABEL_CAPACITY_TYPE, LABEL_HOSTNAME,
        LABEL_NODEPOOL, LABEL_ZONE, Labels, Offering,
    },
};
use outrigger_scheduling_kube::to_quantities;

use super::{CloudError, CloudProvider, Instance, Launched, choose, claim_requirements};

/// The node class kind kwok serves.
pub const KIND: &str = "KWOKNodeClass";
/// Provider IDs of kwok nodes: `kwok://<zone>/<name>`.
pub const PROVIDER_ID_PREFIX: &str = "kwok://";

pub struct Kwok {
    client: Client,
    types: Arc<Vec<InstanceType>>,
    kubelet_port: u16,
    classes: Store<KWOKNodeClass>,
    nodes: Store<Node>,
}

impl Kwok {
    /// The bundled catalogue (`eks::catalogue`) in `zones`, spot at a third
    /// of the on-demand price.
    pub fn new(
        client: Client,
        zones: &[String],
        kubelet_port: u16,
        classes: Store<KWOKNodeClass>,
        nodes: Store<Node>,
    ) -> Self {
        Self {
            client,
            types: Arc::new(catalogue(zones)),
            kubelet_port,
            classes,
            nodes,
        }
    }
}

/// The bundled catalogue in `zones`: every type spot (a third of on-demand)
/// and on-demand in every zone.
pub fn catalogue(zones: &[String]) -> Vec<InstanceType> {
    eks::catalogue()
        .into_iter()
        .map(|(shape, od)| {
            let mut offerings = vec![];
            for z in zones {
                offerings.push(Offering {
                    zone: z.clone(),
                    capacity_type: CAPACITY_SPOT.to_string(),
                    price: (od / 3.0 * 1e4).round() / 1e4,
                    available: true,
                });
                offerings.push(Offering {
                    zone: z.clone(),
                    capacity_type: CAPACITY_ON_DEMAND.to_string(),
                    price: od,
                    available: true,
                });
            }
            eks::instance_type(&shape, &eks::Kubelet::default(), offerings)
        })
        .collect()
}

fn instance(n: &Node) -> Option<Instance> {
    let pid = n.spec.as_ref()?.provider_id.clone()?;
    (pid.starts_with(PROVIDER_ID_PREFIX) && n.labels().contains_key(LABEL_NODEPOOL)).then(|| {
        Instance {
            id: n.name_any(),
            provider_id: pid,
            claim: n.name_any(),
        }
    })
}

#[async_trait]
impl CloudProvider for Kwok {
    fn name(&self) -> &'static str {
        "kwok"
    }

    fn serves(&self, class: &NodeClassReference) -> bool {
        class.kind == KIND
    }

    fn class_problem(&self, class: &NodeClassReference) -> Option<String> {
        self.classes
            .find(|c| c.name_any() == class.name)
            .is_none()
            .then(|| format!("{KIND} {} not found", class.name))
    }

    fn instance_types(&self) -> Arc<Vec<InstanceType>> {
        self.types.clone()
    }

    /// Creates the claim's Node: the cheapest offering it allows, labelled
    /// like a Karpenter node (type, zone, capacity type, the claim's
    /// labels), managed by kwok.
    async fn create(&self, claim: &NodeClaim, labels: &Labels) -> Result<Launched, CloudError> {
        let name = claim.name_any();
        let req = claim_requirements(claim);
        let (t, offer) = choose(&self.types, &req).ok_or_else(|| {
            CloudError::InsufficientCapacity(format!(
                "no instance type of {name} has an available offering the claim allows"
            ))
        })?;
        let it = &self.types[t];
        let mut node_labels = labels.clone();
        node_labels.extend(it.requirements.single_values());
        node_labels.insert(LABEL_ZONE.to_string(), offer.zone.clone());
        node_labels.insert(LABEL_CAPACITY_TYPE.to_string(), offer.capacity_type.clone());
        node_labels.insert(LABEL_HOSTNAME.to_string(), name.clone());
        node_labels.insert("type".to_string(), "kwok".to_string());
        let provider_id = format!("{PROVIDER_ID_PREFIX}{}/{}", offer.zone, name);
        let allocatable = it.allocatable();
        let taints: Vec<serde_json::Value> = claim
            .spec
            .taints
            .iter()
            .chain(&claim.spec.startup_taints)
            .map(|t| serde_json::to_value(t).unwrap_or_default())
            .collect();
        let node: Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": node_labels,
                "annotations": {
                    "kwok.x-k8s.io/node": "fake",
                    "node.alpha.kubernetes.io/ttl": "0",
                },
            },
            "spec": {"providerID": provider_id, "taints": taints},
            "status": {
                "capacity": to_quantities(&it.capacity),
                "allocatable": to_quantities(&allocatable),
                "addresses": [
                    {"type": "InternalIP", "address": "127.0.0.1"},
                    {"type": "Hostname", "address": name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
                "nodeInfo": {
                    "architecture": it.requirements.single_values().get("kubernetes.io/arch").cloned().unwrap_or_default(),
                    "operatingSystem": "linux",
                    "osImage": "kwok",
                    "kubeletVersion": "kwok",
                    "containerRuntimeVersion": "kwok",
                    "kernelVersion": "kwok",
                    "kubeProxyVersion": "",
                    "machineID": name,
                    "systemUUID": name,
                    "bootID": name,
                },
            },
        }))
        .map_err(|e| CloudError::Api(format!("building the node: {e}")))?;
        let nodes: Api<Node> = Api::all(self.client.clone());
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            // Launched before a restart: the node is already there.
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Launched {
            instance_id: name.clone(),
            provider_id,
            node_name: name,
            instance_type: it.name.clone(),
            zone: offer.zone,
            capacity_type: offer.capacity_type,
            capacity: it.capacity.clone(),
            allocatable,
            ..Default::default()
        })
    }

    /// Deletes the claim's Node.
    async fn delete(&self, claim: &NodeClaim) -> Result<(), CloudError> {
        let name = claim
            .status
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| claim.name_any());
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes.delete(&name, &Default::default()).await?;
        Ok(())
    }

    async fn get(&self, provider_id: &str) -> Result<Instance, CloudError> {
        self.nodes
            .find(|n| n.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(provider_id))
            .and_then(|n| instance(&n))
            .ok_or_else(|| CloudError::NotFound(provider_id.to_string()))
    }

    async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        Ok(self
            .nodes
            .state()
            .iter()
            .filter_map(|n| instance(n))
            .collect())
    }
}
