//! Services of type LoadBalancer -> an NLB stack, with the AWS Load
//! Balancer Controller's Service annotations
//! (`service.beta.kubernetes.io/aws-load-balancer-*`) and defaults: one
//! listener and one target group per Service port.
//!
//! Not decided here (the provider's part): subnet discovery, resolving
//! security group names, and keeping the scheme of an existing load
//! balancer when no scheme annotation is given (upstream does; the model
//! uses the default, `internal`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::annotations::{self as a, Annotations, svc_key};
use crate::model::{
    Action, Backend, HealthCheck, IpAddressType, Listener, LoadBalancer, LoadBalancerType,
    Protocol, Scheme, SecurityGroup, SecurityGroupRule, Stack, StackId, Subnets, TAG_CLUSTER,
    TargetGroup, TargetGroupRef, TargetType, WeightedTarget,
};
use crate::naming;
use crate::{Config, ModelError};

/// `service.beta.kubernetes.io/aws-load-balancer-type`.
pub const ANNOTATION_TYPE: &str = "service.beta.kubernetes.io/aws-load-balancer-type";
/// Source ranges for the managed security group (prefer
/// `spec.loadBalancerSourceRanges`).
pub const ANNOTATION_SOURCE_RANGES: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";
/// The resource tag value of the load balancer.
pub const RESOURCE_LOAD_BALANCER: &str = "LoadBalancer";
/// The resource tag value of the managed security group.
pub const RESOURCE_MANAGED_SG: &str = "ManagedLBSecurityGroup";

const TG_PROXY_PROTOCOL_V2: &str = "proxy_protocol_v2.enabled";
const TG_PRESERVE_CLIENT_IP: &str = "preserve_client_ip.enabled";

/// Whether the Service is ours: type LoadBalancer and either
/// `spec.loadBalancerClass` equal to ours, or no class and the annotation
/// `service.beta.kubernetes.io/aws-load-balancer-type` `external` (or the
/// legacy `nlb-ip`). Services being deleted are still ours (the caller
/// tears their stack down); another class is never ours.
pub fn is_ours(svc: &Service, cfg: &Config) -> bool {
    let Some(spec) = svc.spec.as_ref() else {
        return false;
    };
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return false;
    }
    if let Some(class) = spec.load_balancer_class.as_deref() {
        return class == cfg.load_balancer_class;
    }
    let lb_type = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|ann| ann.get(ANNOTATION_TYPE));
    matches!(lb_type.map(String::as_str), Some("external" | "nlb-ip"))
}

/// The NLB stack of a Service. Any invalid annotation or spec value is an
/// error and nothing is built.
pub fn build(svc: &Service, cfg: &Config) -> Result<Stack, ModelError> {
    let empty = Annotations::new();
    let ann = svc.metadata.annotations.as_ref().unwrap_or(&empty);
    let namespace = svc.metadata.namespace.as_deref().unwrap_or("default");
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    let uid = svc.metadata.uid.as_deref().unwrap_or_default();
    let spec = svc
        .spec
        .as_ref()
        .ok_or_else(|| ModelError::spec("spec", "the Service has no spec"))?;
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return Err(ModelError::spec(
            "spec.type",
            format!(
                "is {}, not LoadBalancer",
                spec.type_.as_deref().unwrap_or("ClusterIP")
            ),
        ));
    }
    let id = StackId::Service {
        namespace: namespace.to_string(),
        name: name.to_string(),
    };
    let tags = Tagger::new(cfg, &id, ann)?;

    let scheme = scheme(ann)?;
    let ip_address_type = a::one_of(
        ann,
        &svc_key("ip-address-type"),
        &[
            ("ipv4", IpAddressType::Ipv4),
            ("dualstack", IpAddressType::Dualstack),
        ],
    )?
    .unwrap_or(IpAddressType::Ipv4);
    let lb_name = match a::string(ann, &svc_key("name")) {
        Some(n) if naming::is_valid_lb_name(n) => n.to_string(),
        Some(n) => {
            return Err(ModelError::invalid(
                &svc_key("name"),
                n,
                "names of up to 32 letters, digits and hyphens, not starting or ending with a hyphen",
            ));
        }
        None => naming::service_load_balancer(&cfg.cluster_name, namespace, name, uid, scheme),
    };
    let subnets = match a::string_list(ann, &svc_key("subnets")) {
        None => Subnets::Discover,
        Some(list) if list.is_empty() => {
            return Err(ModelError::invalid(
                &svc_key("subnets"),
                a::string(ann, &svc_key("subnets")).unwrap_or_default(),
                "subnet IDs or Name tags, comma-separated, one per zone",
            ));
        }
        Some(list) => Subnets::Named(list),
    };
    let (eip_allocations, private_ipv4_addresses) = subnet_mappings(ann, scheme, &subnets)?;
    let attributes = load_balancer_attributes(ann)?;
    let user_sgs = a::string_list(ann, &svc_key("security-groups")).unwrap_or_default();
    let manage_backend =
        a::bool(ann, &svc_key("manage-backend-security-group-rules"))?.unwrap_or(true);

    let ports = spec.ports.as_deref().unwrap_or_default();
    if ports.is_empty() {
        return Err(ModelError::spec(
            "spec.ports",
            "a LoadBalancer Service needs at least one port",
        ));
    }
    for (i, p) in ports.iter().enumerate() {
        if let Some(j) = ports[..i].iter().position(|q| q.port == p.port) {
            return Err(ModelError::spec(
                format!("spec.ports[{i}]"),
                format!(
                    "port {} is also spec.ports[{j}]; an NLB has one listener per port",
                    p.port
                ),
            ));
        }
    }

    let managed_security_group = if user_sgs.is_empty() {
        Some(SecurityGroup {
            name: naming::service_security_group(&cfg.cluster_name, namespace, name, uid),
            description: "[k8s] Managed SecurityGroup for LoadBalancer".to_string(),
            ingress: security_group_rules(svc, ann, ports, ip_address_type)?,
            tags: tags.for_resource(RESOURCE_MANAGED_SG),
        })
    } else {
        None
    };

    let lcfg = ListenerConfig::new(ann, cfg)?;
    let target_type = target_type(ann, cfg)?;
    let mut listeners = Vec::with_capacity(ports.len());
    let mut target_groups = Vec::with_capacity(ports.len());
    for (i, port) in ports.iter().enumerate() {
        let field = format!("spec.ports[{i}]");
        let proto = match port.protocol.as_deref().unwrap_or("TCP") {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            other => {
                return Err(ModelError::spec(
                    format!("{field}.protocol"),
                    format!("{other} is not supported by NLB listeners; use TCP or UDP"),
                ));
            }
        };
        let tls = proto == Protocol::Tcp && !lcfg.certificates.is_empty() && lcfg.is_tls_port(port);
        let listener_protocol = if tls { Protocol::Tls } else { proto };
        let tg_protocol = if tls && lcfg.backend_ssl {
            Protocol::Tls
        } else {
            proto
        };
        let ctx = PortContext {
            svc,
            ann,
            cfg,
            namespace,
            name,
            uid,
            ip_address_type,
            target_type,
            tags: &tags,
        };
        let tg = target_group(&ctx, &field, port, tg_protocol)?;
        listeners.push(Listener {
            port: port.port,
            protocol: listener_protocol,
            certificates: if tls {
                lcfg.certificates.clone()
            } else {
                vec![]
            },
            ssl_policy: tls.then(|| lcfg.ssl_policy.clone()),
            alpn_policy: if tls { lcfg.alpn_policy.clone() } else { None },
            default_action: Action::Forward {
                target_groups: vec![WeightedTarget {
                    target_group: TargetGroupRef::Managed(tg.resource_id.clone()),
                    weight: None,
                }],
                stickiness_seconds: None,
            },
            rules: vec![],
        });
        target_groups.push(tg);
    }

    Ok(Stack {
        load_balancer: LoadBalancer {
            name: lb_name,
            kind: LoadBalancerType::Network,
            scheme,
            ip_address_type,
            subnets,
            security_groups: user_sgs,
            manage_backend_security_group_rules: manage_backend,
            eip_allocations,
            private_ipv4_addresses,
            attributes,
            tags: tags.for_resource(RESOURCE_LOAD_BALANCER),
        },
        id,
        managed_security_group,
        listeners,
        target_groups,
    })
}

/// `scheme`, else the deprecated `internal` bool, else `internal`.
fn scheme(ann: &Annotations) -> Result<Scheme, ModelError> {
    if let Some(s) = a::one_of(
        ann,
        &svc_key("scheme"),
        &[
            ("internal", Scheme::Internal),
            ("internet-facing", Scheme::InternetFacing),
        ],
    )? {
        return Ok(s);
    }
    Ok(match a::bool(ann, &svc_key("internal"))? {
        Some(false) => Scheme::InternetFacing,
        _ => Scheme::Internal,
    })
}

/// The target type: `nlb-target-type`, `ip` for the legacy `nlb-ip`
/// type, else the controller's default.
fn target_type(ann: &Annotations, cfg: &Config) -> Result<TargetType, ModelError> {
    let explicit = a::one_of(
        ann,
        &svc_key("nlb-target-type"),
        &[("instance", TargetType::Instance), ("ip", TargetType::Ip)],
    )?;
    if a::string(ann, ANNOTATION_TYPE) == Some("nlb-ip") {
        return Ok(TargetType::Ip);
    }
    Ok(explicit.unwrap_or(cfg.default_target_type))
}

/// EIP allocations (internet-facing) or private IPv4 addresses
/// (internal), one per subnet.
fn subnet_mappings(
    ann: &Annotations,
    scheme: Scheme,
    subnets: &Subnets,
) -> Result<(Vec<String>, Vec<String>), ModelError> {
    let eip_key = svc_key("eip-allocations");
    let ip_key = svc_key("private-ipv4-addresses");
    let eips = a::string_list(ann, &eip_key);
    let ips = a::string_list(ann, &ip_key);
    if eips.is_some() && ips.is_some() {
        return Err(ModelError::conflict(
            &eip_key,
            format!("cannot be set together with {ip_key}"),
        ));
    }
    let named = match subnets {
        Subnets::Named(n) => Some(n.len()),
        _ => None,
    };
    if let Some(eips) = &eips {
        if scheme == Scheme::Internal {
            return Err(ModelError::conflict(
                &eip_key,
                "EIP allocations need scheme internet-facing",
            ));
        }
        if let Some(n) = named.filter(|n| *n != eips.len()) {
            return Err(ModelError::conflict(
                &eip_key,
                format!(
                    "{} EIP allocations for {n} subnets: give one per subnet",
                    eips.len()
                ),
            ));
        }
    }
    if let Some(ips) = &ips {
        if scheme == Scheme::InternetFacing {
            return Err(ModelError::conflict(
                &ip_key,
                "private IPv4 addresses need scheme internal",
            ));
        }
        if ips
            .iter()
            .any(|ip| ip.parse::<std::net::Ipv4Addr>().is_err())
        {
            return Err(ModelError::invalid(
                &ip_key,
                a::string(ann, &ip_key).unwrap_or_default(),
                "IPv4 addresses, comma-separated, one per subnet",
            ));
        }
        if let Some(n) = named.filter(|n| *n != ips.len()) {
            return Err(ModelError::conflict(
                &ip_key,
                format!(
                    "{} private IPv4 addresses for {n} subnets: give one per subnet",
                    ips.len()
                ),
            ));
        }
    }
    Ok((eips.unwrap_or_default(), ips.unwrap_or_default()))
}

/// `attributes`, over the deprecated access-log and cross-zone
/// annotations.
fn load_balancer_attributes(ann: &Annotations) -> Result<BTreeMap<String, String>, ModelError> {
    let mut attrs = BTreeMap::new();
    if a::bool(ann, &svc_key("access-log-enabled"))? == Some(true) {
        attrs.insert("access_logs.s3.enabled".to_string(), "true".to_string());
        if let Some(b) = a::string(ann, &svc_key("access-log-s3-bucket-name")) {
            attrs.insert("access_logs.s3.bucket".to_string(), b.to_string());
        }
        if let Some(p) = a::string(ann, &svc_key("access-log-s3-bucket-prefix")) {
            attrs.insert("access_logs.s3.prefix".to_string(), p.to_string());
        }
    }
    if let Some(b) = a::bool(ann, &svc_key("cross-zone-load-balancing-enabled"))? {
        attrs.insert(
            "load_balancing.cross_zone.enabled".to_string(),
            b.to_string(),
        );
    }
    let key = svc_key("attributes");
    if let Some(map) = a::string_map(ann, &key)? {
        check_bool_attributes(ann, &key, &map)?;
        attrs.extend(map);
    }
    Ok(attrs)
}

/// Attributes named `*.enabled` take `true` or `false` only.
pub(crate) fn check_bool_attributes(
    ann: &Annotations,
    key: &str,
    map: &BTreeMap<String, String>,
) -> Result<(), ModelError> {
    for (k, v) in map {
        if k.ends_with(".enabled") && v != "true" && v != "false" {
            return Err(ModelError::invalid(
                key,
                a::string(ann, key).unwrap_or_default(),
                format!("key=value pairs where {k} is true or false"),
            ));
        }
    }
    Ok(())
}

/// The managed security group's rules: every source range to every
/// listener port.
fn security_group_rules(
    svc: &Service,
    ann: &Annotations,
    ports: &[ServicePort],
    ip_address_type: IpAddressType,
) -> Result<Vec<SecurityGroupRule>, ModelError> {
    let from_spec = svc
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_source_ranges.clone())
        .unwrap_or_default();
    let (cidrs, source) = if !from_spec.is_empty() {
        (from_spec, "spec.loadBalancerSourceRanges")
    } else {
        (
            a::string_list(ann, ANNOTATION_SOURCE_RANGES).unwrap_or_default(),
            ANNOTATION_SOURCE_RANGES,
        )
    };
    for c in &cidrs {
        if !a::is_cidr(c) {
            return Err(if source == ANNOTATION_SOURCE_RANGES {
                ModelError::invalid(
                    source,
                    a::string(ann, source).unwrap_or_default(),
                    "IPv4 or IPv6 CIDRs, comma-separated, e.g. 10.0.0.0/8,192.168.0.0/16",
                )
            } else {
                ModelError::spec(source, format!("{c} is not a CIDR"))
            });
        }
        if c.contains(':') && ip_address_type != IpAddressType::Dualstack {
            return Err(ModelError::conflict(
                source,
                format!("IPv6 range {c} needs ip-address-type dualstack on the load balancer"),
            ));
        }
    }
    let cidrs = if cidrs.is_empty() {
        let mut d = vec!["0.0.0.0/0".to_string()];
        if ip_address_type == IpAddressType::Dualstack {
            d.push("::/0".to_string());
        }
        d
    } else {
        cidrs
    };
    let mut rules = vec![];
    for p in ports {
        let protocol = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
        for c in &cidrs {
            rules.push(SecurityGroupRule {
                protocol: protocol.clone(),
                from_port: p.port,
                to_port: p.port,
                cidr: c.clone(),
            });
        }
    }
    rules.sort();
    rules.dedup();
    Ok(rules)
}

/// What the listeners share.
struct ListenerConfig {
    certificates: Vec<String>,
    /// Names or numbers; empty = every port.
    tls_ports: Vec<String>,
    ssl_policy: String,
    backend_ssl: bool,
    alpn_policy: Option<String>,
}

impl ListenerConfig {
    fn new(ann: &Annotations, cfg: &Config) -> Result<Self, ModelError> {
        let backend_ssl = a::one_of(
            ann,
            &svc_key("backend-protocol"),
            &[("tcp", false), ("ssl", true)],
        )?
        .unwrap_or(false);
        let alpn_policy = a::one_of(
            ann,
            &svc_key("alpn-policy"),
            &[
                ("None", "None"),
                ("HTTP1Only", "HTTP1Only"),
                ("HTTP2Only", "HTTP2Only"),
                ("HTTP2Optional", "HTTP2Optional"),
                ("HTTP2Preferred", "HTTP2Preferred"),
            ],
        )?
        .map(str::to_string);
        Ok(Self {
            certificates: a::string_list(ann, &svc_key("ssl-cert")).unwrap_or_default(),
            tls_ports: a::string_list(ann, &svc_key("ssl-ports")).unwrap_or_default(),
            ssl_policy: a::string(ann, &svc_key("ssl-negotiation-policy"))
                .unwrap_or(&cfg.default_ssl_policy)
                .to_string(),
            backend_ssl,
            alpn_policy,
        })
    }

    fn is_tls_port(&self, port: &ServicePort) -> bool {
        self.tls_ports.is_empty()
            || self
                .tls_ports
                .iter()
                .any(|p| *p == port.port.to_string() || Some(p.as_str()) == port.name.as_deref())
    }
}

/// What every target group of the Service shares.
struct PortContext<'a> {
    svc: &'a Service,
    ann: &'a Annotations,
    cfg: &'a Config,
    namespace: &'a str,
    name: &'a str,
    uid: &'a str,
    ip_address_type: IpAddressType,
    target_type: TargetType,
    tags: &'a Tagger,
}

fn target_group(
    ctx: &PortContext<'_>,
    field: &str,
    port: &ServicePort,
    protocol: Protocol,
) -> Result<TargetGroup, ModelError> {
    let spec = ctx.svc.spec.as_ref();
    let ann = ctx.ann;
    let target_port = match &port.target_port {
        Some(IntOrString::Int(i)) => i.to_string(),
        Some(IntOrString::String(s)) => s.clone(),
        None => port.port.to_string(),
    };
    let tg_port = match ctx.target_type {
        TargetType::Instance => port.node_port.ok_or_else(|| {
            ModelError::spec(
                format!("{field}.nodePort"),
                "instance targets need a NodePort (is allocateLoadBalancerNodePorts false?); use nlb-target-type ip",
            )
        })?,
        TargetType::Ip => target_port.parse::<i32>().unwrap_or(1),
    };
    let health_check = health_check(ctx)?;

    let attr_key = svc_key("target-group-attributes");
    let mut attributes = a::string_map(ann, &attr_key)?.unwrap_or_default();
    check_bool_attributes(ann, &attr_key, &attributes)?;
    if let Some(v) = attributes.get(TG_PRESERVE_CLIENT_IP)
        && a::parse_bool(v).is_none()
    {
        return Err(ModelError::invalid(
            &attr_key,
            a::string(ann, &attr_key).unwrap_or_default(),
            format!("key=value pairs where {TG_PRESERVE_CLIENT_IP} is true or false"),
        ));
    }
    attributes
        .entry(TG_PROXY_PROTOCOL_V2.to_string())
        .or_insert_with(|| "false".to_string());
    let pp_key = svc_key("proxy-protocol");
    if let Some(pp) = a::string(ann, &pp_key) {
        if pp != "*" {
            return Err(ModelError::invalid(&pp_key, pp, "*"));
        }
        attributes.insert(TG_PROXY_PROTOCOL_V2.to_string(), "true".to_string());
    }

    let node_labels = match ctx.target_type {
        TargetType::Instance => {
            a::string_map(ann, &svc_key("target-node-labels"))?.unwrap_or_default()
        }
        TargetType::Ip => BTreeMap::new(),
    };
    let ipv6 = spec
        .and_then(|s| s.ip_families.as_ref())
        .is_some_and(|f| f.iter().any(|x| x == "IPv6"));
    let ip_address_type = if ipv6 {
        if ctx.ip_address_type != IpAddressType::Dualstack {
            return Err(ModelError::conflict(
                &svc_key("ip-address-type"),
                "an IPv6 Service needs a dualstack load balancer",
            ));
        }
        IpAddressType::Ipv6
    } else {
        IpAddressType::Ipv4
    };
    let resource_id = format!("{}/{}:{}", ctx.namespace, ctx.name, port.port);
    let name = naming::service_target_group(&naming::ServiceTargetGroupKey {
        cluster: &ctx.cfg.cluster_name,
        namespace: ctx.namespace,
        name: ctx.name,
        uid: ctx.uid,
        target_group_port: tg_port,
        service_port: port.port,
        target_type: ctx.target_type,
        protocol,
        health_check_protocol: health_check.protocol,
        health_check_interval: health_check.interval_seconds,
    });
    Ok(TargetGroup {
        tags: ctx.tags.for_resource(&resource_id),
        resource_id,
        name,
        protocol,
        protocol_version: None,
        port: tg_port,
        target_type: ctx.target_type,
        ip_address_type,
        health_check,
        attributes,
        backend: Backend {
            namespace: ctx.namespace.to_string(),
            service: ctx.name.to_string(),
            port_name: port.name.clone().filter(|n| !n.is_empty()),
            port: port.port,
            target_port,
            node_port: port.node_port,
            node_labels,
        },
    })
}

fn health_check(ctx: &PortContext<'_>) -> Result<HealthCheck, ModelError> {
    let ann = ctx.ann;
    let spec = ctx.svc.spec.as_ref();
    let local = ctx.target_type == TargetType::Instance
        && spec.and_then(|s| s.external_traffic_policy.as_deref()) == Some("Local");
    // (protocol, port, path, interval, timeout, healthy, unhealthy)
    let (d_proto, d_port, d_path, d_interval, d_timeout, d_healthy, d_unhealthy) = if local {
        let hc_node_port = spec
            .and_then(|s| s.health_check_node_port)
            .map_or_else(|| "traffic-port".to_string(), |p| p.to_string());
        (Protocol::Http, hc_node_port, "/healthz", 10, 6, 2, 2)
    } else {
        (Protocol::Tcp, "traffic-port".to_string(), "/", 10, 10, 3, 3)
    };
    let proto_key = svc_key("healthcheck-protocol");
    let protocol = match a::string(ann, &proto_key) {
        None => d_proto,
        Some(raw) => match raw.to_ascii_uppercase().as_str() {
            "TCP" => Protocol::Tcp,
            "HTTP" => Protocol::Http,
            "HTTPS" => Protocol::Https,
            _ => return Err(ModelError::invalid(&proto_key, raw, "tcp, http, https")),
        },
    };
    let port_key = svc_key("healthcheck-port");
    let hc_port = match a::string(ann, &port_key) {
        None => d_port,
        Some("traffic-port") => "traffic-port".to_string(),
        Some(raw) => resolve_health_check_port(ctx, &port_key, raw)?,
    };
    let http = protocol != Protocol::Tcp;
    let path = http.then(|| {
        a::string(ann, &svc_key("healthcheck-path"))
            .unwrap_or(d_path)
            .to_string()
    });
    let matcher_key = svc_key("healthcheck-success-codes");
    let matcher = if http {
        let m = a::string(ann, &matcher_key).unwrap_or("200-399");
        if !a::is_matcher(m) {
            return Err(ModelError::invalid(
                &matcher_key,
                m,
                "HTTP codes like 200, 200-399 or 200,202",
            ));
        }
        Some(m.to_string())
    } else {
        None
    };
    let int = |suffix: &str, min: i64, max: i64, d: i32| -> Result<i32, ModelError> {
        Ok(a::int_in(ann, &svc_key(suffix), min, max)?.map_or(d, |v| v as i32))
    };
    Ok(HealthCheck {
        protocol,
        port: hc_port,
        path,
        interval_seconds: int("healthcheck-interval", 5, 300, d_interval)?,
        timeout_seconds: int("healthcheck-timeout", 2, 120, d_timeout)?,
        healthy_threshold: int("healthcheck-healthy-threshold", 2, 10, d_healthy)?,
        unhealthy_threshold: int("healthcheck-unhealthy-threshold", 2, 10, d_unhealthy)?,
        matcher,
    })
}

/// A number, or the name of a Service port (its NodePort for instance
/// targets, its numeric targetPort for ip targets).
fn resolve_health_check_port(
    ctx: &PortContext<'_>,
    key: &str,
    raw: &str,
) -> Result<String, ModelError> {
    let accepted = "traffic-port, a port number (1-65535), or the name of a Service port";
    if let Ok(n) = raw.parse::<i64>() {
        return if (1..=65535).contains(&n) {
            Ok(n.to_string())
        } else {
            Err(ModelError::invalid(key, raw, accepted))
        };
    }
    let ports = ctx
        .svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    let named = ports
        .iter()
        .find(|p| p.name.as_deref() == Some(raw))
        .ok_or_else(|| ModelError::invalid(key, raw, accepted))?;
    match ctx.target_type {
        TargetType::Instance => named.node_port.map(|p| p.to_string()).ok_or_else(|| {
            ModelError::conflict(key, format!("Service port {raw} has no NodePort"))
        }),
        TargetType::Ip => match &named.target_port {
            Some(IntOrString::Int(i)) => Ok(i.to_string()),
            None => Ok(named.port.to_string()),
            Some(IntOrString::String(_)) => Err(ModelError::conflict(
                key,
                format!(
                    "Service port {raw} has a named targetPort; give the health check port as a number"
                ),
            )),
        },
    }
}

/// Tags of one stack: the annotation's extra tags, the controller's
/// default tags over them, and the ownership tags over everything.
pub(crate) struct Tagger {
    base: BTreeMap<String, String>,
    id: StackId,
}

/// Tag key prefixes the controller keeps for itself.
pub(crate) const RESERVED_TAG_PREFIXES: [&str; 3] =
    ["elbv2.k8s.aws/", "service.k8s.aws/", "ingress.k8s.aws/"];

impl Tagger {
    fn new(cfg: &Config, id: &StackId, ann: &Annotations) -> Result<Self, ModelError> {
        let key = svc_key("additional-resource-tags");
        let extra = a::string_map(ann, &key)?.unwrap_or_default();
        check_reserved_tags(ann, &key, &extra)?;
        Ok(Self::from_tags(cfg, id, extra))
    }

    pub(crate) fn from_tags(
        cfg: &Config,
        id: &StackId,
        mut base: BTreeMap<String, String>,
    ) -> Self {
        base.extend(cfg.default_tags.clone());
        base.insert(TAG_CLUSTER.to_string(), cfg.cluster_name.clone());
        base.insert(id.tag_key().to_string(), id.tag_value());
        Self {
            base,
            id: id.clone(),
        }
    }

    /// With the resource tag.
    pub(crate) fn for_resource(&self, resource: &str) -> BTreeMap<String, String> {
        let mut t = self.base.clone();
        t.insert(self.id.resource_tag_key().to_string(), resource.to_string());
        t
    }

    /// With other tags under the default and ownership ones, and the
    /// resource tag.
    pub(crate) fn with_extra(
        &self,
        extra: &BTreeMap<String, String>,
        resource: &str,
    ) -> BTreeMap<String, String> {
        let mut t = extra.clone();
        t.extend(self.base.clone());
        t.insert(self.id.resource_tag_key().to_string(), resource.to_string());
        t
    }
}

/// Users may not set the controller's own tag keys.
pub(crate) fn check_reserved_tags(
    ann: &Annotations,
    key: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), ModelError> {
    if tags
        .keys()
        .any(|k| RESERVED_TAG_PREFIXES.iter().any(|p| k.starts_with(p)))
    {
        return Err(ModelError::invalid(
            key,
            a::string(ann, key).unwrap_or_default(),
            "key=value tags whose keys do not start with elbv2.k8s.aws/, service.k8s.aws/ or ingress.k8s.aws/",
        ));
    }
    Ok(())
}
