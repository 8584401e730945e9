//! Fills the local environment with kwok nodes and pods for benchmarks, or
//! removes them. Nodes are labelled `outrigger.dev/bench=true` and sized like
//! m5.2xlarge (8 vCPU, 32 GiB, 58 pods); pods are bound directly to them
//! (`spec.nodeName`, no scheduling) with kwok usage annotations, in namespace
//! `bench`.
//!
//! outrigger-bench-populate --nodes 1000 --pods-per-node 30
//! outrigger-bench-populate --delete

use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
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
    /// Delete the benchmark's nodes and namespace instead.
    #[arg(long)]
    delete: bool,
}

fn node(i: usize, kwok_port: i32, unmanaged: bool) -> Result<Node> {
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
    Ok(n)
}

fn pod(node: usize, j: usize) -> Result<Pod> {
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
        (0..args.nodes).map(|i| node(i, args.kwok_port, args.unmanaged)),
        args.concurrency,
    )
    .await?;
    eprintln!("created {n} nodes in {:?}", t0.elapsed());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "bench");
    let t1 = Instant::now();
    let per = args.pods_per_node.max(1);
    let total = args.nodes * args.pods_per_node;
    let n = create_all(
        &pods,
        (0..total).map(|k| pod(k / per, k % per)),
        args.concurrency,
    )
    .await?;
    eprintln!("created {n} pods in {:?}", t1.elapsed());
    Ok(())
}
