//! `outrigger load-balancer-controller`: the AWS Load Balancer Controller's
//! job. Services of type LoadBalancer for the NLB class (or with the
//! `aws-load-balancer-type: external` annotation) become network load
//! balancers, Ingresses of class `alb` become application load balancers
//! (one per IngressGroup), and TargetGroupBindings keep existing target
//! groups filled, all through ELBv2.
//!
//! Events on watched objects are mapped to stacks (a Service, an
//! IngressGroup) in a work queue; a worker builds the stack's desired model
//! with `outrigger-lb-model` (pure), and `outrigger-aws-elb` makes AWS
//! match it. Finalizers hold objects until their resources are gone; stacks
//! tagged for this cluster with no object left are garbage-collected.

mod reconcile;
pub mod upstream;

use outrigger_runtime::sync::LockExt;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::api::{
    core::v1::{Namespace, Node, Service},
    discovery::v1::EndpointSlice,
    networking::v1::{Ingress, IngressClass},
};
use kube::{Api, Client, ResourceExt, runtime::reflector::Store};
use outrigger_aws_elb::Elb;
use outrigger_lb_api::v1beta1::{IngressClassParams, TargetGroupBinding};
use outrigger_lb_model::model::StackId;
use outrigger_runtime::{Action, Controller, ErrorKind, KeyKind, queue::Queue};
use outrigger_runtime::{Runtime, events::Events, watch::store_with_changes};
use prometheus_client::metrics::gauge::Gauge;

/// Flags of `outrigger load-balancer-controller` (the AWS Load Balancer
/// Controller's names where they exist).
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The cluster's name: tags every resource, picks subnets.
    #[arg(long, env = "CLUSTER_NAME", default_value = "demo")]
    pub cluster_name: String,
    /// The IngressClass controller name and class this controller serves.
    #[arg(long, default_value = "alb")]
    pub ingress_class: String,
    /// Services with this `spec.loadBalancerClass` are served.
    #[arg(long, default_value = "service.k8s.aws/nlb")]
    pub load_balancer_class: String,
    /// Stacks reconciled at once.
    #[arg(long = "max-concurrent-reconciles", default_value_t = 3)]
    pub workers: usize,
    /// Everything is listed again and every stack reconciled this often
    /// (changes made outside the controller are undone).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub sync_period: Duration,
}

use outrigger_runtime::parse_duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Elb(#[from] outrigger_aws_elb::ElbError),
    /// Something the object needs is not there yet.
    #[error("waiting: {0}")]
    Waiting(String),
}

impl ErrorKind for Error {
    fn kind(&self) -> &'static str {
        match self {
            Error::Kube(e) => e.kind(),
            Error::Elb(_) => "AwsError",
            Error::Waiting(_) => "Waiting",
        }
    }
}

/// What the queue holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Stack(StackId),
    Binding { namespace: String, name: String },
}

impl KeyKind for Key {
    fn kind(&self) -> &'static str {
        match self {
            Key::Stack(StackId::Service { .. }) => "service",
            Key::Stack(_) => "ingress",
            Key::Binding { .. } => "targetgroupbinding",
        }
    }
}

pub(crate) struct Metrics {
    aws_calls: prometheus_client::metrics::family::Family<Vec<(String, String)>, Gauge>,
}

pub(crate) struct Ctx {
    pub client: Client,
    pub events: Events,
    pub elb: Elb,
    pub cfg: outrigger_lb_model::Config,
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub ingresses: Store<Ingress>,
    pub classes: Store<IngressClass>,
    pub params: Store<IngressClassParams>,
    pub nodes: Store<Node>,
    pub namespaces: Store<Namespace>,
    pub bindings: Store<TargetGroupBinding>,
    pub queue: Arc<Queue<Key>>,
    /// The group each Ingress was last seen in (by uid), so a move out of a
    /// group reconciles the old one too.
    pub last_group: Mutex<HashMap<String, StackId>>,
    /// Node name -> what about it matters to instance targets.
    pub node_seen: Mutex<HashMap<String, String>>,
    pub(crate) metrics: Metrics,
}

type Trigger<K> = Box<dyn Fn(&Ctx, &K) + Send + Sync>;

fn forward<K: Send + Sync + 'static>(
    ctx: Arc<Ctx>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Arc<K>>,
    f: Trigger<K>,
) {
    tokio::spawn(async move {
        while let Some(o) = rx.recv().await {
            f(&ctx, &o);
        }
    });
}

impl Ctx {
    /// Every stack there is an object for, and every Ingress stack still
    /// holding a finalizer.
    pub(crate) fn enqueue_all(&self) {
        for s in self.services.state() {
            self.queue.add(Key::Stack(StackId::Service {
                namespace: s.namespace().unwrap_or_default(),
                name: s.name_any(),
            }));
        }
        for g in reconcile::groups(self) {
            self.queue.add(Key::Stack(g.id.clone()));
        }
        for i in self.ingresses.state() {
            for id in reconcile::finalized_groups(&i) {
                self.queue.add(Key::Stack(id));
            }
        }
        for b in self.bindings.state() {
            self.queue.add(Key::Binding {
                namespace: b.namespace().unwrap_or_default(),
                name: b.name_any(),
            });
        }
    }

    /// The Service's stack and the groups of Ingresses that use it.
    fn enqueue_service(&self, namespace: &str, name: &str) {
        self.queue.add(Key::Stack(StackId::Service {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }));
        for id in reconcile::groups_using(self, namespace, name) {
            self.queue.add(Key::Stack(id));
        }
        for b in self.bindings.state() {
            if b.namespace().as_deref() == Some(namespace) && b.spec.service_ref.name == name {
                self.queue.add(Key::Binding {
                    namespace: namespace.to_string(),
                    name: b.name_any(),
                });
            }
        }
    }

    fn enqueue_ingress(&self, ing: &Ingress) {
        let uid = ing.uid().unwrap_or_default();
        let now = reconcile::group_of(self, ing);
        let before = {
            let mut last = self.last_group.locked();
            match &now {
                Some(id) => last.insert(uid, id.clone()),
                None => last.remove(&uid),
            }
        };
        for id in now
            .into_iter()
            .chain(before)
            .chain(reconcile::finalized_groups(ing))
        {
            self.queue.add(Key::Stack(id));
        }
    }
}

/// Runs the controller until `rt.shutdown`.
pub async fn run(rt: Runtime, args: Args) -> Result<(), Error> {
    let ready = rt
        .admin
        .ready
        .check("caches", "watch caches not synced yet");
    let client = rt.client.clone();
    let stop = rt.shutdown.clone();
    let (services, services_rx) =
        store_with_changes(Api::<Service>::all(client.clone()), stop.clone());
    let (slices, slices_rx) =
        store_with_changes(Api::<EndpointSlice>::all(client.clone()), stop.clone());
    let (ingresses, ingresses_rx) =
        store_with_changes(Api::<Ingress>::all(client.clone()), stop.clone());
    let (classes, classes_rx) =
        store_with_changes(Api::<IngressClass>::all(client.clone()), stop.clone());
    let (params, params_rx) =
        store_with_changes(Api::<IngressClassParams>::all(client.clone()), stop.clone());
    let (nodes, nodes_rx) = store_with_changes(Api::<Node>::all(client.clone()), stop.clone());
    let (namespaces, namespaces_rx) =
        store_with_changes(Api::<Namespace>::all(client.clone()), stop.clone());
    let (bindings, bindings_rx) =
        store_with_changes(Api::<TargetGroupBinding>::all(client.clone()), stop.clone());
    let synced = async {
        tokio::try_join!(
            services.wait_until_ready(),
            slices.wait_until_ready(),
            ingresses.wait_until_ready(),
            classes.wait_until_ready(),
            params.wait_until_ready(),
            nodes.wait_until_ready(),
            namespaces.wait_until_ready(),
            bindings.wait_until_ready(),
        )
    };
    tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        r = synced => if r.is_err() {
            tracing::warn!("a watch cache closed before it synced");
            return Ok(());
        },
    }
    let elb = tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        e = Elb::new(&args.cluster_name) => e,
    };
    let metrics = Metrics {
        aws_calls: Default::default(),
    };
    rt.admin.with_registry(|r| {
        r.register_collector(Box::new(outrigger_aws::AllCalls));
        r.register(
            "outrigger_lb_aws_calls",
            "AWS calls made since start, by service (elbv2, ec2)",
            metrics.aws_calls.clone(),
        );
    });
    let controller = Controller::<Key>::new("load balancer", "outrigger_lb", &rt.admin);
    let cfg = outrigger_lb_model::Config {
        cluster_name: args.cluster_name.clone(),
        ingress_class: args.ingress_class.clone(),
        load_balancer_class: args.load_balancer_class.clone(),
        ..Default::default()
    };
    let ctx = Arc::new(Ctx {
        client,
        events: rt.events.clone(),
        elb,
        cfg,
        services,
        slices,
        ingresses,
        classes,
        params,
        nodes,
        namespaces,
        bindings,
        queue: controller.queue(),
        last_group: Mutex::new(HashMap::new()),
        node_seen: Mutex::new(HashMap::new()),
        metrics,
    });
    forward(
        ctx.clone(),
        services_rx,
        Box::new(|ctx, s: &Service| {
            ctx.enqueue_service(&s.namespace().unwrap_or_default(), &s.name_any())
        }),
    );
    forward(
        ctx.clone(),
        slices_rx,
        Box::new(|ctx, s: &EndpointSlice| {
            if let Some(svc) = s.labels().get("kubernetes.io/service-name") {
                ctx.enqueue_service(&s.namespace().unwrap_or_default(), svc)
            }
        }),
    );
    forward(
        ctx.clone(),
        ingresses_rx,
        Box::new(|ctx, i: &Ingress| ctx.enqueue_ingress(i)),
    );
    forward(
        ctx.clone(),
        classes_rx,
        Box::new(|ctx, _: &IngressClass| ctx.enqueue_all()),
    );
    forward(
        ctx.clone(),
        params_rx,
        Box::new(|ctx, _: &IngressClassParams| ctx.enqueue_all()),
    );
    forward(
        ctx.clone(),
        namespaces_rx,
        Box::new(|ctx, _: &Namespace| {
            for g in reconcile::groups(ctx) {
                ctx.queue.add(Key::Stack(g.id.clone()));
            }
        }),
    );
    forward(
        ctx.clone(),
        nodes_rx,
        Box::new(|ctx, n: &Node| {
            // Instance targets follow nodes: only a change in what they use
            // (existence, readiness, labels, provider ID) matters.
            let key = reconcile::node_fingerprint(n);
            let changed = {
                let mut seen = ctx.node_seen.locked();
                seen.insert(n.name_any(), key.clone()).as_ref() != Some(&key)
            };
            if changed {
                for id in reconcile::instance_stacks(ctx) {
                    ctx.queue.add(Key::Stack(id));
                }
            }
        }),
    );
    forward(
        ctx.clone(),
        bindings_rx,
        Box::new(|ctx, b: &TargetGroupBinding| {
            ctx.queue.add(Key::Binding {
                namespace: b.namespace().unwrap_or_default(),
                name: b.name_any(),
            })
        }),
    );
    ready.ok();
    tracing::info!(cluster = %args.cluster_name, workers = args.workers, "load balancer controller started");
    let gc = tokio::spawn(reconcile::garbage_collect(
        ctx.clone(),
        stop.clone(),
        args.sync_period,
    ));
    let worker_ctx = ctx.clone();
    controller
        .run(args.workers, stop, move |key| {
            let ctx = worker_ctx.clone();
            async move { reconcile_key(&ctx, &key).await }
        })
        .await;
    let _ = gc.await;
    Ok(())
}

/// One key: its stack or binding, then the AWS call counts.
async fn reconcile_key(ctx: &Ctx, key: &Key) -> Result<Action, Error> {
    let result = match key {
        Key::Stack(id @ StackId::Service { .. }) => reconcile::service(ctx, id).await,
        Key::Stack(id) => reconcile::ingress_group(ctx, id).await,
        Key::Binding { namespace, name } => reconcile::binding(ctx, namespace, name).await,
    };
    for (service, n) in [("elbv2", ctx.elb.calls()), ("ec2", ctx.elb.ec2_calls())] {
        ctx.metrics
            .aws_calls
            .get_or_create(&vec![("service".to_string(), service.to_string())])
            .set(n as i64);
    }
    result.map(|()| Action::Done)
}
