//! The CRDs match what is committed under `deploy/crds/` and carry
//! upstream's names, scopes and printer columns; upstream-shaped objects
//! parse.

use std::path::PathBuf;

use outrigger_lb_api::{crds, file_name, to_yaml, v1beta1};

fn crd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds")
}

#[test]
fn committed_crds_match_the_types() {
    let dir = crd_dir();
    let mut expected = vec![];
    for crd in crds() {
        let name = file_name(&crd);
        let want = to_yaml(&crd).unwrap();
        let have = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        assert!(
            have == want,
            "deploy/crds/{name} is out of date with crates/lb-api: run `make crds` and commit"
        );
        expected.push(name);
    }
    // Every committed file of this crate's group comes from a type.
    let prefix = format!("{}_", outrigger_lb_api::GROUP);
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    present.sort();
    expected.sort();
    assert_eq!(
        present, expected,
        "deploy/crds/ has elbv2.k8s.aws files no type generates"
    );
}

#[test]
fn crds_have_upstreams_names_scopes_and_columns() {
    let all = crds();
    let names: Vec<&str> = all
        .iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    assert_eq!(
        names,
        [
            "ingressclassparams.elbv2.k8s.aws",
            "targetgroupbindings.elbv2.k8s.aws"
        ]
    );
    assert_eq!(all[0].spec.scope, "Cluster");
    assert_eq!(
        all[0].spec.names.singular.as_deref(),
        Some("ingressclassparam")
    );
    assert_eq!(all[1].spec.scope, "Namespaced");
    let cols = |i: usize| -> Vec<(String, Option<i32>)> {
        all[i].spec.versions[0]
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| (c.name.clone(), c.priority))
            .collect()
    };
    assert_eq!(
        cols(0),
        [
            ("GROUP-NAME".to_string(), None),
            ("SCHEME".to_string(), None),
            ("IP-ADDRESS-TYPE".to_string(), None),
            ("AGE".to_string(), None)
        ]
    );
    assert_eq!(
        cols(1),
        [
            ("SERVICE-NAME".to_string(), None),
            ("SERVICE-PORT".to_string(), None),
            ("TARGET-TYPE".to_string(), None),
            ("ARN".to_string(), Some(1)),
            ("NAME".to_string(), Some(2)),
            ("AGE".to_string(), None)
        ]
    );
    let v = &all[1].spec.versions[0];
    assert!(
        v.subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );
    let icp = serde_json::to_string(&all[0]).unwrap();
    for needle in [
        r#""inboundCIDRs""#,
        r#""prefixListsIDs""#,
        r#""certificateArn""#,
        r#""sslRedirectPort""#,
        r#""minimumLoadBalancerCapacity""#,
        r#""dualstack-without-public-ipv4""#,
        r#""internet-facing""#,
    ] {
        assert!(
            icp.contains(needle),
            "IngressClassParams CRD lacks {needle}"
        );
    }
    let tgb = serde_json::to_string(&all[1]).unwrap();
    for needle in [
        r#""targetGroupARN""#,
        r#""vpcID""#,
        r#""groupID""#,
        r#""multiClusterTargetGroup""#,
        r#""x-kubernetes-int-or-string":true"#,
        r#""TCP_UDP""#,
        r#""observedGeneration""#,
        r#""conditions""#,
    ] {
        assert!(
            tgb.contains(needle),
            "TargetGroupBinding CRD lacks {needle}"
        );
    }
}

#[test]
fn upstream_objects_parse() {
    let params: v1beta1::IngressClassParams = serde_saphyr::from_str(
        r#"
apiVersion: elbv2.k8s.aws/v1beta1
kind: IngressClassParams
metadata:
  name: shared
spec:
  namespaceSelector:
    matchLabels:
      team: web
  group:
    name: shared
  scheme: internet-facing
  inboundCIDRs: [10.0.0.0/8]
  sslRedirectPort: "443"
  ipAddressType: dualstack
  tags:
  - key: team
    value: web
  targetType: ip
  loadBalancerAttributes:
  - key: idle_timeout.timeout_seconds
    value: "120"
  certificateArn: [arn:aws:acm:ap-southeast-1:123456789012:certificate/abc]
  prefixListsIDs: [pl-1]
  minimumLoadBalancerCapacity:
    capacityUnits: 100
"#,
    )
    .unwrap();
    let s = &params.spec;
    assert_eq!(s.group.as_ref().unwrap().name, "shared");
    assert_eq!(s.scheme, Some(v1beta1::LoadBalancerScheme::InternetFacing));
    assert_eq!(s.ip_address_type, Some(v1beta1::IpAddressType::Dualstack));
    assert_eq!(s.target_type, Some(v1beta1::TargetType::Ip));
    assert_eq!(s.inbound_cidrs, ["10.0.0.0/8"]);
    assert_eq!(s.prefix_lists_ids, ["pl-1"]);
    assert_eq!(s.ssl_redirect_port.as_deref(), Some("443"));

    let tgb: v1beta1::TargetGroupBinding = serde_saphyr::from_str(
        r#"
apiVersion: elbv2.k8s.aws/v1beta1
kind: TargetGroupBinding
metadata:
  name: web
  namespace: default
spec:
  targetGroupARN: arn:aws:elasticloadbalancing:ap-southeast-1:123456789012:targetgroup/web/0123456789abcdef
  targetType: ip
  serviceRef:
    name: web
    port: http
  networking:
    ingress:
    - from:
      - securityGroup:
          groupID: sg-123
      ports:
      - protocol: TCP
        port: 8080
  vpcID: vpc-1
"#,
    )
    .unwrap();
    assert_eq!(
        tgb.spec.service_ref.port,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("http".into())
    );
    assert!(
        tgb.spec
            .target_group_arn
            .unwrap()
            .ends_with("0123456789abcdef")
    );
    assert_eq!(tgb.spec.vpc_id.as_deref(), Some("vpc-1"));
    let rule = &tgb.spec.networking.unwrap().ingress[0];
    assert_eq!(
        rule.from[0].security_group.as_ref().unwrap().group_id,
        "sg-123"
    );
}
