"""prometheus_remote_write, both halves, against what Canonical's charms write and read."""

from __future__ import annotations

import json
from pathlib import Path

import ops
import pytest
from lab_monitoring.interfaces import remote_write
from ops import testing

FIXTURES = Path(__file__).parent / "fixtures"
OTELCOL = json.loads((FIXTURES / "otelcol_send_remote_write.json").read_text())
COS_RECEIVER = json.loads((FIXTURES / "cos_prometheus_receive_remote_write.json").read_text())
MODEL = testing.Model(name="lab", uuid="2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f")
META = {
    "name": "prometheus",
    "provides": {"receive-remote-write": {"interface": "prometheus_remote_write"}},
    "requires": {"send-remote-write": {"interface": "prometheus_remote_write"}},
}


class Prometheus(ops.CharmBase):
    """Publishes, reads and reports on every update-status, as the charm's reconcile will."""

    server_url = "http://10.0.0.5:9090/prom/"
    errors: dict[int, str] = {}

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.published: bool | None = None
        self.senders: list[remote_write.RuleSender] = []
        self.endpoints: list[str] = []
        self.reported: bool | None = None
        framework.observe(self.on.update_status, self._reconcile)

    def _reconcile(self, _: ops.EventBase):
        self.published = remote_write.publish_receiver(self, self.server_url)
        self.senders = remote_write.senders(self)
        self.endpoints = remote_write.endpoints(self)
        self.reported = remote_write.publish_rule_errors(self, self.errors)


def run(*relations: testing.Relation, leader: bool = True, errors=None):
    Prometheus.errors = errors or {}
    ctx = testing.Context(Prometheus, meta=META)
    state = testing.State(model=MODEL, leader=leader, relations=list(relations))
    with ctx(ctx.on.update_status(), state) as manager:
        out = manager.run()
        return manager.charm, out


def sender(**app_data: str) -> testing.Relation:
    return testing.Relation(
        "receive-remote-write", remote_app_name="otelcol", remote_app_data=app_data
    )


def receiver(units: dict[int, dict[str, str]]) -> testing.Relation:
    return testing.Relation("send-remote-write", remote_app_name="cos", remote_units_data=units)


# Receiver half


def test_the_receiver_publishes_the_url_cos_publishes():
    relation = sender()

    charm, out = run(relation)

    published = out.get_relation(relation.id).local_unit_data["remote_write"]
    assert json.loads(published) == json.loads(COS_RECEIVER["local_unit_data"]["remote_write"])
    assert json.loads(published) == {"url": "http://10.0.0.5:9090/prom/api/v1/write"}
    assert charm.published is True


def test_a_server_url_without_a_prefix_gets_the_write_path():
    assert remote_write.write_url("http://10.0.0.5:9090") == "http://10.0.0.5:9090/api/v1/write"


def test_publishing_again_changes_nothing():
    relation = sender()
    _, first = run(relation)

    again = first.get_relation(relation.id)
    assert isinstance(again, testing.Relation)
    charm, second = run(again)

    assert charm.published is False
    assert second.get_relation(relation.id).local_unit_data == (
        first.get_relation(relation.id).local_unit_data
    )


@pytest.mark.parametrize("url", ["ftp://h", "http://user:pw@h:9090", "http://h:9090/?a=1", ""])
def test_the_receiver_refuses_a_bad_server_url(url: str):
    with pytest.raises(ValueError, match="url"):
        remote_write.write_url(url)


def test_the_receiver_reads_the_collectors_rules_with_the_topology_cos_reads():
    charm, _ = run(sender(**OTELCOL["local_app_data"]))

    (found,) = charm.senders
    assert found.application == "otelcol"
    assert found.rules == json.loads(OTELCOL["local_app_data"]["alert_rules"])
    assert found.topology == remote_write.RuleTopology(
        "lab", MODEL.uuid, "otelcol", "opentelemetry-collector"
    )
    # COS files every rule of the relation under the first labelled rule's identity.
    (identifier,) = COS_RECEIVER["alerts_by_identifier"]
    assert found.topology is not None
    assert found.topology.identifier == identifier
    assert [g["name"] for g in found.rules["groups"]] == (
        COS_RECEIVER["alerts_by_identifier"][identifier]
    )


def test_a_principals_rules_keep_their_own_labels():
    charm, _ = run(sender(**OTELCOL["local_app_data"]))

    groups = {g["name"]: g for g in charm.senders[0].rules["groups"]}
    (rule,) = groups["lab_2f5e6d0a_mysql_mysql_rules"]["rules"]
    assert rule["labels"]["juju_application"] == "mysql"
    assert remote_write.rule_topology({"groups": [groups["lab_2f5e6d0a_mysql_mysql_rules"]]}) == (
        remote_write.RuleTopology("lab", MODEL.uuid, "mysql", "mysql")
    )


def test_rules_without_topology_labels_fall_back_to_scrape_metadata():
    metadata = {"model": "lab", "model_uuid": MODEL.uuid, "application": "agent"}
    rules = {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up < 1"}]}]}

    charm, _ = run(sender(alert_rules=json.dumps(rules), scrape_metadata=json.dumps(metadata)))

    assert charm.senders[0].topology == remote_write.RuleTopology("lab", MODEL.uuid, "agent")


def test_rules_without_any_topology_are_returned_without_one():
    rules = {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up < 1"}]}]}

    charm, _ = run(sender(alert_rules=json.dumps(rules)))

    assert charm.senders[0].topology is None
    assert charm.senders[0].rules == rules


@pytest.mark.parametrize(
    "labels",
    [
        {"juju_model": "Lab", "juju_model_uuid": MODEL.uuid, "juju_application": "a"},
        {"juju_model": "lab", "juju_model_uuid": "not-a-uuid", "juju_application": "a"},
        {"juju_model": "lab", "juju_model_uuid": MODEL.uuid, "juju_application": 'a"}'},
        {"juju_model": "lab", "juju_model_uuid": MODEL.uuid},
    ],
)
def test_a_topology_that_is_not_juju_names_is_not_believed(labels):
    rules = {"groups": [{"name": "g", "rules": [{"expr": "up", "labels": labels}]}]}

    assert remote_write.rule_topology(rules) is None


@pytest.mark.parametrize(
    "raw",
    ["", "{", "[]", '"groups"', '{"groups": {}}', '{"rules": []}', "[" * 100_000],
)
def test_unusable_alert_rules_are_skipped_next_to_good_ones(raw: str):
    good = sender(**OTELCOL["local_app_data"])
    bad = testing.Relation(
        "receive-remote-write", remote_app_name="bad", remote_app_data={"alert_rules": raw}
    )

    charm, _ = run(good, bad)

    assert [s.application for s in charm.senders] == ["otelcol"]


def test_oversized_alert_rules_are_skipped():
    huge = json.dumps({"groups": [{"name": "x" * remote_write.MAX_RULES_VALUE, "rules": []}]})

    charm, _ = run(sender(alert_rules=huge))

    assert charm.senders == []


def test_the_leader_tells_each_sender_whether_its_rules_were_refused():
    good, bad = sender(), testing.Relation("receive-remote-write", remote_app_name="bad")

    charm, out = run(good, bad, errors={bad.id: "group g: expr does not parse\nat line 2"})

    assert json.loads(out.get_relation(good.id).local_app_data["event"]) == {"valid": True}
    assert json.loads(out.get_relation(bad.id).local_app_data["event"]) == {
        "errors": "group g: expr does not parse at line 2",
        "valid": False,
    }
    assert charm.reported is True


def test_a_follower_reports_nothing():
    relation = sender()

    charm, out = run(relation, leader=False, errors={relation.id: "bad"})

    assert "event" not in out.get_relation(relation.id).local_app_data
    assert charm.reported is False


# Sender half


def test_the_sender_reads_what_cos_receivers_publish_as_the_collector_does():
    units = {int(k): v for k, v in OTELCOL["remote_units_data"].items()}

    charm, _ = run(receiver(units))

    assert charm.endpoints == [e["url"] for e in OTELCOL["endpoints_read_by_otelcol"]]


def test_units_behind_one_ingress_give_one_url():
    same = {"remote_write": json.dumps({"url": "http://ingress.lab/prom/api/v1/write"})}

    charm, _ = run(receiver({0: same, 1: same, 2: same}))

    assert charm.endpoints == ["http://ingress.lab/prom/api/v1/write"]


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "[" * 100_000,
        json.dumps(["http://h:9090/api/v1/write"]),
        json.dumps({"uri": "http://h:9090/api/v1/write"}),
        json.dumps({"url": 9090}),
        json.dumps({"url": "ftp://h/api/v1/write"}),
        json.dumps({"url": "file:///etc/passwd"}),
        json.dumps({"url": "http://admin:secret@h:9090/api/v1/write"}),
        '{"url": "http://admin:secret\\u0040h:9090/api/v1/write"}',
        json.dumps({"url": "http://admin:secret%40h:9090/api/v1/write"}),
        json.dumps({"url": "http://admin:secret@h:9090/api/v1/write\n"}),
        json.dumps({"url": "http:\\\\admin:secret@h:9090/api/v1/write"}),
        '{"url": "http:\\/\\/admin:secret@h:9090/api/v1/write"}',
        json.dumps({"url": "http://h:9090/api/v1/write?x=1"}),
        json.dumps({"url": "http://h:9090/api/v1/write\nx: y"}),
        json.dumps({"url": "http://h:99999/api/v1/write"}),
        json.dumps({"url": "http://<h>:9090/api/v1/write"}),
        json.dumps({"url": "http://" + "h" * 3000}),
        json.dumps({"url": "http://h:9090", "pad": "x" * remote_write.MAX_UNIT_VALUE}),
    ],
)
def test_an_invalid_unit_is_skipped_next_to_a_valid_one(value: str, caplog):
    good = {"remote_write": json.dumps({"url": "http://10.0.0.5:9090/api/v1/write"})}

    charm, _ = run(receiver({0: good, 1: {"remote_write": value}}))

    assert charm.endpoints == ["http://10.0.0.5:9090/api/v1/write"]
    assert "ignoring cos/1" in caplog.text
    assert "secret" not in caplog.text


def test_a_unit_that_has_not_published_yet_is_skipped_quietly(caplog):
    charm, _ = run(receiver({0: {}}))

    assert charm.endpoints == []
    assert "ignoring" not in caplog.text
