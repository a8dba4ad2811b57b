"""Prometheus's alerting: the Alertmanagers it sends alerts to, and the alerts it raises itself.

Alertmanagers come from two relations, both written by another administrator's charm:
`alertmanager` (interface `alertmanager_dispatch`, COS's format, read and validated by
lab_monitoring.interfaces.alertmanager_dispatch) and the legacy `alertmanager-service`
(interface `http`: unit data `hostname` and `port`, as the prometheus-alertmanager charm wrote
it and prometheus2 read it). Every usable unit becomes a target of `alerting.alertmanagers`,
grouped by scheme and route prefix; a unit whose data is invalid is skipped with a warning.

Prometheus's own health rules ship in src/prometheus_alert_rules/, their selectors marked
`%%juju_topology%%`; they are scoped to this application's topology and labelled with it the way
the charms of this repository send theirs over `metrics-endpoint`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import ops
from lab_monitoring.interfaces import alertmanager_dispatch, prometheus_scrape

from prometheus import checks, config_file

logger = logging.getLogger(__name__)

LEGACY_ENDPOINT = "alertmanager-service"
RULES_DIR = Path(__file__).parent / "prometheus_alert_rules"
# Relation rule files are named juju_<model>_...: this name cannot be taken by a relation.
HEALTH_RULES_FILE = "prometheus_health.rules"


def alertmanagers(
    model: ops.Model, dispatch: Iterable[alertmanager_dispatch.Target]
) -> list[dict[str, Any]]:
    """Return `alerting.alertmanagers`: the `alertmanager` targets and the legacy relation's."""
    targets = list(dispatch)
    for relation in model.relations[LEGACY_ENDPOINT]:
        for unit in sorted(relation.units, key=lambda unit: checks.unit_sort_key(unit.name)):
            target = legacy_target(unit.name, relation.data[unit])
            if target is not None:
                targets.append(target)
    return alertmanager_dispatch.alertmanagers(targets)


def legacy_target(unit: str, data: Mapping[str, str]) -> alertmanager_dispatch.Target | None:
    """Return the Alertmanager a legacy `http` unit publishes; None if none (yet) or invalid.

    `hostname` (or Juju's `private-address`) and `port`, plain http at the root path: the
    interface has no scheme or path.
    """
    hostname = data.get("hostname") or data.get("private-address")
    if not hostname and not data.get("port"):
        logger.debug("%s: %s published no address yet", LEGACY_ENDPOINT, unit)
        return None
    try:
        address = f"{checks.host(hostname)}:{checks.port(data.get('port'))}"
    except checks.InvalidError as e:
        logger.warning("%s: ignoring %s: %s", LEGACY_ENDPOINT, unit, e)
        return None
    return alertmanager_dispatch.Target("http", "/", address, unit)


def health_rules(topology: prometheus_scrape.Topology) -> str:
    """Return Prometheus's own rules file, scoped to `topology` and labelled with it."""
    groups = prometheus_scrape.rules_from_files(sorted(RULES_DIR.glob("*.rules")), topology)
    return config_file.render_rules(groups)
