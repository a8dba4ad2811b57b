"""The Alertmanager workload modules against the real amtool and Alertmanager (no Juju or systemd).

Files are rendered by the functions the charm calls and checked by the real amtool; an
Alertmanager is started from the flags file exactly as systemd would start it, and reloaded
the charm's way (SIGHUP, then Alertmanager's own metrics).
"""

from __future__ import annotations

import grp
import os
import pathlib
import stat
import urllib.error
import urllib.request

import alertmanager_processes as am
import pytest
import standins
from alertmanager import configuration, masking, paths, service

pytestmark = am.needs_alertmanager

TOKEN_URL = "https://hooks.slack.com/services/T000/B000/xoxb-functional-secret"
GOOD = f"""\
# the lab's receivers
global:
  smtp_smarthost: mail.lab:25
  smtp_from: am@lab
  smtp_auth_username: am
  smtp_auth_password: hunter2-functional
route:
  receiver: chat
receivers:
  - name: chat
    slack_configs:
      - api_url: {TOKEN_URL}
        channel: "#alerts"
"""
TEMPLATES = '{{ define "lab.title" }}[{{ .Status }}] {{ .CommonLabels.alertname }}{{ end }}\n'


@pytest.fixture
def live(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> paths.Paths:
    """Point the workload's files at a temporary directory."""
    where = am.local_paths(tmp_path)
    monkeypatch.setattr(paths, "PATHS", where)
    return where


@pytest.fixture
def start(live: paths.Paths, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch):
    """Return a function that starts Alertmanager from the written flags (stopped after)."""
    import contextlib

    with contextlib.ExitStack() as started:

        def run() -> am.RunningAlertmanager:
            log = tmp_path / "alertmanager.log"
            running = started.enter_context(am.start_from_flags(log))
            monkeypatch.setattr(
                service, "signal_reload", standins.sighup(lambda: running.process.pid)
            )
            monkeypatch.setattr(service, "journal", standins.journal_of(log))
            return running

        yield run


# --- the amtool gate ---------------------------------------------------------------------------


def test_the_default_config_passes_amtool_and_is_installed_0640_for_alertmanager_s_group(live):
    changed = configuration.install(configuration.render("", ""), "")

    assert changed
    mode = live.config.stat()
    assert stat.S_IMODE(mode.st_mode) == 0o640
    assert mode.st_uid == 0
    expected = grp.getgrnam("prometheus").gr_gid
    assert mode.st_gid == expected
    assert configuration.check_live() is None


def test_an_unchanged_config_is_not_checked_or_written_again(live, monkeypatch):
    configuration.install(configuration.render(GOOD, TEMPLATES), TEMPLATES)
    before = live.config.stat().st_mtime_ns
    monkeypatch.setattr(configuration, "_amtool", lambda _: pytest.fail("amtool ran"))

    assert not configuration.install(configuration.render(GOOD, TEMPLATES), TEMPLATES)
    assert live.config.stat().st_mtime_ns == before


def test_amtool_refuses_an_undefined_receiver_and_the_live_config_stays(live):
    configuration.install(configuration.render(GOOD, ""), "")
    before = live.config.read_bytes()
    refused = GOOD.replace("receiver: chat", "receiver: missing")

    with pytest.raises(configuration.ConfigError) as error:
        configuration.install(configuration.render(refused, ""), "")

    assert str(error.value) == 'undefined receiver "missing" used in route'
    assert live.config.read_bytes() == before


def test_amtool_s_reason_is_one_line_for_a_yaml_type_error(live):
    with pytest.raises(configuration.ConfigError) as error:
        configuration.install(configuration.render("route: 5\n", ""), "")

    assert "\n" not in str(error.value)
    assert str(error.value).startswith("yaml: unmarshal errors: line 3: cannot unmarshal")


def test_a_secret_that_amtool_quotes_is_masked_in_its_reason(live):
    # A webhook URL with a token that Go's URL parser refuses: amtool quotes it whole.
    broken = GOOD.replace(TOKEN_URL, "ht tp://user:pw-secret@hooks.lab/x?token=abc123")

    with pytest.raises(configuration.ConfigError) as error:
        configuration.install(configuration.render(broken, ""), "")

    message = str(error.value)
    assert message.startswith('parse "<secret>"'), message
    assert "pw-secret" not in message
    assert "abc123" not in message


def test_templates_are_checked_with_the_config_and_installed_beside_it(live):
    changed = configuration.install(configuration.render(GOOD, TEMPLATES), TEMPLATES)

    assert changed
    assert live.templates.read_text() == TEMPLATES
    assert live.templates.parent == live.config.parent
    assert stat.S_IMODE(live.templates.stat().st_mode) == 0o640
    assert configuration.check_live() is None


def test_broken_templates_are_refused_with_amtool_s_reason(live):
    broken = '{{ define "lab.title" }}{{ .Status \n'

    with pytest.raises(configuration.ConfigError) as error:
        configuration.install(configuration.render(GOOD, broken), broken)

    assert "template: alertmanager.tmpl:2: unclosed action" in str(error.value)
    assert not live.templates.exists()
    assert not live.config.exists()


def test_templates_removed_from_the_options_are_removed_from_disk(live):
    configuration.install(configuration.render(GOOD, TEMPLATES), TEMPLATES)

    assert configuration.install(configuration.render(GOOD, ""), "")

    assert not live.templates.exists()
    assert "alertmanager.tmpl" not in live.config.read_text()


def test_check_live_reports_a_hand_edit_with_secrets_masked(live):
    configuration.install(configuration.render(GOOD, ""), "")
    live.config.write_text(live.config.read_text().replace("receiver: chat", "receiver: nope"))

    assert configuration.check_live() == 'undefined receiver "nope" used in route'

    live.config.write_text(GOOD.replace(TOKEN_URL, TOKEN_URL.replace("https:", "ht tp:")))
    error = configuration.check_live()
    assert error is not None
    assert error.startswith('parse "<secret>"'), error
    assert "xoxb" not in error


def test_show_live_masks_what_alertmanager_itself_calls_secret(live, start, port):
    configuration.install(configuration.render(GOOD, ""), "")
    am.configure(port, GOOD)
    running = start()

    shown = configuration.show_live()

    # Alertmanager's own API hides its secrets as <secret>: the charm hides at least those.
    api = running.get("/api/v2/status")["config"]["original"]
    assert "hunter2" not in shown
    assert "xoxb" not in shown
    assert "<secret>" in api
    assert shown.count("<secret>") >= api.count("<secret>")


# --- the service: flags, readiness, reload ----------------------------------------------------


def test_the_written_flags_start_alertmanager_alone_under_its_route_prefix(live, start, port):
    am.configure(port, external_url=f"http://localhost:{port}/am/")

    running = start()

    assert running.base_url.endswith("/am")
    assert service.ready()
    status = running.get("/api/v2/status")
    assert status["cluster"]["status"] == "disabled"
    assert running.metric("alertmanager_cluster_enabled") == 0
    # The default config is what runs: no example receivers.
    assert "receiver: nobody" in status["config"]["original"]
    # Its data goes where the flags say (Alertmanager makes the directory).
    assert live.storage.is_dir()


def test_a_changed_config_is_applied_by_a_reload_in_the_same_process(live, start, port):
    am.configure(port)
    running = start()
    pid = running.process.pid
    hash_before = running.metric("alertmanager_config_hash")

    assert am.configure(port, GOOD, TEMPLATES)
    seconds = service.reload(timeout=10)

    assert 0 < seconds < 10
    assert running.process.pid == pid
    assert running.process.poll() is None
    assert running.metric("alertmanager_config_hash") != hash_before
    assert running.metric("alertmanager_config_last_reload_successful") == 1
    assert "receiver: chat" in running.get("/api/v2/status")["config"]["original"]


def test_a_reload_alertmanager_refuses_names_its_reason_and_it_keeps_serving(live, start, port):
    am.configure(port, GOOD)
    running = start()
    # Past amtool: a hand edit with a URL Go's parser refuses (it quotes the URL whole).
    text = live.config.read_text().replace(TOKEN_URL, f"ht tp://x:{TOKEN_URL[8:]}")
    live.config.write_text(text)

    with pytest.raises(service.ReloadError) as refused:
        service.reload(timeout=10)

    assert str(refused.value).startswith('parse "<secret>"'), str(refused.value)
    assert "xoxb" not in str(refused.value)
    assert running.process.poll() is None
    assert running.metric("alertmanager_config_last_reload_successful") == 0
    assert service.ready()


def test_a_template_alertmanager_cannot_load_refuses_the_reload(live, start, port):
    am.configure(port, GOOD, TEMPLATES)
    running = start()
    live.templates.write_text('{{ define "x" }}{{ .Foo \n')

    with pytest.raises(service.ReloadError) as refused:
        service.reload(timeout=10)

    # This refusal comes from a config subscriber: its log line has no level.
    assert "failed to parse templates" in str(refused.value)
    assert running.process.poll() is None


def test_a_reload_after_a_refused_one_is_confirmed(live, start, port):
    am.configure(port, GOOD)
    running = start()
    good = live.config.read_text()
    live.config.write_text(good.replace("receiver: chat", "receiver: nope"))
    with pytest.raises(service.ReloadError):
        service.reload(timeout=10)

    live.config.write_text(good)
    assert service.reload(timeout=10) > 0
    assert running.metric("alertmanager_config_last_reload_successful") == 1


def test_the_reload_endpoint_is_served_without_credentials(live, start, port):
    # Why the web port must not be exposed: anyone who reaches it can make Alertmanager reload.
    am.configure(port)
    running = start()
    before = running.metric("alertmanager_config_last_reload_success_timestamp_seconds")

    request = urllib.request.Request(f"{running.base_url}/-/reload", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200

    after = running.metric("alertmanager_config_last_reload_success_timestamp_seconds")
    assert before is not None
    assert after is not None
    assert after > before


def test_not_running_is_not_ready(live, port):
    am.configure(port)

    assert not service.ready()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2)


def test_files_are_not_readable_by_other_users(live):
    configuration.install(configuration.render(GOOD, TEMPLATES), TEMPLATES)

    for path in (live.config, live.templates):
        assert not os.stat(path).st_mode & stat.S_IROTH, path
    assert masking.secrets_of(live.config.read_text()) >= {"hunter2-functional", TOKEN_URL}
