"""Two node-exporter units on one machine (two principals placed together) share its exporter.

Each test runs hooks of two units against one FakeMachine, in the interleavings Juju can
produce (it runs one hook at a time per machine). The owner is the unit that sorts first.
"""

from __future__ import annotations

import dataclasses
from unittest import mock

import ops
from node_exporter_testing import owner_and_successor, state, unit_ctx
from ops import testing

METRICS = testing.Relation("metrics-endpoint", remote_app_name="prometheus")


def two_units(machine, **kwargs) -> tuple[testing.Context, testing.Context]:
    """node-exporter/0 (the leader) and /1, both installed on `machine`; its log cleared."""
    first, second = unit_ctx(unit_id=0), unit_ctx(unit_id=1)
    first.run(first.on.install(), state(**kwargs))
    second.run(second.on.install(), state(leader=False, **kwargs))
    machine.settle()
    return first, second


def unit_data(out: testing.State) -> dict[str, str]:
    """What this charm wrote in its unit databag (not Juju's own address keys)."""
    data = out.get_relation(METRICS.id).local_unit_data
    return {k: v for k, v in data.items() if k.startswith("prometheus_scrape_")}


def test_two_units_of_one_application_run_one_exporter_with_one_set_of_flags(machine):
    first, second = unit_ctx(unit_id=0), unit_ctx(unit_id=1)

    first.run(first.on.install(), state())
    second.run(second.on.install(), state(leader=False))
    first.run(first.on.update_status(), state())
    second.run(second.on.update_status(), state(leader=False))

    assert [w[0] for w in machine.writes].count("flags") == 1
    assert machine.actions == ["restart"]  # the package's own start, then our flags once
    assert set(machine.claims) == {"node-exporter/0", "node-exporter/1"}


def test_the_second_unit_says_who_runs_the_exporter(machine):
    first, second = unit_ctx(unit_id=0), unit_ctx(unit_id=1)
    first.run(first.on.install(), state())

    out = second.run(second.on.install(), state(leader=False))

    assert out.unit_status == testing.ActiveStatus("exporting on :9100 (run by node-exporter/0)")


def test_only_the_owner_opens_the_port(machine):
    first, second = unit_ctx(unit_id=0), unit_ctx(unit_id=1)

    owner = first.run(first.on.install(), state())
    other = second.run(second.on.install(), state(leader=False))

    assert owner.opened_ports == {testing.TCPPort(9100)}
    assert other.opened_ports == set()


def test_only_the_owner_publishes_the_machines_address(machine):
    first, second = unit_ctx(unit_id=0), unit_ctx(unit_id=1)

    owner = first.run(first.on.relation_joined(METRICS, remote_unit=0), state(relations=[METRICS]))
    other = second.run(
        second.on.relation_joined(METRICS, remote_unit=0), state(leader=False, relations=[METRICS])
    )

    assert unit_data(owner) == {
        "prometheus_scrape_unit_name": "node-exporter/0",
        "prometheus_scrape_unit_address": "192.0.2.0",
    }
    assert unit_data(other) == {"prometheus_scrape_unit_name": "node-exporter/1"}


def test_a_unit_that_sorts_first_takes_over_without_changing_same_flags(machine):
    later, earlier = unit_ctx(unit_id=3), unit_ctx(unit_id=1)
    later.run(later.on.install(), state())
    machine.settle()

    out = earlier.run(earlier.on.install(), state(leader=False))

    assert [w[0] for w in machine.writes] == ["claim"]
    assert machine.actions == []
    assert out.unit_status == testing.ActiveStatus("exporting on :9100")


def test_removing_one_of_two_units_keeps_the_exporter_running(machine):
    first, _ = two_units(machine)

    first.run(first.on.remove(), state())

    assert machine.actions == []
    assert machine.is_running
    assert set(machine.claims) == {"node-exporter/1"}


def test_the_remaining_unit_takes_over_the_address_and_port(machine):
    first, second = two_units(machine, relations=[METRICS])
    first.run(first.on.remove(), state(relations=[METRICS]))

    out = second.run(second.on.update_status(), state(leader=True, relations=[METRICS]))

    assert out.opened_ports == {testing.TCPPort(9100)}
    assert unit_data(out)["prometheus_scrape_unit_address"] == "192.0.2.0"
    assert out.unit_status == testing.ActiveStatus("exporting on :9100")


def test_removing_both_units_stops_the_exporter_once_the_last_goes(machine):
    first, second = two_units(machine)

    second.run(second.on.remove(), state(leader=False))
    assert machine.actions == []
    first.run(first.on.remove(), state())

    assert machine.actions == ["stop"]
    assert machine.claims == {}


def test_another_application_with_other_settings_blocks_and_leaves_the_flags_alone(machine):
    owner = unit_ctx(app="node-exporter", unit_id=0)
    other = unit_ctx(app="rack-exporter", unit_id=0)
    owner.run(owner.on.install(), state())
    machine.settle()

    out = other.run(other.on.config_changed(), state(config={"port": 9200}))

    assert out.unit_status == testing.BlockedStatus(
        "node-exporter/0 runs this machine's exporter with other settings (:9100);"
        " give both the same port, collectors and log-level"
    )
    assert machine.flag("web.listen-address") == ":9100"
    assert machine.actions == []
    assert out.opened_ports == set()


def test_another_application_with_the_same_settings_publishes_its_own_target(machine):
    # It may be related to another Prometheus than the owner's application.
    owner = unit_ctx(app="node-exporter", unit_id=0)
    other = unit_ctx(app="rack-exporter", unit_id=0)
    owner.run(owner.on.install(), state())

    out = other.run(other.on.relation_joined(METRICS, remote_unit=0), state(relations=[METRICS]))

    assert unit_data(out)["prometheus_scrape_unit_address"] == "192.0.2.0"
    assert out.unit_status == testing.ActiveStatus("exporting on :9100 (run by node-exporter/0)")
    assert out.opened_ports == set()


def test_when_the_owner_leaves_its_successors_flags_are_applied(machine):
    owner, other = owner_and_successor(9200)
    machine.settle()

    owner.run(owner.on.remove(), state())

    assert machine.flag("web.listen-address") == ":9200"
    assert machine.actions == ["restart"]
    out = other.run(other.on.update_status(), state(config={"port": 9200}))
    assert out.unit_status == testing.ActiveStatus("exporting on :9200")
    assert out.opened_ports == {testing.TCPPort(9200)}


def test_a_unit_that_stops_owning_withdraws_its_address(machine):
    later, earlier = unit_ctx(unit_id=3), unit_ctx(unit_id=1)
    published = later.run(
        later.on.relation_joined(METRICS, remote_unit=0), state(relations=[METRICS])
    )
    assert "prometheus_scrape_unit_address" in unit_data(published)
    earlier.run(earlier.on.install(), state(leader=False, relations=[METRICS]))

    out = later.run(later.on.update_status(), dataclasses.replace(published))

    assert unit_data(out) == {"prometheus_scrape_unit_name": "node-exporter/3"}
    assert out.opened_ports == set()
    assert out.unit_status == testing.ActiveStatus("exporting on :9100 (run by node-exporter/1)")


def test_a_port_juju_refuses_to_open_leaves_the_hook_alive_and_is_retried(machine, monkeypatch):
    # Juju refuses a port another unit of the machine still holds (the owner that is leaving).
    refusal = ops.ModelError(
        'cannot open 9100/tcp (unit "node-exporter/1"): conflicts with existing'
    )
    unit = unit_ctx(unit_id=1)
    with monkeypatch.context() as patched:
        patched.setattr(ops.Unit, "set_ports", mock.Mock(side_effect=refusal))
        refused = unit.run(unit.on.update_status(), state())
    assert refused.unit_status == testing.ActiveStatus("exporting on :9100")

    out = unit.run(unit.on.update_status(), refused)

    assert out.opened_ports == {testing.TCPPort(9100)}
