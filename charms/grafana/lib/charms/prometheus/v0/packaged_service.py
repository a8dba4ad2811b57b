"""A service from an Ubuntu package, started so that the charm knows whether it came up.

The packaged units these charms drive (prometheus, grafana-server, prometheus-node-exporter) are
`Type=simple` with `Restart=on-failure`: `systemctl start` and `is-active` succeed the moment
the process forks, even when it dies a millisecond later because its port is taken, and systemd
then restarts it until its start limit gives up. So `start` here waits, within the hook, until
the service either answers its own readiness check (it is up), or systemd shows it died (it
failed: the service's own journal lines since the start are returned so the charm can say why),
or a time limit passes while it is still alive and not ready (it is starting, slowly).

`install` installs the package without its recommended packages, saying in one line why apt
failed when it does.

`allow_low_ports` writes a systemd drop-in that lets the service's unprivileged user bind ports
below 1024; the packaged units give it no capabilities (and prometheus.service also sets
`PrivateUsers=true`, under which a capability would not reach the host's network namespace).

No ops import: workload modules call this, and it is tested on a real systemd machine
(tests/machine). Copied byte for byte into every charm that uses it.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from charmlibs import apt, systemd

# The unique identifier of this library on Charmhub.
LIBID = "530c585821d540c08d0bc47135aced22"
# Increment on an incompatible API change.
LIBAPI = 0
# Increment on every released change.
LIBPATCH = 5

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


class InstallError(Exception):
    """apt could not install the package; the message is apt's own error line."""


def install(package: str) -> None:
    """Install an archive package without its recommended packages.

    charmlibs-apt cannot pass --no-install-recommends (its install options are fixed), and the
    packages these charms use recommend more than a lab asked for (prometheus recommends
    prometheus-node-exporter; prometheus-node-exporter recommends a set of textfile collectors
    run by timers). So the cache refresh goes through charmlibs-apt and the install through
    apt-get, with the non-interactive, keep-my-config options charmlibs-apt uses. A package's
    postinst may enable and start its service (Debian's and Ubuntu's do).

    Raises:
        InstallError: apt failed (no network, no such package in the configured archive, ...).
    """
    try:
        apt.update()
    except subprocess.CalledProcessError as e:
        # charmlibs-apt lets apt-get write to the hook's output: juju debug-log has the rest.
        raise InstallError(f"apt-get update failed (exit {e.returncode})") from None
    result = subprocess.run(
        [
            "apt-get",
            "install",
            "--yes",
            "--no-install-recommends",
            "--option=Dpkg::Options::=--force-confold",
            package,
        ],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise InstallError(apt_error(result.stderr))


def apt_error(stderr: str) -> str:
    """Return the line of apt's output that says why it failed (its last `E:` line)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E:")]
    return (errors or lines or ["apt-get failed without a message"])[-1]


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
    (`Restart=on-failure`, five tries in ten seconds by default), the unit is `active` for the
    few dozen milliseconds each process lives, `activating` (SubState `auto-restart`) in
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


# A start that failed is not tried again with the same settings for this long: systemd has
# already retried it, and every hook (update-status included) would otherwise start a doomed
# process again. Changed settings (a new port, say) are tried at once.
START_RETRY_SECONDS = 3600


def start_held_back(
    failure: str, failed_settings: str, failed_at: float, settings: str, now: float
) -> bool:
    """Return True while the last start failed with these `settings` under an hour ago.

    `failure` is the charm's record of why the last start failed ("" after one that worked),
    `failed_settings` and `failed_at` what it was started with and when (time.time()).
    """
    return bool(failure) and failed_settings == settings and now - failed_at < START_RETRY_SECONDS


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
    wanted = LOW_PORTS_DROPIN.format(charm=charm) if allow else None
    current = dropin.read_text() if dropin.exists() else None
    if current == wanted:
        return False
    if wanted is None:
        dropin.unlink()
    else:
        dropin.parent.mkdir(parents=True, exist_ok=True)
        dropin.write_text(wanted)
    systemd.daemon_reload()
    return True


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
