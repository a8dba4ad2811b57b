"""Stand-ins for the systemd side of a reload, for a Prometheus a test or benchmark started itself.

The charm reloads with `systemctl reload prometheus` and reads Prometheus's reasons from the
journal (prometheus.signal_reload and prometheus.journal). Without systemd, a Prometheus started
as a plain process gets the same SIGHUP directly, and its log output stands in for journald;
everything else in prometheus.reload (the confirmation from /metrics) stays real. tests/machine
runs the real systemd path.
"""

from __future__ import annotations

import os
import pathlib
import signal
from collections.abc import Callable


def sighup(pid: Callable[[], int]) -> Callable[[], None]:
    """Stand in for `prometheus.signal_reload`: SIGHUP, as the unit's ExecReload sends it.

    `pid` says which process is Prometheus at the time of the call (a restart changes it).
    """
    return lambda: os.kill(pid(), signal.SIGHUP)


def journal_of(log: pathlib.Path) -> Callable[[str | None], tuple[list[str], str]]:
    """Stand in for `prometheus.journal` with a log file; the cursor is a byte offset in it."""

    def journal(after: str | None) -> tuple[list[str], str]:
        text = log.read_bytes()
        end = text.rfind(b"\n") + 1  # whole lines only
        if after is None:
            return [], str(end)
        return text[int(after or 0) : end].decode(errors="replace").splitlines(), str(end)

    return journal
