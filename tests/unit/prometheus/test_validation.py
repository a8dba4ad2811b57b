"""The validators on their own: durations, and arbitrary remote data never breaking out.

The property tests feed random (often nonsensical) relation data through the same functions
the charm uses and check what matters to an operator: no exception escapes, and whatever is
kept survives the trip through prometheus.yml unchanged, so nothing was injected.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from prometheus import checks, config_file, jobs, operator_jobs, promql, rules, topology

TOPOLOGY = topology.Topology("lab", "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f", "widgets")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner),
    max_leaves=12,
)
# Mostly well-formed targets and labels, with hostile text mixed in, to reach deep branches.
hostile_text = st.sampled_from(
    [
        "*:9100",
        "*",
        "10.0.0.1:80",
        "[fd00::1]:80",
        "a\nb",
        "x: {y}",
        "\"'",
        "__address__",
        "juju_unit",
        "env",
        "/metrics",
        "/p?q",
        "5s",
        "1m",
        "0",
        "http",
        "https",
    ]
) | st.text(max_size=12)
targets = st.lists(hostile_text | json_values, max_size=3)
static_configs = st.lists(
    st.fixed_dictionaries(
        {"targets": targets},
        optional={"labels": st.dictionaries(hostile_text, hostile_text | json_values, max_size=3)},
    ),
    max_size=3,
)
cos_job_lists = st.lists(
    st.fixed_dictionaries(
        {"static_configs": static_configs | json_values},
        optional={
            "job_name": hostile_text | json_values,
            "metrics_path": hostile_text,
            "scrape_interval": hostile_text,
            "scrape_timeout": hostile_text,
            "scheme": hostile_text,
            "sample_limit": json_values,
            "basic_auth": json_values,
        },
    )
    | json_values,
    max_size=4,
)
unit_data = st.dictionaries(
    st.sampled_from(
        [
            "prometheus_scrape_unit_address",
            "prometheus_scrape_unit_name",
            "prometheus_scrape_unit_path",
            "hostname",
            "private-address",
            "port",
        ]
    ),
    hostile_text,
)


def round_trips(scrape_configs: list[dict]) -> bool:
    rendered = config_file.render_config(
        scrape_interval="15s",
        scrape_timeout="10s",
        evaluation_interval="15s",
        external_labels={},
        scrape_configs=scrape_configs,
    )
    return yaml.safe_load(rendered)["scrape_configs"] == scrape_configs


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15),
        ("1m30s", 90),
        ("2h", 7200),
        ("14d", 14 * 86400),
        ("2w", 14 * 86400),
        ("1y", 365 * 86400),
        ("500ms", 0.5),
        ("1h30m", 5400),
        ("0", 0),
    ],
)
def test_durations_prometheus_accepts(text, seconds):
    assert checks.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "1.5m", "15 s", "1s1m", "2 weeks", "-1s", "1S", 15])
def test_durations_prometheus_refuses(text):
    with pytest.raises(checks.InvalidError, match="is not a duration"):
        checks.duration_seconds(text)


@given(
    raw_jobs=cos_job_lists,
    units=st.dictionaries(st.sampled_from(["w/0", "w/1", "w/x"]), unit_data),
)
def test_any_cos_relation_data_gives_only_safe_jobs(raw_jobs, units):
    result = jobs.cos_jobs(
        {"scrape_jobs": json.dumps(raw_jobs)}, units, TOPOLOGY, scrape_interval="15s"
    )

    for job in result:
        assert job["job_name"].startswith("juju_lab_2f5e6d0a_widgets_prometheus_scrape")
        assert "\n" not in job["job_name"]
        for static_config in job["static_configs"]:
            assert all(LABEL_NAME.fullmatch(name) for name in static_config["labels"])
            assert not any(name.startswith("__") for name in static_config["labels"])
            assert static_config["labels"]["juju_application"] == "widgets"
            assert all("\n" not in target for target in static_config["targets"])
    assert round_trips(result)


@given(units=st.dictionaries(st.sampled_from(["w/0", "w/1", "w/2"]), unit_data))
def test_any_http_relation_data_gives_a_safe_job(units):
    job = jobs.http_job(units, TOPOLOGY)

    if job is not None:
        assert all(":" in c["targets"][0] for c in job["static_configs"])
        assert round_trips([job])


@given(
    groups=st.lists(
        st.fixed_dictionaries(
            {
                "name": hostile_text | json_values,
                "rules": st.lists(
                    st.dictionaries(
                        st.sampled_from(
                            ["alert", "record", "expr", "for", "labels", "annotations", "x"]
                        ),
                        # Values that are valid for some keys, so that some rules are kept.
                        hostile_text
                        | json_values
                        | st.sampled_from(["up == 0", "rate(x[5m]) > 1", "5m", "job:x:sum"]),
                    ),
                    max_size=3,
                )
                | json_values,
            },
        )
        | json_values,
        max_size=3,
    )
)
def test_any_alert_rules_give_a_clean_rules_file_and_count_what_they_leave_out(groups):
    clean = rules.cos_rules({"alert_rules": json.dumps({"groups": groups})}, TOPOLOGY)

    text = config_file.render_rules({"groups": clean.groups})
    assert yaml.safe_load(text) == {"groups": clean.groups}
    kept = [rule for group in clean.groups for rule in group["rules"]]
    for rule in kept:
        assert set(rule) <= {"alert", "record", "expr", "for", "labels", "annotations"}
        assert rule["labels"]["juju_model"] == "lab"
        assert promql.scope(rule["expr"], TOPOLOGY.labels()) == rule["expr"]
    sent = sum(
        len(group["rules"])
        for group in groups
        if isinstance(group, dict) and isinstance(group.get("rules"), list)
    )
    assert len(kept) + clean.left_out == sent


@given(text=st.text())
def test_external_labels_parse_or_refuse(text):
    try:
        labels = checks.parse_external_labels(text)
    except checks.InvalidError:
        return
    assert all(LABEL_NAME.fullmatch(name) for name in labels)
    assert all("," not in value for value in labels.values())


@given(text=st.text())
def test_scrape_jobs_option_parses_or_refuses(text):
    try:
        parsed = operator_jobs.parse_user_jobs(text)
    except checks.InvalidError:
        return
    assert all(isinstance(job["job_name"], str) for job in parsed)


# scrape-jobs as an operator might write them, with YAML's types, tags and anchors mixed in.
yaml_scalars = st.sampled_from(
    [
        "yes",
        "on",
        "~",
        "0x1F",
        "1_000",
        "010",
        "1.10",
        ".inf",
        "1e3",
        "2001-12-14",
        "2001-12-14 21:59:43.10 -5",
        "'quoted'",
        '"\\ud83d\\ude00"',
        '"\\x85"',
        "!!binary aGk=",
        "!!str 1",
        "!!int '7'",
        "!!float 1",
        "&a x",
        "*a",
        "[a, b]",
        "{k: v}",
        "<<",
    ]
) | st.text(max_size=8)
yaml_jobs = st.lists(
    st.dictionaries(st.sampled_from(["labels", "x", "on", "1", "<<", "params"]), yaml_scalars),
    max_size=3,
).map(
    lambda jobs: "".join(
        f"- job_name: j{n}\n" + "".join(f"  {k}: {v}\n" for k, v in job.items())
        for n, job in enumerate(jobs)
    )
)


@given(text=yaml_jobs | st.text())
def test_whatever_the_scrape_jobs_option_accepts_is_written_and_read_back(text):
    try:
        parsed = operator_jobs.parse_user_jobs(text)
    except checks.InvalidError:
        return

    rendered = config_file.render_config(
        scrape_interval="15s",
        scrape_timeout="10s",
        evaluation_interval="15s",
        external_labels={},
        scrape_configs=parsed,
    )

    assert yaml.safe_load(rendered)["scrape_configs"] == parsed


def cos_targets(*targets: str) -> list[str]:
    """The targets kept of COS jobs that have one fixed target each."""
    raw = [
        {"job_name": f"j{n}", "static_configs": [{"targets": [target]}]}
        for n, target in enumerate(targets)
    ]
    found = jobs.cos_jobs({"scrape_jobs": json.dumps(raw)}, {}, TOPOLOGY, scrape_interval="15s")
    return [t for job in found for c in job["static_configs"] for t in c["targets"]]


@pytest.mark.parametrize(
    "target",
    [
        "[::1]:9100",
        "[::1]:8",
        "[2001:db8::1]:80",
        "[::1]",
        "10.0.0.1:80",
        "host.example:9100",
        "host",
    ],
)
def test_a_valid_target_is_kept_as_written(target):
    assert cos_targets(target) == [target]


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        # promtool refuses the whole file over this one
        ("[::1]/9100", 'target "[::1]/9100" is not host:port'),
        ("[x2001:db8::1]:80", 'address "x2001:db8::1" is not a hostname or IP'),
        # brackets are for IPv6 only
        ("[10.0.0.1]:80", 'target "[10.0.0.1]:80" is not [IPv6 address]:port'),
        ("[::1", 'target "[::1" is not [IPv6 address]:port'),
        ("[::1]:", 'port "" is not a number from 1 to 65535'),
        ("[::1]:99999", 'port "99999" is not a number from 1 to 65535'),
        # IPv6 without brackets: host and port cannot be told apart
        ("::1:9100", 'target "::1:9100" is not host:port (an IPv6 address needs brackets'),
        ("fe80::1", 'target "fe80::1" is not host:port (an IPv6 address needs brackets'),
        ("host:port", 'port "port" is not a number from 1 to 65535'),
    ],
)
def test_a_malformed_target_is_refused_with_its_reason_and_the_next_job_kept(
    target, reason, caplog
):
    with caplog.at_level(logging.WARNING):
        assert cos_targets(target, "10.0.0.2:80") == ["10.0.0.2:80"]

    assert f'skipping job "j0": {reason}' in caplog.text
