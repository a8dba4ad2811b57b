"""The grafana-source library: both wire formats, both halves, and hostile remote data."""

import dataclasses
import hashlib
import json

import ops
import pytest
from lab_monitoring.interfaces import grafana_source
from ops import testing

PROMETHEUS_URL = "http://10.0.0.5:9090"


class ProviderCharm(ops.CharmBase):
    """Publishes the URL from config on every config-changed, like the Prometheus charm."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.source = grafana_source.GrafanaSourceProvider(self)
        self.changed: bool | None = None
        framework.observe(self.on.config_changed, self._on_config_changed)

    def _on_config_changed(self, _: ops.EventBase):
        self.changed = self.source.publish(str(self.config["url"]), description="lab prometheus")


GRAFANA_URL = "http://10.0.0.7:3000/"


class RequirerCharm(ops.CharmBase):
    """Reads the sources on every relation-changed and writes the uids and its URL back."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.requirer = grafana_source.GrafanaSourceRequirer(self)
        self.sources: list[grafana_source.DataSource] = []
        self.changed: bool | None = None
        framework.observe(self.on["grafana-source"].relation_changed, self._on_changed)

    def _on_changed(self, _: ops.EventBase):
        self.sources = self.requirer.sources()
        self.changed = self.requirer.publish_uids(
            "grafana-uid", self.sources, base_url=GRAFANA_URL
        )


PROVIDER_META = {
    "name": "prometheus",
    "provides": {"grafana-source": {"interface": "grafana_datasource"}},
}
PROVIDER_CONFIG = {"options": {"url": {"type": "string", "default": PROMETHEUS_URL}}}
REQUIRER_META = {
    "name": "grafana",
    "requires": {"grafana-source": {"interface": "grafana_datasource"}},
}


def publish(state: testing.State) -> tuple[bool | None, testing.State]:
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, config=PROVIDER_CONFIG)
    with ctx(ctx.on.config_changed(), state) as manager:
        out = manager.run()
        return manager.charm.changed, out


def read(relations: list[testing.Relation], *, leader: bool = True):
    ctx = testing.Context(RequirerCharm, meta=REQUIRER_META)
    state = testing.State(relations=relations, leader=leader, model=testing.Model(name="lab"))
    with ctx(ctx.on.relation_changed(relations[0]), state) as manager:
        out = manager.run()
        return manager.charm.sources, out


def cos_app_data(**overrides: object) -> dict[str, str]:
    data: dict[str, object] = {
        "model": "lab",
        "model_uuid": "00000000-0000-4000-8000-000000000000",
        "application": "prometheus",
        "type": "prometheus",
        "extra_fields": {},
        **overrides,
    }
    return {"grafana_source_data": json.dumps(data)}


# Provider


def test_leader_publishes_both_wire_formats():
    relation = testing.Relation("grafana-source")
    state = testing.State(relations=[relation], leader=True, model=testing.Model(name="lab"))

    changed, out = publish(state)

    rel = out.get_relation(relation.id)
    assert changed is True
    assert rel.local_unit_data["grafana_source_host"] == PROMETHEUS_URL
    assert rel.local_unit_data["type"] == "prometheus"
    assert rel.local_unit_data["url"] == PROMETHEUS_URL
    assert rel.local_unit_data["description"] == "lab prometheus"
    cos = json.loads(rel.local_app_data["grafana_source_data"])
    assert cos["model"] == "lab"
    assert cos["model_uuid"] == state.model.uuid
    assert cos["application"] == "prometheus"
    assert cos["type"] == "prometheus"
    # Exactly the keys a COS requirer reads (grafana-k8s grafana_source.py, GrafanaSourceData).
    assert set(cos) == {
        "model",
        "model_uuid",
        "application",
        "type",
        "extra_fields",
        "secure_extra_fields",
    }
    assert cos["extra_fields"] == cos["secure_extra_fields"] == {}


def test_non_leader_publishes_unit_data_only():
    relation = testing.Relation("grafana-source")

    _, out = publish(testing.State(relations=[relation], leader=False))

    rel = out.get_relation(relation.id)
    assert rel.local_unit_data["url"] == PROMETHEUS_URL
    assert "grafana_source_data" not in rel.local_app_data


def test_publishing_the_same_url_again_changes_nothing():
    relation = testing.Relation("grafana-source")
    _, first = publish(testing.State(relations=[relation], leader=True))

    changed, second = publish(first)

    assert changed is False
    assert second.get_relation(relation.id) == first.get_relation(relation.id)


def test_new_port_is_published():
    relation = testing.Relation("grafana-source")
    _, first = publish(testing.State(relations=[relation], leader=True))

    changed, out = publish(dataclasses.replace(first, config={"url": "http://10.0.0.5:9091"}))

    assert changed is True
    assert out.get_relation(relation.id).local_unit_data["url"] == "http://10.0.0.5:9091"


@pytest.mark.parametrize("url", ["ftp://10.0.0.5", "http://", "http://a b:9090", ""])
def test_provider_refuses_an_invalid_url(url: str):
    relation = testing.Relation("grafana-source")
    state = testing.State(relations=[relation], config={"url": url})

    with pytest.raises(testing.errors.UncaughtCharmError, match="url"):
        publish(state)


# Requirer: the two wire formats


def test_cos_provider_becomes_a_data_source():
    relation = testing.Relation(
        "grafana-source",
        remote_app_name="prometheus",
        remote_app_data=cos_app_data(extra_fields={"timeInterval": "15s"}),
        remote_units_data={0: {"grafana_source_host": PROMETHEUS_URL}},
    )

    sources, _ = read([relation])

    assert len(sources) == 1
    source = sources[0]
    assert source.wire_format == "cos"
    assert source.url == PROMETHEUS_URL
    assert source.type == "prometheus"
    assert source.unit == "prometheus/0"
    assert source.uid == grafana_source.datasource_uid("lab", "prometheus", 0)
    assert source.json_data == {"timeInterval": "15s"}


def test_cos_host_without_scheme_is_read_as_http():
    relation = testing.Relation(
        "grafana-source",
        remote_app_data=cos_app_data(),
        remote_units_data={0: {"grafana_source_host": "10.0.0.5:9090"}},
    )

    sources, _ = read([relation])

    assert [s.url for s in sources] == ["http://10.0.0.5:9090"]


def test_legacy_provider_becomes_a_data_source_with_basic_auth():
    legacy = {"type": "prometheus", "url": PROMETHEUS_URL, "description": "old prometheus2"}
    legacy.update(username="reader", password="s3cret")
    relation = testing.Relation(
        "grafana-source", remote_app_name="prometheus2", remote_units_data={3: legacy}
    )

    sources, _ = read([relation])

    (source,) = sources
    assert source.wire_format == "legacy"
    assert source.url == PROMETHEUS_URL
    assert source.description == "old prometheus2"
    assert source.basic_auth_user == "reader"
    assert source.uid == grafana_source.datasource_uid("lab", "prometheus2", 3)
    assert "s3cret" not in repr(source)


def test_a_password_without_a_username_is_skipped_and_never_logged(caplog):
    lone = {"type": "prometheus", "url": PROMETHEUS_URL, "password": "hunter2-secret"}
    relation = testing.Relation("grafana-source", remote_units_data={0: lone})

    sources, _ = read([relation])

    assert sources == []
    assert "hunter2-secret" not in caplog.text
    assert "remote/0" in caplog.text


def test_cos_keys_win_over_legacy_keys():
    relation = testing.Relation(
        "grafana-source",
        remote_app_data=cos_app_data(),
        remote_units_data={
            0: {"grafana_source_host": PROMETHEUS_URL, "type": "prometheus", "url": "http://old:1"}
        },
    )

    sources, _ = read([relation])

    assert [(s.wire_format, s.url) for s in sources] == [("cos", PROMETHEUS_URL)]


def test_units_are_sorted_by_unit_number_not_text():
    units = {n: {"type": "prometheus", "url": f"http://10.0.0.{n}:9090"} for n in (10, 2, 1)}
    relation = testing.Relation("grafana-source", remote_units_data=units)

    sources, _ = read([relation])

    assert [s.unit for s in sources] == ["remote/1", "remote/2", "remote/10"]


def test_leader_writes_the_uids_back():
    relation = testing.Relation(
        "grafana-source",
        remote_app_name="prometheus",
        remote_app_data=cos_app_data(),
        remote_units_data={0: {"grafana_source_host": PROMETHEUS_URL}},
    )

    _, out = read([relation])

    app_data = out.get_relation(relation.id).local_app_data
    assert app_data["grafana_uid"] == "grafana-uid"
    uid = grafana_source.datasource_uid("lab", "prometheus", 0)
    assert json.loads(app_data["datasource_uids"]) == {"prometheus/0": uid}


def test_leader_writes_where_users_reach_grafana():
    relation = testing.Relation(
        "grafana-source", remote_units_data={0: {"type": "prometheus", "url": PROMETHEUS_URL}}
    )

    _, out = read([relation])

    assert out.get_relation(relation.id).local_app_data["grafana_base_url"] == GRAFANA_URL


def test_unchanged_uids_are_not_written_again():
    relation = testing.Relation(
        "grafana-source",
        remote_app_data=cos_app_data(grafana_source_app_host=PROMETHEUS_URL),
        remote_units_data={0: {"grafana_source_host": PROMETHEUS_URL}},
    )
    _, first = read([relation])

    ctx = testing.Context(RequirerCharm, meta=REQUIRER_META)
    with ctx(ctx.on.relation_changed(first.get_relation(relation.id)), first) as manager:
        second = manager.run()
        assert manager.charm.changed is False
    assert second.get_relation(relation.id) == first.get_relation(relation.id)


def test_non_leader_writes_no_uids():
    relation = testing.Relation(
        "grafana-source", remote_units_data={0: {"type": "prometheus", "url": PROMETHEUS_URL}}
    )

    _, out = read([relation], leader=False)

    assert out.get_relation(relation.id).local_app_data == {}


# Requirer: the COS v1 application-level data source


def cos_app_data_with_host(host: str = PROMETHEUS_URL, **overrides: object) -> dict[str, str]:
    return cos_app_data(**overrides) | {"grafana_source_app_host": host}


def test_cos_v1_application_host_becomes_one_data_source_and_its_uid_is_sent_back():
    # COS v1's default: the leader publishes one URL for the application, units publish none.
    relation = testing.Relation(
        "grafana-source",
        remote_app_name="mimir",
        remote_app_data=cos_app_data_with_host(extra_fields={"timeInterval": "15s"}),
        remote_units_data={0: {}, 1: {}},
    )

    sources, out = read([relation])

    (source,) = sources
    assert source.url == PROMETHEUS_URL
    assert source.unit == ""
    assert source.uid == grafana_source.app_datasource_uid("lab", "mimir") == "lab_mimir"
    assert source.name == "lab/mimir"
    assert source.json_data == {"timeInterval": "15s"}
    app_data = out.get_relation(relation.id).local_app_data
    assert app_data["app_datasource_uid"] == "lab_mimir"
    assert json.loads(app_data["datasource_uids"]) == {}


def test_cos_v1_application_host_without_units_still_counts():
    relation = testing.Relation(
        "grafana-source", remote_app_name="mimir", remote_app_data=cos_app_data_with_host()
    )

    sources, _ = read([relation])

    assert [s.uid for s in sources] == ["lab_mimir"]


def test_cos_v1_application_and_unit_hosts_give_both_the_application_first():
    relation = testing.Relation(
        "grafana-source",
        remote_app_name="prometheus",
        remote_app_data=cos_app_data_with_host("http://prom.lab:9090"),
        remote_units_data={1: {"grafana_source_host": "http://10.0.0.6:9090"}},
    )

    sources, out = read([relation])

    assert [(s.uid, s.url) for s in sources] == [
        ("lab_prometheus", "http://prom.lab:9090"),
        ("lab_prometheus_1", "http://10.0.0.6:9090"),
    ]
    app_data = out.get_relation(relation.id).local_app_data
    assert json.loads(app_data["datasource_uids"]) == {"prometheus/1": "lab_prometheus_1"}
    assert app_data["app_datasource_uid"] == "lab_prometheus"


def test_application_mode_units_without_data_are_skipped_without_a_warning(caplog):
    relation = testing.Relation(
        "grafana-source",
        remote_app_data=cos_app_data_with_host(),
        remote_units_data={0: {}, 1: {}},
    )

    read([relation])

    assert "ignoring" not in caplog.text


def test_units_without_data_are_still_reported_when_there_is_no_application_host(caplog):
    relation = testing.Relation(
        "grafana-source", remote_app_data=cos_app_data(), remote_units_data={0: {}}
    )

    sources, _ = read([relation])

    assert sources == []
    assert "ignoring remote/0: no data source published yet" in caplog.text


@pytest.mark.parametrize(
    "host", ["javascript:alert(1)", "http://a:1\nurl: x", "file:///etc/shadow", "http://"]
)
def test_invalid_application_host_is_skipped_and_units_still_count(host: str, caplog):
    relation = testing.Relation(
        "grafana-source",
        remote_app_data=cos_app_data_with_host(host),
        remote_units_data={0: {"grafana_source_host": PROMETHEUS_URL}, 1: {}},
    )

    sources, out = read([relation])

    assert [s.unit for s in sources] == ["remote/0"]
    assert "grafana-source: ignoring remote: url" in caplog.text  # which one, and why
    assert "app_datasource_uid" not in out.get_relation(relation.id).local_app_data


def test_application_host_without_valid_cos_app_data_is_ignored():
    relation = testing.Relation(
        "grafana-source",
        remote_app_data={"grafana_source_data": "{not json", "grafana_source_app_host": "h:1"},
        remote_units_data={0: {"type": "prometheus", "url": PROMETHEUS_URL}},
    )

    sources, _ = read([relation])

    assert [(s.wire_format, s.unit) for s in sources] == [("legacy", "remote/0")]


def test_application_uid_is_withdrawn_when_the_provider_stops_publishing_a_host():
    relation = testing.Relation(
        "grafana-source",
        remote_app_data=cos_app_data_with_host(),
        remote_units_data={0: {"grafana_source_host": PROMETHEUS_URL}},
    )
    _, first = read([relation])
    assert "app_datasource_uid" in first.get_relation(relation.id).local_app_data

    unit_only = dataclasses.replace(
        first.get_relation(relation.id), remote_app_data=cos_app_data()
    )
    ctx = testing.Context(RequirerCharm, meta=REQUIRER_META)
    out = ctx.run(
        ctx.on.relation_changed(unit_only), dataclasses.replace(first, relations=[unit_only])
    )

    assert "app_datasource_uid" not in out.get_relation(relation.id).local_app_data


def test_hashed_uids_stay_what_earlier_revisions_provisioned():
    # Dashboards and links name these uids: a charm upgrade must not change them.
    model = "a-very-long-model-name-for-the-lab"
    digest = hashlib.sha256(f"{model}/prometheus/3".encode()).hexdigest()

    assert grafana_source.datasource_uid(model, "prometheus", 3) == f"juju-{digest[:35]}"


def test_application_and_unit_uids_never_collide():
    for model, app in [("lab", "prometheus"), ("a-very-long-model-name-for-the-lab", "prom")]:
        app_uid = grafana_source.app_datasource_uid(model, app)
        unit_uids = {grafana_source.datasource_uid(model, app, n) for n in range(50)}
        assert app_uid not in unit_uids
        assert len(app_uid) <= 40


# Requirer: malformed and hostile data


HOSTILE_UNIT_DATA = {
    "nothing published yet": {},
    "file url": {"type": "prometheus", "url": "file:///etc/shadow"},
    "ftp url with a host": {"type": "prometheus", "url": "ftp://10.0.0.5:21"},
    "javascript url": {"type": "prometheus", "url": "javascript:alert(1)"},
    "newline in url": {"type": "prometheus", "url": "http://a:1\nurl: http://evil"},
    "yaml in url": {"type": "prometheus", "url": "http://a:1/ {evil: [1]}"},
    "port out of range": {"type": "prometheus", "url": "http://a:99999"},
    "credentials in url": {"type": "prometheus", "url": "http://user:pw@a:9090"},
    "ipv6 zone of the sender's machine": {
        "type": "prometheus",
        "url": "http://[fe80::1%25eth0]:9090",
    },
    "huge url": {"type": "prometheus", "url": "http://a/" + "x" * 5000},
    "unicode host": {"type": "prometheus", "url": "http://ünïcode:9090"},
    "yaml in type": {"type": "prometheus\nisDefault: true", "url": PROMETHEUS_URL},
    "upper-case type": {"type": "Prometheus", "url": PROMETHEUS_URL},
    "username without password": {"type": "prometheus", "url": PROMETHEUS_URL, "username": "u"},
    "password without username": {"type": "prometheus", "url": PROMETHEUS_URL, "password": "pw"},
    "newline in description": {
        "type": "prometheus",
        "url": PROMETHEUS_URL,
        "description": "x\ndeleteDatasources: []",
    },
}


@pytest.mark.parametrize("unit_data", HOSTILE_UNIT_DATA.values(), ids=HOSTILE_UNIT_DATA.keys())
def test_invalid_unit_is_skipped_and_valid_neighbour_kept(unit_data: dict[str, str]):
    good = {"type": "prometheus", "url": PROMETHEUS_URL}
    relation = testing.Relation("grafana-source", remote_units_data={0: unit_data, 1: good})

    sources, _ = read([relation])

    assert [s.unit for s in sources] == ["remote/1"]


HOSTILE_APP_DATA = {
    "not json": "{not json",
    "json list": "[1, 2]",
    "model with yaml": json.dumps({"model": "lab\nx: 1", "type": "prometheus"}),
    "model not a string": json.dumps({"model": 7, "type": "prometheus"}),
    "type missing": json.dumps({"model": "lab"}),
}


@pytest.mark.parametrize("raw", HOSTILE_APP_DATA.values(), ids=HOSTILE_APP_DATA.keys())
def test_invalid_cos_app_data_falls_back_to_legacy_keys(raw: str):
    unit = {"grafana_source_host": "http://cos:9090", "type": "prometheus", "url": PROMETHEUS_URL}
    relation = testing.Relation(
        "grafana-source",
        remote_app_data={"grafana_source_data": raw},
        remote_units_data={0: unit},
    )

    sources, _ = read([relation])

    assert [(s.wire_format, s.url) for s in sources] == [("legacy", PROMETHEUS_URL)]


def test_only_flat_scalar_extra_fields_are_kept():
    extra = {
        "timeInterval": "15s",
        "httpMethod": "POST",
        "nested": {"a": 1},
        "bad key\n": "x",
        "list": [1],
        "huge": "x" * 1000,
        "nan": float("inf"),
        "cacheLevel": 3,
        "manageAlerts": False,
    }
    relation = testing.Relation(
        "grafana-source",
        remote_app_data={
            "grafana_source_data": json.dumps(
                {"model": "lab", "type": "prometheus", "extra_fields": extra}
            ).replace("Infinity", "1e999")
        },
        remote_units_data={0: {"grafana_source_host": PROMETHEUS_URL}},
    )

    sources, _ = read([relation])

    assert sources[0].json_data == {
        "timeInterval": "15s",
        "httpMethod": "POST",
        "cacheLevel": 3,
        "manageAlerts": False,
    }


# uids


def test_uid_is_readable_when_short():
    assert grafana_source.datasource_uid("lab", "prometheus", 0) == "lab_prometheus_0"


def test_long_names_give_a_distinct_grafana_valid_uid():
    long_model = "a-very-long-model-name-for-the-lab"
    uids = {grafana_source.datasource_uid(long_model, "prometheus", n) for n in range(50)}

    assert len(uids) == 50
    for uid in uids:
        assert len(uid) <= 40
        assert uid.replace("-", "").replace("_", "").isalnum()


def test_at_most_32_extra_fields_are_kept():
    extra = {f"field{n:02}": n for n in range(40)}
    relation = testing.Relation(
        "grafana-source",
        remote_app_data=cos_app_data(extra_fields=extra),
        remote_units_data={0: {"grafana_source_host": PROMETHEUS_URL}},
    )

    sources, _ = read([relation])

    assert sources[0].json_data == {f"field{n:02}": n for n in range(32)}


@pytest.mark.parametrize("wire_format", ["legacy", "cos"])
def test_a_hostname_of_253_characters_is_kept_and_254_refused(wire_format: str):
    def url(length: int) -> str:
        labels = ["a" * 63] * 3 + ["b" * (length - 3 * 64)]  # 3 labels and dots, then the rest
        return f"http://{'.'.join(labels)}:9090"

    def unit(length: int) -> dict[str, str]:
        if wire_format == "cos":
            return {"grafana_source_host": url(length)}
        return {"type": "prometheus", "url": url(length)}

    relation = testing.Relation(
        "grafana-source",
        remote_app_data=cos_app_data() if wire_format == "cos" else {},
        remote_units_data={0: unit(253), 1: unit(254)},
    )

    sources, _ = read([relation])

    assert [s.url for s in sources] == [url(253)]


@pytest.mark.parametrize("password", ["x" * 257, "tab\there", "line\nbreak"])
def test_an_invalid_legacy_password_is_skipped_and_never_shown(caplog, password: str):
    legacy = {"type": "prometheus", "url": PROMETHEUS_URL, "username": "reader"}
    relation = testing.Relation(
        "grafana-source", remote_units_data={0: {**legacy, "password": password}}
    )

    sources, _ = read([relation])

    assert sources == []
    assert "password must be printable text of at most 256: (hidden)" in caplog.text
    assert password not in caplog.text
    assert "x" * 60 not in caplog.text


@pytest.mark.parametrize(("length", "kept"), [(63, True), (64, False)])
def test_a_cos_model_name_of_63_characters_is_read_and_64_is_not(length: int, kept: bool):
    relation = testing.Relation(
        "grafana-source",
        remote_app_data=cos_app_data(model="m" * length),
        remote_units_data={0: {"grafana_source_host": PROMETHEUS_URL}},
    )

    sources, _ = read([relation])

    assert [s.wire_format for s in sources] == (["cos"] if kept else [])
