//! Shared pieces of the provisioner's cluster tests: a kwok NodePool, the
//! walkthrough's `inflate` Deployment pinned to it, and waits on both.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Node, Pod},
};
use kube::{Api, api::ListParams};
use outrigger_karpenter_api::{
    v1::{NodeClaim, NodePool},
    v1alpha5::Provisioner,
};

use crate::{TestEnv, eventually};

/// A v1 NodePool of spot kwok nodes of `types`, deleting empty nodes after
/// `consolidate_after`, at most 1000 cpu.
pub fn nodepool(name: &str, consolidate_after: &str, types: &[&str]) -> Result<NodePool> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {"spec": {
                "nodeClassRef": {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"},
                "requirements": [
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]},
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": types}
                ]
            }},
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": consolidate_after},
            "limits": {"cpu": "1000"}
        }
    }))?)
}

/// `np` with one disruption budget of `nodes` (a count or a percentage)
/// for every reason. Empty nodes go through the disruption controller within
/// the budget: Karpenter's default, 10%, takes a small pool's empty nodes
/// one decision (and one 15 s validation) at a time.
pub fn with_budget(mut np: NodePool, nodes: &str) -> NodePool {
    np.spec.disruption.budgets = vec![outrigger_karpenter_api::v1::Budget {
        reasons: vec![],
        nodes: nodes.into(),
        schedule: None,
        duration: None,
    }];
    np
}

/// The walkthrough's `inflate` Deployment, its pods pinned to `pool` (the
/// environment's other nodes and other tests' pools stay out of it).
pub fn inflate(pool: &str, replicas: i32, cpu: &str) -> Result<Deployment> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": "inflate"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "inflate"}},
            "template": {
                "metadata": {"labels": {"app": "inflate"}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
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

/// Waits until `n` inflate pods run.
pub async fn all_running(pods: &Api<Pod>, n: usize, timeout: Duration) -> Result<()> {
    running_with(pods, "app=inflate", n, timeout).await
}

/// Waits until `n` pods with these labels (`app=nginx`) run.
pub async fn running_with(
    pods: &Api<Pod>,
    labels: &str,
    n: usize,
    timeout: Duration,
) -> Result<()> {
    eventually(&format!("{n} {labels} pods running"), timeout, || async {
        let running = pods
            .list(&ListParams::default().labels(labels))
            .await?
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        Ok((running == n).then_some(()))
    })
    .await
}

/// The nodes carrying `selector` (a label selector such as
/// `karpenter.sh/nodepool=<pool>`).
pub async fn nodes_of(nodes: &Api<Node>, selector: &str) -> Result<Vec<Node>> {
    Ok(nodes
        .list(&ListParams::default().labels(selector))
        .await?
        .items)
}

/// Waits until no node carries `selector`.
pub async fn until_no_nodes(nodes: &Api<Node>, selector: &str, timeout: Duration) -> Result<()> {
    eventually("the pool's nodes deleted", timeout, || async {
        Ok(nodes_of(nodes, selector).await?.is_empty().then_some(()))
    })
    .await
}

/// Waits until no `inflate` pod is left.
pub async fn until_no_pods(pods: &Api<Pod>, timeout: Duration) -> Result<()> {
    eventually("inflate pods gone", timeout, || async {
        let left = pods
            .list(&ListParams::default().labels("app=inflate"))
            .await?
            .items
            .len();
        Ok((left == 0).then_some(()))
    })
    .await
}

/// Waits for the first NodeClaim carrying `selector`.
pub async fn first_claim(claims: &Api<NodeClaim>, selector: &str) -> Result<()> {
    eventually("a first nodeclaim", Duration::from_secs(30), || async {
        let n = claims
            .list(&ListParams::default().labels(selector))
            .await?
            .items
            .len();
        Ok((n > 0).then_some(()))
    })
    .await
}

/// The walkthrough's Provisioner (`deploy/examples/seed-provisioner.yaml`)
/// under another name.
pub fn seed_provisioner(env: &TestEnv, name: &str) -> Result<Provisioner> {
    let seed = std::fs::read_to_string(env.repo.join("deploy/examples/seed-provisioner.yaml"))?;
    let mut p: Provisioner = serde_saphyr::from_str(&seed)?;
    p.metadata.name = Some(name.to_string());
    Ok(p)
}

/// `inflate` pinned to a v1alpha5 Provisioner, the seed's way.
pub fn inflate_on_provisioner(name: &str, replicas: i32, cpu: &str) -> Result<Deployment> {
    let mut d = inflate(name, replicas, cpu)?;
    if let Some(spec) = d.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        spec.node_selector = Some(
            [(
                "karpenter.sh/provisioner-name".to_string(),
                name.to_string(),
            )]
            .into(),
        );
    }
    Ok(d)
}

/// moto's instances of a pool (tag `karpenter.sh/nodepool`) in `states`
/// (comma-separated), as the AWS CLI prints them.
pub fn pool_instances(env: &TestEnv, pool: &str, states: &str) -> Result<Vec<serde_json::Value>> {
    let out: serde_json::Value = serde_json::from_str(&env.aws(&[
        "ec2",
        "describe-instances",
        "--filters",
        &format!("Name=tag:karpenter.sh/nodepool,Values={pool}"),
        &format!("Name=instance-state-name,Values={states}"),
    ])?)?;
    Ok(out["Reservations"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["Instances"].as_array().cloned().unwrap_or_default())
        .collect())
}

/// Waits until none of a pool's instances is alive (any state short of
/// terminated).
pub async fn until_no_instances(env: &TestEnv, pool: &str, timeout: Duration) -> Result<()> {
    eventually("every instance terminated", timeout, || async {
        Ok(
            pool_instances(env, pool, "pending,running,stopping,stopped,shutting-down")?
                .is_empty()
                .then_some(()),
        )
    })
    .await
}

/// Deletes a test's v1alpha5 Provisioner (its NodeClaims, nodes and instances go
/// with it) and namespace when the test ends, also when it fails; on success
/// they are gone already.
pub struct Leftovers<'a> {
    pub env: &'a crate::TestEnv,
    pub provisioner: String,
    pub namespace: String,
}

impl Drop for Leftovers<'_> {
    fn drop(&mut self) {
        for (kind, name) in [
            ("namespace", &self.namespace),
            ("provisioners.karpenter.sh", &self.provisioner),
        ] {
            if let Err(e) = self.env.run(
                "kubectl",
                &["delete", kind, name, "--ignore-not-found", "--wait=false"],
            ) {
                eprintln!("deleting {kind} {name}: {e:#}");
            }
        }
    }
}
