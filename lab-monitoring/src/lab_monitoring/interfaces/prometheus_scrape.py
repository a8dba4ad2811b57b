"""The provider half of `metrics-endpoint` (interface `prometheus_scrape`), in the COS format.

A charm whose service has a /metrics page tells Prometheus where to scrape it, and which alert
rules go with it. The format, as COS's provider writes it (canonical/prometheus-k8s-operator
lib/charms/prometheus_k8s/v0/prometheus_scrape.py, MetricsEndpointProvider.set_scrape_job_spec
and _set_unit_ip; canonical/cos-lib src/cosl/rules.py and src/cosl/juju_topology.py):

- app data (leader) `scrape_metadata`: JSON of the topology, keys model, model_uuid,
  application, unit, charm_name;
- app data `scrape_jobs`: JSON list of jobs; a target `*:PORT` means "each unit's address";
- app data `alert_rules`: JSON `{"groups": [...]}`; each group is renamed
  `<model>_<uuid[:8]>_<application>_<name>_rules` with every character outside [a-zA-Z0-9_:]
  made `_`; each rule gets the labels juju_model, juju_model_uuid, juju_application and
  juju_charm (unless it has them), and its expression gets the matchers juju_model,
  juju_model_uuid and juju_application on every selector (COS uses cos-tool for that; rules
  shipped with these charms mark each selector with `%%juju_topology%%` instead, so a plain
  substitution does it);
- unit data `prometheus_scrape_unit_name` and `prometheus_scrape_unit_address`.

Use, in the charm's reconcile:

    prometheus_scrape.publish(self, jobs=[prometheus_scrape.job("node", 9100)], rules=rules)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ops
import yaml

from lab_monitoring import relation_data

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "metrics-endpoint"
TOPOLOGY_PLACEHOLDER = "%%juju_topology%%"
_JUJU_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclasses.dataclass(frozen=True)
class Topology:
    """Where an application lives in Juju; Juju's own names, checked before use in PromQL."""

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

    @classmethod
    def of(cls, charm: ops.CharmBase) -> Topology:
        """Return the topology of `charm`'s unit."""
        model = charm.model
        return cls(model.name, model.uuid, model.app.name, model.unit.name, charm.meta.name)

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


def job(name: str, port: int, metrics_path: str = "/metrics") -> dict[str, Any]:
    """Return one scrape job of every unit's address on `port` (`*:PORT`, as COS writes it)."""
    return {
        "job_name": name,
        "metrics_path": metrics_path,
        "static_configs": [{"targets": [f"*:{port}"]}],
    }


def rules_from_files(paths: Sequence[Path], topology: Topology) -> dict[str, Any]:
    """Return rule files (Prometheus YAML) as COS sends them for `topology`: {"groups": ...}."""
    groups: list[dict[str, Any]] = []
    for path in paths:
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


def app_data(
    topology: Topology, jobs: Sequence[Mapping[str, Any]], rules: Mapping[str, Any] | None
) -> dict[str, str]:
    """Return the leader's application data: the metadata, the scrape jobs and the rules."""
    metadata = {
        "model": topology.model,
        "model_uuid": topology.model_uuid,
        "application": topology.application,
        "unit": topology.unit,
        "charm_name": topology.charm_name,
    }
    data = {
        "scrape_metadata": json.dumps(metadata, sort_keys=True),
        "scrape_jobs": json.dumps(list(jobs), sort_keys=True),
    }
    if rules is not None:
        data["alert_rules"] = json.dumps(rules, sort_keys=True)
    return data


def publish(
    charm: ops.CharmBase,
    jobs: Sequence[Mapping[str, Any]],
    *,
    rules: Mapping[str, Any] | None = None,
    serves: bool = True,
    endpoint: str = DEFAULT_ENDPOINT,
) -> None:
    """Write the jobs and rules (leader) and this unit's address to every `endpoint` relation.

    `serves=False` withholds the unit's address (node-exporter units that share a machine's
    exporter publish it once). The address is the relation's ingress address, which the
    scraping Prometheus can reach; without one yet, the next hook publishes it.
    """
    relations = charm.model.relations[endpoint]
    if not relations:
        return
    data = app_data(Topology.of(charm), jobs, rules)
    for relation in relations:
        unit_data = {"prometheus_scrape_unit_name": charm.unit.name}
        binding = charm.model.get_binding(relation) if serves else None
        ingress = binding.network.ingress_address if binding else None
        if ingress is not None:
            unit_data["prometheus_scrape_unit_address"] = str(ingress)
        elif serves:
            logger.warning("%s: no ingress address yet, will publish later", endpoint)
        relation_data.update(
            relation.data[charm.unit], unit_data, owned=("prometheus_scrape_unit_address",)
        )
        if charm.unit.is_leader():
            relation_data.update(relation.data[charm.app], data)


def _scoped(rule: dict[str, Any], topology: Topology) -> dict[str, Any]:
    labels = {**topology.rule_labels, **rule.get("labels", {})}
    return {
        **rule,
        "expr": rule["expr"].replace(TOPOLOGY_PLACEHOLDER, topology.matchers),
        "labels": labels,
    }
