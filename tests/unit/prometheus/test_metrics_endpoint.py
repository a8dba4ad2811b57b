"""The metrics-endpoint relation (COS prometheus_scrape): jobs, topology, rules, hostile data."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import yaml
from ops import testing

UUID = "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"
REMOTE_UUID = "7c0ffee0-1234-4abc-8def-0123456789ab"
MODEL = testing.Model(name="lab", uuid=UUID)
PREFIX = "juju_edge_7c0ffee0_widgets_prometheus_scrape"
METADATA = json.dumps(
    {
        "model": "edge",
        "model_uuid": REMOTE_UUID,
        "application": "widgets",
        "unit": "widgets/0",
        "charm_name": "widgets",
    }
)
TWO_UNITS = {
    0: {"prometheus_scrape_unit_address": "10.0.0.1", "prometheus_scrape_unit_name": "widgets/0"},
    1: {"prometheus_scrape_unit_address": "10.0.0.2", "prometheus_scrape_unit_name": "widgets/1"},
}
TOPOLOGY = {"juju_model": "edge", "juju_model_uuid": REMOTE_UUID, "juju_application": "widgets"}
# The labels COS's Prometheus puts on a sender's targets: the topology and the charm's name
# (cosl's JujuTopology.label_matcher_dict), before juju_unit on a unit's job.
TARGET = {**TOPOLOGY, "juju_charm": "widgets"}
# How a scoped selector reads: every one gets the sender's topology (as COS's cos-tool does).
SCOPE = ",".join(f'{name}="{value}"' for name, value in TOPOLOGY.items())


def relation(jobs: object = None, units: dict | None = None, **app_data: str) -> testing.Relation:
    data = {"scrape_metadata": METADATA, **app_data}
    if jobs is not None:
        data["scrape_jobs"] = jobs if isinstance(jobs, str) else json.dumps(jobs)
    return testing.Relation(
        "metrics-endpoint",
        remote_app_name="widgets",
        remote_app_data=data,
        remote_units_data=TWO_UNITS if units is None else units,
    )


def run(ctx, rel: testing.Relation, **kwargs) -> testing.State:
    state = testing.State(model=MODEL, leader=True, relations=[rel], **kwargs)
    return ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)


def test_wildcard_target_becomes_one_job_per_unit_with_its_address_and_cos_labels(ctx, fake):
    run(ctx, relation([{"job_name": "node", "static_configs": [{"targets": ["*:9100"]}]}]))

    jobs = fake.jobs()
    assert list(jobs) == ["prometheus", f"{PREFIX}_node-0", f"{PREFIX}_node-1"]
    assert jobs[f"{PREFIX}_node-1"]["static_configs"] == [
        {"targets": ["10.0.0.2:9100"], "labels": {**TARGET, "juju_unit": "widgets/1"}}
    ]
    assert jobs[f"{PREFIX}_node-1"]["metrics_path"] == "/metrics"


def test_fixed_targets_stay_in_one_job_with_application_labels(ctx, fake):
    job = {
        "job_name": "ext",
        "metrics_path": "/stats",
        "scrape_interval": "30s",
        "scrape_timeout": "20s",
        "scheme": "https",
        "sample_limit": 1000,
        "static_configs": [
            {"targets": ["db.lab:9187", "[fd00::1]:9187"], "labels": {"tier": "db"}}
        ],
    }

    run(ctx, relation([job]))

    assert fake.jobs()[f"{PREFIX}_ext"] == {
        "job_name": f"{PREFIX}_ext",
        "metrics_path": "/stats",
        "scrape_interval": "30s",
        "scrape_timeout": "20s",
        "scheme": "https",
        "sample_limit": 1000,
        "static_configs": [
            {"targets": ["db.lab:9187", "[fd00::1]:9187"], "labels": {"tier": "db", **TARGET}}
        ],
    }


def test_mixed_targets_split_into_fixed_and_per_unit_jobs(ctx, fake):
    jobs = [{"static_configs": [{"targets": ["10.9.9.9:80", "*:8080", "*"]}]}]

    run(ctx, relation(jobs, units={0: TWO_UNITS[0]}))

    jobs = fake.jobs()
    assert jobs[PREFIX]["static_configs"][0]["targets"] == ["10.9.9.9:80"]
    assert jobs[f"{PREFIX}-0"]["static_configs"][0]["targets"] == ["10.0.0.1:8080", "10.0.0.1"]


def test_unit_path_prefixes_the_metrics_path(ctx, fake):
    units = {0: {**TWO_UNITS[0], "prometheus_scrape_unit_path": "/proxy/"}}

    run(ctx, relation([{"static_configs": [{"targets": ["*:80"]}]}], units=units))

    assert fake.jobs()[f"{PREFIX}-0"]["metrics_path"] == "/proxy/metrics"


def test_ipv6_unit_address_is_bracketed(ctx, fake):
    units = {0: {"prometheus_scrape_unit_address": "fd00::7"}}

    run(ctx, relation([{"static_configs": [{"targets": ["*:80"]}]}], units=units))

    assert fake.jobs()[f"{PREFIX}-0"]["static_configs"][0]["targets"] == ["[fd00::7]:80"]


def test_unit_that_has_not_published_an_address_gets_no_job_yet(ctx, fake):
    units = {0: TWO_UNITS[0], 1: {}}

    run(ctx, relation([{"static_configs": [{"targets": ["*:80"]}]}], units=units))

    assert list(fake.jobs()) == ["prometheus", f"{PREFIX}-0"]


def test_without_scrape_metadata_the_topology_comes_from_juju(ctx, fake):
    rel = testing.Relation(
        "metrics-endpoint",
        remote_app_name="widgets",
        remote_app_data={"scrape_jobs": '[{"static_configs": [{"targets": ["*:80"]}]}]'},
        remote_units_data={0: {"prometheus_scrape_unit_address": "10.0.0.1"}},
    )

    run(ctx, rel)

    job = fake.jobs()["juju_lab_2f5e6d0a_widgets_prometheus_scrape-0"]
    assert job["static_configs"][0]["labels"] == {
        "juju_model": "lab",
        "juju_model_uuid": UUID,
        "juju_application": "widgets",
        "juju_unit": "widgets/0",
    }


def cos_rule(alert: str, expr: str, **labels: str) -> dict:
    """A rule as the COS prometheus_scrape provider sends it: labelled with its topology."""
    topology = {**TOPOLOGY, "juju_charm": "widgets", **labels}
    return {"alert": alert, "expr": expr, "for": "5m", "labels": topology}


def rules_file(fake) -> list[dict]:
    [text] = fake.rules.values()
    return yaml.safe_load(text)["groups"]


def test_alert_rules_become_a_rules_file_with_topology_labels(ctx, fake):
    rules = {
        "groups": [
            {
                "name": "widgets",
                "interval": "1m",
                "rules": [
                    {
                        "alert": "WidgetsDown",
                        "expr": "up == 0",
                        "for": "5m",
                        "labels": {"severity": "critical"},
                        "annotations": {
                            "summary": "{{ $labels.instance }} is down",
                            "description": "a\nb",
                        },
                    },
                    {"record": "widgets:up:sum", "expr": "sum(up)", "keep_firing_for": "5m"},
                ],
            }
        ]
    }

    run(ctx, relation([], alert_rules=json.dumps(rules)))

    [(name, text)] = fake.rules.items()
    assert name == "juju_edge_7c0ffee0_widgets.rules"
    [group] = yaml.safe_load(text)["groups"]
    assert group["interval"] == "1m"
    alert, record = group["rules"]
    assert alert["labels"] == {"severity": "critical", **TOPOLOGY, "juju_charm": "widgets"}
    assert alert["annotations"]["description"] == "a\nb"
    # Keys Prometheus 2.31 does not know are dropped rather than breaking the file.
    assert record == {
        "record": "widgets:up:sum",
        "expr": f"sum(up{{{SCOPE}}})",
        "labels": {**TOPOLOGY, "juju_charm": "widgets"},
    }


def test_rules_as_cos_sends_them_are_kept_with_the_relations_own_topology(ctx, fake):
    # The sender claims another model and application in its labels: they are overwritten.
    spoofed = cos_rule(
        "HostDown", "up < 1", juju_model="prod", juju_application="db", juju_charm="db"
    )
    rules = {"groups": [{"name": "edge_7c0ffee0_widgets_HostHealth_rules", "rules": [spoofed]}]}

    out = run(ctx, relation([], alert_rules=json.dumps(rules)))

    [group] = rules_file(fake)
    [rule] = group["rules"]
    assert rule["labels"] == {**TOPOLOGY, "juju_charm": "widgets"}
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def test_every_rule_expression_only_sees_its_senders_series(ctx, fake):
    rules = {
        "groups": [
            {
                "name": "g",
                "rules": [
                    cos_rule("HostDown", "up < 1"),
                    cos_rule("HostMetricsMissing", "absent(up)"),
                    cos_rule("Other", 'up{juju_application="db"} * on(instance) node_load1'),
                ],
            }
        ]
    }

    run(ctx, relation([], alert_rules=json.dumps(rules)))

    [group] = rules_file(fake)
    assert [rule["expr"] for rule in group["rules"]] == [
        f"up{{{SCOPE}}} < 1",
        f"absent(up{{{SCOPE}}})",
        f"up{{{SCOPE}}} * on (instance) node_load1{{{SCOPE}}}",
    ]


def test_a_rule_whose_expression_cannot_be_scoped_is_left_out_and_counted(ctx, fake, caplog):
    rules = {
        "groups": [
            {
                "name": "g",
                "rules": [
                    cos_rule("Broken", "up =="),
                    cos_rule("AtModifier", "up @ start() < 1"),
                    cos_rule("Good", "up < 1"),
                ],
            }
        ]
    }

    with caplog.at_level(logging.WARNING):
        out = run(ctx, relation([], alert_rules=json.dumps(rules)))

    [group] = rules_file(fake)
    assert [rule["alert"] for rule in group["rules"]] == ["Good"]
    assert 'skipping a rule in "g": expr "up ==": not valid PromQL' in caplog.text
    assert "the @ modifier is off by default in Prometheus 2.31" in caplog.text
    assert out.unit_status == testing.ActiveStatus(
        "serving 1 scrape job on :9090; 2 rules from relations left out (see juju debug-log)"
    )


def test_the_count_of_left_out_rules_goes_once_the_sender_fixes_them(ctx, fake):
    broken = {"groups": [{"name": "g", "rules": [cos_rule("A", "up =="), cos_rule("B", "up")]}]}
    fixed = {"groups": [{"name": "g", "rules": [cos_rule("A", "up == 0"), cos_rule("B", "up")]}]}
    rel = relation([], alert_rules=json.dumps(broken))
    before = run(ctx, rel)
    assert "1 rule from relations left out" in before.unit_status.message

    rel = dataclasses.replace(
        rel, remote_app_data={**rel.remote_app_data, "alert_rules": json.dumps(fixed)}
    )
    out = ctx.run(
        ctx.on.relation_changed(rel, remote_unit=0), dataclasses.replace(before, relations=[rel])
    )

    assert [rule["alert"] for rule in rules_file(fake)[0]["rules"]] == ["A", "B"]
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def test_other_juju_labels_on_a_rule_are_dropped_and_the_rule_kept(ctx, fake, caplog):
    rules = {"groups": [{"name": "g", "rules": [cos_rule("A", "up < 1", juju_unit="widgets/0")]}]}

    with caplog.at_level(logging.WARNING):
        run(ctx, relation([], alert_rules=json.dumps(rules)))

    [group] = rules_file(fake)
    assert "juju_unit" not in group["rules"][0]["labels"]
    assert "ignoring labels ['juju_unit'] on a rule" in caplog.text


def test_broken_relation_removes_its_jobs_and_rules_and_reloads(ctx, fake, settled):
    rel = relation(
        [{"static_configs": [{"targets": ["*:80"]}]}],
        alert_rules=json.dumps(
            {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0"}]}]}
        ),
    )
    settled(testing.State(model=MODEL, leader=True, relations=[rel]))
    assert fake.rules

    out = ctx.run(ctx.on.relation_broken(rel), testing.State(model=MODEL, relations=[rel]))

    assert list(fake.jobs()) == ["prometheus"]
    assert fake.rules == {}
    assert fake.actions == ["reload"]
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def test_departed_unit_loses_its_job(ctx, fake):
    rel = relation([{"static_configs": [{"targets": ["*:80"]}]}], units={0: TWO_UNITS[0]})
    state = testing.State(model=MODEL, relations=[rel])

    ctx.run(ctx.on.relation_departed(rel, remote_unit=1, departing_unit=1), state)

    assert list(fake.jobs()) == ["prometheus", f"{PREFIX}-0"]


def test_two_relations_with_the_same_job_name_keep_the_first(ctx, fake):
    jobs = json.dumps([{"static_configs": [{"targets": ["*:80"]}]}])
    # Fixed ids: "first" is the older relation whatever other tests created before this one.
    first = dataclasses.replace(relation(jobs, units={0: TWO_UNITS[0]}), id=1)
    second = testing.Relation(
        "metrics-endpoint",
        id=2,
        remote_app_name="widgets-again",
        remote_app_data={"scrape_metadata": METADATA, "scrape_jobs": jobs},
        remote_units_data={0: {"prometheus_scrape_unit_address": "10.0.0.9"}},
    )
    state = testing.State(model=MODEL, relations=[first, second])

    ctx.run(ctx.on.relation_changed(second, remote_unit=0), state)

    assert fake.jobs()[f"{PREFIX}-0"]["static_configs"][0]["targets"] == ["10.0.0.1:80"]


GOOD = {"job_name": "ok", "static_configs": [{"targets": ["*:80"]}]}


@pytest.mark.parametrize(
    ("bad_job", "reason"),
    [
        pytest.param("not a job", "a job must be an object", id="job is a string"),
        pytest.param(
            {"job_name": "x\n- job_name: evil", "static_configs": [{"targets": ["*:80"]}]},
            'job_name "x\\n- job_name: evil" is not valid',
            id="YAML in job name",
        ),
        pytest.param(
            {"job_name": "has space", "static_configs": [{"targets": ["*:80"]}]},
            'job_name "has space" is not valid',
            id="space in job name",
        ),
        pytest.param(
            {"job_name": 5, "static_configs": [{"targets": ["*:80"]}]},
            "job_name 5 is not valid",
            id="job name not a string",
        ),
        pytest.param(
            {"job_name": "x", "static_configs": "*:80"},
            "static_configs must be a non-empty list",
            id="static_configs a string",
        ),
        pytest.param(
            {"job_name": "x", "static_configs": []},
            "static_configs must be a non-empty list",
            id="no static_configs",
        ),
        pytest.param(
            {"job_name": "x", "static_configs": [["*:80"]]},
            "a static config must be an object",
            id="static config a list",
        ),
        pytest.param(
            {"job_name": "x", "static_configs": [{"targets": "*:80"}]},
            "targets must be a non-empty list",
            id="targets a string",
        ),
        pytest.param(
            {"job_name": "x", "static_configs": [{"targets": ["evil\nhost:80"]}]},
            'address "evil\\nhost" is not a hostname or IP',
            id="newline in target",
        ),
        pytest.param(
            {"job_name": "x", "static_configs": [{"targets": ["host:99999"]}]},
            'port "99999" is not a number from 1 to 65535',
            id="port out of range",
        ),
        pytest.param(
            {"job_name": "x", "static_configs": [{"targets": ["*:http"]}]},
            'port "http" is not a number from 1 to 65535',
            id="wildcard port not a number",
        ),
        pytest.param(
            {"job_name": "x", "static_configs": [{"targets": ["http://h:80/x"]}]},
            'target "http://h:80/x" is not host:port (an IPv6 address needs brackets: [::1]:9100)',
            id="URL as target",
        ),
        pytest.param(
            {"job_name": "x", "static_configs": [{"targets": [{"host": "h"}]}]},
            "target {'host': 'h'} is not a string",
            id="target an object",
        ),
        pytest.param(
            {"job_name": "x", "static_configs": [{"targets": ["*:80"], "labels": {"a\nb": "c"}}]},
            'label name "a\\nb" is not valid',
            id="newline in label name",
        ),
        pytest.param(
            {
                "job_name": "x",
                "static_configs": [{"targets": ["*:80"], "labels": {"env": "prod\n  evil: true"}}],
            },
            'label env has control characters: "prod\\n  evil: true"',
            id="YAML in label value",
        ),
        pytest.param(
            {"job_name": "x", "static_configs": [{"targets": ["*:80"], "labels": {"env": 5}}]},
            "label env must be text of 1 to 1024 characters, not 5",
            id="label value not a string",
        ),
        pytest.param(
            {
                "job_name": "x",
                "static_configs": [{"targets": ["*:80"], "labels": {"__address__": "evil:1"}}],
            },
            'label name "__address__" is reserved',
            id="reserved label",
        ),
        pytest.param(
            {
                "job_name": "x",
                "static_configs": [{"targets": ["*:80"], "labels": {"juju_unit": "other/0"}}],
            },
            'label name "juju_unit" is reserved',
            id="topology label spoofed",
        ),
        pytest.param(
            {"job_name": "x", "static_configs": [{"targets": ["*:80"], "labels": ["a"]}]},
            "labels must be an object",
            id="labels a list",
        ),
        pytest.param(
            {**GOOD, "job_name": "x", "metrics_path": "/m\nx"},
            'metrics_path "/m\\nx" is not valid',
            id="newline in path",
        ),
        pytest.param(
            {**GOOD, "job_name": "x", "metrics_path": "metrics"},
            'metrics_path "metrics" is not valid',
            id="relative path",
        ),
        pytest.param(
            {**GOOD, "job_name": "x", "metrics_path": '/m?q="x'},
            'metrics_path "/m?q=\\"x" is not valid',
            id="query in path",
        ),
        pytest.param(
            {**GOOD, "job_name": "x", "scrape_interval": "fast"},
            '"fast" is not a duration',
            id="bad interval",
        ),
        pytest.param(
            {**GOOD, "job_name": "x", "scrape_timeout": "1m"},
            "scrape_timeout is longer than the scrape interval",
            id="timeout over global interval",
        ),
        pytest.param(
            {**GOOD, "job_name": "x", "scrape_interval": "5s", "scrape_timeout": "6s"},
            "scrape_timeout is longer than the scrape interval",
            id="timeout over job interval",
        ),
        pytest.param(
            {**GOOD, "job_name": "x", "scheme": "file"},
            'scheme "file" is not http or https',
            id="scheme file",
        ),
        pytest.param(
            {**GOOD, "job_name": "x", "sample_limit": "10"},
            'sample_limit "10" is not an integer from 0 to 2^64-1',
            id="limit a string",
        ),
        pytest.param(
            {**GOOD, "job_name": "x", "sample_limit": -1},
            "sample_limit -1 is not an integer from 0 to 2^64-1",
            id="negative limit",
        ),
        pytest.param(
            {**GOOD, "job_name": "x", "sample_limit": True},
            "sample_limit True is not an integer from 0 to 2^64-1",
            id="limit a bool",
        ),
        pytest.param(
            {**GOOD, "job_name": "x", "params": ["module"]},
            "params must be an object",
            id="params a list",
        ),
        pytest.param(
            {**GOOD, "job_name": "x", "params": {"m": "http_2xx"}},
            'params "m" must be a list of strings',
            id="param a string",
        ),
        pytest.param(
            {**GOOD, "job_name": "x", "params": {"m": [1]}},
            "params m must be text of 1 to 1024 characters, not 1",
            id="param value a number",
        ),
        pytest.param(
            {**GOOD, "job_name": "x", "params": {"a b": ["x"]}},
            'params name "a b" is not valid',
            id="param name space",
        ),
        pytest.param(
            {**GOOD, "job_name": "x", "params": {"m": ["x\ny"]}},
            'params m has control characters: "x\\ny"',
            id="param newline",
        ),
    ],
)
def test_bad_remote_job_is_skipped_with_its_reason_and_the_good_one_kept(
    ctx, fake, caplog, bad_job, reason
):
    with caplog.at_level(logging.WARNING):
        out = run(ctx, relation([bad_job, GOOD], units={0: TWO_UNITS[0]}))

    assert list(fake.jobs()) == ["prometheus", f"{PREFIX}_ok-0"]
    # The operator reads why in the log: the job skipped, then the reason, whole.
    assert "metrics-endpoint: widgets: skipping job" in caplog.text
    assert any(r.getMessage().endswith(f": {reason}") for r in caplog.records)
    assert out.unit_status == testing.ActiveStatus("serving 2 scrape jobs on :9090")


@pytest.mark.parametrize(
    ("scrape_jobs", "reason"),
    [
        pytest.param("not json", "scrape_jobs is not JSON, ignored", id="not JSON"),
        pytest.param(
            '{"job_name": "x"}', "scrape_jobs is not a list, ignored", id="object, not list"
        ),
        pytest.param("null", "scrape_jobs is not a list, ignored", id="null"),
        pytest.param(
            "[" * 100_000 + "]" * 100_000,
            "scrape_jobs is not JSON, ignored",
            id="absurd nesting",
        ),
    ],
)
def test_unreadable_scrape_jobs_are_ignored(ctx, fake, caplog, scrape_jobs, reason):
    with caplog.at_level(logging.WARNING):
        out = run(ctx, relation(scrape_jobs))

    assert f"metrics-endpoint: widgets: {reason}" in caplog.text

    assert list(fake.jobs()) == ["prometheus"]
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


@pytest.mark.parametrize(
    "unit_data",
    [
        {"prometheus_scrape_unit_address": "10.0.0.1\n- job_name: evil"},
        {"prometheus_scrape_unit_address": "10.0.0.1:80/x"},
        {"prometheus_scrape_unit_address": "bad host"},
        {"prometheus_scrape_unit_address": "10.0.0.1", "prometheus_scrape_unit_path": "x\ny"},
    ],
)
def test_unit_with_bad_address_or_path_is_skipped(ctx, fake, unit_data):
    units = {0: TWO_UNITS[0], 1: unit_data}

    run(ctx, relation([{"static_configs": [{"targets": ["*:80"]}]}], units=units))

    assert list(fake.jobs()) == ["prometheus", f"{PREFIX}-0"]


def test_bad_unit_name_falls_back_to_the_juju_name(ctx, fake):
    units = {
        0: {
            "prometheus_scrape_unit_address": "10.0.0.1",
            "prometheus_scrape_unit_name": "evil\nname: x",
        }
    }

    run(ctx, relation([{"static_configs": [{"targets": ["*:80"]}]}], units=units))

    assert fake.jobs()[f"{PREFIX}-0"]["static_configs"][0]["labels"]["juju_unit"] == "widgets/0"


@pytest.mark.parametrize(
    "metadata",
    [
        "not json",
        "[]",
        json.dumps({"model": "Evil\nModel", "model_uuid": REMOTE_UUID, "application": "w"}),
        json.dumps({"model": "edge", "model_uuid": "not-a-uuid", "application": "w"}),
        json.dumps({"model": "edge", "model_uuid": REMOTE_UUID}),
    ],
)
def test_bad_scrape_metadata_falls_back_to_juju_topology(ctx, fake, metadata):
    rel = testing.Relation(
        "metrics-endpoint",
        remote_app_name="widgets",
        remote_app_data={
            "scrape_metadata": metadata,
            "scrape_jobs": '[{"static_configs": [{"targets": ["*:80"]}]}]',
        },
        remote_units_data={0: TWO_UNITS[0]},
    )

    run(ctx, rel)

    assert list(fake.jobs()) == ["prometheus", "juju_lab_2f5e6d0a_widgets_prometheus_scrape-0"]


def test_unsupported_job_keys_are_dropped_with_a_warning(ctx, fake, caplog):
    job = {
        **GOOD,
        "basic_auth": {"username": "u", "password_file": "/etc/shadow"},
        "tls_config": {"ca_file": "/root/ca"},
        "metric_relabel_configs": [{"target_label": "juju_application", "replacement": "x"}],
    }

    with caplog.at_level(logging.WARNING):
        run(ctx, relation([job], units={0: TWO_UNITS[0]}))

    assert set(fake.jobs()[f"{PREFIX}_ok-0"]) == {"job_name", "metrics_path", "static_configs"}
    assert "ignoring unsupported job keys" in caplog.text


@pytest.mark.parametrize(
    ("alert_rules", "reason"),
    [
        pytest.param("not json", "alert_rules ignored: alert_rules is not JSON", id="not JSON"),
        pytest.param(
            "[]", "alert_rules ignored: alert_rules is not an object", id="list, not object"
        ),
        pytest.param(
            '{"groups": {"name": "g"}}',
            "alert_rules ignored: groups is not a list",
            id="groups an object",
        ),
        pytest.param(
            '{"groups": ["g"]}',
            "skipping rule group: a rule group must be an object",
            id="group a string",
        ),
        pytest.param(
            '{"groups": [{"name": "g", "rules": "up == 0"}]}',
            'skipping rule group: group "g" has no list of rules',
            id="rules a string",
        ),
        pytest.param(
            '{"groups": [{"rules": []}]}',
            "skipping rule group: group name must be text of 1 to 1024 characters, not None",
            id="group without name",
        ),
        pytest.param(
            '{"groups": [{"name": "g\\u0000", "rules": []}]}',
            'skipping rule group: group name has control characters: "g\\u0000"',
            id="control char name",
        ),
        pytest.param(
            '{"groups": [{"name": "g", "interval": "often", "rules": []}]}',
            'skipping rule group: "often" is not a duration',
            id="bad interval",
        ),
    ],
)
def test_unreadable_alert_rules_are_ignored(ctx, fake, caplog, alert_rules, reason):
    with caplog.at_level(logging.WARNING):
        out = run(ctx, relation([], alert_rules=alert_rules))

    assert f"metrics-endpoint: widgets: {reason}" in caplog.text

    assert fake.rules == {}
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


@pytest.mark.parametrize(
    ("bad_rule", "reason"),
    [
        pytest.param(
            {"alert": "A", "record": "b", "expr": "up"},
            "a rule needs exactly one of alert and record",
            id="alert and record",
        ),
        pytest.param(
            {"expr": "up"},
            "a rule needs exactly one of alert and record",
            id="neither alert nor record",
        ),
        pytest.param(
            {"alert": "A"}, "expr must be text of 1 to 10000 characters, not None", id="no expr"
        ),
        pytest.param(
            {"alert": "A", "expr": 1},
            "expr must be text of 1 to 10000 characters, not 1",
            id="expr a number",
        ),
        pytest.param(
            {"record": "bad name", "expr": "up"},
            'record "bad name" is not valid',
            id="bad record name",
        ),
        pytest.param(
            {"alert": "A\nB", "expr": "up"},
            'alert name has control characters: "A\\nB"',
            id="newline in alert name",
        ),
        pytest.param(
            {"alert": "A", "expr": "up", "for": "a while"},
            '"a while" is not a duration',
            id="bad for",
        ),
        pytest.param(
            {"alert": "A", "expr": "up", "labels": {"a b": "c"}},
            'label name "a b" is not valid',
            id="bad label",
        ),
        pytest.param(
            {"alert": "A", "expr": "up", "annotations": "text"},
            "annotations must be an object",
            id="annotations a string",
        ),
        pytest.param(
            {"alert": "A", "expr": "up", "annotations": {"a b": "x"}},
            'annotation name "a b" is not valid',
            id="bad annotation name",
        ),
        pytest.param(
            {"alert": "A", "expr": "up", "annotations": {"x": "\u0007"}},
            'annotation x has control characters: "\\u0007"',
            id="bell in annotation",
        ),
        pytest.param("up == 0", "a rule must be an object", id="rule a string"),
    ],
)
def test_bad_rule_is_skipped_with_its_reason_and_the_good_one_kept(
    ctx, fake, caplog, bad_rule, reason
):
    rules = {"groups": [{"name": "g", "rules": [bad_rule, {"alert": "Good", "expr": "up == 0"}]}]}

    with caplog.at_level(logging.WARNING):
        out = run(ctx, relation([], alert_rules=json.dumps(rules)))

    [group] = rules_file(fake)
    assert [rule.get("alert") for rule in group["rules"]] == ["Good"]
    assert "1 rule from relations left out" in out.unit_status.message
    assert f'metrics-endpoint: widgets: skipping a rule in "g": {reason}' in caplog.text


def test_repeated_group_name_keeps_the_first(ctx, fake):
    rules = {
        "groups": [
            {"name": "g", "rules": [{"alert": "First", "expr": "up == 0"}]},
            {"name": "g", "rules": [{"alert": "Second", "expr": "up == 0"}]},
        ]
    }

    out = run(ctx, relation([], alert_rules=json.dumps(rules)))

    assert [g["rules"][0]["alert"] for g in rules_file(fake)] == ["First"]
    assert "1 rule from relations left out" in out.unit_status.message


def test_params_of_a_probe_job_are_written_as_given(ctx, fake):
    params = {"module": ["http_2xx"], "target": ["http://10.0.0.9:8080/health?x=1&y=2"]}
    job = {"job_name": "probe", "params": params, "static_configs": [{"targets": ["bb:9115"]}]}

    run(ctx, relation([job]))

    assert fake.jobs()[f"{PREFIX}_probe"]["params"] == params


def test_hostile_but_printable_label_value_round_trips_verbatim(ctx, fake):
    value = "\": {}, [& *anchor !!python/object:os.system '"
    job = {"job_name": "ok", "static_configs": [{"targets": ["*:80"], "labels": {"note": value}}]}

    run(ctx, relation([job], units={0: TWO_UNITS[0]}))

    labels = fake.jobs()[f"{PREFIX}_ok-0"]["static_configs"][0]["labels"]
    assert labels == {"note": value, **TARGET, "juju_unit": "widgets/0"}


def test_a_cross_model_unit_is_named_by_its_own_unit_name_not_the_local_alias(ctx, fake):
    # Across models Juju calls the remote application by an alias (remote-<uuid>); the unit's
    # own name is what the operator knows it by.
    rel = dataclasses.replace(
        relation(
            [{"job_name": "node", "static_configs": [{"targets": ["*:9100"]}]}],
            units={
                0: {
                    "prometheus_scrape_unit_address": "10.0.0.1",
                    "prometheus_scrape_unit_name": "widgets/3",
                }
            },
        ),
        remote_app_name="remote-7c0ffee0",
    )

    run(ctx, rel)

    static = fake.jobs()[f"{PREFIX}_node-3"]["static_configs"]
    assert static == [
        {"targets": ["10.0.0.1:9100"], "labels": {**TARGET, "juju_unit": "widgets/3"}}
    ]


@pytest.mark.parametrize(
    "key", ["sample_limit", "label_limit", "label_name_length_limit", "label_value_length_limit"]
)
def test_each_limit_is_kept_at_its_bounds_and_refused_beyond(ctx, fake, caplog, key):
    jobs = [
        {**GOOD, "job_name": "low", key: 0},
        {**GOOD, "job_name": "high", key: 2**64 - 1},
        {**GOOD, "job_name": "over", key: 2**64},
    ]
    with caplog.at_level(logging.WARNING):
        run(ctx, relation(jobs, units={0: TWO_UNITS[0]}))

    out = fake.jobs()
    assert out[f"{PREFIX}_low-0"][key] == 0
    assert out[f"{PREFIX}_high-0"][key] == 2**64 - 1  # Prometheus's uint64 maximum
    assert f"{PREFIX}_over-0" not in out
    assert f"{key} 18446744073709551616 is not an integer from 0 to 2^64-1" in caplog.text


def test_label_values_and_params_of_1024_characters_are_kept_and_longer_ones_refused(
    ctx, fake, caplog
):
    def job(name: str, size: int) -> dict:
        return {
            "job_name": name,
            "params": {"module": ["m" * size]},
            "static_configs": [{"targets": ["*:80"], "labels": {"note": "v" * size}}],
        }

    with caplog.at_level(logging.WARNING):
        run(ctx, relation([job("fits", 1024), job("long", 1025)], units={0: TWO_UNITS[0]}))

    out = fake.jobs()
    assert out[f"{PREFIX}_fits-0"]["static_configs"][0]["labels"]["note"] == "v" * 1024
    assert out[f"{PREFIX}_fits-0"]["params"] == {"module": ["m" * 1024]}
    assert f"{PREFIX}_long-0" not in out
    assert "must be text of 1 to 1024 characters" in caplog.text


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_either_scheme_is_kept_as_sent(ctx, fake, scheme):
    run(ctx, relation([{**GOOD, "scheme": scheme}], units={0: TWO_UNITS[0]}))

    assert fake.jobs()[f"{PREFIX}_ok-0"]["scheme"] == scheme


def test_label_names_up_to_yamls_key_limit_are_kept_and_longer_ones_refused(ctx, fake, caplog):
    def job(name: str, size: int) -> dict:
        return {
            "job_name": name,
            "static_configs": [{"targets": ["*:80"], "labels": {"n" * size: "v"}}],
        }

    with caplog.at_level(logging.WARNING):
        run(ctx, relation([job("fits", 998), job("long", 999)], units={0: TWO_UNITS[0]}))

    out = fake.jobs()
    assert out[f"{PREFIX}_fits-0"]["static_configs"][0]["labels"]["n" * 998] == "v"
    assert f"{PREFIX}_long-0" not in out
    assert 'skipping job "long": label name "nnn' in caplog.text


# --- rules are scoped again only when what the relation sent changed ---------------------------

RULES = {"groups": [{"name": "g", "rules": [cos_rule("A", "up == 0"), cos_rule("B", "up ==")]}]}


@pytest.fixture
def scoping(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the applications whose rules the charm validates and scopes."""
    import relations

    calls: list[str] = []
    real = relations.rules.cos_rules

    def spy(app_data, topology, source=""):
        calls.append(topology.application)
        return real(app_data, topology, source)

    monkeypatch.setattr(relations.rules, "cos_rules", spy)
    return calls


def test_a_settled_unit_does_not_scope_the_same_rules_again(ctx, fake, scoping):
    rel = relation([], alert_rules=json.dumps(RULES))
    before = run(ctx, rel)
    written = dict(fake.rules)
    fake.settle()

    out = ctx.run(ctx.on.update_status(), before)

    assert scoping == ["widgets"]  # the first hook only
    assert fake.rules == written
    assert fake.writes == []
    assert out.unit_status == testing.ActiveStatus(
        "serving 1 scrape job on :9090; 1 rule from relations left out (see juju debug-log)"
    )


def test_rules_are_scoped_again_when_the_sender_changes_them(ctx, fake, scoping):
    rel = relation([], alert_rules=json.dumps(RULES))
    before = run(ctx, rel)
    fixed = {"groups": [{"name": "g", "rules": [cos_rule("C", "up == 1")]}]}
    rel = dataclasses.replace(
        rel, remote_app_data={**rel.remote_app_data, "alert_rules": json.dumps(fixed)}
    )

    ctx.run(
        ctx.on.relation_changed(rel, remote_unit=0), dataclasses.replace(before, relations=[rel])
    )

    assert scoping == ["widgets", "widgets"]
    assert [rule["alert"] for rule in rules_file(fake)[0]["rules"]] == ["C"]


def test_rules_are_scoped_again_when_the_senders_topology_changes(ctx, fake, scoping):
    rel = relation([], alert_rules=json.dumps(RULES))
    before = run(ctx, rel)
    moved = json.dumps({**json.loads(METADATA), "model": "moved"})
    rel = dataclasses.replace(
        rel, remote_app_data={**rel.remote_app_data, "scrape_metadata": moved}
    )

    ctx.run(
        ctx.on.relation_changed(rel, remote_unit=0), dataclasses.replace(before, relations=[rel])
    )

    assert scoping == ["widgets", "widgets"]
    [(name, _)] = fake.rules.items()
    assert name == "juju_moved_7c0ffee0_widgets.rules"
    assert rules_file(fake)[0]["rules"][0]["labels"]["juju_model"] == "moved"


def test_an_upgraded_charm_scopes_the_rules_again(ctx, fake, scoping):
    before = run(ctx, relation([], alert_rules=json.dumps(RULES)))

    ctx.run(ctx.on.upgrade_charm(), before)

    assert scoping == ["widgets", "widgets"]


def test_a_broken_relation_forgets_what_its_rules_were_made_into(ctx, fake, scoping):
    rel = relation([], alert_rules=json.dumps(RULES))
    before = run(ctx, rel)

    out = ctx.run(ctx.on.relation_broken(rel), before)

    [stored] = [s for s in out.stored_states if s.owner_path == "PrometheusCharm"]
    assert stored.content["scoped_rules"] == {}
    assert fake.rules == {}
