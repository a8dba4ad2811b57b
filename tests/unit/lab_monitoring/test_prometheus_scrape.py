"""The provider half of metrics-endpoint: the databags as COS's own provider writes them."""

from __future__ import annotations

import json

import ops
import pytest
from lab_monitoring.interfaces import prometheus_scrape
from ops import testing

MODEL = testing.Model(name="lab", uuid="2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f")
META = {"name": "demo", "provides": {"metrics-endpoint": {"interface": "prometheus_scrape"}}}
RULES = """\
groups:
  - name: demo alerts
    rules:
      - alert: DemoDown
        expr: up{%%juju_topology%%} < 1
        labels:
          severity: critical
"""


class Demo(ops.CharmBase):
    serves = True

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        framework.observe(self.on["metrics-endpoint"].relation_joined, self._publish)

    def _publish(self, _: ops.EventBase) -> None:
        rules_file = self.charm_dir / "demo.rules"
        rules = prometheus_scrape.rules_from_files(
            [rules_file], prometheus_scrape.Topology.of(self)
        )
        jobs = [prometheus_scrape.job("demo", 9999)]
        prometheus_scrape.publish(self, jobs, rules=rules, serves=self.serves)


@pytest.fixture
def ctx(tmp_path) -> testing.Context[Demo]:
    (tmp_path / "demo.rules").write_text(RULES)
    return testing.Context(Demo, meta=META, charm_root=tmp_path)


def run(ctx, *, leader: bool = True, serves: bool = True) -> testing.Relation:
    Demo.serves = serves
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    state = testing.State(model=MODEL, leader=leader, relations=[relation])
    return ctx.run(ctx.on.relation_joined(relation), state).get_relation(relation.id)


def test_the_leader_writes_metadata_jobs_and_scoped_rules_as_cos_does(ctx):
    published = run(ctx)

    assert json.loads(published.local_app_data["scrape_metadata"]) == {
        "model": "lab",
        "model_uuid": MODEL.uuid,
        "application": "demo",
        "unit": "demo/0",
        "charm_name": "demo",
    }
    assert json.loads(published.local_app_data["scrape_jobs"]) == [
        {
            "job_name": "demo",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": ["*:9999"]}],
        }
    ]
    (group,) = json.loads(published.local_app_data["alert_rules"])["groups"]
    assert group["name"] == "lab_2f5e6d0a_demo_demo_alerts_rules"
    (rule,) = group["rules"]
    assert rule["expr"] == (
        f'up{{juju_model="lab",juju_model_uuid="{MODEL.uuid}",juju_application="demo"}} < 1'
    )
    assert rule["labels"] == {
        "severity": "critical",
        "juju_model": "lab",
        "juju_model_uuid": MODEL.uuid,
        "juju_application": "demo",
        "juju_charm": "demo",
    }
    assert published.local_unit_data["prometheus_scrape_unit_name"] == "demo/0"
    assert published.local_unit_data["prometheus_scrape_unit_address"] == "192.0.2.0"


def test_a_follower_writes_only_its_own_unit_data(ctx):
    published = run(ctx, leader=False)

    assert published.local_app_data == {}
    assert published.local_unit_data["prometheus_scrape_unit_address"] == "192.0.2.0"


def test_a_unit_that_does_not_serve_withholds_its_address(ctx):
    published = run(ctx, serves=False)

    assert published.local_unit_data["prometheus_scrape_unit_name"] == "demo/0"
    assert "prometheus_scrape_unit_address" not in published.local_unit_data


@pytest.mark.parametrize(
    ("field", "value"),
    [("model", "Lab"), ("application", "a_b"), ("charm_name", ""), ("model_uuid", "x")],
)
def test_a_topology_that_could_break_promql_is_refused(field, value):
    names = {
        "model": "lab",
        "model_uuid": MODEL.uuid,
        "application": "demo",
        "unit": "demo/0",
        "charm_name": "demo",
    }
    names[field] = value

    with pytest.raises(ValueError, match="not a"):
        prometheus_scrape.Topology(**names)


def test_a_unit_publishes_its_relation_s_ingress_address(ctx):
    Demo.serves = True
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    network = testing.Network("metrics-endpoint", ingress_addresses=["10.0.0.5"])
    state = testing.State(model=MODEL, leader=True, relations=[relation], networks={network})

    out = ctx.run(ctx.on.relation_joined(relation), state)

    published = out.get_relation(relation.id).local_unit_data
    assert {k: v for k, v in published.items() if k.startswith("prometheus_scrape_")} == {
        "prometheus_scrape_unit_name": "demo/0",
        "prometheus_scrape_unit_address": "10.0.0.5",
    }


def test_a_unit_without_an_ingress_address_yet_publishes_its_name_and_warns(ctx, caplog):
    Demo.serves = True
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    network = testing.Network("metrics-endpoint", ingress_addresses=[])
    state = testing.State(model=MODEL, leader=True, relations=[relation], networks={network})

    out = ctx.run(ctx.on.relation_joined(relation), state)

    published = out.get_relation(relation.id).local_unit_data
    assert {k: v for k, v in published.items() if k.startswith("prometheus_scrape_")} == {
        "prometheus_scrape_unit_name": "demo/0"
    }
    assert "no ingress address yet" in caplog.text
