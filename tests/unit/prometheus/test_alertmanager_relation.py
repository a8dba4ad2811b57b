"""Where Prometheus sends alerts: the `alertmanager` and legacy `alertmanager-service` relations.

The databags are the ones Alertmanager charms write: COS's `alertmanager_dispatch` v1 (`url`)
and v0 (`public_address`, `scheme`; the oldest v0 without `scheme`), as the shared package's
provider writes them for this repository's Alertmanager, and the `http` interface (`hostname`,
`port`) of the old prometheus-alertmanager charm. Relation data is another administrator's:
nothing in it may crash a hook or reach prometheus.yml unvalidated.
"""

from __future__ import annotations

import dataclasses
import logging

import charm
import pytest
import yaml
from lab_monitoring.interfaces import alertmanager_dispatch
from ops import testing

UUID = "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"
MODEL = testing.Model(name="lab", uuid=UUID)
TOPOLOGY = {
    "juju_model": "lab",
    "juju_model_uuid": UUID,
    "juju_application": "prometheus",
    "juju_charm": "prometheus",
}


def dispatch(units: dict[int, dict[str, str]], app: str = "alertmanager") -> testing.Relation:
    return testing.Relation("alertmanager", remote_app_name=app, remote_units_data=units)


def legacy(units: dict[int, dict[str, str]], app: str = "am-legacy") -> testing.Relation:
    return testing.Relation("alertmanager-service", remote_app_name=app, remote_units_data=units)


def run(ctx, *relations: testing.Relation) -> testing.State:
    state = testing.State(model=MODEL, relations=list(relations))
    return ctx.run(ctx.on.relation_changed(relations[0], remote_unit=0), state)


def alerting(fake) -> list[dict]:
    return fake.parsed_config().get("alerting", {}).get("alertmanagers", [])


def entry(*targets: str, scheme: str = "http", path_prefix: str = "/") -> dict:
    return {
        "scheme": scheme,
        "path_prefix": path_prefix,
        "static_configs": [{"targets": list(targets)}],
    }


def test_without_an_alertmanager_prometheus_yml_has_no_alerting_section(ctx, fake):
    ctx.run(ctx.on.config_changed(), testing.State(model=MODEL))

    assert "alerting" not in fake.parsed_config()


def test_every_unit_s_url_becomes_a_target(ctx, fake):
    run(
        ctx,
        dispatch(
            {
                0: alertmanager_dispatch.unit_data("http://10.0.0.5:9093"),
                1: alertmanager_dispatch.unit_data("http://10.0.0.6:9093"),
            }
        ),
    )

    assert alerting(fake) == [entry("10.0.0.5:9093", "10.0.0.6:9093")]


def test_the_cos_v1_url_alone_is_enough(ctx, fake):
    run(ctx, dispatch({0: {"url": "http://10.0.0.5:9093"}}))

    assert alerting(fake) == [entry("10.0.0.5:9093")]


def test_the_older_public_address_and_scheme_are_read(ctx, fake):
    run(ctx, dispatch({0: {"public_address": "am.lab:9093/am", "scheme": "https"}}))

    assert alerting(fake) == [entry("am.lab:9093", scheme="https", path_prefix="/am")]


def test_the_oldest_public_address_without_a_scheme_is_plain_http(ctx, fake):
    run(ctx, dispatch({0: {"public_address": "10.0.0.5:9093"}}))

    assert alerting(fake) == [entry("10.0.0.5:9093")]


def test_url_wins_over_the_older_keys(ctx, fake):
    data = {"url": "http://10.0.0.5:9093", "public_address": "10.9.9.9:1", "scheme": "https"}

    run(ctx, dispatch({0: data}))

    assert alerting(fake) == [entry("10.0.0.5:9093")]


def test_a_url_without_a_port_gets_its_scheme_s(ctx, fake):
    run(ctx, dispatch({0: {"url": "https://am.lab"}, 1: {"url": "http://am2.lab"}}))

    assert alerting(fake) == [entry("am2.lab:80"), entry("am.lab:443", scheme="https")]


def test_an_ipv6_unit_is_written_in_brackets(ctx, fake):
    run(ctx, dispatch({0: alertmanager_dispatch.unit_data("http://[fd00::5]:9093")}))

    assert alerting(fake) == [entry("[fd00::5]:9093")]


def test_targets_are_grouped_by_scheme_and_route_prefix(ctx, fake):
    run(
        ctx,
        dispatch(
            {
                0: {"url": "http://10.0.0.5:9093"},
                1: {"url": "http://10.0.0.6:9093/am/"},
                2: {"url": "https://10.0.0.7:9093/am"},
                3: {"url": "http://10.0.0.8:9093/am"},
            }
        ),
    )

    assert alerting(fake) == [
        entry("10.0.0.5:9093"),
        entry("10.0.0.6:9093", "10.0.0.8:9093", path_prefix="/am"),
        entry("10.0.0.7:9093", scheme="https", path_prefix="/am"),
    ]


def test_units_of_several_alertmanager_applications_are_all_targets(ctx, fake):
    run(
        ctx,
        dispatch({0: {"url": "http://10.0.0.5:9093"}}, app="am-a"),
        dispatch({0: {"url": "http://10.0.0.9:9093"}}, app="am-b"),
    )

    assert alerting(fake) == [entry("10.0.0.5:9093", "10.0.0.9:9093")]


def test_legacy_units_hostname_and_port_become_plain_http_targets(ctx, fake):
    run(
        ctx,
        legacy(
            {
                0: {"hostname": "10.0.0.5", "port": "9093"},
                1: {"private-address": "10.0.0.6", "port": "9093"},
            }
        ),
    )

    assert alerting(fake) == [entry("10.0.0.5:9093", "10.0.0.6:9093")]


def test_legacy_hostname_wins_over_private_address(ctx, fake):
    run(ctx, legacy({0: {"hostname": "am.lab", "private-address": "10.0.0.1", "port": "9093"}}))

    assert alerting(fake) == [entry("am.lab:9093")]


def test_an_alertmanager_on_both_relations_is_one_target(ctx, fake):
    run(
        ctx,
        dispatch({0: alertmanager_dispatch.unit_data("http://10.0.0.5:9093")}),
        legacy({0: {"hostname": "10.0.0.5", "port": "9093"}}, app="alertmanager"),
    )

    assert alerting(fake) == [entry("10.0.0.5:9093")]


@pytest.mark.parametrize(
    "data",
    [{}, {"scheme": "http"}, {"url": ""}, {"public_address": ""}],
    ids=["nothing", "scheme only", "empty url", "empty public_address"],
)
def test_a_unit_that_published_no_address_yet_is_left_out_quietly(ctx, fake, caplog, data):
    with caplog.at_level(logging.WARNING):
        out = run(ctx, dispatch({0: data, 1: {"url": "http://10.0.0.6:9093"}}))

    assert alerting(fake) == [entry("10.0.0.6:9093")]
    assert caplog.records == []
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


HOSTILE_DISPATCH = {
    "not http": ({"url": "ftp://10.0.0.5:9093"}, "http:// or https://"),
    "no host": ({"url": "http://:9093"}, "no host"),
    "port out of range": ({"url": "http://10.0.0.5:99999"}, "invalid port"),
    "port zero": ({"url": "http://10.0.0.5:0"}, "zero port"),
    "a newline into the file": ({"url": "http://10.0.0.5:9093\n  - evil: x"}, "whitespace"),
    "a query": ({"url": "http://10.0.0.5:9093/?x=1"}, "query"),
    "a fragment": ({"url": "http://10.0.0.5:9093/#top"}, "fragment"),
    "a host that is no name": ({"url": "http://evil_host!:9093"}, "host"),
    "non-ASCII": ({"url": "http://am\u00e9.lab:9093"}, "non-ASCII"),
    "a path that is no prefix": ({"url": "http://10.0.0.5:9093/a//b"}, "route prefix"),
    "a scheme that is no scheme": (
        {"public_address": "10.0.0.5:9093", "scheme": "gopher"},
        "scheme must be http or https",
    ),
    "a URL as public_address": (
        {"public_address": "http://10.0.0.5:9093", "scheme": "http"},
        "public_address must be host:port/path",
    ),
    "public_address with a bad port": ({"public_address": "10.0.0.5:port"}, "invalid port"),
}


@pytest.mark.parametrize(
    ("data", "reason"), HOSTILE_DISPATCH.values(), ids=HOSTILE_DISPATCH.keys()
)
def test_a_hostile_alertmanager_unit_is_skipped_with_its_reason(ctx, fake, caplog, data, reason):
    with caplog.at_level(logging.WARNING):
        out = run(ctx, dispatch({0: data, 1: {"url": "http://10.0.0.6:9093"}}))

    assert alerting(fake) == [entry("10.0.0.6:9093")]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("alertmanager: ignoring alertmanager/0: ")
    assert reason in warning
    assert "evil" not in (fake.config or "")
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


HOSTILE_LEGACY = {
    "port zero": ({"hostname": "10.0.0.5", "port": "0"}, "port"),
    "port too big": ({"hostname": "10.0.0.5", "port": "65536"}, "port"),
    "port not ASCII digits": ({"hostname": "10.0.0.5", "port": "\u00b2"}, "port"),
    "no port": ({"hostname": "10.0.0.5"}, "port"),
    "no host": ({"port": "9093"}, "address"),
    "a newline into the file": ({"hostname": "am\n  - evil: x", "port": "9093"}, "address"),
    "an IPv6 zone": ({"hostname": "fe80::1%eth0", "port": "9093"}, "zone"),
    "a URL as hostname": ({"hostname": "http://10.0.0.5", "port": "9093"}, "address"),
}


@pytest.mark.parametrize(("data", "reason"), HOSTILE_LEGACY.values(), ids=HOSTILE_LEGACY.keys())
def test_a_hostile_legacy_unit_is_skipped_with_its_reason(ctx, fake, caplog, data, reason):
    with caplog.at_level(logging.WARNING):
        out = run(ctx, legacy({0: data, 1: {"hostname": "10.0.0.6", "port": "9093"}}))

    assert alerting(fake) == [entry("10.0.0.6:9093")]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("alertmanager-service: ignoring am-legacy/0: ")
    assert reason in warning
    assert "evil" not in (fake.config or "")
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def test_a_legacy_ipv6_hostname_is_written_in_brackets(ctx, fake):
    run(ctx, legacy({0: {"hostname": "fd00::5", "port": "9093"}}))

    assert alerting(fake) == [entry("[fd00::5]:9093")]


def test_a_new_alertmanager_unit_is_applied_with_a_reload(ctx, fake, settled):
    rel = dispatch({0: {}})
    before = settled(testing.State(model=MODEL, relations=[rel]))
    published = dataclasses.replace(rel, remote_units_data={0: {"url": "http://10.0.0.5:9093"}})

    out = ctx.run(
        ctx.on.relation_changed(published, remote_unit=0),
        dataclasses.replace(before, relations=[published]),
    )

    assert alerting(fake) == [entry("10.0.0.5:9093")]
    assert fake.actions == ["reload"]
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def test_a_departed_unit_is_no_longer_a_target(ctx, fake, settled):
    both = {0: {"url": "http://10.0.0.5:9093"}, 1: {"url": "http://10.0.0.6:9093"}}
    settled(testing.State(model=MODEL, relations=[dispatch(both)]))
    # What Juju lists during relation-departed: the departing unit is gone.
    rel = dispatch({0: both[0]})

    ctx.run(
        ctx.on.relation_departed(rel, remote_unit=1, departing_unit=1),
        testing.State(model=MODEL, relations=[rel]),
    )

    assert alerting(fake) == [entry("10.0.0.5:9093")]
    assert fake.actions == ["reload"]


def test_a_broken_relation_takes_the_alerting_section_away(ctx, fake, settled):
    rel = dispatch({0: {"url": "http://10.0.0.5:9093"}})
    settled(testing.State(model=MODEL, relations=[rel]))
    assert alerting(fake)

    ctx.run(ctx.on.relation_broken(rel), testing.State(model=MODEL, relations=[rel]))

    assert "alerting" not in fake.parsed_config()
    assert fake.actions == ["reload"]


def test_a_broken_legacy_relation_takes_its_targets_away(ctx, fake, settled):
    rel = legacy({0: {"hostname": "10.0.0.5", "port": "9093"}})
    kept = dispatch({0: {"url": "http://10.0.0.9:9093"}})
    settled(testing.State(model=MODEL, relations=[rel, kept]))

    ctx.run(ctx.on.relation_broken(rel), testing.State(model=MODEL, relations=[rel, kept]))

    assert alerting(fake) == [entry("10.0.0.9:9093")]


def test_unchanged_alertmanagers_write_and_reload_nothing(ctx, fake, settled):
    rel = dispatch({0: {"url": "http://10.0.0.5:9093"}})
    state = settled(testing.State(model=MODEL, relations=[rel]))

    ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)

    assert fake.writes == []
    assert fake.actions == []


# Prometheus's own health rules


def health_groups(fake) -> list[dict]:
    return yaml.safe_load(fake.health_rules or "")["groups"]


def test_prometheus_loads_its_own_health_rules_without_any_relation(ctx, fake):
    out = ctx.run(ctx.on.config_changed(), testing.State(model=MODEL))

    [group] = health_groups(fake)
    assert group["name"] == "lab_2f5e6d0a_prometheus_prometheus_health_rules"
    assert [rule["alert"] for rule in group["rules"]] == [
        "Watchdog",
        "PrometheusTargetDown",
        "PrometheusRuleEvaluationFailures",
        "PrometheusNotificationsFailing",
        "PrometheusNotificationsDropped",
        "PrometheusTSDBCompactionsFailing",
        "PrometheusConfigReloadFailed",
    ]
    # Not rules from relations: nothing is counted as left out.
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def test_health_rules_are_labelled_and_scoped_with_this_application_s_topology(ctx, fake):
    ctx.run(ctx.on.config_changed(), testing.State(model=MODEL))

    mine = f'juju_model="lab",juju_model_uuid="{UUID}",juju_application="prometheus"'
    for rule in health_groups(fake)[0]["rules"]:
        assert rule["labels"] | TOPOLOGY == rule["labels"], rule["alert"]
        assert "%%juju_topology%%" not in rule["expr"]
    rules = {rule["alert"]: rule for rule in health_groups(fake)[0]["rules"]}
    assert rules["PrometheusConfigReloadFailed"]["expr"] == (
        f"prometheus_config_last_reload_successful{{{mine}}} == 0"
    )
    # The self-scrape job carries the same labels, so the scoped selectors match it.
    [static] = fake.jobs()["prometheus"]["static_configs"]
    assert {key: static["labels"][key] for key in TOPOLOGY if key != "juju_charm"} == {
        key: value for key, value in TOPOLOGY.items() if key != "juju_charm"
    }


def test_health_rules_follow_the_application_s_name(ctx, fake):
    ctx = testing.Context(charm.PrometheusCharm, app_name="prom-lab")

    ctx.run(ctx.on.config_changed(), testing.State(model=MODEL))

    [group] = health_groups(fake)
    assert group["name"] == "lab_2f5e6d0a_prom_lab_prometheus_health_rules"
    assert all(r["labels"]["juju_application"] == "prom-lab" for r in group["rules"])
    assert all(r["labels"]["juju_charm"] == "prometheus" for r in group["rules"])


def test_unchanged_health_rules_are_not_written_again(ctx, fake, settled):
    state = settled(testing.State(model=MODEL))

    ctx.run(ctx.on.update_status(), state)

    assert fake.writes == []
