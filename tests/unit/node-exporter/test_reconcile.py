"""What each hook does to the machine: install, flags, start vs restart vs nothing, status."""

from __future__ import annotations

import pytest
from node_exporter_testing import state
from ops import testing


def test_install_installs_writes_flags_restarts_and_opens_the_port(ctx, machine):
    machine.is_installed = False
    machine.is_running = False

    out = ctx.run(ctx.on.install(), state())

    # The package starts the exporter with its own flags; the charm restarts it with its own.
    assert machine.actions == ["install", "restart"]
    assert machine.args == ["--web.listen-address=:9100", "--log.level=info"]
    assert out.opened_ports == {testing.TCPPort(9100)}
    assert out.workload_version == "1.3.1"
    assert out.unit_status == testing.ActiveStatus("exporting on :9100")


def test_install_says_it_is_installing_while_it_does(ctx, machine):
    machine.is_installed = False

    ctx.run(ctx.on.install(), state())

    assert testing.MaintenanceStatus("installing prometheus-node-exporter") in (
        ctx.unit_status_history
    )


def test_installed_package_is_not_installed_again(ctx, machine):
    ctx.run(ctx.on.install(), state())

    assert "install" not in machine.actions


def test_exporter_started_by_the_package_is_restarted_with_the_charms_flags(ctx, machine):
    # The package's postinst starts the service with its own (empty) ARGS.
    ctx.run(ctx.on.install(), state())

    assert machine.actions == ["restart"]


@pytest.mark.parametrize(
    "event", ["config_changed", "update_status", "upgrade_charm", "leader_elected", "start"]
)
def test_a_hook_with_nothing_new_writes_and_restarts_nothing(ctx, machine, event):
    ctx.run(ctx.on.config_changed(), state())
    machine.settle()

    out = ctx.run(getattr(ctx.on, event)(), state())

    assert machine.writes == []
    assert machine.actions == []
    assert out.unit_status == testing.ActiveStatus("exporting on :9100")


def test_a_new_port_is_written_restarted_and_opened(ctx, machine):
    ctx.run(ctx.on.config_changed(), state())
    machine.settle()

    out = ctx.run(ctx.on.config_changed(), state(config={"port": 9200}))

    assert machine.actions == ["restart"]
    assert machine.flag("web.listen-address") == ":9200"
    assert out.opened_ports == {testing.TCPPort(9200)}
    assert out.unit_status == testing.ActiveStatus("exporting on :9200")


def test_collectors_become_flags_in_a_stable_order(ctx, machine):
    ctx.run(ctx.on.config_changed(), state(config={"collectors": "-wifi, processes systemd"}))

    assert machine.args == [
        "--web.listen-address=:9100",
        "--log.level=info",
        "--collector.processes",
        "--collector.systemd",
        "--no-collector.wifi",
    ]


def test_log_level_becomes_a_flag(ctx, machine):
    ctx.run(ctx.on.config_changed(), state(config={"log-level": "warn"}))

    assert machine.flag("log.level") == "warn"


def test_a_stopped_exporter_is_started_not_restarted(ctx, machine):
    ctx.run(ctx.on.config_changed(), state())
    machine.is_running = False
    machine.settle()

    out = ctx.run(ctx.on.update_status(), state())

    assert machine.actions == ["start"]
    assert out.unit_status == testing.ActiveStatus("exporting on :9100")


def test_the_last_unit_removed_stops_the_exporter(ctx, machine):
    ctx.run(ctx.on.config_changed(), state())
    machine.settle()

    ctx.run(ctx.on.remove(), state())

    assert machine.actions == ["stop"]
    assert machine.claims == {}
