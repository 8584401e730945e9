//! Auto Scaling groups: found by tag keys (`--node-group-auto-discovery`)
//! or by name (`--nodes`, whose min and max override the group's), their
//! templates at zero from the launch template's (or launch configuration's,
//! or a mixed-instances policy's first) instance type and the group's
//! `node-template` tags, resized with SetDesiredCapacity, shrunk one
//! instance at a time with TerminateInstanceInAutoScalingGroup.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Mutex,
};

use async_trait::async_trait;
use outrigger_aws::Calls;
use outrigger_aws_autoscaling::{AutoScaling, Group};
use outrigger_aws_ec2::Ec2;
use outrigger_node_groups::{
    flags::StaticGroup,
    group::{NodeGroup, Template},
};
use outrigger_runtime::sync::LockExt;
use outrigger_scheduling::{eks::Ec2Shape, model::Labels};

use super::{GroupError, NodeGroupProvider};
use crate::Settings;

/// EKS labels a managed node group's nodes with its name.
const EKS_NODEGROUP_LABEL: &str = "eks.amazonaws.com/nodegroup";
const EKS_NODEGROUP_TAG: &str = "eks:nodegroup-name";

pub struct Aws {
    asg: AutoScaling,
    ec2: Ec2,
    discovery: Vec<Vec<String>>,
    statics: Vec<StaticGroup>,
    /// Instance type -> shape, and launch template -> instance type.
    shapes: Mutex<BTreeMap<String, Ec2Shape>>,
    template_types: Mutex<BTreeMap<String, Option<String>>>,
}

fn cloud<E: std::fmt::Display>(e: E) -> GroupError {
    GroupError::Cloud(e.to_string())
}

impl Aws {
    pub async fn new(settings: &Settings) -> Self {
        let conf = outrigger_aws::config().await;
        let calls = Calls::new();
        Self {
            asg: AutoScaling::with_config(&conf, calls.clone()),
            ec2: Ec2::with_config("", &conf, calls),
            discovery: settings.discovery.clone(),
            statics: settings.static_groups.clone(),
            shapes: Mutex::new(BTreeMap::new()),
            template_types: Mutex::new(BTreeMap::new()),
        }
    }

    /// The instance type new instances of the group get.
    async fn instance_type(&self, g: &Group) -> Result<Option<String>, GroupError> {
        if let Some(t) = g.launch.override_types.first() {
            return Ok(Some(t.clone()));
        }
        if let Some(lc) = &g.launch.launch_configuration {
            return self.asg.launch_configuration_type(lc).await.map_err(cloud);
        }
        let key = format!(
            "{:?}/{:?}/{:?}",
            g.launch.template_id, g.launch.template_name, g.launch.template_version
        );
        if let Some(t) = self.template_types.locked().get(&key) {
            return Ok(t.clone());
        }
        if g.launch.template_id.is_none() && g.launch.template_name.is_none() {
            return Ok(None);
        }
        let t = self
            .ec2
            .launch_template_type(
                g.launch.template_id.as_deref(),
                g.launch.template_name.as_deref(),
                g.launch.template_version.as_deref(),
            )
            .await
            .map_err(cloud)?;
        self.template_types.locked().insert(key, t.clone());
        Ok(t)
    }

    async fn shape(&self, name: &str) -> Result<Option<Ec2Shape>, GroupError> {
        if let Some(s) = self.shapes.locked().get(name) {
            return Ok(Some(s.clone()));
        }
        let found = self
            .ec2
            .shapes(&[name.to_string()])
            .await
            .map_err(cloud)?
            .into_iter()
            .next();
        if let Some(s) = &found {
            self.shapes.locked().insert(name.to_string(), s.clone());
        }
        Ok(found)
    }

    /// The group's template at zero, or why there is none.
    async fn template(&self, g: &Group) -> Result<Template, String> {
        let Some(t) = self.instance_type(g).await.map_err(|e| e.to_string())? else {
            return Err("no instance type in its launch template or configuration".into());
        };
        let Some(shape) = self.shape(&t).await.map_err(|e| e.to_string())? else {
            return Err(format!("instance type {t} is not known to EC2"));
        };
        let mut extra = Labels::new();
        if let Some(ng) = g.tags.get(EKS_NODEGROUP_TAG) {
            extra.insert(EKS_NODEGROUP_LABEL.into(), ng.clone());
        }
        let mut zones = g.zones.clone();
        zones.sort();
        Template::from_tags(&shape, zones.first().map(String::as_str), &g.tags, &extra)
    }
}

#[async_trait]
impl NodeGroupProvider for Aws {
    fn name(&self) -> &'static str {
        "aws"
    }

    async fn groups(&self) -> Result<Vec<NodeGroup>, GroupError> {
        let mut found: BTreeMap<String, Group> = BTreeMap::new();
        for keys in &self.discovery {
            for g in self.asg.groups_with_tags(keys).await.map_err(cloud)? {
                found.insert(g.name.clone(), g);
            }
        }
        let names: Vec<String> = self.statics.iter().map(|s| s.name.clone()).collect();
        let mut statics: BTreeSet<String> = BTreeSet::new();
        if !names.is_empty() {
            for g in self.asg.groups_named(&names).await.map_err(cloud)? {
                statics.insert(g.name.clone());
                found.insert(g.name.clone(), g);
            }
        }
        for s in &self.statics {
            if !statics.contains(&s.name) {
                tracing::warn!(group = %s.name, "--nodes names an Auto Scaling group that does not exist");
            }
        }
        let mut out = vec![];
        for (name, g) in found {
            let (min, max) = self
                .statics
                .iter()
                .find(|s| s.name == name)
                .map_or((g.min, g.max), |s| (s.min as i32, s.max as i32));
            let template = match self.template(&g).await {
                Ok(t) => Some(t),
                Err(why) => {
                    tracing::debug!(group = %name, reason = %why, "no template for the group at zero");
                    None
                }
            };
            out.push(NodeGroup {
                id: name,
                min: i64::from(min),
                max: i64::from(max),
                target: i64::from(g.desired),
                instances: g
                    .instances
                    .iter()
                    .filter(|i| !i.lifecycle_state.starts_with("Terminat"))
                    .map(|i| i.provider_id())
                    .collect(),
                template,
            });
        }
        Ok(out)
    }

    async fn set_target(&self, group: &str, target: i64) -> Result<(), GroupError> {
        let n = i32::try_from(target).map_err(|_| GroupError::Invalid {
            group: group.to_string(),
            message: format!("target {target} is out of range"),
        })?;
        self.asg.set_desired_capacity(group, n).await.map_err(cloud)
    }

    async fn delete_instance(&self, _group: &str, provider_id: &str) -> Result<(), GroupError> {
        let id = provider_id.rsplit('/').next().unwrap_or(provider_id);
        match self.asg.terminate_instance(id).await {
            Ok(()) => Ok(()),
            // Gone already (terminated by someone else): nothing to do.
            Err(e)
                if e.code().contains("ValidationError") && e.to_string().contains("not found") =>
            {
                Ok(())
            }
            Err(e) => Err(cloud(e)),
        }
    }

    async fn scale_up_failure(
        &self,
        group: &str,
        since: jiff::Timestamp,
    ) -> Result<Option<String>, GroupError> {
        let acts = self.asg.activities(group, 3).await.map_err(cloud)?;
        let recent = acts
            .into_iter()
            .filter(|a| a.start.parse::<jiff::Timestamp>().is_ok_and(|t| t >= since));
        Ok(recent.into_iter().find(|a| a.status == "Failed").map(|a| {
            if a.message.is_empty() {
                a.description
            } else {
                a.message
            }
        }))
    }
}
