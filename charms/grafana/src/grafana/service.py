"""grafana-server, the packaged systemd unit: start it and know whether it came up, and why not.

The packaged unit is Type=simple with Restart=on-failure
(packaging/deb/systemd/grafana-server.service, 10.x-13.x), so lab_monitoring.packaged_service
does the waiting: until Grafana answers /api/health, or systemd shows it died, or the time is
up. When it died, `failure_reason` reads why from Grafana's own lines in the journal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from charmlibs import systemd
from lab_monitoring import packaged_service

import grafana
from grafana import api

# How long a hook waits for grafana-server to answer /api/health after a (re)start before it
# reports "waiting for Grafana to start". The first start creates the sqlite database and runs
# every migration (several hundred in 11.x-13.x, each one a schema change and a row in
# migration_log), which takes from seconds on an SSD to a minute or more on a small lab machine's
# disk; later starts only check them. Two minutes covers a first start on slow disks without
# holding the machine's hook lock much longer than the install itself; a start still going after
# that is reported as Waiting and checked again by the next hook, never restarted.
START_TIMEOUT = 120.0


class ServiceError(grafana.GrafanaError):
    """systemctl itself refused (no such unit, say): not grafana-server dying."""


def health(port: int) -> packaged_service.Health:
    """Return whether grafana-server is up, starting, failing (crashing) or stopped."""
    return packaged_service.health(grafana.SERVICE, lambda: ready(port))


def ready(port: int) -> bool:
    """Return True if Grafana on this machine answers /api/health with its database ok."""
    return api.GrafanaClient(f"http://127.0.0.1:{port}", timeout=2.0).is_ready()


def start(port: int, *, restart: bool = False) -> bool:
    """Enable and start grafana-server (or restart it); True once it is ready, False if slow.

    Ready means /api/health answers with the database ok (GRAFANA-FACTS item 5).

    Raises:
        lab_monitoring.packaged_service.StartError: grafana-server died (a taken port, an
            unreadable file, ...); the message says why, from its own log.
        ServiceError: systemctl refused (no such unit, say).
    """
    try:
        return packaged_service.confirmed_start(
            grafana.SERVICE,
            lambda: ready(port),
            failure_reason,
            restart=restart,
            timeout=START_TIMEOUT,
        )
    except systemd.SystemdError as e:
        raise ServiceError(str(e)) from None


def allow_low_ports(port: int) -> bool:
    """Let grafana-server bind `port` if it is below 1024; True if it needs a restart for it.

    The packaged unit (10.x-13.x) runs as user grafana with `CapabilityBoundingSet=` (none) and
    `PrivateUsers=true`, which Grafana's own docs say to override for a port below 1024
    (docs/sources/shared/systemd/bind-net-capabilities.md): the drop-in grants
    CAP_NET_BIND_SERVICE and sets PrivateUsers=no. Its other hardening (NoNewPrivileges,
    RestrictNamespaces, ...) does not take an ambient capability away.
    """
    return packaged_service.allow_low_ports(grafana.SERVICE, port < 1024, grafana.PACKAGE)


def stop() -> None:
    """Stop grafana-server, keep it from starting at boot, and remove the charm's drop-in."""
    packaged_service.stop(grafana.SERVICE, grafana.PACKAGE)


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
    return f"grafana failed to start (see journalctl -u {grafana.SERVICE})"
