"""The grafana-dashboard relation, provider side: the subordinate's application sends its own."""

from __future__ import annotations

import json

import charm
from lab_monitoring.interfaces import grafana_dashboard
from node_exporter_testing import state, unit_ctx
from ops import testing

SHIPPED = charm.DASHBOARDS / "node-overview.json"


def joined(ctx, *, leader: bool = True) -> testing.Relation:
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana")
    out = ctx.run(
        ctx.on.relation_joined(relation, remote_unit=0),
        state(leader=leader, relations=[relation]),
    )
    return out.get_relation(relation.id)


def test_the_leader_sends_the_node_overview_as_cos_encodes_it(ctx, machine):
    relation = joined(ctx)

    templates = json.loads(relation.local_app_data["dashboards"])["templates"]
    [(key, template)] = templates.items()
    assert key == "file:node-overview"
    assert (template["charm"], template["inject_dropdowns"]) == ("node-exporter", False)
    sent = json.loads(grafana_dashboard.decode(template["content"]))
    shipped = json.loads(SHIPPED.read_text())
    assert sent == shipped | {"tags": [*shipped["tags"], "charm: node-exporter"]}


def test_the_dashboard_is_one_per_application_from_its_leader(machine):
    # Two units of the application on two principals: only the leader writes app data.
    leader = joined(unit_ctx(unit_id=0), leader=True)
    follower = joined(unit_ctx(unit_id=1), leader=False)

    assert "dashboards" in leader.local_app_data
    assert "dashboards" not in follower.local_app_data


def test_a_grafana_provisions_it_under_the_uid_kept_in_the_file(ctx, machine):
    relation = joined(ctx)

    [dashboard] = grafana_dashboard.from_app_data(
        relation.local_app_data["dashboards"], "node-exporter", relation.id, {}
    )

    uid = grafana_dashboard.path40_uid(
        "node-exporter", "src/grafana_dashboards/node-overview.json"
    )
    assert dashboard.uid == uid == json.loads(SHIPPED.read_text())["uid"]
    assert dashboard.title == "Node overview"
