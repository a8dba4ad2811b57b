"""Alert and recording rules from the COS relation, validated and scoped to their sender.

Each rule gets its sender's topology as labels (whatever juju_* labels it set are replaced) and
its expression is rewritten so that every selector only sees the sender's series (promql.py),
as COS does with cos-tool. Groups and rules that are malformed, or whose expression cannot be
parsed and scoped, are left out with a warning and counted; promtool still checks the file
(config_file.install_config).

No ops import: the charm passes relation data in as plain mappings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

from prometheus import checks
from prometheus.topology import Topology

logger = logging.getLogger(__name__)

# The labels COS charms put on their rules; overwritten with the relation's topology.
_TOPOLOGY_LABELS = frozenset({"juju_model", "juju_model_uuid", "juju_application", "juju_charm"})
_EXPR_LIMIT = 10_000


class Rules(NamedTuple):
    """The valid rule groups of one relation, and how many rules had to be left out."""

    groups: list[dict[str, Any]]
    left_out: int = 0

    @property
    def rule_count(self) -> int:
        """How many rules the groups hold."""
        return sum(len(group["rules"]) for group in self.groups)


def cos_rules(app_data: Mapping[str, str], topology: Topology, source: str = "") -> Rules:
    """Return the validated rule groups of one COS relation, scoped to its topology.

    `source` begins each warning (the endpoint and the sending application); by default
    `metrics-endpoint: <topology's application>`.
    """
    source = source or f"metrics-endpoint: {topology.application}"
    raw = app_data.get("alert_rules")
    if not raw:
        return Rules([])
    try:
        rules = checks.json_value(raw, "alert_rules")
        if not isinstance(rules, dict):
            raise checks.InvalidError("alert_rules is not an object")
        groups = rules["groups"]
        if not isinstance(groups, list):
            raise checks.InvalidError("groups is not a list")
    except (ValueError, KeyError, TypeError) as e:
        logger.warning("%s: alert_rules ignored: %s", source, checks.reason(e))
        return Rules([])
    clean: list[dict[str, Any]] = []
    names: set[str] = set()
    left_out = 0
    for group in groups:
        try:
            checked, skipped = _rule_group(group, topology, source)
            if checked["name"] in names:
                raise checks.InvalidError(
                    f"group name {checks.show(checked['name'])} is used twice"
                )
        except (checks.InvalidError, TypeError, AttributeError) as e:
            logger.warning("%s: skipping rule group: %s", source, checks.reason(e))
            rules = group.get("rules") if isinstance(group, dict) else None
            left_out += len(rules) if isinstance(rules, list) else 0
            continue
        names.add(checked["name"])
        clean.append(checked)
        left_out += skipped
    return Rules(clean, left_out)


def _rule_group(group: object, topology: Topology, source: str) -> tuple[dict[str, Any], int]:
    """Validate one rule group; return it and how many of its rules were left out.

    Malformed rules, and rules whose expression cannot be scoped, are skipped with a warning.
    """
    if not isinstance(group, dict):
        raise checks.InvalidError("a rule group must be an object")
    clean: dict[str, Any] = {"name": checks.text_value(group.get("name"), "group name")}
    if "interval" in group:
        checks.duration_seconds(group["interval"])
        clean["interval"] = group["interval"]
    rules = group.get("rules")
    if not isinstance(rules, list):
        raise checks.InvalidError(f"group {checks.show(clean['name'])} has no list of rules")
    clean["rules"] = []
    for rule in rules:
        try:
            clean["rules"].append(_rule(rule, topology, source))
        except (checks.InvalidError, TypeError, AttributeError) as e:
            logger.warning(
                "%s: skipping a rule in %s: %s",
                source,
                checks.show(clean["name"]),
                checks.reason(e),
            )
    return clean, len(rules) - len(clean["rules"])


def _rule(rule: object, topology: Topology, source: str) -> dict[str, Any]:
    """Validate one alerting or recording rule, scope its expression, label it with the topology.

    COS charms label their rules with juju_model, juju_model_uuid, juju_application and
    juju_charm; those are overwritten with the relation's topology, never trusted. Other juju_*
    labels (such as juju_unit, which on an application's rule would name one unit) are dropped.
    """
    # The PromQL parser (a compiled extension) is loaded only by a hook that scopes a rule.
    from prometheus import promql

    if not isinstance(rule, dict):
        raise checks.InvalidError("a rule must be an object")
    if ("alert" in rule) == ("record" in rule):
        raise checks.InvalidError("a rule needs exactly one of alert and record")
    clean: dict[str, Any] = {}
    if "alert" in rule:
        clean["alert"] = checks.text_value(rule["alert"], "alert name")
    else:
        clean["record"] = checks.match(rule["record"], checks.METRIC_NAME, "record")
    expr = checks.text_value(rule.get("expr"), "expr", multiline=True, limit=_EXPR_LIMIT)
    try:
        clean["expr"] = promql.scope(expr, topology.labels())
    except promql.RefusedError as e:
        raise checks.InvalidError(f"expr {checks.show(expr)}: {e}") from None
    if "for" in rule:
        checks.duration_seconds(rule["for"])
        clean["for"] = rule["for"]
    labels = rule.get("labels", {})
    if not isinstance(labels, dict):
        raise checks.InvalidError("labels must be an object")
    dropped = sorted(
        str(key) for key in labels if str(key).startswith("juju_") and key not in _TOPOLOGY_LABELS
    )
    if dropped:
        logger.warning("%s: ignoring labels %s on a rule", source, checks.show(dropped))
    own = {key: value for key, value in labels.items() if not str(key).startswith("juju_")}
    clean["labels"] = {**checks.labels(own), **topology.rule_labels()}
    if "annotations" in rule:
        annotations = rule["annotations"]
        if not isinstance(annotations, dict):
            raise checks.InvalidError("annotations must be an object")
        clean["annotations"] = {
            checks.match(key, checks.LABEL_NAME, "annotation name"): checks.text_value(
                value, f"annotation {key}", multiline=True
            )
            for key, value in annotations.items()
        }
    return clean
