"""Juju wiring for Grafana on a shared PostgreSQL: the `database` relation, secret_key, HA peers.

Without a `database` relation every unit keeps its own sqlite, as before. With one:

- the leader asks for database `grafana` (grafana.database.request) and starts Grafana on it
  first, so that it alone runs the schema migrations; once its Grafana serves, it records the
  relation in peer application data (SCHEMA_READY) and the other units follow;
- a unit whose own sqlite holds users or dashboards of its own does not switch until the
  operator has copied them by hand and runs `confirm-database-switch` (docs/scale-out.md);
- every unit gets the same [security] secret_key, from an application secret the leader
  creates (Grafana encrypts data-source secrets in the shared database with it);
- Grafana-managed alerting forms one cluster over the peers, on ini.HA_PORT.

The relation removed while the application uses PostgreSQL blocks the unit (grafana.ini is
left as it is) until a database is related again or `confirm-database-switch` accepts the
return to each unit's own sqlite: Grafana never silently comes back on an empty sqlite.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
import secrets

import ops

import config
from grafana import database, ini

logger = logging.getLogger(__name__)

SECRET_KEY_LABEL = "secret-key"  # noqa: S105 (a label, not a key)
# Peer application data, written by the leader.
SCHEMA_READY = "database-schema-ready"  # the relation whose schema the leader's Grafana made
IN_USE = "database-in-use"  # "postgresql" while the application runs on the relation's database
CONFIRMED = "database-switch-confirmed"  # the relation id the operator let units switch to
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


@dataclasses.dataclass(frozen=True)
class Plan:
    """The database and cluster settings this unit's grafana.ini should carry."""

    database: database.Database | None = None  # None: Grafana's own sqlite
    relation_id: int | None = None
    secret_key: str | None = None
    ha_advertise: str = ""
    ha_peers: tuple[str, ...] = ()


class SharedDatabase:
    """Decides, once per hook, which database this unit's Grafana uses."""

    def __init__(self, charm: ops.CharmBase, peers: str, stored: ops.StoredState):
        self._charm = charm
        self._peers = peers
        # on_database: the relation id this unit last rendered; secret_key_used: this unit's
        # Grafana database was created with (or moved to) the application's secret_key.
        self._stored = stored
        self._key: str | None = None

    # --- the decision -------------------------------------------------------------------------

    def plan(self) -> Plan | ops.StatusBase:
        """Return what grafana.ini should say, or the status that says why it must not change."""
        charm = self._charm
        shared = self._peer_data()
        relation = self.relation()
        if relation is None:
            if shared.get(IN_USE):
                return ops.BlockedStatus(
                    "database relation removed: relate PostgreSQL again, or run "
                    "confirm-database-switch to go back to sqlite"
                )
            return self._sqlite_plan()
        if charm.unit.is_leader():
            wanted = database.request()
            if any(relation.data[charm.app].get(k) != v for k, v in wanted.items()):
                relation.data[charm.app].update(wanted)
        remote = relation.data[relation.app] if relation.app else {}
        try:
            found = database.parse(remote, self._read_secret)
            refusal = self._switch_refusal(relation.id, shared)
        except database.DatabaseError as e:
            return ops.BlockedStatus(str(e)[:120])
        if found is None:
            return ops.WaitingStatus("waiting for the database relation's credentials")
        if refusal is not None:
            return refusal
        if not charm.unit.is_leader() and shared.get(SCHEMA_READY) != str(relation.id):
            return ops.WaitingStatus("waiting for the leader to migrate the database schema")
        key = self.secret_key(create=True)
        if key is None:
            return ops.WaitingStatus("waiting for the leader to create the secret key")
        advertise, peers = self._ha_addresses()
        return Plan(found, relation.id, key, advertise, peers)

    def _switch_refusal(self, relation_id: int, shared: dict[str, str]) -> ops.StatusBase | None:
        if self._stored.on_database == str(relation_id) or shared.get(CONFIRMED) == str(
            relation_id
        ):
            return None
        content = database.local_content()
        if content is None or content == (0, 0):
            return None
        users, dashboards = content
        return ops.BlockedStatus(
            f"local sqlite holds {users} users, {dashboards} dashboards: copy them "
            "(docs/scale-out.md), then run confirm-database-switch"
        )

    def _sqlite_plan(self) -> Plan | ops.StatusBase:
        """Grafana's own sqlite, with the application key unless the database predates it.

        A Grafana database that already exists keeps Grafana's default key: its data-source
        secrets are encrypted with it, and a new key would make them unreadable. A new one
        waits for the key, so that it is never created with the public default.
        """
        try:
            fresh = database.local_content() is None
        except database.DatabaseError:
            fresh = False
        if not (self._stored.secret_key_used or fresh):
            return Plan()
        key = self.secret_key(create=True)
        if key is None:
            return ops.WaitingStatus("waiting for the leader to create the secret key")
        return Plan(secret_key=key)

    # --- what happened ------------------------------------------------------------------------

    def rendered(self, plan: Plan) -> None:
        """Remember what this unit's grafana.ini now says."""
        self._stored.on_database = "" if plan.relation_id is None else str(plan.relation_id)
        if plan.secret_key is not None:
            self._stored.secret_key_used = True

    def unannounced(self, plan: Plan) -> bool:
        """True for the leader on a database it has not told the other units about yet."""
        relation = self._charm.model.get_relation(self._peers)
        if plan.relation_id is None or relation is None or not self._charm.unit.is_leader():
            return False
        return relation.data[self._charm.app].get(SCHEMA_READY) != str(plan.relation_id)

    def serving(self, plan: Plan) -> None:
        """The leader's Grafana serves on the relation's database: its schema is there."""
        relation = self._charm.model.get_relation(self._peers)
        if self.unannounced(plan) and relation is not None:
            data = relation.data[self._charm.app]
            data[SCHEMA_READY] = str(plan.relation_id)
            data[IN_USE] = "postgresql"

    def confirm_action(self, event: ops.ActionEvent) -> None:
        """The confirm-database-switch action."""
        if not self._charm.unit.is_leader():
            event.fail(f"Run this on the leader: juju run {self._charm.app.name}/leader ...")
            return
        try:
            event.set_results({"message": self.confirm_switch()})
        except ValueError as e:
            event.fail(str(e))

    def confirm_switch(self) -> str:
        """Let units switch database (the action); return what it allowed. Leader only.

        Raises:
            ValueError: nothing to confirm, or no peer relation yet.
        """
        peers = self._charm.model.get_relation(self._peers)
        if peers is None:
            raise ValueError("no peer relation yet; try again shortly")
        data = peers.data[self._charm.app]
        relation = self.relation()
        if relation is not None:
            data[CONFIRMED] = str(relation.id)
            return "units may now switch to the related PostgreSQL database"
        if data.get(IN_USE):
            for key in (IN_USE, SCHEMA_READY, CONFIRMED):
                data.pop(key, None)
            return "units go back to their own sqlite database"
        raise ValueError("nothing to confirm: no database switch is waiting")

    # --- Juju ---------------------------------------------------------------------------------

    def relation(self) -> ops.Relation | None:
        """The `database` relation, unless it is being removed."""
        relations = self._charm.model.relations.get(database.RELATION, [])
        return next((r for r in relations if r.active), None)

    def secret_key(self, *, create: bool = False) -> str | None:
        """Return the application's secret_key; the leader creates it if asked."""
        if self._key is None:
            try:
                secret = self._charm.model.get_secret(label=SECRET_KEY_LABEL)
                self._key = secret.get_content(refresh=True).get("secret-key")
            except ops.SecretNotFoundError:
                if not (create and self._charm.unit.is_leader()):
                    return None
                self._key = secrets.token_urlsafe(32)
                self._charm.app.add_secret(
                    {"secret-key": self._key},
                    label=SECRET_KEY_LABEL,
                    description="Grafana [security] secret_key",
                )
        return self._key

    def _read_secret(self, secret_id: str) -> dict[str, str]:
        try:
            return self._charm.model.get_secret(id=secret_id).get_content(refresh=True)
        except (ops.SecretNotFoundError, ops.ModelError) as e:
            logger.error("cannot read the database relation's secret: %s", e)
            raise database.DatabaseError(
                "cannot read the database credentials secret (missing or revoked)"
            ) from None

    def _peer_data(self) -> dict[str, str]:
        relation = self._charm.model.get_relation(self._peers)
        return dict(relation.data[self._charm.app]) if relation else {}

    def _ha_addresses(self) -> tuple[str, tuple[str, ...]]:
        """This unit's and every peer's gossip address (host:HA_PORT)."""
        binding = self._charm.model.get_binding(self._peers)
        mine = binding.network.ingress_address if binding else None
        found = {str(mine)} if mine else set()
        relation = self._charm.model.get_relation(self._peers)
        for unit in relation.units if relation else ():
            address = relation.data[unit].get("ingress-address", "")  # type: ignore[union-attr]
            if _address_ok(address):
                found.add(address)
            elif address:
                logger.warning("ignoring peer %s's address %r", unit.name, address[:64])
        peers = tuple(sorted(_with_port(a) for a in found))
        return (_with_port(str(mine)) if mine else "", peers)


def _address_ok(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return bool(_HOSTNAME.fullmatch(address))
    return True


def _with_port(address: str) -> str:
    try:
        v6 = ipaddress.ip_address(address).version == 6
    except ValueError:
        v6 = False
    return f"[{address}]:{ini.HA_PORT}" if v6 else f"{address}:{ini.HA_PORT}"


def write_files(options: config.GrafanaConfig, plan: Plan) -> tuple[str, bool]:
    """Write the files grafana.ini names; return its text, and whether one of them changed.

    Grafana reads those files only when it starts: a changed one (the database password, after
    the provider rotated it) needs a restart. The files come first: Grafana cannot start
    without a file grafana.ini names.
    """
    changed = False
    if plan.database is not None:
        changed |= database.write_password(plan.database.password)
    if plan.secret_key is not None:
        changed |= ini.write_secret_key(plan.secret_key)
    text = ini.render_config(
        port=options.port,
        admin_user=options.admin_user,
        allow_anonymous_access=options.allow_anonymous_access,
        anonymous_role=options.anonymous_role,
        root_url=options.root_url,
        log_level=options.log_level,
        secret_key=plan.secret_key is not None,
        database=database.render_section(plan.database) if plan.database else "",
        ha_advertise=plan.ha_advertise if plan.database else "",
        ha_peers=plan.ha_peers if plan.database else (),
    )
    return text, changed
