"""What this charm tells Prometheus over `metrics-endpoint`, in the COS `prometheus_scrape` format.

The format, as COS's provider writes it (canonical/prometheus-k8s-operator
lib/charms/prometheus_k8s/v0/prometheus_scrape.py, MetricsEndpointProvider.set_scrape_job_spec
and _set_unit_ip; canonical/cos-lib src/cosl/rules.py and src/cosl/juju_topology.py):

- app data (leader) `scrape_metadata`: JSON of the topology, keys model, model_uuid,
  application, unit, charm_name;
- app data `scrape_jobs`: JSON list of jobs; a target `*:PORT` means "each unit's address";
- app data `alert_rules`: JSON `{"groups": [...]}`; each group is renamed
  `<model>_<uuid[:8]>_<application>_<name>_rules` with every character outside [a-zA-Z0-9_:]
  made `_`; each rule gets the labels juju_model, juju_model_uuid, juju_application and
  juju_charm (unless it has them), and its expression gets the matchers juju_model,
  juju_model_uuid and juju_application on every selector (COS uses cos-tool for that; these
  rules mark each selector with `%%juju_topology%%` instead, so a plain substitution does it);
- unit data `prometheus_scrape_unit_name` and `prometheus_scrape_unit_address`.

No ops import: the charm passes in names and numbers.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import yaml

JOB_NAME = "node"
METRICS_PATH = "/metrics"
RULES_DIR = Path(__file__).parent / "prometheus_alert_rules"
TOPOLOGY_PLACEHOLDER = "%%juju_topology%%"
_JUJU_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclasses.dataclass(frozen=True)
class Topology:
    """Where this application lives in Juju; Juju's own names, checked before use in PromQL."""

    model: str
    model_uuid: str
    application: str
    unit: str
    charm_name: str

    def __post_init__(self) -> None:
        for value in (self.model, self.application, self.charm_name):
            if not _JUJU_NAME.fullmatch(value):
                raise ValueError(f"not a Juju name: {value!r}")
        if not _UUID.fullmatch(self.model_uuid):
            raise ValueError(f"not a model uuid: {self.model_uuid!r}")

    @property
    def identifier(self) -> str:
        """Short unique name, as COS builds it: model_uuid8_application."""
        return f"{self.model}_{self.model_uuid[:8]}_{self.application}"

    @property
    def rule_labels(self) -> dict[str, str]:
        """The labels COS adds to every rule."""
        return {
            "juju_model": self.model,
            "juju_model_uuid": self.model_uuid,
            "juju_application": self.application,
            "juju_charm": self.charm_name,
        }

    @property
    def matchers(self) -> str:
        """The PromQL matchers that scope an expression to this application."""
        return (
            f'juju_model="{self.model}",juju_model_uuid="{self.model_uuid}",'
            f'juju_application="{self.application}"'
        )


def app_data(topology: Topology, port: int) -> dict[str, str]:
    """Return the leader's application data: metadata, the one scrape job, the alert rules."""
    metadata = {
        "model": topology.model,
        "model_uuid": topology.model_uuid,
        "application": topology.application,
        "unit": topology.unit,
        "charm_name": topology.charm_name,
    }
    jobs = [
        {
            "job_name": JOB_NAME,
            "metrics_path": METRICS_PATH,
            "static_configs": [{"targets": [f"*:{port}"]}],
        }
    ]
    return {
        "scrape_metadata": json.dumps(metadata, sort_keys=True),
        "scrape_jobs": json.dumps(jobs, sort_keys=True),
        "alert_rules": json.dumps(alert_rules(topology), sort_keys=True),
    }


def alert_rules(topology: Topology, rules_dir: Path = RULES_DIR) -> dict[str, Any]:
    """Return the shipped alert rules as COS sends them for this topology: `{"groups": [...]}`."""
    groups: list[dict[str, Any]] = []
    for path in sorted(rules_dir.glob("*.rules")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            name = f"{topology.identifier}_{group['name']}"
            if not name.endswith("_rules"):
                name += "_rules"
            groups.append(
                {
                    **group,
                    "name": re.sub(r"[^a-zA-Z0-9_:]", "_", name),
                    "rules": [_scoped(rule, topology) for rule in group["rules"]],
                }
            )
    return {"groups": groups}


def _scoped(rule: dict[str, Any], topology: Topology) -> dict[str, Any]:
    labels = {**topology.rule_labels, **rule.get("labels", {})}
    return {
        **rule,
        "expr": rule["expr"].replace(TOPOLOGY_PLACEHOLDER, topology.matchers),
        "labels": labels,
    }
