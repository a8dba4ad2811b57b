"""The Grafana charm's behaviour per Juju event, against an in-memory Grafana."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import admin_password
import charm
import pytest
import yaml
from grafana import apt_source, service
from grafana_testing import (
    CLI_FLAGS,
    DEFAULT_RELEASE,
    MODEL,
    PASSWORD_FILE,
    PROGRAMS,
    STORED_PASSWORD,
    FakeGrafana,
    password_secret,
    peers,
    secret_key_secret,
    state,
)
from ops import testing

# --- helpers ----------------------------------------------------------------------------------


def cos_source(
    units: dict[int, str], *, relation_id: int | None = None, **app
) -> testing.Relation:
    """A grafana-source relation to a COS-style Prometheus with one URL per unit."""
    data = {"model": "lab", "model_uuid": MODEL.uuid, "application": "prometheus"}
    data |= {"type": "prometheus", "extra_fields": {}, "secure_extra_fields": {}} | app
    kwargs: dict[str, Any] = {} if relation_id is None else {"id": relation_id}
    return testing.Relation(
        "grafana-source",
        remote_app_name="prometheus",
        remote_app_data={"grafana_source_data": json.dumps(data)},
        remote_units_data={n: {"grafana_source_host": url} for n, url in units.items()},
        **kwargs,
    )


def legacy_source(units: dict[int, dict[str, str]], app: str = "prometheus2") -> testing.Relation:
    return testing.Relation("grafana-source", remote_app_name=app, remote_units_data=units)


def settle(ctx: testing.Context, fake: FakeGrafana, before: testing.State) -> testing.State:
    """Run one hook so the unit is installed and in sync, then forget what it did."""
    out = ctx.run(ctx.on.update_status(), before)
    fake.actions.clear()
    fake.api_calls.clear()
    fake.passwords_set = 0
    return out


def with_relation(out: testing.State, relation: testing.Relation) -> testing.State:
    others = [r for r in out.relations if r.endpoint != relation.endpoint]
    return dataclasses.replace(out, relations=[*others, relation])


def peer_data(out: testing.State) -> dict[str, str]:
    [relation] = [r for r in out.relations if r.endpoint == "grafana-peers"]
    return dict(relation.local_app_data)


def ini(fake: FakeGrafana) -> dict[str, dict[str, str]]:
    """Parse the written grafana.ini the way Grafana's ini reader sees sections and keys."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(fake.files["grafana.ini"])
    return {section: dict(parser[section]) for section in parser.sections()}


def everything_the_unit_published(ctx: testing.Context, out: testing.State) -> str:
    """Logs, status and every databag this unit could write, as one string."""
    texts = [line.message for line in ctx.juju_log]
    texts += [out.unit_status.message, out.app_status.message]
    for relation in out.relations:
        texts.append(json.dumps(dict(relation.local_app_data)))
        texts.append(json.dumps(dict(relation.local_unit_data)))
    return "\n".join(texts)


# --- install ----------------------------------------------------------------------------------


def test_install_from_repository_starts_grafana_and_goes_active(ctx, fake):
    out = ctx.run(ctx.on.install(), state())

    assert ("install", "repository") in fake.actions
    assert fake.running
    assert out.unit_status == testing.ActiveStatus("serving on :3000 with 0 data sources")
    assert out.workload_version == DEFAULT_RELEASE
    assert out.opened_ports == {testing.TCPPort(3000)}


def test_pinned_key_mismatch_blocks_and_writes_nothing(ctx, fake):
    fake.install_error = apt_source.KeyMismatchError(
        "https://apt.grafana.com/gpg.key served ABC, not the pinned Grafana key B53A...; "
        "nothing installed"
    )

    out = ctx.run(ctx.on.install(), state())

    assert out.unit_status.name == "blocked"
    assert "not the pinned Grafana key" in out.unit_status.message
    assert fake.files == {}
    assert not fake.running


def test_a_long_install_error_is_one_status_line_of_200_characters(ctx, fake):
    fake.install_error = apt_source.InstallError("apt could not install grafana:\n" + "x" * 300)

    out = ctx.run(ctx.on.install(), state())

    message = "install failed, retrying: apt could not install grafana: " + "x" * 300
    assert out.unit_status == testing.BlockedStatus(message[:197] + "...")


def test_network_failure_blocks_and_is_retried_on_update_status(ctx, fake):
    fake.install_error = apt_source.InstallError("cannot download https://apt.grafana.com/gpg.key")
    out = ctx.run(ctx.on.install(), state())
    assert out.unit_status.name == "blocked"
    assert "retrying" in out.unit_status.message

    fake.install_error = None
    out = ctx.run(ctx.on.update_status(), out)

    assert out.unit_status.name == "active"
    assert ("install", "repository") in fake.actions


def test_attached_deb_is_installed_instead_of_the_repository(ctx, fake, tmp_path: Path):
    deb = tmp_path / "grafana.deb"
    deb.write_text("grafana 11.3.0 deb")
    resource = testing.Resource(name="grafana-deb", path=deb)

    out = ctx.run(ctx.on.install(), state(resources={resource}))

    assert fake.actions[0] == ("install", "grafana 11.3.0 deb")
    assert ("install", "repository") not in fake.actions
    assert out.unit_status.name == "active"


def test_empty_deb_resource_means_the_repository(ctx, fake, tmp_path: Path):
    deb = tmp_path / "grafana.deb"
    deb.write_bytes(b"")

    ctx.run(ctx.on.install(), state(resources={testing.Resource(name="grafana-deb", path=deb)}))

    assert ("install", "repository") in fake.actions


def test_new_deb_on_upgrade_is_installed_and_the_same_one_is_not(ctx, fake, tmp_path: Path):
    old, new = tmp_path / "old.deb", tmp_path / "new.deb"
    old.write_text("grafana 11.2")
    new.write_text("grafana 11.3")
    out = ctx.run(
        ctx.on.install(), state(resources={testing.Resource(name="grafana-deb", path=old)})
    )
    fake.actions.clear()

    out = ctx.run(ctx.on.upgrade_charm(), out)  # same resource
    assert not [a for a in fake.actions if a[0] == "install"]

    out = dataclasses.replace(out, resources={testing.Resource(name="grafana-deb", path=new)})
    ctx.run(ctx.on.upgrade_charm(), out)
    assert ("install", "grafana 11.3") in fake.actions


def test_upgrade_keeps_password_uids_and_does_not_reinstall(ctx, installed):
    out = settle(
        ctx, installed, state(relations=[peers(), cos_source({0: "http://10.0.0.5:9090"})])
    )
    uids_before = installed.datasources()["datasources"][0]["uid"]

    out = ctx.run(ctx.on.upgrade_charm(), out)

    assert not [a for a in installed.actions if a[0] in ("install", "restart")]
    assert installed.passwords_set == 0
    assert installed.datasources()["datasources"][0]["uid"] == uids_before
    assert out.get_secret(label="admin-password").tracked_content == {
        "password": "s3cret-from-juju"
    }


def test_start_failure_blocks_with_a_pointer_to_the_journal(ctx, fake):
    fake.start_error = service.ServiceError("systemctl start grafana-server failed")

    out = ctx.run(ctx.on.install(), state())

    assert out.unit_status == testing.BlockedStatus(
        "grafana-server does not start: see journalctl -u grafana-server"
    )


def test_remove_stops_grafana(ctx, installed):
    ctx.run(ctx.on.remove(), state())

    assert ("stop", "grafana-server") in installed.actions


# --- config -----------------------------------------------------------------------------------


def test_default_grafana_ini_turns_telemetry_off_and_anonymous_access_off(ctx, installed):
    ctx.run(ctx.on.config_changed(), state())

    written = ini(installed)
    assert written["server"] == {"http_port": "3000"}
    assert written["security"] == {
        "admin_user": "admin",
        "admin_password": "$__file{/etc/grafana/admin-password}",
    }
    assert written["auth.anonymous"] == {"enabled": "false", "org_role": "Viewer"}
    assert written["log"] == {"level": "info"}
    assert written["analytics"] == {
        "reporting_enabled": "false",
        "check_for_updates": "false",
        "check_for_plugin_updates": "false",
    }


@pytest.mark.parametrize(
    ("option", "value", "section", "key", "expected"),
    [
        ("port", 8080, "server", "http_port", "8080"),
        ("root-url", "http://localhost:8001/", "server", "root_url", "http://localhost:8001/"),
        ("admin-user", "lab.admin@site", "security", "admin_user", "lab.admin@site"),
        ("allow-anonymous-access", True, "auth.anonymous", "enabled", "true"),
        ("anonymous-role", "Editor", "auth.anonymous", "org_role", "Editor"),
        ("log-level", "debug", "log", "level", "debug"),
    ],
)
def test_each_option_reaches_grafana_ini(ctx, installed, option, value, section, key, expected):
    ctx.run(ctx.on.config_changed(), state(config={option: value}))

    assert ini(installed)[section][key] == expected


ROLES = "Viewer, Editor, Admin"
LEVELS = "debug, info, warn, error, critical"
NOT_A_URL = "is not an http(s) URL without query or fragment"
MAJORS = "10, 11, 12, 13 (a Grafana major version)"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("port", 0, "port: 0 is not a TCP port (1-65535)"),
        ("port", 70000, "port: 70000 is not a TCP port (1-65535)"),
        ("admin-user", "", "admin-user: '' must be 1-64 letters, digits or . _ @ -"),
        (
            "admin-user",
            "admin\n[security]",
            "admin-user: 'admin\\n[security]' must be 1-64 letters, digits or . _ @ -",
        ),
        ("anonymous-role", "viewer", "anonymous-role: 'viewer' is not one of " + ROLES),
        ("root-url", "ftp://lab/", "root-url: 'ftp://lab/' " + NOT_A_URL),
        ("root-url", "http://lab/$__env{X}", "root-url: 'http://lab/$__env{X}' " + NOT_A_URL),
        ("root-url", "http://lab/ ; x", "root-url: 'http://lab/ ; x' " + NOT_A_URL),
        ("root-url", "http://lab/?q=1", "root-url: 'http://lab/?q=1' " + NOT_A_URL),
        ("log-level", "verbose", "log-level: 'verbose' is not one of " + LEVELS),
        ("grafana-version", "14", "grafana-version: '14' is not one of " + MAJORS),
        ("grafana-version", "12.3", "grafana-version: '12.3' is not one of " + MAJORS),
        ("grafana-version", "1" * 21, f"grafana-version: '{'1' * 20}...' is not one of " + MAJORS),
    ],
)  # fmt: skip
def test_bad_option_blocks_naming_it_and_writes_nothing(ctx, fake, option, value, message):
    out = ctx.run(ctx.on.config_changed(), state(config={option: value}))

    assert out.unit_status == testing.BlockedStatus(message)
    assert fake.actions == []


def test_bad_option_keeps_the_running_grafana_ini(ctx, installed):
    out = settle(ctx, installed, state())
    before = installed.files["grafana.ini"]

    ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={"log-level": "loud"}))

    assert installed.files["grafana.ini"] == before
    assert installed.actions == []


def test_changed_option_restarts_grafana_once(ctx, installed):
    out = settle(ctx, installed, state())

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={"port": 3001}))

    assert installed.actions.count(("restart", "grafana-server")) == 1
    assert out.opened_ports == {testing.TCPPort(3001)}
    assert out.unit_status == testing.ActiveStatus("serving on :3001 with 0 data sources")


def test_unchanged_hook_writes_nothing_and_calls_no_api(ctx, installed):
    relations = [peers(), cos_source({0: "http://10.0.0.5:9090", 1: "http://10.0.0.6:9090"})]
    out = settle(ctx, installed, state(relations=relations))

    for event in (ctx.on.update_status(), ctx.on.config_changed(), ctx.on.leader_elected()):
        out = ctx.run(event, out)

    assert installed.actions == []
    assert installed.api_calls == []
    assert installed.passwords_set == 0


# --- admin password ---------------------------------------------------------------------------


def test_leader_creates_the_secret_and_grafana_first_starts_with_it(ctx, fake):
    out = ctx.run(ctx.on.install(), state(secrets=[], relations=[peers(None)]))

    secret = out.get_secret(label="admin-password")
    assert secret.owner == "app"
    assert secret.tracked_content == {"password": "generated-password-1"}
    assert [s.password_file for s in fake.starts] == ["generated-password-1"]
    assert fake.accepts("admin", "generated-password-1")
    assert not fake.accepts("admin", "admin")
    assert fake.passwords_set == 0  # born with it: no CLI
    assert peer_data(out)[admin_password.GENERATION_KEY] == "1"

    ctx.run(ctx.on.update_status(), out)
    assert fake.generated == 1


def test_leader_without_peers_yet_starts_grafana_with_the_password(ctx, fake):
    out = ctx.run(ctx.on.install(), state(secrets=[], relations=[]))
    assert [s.password_file for s in fake.starts] == ["generated-password-1"]
    assert out.unit_status.name == "active"

    relation = peers(None)
    out = ctx.run(
        ctx.on.relation_created(relation), dataclasses.replace(out, relations=[relation])
    )

    assert peer_data(out)[admin_password.GENERATION_KEY] == "1"
    assert fake.accepts("admin", "generated-password-1")
    assert fake.passwords_set == 0
    assert fake.generated == 1


def test_follower_waits_for_the_leader_without_starting_grafana(ctx, fake):
    out = ctx.run(ctx.on.install(), state(leader=False, secrets=[], relations=[peers(None)]))

    assert out.secrets == frozenset()
    assert out.unit_status == testing.WaitingStatus(
        "waiting for the leader to create the admin password"
    )
    assert fake.installed
    assert fake.starts == []
    assert "grafana.ini" not in fake.files
    assert fake.passwords_set == 0


def test_follower_starts_with_the_leaders_password_then_follows_each_reset(ctx, fake):
    out = ctx.run(ctx.on.install(), state(leader=False))
    assert [s.password_file for s in fake.starts] == ["s3cret-from-juju"]
    assert fake.accepts("admin", "s3cret-from-juju")
    assert fake.passwords_set == 0

    # The leader reset the password: new secret content and a new generation.
    relation = dataclasses.replace(peers("2"), peers_data={1: {}})
    out = dataclasses.replace(
        out,
        secrets=[password_secret("a-newer-password"), secret_key_secret()],
        relations=[relation],
    )
    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=1), out)

    assert fake.accepts("admin", "a-newer-password")
    assert fake.files[PASSWORD_FILE] == "a-newer-password"
    assert fake.passwords_set == 1
    assert len(fake.starts) == 1  # no restart for a password
    ctx.run(ctx.on.update_status(), out)
    assert fake.passwords_set == 1


def test_follower_applies_a_new_secret_revision_on_secret_changed(ctx, fake):
    out = ctx.run(ctx.on.install(), state(leader=False))
    # Juju tells the application's other units of a new revision of its secret
    # (juju/juju#15127, #15397); Scenario models that only for a secret the unit does not own.
    secret = dataclasses.replace(password_secret("rotated-by-the-leader"), owner=None)
    relation = dataclasses.replace(peers("2"), peers_data={1: {}})
    out = dataclasses.replace(out, secrets=[secret, secret_key_secret()], relations=[relation])

    out = ctx.run(ctx.on.secret_changed(secret), out)

    assert fake.accepts("admin", "rotated-by-the-leader")
    assert out.unit_status.name == "active"


@pytest.mark.parametrize("version", sorted(PROGRAMS))
def test_password_reset_calls_grafana_by_its_absolute_path(ctx, version):
    # 11.x and 12.x .debs put no `grafana` on PATH: only the absolute path works on all four.
    fake = FakeGrafana().installed_with_password(STORED_PASSWORD, version=version)
    with fake.patched():
        out = ctx.run(ctx.on.update_status(), state(config={"grafana-version": version[:2]}))
        ctx.run(ctx.on.action("reset-admin-password", params={"password": "for-" + version}), out)

    assert fake.accepts("admin", "for-" + version)
    [command] = fake.commands
    assert command[:5] == ["runuser", "-u", "grafana", "--", "/usr/share/grafana/bin/grafana"]
    assert "for-" + version not in " ".join(command)


@pytest.mark.parametrize("version", ["11.3.0", "12.3.1"])
def test_the_fake_machine_has_no_grafana_on_path_for_11_and_12(version):
    fake = FakeGrafana().installed_with_password(STORED_PASSWORD, version=version)
    bare = ["runuser", "-u", "grafana", "--", "grafana", "cli", *CLI_FLAGS]
    command = [*bare, "admin", "reset-admin-password", "--password-from-stdin"]

    result = fake.run_command(command, input="new-password\n")

    assert result.returncode != 0
    assert "failed to execute grafana" in result.stderr
    assert fake.accepts("admin", STORED_PASSWORD)


def test_upgrade_from_a_grafana_still_at_admin_admin_sets_and_checks_the_password(ctx, fake):
    # Earlier charm revisions started Grafana before setting the password, and on 11.x/12.x
    # never managed to set it: the database still has admin/admin.
    fake.install(DEFAULT_RELEASE)
    fake.running = fake.database_created = True

    out = ctx.run(ctx.on.upgrade_charm(), state())

    assert fake.accepts("admin", STORED_PASSWORD)
    assert not fake.accepts("admin", "admin")
    assert fake.passwords_set == 1
    assert fake.api_calls[-2:] == ["login", "login"]  # rejected, then confirmed
    assert out.unit_status.name == "active"


def test_a_cli_that_changes_nothing_is_not_taken_for_success(ctx, fake):
    fake.install(DEFAULT_RELEASE)
    fake.running = fake.database_created = True
    fake.cli_changes_nothing = True

    out = ctx.run(ctx.on.upgrade_charm(), state())

    assert out.unit_status == testing.BlockedStatus(
        "Grafana rejects 'admin' even after a password reset: check admin-user"
    )
    # Not recorded as applied: the next hook tries again.
    fake.cli_changes_nothing = False
    out = ctx.run(ctx.on.update_status(), out)
    assert fake.accepts("admin", STORED_PASSWORD)
    assert out.unit_status.name == "active"


def test_a_failing_cli_says_so_and_is_retried(ctx, fake):
    fake.install(DEFAULT_RELEASE)
    fake.running = fake.database_created = True
    fake.programs = set()  # a .deb without /usr/share/grafana/bin/grafana

    out = ctx.run(ctx.on.upgrade_charm(), state())

    assert out.unit_status == testing.WaitingStatus("could not set the admin password, retrying")
    assert fake.commands, "the CLI was not tried"
    assert not fake.accepts("admin", STORED_PASSWORD)


def test_admin_user_option_names_the_first_administrator(ctx, fake):
    out = ctx.run(ctx.on.install(), state(config={"admin-user": "lab.admin"}))

    assert fake.accepts("lab.admin", STORED_PASSWORD)
    ctx.run(ctx.on.action("get-admin-password"), out)
    assert ctx.action_results is not None
    assert ctx.action_results["username"] == "lab.admin"
    assert ctx.action_results["admin-password"] == STORED_PASSWORD


def test_admin_user_renamed_later_does_not_rename_grafanas_account(ctx, fake):
    # As documented: Grafana creates the account once; renaming needs Grafana's UI too.
    out = ctx.run(ctx.on.install(), state())

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={"admin-user": "ops"}))

    assert fake.accepts("admin", STORED_PASSWORD)
    assert not fake.accepts("ops", STORED_PASSWORD)
    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("get-admin-password"), out)
    assert "admin-user was renamed" in failure.value.message


def test_new_leader_keeps_the_password_and_the_uids(ctx, installed):
    relations = [peers(), cos_source({0: "http://10.0.0.5:9090"})]
    out = settle(ctx, installed, state(leader=False, relations=relations))
    datasources = installed.files["datasources"]

    out = ctx.run(ctx.on.leader_elected(), dataclasses.replace(out, leader=True))

    assert out.get_secret(label="admin-password").tracked_content == {
        "password": "s3cret-from-juju"
    }
    assert installed.generated == 0
    assert installed.passwords_set == 0
    assert installed.files["datasources"] == datasources
    source = out.get_relation(relations[1].id)
    assert json.loads(source.local_app_data["datasource_uids"]) == {
        "prometheus/0": "lab_prometheus_0"
    }


def test_password_never_reaches_logs_status_or_relation_data(ctx, installed):
    relations = [
        peers(),
        cos_source({0: "http://10.0.0.5:9090"}),
        testing.Relation("metrics-endpoint"),
    ]
    out = ctx.run(ctx.on.install(), state(relations=relations, secrets=[]))
    ctx.run(ctx.on.action("reset-admin-password", params={"password": "typed-by-a-person"}), out)

    published = everything_the_unit_published(ctx, out)
    assert "generated-password-1" not in published
    assert "typed-by-a-person" not in published


# --- actions ----------------------------------------------------------------------------------


def test_get_admin_password_returns_working_credentials_and_the_url(ctx, installed):
    out = settle(ctx, installed, state())

    ctx.run(ctx.on.action("get-admin-password"), out)

    assert ctx.action_results == {
        "username": "admin",
        "admin-password": "s3cret-from-juju",
        "url": "http://192.0.2.0:3000/",
    }


def test_get_admin_password_gives_root_url_when_set(ctx, installed):
    out = settle(ctx, installed, state(config={"root-url": "http://localhost:8001/"}))

    ctx.run(ctx.on.action("get-admin-password"), out)

    assert ctx.action_results is not None
    assert ctx.action_results["url"] == "http://localhost:8001/"


def test_get_admin_password_refuses_a_password_changed_inside_grafana(ctx, installed):
    out = settle(ctx, installed, state())
    installed.admin_password = "changed-in-the-web-ui"

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("get-admin-password"), out)

    assert failure.value.message == (
        "Grafana rejects the stored password for 'admin': it was changed inside Grafana (or "
        "admin-user was renamed). Run `juju run grafana/leader reset-admin-password` to set a "
        "known one."
    )
    assert "s3cret-from-juju" not in failure.value.message


def test_get_admin_password_fails_when_grafana_is_down(ctx, installed):
    out = settle(ctx, installed, state())
    installed.api_down = True

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("get-admin-password"), out)

    assert failure.value.message.startswith("Cannot check the password with Grafana")


def test_get_admin_password_before_the_leader_made_one(ctx, installed):
    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("get-admin-password"), state(leader=False, secrets=[]))

    assert "has not created the admin password yet" in failure.value.message


def test_reset_admin_password_with_a_given_password(ctx, installed):
    out = settle(ctx, installed, state())

    out = ctx.run(ctx.on.action("reset-admin-password", params={"password": "correct horse"}), out)

    assert ctx.action_results == {
        "message": "Password changed on every unit; run get-admin-password to read it."
    }
    assert out.get_secret(label="admin-password").latest_content == {"password": "correct horse"}
    assert installed.admin_password == "correct horse"
    assert peer_data(out)[admin_password.GENERATION_KEY] == "2"
    # Nothing left to do in the next hook on this unit.
    installed.passwords_set = 0
    ctx.run(ctx.on.update_status(), out)
    assert installed.passwords_set == 0


def test_reset_admin_password_generates_one_and_takes_back_a_changed_password(ctx, installed):
    out = settle(ctx, installed, state())
    installed.admin_password = "changed-in-the-web-ui"

    out = ctx.run(ctx.on.action("reset-admin-password"), out)
    ctx.run(ctx.on.action("get-admin-password"), out)

    assert ctx.action_results is not None
    assert ctx.action_results["admin-password"] == "generated-password-1"


@pytest.mark.parametrize("password", ["short", " leading-space", "x" * 129, "two\nlines-here"])
def test_reset_admin_password_refuses_a_bad_password_without_echoing_it(ctx, installed, password):
    out = settle(ctx, installed, state())

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("reset-admin-password", params={"password": password}), out)

    assert password.strip() not in failure.value.message
    assert installed.admin_password == "s3cret-from-juju"


def test_reset_admin_password_keeps_the_password_file_in_sync(ctx, installed):
    out = settle(ctx, installed, state())

    ctx.run(ctx.on.action("reset-admin-password", params={"password": "correct horse"}), out)

    assert installed.files[PASSWORD_FILE] == "correct horse"
    assert installed.commands[0][4] == "/usr/share/grafana/bin/grafana"


def test_reset_admin_password_before_grafana_runs_stores_it_and_says_when_it_applies(ctx, fake):
    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(
            ctx.on.action("reset-admin-password", params={"password": "correct horse"}), state()
        )

    assert "Stored the new password" in failure.value.message
    assert "retries on its next hook" in failure.value.message
    assert "correct horse" not in failure.value.message
    assert fake.files == {}


def test_reset_admin_password_only_on_the_leader(ctx, installed):
    out = settle(ctx, installed, state(leader=False))

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("reset-admin-password"), out)

    assert "juju run grafana/leader reset-admin-password" in failure.value.message


def test_actions_refuse_to_run_with_bad_config(ctx, installed):
    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("get-admin-password"), state(config={"port": 0}))

    assert "port: 0" in failure.value.message


# --- grafana-source ---------------------------------------------------------------------------


def test_cos_prometheus_becomes_the_default_data_source_without_a_restart(ctx, installed):
    out = settle(ctx, installed, state())
    relation = cos_source({0: "http://10.0.0.5:9090"})

    out = ctx.run(ctx.on.relation_changed(relation), with_relation(out, relation))

    assert installed.datasources()["datasources"] == [
        {
            "uid": "lab_prometheus_0",
            "name": "lab/prometheus/0",
            "type": "prometheus",
            "access": "proxy",
            "orgId": 1,
            "url": "http://10.0.0.5:9090",
            "isDefault": True,
            "editable": False,
        }
    ]
    assert installed.api_calls == ["reload datasources"]
    assert ("restart", "grafana-server") not in installed.actions
    app_data = out.get_relation(relation.id).local_app_data
    assert json.loads(app_data["datasource_uids"]) == {"prometheus/0": "lab_prometheus_0"}
    assert app_data["grafana_uid"] == f"{MODEL.uuid}_grafana"
    assert out.unit_status == testing.ActiveStatus("serving on :3000 with 1 data source")


def test_cos_v1_application_data_source_is_provisioned_and_its_uid_sent_back(ctx, installed):
    # A COS v1 provider's default: one URL in app data, none from its units.
    out = settle(ctx, installed, state())
    relation = cos_source({})
    app_data = {**relation.remote_app_data, "grafana_source_app_host": "http://10.0.0.9:9009/prom"}
    relation = dataclasses.replace(
        relation, remote_app_data=app_data, remote_units_data={0: {}, 1: {}}
    )

    out = ctx.run(ctx.on.relation_changed(relation), with_relation(out, relation))

    [entry] = installed.datasources()["datasources"]
    assert (entry["uid"], entry["name"]) == ("lab_prometheus", "lab/prometheus")
    assert entry["url"] == "http://10.0.0.9:9009/prom"
    app_data = out.get_relation(relation.id).local_app_data
    assert app_data["app_datasource_uid"] == "lab_prometheus"
    assert json.loads(app_data["datasource_uids"]) == {}
    assert out.unit_status == testing.ActiveStatus("serving on :3000 with 1 data source")


@pytest.mark.parametrize(
    ("config", "url"),
    [
        ({}, "http://192.0.2.0:3000/"),
        ({"root-url": "https://lab.example/g/"}, "https://lab.example/g/"),
    ],
)
def test_leader_tells_providers_where_users_reach_grafana(ctx, installed, config, url):
    relation = cos_source({0: "http://10.0.0.5:9090"})

    out = ctx.run(
        ctx.on.relation_changed(relation), state(relations=[peers(), relation], config=config)
    )

    assert out.get_relation(relation.id).local_app_data["grafana_base_url"] == url


def test_legacy_prometheus2_with_basic_auth(ctx, installed):
    out = settle(ctx, installed, state())
    relation = legacy_source(
        {
            0: {
                "type": "prometheus",
                "url": "http://10.0.0.7:9090",
                "username": "u",
                "password": "p4ss",
            }
        }
    )

    ctx.run(ctx.on.relation_changed(relation), with_relation(out, relation))

    [entry] = installed.datasources()["datasources"]
    assert entry["uid"] == "lab_prometheus2_0"
    assert entry["url"] == "http://10.0.0.7:9090"
    assert entry["basicAuth"] is True
    assert entry["basicAuthUser"] == "u"
    assert entry["secureJsonData"] == {"basicAuthPassword": "p4ss"}


def test_only_the_first_data_source_is_the_default(ctx, installed):
    out = settle(ctx, installed, state())
    relation = cos_source({n: f"http://10.0.0.{n + 5}:9090" for n in range(3)})

    ctx.run(ctx.on.relation_changed(relation), with_relation(out, relation))

    entries = installed.datasources()["datasources"]
    assert [(e["uid"], e["isDefault"]) for e in entries] == [
        ("lab_prometheus_0", True),
        ("lab_prometheus_1", False),
        ("lab_prometheus_2", False),
    ]


def test_scale_prometheus_1_to_3_to_1(ctx, installed):
    out = settle(ctx, installed, state())
    urls = {n: f"http://10.0.0.{n + 5}:9090" for n in range(3)}
    counts, deleted = [], []
    # Scenario numbers relations process-wide: reuse the id it gave, never a fixed one.
    relation_id = cos_source({}).id
    for units in ({0: urls[0]}, urls, {0: urls[0]}):
        relation = cos_source(units, relation_id=relation_id)
        out = ctx.run(ctx.on.relation_changed(relation), with_relation(out, relation))
        doc = installed.datasources()
        counts.append(len(doc["datasources"]))
        deleted.append([d["name"] for d in doc["deleteDatasources"]])

    assert counts == [1, 3, 1]
    assert deleted == [[], [], ["lab/prometheus/1", "lab/prometheus/2"]]
    assert installed.api_calls == ["reload datasources"] * 3


def test_relation_removed_deletes_its_data_sources(ctx, installed):
    relation = cos_source({0: "http://10.0.0.5:9090"})
    out = settle(ctx, installed, state(relations=[peers(), relation]))

    out = ctx.run(ctx.on.relation_broken(out.get_relation(relation.id)), out)

    doc = installed.datasources()
    assert doc["datasources"] == []
    assert doc["deleteDatasources"] == [{"name": "lab/prometheus/0", "orgId": 1}]
    assert installed.api_calls == ["reload datasources"]


def test_deletions_grafana_has_applied_are_not_listed_again(ctx, installed):
    relation = cos_source({0: "http://10.0.0.5:9090", 1: "http://10.0.0.6:9090"})
    out = settle(ctx, installed, state(relations=[peers(), relation]))
    shrunk = cos_source({0: "http://10.0.0.5:9090"}, relation_id=relation.id)
    out = ctx.run(ctx.on.relation_departed(shrunk, remote_unit=1), with_relation(out, shrunk))
    assert installed.api_calls[-1] == "reload datasources"

    grown = cos_source(
        {0: "http://10.0.0.5:9090", 2: "http://10.0.0.7:9090"}, relation_id=relation.id
    )
    ctx.run(ctx.on.relation_changed(grown, remote_unit=2), with_relation(out, grown))

    assert installed.datasources()["deleteDatasources"] == []
    assert [d["name"] for d in installed.datasources()["datasources"]] == [
        "lab/prometheus/0",
        "lab/prometheus/2",
    ]


def test_deletions_survive_until_grafana_has_reloaded(ctx, installed):
    relation = cos_source({0: "http://10.0.0.5:9090", 1: "http://10.0.0.6:9090"})
    out = settle(ctx, installed, state(relations=[peers(), relation]))
    installed.api_down = True
    shrunk = cos_source({0: "http://10.0.0.5:9090"}, relation_id=relation.id)
    out = ctx.run(ctx.on.relation_departed(shrunk, remote_unit=1), with_relation(out, shrunk))
    assert out.unit_status.name == "waiting"

    gone = cos_source({}, relation_id=relation.id)
    out = ctx.run(ctx.on.relation_departed(gone, remote_unit=0), with_relation(out, gone))
    installed.api_down = False
    out = ctx.run(ctx.on.update_status(), out)

    names = [d["name"] for d in installed.datasources()["deleteDatasources"]]
    assert names == ["lab/prometheus/0", "lab/prometheus/1"]
    assert installed.api_calls[-1] == "reload datasources"
    assert out.unit_status.name == "active"


def test_a_reload_grafana_answers_with_500_waits_with_its_message_and_is_retried(ctx, installed):
    out = settle(ctx, installed, state(relations=[peers()]))
    installed.reload_fails = "Failed to provision data sources"
    relation = cos_source({0: "http://10.0.0.5:9090"})

    out = ctx.run(ctx.on.relation_changed(relation), with_relation(out, relation))

    assert out.unit_status == testing.WaitingStatus(
        "Grafana did not reload: POST reload datasources returned 500: "
        "Failed to provision data sources"
    )
    installed.reload_fails = ""
    calls = len(installed.api_calls)
    out = ctx.run(ctx.on.update_status(), out)

    assert installed.api_calls[calls:] == ["reload datasources"]
    assert out.unit_status.name == "active"
    out = ctx.run(ctx.on.update_status(), out)
    assert installed.api_calls[calls:] == ["reload datasources"]  # applied: not again


def test_grafana_rejecting_the_admin_password_blocks(ctx, installed):
    out = settle(ctx, installed, state())
    installed.admin_password = "changed-in-the-web-ui"
    relation = cos_source({0: "http://10.0.0.5:9090"})

    out = ctx.run(ctx.on.relation_changed(relation), with_relation(out, relation))

    assert out.unit_status == testing.BlockedStatus(
        "Grafana rejects the admin password: run reset-admin-password"
    )


HOSTILE_COS_APP_DATA = [
    "{not json",
    json.dumps(["a", "list"]),
    json.dumps({"model": "lab\n- name: injected", "type": "prometheus"}),
    json.dumps({"model": "lab", "type": "prometheus\nurl: http://evil"}),
]


@pytest.mark.parametrize("app_data", HOSTILE_COS_APP_DATA)
def test_hostile_cos_app_data_falls_back_to_legacy_keys_or_nothing(ctx, installed, app_data):
    out = settle(ctx, installed, state())
    relation = testing.Relation(
        "grafana-source",
        remote_app_name="prometheus",
        remote_app_data={"grafana_source_data": app_data},
        remote_units_data={
            0: {"grafana_source_host": "http://10.0.0.5:9090"},
            1: {"type": "prometheus", "url": "http://10.0.0.6:9090"},
        },
    )

    out = ctx.run(ctx.on.relation_changed(relation), with_relation(out, relation))

    entries = installed.datasources()["datasources"]
    assert [(e["name"], e["url"]) for e in entries] == [
        ("lab/prometheus/1", "http://10.0.0.6:9090")
    ]
    assert out.unit_status.name == "active"


HOSTILE_UNITS = [
    {"type": "prometheus", "url": "file:///etc/shadow"},
    {"type": "prometheus", "url": "javascript:alert(1)"},
    {"type": "prometheus", "url": "http://10.0.0.9:9090\n  isDefault: true"},
    {"type": "prometheus", "url": "http://" + "a" * 5000 + ":9090"},
    {"type": "prometheus\nname: injected", "url": "http://10.0.0.9:9090"},
    {"type": "prometheus", "url": "http://10.0.0.9:9090", "description": "x\ny: z"},
    {"type": "prometheus", "url": "http://10.0.0.9:9090", "username": "only-a-user"},
    {"type": "prometheus", "url": "http://10.0.0.9:9090", "description": "d" * 100_000},
    {"url": "http://10.0.0.9:9090"},
]


@pytest.mark.parametrize("unit_data", HOSTILE_UNITS)
def test_hostile_legacy_unit_is_skipped_and_never_reaches_the_file(ctx, installed, unit_data):
    out = settle(ctx, installed, state())
    good = {"type": "prometheus", "url": "http://10.0.0.5:9090"}
    relation = legacy_source({0: good, 1: unit_data})

    out = ctx.run(ctx.on.relation_changed(relation), with_relation(out, relation))

    entries = installed.datasources()["datasources"]
    assert [e["url"] for e in entries] == ["http://10.0.0.5:9090"]
    assert "injected" not in installed.files["datasources"]
    assert out.unit_status == testing.ActiveStatus("serving on :3000 with 1 data source")


def test_dollar_expansions_from_a_relation_are_escaped_for_grafana(ctx, installed):
    out = settle(ctx, installed, state())
    relation = cos_source(
        {0: "http://10.0.0.5:9090/$__file{/etc/grafana/grafana.ini}"},
        extra_fields={"httpMethod": "POST", "customQueryParameters": "a=${HOME}"},
    )

    ctx.run(ctx.on.relation_changed(relation), with_relation(out, relation))

    [entry] = installed.datasources()["datasources"]
    assert entry["url"] == "http://10.0.0.5:9090/$$__file{/etc/grafana/grafana.ini}"
    assert entry["jsonData"] == {"customQueryParameters": "a=$${HOME}", "httpMethod": "POST"}


# --- metrics-endpoint -------------------------------------------------------------------------


def test_leader_offers_grafana_metrics_in_the_cos_scrape_format(ctx, installed):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")

    out = ctx.run(ctx.on.relation_joined(relation), state(relations=[peers(), relation]))

    published = out.get_relation(relation.id)
    assert json.loads(published.local_app_data["scrape_jobs"]) == [
        {
            "job_name": "grafana",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": ["*:3000"]}],
        }
    ]
    assert json.loads(published.local_app_data["scrape_metadata"]) == {
        "model": "lab",
        "model_uuid": MODEL.uuid,
        "application": "grafana",
        "unit": "grafana/0",
        "charm_name": "grafana",
    }
    assert "alert_rules" not in published.local_app_data
    assert published.local_unit_data["prometheus_scrape_unit_address"] == "192.0.2.0"
    assert published.local_unit_data["prometheus_scrape_unit_name"] == "grafana/0"


def test_follower_offers_only_its_own_address(ctx, installed):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")

    out = ctx.run(
        ctx.on.relation_joined(relation), state(leader=False, relations=[peers(), relation])
    )

    published = out.get_relation(relation.id)
    assert "scrape_jobs" not in published.local_app_data
    assert published.local_unit_data["prometheus_scrape_unit_name"] == "grafana/0"


def test_port_change_updates_the_scrape_job(ctx, installed):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")

    out = ctx.run(
        ctx.on.config_changed(), state(relations=[peers(), relation], config={"port": 3100})
    )

    jobs = json.loads(out.get_relation(relation.id).local_app_data["scrape_jobs"])
    assert jobs[0]["static_configs"] == [{"targets": ["*:3100"]}]


# --- dashboards -------------------------------------------------------------------------------


def test_shipped_dashboards_are_provisioned_and_reloaded_when_they_change(ctx, installed):
    out = settle(ctx, installed, state())
    assert set(installed.dashboards) == {p.name for p in charm.DASHBOARDS.glob("*.json")}

    installed.dashboards = {}  # as if an upgrade shipped different dashboards
    out = ctx.run(ctx.on.upgrade_charm(), out)

    assert installed.api_calls == ["reload dashboards"]
    ctx.run(ctx.on.update_status(), out)
    assert installed.api_calls == ["reload dashboards"]  # applied: not reloaded again


def test_grafana_ini_is_parsed_by_configparser_as_yaml_is_by_yaml(ctx, installed):
    ctx.run(ctx.on.install(), state(relations=[peers(), cos_source({0: "http://10.0.0.5:9090"})]))

    assert ini(installed)["paths"]["provisioning"] == "/etc/grafana/provisioning"
    assert yaml.safe_load(installed.files["datasources"])["apiVersion"] == 1
