"""Properties of GrafanaSourceRequirer.sources() over random and hostile provider databags.

Each generated relation mixes units that publish a valid data source (COS or legacy format)
with units whose databags are junk: missing keys, JSON of the wrong shape, unicode, newlines,
YAML and JSON fragments, very long strings, bad ports and schemes. Whatever they hold, reading
them must not raise, must return every valid unit, and must return nothing the data did not say.
"""

from __future__ import annotations

import dataclasses
import json
import string
import urllib.parse

import ops
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lab_monitoring.interfaces import grafana_source
from ops import testing

META = {"name": "grafana", "requires": {"grafana-source": {"interface": "grafana_datasource"}}}
MODEL = testing.Model(name="lab")


class RequirerCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.requirer = grafana_source.GrafanaSourceRequirer(self)
        self.sources: list[grafana_source.DataSource] = []
        framework.observe(self.on.update_status, self._on_update_status)

    def _on_update_status(self, _: ops.EventBase):
        self.sources = self.requirer.sources()


# --- strategies -------------------------------------------------------------------------------

# Values that are wrong for a URL field in one way each.
NASTY_URLS = [
    "",
    "http://",
    "http://h:99999",
    "http://h:0",
    "http://h:-1",
    "http://h:²",
    "ftp://10.0.0.1/",
    "file:///etc/shadow",
    "javascript:alert(1)",
    "gopher://h:70",
    "http://user:pw@h:9090",
    "http://h:9090/?q=1",
    "http://h:9090/#x",
    "http://h:9090/\nx: y",
    "http://h\t:9090",
    "http://h:9090/ x",
    "http://ünïcode.example:9090",
    "http://[::1",
    "10.0.0.1:9090\n",
    "http://" + "a" * 3000,
]
# Values that are wrong for a text field, or that try to be structure rather than text.
NASTY_TEXT = [
    "\n",
    "line\nkey: value",
    "\x00",
    "\u2028",
    "\x1b[31m",
    "tab\there",
    "x" * 3000,
    "{",
    "[1, 2",
    '{"model": 1}',
    "- a\n- b",
    "key: value\nother: [1",
    "$__file{/etc/shadow}",
    "${HOME}",
    "Prom Etheus",
    "ünicode",
    "\ud800",
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
nasty_text = st.sampled_from(NASTY_URLS + NASTY_TEXT) | st.text(max_size=40)
juju_name = st.from_regex(r"[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,5})?", fullmatch=True)
host = st.sampled_from(["10.0.0.5", "prom.lab", "[fd00::5]", "localhost"])
port = st.integers(min_value=1, max_value=65535)
valid_url = st.builds(
    lambda scheme, h, p, path: f"{scheme}://{h}:{p}{path}",
    st.sampled_from(["http", "https"]),
    host,
    port,
    st.sampled_from(["", "/", "/prometheus"]),
)
plugin_id = st.from_regex(r"[a-z][a-z0-9_-]{0,20}", fullmatch=True)
printable = st.text(string.ascii_letters + string.digits + " ._-", max_size=40)
extra_fields = st.dictionaries(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True),
    st.booleans() | st.integers(-(2**31), 2**31) | printable,
    max_size=3,
)


@dataclasses.dataclass
class Unit:
    """A provider unit's databag and, when it is valid, the data source it asks for."""

    data: dict[str, str]
    expected_url: str | None = None
    expected_format: str | None = None


@st.composite
def legacy_unit(draw: st.DrawFn) -> Unit:
    url = draw(valid_url)
    data = {"type": draw(plugin_id), "url": url}
    if draw(st.booleans()):
        data["description"] = draw(printable)
    if draw(st.booleans()):
        data["username"], data["password"] = draw(printable), draw(printable)
    return Unit(data, url, "legacy")


@st.composite
def cos_unit(draw: st.DrawFn) -> Unit:
    url = draw(valid_url)
    # Older COS providers write host:port without a scheme; the library reads it as http.
    if url.startswith("http://") and draw(st.booleans()):
        return Unit({"grafana_source_host": url.removeprefix("http://")}, url, "cos")
    return Unit({"grafana_source_host": url}, url, "cos")


@st.composite
def junk_unit(draw: st.DrawFn) -> Unit:
    """A random databag, or a valid one with one field replaced by junk or removed."""
    keys = st.sampled_from(
        ["grafana_source_host", "type", "url", "description", "username", "password", "x"]
    )
    if draw(st.booleans()):
        return Unit(draw(st.dictionaries(keys, nasty_text, max_size=5)))
    data = dict(draw(legacy_unit() | cos_unit()).data)
    key = draw(st.sampled_from(sorted(data)))
    if draw(st.booleans()):
        data[key] = draw(nasty_text)
    else:
        del data[key]
    return Unit(data)


@st.composite
def cos_app_data(draw: st.DrawFn) -> dict[str, object]:
    return {
        "model": draw(juju_name),
        "model_uuid": "00000000-0000-4000-8000-000000000000",
        "application": draw(juju_name),
        "type": draw(plugin_id),
        "extra_fields": draw(extra_fields | JSON_VALUES),
        "secure_extra_fields": {},
    }


@st.composite
def junk_app_data(draw: st.DrawFn) -> str:
    """grafana_source_data that is not usable: not JSON, not an object, or bad fields."""
    broken = draw(cos_app_data())
    broken[draw(st.sampled_from(["model", "type"]))] = draw(JSON_VALUES | nasty_text)
    return draw(
        nasty_text
        | st.builds(json.dumps, JSON_VALUES)
        | st.just(json.dumps({key: broken[key] for key in broken if key != "model"}))
        | st.just(json.dumps(broken))
    )


@dataclasses.dataclass
class Provider:
    relation: testing.Relation
    units: dict[str, Unit]
    # The URL of the application-level data source (COS v1) it asks for, when valid.
    expected_app_url: str | None = None


@st.composite
def app_host(draw: st.DrawFn) -> tuple[str, str | None]:
    """A `grafana_source_app_host` value and the URL it stands for (None when invalid)."""
    url = draw(valid_url)
    if draw(st.booleans()):
        return draw(nasty_text), None
    if url.startswith("http://") and draw(st.booleans()):
        return url.removeprefix("http://"), url
    return url, url


@st.composite
def provider(draw: st.DrawFn, app: str) -> Provider:
    kind = draw(st.sampled_from(["cos", "legacy", "junk-app-data"]))
    cos = draw(cos_app_data()) if kind == "cos" else None
    valid = cos_unit() if kind == "cos" else legacy_unit()
    app_data: dict[str, str] = {}
    expected_app_url = None
    if kind != "legacy" and draw(st.booleans()):
        app_data["grafana_source_app_host"], expected_app_url = draw(app_host())
        # COS v1's default: units publish nothing when the application has one URL.
        valid = valid | st.just(Unit({}))
    unit_ids = draw(st.lists(st.integers(0, 30), unique=True, max_size=4))
    units = {f"{app}/{n}": draw(valid | junk_unit()) for n in unit_ids}
    if cos is not None:
        app_data["grafana_source_data"] = json.dumps(cos)
    elif kind == "junk-app-data":
        app_data["grafana_source_data"] = draw(junk_app_data())
        expected_app_url = None  # junk app data may still happen to be valid: not expected
    relation = testing.Relation(
        "grafana-source",
        remote_app_name=app,
        remote_app_data=app_data,
        remote_units_data={int(name.split("/")[1]): unit.data for name, unit in units.items()},
    )
    return Provider(relation, units, expected_app_url)


providers = st.lists(juju_name, unique=True, min_size=1, max_size=3).flatmap(
    lambda apps: st.tuples(*(provider(app) for app in apps))
)


def read(given_providers: tuple[Provider, ...]) -> list[grafana_source.DataSource]:
    ctx = testing.Context(RequirerCharm, meta=META)
    state = testing.State(relations=[p.relation for p in given_providers], model=MODEL)
    with ctx(ctx.on.update_status(), state) as manager:
        manager.run()
        return manager.charm.sources


def assert_plain_http_url(url: str) -> None:
    """Check a returned URL independently of the library's own validator."""
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme in ("http", "https"), url
    assert parts.hostname, url
    assert url.isascii(), url
    assert url.isprintable(), url
    assert " " not in url, url


def urls_in(data: dict[str, str]) -> set[str | None]:
    """The URLs a databag asks for: legacy `url`, COS host with or without a scheme."""
    host = data.get("grafana_source_host")
    return {data.get("url"), host, f"http://{host}"}


# --- properties -------------------------------------------------------------------------------


@given(providers)
def test_sources_never_raises_and_returns_only_valid_urls_from_the_input(
    given_providers: tuple[Provider, ...],
):
    sources = read(given_providers)

    units = {name: unit for p in given_providers for name, unit in p.units.items()}
    by_app = {p.relation.remote_app_name: p for p in given_providers}
    assert len({(s.application, s.unit) for s in sources}) == len(sources), "returned twice"
    assert len({s.uid for s in sources}) == len(sources), "a uid was returned twice"
    for source in sources:
        assert grafana_source.validate_url(source.url) == source.url
        assert_plain_http_url(source.url)
        if source.unit:
            assert source.url in urls_in(units[source.unit].data)
        else:
            app_data = by_app[source.application].relation.remote_app_data
            host = app_data["grafana_source_app_host"]
            assert source.url in (host, f"http://{host}")


@given(providers)
def test_every_valid_unit_is_returned_next_to_invalid_ones(given_providers: tuple[Provider, ...]):
    returned = read(given_providers)
    sources = {s.unit: s for s in returned if s.unit}
    app_sources = {s.application: s for s in returned if not s.unit}

    for p in given_providers:
        app = p.relation.remote_app_name
        if p.expected_app_url is not None:
            assert app in app_sources, f"valid application host of {app} was dropped"
            assert app_sources[app].url == p.expected_app_url
            model = json.loads(p.relation.remote_app_data["grafana_source_data"])["model"]
            assert app_sources[app].uid == grafana_source.app_datasource_uid(model, app)
        for name, unit in p.units.items():
            if unit.expected_format is None:
                continue
            assert name in sources, f"valid unit {name} was dropped"
            assert sources[name].url == unit.expected_url
            assert sources[name].wire_format == unit.expected_format


@given(providers)
def test_nothing_is_returned_that_the_provider_did_not_publish(
    given_providers: tuple[Provider, ...],
):
    by_app = {p.relation.remote_app_name: p for p in given_providers}

    for source in read(given_providers):
        p = by_app[source.application]
        data = p.units[source.unit].data if source.unit else {}
        if not source.unit:
            assert "grafana_source_app_host" in p.relation.remote_app_data
        if source.wire_format == "cos":
            # Junk app data may happen to be valid: compare with what was sent, not generated.
            cos = json.loads(p.relation.remote_app_data["grafana_source_data"])
            assert (source.model, source.type) == (cos["model"], cos["type"])
            extra = cos.get("extra_fields")
            assert isinstance(extra, dict) or not source.json_data
            for key, value in source.json_data.items():
                assert isinstance(extra, dict)
                assert extra[key] == value
            assert source.basic_auth_user is None
            assert source.basic_auth_password is None
        else:
            assert source.type == data["type"]
            assert source.description == data.get("description", "")
            assert source.basic_auth_user == data.get("username")
            assert source.basic_auth_password == data.get("password")
            assert source.model == MODEL.name


VALID_UNITS = {
    "legacy": {
        "type": "prometheus",
        "url": "http://10.0.0.5:9090",
        "description": "lab",
        "username": "reader",
        "password": "pw",
    },
    "cos": {"grafana_source_host": "http://10.0.0.5:9090"},
}
COS_APP_DATA = {
    "grafana_source_data": json.dumps(
        {"model": "lab", "type": "prometheus", "application": "p", "extra_fields": {}}
    )
}


@pytest.mark.parametrize("wire_format", ["legacy", "cos"])
def test_each_field_spoilt_with_each_hostile_value_is_skipped_next_to_a_valid_unit(
    wire_format: str,
):
    # Every (field, hostile value) pair, one unit each, next to a valid unit 0 (hypothesis
    # combines them at random; this table makes sure each single spoilt field is tried).
    valid = VALID_UNITS[wire_format]
    spoilt = [{**valid, key: value} for key in valid for value in NASTY_URLS + NASTY_TEXT]
    spoilt = [data for data in spoilt if data != valid]
    relation = testing.Relation(
        "grafana-source",
        remote_app_name="prometheus",
        remote_app_data=COS_APP_DATA if wire_format == "cos" else {},
        remote_units_data={0: valid} | dict(enumerate(spoilt, start=1)),
    )

    sources = read((Provider(relation, {}),))

    assert sources[0].unit == "prometheus/0"
    assert sources[0].url == "http://10.0.0.5:9090"
    for source in sources[1:]:
        data = spoilt[int(source.unit.split("/")[1]) - 1]
        assert_plain_http_url(source.url)
        assert source.url in urls_in(data), data
        assert source.description.isprintable(), data
        assert (source.basic_auth_user or "").isprintable(), data
        assert (source.basic_auth_password or "").isprintable(), data


@pytest.mark.parametrize("url", ["http://<script>:9090", "http://{", 'http://"q"', "http://a|b"])
def test_a_url_whose_host_is_not_a_hostname_or_ip_is_refused(url: str):
    with pytest.raises(ValueError, match="host"):
        grafana_source.validate_url(url)


def test_deeply_nested_cos_app_data_is_skipped_not_raised():
    relation = testing.Relation(
        "grafana-source",
        remote_app_name="prometheus",
        remote_app_data={"grafana_source_data": "[" * 100_000},
        remote_units_data={0: {"type": "prometheus", "url": "http://10.0.0.5:9090"}},
    )

    sources = read((Provider(relation, {}),))

    assert [s.url for s in sources] == ["http://10.0.0.5:9090"]
