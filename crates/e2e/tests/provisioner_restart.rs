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
    karpenter::{all_running, inflate, nodepool, nodes_of, until_no_nodes},
};
use outrigger_karpenter_api::v1::{NodeClaim, NodePool};

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn a_killed_provisioner_resumes_without_leaks() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "restart").await?;
    let pool = format!("e2e-restart-{}", std::process::id());
    let selector = format!("karpenter.sh/nodepool={pool}");
    let pools: Api<NodePool> = Api::all(client.clone());
    pools
        .create(
            &PostParams::default(),
            &nodepool(&pool, "5s", &["m6i.xlarge"])?,
        )
        .await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(&PostParams::default(), &inflate(&pool, 20, "1")?)
        .await?;
    // Kill it as soon as it has created the first claim.
    let claims: Api<NodeClaim> = Api::all(client.clone());
    eventually("a first nodeclaim", Duration::from_secs(30), || async {
        let n = claims
            .list(&ListParams::default().labels(&selector))
            .await?
            .items
            .len();
        Ok((n > 0).then_some(()))
    })
    .await?;
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
