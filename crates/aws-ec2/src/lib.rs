//! EC2 through the official AWS SDK for Rust: the only crate that compiles
//! `aws-sdk-ec2` (it is very heavy), so every other crate reaches EC2
//! through this one's small API.
//!
//! - [`catalogue`](Ec2::instance_types): the region's instance types with
//!   their offerings (DescribeInstanceTypes, DescribeInstanceTypeOfferings,
//!   spot prices from DescribeSpotPriceHistory, on-demand prices from the one
//!   bundled table in `outrigger-scheduling`), insufficient-capacity
//!   offerings kept out for [`ICE_TTL`];
//! - [`launch`](Ec2::launch): subnets and security groups found by a node
//!   class's selectors, a launch template per node class, CreateFleet
//!   (`instant`, one instance) over every candidate type and allowed zone,
//!   the claim's instance found by its tag after a restart, TerminateInstances;
//! - [`network`]: subnets and security groups by filter, and the security
//!   group writes the load balancer crate needs.
//!
//! `AWS_ENDPOINT_URL` points it at any EC2 endpoint; calls are counted by
//! the shared [`outrigger_aws::Calls`] interceptor and retried by the shared
//! policy.

mod catalogue;
mod launch;
pub mod network;

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use aws_sdk_ec2::Client;
use outrigger_aws::{ApiError, Calls, SdkConfig};

pub use launch::{ClassNow, Instance, LaunchRequest, NodeClass};
pub use network::{Filter, SecurityGroup, SgRule, Subnet};

/// How long an offering that reported insufficient capacity stays out.
pub const ICE_TTL: Duration = Duration::from_secs(45);

/// The SDK's name for the service in [`Calls`].
pub const SERVICE: &str = "EC2";

#[derive(Debug, thiserror::Error)]
pub enum Ec2Error {
    #[error("EC2 {0}")]
    Api(#[from] ApiError),
    #[error("no subnet matches the node class's subnet selector")]
    NoSubnet,
    #[error("no security group matches the node class's security group selector")]
    NoSecurityGroup,
    #[error("no AMI found for the node class")]
    NoImage,
    #[error("no offering left to launch (insufficient capacity: {0})")]
    InsufficientCapacity(String),
}

impl Ec2Error {
    /// EC2's error code, for an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Ec2Error::Api(e) => Some(&e.code),
            _ => None,
        }
    }
}

/// An EC2 client for one cluster.
pub struct Ec2 {
    client: Client,
    cluster: String,
    region: String,
    calls: Calls,
    /// Subnets and launch template per node class and node labels, for a
    /// few minutes (each launch would otherwise look them all up again).
    resolved: Mutex<HashMap<String, (Instant, launch::Resolved)>>,
    /// One lookup at a time: launches that start together wait for the
    /// first one's answer instead of repeating it.
    resolving: tokio::sync::Mutex<()>,
    /// What each node class resolves to now (drift), by the class.
    class_now: Mutex<HashMap<String, (Instant, String, launch::ClassNow)>>,
    /// (type, zone, capacity type) -> when it reported no capacity.
    ice: Mutex<HashMap<(String, String, String), Instant>>,
}

impl Ec2 {
    /// A client from the environment (region, credentials,
    /// `AWS_ENDPOINT_URL`) with the shared retry policy, counting its calls
    /// in a [`Calls`] of its own.
    pub async fn new(cluster: &str) -> Self {
        Self::with_config(cluster, &outrigger_aws::config().await, Calls::new())
    }

    /// A client from a loaded configuration, counting into `calls`.
    pub fn with_config(cluster: &str, conf: &SdkConfig, calls: Calls) -> Self {
        let client = Client::from_conf(
            aws_sdk_ec2::config::Builder::from(conf)
                .interceptor(calls.clone())
                .build(),
        );
        Self {
            region: conf.region().map(|r| r.to_string()).unwrap_or_default(),
            client,
            cluster: cluster.to_string(),
            calls,
            resolved: Mutex::new(HashMap::new()),
            class_now: Mutex::new(HashMap::new()),
            resolving: tokio::sync::Mutex::new(()),
            ice: Mutex::new(HashMap::new()),
        }
    }

    /// The calls this client has made.
    pub fn calls(&self) -> &Calls {
        &self.calls
    }

    /// The cluster this client works for.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// EC2's private DNS name for an address: `ip-a-b-c-d.ec2.internal` in
    /// us-east-1, `ip-a-b-c-d.<region>.compute.internal` elsewhere.
    pub fn private_dns(&self, ip: &str) -> String {
        let host = format!("ip-{}", ip.replace('.', "-"));
        if self.region == "us-east-1" {
            format!("{host}.ec2.internal")
        } else {
            format!("{host}.{}.compute.internal", self.region)
        }
    }
}

fn api<E: aws_sdk_ec2::error::ProvideErrorMetadata + std::fmt::Display>(
    op: &'static str,
) -> impl FnOnce(E) -> Ec2Error {
    outrigger_aws::api(op)
}

fn tag(k: &str, v: &str) -> aws_sdk_ec2::types::Tag {
    aws_sdk_ec2::types::Tag::builder().key(k).value(v).build()
}
