//! `outrigger cluster-autoscaler` against the local environment, with the
//! walkthrough's setup: the managed node group `ng-1` (an Auto Scaling group
//! of m5.large in moto, min 3, max 10, tagged for discovery), the
//! autoscaler started with upstream's autodiscover flags under its own
//! service account (deploy/cluster-autoscaler/rbac.yaml), and the
//! walkthrough's nginx-ca.yaml.

#![allow(clippy::unwrap_used)]

use std::{
    process::{Child, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Pod};
use kube::{
    Api,
    api::{DeleteParams, ListParams},
};
use outrigger_e2e::{TestEnv, TestNamespace, env, eventually, free_port};

const GROUP: &str = "eks-ng-1-demo";
/// One autoscaler at a time acts on the group.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const NODEGROUP: &str = "eks.amazonaws.com/nodegroup=ng-1";

/// The autoscaler, killed when dropped.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the autoscaler as upstream's manifest does (plus short times).
fn start(env: &TestEnv, port: u16, lease: &str, extra: &[&str]) -> Result<Proc> {
    let kubeconfig = env.state.join("cluster-autoscaler.kubeconfig");
    let log = std::fs::File::create(env.state.join(format!("logs/e2e-{lease}.log")))?;
    let mut args: Vec<String> = [
        "cluster-autoscaler",
        "--kubeconfig",
        kubeconfig.to_str().context("kubeconfig path")?,
        "--admin-address",
        &format!("127.0.0.1:{port}"),
        "--leader-elect-namespace",
        "kube-system",
        "--leader-elect-lease-name",
        lease,
        "--v=4",
        "--stderrthreshold=info",
        "--cloud-provider=aws",
        "--skip-nodes-with-local-storage=false",
        "--expander=least-waste",
        "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/demo",
        "--scan-interval=2s",
        "--scale-down-unneeded-time=10s",
        "--scale-down-delay-after-add=5s",
        "--scale-down-delay-after-delete=2s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = env
        .command("outrigger")
        .args(&args)
        .stdout(log.try_clone()?)
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting outrigger cluster-autoscaler")?;
    Ok(Proc(child))
}

/// The group's desired capacity in moto.
fn desired(env: &TestEnv) -> Result<i64> {
    let out = env.aws(&[
        "autoscaling",
        "describe-auto-scaling-groups",
        "--auto-scaling-group-names",
        GROUP,
        "--query",
        "AutoScalingGroups[0].DesiredCapacity",
        "--output",
        "text",
    ])?;
    out.trim().parse().context("desired capacity")
}

/// Waits until `n` nginx pods run.
async fn all_running(pods: &Api<Pod>, n: usize, timeout: Duration) -> Result<()> {
    outrigger_e2e::karpenter::running_with(pods, "app=nginx", n, timeout).await
}

async fn group_nodes(nodes: &Api<Node>) -> Result<usize> {
    Ok(nodes
        .list(&ListParams::default().labels(NODEGROUP))
        .await?
        .items
        .iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .count())
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn the_seeds_nginx_scales_the_node_group_out_and_back_in() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "ca-seed").await?;
    let nodes: Api<Node> = Api::all(client.clone());
    assert_eq!(desired(env)?, 3, "the walkthrough's group starts at 3");
    let port = free_port();
    let _ca = start(env, port, &format!("e2e-ca-{}", std::process::id()), &[])?;
    let file = env.repo.join("deploy/examples/nginx-ca.yaml");
    env.run(
        "kubectl",
        &[
            "apply",
            "-n",
            &ns.name,
            "-f",
            file.to_str().context("path")?,
        ],
    )?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    all_running(&pods, 1, Duration::from_secs(60)).await?;
    env.run(
        "kubectl",
        &[
            "scale",
            "-n",
            &ns.name,
            "--replicas=20",
            "deployment/nginx-to-scaleout",
        ],
    )?;
    all_running(&pods, 20, Duration::from_secs(120)).await?;
    let grown = desired(env)?;
    assert!(grown > 3, "the group grew: desired {grown}");
    eventually(
        "every instance registered",
        Duration::from_secs(30),
        || async { Ok((group_nodes(&nodes).await? as i64 == desired(env)?).then_some(())) },
    )
    .await?;
    // What users see: Events on the pods, the status ConfigMap.
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let triggered = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("TriggeredScaleUp"))
        .collect::<Vec<_>>();
    assert!(!triggered.is_empty(), "TriggeredScaleUp events");
    // One scale-up or several (pods seen pending in more than one loop):
    // each names the group, from and to, and its maximum.
    for e in &triggered {
        let note = e.message.clone().unwrap_or_default();
        assert!(
            note.starts_with("pod triggered scale-up: [{eks-ng-1-demo ")
                && note.ends_with(" (max: 10)}]"),
            "{note}"
        );
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let status = cms
        .get("cluster-autoscaler-status")
        .await?
        .data
        .unwrap_or_default()
        .remove("status")
        .unwrap_or_default();
    for line in [
        "autoscalerStatus: Running",
        "- name: eks-ng-1-demo",
        "    minSize: 3",
        "    maxSize: 10",
    ] {
        assert!(status.lines().any(|l| l == line), "{line:?} in\n{status}");
    }
    // The workload goes: back to the walkthrough's three nodes, the added
    // instances terminated through the group.
    env.run(
        "kubectl",
        &[
            "delete",
            "-n",
            &ns.name,
            "-f",
            file.to_str().context("path")?,
        ],
    )?;
    eventually("back to 3 nodes", Duration::from_secs(120), || async {
        let (d, n) = (desired(env)?, group_nodes(&nodes).await?);
        Ok((d == 3 && n == 3).then_some(()))
    })
    .await?;
    let running = env.aws(&[
        "ec2",
        "describe-instances",
        "--filters",
        &format!("Name=tag:aws:autoscaling:groupName,Values={GROUP}"),
        "Name=instance-state-name,Values=pending,running",
        "--query",
        "length(Reservations[].Instances[])",
        "--output",
        "text",
    ])?;
    if running.trim() != "3" {
        bail!("the group's live instances: {running}");
    }
    ns.cleanup().await?;
    Ok(())
}

/// A pod no group can fit is told why, per group, and nothing scales.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn a_pod_no_group_can_fit_is_told_why() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "ca-keep").await?;
    let port = free_port();
    let _ca = start(
        env,
        port,
        &format!("e2e-ca-keep-{}", std::process::id()),
        &[],
    )?;
    // 64 cpu: no m5.large takes it.
    env.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: huge, namespace: {ns}}}
spec:
  containers:
  - {{name: c, image: pause, resources: {{requests: {{cpu: "64"}}}}}}
"#,
        ns = ns.name
    ))?;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let note = eventually(
        "NotTriggerScaleUp on the pod",
        Duration::from_secs(60),
        || async {
            Ok(events
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("NotTriggerScaleUp"))
                .and_then(|e| e.message))
        },
    )
    .await?;
    assert!(
        note.starts_with("pod didn't trigger scale-up: ")
            && note.contains("eks-ng-1-demo")
            && note.contains("cpu"),
        "{note}"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    pods.delete("huge", &DeleteParams::default()).await?;
    assert_eq!(desired(env)?, 3);
    ns.cleanup().await?;
    Ok(())
}
