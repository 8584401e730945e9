//! Target groups: one per Ingress, Service and port, with the backend
//! settings of the Ingress's and the Service's annotations (the Service's
//! win) and the ALB health check.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use outrigger_lb_api::v1beta1 as api;

use super::settings::class_tags;
use super::stack::Builder;
use crate::ModelError;
use crate::annotations::{self as a, Annotations, ing_key};
use crate::model::{Backend, HealthCheck, IpAddressType, Protocol, TargetGroup, TargetType};
use crate::naming;
use crate::service::{check_bool_attributes, check_reserved_tags};

impl Builder<'_> {
    /// The target group for a member's backend (made once per Ingress,
    /// Service and port); its resource id.
    pub(super) fn target_group(
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
