"""What the metrics-endpoint, target and receive-remote-write relations ask this Prometheus to do.

The Juju side of prometheus/jobs.py and prometheus/rules.py: it reads each relation's databags
and hands them over as plain mappings, with the topology Juju knows for the remote application.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import ops
from lab_monitoring.interfaces import remote_write

from prometheus import config_file, jobs, rules, topology

logger = logging.getLogger(__name__)

# Where rules come from: (state key, application, app data, the topology they are scoped to,
# how warnings name the source).
_RuleSource = tuple[str, str, Mapping[str, str], topology.Topology, str]


class RuleFiles(NamedTuple):
    """One rules file per metrics-endpoint application that sent valid rules."""

    texts: dict[str, str]
    counts: dict[str, int]  # how many rules each file holds
    left_out: int  # rules sent but left out (malformed, unscopable, or another's topology)
    # Per relation, what its rules were made from and what they became (see rule_files).
    scoped: dict[str, dict[str, Any]]


def scrape_configs(
    model: ops.Model,
    *,
    port: int,
    route_prefix: str,
    operator_jobs: list[dict[str, Any]],
    scrape_interval: str,
) -> list[dict[str, Any]]:
    """Return every scrape job: this Prometheus, the operator's, then each relation's."""
    me = juju_topology(model, model.app.name)
    found = [jobs.self_job(port, route_prefix, me.labels(model.unit.name)), *operator_jobs]
    for relation in model.relations["metrics-endpoint"]:
        if relation.app is None:
            continue
        app_data = relation.data[relation.app]
        found += jobs.cos_jobs(
            app_data,
            {unit.name: relation.data[unit] for unit in relation.units},
            topology.cos_topology(app_data, juju_topology(model, relation.app.name)),
            scrape_interval=scrape_interval,
        )
    for relation in model.relations["target"]:
        if relation.app is None:
            continue
        job = jobs.http_job(
            {unit.name: relation.data[unit] for unit in relation.units},
            juju_topology(model, relation.app.name),
        )
        if job:
            found.append(job)
    return jobs.unique_jobs(found)


def rule_files(
    model: ops.Model,
    scoped: Mapping[str, Mapping[str, Any]],
    senders: Sequence[remote_write.RuleSender] = (),
) -> RuleFiles:
    """Return the rules file of each application that sent valid rules.

    Rules come from metrics-endpoint applications and from remote-write `senders` (already
    parsed by lab_monitoring's remote_write), validated and scoped the same way.
    Scoping rules parses every expression (a compiled PromQL parser, loaded on first use), so a
    relation's rules are only validated and scoped again when what it sent, or its topology,
    changed: `scoped` is what the last hook made of each relation (RuleFiles.scoped, kept by
    the charm), and the result says what this one made.
    """
    texts: dict[str, str] = {}
    counts: dict[str, int] = {}
    left_out = 0
    now_scoped: dict[str, dict[str, Any]] = {}
    sources: list[_RuleSource] = []
    for relation in model.relations["metrics-endpoint"]:
        if relation.app is None:
            continue
        app_data = relation.data[relation.app]
        sender = topology.cos_topology(app_data, juju_topology(model, relation.app.name))
        where = f"metrics-endpoint: {relation.app.name}"
        sources.append((str(relation.id), relation.app.name, app_data, sender, where))
    sources += _remote_write_sources(model, senders)
    for key, application, app_data, sender, where in sources:
        source = json.dumps([app_data.get("alert_rules", ""), list(sender)])
        digest = hashlib.sha256(source.encode()).hexdigest()
        made = dict(scoped.get(key, {}))
        if made.get("digest") != digest:
            found = rules.cos_rules(app_data, sender, where)
            text = config_file.render_rules({"groups": found.groups}) if found.rule_count else ""
            made = {
                "digest": digest,
                "text": text,
                "count": found.rule_count,
                "left": found.left_out,
            }
        now_scoped[key] = made
        left_out += made["left"]
        if not made["count"]:
            continue
        # First come, first kept, like jobs in jobs.unique_jobs: an application claiming
        # another's topology cannot replace that one's rules.
        name = f"juju_{sender.identifier}.rules"
        if name in texts:
            logger.warning(
                "%s: rules for %s already sent by another application", name, application
            )
            left_out += made["count"]
            continue
        texts[name] = made["text"]
        counts[name] = made["count"]
    return RuleFiles(texts, counts, left_out, now_scoped)


def _remote_write_sources(
    model: ops.Model, senders: Sequence[remote_write.RuleSender]
) -> list[_RuleSource]:
    """Split each remote-write sender's rules by the application they declare they are for.

    An aggregator (the opentelemetry-collector) forwards its principals' rules in one databag,
    one group per application, each rule labelled with its own application's topology (as COS's
    receiver reads them). Each group is scoped to the topology its first labelled rule declares,
    the sender's own when none does: a declared topology is trusted as scrape_metadata is on
    metrics-endpoint (a sender can push series with any labels anyway).
    """
    sources: list[_RuleSource] = []
    for sender in senders:
        fallback = _from_rules(sender.topology) or juju_topology(model, sender.application)
        by_owner: dict[topology.Topology, list[Any]] = {}
        for group in sender.rules["groups"]:
            owner = _from_rules(remote_write.rule_topology({"groups": [group]})) or fallback
            by_owner.setdefault(owner, []).append(group)
        for owner, groups in by_owner.items():
            app_data = {"alert_rules": json.dumps({"groups": groups})}
            key = f"rw{sender.relation_id}/{owner.identifier}"
            where = f"receive-remote-write: {sender.application} (rules for {owner.application})"
            sources.append((key, sender.application, app_data, owner, where))
    return sources


def _from_rules(found: remote_write.RuleTopology | None) -> topology.Topology | None:
    if found is None:
        return None
    return topology.Topology(found.model, found.model_uuid, found.application, found.charm)


def juju_topology(model: ops.Model, application: str) -> topology.Topology:
    """Return the topology Juju gives `application` in this model."""
    return topology.Topology(model.name, model.uuid, application)
