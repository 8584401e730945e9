//! Load balancers through ELBv2, and their security groups through EC2: a
//! [`Stack`] from `outrigger-lb-model` made real with the fewest calls.
//!
//! What exists is found by the ownership tags (`elbv2.k8s.aws/cluster`, the
//! stack tag, the resource tag) in an inventory listed once and kept current
//! by this process's own changes (it is the only writer, being the leader);
//! a `NotFound` from ELBv2 or a periodic [`Elb::refresh`] lists it again.
//! What a deploy last applied to a listener set, a target group's attributes
//! or its targets is remembered, so an unchanged stack costs no calls.
//! ELBv2 and EC2 calls are counted ([`Elb::calls`], [`Elb::ec2_calls`]) by
//! the shared interceptor ([`outrigger_aws::Calls`]), and retried by the
//! shared policy (10 attempts, like the AWS Load Balancer Controller). EC2
//! (subnets, security groups) is reached through `outrigger-aws-ec2`.

mod convert;

use outrigger_runtime::sync::LockExt;
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Mutex,
    time::{Duration, Instant},
};

use aws_sdk_elasticloadbalancingv2::{
    self as elbv2,
    error::ProvideErrorMetadata,
    types::{
        Certificate, IpAddressType as SdkIpType, LoadBalancerAttribute, LoadBalancerSchemeEnum,
        LoadBalancerTypeEnum, Matcher, ProtocolEnum, SubnetMapping, Tag, TargetDescription,
        TargetGroupAttribute, TargetGroupIpAddressTypeEnum, TargetTypeEnum,
    },
};
use outrigger_lb_model::model::{
    Action, Condition, Listener, LoadBalancerType, Protocol, SecurityGroup, SecurityGroupRule,
    Stack, StackId, Subnets, TAG_CLUSTER, Target, TargetGroup,
};

pub use convert::{canonical_action, canonical_conditions};
use outrigger_aws::{ApiError, Calls};
use outrigger_aws_ec2::{Ec2, Ec2Error, Filter, SgRule};

/// The SDK's name for ELBv2 in [`Calls`].
pub const SERVICE: &str = "Elastic Load Balancing v2";

/// Most targets in one RegisterTargets / DeregisterTargets call.
const TARGET_CHUNK: usize = 200;
/// How long subnets and security groups found by tags or names are reused.
const LOOKUP_TTL: Duration = Duration::from_secs(60);
/// The resource tag value of a stack's load balancer.
pub const RESOURCE_LOAD_BALANCER: &str = "LoadBalancer";
/// The resource tag value of a stack's managed security group.
pub const RESOURCE_MANAGED_SG: &str = "ManagedLBSecurityGroup";

#[derive(Debug, thiserror::Error)]
pub enum ElbError {
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error(
        "no subnet found for a {scheme} load balancer: tag subnets kubernetes.io/role/{role}=1 (or name them with the subnets annotation)"
    )]
    NoSubnets {
        scheme: &'static str,
        role: &'static str,
    },
    #[error("subnet {0} not found")]
    SubnetNotFound(String),
    #[error("security group {0} not found")]
    SecurityGroupNotFound(String),
    #[error("the subnets are in different VPCs")]
    SeveralVpcs,
    #[error("target group {0} is referenced by a rule but not part of the stack")]
    UnknownTargetGroup(String),
    #[error("{0}")]
    Ec2(String),
}

impl From<Ec2Error> for ElbError {
    fn from(e: Ec2Error) -> Self {
        match e {
            Ec2Error::Api(a) => ElbError::Api(a),
            other => ElbError::Ec2(other.to_string()),
        }
    }
}

impl ElbError {
    /// An ELBv2 or EC2 error code (`TooManyRules`, `DependencyViolation`...).
    pub fn code(&self) -> Option<&str> {
        match self {
            ElbError::Api(e) => Some(&e.code),
            _ => None,
        }
    }
}

fn api<E: ProvideErrorMetadata + std::fmt::Display>(
    op: &'static str,
) -> impl FnOnce(E) -> ElbError {
    outrigger_aws::api(op)
}

fn sg_rule(r: &SecurityGroupRule) -> SgRule {
    SgRule {
        protocol: r.protocol.clone(),
        from_port: r.from_port,
        to_port: r.to_port,
        cidr: r.cidr.clone(),
    }
}

fn model_rule(r: SgRule) -> SecurityGroupRule {
    SecurityGroupRule {
        protocol: r.protocol,
        from_port: r.from_port,
        to_port: r.to_port,
        cidr: r.cidr,
    }
}

fn not_found(e: &ElbError) -> bool {
    matches!(
        e.code(),
        Some(
            "LoadBalancerNotFound"
                | "TargetGroupNotFound"
                | "ListenerNotFound"
                | "RuleNotFound"
                | "InvalidGroup.NotFound"
        )
    )
}

/// What a deploy made: the load balancer's DNS name and ARN, and each target
/// group's ARN by its resource id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployed {
    pub dns_name: String,
    pub load_balancer_arn: String,
    pub target_groups: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
struct LbInfo {
    name: String,
    dns_name: String,
    kind: String,
    scheme: String,
    ip_address_type: String,
    subnets: BTreeSet<String>,
    security_groups: BTreeSet<String>,
    tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
struct TgInfo {
    name: String,
    health: Vec<String>,
    tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
struct SgInfo {
    tags: BTreeMap<String, String>,
    rules: BTreeSet<SecurityGroupRule>,
}

/// The cluster's load balancers, target groups and security groups.
#[derive(Default)]
struct Inventory {
    loaded: bool,
    lbs: BTreeMap<String, LbInfo>,
    tgs: BTreeMap<String, TgInfo>,
    sgs: BTreeMap<String, SgInfo>,
}

/// What was last applied, to skip calls for what did not change.
#[derive(Default)]
struct Applied {
    /// Load balancer ARN -> the fingerprint of its listeners and rules as
    /// last applied, and what they are in ELBv2 (ARNs included), so the
    /// next change needs no Describe call.
    listeners: HashMap<String, (String, BTreeMap<i32, ListenerState>)>,
    /// Load balancer ARN -> its attributes.
    lb_attributes: HashMap<String, BTreeMap<String, String>>,
    /// Target group ARN -> its attributes.
    tg_attributes: HashMap<String, BTreeMap<String, String>>,
    /// Target group ARN -> its registered targets.
    targets: HashMap<String, BTreeSet<Target>>,
}

#[derive(Clone, Debug)]
struct SubnetInfo {
    id: String,
    zone: String,
    vpc: String,
}

pub struct Elb {
    elbv2: elbv2::Client,
    ec2: Ec2,
    calls: Calls,
    cluster: String,
    inventory: Mutex<Inventory>,
    applied: Mutex<Applied>,
    /// Subnets by what selected them, security group IDs by their names:
    /// looked up again after [`LOOKUP_TTL`].
    subnets: Mutex<HashMap<String, (Instant, Vec<SubnetInfo>)>>,
    security_groups: Mutex<HashMap<String, (Instant, Vec<String>)>>,
}

fn tags_map<'a>(
    tags: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    tags.filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string())))
        .collect()
}

fn owned_by(tags: &BTreeMap<String, String>, id: &StackId, resource: &str) -> bool {
    tags.get(id.tag_key()) == Some(&id.tag_value())
        && tags.get(id.resource_tag_key()).map(String::as_str) == Some(resource)
}

fn in_stack(tags: &BTreeMap<String, String>, id: &StackId) -> bool {
    tags.get(id.tag_key()) == Some(&id.tag_value())
}

fn health_key(tg: &TargetGroup) -> Vec<String> {
    let h = &tg.health_check;
    vec![
        h.protocol.as_str().to_string(),
        h.port.clone(),
        h.path.clone().unwrap_or_default(),
        h.interval_seconds.to_string(),
        h.timeout_seconds.to_string(),
        h.healthy_threshold.to_string(),
        h.unhealthy_threshold.to_string(),
        h.matcher.clone().unwrap_or_default(),
    ]
}

fn health_key_of(t: &elbv2::types::TargetGroup) -> Vec<String> {
    vec![
        t.health_check_protocol()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        t.health_check_port().unwrap_or_default().to_string(),
        t.health_check_path().unwrap_or_default().to_string(),
        t.health_check_interval_seconds().unwrap_or(0).to_string(),
        t.health_check_timeout_seconds().unwrap_or(0).to_string(),
        t.healthy_threshold_count().unwrap_or(0).to_string(),
        t.unhealthy_threshold_count().unwrap_or(0).to_string(),
        t.matcher()
            .and_then(|m| m.http_code().or(m.grpc_code()))
            .unwrap_or_default()
            .to_string(),
    ]
}

fn sdk_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// A listener as compared: everything but its ARN, target groups by ARN.
#[derive(Clone, Debug, PartialEq)]
struct ListenerKey {
    protocol: String,
    certificates: BTreeSet<String>,
    ssl_policy: Option<String>,
    alpn: Option<String>,
    default_action: Option<Action>,
}

#[derive(Clone, Debug, PartialEq)]
struct RuleKey {
    conditions: Vec<Condition>,
    action: Option<Action>,
}

/// A listener as it is in ELBv2; its rules by priority, when known.
#[derive(Clone, Debug)]
struct ListenerState {
    arn: String,
    key: ListenerKey,
    rules: Option<BTreeMap<i32, (String, RuleKey)>>,
}

impl Elb {
    /// A client from the environment (region, credentials,
    /// `AWS_ENDPOINT_URL`), retrying throttling and transient errors.
    pub async fn new(cluster: &str) -> Self {
        let conf = outrigger_aws::config().await;
        let calls = Calls::new();
        let elbv2 = elbv2::Client::from_conf(
            elbv2::config::Builder::from(&conf)
                .interceptor(calls.clone())
                .build(),
        );
        Self {
            elbv2,
            ec2: Ec2::with_config(cluster, &conf, calls.clone()),
            calls,
            cluster: cluster.to_string(),
            inventory: Mutex::new(Inventory::default()),
            applied: Mutex::new(Applied::default()),
            subnets: Mutex::new(HashMap::new()),
            security_groups: Mutex::new(HashMap::new()),
        }
    }

    /// ELBv2 calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.total(SERVICE)
    }

    /// EC2 calls made so far (subnets, security groups).
    pub fn ec2_calls(&self) -> u64 {
        self.calls.total(outrigger_aws_ec2::SERVICE)
    }

    /// Lists everything tagged for the cluster again and forgets what was
    /// applied (a resync).
    pub async fn refresh(&self) -> Result<(), ElbError> {
        let inv = self.list().await?;
        *self.inventory.locked() = inv;
        *self.applied.locked() = Applied::default();
        Ok(())
    }

    async fn ensure_inventory(&self) -> Result<(), ElbError> {
        let loaded = self.inventory.locked().loaded;
        if !loaded {
            self.refresh().await?;
        }
        Ok(())
    }

    fn invalidate(&self) {
        self.inventory.locked().loaded = false;
    }

    async fn tags_of(
        &self,
        arns: &[String],
    ) -> Result<HashMap<String, BTreeMap<String, String>>, ElbError> {
        let mut out = HashMap::new();
        for chunk in arns.chunks(20) {
            let r = self
                .elbv2
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(api("DescribeTags"))?;
            for d in r.tag_descriptions() {
                if let Some(arn) = d.resource_arn() {
                    out.insert(
                        arn.to_string(),
                        tags_map(d.tags().iter().map(|t| (t.key(), t.value()))),
                    );
                }
            }
        }
        Ok(out)
    }

    /// The ELBv2 resources tagged for this cluster, with their ARNs and tags.
    async fn of_cluster<T>(
        &self,
        items: Vec<T>,
        arn_of: impl Fn(&T) -> Option<&str>,
    ) -> Result<Vec<(String, T, BTreeMap<String, String>)>, ElbError> {
        let arns: Vec<String> = items
            .iter()
            .filter_map(|i| arn_of(i).map(str::to_string))
            .collect();
        let mut tags = self.tags_of(&arns).await?;
        Ok(items
            .into_iter()
            .filter_map(|i| {
                let arn = arn_of(&i)?.to_string();
                let t = tags.remove(&arn)?;
                (t.get(TAG_CLUSTER) == Some(&self.cluster)).then_some((arn, i, t))
            })
            .collect())
    }

    async fn list(&self) -> Result<Inventory, ElbError> {
        let mut inv = Inventory {
            loaded: true,
            ..Default::default()
        };
        let mut lbs = vec![];
        let mut pages = self
            .elbv2
            .describe_load_balancers()
            .page_size(400)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            lbs.extend(
                page.map_err(api("DescribeLoadBalancers"))?
                    .load_balancers()
                    .iter()
                    .cloned(),
            );
        }
        for (arn, l, t) in self.of_cluster(lbs, |l| l.load_balancer_arn()).await? {
            inv.lbs.insert(
                arn,
                LbInfo {
                    name: l.load_balancer_name().unwrap_or_default().to_string(),
                    dns_name: l.dns_name().unwrap_or_default().to_string(),
                    kind: l
                        .r#type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    scheme: l
                        .scheme()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    ip_address_type: l
                        .ip_address_type()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    subnets: l
                        .availability_zones()
                        .iter()
                        .filter_map(|z| z.subnet_id().map(str::to_string))
                        .collect(),
                    security_groups: l.security_groups().iter().cloned().collect(),
                    tags: t,
                },
            );
        }
        let mut tgs = vec![];
        let mut pages = self
            .elbv2
            .describe_target_groups()
            .page_size(400)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            tgs.extend(
                page.map_err(api("DescribeTargetGroups"))?
                    .target_groups()
                    .iter()
                    .cloned(),
            );
        }
        for (arn, t, tg_tags) in self.of_cluster(tgs, |t| t.target_group_arn()).await? {
            inv.tgs.insert(
                arn,
                TgInfo {
                    name: t.target_group_name().unwrap_or_default().to_string(),
                    health: health_key_of(&t),
                    tags: tg_tags,
                },
            );
        }
        for g in self
            .ec2
            .describe_security_groups(&[Filter::tag(TAG_CLUSTER, &self.cluster)])
            .await?
        {
            inv.sgs.insert(
                g.id,
                SgInfo {
                    tags: g.tags,
                    rules: g.ingress.into_iter().map(model_rule).collect(),
                },
            );
        }
        Ok(inv)
    }

    /// The stacks that own something in AWS, by their stack tag (key,
    /// value): for garbage collection.
    pub async fn stacks(&self) -> Result<BTreeSet<(String, String)>, ElbError> {
        self.ensure_inventory().await?;
        let inv = self.inventory.locked();
        let keys = [
            outrigger_lb_model::model::TAG_SERVICE_STACK,
            outrigger_lb_model::model::TAG_INGRESS_STACK,
        ];
        let all = inv
            .lbs
            .values()
            .map(|l| &l.tags)
            .chain(inv.tgs.values().map(|t| &t.tags))
            .chain(inv.sgs.values().map(|s| &s.tags));
        let mut out = BTreeSet::new();
        for tags in all {
            for k in keys {
                if let Some(v) = tags.get(k) {
                    out.insert((k.to_string(), v.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Makes AWS match the stack; `targets` by target group resource id.
    pub async fn deploy(
        &self,
        stack: &Stack,
        targets: &BTreeMap<String, Vec<Target>>,
    ) -> Result<Deployed, ElbError> {
        self.ensure_inventory().await?;
        let r = self.deploy_once(stack, targets).await;
        if let Err(e) = &r
            && not_found(e)
        {
            // Something changed behind our back: list again next time.
            self.invalidate();
        }
        r
    }

    async fn deploy_once(
        &self,
        stack: &Stack,
        targets: &BTreeMap<String, Vec<Target>>,
    ) -> Result<Deployed, ElbError> {
        let lb = &stack.load_balancer;
        let subnets = self.subnets_for(stack).await?;
        let vpc = subnets.first().map(|s| s.vpc.clone()).unwrap_or_default();
        if subnets.iter().any(|s| s.vpc != vpc) {
            return Err(ElbError::SeveralVpcs);
        }
        // Security groups: the managed one, and the ones named.
        let mut security_groups = vec![];
        if let Some(sg) = &stack.managed_security_group {
            security_groups.push(self.ensure_security_group(&stack.id, sg, &vpc).await?);
        }
        if !lb.security_groups.is_empty() {
            security_groups.extend(
                self.resolve_security_groups(&lb.security_groups, &vpc)
                    .await?,
            );
        }
        // Target groups first: listeners point at them.
        let mut tg_arns = BTreeMap::new();
        for tg in &stack.target_groups {
            let arn = self.ensure_target_group(&stack.id, tg, &vpc).await?;
            tg_arns.insert(tg.resource_id.clone(), arn);
        }
        let (lb_arn, dns_name, created) = self
            .ensure_load_balancer(stack, &subnets, &security_groups)
            .await?;
        self.ensure_listeners(&lb_arn, created, &stack.listeners, &tg_arns)
            .await?;
        for tg in &stack.target_groups {
            let arn = &tg_arns[&tg.resource_id];
            let want: BTreeSet<Target> = targets
                .get(&tg.resource_id)
                .map(|t| t.iter().cloned().collect())
                .unwrap_or_default();
            self.sync_targets(arn, &want).await?;
        }
        // Target groups of this stack no longer wanted, now that no rule
        // points at them.
        let stale: Vec<String> = {
            let inv = self.inventory.locked();
            let keep: BTreeSet<&String> = tg_arns.values().collect();
            inv.tgs
                .iter()
                .filter(|(arn, t)| in_stack(&t.tags, &stack.id) && !keep.contains(arn))
                .map(|(arn, _)| arn.clone())
                .collect()
        };
        for arn in stale {
            self.delete_target_group(&arn).await?;
        }
        Ok(Deployed {
            dns_name,
            load_balancer_arn: lb_arn,
            target_groups: tg_arns,
        })
    }

    /// One subnet per zone: the ones named, or those tagged for the scheme's
    /// role (and, when tagged for clusters, for this one); reused for
    /// [`LOOKUP_TTL`].
    async fn subnets_for(&self, stack: &Stack) -> Result<Vec<SubnetInfo>, ElbError> {
        let lb = &stack.load_balancer;
        let key = format!("{:?}/{}", lb.subnets, lb.scheme.as_str());
        if let Some((at, s)) = self.subnets.locked().get(&key)
            && at.elapsed() < LOOKUP_TTL
        {
            return Ok(s.clone());
        }
        let found = self.lookup_subnets(stack).await?;
        self.subnets
            .locked()
            .insert(key, (Instant::now(), found.clone()));
        Ok(found)
    }

    async fn lookup_subnets(&self, stack: &Stack) -> Result<Vec<SubnetInfo>, ElbError> {
        let lb = &stack.load_balancer;
        match &lb.subnets {
            Subnets::Named(names) => {
                let (ids, tags): (Vec<&String>, Vec<&String>) =
                    names.iter().partition(|n| n.starts_with("subnet-"));
                let mut found = vec![];
                if !ids.is_empty() {
                    let got = self
                        .ec2
                        .describe_subnets(&[Filter::new(
                            "subnet-id",
                            ids.iter().map(|s| s.as_str()),
                        )])
                        .await?;
                    found.extend(got.into_iter().map(subnet_info));
                    for id in &ids {
                        if !found.iter().any(|s: &SubnetInfo| &s.id == *id) {
                            return Err(ElbError::SubnetNotFound(id.to_string()));
                        }
                    }
                }
                if !tags.is_empty() {
                    let named: Vec<SubnetInfo> = self
                        .ec2
                        .describe_subnets(&[Filter::new(
                            "tag:Name",
                            tags.iter().map(|s| s.as_str()),
                        )])
                        .await?
                        .into_iter()
                        .map(subnet_info)
                        .collect();
                    if let Some(n) = tags.first()
                        && named.is_empty()
                    {
                        return Err(ElbError::SubnetNotFound(n.to_string()));
                    }
                    found.extend(named);
                }
                Ok(found)
            }
            Subnets::Tagged(tags) => {
                let filters: Vec<Filter> = tags
                    .iter()
                    .map(|(k, v)| Filter::new(format!("tag:{k}"), v.iter().map(String::as_str)))
                    .collect();
                let found = one_per_zone(
                    self.ec2
                        .describe_subnets(&filters)
                        .await?
                        .into_iter()
                        .map(subnet_info),
                );
                if found.is_empty() {
                    return Err(ElbError::SubnetNotFound(format!("tagged {tags:?}")));
                }
                Ok(found)
            }
            Subnets::Discover => {
                let role = match lb.scheme {
                    outrigger_lb_model::model::Scheme::InternetFacing => "elb",
                    outrigger_lb_model::model::Scheme::Internal => "internal-elb",
                };
                let role_tag = format!("kubernetes.io/role/{role}");
                let cluster_tag = format!("kubernetes.io/cluster/{}", self.cluster);
                let mut by_zone: BTreeMap<String, SubnetInfo> = BTreeMap::new();
                for s in self
                    .ec2
                    .describe_subnets(&[Filter::tag_key(&role_tag)])
                    .await?
                {
                    if !matches!(s.tags.get(&role_tag).map(String::as_str), Some("" | "1")) {
                        continue;
                    }
                    // Tagged for some cluster: only for this one.
                    let for_clusters = s
                        .tags
                        .keys()
                        .any(|k| k.starts_with("kubernetes.io/cluster/"));
                    if for_clusters && !s.tags.contains_key(&cluster_tag) {
                        continue;
                    }
                    let info = subnet_info(s);
                    // One per zone: the first by ID, so the choice is stable.
                    let keep = by_zone.get(&info.zone).is_none_or(|o| info.id < o.id);
                    if keep {
                        by_zone.insert(info.zone.clone(), info);
                    }
                }
                let found: Vec<SubnetInfo> = by_zone.into_values().collect();
                if found.is_empty() {
                    return Err(ElbError::NoSubnets {
                        scheme: lb.scheme.as_str(),
                        role,
                    });
                }
                Ok(found)
            }
        }
    }

    /// Security group IDs for IDs or Name tags; reused for [`LOOKUP_TTL`].
    async fn resolve_security_groups(
        &self,
        names: &[String],
        vpc: &str,
    ) -> Result<Vec<String>, ElbError> {
        let key = format!("{vpc}/{}", names.join(","));
        if let Some((at, s)) = self.security_groups.locked().get(&key)
            && at.elapsed() < LOOKUP_TTL
        {
            return Ok(s.clone());
        }
        let found = self.lookup_security_groups(names, vpc).await?;
        self.security_groups
            .locked()
            .insert(key, (Instant::now(), found.clone()));
        Ok(found)
    }

    async fn lookup_security_groups(
        &self,
        names: &[String],
        vpc: &str,
    ) -> Result<Vec<String>, ElbError> {
        let (ids, named): (Vec<&String>, Vec<&String>) =
            names.iter().partition(|n| n.starts_with("sg-"));
        let mut out: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        if !named.is_empty() {
            let groups = self
                .ec2
                .describe_security_groups(&[
                    Filter::new("tag:Name", named.iter().map(|s| s.as_str())),
                    Filter::new("vpc-id", [vpc]),
                ])
                .await?;
            for n in &named {
                let hit = groups
                    .iter()
                    .find(|g| g.tags.get("Name").map(String::as_str) == Some(n.as_str()));
                match hit {
                    Some(g) => out.push(g.id.clone()),
                    None => return Err(ElbError::SecurityGroupNotFound(n.to_string())),
                }
            }
        }
        Ok(out)
    }

    async fn ensure_security_group(
        &self,
        id: &StackId,
        sg: &SecurityGroup,
        vpc: &str,
    ) -> Result<String, ElbError> {
        let existing = {
            let inv = self.inventory.locked();
            inv.sgs
                .iter()
                .find(|(_, s)| owned_by(&s.tags, id, RESOURCE_MANAGED_SG))
                .map(|(gid, s)| (gid.clone(), s.rules.clone()))
        };
        let (gid, have) = match existing {
            Some(x) => x,
            None => {
                let gid = self
                    .ec2
                    .create_security_group(&sg.name, &sg.description, vpc, &sg.tags)
                    .await?;
                tracing::info!(security_group = %gid, name = %sg.name, "created securityGroup");
                self.inventory.locked().sgs.insert(
                    gid.clone(),
                    SgInfo {
                        tags: sg.tags.clone(),
                        rules: BTreeSet::new(),
                    },
                );
                (gid, BTreeSet::new())
            }
        };
        let want: BTreeSet<SecurityGroupRule> = sg.ingress.iter().cloned().collect();
        let add: Vec<&SecurityGroupRule> = want.difference(&have).collect();
        let remove: Vec<&SecurityGroupRule> = have.difference(&want).collect();
        let add: Vec<SgRule> = add.into_iter().map(sg_rule).collect();
        let remove: Vec<SgRule> = remove.into_iter().map(sg_rule).collect();
        self.ec2.authorize_ingress(&gid, &add).await?;
        self.ec2.revoke_ingress(&gid, &remove).await?;
        if let Some(s) = self.inventory.locked().sgs.get_mut(&gid) {
            s.rules = want;
        }
        Ok(gid)
    }

    async fn ensure_target_group(
        &self,
        id: &StackId,
        tg: &TargetGroup,
        vpc: &str,
    ) -> Result<String, ElbError> {
        let existing = {
            let inv = self.inventory.locked();
            inv.tgs
                .iter()
                .find(|(_, t)| owned_by(&t.tags, id, &tg.resource_id) && t.name == tg.name)
                .map(|(arn, t)| (arn.clone(), t.health.clone()))
        };
        let hc = &tg.health_check;
        let matcher = hc.matcher.as_ref().map(|m| {
            if tg.protocol_version.as_deref() == Some("GRPC") {
                Matcher::builder().grpc_code(m).build()
            } else {
                Matcher::builder().http_code(m).build()
            }
        });
        let mut created = false;
        let arn = match existing {
            Some((arn, health)) => {
                if health != health_key(tg) {
                    self.elbv2
                        .modify_target_group()
                        .target_group_arn(&arn)
                        .health_check_protocol(ProtocolEnum::from(hc.protocol.as_str()))
                        .health_check_port(&hc.port)
                        .set_health_check_path(hc.path.clone())
                        .health_check_interval_seconds(hc.interval_seconds)
                        .health_check_timeout_seconds(hc.timeout_seconds)
                        .healthy_threshold_count(hc.healthy_threshold)
                        .unhealthy_threshold_count(hc.unhealthy_threshold)
                        .set_matcher(matcher)
                        .send()
                        .await
                        .map_err(api("ModifyTargetGroup"))?;
                    if let Some(t) = self.inventory.locked().tgs.get_mut(&arn) {
                        t.health = health_key(tg);
                    }
                }
                arn
            }
            None => {
                let r = self
                    .elbv2
                    .create_target_group()
                    .name(&tg.name)
                    .protocol(ProtocolEnum::from(tg.protocol.as_str()))
                    .set_protocol_version(tg.protocol_version.clone())
                    .port(tg.port)
                    .vpc_id(vpc)
                    .target_type(TargetTypeEnum::from(tg.target_type.as_str()))
                    .ip_address_type(TargetGroupIpAddressTypeEnum::from(
                        match tg.ip_address_type {
                            outrigger_lb_model::model::IpAddressType::Ipv4 => "ipv4",
                            _ => "ipv6",
                        },
                    ))
                    .health_check_protocol(ProtocolEnum::from(hc.protocol.as_str()))
                    .health_check_port(&hc.port)
                    .set_health_check_path(hc.path.clone())
                    .health_check_interval_seconds(hc.interval_seconds)
                    .health_check_timeout_seconds(hc.timeout_seconds)
                    .healthy_threshold_count(hc.healthy_threshold)
                    .unhealthy_threshold_count(hc.unhealthy_threshold)
                    .set_matcher(matcher)
                    .set_tags(Some(sdk_tags(&tg.tags)))
                    .send()
                    .await
                    .map_err(api("CreateTargetGroup"))?;
                let arn = r
                    .target_groups()
                    .first()
                    .and_then(|t| t.target_group_arn())
                    .unwrap_or_default()
                    .to_string();
                tracing::info!(arn = %arn, name = %tg.name, "created targetGroup");
                self.inventory.locked().tgs.insert(
                    arn.clone(),
                    TgInfo {
                        name: tg.name.clone(),
                        health: health_key(tg),
                        tags: tg.tags.clone(),
                    },
                );
                created = true;
                // Nothing registered yet: no DescribeTargetHealth needed.
                self.applied
                    .locked()
                    .targets
                    .insert(arn.clone(), BTreeSet::new());
                arn
            }
        };
        // A new group already has ELBv2's defaults: only other values
        // need a call.
        let needed = !created
            || tg
                .attributes
                .iter()
                .any(|(k, v)| target_group_default(k) != Some(v.as_str()));
        let done = self.applied.locked().tg_attributes.get(&arn) == Some(&tg.attributes);
        if !done {
            if !tg.attributes.is_empty() && needed {
                self.elbv2
                    .modify_target_group_attributes()
                    .target_group_arn(&arn)
                    .set_attributes(Some(
                        tg.attributes
                            .iter()
                            .map(|(k, v)| TargetGroupAttribute::builder().key(k).value(v).build())
                            .collect(),
                    ))
                    .send()
                    .await
                    .map_err(api("ModifyTargetGroupAttributes"))?;
            }
            self.applied
                .locked()
                .tg_attributes
                .insert(arn.clone(), tg.attributes.clone());
        }
        Ok(arn)
    }

    /// The load balancer's ARN, DNS name, and whether it was created now.
    async fn ensure_load_balancer(
        &self,
        stack: &Stack,
        subnets: &[SubnetInfo],
        security_groups: &[String],
    ) -> Result<(String, String, bool), ElbError> {
        let lb = &stack.load_balancer;
        let existing: Vec<(String, LbInfo)> = {
            let inv = self.inventory.locked();
            inv.lbs
                .iter()
                .filter(|(_, l)| owned_by(&l.tags, &stack.id, RESOURCE_LOAD_BALANCER))
                .map(|(a, l)| (a.clone(), l.clone()))
                .collect()
        };
        let mut current = None;
        for (arn, info) in existing {
            // What cannot change in place (name, type, scheme) makes a new
            // load balancer; the old one goes.
            if current.is_none()
                && info.name == lb.name
                && info.kind == lb.kind.as_str()
                && info.scheme == lb.scheme.as_str()
            {
                current = Some((arn, info));
            } else {
                tracing::info!(arn = %arn, "deleting loadBalancer replaced by a new one");
                self.delete_load_balancer(&arn).await?;
            }
        }
        let subnet_ids: BTreeSet<String> = subnets.iter().map(|s| s.id.clone()).collect();
        let sgs: BTreeSet<String> = security_groups.iter().cloned().collect();
        let (arn, dns, created) = match current {
            Some((arn, info)) => {
                if lb.kind == LoadBalancerType::Application && info.subnets != subnet_ids {
                    self.elbv2
                        .set_subnets()
                        .load_balancer_arn(&arn)
                        .set_subnets(Some(subnet_ids.iter().cloned().collect()))
                        .send()
                        .await
                        .map_err(api("SetSubnets"))?;
                }
                if !sgs.is_empty() && info.security_groups != sgs {
                    self.elbv2
                        .set_security_groups()
                        .load_balancer_arn(&arn)
                        .set_security_groups(Some(sgs.iter().cloned().collect()))
                        .send()
                        .await
                        .map_err(api("SetSecurityGroups"))?;
                }
                if info.ip_address_type != lb.ip_address_type.as_str() {
                    self.elbv2
                        .set_ip_address_type()
                        .load_balancer_arn(&arn)
                        .ip_address_type(SdkIpType::from(lb.ip_address_type.as_str()))
                        .send()
                        .await
                        .map_err(api("SetIpAddressType"))?;
                }
                if let Some(l) = self.inventory.locked().lbs.get_mut(&arn) {
                    l.subnets = subnet_ids.clone();
                    if !sgs.is_empty() {
                        l.security_groups = sgs.clone();
                    }
                    l.ip_address_type = lb.ip_address_type.as_str().to_string();
                }
                (arn, info.dns_name, false)
            }
            None => {
                let mut req = self
                    .elbv2
                    .create_load_balancer()
                    .name(&lb.name)
                    .r#type(LoadBalancerTypeEnum::from(lb.kind.as_str()))
                    .scheme(LoadBalancerSchemeEnum::from(lb.scheme.as_str()))
                    .ip_address_type(SdkIpType::from(lb.ip_address_type.as_str()))
                    .set_tags(Some(sdk_tags(&lb.tags)));
                if !sgs.is_empty() {
                    req = req.set_security_groups(Some(sgs.iter().cloned().collect()));
                }
                if lb.eip_allocations.is_empty() && lb.private_ipv4_addresses.is_empty() {
                    req = req.set_subnets(Some(subnets.iter().map(|s| s.id.clone()).collect()));
                } else {
                    let mappings = subnets
                        .iter()
                        .enumerate()
                        .map(|(i, s)| {
                            SubnetMapping::builder()
                                .subnet_id(&s.id)
                                .set_allocation_id(lb.eip_allocations.get(i).cloned())
                                .set_private_ipv4_address(lb.private_ipv4_addresses.get(i).cloned())
                                .build()
                        })
                        .collect();
                    req = req.set_subnet_mappings(Some(mappings));
                }
                let r = req.send().await.map_err(api("CreateLoadBalancer"))?;
                let l = r.load_balancers().first();
                let arn = l
                    .and_then(|l| l.load_balancer_arn())
                    .unwrap_or_default()
                    .to_string();
                let dns = l.and_then(|l| l.dns_name()).unwrap_or_default().to_string();
                tracing::info!(arn = %arn, name = %lb.name, dns_name = %dns, "created loadBalancer");
                self.inventory.locked().lbs.insert(
                    arn.clone(),
                    LbInfo {
                        name: lb.name.clone(),
                        dns_name: dns.clone(),
                        kind: lb.kind.as_str().to_string(),
                        scheme: lb.scheme.as_str().to_string(),
                        ip_address_type: lb.ip_address_type.as_str().to_string(),
                        subnets: subnet_ids,
                        security_groups: sgs,
                        tags: lb.tags.clone(),
                    },
                );
                (arn, dns, true)
            }
        };
        let done = self.applied.locked().lb_attributes.get(&arn) == Some(&lb.attributes);
        if !done {
            if !lb.attributes.is_empty() {
                self.elbv2
                    .modify_load_balancer_attributes()
                    .load_balancer_arn(&arn)
                    .set_attributes(Some(
                        lb.attributes
                            .iter()
                            .map(|(k, v)| LoadBalancerAttribute::builder().key(k).value(v).build())
                            .collect(),
                    ))
                    .send()
                    .await
                    .map_err(api("ModifyLoadBalancerAttributes"))?;
            }
            self.applied
                .locked()
                .lb_attributes
                .insert(arn.clone(), lb.attributes.clone());
        }
        Ok((arn, dns, created))
    }

    async fn ensure_listeners(
        &self,
        lb_arn: &str,
        created: bool,
        listeners: &[Listener],
        tg_arns: &BTreeMap<String, String>,
    ) -> Result<(), ElbError> {
        let r = self
            .sync_listeners(lb_arn, created, listeners, tg_arns)
            .await;
        if r.is_err() {
            // Part of it may be applied: look at ELBv2 again next time.
            self.applied.locked().listeners.remove(lb_arn);
        }
        r
    }

    async fn sync_listeners(
        &self,
        lb_arn: &str,
        created: bool,
        listeners: &[Listener],
        tg_arns: &BTreeMap<String, String>,
    ) -> Result<(), ElbError> {
        // Resolve every action first: a rule naming a group the stack does
        // not have is a model error, not something to half-apply.
        let mut resolved = vec![];
        for l in listeners {
            let default = convert::resolve(&l.default_action, tg_arns)
                .ok_or_else(|| ElbError::UnknownTargetGroup(format!("{:?}", l.default_action)))?;
            let mut rules = vec![];
            for r in &l.rules {
                let a = convert::resolve(&r.action, tg_arns)
                    .ok_or_else(|| ElbError::UnknownTargetGroup(format!("{:?}", r.action)))?;
                rules.push((r.priority, canonical_conditions(r.conditions.clone()), a));
            }
            resolved.push((l, default, rules));
        }
        let fingerprint = format!("{resolved:?}");
        let cached = self.applied.locked().listeners.get(lb_arn).cloned();
        if let Some((fp, _)) = &cached
            && *fp == fingerprint
        {
            return Ok(());
        }
        let known = cached.is_some();
        let mut actual: BTreeMap<i32, ListenerState> = cached.map(|(_, s)| s).unwrap_or_default();
        if !created && !known {
            let r = self
                .elbv2
                .describe_listeners()
                .load_balancer_arn(lb_arn)
                .send()
                .await
                .map_err(api("DescribeListeners"))?;
            for l in r.listeners() {
                let (Some(arn), Some(port)) = (l.listener_arn(), l.port()) else {
                    continue;
                };
                actual.insert(
                    port,
                    ListenerState {
                        arn: arn.to_string(),
                        rules: None,
                        key: ListenerKey {
                            protocol: l
                                .protocol()
                                .map(|p| p.as_str().to_string())
                                .unwrap_or_default(),
                            certificates: l
                                .certificates()
                                .iter()
                                .filter_map(|c| c.certificate_arn().map(str::to_string))
                                .collect(),
                            ssl_policy: l.ssl_policy().map(str::to_string),
                            alpn: l.alpn_policy().first().cloned(),
                            default_action: l
                                .default_actions()
                                .first()
                                .and_then(convert::from_sdk_action),
                        },
                    },
                );
            }
        }
        let wanted_ports: BTreeSet<i32> = listeners.iter().map(|l| l.port).collect();
        let mut now: BTreeMap<i32, ListenerState> = BTreeMap::new();
        // Listeners no longer wanted go first (their port may be reused).
        for (port, st) in &actual {
            if !wanted_ports.contains(port) {
                self.elbv2
                    .delete_listener()
                    .listener_arn(&st.arn)
                    .send()
                    .await
                    .map_err(api("DeleteListener"))?;
                tracing::info!(arn = %st.arn, port, "deleted listener");
            }
        }
        for (l, default, rules) in &resolved {
            let tls = matches!(l.protocol, Protocol::Tls | Protocol::Https);
            let key = ListenerKey {
                protocol: l.protocol.as_str().to_string(),
                certificates: l.certificates.iter().cloned().collect(),
                ssl_policy: if tls { l.ssl_policy.clone() } else { None },
                alpn: l.alpn_policy.clone(),
                default_action: Some(default.clone()),
            };
            let certs: Option<Vec<Certificate>> = (!l.certificates.is_empty()).then(|| {
                // The first certificate is the listener's default.
                vec![
                    Certificate::builder()
                        .certificate_arn(&l.certificates[0])
                        .build(),
                ]
            });
            let listener_arn = match actual.get(&l.port).map(|st| (&st.arn, &st.key)) {
                Some((arn, have)) => {
                    let mut have_cmp = ListenerKey {
                        protocol: have.protocol.clone(),
                        certificates: have.certificates.clone(),
                        ssl_policy: if tls { have.ssl_policy.clone() } else { None },
                        alpn: have.alpn.clone(),
                        default_action: have.default_action.clone(),
                    };
                    if l.certificates.len() > 1 {
                        // Extra certificates are listed apart from the default.
                        have_cmp.certificates = self.listener_certificates(arn).await?;
                    }
                    if have_cmp != key {
                        self.elbv2
                            .modify_listener()
                            .listener_arn(arn)
                            .protocol(ProtocolEnum::from(l.protocol.as_str()))
                            .port(l.port)
                            .set_certificates(certs)
                            .set_ssl_policy(key.ssl_policy.clone())
                            .set_alpn_policy(l.alpn_policy.clone().map(|a| vec![a]))
                            .default_actions(convert::to_sdk_action(default))
                            .send()
                            .await
                            .map_err(api("ModifyListener"))?;
                    }
                    arn.clone()
                }
                None => {
                    let r = self
                        .elbv2
                        .create_listener()
                        .load_balancer_arn(lb_arn)
                        .protocol(ProtocolEnum::from(l.protocol.as_str()))
                        .port(l.port)
                        .set_certificates(certs)
                        .set_ssl_policy(key.ssl_policy.clone())
                        .set_alpn_policy(l.alpn_policy.clone().map(|a| vec![a]))
                        .default_actions(convert::to_sdk_action(default))
                        .send()
                        .await
                        .map_err(api("CreateListener"))?;
                    let arn = r
                        .listeners()
                        .first()
                        .and_then(|l| l.listener_arn())
                        .unwrap_or_default()
                        .to_string();
                    tracing::info!(arn = %arn, port = l.port, "created listener");
                    arn
                }
            };
            if l.certificates.len() > 1 {
                self.sync_extra_certificates(&listener_arn, &l.certificates)
                    .await?;
            }
            let known_rules = match actual.get(&l.port) {
                None => Some(BTreeMap::new()),
                Some(st) => st.rules.clone(),
            };
            let rules_now = self.ensure_rules(&listener_arn, known_rules, rules).await?;
            now.insert(
                l.port,
                ListenerState {
                    arn: listener_arn,
                    key,
                    rules: Some(rules_now),
                },
            );
        }
        self.applied
            .locked()
            .listeners
            .insert(lb_arn.to_string(), (fingerprint, now));
        Ok(())
    }

    async fn listener_certificates(&self, listener: &str) -> Result<BTreeSet<String>, ElbError> {
        let r = self
            .elbv2
            .describe_listener_certificates()
            .listener_arn(listener)
            .send()
            .await
            .map_err(api("DescribeListenerCertificates"))?;
        Ok(r.certificates()
            .iter()
            .filter_map(|c| c.certificate_arn().map(str::to_string))
            .collect())
    }

    async fn sync_extra_certificates(
        &self,
        listener: &str,
        certs: &[String],
    ) -> Result<(), ElbError> {
        let have = self.listener_certificates(listener).await?;
        let want: BTreeSet<String> = certs.iter().cloned().collect();
        let add: Vec<Certificate> = want
            .difference(&have)
            .map(|c| Certificate::builder().certificate_arn(c).build())
            .collect();
        if !add.is_empty() {
            self.elbv2
                .add_listener_certificates()
                .listener_arn(listener)
                .set_certificates(Some(add))
                .send()
                .await
                .map_err(api("AddListenerCertificates"))?;
        }
        let remove: Vec<Certificate> = have
            .difference(&want)
            .filter(|c| Some(*c) != certs.first())
            .map(|c| Certificate::builder().certificate_arn(c).build())
            .collect();
        if !remove.is_empty() {
            self.elbv2
                .remove_listener_certificates()
                .listener_arn(listener)
                .set_certificates(Some(remove))
                .send()
                .await
                .map_err(api("RemoveListenerCertificates"))?;
        }
        Ok(())
    }

    /// Rules by priority: one that matches is kept, one at a wanted
    /// priority with other settings is modified in place (no window without
    /// a rule), new ones created, the rest deleted.
    async fn ensure_rules(
        &self,
        listener: &str,
        known: Option<BTreeMap<i32, (String, RuleKey)>>,
        rules: &[(i32, Vec<Condition>, Action)],
    ) -> Result<BTreeMap<i32, (String, RuleKey)>, ElbError> {
        let described = known.is_none();
        let mut actual: BTreeMap<i32, (String, RuleKey)> = known.unwrap_or_default();
        if described {
            let mut marker = None;
            loop {
                let r = self
                    .elbv2
                    .describe_rules()
                    .listener_arn(listener)
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(api("DescribeRules"))?;
                for rule in r.rules() {
                    if rule.is_default() == Some(true) {
                        continue;
                    }
                    let (Some(arn), Some(p)) = (
                        rule.rule_arn(),
                        rule.priority().and_then(|p| p.parse::<i32>().ok()),
                    ) else {
                        continue;
                    };
                    actual.insert(
                        p,
                        (
                            arn.to_string(),
                            RuleKey {
                                conditions: canonical_conditions(
                                    rule.conditions()
                                        .iter()
                                        .filter_map(convert::from_sdk_condition)
                                        .collect(),
                                ),
                                action: rule.actions().first().and_then(convert::from_sdk_action),
                            },
                        ),
                    );
                }
                marker = r.next_marker().map(str::to_string);
                if marker.is_none() {
                    break;
                }
            }
        }
        let wanted: BTreeSet<i32> = rules.iter().map(|r| r.0).collect();
        // Rules no longer wanted go first: the listener's rule limit counts
        // them.
        for (p, (arn, _)) in &actual {
            if !wanted.contains(p) {
                self.elbv2
                    .delete_rule()
                    .rule_arn(arn)
                    .send()
                    .await
                    .map_err(api("DeleteRule"))?;
            }
        }
        let mut now = BTreeMap::new();
        for (priority, conditions, action) in rules {
            let key = RuleKey {
                conditions: conditions.clone(),
                action: Some(action.clone()),
            };
            let sdk_conditions: Vec<_> = conditions.iter().map(convert::to_sdk_condition).collect();
            let arn = match actual.get(priority) {
                Some((arn, have)) if *have == key => arn.clone(),
                Some((arn, _)) => {
                    self.elbv2
                        .modify_rule()
                        .rule_arn(arn)
                        .set_conditions(Some(sdk_conditions))
                        .actions(convert::to_sdk_action(action))
                        .send()
                        .await
                        .map_err(api("ModifyRule"))?;
                    arn.clone()
                }
                None => {
                    let r = self
                        .elbv2
                        .create_rule()
                        .listener_arn(listener)
                        .priority(*priority)
                        .set_conditions(Some(sdk_conditions))
                        .actions(convert::to_sdk_action(action))
                        .send()
                        .await
                        .map_err(api("CreateRule"))?;
                    r.rules()
                        .first()
                        .and_then(|r| r.rule_arn())
                        .unwrap_or_default()
                        .to_string()
                }
            };
            now.insert(*priority, (arn, key));
        }
        Ok(now)
    }

    /// Registers what is missing and deregisters what is extra, in chunks.
    pub async fn sync_targets(
        &self,
        tg_arn: &str,
        want: &BTreeSet<Target>,
    ) -> Result<(), ElbError> {
        let cached = self.applied.locked().targets.get(tg_arn).cloned();
        if cached.as_ref() == Some(want) {
            return Ok(());
        }
        let have = match cached {
            Some(h) => h,
            None => {
                let r = self
                    .elbv2
                    .describe_target_health()
                    .target_group_arn(tg_arn)
                    .send()
                    .await
                    .map_err(api("DescribeTargetHealth"))?;
                r.target_health_descriptions()
                    .iter()
                    .filter_map(|d| {
                        let t = d.target()?;
                        Some(Target {
                            id: t.id()?.to_string(),
                            port: t.port().unwrap_or(0),
                        })
                    })
                    .collect()
            }
        };
        let add: Vec<&Target> = want.difference(&have).collect();
        let remove: Vec<&Target> = have.difference(want).collect();
        let desc = |t: &&Target| TargetDescription::builder().id(&t.id).port(t.port).build();
        for chunk in add.chunks(TARGET_CHUNK) {
            self.elbv2
                .register_targets()
                .target_group_arn(tg_arn)
                .set_targets(Some(chunk.iter().map(desc).collect()))
                .send()
                .await
                .map_err(api("RegisterTargets"))?;
        }
        for chunk in remove.chunks(TARGET_CHUNK) {
            self.elbv2
                .deregister_targets()
                .target_group_arn(tg_arn)
                .set_targets(Some(chunk.iter().map(desc).collect()))
                .send()
                .await
                .map_err(api("DeregisterTargets"))?;
        }
        if !add.is_empty() || !remove.is_empty() {
            tracing::info!(target_group = %tg_arn, registered = add.len(), deregistered = remove.len(), "synced targets");
        }
        self.applied
            .locked()
            .targets
            .insert(tg_arn.to_string(), want.clone());
        Ok(())
    }

    /// A target group by name (TargetGroupBinding's `targetGroupName`).
    pub async fn target_group_arn(&self, name: &str) -> Result<Option<String>, ElbError> {
        match self
            .elbv2
            .describe_target_groups()
            .names(name)
            .send()
            .await
            .map_err(api("DescribeTargetGroups"))
        {
            Ok(r) => Ok(r
                .target_groups()
                .first()
                .and_then(|t| t.target_group_arn())
                .map(str::to_string)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes everything the stack owns: the load balancer (and with it
    /// its listeners and rules), then its target groups and security group.
    pub async fn delete(&self, id: &StackId) -> Result<(), ElbError> {
        self.ensure_inventory().await?;
        let (lbs, tgs, sgs) = {
            let inv = self.inventory.locked();
            (
                inv.lbs
                    .iter()
                    .filter(|(_, l)| in_stack(&l.tags, id))
                    .map(|(a, _)| a.clone())
                    .collect::<Vec<_>>(),
                inv.tgs
                    .iter()
                    .filter(|(_, t)| in_stack(&t.tags, id))
                    .map(|(a, _)| a.clone())
                    .collect::<Vec<_>>(),
                inv.sgs
                    .iter()
                    .filter(|(_, s)| in_stack(&s.tags, id))
                    .map(|(a, _)| a.clone())
                    .collect::<Vec<_>>(),
            )
        };
        for arn in lbs {
            self.delete_load_balancer(&arn).await?;
        }
        for arn in tgs {
            self.delete_target_group(&arn).await?;
        }
        for gid in sgs {
            if self.ec2.delete_security_group(&gid).await? {
                tracing::info!(security_group = %gid, "deleted securityGroup");
            }
            self.inventory.locked().sgs.remove(&gid);
        }
        Ok(())
    }

    async fn delete_load_balancer(&self, arn: &str) -> Result<(), ElbError> {
        match self
            .elbv2
            .delete_load_balancer()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(api("DeleteLoadBalancer"))
        {
            Ok(_) => tracing::info!(arn = %arn, "deleted loadBalancer"),
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(e),
        }
        self.inventory.locked().lbs.remove(arn);
        let mut applied = self.applied.locked();
        applied.listeners.remove(arn);
        applied.lb_attributes.remove(arn);
        Ok(())
    }

    async fn delete_target_group(&self, arn: &str) -> Result<(), ElbError> {
        match self
            .elbv2
            .delete_target_group()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(api("DeleteTargetGroup"))
        {
            Ok(_) => tracing::info!(arn = %arn, "deleted targetGroup"),
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(e),
        }
        self.inventory.locked().tgs.remove(arn);
        let mut applied = self.applied.locked();
        applied.targets.remove(arn);
        applied.tg_attributes.remove(arn);
        Ok(())
    }
}

/// One subnet per zone: the first by ID, so the choice is stable.
fn one_per_zone(subnets: impl Iterator<Item = SubnetInfo>) -> Vec<SubnetInfo> {
    let mut by_zone: BTreeMap<String, SubnetInfo> = BTreeMap::new();
    for info in subnets {
        if by_zone.get(&info.zone).is_none_or(|o| info.id < o.id) {
            by_zone.insert(info.zone.clone(), info);
        }
    }
    by_zone.into_values().collect()
}

/// ELBv2's value of a target group attribute on a new group, for the
/// attributes whose default does not depend on the group's type.
fn target_group_default(key: &str) -> Option<&'static str> {
    Some(match key {
        "proxy_protocol_v2.enabled" => "false",
        "stickiness.enabled" => "false",
        "deregistration_delay.timeout_seconds" => "300",
        "deregistration_delay.connection_termination.enabled" => "false",
        "slow_start.duration_seconds" => "0",
        "load_balancing.algorithm.type" => "round_robin",
        _ => return None,
    })
}

fn subnet_info(s: outrigger_aws_ec2::Subnet) -> SubnetInfo {
    SubnetInfo {
        id: s.id,
        zone: s.zone,
        vpc: s.vpc,
    }
}
