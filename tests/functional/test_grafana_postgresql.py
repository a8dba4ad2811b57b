"""What the Grafana charm writes for its `database` relation, against a real PostgreSQL.

A throwaway PostgreSQL cluster (Debian's postgresql, initdb and pg_ctl as user postgres, on
loopback, with TLS on) gets a role and a database the way the PostgreSQL charm's provider makes
them (canonical/postgresql-operator src/relations/postgresql_provider.py: user
`relation-<id>` with a password, database owned by it). The charm's own code turns the
provider's databag into grafana.ini and the password file; the test then connects with psql
using exactly what grafana.ini names, read the way Grafana reads it:
pkg/services/sqlstore/database_config.go (type, host split into host and port with default
5432, name, user, password, ssl_mode passed on as libpq's sslmode) and pkg/setting/expanders.go
(`$__file{path}`: the file's content, whitespace trimmed).

There is no Grafana binary on this machine: Grafana itself never connects here.
"""

from __future__ import annotations

import configparser
import grp
import importlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "charms" / "grafana" / "src"))

import shared_database
from grafana import database, paths

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)
ROLE, PASSWORD = "relation-7", "Pw-from-the-provider_1"

pytestmark = pytest.mark.skipif(
    PG_BIN is None or shutil.which("psql") is None or shutil.which("openssl") is None,
    reason="needs Debian's postgresql (initdb, pg_ctl, psql) and openssl",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*cmd: str, **kwargs) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *cmd], check=True, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def postgresql() -> Iterator[int]:
    """A PostgreSQL with TLS on 127.0.0.1, a role and a database as the provider makes them."""
    assert PG_BIN is not None
    # Not under pytest's tmp_path: user postgres cannot walk into root's 0700 pytest-of-root.
    with tempfile.TemporaryDirectory(prefix="grafana-pg-") as directory:
        yield from _cluster(Path(directory))


def _cluster(base: Path) -> Iterator[int]:
    assert PG_BIN is not None
    data, sockets = base / "data", base / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    _as_postgres(
        str(PG_BIN / "initdb"), "-D", str(data), "--auth-local=trust",
        "--auth-host=scram-sha-256", "-U", "postgres",
    )  # fmt: skip
    _as_postgres(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=127.0.0.1", "-keyout", str(data / "server.key"),
        "-out", str(data / "server.crt"),
    )  # fmt: skip
    os.chmod(data / "server.key", 0o600)
    port = _free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c ssl=on"
    _as_postgres(
        str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w",
        "start",
    )  # fmt: skip
    try:
        sql = (
            f"CREATE ROLE \"{ROLE}\" WITH LOGIN PASSWORD '{PASSWORD}';"
            f'CREATE DATABASE grafana OWNER "{ROLE}";'
        )
        for statement in sql.split(";")[:-1]:
            _as_postgres("psql", "-h", str(sockets), "-p", str(port), "-U", "postgres",
                         "-v", "ON_ERROR_STOP=1", "-c", statement)  # fmt: skip
        yield port
    finally:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop")


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> paths.Paths:
    moved = paths.Paths.under(tmp_path, group=grp.getgrgid(os.getgid()).gr_name)
    monkeypatch.setattr(paths, "PATHS", moved)
    return moved


def charm_writes(port: int, *, tls: str) -> configparser.ConfigParser:
    """Run the charm's code on the provider's databag; return the grafana.ini it renders."""
    provider = {
        "endpoints": f"127.0.0.1:{port}", "database": "grafana", "version": "16.6",
        "tls": tls, "secret-user": "secret:creds",
    }  # fmt: skip
    found = database.parse(provider, lambda _id: {"username": ROLE, "password": PASSWORD})
    assert found is not None
    plan = shared_database.Plan(found, 7, "k" * 43, "10.0.0.11:9095", ("10.0.0.11:9095",))
    # The charm's default options (the module is the charm's config.py: several charms have one).
    options = importlib.import_module("config").GrafanaConfig()
    text, _ = shared_database.write_files(options, plan)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def expand(value: str) -> str:
    """pkg/setting/expanders.go's file expander: `$__file{path}` is the file, trimmed."""
    if value.startswith("$__file{") and value.endswith("}"):
        return Path(value[len("$__file{") : -1]).read_text().strip()
    return value


def connect_as_grafana_would(section: configparser.SectionProxy, sql: str) -> str:
    """Psql with exactly the [database] settings, as database_config.go passes them on."""
    assert section["type"] == "postgres"
    # `port`, when written, follows `host` (database_config.go readConfig, newer releases).
    address = section["host"] + (f":{section['port']}" if "port" in section else "")
    host, _, port = address.rpartition(":")
    env = {
        "PATH": os.environ["PATH"], "PGHOST": host, "PGPORT": port or "5432",
        "PGDATABASE": section["name"], "PGUSER": section["user"],
        "PGPASSWORD": expand(section["password"]), "PGSSLMODE": section["ssl_mode"],
        "PGCONNECT_TIMEOUT": "10",
    }  # fmt: skip
    done = subprocess.run(
        ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize(("tls", "encrypted"), [("True", "t"), ("False", "f")])
def test_grafana_ini_names_a_database_that_accepts_the_written_password(
    postgresql, where, tls, encrypted
):
    ini = charm_writes(postgresql, tls=tls)
    section = ini["database"]
    assert section["ssl_mode"] == ("require" if tls == "True" else "disable")
    assert section["password"] == f"$__file{{{where.database_password}}}"
    stat = where.database_password.stat()
    assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) == (0, os.getgid(), 0o640)

    sql = (
        "SELECT current_user || ' ' || current_database() || ' ' || "
        "(SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid())"
    )
    user, name, ssl = connect_as_grafana_would(section, sql).split()
    assert (user, name) == (ROLE, "grafana")
    assert ssl[0] == encrypted
    # Grafana runs its migrations as this user: it may create tables in its database.
    connect_as_grafana_would(
        section, "CREATE TABLE grafana_probe (id int); DROP TABLE grafana_probe"
    )


def test_a_wrong_password_file_is_refused(postgresql, where):
    ini = charm_writes(postgresql, tls="True")
    where.database_password.write_text("not-the-password")
    with pytest.raises(AssertionError, match="password authentication failed"):
        connect_as_grafana_would(ini["database"], "SELECT 1")


def test_secret_key_and_ha_settings_are_files_and_keys_grafana_reads(postgresql, where):
    ini = charm_writes(postgresql, tls="False")
    assert expand(ini["security"]["secret_key"]) == "k" * 43
    assert (where.secret_key.stat().st_mode & 0o777) == 0o640
    alerting = ini["unified_alerting"]
    # setting_unified_alerting.go: ha_listen_address, ha_advertise_address, ha_peers (split on
    # commas, trimmed); its default listen address 0.0.0.0:9094 is Alertmanager's.
    assert alerting["ha_listen_address"] == "0.0.0.0:9095"
    assert [p.strip() for p in alerting["ha_peers"].split(",")] == ["10.0.0.11:9095"]
