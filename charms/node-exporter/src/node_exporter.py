"""The node exporter workload: the Ubuntu package, its flags file, the service, and its sharing.

Nothing here knows about Juju's API: the charm passes in its unit name and settings. Files are
written compare-then-write and every writer reports whether it changed anything, so the charm
restarts the exporter only when its flags changed. Where the files live is `PATHS`; tests point
it at a temporary directory.

Sharing one exporter. A machine has one `prometheus-node-exporter` service and one flags file,
but it can carry several node-exporter units: one per principal application placed on it, of
the same node-exporter application or of different ones. Each unit writes a *claim* (its unit
name and the flags it wants) into `PATHS.claims`; the *owner* is the live claim whose unit sorts
first (application name, then unit number), and the flags file always holds the owner's flags,
whichever unit writes it. So every unit writes the same flags (no restart ping-pong), the
exporter keeps running while any claim is left, and the unit that removes the last claim stops
it. A claim whose unit's agent directory (`/var/lib/juju/agents/unit-<app>-<n>`) is gone is
stale, from a unit removed without its remove hook, and is dropped: Juju removes that directory
when it takes a unit off the machine (juju/juju internal/worker/deployer/nested.go,
RecallUnit). Hooks of the units on one machine never run at the same time (Juju's machine
lock: https://documentation.ubuntu.com/juju/latest/reference/resource-compute/list-of-commands-available-on-a-compute-resource-provisioned-by-juju/list-of-juju-introspect-macros/juju_machine_lock),
and every file is replaced atomically, so a reader never sees half a claim.

Starting. The packaged unit is `Type=simple` with `Restart=on-failure`, so `systemctl start`
succeeds even for an exporter that dies at once (its port taken, say). `start` and `restart`
therefore wait, within the hook, until the exporter answers `GET /metrics` or systemd shows it
died, and say why from the exporter's own log (the shared packaged_service library).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab_monitoring import files, loopback, packaged_service, packages

logger = logging.getLogger(__name__)

PACKAGE = "prometheus-node-exporter"
SERVICE = "prometheus-node-exporter"
CHARM = "node-exporter"
BINARY = "prometheus-node-exporter"
DEFAULT_PORT = 9100  # the exporter's own default, when its flags do not name one
LOG_LEVELS = ("debug", "info", "warn", "error")
_HEADER = "# Managed by the node-exporter charm: edits are overwritten. Use its config instead.\n"
_COLLECTOR = re.compile(r"[a-z][a-z0-9_]*")
# The help line every collector registers, in node_exporter 1.3.1 and 1.5.0 alike
# (collector/collector.go, registerCollector): "Enable the %s collector (default: %s)."
_HELP_LINE = re.compile(
    r"--collector\.([a-z0-9_]+)\s+Enable the \1 collector \(default:\s*(enabled|disabled)\)"
)
_UNIT = re.compile(r"([a-z][a-z0-9-]*)/([0-9]+)")


@dataclasses.dataclass(frozen=True)
class Paths:
    """Where the workload's files live (the Debian/Ubuntu package's layout by default)."""

    defaults: Path = Path("/etc/default/prometheus-node-exporter")
    claims: Path = Path("/var/lib/node-exporter-charm/claims")
    # Juju's unit agent directories; None (or absent) means no staleness check.
    agents: Path | None = Path("/var/lib/juju/agents")


PATHS = Paths()


class InvalidError(ValueError):
    """A setting is not acceptable; the message says why, quoting the value."""


InstallError = packages.InstallError
# The exporter did not come up; the message says why, from its own log.
StartError = packaged_service.StartError


@dataclasses.dataclass(frozen=True)
class Claim:
    """One unit's wish for the machine's exporter: the flags it wants."""

    unit: str
    args: tuple[str, ...]

    @property
    def application(self) -> str:
        """The unit's application."""
        return self.unit.rpartition("/")[0]

    @property
    def tag(self) -> str:
        """The unit's Juju tag, which names its agent directory and its claim file."""
        return "unit-" + self.unit.replace("/", "-")

    def sort_key(self) -> tuple[str, int]:
        """Owner order: application name, then unit number."""
        return (self.application, int(self.unit.rpartition("/")[2]))


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


# --- settings and flags -------------------------------------------------------------------


def parse_collectors(text: str) -> dict[str, bool]:
    """Parse `processes,-wifi` into {"processes": True, "wifi": False}.

    Raises:
        InvalidError: a word is not a collector name, or a collector is switched both ways.
    """
    switches: dict[str, bool] = {}
    for word in text.replace(",", " ").split():
        enable = not word.startswith("-")
        name = word.removeprefix("-")
        if not _COLLECTOR.fullmatch(name):
            raise InvalidError(
                f"{json.dumps(word)} is not a collector name (lower-case letters, digits and _;"
                ' "-" in front to switch it off)'
            )
        if switches.get(name, enable) != enable:
            raise InvalidError(f"{json.dumps(name)} is switched both on and off")
        switches[name] = enable
    return switches


def flags(*, port: int, collectors: Mapping[str, bool], log_level: str) -> list[str]:
    """Return the command-line flags for these settings (only flags 1.3.1 knows).

    Collectors come sorted, so the same settings always give the same flags.
    """
    args = [f"--web.listen-address=:{port}", f"--log.level={log_level}"]
    for name in sorted(collectors):
        args.append(f"--collector.{name}" if collectors[name] else f"--no-collector.{name}")
    return args


def port_of(args: Sequence[str]) -> int | None:
    """Return the port a set of flags listens on, None if they do not say."""
    for arg in args:
        match = re.fullmatch(r"--web\.listen-address=\S*:([0-9]+)", arg)
        if match:
            return int(match.group(1))
    return None


def write_flags(args: Sequence[str]) -> bool:
    """Write the flags to the file the packaged systemd unit reads; return True if it changed.

    Raises:
        ValueError: a flag would not survive systemd's word splitting (a bug in the caller).
    """
    return files.write(PATHS.defaults, files.args_line(args, _HEADER))


# --- sharing the machine's exporter -------------------------------------------------------


def claim(unit: str, args: Sequence[str]) -> Claim:
    """Record that `unit` wants the exporter to run with `args`; return the owner's claim.

    The owner's flags are what the flags file must hold (see the module docstring).

    Raises:
        ValueError: the unit name or a flag is malformed (a bug in the caller).
    """
    mine = _claim(unit, args)
    files.write(PATHS.claims / f"{mine.tag}.json", json.dumps({"unit": unit, "args": list(args)}))
    owner = live_claims(unit)[0]
    return owner


def release(unit: str) -> Claim | None:
    """Withdraw `unit`'s claim; return the owner that is left, None if no claim is left."""
    mine = _claim(unit, ())
    (PATHS.claims / f"{mine.tag}.json").unlink(missing_ok=True)
    left = live_claims()
    if not left:
        with contextlib.suppress(OSError):
            PATHS.claims.rmdir()
    return left[0] if left else None


def live_claims(me: str | None = None) -> list[Claim]:
    """Return the live claims, owner first; stale and unreadable ones are dropped with a warning.

    `me` is the unit asking: it is alive whatever its agent directory says.
    """
    found = []
    for path in sorted(PATHS.claims.glob("*.json")) if PATHS.claims.is_dir() else []:
        try:
            data = json.loads(path.read_text())
            found_claim = _claim(data["unit"], data["args"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            logger.warning("ignoring unreadable claim %s: %s", path.name, e)
            continue
        if found_claim.unit != me and _is_stale(found_claim):
            logger.warning(
                "dropping the claim of %s, which is no longer on this machine", found_claim.unit
            )
            path.unlink(missing_ok=True)
            continue
        found.append(found_claim)
    return sorted(found, key=Claim.sort_key)


def _claim(unit: str, args: Sequence[str]) -> Claim:
    if not isinstance(unit, str) or not _UNIT.fullmatch(unit):
        raise ValueError(f"not a unit name: {unit!r}")
    if not isinstance(args, (list, tuple)):
        raise ValueError(f"flags must be a list, not {args!r}")
    files.args_line(args, "")  # raises ValueError for an unsafe flag
    return Claim(unit, tuple(args))


def _is_stale(found: Claim) -> bool:
    agents = PATHS.agents
    if agents is None or not agents.is_dir():
        return False  # not a Juju machine: nothing to check against
    return not (agents / found.tag).is_dir()


# --- the service --------------------------------------------------------------------------


def health() -> packaged_service.Health:
    """Return whether the exporter is up, starting, failing (crashing) or stopped."""
    return packaged_service.health(SERVICE, ready)


def ready() -> bool:
    """Return True if the exporter answers `GET /metrics` on the port its flags file names."""
    return loopback.get_status(f"http://127.0.0.1:{_local_port()}/metrics", timeout=5) == 200


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


# The Go error for a port that cannot be bound: "listen tcp :80: bind: permission denied".
_LISTEN_ERROR = re.compile(r"listen tcp (?P<host>\S*?):(?P<port>\d+): bind: (?P<why>.+)")
# kingpin's refusal of the command line, printed before any logging starts.
_USAGE_ERROR = re.compile(r"\S+: error: (?P<why>.+?)(?:, try --help)?")


def failure_reason(log: Sequence[str]) -> str:
    """Say in one line why the exporter died, from its own log lines (oldest first)."""
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
            where = f"{listen['host']}:{listen['port']}"
            return f"{SERVICE} cannot listen on {where}: {listen['why']}"
        usage = _USAGE_ERROR.fullmatch(text)
        return f"{SERVICE} failed to start: {usage['why'] if usage else text}"
    return f"{SERVICE} failed to start (see journalctl -u {SERVICE})"


def _local_port() -> int:
    """Return the port the flags file makes the exporter listen on."""
    return port_of(files.read_args(PATHS.defaults)) or DEFAULT_PORT
