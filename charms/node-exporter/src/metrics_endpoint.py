"""What this charm tells Prometheus over `metrics-endpoint`: one job, and the rules it ships.

The wire format (COS `prometheus_scrape`) is lab_monitoring.interfaces.prometheus_scrape's; the
rules are Prometheus rule files in src/prometheus_alert_rules/, each selector marked with
`%%juju_topology%%` for the sender's topology.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab_monitoring.interfaces import prometheus_scrape

JOB_NAME = "node"
RULES_DIR = Path(__file__).parent / "prometheus_alert_rules"
Topology = prometheus_scrape.Topology


def jobs(port: int) -> list[dict[str, Any]]:
    """Return the scrape job of the machine's exporter on `port`."""
    return [prometheus_scrape.job(JOB_NAME, port)]


def alert_rules(topology: Topology, rules_dir: Path = RULES_DIR) -> dict[str, Any]:
    """Return the shipped alert rules as COS sends them for this topology: `{"groups": [...]}`."""
    return prometheus_scrape.rules_from_files(sorted(rules_dir.glob("*.rules")), topology)


def app_data(topology: Topology, port: int) -> dict[str, str]:
    """Return the leader's application data: metadata, the one scrape job, the alert rules."""
    return prometheus_scrape.app_data(topology, jobs(port), alert_rules(topology))
