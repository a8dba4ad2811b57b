"""Every config option with valid edge values and invalid values, from a running unit.

An invalid value must block the unit with a message that names the option, leave grafana.ini,
the provisioning files and the service alone, and the unit must go back to Active once fixed.
"""

from __future__ import annotations

import dataclasses

import pytest
from grafana_testing import FakeGrafana, state
from ops import testing

VALID = [
    ("port", 1),
    ("port", 65535),
    ("admin-user", "a"),
    ("admin-user", "x" * 64),
    ("admin-user", "ops.team_1@lab-2"),
    ("allow-anonymous-access", True),
    ("anonymous-role", "Editor"),
    ("anonymous-role", "Admin"),
    ("root-url", "http://localhost:3000/"),
    ("root-url", "https://lab.example.com:8443/grafana/"),
    ("root-url", "http://[fd00::1]:3000/"),
    ("log-level", "debug"),
    ("log-level", "critical"),
]

INVALID = [
    ("port", 0),
    ("port", 65536),
    ("port", -1),
    ("admin-user", ""),
    ("admin-user", "x" * 65),
    ("admin-user", "ad min"),
    ("admin-user", "admin\n[security]"),
    ("admin-user", "admin;x"),
    ("admin-user", "\u00e4dmin"),
    ("anonymous-role", "viewer"),
    ("anonymous-role", "Owner"),
    ("anonymous-role", ""),
    ("root-url", "localhost:3000"),
    ("root-url", "ftp://lab/"),
    ("root-url", "http://lab/ x"),
    ("root-url", "http://lab/\n[server]"),
    ("root-url", "http://lab/;comment"),
    ("root-url", "http://lab/#comment"),
    ("root-url", "http://lab/$__env{HOME}"),
    ("root-url", "http://lab/?q=1"),
    ("root-url", "http://lab:99999/"),
    ("root-url", "http://" + "a" * 2050),
    ("log-level", "INFO"),
    ("log-level", "trace"),
    ("log-level", ""),
    ("grafana-version", "9"),
    ("grafana-version", "14"),
    ("grafana-version", ""),
    ("grafana-version", "12.3"),
    ("grafana-version", "12 "),
    ("grafana-version", "v12"),
    ("grafana-version", "twelve"),
]


@pytest.fixture
def running(ctx, installed: FakeGrafana) -> testing.State:
    """A unit that has already configured its Grafana; the fake's log is cleared."""
    out = ctx.run(ctx.on.config_changed(), state())
    installed.actions.clear()
    installed.api_calls.clear()
    return out


@pytest.mark.parametrize(("option", "value"), VALID)
def test_valid_edge_value_is_applied_and_active(ctx, installed, running, option, value):
    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(running, config={option: value}))

    assert out.unit_status.name == "active", out.unit_status.message
    assert installed.writes == ["grafana.ini"]
    assert installed.actions[-1] == ("restart", "grafana-server")


@pytest.mark.parametrize(("option", "value"), INVALID)
def test_invalid_value_blocks_naming_the_option_and_touches_nothing(
    ctx, installed, running, option, value
):
    files = dict(installed.files)

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(running, config={option: value}))

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(f"{option}: "), out.unit_status.message
    assert installed.files == files
    assert installed.actions == []
    assert installed.api_calls == []


@pytest.mark.parametrize(("option", "value"), INVALID)
def test_fixing_the_value_makes_the_unit_active_again_without_touching_anything(
    ctx, installed, running, option, value
):
    blocked = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(running, config={option: value})
    )
    assert blocked.unit_status.name == "blocked"

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(blocked, config={}))

    assert out.unit_status == testing.ActiveStatus("serving on :3000 with 0 data sources")
    assert installed.actions == []


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("ftp://" + "a" * 54, "'ftp://" + "a" * 54 + "'"),  # 60 characters: shown whole
        ("ftp://" + "a" * 55, "'ftp://" + "a" * 54 + "...'"),  # cut at 60
    ],
)
def test_a_long_bad_root_url_is_shown_cut_to_60_characters(ctx, running, value, shown):
    out = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(running, config={"root-url": value})
    )

    assert out.unit_status == testing.BlockedStatus(
        f"root-url: {shown} is not an http(s) URL without query or fragment"
    )
