//! The provisioner's AWS provider when EC2 has no spot capacity: CreateFleet
//! reports `InsufficientInstanceCapacity` for every spot offering (the test
//! environment's moto extension, `testenv/aws/README.md`), and the claim,
//! which allows spot and on-demand, is launched on-demand. Its own test
//! binary, and an instance type (m6i.2xlarge) no other test launches, so the
//! injection never reaches another test.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Node, Pod},
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, PostParams},
};
use outrigger_e2e::{
    TestNamespace, env,
    karpenter::{
        Leftovers, all_running, inflate_on_provisioner, pool_instances, seed_provisioner,
        until_no_instances, until_no_nodes, until_no_pods,
    },
    moto::{NoCapacity, insufficient_capacity},
};
use outrigger_karpenter_api::{v1::NodeClaim, v1alpha5::Provisioner};
use serde_json::{Value, json};

/// Only this test launches it.
const TYPE: &str = "m6i.2xlarge";

/// A Provisioner allowing spot and on-demand m6i.2xlarge: no spot capacity
/// in any zone, so three `cpu: 1` pods run on one on-demand node; the
/// provisioner logs the offerings it removed; the empty node goes after
/// `ttlSecondsAfterEmpty: 5` and its instance is terminated.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn no_spot_capacity_falls_back_to_on_demand() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    // What an interrupted run may have left (the guard below clears its own).
    insufficient_capacity(env, "DELETE", &json!({"instanceType": TYPE}))?;
    let ns = TestNamespace::new(&client, "ice").await?;
    let name = format!("e2e-ice-{}", std::process::id());
    let _leftovers = Leftovers {
        env,
        provisioner: name.clone(),
        namespace: ns.name.clone(),
    };
    let _no_spot = NoCapacity::inject(
        env,
        json!({"instanceType": TYPE, "zone": "*", "capacityType": "spot"}),
    )?;

    // The seed's Provisioner (inline provider, demo discovery tags), with
    // both capacity types, one instance type and a short TTL.
    let mut p = seed_provisioner(env, &name)?;
    p.spec.requirements = serde_json::from_value(json!([
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [TYPE]}
    ]))?;
    p.spec.ttl_seconds_after_empty = Some(5);
    let provisioners: Api<Provisioner> = Api::all(client.clone());
    provisioners.create(&PostParams::default(), &p).await?;

    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(
            &PostParams::default(),
            &inflate_on_provisioner(&name, 3, "1")?,
        )
        .await?;
    let started = Instant::now();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    all_running(&pods, 3, Duration::from_secs(60)).await?;
    let took = started.elapsed();

    // One on-demand node and instance; no spot instance was ever launched.
    let nodes: Api<Node> = Api::all(client.clone());
    let selector = format!("karpenter.sh/provisioner-name={name}");
    let ours = nodes
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    assert_eq!(
        ours.len(),
        1,
        "nodes: {:?}",
        ours.iter().map(|n| n.name_any()).collect::<Vec<_>>()
    );
    let l = ours[0].labels();
    assert_eq!(l["karpenter.sh/capacity-type"], "on-demand", "{l:?}");
    assert_eq!(l["node.kubernetes.io/instance-type"], TYPE, "{l:?}");
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let ours_claims = claims
        .list(&ListParams::default().labels(&format!("karpenter.sh/nodepool={name}")))
        .await?
        .items;
    assert_eq!(ours_claims.len(), 1);
    assert_eq!(
        ours_claims[0]
            .labels()
            .get("karpenter.sh/capacity-type")
            .map(String::as_str),
        Some("on-demand")
    );
    let all = pool_instances(
        env,
        &name,
        "pending,running,stopping,stopped,shutting-down,terminated",
    )?;
    assert_eq!(all.len(), 1, "instances: {all:?}");
    let i = &all[0];
    assert_eq!(i["State"]["Name"], "running", "{i}");
    assert_eq!(i["InstanceType"], TYPE, "{i}");
    assert!(
        i.get("InstanceLifecycle").is_none_or(Value::is_null),
        "not an on-demand instance: {i}"
    );
    let provider_id = ours[0]
        .spec
        .as_ref()
        .and_then(|s| s.provider_id.clone())
        .unwrap_or_default();
    assert!(
        provider_id.ends_with(&format!("/{}", i["InstanceId"].as_str().unwrap_or("?"))),
        "node {provider_id} is not instance {}",
        i["InstanceId"]
    );

    // The provisioner says why: the spot offering removed in every zone for
    // insufficient capacity, then the on-demand launch. The removals are
    // this claim's, or an earlier run's still in the provider's 45 s cache
    // (then this claim did not try spot at all).
    let log = std::fs::read_to_string(env.state.join("logs/outrigger-provisioner.log"))?;
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let at = |l: &Value| -> Result<k8s_openapi::jiff::Timestamp> {
        Ok(l["timestamp"].as_str().context("timestamp")?.parse()?)
    };
    let launched = lines
        .iter()
        .find(|l| {
            l["pool"] == name.as_str()
                && l["message"].as_str().is_some_and(|m| {
                    m.starts_with("Launched instance: ")
                        && m.contains(&format!("type: {TYPE}"))
                        && m.ends_with("capacityType: on-demand")
                })
        })
        .with_context(|| {
            format!("no on-demand \"Launched instance\" in the provisioner's log for {name}")
        })?;
    let launched_at = at(launched)?;
    let ttl = k8s_openapi::jiff::SignedDuration::from_secs(45);
    let mut removed = vec![];
    for l in &lines {
        if l["message"] != "removing offering from offerings"
            || l["instance-type"] != TYPE
            || l["capacity-type"] != "spot"
        {
            continue;
        }
        let t = at(l)?;
        if t <= launched_at && t > launched_at - ttl {
            assert_eq!(l["reason"], "InsufficientInstanceCapacity", "{l}");
            removed.push(l);
        }
    }
    let mut zones: Vec<&str> = removed.iter().filter_map(|l| l["zone"].as_str()).collect();
    zones.sort();
    zones.dedup();
    assert_eq!(
        zones,
        ["ap-southeast-1a", "ap-southeast-1b", "ap-southeast-1c"],
        "the zones whose spot {TYPE} offering was removed within 45 s before the launch"
    );
    let by_us = removed
        .iter()
        .filter(|l| l["pool"] == name.as_str())
        .count();

    // Empty: the node goes after 5 s, its instance is terminated.
    deploys.delete("inflate", &DeleteParams::default()).await?;
    until_no_pods(&pods, Duration::from_secs(30)).await?;
    let empty = Instant::now();
    until_no_nodes(&nodes, &selector, Duration::from_secs(30)).await?;
    let gone_after = empty.elapsed();
    if gone_after < Duration::from_secs(4) {
        bail!("the node was deleted {gone_after:?} after emptying, before the 5s TTL");
    }
    until_no_instances(env, &name, Duration::from_secs(20)).await?;
    provisioners.delete(&name, &DeleteParams::default()).await?;
    ns.cleanup().await.context("namespace cleanup")?;
    eprintln!(
        "3 pods running on an on-demand {TYPE} after {took:?} (spot offerings removed: {by_us} by this claim, {} still cached); node gone {gone_after:?} after emptying",
        removed.len() - by_us
    );
    Ok(())
}
