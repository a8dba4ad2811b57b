"""What each unit tells related charms: alerting, grafana-source, metrics-endpoint, http."""

from __future__ import annotations

import json

import pytest
import yaml
from alertmanager_testing import CHARM_DIR, MODEL, state
from ops import testing


def network(endpoint: str, address: str) -> testing.Network:
    return testing.Network(
        endpoint,
        bind_addresses=[testing.BindAddress([testing.Address(address)])],
        ingress_addresses=[address],
        egress_subnets=[],
    )


def ours(data: dict[str, str]) -> dict[str, str]:
    """A unit databag without the keys Juju itself writes."""
    juju = {"egress-subnets", "ingress-address", "private-address"}
    return {key: value for key, value in data.items() if key not in juju}


def test_alerting_publishes_the_unit_url_in_both_wire_formats(ctx, fake):
    relation = testing.Relation("alerting", remote_app_name="prometheus")

    out = ctx.run(
        ctx.on.relation_joined(relation, remote_unit=0),
        state(relations=[relation], networks=[network("alerting", "10.0.0.10")]),
    )

    assert ours(out.get_relation(relation.id).local_unit_data) == {
        "url": "http://10.0.0.10:9093",
        "public_address": "10.0.0.10:9093",
        "scheme": "http",
    }
    assert out.get_relation(relation.id).local_app_data == {}


def test_alerting_carries_the_port_and_route_prefix(ctx, fake):
    relation = testing.Relation("alerting")
    config = {"web-port": 9193, "web-external-url": "http://localhost:9193/am/"}

    out = ctx.run(
        ctx.on.config_changed(),
        state(config=config, relations=[relation], networks=[network("alerting", "fd00::10")]),
    )

    assert ours(out.get_relation(relation.id).local_unit_data) == {
        "url": "http://[fd00::10]:9193/am",
        "public_address": "[fd00::10]:9193/am",
        "scheme": "http",
    }


def test_hostile_data_from_prometheus_changes_nothing(ctx, fake, settled):
    # Nothing of a requirer's data is read; a remote charm cannot reach the files.
    relation = testing.Relation(
        "alerting",
        remote_app_data={"url": "http://evil:1/\n- x", "scheme": "javascript"},
        remote_units_data={0: {"public_address": "'; rm -rf /", "cluster_address": "evil:1"}},
    )
    before = settled(state(relations=[relation]))

    out = ctx.run(ctx.on.relation_joined(before.get_relation(relation.id), remote_unit=0), before)

    assert fake.writes == []
    assert fake.flag("cluster.peer") == []
    assert out.unit_status.name == "active"


def test_grafana_source_is_an_alertmanager_data_source_with_the_prometheus_implementation(
    ctx, fake
):
    relation = testing.Relation("grafana-source", remote_app_name="grafana")

    out = ctx.run(
        ctx.on.relation_joined(relation, remote_unit=0),
        state(relations=[relation], networks=[network("grafana-source", "10.0.0.10")]),
    )

    written = out.get_relation(relation.id)
    assert written.local_unit_data["grafana_source_host"] == "http://10.0.0.10:9093"
    assert written.local_unit_data["type"] == "alertmanager"
    cos = json.loads(written.local_app_data["grafana_source_data"])
    assert cos["type"] == "alertmanager"
    assert cos["extra_fields"] == {"implementation": "prometheus"}
    assert cos["model"] == "lab"


def test_grafana_source_url_has_the_route_prefix(ctx, fake):
    relation = testing.Relation("grafana-source")

    out = ctx.run(
        ctx.on.config_changed(),
        state(
            config={"web-external-url": "https://lab.example/am/"},
            relations=[relation],
            networks=[network("grafana-source", "10.0.0.10")],
        ),
    )

    assert out.get_relation(relation.id).local_unit_data["url"] == "http://10.0.0.10:9093/am"


def test_a_non_leader_publishes_no_application_data(ctx, fake):
    relation = testing.Relation("grafana-source")

    out = ctx.run(ctx.on.config_changed(), state(leader=False, relations=[relation]))

    assert out.get_relation(relation.id).local_app_data == {}
    assert out.get_relation(relation.id).local_unit_data["type"] == "alertmanager"


def test_metrics_endpoint_publishes_the_job_under_the_route_prefix(ctx, fake):
    relation = testing.Relation("metrics-endpoint")

    out = ctx.run(
        ctx.on.config_changed(),
        state(
            config={"web-external-url": "http://localhost:9093/am"},
            relations=[relation],
            networks=[network("metrics-endpoint", "10.0.0.10")],
        ),
    )

    written = out.get_relation(relation.id)
    assert json.loads(written.local_app_data["scrape_jobs"]) == [
        {
            "job_name": "alertmanager",
            "metrics_path": "/am/metrics",
            "static_configs": [{"targets": ["*:9093"]}],
        }
    ]
    assert written.local_unit_data["prometheus_scrape_unit_address"] == "10.0.0.10"


def test_metrics_endpoint_ships_both_rules_scoped_to_this_application(ctx, fake):
    relation = testing.Relation("metrics-endpoint")

    out = ctx.run(ctx.on.config_changed(), state(relations=[relation]))

    rules = json.loads(out.get_relation(relation.id).local_app_data["alert_rules"])
    [group] = rules["groups"]
    assert group["name"] == f"lab_{MODEL.uuid[:8]}_alertmanager_alertmanager_rules"
    by_name = {rule["alert"]: rule for rule in group["rules"]}
    assert set(by_name) == {"AlertmanagerNotificationsFailing", "AlertmanagerConfigReloadFailing"}
    matchers = f'juju_model="lab",juju_model_uuid="{MODEL.uuid}",juju_application="alertmanager"'
    for rule in by_name.values():
        assert "%%juju_topology%%" not in rule["expr"]
        assert matchers in rule["expr"]
        assert rule["labels"]["juju_charm"] == "alertmanager"
    assert (
        "alertmanager_notifications_failed_total"
        in by_name["AlertmanagerNotificationsFailing"]["expr"]
    )
    assert by_name["AlertmanagerConfigReloadFailing"]["expr"].startswith(
        "alertmanager_config_last_reload_successful{"
    )


def test_every_selector_of_the_shipped_rules_is_marked_for_topology():
    text = (CHARM_DIR / "src/prometheus_alert_rules/alertmanager.rules").read_text()
    rules = yaml.safe_load(text)["groups"][0]["rules"]

    for rule in rules:
        metric_names = [
            name
            for name in (
                "alertmanager_notifications_failed_total",
                "alertmanager_config_last_reload_successful",
            )
            if name in rule["expr"]
        ]
        for name in metric_names:
            assert f"{name}{{%%juju_topology%%}}" in rule["expr"]


@pytest.mark.parametrize("port", [9093, 80])
def test_the_legacy_http_endpoint_gets_hostname_and_port(ctx, fake, port):
    relation = testing.Relation("alertmanager-service", remote_app_name="ceph-dashboard")

    out = ctx.run(
        ctx.on.config_changed(),
        state(
            config={"web-port": port},
            relations=[relation],
            networks=[network("alertmanager-service", "10.0.0.10")],
        ),
    )

    assert ours(out.get_relation(relation.id).local_unit_data) == {
        "hostname": "10.0.0.10",
        "port": str(port),
    }


def test_nothing_is_published_while_the_options_are_invalid(ctx, fake):
    relation = testing.Relation("alerting")

    out = ctx.run(
        ctx.on.config_changed(), state(config={"log-level": "loud"}, relations=[relation])
    )

    assert ours(out.get_relation(relation.id).local_unit_data) == {}
