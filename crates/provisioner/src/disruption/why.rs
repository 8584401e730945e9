//! `outrigger why-kept NODE`: why the provisioner is not disrupting this
//! node, in plain words. Lists what the provisioner watches (as
//! `why-pending` does), builds the disruption controller's view, runs one
//! pass and explains the node: what blocks it, its pool's policy,
//! `consolidateAfter`, a budget at zero and until when, a pod with nowhere
//! to go, no cheaper replacement (the cheapest type and its price against
//! the node's); or, for a node being disrupted, why and what replaces it.
//! Its expiry, and what the provisioner said about it lately.

use std::{collections::BTreeSet, fmt::Write as _};

use k8s_openapi::api::{core::v1::Event, policy::v1::PodDisruptionBudget};
use kube::{Api, Client, ResourceExt, api::ListParams};
use outrigger_runtime::conditions;

use super::{View, facts};
use crate::{ExplainError, ProviderKind, explain, upstream};

/// Flags of `outrigger why-kept`.
#[derive(clap::Args, Debug, Clone)]
pub struct WhyKeptArgs {
    /// The node (its name, or its NodeClaim's).
    pub node: String,
    /// The providers whose instance types to consider, as the provisioner's
    /// `--providers`.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "kwok,aws")]
    pub providers: Vec<ProviderKind>,
    /// The cluster's name (AWS discovery), as the provisioner's.
    #[arg(long, env = "CLUSTER_NAME", default_value = "demo")]
    pub cluster_name: String,
    /// Zones of the kwok provider's nodes, as the provisioner's.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ap-southeast-1a,ap-southeast-1b,ap-southeast-1c"
    )]
    pub kwok_zones: Vec<String>,
}

/// The answer, as text for a terminal.
pub async fn why_kept(client: Client, args: &WhyKeptArgs) -> Result<String, ExplainError> {
    let (world, left_out, notes) = explain::gather(
        &client,
        &args.providers,
        &args.cluster_name,
        &args.kwok_zones,
        None,
    )
    .await?;
    let known_node = world.nodes.iter().any(|n| n.name_any() == args.node);
    let pdbs: Vec<std::sync::Arc<PodDisruptionBudget>> =
        Api::<PodDisruptionBudget>::all(client.clone())
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .map(std::sync::Arc::new)
            .collect();
    let now = jiff::Timestamp::now();
    let view = View::from_world(world, &pdbs, &BTreeSet::new(), &BTreeSet::new(), now);
    let mut out = String::new();
    for n in &notes {
        let _ = writeln!(out, "{n}");
    }
    let Some(i) = view
        .facts
        .iter()
        .position(|f| f.name == args.node || f.claim.as_deref() == Some(args.node.as_str()))
    else {
        if known_node {
            let _ = writeln!(
                out,
                "node {}: no NodeClaim of a pool the provisioner disrupts (not Karpenter's, or its pool's empty nodes go by the empty-node TTL)",
                args.node
            );
            for l in &left_out {
                let _ = writeln!(out, "  left out: {l}");
            }
            return Ok(out);
        }
        return Err(ExplainError::NotFound(format!("node {}", args.node)));
    };
    let f = &view.facts[i];
    let claim = &view.claims[i];
    let _ = writeln!(
        out,
        "node {} (nodeclaim/{}, pool {}, {} {} in {}):",
        f.name,
        claim.name_any(),
        f.pool.as_deref().unwrap_or("?"),
        f.capacity_type.as_deref().unwrap_or("?"),
        f.instance_type.as_deref().unwrap_or("?"),
        f.zone.as_deref().unwrap_or("?"),
    );
    let pass = outrigger_disruption::consolidation_pass(&view.input(), now);
    for line in outrigger_disruption::explain::why_kept(&view.input(), &pass, i, now) {
        let _ = writeln!(out, "  - {line}");
    }
    // Expiry.
    if let Some(t) = claim.metadata.creation_timestamp.as_ref() {
        let after = facts::expire_after(claim);
        match outrigger_disruption::expire::expires_at(t.0, after) {
            Some(at) => {
                let _ = writeln!(
                    out,
                    "  expires at {} (expireAfter {}), whatever the budgets",
                    at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    claim.spec.expire_after.as_deref().unwrap_or("")
                );
            }
            None => {
                let _ = writeln!(out, "  never expires (expireAfter: Never)");
            }
        }
    }
    if let Some(c) = conditions::get(
        &claim.status.clone().unwrap_or_default().conditions,
        upstream::DISRUPTION_REASON,
    ) {
        let _ = writeln!(out, "  marked for disruption: {}", c.reason);
    }
    for l in &left_out {
        let _ = writeln!(out, "  left out: {l}");
    }
    // What the provisioner said about it lately.
    let events = Api::<Event>::all(client)
        .list(&ListParams::default().fields(&format!(
            "involvedObject.name={},involvedObject.kind=NodeClaim",
            claim.name_any()
        )))
        .await?;
    explain::write_recent_events(&mut out, events.items.iter().collect());
    Ok(out)
}
