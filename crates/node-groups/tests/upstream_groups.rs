//! Upstream Cluster Autoscaler's (1.34.5) unit-test cases about node groups'
//! template nodes from Auto Scaling group tags and the flags naming groups,
//! ported to our API. Each test names its upstream test function and case.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use outrigger_node_groups::{
    flags::{discovery_matches, parse_discovery, parse_nodes, parse_range},
    group::{
        NodeGroup, Template, labels_from_tags, parse_taint, resources_from_tags, skipped_tags,
        taints_from_tags,
    },
};
use outrigger_scheduling::{
    eks::Ec2Shape,
    model::{Labels, Taint, TaintEffect},
};
use outrigger_values::Quantity;

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn shape(name: &str, vcpus: i64, memory_mib: i64) -> Ec2Shape {
    Ec2Shape {
        name: name.into(),
        vcpus,
        memory_mib,
        max_enis: 4,
        ipv4_per_eni: 15,
        arch: "amd64".into(),
        gpus: vec![],
    }
}

/// Upstream's c5.xlarge of its template tests (4 vCPUs, 8 GiB).
fn c5_xlarge() -> Ec2Shape {
    shape("c5.xlarge", 4, 8192)
}

fn template(t: &BTreeMap<String, String>) -> Template {
    Template::from_tags(&c5_xlarge(), Some("us-east-1a"), t, &Labels::new()).unwrap()
}

fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
    Taint {
        key: key.into(),
        value: value.into(),
        effect,
    }
}

mod cloudprovider_aws_aws_manager_test {
    use super::*;

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestBuildGenericLabels
    #[test]
    fn build_generic_labels() {
        let t = Template::from_tags(
            &shape("c4.large", 2, 3840),
            Some("us-east-1c"),
            &BTreeMap::new(),
            &Labels::new(),
        )
        .unwrap();
        assert_eq!(t.labels["topology.kubernetes.io/region"], "us-east-1");
        assert_eq!(t.labels["topology.kubernetes.io/zone"], "us-east-1c");
        assert_eq!(t.labels["topology.ebs.csi.aws.com/zone"], "us-east-1c");
        assert_eq!(t.labels["node.kubernetes.io/instance-type"], "c4.large");
        assert_eq!(t.labels["kubernetes.io/arch"], "amd64");
        assert_eq!(t.labels["kubernetes.io/os"], "linux");
        // Deliberate: upstream also labels its template node with the
        // made-up node name as hostname; a template stands for any node of
        // the group, so ours has none (pods' hostname affinity and spread
        // count each new node apart in the solver).
        assert!(!t.labels.contains_key("kubernetes.io/hostname"));
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestExtractAllocatableResourcesFromAsg
    #[test]
    fn extract_allocatable_resources_from_asg() {
        let r = resources_from_tags(&tags(&[
            (
                "k8s.io/cluster-autoscaler/node-template/resources/cpu",
                "100m",
            ),
            (
                "k8s.io/cluster-autoscaler/node-template/resources/memory",
                "100M",
            ),
            (
                "k8s.io/cluster-autoscaler/node-template/resources/ephemeral-storage",
                "20G",
            ),
            (
                "k8s.io/cluster-autoscaler/node-template/resources/custom-resource",
                "5",
            ),
        ]));
        assert_eq!(r["cpu"], Quantity::from_millis(100));
        assert_eq!(r["memory"], Quantity::from_units(100_000_000));
        assert_eq!(r["ephemeral-storage"], Quantity::from_units(20_000_000_000));
        assert_eq!(r["custom-resource"], Quantity::from_units(5));
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestExtractAllocatableResourcesFromTags
    #[test]
    fn extract_allocatable_resources_from_tags() {
        let t = tags(&[
            (
                "k8s.io/cluster-autoscaler/node-template/resources/cpu",
                "100m",
            ),
            (
                "k8s.io/cluster-autoscaler/node-template/resources/memory",
                "100M",
            ),
            (
                "k8s.io/cluster-autoscaler/node-template/resources/ephemeral-storage",
                "20G",
            ),
            (
                "k8s.io/cluster-autoscaler/node-template/resources/custom-resource",
                "5",
            ),
            (
                "k8s.io/cluster-autoscaler/node-template/resources/error-resource",
                "GG",
            ),
        ]);
        let r = resources_from_tags(&t);
        assert_eq!(r.len(), 4);
        assert!(!r.contains_key("error-resource"));
        assert_eq!(r["cpu"], Quantity::from_millis(100));
        assert_eq!(r["memory"], Quantity::from_units(100_000_000));
        assert_eq!(r["ephemeral-storage"], Quantity::from_units(20_000_000_000));
        assert_eq!(r["custom-resource"], Quantity::from_units(5));
        // The bad one is skipped by the template too, not an error.
        let tmpl = template(&t);
        assert!(!tmpl.capacity.extended.contains_key("error-resource"));
        assert_eq!(tmpl.capacity.cpu_millis, 100);
        let skipped = skipped_tags(&t);
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].contains("error-resource"), "{skipped:?}");
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestBuildNodeFromTemplate "Node with custom resource"
    #[test]
    fn build_node_from_template_with_custom_resource() {
        let t = template(&tags(&[
            (
                "k8s.io/cluster-autoscaler/node-template/resources/ephemeral-storage",
                "20",
            ),
            (
                "k8s.io/cluster-autoscaler/node-template/resources/custom-resource",
                "5",
            ),
        ]));
        assert_eq!(t.capacity.ephemeral_bytes, 20);
        assert_eq!(t.capacity.extended["custom-resource"], 5);
        assert!(
            !t.capacity
                .extended
                .contains_key("vpc.amazonaws.com/PrivateIPv4Address")
        );
        // Resources tags set allocatable as well (upstream: allocatable is
        // capacity).
        assert_eq!(t.allocatable.ephemeral_bytes, 20);
        assert_eq!(t.allocatable.extended["custom-resource"], 5);
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestBuildNodeFromTemplate "Node with custom resource" (capacity and allocatable)
    #[test]
    fn build_node_from_template_allocatable_is_eks_not_capacity() {
        // Deliberate: upstream gives a template node 110 pods and
        // allocatable = capacity = the type's vCPUs and memory; ours takes
        // what the group's EKS nodes report: memory less the VM's
        // overhead, allocatable less kubelet and system reserves and the
        // eviction threshold, max pods from the ENIs.
        let t = template(&BTreeMap::new());
        assert_eq!(t.capacity.cpu_millis, 4000);
        assert!(t.capacity.memory_bytes < 8192 << 20);
        assert_eq!(t.allocatable.pods, 4 * (15 - 1) + 2);
        assert!(t.allocatable.cpu_millis < t.capacity.cpu_millis);
        assert!(t.allocatable.memory_bytes < t.capacity.memory_bytes);
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestBuildNodeFromTemplate "Node with labels"
    #[test]
    fn build_node_from_template_with_labels() {
        let t = template(&tags(&[(
            "k8s.io/cluster-autoscaler/node-template/label/k8s.amazonaws.com/accelerator",
            "nvidia-telsa-v100",
        )]));
        assert_eq!(
            t.labels["k8s.amazonaws.com/accelerator"],
            "nvidia-telsa-v100"
        );
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestBuildNodeFromTemplate "Node with EKS labels"
    #[test]
    fn build_node_from_template_with_eks_labels() {
        let t = template(&tags(&[("eks:nodegroup-name", "nodegroup-1")]));
        assert_eq!(t.labels["nodegroup-name"], "nodegroup-1");
        // Ours adds the label EKS puts on a managed node group's nodes.
        assert_eq!(t.labels["eks.amazonaws.com/nodegroup"], "nodegroup-1");
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestBuildNodeFromTemplate "Node with taints"
    #[test]
    fn build_node_from_template_with_taints() {
        let t = template(&tags(&[(
            "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu",
            "present:NoSchedule",
        )]));
        assert_eq!(
            t.taints,
            [taint("nvidia.com/gpu", "present", TaintEffect::NoSchedule)]
        );
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestExtractLabelsFromAsg
    #[test]
    fn extract_labels_from_asg() {
        let t = tags(&[
            ("k8s.io/cluster-autoscaler/node-template/label/foo", "bar"),
            ("eks:nodegroup-name", "bar2"),
            ("eks:cluster-name", "bar4"),
            ("bar", "baz"),
        ]);
        let l = labels_from_tags(&t);
        assert_eq!(l["foo"], "bar");
        assert_eq!(l["nodegroup-name"], "bar2");
        assert_eq!(l["cluster-name"], "bar4");
        // Upstream has these 3; ours also EKS's own node group label.
        assert_eq!(l["eks.amazonaws.com/nodegroup"], "bar2");
        assert_eq!(l.len(), 4);
        // The generic labels come first, tags override them.
        let tmpl = template(&tags(&[(
            "k8s.io/cluster-autoscaler/node-template/label/topology.kubernetes.io/zone",
            "us-east-1b",
        )]));
        assert_eq!(tmpl.labels["topology.kubernetes.io/zone"], "us-east-1b");
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestExtractTaintsFromAsg
    #[test]
    fn extract_taints_from_asg() {
        let t = tags(&[
            (
                "k8s.io/cluster-autoscaler/node-template/taint/dedicated",
                "foo:NoSchedule",
            ),
            (
                "k8s.io/cluster-autoscaler/node-template/taint/group",
                "bar:NoExecute",
            ),
            (
                "k8s.io/cluster-autoscaler/node-template/taint/app",
                "fizz:PreferNoSchedule",
            ),
            ("bar", "baz"),
            ("k8s.io/cluster-autoscaler/node-template/taint/blank", ""),
            (
                "k8s.io/cluster-autoscaler/node-template/taint/nosplit",
                "some_value",
            ),
        ]);
        let mut got = taints_from_tags(&t);
        got.sort();
        let mut want = vec![
            taint("dedicated", "foo", TaintEffect::NoSchedule),
            taint("group", "bar", TaintEffect::NoExecute),
            taint("app", "fizz", TaintEffect::PreferNoSchedule),
        ];
        want.sort();
        assert_eq!(got, want);
        // The same through a template: the bad ones are skipped, not an
        // error that loses the group's template.
        let mut tmpl = template(&t).taints;
        tmpl.sort();
        assert_eq!(tmpl, want);
        assert_eq!(skipped_tags(&t).len(), 2);
        // The value is split at the first colon, as upstream's.
        assert!(parse_taint("k", "a:b:NoSchedule").is_err());
        assert_eq!(
            parse_taint("k", ":NoExecute").unwrap(),
            taint("k", "", TaintEffect::NoExecute)
        );
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestParseASGAutoDiscoverySpecs "GoodSpecs"
    #[test]
    fn parse_asg_auto_discovery_specs_good_specs() {
        let m = |pairs: &[(&str, &str)]| tags(pairs);
        assert_eq!(
            parse_discovery("asg:tag=tag,anothertag").unwrap(),
            m(&[("tag", ""), ("anothertag", "")])
        );
        assert_eq!(
            parse_discovery("asg:tag=cooltag,anothertag").unwrap(),
            m(&[("cooltag", ""), ("anothertag", "")])
        );
        assert_eq!(
            parse_discovery("asg:tag=label=value,anothertag").unwrap(),
            m(&[("label", "value"), ("anothertag", "")])
        );
        assert_eq!(
            parse_discovery("asg:tag=my:label=value,my:otherlabel=othervalue").unwrap(),
            m(&[("my:label", "value"), ("my:otherlabel", "othervalue")])
        );
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestParseASGAutoDiscoverySpecs "MissingASGType"
    #[test]
    fn parse_asg_auto_discovery_specs_missing_asg_type() {
        assert!(parse_discovery("tag=tag,anothertag").is_err());
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestParseASGAutoDiscoverySpecs "WrongType"
    #[test]
    fn parse_asg_auto_discovery_specs_wrong_type() {
        assert!(parse_discovery("mig:tag=tag,anothertag").is_err());
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestParseASGAutoDiscoverySpecs "KeyMissingValue"
    #[test]
    fn parse_asg_auto_discovery_specs_key_missing_value() {
        assert!(parse_discovery("asg:tag=").is_err());
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestParseASGAutoDiscoverySpecs "ValueMissingKey"
    #[test]
    fn parse_asg_auto_discovery_specs_value_missing_key() {
        assert!(parse_discovery("asg:=tag").is_err());
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_manager_test.go TestParseASGAutoDiscoverySpecs "KeyMissingSeparator"
    #[test]
    fn parse_asg_auto_discovery_specs_key_missing_separator() {
        assert!(parse_discovery("asg:tag").is_err());
    }

    // upstream source: cluster-autoscaler/cloudprovider/aws/aws_wrapper.go getAutoscalingGroupsByTags
    // (a tag with a value filters on it, one without on the key only;
    // no upstream test case)
    #[test]
    fn discovery_tags_with_a_value_match_only_that_value() {
        let spec = parse_discovery("asg:tag=k8s.io/cluster-autoscaler/enabled,team=web").unwrap();
        let group = |team: &str| {
            tags(&[
                ("k8s.io/cluster-autoscaler/enabled", "true"),
                ("team", team),
            ])
        };
        assert!(discovery_matches(&spec, &group("web")));
        assert!(!discovery_matches(&spec, &group("db")));
        assert!(!discovery_matches(
            &spec,
            &tags(&[("k8s.io/cluster-autoscaler/enabled", "true")])
        ));
    }
}

mod cloudprovider_aws_auto_scaling_groups_test {
    use super::*;

    // upstream: cluster-autoscaler/cloudprovider/aws/auto_scaling_groups_test.go TestBuildAsg
    #[test]
    fn build_asg() {
        let g = parse_nodes("1:5:test-asg").unwrap();
        assert_eq!((g.min, g.max, g.name.as_str()), (1, 5, "test-asg"));
        for bad in ["a", "a:b:c", "1:", "1:2:"] {
            assert!(parse_nodes(bad).is_err(), "{bad}");
        }
        // AWS groups may scale to zero; max below min is refused.
        assert_eq!(parse_nodes("0:3:g").unwrap().min, 0);
        assert!(parse_nodes("-1:3:g").is_err());
        assert!(parse_nodes("3:1:g").is_err());
        // The name is the rest, colons and all.
        assert_eq!(parse_nodes("1:2:a:b").unwrap().name, "a:b");
    }
}

mod cloudprovider_aws_aws_cloud_provider_test {
    use super::*;

    fn group() -> NodeGroup {
        NodeGroup {
            id: "test-asg".into(),
            min: 1,
            max: 5,
            target: 1,
            instances: vec!["aws:///us-east-1a/test-instance-id".into()],
            template: None,
        }
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_cloud_provider_test.go TestNodeGroupForNode
    #[test]
    fn node_group_for_node() {
        let g = group();
        assert!(g.has("aws:///us-east-1a/test-instance-id"));
        // A node of the cluster not in a group the autoscaler manages.
        assert!(!g.has("aws:///us-east-1a/test-instance-id-not-in-group"));
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_cloud_provider_test.go TestNodeGroupForNodeWithNoProviderId
    #[test]
    fn node_group_for_node_with_no_provider_id() {
        assert!(!group().has(""));
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_cloud_provider_test.go TestNodeGroupForNodeWithHybridNode
    #[test]
    fn node_group_for_node_with_hybrid_node() {
        assert!(!group().has("eks-hybrid:///us-west-2/my-cluster/my-node-1"));
    }

    // upstream: cluster-autoscaler/cloudprovider/aws/aws_cloud_provider_test.go TestBelongs
    #[test]
    fn belongs() {
        let g = group();
        assert!(!g.has("aws:///us-east-1a/invalid-instance-id"));
        assert!(g.has("aws:///us-east-1a/test-instance-id"));
    }
}

mod config_flags_flags {
    use super::*;

    // upstream source: cluster-autoscaler/config/flags/flags.go parseMinMaxFlag
    // (--cores-total, --memory-total; flags_test.go has no case for them)
    #[test]
    fn parse_min_max_flag() {
        assert_eq!(parse_range("cores-total", "0:320000").unwrap(), (0, 320000));
        assert_eq!(parse_range("memory-total", "4:4").unwrap(), (4, 4));
        for bad in ["5", "a:5", "1:b", "-1:5", "5:1", "1:2:3", ""] {
            let e = parse_range("cores-total", bad).unwrap_err();
            assert!(e.contains("--cores-total"), "{bad}: {e}");
        }
    }
}
