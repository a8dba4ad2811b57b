"""Canonical's machine recipe into this stack: PostgreSQL -> opentelemetry-collector -> ours.

What the functional tier cannot show (tests/functional/test_cos_collector.py stands a second
Prometheus in for the collector, and has no Grafana): the real collector snap scrapes the
PostgreSQL charm's exporter and pushes to our Prometheus over `receive-remote-write`, forwards
the charm's alert rules in its `alert_rules`, and hands its dashboards to our Grafana over
`grafana-dashboard`, which provisions them. Needs a Juju controller (skipped without one, see
conftest.py) and Charmhub access for `postgresql` 16/stable (Ubuntu 24.04) and
`opentelemetry-collector` (deployed on the principal's base). The test removes both again.
"""

import json
import urllib.parse
import urllib.request
from typing import Any

import jubilant
from lab_monitoring.interfaces import grafana_dashboard
from test_monitoring import Login, address, admin_login, poll

POSTGRESQL = "postgresql"
COLLECTOR = "otelcol"
# cos_agent.COSAgentProvider._dashboards gives each dashboard the uid cosl's DashboardPath40UID
# makes of the charm and the file's path (canonical/postgresql-operator 9251d5d).
DASHBOARD_UID = grafana_dashboard.path40_uid(
    POSTGRESQL, "src/grafana_dashboards/postgresql-metrics.json"
)


def prometheus_api(juju: jubilant.Juju, path: str, **query: str) -> Any:
    url = f"http://{address(juju, 'prometheus')}:9090{path}"
    if query:
        url += f"?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["data"]


def grafana_api(juju: jubilant.Juju, path: str, login: Login) -> Any:
    request = urllib.request.Request(f"http://{address(juju, 'grafana')}:3000{path}")
    request.add_header("Authorization", login.header())
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def postgresql_rules(juju: jubilant.Juju) -> list[dict[str, Any]]:
    groups = prometheus_api(juju, "/api/v1/rules")["groups"]
    return [
        rule
        for group in groups
        for rule in group["rules"]
        if rule["labels"].get("juju_application") == POSTGRESQL
    ]


def test_postgresql_metrics_rules_and_dashboards_arrive_through_the_collector(
    juju: jubilant.Juju,
):
    juju.deploy(POSTGRESQL, channel="16/stable")
    juju.deploy("opentelemetry-collector", COLLECTOR, base="ubuntu@24.04")
    try:
        juju.integrate(f"{COLLECTOR}:cos-agent", f"{POSTGRESQL}:cos-agent")
        juju.integrate(f"{COLLECTOR}:send-remote-write", "prometheus:receive-remote-write")
        juju.integrate(f"{COLLECTOR}:grafana-dashboards-provider", "grafana:grafana-dashboard")
        juju.wait(
            lambda s: jubilant.all_active(s) and jubilant.all_agents_idle(s),
            error=jubilant.any_error,
        )

        # Samples: pushed by the collector, labelled with the principal's topology.
        up = poll(
            lambda: prometheus_api(
                juju, "/api/v1/query", query=f'pg_up{{juju_application="{POSTGRESQL}"}}'
            )["result"],
            bool,
        )
        assert up, "no pg_up from the collector"
        assert {series["value"][1] for series in up} == {"1"}
        assert {series["metric"]["juju_unit"] for series in up} == {f"{POSTGRESQL}/0"}

        # Rules: the PostgreSQL charm's, forwarded in alert_rules, loaded and scoped to it.
        rules = poll(lambda: postgresql_rules(juju), bool)
        names = {rule["name"] for rule in rules}
        assert {"PostgresqlDown", "PostgresqlExporterError"} <= names
        for rule in rules:
            assert f'juju_application="{POSTGRESQL}"' in rule["query"], rule["name"]
            assert rule["health"] in ("ok", "unknown"), (rule["name"], rule.get("lastError"))

        # Dashboards: forwarded by the collector, provisioned by our Grafana.
        login = admin_login(juju)
        found = poll(
            lambda: grafana_api(juju, f"/api/dashboards/uid/{DASHBOARD_UID}", login),
            lambda d: bool(d.get("dashboard")),
        )
        dashboard = found["dashboard"]
        assert dashboard["title"] == "PostgreSQL"
        variables = [v["name"] for v in dashboard["templating"]["list"]]
        assert variables[:4] == ["juju_model", "juju_model_uuid", "juju_application", "juju_unit"]
        assert found["meta"]["provisioned"] is True
    finally:
        for app in (COLLECTOR, POSTGRESQL):
            juju.remove_application(app, destroy_storage=True, force=True)
        juju.wait(
            lambda s: COLLECTOR not in s.apps and POSTGRESQL not in s.apps,
            error=jubilant.any_error,
        )
        juju.wait(lambda s: jubilant.all_active(s) and jubilant.all_agents_idle(s))
