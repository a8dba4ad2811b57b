"""A service from an Ubuntu package: started so that the charm knows whether it came up.

The packaged units these charms drive (prometheus, grafana-server, prometheus-node-exporter,
prometheus-alertmanager) are `Type=simple`: `systemctl start` and `is-active` succeed the moment
the process forks, even when it dies a millisecond later because its port is taken. Most have
`Restart=on-failure`, and systemd then restarts the process until its start limit gives up;
noble's prometheus.service has `Restart=on-abnormal` (measured: a process exiting with an
error is left failed, nothing restarts it), so a failed start there is `failed` at once.
So `start` here waits, within the hook, until the service either answers its own readiness
check (it is up), or systemd shows it died (it failed: the service's own journal lines since
the start are returned so the charm can say why), or a time limit passes while it is still
alive and not ready (it is starting, slowly). `health` reads the same signs at any later
moment, and `StartGuard` keeps a start that failed from being retried by every hook.

`allow_low_ports` writes a systemd drop-in that lets the service's unprivileged user bind ports
below 1024; the packaged units give it no capabilities (and prometheus.service also sets
`PrivateUsers=true`, under which a capability would not reach the host's network namespace).

No ops import: workload modules call this, and it runs on a real systemd machine in
tests/machine.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import shlex
import subprocess
import time
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from charmlibs import systemd

from lab_monitoring import files

logger = logging.getLogger(__name__)

# Where drop-ins for packaged units go (tests point it elsewhere).
SYSTEMD_DIR = Path("/etc/systemd/system")
DROPIN_NAME = "juju-low-ports.conf"
LOW_PORTS_DROPIN = """\
# Written by the {charm} charm: its port is below 1024, which the packaged unit's
# unprivileged user cannot bind without this capability. Removed when the port is 1024 or more.
[Service]
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
# Under PrivateUsers=true the capability would only hold in a private user namespace, which
# does not own the host's network namespace, and the bind would still be refused.
PrivateUsers=no
"""


class StartError(Exception):
    """The service died while starting; the message says why, from its own log."""


class Outcome(enum.Enum):
    """How a start ended."""

    UP = "up"  # the service answers its readiness check
    STARTING = "starting"  # alive but not ready when the time limit passed
    FAILED = "failed"  # it died (systemd restarting it, or given up)


@dataclasses.dataclass(frozen=True)
class Started:
    """The outcome of a start, and the service's own journal lines since it was asked to start."""

    outcome: Outcome
    log: Sequence[str] = ()


def state(service: str) -> dict[str, str]:
    """Return systemd's view of a unit: ActiveState, SubState, NRestarts, MainPID."""
    out = subprocess.run(
        [
            "systemctl",
            "show",
            service,
            "--property=ActiveState,SubState,NRestarts,MainPID",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def start(
    service: str,
    ready: Callable[[], bool],
    *,
    restart: bool = False,
    timeout: float = 30.0,
    interval: float = 0.2,
) -> Started:
    """Start (enable first) or restart `service`, and wait until it is up, failed or slow.

    `ready` is the service's own readiness check (an HTTP request, say); it must return
    quickly and never raise. A unit that systemd gave up on earlier is reset first, so a fixed
    configuration starts at once instead of waiting out systemd's start limit.

    Raises:
        charmlibs.systemd.SystemdError: systemctl itself refused (no such unit, say).
    """
    cursor = journal_cursor()
    subprocess.run(["systemctl", "reset-failed", service], capture_output=True, check=False)
    if restart:
        systemd.service_restart(service)
    else:
        systemd.service_enable("--now", service)
    deadline = time.monotonic() + timeout
    while True:
        if _died(state(service)):
            return Started(Outcome.FAILED, _settled_log(service, cursor))
        # Check again after `ready`: another process holding the port could answer for a
        # service that is dying meanwhile.
        if ready() and not _died(current := state(service)) and current["ActiveState"] == "active":
            return Started(Outcome.UP)
        if time.monotonic() >= deadline:
            return Started(Outcome.STARTING, service_log(service, cursor))
        time.sleep(interval)


class Health(enum.Enum):
    """How a service is doing right now, as its user would judge it."""

    UP = "up"  # alive and answering its readiness check
    STARTING = "starting"  # alive, not ready yet, and not crashing
    FAILING = "failing"  # crashing: in systemd's restart loop, or given up on
    STOPPED = "stopped"  # not running, and not because it crashed


def health(service: str, ready: Callable[[], bool]) -> Health:
    """Return how `service` is doing, whatever point of systemd's restart loop it is at.

    `systemctl is-active` alone cannot tell: while systemd restarts a process that keeps dying
    (under `Restart=on-failure`, five tries in ten seconds by default), the unit is `active`
    for the few dozen milliseconds each process lives, `activating` (SubState `auto-restart`) in
    between, and `failed` once systemd gives up. Measured on jammy's prometheus.service with
    its port taken: 40% of the loop reads `active`. So a live process that does not answer
    `ready` is only "starting" if systemd has not restarted it since it was last started;
    a process that answers is up even after earlier crashes (systemd brought it back).
    """
    unit = state(service)
    active, sub = unit.get("ActiveState"), unit.get("SubState")
    if active == "failed" or sub == "auto-restart":
        return Health.FAILING
    if active not in ("active", "activating", "reloading"):
        return Health.STOPPED
    if ready():
        return Health.UP
    if unit.get("NRestarts", "0") not in ("", "0"):
        return Health.FAILING  # alive this instant, between two crashes
    return Health.STARTING


def confirmed_start(
    service: str,
    ready: Callable[[], bool],
    reason: Callable[[Sequence[str]], str],
    *,
    restart: bool = False,
    timeout: float = 30.0,
) -> bool:
    """Start (or restart) `service` and wait for the outcome: True if up, False if still starting.

    `reason` turns the service's own log lines since the start into one line saying why it died.

    Raises:
        StartError: it died (a taken port, a bad flag, ...); the message is `reason`'s.
        charmlibs.systemd.SystemdError: systemctl itself refused (no such unit, say).
    """
    started = start(service, ready, restart=restart, timeout=timeout)
    if started.outcome is Outcome.FAILED:
        raise StartError(reason(started.log))
    return started.outcome is Outcome.UP


# A start that failed is not tried again with the same settings for this long: systemd has
# already retried it, and every hook (update-status included) would otherwise start a doomed
# process again. Changed settings (a new port, say) are tried at once.
START_RETRY_SECONDS = 3600


class StartGuard:
    """A charm's memory of its last failed start, so that hooks do not retry it every time.

    It lives in a mapping the charm persists between hooks (a StoredState dict): `failure`, why
    the last start failed ("" once one worked); `settings`, what that start used (the flags, or a
    digest of a configuration file); `at`, when it failed (time.time()).
    """

    def __init__(self, record: MutableMapping[str, Any]):
        self._record = record

    @property
    def failure(self) -> str:
        """Why the last start failed; "" if the last one worked (or none was made)."""
        return str(self._record.get("failure", ""))

    def held_back(self, settings: str, now: float) -> bool:
        """Return True while the last start failed with these `settings` under an hour ago."""
        return (
            bool(self.failure)
            and self._record.get("settings") == settings
            and now - float(self._record.get("at", 0.0)) < START_RETRY_SECONDS
        )

    def start(self, settings: str, start: Callable[[], bool], now: float) -> Outcome | None:
        """Run `start` (see confirmed_start) unless held back, and remember a failure.

        Returns how it went: UP, STARTING or FAILED (the cause is then `failure`), or None
        when it was held back. systemctl refusing (SystemdError) is not a failed start of the
        service: it propagates and nothing is recorded.
        """
        if self.held_back(settings, now):
            return None
        try:
            up = start()
        except StartError as e:
            logger.error("%s", e)
            self._record.update(failure=str(e), settings=settings, at=now)
            return Outcome.FAILED
        self.forget()
        return Outcome.UP if up else Outcome.STARTING

    def forget(self) -> None:
        """The service is up (whoever started it): an earlier failure has passed."""
        if self.failure:
            self._record["failure"] = ""


def stop(service: str, charm: str) -> None:
    """Stop and disable `service`, and remove the charm's low-port drop-in.

    A service that is already gone is not an error; systemctl's complaints are logged.
    """
    try:
        systemd.service_disable("--now", service)
    except systemd.SystemdError as e:
        logger.warning("could not stop %s: %s", service, e)
    try:
        allow_low_ports(service, False, charm)
    except systemd.SystemdError as e:
        logger.warning("could not reload systemd after removing the drop-in: %s", e)


def service_log(service: str, after_cursor: str | None = None, lines: int = 200) -> list[str]:
    """Return the service process's own journal lines (not systemd's), oldest first."""
    command = [
        "journalctl",
        f"_SYSTEMD_UNIT={service}.service",
        "--output=cat",
        "--no-pager",
        f"--lines={lines}",
    ]
    if after_cursor:
        command.append(f"--after-cursor={after_cursor}")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return [line for line in result.stdout.splitlines() if line.strip()]


def logfmt(line: str) -> dict[str, str]:
    """Parse one logfmt line (`key=value key="quoted value"`) as Go services write them."""
    try:
        words = shlex.split(line, posix=True)
    except ValueError:  # an unbalanced quote: not logfmt
        return {}
    return dict(word.split("=", 1) for word in words if "=" in word)


def allow_low_ports(service: str, allow: bool, charm: str) -> bool:
    """Install (or remove) the drop-in that lets `service` bind ports below 1024.

    Returns True if anything changed; systemd has then re-read its units, and the service needs
    a restart to run with the new capability.
    """
    dropin = SYSTEMD_DIR / f"{service}.service.d" / DROPIN_NAME
    if allow:
        changed = files.write(dropin, LOW_PORTS_DROPIN.format(charm=charm), mode=0o644)
    else:
        changed = dropin.exists()
        dropin.unlink(missing_ok=True)
    if changed:
        systemd.daemon_reload()
    return changed


def _died(unit: dict[str, str]) -> bool:
    """Return True if systemd shows the process died since it was (re)started."""
    return (
        unit.get("ActiveState") in ("failed", "inactive")
        or unit.get("SubState") == "auto-restart"
        # A restart (or start after reset-failed) zeroes the counter, so any restart is a crash.
        or unit.get("NRestarts", "0") not in ("", "0")
    )


def journal_cursor() -> str | None:
    """Return the journal's current end, to read only what is logged after it (None if empty)."""
    out = subprocess.run(
        ["journalctl", "--lines=0", "--show-cursor", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in out.splitlines():
        if line.startswith("-- cursor: "):
            return line.removeprefix("-- cursor: ").strip()
    return None


def _settled_log(service: str, cursor: str | None, wait: float = 1.0) -> list[str]:
    """Return the service's log since `cursor`, giving journald a moment to catch up.

    A process's last lines reach journald through a pipe, a little after systemd saw it exit.
    """
    deadline = time.monotonic() + wait
    lines = service_log(service, cursor)
    while not lines and time.monotonic() < deadline:
        time.sleep(0.1)
        lines = service_log(service, cursor)
    return lines
