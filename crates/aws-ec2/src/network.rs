//! Subnets and security groups: found by filter (a node class's selectors,
//! a load balancer's subnet discovery), and the security-group writes a
//! load balancer's managed group needs (create, authorize and revoke
//! ingress by difference, delete).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, ResourceType, TagSpecification};

use crate::{Ec2, Ec2Error, api, tag};

/// An EC2 filter: `tag:<key>` with values, `tag-key`, `subnet-id`,
/// `vpc-id`, `instance-state-name`...
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

impl Filter {
    pub fn new(
        name: impl Into<String>,
        values: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// A tag with one of these values; the value `*` is any value (a
    /// `tag-key` filter), as Karpenter's selectors write it.
    pub fn tag(key: &str, value: &str) -> Self {
        if value == "*" {
            Self::tag_key(key)
        } else {
            Self::new(format!("tag:{key}"), [value])
        }
    }

    /// The tag, whatever its value.
    pub fn tag_key(key: &str) -> Self {
        Self::new("tag-key", [key])
    }

    /// One filter per tag of a selector term (all must match).
    pub fn tags(tags: &BTreeMap<String, String>) -> Vec<Self> {
        tags.iter().map(|(k, v)| Self::tag(k, v)).collect()
    }

    pub(crate) fn to_sdk(&self) -> aws_sdk_ec2::types::Filter {
        aws_sdk_ec2::types::Filter::builder()
            .name(&self.name)
            .set_values(Some(self.values.clone()))
            .build()
    }
}

fn sdk_filters(filters: &[Filter]) -> Option<Vec<aws_sdk_ec2::types::Filter>> {
    (!filters.is_empty()).then(|| filters.iter().map(Filter::to_sdk).collect())
}

fn tags_map<'a>(
    tags: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    tags.filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string())))
        .collect()
}

/// A subnet as the callers need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub zone: String,
    pub vpc: String,
    pub free_addresses: i32,
    pub tags: BTreeMap<String, String>,
}

/// One ingress permission: a protocol (`tcp`, `udp`, `-1`), a port range
/// and one IPv4 or IPv6 CIDR.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SgRule {
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub cidr: String,
}

/// A security group with its tags and ingress rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityGroup {
    pub id: String,
    pub vpc: String,
    pub tags: BTreeMap<String, String>,
    pub ingress: BTreeSet<SgRule>,
}

impl Ec2 {
    /// Subnets matching every filter (all subnets with none), every page.
    pub async fn describe_subnets(&self, filters: &[Filter]) -> Result<Vec<Subnet>, Ec2Error> {
        let mut out = vec![];
        let mut pages = self
            .client
            .describe_subnets()
            .set_filters(sdk_filters(filters))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(api("DescribeSubnets"))?;
            for s in page.subnets() {
                let (Some(id), Some(zone), Some(vpc)) =
                    (s.subnet_id(), s.availability_zone(), s.vpc_id())
                else {
                    continue;
                };
                out.push(Subnet {
                    id: id.to_string(),
                    zone: zone.to_string(),
                    vpc: vpc.to_string(),
                    free_addresses: s.available_ip_address_count().unwrap_or(0),
                    tags: tags_map(s.tags().iter().map(|t| (t.key(), t.value()))),
                });
            }
        }
        Ok(out)
    }

    /// Security groups matching every filter, every page.
    pub async fn describe_security_groups(
        &self,
        filters: &[Filter],
    ) -> Result<Vec<SecurityGroup>, Ec2Error> {
        let mut out = vec![];
        let mut pages = self
            .client
            .describe_security_groups()
            .set_filters(sdk_filters(filters))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(api("DescribeSecurityGroups"))?;
            for g in page.security_groups() {
                let Some(id) = g.group_id() else { continue };
                out.push(SecurityGroup {
                    id: id.to_string(),
                    vpc: g.vpc_id().unwrap_or_default().to_string(),
                    tags: tags_map(g.tags().iter().map(|t| (t.key(), t.value()))),
                    ingress: rules_of(g.ip_permissions()),
                });
            }
        }
        Ok(out)
    }

    /// Creates a security group with its tags; its ID.
    pub async fn create_security_group(
        &self,
        name: &str,
        description: &str,
        vpc: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, Ec2Error> {
        let r = self
            .client
            .create_security_group()
            .group_name(name)
            .description(description)
            .vpc_id(vpc)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::SecurityGroup)
                    .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
                    .build(),
            )
            .send()
            .await
            .map_err(api("CreateSecurityGroup"))?;
        Ok(r.group_id().unwrap_or_default().to_string())
    }

    /// Adds ingress rules to a group (none: no call).
    pub async fn authorize_ingress(&self, group: &str, rules: &[SgRule]) -> Result<(), Ec2Error> {
        if rules.is_empty() {
            return Ok(());
        }
        self.client
            .authorize_security_group_ingress()
            .group_id(group)
            .set_ip_permissions(Some(rules.iter().map(permission).collect()))
            .send()
            .await
            .map_err(api("AuthorizeSecurityGroupIngress"))?;
        Ok(())
    }

    /// Removes ingress rules from a group (none: no call).
    pub async fn revoke_ingress(&self, group: &str, rules: &[SgRule]) -> Result<(), Ec2Error> {
        if rules.is_empty() {
            return Ok(());
        }
        self.client
            .revoke_security_group_ingress()
            .group_id(group)
            .set_ip_permissions(Some(rules.iter().map(permission).collect()))
            .send()
            .await
            .map_err(api("RevokeSecurityGroupIngress"))?;
        Ok(())
    }

    /// Deletes a security group; `Ok(false)` if it was already gone.
    pub async fn delete_security_group(&self, group: &str) -> Result<bool, Ec2Error> {
        match self
            .client
            .delete_security_group()
            .group_id(group)
            .send()
            .await
            .map_err(api("DeleteSecurityGroup"))
        {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("InvalidGroup.NotFound") => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn permission(r: &SgRule) -> IpPermission {
    let b = IpPermission::builder()
        .ip_protocol(&r.protocol)
        .from_port(r.from_port)
        .to_port(r.to_port);
    if r.cidr.contains(':') {
        b.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(&r.cidr).build())
    } else {
        b.ip_ranges(IpRange::builder().cidr_ip(&r.cidr).build())
    }
    .build()
}

/// One rule per (permission, CIDR).
fn rules_of(perms: &[IpPermission]) -> BTreeSet<SgRule> {
    let mut out = BTreeSet::new();
    for p in perms {
        let protocol = p.ip_protocol().unwrap_or("-1").to_string();
        let (from_port, to_port) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        let cidrs = p
            .ip_ranges()
            .iter()
            .filter_map(|r| r.cidr_ip())
            .chain(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()));
        for cidr in cidrs {
            out.insert(SgRule {
                protocol: protocol.clone(),
                from_port,
                to_port,
                cidr: cidr.to_string(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_round_trip_into_rules() {
        let rules = [
            SgRule {
                protocol: "tcp".into(),
                from_port: 80,
                to_port: 80,
                cidr: "0.0.0.0/0".into(),
            },
            SgRule {
                protocol: "tcp".into(),
                from_port: 443,
                to_port: 443,
                cidr: "::/0".into(),
            },
        ];
        let perms: Vec<IpPermission> = rules.iter().map(permission).collect();
        assert_eq!(rules_of(&perms), rules.iter().cloned().collect());
    }

    #[test]
    fn a_star_selects_by_tag_key() {
        assert_eq!(
            Filter::tag("karpenter.sh/discovery", "*"),
            Filter::tag_key("karpenter.sh/discovery")
        );
        assert_eq!(
            Filter::tag("karpenter.sh/discovery", "demo"),
            Filter::new("tag:karpenter.sh/discovery", ["demo"])
        );
    }
}
