//! One stack at a time: build the model, hold the objects with a finalizer,
//! deploy, write the address back; delete what has no object left.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use k8s_openapi::api::{
    core::v1::{LoadBalancerIngress, LoadBalancerStatus, Node, Service},
    discovery::v1::EndpointSlice,
    networking::v1::{
        Ingress, IngressLoadBalancerIngress, IngressLoadBalancerStatus, IngressPortStatus,
    },
};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::reflector::ObjectRef,
};
use outrigger_lb_api::v1beta1::TargetGroupBinding;
use outrigger_lb_model::{
    ingress::{self, Group},
    model::{
        FINALIZER_GROUP_PREFIX, FINALIZER_INGRESS, FINALIZER_SERVICE, Stack, StackId,
        TAG_INGRESS_STACK, TAG_SERVICE_STACK, Target, TargetGroup, TargetType,
    },
    service, targets,
};
use outrigger_runtime::conditions::{self, Desired, Status};
use tokio_util::sync::CancellationToken;

use crate::{Ctx, Error};

use crate::upstream::{
    CONDITION_READY, DEPLOYED, FAILED_BUILD_MODEL, FAILED_DEPLOY_MODEL, FINALIZER_BINDING,
    SUCCESSFULLY_DELETED, SUCCESSFULLY_RECONCILED,
};

fn namespace_labels(ctx: &Ctx) -> BTreeMap<String, BTreeMap<String, String>> {
    ctx.namespaces
        .state()
        .iter()
        .map(|n| (n.name_any(), n.labels().clone()))
        .collect()
}

/// The IngressGroups of the Ingresses that are ours.
pub(crate) fn groups(ctx: &Ctx) -> Vec<Group> {
    let ingresses: Vec<Ingress> = ctx
        .ingresses
        .state()
        .iter()
        .map(|i| (**i).clone())
        .collect();
    let classes: Vec<_> = ctx.classes.state().iter().map(|c| (**c).clone()).collect();
    let params: Vec<_> = ctx.params.state().iter().map(|p| (**p).clone()).collect();
    ingress::groups(
        &ingresses,
        &classes,
        &params,
        &namespace_labels(ctx),
        &ctx.cfg,
    )
}

/// The group an Ingress is in now, if it is ours.
pub(crate) fn group_of(ctx: &Ctx, ing: &Ingress) -> Option<StackId> {
    let (ns, name) = (ing.namespace().unwrap_or_default(), ing.name_any());
    groups(ctx).into_iter().find_map(|g| {
        g.members
            .iter()
            .any(|m| m.namespace() == ns && m.name() == name)
            .then(|| g.id.clone())
    })
}

/// The groups whose finalizers an Ingress carries.
pub(crate) fn finalized_groups(ing: &Ingress) -> Vec<StackId> {
    ing.finalizers()
        .iter()
        .filter_map(|f| {
            if f == FINALIZER_INGRESS {
                Some(StackId::Ingress {
                    namespace: ing.namespace().unwrap_or_default(),
                    name: ing.name_any(),
                })
            } else {
                f.strip_prefix(FINALIZER_GROUP_PREFIX)
                    .map(|g| StackId::IngressGroup {
                        name: g.to_string(),
                    })
            }
        })
        .collect()
}

/// Groups with a member whose backend is this Service.
pub(crate) fn groups_using(ctx: &Ctx, namespace: &str, service: &str) -> Vec<StackId> {
    groups(ctx)
        .into_iter()
        .filter(|g| {
            g.members
                .iter()
                .any(|m| m.namespace() == namespace && backends(&m.ingress).contains(service))
        })
        .map(|g| g.id)
        .collect()
}

fn backends(ing: &Ingress) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Some(spec) = &ing.spec else { return out };
    if let Some(s) = spec
        .default_backend
        .as_ref()
        .and_then(|b| b.service.as_ref())
    {
        out.insert(s.name.clone());
    }
    for r in spec.rules.iter().flatten() {
        for p in r.http.iter().flat_map(|h| h.paths.iter()) {
            if let Some(s) = &p.backend.service {
                out.insert(s.name.clone());
            }
        }
    }
    // Backends named in actions.* annotations (weighted forwards).
    for (k, v) in ing.annotations() {
        if k.starts_with("alb.ingress.kubernetes.io/actions.")
            && let Ok(j) = serde_json::from_str::<serde_json::Value>(v)
        {
            collect_service_names(&j, &mut out);
        }
    }
    out
}

fn collect_service_names(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "serviceName"
                    && let Some(s) = x.as_str()
                {
                    out.insert(s.to_string());
                }
                collect_service_names(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_service_names(x, out)),
        _ => {}
    }
}

/// What about a node its instance targets depend on.
pub(crate) fn node_fingerprint(n: &Node) -> String {
    let ready = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone())
        .unwrap_or_default();
    format!(
        "{ready}|{:?}|{:?}|{}",
        n.labels(),
        n.spec.as_ref().and_then(|s| s.provider_id.clone()),
        n.metadata.deletion_timestamp.is_some()
    )
}

/// Stacks with instance targets (nodes matter to them).
pub(crate) fn instance_stacks(ctx: &Ctx) -> Vec<StackId> {
    let mut out = vec![];
    for s in ctx.services.state() {
        if service::is_ours(&s, &ctx.cfg)
            && let Ok(stack) = service::build(&s, &ctx.cfg)
            && stack
                .target_groups
                .iter()
                .any(|t| t.target_type == TargetType::Instance)
        {
            out.push(stack.id);
        }
    }
    for g in groups(ctx) {
        // Ingress target types are per backend: cheap enough to rebuild.
        if let Ok(stack) = build_group(ctx, &g)
            && stack
                .target_groups
                .iter()
                .any(|t| t.target_type == TargetType::Instance)
        {
            out.push(stack.id);
        }
    }
    out
}

fn services_by_key(ctx: &Ctx) -> BTreeMap<(String, String), Service> {
    ctx.services
        .state()
        .iter()
        .map(|s| {
            (
                (s.namespace().unwrap_or_default(), s.name_any()),
                (**s).clone(),
            )
        })
        .collect()
}

fn build_group(ctx: &Ctx, g: &Group) -> Result<Stack, outrigger_lb_model::GroupError> {
    ingress::build(g, &services_by_key(ctx), &ctx.cfg)
}

/// The targets of every target group of the stack.
fn stack_targets(ctx: &Ctx, stack: &Stack) -> BTreeMap<String, Vec<Target>> {
    // Only the slices of the stack's Services, and nodes only when a
    // group registers instances.
    let services: BTreeSet<(&str, &str)> = stack
        .target_groups
        .iter()
        .map(|t| (t.backend.namespace.as_str(), t.backend.service.as_str()))
        .collect();
    let slices: Vec<EndpointSlice> = ctx
        .slices
        .state()
        .iter()
        .filter(|s| {
            let ns = s.metadata.namespace.as_deref().unwrap_or_default();
            s.labels()
                .get("kubernetes.io/service-name")
                .is_some_and(|svc| services.contains(&(ns, svc.as_str())))
        })
        .map(|s| (**s).clone())
        .collect();
    let nodes: Vec<Node> = if stack
        .target_groups
        .iter()
        .any(|t| t.target_type == TargetType::Instance)
    {
        ctx.nodes.state().iter().map(|n| (**n).clone()).collect()
    } else {
        vec![]
    };
    stack
        .target_groups
        .iter()
        .map(|tg| {
            let t = match tg.target_type {
                TargetType::Ip => targets::ip_targets(tg, &slices),
                TargetType::Instance => targets::instance_targets(tg, &nodes),
            };
            (tg.resource_id.clone(), t)
        })
        .collect()
}

async fn add_finalizer<K>(api: &Api<K>, obj: &K, f: &str) -> Result<(), Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    outrigger_runtime::finalizer::add(api, obj, f).await?;
    Ok(())
}

async fn remove_finalizer<K>(api: &Api<K>, obj: &K, f: &str) -> Result<(), Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    outrigger_runtime::finalizer::remove(api, obj, f).await?;
    Ok(())
}

/// A Service's NLB.
pub(crate) async fn service(ctx: &Ctx, id: &StackId) -> Result<(), Error> {
    let StackId::Service { namespace, name } = id else {
        return Ok(());
    };
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(svc) = ctx.services.get(&ObjectRef::new(name).within(namespace)) else {
        // Gone without our finalizer (or removed by us): nothing may stay.
        ctx.elb.delete(id).await?;
        return Ok(());
    };
    let ours = service::is_ours(&svc, &ctx.cfg);
    let held = svc.finalizers().iter().any(|f| f == FINALIZER_SERVICE);
    if svc.metadata.deletion_timestamp.is_some() || !ours {
        if held {
            ctx.elb.delete(id).await?;
            if !ours && svc.metadata.deletion_timestamp.is_none() {
                // No longer ours (type or class changed): clear the address.
                let patch = serde_json::json!({"status": {"loadBalancer": {"ingress": null}}});
                api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
            remove_finalizer(&api, &*svc, FINALIZER_SERVICE).await?;
            ctx.events
                .normal(
                    &*svc,
                    SUCCESSFULLY_DELETED,
                    "Delete",
                    "Deleted the load balancer".into(),
                )
                .await;
        }
        return Ok(());
    }
    let stack = match service::build(&svc, &ctx.cfg) {
        Ok(s) => s,
        Err(e) => {
            // Nothing is created (what exists from an earlier, valid spec
            // is left as it is).
            tracing::warn!(service = %format!("{namespace}/{name}"), error = %e, "invalid service");
            ctx.events
                .warning(
                    &*svc,
                    FAILED_BUILD_MODEL,
                    "Reconcile",
                    format!("Failed build model due to {e}"),
                )
                .await;
            service_condition(ctx, &api, &svc, Status::False, e.reason(), e.to_string()).await?;
            return Ok(());
        }
    };
    add_finalizer(&api, &*svc, FINALIZER_SERVICE).await?;
    let targets = stack_targets(ctx, &stack);
    let deployed = match ctx.elb.deploy(&stack, &targets).await {
        Ok(d) => d,
        Err(e) => {
            ctx.events
                .warning(
                    &*svc,
                    FAILED_DEPLOY_MODEL,
                    "Reconcile",
                    format!("Failed deploy model due to {e}"),
                )
                .await;
            service_condition(
                ctx,
                &api,
                &svc,
                Status::False,
                FAILED_DEPLOY_MODEL,
                e.to_string(),
            )
            .await?;
            return Err(e.into());
        }
    };
    let hostname = deployed.dns_name.to_lowercase();
    let current = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .and_then(|i| i.first())
        .and_then(|i| i.hostname.clone());
    if current.as_deref() != Some(hostname.as_str()) {
        let status = LoadBalancerStatus {
            ingress: Some(vec![LoadBalancerIngress {
                hostname: Some(hostname.clone()),
                ..Default::default()
            }]),
        };
        let patch = serde_json::json!({"status": {"loadBalancer": status}});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        ctx.events
            .normal(
                &*svc,
                SUCCESSFULLY_RECONCILED,
                "Reconcile",
                "Successfully reconciled".into(),
            )
            .await;
        tracing::info!(service = %format!("{namespace}/{name}"), hostname = %hostname, "{}", DEPLOYED);
    }
    service_condition(
        ctx,
        &api,
        &svc,
        Status::True,
        "Reconciled",
        format!("load balancer {} ({})", stack.load_balancer.name, hostname),
    )
    .await?;
    Ok(())
}

async fn service_condition(
    _ctx: &Ctx,
    api: &Api<Service>,
    svc: &Service,
    status: Status,
    reason: &str,
    message: String,
) -> Result<(), Error> {
    let mut conds = svc
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let changed = conditions::set(
        &mut conds,
        Desired {
            type_: CONDITION_READY,
            status,
            reason,
            message,
            observed_generation: svc.metadata.generation,
        },
        jiff::Timestamp::now(),
    )
    .unwrap_or(false);
    if changed {
        conditions::patch_status(api, &svc.name_any(), &conds).await?;
    }
    Ok(())
}

/// An IngressGroup's ALB.
pub(crate) async fn ingress_group(ctx: &Ctx, id: &StackId) -> Result<(), Error> {
    let finalizer = ingress::finalizer(id);
    let group = groups(ctx).into_iter().find(|g| g.id == *id);
    let active: Vec<Ingress> = group
        .as_ref()
        .map(|g| g.members.iter().map(|m| m.ingress.clone()).collect())
        .unwrap_or_default();
    // Ingresses holding this group's finalizer that are no longer active
    // members (deleted, moved to another group, no longer ours).
    let leaving: Vec<Arc<Ingress>> = ctx
        .ingresses
        .state()
        .into_iter()
        .filter(|i| {
            i.finalizers().contains(&finalizer)
                && !active
                    .iter()
                    .any(|m| m.namespace() == i.namespace() && m.name_any() == i.name_any())
        })
        .collect();
    if active.is_empty() {
        ctx.elb.delete(id).await?;
        for i in &leaving {
            let api: Api<Ingress> =
                Api::namespaced(ctx.client.clone(), &i.namespace().unwrap_or_default());
            remove_finalizer(&api, &**i, &finalizer).await?;
            if i.metadata.deletion_timestamp.is_none() {
                clear_ingress_address(&api, i).await?;
            }
        }
        return Ok(());
    }
    let Some(group) = group else { return Ok(()) };
    let stack = match build_group(ctx, &group) {
        Ok(s) => s,
        Err(e) => {
            for m in &group.members {
                let (ns, name) = (m.namespace(), m.name());
                let errs: Vec<String> = e.for_member(ns, name).map(|x| x.to_string()).collect();
                let note = if errs.is_empty() {
                    format!(
                        "Failed build model: another member of the group is invalid ({} problem(s))",
                        e.errors.len()
                    )
                } else {
                    format!("Failed build model due to {}", errs.join("; "))
                };
                tracing::warn!(ingress = %format!("{ns}/{name}"), group = ?id, problem = %note, "invalid ingress");
                ctx.events
                    .warning(&m.ingress, FAILED_BUILD_MODEL, "Reconcile", note)
                    .await;
                // A listener over ELBv2's rule limit is also said in the
                // Ingress's status, on the port it concerns
                // (status.loadBalancer.ingress[].ports[].error).
                let ports: Vec<IngressPortStatus> = e
                    .for_member(ns, name)
                    .filter_map(|x| match x {
                        outrigger_lb_model::ModelError::TooManyRules { port, .. } => {
                            Some(IngressPortStatus {
                                port: *port,
                                protocol: "TCP".into(),
                                error: Some(ERROR_TOO_MANY_RULES.into()),
                            })
                        }
                        _ => None,
                    })
                    .collect();
                if !ports.is_empty() && port_errors(&m.ingress) != ports {
                    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), ns);
                    let status = IngressLoadBalancerStatus {
                        ingress: Some(vec![IngressLoadBalancerIngress {
                            hostname: address_of(&m.ingress),
                            ports: Some(ports),
                            ..Default::default()
                        }]),
                    };
                    let patch = serde_json::json!({"status": {"loadBalancer": status}});
                    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await?;
                }
            }
            return Ok(());
        }
    };
    for m in &active {
        let api: Api<Ingress> =
            Api::namespaced(ctx.client.clone(), &m.namespace().unwrap_or_default());
        add_finalizer(&api, m, &finalizer).await?;
    }
    let targets = stack_targets(ctx, &stack);
    let deployed = match ctx.elb.deploy(&stack, &targets).await {
        Ok(d) => d,
        Err(e) => {
            for m in &active {
                ctx.events
                    .warning(
                        m,
                        FAILED_DEPLOY_MODEL,
                        "Reconcile",
                        format!("Failed deploy model due to {e}"),
                    )
                    .await;
            }
            return Err(e.into());
        }
    };
    let hostname = deployed.dns_name.to_lowercase();
    for m in &active {
        if address_of(m).as_deref() == Some(hostname.as_str()) && port_errors(m).is_empty() {
            continue;
        }
        let api: Api<Ingress> =
            Api::namespaced(ctx.client.clone(), &m.namespace().unwrap_or_default());
        let status = IngressLoadBalancerStatus {
            ingress: Some(vec![IngressLoadBalancerIngress {
                hostname: Some(hostname.clone()),
                ..Default::default()
            }]),
        };
        let patch = serde_json::json!({"status": {"loadBalancer": status}});
        api.patch_status(
            &m.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        ctx.events
            .normal(
                m,
                SUCCESSFULLY_RECONCILED,
                "Reconcile",
                "Successfully reconciled".into(),
            )
            .await;
        tracing::info!(ingress = %format!("{}/{}", m.namespace().unwrap_or_default(), m.name_any()), hostname = %hostname, "{}", DEPLOYED);
    }
    // Their rules are gone now: let them go.
    for i in &leaving {
        let api: Api<Ingress> =
            Api::namespaced(ctx.client.clone(), &i.namespace().unwrap_or_default());
        remove_finalizer(&api, &**i, &finalizer).await?;
        if i.metadata.deletion_timestamp.is_none() && group_of(ctx, i).is_none() {
            clear_ingress_address(&api, i).await?;
        }
    }
    Ok(())
}

/// The error the status shows on a port whose listener needs more rules
/// than ELBv2 allows.
pub const ERROR_TOO_MANY_RULES: &str = "ingress.k8s.aws/TooManyRules";

fn address_of(i: &Ingress) -> Option<String> {
    i.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .and_then(|i| i.first())
        .and_then(|i| i.hostname.clone())
}

fn port_errors(i: &Ingress) -> Vec<IngressPortStatus> {
    i.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .and_then(|i| i.first())
        .and_then(|i| i.ports.clone())
        .unwrap_or_default()
}

async fn clear_ingress_address(api: &Api<Ingress>, i: &Ingress) -> Result<(), Error> {
    let patch = serde_json::json!({"status": {"loadBalancer": {"ingress": null}}});
    api.patch_status(
        &i.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// A TargetGroupBinding: the Service's endpoints registered in a target
/// group made outside the cluster.
pub(crate) async fn binding(ctx: &Ctx, namespace: &str, name: &str) -> Result<(), Error> {
    let api: Api<TargetGroupBinding> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(b) = ctx.bindings.get(&ObjectRef::new(name).within(namespace)) else {
        return Ok(());
    };
    let arn = match &b.spec.target_group_arn {
        Some(a) if !a.is_empty() => Some(a.clone()),
        _ => match &b.spec.target_group_name {
            Some(n) => ctx.elb.target_group_arn(n).await?,
            None => None,
        },
    };
    if b.metadata.deletion_timestamp.is_some() {
        if let Some(arn) = &arn {
            ctx.elb.sync_targets(arn, &BTreeSet::new()).await?;
        }
        remove_finalizer(&api, &*b, FINALIZER_BINDING).await?;
        return Ok(());
    }
    let Some(arn) = arn else {
        binding_condition(
            ctx,
            &api,
            &b,
            Status::False,
            "TargetGroupNotFound",
            "neither targetGroupARN nor a target group named targetGroupName was found".into(),
        )
        .await?;
        return Ok(());
    };
    let Some(svc) = ctx
        .services
        .get(&ObjectRef::new(&b.spec.service_ref.name).within(namespace))
    else {
        binding_condition(
            ctx,
            &api,
            &b,
            Status::False,
            "ServiceNotFound",
            format!("service {namespace}/{} not found", b.spec.service_ref.name),
        )
        .await?;
        // Retried with backoff: the Service may come after its binding.
        return Err(Error::Waiting(format!(
            "service {namespace}/{} not found",
            b.spec.service_ref.name
        )));
    };
    let target_type = match b.spec.target_type {
        Some(outrigger_lb_api::v1beta1::TargetType::Ip) => TargetType::Ip,
        _ => TargetType::Instance,
    };
    let tg = match binding_target_group(&svc, &b.spec.service_ref.port, target_type) {
        Ok(t) => t,
        Err(e) => {
            binding_condition(
                ctx,
                &api,
                &b,
                Status::False,
                "InvalidServiceRef",
                e.to_string(),
            )
            .await?;
            return Ok(());
        }
    };
    add_finalizer(&api, &*b, FINALIZER_BINDING).await?;
    let slices: Vec<EndpointSlice> = ctx.slices.state().iter().map(|s| (**s).clone()).collect();
    let nodes: Vec<Node> = ctx.nodes.state().iter().map(|n| (**n).clone()).collect();
    let want: BTreeSet<Target> = match target_type {
        TargetType::Ip => targets::ip_targets(&tg, &slices),
        TargetType::Instance => targets::instance_targets(&tg, &nodes),
    }
    .into_iter()
    .collect();
    ctx.elb.sync_targets(&arn, &want).await?;
    binding_condition(
        ctx,
        &api,
        &b,
        Status::True,
        "Reconciled",
        format!("{} target(s) registered in {arn}", want.len()),
    )
    .await?;
    Ok(())
}

async fn binding_condition(
    _ctx: &Ctx,
    api: &Api<TargetGroupBinding>,
    b: &TargetGroupBinding,
    status: Status,
    reason: &str,
    message: String,
) -> Result<(), Error> {
    let mut conds = b
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let changed = conditions::set(
        &mut conds,
        Desired {
            type_: "Ready",
            status,
            reason,
            message,
            observed_generation: b.metadata.generation,
        },
        jiff::Timestamp::now(),
    )
    .unwrap_or(false);
    if changed {
        let patch = serde_json::json!({"status": {"conditions": conds, "observedGeneration": b.metadata.generation}});
        api.patch_status(
            &b.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    Ok(())
}

/// At start and every sync period: list everything again, reconcile every
/// stack, and delete stacks tagged for this cluster that no object wants.
pub(crate) async fn garbage_collect(ctx: Arc<Ctx>, stop: CancellationToken, period: Duration) {
    // A first pass soon after start: what a crash left behind.
    let mut wait = Duration::from_secs(20);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = period;
        if let Err(e) = ctx.elb.refresh().await {
            tracing::warn!(error = %e, "listing the cluster's load balancers");
            wait = Duration::from_secs(30);
            continue;
        }
        let owned = match ctx.elb.stacks().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "listing the cluster's load balancers");
                continue;
            }
        };
        let services: BTreeSet<String> = ctx
            .services
            .state()
            .iter()
            .filter(|s| {
                service::is_ours(s, &ctx.cfg)
                    || s.finalizers().iter().any(|f| f == FINALIZER_SERVICE)
            })
            .map(|s| format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any()))
            .collect();
        let mut ingress_stacks: BTreeSet<String> =
            groups(&ctx).iter().map(|g| g.id.tag_value()).collect();
        for i in ctx.ingresses.state() {
            for id in finalized_groups(&i) {
                ingress_stacks.insert(id.tag_value());
            }
        }
        for (key, value) in owned {
            let wanted = if key == TAG_SERVICE_STACK {
                services.contains(&value)
            } else if key == TAG_INGRESS_STACK {
                ingress_stacks.contains(&value)
            } else {
                true
            };
            if wanted {
                continue;
            }
            let id = if key == TAG_SERVICE_STACK {
                let (ns, name) = value.split_once('/').unwrap_or(("", &value));
                StackId::Service {
                    namespace: ns.into(),
                    name: name.into(),
                }
            } else if let Some((ns, name)) = value.split_once('/') {
                StackId::Ingress {
                    namespace: ns.into(),
                    name: name.into(),
                }
            } else {
                StackId::IngressGroup {
                    name: value.clone(),
                }
            };
            tracing::info!(stack = %value, "deleting resources no object owns");
            if let Err(e) = ctx.elb.delete(&id).await {
                tracing::warn!(stack = %value, error = %e, "deleting an orphaned stack");
            }
        }
        ctx.enqueue_all();
    }
}

/// The Service port a binding names, as a target group's backend (the
/// target group itself is not ours: only its targets are).
fn binding_target_group(
    svc: &Service,
    port: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
    target_type: TargetType,
) -> Result<TargetGroup, String> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let p = ports
        .iter()
        .find(|p| match port {
            IntOrString::Int(n) => p.port == *n,
            IntOrString::String(s) => p.name.as_deref() == Some(s.as_str()),
        })
        .ok_or_else(|| {
            let shown = match port {
                IntOrString::Int(n) => n.to_string(),
                IntOrString::String(s) => s.clone(),
            };
            format!("service {} has no port {shown}", svc.name_any())
        })?;
    let target_port = match &p.target_port {
        Some(IntOrString::Int(n)) => n.to_string(),
        Some(IntOrString::String(s)) => s.clone(),
        None => p.port.to_string(),
    };
    Ok(TargetGroup {
        resource_id: format!(
            "{}/{}:{}",
            svc.namespace().unwrap_or_default(),
            svc.name_any(),
            p.port
        ),
        name: String::new(),
        protocol: outrigger_lb_model::model::Protocol::Tcp,
        protocol_version: None,
        port: target_port.parse().unwrap_or(p.port),
        target_type,
        ip_address_type: outrigger_lb_model::model::IpAddressType::Ipv4,
        health_check: outrigger_lb_model::model::HealthCheck {
            protocol: outrigger_lb_model::model::Protocol::Tcp,
            port: "traffic-port".into(),
            path: None,
            interval_seconds: 10,
            timeout_seconds: 10,
            healthy_threshold: 3,
            unhealthy_threshold: 3,
            matcher: None,
        },
        attributes: BTreeMap::new(),
        tags: BTreeMap::new(),
        backend: outrigger_lb_model::model::Backend {
            namespace: svc.namespace().unwrap_or_default(),
            service: svc.name_any(),
            port_name: p.name.clone(),
            port: p.port,
            target_port,
            node_port: p.node_port,
            node_labels: BTreeMap::new(),
        },
    })
}
