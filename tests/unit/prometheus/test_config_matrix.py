"""Every config option with valid edge values and invalid values, from a running unit.

An invalid value must block the unit with a message that names the option, leave the files and
the service alone, and the unit must go back to Active once the value is fixed.
"""

from __future__ import annotations

import pytest
from conftest import FakePrometheus
from ops import testing

MODEL = testing.Model(name="lab", uuid="2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f")

VALID = [
    ("web-port", 1),
    ("web-port", 65535),
    ("scrape-interval", "10s"),  # equal to the default scrape-timeout
    ("scrape-interval", "1y2w3d4h5m6s7ms"),
    ("scrape-timeout", "1ms"),
    ("evaluation-interval", "1ms"),
    ("evaluation-interval", "292y"),
    ("retention-time", "1ms"),
    ("retention-time", "292y"),
    ("retention-size", ""),
    ("retention-size", "1B"),
    ("retention-size", "512KB"),
    ("retention-size", "500MB"),
    ("retention-size", "10GB"),
    ("retention-size", "2TB"),
    ("retention-size", "3PB"),
    ("retention-size", "8191PB"),
    ("retention-size", "7EB"),
    ("retention-size", "100%"),
    ("retention-size", "0.5%"),
    ("external-labels", "site=lab"),
    ("external-labels", " site = lab , _env=dev x "),
    ("scrape-jobs", "- job_name: node\n  static_configs: [{targets: ['10.0.0.5:9100']}]\n"),
    ("web-external-url", "http://localhost:9090/"),
    ("web-external-url", "https://lab.example.com/prometheus/"),
    ("log-level", "debug"),
    ("log-level", "error"),
]

INVALID = [
    ("web-port", 0),
    ("web-port", 65536),
    ("web-port", -1),
    ("scrape-interval", "1.5m"),
    ("scrape-interval", "15 seconds"),
    ("scrape-interval", ""),
    ("scrape-interval", "0s"),
    ("scrape-interval", "300y"),  # more than Prometheus's int64 nanoseconds
    ("scrape-interval", "\u0661\u0665s"),  # Arabic-Indic digits
    ("scrape-timeout", "20s"),
    ("scrape-timeout", "10"),
    ("evaluation-interval", "1w1y"),
    ("retention-time", "2 weeks"),
    ("retention-time", "300y"),
    ("retention-size", "10 GB"),
    ("retention-size", "10gb"),
    ("retention-size", "10ZB"),
    ("retention-size", "10B10"),
    ("retention-size", "0%"),
    ("retention-size", "101%"),
    ("retention-size", "9EB"),  # Prometheus refuses to start above 8EB
    ("retention-size", "8EB"),  # and reads exactly 8EB as -8EiB
    ("retention-size", "8192PB"),
    ("retention-size", "-5GB"),
    ("external-labels", "site"),
    ("external-labels", "site=lab,site=dev"),
    ("external-labels", "__name__=x"),
    ("external-labels", "a=b=c"),
    ("external-labels", "1a=b"),
    ("external-labels", "a=\x00"),
    ("scrape-jobs", "{"),
    ("scrape-jobs", "job_name: node"),
    ("scrape-jobs", "- 1"),
    ("scrape-jobs", "- static_configs: []"),
    ("scrape-jobs", "- job_name: prometheus"),
    ("scrape-jobs", "- job_name: juju_mine"),
    ("scrape-jobs", "- job_name: a\n- job_name: a"),
    ("web-external-url", "localhost:9090"),
    ("web-external-url", "ftp://lab.example.com/"),
    ("web-external-url", "http://lab.example.com/a b"),
    ("web-external-url", 'http://lab.example.com/"x"'),
    ("web-external-url", "http://lab.example.com/?q=1"),
    ("log-level", "INFO"),
    ("log-level", "trace"),
    ("log-level", ""),
]


def state(config: dict[str, str | int] | None = None) -> testing.State:
    return testing.State(model=MODEL, leader=True, config=config or {})


@pytest.mark.parametrize(("option", "value"), VALID)
def test_valid_edge_value_is_applied_and_active(ctx, fake: FakePrometheus, settled, option, value):
    settled(state())

    out = ctx.run(ctx.on.config_changed(), state({option: value}))

    assert out.unit_status.name == "active", out.unit_status.message
    assert fake.writes, f"{option}={value!r} changed nothing"


@pytest.mark.parametrize(("option", "value"), INVALID)
def test_invalid_value_blocks_naming_the_option_and_touches_nothing(
    ctx, fake: FakePrometheus, settled, option, value
):
    settled(state())
    files = (fake.config, dict(fake.rules), fake.args)

    out = ctx.run(ctx.on.config_changed(), state({option: value}))

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(f"{option}: "), out.unit_status.message
    assert (fake.config, fake.rules, fake.args) == files
    assert fake.writes == []
    assert fake.actions == []


@pytest.mark.parametrize(("option", "value"), INVALID)
def test_fixing_the_value_makes_the_unit_active_again_without_touching_anything(
    ctx, fake: FakePrometheus, settled, option, value
):
    settled(state())
    blocked = ctx.run(ctx.on.config_changed(), state({option: value}))
    assert blocked.unit_status.name == "blocked"

    out = ctx.run(ctx.on.config_changed(), state())

    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")
    assert fake.writes == []
    assert fake.actions == []
