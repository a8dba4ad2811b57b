"""What each hook does to the machine: install, files, restart vs reload vs nothing, status."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
from ops import testing

MODEL = testing.Model(name="lab", uuid="2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f")


def state(**kwargs) -> testing.State:
    return testing.State(model=MODEL, leader=True, **kwargs)


def test_install_installs_writes_starts_and_opens_the_port(ctx, fake):
    fake.is_installed = False
    fake.is_running = False

    out = ctx.run(ctx.on.install(), state())

    # The package starts Prometheus with its defaults; the charm restarts it with its flags.
    assert fake.actions == ["install", "restart"]
    assert fake.jobs().keys() == {"prometheus"}
    assert fake.flag("web.listen-address") == ":9090"
    assert out.opened_ports == {testing.TCPPort(9090)}
    assert out.workload_version == "2.31.2+ds1"
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def test_install_says_it_is_installing_while_it_does(ctx, fake):
    fake.is_installed = False

    ctx.run(ctx.on.install(), state())

    assert testing.MaintenanceStatus("installing prometheus") in ctx.unit_status_history


def test_installed_package_is_not_installed_again(ctx, fake):
    ctx.run(ctx.on.install(), state())

    assert "install" not in fake.actions


@pytest.mark.parametrize(
    "event",
    ["config_changed", "update_status", "upgrade_charm", "leader_elected", "start", "install"],
)
def test_a_hook_with_nothing_new_writes_and_reloads_nothing(ctx, fake, settled, event):
    before = settled(state())

    out = ctx.run(getattr(ctx.on, event)(), before)

    assert fake.writes == []
    assert fake.actions == []
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def test_a_changed_flag_restarts_without_a_reload(ctx, fake, settled):
    settled(state())

    ctx.run(ctx.on.config_changed(), state(config={"retention-time": "30d"}))

    assert fake.actions == ["restart"]
    assert [write[0] for write in fake.writes] == ["flags"]
    assert fake.flag("storage.tsdb.retention.time") == "30d"


def test_a_config_only_change_reloads_without_a_restart(ctx, fake, settled):
    settled(state())

    ctx.run(ctx.on.config_changed(), state(config={"scrape-interval": "30s"}))

    assert fake.actions == ["reload"]
    assert [write[0] for write in fake.writes] == ["config"]


def test_a_refused_reload_blocks_and_is_retried_until_it_succeeds(ctx, fake, settled):
    before = settled(state())
    fake.reload_error = "failed to reload config: bad rule"

    refused = ctx.run(
        ctx.on.config_changed(),
        dataclasses.replace(before, config={"scrape-interval": "30s"}),
    )

    assert refused.unit_status == testing.BlockedStatus(
        "prometheus refused to reload, still on the old config: failed to reload config: bad rule"
    )
    fake.reload_error = None
    out = ctx.run(ctx.on.update_status(), refused)
    assert fake.actions == ["reload"]
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")
    fake.settle()
    ctx.run(ctx.on.update_status(), out)
    assert fake.actions == []


def test_an_upgrade_from_a_revision_that_enabled_the_lifecycle_api_restarts_without_it(
    ctx, fake, settled
):
    settled(state())
    fake.args = [*(fake.args or []), "--web.enable-lifecycle"]  # as older revisions wrote them

    ctx.run(ctx.on.upgrade_charm(), state())

    assert fake.actions == ["restart"]
    assert fake.flag("web.enable-lifecycle") is None


def test_a_flag_and_config_change_together_only_restart(ctx, fake, settled):
    settled(state())

    ctx.run(ctx.on.config_changed(), state(config={"web-port": 9091}))

    assert fake.actions == ["restart"]
    assert [write[0] for write in fake.writes] == ["config", "flags"]


def test_upgrade_charm_reloads_when_the_new_charm_renders_prometheus_yml_differently(ctx, fake):
    ctx.run(ctx.on.config_changed(), state())
    fake.config = "# written by an older revision of the charm\n"
    fake.settle()

    ctx.run(ctx.on.upgrade_charm(), state())

    assert fake.actions == ["reload"]
    assert fake.jobs().keys() == {"prometheus"}


def test_upgrade_charm_restarts_when_the_new_charm_renders_different_flags(ctx, fake):
    ctx.run(ctx.on.config_changed(), state())
    fake.args = ["--config.file=/etc/prometheus/prometheus.yml"]
    fake.settle()

    ctx.run(ctx.on.upgrade_charm(), state())

    assert fake.actions == ["restart"]


def test_a_stopped_service_is_started_on_the_next_hook(ctx, fake, settled):
    settled(state())
    fake.is_running = False

    ctx.run(ctx.on.update_status(), state())

    assert fake.actions == ["start"]


def test_a_service_that_will_not_run_is_reported(ctx, fake, monkeypatch):
    fake.is_running = False
    monkeypatch.setattr(fake, "start", lambda: None)

    out = ctx.run(ctx.on.update_status(), state())

    assert out.unit_status == testing.BlockedStatus(
        "prometheus is not running (see journalctl -u prometheus)"
    )


def test_promtool_rejection_blocks_and_keeps_the_running_config(ctx, fake, settled):
    settled(state())
    old_config = fake.config
    fake.promtool_error = "parsing YAML file prometheus.yml: field foo not found"

    out = ctx.run(ctx.on.config_changed(), state(config={"scrape-jobs": "- job_name: x\n"}))

    assert out.unit_status == testing.BlockedStatus(
        "promtool rejected the config (check scrape-jobs): "
        "parsing YAML file prometheus.yml: field foo not found"
    )
    assert fake.writes == []
    assert fake.actions == []
    assert fake.config == old_config


def test_promtool_rejection_still_shows_in_hooks_that_do_not_render(ctx, fake):
    fake.promtool_error = "bad"
    blocked = ctx.run(ctx.on.config_changed(), state())

    out = ctx.run(ctx.on.action("validate-configuration"), blocked)

    assert out.unit_status == testing.BlockedStatus(
        "promtool rejected the config (check scrape-jobs): bad"
    )


def test_fixing_the_config_clears_the_promtool_block(ctx, fake):
    fake.promtool_error = "bad"
    blocked = ctx.run(ctx.on.config_changed(), state())
    fake.promtool_error = None

    out = ctx.run(ctx.on.config_changed(), blocked)

    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def test_a_rule_file_promtool_rejects_is_logged_and_the_rest_applied(ctx, fake, caplog):
    fake.bad_rules = {"juju_lab_2f5e6d0a_widgets.rules"}
    rules = {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0"}]}]}
    relation = testing.Relation(
        "metrics-endpoint",
        remote_app_name="widgets",
        remote_app_data={
            "scrape_jobs": '[{"static_configs": [{"targets": ["*:9100"]}]}]',
            "alert_rules": json.dumps(rules),
        },
        remote_units_data={0: {"prometheus_scrape_unit_address": "10.0.0.1"}},
    )

    with caplog.at_level(logging.WARNING):
        out = ctx.run(
            ctx.on.relation_changed(relation, remote_unit=0), state(relations=[relation])
        )

    assert fake.rules == {}
    assert len(fake.jobs()) == 2
    assert "juju_lab_2f5e6d0a_widgets.rules left out" in caplog.text
    assert out.unit_status == testing.ActiveStatus(
        "serving 2 scrape jobs on :9090; 1 rule from relations left out (see juju debug-log)"
    )


def test_remove_stops_the_service(ctx, fake):
    ctx.run(ctx.on.remove(), state())

    assert fake.actions == ["stop"]
