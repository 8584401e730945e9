//! Subnets and security groups, through `outrigger-aws-ec2`: the subnets
//! and named groups a load balancer uses (looked up again after
//! [`LOOKUP_TTL`]), and the stack's managed security group.

use std::{collections::BTreeMap, time::Instant};

use outrigger_aws_ec2::{Filter, SgRule};
use outrigger_lb_model::model::{SecurityGroup, SecurityGroupRule, Stack, StackId, Subnets};
use outrigger_runtime::sync::LockExt;

use crate::{Elb, ElbError, LOOKUP_TTL, inventory::SgInfo, plan};

#[derive(Clone, Debug)]
pub struct SubnetInfo {
    pub id: String,
    pub zone: String,
    pub vpc: String,
}

fn sg_rule(r: &SecurityGroupRule) -> SgRule {
    SgRule {
        protocol: r.protocol.clone(),
        from_port: r.from_port,
        to_port: r.to_port,
        cidr: r.cidr.clone(),
    }
}

impl Elb {
    /// One subnet per zone: the ones named, or those tagged for the scheme's
    /// role (and, when tagged for clusters, for this one); reused for
    /// [`LOOKUP_TTL`].
    pub(crate) async fn subnets_for(&self, stack: &Stack) -> Result<Vec<SubnetInfo>, ElbError> {
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
    pub(crate) async fn resolve_security_groups(
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

    /// The stack's managed security group, created when missing, its
    /// ingress rules made what the stack wants.
    pub(crate) async fn ensure_security_group(
        &self,
        id: &StackId,
        sg: &SecurityGroup,
        vpc: &str,
    ) -> Result<String, ElbError> {
        let plan = plan::security_group(&self.inventory.locked().sgs, id, sg);
        let gid = match plan.existing {
            Some(gid) => gid,
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
                        rules: Default::default(),
                    },
                );
                gid
            }
        };
        let add: Vec<SgRule> = plan.ingress.add.iter().map(sg_rule).collect();
        let remove: Vec<SgRule> = plan.ingress.remove.iter().map(sg_rule).collect();
        self.ec2.authorize_ingress(&gid, &add).await?;
        self.ec2.revoke_ingress(&gid, &remove).await?;
        if let Some(s) = self.inventory.locked().sgs.get_mut(&gid) {
            s.rules = plan.want;
        }
        Ok(gid)
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

fn subnet_info(s: outrigger_aws_ec2::Subnet) -> SubnetInfo {
    SubnetInfo {
        id: s.id,
        zone: s.zone,
        vpc: s.vpc,
    }
}
