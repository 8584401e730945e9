//! Builders for the tests: Kubernetes objects from JSON.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use outrigger_lb_model::Config;
use outrigger_lb_model::ingress::{self, Group};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub fn obj<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a valid object")
}

pub fn cfg() -> Config {
    Config::for_cluster("demo")
}

pub fn alb_class() -> IngressClass {
    obj(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "alb"},
        "spec": {"controller": "ingress.k8s.aws/alb"}
    }))
}

/// A Service with annotations and ports (JSON list).
pub fn svc(ns: &str, name: &str, ty: &str, annotations: Value, ports: Value) -> Service {
    obj(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"namespace": ns, "name": name, "uid": format!("uid-{ns}-{name}"), "annotations": annotations},
        "spec": {"type": ty, "ports": ports}
    }))
}

/// An NLB Service of our class.
pub fn nlb(annotations: Value, ports: Value) -> Service {
    let mut s = svc("default", "web", "LoadBalancer", annotations, ports);
    s.spec.as_mut().unwrap().load_balancer_class = Some("service.k8s.aws/nlb".into());
    s
}

/// A NodePort Service with port 80 (named http) -> 8080, NodePort 30080.
pub fn backend_svc(ns: &str, name: &str) -> Service {
    svc(
        ns,
        name,
        "NodePort",
        json!({}),
        json!([{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}]),
    )
}

/// An Ingress of class alb.
pub fn ing(ns: &str, name: &str, annotations: Value, spec: Value) -> Ingress {
    let mut spec = spec;
    spec["ingressClassName"] = json!("alb");
    obj(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"namespace": ns, "name": name, "annotations": annotations},
        "spec": spec
    }))
}

/// A rule of paths (path, pathType, service, port number).
pub fn rule(host: Option<&str>, paths: &[(&str, &str, &str, i32)]) -> Value {
    let paths: Vec<Value> = paths
        .iter()
        .map(|(p, t, s, port)| {
            json!({"path": p, "pathType": t, "backend": {"service": {"name": s, "port": {"number": port}}}})
        })
        .collect();
    let mut r = json!({"http": {"paths": paths}});
    if let Some(h) = host {
        r["host"] = json!(h);
    }
    r
}

pub fn services(list: Vec<Service>) -> BTreeMap<(String, String), Service> {
    list.into_iter()
        .map(|s| {
            (
                (
                    s.metadata.namespace.clone().unwrap(),
                    s.metadata.name.clone().unwrap(),
                ),
                s,
            )
        })
        .collect()
}

/// The groups of these Ingresses, with the alb class.
pub fn groups(ings: &[Ingress]) -> Vec<Group> {
    ingress::groups(ings, &[alb_class()], &[], &BTreeMap::new(), &cfg())
}

/// The only group.
pub fn group(ings: &[Ingress]) -> Group {
    let mut g = groups(ings);
    assert_eq!(g.len(), 1, "one group expected: {g:?}");
    g.remove(0)
}
