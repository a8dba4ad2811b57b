"""The alertmanager_dispatch library: both halves, against the databags COS's library writes.

What Canonical's library does, read in canonical/alertmanager-k8s-operator (the facts, not
the code):

- lib/charms/alertmanager_k8s/v1/alertmanager_dispatch.py (LIBAPI 1, LIBPATCH 2): the provider
  writes `_ProviderSchemaV1(url=external_url).model_dump()` into its unit databag. That model
  has the field `url` and two pydantic computed fields, which model_dump includes:
  `public_address`, the URL's hostname, then `:port` only if the URL has a port, then its
  path; and `scheme`. The charm passes its in-cluster FQDN URL, such as
  `http://alertmanager-0.alertmanager-endpoints.cos.svc.cluster.local:9093`. The consumer's
  get_cluster_info() reads each unit: `url` if the v1 model validates (it needs `url`),
  otherwise the v0 model (`public_address`, `scheme` defaulting to "http") as
  f"{scheme}://{public_address}"; a unit with an empty databag is skipped.
- lib/charms/alertmanager_k8s/v0/alertmanager_dispatch.py at 6a14f0d (LIBPATCH 8): the provider
  writes `public_address` = f"{hostname}:{port or 80}{path}" and `scheme`; its consumer's
  get_cluster_info_with_scheme() reads `public_address` and `scheme` (default "http").
  LIBPATCH 2 to 4 wrote only `public_address` = "<fqdn>:<port>"; LIBPATCH 5 wrote
  "<hostname>:<port><path>" with the port as Python formats None when the URL had none.
- canonical/prometheus-k8s-operator, lib/charms/prometheus_k8s/v0/prometheus_scrape.py,
  PrometheusConfig.render_alertmanager_static_configs: each URL (http:// added if it has no
  scheme) goes to the `alertmanagers` entry of its (scheme, path or "/"), as `netloc` in that
  entry's single static config's targets.
"""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any

import ops
import pytest
from lab_monitoring.interfaces import alertmanager_dispatch
from ops import testing

PROVIDER_META = {
    "name": "alertmanager",
    "provides": {"alerting": {"interface": "alertmanager_dispatch"}},
}
PROVIDER_CONFIG = {
    "options": {
        "port": {"type": "int", "default": 9093},
        "prefix": {"type": "string", "default": ""},
    }
}
REQUIRER_META = {
    "name": "prometheus",
    "requires": {"alertmanager": {"interface": "alertmanager_dispatch"}},
}


class ProviderCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.alerting = alertmanager_dispatch.AlertmanagerDispatchProvider(self)
        self.changed: bool | None = None
        framework.observe(self.on.config_changed, self._on_config_changed)

    def _on_config_changed(self, _: ops.EventBase):
        port = int(self.config["port"])
        self.changed = self.alerting.publish(port=port, path_prefix=str(self.config["prefix"]))


class RequirerCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.requirer = alertmanager_dispatch.AlertmanagerDispatchRequirer(self)
        self.targets: list[alertmanager_dispatch.Target] = []
        self.alertmanagers: list[dict[str, Any]] = []
        framework.observe(self.on.update_status, self._on_update_status)

    def _on_update_status(self, _: ops.EventBase):
        self.targets = self.requirer.targets()
        self.alertmanagers = self.requirer.alertmanagers()


def network(address: str) -> testing.Network:
    return testing.Network(
        "alerting",
        bind_addresses=[testing.BindAddress([testing.Address(address)])],
        ingress_addresses=[address],
        egress_subnets=[],
    )


def publish(config: dict[str, Any], address: str = "10.0.0.5") -> dict[str, str]:
    """Return the unit databag the provider writes on one relation."""
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, config=PROVIDER_CONFIG)
    relation = testing.Relation("alerting")
    state = testing.State(relations=[relation], networks=[network(address)], config=config)
    out = ctx.run(ctx.on.config_changed(), state)
    data = dict(out.get_relation(relation.id).local_unit_data)
    return {
        k: v
        for k, v in data.items()
        if k not in ("egress-subnets", "ingress-address", "private-address")
    }


def read(*relations: testing.Relation) -> RequirerCharm:
    ctx = testing.Context(RequirerCharm, meta=REQUIRER_META)
    with ctx(ctx.on.update_status(), testing.State(relations=list(relations))) as manager:
        manager.run()
        return manager.charm


def relation(*units: dict[str, str], app: str = "alertmanager") -> testing.Relation:
    return testing.Relation(
        "alertmanager", remote_app_name=app, remote_units_data=dict(enumerate(units))
    )


# What COS's consumers make of a unit databag, per the facts in the module docstring.
def cos_v1_consumer(data: dict[str, str]) -> str | None:
    if not data:
        return None
    if "url" in data:
        return data["url"]
    return f"{data.get('scheme', 'http')}://{data['public_address']}"


def cos_v0_consumer(data: dict[str, str]) -> str | None:
    address = data.get("public_address")
    return f"{data.get('scheme', 'http')}://{address}" if address else None


def cos_prometheus_entry(url: str) -> tuple[str, str, str]:
    parts = urllib.parse.urlparse(url if "://" in url else f"http://{url}")
    return parts.scheme, parts.path or "/", parts.netloc


# --- the provider, as COS's consumers read it ------------------------------------------------


def test_provider_writes_v1_url_and_v0_address_and_scheme():
    assert publish({}) == {
        "url": "http://10.0.0.5:9093",
        "public_address": "10.0.0.5:9093",
        "scheme": "http",
    }


def test_provider_writes_the_same_three_keys_cos_v1_writes_for_its_url():
    data = publish({"port": 9193, "prefix": "/am"})

    # COS v1 computes public_address as hostname[:port]path and scheme from the URL.
    parsed = urllib.parse.urlparse(data["url"])
    assert data["public_address"] == f"{parsed.hostname}:{parsed.port}{parsed.path}"
    assert data["scheme"] == parsed.scheme


@pytest.mark.parametrize(
    ("config", "address", "url"),
    [
        ({}, "10.0.0.5", "http://10.0.0.5:9093"),
        ({"prefix": "/am"}, "10.0.0.5", "http://10.0.0.5:9093/am"),
        ({"port": 80}, "fd00::5", "http://[fd00::5]:80"),
    ],
)
def test_cos_consumers_and_cos_prometheus_read_the_unit_s_url(config, address, url):
    data = publish(config, address)

    assert cos_v1_consumer(data) == url
    assert cos_v0_consumer(data) == url
    scheme, path, netloc = cos_prometheus_entry(url)
    [entry] = alertmanager_dispatch.alertmanagers([alertmanager_dispatch.parse_url(url)])
    assert (entry["scheme"], entry["static_configs"][0]["targets"]) == (scheme, [netloc])
    assert entry["path_prefix"] == path


def test_provider_publishes_nothing_without_an_ingress_address(caplog):
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, config=PROVIDER_CONFIG)
    rel = testing.Relation("alerting")
    nowhere = testing.Network("alerting", bind_addresses=[], ingress_addresses=[])

    with caplog.at_level(logging.WARNING):
        out = ctx.run(ctx.on.config_changed(), testing.State(relations=[rel], networks=[nowhere]))

    assert "url" not in out.get_relation(rel.id).local_unit_data
    assert "no ingress address yet" in caplog.text


def test_provider_reports_whether_it_changed_anything():
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, config=PROVIDER_CONFIG)
    rel = testing.Relation("alerting")
    with ctx(ctx.on.config_changed(), testing.State(relations=[rel])) as manager:
        out = manager.run()
        assert manager.charm.changed is True
    with ctx(ctx.on.config_changed(), out) as manager:
        manager.run()
        assert manager.charm.changed is False


@pytest.mark.parametrize(
    ("port", "prefix"), [(0, ""), (65536, ""), (9093, "am"), (9093, "/am/"), (9093, "/a b")]
)
def test_provider_refuses_a_bad_port_or_prefix(port, prefix):
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, config=PROVIDER_CONFIG)
    state = testing.State(
        relations=[testing.Relation("alerting")], config={"port": port, "prefix": prefix}
    )

    with pytest.raises(testing.errors.UncaughtCharmError, match="ValueError"):
        ctx.run(ctx.on.config_changed(), state)


# --- the requirer, on what COS's providers write ---------------------------------------------

COS_V1 = {
    "url": "http://alertmanager-0.alertmanager-endpoints.cos.svc.cluster.local:9093",
    "public_address": "alertmanager-0.alertmanager-endpoints.cos.svc.cluster.local:9093",
    "scheme": "http",
}
COS_V1_INGRESS = {
    "url": "https://cos.lab/cos-alertmanager",
    "public_address": "cos.lab/cos-alertmanager",
    "scheme": "https",
}
COS_V0_PATCH8 = {"public_address": "10.1.2.3:9093/cos-alertmanager", "scheme": "https"}
COS_V0_OLD = {"public_address": "alertmanager-1.alertmanager-endpoints.cos.svc.cluster.local:9093"}


def test_requirer_reads_cos_v1_url():
    [target] = read(relation(COS_V1)).targets

    assert target == alertmanager_dispatch.Target(
        "http", "/", "alertmanager-0.alertmanager-endpoints.cos.svc.cluster.local:9093"
    )
    assert target.unit == "alertmanager/0"


def test_requirer_fills_in_the_scheme_s_port_of_a_cos_v1_url_without_one():
    [target] = read(relation(COS_V1_INGRESS)).targets

    assert (target.scheme, target.path_prefix, target.address) == (
        "https",
        "/cos-alertmanager",
        "cos.lab:443",
    )


def test_requirer_reads_cos_v0_address_and_scheme():
    [target] = read(relation(COS_V0_PATCH8)).targets

    assert (target.scheme, target.path_prefix, target.address) == (
        "https",
        "/cos-alertmanager",
        "10.1.2.3:9093",
    )


def test_requirer_reads_an_old_cos_v0_address_as_http():
    [target] = read(relation(COS_V0_OLD)).targets

    assert target.scheme == "http"
    assert target.address == COS_V0_OLD["public_address"]


def test_requirer_prefers_url_over_public_address():
    data = {"url": "http://10.0.0.5:9093", "public_address": "10.9.9.9:1", "scheme": "https"}

    [target] = read(relation(data)).targets

    assert target.address == "10.0.0.5:9093"


def test_requirer_reads_what_this_provider_writes():
    data = publish({"port": 9193, "prefix": "/am"}, "fd00::5")

    [target] = read(relation(data)).targets

    assert (target.scheme, target.path_prefix, target.address) == ("http", "/am", "[fd00::5]:9193")


def test_alertmanagers_groups_by_scheme_and_prefix_deduplicated_and_sorted():
    charm = read(
        relation(
            {"url": "http://10.0.0.6:9093"},
            {"url": "http://10.0.0.5:9093/"},
            {"url": "http://10.0.0.6:9093"},
            {"url": "https://10.0.0.7:9093/am"},
        ),
        relation({"public_address": "10.0.0.8:9093"}, {}, app="other-am"),
    )

    assert charm.alertmanagers == [
        {
            "scheme": "http",
            "path_prefix": "/",
            "static_configs": [{"targets": ["10.0.0.5:9093", "10.0.0.6:9093", "10.0.0.8:9093"]}],
        },
        {
            "scheme": "https",
            "path_prefix": "/am",
            "static_configs": [{"targets": ["10.0.0.7:9093"]}],
        },
    ]


def test_no_relation_means_no_alertmanagers():
    assert read().alertmanagers == []


def test_a_unit_that_published_nothing_yet_is_skipped_quietly(caplog):
    with caplog.at_level(logging.WARNING):
        charm = read(relation({}, COS_V1))

    assert len(charm.targets) == 1
    assert caplog.text == ""


HOSTILE = [
    {"url": "http://10.0.0.5:9093/\n- targets: [evil]"},
    {"url": "javascript:alert(1)"},
    {"url": "file:///etc/shadow"},
    {"url": "http://user:pass@10.0.0.5:9093"},
    {"url": "http://10.0.0.5:9093/?x=1"},
    {"url": "http://10.0.0.5:9093/#frag"},
    {"url": "http://10.0.0.5:0"},
    {"url": "http://10.0.0.5:99999"},
    {"url": "http://10.0.0.5:port"},
    {"url": "http://exämple.lab:9093"},
    {"url": "http://a b:9093"},
    {"url": "http://10.0.0.5:9093/a b"},
    {"url": "http://10.0.0.5:9093/a//b"},
    {"url": "http://" + "a" * 3000 + ":9093"},
    {"url": "http://" + "-bad-.lab:9093"},
    {"url": "http://[fd00::5:9093"},
    {"url": "http://[fe80::1%25eth0]:9093"},
    {"url": "http://[fe80::1%eth0]:9093"},
    {"public_address": "10.0.0.5:None/am"},
    {"public_address": "http://10.0.0.5:9093"},
    {"public_address": "10.0.0.5:9093", "scheme": "gopher"},
    {"public_address": "10.0.0.5:9093?x=1"},
    {"public_address": "user@10.0.0.5:9093"},
    {"public_address": "10.0.0.5:9093\nevil"},
]


@pytest.mark.parametrize("data", HOSTILE)
def test_invalid_data_is_skipped_with_a_warning_and_neighbours_kept(data, caplog):
    with caplog.at_level(logging.WARNING):
        charm = read(relation(data, COS_V1))

    assert [t.unit for t in charm.targets] == ["alertmanager/1"]
    assert "ignoring alertmanager/0" in caplog.text
    # The value is shown escaped and cut short: no line break reaches the log.
    assert all("\n" not in record.getMessage() for record in caplog.records)
    assert len(max((r.getMessage() for r in caplog.records), key=len)) < 300


@pytest.mark.parametrize(
    "data",
    [
        {"url": "http://admin:s3cret@10.0.0.5:9093"},
        {"public_address": "admin:s3cret@10.0.0.5:9093"},
    ],
)
def test_a_password_in_a_url_is_not_logged(data, caplog):
    with caplog.at_level(logging.DEBUG):
        charm = read(relation(data, COS_V1))

    assert [t.unit for t in charm.targets] == ["alertmanager/1"]
    assert "must not carry credentials" in caplog.text
    assert "s3cret" not in caplog.text


def test_unit_data_refuses_what_it_could_not_publish():
    with pytest.raises(ValueError, match="url"):
        alertmanager_dispatch.unit_data("ftp://10.0.0.5:9093")


@pytest.mark.parametrize(
    ("host", "written"),
    [("10.0.0.5", "10.0.0.5"), ("fd00::5", "[fd00::5]"), ("am.lab", "am.lab"), ("", "")],
)
def test_url_host_brackets_ipv6_only(host, written):
    assert alertmanager_dispatch.url_host(host) == written
