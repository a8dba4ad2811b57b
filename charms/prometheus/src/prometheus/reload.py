"""Reloading Prometheus: SIGHUP through systemd, confirmed by Prometheus itself.

The lifecycle API stays off (it would let anyone who reaches the port stop Prometheus), so the
charm reloads with `systemctl reload` and then waits for Prometheus's own word: its /metrics
page for a reload that worked, its journal for one it refused and why.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Sequence

from charmlibs import systemd
from lab_monitoring import loopback, packaged_service

from prometheus import flags, service

RELOAD_TIMEOUT = 60.0
# Prometheus's own record of its last reload, on its /metrics page.
_RELOAD_OK = "prometheus_config_last_reload_successful"
_RELOAD_OK_AT = "prometheus_config_last_reload_success_timestamp_seconds"
# What Prometheus logs when a reload fails: each error (level=error, logfmt), then this line.
# cmd/prometheus/main.go, the SIGHUP case that calls reloadConfig, in 2.31.2 and 2.42.0 alike.
_RELOAD_FAILED = 'msg="Error reloading config"'
_LOGFMT_ERR = re.compile(r'\berr="((?:[^"\\]|\\.)*)"')


class ReloadError(Exception):
    """Prometheus refused to reload its configuration; the message is Prometheus's."""


def reload(timeout: float = RELOAD_TIMEOUT) -> float:
    """Make Prometheus re-read prometheus.yml and its rules; return how long it took (seconds).

    The signal goes through systemd (`systemctl reload`, the packaged unit's ExecReload sends
    SIGHUP), then the charm waits for Prometheus's own word. A reload that worked moves
    `prometheus_config_last_reload_success_timestamp_seconds` (and leaves
    `prometheus_config_last_reload_successful` at 1). A refused one cannot be told from one not
    done yet by the metrics alone: after a first refusal they stay as they are. So the journal
    is read too, from a cursor taken before the signal, for the error lines Prometheus logs
    when it refuses (at every log level: they are errors); they are its reason.

    Raises:
        ReloadError: Prometheus refused the configuration (the message is Prometheus's), did
            not confirm the reload within `timeout` seconds, or was not running to get it
            (systemctl's words: a process dying between two hooks' checks, say).
    """
    before = _reload_metrics()
    _, cursor = journal(None)
    started = time.monotonic()
    try:
        signal_reload()
    except systemd.SystemdError as e:
        raise ReloadError(f"systemctl could not reload prometheus: {_stderr(e)}") from None
    while True:
        after = _reload_metrics()
        if after and after[0] == 1 and (before is None or after[1] > before[1]):
            return time.monotonic() - started
        reason = _refusal(journal(cursor)[0])
        if reason is not None:
            raise ReloadError(reason)
        if time.monotonic() - started > timeout:
            raise ReloadError(
                f"Prometheus did not confirm the reload within {timeout:.0f}s"
                " (see journalctl -u prometheus)"
            )
        time.sleep(0.05)


def signal_reload() -> None:
    """Ask systemd to reload Prometheus: the packaged unit's `ExecReload=/bin/kill -HUP $MAINPID`.

    The unit is Debian's debian/prometheus.service, the same in jammy's 2.31.2+ds1 (its
    changelog from 2.31.1+ds1-1 to 2.42.0+ds-5 changes the unit only by After=time-sync.target).
    """
    systemd.service_reload(service.SERVICE)


def journal(after: str | None) -> tuple[list[str], str]:
    """Read Prometheus's own journal lines after cursor `after`; return them and the cursor.

    `after=None` reads nothing and only takes a cursor (before the reload is signalled);
    `after=""` (the journal was empty when the cursor was taken) reads all of them.
    """
    if after is None:
        return [], packaged_service.journal_cursor() or ""
    return packaged_service.service_log(service.SERVICE, after or None), after


def _stderr(error: systemd.SystemdError) -> str:
    """Return systemctl's own complaint from a SystemdError (its stderr line), else the error."""
    text = str(error)
    return text.rpartition("stderr:")[2].strip() or text


def _reload_metrics() -> tuple[float, float] | None:
    """Return Prometheus's (last reload successful, its time), or None if it does not answer."""
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


def _refusal(lines: Sequence[str]) -> str | None:
    """Return Prometheus's reason if these log lines hold a refused reload, else None."""
    errors = []
    for line in lines:
        if "level=error" not in line:
            continue
        match = _LOGFMT_ERR.search(line)
        if match:
            with contextlib.suppress(ValueError):
                errors.append(json.loads(f'"{match.group(1)}"'))  # logfmt quotes as JSON does
        if _RELOAD_FAILED in line:
            return "; ".join(dict.fromkeys(errors)) or line
    return None
