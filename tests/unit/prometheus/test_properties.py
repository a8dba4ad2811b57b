"""Properties of the Prometheus charm over random and hostile metrics-endpoint and target data.

Whatever related charms write, the hook must not raise, every valid job and target must be
served, and prometheus.yml may hold no job, target or label that the data did not ask for.
promtool's view of the same files is in tests/functional/test_promtool_properties.py.
"""

from __future__ import annotations

import ipaddress
import json
import re

import charm
import pytest
from conftest import FakePrometheus
from hypothesis import given
from hypothesis import strategies as st
from ops import testing
from relation_strategies import (
    MODEL,
    UUID,
    Related,
    hostile_relabel_rule,
    relabel_rule,
    related,
)

# A scrape target: a DNS name, IPv4 or bracketed IPv6, then an optional ASCII port.
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"(?P<host>{_DNS_LABEL}(?:\.{_DNS_LABEL})*\.?)|\[(?P<ip6>[0-9a-f:.]+)\]"
_TARGET = re.compile(rf"(?:{_HOST})(?::(?P<port>[0-9]{{1,5}}))?")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_JOB_KEYS = {
    "job_name",
    "metrics_path",
    "static_configs",
    "scrape_interval",
    "scrape_timeout",
    "scheme",
    "relabel_configs",
    "params",
    "sample_limit",
    "label_limit",
    "label_name_length_limit",
    "label_value_length_limit",
}


def run(given_related: list[Related]) -> FakePrometheus:
    """Run relation-changed on a fresh unit (a fresh fake per example); return the fake."""
    fake = FakePrometheus()
    ctx = testing.Context(charm.PrometheusCharm)
    relations = [r.relation for r in given_related]
    state = testing.State(model=MODEL, leader=True, relations=relations)
    event = ctx.on.config_changed()
    if relations and relations[0].remote_units_data:
        unit = min(relations[0].remote_units_data)
        event = ctx.on.relation_changed(relations[0], remote_unit=unit)
    with fake.patched():
        ctx.run(event, state)
    return fake


def check_target(target: object, strings: set[str]) -> None:
    assert isinstance(target, str)
    match = _TARGET.fullmatch(target)
    assert match, f"not a host[:port] target: {target!r}"
    if match["port"]:
        assert 0 < int(match["port"]) < 65536, target
    if match["ip6"]:
        ipaddress.IPv6Address(match["ip6"])
    else:
        host = match["host"]
        assert any(host in s for s in strings), f"{host!r} is in no relation data"


@given(related())
def test_hook_never_raises_and_writes_only_valid_jobs_targets_and_labels(
    given_related: list[Related],
):
    fake = run(given_related)

    strings = {s for r in given_related for s in r.strings}
    apps = {r.relation.remote_app_name for r in given_related}
    jobs = fake.jobs()
    assert len(jobs) == len(fake.parsed_config()["scrape_configs"]), "duplicate job names"
    for name, job in jobs.items():
        assert set(job) <= _JOB_KEYS, f"{name} has keys no relation may set: {set(job)}"
        if name == "prometheus":
            continue
        assert name.startswith("juju_"), name
        for param, values in job.get("params", {}).items():
            assert {param, *values} <= strings, f"{name}: params not from relation data"
        for rule in job.get("relabel_configs", []):
            # No kept rule can write, map, keep or drop the juju_* topology.
            assert rule["action"] in {"replace", "keep", "drop", "hashmod", "labeldrop"}, rule
            written = rule.get("target_label") or rule.get("regex", "")
            if rule["action"] in {"replace", "hashmod", "labeldrop"}:
                assert _LABEL_NAME.fullmatch(written), rule
                assert not written.startswith("juju_"), rule
        for static_config in job["static_configs"]:
            for target in static_config["targets"]:
                check_target(target, strings)
            labels = static_config["labels"]
            for key, value in labels.items():
                assert _LABEL_NAME.fullmatch(key), key
                assert not key.startswith("__"), key
                assert isinstance(value, str), (key, value)
                assert value.isprintable(), (key, value)
            # Topology comes from Juju or a valid scrape_metadata, never from a job's labels.
            assert labels["juju_application"] in apps
            assert (labels["juju_model"], labels["juju_model_uuid"]) in {
                ("lab", UUID),
                ("edge", "7c0ffee0-1234-4abc-8def-0123456789ab"),
            }


@given(related())
def test_every_valid_job_and_target_is_served_next_to_hostile_ones(
    given_related: list[Related],
):
    fake = run(given_related)

    jobs = fake.jobs()
    for r in given_related:
        for name, targets in r.expected.items():
            assert name in jobs, f"valid job {name} is missing"
            served = {t for c in jobs[name]["static_configs"] for t in c["targets"]}
            assert targets <= served, f"{name} lost targets {targets - served}"


@given(related())
def test_rule_files_only_for_applications_that_sent_rules(
    given_related: list[Related],
):
    fake = run(given_related)

    senders = {
        r.relation.remote_app_name
        for r in given_related
        if "alert_rules" in r.relation.remote_app_data
    }
    for name in fake.rules:
        assert any(name.endswith(f"_{app}.rules") for app in senders), name


# Defects the properties above found (each crashed the hook or put text in prometheus.yml that
# promtool or Prometheus refuses); each value sits next to a valid neighbour that must survive.
@pytest.mark.parametrize(
    ("unit_data", "bad"),
    [
        ({"hostname": "10.0.0.8", "port": "\u00b2"}, "\u00b2"),  # isdigit() but int() raises
        ({"hostname": "10.0.0.8", "port": "\u0668\u0660"}, "\u0668"),  # Arabic-Indic 80
        ({"hostname": "fe80::1%\n", "port": "80"}, "fe80::1"),  # any text as an IPv6 zone
    ],
)
def test_hostile_target_unit_is_skipped_and_its_neighbour_served(unit_data, bad):
    units = {0: {"hostname": "10.0.0.7", "port": "9100"}, 1: unit_data}
    relation = testing.Relation("target", remote_app_name="node", remote_units_data=units)

    fake = run([Related(relation, {}, set())])

    [job] = [job for name, job in fake.jobs().items() if name.endswith("_node_target")]
    assert [c["targets"] for c in job["static_configs"]] == [["10.0.0.7:9100"]]
    assert bad not in (fake.config or "")


@pytest.mark.parametrize(
    "hostile",
    [
        {"static_configs": [{"targets": ["10.0.0.8:\u0668\u0660"]}]},
        {"static_configs": [{"targets": ["[fe80::1%\n]:80"]}]},
        {"sample_limit": 10**30},  # more than Prometheus's uint64: promtool refuses the file
        {"scrape_interval": "300y"},  # more than int64 nanoseconds: promtool refuses the file
        {"scrape_interval": "\u0661m"},  # an Arabic-Indic digit
    ],
)
def test_hostile_cos_job_is_dropped_and_its_neighbour_served(hostile):
    good = {"job_name": "good", "static_configs": [{"targets": ["10.0.0.7:9100"]}]}
    bad = {"job_name": "bad", "static_configs": [{"targets": ["10.0.0.8:80"]}], **hostile}
    relation = testing.Relation(
        "metrics-endpoint",
        remote_app_name="node",
        remote_app_data={"scrape_jobs": json.dumps([bad, good])},
    )

    fake = run([Related(relation, {}, set())])

    assert [name.rsplit("_", 1)[-1] for name in fake.jobs()] == ["prometheus", "good"]


@given(st.lists(relabel_rule, max_size=4), hostile_relabel_rule, st.data())
def test_a_job_with_one_refused_relabel_rule_is_dropped_and_its_neighbour_served(
    good_rules, bad_rule, data
):
    rules = [*good_rules]
    rules.insert(data.draw(st.integers(0, len(rules))), bad_rule)
    good = {
        "job_name": "good",
        "static_configs": [{"targets": ["10.0.0.7:9100"]}],
        "relabel_configs": good_rules,
    }
    bad = {"job_name": "bad", "static_configs": [{"targets": ["10.0.0.8:80"]}]}
    relation = testing.Relation(
        "metrics-endpoint",
        remote_app_name="node",
        remote_app_data={"scrape_jobs": json.dumps([{**bad, "relabel_configs": rules}, good])},
    )

    fake = run([Related(relation, {}, set())])

    [_, served] = fake.jobs().values()
    assert served["job_name"].endswith("_good")
    assert served.get("relabel_configs", []) == [{"action": "replace", **r} for r in good_rules]
