//! Properties over random Ingress groups and Services: priorities are
//! 1..n on every listener, every forward resolves to a target group of the
//! stack, names fit ELBv2's 32 characters, and building is deterministic
//! (also when the Ingresses come in another order).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{backend_svc, cfg, groups, ing, services};
use k8s_openapi::api::networking::v1::Ingress;
use outrigger_lb_model::model::{Action, Stack, TargetGroupRef};
use outrigger_lb_model::{ingress, naming, service};
use proptest::prelude::*;
use serde_json::{Value, json};

const NAMESPACES: [&str; 3] = ["a", "team-b", "a-very-long-namespace-name"];
const SERVICES: [&str; 3] = ["svc", "other-service-with-long-name", "missing"];

fn path_strategy() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["Exact", "Prefix", "ImplementationSpecific"]),
        prop::collection::vec("[a-z0-9]{1,6}", 0..4),
        any::<bool>(),
        prop::sample::select(SERVICES.to_vec()),
        prop_oneof![Just(json!({"number": 80})), Just(json!({"name": "http"}))],
    )
        .prop_map(|(ty, segs, trailing, svc, port)| {
            let mut path = format!("/{}", segs.join("/"));
            if trailing && path.len() > 1 {
                path.push('/');
            }
            if ty == "ImplementationSpecific" && segs.len() > 1 {
                path.push('*');
            }
            json!({"path": path, "pathType": ty, "backend": {"service": {"name": svc, "port": port}}})
        })
}

fn rule_strategy() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::sample::select(vec!["a.example.com", "b.example.com"])),
        prop::collection::vec(path_strategy(), 1..6),
    )
        .prop_map(|(host, paths)| {
            let mut r = json!({"http": {"paths": paths}});
            if let Some(h) = host {
                r["host"] = json!(h);
            }
            r
        })
}

fn member_strategy() -> impl Strategy<Value = (usize, i64, bool, bool, Vec<Value>)> {
    (
        0..NAMESPACES.len(),
        -3i64..3,
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(rule_strategy(), 0..4),
    )
}

fn ingresses(members: &[(usize, i64, bool, bool, Vec<Value>)], explicit: bool) -> Vec<Ingress> {
    members
        .iter()
        .enumerate()
        .map(|(i, (ns, order, ip, two_ports, rules))| {
            let mut ann = json!({"alb.ingress.kubernetes.io/group.order": order.to_string()});
            if explicit {
                ann["alb.ingress.kubernetes.io/group.name"] =
                    json!("a-shared-group-with-a-long-name");
            }
            if *ip {
                ann["alb.ingress.kubernetes.io/target-type"] = json!("ip");
            }
            if *two_ports {
                ann["alb.ingress.kubernetes.io/listen-ports"] =
                    json!(r#"[{"HTTP": 80}, {"HTTP": 8080}]"#);
            }
            ing(
                NAMESPACES[*ns],
                &format!("ingress-number-{i}"),
                ann,
                json!({"rules": rules}),
            )
        })
        .collect()
}

fn all_services()
-> std::collections::BTreeMap<(String, String), k8s_openapi::api::core::v1::Service> {
    let mut list = vec![];
    for ns in NAMESPACES {
        for s in &SERVICES[..2] {
            list.push(backend_svc(ns, s));
        }
    }
    services(list)
}

fn check(stack: &Stack) -> Result<(), TestCaseError> {
    let ids: BTreeSet<&str> = stack
        .target_groups
        .iter()
        .map(|t| t.resource_id.as_str())
        .collect();
    prop_assert_eq!(
        ids.len(),
        stack.target_groups.len(),
        "resource ids are unique"
    );
    prop_assert!(stack.load_balancer.name.len() <= naming::MAX_NAME_LEN);
    for tg in &stack.target_groups {
        prop_assert!(tg.name.len() <= naming::MAX_NAME_LEN, "{}", tg.name);
    }
    if let Some(sg) = &stack.managed_security_group {
        prop_assert!(sg.name.len() <= naming::MAX_NAME_LEN, "{}", sg.name);
    }
    for l in &stack.listeners {
        let prios: Vec<i32> = l.rules.iter().map(|r| r.priority).collect();
        let want: Vec<i32> = (1..=l.rules.len() as i32).collect();
        prop_assert_eq!(prios, want, "port {}", l.port);
        for action in std::iter::once(&l.default_action).chain(l.rules.iter().map(|r| &r.action)) {
            if let Action::Forward { target_groups, .. } = action {
                for t in target_groups {
                    if let TargetGroupRef::Managed(id) = &t.target_group {
                        prop_assert!(ids.contains(id.as_str()), "{} does not resolve", id);
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ingress_groups_build_well_formed_stacks(
        members in prop::collection::vec(member_strategy(), 1..5),
        explicit in any::<bool>(),
    ) {
        let ings = ingresses(&members, explicit);
        let svcs = all_services();
        let gs = groups(&ings);
        let mut reversed = ings.clone();
        reversed.reverse();
        let gs_rev = groups(&reversed);
        prop_assert_eq!(&gs, &gs_rev, "groups do not depend on the input order");
        for g in &gs {
            let first = ingress::build(g, &svcs, &cfg());
            let again = ingress::build(g, &svcs, &cfg());
            prop_assert_eq!(&first, &again);
            let stack = first.map_err(|e| TestCaseError::fail(e.to_string()))?;
            check(&stack)?;
        }
    }

    #[test]
    fn service_names_fit_and_are_stable(
        ns in "[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?",
        name in "[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?",
        uid in "[0-9a-f-]{36}",
        internet in any::<bool>(),
        ports in prop::collection::btree_set(1i32..65535, 1..4),
    ) {
        let ports: Vec<Value> = ports.iter().enumerate()
            .map(|(i, p)| json!({"port": p, "targetPort": 8080, "nodePort": 30000 + i as i32}))
            .collect();
        let mut ann = json!({});
        if internet {
            ann["service.beta.kubernetes.io/aws-load-balancer-scheme"] = json!("internet-facing");
        }
        let mut svc = common::svc(&ns, &name, "LoadBalancer", ann, json!(ports));
        svc.metadata.uid = Some(uid);
        svc.spec.as_mut().unwrap().load_balancer_class = Some("service.k8s.aws/nlb".into());
        let stack = service::build(&svc, &cfg()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&stack, &service::build(&svc, &cfg()).unwrap());
        prop_assert!(stack.load_balancer.name.starts_with("k8s-"));
        let names: BTreeSet<&str> = stack.target_groups.iter().map(|t| t.name.as_str()).collect();
        prop_assert_eq!(names.len(), stack.target_groups.len(), "one name per target group");
        check(&stack)?;
    }
}
