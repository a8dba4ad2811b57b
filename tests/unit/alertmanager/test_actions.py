"""The show-config and check-config actions: what they show, and that no secret is in it."""

from __future__ import annotations

import pytest
import yaml
from alertmanager_testing import CHARM_DIR, state
from ops import testing

SECRETS = {
    "smtp": "smtp-Pa55word!",
    "slack": "https://hooks.slack.com/services/T01/B02/xoxb-slack-token-1234",
    "webhook": "https://ops.lab/hook/6a1f-webhook-secret",
    "pagerduty": "pd-routing-key-9876",
    "bearer": "bearer-token-abcdef",
    "opsgenie": "opsgenie-api-key-5555",
}
CONFIG_FILE = f"""\
global:
  smtp_smarthost: mail.lab:587
  smtp_auth_username: alertmanager
  smtp_auth_password: "{SECRETS["smtp"]}"
  slack_api_url: "{SECRETS["slack"]}"
  opsgenie_api_key: "{SECRETS["opsgenie"]}"
route:
  receiver: team
receivers:
  - name: team
    webhook_configs:
      - url: "{SECRETS["webhook"]}"
        http_config:
          authorization:
            credentials: "{SECRETS["bearer"]}"
          proxy_url: "http://squid:squid-proxy-pass@proxy.lab:3128/"
    pagerduty_configs:
      - routing_key: "{SECRETS["pagerduty"]}"
        url: https://events.pagerduty.com/v2/enqueue
    email_configs:
      - to: oncall@lab
        tls_config:
          key_file: /etc/prometheus/client.key
"""


def test_show_config_masks_every_secret_and_shows_the_rest(ctx, fake, settled):
    before = settled(state(config={"config-file": CONFIG_FILE}))

    ctx.run(ctx.on.action("show-config"), before)

    results = ctx.action_results
    assert results is not None
    assert results["path"] == "/etc/prometheus/alertmanager.yml"
    content = results["content"]
    for secret in [*SECRETS.values(), "squid-proxy-pass"]:
        assert secret not in content
    shown = yaml.safe_load(content)
    assert shown["global"]["smtp_auth_password"] == "<secret>"
    assert shown["global"]["slack_api_url"] == "<secret>"
    assert shown["global"]["smtp_auth_username"] == "alertmanager"
    assert shown["global"]["smtp_smarthost"] == "mail.lab:587"
    webhook = shown["receivers"][0]["webhook_configs"][0]
    assert webhook["url"] == "<secret>"
    assert webhook["http_config"]["authorization"]["credentials"] == "<secret>"
    assert webhook["http_config"]["proxy_url"] == "http://<secret>@proxy.lab:3128/"
    assert shown["receivers"][0]["email_configs"][0]["tls_config"]["key_file"] == (
        "/etc/prometheus/client.key"
    )
    assert shown["route"] == {"receiver": "team"}


def test_show_config_of_the_default_config_shows_it_whole(ctx, fake, settled):
    before = settled(state())

    ctx.run(ctx.on.action("show-config"), before)

    assert ctx.action_results is not None
    shown = yaml.safe_load(ctx.action_results["content"])
    assert shown["receivers"] == [{"name": "nobody"}]


def test_show_config_before_install_fails(ctx, fake):
    fake.is_installed = False

    with pytest.raises(testing.ActionFailed, match="not installed"):
        ctx.run(ctx.on.action("show-config"), state())


def test_show_config_without_a_live_file_fails(ctx, fake):
    with pytest.raises(
        testing.ActionFailed, match=r"there is no /etc/prometheus/alertmanager.yml"
    ):
        ctx.run(ctx.on.action("show-config"), state())


def test_show_config_of_a_hand_broken_file_says_where_not_what(ctx, fake):
    fake.config = f'global:\n  slack_api_url: "{SECRETS["slack"]}\n'  # unclosed quote

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("show-config"), state())

    assert failure.value.message.startswith("/etc/prometheus/alertmanager.yml is not YAML: ")
    assert "line" in failure.value.message
    assert "xoxb" not in failure.value.message


def test_show_config_writes_nothing(ctx, fake, settled):
    before = settled(state(config={"config-file": CONFIG_FILE}))

    ctx.run(ctx.on.action("show-config"), before)

    assert fake.writes == []
    assert fake.actions == []


def test_check_config_reports_a_valid_live_config(ctx, fake):
    ctx.run(ctx.on.action("check-config"), state())

    assert ctx.action_results == {"valid": "true"}


def test_check_config_reports_amtool_s_error_with_secrets_masked(ctx, fake, settled):
    before = settled(state(config={"config-file": CONFIG_FILE}))
    fake.live_error = f'parse "{SECRETS["webhook"]}": invalid port'

    ctx.run(ctx.on.action("check-config"), before)

    assert ctx.action_results == {
        "valid": "false",
        "error-message": 'parse "<secret>": invalid port',
    }


def test_check_config_before_install_fails(ctx, fake):
    fake.is_installed = False

    with pytest.raises(testing.ActionFailed, match="not installed"):
        ctx.run(ctx.on.action("check-config"), state())


def test_both_actions_refuse_parameters():
    meta = yaml.safe_load((CHARM_DIR / "charmcraft.yaml").read_text())["actions"]

    for action in ("show-config", "check-config"):
        assert meta[action]["additionalProperties"] is False
        assert not meta[action].get("params")
