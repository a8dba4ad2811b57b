"""Where the workload's files live: the Debian/Ubuntu package's layout and the machine's /proc."""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Paths:
    """Every file location the workload modules read or write."""

    # The flags file named by the packaged unit's EnvironmentFile=.
    defaults: Path = Path("/etc/default/prometheus-node-exporter")
    # Machine-wide, so that every node-exporter unit of the machine finds the same claims.
    claims: Path = Path("/var/lib/node-exporter-charm/claims")
    # Juju's unit agent directories; None (or absent) means no staleness check.
    agents: Path | None = Path("/var/lib/juju/agents")
    # The kernel's view of sockets and processes (who holds a port).
    proc: Path = Path("/proc")


PATHS = Paths()
