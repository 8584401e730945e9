//! Ingresses -> IngressGroups -> ALB: classes, grouping, rule translation,
//! actions and conditions, group-wide settings and their conflicts.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{alb_class, backend_svc, cfg, group, groups, ing, rule, services};
use k8s_openapi::api::networking::v1::Ingress;
use outrigger_lb_api::v1beta1::IngressClassParams;
use outrigger_lb_model::ingress::{self, Group};
use outrigger_lb_model::model::{
    Action, Condition, Listener, Protocol, Scheme, Stack, StackId, TargetGroupRef, TargetType,
    WeightedTarget,
};
use outrigger_lb_model::{Config, GroupError, ModelError};
use serde_json::json;

const A: &str = "alb.ingress.kubernetes.io/";

fn key(s: &str) -> String {
    format!("{A}{s}")
}

fn build(g: &Group, svcs: &[(&str, &str)]) -> Result<Stack, GroupError> {
    let list = svcs.iter().map(|(ns, n)| backend_svc(ns, n)).collect();
    ingress::build(g, &services(list), &cfg())
}

fn listener(s: &Stack, port: i32) -> &Listener {
    s.listeners.iter().find(|l| l.port == port).unwrap()
}

fn paths(l: &Listener) -> Vec<Vec<String>> {
    l.rules
        .iter()
        .map(|r| {
            r.conditions
                .iter()
                .find_map(|c| match c {
                    Condition::PathPattern(p) => Some(p.clone()),
                    _ => None,
                })
                .unwrap_or_default()
        })
        .collect()
}

fn managed(a: &Action) -> Vec<String> {
    match a {
        Action::Forward { target_groups, .. } => target_groups
            .iter()
            .map(|t| match &t.target_group {
                TargetGroupRef::Managed(id) => id.clone(),
                TargetGroupRef::Arn(arn) => arn.clone(),
            })
            .collect(),
        other => panic!("forward expected: {other:?}"),
    }
}

#[test]
fn paths_are_sorted_exact_then_longest_prefix_then_as_written() {
    let i = ing(
        "web",
        "site",
        json!({key("target-type"): "ip"}),
        json!({"rules": [rule(None, &[
            ("/img*", "ImplementationSpecific", "svc", 80),
            ("/a", "Prefix", "svc", 80),
            ("/exact", "Exact", "svc", 80),
            ("/a/b/c/", "Prefix", "svc", 80),
            ("/", "Prefix", "svc", 80),
            ("/raw", "ImplementationSpecific", "svc", 80),
        ])]}),
    );
    let s = build(&group(&[i]), &[("web", "svc")]).unwrap();
    let l = listener(&s, 80);
    assert_eq!(
        paths(l),
        [
            vec!["/exact"],
            vec!["/a/b/c", "/a/b/c/*"],
            vec!["/a", "/a/*"],
            vec!["/*"],
            vec!["/img*"],
            vec!["/raw"],
        ]
    );
    let prios: Vec<i32> = l.rules.iter().map(|r| r.priority).collect();
    assert_eq!(prios, [1, 2, 3, 4, 5, 6]);
    // One target group for the one backend.
    assert_eq!(s.target_groups.len(), 1);
    assert_eq!(s.target_groups[0].target_type, TargetType::Ip);
    assert_eq!(s.target_groups[0].port, 8080);
}

#[test]
fn wildcards_in_exact_or_prefix_paths_are_errors() {
    let i = ing(
        "web",
        "site",
        json!({}),
        json!({"rules": [rule(None, &[("/a*", "Exact", "svc", 80)])]}),
    );
    let e = build(&group(&[i]), &[("web", "svc")]).unwrap_err();
    assert_eq!(e.errors.len(), 1);
    assert!(e.errors[0].error.to_string().contains("wildcards"), "{e}");
}

#[test]
fn hosts_become_host_header_conditions() {
    let i = ing(
        "web",
        "site",
        json!({}),
        json!({"rules": [
            rule(Some("a.example.com"), &[("/api", "Prefix", "svc", 80)]),
            {"host": "nothing.example.com"},
            rule(Some("b.example.com"), &[("/", "Prefix", "svc", 80)]),
        ]}),
    );
    let s = build(&group(&[i]), &[("web", "svc")]).unwrap();
    let l = listener(&s, 80);
    assert_eq!(l.rules.len(), 2);
    assert_eq!(
        l.rules[0].conditions,
        [
            Condition::HostHeader(vec!["a.example.com".into()]),
            Condition::PathPattern(vec!["/api".into(), "/api/*".into()])
        ]
    );
    assert_eq!(
        l.rules[1].conditions[0],
        Condition::HostHeader(vec!["b.example.com".into()])
    );
    // Instance targets by default: the NodePort.
    assert_eq!(s.target_groups[0].target_type, TargetType::Instance);
    assert_eq!(s.target_groups[0].port, 30080);
}

#[test]
fn a_group_spans_namespaces_in_group_order() {
    let shared = |ns: &str, name: &str, order: &str, path: &str| {
        ing(
            ns,
            name,
            json!({key("group.name"): "shared", key("group.order"): order, key("scheme"): "internet-facing"}),
            json!({"rules": [rule(None, &[(path, "Prefix", "svc", 80)])]}),
        )
    };
    let ings = [
        shared("team-a", "first-by-name", "10", "/a"),
        shared("team-b", "api", "-5", "/b"),
        shared("team-c", "also-ten", "10", "/c"),
    ];
    let g = group(&ings);
    assert_eq!(
        g.id,
        StackId::IngressGroup {
            name: "shared".into()
        }
    );
    assert_eq!(g.finalizer(), "group.ingress.k8s.aws/shared");
    let order: Vec<&str> = g.members.iter().map(|m| m.namespace()).collect();
    assert_eq!(order, ["team-b", "team-a", "team-c"]);
    let s = build(
        &g,
        &[("team-a", "svc"), ("team-b", "svc"), ("team-c", "svc")],
    )
    .unwrap();
    assert!(
        s.load_balancer.name.starts_with("k8s-shared-"),
        "{}",
        s.load_balancer.name
    );
    assert!(s.load_balancer.name.len() <= 32);
    assert_eq!(s.load_balancer.tags["ingress.k8s.aws/stack"], "shared");
    let l = listener(&s, 80);
    assert_eq!(
        paths(l),
        [vec!["/b", "/b/*"], vec!["/a", "/a/*"], vec!["/c", "/c/*"]]
    );
    assert_eq!(managed(&l.rules[0].action), ["team-b/api-svc:80"]);
    assert_eq!(s.target_groups.len(), 3);

    // Deleting one leaves the others' rules; it is listed as inactive.
    let mut leaving = ings.clone();
    leaving[1].metadata.deletion_timestamp = Some(common::obj(json!("2024-01-01T00:00:00Z")));
    let g = group(&leaving);
    assert_eq!(g.members.len(), 2);
    assert_eq!(g.inactive_members.len(), 1);
    let s = build(&g, &[("team-a", "svc"), ("team-c", "svc")]).unwrap();
    assert_eq!(
        paths(listener(&s, 80)),
        [vec!["/a", "/a/*"], vec!["/c", "/c/*"]]
    );
}

#[test]
fn an_ingress_that_left_a_group_is_an_inactive_member_of_it() {
    let mut i = ing(
        "web",
        "site",
        json!({}),
        json!({"rules": [rule(None, &[("/", "Prefix", "svc", 80)])]}),
    );
    i.metadata.finalizers = Some(vec!["group.ingress.k8s.aws/old".into()]);
    let gs = groups(&[i]);
    assert_eq!(gs.len(), 2);
    let old = gs
        .iter()
        .find(|g| g.id == StackId::IngressGroup { name: "old".into() })
        .unwrap();
    assert!(old.members.is_empty());
    assert_eq!(old.inactive_members.len(), 1);
    let e = build(old, &[]).unwrap_err();
    assert!(e.errors.is_empty());
    assert_eq!(e.to_string(), "IngressGroup old has no active member");
}

#[test]
fn which_ingresses_are_ours() {
    let spec = json!({"rules": [rule(None, &[("/", "Prefix", "svc", 80)])]});
    let mut by_annotation: Ingress = ing(
        "web",
        "a",
        json!({"kubernetes.io/ingress.class": "alb"}),
        spec.clone(),
    );
    by_annotation.spec.as_mut().unwrap().ingress_class_name = None;
    let mut other_annotation = by_annotation.clone();
    other_annotation.metadata.name = Some("b".into());
    other_annotation.metadata.annotations = Some(BTreeMap::from([(
        "kubernetes.io/ingress.class".into(),
        "nginx".into(),
    )]));
    let mut other_class = ing("web", "c", json!({}), spec.clone());
    other_class.spec.as_mut().unwrap().ingress_class_name = Some("nginx".into());
    let mut missing_class = ing("web", "d", json!({}), spec);
    missing_class.spec.as_mut().unwrap().ingress_class_name = Some("gone".into());
    let nginx: k8s_openapi::api::networking::v1::IngressClass = common::obj(json!({
        "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}
    }));
    let gs = ingress::groups(
        &[by_annotation, other_annotation, other_class, missing_class],
        &[alb_class(), nginx],
        &[],
        &BTreeMap::new(),
        &cfg(),
    );
    let ids: Vec<String> = gs.iter().map(|g| g.id.tag_value()).collect();
    assert_eq!(ids, ["web/a"]);
    let disabled = Config {
        disable_ingress_class_annotation: true,
        ..cfg()
    };
    let mut only_annotation = ing(
        "web",
        "a",
        json!({"kubernetes.io/ingress.class": "alb"}),
        json!({}),
    );
    only_annotation.spec.as_mut().unwrap().ingress_class_name = None;
    assert!(
        ingress::groups(
            &[only_annotation],
            &[alb_class()],
            &[],
            &BTreeMap::new(),
            &disabled
        )
        .is_empty()
    );
}

#[test]
fn the_default_backend_is_the_listener_default_action() {
    let with_default = ing(
        "web",
        "site",
        json!({key("group.name"): "g"}),
        json!({"defaultBackend": {"service": {"name": "fallback", "port": {"name": "http"}}},
               "rules": [rule(None, &[("/api", "Prefix", "svc", 80)])]}),
    );
    let plain = ing(
        "web",
        "other",
        json!({key("group.name"): "g"}),
        json!({"rules": [rule(None, &[("/x", "Prefix", "svc", 80)])]}),
    );
    let s = build(
        &group(&[with_default.clone(), plain]),
        &[("web", "svc"), ("web", "fallback")],
    )
    .unwrap();
    let l = listener(&s, 80);
    assert_eq!(managed(&l.default_action), ["web/site-fallback:http"]);
    assert_eq!(l.rules.len(), 2);

    // Two members with a default backend: upstream refuses, on both.
    let mut second = with_default.clone();
    second.metadata.name = Some("site2".into());
    let e = build(
        &group(&[with_default, second]),
        &[("web", "svc"), ("web", "fallback")],
    )
    .unwrap_err();
    assert_eq!(e.errors.len(), 2);
    assert!(
        e.errors
            .iter()
            .all(|m| m.error.reason() == "ConflictingSettings"),
        "{e}"
    );
    assert!(e.to_string().contains("spec.defaultBackend"), "{e}");
}

#[test]
fn ssl_redirect_makes_http_listeners_redirect_only() {
    let i = ing(
        "web",
        "site",
        json!({
            key("listen-ports"): r#"[{"HTTP": 80}, {"HTTPS": 443}]"#,
            key("certificate-arn"): "arn:cert-b,arn:cert-a",
            key("ssl-redirect"): "443",
        }),
        json!({"rules": [rule(None, &[("/", "Prefix", "svc", 80)])]}),
    );
    let s = build(&group(std::slice::from_ref(&i)), &[("web", "svc")]).unwrap();
    let http = listener(&s, 80);
    assert_eq!(http.protocol, Protocol::Http);
    assert!(http.rules.is_empty());
    assert_eq!(
        http.default_action,
        Action::Redirect {
            protocol: Some("HTTPS".into()),
            port: Some("443".into()),
            host: None,
            path: None,
            query: None,
            status_code: "HTTP_301".into()
        }
    );
    let https = listener(&s, 443);
    assert_eq!(https.protocol, Protocol::Https);
    assert_eq!(https.certificates, ["arn:cert-a", "arn:cert-b"]);
    assert_eq!(
        https.ssl_policy.as_deref(),
        Some("ELBSecurityPolicy-2016-08")
    );
    assert_eq!(https.rules.len(), 1);
    let sg = s.managed_security_group.as_ref().unwrap();
    let ports: Vec<i32> = sg.ingress.iter().map(|r| r.from_port).collect();
    assert_eq!(
        ports,
        [80, 443],
        "sorted by protocol, port, cidr: {:?}",
        sg.ingress
    );

    let mut bad = i;
    bad.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(key("ssl-redirect"), "8443".into());
    let e = build(&group(&[bad]), &[("web", "svc")]).unwrap_err();
    assert!(e.to_string().contains("no HTTPS listener"), "{e}");
}

#[test]
fn a_certificate_makes_the_default_listener_https() {
    let i = ing(
        "web",
        "site",
        json!({key("certificate-arn"): "arn:cert", key("ssl-policy"): "ELBSecurityPolicy-TLS13-1-2-2021-06"}),
        json!({"rules": [rule(None, &[("/", "Prefix", "svc", 80)])]}),
    );
    let s = build(&group(&[i]), &[("web", "svc")]).unwrap();
    assert_eq!(s.listeners.len(), 1);
    let l = listener(&s, 443);
    assert_eq!(l.protocol, Protocol::Https);
    assert_eq!(
        l.ssl_policy.as_deref(),
        Some("ELBSecurityPolicy-TLS13-1-2-2021-06")
    );
}

#[test]
fn actions_and_conditions_from_annotations() {
    let use_ann = |svc: &str, path: &str| json!({"path": path, "pathType": "Prefix", "backend": {"service": {"name": svc, "port": {"name": "use-annotation"}}}});
    let i = ing(
        "web",
        "site",
        json!({
            key("actions.response-503"): r#"{"type":"fixed-response","fixedResponseConfig":{"contentType":"text/plain","statusCode":"503","messageBody":"maintenance"}}"#,
            key("actions.to-docs"): r#"{"type":"redirect","redirectConfig":{"host":"docs.example.com","path":"/#{path}","port":"443","protocol":"HTTPS","statusCode":"HTTP_302"}}"#,
            key("actions.canary"): r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"svc","servicePort":"80","weight":80},{"serviceName":"canary","servicePort":"http","weight":20}],"targetGroupStickinessConfig":{"enabled":true,"durationSeconds":200}}}"#,
            key("actions.arn"): r#"{"type":"forward","targetGroupARN":"arn:aws:elasticloadbalancing:tg/x"}"#,
            key("conditions.canary"): r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Canary","values":["yes"]}},{"field":"query-string","queryStringConfig":{"values":[{"key":"v","value":"2"}]}},{"field":"host-header","hostHeaderConfig":{"values":["extra.example.com"]}}]"#,
        }),
        json!({"rules": [{"host": "www.example.com", "http": {"paths": [
            use_ann("response-503", "/down"),
            use_ann("to-docs", "/docs"),
            use_ann("canary", "/app"),
            use_ann("arn", "/arn"),
            use_ann("not-defined", "/none"),
            {"path": "/missing", "pathType": "Prefix", "backend": {"service": {"name": "no-such-svc", "port": {"number": 80}}}},
        ]}}]}),
    );
    let s = build(&group(&[i]), &[("web", "svc"), ("web", "canary")]).unwrap();
    let l = listener(&s, 80);
    let by_path = |p: &str| {
        l.rules
            .iter()
            .find(|r| {
                r.conditions
                    .contains(&Condition::PathPattern(vec![p.into(), format!("{p}/*")]))
            })
            .unwrap_or_else(|| panic!("no rule for {p}"))
    };
    assert_eq!(
        by_path("/down").action,
        Action::FixedResponse {
            status_code: "503".into(),
            content_type: Some("text/plain".into()),
            message_body: Some("maintenance".into())
        }
    );
    assert!(
        matches!(&by_path("/docs").action, Action::Redirect { host: Some(h), status_code, .. } if h == "docs.example.com" && status_code == "HTTP_302")
    );
    let canary = by_path("/app");
    assert_eq!(
        canary.action,
        Action::Forward {
            target_groups: vec![
                WeightedTarget {
                    target_group: TargetGroupRef::Managed("web/site-svc:80".into()),
                    weight: Some(80)
                },
                WeightedTarget {
                    target_group: TargetGroupRef::Managed("web/site-canary:http".into()),
                    weight: Some(20)
                },
            ],
            stickiness_seconds: Some(200),
        }
    );
    assert_eq!(
        canary.conditions,
        [
            Condition::HttpHeader {
                name: "X-Canary".into(),
                values: vec!["yes".into()]
            },
            Condition::QueryString(vec![(Some("v".into()), "2".into())]),
            Condition::HostHeader(vec!["www.example.com".into(), "extra.example.com".into()]),
            Condition::PathPattern(vec!["/app".into(), "/app/*".into()]),
        ]
    );
    assert_eq!(
        by_path("/arn").action,
        Action::Forward {
            target_groups: vec![WeightedTarget {
                target_group: TargetGroupRef::Arn("arn:aws:elasticloadbalancing:tg/x".into()),
                weight: None
            }],
            stickiness_seconds: None
        }
    );
    let body = |p: &str| match &by_path(p).action {
        Action::FixedResponse {
            status_code,
            message_body,
            ..
        } => (status_code.clone(), message_body.clone().unwrap()),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        body("/none"),
        ("503".into(), "Backend action does not exist".into())
    );
    assert_eq!(
        body("/missing"),
        ("503".into(), "Backend service does not exist".into())
    );
}

#[test]
fn bad_actions_conditions_and_listen_ports_are_errors_on_the_member() {
    let base = |ann: serde_json::Value| {
        ing(
            "web",
            "site",
            ann,
            json!({"rules": [{"http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "svc", "port": {"name": "use-annotation"}}}}
            ]}}]}),
        )
    };
    let e = build(
        &group(&[base(json!({key("actions.svc"): "{not json"}))]),
        &[("web", "svc")],
    )
    .unwrap_err();
    assert!(
        matches!(&e.errors[0].error, ModelError::InvalidAnnotation { annotation, .. } if *annotation == key("actions.svc")),
        "{e}"
    );
    let e = build(
        &group(&[base(json!({key("actions.svc"): r#"{"type":"teleport"}"#}))]),
        &[("web", "svc")],
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("unknown action type \"teleport\""),
        "{e}"
    );
    let e = build(
        &group(&[base(json!({
            key("actions.svc"): r#"{"type":"fixed-response","fixedResponseConfig":{"statusCode":"200"}}"#,
            key("conditions.svc"): r#"[{"field":"host-header","hostHeaderConfig":{"values":[]}}]"#
        }))]),
        &[("web", "svc")],
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("hostHeaderConfig.values is empty"),
        "{e}"
    );

    let lp = |v: &str| {
        ing(
            "web",
            "site",
            json!({key("listen-ports"): v}),
            json!({"rules": [rule(None, &[("/", "Prefix", "svc", 80)])]}),
        )
    };
    for bad in [
        r#"[{"HTTP": "80"}]"#,
        r#"[{"TCP": 80}]"#,
        "[]",
        r#"[{"HTTP": 70000}]"#,
        "80",
    ] {
        let e = build(&group(&[lp(bad)]), &[("web", "svc")]).unwrap_err();
        let msg = e.errors[0].error.to_string();
        assert!(
            msg.starts_with(&format!(
                "invalid value \"{bad}\" for annotation alb.ingress.kubernetes.io/listen-ports: accepted values are a JSON list like"
            )),
            "{msg}"
        );
    }
    let s = build(
        &group(&[lp(r#"[{"HTTP": 8080}, {"HTTP": 80}]"#)]),
        &[("web", "svc")],
    )
    .unwrap();
    assert_eq!(
        s.listeners.iter().map(|l| l.port).collect::<Vec<_>>(),
        [80, 8080]
    );
    assert_eq!(
        s.target_groups.len(),
        1,
        "both listeners share the backend's group"
    );
}

#[test]
fn redirect_rules_that_loop_or_shadow_are_dropped() {
    let i = ing(
        "web",
        "site",
        json!({
            key("listen-ports"): r#"[{"HTTP": 80}, {"HTTPS": 443}]"#,
            key("certificate-arn"): "arn:cert",
            key("actions.ssl-redirect"): r#"{"type":"redirect","redirectConfig":{"protocol":"HTTPS","port":"443","statusCode":"HTTP_301"}}"#,
        }),
        json!({"rules": [{"http": {"paths": [
            {"path": "/*", "pathType": "ImplementationSpecific", "backend": {"service": {"name": "ssl-redirect", "port": {"name": "use-annotation"}}}},
            {"path": "/*", "pathType": "ImplementationSpecific", "backend": {"service": {"name": "svc", "port": {"number": 80}}}},
        ]}}]}),
    );
    let s = build(&group(&[i]), &[("web", "svc")]).unwrap();
    let http = listener(&s, 80);
    assert_eq!(
        http.rules.len(),
        1,
        "the forward rule is shadowed by the redirect"
    );
    assert!(matches!(http.rules[0].action, Action::Redirect { .. }));
    let https = listener(&s, 443);
    assert_eq!(https.rules.len(), 1, "the redirect would loop on HTTPS:443");
    assert!(matches!(https.rules[0].action, Action::Forward { .. }));
}

#[test]
fn too_many_rules_is_an_error_on_every_member() {
    let many = |ns: &str, n: usize| {
        let owned: Vec<String> = (0..n).map(|i| format!("/p{i}")).collect();
        let paths: Vec<(&str, &str, &str, i32)> = owned
            .iter()
            .map(|p| (p.as_str(), "Exact", "svc", 80))
            .collect();
        ing(
            ns,
            "site",
            json!({key("group.name"): "big"}),
            json!({"rules": [rule(None, &paths)]}),
        )
    };
    let g = group(&[many("a", 60), many("b", 50)]);
    let e = build(&g, &[("a", "svc"), ("b", "svc")]).unwrap_err();
    assert_eq!(e.errors.len(), 2);
    for m in &e.errors {
        assert_eq!(
            m.error.to_string(),
            "IngressGroup big needs 110 rules on port 80; an ALB listener allows 100"
        );
        assert_eq!(m.error.reason(), "TooManyRules");
    }
    assert_eq!(e.for_member("b", "site").count(), 1);
    // Exactly 100 is fine.
    assert!(
        build(
            &group(&[many("a", 60), many("b", 40)]),
            &[("a", "svc"), ("b", "svc")]
        )
        .is_ok()
    );
}

#[test]
fn settings_that_must_agree_across_a_group() {
    let member = |ns: &str, ann: serde_json::Value| {
        let mut ann = ann;
        ann[key("group.name")] = json!("g");
        ing(
            ns,
            "site",
            ann,
            json!({"rules": [rule(None, &[("/", "Prefix", "svc", 80)])]}),
        )
    };
    let g = group(&[
        member("a", json!({key("scheme"): "internal"})),
        member("b", json!({key("scheme"): "internet-facing"})),
        member("c", json!({})),
    ]);
    let e = build(&g, &[("a", "svc"), ("b", "svc"), ("c", "svc")]).unwrap_err();
    let blamed: Vec<&str> = e.errors.iter().map(|m| m.namespace.as_str()).collect();
    assert_eq!(blamed, ["a", "b"], "{e}");
    assert_eq!(
        e.errors[0].error.to_string(),
        "conflicting scheme in IngressGroup g: a/site: internal | b/site: internet-facing"
    );

    let g = group(&[
        member("a", json!({key("tags"): "team=a,env=prod"})),
        member("b", json!({key("tags"): "team=b"})),
    ]);
    let e = build(&g, &[("a", "svc"), ("b", "svc")]).unwrap_err();
    assert!(e.to_string().contains("conflicting tags team"), "{e}");

    let g = group(&[
        member(
            "a",
            json!({key("tags"): "env=prod", key("load-balancer-attributes"): "idle_timeout.timeout_seconds=60"}),
        ),
        member(
            "b",
            json!({key("tags"): "team=b", key("scheme"): "internet-facing", key("inbound-cidrs"): "10.0.0.0/8"}),
        ),
    ]);
    let s = build(&g, &[("a", "svc"), ("b", "svc")]).unwrap();
    assert_eq!(s.load_balancer.scheme, Scheme::InternetFacing);
    assert_eq!(s.load_balancer.tags["env"], "prod");
    assert_eq!(s.load_balancer.tags["team"], "b");
    assert_eq!(
        s.load_balancer.attributes["idle_timeout.timeout_seconds"],
        "60"
    );
    let sg = s.managed_security_group.unwrap();
    assert_eq!(
        sg.ingress
            .iter()
            .map(|r| r.cidr.as_str())
            .collect::<Vec<_>>(),
        ["10.0.0.0/8"]
    );

    let g = group(&[
        member("a", json!({key("listen-ports"): r#"[{"HTTP": 8080}]"#})),
        member(
            "b",
            json!({key("listen-ports"): r#"[{"HTTPS": 8080}]"#, key("certificate-arn"): "arn:c"}),
        ),
    ]);
    let e = build(&g, &[("a", "svc"), ("b", "svc")]).unwrap_err();
    assert!(
        e.to_string().contains("conflicting protocol of port 8080"),
        "{e}"
    );
}

#[test]
fn ingress_class_params_override_annotations() {
    let params: IngressClassParams = common::obj(json!({
        "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "IngressClassParams",
        "metadata": {"name": "public"},
        "spec": {
            "namespaceSelector": {"matchLabels": {"exposed": "yes"}},
            "group": {"name": "public"},
            "scheme": "internet-facing",
            "targetType": "ip",
            "inboundCIDRs": ["203.0.113.0/24"],
            "tags": [{"key": "owner", "value": "platform"}],
            "loadBalancerAttributes": [{"key": "idle_timeout.timeout_seconds", "value": "120"}]
        }
    }));
    let class: k8s_openapi::api::networking::v1::IngressClass = common::obj(json!({
        "metadata": {"name": "alb"},
        "spec": {"controller": "ingress.k8s.aws/alb", "parameters": {"apiGroup": "elbv2.k8s.aws", "kind": "IngressClassParams", "name": "public"}}
    }));
    let i = ing(
        "web",
        "site",
        json!({key("scheme"): "internal", key("target-type"): "instance", key("tags"): "owner=me,team=web"}),
        json!({"rules": [rule(None, &[("/", "Prefix", "svc", 80)])]}),
    );
    let labels = BTreeMap::from([(
        "web".to_string(),
        BTreeMap::from([("exposed".to_string(), "yes".to_string())]),
    )]);
    let gs = ingress::groups(
        std::slice::from_ref(&i),
        std::slice::from_ref(&class),
        std::slice::from_ref(&params),
        &labels,
        &cfg(),
    );
    assert_eq!(
        gs[0].id,
        StackId::IngressGroup {
            name: "public".into()
        }
    );
    let s = ingress::build(&gs[0], &services(vec![backend_svc("web", "svc")]), &cfg()).unwrap();
    assert_eq!(s.load_balancer.scheme, Scheme::InternetFacing);
    assert_eq!(s.load_balancer.tags["owner"], "platform");
    assert_eq!(s.load_balancer.tags["team"], "web");
    assert_eq!(
        s.load_balancer.attributes["idle_timeout.timeout_seconds"],
        "120"
    );
    assert_eq!(s.target_groups[0].target_type, TargetType::Ip);
    assert_eq!(s.target_groups[0].tags["owner"], "platform");
    let sg = s.managed_security_group.unwrap();
    assert!(sg.ingress.iter().all(|r| r.cidr == "203.0.113.0/24"));

    // A namespace the selector does not take: an error on the member.
    let gs = ingress::groups(&[i], &[class], &[params], &BTreeMap::new(), &cfg());
    let e = ingress::build(&gs[0], &services(vec![backend_svc("web", "svc")]), &cfg()).unwrap_err();
    assert_eq!(e.errors[0].error.reason(), "InvalidIngressClass");
    assert!(
        e.to_string()
            .contains("not selected by the namespaceSelector"),
        "{e}"
    );
}

#[test]
fn service_annotations_win_for_backend_settings() {
    let mut svc = backend_svc("web", "svc");
    svc.metadata.annotations = Some(BTreeMap::from([
        (key("target-type"), "ip".to_string()),
        (key("healthcheck-path"), "/healthz".to_string()),
        (key("success-codes"), "200-299".to_string()),
        (key("backend-protocol-version"), "GRPC".to_string()),
    ]));
    let i = ing(
        "web",
        "site",
        json!({key("target-type"): "instance", key("healthcheck-interval-seconds"): "30", key("healthcheck-port"): "http"}),
        json!({"rules": [rule(None, &[("/", "Prefix", "svc", 80)])]}),
    );
    let s = ingress::build(&group(&[i]), &services(vec![svc]), &cfg()).unwrap();
    let tg = &s.target_groups[0];
    assert_eq!(tg.target_type, TargetType::Ip);
    assert_eq!(tg.protocol_version.as_deref(), Some("GRPC"));
    assert_eq!(tg.health_check.path.as_deref(), Some("/healthz"));
    assert_eq!(tg.health_check.matcher.as_deref(), Some("200-299"));
    assert_eq!(tg.health_check.interval_seconds, 30);
    assert_eq!(
        tg.health_check.port, "8080",
        "named port -> the targetPort for ip targets"
    );

    let bad = ing(
        "web",
        "site",
        json!({key("healthcheck-timeout-seconds"): "500"}),
        json!({"rules": [rule(None, &[("/", "Prefix", "svc", 80)])]}),
    );
    let e = build(&group(&[bad]), &[("web", "svc")]).unwrap_err();
    assert!(e.to_string().contains("an integer from 2 to 120"), "{e}");
}

#[test]
fn invalid_group_name_and_order_are_reported_on_the_member() {
    let i = ing(
        "web",
        "site",
        json!({key("group.name"): "Not_Valid", key("group.order"): "5000"}),
        json!({"rules": [rule(None, &[("/", "Prefix", "svc", 80)])]}),
    );
    let g = group(&[i]);
    assert_eq!(g.id.tag_value(), "web/site");
    let e = build(&g, &[("web", "svc")]).unwrap_err();
    assert_eq!(e.errors.len(), 1);
    assert!(e.to_string().contains("group.name"), "{e}");
}

#[test]
fn instance_targets_need_a_node_port_service() {
    let mut svc = backend_svc("web", "svc");
    svc.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    let i = ing(
        "web",
        "site",
        json!({}),
        json!({"rules": [rule(None, &[("/", "Prefix", "svc", 80)])]}),
    );
    let e = ingress::build(&group(&[i]), &services(vec![svc]), &cfg()).unwrap_err();
    assert!(e.to_string().contains("ClusterIP"), "{e}");
    let i = ing(
        "web",
        "site",
        json!({}),
        json!({"rules": [rule(None, &[("/", "Prefix", "svc", 81)])]}),
    );
    let e = build(&group(&[i]), &[("web", "svc")]).unwrap_err();
    assert!(e.to_string().contains("has no port 81"), "{e}");
}
