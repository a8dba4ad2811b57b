"""Whether Prometheus came up: start failures, slow starts, low ports, install failures, removal.

The real systemd behaviour behind these (a Type=simple unit that "starts" and then dies) is
exercised in tests/machine/test_prometheus.py; here the charm's decisions are pinned.
"""

from __future__ import annotations

import dataclasses

import charm
import pytest
from ops import testing

MODEL = testing.Model(name="lab", uuid="2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f")
TAKEN = "prometheus cannot listen on :9090: address already in use"


def state(**kwargs) -> testing.State:
    return testing.State(model=MODEL, leader=True, **kwargs)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The charm's time.time(), set by the test (`clock[0] = ...`)."""
    now = [1_000_000.0]
    monkeypatch.setattr(charm.time, "time", lambda: now[0])
    return now


def test_a_start_that_dies_blocks_with_the_cause(ctx, fake):
    fake.is_running = False
    fake.start_outcome = TAKEN

    out = ctx.run(ctx.on.install(), state())

    assert out.unit_status == testing.BlockedStatus(TAKEN)
    assert fake.actions == ["start"]


def test_a_restart_that_dies_blocks_with_the_cause(ctx, fake, settled):
    settled(state())
    fake.start_outcome = "prometheus failed to start: opening storage failed: lock DB directory"

    out = ctx.run(ctx.on.config_changed(), state(config={"retention-time": "30d"}))

    assert out.unit_status == testing.BlockedStatus(
        "prometheus failed to start: opening storage failed: lock DB directory"
    )
    assert fake.actions == ["restart"]


def test_a_start_that_dies_is_blocked_at_every_instant_of_systemds_restart_loop(ctx, fake):
    # The fake's "crashing" is the loop: between two deaths the unit reads `active`.
    fake.start_outcome = TAKEN
    failed = ctx.run(ctx.on.config_changed(), state(config={"web-port": 9091}))
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
        "prometheus keeps failing (see journalctl -u prometheus)"
    )
    assert fake.actions == ["start"]
    assert out.unit_status == testing.WaitingStatus("prometheus is starting")


def test_a_slow_start_is_not_reloaded_until_it_serves(ctx, fake, settled):
    before = settled(state())
    fake.start_outcome = "slow"

    ctx.run(
        ctx.on.config_changed(), dataclasses.replace(before, config={"scrape-interval": "30s"})
    )

    assert "reload" not in fake.actions


def test_update_status_does_not_start_a_failed_prometheus_again(ctx, fake, clock):
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
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def test_new_flags_are_tried_at_once_after_a_failed_start(ctx, fake, clock):
    fake.is_running = False
    fake.start_outcome = TAKEN
    failed = ctx.run(ctx.on.install(), state())
    fake.settle()
    fake.start_outcome = None

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(failed, config={"web-port": 9091}))

    assert fake.actions == ["start"]
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9091")


def test_a_prometheus_that_came_up_later_forgets_the_failure(ctx, fake):
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
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def test_an_external_stop_is_repaired(ctx, fake, settled):
    before = settled(state())
    fake.is_running = False

    out = ctx.run(ctx.on.update_status(), before)

    assert fake.actions == ["start"]
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def test_a_slow_start_waits_instead_of_blocking(ctx, fake):
    fake.is_running = False
    fake.start_outcome = "slow"

    out = ctx.run(ctx.on.install(), state())

    assert out.unit_status == testing.WaitingStatus("prometheus is starting")


def test_a_port_below_1024_gets_the_drop_in_before_the_restart(ctx, fake, settled):
    settled(state())

    out = ctx.run(ctx.on.config_changed(), state(config={"web-port": 80}))

    assert fake.actions == ["low-ports True", "restart"]
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :80")


def test_moving_back_above_1024_removes_the_drop_in_and_restarts(ctx, fake, settled):
    settled(state(config={"web-port": 80}))

    ctx.run(ctx.on.config_changed(), state(config={"web-port": 8080}))

    assert fake.actions == ["low-ports False", "restart"]


def test_remove_stops_prometheus_and_does_not_block(ctx, fake, settled):
    before = settled(state())

    out = ctx.run(ctx.on.remove(), before)

    assert fake.actions == ["stop"]
    assert out.unit_status == testing.MaintenanceStatus(
        "removing: prometheus stopped and disabled"
    )


def test_an_apt_failure_blocks_with_apt_s_reason_and_is_retried(ctx, fake):
    fake.is_installed = False
    fake.is_running = False
    fake.install_error = "E: Unable to locate package prometheus"

    out = ctx.run(ctx.on.install(), state())

    assert out.unit_status == testing.BlockedStatus(
        "could not install prometheus (retrying): E: Unable to locate package prometheus"
    )
    assert fake.writes == []
    fake.install_error = None
    out = ctx.run(ctx.on.update_status(), out)
    # The package starts its service; the charm restarts it with its own flags.
    assert fake.actions == ["install", "restart"]
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")
