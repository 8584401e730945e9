//! Karpenter AWS (v1.12)'s cloud-provider drift cases:
//! `pkg/cloudprovider/suite_test.go`, `Context("NodeClaim Drift")` and its
//! `Context("Static Drift Detection")`, over `drift::cloud_drift` (what the
//! AWS provider's `drifted` calls with the claim, its EC2NodeClass, its
//! instance and what the class resolves to now). Each test is named after
//! its `It` or table entry. Not ported: "should dynamically drift
//! nodeclaims for capacity reservations" (Outrigger has no capacity
//! reservations).
#![allow(clippy::unwrap_used)]

use outrigger_disruption::drift::{
    ClaimCloudFacts, ClassCloudFacts, CloudDriftError, DriftReason, HASH_VERSION, InstanceFacts,
    NodeClassNow, cloud_drift, nodeclass_hash,
};
use serde_json::{Value, json};

const ARM_AMI: &str = "ami-0arm";
const AMD_AMI: &str = "ami-0amd";
const SG: &str = "sg-0valid";
const SUBNET_1: &str = "subnet-0one";
const SUBNET_2: &str = "subnet-0two";

/// The suite's `BeforeEach` (with the static context's node class): a
/// running m5.large instance from the amd AMI in subnet 1 with the one
/// valid group, and a claim stamped with its class's hash.
struct Case {
    spec: Value,
    /// The class's annotations (hash, version); `None` to leave one out.
    class_hash: Option<String>,
    class_version: Option<String>,
    claim_hash: Option<String>,
    claim_version: Option<String>,
    provider_id: Option<String>,
    instance_type: Option<String>,
    image_id: Option<String>,
    now: NodeClassNow,
    instance: Option<InstanceFacts>,
    class_exists: bool,
}

impl Case {
    fn new() -> Self {
        let spec = json!({
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "test"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "test"}}],
            "role": "test-role",
            "userData": "Fake Userdata",
            "tags": {"fakeKey": "fakeValue"},
            "context": "fake-context",
            "detailedMonitoring": false,
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "associatePublicIPAddress": false,
            "metadataOptions": {
                "httpEndpoint": "disabled",
                "httpProtocolIPv6": "disabled",
                "httpPutResponseHopLimit": 1,
                "httpTokens": "optional"
            },
            "blockDeviceMappings": [{
                "deviceName": "fakeName",
                "rootVolume": false,
                "ebs": {
                    "deleteOnTermination": false,
                    "encrypted": false,
                    "iops": 0,
                    "kmsKeyID": "fakeKMSKeyID",
                    "snapshotID": "fakeSnapshot",
                    "throughput": 0,
                    "volumeSize": "2G",
                    "volumeType": "standard"
                }
            }]
        });
        let hash = nodeclass_hash(&spec);
        Case {
            spec,
            class_hash: Some(hash.clone()),
            class_version: Some(HASH_VERSION.into()),
            claim_hash: Some(hash),
            claim_version: Some(HASH_VERSION.into()),
            provider_id: Some("aws:///test-zone-1a/i-0123456789abcdef0".into()),
            instance_type: Some("m5.large".into()),
            image_id: Some(AMD_AMI.into()),
            now: NodeClassNow {
                images: vec![ARM_AMI.into(), AMD_AMI.into()],
                subnets: vec![SUBNET_1.into(), SUBNET_2.into()],
                security_groups: vec![SG.into()],
            },
            instance: Some(InstanceFacts {
                image: AMD_AMI.into(),
                subnet: SUBNET_1.into(),
                security_groups: vec![SG.into()],
            }),
            class_exists: true,
        }
    }

    /// The class's spec changed and re-hashed (its annotation updated), as
    /// the table's `mergo.Merge` then `nodeClass.Hash()`.
    fn change(&mut self, changes: Value) {
        merge(&mut self.spec, &changes);
        self.class_hash = Some(nodeclass_hash(&self.spec));
    }

    fn is_drifted(&self) -> Result<Option<DriftReason>, CloudDriftError> {
        let claim = ClaimCloudFacts {
            provider_id: self.provider_id.as_deref(),
            instance_type: self.instance_type.as_deref(),
            image_id: self.image_id.as_deref(),
            class_hash: self.claim_hash.as_deref(),
            class_hash_version: self.claim_version.as_deref(),
        };
        let class = ClassCloudFacts {
            hash: self.class_hash.as_deref(),
            hash_version: self.class_version.as_deref(),
            now: &self.now,
        };
        cloud_drift(
            &claim,
            self.class_exists.then_some(&class),
            self.instance.as_ref(),
            |t| t == "m5.large" || t == "m5.xlarge",
        )
    }
}

/// `mergo.Merge(dst, src, WithOverride, WithSliceDeepCopy)` on JSON:
/// objects and arrays merged member by member, scalars overridden.
fn merge(dst: &mut Value, src: &Value) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                merge(d.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (Value::Array(d), Value::Array(s)) => {
            for (i, v) in s.iter().enumerate() {
                match d.get_mut(i) {
                    Some(x) => merge(x, v),
                    None => d.push(v.clone()),
                }
            }
        }
        (d, s) => *d = s.clone(),
    }
}

fn instance(c: &mut Case) -> &mut InstanceFacts {
    c.instance.as_mut().unwrap()
}

#[test]
fn nodeclaim_drift_should_not_fail_if_nodeclass_does_not_exist() {
    let mut c = Case::new();
    c.class_exists = false;
    assert_eq!(c.is_drifted(), Ok(None));
}

/// Outrigger's check reads no NodePool (the instance types are the
/// provider's catalogue), so a deleted pool changes nothing.
#[test]
fn nodeclaim_drift_should_not_fail_if_nodepool_does_not_exist() {
    assert_eq!(Case::new().is_drifted(), Ok(None));
}

#[test]
fn nodeclaim_drift_should_return_drifted_if_the_ami_is_not_valid() {
    let mut c = Case::new();
    c.image_id = Some("ami-0random".into());
    assert_eq!(c.is_drifted(), Ok(Some(DriftReason::AmiDrift)));
}

#[test]
fn nodeclaim_drift_should_return_drifted_if_there_are_multiple_drift_reasons() {
    let mut c = Case::new();
    instance(&mut c).image = "ami-0random".into();
    instance(&mut c).subnet = "subnet-0random".into();
    instance(&mut c).security_groups = vec!["sg-0random".into()];
    c.class_hash = Some("abcdefghijkl".into());
    assert_eq!(c.is_drifted(), Ok(Some(DriftReason::NodeClassDrift)));
}

#[test]
fn nodeclaim_drift_should_return_drifted_if_the_subnet_is_not_valid() {
    let mut c = Case::new();
    instance(&mut c).subnet = "subnet-0random".into();
    assert_eq!(c.is_drifted(), Ok(Some(DriftReason::SubnetDrift)));
}

#[test]
fn nodeclaim_drift_should_return_an_error_if_subnets_are_empty() {
    let mut c = Case::new();
    c.now.subnets.clear();
    assert_eq!(c.is_drifted(), Err(CloudDriftError::NoSubnets));
}

#[test]
fn nodeclaim_drift_should_not_return_drifted_if_the_nodeclaim_is_valid() {
    assert_eq!(Case::new().is_drifted(), Ok(None));
}

#[test]
fn nodeclaim_drift_should_return_an_error_if_the_security_groups_are_empty() {
    let mut c = Case::new();
    c.now.security_groups.clear();
    instance(&mut c).security_groups = vec!["sg-0random".into()];
    assert_eq!(c.is_drifted(), Err(CloudDriftError::NoSecurityGroups));
}

#[test]
fn nodeclaim_drift_should_return_drifted_if_the_instance_security_groups_doesnt_match_the_discovered_values()
 {
    let mut c = Case::new();
    instance(&mut c).security_groups = vec!["sg-0random".into()];
    assert_eq!(c.is_drifted(), Ok(Some(DriftReason::SecurityGroupDrift)));
}

#[test]
fn nodeclaim_drift_should_return_drifted_if_there_are_more_instance_security_groups_present_than_in_the_discovered_values()
 {
    let mut c = Case::new();
    instance(&mut c).security_groups = vec!["sg-0random".into(), SG.into()];
    assert_eq!(c.is_drifted(), Ok(Some(DriftReason::SecurityGroupDrift)));
}

#[test]
fn nodeclaim_drift_should_return_drifted_if_more_security_groups_are_present_than_instance_security_groups_then_discovered_from_nodeclass()
 {
    let mut c = Case::new();
    c.now.security_groups = vec![SG.into(), "sg-0random".into()];
    assert_eq!(c.is_drifted(), Ok(Some(DriftReason::SecurityGroupDrift)));
}

#[test]
fn nodeclaim_drift_should_not_return_drifted_if_the_security_groups_match() {
    let mut c = Case::new();
    // The same set in another order.
    instance(&mut c).security_groups = vec![SG.into(), "sg-0second".into()];
    c.now.security_groups = vec!["sg-0second".into(), SG.into()];
    assert_eq!(c.is_drifted(), Ok(None));
}

#[test]
fn nodeclaim_drift_should_error_if_the_nodeclaim_doesnt_have_the_instance_type_label() {
    let mut c = Case::new();
    c.instance_type = None;
    assert_eq!(c.is_drifted(), Err(CloudDriftError::NoInstanceType));
}

/// Where we differ on purpose: a claim that records no image (claims
/// Outrigger launched before it wrote `status.imageID`) is judged by its
/// instance's image; only with neither is it an error.
#[test]
fn nodeclaim_drift_should_error_if_the_nodeclaim_doesnt_have_imageid_differs_judged_by_the_instance()
 {
    let mut c = Case::new();
    c.image_id = None;
    assert_eq!(c.is_drifted(), Ok(None));
    instance(&mut c).image = "ami-0random".into();
    assert_eq!(c.is_drifted(), Ok(Some(DriftReason::AmiDrift)));
    instance(&mut c).image = String::new();
    assert_eq!(c.is_drifted(), Err(CloudDriftError::NoImage));
}

#[test]
fn nodeclaim_drift_should_error_drift_if_nodeclaim_doesnt_have_provider_id() {
    let mut c = Case::new();
    c.provider_id = None;
    c.image_id = None;
    assert_eq!(c.is_drifted(), Err(CloudDriftError::NoProviderId));
}

#[test]
fn nodeclaim_drift_should_error_if_the_underlying_nodeclaim_doesnt_exist() {
    let mut c = Case::new();
    c.instance = None;
    assert_eq!(c.is_drifted(), Err(CloudDriftError::InstanceNotFound));
}

#[test]
fn nodeclaim_drift_should_return_drifted_if_the_ami_no_longer_matches_the_existing_nodeclaims_instance_type()
 {
    let mut c = Case::new();
    c.change(json!({"amiFamily": "Custom", "amiSelectorTerms": [{"id": AMD_AMI}]}));
    c.now.images = vec![AMD_AMI.into()];
    c.image_id = Some(ARM_AMI.into());
    assert_eq!(c.is_drifted(), Ok(Some(DriftReason::AmiDrift)));
}

/// Ours: an instance type the catalogue no longer offers.
#[test]
fn a_claim_of_an_instance_type_no_longer_offered_is_stale_instance_type_drift() {
    let mut c = Case::new();
    c.instance_type = Some("m4.large".into());
    assert_eq!(
        c.is_drifted(),
        Ok(Some(DriftReason::StaleInstanceTypeDrift))
    );
    assert_eq!(
        DriftReason::StaleInstanceTypeDrift.as_str(),
        "StaleInstanceTypeDrift"
    );
}

// Context("Static Drift Detection"): DescribeTable("should return drifted
// if a statically drifted EC2NodeClass.Spec field is updated").

fn statically_drifted(changes: Value) {
    let mut c = Case::new();
    assert_eq!(c.is_drifted(), Ok(None));
    c.change(changes.clone());
    assert_eq!(
        c.is_drifted(),
        Ok(Some(DriftReason::NodeClassDrift)),
        "{changes}"
    );
    assert_eq!(DriftReason::NodeClassDrift.as_str(), "NodeClassDrift");
}

#[test]
fn static_drift_detection_userdata() {
    statically_drifted(json!({"userData": "userdata-test-2"}));
}

#[test]
fn static_drift_detection_tags() {
    statically_drifted(json!({"tags": {"keyTag-test-3": "valueTag-test-3"}}));
}

#[test]
fn static_drift_detection_context() {
    statically_drifted(json!({"context": "context-2"}));
}

#[test]
fn static_drift_detection_detailedmonitoring() {
    statically_drifted(json!({"detailedMonitoring": true}));
}

#[test]
fn static_drift_detection_instancestorepolicy() {
    statically_drifted(json!({"instanceStorePolicy": "RAID0"}));
}

#[test]
fn static_drift_detection_associatepublicipaddress() {
    statically_drifted(json!({"associatePublicIPAddress": true}));
}

#[test]
fn static_drift_detection_metadataoptions_httpendpoint() {
    statically_drifted(json!({"metadataOptions": {"httpEndpoint": "enabled"}}));
}

#[test]
fn static_drift_detection_metadataoptions_httpprotocolipv6() {
    statically_drifted(json!({"metadataOptions": {"httpProtocolIPv6": "enabled"}}));
}

#[test]
fn static_drift_detection_metadataoptions_httpputresponsehoplimit() {
    statically_drifted(json!({"metadataOptions": {"httpPutResponseHopLimit": 10}}));
}

#[test]
fn static_drift_detection_metadataoptions_httptokens() {
    statically_drifted(json!({"metadataOptions": {"httpTokens": "required"}}));
}

#[test]
fn static_drift_detection_blockdevicemapping_devicename() {
    statically_drifted(json!({"blockDeviceMappings": [{"deviceName": "map-device-test-3"}]}));
}

#[test]
fn static_drift_detection_blockdevicemapping_rootvolume() {
    statically_drifted(json!({"blockDeviceMappings": [{"rootVolume": true}]}));
}

#[test]
fn static_drift_detection_blockdevicemapping_deleteontermination() {
    statically_drifted(json!({"blockDeviceMappings": [{"ebs": {"deleteOnTermination": true}}]}));
}

#[test]
fn static_drift_detection_blockdevicemapping_encrypted() {
    statically_drifted(json!({"blockDeviceMappings": [{"ebs": {"encrypted": true}}]}));
}

#[test]
fn static_drift_detection_blockdevicemapping_iops() {
    statically_drifted(json!({"blockDeviceMappings": [{"ebs": {"iops": 10}}]}));
}

#[test]
fn static_drift_detection_blockdevicemapping_kmskeyid() {
    statically_drifted(json!({"blockDeviceMappings": [{"ebs": {"kmsKeyID": "test"}}]}));
}

#[test]
fn static_drift_detection_blockdevicemapping_snapshotid() {
    statically_drifted(json!({"blockDeviceMappings": [{"ebs": {"snapshotID": "test"}}]}));
}

#[test]
fn static_drift_detection_blockdevicemapping_throughput() {
    statically_drifted(json!({"blockDeviceMappings": [{"ebs": {"throughput": 10}}]}));
}

#[test]
fn static_drift_detection_blockdevicemapping_volumetype() {
    statically_drifted(json!({"blockDeviceMappings": [{"ebs": {"volumeType": "io1"}}]}));
}

#[test]
fn static_drift_detection_should_return_drifted_when_updating_blockdevicemapping_volumesize() {
    statically_drifted(json!({"blockDeviceMappings": [{"ebs": {"volumeSize": "10G"}}]}));
}

// DescribeTable("should not return drifted if dynamic fields are updated").

fn not_statically_drifted(changes: Value) {
    let mut c = Case::new();
    assert_eq!(c.is_drifted(), Ok(None));
    c.change(changes.clone());
    assert_eq!(c.is_drifted(), Ok(None), "{changes}");
}

#[test]
fn static_drift_detection_dynamic_ami_drift() {
    not_statically_drifted(json!({
        "amiFamily": "AL2023",
        "amiSelectorTerms": [{"tags": {"ami-key-1": "ami-value-1"}}]
    }));
}

#[test]
fn static_drift_detection_dynamic_subnet_drift() {
    not_statically_drifted(json!({"subnetSelectorTerms": [{"tags": {"sn-key-1": "sn-value-1"}}]}));
}

#[test]
fn static_drift_detection_dynamic_securitygroup_drift() {
    not_statically_drifted(
        json!({"securityGroupSelectorTerms": [{"tags": {"sg-key": "sg-value"}}]}),
    );
}

#[test]
fn static_drift_detection_should_not_return_drifted_if_ec2nodeclass_hash_annotation_is_not_present_on_the_nodeclaim()
 {
    let mut c = Case::new();
    c.claim_hash = None;
    c.change(json!({"tags": {"Test Key": "Test Value"}}));
    assert_eq!(c.is_drifted(), Ok(None));
}

#[test]
fn static_drift_detection_should_not_return_drifted_if_the_nodeclaims_hash_version_annotation_does_not_match_the_ec2nodeclasss()
 {
    let mut c = Case::new();
    c.class_hash = Some("test-hash-111111".into());
    c.class_version = Some("test-hash-version-1".into());
    c.claim_hash = Some("test-hash-222222".into());
    c.claim_version = Some("test-hash-version-2".into());
    assert_eq!(c.is_drifted(), Ok(None));
}

#[test]
fn static_drift_detection_should_not_return_drifted_if_hash_version_annotation_is_not_present_on_the_nodeclass()
 {
    let mut c = Case::new();
    c.change(json!({"tags": {"Test Key": "Test Value"}}));
    c.class_hash = Some("test-hash-111111".into());
    c.class_version = None;
    c.claim_hash = Some("test-hash-222222".into());
    c.claim_version = Some("test-hash-version-2".into());
    assert_eq!(c.is_drifted(), Ok(None));
}

#[test]
fn static_drift_detection_should_not_return_drifted_if_hash_version_annotation_is_not_present_on_the_nodeclaim()
 {
    let mut c = Case::new();
    c.change(json!({"tags": {"Test Key": "Test Value"}}));
    c.class_hash = Some("test-hash-111111".into());
    c.class_version = Some("test-hash-version-1".into());
    c.claim_hash = Some("test-hash-222222".into());
    c.claim_version = None;
    assert_eq!(c.is_drifted(), Ok(None));
}
