"""Whether grafana-server came up: start failures, slow starts, low ports, removal.

The fake's grafana-server dies the way Grafana's source says it does (a taken port, a port
below 1024 without the capability) and the real `service.failure_reason` reads what it printed;
the parser itself is tested in test_failure_reason.py. The systemd side (the drop-in read by a
real systemd) runs in tests/machine/test_grafana.py; a real Grafana on a taken port is in
tests/integration/test_grafana_service.py.
"""

from __future__ import annotations

import dataclasses
import typing

import charm
import pytest
from grafana import service
from grafana_testing import FakeGrafana, state
from ops import testing

TAKEN = "grafana cannot listen on :3000: address already in use"
ACTIVE = testing.ActiveStatus("serving on :3000 with 0 data sources")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The charm's time.time(), set by the test (`clock[0] = ...`)."""
    now = [1_000_000.0]
    monkeypatch.setattr(charm.time, "time", lambda: now[0])
    return now


def service_actions(fake: FakeGrafana) -> list[str]:
    """What the hooks did to grafana-server and its drop-in, in order."""
    done = []
    for kind, what in fake.actions:
        if kind in ("start", "restart", "stop"):
            done.append(kind)
        elif kind == "low-ports":
            done.append(f"low-ports {what}")
    return done


def settled(ctx: testing.Context, fake: FakeGrafana, before: testing.State) -> testing.State:
    out = ctx.run(ctx.on.update_status(), before)
    fake.settle()
    return out


def failed_install(ctx: testing.Context, fake: FakeGrafana) -> testing.State:
    """Install on a machine where another process holds port 3000."""
    fake.ports_in_use = {3000}
    out = ctx.run(ctx.on.install(), state())
    fake.settle()
    return out


# --- a start that dies ------------------------------------------------------------------------


def test_a_start_that_dies_blocks_with_the_cause_from_grafanas_log(ctx, fake):
    fake.ports_in_use = {3000}

    out = ctx.run(ctx.on.install(), state())

    assert out.unit_status == testing.BlockedStatus(TAKEN)
    assert service_actions(fake) == ["start"]
    assert not fake.running


def test_a_restart_that_dies_blocks_with_the_cause(ctx, installed):
    before = settled(ctx, installed, state())
    installed.ports_in_use = {3001}

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(before, config={"port": 3001}))

    assert out.unit_status == testing.BlockedStatus(
        "grafana cannot listen on :3001: address already in use"
    )
    assert service_actions(installed) == ["restart"]


def test_a_failed_start_makes_no_api_call_and_sets_no_password(ctx, fake):
    fake.ports_in_use = {3000}

    ctx.run(ctx.on.install(), state())

    assert fake.api_calls == []
    assert fake.passwords_set == 0
    assert fake.waits == 0  # nothing more to wait for: it died


def test_update_status_does_not_start_a_failed_grafana_again(ctx, fake, clock):
    failed = failed_install(ctx, fake)
    clock[0] += charm.START_RETRY_SECONDS - 1

    out = ctx.run(ctx.on.update_status(), failed)

    assert service_actions(fake) == []
    assert out.unit_status == testing.BlockedStatus(TAKEN)


def test_a_failed_start_is_tried_again_after_an_hour(ctx, fake, clock):
    failed = failed_install(ctx, fake)
    fake.ports_in_use = set()  # whatever held the port has gone
    clock[0] += charm.START_RETRY_SECONDS

    out = ctx.run(ctx.on.update_status(), failed)

    assert service_actions(fake) == ["start"]
    assert out.unit_status == ACTIVE


def test_a_new_grafana_ini_is_tried_at_once_after_a_failed_start(ctx, fake, clock):
    failed = failed_install(ctx, fake)

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(failed, config={"port": 3001}))

    assert service_actions(fake) == ["start"]
    assert out.unit_status == testing.ActiveStatus("serving on :3001 with 0 data sources")


def test_a_grafana_that_came_up_later_forgets_the_failure(ctx, fake):
    failed = failed_install(ctx, fake)
    # An operator freed the port and started it by hand.
    fake.ports_in_use = set()
    fake.running, fake.crashing, fake.port = True, False, 3000
    seen_up = ctx.run(ctx.on.update_status(), failed)
    assert seen_up.unit_status == ACTIVE
    fake.running = False
    fake.settle()

    out = ctx.run(ctx.on.update_status(), seen_up)

    # Not the old reason, and not left alone for an hour: it is started again.
    assert service_actions(fake) == ["start"]
    assert out.unit_status == ACTIVE


def test_a_grafana_systemd_keeps_restarting_stays_blocked_with_the_cause(ctx, fake):
    failed = failed_install(ctx, fake)
    # Restart=on-failure: between two deaths systemd shows it active, but it never serves.
    assert fake.crashing

    out = ctx.run(ctx.on.update_status(), failed)

    assert out.unit_status == testing.BlockedStatus(TAKEN)
    assert service_actions(fake) == []
    assert fake.api_calls == []
    assert fake.waits == 0


def test_a_crash_loop_that_began_outside_a_hook_blocks_and_is_started_again(ctx, installed):
    before = settled(ctx, installed, state())
    installed.crashing = True  # it died on its own; no hook saw why

    collected = ctx.run(ctx.on.collect_unit_status(), before)
    out = ctx.run(ctx.on.update_status(), before)

    assert collected.unit_status == testing.BlockedStatus(
        "grafana-server keeps failing (see journalctl -u grafana-server)"
    )
    assert service_actions(installed) == ["start"]
    assert out.unit_status == ACTIVE


def test_systemctl_refusing_blocks_and_is_tried_again_next_hook(ctx, fake):
    fake.start_error = service.ServiceError("Unit grafana-server.service not found.")
    out = ctx.run(ctx.on.install(), state())
    assert out.unit_status == testing.BlockedStatus(
        "grafana-server does not start: see journalctl -u grafana-server"
    )
    fake.start_error = None
    fake.settle()

    out = ctx.run(ctx.on.update_status(), out)

    assert service_actions(fake) == ["start"]
    assert out.unit_status == ACTIVE


def test_an_external_stop_is_repaired(ctx, installed):
    before = settled(ctx, installed, state())
    installed.running = False

    out = ctx.run(ctx.on.update_status(), before)

    assert service_actions(installed) == ["start"]
    assert out.unit_status == ACTIVE


# --- a slow start ---------------------------------------------------------------------------


def test_a_slow_first_start_waits_instead_of_blocking(ctx, fake):
    fake.slow = True  # migrating its new database

    out = ctx.run(ctx.on.install(), state())

    assert out.unit_status == testing.WaitingStatus("waiting for Grafana to start")
    assert service_actions(fake) == ["start"]
    assert fake.waits == 0  # the start already waited START_TIMEOUT: no second minute


def test_a_slow_start_is_not_restarted_and_goes_active_once_ready(ctx, fake):
    fake.slow = True
    starting = ctx.run(ctx.on.install(), state())
    fake.settle()

    still = ctx.run(ctx.on.update_status(), starting)
    assert still.unit_status == testing.WaitingStatus("waiting for Grafana to start")
    fake.slow = False
    out = ctx.run(ctx.on.update_status(), still)

    assert service_actions(fake) == []
    assert out.unit_status == ACTIVE


def test_provisioning_written_before_a_slow_start_is_not_reloaded_again(ctx, fake):
    # Grafana reads the provisioning files itself when it gets there.
    fake.slow = True
    starting = ctx.run(ctx.on.install(), state())
    fake.slow = False
    fake.settle()

    ctx.run(ctx.on.update_status(), starting)

    assert [call for call in fake.api_calls if call.startswith("reload")] == []


# --- ports below 1024 -------------------------------------------------------------------------


def test_a_port_below_1024_gets_the_drop_in_before_the_restart(ctx, installed):
    before = settled(ctx, installed, state())

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(before, config={"port": 80}))

    assert service_actions(installed) == ["low-ports True", "restart"]
    assert out.unit_status == testing.ActiveStatus("serving on :80 with 0 data sources")
    assert out.opened_ports == {testing.TCPPort(80)}


def test_without_the_drop_in_port_80_is_refused_as_grafana_says(ctx, fake, monkeypatch):
    # What the charm would show if it did not install the drop-in (the packaged unit's user
    # has no capability): the fake's Grafana dies with "permission denied".
    monkeypatch.setattr(fake.service, "allow_low_ports", lambda port: False)

    out = ctx.run(ctx.on.install(), state(config={"port": 80}))

    assert out.unit_status == testing.BlockedStatus(
        "grafana cannot listen on :80: permission denied"
    )


def test_moving_back_above_1024_removes_the_drop_in_and_restarts(ctx, installed):
    before = settled(ctx, installed, state(config={"port": 80}))

    ctx.run(ctx.on.config_changed(), dataclasses.replace(before, config={"port": 8080}))

    assert service_actions(installed) == ["low-ports False", "restart"]
    assert not installed.low_ports


def test_an_unchanged_low_port_restarts_nothing(ctx, installed):
    before = settled(ctx, installed, state(config={"port": 80}))

    ctx.run(ctx.on.update_status(), before)

    assert service_actions(installed) == []


# --- removal ----------------------------------------------------------------------------------


def test_remove_stops_grafana_and_reports_maintenance(ctx, installed):
    before = settled(ctx, installed, state(config={"port": 80}))

    out = ctx.run(ctx.on.remove(), before)

    assert service_actions(installed) == ["stop"]
    assert not installed.running
    assert not installed.low_ports
    assert out.unit_status == testing.MaintenanceStatus(
        "removing: grafana-server stopped and disabled"
    )


def test_removing_a_unit_whose_grafana_failed_is_not_blocked(ctx, fake):
    failed = failed_install(ctx, fake)

    out = ctx.run(ctx.on.remove(), failed)

    assert out.unit_status == testing.MaintenanceStatus(
        "removing: grafana-server stopped and disabled"
    )


def test_a_grafana_stopped_behind_the_charms_back_is_blocked_not_waiting(ctx, installed):
    # An action's collect-status sees the machine as it is; the next hook starts it again.
    before = settled(ctx, installed, state())
    installed.running = False

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("get-admin-password"), before)

    after = typing.cast(testing.State, failure.value.state)
    assert after.unit_status == testing.BlockedStatus(
        "grafana-server is not running (see journalctl -u grafana-server)"
    )
