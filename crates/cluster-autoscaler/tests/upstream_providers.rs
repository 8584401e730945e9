//! Upstream Cluster Autoscaler's (1.34.5) unit-test cases about the AWS
//! and kwok providers' node groups, ported to our providers' pure parts
//! (what needs AWS or an API server is left to the cluster tests). Each
//! test names its upstream test function and case.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use outrigger_aws_autoscaling::{Activity, Group, GroupInstance};
use outrigger_cluster_autoscaler::groups::{aws, kwok};
use outrigger_node_groups::flags::{StaticGroup, discovery_matches, parse_discovery, parse_nodes};
use outrigger_scheduling::{eks::Ec2Shape, model::TaintEffect};

fn asg(name: &str, desired: i32, instances: &[&str]) -> Group {
    Group {
        name: name.into(),
        min: 1,
        max: 5,
        desired,
        zones: vec!["us-east-1a".into()],
        instances: instances
            .iter()
            .map(|id| GroupInstance {
                id: id.to_string(),
                zone: "us-east-1a".into(),
                lifecycle_state: "InService".into(),
                instance_type: None,
            })
            .collect(),
        tags: BTreeMap::new(),
        launch: Default::default(),
    }
}

fn statics(specs: &[&str]) -> Vec<StaticGroup> {
    specs.iter().map(|s| parse_nodes(s).unwrap()).collect()
}

mod cloudprovider_aws_aws_manager_test {
    use super::*;

    fn t3_micro() -> Ec2Shape {
        Ec2Shape {
            name: "t3.micro".into(),
            vcpus: 2,
            memory_mib: 1024,
            max_enis: 2,
            ipv4_per_eni: 2,
            arch: "amd64".into(),
            gpus: vec![],
        }
    }

    fn sample(zones: &[&str]) -> Group {
        let mut g = asg("sample", 0, &[]);
        g.zones = zones.iter().map(|z| z.to_string()).collect();
        g.tags = BTreeMap::from([(
            "k8s.io/cluster-autoscaler/node-template/taint/dedicated".to_string(),
            "foo:NoSchedule".to_string(),
        )]);
        g
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestGetASGTemplate "insufficient availability zones"
    #[test]
    fn get_asg_template_insufficient_availability_zones() {
        assert!(aws::template_for(&sample(&[]), "t3.micro", Some(&t3_micro())).is_err());
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestGetASGTemplate "single availability zone"
    #[test]
    fn get_asg_template_single_availability_zone() {
        let t = aws::template_for(&sample(&["us-east-1a"]), "t3.micro", Some(&t3_micro())).unwrap();
        assert_eq!(t.instance_type, "t3.micro");
        assert_eq!(t.labels["topology.kubernetes.io/region"], "us-east-1");
        assert_eq!(t.labels["topology.kubernetes.io/zone"], "us-east-1a");
        assert_eq!(t.taints.len(), 1);
        assert_eq!(t.taints[0].key, "dedicated");
        assert_eq!(t.taints[0].effect, TaintEffect::NoSchedule);
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestGetASGTemplate "multiple availability zones"
    #[test]
    fn get_asg_template_multiple_availability_zones() {
        let t = aws::template_for(
            &sample(&["us-east-1a", "us-west-1b"]),
            "t3.micro",
            Some(&t3_micro()),
        )
        .unwrap();
        assert_eq!(t.labels["topology.kubernetes.io/region"], "us-east-1");
        assert_eq!(t.labels["topology.kubernetes.io/zone"], "us-east-1a");
        // The first zone as the group lists it, not the smallest.
        let t = aws::template_for(
            &sample(&["us-west-1b", "us-east-1a"]),
            "t3.micro",
            Some(&t3_micro()),
        )
        .unwrap();
        assert_eq!(t.labels["topology.kubernetes.io/zone"], "us-west-1b");
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestGetASGTemplate "unknown instance type"
    #[test]
    fn get_asg_template_unknown_instance_type() {
        let e =
            aws::template_for(&sample(&["us-east-1a"]), "nonexistent.xlarge", None).unwrap_err();
        assert!(e.contains("nonexistent.xlarge"), "{e}");
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestFetchExplicitAsgs
    #[test]
    fn fetch_explicit_asgs() {
        // The same group named twice by --nodes: the first spec's bounds.
        let s = statics(&["1:10:coolasg", "1:9:coolasg"]);
        let mut g = asg("coolasg", 1, &[]);
        g.zones = vec!["test-1a".into()];
        g.min = 1;
        g.max = 10;
        let ng = aws::node_group(&g, &s, None);
        assert_eq!((ng.id.as_str(), ng.min, ng.max), ("coolasg", 1, 10));
        // --nodes bounds win over the group's own.
        g.max = 3;
        assert_eq!(aws::node_group(&g, &s, None).max, 10);
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestFetchAutoAsgs
    #[test]
    fn fetch_auto_asgs() {
        let spec = parse_discovery("asg:tag=tag,anothertag").unwrap();
        let mut g = asg("coolasg", 1, &[]);
        g.max = 10;
        g.tags = BTreeMap::from([
            ("tag".to_string(), String::new()),
            ("anothertag".to_string(), "x".to_string()),
        ]);
        assert!(discovery_matches(&spec, &g.tags));
        let ng = aws::node_group(&g, &[], None);
        assert_eq!((ng.id.as_str(), ng.min, ng.max), ("coolasg", 1, 10));
        // A group without one of the tags is not discovered.
        g.tags.remove("anothertag");
        assert!(!discovery_matches(&spec, &g.tags));
    }
}

mod cloudprovider_aws_auto_scaling_groups_test {
    use super::*;

    fn activity(status: &str, start: &str) -> Activity {
        Activity {
            status: status.into(),
            message: "Could not launch On-Demand Instances. InsufficientInstanceCapacity".into(),
            description: "Launching a new EC2 instance".into(),
            start: start.into(),
        }
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/auto_scaling_groups_test.go TestCreatePlaceholders "early abort if AWS scaling up fails"
    #[test]
    fn create_placeholders_early_abort_if_aws_scaling_up_fails() {
        let since: jiff::Timestamp = "1970-01-01T00:00:09Z".parse().unwrap();
        let why = aws::failure_since(vec![activity("Failed", "1970-01-01T00:00:10Z")], since);
        assert!(why.unwrap().contains("InsufficientInstanceCapacity"));
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/auto_scaling_groups_test.go TestCreatePlaceholders "AWS scaling failed event before CA scale_up"
    #[test]
    fn create_placeholders_aws_scaling_failed_event_before_ca_scale_up() {
        let since: jiff::Timestamp = "1970-01-01T00:00:10Z".parse().unwrap();
        let acts = vec![
            activity("Successful", "1970-01-01T00:00:11Z"),
            activity("Failed", "1970-01-01T00:00:09Z"),
        ];
        assert_eq!(aws::failure_since(acts, since), None);
    }
}

mod cloudprovider_aws_aws_cloud_provider_test {
    use super::*;

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_cloud_provider_test.go TestNodeGroups
    #[test]
    fn node_groups() {
        let mut g = asg("test-asg", 1, &[]);
        (g.min, g.max) = (0, 100);
        let ng = aws::node_group(&g, &statics(&["1:5:test-asg"]), None);
        assert_eq!((ng.id.as_str(), ng.min, ng.max), ("test-asg", 1, 5));
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_cloud_provider_test.go TestAutoDiscoveredNodeGroups
    #[test]
    fn auto_discovered_node_groups() {
        let spec = parse_discovery("asg:tag=test").unwrap();
        let mut g = asg("auto-asg", 1, &["test-instance-id"]);
        g.tags.insert("test".into(), String::new());
        assert!(discovery_matches(&spec, &g.tags));
        // Discovered groups keep the group's own bounds.
        let ng = aws::node_group(&g, &statics(&["2:3:other-asg"]), None);
        assert_eq!((ng.id.as_str(), ng.min, ng.max), ("auto-asg", 1, 5));
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_cloud_provider_test.go TestNodeGroupForNode
    #[test]
    fn node_group_for_node() {
        let ng = aws::node_group(
            &asg("test-asg", 1, &["test-instance-id"]),
            &statics(&["1:5:test-asg"]),
            None,
        );
        assert!(ng.has("aws:///us-east-1a/test-instance-id"));
        assert_eq!((ng.min, ng.max), (1, 5));
        assert_eq!(ng.instances, ["aws:///us-east-1a/test-instance-id"]);
        assert!(!ng.has("aws:///us-east-1a/test-instance-id-not-in-group"));
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_cloud_provider_test.go TestAwsRefFromProviderId
    #[test]
    fn aws_ref_from_provider_id() {
        assert!(aws::instance_id("aws123").is_err());
        assert!(aws::instance_id("aws://test-az/test-instance-id").is_err());
        assert_eq!(
            aws::instance_id("aws:///us-east-1a/i-260942b3").unwrap(),
            "i-260942b3"
        );
        assert_eq!(
            aws::instance_id("aws:///us-east-1a/i-placeholder-some.arbitrary.cluster.local")
                .unwrap(),
            "i-placeholder-some.arbitrary.cluster.local"
        );
        assert_eq!(
            aws::instance_id(
                "aws:///eu-central-1c/i-placeholder-K3-EKS-spotr5xlasgsubnet02af43b02922e710f-10QH9H0C8PG7O-14"
            )
            .unwrap(),
            "i-placeholder-K3-EKS-spotr5xlasgsubnet02af43b02922e710f-10QH9H0C8PG7O-14"
        );
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_cloud_provider_test.go TestTargetSize
    #[test]
    fn target_size() {
        let ng = aws::node_group(
            &asg(
                "test-asg",
                2,
                &["test-instance-id", "second-test-instance-id"],
            ),
            &statics(&["1:5:test-asg"]),
            None,
        );
        assert_eq!(ng.target, 2);
    }

    fn in_state(mut g: Group, state: &str) -> Group {
        for i in &mut g.instances {
            i.lifecycle_state = state.into();
        }
        g
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_cloud_provider_test.go TestDeleteNodesTerminatingInstances
    #[test]
    fn delete_nodes_terminating_instances() {
        // Terminating instances are not the group's to remove again: not
        // among its instances; the target stays.
        let g = in_state(
            asg(
                "test-asg",
                2,
                &["test-instance-id", "second-test-instance-id"],
            ),
            "Terminating:Wait",
        );
        let ng = aws::node_group(&g, &statics(&["1:5:test-asg"]), None);
        assert!(!ng.has("aws:///us-east-1a/test-instance-id"));
        assert_eq!(ng.target, 2);
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_cloud_provider_test.go TestDeleteNodesTerminatedInstances
    #[test]
    fn delete_nodes_terminated_instances() {
        let g = in_state(
            asg(
                "test-asg",
                2,
                &["test-instance-id", "second-test-instance-id"],
            ),
            "Terminated",
        );
        let ng = aws::node_group(&g, &statics(&["1:5:test-asg"]), None);
        assert!(ng.instances.is_empty());
        assert_eq!(ng.target, 2);
    }
}

/// Upstream's kwok test configuration: templates from the ConfigMap
/// `kwok-provider-templates`, grouped by the label `kwok-nodegroup`, with
/// a GPU configuration.
const CONFIG: &str = r#"
apiVersion: v1alpha1
readNodesFrom: configmap # or cluster
nodegroups:
  fromNodeLabelKey: "kwok-nodegroup"
nodes:
  gpuConfig:
    gpuLabelKey: "k8s.amazonaws.com/accelerator"
    availableGPUTypes:
      "nvidia-tesla-k80": {}
      "nvidia-tesla-p100": {}
configmap:
  name: kwok-provider-templates
kwok: {}
"#;

fn config_with(from: &str, skip_taint: bool) -> String {
    let c = CONFIG.replace(
        "readNodesFrom: configmap",
        &format!("readNodesFrom: {from}"),
    );
    if skip_taint {
        c.replace("nodes:\n", "nodes:\n  skipTaint: true\n")
    } else {
        c
    }
}

/// A kind cluster's worker (trimmed), as upstream's template tests use.
fn worker(name: &str, group: Option<&str>) -> String {
    let group = group.map_or(String::new(), |g| format!("\n    kwok-nodegroup: {g}"));
    format!(
        r#"apiVersion: v1
kind: Node
metadata:
  annotations: {{}}
  labels:
    beta.kubernetes.io/arch: amd64
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: {name}
    kubernetes.io/os: linux
    k8s.amazonaws.com/accelerator: "nvidia-tesla-k80"{group}
  name: {name}
spec:
  podCIDR: 10.244.2.0/24
  providerID: kind://docker/kind/{name}
status:
  allocatable:
    cpu: "12"
    ephemeral-storage: 959786032Ki
    memory: 32781516Ki
    pods: "110"
  capacity:
    cpu: "12"
    ephemeral-storage: 959786032Ki
    memory: 32781516Ki
    pods: "110"
"#
    )
}

fn indent(doc: &str) -> String {
    doc.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("- {l}\n")
            } else {
                format!("  {l}\n")
            }
        })
        .collect()
}

/// Upstream's `testTemplates`: a List of two workers, one of them
/// grouped (`kind-worker`).
fn test_templates() -> String {
    format!(
        "apiVersion: v1\nkind: List\nitems:\n{}{}metadata:\n  resourceVersion: \"\"\n",
        indent(&worker("kind-worker", Some("kind-worker"))),
        indent(&worker("kind-worker-2", None)),
    )
}

/// Upstream's `testTemplatesMinimal`: ng1 and ng2 named by annotation and
/// label, and a node of no group.
const TEMPLATES_MINIMAL: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata:
    annotations:
      cluster-autoscaler.kwok.nodegroup/name: ng1
    labels:
      kwok-nodegroup: ng1
    name: node1
  spec: {}
- apiVersion: v1
  kind: Node
  metadata:
    annotations:
      cluster-autoscaler.kwok.nodegroup/name: ng2
    labels:
      kwok-nodegroup: ng2
    name: node2
  spec: {}
- apiVersion: v1
  kind: Node
  metadata:
    annotations: {}
    labels: {}
    name: node3
  spec: {}
"#;

/// A node from YAML.
fn node(yaml: &str) -> Node {
    kwok::parse_templates(yaml).unwrap().remove(0)
}

/// A node of the group with a kwok providerID.
fn member(name: &str, group: &str) -> Node {
    node(&format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{kwok-nodegroup: {group}}}\nspec:\n  providerID: kwok:{name}\n"
    ))
}

mod cloudprovider_kwok_kwok_config_test {
    use super::*;

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_config_test.go TestLoadConfigFile
    #[test]
    fn load_config_file() {
        let c = kwok::parse_config(CONFIG).unwrap();
        assert_eq!(
            c.templates_from,
            kwok::TemplatesFrom::ConfigMap("kwok-provider-templates".into())
        );
        assert_eq!(c.grouping, kwok::Grouping::Label("kwok-nodegroup".into()));
        assert!(!c.skip_taint);
        assert_eq!(
            c.gpu_label.as_deref(),
            Some("k8s.amazonaws.com/accelerator")
        );
        // "without-kwok", "with-static-kwok-release", "skip-kwok-install":
        // another grouping label, no `kwok`, or `kwok` fields we do not
        // use, all taken.
        let other = CONFIG.replace("kwok-nodegroup", "node.kubernetes.io/instance-type");
        for text in [
            other.replace("kwok: {}\n", ""),
            other.replace("kwok: {}", "kwok:\n  release: \"v0.2.1\""),
            other.replace("kwok: {}", "kwok:\n  skipInstall: true"),
        ] {
            let c = kwok::parse_config(&text).unwrap();
            assert_eq!(
                c.grouping,
                kwok::Grouping::Label("node.kubernetes.io/instance-type".into())
            );
            assert!(c.gpu_label.is_some());
        }
        // KWOK_PROVIDER_CONFIGMAP names another ConfigMap; unset or blank,
        // the default.
        assert_eq!(
            kwok::config_configmap_name(Some("without-kwok")),
            "without-kwok"
        );
        assert_eq!(kwok::config_configmap_name(None), "kwok-provider-config");
        assert_eq!(
            kwok::config_configmap_name(Some(" ")),
            "kwok-provider-config"
        );
    }

    // upstream source: cluster-autoscaler/cloudprovider/kwok/kwok_config.go LoadConfigFile
    // (its checks; kwok_config_test.go has no case for them)
    #[test]
    fn load_config_file_errors() {
        let cases = [
            (
                CONFIG.replace("readNodesFrom: configmap", "readNodesFrom: somewhere"),
                "readNodesFrom",
            ),
            (
                CONFIG.replace("readNodesFrom: configmap # or cluster\n", ""),
                "readNodesFrom",
            ),
            (
                CONFIG.replace("configmap:\n  name: kwok-provider-templates\n", ""),
                "'configmap'",
            ),
            (
                CONFIG.replace("name: kwok-provider-templates", "name: \" \""),
                "configmap.name",
            ),
            (
                CONFIG.replace("nodegroups:\n  fromNodeLabelKey: \"kwok-nodegroup\"\n", ""),
                "'nodegroups'",
            ),
            (
                CONFIG.replace(
                    "fromNodeLabelKey: \"kwok-nodegroup\"",
                    "fromNodeLabelKey: \"\"",
                ),
                "currently empty",
            ),
            (
                CONFIG.replace(
                    "fromNodeLabelKey: \"kwok-nodegroup\"",
                    "fromNodeLabelKey: a\n  fromNodeAnnotationKey: b",
                ),
                "can't use both",
            ),
            (
                CONFIG.replace("    gpuLabelKey: \"k8s.amazonaws.com/accelerator\"\n", ""),
                "gpuConfig",
            ),
            ("readNodesFrom: [".to_string(), "decode"),
        ];
        for (text, want) in cases {
            let e = kwok::parse_config(&text).unwrap_err();
            assert!(e.contains(want), "{want}: {e}");
        }
        // Cluster templates need no ConfigMap; annotation grouping.
        let c = kwok::parse_config(
            "readNodesFrom: cluster\nnodegroups: {fromNodeAnnotationKey: eks.amazonaws.com/nodegroup}\n",
        )
        .unwrap();
        assert_eq!(c.templates_from, kwok::TemplatesFrom::Cluster);
        assert_eq!(
            c.grouping,
            kwok::Grouping::Annotation("eks.amazonaws.com/nodegroup".into())
        );
        assert_eq!(c.gpu_label, None);
    }
}

mod cloudprovider_kwok_kwok_helpers_test {
    use super::*;

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_helpers_test.go TestLoadNodeTemplatesFromConfigMap "happy path"
    #[test]
    fn load_node_templates_from_config_map_happy_path() {
        let t = kwok::parse_templates(&test_templates()).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].name_any(), "kind-worker");
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_helpers_test.go TestLoadNodeTemplatesFromConfigMap "wrongIndentation"
    #[test]
    fn load_node_templates_from_config_map_wrong_indentation() {
        let wrong = "apiVersion: v1\n  items:\n  - apiVersion: v1\n# everything below should be in-line with apiVersion above\n  kind: Node\nmetadata:\n  name: kind-worker\n  labels:\n    kwok-nodegroup: kind-worker\nkind: List\n";
        assert!(kwok::parse_templates(wrong).is_err());
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_helpers_test.go TestLoadNodeTemplatesFromConfigMap "multipleNodes"
    #[test]
    fn load_node_templates_from_config_map_multiple_nodes() {
        let control_plane = worker("kind-control-plane", Some("control-plane")).replace(
            "spec:\n",
            "spec:\n  taints:\n  - effect: NoSchedule\n    key: node-role.kubernetes.io/control-plane\n",
        );
        let docs = format!(
            "{control_plane}---\n\n{}",
            worker("kind-worker", Some("kind-worker"))
        );
        let t = kwok::parse_templates(&docs).unwrap();
        assert_eq!(t.len(), 2);
        // Other kinds among several documents are skipped, as upstream.
        let with_cm =
            format!("{docs}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\n");
        assert_eq!(kwok::parse_templates(&with_cm).unwrap().len(), 2);
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_helpers_test.go TestLoadNodeTemplatesFromConfigMap "nodeList"
    #[test]
    fn load_node_templates_from_config_map_node_list() {
        let list = format!(
            "apiVersion: v1\nkind: List\nitems:\n{}{}",
            indent(&worker("kind-control-plane", Some("control-plane"))),
            indent(&worker("kind-worker", Some("kind-worker")))
        );
        assert_eq!(kwok::parse_templates(&list).unwrap().len(), 2);
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_helpers_test.go TestLoadNodeTemplatesFromConfigMap "configmap data key is not templates"
    #[test]
    fn load_node_templates_from_config_map_wrong_key() {
        // The ConfigMap without a `templates` key reads as empty.
        let e = kwok::parse_templates("").unwrap_err();
        assert!(e.contains("templates"), "{e}");
        // One document neither a List nor a Node is refused, as upstream;
        // one Node alone is taken (upstream wants a List then).
        assert!(
            kwok::parse_templates("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
                .is_err()
        );
        assert_eq!(
            kwok::parse_templates(&worker("kind-worker", Some("kind-worker")))
                .unwrap()
                .len(),
            1
        );
    }
}

mod cloudprovider_kwok_kwok_nodegroups_test {
    use super::*;

    fn template_node() -> Node {
        node(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: template-node-ng\n  labels: {kwok-nodegroup: ng}\n",
        )
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_nodegroups_test.go TestIncreaseSize "usual case"
    #[test]
    fn increase_size_usual_case() {
        assert_eq!(kwok::nodes_to_add(2, 3, 3).unwrap(), 1);
        let n = kwok::new_node(&template_node(), "ng", "ng-abcde");
        assert!(n.name_any().contains("ng"));
        let pid = n.spec.as_ref().unwrap().provider_id.clone().unwrap();
        assert!(pid.contains("kwok"));
        assert_eq!(
            n.annotations()["metrics.k8s.io/resource-metrics-path"],
            "/metrics/nodes/ng-abcde/metrics/resource"
        );
        assert_eq!(n.annotations()[kwok::MANAGED_ANNOTATION], "fake");
        assert_eq!(n.annotations()[kwok::GROUP_ANNOTATION], "ng");
        // Deliberate: the hostname label is the new node's name (upstream
        // copies the template's).
        assert_eq!(n.labels()["kubernetes.io/hostname"], "ng-abcde");
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_nodegroups_test.go TestIncreaseSize "delta is negative"
    #[test]
    fn increase_size_delta_is_negative() {
        // Deliberate: we are asked for a target, not a delta; a target at
        // or below the nodes there creates none (upstream: an error).
        assert_eq!(kwok::nodes_to_add(3, 2, 3).unwrap(), 0);
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_nodegroups_test.go TestIncreaseSize "delta is greater than max size"
    #[test]
    fn increase_size_delta_is_greater_than_max_size() {
        let e = kwok::nodes_to_add(3, 3 + 4, 3).unwrap_err();
        assert!(e.contains("size increase too large"), "{e}");
    }

    fn managed(name: &str) -> Node {
        node(&format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  annotations: {{kwok.x-k8s.io/node: fake}}\n"
        ))
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_nodegroups_test.go TestDeleteNodes "usual case"
    #[test]
    fn delete_nodes_usual_case() {
        assert!(kwok::check_delete(&[&managed("node-to-delete-1")], 1, 0).is_ok());
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_nodegroups_test.go TestDeleteNodes "min size reached"
    #[test]
    fn delete_nodes_min_size_reached() {
        let e = kwok::check_delete(&[&managed("node-to-delete-1")], 0, 0).unwrap_err();
        assert!(e.contains("min size reached"), "{e}");
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_nodegroups_test.go TestDeleteNodes "too many nodes to delete - goes below ng's minSize"
    #[test]
    fn delete_nodes_too_many_nodes_to_delete() {
        let (a, b) = (managed("node-to-delete-1"), managed("node-to-delete-2"));
        let e = kwok::check_delete(&[&a, &b], 1, 0).unwrap_err();
        assert!(e.contains("below min size"), "{e}");
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_nodegroups_test.go TestDeleteNodes "kwok annotation is not present on the node to delete"
    #[test]
    fn delete_nodes_kwok_annotation_is_not_present() {
        let n = node(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-to-delete-3\n  annotations: {}\n",
        );
        let e = kwok::check_delete(&[&n], 1, 0).unwrap_err();
        assert!(e.contains("not managed by kwok"), "{e}");
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_nodegroups_test.go TestNodes "usual case"
    #[test]
    fn nodes_usual_case() {
        let cfg = kwok::parse_config(CONFIG).unwrap();
        let members = [member("node-1", "ng"), member("node-2", "ng")];
        let refs: Vec<&Node> = members.iter().collect();
        let ngs = kwok::node_groups(&cfg, &[template_node()], &refs).unwrap();
        assert_eq!(ngs[0].instances, ["kwok:node-1", "kwok:node-2"]);
        assert_eq!(ngs[0].target, 2);
    }
}

mod cloudprovider_kwok_kwok_provider_test {
    use super::*;

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_provider_test.go TestNodeGroups "use template nodes from the configmap"
    #[test]
    fn node_groups_use_template_nodes_from_the_configmap() {
        let cfg = kwok::parse_config(CONFIG).unwrap();
        let templates = kwok::parse_templates(&test_templates()).unwrap();
        let ngs = kwok::node_groups(&cfg, &templates, &[]).unwrap();
        assert_eq!(ngs.len(), 1);
        assert_eq!(ngs[0].id, "kind-worker");
        assert_eq!((ngs[0].min, ngs[0].max, ngs[0].target), (0, 200, 0));
        let t = ngs[0].template.as_ref().unwrap();
        assert_eq!(t.allocatable.cpu_millis, 12_000);
        assert_eq!(t.allocatable.pods, 110);
        assert!(!t.labels.contains_key("kubernetes.io/hostname"));
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_provider_test.go TestNodeGroups "use template nodes from the cluster (aka get them using kube client)"
    #[test]
    fn node_groups_use_template_nodes_from_the_cluster() {
        let cfg = kwok::parse_config(&config_with("cluster", false)).unwrap();
        assert_eq!(cfg.templates_from, kwok::TemplatesFrom::Cluster);
        let n = node(
            "apiVersion: v1\nkind: Node\nmetadata:\n  annotations: {}\n  labels: {kwok-nodegroup: kind-worker}\nspec: {}\n",
        );
        let ngs = kwok::node_groups(&cfg, &[n], &[]).unwrap();
        assert_eq!(ngs.len(), 1);
        assert_eq!(ngs[0].id, "kind-worker");
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_provider_test.go TestRefresh "refresh nodegroup target size"
    #[test]
    fn refresh_nodegroup_target_size() {
        let cfg = kwok::parse_config(CONFIG).unwrap();
        let templates = kwok::parse_templates(&test_templates()).unwrap();
        let nodes = [
            member("node1", "kind-worker"),
            member("node2", "kind-worker"),
            member("node3", "kind-worker"),
            node(
                "apiVersion: v1\nkind: Node\nmetadata: {name: node4}\nspec: {providerID: 'kwok:node4'}\n",
            ),
        ];
        let refs: Vec<&Node> = nodes.iter().collect();
        let ngs = kwok::node_groups(&cfg, &templates, &refs).unwrap();
        assert_eq!(ngs[0].target, 3);
        // Deliberate: upstream counts nodes by their group label alone;
        // ours only those with a kwok providerID (the nodes upstream takes
        // as the provider's), so that a group's target is its instances.
        let plain = [node(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: node1\n  labels: {kwok-nodegroup: kind-worker}\n",
        )];
        let refs: Vec<&Node> = plain.iter().collect();
        assert_eq!(
            kwok::node_groups(&cfg, &templates, &refs).unwrap()[0].target,
            0
        );
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_provider_test.go TestGPULabel "usual case"
    #[test]
    fn gpu_label_usual_case() {
        assert_eq!(
            kwok::parse_config(CONFIG).unwrap().gpu_label.as_deref(),
            Some("k8s.amazonaws.com/accelerator")
        );
    }

    fn test_node() -> Node {
        node(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: kind-worker\n  labels:\n    kubernetes.io/hostname: kind-worker\n    k8s.amazonaws.com/accelerator: nvidia-tesla-k80\n    kwok-nodegroup: kind-worker\nspec:\n  providerID: kwok:kind-worker-m24xz\n",
        )
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_provider_test.go TestNodeGroupForNode "use template nodes from the configmap"
    #[test]
    fn node_group_for_node_use_template_nodes_from_the_configmap() {
        let cfg = kwok::parse_config(CONFIG).unwrap();
        let templates = kwok::parse_templates(&test_templates()).unwrap();
        let n = test_node();
        let ngs = kwok::node_groups(&cfg, &templates, &[&n]).unwrap();
        assert_eq!(ngs.len(), 1);
        assert!(ngs[0].has("kwok:kind-worker-m24xz"));
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_provider_test.go TestNodeGroupForNode "use template nodes from the cluster (aka get them using kube client)"
    #[test]
    fn node_group_for_node_use_template_nodes_from_the_cluster() {
        let cfg = kwok::parse_config(&config_with("cluster", false)).unwrap();
        let t = node(
            "apiVersion: v1\nkind: Node\nmetadata:\n  annotations: {}\n  labels: {kwok-nodegroup: kind-worker}\nspec: {}\n",
        );
        let n = test_node();
        let ngs = kwok::node_groups(&cfg, &[t], &[&n]).unwrap();
        assert_eq!(ngs[0].id, "kind-worker");
        assert!(ngs[0].has("kwok:kind-worker-m24xz"));
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_provider_test.go TestNodeGroupForNode "empty nodegroup name for node"
    #[test]
    fn node_group_for_node_empty_nodegroup_name_for_node() {
        let cfg = kwok::parse_config(CONFIG).unwrap();
        let templates = kwok::parse_templates(&test_templates()).unwrap();
        let n = node(
            "apiVersion: v1\nkind: Node\nmetadata: {name: node-without-labels}\nspec: {providerID: 'kwok:random-instance-id'}\n",
        );
        let ngs = kwok::node_groups(&cfg, &templates, &[&n]).unwrap();
        assert!(ngs.iter().all(|g| !g.has("kwok:random-instance-id")));
    }

    /// Upstream's fakeNode1..3 (or the minimal templates): two groups.
    fn build(from: &str, skip_taint: bool) -> Vec<outrigger_node_groups::group::NodeGroup> {
        let cfg = kwok::parse_config(&config_with(from, skip_taint)).unwrap();
        let templates = kwok::parse_templates(TEMPLATES_MINIMAL).unwrap();
        for t in &templates {
            let tn = kwok::template_node(t, &cfg);
            let taints = tn
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            if skip_taint {
                assert!(taints.is_empty());
            } else {
                assert_eq!(taints[0], kwok::provider_taint());
            }
        }
        let mut ngs = kwok::node_groups(&cfg, &templates, &[]).unwrap();
        ngs.sort_by(|a, b| a.id.cmp(&b.id));
        ngs
    }

    fn assert_provider_taint(ngs: &[outrigger_node_groups::group::NodeGroup]) {
        assert_eq!(ngs.len(), 2);
        for g in ngs {
            let t = &g.template.as_ref().unwrap().taints;
            assert_eq!(t[0].key, "kwok-provider");
            assert_eq!(t[0].value, "true");
            assert_eq!(t[0].effect, TaintEffect::NoSchedule);
        }
    }

    fn assert_no_taint(ngs: &[outrigger_node_groups::group::NodeGroup]) {
        assert_eq!(ngs.len(), 2);
        for g in ngs {
            assert!(g.template.as_ref().unwrap().taints.is_empty());
        }
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_provider_test.go TestBuildKwokProvider "(don't skip adding taint) use template nodes from the cluster (aka get them using kube client)"
    #[test]
    fn build_kwok_provider_dont_skip_adding_taint_from_the_cluster() {
        let ngs = build("cluster", false);
        assert_eq!(ngs[0].id, "ng1");
        assert_eq!(ngs[1].id, "ng2");
        assert_provider_taint(&ngs);
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_provider_test.go TestBuildKwokProvider "(skip adding taint) use template nodes from the cluster (aka get them using kube client)"
    #[test]
    fn build_kwok_provider_skip_adding_taint_from_the_cluster() {
        assert_no_taint(&build("cluster", true));
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_provider_test.go TestBuildKwokProvider "(don't skip adding taint) use template nodes from the configmap"
    #[test]
    fn build_kwok_provider_dont_skip_adding_taint_from_the_configmap() {
        assert_provider_taint(&build("configmap", false));
    }

    // upstream: cluster-autoscaler/cloudprovider/kwok/kwok_provider_test.go TestBuildKwokProvider "(skip adding taint) use template nodes from the configmap"
    #[test]
    fn build_kwok_provider_skip_adding_taint_from_the_configmap() {
        assert_no_taint(&build("configmap", true));
    }

    // upstream source: cluster-autoscaler/cloudprovider/kwok/kwok_helpers.go createNodegroups, parseAnnotations, getNGName
    // (no upstream test case)
    #[test]
    fn groups_by_name_annotation_then_key_and_sizes_from_annotations() {
        let cfg = kwok::parse_config(CONFIG).unwrap();
        let t = |name: &str, extra: &str| {
            node(&format!(
                "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{kwok-nodegroup: by-label}}\n  annotations: {{{extra}}}\n"
            ))
        };
        // The name annotation wins over the label; the first template of
        // a name wins.
        let ngs = kwok::node_groups(
            &cfg,
            &[
                t("a", "cluster-autoscaler.kwok.nodegroup/name: named, cluster-autoscaler.kwok.nodegroup/min-count: '1', cluster-autoscaler.kwok.nodegroup/max-count: '4'"),
                t("b", ""),
                t("c", "cluster-autoscaler.kwok.nodegroup/name: named"),
            ],
            &[],
        )
        .unwrap();
        let ids: Vec<(&str, i64, i64)> =
            ngs.iter().map(|g| (g.id.as_str(), g.min, g.max)).collect();
        assert_eq!(ids, [("named", 1, 4), ("by-label", 0, 200)]);
        // A template without the grouping key is no group, even named.
        let n = node(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: x\n  annotations: {cluster-autoscaler.kwok.nodegroup/name: named}\n",
        );
        assert!(kwok::node_groups(&cfg, &[n], &[]).unwrap().is_empty());
        // Bad sizes are errors naming the node.
        for bad in [
            "cluster-autoscaler.kwok.nodegroup/min-count: x",
            "cluster-autoscaler.kwok.nodegroup/min-count: '3', cluster-autoscaler.kwok.nodegroup/max-count: '2'",
            "cluster-autoscaler.kwok.nodegroup/desired-count: '300'",
        ] {
            let e = kwok::node_groups(&cfg, &[t("bad", bad)], &[]).unwrap_err();
            assert!(e.contains("'bad'"), "{bad}: {e}");
        }
    }
}
