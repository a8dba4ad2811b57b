"""Grafana on this machine: package, grafana.ini, provisioning files, service and HTTP API.

This module knows Grafana and nothing about Juju (it never imports ops), so it can be tested on
its own. Every write compares first and reports whether anything changed; the charm restarts
Grafana only when grafana.ini changed and otherwise asks it to re-read its provisioning files.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import yaml
from charmlibs import apt, systemd
from lab_monitoring import files, packaged_service

logger = logging.getLogger(__name__)

PACKAGE = "grafana"
SERVICE = "grafana-server"
USER = "grafana"
GROUP = "grafana"
HOME = Path("/usr/share/grafana")
# The Grafana binary, by absolute path: the 11.x and 12.x .debs put no `grafana` on PATH (only
# the /usr/sbin/grafana-server and /usr/sbin/grafana-cli wrappers), and 13.x's /usr/sbin/grafana
# is a wrapper that adds --homepath and --config itself. /usr/share/grafana/bin/grafana is in
# every .deb from 10.x to 13.x (grafana-build fpm/build.go copies the release tarball, bin/
# included, to /usr/share/grafana; grafana/grafana#58286 made it one binary with `cli` and
# `server`; the 13.x wrapper packaging/wrappers/grafana execs $GRAFANA_HOME/bin/grafana).
BINARY = HOME / "bin" / "grafana"
CONFIG_FILE = Path("/etc/grafana/grafana.ini")
# The admin password Grafana gives its first administrator when it creates its database.
# grafana.ini names it with $__file{...} (pkg/setting/expanders.go), read by the grafana user.
ADMIN_PASSWORD_FILE = Path("/etc/grafana/admin-password")
PROVISIONING_DIR = Path("/etc/grafana/provisioning")
DATASOURCES_FILE = PROVISIONING_DIR / "datasources" / "juju.yaml"
DASHBOARD_PROVIDER_FILE = PROVISIONING_DIR / "dashboards" / "juju.yaml"
DASHBOARDS_DIR = Path("/var/lib/grafana/dashboards/juju")
DATA_DIR = Path("/var/lib/grafana")

KEY_URL = "https://apt.grafana.com/gpg.key"
# Grafana Labs' APT signing key (https://apt.grafana.com). Anything else is refused.
KEY_FINGERPRINT = "B53AE77BADB630A683046005963FA27710458545"
KEYRING = Path("/etc/apt/keyrings/grafana.asc")
SOURCES_FILE = Path("/etc/apt/sources.list.d/grafana.list")
REPOSITORY = f"deb [signed-by={KEYRING}] https://apt.grafana.com stable main\n"

# The record type of a fingerprint in `gpg --with-colons` output (doc/DETAILS in GnuPG).
FINGERPRINT_RECORD = "fpr"  # codespell:ignore fpr
# A signing key is a few kB; anything much larger is not the file we asked for.
MAX_KEY_BYTES = 1 << 20


class GrafanaError(Exception):
    """Grafana could not be installed, configured or reached; the message says why."""


class KeyMismatchError(GrafanaError):
    """The key served at KEY_URL is not the pinned Grafana Labs key."""


class DataSource(Protocol):
    """What a data source needs to be provisioned (the charm library's DataSource has it)."""

    @property
    def uid(self) -> str: ...  # noqa: D102
    @property
    def name(self) -> str: ...  # noqa: D102
    @property
    def type(self) -> str: ...  # noqa: D102
    @property
    def url(self) -> str: ...  # noqa: D102
    @property
    def basic_auth_user(self) -> str | None: ...  # noqa: D102
    @property
    def basic_auth_password(self) -> str | None: ...  # noqa: D102
    @property
    def json_data(self) -> Mapping[str, str | int | float | bool]: ...  # noqa: D102


# --- package ----------------------------------------------------------------------------------


def is_installed() -> bool:
    """Return True if the grafana package is installed."""
    return _dpkg_query("${Status}") == "install ok installed"


def version() -> str:
    """Return the installed Grafana version, such as "11.3.0"."""
    return _dpkg_query("${Version}")


def _dpkg_query(field: str) -> str:
    """Return one dpkg-query field of the grafana package; "" if it is not known to dpkg."""
    result = subprocess.run(
        ["dpkg-query", "--show", f"--showformat={field}", PACKAGE],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def primary_key_fingerprints(key: bytes) -> list[str]:
    """Return the fingerprint of every primary key in an OpenPGP key file, as gpg reads it.

    Raises:
        GrafanaError: gpg is missing or cannot read the data as a key.
    """
    if shutil.which("gpg") is None:
        raise GrafanaError("gpg is not installed (apt install gpg)")
    # A throwaway home: --show-keys imports nothing, but gpg still wants a home directory.
    with tempfile.TemporaryDirectory() as home:
        result = subprocess.run(
            ["gpg", "--homedir", home, "--batch", "--show-keys", "--with-colons"],
            input=key,
            capture_output=True,
            check=False,
        )
    if result.returncode != 0:
        raise GrafanaError(f"gpg cannot read the key: {result.stderr.decode(errors='replace')}")
    fingerprints: list[str] = []
    key_type = ""
    # --with-colons lists each key ("pub" primary, "sub" subkey) followed by its fingerprint
    # record. Subkeys are trusted through their primary key's signature, so only primaries are
    # pinned.
    for line in result.stdout.decode(errors="replace").splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sub"):
            key_type = fields[0]
        elif fields[0] == FINGERPRINT_RECORD and key_type == "pub" and len(fields) > 9:
            fingerprints.append(fields[9].upper())
            key_type = ""
    return fingerprints


def check_key(key: bytes, expected: str | None = None) -> None:
    """Accept `key` only if it holds primary keys and each one has the pinned fingerprint.

    Raises:
        KeyMismatchError: a primary key is missing or has another fingerprint.
    """
    expected = expected or KEY_FINGERPRINT
    found = primary_key_fingerprints(key)
    if not found or any(fingerprint != expected for fingerprint in found):
        shown = ", ".join(found) or "no key"
        raise KeyMismatchError(
            f"{KEY_URL} served {shown}, not the pinned Grafana key {expected}; nothing installed"
        )


def fetch(url: str) -> bytes:
    """Return the body of an HTTPS GET, with certificate checks and a timeout."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (fixed https URL)
            return response.read(MAX_KEY_BYTES)
    except (urllib.error.URLError, OSError) as e:
        raise GrafanaError(f"cannot download {url}: {e}") from None


def install_from_repository(download: Callable[[str], bytes] = fetch) -> None:
    """Install Grafana OSS from apt.grafana.com, trusting only the pinned signing key.

    Raises:
        KeyMismatchError: the downloaded key is not Grafana's; nothing was written.
        GrafanaError: the key could not be fetched or apt failed; the repository's keyring
            and source are not left behind.
    """
    add_repository(download)
    try:
        apt.add_package(PACKAGE, update_cache=True)
    except (apt.Error, subprocess.CalledProcessError) as e:
        # A source apt cannot reach makes every `apt-get update --error-on=any` on the machine
        # fail (plain `apt-get update` only warns), and that is what charmlibs-apt runs: the
        # Prometheus and node-exporter charms' installs on this machine would fail too (seen on
        # a real machine: tests/machine/test_grafana.py). The next hook writes both again.
        remove_repository()
        raise GrafanaError(f"apt could not install {PACKAGE}: {_apt_reason(e)}") from None


def add_repository(download: Callable[[str], bytes] = fetch) -> None:
    """Add apt.grafana.com as an apt source signed by the pinned key (both files root, 0644).

    Raises:
        KeyMismatchError: the downloaded key is not Grafana's; nothing was written.
        GrafanaError: the key could not be fetched.
    """
    key = download(KEY_URL)
    check_key(key)
    write_file(KEYRING, key, mode=0o644)
    write_file(SOURCES_FILE, REPOSITORY.encode(), mode=0o644)


def remove_repository() -> None:
    """Remove apt.grafana.com's source and keyring from the machine's apt configuration."""
    SOURCES_FILE.unlink(missing_ok=True)
    KEYRING.unlink(missing_ok=True)


def _apt_reason(error: Exception) -> str:
    """Return apt's first error line (`E: ...`) from a failed command, else the error.

    The first says what failed ("E: Failed to fetch https://apt.grafana.com/..."); an update
    ends with the same generic "E: Some index files failed to download" whatever the cause.
    """
    stderr = getattr(error, "stderr", None) or b""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else str(stderr)
    errors = [line for line in text.splitlines() if line.startswith("E:")]
    return errors[0] if errors else str(error)


def install_from_file(deb: Path) -> None:
    """Install (or upgrade to) a Grafana .deb file; its dependencies come from the archive.

    Raises:
        GrafanaError: apt refused the file.
    """
    # apt (unlike dpkg -i) resolves the .deb's dependencies from the configured archive; a path
    # with a slash tells apt it is a file, not a package name.
    cmd = ["apt-get", "install", "--yes", "--no-install-recommends", str(deb.absolute())]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise GrafanaError(f"apt could not install {deb.name}: {result.stderr.strip()[-500:]}")


def sha256(path: Path) -> str:
    """Return the SHA-256 of a file, to notice a newly attached resource."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- files ------------------------------------------------------------------------------------


# Compare-then-write, owner and mode before content (lab_monitoring.files).
write_file = files.write


def render_config(
    *,
    port: int,
    admin_user: str,
    allow_anonymous_access: bool,
    anonymous_role: str,
    root_url: str,
    log_level: str,
) -> str:
    """Return grafana.ini for already validated settings.

    Keys are those of Grafana's conf/defaults.ini. The paths are spelt out (the packaged
    systemd unit passes them on the command line) so that `grafana cli`, which only reads this
    file, works on the same database as the server.
    """
    root = f"root_url = {root_url}\n" if root_url else ""
    anonymous = "true" if allow_anonymous_access else "false"
    return (
        "# Written by the grafana charm; edits are overwritten. Use `juju config grafana`.\n"
        "[paths]\n"
        f"data = {DATA_DIR}\n"
        "logs = /var/log/grafana\n"
        f"plugins = {DATA_DIR}/plugins\n"
        f"provisioning = {PROVISIONING_DIR}\n"
        "\n[server]\n"
        f"http_port = {port}\n"
        f"{root}"
        "\n[security]\n"
        f"admin_user = {admin_user}\n"
        # Read when Grafana creates its database, so the first administrator is never
        # admin/admin; later changes go through set_admin_password.
        f"admin_password = $__file{{{ADMIN_PASSWORD_FILE}}}\n"
        "\n[auth.anonymous]\n"
        f"enabled = {anonymous}\n"
        f"org_role = {anonymous_role}\n"
        "\n[log]\n"
        f"level = {log_level}\n"
        "\n[analytics]\n"
        "reporting_enabled = false\n"
        "check_for_updates = false\n"
        "check_for_plugin_updates = false\n"
    )


def write_config(text: str) -> bool:
    """Install grafana.ini (root:grafana 0640); return True if it changed."""
    return write_file(CONFIG_FILE, text.encode(), mode=0o640, group=GROUP)


def write_admin_password(password: str) -> bool:
    """Install the admin password file grafana.ini names (root:grafana 0640); True if changed.

    Grafana runs as user grafana and reads the file itself, so group grafana must read it;
    nobody else may.
    """
    return write_file(ADMIN_PASSWORD_FILE, password.encode(), mode=0o640, group=GROUP)


def _literal(value: str) -> str:
    """Escape `$` so Grafana stores the text as it is.

    Grafana expands $VAR, ${VAR} and $__file{...}/$__env{...} in every string of a provisioning
    file, and `$$` is its escape for a literal `$`: without this a data source name or URL
    from a relation could read files or environment variables into Grafana.
    """
    return value.replace("$", "$$")


def _datasource_entry(source: DataSource, *, default: bool) -> dict[str, object]:
    entry: dict[str, object] = {
        "uid": _literal(source.uid),
        "name": _literal(source.name),
        "type": _literal(source.type),
        "access": "proxy",
        "orgId": 1,
        "url": _literal(source.url),
        "isDefault": default,
        "editable": False,
    }
    if source.json_data:
        entry["jsonData"] = {
            key: _literal(value) if isinstance(value, str) else value
            for key, value in sorted(source.json_data.items())
        }
    if source.basic_auth_user is not None and source.basic_auth_password is not None:
        entry["basicAuth"] = True
        entry["basicAuthUser"] = _literal(source.basic_auth_user)
        entry["secureJsonData"] = {"basicAuthPassword": _literal(source.basic_auth_password)}
    return entry


def provisioned_names(text: str | None) -> tuple[set[str], set[str]]:
    """Return the (datasources, deleteDatasources) names of a provisioning file we wrote."""
    try:
        doc = yaml.safe_load(text or "") or {}
    except yaml.YAMLError:
        logger.warning("%s is not YAML; not deleting what it held", DATASOURCES_FILE)
        return set(), set()

    def names(key: str) -> set[str]:
        items = doc.get(key) if isinstance(doc, dict) else None
        if not isinstance(items, list):
            return set()
        return {i["name"] for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)}

    return names("datasources"), names("deleteDatasources")


def render_datasources(
    sources: Sequence[DataSource], previous: str | None = None, *, keep_deletions: bool = False
) -> str:
    """Return the data source provisioning file: one entry per source, the first the default.

    Data sources in `previous` (the file now on disk) that are gone are listed under
    deleteDatasources, which Grafana applies before the upserts. With `keep_deletions` the
    previous deletions stay listed too, for when Grafana has not read that file yet.
    A source whose uid or name repeats an earlier one is left out with a warning.
    """
    entries: list[dict[str, object]] = []
    uids: set[str] = set()
    for source in sources:
        entry = _datasource_entry(source, default=not entries)
        if entry["uid"] in uids or any(e["name"] == entry["name"] for e in entries):
            logger.warning("data source %r repeats a uid or name; left out", source.name)
            continue
        uids.add(str(entry["uid"]))
        entries.append(entry)
    current = {str(e["name"]) for e in entries}
    before, deleted_before = provisioned_names(previous)
    gone = before | deleted_before if keep_deletions else before
    doc = {
        "apiVersion": 1,
        "deleteDatasources": [{"name": name, "orgId": 1} for name in sorted(gone - current)],
        "datasources": entries,
    }
    return "# Written by the grafana charm from its grafana-source relations.\n" + yaml.safe_dump(
        doc, sort_keys=False, default_flow_style=False, allow_unicode=False, width=1000
    )


def read_datasources() -> str | None:
    """Return the data source provisioning file on disk, or None."""
    try:
        return DATASOURCES_FILE.read_text()
    except FileNotFoundError:
        return None


def write_datasources(text: str) -> bool:
    """Install the data source provisioning file; return True if it changed.

    It may hold data source passwords, so only root and Grafana can read it.
    """
    return write_file(DATASOURCES_FILE, text.encode(), mode=0o640, group=GROUP)


def render_dashboard_provider() -> str:
    """Return the provisioning file that loads the charm's dashboards from DASHBOARDS_DIR."""
    doc = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "juju",
                "orgId": 1,
                "folder": "Juju",
                "type": "file",
                # The charm owns these dashboards: UI edits would be lost on the next write.
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": str(DASHBOARDS_DIR)},
            }
        ],
    }
    return "# Written by the grafana charm.\n" + yaml.safe_dump(doc, sort_keys=False)


def write_dashboards(shipped: Path) -> bool:
    """Install the dashboard provider and every shipped *.json; return True if any changed.

    Dashboards that are no longer shipped (after a charm upgrade) are removed.
    """
    changed = write_file(DASHBOARD_PROVIDER_FILE, render_dashboard_provider().encode(), mode=0o644)
    wanted = {p.name: p for p in sorted(shipped.glob("*.json"))}
    for name, source in wanted.items():
        changed |= write_file(DASHBOARDS_DIR / name, source.read_bytes(), mode=0o644)
    for stale in DASHBOARDS_DIR.glob("*.json"):
        if stale.name not in wanted:
            stale.unlink()
            changed = True
    return changed


# --- service ----------------------------------------------------------------------------------

# How long a hook waits for grafana-server to answer /api/health after a (re)start before it
# reports "waiting for Grafana to start". The first start creates the sqlite database and runs
# every migration (several hundred in 11.x-13.x, each one a schema change and a row in
# migration_log), which takes from seconds on an SSD to a minute or more on a small lab machine's
# disk; later starts only check them. Two minutes covers a first start on slow disks without
# holding the machine's hook lock much longer than the install itself; a start still going after
# that is reported as Waiting and checked again by the next hook, never restarted.
START_TIMEOUT = 120.0


class StartError(GrafanaError, packaged_service.StartError):
    """grafana-server died while starting; the message says why, from its own log."""


def health(port: int) -> packaged_service.Health:
    """Return whether grafana-server is up, starting, failing (crashing) or stopped."""
    return packaged_service.health(SERVICE, lambda: ready(port))


def ready(port: int) -> bool:
    """Return True if Grafana on this machine answers /api/health with its database ok."""
    return GrafanaClient(f"http://127.0.0.1:{port}", timeout=2.0).is_ready()


def start(port: int, *, restart: bool = False) -> bool:
    """Enable and start grafana-server (or restart it); True once it is ready, False if slow.

    Ready means /api/health answers with the database ok (GRAFANA-FACTS item 5). The packaged
    unit is Type=simple (packaging/deb/systemd/grafana-server.service), so systemctl returns as
    soon as the process forks: packaged_service.start waits for readiness or for the death.

    Raises:
        StartError: grafana-server died (a taken port, an unreadable file, ...): says why.
        GrafanaError: systemctl refused (no such unit, say).
    """
    try:
        started = packaged_service.start(
            SERVICE, lambda: ready(port), restart=restart, timeout=START_TIMEOUT
        )
    except systemd.SystemdError as e:
        raise GrafanaError(str(e)) from None
    if started.outcome is packaged_service.Outcome.FAILED:
        raise StartError(failure_reason(started.log))
    return started.outcome is packaged_service.Outcome.UP


def allow_low_ports(port: int) -> bool:
    """Let grafana-server bind `port` if it is below 1024; True if it needs a restart for it.

    The packaged unit (10.x-13.x) runs as user grafana with `CapabilityBoundingSet=` (none) and
    `PrivateUsers=true`, which Grafana's own docs say to override for a port below 1024
    (docs/sources/shared/systemd/bind-net-capabilities.md): the drop-in grants
    CAP_NET_BIND_SERVICE and sets PrivateUsers=no. Its other hardening (NoNewPrivileges,
    RestrictNamespaces, ...) does not take an ambient capability away.
    """
    return packaged_service.allow_low_ports(SERVICE, port < 1024, PACKAGE)


def stop() -> None:
    """Stop grafana-server, keep it from starting at boot, and remove the charm's drop-in."""
    packaged_service.stop(SERVICE, PACKAGE)


# What grafana-server prints when it cannot start, in the journal (the process's stdout and
# stderr, --output=cat). Grafana logs logfmt to a console that is not a terminal
# (`logger=server t=... level=error msg="..." error="..."`: pkg/infra/log getLogFormat, go-kit's
# logfmt logger or text.NewTextLogger, which wraps it), and its main
# prints the error it exits with as `Error: ✗ <error>` (pkg/cmd/grafana/main.go, 10.x-13.x:
# `fmt.Printf("%s: %s %s\n", color.RedString("Error"), color.RedString("✗"), err)`; no colour
# codes when stdout is not a terminal, stripped here anyway).
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FATAL = re.compile(r"^Error: ✗ (?P<error>.+)$")
# Go's net.Listen error, wrapped by pkg/api/http_server.go (*HTTPServer).getListener as
# `failed to open listener on address %s: %w` right after its net.Listen("tcp", ...) (line 568
# in v13.2.2; the same function in 10.x-12.x): "failed to open listener on address :80: listen
# tcp :80: bind: permission denied". 10.x-11.x log it as `level=error msg="Stopped background
# service" service=*api.HTTPServer reason="..."` (pkg/server/server.go Run), 12.x-13.x as
# `msg="Module failed" module=*api.HTTPServer err="..."` (pkg/modules/listener.go Failure),
# then main's `Error: ✗` line repeats it.
_LISTEN = re.compile(r"listen tcp (?P<host>\S*?):(?P<port>\d+): bind: (?P<why>[^\"]+)")
# A `$__file{...}` in grafana.ini that cannot be read: pkg/setting/expanders.go expandConfig
# (`got error while expanding %s.%s with expander '%s': %w`, line 67 of the copy read, commit
# c265af27), wrapping fileExpander.Expand's os.Stat / os.ReadFile error. setting.go's
# loadConfiguration returns it before logging is set up, so only the `Error: ✗` line shows it:
# "got error while expanding security.admin_password with expander 'file':
#  open /etc/grafana/admin-password: permission denied".
_EXPAND = re.compile(
    r"got error while expanding (?P<key>\S+) with expander 'file': "
    r"(?:open|stat) (?P<path>\S+): (?P<why>.+)"
)
# go-kit's "error"; "crit" for Grafana's critical (pkg/infra/log terminalColorFn knows both);
# Grafana 8.x and older wrote `lvl=eror`.  # codespell:ignore eror
_ERROR_LEVELS = ("error", "crit", "eror")  # codespell:ignore eror


def failure_reason(log: Sequence[str]) -> str:
    """Say in one line why grafana-server died, from its own log lines (oldest first)."""
    lines = [_ANSI.sub("", line).strip() for line in log]
    for line in reversed(lines):
        listen = _LISTEN.search(line)
        if listen:
            where = f"{listen['host']}:{listen['port']}"
            return f"grafana cannot listen on {where}: {listen['why'].strip()}"
        expand = _EXPAND.search(line)
        if expand:
            return (
                f"grafana cannot read {expand['path']} ({expand['key']} in grafana.ini): "
                f"{expand['why'].strip()}"
            )
    for line in reversed(lines):
        fatal = _FATAL.match(line)
        if fatal:
            return f"grafana failed to start: {fatal['error'].strip()}"
    for line in reversed(lines):
        fields = packaged_service.logfmt(line)
        if fields.get("level", fields.get("lvl")) in _ERROR_LEVELS:
            details = (fields.get(key) for key in ("msg", "error", "err", "reason"))
            return f"grafana failed to start: {': '.join(filter(None, details))}"
    return f"grafana failed to start (see journalctl -u {SERVICE})"


def generate_password() -> str:
    """Return a new random admin password (32 URL-safe characters, 192 bits)."""
    return secrets.token_urlsafe(24)


def set_admin_password(password: str) -> None:
    """Set the password of Grafana's first administrator (user id 1) in its database.

    `grafana cli admin reset-admin-password --password-from-stdin` works without knowing the
    current password and keeps the new one out of argv and logs. It runs as the grafana user,
    which can read grafana.ini and the admin password file, and so that any file it creates in
    the data directory stays Grafana's. The caller checks with a login that it took effect.

    Raises:
        GrafanaError: the command failed (its output never contains the password).
    """
    cli = [str(BINARY), "cli", "--homepath", str(HOME), "--config", str(CONFIG_FILE)]
    cmd = [
        "runuser",
        "-u",
        USER,
        "--",
        *cli,
        "admin",
        "reset-admin-password",
        "--password-from-stdin",
    ]
    try:
        result = subprocess.run(
            cmd, input=password + "\n", capture_output=True, text=True, check=False, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GrafanaError(f"grafana cli could not run: {e}") from None
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-500:]
        raise GrafanaError(f"grafana cli could not set the admin password: {output}")


# --- HTTP API ---------------------------------------------------------------------------------


class APIError(GrafanaError):
    """Grafana answered with an unexpected status, or could not be reached (status None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


# The charm talks to its own Grafana on loopback: never through a proxy a hook's environment
# may name (Juju's legacy http-proxy model setting puts http_proxy there).
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class GrafanaClient:
    """The few Grafana HTTP API calls the charm makes, with basic auth and a timeout."""

    def __init__(
        self, url: str, user: str = "", password: str = "", *, timeout: float = 10.0
    ) -> None:
        self._url = url.rstrip("/")
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"GrafanaClient({self._url!r})"

    def _request(self, method: str, path: str, *, auth: bool = True) -> tuple[int, bytes]:
        request = urllib.request.Request(f"{self._url}{path}", method=method)  # noqa: S310
        request.add_header("Accept", "application/json")
        if auth:
            request.add_header("Authorization", self._auth)
        try:
            with _LOOPBACK.open(request, timeout=self._timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise APIError(f"cannot reach Grafana at {self._url}: {reason}") from None

    def _call(self, method: str, path: str) -> None:
        status, body = self._request(method, path)
        if status == 200:
            return
        message = body.decode(errors="replace")[:200]
        with contextlib.suppress(ValueError, AttributeError):
            message = str(json.loads(body).get("message", message))
        raise APIError(f"{method} {path} returned {status}: {message}", status)

    def is_ready(self) -> bool:
        """Return True if Grafana answers /api/health and its database is ok."""
        try:
            status, body = self._request("GET", "/api/health", auth=False)
            return status == 200 and json.loads(body).get("database") == "ok"
        except (APIError, ValueError, AttributeError):
            return False

    def wait_ready(self, timeout: float = 60.0, interval: float = 1.0) -> bool:
        """Poll /api/health until Grafana is ready or `timeout` seconds have passed."""
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)
        return True

    def login_works(self) -> bool:
        """Return True if Grafana accepts the credentials, False if it rejects them.

        Raises:
            APIError: Grafana cannot be reached or answered something else.
        """
        status, _ = self._request("GET", "/api/user")
        if status in (401, 403):
            return False
        if status != 200:
            raise APIError(f"GET /api/user returned {status}", status)
        return True

    def reload_datasources(self) -> None:
        """Make Grafana re-read the data source provisioning files (no restart)."""
        self._call("POST", "/api/admin/provisioning/datasources/reload")

    def reload_dashboards(self) -> None:
        """Make Grafana re-read the dashboard provisioning files (no restart)."""
        self._call("POST", "/api/admin/provisioning/dashboards/reload")
