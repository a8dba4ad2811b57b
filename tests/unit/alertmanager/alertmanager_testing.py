"""Test doubles for the Alertmanager charm's ops.testing tests (fixtures: conftest.py).

The workload modules the charm calls (package, configuration, flags, service) are swapped for
small fakes that keep the files and the service of one in-memory machine and log every write,
start, restart and reload, so a test can say exactly what a hook did. Rendering stays real: the
fakes call the real modules' pure functions (configuration.render, flags.flags, masking), so
tests read back what the charm would install.
"""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Sequence
from typing import Any

import yaml

CHARM_DIR = pathlib.Path(__file__).parents[3] / "charms" / "alertmanager"
sys.path.insert(0, str(CHARM_DIR / "src"))

import charm  # noqa: E402, F401 (conftest takes it from here, after sys.path is set)
from alertmanager import configuration, flags, masking, package, service  # noqa: E402
from lab_monitoring.packaged_service import Health  # noqa: E402
from ops import testing  # noqa: E402

MODEL = testing.Model(name="lab", uuid="2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f")


class FakeMachine:
    """The machine as the workload modules would leave it, and what each hook did to it."""

    def __init__(self) -> None:
        self.is_installed = True
        self.install_error: str | None = None
        self.config: str | None = None
        self.templates = ""
        self.args: list[str] | None = None
        self.low_ports = False
        self.is_running = True
        # In systemd's restart loop: a start died (see FakeService._started).
        self.crashing = False
        # What starting does: None (comes up), "slow" (alive, not ready) or the reason it died.
        self.start_outcome: str | None = None
        # Knobs a test turns to make amtool or Alertmanager say no.
        self.amtool_error: str | None = None
        self.live_error: str | None = None
        self.reload_error: str | None = None
        # What the hooks did, in order: ("config", text, templates), ("flags", args); actions.
        self.writes: list[tuple[Any, ...]] = []
        self.actions: list[str] = []

    def parsed_config(self) -> dict[str, Any]:
        return yaml.safe_load(self.config or "") or {}

    def flag(self, name: str) -> list[str]:
        """Every value of a rendered --name=value flag (a flag may repeat)."""
        prefix = f"--{name}="
        return [arg.removeprefix(prefix) for arg in self.args or [] if arg.startswith(prefix)]

    def settle(self) -> None:
        """Forget what happened so far: the next assertions see only the next hook."""
        self.writes.clear()
        self.actions.clear()


class FakePackage:
    PACKAGE = package.PACKAGE
    SERVICE = package.SERVICE
    InstallError = package.InstallError

    def __init__(self, machine: FakeMachine) -> None:
        self.machine = machine

    def installed(self) -> bool:
        return self.machine.is_installed

    def install(self) -> None:
        if self.machine.install_error:
            raise package.InstallError(self.machine.install_error)
        # The real install masks the unit first: the package's postinst cannot start it.
        self.machine.is_installed = True
        self.machine.is_running = False
        self.machine.actions.append("install")

    def version(self) -> str | None:
        return "0.23.0" if self.machine.is_installed else None


class FakeConfiguration:
    ConfigError = configuration.ConfigError
    render = staticmethod(configuration.render)
    parse = staticmethod(configuration.parse)

    def __init__(self, machine: FakeMachine) -> None:
        self.machine = machine

    def install(self, config: str, templates: str) -> bool:
        machine = self.machine
        if (config, templates) == (machine.config, machine.templates):
            return False
        if machine.amtool_error:
            # As the real module does: amtool's words, with the new file's secrets masked.
            secrets = masking.secrets_of(config)
            raise configuration.ConfigError(masking.redact(machine.amtool_error, secrets))
        machine.config, machine.templates = config, templates
        machine.writes.append(("config", config, templates))
        return True

    def check_live(self) -> str | None:
        error = self.machine.live_error
        return masking.redact(error, masking.secrets_of(self.machine.config)) if error else None

    def show_live(self) -> str:
        if self.machine.config is None:
            raise FileNotFoundError("alertmanager.yml")
        return masking.masked_yaml(self.machine.config)


class FakeFlags:
    CLUSTER_PORT = flags.CLUSTER_PORT
    flags = staticmethod(flags.flags)

    def __init__(self, machine: FakeMachine) -> None:
        self.machine = machine

    def write(self, args: Sequence[str]) -> bool:
        if list(args) == self.machine.args:
            return False
        self.machine.args = list(args)
        self.machine.writes.append(("flags", list(args)))
        return True


class FakeService:
    ReloadError = service.ReloadError
    StartError = service.StartError

    def __init__(self, machine: FakeMachine) -> None:
        self.machine = machine

    def health(self) -> Health:
        machine = self.machine
        if machine.crashing:
            return Health.FAILING
        if not machine.is_running:
            return Health.STOPPED
        return Health.UP if machine.start_outcome is None else Health.STARTING

    def _started(self, action: str) -> bool:
        machine = self.machine
        machine.actions.append(action)
        # A process that dies puts the unit in systemd's restart loop (Restart=on-failure), in
        # which it reads `active` now and then before systemd gives up: failing, not stopped.
        machine.crashing = machine.start_outcome not in (None, "slow")
        machine.is_running = not machine.crashing
        if machine.crashing:
            raise service.StartError(str(machine.start_outcome))
        return machine.start_outcome is None

    def start(self) -> bool:
        return self._started("start")

    def restart(self) -> bool:
        return self._started("restart")

    def reload(self) -> float:
        if self.machine.reload_error:
            raise service.ReloadError(self.machine.reload_error)
        self.machine.actions.append("reload")
        return 0.1

    def allow_low_ports(self, port: int) -> bool:
        wanted = port < 1024
        changed, self.machine.low_ports = wanted != self.machine.low_ports, wanted
        if changed:
            self.machine.actions.append(f"low-ports {wanted}")
        return changed

    def stop(self) -> None:
        self.machine.is_running = False
        self.machine.crashing = False
        self.machine.low_ports = False
        self.machine.actions.append("stop")


def state(**kwargs: Any) -> testing.State:
    """A leader unit of model `lab`, with whatever else the test gives."""
    kwargs.setdefault("leader", True)
    return testing.State(model=MODEL, **kwargs)
