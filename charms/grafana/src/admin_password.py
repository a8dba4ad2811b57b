"""Grafana's admin password in Juju: one application-owned secret, and a generation in peer data.

The leader creates the password once and keeps it in an application secret labelled
`admin-password`, which every unit reads by that label (GRAFANA-FACTS item 9). Each unit has its
own Grafana database, so a new password must reach each of them: the leader bumps a generation
in the peer relation's application data, and a unit whose Grafana has not taken the current
generation sets it there. The password never goes to logs, status or relation data.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

import ops

import grafana
from grafana import api, apt_source, cli, ini

logger = logging.getLogger(__name__)

SECRET_LABEL = "admin-password"  # noqa: S105 (a label, not a password)
# Peer app data: bumped by the leader on every new admin password.
GENERATION_KEY = "admin-password-generation"
_DESCRIPTION = "Grafana admin password"


class AdminPassword:
    """The application's admin password as this unit sees it, read once per dispatch."""

    def __init__(self, charm: ops.CharmBase, peers: str):
        self._charm = charm
        self._peers = peers
        # A secret created in this dispatch cannot be read back in it: kept here.
        self._password: str | None = None

    def get(self, *, create: bool = False) -> str | None:
        """Return the password from the application secret; the leader creates it if asked."""
        if self._password is not None:
            return self._password
        try:
            secret = self._charm.model.get_secret(label=SECRET_LABEL)
            # refresh: the leader's reset-admin-password makes a new revision for every unit.
            self._password = secret.get_content(refresh=True).get("password")
        except ops.SecretNotFoundError:
            if not (create and self._charm.unit.is_leader()):
                return None
            self._password = generate()
            self._charm.app.add_secret(
                {"password": self._password}, label=SECRET_LABEL, description=_DESCRIPTION
            )
            self._bump_generation()
        if self._charm.unit.is_leader() and self.generation() is None:
            self._bump_generation()  # The secret predates the peer relation.
        return self._password

    def replace(self, password: str) -> str | None:
        """Store a new password for every unit (leader only); return its generation, if any."""
        try:
            self._charm.model.get_secret(label=SECRET_LABEL).set_content({"password": password})
        except ops.SecretNotFoundError:
            self._charm.app.add_secret(
                {"password": password}, label=SECRET_LABEL, description=_DESCRIPTION
            )
        self._password = password
        self._bump_generation()
        return self.generation()

    def generation(self) -> str | None:
        """Return the current password's generation; None without peers or before the first."""
        relation = self._charm.model.get_relation(self._peers)
        return relation.data[self._charm.app].get(GENERATION_KEY) if relation else None

    def unapplied(self, applied: str) -> str | None:
        """Return the generation this unit's Grafana has not taken yet; None if none is due.

        Without a generation (no peer relation yet) there is nothing to apply: the password
        file gave Grafana its password when it first started, and the check runs once the
        leader has set one.
        """
        generation = self.generation()
        return generation if generation is not None and generation != applied else None

    def _bump_generation(self) -> None:
        relation = self._charm.model.get_relation(self._peers)
        if relation is None:
            return  # Bumped when the peer relation appears (see get).
        data = relation.data[self._charm.app]
        data[GENERATION_KEY] = str(int(data.get(GENERATION_KEY) or "0") + 1)


def apply(client: api.GrafanaClient, password: str, user: str) -> ops.StatusBase | None:
    """Have this unit's Grafana accept `password` for `user`, confirmed by a login.

    A Grafana that already accepts it (born with it from the password file) is left alone;
    otherwise `grafana cli` sets it, and only a login that works afterwards counts: a CLI that
    worked on another database exits 0 too (GRAFANA-FACTS item 1). Returns None once Grafana
    takes it, else the status that says why not.
    """
    try:
        if client.login_works():
            return None
        cli.set_admin_password(password)
        if client.login_works():
            return None
    except grafana.GrafanaError as e:
        logger.error("%s", e)
        return ops.WaitingStatus("could not set the admin password, retrying")
    logger.error("grafana cli reported success, but Grafana still rejects %r", user)
    return ops.BlockedStatus(
        f"Grafana rejects {user!r} even after a password reset: check admin-user"[:120]
    )


def reset_refusal(given: object, *, leader: bool, app: str) -> str | None:
    """Return why reset-admin-password must not run here with `given`; None if it may.

    The message never echoes the password.
    """
    if not leader:
        return f"Run this on the leader: juju run {app}/leader reset-admin-password"
    if given is not None and not acceptable(given):
        return "password must be 8-128 printable characters, no spaces at either end"
    return None


def refusal(client: api.GrafanaClient, user: str, app: str) -> str | None:
    """Return why get-admin-password must not hand out the stored password; None if it works."""
    try:
        works = client.login_works()
    except grafana.GrafanaError as e:
        return f"Cannot check the password with Grafana: {e}"
    if works:
        return None
    return (
        f"Grafana rejects the stored password for {user!r}: it was changed inside Grafana (or "
        f"admin-user was renamed). Run `juju run {app}/leader reset-admin-password` to set a "
        "known one."
    )


def generate() -> str:
    """Return a new random admin password (32 URL-safe characters, 192 bits)."""
    return secrets.token_urlsafe(24)


def acceptable(password: object) -> bool:
    """Return True for a password an operator may choose: 8-128 printable, no outer spaces."""
    return (
        isinstance(password, str)
        and 8 <= len(password) <= 128
        and password.isprintable()
        and password == password.strip()
    )


def get_action(
    event: ops.ActionEvent,
    store: AdminPassword,
    client_for: Callable[[str], api.GrafanaClient],
    user: str,
    url: str,
) -> None:
    """The get-admin-password action: the stored password, once Grafana still takes it."""
    password = store.get()
    if password is None:
        event.fail("The leader has not created the admin password yet; try again shortly.")
        return
    refused = refusal(client_for(password), user, event.framework.model.app.name)
    if refused is not None:
        event.fail(refused)
        return
    event.set_results({"username": user, "admin-password": password, "url": url})


def reset_action(
    event: ops.ActionEvent,
    store: AdminPassword,
    client_for: Callable[[str], api.GrafanaClient],
    user: str,
    *,
    leader: bool,
) -> str | None:
    """The reset-admin-password action; return the generation this unit's Grafana took."""
    given = event.params.get("password")
    refused = reset_refusal(given, leader=leader, app=event.framework.model.app.name)
    if refused is not None:
        event.fail(refused)
        return None
    password = given or generate()
    generation = store.replace(password)
    if apt_source.installed():  # otherwise the next hook installs Grafana and writes it
        # Kept in sync with the secret: Grafana reads it if it ever recreates its database.
        ini.write_admin_password(password)
    problem = apply(client_for(password), password, user)
    if problem is not None:
        event.fail(
            f"Stored the new password, but Grafana on this unit has not taken it yet "
            f"({problem.message}); the charm retries on its next hook."
        )
        return None
    event.set_results(
        {"message": "Password changed on every unit; run get-admin-password to read it."}
    )
    return generation
