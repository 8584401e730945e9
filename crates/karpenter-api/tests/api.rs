//! The committed CRDs match the types; the seed's Provisioner is read and
//! mapped onto the scheduling model; bad pools are refused with the field
//! named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use outrigger_karpenter_api::{convert, crds, file_name, to_yaml, v1, v1alpha5};
use outrigger_scheduling::{
    eks,
    model::{CAPACITY_SPOT, LABEL_CAPACITY_TYPE, LABEL_PROVISIONER, Offering, Pod, Problem},
    resources::Resources,
    solver::{claim_line, solve},
};

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
            "deploy/crds/{name} is out of date with crates/karpenter-api: run `make crds` and commit"
        );
        expected.push(name);
    }
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("karpenter."))
        .collect();
    present.sort();
    expected.sort();
    assert_eq!(
        present, expected,
        "deploy/crds/ has files no type generates"
    );
}

#[test]
fn crds_have_upstreams_names_and_columns() {
    let all = crds();
    let names: Vec<&str> = all
        .iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    assert_eq!(
        names,
        [
            "nodepools.karpenter.sh",
            "nodeclaims.karpenter.sh",
            "provisioners.karpenter.sh",
            "ec2nodeclasses.karpenter.k8s.aws",
            "kwoknodeclasses.karpenter.kwok.sh"
        ]
    );
    for c in &all {
        assert_eq!(c.spec.scope, "Cluster");
        assert_eq!(
            c.spec.names.categories.as_deref(),
            Some(&["karpenter".to_string()][..])
        );
    }
    let claim = &all[1].spec.versions[0];
    let cols: Vec<&str> = claim
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .filter(|c| c.priority.is_none())
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(cols, ["Type", "Capacity", "Zone", "Node", "Ready", "Age"]);
    let json = serde_json::to_string(&all[0]).unwrap();
    for needle in [
        r#""default":"720h""#,
        r#""nodes":"10%""#,
        r#""consolidationPolicy":"WhenEmptyOrUnderutilized""#,
        "must have a single positive integer value",
        r#""maximum":100"#,
    ] {
        assert!(json.contains(needle), "NodePool CRD lacks {needle:?}");
    }
}

/// The seed's Provisioner, as written (CLUSTER_NAME=demo).
const SEED_PROVISIONER: &str = include_str!("../../../deploy/examples/seed-provisioner.yaml");

#[test]
fn the_seeds_provisioner_drives_the_solver() {
    let p: v1alpha5::Provisioner = serde_saphyr::from_str(SEED_PROVISIONER).unwrap();
    assert_eq!(p.spec.ttl_seconds_after_empty, Some(30));
    let provider = p.spec.provider.as_ref().unwrap();
    assert_eq!(provider["subnetSelector"]["karpenter.sh/discovery"], "demo");
    let pool = convert::provisioner(&p).unwrap();
    assert_eq!(pool.name, "default");
    assert_eq!(pool.limits["cpu"], 1_000_000);
    assert_eq!(pool.labels[LABEL_PROVISIONER], "default");
    assert_eq!(
        pool.requirements
            .get(LABEL_CAPACITY_TYPE)
            .and_then(|r| r.single()),
        Some(CAPACITY_SPOT)
    );

    // The seed's example end to end: 20 inflate pods of cpu 1.
    let offerings = |od: f64| {
        vec![Offering {
            zone: "ap-southeast-1a".into(),
            capacity_type: CAPACITY_SPOT.into(),
            price: od * 0.3,
            available: true,
        }]
    };
    let types = ["m6i.large", "m6i.xlarge", "m6i.2xlarge", "c6i.large"]
        .iter()
        .map(|n| {
            eks::instance_type(
                &eks::shape(n).unwrap(),
                &eks::Kubelet::default(),
                offerings(0.2),
            )
        })
        .collect();
    let ds = |name: &str, cpu: &str, mem: Option<&str>| {
        let mut r = vec![("cpu", cpu)];
        r.extend(mem.map(|m| ("memory", m)));
        Pod::new("kube-system", name, Resources::parse(r).unwrap())
    };
    let problem = Problem {
        pods: (0..20)
            .map(|i| {
                Pod::new(
                    "default",
                    &format!("inflate-{i}"),
                    Resources::parse([("cpu", "1")]).unwrap(),
                )
            })
            .collect(),
        nodes: vec![],
        pools: vec![pool],
        instance_types: types,
        daemonsets: vec![
            ds("aws-node", "25m", None),
            ds("kube-proxy", "100m", None),
            ds("ebs-csi-node", "30m", Some("120Mi")),
        ],
    };
    let plan = solve(&problem);
    assert!(plan.unplaced.is_empty());
    assert_eq!(
        claim_line(&problem, &plan.claims[0]),
        r#"node with 3 pods requesting {"cpu":"3155m","memory":"120Mi","pods":"6"} from types m6i.xlarge"#
    );
}

fn nodepool(requirements: &str) -> v1::NodePool {
    serde_saphyr::from_str(&format!(
        r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {{name: default}}
spec:
  template:
    spec:
      nodeClassRef: {{group: karpenter.kwok.sh, kind: KWOKNodeClass, name: default}}
      requirements: {requirements}
  limits: {{cpu: "100", memory: 400Gi}}
"#
    ))
    .unwrap()
}

#[test]
fn nodepools_map_and_bad_ones_name_the_field() {
    let np = nodepool(
        r#"[{key: karpenter.k8s.aws/instance-cpu, operator: Gte, values: ["4"]}, {key: failure-domain.beta.kubernetes.io/zone, operator: In, values: [a, b]}]"#,
    );
    assert_eq!(np.spec.disruption.budgets[0].nodes, "10%");
    assert_eq!(np.spec.template.spec.expire_after.as_deref(), Some("720h"));
    let pool = convert::nodepool(&np).unwrap();
    let cpu = pool
        .requirements
        .get("karpenter.k8s.aws/instance-cpu")
        .unwrap();
    // Gte 4 is Gt 3.
    assert!(cpu.allows(Some("4")) && !cpu.allows(Some("3")));
    // Deprecated keys are normalized.
    assert!(
        pool.requirements
            .get("topology.kubernetes.io/zone")
            .is_some()
    );
    assert_eq!(pool.limits["memory"], 400 << 30);

    let bad = nodepool(
        r#"[{key: karpenter.k8s.aws/instance-cpu, operator: Gt, values: ["four"]}, {key: kubernetes.io/hostname, operator: In, values: [x]}]"#,
    );
    let errs = convert::nodepool(&bad).unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        text,
        [
            "spec.template.spec.requirements[0]: karpenter.k8s.aws/instance-cpu: \"four\" is not an integer",
            "spec.template.spec.requirements[1]: label kubernetes.io/hostname is restricted: Karpenter sets it"
        ]
    );
    let contradictory = nodepool(
        r#"[{key: karpenter.sh/capacity-type, operator: In, values: [spot]}, {key: karpenter.sh/capacity-type, operator: NotIn, values: [spot]}]"#,
    );
    let errs = convert::nodepool(&contradictory).unwrap_err();
    assert!(errs[0].message.contains("contradicts"), "{errs:?}");
}

/// Karpenter's inclusive operators read the same on a NodeClaim as on a
/// NodePool: `Gte 4` allows 4, `Lte 8` allows 8 (a converter that dropped
/// the shift once misread claims written with them).
#[test]
fn nodeclaims_read_gte_and_lte_inclusively() {
    let claim: v1::NodeClaim = serde_saphyr::from_str(
        r#"
apiVersion: karpenter.sh/v1
kind: NodeClaim
metadata: {name: c}
spec:
  nodeClassRef: {group: karpenter.kwok.sh, kind: KWOKNodeClass, name: default}
  requirements:
    - {key: karpenter.k8s.aws/instance-cpu, operator: Gte, values: ["4"]}
    - {key: karpenter.k8s.aws/instance-memory, operator: Lte, values: ["8192"]}
    - {key: karpenter.sh/nodepool, operator: In, values: [default]}
"#,
    )
    .unwrap();
    let r = convert::nodeclaim_requirements(&claim);
    let cpu = r.get("karpenter.k8s.aws/instance-cpu").unwrap();
    assert!(cpu.allows(Some("4")) && cpu.allows(Some("5")) && !cpu.allows(Some("3")));
    let mem = r.get("karpenter.k8s.aws/instance-memory").unwrap();
    assert!(mem.allows(Some("8192")) && !mem.allows(Some("8193")));
    // What Karpenter itself writes on a claim is read, not refused.
    assert!(
        r.get("karpenter.sh/nodepool")
            .unwrap()
            .allows(Some("default"))
    );
}

#[test]
fn unknown_operators_do_not_parse() {
    let r: Result<v1::NodePool, _> = serde_saphyr::from_str(
        r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: x}
spec:
  template:
    spec:
      nodeClassRef: {group: g, kind: k, name: n}
      requirements: [{key: a, operator: Near, values: [b]}]
"#,
    );
    assert!(r.is_err());
}
