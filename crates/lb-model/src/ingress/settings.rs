//! Per-member readers of the load balancer and listener settings:
//! IngressClassParams first, then the Ingress's annotations.

use std::collections::{BTreeMap, BTreeSet};

use outrigger_lb_api::v1beta1 as api;

use super::Member;
use crate::ModelError;
use crate::annotations::{self as a, ing_key};
use crate::model::{IpAddressType, Protocol, Scheme, Subnets};
use crate::naming;
use crate::service::{check_bool_attributes, check_reserved_tags};

/// One listen port of one member.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct PortConfig {
    pub(super) protocol: Protocol,
    /// Explicit inbound CIDRs (empty: the default).
    pub(super) cidrs: BTreeSet<String>,
    pub(super) ssl_policy: Option<String>,
    pub(super) certificates: Vec<String>,
}

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

pub(super) fn read_scheme(m: &Member) -> Result<Option<Scheme>, ModelError> {
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

pub(super) fn read_ip_address_type(m: &Member) -> Result<Option<IpAddressType>, ModelError> {
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

pub(super) fn read_lb_name(m: &Member) -> Result<Option<String>, ModelError> {
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

pub(super) fn read_subnets(m: &Member) -> Result<Option<Subnets>, ModelError> {
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

pub(super) fn read_lb_attributes(m: &Member) -> Result<BTreeMap<String, String>, ModelError> {
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

pub(super) fn class_tags(m: &Member) -> BTreeMap<String, String> {
    m.params
        .iter()
        .flat_map(|p| p.spec.tags.iter())
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect()
}

/// The Ingress's tags, the class's over them.
pub(super) fn read_tags(m: &Member) -> Result<BTreeMap<String, String>, ModelError> {
    let key = ing_key("tags");
    let mut tags = a::string_map(m.annotations(), &key)?.unwrap_or_default();
    check_reserved_tags(m.annotations(), &key, &tags)?;
    tags.extend(class_tags(m));
    Ok(tags)
}

pub(super) fn read_ssl_redirect(m: &Member) -> Result<Option<i32>, ModelError> {
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
pub(super) fn read_listen_ports(m: &Member) -> Result<BTreeMap<i32, PortConfig>, ModelError> {
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
