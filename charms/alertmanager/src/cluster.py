"""The `alertmanager-peers` relation: each unit's cluster address, and those of its peers.

Each unit writes `cluster_address` (`host:9094`, the host its ingress address on this relation)
to its own unit data; every unit reads its peers' and names each one with `--cluster.peer`.
Peer data is this application's own, but it is still checked before it reaches a flag: a value
that is not `host:port` is skipped with a warning, and a peer that has not written one yet is
waited for (the next relation-changed brings it).
"""

from __future__ import annotations

import dataclasses
import logging

import ops
from lab_monitoring import relation_data, status
from lab_monitoring.interfaces import alertmanager_dispatch

from alertmanager import flags

logger = logging.getLogger(__name__)

ENDPOINT = "alertmanager-peers"
KEY = "cluster_address"


@dataclasses.dataclass(frozen=True)
class Peers:
    """What the peer relation says: this unit's address, its peers', and who has none yet."""

    own: str | None = None
    addresses: tuple[str, ...] = ()
    without_address: tuple[str, ...] = ()

    @property
    def cluster(self) -> flags.Cluster | None:
        """The cluster flags' settings; None while no peer has a usable address (alone)."""
        return flags.Cluster(self.own, self.addresses) if self.addresses else None


def publish(charm: ops.CharmBase) -> None:
    """Write this unit's cluster address (its ingress address on the relation) for its peers."""
    relation = charm.model.get_relation(ENDPOINT)
    if relation is None:
        return
    own = _own_address(charm, relation)
    relation_data.update(relation.data[charm.unit], {KEY: own} if own else {}, owned=(KEY,))


def read(charm: ops.CharmBase) -> Peers:
    """Return this unit's cluster address and what its peers published (no writes)."""
    relation = charm.model.get_relation(ENDPOINT)
    if relation is None:
        return Peers()
    own = _own_address(charm, relation)
    addresses: list[str] = []
    without: list[str] = []
    for unit in sorted(relation.units, key=lambda u: u.name):
        raw = relation.data[unit].get(KEY)
        address = parse(raw) if raw else None
        if address is None:
            if raw:
                logger.warning("%s: %s is not host:port, left out", unit.name, status.show(raw))
            without.append(unit.name)
        elif address != own and address not in addresses:
            addresses.append(address)
    return Peers(own, tuple(addresses), tuple(without))


def parse(raw: str) -> str | None:
    """Return a peer's `host:port` as it goes into a flag, or None if it is not one."""
    try:
        target = alertmanager_dispatch.parse_url(f"http://{raw}")
    except ValueError:
        return None
    # Exactly host:port: no path, no default port filled in.
    return raw if target.address == raw and target.path_prefix == "/" else None


def _own_address(charm: ops.CharmBase, relation: ops.Relation) -> str | None:
    binding = charm.model.get_binding(relation)
    ingress = binding.network.ingress_address if binding else None
    if ingress is None:
        return None
    return f"{alertmanager_dispatch.url_host(str(ingress))}:{flags.CLUSTER_PORT}"
