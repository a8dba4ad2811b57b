"""The validate-configuration and reload actions."""

from __future__ import annotations

import pytest
from ops import testing


def test_validate_reports_a_valid_live_config(ctx, fake):
    ctx.run(ctx.on.action("validate-configuration"), testing.State())

    assert ctx.action_results == {"valid": "true"}


def test_validate_reports_promtool_error(ctx, fake):
    fake.live_error = "parsing YAML file prometheus.yml: field foo not found"

    ctx.run(ctx.on.action("validate-configuration"), testing.State())

    assert ctx.action_results == {
        "valid": "false",
        "error-message": "parsing YAML file prometheus.yml: field foo not found",
    }


def test_validate_before_install_fails(ctx, fake):
    fake.is_installed = False

    with pytest.raises(testing.ActionFailed, match="not installed"):
        ctx.run(ctx.on.action("validate-configuration"), testing.State())


def test_reload_reports_its_duration_and_writes_nothing(ctx, fake):
    ctx.run(ctx.on.action("reload"), testing.State())

    assert ctx.action_results == {"duration-ms": 1234}
    assert fake.actions == ["reload"]
    assert fake.writes == []


def test_reload_refused_by_prometheus_fails_with_its_message(ctx, fake):
    fake.reload_error = "failed to reload config: bad rule"

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("reload"), testing.State())

    assert (
        failure.value.message == "Prometheus refused to reload: failed to reload config: bad rule"
    )


def test_reload_of_a_stopped_service_fails_and_does_not_start_it(ctx, fake):
    fake.is_running = False

    with pytest.raises(testing.ActionFailed, match="not running"):
        ctx.run(ctx.on.action("reload"), testing.State())

    assert fake.actions == []
