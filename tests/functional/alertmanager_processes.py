"""Real Alertmanagers for the functional tests, started as the packaged unit starts them.

Needs Debian's or Ubuntu's `prometheus-alertmanager` package (/usr/bin/prometheus-alertmanager
and /usr/bin/amtool). The workload modules write their files into a temporary directory (one
monkeypatch of `paths.PATHS`), and an Alertmanager is started from the flags file the charm
wrote, as systemd's `ExecStart=/usr/bin/prometheus-alertmanager $ARGS` does, on a free port,
and always stopped afterwards.

Without systemd, two thin functions of the service module are replaced for an Alertmanager
started here (tools/standins.py): `signal_reload` (systemctl reload: the unit's ExecReload sends
SIGHUP) sends SIGHUP to the process, and `journal` reads the process's output instead of
journald. Everything else of a reload stays real: the confirmation from Alertmanager's /metrics
and Alertmanager's own reasons. tests/machine/test_alertmanager.py runs the systemd path.
"""

# The charm's src is put on sys.path below; pyright's `tests` environment does not list it.

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import http.server
import json
import pathlib
import shlex
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import loopback  # tools/, on sys.path by conftest.py
import pytest

ROOT = pathlib.Path(__file__).parents[2]
sys.path.insert(0, str(ROOT / "charms" / "alertmanager" / "src"))

from alertmanager import configuration, flags, paths  # noqa: E402

free_port = loopback.free_port
needs_alertmanager = pytest.mark.skipif(
    not (shutil.which("prometheus-alertmanager") and shutil.which("amtool")),
    reason="needs the prometheus-alertmanager package (apt install prometheus-alertmanager)",
)


def local_paths(root: pathlib.Path) -> paths.Paths:
    """The workload's files under `root`, in the package's layout."""
    return paths.Paths(
        config_dir=root / "etc" / "prometheus",
        defaults=root / "etc" / "default" / "prometheus-alertmanager",
        storage=root / "var" / "lib" / "alertmanager",
    )


def configure(
    port: int,
    config_file: str = "",
    templates: str = "",
    *,
    external_url: str = "",
    cluster: flags.Cluster | None = None,
) -> bool:
    """Render and install alertmanager.yml and the flags the way the charm's reconcile does."""
    changed = configuration.install(configuration.render(config_file, templates), templates)
    flags.write(
        flags.flags(port=port, external_url=external_url, log_level="debug", cluster=cluster)
    )
    return changed


def written_args() -> list[str]:
    """The flags as systemd passes them: `EnvironmentFile=` then `$ARGS` split on whitespace."""
    text = paths.PATHS.defaults.read_text()
    return shlex.split(text.split("ARGS=", 1)[1])[0].split()


@dataclasses.dataclass
class RunningAlertmanager:
    """An Alertmanager process, and how to talk to it."""

    process: subprocess.Popen[bytes]
    base_url: str  # http://127.0.0.1:<port><route prefix>
    log: pathlib.Path

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.base_url}{path}", timeout=5) as response:
            body = response.read()
        return json.loads(body) if path.startswith("/api/") else body.decode()

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Send alerts as Prometheus does: POST /api/v2/alerts."""
        request = urllib.request.Request(
            f"{self.base_url}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def metric(self, name: str) -> float | None:
        """The value of an unlabelled series on /metrics, None if there is none."""
        for line in self.get("/metrics").splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return float(value)
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def run_alertmanager(
    args: list[str], log: pathlib.Path, base_url: str
) -> Iterator[RunningAlertmanager]:
    """Run `prometheus-alertmanager *args` until the block ends; yield it once it is ready."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["prometheus-alertmanager", *args], stdout=output, stderr=output
        )
    running = RunningAlertmanager(process, base_url, log)

    def ready() -> bool:
        assert process.poll() is None, log.read_text()
        return running.get("/-/ready").strip() == "OK"

    try:
        wait_for(ready, what="Alertmanager to be ready")
        yield running
    finally:
        running.stop()


def start_from_flags(
    log: pathlib.Path, *, replace: dict[str, str] | None = None
) -> contextlib.AbstractContextManager[RunningAlertmanager]:
    """Start an Alertmanager from the written flags; `replace` swaps a flag's value (by name)."""
    args = written_args()
    for name, value in (replace or {}).items():
        args = [f"{name}={value}" if arg.startswith(f"{name}=") else arg for arg in args]
    base_url = flags.local_url("")
    return run_alertmanager(args, log, base_url)


def wait_for(condition: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            result = condition()
            if result:
                return result
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@dataclasses.dataclass
class Delivery:
    """One notification a webhook receiver got, and when (time.time())."""

    at: float
    body: dict[str, Any]

    @property
    def status(self) -> str:
        return self.body["status"]


class Webhook:
    """A webhook receiver on loopback that records every notification it gets."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        deliveries = self.deliveries

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                deliveries.append(Delivery(time.time(), json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def of(self, status: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.status == status]


def webhook_config(url: str, *, group_wait: str = "1s", group_interval: str = "1s") -> str:
    """An alertmanager.yml that sends every alert to `url`, quickly (for tests)."""
    return f"""\
route:
  receiver: hook
  group_by: [alertname]
  group_wait: {group_wait}
  group_interval: {group_interval}
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


def alert(
    name: str, *, resolved: bool = False, started: float = 60, **labels: str
) -> dict[str, Any]:
    """An alert as Prometheus posts it: firing for an hour more, or resolved now.

    It started `started` seconds ago; Alertmanager sends an alert that started longer ago than
    its route's group_wait without waiting for it.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    ends = now if resolved else now + datetime.timedelta(hours=1)
    return {
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": f"{name} (functional test)"},
        "startsAt": (now - datetime.timedelta(seconds=started)).isoformat(),
        "endsAt": ends.isoformat(),
        "generatorURL": "http://prometheus.lab/graph",
    }


class MetricsPage:
    """A /metrics page on loopback whose body a test changes while Prometheus scrapes it."""

    def __init__(self, body: str) -> None:
        self.body = body
        page = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = page.body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> MetricsPage:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
