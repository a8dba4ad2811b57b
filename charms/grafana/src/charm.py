#!/usr/bin/env python3
"""Juju wiring for Grafana on a machine: config, relations, secret and actions to grafana.py."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import time
import urllib.parse
from pathlib import Path

import ops
from lab_monitoring import packaged_service, status
from lab_monitoring.interfaces import grafana_source, prometheus_scrape

import grafana

logger = logging.getLogger(__name__)

DASHBOARDS = Path(__file__).parent / "dashboards"
PEERS = "grafana-peers"
METRICS_ENDPOINT = prometheus_scrape.DEFAULT_ENDPOINT
SECRET_LABEL = "admin-password"  # noqa: S105 (a label, not a password)
# Peer app data: bumped by the leader on every new admin password, so that each unit (each
# has its own Grafana database) knows it must set the password again.
GENERATION_KEY = "admin-password-generation"

_ADMIN_USER = re.compile(r"[A-Za-z0-9._@-]{1,64}")
# What a root URL may contain in grafana.ini: no whitespace, `;`, `#` or `$` (ini comments and
# Grafana's variable expansion).
_URL_CHARS = re.compile(r"[A-Za-z0-9._~:/%+,=&@!*'()\[\]-]+")
ROLES = ("Viewer", "Editor", "Admin")
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")
# After grafana-server failed to start, hooks leave it alone (no restart loop on every
# update-status) until grafana.ini changes or this many seconds have passed.
START_RETRY_SECONDS = packaged_service.START_RETRY_SECONDS
Health = packaged_service.Health
Outcome = packaged_service.Outcome


@dataclasses.dataclass(frozen=True, kw_only=True)
class GrafanaConfig:
    """The charm's options, validated; a message names the option and the bad value."""

    port: int = 3000
    admin_user: str = "admin"
    allow_anonymous_access: bool = False
    anonymous_role: str = "Viewer"
    root_url: str = ""
    log_level: str = "info"

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} is not a TCP port (1-65535)")
        if not _ADMIN_USER.fullmatch(self.admin_user):
            raise ValueError(
                f"admin-user: {self.admin_user!r} must be 1-64 letters, digits or . _ @ -"
            )
        if self.anonymous_role not in ROLES:
            raise ValueError(
                f"anonymous-role: {self.anonymous_role!r} is not one of {', '.join(ROLES)}"
            )
        if self.log_level not in LOG_LEVELS:
            raise ValueError(
                f"log-level: {self.log_level!r} is not one of {', '.join(LOG_LEVELS)}"
            )
        if self.root_url and not _is_root_url(self.root_url):
            shown = self.root_url if len(self.root_url) <= 60 else self.root_url[:60] + "..."
            raise ValueError(
                f"root-url: {shown!r} is not an http(s) URL without query or fragment"
            )


def _is_root_url(url: str) -> bool:
    if len(url) > 2048 or not _URL_CHARS.fullmatch(url):
        return False
    parts = urllib.parse.urlsplit(url)
    try:
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query


class GrafanaCharm(ops.CharmBase):
    """Grafana OSS on a jammy machine, with every related Prometheus as a data source."""

    _stored = ops.StoredState()

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self._stored.set_default(
            deb_sha256="",
            password_generation="",
            datasources_pending=False,
            dashboards_pending=False,
            # Why grafana-server last failed to start, with which grafana.ini (a digest) and
            # when: packaged_service's StartGuard.
            start={},
        )
        self.grafana_source = grafana_source.GrafanaSourceRequirer(self)
        self._start_guard = packaged_service.StartGuard(self._stored.start)
        # Why this dispatch's reconcile stopped early (collect-status shows it first), if it did.
        self._halted: ops.StatusBase | None = None
        # Read once per dispatch: a secret created in this hook, relation data logged once.
        self._password: str | None = None
        self._datasources: list[grafana_source.DataSource] | None = None
        source = self.on[grafana_source.DEFAULT_RELATION_NAME]
        for event in (
            self.on.install,
            self.on.start,
            self.on.config_changed,
            self.on.upgrade_charm,
            self.on.update_status,
            self.on.leader_elected,
            source.relation_joined,
            source.relation_changed,
            source.relation_departed,
            source.relation_broken,
            self.on[METRICS_ENDPOINT].relation_joined,
            self.on[PEERS].relation_created,
            self.on[PEERS].relation_changed,
            # A non-leader tracking the admin password secret hears of a new revision.
            self.on.secret_changed,
        ):
            framework.observe(event, self._reconcile)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)
        framework.observe(self.on.remove, self._on_remove)
        framework.observe(self.on.get_admin_password_action, self._on_get_admin_password)
        framework.observe(self.on.reset_admin_password_action, self._on_reset_admin_password)

    # --- reconcile ----------------------------------------------------------------------------

    def _reconcile(self, _: ops.EventBase) -> None:
        """Bring Grafana, its files and the relation data in line with what Juju knows."""
        try:
            config = self.load_config(GrafanaConfig)
        except ValueError:
            return  # collect-status says which option is wrong; nothing is written.
        if not self._ensure_installed():
            return
        self.unit.set_workload_version(grafana.version())
        sources = self._sources()
        self.grafana_source.publish_uids(
            f"{self.model.uuid}_{self.app.name}",
            sources,
            base_url=config.root_url or self._public_url(config),
        )
        self._publish_scrape_job(config.port)
        self.unit.set_ports(config.port)

        password = self._admin_password(create=True)
        if password is None:
            # Grafana gives its first administrator the password it finds at its first start,
            # and admin/admin without one: it does not start before the leader's secret is here.
            self._halted = ops.WaitingStatus("waiting for the leader to create the admin password")
            return
        # Before grafana.ini, which names the file: Grafana cannot start without it.
        grafana.write_admin_password(password)
        ini = grafana.render_config(
            port=config.port,
            admin_user=config.admin_user,
            allow_anonymous_access=config.allow_anonymous_access,
            anonymous_role=config.anonymous_role,
            root_url=config.root_url,
            log_level=config.log_level,
        )
        restart = grafana.write_config(ini)
        # The drop-in for a port below 1024 must be in place before the restart that uses it.
        restart |= grafana.allow_low_ports(config.port)
        self._stored.dashboards_pending |= grafana.write_dashboards(DASHBOARDS)
        text = grafana.render_datasources(
            sources,
            grafana.read_datasources(),
            keep_deletions=bool(self._stored.datasources_pending),
        )
        self._stored.datasources_pending |= grafana.write_datasources(text)
        health = grafana.health(config.port)
        alive = health in (Health.UP, Health.STARTING)
        if not alive or restart:
            if not self._start(config, ini, restart=alive):
                return  # Failed (Blocked) or still starting (Waiting): see collect-status.
        elif health is Health.UP:
            # Up and serving (systemd or an operator started it): an earlier failure has passed.
            self._start_guard.forget()
        elif self._start_guard.failure:
            return  # Alive but not serving since a failed start: leave it to systemd.
        self._apply_password_and_provisioning(config, password)

    def _start(self, config: GrafanaConfig, ini: str, *, restart: bool) -> bool:
        """Start or restart grafana-server; return True once it serves, False otherwise.

        A start that failed is not tried again with the same grafana.ini for an hour (see
        packaged_service.StartGuard); a changed grafana.ini (a new port, say) is tried at
        once. Grafana still starting when the wait ends is left to start: the next hook finds it
        running and carries on once it is ready.
        """
        digest = hashlib.sha256(ini.encode()).hexdigest()
        try:
            outcome = self._start_guard.start(
                digest, lambda: grafana.start(config.port, restart=restart), time.time()
            )
        except grafana.GrafanaError as e:
            # systemctl itself refused: nothing to remember, the next hook tries again.
            logger.error("systemctl could not start grafana-server: %s", e)
            self._halted = ops.BlockedStatus(
                "grafana-server does not start: see journalctl -u grafana-server"
            )
            return False
        if outcome in (None, Outcome.FAILED):
            return False  # held back, or died: collect-status says why
        # Grafana reads every provisioning file when it starts.
        self._stored.datasources_pending = False
        self._stored.dashboards_pending = False
        return outcome is Outcome.UP

    def _ensure_installed(self) -> bool:
        """Install Grafana from the resource or the repository; return False if it is not."""
        deb = self._deb_resource()
        try:
            if deb is not None:
                digest = grafana.sha256(deb)
                if digest != self._stored.deb_sha256 or not grafana.is_installed():
                    grafana.install_from_file(deb)
                    self._stored.deb_sha256 = digest
            elif not grafana.is_installed():
                grafana.install_from_repository()
        except grafana.KeyMismatchError as e:
            self._halted = ops.BlockedStatus(str(e))
            return False
        except grafana.GrafanaError as e:
            # Usually the network or a mirror; update-status tries again.
            logger.error("installing grafana failed: %s", e)
            self._halted = ops.BlockedStatus(status.one_line(f"install failed, retrying: {e}"))
            return False
        return True

    def _deb_resource(self) -> Path | None:
        """Return the attached grafana-deb file, or None if none (or an empty one) is."""
        try:
            path = self.model.resources.fetch("grafana-deb")
        except (ops.ModelError, NameError):
            return None
        return path if path.stat().st_size > 0 else None

    def _apply_password_and_provisioning(self, config: GrafanaConfig, password: str) -> None:
        """Make sure this unit's Grafana takes the admin password; reload changed provisioning."""
        generation = self._password_generation()
        # Without a generation (no peer relation yet) there is nothing to record: the password
        # file gave Grafana its password when it first started, and the check runs once the
        # leader has set one.
        password_pending = (
            generation is not None and generation != self._stored.password_generation
        )
        pending = self._stored.datasources_pending or self._stored.dashboards_pending
        if not password_pending and not pending:
            return  # Nothing to tell Grafana: no API call.
        client = grafana.GrafanaClient(self._local_url(config), config.admin_user, password)
        if not client.wait_ready():
            self._halted = ops.WaitingStatus("waiting for Grafana to start")
            return
        if password_pending:
            problem = self._apply_admin_password(client, password, config.admin_user)
            if problem is not None:
                self._halted = problem
                return
            self._stored.password_generation = generation
        try:
            if self._stored.datasources_pending:
                client.reload_datasources()
                self._stored.datasources_pending = False
            if self._stored.dashboards_pending:
                client.reload_dashboards()
                self._stored.dashboards_pending = False
        except grafana.APIError as e:
            logger.error("Grafana refused a provisioning reload: %s", e)
            if e.status in (401, 403):
                self._halted = ops.BlockedStatus(
                    "Grafana rejects the admin password: run reset-admin-password"
                )
            else:
                self._halted = ops.WaitingStatus(f"Grafana did not reload: {e}"[:120])

    def _apply_admin_password(
        self, client: grafana.GrafanaClient, password: str, user: str
    ) -> ops.StatusBase | None:
        """Have Grafana accept `password` for `user`, confirmed by a login; None once it does.

        A Grafana that already accepts it (born with it from the password file) is left alone;
        otherwise the CLI sets it, and only a login that works afterwards counts.
        """
        try:
            if client.login_works():
                return None
            grafana.set_admin_password(password)
            if client.login_works():
                return None
        except grafana.GrafanaError as e:
            logger.error("%s", e)
            return ops.WaitingStatus("could not set the admin password, retrying")
        logger.error("grafana cli reported success, but Grafana still rejects %r", user)
        return ops.BlockedStatus(
            f"Grafana rejects {user!r} even after a password reset: check admin-user"[:120]
        )

    # --- admin password -----------------------------------------------------------------------

    def _admin_password(self, *, create: bool = False) -> str | None:
        """Return the admin password from the app secret; the leader creates it if asked."""
        if self._password is not None:
            return self._password
        try:
            secret = self.model.get_secret(label=SECRET_LABEL)
            self._password = secret.get_content(refresh=True).get("password")
        except ops.SecretNotFoundError:
            if not (create and self.unit.is_leader()):
                return None
            self._password = grafana.generate_password()
            self.app.add_secret(
                {"password": self._password},
                label=SECRET_LABEL,
                description="Grafana admin password",
            )
            self._bump_generation()
        if self.unit.is_leader() and self._password_generation() is None:
            self._bump_generation()  # The secret predates the peer relation.
        return self._password

    def _password_generation(self) -> str | None:
        """Return the admin password generation; None without peers or before the first."""
        relation = self.model.get_relation(PEERS)
        return relation.data[self.app].get(GENERATION_KEY) if relation else None

    def _bump_generation(self) -> None:
        relation = self.model.get_relation(PEERS)
        if relation is None:
            return  # Bumped when the peer relation appears (see _admin_password).
        current = relation.data[self.app].get(GENERATION_KEY, "0")
        relation.data[self.app][GENERATION_KEY] = str(int(current or "0") + 1)

    def _on_get_admin_password(self, event: ops.ActionEvent) -> None:
        config = self._config_or_fail(event)
        if config is None:
            return
        password = self._admin_password()
        if password is None:
            event.fail("The leader has not created the admin password yet; try again shortly.")
            return
        client = grafana.GrafanaClient(self._local_url(config), config.admin_user, password)
        try:
            works = client.login_works()
        except grafana.GrafanaError as e:
            event.fail(f"Cannot check the password with Grafana: {e}")
            return
        if not works:
            event.fail(
                f"Grafana rejects the stored password for {config.admin_user!r}: it was changed "
                "inside Grafana (or admin-user was renamed). Run "
                f"`juju run {self.app.name}/leader reset-admin-password` to set a known one."
            )
            return
        event.set_results(
            {
                "username": config.admin_user,
                "admin-password": password,
                "url": config.root_url or self._public_url(config),
            }
        )

    def _on_reset_admin_password(self, event: ops.ActionEvent) -> None:
        config = self._config_or_fail(event)
        if config is None:
            return
        if not self.unit.is_leader():
            event.fail(
                f"Run this on the leader: juju run {self.app.name}/leader reset-admin-password"
            )
            return
        given = event.params.get("password")
        if given is not None and not _acceptable_password(given):
            # Never echo the password back.
            event.fail("password must be 8-128 printable characters, no spaces at either end")
            return
        password = given or grafana.generate_password()
        try:
            self.model.get_secret(label=SECRET_LABEL).set_content({"password": password})
        except ops.SecretNotFoundError:
            self.app.add_secret(
                {"password": password}, label=SECRET_LABEL, description="Grafana admin password"
            )
        self._password = password
        self._bump_generation()
        generation = self._password_generation()
        if grafana.is_installed():  # otherwise the next hook installs Grafana and writes it
            # Kept in sync with the secret: Grafana reads it if it ever recreates its database.
            grafana.write_admin_password(password)
        client = grafana.GrafanaClient(self._local_url(config), config.admin_user, password)
        problem = self._apply_admin_password(client, password, config.admin_user)
        if problem is not None:
            event.fail(
                f"Stored the new password, but Grafana on this unit has not taken it yet "
                f"({problem.message}); the charm retries on its next hook."
            )
            return
        if generation is not None:
            self._stored.password_generation = generation
        event.set_results(
            {"message": "Password changed on every unit; run get-admin-password to read it."}
        )

    def _config_or_fail(self, event: ops.ActionEvent) -> GrafanaConfig | None:
        try:
            return self.load_config(GrafanaConfig)
        except ValueError as e:
            event.fail(f"Fix the configuration first: {e}")
            return None

    # --- relations and addresses --------------------------------------------------------------

    def _publish_scrape_job(self, port: int) -> None:
        """Offer Grafana's /metrics to Prometheus in the COS prometheus_scrape format."""
        prometheus_scrape.publish(self, [prometheus_scrape.job("grafana", port)])

    def _sources(self) -> list[grafana_source.DataSource]:
        if self._datasources is None:
            self._datasources = self.grafana_source.sources()
        return self._datasources

    def _local_url(self, config: GrafanaConfig) -> str:
        return f"http://127.0.0.1:{config.port}"

    def _public_url(self, config: GrafanaConfig) -> str:
        binding = self.model.get_binding(PEERS)
        address = binding.network.ingress_address if binding else None
        return f"http://{address or '127.0.0.1'}:{config.port}/"

    # --- status and removal -------------------------------------------------------------------

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        if isinstance(self._halted, ops.MaintenanceStatus):
            event.add_status(self._halted)  # removing: nothing else matters
            return
        try:
            config = self.load_config(GrafanaConfig)
        except ValueError as e:
            event.add_status(ops.BlockedStatus(str(e)))
            return
        if self._halted is not None:
            event.add_status(self._halted)
        if not grafana.is_installed():
            event.add_status(ops.MaintenanceStatus("installing grafana"))
            return
        if self._admin_password() is None:
            # Grafana is not started before the password is known (see _reconcile).
            event.add_status(
                ops.WaitingStatus("waiting for the leader to create the admin password")
            )
        elif (health := grafana.health(config.port)) is Health.FAILING:
            # Whatever instant of systemd's restart loop this is: the cause, not "starting".
            message = self._start_guard.failure or (
                "grafana-server keeps failing (see journalctl -u grafana-server)"
            )
            event.add_status(ops.BlockedStatus(status.one_line(message)))
        elif self._start_guard.failure:
            event.add_status(ops.BlockedStatus(status.one_line(self._start_guard.failure)))
        elif health is Health.STOPPED:
            event.add_status(
                ops.BlockedStatus(
                    "grafana-server is not running (see journalctl -u grafana-server)"
                )
            )
        elif health is Health.STARTING:
            event.add_status(ops.WaitingStatus("waiting for Grafana to start"))
        count = len(self._sources())
        sources = f"{count} data source" + ("" if count == 1 else "s")
        event.add_status(ops.ActiveStatus(f"serving on :{config.port} with {sources}"))

    def _on_remove(self, _: ops.RemoveEvent) -> None:
        grafana.stop()
        self._halted = ops.MaintenanceStatus("removing: grafana-server stopped and disabled")


def _acceptable_password(password: object) -> bool:
    return (
        isinstance(password, str)
        and 8 <= len(password) <= 128
        and password.isprintable()
        and password == password.strip()
    )


if __name__ == "__main__":  # pragma: nocover
    ops.main(GrafanaCharm)
