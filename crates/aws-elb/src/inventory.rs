//! What exists, found by the ownership tags and listed once (then kept
//! current by this process's own changes), and what was last applied.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_elasticloadbalancingv2 as elbv2;
use outrigger_aws_ec2::{Filter, SgRule};
use outrigger_lb_model::model::{
    Action, Condition, SecurityGroupRule, TAG_CLUSTER, TAG_INGRESS_STACK, TAG_SERVICE_STACK, Target,
};

use crate::{Elb, ElbError, api};

#[derive(Clone, Debug)]
pub struct LbInfo {
    pub name: String,
    pub dns_name: String,
    pub kind: String,
    pub scheme: String,
    pub ip_address_type: String,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub struct TgInfo {
    pub name: String,
    pub health: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub struct SgInfo {
    pub tags: BTreeMap<String, String>,
    pub rules: BTreeSet<SecurityGroupRule>,
}

/// The cluster's load balancers, target groups and security groups.
#[derive(Default)]
pub struct Inventory {
    pub loaded: bool,
    pub lbs: BTreeMap<String, LbInfo>,
    pub tgs: BTreeMap<String, TgInfo>,
    pub sgs: BTreeMap<String, SgInfo>,
}

impl Inventory {
    /// The stacks that own something, by their stack tag (key, value).
    pub fn stacks(&self) -> BTreeSet<(String, String)> {
        let keys = [TAG_SERVICE_STACK, TAG_INGRESS_STACK];
        let all = self
            .lbs
            .values()
            .map(|l| &l.tags)
            .chain(self.tgs.values().map(|t| &t.tags))
            .chain(self.sgs.values().map(|s| &s.tags));
        let mut out = BTreeSet::new();
        for tags in all {
            for k in keys {
                if let Some(v) = tags.get(k) {
                    out.insert((k.to_string(), v.clone()));
                }
            }
        }
        out
    }
}

/// What was last applied, to skip calls for what did not change.
#[derive(Default)]
pub struct Applied {
    /// Load balancer ARN -> the fingerprint of its listeners and rules as
    /// last applied, and what they are in ELBv2 (ARNs included), so the
    /// next change needs no Describe call.
    pub listeners: HashMap<String, (String, BTreeMap<i32, ListenerState>)>,
    /// Load balancer ARN -> its attributes.
    pub lb_attributes: HashMap<String, BTreeMap<String, String>>,
    /// Target group ARN -> its attributes.
    pub tg_attributes: HashMap<String, BTreeMap<String, String>>,
    /// Target group ARN -> its registered targets.
    pub targets: HashMap<String, BTreeSet<Target>>,
}

fn tags_map<'a>(
    tags: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    tags.filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string())))
        .collect()
}

/// A health check as ELBv2 describes it (see [`crate::plan::health_key`]).
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

impl Elb {
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

    pub(crate) async fn list(&self) -> Result<Inventory, ElbError> {
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
}

/// A listener as compared: everything but its ARN, target groups by ARN.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerKey {
    pub protocol: String,
    pub certificates: BTreeSet<String>,
    pub ssl_policy: Option<String>,
    pub alpn: Option<String>,
    pub default_action: Option<Action>,
}

/// A rule as compared: its conditions (canonical) and its action.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleKey {
    pub conditions: Vec<Condition>,
    pub action: Option<Action>,
}

/// A listener's rules by priority: each one's ARN and what it is.
pub type Rules = BTreeMap<i32, (String, RuleKey)>;

/// A listener as it is in ELBv2; its rules by priority, when known.
#[derive(Clone, Debug)]
pub struct ListenerState {
    pub arn: String,
    pub key: ListenerKey,
    pub rules: Option<Rules>,
}

/// An EC2 ingress rule as the model writes it.
pub fn model_rule(r: SgRule) -> SecurityGroupRule {
    SecurityGroupRule {
        protocol: r.protocol,
        from_port: r.from_port,
        to_port: r.to_port,
        cidr: r.cidr,
    }
}
