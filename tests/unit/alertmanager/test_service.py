"""Whether Alertmanager came up: start failures, slow starts, low ports, install failures, removal.

The real systemd behaviour behind these (a Type=simple unit that "starts" and then dies) is
exercised in tests/machine/test_alertmanager.py; here the charm's decisions are pinned.
"""

from __future__ import annotations

import dataclasses

import charm
import pytest
from alertmanager_testing import state
from ops import testing

TAKEN = "alertmanager cannot listen on :9093: address already in use"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The charm's time.time(), set by the test (`clock[0] = ...`)."""
    now = [1_000_000.0]
    monkeypatch.setattr(charm.time, "time", lambda: now[0])
    return now


def test_a_start_that_dies_blocks_with_the_cause_in_the_same_hook(ctx, fake):
    fake.is_running = False
    fake.start_outcome = TAKEN

    out = ctx.run(ctx.on.install(), state())

    assert out.unit_status == testing.BlockedStatus(TAKEN)
    assert fake.actions == ["start"]


def test_a_restart_that_dies_blocks_with_the_cause(ctx, fake, settled):
    settled(state())
    fake.start_outcome = "alertmanager cannot listen on 0.0.0.0:9094 (cluster): address in use"

    out = ctx.run(ctx.on.config_changed(), state(config={"log-level": "debug"}))

    assert out.unit_status == testing.BlockedStatus(
        "alertmanager cannot listen on 0.0.0.0:9094 (cluster): address in use"
    )
    assert fake.actions == ["restart"]


def test_a_start_that_dies_is_blocked_at_every_instant_of_systemds_restart_loop(ctx, fake):
    fake.start_outcome = TAKEN
    failed = ctx.run(ctx.on.config_changed(), state(config={"web-port": 9193}))
    assert fake.crashing

    assert failed.unit_status == testing.BlockedStatus(TAKEN)
    assert ctx.run(ctx.on.update_status(), failed).unit_status == testing.BlockedStatus(TAKEN)


def test_a_crash_loop_that_began_outside_a_hook_blocks_and_is_started_again(ctx, fake, settled):
    before = settled(state())
    fake.crashing = True  # it died on its own; no hook saw why
    fake.start_outcome = "slow"

    collected = ctx.run(ctx.on.collect_unit_status(), before)
    out = ctx.run(ctx.on.update_status(), before)

    assert collected.unit_status == testing.BlockedStatus(
        "alertmanager keeps failing (see journalctl -u prometheus-alertmanager)"
    )
    assert fake.actions == ["start"]
    assert out.unit_status == testing.WaitingStatus("alertmanager is starting")


def test_a_stopped_alertmanager_that_no_hook_started_says_so(ctx, fake, settled):
    before = settled(state())
    fake.is_running = False

    collected = ctx.run(ctx.on.collect_unit_status(), before)

    assert collected.unit_status == testing.BlockedStatus(
        "alertmanager is not running (see journalctl -u prometheus-alertmanager)"
    )


def test_update_status_does_not_start_a_failed_alertmanager_again(ctx, fake, clock):
    fake.is_running = False
    fake.start_outcome = TAKEN
    failed = ctx.run(ctx.on.install(), state())
    fake.settle()
    clock[0] += charm.START_RETRY_SECONDS - 1

    out = ctx.run(ctx.on.update_status(), failed)

    assert fake.actions == []
    assert out.unit_status == testing.BlockedStatus(TAKEN)


def test_a_failed_start_is_tried_again_after_an_hour(ctx, fake, clock):
    fake.is_running = False
    fake.start_outcome = TAKEN
    failed = ctx.run(ctx.on.install(), state())
    fake.settle()
    fake.start_outcome = None  # whatever held the port has gone
    clock[0] += charm.START_RETRY_SECONDS

    out = ctx.run(ctx.on.update_status(), failed)

    assert fake.actions == ["start"]
    assert out.unit_status.name == "active"


def test_new_flags_are_tried_at_once_after_a_failed_start(ctx, fake, clock):
    fake.is_running = False
    fake.start_outcome = TAKEN
    failed = ctx.run(ctx.on.install(), state())
    fake.settle()
    fake.start_outcome = None

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(failed, config={"web-port": 9193}))

    assert fake.actions == ["start"]
    assert out.unit_status.message.startswith("serving on :9193")


def test_a_new_config_is_tried_at_once_after_a_failed_start(ctx, fake, clock):
    # A template file Alertmanager's user cannot read, say: amtool (root) passed it.
    fake.is_running = False
    fake.start_outcome = "alertmanager failed to start: failed to parse templates"
    failed = ctx.run(ctx.on.install(), state(config={"templates-file": "x"}))
    fake.settle()
    fake.start_outcome = None

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(failed, config={}))

    assert fake.actions == ["start"]
    assert out.unit_status.name == "active"


def test_an_alertmanager_that_came_up_later_forgets_the_failure(ctx, fake):
    fake.is_running = False
    fake.start_outcome = TAKEN
    failed = ctx.run(ctx.on.install(), state())
    # systemd (or an operator) got it running meanwhile.
    fake.is_running, fake.crashing, fake.start_outcome = True, False, None
    seen_running = ctx.run(ctx.on.update_status(), failed)
    fake.is_running = False
    fake.settle()

    out = ctx.run(ctx.on.update_status(), seen_running)

    # Not the old reason, and not left alone: it is started again.
    assert fake.actions == ["start"]
    assert out.unit_status.name == "active"


def test_an_external_stop_is_repaired(ctx, fake, settled):
    before = settled(state())
    fake.is_running = False

    out = ctx.run(ctx.on.update_status(), before)

    assert fake.actions == ["start"]
    assert out.unit_status.name == "active"


def test_a_slow_start_waits_instead_of_blocking(ctx, fake):
    fake.is_running = False
    fake.start_outcome = "slow"

    out = ctx.run(ctx.on.install(), state())

    assert out.unit_status == testing.WaitingStatus("alertmanager is starting")


def test_a_slow_start_is_not_reloaded_until_it_serves(ctx, fake, settled):
    before = settled(state())
    fake.start_outcome = "slow"

    ctx.run(ctx.on.config_changed(), dataclasses.replace(before, config={"templates-file": "x"}))

    assert "reload" not in fake.actions


def test_a_port_below_1024_gets_the_drop_in_before_the_restart(ctx, fake, settled):
    settled(state())

    out = ctx.run(ctx.on.config_changed(), state(config={"web-port": 80}))

    assert fake.actions == ["low-ports True", "restart"]
    assert out.unit_status.message.startswith("serving on :80")


def test_moving_back_above_1024_removes_the_drop_in_and_restarts(ctx, fake, settled):
    settled(state(config={"web-port": 80}))

    ctx.run(ctx.on.config_changed(), state(config={"web-port": 8093}))

    assert fake.actions == ["low-ports False", "restart"]


def test_remove_stops_alertmanager_and_does_not_block(ctx, fake, settled):
    before = settled(state())

    out = ctx.run(ctx.on.remove(), before)

    assert fake.actions == ["stop"]
    assert out.unit_status == testing.MaintenanceStatus(
        "removing: alertmanager stopped and disabled"
    )


def test_an_apt_failure_blocks_with_apt_s_reason_and_is_retried(ctx, fake):
    fake.is_installed = False
    fake.is_running = False
    fake.install_error = "E: Unable to locate package prometheus-alertmanager"

    out = ctx.run(ctx.on.install(), state())

    assert out.unit_status == testing.BlockedStatus(
        "could not install prometheus-alertmanager (retrying):"
        " E: Unable to locate package prometheus-alertmanager"
    )
    assert fake.writes == []
    fake.install_error = None
    out = ctx.run(ctx.on.update_status(), out)
    assert fake.actions == ["install", "start"]
    assert out.unit_status.name == "active"


def test_a_long_apt_error_is_cut_to_one_status_line(ctx, fake):
    fake.is_installed = False
    fake.install_error = "E: " + "x" * 400

    out = ctx.run(ctx.on.install(), state())

    assert len(out.unit_status.message) == 200
    assert out.unit_status.message.endswith("...")
