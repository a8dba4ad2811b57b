"""A COS job's relabel_configs: kept when they cannot rewrite the juju_* topology, else refused.

Through the charm: a probe job (blackbox-style) keeps its relabelling in prometheus.yml; a job
whose relabelling is hostile or malformed is dropped with its reason in the log, its neighbours
kept, and nothing of it reaches the file.
"""

from __future__ import annotations

import json
import logging

import pytest
import yaml
from ops import testing
from prometheus import relabel

REMOTE_UUID = "7c0ffee0-1234-4abc-8def-0123456789ab"
PREFIX = "juju_edge_7c0ffee0_blackbox_prometheus_scrape"
METADATA = json.dumps(
    {
        "model": "edge",
        "model_uuid": REMOTE_UUID,
        "application": "blackbox",
        "unit": "blackbox/0",
        "charm_name": "blackbox-exporter",
    }
)
UNIT = {"prometheus_scrape_unit_address": "10.0.0.7", "prometheus_scrape_unit_name": "blackbox/0"}
# What a blackbox exporter charm sends: probe each site through the exporter on its own unit.
PROBE_RELABEL = [
    {"source_labels": ["__address__"], "target_label": "__param_target"},
    {"source_labels": ["__param_target"], "target_label": "instance"},
    {"target_label": "__address__", "replacement": "10.0.0.7:9115"},
]
PROBE = {
    "job_name": "probe",
    "metrics_path": "/probe",
    "params": {"module": ["http_2xx"]},
    "static_configs": [{"targets": ["example.com:443", "10.1.1.1:8080"]}],
    "relabel_configs": PROBE_RELABEL,
}
GOOD = {"job_name": "ok", "static_configs": [{"targets": ["*:80"]}]}


def run(ctx, jobs: list) -> testing.State:
    rel = testing.Relation(
        "metrics-endpoint",
        remote_app_name="blackbox",
        remote_app_data={"scrape_metadata": METADATA, "scrape_jobs": json.dumps(jobs)},
        remote_units_data={0: UNIT},
    )
    state = testing.State(
        model=testing.Model(name="lab", uuid="2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"),
        leader=True,
        relations=[rel],
    )
    return ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)


def test_a_probe_jobs_relabel_configs_reach_prometheus_yml_as_sent(ctx, fake):
    run(ctx, [PROBE])

    job = fake.jobs()[f"{PREFIX}_probe"]
    assert job["relabel_configs"] == [{"action": "replace", **rule} for rule in PROBE_RELABEL]
    assert job["params"] == {"module": ["http_2xx"]}
    # The topology (juju_charm too, as COS sets it) is a static label: no kept rule can touch it.
    assert job["static_configs"][0]["labels"] == {
        "juju_model": "edge",
        "juju_model_uuid": REMOTE_UUID,
        "juju_application": "blackbox",
        "juju_charm": "blackbox-exporter",
    }


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param({"action": "keep", "source_labels": ["juju_unit"], "regex": "blackbox/0"}),
        pytest.param({"action": "drop", "source_labels": ["__address__"], "regex": r".*:9\d+"}),
        pytest.param(
            {
                "action": "hashmod",
                "source_labels": ["__address__"],
                "modulus": 4,
                "target_label": "__tmp_hash",
            }
        ),
        pytest.param({"action": "labeldrop", "regex": "tier"}),
        pytest.param(
            {
                "source_labels": ["__address__", "juju_application"],
                "separator": "@",
                "regex": r"([^:]+)(?::\d+)?@(.*?)",
                "target_label": "site",
                "replacement": "${1}-$2",
            }
        ),
        pytest.param({"target_label": "__metrics_path__", "replacement": "/probe"}),
        pytest.param({"target_label": "empty", "replacement": ""}),
        pytest.param({"source_labels": ["a", "b"], "separator": "", "target_label": "ab"}),
    ],
)
def test_rules_that_cannot_touch_the_topology_are_kept(ctx, fake, rule):
    run(ctx, [{**GOOD, "relabel_configs": [rule]}])

    assert fake.jobs()[f"{PREFIX}_ok-0"]["relabel_configs"] == [{"action": "replace", **rule}]


HOSTILE = [
    pytest.param(
        [{"target_label": "juju_application", "replacement": "db"}],
        'relabel_configs[0] target_label "juju_application" is set by this charm',
        id="replace onto juju_application",
    ),
    pytest.param(
        [{"action": "labelmap", "regex": "x_(.+)", "replacement": "juju_$1"}],
        "relabel_configs[0]: action labelmap could write juju_* label names",
        id="labelmap onto juju_*",
    ),
    pytest.param(
        [{"action": "labelkeep", "regex": "up"}],
        "relabel_configs[0]: action labelkeep would drop the juju_* topology",
        id="labelkeep",
    ),
    pytest.param(
        [{"action": "labeldrop", "regex": "juju_.*"}],
        'relabel_configs[0] labeldrop regex "juju_.*" is not valid',
        id="labeldrop by pattern",
    ),
    pytest.param(
        [{"action": "labeldrop", "regex": "juju_unit"}],
        'relabel_configs[0] labeldrop regex "juju_unit" is set by this charm',
        id="labeldrop juju_unit",
    ),
    pytest.param(
        [{"source_labels": ["a"], "regex": "(.*)", "target_label": "${1}"}],
        'relabel_configs[0] target_label "${1}" is not valid',
        id="target_label from a capture group",
    ),
    pytest.param(
        [{"action": "hashmod", "modulus": 2, "target_label": "juju_model"}],
        'relabel_configs[0] target_label "juju_model" is set by this charm',
        id="hashmod onto juju_model",
    ),
    pytest.param(
        [{"target_label": "job", "replacement": "prometheus"}],
        'relabel_configs[0] target_label "job" is set by this charm',
        id="rename the job",
    ),
    pytest.param(
        [{"target_label": "__scrape_timeout__", "replacement": "1h"}],
        'relabel_configs[0] target_label "__scrape_timeout__" is a reserved label',
        id="reserved label",
    ),
    pytest.param(
        [{"action": "hashmod", "target_label": "__tmp_h"}],
        "relabel_configs[0]: hashmod needs a modulus from 1 to 2^64-1",
        id="hashmod without modulus",
    ),
    pytest.param(
        [{"action": "hashmod", "modulus": True, "target_label": "__tmp_h"}],
        "relabel_configs[0]: hashmod needs a modulus from 1 to 2^64-1",
        id="modulus a bool",
    ),
    pytest.param(
        [{"action": "keep", "regex": "("}],
        'relabel_configs[0] regex "(" is not a regex',
        id="bad regex",
    ),
    pytest.param(
        [{"action": "keep", "regex": "(?<=a)b"}],
        'relabel_configs[0] regex "(?<=a)b": only (?:...) groups allowed',
        id="lookbehind (Python only)",
    ),
    pytest.param(
        [{"action": "keep", "regex": "a*+"}],
        'relabel_configs[0] regex "a*+" repeats a repetition',
        id="possessive (Python 3.11 only)",
    ),
    pytest.param(
        [{"action": "keep", "regex": "(a{1000}){1000}"}],
        'relabel_configs[0] regex "(a{1000}){1000}": repeat counts are refused',
        id="repeat too large for RE2",
    ),
    pytest.param(
        [{"action": "keep", "regex": r"\Z"}],
        'relabel_configs[0] regex "\\\\Z" has an unsupported escape',
        id="escape RE2 lacks",
    ),
    pytest.param(
        [{"action": "keep", "regex": "[[:alpha:]]"}],
        'relabel_configs[0] regex "[[:alpha:]]" has an unsupported class',
        id="POSIX class",
    ),
    pytest.param(
        [{"action": "keep", "regex": "\u00e9"}],
        'relabel_configs[0] regex "\\u00e9" is not printable ASCII',
        id="non-ASCII regex",
    ),
    pytest.param(
        [{"action": "keep", "regex": "a" * 513}],
        "relabel_configs[0] regex must be text of up to 512 characters",
        id="long regex",
    ),
    pytest.param(
        [{"action": "keep", "source_labels": "__address__"}],
        "relabel_configs[0] source_labels must be a list of 1 to 16 label names",
        id="source_labels a string",
    ),
    pytest.param(
        [{"action": "keep", "source_labels": ["a b"]}],
        'relabel_configs[0] source label "a b" is not valid',
        id="bad source label",
    ),
    pytest.param(
        [{"target_label": "x", "replacement": "a\nb"}],
        'relabel_configs[0] replacement has control characters: "a\\nb"',
        id="newline in replacement",
    ),
    pytest.param(
        [{"target_label": "x", "replacement": ["a"]}],
        "relabel_configs[0] replacement must be text of 1 to 1024 characters, not ['a']",
        id="replacement a list",
    ),
    pytest.param(
        [{"action": "keep", "regex": "x", "tls_config": {"ca_file": "/root/ca"}}],
        "relabel_configs[0] has unknown fields ['tls_config']",
        id="unknown field",
    ),
    pytest.param(
        [{"action": "lowercase", "source_labels": ["a"], "target_label": "b"}],
        "relabel_configs[0]: action lowercase is unknown to Prometheus 2.31",
        id="action newer than 2.31",
    ),
    pytest.param(
        [{"action": ["keep"]}],
        "relabel_configs[0]: action ['keep'] is not supported",
        id="action a list",
    ),
    pytest.param(
        [{"action": "labeldrop", "regex": "tier", "source_labels": ["a"]}],
        "relabel_configs[0]: labeldrop takes only a regex",
        id="labeldrop with other fields",
    ),
    pytest.param(
        [{"action": "keep", "target_label": "x"}],
        "relabel_configs[0]: target_label means nothing to keep",
        id="target_label on keep",
    ),
    pytest.param(
        [{"action": "keep", "regex": "x"}, "drop"],
        "relabel_configs[1] must be an object",
        id="rule a string",
    ),
    pytest.param({"action": "keep"}, "relabel_configs must be a list", id="not a list"),
    pytest.param(
        [{"action": "keep"}] * 33,
        "relabel_configs has 33 rules, more than 32",
        id="huge list",
    ),
]


@pytest.mark.parametrize(("relabel_configs", "reason"), HOSTILE)
def test_a_job_with_hostile_relabelling_is_dropped_with_its_reason_and_others_kept(
    ctx, fake, caplog, relabel_configs, reason
):
    bad = {**PROBE, "relabel_configs": relabel_configs}

    with caplog.at_level(logging.WARNING):
        out = run(ctx, [bad, GOOD])

    assert list(fake.jobs()) == ["prometheus", f"{PREFIX}_ok-0"]
    assert f'metrics-endpoint: blackbox: skipping job "probe": {reason}' in caplog.messages
    # Nothing of the refused job reaches the file.
    text = yaml.safe_dump(fake.parsed_config())
    assert "relabel_configs" not in text
    assert "/probe" not in text
    assert out.unit_status == testing.ActiveStatus("serving 2 scrape jobs on :9090")


@pytest.mark.parametrize(
    "regex",
    ["(.*)", "", r"([^:]+)(?::\d+)?", r"a+?b*?c??", r"\.\$\[\]\(\)\{\}\|\^\*\+\?\\\-\/", "x|"],
)
def test_regexes_both_engines_read_alike_are_accepted(regex):
    assert relabel.regex(regex, "regex") == regex
