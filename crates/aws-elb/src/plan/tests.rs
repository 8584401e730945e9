//! The planner alone: plain data in, plain data out; no AWS, no runtime.

use std::collections::{BTreeMap, BTreeSet};

use outrigger_lb_model::model::{
    Action, Backend, Condition, HealthCheck, IpAddressType, Listener, LoadBalancer,
    LoadBalancerType, Protocol, Rule, Scheme, SecurityGroup, SecurityGroupRule, Stack, StackId,
    Subnets, TAG_CLUSTER, Target, TargetGroup, TargetGroupRef, TargetType, WeightedTarget,
};

use super::*;
use crate::inventory::{Inventory, LbInfo, SgInfo, TgInfo};

// --- Builders -------------------------------------------------------------

fn id() -> StackId {
    StackId::Service {
        namespace: "ns".into(),
        name: "svc".into(),
    }
}

fn other_id() -> StackId {
    StackId::Service {
        namespace: "ns".into(),
        name: "other".into(),
    }
}

/// The tags of `resource` in the stack `id`.
fn tags(id: &StackId, resource: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_CLUSTER.to_string(), "cluster".to_string()),
        (id.tag_key().to_string(), id.tag_value()),
        (id.resource_tag_key().to_string(), resource.to_string()),
    ])
}

fn stack(kind: LoadBalancerType) -> Stack {
    Stack {
        id: id(),
        load_balancer: LoadBalancer {
            name: "k8s-ns-svc-abc".into(),
            kind,
            scheme: Scheme::Internal,
            ip_address_type: IpAddressType::Ipv4,
            subnets: Subnets::Discover,
            security_groups: vec![],
            manage_backend_security_group_rules: true,
            eip_allocations: vec![],
            private_ipv4_addresses: vec![],
            attributes: BTreeMap::new(),
            tags: tags(&id(), RESOURCE_LOAD_BALANCER),
        },
        managed_security_group: None,
        listeners: vec![],
        target_groups: vec![],
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The load balancer as ELBv2 has it once `stack`'s is made, in `subnets`
/// with `sgs`.
fn lb_info(stack: &Stack, subnets: &[&str], sgs: &[&str]) -> LbInfo {
    let lb = &stack.load_balancer;
    LbInfo {
        name: lb.name.clone(),
        dns_name: "lb.example.com".into(),
        kind: lb.kind.as_str().into(),
        scheme: lb.scheme.as_str().into(),
        ip_address_type: lb.ip_address_type.as_str().into(),
        subnets: set(subnets),
        security_groups: set(sgs),
        tags: lb.tags.clone(),
    }
}

fn tg_model(resource_id: &str, name: &str) -> TargetGroup {
    TargetGroup {
        resource_id: resource_id.into(),
        name: name.into(),
        protocol: Protocol::Tcp,
        protocol_version: None,
        port: 30080,
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
        tags: tags(&id(), resource_id),
        backend: Backend {
            namespace: "ns".into(),
            service: "svc".into(),
            port_name: None,
            port: 80,
            target_port: "8080".into(),
            node_port: None,
            node_labels: BTreeMap::new(),
        },
    }
}

fn tg_info(tg: &TargetGroup) -> TgInfo {
    TgInfo {
        name: tg.name.clone(),
        health: health_key(tg),
        tags: tg.tags.clone(),
    }
}

fn forward(resource_id: &str) -> Action {
    Action::Forward {
        target_groups: vec![WeightedTarget {
            target_group: TargetGroupRef::Managed(resource_id.into()),
            weight: None,
        }],
        stickiness_seconds: None,
    }
}

fn fixed(status: &str) -> Action {
    Action::FixedResponse {
        status_code: status.into(),
        content_type: None,
        message_body: None,
    }
}

fn listener(port: i32, protocol: Protocol, default_action: Action) -> Listener {
    Listener {
        port,
        protocol,
        certificates: vec![],
        ssl_policy: None,
        alpn_policy: None,
        default_action,
        rules: vec![],
    }
}

fn rule(priority: i32, path: &str, action: Action) -> Rule {
    Rule {
        priority,
        conditions: vec![Condition::PathPattern(vec![path.into()])],
        action,
    }
}

fn tg_arns() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("ns/a:80".to_string(), "arn:tg/a".to_string()),
        ("ns/b:80".to_string(), "arn:tg/b".to_string()),
    ])
}

fn resolve(listeners: &[Listener]) -> Vec<WantedListener<'_>> {
    resolve_listeners(listeners, &tg_arns()).expect("every target group is known")
}

/// What ELBv2 has once the executor carried out the plan for `wanted`
/// from nothing: what the applied memo then holds.
fn applied(wanted: &[WantedListener]) -> BTreeMap<i32, ListenerState> {
    let mut now = BTreeMap::new();
    for step in listeners(&BTreeMap::new(), wanted) {
        let ListenerStep::Apply(a) = step else {
            panic!("nothing to delete from nothing");
        };
        let port = a.wanted.listener.port;
        let known = a.known_rules.expect("a new listener has no rules");
        let rules_now: Rules = rules(&known, &a.wanted.rules)
            .into_iter()
            .map(|s| match s {
                RuleStep::Create { rule } => (
                    rule.priority,
                    (format!("arn:rule/{port}/{}", rule.priority), rule.key()),
                ),
                other => panic!("a new listener only creates rules: {other:?}"),
            })
            .collect();
        now.insert(
            port,
            ListenerState {
                arn: format!("arn:listener/{port}"),
                key: a.key,
                rules: Some(rules_now),
            },
        );
    }
    now
}

/// The listener steps as (call, port) in order; `None` for a kept one.
fn listener_calls(steps: &[ListenerStep]) -> Vec<(Option<&'static str>, i32)> {
    steps
        .iter()
        .map(|s| match s {
            ListenerStep::Delete { port, .. } => (Some("DeleteListener"), *port),
            ListenerStep::Apply(a) => {
                let call = match a.op {
                    ListenerOp::Create => Some("CreateListener"),
                    ListenerOp::Modify { .. } => Some("ModifyListener"),
                    ListenerOp::Compare { .. } => Some("DescribeListenerCertificates"),
                    ListenerOp::Keep { .. } => None,
                };
                (call, a.wanted.listener.port)
            }
        })
        .collect()
}

fn sg_rule(cidr: &str, port: i32) -> SecurityGroupRule {
    SecurityGroupRule {
        protocol: "tcp".into(),
        from_port: port,
        to_port: port,
        cidr: cidr.into(),
    }
}

fn targets_n(range: std::ops::Range<usize>) -> BTreeSet<Target> {
    range
        .map(|i| Target {
            id: format!("10.0.{}.{}", i / 256, i % 256),
            port: 8080,
        })
        .collect()
}

// --- Security group -------------------------------------------------------

#[test]
fn a_missing_managed_security_group_is_created_with_every_rule() {
    let sg = SecurityGroup {
        name: "k8s-ns-svc-abc".into(),
        description: "managed".into(),
        ingress: vec![sg_rule("0.0.0.0/0", 443), sg_rule("0.0.0.0/0", 80)],
        tags: tags(&id(), RESOURCE_MANAGED_SG),
    };
    // Another stack's group is not this one.
    let sgs = BTreeMap::from([(
        "sg-other".to_string(),
        SgInfo {
            tags: tags(&other_id(), RESOURCE_MANAGED_SG),
            rules: BTreeSet::new(),
        },
    )]);
    let plan = security_group(&sgs, &id(), &sg);
    assert_eq!(plan.existing, None);
    // In the rules' order, whatever the model's.
    assert_eq!(
        plan.ingress.add,
        vec![sg_rule("0.0.0.0/0", 80), sg_rule("0.0.0.0/0", 443)]
    );
    assert!(plan.ingress.remove.is_empty());
}

#[test]
fn security_group_rules_are_added_and_removed_by_difference() {
    let sg = SecurityGroup {
        name: "k8s-ns-svc-abc".into(),
        description: "managed".into(),
        ingress: vec![sg_rule("10.0.0.0/8", 443), sg_rule("0.0.0.0/0", 80)],
        tags: tags(&id(), RESOURCE_MANAGED_SG),
    };
    let sgs = BTreeMap::from([(
        "sg-1".to_string(),
        SgInfo {
            tags: tags(&id(), RESOURCE_MANAGED_SG),
            rules: [sg_rule("0.0.0.0/0", 80), sg_rule("0.0.0.0/0", 443)].into(),
        },
    )]);
    let plan = security_group(&sgs, &id(), &sg);
    assert_eq!(plan.existing.as_deref(), Some("sg-1"));
    assert_eq!(plan.ingress.add, vec![sg_rule("10.0.0.0/8", 443)]);
    assert_eq!(plan.ingress.remove, vec![sg_rule("0.0.0.0/0", 443)]);
    assert_eq!(plan.want, sg.ingress.iter().cloned().collect());
}

#[test]
fn an_unchanged_security_group_needs_no_rule_change() {
    let rules: BTreeSet<SecurityGroupRule> = [sg_rule("0.0.0.0/0", 80)].into();
    assert_eq!(ingress(&rules, &rules), IngressPlan::default());
}

// --- Target groups --------------------------------------------------------

#[test]
fn an_unchanged_target_group_is_reused_without_calls() {
    let tg = tg_model("ns/a:80", "k8s-ns-a-111");
    let tgs = BTreeMap::from([("arn:tg/a".to_string(), tg_info(&tg))]);
    assert_eq!(
        target_group(&tgs, &id(), &tg),
        TargetGroupPlan::Reuse {
            arn: "arn:tg/a".into(),
            modify_health_check: false
        }
    );
    // Its attributes as applied before: no call either.
    let applied = BTreeMap::from([("stickiness.enabled".to_string(), "true".to_string())]);
    assert_eq!(
        target_group_attributes(false, Some(&applied), &applied),
        AttributesPlan::Applied
    );
}

#[test]
fn a_changed_health_check_is_modified_in_place() {
    let tg = tg_model("ns/a:80", "k8s-ns-a-111");
    let tgs = BTreeMap::from([("arn:tg/a".to_string(), tg_info(&tg))]);
    let mut changed = tg.clone();
    changed.health_check.interval_seconds = 30;
    assert_eq!(
        target_group(&tgs, &id(), &changed),
        TargetGroupPlan::Reuse {
            arn: "arn:tg/a".into(),
            modify_health_check: true
        }
    );
}

#[test]
fn a_renamed_target_group_is_created_and_the_old_one_goes_stale() {
    let old = tg_model("ns/a:80", "k8s-ns-a-111");
    let other = TargetGroup {
        tags: tags(&other_id(), "ns/a:80"),
        ..tg_model("ns/a:80", "k8s-ns-other-222")
    };
    let tgs = BTreeMap::from([
        ("arn:tg/old".to_string(), tg_info(&old)),
        ("arn:tg/other".to_string(), tg_info(&other)),
    ]);
    // A new name (what cannot change in place changed): a new group.
    let renamed = tg_model("ns/a:80", "k8s-ns-a-333");
    assert_eq!(target_group(&tgs, &id(), &renamed), TargetGroupPlan::Create);
    // Once created, the old one of this stack is stale; another stack's
    // is left alone.
    let keep = BTreeMap::from([("ns/a:80".to_string(), "arn:tg/new".to_string())]);
    assert_eq!(
        stale_target_groups(&tgs, &id(), &keep),
        vec!["arn:tg/old".to_string()]
    );
    let keep_old = BTreeMap::from([("ns/a:80".to_string(), "arn:tg/old".to_string())]);
    assert!(stale_target_groups(&tgs, &id(), &keep_old).is_empty());
}

// --- Attributes -----------------------------------------------------------

#[test]
fn a_new_target_group_with_only_default_attributes_needs_no_modify() {
    let want = BTreeMap::from([
        (
            "deregistration_delay.timeout_seconds".to_string(),
            "300".to_string(),
        ),
        ("stickiness.enabled".to_string(), "false".to_string()),
    ]);
    assert_eq!(
        target_group_attributes(true, None, &want),
        AttributesPlan::Remember
    );
    assert_eq!(
        target_group_attributes(true, None, &BTreeMap::new()),
        AttributesPlan::Remember
    );
}

#[test]
fn a_new_target_group_with_a_non_default_attribute_is_modified() {
    let want = BTreeMap::from([
        (
            "deregistration_delay.timeout_seconds".to_string(),
            "30".to_string(),
        ),
        ("stickiness.enabled".to_string(), "false".to_string()),
    ]);
    assert_eq!(
        target_group_attributes(true, None, &want),
        AttributesPlan::Modify
    );
    // An attribute whose default is not known is set.
    let unknown = BTreeMap::from([("preserve_client_ip.enabled".to_string(), "true".to_string())]);
    assert_eq!(
        target_group_attributes(true, None, &unknown),
        AttributesPlan::Modify
    );
}

#[test]
fn an_existing_target_group_s_attributes_are_set_once_then_remembered() {
    let want = BTreeMap::from([("stickiness.enabled".to_string(), "false".to_string())]);
    // Not known to have the defaults: set, even to a default value.
    assert_eq!(
        target_group_attributes(false, None, &want),
        AttributesPlan::Modify
    );
    let before = BTreeMap::from([("stickiness.enabled".to_string(), "true".to_string())]);
    assert_eq!(
        target_group_attributes(false, Some(&before), &want),
        AttributesPlan::Modify
    );
    assert_eq!(
        target_group_attributes(false, Some(&want), &want),
        AttributesPlan::Applied
    );
}

#[test]
fn load_balancer_attributes_are_set_unless_none_or_applied_already() {
    let want = BTreeMap::from([(
        "load_balancing.cross_zone.enabled".to_string(),
        "true".to_string(),
    )]);
    assert_eq!(
        load_balancer_attributes(None, &want),
        AttributesPlan::Modify
    );
    assert_eq!(
        load_balancer_attributes(Some(&want), &want),
        AttributesPlan::Applied
    );
    assert_eq!(
        load_balancer_attributes(None, &BTreeMap::new()),
        AttributesPlan::Remember
    );
}

// --- Load balancer --------------------------------------------------------

#[test]
fn an_unchanged_load_balancer_is_kept_without_calls() {
    let s = stack(LoadBalancerType::Application);
    let lbs = BTreeMap::from([(
        "arn:lb/1".to_string(),
        lb_info(&s, &["subnet-a", "subnet-b"], &["sg-1"]),
    )]);
    let plan = load_balancer(&lbs, &s, &set(&["subnet-a", "subnet-b"]), &set(&["sg-1"]));
    assert_eq!(
        plan,
        LoadBalancerPlan {
            delete: vec![],
            keep: Some(KeptLoadBalancer {
                arn: "arn:lb/1".into(),
                dns_name: "lb.example.com".into(),
                set_subnets: false,
                set_security_groups: false,
                set_ip_address_type: false,
            }),
        }
    );
}

#[test]
fn a_changed_scheme_name_or_type_deletes_the_old_load_balancer_and_creates_a_new_one() {
    let s = stack(LoadBalancerType::Network);
    let changes: [fn(&mut LbInfo); 3] = [
        |l| l.scheme = Scheme::InternetFacing.as_str().into(),
        |l| l.name = "k8s-ns-svc-old".into(),
        |l| l.kind = LoadBalancerType::Application.as_str().into(),
    ];
    for change in changes {
        let mut old = lb_info(&s, &["subnet-a"], &[]);
        change(&mut old);
        let lbs = BTreeMap::from([("arn:lb/old".to_string(), old.clone())]);
        let plan = load_balancer(&lbs, &s, &set(&["subnet-a"]), &BTreeSet::new());
        assert_eq!(
            plan,
            LoadBalancerPlan {
                delete: vec!["arn:lb/old".into()],
                keep: None,
            },
            "{old:?}"
        );
    }
}

#[test]
fn one_matching_load_balancer_is_kept_and_only_the_stack_s_are_touched() {
    let s = stack(LoadBalancerType::Network);
    let mut foreign = lb_info(&s, &["subnet-a"], &[]);
    foreign.tags = tags(&other_id(), RESOURCE_LOAD_BALANCER);
    let lbs = BTreeMap::from([
        ("arn:lb/1".to_string(), lb_info(&s, &["subnet-a"], &[])),
        ("arn:lb/2".to_string(), lb_info(&s, &["subnet-a"], &[])),
        ("arn:lb/3".to_string(), foreign),
    ]);
    let plan = load_balancer(&lbs, &s, &set(&["subnet-a"]), &BTreeSet::new());
    assert_eq!(plan.delete, vec!["arn:lb/2".to_string()]);
    assert_eq!(plan.keep.map(|k| k.arn), Some("arn:lb/1".to_string()));
}

#[test]
fn alb_subnets_change_in_place_but_nlb_subnets_do_not() {
    for (kind, set_subnets) in [
        (LoadBalancerType::Application, true),
        (LoadBalancerType::Network, false),
    ] {
        let s = stack(kind);
        let lbs = BTreeMap::from([("arn:lb/1".to_string(), lb_info(&s, &["subnet-a"], &[]))]);
        let plan = load_balancer(&lbs, &s, &set(&["subnet-a", "subnet-b"]), &BTreeSet::new());
        assert!(plan.delete.is_empty());
        let kept = plan.keep.expect("kept");
        assert_eq!(kept.set_subnets, set_subnets, "{kind:?}");
        assert!(!kept.set_security_groups && !kept.set_ip_address_type);
    }
}

#[test]
fn security_groups_and_ip_address_type_change_in_place() {
    let mut s = stack(LoadBalancerType::Application);
    let lbs = BTreeMap::from([(
        "arn:lb/1".to_string(),
        lb_info(&s, &["subnet-a"], &["sg-1"]),
    )]);
    s.load_balancer.ip_address_type = IpAddressType::Dualstack;
    let kept = load_balancer(&lbs, &s, &set(&["subnet-a"]), &set(&["sg-1", "sg-2"]))
        .keep
        .expect("kept");
    assert!(kept.set_security_groups && kept.set_ip_address_type && !kept.set_subnets);
    // No groups wanted (none named, none managed): the ones it has stay.
    let kept = load_balancer(&lbs, &s, &set(&["subnet-a"]), &BTreeSet::new())
        .keep
        .expect("kept");
    assert!(!kept.set_security_groups);
}

// --- Listeners ------------------------------------------------------------

#[test]
fn an_unchanged_stack_s_listeners_and_rules_plan_no_call() {
    let mut http = listener(80, Protocol::Http, fixed("404"));
    http.rules = vec![
        rule(1, "/a", forward("ns/a:80")),
        rule(2, "/b", forward("ns/b:80")),
    ];
    let listeners_ = vec![http, listener(8443, Protocol::Tcp, forward("ns/b:80"))];
    let wanted = resolve(&listeners_);
    let actual = applied(&wanted);
    // The same stack again: the same fingerprint, so no call at all...
    assert_eq!(fingerprint(&wanted), fingerprint(&resolve(&listeners_)));
    // ...and from what ELBv2 has, every listener and rule is kept.
    let steps = listeners(&actual, &wanted);
    assert_eq!(listener_calls(&steps), vec![(None, 80), (None, 8443)]);
    for step in &steps {
        let ListenerStep::Apply(a) = step else {
            panic!("no delete expected");
        };
        let known = a.known_rules.as_ref().expect("rules known");
        for r in rules(known, &a.wanted.rules) {
            assert!(matches!(r, RuleStep::Keep { .. }), "{r:?}");
        }
    }
}

#[test]
fn unwanted_listeners_are_deleted_before_any_create_or_modify() {
    let before = vec![
        listener(80, Protocol::Tcp, forward("ns/a:80")),
        listener(81, Protocol::Tcp, forward("ns/a:80")),
    ];
    let actual = applied(&resolve(&before));
    let after = vec![
        listener(82, Protocol::Tcp, forward("ns/a:80")),
        listener(80, Protocol::Tcp, forward("ns/b:80")),
    ];
    let wanted = resolve(&after);
    let steps = listeners(&actual, &wanted);
    assert_eq!(
        listener_calls(&steps),
        vec![
            (Some("DeleteListener"), 81),
            (Some("CreateListener"), 82),
            (Some("ModifyListener"), 80),
        ]
    );
}

#[test]
fn a_listener_on_a_port_in_use_is_modified_not_recreated() {
    let before = vec![listener(443, Protocol::Tcp, forward("ns/a:80"))];
    let actual = applied(&resolve(&before));
    let mut tls = listener(443, Protocol::Tls, forward("ns/a:80"));
    tls.certificates = vec!["arn:cert/1".into()];
    tls.ssl_policy = Some("ELBSecurityPolicy-TLS13-1-2-2021-06".into());
    let after = vec![tls];
    let wanted = resolve(&after);
    let steps = listeners(&actual, &wanted);
    assert_eq!(listener_calls(&steps), vec![(Some("ModifyListener"), 443)]);
    let ListenerStep::Apply(a) = &steps[0] else {
        panic!("apply expected");
    };
    assert_eq!(
        a.op,
        ListenerOp::Modify {
            arn: "arn:listener/443".into()
        }
    );
    // Its rules are still the ones known: no DescribeRules.
    assert_eq!(a.known_rules, Some(BTreeMap::new()));
}

#[test]
fn a_non_tls_listener_s_ssl_policy_is_not_compared() {
    let mut plain = listener(80, Protocol::Tcp, forward("ns/a:80"));
    let actual = applied(&resolve(std::slice::from_ref(&plain)));
    plain.ssl_policy = Some("ELBSecurityPolicy-2016-08".into());
    let wanted = resolve(std::slice::from_ref(&plain));
    assert_eq!(
        listener_calls(&listeners(&actual, &wanted)),
        vec![(None, 80)]
    );
}

#[test]
fn several_certificates_are_compared_once_described() {
    let mut https = listener(443, Protocol::Https, fixed("404"));
    https.certificates = vec!["arn:cert/1".into(), "arn:cert/2".into()];
    let listeners_ = vec![https];
    let wanted = resolve(&listeners_);
    let mut actual = applied(&wanted);
    // DescribeListeners lists only the default certificate.
    if let Some(st) = actual.get_mut(&443) {
        st.key.certificates = set(&["arn:cert/1"]);
    }
    let steps = listeners(&actual, &wanted);
    let ListenerStep::Apply(a) = &steps[0] else {
        panic!("apply expected");
    };
    let ListenerOp::Compare { have, .. } = &a.op else {
        panic!("compare expected: {:?}", a.op);
    };
    assert!(!listener_differs(
        have,
        set(&["arn:cert/1", "arn:cert/2"]),
        &a.key
    ));
    assert!(listener_differs(have, set(&["arn:cert/1"]), &a.key));
}

#[test]
fn extra_certificates_are_added_and_removed_but_never_the_default() {
    let certs = vec!["arn:cert/1".to_string(), "arn:cert/3".to_string()];
    let plan = extra_certificates(&set(&["arn:cert/1", "arn:cert/2"]), &certs);
    assert_eq!(
        plan,
        CertificatesPlan {
            add: vec!["arn:cert/3".into()],
            remove: vec!["arn:cert/2".into()],
        }
    );
    assert_eq!(
        extra_certificates(&set(&["arn:cert/1", "arn:cert/3"]), &certs),
        CertificatesPlan::default()
    );
}

#[test]
fn a_rule_naming_a_target_group_not_in_the_stack_is_an_error() {
    let mut http = listener(80, Protocol::Http, fixed("404"));
    http.rules = vec![rule(1, "/x", forward("ns/missing:80"))];
    let r = resolve_listeners(std::slice::from_ref(&http), &tg_arns());
    assert!(matches!(r, Err(ElbError::UnknownTargetGroup(_))), "{r:?}");
}

// --- Rules ----------------------------------------------------------------

fn wanted_rules(rs: &[Rule]) -> Vec<WantedRule> {
    let mut http = listener(80, Protocol::Http, fixed("404"));
    http.rules = rs.to_vec();
    let wanted = resolve(std::slice::from_ref(&http));
    wanted.into_iter().flat_map(|w| w.rules).collect()
}

fn known(rs: &[Rule]) -> Rules {
    wanted_rules(rs)
        .into_iter()
        .map(|r| (r.priority, (format!("arn:rule/{}", r.priority), r.key())))
        .collect()
}

#[test]
fn a_rule_with_a_new_action_is_modified_in_place() {
    let actual = known(&[rule(1, "/a", forward("ns/a:80"))]);
    let wanted = wanted_rules(&[rule(1, "/a", forward("ns/b:80"))]);
    assert_eq!(
        rules(&actual, &wanted),
        vec![RuleStep::Modify {
            rule: &wanted[0],
            arn: "arn:rule/1".into()
        }]
    );
}

#[test]
fn a_rule_with_new_conditions_is_modified_in_place() {
    let actual = known(&[rule(1, "/a", forward("ns/a:80"))]);
    let wanted = wanted_rules(&[rule(1, "/z", forward("ns/a:80"))]);
    assert_eq!(
        rules(&actual, &wanted),
        vec![RuleStep::Modify {
            rule: &wanted[0],
            arn: "arn:rule/1".into()
        }]
    );
}

#[test]
fn unwanted_rules_are_deleted_before_creates() {
    let actual = known(&[
        rule(1, "/a", forward("ns/a:80")),
        rule(2, "/b", forward("ns/b:80")),
        rule(3, "/c", forward("ns/b:80")),
    ]);
    let wanted = wanted_rules(&[
        rule(1, "/a", forward("ns/a:80")),
        rule(4, "/d", fixed("503")),
    ]);
    assert_eq!(
        rules(&actual, &wanted),
        vec![
            RuleStep::Delete {
                arn: "arn:rule/2".into()
            },
            RuleStep::Delete {
                arn: "arn:rule/3".into()
            },
            RuleStep::Keep {
                rule: &wanted[0],
                arn: "arn:rule/1".into()
            },
            RuleStep::Create { rule: &wanted[1] },
        ]
    );
}

#[test]
fn conditions_in_another_order_are_the_same_rule() {
    let both = |cs: Vec<Condition>| Rule {
        priority: 1,
        conditions: cs,
        action: fixed("200"),
    };
    let host = Condition::HostHeader(vec!["b.example.com".into(), "a.example.com".into()]);
    let path = Condition::PathPattern(vec!["/x".into()]);
    let actual = known(&[both(vec![host.clone(), path.clone()])]);
    let wanted = wanted_rules(&[both(vec![path, host])]);
    assert!(matches!(
        rules(&actual, &wanted).as_slice(),
        [RuleStep::Keep { .. }]
    ));
}

// --- Targets --------------------------------------------------------------

#[test]
fn targets_are_registered_and_deregistered_by_difference() {
    let have = targets_n(0..3);
    let want = targets_n(1..5);
    let plan = targets(&have, &want);
    assert_eq!(
        plan.register,
        vec![targets_n(3..5).into_iter().collect::<Vec<_>>()]
    );
    assert_eq!(
        plan.deregister,
        vec![targets_n(0..1).into_iter().collect::<Vec<_>>()]
    );
    assert_eq!((plan.registered(), plan.deregistered()), (2, 1));
    assert!(targets(&want, &want).is_empty());
}

#[test]
fn more_than_200_targets_go_in_chunks_of_200() {
    let plan = targets(&targets_n(1000..1250), &targets_n(0..450));
    let sizes = |chunks: &[Vec<Target>]| chunks.iter().map(Vec::len).collect::<Vec<_>>();
    assert_eq!(sizes(&plan.register), vec![200, 200, 50]);
    assert_eq!(sizes(&plan.deregister), vec![200, 50]);
    let registered: BTreeSet<Target> = plan.register.into_iter().flatten().collect();
    assert_eq!(registered, targets_n(0..450));
}

// --- Delete ---------------------------------------------------------------

#[test]
fn a_stack_is_deleted_load_balancers_then_target_groups_then_security_groups() {
    let s = stack(LoadBalancerType::Network);
    let tg = tg_model("ns/a:80", "k8s-ns-a-111");
    let mut foreign_tg = tg_info(&tg);
    foreign_tg.tags = tags(&other_id(), "ns/a:80");
    let inv = Inventory {
        loaded: true,
        lbs: BTreeMap::from([("arn:lb/1".to_string(), lb_info(&s, &["subnet-a"], &[]))]),
        tgs: BTreeMap::from([
            ("arn:tg/a".to_string(), tg_info(&tg)),
            ("arn:tg/foreign".to_string(), foreign_tg),
        ]),
        sgs: BTreeMap::from([(
            "sg-1".to_string(),
            SgInfo {
                tags: tags(&id(), RESOURCE_MANAGED_SG),
                rules: BTreeSet::new(),
            },
        )]),
    };
    assert_eq!(
        delete_stack(&inv, &id()),
        vec![
            Deletion::LoadBalancer("arn:lb/1".into()),
            Deletion::TargetGroup("arn:tg/a".into()),
            Deletion::SecurityGroup("sg-1".into()),
        ]
    );
    assert!(delete_stack(&inv, &StackId::IngressGroup { name: "g".into() }).is_empty());
}
