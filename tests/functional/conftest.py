"""Fixtures that run the workload modules against the real Prometheus, promtool and exporter.

Needs Debian's or Ubuntu's `prometheus` package (/usr/bin/prometheus and /usr/bin/promtool) and
`prometheus-node-exporter`. Files go to a temporary directory (each module's PATHS is pointed
there), and Prometheus is started the way the packaged systemd unit starts it:
`prometheus $ARGS`, with ARGS read from the flags file the charm wrote, on a free port, and
always stopped afterwards. Exporters started here are stopped the same way.

There is no systemd here, so the two thin functions of prometheus.reload that need it are
replaced for a started Prometheus (tools/standins.py): `signal_reload` (systemctl reload, whose
ExecReload sends SIGHUP) sends SIGHUP to the process the test started, and `journal` reads that
process's log output instead of journald. Everything else in a reload stays real: the
confirmation from Prometheus's /metrics, and Prometheus's own reasons. tests/machine runs the
real systemd path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
import yaml

ROOT = pathlib.Path(__file__).parents[2]
sys.path[:0] = [
    str(ROOT / "charms" / "prometheus" / "src"),
    str(ROOT / "charms" / "node-exporter" / "src"),
    str(ROOT / "tools"),
]

import loopback  # noqa: E402
import prometheus.paths  # noqa: E402
import prometheus.reload  # noqa: E402
import standins  # noqa: E402


def _wait_for(condition: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    last: object = "nothing: the condition never ran"
    while time.monotonic() < deadline:
        try:
            result = condition()
        except (OSError, ValueError) as e:
            last = e
        else:
            if result:
                return result
            last = result
        time.sleep(0.1)
    # The last answer or error says why it never came: the failure must be readable from CI's log.
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r:.500}")


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


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., Any]:
    """Return `wait_for(condition, timeout=20, what=...)`, which polls until it is truthy."""
    return _wait_for


@pytest.fixture
def port() -> int:
    """Return a TCP port that is free on the loopback interface."""
    return loopback.free_port()


@pytest.fixture
def paths(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> prometheus.paths.Paths:
    """Point the Prometheus workload's files at a temporary directory."""
    tmp_paths = prometheus.paths.Paths(
        config_dir=tmp_path / "etc" / "prometheus",
        defaults=tmp_path / "etc" / "default" / "prometheus",
        tsdb=tmp_path / "metrics2",
    )
    monkeypatch.setattr(prometheus.paths, "PATHS", tmp_paths)
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


@pytest.fixture(scope="session")
def prometheus_process() -> Callable[..., contextlib.AbstractContextManager[RunningPrometheus]]:
    """Return `run_prometheus(args, log, base_url)`: a Prometheus with flags of the test's own."""
    return run_prometheus


@pytest.fixture
def start_prometheus(
    paths: prometheus.paths.Paths, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], RunningPrometheus]]:
    """Return a function that starts Prometheus from the written flags and waits for ready.

    prometheus.reload then signals that process and reads its log (see the module docstring).
    """
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
            running = started.enter_context(run_prometheus(args, log, base_url))
            pid = running.process.pid
            monkeypatch.setattr(prometheus.reload, "signal_reload", standins.sighup(lambda: pid))
            monkeypatch.setattr(prometheus.reload, "journal", standins.journal_of(log))
            return running

        yield start


@contextlib.contextmanager
def _scraping_prometheus(
    tmp: pathlib.Path,
    scrape_configs: Sequence[Mapping[str, Any]] = (),
    rule_files: Sequence[pathlib.Path] = (),
    remote_write: Sequence[Mapping[str, Any]] = (),
) -> Iterator[RunningPrometheus]:
    """Run a Prometheus that scrapes itself and `scrape_configs`, every second, with rules.

    It pushes what it scrapes to each `remote_write` entry (prometheus.yml's own format).
    """
    address = f"127.0.0.1:{loopback.free_port()}"
    config = tmp / "prometheus.yml"
    self_job = {"job_name": "prometheus", "static_configs": [{"targets": [address]}]}
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(path) for path in rule_files],
                "scrape_configs": [self_job, *scrape_configs],
                **({"remote_write": list(remote_write)} if remote_write else {}),
            }
        )
    )
    args = [
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address={address}",
    ]
    with run_prometheus(args, tmp / "prometheus.log", f"http://{address}") as running:
        yield running


@pytest.fixture(scope="module")
def self_scraping_prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningPrometheus]:
    """A Prometheus that scrapes itself every second and has done so a few times already."""
    with _scraping_prometheus(tmp_path_factory.mktemp("self-scraping")) as running:
        # A few self-scrapes, so that rate() over a minute has samples to work with.
        _wait_for(
            lambda: running.query("count_over_time(up[1m]) >= 3"),
            timeout=30,
            what="three self-scrapes",
        )
        yield running


@pytest.fixture(scope="session")
def scraping_prometheus() -> Callable[..., contextlib.AbstractContextManager[RunningPrometheus]]:
    """Return `_scraping_prometheus(tmp, scrape_configs, rule_files, remote_write)`."""
    return _scraping_prometheus


@contextlib.contextmanager
def _run_process(
    command: Sequence[str], ready_url: str, log: pathlib.Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` in its own process group until the block ends; yield once `ready_url` answers.

    The group is what is stopped afterwards, so helpers a command starts (a shell's background
    job) stop with it.
    """
    with log.open("wb") as output:
        process = subprocess.Popen(
            list(command), stdout=output, stderr=output, start_new_session=True
        )

    def ready() -> bool:
        assert process.poll() is None, log.read_text()
        with urllib.request.urlopen(ready_url, timeout=5) as response:
            return response.status == 200

    try:
        _wait_for(ready, what=f"{command[0]} to answer at {ready_url}")
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def run_process() -> Callable[..., contextlib.AbstractContextManager[subprocess.Popen[bytes]]]:
    """Return `_run_process(command, ready_url, log)`, for module fixtures."""
    return _run_process


@pytest.fixture
def metrics_server() -> Iterator[int]:
    """Serve a tiny /metrics page (`lab_widgets 42`) on a free loopback port; yield the port."""
    with loopback.metrics_server(b"# TYPE lab_widgets gauge\nlab_widgets 42\n") as port:
        yield port
