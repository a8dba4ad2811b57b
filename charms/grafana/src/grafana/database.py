"""The `database` endpoint (interface postgresql_client, v0 databag) without ops, and its files.

Wire format, from the data platform's own code (facts, not code, carried over):

- canonical/data-platform-libs lib/charms/data_platform_libs/v0/data_interfaces.py: the requirer
  writes application data `database` (the name it wants), optionally `extra-user-roles`, and
  `requested-secrets` (a JSON list: `REQ_SECRET_FIELDS = "requested-secrets"`); fields the
  requirer asked for as secrets are sent as a Juju secret whose id is in `secret-<group>`
  (`PROV_SECRET_PREFIX = "secret-"`; `SECRET_LABEL_MAP`: username, password, uris and
  read-only-uris in group `user`, tls and tls-ca in group `tls`), the others in plain app data.
- canonical/postgresql-operator src/relations/postgresql_provider.py: the provider answers with
  `endpoints` = "<primary>:5432" (`set_endpoints`), `database`, `version`, `tls` = "True" or
  "False" (`set_tls`), and the credentials (`set_credentials`: username `relation-<id>`).

Grafana reads what this module renders in grafana.ini's `[database]`
(pkg/services/sqlstore/database_config.go `readConfig`: type, host, name, user, password,
ssl_mode; `buildConnectionString` splits host:port with a default port 5432 and passes
`sslmode` on to lib/pq); `$__file{}` is pkg/setting/expanders.go's file expander (contents
whitespace-trimmed).

Why not the data platform's PyPI package (dpcharmlibs-interfaces): its requirer speaks only the
v1 databag, which the PostgreSQL 16 charm on Charmhub does not answer, and it added 9.4 MB to
the charm and about 190 ms to every hook (measured in an earlier session; docs/relations.md).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import sqlite3
from collections.abc import Callable, Mapping

from lab_monitoring import files

from grafana import paths

RELATION = "database"
DATABASE_NAME = "grafana"
# Fields we ask the provider to send as a Juju secret: the password never sits in plain
# relation data (`uris` carries it too, in postgresql-operator's set_uris).
REQUESTED_SECRETS = ("username", "password", "uris", "read-only-uris")
DEFAULT_PORT = 5432

_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
# What may go into an unquoted grafana.ini value and a libpq keyword=value string unharmed.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,62}")


class DatabaseError(Exception):
    """The provider's answer cannot be used; the message is for `juju status` (no secrets)."""


@dataclasses.dataclass(frozen=True)
class Database:
    """What Grafana needs to reach its PostgreSQL database."""

    host: str  # host:port, as grafana.ini's `host` takes it ([ipv6]:port for IPv6)
    name: str
    user: str
    password: str = dataclasses.field(repr=False)
    tls: bool

    @property
    def ssl_mode(self) -> str:
        """lib/pq's sslmode: `require` (encrypted, certificate not checked) or `disable`.

        The provider's CA (`tls-ca`) is not written, so `verify-full` is not offered.
        """
        return "require" if self.tls else "disable"


def request(extra_user_roles: str = "") -> dict[str, str]:
    """Return the application data the requirer writes."""
    data = {"database": DATABASE_NAME, "requested-secrets": json.dumps(list(REQUESTED_SECRETS))}
    if extra_user_roles:
        data["extra-user-roles"] = extra_user_roles
    return data


def parse(
    app_data: Mapping[str, str], read_secret: Callable[[str], Mapping[str, str]]
) -> Database | None:
    """Return the database the provider's application data describes; None until it is complete.

    `read_secret(secret_id)` returns a Juju secret's content; it raises DatabaseError when the
    secret cannot be read (missing, revoked). Raises DatabaseError for data that is there but
    unusable.
    """
    data = dict(app_data)
    for group in ("user", "tls"):
        secret_id = data.get(f"secret-{group}")
        if secret_id:
            content = read_secret(secret_id)
            data |= {k: v for k, v in content.items() if k in ("username", "password", "tls")}
    needed = ("endpoints", "database", "username", "password")
    if any(not data.get(key) for key in needed):
        return None
    host = _first_endpoint(data["endpoints"])
    name, user, password = data["database"], data["username"], data["password"]
    for what, value in (("database name", name), ("user name", user)):
        if not _NAME.fullmatch(value):
            raise DatabaseError(f"the database relation gave an unusable {what}")
    if password != password.strip() or not password.isprintable() or len(password) > 1024:
        # Grafana's file expander trims whitespace; libpq's keyword=value needs one line.
        raise DatabaseError("the database relation gave an unusable password")
    tls = data.get("tls", "False").strip().lower()
    if tls not in ("true", "false"):
        raise DatabaseError(f"the database relation gave tls={tls[:10]!r}, not True or False")
    return Database(host=host, name=name, user=user, password=password, tls=tls == "true")


def _first_endpoint(endpoints: str) -> str:
    """Return the first "host:port" of the provider's comma-separated list, checked."""
    first = endpoints.split(",")[0].strip()
    host, sep, port = first.rpartition(":")
    if not sep:
        host, port = first, str(DEFAULT_PORT)
    host = host.removeprefix("[").removesuffix("]")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise DatabaseError("the database relation gave an endpoint without a valid port")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            raise DatabaseError("the database relation gave an unusable endpoint") from None
        return f"{host}:{int(port)}"
    return f"[{address}]:{int(port)}" if address.version == 6 else f"{address}:{int(port)}"


def render_section(database: Database) -> str:
    """Return grafana.ini's `[database]` section for `database` (the password by file).

    Where the port goes depends on the Grafana release, so the default port is written in the
    one form that every reading below takes to the same address:
    - `dbCfg.Host = sec.Key("host")`, then `util.SplitHostPortDefault(host, "127.0.0.1",
      "5432")` (database_config.go readConfig / buildConnectionString, the form of the
      releases before 12): `host = h:p`, or `host = h` for 5432;
    - `Host = host + ":" + port`, unconditionally (a grafana/grafana snapshot at 04256a02):
      `host = h` with `port = p`; `host = h:p` becomes "h:p:", which Go's SplitHostPort
      refuses ("too many colons"), and Grafana does not start;
    - `host`, then `":" + port` only when `port` is set (pkg/storage/unified/sql/dbimpl): both.
    `host = h` with `port = 5432` is read as h:5432 by all three. Another port (the PostgreSQL
    charm always serves 5432) is written as `host = h:p`, the form of released Grafana's own
    defaults.ini (`host = 127.0.0.1:3306`), which the second form would refuse.
    """
    host, _, port = database.host.rpartition(":")
    where = (
        f"host = {host}\nport = {port}\n"
        if int(port) == DEFAULT_PORT
        else f"host = {database.host}\n"
    )
    return (
        "\n[database]\n"
        "type = postgres\n"
        f"{where}"
        f"name = {database.name}\n"
        f"user = {database.user}\n"
        f"password = $__file{{{paths.PATHS.database_password}}}\n"
        f"ssl_mode = {database.ssl_mode}\n"
    )


def write_password(password: str) -> bool:
    """Install the database password file grafana.ini names (root:grafana 0640)."""
    return files.write(
        paths.PATHS.database_password, password, mode=0o640, group=paths.PATHS.group
    )


def local_content() -> tuple[int, int] | None:
    """Return (users, dashboards not provisioned) in this unit's sqlite database; None if absent.

    What a switch to PostgreSQL would leave behind: Grafana creates the first administrator
    itself, so one user is not counted as content; the charm's own dashboards are provisioned.
    Read-only; a database Grafana has not created its tables in yet counts as empty. Tables
    and columns from Grafana's migrations (pkg/services/sqlstore/migrations: `user`;
    dashboard_mig.go: `dashboard.is_folder`, `dashboard_provisioning.dashboard_id`). Not
    counted: dashboards a Grafana keeps only in its newer unified storage tables, if any.
    """
    where = paths.PATHS.sqlite
    if not where.exists():
        return None
    try:
        with sqlite3.connect(f"file:{where}?mode=ro", uri=True, timeout=5) as db:
            users = db.execute("SELECT COUNT(*) FROM user").fetchone()[0]
            dashboards = db.execute(
                "SELECT COUNT(*) FROM dashboard WHERE is_folder = 0 AND id NOT IN "
                "(SELECT dashboard_id FROM dashboard_provisioning)"
            ).fetchone()[0]
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return (0, 0)
        raise DatabaseError(f"cannot read the local sqlite database: {e}") from None
    return (max(users - 1, 0), dashboards)
