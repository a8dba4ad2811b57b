"""Where a set of targets or rules lives in Juju: the juju_* labels of their series."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import NamedTuple

from prometheus import checks

logger = logging.getLogger(__name__)


# NamedTuple rather than dataclass for this and the other small records of the package: a
# dataclass costs a hook's import about eight times as much to define.
class Topology(NamedTuple):
    """Where a set of targets lives in Juju; becomes the juju_* labels of their series."""

    model: str
    model_uuid: str
    application: str
    # The charm's name, when the sender declares a valid one: juju_charm on targets and rules.
    charm: str = ""

    @property
    def identifier(self) -> str:
        """Short unique name, as the COS charms build it: model_uuid8_application."""
        return f"{self.model}_{self.model_uuid[:8]}_{self.application}"

    def labels(self, unit: str | None = None) -> dict[str, str]:
        """Return the labels that scope series (no juju_charm), with juju_unit for a unit."""
        labels = {
            "juju_model": self.model,
            "juju_model_uuid": self.model_uuid,
            "juju_application": self.application,
        }
        if unit:
            labels["juju_unit"] = unit
        return labels

    def target_labels(self, unit: str | None = None) -> dict[str, str]:
        """Return the labels of a relation's targets: as COS sets them, juju_charm too.

        COS's Prometheus puts cosl's `JujuTopology.label_matcher_dict` (juju_model,
        juju_model_uuid, juju_application and juju_charm when the charm is known) and, for a
        unit's job, juju_unit on each static_config (canonical/prometheus-k8s-operator,
        lib/charms/prometheus_k8s/v0/prometheus_scrape.py, `PrometheusConfig._build_per_unit_job`
        and `expand_wildcard_targets_into_individual_jobs`, commit 432c227d6561; canonical/cos-lib
        src/cosl/juju_topology.py `label_matcher_dict`, commit d8a21d211c04).
        """
        labels = self.rule_labels()
        if unit:
            labels["juju_unit"] = unit
        return labels

    def rule_labels(self) -> dict[str, str]:
        """Return the labels of a rule from this application: as COS sets them, juju_charm too."""
        return {**self.labels(), **({"juju_charm": self.charm} if self.charm else {})}


def cos_topology(app_data: Mapping[str, str], fallback: Topology) -> Topology:
    """Return the topology a COS provider declares in `scrape_metadata`, or `fallback`."""
    raw = app_data.get("scrape_metadata")
    if raw is None:
        return fallback
    try:
        meta = checks.json_value(raw, "scrape_metadata")
        charm = meta.get("charm_name")
        topology = Topology(
            model=checks.match(meta["model"], checks.JUJU_NAME, "model"),
            model_uuid=checks.match(meta["model_uuid"], checks.UUID, "model_uuid"),
            application=checks.match(meta["application"], checks.JUJU_NAME, "application"),
            # Optional: without a valid one, rules just carry no juju_charm label.
            charm=charm if checks.is_match(charm, checks.JUJU_NAME) else "",
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        logger.warning(
            "metrics-endpoint: %s: bad scrape_metadata (%s), using Juju's names",
            fallback.application,
            checks.reason(e),
        )
        return fallback
    return topology
