"""node-exporter in the deployed bundle: a unit on both machines, both on the Node overview.

Grafana is asked through its API what the dashboard asks: its Unit drop-down, then every
panel's query for each machine, through the Prometheus data source's proxy.
"""

import re
import urllib.parse
from typing import Any

import jubilant
import pytest
from test_monitoring import Login, admin_login, expected_uids, grafana, poll

# node-exporter sends it over grafana-dashboard; its uid is the one COS's provider gives the file
# (shake_256 of "node-exporter-src/grafana_dashboards/node-overview.json"), kept in the file.
NODE_OVERVIEW = "422c1a995e20bb843518662b0f0b24a2f706b4d8"
PORT = 9100


@pytest.fixture(scope="module")
def login(juju: jubilant.Juju) -> Login:
    return admin_login(juju)


def node_units(status: jubilant.Status) -> dict[str, str]:
    """Each principal unit of the bundle and the node-exporter unit beside it."""
    found = {}
    for app in ("prometheus", "grafana"):
        for name, unit in status.apps[app].units.items():
            for sub in unit.subordinates:
                if sub.startswith("node-exporter/"):
                    found[name] = sub
    return found


def proxy(juju: jubilant.Juju, login: Login, path: str, **query: str) -> Any:
    """Ask the Prometheus data source through Grafana, as a dashboard panel does."""
    (uid,) = expected_uids(juju.status())
    return grafana(juju, f"/api/datasources/proxy/uid/{uid}/api/v1{path}", login, **query)


def test_a_node_exporter_unit_runs_beside_each_principal(juju: jubilant.Juju):
    status = juju.status()

    assert set(node_units(status)) == {"prometheus/0", "grafana/0"}
    assert sorted(status.apps["node-exporter"].subordinate_to) == ["grafana", "prometheus"]


def test_grafana_provisions_the_node_overview(juju: jubilant.Juju, login: Login):
    dashboard = grafana(juju, f"/api/dashboards/uid/{NODE_OVERVIEW}", login)["dashboard"]

    assert dashboard["title"] == "Node overview"


def test_node_overview_shows_data_for_both_machines(juju: jubilant.Juju, login: Login):
    status = juju.status()
    expected = set(node_units(status).values())
    dashboard = grafana(juju, f"/api/dashboards/uid/{NODE_OVERVIEW}", login)["dashboard"]
    unit_query = next(v for v in dashboard["templating"]["list"] if v["name"] == "unit")
    selector = re.fullmatch(r"label_values\((.+), juju_unit\)", unit_query["query"]["query"])
    assert selector

    # The Unit drop-down: label_values(node_uname_info, juju_unit), as Grafana asks it.
    series = poll(
        lambda: proxy(juju, login, "/series", **{"match[]": selector.group(1)})["data"],
        lambda found: {s.get("juju_unit") for s in found} >= expected,
    )
    instances = {s["juju_unit"]: s["instance"] for s in series if "juju_unit" in s}
    assert set(instances) >= expected

    principal_address = {
        sub: status.apps[name.split("/")[0]].units[name].public_address
        for name, sub in node_units(status).items()
    }
    for unit in sorted(expected):
        assert instances[unit] == f"{principal_address[unit]}:{PORT}"
        empty = []
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = (
                    target["expr"]
                    .replace("$__rate_interval", "2m")
                    .replace("$instance", instances[unit])
                    .replace("$unit", unit)
                )
                answer = poll(
                    lambda expr=expr: proxy(juju, login, "/query", query=expr),
                    lambda a: bool(a["data"]["result"]),
                    timeout=60,
                )
                if not answer["data"]["result"]:
                    empty.append(f"{panel['title']}: {urllib.parse.quote(expr)}")
        assert empty == [], unit
