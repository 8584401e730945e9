//! The NodeClaim lifecycle without a cluster: the real reconcile against
//! the in-memory cluster and the fake cloud.

use std::time::Duration;

use kube::ResourceExt;
use outrigger_runtime::{Action, ErrorKind};

use super::{EVICTION_RETRY, REGISTRATION_CHECK, SETTLE};
use crate::{
    testing::{claim, harness, node, nodepool, pod_on, provisioner, provisioner_claim},
    upstream,
};

#[tokio::test]
async fn a_new_claim_is_launched_and_records_its_instance() {
    let h = harness();
    h.mem.put_nodepool(nodepool("default", None, None));
    h.mem.put_claim(claim("default-a", "default"));
    assert_eq!(h.reconcile("default-a").await.unwrap(), Action::Done);
    assert_eq!(h.fake.calls(), ["create default-a"]);
    let c = h.claim("default-a");
    let s = c.status.clone().unwrap();
    assert!(s.provider_id.unwrap().starts_with("fake:///"));
    assert_eq!(s.capacity["cpu"].0, "2");
    assert_eq!(s.allocatable["pods"].0, "29");
    assert_eq!(c.labels()["node.kubernetes.io/instance-type"], "m5.large");
    assert_eq!(c.labels()["karpenter.sh/capacity-type"], "on-demand");
    assert!(c.labels().contains_key("topology.kubernetes.io/zone"));
    // What the provider stamps at launch (the AWS provider: the node class's
    // hash, and the instance's AMI) is kept for drift.
    assert_eq!(s.image_id.as_deref(), Some("fake-image-1"));
    assert!(
        c.annotations()
            .get("fake.outrigger.dev/instance")
            .is_some_and(|i| i.starts_with("i-")),
        "{:?}",
        c.annotations()
    );
    assert_eq!(
        h.condition("default-a", upstream::LAUNCHED).unwrap().0,
        "True"
    );
    let metrics = h.admin.encode_metrics().unwrap();
    assert!(
        metrics.contains(r#"karpenter_nodeclaims_launched_total{nodepool="default"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_launch_without_capacity_is_an_error_on_the_claim() {
    let h = harness();
    h.fake.run_out("m5.large", "*", "on-demand");
    h.mem.put_claim(claim("default-a", "default"));
    let e = h.reconcile("default-a").await.unwrap_err();
    assert_eq!(e.kind(), "InsufficientCapacity");
    let (status, reason, message) = h.condition("default-a", upstream::LAUNCHED).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "LaunchFailed")
    );
    assert!(message.contains("no instance type"), "{message}");
    assert!(h.fake.instance_ids().is_empty());
    let events = h.mem.events();
    assert!(
        events
            .iter()
            .any(|(warning, r, _)| *warning && r == upstream::LAUNCH_FAILED),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_claim_of_a_node_class_that_cannot_launch_says_why() {
    let h = harness();
    h.fake
        .break_class("default", "FakeNodeClass default has no subnets");
    h.mem.put_claim(claim("default-a", "default"));
    let e = h.reconcile("default-a").await.unwrap_err();
    assert_eq!(e.kind(), "NodeClassNotReady");
    let (_, _, message) = h.condition("default-a", upstream::LAUNCHED).unwrap();
    assert_eq!(message, "FakeNodeClass default has no subnets");
}

#[tokio::test]
async fn a_launch_the_watch_has_not_shown_yet_is_not_made_twice() {
    let h = harness();
    let fresh = claim("default-a", "default");
    h.mem.put_claim(fresh.clone());
    h.reconcile("default-a").await.unwrap();
    // The watch is behind: the claim is seen again without its status.
    let mut stale = h.claim("default-a");
    stale.status = None;
    h.mem.put_claim(stale);
    h.reconcile("default-a").await.unwrap();
    assert_eq!(h.fake.calls(), ["create default-a"]);
    assert_eq!(h.fake.instance_ids().len(), 1);
    assert!(h.claim("default-a").status.unwrap().provider_id.is_some());
}

#[tokio::test]
async fn a_launched_claim_registers_its_node_then_initializes() {
    let h = harness();
    h.mem.put_nodepool(nodepool("default", None, None));
    h.mem.put_claim(claim("default-a", "default"));
    h.reconcile("default-a").await.unwrap();
    // No node yet: looked at again later (the Node watch usually first).
    assert_eq!(
        h.reconcile("default-a").await.unwrap(),
        Action::requeue(REGISTRATION_CHECK)
    );
    let l = h.launched("default-a");
    h.mem.put_node(node(&l, false));
    assert_eq!(h.reconcile("default-a").await.unwrap(), Action::Done);
    let c = h.claim("default-a");
    assert_eq!(
        c.status.as_ref().unwrap().node_name.as_deref(),
        Some(l.node_name.as_str())
    );
    assert_eq!(
        h.condition("default-a", upstream::REGISTERED).unwrap().0,
        "True"
    );
    // The claim's labels are on the node, Outrigger's own annotation is not.
    let n = h.mem.node(&l.node_name).unwrap();
    assert_eq!(n.labels()["karpenter.sh/nodepool"], "default");
    assert_eq!(n.labels()[upstream::REGISTERED_LABEL], "true");
    assert!(!n.labels().contains_key(upstream::POOL_KIND));
    // Not Ready: nothing more.
    assert_eq!(h.reconcile("default-a").await.unwrap(), Action::Done);
    assert!(h.condition("default-a", upstream::INITIALIZED).is_none());
    h.mem.put_node(node(&l, true));
    assert_eq!(
        h.reconcile("default-a").await.unwrap(),
        Action::requeue(SETTLE)
    );
    assert_eq!(
        h.condition("default-a", upstream::INITIALIZED).unwrap().0,
        "True"
    );
    assert_eq!(h.condition("default-a", upstream::READY).unwrap().0, "True");
    // Karpenter's node label for an initialized node.
    let n = h.mem.node(&l.node_name).unwrap();
    assert_eq!(n.labels()[upstream::INITIALIZED_LABEL], "true");
}

fn tainted(
    mut n: k8s_openapi::api::core::v1::Node,
    taints: &[(&str, &str)],
) -> k8s_openapi::api::core::v1::Node {
    n.spec.get_or_insert_default().taints = Some(
        taints
            .iter()
            .map(|(key, effect)| k8s_openapi::api::core::v1::Taint {
                key: key.to_string(),
                effect: effect.to_string(),
                ..Default::default()
            })
            .collect(),
    );
    n
}

/// Karpenter's initialization: a Ready node whose startup taints or
/// known ephemeral taints (the control plane's not-ready taint, which it
/// removes a moment after the node turns Ready) are still there is not
/// initialized; the pods it was launched for could not land on it yet.
#[tokio::test]
async fn a_ready_node_is_initialized_only_once_its_startup_and_ephemeral_taints_are_gone() {
    let h = harness();
    h.mem.put_nodepool(nodepool("default", None, None));
    let mut c = claim("default-a", "default");
    c.spec.startup_taints = vec![serde_json::from_value(
        serde_json::json!({"key": "example.com/cni", "value": "starting", "effect": "NoSchedule"}),
    )
    .unwrap()];
    h.mem.put_claim(c);
    h.reconcile("default-a").await.unwrap();
    let l = h.launched("default-a");
    let ready = || node(&l, true);
    h.mem.put_node(tainted(
        ready(),
        &[
            ("example.com/cni", "NoSchedule"),
            ("node.kubernetes.io/not-ready", "NoSchedule"),
        ],
    ));
    h.reconcile("default-a").await.unwrap(); // registers
    assert_eq!(h.reconcile("default-a").await.unwrap(), Action::Done);
    let (status, reason, message) = h.condition("default-a", upstream::INITIALIZED).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("Unknown", "StartupTaintsExist")
    );
    assert_eq!(
        message,
        r#"StartupTaint "example.com/cni:NoSchedule" still exists"#
    );
    h.mem.put_node(tainted(
        ready(),
        &[("node.kubernetes.io/not-ready", "NoSchedule")],
    ));
    assert_eq!(h.reconcile("default-a").await.unwrap(), Action::Done);
    let (status, reason, message) = h.condition("default-a", upstream::INITIALIZED).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("Unknown", "KnownEphemeralTaintsExist")
    );
    assert_eq!(
        message,
        r#"KnownEphemeralTaint "node.kubernetes.io/not-ready:NoSchedule" still exists"#
    );
    assert!(
        !h.mem
            .node(&l.node_name)
            .unwrap()
            .labels()
            .contains_key(upstream::INITIALIZED_LABEL)
    );
    // A taint of the pool's own (not startup, not ephemeral) does not hold it.
    h.mem
        .put_node(tainted(ready(), &[("dedicated", "NoSchedule")]));
    assert_eq!(
        h.reconcile("default-a").await.unwrap(),
        Action::requeue(SETTLE)
    );
    assert_eq!(
        h.condition("default-a", upstream::INITIALIZED).unwrap().0,
        "True"
    );
    assert_eq!(
        h.mem.node(&l.node_name).unwrap().labels()[upstream::INITIALIZED_LABEL],
        "true"
    );
}

/// A claim launched, registered and initialized `ago` in the past.
async fn running(h: &crate::testing::Harness, name: &str, pool: &str) -> crate::cloud::Launched {
    running_claim(h, claim(name, pool)).await
}

async fn running_claim(
    h: &crate::testing::Harness,
    c: outrigger_karpenter_api::v1::NodeClaim,
) -> crate::cloud::Launched {
    let name = &c.name_any();
    h.mem.put_claim(c);
    h.reconcile(name).await.unwrap();
    let l = h.launched(name);
    h.mem.put_node(node(&l, true));
    h.reconcile(name).await.unwrap();
    h.reconcile(name).await.unwrap();
    h.initialized_ago(name, Duration::from_secs(60));
    l
}

#[tokio::test]
async fn an_empty_node_is_stamped_unstamped_and_removed_after_its_ttl() {
    let h = harness();
    h.mem.put_provisioner(provisioner("default", 30));
    let l = running_claim(&h, provisioner_claim("default-a", "default")).await;
    // A daemonset's pod does not make a node busy.
    h.mem.put_pod(pod_on(&l.node_name, "ds-1", true));
    let a = h.reconcile("default-a").await.unwrap();
    assert_eq!(a, Action::requeue(Duration::from_secs(30)));
    let stamped = h.mem.node(&l.node_name).unwrap();
    assert!(stamped.annotations().contains_key(upstream::EMPTINESS));
    // A pod arrives: the stamp goes.
    h.mem.put_pod(pod_on(&l.node_name, "web-1", false));
    assert_eq!(h.reconcile("default-a").await.unwrap(), Action::Done);
    assert!(
        !h.mem
            .node(&l.node_name)
            .unwrap()
            .annotations()
            .contains_key(upstream::EMPTINESS)
    );
    // It leaves; the node has been empty for longer than the TTL.
    h.mem.remove_pod("default", "web-1");
    h.reconcile("default-a").await.unwrap();
    let past = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(31)).to_string();
    let mut n = h.mem.node(&l.node_name).unwrap();
    n.annotations_mut().insert(upstream::EMPTINESS.into(), past);
    h.mem.put_node(n);
    assert_eq!(h.reconcile("default-a").await.unwrap(), Action::Done);
    // Marked for deletion, held by the finalizer.
    assert!(h.claim("default-a").metadata.deletion_timestamp.is_some());
    // Termination: cordoned, the instance goes, then the claim.
    h.reconcile("default-a").await.unwrap();
    assert!(h.mem.claim("default-a").is_none());
    assert!(h.fake.instance_ids().is_empty());
    let n = h.mem.node(&l.node_name).unwrap();
    let spec = n.spec.unwrap();
    assert_eq!(spec.unschedulable, Some(true));
    assert!(
        spec.taints
            .unwrap()
            .iter()
            .any(|t| t.key == upstream::DISRUPTED_TAINT)
    );
    let metrics = h.admin.encode_metrics().unwrap();
    assert!(
        metrics.contains(
            r#"karpenter_nodeclaims_terminated_total{nodepool="default",reason="empty"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_pool_without_an_empty_ttl_keeps_empty_nodes() {
    let h = harness();
    h.mem.put_nodepool(nodepool("default", None, None));
    let l = running(&h, "default-a", "default").await;
    assert_eq!(h.reconcile("default-a").await.unwrap(), Action::Done);
    assert!(
        !h.mem
            .node(&l.node_name)
            .unwrap()
            .annotations()
            .contains_key(upstream::EMPTINESS)
    );
}

#[tokio::test]
async fn termination_evicts_through_pdbs_before_the_instance_goes() {
    let h = harness();
    h.mem.put_nodepool(nodepool("default", None, None));
    let l = running(&h, "default-a", "default").await;
    h.mem.put_pod(pod_on(&l.node_name, "web-1", false));
    h.mem.put_pod(pod_on(&l.node_name, "web-2", false));
    h.mem.put_pod(pod_on(&l.node_name, "ds-1", true));
    h.mem.protect("default", "web-2", true);
    crate::cluster::Cluster::delete_claim(h.mem.as_ref(), "default-a")
        .await
        .unwrap();
    // web-1 is evicted, web-2's PDB says not now: tried again shortly.
    assert_eq!(
        h.reconcile("default-a").await.unwrap(),
        Action::requeue(EVICTION_RETRY)
    );
    assert_eq!(h.fake.instance_ids().len(), 1);
    assert!(
        h.stores
            .pods
            .state()
            .iter()
            .all(|p| p.name_any() != "web-1")
    );
    h.mem.protect("default", "web-2", false);
    h.reconcile("default-a").await.unwrap();
    // Every non-daemonset pod gone: the instance, then the claim.
    h.reconcile("default-a").await.unwrap();
    assert!(h.fake.instance_ids().is_empty());
    assert!(h.mem.claim("default-a").is_none());
}

#[tokio::test]
async fn a_claim_deleted_before_its_node_registered_still_terminates_its_instance() {
    let h = harness();
    h.mem.put_claim(claim("default-a", "default"));
    h.reconcile("default-a").await.unwrap();
    assert_eq!(h.fake.instance_ids().len(), 1);
    crate::cluster::Cluster::delete_claim(h.mem.as_ref(), "default-a")
        .await
        .unwrap();
    h.reconcile("default-a").await.unwrap();
    assert!(h.fake.instance_ids().is_empty());
    assert!(h.mem.claim("default-a").is_none());
}

#[tokio::test]
async fn an_instance_already_gone_does_not_hold_the_claim() {
    let h = harness();
    h.mem.put_claim(claim("default-a", "default"));
    h.reconcile("default-a").await.unwrap();
    let id = h.fake.instance_ids().remove(0);
    h.fake.vanish(&id);
    crate::cluster::Cluster::delete_claim(h.mem.as_ref(), "default-a")
        .await
        .unwrap();
    h.reconcile("default-a").await.unwrap();
    assert!(h.mem.claim("default-a").is_none());
}

#[tokio::test]
async fn a_cloud_error_on_delete_keeps_the_finalizer_and_is_retried() {
    let h = harness();
    h.mem.put_claim(claim("default-a", "default"));
    h.reconcile("default-a").await.unwrap();
    h.fake.fail_next("delete", 1);
    crate::cluster::Cluster::delete_claim(h.mem.as_ref(), "default-a")
        .await
        .unwrap();
    let e = h.reconcile("default-a").await.unwrap_err();
    assert_eq!(e.kind(), "CloudProviderError");
    assert!(
        h.claim("default-a")
            .finalizers()
            .contains(&upstream::FINALIZER.to_string())
    );
    h.reconcile("default-a").await.unwrap();
    assert!(h.mem.claim("default-a").is_none());
    assert!(h.fake.instance_ids().is_empty());
}

#[tokio::test]
async fn a_finalizer_patch_from_a_stale_copy_is_refused() {
    let h = harness();
    let mut c = claim("default-a", "default");
    c.metadata.finalizers = None;
    h.mem.put_claim(c);
    let stale = h.claim("default-a");
    // Someone else writes meanwhile.
    crate::cluster::Cluster::patch_claim(
        h.mem.as_ref(),
        "default-a",
        serde_json::json!({"metadata": {"finalizers": ["other/x"]}}),
    )
    .await
    .unwrap();
    let e = crate::cluster::Cluster::add_finalizer(h.mem.as_ref(), &stale, upstream::FINALIZER)
        .await
        .unwrap_err();
    assert_eq!(outrigger_runtime::ErrorKind::kind(&e), "Conflict");
    // The next reconcile reads the fresh copy: both finalizers kept.
    h.reconcile("default-a").await.unwrap();
    let f = h.claim("default-a").finalizers().to_vec();
    assert!(
        f.contains(&"other/x".to_string()) && f.contains(&upstream::FINALIZER.to_string()),
        "{f:?}"
    );
}

fn with_tgp(h: &crate::testing::Harness, name: &str, tgp: &str) {
    let mut c = h.claim(name);
    c.spec.termination_grace_period = Some(tgp.into());
    h.mem.put_claim(c);
}

fn do_not_disrupt(mut p: k8s_openapi::api::core::v1::Pod) -> k8s_openapi::api::core::v1::Pod {
    p.metadata
        .annotations
        .get_or_insert_default()
        .insert(upstream::DO_NOT_DISRUPT.into(), "true".into());
    p
}

/// A do-not-disrupt pod is not evicted: without a
/// terminationGracePeriod the drain waits for it, the instance stays.
#[tokio::test]
async fn a_do_not_disrupt_pod_holds_the_drain_without_a_termination_grace_period() {
    let h = harness();
    h.mem.put_nodepool(nodepool("default", None, None));
    let l = running(&h, "default-a", "default").await;
    h.mem
        .put_pod(do_not_disrupt(pod_on(&l.node_name, "keep", false)));
    h.mem.put_pod(pod_on(&l.node_name, "web", false));
    crate::cluster::Cluster::delete_claim(h.mem.as_ref(), "default-a")
        .await
        .unwrap();
    for _ in 0..3 {
        h.reconcile("default-a").await.unwrap();
    }
    let left: Vec<String> = h.stores.pods.state().iter().map(|p| p.name_any()).collect();
    assert_eq!(left, vec!["keep".to_string()], "web evicted, keep not");
    assert_eq!(h.fake.instance_ids().len(), 1);
    assert!(h.mem.deleted_pods().is_empty());
    assert!(
        h.claim("default-a")
            .annotations()
            .get(upstream::TERMINATION_TIMESTAMP)
            .is_none()
    );
}

/// With a terminationGracePeriod the deadline is written on the claim;
/// a pod is deleted once its own grace period would outlast the deadline
/// (PDB and do-not-disrupt bypassed), with what is left of it; then the
/// instance goes.
#[tokio::test]
async fn the_termination_grace_period_bounds_the_drain() {
    let h = harness();
    h.mem.put_nodepool(nodepool("default", None, None));
    let l = running(&h, "default-a", "default").await;
    with_tgp(&h, "default-a", "120s");
    h.mem
        .put_pod(do_not_disrupt(pod_on(&l.node_name, "keep", false)));
    h.mem.put_pod(pod_on(&l.node_name, "guarded", false));
    h.mem.protect("default", "guarded", true);
    crate::cluster::Cluster::delete_claim(h.mem.as_ref(), "default-a")
        .await
        .unwrap();
    let deleted_at = h.claim("default-a").metadata.deletion_timestamp.unwrap().0;
    // 120 s from the deletion, pods of 30 s grace: deleted 90 s in.
    let a = h.reconcile("default-a").await.unwrap();
    let at: jiff::Timestamp = h.claim("default-a").annotations()[upstream::TERMINATION_TIMESTAMP]
        .parse()
        .unwrap();
    assert_eq!(
        at.as_second(),
        (deleted_at + jiff::SignedDuration::from_secs(120)).as_second()
    );
    assert!(
        a == Action::requeue(EVICTION_RETRY),
        "the PDB refused: tried again soon ({a:?})"
    );
    assert!(h.mem.deleted_pods().is_empty());
    assert_eq!(h.stores.pods.state().len(), 2);
    // The deadline 20 s away: both pods' 30 s would outlast it.
    let mut c = h.claim("default-a");
    let soon = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 20).unwrap();
    c.metadata
        .annotations
        .get_or_insert_default()
        .insert(upstream::TERMINATION_TIMESTAMP.into(), soon.to_string());
    h.mem.put_claim(c);
    h.reconcile("default-a").await.unwrap();
    let mut deleted = h.mem.deleted_pods();
    deleted.sort();
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    for (_, grace) in &deleted {
        assert!(
            (19..=20).contains(grace),
            "granted what is left: {deleted:?}"
        );
    }
    let disrupted = h
        .mem
        .events()
        .into_iter()
        .filter(|(_, r, _)| r == upstream::DISRUPTED)
        .count();
    assert_eq!(disrupted, 2);
    // Nothing left: the instance, then the claim.
    h.reconcile("default-a").await.unwrap();
    assert!(h.fake.instance_ids().is_empty());
    assert!(h.mem.claim("default-a").is_none());
}

/// The cloud's side of drift (Karpenter's `CloudProvider.IsDrifted`: for
/// AWS, the instance's AMI, subnet and security groups against what its
/// node class resolves to now) sets `Drifted` with the provider's reason,
/// and clears it once the provider no longer says so.
#[tokio::test]
async fn an_instance_the_provider_calls_drifted_is_drifted_with_its_reason() {
    use outrigger_disruption::drift::DriftReason;
    let h = harness();
    h.mem.put_nodepool(nodepool("default", None, None));
    running(&h, "default-a", "default").await;
    h.reconcile("default-a").await.unwrap();
    assert!(h.condition("default-a", upstream::DRIFTED).is_none());
    h.fake
        .drift("default-a", Some(DriftReason::SecurityGroupDrift));
    h.reconcile("default-a").await.unwrap();
    let (status, reason, _) = h.condition("default-a", upstream::DRIFTED).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "SecurityGroupDrift")
    );
    h.fake.drift("default-a", None);
    h.reconcile("default-a").await.unwrap();
    assert!(h.condition("default-a", upstream::DRIFTED).is_none());
}
