//! Cluster tests of `outrigger provisioner` with the kwok provider (the
//! environment runs it under its service account): pending pods become
//! right-sized spot nodes, the empty nodes go after the pool's TTL, and a
//! pod no pool can fit is told why.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Event, Node, Pod},
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, PostParams},
};
use outrigger_e2e::{TestNamespace, env, eventually};
use outrigger_karpenter_api::v1::{NodeClaim, NodePool};

fn nodepool(name: &str, consolidate_after: &str) -> Result<NodePool> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {"spec": {
                "nodeClassRef": {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"},
                "requirements": [
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]},
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m6i.large", "m6i.xlarge"]}
                ]
            }},
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": consolidate_after},
            "limits": {"cpu": "1000"}
        }
    }))?)
}

fn inflate(pool: &str, replicas: i32, cpu: &str) -> Result<Deployment> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": "inflate"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "inflate"}},
            "template": {
                "metadata": {"labels": {"app": "inflate"}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    // Only this test's pool: the environment's other nodes and
                    // other tests' pools stay out of it.
                    "nodeSelector": {"karpenter.sh/nodepool": pool},
                    "containers": [{
                        "name": "inflate",
                        "image": "public.ecr.aws/eks-distro/kubernetes/pause:3.2",
                        "resources": {"requests": {"cpu": cpu}}
                    }]
                }
            }
        }
    }))?)
}

async fn pool_nodes(nodes: &Api<Node>, pool: &str) -> Result<Vec<Node>> {
    Ok(nodes
        .list(&ListParams::default().labels(&format!("karpenter.sh/nodepool={pool}")))
        .await?
        .items)
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn pending_pods_get_spot_nodes_that_go_when_empty() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "kwok").await?;
    let pool = format!("e2e-kwok-{}", std::process::id());
    let pools: Api<NodePool> = Api::all(client.clone());
    pools
        .create(&PostParams::default(), &nodepool(&pool, "10s")?)
        .await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(&PostParams::default(), &inflate(&pool, 20, "1")?)
        .await?;
    let started = Instant::now();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    eventually(
        "20 inflate pods running",
        Duration::from_secs(60),
        || async {
            let running = pods
                .list(&ListParams::default().labels("app=inflate"))
                .await?
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            Ok((running == 20).then_some(()))
        },
    )
    .await?;
    let took = started.elapsed();
    let nodes: Api<Node> = Api::all(client.clone());
    let ours = pool_nodes(&nodes, &pool).await?;
    // cpu: 1 pods: three fit an m6i.xlarge (3920m allocatable), so 7 nodes.
    assert_eq!(
        ours.len(),
        7,
        "nodes: {:?}",
        ours.iter().map(|n| n.name_any()).collect::<Vec<_>>()
    );
    for n in &ours {
        let l = n.labels();
        assert_eq!(l["karpenter.sh/capacity-type"], "spot");
        assert!(
            ["m6i.large", "m6i.xlarge"].contains(&l["node.kubernetes.io/instance-type"].as_str()),
            "{l:?}"
        );
        assert!(
            n.spec
                .as_ref()
                .and_then(|s| s.provider_id.as_deref())
                .is_some_and(|p| p.starts_with("kwok://"))
        );
    }
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let ours_claims: Vec<NodeClaim> = claims
        .list(&ListParams::default().labels(&format!("karpenter.sh/nodepool={pool}")))
        .await?
        .items;
    assert_eq!(ours_claims.len(), 7);
    let selector = format!("karpenter.sh/nodepool={pool}");
    eventually(
        "every nodeclaim Launched, Registered, Initialized, Ready",
        Duration::from_secs(10),
        || async {
            let all = claims
                .list(&ListParams::default().labels(&selector))
                .await?
                .items;
            let done = all.iter().all(|c| {
                let conds = c
                    .status
                    .as_ref()
                    .map(|s| s.conditions.clone())
                    .unwrap_or_default();
                ["Launched", "Registered", "Initialized", "Ready"]
                    .iter()
                    .all(|t| conds.iter().any(|x| x.type_ == *t && x.status == "True"))
            });
            Ok(done.then_some(()))
        },
    )
    .await?;
    // Every pod was nominated before it ran.
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let nominated = events
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("Nominated"))
        .count();
    assert!(nominated >= 20, "{nominated} Nominated events");

    // Empty: every node goes 10 s (plus the 1 s check and some slack) later.
    deploys.delete("inflate", &DeleteParams::default()).await?;
    let emptied = Instant::now();
    eventually(
        "the pool's nodes deleted",
        Duration::from_secs(40),
        || async {
            let left = pool_nodes(&nodes, &pool).await?.len();
            Ok((left == 0).then_some(()))
        },
    )
    .await?;
    let gone_after = emptied.elapsed();
    if gone_after < Duration::from_secs(9) {
        bail!("nodes were deleted {gone_after:?} after emptying, before the 10s TTL");
    }
    eventually(
        "the pool's nodeclaims deleted",
        Duration::from_secs(20),
        || async {
            let left = claims
                .list(&ListParams::default().labels(&format!("karpenter.sh/nodepool={pool}")))
                .await?
                .items
                .len();
            Ok((left == 0).then_some(()))
        },
    )
    .await?;
    pools.delete(&pool, &DeleteParams::default()).await?;
    ns.cleanup().await?;
    eprintln!("20 pods running after {took:?}; nodes gone {gone_after:?} after the pods");
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn a_pod_no_pool_fits_is_told_why() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "toobig").await?;
    let pool = format!("e2e-toobig-{}", std::process::id());
    let pools: Api<NodePool> = Api::all(client.clone());
    pools
        .create(&PostParams::default(), &nodepool(&pool, "10s")?)
        .await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(&PostParams::default(), &inflate(&pool, 1, "64")?)
        .await?;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let note = eventually(
        "a FailedScheduling event from the provisioner",
        Duration::from_secs(30),
        || async {
            Ok(events
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .find(|e| {
                    e.reason.as_deref() == Some("FailedScheduling")
                        && e.message.as_deref().is_some_and(|m| m.contains("nodepool"))
                })
                .and_then(|e| e.message))
        },
    )
    .await?;
    assert!(
        note.contains(&format!(
            "nodepool \"{pool}\": no instance type offers 64 cpu"
        )),
        "{note}"
    );
    let nodes: Api<Node> = Api::all(client.clone());
    assert!(
        pool_nodes(&nodes, &pool).await?.is_empty(),
        "a node was launched"
    );
    pools.delete(&pool, &DeleteParams::default()).await?;
    ns.cleanup().await.context("namespace cleanup")?;
    Ok(())
}
