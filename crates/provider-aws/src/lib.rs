//! The AWS provider of the node provisioner, through the official AWS SDK
//! for Rust (the only crate that compiles `aws-sdk-ec2`): the instance-type
//! catalogue (DescribeInstanceTypes, DescribeInstanceTypeOfferings, spot
//! prices from DescribeSpotPriceHistory, on-demand prices from a bundled
//! list), subnets and security groups found by selector, a launch template
//! per node class, CreateFleet (`instant`, one instance) over every candidate
//! type and allowed zone, insufficient-capacity offerings kept out for 45 s,
//! and TerminateInstances. `AWS_ENDPOINT_URL` points it at any EC2 endpoint.
//!
//! [`elb`] is the load balancer controller's side: ELBv2 load balancers,
//! listeners, rules and target groups, and their EC2 security groups.

pub mod elb;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
    time::{Duration, Instant},
};

use aws_sdk_ec2::{
    Client,
    types::{
        DefaultTargetCapacityType, Filter, FleetLaunchTemplateConfigRequest,
        FleetLaunchTemplateOverridesRequest, FleetLaunchTemplateSpecificationRequest,
        FleetOnDemandAllocationStrategy, FleetType, InstanceType as Ec2Type,
        LaunchTemplateIamInstanceProfileSpecificationRequest, LocationType, OnDemandOptionsRequest,
        RequestLaunchTemplateData, ResourceType, SpotAllocationStrategy, SpotOptionsRequest, Tag,
        TagSpecification, TargetCapacitySpecificationRequest,
    },
};
use outrigger_scheduling::{
    eks::{self, Ec2Shape},
    model::{CAPACITY_ON_DEMAND, CAPACITY_SPOT, InstanceType, Offering},
};

/// How long an offering that reported insufficient capacity stays out.
pub const ICE_TTL: Duration = Duration::from_secs(45);

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("EC2 {op}: {message}")]
    Api { op: &'static str, message: String },
    #[error("no subnet matches the node class's subnet selector")]
    NoSubnet,
    #[error("no security group matches the node class's security group selector")]
    NoSecurityGroup,
    #[error("no AMI found for the node class")]
    NoImage,
    #[error("no offering left to launch (insufficient capacity: {0})")]
    InsufficientCapacity(String),
}

fn api<E: std::fmt::Display>(op: &'static str) -> impl FnOnce(E) -> AwsError {
    move |e| AwsError::Api {
        op,
        message: aws_error_text(&e.to_string()),
    }
}

fn aws_error_text(s: &str) -> String {
    s.chars().take(400).collect()
}

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
}

impl Instance {
    pub fn provider_id(&self) -> String {
        format!("aws:///{}/{}", self.zone, self.id)
    }
}

pub struct Aws {
    ec2: Client,
    cluster: String,
    region: String,
    /// Subnets and launch template per node class and node labels, for a
    /// few minutes (each launch would otherwise look them all up again).
    resolved: Mutex<HashMap<String, (Instant, Resolved)>>,
    /// One lookup at a time: launches that start together wait for the
    /// first one's answer instead of repeating it.
    resolving: tokio::sync::Mutex<()>,
    /// (type, zone, capacity type) -> when it reported no capacity.
    ice: Mutex<HashMap<(String, String, String), Instant>>,
}

/// On-demand $/vCPU-hour by family prefix (a bundled list in the style of
/// the region's price list; the Pricing API lives in a few regions only).
fn on_demand_per_vcpu(name: &str) -> f64 {
    let family = name.split('.').next().unwrap_or("");
    let category: String = family
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let graviton = family.ends_with('g') || family.contains("gd") || family.contains("gn");
    let base = match category.as_str() {
        "c" => 0.0425,
        "m" => 0.048,
        "r" => 0.063,
        "t" => 0.0208,
        "x" | "z" => 0.10,
        "g" | "p" | "inf" | "trn" => 0.25,
        "i" | "d" | "h" => 0.078,
        _ => 0.05,
    };
    if graviton { base * 0.8 } else { base }
}

pub fn on_demand_price(name: &str, vcpus: i64) -> f64 {
    (on_demand_per_vcpu(name) * vcpus as f64 * 1e4).round() / 1e4
}

impl Aws {
    /// A client from the environment (region, credentials,
    /// `AWS_ENDPOINT_URL`).
    pub async fn new(cluster: &str) -> Self {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Self {
            region: conf.region().map(|r| r.to_string()).unwrap_or_default(),
            ec2: Client::new(&conf),
            cluster: cluster.to_string(),
            resolved: Mutex::new(HashMap::new()),
            resolving: tokio::sync::Mutex::new(()),
            ice: Mutex::new(HashMap::new()),
        }
    }

    /// The region's instance types with their offerings: every zone that
    /// offers a type, spot (the latest spot price, else a third of
    /// on-demand) and on-demand; offerings with recent insufficient
    /// capacity are marked unavailable.
    pub async fn instance_types(
        &self,
        kubelet: &eks::Kubelet,
    ) -> Result<Vec<InstanceType>, AwsError> {
        let mut shapes: Vec<Ec2Shape> = vec![];
        let mut pages = self
            .ec2
            .describe_instance_types()
            .into_paginator()
            .items()
            .send();
        while let Some(it) = pages.next().await {
            let it = it.map_err(api("DescribeInstanceTypes"))?;
            let Some(name) = it.instance_type().map(|t| t.as_str().to_string()) else {
                continue;
            };
            let vcpus = it
                .v_cpu_info()
                .and_then(|v| v.default_v_cpus())
                .unwrap_or(0) as i64;
            let memory_mib = it.memory_info().and_then(|m| m.size_in_mib()).unwrap_or(0);
            if vcpus == 0 || memory_mib == 0 {
                continue;
            }
            let net = it.network_info();
            let arch = it
                .processor_info()
                .and_then(|p| p.supported_architectures().first())
                .map(|a| {
                    if a.as_str() == "arm64" {
                        "arm64"
                    } else {
                        "amd64"
                    }
                })
                .unwrap_or("amd64");
            let gpus: i64 = it
                .gpu_info()
                .map(|g| g.gpus().iter().map(|d| d.count().unwrap_or(0) as i64).sum())
                .unwrap_or(0);
            shapes.push(Ec2Shape {
                name,
                vcpus,
                memory_mib,
                max_enis: net
                    .and_then(|n| n.maximum_network_interfaces())
                    .unwrap_or(3) as i64,
                ipv4_per_eni: net
                    .and_then(|n| n.ipv4_addresses_per_interface())
                    .unwrap_or(10) as i64,
                arch: arch.to_string(),
                gpus: if gpus > 0 {
                    vec![("nvidia.com/gpu".to_string(), gpus)]
                } else {
                    vec![]
                },
            });
        }
        let mut zones: HashMap<String, Vec<String>> = HashMap::new();
        let mut pages = self
            .ec2
            .describe_instance_type_offerings()
            .location_type(LocationType::AvailabilityZone)
            .into_paginator()
            .items()
            .send();
        while let Some(o) = pages.next().await {
            let o = o.map_err(api("DescribeInstanceTypeOfferings"))?;
            if let (Some(t), Some(z)) = (o.instance_type(), o.location()) {
                zones
                    .entry(t.as_str().to_string())
                    .or_default()
                    .push(z.to_string());
            }
        }
        let mut spot: HashMap<(String, String), f64> = HashMap::new();
        let mut pages = self
            .ec2
            .describe_spot_price_history()
            .product_descriptions("Linux/UNIX")
            .start_time(aws_sdk_ec2::primitives::DateTime::from(
                std::time::SystemTime::now(),
            ))
            .into_paginator()
            .items()
            .send();
        while let Some(p) = pages.next().await {
            let Ok(p) = p else { break };
            if let (Some(t), Some(z), Some(price)) = (
                p.instance_type(),
                p.availability_zone(),
                p.spot_price().and_then(|s| s.parse::<f64>().ok()),
            ) {
                spot.insert((t.as_str().to_string(), z.to_string()), price);
            }
        }
        let ice = self.ice.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let iced = |t: &str, z: &str, ct: &str| {
            ice.get(&(t.to_string(), z.to_string(), ct.to_string()))
                .is_some_and(|at| at.elapsed() < ICE_TTL)
        };
        let mut out = vec![];
        for shape in shapes {
            let Some(zs) = zones.get(&shape.name) else {
                continue;
            };
            let od = on_demand_price(&shape.name, shape.vcpus);
            let mut offerings = vec![];
            for z in zs {
                let sp = spot
                    .get(&(shape.name.clone(), z.clone()))
                    .copied()
                    .unwrap_or((od / 3.0 * 1e4).round() / 1e4);
                offerings.push(Offering {
                    zone: z.clone(),
                    capacity_type: CAPACITY_SPOT.into(),
                    price: sp,
                    available: !iced(&shape.name, z, CAPACITY_SPOT),
                });
                offerings.push(Offering {
                    zone: z.clone(),
                    capacity_type: CAPACITY_ON_DEMAND.into(),
                    price: od,
                    available: !iced(&shape.name, z, CAPACITY_ON_DEMAND),
                });
            }
            out.push(eks::instance_type(&shape, kubelet, offerings));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn tag_filters(tags: &BTreeMap<String, String>) -> Vec<Filter> {
        tags.iter()
            .map(|(k, v)| {
                if v == "*" {
                    Filter::builder().name("tag-key").values(k).build()
                } else {
                    Filter::builder().name(format!("tag:{k}")).values(v).build()
                }
            })
            .collect()
    }

    /// What a node class's selectors find now, for its status: a subnet per
    /// zone (zone -> id), and the security groups.
    pub async fn discover(
        &self,
        class: &NodeClass,
    ) -> (
        Result<BTreeMap<String, String>, AwsError>,
        Result<Vec<String>, AwsError>,
    ) {
        (self.subnets(class).await, self.security_groups(class).await)
    }

    /// Subnet per zone: the one with the most free addresses.
    async fn subnets(&self, class: &NodeClass) -> Result<BTreeMap<String, String>, AwsError> {
        let mut best: BTreeMap<String, (i32, String)> = BTreeMap::new();
        let mut queries: Vec<Vec<Filter>> =
            class.subnet_tags.iter().map(Self::tag_filters).collect();
        if !class.subnet_ids.is_empty() {
            queries.push(vec![
                Filter::builder()
                    .name("subnet-id")
                    .set_values(Some(class.subnet_ids.clone()))
                    .build(),
            ]);
        }
        for filters in queries {
            let out = self
                .ec2
                .describe_subnets()
                .set_filters(Some(filters))
                .send()
                .await
                .map_err(api("DescribeSubnets"))?;
            for s in out.subnets() {
                if let (Some(id), Some(z)) = (s.subnet_id(), s.availability_zone()) {
                    let free = s.available_ip_address_count().unwrap_or(0);
                    let e = best.entry(z.to_string()).or_insert((-1, String::new()));
                    if free > e.0 || (free == e.0 && id < e.1.as_str()) {
                        *e = (free, id.to_string());
                    }
                }
            }
        }
        if best.is_empty() {
            return Err(AwsError::NoSubnet);
        }
        Ok(best.into_iter().map(|(z, (_, id))| (z, id)).collect())
    }

    async fn security_groups(&self, class: &NodeClass) -> Result<Vec<String>, AwsError> {
        let mut ids: Vec<String> = class.security_group_ids.clone();
        for tags in &class.security_group_tags {
            let out = self
                .ec2
                .describe_security_groups()
                .set_filters(Some(Self::tag_filters(tags)))
                .send()
                .await
                .map_err(api("DescribeSecurityGroups"))?;
            ids.extend(
                out.security_groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_string)),
            );
        }
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Err(AwsError::NoSecurityGroup);
        }
        Ok(ids)
    }

    async fn image(&self, class: &NodeClass) -> Result<String, AwsError> {
        if let Some(id) = &class.ami_id {
            return Ok(id.clone());
        }
        let out = self
            .ec2
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
        images.pop().map(|(_, id)| id).ok_or(AwsError::NoImage)
    }

    /// The node class's launch template (created once; its name carries a
    /// hash of what it holds, so a change makes a new one).
    async fn launch_template(
        &self,
        class: &NodeClass,
        req: &LaunchRequest,
        security_groups: &[String],
    ) -> Result<String, AwsError> {
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
            .ec2
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
        match made {
            Ok(_) => Ok(name),
            Err(e) if format!("{e:?}").contains("AlreadyExists") => Ok(name),
            Err(e) => Err(api("CreateLaunchTemplate")(e)),
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
    ) -> Result<Instance, AwsError> {
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
                let ice = self.ice.lock().unwrap_or_else(|e| e.into_inner());
                for t in &req.instance_types {
                    for (zone, subnet) in &subnets {
                        if !allows(&req.zones, zone) {
                            continue;
                        }
                        if ice
                            .get(&(t.clone(), zone.clone(), ct.to_string()))
                            .is_some_and(|at| at.elapsed() < ICE_TTL)
                        {
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
                .ec2
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
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
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
                .ec2
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
            });
        }
        Err(AwsError::InsufficientCapacity(failures.join("; ")))
    }

    /// The node class's subnets and launch template, looked up at most
    /// every 5 minutes per class and set of node labels.
    async fn resolve(&self, class: &NodeClass, req: &LaunchRequest) -> Result<Resolved, AwsError> {
        let key = format!("{}|{:?}|{:?}", class.name, req.labels, req.taints);
        let _one = self.resolving.lock().await;
        if let Some((at, r)) = self
            .resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && at.elapsed() < Duration::from_secs(300)
        {
            return Ok(r.clone());
        }
        let subnets = self.subnets(class).await?;
        let groups = self.security_groups(class).await?;
        let template = self.launch_template(class, req, &groups).await?;
        let r = Resolved { subnets, template };
        self.resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (Instant::now(), r.clone()));
        Ok(r)
    }

    /// EC2's private DNS name for an address: `ip-a-b-c-d.ec2.internal` in
    /// us-east-1, `ip-a-b-c-d.<region>.compute.internal` elsewhere.
    fn private_dns(&self, ip: &str) -> String {
        let host = format!("ip-{}", ip.replace('.', "-"));
        if self.region == "us-east-1" {
            format!("{host}.ec2.internal")
        } else {
            format!("{host}.{}.compute.internal", self.region)
        }
    }

    /// Terminates an instance (`aws:///zone/i-...` or a bare id); gone
    /// already is fine.
    pub async fn terminate(&self, provider_id: &str) -> Result<(), AwsError> {
        let id = provider_id.rsplit('/').next().unwrap_or(provider_id);
        match self.ec2.terminate_instances().instance_ids(id).send().await {
            Ok(_) => Ok(()),
            Err(e) if format!("{e:?}").contains("InvalidInstanceID") => Ok(()),
            Err(e) => Err(api("TerminateInstances")(e)),
        }
    }

    /// Live (pending or running) instances of the cluster's node claims
    /// with these extra filters, every page.
    async fn live_instances(&self, extra: Vec<Filter>) -> Result<Vec<Instance>, AwsError> {
        let mut filters = vec![
            Filter::builder()
                .name(format!("tag:kubernetes.io/cluster/{}", self.cluster))
                .values("owned")
                .build(),
            Filter::builder()
                .name("tag-key")
                .values("karpenter.sh/nodeclaim")
                .build(),
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .build(),
        ];
        filters.extend(extra);
        let mut pages = self
            .ec2
            .describe_instances()
            .set_filters(Some(filters))
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
                });
            }
        }
        Ok(out)
    }

    /// The cluster's live node-claim instances: (instance id, its
    /// `karpenter.sh/nodeclaim` tag).
    pub async fn cluster_instances(&self) -> Result<Vec<(String, String)>, AwsError> {
        Ok(self
            .live_instances(vec![])
            .await?
            .into_iter()
            .map(|i| (i.id, i.claim))
            .collect())
    }

    /// The live instance launched for a claim, if there is one.
    pub async fn claim_instance(&self, claim: &str) -> Result<Option<Instance>, AwsError> {
        let mut found = self
            .live_instances(vec![
                Filter::builder()
                    .name("tag:karpenter.sh/nodeclaim")
                    .values(claim)
                    .build(),
            ])
            .await?;
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found.into_iter().next())
    }
}

#[derive(Clone, Debug)]
struct Resolved {
    subnets: BTreeMap<String, String>,
    template: String,
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_follow_the_family() {
        assert!((on_demand_price("m6i.xlarge", 4) - 0.192).abs() < 1e-9);
        assert!(on_demand_price("m6g.xlarge", 4) < on_demand_price("m6i.xlarge", 4));
        assert!(on_demand_price("r6i.large", 2) > on_demand_price("c6i.large", 2));
    }
}
