//! The ALB stack of a group: settings that must agree across members,
//! merged listen ports, listeners (ssl-redirect, default actions, the rule
//! limit), the managed security group and the load balancer.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;

use super::rules::optimize;
use super::settings::{
    PortConfig, read_ip_address_type, read_lb_attributes, read_lb_name, read_listen_ports,
    read_scheme, read_ssl_redirect, read_subnets, read_tags,
};
use super::{Group, Member};
use crate::annotations::{self as a, ing_key};
use crate::model::{
    Action, IpAddressType, Listener, LoadBalancer, LoadBalancerType, Protocol, Rule, Scheme,
    SecurityGroup, SecurityGroupRule, Stack, Subnets, TargetGroup,
};
use crate::naming;
use crate::service::{RESOURCE_LOAD_BALANCER, RESOURCE_MANAGED_SG, Tagger};
use crate::{Config, GroupError, MemberError, ModelError};

/// The ALB stack of a group. `services` holds the Services the members'
/// backends name, by (namespace, name). Nothing is built while any member
/// has a problem: the error lists each, on its member.
pub fn build(
    group: &Group,
    services: &BTreeMap<(String, String), Service>,
    cfg: &Config,
) -> Result<Stack, GroupError> {
    if group.members.is_empty() {
        return Err(GroupError {
            group: group.id.clone(),
            errors: vec![],
        });
    }
    let mut b = Builder {
        group,
        services,
        cfg,
        errors: vec![],
        target_groups: vec![],
        tg_tagger: Tagger::from_tags(cfg, &group.id, BTreeMap::new()),
    };
    let stack = b.run();
    let mut errors = b.errors;
    // The same problem found on several listeners is reported once.
    let mut seen = BTreeSet::new();
    errors.retain(|e| seen.insert(format!("{}/{}\n{}", e.namespace, e.name, e.error)));
    match stack {
        Some(s) if errors.is_empty() => Ok(s),
        _ => Err(GroupError {
            group: group.id.clone(),
            errors,
        }),
    }
}

/// One listen port of the group.
#[derive(Clone, Debug, PartialEq)]
struct MergedPort {
    protocol: Protocol,
    cidrs_v4: Vec<String>,
    cidrs_v6: Vec<String>,
    ssl_policy: Option<String>,
    certificates: Vec<String>,
    /// Members listening on it, in group order.
    members: Vec<usize>,
}

pub(super) struct Builder<'a> {
    pub(super) group: &'a Group,
    pub(super) services: &'a BTreeMap<(String, String), Service>,
    pub(super) cfg: &'a Config,
    pub(super) errors: Vec<MemberError>,
    pub(super) target_groups: Vec<TargetGroup>,
    pub(super) tg_tagger: Tagger,
}

impl<'a> Builder<'a> {
    pub(super) fn member(&self, i: usize) -> &'a Member {
        &self.group.members[i]
    }

    pub(super) fn fail(&mut self, i: usize, error: ModelError) {
        let m = &self.group.members[i];
        self.errors.push(MemberError {
            namespace: m.namespace().to_string(),
            name: m.name().to_string(),
            error,
        });
    }

    fn fail_all(&mut self, error: &ModelError) {
        for i in 0..self.group.members.len() {
            self.fail(i, error.clone());
        }
    }

    /// `Ok(v)` -> `Some(v)`; `Err` -> recorded on member `i`, `None`.
    pub(super) fn ok<T>(&mut self, i: usize, r: Result<T, ModelError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(i, e);
                None
            }
        }
    }

    fn group_name(&self) -> String {
        self.group.id.tag_value()
    }

    /// The explicit values members give for a setting that must be equal
    /// across the group: the value if they agree, else a conflict on each
    /// member that set one.
    fn agree<T: PartialEq + Clone>(
        &mut self,
        setting: &str,
        values: Vec<(usize, T)>,
        show: impl Fn(&T) -> String,
    ) -> Option<T> {
        let first = values.first()?.1.clone();
        if values.iter().all(|(_, v)| *v == first) {
            return Some(first);
        }
        let detail = values
            .iter()
            .map(|(i, v)| format!("{}: {}", self.member(*i).key(), show(v)))
            .collect::<Vec<_>>()
            .join(" | ");
        let e = ModelError::GroupConflict {
            group: self.group_name(),
            setting: setting.to_string(),
            detail,
        };
        for (i, _) in &values {
            self.fail(*i, e.clone());
        }
        None
    }

    /// Per member: an explicit value or an error; then [`Self::agree`].
    fn setting<T: PartialEq + Clone>(
        &mut self,
        setting: &str,
        read: impl Fn(&Member) -> Result<Option<T>, ModelError>,
        show: impl Fn(&T) -> String,
    ) -> Option<T> {
        let mut values = vec![];
        for i in 0..self.group.members.len() {
            let r = read(self.member(i));
            if let Some(Some(v)) = self.ok(i, r) {
                values.push((i, v));
            }
        }
        self.agree(setting, values, show)
    }

    fn run(&mut self) -> Option<Stack> {
        for i in 0..self.group.members.len() {
            if let Some(p) = self.member(i).problem.clone() {
                self.fail(i, p);
            }
        }
        let scheme = self
            .setting("scheme", read_scheme, |s| s.as_str().to_string())
            .unwrap_or(Scheme::Internal);
        let ip_address_type = self
            .setting("ip-address-type", read_ip_address_type, |t| {
                t.as_str().to_string()
            })
            .unwrap_or(IpAddressType::Ipv4);
        let explicit_name = self.setting("load-balancer-name", read_lb_name, Clone::clone);
        let subnets = self
            .setting("subnets", read_subnets, |s| format!("{s:?}"))
            .unwrap_or(Subnets::Discover);
        let security_groups = self
            .setting(
                "security-groups",
                |m| {
                    Ok(a::string_list(m.annotations(), &ing_key("security-groups"))
                        .filter(|l| !l.is_empty()))
                },
                |l| l.join(","),
            )
            .unwrap_or_default();
        let manage_backend = self
            .setting(
                "manage-backend-security-group-rules",
                |m| {
                    a::bool(
                        m.annotations(),
                        &ing_key("manage-backend-security-group-rules"),
                    )
                },
                bool::to_string,
            )
            .unwrap_or(true);
        let attributes = self.merged_map("load-balancer-attributes", read_lb_attributes);
        let tags = self.merged_map("tags", read_tags);
        let ssl_redirect = self.setting("ssl-redirect", read_ssl_redirect, i32::to_string);
        let ports = self.listen_ports();
        if !self.errors.is_empty() {
            return None;
        }

        if let Some(port) = ssl_redirect
            && ports.get(&port).map(|p| p.protocol) != Some(Protocol::Https)
        {
            let e = ModelError::conflict(
                &ing_key("ssl-redirect"),
                format!("redirects to port {port}, which has no HTTPS listener in listen-ports"),
            );
            for i in 0..self.group.members.len() {
                if read_ssl_redirect(self.member(i)).ok().flatten().is_some() {
                    self.fail(i, e.clone());
                }
            }
            return None;
        }

        let tagger = Tagger::from_tags(self.cfg, &self.group.id, tags);
        let mut listeners = vec![];
        for (&port, merged) in &ports {
            if let Some(l) = self.listener(port, merged, ssl_redirect) {
                listeners.push(l);
            }
        }
        if !self.errors.is_empty() {
            return None;
        }
        for l in &listeners {
            if l.rules.len() > self.cfg.max_rules_per_listener {
                let e = ModelError::TooManyRules {
                    group: self.group_name(),
                    rules: l.rules.len(),
                    port: l.port,
                    limit: self.cfg.max_rules_per_listener,
                };
                self.fail_all(&e);
            }
        }
        if !self.errors.is_empty() {
            return None;
        }

        let name = explicit_name.unwrap_or_else(|| {
            naming::ingress_load_balancer(&self.cfg.cluster_name, &self.group.id, scheme)
        });
        let managed_security_group = security_groups.is_empty().then(|| {
            let mut rules = vec![];
            for (&port, p) in &ports {
                let v6 = if ip_address_type == IpAddressType::Ipv4 {
                    &[][..]
                } else {
                    &p.cidrs_v6[..]
                };
                for cidr in p.cidrs_v4.iter().chain(v6) {
                    rules.push(SecurityGroupRule {
                        protocol: "tcp".to_string(),
                        from_port: port,
                        to_port: port,
                        cidr: cidr.clone(),
                    });
                }
            }
            rules.sort();
            rules.dedup();
            SecurityGroup {
                name: naming::ingress_security_group(&self.cfg.cluster_name, &self.group.id),
                description: "[k8s] Managed SecurityGroup for LoadBalancer".to_string(),
                ingress: rules,
                tags: tagger.for_resource(RESOURCE_MANAGED_SG),
            }
        });
        // Target groups of IPv6 Services need a dualstack load balancer.
        if ip_address_type == IpAddressType::Ipv4
            && let Some(tg) = self
                .target_groups
                .iter()
                .find(|t| t.ip_address_type == IpAddressType::Ipv6)
        {
            let e = ModelError::conflict(
                &ing_key("ip-address-type"),
                format!(
                    "Service {}/{} is IPv6 and needs a dualstack load balancer",
                    tg.backend.namespace, tg.backend.service
                ),
            );
            self.fail_all(&e);
            return None;
        }
        Some(Stack {
            id: self.group.id.clone(),
            load_balancer: LoadBalancer {
                name,
                kind: LoadBalancerType::Application,
                scheme,
                ip_address_type,
                subnets,
                security_groups,
                manage_backend_security_group_rules: manage_backend,
                eip_allocations: vec![],
                private_ipv4_addresses: vec![],
                attributes,
                tags: tagger.for_resource(RESOURCE_LOAD_BALANCER),
            },
            managed_security_group,
            listeners,
            target_groups: std::mem::take(&mut self.target_groups),
        })
    }

    /// A key=value setting merged over the group: members may add keys,
    /// but must not give one key different values.
    fn merged_map(
        &mut self,
        setting: &str,
        read: impl Fn(&Member) -> Result<BTreeMap<String, String>, ModelError>,
    ) -> BTreeMap<String, String> {
        let mut by_key: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
        for i in 0..self.group.members.len() {
            let r = read(self.member(i));
            for (k, v) in self.ok(i, r).unwrap_or_default() {
                by_key.entry(k).or_default().push((i, v));
            }
        }
        let mut out = BTreeMap::new();
        for (k, values) in by_key {
            if let Some(v) = self.agree(&format!("{setting} {k}"), values, Clone::clone) {
                out.insert(k, v);
            }
        }
        out
    }

    /// Every member's listen ports, merged per port.
    fn listen_ports(&mut self) -> BTreeMap<i32, MergedPort> {
        let mut per_port: BTreeMap<i32, Vec<(usize, PortConfig)>> = BTreeMap::new();
        for i in 0..self.group.members.len() {
            let r = read_listen_ports(self.member(i));
            for (port, cfg) in self.ok(i, r).unwrap_or_default() {
                per_port.entry(port).or_default().push((i, cfg));
            }
        }
        let mut out = BTreeMap::new();
        for (port, cfgs) in per_port {
            let protocols = cfgs.iter().map(|(i, c)| (*i, c.protocol)).collect();
            let Some(protocol) = self.agree(&format!("protocol of port {port}"), protocols, |p| {
                p.as_str().to_string()
            }) else {
                continue;
            };
            let cidrs = cfgs
                .iter()
                .filter(|(_, c)| !c.cidrs.is_empty())
                .map(|(i, c)| (*i, c.cidrs.clone()))
                .collect();
            let cidrs = self
                .agree(&format!("inbound-cidrs of port {port}"), cidrs, |c| {
                    c.iter().cloned().collect::<Vec<_>>().join(",")
                })
                .unwrap_or_default();
            let policies = cfgs
                .iter()
                .filter_map(|(i, c)| c.ssl_policy.clone().map(|p| (*i, p)))
                .collect();
            let ssl_policy = self.agree(
                &format!("ssl-policy of port {port}"),
                policies,
                Clone::clone,
            );
            let certificates: BTreeSet<String> = cfgs
                .iter()
                .flat_map(|(_, c)| c.certificates.clone())
                .collect();
            let (mut cidrs_v4, mut cidrs_v6): (Vec<String>, Vec<String>) =
                cidrs.into_iter().partition(|c| !c.contains(':'));
            if cidrs_v4.is_empty() && cidrs_v6.is_empty() {
                cidrs_v4.push("0.0.0.0/0".to_string());
                cidrs_v6.push("::/0".to_string());
            }
            let https = protocol == Protocol::Https;
            out.insert(
                port,
                MergedPort {
                    protocol,
                    cidrs_v4,
                    cidrs_v6,
                    ssl_policy: https
                        .then(|| ssl_policy.unwrap_or_else(|| self.cfg.default_ssl_policy.clone())),
                    certificates: if https {
                        certificates.into_iter().collect()
                    } else {
                        vec![]
                    },
                    members: cfgs.iter().map(|(i, _)| *i).collect(),
                },
            );
        }
        out
    }

    fn listener(
        &mut self,
        port: i32,
        merged: &MergedPort,
        ssl_redirect: Option<i32>,
    ) -> Option<Listener> {
        let redirect_only = ssl_redirect.is_some() && merged.protocol == Protocol::Http;
        let default_action = match ssl_redirect {
            Some(to) if redirect_only => Action::Redirect {
                protocol: Some("HTTPS".to_string()),
                port: Some(to.to_string()),
                host: None,
                path: None,
                query: None,
                status_code: "HTTP_301".to_string(),
            },
            _ => self.default_action(merged)?,
        };
        let mut rules = vec![];
        if !redirect_only {
            for &i in &merged.members {
                self.member_rules(i, &mut rules);
            }
        }
        let rules = optimize(port, merged.protocol, rules);
        Some(Listener {
            port,
            protocol: merged.protocol,
            certificates: merged.certificates.clone(),
            ssl_policy: merged.ssl_policy.clone(),
            alpn_policy: None,
            default_action,
            rules: rules
                .into_iter()
                .enumerate()
                .map(|(n, r)| Rule {
                    priority: n as i32 + 1,
                    conditions: r.conditions,
                    action: r.action,
                })
                .collect(),
        })
    }

    /// The default backend of the (one) member that has one, else 404.
    fn default_action(&mut self, merged: &MergedPort) -> Option<Action> {
        let with_default: Vec<usize> = merged
            .members
            .iter()
            .copied()
            .filter(|&i| {
                self.member(i)
                    .ingress
                    .spec
                    .as_ref()
                    .is_some_and(|s| s.default_backend.is_some())
            })
            .collect();
        match with_default[..] {
            [] => Some(Action::FixedResponse {
                status_code: "404".to_string(),
                content_type: Some("text/plain".to_string()),
                message_body: None,
            }),
            [i] => {
                let backend = self
                    .member(i)
                    .ingress
                    .spec
                    .as_ref()?
                    .default_backend
                    .clone()?;
                let r = self.backend(i, &backend, "spec.defaultBackend");
                self.ok(i, r).map(|(action, _)| action)
            }
            _ => {
                let names = with_default
                    .iter()
                    .map(|&i| self.member(i).key())
                    .collect::<Vec<_>>()
                    .join(", ");
                let e = ModelError::GroupConflict {
                    group: self.group_name(),
                    setting: "spec.defaultBackend".to_string(),
                    detail: format!("{names} each define one; at most one member of a group may"),
                };
                for &i in &with_default {
                    self.fail(i, e.clone());
                }
                None
            }
        }
    }
}
