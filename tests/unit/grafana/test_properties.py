"""Properties of the Grafana charm over random and hostile grafana-source data.

Whatever the related Prometheus charms write, the hook must not raise, every valid unit must
become a data source, and the provisioning file may hold no data source, URL or name that the
data did not ask for. Text that reaches the file is escaped for Grafana's `$` expansion.
"""

from __future__ import annotations

import json
import urllib.parse

import charm
from grafana_testing import CHARM_DIR, DEFAULT_RELEASE, MODEL, FakeGrafana, state
from hypothesis import given
from hypothesis import strategies as st
from lab_monitoring.interfaces import grafana_source
from ops import testing

NASTY = [
    "",
    "\n",
    "http://",
    "http://h:99999",
    "ftp://10.0.0.1/",
    "javascript:alert(1)",
    "http://u:p@h:9090",
    "http://h:9090/?q=1",
    "http://h:9090/\nx: y",
    "http://$__file{/etc/shadow}:9090",
    "http://h:9090/${HOME}",
    "$__env{HOME}",
    "{",
    '{"model": 1}',
    "- a\n- b",
    "x" * 3000,
    "\x00",
    "\u00fcn\u00efcode",
]
nasty = st.sampled_from(NASTY) | st.text(max_size=20)
url = st.builds(
    "http://{}:{}{}".format,
    st.sampled_from(["10.0.0.5", "prom.lab", "[fd00::5]"]),
    st.integers(1, 65535),
    st.sampled_from(["", "/", "/prom", "/$x"]),
)


@st.composite
def provider(draw: st.DrawFn, app: str) -> tuple[testing.Relation, dict[str, str]]:
    """A grafana-source relation and the URL each valid unit asked for, by unit name.

    A COS provider may also publish one URL for its whole application, keyed by its name.
    """
    cos = draw(st.booleans())
    units: dict[int, dict[str, str]] = {}
    expected: dict[str, str] = {}
    for number in draw(st.lists(st.integers(0, 9), unique=True, max_size=3)):
        asked = draw(url)
        data = {"grafana_source_host": asked} if cos else {"type": "prometheus", "url": asked}
        if draw(st.booleans()):
            expected[f"{app}/{number}"] = asked
        else:
            data[draw(st.sampled_from([*sorted(data), "description", "username"]))] = draw(nasty)
        units[number] = data
    app_data = {}
    if cos:
        cos_data = {"model": "edge", "application": app, "type": "prometheus"}
        app_data["grafana_source_data"] = json.dumps(cos_data)
        if draw(st.booleans()):  # COS v1: one URL for the whole application
            app_data["grafana_source_app_host"] = expected[app] = draw(url)
    relation = testing.Relation(
        "grafana-source", remote_app_name=app, remote_app_data=app_data, remote_units_data=units
    )
    return relation, expected


providers = st.lists(
    st.from_regex(r"[a-z]{1,6}", fullmatch=True), unique=True, max_size=3
).flatmap(lambda apps: st.tuples(*(provider(app) for app in apps)))


def run(relations: list[testing.Relation]) -> dict:
    """Run update-status on a settled unit with these relations; return the provisioning file."""
    fake = FakeGrafana()
    fake.install(DEFAULT_RELEASE)
    fake.running = True
    ctx = testing.Context(charm.GrafanaCharm, charm_root=CHARM_DIR)
    before = state()
    with fake.patched():
        ctx.run(ctx.on.update_status(), state(relations=[*before.relations, *relations]))
    return fake.datasources()


def unescaped(text: str) -> str:
    """Undo the `$$` escape the charm applies, as Grafana does when it reads the file."""
    assert "$" not in text.replace("$$", ""), f"unescaped $ in {text!r}"
    return text.replace("$$", "$")


@given(providers)
def test_hook_never_raises_and_provisions_only_what_valid_units_asked_for(given_providers):
    relations = [relation for relation, _ in given_providers]
    asked = {
        f"{r.remote_app_name}/{n}": data
        for r in relations
        for n, data in r.remote_units_data.items()
    }
    # The application-level data source is named after the application alone.
    asked |= {
        r.remote_app_name: {"grafana_source_host": r.remote_app_data["grafana_source_app_host"]}
        for r in relations
        if "grafana_source_app_host" in r.remote_app_data
    }

    doc = run(relations)

    names = [d["name"] for d in doc["datasources"]]
    assert len(set(names)) == len(names)
    assert len({d["uid"] for d in doc["datasources"]}) == len(names)
    for source in doc["datasources"]:
        source_url = unescaped(source["url"])
        parts = urllib.parse.urlsplit(source_url)
        assert parts.scheme in ("http", "https")
        assert source_url.isascii(), source_url
        assert source_url.isprintable(), source_url
        model, unit = unescaped(source["name"]).split("/", 1)
        assert model in ("edge", MODEL.name)
        data = asked[unit]
        host = data.get("grafana_source_host")
        assert source_url in (data.get("url"), host, f"http://{host}"), data
        grafana_source.validate_url(source_url)


@given(providers)
def test_every_valid_unit_becomes_a_data_source_with_its_stable_uid(given_providers):
    relations = [relation for relation, _ in given_providers]

    doc = run(relations)

    by_unit = {unescaped(d["name"]).split("/", 1)[1]: d for d in doc["datasources"]}
    for relation, expected in given_providers:
        model = "edge" if relation.remote_app_data else MODEL.name
        for unit, asked in expected.items():
            assert unit in by_unit, f"valid unit {unit} has no data source"
            assert unescaped(by_unit[unit]["url"]) == asked
            if "/" in unit:
                number = int(unit.split("/")[1])
                uid = grafana_source.datasource_uid(model, relation.remote_app_name, number)
            else:
                uid = grafana_source.app_datasource_uid(model, relation.remote_app_name)
            assert by_unit[unit]["uid"] == uid
