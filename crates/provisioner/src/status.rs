//! What pools and node classes say in their status.
//!
//! NodePools and Provisioners: `resources` (the capacity of their nodes and
//! `nodes`, their number), and the conditions `ValidationSucceeded`,
//! `NodeClassReady`, `Ready` (both of those) and `LimitReached` (the
//! pool's usage is at a limit, or pending pods need a node beyond it).
//! KWOKNodeClasses are Ready; EC2NodeClasses list the subnets and security
//! groups their selectors find, with `SubnetsReady`, `SecurityGroupsReady`
//! and `Ready`.

use outrigger_runtime::sync::LockExt;
use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::Condition};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
};
use outrigger_karpenter_api::{
    nodeclass::{EC2NodeClass, KWOKNodeClass, SecurityGroupStatus, SubnetStatus},
    v1::{NodeClaim, NodeClassReference, NodePool},
    v1alpha5::Provisioner,
};
use outrigger_runtime::conditions::{self, Desired, Status};
use outrigger_scheduling::{model::LABEL_NODEPOOL, resources::Resources};
use tokio_util::sync::CancellationToken;

use crate::{
    Ctx,
    lifecycle::aws_class,
    pools,
    provider::{Which, to_quantities, which},
};

const PERIOD: Duration = Duration::from_secs(3);
/// How long what an AWS node class's selectors found is trusted.
const DISCOVERY_TTL: Duration = Duration::from_secs(60);

/// Subnets (zone -> id) and security groups an AWS node class's selectors
/// found, or why not.
#[derive(Clone, Debug)]
struct Discovery {
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
type Found = HashMap<String, (Instant, Option<i64>, Discovery)>;

fn class_key(r: &NodeClassReference) -> String {
    format!("{}/{}", r.kind, r.name)
}

/// Why a pool of this node class cannot launch now (the class is missing,
/// its provider is not enabled, or the kind is not served), if it cannot.
pub(crate) fn class_problem(ctx: &Ctx, r: &NodeClassReference) -> Option<String> {
    match which(r) {
        Which::Kwok if ctx.kwok.is_none() => {
            Some("the kwok provider is not enabled (--providers)".into())
        }
        Which::Kwok => ctx
            .kwoknodeclasses
            .find(|c| c.name_any() == r.name)
            .is_none()
            .then(|| format!("KWOKNodeClass {} not found", r.name)),
        Which::Aws if ctx.aws.is_none() => {
            Some("the aws provider is not enabled (--providers)".into())
        }
        Which::Aws => aws_class(ctx, r).err(),
    }
}

/// Keeps pool and node class status current until `stop`.
pub async fn run(ctx: Arc<Ctx>, stop: CancellationToken) {
    let mut found: Found = HashMap::new();
    loop {
        let round = async {
            discover(&ctx, &mut found).await;
            node_classes(&ctx, &found).await;
            pools_status(&ctx, &found).await;
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = round => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(PERIOD) => {}
        }
    }
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
        let d = match aws_class(ctx, &r) {
            Ok(class) => {
                let (subnets, groups) = aws.aws.discover(&class).await;
                Discovery {
                    subnets: subnets.map_err(|e| e.to_string()),
                    security_groups: groups.map_err(|e| e.to_string()),
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

async fn patch<K>(api: &Api<K>, name: &str, status: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({ "status": status });
    if let Err(e) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(name, error = %e, "updating status");
    }
}

async fn node_classes(ctx: &Ctx, found: &Found) {
    if ctx.kwok.is_some() {
        let api: Api<KWOKNodeClass> = Api::all(ctx.client.clone());
        for c in ctx.kwoknodeclasses.state() {
            let mut list = c.status.clone().unwrap_or_default().conditions;
            if cond(&mut list, "Ready", Ok(()), c.metadata.generation) {
                patch(
                    &api,
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
    let api: Api<EC2NodeClass> = Api::all(ctx.client.clone());
    for c in ctx.ec2nodeclasses.state() {
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
                &api,
                &c.name_any(),
                serde_json::to_value(&status).unwrap_or_default(),
            )
            .await;
        }
    }
}

use outrigger_values::format_resource as fmt_quantity;

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

/// One pool's status: the same for NodePools and Provisioners.
struct PoolStatus<'a> {
    kind: &'static str,
    name: String,
    generation: Option<i64>,
    old_resources: &'a BTreeMap<String, Quantity>,
    /// `status.nodes` (NodePools only; Provisioners have none).
    old_nodes: Option<Option<i64>>,
    old_conditions: &'a [Condition],
    valid: Result<pools::Pool, String>,
}

async fn pools_status(ctx: &Ctx, found: &Found) {
    let claims: Vec<Arc<NodeClaim>> = ctx.claims.state();
    // The catalogue (a copy of every provider's types) is only needed for
    // claims not launched yet, whose capacity is their largest type; this
    // runs every few seconds, so it is not copied otherwise.
    let (catalogue, kwok_idx, aws_idx) = if claims
        .iter()
        .any(|c| c.status.as_ref().is_none_or(|s| s.capacity.is_empty()))
    {
        ctx.catalogue()
    } else {
        Default::default()
    };
    let limited = ctx.limited.locked().clone();
    let one = |p: PoolStatus<'_>| -> Option<(serde_json::Value, Option<String>)> {
        let mine: Vec<&NodeClaim> = claims
            .iter()
            .map(|c| c.as_ref())
            .filter(|c| {
                c.labels().get(LABEL_NODEPOOL) == Some(&p.name)
                    && c.annotations()
                        .get("karpenter.sh/nodepool-kind")
                        .is_none_or(|k| k == p.kind)
            })
            .collect();
        let usage = crate::provision::pool_usage(
            mine.iter().copied(),
            &p.name,
            &catalogue,
            &kwok_idx,
            &aws_idx,
        );
        let nodes = mine
            .iter()
            .filter(|c| c.status.as_ref().is_some_and(|s| s.node_name.is_some()))
            .count();
        let mut resources: BTreeMap<String, Quantity> = to_quantities(&usage)
            .into_keys()
            .map(|k| {
                let v = Quantity(fmt_quantity(&k, usage.get(&k)));
                (k, v)
            })
            .collect();
        resources.insert("nodes".into(), Quantity(nodes.to_string()));
        let mut list = p.old_conditions.to_vec();
        let g = p.generation;
        let (validation, class, reached) = match &p.valid {
            Ok(pool) => {
                let class = class_problem(ctx, &pool.node_class).or_else(|| {
                    found
                        .get(&class_key(&pool.node_class))
                        .and_then(|(_, _, d)| d.problem())
                });
                let mut reached = limits_reached(&pool.model.limits, &usage);
                if let Some(why) = limited.get(&(pool.kind().to_string(), p.name.clone())) {
                    reached.push(why.clone());
                }
                (Ok(()), class, reached)
            }
            Err(e) => (Err(("ValidationFailed", e.clone())), None, vec![]),
        };
        let valid = validation.is_ok();
        cond(&mut list, "ValidationSucceeded", validation, g);
        let class_ok = class.is_none();
        cond(
            &mut list,
            "NodeClassReady",
            class.map_or(Ok(()), |c| Err(("NodeClassNotReady", c))),
            g,
        );
        let ready = match (valid, class_ok) {
            (true, true) => Ok(()),
            (false, _) => Err(("ValidationFailed", "the pool is not valid".to_string())),
            (true, false) => Err(("NodeClassNotReady", "the node class is not ready".into())),
        };
        cond(&mut list, "Ready", ready, g);
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
                    "LimitReached"
                },
                message: if reached.is_empty() {
                    String::new()
                } else {
                    message.clone()
                },
                observed_generation: g,
            },
            jiff::Timestamp::now(),
        )
        .ok();
        let nodes_changed = p.old_nodes.is_some_and(|n| n != Some(nodes as i64));
        if resources == *p.old_resources && list == p.old_conditions && !nodes_changed {
            return None;
        }
        let event = (!reached.is_empty() && !was_reached).then_some(message);
        let mut status = serde_json::json!({ "resources": resources, "conditions": list });
        if p.old_nodes.is_some() {
            status["nodes"] = serde_json::json!(nodes);
        }
        Some((status, event))
    };
    let api: Api<NodePool> = Api::all(ctx.client.clone());
    for np in ctx.nodepools.state() {
        let status = np.status.clone().unwrap_or_default();
        let update = one(PoolStatus {
            kind: "nodepool",
            name: np.name_any(),
            generation: np.metadata.generation,
            old_resources: &status.resources,
            old_nodes: Some(status.nodes),
            old_conditions: &status.conditions,
            valid: pools::from_nodepool(&np).map_err(join),
        });
        if let Some((s, event)) = update {
            patch(&api, &np.name_any(), s).await;
            if let Some(m) = event {
                ctx.events
                    .warning(np.as_ref(), "LimitReached", "Provision", m)
                    .await;
            }
        }
    }
    let api: Api<Provisioner> = Api::all(ctx.client.clone());
    for p in ctx.provisioners.state() {
        let status = p.status.clone().unwrap_or_default();
        let update = one(PoolStatus {
            kind: "provisioner",
            name: p.name_any(),
            generation: p.metadata.generation,
            old_resources: &status.resources,
            old_nodes: None,
            old_conditions: &status.conditions,
            valid: pools::from_provisioner(&p).map_err(join),
        });
        if let Some((s, event)) = update {
            patch(&api, &p.name_any(), s).await;
            if let Some(m) = event {
                ctx.events
                    .warning(p.as_ref(), "LimitReached", "Provision", m)
                    .await;
            }
        }
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
}
