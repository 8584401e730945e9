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

/// The autoscaler, killed when dropped; its soft taints (which a killed
/// upstream leaves too) are taken off, so the next tests see plain nodes.
struct Proc(Child, &'static TestEnv);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = self.1.run(
            "kubectl",
            &[
                "taint",
                "nodes",
                "--all",
                "DeletionCandidateOfClusterAutoscaler-",
            ],
        );
    }
}

/// Starts the autoscaler as upstream's manifest does (plus short times).
fn start(env: &'static TestEnv, port: u16, lease: &str, extra: &[&str]) -> Result<Proc> {
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
    Ok(Proc(child, env))
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
    back_to_three(env, &nodes).await?;
    let running = live_instances(env)?;
    if running != "3" {
        bail!("the group's live instances: {running}");
    }
    // Every AWS call of the scale-out and scale-in is one the walkthrough's
    // IAM policy (deploy/iam/cluster-autoscaler.json) allows.
    eprintln!(
        "{}",
        outrigger_e2e::iam::check_calls("cluster-autoscaler", port, "cluster-autoscaler.json")
            .await?
    );
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

/// The group's live (pending or running) instances in moto.
fn live_instances(env: &TestEnv) -> Result<String> {
    Ok(env
        .aws(&[
            "ec2",
            "describe-instances",
            "--filters",
            &format!("Name=tag:aws:autoscaling:groupName,Values={GROUP}"),
            "Name=instance-state-name,Values=pending,running",
            "--query",
            "length(Reservations[].Instances[])",
            "--output",
            "text",
        ])?
        .trim()
        .to_string())
}

/// Nodes carrying `ToBeDeletedByClusterAutoscaler`.
async fn tainted_for_deletion(nodes: &Api<Node>) -> Result<Vec<String>> {
    Ok(nodes
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|n| {
            n.spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|ts| ts.iter().any(|t| t.key == "ToBeDeletedByClusterAutoscaler"))
        })
        .filter_map(|n| n.metadata.name.clone())
        .collect())
}

/// Waits until the group is back to the walkthrough's 3 (desired and
/// registered nodes).
async fn back_to_three(env: &TestEnv, nodes: &Api<Node>) -> Result<()> {
    eventually("back to 3 nodes", Duration::from_secs(120), || async {
        Ok((desired(env)? == 3 && group_nodes(nodes).await? == 3).then_some(()))
    })
    .await
}

/// The group's nodes' names.
async fn group_node_names(nodes: &Api<Node>) -> Result<Vec<String>> {
    Ok(nodes
        .list(&ListParams::default().labels(NODEGROUP))
        .await?
        .items
        .iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter_map(|n| n.metadata.name.clone())
        .collect())
}

/// nginx-ca.yaml in `ns`, scaled to `replicas`, every pod running.
async fn nginx(env: &TestEnv, pods: &Api<Pod>, ns: &str, replicas: usize) -> Result<()> {
    let file = env.repo.join("deploy/examples/nginx-ca.yaml");
    env.run(
        "kubectl",
        &["apply", "-n", ns, "-f", file.to_str().context("path")?],
    )?;
    env.run(
        "kubectl",
        &[
            "scale",
            "-n",
            ns,
            &format!("--replicas={replicas}"),
            "deployment/nginx-to-scaleout",
        ],
    )?;
    all_running(pods, replicas, Duration::from_secs(120)).await
}

/// A one-replica Deployment bound to `node`, with these pod annotations.
fn keeper(ns: &str, name: &str, node: &str, annotations: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{{annotations}}}
    spec:
      nodeName: {node}
      containers:
      - {{name: c, image: pause, resources: {{requests: {{cpu: 100m}}}}}}
"#
    )
}

/// A pod annotated `safe-to-evict: "false"`, a node annotated
/// `scale-down-disabled`, and a pod whose PDB allows no disruption each
/// keep their node when everything else scales in; without them, the
/// group goes back to its minimum.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn safe_to_evict_scale_down_disabled_and_pdbs_keep_nodes() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "ca-keep").await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let before = group_node_names(&nodes).await?;
    let _ca = start(
        env,
        free_port(),
        &format!("e2e-ca-keepers-{}", std::process::id()),
        &[],
    )?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    nginx(env, &pods, &ns.name, 20).await?;
    let added: Vec<String> = group_node_names(&nodes)
        .await?
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    if added.len() < 3 {
        bail!("expected at least 3 new nodes, got {added:?}");
    }
    let (a, b, c) = (&added[0], &added[1], &added[2]);
    env.apply(&keeper(
        &ns.name,
        "not-safe",
        a,
        r#"cluster-autoscaler.kubernetes.io/safe-to-evict: "false""#,
    ))?;
    env.run(
        "kubectl",
        &[
            "annotate",
            "node",
            b,
            "cluster-autoscaler.kubernetes.io/scale-down-disabled=true",
        ],
    )?;
    env.apply(&keeper(&ns.name, "budgeted", c, ""))?;
    env.apply(&format!(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {{name: budgeted, namespace: {}}}\nspec:\n  minAvailable: 1\n  selector: {{matchLabels: {{app: budgeted}}}}\n",
        ns.name
    ))?;
    env.run(
        "kubectl",
        &["delete", "-n", &ns.name, "deployment/nginx-to-scaleout"],
    )?;
    // Scale-in settles with the three kept.
    eventually(
        "scale-in down to the kept nodes",
        Duration::from_secs(120),
        || async {
            let names = group_node_names(&nodes).await?;
            let d = desired(env)?;
            Ok((d == names.len() as i64 && d <= 5).then_some(names))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let names = group_node_names(&nodes).await?;
    for kept in [a, b, c] {
        assert!(names.contains(kept), "{kept} was removed: {names:?}");
    }
    // Without them: back to the minimum.
    env.run(
        "kubectl",
        &[
            "annotate",
            "node",
            b,
            "cluster-autoscaler.kubernetes.io/scale-down-disabled-",
        ],
    )?;
    env.run(
        "kubectl",
        &[
            "delete",
            "-n",
            &ns.name,
            "deployment/not-safe",
            "deployment/budgeted",
            "pdb/budgeted",
        ],
    )?;
    back_to_three(env, &nodes).await?;
    ns.cleanup().await?;
    Ok(())
}

/// A group at its maximum says so on the pods it cannot take.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn a_group_at_its_maximum_says_so() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "ca-max").await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let _ca = start(
        env,
        free_port(),
        &format!("e2e-ca-max-{}", std::process::id()),
        &[],
    )?;
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
    env.run(
        "kubectl",
        &[
            "scale",
            "-n",
            &ns.name,
            "--replicas=45",
            "deployment/nginx-to-scaleout",
        ],
    )?;
    eventually("the group at 10", Duration::from_secs(120), || async {
        Ok((desired(env)? == 10 && group_nodes(&nodes).await? == 10).then_some(()))
    })
    .await?;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let note = eventually(
        "NotTriggerScaleUp naming the maximum",
        Duration::from_secs(60),
        || async {
            Ok(events
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("NotTriggerScaleUp"))
                .filter_map(|e| e.message)
                .find(|m| m.contains("max node group size reached")))
        },
    )
    .await?;
    assert!(note.contains("(eks-ng-1-demo)"), "{note}");
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
    back_to_three(env, &nodes).await?;
    ns.cleanup().await?;
    Ok(())
}

/// Killed while scaling in and started again: no instance lost or
/// doubled, no ToBeDeletedByClusterAutoscaler taint left, back to 3.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn a_killed_autoscaler_finishes_the_scale_in_cleanly() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "ca-kill").await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let lease = format!("e2e-ca-kill-{}", std::process::id());
    let ca = start(env, free_port(), &lease, &[])?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    nginx(env, &pods, &ns.name, 20).await?;
    env.run(
        "kubectl",
        &["delete", "-n", &ns.name, "deployment/nginx-to-scaleout"],
    )?;
    // Kill it as soon as a node is tainted for deletion.
    eventually(
        "a node tainted for deletion",
        Duration::from_secs(90),
        || async { Ok((!tainted_for_deletion(&nodes).await?.is_empty()).then_some(())) },
    )
    .await?;
    drop(ca);
    let _again = start(env, free_port(), &format!("{lease}-again"), &[])?;
    eventually(
        "back to 3 nodes and 3 instances",
        Duration::from_secs(150),
        || async {
            let d = desired(env)?;
            let n = group_nodes(&nodes).await?;
            let live = live_instances(env)?;
            Ok((d == 3 && n == 3 && live == "3").then_some(()))
        },
    )
    .await?;
    let tainted = tainted_for_deletion(&nodes).await?;
    assert!(tainted.is_empty(), "left tainted: {tainted:?}");
    ns.cleanup().await?;
    Ok(())
}

/// The kwok provider, no cloud: a group of kwok nodes declared in
/// upstream's kwok-provider ConfigMaps grows for pods that select it and
/// goes back to zero.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn a_kwok_group_scales_out_and_in_without_a_cloud() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "ca-kwok").await?;
    let group = format!("e2e-kwok-{}", std::process::id());
    let templates = format!("e2e-kwok-templates-{}", std::process::id());
    env.apply(&format!(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: kwok-provider-config, namespace: kube-system}}
data:
  config: |
    apiVersion: v1alpha1
    readNodesFrom: configmap
    nodegroups:
      fromNodeLabelKey: kwok-nodegroup
    nodes:
      skipTaint: true
    configmap:
      name: {templates}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: {templates}, namespace: kube-system}}
data:
  templates: |
    apiVersion: v1
    kind: Node
    metadata:
      name: {group}-template
      labels:
        kwok-nodegroup: {group}
        kubernetes.io/os: linux
        kubernetes.io/arch: amd64
        node.kubernetes.io/instance-type: kwok.medium
        topology.kubernetes.io/zone: ap-southeast-1a
      annotations:
        cluster-autoscaler.kwok.nodegroup/min-count: "0"
        cluster-autoscaler.kwok.nodegroup/max-count: "4"
    status:
      capacity: {{cpu: "4", memory: 16Gi, pods: "110"}}
      allocatable: {{cpu: "4", memory: 16Gi, pods: "110"}}
"#
    ))?;
    let _ca = start(
        env,
        free_port(),
        &format!("e2e-ca-kwok-{}", std::process::id()),
        &["--cloud-provider=kwok"],
    )?;
    env.apply(&format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: on-kwok, namespace: {ns}}}
spec:
  replicas: 6
  selector: {{matchLabels: {{app: on-kwok}}}}
  template:
    metadata:
      labels: {{app: on-kwok}}
    spec:
      nodeSelector: {{kwok-nodegroup: {group}}}
      containers:
      - {{name: c, image: pause, resources: {{requests: {{cpu: "1"}}}}}}
"#,
        ns = ns.name
    ))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    outrigger_e2e::karpenter::running_with(&pods, "app=on-kwok", 6, Duration::from_secs(90))
        .await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let selector = format!("kwok-nodegroup={group}");
    let n = nodes
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .len();
    // Four cpus a node, 155m of daemonsets: three 1-cpu pods each.
    assert_eq!(n, 2, "kwok nodes of the group");
    env.run("kubectl", &["delete", "-n", &ns.name, "deployment/on-kwok"])?;
    eventually(
        "the kwok group back to zero",
        Duration::from_secs(90),
        || async {
            let n = nodes
                .list(&ListParams::default().labels(&selector))
                .await?
                .items
                .len();
            Ok((n == 0).then_some(()))
        },
    )
    .await?;
    env.run(
        "kubectl",
        &[
            "delete",
            "-n",
            "kube-system",
            "configmap/kwok-provider-config",
            &format!("configmap/{templates}"),
        ],
    )?;
    ns.cleanup().await?;
    Ok(())
}
