"""Where Grafana's files live on the machine: the .deb's layout and the charm's own files.

Every module reads locations from `PATHS` when it runs, so a test points them all at a
temporary directory with one monkeypatch (`Paths.under`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True, kw_only=True)
class Paths:
    """Every location the charm reads or writes, and the group that may read its secrets."""

    # GRAFANA_HOME of the packaged unit (/etc/default/grafana-server): the binary, conf/.
    home: Path = Path("/usr/share/grafana")
    config_dir: Path = Path("/etc/grafana")
    # DATA_DIR: the sqlite database, plugins and the charm's dashboards.
    data: Path = Path("/var/lib/grafana")
    logs: Path = Path("/var/log/grafana")
    keyring: Path = Path("/etc/apt/keyrings/grafana.asc")
    apt_source: Path = Path("/etc/apt/sources.list.d/grafana.list")
    # apt_preferences(5): a file in preferences.d named without an extension is read.
    apt_preferences: Path = Path("/etc/apt/preferences.d/grafana")
    # Files that hold secrets are root's and this group's (grafana-server runs in it).
    group: str = "grafana"

    @classmethod
    def under(cls, root: Path, *, group: str) -> Paths:
        """The same layout below `root` (for tests), its secrets readable by `group`."""
        defaults = cls()
        moved = {
            field.name: root / str(getattr(defaults, field.name)).lstrip("/")
            for field in dataclasses.fields(cls)
            if field.name != "group"
        }
        return cls(**moved, group=group)

    @property
    def binary(self) -> Path:
        """The Grafana binary, by absolute path.

        The 11.x and 12.x .debs put no `grafana` on PATH (only the /usr/sbin/grafana-server and
        /usr/sbin/grafana-cli wrappers), and 13.x's /usr/sbin/grafana is a wrapper that adds
        --homepath and --config itself. bin/grafana under GRAFANA_HOME is in every .deb from
        10.x to 13.x (grafana-build fpm/build.go copies the release tarball, bin/ included;
        grafana/grafana#58286 made it one binary with `cli` and `server`; the 13.x wrapper
        packaging/wrappers/grafana execs $GRAFANA_HOME/bin/grafana).
        """
        return self.home / "bin" / "grafana"

    @property
    def config(self) -> Path:
        """grafana.ini."""
        return self.config_dir / "grafana.ini"

    @property
    def admin_password(self) -> Path:
        """The password Grafana gives its first administrator when it creates its database.

        grafana.ini names it with $__file{...} (pkg/setting/expanders.go); the grafana user
        reads it.
        """
        return self.config_dir / "admin-password"

    @property
    def database_password(self) -> Path:
        """The PostgreSQL password grafana.ini's [database] names with $__file{...}."""
        return self.config_dir / "database-password"

    @property
    def secret_key(self) -> Path:
        """The application's [security] secret_key, named with $__file{...}."""
        return self.config_dir / "secret-key"

    @property
    def sqlite(self) -> Path:
        """Grafana's own sqlite database (conf/defaults.ini [database] path, under data)."""
        return self.data / "grafana.db"

    @property
    def provisioning(self) -> Path:
        """Grafana's provisioning directory (PROVISIONING_CFG_DIR)."""
        return self.config_dir / "provisioning"

    @property
    def datasources(self) -> Path:
        """The charm's data source provisioning file."""
        return self.provisioning / "datasources" / "juju.yaml"

    @property
    def dashboard_provider(self) -> Path:
        """The charm's dashboard provider, which points Grafana at `dashboards`."""
        return self.provisioning / "dashboards" / "juju.yaml"

    @property
    def dashboards(self) -> Path:
        """The directory of the dashboards the charm ships (and prunes)."""
        return self.data / "dashboards" / "juju"

    @property
    def plugins(self) -> Path:
        """PLUGINS_DIR."""
        return self.data / "plugins"


PATHS = Paths()
