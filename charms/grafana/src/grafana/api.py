"""The few Grafana HTTP API calls the charm makes, to the Grafana on this machine.

On loopback and never through a proxy (lab_monitoring.loopback). urllib is imported by the
calls, not with the module: a settled unit's update-status makes none.
"""

from __future__ import annotations

import contextlib
import json
import time

from lab_monitoring import loopback

import grafana


class APIError(grafana.GrafanaError):
    """Grafana answered with an unexpected status, or could not be reached (status None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class GrafanaClient:
    """Grafana's HTTP API with basic auth and a timeout."""

    def __init__(
        self, url: str, user: str = "", password: str = "", *, timeout: float = 10.0
    ) -> None:
        import base64

        self._url = url.rstrip("/")
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"GrafanaClient({self._url!r})"

    def _request(self, method: str, path: str, *, auth: bool = True) -> tuple[int, bytes]:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(f"{self._url}{path}", method=method)  # noqa: S310
        request.add_header("Accept", "application/json")
        if auth:
            request.add_header("Authorization", self._auth)
        try:
            with loopback.open_url(request, self._timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError as e:  # urllib.error.URLError included
            reason = getattr(e, "reason", e)
            raise APIError(f"cannot reach Grafana at {self._url}: {reason}") from None

    def _call(self, method: str, path: str) -> None:
        status, body = self._request(method, path)
        if status == 200:
            return
        message = body.decode(errors="replace")[:200]
        with contextlib.suppress(ValueError, AttributeError):
            message = str(json.loads(body).get("message", message))
        raise APIError(f"{method} {path} returned {status}: {message}", status)

    def is_ready(self) -> bool:
        """Return True if Grafana answers /api/health and its database is ok.

        pkg/api/http_server.go apiHealthHandler answers before authentication: 200 with
        "database": "ok", or 503 with "failing" (GRAFANA-FACTS item 5).
        """
        try:
            status, body = self._request("GET", "/api/health", auth=False)
            return status == 200 and json.loads(body).get("database") == "ok"
        except (APIError, ValueError, AttributeError):
            return False

    def wait_ready(self, timeout: float = 60.0, interval: float = 1.0) -> bool:
        """Poll /api/health until Grafana is ready or `timeout` seconds have passed."""
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)
        return True

    def login_works(self) -> bool:
        """Return True if Grafana accepts the credentials, False if it rejects them.

        Raises:
            APIError: Grafana cannot be reached or answered something else.
        """
        status, _ = self._request("GET", "/api/user")
        if status in (401, 403):
            return False
        if status != 200:
            raise APIError(f"GET /api/user returned {status}", status)
        return True

    def reload_datasources(self) -> None:
        """Make Grafana re-read the data source provisioning files (no restart)."""
        self._call("POST", "/api/admin/provisioning/datasources/reload")

    def reload_dashboards(self) -> None:
        """Make Grafana re-read the dashboard provisioning files (no restart)."""
        self._call("POST", "/api/admin/provisioning/dashboards/reload")
