"""Every config option: what it renders, what it restarts or reloads, what it refuses."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from alertmanager_testing import state
from ops import testing

SLACK = "https://hooks.slack.com/services/T000/B000/xoxb-very-secret-token"
CONFIG_FILE = f"""\
# our lab's receivers
global:
  smtp_smarthost: mail.lab:25
  smtp_from: alertmanager@lab
  smtp_auth_username: am
  smtp_auth_password: hunter2-is-my-password
route:
  receiver: chat
receivers:
  - name: chat
    slack_configs:
      - api_url: {SLACK}
        channel: "#alerts"
"""
TEMPLATES = '{{ define "lab.title" }}[{{ .Status }}] {{ .CommonLabels.alertname }}{{ end }}\n'


def test_defaults_run_a_config_that_groups_by_topology_and_notifies_nobody(ctx, fake):
    out = ctx.run(ctx.on.install(), state())

    config = fake.parsed_config()
    assert config["route"]["group_by"] == [
        "juju_model",
        "juju_model_uuid",
        "juju_application",
        "alertname",
    ]
    assert config["route"]["receiver"] == "nobody"
    assert config["receivers"] == [{"name": "nobody"}]
    assert "templates" not in config
    assert out.unit_status == testing.ActiveStatus(
        "serving on :9093; no receiver (config-file is empty)"
    )


def test_defaults_render_the_flags_of_a_unit_alone(ctx, fake):
    ctx.run(ctx.on.install(), state())

    assert fake.args == [
        "--config.file=/etc/prometheus/alertmanager.yml",
        "--storage.path=/var/lib/prometheus/alertmanager",
        "--web.listen-address=:9093",
        "--log.level=info",
        "--cluster.listen-address=",
    ]


def test_install_writes_config_and_flags_before_the_first_start(ctx, fake):
    fake.is_installed = False
    fake.is_running = False

    out = ctx.run(ctx.on.install(), state())

    # The package's example config never runs: the unit starts once the charm's files are in.
    assert fake.actions == ["install", "start"]
    assert [write[0] for write in fake.writes] == ["config", "flags"]
    assert out.workload_version == "0.23.0"
    assert out.unit_status.name == "active"


def test_config_file_is_installed_as_written_with_the_charm_s_header(ctx, fake):
    ctx.run(ctx.on.config_changed(), state(config={"config-file": CONFIG_FILE}))

    assert fake.config is not None
    assert fake.config.startswith("# Managed by the alertmanager charm")
    assert fake.config.endswith(CONFIG_FILE)  # comments and layout kept


def test_a_config_file_change_reloads_without_a_restart(ctx, fake, settled):
    before = settled(state())

    out = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(before, config={"config-file": CONFIG_FILE})
    )

    assert fake.actions == ["reload"]
    assert [write[0] for write in fake.writes] == ["config"]
    assert out.unit_status == testing.ActiveStatus("serving on :9093")


def test_nothing_changed_touches_nothing(ctx, fake, settled):
    before = settled(state(config={"config-file": CONFIG_FILE}))

    ctx.run(ctx.on.update_status(), before)

    assert fake.writes == []
    assert fake.actions == []


def test_templates_are_written_beside_the_config_and_named_by_it(ctx, fake):
    config = {"config-file": CONFIG_FILE, "templates-file": TEMPLATES}

    ctx.run(ctx.on.config_changed(), state(config=config))

    assert fake.templates == TEMPLATES
    assert fake.parsed_config()["templates"] == ["alertmanager.tmpl"]
    # The operator's receivers are still there.
    assert fake.parsed_config()["receivers"][0]["name"] == "chat"


def test_templates_keep_the_operator_s_own_template_paths(ctx, fake):
    own = CONFIG_FILE + "templates:\n  - /srv/lab/*.tmpl\n"

    ctx.run(ctx.on.config_changed(), state(config={"config-file": own, "templates-file": "x"}))

    assert fake.parsed_config()["templates"] == ["/srv/lab/*.tmpl", "alertmanager.tmpl"]


def test_templates_with_the_default_config_are_named_too(ctx, fake):
    ctx.run(ctx.on.config_changed(), state(config={"templates-file": TEMPLATES}))

    assert fake.parsed_config()["templates"] == ["alertmanager.tmpl"]
    assert fake.parsed_config()["receivers"] == [{"name": "nobody"}]


def test_removing_the_templates_reloads_without_them(ctx, fake, settled):
    before = settled(state(config={"templates-file": TEMPLATES}))

    ctx.run(ctx.on.config_changed(), dataclasses.replace(before, config={}))

    assert fake.templates == ""
    assert "templates" not in fake.parsed_config()
    assert fake.actions == ["reload"]


def test_web_port_is_the_listen_flag_and_the_opened_port_and_restarts(ctx, fake, settled):
    settled(state())

    out = ctx.run(ctx.on.config_changed(), state(config={"web-port": 9193}))

    assert fake.flag("web.listen-address") == [":9193"]
    assert fake.actions == ["restart"]
    assert out.opened_ports == {testing.TCPPort(9193)}
    assert out.unit_status.message.startswith("serving on :9193")


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_a_web_port_out_of_range_blocks_and_writes_nothing(ctx, fake, port):
    out = ctx.run(ctx.on.config_changed(), state(config={"web-port": port}))

    assert out.unit_status == testing.BlockedStatus(
        f"web-port: {port} is not a port number (1-65535)"
    )
    assert fake.writes == []


def test_the_cluster_port_is_refused_as_web_port(ctx, fake):
    out = ctx.run(ctx.on.config_changed(), state(config={"web-port": 9094}))

    assert out.unit_status == testing.BlockedStatus(
        "web-port: 9094 is the port units cluster on (try 9093)"
    )
    assert fake.writes == []


def test_web_external_url_is_the_flag_and_its_path_the_route_prefix(ctx, fake):
    url = "https://lab.example/alertmanager/"
    relation = testing.Relation("alerting")

    out = ctx.run(
        ctx.on.config_changed(),
        state(config={"web-external-url": url}, relations=[relation]),
    )

    assert fake.flag("web.external-url") == [url]
    published = out.get_relation(relation.id).local_unit_data
    assert published["url"] == "http://192.0.2.0:9093/alertmanager"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("lab.example/am", "is not an http(s) URL (try http://localhost:9093/)"),
        ("ftp://lab.example/", "is not an http(s) URL (try http://localhost:9093/)"),
        ("http://lab.example/a?b=c", "is not an http(s) URL (try http://localhost:9093/)"),
        ("http://lab.example/a//b", "is not an http(s) URL (try http://localhost:9093/)"),
        (
            "http://lab.example/a'b",
            "is not an http(s) URL: it has quotes, backslashes or other unsafe characters",
        ),
    ],
)
def test_a_bad_web_external_url_blocks_naming_it(ctx, fake, url, why):
    out = ctx.run(ctx.on.config_changed(), state(config={"web-external-url": url}))

    assert out.unit_status == testing.BlockedStatus(f'web-external-url: "{url}" {why}')
    assert fake.writes == []


@pytest.mark.parametrize("level", ["debug", "info", "warn", "error"])
def test_log_level_is_the_flag(ctx, fake, level):
    ctx.run(ctx.on.config_changed(), state(config={"log-level": level}))

    assert fake.flag("log.level") == [level]


def test_an_unknown_log_level_blocks_naming_the_levels(ctx, fake):
    out = ctx.run(ctx.on.config_changed(), state(config={"log-level": "verbose"}))

    assert out.unit_status == testing.BlockedStatus(
        'log-level: "verbose" is not one of debug, info, warn, error'
    )
    assert fake.writes == []


def test_a_config_file_that_is_not_yaml_blocks_without_quoting_it(ctx, fake, settled):
    before = settled(state())
    broken = f"global:\n  slack_api_url: {SLACK}\nroute: [receiver: x\n"

    out = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(before, config={"config-file": broken})
    )

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith("config-file: not YAML: ")
    assert "(line 4, column 1)" in out.unit_status.message
    assert "xoxb" not in out.unit_status.message
    assert fake.writes == []
    assert fake.actions == []


@pytest.mark.parametrize("text", ["- route: {}\n", "just words\n", "42\n"])
def test_a_config_file_that_is_not_a_mapping_blocks(ctx, fake, text):
    out = ctx.run(ctx.on.config_changed(), state(config={"config-file": text}))

    assert out.unit_status == testing.BlockedStatus(
        "config-file: not a YAML mapping (an alertmanager.yml has keys such as route:)"
    )
    assert fake.writes == []


def test_a_blank_config_file_is_the_default(ctx, fake):
    ctx.run(ctx.on.config_changed(), state(config={"config-file": "  \n\n"}))

    assert fake.parsed_config()["receivers"] == [{"name": "nobody"}]


def test_the_rendered_default_is_what_the_charm_installs(ctx, fake):
    ctx.run(ctx.on.config_changed(), state())

    rendered = yaml.safe_load(fake.config or "")
    assert rendered["route"]["group_wait"] == "30s"
    assert rendered["route"]["group_interval"] == "5m"
    assert rendered["route"]["repeat_interval"] == "4h"
