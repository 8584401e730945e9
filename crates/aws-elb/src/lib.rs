//! Load balancers through ELBv2, and their security groups through EC2: a
//! [`Stack`] from `outrigger-lb-model` made real with the fewest calls.
//!
//! What exists is found by the ownership tags (`elbv2.k8s.aws/cluster`, the
//! stack tag, the resource tag) in an inventory listed once and kept current
//! by this process's own changes (it is the only writer, being the leader);
//! a `NotFound` from ELBv2 or a periodic [`Elb::refresh`] lists it again.
//! What a deploy last applied to a listener set, a target group's attributes
//! or its targets is remembered, so an unchanged stack costs no calls.
//! ELBv2 and EC2 calls are counted ([`Elb::calls`], [`Elb::ec2_calls`]) by
//! the shared interceptor ([`outrigger_aws::Calls`]), and retried by the
//! shared policy (10 attempts, like the AWS Load Balancer Controller). EC2
//! (subnets, security groups) is reached through `outrigger-aws-ec2`.
//!
//! Each step is decided by a pure planner (`plan`: what exists against what
//! the stack wants, as plain data, unit-tested without AWS) and carried out
//! by the executor (`deploy`, `listeners`, `network`), which makes exactly
//! the calls the plan lists, in its order; `inventory` lists what exists.

mod convert;
mod deploy;
mod inventory;
mod listeners;
mod network;
mod plan;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Mutex,
    time::{Duration, Instant},
};

use aws_sdk_elasticloadbalancingv2::{self as elbv2, error::ProvideErrorMetadata};
use outrigger_lb_model::model::{Stack, StackId, Target};
use outrigger_runtime::sync::LockExt;

pub use convert::{canonical_action, canonical_conditions};
use inventory::{Applied, Inventory};
use network::SubnetInfo;
use outrigger_aws::{ApiError, Calls};
use outrigger_aws_ec2::{Ec2, Ec2Error};

/// The SDK's name for ELBv2 in [`Calls`].
pub const SERVICE: &str = "Elastic Load Balancing v2";

/// Most targets in one RegisterTargets / DeregisterTargets call.
const TARGET_CHUNK: usize = 200;
/// How long subnets and security groups found by tags or names are reused.
const LOOKUP_TTL: Duration = Duration::from_secs(60);
/// The resource tag value of a stack's load balancer.
pub const RESOURCE_LOAD_BALANCER: &str = "LoadBalancer";
/// The resource tag value of a stack's managed security group.
pub const RESOURCE_MANAGED_SG: &str = "ManagedLBSecurityGroup";

#[derive(Debug, thiserror::Error)]
pub enum ElbError {
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error(
        "no subnet found for a {scheme} load balancer: tag subnets kubernetes.io/role/{role}=1 (or name them with the subnets annotation)"
    )]
    NoSubnets {
        scheme: &'static str,
        role: &'static str,
    },
    #[error("subnet {0} not found")]
    SubnetNotFound(String),
    #[error("security group {0} not found")]
    SecurityGroupNotFound(String),
    #[error("the subnets are in different VPCs")]
    SeveralVpcs,
    #[error("target group {0} is referenced by a rule but not part of the stack")]
    UnknownTargetGroup(String),
    #[error("{0}")]
    Ec2(String),
}

impl From<Ec2Error> for ElbError {
    fn from(e: Ec2Error) -> Self {
        match e {
            Ec2Error::Api(a) => ElbError::Api(a),
            other => ElbError::Ec2(other.to_string()),
        }
    }
}

impl ElbError {
    /// An ELBv2 or EC2 error code (`TooManyRules`, `DependencyViolation`...).
    pub fn code(&self) -> Option<&str> {
        match self {
            ElbError::Api(e) => Some(&e.code),
            _ => None,
        }
    }
}

fn api<E: ProvideErrorMetadata + std::fmt::Display>(
    op: &'static str,
) -> impl FnOnce(E) -> ElbError {
    outrigger_aws::api(op)
}

fn not_found(e: &ElbError) -> bool {
    matches!(
        e.code(),
        Some(
            "LoadBalancerNotFound"
                | "TargetGroupNotFound"
                | "ListenerNotFound"
                | "RuleNotFound"
                | "InvalidGroup.NotFound"
        )
    )
}

/// What a deploy made: the load balancer's DNS name and ARN, and each target
/// group's ARN by its resource id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployed {
    pub dns_name: String,
    pub load_balancer_arn: String,
    pub target_groups: BTreeMap<String, String>,
}

pub struct Elb {
    elbv2: elbv2::Client,
    ec2: Ec2,
    calls: Calls,
    cluster: String,
    inventory: Mutex<Inventory>,
    applied: Mutex<Applied>,
    /// Subnets by what selected them, security group IDs by their names:
    /// looked up again after [`LOOKUP_TTL`].
    subnets: Mutex<HashMap<String, (Instant, Vec<SubnetInfo>)>>,
    security_groups: Mutex<HashMap<String, (Instant, Vec<String>)>>,
}

impl Elb {
    /// A client from the environment (region, credentials,
    /// `AWS_ENDPOINT_URL`), retrying throttling and transient errors.
    pub async fn new(cluster: &str) -> Self {
        let conf = outrigger_aws::config().await;
        let calls = Calls::new();
        let elbv2 = elbv2::Client::from_conf(
            elbv2::config::Builder::from(&conf)
                .interceptor(calls.clone())
                .build(),
        );
        Self {
            elbv2,
            ec2: Ec2::with_config(cluster, &conf, calls.clone()),
            calls,
            cluster: cluster.to_string(),
            inventory: Mutex::new(Inventory::default()),
            applied: Mutex::new(Applied::default()),
            subnets: Mutex::new(HashMap::new()),
            security_groups: Mutex::new(HashMap::new()),
        }
    }

    /// ELBv2 calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.total(SERVICE)
    }

    /// EC2 calls made so far (subnets, security groups).
    pub fn ec2_calls(&self) -> u64 {
        self.calls.total(outrigger_aws_ec2::SERVICE)
    }

    /// Lists everything tagged for the cluster again and forgets what was
    /// applied (a resync).
    pub async fn refresh(&self) -> Result<(), ElbError> {
        let inv = self.list().await?;
        *self.inventory.locked() = inv;
        *self.applied.locked() = Applied::default();
        Ok(())
    }

    async fn ensure_inventory(&self) -> Result<(), ElbError> {
        let loaded = self.inventory.locked().loaded;
        if !loaded {
            self.refresh().await?;
        }
        Ok(())
    }

    fn invalidate(&self) {
        self.inventory.locked().loaded = false;
    }

    /// The stacks that own something in AWS, by their stack tag (key,
    /// value): for garbage collection.
    pub async fn stacks(&self) -> Result<BTreeSet<(String, String)>, ElbError> {
        self.ensure_inventory().await?;
        Ok(self.inventory.locked().stacks())
    }

    /// Makes AWS match the stack; `targets` by target group resource id.
    pub async fn deploy(
        &self,
        stack: &Stack,
        targets: &BTreeMap<String, Vec<Target>>,
    ) -> Result<Deployed, ElbError> {
        self.ensure_inventory().await?;
        let r = self.deploy_once(stack, targets).await;
        if let Err(e) = &r
            && not_found(e)
        {
            // Something changed behind our back: list again next time.
            self.invalidate();
        }
        r
    }

    /// Registers what is missing and deregisters what is extra, in chunks.
    pub async fn sync_targets(
        &self,
        tg_arn: &str,
        want: &BTreeSet<Target>,
    ) -> Result<(), ElbError> {
        self.apply_targets(tg_arn, want).await
    }

    /// A target group by name (TargetGroupBinding's `targetGroupName`).
    pub async fn target_group_arn(&self, name: &str) -> Result<Option<String>, ElbError> {
        match self
            .elbv2
            .describe_target_groups()
            .names(name)
            .send()
            .await
            .map_err(api("DescribeTargetGroups"))
        {
            Ok(r) => Ok(r
                .target_groups()
                .first()
                .and_then(|t| t.target_group_arn())
                .map(str::to_string)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes everything the stack owns: the load balancer (and with it
    /// its listeners and rules), then its target groups and security group.
    pub async fn delete(&self, id: &StackId) -> Result<(), ElbError> {
        self.ensure_inventory().await?;
        self.delete_stack(id).await
    }
}
