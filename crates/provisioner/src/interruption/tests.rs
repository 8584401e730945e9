//! Karpenter AWS provider's interruption cases
//! (`pkg/controllers/interruption/suite_test.go`, `Describe("InterruptionHandling")`
//! and `Describe("Error Handling")`) over the loop, the in-memory cluster
//! and a queue in memory. Each test is named after its `It` (or its
//! `DescribeTable` entry).
#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use outrigger_runtime::LockExt;
use serde_json::json;

use super::*;
use crate::testing::{Harness, claim, harness};

/// A queue in memory, counting calls as Karpenter's fake SQS API does.
#[derive(Default)]
struct Memory {
    messages: Mutex<Vec<Received>>,
    receives: Mutex<u32>,
    deleted: Mutex<Vec<String>>,
    fail_receive: Option<String>,
}

#[async_trait]
impl MessageQueue for Memory {
    fn name(&self) -> &str {
        "test-cluster"
    }
    async fn receive(&self) -> Result<Vec<Received>, String> {
        *self.receives.locked() += 1;
        if let Some(e) = &self.fail_receive {
            return Err(e.clone());
        }
        Ok(std::mem::take(&mut *self.messages.locked()))
    }
    async fn delete(&self, receipt: &str) -> Result<(), String> {
        self.deleted.locked().push(receipt.to_string());
        Ok(())
    }
}

impl Memory {
    fn with(bodies: Vec<serde_json::Value>) -> Self {
        let q = Memory::default();
        *q.messages.locked() = bodies
            .into_iter()
            .enumerate()
            .map(|(i, b)| Received {
                receipt: format!("receipt-{i}"),
                body: b.to_string(),
            })
            .collect();
        q
    }
    fn deletes(&self) -> usize {
        self.deleted.locked().len()
    }
}

fn metadata(detail_type: &str, source: &str, id: &str) -> serde_json::Value {
    json!({
        "version": "0",
        "account": "000000000000",
        "detail-type": detail_type,
        "id": format!("event-{id}"),
        "region": "us-west-2",
        "resources": [format!("arn:aws:ec2:us-west-2:instance/{id}")],
        "source": source,
        "time": jiff::Timestamp::now().to_string(),
    })
}

fn spot_interruption(id: &str) -> serde_json::Value {
    let mut m = metadata("EC2 Spot Instance Interruption Warning", "aws.ec2", id);
    m["detail"] = json!({"instance-id": id, "instance-action": "terminate"});
    m
}

fn capacity_reservation_interruption(id: &str) -> serde_json::Value {
    let mut m = metadata(
        "EC2 Capacity Reservation Instance Interruption Warning",
        "aws.ec2",
        id,
    );
    m["detail"] = json!({"instance-id": id, "instance-action": "terminate"});
    m
}

fn state_change(id: &str, state: &str) -> serde_json::Value {
    let mut m = metadata("EC2 Instance State-change Notification", "aws.ec2", id);
    m["detail"] = json!({"instance-id": id, "state": state});
    m
}

fn scheduled_change(id: &str) -> serde_json::Value {
    let mut m = metadata("AWS Health Event", "aws.health", id);
    m["detail"] = json!({"service": "EC2", "eventTypeCategory": "scheduledChange",
        "affectedEntities": [{"entityValue": id}]});
    m
}

fn rebalance(id: &str) -> serde_json::Value {
    let mut m = metadata("EC2 Instance Rebalance Recommendation", "aws.ec2", id);
    m["detail"] = json!({"instance-id": id});
    m
}

/// A launched claim of pool `default` for instance `id`, and its Node.
fn claim_and_node(h: &Harness, id: &str) -> String {
    let name = format!("default-{id}");
    let mut c = claim(&name, "default");
    let pid = format!("aws:///us-west-2a/{id}");
    c.status = Some(
        serde_json::from_value(json!({"providerID": pid, "nodeName": format!("node-{id}")}))
            .unwrap(),
    );
    c.metadata
        .labels
        .get_or_insert_default()
        .insert("karpenter.sh/capacity-type".into(), "spot".into());
    h.mem.put_claim(c);
    h.mem.put_node(
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": format!("node-{id}")},
            "spec": {"providerID": pid},
        }))
        .unwrap(),
    );
    name
}

fn deleting(h: &Harness, name: &str) -> bool {
    h.mem
        .claim(name)
        .is_some_and(|c| c.metadata.deletion_timestamp.is_some())
}

fn disrupted(h: &Harness, reason: &str) -> u64 {
    let m = h.admin.encode_metrics().unwrap();
    m.lines()
        .filter(|l| {
            l.starts_with("karpenter_nodeclaims_disrupted_total{")
                && l.contains(&format!("reason=\"{reason}\""))
                && l.contains("nodepool=\"default\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn should_delete_the_nodeclaim_when_receiving_a_spot_interruption_warning() {
    let h = harness();
    let c = claim_and_node(&h, "i-0000000000000001");
    let q = Memory::with(vec![spot_interruption("i-0000000000000001")]);
    poll(&h.ctx, &q).await.unwrap();
    assert_eq!(disrupted(&h, "spot_interrupted"), 1);
    assert_eq!(*q.receives.locked(), 1);
    assert!(deleting(&h, &c));
    assert_eq!(q.deletes(), 1);
}

#[tokio::test]
async fn should_delete_the_nodeclaim_when_receiving_a_capacity_reservation_interruption_warning() {
    let h = harness();
    let c = claim_and_node(&h, "i-0000000000000002");
    let q = Memory::with(vec![capacity_reservation_interruption(
        "i-0000000000000002",
    )]);
    poll(&h.ctx, &q).await.unwrap();
    assert_eq!(disrupted(&h, "capacity_reservation_interrupted"), 1);
    assert!(deleting(&h, &c));
    assert_eq!(q.deletes(), 1);
}

#[tokio::test]
async fn should_delete_the_nodeclaim_when_receiving_a_scheduled_change_message() {
    let h = harness();
    let c = claim_and_node(&h, "i-0000000000000003");
    let q = Memory::with(vec![scheduled_change("i-0000000000000003")]);
    poll(&h.ctx, &q).await.unwrap();
    assert_eq!(disrupted(&h, "scheduled_change"), 1);
    assert!(deleting(&h, &c));
    assert_eq!(q.deletes(), 1);
}

#[tokio::test]
async fn should_delete_the_nodeclaim_when_receiving_a_state_change_message() {
    let h = harness();
    let mut claims = vec![];
    let mut messages = vec![];
    for (i, state) in ["terminated", "stopped", "stopping", "shutting-down"]
        .iter()
        .enumerate()
    {
        let id = format!("i-00000000000001{i}");
        claims.push(claim_and_node(&h, &id));
        messages.push(state_change(&id, state));
    }
    let q = Memory::with(messages);
    poll(&h.ctx, &q).await.unwrap();
    assert_eq!(disrupted(&h, "instance_terminated"), 2);
    assert_eq!(disrupted(&h, "instance_stopped"), 2);
    assert_eq!(*q.receives.locked(), 1);
    for c in &claims {
        assert!(deleting(&h, c), "{c}");
    }
    assert_eq!(q.deletes(), 4);
}

async fn many(build: fn(&str) -> serde_json::Value) {
    let h = harness();
    let ids: Vec<String> = (0..100).map(|i| format!("i-{i:017}")).collect();
    let claims: Vec<String> = ids.iter().map(|id| claim_and_node(&h, id)).collect();
    let q = Memory::with(ids.iter().map(|id| build(id)).collect());
    poll(&h.ctx, &q).await.unwrap();
    assert_eq!(*q.receives.locked(), 1);
    assert!(claims.iter().all(|c| deleting(&h, c)));
    assert_eq!(q.deletes(), 100);
}

#[tokio::test]
async fn should_handle_multiple_messages_that_cause_nodeclaim_deletion_with_spot_interruption_messages()
 {
    many(spot_interruption).await;
}

#[tokio::test]
async fn should_handle_multiple_messages_that_cause_nodeclaim_deletion_with_capacity_reservation_interruption_messages()
 {
    many(capacity_reservation_interruption).await;
}

#[tokio::test]
async fn should_delete_a_message_when_the_message_cant_be_parsed() {
    let h = harness();
    let q = Memory::with(vec![json!({"field1": "value1", "field2": "value2"})]);
    // And a body that is not JSON at all.
    q.messages.locked().push(Received {
        receipt: "not-json".into(),
        body: "{".into(),
    });
    poll(&h.ctx, &q).await.unwrap();
    assert_eq!(*q.receives.locked(), 1);
    assert_eq!(q.deletes(), 2);
}

#[tokio::test]
async fn should_delete_a_state_change_message_when_the_state_isnt_in_accepted_states() {
    let h = harness();
    let c = claim_and_node(&h, "i-0000000000000004");
    let q = Memory::with(vec![state_change("i-0000000000000004", "creating")]);
    poll(&h.ctx, &q).await.unwrap();
    assert!(h.mem.claim(&c).is_some() && !deleting(&h, &c));
    assert_eq!(q.deletes(), 1);
}

#[tokio::test]
async fn should_send_an_error_on_polling_when_queuenotexists() {
    let h = harness();
    let q = Memory {
        fail_receive: Some("SQS ReceiveMessage: QueueDoesNotExist: error".into()),
        ..Default::default()
    };
    assert!(poll(&h.ctx, &q).await.is_err());
}

#[tokio::test]
async fn should_send_an_error_on_polling_when_accessdenied() {
    let h = harness();
    let q = Memory {
        fail_receive: Some("SQS ReceiveMessage: AccessDenied: error".into()),
        ..Default::default()
    };
    assert!(poll(&h.ctx, &q).await.is_err());
}

async fn already_deleted(build: fn(&str) -> serde_json::Value) {
    let h = harness();
    let q = Memory::with(vec![build("i-0000000000000fff")]);
    poll(&h.ctx, &q).await.unwrap();
    assert_eq!(q.deletes(), 1);
}

#[tokio::test]
async fn should_not_return_an_error_when_deleting_a_nodeclaim_that_is_already_deleted_with_spot_interruption_messages()
 {
    already_deleted(spot_interruption).await;
}

#[tokio::test]
async fn should_not_return_an_error_when_deleting_a_nodeclaim_that_is_already_deleted_with_capacity_reservation_interruption_messages()
 {
    already_deleted(capacity_reservation_interruption).await;
}

// Outrigger's own cases.

/// A rebalance recommendation is an Event on the claim and its node, not a
/// disruption; the message goes.
#[tokio::test]
async fn a_rebalance_recommendation_publishes_events_and_keeps_the_node() {
    let h = harness();
    let c = claim_and_node(&h, "i-0000000000000005");
    let q = Memory::with(vec![rebalance("i-0000000000000005")]);
    poll(&h.ctx, &q).await.unwrap();
    assert!(!deleting(&h, &c));
    let events = h.mem.events();
    let ours: Vec<_> = events
        .iter()
        .filter(|(_, reason, _)| reason == "SpotRebalanceRecommendation")
        .collect();
    assert_eq!(ours.len(), 2, "on the claim and on the node: {events:?}");
    assert!(ours.iter().all(|(warning, _, _)| !warning));
    assert_eq!(q.deletes(), 1);
    let m = h.admin.encode_metrics().unwrap();
    assert!(
        m.contains("karpenter_interruption_received_messages_total{message_type=\"rebalance_recommendation\"} 1"),
        "{m}"
    );
    assert!(m.contains("karpenter_interruption_deleted_messages_total 1"));
}

/// A spot warning: SpotInterrupted and TerminatingOnInterruption on the
/// claim and the node; a second warning for a claim already deleting
/// deletes nothing more.
#[tokio::test]
async fn a_spot_warning_is_told_on_the_claim_and_node_and_acted_on_once() {
    let h = harness();
    let c = claim_and_node(&h, "i-0000000000000006");
    let q = Memory::with(vec![spot_interruption("i-0000000000000006")]);
    poll(&h.ctx, &q).await.unwrap();
    let q2 = Memory::with(vec![spot_interruption("i-0000000000000006")]);
    poll(&h.ctx, &q2).await.unwrap();
    assert!(deleting(&h, &c));
    let reasons: Vec<String> = h.mem.events().into_iter().map(|(_, r, _)| r).collect();
    assert_eq!(
        reasons.iter().filter(|r| *r == "SpotInterrupted").count(),
        4,
        "{reasons:?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| *r == "TerminatingOnInterruption")
            .count(),
        2,
        "once, on the claim and the node: {reasons:?}"
    );
    assert_eq!(disrupted(&h, "spot_interrupted"), 1);
    assert_eq!(q2.deletes(), 1);
}

/// The pods of a node whose claim is being deleted are provisioned for at
/// once: a replacement claim is created while the node drains.
#[tokio::test]
async fn the_pods_of_an_interrupted_node_get_a_replacement_claim() {
    let h = harness();
    h.mem
        .put_nodepool(crate::testing::nodepool("default", None, None));
    let c = claim_and_node(&h, "i-0000000000000007");
    h.mem.put_pod(crate::testing::pod_on(
        "node-i-0000000000000007",
        "web",
        false,
    ));
    h.mem.put_pod(crate::testing::pod_on(
        "node-i-0000000000000007",
        "ds",
        true,
    ));
    let q = Memory::with(vec![spot_interruption("i-0000000000000007")]);
    poll(&h.ctx, &q).await.unwrap();
    assert!(deleting(&h, &c));
    crate::provision::provision(&h.ctx).await;
    let claims: Vec<String> = h
        .stores
        .claims
        .state()
        .iter()
        .map(|c| c.name_any())
        .filter(|n| *n != c)
        .collect();
    assert_eq!(
        claims.len(),
        1,
        "one replacement for the web pod: {claims:?}"
    );
    let nominated = h
        .mem
        .events()
        .into_iter()
        .filter(|(_, r, _)| r == crate::upstream::NOMINATED)
        .count();
    assert_eq!(nominated, 1, "the web pod, not the daemonset's");
}
