//! Ingresses of class `alb` -> IngressGroups -> one ALB stack per group,
//! with the AWS Load Balancer Controller's Ingress annotations
//! (`alb.ingress.kubernetes.io/*`, on the Ingress or, for backend
//! settings, on the Service, which wins), IngressClassParams (whose fields
//! win over the matching annotations) and its rule translation.
//!
//! [`groups`] decides which Ingresses are ours and how they group;
//! [`build`] turns a group into a [`Stack`], or into a [`GroupError`]
//! naming what is wrong on each member.
//!
//! Not modelled: authentication actions (`auth-*`), certificate discovery
//! from ACM (an HTTPS listener without certificate-arn gets no
//! certificates here; the provider must find them from the hosts), WAF,
//! Shield, mutual TLS, transforms and the frontend NLB.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressBackend, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use outrigger_lb_api::v1beta1::{self as api, IngressClassParams};
use serde::Deserialize;

use crate::annotations::{self as a, Annotations, ing_key};
use crate::model::{
    Action, Backend, Condition, FINALIZER_GROUP_PREFIX, FINALIZER_INGRESS, HealthCheck,
    IpAddressType, Listener, LoadBalancer, LoadBalancerType, Protocol, Rule, Scheme, SecurityGroup,
    SecurityGroupRule, Stack, StackId, Subnets, TargetGroup, TargetGroupRef, TargetType,
    WeightedTarget,
};
use crate::naming;
use crate::service::{
    RESOURCE_LOAD_BALANCER, RESOURCE_MANAGED_SG, Tagger, check_bool_attributes, check_reserved_tags,
};
use crate::{Config, GroupError, MemberError, ModelError};

/// The IngressClass controller that is ours.
pub const CONTROLLER: &str = "ingress.k8s.aws/alb";
/// The deprecated class annotation.
pub const ANNOTATION_CLASS: &str = "kubernetes.io/ingress.class";
/// The backend port name that takes the action from `actions.<service>`.
pub const USE_ANNOTATION: &str = "use-annotation";
/// group.order bounds.
pub const MIN_GROUP_ORDER: i64 = -1000;
pub const MAX_GROUP_ORDER: i64 = 1000;

/// An Ingress of a group, with what its class says.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub ingress: Ingress,
    /// The IngressClassParams of its IngressClass, if any.
    pub params: Option<IngressClassParams>,
    /// `group.order` (0 unless given).
    pub order: i64,
    /// What was wrong when the group was loaded (an IngressClassParams
    /// that is missing or does not select the namespace, an invalid group
    /// name or order); [`build`] reports it on the member.
    pub problem: Option<ModelError>,
}

impl Member {
    pub fn namespace(&self) -> &str {
        self.ingress
            .metadata
            .namespace
            .as_deref()
            .unwrap_or("default")
    }
    pub fn name(&self) -> &str {
        self.ingress.metadata.name.as_deref().unwrap_or_default()
    }
    fn annotations(&self) -> &Annotations {
        static EMPTY: Annotations = Annotations::new();
        self.ingress.metadata.annotations.as_ref().unwrap_or(&EMPTY)
    }
    fn key(&self) -> String {
        format!("{}/{}", self.namespace(), self.name())
    }
}

/// An IngressGroup: an explicit group (`group.name`) or one Ingress.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub id: StackId,
    /// The active members, in `group.order`, then `namespace/name`.
    pub members: Vec<Member>,
    /// Ingresses that are being deleted, or that left the group but still
    /// carry its finalizer: their rules are gone from the stack, and the
    /// controller removes their finalizer once the stack is deployed.
    pub inactive_members: Vec<Ingress>,
}

impl Group {
    /// The finalizer members carry.
    pub fn finalizer(&self) -> String {
        finalizer(&self.id)
    }
}

/// `ingress.k8s.aws/resources` for an Ingress without a group,
/// `group.ingress.k8s.aws/<name>` for an explicit group.
pub fn finalizer(id: &StackId) -> String {
    match id {
        StackId::IngressGroup { name } => format!("{FINALIZER_GROUP_PREFIX}{name}"),
        _ => FINALIZER_INGRESS.to_string(),
    }
}

/// What a class says about an Ingress of ours.
struct Classified<'a> {
    params: Option<&'a IngressClassParams>,
    problem: Option<ModelError>,
}

/// Whether the Ingress is ours, and its class's parameters.
fn classify<'a>(
    ing: &Ingress,
    classes: &[IngressClass],
    params: &'a [IngressClassParams],
    namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
    cfg: &Config,
) -> Option<Classified<'a>> {
    let by_annotation = if cfg.disable_ingress_class_annotation {
        None
    } else {
        ing.metadata
            .annotations
            .as_ref()
            .and_then(|m| m.get(ANNOTATION_CLASS))
            .map(|v| *v == cfg.ingress_class)
    };
    let mut out = Classified {
        params: None,
        problem: None,
    };
    let class_name = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref());
    let by_class = match class_name {
        None => None,
        Some(name) => {
            // A class that does not exist makes the Ingress nobody's.
            let class = classes
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(name))?;
            let spec = class.spec.as_ref();
            let ours = spec.and_then(|s| s.controller.as_deref()) == Some(CONTROLLER);
            if ours && let Some(pref) = spec.and_then(|s| s.parameters.as_ref()) {
                if pref.api_group.as_deref() != Some(outrigger_lb_api::GROUP)
                    || pref.kind != "IngressClassParams"
                {
                    out.problem = Some(ModelError::IngressClass {
                        class: name.to_string(),
                        message: format!(
                            "parameters must be an {}/IngressClassParams, not {}/{}",
                            outrigger_lb_api::GROUP,
                            pref.api_group.as_deref().unwrap_or_default(),
                            pref.kind
                        ),
                    });
                } else if let Some(p) = params
                    .iter()
                    .find(|p| p.metadata.name.as_deref() == Some(&pref.name))
                {
                    let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
                    let empty = BTreeMap::new();
                    let labels = namespace_labels.get(ns).unwrap_or(&empty);
                    if p.spec
                        .namespace_selector
                        .as_ref()
                        .is_some_and(|sel| !selects(sel, labels))
                    {
                        out.problem = Some(ModelError::IngressClass {
                            class: name.to_string(),
                            message: format!(
                                "namespace {ns} is not selected by the namespaceSelector of IngressClassParams {}",
                                pref.name
                            ),
                        });
                    }
                    out.params = Some(p);
                } else {
                    out.problem = Some(ModelError::IngressClass {
                        class: name.to_string(),
                        message: format!("IngressClassParams {} not found", pref.name),
                    });
                }
            }
            Some(ours)
        }
    };
    let ours = by_annotation.or(by_class).unwrap_or(false);
    ours.then_some(out)
}

/// Whether a label selector selects these labels (empty selects all).
pub fn selects(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = sel.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let have = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    });
    by_labels && by_expressions
}

/// Whether a group name is one the controller takes: lower-case letters,
/// digits, `-` and `.`, starting and ending with a letter or digit, at
/// most 63 characters.
pub fn is_valid_group_name(name: &str) -> bool {
    let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && ok_char(b[0])
        && ok_char(b[b.len() - 1])
        && b.iter().all(|&c| ok_char(c) || c == b'-' || c == b'.')
}

/// Which Ingresses are ours and how they group: an Ingress is ours if its
/// `spec.ingressClassName` names an IngressClass whose controller is
/// `ingress.k8s.aws/alb`, or its `kubernetes.io/ingress.class` annotation
/// is the controller's class (the annotation decides when both are set).
/// Ingresses sharing a group name (the IngressClassParams' `group.name`,
/// else the `group.name` annotation) form one group; any other is a group
/// of its own. `namespace_labels` gives each namespace's labels (for
/// IngressClassParams namespace selectors). Groups come sorted by id;
/// groups with only inactive members are included (their stack goes).
pub fn groups(
    ingresses: &[Ingress],
    classes: &[IngressClass],
    params: &[IngressClassParams],
    namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
    cfg: &Config,
) -> Vec<Group> {
    fn entry<'m>(out: &'m mut BTreeMap<StackId, Group>, id: &StackId) -> &'m mut Group {
        out.entry(id.clone()).or_insert_with(|| Group {
            id: id.clone(),
            members: vec![],
            inactive_members: vec![],
        })
    }
    let mut out: BTreeMap<StackId, Group> = BTreeMap::new();
    for ing in ingresses {
        let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
        let name = ing.metadata.name.as_deref().unwrap_or_default();
        let implicit = StackId::Ingress {
            namespace: ns.to_string(),
            name: name.to_string(),
        };
        let deleting = ing.metadata.deletion_timestamp.is_some();
        let mut current = None;
        if let Some(c) = classify(ing, classes, params, namespace_labels, cfg) {
            let empty = Annotations::new();
            let ann = ing.metadata.annotations.as_ref().unwrap_or(&empty);
            let mut problem = c.problem;
            let group_key = ing_key("group.name");
            let group_name = c
                .params
                .and_then(|p| p.spec.group.as_ref())
                .map(|g| g.name.as_str())
                .or_else(|| a::string(ann, &group_key));
            let id = match group_name {
                Some(g) if is_valid_group_name(g) => StackId::IngressGroup {
                    name: g.to_string(),
                },
                Some(g) => {
                    problem.get_or_insert_with(|| {
                        ModelError::invalid(
                            &group_key,
                            g,
                            "names of lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 63 characters",
                        )
                    });
                    implicit.clone()
                }
                None => implicit.clone(),
            };
            let order = match a::int_in(
                ann,
                &ing_key("group.order"),
                MIN_GROUP_ORDER,
                MAX_GROUP_ORDER,
            ) {
                Ok(o) => o.unwrap_or(0),
                Err(e) => {
                    problem.get_or_insert(e);
                    0
                }
            };
            if deleting {
                entry(&mut out, &id).inactive_members.push(ing.clone());
            } else {
                entry(&mut out, &id).members.push(Member {
                    ingress: ing.clone(),
                    params: c.params.cloned(),
                    order,
                    problem,
                });
            }
            current = Some(id);
        }
        // Groups the Ingress left (or is leaving) but still holds a
        // finalizer of.
        for f in ing.metadata.finalizers.iter().flatten() {
            let id = if f == FINALIZER_INGRESS {
                implicit.clone()
            } else if let Some(g) = f.strip_prefix(FINALIZER_GROUP_PREFIX) {
                StackId::IngressGroup {
                    name: g.to_string(),
                }
            } else {
                continue;
            };
            if current.as_ref() != Some(&id) {
                entry(&mut out, &id).inactive_members.push(ing.clone());
            }
        }
    }
    let mut groups: Vec<Group> = out.into_values().collect();
    for g in &mut groups {
        g.members
            .sort_by(|x, y| x.order.cmp(&y.order).then_with(|| x.key().cmp(&y.key())));
        let key = |i: &Ingress| {
            format!(
                "{}/{}",
                i.metadata.namespace.as_deref().unwrap_or("default"),
                i.metadata.name.as_deref().unwrap_or_default()
            )
        };
        g.inactive_members.sort_by_key(key);
        g.inactive_members.dedup_by(|x, y| key(x) == key(y));
    }
    groups
}

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

/// One listen port of one member.
#[derive(Clone, Debug, PartialEq)]
struct PortConfig {
    protocol: Protocol,
    /// Explicit inbound CIDRs (empty: the default).
    cidrs: BTreeSet<String>,
    ssl_policy: Option<String>,
    certificates: Vec<String>,
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

/// A rule before priorities.
struct DraftRule {
    conditions: Vec<Condition>,
    action: Action,
}

struct Builder<'a> {
    group: &'a Group,
    services: &'a BTreeMap<(String, String), Service>,
    cfg: &'a Config,
    errors: Vec<MemberError>,
    target_groups: Vec<TargetGroup>,
    tg_tagger: Tagger,
}

impl<'a> Builder<'a> {
    fn member(&self, i: usize) -> &'a Member {
        &self.group.members[i]
    }

    fn fail(&mut self, i: usize, error: ModelError) {
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
    fn ok<T>(&mut self, i: usize, r: Result<T, ModelError>) -> Option<T> {
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

    /// A member's rules: per Ingress rule, its paths sorted (Exact, then
    /// Prefix longest first, then the rest as written).
    fn member_rules(&mut self, i: usize, out: &mut Vec<DraftRule>) {
        let Some(spec) = self.member(i).ingress.spec.clone() else {
            return;
        };
        for (r, rule) in spec.rules.iter().flatten().enumerate() {
            let Some(http) = &rule.http else {
                continue;
            };
            let sorted = match sort_paths(&http.paths) {
                Ok(p) => p,
                Err(msg) => {
                    self.fail(
                        i,
                        ModelError::spec(format!("spec.rules[{r}].http.paths"), msg),
                    );
                    continue;
                }
            };
            for (p, path) in sorted {
                let field = format!("spec.rules[{r}].http.paths[{p}]");
                let built = self
                    .backend(i, &path.backend, &format!("{field}.backend"))
                    .and_then(|(action, extra)| {
                        let conditions = rule_conditions(rule.host.as_deref(), path, extra)
                            .map_err(|msg| ModelError::spec(format!("{field}.path"), msg))?;
                        Ok(DraftRule { conditions, action })
                    });
                if let Some(d) = self.ok(i, built) {
                    out.push(d);
                }
            }
        }
    }

    /// A backend's action and the extra conditions of
    /// `conditions.<service>`.
    fn backend(
        &mut self,
        i: usize,
        backend: &IngressBackend,
        field: &str,
    ) -> Result<(Action, Vec<ConditionCfg>), ModelError> {
        let Some(svc) = &backend.service else {
            return Err(ModelError::spec(
                field,
                "only Service backends are supported",
            ));
        };
        let ann = self.member(i).annotations().clone();
        let cond_key = ing_key(&format!("conditions.{}", svc.name));
        let conditions: Vec<ConditionCfg> =
            a::json(&ann, &cond_key, CONDITIONS_ACCEPTED)?.unwrap_or_default();
        for c in &conditions {
            c.validate().map_err(|why| {
                ModelError::invalid(
                    &cond_key,
                    a::string(&ann, &cond_key).unwrap_or_default(),
                    format!("{CONDITIONS_ACCEPTED}; {why}"),
                )
            })?;
        }
        let port = svc.port.clone().unwrap_or_default();
        let action = if port.name.as_deref() == Some(USE_ANNOTATION) {
            let key = ing_key(&format!("actions.{}", svc.name));
            match a::json::<ActionCfg>(&ann, &key, ACTION_ACCEPTED)? {
                None => fixed_503("Backend action does not exist"),
                Some(cfg) => {
                    cfg.validate().map_err(|why| {
                        ModelError::invalid(
                            &key,
                            a::string(&ann, &key).unwrap_or_default(),
                            format!("{ACTION_ACCEPTED}; {why}"),
                        )
                    })?;
                    self.action(i, cfg, field)?
                }
            }
        } else {
            let port = match (&port.name, port.number) {
                (Some(n), _) if !n.is_empty() => n.clone(),
                (_, Some(n)) => n.to_string(),
                _ => {
                    return Err(ModelError::spec(
                        format!("{field}.service.port"),
                        "needs a name or a number",
                    ));
                }
            };
            self.action(
                i,
                ActionCfg {
                    type_: "forward".to_string(),
                    forward_config: Some(ForwardCfg {
                        target_groups: vec![TupleCfg {
                            service_name: Some(svc.name.clone()),
                            service_port: Some(serde_json::Value::String(port)),
                            ..TupleCfg::default()
                        }],
                        target_group_stickiness_config: None,
                    }),
                    ..ActionCfg::default()
                },
                field,
            )?
        };
        Ok((action, conditions))
    }

    fn action(&mut self, i: usize, cfg: ActionCfg, field: &str) -> Result<Action, ModelError> {
        match cfg.type_.as_str() {
            "fixed-response" => {
                let f = cfg.fixed_response_config.unwrap_or_default();
                Ok(Action::FixedResponse {
                    status_code: f.status_code,
                    content_type: f.content_type,
                    message_body: f.message_body,
                })
            }
            "redirect" => {
                let r = cfg.redirect_config.unwrap_or_default();
                Ok(Action::Redirect {
                    protocol: r.protocol,
                    port: r.port,
                    host: r.host,
                    path: r.path,
                    query: r.query,
                    status_code: r.status_code,
                })
            }
            _ => {
                let fwd = match (cfg.target_group_arn, cfg.forward_config) {
                    (Some(arn), _) => ForwardCfg {
                        target_groups: vec![TupleCfg {
                            target_group_arn: Some(arn),
                            ..TupleCfg::default()
                        }],
                        target_group_stickiness_config: None,
                    },
                    (None, Some(f)) => f,
                    (None, None) => ForwardCfg::default(),
                };
                let ns = self.member(i).namespace().to_string();
                let all_services = self.services;
                let services: BTreeSet<&String> = fwd
                    .target_groups
                    .iter()
                    .filter_map(|t| t.service_name.as_ref())
                    .collect();
                let single = fwd.target_groups.len() == 1 && services.len() == 1;
                let mut targets = vec![];
                for t in &fwd.target_groups {
                    let weight = t.weight.map(|w| w as i32);
                    if let Some(arn) = &t.target_group_arn {
                        targets.push(WeightedTarget {
                            target_group: TargetGroupRef::Arn(arn.clone()),
                            weight,
                        });
                        continue;
                    }
                    let svc_name = t.service_name.clone().unwrap_or_default();
                    let port = port_key(t.service_port.as_ref());
                    let Some(svc) = all_services.get(&(ns.clone(), svc_name.clone())) else {
                        if single {
                            return Ok(fixed_503("Backend service does not exist"));
                        }
                        return Err(ModelError::spec(
                            field,
                            format!("Service {ns}/{svc_name} not found"),
                        ));
                    };
                    let rid = self.target_group(i, svc, &port, field)?;
                    targets.push(WeightedTarget {
                        target_group: TargetGroupRef::Managed(rid),
                        weight,
                    });
                }
                let stickiness_seconds = fwd
                    .target_group_stickiness_config
                    .filter(|s| s.enabled == Some(true))
                    .map(|s| s.duration_seconds.map_or(3600, |d| d as i32));
                Ok(Action::Forward {
                    target_groups: targets,
                    stickiness_seconds,
                })
            }
        }
    }

    /// The target group for a member's backend (made once per Ingress,
    /// Service and port); its resource id.
    fn target_group(
        &mut self,
        i: usize,
        svc: &Service,
        port: &str,
        field: &str,
    ) -> Result<String, ModelError> {
        let m = self.member(i);
        let ing_ns = m.namespace().to_string();
        let ing_name = m.name().to_string();
        let svc_ns = svc
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| ing_ns.clone());
        let svc_name = svc.metadata.name.clone().unwrap_or_default();
        let resource_id = format!("{ing_ns}/{ing_name}-{svc_name}:{port}");
        if self
            .target_groups
            .iter()
            .any(|t| t.resource_id == resource_id)
        {
            return Ok(resource_id);
        }
        let spec = svc.spec.clone().unwrap_or_default();
        let ports = spec.ports.as_deref().unwrap_or_default();
        let svc_port = match port.parse::<i32>() {
            Ok(n) => ports.iter().find(|p| p.port == n),
            Err(_) => ports.iter().find(|p| p.name.as_deref() == Some(port)),
        }
        .ok_or_else(|| {
            ModelError::spec(
                field,
                format!("Service {svc_ns}/{svc_name} has no port {port}"),
            )
        })?
        .clone();
        // Service annotations win over the Ingress's.
        let mut ann = m.annotations().clone();
        ann.extend(svc.metadata.annotations.clone().unwrap_or_default());
        let params = m.params.as_ref().map(|p| &p.spec);

        let tt_key = ing_key("target-type");
        let target_type = match params.and_then(|p| p.target_type) {
            Some(api::TargetType::Ip) => TargetType::Ip,
            Some(api::TargetType::Instance) => TargetType::Instance,
            None => a::one_of(
                &ann,
                &tt_key,
                &[("instance", TargetType::Instance), ("ip", TargetType::Ip)],
            )?
            .unwrap_or(self.cfg.default_target_type),
        };
        let target_port = match &svc_port.target_port {
            Some(IntOrString::Int(n)) => n.to_string(),
            Some(IntOrString::String(s)) => s.clone(),
            None => svc_port.port.to_string(),
        };
        let tg_port = match target_type {
            TargetType::Instance => {
                let svc_type = spec.type_.as_deref().unwrap_or("ClusterIP");
                if svc_type == "ClusterIP" {
                    return Err(ModelError::spec(
                        field,
                        format!(
                            "Service {svc_ns}/{svc_name} is of type ClusterIP, which instance targets cannot reach: make it a NodePort Service or set {tt_key}: ip"
                        ),
                    ));
                }
                svc_port.node_port.ok_or_else(|| {
                    ModelError::spec(
                        field,
                        format!("Service {svc_ns}/{svc_name} port {port} has no NodePort for instance targets"),
                    )
                })?
            }
            TargetType::Ip => target_port.parse::<i32>().unwrap_or(1),
        };
        let protocol = a::one_of(
            &ann,
            &ing_key("backend-protocol"),
            &[("HTTP", Protocol::Http), ("HTTPS", Protocol::Https)],
        )?
        .unwrap_or(Protocol::Http);
        let version = a::one_of(
            &ann,
            &ing_key("backend-protocol-version"),
            &[("HTTP1", "HTTP1"), ("HTTP2", "HTTP2"), ("GRPC", "GRPC")],
        )?
        .unwrap_or("HTTP1");
        let health_check = alb_health_check(&ann, &spec, target_type, protocol, version)?;
        let attr_key = ing_key("target-group-attributes");
        let attributes = a::string_map(&ann, &attr_key)?.unwrap_or_default();
        check_bool_attributes(&ann, &attr_key, &attributes)?;
        let node_labels = match target_type {
            TargetType::Instance => {
                a::string_map(&ann, &ing_key("target-node-labels"))?.unwrap_or_default()
            }
            TargetType::Ip => BTreeMap::new(),
        };
        let ipv6 = spec
            .ip_families
            .as_ref()
            .is_some_and(|f| f.iter().any(|x| x == "IPv6"));
        // Tags: the class's, over the Service's, over the Ingress's.
        let tag_key = ing_key("tags");
        let mut tags = a::string_map(m.annotations(), &tag_key)?.unwrap_or_default();
        let svc_ann = svc.metadata.annotations.clone().unwrap_or_default();
        tags.extend(a::string_map(&svc_ann, &tag_key)?.unwrap_or_default());
        check_reserved_tags(&ann, &tag_key, &tags)?;
        tags.extend(class_tags(m));
        let name = naming::ingress_target_group(&naming::IngressTargetGroupKey {
            cluster: &self.cfg.cluster_name,
            group: &self.group.id,
            ingress_namespace: &ing_ns,
            ingress_name: &ing_name,
            service_name: &svc_name,
            service_uid: svc.metadata.uid.as_deref().unwrap_or_default(),
            service_port: port,
            target_group_port: tg_port,
            target_type,
            protocol,
            protocol_version: version,
        });
        self.target_groups.push(TargetGroup {
            tags: self.tg_tagger.with_extra(&tags, &resource_id),
            resource_id: resource_id.clone(),
            name,
            protocol,
            protocol_version: Some(version.to_string()),
            port: tg_port,
            target_type,
            ip_address_type: if ipv6 {
                IpAddressType::Ipv6
            } else {
                IpAddressType::Ipv4
            },
            health_check,
            attributes,
            backend: Backend {
                namespace: svc_ns,
                service: svc_name,
                port_name: svc_port.name.clone().filter(|n| !n.is_empty()),
                port: svc_port.port,
                target_port,
                node_port: svc_port.node_port,
                node_labels,
            },
        });
        Ok(resource_id)
    }
}

/// ALB health check: HTTP(S) on the traffic port, `/` every 15 s, 5 s
/// timeout, 2 and 2, `200` (gRPC: `/AWS.ALB/healthcheck`, `12`).
fn alb_health_check(
    ann: &Annotations,
    spec: &k8s_openapi::api::core::v1::ServiceSpec,
    target_type: TargetType,
    protocol: Protocol,
    version: &str,
) -> Result<HealthCheck, ModelError> {
    let grpc = version == "GRPC";
    let port_key = ing_key("healthcheck-port");
    let port = match a::string(ann, &port_key) {
        None | Some("traffic-port") => "traffic-port".to_string(),
        Some(raw) => health_check_port(&port_key, raw, spec, target_type)?,
    };
    let hc_protocol = a::one_of(
        ann,
        &ing_key("healthcheck-protocol"),
        &[("HTTP", Protocol::Http), ("HTTPS", Protocol::Https)],
    )?
    .unwrap_or(protocol);
    let path = a::string(ann, &ing_key("healthcheck-path"))
        .unwrap_or(if grpc { "/AWS.ALB/healthcheck" } else { "/" })
        .to_string();
    let matcher_key = ing_key("success-codes");
    let matcher = a::string(ann, &matcher_key).unwrap_or(if grpc { "12" } else { "200" });
    if !a::is_matcher(matcher) {
        return Err(ModelError::invalid(
            &matcher_key,
            matcher,
            if grpc {
                "gRPC codes like 12, 0-99 or 0,12"
            } else {
                "HTTP codes like 200, 200-399 or 200,202"
            },
        ));
    }
    let int = |suffix: &str, min: i64, max: i64, d: i32| -> Result<i32, ModelError> {
        Ok(a::int_in(ann, &ing_key(suffix), min, max)?.map_or(d, |v| v as i32))
    };
    Ok(HealthCheck {
        protocol: hc_protocol,
        port,
        path: Some(path),
        interval_seconds: int("healthcheck-interval-seconds", 5, 300, 15)?,
        timeout_seconds: int("healthcheck-timeout-seconds", 2, 120, 5)?,
        healthy_threshold: int("healthy-threshold-count", 2, 10, 2)?,
        unhealthy_threshold: int("unhealthy-threshold-count", 2, 10, 2)?,
        matcher: Some(matcher.to_string()),
    })
}

/// A number, or a Service port name (its NodePort for instance targets,
/// its numeric targetPort for ip targets).
fn health_check_port(
    key: &str,
    raw: &str,
    spec: &k8s_openapi::api::core::v1::ServiceSpec,
    target_type: TargetType,
) -> Result<String, ModelError> {
    let accepted = "traffic-port, a port number (1-65535), or the name of a Service port";
    if let Ok(n) = raw.parse::<i64>() {
        return if (1..=65535).contains(&n) {
            Ok(n.to_string())
        } else {
            Err(ModelError::invalid(key, raw, accepted))
        };
    }
    let named: &ServicePort = spec
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(raw))
        .ok_or_else(|| ModelError::invalid(key, raw, accepted))?;
    match (target_type, &named.target_port) {
        (TargetType::Instance, _) => named.node_port.map(|p| p.to_string()).ok_or_else(|| {
            ModelError::conflict(key, format!("Service port {raw} has no NodePort"))
        }),
        (TargetType::Ip, Some(IntOrString::Int(n))) => Ok(n.to_string()),
        (TargetType::Ip, None) => Ok(named.port.to_string()),
        (TargetType::Ip, Some(IntOrString::String(_))) => Err(ModelError::conflict(
            key,
            format!(
                "Service port {raw} has a named targetPort; give the health check port as a number"
            ),
        )),
    }
}

fn fixed_503(body: &str) -> Action {
    Action::FixedResponse {
        status_code: "503".to_string(),
        content_type: Some("text/plain".to_string()),
        message_body: Some(body.to_string()),
    }
}

/// A JSON servicePort (number, or a string that may hold a number) as the
/// port key.
fn port_key(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// Paths in upstream's order: Exact, then Prefix (longest first, ties as
/// written), then ImplementationSpecific or unset (as written); with
/// their index as written.
fn sort_paths(paths: &[HTTPIngressPath]) -> Result<Vec<(usize, &HTTPIngressPath)>, String> {
    let mut exact = vec![];
    let mut prefix = vec![];
    let mut other = vec![];
    for (i, p) in paths.iter().enumerate() {
        match p.path_type.as_str() {
            "Exact" => exact.push((i, p)),
            "Prefix" => prefix.push((i, p)),
            "ImplementationSpecific" | "" => other.push((i, p)),
            t => {
                return Err(format!(
                    "unknown pathType {t} for path {}",
                    p.path.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    prefix.sort_by_key(|(_, p)| std::cmp::Reverse(p.path.as_deref().map_or(0, str::len)));
    exact.extend(prefix);
    exact.extend(other);
    Ok(exact)
}

/// ELBv2 path patterns of an Ingress path.
pub fn path_patterns(path: &str, path_type: &str) -> Result<Vec<String>, String> {
    match path_type {
        "Exact" => {
            if path.contains(['*', '?']) {
                return Err(format!("exact path shouldn't contain wildcards: {path}"));
            }
            Ok(vec![path.to_string()])
        }
        "Prefix" => {
            if path == "/" {
                return Ok(vec!["/*".to_string()]);
            }
            if path.contains(['*', '?']) {
                return Err(format!("prefix path shouldn't contain wildcards: {path}"));
            }
            let p = path.strip_suffix('/').unwrap_or(path);
            Ok(vec![p.to_string(), format!("{p}/*")])
        }
        _ => Ok(vec![path.to_string()]),
    }
}

/// A rule's conditions: the annotation's extra ones (header, method,
/// query, source IP) first, then host-header (the rule's host and extra
/// hosts), then path-pattern (the path's patterns and extra paths);
/// `/*` when there is nothing else.
fn rule_conditions(
    host: Option<&str>,
    path: &HTTPIngressPath,
    extra: Vec<ConditionCfg>,
) -> Result<Vec<Condition>, String> {
    let mut hosts: Vec<String> = host
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .into_iter()
        .collect();
    let mut paths = match path.path.as_deref() {
        Some(p) if !p.is_empty() => path_patterns(p, &path.path_type)?,
        _ => vec![],
    };
    let mut out = vec![];
    for c in extra {
        match c.field.as_str() {
            "host-header" => hosts.extend(c.host_header_config.unwrap_or_default().values),
            "path-pattern" => paths.extend(c.path_pattern_config.unwrap_or_default().values),
            "http-header" => {
                let h = c.http_header_config.unwrap_or_default();
                out.push(Condition::HttpHeader {
                    name: h.http_header_name,
                    values: h.values,
                });
            }
            "http-request-method" => out.push(Condition::HttpRequestMethod(
                c.http_request_method_config.unwrap_or_default().values,
            )),
            "query-string" => out.push(Condition::QueryString(
                c.query_string_config
                    .unwrap_or_default()
                    .values
                    .into_iter()
                    .map(|kv| (kv.key, kv.value))
                    .collect(),
            )),
            "source-ip" => out.push(Condition::SourceIp(
                c.source_ip_config.unwrap_or_default().values,
            )),
            _ => {}
        }
    }
    if !hosts.is_empty() {
        out.push(Condition::HostHeader(hosts));
    }
    if !paths.is_empty() {
        out.push(Condition::PathPattern(paths));
    }
    if out.is_empty() {
        out.push(Condition::PathPattern(vec!["/*".to_string()]));
    }
    Ok(out)
}

/// Upstream's rule optimizer: drop redirect rules that would redirect to
/// themselves, and rules shadowed by an earlier redirect rule whose
/// conditions cover theirs.
fn optimize(port: i32, protocol: Protocol, rules: Vec<DraftRule>) -> Vec<DraftRule> {
    let rules: Vec<DraftRule> = rules
        .into_iter()
        .filter(|r| !is_redirect_loop(port, protocol, r))
        .collect();
    let mut out: Vec<DraftRule> = vec![];
    for r in rules {
        let shadowed = out.iter().any(|e| {
            matches!(e.action, Action::Redirect { .. }) && covers(&e.conditions, &r.conditions)
        });
        if !shadowed {
            out.push(r);
        }
    }
    out
}

fn hosts_and_paths(conditions: &[Condition]) -> (BTreeSet<&str>, BTreeSet<&str>, bool) {
    let mut hosts = BTreeSet::new();
    let mut paths = BTreeSet::new();
    let mut other = false;
    for c in conditions {
        match c {
            Condition::HostHeader(v) => hosts.extend(v.iter().map(String::as_str)),
            Condition::PathPattern(v) => paths.extend(v.iter().map(String::as_str)),
            _ => other = true,
        }
    }
    (hosts, paths, other)
}

fn is_redirect_loop(port: i32, protocol: Protocol, rule: &DraftRule) -> bool {
    let Action::Redirect {
        protocol: r_proto,
        port: r_port,
        host,
        path,
        query,
        ..
    } = &rule.action
    else {
        return false;
    };
    let (hosts, paths, _) = hosts_and_paths(&rule.conditions);
    let same = |v: &Option<String>, keep: &str, ok: &dyn Fn(&str) -> bool| {
        v.as_deref().is_none_or(|x| x == keep || ok(x))
    };
    same(host, "#{host}", &|h| hosts.contains(h))
        && same(path, "/#{path}", &|p| paths.contains(p))
        && same(r_port, "#{port}", &|p| p == port.to_string())
        && same(r_proto, "#{protocol}", &|p| p == protocol.as_str())
        && same(query, "#{query}", &|_| false)
}

/// Whether conditions `lhs` match everything `rhs` matches (host and path
/// conditions only).
fn covers(lhs: &[Condition], rhs: &[Condition]) -> bool {
    let (lh, lp, other) = hosts_and_paths(lhs);
    if other {
        return false;
    }
    let (rh, rp, _) = hosts_and_paths(rhs);
    let hosts = lh.is_empty() || (!rh.is_empty() && lh.is_superset(&rh));
    let paths = lp.is_empty() || lp.contains("/*") || (!rp.is_empty() && lp.is_superset(&rp));
    hosts && paths
}

// ---- per-member readers (IngressClassParams first, then annotations) ----

fn class_name(m: &Member) -> String {
    m.params
        .as_ref()
        .and_then(|p| p.metadata.name.clone())
        .unwrap_or_default()
}

fn params_error(m: &Member, field: &str, message: String) -> ModelError {
    ModelError::IngressClass {
        class: m
            .ingress
            .spec
            .as_ref()
            .and_then(|s| s.ingress_class_name.clone())
            .unwrap_or_default(),
        message: format!(
            "IngressClassParams {} spec.{field}: {message}",
            class_name(m)
        ),
    }
}

fn read_scheme(m: &Member) -> Result<Option<Scheme>, ModelError> {
    if let Some(s) = m.params.as_ref().and_then(|p| p.spec.scheme) {
        return Ok(Some(match s {
            api::LoadBalancerScheme::Internal => Scheme::Internal,
            api::LoadBalancerScheme::InternetFacing => Scheme::InternetFacing,
        }));
    }
    a::one_of(
        m.annotations(),
        &ing_key("scheme"),
        &[
            ("internal", Scheme::Internal),
            ("internet-facing", Scheme::InternetFacing),
        ],
    )
}

fn read_ip_address_type(m: &Member) -> Result<Option<IpAddressType>, ModelError> {
    if let Some(t) = m.params.as_ref().and_then(|p| p.spec.ip_address_type) {
        return Ok(Some(match t {
            api::IpAddressType::Ipv4 => IpAddressType::Ipv4,
            api::IpAddressType::Dualstack => IpAddressType::Dualstack,
            api::IpAddressType::DualstackWithoutPublicIpv4 => {
                IpAddressType::DualstackWithoutPublicIpv4
            }
        }));
    }
    a::one_of(
        m.annotations(),
        &ing_key("ip-address-type"),
        &[
            ("ipv4", IpAddressType::Ipv4),
            ("dualstack", IpAddressType::Dualstack),
            (
                "dualstack-without-public-ipv4",
                IpAddressType::DualstackWithoutPublicIpv4,
            ),
        ],
    )
}

fn read_lb_name(m: &Member) -> Result<Option<String>, ModelError> {
    const ACCEPTED: &str =
        "names of up to 32 letters, digits and hyphens, not starting or ending with a hyphen";
    if let Some(n) = m
        .params
        .as_ref()
        .and_then(|p| p.spec.load_balancer_name.clone())
    {
        if !naming::is_valid_lb_name(&n) {
            return Err(params_error(
                m,
                "loadBalancerName",
                format!("\"{n}\" is not one of the {ACCEPTED}"),
            ));
        }
        return Ok(Some(n));
    }
    let key = ing_key("load-balancer-name");
    match a::string(m.annotations(), &key) {
        None => Ok(None),
        Some(n) if naming::is_valid_lb_name(n) => Ok(Some(n.to_string())),
        Some(n) => Err(ModelError::invalid(&key, n, ACCEPTED)),
    }
}

fn read_subnets(m: &Member) -> Result<Option<Subnets>, ModelError> {
    if let Some(sel) = m.params.as_ref().and_then(|p| p.spec.subnets.as_ref()) {
        if !sel.ids.is_empty() {
            let mut ids = sel.ids.clone();
            ids.sort();
            return Ok(Some(Subnets::Named(ids)));
        }
        if !sel.tags.is_empty() {
            return Ok(Some(Subnets::Tagged(sel.tags.clone())));
        }
    }
    let key = ing_key("subnets");
    match a::string_list(m.annotations(), &key) {
        None => Ok(None),
        Some(l) if l.is_empty() => Err(ModelError::invalid(
            &key,
            a::string(m.annotations(), &key).unwrap_or_default(),
            "subnet IDs or Name tags, comma-separated, one per zone",
        )),
        Some(mut l) => {
            // Order does not matter for equality across the group.
            l.sort();
            Ok(Some(Subnets::Named(l)))
        }
    }
}

fn read_lb_attributes(m: &Member) -> Result<BTreeMap<String, String>, ModelError> {
    if let Some(p) = m
        .params
        .as_ref()
        .filter(|p| !p.spec.load_balancer_attributes.is_empty())
    {
        return Ok(p
            .spec
            .load_balancer_attributes
            .iter()
            .map(|at| (at.key.clone(), at.value.clone()))
            .collect());
    }
    let key = ing_key("load-balancer-attributes");
    let map = a::string_map(m.annotations(), &key)?.unwrap_or_default();
    check_bool_attributes(m.annotations(), &key, &map)?;
    Ok(map)
}

fn class_tags(m: &Member) -> BTreeMap<String, String> {
    m.params
        .iter()
        .flat_map(|p| p.spec.tags.iter())
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect()
}

/// The Ingress's tags, the class's over them.
fn read_tags(m: &Member) -> Result<BTreeMap<String, String>, ModelError> {
    let key = ing_key("tags");
    let mut tags = a::string_map(m.annotations(), &key)?.unwrap_or_default();
    check_reserved_tags(m.annotations(), &key, &tags)?;
    tags.extend(class_tags(m));
    Ok(tags)
}

fn read_ssl_redirect(m: &Member) -> Result<Option<i32>, ModelError> {
    if let Some(raw) = m
        .params
        .as_ref()
        .and_then(|p| p.spec.ssl_redirect_port.clone())
    {
        return match raw.parse::<i32>() {
            Ok(p) if (1..=65535).contains(&p) => Ok(Some(p)),
            _ => Err(params_error(
                m,
                "sslRedirectPort",
                format!("\"{raw}\" is not a port number (1-65535)"),
            )),
        };
    }
    Ok(a::int_in(m.annotations(), &ing_key("ssl-redirect"), 1, 65535)?.map(|p| p as i32))
}

const LISTEN_PORTS_ACCEPTED: &str =
    r#"a JSON list like [{"HTTP": 80}, {"HTTPS": 443}] with ports from 1 to 65535"#;

/// A member's listen ports with their protocol, CIDRs, policy and
/// certificates.
fn read_listen_ports(m: &Member) -> Result<BTreeMap<i32, PortConfig>, ModelError> {
    let ann = m.annotations();
    let params = m.params.as_ref().map(|p| &p.spec);
    let certificates = match params.filter(|p| !p.certificate_arn.is_empty()) {
        Some(p) => p.certificate_arn.clone(),
        None => a::string_list(ann, &ing_key("certificate-arn")).unwrap_or_default(),
    };
    let ssl_policy = match params
        .and_then(|p| p.ssl_policy.clone())
        .filter(|s| !s.is_empty())
    {
        Some(s) => Some(s),
        None => a::string(ann, &ing_key("ssl-policy")).map(str::to_string),
    };
    let cidr_key = ing_key("inbound-cidrs");
    let cidrs: BTreeSet<String> = match params.filter(|p| !p.inbound_cidrs.is_empty()) {
        Some(p) => {
            if let Some(bad) = p.inbound_cidrs.iter().find(|c| !a::is_cidr(c)) {
                return Err(params_error(
                    m,
                    "inboundCIDRs",
                    format!("{bad} is not a CIDR"),
                ));
            }
            p.inbound_cidrs.iter().cloned().collect()
        }
        None => {
            let list = a::string_list(ann, &cidr_key).unwrap_or_default();
            if list.iter().any(|c| !a::is_cidr(c)) {
                return Err(ModelError::invalid(
                    &cidr_key,
                    a::string(ann, &cidr_key).unwrap_or_default(),
                    "IPv4 or IPv6 CIDRs, comma-separated, e.g. 10.0.0.0/8,::/0",
                ));
            }
            list.into_iter().collect()
        }
    };
    let key = ing_key("listen-ports");
    let ports: BTreeMap<i32, Protocol> =
        match a::json::<Vec<BTreeMap<String, i64>>>(ann, &key, LISTEN_PORTS_ACCEPTED)? {
            None if certificates.is_empty() => BTreeMap::from([(80, Protocol::Http)]),
            None => BTreeMap::from([(443, Protocol::Https)]),
            Some(entries) => {
                let raw = a::string(ann, &key).unwrap_or_default();
                if entries.is_empty() {
                    return Err(ModelError::invalid(&key, raw, LISTEN_PORTS_ACCEPTED));
                }
                let mut out = BTreeMap::new();
                for entry in entries {
                    for (proto, port) in entry {
                        let protocol = match proto.as_str() {
                            "HTTP" => Protocol::Http,
                            "HTTPS" => Protocol::Https,
                            _ => return Err(ModelError::invalid(&key, raw, LISTEN_PORTS_ACCEPTED)),
                        };
                        if !(1..=65535).contains(&port) {
                            return Err(ModelError::invalid(&key, raw, LISTEN_PORTS_ACCEPTED));
                        }
                        out.insert(port as i32, protocol);
                    }
                }
                out
            }
        };
    Ok(ports
        .into_iter()
        .map(|(port, protocol)| {
            let https = protocol == Protocol::Https;
            (
                port,
                PortConfig {
                    protocol,
                    cidrs: cidrs.clone(),
                    ssl_policy: if https { ssl_policy.clone() } else { None },
                    certificates: if https { certificates.clone() } else { vec![] },
                },
            )
        })
        .collect())
}

// ---- the JSON of actions.NAME and conditions.NAME ----

const ACTION_ACCEPTED: &str = r#"a JSON action: {"type": "fixed-response", "fixedResponseConfig": {...}}, {"type": "redirect", "redirectConfig": {...}} or {"type": "forward", "targetGroupARN": ...} / {"type": "forward", "forwardConfig": {"targetGroups": [...]}}"#;
const CONDITIONS_ACCEPTED: &str = r#"a JSON list of conditions, each {"field": F, ...Config: {"values": [...]}} with F one of host-header, http-header, http-request-method, path-pattern, query-string, source-ip"#;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionCfg {
    #[serde(rename = "type", default)]
    type_: String,
    #[serde(rename = "targetGroupARN", default)]
    target_group_arn: Option<String>,
    #[serde(default)]
    fixed_response_config: Option<FixedResponseCfg>,
    #[serde(default)]
    redirect_config: Option<RedirectCfg>,
    #[serde(default)]
    forward_config: Option<ForwardCfg>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FixedResponseCfg {
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    message_body: Option<String>,
    #[serde(default)]
    status_code: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RedirectCfg {
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    port: Option<String>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    status_code: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ForwardCfg {
    #[serde(default)]
    target_groups: Vec<TupleCfg>,
    #[serde(default)]
    target_group_stickiness_config: Option<StickinessCfg>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TupleCfg {
    #[serde(rename = "targetGroupARN", default)]
    target_group_arn: Option<String>,
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    service_port: Option<serde_json::Value>,
    #[serde(default)]
    weight: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StickinessCfg {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    duration_seconds: Option<i64>,
}

impl ActionCfg {
    fn validate(&self) -> Result<(), String> {
        match self.type_.as_str() {
            "fixed-response" => match &self.fixed_response_config {
                None => Err("fixedResponseConfig is missing".to_string()),
                Some(f) if f.status_code.is_empty() => {
                    Err("fixedResponseConfig.statusCode is required".to_string())
                }
                Some(_) => Ok(()),
            },
            "redirect" => match &self.redirect_config {
                None => Err("redirectConfig is missing".to_string()),
                Some(r) if r.status_code.is_empty() => {
                    Err("redirectConfig.statusCode is required".to_string())
                }
                Some(_) => Ok(()),
            },
            "forward" => {
                if self.target_group_arn.is_some() == self.forward_config.is_some() {
                    return Err("give exactly one of targetGroupARN and forwardConfig".to_string());
                }
                let Some(f) = &self.forward_config else {
                    return Ok(());
                };
                if f.target_groups.is_empty() {
                    return Err("forwardConfig.targetGroups is empty".to_string());
                }
                for t in &f.target_groups {
                    if t.target_group_arn.is_some() == t.service_name.is_some() {
                        return Err(
                            "each target group needs exactly one of targetGroupARN and serviceName"
                                .to_string(),
                        );
                    }
                    let port_ok = match &t.service_port {
                        Some(serde_json::Value::Number(n)) => n.as_i64().is_some(),
                        Some(serde_json::Value::String(s)) => !s.is_empty(),
                        _ => false,
                    };
                    if t.service_name.is_some() && !port_ok {
                        return Err("a target group with serviceName needs servicePort".to_string());
                    }
                    if f.target_groups.len() > 1 && t.weight.is_none() {
                        return Err(
                            "weight must be set when forwarding to several target groups"
                                .to_string(),
                        );
                    }
                }
                Ok(())
            }
            other => Err(format!("unknown action type \"{other}\"")),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
struct ValuesCfg {
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HttpHeaderCfg {
    #[serde(default)]
    http_header_name: String,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct KeyValueCfg {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct QueryStringCfg {
    #[serde(default)]
    values: Vec<KeyValueCfg>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConditionCfg {
    #[serde(default)]
    field: String,
    #[serde(default)]
    host_header_config: Option<ValuesCfg>,
    #[serde(default)]
    http_header_config: Option<HttpHeaderCfg>,
    #[serde(default)]
    http_request_method_config: Option<ValuesCfg>,
    #[serde(default)]
    path_pattern_config: Option<ValuesCfg>,
    #[serde(default)]
    query_string_config: Option<QueryStringCfg>,
    #[serde(rename = "sourceIPConfig", default)]
    source_ip_config: Option<ValuesCfg>,
}

impl ConditionCfg {
    fn validate(&self) -> Result<(), String> {
        let values = |name: &str, v: Option<&Vec<String>>| match v {
            None => Err(format!("{name} is missing")),
            Some(v) if v.is_empty() => Err(format!("{name}.values is empty")),
            Some(_) => Ok(()),
        };
        match self.field.as_str() {
            "host-header" => values(
                "hostHeaderConfig",
                self.host_header_config.as_ref().map(|c| &c.values),
            ),
            "path-pattern" => values(
                "pathPatternConfig",
                self.path_pattern_config.as_ref().map(|c| &c.values),
            ),
            "http-request-method" => values(
                "httpRequestMethodConfig",
                self.http_request_method_config.as_ref().map(|c| &c.values),
            ),
            "source-ip" => values(
                "sourceIPConfig",
                self.source_ip_config.as_ref().map(|c| &c.values),
            ),
            "http-header" => match &self.http_header_config {
                None => Err("httpHeaderConfig is missing".to_string()),
                Some(h) if h.values.is_empty() => {
                    Err("httpHeaderConfig.values is empty".to_string())
                }
                Some(h) if h.http_header_name.is_empty() => {
                    Err("httpHeaderConfig.httpHeaderName is empty".to_string())
                }
                Some(_) => Ok(()),
            },
            "query-string" => match &self.query_string_config {
                None => Err("queryStringConfig is missing".to_string()),
                Some(q) if q.values.is_empty() => {
                    Err("queryStringConfig.values is empty".to_string())
                }
                Some(q) if q.values.iter().any(|kv| kv.value.is_empty()) => {
                    Err("queryStringConfig values need a value".to_string())
                }
                Some(_) => Ok(()),
            },
            other => Err(format!("unknown field \"{other}\"")),
        }
    }
}
