//! The instance-type catalogue: every type the region offers, in every
//! zone, spot and on-demand, with prices; offerings that recently reported
//! insufficient capacity are marked unavailable.

use std::collections::HashMap;

use aws_sdk_ec2::types::LocationType;
use outrigger_runtime::sync::LockExt;
use outrigger_scheduling::{
    eks::{self, Ec2Shape, on_demand_price},
    model::{CAPACITY_ON_DEMAND, CAPACITY_SPOT, InstanceType, Offering},
};

use crate::{Ec2, Ec2Error, ICE_TTL, api};

impl Ec2 {
    /// The region's instance types with their offerings: every zone that
    /// offers a type, spot (the latest spot price, else a third of
    /// on-demand) and on-demand; offerings with recent insufficient
    /// capacity are marked unavailable.
    pub async fn instance_types(
        &self,
        kubelet: &eks::Kubelet,
    ) -> Result<Vec<InstanceType>, Ec2Error> {
        let mut shapes: Vec<Ec2Shape> = vec![];
        let mut pages = self
            .client
            .describe_instance_types()
            .into_paginator()
            .items()
            .send();
        while let Some(it) = pages.next().await {
            let it = it.map_err(api("DescribeInstanceTypes"))?;
            shapes.extend(shape_of(&it));
        }
        let mut zones: HashMap<String, Vec<String>> = HashMap::new();
        let mut pages = self
            .client
            .describe_instance_type_offerings()
            .location_type(LocationType::AvailabilityZone)
            .into_paginator()
            .items()
            .send();
        while let Some(o) = pages.next().await {
            let o = o.map_err(api("DescribeInstanceTypeOfferings"))?;
            if let (Some(t), Some(z)) = (o.instance_type(), o.location()) {
                zones
                    .entry(t.as_str().to_string())
                    .or_default()
                    .push(z.to_string());
            }
        }
        let mut spot: HashMap<(String, String), f64> = HashMap::new();
        let mut pages = self
            .client
            .describe_spot_price_history()
            .product_descriptions("Linux/UNIX")
            .start_time(aws_sdk_ec2::primitives::DateTime::from(
                std::time::SystemTime::now(),
            ))
            .into_paginator()
            .items()
            .send();
        while let Some(p) = pages.next().await {
            let Ok(p) = p else { break };
            if let (Some(t), Some(z), Some(price)) = (
                p.instance_type(),
                p.availability_zone(),
                p.spot_price().and_then(|s| s.parse::<f64>().ok()),
            ) {
                spot.insert((t.as_str().to_string(), z.to_string()), price);
            }
        }
        let ice = self.ice.locked().clone();
        let iced = |t: &str, z: &str, ct: &str| {
            ice.get(&(t.to_string(), z.to_string(), ct.to_string()))
                .is_some_and(|at| at.elapsed() < ICE_TTL)
        };
        let mut out = vec![];
        for shape in shapes {
            let Some(zs) = zones.get(&shape.name) else {
                continue;
            };
            let od = on_demand_price(&shape.name, shape.vcpus);
            let mut offerings = vec![];
            for z in zs {
                let sp = spot
                    .get(&(shape.name.clone(), z.clone()))
                    .copied()
                    .unwrap_or((od / 3.0 * 1e4).round() / 1e4);
                offerings.push(Offering {
                    zone: z.clone(),
                    capacity_type: CAPACITY_SPOT.into(),
                    price: sp,
                    available: !iced(&shape.name, z, CAPACITY_SPOT),
                });
                offerings.push(Offering {
                    zone: z.clone(),
                    capacity_type: CAPACITY_ON_DEMAND.into(),
                    price: od,
                    available: !iced(&shape.name, z, CAPACITY_ON_DEMAND),
                });
            }
            out.push(eks::instance_type(&shape, kubelet, offerings));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Keeps an offering out for [`ICE_TTL`] (a spot interruption warning
    /// says its capacity is going; Karpenter marks it the same way).
    pub fn mark_unavailable(&self, itype: &str, zone: &str, capacity_type: &str) {
        self.ice.locked().insert(
            (
                itype.to_string(),
                zone.to_string(),
                capacity_type.to_string(),
            ),
            std::time::Instant::now(),
        );
    }

    /// Offerings that failed for capacity, kept out for [`ICE_TTL`].
    pub(crate) fn iced(&self, itype: &str, zone: &str, capacity_type: &str) -> bool {
        self.ice
            .locked()
            .get(&(
                itype.to_string(),
                zone.to_string(),
                capacity_type.to_string(),
            ))
            .is_some_and(|at| at.elapsed() < ICE_TTL)
    }
}

impl Ec2 {
    /// The shapes of these instance types (DescribeInstanceTypes by name);
    /// unknown names are left out.
    pub async fn shapes(&self, names: &[String]) -> Result<Vec<Ec2Shape>, Ec2Error> {
        let mut out = vec![];
        for chunk in names.chunks(100) {
            let mut pages = self
                .client
                .describe_instance_types()
                .set_instance_types(Some(
                    chunk
                        .iter()
                        .map(|n| aws_sdk_ec2::types::InstanceType::from(n.as_str()))
                        .collect(),
                ))
                .into_paginator()
                .items()
                .send();
            while let Some(it) = pages.next().await {
                let it = it.map_err(api("DescribeInstanceTypes"))?;
                out.extend(shape_of(&it));
            }
        }
        Ok(out)
    }

    /// A launch template version's instance type (`$Latest`, `$Default` or
    /// a number; by ID or by name).
    pub async fn launch_template_type(
        &self,
        id: Option<&str>,
        name: Option<&str>,
        version: Option<&str>,
    ) -> Result<Option<String>, Ec2Error> {
        let r = self
            .client
            .describe_launch_template_versions()
            .set_launch_template_id(id.map(str::to_string))
            .set_launch_template_name(if id.is_some() {
                None
            } else {
                name.map(str::to_string)
            })
            .versions(version.unwrap_or("$Default"))
            .send()
            .await
            .map_err(api("DescribeLaunchTemplateVersions"))?;
        Ok(r.launch_template_versions()
            .first()
            .and_then(|v| v.launch_template_data())
            .and_then(|d| d.instance_type())
            .map(|t| t.as_str().to_string()))
    }
}

/// An instance type as the EKS allocatable formula needs it.
fn shape_of(it: &aws_sdk_ec2::types::InstanceTypeInfo) -> Option<Ec2Shape> {
    let name = it.instance_type().map(|t| t.as_str().to_string())?;
    let vcpus = it
        .v_cpu_info()
        .and_then(|v| v.default_v_cpus())
        .unwrap_or(0) as i64;
    let memory_mib = it.memory_info().and_then(|m| m.size_in_mib()).unwrap_or(0);
    if vcpus == 0 || memory_mib == 0 {
        return None;
    }
    let net = it.network_info();
    let arch = it
        .processor_info()
        .and_then(|p| p.supported_architectures().first())
        .map(|a| {
            if a.as_str() == "arm64" {
                "arm64"
            } else {
                "amd64"
            }
        })
        .unwrap_or("amd64");
    let gpus: i64 = it
        .gpu_info()
        .map(|g| g.gpus().iter().map(|d| d.count().unwrap_or(0) as i64).sum())
        .unwrap_or(0);
    Some(Ec2Shape {
        name,
        vcpus,
        memory_mib,
        max_enis: net
            .and_then(|n| n.maximum_network_interfaces())
            .unwrap_or(3) as i64,
        ipv4_per_eni: net
            .and_then(|n| n.ipv4_addresses_per_interface())
            .unwrap_or(10) as i64,
        arch: arch.to_string(),
        gpus: if gpus > 0 {
            vec![("nvidia.com/gpu".to_string(), gpus)]
        } else {
            vec![]
        },
    })
}
