"""Fixtures that run the workload module against the real Prometheus and promtool.

Needs Debian's or Ubuntu's `prometheus` package (/usr/bin/prometheus and /usr/bin/promtool).
Files go to a temporary directory (the module's PATHS is pointed there), and Prometheus is
started the way the packaged systemd unit starts it: `prometheus $ARGS`, with ARGS read from
the flags file the charm wrote, on a free port, and always stopped afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import shlex
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).parents[2]
sys.path[:0] = [
    str(ROOT / "charms" / "prometheus" / "src"),
    str(ROOT / "charms" / "prometheus" / "lib"),
    str(ROOT / "tools"),
]

import loopback  # noqa: E402
import prometheus  # noqa: E402


def _wait_for(condition: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            result = condition()
            if result:
                return result
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@dataclasses.dataclass
class RunningPrometheus:
    """A Prometheus process started from the flags file, and how to talk to it."""

    process: subprocess.Popen[bytes]
    base_url: str  # http://127.0.0.1:<port><route prefix>

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.base_url}{path}{query}", timeout=5) as response:
            body = response.read()
        return json.loads(body) if path.startswith("/api/") else body.decode()

    def query(self, promql: str) -> list[dict[str, Any]]:
        return self.get("/api/v1/query", query=promql)["data"]["result"]

    def targets(self) -> list[dict[str, Any]]:
        return self.get("/api/v1/targets")["data"]["activeTargets"]


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    """Return `wait_for(condition, timeout=20, what=...)`, which polls until it is truthy."""
    return _wait_for


@pytest.fixture
def port() -> int:
    """Return a TCP port that is free on the loopback interface."""
    return loopback.free_port()


@pytest.fixture
def paths(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> prometheus.Paths:
    """Point the workload module's files at a temporary directory."""
    tmp_paths = prometheus.Paths(
        config_dir=tmp_path / "etc" / "prometheus",
        defaults=tmp_path / "etc" / "default" / "prometheus",
        tsdb=tmp_path / "metrics2",
    )
    monkeypatch.setattr(prometheus, "PATHS", tmp_paths)
    return tmp_paths


@contextlib.contextmanager
def run_prometheus(
    args: list[str], log: pathlib.Path, base_url: str
) -> Iterator[RunningPrometheus]:
    """Run `prometheus *args` until the block ends; yield it once /-/ready says so."""
    with log.open("wb") as output:
        process = subprocess.Popen(["prometheus", *args], stdout=output, stderr=output)
    running = RunningPrometheus(process, base_url)

    def ready() -> bool:
        assert process.poll() is None, log.read_text()
        return "Ready" in running.get("/-/ready")

    try:
        _wait_for(ready, what="Prometheus to be ready")
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def start_prometheus(paths: prometheus.Paths) -> Iterator[Callable[[], RunningPrometheus]]:
    """Return a function that starts Prometheus from the written flags and waits for ready."""
    with contextlib.ExitStack() as started:

        def start() -> RunningPrometheus:
            text = paths.defaults.read_text()
            # What systemd does with `EnvironmentFile=` and `ExecStart=/usr/bin/prometheus $ARGS`.
            args = shlex.split(text.split("ARGS=", 1)[1])[0].split()
            port = next(a.rsplit(":", 1)[1] for a in args if a.startswith("--web.listen-address"))
            prefix = next(
                (
                    urllib.parse.urlsplit(a.split("=", 1)[1]).path
                    for a in args
                    if "external-url" in a
                ),
                "",
            ).rstrip("/")
            log = paths.config_dir.parent / "prometheus.log"
            base_url = f"http://127.0.0.1:{port}{prefix}"
            return started.enter_context(run_prometheus(args, log, base_url))

        yield start


@pytest.fixture(scope="module")
def self_scraping_prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningPrometheus]:
    """A Prometheus that scrapes itself every second and has done so a few times already."""
    tmp = tmp_path_factory.mktemp("self-scraping")
    address = f"127.0.0.1:{loopback.free_port()}"
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: prometheus\n    static_configs: [{{targets: ['{address}']}}]\n"
    )
    args = [
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address={address}",
    ]
    with run_prometheus(args, tmp / "prometheus.log", f"http://{address}") as running:
        # A few self-scrapes, so that rate() over a minute has samples to work with.
        _wait_for(
            lambda: running.query("count_over_time(up[1m]) >= 3"),
            timeout=30,
            what="three self-scrapes",
        )
        yield running


@pytest.fixture
def metrics_server() -> Iterator[int]:
    """Serve a tiny /metrics page (`lab_widgets 42`) on a free loopback port; yield the port."""
    with loopback.metrics_server(b"# TYPE lab_widgets gauge\nlab_widgets 42\n") as port:
        yield port
