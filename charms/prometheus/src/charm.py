#!/usr/bin/env python3
"""Juju wiring of the Prometheus machine charm.

Every event that can change what Prometheus should be doing runs one `_reconcile`, which
computes the desired files from config and relations and lets the workload modules apply the
difference: a reload when only prometheus.yml or rules changed, a restart when the flags
changed, nothing when nothing did. Status is decided in one place, `_on_collect_status`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import ops
from lab_monitoring import packaged_service, status
from lab_monitoring.interfaces import (
    alertmanager_dispatch,
    grafana_dashboard,
    grafana_source,
    prometheus_scrape,
    remote_write,
)

import alerting
import config
import relations
import sending
from prometheus import config_file, flags, reload, remote_storage, service

logger = logging.getLogger(__name__)

# After Prometheus failed to start, hooks leave it alone (no restart loop on every
# update-status) until its flags change or this many seconds have passed.
START_RETRY_SECONDS = packaged_service.START_RETRY_SECONDS
Health = packaged_service.Health
Outcome = packaged_service.Outcome
# The dashboards this charm sends to a related Grafana (grafana-dashboard).
DASHBOARDS = Path(__file__).parent / "grafana_dashboards"


class PrometheusCharm(ops.CharmBase):
    """Prometheus on a machine, fed by relations and config, published to Grafana."""

    _stored = ops.StoredState()

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        # promtool's complaint about the last configuration the charm rendered, if any. Kept
        # because status is also collected in hooks (actions) that do not render the config.
        # A reload Prometheus refused stays pending, with its reason, until one succeeds: the
        # new files are already in place, so a later hook would otherwise see nothing to do.
        # Why Prometheus last failed to start, with which flags and when (packaged_service's
        # StartGuard). Rules from relations that were left out (unparsable, malformed, refused
        # by promtool), counted when the files are rendered and shown in status until none are.
        # What each relation's rules were made into (relations.rule_files).
        self._stored.set_default(
            rejected="",
            reload_pending=False,
            reload_refused="",
            start={},
            rules_left_out=0,
            scoped_rules={},
            sending_problem="",
        )
        self._grafana_source = grafana_source.GrafanaSourceProvider(self)
        self._start_guard = packaged_service.StartGuard(self._stored.start)
        self._alertmanager = alertmanager_dispatch.AlertmanagerDispatchRequirer(self)
        # Why this dispatch's reconcile stopped early (collect-status shows it first), if it did.
        self._halted: ops.StatusBase | None = None
        for event in (
            self.on.install,
            self.on.start,
            self.on.config_changed,
            self.on.update_status,
            self.on.leader_elected,
            self.on["grafana-source"].relation_joined,
            self.on[grafana_dashboard.DEFAULT_RELATION_NAME].relation_joined,
            self.on[remote_write.RECEIVER_ENDPOINT].relation_joined,
            self.on[remote_write.RECEIVER_ENDPOINT].relation_changed,
            self.on[remote_write.RECEIVER_ENDPOINT].relation_broken,
            self.on[remote_write.SENDER_ENDPOINT].relation_changed,
            self.on[remote_write.SENDER_ENDPOINT].relation_departed,
            self.on[remote_write.SENDER_ENDPOINT].relation_broken,
            self.on.secret_changed,
        ):
            framework.observe(event, self._reconcile)
        for endpoint in ("metrics-endpoint", "target", "alertmanager", "alertmanager-service"):
            for kind in ("relation_changed", "relation_departed", "relation_broken"):
                framework.observe(getattr(self.on[endpoint], kind), self._reconcile)
        framework.observe(self.on.upgrade_charm, self._on_upgrade_charm)
        framework.observe(self.on.remove, self._on_remove)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)
        framework.observe(self.on["validate-configuration"].action, self._on_validate_action)
        framework.observe(self.on["reload"].action, self._on_reload_action)

    def _on_upgrade_charm(self, event: ops.UpgradeCharmEvent) -> None:
        # The new charm may validate or scope rules differently: make them again.
        self._stored.scoped_rules = {}
        self._reconcile(event)

    def _reconcile(self, _: ops.EventBase) -> None:
        """Bring the package, files, service and relation data in line with Juju's state."""
        # They need nothing of the workload: Grafana shows them once it has the data source.
        grafana_dashboard.publish(self, DASHBOARDS, inject_dropdowns=False)
        if not service.installed():
            # Set directly, not in collect-status: the install takes a while, and collect-status
            # only runs once the hook is over.
            self.unit.status = ops.MaintenanceStatus("installing prometheus")
            try:
                service.install()
            except service.InstallError as e:
                # Usually the network or the archive; the next hook (update-status) tries again.
                logger.error("apt could not install prometheus: %s", e)
                message = f"could not install prometheus (retrying): {e}"
                self._halted = ops.BlockedStatus(status.one_line(message))
                return
        version = service.version()
        if version:
            self.unit.set_workload_version(version)
        try:
            options = self.load_config(config.PrometheusConfig)
        except ValueError:
            return  # collect-status names the option; nothing is written

        result = self._install_files(options)
        if result is None:
            return  # promtool rejected prometheus.yml: collect-status says why

        args = flags.flags(
            port=options.web_port,
            retention_time=options.retention_time,
            retention_size=self._retention_size(options),
            external_url=options.web_external_url,
            log_level=options.log_level,
            # On while any sender is related; the broken relation is already left out here.
            remote_write_receiver=bool(self.model.relations[remote_write.RECEIVER_ENDPOINT]),
            version=version,
        )
        flags_changed = flags.write_flags(args)
        # The drop-in for a port below 1024 must be in place before the restart that uses it.
        flags_changed |= service.allow_low_ports(options.web_port)
        if result.changed:
            self._stored.reload_pending = True
        health = service.health()
        if health in (Health.STOPPED, Health.FAILING):
            self._start(service.start, " ".join(args))
        elif flags_changed:
            self._start(service.restart, " ".join(args))
        elif health is Health.UP:
            # Serving (systemd or an operator started it): an earlier failure has passed.
            self._start_guard.forget()
            if self._stored.reload_pending:
                self._reload()
        self.unit.set_ports(options.web_port)
        self._publish_grafana_source(options)
        self._publish_receiver(options)

    def _install_files(self, options: config.PrometheusConfig) -> config_file.Installed | None:
        """Render prometheus.yml and the rule files and install them; None if promtool refused."""
        remote = sending.plan(self, options)
        self._stored.sending_problem = remote.problem
        # Before the config that names them; a revoked secret's files go at once.
        remote_storage.write_credentials(remote.credentials)
        rendered = config_file.render_config(
            scrape_interval=options.scrape_interval,
            scrape_timeout=options.scrape_timeout,
            evaluation_interval=options.evaluation_interval,
            external_labels=options.labels,
            scrape_configs=relations.scrape_configs(
                self.model,
                port=options.web_port,
                route_prefix=options.route_prefix,
                operator_jobs=options.jobs,
                scrape_interval=options.scrape_interval,
            ),
            alertmanagers=alerting.alertmanagers(self.model, self._alertmanager.targets()),
            remote_write=remote.entries,
        )
        rules = relations.rule_files(
            self.model, self._stored.scoped_rules, remote_write.senders(self)
        )
        if rules.scoped != self._stored.scoped_rules:
            self._stored.scoped_rules = rules.scoped
        health = alerting.health_rules(prometheus_scrape.Topology.of(self))
        try:
            result = config_file.install_config(
                rendered, {**rules.texts, alerting.HEALTH_RULES_FILE: health}
            )
        except config_file.ConfigError as e:
            logger.error("prometheus.yml not installed, promtool rejected it: %s", e)
            self._stored.rejected = str(e)
            return None
        self._stored.rejected = ""
        left_out = rules.left_out
        for name, error in result.rejected_rules.items():
            logger.warning("rule file %s left out, promtool rejected it: %s", name, error)
            left_out += rules.counts.get(name, 0)
        self._stored.rules_left_out = left_out
        return result

    def _retention_size(self, options: config.PrometheusConfig) -> str:
        """Return retention-size as Prometheus takes it, a percentage turned into bytes."""
        if options.retention_percent is None:
            return options.retention_size
        return options.retention_size_flag(flags.tsdb_filesystem_size())

    def _start(self, start: Callable[[], bool], args: str) -> None:
        """Start or restart Prometheus and remember whether it came up.

        A start that failed is not tried again with the same flags for an hour (StartGuard);
        changed flags (a new web-port, say) are tried at once.
        """
        outcome = self._start_guard.start(args, start, time.time())
        if outcome in (Outcome.UP, Outcome.STARTING):
            # A (re)started Prometheus has read the current files: nothing left to reload.
            self._stored.reload_pending = False
            self._stored.reload_refused = ""

    def _reload(self) -> None:
        """Reload Prometheus; if it refuses, keep the reload pending and say why in status."""
        try:
            reload.reload()
        except reload.ReloadError as e:
            logger.error("Prometheus refused to reload, it keeps the previous config: %s", e)
            self._stored.reload_refused = str(e)
            return
        self._stored.reload_pending = False
        self._stored.reload_refused = ""

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        if self._halted is not None:
            event.add_status(self._halted)
            return
        if not service.installed():
            event.add_status(ops.MaintenanceStatus("installing prometheus"))
            return
        try:
            options = self.load_config(config.PrometheusConfig)
        except ValueError as e:
            event.add_status(ops.BlockedStatus(str(e)))
            return
        if self._stored.rejected:
            message = f"promtool rejected the config (check scrape-jobs): {self._stored.rejected}"
            event.add_status(ops.BlockedStatus(status.one_line(message)))
        if self._stored.sending_problem:
            event.add_status(ops.BlockedStatus(self._stored.sending_problem))
        if self._stored.reload_refused:
            refused = self._stored.reload_refused
            message = f"prometheus refused to reload, still on the old config: {refused}"
            event.add_status(ops.BlockedStatus(status.one_line(message)))
        health = service.health()
        if health is Health.FAILING:
            # Whatever instant of systemd's restart loop this is: the cause, not "starting".
            message = self._start_guard.failure or (
                "prometheus keeps failing (see journalctl -u prometheus)"
            )
            event.add_status(ops.BlockedStatus(status.one_line(message)))
        elif health is Health.STOPPED:
            message = self._start_guard.failure or (
                "prometheus is not running (see journalctl -u prometheus)"
            )
            event.add_status(ops.BlockedStatus(status.one_line(message)))
        elif health is Health.STARTING:
            # Alive, not crashing, not serving yet: a large TSDB takes a while to load.
            event.add_status(ops.WaitingStatus("prometheus is starting"))
        jobs = config_file.job_count()
        noun = "scrape job" if jobs == 1 else "scrape jobs"
        left_out = self._stored.rules_left_out
        note = (
            f"; {left_out} {'rule' if left_out == 1 else 'rules'} from relations left out"
            " (see juju debug-log)"
            if left_out
            else ""
        )
        event.add_status(ops.ActiveStatus(f"serving {jobs} {noun} on :{options.web_port}{note}"))

    def _on_remove(self, _: ops.RemoveEvent) -> None:
        service.stop()
        self._halted = ops.MaintenanceStatus("removing: prometheus stopped and disabled")

    def _on_validate_action(self, event: ops.ActionEvent) -> None:
        if not service.installed():
            event.fail("prometheus is not installed yet")
            return
        error = config_file.check_live_config()
        if error is None:
            event.set_results({"valid": "true"})
        else:
            event.set_results({"valid": "false", "error-message": error})

    def _on_reload_action(self, event: ops.ActionEvent) -> None:
        if not service.installed() or service.health() is not Health.UP:
            event.fail("prometheus is not running, so there is nothing to reload")
            return
        try:
            seconds = reload.reload()
        except reload.ReloadError as e:
            event.fail(f"Prometheus refused to reload: {e}")
            return
        event.set_results({"duration-ms": round(seconds * 1000)})

    def _publish_grafana_source(self, options: config.PrometheusConfig) -> None:
        """Tell related Grafanas where this unit serves (route prefix included)."""
        url = self._server_url(grafana_source.DEFAULT_RELATION_NAME, options)
        if url:
            self._grafana_source.publish(
                url, description=f"Prometheus {self.unit.name} in model {self.model.name}"
            )

    def _publish_receiver(self, options: config.PrometheusConfig) -> None:
        """Tell related remote-write senders where this unit takes their samples."""
        url = self._server_url(remote_write.RECEIVER_ENDPOINT, options)
        if url:
            remote_write.publish_receiver(self, url)

    def _server_url(self, endpoint: str, options: config.PrometheusConfig) -> str | None:
        """Return this unit's URL on `endpoint`'s network binding; None if not related or none."""
        if not self.model.relations[endpoint]:
            return None
        binding = self.model.get_binding(endpoint)
        address = binding.network.ingress_address if binding else None
        if address is None:
            logger.warning("%s: no ingress address yet, will publish later", endpoint)
            return None
        host = f"[{address}]" if getattr(address, "version", 4) == 6 else str(address)
        return f"http://{host}:{options.web_port}{options.route_prefix}"


if __name__ == "__main__":  # pragma: nocover
    ops.main(PrometheusCharm)
