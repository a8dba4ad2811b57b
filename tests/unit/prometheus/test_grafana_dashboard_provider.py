"""The grafana-dashboard relation, provider side: Prometheus sends its own dashboard."""

from __future__ import annotations

import json

import charm
from lab_monitoring.interfaces import grafana_dashboard
from ops import testing

MODEL = testing.Model(name="lab", uuid="2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f")
SHIPPED = charm.DASHBOARDS / "prometheus-overview.json"


def joined(ctx, *, leader: bool = True, installed: bool = True, fake=None) -> testing.Relation:
    if fake is not None:
        fake.is_installed = installed
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana")
    state = testing.State(model=MODEL, leader=leader, relations=[relation])
    out = ctx.run(ctx.on.relation_joined(relation, remote_unit=0), state)
    return out.get_relation(relation.id)


def templates(relation: testing.Relation) -> dict[str, dict]:
    return json.loads(relation.local_app_data["dashboards"])["templates"]


def test_the_leader_sends_the_prometheus_overview_as_cos_encodes_it(ctx, fake):
    relation = joined(ctx)

    [(key, template)] = templates(relation).items()
    assert key == "file:prometheus-overview"
    assert template["charm"] == "prometheus"
    assert template["inject_dropdowns"] is False
    assert template["juju_topology"] == {}
    assert template["dashboard_alt_uid"] == grafana_dashboard.alt_uid("prometheus", key)
    sent = json.loads(grafana_dashboard.decode(template["content"]))
    shipped = json.loads(SHIPPED.read_text())
    # COS's provider adds the charm's tag; everything else is the file as it is.
    assert sent == shipped | {"tags": [*shipped["tags"], "charm: prometheus"]}


def test_a_grafana_reads_it_with_every_query_bound_to_its_data_source(ctx, fake):
    relation = joined(ctx)

    [dashboard] = grafana_dashboard.from_app_data(
        relation.local_app_data["dashboards"], "prometheus", relation.id, {}
    )

    assert dashboard.title == "Prometheus overview"
    assert dashboard.file_name == f"juju_prometheus_{json.loads(SHIPPED.read_text())['uid']}.json"
    assert "${datasource}" not in dashboard.content


def test_a_follower_sends_nothing(ctx, fake):
    relation = joined(ctx, leader=False)

    assert "dashboards" not in relation.local_app_data


def test_the_dashboard_is_sent_before_prometheus_is_installed(ctx, fake):
    # Installing can fail and be retried for a while; the dashboard does not wait for it.
    fake.install_error = "archive unreachable"

    relation = joined(ctx, installed=False, fake=fake)

    assert "file:prometheus-overview" in templates(relation)


def test_sending_the_same_dashboard_again_changes_nothing(ctx, fake):
    relation = joined(ctx)
    state = testing.State(model=MODEL, leader=True, relations=[relation])

    out = ctx.run(ctx.on.update_status(), state)

    assert out.get_relation(relation.id).local_app_data == relation.local_app_data
