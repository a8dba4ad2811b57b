#!/usr/bin/env python3
"""Juju wiring of the node-exporter subordinate charm.

Every event that can change what the machine's exporter should be doing runs one `_reconcile`:
install the package, record this unit's claim on the exporter, and, in the unit that owns the
machine's exporter (see node_exporter.sharing), write the flags and start or restart it only
when needed; then tell Prometheus where to scrape. Status is decided in one place,
`_on_collect_status`.

Only the owner starts or restarts the exporter. So when a start fails, the owner remembers why
and with which flags, and no hook (the owner's, or another unit's on the same machine) starts
it again with the same flags for START_RETRY_SECONDS: the other units say that the exporter is
not running and which unit runs it, whose status has the cause.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import ops
from lab_monitoring import packaged_service, status
from lab_monitoring.interfaces import grafana_dashboard, prometheus_scrape

import config
import metrics_endpoint
from node_exporter import exporter, flags, sharing

logger = logging.getLogger(__name__)

METRICS_ENDPOINT = prometheus_scrape.DEFAULT_ENDPOINT
# After the exporter failed to start, hooks leave it alone (no restart loop on every
# update-status) until its flags change or this many seconds have passed.
START_RETRY_SECONDS = packaged_service.START_RETRY_SECONDS
Health = packaged_service.Health
# The dashboards this charm sends to a related Grafana (grafana-dashboard).
DASHBOARDS = Path(__file__).parent / "grafana_dashboards"


class NodeExporterCharm(ops.CharmBase):
    """prometheus-node-exporter on the machine of any principal, scraped by Prometheus."""

    _stored = ops.StoredState()

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        # Why the exporter last failed to start, with which flags and when (StartGuard).
        self._stored.set_default(start={})
        self._start_guard = packaged_service.StartGuard(self._stored.start)
        # Why this dispatch's reconcile stopped early (collect-status shows it first), if it did.
        self._halted: ops.StatusBase | None = None
        for event in (
            self.on.install,
            self.on.start,
            self.on.config_changed,
            self.on.upgrade_charm,
            self.on.update_status,
            self.on.leader_elected,
            self.on[METRICS_ENDPOINT].relation_joined,
            self.on[METRICS_ENDPOINT].relation_changed,
            self.on[grafana_dashboard.DEFAULT_RELATION_NAME].relation_joined,
        ):
            framework.observe(event, self._reconcile)
        framework.observe(self.on.remove, self._on_remove)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _reconcile(self, _: ops.EventBase) -> None:
        """Bring the package, the flags, the service and relation data in line with Juju."""
        # The application's leader sends the dashboard, whatever this machine's exporter does:
        # one copy per application, however many machines it is on.
        grafana_dashboard.publish(self, DASHBOARDS, inject_dropdowns=False)
        if not exporter.installed():
            # Set directly, not in collect-status: the install takes a while, and collect-status
            # only runs once the hook is over.
            self.unit.status = ops.MaintenanceStatus(f"installing {exporter.PACKAGE}")
            try:
                exporter.install()
            except exporter.InstallError as e:
                # Usually the network or the archive; the next hook (update-status) tries again.
                logger.error("apt could not install %s: %s", exporter.PACKAGE, e)
                message = f"could not install {exporter.PACKAGE} (retrying): {e}"
                self._halted = ops.BlockedStatus(status.one_line(message))
                return
        version = exporter.version()
        if version:
            self.unit.set_workload_version(version)
        options = self._config()
        if options is None or self._unknown_collectors(options):
            return  # collect-status says why; nothing is written

        args = options.args
        owner = sharing.claim(self.unit.name, args)
        is_owner = owner.unit == self.unit.name
        if is_owner:
            self._run_exporter(owner.args)
        # Prometheus should scrape each machine once: of this application's units on the
        # machine, only the owner publishes the address. A unit of another application with the
        # same settings publishes too, since its application may feed another Prometheus.
        shares = owner.application != self.app.name and owner.args == tuple(args)
        self._open_port(options.port if is_owner else None)
        self._publish(options, address=is_owner or shares)

    def _run_exporter(self, args: tuple[str, ...]) -> None:
        """Write the flags and (re)start the exporter if needed: the owner's job alone."""
        changed = flags.write(args)
        # The drop-in for a port below 1024 must be in place before the restart that uses it.
        changed |= exporter.allow_low_ports(flags.port_of(args))
        health = exporter.health()
        if health in (Health.STOPPED, Health.FAILING):
            self._start(exporter.start, args)
        elif changed:
            self._start(exporter.restart, args)
        elif health is Health.UP:
            # Serving (systemd or an operator started it): an earlier failure has passed.
            self._start_guard.forget()

    def _start(self, start: Callable[[], bool], args: tuple[str, ...]) -> None:
        """Start or restart the exporter and remember whether it came up.

        A start that failed is not tried again with the same flags for an hour (StartGuard);
        changed flags (a new port, say) are tried at once.
        """
        self._start_guard.start(" ".join(args), start, time.time())

    def _on_remove(self, _: ops.RemoveEvent) -> None:
        """Give up this unit's claim: stop the exporter if it was the last, else hand it over."""
        owner = sharing.release(self.unit.name)
        if owner is None:
            exporter.stop()
            removed = f"{exporter.SERVICE} stopped and disabled"
            self._halted = ops.MaintenanceStatus(f"removing: {removed}")
            return
        removed = f"{owner.unit} runs {exporter.SERVICE} now"
        self._halted = ops.MaintenanceStatus(f"removing: {removed}")
        # If this unit owned the exporter, its successor's flags apply from now on; otherwise
        # they are the flags in place already, and nothing changes.
        changed = flags.write(owner.args)
        changed |= exporter.allow_low_ports(flags.port_of(owner.args))
        if not changed:
            return
        logger.info("the exporter passes to %s, with its settings", owner.unit)
        try:
            exporter.restart()
        except exporter.StartError as e:
            # This unit is going away; the successor tries once more at its next hook, and
            # reports the cause if that fails too.
            logger.error("%s, with the settings of %s", e, owner.unit)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        if self._halted is not None:
            # Removing (say what it did, never Blocked), or the install failed.
            event.add_status(self._halted)
            return
        if not exporter.installed():
            event.add_status(ops.MaintenanceStatus(f"installing {exporter.PACKAGE}"))
            return
        try:
            options = self.load_config(config.NodeExporterConfig)
        except ValueError as e:
            event.add_status(ops.BlockedStatus(str(e)))
            return
        unknown = self._unknown_collectors(options)
        if unknown:
            event.add_status(ops.BlockedStatus(unknown))
            return
        owners = sharing.live_claims(self.unit.name)
        owner = owners[0] if owners else None
        health = exporter.health()
        if health in (Health.STOPPED, Health.FAILING):
            # Whatever instant of systemd's restart loop this is: the cause, not "starting".
            event.add_status(ops.BlockedStatus(status.one_line(self._not_running(owner, health))))
        elif health is Health.STARTING:
            event.add_status(ops.WaitingStatus(f"{exporter.SERVICE} is starting"))
        if owner is None or owner.unit == self.unit.name:
            event.add_status(ops.ActiveStatus(f"exporting on :{options.port}"))
        elif owner.args == tuple(options.args):
            event.add_status(
                ops.ActiveStatus(f"exporting on :{options.port} (run by {owner.unit})")
            )
        else:
            event.add_status(
                ops.BlockedStatus(
                    f"{owner.unit} runs this machine's exporter with other settings"
                    f" (:{flags.port_of(owner.args)}); give both the same port,"
                    " collectors and log-level"
                )
            )

    # --- helpers ------------------------------------------------------------------------------

    def _not_running(self, owner: sharing.Claim | None, health: Health) -> str:
        """Say why the exporter is not running, as far as this unit knows."""
        state = "keeps failing" if health is Health.FAILING else "is not running"
        if owner is not None and owner.unit != self.unit.name:
            # Only the owner starts it, and the owner's status says why it did not come up.
            return f"{exporter.SERVICE} {state}: {owner.unit} starts it (see its status)"
        return self._start_guard.failure or (
            f"{exporter.SERVICE} {state} (see journalctl -u {exporter.SERVICE})"
        )

    def _config(self) -> config.NodeExporterConfig | None:
        try:
            return self.load_config(config.NodeExporterConfig)
        except ValueError:
            return None

    def _unknown_collectors(self, options: config.NodeExporterConfig) -> str:
        """Say which configured collectors the installed exporter does not know ("" if none)."""
        if not options.switches:
            return ""
        known = exporter.known_collectors()
        if not known:
            return f"collectors: cannot list the collectors of {exporter.BINARY} (--help)"
        unknown = [name for name in options.switches if name not in known]
        if not unknown:
            return ""
        names = ", ".join(json.dumps(name) for name in unknown)
        verb = "is not a collector" if len(unknown) == 1 else "are not collectors"
        version = exporter.version() or "?"
        return (
            f"collectors: {names} {verb} of node_exporter {version} (see {exporter.BINARY} --help)"
        )

    def _open_port(self, port: int | None) -> None:
        """Open the exporter's port, or close ours when another unit owns the exporter.

        Juju refuses two units on one machine opening the same port, so only the owner opens
        it; a refusal (the old owner still holds it while it leaves) is retried next hook.
        """
        try:
            self.unit.set_ports(*([port] if port else []))
        except ops.ModelError as e:
            logger.warning("could not open port %s, will retry: %s", port, e)

    def _publish(self, options: config.NodeExporterConfig, *, address: bool) -> None:
        """Write the scrape job and rules (leader) and this unit's address (if it serves)."""
        topology = prometheus_scrape.Topology.of(self)
        prometheus_scrape.publish(
            self,
            metrics_endpoint.jobs(options.port),
            rules=metrics_endpoint.alert_rules(topology),
            serves=address,
        )


if __name__ == "__main__":  # pragma: nocover
    ops.main(NodeExporterCharm)
