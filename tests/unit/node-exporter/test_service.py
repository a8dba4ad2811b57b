"""Whether the exporter came up: start failures, slow starts, low ports, install failures, removal.

The real systemd behaviour behind these (a Type=simple unit that "starts" and then dies) is
exercised in tests/machine/test_node_exporter.py; here the charm's decisions are pinned, for one
unit and for two units sharing a machine's exporter.
"""

from __future__ import annotations

import dataclasses

import charm
import pytest
from node_exporter_testing import owner_and_successor, state, unit_ctx
from ops import testing

# What exporter.failure_reason says when the collector's own exporter holds the port.
TAKEN = (
    "port 9100 is taken by node_exporter (pid 4321) of snap node-exporter"
    " (opentelemetry-collector): set this charm's port, or do not attach node-exporter"
    " where the collector runs"
)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The charm's time.time(), set by the test (`clock[0] = ...`)."""
    now = [1_000_000.0]
    monkeypatch.setattr(charm.time, "time", lambda: now[0])
    return now


def failed_install(ctx, machine) -> testing.State:
    """Run an install whose restart (the charm's flags) dies on a taken port."""
    machine.start_outcome = TAKEN
    out = ctx.run(ctx.on.install(), state())
    machine.settle()
    return out


def test_a_restart_that_dies_blocks_with_the_cause(ctx, machine):
    out = failed_install(ctx, machine)

    assert out.unit_status == testing.BlockedStatus(TAKEN)
    assert machine.crashing


def test_a_start_that_dies_blocks_with_the_cause(ctx, machine):
    ctx.run(ctx.on.config_changed(), state())
    machine.is_running = False
    machine.start_outcome = "prometheus-node-exporter failed to start: unknown long flag '--x'"
    machine.settle()

    out = ctx.run(ctx.on.update_status(), state())

    assert machine.actions == ["start"]
    assert out.unit_status == testing.BlockedStatus(
        "prometheus-node-exporter failed to start: unknown long flag '--x'"
    )


def test_a_crash_loop_that_began_outside_a_hook_blocks_and_is_started_again(ctx, machine):
    before = ctx.run(ctx.on.config_changed(), state())
    machine.settle()
    machine.crashing = True  # it died on its own; no hook saw why
    machine.start_outcome = "slow"

    collected = ctx.run(ctx.on.collect_unit_status(), before)
    out = ctx.run(ctx.on.update_status(), before)

    assert collected.unit_status == testing.BlockedStatus(
        "prometheus-node-exporter keeps failing (see journalctl -u prometheus-node-exporter)"
    )
    assert machine.actions == ["start"]
    assert out.unit_status == testing.WaitingStatus("prometheus-node-exporter is starting")


def test_update_status_does_not_start_a_failed_exporter_again(ctx, machine, clock):
    failed = failed_install(ctx, machine)
    clock[0] += charm.START_RETRY_SECONDS - 1

    out = ctx.run(ctx.on.update_status(), failed)

    assert machine.actions == []
    assert out.unit_status == testing.BlockedStatus(TAKEN)


def test_a_failed_start_is_tried_again_after_an_hour(ctx, machine, clock):
    failed = failed_install(ctx, machine)
    machine.start_outcome = None  # whatever held the port has gone
    clock[0] += 3600  # the README's "for an hour"

    out = ctx.run(ctx.on.update_status(), failed)

    assert machine.actions == ["start"]
    assert out.unit_status == testing.ActiveStatus("exporting on :9100")


def test_new_flags_are_tried_at_once_after_a_failed_start(ctx, machine, clock):
    failed = failed_install(ctx, machine)
    machine.start_outcome = None

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(failed, config={"port": 9200}))

    assert machine.actions == ["start"]
    assert out.unit_status == testing.ActiveStatus("exporting on :9200")


def test_an_exporter_that_came_up_later_forgets_the_failure(ctx, machine):
    failed = failed_install(ctx, machine)
    # systemd (or an operator) got it running meanwhile.
    machine.is_running, machine.crashing, machine.start_outcome = True, False, None
    seen_running = ctx.run(ctx.on.update_status(), failed)
    machine.is_running = False
    machine.settle()

    out = ctx.run(ctx.on.update_status(), seen_running)

    # Not the old reason, and not left alone: it is started again.
    assert machine.actions == ["start"]
    assert out.unit_status == testing.ActiveStatus("exporting on :9100")


def test_a_slow_start_waits_instead_of_blocking(ctx, machine):
    machine.start_outcome = "slow"

    out = ctx.run(ctx.on.install(), state())

    assert out.unit_status == testing.WaitingStatus("prometheus-node-exporter is starting")


def test_an_exporter_found_stopped_in_a_hook_that_does_not_start_it_points_at_its_log(
    ctx, machine
):
    metrics = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    ctx.run(ctx.on.config_changed(), state(relations=[metrics]))
    machine.is_running = False
    machine.settle()

    # relation-broken changes nothing the exporter needs, so it runs no reconcile.
    out = ctx.run(ctx.on.relation_broken(metrics), state(relations=[metrics]))

    assert machine.actions == []
    assert out.unit_status == testing.BlockedStatus(
        "prometheus-node-exporter is not running (see journalctl -u prometheus-node-exporter)"
    )


def test_a_port_below_1024_gets_the_drop_in_before_the_restart(ctx, machine):
    ctx.run(ctx.on.config_changed(), state())
    machine.settle()

    out = ctx.run(ctx.on.config_changed(), state(config={"port": 80}))

    assert machine.actions == ["low-ports True", "restart"]
    assert machine.flag("web.listen-address") == ":80"
    assert out.unit_status == testing.ActiveStatus("exporting on :80")
    assert out.opened_ports == {testing.TCPPort(80)}


def test_moving_back_above_1024_removes_the_drop_in_and_restarts(ctx, machine):
    ctx.run(ctx.on.config_changed(), state(config={"port": 80}))
    machine.settle()

    ctx.run(ctx.on.config_changed(), state(config={"port": 9100}))

    assert machine.actions == ["low-ports False", "restart"]


def test_remove_stops_the_exporter_and_does_not_block(ctx, machine):
    ctx.run(ctx.on.config_changed(), state(config={"port": 80}))
    machine.settle()

    out = ctx.run(ctx.on.remove(), state(config={"port": 80}))

    assert machine.actions == ["stop"]
    assert not machine.low_ports
    assert out.unit_status == testing.MaintenanceStatus(
        "removing: prometheus-node-exporter stopped and disabled"
    )


def test_removing_a_blocked_unit_does_not_leave_it_blocked(ctx, machine):
    blocked = ctx.run(ctx.on.config_changed(), state(config={"port": 0}))
    assert isinstance(blocked.unit_status, testing.BlockedStatus)

    out = ctx.run(ctx.on.remove(), blocked)

    assert out.unit_status == testing.MaintenanceStatus(
        "removing: prometheus-node-exporter stopped and disabled"
    )


def test_an_apt_failure_blocks_with_apt_s_reason_and_is_retried(ctx, machine):
    machine.is_installed = False
    machine.is_running = False
    machine.install_error = "E: Unable to locate package prometheus-node-exporter"

    out = ctx.run(ctx.on.install(), state())

    assert out.unit_status == testing.BlockedStatus(
        "could not install prometheus-node-exporter (retrying):"
        " E: Unable to locate package prometheus-node-exporter"
    )
    assert machine.writes == []
    machine.install_error = None
    out = ctx.run(ctx.on.update_status(), out)
    # The package starts its service; the charm restarts it with its own flags.
    assert machine.actions == ["install", "install", "restart"]
    assert out.unit_status == testing.ActiveStatus("exporting on :9100")


# --- two units on one machine --------------------------------------------------------------


def test_another_unit_does_not_start_an_exporter_whose_owner_failed(machine):
    owner, other = unit_ctx(unit_id=0), unit_ctx(unit_id=1)
    machine.start_outcome = TAKEN
    owner.run(owner.on.install(), state())
    machine.settle()

    out = other.run(other.on.update_status(), state(leader=False))

    assert machine.actions == []
    assert out.unit_status == testing.BlockedStatus(
        "prometheus-node-exporter keeps failing: node-exporter/0 starts it (see its status)"
    )


def test_another_unit_leaves_a_stopped_exporter_to_its_owner(machine):
    owner, other = unit_ctx(unit_id=0), unit_ctx(unit_id=1)
    owner.run(owner.on.install(), state())
    other.run(other.on.install(), state(leader=False))
    machine.is_running = False
    machine.settle()

    other.run(other.on.update_status(), state(leader=False))
    assert machine.actions == []
    out = owner.run(owner.on.update_status(), state())

    assert machine.actions == ["start"]
    assert out.unit_status == testing.ActiveStatus("exporting on :9100")


def test_an_owner_leaving_with_a_failed_handover_is_not_blocked(machine, caplog):
    owner, other = owner_and_successor(9200)
    machine.start_outcome = "prometheus-node-exporter cannot listen on :9200: address in use"
    machine.settle()

    out = owner.run(owner.on.remove(), state())

    assert machine.actions == ["restart"]
    assert out.unit_status == testing.MaintenanceStatus(
        "removing: rack-exporter/0 runs prometheus-node-exporter now"
    )
    # The operator finds why the handover failed in the leaving unit's log.
    assert (
        "prometheus-node-exporter cannot listen on :9200: address in use, "
        "with the settings of rack-exporter/0"
    ) in caplog.text
    # The successor tries once at its next hook, and says why it failed.
    after = other.run(other.on.update_status(), state(config={"port": 9200}))
    assert machine.actions == ["restart", "start"]
    assert after.unit_status == testing.BlockedStatus(
        "prometheus-node-exporter cannot listen on :9200: address in use"
    )


def test_an_owner_leaving_hands_over_to_a_successor_on_a_low_port_with_the_drop_in(machine):
    # The successor (another application's unit on this machine) wants port 80: the exporter
    # it inherits must be allowed to bind it, or the handover restart would fail.
    owner, _ = owner_and_successor(80)
    machine.settle()
    assert not machine.low_ports  # the owner's port 9100 needs no capability

    out = owner.run(owner.on.remove(), state())

    # The drop-in first, then the restart that binds :80.
    assert machine.actions == ["low-ports True", "restart"]
    assert machine.low_ports
    assert out.unit_status == testing.MaintenanceStatus(
        "removing: rack-exporter/0 runs prometheus-node-exporter now"
    )
