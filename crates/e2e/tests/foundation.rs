//! Cluster tests of the foundation: the local environment and the shared
//! runtime. Run with `make test` (they need `testenv/`; `#[ignore]` keeps a bare
//! `cargo test` off any cluster).

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use k8s_openapi::api::{
    apps::v1::Deployment,
    coordination::v1::Lease,
    core::v1::{Node, Pod},
};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use outrigger_e2e::{TestNamespace, env, eventually, free_port, http_get};

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn deployment_of_three_becomes_ready_on_kwok_nodes() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "deploy").await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let d: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "pause"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "pause"}},
            "template": {
                "metadata": {"labels": {"app": "pause"}},
                "spec": {"containers": [{
                    "name": "pause",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
                }]}
            }
        }
    }))?;
    deploys.create(&PostParams::default(), &d).await?;
    eventually("deployment 3/3 ready", Duration::from_secs(60), || async {
        let d = deploys.get("pause").await?;
        let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
        Ok((ready == 3).then_some(()))
    })
    .await?;
    // Every pod runs on a kwok-managed node.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let nodes: Api<Node> = Api::all(client.clone());
    for p in pods
        .list(&ListParams::default().labels("app=pause"))
        .await?
    {
        let node = p.spec.and_then(|s| s.node_name).context("pod not bound")?;
        let n = nodes.get(&node).await?;
        let ann = n.metadata.annotations.unwrap_or_default();
        assert_eq!(
            ann.get("kwok.x-k8s.io/node").map(String::as_str),
            Some("fake"),
            "node {node}"
        );
    }
    ns.cleanup().await
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn nodes_are_realistic_and_server_is_pinned() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let v = client.apiserver_version().await?;
    let pinned = std::fs::read_to_string(env.repo.join("testenv/scripts/versions.sh"))?;
    let want = pinned
        .lines()
        .find_map(|l| l.strip_prefix("K8S_VERSION="))
        .context("K8S_VERSION")?;
    assert_eq!(v.git_version, format!("v{want}"));
    let nodes: Api<Node> = Api::all(client);
    let ng = nodes
        .list(&ListParams::default().labels("eks.amazonaws.com/nodegroup=ng-1"))
        .await?;
    assert!(
        ng.items.len() >= 3,
        "expected the 3 node-group nodes, got {}",
        ng.items.len()
    );
    for n in ng {
        let name = n.metadata.name.clone().unwrap_or_default();
        assert!(
            name.starts_with("ip-") && name.ends_with(".ap-southeast-1.compute.internal"),
            "{name}"
        );
        let spec = n.spec.context("spec")?;
        assert!(
            spec.provider_id
                .unwrap_or_default()
                .starts_with("aws:///ap-southeast-1")
        );
        let st = n.status.context("status")?;
        let alloc = st.allocatable.context("allocatable")?;
        // m5.large on the EKS AMI: 2 vCPU less 70m kube-reserved, 29 pods.
        assert_eq!(alloc["cpu"].0, "1930m");
        assert_eq!(alloc["pods"].0, "29");
        let labels = n.metadata.labels.unwrap_or_default();
        assert_eq!(labels["node.kubernetes.io/instance-type"], "m5.large");
        let ready = st
            .conditions
            .unwrap_or_default()
            .into_iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        assert!(ready, "{name} not Ready");
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn moto_has_the_seeded_subnets() -> Result<()> {
    let env = env();
    let out = env.aws(&[
        "ec2",
        "describe-subnets",
        "--filters",
        "Name=tag:karpenter.sh/discovery,Values=demo",
        "--query",
        "Subnets[].AvailabilityZone",
        "--output",
        "text",
    ])?;
    let mut zones: Vec<&str> = out.split_whitespace().collect();
    zones.sort();
    assert_eq!(
        zones,
        ["ap-southeast-1a", "ap-southeast-1b", "ap-southeast-1c"]
    );
    Ok(())
}

/// A child process killed when dropped.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_elector(kubeconfig: &str, ns: &str, lease: &str, id: &str, port: u16) -> Result<Proc> {
    let child = Command::new(env!("CARGO_BIN_EXE_outrigger-e2e-elector"))
        .args([
            "--kubeconfig",
            kubeconfig,
            "--admin-address",
            &format!("127.0.0.1:{port}"),
            "--leader-elect-namespace",
            ns,
            "--leader-elect-lease-name",
            lease,
            "--leader-elect-identity",
            id,
            "--leader-elect-lease-duration",
            "6",
            "--log-format",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Proc(child))
}

async fn leader_gauge(port: u16) -> Option<bool> {
    let (code, body) = http_get(port, "/metrics").await.ok()?;
    if code != 200 {
        return None;
    }
    body.lines()
        .find_map(|l| l.strip_prefix("outrigger_leader "))
        .map(|v| v.trim() == "1")
}

async fn lease_holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases
        .get(name)
        .await
        .ok()?
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

/// Waits until exactly one of the candidates leads (by the Lease and by its
/// own gauge) and returns its index.
async fn one_leader(
    leases: &Api<Lease>,
    lease: &str,
    ids: &[&str],
    ports: &[u16],
    alive: &[bool],
) -> Result<usize> {
    eventually("exactly one leader", Duration::from_secs(20), || async {
        let Some(holder) = lease_holder(leases, lease).await else {
            return Ok(None);
        };
        let Some(i) = ids.iter().position(|id| *id == holder) else {
            return Ok(None);
        };
        if !alive[i] {
            return Ok(None);
        }
        let mut leading = vec![];
        for (j, p) in ports.iter().enumerate() {
            if alive[j] && leader_gauge(*p).await == Some(true) {
                leading.push(j);
            }
        }
        Ok((leading == [i]).then_some(i))
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn leader_election_fails_over() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "lease").await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns.name);
    let lease = "outrigger-e2e-elector";
    let ids = ["candidate-a", "candidate-b"];
    let ports = [free_port(), free_port()];
    let mut procs = vec![
        Some(start_elector(
            env.kubeconfig(),
            &ns.name,
            lease,
            ids[0],
            ports[0],
        )?),
        Some(start_elector(
            env.kubeconfig(),
            &ns.name,
            lease,
            ids[1],
            ports[1],
        )?),
    ];
    let mut alive = [true, true];

    // Both serve the admin endpoints; exactly one leads.
    for p in ports {
        eventually("admin server", Duration::from_secs(20), || async {
            Ok(http_get(p, "/healthz")
                .await
                .ok()
                .filter(|(c, b)| *c == 200 && b == "ok"))
        })
        .await?;
    }
    let first = one_leader(&leases, lease, &ids, &ports, &alive).await?;
    let (code, body) = http_get(ports[first], "/readyz").await?;
    assert_eq!((code, body.as_str()), (200, "ok"));
    let (_, metrics) = http_get(ports[first], "/metrics").await?;
    assert!(metrics.contains("process_cpu_seconds_total"), "{metrics}");
    assert!(
        metrics.contains("process_resident_memory_bytes"),
        "{metrics}"
    );

    // Kill the leader without letting it release: the other takes over once
    // the Lease (6 s) expires, within 15 s.
    let killed_at = Instant::now();
    procs[first] = None;
    alive[first] = false;
    let second = one_leader(&leases, lease, &ids, &ports, &alive).await?;
    assert_ne!(first, second);
    let took = killed_at.elapsed();
    assert!(took < Duration::from_secs(15), "failover took {took:?}");

    // Start the first again: it stands by. Then SIGTERM the leader: it
    // releases the Lease and the standby takes over at once, well before the
    // Lease would have expired.
    procs[first] = Some(start_elector(
        env.kubeconfig(),
        &ns.name,
        lease,
        ids[first],
        ports[first],
    )?);
    alive[first] = true;
    eventually(
        "restarted candidate up",
        Duration::from_secs(20),
        || async { Ok((leader_gauge(ports[first]).await == Some(false)).then_some(())) },
    )
    .await?;
    let pid = procs[second]
        .as_ref()
        .map(|p| p.0.id())
        .context("leader pid")?;
    let term_at = Instant::now();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let status = tokio::task::spawn_blocking({
        let mut p = procs[second].take().context("leader proc")?;
        move || {
            let s = p.0.wait();
            drop(p);
            s
        }
    })
    .await??;
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    alive[second] = false;
    let third = one_leader(&leases, lease, &ids, &ports, &alive).await?;
    assert_eq!(third, first);
    let took = term_at.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "handover after release took {took:?}"
    );
    drop(procs);
    ns.cleanup().await
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn instance_joiner_registers_and_removes_nodes() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let subnet = env.aws(&[
        "ec2",
        "describe-subnets",
        "--filters",
        "Name=tag:karpenter.sh/discovery,Values=demo",
        "Name=availability-zone,Values=ap-southeast-1b",
        "--query",
        "Subnets[0].SubnetId",
        "--output",
        "text",
    ])?;
    let out = env.aws(&[
        "ec2",
        "run-instances",
        "--image-id",
        "ami-12c6146b",
        "--instance-type",
        "m5.xlarge",
        "--subnet-id",
        subnet.trim(),
        "--tag-specifications",
        "ResourceType=instance,Tags=[{Key=kubernetes.io/cluster/demo,Value=owned}]",
        "--query",
        "Instances[0].[InstanceId,PrivateIpAddress]",
        "--output",
        "text",
    ])?;
    let mut it = out.split_whitespace();
    let (iid, ip) = (
        it.next().context("id")?.to_string(),
        it.next().context("ip")?.to_string(),
    );
    let name = format!(
        "ip-{}.ap-southeast-1.compute.internal",
        ip.replace('.', "-")
    );
    let nodes: Api<Node> = Api::all(client);
    let started = Instant::now();
    let node = eventually("joined node Ready", Duration::from_secs(10), || async {
        let Ok(n) = nodes.get(&name).await else {
            return Ok(None);
        };
        let ready = n
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        Ok(ready.then_some(n))
    })
    .await?;
    eprintln!(
        "node {name} Ready {:?} after run-instances",
        started.elapsed()
    );
    let spec = node.spec.context("spec")?;
    assert_eq!(
        spec.provider_id.as_deref(),
        Some(format!("aws:///ap-southeast-1b/{iid}").as_str())
    );
    let labels = node.metadata.labels.unwrap_or_default();
    assert_eq!(labels["node.kubernetes.io/instance-type"], "m5.xlarge");
    assert_eq!(labels["topology.kubernetes.io/zone"], "ap-southeast-1b");
    let alloc = node
        .status
        .and_then(|s| s.allocatable)
        .context("allocatable")?;
    assert_eq!(alloc["pods"].0, "58"); // 4 ENIs x (15 - 1) + 2
    assert_eq!(alloc["cpu"].0, "3920m"); // 4000m - (60 + 10 + 5 + 5)

    env.aws(&["ec2", "terminate-instances", "--instance-ids", &iid])?;
    eventually("node removed", Duration::from_secs(10), || async {
        Ok(nodes.get_opt(&name).await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}
