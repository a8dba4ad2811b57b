"""Every shipped dashboard against a real Prometheus: its queries parse, run and name real metrics.

The Prometheus here (Debian's, 2.42) scrapes itself, so both the metrics on its own /metrics and
the series Prometheus makes for every target (up, scrape_duration_seconds, ...) exist. Grafana's
own metrics cannot be checked without a Grafana binary: they are compared with the names in
Grafana's source instead.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DASHBOARDS = sorted((Path(__file__).parents[2] / "charms/grafana/src/dashboards").glob("*.json"))
DATASOURCE = "${datasource}"

# Grafana's metrics the dashboards use, as defined in Grafana's source:
# pkg/middleware/request_metrics.go (grafana_http_request_*) and pkg/infra/metrics/metrics.go
# (grafana_build_info). Histograms also expose _bucket, _sum and _count series.
GRAFANA_METRICS = {
    "grafana_build_info",
    "grafana_http_request_in_flight",
    "grafana_http_request_duration_seconds_count",
    "grafana_http_request_duration_seconds_sum",
    "grafana_http_request_duration_seconds_bucket",
}
# What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan",
}  # fmt: skip


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # panels inside collapsed rows


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def substitute(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (enough PromQL for these dashboards)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        following = expr[match.end() :].lstrip()
        if following.startswith("(") or match.group().lower() in PROMQL_WORDS:
            continue  # a function or aggregation, or a keyword
        names.add(match.group())
    return names


def test_metric_name_extraction_sees_selectors_but_not_functions_or_labels():
    expr = 'sum by (job) (rate(a_total{code="5xx"}[$__rate_interval])) / on(job) b or vector(0)'

    assert metric_names(expr) == {"a_total", "b"}


def test_there_is_a_dashboard():
    assert [p.name for p in DASHBOARDS] == ["prometheus-overview.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_has_a_prometheus_datasource_variable(path: Path):
    variables = load(path)["templating"]["list"]

    assert {"name": "datasource", "type": "datasource", "query": "prometheus"}.items() <= next(
        v for v in variables if v["name"] == "datasource"
    ).items()


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_and_query_uses_the_datasource_variable(path: Path):
    dashboard = load(path)
    checked = 0

    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": DATASOURCE}
            checked += 1

    assert checked >= 6


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_covers_what_the_issue_asks_for(path: Path):
    exprs = " ".join(expr for _, expr in queries(load(path)))

    for metric in (
        "up",
        "scrape_duration_seconds",
        "prometheus_tsdb_head_samples_appended_total",
        "prometheus_tsdb_storage_blocks_bytes",
        "prometheus_rule_evaluation_duration_seconds",
        "grafana_http_request_duration_seconds_count",
    ):
        assert re.search(rf"\b{metric}\b", exprs), metric


# --- against a real Prometheus ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def scrapes(url: str) -> float:
    result = get_json(f"{url}/api/v1/query?query=count_over_time(up[1m])")["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus on a free loopback port that has scraped itself a few times."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        pytest.skip("no prometheus binary (apt install prometheus)")
    tmp = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    address = f"127.0.0.1:{port}"
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: prometheus\n    static_configs: [{{targets: ['{address}']}}]\n"
    )
    log = (tmp / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address={address}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{address}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, (tmp / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "Prometheus did not become ready in 30s"
            time.sleep(0.2)
        # A few self-scrapes, so that rate() over a minute has samples to work with.
        while scrapes(url) < 3:
            assert time.monotonic() < deadline + 30, "Prometheus did not scrape itself"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def known_metrics(prometheus: str) -> set[str]:
    """Names on the real Prometheus's /metrics plus the series it stored from scraping."""
    with urllib.request.urlopen(f"{prometheus}/metrics", timeout=5) as response:
        exposed = {
            re.split(r"[{ ]", line, maxsplit=1)[0]
            for line in response.read().decode().splitlines()
            if line and not line.startswith("#")
        }
    stored = set(get_json(f"{prometheus}/api/v1/label/__name__/values")["data"])
    return exposed | stored


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_queried_metric_exists(path: Path, known_metrics: set[str]):
    missing = []
    for title, expr in queries(load(path)):
        for name in metric_names(substitute(expr)):
            known = GRAFANA_METRICS if name.startswith("grafana_") else known_metrics
            if name not in known:
                missing.append(f"{title}: {name}")

    assert missing == []


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_query_runs_and_prometheus_queries_return_data(path: Path, prometheus: str):
    empty = []
    for title, expr in queries(load(path)):
        query = urllib.parse.quote(substitute(expr))
        answer = get_json(f"{prometheus}/api/v1/query?query={query}")
        assert answer["status"] == "success", f"{title}: {expr}"
        only_prometheus = not any(n.startswith("grafana_") for n in metric_names(expr))
        if only_prometheus and not answer["data"]["result"]:
            empty.append(title)

    assert empty == []
