//! The ELBv2 diff as plain data: what exists (the inventory, what a deploy
//! last applied, what ELBv2 described) against what a stack wants, decided
//! without a call. One function per decision; the executor
//! ([`crate::deploy`], [`crate::listeners`], [`crate::network`]) makes
//! exactly the calls a plan lists, in its order, and keeps the inventory
//! and the applied memo current.

use std::collections::{BTreeMap, BTreeSet};

use outrigger_lb_model::model::{
    Action, Condition, Listener, LoadBalancerType, Protocol, SecurityGroup, SecurityGroupRule,
    Stack, StackId, Target, TargetGroup,
};

use crate::{
    ElbError, RESOURCE_LOAD_BALANCER, RESOURCE_MANAGED_SG, TARGET_CHUNK, canonical_conditions,
    convert,
    inventory::{Inventory, LbInfo, ListenerKey, ListenerState, RuleKey, Rules, SgInfo, TgInfo},
};

#[cfg(test)]
mod tests;

/// Whether a resource's tags make it the stack's `resource`.
fn owned_by(tags: &BTreeMap<String, String>, id: &StackId, resource: &str) -> bool {
    tags.get(id.tag_key()) == Some(&id.tag_value())
        && tags.get(id.resource_tag_key()).map(String::as_str) == Some(resource)
}

/// Whether a resource's tags put it in the stack.
fn in_stack(tags: &BTreeMap<String, String>, id: &StackId) -> bool {
    tags.get(id.tag_key()) == Some(&id.tag_value())
}

// --- Security group -------------------------------------------------------

/// Ingress rules to authorize and to revoke.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngressPlan {
    pub add: Vec<SecurityGroupRule>,
    pub remove: Vec<SecurityGroupRule>,
}

/// The stack's managed security group: the one in the inventory (`None`:
/// create it, with no rules yet), and its ingress to authorize and revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityGroupPlan {
    pub existing: Option<String>,
    pub ingress: IngressPlan,
    /// The rules it has once the plan is carried out.
    pub want: BTreeSet<SecurityGroupRule>,
}

pub fn security_group(
    sgs: &BTreeMap<String, SgInfo>,
    id: &StackId,
    sg: &SecurityGroup,
) -> SecurityGroupPlan {
    let found = sgs
        .iter()
        .find(|(_, s)| owned_by(&s.tags, id, RESOURCE_MANAGED_SG));
    let want: BTreeSet<SecurityGroupRule> = sg.ingress.iter().cloned().collect();
    let (existing, ingress) = match found {
        Some((gid, s)) => (Some(gid.clone()), ingress(&s.rules, &want)),
        None => (None, ingress(&BTreeSet::new(), &want)),
    };
    SecurityGroupPlan {
        existing,
        ingress,
        want,
    }
}

/// What is wanted and missing is added; what is there and unwanted removed.
pub fn ingress(
    have: &BTreeSet<SecurityGroupRule>,
    want: &BTreeSet<SecurityGroupRule>,
) -> IngressPlan {
    IngressPlan {
        add: want.difference(have).cloned().collect(),
        remove: have.difference(want).cloned().collect(),
    }
}

// --- Target groups --------------------------------------------------------

/// A target group: the stack's one with this resource id and name, its
/// health check modified when it differs, or a new one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetGroupPlan {
    Reuse {
        arn: String,
        modify_health_check: bool,
    },
    Create,
}

pub fn target_group(
    tgs: &BTreeMap<String, TgInfo>,
    id: &StackId,
    tg: &TargetGroup,
) -> TargetGroupPlan {
    let found = tgs
        .iter()
        .find(|(_, t)| owned_by(&t.tags, id, &tg.resource_id) && t.name == tg.name);
    match found {
        Some((arn, t)) => TargetGroupPlan::Reuse {
            arn: arn.clone(),
            modify_health_check: t.health != health_key(tg),
        },
        None => TargetGroupPlan::Create,
    }
}

/// A health check as compared with what ELBv2 describes (see
/// `inventory::health_key_of`).
pub fn health_key(tg: &TargetGroup) -> Vec<String> {
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

/// The target groups of the stack in the inventory that are not wanted
/// (not in `keep`, the wanted groups' ARNs by resource id).
pub fn stale_target_groups(
    tgs: &BTreeMap<String, TgInfo>,
    id: &StackId,
    keep: &BTreeMap<String, String>,
) -> Vec<String> {
    let keep: BTreeSet<&String> = keep.values().collect();
    tgs.iter()
        .filter(|(arn, t)| in_stack(&t.tags, id) && !keep.contains(arn))
        .map(|(arn, _)| arn.clone())
        .collect()
}

// --- Attributes -----------------------------------------------------------

/// What to do about a load balancer's or target group's attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributesPlan {
    /// These were applied already: nothing to do.
    Applied,
    /// No call (none given, or a new group has them by default), but
    /// remember them as applied.
    Remember,
    /// A Modify...Attributes call, then remember them.
    Modify,
}

/// A new group already has ELBv2's defaults: only other values need a call.
pub fn target_group_attributes(
    created: bool,
    applied: Option<&BTreeMap<String, String>>,
    want: &BTreeMap<String, String>,
) -> AttributesPlan {
    if applied == Some(want) {
        return AttributesPlan::Applied;
    }
    let needed = !created
        || want
            .iter()
            .any(|(k, v)| target_group_default(k) != Some(v.as_str()));
    if !want.is_empty() && needed {
        AttributesPlan::Modify
    } else {
        AttributesPlan::Remember
    }
}

/// Load balancer attributes: set unless applied already (or none given).
pub fn load_balancer_attributes(
    applied: Option<&BTreeMap<String, String>>,
    want: &BTreeMap<String, String>,
) -> AttributesPlan {
    if applied == Some(want) {
        AttributesPlan::Applied
    } else if want.is_empty() {
        AttributesPlan::Remember
    } else {
        AttributesPlan::Modify
    }
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

// --- Load balancer --------------------------------------------------------

/// The stack's load balancers: the ones that go (what cannot change in
/// place differs: name, type, scheme), and the one kept (`None`: create).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadBalancerPlan {
    pub delete: Vec<String>,
    pub keep: Option<KeptLoadBalancer>,
}

/// The load balancer kept, and what is set on it in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptLoadBalancer {
    pub arn: String,
    pub dns_name: String,
    /// SetSubnets: ALBs only.
    pub set_subnets: bool,
    /// SetSecurityGroups: when groups are wanted and differ.
    pub set_security_groups: bool,
    pub set_ip_address_type: bool,
}

pub fn load_balancer(
    lbs: &BTreeMap<String, LbInfo>,
    stack: &Stack,
    subnets: &BTreeSet<String>,
    security_groups: &BTreeSet<String>,
) -> LoadBalancerPlan {
    let lb = &stack.load_balancer;
    let mut plan = LoadBalancerPlan {
        delete: vec![],
        keep: None,
    };
    for (arn, info) in lbs
        .iter()
        .filter(|(_, l)| owned_by(&l.tags, &stack.id, RESOURCE_LOAD_BALANCER))
    {
        if plan.keep.is_none()
            && info.name == lb.name
            && info.kind == lb.kind.as_str()
            && info.scheme == lb.scheme.as_str()
        {
            plan.keep = Some(KeptLoadBalancer {
                arn: arn.clone(),
                dns_name: info.dns_name.clone(),
                set_subnets: lb.kind == LoadBalancerType::Application && info.subnets != *subnets,
                set_security_groups: !security_groups.is_empty()
                    && info.security_groups != *security_groups,
                set_ip_address_type: info.ip_address_type != lb.ip_address_type.as_str(),
            });
        } else {
            plan.delete.push(arn.clone());
        }
    }
    plan
}

// --- Listeners ------------------------------------------------------------

/// A wanted listener with its actions resolved to ARNs.
#[derive(Debug)]
pub struct WantedListener<'a> {
    pub listener: &'a Listener,
    pub default_action: Action,
    pub rules: Vec<WantedRule>,
}

/// A wanted rule: its conditions canonical, its action resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct WantedRule {
    pub priority: i32,
    pub conditions: Vec<Condition>,
    pub action: Action,
}

impl WantedRule {
    pub fn key(&self) -> RuleKey {
        RuleKey {
            conditions: self.conditions.clone(),
            action: Some(self.action.clone()),
        }
    }
}

/// Every action resolved first: a rule naming a group the stack does not
/// have is a model error, not something to half-apply.
pub fn resolve_listeners<'a>(
    listeners: &'a [Listener],
    tg_arns: &BTreeMap<String, String>,
) -> Result<Vec<WantedListener<'a>>, ElbError> {
    let mut resolved = vec![];
    for l in listeners {
        let default_action = convert::resolve(&l.default_action, tg_arns)
            .ok_or_else(|| ElbError::UnknownTargetGroup(format!("{:?}", l.default_action)))?;
        let mut rules = vec![];
        for r in &l.rules {
            let action = convert::resolve(&r.action, tg_arns)
                .ok_or_else(|| ElbError::UnknownTargetGroup(format!("{:?}", r.action)))?;
            rules.push(WantedRule {
                priority: r.priority,
                conditions: canonical_conditions(r.conditions.clone()),
                action,
            });
        }
        resolved.push(WantedListener {
            listener: l,
            default_action,
            rules,
        });
    }
    Ok(resolved)
}

/// What the listeners were applied from: the same fingerprint as last
/// time means nothing to do.
pub fn fingerprint(wanted: &[WantedListener]) -> String {
    format!("{wanted:?}")
}

/// One step on a load balancer's listeners, in order: the unwanted ones
/// are deleted first (their port may be reused), then each wanted one is
/// applied, in the stack's order.
#[derive(Debug)]
pub enum ListenerStep<'a> {
    Delete { port: i32, arn: String },
    Apply(Box<ApplyListener<'a>>),
}

/// A wanted listener: created, kept or modified; then its certificates and
/// its rules.
#[derive(Debug)]
pub struct ApplyListener<'a> {
    pub wanted: &'a WantedListener<'a>,
    /// What the listener is once the step is done.
    pub key: ListenerKey,
    pub op: ListenerOp,
    /// Its rules as known (`None`: to describe); none on a new listener.
    pub known_rules: Option<Rules>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ListenerOp {
    Create,
    Keep {
        arn: String,
    },
    Modify {
        arn: String,
    },
    /// Several certificates: ELBv2 lists the extra ones apart, so whether
    /// it is modified is known once they are described
    /// ([`listener_differs`]); `have` is what it is but those.
    Compare {
        arn: String,
        have: Box<ListenerKey>,
    },
}

impl ListenerOp {
    /// The existing listener's ARN.
    pub fn arn(&self) -> Option<&str> {
        match self {
            ListenerOp::Create => None,
            ListenerOp::Keep { arn }
            | ListenerOp::Modify { arn }
            | ListenerOp::Compare { arn, .. } => Some(arn),
        }
    }
}

/// The listeners by port: `actual` (remembered or described) against the
/// wanted ones.
pub fn listeners<'a>(
    actual: &BTreeMap<i32, ListenerState>,
    wanted: &'a [WantedListener<'a>],
) -> Vec<ListenerStep<'a>> {
    let wanted_ports: BTreeSet<i32> = wanted.iter().map(|w| w.listener.port).collect();
    let delete = actual
        .iter()
        .filter(|(port, _)| !wanted_ports.contains(port))
        .map(|(port, st)| ListenerStep::Delete {
            port: *port,
            arn: st.arn.clone(),
        });
    let apply = wanted.iter().map(|w| {
        let l = w.listener;
        let tls = matches!(l.protocol, Protocol::Tls | Protocol::Https);
        let key = ListenerKey {
            protocol: l.protocol.as_str().to_string(),
            certificates: l.certificates.iter().cloned().collect(),
            ssl_policy: if tls { l.ssl_policy.clone() } else { None },
            alpn: l.alpn_policy.clone(),
            default_action: Some(w.default_action.clone()),
        };
        let (op, known_rules) = match actual.get(&l.port) {
            None => (ListenerOp::Create, Some(BTreeMap::new())),
            Some(st) => {
                let have = &st.key;
                let have = ListenerKey {
                    protocol: have.protocol.clone(),
                    certificates: have.certificates.clone(),
                    ssl_policy: if tls { have.ssl_policy.clone() } else { None },
                    alpn: have.alpn.clone(),
                    default_action: have.default_action.clone(),
                };
                let arn = st.arn.clone();
                let op = if l.certificates.len() > 1 {
                    ListenerOp::Compare {
                        arn,
                        have: Box::new(have),
                    }
                } else if have != key {
                    ListenerOp::Modify { arn }
                } else {
                    ListenerOp::Keep { arn }
                };
                (op, st.rules.clone())
            }
        };
        ListenerStep::Apply(Box::new(ApplyListener {
            wanted: w,
            key,
            op,
            known_rules,
        }))
    });
    delete.chain(apply).collect()
}

/// A listener with several certificates, `have` with all of them as
/// DescribeListenerCertificates lists them: whether it needs a
/// ModifyListener.
pub fn listener_differs(
    have: &ListenerKey,
    certificates: BTreeSet<String>,
    want: &ListenerKey,
) -> bool {
    let have = ListenerKey {
        certificates,
        ..have.clone()
    };
    have != *want
}

/// A listener's certificates besides the default one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificatesPlan {
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

/// `certs` (the first is the default) against those the listener has.
pub fn extra_certificates(have: &BTreeSet<String>, certs: &[String]) -> CertificatesPlan {
    let want: BTreeSet<String> = certs.iter().cloned().collect();
    CertificatesPlan {
        add: want.difference(have).cloned().collect(),
        remove: have
            .difference(&want)
            .filter(|c| Some(*c) != certs.first())
            .cloned()
            .collect(),
    }
}

// --- Rules ----------------------------------------------------------------

/// One step on a listener's rules, in order: the unwanted ones are deleted
/// first (the listener's rule limit counts them), then each wanted one is
/// kept, modified in place (no window without a rule) or created.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleStep<'a> {
    Delete { arn: String },
    Keep { rule: &'a WantedRule, arn: String },
    Modify { rule: &'a WantedRule, arn: String },
    Create { rule: &'a WantedRule },
}

/// The rules by priority: `actual` (remembered or described) against the
/// wanted ones.
pub fn rules<'a>(actual: &Rules, wanted: &'a [WantedRule]) -> Vec<RuleStep<'a>> {
    let priorities: BTreeSet<i32> = wanted.iter().map(|r| r.priority).collect();
    let delete = actual
        .iter()
        .filter(|(p, _)| !priorities.contains(p))
        .map(|(_, (arn, _))| RuleStep::Delete { arn: arn.clone() });
    let apply = wanted.iter().map(|rule| match actual.get(&rule.priority) {
        Some((arn, have)) if *have == rule.key() => RuleStep::Keep {
            rule,
            arn: arn.clone(),
        },
        Some((arn, _)) => RuleStep::Modify {
            rule,
            arn: arn.clone(),
        },
        None => RuleStep::Create { rule },
    });
    delete.chain(apply).collect()
}

// --- Targets --------------------------------------------------------------

/// Targets to register and to deregister, in calls of at most
/// [`TARGET_CHUNK`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetsPlan {
    pub register: Vec<Vec<Target>>,
    pub deregister: Vec<Vec<Target>>,
}

impl TargetsPlan {
    pub fn registered(&self) -> usize {
        self.register.iter().map(Vec::len).sum()
    }

    pub fn deregistered(&self) -> usize {
        self.deregister.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.register.is_empty() && self.deregister.is_empty()
    }
}

/// What is missing is registered, what is extra deregistered.
pub fn targets(have: &BTreeSet<Target>, want: &BTreeSet<Target>) -> TargetsPlan {
    let chunks = |ts: Vec<&Target>| -> Vec<Vec<Target>> {
        ts.chunks(TARGET_CHUNK)
            .map(|c| c.iter().map(|t| (*t).clone()).collect())
            .collect()
    };
    TargetsPlan {
        register: chunks(want.difference(have).collect()),
        deregister: chunks(have.difference(want).collect()),
    }
}

// --- Delete ---------------------------------------------------------------

/// One deletion of a stack's resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deletion {
    LoadBalancer(String),
    TargetGroup(String),
    SecurityGroup(String),
}

/// Everything a stack owns (by its stack tag), in the order it goes: the
/// load balancers (and with them their listeners and rules), then the
/// target groups no listener points at any more, then the security groups
/// nothing uses.
pub fn delete_stack(inv: &Inventory, id: &StackId) -> Vec<Deletion> {
    let lbs = inv
        .lbs
        .iter()
        .filter(|(_, l)| in_stack(&l.tags, id))
        .map(|(a, _)| Deletion::LoadBalancer(a.clone()));
    let tgs = inv
        .tgs
        .iter()
        .filter(|(_, t)| in_stack(&t.tags, id))
        .map(|(a, _)| Deletion::TargetGroup(a.clone()));
    let sgs = inv
        .sgs
        .iter()
        .filter(|(_, s)| in_stack(&s.tags, id))
        .map(|(g, _)| Deletion::SecurityGroup(g.clone()));
    lbs.chain(tgs).chain(sgs).collect()
}
