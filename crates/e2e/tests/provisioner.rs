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
use outrigger_e2e::{
    TestNamespace, env, eventually,
    karpenter::{
        all_running, inflate, inflate_on_provisioner, nodepool, nodes_of, pool_instances,
        seed_provisioner, until_no_instances, until_no_nodes, until_no_pods, with_budget,
    },
};
use outrigger_karpenter_api::v1::{NodeClaim, NodePool};

async fn pool_nodes(nodes: &Api<Node>, pool: &str) -> Result<Vec<Node>> {
    nodes_of(nodes, &format!("karpenter.sh/nodepool={pool}")).await
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn pending_pods_get_spot_nodes_that_go_when_empty() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "kwok").await?;
    let pool = format!("e2e-kwok-{}", std::process::id());
    let pools: Api<NodePool> = Api::all(client.clone());
    // Empty, all the nodes go in one decision.
    let np = with_budget(
        nodepool(&pool, "10s", &["m6i.large", "m6i.xlarge"])?,
        "100%",
    );
    pools.create(&PostParams::default(), &np).await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(&PostParams::default(), &inflate(&pool, 20, "1")?)
        .await?;
    let started = Instant::now();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    all_running(&pods, 20, Duration::from_secs(60)).await?;
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
    // Every pod was nominated (the events are posted while the nodes
    // launch, so the last may land after the pods run).
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    eventually("20 Nominated events", Duration::from_secs(10), || async {
        let nominated = events
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Nominated"))
            .count();
        Ok((nominated >= 20).then_some(()))
    })
    .await?;

    // Empty: every node goes 10 s (consolidateAfter) plus the 15 s
    // validation (and some slack) later.
    deploys.delete("inflate", &DeleteParams::default()).await?;
    let emptied = Instant::now();
    eventually(
        "the pool's nodes deleted",
        Duration::from_secs(75),
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
    // The same pool again gets new nodes. (Claims a batch created and that
    // were deleted before any later batch ran once stayed capacity for
    // ever; the provisioning benchmark's second round waited on them.)
    deploys
        .create(&PostParams::default(), &inflate(&pool, 3, "1")?)
        .await?;
    all_running(&pods, 3, Duration::from_secs(30)).await?;
    deploys.delete("inflate", &DeleteParams::default()).await?;
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
        .create(
            &PostParams::default(),
            &nodepool(&pool, "10s", &["m6i.large", "m6i.xlarge"])?,
        )
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
    // `outrigger why-pending` gives the same answer on demand.
    let pod = Api::<Pod>::namespaced(client.clone(), &ns.name)
        .list(&ListParams::default().labels("app=inflate"))
        .await?
        .items
        .remove(0)
        .name_any();
    let why = env.run("outrigger", &["why-pending", "-n", &ns.name, &pod])?;
    assert!(
        why.contains("provisioner: cannot place it: 0/")
            && why.contains(&format!(
                "nodepool \"{pool}\": no instance type offers 64 cpu"
            )),
        "{why}"
    );
    assert!(why.contains("kube-scheduler: 0/"), "{why}");
    pools.delete(&pool, &DeleteParams::default()).await?;
    ns.cleanup().await.context("namespace cleanup")?;
    Ok(())
}

/// The seed's Karpenter section on the AWS provider (moto; the test
/// environment's joiner plays the instances' kubelets): its v1alpha5
/// Provisioner unchanged (spot; m6i.large or m6i.xlarge; cpu 1000;
/// `ttlSecondsAfterEmpty: 30`; subnets and security groups by the demo
/// tags), `inflate` scaled to 20 within 30 s, then deleted; the nodes go
/// 30 s after they are empty, every instance is terminated, and the log
/// tells the story in the seed's words.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn the_seeds_provisioner_launches_spot_instances_and_empties_after_30s() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "seed").await?;
    let name = format!("e2e-seed-{}", std::process::id());
    let provisioners: Api<outrigger_karpenter_api::v1alpha5::Provisioner> =
        Api::all(client.clone());
    provisioners
        .create(&PostParams::default(), &seed_provisioner(env, &name)?)
        .await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(
            &PostParams::default(),
            &inflate_on_provisioner(&name, 20, "1")?,
        )
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    all_running(&pods, 20, Duration::from_secs(30)).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let selector = format!("karpenter.sh/provisioner-name={name}");
    let ours = nodes
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    assert_eq!(ours.len(), 7);
    // Real instances: spot m6i in the demo-tagged subnets, tagged for the
    // cluster, the pool and their claim.
    let subnets: serde_json::Value = serde_json::from_str(&env.aws(&[
        "ec2",
        "describe-subnets",
        "--filters",
        "Name=tag:karpenter.sh/discovery,Values=demo",
    ])?)?;
    let tagged: Vec<String> = subnets["Subnets"]
        .as_array()
        .context("subnets")?
        .iter()
        .filter_map(|s| s["SubnetId"].as_str().map(str::to_string))
        .collect();
    let instances = |states: &str| pool_instances(env, &name, states);
    let running = instances("running")?;
    assert_eq!(running.len(), 7, "instances: {running:?}");
    for i in &running {
        assert!(
            ["m6i.large", "m6i.xlarge"].contains(&i["InstanceType"].as_str().unwrap_or("")),
            "{i}"
        );
        assert!(
            tagged
                .iter()
                .any(|s| Some(s.as_str()) == i["SubnetId"].as_str()),
            "{i}"
        );
        let keys: Vec<&str> = i["Tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["Key"].as_str())
            .collect();
        for key in ["karpenter.sh/nodeclaim", "kubernetes.io/cluster/demo"] {
            assert!(keys.contains(&key), "instance lacks tag {key}: {keys:?}");
        }
    }
    for n in &ours {
        let l = n.labels();
        assert_eq!(l["karpenter.sh/capacity-type"], "spot", "{l:?}");
        assert!(
            n.spec
                .as_ref()
                .and_then(|s| s.provider_id.as_deref())
                .is_some_and(|p| p.starts_with("aws:///"))
        );
    }
    deploys.delete("inflate", &DeleteParams::default()).await?;
    // The pods go first (grace period 0), then 30 s of emptiness.
    until_no_pods(&pods, Duration::from_secs(30)).await?;
    let empty = Instant::now();
    until_no_nodes(&nodes, &selector, Duration::from_secs(60)).await?;
    let after = empty.elapsed();
    assert!(
        after >= Duration::from_secs(25) && after <= Duration::from_secs(40),
        "nodes deleted {after:?} after they emptied (want 30 s +- 5 s, plus the 1 s check)"
    );
    until_no_instances(env, &name, Duration::from_secs(20)).await?;
    let log = std::fs::read_to_string(env.state.join("logs/outrigger-provisioner.log"))?;
    let ours_log: Vec<&str> = log.lines().filter(|l| l.contains(&name)).collect();
    for needle in [
        // The seed's line to the character: the environment runs EKS's
        // daemonsets (testenv/manifests/eks-daemonsets.yaml), 155m/120Mi
        // and 3 pods a node (in the JSON log, quotes are escaped).
        r#"Created node with 3 pods requesting {\"cpu\":\"3155m\",\"memory\":\"120Mi\",\"pods\":\"6\"} from types m6i.xlarge"#,
        "Launched instance: ",
        "capacityType: spot",
        "Added TTL to empty node",
        "Triggering termination after 30s for empty node",
        "Cordoned node",
        "Deleted node",
    ] {
        assert!(
            ours_log.iter().any(|l| l.contains(needle)),
            "no {needle:?} in the provisioner's log for {name}"
        );
    }
    provisioners.delete(&name, &DeleteParams::default()).await?;
    ns.cleanup().await?;
    eprintln!("nodes deleted {after:?} after the last pod left");
    Ok(())
}

/// The status condition `type_` of a pool, once it has one.
async fn pool_condition(
    pools: &Api<NodePool>,
    pool: &str,
    type_: &str,
) -> Result<Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>> {
    Ok(pools
        .get(pool)
        .await?
        .status
        .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == type_)))
}

/// A pool capped at 8 cpu (two m6i.xlarge) and ten `cpu: 1` pods: two
/// nodes, six pods running, four pending, no third claim, and the pool's
/// status says the limit is reached (the pods' events too).
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn a_pool_at_its_limit_launches_nothing_more_and_says_so() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "limit").await?;
    let pool = format!("e2e-limit-{}", std::process::id());
    let pools: Api<NodePool> = Api::all(client.clone());
    let mut np = with_budget(nodepool(&pool, "5s", &["m6i.xlarge"])?, "100%");
    np.spec.limits = [(
        "cpu".to_string(),
        k8s_openapi::apimachinery::pkg::api::resource::Quantity("8".into()),
    )]
    .into();
    pools.create(&PostParams::default(), &np).await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(&PostParams::default(), &inflate(&pool, 10, "1")?)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    all_running(&pods, 6, Duration::from_secs(60)).await?;
    let reached = eventually(
        "the pool's LimitReached condition",
        Duration::from_secs(30),
        || async {
            Ok(pool_condition(&pools, &pool, "LimitReached")
                .await?
                .filter(|c| c.status == "True"))
        },
    )
    .await?;
    assert!(reached.message.contains("cpu 8/8"), "{reached:?}");
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    eventually(
        "a FailedScheduling event naming the limit",
        Duration::from_secs(30),
        || async {
            let hit = events
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("FailedScheduling")
                        && e.message.as_deref().is_some_and(|m| {
                            m.contains(&format!("nodepool \"{pool}\" limit cpu=8 reached"))
                        })
                });
            Ok(hit.then_some(()))
        },
    )
    .await?;
    // Another batch comes and goes: still two claims, four pods pending.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let selector = format!("karpenter.sh/nodepool={pool}");
    let n = claims
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .len();
    assert_eq!(n, 2, "nodeclaims beyond the limit");
    let pending = Api::<Pod>::namespaced(client.clone(), &ns.name)
        .list(&ListParams::default().labels("app=inflate"))
        .await?
        .items
        .into_iter()
        .find(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_none()))
        .context("a pending pod")?;
    let why = env.run(
        "outrigger",
        &["why-pending", "-n", &ns.name, &pending.name_any()],
    )?;
    assert!(
        why.contains(&format!("nodepool \"{pool}\" limit cpu=8 reached")),
        "{why}"
    );
    let status = pools.get(&pool).await?.status.unwrap_or_default();
    assert_eq!(
        status.resources.get("nodes").map(|q| q.0.as_str()),
        Some("2")
    );
    assert_eq!(status.resources.get("cpu").map(|q| q.0.as_str()), Some("8"));
    assert_eq!(status.nodes, Some(2));
    for t in ["ValidationSucceeded", "NodeClassReady", "Ready"] {
        let c = pool_condition(&pools, &pool, t).await?;
        assert_eq!(c.map(|c| c.status), Some("True".into()), "{t}");
    }
    // Scaled to 0: the pending pods go, the empty nodes go (5 s), usage
    // falls to 0 and the condition clears.
    deploys
        .patch(
            "inflate",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"replicas": 0}})),
        )
        .await?;
    eventually("LimitReached False", Duration::from_secs(60), || async {
        Ok(pool_condition(&pools, &pool, "LimitReached")
            .await?
            .filter(|c| c.status == "False"))
    })
    .await?;
    // Empty, the two claims go in one decision (consolidateAfter 5 s, the
    // 15 s validation); the status follows each (it is written on every
    // change, no longer every 3 s).
    eventually(
        "status.resources.nodes 0",
        Duration::from_secs(60),
        || async {
            let status = pools.get(&pool).await?.status.unwrap_or_default();
            Ok((status.resources.get("nodes").map(|q| q.0.as_str()) == Some("0")).then_some(()))
        },
    )
    .await?;
    pools.delete(&pool, &DeleteParams::default()).await?;
    ns.cleanup().await.context("namespace cleanup")?;
    Ok(())
}

/// A pool whose KWOKNodeClass does not exist launches nothing, and its
/// status says why.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn a_pool_without_its_node_class_launches_nothing() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "noclass").await?;
    let pool = format!("e2e-noclass-{}", std::process::id());
    let pools: Api<NodePool> = Api::all(client.clone());
    let mut np = with_budget(nodepool(&pool, "5s", &["m6i.xlarge"])?, "100%");
    np.spec.template.spec.node_class_ref.name = "missing".into();
    pools.create(&PostParams::default(), &np).await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(&PostParams::default(), &inflate(&pool, 1, "1")?)
        .await?;
    let c = eventually("NodeClassReady False", Duration::from_secs(30), || async {
        Ok(pool_condition(&pools, &pool, "NodeClassReady")
            .await?
            .filter(|c| c.status == "False"))
    })
    .await?;
    assert_eq!(c.message, "KWOKNodeClass missing not found");
    let ready = pool_condition(&pools, &pool, "Ready").await?;
    assert_eq!(ready.map(|c| c.status), Some("False".into()));
    // Batches come and go: nothing is claimed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let n = claims
        .list(&ListParams::default().labels(&format!("karpenter.sh/nodepool={pool}")))
        .await?
        .items
        .len();
    assert_eq!(n, 0, "a nodeclaim for a pool without its node class");
    pools.delete(&pool, &DeleteParams::default()).await?;
    ns.cleanup().await.context("namespace cleanup")?;
    Ok(())
}
