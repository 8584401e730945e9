//! Upstream Cluster Autoscaler's scale-down test cases (what blocks a
//! drain, which pods a drain moves, utilization, eligibility), ported to
//! our code: each case builds the same Pods and Nodes, turns them into
//! facts the way the autoscaler does (`src/facts.rs`, compiled here too)
//! and asks `outrigger_node_groups::scaledown` what upstream's code is
//! asked. One module per upstream file, one test per case.

#![allow(clippy::unwrap_used)]

use outrigger_cluster_autoscaler::facts;

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::{
    api::{
        core::v1::{
            Container, EmptyDirVolumeSource, GitRepoVolumeSource, Node, NodeCondition, NodeSpec,
            NodeStatus, Pod, PodSpec, PodStatus, ResourceRequirements, Taint, Volume,
        },
        policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec, PodDisruptionBudgetStatus},
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time},
        util::intstr::IntOrString,
    },
};
use outrigger_node_groups::scaledown::{
    BlockingReason, Drainability, PodFacts, PodsToMove, Rule, pods_to_move,
};

/// Upstream's `testTime`.
fn test_time() -> jiff::Timestamp {
    "2020-12-18T17:00:00Z".parse().unwrap()
}

/// `test_time` moved by `secs`.
fn at(secs: i64) -> Time {
    Time(
        test_time()
            .checked_add(jiff::SignedDuration::from_secs(secs))
            .unwrap(),
    )
}

fn pod(ns: &str, name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        spec: Some(PodSpec::default()),
        ..Default::default()
    }
}

/// Upstream's `GenerateOwnerReferences`: one controlling owner.
fn owned(mut p: Pod, name: &str, kind: &str, api: &str) -> Pod {
    p.metadata.owner_references = Some(vec![OwnerReference {
        api_version: api.into(),
        kind: kind.into(),
        name: name.into(),
        uid: String::new(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    p
}

fn annotated(mut p: Pod, k: &str, v: &str) -> Pod {
    p.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(k.into(), v.into());
    p
}

fn labelled(mut p: Pod, k: &str, v: &str) -> Pod {
    p.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(k.into(), v.into());
    p
}

fn spec(p: &mut Pod) -> &mut PodSpec {
    p.spec.get_or_insert_with(Default::default)
}

fn on_node(mut p: Pod) -> Pod {
    spec(&mut p).node_name = Some("node".into());
    p
}

fn with_phase(mut p: Pod, restart_policy: &str, phase: &str) -> Pod {
    spec(&mut p).restart_policy = Some(restart_policy.into());
    p.status = Some(PodStatus {
        phase: Some(phase.into()),
        ..Default::default()
    });
    p
}

fn deleted_at(mut p: Pod, t: Time, grace: Option<i64>) -> Pod {
    p.metadata.deletion_timestamp = Some(t);
    spec(&mut p).termination_grace_period_seconds = grace;
    p
}

fn created_at(mut p: Pod, t: Time) -> Pod {
    p.metadata.creation_timestamp = Some(t);
    p
}

fn empty_dirs(mut p: Pod, names: &[&str]) -> Pod {
    spec(&mut p).volumes = Some(
        names
            .iter()
            .map(|n| Volume {
                name: (*n).into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            })
            .collect(),
    );
    p
}

fn pdb(
    ns: Option<&str>,
    selects: Option<(&str, &str)>,
    allowed: Option<i32>,
) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: ObjectMeta {
            namespace: ns.map(Into::into),
            ..Default::default()
        },
        spec: selects.map(|(k, v)| PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(k.to_string(), v.to_string())])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: allowed.map(|a| PodDisruptionBudgetStatus {
            disruptions_allowed: a,
            ..Default::default()
        }),
    }
}

fn facts_with(p: &Pod, pdbs: &[PodDisruptionBudget]) -> PodFacts {
    let pdbs: Vec<Arc<PodDisruptionBudget>> = pdbs.iter().cloned().map(Arc::new).collect();
    facts::pod_facts(p, &pdbs, test_time())
}

fn facts(p: &Pod) -> PodFacts {
    facts_with(p, &[])
}

/// The reason a blocked outcome gives (upstream's `BlockingReason`, set
/// together with its error).
fn blocking(d: &Drainability) -> Option<BlockingReason> {
    match d {
        Drainability::Blocked { reason, .. } => Some(*reason),
        _ => None,
    }
}

/// Upstream's `BuildTestPod`: one container requesting `cpu` millicores
/// and `mem` bytes (a negative amount: no request).
fn build_test_pod(name: &str, cpu: i64, mem: i64) -> Pod {
    let mut p = pod("default", name);
    spec(&mut p).containers = vec![container(cpu, mem)];
    p
}

fn container(cpu: i64, mem: i64) -> Container {
    let mut requests = BTreeMap::new();
    if cpu >= 0 {
        requests.insert("cpu".to_string(), Quantity(format!("{cpu}m")));
    }
    if mem >= 0 {
        requests.insert("memory".to_string(), Quantity(format!("{mem}")));
    }
    Container {
        name: "c".into(),
        resources: Some(ResourceRequirements {
            requests: Some(requests),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Upstream's `BuildTestNode`: `cpu` millicores and `mem` bytes
/// allocatable (a negative amount: none), 100 pods.
fn build_test_node(name: &str, cpu: i64, mem: i64) -> Node {
    let mut alloc = BTreeMap::from([("pods".to_string(), Quantity("100".into()))]);
    if cpu >= 0 {
        alloc.insert("cpu".into(), Quantity(format!("{cpu}m")));
    }
    if mem >= 0 {
        alloc.insert("memory".into(), Quantity(format!("{mem}")));
    }
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            provider_id: Some(name.into()),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            capacity: Some(alloc.clone()),
            allocatable: Some(alloc),
            ..Default::default()
        }),
    }
}

/// Upstream's `SetNodeReadyState`.
fn set_ready(n: &mut Node, ready: bool) {
    n.status.get_or_insert_with(Default::default).conditions = Some(vec![NodeCondition {
        type_: "Ready".into(),
        status: if ready { "True" } else { "False" }.into(),
        ..Default::default()
    }]);
}

mod simulator_drainability_rules_daemonset_rule_test {
    use super::*;

    // upstream: cluster-autoscaler/simulator/drainability/rules/daemonset/rule_test.go TestDrainable "regular pod"
    #[test]
    fn regular_pod() {
        let p = pod("ns", "pod");
        assert_eq!(
            Rule::DaemonSet.drainable(&facts(&p)),
            Drainability::Undefined
        );
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/daemonset/rule_test.go TestDrainable "daemonset pod"
    #[test]
    fn daemonset_pod() {
        let p = owned(pod("ns", "pod"), "ds", "DaemonSet", "apps/v1");
        assert_eq!(Rule::DaemonSet.drainable(&facts(&p)), Drainability::DrainOk);
    }
}

mod simulator_drainability_rules_mirror_rule_test {
    use super::*;

    // upstream: cluster-autoscaler/simulator/drainability/rules/mirror/rule_test.go TestDrainable "regular pod"
    #[test]
    fn regular_pod() {
        let p = pod("ns", "regularPod");
        assert_eq!(Rule::Mirror.drainable(&facts(&p)), Drainability::Undefined);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/mirror/rule_test.go TestDrainable "mirror pod"
    #[test]
    fn mirror_pod() {
        let p = annotated(
            pod("kube-system", "manifestPod"),
            "kubernetes.io/config.mirror",
            "something",
        );
        assert_eq!(Rule::Mirror.drainable(&facts(&p)), Drainability::SkipDrain);
    }
}

mod simulator_drainability_rules_safetoevict_rule_test {
    use super::*;

    // upstream: cluster-autoscaler/simulator/drainability/rules/safetoevict/rule_test.go TestDrainable "regular pod"
    #[test]
    fn regular_pod() {
        let p = pod("ns", "pod");
        assert_eq!(
            Rule::SafeToEvict.drainable(&facts(&p)),
            Drainability::Undefined
        );
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/safetoevict/rule_test.go TestDrainable "safe to evict pod"
    #[test]
    fn safe_to_evict_pod() {
        let p = annotated(
            pod("default", "bar"),
            "cluster-autoscaler.kubernetes.io/safe-to-evict",
            "true",
        );
        assert_eq!(
            Rule::SafeToEvict.drainable(&facts(&p)),
            Drainability::DrainOk
        );
    }
}

mod simulator_drainability_rules_terminal_rule_test {
    use super::*;

    // upstream: cluster-autoscaler/simulator/drainability/rules/terminal/rule_test.go TestDrainable "regular pod"
    #[test]
    fn regular_pod() {
        let p = pod("ns", "pod");
        assert_eq!(
            Rule::Terminal.drainable(&facts(&p)),
            Drainability::Undefined
        );
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/terminal/rule_test.go TestDrainable "terminal pod"
    #[test]
    fn terminal_pod() {
        let p = with_phase(pod("default", "bar"), "OnFailure", "Succeeded");
        assert_eq!(Rule::Terminal.drainable(&facts(&p)), Drainability::DrainOk);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/terminal/rule_test.go TestDrainable "failed pod"
    #[test]
    fn failed_pod() {
        let p = with_phase(pod("default", "bar"), "Never", "Failed");
        assert_eq!(Rule::Terminal.drainable(&facts(&p)), Drainability::DrainOk);
    }
}

mod simulator_drainability_rules_longterminating_rule_test {
    use super::*;

    fn terminating(deleted: i64, grace: i64) -> Pod {
        let p = with_phase(pod("default", "bar"), "OnFailure", "Unknown");
        deleted_at(p, at(deleted), Some(grace))
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/longterminating/rule_test.go TestDrainable "regular pod"
    #[test]
    fn regular_pod() {
        let p = pod("ns", "pod");
        assert_eq!(
            Rule::LongTerminating.drainable(&facts(&p)),
            Drainability::Undefined
        );
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/longterminating/rule_test.go TestDrainable "long terminating pod with 0 grace period"
    #[test]
    fn long_terminating_pod_with_0_grace_period() {
        let p = terminating(15, 0);
        assert_eq!(
            Rule::LongTerminating.drainable(&facts(&p)),
            Drainability::Undefined
        );
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/longterminating/rule_test.go TestDrainable "expired long terminating pod with 0 grace period"
    #[test]
    fn expired_long_terminating_pod_with_0_grace_period() {
        let p = terminating(-60, 0);
        assert_eq!(
            Rule::LongTerminating.drainable(&facts(&p)),
            Drainability::SkipDrain
        );
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/longterminating/rule_test.go TestDrainable "long terminating pod with extended grace period"
    #[test]
    fn long_terminating_pod_with_extended_grace_period() {
        let p = terminating(180, 360);
        assert_eq!(
            Rule::LongTerminating.drainable(&facts(&p)),
            Drainability::Undefined
        );
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/longterminating/rule_test.go TestDrainable "expired long terminating pod with extended grace period"
    #[test]
    fn expired_long_terminating_pod_with_extended_grace_period() {
        let p = terminating(-720, 360);
        assert_eq!(
            Rule::LongTerminating.drainable(&facts(&p)),
            Drainability::SkipDrain
        );
    }
}

mod simulator_drainability_rules_notsafetoevict_rule_test {
    use super::*;

    const KEY: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";

    fn check(p: &Pod) -> Option<BlockingReason> {
        blocking(&Rule::NotSafeToEvict.drainable(&facts(p)))
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/notsafetoevict/rule_test.go TestDrainable "pod with PodSafeToEvict annotation"
    #[test]
    fn pod_with_pod_safe_to_evict_annotation() {
        let p = on_node(annotated(pod("kube-system", "bar"), KEY, "true"));
        assert_eq!(check(&p), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/notsafetoevict/rule_test.go TestDrainable "RC-managed pod with no annotation"
    #[test]
    fn rc_managed_pod_with_no_annotation() {
        let p = on_node(owned(
            pod("default", "bar"),
            "rc",
            "ReplicationController",
            "core/v1",
        ));
        assert_eq!(check(&p), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/notsafetoevict/rule_test.go TestDrainable "RC-managed pod with PodSafeToEvict=false annotation"
    #[test]
    fn rc_managed_pod_with_pod_safe_to_evict_false_annotation() {
        let p = on_node(annotated(
            owned(
                pod("default", "bar"),
                "rc",
                "ReplicationController",
                "core/v1",
            ),
            KEY,
            "false",
        ));
        assert_eq!(check(&p), Some(BlockingReason::NotSafeToEvictAnnotation));
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/notsafetoevict/rule_test.go TestDrainable "job-managed pod with no annotation"
    #[test]
    fn job_managed_pod_with_no_annotation() {
        let p = owned(pod("default", "bar"), "job", "Job", "batch/v1");
        assert_eq!(check(&p), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/notsafetoevict/rule_test.go TestDrainable "job-managed pod with PodSafeToEvict=false annotation"
    #[test]
    fn job_managed_pod_with_pod_safe_to_evict_false_annotation() {
        let p = annotated(
            owned(pod("default", "bar"), "job", "Job", "batch/v1"),
            KEY,
            "false",
        );
        assert_eq!(check(&p), Some(BlockingReason::NotSafeToEvictAnnotation));
    }

    // Ours: a value other than "true" or "false" is no answer, as upstream
    // (it used to count as "false" here).
    #[test]
    fn pinned_other_values_are_no_answer() {
        let p = annotated(pod("default", "bar"), KEY, "maybe");
        assert_eq!(check(&p), None);
        assert_eq!(
            Rule::SafeToEvict.drainable(&facts(&p)),
            Drainability::Undefined
        );
    }
}

mod simulator_drainability_rules_localstorage_rule_test {
    use super::*;

    const KEY: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes";

    fn rc_pod(volumes: &[&str], annotation: Option<&str>) -> Pod {
        let p = on_node(empty_dirs(
            owned(
                pod("default", "bar"),
                "rc",
                "ReplicationController",
                "core/v1",
            ),
            volumes,
        ));
        match annotation {
            Some(v) => annotated(p, KEY, v),
            None => p,
        }
    }

    fn check(p: &Pod) -> Option<BlockingReason> {
        blocking(&Rule::LocalStorage.drainable(&facts(p)))
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/localstorage/rule_test.go TestDrainable "pod with EmptyDir"
    #[test]
    fn pod_with_empty_dir() {
        let p = rc_pod(&["scratch"], None);
        assert_eq!(check(&p), Some(BlockingReason::LocalStorageRequested));
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/localstorage/rule_test.go TestDrainable "pod with EmptyDir and SafeToEvictLocalVolumesKey annotation"
    #[test]
    fn pod_with_empty_dir_and_safe_to_evict_local_volumes_key_annotation() {
        let p = rc_pod(&["scratch"], Some("scratch"));
        assert_eq!(check(&p), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/localstorage/rule_test.go TestDrainable "pod with EmptyDir and empty value for SafeToEvictLocalVolumesKey annotation"
    #[test]
    fn pod_with_empty_dir_and_empty_value_for_safe_to_evict_local_volumes_key_annotation() {
        let p = rc_pod(&["scratch"], Some(""));
        assert_eq!(check(&p), Some(BlockingReason::LocalStorageRequested));
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/localstorage/rule_test.go TestDrainable "pod with EmptyDir and non-matching value for SafeToEvictLocalVolumesKey annotation"
    #[test]
    fn pod_with_empty_dir_and_non_matching_value_for_safe_to_evict_local_volumes_key_annotation() {
        let p = rc_pod(&["scratch-1"], Some("scratch-2"));
        assert_eq!(check(&p), Some(BlockingReason::LocalStorageRequested));
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/localstorage/rule_test.go TestDrainable "pod with EmptyDir and SafeToEvictLocalVolumesKey annotation with matching values"
    #[test]
    fn pod_with_empty_dir_and_safe_to_evict_local_volumes_key_annotation_with_matching_values() {
        let p = rc_pod(
            &["scratch-1", "scratch-2", "scratch-3"],
            Some("scratch-1,scratch-2,scratch-3"),
        );
        assert_eq!(check(&p), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/localstorage/rule_test.go TestDrainable "pod with EmptyDir and SafeToEvictLocalVolumesKey annotation with non-matching values"
    #[test]
    fn pod_with_empty_dir_and_safe_to_evict_local_volumes_key_annotation_with_non_matching_values()
    {
        let p = rc_pod(
            &["scratch-1", "scratch-2", "scratch-3"],
            Some("scratch-1,scratch-2,scratch-5"),
        );
        assert_eq!(check(&p), Some(BlockingReason::LocalStorageRequested));
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/localstorage/rule_test.go TestDrainable "pod with EmptyDir and SafeToEvictLocalVolumesKey annotation with some matching values"
    #[test]
    fn pod_with_empty_dir_and_safe_to_evict_local_volumes_key_annotation_with_some_matching_values()
    {
        let p = rc_pod(
            &["scratch-1", "scratch-2", "scratch-3"],
            Some("scratch-1,scratch-2"),
        );
        assert_eq!(check(&p), Some(BlockingReason::LocalStorageRequested));
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/localstorage/rule_test.go TestDrainable "pod with EmptyDir and SafeToEvictLocalVolumesKey annotation empty values"
    #[test]
    fn pod_with_empty_dir_and_safe_to_evict_local_volumes_key_annotation_empty_values() {
        let p = rc_pod(&["scratch-1", "scratch-2", "scratch-3"], Some(","));
        assert_eq!(check(&p), Some(BlockingReason::LocalStorageRequested));
    }

    // Ours: spaces around the names are dropped ("a, b" lists "b"); upstream
    // splits on commas only, so " b" would not name the volume "b". Kept on
    // purpose: the annotation's author plainly names "b".
    #[test]
    fn pinned_spaces_around_names_are_dropped() {
        let p = rc_pod(&["scratch-1", "scratch-2"], Some("scratch-1, scratch-2"));
        assert_eq!(check(&p), None);
    }

    // Memory-backed emptyDirs are not local storage; hostPath is.
    #[test]
    fn pinned_memory_empty_dirs_are_not_local_storage_and_host_paths_are() {
        let mut p = rc_pod(&["shm"], None);
        spec(&mut p).volumes.as_mut().unwrap()[0]
            .empty_dir
            .as_mut()
            .unwrap()
            .medium = Some("Memory".into());
        assert_eq!(check(&p), None);
        spec(&mut p).volumes.as_mut().unwrap().push(Volume {
            name: "host".into(),
            host_path: Some(Default::default()),
            ..Default::default()
        });
        assert_eq!(check(&p), Some(BlockingReason::LocalStorageRequested));
    }
}

mod simulator_drainability_rules_pdb_rule_test {
    use super::*;

    fn check(p: &Pod, pdbs: &[PodDisruptionBudget]) -> Option<BlockingReason> {
        blocking(&Rule::Pdb.drainable(&facts_with(p, pdbs)))
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/pdb/rule_test.go TestDrainable "no pdbs"
    #[test]
    fn no_pdbs() {
        assert_eq!(check(&Pod::default(), &[]), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/pdb/rule_test.go TestDrainable "no matching pdbs"
    #[test]
    fn no_matching_pdbs() {
        let p = labelled(pod("good", "happy"), "label", "true");
        let pdbs = [
            pdb(Some("bad"), Some(("label", "true")), None),
            pdb(Some("good"), Some(("label", "false")), None),
        ];
        assert_eq!(check(&p, &pdbs), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/pdb/rule_test.go TestDrainable "pdb prevents scale-down"
    #[test]
    fn pdb_prevents_scale_down() {
        // The matching budget has no status yet: it allows no disruption.
        let p = labelled(pod("good", "sad"), "label", "true");
        let pdbs = [
            pdb(Some("bad"), Some(("label", "true")), None),
            pdb(Some("good"), Some(("label", "true")), None),
            pdb(Some("good"), Some(("label", "false")), None),
        ];
        assert_eq!(check(&p, &pdbs), Some(BlockingReason::NotEnoughPdb));
    }
}

mod simulator_drainability_rules_replicated_rule_test {
    use super::*;

    fn check(p: &Pod, skip_custom_controller_pods: bool) -> Option<BlockingReason> {
        blocking(
            &Rule::Replicated {
                skip_custom_controller_pods,
            }
            .drainable(&facts(p)),
        )
    }

    fn rc_pod() -> Pod {
        on_node(owned(
            pod("default", "bar"),
            "rc",
            "ReplicationController",
            "core/v1",
        ))
    }
    fn job_pod() -> Pod {
        owned(pod("default", "bar"), "job", "Job", "batch/v1")
    }
    fn ss_pod() -> Pod {
        owned(pod("default", "bar"), "ss", "StatefulSet", "apps/v1")
    }
    fn rs_pod() -> Pod {
        on_node(owned(pod("default", "bar"), "rs", "ReplicaSet", "apps/v1"))
    }
    fn rs_pod_deleted() -> Pod {
        deleted_at(rs_pod(), at(-3600), None)
    }
    fn naked_pod() -> Pod {
        on_node(pod("default", "bar"))
    }
    fn custom_controller_pod() -> Pod {
        on_node(owned(
            pod("default", "bar"),
            "Foo",
            "FooController",
            "apps/v1",
        ))
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/replicated/rule_test.go TestDrainable "RC-managed pod with skipNodesWithCustomControllerPods:true"
    #[test]
    fn rc_managed_pod_with_skip_nodes_with_custom_controller_pods_true() {
        assert_eq!(check(&rc_pod(), true), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/replicated/rule_test.go TestDrainable "RC-managed pod with skipNodesWithCustomControllerPods:false"
    #[test]
    fn rc_managed_pod_with_skip_nodes_with_custom_controller_pods_false() {
        assert_eq!(check(&rc_pod(), false), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/replicated/rule_test.go TestDrainable "Job-managed pod with skipNodesWithCustomControllerPods:true"
    #[test]
    fn job_managed_pod_with_skip_nodes_with_custom_controller_pods_true() {
        assert_eq!(check(&job_pod(), true), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/replicated/rule_test.go TestDrainable "Job-managed pod with skipNodesWithCustomControllerPods:false"
    #[test]
    fn job_managed_pod_with_skip_nodes_with_custom_controller_pods_false() {
        assert_eq!(check(&job_pod(), false), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/replicated/rule_test.go TestDrainable "SS-managed pod with skipNodesWithCustomControllerPods:true"
    #[test]
    fn ss_managed_pod_with_skip_nodes_with_custom_controller_pods_true() {
        assert_eq!(check(&ss_pod(), true), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/replicated/rule_test.go TestDrainable "SS-managed pod with skipNodesWithCustomControllerPods:false"
    #[test]
    fn ss_managed_pod_with_skip_nodes_with_custom_controller_pods_false() {
        assert_eq!(check(&ss_pod(), false), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/replicated/rule_test.go TestDrainable "RS-managed pod with skipNodesWithCustomControllerPods:true"
    #[test]
    fn rs_managed_pod_with_skip_nodes_with_custom_controller_pods_true() {
        assert_eq!(check(&rs_pod(), true), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/replicated/rule_test.go TestDrainable "RS-managed pod with skipNodesWithCustomControllerPods:false"
    #[test]
    fn rs_managed_pod_with_skip_nodes_with_custom_controller_pods_false() {
        assert_eq!(check(&rs_pod(), false), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/replicated/rule_test.go TestDrainable "RS-managed pod that is being deleted with skipNodesWithCustomControllerPods:true"
    #[test]
    fn rs_managed_pod_that_is_being_deleted_with_skip_nodes_with_custom_controller_pods_true() {
        assert_eq!(check(&rs_pod_deleted(), true), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/replicated/rule_test.go TestDrainable "RS-managed pod that is being deleted with skipNodesWithCustomControllerPods:false"
    #[test]
    fn rs_managed_pod_that_is_being_deleted_with_skip_nodes_with_custom_controller_pods_false() {
        assert_eq!(check(&rs_pod_deleted(), false), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/replicated/rule_test.go TestDrainable "naked pod with skipNodesWithCustomControllerPods:true"
    #[test]
    fn naked_pod_with_skip_nodes_with_custom_controller_pods_true() {
        assert_eq!(
            check(&naked_pod(), true),
            Some(BlockingReason::NotReplicated)
        );
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/replicated/rule_test.go TestDrainable "naked pod with skipNodesWithCustomControllerPods:false"
    #[test]
    fn naked_pod_with_skip_nodes_with_custom_controller_pods_false() {
        assert_eq!(
            check(&naked_pod(), false),
            Some(BlockingReason::NotReplicated)
        );
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/replicated/rule_test.go TestDrainable "custom-controller-managed non-blocking pod"
    #[test]
    fn custom_controller_managed_non_blocking_pod() {
        assert_eq!(check(&custom_controller_pod(), false), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/replicated/rule_test.go TestDrainable "custom-controller-managed blocking pod"
    #[test]
    fn custom_controller_managed_blocking_pod() {
        assert_eq!(
            check(&custom_controller_pod(), true),
            Some(BlockingReason::NotReplicated)
        );
        // Upstream's default (--skip-nodes-with-custom-controller-pods=true)
        // is ours: the default rules block it too.
        let cfg = outrigger_node_groups::scaledown::Config::default();
        assert!(
            outrigger_node_groups::scaledown::drain_blocker(&facts(&custom_controller_pod()), &cfg)
                .unwrap()
                .contains("FooController")
        );
    }
}

mod simulator_drainability_rules_system_rule_test {
    use std::time::Duration;

    use super::*;

    /// Upstream's `bspDisruptionTimeout` in this test: one minute.
    fn check(p: &Pod, pdbs: &[PodDisruptionBudget]) -> Option<BlockingReason> {
        blocking(
            &Rule::System {
                disruption_timeout: Duration::from_secs(60),
            }
            .drainable(&facts_with(p, pdbs)),
        )
    }

    fn rc_pod() -> Pod {
        on_node(owned(
            pod("default", "bar"),
            "rc",
            "ReplicationController",
            "core/v1",
        ))
    }
    fn kube_system_rc_pod() -> Pod {
        on_node(labelled(
            owned(
                pod("kube-system", "bar"),
                "rc",
                "ReplicationController",
                "core/v1",
            ),
            "k8s-app",
            "bar",
        ))
    }
    fn system_pod(created: i64) -> Pod {
        created_at(
            owned(
                pod("kube-system", "systemPod"),
                "rs",
                "ReplicaSet",
                "extensions/v1beta1",
            ),
            at(created),
        )
    }
    fn empty_pdb() -> PodDisruptionBudget {
        pdb(None, None, None)
    }
    fn kube_system_pdb() -> PodDisruptionBudget {
        pdb(Some("kube-system"), Some(("k8s-app", "bar")), None)
    }
    fn kube_system_fake_pdb() -> PodDisruptionBudget {
        pdb(Some("kube-system"), Some(("k8s-app", "foo")), None)
    }
    fn default_namespace_pdb() -> PodDisruptionBudget {
        pdb(Some("default"), Some(("k8s-app", "PDB-managed pod")), None)
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/system/rule_test.go TestDrainable "empty PDB with RC-managed pod"
    #[test]
    fn empty_pdb_with_rc_managed_pod() {
        assert_eq!(check(&rc_pod(), &[empty_pdb()]), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/system/rule_test.go TestDrainable "kube-system PDB with matching kube-system pod"
    #[test]
    fn kube_system_pdb_with_matching_kube_system_pod() {
        assert_eq!(check(&kube_system_rc_pod(), &[kube_system_pdb()]), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/system/rule_test.go TestDrainable "kube-system PDB with non-matching kube-system pod"
    #[test]
    fn kube_system_pdb_with_non_matching_kube_system_pod() {
        assert_eq!(
            check(&kube_system_rc_pod(), &[kube_system_fake_pdb()]),
            Some(BlockingReason::UnmovableKubeSystemPod)
        );
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/system/rule_test.go TestDrainable "kube-system PDB with default namespace pod"
    #[test]
    fn kube_system_pdb_with_default_namespace_pod() {
        assert_eq!(check(&rc_pod(), &[kube_system_pdb()]), None);
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/system/rule_test.go TestDrainable "default namespace PDB with matching labels kube-system pod"
    #[test]
    fn default_namespace_pdb_with_matching_labels_kube_system_pod() {
        assert_eq!(
            check(&kube_system_rc_pod(), &[default_namespace_pdb()]),
            Some(BlockingReason::UnmovableKubeSystemPod)
        );
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/system/rule_test.go TestDrainable "block non-pdb system pod existing for less than BspDisruptionTimeout"
    #[test]
    fn block_non_pdb_system_pod_existing_for_less_than_bsp_disruption_timeout() {
        assert_eq!(
            check(&system_pod(-59), &[empty_pdb()]),
            Some(BlockingReason::UnmovableKubeSystemPod)
        );
    }

    // upstream: cluster-autoscaler/simulator/drainability/rules/system/rule_test.go TestDrainable "allow non-pdb system pod existing for more than BspDisruptionTimeout"
    #[test]
    fn allow_non_pdb_system_pod_existing_for_more_than_bsp_disruption_timeout() {
        let p = system_pod(-61);
        assert_eq!(check(&p, &[kube_system_pdb()]), None);
        // Not merely undecided: the rule lets it move.
        assert_eq!(
            Rule::System {
                disruption_timeout: Duration::from_secs(60),
            }
            .drainable(&facts(&p)),
            Drainability::DrainOk
        );
    }
}

mod utils_drain_drain_test {
    use super::*;

    fn long_terminating(deleted: Option<i64>, grace: Option<i64>) -> bool {
        let mut p = pod("default", "p");
        p.metadata.deletion_timestamp = deleted.map(at);
        spec(&mut p).termination_grace_period_seconds = grace;
        facts::is_long_terminating(&p, test_time())
    }

    // upstream: cluster-autoscaler/utils/drain/drain_test.go TestIsPodLongTerminating "No deletion timestamp"
    #[test]
    fn no_deletion_timestamp() {
        assert!(!long_terminating(None, Some(0)));
    }

    // upstream: cluster-autoscaler/utils/drain/drain_test.go TestIsPodLongTerminating "Just deleted no grace period defined"
    #[test]
    fn just_deleted_no_grace_period_defined() {
        assert!(!long_terminating(Some(0), None));
    }

    // upstream: cluster-autoscaler/utils/drain/drain_test.go TestIsPodLongTerminating "Deleted for longer than PodLongTerminatingExtraThreshold with no grace period"
    #[test]
    fn deleted_for_longer_than_pod_long_terminating_extra_threshold_with_no_grace_period() {
        assert!(long_terminating(Some(-90), None));
    }

    // upstream: cluster-autoscaler/utils/drain/drain_test.go TestIsPodLongTerminating "Just deleted with grace period defined to 0"
    #[test]
    fn just_deleted_with_grace_period_defined_to_0() {
        assert!(!long_terminating(Some(0), Some(0)));
    }

    // upstream: cluster-autoscaler/utils/drain/drain_test.go TestIsPodLongTerminating "Deleted for longer than PodLongTerminatingExtraThreshold with grace period defined to 0"
    #[test]
    fn deleted_for_longer_than_pod_long_terminating_extra_threshold_with_grace_period_defined_to_0()
    {
        assert!(long_terminating(Some(-60), Some(0)));
    }

    // upstream: cluster-autoscaler/utils/drain/drain_test.go TestIsPodLongTerminating "Deleted for longer than PodLongTerminatingExtraThreshold but not longer than grace period (2 min)"
    #[test]
    fn deleted_for_longer_than_pod_long_terminating_extra_threshold_but_not_longer_than_grace_period_2_min()
     {
        assert!(!long_terminating(Some(-60), Some(120)));
    }

    // upstream: cluster-autoscaler/utils/drain/drain_test.go TestIsPodLongTerminating "Deleted for longer than grace period (2 min) and PodLongTerminatingExtraThreshold"
    #[test]
    fn deleted_for_longer_than_grace_period_2_min_and_pod_long_terminating_extra_threshold() {
        assert!(long_terminating(Some(-60 - 120), Some(120)));
    }

    // upstream: cluster-autoscaler/utils/drain/drain_test.go TestBlockingPodReasonFormatting (every reason we can give; NoReason and out-of-range values cannot be built in Rust)
    #[test]
    fn blocking_pod_reason_formatting() {
        for (r, want) in [
            (BlockingReason::ControllerNotFound, "ControllerNotFound"),
            (BlockingReason::MinReplicasReached, "MinReplicasReached"),
            (BlockingReason::NotReplicated, "NotReplicated"),
            (
                BlockingReason::LocalStorageRequested,
                "LocalStorageRequested",
            ),
            (
                BlockingReason::NotSafeToEvictAnnotation,
                "NotSafeToEvictAnnotation",
            ),
            (
                BlockingReason::UnmovableKubeSystemPod,
                "UnmovableKubeSystemPod",
            ),
            (BlockingReason::NotEnoughPdb, "NotEnoughPdb"),
            (BlockingReason::UnexpectedError, "UnexpectedError"),
        ] {
            assert_eq!(r.to_string(), want);
        }
    }
}

mod simulator_drain_test {
    use outrigger_node_groups::scaledown::{BlockingPod, Config};

    use super::*;

    const SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";

    fn unreplicated_pod() -> Pod {
        pod("ns", "unreplicatedPod")
    }
    fn manifest_pod() -> Pod {
        annotated(
            pod("kube-system", "manifestPod"),
            "kubernetes.io/config.mirror",
            "something",
        )
    }
    fn system_pod() -> Pod {
        owned(
            pod("kube-system", "systemPod"),
            "rs",
            "ReplicaSet",
            "extensions/v1beta1",
        )
    }
    /// Upstream's bspDisruptionTimeout here is an hour, our default.
    fn drainable_blocking_system_pod() -> Pod {
        created_at(system_pod(), at(-3600 - 60))
    }
    fn non_drainable_blocking_system_pod() -> Pod {
        created_at(system_pod(), at(-3600 + 60))
    }
    fn local_storage_pod() -> Pod {
        empty_dirs(
            owned(
                pod("ns", "localStoragePod"),
                "rs",
                "ReplicaSet",
                "extensions/v1beta1",
            ),
            &["empty-vol"],
        )
    }
    fn non_local_storage_pod() -> Pod {
        let mut p = owned(
            pod("ns", "nonLocalStoragePod"),
            "rs",
            "ReplicaSet",
            "extensions/v1beta1",
        );
        spec(&mut p).volumes = Some(vec![Volume {
            name: "my-repo".into(),
            git_repo: Some(GitRepoVolumeSource {
                repository: "my-repo".into(),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        p
    }
    fn pdb_pod() -> Pod {
        labelled(
            owned(
                pod("ns", "pdbPod"),
                "rs",
                "ReplicaSet",
                "extensions/v1beta1",
            ),
            "critical",
            "true",
        )
    }
    fn restrictive_pdb() -> PodDisruptionBudget {
        pdb(Some("ns"), Some(("critical", "true")), Some(0))
    }
    fn permissive_pdb() -> PodDisruptionBudget {
        pdb(Some("ns"), Some(("critical", "true")), Some(1))
    }
    fn terminated_pod() -> Pod {
        deleted_at(
            owned(
                pod("ns", "terminatedPod"),
                "rs",
                "ReplicaSet",
                "extensions/v1beta1",
            ),
            at(-30 - 60),
            None,
        )
    }
    fn terminating_pod() -> Pod {
        deleted_at(
            owned(
                pod("ns", "terminatingPod"),
                "rs",
                "ReplicaSet",
                "extensions/v1beta1",
            ),
            at(-30 + 60),
            None,
        )
    }
    fn rc_pod() -> Pod {
        on_node(owned(
            pod("default", "bar"),
            "rc",
            "ReplicationController",
            "core/v1",
        ))
    }
    fn kube_system_rc_pod() -> Pod {
        on_node(labelled(
            owned(
                pod("kube-system", "bar"),
                "rc",
                "ReplicationController",
                "core/v1",
            ),
            "k8s-app",
            "bar",
        ))
    }
    fn ds_pod() -> Pod {
        on_node(owned(pod("default", "bar"), "ds", "DaemonSet", "apps/v1"))
    }
    fn cds_pod() -> Pod {
        on_node(annotated(
            owned(pod("default", "bar"), "ds", "CustomDaemonSet", "crd/v1"),
            "cluster-autoscaler.kubernetes.io/daemonset-pod",
            "true",
        ))
    }
    fn job_pod() -> Pod {
        owned(pod("default", "bar"), "job", "Job", "batch/v1")
    }
    fn ss_pod() -> Pod {
        owned(pod("default", "bar"), "ss", "StatefulSet", "apps/v1")
    }
    fn rs_pod() -> Pod {
        on_node(owned(pod("default", "bar"), "rs", "ReplicaSet", "apps/v1"))
    }
    fn rs_pod_deleted() -> Pod {
        deleted_at(rs_pod(), at(-3600), None)
    }
    fn empty_dir_safe_to_evict_local_volume_multi_val_all_matching() -> Pod {
        on_node(annotated(
            empty_dirs(
                owned(
                    pod("default", "bar"),
                    "rc",
                    "ReplicationController",
                    "core/v1",
                ),
                &["scratch-1", "scratch-2", "scratch-3"],
            ),
            "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes",
            "scratch-1,scratch-2,scratch-3",
        ))
    }
    fn terminal_pod() -> Pod {
        on_node(with_phase(pod("default", "bar"), "OnFailure", "Succeeded"))
    }
    fn long_terminating_pod() -> Pod {
        let p = on_node(with_phase(
            owned(
                pod("default", "bar"),
                "rc",
                "ReplicationController",
                "core/v1",
            ),
            "OnFailure",
            "Unknown",
        ));
        deleted_at(p, at(-60), Some(0))
    }
    fn long_terminating_pod_with_extended_grace_period() -> Pod {
        let p = on_node(with_phase(
            owned(
                pod("default", "bar"),
                "rc",
                "ReplicationController",
                "core/v1",
            ),
            "OnFailure",
            "Unknown",
        ));
        deleted_at(p, at(-180), Some(360))
    }
    fn failed_pod() -> Pod {
        on_node(with_phase(pod("default", "bar"), "Never", "Failed"))
    }
    fn evicted_pod() -> Pod {
        on_node(with_phase(pod("default", "bar"), "Always", "Failed"))
    }
    fn safe_pod() -> Pod {
        on_node(annotated(pod("default", "bar"), SAFE_TO_EVICT, "true"))
    }
    fn kube_system_safe_pod() -> Pod {
        on_node(annotated(pod("kube-system", "bar"), SAFE_TO_EVICT, "true"))
    }
    fn emptydir_safe_pod() -> Pod {
        empty_dirs(safe_pod(), &["scratch"])
    }
    fn empty_pdb() -> PodDisruptionBudget {
        pdb(None, None, None)
    }
    fn kube_system_pdb() -> PodDisruptionBudget {
        pdb(Some("kube-system"), Some(("k8s-app", "bar")), Some(1))
    }
    fn kube_system_fake_pdb() -> PodDisruptionBudget {
        pdb(Some("kube-system"), Some(("k8s-app", "foo")), Some(1))
    }
    fn default_namespace_pdb() -> PodDisruptionBudget {
        pdb(
            Some("default"),
            Some(("k8s-app", "PDB-managed pod")),
            Some(1),
        )
    }

    /// Upstream's delete options: system pods and local storage skipped,
    /// custom controllers too (ours: [`Config::default`]).
    fn get(pods: &[Pod], pdbs: &[PodDisruptionBudget]) -> Result<PodsToMove, BlockingPod> {
        let facts: Vec<PodFacts> = pods.iter().map(|p| facts_with(p, pdbs)).collect();
        pods_to_move(&facts, &Config::default())
    }

    /// The outcome without messages: what moves, or which pod blocks why.
    fn outcome(
        pods: &[Pod],
        pdbs: &[PodDisruptionBudget],
    ) -> Result<PodsToMove, (usize, BlockingReason)> {
        get(pods, pdbs).map_err(|b| (b.pod, b.reason))
    }

    fn blocked_by(
        pod: usize,
        reason: BlockingReason,
    ) -> Result<PodsToMove, (usize, BlockingReason)> {
        Err((pod, reason))
    }

    fn ok(pods: &[usize], daemonset_pods: &[usize]) -> Result<PodsToMove, (usize, BlockingReason)> {
        Ok(PodsToMove {
            pods: pods.to_vec(),
            daemonset_pods: daemonset_pods.to_vec(),
        })
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "Unreplicated pod"
    #[test]
    fn unreplicated_pod_case() {
        assert_eq!(
            outcome(&[unreplicated_pod()], &[]),
            blocked_by(0, BlockingReason::NotReplicated)
        );
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "Replicated pod"
    #[test]
    fn replicated_pod() {
        assert_eq!(outcome(&[rs_pod()], &[]), ok(&[0], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "Manifest pod"
    #[test]
    fn manifest_pod_case() {
        assert_eq!(outcome(&[manifest_pod()], &[]), ok(&[], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "DaemonSet pod"
    #[test]
    fn daemon_set_pod() {
        assert_eq!(
            outcome(&[rs_pod(), manifest_pod(), ds_pod()], &[]),
            ok(&[0], &[2])
        );
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "Kube-system"
    #[test]
    fn kube_system() {
        assert_eq!(
            outcome(&[system_pod()], &[]),
            blocked_by(0, BlockingReason::UnmovableKubeSystemPod)
        );
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "Kube-system no pdb system pods blocking" (the first of two so named)
    #[test]
    fn kube_system_no_pdb_system_pods_blocking() {
        assert_eq!(
            outcome(&[non_drainable_blocking_system_pod()], &[]),
            blocked_by(0, BlockingReason::UnmovableKubeSystemPod)
        );
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "Kube-system no pdb system pods allowing"
    #[test]
    fn kube_system_no_pdb_system_pods_allowing() {
        assert_eq!(
            outcome(&[drainable_blocking_system_pod()], &[]),
            ok(&[0], &[])
        );
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "Kube-system no pdb system pods blocking" (the second, an old system pod first)
    #[test]
    fn kube_system_no_pdb_system_pods_blocking_after_an_old_one() {
        assert_eq!(
            outcome(
                &[
                    drainable_blocking_system_pod(),
                    non_drainable_blocking_system_pod()
                ],
                &[]
            ),
            blocked_by(1, BlockingReason::UnmovableKubeSystemPod)
        );
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "Local storage"
    #[test]
    fn local_storage() {
        assert_eq!(
            outcome(&[local_storage_pod()], &[]),
            blocked_by(0, BlockingReason::LocalStorageRequested)
        );
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "Non-local storage"
    #[test]
    fn non_local_storage() {
        assert_eq!(outcome(&[non_local_storage_pod()], &[]), ok(&[0], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "Pdb blocking"
    #[test]
    fn pdb_blocking() {
        assert_eq!(
            outcome(&[pdb_pod()], &[restrictive_pdb()]),
            blocked_by(0, BlockingReason::NotEnoughPdb)
        );
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "Pdb allowing"
    #[test]
    fn pdb_allowing() {
        assert_eq!(outcome(&[pdb_pod()], &[permissive_pdb()]), ok(&[0], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "Pod termination"
    #[test]
    fn pod_termination() {
        assert_eq!(
            outcome(&[rs_pod(), terminated_pod(), terminating_pod()], &[]),
            ok(&[0, 2], &[])
        );
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "RC-managed pod"
    #[test]
    fn rc_managed_pod() {
        assert_eq!(outcome(&[rc_pod()], &[]), ok(&[0], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "DS-managed pod"
    #[test]
    fn ds_managed_pod() {
        assert_eq!(outcome(&[ds_pod()], &[]), ok(&[], &[0]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "DS-managed pod by a custom Daemonset"
    #[test]
    fn ds_managed_pod_by_a_custom_daemonset() {
        assert_eq!(outcome(&[cds_pod()], &[]), ok(&[], &[0]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "Job-managed pod"
    #[test]
    fn job_managed_pod() {
        assert_eq!(outcome(&[job_pod()], &[]), ok(&[0], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "SS-managed pod"
    #[test]
    fn ss_managed_pod() {
        assert_eq!(outcome(&[ss_pod()], &[]), ok(&[0], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "RS-managed pod"
    #[test]
    fn rs_managed_pod() {
        assert_eq!(outcome(&[rs_pod()], &[]), ok(&[0], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "RS-managed pod that is being deleted"
    #[test]
    fn rs_managed_pod_that_is_being_deleted() {
        assert_eq!(outcome(&[rs_pod_deleted()], &[]), ok(&[], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "pod with EmptyDir and SafeToEvictLocalVolumesKey annotation with matching values"
    #[test]
    fn pod_with_empty_dir_and_safe_to_evict_local_volumes_key_annotation_with_matching_values() {
        assert_eq!(
            outcome(
                &[empty_dir_safe_to_evict_local_volume_multi_val_all_matching()],
                &[]
            ),
            ok(&[0], &[])
        );
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "failed pod"
    #[test]
    fn failed_pod_case() {
        assert_eq!(outcome(&[failed_pod()], &[]), ok(&[0], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "long terminating pod with 0 grace period"
    #[test]
    fn long_terminating_pod_with_0_grace_period() {
        assert_eq!(outcome(&[long_terminating_pod()], &[]), ok(&[], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "long terminating pod with extended grace period"
    #[test]
    fn long_terminating_pod_with_extended_grace_period_case() {
        assert_eq!(
            outcome(&[long_terminating_pod_with_extended_grace_period()], &[]),
            ok(&[0], &[])
        );
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "evicted pod"
    #[test]
    fn evicted_pod_case() {
        assert_eq!(outcome(&[evicted_pod()], &[]), ok(&[0], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "pod in terminal state"
    #[test]
    fn pod_in_terminal_state() {
        assert_eq!(outcome(&[terminal_pod()], &[]), ok(&[0], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "pod with PodSafeToEvict annotation"
    #[test]
    fn pod_with_pod_safe_to_evict_annotation() {
        assert_eq!(outcome(&[safe_pod()], &[]), ok(&[0], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "kube-system pod with PodSafeToEvict annotation"
    #[test]
    fn kube_system_pod_with_pod_safe_to_evict_annotation() {
        assert_eq!(outcome(&[kube_system_safe_pod()], &[]), ok(&[0], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "pod with EmptyDir and PodSafeToEvict annotation"
    #[test]
    fn pod_with_empty_dir_and_pod_safe_to_evict_annotation() {
        assert_eq!(outcome(&[emptydir_safe_pod()], &[]), ok(&[0], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "empty PDB with RC-managed pod"
    #[test]
    fn empty_pdb_with_rc_managed_pod() {
        assert_eq!(outcome(&[rc_pod()], &[empty_pdb()]), ok(&[0], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "kube-system PDB with matching kube-system pod"
    #[test]
    fn kube_system_pdb_with_matching_kube_system_pod() {
        assert_eq!(
            outcome(&[kube_system_rc_pod()], &[kube_system_pdb()]),
            ok(&[0], &[])
        );
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "kube-system PDB with non-matching kube-system pod"
    #[test]
    fn kube_system_pdb_with_non_matching_kube_system_pod() {
        assert_eq!(
            outcome(&[kube_system_rc_pod()], &[kube_system_fake_pdb()]),
            blocked_by(0, BlockingReason::UnmovableKubeSystemPod)
        );
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "kube-system PDB with default namespace pod"
    #[test]
    fn kube_system_pdb_with_default_namespace_pod() {
        assert_eq!(outcome(&[rc_pod()], &[kube_system_pdb()]), ok(&[0], &[]));
    }

    // upstream: cluster-autoscaler/simulator/drain_test.go TestGetPodsToMove "default namespace PDB with matching labels kube-system pod"
    #[test]
    fn default_namespace_pdb_with_matching_labels_kube_system_pod() {
        assert_eq!(
            outcome(&[kube_system_rc_pod()], &[default_namespace_pdb()]),
            blocked_by(0, BlockingReason::UnmovableKubeSystemPod)
        );
    }

    // Upstream's rule order: safe-to-evict "true" moves a pod before the
    // PDB rule is asked (upstream's planner then only marks such a removal
    // risky; the eviction itself still respects the budget).
    #[test]
    fn pinned_safe_to_evict_comes_before_the_pdb_rule() {
        let p = annotated(pdb_pod(), SAFE_TO_EVICT, "true");
        assert_eq!(outcome(&[p], &[restrictive_pdb()]), ok(&[0], &[]));
    }
}

mod simulator_utilization_info_test {
    use outrigger_node_groups::scaledown::{NodeFacts, Utilization, calculate};

    use super::*;

    fn node_info(n: &Node, pods: &[Pod]) -> NodeFacts {
        let pods: Vec<&Pod> = pods.iter().collect();
        facts::node_facts(n, &pods, &[], test_time())
    }

    fn node() -> Node {
        let mut n = build_test_node("node1", 2000, 2000000);
        set_ready(&mut n, true);
        n
    }
    fn p1() -> Pod {
        build_test_pod("p1", 100, 200000)
    }
    fn p2() -> Pod {
        build_test_pod("p2", -1, -1)
    }
    fn ds_pod3() -> Pod {
        owned(
            build_test_pod("p3", 100, 200000),
            "ds",
            "DaemonSet",
            "apps/v1",
        )
    }
    fn ds_pod4() -> Pod {
        annotated(
            owned(
                build_test_pod("p4", 100, 200000),
                "ds",
                "CustomDaemonSet",
                "crd/v1",
            ),
            "cluster-autoscaler.kubernetes.io/daemonset-pod",
            "true",
        )
    }
    fn mirror_pod() -> Pod {
        annotated(
            build_test_pod("p4", 100, 200000),
            "kubernetes.io/config.mirror",
            "",
        )
    }

    fn util(n: &Node, pods: &[Pod], skip_ds: bool, skip_mirror: bool) -> Utilization {
        calculate(&node_info(n, pods), skip_ds, skip_mirror).unwrap()
    }

    fn near(got: f64, want: f64, epsilon: f64) {
        assert!(
            ((got - want) / want).abs() <= epsilon,
            "got {got}, want {want}"
        );
    }

    // upstream: cluster-autoscaler/simulator/utilization/info_test.go TestCalculate (node1: two pods, one without requests)
    #[test]
    fn calculate_takes_the_higher_of_cpu_and_memory() {
        let u = util(&node(), &[p1(), p1(), p2()], false, false);
        near(u.utilization, 2.0 / 10.0, 0.01);
        assert_eq!(u.cpu, 0.1);
        assert_eq!(u.resource, "memory");
    }

    // upstream: cluster-autoscaler/simulator/utilization/info_test.go TestCalculate (node2: no memory allocatable is an error)
    #[test]
    fn calculate_without_allocatable_memory_is_an_error() {
        let n = build_test_node("node2", 2000, -1);
        assert!(calculate(&node_info(&n, &[p1(), p1(), p2()]), false, false).is_err());
    }

    // upstream: cluster-autoscaler/simulator/utilization/info_test.go TestCalculate (node3: init containers, sidecars and not)
    #[test]
    fn calculate_counts_init_containers_as_the_scheduler() {
        let mut with_init = build_test_pod("p-init", 100, 200000);
        let mut sidecar = container(50, 100000);
        sidecar.restart_policy = Some("Always".into());
        spec(&mut with_init).init_containers = Some(vec![sidecar, container(5, 100)]);
        let mut with_large_init = build_test_pod("p-large-init", 100, 200000);
        spec(&mut with_large_init).init_containers = Some(vec![container(50000, 100000000)]);
        let mut n = build_test_node("node3", 2000, 2000000);
        set_ready(&mut n, true);
        let u = util(&n, &[p1(), with_init, with_large_init], false, false);
        near(u.utilization, 50.25, 0.01);
        near(u.cpu, 25.125, 0.005);
    }

    // upstream: cluster-autoscaler/simulator/utilization/info_test.go TestCalculate (skipping daemonset pods, one by annotation)
    #[test]
    fn calculate_skipping_daemonset_pods() {
        let u = util(
            &node(),
            &[p1(), p1(), p2(), ds_pod3(), ds_pod4()],
            true,
            false,
        );
        near(u.utilization, 2.5 / 10.0, 0.01);
    }

    // upstream: cluster-autoscaler/simulator/utilization/info_test.go TestCalculate (daemonset pods counted)
    #[test]
    fn calculate_counting_daemonset_pods() {
        let u = util(&node(), &[p1(), p2(), ds_pod3()], false, false);
        near(u.utilization, 2.0 / 10.0, 0.01);
    }

    // upstream: cluster-autoscaler/simulator/utilization/info_test.go TestCalculate (a pod deleted 10 minutes ago counts for nothing)
    #[test]
    fn calculate_ignores_long_terminating_pods() {
        let terminated = deleted_at(build_test_pod("podTerminated", 100, 200000), at(-600), None);
        let u = util(&node(), &[p1(), p1(), p2(), terminated], false, false);
        near(u.utilization, 2.0 / 10.0, 0.01);
    }

    // upstream: cluster-autoscaler/simulator/utilization/info_test.go TestCalculate (skipping mirror pods)
    #[test]
    fn calculate_skipping_mirror_pods() {
        let u = util(&node(), &[p1(), p1(), p2(), mirror_pod()], false, true);
        near(u.utilization, 2.0 / 9.0, 0.01);
    }

    // upstream: cluster-autoscaler/simulator/utilization/info_test.go TestCalculate (mirror pods counted)
    #[test]
    fn calculate_counting_mirror_pods() {
        let u = util(&node(), &[p1(), p2(), mirror_pod()], false, false);
        near(u.utilization, 2.0 / 10.0, 0.01);
    }

    // upstream: cluster-autoscaler/simulator/utilization/info_test.go TestCalculate (skipping mirror and daemonset pods)
    #[test]
    fn calculate_skipping_mirror_and_daemonset_pods() {
        let u = util(&node(), &[p1(), mirror_pod(), ds_pod3()], true, true);
        near(u.utilization, 1.0 / 8.0, 0.01);
    }

    // upstream: cluster-autoscaler/simulator/utilization/info_test.go TestCalculateWithDynamicResources "no DRA resources, DRA disabled -> normal resource util returned"
    #[test]
    fn no_dra_resources_dra_disabled_normal_resource_util_returned() {
        let n = build_test_node("node", 1000, 1000);
        let u = util(
            &n,
            &[
                build_test_pod("pod1", 250, 0),
                build_test_pod("pod2", 250, 0),
            ],
            false,
            false,
        );
        assert_eq!(
            u,
            Utilization {
                cpu: 0.5,
                memory: 0.0,
                resource: "cpu",
                utilization: 0.5
            }
        );
    }
}

mod core_scaledown_eligibility_eligibility_test {
    use outrigger_node_groups::{
        group::NodeGroup,
        scaledown::{Config, Ineligible, NodeFacts, eligibility},
    };

    use super::*;

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::now()
    }

    fn regular_node() -> Node {
        let mut n = build_test_node("regular", 1000, 10);
        set_ready(&mut n, true);
        n
    }
    fn just_deleted_node() -> Node {
        let mut n = build_test_node("justDeleted", 1000, 10);
        n.spec.as_mut().unwrap().taints = Some(vec![Taint {
            key: "ToBeDeletedByClusterAutoscaler".into(),
            value: Some((now().as_second() - 30).to_string()),
            effect: String::new(),
            time_added: None,
        }]);
        set_ready(&mut n, true);
        n
    }
    fn no_scale_down_node() -> Node {
        let mut n = build_test_node("noScaleDown", 1000, 10);
        n.metadata.annotations = Some(BTreeMap::from([(
            "cluster-autoscaler.kubernetes.io/scale-down-disabled".to_string(),
            "true".to_string(),
        )]));
        set_ready(&mut n, true);
        n
    }
    fn unready_node() -> Node {
        let mut n = build_test_node("unready", 1000, 10);
        set_ready(&mut n, false);
        n
    }
    fn big_pod() -> Pod {
        on_node(build_test_pod("bigPod", 600, 0))
    }
    fn small_pod() -> Pod {
        on_node(build_test_pod("smallPod", 100, 0))
    }
    fn ds_pod() -> Pod {
        on_node(owned(
            build_test_pod("dsPod", 500, 0),
            "ds",
            "DaemonSet",
            "apps/v1",
        ))
    }
    fn broken_util_node() -> Node {
        build_test_node("regular", 0, 0)
    }

    /// Upstream's test provider: one group ng1 (min 1, max 10, size 2)
    /// with every node of the case.
    fn groups() -> Vec<NodeGroup> {
        vec![NodeGroup {
            id: "ng1".into(),
            min: 1,
            max: 10,
            target: 2,
            instances: vec![],
            template: None,
        }]
    }

    fn check(
        n: &Node,
        pods: &[Pod],
        ignore_daemonsets: bool,
        threshold: f64,
    ) -> Result<(), Ineligible> {
        let pods: Vec<&Pod> = pods.iter().collect();
        let f = NodeFacts {
            group: Some(0),
            ..facts::node_facts(n, &pods, &[], now())
        };
        let cfg = Config {
            threshold,
            ignore_daemonsets_utilization: ignore_daemonsets,
            ..Config::default()
        };
        eligibility(&f, &groups(), &cfg).map(|_| ())
    }

    /// Each base case of upstream runs with daemonset utilization ignored
    /// and not: so do ours.
    fn both(n: &Node, pods: &[Pod]) -> Result<(), Ineligible> {
        let a = check(n, pods, false, 0.5);
        let b = check(n, pods, true, 0.5);
        assert_eq!(a, b);
        a
    }

    // upstream: cluster-autoscaler/core/scaledown/eligibility/eligibility_test.go TestFilterOutUnremovable "regular node stays"
    #[test]
    fn regular_node_stays() {
        assert_eq!(both(&regular_node(), &[]), Ok(()));
    }

    // upstream: cluster-autoscaler/core/scaledown/eligibility/eligibility_test.go TestFilterOutUnremovable "recently deleted node is filtered out"
    #[test]
    fn recently_deleted_node_is_filtered_out() {
        assert_eq!(both(&regular_node(), &[]), Ok(()));
        assert_eq!(
            both(&just_deleted_node(), &[]),
            Err(Ineligible::BeingDeleted)
        );
    }

    // upstream: cluster-autoscaler/core/scaledown/eligibility/eligibility_test.go TestFilterOutUnremovable "marked no scale down is filtered out"
    #[test]
    fn marked_no_scale_down_is_filtered_out() {
        assert_eq!(
            both(&no_scale_down_node(), &[]),
            Err(Ineligible::ScaleDownDisabled)
        );
        assert_eq!(both(&regular_node(), &[]), Ok(()));
    }

    // upstream: cluster-autoscaler/core/scaledown/eligibility/eligibility_test.go TestFilterOutUnremovable "highly utilized node is filtered out"
    #[test]
    fn highly_utilized_node_is_filtered_out() {
        assert!(matches!(
            both(&regular_node(), &[big_pod()]),
            Err(Ineligible::NotUnderutilized { .. })
        ));
    }

    // upstream: cluster-autoscaler/core/scaledown/eligibility/eligibility_test.go TestFilterOutUnremovable "underutilized node stays"
    #[test]
    fn underutilized_node_stays() {
        assert_eq!(both(&regular_node(), &[small_pod()]), Ok(()));
    }

    // upstream: cluster-autoscaler/core/scaledown/eligibility/eligibility_test.go TestFilterOutUnremovable "node is filtered out if utilization can't be calculated"
    #[test]
    fn node_is_filtered_out_if_utilization_cant_be_calculated() {
        assert!(matches!(
            both(&broken_util_node(), &[small_pod()]),
            Err(Ineligible::UnknownUtilization(_))
        ));
    }

    // upstream: cluster-autoscaler/core/scaledown/eligibility/eligibility_test.go TestFilterOutUnremovable "unready node stays"
    // (--scale-down-unready-enabled, the default: it is removed after
    // --scale-down-unready-time; tests/scale.rs checks that timer.)
    #[test]
    fn unready_node_stays() {
        assert_eq!(both(&unready_node(), &[]), Ok(()));
    }

    // upstream: cluster-autoscaler/core/scaledown/eligibility/eligibility_test.go TestFilterOutUnremovable "unready node is filtered oud when scale-down of unready is disabled"
    #[test]
    fn unready_node_is_filtered_out_when_scale_down_of_unready_is_disabled() {
        let pods: Vec<&Pod> = vec![];
        let f = NodeFacts {
            group: Some(0),
            ..facts::node_facts(&unready_node(), &pods, &[], now())
        };
        let cfg = Config {
            unready_enabled: false,
            ..Config::default()
        };
        assert_eq!(
            eligibility(&f, &groups(), &cfg).map(|_| ()),
            Err(Ineligible::NotReady)
        );
    }

    // upstream: cluster-autoscaler/core/scaledown/eligibility/eligibility_test.go TestFilterOutUnremovable "high utilization daemonsets node is filtered out"
    #[test]
    fn high_utilization_daemonsets_node_is_filtered_out() {
        assert!(matches!(
            check(&regular_node(), &[small_pod(), ds_pod()], false, 0.5),
            Err(Ineligible::NotUnderutilized { .. })
        ));
    }

    // upstream: cluster-autoscaler/core/scaledown/eligibility/eligibility_test.go TestFilterOutUnremovable "high utilization daemonsets node stays"
    #[test]
    fn high_utilization_daemonsets_node_stays() {
        assert_eq!(
            check(&regular_node(), &[small_pod(), ds_pod()], true, 0.5),
            Ok(())
        );
    }

    // upstream: cluster-autoscaler/core/scaledown/eligibility/eligibility_test.go TestFilterOutUnremovable "only daemonsets pods on this nodes"
    #[test]
    fn only_daemonsets_pods_on_this_nodes() {
        assert_eq!(check(&regular_node(), &[ds_pod()], true, 0.0), Ok(()));
    }

    // Upstream's threshold is inclusive: a node exactly at it is
    // underutilized (isNodeAtOrBelowUtilizationThreshold).
    #[test]
    fn pinned_a_node_at_the_threshold_is_underutilized() {
        let half = on_node(build_test_pod("half", 500, 0));
        assert_eq!(
            check(&regular_node(), std::slice::from_ref(&half), false, 0.5),
            Ok(())
        );
        assert!(check(&regular_node(), &[half], false, 0.49).is_err());
    }
}
