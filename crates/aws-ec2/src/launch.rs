//! Launching and terminating a node claim's instance: the node class's
//! subnets and security groups by selector, a launch template per class,
//! CreateFleet `instant` with every candidate type and zone as overrides,
//! the claim's instance found again by its tag, TerminateInstances.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use aws_sdk_ec2::types::{
    DefaultTargetCapacityType, FleetLaunchTemplateConfigRequest,
    FleetLaunchTemplateOverridesRequest, FleetLaunchTemplateSpecificationRequest,
    FleetOnDemandAllocationStrategy, FleetType, InstanceType as Ec2Type,
    LaunchTemplateIamInstanceProfileSpecificationRequest, OnDemandOptionsRequest,
    RequestLaunchTemplateData, ResourceType, SpotAllocationStrategy, SpotOptionsRequest,
    TagSpecification, TargetCapacitySpecificationRequest,
};
use outrigger_runtime::sync::LockExt;
use outrigger_scheduling::model::{CAPACITY_ON_DEMAND, CAPACITY_SPOT};

use crate::{Ec2, Ec2Error, Filter, ICE_TTL, api, tag};

/// How long what a node class resolves to is taken as current (drift).
const CLASS_NOW_TTL: Duration = Duration::from_secs(60);

/// Where and how a node class launches.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeClass {
    /// Name for the launch template.
    pub name: String,
    /// Each term: tags that must all match, or ids.
    pub subnet_tags: Vec<BTreeMap<String, String>>,
    pub subnet_ids: Vec<String>,
    pub security_group_tags: Vec<BTreeMap<String, String>>,
    pub security_group_ids: Vec<String>,
    pub ami_id: Option<String>,
    pub instance_profile: Option<String>,
    pub user_data: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// One node to launch.
#[derive(Clone, Debug)]
pub struct LaunchRequest {
    pub claim: String,
    pub nodepool: String,
    /// Candidate instance types, cheapest first.
    pub instance_types: Vec<String>,
    /// Allowed zones and capacity types (empty: any).
    pub zones: Vec<String>,
    pub capacity_types: Vec<String>,
    /// Node labels and taints the kubelet registers with.
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Instance {
    pub id: String,
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: String,
    pub private_dns: String,
    /// Its `karpenter.sh/nodeclaim` tag.
    pub claim: String,
    /// What it was launched with (drift compares them with its node
    /// class's now).
    pub image: String,
    pub subnet: String,
    pub security_groups: Vec<String>,
}

/// What a node class resolves to now, for drift: the image it launches
/// with, every subnet and security group its selectors find.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassNow {
    pub images: Vec<String>,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
}

impl Instance {
    pub fn provider_id(&self) -> String {
        format!("aws:///{}/{}", self.zone, self.id)
    }
}

impl Ec2 {
    /// What a node class's selectors find now, for its status: a subnet per
    /// zone (zone -> id), and the security groups.
    pub async fn discover(
        &self,
        class: &NodeClass,
    ) -> (
        Result<BTreeMap<String, String>, Ec2Error>,
        Result<Vec<String>, Ec2Error>,
    ) {
        (self.subnets(class).await, self.security_groups(class).await)
    }

    /// What the node class resolves to now (drift), looked up at most
    /// every minute per class. A change of image or security groups also
    /// drops the class's cached launch template, so a replacement launches
    /// with the new ones.
    pub async fn class_now(&self, class: &NodeClass) -> Result<ClassNow, Ec2Error> {
        // Keyed by the whole class: a changed selector is looked up at once.
        let key = format!("{class:?}");
        if let Some((at, _, now)) = self.class_now.locked().get(&key)
            && at.elapsed() < CLASS_NOW_TTL
        {
            return Ok(now.clone());
        }
        let mut subnets: Vec<String> = self
            .matching_subnets(class)
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect();
        subnets.sort();
        subnets.dedup();
        let now = ClassNow {
            images: vec![self.image(class).await?],
            subnets,
            security_groups: self.security_groups(class).await?,
        };
        let changed = {
            let mut cache = self.class_now.locked();
            // The class's last answer (this key's, or a former selector's).
            let before = cache
                .values()
                .filter(|(_, name, _)| *name == class.name)
                .max_by_key(|(at, _, _)| *at)
                .map(|(_, _, n)| n.clone());
            cache.retain(|_, (at, name, _)| *name != class.name && at.elapsed() < CLASS_NOW_TTL);
            cache.insert(key, (Instant::now(), class.name.clone(), now.clone()));
            before.is_some_and(|b| b != now)
        };
        if changed {
            let prefix = format!("{}|", class.name);
            self.resolved
                .locked()
                .retain(|k, _| !k.starts_with(&prefix));
        }
        Ok(now)
    }

    /// Every subnet the node class's selectors find.
    async fn matching_subnets(&self, class: &NodeClass) -> Result<Vec<crate::Subnet>, Ec2Error> {
        let mut queries: Vec<Vec<Filter>> = class.subnet_tags.iter().map(Filter::tags).collect();
        if !class.subnet_ids.is_empty() {
            queries.push(vec![Filter::new("subnet-id", class.subnet_ids.clone())]);
        }
        let mut out = vec![];
        for filters in queries {
            out.extend(self.describe_subnets(&filters).await?);
        }
        Ok(out)
    }

    /// Subnet per zone: the one with the most free addresses.
    async fn subnets(&self, class: &NodeClass) -> Result<BTreeMap<String, String>, Ec2Error> {
        let mut best: BTreeMap<String, (i32, String)> = BTreeMap::new();
        for s in self.matching_subnets(class).await? {
            let e = best.entry(s.zone).or_insert((-1, String::new()));
            if s.free_addresses > e.0 || (s.free_addresses == e.0 && s.id < e.1) {
                *e = (s.free_addresses, s.id);
            }
        }
        if best.is_empty() {
            return Err(Ec2Error::NoSubnet);
        }
        Ok(best.into_iter().map(|(z, (_, id))| (z, id)).collect())
    }

    async fn security_groups(&self, class: &NodeClass) -> Result<Vec<String>, Ec2Error> {
        let mut ids: Vec<String> = class.security_group_ids.clone();
        for tags in &class.security_group_tags {
            ids.extend(
                self.describe_security_groups(&Filter::tags(tags))
                    .await?
                    .into_iter()
                    .map(|g| g.id),
            );
        }
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Err(Ec2Error::NoSecurityGroup);
        }
        Ok(ids)
    }

    async fn image(&self, class: &NodeClass) -> Result<String, Ec2Error> {
        if let Some(id) = &class.ami_id {
            return Ok(id.clone());
        }
        let out = self
            .client
            .describe_images()
            .owners("amazon")
            .send()
            .await
            .map_err(api("DescribeImages"))?;
        let mut images: Vec<(String, String)> = out
            .images()
            .iter()
            .filter_map(|i| {
                Some((
                    i.creation_date().unwrap_or("").to_string(),
                    i.image_id()?.to_string(),
                ))
            })
            .collect();
        images.sort();
        images.pop().map(|(_, id)| id).ok_or(Ec2Error::NoImage)
    }

    /// The node class's launch template (created once; its name carries a
    /// hash of what it holds, so a change makes a new one).
    async fn launch_template(
        &self,
        class: &NodeClass,
        req: &LaunchRequest,
        security_groups: &[String],
    ) -> Result<String, Ec2Error> {
        let image = self.image(class).await?;
        let labels: Vec<String> = req.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut kubelet_args = format!("--node-labels={}", labels.join(","));
        if !req.taints.is_empty() {
            kubelet_args.push_str(&format!(" --register-with-taints={}", req.taints.join(",")));
        }
        let user_data = format!(
            "#!/bin/bash\n{}\n/etc/eks/bootstrap.sh '{}' --kubelet-extra-args '{}'\n",
            class.user_data.clone().unwrap_or_default(),
            self.cluster,
            kubelet_args
        );
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&image, security_groups, &user_data, &class.instance_profile).hash(&mut h);
        let name = format!("karpenter.k8s.aws/{}/{:016x}", class.name, h.finish());
        let encoded = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            user_data.as_bytes(),
        );
        let mut data = RequestLaunchTemplateData::builder()
            .image_id(image)
            .set_security_group_ids(Some(security_groups.to_vec()))
            .user_data(encoded);
        if let Some(p) = &class.instance_profile {
            data = data.iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .name(p)
                    .build(),
            );
        }
        let made = self
            .client
            .create_launch_template()
            .launch_template_name(&name)
            .launch_template_data(data.build())
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::LaunchTemplate)
                    .tags(tag(
                        &format!("kubernetes.io/cluster/{}", self.cluster),
                        "owned",
                    ))
                    .build(),
            )
            .send()
            .await;
        match made.map_err(api("CreateLaunchTemplate")) {
            Ok(_) => Ok(name),
            Err(e) if e.code().is_some_and(|c| c.contains("AlreadyExists")) => Ok(name),
            Err(e) => Err(e),
        }
    }

    /// Launches one instance for a claim: CreateFleet `instant` over every
    /// candidate type in every allowed zone's subnet; spot by
    /// price-capacity-optimized when the claim allows spot, else on-demand
    /// by lowest price. Offerings that fail for capacity are kept out for
    /// 45 s and the next capacity type is tried.
    pub async fn launch(
        &self,
        class: &NodeClass,
        req: &LaunchRequest,
    ) -> Result<Instance, Ec2Error> {
        // A launch that got as far as EC2 but not back to the claim (the
        // controller restarted) is not repeated: the claim's instance is
        // found by its tag.
        if let Some(i) = self.claim_instance(&req.claim).await? {
            return Ok(i);
        }
        let Resolved { subnets, template } = self.resolve(class, req).await?;
        let allows = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        let mut capacity_types = vec![];
        if allows(&req.capacity_types, CAPACITY_SPOT) {
            capacity_types.push(CAPACITY_SPOT);
        }
        if allows(&req.capacity_types, CAPACITY_ON_DEMAND) {
            capacity_types.push(CAPACITY_ON_DEMAND);
        }
        let mut failures = vec![];
        for ct in capacity_types {
            let mut overrides = vec![];
            {
                for t in &req.instance_types {
                    for (zone, subnet) in &subnets {
                        if !allows(&req.zones, zone) || self.iced(t, zone, ct) {
                            continue;
                        }
                        overrides.push(
                            FleetLaunchTemplateOverridesRequest::builder()
                                .instance_type(Ec2Type::from(t.as_str()))
                                .subnet_id(subnet)
                                .availability_zone(zone)
                                .build(),
                        );
                    }
                }
            }
            if overrides.is_empty() {
                continue;
            }
            let mut tags = vec![
                tag(&format!("kubernetes.io/cluster/{}", self.cluster), "owned"),
                tag("karpenter.sh/nodepool", &req.nodepool),
                tag("karpenter.sh/nodeclaim", &req.claim),
                tag("Name", &format!("{}/{}", req.nodepool, req.claim)),
            ];
            for (k, v) in &class.tags {
                tags.push(tag(k, v));
            }
            let target = TargetCapacitySpecificationRequest::builder()
                .total_target_capacity(1)
                .default_target_capacity_type(if ct == CAPACITY_SPOT {
                    DefaultTargetCapacityType::Spot
                } else {
                    DefaultTargetCapacityType::OnDemand
                })
                .build();
            let out = self
                .client
                .create_fleet()
                .r#type(FleetType::Instant)
                .target_capacity_specification(target)
                .spot_options(
                    SpotOptionsRequest::builder()
                        .allocation_strategy(SpotAllocationStrategy::PriceCapacityOptimized)
                        .build(),
                )
                .on_demand_options(
                    OnDemandOptionsRequest::builder()
                        .allocation_strategy(FleetOnDemandAllocationStrategy::LowestPrice)
                        .build(),
                )
                .launch_template_configs(
                    FleetLaunchTemplateConfigRequest::builder()
                        .launch_template_specification(
                            FleetLaunchTemplateSpecificationRequest::builder()
                                .launch_template_name(&template)
                                .version("$Latest")
                                .build(),
                        )
                        .set_overrides(Some(overrides))
                        .build(),
                )
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Instance)
                        .set_tags(Some(tags))
                        .build(),
                )
                .send()
                .await
                .map_err(api("CreateFleet"))?;
            for e in out.errors() {
                let code = e.error_code().unwrap_or("");
                if let Some(o) = e
                    .launch_template_and_overrides()
                    .and_then(|l| l.overrides())
                    && (code.contains("InsufficientInstanceCapacity")
                        || code.contains("UnfulfillableCapacity"))
                {
                    let itype = o
                        .instance_type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default();
                    let zone = o.availability_zone().unwrap_or("").to_string();
                    // Karpenter's line (it logs it at debug; info here, the
                    // only trace of a fallback that then succeeds).
                    tracing::info!(
                        pool = %req.nodepool,
                        nodeclaim = %req.claim,
                        reason = code,
                        "instance-type" = %itype,
                        zone = %zone,
                        "capacity-type" = ct,
                        ttl = ?ICE_TTL,
                        "removing offering from offerings"
                    );
                    self.ice
                        .locked()
                        .insert((itype, zone, ct.to_string()), Instant::now());
                }
                failures.push(format!("{code}: {}", e.error_message().unwrap_or("")));
            }
            let Some(first) = out.instances().first() else {
                continue;
            };
            let Some(id) = first.instance_ids().first().cloned() else {
                continue;
            };
            let zone = first
                .launch_template_and_overrides()
                .and_then(|l| l.overrides())
                .and_then(|o| o.availability_zone())
                .map(str::to_string);
            let described = self
                .client
                .describe_instances()
                .instance_ids(&id)
                .send()
                .await
                .map_err(api("DescribeInstances"))?;
            let inst = described
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .next();
            let zone = zone
                .or_else(|| {
                    inst.and_then(|i| i.placement())
                        .and_then(|p| p.availability_zone())
                        .map(str::to_string)
                })
                .unwrap_or_default();
            return Ok(Instance {
                id: id.clone(),
                instance_type: first
                    .instance_type()
                    .map(|t| t.as_str().to_string())
                    .or_else(|| {
                        inst.and_then(|i| i.instance_type())
                            .map(|t| t.as_str().to_string())
                    })
                    .unwrap_or_default(),
                zone,
                capacity_type: ct.to_string(),
                private_dns: inst
                    .and_then(|i| i.private_ip_address())
                    .map(|ip| self.private_dns(ip))
                    .or_else(|| inst.and_then(|i| i.private_dns_name()).map(str::to_string))
                    .unwrap_or_default(),
                claim: req.claim.clone(),
                image: inst
                    .and_then(|i| i.image_id())
                    .unwrap_or_default()
                    .to_string(),
                subnet: inst
                    .and_then(|i| i.subnet_id())
                    .unwrap_or_default()
                    .to_string(),
                security_groups: inst
                    .map(|i| {
                        i.security_groups()
                            .iter()
                            .filter_map(|g| g.group_id().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        Err(Ec2Error::InsufficientCapacity(failures.join("; ")))
    }

    /// The node class's subnets and launch template, looked up at most
    /// every 5 minutes per class and set of node labels.
    async fn resolve(&self, class: &NodeClass, req: &LaunchRequest) -> Result<Resolved, Ec2Error> {
        // The whole class in the key: a changed selector is resolved anew.
        let key = format!("{}|{class:?}|{:?}|{:?}", class.name, req.labels, req.taints);
        let _one = self.resolving.lock().await;
        if let Some((at, r)) = self.resolved.locked().get(&key)
            && at.elapsed() < Duration::from_secs(300)
        {
            return Ok(r.clone());
        }
        let subnets = self.subnets(class).await?;
        let groups = self.security_groups(class).await?;
        let template = self.launch_template(class, req, &groups).await?;
        let r = Resolved { subnets, template };
        self.resolved
            .locked()
            .insert(key, (Instant::now(), r.clone()));
        Ok(r)
    }

    /// Terminates an instance (`aws:///zone/i-...` or a bare id); gone
    /// already is fine.
    pub async fn terminate(&self, provider_id: &str) -> Result<(), Ec2Error> {
        let id = provider_id.rsplit('/').next().unwrap_or(provider_id);
        match self
            .client
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if format!("{e:?}").contains("InvalidInstanceID") => Ok(()),
            Err(e) => Err(api("TerminateInstances")(e)),
        }
    }

    /// Live (pending or running) instances of the cluster's node claims
    /// with these extra filters, every page.
    async fn live_instances(&self, extra: Vec<Filter>) -> Result<Vec<Instance>, Ec2Error> {
        let mut filters = vec![
            Filter::tag(&format!("kubernetes.io/cluster/{}", self.cluster), "owned"),
            Filter::tag_key("karpenter.sh/nodeclaim"),
            Filter::new("instance-state-name", ["pending", "running"]),
        ];
        filters.extend(extra);
        let mut pages = self
            .client
            .describe_instances()
            .set_filters(Some(filters.iter().map(Filter::to_sdk).collect()))
            .into_paginator()
            .send();
        let mut out = vec![];
        while let Some(page) = pages.next().await {
            let page = page.map_err(api("DescribeInstances"))?;
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                let Some(id) = i.instance_id() else { continue };
                let claim = i
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some("karpenter.sh/nodeclaim"))
                    .and_then(|t| t.value())
                    .unwrap_or("")
                    .to_string();
                out.push(Instance {
                    id: id.to_string(),
                    instance_type: i
                        .instance_type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    zone: i
                        .placement()
                        .and_then(|p| p.availability_zone())
                        .unwrap_or("")
                        .to_string(),
                    capacity_type: if i.instance_lifecycle().map(|l| l.as_str()) == Some("spot") {
                        CAPACITY_SPOT.to_string()
                    } else {
                        CAPACITY_ON_DEMAND.to_string()
                    },
                    private_dns: i
                        .private_ip_address()
                        .map(|ip| self.private_dns(ip))
                        .or_else(|| i.private_dns_name().map(str::to_string))
                        .unwrap_or_default(),
                    claim,
                    image: i.image_id().unwrap_or_default().to_string(),
                    subnet: i.subnet_id().unwrap_or_default().to_string(),
                    security_groups: i
                        .security_groups()
                        .iter()
                        .filter_map(|g| g.group_id().map(str::to_string))
                        .collect(),
                });
            }
        }
        Ok(out)
    }

    /// The cluster's live node-claim instances (each with its
    /// `karpenter.sh/nodeclaim` tag).
    pub async fn cluster_instances(&self) -> Result<Vec<Instance>, Ec2Error> {
        self.live_instances(vec![]).await
    }

    /// The live instance launched for a claim, if there is one.
    pub async fn claim_instance(&self, claim: &str) -> Result<Option<Instance>, Ec2Error> {
        let mut found = self
            .live_instances(vec![Filter::tag("karpenter.sh/nodeclaim", claim)])
            .await?;
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found.into_iter().next())
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    subnets: BTreeMap<String, String>,
    template: String,
}
