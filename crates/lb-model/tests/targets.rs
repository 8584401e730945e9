//! Targets from EndpointSlices (ip) and Nodes (instance).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::obj;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use outrigger_lb_model::model::{
    Backend, HealthCheck, IpAddressType, Protocol, Target, TargetGroup, TargetType,
};
use outrigger_lb_model::targets::{instance_id, instance_targets, ip_targets};
use serde_json::{Value, json};

fn tg(
    port_name: Option<&str>,
    node_port: Option<i32>,
    node_labels: &[(&str, &str)],
) -> TargetGroup {
    TargetGroup {
        resource_id: "web/api:80".into(),
        name: "k8s-web-api-0123456789".into(),
        protocol: Protocol::Tcp,
        protocol_version: None,
        port: 8080,
        target_type: TargetType::Ip,
        ip_address_type: IpAddressType::Ipv4,
        health_check: HealthCheck {
            protocol: Protocol::Tcp,
            port: "traffic-port".into(),
            path: None,
            interval_seconds: 10,
            timeout_seconds: 10,
            healthy_threshold: 3,
            unhealthy_threshold: 3,
            matcher: None,
        },
        attributes: BTreeMap::new(),
        tags: BTreeMap::new(),
        backend: Backend {
            namespace: "web".into(),
            service: "api".into(),
            port_name: port_name.map(str::to_string),
            port: 80,
            target_port: "8080".into(),
            node_port,
            node_labels: node_labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
    }
}

fn slice(ns: &str, svc: &str, family: &str, ports: Value, endpoints: Value) -> EndpointSlice {
    obj(json!({
        "metadata": {"namespace": ns, "name": format!("{svc}-x"), "labels": {"kubernetes.io/service-name": svc}},
        "addressType": family, "ports": ports, "endpoints": endpoints
    }))
}

fn t(id: &str, port: i32) -> Target {
    Target {
        id: id.into(),
        port,
    }
}

#[test]
fn ready_endpoints_of_the_named_port() {
    let ports = json!([{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}]);
    let slices = [
        slice(
            "web",
            "api",
            "IPv4",
            ports.clone(),
            json!([
                {"addresses": ["10.0.0.2"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.1"]},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": false, "terminating": true}},
            ]),
        ),
        // The same pod in a second slice is listed once.
        slice(
            "web",
            "api",
            "IPv4",
            ports.clone(),
            json!([{"addresses": ["10.0.0.2"], "conditions": {"ready": true}}]),
        ),
        slice(
            "web",
            "other",
            "IPv4",
            ports.clone(),
            json!([{"addresses": ["10.9.9.9"]}]),
        ),
        slice(
            "dev",
            "api",
            "IPv4",
            ports.clone(),
            json!([{"addresses": ["10.8.8.8"]}]),
        ),
        slice(
            "web",
            "api",
            "IPv6",
            ports,
            json!([{"addresses": ["fd00::1"]}]),
        ),
    ];
    assert_eq!(
        ip_targets(&tg(Some("http"), None, &[]), &slices),
        [t("10.0.0.1", 8080), t("10.0.0.2", 8080)]
    );
    // A port name no slice has: nothing.
    assert!(ip_targets(&tg(Some("grpc"), None, &[]), &slices).is_empty());
    // An unnamed Service port matches the slice port with an empty name.
    let unnamed = [slice(
        "web",
        "api",
        "IPv4",
        json!([{"name": "", "port": 80}]),
        json!([{"addresses": ["10.0.0.5"]}]),
    )];
    assert_eq!(
        ip_targets(&tg(None, None, &[]), &unnamed),
        [t("10.0.0.5", 80)]
    );
    let mut v6 = tg(Some("http"), None, &[]);
    v6.ip_address_type = IpAddressType::Ipv6;
    assert_eq!(ip_targets(&v6, &slices), [t("fd00::1", 8080)]);
}

fn node(
    name: &str,
    provider_id: Option<&str>,
    labels: Value,
    taints: Value,
    deleting: bool,
) -> Node {
    let mut meta = json!({"name": name, "labels": labels});
    if deleting {
        meta["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    }
    let mut spec = json!({"taints": taints});
    if let Some(p) = provider_id {
        spec["providerID"] = json!(p);
    }
    obj(json!({"metadata": meta, "spec": spec}))
}

#[test]
fn instance_ids_on_the_node_port_of_eligible_nodes() {
    let nodes = [
        node(
            "a",
            Some("aws:///ap-southeast-1a/i-0aaa"),
            json!({"pool": "web"}),
            json!([]),
            false,
        ),
        node(
            "b",
            Some("aws:///ap-southeast-1b/i-0bbb"),
            json!({"pool": "web"}),
            json!([]),
            false,
        ),
        node(
            "excluded",
            Some("aws:///ap-southeast-1a/i-0ccc"),
            json!({"pool": "web", "node.kubernetes.io/exclude-from-external-load-balancers": ""}),
            json!([]),
            false,
        ),
        node(
            "deleting",
            Some("aws:///ap-southeast-1a/i-0ddd"),
            json!({"pool": "web"}),
            json!([]),
            true,
        ),
        node(
            "scaling-down",
            Some("aws:///ap-southeast-1a/i-0eee"),
            json!({"pool": "web"}),
            json!([{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}]),
            false,
        ),
        node(
            "disrupted",
            Some("aws:///ap-southeast-1a/i-0fff"),
            json!({"pool": "web"}),
            json!([{"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}]),
            false,
        ),
        node(
            "fargate",
            Some("aws:///ap-southeast-1a/i-0ggg"),
            json!({"pool": "web", "eks.amazonaws.com/compute-type": "fargate"}),
            json!([]),
            false,
        ),
        node(
            "batch",
            Some("aws:///ap-southeast-1c/i-0hhh"),
            json!({"pool": "batch"}),
            json!([]),
            false,
        ),
        node(
            "no-provider",
            None,
            json!({"pool": "web"}),
            json!([]),
            false,
        ),
    ];
    assert_eq!(
        instance_targets(&tg(None, Some(30080), &[("pool", "web")]), &nodes),
        [t("i-0aaa", 30080), t("i-0bbb", 30080)]
    );
    assert_eq!(
        instance_targets(&tg(None, Some(30080), &[]), &nodes).len(),
        3
    );
    assert!(instance_targets(&tg(None, None, &[]), &nodes).is_empty());
    assert_eq!(instance_id(&nodes[0]), Some("i-0aaa"));
    assert_eq!(instance_id(&nodes[8]), None);
}
