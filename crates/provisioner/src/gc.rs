//! Garbage collection, every 30 s: instances no NodeClaim has as its own
//! are terminated, and launched NodeClaims whose instance is gone are
//! deleted (with their node), each after a grace period (cloud lists are
//! eventually consistent, and a launch may be between the cloud call and
//! the claim's status). The decision is [`plan`], pure; [`run`] lists each
//! provider's instances and carries it out.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use kube::ResourceExt;
use outrigger_karpenter_api::v1::NodeClaim;
use outrigger_runtime::{Action, sync::LockExt};

use crate::{Ctx, cloud::Instance, upstream};

/// How often a round runs.
pub const PERIOD: Duration = Duration::from_secs(30);
/// How long an orphan or a lost claim is tolerated.
pub const GRACE: Duration = Duration::from_secs(30);

/// Since when each instance has had no claim, and each launched claim no
/// instance.
#[derive(Default)]
pub struct State {
    orphans: BTreeMap<String, Instant>,
    lost: BTreeMap<String, Instant>,
}

/// What a round does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Instances to terminate: (instance, the claim its tag names).
    pub terminate: Vec<(Instance, String)>,
    /// Claims to delete: (claim, its instance ID).
    pub delete: Vec<(String, String)>,
}

/// The instance ID of a claim: its provider ID's last segment
/// (`aws:///zone/i-0123`, `kwok://zone/name`).
fn instance_of(c: &NodeClaim) -> Option<String> {
    let pid = c.status.as_ref()?.provider_id.as_deref()?;
    Some(pid.rsplit('/').next().unwrap_or(pid).to_string())
}

/// One provider's round. An instance is an orphan when no claim has it as
/// its instance and its own claim is gone or has launched another (a
/// launch repeated across a restart); a claim still launching may yet
/// adopt it. A launched claim (of this provider) whose instance is not
/// listed is lost. Each is acted on once it has been so for [`GRACE`].
pub fn plan(
    state: &mut State,
    instances: &[Instance],
    claims: &[&NodeClaim],
    now: Instant,
) -> Plan {
    let mut out = Plan::default();
    let mut seen = BTreeSet::new();
    for i in instances {
        if claims
            .iter()
            .any(|c| instance_of(c).as_deref() == Some(i.id.as_str()))
        {
            continue;
        }
        let adoptable = claims
            .iter()
            .any(|c| c.name_any() == i.claim && instance_of(c).is_none());
        if adoptable {
            continue;
        }
        seen.insert(i.id.clone());
        let since = *state.orphans.entry(i.id.clone()).or_insert(now);
        if now.duration_since(since) >= GRACE {
            out.terminate.push((i.clone(), i.claim.clone()));
        }
    }
    state.orphans.retain(|id, _| seen.contains(id));
    let live: BTreeSet<&str> = instances.iter().map(|i| i.id.as_str()).collect();
    let mut missing = BTreeSet::new();
    for c in claims
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
    {
        let Some(id) = instance_of(c) else { continue };
        if live.contains(id.as_str()) {
            continue;
        }
        let name = c.name_any();
        missing.insert(name.clone());
        let since = *state.lost.entry(name.clone()).or_insert(now);
        if now.duration_since(since) >= GRACE {
            out.delete.push((name, id));
        }
    }
    state.lost.retain(|n, _| missing.contains(n));
    out
}

/// One round over every provider, then again after [`PERIOD`].
pub async fn run(ctx: &Ctx) -> Result<Action, crate::lifecycle::Error> {
    let claims = ctx.claims.state();
    for (i, provider) in ctx.providers.iter().enumerate() {
        let instances = match provider.list().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(provider = provider.name(), error = %e, "listing the cluster's instances");
                continue;
            }
        };
        let mine: Vec<&NodeClaim> = claims
            .iter()
            .map(|c| c.as_ref())
            .filter(|c| provider.serves(&c.spec.node_class_ref))
            .collect();
        let p = {
            let mut states = ctx.gc.locked();
            let state = states.entry(i).or_default();
            plan(state, &instances, &mine, Instant::now())
        };
        for (inst, claim) in p.terminate {
            // An orphan has no claim to hand the provider: a stand-in with
            // its provider ID and name.
            let mut stand_in = NodeClaim::new(&inst.claim, Default::default());
            stand_in.status = Some(outrigger_karpenter_api::v1::NodeClaimStatus {
                provider_id: Some(inst.provider_id.clone()),
                ..Default::default()
            });
            match provider.delete(&stand_in).await {
                Ok(()) => {
                    tracing::info!(instance = %inst.id, nodeclaim = %claim, "garbage collected an instance with no nodeclaim")
                }
                Err(e) => {
                    tracing::warn!(instance = %inst.id, error = %e, "terminating an orphan instance")
                }
            }
        }
        for (name, id) in p.delete {
            tracing::info!(nodeclaim = %name, instance = %id, "{}", upstream::GC_CLAIM);
            if let Err(e) = ctx.cluster.delete_claim(&name).await {
                tracing::warn!(nodeclaim = %name, error = %e, "deleting a nodeclaim whose instance is gone");
            }
        }
    }
    Ok(Action::requeue(PERIOD))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(name: &str, pid: Option<&str>) -> NodeClaim {
        let mut c = NodeClaim::new(name, Default::default());
        c.status = Some(outrigger_karpenter_api::v1::NodeClaimStatus {
            provider_id: pid.map(str::to_string),
            ..Default::default()
        });
        c
    }

    fn inst(id: &str, claim: &str) -> Instance {
        Instance {
            id: id.into(),
            provider_id: format!("fake:///z/{id}"),
            claim: claim.into(),
        }
    }

    #[test]
    fn an_instance_without_a_claim_goes_after_the_grace_period() {
        let mut st = State::default();
        let t0 = Instant::now();
        let is = [inst("i-1", "gone")];
        assert_eq!(plan(&mut st, &is, &[], t0), Plan::default());
        assert_eq!(plan(&mut st, &is, &[], t0 + GRACE / 2), Plan::default());
        let p = plan(&mut st, &is, &[], t0 + GRACE);
        assert_eq!(p.terminate, vec![(is[0].clone(), "gone".to_string())]);
    }

    #[test]
    fn an_instance_a_launching_claim_may_adopt_is_kept() {
        let mut st = State::default();
        let t0 = Instant::now();
        let c = claim("a", None);
        let is = [inst("i-1", "a")];
        assert_eq!(plan(&mut st, &is, &[&c], t0 + GRACE * 3), Plan::default());
    }

    #[test]
    fn a_repeated_launch_leaves_an_orphan_of_a_live_claim() {
        // The claim recorded i-2; i-1 (same tag) is a launch lost across a
        // restart.
        let mut st = State::default();
        let t0 = Instant::now();
        let c = claim("a", Some("fake:///z/i-2"));
        let is = [inst("i-1", "a"), inst("i-2", "a")];
        plan(&mut st, &is, &[&c], t0);
        let p = plan(&mut st, &is, &[&c], t0 + GRACE);
        assert_eq!(p.terminate.len(), 1);
        assert_eq!(p.terminate[0].0.id, "i-1");
        assert!(p.delete.is_empty());
    }

    #[test]
    fn a_claim_whose_instance_is_gone_is_deleted_after_the_grace_period() {
        let mut st = State::default();
        let t0 = Instant::now();
        let c = claim("a", Some("fake:///z/i-9"));
        assert!(plan(&mut st, &[], &[&c], t0).delete.is_empty());
        let p = plan(&mut st, &[], &[&c], t0 + GRACE);
        assert_eq!(p.delete, vec![("a".to_string(), "i-9".to_string())]);
    }

    #[test]
    fn an_orphan_that_finds_its_claim_again_starts_over() {
        let mut st = State::default();
        let t0 = Instant::now();
        let is = [inst("i-1", "a")];
        plan(&mut st, &is, &[], t0);
        // The claim shows up (the watch was behind): not an orphan.
        let c = claim("a", Some("fake:///z/i-1"));
        assert_eq!(plan(&mut st, &is, &[&c], t0 + GRACE), Plan::default());
        // Gone again: the grace period counts from now.
        assert_eq!(plan(&mut st, &is, &[], t0 + GRACE * 2), Plan::default());
    }
}
