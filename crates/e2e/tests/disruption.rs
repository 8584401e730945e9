//! Cluster tests of the provisioner's disruption controller with the kwok
//! provider: an over-provisioned pool consolidates within its budget, and
//! a do-not-disrupt pod keeps its node, drift (a NodePool or an EC2NodeClass
//! change) replaces nodes, expiration rotates them.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Event, Node, Pod},
};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use outrigger_e2e::{
    TestNamespace, env, eventually,
    karpenter::{all_running, inflate, nodepool, nodes_of, with_budget},
};
use outrigger_karpenter_api::v1::NodePool;

/// Hourly price of the nodes, as the kwok provider's catalogue prices
/// them (EKS on-demand prices; spot a third of on-demand).
fn price(nodes: &[Node]) -> f64 {
    nodes
        .iter()
        .map(|n| {
            let l = n.labels();
            let od = match l["node.kubernetes.io/instance-type"].as_str() {
                "m6i.large" => 0.096,
                "m6i.xlarge" => 0.192,
                other => panic!("unexpected type {other}"),
            };
            if l["karpenter.sh/capacity-type"] == "spot" {
                (od / 3.0 * 1e4_f64).round() / 1e4
            } else {
                od
            }
        })
        .sum()
}

/// The inflate pods running and not being deleted.
async fn running_inflate(pods: &Api<Pod>) -> Result<usize> {
    Ok(pods
        .list(&ListParams::default().labels("app=inflate"))
        .await?
        .items
        .iter()
        .filter(|p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                && p.metadata.deletion_timestamp.is_none()
        })
        .count())
}

fn disrupted(n: &Node) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.key == "karpenter.sh/disrupted"))
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn an_over_provisioned_pool_consolidates_within_its_budget() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "disrupt").await?;
    let pool = format!("e2e-disrupt-{}", std::process::id());
    let selector = format!("karpenter.sh/nodepool={pool}");
    let pools: Api<NodePool> = Api::all(client.clone());
    let mut np = nodepool(&pool, "0s", &["m6i.large", "m6i.xlarge"])?;
    np.spec.disruption.consolidation_policy =
        outrigger_karpenter_api::v1::ConsolidationPolicy::WhenEmptyOrUnderutilized;
    let np = with_budget(np, "40%");
    pools.create(&PostParams::default(), &np).await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(&PostParams::default(), &inflate(&pool, 20, "1")?)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    all_running(&pods, 20, Duration::from_secs(60)).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let before = nodes_of(&nodes, &selector).await?;
    assert_eq!(before.len(), 7, "20 pods of 1 cpu: 7 nodes");
    let price_before = price(&before);

    // One pod that must not move.
    let keep = pods
        .list(&ListParams::default().labels("app=inflate"))
        .await?
        .items
        .into_iter()
        .next()
        .expect("a pod");
    let kept_node = keep
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .expect("bound");
    pods.patch(
        &keep.name_any(),
        &PatchParams::default(),
        // The highest deletion cost: the scale-down keeps it.
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
            "karpenter.sh/do-not-disrupt": "true",
            "controller.kubernetes.io/pod-deletion-cost": "1000",
        }}})),
    )
    .await?;

    // Sample how many of the pool's nodes are disrupted at once.
    let most = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let most = most.clone();
        let nodes = nodes.clone();
        let selector = selector.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(l) = nodes_of(&nodes, &selector).await {
                    let n = l.iter().filter(|n| disrupted(n)).count();
                    most.fetch_max(n, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    // Scale to 5 (the pod that must stay among them).
    deploys
        .patch(
            "inflate",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 5}})),
        )
        .await?;
    let started = Instant::now();
    let settled = eventually(
        "the pool consolidated to 3 nodes or fewer",
        Duration::from_secs(120),
        || async {
            let l = nodes_of(&nodes, &selector).await?;
            let running = running_inflate(&pods).await?;
            Ok((l.len() <= 3 && running == 5 && !l.iter().any(disrupted)).then_some(l))
        },
    )
    .await?;
    let took = started.elapsed();
    sampler.abort();
    let price_after = price(&settled);
    let most = most.load(Ordering::Relaxed);
    eprintln!(
        "consolidated 7 -> {} nodes in {took:?}; ${price_before:.4}/h -> ${price_after:.4}/h; at most {most} disrupted at once",
        settled.len()
    );
    if price_after >= price_before {
        bail!("the price did not fall: {price_before} -> {price_after}");
    }
    // 40 % of 7 initialized nodes, rounded up: 3 at a time.
    if most > 3 {
        bail!("{most} nodes were disrupted at once, the budget allows 3");
    }
    // The do-not-disrupt pod's node is still there, with its pod.
    if !settled.iter().any(|n| n.name_any() == kept_node) {
        bail!("{kept_node} (with a do-not-disrupt pod) was consolidated");
    }
    let p = pods.get(&keep.name_any()).await?;
    assert_eq!(
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some(kept_node.as_str())
    );
    // Its claim says why it stays (a DisruptionBlocked Event).
    let events: Api<Event> = Api::all(client.clone());
    let blocked: BTreeMap<String, String> = events
        .list(&ListParams::default().fields("reason=DisruptionBlocked"))
        .await?
        .items
        .into_iter()
        .map(|e| {
            (
                e.involved_object.name.clone().unwrap_or_default(),
                e.message.unwrap_or_default(),
            )
        })
        .collect();
    if !blocked
        .values()
        .any(|m| m.contains("do-not-disrupt") && m.contains(&keep.name_any()))
    {
        bail!(
            "no DisruptionBlocked event names {}: {blocked:?}",
            keep.name_any()
        );
    }
    // `outrigger why-kept` names the pod that keeps it.
    let why = env.run("outrigger", &["why-kept", &kept_node])?;
    eprintln!("{why}");
    if !(why.contains("do-not-disrupt") && why.contains(&keep.name_any())) {
        bail!("why-kept does not name the do-not-disrupt pod:\n{why}");
    }
    deploys.delete("inflate", &Default::default()).await?;
    pools.delete(&pool, &Default::default()).await?;
    ns.cleanup().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn drifted_nodes_are_replaced_one_at_a_time_each_replacement_first() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "drift").await?;
    let pool = format!("e2e-drift-{}", std::process::id());
    let selector = format!("karpenter.sh/nodepool={pool}");
    let pools: Api<NodePool> = Api::all(client.clone());
    // Consolidation off: drift is the only reason to disrupt; the default
    // budget (10%) lets one node go at a time.
    let mut np = nodepool(&pool, "Never", &["m6i.large", "m6i.xlarge"])?;
    np.spec.disruption.consolidation_policy =
        outrigger_karpenter_api::v1::ConsolidationPolicy::WhenEmptyOrUnderutilized;
    pools.create(&PostParams::default(), &np).await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(&PostParams::default(), &inflate(&pool, 6, "1")?)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    all_running(&pods, 6, Duration::from_secs(60)).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let before = nodes_of(&nodes, &selector).await?;
    assert_eq!(before.len(), 2, "6 pods of 1 cpu: 2 m6i.xlarge");
    let family = |n: &Node| {
        n.labels()["node.kubernetes.io/instance-type"]
            .split('.')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let ready = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let cordoned = |n: &Node| {
        n.spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
    };

    // The pool now wants m5 nodes: every m6i node has drifted.
    let mut spec = serde_json::to_value(&np.spec.template.spec.requirements)?;
    spec[1]["values"] = serde_json::json!(["m5.large", "m5.xlarge"]);
    pools
        .patch(
            &pool,
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"spec": {"template": {"spec": {"requirements": spec}}}}),
            ),
        )
        .await?;
    // Watch: how many old nodes drain at once, and whether a Ready new node
    // was there for each before it drained.
    let violations = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let most = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (violations, most, nodes, selector) = (
            violations.clone(),
            most.clone(),
            nodes.clone(),
            selector.clone(),
        );
        tokio::spawn(async move {
            let mut drained: std::collections::BTreeSet<String> = Default::default();
            loop {
                if let Ok(l) = nodes_of(&nodes, &selector).await {
                    let draining: Vec<&Node> = l
                        .iter()
                        .filter(|n| family(n) == "m6i" && cordoned(n))
                        .collect();
                    most.fetch_max(draining.len(), Ordering::Relaxed);
                    let new_ready = l.iter().filter(|n| family(n) == "m5" && ready(n)).count();
                    for n in draining {
                        if drained.insert(n.name_any())
                            && new_ready < drained.len()
                            && let Ok(mut v) = violations.lock()
                        {
                            v.push(format!(
                                "{} drained with {new_ready} new node(s) Ready for {} drained",
                                n.name_any(),
                                drained.len()
                            ));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let started = Instant::now();
    let after = eventually(
        "every node of the pool an m5",
        Duration::from_secs(180),
        || async {
            let l = nodes_of(&nodes, &selector).await?;
            let running = running_inflate(&pods).await?;
            Ok((!l.is_empty() && l.iter().all(|n| family(n) == "m5") && running == 6).then_some(l))
        },
    )
    .await?;
    let took = started.elapsed();
    sampler.abort();
    let most = most.load(Ordering::Relaxed);
    let violations = violations.lock().map(|v| v.clone()).unwrap_or_default();
    eprintln!(
        "drift: 2 m6i nodes -> {} m5 nodes in {took:?}; at most {most} draining at once",
        after.len()
    );
    if most > 1 {
        bail!("{most} nodes drained at once, the budget allows 1");
    }
    if !violations.is_empty() {
        bail!("a node drained before its replacement was Ready: {violations:?}");
    }
    deploys.delete("inflate", &Default::default()).await?;
    pools.delete(&pool, &Default::default()).await?;
    ns.cleanup().await?;
    Ok(())
}

fn claims_of(env: &outrigger_e2e::TestEnv, pool: &str) -> Result<Vec<String>> {
    Ok(env
        .run(
            "kubectl",
            &[
                "get",
                "nodeclaims",
                "-l",
                &format!("karpenter.sh/nodepool={pool}"),
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}",
            ],
        )?
        .lines()
        .map(str::to_string)
        .collect())
}

/// `expireAfter: 2m` with a budget of zero nodes: expiration is forceful,
/// every node is rotated anyway (its pods provisioned for as it drains).
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn expired_nodes_are_rotated_even_with_a_zero_budget() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "expire").await?;
    let pool = format!("e2e-expire-{}", std::process::id());
    let selector = format!("karpenter.sh/nodepool={pool}");
    let pools: Api<NodePool> = Api::all(client.clone());
    let mut np = nodepool(&pool, "Never", &["m6i.xlarge"])?;
    np.spec.disruption.consolidation_policy =
        outrigger_karpenter_api::v1::ConsolidationPolicy::WhenEmptyOrUnderutilized;
    let mut np = with_budget(np, "0");
    np.spec.template.spec.expire_after = Some("2m".into());
    pools.create(&PostParams::default(), &np).await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(&PostParams::default(), &inflate(&pool, 4, "1")?)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    all_running(&pods, 4, Duration::from_secs(60)).await?;
    let started = Instant::now();
    let nodes: Api<Node> = Api::all(client.clone());
    let before: Vec<String> = nodes_of(&nodes, &selector)
        .await?
        .iter()
        .map(|n| n.name_any())
        .collect();
    let old_claims = claims_of(env, &pool)?;
    assert_eq!(before.len(), 2, "4 pods of 1 cpu on m6i.xlarge: 2 nodes");
    // Before 2 minutes, nothing moves (the budget is zero, consolidation
    // off).
    tokio::time::sleep(Duration::from_secs(60)).await;
    let still: Vec<String> = nodes_of(&nodes, &selector)
        .await?
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert_eq!(still, before, "nodes changed before they expired");
    let after =
        eventually(
            "every node rotated, the pods running",
            Duration::from_secs(150),
            || async {
                let l = nodes_of(&nodes, &selector).await?;
                let running = running_inflate(&pods).await?;
                Ok((!l.is_empty()
                    && l.iter().all(|n| !before.contains(&n.name_any()))
                    && running == 4)
                    .then_some(l))
            },
        )
        .await?;
    let took = started.elapsed();
    let log = std::fs::read_to_string(env.state.join("logs/outrigger-provisioner.log"))?;
    for c in &old_claims {
        if !log.lines().any(|l| {
            l.contains("\"message\":\"deleting expired nodeclaim\"")
                && l.contains(&format!("\"nodeclaim\":\"{c}\""))
        }) {
            bail!("no \"deleting expired nodeclaim\" for {c}");
        }
    }
    eprintln!(
        "expiration: {} nodes rotated to {} new ones {took:?} after the pods ran (expireAfter 2m, budget 0)",
        before.len(),
        after.len()
    );
    deploys.delete("inflate", &Default::default()).await?;
    pools.delete(&pool, &Default::default()).await?;
    ns.cleanup().await?;
    Ok(())
}

/// A budget of zero nodes during a schedule window blocks consolidation
/// and drift, and `why-kept` says until when; lifting it lets both go.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn a_zero_budget_in_its_window_blocks_consolidation_and_drift() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "window").await?;
    let pool = format!("e2e-window-{}", std::process::id());
    let selector = format!("karpenter.sh/nodepool={pool}");
    let pools: Api<NodePool> = Api::all(client.clone());
    let mut np = nodepool(&pool, "0s", &["m6i.large", "m6i.xlarge"])?;
    np.spec.disruption.consolidation_policy =
        outrigger_karpenter_api::v1::ConsolidationPolicy::WhenEmptyOrUnderutilized;
    // A window that opens every hour for an hour: always open.
    np.spec.disruption.budgets = vec![outrigger_karpenter_api::v1::Budget {
        reasons: vec![],
        nodes: "0".into(),
        schedule: Some("0 * * * *".into()),
        duration: Some("1h".into()),
    }];
    pools.create(&PostParams::default(), &np).await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(&PostParams::default(), &inflate(&pool, 6, "1")?)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    all_running(&pods, 6, Duration::from_secs(60)).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let before: Vec<String> = nodes_of(&nodes, &selector)
        .await?
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert_eq!(before.len(), 2, "6 pods of 1 cpu: 2 m6i.xlarge");
    // Over-provisioned (one pod left) and drifted (the pool wants m5 now).
    deploys
        .patch(
            "inflate",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 1}})),
        )
        .await?;
    let mut reqs = serde_json::to_value(&np.spec.template.spec.requirements)?;
    reqs[1]["values"] = serde_json::json!(["m5.large", "m5.xlarge"]);
    pools
        .patch(
            &pool,
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"spec": {"template": {"spec": {"requirements": reqs}}}}),
            ),
        )
        .await?;
    // Two disruption periods and a validation later, nothing moved.
    tokio::time::sleep(Duration::from_secs(40)).await;
    let held: Vec<String> = nodes_of(&nodes, &selector)
        .await?
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert_eq!(held, before, "a node was disrupted with a zero budget");
    let why = env.run("outrigger", &["why-kept", &before[0]])?;
    eprintln!("{why}");
    if !(why.contains("allows no")
        && why.contains("schedule \"0 * * * *\"")
        && why.contains("until"))
    {
        bail!("why-kept does not name the budget and its window:\n{why}");
    }
    // The window lifted: the pool shrinks to one m5 node.
    pools
        .patch(
            &pool,
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"spec": {"disruption": {"budgets": [{"nodes": "100%"}]}}}),
            ),
        )
        .await?;
    let started = Instant::now();
    let after = eventually(
        "one m5 node left, the pod running",
        Duration::from_secs(120),
        || async {
            let l = nodes_of(&nodes, &selector).await?;
            let running = running_inflate(&pods).await?;
            Ok((l.len() == 1
                && l[0].labels()["node.kubernetes.io/instance-type"].starts_with("m5.")
                && running == 1)
                .then_some(l))
        },
    )
    .await?;
    eprintln!(
        "budget window: 2 nodes held 40 s; lifted, {} node ({}) {:?} later",
        after.len(),
        after[0].labels()["node.kubernetes.io/instance-type"],
        started.elapsed()
    );
    deploys.delete("inflate", &Default::default()).await?;
    pools.delete(&pool, &Default::default()).await?;
    ns.cleanup().await?;
    Ok(())
}

/// Karpenter AWS's static drift: an EC2NodeClass whose tags change (a
/// field of its static hash) drifts the claims launched from it
/// (`NodeClassDrift`); they are replaced by instances launched from the
/// new class, the old instances terminated.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn an_ec2nodeclass_change_drifts_its_nodes_and_they_are_replaced() -> Result<()> {
    use outrigger_karpenter_api::{nodeclass::EC2NodeClass, v1::NodeClaim};
    let env = env();
    let client = env.client().await?;
    let cluster = env.vars["CLUSTER_NAME"].clone();
    let ns = TestNamespace::new(&client, "drift-aws").await?;
    let name = format!("e2e-drift-aws-{}", std::process::id());
    let selector = format!("karpenter.sh/nodepool={name}");
    let classes: Api<EC2NodeClass> = Api::all(client.clone());
    let class: EC2NodeClass = serde_json::from_value(serde_json::json!({
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": name},
        "spec": {
            "role": format!("KarpenterNodeRole-{cluster}"),
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": cluster}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": cluster}}],
            "tags": {"team": "blue"}
        }
    }))?;
    classes.create(&PostParams::default(), &class).await?;
    let mut np = nodepool(&name, "Never", &["m6i.large", "m6i.xlarge"])?;
    np.spec.template.spec.node_class_ref = outrigger_karpenter_api::v1::NodeClassReference {
        group: "karpenter.k8s.aws".into(),
        kind: "EC2NodeClass".into(),
        name: name.clone(),
    };
    np.spec.disruption.consolidation_policy =
        outrigger_karpenter_api::v1::ConsolidationPolicy::WhenEmptyOrUnderutilized;
    let pools: Api<NodePool> = Api::all(client.clone());
    pools.create(&PostParams::default(), &np).await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(&PostParams::default(), &inflate(&name, 2, "1")?)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    all_running(&pods, 2, Duration::from_secs(120)).await?;
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let before = claims
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    assert_eq!(before.len(), 1, "2 pods of 1 cpu: one m6i.xlarge");
    let old = before[0].name_any();
    let stamped = before[0]
        .annotations()
        .get("karpenter.k8s.aws/ec2nodeclass-hash")
        .cloned();
    assert!(stamped.is_some(), "{:?}", before[0].annotations());
    let image = before[0].status.as_ref().and_then(|s| s.image_id.clone());
    assert!(image.is_some_and(|i| i.starts_with("ami-")));
    let old_instances = pool_instance_ids(env, &name, "pending,running")?;
    assert_eq!(old_instances.len(), 1);

    // A static field changes: the class's hash, then the claim drifts.
    classes
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"tags": {"team": "green"}}})),
        )
        .await?;
    eventually(
        "the claim Drifted (NodeClassDrift)",
        Duration::from_secs(60),
        || async {
            let c = match claims.get_opt(&old).await? {
                Some(c) => c,
                // Already replaced between two looks.
                None => return Ok(Some(())),
            };
            let drifted = c.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|x| {
                    x.type_ == "Drifted" && x.status == "True" && x.reason == "NodeClassDrift"
                })
            });
            Ok(drifted.then_some(()))
        },
    )
    .await?;
    // Replaced: a new claim stamped with the new hash, the pods running,
    // the old instance terminated.
    let new_hash = eventually(
        "the old claim replaced",
        Duration::from_secs(180),
        || async {
            let l = claims
                .list(&ListParams::default().labels(&selector))
                .await?
                .items;
            let running = running_inflate(&pods).await?;
            Ok(
                (running == 2 && !l.is_empty() && l.iter().all(|c| c.name_any() != old)).then(
                    || {
                        l[0].annotations()
                            .get("karpenter.k8s.aws/ec2nodeclass-hash")
                            .cloned()
                    },
                ),
            )
        },
    )
    .await?;
    assert!(
        new_hash.is_some() && new_hash != stamped,
        "{new_hash:?} vs {stamped:?}"
    );
    eventually(
        "the old instance terminated",
        Duration::from_secs(60),
        || async {
            let live =
                pool_instance_ids(env, &name, "pending,running,stopping,stopped,shutting-down")?;
            Ok((!live.iter().any(|i| old_instances.contains(i))).then_some(()))
        },
    )
    .await?;
    deploys.delete("inflate", &Default::default()).await?;
    pools.delete(&name, &Default::default()).await?;
    eventually(
        "the pool's instances terminated",
        Duration::from_secs(90),
        || async {
            let live =
                pool_instance_ids(env, &name, "pending,running,stopping,stopped,shutting-down")?;
            Ok(live.is_empty().then_some(()))
        },
    )
    .await?;
    classes.delete(&name, &Default::default()).await?;
    ns.cleanup().await?;
    Ok(())
}

fn pool_instance_ids(
    env: &outrigger_e2e::TestEnv,
    pool: &str,
    states: &str,
) -> Result<Vec<String>> {
    Ok(outrigger_e2e::karpenter::pool_instances(env, pool, states)?
        .iter()
        .filter_map(|i| i["InstanceId"].as_str().map(str::to_string))
        .collect())
}
