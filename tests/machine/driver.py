"""Run one Juju event on a charm inside the machine, with ops.testing and nothing patched.

This file runs inside the booted machine (see machine.py), in a venv that holds the charm's
locked runtime dependencies and ops[testing]. It reads one request as JSON on stdin, runs the
event through ops.testing's Context against the charm's real code (so apt, systemctl, files and
HTTP are the machine's own), and prints the resulting state as JSON on stdout. The host side
(`juju.py`) keeps that state between events, as Juju would.

Request: {"charm_dir", "app", "unit_id", "event": {...}, "state": {...}}; see juju.py.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import traceback
import typing
from pathlib import Path
from typing import Any

import ops
from ops import testing


def _relation(spec: dict[str, Any]) -> testing.RelationBase:
    common = {
        "id": spec["id"],
        "local_app_data": spec.get("local_app_data", {}),
        "local_unit_data": spec.get("local_unit_data", {}),
    }
    kind = spec.get("kind", "regular")
    if kind == "peer":
        peers = {int(k): v for k, v in spec.get("peers_data", {}).items()}
        return testing.PeerRelation(spec["endpoint"], peers_data=peers, **common)
    if kind == "subordinate":
        return testing.SubordinateRelation(
            spec["endpoint"],
            remote_app_name=spec["remote_app"],
            remote_unit_id=int(spec.get("remote_unit_id", 0)),
            remote_app_data=spec.get("remote_app_data", {}),
            remote_unit_data=spec.get("remote_unit_data", {}),
            **common,
        )
    units = {int(k): v for k, v in spec.get("remote_units_data", {}).items()}
    return testing.Relation(
        spec["endpoint"],
        remote_app_name=spec["remote_app"],
        remote_app_data=spec.get("remote_app_data", {}),
        remote_units_data=units,
        **common,
    )


def _state(spec: dict[str, Any]) -> testing.State:
    secrets = [
        testing.Secret(
            s["tracked_content"],
            latest_content=s.get("latest_content"),
            id=s["id"],
            owner=s.get("owner"),
            label=s.get("label"),
            description=s.get("description"),
        )
        for s in spec.get("secrets", [])
    ]
    stored = [
        testing.StoredState(s["name"], owner_path=s["owner_path"], content=s["content"])
        for s in spec.get("stored", [])
    ]
    networks = [
        testing.Network(
            binding,
            bind_addresses=[testing.BindAddress([testing.Address(address)])],
            ingress_addresses=[address],
            egress_subnets=[f"{address}/32"],
        )
        for binding, address in spec.get("networks", {}).items()
    ]
    model = spec.get("model", {})
    return testing.State(
        config=spec.get("config", {}),
        leader=spec.get("leader", True),
        relations=[_relation(r) for r in spec.get("relations", [])],
        secrets=secrets,
        stored_states=stored,
        model=testing.Model(name=model.get("name", "lab"), uuid=model.get("uuid", _UUID)),
        opened_ports=[testing.TCPPort(p) for p in spec.get("opened_ports", [])],
        resources={testing.Resource(name=n, path=p) for n, p in spec.get("resources", {}).items()},
        networks=networks,
    )


_UUID = "7c7d3e5a-9a7e-4e55-a0a1-5f3c2b1d0e9f"


def _event(ctx: testing.Context[Any], spec: dict[str, Any], state: testing.State) -> Any:
    name = spec["name"]
    if "relation" in spec:
        relation = state.get_relation(spec["relation"])
        if name == "relation_departed":
            return ctx.on.relation_departed(relation, remote_unit=spec.get("remote_unit"))
        if name in ("relation_joined", "relation_changed"):
            return getattr(ctx.on, name)(relation, remote_unit=spec.get("remote_unit"))
        return getattr(ctx.on, name)(relation)
    if name == "secret_changed":
        return ctx.on.secret_changed(state.get_secret(label=spec["secret_label"]))
    if name == "action":
        return ctx.on.action(spec["action"], params=spec.get("params", {}))
    return getattr(ctx.on, name)()


def _charm_class(module: Any) -> type[ops.CharmBase]:
    for _, value in inspect.getmembers(module, inspect.isclass):
        if issubclass(value, ops.CharmBase) and value.__module__ == module.__name__:
            return value
    raise RuntimeError(f"no charm class in {module.__file__}")


def _dump(out: testing.State, ctx: testing.Context[Any]) -> dict[str, Any]:
    return {
        "unit_status": {"name": out.unit_status.name, "message": out.unit_status.message},
        "app_status": {"name": out.app_status.name, "message": out.app_status.message},
        "workload_version": out.workload_version,
        "opened_ports": sorted(p.port or 0 for p in out.opened_ports),
        "stored": [
            {"name": s.name, "owner_path": s.owner_path, "content": dict(s.content)}
            for s in out.stored_states
        ],
        "relations": [
            {
                "id": r.id,
                "local_app_data": dict(r.local_app_data),
                "local_unit_data": dict(r.local_unit_data),
            }
            for r in out.relations
        ],
        "secrets": [
            {
                "id": s.id,
                "label": s.label,
                "owner": s.owner,
                "description": s.description,
                "tracked_content": dict(s.tracked_content),
                "latest_content": dict(s.latest_content or s.tracked_content),
            }
            for s in out.secrets
        ],
        "logs": [[entry.level, entry.message] for entry in ctx.juju_log],
    }


def main() -> None:
    """Read a request on stdin, run it, print the result on stdout."""
    request = json.load(sys.stdin)
    charm_dir = Path(request["charm_dir"])
    sys.path[:0] = [str(charm_dir / "src"), request["shared_dir"]]
    charm_class = _charm_class(importlib.import_module("charm"))
    # Metadata comes from the charm's own charmcraft.yaml (the charm directory is read-only).
    ctx = testing.Context(charm_class, app_name=request["app"], unit_id=request["unit_id"])
    state = _state(request["state"])
    result: dict[str, Any] = {}
    try:
        out = ctx.run(_event(ctx, request["event"], state), state)
    except testing.ActionFailed as e:
        result = _dump(typing.cast(testing.State, e.state), ctx)
        result["action"] = {"failure": e.message, "results": None}
    except Exception:
        logs = [[entry.level, entry.message] for entry in ctx.juju_log]
        result = {"error": traceback.format_exc(), "logs": logs}
    else:
        result = _dump(out, ctx)
        if request["event"]["name"] == "action":
            result["action"] = {"failure": None, "results": ctx.action_results}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
