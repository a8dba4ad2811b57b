"""The prometheus-alertmanager systemd service: started, reloaded and stopped, each confirmed.

The packaged unit (Debian's, in Ubuntu 22.04's 0.23 and Debian 12's 0.25 alike) is
`Type=simple`, `Restart=on-failure`, `User=prometheus`, `EnvironmentFile=/etc/default/
prometheus-alertmanager`, `ExecStart=/usr/bin/prometheus-alertmanager $ARGS`,
`ExecReload=/bin/kill -HUP $MAINPID` (systemctl cat on both). Starting and health go through
lab_monitoring.packaged_service; Alertmanager's `/-/ready` is its readiness check.

The charm reloads with SIGHUP through systemd, never with Alertmanager's `POST /-/reload`,
which needs no credentials. Alertmanager serves that endpoint anyway (and its API creates
silences for anyone), so its web port must not be exposed to untrusted networks.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Sequence

from charmlibs import systemd
from lab_monitoring import files, loopback, packaged_service

from alertmanager import flags, masking, package, paths

# Alertmanager's own record of its last reload, on its /metrics page (config/coordinator.go,
# 0.23 to 0.26): "successful" drops to 0 on a refused reload, the timestamp moves on a good one.
_RELOAD_OK = "alertmanager_config_last_reload_successful"
_RELOAD_OK_AT = "alertmanager_config_last_reload_success_timestamp_seconds"
# What it logs when it refuses a reload (config/coordinator.go, Reload): the file does not
# load (level=error), or loads but a subscriber refuses it (templates that do not parse; this
# line has no level).
_REFUSALS = (
    'msg="Loading configuration file failed"',
    'msg="one or more config change subscribers failed to apply new config"',
)
# The Go error for a port that cannot be bound: "listen tcp :9093: bind: address already in use".
_LISTEN_ERROR = re.compile(r"listen (?:tcp|udp) (?P<host>\S*?):(?P<port>\d+): bind: (?P<why>.+)")
RELOAD_TIMEOUT = 30.0

StartError = packaged_service.StartError
Health = packaged_service.Health


class ReloadError(Exception):
    """Alertmanager refused to reload; the message is its reason, secrets masked."""


def health() -> Health:
    """Return whether Alertmanager is up, starting, failing (crashing) or stopped."""
    return packaged_service.health(package.SERVICE, ready)


def ready() -> bool:
    """Return True if Alertmanager answers `/-/ready` (under its route prefix)."""
    return loopback.get_status(flags.local_url("/-/ready"), timeout=2) == 200


def start() -> bool:
    """Unmask, enable and start the service; True once it is ready, False if still starting.

    Raises:
        StartError: it died (a taken port, ...); the message says why, secrets masked.
    """
    _unmask()
    return packaged_service.confirmed_start(package.SERVICE, ready, failure_reason)


def restart() -> bool:
    """Restart the service (needed for new flags); return and raise as `start` does."""
    _unmask()
    return packaged_service.confirmed_start(package.SERVICE, ready, failure_reason, restart=True)


def allow_low_ports(port: int) -> bool:
    """Let Alertmanager bind `port` if it is below 1024; True if the service needs a restart."""
    return packaged_service.allow_low_ports(package.SERVICE, port < 1024, "alertmanager")


def stop() -> None:
    """Stop and disable the service, and remove the charm's drop-in and the install's mask."""
    # Unmasked first: systemctl refuses to disable a masked unit.
    _unmask()
    packaged_service.stop(package.SERVICE, "alertmanager")


def failure_reason(log: Sequence[str]) -> str:
    """Say in one line why Alertmanager died, from its own log lines (oldest first)."""
    for line in reversed(log):
        fields = packaged_service.logfmt(line)
        # A line without a level is an error too: a refusing subscriber logs none, and a
        # usage error is printed before logging starts ("...: error: unknown long flag").
        if fields.get("level", "error") not in ("error", "fatal"):
            continue
        text = ": ".join(filter(None, (fields.get("msg"), fields.get("err")))) or line.strip()
        listen = _LISTEN_ERROR.search(text)
        if listen:
            where = f"{listen['host']}:{listen['port']}"
            # The gossip listener fails as "unable to initialize gossip mesh: ...".
            what = " (cluster)" if "gossip" in text else ""
            reason = f"alertmanager cannot listen on {where}{what}: {listen['why']}"
        else:
            reason = f"alertmanager failed to start: {text}"
        return _redacted(reason)
    return f"alertmanager failed to start (see journalctl -u {package.SERVICE})"


def reload(timeout: float = RELOAD_TIMEOUT) -> float:
    """Make Alertmanager re-read alertmanager.yml and its templates; return the seconds it took.

    SIGHUP goes through systemd (`systemctl reload`: the unit's ExecReload), then the charm
    waits for Alertmanager's own word on /metrics: a reload that worked moves
    `alertmanager_config_last_reload_success_timestamp_seconds` with
    `alertmanager_config_last_reload_successful` at 1. A refusal cannot be told from a reload
    not done yet by the metrics alone once an earlier one failed, so the journal is read too,
    from a cursor taken before the signal, for the lines Alertmanager logs when it refuses.

    Raises:
        ReloadError: Alertmanager refused (its reason, secrets masked), did not confirm within
            `timeout` seconds, or was not running to get the signal (systemctl's words).
    """
    before = _reload_metrics()
    _, cursor = journal(None)
    started = time.monotonic()
    try:
        signal_reload()
    except systemd.SystemdError as e:
        text = str(e).rpartition("stderr:")[2].strip() or str(e)
        raise ReloadError(f"systemctl could not reload {package.SERVICE}: {text}") from None
    while True:
        after = _reload_metrics()
        if after and after[0] == 1 and (before is None or after[1] > before[1]):
            return time.monotonic() - started
        reason = refusal(journal(cursor)[0])
        if reason is not None:
            raise ReloadError(_redacted(reason))
        if time.monotonic() - started > timeout:
            raise ReloadError(
                f"alertmanager did not confirm the reload within {timeout:.0f}s"
                f" (see journalctl -u {package.SERVICE})"
            )
        time.sleep(0.05)


def signal_reload() -> None:
    """Ask systemd to reload Alertmanager: the packaged unit's `ExecReload=/bin/kill -HUP`."""
    systemd.service_reload(package.SERVICE)


def journal(after: str | None) -> tuple[list[str], str]:
    """Read Alertmanager's own journal lines after cursor `after`; return them and the cursor.

    `after=None` reads nothing and only takes a cursor (before the reload is signalled);
    `after=""` (the journal was empty when the cursor was taken) reads all of them.
    """
    if after is None:
        return [], packaged_service.journal_cursor() or ""
    return packaged_service.service_log(package.SERVICE, after or None), after


def refusal(lines: Sequence[str]) -> str | None:
    """Return Alertmanager's reason if these log lines hold a refused reload, else None."""
    for line in lines:
        if any(marker in line for marker in _REFUSALS):
            fields = packaged_service.logfmt(line)
            return fields.get("err") or fields.get("msg") or line.strip()
    return None


def _reload_metrics() -> tuple[float, float] | None:
    """Return Alertmanager's (last reload successful, its time), None if it does not answer."""
    try:
        # Built from our own flags file, the URL is always http://127.0.0.1:<port>/...
        with loopback.open_url(flags.local_url("/metrics"), timeout=5) as response:
            text = response.read().decode(errors="replace")
    except (OSError, ValueError):
        return None
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in (_RELOAD_OK, _RELOAD_OK_AT):
            with contextlib.suppress(ValueError):
                values[name] = float(value)
    if len(values) < 2:
        return None
    return values[_RELOAD_OK], values[_RELOAD_OK_AT]


def _redacted(text: str) -> str:
    """Mask the live configuration's secrets in a message from Alertmanager."""
    return masking.redact(text, masking.secrets_of(files.read(paths.PATHS.config)))


def _unmask() -> None:
    """Undo the mask the install put on the unit (nothing if it has none)."""
    subprocess.run(["systemctl", "unmask", package.SERVICE], capture_output=True, check=False)
