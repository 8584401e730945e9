"""Unit tests of the instance joiner's pure parts (python -m unittest)."""

import unittest

from joiner import build_node, kube_reserved_cpu_millis, max_pods, node_name, node_resources, parse_kubelet_flags


class JoinerTest(unittest.TestCase):
    def test_max_pods_follows_eni_limits(self):
        self.assertEqual(max_pods(3, 10), 29)  # m5.large
        self.assertEqual(max_pods(4, 15), 58)  # m5.xlarge
        self.assertEqual(max_pods(8, 30), 234)  # m5.4xlarge

    def test_kube_reserved_cpu(self):
        self.assertEqual(kube_reserved_cpu_millis(1), 60)
        self.assertEqual(kube_reserved_cpu_millis(2), 70)
        self.assertEqual(kube_reserved_cpu_millis(4), 80)
        self.assertEqual(kube_reserved_cpu_millis(8), 90)

    def test_m5_large_resources(self):
        cap, alloc = node_resources(2, 8192, 29)
        self.assertEqual(cap["memory"], "7577Mi")
        self.assertEqual(alloc["memory"], f"{7577 - (11 * 29 + 255) - 100}Mi")
        self.assertEqual(alloc["cpu"], "1930m")
        self.assertEqual(alloc["pods"], "29")

    def test_kubelet_flags_from_user_data(self):
        ud = ("#!/bin/bash\n/etc/eks/bootstrap.sh demo --kubelet-extra-args "
              "'--node-labels=karpenter.sh/nodepool=default,team=a "
              "--register-with-taints=karpenter.sh/unregistered:NoExecute,dedicated=gpu:NoSchedule'")
        labels, taints = parse_kubelet_flags(ud)
        self.assertEqual(labels, {"karpenter.sh/nodepool": "default", "team": "a"})
        self.assertEqual(taints, [
            {"key": "karpenter.sh/unregistered", "effect": "NoExecute"},
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
        ])
        self.assertEqual(parse_kubelet_flags(""), ({}, []))

    def test_node_name(self):
        self.assertEqual(node_name("172.31.0.4", "ap-southeast-1"), "ip-172-31-0-4.ap-southeast-1.compute.internal")
        self.assertEqual(node_name("10.0.1.23", "us-east-1"), "ip-10-0-1-23.ec2.internal")

    def test_build_node(self):
        inst = {"InstanceId": "i-1", "InstanceType": "m5.large", "PrivateIpAddress": "172.31.0.4",
                "Placement": {"AvailabilityZone": "ap-southeast-1b"}, "InstanceLifecycle": "spot",
                "Tags": [{"Key": "eks:nodegroup-name", "Value": "ng-1"}]}
        itype = {"VCpuInfo": {"DefaultVCpus": 2}, "MemoryInfo": {"SizeInMiB": 8192},
                 "NetworkInfo": {"MaximumNetworkInterfaces": 3, "Ipv4AddressesPerInterface": 10},
                 "ProcessorInfo": {"SupportedArchitectures": ["arm64"]}}
        n = build_node(inst, itype, "ap-southeast-1", "--node-labels=x=y", 10247)
        self.assertEqual(n["spec"]["providerID"], "aws:///ap-southeast-1b/i-1")
        labels = n["metadata"]["labels"]
        self.assertEqual(labels["karpenter.sh/capacity-type"], "spot")
        self.assertEqual(labels["eks.amazonaws.com/capacityType"], "SPOT")
        self.assertEqual(labels["kubernetes.io/arch"], "arm64")
        self.assertEqual(labels["x"], "y")
        self.assertEqual(n["metadata"]["annotations"]["kwok.x-k8s.io/node"], "fake")


if __name__ == "__main__":
    unittest.main()
