"""Where the workload's files live: the Debian/Ubuntu package's layout.

Other modules read `paths.PATHS` when they run, so one `monkeypatch.setattr(paths, "PATHS",
...)` moves every file of a test to a temporary directory.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Paths:
    """Every file location of the workload."""

    # The package's default --config.file is /etc/prometheus/alertmanager.yml: the charm writes
    # its own there, so that the package's example (fake SMTP, team routes) never runs.
    config_dir: Path = Path("/etc/prometheus")
    # EnvironmentFile= of the packaged unit: ExecStart=/usr/bin/prometheus-alertmanager $ARGS.
    defaults: Path = Path("/etc/default/prometheus-alertmanager")
    # The package's default --storage.path (silences and the notification log).
    storage: Path = Path("/var/lib/prometheus/alertmanager")

    @property
    def config(self) -> Path:
        """alertmanager.yml."""
        return self.config_dir / "alertmanager.yml"

    @property
    def templates(self) -> Path:
        """The notification templates of the `templates-file` option, beside alertmanager.yml."""
        return self.config_dir / TEMPLATES_NAME


# alertmanager.yml names the templates file by this relative path: Alertmanager and amtool
# resolve it against the directory of the configuration file (config.LoadFile's
# resolveFilepaths, 0.23 to 0.26), so a staged copy is checked against staged templates.
TEMPLATES_NAME = "alertmanager.tmpl"

PATHS = Paths()
