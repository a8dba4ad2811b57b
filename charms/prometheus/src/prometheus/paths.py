"""Where the Prometheus package keeps its files; tests point `PATHS` at a temporary directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

# The directory of rule files the charm owns, relative to prometheus.yml (and named there).
RULES_DIR_NAME = "juju-rules"
# The first line of every file the charm writes.
HEADER = "# Managed by the prometheus charm: edits are overwritten. Use its config instead.\n"
# The system group the package creates; Prometheus runs with it.
GROUP = "prometheus"


@dataclasses.dataclass(frozen=True)
class Paths:
    """Where the workload's files live (the Debian/Ubuntu package's layout by default)."""

    config_dir: Path = Path("/etc/prometheus")
    defaults: Path = Path("/etc/default/prometheus")
    tsdb: Path = Path("/var/lib/prometheus/metrics2")

    @property
    def config(self) -> Path:
        """prometheus.yml."""
        return self.config_dir / "prometheus.yml"

    @property
    def remote_write_dir(self) -> Path:
        """The directory of the password or token the remote writes read (root:prometheus)."""
        return self.config_dir / "juju-remote-write"

    @property
    def rules_dir(self) -> Path:
        """The directory of rule files the charm owns (and prunes)."""
        return self.config_dir / RULES_DIR_NAME


# Read at call time by every module (`paths.PATHS`), so one monkeypatch moves them all.
PATHS = Paths()
