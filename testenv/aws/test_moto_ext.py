"""Tests of the moto extension (python -m unittest): a moto server with it in
this process, driven by boto3 and plain HTTP."""

import json
import os
import threading
import time
import unittest
import urllib.request

import boto3
from botocore.config import Config
from werkzeug.serving import make_server

import moto_ext
from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app


class QuietHandler(MotoRequestHandler):
    def log_request(self, *args, **kwargs):
        pass

REGION = "ap-southeast-1"


def serve():
    """A moto server with the extension on a free port: (server, url)."""
    moto_ext.install()
    app = moto_ext.ExtendedApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


class MotoExtTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server, cls.url = serve()
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


def now_ms():
    return int(time.time() * 1000)


class LogsExtTest(unittest.TestCase):
    """CloudWatch Logs: the fault switch and PutLogEvents limits."""

    @classmethod
    def setUpClass(cls):
        cls.server, cls.url = serve()
        cls.logs = cls.client("logs")

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()

    @classmethod
    def client(cls, service, attempts=1):
        # One attempt: every answer is seen (boto3 retries throttling and 5xx).
        # No client-side validation: what the service refuses, moto must.
        return boto3.client(
            service, region_name=REGION, endpoint_url=cls.url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"mode": "standard", "total_max_attempts": attempts}, parameter_validation=False),
        )

    def setUp(self):
        self.faults("DELETE")
        self.group = f"/ext-test/{self.id().rsplit('.', 1)[-1]}"
        self.logs.create_log_group(logGroupName=self.group)
        self.logs.create_log_stream(logGroupName=self.group, logStreamName="s")

    def faults(self, method, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + moto_ext.LOGS_FAULTS_PATH, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())

    def put(self, events, client=None, stream="s"):
        return (client or self.logs).put_log_events(logGroupName=self.group, logStreamName=stream, logEvents=events)

    def stored(self, stream="s"):
        return [e["message"] for e in self.logs.get_log_events(
            logGroupName=self.group, logStreamName=stream, startFromHead=True)["events"]]

    def assertRefused(self, events, code, message):
        with self.assertRaises(self.logs.exceptions.ClientError) as e:
            self.put(events)
        err = e.exception.response
        self.assertEqual((err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]), (code, 400))
        self.assertIn(message, err["Error"]["Message"])

    # --- the fault switch ---

    def test_faults_control_endpoint(self):
        empty = {"logsFaults": [], "injected": {"throttle": 0, "serverError": 0, "byOperation": {}}, "limits": True}
        self.assertEqual(self.faults("GET"), empty)
        got = self.faults("POST", {"operation": "PutLogEvents", "throttle": 0.5, "serverError": 0.1})
        self.assertEqual(got["logsFaults"], [{"operation": "PutLogEvents", "throttle": 0.5, "serverError": 0.1}])
        got = self.faults("POST", [{"serverError": 1, "count": 2}, {"operation": "PutLogEvents", "throttle": 1},
                                   {"limits": False}])
        self.assertEqual(got["logsFaults"], [
            {"operation": "*", "throttle": 0, "serverError": 1, "count": 2},
            {"operation": "PutLogEvents", "throttle": 1, "serverError": 0},  # replaced
        ])
        self.assertFalse(got["limits"])
        for bad in ({"operation": "PutLogEvent", "throttle": 1}, {"throttle": 1.5}, {"throttle": 0.6, "serverError": 0.6},
                    {"throttle": 1, "count": 0}, {"count": 3}, {"throttle": "1"}, {"limits": "no"}, {"rate": 1}, {},
                    [{"throttle": 1}, {"throttle": 2}]):
            with self.assertRaises(urllib.error.HTTPError) as e:
                self.faults("POST", bad)
            self.assertEqual(e.exception.code, 400, bad)
        self.assertEqual(len(self.faults("GET")["logsFaults"]), 2)  # nothing of a refused list applied
        got = self.faults("DELETE", {"operation": "PutLogEvents"})
        self.assertEqual([r["operation"] for r in got["logsFaults"]], ["*"])
        self.assertFalse(got["limits"])
        self.assertTrue(self.faults("DELETE", {"limits": False})["limits"])
        self.assertEqual(self.faults("DELETE"), empty)

    def test_throttled_calls_fail_and_store_nothing(self):
        self.faults("POST", {"operation": "PutLogEvents", "throttle": 1, "count": 2})
        for i in range(2):
            with self.assertRaises(self.logs.exceptions.ThrottlingException) as e:
                self.put([{"timestamp": now_ms(), "message": f"throttled {i}"}])
            err = e.exception.response
            self.assertEqual(err["Error"], {"Code": "ThrottlingException", "Message": "Rate exceeded"})
            self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], 400)
            self.assertEqual(err["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"], "ThrottlingException")
        self.put([{"timestamp": now_ms(), "message": "third"}])
        self.assertEqual(self.stored(), ["third"])
        state = self.faults("GET")
        self.assertEqual(state["logsFaults"], [])  # the count is spent
        self.assertEqual(state["injected"], {"throttle": 2, "serverError": 0,
                                             "byOperation": {"PutLogEvents": {"throttle": 2, "serverError": 0}}})

    def test_server_errors_are_retried_by_the_sdk(self):
        self.faults("POST", {"operation": "PutLogEvents", "serverError": 1, "count": 1})
        with self.assertRaises(self.logs.exceptions.ServiceUnavailableException) as e:
            self.put([{"timestamp": now_ms(), "message": "lost"}])
        self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 500)
        # With retries, a throttled or failed call goes through once.
        self.faults("POST", [{"operation": "PutLogEvents", "serverError": 1, "count": 1}])
        self.put([{"timestamp": now_ms(), "message": "after a 500"}], client=self.client("logs", attempts=3))
        self.faults("POST", [{"operation": "PutLogEvents", "throttle": 1, "count": 2}])
        self.put([{"timestamp": now_ms(), "message": "after 2 throttles"}], client=self.client("logs", attempts=3))
        self.assertEqual(self.stored(), ["after a 500", "after 2 throttles"])
        self.assertEqual(self.faults("GET")["injected"]["byOperation"],
                         {"PutLogEvents": {"throttle": 2, "serverError": 2}})

    def test_rules_by_operation(self):
        """A rule of the call's operation wins over "*"; other services are
        not affected."""
        self.faults("POST", [{"throttle": 1}, {"operation": "GetLogEvents", "throttle": 0}])
        with self.assertRaises(self.logs.exceptions.ThrottlingException):
            self.logs.create_log_stream(logGroupName=self.group, logStreamName="t")
        with self.assertRaises(self.logs.exceptions.ThrottlingException):
            self.put([{"timestamp": now_ms(), "message": "x"}])
        self.assertEqual(self.stored(), [])  # GetLogEvents is exempt
        self.client("ec2").describe_vpcs()
        self.assertEqual(self.faults("GET")["injected"]["byOperation"], {
            "CreateLogStream": {"throttle": 1, "serverError": 0}, "PutLogEvents": {"throttle": 1, "serverError": 0}})
        left = self.faults("DELETE", {"operation": "CreateLogStream"})
        self.assertEqual(list(left["injected"]["byOperation"]), ["PutLogEvents"])
        self.assertEqual(len(left["logsFaults"]), 2)

    def test_fault_probabilities(self):
        self.faults("POST", {"operation": "DescribeLogGroups", "throttle": 0.3, "serverError": 0.3})
        ok = 0
        for _ in range(200):
            try:
                self.logs.describe_log_groups(logGroupNamePrefix=self.group)
                ok += 1
            except (self.logs.exceptions.ThrottlingException, self.logs.exceptions.ServiceUnavailableException):
                pass
        injected = self.faults("GET")["injected"]
        self.assertEqual(injected["throttle"] + injected["serverError"] + ok, 200)
        for n in (injected["throttle"], injected["serverError"], ok):
            self.assertTrue(20 < n < 110, injected)

    # --- PutLogEvents limits ---

    def test_batch_of_at_most_10000_events(self):
        t = now_ms()
        self.assertRefused([{"timestamp": t, "message": "e"}] * 10_001, "InvalidParameterException",
                           "at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to 10000")
        self.assertRefused([], "InvalidParameterException",
                           "Value '[]' at 'logEvents' failed to satisfy constraint: "
                           "Member must have length greater than or equal to 1")
        self.assertEqual(self.stored(), [])
        self.put([{"timestamp": t, "message": "e"}] * 10_000)
        self.assertEqual(len(self.stored()), 10_000)

    def test_batch_of_at_most_1MiB_counting_26_bytes_an_event(self):
        t = now_ms()
        full = [{"timestamp": t, "message": "x" * (1024 - 26)} for _ in range(1024)]  # 1,048,576 bytes
        over = full[:-1] + [{"timestamp": t, "message": "é" + "x" * (1024 - 26 - 1)}]  # é: 2 bytes in UTF-8
        self.assertRefused(over, "InvalidParameterException", "Upload too large: 1048577 bytes exceeds limit of 1048576")
        self.assertEqual(self.stored(), [])
        self.put(full)
        self.assertEqual(len(self.stored()), 1024)

    def test_batch_in_order_spanning_at_most_24_hours(self):
        t = now_ms()
        day = 24 * 3600 * 1000
        self.assertRefused([{"timestamp": t, "message": "b"}, {"timestamp": t - 1, "message": "a"}],
                           "InvalidParameterException",
                           "Log events in a single PutLogEvents request must be in chronological order.")
        self.assertRefused([{"timestamp": t - day - 1, "message": "a"}, {"timestamp": t, "message": "b"}],
                           "InvalidParameterException",
                           "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
        self.assertEqual(self.stored(), [])
        self.put([{"timestamp": t - day, "message": "a"}, {"timestamp": t, "message": "b"}])
        self.assertEqual(self.stored(), ["a", "b"])

    def test_empty_messages_are_refused(self):
        self.assertRefused([{"timestamp": now_ms(), "message": "a"}, {"timestamp": now_ms(), "message": ""}],
                           "InvalidParameterException",
                           "1 validation error detected: Value '' at 'logEvents.2.member.message' failed to satisfy "
                           "constraint: Member must have length greater than or equal to 1")
        self.assertEqual(self.stored(), [])

    def test_too_old_and_too_new_events_are_reported_with_the_service_indices(self):
        t = now_ms()
        old, new = t - 15 * 24 * 3600 * 1000, t + 3 * 3600 * 1000
        out = self.put([{"timestamp": old, "message": "old 0"}, {"timestamp": old + 1, "message": "old 1"},
                        {"timestamp": t, "message": "ok"},
                        {"timestamp": new, "message": "new 3"}, {"timestamp": new + 1, "message": "new 4"}])
        self.assertEqual(out["rejectedLogEventsInfo"], {"tooOldLogEventEndIndex": 2, "tooNewLogEventStartIndex": 3})
        self.assertEqual(self.stored(), ["ok"])
        # Only accepted events count for the 24-hour span; a sequence token is ignored.
        out = self.put([{"timestamp": old, "message": "old"}, {"timestamp": t, "message": "ok 2"}])
        self.assertEqual(out["rejectedLogEventsInfo"], {"tooOldLogEventEndIndex": 1})
        self.logs.put_log_events(logGroupName=self.group, logStreamName="s", sequenceToken="not-a-token",
                                 logEvents=[{"timestamp": t, "message": "ok 3"}])
        self.assertEqual(self.stored(), ["ok", "ok 2", "ok 3"])

    def test_limits_switched_off(self):
        self.faults("POST", {"limits": False})
        self.put([{"timestamp": now_ms(), "message": "e"}] * 10_001)
        self.assertEqual(len(self.stored()), 10_000)  # one page
        self.assertTrue(self.faults("DELETE")["limits"])
        self.assertRefused([{"timestamp": now_ms(), "message": "e"}] * 10_001, "InvalidParameterException", "10000")


if __name__ == "__main__":
    unittest.main()
