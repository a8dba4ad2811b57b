"""The amtool gate and the reload: a refused config or reload keeps the old one, and says why."""

from __future__ import annotations

import dataclasses

from alertmanager_testing import state
from ops import testing

GOOD = "route:\n  receiver: chat\nreceivers:\n  - name: chat\n"
TOKEN = "https://hooks.lab/services/T00/B00/tok-abcdef-123456"
REFUSED = f"""\
route:
  receiver: missing
receivers:
  - name: chat
    webhook_configs:
      - url: "{TOKEN}"
"""


def test_a_config_amtool_refuses_blocks_with_its_reason_and_keeps_the_old(ctx, fake, settled):
    before = settled(state(config={"config-file": GOOD}))
    fake.amtool_error = 'undefined receiver "missing" used in route'

    out = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(before, config={"config-file": REFUSED})
    )

    assert out.unit_status == testing.BlockedStatus(
        'amtool refused the config, the old one stays: undefined receiver "missing" used in route'
    )
    assert fake.writes == []
    assert fake.actions == []
    assert fake.parsed_config()["route"]["receiver"] == "chat"


def test_amtool_s_reason_never_shows_a_secret_of_the_refused_config(ctx, fake, caplog):
    fake.amtool_error = f'parse "{TOKEN}": invalid character " " in host name'

    out = ctx.run(ctx.on.config_changed(), state(config={"config-file": REFUSED}))

    assert out.unit_status == testing.BlockedStatus(
        'amtool refused the config, the old one stays: parse "<secret>": invalid character'
        ' " " in host name'
    )
    logged = [line.message for line in ctx.juju_log]
    assert any("amtool refused it" in message for message in logged)
    assert not any("tok-abcdef" in message for message in logged)
    assert "tok-abcdef" not in caplog.text


def test_a_refused_config_at_first_install_leaves_alertmanager_stopped(ctx, fake):
    fake.is_installed = False
    fake.is_running = False
    fake.amtool_error = 'undefined receiver "missing" used in route'

    out = ctx.run(ctx.on.install(), state(config={"config-file": REFUSED}))

    # Nothing of the charm's is live, and the package's example never runs (the unit is masked).
    assert fake.actions == ["install"]
    assert fake.config is None
    assert out.unit_status.name == "blocked"


def test_the_refusal_stays_shown_in_hooks_that_do_not_render(ctx, fake, settled):
    before = settled(state(config={"config-file": GOOD}))
    fake.amtool_error = 'undefined receiver "missing" used in route'
    refused = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(before, config={"config-file": REFUSED})
    )

    out = ctx.run(ctx.on.action("check-config"), refused)

    assert out.unit_status.message.startswith("amtool refused the config")


def test_a_fixed_config_clears_the_refusal_and_reloads(ctx, fake, settled):
    before = settled(state(config={"config-file": GOOD}))
    fake.amtool_error = 'undefined receiver "missing" used in route'
    refused = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(before, config={"config-file": REFUSED})
    )
    fake.amtool_error = None
    fixed = GOOD + "# now with a comment\n"

    out = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(refused, config={"config-file": fixed})
    )

    assert out.unit_status == testing.ActiveStatus("serving on :9093")
    assert fake.actions == ["reload"]


def test_a_refused_reload_blocks_with_alertmanager_s_reason(ctx, fake, settled):
    before = settled(state())
    fake.reload_error = "failed to parse templates: template: alertmanager.tmpl:2: unclosed action"

    out = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(before, config={"config-file": GOOD})
    )

    assert out.unit_status == testing.BlockedStatus(
        "alertmanager refused to reload, still on the old config: failed to parse templates:"
        " template: alertmanager.tmpl:2: unclosed action"
    )


def test_a_refused_reload_is_retried_by_the_next_hook_until_it_works(ctx, fake, settled):
    before = settled(state())
    fake.reload_error = "open /etc/prometheus/alertmanager.yml: permission denied"
    refused = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(before, config={"config-file": GOOD})
    )
    fake.reload_error = None
    fake.settle()

    out = ctx.run(ctx.on.update_status(), refused)

    assert fake.actions == ["reload"]
    assert fake.writes == []
    assert out.unit_status == testing.ActiveStatus("serving on :9093")


def test_a_restart_applies_a_pending_reload(ctx, fake, settled):
    before = settled(state())
    fake.reload_error = "open /etc/prometheus/alertmanager.yml: permission denied"
    refused = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(before, config={"config-file": GOOD})
    )
    fake.reload_error = None
    fake.settle()
    changed = dataclasses.replace(refused, config={"config-file": GOOD, "log-level": "warn"})

    out = ctx.run(ctx.on.config_changed(), changed)
    ctx.run(ctx.on.update_status(), out)

    # The restart read the new files: nothing is reloaded after it.
    assert fake.actions == ["restart"]
    assert out.unit_status.name == "active"
