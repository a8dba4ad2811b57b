"""What this unit tells the other charms and Juju: its ports, and where it serves.

- `grafana-source` (grafana_datasource): a data source of type `alertmanager` with jsonData
  `implementation: prometheus`, so that Grafana shows the alerts and silences (COS's
  grafana_source library sets the same for this type: canonical/alertmanager-k8s-operator,
  lib/charms/grafana_k8s/v1/grafana_source.py, GrafanaSourceProvider.__init__);
- `metrics-endpoint` (prometheus_scrape): Alertmanager's own /metrics and its alert rules;
- `grafana-dashboard` (grafana_dashboard): the dashboards in src/grafana_dashboards/, sent by the
  leader (lab_monitoring.interfaces.grafana_dashboard.publish, COS's format);
- `alertmanager-service` (http, legacy): unit data `hostname` and `port`, as the old
  prometheus-alertmanager charm published them and ceph-dashboard reads them.

`alerting` (alertmanager_dispatch) is lab_monitoring's provider, called by the charm.
Every address is the unit's ingress address on that relation: a MAAS FQDN may not resolve
from the other machine.
"""

from __future__ import annotations

import logging
from pathlib import Path

import ops
from lab_monitoring import relation_data
from lab_monitoring.interfaces import (
    alertmanager_dispatch,
    grafana_dashboard,
    grafana_source,
    prometheus_scrape,
)

import metrics_endpoint
from alertmanager import flags

logger = logging.getLogger(__name__)

METRICS_ENDPOINT = prometheus_scrape.DEFAULT_ENDPOINT
LEGACY_ENDPOINT = "alertmanager-service"
DASHBOARD_ENDPOINT = grafana_dashboard.DEFAULT_RELATION_NAME
# The dashboards this charm sends to a related Grafana (grafana-dashboard).
DASHBOARDS = Path(__file__).parent / "grafana_dashboards"


def publish_dashboards(charm: ops.CharmBase) -> None:
    """Send the shipped dashboards (the leader; one copy per application, whatever the unit)."""
    grafana_dashboard.publish(charm, DASHBOARDS, inject_dropdowns=False)


def open_ports(charm: ops.CharmBase, web_port: int, *, clustered: bool) -> None:
    """Open the web port, and the cluster port (TCP and UDP: gossip uses both) when clustered."""
    ports = [ops.Port("tcp", web_port)]
    if clustered:
        ports += [ops.Port("tcp", flags.CLUSTER_PORT), ops.Port("udp", flags.CLUSTER_PORT)]
    charm.unit.set_ports(*ports)


def publish(
    charm: ops.CharmBase,
    source: grafana_source.GrafanaSourceProvider,
    web_port: int,
    route_prefix: str,
) -> None:
    """Publish this unit to Grafana, Prometheus (its own metrics) and legacy http consumers."""
    model = charm.model
    if model.relations[grafana_source.DEFAULT_RELATION_NAME]:
        host = _host(charm, grafana_source.DEFAULT_RELATION_NAME)
        if host is not None:
            source.publish(
                f"http://{alertmanager_dispatch.url_host(host)}:{web_port}{route_prefix}",
                source_type="alertmanager",
                description=f"Alertmanager {model.unit.name} in model {model.name}",
                extra_fields={"implementation": "prometheus"},
            )
    if model.relations[METRICS_ENDPOINT]:
        topology = prometheus_scrape.Topology.of(charm)
        prometheus_scrape.publish(
            charm,
            metrics_endpoint.jobs(web_port, route_prefix),
            rules=metrics_endpoint.alert_rules(topology),
        )
    for relation in model.relations[LEGACY_ENDPOINT]:
        host = _host(charm, relation)
        if host is not None:
            relation_data.update(
                relation.data[model.unit], {"hostname": host, "port": str(web_port)}
            )


def _host(charm: ops.CharmBase, binding_key: str | ops.Relation) -> str | None:
    """Return this unit's ingress address for a relation or endpoint; None (logged) if none yet."""
    binding = charm.model.get_binding(binding_key)
    address = binding.network.ingress_address if binding else None
    if address is None:
        name = binding_key if isinstance(binding_key, str) else binding_key.name
        logger.warning("%s: no ingress address yet, will publish later", name)
        return None
    return str(address)
