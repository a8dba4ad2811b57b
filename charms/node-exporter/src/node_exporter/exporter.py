"""The exporter itself: the Ubuntu package, the binary, the systemd service, why a start failed.

Starting. The packaged unit is `Type=simple` with `Restart=on-failure`, so `systemctl start`
succeeds even for an exporter that dies at once (its port taken, say). `start` and `restart`
therefore wait, within the hook, until the exporter answers `GET /metrics` or systemd shows it
died, and say why from the exporter's own log (lab_monitoring.packaged_service). A port that is
taken is said with the process that holds it (`ports`): on a machine where Canonical's
opentelemetry-collector runs, its own node exporter already listens on :9100.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence

from lab_monitoring import loopback, packaged_service, packages

from . import flags, ports

PACKAGE = "prometheus-node-exporter"
SERVICE = "prometheus-node-exporter"
CHARM = "node-exporter"
BINARY = "prometheus-node-exporter"
# The snaps of Canonical's opentelemetry-collector charm: it runs node-exporter's alongside its
# own (canonical/opentelemetry-collector-operator, src/snap_management.py).
COLLECTOR_SNAPS = ("node-exporter", "opentelemetry-collector")
# The help line every collector registers, in node_exporter 1.3.1 and 1.5.0 alike
# (collector/collector.go, registerCollector): "Enable the %s collector (default: %s)."
_HELP_LINE = re.compile(
    r"--collector\.([a-z0-9_]+)\s+Enable the \1 collector \(default:\s*(enabled|disabled)\)"
)
# The Go error for a port that cannot be bound: "listen tcp :80: bind: permission denied".
_LISTEN_ERROR = re.compile(r"listen tcp (?P<host>\S*?):(?P<port>\d+): bind: (?P<why>.+)")
_IN_USE = "address already in use"
# kingpin's refusal of the command line, printed before any logging starts.
_USAGE_ERROR = re.compile(r"\S+: error: (?P<why>.+?)(?:, try --help)?")

InstallError = packages.InstallError
# The exporter did not come up; the message says why, from its own log.
StartError = packaged_service.StartError
Health = packaged_service.Health


# --- package and binary -------------------------------------------------------------------


def installed() -> bool:
    """Return True if the prometheus-node-exporter package is installed."""
    return packages.installed(PACKAGE)


def install() -> None:
    """Install the archive's prometheus-node-exporter, without its recommended packages.

    It recommends prometheus-node-exporter-collectors (textfile scripts run by systemd timers:
    apt, smartmon, ipmi...), more than a lab asked for. The postinst starts the service.

    Raises:
        InstallError: apt failed; the message is apt's own error line.
    """
    packages.install(PACKAGE)


def version() -> str | None:
    """Return the version of the installed exporter, such as `1.3.1`, or None."""
    output = _run_binary("--version")
    match = re.search(r"version (\S+)", output or "")
    return match.group(1) if match else None


def known_collectors() -> dict[str, bool]:
    """Return every collector the installed exporter knows, and whether it is on by default.

    Read from `prometheus-node-exporter --help`: the defaults differ between builds (Debian and
    Ubuntu switch the systemd collector on, upstream leaves it off). Empty if there is no binary.
    """
    text = " ".join((_run_binary("--help") or "").split())
    return {name: state == "enabled" for name, state in _HELP_LINE.findall(text)}


def _run_binary(flag: str) -> str | None:
    try:
        result = subprocess.run([BINARY, flag], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    # Which stream kingpin prints help and version to depends on its version: read both.
    return result.stdout + result.stderr


# --- the service --------------------------------------------------------------------------


def health() -> Health:
    """Return whether the exporter is up, starting, failing (crashing) or stopped."""
    return packaged_service.health(SERVICE, ready)


def ready() -> bool:
    """Return True if the exporter answers `GET /metrics` on the port its flags file names."""
    url = f"http://127.0.0.1:{flags.local_port()}/metrics"
    return loopback.get_status(url, timeout=5) == 200


def start() -> bool:
    """Enable and start the service; return True once it serves, False if still starting.

    Raises:
        StartError: it died (a taken port, an unknown flag, ...); the message says why.
    """
    return packaged_service.confirmed_start(SERVICE, ready, failure_reason)


def restart() -> bool:
    """Restart the service (needed for new flags); return and raise as `start` does."""
    return packaged_service.confirmed_start(SERVICE, ready, failure_reason, restart=True)


def allow_low_ports(port: int | None) -> bool:
    """Let the exporter bind `port` if it is below 1024; return True if it needs a restart.

    The packaged unit runs as user prometheus with no capabilities, so a systemd drop-in grants
    CAP_NET_BIND_SERVICE for such a port, and is removed for any other.
    """
    return packaged_service.allow_low_ports(SERVICE, port is not None and port < 1024, CHARM)


def stop() -> None:
    """Stop and disable the service, and remove the charm's drop-in (gone already is fine)."""
    packaged_service.stop(SERVICE, CHARM)


# --- why it died --------------------------------------------------------------------------


def failure_reason(log: Sequence[str]) -> str:
    """Say in one line why the exporter died, from its own log lines (oldest first).

    A port found taken is said with the process that holds it now, if one does.
    """
    # A Go panic (a collector that cannot be created) ends with a goroutine trace: the reason
    # is on the "panic: " line above it.
    panics = [line for line in log if line.startswith("panic: ")]
    if panics:
        return f"{SERVICE} failed to start: {panics[-1].removeprefix('panic: ').strip()}"
    for line in reversed(log):
        fields = packaged_service.logfmt(line)
        if fields.get("level", "error") not in ("error", "fatal"):
            continue  # an info or warning line
        if "collector" in fields:
            # A collector's complaint (no /run/udev/data in a container, say): the exporter goes
            # on without that part. The log can end with one, from the next attempt systemd
            # started, after the line that made the previous attempt exit.
            continue
        text = fields.get("err") or fields.get("msg") or line.strip()
        listen = _LISTEN_ERROR.search(text)
        if listen:
            taken = _taken(int(listen["port"])) if listen["why"] == _IN_USE else ""
            where = f"{listen['host']}:{listen['port']}"
            return taken or f"{SERVICE} cannot listen on {where}: {listen['why']}"
        usage = _USAGE_ERROR.fullmatch(text)
        return f"{SERVICE} failed to start: {usage['why'] if usage else text}"
    return f"{SERVICE} failed to start (see journalctl -u {SERVICE})"


def _taken(port: int) -> str:
    """Say who holds `port` and what the operator can do about it; "" if nothing listens now."""
    holder = ports.holder(port)
    if holder is None:
        return ""
    if holder.pid is None:
        who, remedy = "a process not visible from this machine", "free the port"
    elif holder.snap in COLLECTOR_SNAPS:
        who = f"{holder.name} (pid {holder.pid}) of snap {holder.snap} (opentelemetry-collector)"
        remedy = "do not attach node-exporter where the collector runs"
    elif holder.unit:
        who, remedy = f"{holder.name} (pid {holder.pid}, {holder.unit})", f"stop {holder.unit}"
    else:
        who, remedy = f"{holder.name} (pid {holder.pid})", f"stop {holder.name}"
    return f"port {port} is taken by {who}: set this charm's port, or {remedy}"
