#!/usr/bin/env python3
"""Seeds moto like the walkthrough's AWS account (idempotent).

- region ap-southeast-1 (from AWS_REGION), the default VPC 172.31.0.0/16 that
  the walkthrough's nodes live in (ip-172-31-...), with one subnet in each of
  three zones, tagged ``karpenter.sh/discovery=<cluster>``,
  ``kubernetes.io/cluster/<cluster>=owned`` and ``kubernetes.io/role/elb=1``,
  and one private subnet in each zone tagged ``kubernetes.io/role/internal-elb=1``
  and ``kubernetes.io/cluster/<cluster>=owned`` (internal load balancers);
- a node security group tagged the same way;
- the node IAM role and instance profile (``KarpenterNodeRole-<cluster>``,
  ``KarpenterNodeInstanceProfile-<cluster>``);
- the managed node group: a launch template and an Auto Scaling group of three
  m5.large instances across the three subnets, tagged for Cluster Autoscaler
  discovery (``k8s.io/cluster-autoscaler/enabled``,
  ``k8s.io/cluster-autoscaler/<cluster>``) and with
  ``kubernetes.io/cluster/<cluster>=owned`` propagated to its instances, so the
  instance joiner registers them as the cluster's first three nodes;
- the interruption queue (SQS, named after the cluster) the provisioner reads
  (``--interruption-queue``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import boto3

ZONES = ("a", "b", "c")


def tag_list(d: dict) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in d.items()]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--cluster", default="demo")
    p.add_argument("--region", default=os.environ.get("AWS_REGION", "ap-southeast-1"))
    p.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"))
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--instance-type", default="m5.large")
    a = p.parse_args()
    s = boto3.session.Session(region_name=a.region)
    ec2 = s.client("ec2", endpoint_url=a.endpoint)
    iam = s.client("iam", endpoint_url=a.endpoint)
    asg = s.client("autoscaling", endpoint_url=a.endpoint)
    c = a.cluster
    discovery = {"karpenter.sh/discovery": c, f"kubernetes.io/cluster/{c}": "owned"}

    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    if vpcs:
        vpc_id = vpcs[0]["VpcId"]
    else:
        vpc_id = ec2.create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc_id], Tags=tag_list({"Name": f"eksctl-{c}-cluster/VPC", **discovery}))

    existing = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    subnets = []
    for i, z in enumerate(ZONES):
        zone = f"{a.region}{z}"
        found = [sn for sn in existing if sn["AvailabilityZone"] == zone]
        if found:
            sn_id = found[0]["SubnetId"]
        else:
            sn_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"172.31.{i * 16}.0/20",
                                      AvailabilityZone=zone)["Subnet"]["SubnetId"]
        ec2.create_tags(Resources=[sn_id], Tags=tag_list({
            "Name": f"eksctl-{c}-cluster/SubnetPublic{zone[-2:].upper()}",
            "kubernetes.io/role/elb": "1",
            **discovery,
        }))
        subnets.append(sn_id)

    # Private subnets, as eksctl makes them: internal load balancers go here.
    private = []
    for i, z in enumerate(ZONES):
        zone = f"{a.region}{z}"
        name = f"eksctl-{c}-cluster/SubnetPrivate{zone[-2:].upper()}"
        found = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": [name]}])["Subnets"]
        if found:
            sn_id = found[0]["SubnetId"]
        else:
            sn_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"172.31.{128 + i * 16}.0/20",
                                      AvailabilityZone=zone)["Subnet"]["SubnetId"]
        ec2.create_tags(Resources=[sn_id], Tags=tag_list({
            "Name": name,
            "kubernetes.io/role/internal-elb": "1",
            f"kubernetes.io/cluster/{c}": "owned",
        }))
        private.append(sn_id)

    sg_name = f"eks-cluster-sg-{c}"
    sgs = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [sg_name]}])["SecurityGroups"]
    if sgs:
        sg_id = sgs[0]["GroupId"]
    else:
        sg_id = ec2.create_security_group(GroupName=sg_name, Description=f"EKS cluster {c} node security group",
                                          VpcId=vpc_id)["GroupId"]
    ec2.create_tags(Resources=[sg_id], Tags=tag_list({"Name": sg_name, **discovery}))

    role = f"KarpenterNodeRole-{c}"
    profile = f"KarpenterNodeInstanceProfile-{c}"
    try:
        iam.get_role(RoleName=role)
    except iam.exceptions.NoSuchEntityException:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                           "Action": "sts:AssumeRole"}]}))
    try:
        iam.get_instance_profile(InstanceProfileName=profile)
    except iam.exceptions.NoSuchEntityException:
        iam.create_instance_profile(InstanceProfileName=profile)
        iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)

    ng = "ng-1"
    lt_name = f"eks-{c}-{ng}"
    lts = ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": [lt_name]}])
    if not lts["LaunchTemplates"]:
        images = ec2.describe_images(Owners=["amazon"])["Images"]
        ami = sorted(i["ImageId"] for i in images)[0] if images else "ami-12c6146b"
        ec2.create_launch_template(LaunchTemplateName=lt_name, LaunchTemplateData={
            "ImageId": ami,
            "InstanceType": a.instance_type,
            "SecurityGroupIds": [sg_id],
            "IamInstanceProfile": {"Name": profile},
        })
    asg_name = f"eks-{ng}-{c}"
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])["AutoScalingGroups"]
    if not groups:
        asg.create_auto_scaling_group(
            AutoScalingGroupName=asg_name,
            LaunchTemplate={"LaunchTemplateName": lt_name, "Version": "$Latest"},
            MinSize=a.nodes, MaxSize=10, DesiredCapacity=a.nodes,
            VPCZoneIdentifier=",".join(subnets),
            Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True, "ResourceId": asg_name,
                   "ResourceType": "auto-scaling-group"} for k, v in {
                "k8s.io/cluster-autoscaler/enabled": "true",
                f"k8s.io/cluster-autoscaler/{c}": "owned",
                f"kubernetes.io/cluster/{c}": "owned",
                "eks:cluster-name": c,
                "eks:nodegroup-name": ng,
            }.items()],
        )
    # The interruption queue Karpenter's CloudFormation template makes
    # (named after the cluster, messages kept 300 s); EventBridge rules
    # would feed it, testenv/aws/interrupt.py does here.
    sqs = s.client("sqs", endpoint_url=a.endpoint)
    queue_url = sqs.create_queue(QueueName=c, Attributes={"MessageRetentionPeriod": "300"})["QueueUrl"]
    print(json.dumps({"vpc": vpc_id, "subnets": subnets, "privateSubnets": private, "securityGroup": sg_id,
                      "autoScalingGroup": asg_name, "interruptionQueue": queue_url}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
