"""grafana-source `extra_fields`: published by the provider, passed on as jsonData by the requirer.

An Alertmanager data source needs jsonData `implementation` (`prometheus` for Prometheus's
Alertmanager) for Grafana to show its alerts and silences; COS's provider sets it for the type
`alertmanager` (canonical/alertmanager-k8s-operator, lib/charms/grafana_k8s/v1/grafana_source.py,
GrafanaSourceProvider.__init__).
"""

from __future__ import annotations

import json

import ops
import pytest
from lab_monitoring.interfaces import grafana_source
from ops import testing

URL = "http://10.0.0.5:9093"
PROVIDER_META = {
    "name": "alertmanager",
    "provides": {"grafana-source": {"interface": "grafana_datasource"}},
}
REQUIRER_META = {
    "name": "grafana",
    "requires": {"grafana-source": {"interface": "grafana_datasource"}},
}


class ProviderCharm(ops.CharmBase):
    """Publishes an Alertmanager data source, with the extra fields the test sets."""

    extra_fields: dict[str, object] | None = {"implementation": "prometheus"}

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.source = grafana_source.GrafanaSourceProvider(self)
        framework.observe(self.on.config_changed, self._on_config_changed)

    def _on_config_changed(self, _: ops.EventBase):
        if self.extra_fields is None:
            self.source.publish(URL, source_type="alertmanager")
        else:
            self.source.publish(
                URL,
                source_type="alertmanager",
                extra_fields=self.extra_fields,  # type: ignore[arg-type]
            )


class RequirerCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.requirer = grafana_source.GrafanaSourceRequirer(self)
        self.sources: list[grafana_source.DataSource] = []
        framework.observe(self.on["grafana-source"].relation_changed, self._on_changed)

    def _on_changed(self, _: ops.EventBase):
        self.sources = self.requirer.sources()


def published(extra_fields: dict[str, object] | None, monkeypatch) -> testing.RelationBase:
    monkeypatch.setattr(ProviderCharm, "extra_fields", extra_fields)
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META)
    relation = testing.Relation("grafana-source")
    state = testing.State(relations=[relation], leader=True, model=testing.Model(name="lab"))
    out = ctx.run(ctx.on.config_changed(), state)
    return out.get_relation(relation.id)


def read_back(written: testing.RelationBase) -> list[grafana_source.DataSource]:
    """What a Grafana reads from the provider's databags."""
    relation = testing.Relation(
        "grafana-source",
        remote_app_name="alertmanager",
        remote_app_data=dict(written.local_app_data),
        remote_units_data={0: dict(written.local_unit_data)},
    )
    ctx = testing.Context(RequirerCharm, meta=REQUIRER_META)
    state = testing.State(relations=[relation], leader=True, model=testing.Model(name="lab"))
    with ctx(ctx.on.relation_changed(relation), state) as manager:
        manager.run()
        return manager.charm.sources


def test_extra_fields_are_published_in_the_cos_app_data(monkeypatch):
    written = published({"implementation": "prometheus"}, monkeypatch)

    data = json.loads(written.local_app_data["grafana_source_data"])
    assert data["type"] == "alertmanager"
    assert data["extra_fields"] == {"implementation": "prometheus"}
    assert data["secure_extra_fields"] == {}


def test_the_requirer_passes_them_on_as_json_data(monkeypatch):
    [source] = read_back(published({"implementation": "prometheus"}, monkeypatch))

    assert source.type == "alertmanager"
    assert source.wire_format == "cos"
    assert source.json_data == {"implementation": "prometheus"}


def test_without_extra_fields_the_earlier_signature_publishes_none(monkeypatch):
    written = published(None, monkeypatch)

    assert json.loads(written.local_app_data["grafana_source_data"])["extra_fields"] == {}
    [source] = read_back(written)
    assert source.json_data == {}


def test_scalar_fields_of_each_kind_round_trip(monkeypatch):
    fields = {"implementation": "prometheus", "handleGrafanaManagedAlerts": False, "n": 3}

    [source] = read_back(published(fields, monkeypatch))

    assert source.json_data == fields


@pytest.mark.parametrize(
    "fields",
    [
        {"nested": {"a": 1}},
        {"list": [1]},
        {"bad key": "x"},
        {"_leading": "x"},
        {"nan": float("nan")},
        {"text": "x" * 257},
        {"newline": "a\nb"},
        {f"field{n}": n for n in range(33)},
    ],
)
def test_the_provider_refuses_fields_a_requirer_would_drop(fields, monkeypatch):
    with pytest.raises(testing.errors.UncaughtCharmError, match="ValueError"):
        published(fields, monkeypatch)
