"""The Grafana charm's options, validated where they are parsed (no ops here)."""

from __future__ import annotations

import dataclasses
import re
import urllib.parse

_ADMIN_USER = re.compile(r"[A-Za-z0-9._@-]{1,64}")
# What a root URL may contain in grafana.ini: no whitespace, `;`, `#` or `$` (ini comments and
# Grafana's variable expansion).
_URL_CHARS = re.compile(r"[A-Za-z0-9._~:/%+,=&@!*'()\[\]-]+")
ROLES = ("Viewer", "Editor", "Admin")
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")
# The Grafana majors the charm is checked against (GRAFANA-FACTS.md: the CLI by absolute path,
# the packaged unit and paths, /api/health, the failure messages, the .deb's dependencies).
GRAFANA_MAJORS = ("10", "11", "12", "13")


@dataclasses.dataclass(frozen=True, kw_only=True)
class GrafanaConfig:
    """The charm's options, validated; a message names the option and the bad value."""

    port: int = 3000
    admin_user: str = "admin"
    allow_anonymous_access: bool = False
    anonymous_role: str = "Viewer"
    root_url: str = ""
    log_level: str = "info"
    # The newest major every fact the charm relies on was checked for. 13.x's postinst could
    # not be read (GRAFANA-FACTS item 6): whether a fresh install still leaves grafana-server
    # stopped, which the charm's "never admin/admin" rests on, is assumed there, not checked.
    grafana_version: str = "12"

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} is not a TCP port (1-65535)")
        if not _ADMIN_USER.fullmatch(self.admin_user):
            raise ValueError(
                f"admin-user: {self.admin_user!r} must be 1-64 letters, digits or . _ @ -"
            )
        if self.anonymous_role not in ROLES:
            raise ValueError(
                f"anonymous-role: {self.anonymous_role!r} is not one of {', '.join(ROLES)}"
            )
        if self.log_level not in LOG_LEVELS:
            raise ValueError(
                f"log-level: {self.log_level!r} is not one of {', '.join(LOG_LEVELS)}"
            )
        if self.root_url and not _is_root_url(self.root_url):
            shown = self.root_url if len(self.root_url) <= 60 else self.root_url[:60] + "..."
            raise ValueError(
                f"root-url: {shown!r} is not an http(s) URL without query or fragment"
            )
        if self.grafana_version not in GRAFANA_MAJORS:
            version = self.grafana_version
            shown = version if len(version) <= 20 else version[:20] + "..."
            raise ValueError(
                f"grafana-version: {shown!r} is not one of {', '.join(GRAFANA_MAJORS)} "
                "(a Grafana major version)"
            )

    @property
    def grafana_major(self) -> int:
        """The major version of Grafana to install from its repository."""
        return int(self.grafana_version)


def _is_root_url(url: str) -> bool:
    if len(url) > 2048 or not _URL_CHARS.fullmatch(url):
        return False
    parts = urllib.parse.urlsplit(url)
    try:
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query
