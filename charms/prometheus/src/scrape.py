"""Scrape jobs and alert rules from untrusted sources, validated into plain Prometheus config.

Three sources feed prometheus.yml besides the charm's own self-scrape job: the `scrape-jobs`
option (the operator's own YAML), the COS `prometheus_scrape` relation and the legacy `http`
relation (both written by another administrator's charm). This module turns each into
`scrape_configs` entries and rule groups made only of validated strings, numbers, lists and
dicts; prometheus.yml is then produced by PyYAML's safe dumper, so no value can smuggle YAML
structure into the file. Remote entries that fail validation are skipped with a warning. Rule
expressions are scoped to their sender's topology on the parsed expression (see promql.py).

No ops import: the charm passes relation data in as plain mappings.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

import promql

logger = logging.getLogger(__name__)

SELF_JOB = "prometheus"
# Every job built from relation data is named juju_...; operators' jobs may not use the prefix.
RELATION_JOB_PREFIX = "juju_"

# https://prometheus.io/docs/prometheus/latest/configuration/configuration/#duration
# ASCII digits only: Python's \d also takes other scripts' digits, which Prometheus refuses.
_DURATION = re.compile(
    r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?"
    r"(?:([0-9]+)ms)?"
)
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
# Prometheus holds a duration in int64 nanoseconds (about 292 years) and refuses longer ones.
_MAX_DURATION_SECONDS = (2**63 - 1) / 1e9
# sample_limit and the other limits are uint64 in Prometheus; larger numbers fail the file.
_MAX_LIMIT = 2**64 - 1
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_DNS_LABEL}(?:\.{_DNS_LABEL})*\.?")
# A URL path as RFC 3986 allows it, minus `?` and `#` (a scrape path has no query here).
_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]{0,255}")
_JUJU_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_UNIT_NAME = re.compile(r"[a-z][a-z0-9-]*/\d+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Names of a scrape job's URL parameters (`params`), such as blackbox's `module` and `target`.
_PARAM_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,100}")
# The labels COS charms put on their rules; overwritten with the relation's topology.
_TOPOLOGY_LABELS = frozenset({"juju_model", "juju_model_uuid", "juju_application", "juju_charm"})
_TEXT_LIMIT = 1024
_EXPR_LIMIT = 10_000

_INT_KEYS = ("sample_limit", "label_limit", "label_name_length_limit", "label_value_length_limit")
# The subset of a COS scrape job this charm honours. Keys that could point Prometheus at local
# files or credentials (tls_config, basic_auth, authorization, proxy_url) and relabelling (whose
# regexes only promtool can judge) are dropped with a warning rather than trusted.
_REMOTE_JOB_KEYS = {
    "job_name",
    "metrics_path",
    "static_configs",
    "scrape_interval",
    "scrape_timeout",
    "scheme",
    "params",
    *_INT_KEYS,
}


class InvalidError(ValueError):
    """A value from a config option or relation is not acceptable; the message says why."""


@dataclasses.dataclass(frozen=True)
class Topology:
    """Where a set of targets lives in Juju; becomes the juju_* labels of their series."""

    model: str
    model_uuid: str
    application: str
    # The charm's name, when the remote side declares a valid one; only rules are labelled with it.
    charm: str = ""

    @property
    def identifier(self) -> str:
        """Short unique name, as the COS charms build it: model_uuid8_application."""
        return f"{self.model}_{self.model_uuid[:8]}_{self.application}"

    def labels(self, unit: str | None = None) -> dict[str, str]:
        """Return the topology labels, with juju_unit when a unit is given."""
        labels = {
            "juju_model": self.model,
            "juju_model_uuid": self.model_uuid,
            "juju_application": self.application,
        }
        if unit:
            labels["juju_unit"] = unit
        return labels

    def rule_labels(self) -> dict[str, str]:
        """Return the labels of a rule from this application: as COS sets them, juju_charm too."""
        return {**self.labels(), **({"juju_charm": self.charm} if self.charm else {})}


@dataclasses.dataclass(frozen=True)
class Rules:
    """The valid rule groups of one relation, and how many rules had to be left out."""

    groups: list[dict[str, Any]]
    left_out: int = 0


def duration_seconds(text: object) -> float:
    """Return the seconds in a Prometheus duration such as `1m30s`; raise InvalidError if none."""
    if text == "0":
        return 0.0
    match = _DURATION.fullmatch(text) if isinstance(text, str) and text else None
    if match is None:
        raise InvalidError(f"{_show(text)} is not a duration")
    seconds = sum(
        int(n) * unit for n, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if n
    )
    if seconds > _MAX_DURATION_SECONDS:
        raise InvalidError(f"{_show(text)} is longer than Prometheus allows (292y)")
    return seconds


def parse_external_labels(text: str) -> dict[str, str]:
    """Parse `key=value,key=value` into a dict; raise InvalidError naming the bad pair."""
    labels: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or "=" in value or not value:
            raise InvalidError(f"{_show(pair)} is not key=value (try site=lab,env=dev)")
        if not _LABEL_NAME.fullmatch(key) or key.startswith("__"):
            raise InvalidError(f"{_show(key)} is not a label name (letters, digits and _)")
        if key in labels:
            raise InvalidError(f"{_show(key)} is given twice")
        labels[key] = _text(value, "label value")
    return labels


def parse_user_jobs(text: str) -> list[dict[str, Any]]:
    """Parse the `scrape-jobs` option: a YAML list of scrape_configs entries.

    Only the shape is checked here (a list of mappings with unique, unreserved job names); the
    content is the operator's own Prometheus config, which promtool judges before it is used.
    """
    if not text.strip():
        return []
    try:
        jobs = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise InvalidError(f"not valid YAML{line}") from None
    if not isinstance(jobs, list) or not all(isinstance(job, dict) for job in jobs):
        raise InvalidError("must be a YAML list of scrape configs (- job_name: ...)")
    seen: set[str] = set()
    for number, job in enumerate(jobs, start=1):
        name = job.get("job_name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidError(f"entry {number} has no job_name")
        if name == SELF_JOB or name.startswith(RELATION_JOB_PREFIX):
            raise InvalidError(
                f'job_name {_show(name)} is reserved (the charm uses "prometheus"'
                f' and "{RELATION_JOB_PREFIX}...")'
            )
        if name in seen:
            raise InvalidError(f"job_name {_show(name)} is used twice")
        seen.add(name)
    return jobs


def self_job(port: int, route_prefix: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """Return the job that scrapes this Prometheus itself (under its route prefix, if any)."""
    return {
        "job_name": SELF_JOB,
        "metrics_path": f"{route_prefix.rstrip('/')}/metrics",
        "static_configs": [{"targets": [f"localhost:{port}"], "labels": dict(labels)}],
    }


def cos_topology(app_data: Mapping[str, str], fallback: Topology) -> Topology:
    """Return the topology a COS provider declares in `scrape_metadata`, or `fallback`."""
    raw = app_data.get("scrape_metadata")
    if raw is None:
        return fallback
    try:
        meta = _json(raw, "scrape_metadata")
        topology = Topology(
            model=_match(meta["model"], _JUJU_NAME, "model"),
            model_uuid=_match(meta["model_uuid"], _UUID, "model_uuid"),
            application=_match(meta["application"], _JUJU_NAME, "application"),
            # Optional: without a valid one, rules just carry no juju_charm label.
            charm=meta.get("charm_name") if _is_match(meta.get("charm_name"), _JUJU_NAME) else "",
        )
    except (ValueError, KeyError, TypeError) as e:
        logger.warning(
            "metrics-endpoint: %s: bad scrape_metadata (%s), using Juju's names",
            fallback.application,
            _reason(e),
        )
        return fallback
    return topology


def cos_jobs(
    app_data: Mapping[str, str],
    units: Mapping[str, Mapping[str, str]],
    topology: Topology,
    *,
    scrape_interval: str,
) -> list[dict[str, Any]]:
    """Translate one COS `prometheus_scrape` relation into scrape_configs entries.

    Args:
        app_data: the remote application's databag (`scrape_jobs` is read).
        units: each remote unit's name (as Juju knows it) to its databag.
        topology: the remote application's topology (see `cos_topology`).
        scrape_interval: the global interval, which a job's own timeout may not exceed.

    Targets `*` or `*:PORT` mean "every unit's address" and become one job per unit (named
    `<job>-<unit number>`, as the COS Prometheus charm names them); other targets stay in one
    job. Every job gets the topology labels; per-unit jobs also get juju_unit.
    """
    try:
        raw_jobs = _json(app_data.get("scrape_jobs", "[]"), "scrape_jobs")
    except InvalidError:
        logger.warning(
            "metrics-endpoint: %s: scrape_jobs is not JSON, ignored", topology.application
        )
        return []
    if not isinstance(raw_jobs, list):
        logger.warning(
            "metrics-endpoint: %s: scrape_jobs is not a list, ignored", topology.application
        )
        return []
    hosts = _unit_hosts(units, topology.application)
    prefix = f"{RELATION_JOB_PREFIX}{topology.identifier}_prometheus_scrape"
    jobs: list[dict[str, Any]] = []
    for raw in raw_jobs:
        try:
            jobs.extend(_cos_job(raw, prefix, hosts, topology, scrape_interval))
        except (InvalidError, KeyError, TypeError, AttributeError) as e:
            logger.warning(
                "metrics-endpoint: %s: skipping job %s: %s",
                topology.application,
                _show(raw.get("job_name") if isinstance(raw, dict) else raw),
                _reason(e),
            )
    return jobs


def cos_rules(app_data: Mapping[str, str], topology: Topology) -> Rules:
    """Return the validated rule groups of one COS relation, scoped to its topology.

    Each rule gets the topology as labels (whatever juju_* labels the sender set are replaced)
    and its expression is rewritten so that every selector only sees the sender's series. Groups
    and rules that are malformed, or whose expression cannot be parsed and scoped, are left out
    with a warning and counted. promtool still checks the result (prometheus.install_config).
    """
    raw = app_data.get("alert_rules")
    if not raw:
        return Rules([])
    try:
        rules = _json(raw, "alert_rules")
        if not isinstance(rules, dict):
            raise InvalidError("alert_rules is not an object")
        groups = rules["groups"]
        if not isinstance(groups, list):
            raise InvalidError("groups is not a list")
    except (ValueError, KeyError, TypeError) as e:
        logger.warning(
            "metrics-endpoint: %s: alert_rules ignored: %s", topology.application, _reason(e)
        )
        return Rules([])
    clean: list[dict[str, Any]] = []
    names: set[str] = set()
    left_out = 0
    for group in groups:
        try:
            checked, skipped = _rule_group(group, topology)
            if checked["name"] in names:
                raise InvalidError(f"group name {_show(checked['name'])} is used twice")
        except (InvalidError, TypeError, AttributeError) as e:
            logger.warning(
                "metrics-endpoint: %s: skipping rule group: %s", topology.application, _reason(e)
            )
            rules = group.get("rules") if isinstance(group, dict) else None
            left_out += len(rules) if isinstance(rules, list) else 0
            continue
        names.add(checked["name"])
        clean.append(checked)
        left_out += skipped
    return Rules(clean, left_out)


def http_job(units: Mapping[str, Mapping[str, str]], topology: Topology) -> dict[str, Any] | None:
    """Translate one legacy `http` relation into a job with a target per unit.

    Each unit writes `hostname` (or Juju's `private-address`) and `port`; units that have not
    (yet) or that wrote something invalid are skipped. None if no unit is usable.
    """
    static_configs = []
    for unit_name in sorted(units, key=_unit_sort_key):
        data = units[unit_name]
        try:
            host = _host(data.get("hostname") or data.get("private-address"))
            target = f"{host}:{_port(data.get('port'))}"
        except InvalidError as e:
            logger.warning("target: skipping %s: %s", unit_name, e)
            continue
        static_configs.append({"targets": [target], "labels": topology.labels(unit_name)})
    if not static_configs:
        return None
    return {
        "job_name": f"{RELATION_JOB_PREFIX}{topology.identifier}_target",
        "metrics_path": "/metrics",
        "static_configs": static_configs,
    }


def unique_jobs(jobs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Drop jobs whose name was already used (Prometheus refuses duplicates), with a warning."""
    seen: set[str] = set()
    kept = []
    for job in jobs:
        if job["job_name"] in seen:
            logger.warning("dropping a second job named %s", _show(job["job_name"]))
            continue
        seen.add(job["job_name"])
        kept.append(dict(job))
    return kept


def _cos_job(
    raw: object,
    prefix: str,
    hosts: Mapping[str, tuple[str, str]],
    topology: Topology,
    global_interval: str,
) -> list[dict[str, Any]]:
    """Validate one COS job and expand its wildcard targets; raise InvalidError if unusable."""
    if not isinstance(raw, dict):
        raise InvalidError("a job must be an object")
    dropped = sorted(str(key) for key in raw if key not in _REMOTE_JOB_KEYS)
    if dropped:
        logger.warning(
            "metrics-endpoint: %s: ignoring unsupported job keys %s",
            topology.application,
            _show(dropped),
        )
    job = _job_settings(raw, prefix, global_interval)
    static_configs = raw.get("static_configs")
    if not isinstance(static_configs, list) or not static_configs:
        raise InvalidError("static_configs must be a non-empty list")

    fixed: list[dict[str, Any]] = []
    wildcards: list[tuple[list[str], dict[str, str]]] = []  # ([":PORT", ...], labels)
    for static_config in static_configs:
        if not isinstance(static_config, dict):
            raise InvalidError("a static config must be an object")
        targets = static_config.get("targets")
        if not isinstance(targets, list) or not targets:
            raise InvalidError("targets must be a non-empty list")
        labels = _labels(static_config.get("labels", {}))
        named = [_target(t) for t in targets if not _is_wildcard(t)]
        if named:
            fixed.append({"targets": named, "labels": {**labels, **topology.labels()}})
        ports = [_wildcard_port(t) for t in targets if _is_wildcard(t)]
        if ports:
            wildcards.append((ports, labels))

    jobs = [{**job, "static_configs": fixed}] if fixed else []
    if not wildcards:
        return jobs
    for unit_name, (address, unit_path) in hosts.items():
        static = [
            {
                "targets": [f"{address}{port}" for port in ports],
                "labels": {**labels, **topology.labels(unit_name)},
            }
            for ports, labels in wildcards
        ]
        jobs.append(
            {
                **job,
                "job_name": f"{job['job_name']}-{unit_name.rsplit('/', 1)[1]}",
                "metrics_path": f"{unit_path.rstrip('/')}{job['metrics_path']}",
                "static_configs": static,
            }
        )
    return jobs


def _job_settings(raw: dict[str, Any], prefix: str, global_interval: str) -> dict[str, Any]:
    """Return a COS job's validated settings, everything but its targets."""
    name = raw.get("job_name")
    job: dict[str, Any] = {
        "job_name": f"{prefix}_{_match(name, _JOB_NAME, 'job_name')}" if name else prefix,
        "metrics_path": _match(raw.get("metrics_path", "/metrics"), _PATH, "metrics_path"),
    }
    for key in ("scrape_interval", "scrape_timeout"):
        if key in raw:
            duration_seconds(raw[key])
            job[key] = raw[key]
    # A job interval of 0 means "the global one", as in Prometheus.
    interval = duration_seconds(job.get("scrape_interval", "0")) or duration_seconds(
        global_interval
    )
    # Prometheus refuses the whole file over a job whose timeout exceeds its interval.
    if "scrape_timeout" in job and duration_seconds(job["scrape_timeout"]) > interval:
        raise InvalidError("scrape_timeout is longer than the scrape interval")
    if "scheme" in raw:
        if raw["scheme"] not in ("http", "https"):
            raise InvalidError(f"scheme {_show(raw['scheme'])} is not http or https")
        job["scheme"] = raw["scheme"]
    if "params" in raw:
        job["params"] = _params(raw["params"])
    for key in _INT_KEYS:
        if key in raw:
            if type(raw[key]) is not int or not 0 <= raw[key] <= _MAX_LIMIT:
                raise InvalidError(f"{key} {_show(raw[key])} is not an integer from 0 to 2^64-1")
            job[key] = raw[key]
    return job


def _unit_hosts(
    units: Mapping[str, Mapping[str, str]], application: str
) -> dict[str, tuple[str, str]]:
    """Map each usable COS unit's name to (address, path prefix); skip the rest with a warning."""
    hosts: dict[str, tuple[str, str]] = {}
    for juju_name in sorted(units, key=_unit_sort_key):
        data = units[juju_name]
        # Across models Juju knows a unit by a local alias; the unit's own name is better.
        name = data.get("prometheus_scrape_unit_name", juju_name)
        if not _UNIT_NAME.fullmatch(name):
            name = juju_name
        address = data.get("prometheus_scrape_unit_address")
        if address is None:
            continue  # not published yet
        try:
            path = data.get("prometheus_scrape_unit_path", "")
            hosts[name] = (_host(address), _match(path, _PATH, "path") if path else "")
        except InvalidError as e:
            logger.warning("metrics-endpoint: %s: skipping unit %s: %s", application, name, e)
    return hosts


def _params(raw: object) -> dict[str, list[str]]:
    """Validate a job's URL parameters: names to lists of printable strings, kept as given."""
    if not isinstance(raw, dict):
        raise InvalidError("params must be an object")
    params = {}
    for name, values in raw.items():
        _match(name, _PARAM_NAME, "params name")
        if not isinstance(values, list):
            raise InvalidError(f"params {_show(name)} must be a list of strings")
        params[name] = [_text(value, f"params {name}") for value in values]
    return params


def _rule_group(group: object, topology: Topology) -> tuple[dict[str, Any], int]:
    """Validate one rule group; return it and how many of its rules were left out.

    Malformed rules, and rules whose expression cannot be scoped, are skipped with a warning.
    """
    if not isinstance(group, dict):
        raise InvalidError("a rule group must be an object")
    clean: dict[str, Any] = {"name": _text(group.get("name"), "group name")}
    if "interval" in group:
        duration_seconds(group["interval"])
        clean["interval"] = group["interval"]
    rules = group.get("rules")
    if not isinstance(rules, list):
        raise InvalidError(f"group {_show(clean['name'])} has no list of rules")
    clean["rules"] = []
    for rule in rules:
        try:
            clean["rules"].append(_rule(rule, topology))
        except (InvalidError, TypeError, AttributeError) as e:
            logger.warning(
                "metrics-endpoint: %s: skipping a rule in %s: %s",
                topology.application,
                _show(clean["name"]),
                _reason(e),
            )
    return clean, len(rules) - len(clean["rules"])


def _rule(rule: object, topology: Topology) -> dict[str, Any]:
    """Validate one alerting or recording rule, scope its expression, label it with the topology.

    COS charms label their rules with juju_model, juju_model_uuid, juju_application and
    juju_charm; those are overwritten with the relation's topology, never trusted. Other juju_*
    labels (such as juju_unit, which on an application's rule would name one unit) are dropped.
    """
    if not isinstance(rule, dict):
        raise InvalidError("a rule must be an object")
    if ("alert" in rule) == ("record" in rule):
        raise InvalidError("a rule needs exactly one of alert and record")
    clean: dict[str, Any] = {}
    if "alert" in rule:
        clean["alert"] = _text(rule["alert"], "alert name")
    else:
        clean["record"] = _match(rule["record"], _METRIC_NAME, "record")
    expr = _text(rule.get("expr"), "expr", multiline=True, limit=_EXPR_LIMIT)
    try:
        clean["expr"] = promql.scope(expr, topology.labels())
    except promql.RefusedError as e:
        raise InvalidError(f"expr {_show(expr)}: {e}") from None
    if "for" in rule:
        duration_seconds(rule["for"])
        clean["for"] = rule["for"]
    labels = rule.get("labels", {})
    if not isinstance(labels, dict):
        raise InvalidError("labels must be an object")
    dropped = sorted(
        str(key) for key in labels if str(key).startswith("juju_") and key not in _TOPOLOGY_LABELS
    )
    if dropped:
        logger.warning(
            "metrics-endpoint: %s: ignoring labels %s on a rule",
            topology.application,
            _show(dropped),
        )
    own = {key: value for key, value in labels.items() if not str(key).startswith("juju_")}
    clean["labels"] = {**_labels(own), **topology.rule_labels()}
    if "annotations" in rule:
        annotations = rule["annotations"]
        if not isinstance(annotations, dict):
            raise InvalidError("annotations must be an object")
        clean["annotations"] = {
            _match(key, _LABEL_NAME, "annotation name"): _text(
                value, f"annotation {key}", multiline=True
            )
            for key, value in annotations.items()
        }
    return clean


def _labels(raw: object) -> dict[str, str]:
    """Validate remote labels: proper names (not __reserved or juju_*) and printable values."""
    if not isinstance(raw, dict):
        raise InvalidError("labels must be an object")
    labels = {}
    for key, value in raw.items():
        _match(key, _LABEL_NAME, "label name")
        if key.startswith("__") or key.startswith("juju_"):
            raise InvalidError(f"label name {_show(key)} is reserved")
        labels[key] = _text(value, f"label {key}")
    return labels


def _is_wildcard(target: object) -> bool:
    return isinstance(target, str) and (target == "*" or target.startswith("*:"))


def _wildcard_port(target: str) -> str:
    """Return ':PORT' of a `*:PORT` target ('' for a bare `*`: Prometheus's default port)."""
    return "" if target == "*" else f":{_port(target[2:])}"


def _target(target: object) -> str:
    """Validate a `host[:port]` target."""
    if not isinstance(target, str):
        raise InvalidError(f"target {_show(target)} is not a string")
    if target.startswith("["):  # [IPv6]:port
        host, bracket, rest = target[1:].partition("]")
        if not bracket or ipaddress.ip_address(_host(host).strip("[]")).version != 6:
            raise InvalidError(f"target {_show(target)} is not [IPv6 address]:port")
        if rest:
            if not rest.startswith(":"):
                raise InvalidError(f"target {_show(target)} is not host:port")
            _port(rest[1:])
        return target
    if target.count(":") > 1:
        # Without brackets an IPv6 address and a port cannot be told apart (Go's
        # net.SplitHostPort refuses it at scrape time).
        raise InvalidError(
            f"target {_show(target)} is not host:port (an IPv6 address needs brackets: [::1]:9100)"
        )
    host, sep, port = target.rpartition(":")
    if not sep:
        host = port
    _host(host)
    if sep:
        _port(port)
    return target


def _host(host: object) -> str:
    """Return a hostname or IP address fit for a target (IPv6 in brackets)."""
    if not isinstance(host, str):
        raise InvalidError(f"address {_show(host)} is not a string")
    # An IPv6 zone (fe80::1%eth0) names an interface of the remote machine, not of this one,
    # and Python accepts any text after the `%`.
    if "%" in host:
        raise InvalidError(f"address {_show(host)} has an IPv6 zone, which is not routable here")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            raise InvalidError(f"address {_show(host)} is not a hostname or IP") from None
        return host
    return f"[{ip}]" if ip.version == 6 else str(ip)


def _port(port: object) -> int:
    text = str(port)
    # isdigit() alone also takes "²" (which int() refuses) and other scripts' digits.
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise InvalidError(f"port {_show(port)} is not a number from 1 to 65535")
    return int(text)


def _is_match(value: object, pattern: re.Pattern[str]) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _match(value: object, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidError(f"{what} {_show(value)} is not valid")
    return value


def _text(value: object, what: str, *, multiline: bool = False, limit: int = _TEXT_LIMIT) -> str:
    """Return `value` if it is non-empty printable text (newlines and tabs if `multiline`)."""
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidError(f"{what} must be text of 1 to {limit} characters, not {_show(value)}")
    visible = value.replace("\n", "").replace("\t", "") if multiline else value
    if not visible.isprintable():
        raise InvalidError(f"{what} has control characters: {_show(value)}")
    return value


def _json(raw: str, what: str) -> Any:
    """Decode remote JSON; anything undecodable (even absurdly nested) is InvalidError."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidError(f"{what} is not JSON") from None


def _unit_sort_key(unit_name: str) -> tuple[str, int]:
    app, _, number = unit_name.rpartition("/")
    return (app, int(number) if number.isdigit() else -1)


def _reason(error: Exception) -> str:
    """Say why remote data was refused, without echoing more than a short excerpt of it."""
    if isinstance(error, KeyError):
        return f"missing key {_show(error.args[0])}"
    return str(error) if isinstance(error, InvalidError) else type(error).__name__


def _show(value: object, limit: int = 60) -> str:
    """Render untrusted data for a message: quoted, escaped and cut short."""
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"
