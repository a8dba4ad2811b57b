"""Scrape jobs from relations, validated into plain `scrape_configs` entries, and the self job.

Two relations feed prometheus.yml: the COS `prometheus_scrape` relation (metrics-endpoint) and
the legacy `http` relation (target), both written by another administrator's charm. Each is
turned into jobs made only of validated strings, numbers, lists and dicts, so no value can add
structure to the file. Remote entries that fail validation are skipped with a warning.

No ops import: the charm passes relation data in as plain mappings.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus import checks, relabel
from prometheus.topology import Topology

logger = logging.getLogger(__name__)

SELF_JOB = "prometheus"
# Every job built from relation data is named juju_...; operators' jobs may not use the prefix.
RELATION_JOB_PREFIX = "juju_"

# sample_limit and the other limits are uint64 in Prometheus; larger numbers fail the file.
_MAX_LIMIT = 2**64 - 1
_INT_KEYS = ("sample_limit", "label_limit", "label_name_length_limit", "label_value_length_limit")
# Names of a scrape job's URL parameters (`params`), such as blackbox's `module` and `target`.
_PARAM_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,100}")
# The subset of a COS scrape job this charm honours. Keys that could point Prometheus at local
# files or credentials (tls_config, basic_auth, authorization, proxy_url) and
# metric_relabel_configs are dropped with a warning rather than trusted; relabel_configs are kept
# when every rule passes relabel.validate (it cannot touch the juju_* topology).
_REMOTE_JOB_KEYS = {
    "job_name",
    "metrics_path",
    "static_configs",
    "scrape_interval",
    "scrape_timeout",
    "scheme",
    "params",
    "relabel_configs",
    *_INT_KEYS,
}


def self_job(port: int, route_prefix: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """Return the job that scrapes this Prometheus itself (under its route prefix, if any)."""
    return {
        "job_name": SELF_JOB,
        "metrics_path": f"{route_prefix.rstrip('/')}/metrics",
        "static_configs": [{"targets": [f"localhost:{port}"], "labels": dict(labels)}],
    }


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
        topology: the remote application's topology (see `topology.cos_topology`).
        scrape_interval: the global interval, which a job's own timeout may not exceed.

    Targets `*` or `*:PORT` mean "every unit's address" and become one job per unit (named
    `<job>-<unit number>`, as the COS Prometheus charm names them); other targets stay in one
    job. Every job gets the topology labels, juju_charm included when the sender names its charm
    (as COS's Prometheus labels targets); per-unit jobs also get juju_unit. The `instance` label
    is left to Prometheus (`address:port`, or what the sender's relabel_configs make it), where
    COS overwrites it with the topology: see docs/relations.md for why.
    """
    try:
        raw_jobs = checks.json_value(app_data.get("scrape_jobs", "[]"), "scrape_jobs")
    except checks.InvalidError:
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
        except (checks.InvalidError, KeyError, TypeError, AttributeError) as e:
            logger.warning(
                "metrics-endpoint: %s: skipping job %s: %s",
                topology.application,
                checks.show(raw.get("job_name") if isinstance(raw, dict) else raw),
                checks.reason(e),
            )
    return jobs


def http_job(units: Mapping[str, Mapping[str, str]], topology: Topology) -> dict[str, Any] | None:
    """Translate one legacy `http` relation into a job with a target per unit.

    Each unit writes `hostname` (or Juju's `private-address`) and `port`; units that have not
    (yet) or that wrote something invalid are skipped. None if no unit is usable.
    """
    static_configs = []
    for unit_name in sorted(units, key=checks.unit_sort_key):
        data = units[unit_name]
        try:
            host = checks.host(data.get("hostname") or data.get("private-address"))
            target = f"{host}:{checks.port(data.get('port'))}"
        except checks.InvalidError as e:
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
            logger.warning("dropping a second job named %s", checks.show(job["job_name"]))
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
        raise checks.InvalidError("a job must be an object")
    dropped = sorted(str(key) for key in raw if key not in _REMOTE_JOB_KEYS)
    if dropped:
        logger.warning(
            "metrics-endpoint: %s: ignoring unsupported job keys %s",
            topology.application,
            checks.show(dropped),
        )
    job = _job_settings(raw, prefix, global_interval)
    static_configs = raw.get("static_configs")
    if not isinstance(static_configs, list) or not static_configs:
        raise checks.InvalidError("static_configs must be a non-empty list")

    fixed: list[dict[str, Any]] = []
    wildcards: list[tuple[list[str], dict[str, str]]] = []  # ([":PORT", ...], labels)
    for static_config in static_configs:
        if not isinstance(static_config, dict):
            raise checks.InvalidError("a static config must be an object")
        targets = static_config.get("targets")
        if not isinstance(targets, list) or not targets:
            raise checks.InvalidError("targets must be a non-empty list")
        labels = checks.labels(static_config.get("labels", {}))
        named = [checks.target(t) for t in targets if not _is_wildcard(t)]
        if named:
            fixed.append({"targets": named, "labels": {**labels, **topology.target_labels()}})
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
                "labels": {**labels, **topology.target_labels(unit_name)},
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
        "job_name": f"{prefix}_{checks.match(name, checks.JOB_NAME, 'job_name')}"
        if name
        else prefix,
        "metrics_path": checks.match(
            raw.get("metrics_path", "/metrics"), checks.PATH, "metrics_path"
        ),
    }
    for key in ("scrape_interval", "scrape_timeout"):
        if key in raw:
            checks.duration_seconds(raw[key])
            job[key] = raw[key]
    # A job interval of 0 means "the global one", as in Prometheus.
    interval = checks.duration_seconds(job.get("scrape_interval", "0")) or checks.duration_seconds(
        global_interval
    )
    # Prometheus refuses the whole file over a job whose timeout exceeds its interval.
    if "scrape_timeout" in job and checks.duration_seconds(job["scrape_timeout"]) > interval:
        raise checks.InvalidError("scrape_timeout is longer than the scrape interval")
    if "scheme" in raw:
        if raw["scheme"] not in ("http", "https"):
            raise checks.InvalidError(f"scheme {checks.show(raw['scheme'])} is not http or https")
        job["scheme"] = raw["scheme"]
    if "params" in raw:
        job["params"] = _params(raw["params"])
    if "relabel_configs" in raw:
        job["relabel_configs"] = relabel.validate(raw["relabel_configs"])
    for key in _INT_KEYS:
        if key in raw:
            if type(raw[key]) is not int or not 0 <= raw[key] <= _MAX_LIMIT:
                raise checks.InvalidError(
                    f"{key} {checks.show(raw[key])} is not an integer from 0 to 2^64-1"
                )
            job[key] = raw[key]
    return job


def _unit_hosts(
    units: Mapping[str, Mapping[str, str]], application: str
) -> dict[str, tuple[str, str]]:
    """Map each usable COS unit's name to (address, path prefix); skip the rest with a warning."""
    hosts: dict[str, tuple[str, str]] = {}
    for juju_name in sorted(units, key=checks.unit_sort_key):
        data = units[juju_name]
        # Across models Juju knows a unit by a local alias; the unit's own name is better.
        name = data.get("prometheus_scrape_unit_name", juju_name)
        if not checks.UNIT_NAME.fullmatch(name):
            name = juju_name
        address = data.get("prometheus_scrape_unit_address")
        if address is None:
            continue  # not published yet
        try:
            path = data.get("prometheus_scrape_unit_path", "")
            hosts[name] = (
                checks.host(address),
                checks.match(path, checks.PATH, "path") if path else "",
            )
        except checks.InvalidError as e:
            logger.warning("metrics-endpoint: %s: skipping unit %s: %s", application, name, e)
    return hosts


def _params(raw: object) -> dict[str, list[str]]:
    """Validate a job's URL parameters: names to lists of printable strings, kept as given."""
    if not isinstance(raw, dict):
        raise checks.InvalidError("params must be an object")
    params = {}
    for name, values in raw.items():
        checks.match(name, _PARAM_NAME, "params name")
        if not isinstance(values, list):
            raise checks.InvalidError(f"params {checks.show(name)} must be a list of strings")
        params[name] = [checks.text_value(value, f"params {name}") for value in values]
    return params


def _is_wildcard(target: object) -> bool:
    return isinstance(target, str) and (target == "*" or target.startswith("*:"))


def _wildcard_port(target: str) -> str:
    """Return ':PORT' of a `*:PORT` target ('' for a bare `*`: Prometheus's default port)."""
    return "" if target == "*" else f":{checks.port(target[2:])}"
