"""Every shipped dashboard against a real Prometheus: its queries parse, run and name real metrics.

The Prometheus here (Debian's, 2.42) scrapes itself, so both the metrics on its own /metrics and
the series Prometheus makes for every target (up, scrape_duration_seconds, ...) exist. Grafana's
own metrics cannot be checked without a Grafana binary: they are compared with the names in
Grafana's source instead.
"""

from __future__ import annotations

import json
import re
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


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def prometheus(self_scraping_prometheus) -> str:
    """The base URL of a real Prometheus that has scraped itself a few times."""
    return self_scraping_prometheus.base_url


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
