"""Measure what the charms cost: hook time, fan-in, and reload against restart.

    python tools/bench.py [--runs N] [--import-runs N] [--json PATH]    (or: tox -e bench)
    python tools/bench.py --remote-write [its options]    (or: tox -e bench -- --remote-write)

Prints tables and asserts no times (machines differ). Four parts, and a fifth run on its own:

import      What every hook pays first: a fresh Python process importing each charm
            (`import charm`, as `dispatch` does) against one importing bare `ops`, with warm
            bytecode caches (as on a unit after its first hook), interleaved and repeated; the
            medians, in wall time and in CPU time, and the ratio to ops in CPU time. What a
            settled unit's update-status imports beyond `charm` is pinned by tests
            (tests/unit/*/test_hook_imports.py): nothing heavy.
hook cost   One no-op update-status and one config change per charm, in-process through
            ops.testing (median of --runs). The charms' real workload modules run with their
            files in a temporary directory and the real promtool; only systemd, apt and
            Grafana's HTTP API are stubbed. Running the packed charm's `dispatch` as Juju does
            needs Juju's hook tools (config-get, relation-get, state-get, status-set, ...)
            with their exact JSON and a unit state store; faking them faithfully is a project
            of its own, so instead the cold start of a hook process (Python importing the
            charm) is timed separately (import, above) and should be added to these figures.
fan-in      prometheus.yml for 10 to 5,000 units on a `target` relation: render time with
            PyYAML's pure-Python emitter (before) and the charm's own writer (now: JSON, which
            YAML reads, prometheus/yaml_writer.py), peak
            Python memory (tracemalloc), `promtool check config` time and max RSS, and
            render + validate (what a hook does: render, promtool, install) with either
            writer, in wall time and in CPU time (the charm's and promtool's), which a busy
            machine distorts less.
reload      A real Prometheus on a loopback port with a temporary TSDB: failed queries while
            20 config changes are applied by reload, and while it restarts once; and the time
            from installing a config with a new target (a local /metrics server) until that
            target is scraped (up == 1). The reload is the charm's own (SIGHUP, confirmed from
            /metrics), with SIGHUP sent to the process directly instead of through systemd
            (tools/standins.py).
remote write
            (--remote-write, alone: about 15 minutes; tools/bench_remote_write.py, whose
            docstring and --help say more) What remote write costs the sender: a real Prometheus
            scraping 5,000 loopback targets of 100 series each (500,000 series, every 30 s), with
            the charm's rendered `remote_write` into a second real Prometheus (receiver on),
            side by side with the same Prometheus without it; each sender process's CPU seconds
            per minute and RSS, their ratios, and whether the samples arrived.

The charms' code is imported from charms/<name>/src (their workload packages, `prometheus` and
`grafana`, side by side; each charm's top-level modules, `charm` and `config` among them, one
charm at a time) and the shared package, lab_monitoring, from this environment.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHARMS = ROOT / "charms"
PROMETHEUS_SRC = CHARMS / "prometheus" / "src"
GRAFANA_SRC = CHARMS / "grafana" / "src"
# Every charm, for the import cost: (name, its src directory).
CHARM_SRCS = [
    (name, CHARMS / name / "src")
    for name in ("prometheus", "grafana", "node-exporter", "alertmanager")
]
# The workload packages (`prometheus`, `grafana`) have distinct names: both can be imported.
sys.path[:0] = [str(PROMETHEUS_SRC), str(GRAFANA_SRC)]

import bench_remote_write  # noqa: E402  (tools/ is on sys.path when this file runs)
import loopback  # noqa: E402
import standins  # noqa: E402
from grafana import api, apt_source, cli  # noqa: E402
from grafana import paths as grafana_paths  # noqa: E402
from grafana import service as grafana_service  # noqa: E402
from lab_monitoring.packaged_service import Health  # noqa: E402
from ops import testing  # noqa: E402
from prometheus import config_file, flags, jobs, reload, service, topology, yaml_writer  # noqa: E402
from prometheus import paths as prometheus_paths  # noqa: E402

MODEL = testing.Model(name="bench", uuid="2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f")
FAN_IN = (10, 100, 1000, 5000)


@contextlib.contextmanager
def charm_module(src: pathlib.Path) -> Iterator[Any]:
    """Import one charm's `charm` module from `src`; forget its top-level modules afterwards.

    Every charm has a `charm` and a `config` module: another charm's must not be found in
    sys.modules. The workload packages stay imported (the patches below are on them).
    """
    top_level = {path.stem for path in src.glob("*.py")}
    for name in top_level:
        sys.modules.pop(name, None)
    sys.path.insert(0, str(src))
    try:
        yield importlib.import_module("charm")
    finally:
        sys.path.remove(str(src))
        for name in top_level:
            sys.modules.pop(name, None)


def median_ms(run: Callable[[], object], runs: int) -> float:
    """Run `run` `runs` times; return the median wall time in milliseconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def median_cpu_ms(run: Callable[[], object], runs: int) -> float:
    """Like median_ms, but CPU time: this process's and its children's (promtool's).

    On a machine other work shares, wall time grows with the load; CPU time much less.
    """

    def cpu() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    times = []
    for _ in range(runs):
        started = cpu()
        run()
        times.append(cpu() - started)
    return statistics.median(times) * 1000


def table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    """Print rows as an aligned plain-text table."""
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


# --- hook cost --------------------------------------------------------------------------------


@contextlib.contextmanager
def prometheus_machine(tmp: pathlib.Path) -> Iterator[Any]:
    """The Prometheus charm with its files under `tmp`; systemd and apt stubbed."""
    where = prometheus_paths.Paths(
        config_dir=tmp / "etc", defaults=tmp / "default", tsdb=tmp / "metrics2"
    )
    with (
        charm_module(PROMETHEUS_SRC) as charm,
        mock.patch.object(prometheus_paths, "PATHS", where),
        mock.patch.multiple(
            service,
            installed=lambda: True,
            version=lambda: "2.42.0",
            health=lambda: Health.UP,
            allow_low_ports=lambda port: False,
            start=lambda: True,
            restart=lambda: True,
        ),
        mock.patch.object(reload, "reload", return_value=0.0),
    ):
        yield charm


class _Client:
    """Grafana's HTTP API, answering at once."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def wait_ready(self, *args: object, **kwargs: object) -> bool:
        return True

    def is_ready(self) -> bool:
        return True

    def login_works(self) -> bool:
        return True

    def reload_datasources(self) -> None:
        pass

    def reload_dashboards(self) -> None:
        pass


@contextlib.contextmanager
def grafana_machine(tmp: pathlib.Path) -> Iterator[Any]:
    """The Grafana charm with its files under `tmp`; systemd, apt and the HTTP API stubbed."""
    with (
        charm_module(GRAFANA_SRC) as charm,
        mock.patch.object(grafana_paths, "PATHS", grafana_paths.Paths.under(tmp, group="root")),
        mock.patch.multiple(
            apt_source,
            installed=lambda: True,
            installed_version=lambda: "12.3.1",
        ),
        mock.patch.multiple(
            grafana_service,
            health=lambda port: Health.UP,
            allow_low_ports=lambda port: False,
            start=lambda port, restart=False: True,
        ),
        mock.patch.object(cli, "set_admin_password", return_value=None),
        mock.patch.object(api, "GrafanaClient", _Client),
    ):
        yield charm


def hook_cost(runs: int) -> list[dict[str, Any]]:
    """Time a no-op update-status and a config change of each charm, in-process."""
    results = []
    with tempfile.TemporaryDirectory() as tmp, prometheus_machine(pathlib.Path(tmp)) as charm:
        target = testing.Relation(
            "target",
            remote_app_name="node",
            remote_units_data={
                n: {"hostname": f"10.0.0.{n + 1}", "port": "9100"} for n in range(3)
            },
        )
        source = testing.Relation("grafana-source", remote_app_name="grafana")
        ctx = testing.Context(charm.PrometheusCharm)
        state = ctx.run(
            ctx.on.config_changed(),
            testing.State(model=MODEL, leader=True, relations=[target, source]),
        )
        results += measure_hooks("prometheus", ctx, state, "scrape-interval", ("30s", "15s"), runs)
    with tempfile.TemporaryDirectory() as tmp, grafana_machine(pathlib.Path(tmp)) as charm:
        peers = testing.PeerRelation(
            "grafana-peers", local_app_data={"admin-password-generation": "1"}
        )
        secret = testing.Secret(
            {"password": "bench-password"}, owner="app", label="admin-password"
        )
        source = testing.Relation(
            "grafana-source",
            remote_app_name="prometheus",
            remote_units_data={0: {"type": "prometheus", "url": "http://10.0.0.5:9090"}},
        )
        ctx = testing.Context(charm.GrafanaCharm, charm_root=GRAFANA_SRC.parent)
        state = ctx.run(
            ctx.on.config_changed(),
            testing.State(
                model=MODEL,
                leader=True,
                relations=[peers, source],
                secrets=[secret],
                # An empty grafana-deb resource: install from the repository (stubbed).
                resources={testing.Resource(name="grafana-deb", path=os.devnull)},
            ),
        )
        results += measure_hooks("grafana", ctx, state, "log-level", ("debug", "info"), runs)
    return results


def measure_hooks(
    name: str, ctx: Any, settled: Any, option: str, values: tuple[str, str], runs: int
) -> list[dict[str, Any]]:
    """Return the median update-status and config-changed times of one charm."""
    # A figure for a unit that is not settled would time another path (Blocked, Waiting, ...).
    assert settled.unit_status.name == "active", f"{name}: {settled.unit_status}"
    status = median_ms(lambda: ctx.run(ctx.on.update_status(), settled), runs)
    current = [settled, 0]

    def change() -> None:
        value = values[current[1] % 2]
        current[1] += 1
        state = dataclasses.replace(current[0], config={option: value})
        current[0] = ctx.run(ctx.on.config_changed(), state)

    changed = median_ms(change, runs)
    return [
        {"charm": name, "hook": "update-status (no-op)", "median_ms": round(status, 1)},
        {"charm": name, "hook": f"config-changed ({option})", "median_ms": round(changed, 1)},
    ]


def import_cost(runs: int) -> list[dict[str, Any]]:
    """Time fresh Python processes importing bare `ops` and each charm, as every hook does.

    Each round runs `python -c pass`, `import ops` and every charm's `import charm` once, in
    that order, so that a busy machine slows all of them alike; the figures are medians over the
    rounds. Bytecode is cached (in a temporary PYTHONPYCACHEPREFIX, warmed by one round first),
    as on a unit after its first hook; tox's PYTHONDONTWRITEBYTECODE would make every run
    compile every module. Each process is timed in wall time and in CPU time (user + system,
    from its rusage), which other work on the machine distorts much less. `ratio` is the
    median of each round's charm / ops in CPU time (whole processes: the hook's cost);
    `import_ratio` leaves the interpreter's own start (`pass`) out of both.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "pass": ([sys.executable, "-c", "pass"], env),
        "ops": ([sys.executable, "-c", "import ops"], env),
    }
    for name, src in CHARM_SRCS:
        commands[name] = ([sys.executable, "-c", "import charm"], {**env, "PYTHONPATH": str(src)})
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    with tempfile.TemporaryDirectory() as cache:
        for _, command_env in commands.values():
            command_env["PYTHONPYCACHEPREFIX"] = cache
        for round_ in range(runs + 1):
            for name, (command, command_env) in commands.items():
                started, started_cpu = time.perf_counter(), children_cpu()
                subprocess.run(command, env=command_env, check=True)
                if round_:  # the first round only fills the bytecode cache
                    wall[name].append((time.perf_counter() - started) * 1000)
                    cpu[name].append((children_cpu() - started_cpu) * 1000)

    def per_round(name: str, base: str, start: str | None = None) -> list[float]:
        zero = cpu[start] if start else [0.0] * runs
        return [(t - z) / (o - z) for t, o, z in zip(cpu[name], cpu[base], zero, strict=True)]

    results = []
    for name in ["ops", *(name for name, _ in CHARM_SRCS)]:
        ratios = per_round(name, "ops")
        quartiles = statistics.quantiles(ratios, n=4)
        wall_ratios = [t / o for t, o in zip(wall[name], wall["ops"], strict=True)]
        results.append(
            {
                "charm": name,
                "median_ms": round(statistics.median(wall[name]), 1),
                "median_cpu_ms": round(statistics.median(cpu[name]), 1),
                "ratio": round(statistics.median(ratios), 3),
                "ratio_quartiles": [round(quartiles[0], 3), round(quartiles[2], 3)],
                "wall_ratio": round(statistics.median(wall_ratios), 3),
                "import_ratio": round(statistics.median(per_round(name, "ops", "pass")), 3),
            }
        )
    results.append(
        {
            "charm": "(python -c pass)",
            "median_ms": round(statistics.median(wall["pass"]), 1),
            "median_cpu_ms": round(statistics.median(cpu["pass"]), 1),
        }
    )
    return results


# --- fan-in -----------------------------------------------------------------------------------


def fan_in() -> list[dict[str, Any]]:
    """Render and check prometheus.yml for ever more target units, before and now.

    "before" is PyYAML's pure-Python emitter writing the whole file, what the charm used until
    it took libyaml's (CSafeDumper, in PyYAML's wheels). "now" is the charm's own writer
    (prometheus/yaml_writer.py: JSON, which YAML reads, laid out to stay readable).
    "render + validate" is what a hook does: build the jobs, render prometheus.yml, stage it,
    run promtool on it and install it (config_file.install_config, into a fresh directory).
    """
    where = topology.Topology("bench", MODEL.uuid, "node")
    results: list[dict[str, Any]] = []
    for units in FAN_IN:
        data = {
            f"node/{n}": {
                "hostname": f"10.{n // 65536}.{n // 256 % 256}.{n % 256}",
                "port": "9100",
            }
            for n in range(units)
        }

        def render(data: dict[str, dict[str, str]] = data) -> str:
            job = jobs.http_job(data, where)
            assert job is not None  # every unit sent a hostname and a port
            return config_file.render_config(
                scrape_interval="15s",
                scrape_timeout="10s",
                evaluation_interval="15s",
                external_labels={},
                scrape_configs=[jobs.self_job(9090, "", where.labels()), job],
            )

        def render_and_validate(render: Callable[[], str] = render) -> None:
            with (
                tempfile.TemporaryDirectory() as tmp,
                mock.patch.object(prometheus_paths, "PATHS", prometheus_at(tmp)),
            ):
                config_file.install_config(render(), {})

        with mock.patch.object(yaml_writer, "dump", pure_pyyaml):
            before_ms = median_ms(render, 3)
            before_total_ms = median_ms(render_and_validate, 3)
            before_cpu_ms = median_cpu_ms(render_and_validate, 3)
            before_text = render()
        render_ms = median_ms(render, 3)
        total_ms = median_ms(render_and_validate, 3)
        cpu_ms = median_cpu_ms(render_and_validate, 3)
        tracemalloc.start()
        text = render()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # The same configuration either way, only written by another writer.
        assert yaml.safe_load(text) == yaml.safe_load(before_text)
        with tempfile.TemporaryDirectory() as tmp:
            config = pathlib.Path(tmp, "prometheus.yml")
            config.write_text(text)
            promtool_ms, rss_kb = promtool(config)
        results.append(
            {
                "units": units,
                "render_before_ms": round(before_ms, 1),
                "render_ms": round(render_ms, 1),
                "render_peak_kib": round(peak / 1024),
                "promtool_ms": round(promtool_ms, 1),
                "promtool_max_rss_kib": rss_kb,
                "render_validate_before_ms": round(before_total_ms, 1),
                "render_validate_ms": round(total_ms, 1),
                "render_validate_before_cpu_ms": round(before_cpu_ms, 1),
                "render_validate_cpu_ms": round(cpu_ms, 1),
                "file_kib": round(len(text) / 1024),
            }
        )
    return results


def prometheus_at(tmp: str) -> Any:
    """Prometheus's file layout under a temporary directory."""
    return prometheus_paths.Paths(
        config_dir=pathlib.Path(tmp, "etc"),
        defaults=pathlib.Path(tmp, "default"),
        tsdb=pathlib.Path(tmp, "metrics2"),
    )


def pure_pyyaml(data: dict[str, Any], **_: object) -> str:
    """Write `data` as the charm did before: PyYAML's pure-Python dumper, the whole document."""
    return yaml.dump(data, Dumper=yaml.SafeDumper, sort_keys=False, allow_unicode=False)


def promtool(config: pathlib.Path) -> tuple[float, int]:
    """Run `promtool check config` under /usr/bin/time; return (ms, max RSS in KiB)."""
    command = ["promtool", "check", "config", str(config)]
    timer = shutil.which("time") or "/usr/bin/time"
    started = time.perf_counter()
    result = subprocess.run(
        [timer, "-f", "%M", *command], capture_output=True, text=True, check=True
    )
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, int(result.stderr.strip().splitlines()[-1])


# --- reload vs restart ------------------------------------------------------------------------


def get(url: str, timeout: float = 2) -> Any:
    """GET a loopback URL and decode its JSON."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
        return json.loads(response.read())


class QueryLoop:
    """Query Prometheus in a background thread, counting queries that fail."""

    def __init__(self, base: str) -> None:
        self.url = f"{base}/api/v1/query?query=up"
        self.ok = self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                get(self.url, timeout=1)["data"]
                self.ok += 1
            except (OSError, ValueError, KeyError):
                self.failed += 1
            time.sleep(0.01)

    def __enter__(self) -> QueryLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def wait(condition: Callable[[], object], timeout: float) -> float:
    """Poll until `condition` is truthy; return seconds taken. Raise after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(OSError, ValueError, KeyError):
            if condition():
                return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError(f"not within {timeout}s")


def reload_vs_restart() -> dict[str, Any]:
    """Count failed queries across reloads and a restart; time until a new target is up."""
    if not shutil.which("prometheus"):
        return {"skipped": "no /usr/bin/prometheus (apt install prometheus)"}
    port = loopback.free_port()
    base = f"http://127.0.0.1:{port}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        loopback.metrics_server(b"bench_up 1\n") as target_port,
        mock.patch.object(prometheus_paths, "PATHS", prometheus_at(tmp)),
    ):

        def install(interval: str, extra: list[dict[str, Any]]) -> None:
            configs = [jobs.self_job(port, "", {}), *extra]
            text = config_file.render_config(
                scrape_interval=interval,
                scrape_timeout="1s",
                evaluation_interval="15s",
                external_labels={},
                scrape_configs=configs,
            )
            config_file.install_config(text, {})

        install("1s", [])
        args = flags.flags(
            port=port,
            retention_time="1d",
            retention_size="",
            external_url="",
            log_level="warn",
        )
        # The charm listens on every address; the benchmark stays on loopback.
        listen = f"--web.listen-address=127.0.0.1:{port}"
        args = [listen if a.startswith("--web.listen-address") else a for a in args]
        flags.write_flags(args)

        with running_prometheus(args, pathlib.Path(tmp, "log"), base) as start:
            reload_ms = []
            with QueryLoop(base) as during_reloads:
                for n in range(20):
                    install(f"{n % 5 + 1}s", [])
                    reload_ms.append(reload.reload() * 1000)
            # The last reload must have taken effect, or the zero above would mean nothing.
            live = get(f"{base}/api/v1/status/config")["data"]["yaml"]
            applied = "scrape_interval: 5s" in live
            with QueryLoop(base) as during_restart:
                time.sleep(0.3)
                restart_s = start(restart=True)
                time.sleep(0.3)
            job = {
                "job_name": "bench_new_target",
                "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
            }
            began = time.monotonic()
            install("1s", [job])
            reload.reload()
            query = f"{base}/api/v1/query?query=up%7Bjob%3D%22bench_new_target%22%7D%3D%3D1"
            wait(lambda: get(query)["data"]["result"], timeout=30)
            scraped_s = time.monotonic() - began
    return {
        "reloads": 20,
        "reload_median_ms": round(statistics.median(reload_ms), 1),
        "last_reload_applied": applied,
        "queries_during_reloads": during_reloads.ok + during_reloads.failed,
        "failed_queries_during_reloads": during_reloads.failed,
        "restart_until_ready_s": round(restart_s, 2),
        "queries_during_restart": during_restart.ok + during_restart.failed,
        "failed_queries_during_restart": during_restart.failed,
        "new_target_scraped_after_s": round(scraped_s, 2),
        "scrape_interval": "1s",
    }


@contextlib.contextmanager
def running_prometheus(
    args: list[str], log: pathlib.Path, base: str
) -> Iterator[Callable[..., float]]:
    """Run Prometheus; yield start(restart=True) -> seconds until ready again. Always stops it.

    While it runs, the workload module's reload signals this process and reads its log.
    """
    process: list[subprocess.Popen[bytes]] = []

    def stop() -> None:
        for p in process:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        process.clear()

    def start(restart: bool = False) -> float:
        began = time.monotonic()
        if restart:
            stop()
        with log.open("ab") as output:
            process.append(subprocess.Popen(["prometheus", *args], stdout=output, stderr=output))
        wait(lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=1).status == 200, 60)  # noqa: S310
        return time.monotonic() - began

    try:
        start()
        with mock.patch.multiple(
            reload,
            signal_reload=standins.sighup(lambda: process[-1].pid),
            journal=standins.journal_of(log),
        ):
            yield start
    finally:
        stop()


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    """Run every benchmark and print the tables (or only the remote-write part)."""
    if sys.argv[1:2] == ["--remote-write"]:
        bench_remote_write.run(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="runs per hook timing (median)")
    parser.add_argument(
        "--import-runs", type=int, default=31, help="rounds of fresh processes for the import cost"
    )
    parser.add_argument("--json", type=pathlib.Path, help="also write the results here")
    parser.add_argument(
        "--remote-write",
        action="store_true",
        help="as the first option: run only the remote-write part, with the options after it"
        " (tools/bench_remote_write.py --help)",
    )
    options = parser.parse_args()

    print(f"Python {sys.version.split()[0]} on {platform_name()}")
    imports = import_cost(options.import_runs)
    table(
        "Import cost: a fresh process importing bare ops, or each charm (`import charm`, as a"
        f" hook does); medians of {options.import_runs} interleaved rounds, warm bytecode cache;"
        " x ops: the median of the rounds' ratios",
        [
            *["import", "wall ms", "CPU ms", "x ops (CPU)", "quartiles"],
            *["x ops (wall)", "x ops, imports only (CPU)"],
        ],
        [
            [
                r["charm"],
                r["median_ms"],
                r["median_cpu_ms"],
                *(
                    [
                        f"{r['ratio']:.3f}",
                        "{:.3f}-{:.3f}".format(*r["ratio_quartiles"]),
                        f"{r['wall_ratio']:.3f}",
                        f"{r['import_ratio']:.3f}",
                    ]
                    if "ratio" in r
                    else ["", "", "", ""]
                ),
            ]
            for r in imports
        ],
    )

    hooks = hook_cost(options.runs)
    table(
        "Hook cost (in-process ops.testing; real files in a tmp dir, real promtool; systemd,"
        " apt and Grafana's API stubbed)",
        ["charm", "hook", "median ms"],
        [[r["charm"], r["hook"], r["median_ms"]] for r in hooks],
    )

    fan = fan_in()
    rows = []
    for n, r in enumerate(fan):
        prev = fan[n - 1] if n else None

        def ratio(key: str, r: dict[str, Any] = r, prev: dict[str, Any] | None = prev) -> str:
            return f"x{r[key] / prev[key]:.1f}" if prev and prev[key] else "-"

        rows.append(
            [
                r["units"],
                r["file_kib"],
                r["render_before_ms"],
                r["render_ms"],
                ratio("render_ms"),
                r["render_peak_kib"],
                r["promtool_ms"],
                ratio("promtool_ms"),
                r["promtool_max_rss_kib"],
                r["render_validate_before_ms"],
                r["render_validate_ms"],
                ratio("render_validate_ms"),
                r["render_validate_before_cpu_ms"],
                r["render_validate_cpu_ms"],
                ratio("render_validate_cpu_ms"),
            ]
        )
    table(
        "Fan-in: prometheus.yml for N units on a target relation (before: PyYAML's pure-Python"
        " emitter; after: the charm's own writer, JSON; growth vs the row above)",
        [
            *["units", "KiB", "render ms before", "render ms", "", "peak KiB"],
            *["promtool ms", "", "RSS KiB", "render+validate ms before", "render+validate ms", ""],
            *["CPU ms before", "CPU ms", ""],
        ],
        rows,
    )

    reload = reload_vs_restart()
    table(
        "Reload vs restart (real Prometheus on 127.0.0.1, tmp TSDB)",
        ["measure", "value"],
        [[k, v] for k, v in reload.items()],
    )

    if options.json:
        options.json.write_text(
            json.dumps(
                {"imports": imports, "hooks": hooks, "fan_in": fan, "reload": reload}, indent=2
            )
            + "\n"
        )
        print(f"\nwrote {options.json}")


def platform_name() -> str:
    """Name the OS and CPU count, for the record."""
    try:
        release = dict(
            line.split("=", 1)
            for line in pathlib.Path("/etc/os-release").read_text().splitlines()
            if "=" in line
        )
        name = release.get("PRETTY_NAME", "").strip('"')
    except OSError:
        name = sys.platform
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    return f"{name}, {os.cpu_count()} CPUs, load average {load} at the start"


if __name__ == "__main__":
    main()
