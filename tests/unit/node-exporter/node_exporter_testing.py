"""Test doubles and helpers for the node-exporter charm's ops.testing tests.

The workload modules the charm calls (node_exporter.exporter, .flags and .sharing) are swapped
for small fakes around one `FakeMachine`, which keeps the machine's flags file, its claims and
its service in memory and counts every write, start, restart and stop, so a test can say exactly
what a hook did. One fake is one machine: two Contexts (two units, as two principals placed
together give) running hooks against the same fake share its exporter, as they would share the
real one. The pure parts (flag rendering, collector parsing, owner order) are the real modules';
the real modules' file and service handling is tested in tests/functional and tests/machine.
"""

from __future__ import annotations

import pathlib
import sys
import types
from collections.abc import Sequence
from typing import Any

CHARM_DIR = pathlib.Path(__file__).parents[3] / "charms" / "node-exporter"
sys.path.insert(0, str(CHARM_DIR / "src"))

import charm  # noqa: E402
from node_exporter import exporter, flags, sharing  # noqa: E402
from ops import testing  # noqa: E402

Health = exporter.Health

UUID = "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"
MODEL = testing.Model(name="lab", uuid=UUID)
# Collectors and their defaults as Debian's build lists them in --help (a subset).
COLLECTORS = {
    "cpu": True,
    "diskstats": True,
    "filesystem": True,
    "meminfo": True,
    "netdev": True,
    "systemd": True,
    "processes": False,
    "tcpstat": False,
    "wifi": False,
}


class FakeMachine:
    """One machine in memory: its package, binary, service, flags file and claims."""

    def __init__(self) -> None:
        self.is_installed = True
        self.is_running = True
        # In systemd's restart loop: a start died (see _started).
        self.crashing = False
        # What starting does: None (comes up), "slow" (alive, not serving yet) or why it died.
        self.start_outcome: str | None = None
        self.low_ports = False
        self.collectors = dict(COLLECTORS)
        self.binary_version = "1.3.1"
        # What apt says when the install fails, None for an install that works.
        self.install_error: str | None = None
        self.args: list[str] | None = None  # the flags file's ARGS
        self.claims: dict[str, tuple[str, ...]] = {}
        # What hooks did, in order: ("flags", args), ("claim", unit), ...
        self.writes: list[tuple[Any, ...]] = []
        self.actions: list[str] = []

    def modules(self) -> dict[str, Any]:
        """The fakes of the workload modules, by the names charm.py imports them as."""
        return {
            "exporter": types.SimpleNamespace(
                PACKAGE=exporter.PACKAGE,
                SERVICE=exporter.SERVICE,
                BINARY=exporter.BINARY,
                InstallError=exporter.InstallError,
                StartError=exporter.StartError,
                installed=self.installed,
                install=self.install,
                version=self.version,
                known_collectors=self.known_collectors,
                health=self.health,
                start=self.start,
                restart=self.restart,
                allow_low_ports=self.allow_low_ports,
                stop=self.stop,
            ),
            "flags": types.SimpleNamespace(port_of=flags.port_of, write=self.write_flags),
            "sharing": types.SimpleNamespace(
                Claim=sharing.Claim,
                claim=self.claim,
                release=self.release,
                live_claims=self.live_claims,
            ),
        }

    # Package and binary
    def installed(self) -> bool:
        return self.is_installed

    def install(self) -> None:
        self.actions.append("install")
        if self.install_error:
            raise exporter.InstallError(self.install_error)
        self.is_installed = True
        # The package's postinst enables and starts the service with its own (empty) flags.
        self.is_running = True

    def version(self) -> str | None:
        return self.binary_version if self.is_installed else None

    def known_collectors(self) -> dict[str, bool]:
        return dict(self.collectors) if self.is_installed else {}

    # The flags file
    def write_flags(self, args: Sequence[str]) -> bool:
        if list(args) == self.args:
            return False
        self.args = list(args)
        self.writes.append(("flags", list(args)))
        return True

    # Sharing
    def claim(self, unit: str, args: Sequence[str]) -> sharing.Claim:
        if self.claims.get(unit) != tuple(args):
            self.claims[unit] = tuple(args)
            self.writes.append(("claim", unit))
        return self.live_claims(unit)[0]

    def release(self, unit: str) -> sharing.Claim | None:
        self.claims.pop(unit, None)
        left = self.live_claims()
        return left[0] if left else None

    def live_claims(self, me: str | None = None) -> list[sharing.Claim]:
        found = [sharing.Claim(unit, args) for unit, args in self.claims.items()]
        return sorted(found, key=sharing.Claim.sort_key)

    # Service
    def health(self) -> Health:
        if self.crashing:
            return Health.FAILING
        if not self.is_running:
            return Health.STOPPED
        return Health.UP if self.start_outcome is None else Health.STARTING

    def _started(self, action: str) -> bool:
        self.actions.append(action)
        # An exporter that dies puts the unit in systemd's restart loop (Restart=on-failure),
        # in which it reads `active` now and then before systemd gives up: failing, not
        # stopped (measured on a real machine: tests/machine).
        self.crashing = self.start_outcome not in (None, "slow")
        self.is_running = not self.crashing
        if self.crashing:
            raise exporter.StartError(str(self.start_outcome))
        return self.start_outcome is None

    def start(self) -> bool:
        return self._started("start")

    def restart(self) -> bool:
        return self._started("restart")

    def allow_low_ports(self, port: int | None) -> bool:
        wanted = port is not None and port < 1024
        changed, self.low_ports = wanted != self.low_ports, wanted
        if changed:
            self.actions.append(f"low-ports {wanted}")
        return changed

    def stop(self) -> None:
        self.is_running = False
        self.crashing = False
        self.low_ports = False
        self.actions.append("stop")

    # Helpers for assertions
    def flag(self, name: str) -> str | None:
        """The value of a written --name=value flag ("" for a bare --name), None if absent."""
        for arg in self.args or []:
            key, _, value = arg.partition("=")
            if key == f"--{name}":
                return value
        return None

    def settle(self) -> None:
        """Forget what happened so far: the next assertions see only the next hook."""
        self.writes.clear()
        self.actions.clear()


def unit_ctx(app: str = "node-exporter", unit_id: int = 0) -> testing.Context:
    """A Context for one particular unit (two of them on one fake machine share it)."""
    return testing.Context(charm.NodeExporterCharm, app_name=app, unit_id=unit_id)


def state(**kwargs: Any) -> testing.State:
    """A State in model `lab`, leader unless told otherwise."""
    kwargs.setdefault("leader", True)
    return testing.State(model=MODEL, **kwargs)


def owner_and_successor(port: int) -> tuple[testing.Context, testing.Context]:
    """node-exporter/0, which owns the exporter, and rack-exporter/0 on `port` (its successor).

    Another application's unit on the same machine (two principals placed together): it sorts
    after node-exporter/0, so it takes the exporter over when node-exporter/0 leaves.
    """
    owner = unit_ctx(app="node-exporter", unit_id=0)
    successor = unit_ctx(app="rack-exporter", unit_id=0)
    owner.run(owner.on.install(), state())
    successor.run(successor.on.config_changed(), state(config={"port": port}))
    return owner, successor
