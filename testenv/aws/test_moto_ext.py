"""Tests of the moto extension (python -m unittest): a moto server with it in
this process, driven by boto3 and plain HTTP."""

import json
import os
import threading
import unittest
import urllib.request

import boto3
from werkzeug.serving import make_server

import moto_ext
from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app


class QuietHandler(MotoRequestHandler):
    def log_request(self, *args, **kwargs):
        pass

REGION = "ap-southeast-1"


class MotoExtTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        moto_ext.install()
        app = moto_ext.ExtendedApplication(create_backend_app)
        cls.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
        cls.url = f"http://127.0.0.1:{cls.server.server_port}"
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.ec2 = boto3.client(
            "ec2", region_name=REGION, endpoint_url=cls.url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        vpc = cls.ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        cls.vpc = vpc
        cls.subnets = {}
        for i, z in enumerate(["a", "b"]):
            zone = f"{REGION}{z}"
            cls.subnets[zone] = cls.ec2.create_subnet(
                VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        image = cls.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        cls.ec2.create_launch_template(LaunchTemplateName="ext-test", LaunchTemplateData={"ImageId": image})
        # The raw XML of the last CreateFleet (what the AWS SDK for Rust parses).
        cls.raw = {}
        cls.ec2.meta.events.register(
            "after-call.ec2.CreateFleet",
            lambda http_response, **_: cls.raw.__setitem__("CreateFleet", http_response.text))

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()

    def setUp(self):
        self.control("DELETE")

    def control(self, method, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + moto_ext.EXT_PATH, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())["insufficientCapacity"]

    def fleet(self, capacity_type, overrides):
        return self.ec2.create_fleet(
            Type="instant",
            TargetCapacitySpecification={"TotalTargetCapacity": 1, "DefaultTargetCapacityType": capacity_type},
            LaunchTemplateConfigs=[{
                "LaunchTemplateSpecification": {"LaunchTemplateName": "ext-test", "Version": "$Latest"},
                "Overrides": [{"InstanceType": t, "SubnetId": self.subnets[z], "AvailabilityZone": z}
                              for t, z in overrides],
            }],
        )

    def lifecycle(self, instance_id):
        r = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        return r.get("InstanceLifecycle", "on-demand"), r["InstanceType"], r["Placement"]["AvailabilityZone"]

    def test_control_endpoint(self):
        self.assertEqual(self.control("GET"), [])
        got = self.control("POST", {"instanceType": "m6i.2xlarge", "capacityType": "spot"})
        self.assertEqual(got, [{"instanceType": "m6i.2xlarge", "zone": "*", "capacityType": "spot"}])
        self.control("POST", [{"zone": "ap-southeast-1a"}, {"instanceType": "c6i.large", "zone": "*"}])
        self.assertEqual(len(self.control("GET")), 3)
        # A pattern removes what it covers.
        left = self.control("DELETE", {"instanceType": "m6i.2xlarge"})
        self.assertEqual(len(left), 2)
        left = self.control("DELETE", {"zone": "ap-southeast-1a"})
        self.assertEqual(left, [{"instanceType": "c6i.large", "zone": "*", "capacityType": "*"}])
        self.assertEqual(self.control("DELETE"), [])
        for bad in ({"capacityType": "reserved"}, {"instancetype": "x"}, {"zone": 3}):
            with self.assertRaises(urllib.error.HTTPError) as e:
                self.control("POST", bad)
            self.assertEqual(e.exception.code, 400)
        self.assertEqual(self.control("GET"), [])

    def test_without_injection_the_fleet_launches(self):
        out = self.fleet("spot", [("m6i.2xlarge", "ap-southeast-1a")])
        self.assertEqual(out.get("Errors", []), [])
        self.assertEqual(len(out["Instances"]), 1)
        self.assertEqual(self.lifecycle(out["Instances"][0]["InstanceIds"][0])[0], "spot")

    def test_offerings_without_capacity_are_skipped_and_reported(self):
        self.control("POST", {"instanceType": "m6i.2xlarge", "capacityType": "spot"})
        out = self.fleet("spot", [("m6i.2xlarge", "ap-southeast-1a"), ("m6i.2xlarge", "ap-southeast-1b"),
                                  ("m6i.4xlarge", "ap-southeast-1b")])
        self.assertEqual(len(out["Instances"]), 1)
        self.assertEqual(self.lifecycle(out["Instances"][0]["InstanceIds"][0]),
                         ("spot", "m6i.4xlarge", "ap-southeast-1b"))
        errors = out["Errors"]
        self.assertEqual(len(errors), 2)
        for e, zone in zip(errors, ["ap-southeast-1a", "ap-southeast-1b"]):
            self.assertEqual(e["ErrorCode"], "InsufficientInstanceCapacity")
            self.assertEqual(e["Lifecycle"], "spot")
            self.assertIn(f"sufficient m6i.2xlarge capacity in the Availability Zone you requested ({zone})",
                          e["ErrorMessage"])
            o = e["LaunchTemplateAndOverrides"]["Overrides"]
            self.assertEqual((o["InstanceType"], o["AvailabilityZone"], o["SubnetId"]),
                             ("m6i.2xlarge", zone, self.subnets[zone]))
            spec = e["LaunchTemplateAndOverrides"]["LaunchTemplateSpecification"]
            self.assertTrue(spec["LaunchTemplateId"].startswith("lt-"))
            self.assertEqual(spec["Version"], "1")
        # The XML as EC2 writes it.
        xml = self.raw["CreateFleet"]
        if os.environ.get("SHOW_XML"):
            print(xml)
        for needle in ["<errorSet>", "<launchTemplateAndOverrides>", "<launchTemplateSpecification>",
                       "<overrides>", "<instanceType>m6i.2xlarge</instanceType>",
                       "<availabilityZone>ap-southeast-1a</availabilityZone>", "<lifecycle>spot</lifecycle>",
                       "<errorCode>InsufficientInstanceCapacity</errorCode>", "<errorMessage>We currently"]:
            self.assertIn(needle, xml)

    def test_no_offering_left_launches_nothing(self):
        self.control("POST", {"instanceType": "m6i.2xlarge", "zone": "*", "capacityType": "spot"})
        out = self.fleet("spot", [("m6i.2xlarge", "ap-southeast-1a"), ("m6i.2xlarge", "ap-southeast-1b")])
        self.assertEqual(out.get("Instances", []), [])
        self.assertEqual([e["ErrorCode"] for e in out["Errors"]], ["InsufficientInstanceCapacity"] * 2)
        self.assertTrue(out["FleetId"].startswith("fleet-"))
        described = self.ec2.describe_fleets(FleetIds=[out["FleetId"]])["Fleets"][0]
        self.assertEqual(len(described.get("Errors", [])), 2)
        self.assertEqual(described["TargetCapacitySpecification"]["TotalTargetCapacity"], 1)
        # The other capacity type still has capacity.
        od = self.fleet("on-demand", [("m6i.2xlarge", "ap-southeast-1a")])
        self.assertEqual(od.get("Errors", []), [])
        self.assertEqual(self.lifecycle(od["Instances"][0]["InstanceIds"][0])[0], "on-demand")

    def test_entries_match_by_zone_and_capacity_type(self):
        self.control("POST", {"zone": "ap-southeast-1a", "capacityType": "on-demand"})
        out = self.fleet("on-demand", [("m6i.2xlarge", "ap-southeast-1a"), ("m6i.2xlarge", "ap-southeast-1b")])
        self.assertEqual(len(out["Errors"]), 1)
        self.assertEqual(out["Errors"][0]["Lifecycle"], "on-demand")
        self.assertEqual(self.lifecycle(out["Instances"][0]["InstanceIds"][0]),
                         ("on-demand", "m6i.2xlarge", "ap-southeast-1b"))
        spot = self.fleet("spot", [("m6i.2xlarge", "ap-southeast-1a")])
        self.assertEqual(spot.get("Errors", []), [])

    def test_capacity_type_of_a_fleet(self):
        self.assertEqual(moto_ext.fleet_capacity_type({"DefaultTargetCapacityType": "spot"}), "spot")
        self.assertEqual(moto_ext.fleet_capacity_type({"TotalTargetCapacity": 1}), "on-demand")
        self.assertEqual(moto_ext.fleet_capacity_type({"TotalTargetCapacity": 1, "SpotTargetCapacity": 1}), "spot")

    def test_a_rule_or_listener_changed_to_forward_lists_its_target_group(self):
        """ModifyRule and ModifyListener link the target groups they forward
        to with the load balancer, as ELBv2 does."""
        elb = boto3.client(
            "elbv2", region_name=REGION, endpoint_url=self.url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        lb = elb.create_load_balancer(Name="link-test", Type="application",
                                      Subnets=list(self.subnets.values()))["LoadBalancers"][0]["LoadBalancerArn"]
        tgs = [elb.create_target_group(Name=f"link-{i}", Protocol="HTTP", Port=80, VpcId=self.vpc,
                                       TargetType="ip")["TargetGroups"][0]["TargetGroupArn"] for i in range(2)]
        fixed = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}]
        listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                                       DefaultActions=fixed)["Listeners"][0]["ListenerArn"]
        rule = elb.create_rule(ListenerArn=listener, Priority=1, Actions=fixed, Conditions=[
            {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}])["Rules"][0]["RuleArn"]

        def listed():
            try:
                return {t["TargetGroupArn"] for t in elb.describe_target_groups(LoadBalancerArn=lb)["TargetGroups"]}
            except elb.exceptions.TargetGroupNotFoundException:
                return set()

        self.assertEqual(listed(), set())
        elb.modify_rule(RuleArn=rule, Actions=[{"Type": "forward", "TargetGroupArn": tgs[0]}])
        self.assertEqual(listed(), {tgs[0]})
        elb.modify_listener(ListenerArn=listener, DefaultActions=[{"Type": "forward", "TargetGroupArn": tgs[1]}])
        self.assertEqual(listed(), set(tgs))
        elb.modify_rule(RuleArn=rule, Actions=[{"Type": "forward", "TargetGroupArn": tgs[0]}])
        self.assertEqual(listed(), set(tgs))

if __name__ == "__main__":
    unittest.main()
