//! The disruption controller (`Key::Disruption`): one decision at a time,
//! as Karpenter's. A pass gathers the facts (`facts.rs`) and asks
//! `outrigger_disruption` for a command (empty nodes, then multi-node,
//! then single-node consolidation); the command waits 15 s and is checked
//! again on fresh state (the same candidates still candidates and within
//! budget, the same decision, a replacement's types among those found
//! now); then the candidates are tainted `karpenter.sh/disrupted:NoSchedule`
//! and get the `DisruptionReason` condition, a replacement is launched and
//! must initialize (its pods' place) before the candidates' claims are
//! deleted, which drains them through the termination finalizer. A
//! replacement that fails or takes too long gives the candidates back.
//!
//! The key is added by changes to pods, nodes, claims, pools and PDBs, and
//! a pass runs at most every [`PERIOD`] (Karpenter polls every 10 s).

pub(crate) mod facts;
#[cfg(test)]
mod tests;
pub mod why;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::{Node, Taint};
use kube::ResourceExt;
use outrigger_disruption::{
    Blocked, NodeFacts, PoolPolicy, Reason,
    candidate::candidate,
    consolidate::{self, Command, Decision, Input, Method},
};
use outrigger_karpenter_api::v1::NodeClaim;
use outrigger_runtime::{
    Action,
    conditions::{self, Status},
    sync::LockExt,
};
use outrigger_scheduling::model::{LABEL_CAPACITY_TYPE, Problem};
use outrigger_scheduling_kube as pods;

use crate::{
    Ctx,
    cluster::reference,
    lifecycle::{self, Error},
    metrics::labels,
    pools::Pool,
    provision::{self, World},
    upstream,
};

/// At most one pass this often.
pub(crate) const PERIOD: Duration = Duration::from_secs(10);
/// A command waits this long and is checked again before it acts
/// (Karpenter's `consolidationTTL`).
pub(crate) const VALIDATION: Duration = Duration::from_secs(15);
/// A replacement must initialize within this long.
const REPLACEMENT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// A node a provisioning pass planned pending pods onto is not a candidate
/// for this long.
pub(crate) const NOMINATION: Duration = Duration::from_secs(20);
/// While a budget holds candidates back, look again this often (its
/// schedule may open).
const BUDGET_RECHECK: Duration = Duration::from_secs(60);

/// The controller's memory between passes.
pub(crate) struct State {
    pending: Option<Pending>,
    last_pass: Option<Instant>,
    /// The last Unconsolidatable / DisruptionBlocked message published per
    /// claim (an Event only when it changes).
    published: HashMap<String, String>,
    /// [`PERIOD`] and [`VALIDATION`] (tests shorten them).
    period: Duration,
    validation: Duration,
}

impl Default for State {
    fn default() -> Self {
        State {
            pending: None,
            last_pass: None,
            published: HashMap::new(),
            period: PERIOD,
            validation: VALIDATION,
        }
    }
}

struct Pending {
    method: Method,
    decision: Decision,
    /// The candidates' claims.
    claims: Vec<String>,
    /// A replacement's instance types when it was decided.
    types: Vec<String>,
    stage: Stage,
}

enum Stage {
    Validating {
        until: Instant,
    },
    /// Waiting for the replacements to initialize.
    Replacing {
        claims: Vec<String>,
        since: Instant,
    },
}

/// The cluster as disruption sees it.
pub(crate) struct View {
    pub problem: Problem,
    pub facts: Vec<NodeFacts>,
    /// Disruption settings of `pools` (same order).
    pub policies: Vec<PoolPolicy>,
    /// The pools, in the problem's order.
    pub pools: Vec<Pool>,
    /// Claim of each fact.
    pub claims: Vec<NodeClaim>,
}

impl View {
    async fn build(ctx: &Ctx, now: jiff::Timestamp, disrupting: &BTreeSet<String>) -> View {
        let world = World {
            pods: ctx.pods.state(),
            nodes: ctx.nodes.state(),
            claims: provision::claims_now(ctx),
            daemonsets: ctx.daemonsets.state(),
            pools: provision::usable_pools(ctx).await,
            catalogue: ctx.providers.catalogue(),
            also: None,
        };
        let nominated: BTreeSet<String> = {
            let mut n = ctx.nominated.locked();
            n.retain(|_, at| at.elapsed() < NOMINATION);
            n.keys().cloned().collect()
        };
        View::from_world(world, &ctx.pdbs.state(), &nominated, disrupting, now)
    }

    /// The view of what was gathered (the watch caches, or lists for
    /// `why-kept`).
    pub(crate) fn from_world(
        world: World,
        pdbs: &[std::sync::Arc<k8s_openapi::api::policy::v1::PodDisruptionBudget>],
        nominated: &BTreeSet<String>,
        disrupting: &BTreeSet<String>,
        now: jiff::Timestamp,
    ) -> View {
        let problem = provision::snapshot(&world).problem;
        let claims_now = world.claims.clone();
        let nodes_now = world.nodes.clone();
        let pods_now = world.pods.clone();
        let pools = world.pools;
        let mut policies = vec![];
        for p in &pools {
            match facts::policy(p) {
                Ok(x) => policies.push(x),
                Err(e) => {
                    tracing::warn!(pool = %p.model.name, error = %e, annotation = upstream::MIN_SAVINGS, "ignoring an invalid least saving");
                    let mut x = facts::policy(&strip_min_savings(p)).unwrap_or_else(|_| {
                        // Unreachable: without the annotation there is
                        // nothing to fail on.
                        PoolPolicy {
                            name: p.model.name.clone(),
                            policy: outrigger_disruption::Policy::WhenEmpty,
                            consolidate_after: None,
                            budgets: vec![],
                            min_savings: None,
                        }
                    });
                    x.min_savings = None;
                    policies.push(x);
                }
            }
        }
        // Pools whose empty nodes go by the empty-node TTL are not
        // disrupted here.
        let ttl_pools: BTreeSet<&str> = pools
            .iter()
            .filter(|p| p.empty_ttl.is_some())
            .map(|p| p.model.name.as_str())
            .collect();
        let index: HashMap<&str, usize> = problem
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect();
        let mut by_node: HashMap<String, Vec<outrigger_disruption::PodFacts>> = HashMap::new();
        for p in pods_now.iter() {
            if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.as_ref()) {
                by_node
                    .entry(n.clone())
                    .or_default()
                    .push(facts::pod_facts(p, pdbs, now));
            }
        }
        let mut node_facts = vec![];
        let mut claims = vec![];
        for c in claims_now.values() {
            let pool = c
                .labels()
                .get(outrigger_scheduling::model::LABEL_NODEPOOL)
                .map(String::as_str);
            if pool.is_some_and(|p| ttl_pools.contains(p)) {
                continue;
            }
            let node = c
                .status
                .as_ref()
                .and_then(|s| s.provider_id.as_deref())
                .and_then(|pid| {
                    nodes_now
                        .iter()
                        .find(|n| {
                            n.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(pid)
                        })
                        .cloned()
                });
            let name = node.as_ref().map(|n| n.name_any());
            let f = facts::node_facts(
                facts::NodeInput {
                    claim: c,
                    node: node.as_deref(),
                    pods: name
                        .as_ref()
                        .and_then(|n| by_node.remove(n))
                        .unwrap_or_default(),
                    problem_index: name.as_deref().and_then(|n| index.get(n).copied()),
                    nominated: name.as_ref().is_some_and(|n| nominated.contains(n)),
                    disrupting: disrupting.contains(&c.name_any()),
                    consolidate_after: pool
                        .and_then(|p| policies.iter().find(|x| x.name == p))
                        .and_then(|x| x.consolidate_after),
                },
                now,
            );
            node_facts.push(f);
            claims.push(c.clone());
        }
        View {
            problem,
            facts: node_facts,
            policies,
            pools,
            claims,
        }
    }

    fn input(&self) -> Input<'_> {
        Input {
            problem: &self.problem,
            nodes: &self.facts,
            pools: &self.policies,
            spot_to_spot: true,
        }
    }

    fn by_claim(&self, name: &str) -> Option<usize> {
        self.facts
            .iter()
            .position(|f| f.claim.as_deref() == Some(name))
    }
}

fn strip_min_savings(p: &Pool) -> Pool {
    let mut p = p.clone();
    match &mut p.source {
        crate::pools::Source::NodePool(np) => {
            np.metadata
                .annotations
                .get_or_insert_default()
                .remove(upstream::MIN_SAVINGS);
        }
        crate::pools::Source::Provisioner(pr) => {
            pr.metadata
                .annotations
                .get_or_insert_default()
                .remove(upstream::MIN_SAVINGS);
        }
    }
    p
}

/// One step: carry on with the command in flight, or look for one.
pub(crate) async fn run(ctx: &Ctx) -> Result<Action, Error> {
    let pending = ctx.disruption.locked().pending.take();
    if let Some(p) = pending {
        return carry_on(ctx, p).await;
    }
    let (period, validation) = {
        let st = ctx.disruption.locked();
        (st.period, st.validation)
    };
    if let Some(last) = ctx.disruption.locked().last_pass
        && last.elapsed() < period
    {
        return Ok(Action::requeue(period - last.elapsed()));
    }
    ctx.disruption.locked().last_pass = Some(Instant::now());
    let now = jiff::Timestamp::now();
    let started = Instant::now();
    let view = View::build(ctx, now, &BTreeSet::new()).await;
    release_stale(ctx, &view).await?;
    let pass = outrigger_disruption::consolidation_pass(&view.input(), now);
    ctx.metrics
        .disruption_seconds
        .observe(started.elapsed().as_secs_f64());
    report(ctx, &view, &pass, now).await;
    let Some(cmd) = pass.command else {
        return Ok(if pass.constrained_by_budgets {
            Action::requeue(BUDGET_RECHECK)
        } else {
            Action::Done
        });
    };
    let claims: Vec<String> = cmd
        .candidates
        .iter()
        .filter_map(|&i| view.facts[i].claim.clone())
        .collect();
    tracing::info!(
        method = cmd.method.consolidation_type(),
        reason = cmd.method.reason().label(),
        decision = cmd.decision().as_str(),
        nodeclaims = %claims.join(","),
        savings = cmd.savings(),
        validation_s = validation.as_secs(),
        "found a disruption command, validating it"
    );
    let types = replacement_types(&view.problem, &cmd);
    ctx.disruption.locked().pending = Some(Pending {
        method: cmd.method,
        decision: cmd.decision(),
        claims,
        types,
        stage: Stage::Validating {
            until: Instant::now() + validation,
        },
    });
    Ok(Action::requeue(validation))
}

fn replacement_types(problem: &Problem, cmd: &Command) -> Vec<String> {
    let names: BTreeSet<String> = cmd
        .replacements
        .iter()
        .flat_map(|r| {
            r.claim
                .instance_types
                .iter()
                .map(|&t| problem.instance_types[t].name.clone())
        })
        .collect();
    names.into_iter().collect()
}

async fn carry_on(ctx: &Ctx, p: Pending) -> Result<Action, Error> {
    match &p.stage {
        Stage::Validating { until } => {
            let now = Instant::now();
            if now < *until {
                let left = *until - now;
                ctx.disruption.locked().pending = Some(p);
                return Ok(Action::requeue(left));
            }
            validate_and_start(ctx, p).await
        }
        Stage::Replacing { claims, since } => {
            let found: Vec<_> = claims
                .iter()
                .map(|n| ctx.claims.find(|c| c.name_any() == *n))
                .collect();
            let initialized = found.iter().all(|c| {
                c.as_ref().is_some_and(|c| {
                    conditions::is_true(
                        &c.status.clone().unwrap_or_default().conditions,
                        upstream::INITIALIZED,
                    )
                })
            });
            if initialized {
                let view = View::build(ctx, jiff::Timestamp::now(), &BTreeSet::new()).await;
                delete_candidates(ctx, &view, &p).await?;
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
            let gone = found.iter().any(|c| {
                c.as_ref()
                    .is_none_or(|c| c.metadata.deletion_timestamp.is_some())
            });
            if gone || since.elapsed() > REPLACEMENT_TIMEOUT {
                let why = if gone {
                    "a replacement nodeclaim was deleted"
                } else {
                    "the replacements did not initialize in time"
                };
                tracing::warn!(nodeclaims = %p.claims.join(","), replacements = %claims.join(","), reason = why, "giving the candidates back");
                for (name, c) in claims.iter().zip(&found) {
                    if c.as_ref()
                        .is_some_and(|c| c.metadata.deletion_timestamp.is_none())
                    {
                        ctx.cluster.delete_claim(name).await?;
                    }
                }
                release(ctx, &p.claims).await?;
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
            ctx.disruption.locked().pending = Some(p);
            Ok(Action::requeue(Duration::from_secs(2)))
        }
    }
}

/// The command on fresh state: still valid? Then start it.
async fn validate_and_start(ctx: &Ctx, p: Pending) -> Result<Action, Error> {
    let now = jiff::Timestamp::now();
    let view = View::build(ctx, now, &BTreeSet::new()).await;
    match revalidate(&view, &p, now) {
        Ok(cmd) => {
            start(ctx, &view, p, cmd).await?;
            Ok(Action::requeue(Duration::from_secs(2)))
        }
        Err(why) => {
            tracing::info!(nodeclaims = %p.claims.join(","), reason = %why, "{}", upstream::ABANDONED);
            ctx.metrics
                .disruption_rejected
                .get_or_create(&labels(&[("reason", p.method.reason().label())]))
                .inc();
            Ok(Action::requeue(Duration::from_secs(1)))
        }
    }
}

fn revalidate(view: &View, p: &Pending, now: jiff::Timestamp) -> Result<Command, String> {
    let input = view.input();
    let mut idx = vec![];
    for name in &p.claims {
        let i = view
            .by_claim(name)
            .ok_or_else(|| format!("nodeclaim {name} is gone"))?;
        let c = candidate(i, &view.facts[i], &view.policies, p.method == Method::Drift)
            .map_err(|b| format!("{}: {b}", view.facts[i].name))?;
        if p.method == Method::Drift {
            if !view.facts[i].drifted {
                return Err(format!("{} is no longer drifted", view.facts[i].name));
            }
        } else if p.method != Method::Emptiness {
            consolidate::should_consolidate(&input, &c)
                .map_err(|e| format!("{}: {e}", view.facts[i].name))?;
        } else if c.reschedulable > 0 || !view.facts[i].consolidatable {
            return Err(format!("{} is no longer empty", view.facts[i].name));
        }
        idx.push(i);
    }
    // Budgets, counting the candidates themselves.
    let room = outrigger_disruption::budgets(&view.facts, &view.policies, now, p.method.reason());
    let mut per_pool: BTreeMap<&str, u32> = BTreeMap::new();
    for &i in &idx {
        *per_pool
            .entry(view.facts[i].pool.as_deref().unwrap_or_default())
            .or_default() += 1;
    }
    for (pool, n) in per_pool {
        let left = room.get(pool).copied().unwrap_or(0);
        if left < n {
            return Err(format!(
                "the budget of {pool} allows {left} disruption(s), the command needs {n}"
            ));
        }
    }
    let fresh = if p.method == Method::Emptiness {
        Ok(Command {
            method: Method::Emptiness,
            candidates: idx.clone(),
            replacements: vec![],
            removed_price: idx
                .iter()
                .map(|&i| consolidate::node_price(&view.problem, &view.facts[i]).unwrap_or(0.0))
                .sum(),
            moves: vec![],
        })
    } else if p.method == Method::Drift {
        outrigger_disruption::drift::compute(&input, idx[0])
    } else {
        consolidate::compute(&input, &idx, p.method)
    };
    let fresh = fresh?;
    if fresh.decision() != p.decision {
        return Err(format!(
            "the decision changed from {} to {}",
            p.decision.as_str(),
            fresh.decision().as_str()
        ));
    }
    let now_types: BTreeSet<String> = replacement_types(&view.problem, &fresh)
        .into_iter()
        .collect();
    if !p.types.iter().all(|t| now_types.contains(t)) {
        return Err("the replacement's instance types changed".into());
    }
    Ok(fresh)
}

/// Taints the candidates, marks their claims, launches the replacement
/// (the candidates go once it is initialized) or deletes them.
async fn start(ctx: &Ctx, view: &View, mut p: Pending, cmd: Command) -> Result<(), Error> {
    let reason = p.method.reason();
    for &i in &cmd.candidates {
        let f = &view.facts[i];
        if f.has_node {
            set_taint(ctx, &f.name, true).await?;
        }
        lifecycle::set_condition(
            ctx,
            &view.claims[i],
            upstream::DISRUPTION_REASON,
            Status::True,
            reason.as_str(),
            String::new(),
        )
        .await?;
    }
    let nodes: Vec<(String, String, String)> = cmd
        .candidates
        .iter()
        .map(|&i| {
            let f = &view.facts[i];
            (
                f.name.clone(),
                f.instance_type.clone().unwrap_or_default(),
                f.capacity_type.clone().unwrap_or_default(),
            )
        })
        .collect();
    let moved: usize = cmd
        .candidates
        .iter()
        .map(|&i| {
            view.facts[i]
                .pods
                .iter()
                .filter(|x| x.reschedulable)
                .count()
        })
        .sum();
    let types = replacement_types(&view.problem, &cmd);
    let ct = cmd.replacement().map(|r| {
        r.claim
            .requirements
            .get(LABEL_CAPACITY_TYPE)
            .and_then(|x| x.single().map(str::to_string))
            .unwrap_or_else(|| "on-demand".into())
    });
    tracing::info!(
        reason = reason.label(),
        decision = cmd.decision().as_str(),
        consolidation_type = cmd.method.consolidation_type(),
        replacements = cmd.replacements.len(),
        savings = format!("{:.4}", cmd.savings()),
        "{}",
        upstream::disrupting(
            cmd.decision().as_str(),
            &nodes,
            moved,
            ct.as_deref().map(|c| (c, types.as_slice()))
        )
    );
    ctx.metrics
        .disruption_decisions
        .get_or_create(&labels(&[
            ("decision", cmd.decision().as_str()),
            ("reason", reason.label()),
            ("consolidation_type", cmd.method.consolidation_type()),
        ]))
        .inc();
    if cmd.replacements.is_empty() {
        return delete_candidates(ctx, view, &p).await;
    }
    let mut names = vec![];
    for r in &cmd.replacements {
        let pool = &view.pools[r.claim.pool];
        names
            .push(provision::create_claim(ctx, &view.problem, pool, &r.claim, "disruption").await?);
    }
    for &i in &cmd.candidates {
        ctx.cluster
            .event(
                reference(&view.claims[i]),
                false,
                upstream::DISRUPTION_LAUNCHING,
                "Disrupt",
                format!("Launching NodeClaim: {reason}"),
            )
            .await;
    }
    p.stage = Stage::Replacing {
        claims: names,
        since: Instant::now(),
    };
    ctx.disruption.locked().pending = Some(p);
    Ok(())
}

/// Deletes the candidates' claims (the termination finalizer drains and
/// removes each node).
async fn delete_candidates(ctx: &Ctx, view: &View, p: &Pending) -> Result<(), Error> {
    let reason = p.method.reason();
    for name in &p.claims {
        let Some(i) = view.by_claim(name) else {
            continue;
        };
        let f = &view.facts[i];
        ctx.cluster.delete_claim(name).await?;
        ctx.metrics
            .disrupted
            .get_or_create(&labels(&[
                ("reason", reason.label()),
                ("nodepool", f.pool.as_deref().unwrap_or_default()),
                (
                    "capacity_type",
                    f.capacity_type.as_deref().unwrap_or_default(),
                ),
            ]))
            .inc();
        ctx.cluster
            .event(
                reference(&view.claims[i]),
                false,
                upstream::DISRUPTION_TERMINATING,
                "Disrupt",
                format!("Disrupting NodeClaim: {reason}"),
            )
            .await;
    }
    ctx.disruption.locked().pending = None;
    Ok(())
}

/// Gives candidates back: untainted, their condition cleared.
async fn release(ctx: &Ctx, claims: &[String]) -> Result<(), Error> {
    for name in claims {
        let Some(c) = ctx.claims.find(|c| c.name_any() == *name) else {
            continue;
        };
        if c.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(node) = c.status.as_ref().and_then(|s| s.node_name.clone()) {
            set_taint(ctx, &node, false).await?;
        }
        lifecycle::clear_condition(ctx, &c, upstream::DISRUPTION_REASON).await?;
    }
    Ok(())
}

/// Nodes left tainted by a command that no longer runs (a restart, a
/// command given up) are given back, as Karpenter does at each pass.
async fn release_stale(ctx: &Ctx, view: &View) -> Result<(), Error> {
    let mut stale = vec![];
    for (i, f) in view.facts.iter().enumerate() {
        let c = &view.claims[i];
        if c.metadata.deletion_timestamp.is_some() || !f.has_node {
            continue;
        }
        let tainted = ctx.nodes.find(|n| n.name_any() == f.name).is_some_and(|n| {
            has_taint(&n)
                && !n
                    .spec
                    .as_ref()
                    .and_then(|s| s.unschedulable)
                    .unwrap_or(false)
        });
        let marked = c.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|x| x.type_ == upstream::DISRUPTION_REASON)
        });
        if tainted || marked {
            stale.push(c.name_any());
        }
    }
    if !stale.is_empty() {
        tracing::info!(nodeclaims = %stale.join(","), "releasing nodes a past disruption command left tainted");
        release(ctx, &stale).await?;
    }
    Ok(())
}

fn has_taint(n: &Node) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.key == upstream::DISRUPTED_TAINT))
}

async fn set_taint(ctx: &Ctx, node: &str, on: bool) -> Result<(), Error> {
    let Some(n) = ctx.nodes.find(|n| n.name_any() == node) else {
        return Ok(());
    };
    if has_taint(&n) == on {
        return Ok(());
    }
    let mut taints: Vec<Taint> = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    taints.retain(|t| t.key != upstream::DISRUPTED_TAINT);
    if on {
        taints.push(Taint {
            key: upstream::DISRUPTED_TAINT.into(),
            effect: "NoSchedule".into(),
            value: None,
            time_added: None,
        });
    }
    ctx.cluster
        .patch_node(node, serde_json::json!({"spec": {"taints": taints}}))
        .await?;
    Ok(())
}

/// Events and metrics of a pass: `DisruptionBlocked` and
/// `Unconsolidatable` on the claims (when the message changes), eligible
/// nodes, pools' allowed disruptions.
async fn report(ctx: &Ctx, view: &View, pass: &outrigger_disruption::Pass, now: jiff::Timestamp) {
    let mut messages: Vec<(usize, &'static str, String)> = vec![];
    for (i, b) in &pass.blocked {
        // Launching, initializing or going: a passing state, not news
        // (`why-kept` still says it).
        if matches!(
            b,
            Blocked::NotManaged | Blocked::Deleting | Blocked::NoNode | Blocked::NotInitialized
        ) {
            continue;
        }
        messages.push((*i, upstream::DISRUPTION_BLOCKED, b.to_string()));
    }
    for (i, m) in &pass.unconsolidatable {
        messages.push((*i, upstream::UNCONSOLIDATABLE, m.clone()));
    }
    let mut fresh = vec![];
    {
        let mut st = ctx.disruption.locked();
        let seen: BTreeSet<String> = view.claims.iter().map(|c| c.name_any()).collect();
        st.published.retain(|k, _| seen.contains(k));
        for (i, reason, msg) in messages {
            let name = view.claims[i].name_any();
            if st.published.get(&name) != Some(&msg) {
                st.published.insert(name, msg.clone());
                fresh.push((i, reason, msg));
            }
        }
    }
    for (i, reason, msg) in fresh {
        ctx.cluster
            .event(reference(&view.claims[i]), false, reason, "Disrupt", msg)
            .await;
    }
    let eligible = view
        .facts
        .iter()
        .enumerate()
        .filter(|(i, _)| !pass.blocked.iter().any(|(b, _)| b == i))
        .count();
    ctx.metrics
        .disruption_eligible
        .get_or_create(&labels(&[("reason", Reason::Underutilized.label())]))
        .set(eligible as i64);
    for reason in [Reason::Empty, Reason::Underutilized] {
        let room = outrigger_disruption::budgets(&view.facts, &view.policies, now, reason);
        for (pool, n) in room {
            ctx.metrics
                .allowed_disruptions
                .get_or_create(&labels(&[
                    ("nodepool", pool.as_str()),
                    ("reason", reason.label()),
                ]))
                .set(n.min(i64::MAX as u32) as i64);
        }
    }
}

/// Whether a pod is on one of the nodes: for the watches (a pod change on
/// a node wakes the controller).
pub(crate) fn relevant(p: &k8s_openapi::api::core::v1::Pod) -> bool {
    p.spec.as_ref().is_some_and(|s| s.node_name.is_some()) && !pods::is_daemon(p)
}
