"""Test doubles and state builders for the Grafana charm's ops.testing tests.

The workload module is swapped for `FakeGrafana`, which keeps the files, the package, the
service and Grafana's own admin password in memory and records every write, restart, password
change and API call, so a test can say exactly what a hook did to the machine. Rendering stays
real: the fake calls the real module's pure functions, so tests read back the grafana.ini and
provisioning YAML the charm would install.
"""

from __future__ import annotations

import os
import pathlib
import sys
from typing import Any

CHARM_DIR = pathlib.Path(__file__).parents[3] / "charms" / "grafana"
sys.path[:0] = [str(CHARM_DIR / "src"), str(CHARM_DIR / "lib")]

import charm  # noqa: E402
import grafana  # noqa: E402
from ops import testing  # noqa: E402

MODEL = testing.Model(name="lab", uuid="00000000-0000-4000-8000-000000000001")
# What a deploy without `juju attach-resource` gives the charm: an empty grafana-deb file.
NO_DEB = pathlib.Path(os.devnull)


class FakeClient:
    """Stands in for grafana.GrafanaClient: checks credentials against the fake's database."""

    def __init__(self, fake: FakeGrafana, url: str, user: str, password: str) -> None:
        self._fake, self.url, self._user, self._password = fake, url, user, password

    def _authorised(self, call: str) -> None:
        self._fake.api_calls.append(call)
        if self._fake.api_down:
            raise grafana.APIError("cannot reach Grafana at 127.0.0.1: refused")
        if not self._fake.accepts(self._user, self._password):
            raise grafana.APIError(f"POST {call} returned 401: Invalid username or password", 401)

    def wait_ready(self, timeout: float = 60.0, interval: float = 1.0) -> bool:
        return self._fake.running and not self._fake.api_down

    def login_works(self) -> bool:
        self._fake.api_calls.append("login")
        if self._fake.api_down:
            raise grafana.APIError("cannot reach Grafana at 127.0.0.1: refused")
        return self._fake.accepts(self._user, self._password)

    def reload_datasources(self) -> None:
        self._authorised("reload datasources")

    def reload_dashboards(self) -> None:
        self._authorised("reload dashboards")


class FakeGrafana:
    """An in-memory stand-in for the `grafana` workload module."""

    GrafanaError = grafana.GrafanaError
    KeyMismatchError = grafana.KeyMismatchError
    APIError = grafana.APIError
    render_config = staticmethod(grafana.render_config)
    render_datasources = staticmethod(grafana.render_datasources)
    sha256 = staticmethod(grafana.sha256)

    def __init__(self) -> None:
        self.installed = False
        self.running = False
        self.files: dict[str, str] = {}
        self.dashboards: dict[str, str] = {}
        # What the hooks did, in order: ("install", "repository"), ("write", "grafana.ini"), ...
        self.actions: list[tuple[str, str]] = []
        self.api_calls: list[str] = []
        # Grafana's own idea of the admin password, and how many times the charm set it.
        self.admin_password = "admin"
        self.passwords_set = 0
        self.generated = 0
        # Knobs a test turns to make the machine or Grafana say no.
        self.install_error: grafana.GrafanaError | None = None
        self.start_error: grafana.GrafanaError | None = None
        self.api_down = False

    def accepts(self, user: str, password: str) -> bool:
        return user == "admin" and password == self.admin_password

    @property
    def writes(self) -> list[str]:
        return [what for kind, what in self.actions if kind == "write"]

    def datasources(self) -> dict[str, Any]:
        import yaml

        return yaml.safe_load(self.files["datasources"])

    # Package
    def is_installed(self) -> bool:
        return self.installed

    def version(self) -> str:
        return "11.3.0"

    def install_from_repository(self) -> None:
        if self.install_error:
            raise self.install_error
        self.installed = True
        self.actions.append(("install", "repository"))

    def install_from_file(self, deb: pathlib.Path) -> None:
        self.installed = True
        self.actions.append(("install", deb.read_text()))

    # Files
    def _write(self, name: str, text: str) -> bool:
        if self.files.get(name) == text:
            return False
        self.files[name] = text
        self.actions.append(("write", name))
        return True

    def write_config(self, text: str) -> bool:
        return self._write("grafana.ini", text)

    def read_datasources(self) -> str | None:
        return self.files.get("datasources")

    def write_datasources(self, text: str) -> bool:
        return self._write("datasources", text)

    def write_dashboards(self, shipped: pathlib.Path) -> bool:
        wanted = {p.name: p.read_text() for p in shipped.glob("*.json")}
        if wanted == self.dashboards:
            return False
        self.dashboards = wanted
        self.actions.append(("write", "dashboards"))
        return True

    # Service
    def is_running(self) -> bool:
        return self.running

    def start(self, *, restart: bool = False) -> bool:
        if self.start_error:
            raise self.start_error
        if restart or not self.running:
            self.running = True
            self.actions.append(("restart" if restart else "start", SERVICE))
            return True
        return False

    def stop(self) -> None:
        self.running = False
        self.actions.append(("stop", SERVICE))

    # Admin password
    def generate_password(self) -> str:
        self.generated += 1
        return f"generated-password-{self.generated}"

    def set_admin_password(self, password: str) -> None:
        self.admin_password = password
        self.passwords_set += 1

    def GrafanaClient(self, url: str, user: str = "", password: str = "") -> FakeClient:  # noqa: N802
        return FakeClient(self, url, user, password)


SERVICE = grafana.SERVICE


def peers(generation: str | None = "1") -> testing.PeerRelation:
    data = {} if generation is None else {charm.GENERATION_KEY: generation}
    return testing.PeerRelation("grafana-peers", local_app_data=data)


STORED_PASSWORD = "s3cret-from-juju"


def password_secret(password: str = STORED_PASSWORD) -> testing.Secret:
    return testing.Secret({"password": password}, owner="app", label=charm.SECRET_LABEL)


def state(*, leader: bool = True, **kwargs: Any) -> testing.State:
    """A settled unit: peers set up and the admin password secret created."""
    kwargs.setdefault("relations", [peers()])
    kwargs.setdefault("secrets", [password_secret()])
    kwargs.setdefault("resources", {testing.Resource(name="grafana-deb", path=NO_DEB)})
    return testing.State(leader=leader, model=MODEL, **kwargs)
