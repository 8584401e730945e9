//! The executor: each step asks the planner ([`crate::plan`]) what to do,
//! makes exactly the calls the plan lists, in its order, and keeps the
//! inventory and the applied memo current.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::types::{
    IpAddressType as SdkIpType, LoadBalancerAttribute, LoadBalancerSchemeEnum,
    LoadBalancerTypeEnum, Matcher, ProtocolEnum, SubnetMapping, Tag, TargetDescription,
    TargetGroupAttribute, TargetGroupIpAddressTypeEnum, TargetTypeEnum,
};
use outrigger_lb_model::model::{Stack, StackId, Target, TargetGroup};
use outrigger_runtime::sync::LockExt;

use crate::{
    Deployed, Elb, ElbError, api,
    inventory::{LbInfo, TgInfo},
    network::SubnetInfo,
    not_found,
    plan::{self, AttributesPlan, Deletion, TargetGroupPlan},
};

fn sdk_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

impl Elb {
    pub(crate) async fn deploy_once(
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
        let stale = plan::stale_target_groups(&self.inventory.locked().tgs, &stack.id, &tg_arns);
        for arn in stale {
            self.delete_target_group(&arn).await?;
        }
        Ok(Deployed {
            dns_name,
            load_balancer_arn: lb_arn,
            target_groups: tg_arns,
        })
    }

    async fn ensure_target_group(
        &self,
        id: &StackId,
        tg: &TargetGroup,
        vpc: &str,
    ) -> Result<String, ElbError> {
        let plan = plan::target_group(&self.inventory.locked().tgs, id, tg);
        let hc = &tg.health_check;
        let matcher = hc.matcher.as_ref().map(|m| {
            if tg.protocol_version.as_deref() == Some("GRPC") {
                Matcher::builder().grpc_code(m).build()
            } else {
                Matcher::builder().http_code(m).build()
            }
        });
        let mut created = false;
        let arn = match plan {
            TargetGroupPlan::Reuse {
                arn,
                modify_health_check,
            } => {
                if modify_health_check {
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
                        t.health = plan::health_key(tg);
                    }
                }
                arn
            }
            TargetGroupPlan::Create => {
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
                        health: plan::health_key(tg),
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
        let attributes = plan::target_group_attributes(
            created,
            self.applied.locked().tg_attributes.get(&arn),
            &tg.attributes,
        );
        if attributes == AttributesPlan::Modify {
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
        if attributes != AttributesPlan::Applied {
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
        let subnet_ids: BTreeSet<String> = subnets.iter().map(|s| s.id.clone()).collect();
        let sgs: BTreeSet<String> = security_groups.iter().cloned().collect();
        let plan = plan::load_balancer(&self.inventory.locked().lbs, stack, &subnet_ids, &sgs);
        // What cannot change in place (name, type, scheme) makes a new load
        // balancer; the old one goes.
        for arn in &plan.delete {
            tracing::info!(arn = %arn, "deleting loadBalancer replaced by a new one");
            self.delete_load_balancer(arn).await?;
        }
        let (arn, dns, created) = match plan.keep {
            Some(kept) => {
                let arn = kept.arn;
                if kept.set_subnets {
                    self.elbv2
                        .set_subnets()
                        .load_balancer_arn(&arn)
                        .set_subnets(Some(subnet_ids.iter().cloned().collect()))
                        .send()
                        .await
                        .map_err(api("SetSubnets"))?;
                }
                if kept.set_security_groups {
                    self.elbv2
                        .set_security_groups()
                        .load_balancer_arn(&arn)
                        .set_security_groups(Some(sgs.iter().cloned().collect()))
                        .send()
                        .await
                        .map_err(api("SetSecurityGroups"))?;
                }
                if kept.set_ip_address_type {
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
                (arn, kept.dns_name, false)
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
        let attributes = plan::load_balancer_attributes(
            self.applied.locked().lb_attributes.get(&arn),
            &lb.attributes,
        );
        if attributes == AttributesPlan::Modify {
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
        if attributes != AttributesPlan::Applied {
            self.applied
                .locked()
                .lb_attributes
                .insert(arn.clone(), lb.attributes.clone());
        }
        Ok((arn, dns, created))
    }

    /// Registers what is missing and deregisters what is extra, in chunks.
    pub(crate) async fn apply_targets(
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
        let plan = plan::targets(&have, want);
        let desc = |t: &Target| TargetDescription::builder().id(&t.id).port(t.port).build();
        for chunk in &plan.register {
            self.elbv2
                .register_targets()
                .target_group_arn(tg_arn)
                .set_targets(Some(chunk.iter().map(desc).collect()))
                .send()
                .await
                .map_err(api("RegisterTargets"))?;
        }
        for chunk in &plan.deregister {
            self.elbv2
                .deregister_targets()
                .target_group_arn(tg_arn)
                .set_targets(Some(chunk.iter().map(desc).collect()))
                .send()
                .await
                .map_err(api("DeregisterTargets"))?;
        }
        if !plan.is_empty() {
            tracing::info!(target_group = %tg_arn, registered = plan.registered(), deregistered = plan.deregistered(), "synced targets");
        }
        self.applied
            .locked()
            .targets
            .insert(tg_arn.to_string(), want.clone());
        Ok(())
    }

    /// Deletes everything the stack owns, in the plan's order.
    pub(crate) async fn delete_stack(&self, id: &StackId) -> Result<(), ElbError> {
        let plan = plan::delete_stack(&self.inventory.locked(), id);
        for deletion in plan {
            match deletion {
                Deletion::LoadBalancer(arn) => self.delete_load_balancer(&arn).await?,
                Deletion::TargetGroup(arn) => self.delete_target_group(&arn).await?,
                Deletion::SecurityGroup(gid) => {
                    if self.ec2.delete_security_group(&gid).await? {
                        tracing::info!(security_group = %gid, "deleted securityGroup");
                    }
                    self.inventory.locked().sgs.remove(&gid);
                }
            }
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
