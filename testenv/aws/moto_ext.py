"""moto's server with the test environment's extension: insufficient capacity.

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
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, Iterable

import moto.server
from moto.ec2.models.fleets import FleetsBackend
from moto.ec2.responses.fleets import Fleets as FleetsResponse
from moto.elbv2.models import ELBv2Backend
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


# --- the control endpoint -------------------------------------------------------


def control(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """WSGI handler of EXT_PATH."""
    method = environ.get("REQUEST_METHOD", "GET")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
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
    data = json.dumps(out).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


class ExtendedApplication(DomainDispatcherApplication):
    """moto's WSGI application with the control endpoint in front."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == EXT_PATH or path == EXT_PATH + "/":
            return control(environ, start_response)
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
    moto.server.DomainDispatcherApplication = ExtendedApplication  # type: ignore[misc]


def main(argv: list[str] | None = None) -> None:
    install()
    moto.server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
