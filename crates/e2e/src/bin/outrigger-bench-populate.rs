//! Fills the local environment with kwok nodes and pods for benchmarks, or
//! removes them. Nodes are labelled `outrigger.dev/bench=true` and sized like
//! m5.2xlarge (8 vCPU, 32 GiB, 58 pods); pods are bound directly to them
//! (`spec.nodeName`, no scheduling) with kwok usage annotations, in namespace
//! `bench`.
//!
//! outrigger-bench-populate --nodes 1000 --pods-per-node 30
//! outrigger-bench-populate --delete
//!
//! For the node-group autoscaler benchmark, `--kwok-groups 4` puts the nodes
//! in four groups of the kwok cloud provider (label `kwok-nodegroup:
//! bench-g<k>`, providerID `kwok:<name>`), `--pod-cpu`/`--pod-memory` give
//! pods requests (`--light-every 10 --light-pod-cpu 20m` leaves every tenth
//! node of the last group nearly empty), and the pods are owned by ten ReplicaSets
//! (`bench-app-<k>`) so that they count as replicated.

use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use futures::{StreamExt, stream};
use k8s_openapi::{
    api::{
        apps::v1::ReplicaSet,
        core::v1::{Namespace, Node, Pod},
    },
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::OwnerReference},
};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, PostParams},
};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    #[arg(long, default_value_t = 30)]
    pods_per_node: usize,
    #[arg(long, default_value_t = 10247)]
    kwok_port: i32,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Create nodes kwok does not manage (no kwok annotation): their
    /// kubelet is a synthetic farm (outrigger-bench-kubelet-farm).
    #[arg(long)]
    unmanaged: bool,
    /// Put the nodes in this many kwok cloud-provider groups (0: none).
    #[arg(long, default_value_t = 0)]
    kwok_groups: usize,
    /// Requests of each pod (none when empty).
    #[arg(long, default_value = "")]
    pod_cpu: String,
    #[arg(long, default_value = "")]
    pod_memory: String,
    /// Every this many nodes (0: none), pods request `--light-pod-cpu` instead.
    #[arg(long, default_value_t = 0)]
    light_every: usize,
    #[arg(long, default_value = "20m")]
    light_pod_cpu: String,
    /// Delete the benchmark's nodes and namespace instead.
    #[arg(long)]
    delete: bool,
}

fn node(i: usize, args: &Args) -> Result<Node> {
    let (kwok_port, unmanaged) = (args.kwok_port, args.unmanaged);
    let name = format!("bench-{i:05}");
    let mut n: Node = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": name,
            "labels": {"outrigger.dev/bench": "true", "kubernetes.io/hostname": name, "type": "kwok"},
            "annotations": {
                "kwok.x-k8s.io/node": "fake",
                "metrics.k8s.io/resource-metrics-path": format!("/metrics/nodes/{name}/metrics/resource"),
            }
        },
        "spec": {"taints": [{"key": "outrigger.dev/bench", "value": "true", "effect": "NoSchedule"}]},
        "status": {
            "capacity": {"cpu": "8", "memory": "31Gi", "pods": "58"},
            "allocatable": {"cpu": "7910m", "memory": "30Gi", "pods": "58"},
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kwok_port}}
        }
    }))?;
    if unmanaged && let Some(a) = n.metadata.annotations.as_mut() {
        a.remove("kwok.x-k8s.io/node");
    }
    if args.kwok_groups > 0 {
        let g = i * args.kwok_groups / args.nodes.max(1);
        if let Some(l) = n.metadata.labels.as_mut() {
            l.insert("kwok-nodegroup".into(), format!("bench-g{g}"));
        }
        n.spec.get_or_insert_default().provider_id = Some(format!("kwok:{name}"));
    }
    Ok(n)
}

/// The ReplicaSet owning the pods of `app-<k>`. Its replicas are the pods
/// this program binds; until they all exist the controller tries to make up
/// the difference, and fails: the template names a ServiceAccount that does
/// not exist, which admission refuses.
fn replica_set(k: usize, replicas: usize) -> Result<ReplicaSet> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("bench-app-{k}")},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": format!("app-{k}")}},
            "template": {
                "metadata": {"labels": {"app": format!("app-{k}")}},
                "spec": {
                    "serviceAccountName": "bench-absent",
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]
                }
            }
        }
    }))?)
}

fn pod(node: usize, j: usize, args: &Args, owners: &[(String, String)]) -> Result<Pod> {
    let mut p = bare_pod(node, j)?;
    // Light nodes are in the last group only (the others stay full).
    let last_group = args.kwok_groups == 0
        || node * args.kwok_groups / args.nodes.max(1) == args.kwok_groups - 1;
    let cpu = if args.light_every > 0 && last_group && node.is_multiple_of(args.light_every) {
        args.light_pod_cpu.as_str()
    } else {
        args.pod_cpu.as_str()
    };
    let mut requests = std::collections::BTreeMap::new();
    if !cpu.is_empty() {
        requests.insert("cpu".to_string(), Quantity(cpu.to_string()));
    }
    if !args.pod_memory.is_empty() {
        requests.insert("memory".to_string(), Quantity(args.pod_memory.clone()));
    }
    if let Some(spec) = p.spec.as_mut()
        && !requests.is_empty()
    {
        for c in &mut spec.containers {
            c.resources.get_or_insert_default().requests = Some(requests.clone());
        }
    }
    if let Some((name, uid)) = owners.get(j % 10) {
        p.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: name.clone(),
            uid: uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
    }
    Ok(p)
}

fn bare_pod(node: usize, j: usize) -> Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": format!("p-{node:05}-{j:02}"),
            "labels": {"app": format!("app-{}", j % 10)},
            "annotations": {
                "kwok.x-k8s.io/usage-cpu": format!("{}m", 10 + (node * 7 + j * 13) % 200),
                "kwok.x-k8s.io/usage-memory": format!("{}Mi", 16 + (node + j) % 128),
            }
        },
        "spec": {
            "nodeName": format!("bench-{node:05}"),
            "tolerations": [{"key": "outrigger.dev/bench", "operator": "Exists"}],
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]
        }
    }))?)
}

/// Creates every object, `concurrency` at a time; an object that exists
/// already is left alone. Returns how many were created.
async fn create_all<K>(
    api: &Api<K>,
    objects: impl Iterator<Item = Result<K>>,
    concurrency: usize,
) -> Result<usize>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let results = stream::iter(objects)
        .map(|o| async move {
            match api.create(&PostParams::default(), &o?).await {
                Ok(_) => Ok(1usize),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(0),
                Err(e) => Err(anyhow::Error::from(e)),
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<Result<usize>>>()
        .await;
    results.into_iter().sum()
}

#[tokio::main]
async fn main() -> Result<()> {
    outrigger_runtime::install_crypto_provider();
    let args = Args::parse();
    let client = Client::try_default().await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let t0 = Instant::now();
    if args.delete {
        let _ = namespaces
            .delete("bench", &DeleteParams::background())
            .await;
        nodes
            .delete_collection(
                &DeleteParams::background(),
                &ListParams::default().labels("outrigger.dev/bench=true"),
            )
            .await?;
        eprintln!(
            "deleted the benchmark's nodes and namespace in {:?}",
            t0.elapsed()
        );
        return Ok(());
    }
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": "bench"}}))?;
    if let Err(e) = namespaces.create(&PostParams::default(), &ns).await {
        eprintln!("namespace bench: {e}");
    }
    let n = create_all(
        &nodes,
        (0..args.nodes).map(|i| node(i, &args)),
        args.concurrency,
    )
    .await?;
    eprintln!("created {n} nodes in {:?}", t0.elapsed());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "bench");
    let t1 = Instant::now();
    let per = args.pods_per_node.max(1);
    let total = args.nodes * args.pods_per_node;
    // Ten owners, when the pods have requests (the autoscaler benchmark).
    let mut owners = vec![];
    if !args.pod_cpu.is_empty() {
        let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "bench");
        let replicas = |k: usize| (0..per).filter(|j| j % 10 == k).count() * args.nodes;
        for k in 0..10.min(per) {
            let name = format!("bench-app-{k}");
            let rs = match sets.get_opt(&name).await? {
                Some(rs) => rs,
                None => {
                    sets.create(&PostParams::default(), &replica_set(k, replicas(k))?)
                        .await?
                }
            };
            owners.push((name, rs.metadata.uid.unwrap_or_default()));
        }
    }
    let n = create_all(
        &pods,
        (0..total).map(|k| pod(k / per, k % per, &args, &owners)),
        args.concurrency,
    )
    .await?;
    eprintln!("created {n} pods in {:?}", t1.elapsed());
    Ok(())
}
