"""moto's server with the test environment's extensions: insufficient
capacity, CloudWatch Logs faults and PutLogEvents limits.

Run it like moto's own entry point (same arguments, same server)::

    python testenv/aws/moto_ext.py -H 127.0.0.1 -p 5000

What moto lacks: EC2 never runs out of capacity in moto, so a CreateFleet
always launches. Real EC2 answers an `instant` fleet whose offerings have no
capacity with no instance (or one from another offering) and an entry per
failed offering in the response's `Errors` (`errorSet` in the XML), error code
`InsufficientInstanceCapacity`. The provisioner's AWS provider reacts to those
entries (it keeps the offering out for a while and falls back to the next
capacity type); this extension lets tests make EC2 say so. Product code calls
the real EC2 API unchanged.

The extension, on the same server as moto:

* ``/outrigger-ext/insufficient-capacity`` holds a set of offerings without
  capacity, each ``{"instanceType": ..., "zone": ..., "capacityType": ...}``;
  any field may be ``"*"`` or omitted, meaning any.

  - ``POST`` a JSON object (or a list of them): adds it.
  - ``DELETE`` with a JSON body: removes every entry the pattern covers (each
    of its fields ``"*"``/omitted or equal), so ``{}`` or no body clears all.
  - ``GET``: the set.

  Each answers ``{"insufficientCapacity": [...]}`` (the set afterwards).

* CreateFleet of type ``instant``: every override (launch template config x
  override; a config without overrides counts as one with the template's
  values) whose instance type, zone (the override's ``AvailabilityZone``, else
  its subnet's zone) and capacity type match an entry is not launched from and
  is reported in ``Errors`` as EC2 does: ``lifecycle``, ``errorCode``
  ``InsufficientInstanceCapacity``, EC2's message, and
  ``launchTemplateAndOverrides`` (the launch template and the override's
  instance type, zone and subnet). moto launches from the remaining overrides
  as usual; if none remain the fleet launches nothing and the response has
  only the errors. DescribeFleets shows the same errors for the fleet.

  The capacity type of every override is the fleet's
  ``TargetCapacitySpecification.DefaultTargetCapacityType`` (moto's default,
  ``on-demand``, when absent; ``spot`` when absent and only
  ``SpotTargetCapacity`` is asked for). Fleets of type ``maintain`` and
  ``request`` are not affected, nor is RunInstances.

The set lives in this process only (a restart empties it; moto's
``/moto-api/reset`` does not touch it).

A second, smaller gap: ELBv2's ``DescribeTargetGroups --load-balancer-arn``
lists every target group a listener or rule of the load balancer forwards
to. moto records that link when a listener or rule is created, not when
ModifyRule or ModifyListener points one at a target group, so a rule changed
to forward (the load balancer controller does that when a backend Service
appears after its Ingress) left the group unlisted. The extension records
the link on those two calls as well.

CloudWatch Logs, for a log shipper's tests:

* ``/outrigger-ext/logs-faults`` makes CloudWatch Logs calls fail as the
  service does when it throttles (HTTP 400, ``ThrottlingException``, "Rate
  exceeded") or fails (HTTP 500, ``ServiceUnavailableException``), per
  operation (``X-Amz-Target: Logs_20140328.<operation>``) or for all. A
  rule ``{"operation": ..., "throttle": p, "serverError": q, "count": n}``:
  ``operation`` a CloudWatch Logs operation, ``"*"`` or omitted for every
  one (a rule of the call's own operation wins over ``"*"``); ``throttle``
  and ``serverError`` the probabilities of each (0 when omitted, at most 1
  together); ``count`` (optional) ends the rule after it has failed that
  many calls, so ``{"throttle": 1, "count": 3}`` fails exactly the next
  three calls. A failed call is answered here and never reaches moto (a
  PutLogEvents so answered stores nothing).

  - ``POST`` a JSON object (or a list of them): sets the rule of its
    operation (replacing one there was); ``{"limits": false}`` (alone or in
    a rule) switches the PutLogEvents limits below off, ``true`` on.
  - ``DELETE`` with such a body: removes the rule of its operation and its
    counters (``"*"``/omitted: every rule and counter); an object with
    ``limits`` switches them back on. No body (or ``{}``) resets all.
  - ``GET``: the state.

  Each answers ``{"logsFaults": [rules], "injected": {"throttle": n,
  "serverError": n, "byOperation": {operation: {kind: n}}}, "limits": bool}``
  (the state afterwards; ``count`` in a rule is what is left of it).

* PutLogEvents enforces CloudWatch Logs' batch rules, which moto does not
  (on unless switched off above): at least 1 and at most 10,000 events, no
  empty message, at most 1,048,576 bytes counting each message's UTF-8 bytes
  plus 26, chronological order, and at most 24 hours between the batch's
  accepted events, each refused with CloudWatch's ``InvalidParameterException``
  and message; events more than 14 days old or 2 hours ahead are dropped and
  reported in ``rejectedLogEventsInfo`` with the service's indices
  (``tooOldLogEventEndIndex`` exclusive, ``tooNewLogEventStartIndex``
  inclusive; moto reports the last index of each).

Both live in this process only, like the insufficient-capacity set.
"""

from __future__ import annotations

import functools
import json
import random
import sys
import threading
import time
import uuid
from typing import Any, Iterable

import botocore.session
import moto.server
from moto.ec2.models.fleets import FleetsBackend
from moto.ec2.responses.fleets import Fleets as FleetsResponse
from moto.elbv2.models import ELBv2Backend
from moto.logs.exceptions import InvalidParameterException
from moto.logs.models import LogsBackend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

EXT_PATH = "/outrigger-ext/insufficient-capacity"
ANY = "*"
CAPACITY_TYPES = ("spot", "on-demand")
_FIELDS = ("instanceType", "zone", "capacityType")


class InsufficientCapacity:
    """The offerings that have no capacity: (instance type, zone, capacity
    type) patterns, ``*`` for any."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: set[tuple[str, str, str]] = set()

    @staticmethod
    def pattern(d: dict[str, Any] | None) -> tuple[str, str, str]:
        d = d or {}
        if not isinstance(d, dict):
            raise ValueError("expected a JSON object")
        unknown = set(d) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}; expected {list(_FIELDS)}")
        out = []
        for f in _FIELDS:
            v = d.get(f)
            if v is None or v == "":
                v = ANY
            if not isinstance(v, str):
                raise ValueError(f"{f} must be a string")
            out.append(v)
        if out[2] not in (ANY, *CAPACITY_TYPES):
            raise ValueError(f"capacityType must be one of {list(CAPACITY_TYPES)} or '*'")
        return (out[0], out[1], out[2])

    def add(self, d: dict[str, Any] | None) -> None:
        p = self.pattern(d)
        with self._lock:
            self._entries.add(p)

    def remove(self, d: dict[str, Any] | None) -> None:
        p = self.pattern(d)
        with self._lock:
            self._entries = {
                e for e in self._entries if not all(a in (ANY, b) for a, b in zip(p, e))
            }

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def matches(self, instance_type: str | None, zone: str | None, capacity_type: str) -> bool:
        have = (instance_type or "", zone or "", capacity_type)
        with self._lock:
            entries = list(self._entries)
        return any(all(a in (ANY, b) for a, b in zip(e, have)) for e in entries)

    def to_json(self) -> list[dict[str, str]]:
        with self._lock:
            entries = sorted(self._entries)
        return [dict(zip(_FIELDS, e)) for e in entries]


INSUFFICIENT_CAPACITY = InsufficientCapacity()


# --- CreateFleet ----------------------------------------------------------------


def fleet_capacity_type(target: dict[str, Any]) -> str:
    """The capacity type an instant fleet launches (see the module doc)."""
    default = target.get("DefaultTargetCapacityType")
    if default:
        return str(default)
    spot = int(target.get("SpotTargetCapacity") or 0)
    on_demand = int(target.get("OnDemandTargetCapacity") or 0)
    return "spot" if spot > 0 and on_demand == 0 else "on-demand"


def _resolved_template_spec(backend: Any, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The launch template specification as EC2 echoes it (id, resolved
    version) and the version's data."""
    if "LaunchTemplateId" in spec:
        lt = backend.get_launch_template(template_id=spec["LaunchTemplateId"])
    else:
        lt = backend.get_launch_template_by_name(name=spec["LaunchTemplateName"])
    out = {k: v for k, v in spec.items() if k in ("LaunchTemplateId", "LaunchTemplateName", "Version")}
    version = out.get("Version")
    if version == "$Latest":
        version = str(lt.latest_version_number)
    elif version in (None, "$Default"):
        version = str(lt.default_version_number)
    out["Version"] = str(version)
    out["LaunchTemplateId"] = lt.id
    return out, lt.get_version(out["Version"]).data


def _zone_of(backend: Any, override: dict[str, Any], data: dict[str, Any]) -> str | None:
    zone = override.get("AvailabilityZone") or (data.get("Placement") or {}).get("AvailabilityZone")
    if zone:
        return str(zone)
    subnet = override.get("SubnetId") or data.get("SubnetId")
    if not subnet:
        return None
    try:
        return backend.get_subnet(subnet).availability_zone
    except Exception:  # an unknown subnet fails later, in moto's own code
        return None


def _message(backend: Any, instance_type: str, zone: str | None) -> str:
    try:
        others = [z.name for z in backend.describe_availability_zones() if z.name != zone]
    except Exception:
        others = []
    msg = (
        f"We currently do not have sufficient {instance_type} capacity in the Availability Zone "
        f"you requested ({zone}). Our system will be working on provisioning additional capacity."
    )
    if others:
        msg += (
            f" You can currently get {instance_type} capacity by not specifying an Availability Zone "
            f"in your request or choosing {', '.join(sorted(others))}."
        )
    return msg


def split_overrides(
    backend: Any, launch_template_configs: Iterable[dict[str, Any]], capacity_type: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The launch template configs with the overrides that have capacity, and
    an EC2 CreateFleet error for each override that has none."""
    kept: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for config in launch_template_configs or []:
        spec = config.get("LaunchTemplateSpecification") or {}
        try:
            echoed, data = _resolved_template_spec(backend, spec)
        except Exception:  # moto's own code reports a bad template
            kept.append(config)
            continue
        overrides = config.get("Overrides") or []
        left = []
        for override in overrides or [{}]:
            instance_type = override.get("InstanceType") or data.get("InstanceType")
            zone = _zone_of(backend, override, data)
            if not INSUFFICIENT_CAPACITY.matches(instance_type, zone, capacity_type):
                left.append(override)
                continue
            reported = {k: v for k, v in override.items() if k in ("InstanceType", "AvailabilityZone", "SubnetId")}
            reported.setdefault("InstanceType", instance_type)
            if zone:
                reported.setdefault("AvailabilityZone", zone)
            errors.append(
                {
                    "LaunchTemplateAndOverrides": {
                        "LaunchTemplateSpecification": echoed,
                        "Overrides": reported,
                    },
                    "Lifecycle": capacity_type,
                    "ErrorCode": "InsufficientInstanceCapacity",
                    "ErrorMessage": _message(backend, str(instance_type), zone),
                }
            )
        if not overrides:
            if left:
                kept.append(config)
        elif left:
            kept.append({**config, "Overrides": left})
    return kept, errors


_original_create_fleet = FleetsBackend.create_fleet


def create_fleet(self: Any, **kwargs: Any) -> Any:
    """FleetsBackend.create_fleet, launching only from offerings with
    capacity (instant fleets)."""
    if kwargs.get("fleet_type") != "instant":
        return _original_create_fleet(self, **kwargs)
    target = dict(kwargs.get("target_capacity_specification") or {})
    capacity_type = fleet_capacity_type(target)
    configs, errors = split_overrides(self, kwargs.get("launch_template_configs") or [], capacity_type)
    if not errors:
        return _original_create_fleet(self, **kwargs)
    if configs:
        fleet = _original_create_fleet(self, **{**kwargs, "launch_template_configs": configs})
    else:
        # Nothing to launch from: a fleet of no capacity (moto cannot pick
        # from no override), then its asked-for capacity put back.
        empty = {**target, "TotalTargetCapacity": 0, "SpotTargetCapacity": 0, "OnDemandTargetCapacity": 0}
        fleet = _original_create_fleet(
            self, **{**kwargs, "launch_template_configs": [], "target_capacity_specification": empty}
        )
        fleet.target_capacity_specification = target
        fleet.target_capacity = int(target.get("TotalTargetCapacity") or 0)
    # Rendered by DescribeFleets (FleetData.Errors) through moto's serializer.
    fleet.errors = errors
    return fleet


_original_create_fleet_response = FleetsResponse.create_fleet


def create_fleet_response(self: Any) -> Any:
    """The CreateFleet response with the fleet's errors (`errorSet`)."""
    result = _original_create_fleet_response(self)
    body = getattr(result, "result", None)
    if isinstance(body, dict) and body.get("FleetId"):
        fleet = self.ec2_backend.get_fleet(body["FleetId"])
        errors = getattr(fleet, "errors", None)
        if errors:
            body["Errors"] = errors
            body.setdefault("Instances", [])
    return result


# --- CloudWatch Logs: faults ---------------------------------------------------

LOGS_FAULTS_PATH = "/outrigger-ext/logs-faults"
LOGS_TARGET_PREFIX = "Logs_20140328."
_FAULT_KINDS = ("throttle", "serverError")
_RULE_FIELDS = ("operation", *_FAULT_KINDS, "count")
# What CloudWatch Logs answers (JSON 1.1 errors): status, error type, message.
_FAULT_ERRORS = {
    "throttle": ("400 Bad Request", "ThrottlingException", "Rate exceeded"),
    "serverError": (
        "500 Internal Server Error",
        "ServiceUnavailableException",
        "The service cannot complete the request.",
    ),
}


@functools.lru_cache(maxsize=1)
def logs_operations() -> frozenset[str]:
    """Every CloudWatch Logs operation (botocore's model of the service)."""
    return frozenset(botocore.session.get_session().get_service_model("logs").operation_names)


class LogsFaults:
    """The CloudWatch Logs fault rules (one per operation, ``*`` for any),
    the faults they injected, and whether PutLogEvents limits hold."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, dict[str, Any]] = {}
        self._injected: dict[str, dict[str, int]] = {}
        self._random = random.Random()
        self.limits = True

    @staticmethod
    def parse(d: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool | None]:
        """A POST or DELETE object: its rule (None without rule fields) and
        its ``limits`` (None when absent)."""
        d = d or {}
        if not isinstance(d, dict):
            raise ValueError("expected a JSON object")
        unknown = set(d) - {*_RULE_FIELDS, "limits"}
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}; expected {[*_RULE_FIELDS, 'limits']}")
        limits = d.get("limits")
        if limits is not None and not isinstance(limits, bool):
            raise ValueError("limits must be true or false")
        if not any(f in d for f in _RULE_FIELDS):
            return None, limits
        op = d.get("operation")
        if op is None or op == "":
            op = ANY
        if not isinstance(op, str):
            raise ValueError("operation must be a string")
        if op != ANY and op not in logs_operations():
            raise ValueError(f"unknown CloudWatch Logs operation {op!r}")
        rule: dict[str, Any] = {"operation": op}
        for kind in _FAULT_KINDS:
            p = d.get(kind)
            p = 0 if p is None else p
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
                raise ValueError(f"{kind} must be a probability, 0 to 1")
            rule[kind] = p
        if rule["throttle"] + rule["serverError"] > 1 + 1e-9:
            raise ValueError("throttle + serverError must be at most 1")
        count = d.get("count")
        if count is not None:
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError("count must be a positive integer")
            if rule["throttle"] + rule["serverError"] == 0:
                raise ValueError("count needs throttle or serverError above 0")
            rule["count"] = count
        return rule, limits

    @classmethod
    def parse_post(cls, d: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool | None]:
        rule, limits = cls.parse(d)
        if rule is None and limits is None:
            raise ValueError(f"expected a rule ({list(_RULE_FIELDS)}) or limits")
        return rule, limits

    def post(self, d: dict[str, Any] | None) -> None:
        rule, limits = self.parse_post(d)
        with self._lock:
            if rule is not None:
                self._rules[rule["operation"]] = rule
            if limits is not None:
                self.limits = limits

    def delete(self, d: dict[str, Any] | None) -> None:
        rule, limits = self.parse(d)
        everything = rule is None and limits is None
        with self._lock:
            if everything or (rule is not None and rule["operation"] == ANY):
                self._rules.clear()
                self._injected.clear()
            elif rule is not None:
                self._rules.pop(rule["operation"], None)
                self._injected.pop(rule["operation"], None)
            if everything or limits is not None:
                self.limits = True

    def draw(self, operation: str) -> str | None:
        """The fault a call of `operation` gets: a kind, or None."""
        with self._lock:
            key = operation if operation in self._rules else ANY
            rule = self._rules.get(key)
            if rule is None:
                return None
            r = self._random.random()
            if r < rule["throttle"]:
                kind = "throttle"
            elif r < rule["throttle"] + rule["serverError"]:
                kind = "serverError"
            else:
                return None
            if "count" in rule:
                rule["count"] -= 1
                if rule["count"] == 0:
                    del self._rules[key]
            counts = self._injected.setdefault(operation, dict.fromkeys(_FAULT_KINDS, 0))
            counts[kind] += 1
            return kind

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            rules = [dict(self._rules[k]) for k in sorted(self._rules)]
            by_op = {op: dict(c) for op, c in sorted(self._injected.items())}
            limits = self.limits
        injected: dict[str, Any] = {k: sum(c[k] for c in by_op.values()) for k in _FAULT_KINDS}
        injected["byOperation"] = by_op
        return {"logsFaults": rules, "injected": injected, "limits": limits}


LOGS_FAULTS = LogsFaults()


def logs_fault(environ: dict[str, Any], start_response: Any) -> list[bytes] | None:
    """The error answer of a CloudWatch Logs call a rule fails, None for
    a call moto serves."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if not target.startswith(LOGS_TARGET_PREFIX):
        return None
    kind = LOGS_FAULTS.draw(target[len(LOGS_TARGET_PREFIX):])
    if kind is None:
        return None
    _request_body(environ)  # read all of it: unread, closing the socket could reset the connection
    status, error_type, message = _FAULT_ERRORS[kind]
    data = json.dumps({"__type": error_type, "message": message}).encode()
    start_response(status, [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("Content-Length", str(len(data))),
        ("x-amzn-ErrorType", error_type),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ])
    return [data]


# --- CloudWatch Logs: PutLogEvents limits ----------------------------------------

MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000
MAX_AGE_MS = 14 * 24 * 3600 * 1000
MAX_AHEAD_MS = 2 * 3600 * 1000
_LISTED_ERRORS = 10  # validation errors written out in one message


def check_batch(log_events: Any) -> None:
    """Raises CloudWatch's InvalidParameterException for a PutLogEvents
    batch it refuses as a whole: its input constraints (events 1 to 10,000,
    timestamp and message present, timestamp >= 0, message not empty), its
    size, and its order."""
    errors: list[str] = []
    if log_events is None:
        errors.append("Value null at 'logEvents' failed to satisfy constraint: Member must not be null")
    elif not log_events:
        errors.append("Value '[]' at 'logEvents' failed to satisfy constraint: "
                      "Member must have length greater than or equal to 1")
    elif len(log_events) > MAX_BATCH_EVENTS:
        # The value abbreviated (CloudWatch writes the whole list out).
        errors.append(f"Value '[...]' at 'logEvents' failed to satisfy constraint: "
                      f"Member must have length less than or equal to {MAX_BATCH_EVENTS}")
    for i, event in enumerate(log_events or [], start=1):
        at = f"at 'logEvents.{i}.member"
        timestamp, message = event.get("timestamp"), event.get("message")
        if timestamp is None:
            errors.append(f"Value null {at}.timestamp' failed to satisfy constraint: Member must not be null")
        elif timestamp < 0:
            errors.append(f"Value '{timestamp}' {at}.timestamp' failed to satisfy constraint: "
                          "Member must have value greater than or equal to 0")
        if message is None:
            errors.append(f"Value null {at}.message' failed to satisfy constraint: Member must not be null")
        elif message == "":
            errors.append(f"Value '' {at}.message' failed to satisfy constraint: "
                          "Member must have length greater than or equal to 1")
    if errors:
        n = len(errors)
        raise InvalidParameterException(
            f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(errors[:_LISTED_ERRORS]))
    size = sum(len(e["message"].encode("utf-8")) + EVENT_OVERHEAD for e in log_events)
    if size > MAX_BATCH_BYTES:
        raise InvalidParameterException(f"Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}")
    for a, b in zip(log_events, log_events[1:]):
        if b["timestamp"] < a["timestamp"]:
            raise InvalidParameterException(
                "Log events in a single PutLogEvents request must be in chronological order.")


def split_by_age(log_events: list[dict[str, Any]], now_ms: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The events CloudWatch accepts from a chronological batch, and its
    ``rejectedLogEventsInfo`` for the rest: the too old lead, the too new
    trail."""
    old = sum(1 for e in log_events if e["timestamp"] < now_ms - MAX_AGE_MS)
    new_from = next((i for i, e in enumerate(log_events) if e["timestamp"] > now_ms + MAX_AHEAD_MS), len(log_events))
    rejected = {}
    if old:
        rejected["tooOldLogEventEndIndex"] = old
    if new_from < len(log_events):
        rejected["tooNewLogEventStartIndex"] = new_from
    return log_events[old:new_from], rejected


_put_log_events = LogsBackend.put_log_events


def put_log_events(self: Any, log_group_name: str, log_stream_name: str, log_events: Any) -> Any:
    """LogsBackend.put_log_events with CloudWatch's batch rules (while the
    limits are on)."""
    if not LOGS_FAULTS.limits:
        return _put_log_events(self, log_group_name, log_stream_name, log_events)
    check_batch(log_events)
    accepted, rejected = split_by_age(log_events, int(time.time() * 1000))
    if accepted and accepted[-1]["timestamp"] - accepted[0]["timestamp"] > MAX_BATCH_SPAN_MS:
        raise InvalidParameterException(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
    token, _ = _put_log_events(self, log_group_name, log_stream_name, accepted)
    return token, rejected


# --- the control endpoints ------------------------------------------------------


def _request_body(environ: dict[str, Any]) -> bytes:
    if environ.get("wsgi.input_terminated"):
        return environ["wsgi.input"].read()
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _answer(start_response: Any, status: str, out: dict[str, Any]) -> list[bytes]:
    data = json.dumps(out).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def logs_faults_control(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """WSGI handler of LOGS_FAULTS_PATH."""
    method = environ.get("REQUEST_METHOD", "GET")
    raw = _request_body(environ)
    status = "200 OK"
    try:
        body = json.loads(raw) if raw.strip() else None
        items = body if isinstance(body, list) else [body]
        if method == "POST":
            if body is None:
                raise ValueError("POST needs a JSON object or a list of them")
            for d in items:  # all valid before any is applied
                LOGS_FAULTS.parse_post(d)
            for d in items:
                LOGS_FAULTS.post(d)
        elif method == "DELETE":
            for d in items:
                LOGS_FAULTS.parse(d)
            for d in items:
                LOGS_FAULTS.delete(d)
        elif method != "GET":
            status = "405 Method Not Allowed"
        out = LOGS_FAULTS.to_json()
    except ValueError as e:  # json.JSONDecodeError is one
        status, out = "400 Bad Request", {"error": str(e)}
    return _answer(start_response, status, out)


def control(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """WSGI handler of EXT_PATH."""
    method = environ.get("REQUEST_METHOD", "GET")
    raw = _request_body(environ)
    status = "200 OK"
    try:
        body = json.loads(raw) if raw.strip() else None
        if method == "POST":
            if body is None:
                raise ValueError("POST needs a JSON object or a list of them")
            for d in body if isinstance(body, list) else [body]:
                INSUFFICIENT_CAPACITY.pattern(d)  # all valid before any is added
            for d in body if isinstance(body, list) else [body]:
                INSUFFICIENT_CAPACITY.add(d)
        elif method == "DELETE":
            for d in body if isinstance(body, list) else [body]:
                INSUFFICIENT_CAPACITY.remove(d)
        elif method != "GET":
            status = "405 Method Not Allowed"
        out: dict[str, Any] = {"insufficientCapacity": INSUFFICIENT_CAPACITY.to_json()}
    except ValueError as e:  # json.JSONDecodeError is one
        status, out = "400 Bad Request", {"error": str(e)}
    return _answer(start_response, status, out)


class ExtendedApplication(DomainDispatcherApplication):
    """moto's WSGI application with the control endpoints and the CloudWatch
    Logs faults in front."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == EXT_PATH or path == EXT_PATH + "/":
            return control(environ, start_response)
        if path == LOGS_FAULTS_PATH or path == LOGS_FAULTS_PATH + "/":
            return logs_faults_control(environ, start_response)
        faulted = logs_fault(environ, start_response)
        if faulted is not None:
            return faulted
        return super().__call__(environ, start_response)


_modify_rule = ELBv2Backend.modify_rule
_modify_listener = ELBv2Backend.modify_listener


def _link_target_groups(backend: Any, load_balancer_arn: str, actions: Iterable[Any]) -> None:
    """Records the load balancer on every target group a forward action
    names, as CreateRule and CreateListener do in moto and every change does
    in ELBv2 (a target group's ``LoadBalancerArns``)."""
    for action in actions:
        if action.type != "forward":
            continue
        for arn in backend._get_target_group_arns_from(action_data=action.data):
            tg = backend.target_groups.get(arn)
            if tg is not None and load_balancer_arn not in tg.load_balancer_arns:
                tg.load_balancer_arns.append(load_balancer_arn)


def modify_rule(self: Any, rule_arn: str, conditions: Any, actions: Any) -> Any:
    rule = _modify_rule(self, rule_arn, conditions, actions)
    for lb in self.load_balancers.values():
        listener = lb.listeners.get(rule.listener_arn)
        if listener is not None:
            _link_target_groups(self, listener.load_balancer_arn, rule.actions)
    return rule


def modify_listener(self: Any, arn: str, *args: Any, **kwargs: Any) -> Any:
    listener = _modify_listener(self, arn, *args, **kwargs)
    _link_target_groups(self, listener.load_balancer_arn, listener.default_actions)
    return listener


def install() -> None:
    """Patches moto in this process (idempotent)."""
    ELBv2Backend.modify_rule = modify_rule  # type: ignore[method-assign]
    ELBv2Backend.modify_listener = modify_listener  # type: ignore[method-assign]
    FleetsBackend.create_fleet = create_fleet  # type: ignore[method-assign]
    FleetsResponse.create_fleet = create_fleet_response  # type: ignore[method-assign]
    LogsBackend.put_log_events = put_log_events  # type: ignore[method-assign]
    moto.server.DomainDispatcherApplication = ExtendedApplication  # type: ignore[misc]


def main(argv: list[str] | None = None) -> None:
    install()
    moto.server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
