//! Services -> NLB: which are ours, the annotations, and the errors.
#![allow(clippy::unwrap_used)]

mod common;

use common::{cfg, nlb, svc};
use outrigger_lb_model::model::{Action, IpAddressType, Protocol, Scheme, Subnets, TargetType};
use outrigger_lb_model::{ModelError, service};
use serde_json::json;

const T: &str = "service.beta.kubernetes.io/aws-load-balancer-";

fn key(s: &str) -> String {
    format!("{T}{s}")
}

fn port80() -> serde_json::Value {
    json!([{"port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}])
}

fn err(s: &k8s_openapi::api::core::v1::Service) -> ModelError {
    service::build(s, &cfg()).unwrap_err()
}

#[test]
fn which_services_are_ours() {
    let c = cfg();
    assert!(service::is_ours(&nlb(json!({}), port80()), &c));
    let ext = svc(
        "d",
        "a",
        "LoadBalancer",
        json!({key("type"): "external"}),
        port80(),
    );
    assert!(service::is_ours(&ext, &c));
    let nlb_ip = svc(
        "d",
        "a",
        "LoadBalancer",
        json!({key("type"): "nlb-ip"}),
        port80(),
    );
    assert!(service::is_ours(&nlb_ip, &c));
    assert!(!service::is_ours(
        &svc("d", "a", "LoadBalancer", json!({}), port80()),
        &c
    ));
    assert!(!service::is_ours(
        &svc(
            "d",
            "a",
            "NodePort",
            json!({key("type"): "external"}),
            port80()
        ),
        &c
    ));
    // Another class is never ours, whatever the annotation says.
    let mut other = svc(
        "d",
        "a",
        "LoadBalancer",
        json!({key("type"): "external"}),
        port80(),
    );
    other.spec.as_mut().unwrap().load_balancer_class = Some("example.com/lb".into());
    assert!(!service::is_ours(&other, &c));
}

#[test]
fn an_invalid_target_type_names_the_annotation_and_the_accepted_values() {
    let s = nlb(json!({key("nlb-target-type"): "bogus"}), port80());
    assert_eq!(
        err(&s).to_string(),
        "invalid value \"bogus\" for annotation service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: accepted values are instance, ip"
    );
    assert_eq!(err(&s).reason(), "InvalidAnnotation");
}

#[test]
fn invalid_scheme_map_and_ranges() {
    let e = err(&nlb(json!({key("scheme"): "public"}), port80()));
    assert_eq!(
        e.to_string(),
        "invalid value \"public\" for annotation service.beta.kubernetes.io/aws-load-balancer-scheme: accepted values are internal, internet-facing"
    );
    let e = err(&nlb(
        json!({key("attributes"): "load_balancing.cross_zone.enabled"}),
        port80(),
    ));
    assert!(
        matches!(&e, ModelError::InvalidAnnotation { annotation, .. } if *annotation == key("attributes")),
        "{e}"
    );
    let e = err(&nlb(
        json!({key("attributes"): "load_balancing.cross_zone.enabled=yes"}),
        port80(),
    ));
    assert!(e.to_string().contains("is true or false"), "{e}");
    let e = err(&nlb(
        json!({key("additional-resource-tags"): "team=web,,owner"}),
        port80(),
    ));
    assert!(e.to_string().contains("key=value"), "{e}");
    let e = err(&nlb(json!({key("healthcheck-interval"): "1"}), port80()));
    assert!(e.to_string().contains("an integer from 5 to 300"), "{e}");
    let e = err(&nlb(json!({key("healthcheck-protocol"): "udp"}), port80()));
    assert!(
        e.to_string()
            .ends_with("accepted values are tcp, http, https"),
        "{e}"
    );
    let e = err(&nlb(json!({key("proxy-protocol"): "v2"}), port80()));
    assert!(e.to_string().ends_with("accepted values are *"), "{e}");
    let e = err(&nlb(json!({key("internal"): "maybe"}), port80()));
    assert!(
        e.to_string().ends_with("accepted values are true, false"),
        "{e}"
    );
    let e = err(&nlb(json!({key("name"): "a".repeat(33)}), port80()));
    assert!(matches!(e, ModelError::InvalidAnnotation { .. }), "{e}");
    let e = err(&nlb(
        json!({key("additional-resource-tags"): "elbv2.k8s.aws/cluster=other"}),
        port80(),
    ));
    assert!(
        e.to_string().contains("do not start with elbv2.k8s.aws/"),
        "{e}"
    );
}

#[test]
fn defaults_with_our_class() {
    let stack = service::build(&nlb(json!({}), port80()), &cfg()).unwrap();
    let lb = &stack.load_balancer;
    assert_eq!(lb.scheme, Scheme::Internal);
    assert_eq!(lb.subnets, Subnets::Discover);
    assert!(lb.manage_backend_security_group_rules);
    assert!(lb.attributes.is_empty());
    let tg = &stack.target_groups[0];
    assert_eq!(tg.target_type, TargetType::Instance);
    assert_eq!(tg.port, 30080);
    assert_eq!(tg.backend.node_port, Some(30080));
    assert_eq!(tg.backend.target_port, "8080");
    assert_eq!(tg.attributes["proxy_protocol_v2.enabled"], "false");
    let hc = &tg.health_check;
    assert_eq!(
        (hc.protocol, hc.healthy_threshold, hc.unhealthy_threshold),
        (Protocol::Tcp, 3, 3)
    );
    assert_eq!((hc.path.as_deref(), hc.matcher.as_deref()), (None, None));
}

#[test]
fn instance_targets_need_a_node_port_and_nlb_ip_means_ip() {
    let ports = json!([{"port": 80, "targetPort": "web"}]);
    let e = err(&nlb(json!({}), ports.clone()));
    assert_eq!(e.reason(), "InvalidSpec");
    assert!(e.to_string().starts_with("spec.ports[0].nodePort:"), "{e}");
    let s = svc(
        "d",
        "a",
        "LoadBalancer",
        json!({key("type"): "nlb-ip"}),
        ports,
    );
    let tg = &service::build(&s, &cfg()).unwrap().target_groups[0];
    assert_eq!(tg.target_type, TargetType::Ip);
    // A named targetPort: the group's port is 1 (not in the data path).
    assert_eq!((tg.port, tg.backend.target_port.as_str()), (1, "web"));
}

#[test]
fn tls_ports_certificates_policy_alpn_and_backend_ssl() {
    let s = nlb(
        json!({
            key("ssl-cert"): "arn:cert-1, arn:cert-2",
            key("ssl-ports"): "https, 8443",
            key("backend-protocol"): "ssl",
            key("alpn-policy"): "HTTP2Preferred",
        }),
        json!([
            {"name": "http", "port": 80, "nodePort": 30080},
            {"name": "https", "port": 443, "nodePort": 30443},
            {"name": "alt", "port": 8443, "nodePort": 30843},
            {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}
        ]),
    );
    let stack = service::build(&s, &cfg()).unwrap();
    let by_port = |p: i32| stack.listeners.iter().find(|l| l.port == p).unwrap();
    assert_eq!(by_port(80).protocol, Protocol::Tcp);
    assert!(by_port(80).certificates.is_empty() && by_port(80).ssl_policy.is_none());
    for p in [443, 8443] {
        let l = by_port(p);
        assert_eq!(l.protocol, Protocol::Tls);
        assert_eq!(l.certificates, ["arn:cert-1", "arn:cert-2"]);
        assert_eq!(l.ssl_policy.as_deref(), Some("ELBSecurityPolicy-2016-08"));
        assert_eq!(l.alpn_policy.as_deref(), Some("HTTP2Preferred"));
    }
    assert_eq!(by_port(53).protocol, Protocol::Udp);
    let tg = |p: i32| {
        stack
            .target_groups
            .iter()
            .find(|t| t.backend.port == p)
            .unwrap()
    };
    assert_eq!(tg(443).protocol, Protocol::Tls);
    assert_eq!(tg(80).protocol, Protocol::Tcp);
    assert_eq!(tg(53).protocol, Protocol::Udp);
    let sg = stack.managed_security_group.as_ref().unwrap();
    assert!(
        sg.ingress
            .iter()
            .any(|r| r.protocol == "udp" && r.from_port == 53)
    );
    let e = err(&nlb(json!({key("alpn-policy"): "h2"}), port80()));
    assert!(
        e.to_string()
            .ends_with("None, HTTP1Only, HTTP2Only, HTTP2Optional, HTTP2Preferred"),
        "{e}"
    );
}

#[test]
fn health_check_annotations_and_local_traffic_policy() {
    let s = nlb(
        json!({
            key("healthcheck-protocol"): "HTTP",
            key("healthcheck-path"): "/ready",
            key("healthcheck-port"): "8081",
            key("healthcheck-healthy-threshold"): "2",
            key("healthcheck-unhealthy-threshold"): "4",
            key("healthcheck-timeout"): "6",
            key("healthcheck-interval"): "20",
            key("healthcheck-success-codes"): "200-299",
        }),
        port80(),
    );
    let hc = service::build(&s, &cfg()).unwrap().target_groups[0]
        .health_check
        .clone();
    assert_eq!(hc.protocol, Protocol::Http);
    assert_eq!(
        (hc.port.as_str(), hc.path.as_deref(), hc.matcher.as_deref()),
        ("8081", Some("/ready"), Some("200-299"))
    );
    assert_eq!(
        (
            hc.interval_seconds,
            hc.timeout_seconds,
            hc.healthy_threshold,
            hc.unhealthy_threshold
        ),
        (20, 6, 2, 4)
    );
    let mut local = nlb(json!({}), port80());
    let spec = local.spec.as_mut().unwrap();
    spec.external_traffic_policy = Some("Local".into());
    spec.health_check_node_port = Some(31999);
    let hc = service::build(&local, &cfg()).unwrap().target_groups[0]
        .health_check
        .clone();
    assert_eq!(
        (hc.protocol, hc.port.as_str(), hc.path.as_deref()),
        (Protocol::Http, "31999", Some("/healthz"))
    );
    assert_eq!((hc.timeout_seconds, hc.healthy_threshold), (6, 2));
    // A health check port by Service port name.
    let named = nlb(
        json!({key("healthcheck-port"): "status"}),
        json!([{"port": 80, "nodePort": 30080}, {"name": "status", "port": 9000, "nodePort": 30900}]),
    );
    assert_eq!(
        service::build(&named, &cfg()).unwrap().target_groups[0]
            .health_check
            .port,
        "30900"
    );
    let e = err(&nlb(json!({key("healthcheck-port"): "nope"}), port80()));
    assert!(e.to_string().contains("the name of a Service port"), "{e}");
}

#[test]
fn attributes_proxy_protocol_node_labels_and_tags() {
    let s = nlb(
        json!({
            key("attributes"): "deletion_protection.enabled=true",
            key("cross-zone-load-balancing-enabled"): "true",
            key("proxy-protocol"): "*",
            key("target-group-attributes"): "deregistration_delay.timeout_seconds=10,preserve_client_ip.enabled=false",
            key("target-node-labels"): "pool=web",
            key("additional-resource-tags"): "team=web, env=prod",
        }),
        port80(),
    );
    let stack = service::build(&s, &cfg()).unwrap();
    let lb = &stack.load_balancer;
    assert_eq!(lb.attributes["deletion_protection.enabled"], "true");
    assert_eq!(lb.attributes["load_balancing.cross_zone.enabled"], "true");
    let tg = &stack.target_groups[0];
    assert_eq!(tg.attributes["proxy_protocol_v2.enabled"], "true");
    assert_eq!(tg.attributes["deregistration_delay.timeout_seconds"], "10");
    assert_eq!(tg.backend.node_labels["pool"], "web");
    for tags in [
        &lb.tags,
        &tg.tags,
        &stack.managed_security_group.as_ref().unwrap().tags,
    ] {
        assert_eq!(tags["team"], "web");
        assert_eq!(tags["env"], "prod");
        assert_eq!(tags["elbv2.k8s.aws/cluster"], "demo");
    }
}

#[test]
fn source_ranges_and_security_groups() {
    let mut s = nlb(
        json!({"service.beta.kubernetes.io/load-balancer-source-ranges": "192.168.0.0/16"}),
        port80(),
    );
    s.spec.as_mut().unwrap().load_balancer_source_ranges =
        Some(vec!["10.0.0.0/8".into(), "172.16.0.0/12".into()]);
    let sg = service::build(&s, &cfg())
        .unwrap()
        .managed_security_group
        .unwrap();
    let cidrs: Vec<&str> = sg.ingress.iter().map(|r| r.cidr.as_str()).collect();
    assert_eq!(
        cidrs,
        ["10.0.0.0/8", "172.16.0.0/12"],
        "the spec wins over the annotation"
    );

    let s = nlb(
        json!({"service.beta.kubernetes.io/load-balancer-source-ranges": "192.168.0.0/16"}),
        port80(),
    );
    let sg = service::build(&s, &cfg())
        .unwrap()
        .managed_security_group
        .unwrap();
    assert_eq!(sg.ingress[0].cidr, "192.168.0.0/16");

    let e = err(&nlb(
        json!({"service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0"}),
        port80(),
    ));
    assert!(e.to_string().contains("CIDRs"), "{e}");
    let e = err(&nlb(
        json!({"service.beta.kubernetes.io/load-balancer-source-ranges": "::/0"}),
        port80(),
    ));
    assert!(e.to_string().contains("dualstack"), "{e}");
    let dual = nlb(json!({key("ip-address-type"): "dualstack"}), port80());
    let sg = service::build(&dual, &cfg())
        .unwrap()
        .managed_security_group
        .unwrap();
    assert_eq!(sg.ingress.len(), 2);

    let custom = nlb(
        json!({key("security-groups"): "sg-1, web-sg", key("manage-backend-security-group-rules"): "false"}),
        port80(),
    );
    let stack = service::build(&custom, &cfg()).unwrap();
    assert!(stack.managed_security_group.is_none());
    assert_eq!(stack.load_balancer.security_groups, ["sg-1", "web-sg"]);
    assert!(!stack.load_balancer.manage_backend_security_group_rules);
}

#[test]
fn subnets_eips_private_addresses_and_names() {
    let s = nlb(
        json!({
            key("scheme"): "internet-facing",
            key("subnets"): "subnet-a, subnet-b",
            key("eip-allocations"): "eipalloc-1,eipalloc-2",
            key("name"): "my-nlb",
            key("ip-address-type"): "dualstack",
        }),
        port80(),
    );
    let lb = service::build(&s, &cfg()).unwrap().load_balancer;
    assert_eq!(lb.name, "my-nlb");
    assert_eq!(
        lb.subnets,
        Subnets::Named(vec!["subnet-a".into(), "subnet-b".into()])
    );
    assert_eq!(lb.eip_allocations, ["eipalloc-1", "eipalloc-2"]);
    assert_eq!(lb.ip_address_type, IpAddressType::Dualstack);

    let e = err(&nlb(
        json!({key("eip-allocations"): "eipalloc-1"}),
        port80(),
    ));
    assert!(e.to_string().contains("internet-facing"), "{e}");
    let e = err(&nlb(
        json!({key("scheme"): "internet-facing", key("subnets"): "subnet-a", key("eip-allocations"): "e1,e2"}),
        port80(),
    ));
    assert!(e.to_string().contains("one per subnet"), "{e}");
    let s = nlb(json!({key("private-ipv4-addresses"): "10.0.1.5"}), port80());
    assert_eq!(
        service::build(&s, &cfg())
            .unwrap()
            .load_balancer
            .private_ipv4_addresses,
        ["10.0.1.5"]
    );
    let e = err(&nlb(
        json!({key("private-ipv4-addresses"): "10.0.1"}),
        port80(),
    ));
    assert!(matches!(e, ModelError::InvalidAnnotation { .. }), "{e}");
    // The deprecated `internal` annotation.
    let s = nlb(json!({key("internal"): "false"}), port80());
    assert_eq!(
        service::build(&s, &cfg()).unwrap().load_balancer.scheme,
        Scheme::InternetFacing
    );
}

#[test]
fn ports_one_listener_and_group_each() {
    let s = nlb(
        json!({}),
        json!([{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81, "nodePort": 30081}]),
    );
    let stack = service::build(&s, &cfg()).unwrap();
    assert_eq!(stack.listeners.len(), 2);
    assert_eq!(stack.target_groups.len(), 2);
    assert_ne!(stack.target_groups[0].name, stack.target_groups[1].name);
    for l in &stack.listeners {
        let Action::Forward { target_groups, .. } = &l.default_action else {
            panic!()
        };
        assert_eq!(target_groups.len(), 1);
    }
    let e = err(&nlb(
        json!({}),
        json!([{"port": 80, "protocol": "SCTP", "nodePort": 30080}]),
    ));
    assert!(e.to_string().contains("SCTP"), "{e}");
    let e = err(&nlb(json!({}), json!([])));
    assert!(e.to_string().starts_with("spec.ports:"), "{e}");
}
