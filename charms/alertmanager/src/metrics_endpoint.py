"""What this charm tells Prometheus over `metrics-endpoint`: one job, and the rules it ships.

The wire format (COS `prometheus_scrape`) is lab_monitoring.interfaces.prometheus_scrape's; the
rules are Prometheus rule files in src/prometheus_alert_rules/, each selector marked with
`%%juju_topology%%` for the sender's topology.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab_monitoring.interfaces import prometheus_scrape

JOB_NAME = "alertmanager"
RULES_DIR = Path(__file__).parent / "prometheus_alert_rules"
Topology = prometheus_scrape.Topology


def jobs(port: int, route_prefix: str) -> list[dict[str, Any]]:
    """Return the scrape job of every unit's Alertmanager on `port`, under its route prefix."""
    return [prometheus_scrape.job(JOB_NAME, port, f"{route_prefix}/metrics")]


def alert_rules(topology: Topology, rules_dir: Path = RULES_DIR) -> dict[str, Any]:
    """Return the shipped alert rules as COS sends them for this topology: `{"groups": [...]}`."""
    return prometheus_scrape.rules_from_files(sorted(rules_dir.glob("*.rules")), topology)
