"""Play Juju for one charm unit on a booted machine: keep its state and dispatch its events.

Juju keeps a unit's config, relation data, secrets and stored state between hooks; `Unit` keeps
them on the host and, for each event, asks driver.py inside the machine to run the charm's real
code once with ops.testing. Like Juju, a hook that raises changes nothing of that state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import shutil
import subprocess
from typing import Any

from machine import Image, Machine, MachineError, cache_dir, wheels

REPO = pathlib.Path(__file__).parents[2]
# Where machine fixtures mount things inside the machine (see conftest.py).
REPO_INSIDE = "/lab"
WHEELS_INSIDE = "/wheels"
# The shared package's source inside the machine (the repository is mounted at REPO_INSIDE).
SHARED_INSIDE = f"{REPO_INSIDE}/lab-monitoring/src"
VENVS = "/opt/charm-venvs"


class HookError(AssertionError):
    """The charm raised: Juju would put the unit in error and retry the hook."""


@dataclasses.dataclass(frozen=True)
class Status:
    """A workload status as `juju status` shows it."""

    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


@dataclasses.dataclass(frozen=True)
class HookResult:
    """What one hook left behind."""

    status: Status
    logs: list[tuple[str, str]]
    action_results: dict[str, Any] | None = None
    action_failure: str | None = None


def requirements(charm: str) -> list[str]:
    """Return the charm's locked runtime requirements (uv.lock) plus the matching ops[testing]."""
    out = subprocess.run(
        [
            "uv",
            "export",
            "--frozen",
            "--no-hashes",
            "--no-dev",
            "--no-emit-project",
            "--no-header",
            "--no-annotate",
            "--project",
            str(REPO / "charms" / charm),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # The shared package is not a wheel from PyPI: the machine imports it from the mounted
    # repository instead (SHARED_INSIDE), as the charm's own src/.
    pinned = [
        line.strip()
        for line in out.splitlines()
        if line.strip() and not line.startswith("-e ") and "lab-monitoring" not in line
    ]
    ops = next(line for line in pinned if line.startswith("ops=="))
    return [*pinned, ops.replace("ops==", "ops[testing]==")]


def charms() -> list[str]:
    """Return the name of every charm in the repository (each directory with a uv.lock)."""
    return sorted(p.parent.name for p in (REPO / "charms").glob("*/uv.lock"))


def venv_layer(image: Image) -> pathlib.Path:
    """Return a directory holding /opt/charm-venvs/<charm> for every charm (built once).

    Each venv has the charm's locked runtime dependencies and ops[testing], installed inside a
    machine of `image` from wheels the host downloaded. Machines mount it as an overlay layer,
    so a test starts with its venvs in place instead of spending seconds on pip.
    """
    wanted = {charm: requirements(charm) for charm in charms()}
    text = json.dumps(wanted, sort_keys=True)
    key = hashlib.sha256(f"{image.key}\n{text}".encode()).hexdigest()[:12]
    layer = cache_dir() / "layers" / f"venvs-{image.key}-{key}"
    if layer.is_dir():
        return layer
    (cache_dir() / "wheels").mkdir(exist_ok=True)
    with Machine.boot(image, binds=[(cache_dir() / "wheels", WHEELS_INSIDE)]) as machine:
        version = machine.run(
            "python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"
        ).stdout.strip()
        for charm, pinned in wanted.items():
            found = wheels(version, pinned)
            venv = f"{VENVS}/{charm}"
            machine.run("python3", "-m", "venv", venv)
            machine.run(
                f"{venv}/bin/pip",
                "install",
                "--quiet",
                "--no-index",
                f"--find-links={WHEELS_INSIDE}/{found.name}",
                *pinned,
            )
        partial = layer.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        (partial / VENVS.lstrip("/")).parent.mkdir(parents=True)
        subprocess.run(
            ["cp", "-a", str(machine.changes(VENVS)), str(partial / VENVS.lstrip("/"))],
            check=True,
        )
    partial.rename(layer)
    return layer


def run_workload(machine: Machine, charm: str, code: str) -> str:
    """Run Python `code` inside the machine with the charm's venv, src/ and lib/ importable.

    For the workload steps a test drives directly rather than through a hook (no ops there);
    returns what the code printed. Raises MachineError with the traceback if it raised.
    """
    charm_dir = f"{REPO_INSIDE}/charms/{charm}"
    prelude = f"import sys; sys.path[:0] = [{charm_dir + '/src'!r}, {SHARED_INSIDE!r}]\n"
    return machine.run(
        f"{VENVS}/{charm}/bin/python",
        "-c",
        prelude + code,
        env={"PYTHONDONTWRITEBYTECODE": "1"},
    ).stdout


class Unit:
    """One unit of a charm on a machine, and the state Juju keeps for it."""

    def __init__(
        self,
        machine: Machine,
        charm: str,
        *,
        app: str | None = None,
        unit_id: int = 0,
        leader: bool = True,
        config: dict[str, Any] | None = None,
        model: tuple[str, str] = ("lab", "7c7d3e5a-9a7e-4e55-a0a1-5f3c2b1d0e9f"),
        resources: dict[str, str] | None = None,
    ):
        self.machine = machine
        self.charm = charm
        self.app = app or charm
        self.unit_id = unit_id
        self.name = f"{self.app}/{unit_id}"
        self.leader = leader
        self.config: dict[str, Any] = dict(config or {})
        self.model = model
        # Attached resources: name -> path of the file inside the machine.
        self.resources: dict[str, str] = dict(resources or {})
        self.relations: list[dict[str, Any]] = []
        self.stored: list[dict[str, Any]] = []
        self.secrets: list[dict[str, Any]] = []
        self.opened_ports: list[int] = []
        # Binding name to the address Juju gives it (ops.testing's default, 192.0.2.0, is
        # nobody's): what network-get and relation ingress addresses return.
        self.networks: dict[str, str] = {}
        self.status: Status | None = None
        self._python = f"{VENVS}/{charm}/bin/python"
        if not machine.path(self._python).exists():
            raise MachineError(f"{machine.name} has no venv for {charm} (see venv_layer)")

    # --- what Juju knows ----------------------------------------------------------------------

    def relate(
        self,
        endpoint: str,
        remote_app: str,
        *,
        app_data: dict[str, str] | None = None,
        units_data: dict[int, dict[str, str]] | None = None,
        kind: str = "regular",
    ) -> int:
        """Add a relation (no event is run); return its id."""
        relation_id = max((r["id"] for r in self.relations), default=0) + 1
        spec: dict[str, Any] = {"id": relation_id, "endpoint": endpoint, "kind": kind}
        if kind == "peer":
            spec["peers_data"] = {str(k): v for k, v in (units_data or {}).items()}
        elif kind == "subordinate":
            spec.update(remote_app=remote_app, remote_app_data=app_data or {})
            spec["remote_unit_data"] = (units_data or {0: {}})[0]
        else:
            spec.update(remote_app=remote_app, remote_app_data=app_data or {})
            spec["remote_units_data"] = {str(k): v for k, v in (units_data or {}).items()}
        self.relations.append(spec)
        return relation_id

    def unrelate(self, relation_id: int) -> None:
        """Forget a relation (after its relation-broken ran)."""
        self.relations = [r for r in self.relations if r["id"] != relation_id]

    def relation(self, relation_id: int) -> dict[str, Any]:
        """Return the relation's spec, including what this unit wrote in it."""
        return next(r for r in self.relations if r["id"] == relation_id)

    # --- hooks --------------------------------------------------------------------------------

    def run(self, event: str, **details: Any) -> HookResult:
        """Run one event; raise HookError if the charm raised (the state is then unchanged).

        `details`: relation=<id>, remote_unit=<name>, action=<name>, params={...},
        secret_label=<label>.
        """
        request = {
            "charm_dir": f"{REPO_INSIDE}/charms/{self.charm}",
            "shared_dir": SHARED_INSIDE,
            "app": self.app,
            "unit_id": self.unit_id,
            "event": {"name": event, **details},
            "state": {
                "config": self.config,
                "leader": self.leader,
                "relations": self.relations,
                "stored": self.stored,
                "secrets": self.secrets,
                "opened_ports": self.opened_ports,
                "resources": self.resources,
                "networks": self.networks,
                "model": {"name": self.model[0], "uuid": self.model[1]},
            },
        }
        result = self.machine.run(
            self._python,
            f"{REPO_INSIDE}/tests/machine/driver.py",
            input=json.dumps(request),
            env={"PYTHONDONTWRITEBYTECODE": "1"},
            check=False,
        )
        if result.returncode != 0:
            raise MachineError(f"driver failed on {event}:\n{result.stderr[-4000:]}")
        out = json.loads(result.stdout)
        logs = [(level, message) for level, message in out.get("logs", [])]
        if "error" in out:
            raise HookError(f"{event} hook failed on {self.name}:\n{out['error']}")
        self.stored = out["stored"]
        self.secrets = out["secrets"]
        self.opened_ports = out["opened_ports"]
        for written in out["relations"]:
            spec = self.relation(written["id"])
            spec["local_app_data"] = written["local_app_data"]
            spec["local_unit_data"] = written["local_unit_data"]
        self.status = Status(**out["unit_status"])
        action = out.get("action") or {}
        return HookResult(
            status=self.status,
            logs=logs,
            action_results=action.get("results"),
            action_failure=action.get("failure"),
        )

    def stored_value(self, key: str) -> Any:
        """Return one key of the charm's StoredState (`_stored`)."""
        for stored in self.stored:
            if key in stored["content"]:
                return stored["content"][key]
        raise KeyError(key)
