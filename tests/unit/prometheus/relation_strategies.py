"""Hypothesis strategies for what related charms write into the Prometheus charm's relations.

Each generated relation mixes data a well-behaved charm would write (remembered, so a test can
check it was served) with hostile data: JSON of the wrong shape, unicode, newlines, YAML
fragments, very long strings, duplicate job names, ports out of range, non-http schemes. Shared by
the ops.testing properties and the functional test that runs the real promtool.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import strategies as st
from ops import testing

UUID = "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"
REMOTE_UUID = "7c0ffee0-1234-4abc-8def-0123456789ab"
MODEL = testing.Model(name="lab", uuid=UUID)

# Each is wrong for a host, a port, a path, a duration or a label in at least one way.
NASTY = [
    "",
    " ",
    "\n",
    "null",
    "{",
    "[1, 2",
    "- a\n- b",
    "key: value\nother: [1",
    "h:80",
    "-h",
    "h_1",
    "a" * 300,
    "10.0.0.1\n",
    "10.0.0.1/24",
    "fe80::1%\n",
    "fe80::1%eth0 x",
    "\u00fcn\u00efcode.lab",
    "http://10.0.0.1:80",
    "ftp",
    "file",
    "0",
    "-1",
    "65536",
    "99999999999999999999",
    "\u00b2",
    "\u0668\u0660",
    "9100\n",
    "1.5m",
    "15 seconds",
    "300y",
    "99999999999y",
    "/metrics\nx",
    "metrics",
    "/" + "a" * 300,
    "__name__",
    "juju_model",
    "\x00",
    "\u2028",
    "$HOME",
]
nasty = st.sampled_from(NASTY) | st.text(max_size=20)
json_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | nasty,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(nasty, inner, max_size=3),
    max_leaves=6,
)
# Well-formed values, in the canonical form the charm writes them back in.
ADDRESSES = ["10.0.0.7", "10.1.2.3", "node-1.lab", "db.lab.example", "fd00::7"]
address = st.sampled_from(ADDRESSES)
port = st.integers(1, 65535)
label_name = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda name: not name.startswith("juju_")
)
label_value = st.text(
    st.characters(min_codepoint=32, max_codepoint=0x2FF), min_size=1, max_size=20
).filter(str.isprintable)


def bracketed(host: str) -> str:
    """An address as it appears in a target: IPv6 in brackets."""
    return f"[{host}]" if ":" in host else host


@dataclasses.dataclass
class Related:
    """One generated relation and the targets its valid data asked for, by job name."""

    relation: testing.Relation
    expected: dict[str, set[str]]
    # Every string the remote charm wrote, to check that a rendered host came from somewhere.
    strings: set[str]


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        try:
            return {value} | _strings(json.loads(value))
        except (ValueError, RecursionError):
            return {value}
    if isinstance(value, dict):
        return {s for k, v in value.items() for s in _strings(k) | _strings(v)}
    if isinstance(value, list):
        return {s for item in value for s in _strings(item)}
    return set()


# --- metrics-endpoint (COS prometheus_scrape) ------------------------------------------------


@st.composite
def cos_job(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """A job a well-behaved COS charm would send."""
    static_configs = []
    for _ in range(draw(st.integers(1, 2))):
        targets = draw(
            st.lists(
                st.builds(lambda h, p: f"{bracketed(h)}:{p}", address, port)
                | st.builds(lambda p: f"*:{p}", port)
                | st.just("*"),
                min_size=1,
                max_size=3,
                unique=True,
            )
        )
        config: dict[str, Any] = {"targets": targets}
        if draw(st.booleans()):
            config["labels"] = draw(st.dictionaries(label_name, label_value, max_size=2))
        static_configs.append(config)
    job: dict[str, Any] = {"job_name": name, "static_configs": static_configs}
    if draw(st.booleans()):
        job["metrics_path"] = draw(st.sampled_from(["/metrics", "/stats", "/a/b-c_d"]))
    if draw(st.booleans()):
        job["scrape_interval"], job["scrape_timeout"] = draw(
            st.sampled_from([("30s", "10s"), ("1m", "1m"), ("1h", "30s")])
        )
    if draw(st.booleans()):
        job["scheme"] = draw(st.sampled_from(["http", "https"]))
    if draw(st.booleans()):
        job["sample_limit"] = draw(st.integers(0, 2**32))
    if draw(st.booleans()):
        # A probe's URL parameters (blackbox exporter style), any printable text as values.
        names = st.sampled_from(["module", "target", "auth", "x.y-z[]"])
        job["params"] = draw(st.dictionaries(names, st.lists(label_value, max_size=2), max_size=2))
    if draw(st.booleans()):
        job["relabel_configs"] = draw(st.lists(relabel_rule, max_size=4))
    return job


# Relabel rules a probe (blackbox-style) or a sharded job sends: none can touch the topology.
relabel_rule = st.sampled_from(
    [
        {"source_labels": ["__address__"], "target_label": "__param_target"},
        {"source_labels": ["__param_target"], "target_label": "instance"},
        {"target_label": "__address__", "replacement": "10.0.0.7:9115"},
        {"action": "keep", "source_labels": ["juju_unit"], "regex": r".+/\d+"},
        {"action": "drop", "source_labels": ["__address__"], "regex": "(?:10[.].*)?"},
        {
            "action": "hashmod",
            "source_labels": ["__address__"],
            "modulus": 3,
            "target_label": "__tmp_shard",
        },
        {"action": "labeldrop", "regex": "tier"},
    ]
)
# Rules that are refused: each would rewrite the topology, or is malformed.
hostile_relabel_rule = st.sampled_from(
    [
        {"target_label": "juju_application", "replacement": "other"},
        {"target_label": "juju_charm", "replacement": "other"},
        {"action": "hashmod", "modulus": 2, "target_label": "juju_unit"},
        {"action": "labelmap", "regex": "(.*)", "replacement": "juju_$1"},
        {"action": "labelkeep", "regex": "instance"},
        {"action": "labeldrop", "regex": "juju_.+"},
        {"source_labels": ["a"], "target_label": "$1"},
        {"action": "keep", "regex": "a{1001}"},
        {"action": "keep", "regex": "a*+"},
        {"action": "keep", "regex": "(?<!x)y"},
        {"action": "hashmod", "target_label": "__tmp_x", "modulus": 0},
    ]
) | st.dictionaries(nasty, json_junk, max_size=3).filter(
    # Junk only: a field Prometheus does not know (or no target_label at all).
    lambda rule: not rule or not set(rule) <= {"action", "source_labels", "regex", "modulus"}
)


@st.composite
def spoilt_cos_job(draw: st.DrawFn, name: str) -> object:
    """A job with one hostile field, or not a job at all."""
    job = draw(cos_job(name))
    field = draw(
        st.sampled_from(
            [
                "job_name",
                "metrics_path",
                "scrape_interval",
                "scrape_timeout",
                "scheme",
                "sample_limit",
                "label_limit",
                "static_configs",
                "targets",
                "labels",
                "params",
                "tls_config",
                "relabel_configs",
            ]
        )
    )
    junk = draw(nasty | json_junk | st.sampled_from([10**30, -1, 2**64, True, 1.5]))
    if field == "targets":
        # Mostly a hostile host with a fine port, so that only the host check can refuse it.
        junk = draw(st.builds("{}:{}".format, nasty, port) | st.just(junk))
        job["static_configs"][0]["targets"].insert(0, junk)
    elif field == "labels":
        # A hostile name with a fine value, or the other way round.
        labels = {draw(nasty): draw(label_value)} if draw(st.booleans()) else {"tier": junk}
        job["static_configs"][0]["labels"] = labels
    elif field == "relabel_configs":
        # One refused rule among good ones, or junk where the list should be.
        rules = draw(st.lists(relabel_rule, max_size=3))
        rules.insert(draw(st.integers(0, len(rules))), draw(hostile_relabel_rule))
        job[field] = rules if draw(st.integers(0, 3)) else junk
    else:
        job[field] = junk
    if draw(st.integers(0, 4)) == 0:
        return draw(json_junk)  # not even an object
    return job


@st.composite
def metrics_endpoint(draw: st.DrawFn, app: str) -> Related:
    """A metrics-endpoint relation to `app` with valid and hostile jobs and units."""
    metadata_ok = draw(st.booleans())
    topology = ("edge", REMOTE_UUID, app) if metadata_ok else ("lab", UUID, app)
    prefix = f"juju_{topology[0]}_{topology[1][:8]}_{topology[2]}_prometheus_scrape"
    names = draw(st.lists(st.from_regex(r"v[a-z]{0,4}", fullmatch=True), unique=True, max_size=3))
    valid_jobs = [draw(cos_job(name)) for name in names]
    spoilt_names = st.from_regex(r"s[a-z]{0,4}", fullmatch=True)
    spoilt_jobs = draw(st.lists(spoilt_names.flatmap(spoilt_cos_job), max_size=2))
    jobs = draw(st.permutations(valid_jobs + spoilt_jobs))

    units: dict[int, dict[str, str]] = {}
    addresses: dict[int, str] = {}
    for number in draw(st.lists(st.integers(0, 20), unique=True, max_size=3)):
        if draw(st.booleans()):
            addresses[number] = draw(address)
            units[number] = {
                "prometheus_scrape_unit_address": addresses[number],
                "prometheus_scrape_unit_name": f"{app}/{number}",
            }
        else:
            key = draw(
                st.sampled_from(["prometheus_scrape_unit_address", "prometheus_scrape_unit_path"])
            )
            units[number] = {"prometheus_scrape_unit_address": "10.9.9.9", key: draw(nasty)}

    expected: dict[str, set[str]] = {}
    for job in valid_jobs:
        name = f"{prefix}_{job['job_name']}"
        for config in job["static_configs"]:
            fixed = {t for t in config["targets"] if not t.startswith("*")}
            if fixed:
                expected.setdefault(name, set()).update(fixed)
            for number, host in addresses.items():
                for target in config["targets"]:
                    if target.startswith("*"):
                        full = f"{bracketed(host)}{target[1:]}"
                        expected.setdefault(f"{name}-{number}", set()).add(full)

    metadata = {"model": "edge", "model_uuid": REMOTE_UUID, "application": app}
    app_data = {
        "scrape_metadata": json.dumps(metadata) if metadata_ok else draw(nasty),
        "scrape_jobs": json.dumps(jobs),
    }
    if draw(st.integers(0, 4)) == 0:
        # Not a list of jobs at all: nothing from this relation may be served.
        app_data["scrape_jobs"] = draw(nasty | st.builds(json.dumps, json_junk))
        expected = {}
    if draw(st.booleans()):
        app_data["alert_rules"] = draw(alert_rules())
    relation = testing.Relation(
        "metrics-endpoint", remote_app_name=app, remote_app_data=app_data, remote_units_data=units
    )
    return Related(relation, expected, _strings([app_data, units]))


@st.composite
def alert_rules(draw: st.DrawFn) -> str:
    rule = {"alert": "Down", "expr": "up == 0", "for": "5m", "labels": {"severity": "page"}}
    junk = draw(json_junk)
    spoilt = {**rule, draw(st.sampled_from(["alert", "expr", "for", "labels"])): junk}
    groups = [{"name": "ok", "rules": [rule, spoilt]}, {"name": draw(nasty), "rules": [junk]}]
    return draw(st.just(json.dumps({"groups": groups})) | nasty)


# --- target (legacy http) --------------------------------------------------------------------


@st.composite
def target(draw: st.DrawFn, app: str) -> Related:
    """A target relation to `app`: units that write hostname (or private-address) and port."""
    units: dict[int, dict[str, str]] = {}
    targets: set[str] = set()
    for number in draw(st.lists(st.integers(0, 20), unique=True, max_size=4)):
        host, port_number = draw(address), draw(port)
        data = {draw(st.sampled_from(["hostname", "private-address"])): host}
        data["port"] = str(port_number)
        if draw(st.booleans()):
            targets.add(f"{bracketed(host)}:{port_number}")
        else:
            data[draw(st.sampled_from(["hostname", "port"]))] = draw(nasty)
        units[number] = data
    expected = {f"juju_lab_{UUID[:8]}_{app}_target": targets} if targets else {}
    relation = testing.Relation("target", remote_app_name=app, remote_units_data=units)
    return Related(relation, expected, _strings(units))


app_names = st.lists(st.from_regex(r"[a-z]{1,6}", fullmatch=True), unique=True, max_size=4)


@st.composite
def related(draw: st.DrawFn) -> list[Related]:
    """Zero to four related applications, each on metrics-endpoint or target."""
    return [draw(st.one_of(metrics_endpoint(app), target(app))) for app in draw(app_names)]
