#!/usr/bin/env python3
"""Sends an EventBridge-shaped interruption event for an instance to the interruption queue.

What EventBridge would deliver to the queue Karpenter's rules feed (the event's JSON as the SQS
message body): a spot interruption warning, a rebalance recommendation, an instance state change, or
an AWS Health scheduled change, for one instance. The provisioner (``--interruption-queue``) reads
the queue; this stands in for EC2 and AWS Health, which moto does not run.

    source .testenv/env
    testenv-python testenv/aws/interrupt.py --instance i-0123456789abcdef0 --kind spot
    testenv-python testenv/aws/interrupt.py --instance i-... --kind state-change --state stopping
    make interrupt INSTANCE=i-... KIND=scheduled-change

It prints the event sent and the message ID.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import uuid
from typing import Any

import boto3

KINDS = ("spot", "rebalance", "state-change", "scheduled-change")


def event(kind: str, instance: str, region: str, account: str, state: str = "stopping") -> dict[str, Any]:
    """The EventBridge event (schema version 0) of `kind` for `instance`."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    arn = f"arn:aws:ec2:{region}:{account}:instance/{instance}"
    base: dict[str, Any] = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "account": account,
        "time": now,
        "region": region,
        "resources": [arn],
    }
    if kind == "spot":
        return {**base, "detail-type": "EC2 Spot Instance Interruption Warning", "source": "aws.ec2",
                "detail": {"instance-id": instance, "instance-action": "terminate"}}
    if kind == "rebalance":
        return {**base, "detail-type": "EC2 Instance Rebalance Recommendation", "source": "aws.ec2",
                "detail": {"instance-id": instance}}
    if kind == "state-change":
        return {**base, "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
                "detail": {"instance-id": instance, "state": state}}
    if kind == "scheduled-change":
        return {**base, "detail-type": "AWS Health Event", "source": "aws.health", "resources": [],
                "detail": {
                    "eventArn": f"arn:aws:health:{region}::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/{base['id']}",
                    "service": "EC2",
                    "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
                    "eventTypeCategory": "scheduledChange",
                    "startTime": now,
                    "eventDescription": [{"language": "en_US",
                                          "latestDescription": "The instance is scheduled for retirement."}],
                    "affectedEntities": [{"entityValue": instance}],
                }}
    raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instance", required=True, help="the EC2 instance ID")
    p.add_argument("--kind", choices=KINDS, required=True)
    p.add_argument("--state", default="stopping",
                   help="state-change only: pending, running, stopping, stopped, shutting-down, terminated")
    p.add_argument("--queue", default=os.environ.get("CLUSTER_NAME", "demo"), help="the queue's name (the cluster's)")
    p.add_argument("--region", default=os.environ.get("AWS_REGION", "ap-southeast-1"))
    p.add_argument("--account", default="123456789012")
    a = p.parse_args()
    sqs = boto3.client("sqs", region_name=a.region)
    url = sqs.get_queue_url(QueueName=a.queue)["QueueUrl"]
    body = event(a.kind, a.instance, a.region, a.account, a.state)
    out = sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    print(json.dumps({"messageId": out["MessageId"], "event": body}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
