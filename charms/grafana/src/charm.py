#!/usr/bin/env python3
"""Juju wiring for Grafana on a machine: config, relations, secret and actions to src/grafana/."""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from pathlib import Path

import ops
from lab_monitoring import packaged_service, status
from lab_monitoring.interfaces import grafana_dashboard, grafana_source, prometheus_scrape

import admin_password
import config
import installation
import related_dashboards
import shared_database
from grafana import api, apt_source, ini, provisioning, service

logger = logging.getLogger(__name__)

DASHBOARDS = Path(__file__).parent / "dashboards"
PEERS = "grafana-peers"
METRICS_ENDPOINT = prometheus_scrape.DEFAULT_ENDPOINT
# After grafana-server failed to start, hooks leave it alone (no restart loop on every
# update-status) until grafana.ini changes or this many seconds have passed.
START_RETRY_SECONDS = packaged_service.START_RETRY_SECONDS
Health = packaged_service.Health
Outcome = packaged_service.Outcome


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
            on_database="",
            secret_key_used=False,
        )
        self.grafana_source = grafana_source.GrafanaSourceRequirer(self)
        self.grafana_dashboard = grafana_dashboard.GrafanaDashboardRequirer(self)
        self._start_guard = packaged_service.StartGuard(self._stored.start)
        self._password = admin_password.AdminPassword(self, PEERS)
        self._database = shared_database.SharedDatabase(self, PEERS, self._stored)
        # Why this dispatch's reconcile stopped early (collect-status shows it first), if it did.
        self._halted: ops.StatusBase | None = None
        # Read once per dispatch: relation data is logged once.
        self._datasources: list[grafana_source.DataSource] | None = None
        source = self.on[grafana_source.DEFAULT_RELATION_NAME]
        db = self.on[shared_database.database.RELATION]
        dashboard = self.on[grafana_dashboard.DEFAULT_RELATION_NAME]
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
            # A sender's dashboards change with its app data; they go with the relation.
            dashboard.relation_changed,
            dashboard.relation_broken,
            self.on[METRICS_ENDPOINT].relation_joined,
            self.on[PEERS].relation_created,
            self.on[PEERS].relation_changed,
            self.on[PEERS].relation_departed,
            db.relation_created,  # the leader asks for the database at once
            db.relation_changed,
            db.relation_broken,
            # A non-leader tracking the admin password secret hears of a new revision.
            self.on.secret_changed,
        ):
            framework.observe(event, self._reconcile)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)
        framework.observe(self.on.remove, self._on_remove)
        framework.observe(self.on.get_admin_password_action, self._on_get_admin_password)
        framework.observe(self.on.reset_admin_password_action, self._on_reset_admin_password)
        framework.observe(self.on.confirm_database_switch_action, self._on_confirm_switch)

    # --- reconcile ----------------------------------------------------------------------------

    def _reconcile(self, _: ops.EventBase) -> None:
        """Bring Grafana, its files and the relation data in line with what Juju knows."""
        try:
            options = self.load_config(config.GrafanaConfig)
        except ValueError:
            return  # collect-status says which option is wrong; nothing is written.
        self._halted = installation.ensure(self.model, self._stored, options)
        if self._halted is not None:
            return
        self.unit.set_workload_version(apt_source.installed_version())
        sources = self._sources()
        self.grafana_source.publish_uids(
            f"{self.model.uuid}_{self.app.name}",
            sources,
            base_url=options.root_url or self._public_url(options),
        )
        prometheus_scrape.publish(self, [prometheus_scrape.job("grafana", options.port)])

        password = self._password.get(create=True)
        if password is None:
            # Grafana gives its first administrator the password it finds at its first start,
            # and admin/admin without one: it does not start before the leader's secret is here.
            self._halted = ops.WaitingStatus("waiting for the leader to create the admin password")
            return
        plan = self._database.plan()
        if isinstance(plan, ops.StatusBase):
            self._halted = plan  # grafana.ini stays as it is (see shared_database)
            return
        self.unit.set_ports(options.port, *([ini.HA_PORT] if plan.database else []))
        # Before grafana.ini, which names the files: Grafana cannot start without them.
        ini.write_admin_password(password)
        text, restart = shared_database.write_files(options, plan)
        restart |= ini.write_config(text)
        self._database.rendered(plan)
        # The drop-in for a port below 1024 must be in place before the restart that uses it.
        restart |= service.allow_low_ports(options.port)
        related = related_dashboards.collect(self.grafana_dashboard, sources, DASHBOARDS)
        self._stored.dashboards_pending |= provisioning.write_dashboards(DASHBOARDS, related)
        datasources = provisioning.render_datasources(
            sources,
            provisioning.read_datasources(),
            keep_deletions=bool(self._stored.datasources_pending),
        )
        self._stored.datasources_pending |= provisioning.write_datasources(datasources)
        health = service.health(options.port)
        alive = health in (Health.UP, Health.STARTING)
        if not alive or restart:
            if not self._start(options, text, restart=alive):
                return  # Failed (Blocked) or still starting (Waiting): see collect-status.
        elif health is Health.UP:
            # Up and serving (systemd or an operator started it): an earlier failure has passed.
            self._start_guard.forget()
        elif self._start_guard.failure:
            return  # Alive but not serving since a failed start: leave it to systemd.
        self._apply_password_and_provisioning(options, password)
        announce = self._halted is None and self._database.unannounced(plan)
        if announce and service.health(options.port) is Health.UP:
            self._database.serving(plan)  # the leader's Grafana has migrated the schema

    def _start(self, options: config.GrafanaConfig, ini_text: str, *, restart: bool) -> bool:
        """Start or restart grafana-server; return True once it serves, False otherwise.

        A start that failed is not tried again with the same grafana.ini for an hour (see
        packaged_service.StartGuard); a changed grafana.ini (a new port, say) is tried at
        once. Grafana still starting when the wait ends is left to start: the next hook finds it
        running and carries on once it is ready.
        """
        digest = hashlib.sha256(ini_text.encode()).hexdigest()
        try:
            outcome = self._start_guard.start(
                digest, lambda: service.start(options.port, restart=restart), time.time()
            )
        except service.ServiceError as e:
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

    def _apply_password_and_provisioning(
        self, options: config.GrafanaConfig, password: str
    ) -> None:
        """Make sure this unit's Grafana takes the admin password; reload changed provisioning."""
        generation = self._password.unapplied(self._stored.password_generation)
        pending = self._stored.datasources_pending or self._stored.dashboards_pending
        if generation is None and not pending:
            return  # Nothing to tell Grafana: no API call.
        client = self._client(options, password)
        if not client.wait_ready():
            self._halted = ops.WaitingStatus("waiting for Grafana to start")
            return
        if generation is not None:
            problem = admin_password.apply(client, password, options.admin_user)
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
        except api.APIError as e:
            logger.error("Grafana refused a provisioning reload: %s", e)
            if e.status in (401, 403):
                self._halted = ops.BlockedStatus(
                    "Grafana rejects the admin password: run reset-admin-password"
                )
            else:
                self._halted = ops.WaitingStatus(f"Grafana did not reload: {e}"[:120])

    # --- actions ------------------------------------------------------------------------------

    def _on_get_admin_password(self, event: ops.ActionEvent) -> None:
        if (options := self._config_or_fail(event)) is not None:
            url = options.root_url or self._public_url(options)
            client = functools.partial(self._client, options)
            admin_password.get_action(event, self._password, client, options.admin_user, url)

    def _on_reset_admin_password(self, event: ops.ActionEvent) -> None:
        if (options := self._config_or_fail(event)) is not None:
            client = functools.partial(self._client, options)
            generation = admin_password.reset_action(
                event, self._password, client, options.admin_user, leader=self.unit.is_leader()
            )
            if generation is not None:
                self._stored.password_generation = generation

    def _on_confirm_switch(self, event: ops.ActionEvent) -> None:
        self._database.confirm_action(event)

    def _config_or_fail(self, event: ops.ActionEvent) -> config.GrafanaConfig | None:
        try:
            return self.load_config(config.GrafanaConfig)
        except ValueError as e:
            event.fail(f"Fix the configuration first: {e}")
            return None

    # --- relations and addresses --------------------------------------------------------------

    def _sources(self) -> list[grafana_source.DataSource]:
        if self._datasources is None:
            self._datasources = self.grafana_source.sources()
        return self._datasources

    def _client(self, options: config.GrafanaConfig, password: str) -> api.GrafanaClient:
        """This unit's Grafana, on loopback, as its administrator."""
        return api.GrafanaClient(f"http://127.0.0.1:{options.port}", options.admin_user, password)

    def _public_url(self, options: config.GrafanaConfig) -> str:
        binding = self.model.get_binding(PEERS)
        address = binding.network.ingress_address if binding else None
        return f"http://{address or '127.0.0.1'}:{options.port}/"

    # --- status and removal -------------------------------------------------------------------

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        if isinstance(self._halted, ops.MaintenanceStatus):
            event.add_status(self._halted)  # removing: nothing else matters
            return
        try:
            options = self.load_config(config.GrafanaConfig)
        except ValueError as e:
            event.add_status(ops.BlockedStatus(str(e)))
            return
        if self._halted is not None:
            event.add_status(self._halted)
        if not apt_source.installed():
            event.add_status(ops.MaintenanceStatus("installing grafana"))
            return
        if self._password.get() is None:
            # Grafana is not started before the password is known (see _reconcile).
            event.add_status(
                ops.WaitingStatus("waiting for the leader to create the admin password")
            )
        elif (health := service.health(options.port)) is Health.FAILING:
            # Whatever instant of systemd's restart loop this is: the cause, not "starting".
            message = self._start_guard.failure or (
                "grafana-server keeps failing (see journalctl -u grafana-server)"
            )
            event.add_status(ops.BlockedStatus(status.one_line(message)))
        elif self._start_guard.failure:
            event.add_status(ops.BlockedStatus(status.one_line(self._start_guard.failure)))
        elif health is Health.STOPPED and not isinstance(self._halted, ops.WaitingStatus):
            # (Not started on purpose while this unit waits: the Waiting status says for what.)
            event.add_status(
                ops.BlockedStatus(
                    "grafana-server is not running (see journalctl -u grafana-server)"
                )
            )
        elif health is Health.STARTING:
            event.add_status(ops.WaitingStatus("waiting for Grafana to start"))
        count = len(self._sources())
        sources = f"{count} data source" + ("" if count == 1 else "s")
        event.add_status(ops.ActiveStatus(f"serving on :{options.port} with {sources}"))

    def _on_remove(self, _: ops.RemoveEvent) -> None:
        service.stop()
        # A source left behind would make apt fetch from Grafana's repository for good, and one
        # it cannot reach fails every `apt-get update --error-on=any` on the machine.
        apt_source.remove_repository()
        self._halted = ops.MaintenanceStatus("removing: grafana-server stopped and disabled")


if __name__ == "__main__":  # pragma: nocover
    ops.main(GrafanaCharm)
