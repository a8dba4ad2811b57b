"""Test doubles and state builders for the Grafana charm's ops.testing tests.

`FakeGrafana` is the machine: the package and Grafana's repository, the files, the service and
Grafana's own database, in memory. It stands in for each workload module the charm calls
(`fake.apt_source` for grafana.apt_source, `fake.ini`, `fake.provisioning`, `fake.service`,
`fake.cli`, `fake.api`), and records every write, install, restart, password change and API
call, so a test can say exactly what a hook did to the machine. Rendering stays real: the fakes
call the real modules' pure functions, so tests read back the grafana.ini and provisioning YAML
the charm would install, at the real paths (grafana.paths.PATHS).

Grafana's own behaviours are modelled from its source and packaging (facts and sources in the
design notes, GRAFANA-FACTS.md items 1, 4 and 6, and the comments in src/grafana/):

- Grafana creates its first administrator when it first starts, from grafana.ini's
  `admin_user` and `admin_password` (`$__file{...}` reads a file; without the key the password
  is "admin"), and never again; a `$__file{...}` naming a missing file stops it from starting.
- A (re)start is the real `service.start`'s contract: True once Grafana answers /api/health,
  False while it is still starting, StartError when the process died. A process that dies
  writes to its journal what Grafana's source prints in that case (a port another process holds,
  a port below 1024 without the charm's drop-in, since the packaged unit gives the grafana user
  no capability, a missing password file), and the real `service.failure_reason` reads it, so
  the reason the charm shows is the one the real module would give.
- The real `cli.set_admin_password` runs, against a machine laid out like the Grafana .deb
  of a given version: only the programs that .deb installs exist, PATH is searched for a bare
  name, and only `grafana cli` with Grafana's own flags changes the password.
- apt.grafana.com serves the newest release of every major (RELEASES); the charm's version pin
  picks the major, and installing a newer major over a running Grafana upgrades it in place.
"""

from __future__ import annotations

import configparser
import contextlib
import dataclasses
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from unittest import mock

CHARM_DIR = pathlib.Path(__file__).parents[3] / "charms" / "grafana"
sys.path.insert(0, str(CHARM_DIR / "src"))

import admin_password  # noqa: E402
import charm  # noqa: E402
import config  # noqa: E402
import installation  # noqa: E402
import related_dashboards  # noqa: E402
import shared_database  # noqa: E402
from grafana import api, apt_source, cli, database, ini, paths, provisioning, service  # noqa: E402
from lab_monitoring import packaged_service  # noqa: E402
from lab_monitoring.packaged_service import Health  # noqa: E402
from ops import testing  # noqa: E402

MODEL = testing.Model(name="lab", uuid="00000000-0000-4000-8000-000000000001")
# What a deploy without `juju attach-resource` gives the charm: an empty grafana-deb file.
NO_DEB = pathlib.Path(os.devnull)
SERVICE = "grafana-server"
# The fake's names for the files the charm writes.
PASSWORD_FILE = "admin-password"
SECRET_KEY_FILE = "secret-key"
DATABASE_PASSWORD_FILE = "database-password"

# The programs each Grafana .deb installs that a charm could run. 10.x-12.x: the tarball in
# /usr/share/grafana (bin/grafana) and the /usr/sbin/grafana-server and grafana-cli wrappers
# (grafana-build fpm/build.go). 13.x adds the /usr/sbin/grafana wrapper (grafana/grafana#120225).
_BINARY = "/usr/share/grafana/bin/grafana"
_WRAPPERS = {"/usr/sbin/grafana-server", "/usr/sbin/grafana-cli"}
PROGRAMS = {
    "10.4.3": {_BINARY, *_WRAPPERS},
    "11.3.0": {_BINARY, *_WRAPPERS},
    "12.3.1": {_BINARY, *_WRAPPERS},
    "13.2.0": {_BINARY, *_WRAPPERS, "/usr/sbin/grafana"},
}
# The newest release of each major that the fake apt.grafana.com serves.
RELEASES = {int(version.split(".")[0]): version for version in PROGRAMS}
# What a unit of this charm installs with the default grafana-version.
DEFAULT_RELEASE = RELEASES[config.GrafanaConfig().grafana_major]
# The PATH a hook's commands see (Juju's, as runuser keeps it).
PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
# What `grafana cli` must be given to work on the packaged server's database.
CLI_FLAGS = ["--homepath", "/usr/share/grafana", "--config", "/etc/grafana/grafana.ini"]


@dataclasses.dataclass(frozen=True)
class Start:
    """A (re)start of grafana-server and what the admin password file held: None if missing."""

    kind: str
    password_file: str | None


class FakeAptSource:
    """Stands in for grafana.apt_source: the package, Grafana's repository and its pin."""

    InstallError = apt_source.InstallError
    KeyMismatchError = apt_source.KeyMismatchError
    sha256 = staticmethod(apt_source.sha256)
    major_of = staticmethod(apt_source.major_of)

    def __init__(self, machine: FakeGrafana) -> None:
        self._machine = machine

    def installed(self) -> bool:
        return bool(self._machine.version)

    def installed_version(self) -> str:
        return self._machine.version

    def install_from_repository(self, major: int) -> None:
        machine = self._machine
        if machine.install_error:
            raise machine.install_error
        before = machine.version
        machine.repository, machine.pinned = True, major
        machine.install(RELEASES[major])
        machine.actions.append(("install", "repository"))
        if before and before != machine.version:
            machine.actions.append(("upgrade", f"{before} to {machine.version}"))

    def install_from_file(self, deb: pathlib.Path) -> None:
        machine = self._machine
        machine.repository, machine.pinned = False, None
        machine.install(machine.deb_version)
        machine.actions.append(("install", deb.read_text()))

    def pin(self, major: int) -> bool:
        if self._machine.pinned == major:
            return False
        self._machine.pinned = major
        self._machine.actions.append(("pin", str(major)))
        return True

    def remove_repository(self) -> None:
        self._machine.repository, self._machine.pinned = False, None
        self._machine.actions.append(("remove", "repository"))


class FakeIni:
    """Stands in for grafana.ini: real rendering, files in memory."""

    render_config = staticmethod(ini.render_config)
    HA_PORT = ini.HA_PORT

    def __init__(self, machine: FakeGrafana) -> None:
        self._machine = machine

    def write_config(self, text: str) -> bool:
        return self._machine.write("grafana.ini", text)

    def write_admin_password(self, password: str) -> bool:
        return self._machine.write(PASSWORD_FILE, password)

    def write_secret_key(self, key: str) -> bool:
        return self._machine.write(SECRET_KEY_FILE, key)


class FakeDatabase:
    """Stands in for grafana.database: the real protocol and rendering, files in memory."""

    RELATION = database.RELATION
    DatabaseError = database.DatabaseError
    Database = database.Database
    request = staticmethod(database.request)
    parse = staticmethod(database.parse)
    render_section = staticmethod(database.render_section)

    def __init__(self, machine: FakeGrafana) -> None:
        self._machine = machine

    def write_password(self, password: str) -> bool:
        return self._machine.write(DATABASE_PASSWORD_FILE, password)

    def local_content(self) -> tuple[int, int] | None:
        machine = self._machine
        if machine.sqlite_error:
            raise database.DatabaseError(machine.sqlite_error)
        if not machine.sqlite_created:
            return None
        return machine.sqlite_content


class FakeProvisioning:
    """Stands in for grafana.provisioning: real rendering, files in memory."""

    render_datasources = staticmethod(provisioning.render_datasources)

    def __init__(self, machine: FakeGrafana) -> None:
        self._machine = machine

    def read_datasources(self) -> str | None:
        return self._machine.files.get("datasources")

    def write_datasources(self, text: str) -> bool:
        return self._machine.write("datasources", text)

    shipped_uids = staticmethod(provisioning.shipped_uids)

    def write_dashboards(
        self, shipped: pathlib.Path, related: dict[str, str] | None = None
    ) -> bool:
        wanted = {p.name: p.read_text() for p in shipped.glob("*.json")}
        for name, content in (related or {}).items():
            if provisioning.RELATED_NAME.fullmatch(name) and name not in wanted:
                wanted[name] = content
        if wanted == self._machine.dashboards:
            return False
        self._machine.dashboards = wanted
        self._machine.actions.append(("write", "dashboards"))
        return True


class FakeService:
    """Stands in for grafana.service: grafana-server as the packaged unit runs it."""

    ServiceError = service.ServiceError

    def __init__(self, machine: FakeGrafana) -> None:
        self._machine = machine

    def health(self, port: int) -> Health:
        machine = self._machine
        if machine.crashing:
            return Health.FAILING
        if not machine.running:
            return Health.STOPPED
        return Health.UP if machine.ready(port) else Health.STARTING

    def start(self, port: int, *, restart: bool = False) -> bool:
        machine = self._machine
        if machine.start_error:
            raise machine.start_error
        kind = "restart" if restart else "start"
        machine.actions.append((kind, SERVICE))
        machine.starts.append(Start(kind, machine.files.get(PASSWORD_FILE)))
        machine.running, machine.port = False, None
        journal = machine.read_config_at_start() or machine.listen(port)
        # A grafana-server that dies puts the unit in systemd's restart loop (Restart=
        # on-failure), in which it reads `active` now and then before systemd gives up:
        # failing, not stopped (measured with Prometheus's unit on a real machine).
        machine.crashing = bool(journal)
        if journal:
            machine.journal = journal
            raise packaged_service.StartError(service.failure_reason(journal))
        machine.running, machine.port = True, port
        return not machine.slow

    def allow_low_ports(self, port: int) -> bool:
        wanted = port < 1024
        changed, self._machine.low_ports = wanted != self._machine.low_ports, wanted
        if changed:
            self._machine.actions.append(("low-ports", str(wanted)))
        return changed

    def stop(self) -> None:
        machine = self._machine
        machine.running, machine.port, machine.crashing = False, None, False
        machine.low_ports = False
        machine.actions.append(("stop", SERVICE))


class FakeCLI:
    """Stands in for grafana.cli: the real function, against this machine's programs."""

    CLIError = cli.CLIError

    def __init__(self, machine: FakeGrafana) -> None:
        self._machine = machine

    def set_admin_password(self, password: str) -> None:
        with mock.patch.object(cli.subprocess, "run", self._machine.run_command):
            cli.set_admin_password(password)


class FakeClient:
    """Stands in for api.GrafanaClient: checks credentials against the fake's database."""

    def __init__(self, machine: FakeGrafana, url: str, user: str, password: str) -> None:
        self._machine, self.url, self._user, self._password = machine, url, user, password

    def _authorised(self, call: str) -> None:
        self._machine.api_calls.append(call)
        if self._machine.api_down:
            raise api.APIError("cannot reach Grafana at 127.0.0.1: refused")
        if not self._machine.accepts(self._user, self._password):
            raise api.APIError(f"POST {call} returned 401: Invalid username or password", 401)
        if self._machine.reload_fails:
            # Grafana's provisioning API answers 500 when a provisioning file does not load.
            raise api.APIError(f"POST {call} returned 500: {self._machine.reload_fails}", 500)

    def wait_ready(self, timeout: float = 60.0, interval: float = 1.0) -> bool:
        self._machine.waits += 1  # the real one polls /api/health for up to a minute
        return self._machine.serving()

    def login_works(self) -> bool:
        self._machine.api_calls.append("login")
        if self._machine.api_down or not self._machine.running:
            raise api.APIError("cannot reach Grafana at 127.0.0.1: refused")
        return self._machine.accepts(self._user, self._password)

    def reload_datasources(self) -> None:
        self._authorised("reload datasources")

    def reload_dashboards(self) -> None:
        self._authorised("reload dashboards")


class FakeAPI:
    """Stands in for grafana.api."""

    APIError = api.APIError

    def __init__(self, machine: FakeGrafana) -> None:
        self._machine = machine

    def GrafanaClient(self, url: str, user: str = "", password: str = "") -> FakeClient:  # noqa: N802
        return FakeClient(self._machine, url, user, password)


class FakeGrafana:
    """A machine with Grafana on it, in memory; its fakes stand in for the workload modules."""

    def __init__(self) -> None:
        self.version = ""  # installed, as dpkg says; "" when it is not
        self.programs: set[str] = set()
        # Grafana's repository (source and keyring) and the major its pin holds.
        self.repository = False
        self.pinned: int | None = None
        # What any attached grafana-deb file installs.
        self.deb_version = "11.3.0"
        self.running = False
        # In systemd's restart loop: a start died (see FakeService.start).
        self.crashing = False
        self.files: dict[str, str] = {}
        self.dashboards: dict[str, str] = {}
        # What the hooks did, in order: ("install", "repository"), ("write", "grafana.ini"), ...
        self.actions: list[tuple[str, str]] = []
        self.api_calls: list[str] = []
        # Grafana's database: created at the first start, with its first administrator.
        self.database_created = False
        self.admin_user = "admin"
        self.admin_password = "admin"
        # Every (re)start with what the password file held then; every command run; how many
        # times the CLI set the password.
        self.starts: list[Start] = []
        self.commands: list[list[str]] = []
        self.passwords_set = 0
        self.generated = 0
        # Knobs a test turns to make the machine or Grafana say no.
        self.install_error: apt_source.InstallError | None = None
        # systemctl itself refusing to start the unit (not the process dying).
        self.start_error: service.ServiceError | None = None
        self.api_down = False
        # Grafana's message when it answers a provisioning reload with 500 ("" when it does not).
        self.reload_fails = ""
        # Ports another process on the machine holds; a Grafana that starts slowly (migrating
        # its database) and is not ready when the hook stops waiting.
        self.ports_in_use: set[int] = set()
        self.slow = False
        # The charm's low-port drop-in (packaged_service.allow_low_ports) is installed.
        self.low_ports = False
        self.port: int | None = None  # the port the running Grafana serves on
        # What the last process that died wrote to its journal.
        self.journal: list[str] = []
        self.waits = 0  # how many times a hook waited for Grafana's API
        # A CLI that exits 0 without changing the server's database (another config, another
        # data directory): what the charm's login check is there for.
        self.cli_changes_nothing = False
        self.apt_source = FakeAptSource(self)
        self.ini = FakeIni(self)
        self.database = FakeDatabase(self)
        # This unit's own sqlite (grafana.db): whether it exists, and what it holds of its own
        # (users besides the first administrator, dashboards not provisioned).
        self.sqlite_created = False
        self.sqlite_content = (0, 0)
        self.sqlite_error = ""
        self.provisioning = FakeProvisioning(self)
        self.service = FakeService(self)
        self.cli = FakeCLI(self)
        self.api = FakeAPI(self)

    @contextlib.contextmanager
    def patched(self) -> Iterator[FakeGrafana]:
        """Swap in this machine's fakes wherever the charm's modules use a workload module."""
        fakes = {
            "apt_source": self.apt_source,
            "ini": self.ini,
            "database": self.database,
            "provisioning": self.provisioning,
            "service": self.service,
            "cli": self.cli,
            "api": self.api,
        }
        with contextlib.ExitStack() as stack:
            for module in (
                charm,
                installation,
                admin_password,
                shared_database,
                related_dashboards,
            ):
                for name, fake in fakes.items():
                    if hasattr(module, name):
                        stack.enter_context(mock.patch.object(module, name, fake))
            stack.enter_context(
                mock.patch.object(admin_password, "generate", self.generate_password)
            )
            yield self

    # The machine's state

    @property
    def installed(self) -> bool:
        return bool(self.version)

    def install(self, version: str) -> None:
        """Put the files of Grafana `version`'s .deb on the machine."""
        self.version = version
        self.programs = set(PROGRAMS[version])

    def installed_with_password(
        self, password: str, port: int = 3000, version: str = DEFAULT_RELEASE
    ) -> FakeGrafana:
        """Make this a machine where an earlier hook installed Grafana and started it with it."""
        self.install(version)
        self.repository, self.pinned = True, int(version.split(".")[0])
        self.running = self.database_created = self.sqlite_created = True
        self.port = port
        self.files[PASSWORD_FILE] = self.admin_password = password
        return self

    def accepts(self, user: str, password: str) -> bool:
        return user == self.admin_user and password == self.admin_password

    @property
    def writes(self) -> list[str]:
        return [what for kind, what in self.actions if kind == "write"]

    def datasources(self) -> dict[str, Any]:
        import yaml

        return yaml.safe_load(self.files["datasources"])

    def write(self, name: str, text: str) -> bool:
        if self.files.get(name) == text:
            return False
        self.files[name] = text
        self.actions.append(("write", name))
        return True

    def serving(self) -> bool:
        return self.running and not self.slow and not self.api_down

    def ready(self, port: int) -> bool:
        return self.serving() and port == self.port

    def settle(self) -> None:
        """Forget what earlier hooks did (the machine stays as they left it)."""
        self.actions.clear()
        self.api_calls.clear()
        self.passwords_set = 0
        self.waits = 0

    def generate_password(self) -> str:
        self.generated += 1
        return f"generated-password-{self.generated}"

    # What grafana-server does

    def read_config_at_start(self) -> list[str]:
        """What Grafana does with grafana.ini when it starts (pkg/setting, sqlstore).

        Returns what it prints if it exits, else an empty list.
        """
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(self.files.get("grafana.ini", ""))
        security = parser["security"] if parser.has_section("security") else {}
        password = security.get("admin_password", "admin")
        if password.startswith("$__file{"):
            path = password.removeprefix("$__file{").removesuffix("}")
            if path != str(paths.PATHS.admin_password) or PASSWORD_FILE not in self.files:
                # pkg/setting/expanders.go expandConfig, before logging is set up; main prints.
                return [
                    "Error: ✗ got error while expanding security.admin_password with expander "
                    f"'file': stat {path}: no such file or directory"
                ]
            password = self.files[PASSWORD_FILE].strip()
        # Every other $__file{} the charm writes must be there too (expanders.go, every key).
        named = {
            str(paths.PATHS.secret_key): SECRET_KEY_FILE,
            str(paths.PATHS.database_password): DATABASE_PASSWORD_FILE,
        }
        for section in parser.sections():
            for key, value in parser[section].items():
                path = value.removeprefix("$__file{").removesuffix("}")
                missing = named.get(path) not in self.files
                if value.startswith("$__file{") and key != "admin_password" and missing:
                    return [
                        f"Error: ✗ got error while expanding {section}.{key} with expander "
                        f"'file': stat {path}: no such file or directory"
                    ]
        database = parser["database"] if parser.has_section("database") else {}
        if database.get("type", "sqlite3") == "sqlite3":
            self.sqlite_created = True
        if not self.database_created:
            # sqlstore ensureMainOrgAndAdminUser: only while the user table is empty.
            self.database_created = True
            self.admin_user = security.get("admin_user", "admin")
            self.admin_password = password
        return []

    def listen(self, port: int) -> list[str]:
        """What Grafana 10.x-11.x print when the HTTP server cannot listen (http_server.go)."""
        if port in self.ports_in_use:
            why = "address already in use"
        elif port < 1024 and not self.low_ports:
            # The packaged unit: User=grafana, CapabilityBoundingSet= (no capability at all).
            why = "permission denied"
        else:
            return []
        error = f"failed to open listener on address :{port}: listen tcp :{port}: bind: {why}"
        return [
            'logger=settings t=2026-11-25T10:00:00Z level=info msg="Starting Grafana" '
            "version=11.3.0",
            'logger=server t=2026-11-25T10:00:01Z level=error msg="Stopped background service" '
            f'service=*api.HTTPServer reason="{error}"',
            f"Error: ✗ *api.HTTPServer run error: {error}",
        ]

    def run_command(
        self, cmd: list[str], *, input: str, **_: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run a command as this machine would: runuser, then the program it names."""
        self.commands.append(list(cmd))

        def done(code: int, stderr: str = "") -> subprocess.CompletedProcess[str]:
            return subprocess.CompletedProcess(cmd, code, "", stderr)

        if cmd[:4] != ["runuser", "-u", "grafana", "--"]:
            return done(1, f"unexpected command {cmd[:4]}")
        program, args = cmd[4], cmd[5:]
        found = (
            program
            if "/" in program
            else next(
                (f"{d}/{program}" for d in PATH if f"{d}/{program}" in self.programs), program
            )
        )
        if found not in self.programs:
            return done(1, f"runuser: failed to execute {program}: No such file or directory")
        if found != _BINARY or args[:5] != ["cli", *CLI_FLAGS]:
            # The wrappers add --homepath/--config of their own; this fake knows only the binary.
            return done(1, f"{found} {' '.join(args[:5])}: not what the charm should run")
        if args[5:] != ["admin", "reset-admin-password", "--password-from-stdin"]:
            return done(1, f"unknown command {args[5:]}")
        new_password = input.split("\n", 1)[0]
        if not self.cli_changes_nothing:
            self.admin_password = new_password
        self.passwords_set += 1
        return done(0)


def peers(generation: str | None = "1") -> testing.PeerRelation:
    data = {} if generation is None else {admin_password.GENERATION_KEY: generation}
    return testing.PeerRelation("grafana-peers", local_app_data=data)


STORED_PASSWORD = "s3cret-from-juju"


def password_secret(password: str = STORED_PASSWORD) -> testing.Secret:
    return testing.Secret({"password": password}, owner="app", label=admin_password.SECRET_LABEL)


STORED_SECRET_KEY = "app-secret-key-from-juju"


def secret_key_secret(key: str = STORED_SECRET_KEY) -> testing.Secret:
    return testing.Secret({"secret-key": key}, owner="app", label=shared_database.SECRET_KEY_LABEL)


def state(*, leader: bool = True, **kwargs: Any) -> testing.State:
    """A settled unit: peers set up, the admin password and secret_key secrets created."""
    kwargs.setdefault("relations", [peers()])
    kwargs.setdefault("secrets", [password_secret(), secret_key_secret()])
    kwargs.setdefault("resources", {testing.Resource(name="grafana-deb", path=NO_DEB)})
    return testing.State(leader=leader, model=MODEL, **kwargs)
