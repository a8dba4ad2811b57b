"""grafana.database: the postgresql_client v0 databag as the PostgreSQL charm writes it."""

from __future__ import annotations

import configparser
import grp
import json
import os
import sqlite3
from pathlib import Path

import pytest
from grafana import database, paths

# What canonical/postgresql-operator's provider writes (src/relations/postgresql_provider.py)
# through data_interfaces v0 when the requirer asked for username and password as secrets.
SECRET_ID = "secret:cs7dkqdr1mlgkfg4v1u0"
PLAIN = {"endpoints": "10.1.2.3:5432", "database": "grafana", "version": "16.6", "tls": "False"}
CREDENTIALS = {"username": "relation-7", "password": "pw-from-the-provider"}


def read_only(secrets: dict[str, dict[str, str]]):
    def read(secret_id: str) -> dict[str, str]:
        if secret_id not in secrets:
            raise database.DatabaseError("cannot read the database credentials secret")
        return secrets[secret_id]

    return read


def test_the_request_names_the_database_and_asks_for_the_credentials_as_secrets():
    data = database.request()
    assert data["database"] == "grafana"
    assert set(json.loads(data["requested-secrets"])) >= {"username", "password", "uris"}
    assert "extra-user-roles" not in data
    assert database.request("CREATEDB")["extra-user-roles"] == "CREATEDB"


def test_credentials_in_a_secret_are_read_through_it():
    data = PLAIN | {"secret-user": SECRET_ID}
    found = database.parse(data, read_only({SECRET_ID: CREDENTIALS}))
    assert found == database.Database(
        host="10.1.2.3:5432", name="grafana", user="relation-7",
        password="pw-from-the-provider", tls=False,
    )  # fmt: skip
    assert "pw-from-the-provider" not in repr(found)


def test_credentials_in_plain_data_are_accepted_too():
    # A provider whose library predates secrets (or a requirer that did not ask for them).
    found = database.parse(PLAIN | CREDENTIALS, read_only({}))
    assert found is not None
    assert found.user == "relation-7"


@pytest.mark.parametrize("missing", ["endpoints", "database", "username", "password"])
def test_a_partial_databag_is_not_a_database_yet(missing):
    data = {k: v for k, v in (PLAIN | CREDENTIALS).items() if k != missing}
    assert database.parse(data, read_only({})) is None


def test_a_secret_that_cannot_be_read_is_an_error():
    with pytest.raises(database.DatabaseError, match="secret"):
        database.parse(PLAIN | {"secret-user": SECRET_ID}, read_only({}))


@pytest.mark.parametrize(
    ("tls", "mode"), [("True", "require"), ("False", "disable"), (None, "disable")]
)
def test_tls_chooses_the_ssl_mode(tls, mode):
    data = PLAIN | CREDENTIALS | ({} if tls is None else {"tls": tls})
    data = {k: v for k, v in data.items() if k != "tls" or tls is not None}
    found = database.parse(data, read_only({}))
    assert found is not None
    assert found.ssl_mode == mode


def test_tls_from_the_tls_secret_group():
    data = PLAIN | CREDENTIALS | {"secret-tls": "secret:tls"}
    found = database.parse(data, read_only({"secret:tls": {"tls": "True", "tls-ca": "PEM"}}))
    assert found is not None
    assert found.ssl_mode == "require"


@pytest.mark.parametrize(
    ("endpoints", "host"),
    [
        ("10.1.2.3:5432,10.1.2.4:5432", "10.1.2.3:5432"),
        ("db.lab.example:6432", "db.lab.example:6432"),
        ("10.1.2.3", "10.1.2.3:5432"),
        ("[fd00::5]:5432", "[fd00::5]:5432"),
    ],
)
def test_the_first_endpoint_is_grafanas_host(endpoints, host):
    found = database.parse(PLAIN | CREDENTIALS | {"endpoints": endpoints}, read_only({}))
    assert found is not None
    assert found.host == host


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"endpoints": "10.1.2.3:99999"}, "valid port"),
        ({"endpoints": "10.1.2.3:54x"}, "valid port"),
        ({"endpoints": "evil host\n[security]:5432"}, "unusable endpoint"),
        ({"username": "relation-7\nadmin_user = x"}, "unusable user name"),
        ({"database": "grafana;drop"}, "unusable database name"),
        ({"password": "ends with a space "}, "unusable password"),
        ({"password": "two\nlines"}, "unusable password"),
        ({"tls": "maybe"}, "not True or False"),
    ],
)
def test_unusable_data_is_refused_before_it_reaches_grafana_ini(change, message):
    with pytest.raises(database.DatabaseError, match=message) as refused:
        database.parse(PLAIN | CREDENTIALS | change, read_only({}))
    assert "pw-from-the-provider" not in str(refused.value)


def rendered(monkeypatch, tmp_path, **change: str) -> dict[str, str]:
    """The [database] section the charm writes for the provider's data with `change` applied."""
    monkeypatch.setattr(paths, "PATHS", paths.Paths.under(tmp_path, group="root"))
    found = database.parse(PLAIN | CREDENTIALS | change, read_only({}))
    assert found is not None
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(database.render_section(found))
    return dict(parser["database"])


def test_the_section_is_what_grafanas_readconfig_reads(monkeypatch, tmp_path):
    assert rendered(monkeypatch, tmp_path, tls="True") == {
        "type": "postgres",  # migrator.Postgres
        "host": "10.1.2.3",
        "port": "5432",
        "name": "grafana",
        "user": "relation-7",
        "password": f"$__file{{{tmp_path}/etc/grafana/database-password}}",
        "ssl_mode": "require",
    }


def _split_host_port_default(text: str) -> tuple[str, str]:
    """Grafana's util.SplitHostPortDefault(text, "127.0.0.1", "5432"), as Go would split it.

    pkg/util/ip_address.go adds the default port only when there is no colon after the
    brackets; Go's net.SplitHostPort then refuses a host with a colon outside brackets.
    """
    start = text.rfind("]") if text.startswith("[") else 0
    if ":" not in text[start:]:
        text += ":5432"
    host, _, port = text.rpartition(":")
    if ":" in host.removeprefix("[").removesuffix("]") and not host.startswith("["):
        raise ValueError(f"too many colons in address {text}")
    return host.removeprefix("[").removesuffix("]"), port


# How Grafana releases read [database] host and port (see render_section's docstring).
_READINGS = {
    "host alone": lambda s: s["host"],
    "host + : + port": lambda s: s["host"] + ":" + s.get("port", ""),
    "host, + : + port when set": lambda s: s["host"] + (":" + s["port"] if "port" in s else ""),
}


@pytest.mark.parametrize("reading", _READINGS)
@pytest.mark.parametrize(
    ("endpoints", "address"),
    [("10.1.2.3:5432", ("10.1.2.3", "5432")), ("[fd00::7]:5432", ("fd00::7", "5432"))],
)
def test_every_grafana_reading_of_the_section_reaches_the_default_port(
    monkeypatch, tmp_path, reading, endpoints, address
):
    # host = 10.1.2.3:5432 without `port` was refused by the second reading (host "…:5432:").
    section = rendered(monkeypatch, tmp_path, endpoints=endpoints)

    assert _split_host_port_default(_READINGS[reading](section)) == address


def test_another_port_is_written_with_the_host_as_released_grafana_reads_it(monkeypatch, tmp_path):
    section = rendered(monkeypatch, tmp_path, endpoints="db.lab:6432")

    assert section["host"] == "db.lab:6432"
    assert "port" not in section
    assert _split_host_port_default(_READINGS["host alone"](section)) == ("db.lab", "6432")


def _grafana_sqlite(path: Path, users: int, dashboards: int, provisioned: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE user (id INTEGER PRIMARY KEY, login TEXT)")
        db.execute("CREATE TABLE dashboard (id INTEGER PRIMARY KEY, is_folder INTEGER)")
        db.execute("CREATE TABLE dashboard_provisioning (id INTEGER PRIMARY KEY, dashboard_id)")
        db.executemany("INSERT INTO user (login) VALUES (?)", [(f"u{i}",) for i in range(users)])
        for i in range(dashboards + provisioned):
            db.execute("INSERT INTO dashboard (is_folder) VALUES (0)")
            if i < provisioned:
                db.execute(
                    "INSERT INTO dashboard_provisioning (dashboard_id) VALUES (?)", (i + 1,)
                )
        db.execute("INSERT INTO dashboard (is_folder) VALUES (1)")  # a folder is not content


def test_local_content_counts_what_a_switch_would_leave_behind(monkeypatch, tmp_path):
    group = grp.getgrgid(os.getgid()).gr_name
    where = paths.Paths.under(tmp_path, group=group)
    monkeypatch.setattr(paths, "PATHS", where)
    assert database.local_content() is None

    _grafana_sqlite(where.sqlite, users=1, dashboards=0, provisioned=2)
    assert database.local_content() == (0, 0)  # the administrator and the charm's dashboards

    where.sqlite.unlink()
    _grafana_sqlite(where.sqlite, users=3, dashboards=4, provisioned=2)
    assert database.local_content() == (2, 4)


def test_a_sqlite_file_without_grafanas_tables_is_empty(monkeypatch, tmp_path):
    where = paths.Paths.under(tmp_path, group="root")
    monkeypatch.setattr(paths, "PATHS", where)
    where.sqlite.parent.mkdir(parents=True)
    sqlite3.connect(where.sqlite).close()
    assert database.local_content() == (0, 0)
