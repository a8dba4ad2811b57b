"""The grafana-source relation, provider side: both wire formats, with a reachable URL."""

from __future__ import annotations

import json

import pytest
from ops import testing

MODEL = testing.Model(name="lab", uuid="2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f")


def joined(ctx, *, leader=True, config=None, networks=()) -> testing.Relation:
    rel = testing.Relation("grafana-source", remote_app_name="grafana")
    state = testing.State(
        model=MODEL, leader=leader, relations=[rel], config=config or {}, networks=networks
    )
    out = ctx.run(ctx.on.relation_joined(rel, remote_unit=0), state)
    return out.get_relation(rel.id)


def test_leader_publishes_both_wire_formats(ctx, fake):
    rel = joined(ctx)

    assert rel.local_unit_data["grafana_source_host"] == "http://192.0.2.0:9090"
    assert rel.local_unit_data["type"] == "prometheus"
    assert rel.local_unit_data["url"] == "http://192.0.2.0:9090"
    assert rel.local_unit_data["description"] == "Prometheus prometheus/0 in model lab"
    app = json.loads(rel.local_app_data["grafana_source_data"])
    assert app["model"] == "lab"
    assert app["application"] == "prometheus"
    assert app["type"] == "prometheus"


def test_non_leader_publishes_only_its_unit_data(ctx, fake):
    rel = joined(ctx, leader=False)

    assert rel.local_unit_data["url"] == "http://192.0.2.0:9090"
    assert "grafana_source_data" not in rel.local_app_data


def test_url_follows_web_port_and_external_url_path(ctx, fake):
    rel = joined(
        ctx, config={"web-port": 9091, "web-external-url": "https://lab.example.com/prom/"}
    )

    assert rel.local_unit_data["grafana_source_host"] == "http://192.0.2.0:9091/prom"
    assert rel.local_unit_data["url"] == "http://192.0.2.0:9091/prom"


@pytest.mark.parametrize(
    ("external", "path"),
    [("https://lab/X/", "/X"), ("https://lab/a/b//", "/a/b"), ("https://lab/", "")],
)
def test_only_the_final_slashes_of_the_external_path_are_dropped(ctx, fake, external, path):
    rel = joined(ctx, config={"web-external-url": external})

    assert rel.local_unit_data["url"] == f"http://192.0.2.0:9090{path}"


def test_ipv6_address_is_bracketed(ctx, fake):
    network = testing.Network("grafana-source", ingress_addresses=["fd00::5"])

    rel = joined(ctx, networks=[network])

    assert rel.local_unit_data["url"] == "http://[fd00::5]:9090"


def test_port_change_updates_the_published_url(ctx, fake):
    rel = testing.Relation(
        "grafana-source",
        remote_app_name="grafana",
        local_unit_data={
            "grafana_source_host": "http://192.0.2.0:9090",
            "url": "http://192.0.2.0:9090",
        },
    )
    state = testing.State(model=MODEL, relations=[rel], config={"web-port": 9200})

    out = ctx.run(ctx.on.config_changed(), state)

    assert out.get_relation(rel.id).local_unit_data["url"] == "http://192.0.2.0:9200"


def test_invalid_config_publishes_nothing(ctx, fake):
    rel = joined(ctx, config={"web-port": 0})

    assert "url" not in rel.local_unit_data
