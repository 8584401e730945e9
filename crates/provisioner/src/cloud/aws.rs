//! EC2 through `outrigger-aws-ec2`, for claims whose node class is an
//! EC2NodeClass or a v1alpha5 Provisioner's inline `provider`: the
//! catalogue (refreshed every few minutes and after a launch finds no
//! capacity), launches in the node class's subnets and security groups,
//! terminations (the instance, then its Node), and the cluster's instances
//! for garbage collection.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Node;
use kube::{Api, Client, ResourceExt, runtime::reflector::Store};
use outrigger_aws_ec2::{Ec2, Ec2Error, LaunchRequest, NodeClass};
use outrigger_disruption::drift;
use outrigger_karpenter_api::{
    nodeclass::EC2NodeClass,
    v1::{NodeClaim, NodeClassReference},
    v1alpha5::Provisioner,
};
use outrigger_runtime::sync::{LockExt, RwLockExt};
use outrigger_scheduling::{
    eks,
    model::{
        CAPACITY_ON_DEMAND, CAPACITY_SPOT, InstanceType, LABEL_CAPACITY_TYPE, LABEL_INSTANCE_TYPE,
        LABEL_NODEPOOL, LABEL_ZONE, Labels,
    },
};

use super::{CloudError, CloudProvider, Instance, Launched, claim_requirements, claim_taints};

impl From<Ec2Error> for CloudError {
    fn from(e: Ec2Error) -> Self {
        match e {
            Ec2Error::InsufficientCapacity(m) => CloudError::InsufficientCapacity(format!(
                "no offering left to launch (insufficient capacity: {m})"
            )),
            Ec2Error::NoSubnet | Ec2Error::NoSecurityGroup | Ec2Error::NoImage => {
                CloudError::NodeClassNotReady(e.to_string())
            }
            Ec2Error::Api(a) => CloudError::Api(format!("aws: EC2 {a}")),
        }
    }
}

/// The node class kinds AWS launches for.
pub const KINDS: [&str; 3] = ["EC2NodeClass", "Provisioner", "AWSNodeTemplate"];

pub struct Aws {
    ec2: Ec2,
    client: Client,
    types: RwLock<Arc<Vec<InstanceType>>>,
    provisioners: Store<Provisioner>,
    classes: Store<EC2NodeClass>,
    /// The cluster's instances by ID, and when they were listed (drift).
    instances: std::sync::Mutex<Option<InstanceList>>,
    listing: tokio::sync::Mutex<()>,
}

type InstanceList = (
    std::time::Instant,
    Arc<BTreeMap<String, outrigger_aws_ec2::Instance>>,
);

/// How long a listing of the cluster's instances serves drift checks.
const INSTANCES_TTL: std::time::Duration = std::time::Duration::from_secs(30);

impl Aws {
    /// Discovers the region's instance types; fails if EC2 cannot be
    /// reached (the caller retries).
    pub async fn new(
        client: Client,
        cluster: &str,
        provisioners: Store<Provisioner>,
        classes: Store<EC2NodeClass>,
    ) -> Result<Self, Ec2Error> {
        let ec2 = Ec2::new(cluster).await;
        let types = ec2.instance_types(&eks::Kubelet::default()).await?;
        tracing::info!(types = types.len(), "discovered instance types");
        Ok(Self {
            ec2,
            client,
            types: RwLock::new(Arc::new(types)),
            provisioners,
            classes,
            instances: std::sync::Mutex::new(None),
            listing: tokio::sync::Mutex::new(()),
        })
    }

    /// The cluster's live instance with this ID, from one DescribeInstances
    /// of all of them at most every [`INSTANCES_TTL`] (drift asks for every
    /// claim in turn); an instance not in the last listing is looked for
    /// once more after the TTL, not at once.
    async fn instance(&self, id: &str) -> Result<Option<outrigger_aws_ec2::Instance>, CloudError> {
        let _one = self.listing.lock().await;
        let fresh = self
            .instances
            .locked()
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < INSTANCES_TTL);
        if !fresh {
            let all: BTreeMap<String, outrigger_aws_ec2::Instance> = self
                .ec2
                .cluster_instances()
                .await?
                .into_iter()
                .map(|i| (i.id.clone(), i))
                .collect();
            *self.instances.locked() = Some((std::time::Instant::now(), Arc::new(all)));
        }
        Ok(self
            .instances
            .locked()
            .as_ref()
            .and_then(|(_, all)| all.get(id).cloned()))
    }

    /// Keeps an offering out of launches for a while (a spot interruption
    /// warning for an instance of it) and recomputes the catalogue.
    pub async fn mark_unavailable(&self, itype: &str, zone: &str, capacity_type: &str) {
        self.ec2.mark_unavailable(itype, zone, capacity_type);
        tracing::info!(
            "instance-type" = %itype,
            zone = %zone,
            "capacity-type" = %capacity_type,
            ttl = ?outrigger_aws_ec2::ICE_TTL,
            "removing offering from offerings"
        );
        CloudProvider::refresh(self).await;
    }

    /// Where a claim or pool of this node class launches.
    pub fn node_class(&self, r: &NodeClassReference) -> Result<NodeClass, String> {
        node_class(&self.provisioners, &self.classes, r)
    }

    /// What a node class's selectors find now, for its status: a subnet per
    /// zone (zone -> id), and the security groups.
    pub async fn discover(
        &self,
        class: &NodeClass,
    ) -> (
        Result<BTreeMap<String, String>, String>,
        Result<Vec<String>, String>,
    ) {
        let (s, g) = self.ec2.discover(class).await;
        (s.map_err(|e| e.to_string()), g.map_err(|e| e.to_string()))
    }
}

/// The hash of an EC2NodeClass's static fields (`None` for other kinds:
/// a Provisioner's inline provider drifts only dynamically).
pub fn class_hash(classes: &Store<EC2NodeClass>, r: &NodeClassReference) -> Option<String> {
    if r.kind != "EC2NodeClass" {
        return None;
    }
    let nc = classes.find(|n| n.name_any() == r.name)?;
    Some(outrigger_disruption::drift::nodeclass_hash(
        &serde_json::to_value(&nc.spec).ok()?,
    ))
}

fn string_map(v: Option<&serde_json::Value>) -> BTreeMap<String, String> {
    v.and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A v1alpha5 Provisioner's inline provider (subnetSelector,
/// securityGroupSelector, instanceProfile, tags) or an EC2NodeClass.
pub fn node_class(
    provisioners: &Store<Provisioner>,
    classes: &Store<EC2NodeClass>,
    r: &NodeClassReference,
) -> Result<NodeClass, String> {
    match r.kind.as_str() {
        "Provisioner" => {
            let p = provisioners
                .find(|p| p.name_any() == r.name)
                .ok_or_else(|| format!("provisioner {} not found", r.name))?;
            let provider = p
                .spec
                .provider
                .as_ref()
                .ok_or_else(|| format!("provisioner {} has no provider", r.name))?;
            let subnets = string_map(provider.get("subnetSelector"));
            let groups = string_map(provider.get("securityGroupSelector"));
            if subnets.is_empty() || groups.is_empty() {
                return Err(format!(
                    "provisioner {}: provider.subnetSelector and provider.securityGroupSelector are required",
                    r.name
                ));
            }
            Ok(NodeClass {
                name: r.name.clone(),
                subnet_tags: vec![subnets],
                security_group_tags: vec![groups],
                instance_profile: provider
                    .get("instanceProfile")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
                tags: string_map(provider.get("tags")),
                ..Default::default()
            })
        }
        "EC2NodeClass" => {
            let nc = classes
                .find(|n| n.name_any() == r.name)
                .ok_or_else(|| format!("EC2NodeClass {} not found", r.name))?;
            let spec = &nc.spec;
            Ok(NodeClass {
                name: r.name.clone(),
                subnet_tags: spec
                    .subnet_selector_terms
                    .iter()
                    .filter(|t| !t.tags.is_empty())
                    .map(|t| t.tags.clone())
                    .collect(),
                subnet_ids: spec
                    .subnet_selector_terms
                    .iter()
                    .filter_map(|t| t.id.clone())
                    .collect(),
                security_group_tags: spec
                    .security_group_selector_terms
                    .iter()
                    .filter(|t| !t.tags.is_empty())
                    .map(|t| t.tags.clone())
                    .collect(),
                security_group_ids: spec
                    .security_group_selector_terms
                    .iter()
                    .filter_map(|t| t.id.clone())
                    .collect(),
                ami_id: spec.ami_selector_terms.iter().find_map(|t| t.id.clone()),
                instance_profile: spec.instance_profile.clone().or_else(|| spec.role.clone()),
                user_data: spec.user_data.clone(),
                tags: spec.tags.clone(),
            })
        }
        other => Err(format!(
            "node class kind {other} is not served (use a v1alpha5 Provisioner's inline provider or an EC2NodeClass)"
        )),
    }
}

#[async_trait]
impl CloudProvider for Aws {
    fn name(&self) -> &'static str {
        "aws"
    }

    /// EC2NodeClass, a Provisioner's inline provider, and (reported as
    /// not served) v1alpha5's AWSNodeTemplate.
    fn serves(&self, class: &NodeClassReference) -> bool {
        KINDS.contains(&class.kind.as_str())
    }

    fn class_problem(&self, class: &NodeClassReference) -> Option<String> {
        self.node_class(class).err()
    }

    fn instance_types(&self) -> Arc<Vec<InstanceType>> {
        self.types.read_locked().clone()
    }

    /// Launches the claim's instance in the node class's subnets: the
    /// claim's types cheapest first, its zones and capacity types.
    async fn create(&self, claim: &NodeClaim, labels: &Labels) -> Result<Launched, CloudError> {
        let class = self
            .node_class(&claim.spec.node_class_ref)
            .map_err(CloudError::NodeClassNotReady)?;
        let name = claim.name_any();
        let nodepool = claim
            .labels()
            .get(LABEL_NODEPOOL)
            .cloned()
            .unwrap_or_default();
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
            return Err(CloudError::InsufficientCapacity(format!(
                "no instance type of {name} has an available offering the claim allows"
            )));
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
        let request = LaunchRequest {
            claim: name.clone(),
            nodepool,
            instance_types: candidates.iter().map(|(_, t)| t.name.clone()).collect(),
            zones,
            capacity_types,
            labels: labels.clone(),
            taints: claim_taints(claim),
        };
        let inst = match self.ec2.launch(&class, &request).await {
            Ok(i) => i,
            Err(e) => {
                if matches!(e, Ec2Error::InsufficientCapacity(_)) {
                    self.refresh().await;
                }
                return Err(e.into());
            }
        };
        let it = types
            .iter()
            .find(|t| t.name == inst.instance_type)
            .or(candidates.first().map(|(_, t)| *t));
        let (capacity, allocatable) = it
            .map(|t| (t.capacity.clone(), t.allocatable()))
            .unwrap_or_default();
        let annotations = class_hash(&self.classes, &claim.spec.node_class_ref)
            .map(|h| {
                BTreeMap::from([
                    (drift::NODECLASS_HASH.to_string(), h),
                    (
                        drift::NODECLASS_HASH_VERSION.to_string(),
                        drift::HASH_VERSION.to_string(),
                    ),
                ])
            })
            .unwrap_or_default();
        Ok(Launched {
            image_id: Some(inst.image.clone()).filter(|i| !i.is_empty()),
            annotations,
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
    async fn delete(&self, claim: &NodeClaim) -> Result<(), CloudError> {
        let Some(pid) = claim.status.as_ref().and_then(|s| s.provider_id.clone()) else {
            return Err(CloudError::NotFound(format!(
                "nodeclaim {} has no instance",
                claim.name_any()
            )));
        };
        self.ec2.terminate(&pid).await?;
        if let Some(node) = claim.status.as_ref().and_then(|s| s.node_name.clone()) {
            let nodes: Api<Node> = Api::all(self.client.clone());
            match nodes.delete(&node, &Default::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn get(&self, provider_id: &str) -> Result<Instance, CloudError> {
        let id = provider_id.rsplit('/').next().unwrap_or(provider_id);
        self.list()
            .await?
            .into_iter()
            .find(|i| i.id == id)
            .ok_or_else(|| CloudError::NotFound(provider_id.to_string()))
    }

    async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        Ok(self
            .ec2
            .cluster_instances()
            .await?
            .into_iter()
            .map(|i| Instance {
                provider_id: i.provider_id(),
                id: i.id,
                claim: i.claim,
            })
            .collect())
    }

    /// Karpenter AWS's drift of the claim against its node class: the
    /// static fields' hash first (no cloud call), then its instance (from
    /// the cached listing) against what the class resolves to now.
    async fn drifted(
        &self,
        claim: &NodeClaim,
    ) -> Result<Option<outrigger_disruption::drift::DriftReason>, CloudError> {
        use outrigger_disruption::drift::{
            ClaimCloudFacts, ClassCloudFacts, CloudDriftError, HASH_VERSION, InstanceFacts,
            NODECLASS_HASH, NODECLASS_HASH_VERSION, NodeClassNow, cloud_drift, static_drift,
        };
        let r = &claim.spec.node_class_ref;
        // A node class that is gone (or cannot be read): no verdict.
        let Ok(class) = self.node_class(r) else {
            return Ok(None);
        };
        let hash = class_hash(&self.classes, r);
        let a = claim.annotations();
        let status = claim.status.clone().unwrap_or_default();
        let facts = ClaimCloudFacts {
            provider_id: status.provider_id.as_deref(),
            instance_type: claim.labels().get(LABEL_INSTANCE_TYPE).map(String::as_str),
            image_id: status.image_id.as_deref(),
            class_hash: a.get(NODECLASS_HASH).map(String::as_str),
            class_hash_version: a.get(NODECLASS_HASH_VERSION).map(String::as_str),
        };
        let nothing = NodeClassNow::default();
        let mut class_facts = ClassCloudFacts {
            hash: hash.as_deref(),
            hash_version: hash.as_ref().map(|_| HASH_VERSION),
            now: &nothing,
        };
        if let Some(reason) = static_drift(&facts, &class_facts) {
            return Ok(Some(reason));
        }
        let instance = match facts.provider_id {
            Some(pid) => self
                .instance(pid.rsplit('/').next().unwrap_or(pid))
                .await?
                .map(|i| InstanceFacts {
                    image: i.image,
                    subnet: i.subnet,
                    security_groups: i.security_groups,
                }),
            None => None,
        };
        let now = self.ec2.class_now(&class).await?;
        let now = NodeClassNow {
            images: now.images,
            subnets: now.subnets,
            security_groups: now.security_groups,
        };
        class_facts.now = &now;
        let types = self.instance_types();
        cloud_drift(&facts, Some(&class_facts), instance.as_ref(), |t| {
            types.iter().any(|x| x.name == t)
        })
        .map_err(|e| match e {
            CloudDriftError::NoProviderId | CloudDriftError::InstanceNotFound => {
                CloudError::NotFound(format!("{}: {e}", claim.name_any()))
            }
            _ => CloudError::NodeClassNotReady(e.to_string()),
        })
    }

    async fn refresh(&self) {
        match self.ec2.instance_types(&eks::Kubelet::default()).await {
            Ok(t) => *self.types.write_locked() = Arc::new(t),
            Err(e) => tracing::warn!(error = %e, "refreshing instance types"),
        }
    }
}
