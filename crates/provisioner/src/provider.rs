//! Cloud providers: what instance types exist, launching a node claim,
//! deleting it. `kwok` makes kwok-managed Node objects directly (a
//! cluster without a cloud); `aws` launches EC2 instances
//! (`outrigger-provider-aws`). A pool's node class picks its provider:
//! a KWOKNodeClass means kwok, anything else AWS.

use outrigger_runtime::sync::RwLockExt;

use k8s_openapi::api::core::v1::Node;
use kube::{Api, Client, api::PostParams};
use outrigger_karpenter_api::v1::NodeClaim;
use outrigger_scheduling::{
    eks,
    model::{
        CAPACITY_ON_DEMAND, CAPACITY_SPOT, InstanceType, LABEL_CAPACITY_TYPE, LABEL_HOSTNAME,
        LABEL_INSTANCE_TYPE, LABEL_ZONE, Labels, Offering,
    },
    requirements::Requirements,
    resources::Resources,
};

/// A launched instance.
#[derive(Clone, Debug)]
pub struct Launched {
    pub instance_id: String,
    pub provider_id: String,
    pub node_name: String,
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: String,
    pub capacity: Resources,
    pub allocatable: Resources,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("no instance type of {0} has an available offering the claim allows")]
    NoOffering(String),
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("aws: {0}")]
    Aws(outrigger_aws_ec2::Ec2Error),
    #[error("{0}")]
    NodeClass(String),
}

/// The claim's requirements in the solver's algebra.
pub fn claim_requirements(claim: &NodeClaim) -> Requirements {
    outrigger_karpenter_api::convert::nodeclaim_requirements(claim)
}

/// The cheapest available offering the requirements allow, among the
/// claim's instance types: (type index, offering).
pub fn choose(types: &[InstanceType], req: &Requirements) -> Option<(usize, Offering)> {
    let allowed = |k: &str, v: &str| req.get(k).is_none_or(|r| r.allows(Some(v)));
    let mut best: Option<(usize, Offering)> = None;
    for (i, t) in types.iter().enumerate() {
        if !allowed(LABEL_INSTANCE_TYPE, &t.name) {
            continue;
        }
        for o in &t.offerings {
            if o.available
                && allowed(LABEL_ZONE, &o.zone)
                && allowed(LABEL_CAPACITY_TYPE, &o.capacity_type)
                && best.as_ref().is_none_or(|(_, b)| o.price < b.price)
            {
                best = Some((i, o.clone()));
            }
        }
    }
    best
}

pub use outrigger_scheduling_kube::to_quantities;

/// Nodes kwok runs: the provider creates the Node object itself.
pub struct Kwok {
    client: Client,
    types: Vec<InstanceType>,
    kubelet_port: u16,
}

impl Kwok {
    /// The bundled catalogue (`eks::catalogue`) in `zones`, spot at a third
    /// of the on-demand price.
    pub fn new(client: Client, zones: &[String], kubelet_port: u16) -> Self {
        let types = eks::catalogue()
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
            .collect();
        Self {
            client,
            types,
            kubelet_port,
        }
    }

    pub fn instance_types(&self) -> &[InstanceType] {
        &self.types
    }

    /// Creates the claim's Node: the cheapest offering it allows, labelled
    /// like a Karpenter node (type, zone, capacity type, the claim's
    /// labels), managed by kwok.
    pub async fn create(
        &self,
        claim: &NodeClaim,
        labels: &Labels,
    ) -> Result<Launched, ProviderError> {
        let name = claim.metadata.name.clone().unwrap_or_default();
        let req = claim_requirements(claim);
        let (t, offer) =
            choose(&self.types, &req).ok_or_else(|| ProviderError::NoOffering(name.clone()))?;
        let it = &self.types[t];
        let mut node_labels = labels.clone();
        node_labels.extend(it.requirements.single_values());
        node_labels.insert(LABEL_ZONE.to_string(), offer.zone.clone());
        node_labels.insert(LABEL_CAPACITY_TYPE.to_string(), offer.capacity_type.clone());
        node_labels.insert(LABEL_HOSTNAME.to_string(), name.clone());
        node_labels.insert("type".to_string(), "kwok".to_string());
        let provider_id = format!("kwok://{}/{}", offer.zone, name);
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
        .map_err(|e| ProviderError::Kube(kube::Error::SerdeError(e)))?;
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
        })
    }

    /// Deletes the claim's Node (gone already is fine).
    pub async fn delete(&self, node_name: &str) -> Result<(), ProviderError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        match nodes.delete(node_name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Which provider launches a claim of this node class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Kwok,
    Aws,
}

pub fn which(class: &outrigger_karpenter_api::v1::NodeClassReference) -> Which {
    if class.kind == "KWOKNodeClass" {
        Which::Kwok
    } else {
        Which::Aws
    }
}

/// EC2 through the AWS SDK, with the catalogue refreshed every few
/// minutes (and after a launch finds no capacity).
pub struct Aws {
    pub aws: outrigger_aws_ec2::Ec2,
    client: Client,
    types: std::sync::RwLock<std::sync::Arc<Vec<InstanceType>>>,
}

impl Aws {
    pub async fn new(client: Client, cluster: &str) -> Result<Self, outrigger_aws_ec2::Ec2Error> {
        let aws = outrigger_aws_ec2::Ec2::new(cluster).await;
        let types = aws.instance_types(&eks::Kubelet::default()).await?;
        tracing::info!(types = types.len(), "discovered instance types");
        Ok(Self {
            aws,
            client,
            types: std::sync::RwLock::new(std::sync::Arc::new(types)),
        })
    }

    pub fn instance_types(&self) -> std::sync::Arc<Vec<InstanceType>> {
        self.types.read_locked().clone()
    }

    pub async fn refresh(&self) {
        match self.aws.instance_types(&eks::Kubelet::default()).await {
            Ok(t) => *self.types.write_locked() = std::sync::Arc::new(t),
            Err(e) => tracing::warn!(error = %e, "refreshing instance types"),
        }
    }

    /// Launches the claim's instance in the node class's subnets: the
    /// claim's types cheapest first, its zones and capacity types.
    pub async fn create(
        &self,
        claim: &NodeClaim,
        class: &outrigger_aws_ec2::NodeClass,
        labels: &Labels,
        nodepool: &str,
    ) -> Result<Launched, ProviderError> {
        let name = claim.metadata.name.clone().unwrap_or_default();
        let req = claim_requirements(claim);
        let types = self.instance_types();
        let allowed = |k: &str, v: &str| req.get(k).is_none_or(|r| r.allows(Some(v)));
        let mut candidates: Vec<(f64, &InstanceType)> = types
            .iter()
            .filter(|t| allowed(LABEL_INSTANCE_TYPE, &t.name))
            .filter_map(|t| {
                let p = t
                    .offerings
                    .iter()
                    .filter(|o| {
                        o.available
                            && allowed(LABEL_ZONE, &o.zone)
                            && allowed(LABEL_CAPACITY_TYPE, &o.capacity_type)
                    })
                    .map(|o| o.price)
                    .fold(f64::INFINITY, f64::min);
                p.is_finite().then_some((p, t))
            })
            .collect();
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.name.cmp(&b.1.name)));
        if candidates.is_empty() {
            return Err(ProviderError::NoOffering(name));
        }
        let zones: Vec<String> = {
            let mut z: Vec<String> = types
                .iter()
                .flat_map(|t| t.offerings.iter().map(|o| o.zone.clone()))
                .filter(|z| allowed(LABEL_ZONE, z))
                .collect();
            z.sort();
            z.dedup();
            z
        };
        let capacity_types: Vec<String> = [CAPACITY_SPOT, CAPACITY_ON_DEMAND]
            .iter()
            .filter(|c| allowed(LABEL_CAPACITY_TYPE, c))
            .map(|c| c.to_string())
            .collect();
        let taints: Vec<String> = claim
            .spec
            .taints
            .iter()
            .chain(&claim.spec.startup_taints)
            .map(|t| {
                format!(
                    "{}={}:{}",
                    t.key,
                    t.value.clone().unwrap_or_default(),
                    t.effect
                )
            })
            .collect();
        let request = outrigger_aws_ec2::LaunchRequest {
            claim: name.clone(),
            nodepool: nodepool.to_string(),
            instance_types: candidates.iter().map(|(_, t)| t.name.clone()).collect(),
            zones,
            capacity_types,
            labels: labels.clone(),
            taints,
        };
        let inst = match self.aws.launch(class, &request).await {
            Ok(i) => i,
            Err(e) => {
                if matches!(e, outrigger_aws_ec2::Ec2Error::InsufficientCapacity(_)) {
                    self.refresh().await;
                }
                return Err(ProviderError::Aws(e));
            }
        };
        let it = types
            .iter()
            .find(|t| t.name == inst.instance_type)
            .or(candidates.first().map(|(_, t)| *t));
        let (capacity, allocatable) = it
            .map(|t| (t.capacity.clone(), t.allocatable()))
            .unwrap_or_default();
        Ok(Launched {
            provider_id: inst.provider_id(),
            node_name: inst.private_dns.clone(),
            instance_id: inst.id,
            instance_type: inst.instance_type,
            zone: inst.zone,
            capacity_type: inst.capacity_type,
            capacity,
            allocatable,
        })
    }

    /// Terminates the instance and removes its Node.
    pub async fn delete(&self, provider_id: &str, node_name: &str) -> Result<(), ProviderError> {
        self.aws
            .terminate(provider_id)
            .await
            .map_err(ProviderError::Aws)?;
        let nodes: Api<Node> = Api::all(self.client.clone());
        match nodes.delete(node_name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
