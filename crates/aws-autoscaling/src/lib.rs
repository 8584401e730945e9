//! EC2 Auto Scaling through the official AWS SDK for Rust, for the
//! node-group autoscaler: the groups found by tag keys (Cluster
//! Autoscaler's auto-discovery) or named (`--nodes`), described 100 names
//! at a time; their desired capacity; an instance terminated in its group
//! with the desired capacity decremented; the group's recent scaling
//! activities (a failed launch shows only there: SetDesiredCapacity never
//! reports insufficient capacity). Calls are counted by the shared
//! [`outrigger_aws::Calls`] and retried by the shared policy.

use std::collections::BTreeMap;

use aws_sdk_autoscaling::{Client, types::Filter};
use outrigger_aws::{ApiError, Calls, SdkConfig};

/// The SDK's name for the service in [`Calls`].
pub const SERVICE: &str = "Auto Scaling";
/// Group names per DescribeAutoScalingGroups call.
const NAMES_PER_CALL: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum AsgError {
    #[error("Auto Scaling {0}")]
    Api(#[from] ApiError),
}

impl AsgError {
    pub fn code(&self) -> &str {
        match self {
            AsgError::Api(e) => &e.code,
        }
    }
}

fn api<E: aws_sdk_autoscaling::error::ProvideErrorMetadata + std::fmt::Display>(
    op: &'static str,
) -> impl FnOnce(E) -> AsgError {
    outrigger_aws::api(op)
}

/// An instance of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInstance {
    pub id: String,
    pub zone: String,
    /// `Pending`, `InService`, `Terminating`...
    pub lifecycle_state: String,
    pub instance_type: Option<String>,
}

impl GroupInstance {
    /// `aws:///<zone>/<id>`, the providerID of its Node.
    pub fn provider_id(&self) -> String {
        format!("aws:///{}/{}", self.zone, self.id)
    }
}

/// Where a group's instances come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchSpec {
    /// The launch template (ID or name) and version.
    pub template_id: Option<String>,
    pub template_name: Option<String>,
    pub template_version: Option<String>,
    /// A launch configuration's name (older groups).
    pub launch_configuration: Option<String>,
    /// A mixed-instances policy's instance types, in order.
    pub override_types: Vec<String>,
}

/// An Auto Scaling group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    pub zones: Vec<String>,
    pub instances: Vec<GroupInstance>,
    pub tags: BTreeMap<String, String>,
    pub launch: LaunchSpec,
}

/// A scaling activity (newest first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    /// `Successful`, `Failed`, `InProgress`, `Cancelled`...
    pub status: String,
    pub message: String,
    pub description: String,
    /// RFC 3339.
    pub start: String,
}

pub struct AutoScaling {
    client: Client,
    calls: Calls,
}

impl AutoScaling {
    /// A client from a loaded configuration, counting into `calls`.
    pub fn with_config(conf: &SdkConfig, calls: Calls) -> Self {
        let client = Client::from_conf(
            aws_sdk_autoscaling::config::Builder::from(conf)
                .interceptor(calls.clone())
                .build(),
        );
        Self { client, calls }
    }

    /// A client from the environment, counting its own calls.
    pub async fn new() -> Self {
        Self::with_config(&outrigger_aws::config().await, Calls::new())
    }

    pub fn calls(&self) -> &Calls {
        &self.calls
    }

    /// Groups carrying every one of these tag keys (values ignored, as
    /// Cluster Autoscaler's `asg:tag=` discovery), every page.
    pub async fn groups_with_tags(&self, keys: &[String]) -> Result<Vec<Group>, AsgError> {
        let filters: Vec<Filter> = keys
            .iter()
            .map(|k| Filter::builder().name("tag-key").values(k).build())
            .collect();
        let mut out = vec![];
        let mut pages = self
            .client
            .describe_auto_scaling_groups()
            .set_filters(Some(filters))
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(api("DescribeAutoScalingGroups"))?;
            out.extend(page.auto_scaling_groups().iter().map(group));
        }
        // The filter ORs values within a filter and ANDs filters; check
        // anyway, the caller relies on every key being there.
        out.retain(|g| keys.iter().all(|k| g.tags.contains_key(k)));
        Ok(out)
    }

    /// Groups by name, [`NAMES_PER_CALL`] names a call; names that do not
    /// exist are left out.
    pub async fn groups_named(&self, names: &[String]) -> Result<Vec<Group>, AsgError> {
        let mut out = vec![];
        for chunk in names.chunks(NAMES_PER_CALL) {
            let mut pages = self
                .client
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(chunk.to_vec()))
                .max_records(100)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(api("DescribeAutoScalingGroups"))?;
                out.extend(page.auto_scaling_groups().iter().map(group));
            }
        }
        Ok(out)
    }

    /// Sets a group's desired capacity (cooldowns not honoured, as Cluster
    /// Autoscaler sets it).
    pub async fn set_desired_capacity(&self, name: &str, desired: i32) -> Result<(), AsgError> {
        self.client
            .set_desired_capacity()
            .auto_scaling_group_name(name)
            .desired_capacity(desired)
            .honor_cooldown(false)
            .send()
            .await
            .map_err(api("SetDesiredCapacity"))?;
        Ok(())
    }

    /// Terminates an instance in its group and decrements the group's
    /// desired capacity, so the group does not replace it.
    pub async fn terminate_instance(&self, instance_id: &str) -> Result<(), AsgError> {
        self.client
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance_id)
            .should_decrement_desired_capacity(true)
            .send()
            .await
            .map_err(api("TerminateInstanceInAutoScalingGroup"))?;
        Ok(())
    }

    /// The group's most recent scaling activities, newest first.
    pub async fn activities(&self, name: &str, max: i32) -> Result<Vec<Activity>, AsgError> {
        let r = self
            .client
            .describe_scaling_activities()
            .auto_scaling_group_name(name)
            .max_records(max)
            .send()
            .await
            .map_err(api("DescribeScalingActivities"))?;
        Ok(r.activities()
            .iter()
            .map(|a| Activity {
                status: a
                    .status_code()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                message: a.status_message().unwrap_or_default().to_string(),
                description: a.description().unwrap_or_default().to_string(),
                start: a.start_time().map(|t| t.to_string()).unwrap_or_default(),
            })
            .collect())
    }

    /// A launch configuration's instance type.
    pub async fn launch_configuration_type(&self, name: &str) -> Result<Option<String>, AsgError> {
        let r = self
            .client
            .describe_launch_configurations()
            .launch_configuration_names(name)
            .send()
            .await
            .map_err(api("DescribeLaunchConfigurations"))?;
        Ok(r.launch_configurations()
            .first()
            .and_then(|l| l.instance_type())
            .map(str::to_string))
    }
}

fn group(g: &aws_sdk_autoscaling::types::AutoScalingGroup) -> Group {
    let lt = g.launch_template().or_else(|| {
        g.mixed_instances_policy()
            .and_then(|m| m.launch_template())
            .and_then(|t| t.launch_template_specification())
    });
    let override_types = g
        .mixed_instances_policy()
        .and_then(|m| m.launch_template())
        .map(|t| {
            t.overrides()
                .iter()
                .filter_map(|o| o.instance_type().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Group {
        name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
        min: g.min_size().unwrap_or(0),
        max: g.max_size().unwrap_or(0),
        desired: g.desired_capacity().unwrap_or(0),
        zones: g.availability_zones().to_vec(),
        instances: g
            .instances()
            .iter()
            .filter_map(|i| {
                Some(GroupInstance {
                    id: i.instance_id()?.to_string(),
                    zone: i.availability_zone().unwrap_or_default().to_string(),
                    lifecycle_state: i
                        .lifecycle_state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    instance_type: i.instance_type().map(str::to_string),
                })
            })
            .collect(),
        tags: g
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        launch: LaunchSpec {
            template_id: lt.and_then(|l| l.launch_template_id()).map(str::to_string),
            template_name: lt
                .and_then(|l| l.launch_template_name())
                .map(str::to_string),
            template_version: lt.and_then(|l| l.version()).map(str::to_string),
            launch_configuration: g.launch_configuration_name().map(str::to_string),
            override_types,
        },
    }
}
