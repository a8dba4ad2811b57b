"""Fixtures for the Prometheus charm's ops.testing tests.

The workload modules the charm calls (service, config_file, flags, reload) are swapped for
stand-ins made by `FakePrometheus`, which keeps the "files" and the service in memory and counts
every write, start, restart and reload, so a test can say exactly what a hook did to the
machine. Rendering stays real: the stand-ins hand out the real modules' pure functions, so
tests read back the prometheus.yml the charm would install.
"""

from __future__ import annotations

import contextlib
import pathlib
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from unittest import mock

import pytest
import yaml

CHARM_DIR = pathlib.Path(__file__).parents[3] / "charms" / "prometheus"
sys.path.insert(0, str(CHARM_DIR / "src"))

import alerting  # noqa: E402
import charm  # noqa: E402
from lab_monitoring.packaged_service import Health  # noqa: E402
from ops import testing  # noqa: E402
from prometheus import config_file, flags, reload, remote_storage, service  # noqa: E402


class FakePrometheus:
    """An in-memory Prometheus machine: stands in for the workload modules the charm calls."""

    def __init__(self) -> None:
        self.is_installed = True
        self.is_running = True
        # In systemd's restart loop: a start died (see _started).
        self.crashing = False
        self.config: str | None = None
        # The rule files from relations; Prometheus's own health rules are kept apart.
        self.rules: dict[str, str] = {}
        self.health_rules: str | None = None
        self.args: list[str] | None = None
        # What the hook did, in order: ("install",), ("config", text), ("flags", args), ...
        self.writes: list[tuple[Any, ...]] = []
        self.actions: list[str] = []
        # Knobs a test turns to make promtool or Prometheus say no.
        self.promtool_error: str | None = None
        self.bad_rules: set[str] = set()
        self.reload_error: str | None = None
        self.live_error: str | None = None
        self.filesystem_bytes = 100 * 2**30
        # What starting does: None (comes up), "slow" (alive, not ready yet) or a reason it died.
        self.start_outcome: str | None = None
        self.install_error: str | None = None
        self.low_ports = False
        # The remote-write password or token files: name to content.
        self.credential_files: dict[str, str] = {}

    # Package
    def installed(self) -> bool:
        return self.is_installed

    def install(self) -> None:
        if self.install_error:
            raise service.InstallError(self.install_error)
        self.is_installed = True
        # The package's postinst enables and starts the service with its own default flags
        # (seen on a real machine: tests/machine).
        self.is_running = True
        self.actions.append("install")

    def version(self) -> str | None:
        return "2.31.2+ds1" if self.is_installed else None

    # Files
    def install_config(self, config: str, rules: Mapping[str, str]) -> config_file.Installed:
        if self.promtool_error:
            raise config_file.ConfigError(self.promtool_error)
        rejected = {name: "parse error" for name in rules if name in self.bad_rules}
        kept = {name: text for name, text in rules.items() if name not in rejected}
        health = kept.pop(alerting.HEALTH_RULES_FILE, None)
        if config == self.config and kept == self.rules and health == self.health_rules:
            return config_file.Installed(changed=False, rejected_rules=rejected)
        self.config, self.rules, self.health_rules = config, kept, health
        self.writes.append(("config", config, dict(kept)))
        return config_file.Installed(changed=True, rejected_rules=rejected)

    def write_flags(self, args: Sequence[str]) -> bool:
        if list(args) == self.args:
            return False
        self.args = list(args)
        self.writes.append(("flags", list(args)))
        return True

    def write_credentials(self, credentials: remote_storage.Credentials | None) -> bool:
        wanted = {}
        if credentials and credentials.token:
            wanted[remote_storage.TOKEN_FILE] = credentials.token
        elif credentials:
            wanted[remote_storage.PASSWORD_FILE] = credentials.password
        changed, self.credential_files = wanted != self.credential_files, wanted
        return changed

    def check_live_config(self) -> str | None:
        return self.live_error

    def job_count(self) -> int:
        return len(self.parsed_config().get("scrape_configs", []))

    def tsdb_filesystem_size(self) -> int:
        return self.filesystem_bytes

    # Service
    def health(self) -> Health:
        if self.crashing:
            return Health.FAILING
        if not self.is_running:
            return Health.STOPPED
        return Health.UP if self.start_outcome is None else Health.STARTING

    def _started(self, action: str) -> bool:
        self.actions.append(action)
        # A process that dies puts the unit in systemd's restart loop (Restart=on-failure), in
        # which it reads `active` now and then before systemd gives up: failing, not stopped
        # (measured on a real machine: tests/machine).
        self.crashing = self.start_outcome not in (None, "slow")
        self.is_running = not self.crashing
        if self.crashing:
            raise service.StartError(str(self.start_outcome))
        return self.start_outcome is None

    def start(self) -> bool:
        return self._started("start")

    def restart(self) -> bool:
        return self._started("restart")

    def allow_low_ports(self, port: int) -> bool:
        wanted = port < 1024
        changed, self.low_ports = wanted != self.low_ports, wanted
        if changed:
            self.actions.append(f"low-ports {wanted}")
        return changed

    def stop(self) -> None:
        self.is_running = False
        self.crashing = False
        self.low_ports = False
        self.actions.append("stop")

    def reload(self) -> float:
        if self.reload_error:
            raise reload.ReloadError(self.reload_error)
        self.actions.append("reload")
        return 1.234  # seconds; the action reports whole milliseconds

    # The stand-ins
    def modules(self) -> dict[str, types.SimpleNamespace]:
        """Return a stand-in for each workload module the charm imports, by its name there."""
        return {
            "service": types.SimpleNamespace(
                InstallError=service.InstallError,
                StartError=service.StartError,
                installed=self._late("installed"),
                install=self._late("install"),
                version=self._late("version"),
                health=self._late("health"),
                start=self._late("start"),
                restart=self._late("restart"),
                allow_low_ports=self._late("allow_low_ports"),
                stop=self._late("stop"),
            ),
            "config_file": types.SimpleNamespace(
                ConfigError=config_file.ConfigError,
                Installed=config_file.Installed,
                render_config=config_file.render_config,
                render_rules=config_file.render_rules,
                install_config=self._late("install_config"),
                check_live_config=self._late("check_live_config"),
                job_count=self._late("job_count"),
            ),
            "flags": types.SimpleNamespace(
                flags=flags.flags,
                write_flags=self._late("write_flags"),
                tsdb_filesystem_size=self._late("tsdb_filesystem_size"),
            ),
            "remote_storage": types.SimpleNamespace(
                Credentials=remote_storage.Credentials,
                entries=remote_storage.entries,
                parse_credentials=remote_storage.parse_credentials,
                write_credentials=self._late("write_credentials"),
            ),
            "reload": types.SimpleNamespace(
                ReloadError=reload.ReloadError, reload=self._late("reload")
            ),
        }

    def _late(self, name: str) -> Callable[..., Any]:
        """Call this fake's method `name` as it is when called (a test may replace it)."""
        return lambda *args, **kwargs: getattr(self, name)(*args, **kwargs)

    @contextlib.contextmanager
    def patched(self) -> Iterator[FakePrometheus]:
        """Stand in for the charm's workload modules inside the block."""
        with contextlib.ExitStack() as stack:
            for name, stand_in in self.modules().items():
                stack.enter_context(mock.patch.object(charm, name, stand_in))
            yield self

    # Helpers for assertions
    def parsed_config(self) -> dict[str, Any]:
        return yaml.safe_load(self.config or "") or {}

    def jobs(self) -> dict[str, dict[str, Any]]:
        """The rendered scrape jobs, by name."""
        return {job["job_name"]: job for job in self.parsed_config().get("scrape_configs", [])}

    def flag(self, name: str) -> str | None:
        """The value of a rendered --name=value flag, None if absent."""
        for arg in self.args or []:
            key, _, value = arg.partition("=")
            if key == f"--{name}":
                return value
        return None

    def settle(self) -> None:
        """Forget what happened so far: the next assertions see only the next hook."""
        self.writes.clear()
        self.actions.clear()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakePrometheus:
    fake = FakePrometheus()
    for name, stand_in in fake.modules().items():
        monkeypatch.setattr(f"charm.{name}", stand_in)
    return fake


@pytest.fixture
def ctx() -> testing.Context[charm.PrometheusCharm]:
    return testing.Context(charm.PrometheusCharm)


@pytest.fixture
def settled(ctx: testing.Context[charm.PrometheusCharm], fake: FakePrometheus):
    """Return a function that runs config-changed once on `state` and clears the fake's log.

    Tests of "what changes next" start from a unit that has already configured Prometheus.
    """

    def settle(state: testing.State) -> testing.State:
        out = ctx.run(ctx.on.config_changed(), state)
        fake.settle()
        return out

    return settle
