"""The Grafana charm on a shared PostgreSQL: the `database` relation, secret_key, HA peers."""

from __future__ import annotations

import configparser
import dataclasses
import json
from typing import Any
from unittest import mock

import ops
import pytest
import shared_database
from grafana_testing import (
    DATABASE_PASSWORD_FILE,
    SECRET_KEY_FILE,
    STORED_SECRET_KEY,
    FakeGrafana,
    password_secret,
    peers,
    secret_key_secret,
    state,
)
from ops import testing

DB_PASSWORD = "pw-from-the-provider"
CREDENTIALS = testing.Secret({"username": "relation-7", "password": DB_PASSWORD})


def db_relation(*, tls: str = "False", secret: testing.Secret | None = CREDENTIALS, **app: str):
    """A `database` relation to the postgresql charm, as its provider writes it."""
    data = {"endpoints": "10.1.2.3:5432", "database": "grafana", "version": "16.6", "tls": tls}
    if secret is not None:
        data["secret-user"] = secret.id
    return testing.Relation(
        "database", remote_app_name="postgresql", remote_app_data=data | app, id=7
    )


def ini(fake: FakeGrafana) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(fake.files["grafana.ini"])
    return {section: dict(parser[section]) for section in parser.sections()}


def peer_relation(out: testing.State) -> testing.PeerRelation:
    [relation] = [r for r in out.relations if isinstance(r, testing.PeerRelation)]
    return relation


def on_postgresql(*, leader: bool, schema_ready: bool = True, **kwargs: Any) -> testing.State:
    app = {"admin-password-generation": "1"}
    if schema_ready:
        app |= {shared_database.SCHEMA_READY: "7", shared_database.IN_USE: "postgresql"}
    kwargs.setdefault(
        "relations", [dataclasses.replace(peers(), local_app_data=app), db_relation()]
    )
    secrets = [password_secret(), secret_key_secret(), CREDENTIALS]
    return state(leader=leader, secrets=secrets, **kwargs)


# --- the leader goes first ---------------------------------------------------------------------


def test_leader_asks_for_the_database_and_starts_grafana_on_it(ctx, fake, caplog):
    caplog.set_level("DEBUG")
    out = ctx.run(ctx.on.install(), on_postgresql(leader=True, schema_ready=False))
    # The password goes to its file only: not to logs, status or any relation data.
    assert DB_PASSWORD not in caplog.text
    assert all(DB_PASSWORD not in str(r) for r in out.relations)

    assert ini(fake)["database"] == {
        "type": "postgres",
        "host": "10.1.2.3",
        "port": "5432",
        "name": "grafana",
        "user": "relation-7",
        "password": "$__file{/etc/grafana/database-password}",
        "ssl_mode": "disable",
    }
    assert fake.files[DATABASE_PASSWORD_FILE] == DB_PASSWORD
    assert ini(fake)["security"]["secret_key"] == "$__file{/etc/grafana/secret-key}"
    assert fake.files[SECRET_KEY_FILE] == STORED_SECRET_KEY
    assert fake.running
    assert not fake.sqlite_created
    [db] = [r for r in out.relations if r.endpoint == "database"]
    assert db.local_app_data["database"] == "grafana"
    assert "password" in json.loads(db.local_app_data["requested-secrets"])
    # Its Grafana serves on the database: the schema is there for the others.
    assert peer_relation(out).local_app_data[shared_database.SCHEMA_READY] == "7"
    assert out.unit_status.name == "active"
    assert {p.port for p in out.opened_ports} == {3000, 9095}
    assert DB_PASSWORD not in str(out.unit_status.message)


@pytest.mark.parametrize(("tls", "mode"), [("True", "require"), ("False", "disable")])
def test_tls_on_the_provider_makes_grafana_require_it(ctx, fake, tls, mode):
    relations = [peers(), db_relation(tls=tls)]
    ctx.run(ctx.on.install(), on_postgresql(leader=True, relations=relations))
    assert ini(fake)["database"]["ssl_mode"] == mode


def test_follower_waits_for_the_leaders_migrations_and_keeps_its_grafana_ini(ctx, installed):
    before = installed.files.get("grafana.ini")
    out = ctx.run(ctx.on.update_status(), on_postgresql(leader=False, schema_ready=False))

    assert out.unit_status == testing.WaitingStatus(
        "waiting for the leader to migrate the database schema"
    )
    assert installed.files.get("grafana.ini") == before
    assert DATABASE_PASSWORD_FILE not in installed.files
    [db] = [r for r in out.relations if r.endpoint == "database"]
    assert "database" not in db.local_app_data  # only the leader writes the request


def test_follower_moves_once_the_leader_reports_the_schema(ctx, installed):
    ctx.run(ctx.on.update_status(), on_postgresql(leader=False))
    assert ini(installed)["database"]["type"] == "postgres"
    assert installed.files[SECRET_KEY_FILE] == STORED_SECRET_KEY
    assert [s.kind for s in installed.starts] == ["restart"]


# --- relation data that is not there, or not usable --------------------------------------------


def test_partial_databag_waits_and_keeps_sqlite(ctx, fake):
    relation = db_relation(secret=None)  # the provider has not created the user yet
    out = ctx.run(ctx.on.install(), on_postgresql(leader=True, relations=[peers(), relation]))
    assert out.unit_status == testing.WaitingStatus(
        "waiting for the database relation's credentials"
    )
    assert "grafana.ini" not in fake.files
    assert not fake.running


def test_missing_secret_blocks_without_touching_grafana(ctx, installed):
    before = installed.files.get("grafana.ini")
    relations = [peers(), db_relation()]
    secrets = [password_secret(), secret_key_secret()]  # the credentials secret is not there
    out = ctx.run(ctx.on.update_status(), state(relations=relations, secrets=secrets))
    assert out.unit_status == testing.BlockedStatus(
        "cannot read the database credentials secret (missing or revoked)"
    )
    assert installed.files.get("grafana.ini") == before


def test_revoked_secret_blocks(ctx, installed):
    # Juju answers secret-get for a secret no longer granted with "permission denied".
    denied = ops.ModelError("ERROR permission denied")
    real = ops.Model.get_secret

    def get_secret(self, *, id=None, label=None):
        if id is not None:
            raise denied
        return real(self, id=id, label=label)

    with mock.patch.object(ops.Model, "get_secret", get_secret):
        out = ctx.run(ctx.on.update_status(), on_postgresql(leader=True))
    assert out.unit_status.message == (
        "cannot read the database credentials secret (missing or revoked)"
    )


def test_bad_endpoint_blocks_and_writes_nothing(ctx, installed):
    before = installed.files.get("grafana.ini")
    relation = db_relation(endpoints="10.1.2.3:5432\n[security]")
    out = ctx.run(
        ctx.on.update_status(), on_postgresql(leader=True, relations=[peers(), relation])
    )
    assert out.unit_status == testing.BlockedStatus(
        "the database relation gave an endpoint without a valid port"
    )
    assert installed.files.get("grafana.ini") == before


# --- never switch silently ---------------------------------------------------------------------


def test_a_sqlite_with_users_and_dashboards_is_not_left_behind_silently(ctx, installed):
    installed.sqlite_content = (2, 5)
    before = installed.files.get("grafana.ini")
    out = ctx.run(ctx.on.update_status(), on_postgresql(leader=True, schema_ready=False))
    assert out.unit_status == testing.BlockedStatus(
        "local sqlite holds 2 users, 5 dashboards: copy them (docs/scale-out.md), "
        "then run confirm-database-switch"
    )
    assert installed.files.get("grafana.ini") == before

    out = ctx.run(ctx.on.action("confirm-database-switch"), out)
    assert "PostgreSQL" in ctx.action_results["message"]  # type: ignore[index]
    out = ctx.run(ctx.on.update_status(), out)
    assert ini(installed)["database"]["type"] == "postgres"
    assert out.unit_status.name == "active"


def test_relation_removed_blocks_instead_of_an_empty_sqlite(ctx, fake):
    out = ctx.run(ctx.on.install(), on_postgresql(leader=True))
    on_postgres = fake.files["grafana.ini"]
    [db] = [r for r in out.relations if r.endpoint == "database"]

    out = ctx.run(ctx.on.relation_broken(db), out)
    assert out.unit_status == testing.BlockedStatus(
        "database relation removed: relate PostgreSQL again, or run confirm-database-switch "
        "to go back to sqlite"
    )
    assert fake.files["grafana.ini"] == on_postgres

    out = dataclasses.replace(out, relations=[peer_relation(out)])
    out = ctx.run(ctx.on.action("confirm-database-switch"), out)
    assert shared_database.IN_USE not in peer_relation(out).local_app_data
    out = ctx.run(ctx.on.update_status(), out)
    assert "database" not in ini(fake)
    assert out.unit_status.name == "active"


def test_a_follower_blocks_too_when_the_relation_is_gone(ctx, installed):
    app = {shared_database.IN_USE: "postgresql", "admin-password-generation": "1"}
    relation = dataclasses.replace(peers(), local_app_data=app)
    out = ctx.run(ctx.on.update_status(), state(leader=False, relations=[relation]))
    assert out.unit_status.name == "blocked"
    assert "confirm-database-switch" in out.unit_status.message


def test_confirm_with_nothing_waiting_fails(ctx, installed):
    with pytest.raises(testing.ActionFailed, match="nothing to confirm"):
        ctx.run(ctx.on.action("confirm-database-switch"), state())


def test_confirm_on_a_follower_fails(ctx, installed):
    with pytest.raises(testing.ActionFailed, match="leader"):
        ctx.run(ctx.on.action("confirm-database-switch"), state(leader=False))


# --- secret_key ----------------------------------------------------------------------------------


def test_a_new_sqlite_grafana_gets_the_application_key(ctx, fake):
    ctx.run(ctx.on.install(), state())
    assert ini(fake)["security"]["secret_key"] == "$__file{/etc/grafana/secret-key}"
    assert fake.files[SECRET_KEY_FILE] == STORED_SECRET_KEY


def test_an_existing_sqlite_grafana_keeps_its_key(ctx, installed):
    # Its data-source secrets are encrypted with Grafana's default key: a new one loses them.
    ctx.run(ctx.on.upgrade_charm(), state())
    assert "secret_key" not in ini(installed)["security"]
    assert SECRET_KEY_FILE not in installed.files


def test_leader_creates_the_key_and_every_unit_gets_the_same(ctx, fake):
    out = ctx.run(ctx.on.install(), state(secrets=[]))
    [key] = [s for s in out.secrets if s.label == shared_database.SECRET_KEY_LABEL]
    assert fake.files[SECRET_KEY_FILE] == key.tracked_content["secret-key"]
    assert len(fake.files[SECRET_KEY_FILE]) >= 40
    assert fake.files[SECRET_KEY_FILE] != "SW2YcwTIb9zpOOhoPsMm"


def test_follower_of_a_new_sqlite_waits_for_the_key(ctx, fake):
    out = ctx.run(ctx.on.install(), state(leader=False, secrets=[password_secret()]))
    assert out.unit_status == testing.WaitingStatus(
        "waiting for the leader to create the secret key"
    )
    assert not fake.running


# --- Grafana-managed alerting HA -----------------------------------------------------------------


def test_ha_peers_list_every_unit_on_9095(ctx, fake):
    relation = dataclasses.replace(
        peers(),
        peers_data={
            1: {"ingress-address": "10.0.0.12"},
            2: {"ingress-address": "10.0.0.13"},
            3: {"ingress-address": "not an address; [x]"},
        },
    )
    ctx.run(ctx.on.install(), on_postgresql(leader=True, relations=[relation, db_relation()]))
    alerting = ini(fake)["unified_alerting"]
    assert alerting["ha_listen_address"] == "0.0.0.0:9095"
    peers_listed = alerting["ha_peers"].split(",")
    assert "10.0.0.12:9095" in peers_listed
    assert "10.0.0.13:9095" in peers_listed
    assert alerting["ha_advertise_address"] in peers_listed
    assert len(peers_listed) == 3  # the bad address is left out
    assert all(not p.endswith(":9094") for p in peers_listed)


def test_sqlite_units_form_no_alerting_cluster(ctx, fake):
    out = ctx.run(ctx.on.install(), state())
    assert "unified_alerting" not in ini(fake)
    assert {p.port for p in out.opened_ports} == {3000}


def test_a_rotated_database_password_restarts_grafana_with_it(ctx, fake):
    out = ctx.run(ctx.on.install(), on_postgresql(leader=True))
    assert [s.kind for s in fake.starts] == ["start"]
    rotated = dataclasses.replace(
        CREDENTIALS, latest_content={"username": "relation-7", "password": "rotated-pw-2"}
    )
    others = [s for s in out.secrets if s.id != CREDENTIALS.id]
    out = dataclasses.replace(out, secrets=[*others, rotated])
    # Grafana reads $__file{} only when it starts: the new password needs a restart.
    ctx.run(ctx.on.secret_changed(rotated), out)
    assert fake.files[DATABASE_PASSWORD_FILE] == "rotated-pw-2"
    assert [s.kind for s in fake.starts] == ["start", "restart"]


def test_the_leader_asks_as_soon_as_the_relation_is_created(ctx, installed):
    relation = testing.Relation("database", remote_app_name="postgresql")
    out = ctx.run(ctx.on.relation_created(relation), state(relations=[peers(), relation]))
    [db] = [r for r in out.relations if r.endpoint == "database"]
    assert db.local_app_data["database"] == "grafana"
    assert out.unit_status == testing.WaitingStatus(
        "waiting for the database relation's credentials"
    )
