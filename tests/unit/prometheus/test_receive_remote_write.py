"""The receive-remote-write relation (COS prometheus_remote_write, provider side).

Each unit publishes where senders push, the receiver is switched on with the flag the installed
Prometheus takes while a sender is related and off with the last one, and the alert rules a
sender forwards are validated and scoped as on metrics-endpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib

import pytest
import yaml
from ops import testing

UUID = "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"
MODEL = testing.Model(name="lab", uuid=UUID)
FIXTURES = pathlib.Path(__file__).parents[1] / "lab_monitoring" / "fixtures"
# What Canonical's opentelemetry-collector writes on its send-remote-write side: its own rules
# and its principal's (mysql), each group labelled with its application's topology.
OTELCOL = json.loads((FIXTURES / "otelcol_send_remote_write.json").read_text())
OTELCOL_RULES = OTELCOL["local_app_data"]["alert_rules"]
NETWORK = testing.Network("receive-remote-write", ingress_addresses=["10.0.0.5"])
FEATURE_FLAG = "--enable-feature=remote-write-receiver"


def sender(name: str = "otelcol", **app_data: str) -> testing.Relation:
    return testing.Relation(
        "receive-remote-write",
        remote_app_name=name,
        remote_app_data=app_data,
        remote_units_data={0: {}},
    )


def state(*relations: testing.Relation, **kwargs) -> testing.State:
    return testing.State(
        model=MODEL, leader=True, relations=list(relations), networks=[NETWORK], **kwargs
    )


def receiver_flags(fake) -> list[str]:
    return [arg for arg in fake.args or [] if "remote-write-receiver" in arg]


def test_each_unit_publishes_its_write_url_on_its_ingress_address(ctx, fake):
    rel = sender()

    out = ctx.run(ctx.on.relation_joined(rel, remote_unit=0), state(rel))

    published = out.get_relation(rel.id).local_unit_data["remote_write"]
    assert json.loads(published) == {"url": "http://10.0.0.5:9090/api/v1/write"}


def test_the_write_url_follows_the_port_and_the_route_prefix(ctx, fake):
    rel = sender()
    config = {"web-port": 9091, "web-external-url": "http://lab.example.com/prom/"}

    out = ctx.run(ctx.on.relation_joined(rel, remote_unit=0), state(rel, config=config))

    published = json.loads(out.get_relation(rel.id).local_unit_data["remote_write"])
    assert published == {"url": "http://10.0.0.5:9091/prom/api/v1/write"}


def test_an_ipv6_ingress_address_is_bracketed(ctx, fake):
    rel = sender()
    network = testing.Network("receive-remote-write", ingress_addresses=["fd00::5"])
    base = testing.State(model=MODEL, relations=[rel], networks=[network])

    out = ctx.run(ctx.on.relation_joined(rel, remote_unit=0), base)

    published = json.loads(out.get_relation(rel.id).local_unit_data["remote_write"])
    assert published == {"url": "http://[fd00::5]:9090/api/v1/write"}


def test_a_sender_switches_the_receiver_on_with_2_31s_feature_flag(ctx, fake, settled):
    rel = sender()
    before = settled(state())
    assert receiver_flags(fake) == []

    ctx.run(
        ctx.on.relation_joined(rel, remote_unit=0), dataclasses.replace(before, relations=[rel])
    )

    assert receiver_flags(fake) == [FEATURE_FLAG]
    assert fake.actions == ["restart"]  # a flag changed: a reload would not take it


@pytest.mark.parametrize(
    ("version", "flag"),
    [
        ("2.31.2+ds1", FEATURE_FLAG),  # jammy
        ("2.32.1", FEATURE_FLAG),
        ("2.33.0", "--web.enable-remote-write-receiver"),
        ("2.42.0+ds", "--web.enable-remote-write-receiver"),  # Debian 12
        ("2.45.3+ds", "--web.enable-remote-write-receiver"),  # noble
        ("3.1.0", "--web.enable-remote-write-receiver"),
        (None, FEATURE_FLAG),  # unknown: every 2.x from 2.25 on takes the feature flag
    ],
)
def test_the_receiver_flag_is_the_one_the_installed_version_takes(ctx, fake, version, flag):
    fake.version = lambda: version
    rel = sender()

    ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state(rel))

    assert receiver_flags(fake) == [flag]


def test_the_last_sender_leaving_switches_the_receiver_off(ctx, fake, settled):
    first, second = sender("otelcol"), sender("agent")
    settled(state(first, second))
    assert receiver_flags(fake) == [FEATURE_FLAG]

    ctx.run(ctx.on.relation_broken(first), state(first, second))
    assert receiver_flags(fake) == [FEATURE_FLAG]
    assert fake.actions == []

    ctx.run(ctx.on.relation_broken(second), state(second))
    assert receiver_flags(fake) == []
    assert fake.actions == ["restart"]


def test_without_a_sender_nothing_is_published_and_the_receiver_stays_off(ctx, fake):
    out = ctx.run(ctx.on.config_changed(), state())

    assert receiver_flags(fake) == []
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def rules_files(fake) -> dict[str, list[dict]]:
    return {name: yaml.safe_load(text)["groups"] for name, text in fake.rules.items()}


def scope(application: str) -> str:
    return f'juju_model="lab",juju_model_uuid="{UUID}",juju_application="{application}"'


def test_forwarded_rules_are_scoped_to_the_application_each_group_is_for(ctx, fake):
    rel = sender(alert_rules=OTELCOL_RULES)

    ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state(rel))

    files = rules_files(fake)
    assert sorted(files) == ["juju_lab_2f5e6d0a_mysql.rules", "juju_lab_2f5e6d0a_otelcol.rules"]
    mysql = {r["alert"]: r for g in files["juju_lab_2f5e6d0a_mysql.rules"] for r in g["rules"]}
    assert mysql["MySQLDown"]["expr"] == f"mysql_up{{{scope('mysql')}}} == 0"
    assert mysql["MySQLDown"]["labels"] == {
        "severity": "critical",
        "juju_model": "lab",
        "juju_model_uuid": UUID,
        "juju_application": "mysql",
        "juju_charm": "mysql",
    }
    otelcol = [r for g in files["juju_lab_2f5e6d0a_otelcol.rules"] for r in g["rules"]]
    assert all(scope("otelcol") in rule["expr"] for rule in otelcol)
    assert {rule["labels"]["juju_charm"] for rule in otelcol} == {"opentelemetry-collector"}
    sent = json.loads(OTELCOL_RULES)["groups"]
    assert sum(len(g) for g in files.values()) == len(sent)


def test_unlabelled_forwarded_rules_are_scoped_to_the_sending_application(ctx, fake):
    rules = {"groups": [{"name": "g", "rules": [{"alert": "Down", "expr": "up == 0"}]}]}
    rel = sender("agent", alert_rules=json.dumps(rules))

    ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state(rel))

    [[group]] = rules_files(fake).values()
    assert list(fake.rules) == ["juju_lab_2f5e6d0a_agent.rules"]
    assert group["rules"][0]["expr"] == f"up{{{scope('agent')}}} == 0"


def test_a_sender_cannot_replace_rules_a_metrics_endpoint_application_sent(ctx, fake, caplog):
    own = {"groups": [{"name": "mine", "rules": [{"alert": "MineDown", "expr": "up == 0"}]}]}
    mysql = testing.Relation(
        "metrics-endpoint",
        remote_app_name="mysql",
        remote_app_data={"alert_rules": json.dumps(own)},
    )
    rel = sender(alert_rules=OTELCOL_RULES)

    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state(mysql, rel))

    alerts = [
        r["alert"] for g in rules_files(fake)["juju_lab_2f5e6d0a_mysql.rules"] for r in g["rules"]
    ]
    assert alerts == ["MineDown"]
    assert "already sent by another application" in caplog.text
    assert "rules from relations left out" in out.unit_status.message


@pytest.mark.parametrize(
    "alert_rules", ["{not json", '"a string"', '{"groups": 3}', "x" * 5_000_000]
)
def test_unreadable_forwarded_rules_are_ignored_and_the_receiver_still_serves(
    ctx, fake, caplog, alert_rules
):
    rel = sender(alert_rules=alert_rules)

    with caplog.at_level(logging.WARNING):
        out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state(rel))

    assert fake.rules == {}
    assert "alert_rules ignored" in caplog.text
    assert receiver_flags(fake) == [FEATURE_FLAG]
    assert "remote_write" in out.get_relation(rel.id).local_unit_data
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def test_a_refused_forwarded_rule_is_logged_under_the_endpoint_and_sender(ctx, fake, caplog):
    labels = {"juju_model": "lab", "juju_model_uuid": UUID, "juju_application": "mysql"}
    group = {
        "name": "lab_2f5e6d0a_mysql_general_rules",
        "rules": [
            {"alert": "MySQLDown", "expr": "mysql_up == 0", "labels": labels},
            {"record": "not a metric name", "expr": "mysql_up", "labels": labels},
        ],
    }
    rel = sender(alert_rules=json.dumps({"groups": [group]}))

    with caplog.at_level(logging.WARNING):
        ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state(rel))

    [rule] = rules_files(fake)["juju_lab_2f5e6d0a_mysql.rules"][0]["rules"]
    assert rule["alert"] == "MySQLDown"
    # An operator looks for this relation, not for a metrics-endpoint one with mysql.
    [warning] = [m for m in caplog.messages if "skipping a rule" in m]
    assert warning.startswith("receive-remote-write: otelcol (rules for mysql): skipping a rule")


def test_the_rules_of_a_departed_sender_go_with_it(ctx, fake, settled):
    rel = sender(alert_rules=OTELCOL_RULES)
    settled(state(rel))
    assert fake.rules

    ctx.run(ctx.on.relation_broken(rel), state(rel))

    assert fake.rules == {}
