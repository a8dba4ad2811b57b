"""The `prometheus_remote_write` relation, both halves, in the COS format.

A receiver (our Prometheus, endpoint `receive-remote-write`) tells senders (Canonical's
opentelemetry-collector, a Prometheus in agent role, ...) where to push samples, and takes the
alert rules that go with them; a sender (our Prometheus, endpoint `send-remote-write`) reads
where to push. The format, as COS writes and reads it (canonical/prometheus-k8s-operator
lib/charms/prometheus_k8s/v1/prometheus_remote_write.py, which replaced v0 under the same
LIBID; LIBPATCH 15 at 432c227, LIBPATCH 18 as vendored by opentelemetry-collector-operator at
0357b4b):

- receiver unit data `remote_write`: JSON `{"url": ...}`, the unit's server URL with its path
  prefix and `/api/v1/write` (PrometheusRemoteWriteProvider._set_endpoint_on_relation joins
  `server_url.rstrip("/")`, "/" and `endpoint_path.strip("/")`); no other key.
- sender app data `alert_rules`: JSON `{"groups": [...]}` (PrometheusRemoteWriteConsumer.
  _push_alerts_to_relation_databag, from cosl's AlertRules.as_dict: group names
  `<model>_<uuid8>_<application>_<name>_rules`, each rule labelled juju_model,
  juju_model_uuid, juju_application, juju_charm, and juju_unit on the per-unit
  HostMetricsMissing copies). The sender writes no metadata key: an aggregator such as the
  opentelemetry-collector forwards its principals' rules in the same databag, each rule with
  its own application's labels, so the topology lives in the rules. COS's receiver
  (PrometheusRemoteWriteProvider.alerts and _get_identifier_by_alert_rules) takes the labels
  of the first labelled rule as the sender's identity, falls back to a `scrape_metadata` key
  that no current sender writes, and scopes each rule's expression to that rule's own labels.
- receiver app data `event` (leader): JSON `{"errors": "..."}` when cos-tool rejected the
  rules, read by the sender (PrometheusRemoteWriteConsumer._handle_endpoints_changed) to set
  its status. Written here by `publish_rule_errors`.

Receiver use (in the Prometheus charm's reconcile):

    remote_write.publish_receiver(self, f"http://{address}:{port}{route_prefix}")
    for sender in remote_write.senders(self):       # parsed, never raises on remote data
        ... scrape.cos_rules({"alert_rules": json.dumps(sender.rules)}, topology) ...

Sender use:

    urls = remote_write.endpoints(self)              # validated, de-duplicated, sorted

Remote data comes from another administrator's charm: each value is parsed and checked here,
invalid units and databags are skipped with a logged reason, nothing raises out of `senders()`
or `endpoints()`. The rules are returned parsed but not judged rule by rule: the Prometheus
charm's own pipeline validates and scopes every rule before promtool sees it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import ops

from lab_monitoring import relation_data, status
from lab_monitoring.interfaces import grafana_source

logger = logging.getLogger(__name__)

RECEIVER_ENDPOINT = "receive-remote-write"
SENDER_ENDPOINT = "send-remote-write"
WRITE_PATH = "/api/v1/write"

# One unit's `remote_write` JSON: a URL and a little syntax.
MAX_UNIT_VALUE = 4096
# A sender's `alert_rules`: the opentelemetry-collector's own rules plus those of every
# principal it serves come to some 25 KB; a few hundred principals' rules still fit.
MAX_RULES_VALUE = 4 * 1024 * 1024

_JUJU_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclasses.dataclass(frozen=True)
class RuleTopology:
    """The juju_* identity a sender's rules declare (validated Juju names and uuid)."""

    model: str
    model_uuid: str
    application: str
    # The charm's name; "" when the rules do not give a valid one.
    charm: str = ""

    @property
    def identifier(self) -> str:
        """Short unique name, as COS builds it: model_uuid8_application."""
        return f"{self.model}_{self.model_uuid[:8]}_{self.application}"


@dataclasses.dataclass(frozen=True)
class RuleSender:
    """One related sender's alert rules, parsed; the receiving charm validates each rule."""

    application: str
    relation_id: int
    # {"groups": [...]} as the sender wrote it; `groups` is a list, its items are unchecked.
    rules: dict[str, Any]
    # The identity the rules declare (COS's choice: the first labelled rule's), None if none.
    topology: RuleTopology | None


# Receiver half


def write_url(server_url: str) -> str:
    """Return the remote-write URL of a server at `server_url`, as COS joins it.

    Raises:
        ValueError: `server_url` is not a plain http(s) URL (a bug in the caller).
    """
    grafana_source.validate_url(server_url)
    return f"{server_url.rstrip('/')}/{WRITE_PATH.strip('/')}"


def publish_receiver(
    charm: ops.CharmBase, server_url: str, *, endpoint: str = RECEIVER_ENDPOINT
) -> bool:
    """Write this unit's `remote_write` URL to every `endpoint` relation; True if any changed.

    `server_url` is where senders reach this unit's Prometheus, with its route prefix
    (`http://10.0.0.5:9090`, `http://10.0.0.5:9090/prom`).
    """
    wanted = {"remote_write": json.dumps({"url": write_url(server_url)})}
    changed = False
    for relation in charm.model.relations[endpoint]:
        changed |= relation_data.update(relation.data[charm.unit], wanted)
    return changed


def senders(charm: ops.CharmBase, *, endpoint: str = RECEIVER_ENDPOINT) -> list[RuleSender]:
    """Return the alert rules of every related sender that wrote valid ones, by application."""
    found: list[RuleSender] = []
    for relation in charm.model.relations[endpoint]:
        if relation.app is None:
            continue
        app_data = relation.data[relation.app]
        raw = app_data.get("alert_rules")
        if not raw:
            continue
        try:
            rules = _parse_rules(raw)
        except ValueError as e:
            logger.warning("%s: %s: alert_rules ignored: %s", endpoint, relation.app.name, e)
            continue
        topology = rule_topology(rules) or _metadata_topology(app_data.get("scrape_metadata"))
        found.append(RuleSender(relation.app.name, relation.id, rules, topology))
    return sorted(found, key=lambda s: (s.application, s.relation_id))


def rule_topology(rules: Mapping[str, Any]) -> RuleTopology | None:
    """Return the topology of the first rule whose labels hold a valid one, as COS picks it."""
    groups = rules.get("groups")
    for group in groups if isinstance(groups, list) else ():
        group_rules = group.get("rules") if isinstance(group, dict) else None
        if not isinstance(group_rules, list) or not group_rules:
            continue
        first = group_rules[0]
        labels = first.get("labels") if isinstance(first, dict) else None
        if isinstance(labels, dict):
            topology = _topology(
                labels.get("juju_model"),
                labels.get("juju_model_uuid"),
                labels.get("juju_application"),
                labels.get("juju_charm"),
            )
            if topology is not None:
                return topology
    return None


def publish_rule_errors(
    charm: ops.CharmBase,
    errors: Mapping[int, str],
    *,
    endpoint: str = RECEIVER_ENDPOINT,
) -> bool:
    """Tell each sender whether its rules were refused (leader only); True if anything changed.

    `errors` maps a relation id to a one-line reason; relations without one are told their
    rules are fine. The sender reads `{"errors": ...}` as COS's receiver writes it.
    """
    if not charm.unit.is_leader():
        return False
    changed = False
    for relation in charm.model.relations[endpoint]:
        error = errors.get(relation.id)
        event: dict[str, object] = (
            {"errors": status.one_line(error), "valid": False} if error else {"valid": True}
        )
        wanted = {"event": json.dumps(event, sort_keys=True)}
        changed |= relation_data.update(relation.data[charm.app], wanted)
    return changed


# Sender half


def endpoints(charm: ops.CharmBase, *, endpoint: str = SENDER_ENDPOINT) -> list[str]:
    """Return every receiver unit's remote-write URL: validated, de-duplicated, sorted.

    Units behind one ingress publish the same URL (COS de-duplicates for the same reason);
    a unit whose value is missing, not JSON, or not a plain http(s) URL without credentials is
    skipped with a logged reason.
    """
    urls: set[str] = set()
    for relation in charm.model.relations[endpoint]:
        for unit in relation.units:
            if unit.app is charm.app:
                continue
            raw = relation.data[unit].get("remote_write")
            if not raw:
                continue
            try:
                urls.add(_unit_url(raw))
            except ValueError as e:
                logger.warning("%s: ignoring %s: %s", endpoint, unit.name, e)
    return sorted(urls)


def _unit_url(raw: str) -> str:
    if len(raw) > MAX_UNIT_VALUE:
        raise ValueError(f"remote_write is longer than {MAX_UNIT_VALUE} characters")
    # The value is not quoted in these messages: it may hold credentials.
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValueError(f"remote_write is not JSON ({len(raw)} characters)") from None
    if not isinstance(value, dict) or "url" not in value:
        raise ValueError("remote_write is not an object with a url")
    try:
        return check_url(value["url"])
    except ValueError as e:
        raise ValueError(f"remote_write {e}") from None


def check_url(url: object) -> str:
    """Return `url` if it is a plain http(s) URL a remote write may go to; raise ValueError.

    The error never shows a URL that may carry credentials: a user and password in a URL are
    refused (they belong in a secret), and so is any `@` or `%40`, which has no other use here.
    """
    # A remote-write URL has no use for `@`; with one it may carry a user and password, which
    # must not reach the log through validate_url's messages either.
    if isinstance(url, str) and ("@" in url or "%40" in url.lower()):
        raise ValueError("url has an @ (credentials are refused, not shown)")
    # validate_url refuses queries, fragments and anything but a plain http(s) host and port.
    return grafana_source.validate_url(url)


def _parse_rules(raw: str) -> dict[str, Any]:
    if len(raw) > MAX_RULES_VALUE:
        raise ValueError(f"longer than {MAX_RULES_VALUE} characters")
    try:
        rules = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValueError(f"not JSON: {status.show(raw)}") from None
    if not isinstance(rules, dict):
        raise ValueError(f"not an object: {status.show(raw)}")
    if not isinstance(rules.get("groups"), list):
        raise ValueError("no list of groups")
    return rules


def _metadata_topology(raw: str | None) -> RuleTopology | None:
    """Return the topology of a `scrape_metadata` value, COS's fallback, if it is valid."""
    if not raw or len(raw) > MAX_UNIT_VALUE:
        return None
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(meta, dict):
        return None
    return _topology(
        meta.get("model"), meta.get("model_uuid"), meta.get("application"), meta.get("charm_name")
    )


def _topology(
    model: object, uuid: object, application: object, charm: object
) -> RuleTopology | None:
    if not (isinstance(model, str) and isinstance(uuid, str) and isinstance(application, str)):
        return None
    if not (_is_name(model) and _is_name(application) and _UUID.fullmatch(uuid)):
        return None
    return RuleTopology(
        model, uuid, application, charm if isinstance(charm, str) and _is_name(charm) else ""
    )


def _is_name(value: str) -> bool:
    return len(value) <= 63 and bool(_JUJU_NAME.fullmatch(value))
