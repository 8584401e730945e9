//! Interruption (AWS): the EventBridge messages of an SQS queue
//! (`--interruption-queue`, Karpenter's setting) acted on before the
//! instance goes — spot interruption warnings, scheduled changes, instances
//! stopping or terminating delete the instance's NodeClaim (the
//! termination finalizer taints and drains the node, the provisioner counts
//! the pods of a deleting node as pending and launches their replacement
//! at once); rebalance recommendations only produce an Event. A spot
//! warning also keeps its offering out of launches for a while. Messages
//! are deleted once handled, and at once when they cannot be read (they
//! would never be readable); a message whose claim could not be deleted
//! stays, to come back after its visibility timeout.
//!
//! What a message means is `outrigger_disruption::interruption`; this is
//! the loop around it: receive, act through [`crate::cluster::Cluster`],
//! delete. The queue is behind [`MessageQueue`] so the loop runs in unit
//! tests without SQS.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use futures::StreamExt;
use kube::ResourceExt;
use outrigger_disruption::interruption::{self, Action, Kind, Message, TERMINATING};
use outrigger_karpenter_api::v1::NodeClaim;
use outrigger_scheduling::model::{
    LABEL_CAPACITY_TYPE, LABEL_INSTANCE_TYPE, LABEL_NODEPOOL, LABEL_ZONE,
};

use crate::{Ctx, cluster::reference, metrics::labels};

/// A message as the queue gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub receipt: String,
    pub body: String,
}

/// Where messages come from.
#[async_trait]
pub trait MessageQueue: Send + Sync {
    fn name(&self) -> &str;
    /// Waits for messages (a long poll); empty when none came.
    async fn receive(&self) -> Result<Vec<Received>, String>;
    async fn delete(&self, receipt: &str) -> Result<(), String>;
}

/// The SQS queue.
pub struct Sqs(pub outrigger_aws_sqs::Queue);

#[async_trait]
impl MessageQueue for Sqs {
    fn name(&self) -> &str {
        self.0.name()
    }

    async fn receive(&self) -> Result<Vec<Received>, String> {
        Ok(self
            .0
            .receive()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|m| Received {
                receipt: m.receipt,
                body: m.body,
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<(), String> {
        self.0.delete(receipt).await.map_err(|e| e.to_string())
    }
}

/// Messages handled at once (Karpenter's parallelism).
const PARALLEL: usize = 10;
/// After a failed receive.
const BACKOFF: Duration = Duration::from_secs(5);

/// Polls the queue until `stop`.
pub(crate) async fn run(
    ctx: Arc<Ctx>,
    queue: Arc<dyn MessageQueue>,
    stop: tokio_util::sync::CancellationToken,
) {
    tracing::info!(queue = %queue.name(), "watching interruption queue");
    loop {
        let r = tokio::select! {
            _ = stop.cancelled() => return,
            r = poll(&ctx, queue.as_ref()) => r,
        };
        if let Err(e) = r {
            tracing::error!(queue = %queue.name(), error = %e, "getting messages from queue");
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(BACKOFF) => {}
            }
        }
    }
}

/// One receive and the messages it brought (Karpenter's `Reconcile`):
/// returns the first error (receiving, or acting on a message).
pub(crate) async fn poll(ctx: &Ctx, queue: &dyn MessageQueue) -> Result<usize, String> {
    let messages = queue.receive().await?;
    let n = messages.len();
    let errors: Vec<String> = futures::stream::iter(messages)
        .map(|m| async move { handle(ctx, queue, &m).await.err() })
        .buffer_unordered(PARALLEL)
        .filter_map(|e| async move { e })
        .collect()
        .await;
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

async fn handle(ctx: &Ctx, queue: &dyn MessageQueue, m: &Received) -> Result<(), String> {
    let msg = match interruption::parse(&m.body) {
        Ok(msg) => msg,
        Err(e) => {
            tracing::error!(error = %e, queue = %queue.name(), "failed parsing interruption message");
            return delete(ctx, queue, m).await;
        }
    };
    ctx.metrics
        .interruption_received
        .get_or_create(&labels(&[("message_type", msg.kind.as_str())]))
        .inc();
    act(ctx, &msg).await?;
    if let Some(t) = msg.time {
        let waited = jiff::Timestamp::now().duration_since(t).as_secs_f64();
        ctx.metrics.interruption_latency.observe(waited.max(0.0));
    }
    delete(ctx, queue, m).await
}

async fn delete(ctx: &Ctx, queue: &dyn MessageQueue, m: &Received) -> Result<(), String> {
    queue
        .delete(&m.receipt)
        .await
        .map_err(|e| format!("deleting sqs message, {e}"))?;
    ctx.metrics.interruption_deleted.inc();
    Ok(())
}

/// The claims of the instances a message names, acted on.
pub(crate) async fn act(ctx: &Ctx, msg: &Message) -> Result<(), String> {
    if msg.kind == Kind::NoOp {
        return Ok(());
    }
    let mut errors = vec![];
    for id in &msg.instance_ids {
        let claims: Vec<Arc<NodeClaim>> = ctx
            .claims
            .state()
            .into_iter()
            .filter(|c| {
                c.status
                    .as_ref()
                    .and_then(|s| s.provider_id.as_deref())
                    .and_then(interruption::instance_id)
                    == Some(id.as_str())
            })
            .collect();
        for c in claims {
            if let Err(e) = on_claim(ctx, msg, &c).await {
                errors.push(e);
            }
        }
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(format!("acting on NodeClaims, {}", errors.join("; "))),
    }
}

async fn on_claim(ctx: &Ctx, msg: &Message, claim: &NodeClaim) -> Result<(), String> {
    let name = claim.name_any();
    let pid = claim.status.as_ref().and_then(|s| s.provider_id.as_deref());
    let node = ctx
        .nodes
        .find(|n| pid.is_some() && n.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == pid);
    let action = msg.kind.action();
    if let Some(n) = msg.kind.notice() {
        publish(ctx, claim, node.as_deref(), n).await;
    }
    let label = |k: &str| claim.labels().get(k).cloned().unwrap_or_default();
    if msg.kind == Kind::SpotInterrupted
        && let Some(aws) = &ctx.aws
    {
        let (itype, zone) = (label(LABEL_INSTANCE_TYPE), label(LABEL_ZONE));
        if !itype.is_empty() && !zone.is_empty() {
            aws.mark_unavailable(&itype, &zone, "spot").await;
        }
    }
    if action == Action::NoAction || claim.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    ctx.cluster
        .delete_claim(&name)
        .await
        .map_err(|e| format!("deleting the node on interruption message, {e}"))?;
    tracing::info!(
        nodeclaim = %name,
        node = node.as_ref().map(|n| n.name_any()).unwrap_or_default(),
        action = action.as_str(),
        "messageKind" = msg.kind.as_str(),
        "initiating delete from interruption message"
    );
    publish(ctx, claim, node.as_deref(), TERMINATING).await;
    let capacity_type = label(LABEL_CAPACITY_TYPE);
    ctx.metrics
        .disrupted
        .get_or_create(&labels(&[
            ("reason", msg.kind.as_str()),
            ("nodepool", &label(LABEL_NODEPOOL)),
            ("capacity_type", &capacity_type),
        ]))
        .inc();
    Ok(())
}

async fn publish(
    ctx: &Ctx,
    claim: &NodeClaim,
    node: Option<&k8s_openapi::api::core::v1::Node>,
    n: interruption::Notice,
) {
    ctx.cluster
        .event(
            reference(claim),
            n.warning,
            n.reason,
            "Interrupt",
            n.message.to_string(),
        )
        .await;
    if let Some(node) = node {
        ctx.cluster
            .event(
                reference(node),
                n.warning,
                n.reason,
                "Interrupt",
                n.message.to_string(),
            )
            .await;
    }
}

#[cfg(test)]
mod tests;
