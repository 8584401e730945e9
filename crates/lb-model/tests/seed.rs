//! The walkthrough's two examples, unchanged: `nginx.yaml` (an NLB with ip
//! targets and cross-zone load balancing) and `game-2048.yaml` (an ALB for
//! an Ingress of class alb).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{alb_class, cfg};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use outrigger_lb_model::model::{
    Action, Condition, IpAddressType, LoadBalancerType, Protocol, Scheme, StackId, Target,
    TargetGroupRef, TargetType,
};
use outrigger_lb_model::{ingress, service, targets};
use serde_json::{Value, json};

const NGINX: &str = include_str!("fixtures/nginx.yaml");
const GAME: &str = include_str!("fixtures/game-2048.yaml");

fn find<T: serde::de::DeserializeOwned>(yaml: &str, kind: &str) -> T {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).unwrap();
    let doc = docs
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"));
    serde_json::from_value(doc).unwrap()
}

fn slice(ns: &str, svc: &str, ips: &[&str], port: i32) -> EndpointSlice {
    common::obj(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": ns, "name": format!("{svc}-abc"), "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": "", "port": port, "protocol": "TCP"}],
        "endpoints": ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}})).collect::<Vec<_>>()
    }))
}

#[test]
fn nginx_yaml_becomes_an_internet_facing_nlb_with_ip_targets() {
    let svc: Service = find(NGINX, "Service");
    let cfg = cfg();
    assert!(service::is_ours(&svc, &cfg));
    let stack = service::build(&svc, &cfg).unwrap();
    assert_eq!(
        stack.id,
        StackId::Service {
            namespace: "default".into(),
            name: "nginx-nlb".into()
        }
    );
    let lb = &stack.load_balancer;
    assert_eq!(lb.kind, LoadBalancerType::Network);
    assert_eq!(lb.scheme, Scheme::InternetFacing);
    assert_eq!(lb.ip_address_type, IpAddressType::Ipv4);
    assert!(lb.name.starts_with("k8s-default-nginxnlb-"), "{}", lb.name);
    assert_eq!(lb.name.len(), "k8s-default-nginxnlb-".len() + 10);
    assert_eq!(
        lb.attributes,
        BTreeMap::from([(
            "load_balancing.cross_zone.enabled".to_string(),
            "true".to_string()
        )])
    );
    assert_eq!(lb.tags["elbv2.k8s.aws/cluster"], "demo");
    assert_eq!(lb.tags["service.k8s.aws/stack"], "default/nginx-nlb");
    assert_eq!(lb.tags["service.k8s.aws/resource"], "LoadBalancer");

    assert_eq!(stack.listeners.len(), 1);
    let l = &stack.listeners[0];
    assert_eq!((l.port, l.protocol), (80, Protocol::Tcp));
    assert!(l.certificates.is_empty() && l.rules.is_empty());
    let Action::Forward { target_groups, .. } = &l.default_action else {
        panic!("forward expected: {:?}", l.default_action)
    };
    assert_eq!(
        target_groups[0].target_group,
        TargetGroupRef::Managed("default/nginx-nlb:80".into())
    );

    assert_eq!(stack.target_groups.len(), 1);
    let tg = &stack.target_groups[0];
    assert_eq!(tg.resource_id, "default/nginx-nlb:80");
    assert_eq!(
        (tg.protocol, tg.port, tg.target_type),
        (Protocol::Tcp, 80, TargetType::Ip)
    );
    assert!(tg.name.starts_with("k8s-default-nginxnlb-") && tg.name.len() <= 32);
    assert_eq!(tg.health_check.protocol, Protocol::Tcp);
    assert_eq!(tg.health_check.port, "traffic-port");
    assert_eq!(
        (
            tg.health_check.interval_seconds,
            tg.health_check.timeout_seconds
        ),
        (10, 10)
    );
    assert_eq!(tg.tags["service.k8s.aws/resource"], "default/nginx-nlb:80");

    let sg = stack.managed_security_group.as_ref().unwrap();
    assert_eq!(sg.ingress.len(), 1);
    assert_eq!(
        (
            sg.ingress[0].protocol.as_str(),
            sg.ingress[0].from_port,
            sg.ingress[0].cidr.as_str()
        ),
        ("tcp", 80, "0.0.0.0/0")
    );
    assert_eq!(
        sg.tags["service.k8s.aws/resource"],
        "ManagedLBSecurityGroup"
    );

    // The deployment's three pods.
    let got = targets::ip_targets(
        tg,
        &[slice(
            "default",
            "nginx-nlb",
            &["10.0.1.7", "10.0.2.9", "10.0.3.4"],
            80,
        )],
    );
    assert_eq!(
        got,
        ["10.0.1.7", "10.0.2.9", "10.0.3.4"].map(|ip| Target {
            id: ip.into(),
            port: 80
        })
    );
}

#[test]
fn game_2048_yaml_becomes_an_internet_facing_alb() {
    let ing: Ingress = find(GAME, "Ingress");
    let svc: Service = find(GAME, "Service");
    let cfg = cfg();
    let groups = ingress::groups(
        std::slice::from_ref(&ing),
        &[alb_class()],
        &[],
        &BTreeMap::new(),
        &cfg,
    );
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!(
        g.id,
        StackId::Ingress {
            namespace: "game-2048".into(),
            name: "ingress-2048".into()
        }
    );
    assert_eq!(g.finalizer(), "ingress.k8s.aws/resources");
    let stack = ingress::build(g, &common::services(vec![svc]), &cfg).unwrap();
    let lb = &stack.load_balancer;
    assert_eq!(lb.kind, LoadBalancerType::Application);
    assert_eq!(lb.scheme, Scheme::InternetFacing);
    assert!(lb.name.starts_with("k8s-game2048-ingress2-"), "{}", lb.name);
    assert_eq!(lb.name.len(), 32);
    assert_eq!(lb.tags["ingress.k8s.aws/stack"], "game-2048/ingress-2048");
    assert_eq!(lb.tags["ingress.k8s.aws/resource"], "LoadBalancer");

    assert_eq!(stack.listeners.len(), 1);
    let l = &stack.listeners[0];
    assert_eq!((l.port, l.protocol), (80, Protocol::Http));
    assert_eq!(
        l.default_action,
        Action::FixedResponse {
            status_code: "404".into(),
            content_type: Some("text/plain".into()),
            message_body: None
        }
    );
    assert_eq!(l.rules.len(), 1);
    let r = &l.rules[0];
    assert_eq!(r.priority, 1);
    assert_eq!(r.conditions, [Condition::PathPattern(vec!["/*".into()])]);
    let rid = "game-2048/ingress-2048-service-2048:80";
    let Action::Forward { target_groups, .. } = &r.action else {
        panic!("forward expected: {:?}", r.action)
    };
    assert_eq!(
        target_groups[0].target_group,
        TargetGroupRef::Managed(rid.into())
    );

    let tg = &stack.target_groups[0];
    assert_eq!(tg.resource_id, rid);
    assert_eq!(
        (tg.target_type, tg.protocol, tg.port),
        (TargetType::Ip, Protocol::Http, 80)
    );
    assert_eq!(tg.protocol_version.as_deref(), Some("HTTP1"));
    assert_eq!(
        (tg.backend.namespace.as_str(), tg.backend.service.as_str()),
        ("game-2048", "service-2048")
    );
    let hc = &tg.health_check;
    assert_eq!(
        (
            hc.protocol,
            hc.port.as_str(),
            hc.path.as_deref(),
            hc.matcher.as_deref()
        ),
        (Protocol::Http, "traffic-port", Some("/"), Some("200"))
    );
    assert_eq!(
        (
            hc.interval_seconds,
            hc.timeout_seconds,
            hc.healthy_threshold,
            hc.unhealthy_threshold
        ),
        (15, 5, 2, 2)
    );
    let sg = stack.managed_security_group.as_ref().unwrap();
    assert_eq!(sg.ingress.len(), 1, "ipv4 only: {:?}", sg.ingress);
    assert_eq!(sg.ingress[0].from_port, 80);

    let pods = [
        "10.0.1.10",
        "10.0.1.11",
        "10.0.2.12",
        "10.0.3.13",
        "10.0.3.14",
    ];
    assert_eq!(
        targets::ip_targets(tg, &[slice("game-2048", "service-2048", &pods, 80)]).len(),
        5
    );
}
