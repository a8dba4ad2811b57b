"""The grafana-dashboard relation, provider side: the application's leader sends its dashboard."""

from __future__ import annotations

import json

from alertmanager_testing import CHARM_DIR, state
from lab_monitoring.interfaces import grafana_dashboard
from ops import testing

SHIPPED = CHARM_DIR / "src" / "grafana_dashboards" / "alertmanager-overview.json"


def joined(ctx, *, leader: bool = True) -> testing.Relation:
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana")
    out = ctx.run(
        ctx.on.relation_joined(relation, remote_unit=0),
        state(leader=leader, relations=[relation]),
    )
    return out.get_relation(relation.id)


def test_the_leader_sends_the_alertmanager_overview_as_cos_encodes_it(ctx, fake):
    relation = joined(ctx)

    templates = json.loads(relation.local_app_data["dashboards"])["templates"]
    [(key, template)] = templates.items()
    assert key == "file:alertmanager-overview"
    assert (template["charm"], template["inject_dropdowns"]) == ("alertmanager", False)
    sent = json.loads(grafana_dashboard.decode(template["content"]))
    shipped = json.loads(SHIPPED.read_text())
    assert sent == shipped | {"tags": [*shipped["tags"], "charm: alertmanager"]}


def test_only_the_leader_writes_the_dashboard(ctx, fake):
    relation = joined(ctx, leader=False)

    assert "dashboards" not in relation.local_app_data


def test_the_dashboard_is_sent_while_the_package_cannot_be_installed(ctx, fake):
    # The dashboard is the application's: a unit whose apt fails still lets Grafana have it.
    fake.install_error = "E: Unable to locate package prometheus-alertmanager"
    fake.is_installed = False
    relation = joined(ctx)

    assert "dashboards" in relation.local_app_data


def test_a_grafana_provisions_it_under_the_uid_kept_in_the_file(ctx, fake):
    relation = joined(ctx)

    [dashboard] = grafana_dashboard.from_app_data(
        relation.local_app_data["dashboards"], "alertmanager", relation.id, {}
    )

    uid = grafana_dashboard.path40_uid(
        "alertmanager", "src/grafana_dashboards/alertmanager-overview.json"
    )
    assert dashboard.uid == uid == json.loads(SHIPPED.read_text())["uid"]
    assert dashboard.title == "Alertmanager overview"
