"""The legacy `target` relation (interface http): one job per remote application."""

from __future__ import annotations

import logging

import pytest
from ops import testing

UUID = "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"
MODEL = testing.Model(name="lab", uuid=UUID)
JOB = "juju_lab_2f5e6d0a_node_target"


def run(ctx, units: dict) -> testing.State:
    rel = testing.Relation("target", remote_app_name="node", remote_units_data=units)
    state = testing.State(model=MODEL, relations=[rel])
    return ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)


def labels(unit: str) -> dict[str, str]:
    return {
        "juju_model": "lab",
        "juju_model_uuid": UUID,
        "juju_application": "node",
        "juju_unit": unit,
    }


def test_units_become_targets_of_one_job_for_the_application(ctx, fake):
    out = run(
        ctx,
        {
            0: {"hostname": "node-0.lab", "port": "9100"},
            1: {"private-address": "10.0.0.2", "port": "9100"},
        },
    )

    assert fake.jobs()[JOB] == {
        "job_name": JOB,
        "metrics_path": "/metrics",
        "static_configs": [
            {"targets": ["node-0.lab:9100"], "labels": labels("node/0")},
            {"targets": ["10.0.0.2:9100"], "labels": labels("node/1")},
        ],
    }
    assert out.unit_status == testing.ActiveStatus("serving 2 scrape jobs on :9090")


def test_hostname_wins_over_private_address(ctx, fake):
    run(ctx, {0: {"hostname": "node-0.lab", "private-address": "10.0.0.1", "port": "9100"}})

    assert fake.jobs()[JOB]["static_configs"][0]["targets"] == ["node-0.lab:9100"]


def test_no_usable_unit_means_no_job(ctx, fake):
    run(ctx, {0: {"private-address": "10.0.0.1"}})

    assert list(fake.jobs()) == ["prometheus"]


@pytest.mark.parametrize(
    "data",
    [
        {"hostname": "a b", "port": "80"},
        {"hostname": "x\n- job_name: evil", "port": "80"},
        {"hostname": "10.0.0.1", "port": "80; reboot"},
        {"hostname": "10.0.0.1", "port": "0"},
        {"hostname": "10.0.0.1", "port": "65536"},
        {"hostname": "10.0.0.1:80", "port": "80"},
        {"hostname": "-leading-dash", "port": "80"},
    ],
)
def test_unit_with_bad_data_is_skipped_with_a_warning(ctx, fake, caplog, data):
    with caplog.at_level(logging.WARNING):
        run(ctx, {0: {"hostname": "10.0.0.1", "port": "9100"}, 1: data})

    assert fake.jobs()[JOB]["static_configs"][0]["targets"] == ["10.0.0.1:9100"]
    assert len(fake.jobs()[JOB]["static_configs"]) == 1
    assert "target: skipping node/1" in caplog.text


def test_broken_relation_removes_the_job(ctx, fake, settled):
    rel = testing.Relation(
        "target",
        remote_app_name="node",
        remote_units_data={0: {"hostname": "10.0.0.1", "port": "9100"}},
    )
    settled(testing.State(model=MODEL, relations=[rel]))

    ctx.run(ctx.on.relation_broken(rel), testing.State(model=MODEL, relations=[rel]))

    assert list(fake.jobs()) == ["prometheus"]
    assert fake.actions == ["reload"]


def test_departed_unit_loses_its_target(ctx, fake):
    rel = testing.Relation(
        "target",
        remote_app_name="node",
        remote_units_data={0: {"hostname": "10.0.0.1", "port": "9100"}},
    )
    state = testing.State(model=MODEL, relations=[rel])

    ctx.run(ctx.on.relation_departed(rel, remote_unit=1, departing_unit=1), state)

    assert [c["targets"] for c in fake.jobs()[JOB]["static_configs"]] == [["10.0.0.1:9100"]]
