"""The prometheus package and its systemd service: install, start, health, stop, low ports.

The service is the archive's own unit (Type=simple, User=prometheus, no capabilities): a start
returns before Prometheus serves, so starts are confirmed from /-/ready and, when it died, the
reason is read from its log (`failure_reason`). lab_monitoring.packaged_service does the
systemd side; this module says what is Prometheus's.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence

from lab_monitoring import loopback, packaged_service, packages

from prometheus import flags

PACKAGE = "prometheus"
SERVICE = "prometheus"

# Prometheus did not come up; the message says why, from its own log.
StartError = packaged_service.StartError
InstallError = packages.InstallError
# The Go error for a port that cannot be bound: "listen tcp :80: bind: permission denied".
_LISTEN_ERROR = re.compile(r"listen tcp (?P<host>\S*?):(?P<port>\d+): bind: (?P<why>.+)")


def installed() -> bool:
    """Return True if the prometheus package is installed."""
    return packages.installed(PACKAGE)


def install() -> None:
    """Install the archive's prometheus package, without its recommended packages.

    It recommends prometheus-node-exporter, which this charm does not manage.

    Raises:
        InstallError: apt failed; the message is apt's own error line.
    """
    packages.install(PACKAGE)


def version() -> str | None:
    """Return the version of the installed binary, such as `2.31.2+ds1`, or None."""
    try:
        out = subprocess.run(
            ["prometheus", "--version"], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.search(r"version (\S+)", out)
    return match.group(1) if match else None


def health() -> packaged_service.Health:
    """Return whether Prometheus is up, starting, failing (crashing) or stopped."""
    return packaged_service.health(SERVICE, ready)


def ready() -> bool:
    """Return True if Prometheus answers /-/ready (it has loaded its TSDB and serves queries)."""
    return loopback.get_status(flags.local_url("/-/ready"), timeout=2) == 200


def start() -> bool:
    """Enable and start the service; return True once it is ready, False if still starting.

    Raises:
        StartError: it died (a taken port, a broken flag, ...); the message says why.
    """
    return packaged_service.confirmed_start(SERVICE, ready, failure_reason)


def restart() -> bool:
    """Restart the service (needed for new flags); return and raise as `start` does."""
    return packaged_service.confirmed_start(SERVICE, ready, failure_reason, restart=True)


def allow_low_ports(port: int) -> bool:
    """Let Prometheus bind `port` if it is below 1024; return True if the service needs a restart.

    The packaged unit runs as user prometheus with no capabilities (ENVIRONMENT.md), so a
    systemd drop-in grants CAP_NET_BIND_SERVICE for such a port and is removed otherwise.
    """
    return packaged_service.allow_low_ports(SERVICE, port < 1024, PACKAGE)


def stop() -> None:
    """Stop and disable the service, and remove the charm's drop-in (gone already is fine)."""
    packaged_service.stop(SERVICE, PACKAGE)


def failure_reason(log: Sequence[str]) -> str:
    """Say in one line why Prometheus died, from its own log lines (oldest first)."""
    for line in reversed(log):
        fields = packaged_service.logfmt(line)
        if fields.get("level", "error") not in ("error", "fatal"):
            continue  # an info or warning line
        # A line that is not logfmt is a usage error printed before logging starts
        # ("prometheus: error: unknown long flag ...").
        text = ": ".join(filter(None, (fields.get("msg"), fields.get("err")))) or line.strip()
        listen = _LISTEN_ERROR.search(text)
        if listen:
            where = f"{listen['host']}:{listen['port']}"
            return f"prometheus cannot listen on {where}: {listen['why']}"
        return f"prometheus failed to start: {text}"
    return "prometheus failed to start (see journalctl -u prometheus)"
