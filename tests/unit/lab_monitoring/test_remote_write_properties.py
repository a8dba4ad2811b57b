"""Properties of both remote-write halves over random and hostile remote databags.

Whatever a receiver's units or a sender's application write, reading must not raise; the
sender half returns only plain http(s) URLs that some unit published, once each, sorted; the
receiver half returns parsed rules with a list of groups and a topology of Juju names only.
"""

from __future__ import annotations

import json
import urllib.parse

import ops
from hypothesis import given, settings
from hypothesis import strategies as st
from lab_monitoring.interfaces import remote_write
from ops import testing

META = {
    "name": "prometheus",
    "provides": {"receive-remote-write": {"interface": "prometheus_remote_write"}},
    "requires": {"send-remote-write": {"interface": "prometheus_remote_write"}},
}
UUID = "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"


class Prometheus(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.endpoints: list[str] = []
        self.senders: list[remote_write.RuleSender] = []
        framework.observe(self.on.update_status, self._reconcile)

    def _reconcile(self, _: ops.EventBase):
        self.endpoints = remote_write.endpoints(self)
        self.senders = remote_write.senders(self)


NASTY = [
    "",
    "http://",
    "ftp://h/api/v1/write",
    "file:///etc/shadow",
    "http://user:pw@h:9090/api/v1/write",
    "http://h:9090/api/v1/write?tenant=a",
    "http://h:9090/#x",
    "http://h:0",
    "http://h:99999",
    "http://h\n:9090",
    "http://ünïcode:9090",
    "http://[::1",
    "http://$__file{/etc/shadow}:9090",
    "http://" + "a" * 3000,
]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
valid_url = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}:{port}{path}/api/v1/write",
    st.sampled_from(["http", "https"]),
    st.sampled_from(["10.0.0.5", "prom.lab", "[fd00::5]"]),
    st.integers(1, 65535),
    st.sampled_from(["", "/prom"]),
)
unit_value = (
    st.builds(lambda u: json.dumps({"url": u}), valid_url | st.sampled_from(NASTY) | JSON)
    | st.builds(json.dumps, JSON)
    | st.sampled_from(NASTY)
    | st.text(max_size=30)
)
unit_data = st.dictionaries(st.sampled_from(["remote_write", "other"]), unit_value, max_size=2)
receivers = st.lists(
    st.dictionaries(st.integers(0, 9), unit_data, max_size=4), min_size=1, max_size=3
)

juju_name = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,3})?", fullmatch=True)
labels = st.fixed_dictionaries(
    {},
    optional={
        "juju_model": juju_name | st.text(max_size=8) | JSON,
        "juju_model_uuid": st.just(UUID) | st.text(max_size=8) | JSON,
        "juju_application": juju_name | st.text(max_size=8) | JSON,
        "juju_charm": juju_name | st.text(max_size=8) | JSON,
        "severity": st.text(max_size=8),
    },
)
rule = st.fixed_dictionaries({"expr": st.text(max_size=10)}, optional={"labels": labels | JSON})
group = st.fixed_dictionaries(
    {"name": st.text(max_size=10), "rules": st.lists(rule, max_size=3) | JSON}
)
rules_value = (
    st.builds(lambda g: json.dumps({"groups": g}), st.lists(group | JSON, max_size=3))
    | st.builds(json.dumps, JSON)
    | st.text(max_size=30)
)
sender_data = st.fixed_dictionaries(
    {}, optional={"alert_rules": rules_value, "scrape_metadata": st.builds(json.dumps, JSON)}
)
senders = st.lists(sender_data, min_size=1, max_size=3)


def run(relations: list[testing.Relation]) -> Prometheus:
    ctx = testing.Context(Prometheus, meta=META)
    state = testing.State(relations=relations)
    with ctx(ctx.on.update_status(), state) as manager:
        manager.run()
        return manager.charm


@settings(max_examples=150, deadline=None)
@given(receivers)
def test_the_sender_half_returns_only_published_plain_urls(given_receivers):
    relations = [
        testing.Relation("send-remote-write", remote_app_name=f"r{i}", remote_units_data=units)
        for i, units in enumerate(given_receivers)
    ]

    urls = run(relations).endpoints

    published = set()
    for units in given_receivers:
        for data in units.values():
            try:
                url = json.loads(data.get("remote_write", "")).get("url")
            except (ValueError, AttributeError, RecursionError):
                continue
            if isinstance(url, str):
                published.add(url)
    assert urls == sorted(set(urls))
    for url in urls:
        assert url in published
        parts = urllib.parse.urlsplit(url)
        assert parts.scheme in ("http", "https")
        assert parts.hostname
        for character in "@?# ":
            assert character not in url
        assert url.isascii()
        assert url.isprintable()


@settings(max_examples=150, deadline=None)
@given(senders)
def test_the_receiver_half_returns_parsed_rules_and_only_juju_names(given_senders):
    relations = [
        testing.Relation("receive-remote-write", remote_app_name=f"s{i}", remote_app_data=data)
        for i, data in enumerate(given_senders)
    ]

    found = run(relations).senders

    by_app = {f"s{i}": data for i, data in enumerate(given_senders)}
    for sender in found:
        assert sender.rules == json.loads(by_app[sender.application]["alert_rules"])
        assert isinstance(sender.rules["groups"], list)
        if sender.topology is not None:
            for name in (sender.topology.model, sender.topology.application):
                assert remote_write._JUJU_NAME.fullmatch(name)
            assert sender.topology.model_uuid == UUID
            assert sender.topology.charm == "" or remote_write._JUJU_NAME.fullmatch(
                sender.topology.charm
            )
