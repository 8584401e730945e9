//! The provisioner killed (SIGKILL) in the middle of a scale-up and started
//! again ends with the same nodes and nothing leaked. Its own test binary:
//! it restarts the environment's provisioner, which the other provisioner
//! tests must not see.

use std::{process::Command, time::Duration};

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
    TestNamespace, env, eventually,
    karpenter::{
        all_running, first_claim, inflate, inflate_on_provisioner, nodepool, nodes_of,
        pool_instances, seed_provisioner, until_no_instances, until_no_nodes, with_budget,
    },
};
use outrigger_karpenter_api::{
    v1::{NodeClaim, NodePool},
    v1alpha5::Provisioner,
};

/// The tests here restart the environment's provisioner: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// SIGKILL to the environment's provisioner, then the environment's
/// components script starts it again.
fn kill_and_restart() -> Result<()> {
    let env = env();
    let pid_file = env.state.join("pids/outrigger-provisioner.pid");
    let pid = std::fs::read_to_string(&pid_file)
        .context("the environment's provisioner pid")?
        .trim()
        .to_string();
    let killed = Command::new("kill").args(["-9", &pid]).status()?;
    if !killed.success() {
        bail!("kill -9 {pid} failed");
    }
    let started = env
        .command("bash")
        .arg(env.repo.join("testenv/scripts/components.sh"))
        .arg("up")
        .output()?;
    if !started.status.success() {
        bail!(
            "restarting the components failed: {}",
            String::from_utf8_lossy(&started.stderr)
        );
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn a_killed_provisioner_resumes_without_leaks() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "restart").await?;
    let pool = format!("e2e-restart-{}", std::process::id());
    let selector = format!("karpenter.sh/nodepool={pool}");
    let pools: Api<NodePool> = Api::all(client.clone());
    pools
        .create(
            &PostParams::default(),
            &with_budget(nodepool(&pool, "5s", &["m6i.xlarge"])?, "100%"),
        )
        .await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(&PostParams::default(), &inflate(&pool, 20, "1")?)
        .await?;
    // Kill it as soon as it has created the first claim.
    let claims: Api<NodeClaim> = Api::all(client.clone());
    first_claim(&claims, &selector).await?;
    kill_and_restart()?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    all_running(&pods, 20, Duration::from_secs(90)).await?;
    // Three cpu-1 pods per m6i.xlarge: 7 nodes, 7 claims, each claim with
    // its node and no node without a claim. Pods run as soon as the node
    // exists; the claim records its node when the lifecycle controller sees
    // it, a moment later, hence the wait.
    let nodes: Api<Node> = Api::all(client.clone());
    eventually(
        "7 nodes, each with its nodeclaim",
        Duration::from_secs(30),
        || async {
            let node_names: Vec<String> = nodes_of(&nodes, &selector)
                .await?
                .iter()
                .map(|n| n.name_any())
                .collect();
            let claim_nodes: Vec<Option<String>> = claims
                .list(&ListParams::default().labels(&selector))
                .await?
                .items
                .iter()
                .map(|c| c.status.as_ref().and_then(|s| s.node_name.clone()))
                .collect();
            let orphans: Vec<&String> = node_names
                .iter()
                .filter(|n| !claim_nodes.iter().any(|c| c.as_deref() == Some(n.as_str())))
                .collect();
            if node_names.len() != 7 || claim_nodes.len() != 7 || !orphans.is_empty() {
                bail!("nodes {node_names:?}, claims' nodes {claim_nodes:?}, orphans {orphans:?}");
            }
            Ok(Some(()))
        },
    )
    .await?;
    deploys.delete("inflate", &DeleteParams::default()).await?;
    until_no_nodes(&nodes, &selector, Duration::from_secs(60)).await?;
    pools.delete(&pool, &DeleteParams::default()).await?;
    ns.cleanup().await?;
    Ok(())
}

/// The same on the AWS provider (moto): the seed's Provisioner, killed after
/// its first NodeClaim. An instance launched just before the kill whose
/// claim never learnt its id is an orphan the garbage collector terminates,
/// so the instances settle at one per claim; after the deployment goes,
/// none is left.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn a_killed_provisioner_leaks_no_instance() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "restart-aws").await?;
    let name = format!("e2e-restart-aws-{}", std::process::id());
    let provisioners: Api<Provisioner> = Api::all(client.clone());
    let mut p = seed_provisioner(env, &name)?;
    p.spec.ttl_seconds_after_empty = Some(5);
    provisioners.create(&PostParams::default(), &p).await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(
            &PostParams::default(),
            &inflate_on_provisioner(&name, 20, "1")?,
        )
        .await?;
    let selector = format!("karpenter.sh/nodepool={name}");
    let claims: Api<NodeClaim> = Api::all(client.clone());
    first_claim(&claims, &selector).await?;
    kill_and_restart()?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    all_running(&pods, 20, Duration::from_secs(120)).await?;
    let instances = |states: &str| -> Result<Vec<(String, String)>> {
        Ok(pool_instances(env, &name, states)?
            .into_iter()
            .map(|i| {
                let tag = i["Tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|t| t["Key"] == "karpenter.sh/nodeclaim")
                    .and_then(|t| t["Value"].as_str())
                    .unwrap_or("")
                    .to_string();
                (i["InstanceId"].as_str().unwrap_or("").to_string(), tag)
            })
            .collect())
    };
    // 7 claims, 7 nodes, 7 live instances, each claim's instance its node's.
    let nodes: Api<Node> = Api::all(client.clone());
    eventually(
        "7 claims, nodes and instances, one of each per claim",
        Duration::from_secs(120),
        || async {
            let live = instances("pending,running")?;
            let all_claims = claims
                .list(&ListParams::default().labels(&selector))
                .await?
                .items;
            let node_ids: Vec<String> = nodes_of(&nodes, &selector)
                .await?
                .iter()
                .filter_map(|n| n.spec.as_ref()?.provider_id.clone())
                .collect();
            let claimed: Vec<String> = all_claims
                .iter()
                .filter_map(|c| c.status.as_ref()?.provider_id.clone())
                .collect();
            let unclaimed: Vec<&(String, String)> = live
                .iter()
                .filter(|(id, _)| !claimed.iter().any(|p| p.ends_with(&format!("/{id}"))))
                .collect();
            if live.len() != 7
                || all_claims.len() != 7
                || node_ids.len() != 7
                || !unclaimed.is_empty()
                || claimed.iter().any(|p| !node_ids.contains(p))
            {
                bail!(
                    "{} instances ({} without a claim: {unclaimed:?}), {} claims, {} nodes",
                    live.len(),
                    unclaimed.len(),
                    all_claims.len(),
                    node_ids.len()
                );
            }
            Ok(Some(()))
        },
    )
    .await?;
    deploys.delete("inflate", &DeleteParams::default()).await?;
    let provisioner_nodes = format!("karpenter.sh/provisioner-name={name}");
    until_no_nodes(&nodes, &provisioner_nodes, Duration::from_secs(90)).await?;
    until_no_instances(env, &name, Duration::from_secs(60)).await?;
    provisioners.delete(&name, &DeleteParams::default()).await?;
    ns.cleanup().await?;
    Ok(())
}
