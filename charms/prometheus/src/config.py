"""The charm's config options, parsed and validated; each error names the option and the value."""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from typing import Any

from lab_monitoring import status
from lab_monitoring.interfaces import grafana_source, remote_write

from prometheus import checks, operator_jobs

LOG_LEVELS = ("debug", "info", "warn", "error")
# Sizes as Prometheus parses them (powers of 1024); a percentage is computed by the charm.
_SIZE = re.compile(r"([1-9][0-9]*)(B|KB|MB|GB|TB|PB|EB)")
_SIZE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB", "EB")
# Prometheus holds the retention size in an int64: above 8EB it refuses to start, and exactly
# 8EB (2^63 bytes) wraps around to -8EiB (seen on a real Prometheus: tests/functional).
_MAX_SIZE = 2**63
_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")
# What a URL may hold and still be a single word in the service's ARGS line.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!&()*+,;=%]+")
# A Juju secret's ID as `juju add-secret` prints it (secret:<20 characters>), or its full URI.
_SECRET_ID = re.compile(r"secret:(?://[0-9a-f-]{36}/)?[0-9a-z]{20}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrometheusConfig:
    """The charm's config options, validated; each error names the option and the value."""

    web_port: int = 9090
    scrape_interval: str = "15s"
    scrape_timeout: str = "10s"
    evaluation_interval: str = "15s"
    retention_time: str = "15d"
    retention_size: str = "80%"
    external_labels: str = ""
    scrape_jobs: str = ""
    web_external_url: str = ""
    log_level: str = "info"
    remote_write_urls: str = ""
    remote_write_credentials: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.web_port < 65536:
            raise ValueError(f"web-port: {self.web_port} is not a port number (1-65535)")
        durations = {
            "scrape-interval": (self.scrape_interval, "15s"),
            "scrape-timeout": (self.scrape_timeout, "10s"),
            "evaluation-interval": (self.evaluation_interval, "15s"),
            "retention-time": (self.retention_time, "14d"),
        }
        seconds = {}
        for option, (value, example) in durations.items():
            try:
                seconds[option] = checks.duration_seconds(value)
            except checks.InvalidError as e:
                raise ValueError(f"{option}: {e} (try {example})") from None
            if seconds[option] <= 0:
                raise ValueError(f"{option}: {status.quote(value)} must be longer than zero")
        if seconds["scrape-timeout"] > seconds["scrape-interval"]:
            raise ValueError(
                f"scrape-timeout: {status.quote(self.scrape_timeout)} is longer than"
                f" scrape-interval {status.quote(self.scrape_interval)}"
            )
        self._check_retention_size()
        for option, parse in (
            ("external-labels", checks.parse_external_labels),
            ("scrape-jobs", operator_jobs.parse_user_jobs),
        ):
            try:
                parse(getattr(self, option.replace("-", "_")))
            except checks.InvalidError as e:
                raise ValueError(f"{option}: {e}") from None
        self._check_external_url()
        self._check_remote_write()
        if self.log_level not in LOG_LEVELS:
            raise ValueError(
                f"log-level: {status.quote(self.log_level)} is not one of {', '.join(LOG_LEVELS)}"
            )

    @property
    def labels(self) -> dict[str, str]:
        """The external labels, parsed."""
        return checks.parse_external_labels(self.external_labels)

    @property
    def jobs(self) -> list[dict[str, Any]]:
        """The operator's own scrape jobs, parsed."""
        return operator_jobs.parse_user_jobs(self.scrape_jobs)

    @property
    def write_urls(self) -> list[str]:
        """The remote-write-urls, in the order given, each once."""
        return list(dict.fromkeys(self.remote_write_urls.replace(",", " ").split()))

    @property
    def route_prefix(self) -> str:
        """The path Prometheus serves under: that of web-external-url, without a final `/`."""
        return urllib.parse.urlsplit(self.web_external_url).path.rstrip("/")

    @property
    def retention_percent(self) -> float | None:
        """The retention-size percentage, or None when it is an absolute size or empty."""
        match = _PERCENT.fullmatch(self.retention_size)
        return float(match.group(1)) if match else None

    def retention_size_flag(self, filesystem_bytes: int) -> str:
        """Return retention-size as Prometheus takes it: a percentage of `filesystem_bytes`."""
        percent = self.retention_percent
        if percent is None:
            return self.retention_size
        return f"{int(filesystem_bytes * percent / 100)}B"

    def _check_retention_size(self) -> None:
        if not self.retention_size:
            return
        size = _SIZE.fullmatch(self.retention_size)
        if size:
            if int(size.group(1)) * 1024 ** _SIZE_UNITS.index(size.group(2)) >= _MAX_SIZE:
                raise ValueError(
                    f"retention-size: {status.quote(self.retention_size)} is more than Prometheus "
                    "accepts (less than 8EB, such as 7EB)"
                )
            return
        percent = self.retention_percent
        if percent is None:
            raise ValueError(
                f"retention-size: {status.quote(self.retention_size)} is not a size or a"
                " percentage (try 10GB or 80%)"
            )
        if not 0 < percent <= 100:
            raise ValueError(
                f"retention-size: {status.quote(self.retention_size)} is not between 0% and 100%"
            )

    def _check_external_url(self) -> None:
        url = self.web_external_url
        if not url:
            return
        problem = f"web-external-url: {status.quote(url)} is not an http(s) URL"
        try:
            grafana_source.validate_url(url)
        except ValueError:
            raise ValueError(f"{problem} (try http://localhost:9090/)") from None
        if not _URL_CHARS.fullmatch(url):
            raise ValueError(f"{problem}: it has quotes, backslashes or other unsafe characters")

    def _check_remote_write(self) -> None:
        for number, url in enumerate(self.write_urls, 1):
            try:
                remote_write.check_url(url)
            except ValueError as e:
                # check_url never shows a URL that may hold credentials.
                raise ValueError(f"remote-write-urls: URL {number}: {e}") from None
        secret = self.remote_write_credentials
        if secret and not _SECRET_ID.fullmatch(secret):
            # Not shown: a password typed here by mistake must not reach the status.
            raise ValueError(
                "remote-write-credentials: the value is not a secret ID (juju add-secret"
                " prints one, such as secret:d5cc2q7mp25c77b8d3vg)"
            )
