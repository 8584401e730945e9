//! Interruption on the AWS provider: a spot interruption warning for a
//! node's instance, sent to the environment's interruption queue (SQS in
//! moto, `testenv/aws/interrupt.py`, as EventBridge would deliver it). The
//! provisioner (`--interruption-queue demo`) deletes the node's claim; the
//! node is drained, a replacement launched away from the interrupted
//! offering, the pods move, the instance is terminated and the message
//! deleted, well inside the two minutes of the warning.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Node, Pod},
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, PostParams},
};
use outrigger_e2e::{
    TestEnv, TestNamespace, env, eventually,
    karpenter::{
        Leftovers, all_running, inflate_on_provisioner, pool_instances, seed_provisioner,
        until_no_instances, until_no_nodes,
    },
};
use outrigger_karpenter_api::{v1::NodeClaim, v1alpha5::Provisioner};
use serde_json::Value;

/// Messages in the queue, visible or received and not deleted (the AWS
/// CLI v1 ignores `AWS_ENDPOINT_URL` for SQS: the endpoint is passed).
fn queued(env: &TestEnv) -> Result<u64> {
    let endpoint = env
        .vars
        .get("AWS_ENDPOINT_URL")
        .context("AWS_ENDPOINT_URL")?;
    let url: Value = serde_json::from_str(&env.aws(&[
        "--endpoint-url",
        endpoint,
        "sqs",
        "get-queue-url",
        "--queue-name",
        "demo",
    ])?)?;
    let url = url["QueueUrl"].as_str().context("QueueUrl")?;
    let a: Value = serde_json::from_str(&env.aws(&[
        "--endpoint-url",
        endpoint,
        "sqs",
        "get-queue-attributes",
        "--queue-url",
        url,
        "--attribute-names",
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
    ])?)?;
    let n = |k: &str| {
        a["Attributes"][k]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(n("ApproximateNumberOfMessages") + n("ApproximateNumberOfMessagesNotVisible"))
}

fn event_reasons(env: &TestEnv, kind: &str, name: &str) -> Result<Vec<String>> {
    let out = env.run(
        "kubectl",
        &[
            "get",
            "events",
            "-A",
            "--field-selector",
            &format!("involvedObject.kind={kind},involvedObject.name={name}"),
            "-o",
            "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}",
        ],
    )?;
    Ok(out.lines().map(str::to_string).collect())
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn a_spot_interruption_warning_moves_the_pods_before_the_instance_goes() -> Result<()> {
    let env = env();
    let client = env.client().await?;
    let ns = TestNamespace::new(&client, "interruption").await?;
    let name = format!("e2e-interrupt-{}", std::process::id());
    let _leftovers = Leftovers {
        env,
        provisioner: name.clone(),
        namespace: ns.name.clone(),
    };
    let before = queued(env)?;
    assert_eq!(
        before, 0,
        "the interruption queue is not empty before the test"
    );

    // The seed's Provisioner: spot m6i.large or m6i.xlarge in three zones.
    let p = seed_provisioner(env, &name)?;
    let provisioners: Api<Provisioner> = Api::all(client.clone());
    provisioners.create(&PostParams::default(), &p).await?;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deploys
        .create(
            &PostParams::default(),
            &inflate_on_provisioner(&name, 2, "500m")?,
        )
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    all_running(&pods, 2, Duration::from_secs(90)).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let selector = format!("karpenter.sh/provisioner-name={name}");
    let ours = nodes
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    assert_eq!(ours.len(), 1, "two small pods, one node");
    let old = ours[0].clone();
    let old_node = old.name_any();
    let pid = old
        .spec
        .as_ref()
        .and_then(|s| s.provider_id.clone())
        .context("providerID")?;
    let instance = pid.rsplit('/').next().context("instance")?.to_string();
    let label = |k: &str| old.labels().get(k).cloned().unwrap_or_default();
    let (old_type, old_zone) = (
        label("node.kubernetes.io/instance-type"),
        label("topology.kubernetes.io/zone"),
    );
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let claim_selector = format!("karpenter.sh/nodepool={name}");
    let old_claim = claims
        .list(&ListParams::default().labels(&claim_selector))
        .await?
        .items
        .first()
        .map(|c| c.name_any())
        .context("the node's claim")?;

    // The warning, as EventBridge delivers it.
    let sent = Instant::now();
    env.run(
        "testenv-python",
        &[
            env.repo
                .join("testenv/aws/interrupt.py")
                .to_str()
                .context("path")?,
            "--instance",
            &instance,
            "--kind",
            "spot",
        ],
    )?;

    // A replacement claim, its node, the pods on it; the old node, claim
    // and instance gone; the message deleted. Sampled: when the old node
    // was seen tainted or cordoned, when the replacement appeared.
    let cordoned: Mutex<Option<Duration>> = Mutex::new(None);
    let replacement_at: Mutex<Option<Duration>> = Mutex::new(None);
    let (new_node, took) = eventually(
        "the pods on a replacement node, the old node gone",
        Duration::from_secs(120),
        || {
            let (nodes, claims, pods) = (nodes.clone(), claims.clone(), pods.clone());
            let (old_node, old_claim, selector, claim_selector) = (
                old_node.clone(),
                old_claim.clone(),
                selector.clone(),
                claim_selector.clone(),
            );
            let (cordoned, replacement_at) = (&cordoned, &replacement_at);
            async move {
                if let Some(n) = nodes.get_opt(&old_node).await? {
                    let tainted = n.spec.as_ref().is_some_and(|s| {
                        s.unschedulable == Some(true)
                            || s.taints.iter().flatten().any(|t| {
                                t.key == "karpenter.sh/disrupted" && t.effect == "NoSchedule"
                            })
                    });
                    let mut c = cordoned.lock().unwrap_or_else(|e| e.into_inner());
                    if tainted && c.is_none() {
                        *c = Some(sent.elapsed());
                    }
                }
                let all = claims
                    .list(&ListParams::default().labels(&claim_selector))
                    .await?
                    .items;
                {
                    let mut r = replacement_at.lock().unwrap_or_else(|e| e.into_inner());
                    if r.is_none() && all.iter().any(|c| c.name_any() != old_claim) {
                        *r = Some(sent.elapsed());
                    }
                }
                let gone = nodes.get_opt(&old_node).await?.is_none()
                    && all.iter().all(|c| c.name_any() != old_claim);
                let running: Vec<Pod> = pods
                    .list(&ListParams::default().labels("app=inflate"))
                    .await?
                    .items
                    .into_iter()
                    .filter(|p| {
                        p.metadata.deletion_timestamp.is_none()
                            && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                    })
                    .collect();
                let on: Vec<String> = running
                    .iter()
                    .filter_map(|p| p.spec.as_ref()?.node_name.clone())
                    .collect();
                let ours: Vec<String> = nodes
                    .list(&ListParams::default().labels(&selector))
                    .await?
                    .items
                    .iter()
                    .map(|n| n.name_any())
                    .collect();
                Ok((gone
                    && running.len() == 2
                    && on.iter().all(|n| *n != old_node && ours.contains(n)))
                .then(|| (on[0].clone(), sent.elapsed())))
            }
        },
    )
    .await?;

    // The instance is terminated, the message deleted.
    let old_instance = eventually(
        "the instance terminated",
        Duration::from_secs(30),
        || async {
            let all = pool_instances(
                env,
                &name,
                "pending,running,stopping,stopped,shutting-down,terminated",
            )?;
            Ok(all
                .into_iter()
                .find(|i| i["InstanceId"] == instance.as_str())
                .filter(|i| {
                    matches!(
                        i["State"]["Name"].as_str(),
                        Some("shutting-down" | "terminated")
                    )
                }))
        },
    )
    .await?;
    assert!(old_instance["State"]["Name"].is_string());
    eventually("the message deleted", Duration::from_secs(30), || async {
        Ok((queued(env)? == 0).then_some(()))
    })
    .await?;

    // The replacement avoided the interrupted offering.
    let new = nodes.get(&new_node).await?;
    let new_label = |k: &str| new.labels().get(k).cloned().unwrap_or_default();
    let (new_type, new_zone) = (
        new_label("node.kubernetes.io/instance-type"),
        new_label("topology.kubernetes.io/zone"),
    );
    assert_eq!(new_label("karpenter.sh/capacity-type"), "spot");
    assert!(
        (new_type.as_str(), new_zone.as_str()) != (old_type.as_str(), old_zone.as_str()),
        "the replacement launched on the interrupted offering {old_type} in {old_zone}"
    );

    // What users see: the Events on the claim and the node, the log line,
    // the metrics.
    let reasons = event_reasons(env, "NodeClaim", &old_claim)?;
    for r in ["SpotInterrupted", "TerminatingOnInterruption"] {
        assert!(
            reasons.iter().any(|x| x == r),
            "{r} on the claim: {reasons:?}"
        );
    }
    let reasons = event_reasons(env, "Node", &old_node)?;
    assert!(
        reasons.iter().any(|x| x == "SpotInterrupted"),
        "SpotInterrupted on the node: {reasons:?}"
    );
    let log = std::fs::read_to_string(env.state.join("logs/outrigger-provisioner.log"))?;
    assert!(
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(
                |l| l["message"] == "initiating delete from interruption message"
                    && l["nodeclaim"] == old_claim.as_str()
            ),
        "no \"initiating delete from interruption message\" for {old_claim}"
    );
    let (_, metrics) = outrigger_e2e::http_get(10352, "/metrics").await?;
    for m in [
        "karpenter_interruption_received_messages_total{message_type=\"spot_interrupted\"}",
        "karpenter_interruption_deleted_messages_total",
        "karpenter_interruption_message_queue_duration_seconds_count",
    ] {
        assert!(metrics.contains(m), "{m} missing");
    }

    deploys.delete("inflate", &DeleteParams::default()).await?;
    provisioners.delete(&name, &DeleteParams::default()).await?;
    until_no_nodes(&nodes, &selector, Duration::from_secs(60)).await?;
    until_no_instances(env, &name, Duration::from_secs(30)).await?;
    ns.cleanup().await.context("namespace cleanup")?;
    eprintln!(
        "spot warning for {instance} ({old_type} in {old_zone}): node tainted after {:?}, replacement claim after {:?}, pods running on {new_node} ({new_type} in {new_zone}) and the old node gone after {took:?}",
        cordoned.into_inner().unwrap_or_else(|e| e.into_inner()),
        replacement_at
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
    );
    Ok(())
}
