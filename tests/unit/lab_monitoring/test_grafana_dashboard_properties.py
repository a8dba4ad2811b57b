"""Properties of the dashboard requirer over random and hostile provider databags.

Each generated databag mixes templates that hold a usable dashboard with templates whose
content is junk: not base64, not LZMA, LZMA bombs, truncated streams, JSON of the wrong shape,
and dashboards whose titles, uids, alternative uids, data source references and variable
names are path parts (`/`, `..`), Grafana's file and environment expansions (`$__file{...}`,
`${...}`), control characters and very long strings. Whatever they hold, reading them must not
raise, and what comes out must be safe to write as a provisioning file: a plain file name, one
file per uid, a JSON object with a title, every data source reference resolvable.
"""

from __future__ import annotations

import base64
import json
import lzma
from typing import Any

import pytest
from dashboard_checks import FILE_NAME, unresolved
from hypothesis import given, settings
from hypothesis import strategies as st
from lab_monitoring.interfaces import grafana_dashboard

# Small limits keep bombs cheap; the code reads them at call time.
LIMIT = 64 * 1024


def encode(data: bytes) -> str:
    """LZMA and base64 as COS does, at the fastest preset (the decoder reads any)."""
    return base64.b64encode(lzma.compress(data, preset=0)).decode()


BOMB = encode(b" " * (4 * LIMIT))
TRUNCATED = encode(json.dumps({"title": "t", "panels": []}).encode())[:-20]

NASTY = [
    "",
    "/",
    "..",
    "../../etc/passwd",
    "a/b",
    "$__file{/etc/shadow}",
    "$__env{HOME}",
    "${HOME}",
    "$HOME",
    "[[x]]",
    "${DS_PROMETHEUS}",
    "-- Grafana --",
    "\n",
    "\x00",
    "line\nkey: value",
    "é",
    "\ud800",
    "x" * 300,
    "{",
    "juju_x.json",
]
nasty = st.sampled_from(NASTY) | st.text(max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
plugin = st.sampled_from(["prometheus", "loki", "tempo", "grafana", "datasource", "x-y_z"])
reference = (
    st.none()
    | nasty
    | st.sampled_from(["lab_prometheus_0", "${prometheusds}", "$DS_LOKI", "Prometheus"])
    | st.fixed_dictionaries({}, optional={"type": plugin | nasty | JSON, "uid": nasty | JSON})
    | JSON
)
DATASOURCES = st.dictionaries(
    st.sampled_from(["lab_prometheus_0", "lab_loki_0", "${HOME}", "/"]), plugin, max_size=3
)


@st.composite
def panel(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = {"type": draw(st.sampled_from(["timeseries", "row", "stat"]))}
    if draw(st.booleans()):
        result["datasource"] = draw(reference)
    targets = draw(
        st.lists(st.builds(lambda r: {"datasource": r, "expr": "up"}, reference), max_size=2)
    )
    if targets:
        result["targets"] = targets
    if depth < 2 and draw(st.booleans()):
        result["panels"] = draw(st.lists(panel(depth + 1), max_size=2))
    return result


@st.composite
def variable(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["datasource", "query", "custom", "junk"]))
    if kind == "junk":
        return draw(JSON)
    result: dict[str, Any] = {"type": kind, "name": draw(nasty | st.sampled_from(["ds", "host"]))}
    if kind == "datasource":
        result["query"] = draw(plugin | JSON)
    elif draw(st.booleans()):
        result["datasource"] = draw(reference)
    return result


@st.composite
def dashboard(draw: st.DrawFn) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        result["title"] = draw(st.text(min_size=1, max_size=30) | nasty | JSON)
    if draw(st.booleans()):
        result["uid"] = draw(nasty | st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True) | JSON)
    if draw(st.booleans()):
        result["version"] = draw(JSON | st.integers())
    if draw(st.integers(0, 9)):
        result["panels"] = draw(st.lists(panel(), max_size=3) | JSON)
    if draw(st.booleans()):
        result["rows"] = draw(
            st.lists(st.builds(lambda p: {"panels": p}, st.lists(panel(), max_size=2)), max_size=2)
        )
    if draw(st.booleans()):
        result["templating"] = draw(
            st.builds(lambda v: {"list": v}, st.lists(variable(), max_size=3)) | JSON
        )
    if draw(st.booleans()):
        result["annotations"] = {
            "list": draw(st.lists(st.builds(lambda r: {"datasource": r}, reference), max_size=2))
        }
    if draw(st.booleans()):
        result["__inputs"] = [
            {
                "name": draw(nasty | st.just("DS_PROMETHEUS")),
                "type": "datasource",
                "pluginId": draw(plugin | JSON),
            }
        ]
    for key in draw(st.lists(st.sampled_from(["x_a", "x_b", "description"]), max_size=2)):
        result[key] = draw(nasty | JSON)
    return result


@st.composite
def content(draw: st.DrawFn) -> object:
    kind = draw(
        st.sampled_from(["dashboard", "dashboard", "json", "text", "bomb", "truncated", "junk"])
    )
    if kind == "dashboard":
        return encode(json.dumps(draw(dashboard())).encode())
    if kind == "json":
        return encode(json.dumps(draw(JSON)).encode())
    if kind == "text":
        # Lone surrogates become bytes that are not UTF-8.
        return encode(draw(nasty).encode("utf-8", "surrogatepass"))
    if kind == "bomb":
        return BOMB
    if kind == "truncated":
        return TRUNCATED
    return draw(nasty | JSON)


template = st.fixed_dictionaries(
    {"content": content()},
    optional={
        "charm": nasty | JSON,
        "inject_dropdowns": st.booleans() | JSON,
        "dashboard_alt_uid": nasty | st.from_regex(r"[0-9a-f]{16}", fullmatch=True) | JSON,
        "juju_topology": JSON,
    },
)
templates = st.dictionaries(
    nasty | st.from_regex(r"file:[a-z-]{1,10}", fullmatch=True), template | JSON, max_size=4
)
databag = (
    st.builds(lambda t, u: json.dumps({"templates": t, "uuid": u}), templates, nasty)
    | nasty
    | st.builds(json.dumps, JSON)
)
applications = st.lists(
    st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?", fullmatch=True),
    min_size=1,
    max_size=3,
    unique=True,
)


def read_all(apps: list[str], raws: list[str], datasources: dict[str, str]):
    found = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(grafana_dashboard, "MAX_DASHBOARD", LIMIT)
        budget = grafana_dashboard._Budget(grafana_dashboard.MAX_TOTAL)
        for relation_id, (app, raw) in enumerate(zip(apps, raws, strict=False)):
            found += grafana_dashboard.from_app_data(
                raw, app, relation_id, datasources, budget=budget
            )
    return grafana_dashboard.resolve_duplicates(found)


@settings(max_examples=300, deadline=None)
@given(applications, st.lists(databag, min_size=3, max_size=3), DATASOURCES)
def test_hostile_databags_never_raise_and_give_only_safe_files(apps, raws, datasources):
    dashboards = read_all(apps, raws, datasources)

    assert len({d.file_name for d in dashboards}) == len(dashboards)
    assert len({d.uid for d in dashboards}) == len(dashboards)
    for found in dashboards:
        assert FILE_NAME.fullmatch(found.file_name), found.file_name
        assert "/" not in found.file_name
        assert ".." not in found.file_name
        assert "$" not in found.file_name
        assert found.file_name == f"juju_{found.application}_{found.uid}.json"
        content = json.loads(found.content)
        assert isinstance(content, dict)
        assert content["uid"] == found.uid
        assert isinstance(content["title"], str)
        assert content["title"].strip()
        assert found.content.isascii()
        assert len(found.content) < LIMIT + 16 * 1024
        assert unresolved(content, datasources) == [], content


@settings(max_examples=200, deadline=None)
@given(st.lists(dashboard(), min_size=1, max_size=4), DATASOURCES)
def test_every_usable_dashboard_is_returned_with_its_references_resolved(dashboards, datasources):
    templates = {
        f"file:d{i}": {"charm": "demo", "content": encode(json.dumps(d).encode())}
        for i, d in enumerate(dashboards)
    }
    raw = json.dumps({"templates": templates})

    found = {d.template: d for d in grafana_dashboard.from_app_data(raw, "demo", 1, datasources)}

    for i, given_dashboard in enumerate(dashboards):
        title = given_dashboard.get("title")
        usable = (
            isinstance(title, str)
            and bool(title.strip())
            and isinstance(given_dashboard.get("panels", []), list)
            and ("panels" in given_dashboard or "rows" in given_dashboard)
            and _templating_ok(given_dashboard.get("templating", {"list": []}))
        )
        assert (f"file:d{i}" in found) == usable, given_dashboard
        if usable:
            content = json.loads(found[f"file:d{i}"].content)
            assert content["title"] == title
            assert unresolved(content, datasources) == []


def _templating_ok(templating: object) -> bool:
    return isinstance(templating, dict) and isinstance(templating.get("list", []), list)
