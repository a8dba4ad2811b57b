"""The `alerting` relation (interface `alertmanager_dispatch`), both halves.

An Alertmanager (the provider) tells Prometheus (the requirer) where each of its units takes
alerts; Prometheus sends every alert to every unit, and the units of one Alertmanager cluster
agree among themselves which of them notifies. The wire format is what Canonical's library
writes and reads (canonical/alertmanager-k8s-operator, lib/charms/alertmanager_k8s/v1/
alertmanager_dispatch.py, LIBPATCH 2, and the v0 it replaced, LIBPATCH 8 at commit 6a14f0d):

provider unit data (no application data):
    `url`             the unit's URL with scheme, host, port and route prefix, such as
                      `http://10.0.0.5:9093/am` (v1)
    `public_address`  the same without the scheme, `host:port/path` (v0; v1 still writes it,
                      computed from `url`)
    `scheme`          `http` or `https` (v0 from LIBPATCH 8 on; v1 still writes it; earlier v0
                      providers wrote only `public_address`, and consumers take `http` then)

A v1 consumer reads `url` and, without it, `scheme://public_address`; a v0 consumer reads only
`public_address` and `scheme`. COS's Prometheus turns the URLs into `alerting.alertmanagers`
entries, one per (scheme, path), each with `static_configs: [{targets: [host:port, ...]}]`
(canonical/prometheus-k8s-operator, lib/charms/prometheus_k8s/v0/prometheus_scrape.py,
PrometheusConfig.render_alertmanager_static_configs). This module does the same, so it reads
COS's Alertmanager and COS's Prometheus reads ours.

Provider use (in the charm's reconcile):

    from lab_monitoring.interfaces import alertmanager_dispatch
    self._alerting = alertmanager_dispatch.AlertmanagerDispatchProvider(self)
    ...
    self._alerting.publish(port=9093, path_prefix="/am")

Each unit publishes the ingress address of each relation (what the Prometheus machine can
reach), not its FQDN: a MAAS FQDN may not resolve from another machine.

Requirer use (Prometheus's reconcile):

    self._alertmanager = alertmanager_dispatch.AlertmanagerDispatchRequirer(self)
    config["alerting"] = {"alertmanagers": self._alertmanager.alertmanagers()}

Relation data comes from another administrator's charm: every value is validated, a unit whose
data is invalid is skipped with a logged warning, and nothing a remote charm writes can raise out
of `targets()` or `alertmanagers()`. What passes is a plain http(s) URL of printable ASCII
(no credentials, query or fragment), so it cannot inject text into a configuration file.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

import ops

from lab_monitoring import relation_data, status
from lab_monitoring.interfaces import grafana_source

logger = logging.getLogger(__name__)

PROVIDER_ENDPOINT = "alerting"
REQUIRER_ENDPOINT = "alertmanager"
DEFAULT_PORTS = {"http": 80, "https": 443}
# A route prefix as Alertmanager serves under it: "" or "/a/b", no final slash.
_PATH_PREFIX = re.compile(r"(?:/[A-Za-z0-9\-._~%!$&'()*+,;=:@]+)*")


@dataclasses.dataclass(frozen=True, order=True)
class Target:
    """One Alertmanager unit as Prometheus addresses it."""

    scheme: str
    path_prefix: str  # "/" or "/a/b"
    address: str  # host:port, an IPv6 host in brackets
    unit: str = dataclasses.field(compare=False, default="")


def unit_data(url: str) -> dict[str, str]:
    """Return a provider unit's databag for `url`: v1's `url`, v0's `public_address` and `scheme`.

    Raises:
        ValueError: `url` is not a plain http(s) URL (a bug in the caller).
    """
    target = parse_url(url)
    path = urllib.parse.urlsplit(url).path
    return {"url": url, "public_address": f"{target.address}{path}", "scheme": target.scheme}


def parse_url(url: str, unit: str = "") -> Target:
    """Return the target of an Alertmanager URL; raise ValueError if it is not a plain one.

    A URL without a port gets its scheme's (Prometheus needs `host:port` targets).
    """
    grafana_source.validate_url(url)
    parts = urllib.parse.urlsplit(url)
    host = url_host(parts.hostname or "")
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    path_prefix = parts.path.rstrip("/")
    if not _PATH_PREFIX.fullmatch(path_prefix):
        raise ValueError(f"url path is not a plain route prefix: {status.show(url)}")
    return Target(parts.scheme, path_prefix or "/", f"{host}:{port}", unit)


def parse_unit(data: Mapping[str, str], unit: str = "") -> Target | None:
    """Return the target a provider unit published; None if it published none (yet).

    The v1 `url` wins; without it, v0's `public_address` with its `scheme` (default http).

    Raises:
        ValueError: what it published is not a plain http(s) URL (the message says why).
    """
    url = data.get("url")
    if url:
        return parse_url(url, unit)
    address = data.get("public_address")
    if not address:
        return None
    scheme = data.get("scheme") or "http"
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"scheme must be http or https, got {status.show(scheme)}")
    if "://" in address:
        raise ValueError(f"public_address must be host:port/path, got {status.show(address)}")
    return parse_url(f"{scheme}://{address}", unit)


def alertmanagers(targets: Iterable[Target]) -> list[dict[str, Any]]:
    """Return Prometheus's `alerting.alertmanagers` for these targets.

    One entry per (scheme, path prefix), each with one static config of its `host:port`
    targets, de-duplicated and sorted; entries sorted too, so the result is stable.
    """
    groups: dict[tuple[str, str], set[str]] = {}
    for target in targets:
        groups.setdefault((target.scheme, target.path_prefix), set()).add(target.address)
    return [
        {
            "scheme": scheme,
            "path_prefix": path_prefix,
            "static_configs": [{"targets": sorted(addresses)}],
        }
        for (scheme, path_prefix), addresses in sorted(groups.items())
    ]


class AlertmanagerDispatchProvider(ops.Object):
    """The provider half: publish where this unit takes alerts, on every relation."""

    def __init__(self, charm: ops.CharmBase, relation_name: str = PROVIDER_ENDPOINT):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name

    def publish(self, *, port: int, path_prefix: str = "", scheme: str = "http") -> bool:
        """Write this unit's URL (its ingress address on each relation); True if any changed.

        A relation without an ingress address yet is left for a later hook, with a warning.

        Raises:
            ValueError: `port`, `path_prefix` or `scheme` is invalid (a bug in the caller).
        """
        if not _PATH_PREFIX.fullmatch(path_prefix) or scheme not in DEFAULT_PORTS:
            raise ValueError(f"not a scheme and route prefix: {scheme!r}, {path_prefix!r}")
        if not 0 < port < 65536:
            raise ValueError(f"not a port: {port!r}")
        model = self._charm.model
        changed = False
        for relation in model.relations[self._relation_name]:
            binding = model.get_binding(relation)
            address = binding.network.ingress_address if binding else None
            if address is None:
                logger.warning("%s: no ingress address yet, will publish later", relation.name)
                continue
            data = unit_data(f"{scheme}://{url_host(str(address))}:{port}{path_prefix}")
            changed |= relation_data.update(relation.data[model.unit], data)
        return changed


class AlertmanagerDispatchRequirer(ops.Object):
    """The requirer half: every related Alertmanager unit, validated."""

    def __init__(self, charm: ops.CharmBase, relation_name: str = REQUIRER_ENDPOINT):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name

    def targets(self) -> list[Target]:
        """Return every valid target of every relation, sorted and de-duplicated.

        A unit that published nothing yet is skipped quietly; one whose data is invalid is
        skipped with a warning.
        """
        found: set[Target] = set()
        for relation in self._charm.model.relations[self._relation_name]:
            for unit in relation.units:
                try:
                    target = parse_unit(relation.data[unit], unit.name)
                except ValueError as e:
                    logger.warning("%s: ignoring %s: %s", self._relation_name, unit.name, e)
                    continue
                if target is None:
                    logger.debug("%s: %s published no address yet", self._relation_name, unit.name)
                    continue
                found.add(target)
        return sorted(found)

    def alertmanagers(self) -> list[dict[str, Any]]:
        """Return Prometheus's `alerting.alertmanagers` for every related Alertmanager unit."""
        return alertmanagers(self.targets())


def url_host(host: str) -> str:
    """Return a host as it is written before `:port`: an IPv6 address in brackets."""
    try:
        ipv6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        return host
    return f"[{host}]" if ipv6 else host
