"""Every option: valid edge values work; invalid ones block, name the option, change nothing."""

from __future__ import annotations

import pytest
from node_exporter_testing import state
from ops import testing

VALID = [
    ({"port": 1}, "--web.listen-address=:1"),
    ({"port": 80}, "--web.listen-address=:80"),
    ({"port": 1024}, "--web.listen-address=:1024"),
    ({"port": 65535}, "--web.listen-address=:65535"),
    ({"collectors": "processes"}, "--collector.processes"),
    ({"collectors": "-wifi"}, "--no-collector.wifi"),
    ({"collectors": " tcpstat ,, processes "}, "--collector.tcpstat"),
    ({"collectors": "cpu cpu"}, "--collector.cpu"),
    ({"log-level": "debug"}, "--log.level=debug"),
    ({"log-level": "error"}, "--log.level=error"),
]

INVALID = [
    ({"port": 0}, "port: 0 is not a port number (1-65535)"),
    ({"port": 65536}, "port: 65536 is not a port number (1-65535)"),
    ({"port": -1}, "port: -1 is not a port number (1-65535)"),
    (
        {"collectors": "Processes"},
        'collectors: "Processes" is not a collector name (lower-case letters, digits and _;'
        ' "-" in front to switch it off)',
    ),
    (
        {"collectors": "--collector.processes"},
        'collectors: "--collector.processes" is not a collector name (lower-case letters,'
        ' digits and _; "-" in front to switch it off)',
    ),
    (
        {"collectors": 'cpu"; rm -rf /'},
        'collectors: "cpu\\";" is not a collector name (lower-case letters, digits and _;'
        ' "-" in front to switch it off)',
    ),
    ({"collectors": "cpu,-cpu"}, 'collectors: "cpu" is switched both on and off'),
    ({"log-level": "verbose"}, 'log-level: "verbose" is not one of debug, info, warn, error'),
    ({"log-level": "INFO"}, 'log-level: "INFO" is not one of debug, info, warn, error'),
]


@pytest.mark.parametrize(("config", "flag"), VALID, ids=[str(c) for c, _ in VALID])
def test_valid_value_is_applied(ctx, machine, config, flag):
    out = ctx.run(ctx.on.config_changed(), state(config=config))

    assert flag in (machine.args or [])
    assert isinstance(out.unit_status, testing.ActiveStatus)


@pytest.mark.parametrize(("config", "message"), INVALID, ids=[str(c) for c, _ in INVALID])
def test_invalid_value_blocks_naming_it_and_changes_nothing(ctx, machine, config, message):
    ctx.run(ctx.on.config_changed(), state())
    machine.settle()

    out = ctx.run(ctx.on.config_changed(), state(config=config))

    assert out.unit_status == testing.BlockedStatus(message)
    assert machine.writes == []
    assert machine.actions == []
    assert machine.args == ["--web.listen-address=:9100", "--log.level=info"]


@pytest.mark.parametrize(("config", "message"), INVALID[:1], ids=["port 0"])
def test_fixing_an_invalid_value_makes_the_unit_active_again(ctx, machine, config, message):
    blocked = ctx.run(ctx.on.config_changed(), state(config=config))
    assert blocked.unit_status == testing.BlockedStatus(message)

    out = ctx.run(ctx.on.config_changed(), state(config={"port": 9100}))

    assert out.unit_status == testing.ActiveStatus("exporting on :9100")


def test_a_collector_the_exporter_does_not_know_blocks_naming_it(ctx, machine):
    ctx.run(ctx.on.config_changed(), state())
    machine.settle()

    out = ctx.run(ctx.on.config_changed(), state(config={"collectors": "processes,gpu"}))

    assert out.unit_status == testing.BlockedStatus(
        'collectors: "gpu" is not a collector of node_exporter 1.3.1'
        " (see prometheus-node-exporter --help)"
    )
    assert machine.writes == []
    assert machine.actions == []


def test_several_unknown_collectors_are_all_named(ctx, machine):
    out = ctx.run(ctx.on.config_changed(), state(config={"collectors": "gpu,-zfs,cpu"}))

    assert out.unit_status == testing.BlockedStatus(
        'collectors: "gpu", "zfs" are not collectors of node_exporter 1.3.1'
        " (see prometheus-node-exporter --help)"
    )


def test_collectors_are_checked_against_the_installed_binary(ctx, machine):
    # A newer exporter knows more collectors: the same option is fine there.
    machine.collectors["gpu"] = False

    out = ctx.run(ctx.on.config_changed(), state(config={"collectors": "gpu"}))

    assert out.unit_status == testing.ActiveStatus("exporting on :9100")
    assert "--collector.gpu" in (machine.args or [])


def test_collectors_cannot_be_checked_without_the_binarys_list(ctx, machine):
    machine.collectors = {}

    out = ctx.run(ctx.on.config_changed(), state(config={"collectors": "processes"}))

    assert out.unit_status == testing.BlockedStatus(
        "collectors: cannot list the collectors of prometheus-node-exporter (--help)"
    )
    assert machine.args is None


def test_no_collectors_option_needs_no_list(ctx, machine):
    machine.collectors = {}

    out = ctx.run(ctx.on.config_changed(), state())

    assert out.unit_status == testing.ActiveStatus("exporting on :9100")
