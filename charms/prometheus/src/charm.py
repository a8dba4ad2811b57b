#!/usr/bin/env python3
"""Juju wiring of the Prometheus machine charm.

Every event that can change what Prometheus should be doing runs one `_reconcile`, which
computes the desired files from config and relations and lets the workload module apply the
difference: a reload when only prometheus.yml or rules changed, a restart when the flags
changed, nothing when nothing did. Status is decided in one place, `_on_collect_status`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import ops
from lab_monitoring import packaged_service, status
from lab_monitoring.interfaces import grafana_source

import prometheus
import scrape

logger = logging.getLogger(__name__)

LOG_LEVELS = ("debug", "info", "warn", "error")
# Sizes as Prometheus parses them (powers of 1024); a percentage is computed by the charm.
_SIZE = re.compile(r"([1-9][0-9]*)(B|KB|MB|GB|TB|PB|EB)")
_SIZE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB", "EB")
# Prometheus holds the retention size in an int64: above 8EB it refuses to start, and exactly
# 8EB (2^63 bytes) wraps around to -8EiB (seen on a real Prometheus: tests/functional).
_MAX_SIZE = 2**63
_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")
# What a URL may hold and still be a single word in the service's ARGS line.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!&()*+,;=%]+")
# After Prometheus failed to start, hooks leave it alone (no restart loop on every
# update-status) until its flags change or this many seconds have passed.
START_RETRY_SECONDS = packaged_service.START_RETRY_SECONDS
Health = packaged_service.Health
Outcome = packaged_service.Outcome


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrometheusConfig:
    """The charm's config options, validated; each error names the option and the value."""

    web_port: int = 9090
    scrape_interval: str = "15s"
    scrape_timeout: str = "10s"
    evaluation_interval: str = "15s"
    retention_time: str = "15d"
    retention_size: str = "80%"
    external_labels: str = ""
    scrape_jobs: str = ""
    web_external_url: str = ""
    log_level: str = "info"

    def __post_init__(self) -> None:
        if not 0 < self.web_port < 65536:
            raise ValueError(f"web-port: {self.web_port} is not a port number (1-65535)")
        durations = {
            "scrape-interval": (self.scrape_interval, "15s"),
            "scrape-timeout": (self.scrape_timeout, "10s"),
            "evaluation-interval": (self.evaluation_interval, "15s"),
            "retention-time": (self.retention_time, "14d"),
        }
        seconds = {}
        for option, (value, example) in durations.items():
            try:
                seconds[option] = scrape.duration_seconds(value)
            except scrape.InvalidError as e:
                raise ValueError(f"{option}: {e} (try {example})") from None
            if seconds[option] <= 0:
                raise ValueError(f"{option}: {status.quote(value)} must be longer than zero")
        if seconds["scrape-timeout"] > seconds["scrape-interval"]:
            raise ValueError(
                f"scrape-timeout: {status.quote(self.scrape_timeout)} is longer than"
                f" scrape-interval {status.quote(self.scrape_interval)}"
            )
        self._check_retention_size()
        for option, parse in (
            ("external-labels", scrape.parse_external_labels),
            ("scrape-jobs", scrape.parse_user_jobs),
        ):
            try:
                parse(getattr(self, option.replace("-", "_")))
            except scrape.InvalidError as e:
                raise ValueError(f"{option}: {e}") from None
        self._check_external_url()
        if self.log_level not in LOG_LEVELS:
            raise ValueError(
                f"log-level: {status.quote(self.log_level)} is not one of {', '.join(LOG_LEVELS)}"
            )

    @property
    def labels(self) -> dict[str, str]:
        """The external labels, parsed."""
        return scrape.parse_external_labels(self.external_labels)

    @property
    def jobs(self) -> list[dict[str, Any]]:
        """The operator's own scrape jobs, parsed."""
        return scrape.parse_user_jobs(self.scrape_jobs)

    @property
    def route_prefix(self) -> str:
        """The path Prometheus serves under: that of web-external-url, without a final `/`."""
        return urllib.parse.urlsplit(self.web_external_url).path.rstrip("/")

    @property
    def retention_percent(self) -> float | None:
        """The retention-size percentage, or None when it is an absolute size or empty."""
        match = _PERCENT.fullmatch(self.retention_size)
        return float(match.group(1)) if match else None

    def _check_retention_size(self) -> None:
        if not self.retention_size:
            return
        size = _SIZE.fullmatch(self.retention_size)
        if size:
            if int(size.group(1)) * 1024 ** _SIZE_UNITS.index(size.group(2)) >= _MAX_SIZE:
                raise ValueError(
                    f"retention-size: {status.quote(self.retention_size)} is more than Prometheus "
                    "accepts (less than 8EB, such as 7EB)"
                )
            return
        percent = self.retention_percent
        if percent is None:
            raise ValueError(
                f"retention-size: {status.quote(self.retention_size)} is not a size or a"
                " percentage (try 10GB or 80%)"
            )
        if not 0 < percent <= 100:
            raise ValueError(
                f"retention-size: {status.quote(self.retention_size)} is not between 0% and 100%"
            )

    def _check_external_url(self) -> None:
        url = self.web_external_url
        if not url:
            return
        problem = f"web-external-url: {status.quote(url)} is not an http(s) URL"
        try:
            grafana_source.validate_url(url)
        except ValueError:
            raise ValueError(f"{problem} (try http://localhost:9090/)") from None
        if not _URL_CHARS.fullmatch(url):
            raise ValueError(f"{problem}: it has quotes, backslashes or other unsafe characters")


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
        self._stored.set_default(
            rejected="",
            reload_pending=False,
            reload_refused="",
            start={},
            rules_left_out=0,
        )
        self._grafana_source = grafana_source.GrafanaSourceProvider(self)
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
            self.on["metrics-endpoint"].relation_changed,
            self.on["metrics-endpoint"].relation_departed,
            self.on["metrics-endpoint"].relation_broken,
            self.on["target"].relation_changed,
            self.on["target"].relation_departed,
            self.on["target"].relation_broken,
            self.on["grafana-source"].relation_joined,
        ):
            framework.observe(event, self._reconcile)
        framework.observe(self.on.remove, self._on_remove)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)
        framework.observe(self.on["validate-configuration"].action, self._on_validate_action)
        framework.observe(self.on["reload"].action, self._on_reload_action)

    def _reconcile(self, _: ops.EventBase) -> None:
        """Bring the package, files, service and relation data in line with Juju's state."""
        if not prometheus.installed():
            # Set directly, not in collect-status: the install takes a while, and collect-status
            # only runs once the hook is over.
            self.unit.status = ops.MaintenanceStatus("installing prometheus")
            try:
                prometheus.install()
            except prometheus.InstallError as e:
                # Usually the network or the archive; the next hook (update-status) tries again.
                logger.error("apt could not install prometheus: %s", e)
                message = f"could not install prometheus (retrying): {e}"
                self._halted = ops.BlockedStatus(status.one_line(message))
                return
        version = prometheus.version()
        if version:
            self.unit.set_workload_version(version)
        try:
            config = self.load_config(PrometheusConfig)
        except ValueError:
            return  # collect-status names the option; nothing is written

        rendered = prometheus.render_config(
            scrape_interval=config.scrape_interval,
            scrape_timeout=config.scrape_timeout,
            evaluation_interval=config.evaluation_interval,
            external_labels=config.labels,
            scrape_configs=self._scrape_configs(config),
        )
        rule_files, rule_counts, left_out = self._rule_files()
        try:
            result = prometheus.install_config(rendered, rule_files)
        except prometheus.ConfigError as e:
            logger.error("prometheus.yml not installed, promtool rejected it: %s", e)
            self._stored.rejected = str(e)
            return
        self._stored.rejected = ""
        for name, error in result.rejected_rules.items():
            logger.warning("rule file %s left out, promtool rejected it: %s", name, error)
            left_out += rule_counts[name]
        self._stored.rules_left_out = left_out

        args = prometheus.flags(
            port=config.web_port,
            retention_time=config.retention_time,
            retention_size=self._retention_size(config),
            external_url=config.web_external_url,
            log_level=config.log_level,
        )
        flags_changed = prometheus.write_flags(args)
        # The drop-in for a port below 1024 must be in place before the restart that uses it.
        flags_changed |= prometheus.allow_low_ports(config.web_port)
        if result.changed:
            self._stored.reload_pending = True
        health = prometheus.health()
        if health in (Health.STOPPED, Health.FAILING):
            self._start(prometheus.start, " ".join(args))
        elif flags_changed:
            self._start(prometheus.restart, " ".join(args))
        elif health is Health.UP:
            # Serving (systemd or an operator started it): an earlier failure has passed.
            self._start_guard.forget()
            if self._stored.reload_pending:
                self._reload()
        self.unit.set_ports(config.web_port)
        self._publish_grafana_source(config)

    def _start(self, start: Callable[[], bool], flags: str) -> None:
        """Start or restart Prometheus and remember whether it came up.

        A start that failed is not tried again with the same flags for an hour (StartGuard);
        changed flags (a new web-port, say) are tried at once.
        """
        outcome = self._start_guard.start(flags, start, time.time())
        if outcome in (Outcome.UP, Outcome.STARTING):
            # A (re)started Prometheus has read the current files: nothing left to reload.
            self._stored.reload_pending = False
            self._stored.reload_refused = ""

    def _reload(self) -> None:
        """Reload Prometheus; if it refuses, keep the reload pending and say why in status."""
        try:
            prometheus.reload()
        except prometheus.ReloadError as e:
            logger.error("Prometheus refused to reload, it keeps the previous config: %s", e)
            self._stored.reload_refused = str(e)
            return
        self._stored.reload_pending = False
        self._stored.reload_refused = ""

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        if self._halted is not None:
            event.add_status(self._halted)
            return
        if not prometheus.installed():
            event.add_status(ops.MaintenanceStatus("installing prometheus"))
            return
        try:
            config = self.load_config(PrometheusConfig)
        except ValueError as e:
            event.add_status(ops.BlockedStatus(str(e)))
            return
        if self._stored.rejected:
            message = f"promtool rejected the config (check scrape-jobs): {self._stored.rejected}"
            event.add_status(ops.BlockedStatus(status.one_line(message)))
        if self._stored.reload_refused:
            refused = self._stored.reload_refused
            message = f"prometheus refused to reload, still on the old config: {refused}"
            event.add_status(ops.BlockedStatus(status.one_line(message)))
        health = prometheus.health()
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
        jobs = prometheus.job_count()
        noun = "scrape job" if jobs == 1 else "scrape jobs"
        left_out = self._stored.rules_left_out
        note = (
            f"; {left_out} {'rule' if left_out == 1 else 'rules'} from relations left out"
            " (see juju debug-log)"
            if left_out
            else ""
        )
        event.add_status(ops.ActiveStatus(f"serving {jobs} {noun} on :{config.web_port}{note}"))

    def _on_remove(self, _: ops.RemoveEvent) -> None:
        prometheus.stop()
        self._halted = ops.MaintenanceStatus("removing: prometheus stopped and disabled")

    def _on_validate_action(self, event: ops.ActionEvent) -> None:
        if not prometheus.installed():
            event.fail("prometheus is not installed yet")
            return
        error = prometheus.check_live_config()
        if error is None:
            event.set_results({"valid": "true"})
        else:
            event.set_results({"valid": "false", "error-message": error})

    def _on_reload_action(self, event: ops.ActionEvent) -> None:
        if not prometheus.installed() or prometheus.health() is not Health.UP:
            event.fail("prometheus is not running, so there is nothing to reload")
            return
        try:
            seconds = prometheus.reload()
        except prometheus.ReloadError as e:
            event.fail(f"Prometheus refused to reload: {e}")
            return
        event.set_results({"duration-ms": round(seconds * 1000)})

    def _scrape_configs(self, config: PrometheusConfig) -> list[dict[str, Any]]:
        """Return every scrape job: this Prometheus, the operator's, then each relation's."""
        me = self._topology(self.app.name)
        jobs = [
            scrape.self_job(config.web_port, config.route_prefix, me.labels(self.unit.name)),
            *config.jobs,
        ]
        for relation in self.model.relations["metrics-endpoint"]:
            if relation.app is None:
                continue
            app_data = relation.data[relation.app]
            jobs += scrape.cos_jobs(
                app_data,
                {unit.name: relation.data[unit] for unit in relation.units},
                scrape.cos_topology(app_data, self._topology(relation.app.name)),
                scrape_interval=config.scrape_interval,
            )
        for relation in self.model.relations["target"]:
            if relation.app is None:
                continue
            job = scrape.http_job(
                {unit.name: relation.data[unit] for unit in relation.units},
                self._topology(relation.app.name),
            )
            if job:
                jobs.append(job)
        return scrape.unique_jobs(jobs)

    def _rule_files(self) -> tuple[dict[str, str], dict[str, int], int]:
        """Return one rules file per metrics-endpoint application that sent valid rules.

        With it, how many rules each file holds, and how many rules were left out.
        """
        files: dict[str, str] = {}
        counts: dict[str, int] = {}
        left_out = 0
        for relation in self.model.relations["metrics-endpoint"]:
            if relation.app is None:
                continue
            app_data = relation.data[relation.app]
            topology = scrape.cos_topology(app_data, self._topology(relation.app.name))
            rules = scrape.cos_rules(app_data, topology)
            left_out += rules.left_out
            count = sum(len(group["rules"]) for group in rules.groups)
            if not count:
                continue
            # First come, first kept, like jobs in scrape.unique_jobs: an application
            # claiming another's topology cannot replace that one's rules.
            name = f"juju_{topology.identifier}.rules"
            if name in files:
                logger.warning(
                    "%s: rules for %s already sent by another application", name, relation.app.name
                )
                left_out += count
                continue
            files[name] = prometheus.render_rules({"groups": rules.groups})
            counts[name] = count
        return files, counts, left_out

    def _retention_size(self, config: PrometheusConfig) -> str:
        """Return retention-size as Prometheus takes it, a percentage turned into bytes."""
        if config.retention_percent is None:
            return config.retention_size
        size = int(prometheus.tsdb_filesystem_size() * config.retention_percent / 100)
        return f"{size}B"

    def _publish_grafana_source(self, config: PrometheusConfig) -> None:
        """Tell related Grafanas where this unit serves (route prefix included)."""
        if not self.model.relations[grafana_source.DEFAULT_RELATION_NAME]:
            return
        binding = self.model.get_binding(grafana_source.DEFAULT_RELATION_NAME)
        address = binding.network.ingress_address if binding else None
        if address is None:
            logger.warning("grafana-source: no ingress address yet, will publish later")
            return
        host = f"[{address}]" if getattr(address, "version", 4) == 6 else str(address)
        self._grafana_source.publish(
            f"http://{host}:{config.web_port}{config.route_prefix}",
            description=f"Prometheus {self.unit.name} in model {self.model.name}",
        )

    def _topology(self, application: str) -> scrape.Topology:
        return scrape.Topology(self.model.name, self.model.uuid, application)


if __name__ == "__main__":  # pragma: nocover
    ops.main(PrometheusCharm)
