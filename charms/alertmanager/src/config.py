"""The charm's config options, validated where they are parsed.

Each error names the option and, for a short value, shows it as the operator typed it. The
contents of config-file and templates-file are never shown: receivers hold passwords and tokens.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse

from lab_monitoring import status
from lab_monitoring.interfaces import alertmanager_dispatch

from alertmanager import configuration, flags

# What a URL may hold and still be a single word in the service's ARGS line.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!&()*+,;=%]+")


@dataclasses.dataclass(frozen=True, kw_only=True)
class AlertmanagerConfig:
    """The charm's config options, validated."""

    config_file: str = ""
    templates_file: str = ""
    web_port: int = 9093
    web_external_url: str = ""
    log_level: str = "info"

    def __post_init__(self) -> None:
        if not 0 < self.web_port < 65536:
            raise ValueError(f"web-port: {self.web_port} is not a port number (1-65535)")
        if self.web_port == flags.CLUSTER_PORT:
            raise ValueError(f"web-port: {self.web_port} is the port units cluster on (try 9093)")
        if self.config_file.strip():
            try:
                configuration.parse(self.config_file)
            except ValueError as e:
                raise ValueError(f"config-file: {e}") from None
        if "\0" in self.templates_file:
            raise ValueError("templates-file: it holds a NUL character, which is not text")
        self._check_external_url()
        if self.log_level not in flags.LOG_LEVELS:
            raise ValueError(
                f"log-level: {status.quote(self.log_level)} is not one of"
                f" {', '.join(flags.LOG_LEVELS)}"
            )

    @property
    def route_prefix(self) -> str:
        """The path Alertmanager serves under: that of web-external-url, without a final `/`."""
        return urllib.parse.urlsplit(self.web_external_url).path.rstrip("/")

    def _check_external_url(self) -> None:
        url = self.web_external_url
        if not url:
            return
        problem = f"web-external-url: {status.quote(url)} is not an http(s) URL"
        try:
            # The URL as the alerting relation publishes its path: a plain route prefix.
            alertmanager_dispatch.parse_url(url)
        except ValueError:
            raise ValueError(f"{problem} (try http://localhost:9093/)") from None
        if not _URL_CHARS.fullmatch(url):
            raise ValueError(f"{problem}: it has quotes, backslashes or other unsafe characters")
