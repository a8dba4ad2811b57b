#!/usr/bin/env python3
"""Juju wiring of the Alertmanager machine charm.

Every event that can change what Alertmanager should be doing runs one `_reconcile`: install
the package, render alertmanager.yml (checked by amtool before it goes live) and the flags
(clustering with the peers the relation names), then reload Alertmanager when only its files
changed, restart it when its flags did, and nothing when nothing did; then tell related
Prometheus, Grafana and legacy charms where it is. Status is decided in one place,
`_on_collect_status`.

A restart (new flags: a peer came or went, say) keeps silences and the notification log, which
Alertmanager writes to its storage directory; firing alerts are in memory only, and Prometheus
sends them again within a minute (its --rules.alert.resend-delay).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable

import ops
from lab_monitoring import packaged_service, status
from lab_monitoring.interfaces import alertmanager_dispatch, grafana_source

import cluster
import config
import endpoints
from alertmanager import configuration, flags, package, paths, service

logger = logging.getLogger(__name__)

# After Alertmanager failed to start, hooks leave it alone (no restart loop on every
# update-status) until its flags or configuration change or this many seconds have passed.
START_RETRY_SECONDS = packaged_service.START_RETRY_SECONDS
Health = packaged_service.Health
Outcome = packaged_service.Outcome


class AlertmanagerCharm(ops.CharmBase):
    """Alertmanager on a machine: takes Prometheus's alerts, notifies the operator's receivers."""

    _stored = ops.StoredState()

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        # amtool's complaint about the last configuration rendered (secrets masked), kept for
        # hooks that do not render (actions). A reload Alertmanager refused stays pending, with
        # its reason, until one succeeds: the files are already in place, so a later hook would
        # otherwise see nothing to do. `start`: packaged_service.StartGuard's record.
        self._stored.set_default(rejected="", reload_pending=False, reload_refused="", start={})
        self._alerting = alertmanager_dispatch.AlertmanagerDispatchProvider(self)
        self._grafana_source = grafana_source.GrafanaSourceProvider(self)
        self._start_guard = packaged_service.StartGuard(self._stored.start)
        # Why this dispatch's reconcile stopped early (collect-status shows it first), if it did.
        self._halted: ops.StatusBase | None = None
        self._peers: cluster.Peers | None = None
        for event in (
            self.on.install,
            self.on.start,
            self.on.config_changed,
            self.on.upgrade_charm,
            self.on.update_status,
            self.on.leader_elected,
            self.on[cluster.ENDPOINT].relation_joined,
            self.on[cluster.ENDPOINT].relation_changed,
            self.on[cluster.ENDPOINT].relation_departed,
            self.on[alertmanager_dispatch.PROVIDER_ENDPOINT].relation_joined,
            self.on[grafana_source.DEFAULT_RELATION_NAME].relation_joined,
            self.on[endpoints.METRICS_ENDPOINT].relation_joined,
            self.on[endpoints.LEGACY_ENDPOINT].relation_joined,
            self.on[endpoints.DASHBOARD_ENDPOINT].relation_joined,
        ):
            framework.observe(event, self._reconcile)
        framework.observe(self.on.remove, self._on_remove)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)
        framework.observe(self.on["show-config"].action, self._on_show_config_action)
        framework.observe(self.on["check-config"].action, self._on_check_config_action)

    def _reconcile(self, _: ops.EventBase) -> None:
        """Bring the package, files, service and relation data in line with Juju's state."""
        # Whatever this unit's Alertmanager does: the dashboard is the application's.
        endpoints.publish_dashboards(self)
        if not package.installed():
            # Set directly, not in collect-status: the install takes a while, and collect-status
            # only runs once the hook is over.
            self.unit.status = ops.MaintenanceStatus(f"installing {package.PACKAGE}")
            try:
                package.install()
            except package.InstallError as e:
                # Usually the network or the archive; the next hook (update-status) tries again.
                logger.error("apt could not install %s: %s", package.PACKAGE, e)
                message = f"could not install {package.PACKAGE} (retrying): {e}"
                self._halted = ops.BlockedStatus(status.one_line(message))
                return
        version = package.version()
        if version:
            self.unit.set_workload_version(version)
        cluster.publish(self)
        try:
            options = self.load_config(config.AlertmanagerConfig)
        except ValueError:
            return  # collect-status names the option; nothing is written

        rendered = configuration.render(options.config_file, options.templates_file)
        try:
            changed = configuration.install(rendered, options.templates_file)
        except configuration.ConfigError as e:
            logger.error("alertmanager.yml not installed, amtool refused it: %s", e)
            self._stored.rejected = str(e)
            return
        self._stored.rejected = ""
        args = flags.flags(
            port=options.web_port,
            external_url=options.web_external_url,
            log_level=options.log_level,
            cluster=self._cluster().cluster,
        )
        flags_changed = flags.write(args)
        # The drop-in for a port below 1024 must be in place before the restart that uses it.
        flags_changed |= service.allow_low_ports(options.web_port)
        if changed:
            self._stored.reload_pending = True
        # A start that failed is retried at once when the flags or the files change.
        written = f"{rendered}\0{options.templates_file}".encode()
        settings = f"{' '.join(args)} config:{zlib.crc32(written):08x}"
        health = service.health()
        if health in (Health.STOPPED, Health.FAILING):
            self._start(service.start, settings)
        elif flags_changed:
            self._start(service.restart, settings)
        elif health is Health.UP:
            # Serving (systemd or an operator started it): an earlier failure has passed.
            self._start_guard.forget()
            if self._stored.reload_pending:
                self._reload()
        endpoints.open_ports(self, options.web_port, clustered=self._cluster().cluster is not None)
        self._alerting.publish(port=options.web_port, path_prefix=options.route_prefix)
        endpoints.publish(self, self._grafana_source, options.web_port, options.route_prefix)

    def _start(self, start: Callable[[], bool], settings: str) -> None:
        """Start or restart Alertmanager and remember whether it came up (StartGuard)."""
        outcome = self._start_guard.start(settings, start, time.time())
        if outcome in (Outcome.UP, Outcome.STARTING):
            # A (re)started Alertmanager has read the current files: nothing left to reload.
            self._stored.reload_pending = False
            self._stored.reload_refused = ""

    def _reload(self) -> None:
        """Reload Alertmanager; if it refuses, keep the reload pending and say why in status."""
        try:
            service.reload()
        except service.ReloadError as e:
            logger.error("Alertmanager refused to reload, it keeps the previous config: %s", e)
            self._stored.reload_refused = str(e)
            return
        self._stored.reload_pending = False
        self._stored.reload_refused = ""

    def _cluster(self) -> cluster.Peers:
        """The peer relation's addresses, read once per dispatch."""
        if self._peers is None:
            self._peers = cluster.read(self)
        return self._peers

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        if self._halted is not None:
            event.add_status(self._halted)
            return
        if not package.installed():
            event.add_status(ops.MaintenanceStatus(f"installing {package.PACKAGE}"))
            return
        try:
            options = self.load_config(config.AlertmanagerConfig)
        except ValueError as e:
            event.add_status(ops.BlockedStatus(str(e)))
            return
        if self._stored.rejected:
            message = f"amtool refused the config, the old one stays: {self._stored.rejected}"
            event.add_status(ops.BlockedStatus(status.one_line(message)))
        if self._stored.reload_refused:
            refused = self._stored.reload_refused
            message = f"alertmanager refused to reload, still on the old config: {refused}"
            event.add_status(ops.BlockedStatus(status.one_line(message)))
        journal = f"see journalctl -u {package.SERVICE}"
        health = service.health()
        if health is Health.FAILING:
            # Whatever instant of systemd's restart loop this is: the cause, not "starting".
            message = self._start_guard.failure or f"alertmanager keeps failing ({journal})"
            event.add_status(ops.BlockedStatus(status.one_line(message)))
        elif health is Health.STOPPED:
            message = self._start_guard.failure or f"alertmanager is not running ({journal})"
            event.add_status(ops.BlockedStatus(status.one_line(message)))
        elif health is Health.STARTING:
            event.add_status(ops.WaitingStatus("alertmanager is starting"))
        event.add_status(ops.ActiveStatus(self._summary(options)))

    def _summary(self, options: config.AlertmanagerConfig) -> str:
        """Say what a settled unit is doing: its port, its cluster, and whether it notifies."""
        peers = self._cluster()
        parts = [f"serving on :{options.web_port}"]
        if peers.addresses:
            count = len(peers.addresses)
            parts.append(f"clustered with {count} {'peer' if count == 1 else 'peers'}")
        if peers.without_address:
            count = len(peers.without_address)
            noun = "peer" if count == 1 else "peers"
            parts.append(f"{count} {noun} without a usable cluster address (see juju debug-log)")
        if not options.config_file.strip():
            parts.append("no receiver (config-file is empty)")
        return "; ".join(parts)

    def _on_remove(self, _: ops.RemoveEvent) -> None:
        service.stop()
        self._halted = ops.MaintenanceStatus("removing: alertmanager stopped and disabled")

    def _on_show_config_action(self, event: ops.ActionEvent) -> None:
        if not package.installed():
            event.fail(f"{package.PACKAGE} is not installed yet")
            return
        try:
            content = configuration.show_live()
        except FileNotFoundError:
            event.fail(f"there is no {paths.PATHS.config} yet")
            return
        except ValueError as e:
            event.fail(f"{paths.PATHS.config} is not YAML: {e}")
            return
        event.set_results({"path": str(paths.PATHS.config), "content": content})

    def _on_check_config_action(self, event: ops.ActionEvent) -> None:
        if not package.installed():
            event.fail(f"{package.PACKAGE} is not installed yet")
            return
        error = configuration.check_live()
        if error is None:
            event.set_results({"valid": "true"})
        else:
            event.set_results({"valid": "false", "error-message": error})


if __name__ == "__main__":  # pragma: nocover
    ops.main(AlertmanagerCharm)
