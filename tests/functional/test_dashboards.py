"""Every shipped dashboard against a real Prometheus: its queries parse, run and name real metrics.

The Prometheus here (Debian's, 2.42) scrapes itself, so both the metrics on its own /metrics and
the series Prometheus makes for every target (up, scrape_duration_seconds, ...) exist. It also
scrapes a real node exporter (Debian's `prometheus-node-exporter`, started on a loopback port)
through the job the node-exporter charm publishes, as this repository's Prometheus charm turns
it into a scrape config (prometheus.jobs.cos_jobs), and a real Alertmanager (Debian's
`prometheus-alertmanager` 0.25, alone: clustering off, as a single unit runs) through the job the
Alertmanager charm publishes, so the Node overview's drop-downs and queries
see what they see in a deployment (Debian's exporter is 1.5.0; every node_* metric the dashboard
uses is also in jammy's 1.3.1: node_exporter v1.3.1 collector/fixtures/e2e-output.txt, and
collector/time.go, uname.go, meminfo.go, filesystem_common.go for what that file leaves out).
Grafana's own metrics cannot be checked without a Grafana binary: they are compared with the
names in Grafana's source instead.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import loopback
import metrics_endpoint
import pytest
from lab_monitoring.interfaces import grafana_dashboard, prometheus_scrape
from node_exporter import exporter, flags
from prometheus import jobs as prometheus_jobs
from prometheus import topology as prometheus_topology

CHARMS = Path(__file__).parents[2] / "charms"
# Each charm's own: Prometheus's, node-exporter's and Alertmanager's go to Grafana over
# grafana-dashboard,
# Grafana's own it provisions itself.
DASHBOARDS = sorted(
    [
        *(CHARMS / "prometheus/src/grafana_dashboards").glob("*.json"),
        *(CHARMS / "node-exporter/src/grafana_dashboards").glob("*.json"),
        *(CHARMS / "alertmanager/src/grafana_dashboards").glob("*.json"),
        *(CHARMS / "grafana/src/dashboards").glob("*.json"),
    ],
    key=lambda p: p.name,
)
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


def query_variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard's query variables (drop-downs filled from Prometheus), in order."""
    return [v for v in dashboard["templating"]["list"] if v["type"] == "query"]


def substitute(expr: str, values: Mapping[str, str] | None = None) -> str:
    """What Grafana sends Prometheus: its own variables and the dashboard's chosen values."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    values = values or {}
    # Longest names first, so that $instance is not taken for $inst + "ance".
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(f"${{{name}}}", values[name]).replace(f"${name}", values[name])
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


def test_there_are_the_prometheus_node_alertmanager_and_grafana_dashboards_each_with_its_charm():
    assert [p.relative_to(CHARMS).as_posix() for p in DASHBOARDS] == [
        "alertmanager/src/grafana_dashboards/alertmanager-overview.json",
        "grafana/src/dashboards/grafana-overview.json",
        "node-exporter/src/grafana_dashboards/node-overview.json",
        "prometheus/src/grafana_dashboards/prometheus-overview.json",
    ]


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

    for variable in query_variables(dashboard):
        assert variable["datasource"] == {"type": "prometheus", "uid": DATASOURCE}
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": DATASOURCE}
            checked += 1

    assert checked >= 3


COVERS = {
    "prometheus-overview.json": (
        "up",
        "scrape_duration_seconds",
        "prometheus_tsdb_head_samples_appended_total",
        "prometheus_tsdb_storage_blocks_bytes",
        "prometheus_rule_evaluation_duration_seconds",
    ),
    # What a person told of alerts asks first: what is firing, silenced, notified or failing.
    "alertmanager-overview.json": (
        "alertmanager_alerts",
        "alertmanager_silences",
        "alertmanager_notifications_total",
        "alertmanager_notifications_failed_total",
        "alertmanager_config_last_reload_successful",
    ),
    "grafana-overview.json": (
        "grafana_build_info",
        "grafana_http_request_duration_seconds_count",
        "grafana_http_request_in_flight",
    ),
    # Per machine: CPU, load, memory, disk space and I/O, network, uptime.
    "node-overview.json": (
        "node_cpu_seconds_total",
        "node_load1",
        "node_memory_MemAvailable_bytes",
        "node_filesystem_avail_bytes",
        "node_disk_read_bytes_total",
        "node_disk_written_bytes_total",
        "node_network_receive_bytes_total",
        "node_network_transmit_bytes_total",
        "node_boot_time_seconds",
    ),
}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_covers_what_the_issue_asks_for(path: Path):
    exprs = " ".join(expr for _, expr in queries(load(path)))

    for metric in COVERS[path.name]:
        assert re.search(rf"\b{metric}\b", exprs), metric


# The dashboards that travel over grafana-dashboard, and the charm that sends each.
SENT = {
    "prometheus-overview.json": "prometheus",
    "node-overview.json": "node-exporter",
    "alertmanager-overview.json": "alertmanager",
}


def provisioned(path: Path) -> grafana_dashboard.Dashboard:
    """What our Grafana writes for `path` once its charm sent it over the relation."""
    charm = SENT[path.name]
    templates = grafana_dashboard.templates_from_files(
        [path],
        charm=charm,
        charm_dir=CHARMS / charm,
        topology={"model": "lab", "model_uuid": UUID, "application": charm, "unit": f"{charm}/0"},
        inject_dropdowns=False,
    )
    raw = json.dumps({"templates": templates, "uuid": "1"})
    [dashboard] = grafana_dashboard.from_app_data(
        raw, charm, 1, {"lab_prometheus_0": "prometheus"}
    )
    return dashboard


@pytest.mark.parametrize("path", [p for p in DASHBOARDS if p.name in SENT], ids=lambda p: p.name)
def test_over_the_relation_a_dashboard_keeps_its_uid_queries_and_drop_downs(path: Path):
    shipped = load(path)

    dashboard = provisioned(path)

    content = json.loads(dashboard.content)
    # The uid in the file is the one COS's provider would give it, so it is kept as it is.
    assert (
        dashboard.uid
        == shipped["uid"]
        == grafana_dashboard.path40_uid(SENT[path.name], f"src/grafana_dashboards/{path.name}")
    )
    assert list(queries(content)) == list(queries(shipped))
    assert [v["query"] for v in query_variables(content)] == [
        v["query"] for v in query_variables(shipped)
    ]
    # Its own data source variable is replaced by COS's, which Grafana fills the same way.
    variables = {v["name"]: v for v in content["templating"]["list"]}
    assert "datasource" not in variables
    assert variables["prometheusds"]["type"] == "datasource"
    assert variables["prometheusds"]["query"] == "prometheus"
    for variable in query_variables(content):
        assert variable["datasource"] == {"type": "prometheus", "uid": "${prometheusds}"}
    for panel in panels(content):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${prometheusds}", panel["title"]


NODE = CHARMS / "node-exporter/src/grafana_dashboards/node-overview.json"
MACHINE = re.compile(r'\{[^}]*juju_unit="\$unit",instance="\$instance"[^}]*\}')


def test_node_overview_has_a_drop_down_per_machine_by_unit_then_instance():
    variables = {v["name"]: v for v in query_variables(load(NODE))}

    assert list(variables) == ["unit", "instance"]
    assert variables["unit"]["query"]["query"] == "label_values(node_uname_info, juju_unit)"
    assert variables["instance"]["query"]["query"] == (
        'label_values(node_uname_info{juju_unit="$unit"}, instance)'
    )
    assert not any(v["multi"] or v["includeAll"] for v in variables.values())


def test_every_node_overview_selector_is_the_chosen_machine():
    """A selector without the machine would mix every machine into one panel."""
    for title, expr in queries(load(NODE)):
        selectors = re.findall(r"\b(node_[a-zA-Z0-9_]+)(\{[^}]*\})?", expr)
        assert selectors, title
        for metric, matchers in selectors:
            assert MACHINE.fullmatch(matchers), f"{title}: {metric}{matchers}"


# --- against a real Prometheus ----------------------------------------------------------------


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


UUID = "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"
NODE_UNIT = "node-exporter/0"
ALERTMANAGER_UNIT = "alertmanager/0"
ALERTMANAGER = "prometheus-alertmanager"


def cos_jobs(app_data: dict[str, str], unit: str, application: str) -> list[dict[str, Any]]:
    """The scrape config this repository's Prometheus makes of one unit's metrics-endpoint data."""
    units = {unit: {"prometheus_scrape_unit_name": unit,
                    "prometheus_scrape_unit_address": "127.0.0.1"}}  # fmt: skip
    fallback = prometheus_topology.Topology("lab", UUID, application)
    declared = prometheus_topology.cos_topology(app_data, fallback)
    return prometheus_jobs.cos_jobs(app_data, units, declared, scrape_interval="1s")


@contextlib.contextmanager
def alertmanager(tmp: Path, run_process: Callable[..., Any]) -> Iterator[list[dict[str, Any]]]:
    """Run a real Alertmanager alone on a loopback port; yield Prometheus's jobs for it.

    The job is the one the Alertmanager charm publishes (its metrics_endpoint.jobs calls
    prometheus_scrape.job("alertmanager", port, route_prefix + "/metrics")); its module is not
    imported here, where node-exporter's module of the same name is.
    """
    port = loopback.free_port()
    (tmp / "alertmanager.yml").write_text(
        "route:\n  receiver: nobody\nreceivers:\n- name: nobody\n"
    )
    command = [
        ALERTMANAGER,
        f"--config.file={tmp / 'alertmanager.yml'}",
        f"--storage.path={tmp / 'alertmanager'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with run_process(command, f"http://127.0.0.1:{port}/-/ready", tmp / "alertmanager.log"):
        topology = prometheus_scrape.Topology(
            "lab", UUID, "alertmanager", ALERTMANAGER_UNIT, "alertmanager"
        )
        job = prometheus_scrape.job("alertmanager", port, "/metrics")
        app_data = prometheus_scrape.app_data(topology, [job], None)
        yield cos_jobs(app_data, ALERTMANAGER_UNIT, "alertmanager")


@pytest.fixture(scope="module")
def lab(
    tmp_path_factory: pytest.TempPathFactory,
    run_process: Callable[..., Any],
    scraping_prometheus: Callable[..., Any],
    wait_for: Callable[..., Any],
) -> Iterator[Any]:
    """A Prometheus scraping itself, a real node exporter and a real Alertmanager, like a lab."""
    if not shutil.which(exporter.BINARY):
        pytest.skip("needs the prometheus-node-exporter package")
    if not shutil.which(ALERTMANAGER):
        pytest.skip("needs the prometheus-alertmanager package")
    tmp = tmp_path_factory.mktemp("lab")
    port = loopback.free_port()
    # The charm's flags, but on the loopback interface only.
    args = flags.render(port=port, collectors={}, log_level="info")
    args[0] = f"--web.listen-address=127.0.0.1:{port}"
    url = f"http://127.0.0.1:{port}/metrics"
    with (
        run_process([exporter.BINARY, *args], url, tmp / "exporter.log"),
        alertmanager(tmp, run_process) as alertmanager_jobs,
    ):
        topology = metrics_endpoint.Topology(
            "lab", UUID, "node-exporter", NODE_UNIT, "node-exporter"
        )
        jobs = cos_jobs(metrics_endpoint.app_data(topology, port), NODE_UNIT, "node-exporter")
        assert len(jobs) == len(alertmanager_jobs) == 1
        with scraping_prometheus(tmp, jobs + alertmanager_jobs) as running:
            # A few scrapes of each, so that rate() over a minute has samples to work with.
            wait_for(
                lambda: (
                    running.query("min(count_over_time(up[1m])) >= 3")
                    and running.query("count_over_time(node_cpu_seconds_total[1m]) >= 3")
                    and running.query("count_over_time(alertmanager_build_info[1m]) >= 3")
                ),
                timeout=30,
                what="three scrapes of Prometheus, the node exporter and Alertmanager",
            )
            yield running


@pytest.fixture(scope="module")
def prometheus(lab: Any) -> str:
    """The base URL of the lab's Prometheus."""
    return lab.base_url


def series_values(prometheus: str, selector: str, label: str) -> list[str]:
    """What Grafana's label_values(selector, label) lists: the label's values on those series."""
    query = urllib.parse.urlencode({"match[]": selector})
    found = get_json(f"{prometheus}/api/v1/series?{query}")["data"]
    return sorted({s[label] for s in found if label in s})


@pytest.fixture(scope="module")
def chosen(prometheus: str) -> dict[str, dict[str, str]]:
    """For each dashboard, a value of each drop-down, picked as a user would, in order."""
    picked: dict[str, dict[str, str]] = {}
    for path in DASHBOARDS:
        values: dict[str, str] = {}
        for variable in query_variables(load(path)):
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"]["query"])
            assert match, variable["name"]
            options = series_values(prometheus, substitute(match.group(1), values), match.group(2))
            assert options, f"{path.name}: drop-down {variable['name']} is empty"
            values[variable["name"]] = options[0]
        picked[path.name] = values
    return picked


def test_node_overview_drop_downs_offer_the_node_exporter_unit_and_its_target(chosen, lab):
    [target] = [t for t in lab.targets() if t["labels"].get("juju_unit") == NODE_UNIT]

    assert chosen["node-overview.json"] == {
        "unit": NODE_UNIT,
        "instance": target["labels"]["instance"],
    }


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
def test_every_query_runs_and_prometheus_queries_return_data(
    path: Path, prometheus: str, chosen: dict[str, dict[str, str]]
):
    empty = []
    for title, expr in queries(load(path)):
        query = urllib.parse.quote(substitute(expr, chosen[path.name]))
        answer = get_json(f"{prometheus}/api/v1/query?query={query}")
        assert answer["status"] == "success", f"{title}: {expr}"
        only_prometheus = not any(n.startswith("grafana_") for n in metric_names(expr))
        if only_prometheus and not answer["data"]["result"]:
            empty.append(title)

    assert empty == []
