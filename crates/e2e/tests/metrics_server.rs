//! Cluster tests of `outrigger metrics-server` through kube-apiserver's
//! aggregation layer, with the real clients: kubectl and the HPA controller.

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::{
    apps::v1::Deployment, autoscaling::v2::HorizontalPodAutoscaler, core::v1::Node,
};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use outrigger_e2e::{TestNamespace, env, eventually};

fn deployment(
    name: &str,
    replicas: i32,
    cpu_request: &str,
    usage_cpu: &str,
    usage_mem: &str,
) -> Result<Deployment> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {
                    "labels": {"app": name},
                    "annotations": {
                        "kwok.x-k8s.io/usage-cpu": usage_cpu,
                        "kwok.x-k8s.io/usage-memory": usage_mem,
                    }
                },
                "spec": {"containers": [
                    {"name": "app", "image": "registry.k8s.io/pause:3.10",
                     "resources": {"requests": {"cpu": cpu_request, "memory": "64Mi"}}},
                    {"name": "sidecar", "image": "registry.k8s.io/pause:3.10",
                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}
                ]}
            }
        }
    }))?)
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn apiservice_is_available_and_kubectl_top_node_lists_every_node() -> Result<()> {
    let env = env();
    let out = env.run(
        "kubectl",
        &[
            "get",
            "apiservice",
            "v1beta1.metrics.k8s.io",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Available\")].status}",
        ],
    )?;
    assert_eq!(out.trim(), "True");
    let client = env.client().await?;
    // Every node kwok plays the kubelet of, with its usage (an idle node
    // reports its system baseline, about 25m and 450Mi, as in the walkthrough).
    let nodes: Vec<String> = Api::<Node>::all(client)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|n| {
            n.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.get("kwok.x-k8s.io/node").is_some_and(|v| v == "fake"))
        })
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(nodes.len() >= 3);
    let top = eventually(
        "kubectl top node lists every node",
        Duration::from_secs(45),
        || async {
            let out = env.run("kubectl", &["top", "node", "--no-headers"])?;
            let with_usage: Vec<&str> = out
                .lines()
                .filter(|l| !l.contains("<unknown>"))
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            Ok(nodes
                .iter()
                .all(|n| with_usage.contains(&n.as_str()))
                .then_some(out))
        },
    )
    .await?;
    for line in top.lines().filter(|l| !l.contains("<unknown>")) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let cpu: u64 = cols[1].trim_end_matches('m').parse()?;
        assert!(cpu >= 20, "node cpu {line}");
        assert!(cols[3].ends_with("Mi"), "node memory {line}");
    }
    eprintln!("{top}");
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn kubectl_top_pod_shows_the_emulated_usage() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "top").await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(
            &PostParams::default(),
            &deployment("web", 2, "100m", "250m", "100Mi")?,
        )
        .await?;
    // kwok reports each container's usage from the pod annotations: 250m and
    // 100Mi per container, so 500m and 200Mi per pod.
    let out = eventually(
        "kubectl top pod shows both pods",
        Duration::from_secs(60),
        || async {
            let out = env.run("kubectl", &["top", "pod", "-n", &ns.name, "--no-headers"])?;
            Ok((out.lines().count() == 2).then_some(out))
        },
    )
    .await?;
    for line in out.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let cpu: u64 = cols[1].trim_end_matches('m').parse()?;
        assert!((495..=505).contains(&cpu), "pod cpu {line}");
        assert_eq!(cols[2], "200Mi", "pod memory {line}");
    }
    let out = env.run(
        "kubectl",
        &["top", "pod", "-n", &ns.name, "--containers", "--no-headers"],
    )?;
    assert_eq!(out.lines().count(), 4, "{out}");
    for line in out.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let cpu: u64 = cols[2].trim_end_matches('m').parse()?;
        assert!((245..=255).contains(&cpu), "container cpu {line}");
        assert_eq!(cols[3], "100Mi");
    }
    // kubectl asks for protobuf first and gets it; with JSON it sees the same.
    let (proto_out, trace) = env.run_both(
        "kubectl",
        &["top", "pod", "-n", &ns.name, "--no-headers", "-v=8"],
    )?;
    assert!(
        trace.contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "no protobuf response in: {trace}"
    );
    let json_out = env.run(
        "kubectl",
        &[
            "top",
            "pod",
            "-n",
            &ns.name,
            "--no-headers",
            "--use-protocol-buffers=false",
        ],
    )?;
    let names = |s: &str| {
        s.lines()
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&proto_out), names(&json_out));
    // Label selectors reach the API; no match is "no metrics" for kubectl.
    let out = env.run(
        "kubectl",
        &[
            "top",
            "pod",
            "-n",
            &ns.name,
            "-l",
            "app=web",
            "--no-headers",
        ],
    )?;
    assert_eq!(out.lines().count(), 2);

    // The raw list is a valid PodMetricsList.
    let raw = env.run(
        "kubectl",
        &[
            "get",
            "--raw",
            &format!("/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods", ns.name),
        ],
    )?;
    let v: serde_json::Value = serde_json::from_str(&raw)?;
    assert_eq!(v["kind"], "PodMetricsList");
    assert_eq!(v["apiVersion"], "metrics.k8s.io/v1beta1");
    let items = v["items"].as_array().context("items")?;
    assert_eq!(items.len(), 2);
    for it in items {
        assert_eq!(it["metadata"]["namespace"], ns.name.as_str());
        assert_eq!(it["metadata"]["labels"]["app"], "web");
        assert!(
            it["window"].as_str().is_some_and(|w| w.ends_with('s')),
            "{it}"
        );
        assert!(
            it["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{it}"
        );
        assert_eq!(it["containers"].as_array().map(Vec::len), Some(2));
    }
    // Field selector and a single get.
    let name = items[0]["metadata"]["name"].as_str().context("name")?;
    let raw = env.run(
        "kubectl",
        &[
            "get",
            "--raw",
            &format!(
                "/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=metadata.name%3D{name},metadata.namespace%3D{}",
                ns.name
            ),
        ],
    )?;
    let v: serde_json::Value = serde_json::from_str(&raw)?;
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1));
    let one = env.run(
        "kubectl",
        &[
            "get",
            "--raw",
            &format!(
                "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods/{name}",
                ns.name
            ),
        ],
    )?;
    let v: serde_json::Value = serde_json::from_str(&one)?;
    assert_eq!(v["kind"], "PodMetrics");

    // Table output through kubectl get.
    let table = env.run("kubectl", &["get", "podmetrics", "-n", &ns.name])?;
    let header = table.lines().next().unwrap_or_default();
    for col in ["NAME", "CPU", "MEMORY", "WINDOW"] {
        assert!(header.contains(col), "{table}");
    }
    // Unknown objects are NotFound, bad selectors are BadRequest.
    let err = env
        .run(
            "kubectl",
            &[
                "get",
                "--raw",
                &format!(
                    "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods/nope",
                    ns.name
                ),
            ],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
    let err = env
        .run(
            "kubectl",
            &[
                "get",
                "--raw",
                "/apis/metrics.k8s.io/v1beta1/pods?labelSelector=a%20in%20(b",
            ],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("BadRequest") || err.contains("invalid selector"),
        "{err}"
    );
    ns.cleanup().await
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn requests_are_authorized_through_subject_access_reviews() -> Result<()> {
    let env = env();
    // Impersonated through kube-apiserver: the front proxy passes the user on,
    // and the metrics server asks kube-apiserver whether it may.
    let err = env
        .run(
            "kubectl",
            &[
                "get",
                "--raw",
                "/apis/metrics.k8s.io/v1beta1/nodes",
                "--as",
                "nobody",
            ],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("forbidden") || err.contains("Forbidden"),
        "{err}"
    );
    // A member of a group bound to view (which aggregates the metrics reader) may.
    let out = env.run(
        "kubectl",
        &[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
            "--as",
            "viewer",
            "--as-group",
            "outrigger-e2e-viewers",
        ],
    );
    // Bind the group, then the same request passes.
    env.run(
        "kubectl",
        &[
            "create",
            "clusterrolebinding",
            "outrigger-e2e-viewers",
            "--clusterrole",
            "view",
            "--group",
            "outrigger-e2e-viewers",
        ],
    )
    .ok();
    assert!(out.is_err(), "allowed before the binding exists");
    eventually("viewer allowed", Duration::from_secs(30), || async {
        let r = env.run(
            "kubectl",
            &[
                "get",
                "--raw",
                "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
                "--as",
                "viewer",
                "--as-group",
                "outrigger-e2e-viewers",
            ],
        );
        Ok(r.ok().filter(|o| o.contains("PodMetricsList")))
    })
    .await?;
    env.run(
        "kubectl",
        &["delete", "clusterrolebinding", "outrigger-e2e-viewers"],
    )?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn hpa_scales_on_cpu_utilization() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "hpa").await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    // Each pod requests 110m and uses 200m + 5m: far above a 50% target.
    deploys
        .create(
            &PostParams::default(),
            &deployment("busy", 1, "100m", "200m", "50Mi")?,
        )
        .await?;
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "busy"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "busy"},
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}
        }
    }))?;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns.name);
    hpas.create(&PostParams::default(), &hpa).await?;
    let started = std::time::Instant::now();
    eventually(
        "HPA scales the deployment up",
        Duration::from_secs(90),
        || async {
            let d = deploys.get("busy").await?;
            let want = d.spec.and_then(|s| s.replicas).unwrap_or(0);
            Ok((want > 1).then_some(()))
        },
    )
    .await?;
    eprintln!(
        "scaled up {:?} after the HPA was created",
        started.elapsed()
    );
    // Usage drops: the rollout brings pods that use 5m.
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {
        "kwok.x-k8s.io/usage-cpu": "5m"}}}}});
    deploys
        .patch("busy", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let started = std::time::Instant::now();
    eventually(
        "HPA scales the deployment down",
        Duration::from_secs(150),
        || async {
            let d = deploys.get("busy").await?;
            let want = d.spec.and_then(|s| s.replicas).unwrap_or(0);
            Ok((want == 1).then_some(()))
        },
    )
    .await?;
    eprintln!("scaled down {:?} after usage dropped", started.elapsed());
    let h = hpas.get("busy").await?;
    let current = h.status.and_then(|s| s.current_metrics).unwrap_or_default();
    assert!(!current.is_empty(), "the HPA read the resource metrics");
    ns.cleanup().await
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn pod_and_node_metrics_can_be_watched() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "watch").await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(
            &PostParams::default(),
            &deployment("w", 1, "100m", "100m", "20Mi")?,
        )
        .await?;
    eventually("pod metrics exist", Duration::from_secs(60), || async {
        let out = env.run("kubectl", &["top", "pod", "-n", &ns.name, "--no-headers"])?;
        Ok((out.lines().count() == 1).then_some(()))
    })
    .await?;
    // A watch through kube-apiserver for 20 s spans at least one scrape
    // cycle (15 s): the pod is ADDED, then MODIFIED with the new sample.
    let out = env.run(
        "kubectl",
        &[
            "get",
            "--raw",
            &format!(
                "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods?watch=true&timeoutSeconds=20",
                ns.name
            ),
        ],
    )?;
    let events: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types.first(), Some(&"ADDED"), "{out}");
    assert!(types.contains(&"MODIFIED"), "{out}");
    assert_eq!(events[0]["object"]["kind"], "PodMetrics");
    // Scaling to zero deletes the pod: a node watch shows every node.
    let out = env.run(
        "kubectl",
        &[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/nodes?watch=1&timeoutSeconds=2",
        ],
    )?;
    let nodes = out.lines().filter(|l| l.contains("\"ADDED\"")).count();
    assert!(nodes >= 3, "{out}");
    ns.cleanup().await
}
