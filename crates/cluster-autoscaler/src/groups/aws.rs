//! Auto Scaling groups: found by tags (`--node-group-auto-discovery`: keys,
//! and values where given) or by name (`--nodes`, whose min and max
//! override the group's), their templates at zero from the launch
//! template's (or launch configuration's, or a mixed-instances policy's
//! first) instance type, the group's first zone and its tags, resized with
//! SetDesiredCapacity, shrunk one instance at a time with
//! TerminateInstanceInAutoScalingGroup.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Mutex,
};

use async_trait::async_trait;
use outrigger_aws::Calls;
use outrigger_aws_autoscaling::{Activity, AutoScaling, Group};
use outrigger_aws_ec2::Ec2;
use outrigger_node_groups::{
    flags::{StaticGroup, discovery_matches},
    group::{NodeGroup, Template, skipped_tags},
};
use outrigger_runtime::sync::LockExt;
use outrigger_scheduling::{eks::Ec2Shape, model::Labels};

use super::{GroupError, NodeGroupProvider};
use crate::Settings;

pub struct Aws {
    asg: AutoScaling,
    ec2: Ec2,
    discovery: Vec<BTreeMap<String, String>>,
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
        let shape = self.shape(&t).await.map_err(|e| e.to_string())?;
        template_for(g, &t, shape.as_ref())
    }
}

/// A group's template at zero from its instance type's shape (`None`: EC2
/// does not know the type), as upstream's: its first availability zone
/// (an error without one) and its tags; tags upstream ignores are logged.
pub fn template_for(
    g: &Group,
    instance_type: &str,
    shape: Option<&Ec2Shape>,
) -> Result<Template, String> {
    let Some(zone) = g.zones.first() else {
        return Err("no availability zone".into());
    };
    let Some(shape) = shape else {
        return Err(format!("instance type {instance_type} is not known to EC2"));
    };
    for why in skipped_tags(&g.tags) {
        tracing::debug!(group = %g.name, reason = %why, "a node-template tag is ignored");
    }
    Template::from_tags(shape, Some(zone), &g.tags, &Labels::new())
}

/// An Auto Scaling group as a node group: min and max from the first
/// `--nodes` naming it, else the group's; its desired capacity as target;
/// its instances but those terminating or terminated.
pub fn node_group(g: &Group, statics: &[StaticGroup], template: Option<Template>) -> NodeGroup {
    let (min, max) = statics
        .iter()
        .find(|s| s.name == g.name)
        .map_or((i64::from(g.min), i64::from(g.max)), |s| (s.min, s.max));
    NodeGroup {
        id: g.name.clone(),
        min,
        max,
        target: i64::from(g.desired),
        instances: g
            .instances
            .iter()
            .filter(|i| !i.lifecycle_state.starts_with("Terminat"))
            .map(|i| i.provider_id())
            .collect(),
        template,
    }
}

/// The instance ID of an AWS provider ID, `aws:///<zone>/<id>`, with
/// upstream's checks: lowercase letters, digits and dashes (a third part
/// may follow the ID), or upstream's placeholder IDs.
pub fn instance_id(provider_id: &str) -> Result<&str, String> {
    let bad = || format!("provider ID {provider_id:?}: expected aws:///<zone>/<instance>");
    let rest = provider_id.strip_prefix("aws:///").ok_or_else(bad)?;
    let plain = |s: &str, dot: bool| {
        s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dot && c == '.'))
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [zone, id, ..] if plain(zone, false) && id.starts_with("i-placeholder") => Ok(id),
        [zone, id] if plain(zone, false) && plain(id, false) => Ok(id),
        [zone, id, more] if plain(zone, false) && plain(id, false) && plain(more, true) => Ok(id),
        _ => Err(bad()),
    }
}

/// The reason of a failed scaling activity started since `since` (the
/// activities newest first), as upstream marks a group that cannot
/// provision.
pub fn failure_since(activities: Vec<Activity>, since: jiff::Timestamp) -> Option<String> {
    activities
        .into_iter()
        .filter(|a| a.start.parse::<jiff::Timestamp>().is_ok_and(|t| t >= since))
        .find(|a| a.status == "Failed")
        .map(|a| {
            if a.message.is_empty() {
                a.description
            } else {
                a.message
            }
        })
}

#[async_trait]
impl NodeGroupProvider for Aws {
    fn name(&self) -> &'static str {
        "aws"
    }

    async fn groups(&self) -> Result<Vec<NodeGroup>, GroupError> {
        let mut found: BTreeMap<String, Group> = BTreeMap::new();
        for spec in &self.discovery {
            let keys: Vec<String> = spec.keys().cloned().collect();
            for g in self.asg.groups_with_tags(&keys).await.map_err(cloud)? {
                if discovery_matches(spec, &g.tags) {
                    found.insert(g.name.clone(), g);
                }
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
            let template = match self.template(&g).await {
                Ok(t) => Some(t),
                Err(why) => {
                    tracing::debug!(group = %name, reason = %why, "no template for the group at zero");
                    None
                }
            };
            out.push(node_group(&g, &self.statics, template));
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

    async fn delete_instance(&self, group: &str, provider_id: &str) -> Result<(), GroupError> {
        let id = instance_id(provider_id).map_err(|message| GroupError::Invalid {
            group: group.to_string(),
            message,
        })?;
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
        Ok(failure_since(acts, since))
    }
}
