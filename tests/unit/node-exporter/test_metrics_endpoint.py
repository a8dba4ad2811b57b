"""metrics-endpoint: this charm's own job and alert rules, as its leader publishes them.

The wire format itself (metadata, each unit's address, a follower's share, an address not there
yet) is lab_monitoring.interfaces.prometheus_scrape's, tested in
tests/unit/lab_monitoring/test_prometheus_scrape.py.
"""

from __future__ import annotations

import json
import re

import pytest
from node_exporter_testing import UUID, state, unit_ctx
from ops import testing

METRICS = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
TOPOLOGY = {
    "juju_model": "lab",
    "juju_model_uuid": UUID,
    "juju_application": "node-exporter",
}
MATCHERS = f'juju_model="lab",juju_model_uuid="{UUID}",juju_application="node-exporter"'


def joined(ctx, **kwargs) -> testing.State:
    return ctx.run(
        ctx.on.relation_joined(METRICS, remote_unit=0), state(relations=[METRICS], **kwargs)
    )


def app_data(out: testing.State) -> dict[str, str]:
    return dict(out.get_relation(METRICS.id).local_app_data)


def unit_data(out: testing.State) -> dict[str, str]:
    """What this charm wrote in its unit databag (not Juju's own address keys)."""
    data = out.get_relation(METRICS.id).local_unit_data
    return {k: v for k, v in data.items() if k.startswith("prometheus_scrape_")}


def test_leader_publishes_one_job_for_every_units_address_on_the_port(ctx, machine):
    out = joined(ctx, config={"port": 9200})

    assert json.loads(app_data(out)["scrape_jobs"]) == [
        {
            "job_name": "node",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": ["*:9200"]}],
        }
    ]


def test_blocked_unit_publishes_nothing(ctx, machine):
    out = joined(ctx, config={"port": 0})

    assert app_data(out) == {}
    assert unit_data(out) == {}


def rules(out: testing.State) -> list[dict]:
    groups = json.loads(app_data(out)["alert_rules"])["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alert_rules_are_the_ones_the_readme_lists(ctx, machine):
    out = joined(ctx)

    assert [rule["alert"] for rule in rules(out)] == [
        "NodeDown",
        "NodeFilesystemAlmostFull",
        "NodeFilesystemFillingUp",
        "NodeMemoryExhausted",
        "NodeSystemdUnitFailed",
    ]


def test_alert_rule_group_is_named_as_cos_names_it(ctx, machine):
    out = joined(ctx)

    groups = json.loads(app_data(out)["alert_rules"])["groups"]
    assert [group["name"] for group in groups] == ["lab_2f5e6d0a_node_exporter_node_rules"]


def test_every_rule_carries_the_topology_labels_cos_adds(ctx, machine):
    out = joined(ctx)

    for rule in rules(out):
        assert rule["labels"] == {
            **TOPOLOGY,
            "juju_charm": "node-exporter",
            "severity": rule["labels"]["severity"],
        }
        assert rule["labels"]["severity"] in ("warning", "critical")


def test_every_selector_is_scoped_to_this_application(ctx, machine):
    out = joined(ctx)

    for rule in rules(out):
        assert "%%" not in rule["expr"], rule["alert"]
        selectors = re.findall(r"\b(?:up|node_[a-zA-Z_]+)\{([^}]*)\}", rule["expr"])
        bare = re.findall(r"\b(?:up|node_[a-zA-Z_]+)\b(?![{_a-zA-Z])", rule["expr"])
        assert selectors, rule["alert"]
        assert bare == [], rule["alert"]
        assert all(s.startswith(MATCHERS) for s in selectors), rule["alert"]


@pytest.mark.parametrize("app", ["node-exporter", "rack-exporter-2"])
def test_rules_follow_the_application_name(machine, app):
    out = joined(unit_ctx(app=app))

    for rule in rules(out):
        assert f'juju_application="{app}"' in rule["expr"]
        assert rule["labels"]["juju_application"] == app


def test_a_port_change_updates_the_published_job(ctx, machine):
    before = joined(ctx)

    out = ctx.run(
        ctx.on.config_changed(),
        state(relations=[before.get_relation(METRICS.id)], config={"port": 9300}),
    )

    jobs = json.loads(app_data(out)["scrape_jobs"])
    assert jobs[0]["static_configs"] == [{"targets": ["*:9300"]}]
