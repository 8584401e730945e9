//! What pools and node classes say in their status.
//!
//! NodePools and Provisioners: `resources` (the capacity of their nodes and
//! `nodes`, their number), and the conditions `ValidationSucceeded`,
//! `NodeClassReady`, `Ready` (both of those) and `LimitReached` (the
//! pool's usage is at a limit, or pending pods need a node beyond it).
//! KWOKNodeClasses are Ready; EC2NodeClasses list the subnets and security
//! groups their selectors find, with `SubnetsReady`, `SecurityGroupsReady`
//! and `Ready`.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use k8s_openapi::apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::Condition};
use kube::ResourceExt;
use outrigger_karpenter_api::{
    nodeclass::{EC2NodeClass, SecurityGroupStatus, SubnetStatus},
    v1::{NodeClaim, NodeClassReference},
};
use outrigger_runtime::{
    Action,
    conditions::{self, Desired, Status},
    sync::LockExt,
};
use outrigger_scheduling::{model::LABEL_NODEPOOL, resources::Resources};
use outrigger_scheduling_kube::to_quantities;
use outrigger_values::format_resource as fmt_quantity;

use crate::{
    Ctx,
    cluster::{StatusOf, reference},
    pools, upstream,
};

/// Status is also recomputed this often without a change (AWS node
/// classes' subnets and security groups are looked up again).
const PERIOD: Duration = Duration::from_secs(60);
/// How long what an AWS node class's selectors found is trusted.
const DISCOVERY_TTL: Duration = Duration::from_secs(60);

/// Subnets (zone -> id) and security groups an AWS node class's selectors
/// found, or why not.
#[derive(Clone, Debug)]
pub(crate) struct Discovery {
    subnets: Result<BTreeMap<String, String>, String>,
    security_groups: Result<Vec<String>, String>,
}

impl Discovery {
    fn problem(&self) -> Option<String> {
        let mut p = vec![];
        if let Err(e) = &self.subnets {
            p.push(e.clone());
        }
        if let Err(e) = &self.security_groups {
            p.push(e.clone());
        }
        (!p.is_empty()).then(|| p.join("; "))
    }
}

/// What each AWS node class's selectors found: when, for which generation.
pub(crate) type Found = HashMap<String, (Instant, Option<i64>, Discovery)>;

fn class_key(r: &NodeClassReference) -> String {
    format!("{}/{}", r.kind, r.name)
}

/// One status round: discovery (AWS node classes), node classes, pools.
pub async fn run(ctx: &Ctx) -> Action {
    // One status reconcile runs at a time: the memory is taken out for the
    // round and put back.
    let mut found = std::mem::take(&mut *ctx.discovered.locked());
    discover(ctx, &mut found).await;
    // Instances drift from their node class without any object changing
    // (a new image, a subnet or security group retagged): the claims of
    // AWS node classes are checked again every round (the provider caches
    // what it looks up, so this costs few calls).
    if ctx.aws.is_some() {
        for c in ctx.claims.state() {
            if c.status.as_ref().is_some_and(|s| s.provider_id.is_some())
                && ctx
                    .providers
                    .for_class(&c.spec.node_class_ref)
                    .is_some_and(|p| p.name() == "aws")
            {
                ctx.queue.add(crate::Key::Claim(c.name_any()));
            }
        }
    }
    node_classes(ctx, &found).await;
    pools_status(ctx, &found).await;
    *ctx.discovered.locked() = found;
    Action::requeue(PERIOD)
}

/// Looks up the subnets and security groups of every AWS node class in use
/// (EC2NodeClasses and Provisioners' inline providers), at most once a
/// minute each.
async fn discover(ctx: &Ctx, found: &mut Found) {
    let Some(aws) = &ctx.aws else { return };
    // With the generation of the object holding the selectors: a changed
    // selector is looked up at once.
    let mut refs: Vec<(NodeClassReference, Option<i64>)> = ctx
        .ec2nodeclasses
        .state()
        .iter()
        .map(|c| {
            let r = NodeClassReference {
                group: "karpenter.k8s.aws".into(),
                kind: "EC2NodeClass".into(),
                name: c.name_any(),
            };
            (r, c.metadata.generation)
        })
        .collect();
    for p in ctx.provisioners.state() {
        if let Ok(pool) = pools::from_provisioner(&p)
            && pool.node_class.kind == "Provisioner"
        {
            refs.push((pool.node_class, p.metadata.generation));
        }
    }
    let keys: Vec<String> = refs.iter().map(|(r, _)| class_key(r)).collect();
    found.retain(|k, _| keys.contains(k));
    for (r, generation) in refs {
        let key = class_key(&r);
        if found
            .get(&key)
            .is_some_and(|(at, g, _)| at.elapsed() < DISCOVERY_TTL && *g == generation)
        {
            continue;
        }
        let d = match aws.node_class(&r) {
            Ok(class) => {
                let (subnets, security_groups) = aws.discover(&class).await;
                Discovery {
                    subnets,
                    security_groups,
                }
            }
            Err(e) => Discovery {
                subnets: Err(e.clone()),
                security_groups: Err(e),
            },
        };
        found.insert(key, (Instant::now(), generation, d));
    }
}

fn cond(
    list: &mut Vec<Condition>,
    type_: &str,
    ok: Result<(), (&str, String)>,
    generation: Option<i64>,
) -> bool {
    let (status, reason, message) = match ok {
        Ok(()) => (Status::True, type_, String::new()),
        Err((reason, message)) => (Status::False, reason, message),
    };
    conditions::set(
        list,
        Desired {
            type_,
            status,
            reason,
            message,
            observed_generation: generation,
        },
        jiff::Timestamp::now(),
    )
    .unwrap_or(false)
}

async fn patch(ctx: &Ctx, kind: StatusOf, name: &str, status: serde_json::Value) {
    let patch = serde_json::json!({ "status": status });
    if let Err(e) = ctx.cluster.patch_status(kind, name, patch).await {
        tracing::warn!(name, error = %e, "updating status");
    }
}

async fn node_classes(ctx: &Ctx, found: &Found) {
    let kwok = NodeClassReference {
        group: "karpenter.kwok.sh".into(),
        kind: crate::cloud::kwok::KIND.into(),
        name: String::new(),
    };
    if ctx.providers.for_class(&kwok).is_some() {
        for c in ctx.kwoknodeclasses.state() {
            let mut list = c.status.clone().unwrap_or_default().conditions;
            if cond(&mut list, "Ready", Ok(()), c.metadata.generation) {
                patch(
                    ctx,
                    StatusOf::KWOKNodeClass,
                    &c.name_any(),
                    serde_json::json!({ "conditions": list }),
                )
                .await;
            }
        }
    }
    if ctx.aws.is_none() {
        return;
    }
    for c in ctx.ec2nodeclasses.state() {
        class_hash_annotations(ctx, &c).await;
        let key = format!("EC2NodeClass/{}", c.name_any());
        let Some((_, _, d)) = found.get(&key) else {
            continue;
        };
        let old = c.status.clone().unwrap_or_default();
        let mut status = old.clone();
        status.subnets = d
            .subnets
            .as_ref()
            .map(|m| {
                m.iter()
                    .map(|(zone, id)| SubnetStatus {
                        id: id.clone(),
                        zone: zone.clone(),
                        zone_id: None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        status.security_groups = d
            .security_groups
            .as_ref()
            .map(|ids| {
                ids.iter()
                    .map(|id| SecurityGroupStatus {
                        id: id.clone(),
                        name: None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let g = c.metadata.generation;
        let subnets = d
            .subnets
            .as_ref()
            .map(|_| ())
            .map_err(|e| ("SubnetsNotFound", e.clone()));
        let groups = d
            .security_groups
            .as_ref()
            .map(|_| ())
            .map_err(|e| ("SecurityGroupsNotFound", e.clone()));
        cond(&mut status.conditions, "SubnetsReady", subnets, g);
        cond(&mut status.conditions, "SecurityGroupsReady", groups, g);
        let ready = match d.problem() {
            None => Ok(()),
            Some(p) => Err(("NotReady", p)),
        };
        cond(&mut status.conditions, "Ready", ready, g);
        if status != old {
            patch(
                ctx,
                StatusOf::EC2NodeClass,
                &c.name_any(),
                serde_json::to_value(&status).unwrap_or_default(),
            )
            .await;
        }
    }
}

/// The limits `usage` has reached: `cpu 8/8`.
pub(crate) fn limits_reached(limits: &BTreeMap<String, i64>, usage: &Resources) -> Vec<String> {
    limits
        .iter()
        .filter(|(k, l)| usage.get(k) >= **l)
        .map(|(k, l)| {
            format!(
                "{k} {}/{}",
                fmt_quantity(k, usage.get(k)),
                fmt_quantity(k, *l)
            )
        })
        .collect()
}

/// What a pool's status is computed from: the same for NodePools and
/// Provisioners.
pub(crate) struct PoolInput<'a> {
    pub kind: &'static str,
    pub generation: Option<i64>,
    pub old_resources: &'a BTreeMap<String, Quantity>,
    /// `status.nodes` (NodePools only; Provisioners have none).
    pub old_nodes: Option<Option<i64>>,
    pub old_conditions: &'a [Condition],
    /// The pool's limits, or why it is not valid.
    pub valid: Result<BTreeMap<String, i64>, String>,
    /// Why its node class cannot launch, if it cannot.
    pub class_problem: Option<String>,
    /// Pending pods its limits kept from a node at the last batch.
    pub limited: Option<String>,
    /// The capacity of its claims, and how many have a node.
    pub usage: Resources,
    pub nodes: usize,
    pub now: jiff::Timestamp,
}

/// A pool's status as it should be: `None` when it is already so, else the
/// status to write and, when `LimitReached` turns True, the Event's note.
/// Pure.
pub(crate) fn pool_status(p: PoolInput<'_>) -> Option<(serde_json::Value, Option<String>)> {
    let mut resources: BTreeMap<String, Quantity> = to_quantities(&p.usage);
    resources.insert("nodes".into(), Quantity(p.nodes.to_string()));
    let mut list = p.old_conditions.to_vec();
    let g = p.generation;
    let set = |list: &mut Vec<Condition>, t: &str, ok: Result<(), (&str, String)>| {
        let (status, reason, message) = match ok {
            Ok(()) => (Status::True, t, String::new()),
            Err((reason, message)) => (Status::False, reason, message),
        };
        conditions::set(
            list,
            Desired {
                type_: t,
                status,
                reason,
                message,
                observed_generation: g,
            },
            p.now,
        )
        .ok();
    };
    let (validation, class, reached) = match &p.valid {
        Ok(limits) => {
            let mut reached = limits_reached(limits, &p.usage);
            if let Some(why) = &p.limited {
                reached.push(why.clone());
            }
            (Ok(()), p.class_problem.clone(), reached)
        }
        Err(e) => (Err((upstream::VALIDATION_FAILED, e.clone())), None, vec![]),
    };
    let valid = validation.is_ok();
    set(&mut list, "ValidationSucceeded", validation);
    let class_ok = class.is_none();
    set(
        &mut list,
        "NodeClassReady",
        class.map_or(Ok(()), |c| Err(("NodeClassNotReady", c))),
    );
    let ready = match (valid, class_ok) {
        (true, true) => Ok(()),
        (false, _) => Err((
            upstream::VALIDATION_FAILED,
            "the pool is not valid".to_string(),
        )),
        (true, false) => Err(("NodeClassNotReady", "the node class is not ready".into())),
    };
    set(&mut list, "Ready", ready);
    let was_reached = conditions::is_true(p.old_conditions, "LimitReached");
    let message = format!("limits reached: {}", reached.join("; "));
    conditions::set(
        &mut list,
        Desired {
            type_: "LimitReached",
            status: (!reached.is_empty()).into(),
            reason: if reached.is_empty() {
                "WithinLimits"
            } else {
                upstream::LIMIT_REACHED
            },
            message: if reached.is_empty() {
                String::new()
            } else {
                message.clone()
            },
            observed_generation: g,
        },
        p.now,
    )
    .ok();
    let nodes_changed = p.old_nodes.is_some_and(|n| n != Some(p.nodes as i64));
    if resources == *p.old_resources && list == p.old_conditions && !nodes_changed {
        return None;
    }
    let event = (!reached.is_empty() && !was_reached).then_some(message);
    let mut status = serde_json::json!({ "resources": resources, "conditions": list });
    if p.old_nodes.is_some() {
        status["nodes"] = serde_json::json!(p.nodes);
    }
    let _ = p.kind;
    Some((status, event))
}

/// What a pool's status is computed from, gathered from the watches.
struct Facts {
    valid: Result<BTreeMap<String, i64>, String>,
    class_problem: Option<String>,
    limited: Option<String>,
    usage: Resources,
    nodes: usize,
}

async fn pools_status(ctx: &Ctx, found: &Found) {
    let claims = ctx.claims.state();
    let catalogue = ctx.providers.catalogue();
    let limited = ctx.limited.locked().clone();
    let input = |kind: &'static str, name: &str, valid: Result<pools::Pool, String>| -> Facts {
        let mine: Vec<&NodeClaim> = claims
            .iter()
            .map(|c| c.as_ref())
            .filter(|c| {
                c.labels().get(LABEL_NODEPOOL).map(String::as_str) == Some(name)
                    && c.annotations()
                        .get(upstream::POOL_KIND)
                        .is_none_or(|k| k == kind)
            })
            .collect();
        let usage = crate::provision::pool_usage(mine.iter().copied(), name, &catalogue);
        let nodes = mine
            .iter()
            .filter(|c| c.status.as_ref().is_some_and(|s| s.node_name.is_some()))
            .count();
        let class_problem = valid.as_ref().ok().and_then(|pool| {
            ctx.providers.class_problem(&pool.node_class).or_else(|| {
                found
                    .get(&class_key(&pool.node_class))
                    .and_then(|(_, _, d)| d.problem())
            })
        });
        let limited = limited.get(&(kind.to_string(), name.to_string())).cloned();
        Facts {
            valid: valid.map(|p| p.model.limits),
            class_problem,
            limited,
            usage,
            nodes,
        }
    };
    // Both APIs' pools, as one list: (kind, its name for claims, the pool,
    // what its status says now).
    struct One {
        of: StatusOf,
        kind: &'static str,
        name: String,
        reference: k8s_openapi::api::core::v1::ObjectReference,
        generation: Option<i64>,
        resources: BTreeMap<String, Quantity>,
        nodes: Option<Option<i64>>,
        conditions: Vec<Condition>,
        valid: Result<pools::Pool, String>,
    }
    let mut all: Vec<One> = vec![];
    for np in ctx.nodepools.state() {
        hash_annotations(ctx, &np).await;
        let status = np.status.clone().unwrap_or_default();
        all.push(One {
            of: StatusOf::NodePool,
            kind: "nodepool",
            name: np.name_any(),
            reference: reference(np.as_ref()),
            generation: np.metadata.generation,
            resources: status.resources,
            nodes: Some(status.nodes),
            conditions: status.conditions,
            valid: pools::from_nodepool(&np).map_err(join),
        });
    }
    for p in ctx.provisioners.state() {
        let status = p.status.clone().unwrap_or_default();
        all.push(One {
            of: StatusOf::Provisioner,
            kind: "provisioner",
            name: p.name_any(),
            reference: reference(p.as_ref()),
            generation: p.metadata.generation,
            resources: status.resources,
            nodes: None,
            conditions: status.conditions,
            valid: pools::from_provisioner(&p).map_err(join),
        });
    }
    for one in all {
        let Facts {
            valid,
            class_problem,
            limited,
            usage,
            nodes,
        } = input(one.kind, &one.name, one.valid);
        let update = pool_status(PoolInput {
            kind: one.kind,
            generation: one.generation,
            old_resources: &one.resources,
            old_nodes: one.nodes,
            old_conditions: &one.conditions,
            valid,
            class_problem,
            limited,
            usage,
            nodes,
            now: jiff::Timestamp::now(),
        });
        if let Some((s, event)) = update {
            patch(ctx, one.of, &one.name, s).await;
            if let Some(m) = event {
                ctx.cluster
                    .event(one.reference, true, upstream::LIMIT_REACHED, "Provision", m)
                    .await;
            }
        }
    }
}

/// The NodePool's template hash and its version on the NodePool itself,
/// as Karpenter's hash controller writes them (its claims carry the hash
/// they were made from; drift compares the two).
async fn hash_annotations(ctx: &Ctx, np: &outrigger_karpenter_api::v1::NodePool) {
    use outrigger_disruption::drift::HASH_VERSION;
    let Some(hash) = pools::from_nodepool(np).ok().and_then(|p| p.hash) else {
        return;
    };
    let a = np.annotations();
    if a.get(upstream::NODEPOOL_HASH) == Some(&hash)
        && a.get(upstream::NODEPOOL_HASH_VERSION).map(String::as_str) == Some(HASH_VERSION)
    {
        return;
    }
    let patch = serde_json::json!({"metadata": {"annotations": {
        upstream::NODEPOOL_HASH: hash,
        upstream::NODEPOOL_HASH_VERSION: HASH_VERSION,
    }}});
    if let Err(e) = ctx.cluster.patch_nodepool(&np.name_any(), patch).await {
        tracing::warn!(nodepool = %np.name_any(), error = %e, "writing the nodepool's hash");
    }
}

/// The EC2NodeClass's static-field hash and its version on the class, as
/// Karpenter AWS's hash controller writes them (its claims are stamped at
/// launch; a change of the static fields drifts them: `NodeClassDrift`).
async fn class_hash_annotations(ctx: &Ctx, c: &EC2NodeClass) {
    use outrigger_disruption::drift::{
        HASH_VERSION, NODECLASS_HASH, NODECLASS_HASH_VERSION, nodeclass_hash,
    };
    let Ok(spec) = serde_json::to_value(&c.spec) else {
        return;
    };
    let hash = nodeclass_hash(&spec);
    let a = c.annotations();
    if a.get(NODECLASS_HASH) == Some(&hash)
        && a.get(NODECLASS_HASH_VERSION).map(String::as_str) == Some(HASH_VERSION)
    {
        return;
    }
    let patch = serde_json::json!({"metadata": {"annotations": {
        NODECLASS_HASH: hash,
        NODECLASS_HASH_VERSION: HASH_VERSION,
    }}});
    if let Err(e) = ctx.cluster.patch_ec2nodeclass(&c.name_any(), patch).await {
        tracing::warn!(ec2nodeclass = %c.name_any(), error = %e, "writing the node class's hash");
    }
}

fn join(errs: Vec<outrigger_karpenter_api::convert::FieldError>) -> String {
    errs.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reached() {
        let limits = BTreeMap::from([("cpu".to_string(), 8000), ("memory".to_string(), 64 << 30)]);
        let mut usage = Resources {
            cpu_millis: 4000,
            memory_bytes: 16 << 30,
            ..Default::default()
        };
        assert!(limits_reached(&limits, &usage).is_empty());
        usage.cpu_millis = 8000;
        assert_eq!(limits_reached(&limits, &usage), vec!["cpu 8/8"]);
        usage.memory_bytes = 80 << 30;
        assert_eq!(
            limits_reached(&limits, &usage),
            vec!["cpu 8/8", "memory 80Gi/64Gi"]
        );
    }

    fn input<'a>(
        old_resources: &'a BTreeMap<String, Quantity>,
        old_conditions: &'a [Condition],
    ) -> PoolInput<'a> {
        PoolInput {
            kind: "nodepool",
            generation: Some(3),
            old_resources,
            old_nodes: Some(None),
            old_conditions,
            valid: Ok(BTreeMap::from([("cpu".to_string(), 8000)])),
            class_problem: None,
            limited: None,
            usage: Resources {
                cpu_millis: 4000,
                memory_bytes: 16 << 30,
                pods: 58,
                ..Default::default()
            },
            nodes: 2,
            now: jiff::Timestamp::now(),
        }
    }

    fn conditions_of(v: &serde_json::Value) -> Vec<Condition> {
        serde_json::from_value(v["conditions"].clone()).unwrap()
    }

    fn get<'a>(cs: &'a [Condition], t: &str) -> &'a Condition {
        cs.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn a_valid_pool_within_its_limits_is_ready_and_counts_its_nodes() {
        let (r, c) = (BTreeMap::new(), vec![]);
        let (status, event) = pool_status(input(&r, &c)).unwrap();
        assert_eq!(status["resources"]["cpu"], "4");
        assert_eq!(status["resources"]["memory"], "16Gi");
        assert_eq!(status["resources"]["nodes"], "2");
        assert_eq!(status["nodes"], 2);
        let cs = conditions_of(&status);
        for t in ["ValidationSucceeded", "NodeClassReady", "Ready"] {
            assert_eq!(get(&cs, t).status, "True", "{t}");
            assert_eq!(get(&cs, t).observed_generation, Some(3));
        }
        assert_eq!(get(&cs, "LimitReached").status, "False");
        assert_eq!(get(&cs, "LimitReached").reason, "WithinLimits");
        assert_eq!(event, None);
    }

    #[test]
    fn an_unchanged_status_is_not_written_again() {
        let (r, c) = (BTreeMap::new(), vec![]);
        let (status, _) = pool_status(input(&r, &c)).unwrap();
        let resources: BTreeMap<String, Quantity> =
            serde_json::from_value(status["resources"].clone()).unwrap();
        let conds = conditions_of(&status);
        let mut again = input(&resources, &conds);
        again.old_nodes = Some(Some(2));
        assert!(pool_status(again).is_none());
    }

    #[test]
    fn a_pool_at_its_limit_says_so_once_with_an_event() {
        let (r, c) = (BTreeMap::new(), vec![]);
        let mut i = input(&r, &c);
        i.usage.cpu_millis = 8000;
        i.limited = Some("4 pending pod(s) need a node beyond its limits".into());
        let (status, event) = pool_status(i).unwrap();
        let cs = conditions_of(&status);
        let lr = get(&cs, "LimitReached");
        assert_eq!(
            (lr.status.as_str(), lr.reason.as_str()),
            ("True", "LimitReached")
        );
        assert_eq!(
            lr.message,
            "limits reached: cpu 8/8; 4 pending pod(s) need a node beyond its limits"
        );
        assert_eq!(event.as_deref(), Some(lr.message.as_str()));
        // Still at the limit next round: no second Event.
        let mut i = input(&r, &cs);
        i.usage.cpu_millis = 8000;
        i.limited = Some("4 pending pod(s) need a node beyond its limits".into());
        let (_, event) = pool_status(i).unwrap();
        assert_eq!(event, None);
    }

    #[test]
    fn an_invalid_pool_or_node_class_is_not_ready_and_says_why() {
        let (r, c) = (BTreeMap::new(), vec![]);
        let mut i = input(&r, &c);
        i.valid = Err("spec.template.spec.requirements[0]: bad".into());
        let (status, _) = pool_status(i).unwrap();
        let cs = conditions_of(&status);
        let v = get(&cs, "ValidationSucceeded");
        assert_eq!(
            (v.status.as_str(), v.reason.as_str()),
            ("False", "ValidationFailed")
        );
        assert_eq!(v.message, "spec.template.spec.requirements[0]: bad");
        assert_eq!(get(&cs, "Ready").reason, "ValidationFailed");

        let mut i = input(&r, &c);
        i.class_problem = Some("KWOKNodeClass missing not found".into());
        let (status, _) = pool_status(i).unwrap();
        let cs = conditions_of(&status);
        let n = get(&cs, "NodeClassReady");
        assert_eq!(
            (n.status.as_str(), n.message.as_str()),
            ("False", "KWOKNodeClass missing not found")
        );
        let ready = get(&cs, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "NodeClassNotReady")
        );
    }

    #[tokio::test]
    async fn a_round_writes_each_pools_status_from_its_claims() {
        use crate::testing::{claim, harness, nodepool};
        let h = harness();
        h.mem.put_nodepool(nodepool(
            "default",
            None,
            Some(serde_json::json!({"cpu": "2"})),
        ));
        h.mem.put_claim(claim("default-a", "default"));
        crate::lifecycle::reconcile(&h.ctx, "default-a")
            .await
            .unwrap();
        assert_eq!(run(&h.ctx).await, Action::requeue(PERIOD));
        let np = h.mem.nodepool("default").unwrap();
        let st = np.status.unwrap();
        // The claim's m5.large: 2 cpu, the pool's limit.
        assert_eq!(st.resources["cpu"].0, "2");
        assert_eq!(st.resources["nodes"].0, "0");
        let lr = st
            .conditions
            .iter()
            .find(|c| c.type_ == "LimitReached")
            .unwrap();
        assert_eq!(
            (lr.status.as_str(), lr.message.as_str()),
            ("True", "limits reached: cpu 2/2")
        );
        assert!(
            h.mem
                .events()
                .iter()
                .any(|(w, r, _)| *w && r == upstream::LIMIT_REACHED)
        );
        // The pool carries its template's hash, as Karpenter's hash
        // controller writes it; a template change moves it.
        let hash = |h: &crate::testing::Harness| {
            let np = h.mem.nodepool("default").unwrap();
            let a = np.annotations();
            assert_eq!(
                a[upstream::NODEPOOL_HASH_VERSION],
                outrigger_disruption::drift::HASH_VERSION
            );
            a[upstream::NODEPOOL_HASH].clone()
        };
        let before = hash(&h);
        let mut np = h.mem.nodepool("default").unwrap();
        np.spec
            .template
            .metadata
            .labels
            .insert("team".into(), "a".into());
        h.mem.put_nodepool(np);
        run(&h.ctx).await;
        assert_ne!(hash(&h), before);
    }
}
