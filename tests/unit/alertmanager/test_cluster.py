"""Clustering over `alertmanager-peers`: addresses published, peers named, ports opened."""

from __future__ import annotations

import dataclasses

import pytest
from alertmanager_testing import state
from ops import testing

PEERS = "alertmanager-peers"


def network(address: str) -> testing.Network:
    """The peer relation's binding, with this unit's ingress address."""
    return testing.Network(
        PEERS,
        bind_addresses=[testing.BindAddress([testing.Address(address)])],
        ingress_addresses=[address],
        egress_subnets=[f"{address}/{128 if ':' in address else 32}"],
    )


def peers(*data: dict[str, str]) -> testing.PeerRelation:
    return testing.PeerRelation(PEERS, peers_data=dict(enumerate(data, start=1)))


def cluster_state(relation: testing.PeerRelation, own: str = "10.0.0.10") -> testing.State:
    return state(relations=[relation], networks=[network(own)])


def test_a_unit_publishes_its_cluster_address(ctx, fake):
    relation = peers()

    out = ctx.run(ctx.on.config_changed(), cluster_state(relation))

    assert out.get_relation(relation.id).local_unit_data["cluster_address"] == "10.0.0.10:9094"


def test_an_ipv6_cluster_address_is_bracketed(ctx, fake):
    relation = peers()

    out = ctx.run(ctx.on.config_changed(), cluster_state(relation, own="fd00::10"))

    assert out.get_relation(relation.id).local_unit_data["cluster_address"] == "[fd00::10]:9094"


def test_a_unit_alone_runs_without_clustering_and_opens_only_its_web_port(ctx, fake):
    relation = peers()

    out = ctx.run(ctx.on.config_changed(), cluster_state(relation))

    assert fake.flag("cluster.listen-address") == [""]
    assert fake.flag("cluster.peer") == []
    assert out.opened_ports == {testing.TCPPort(9093)}


def test_peers_are_named_and_the_cluster_port_opened_for_tcp_and_udp(ctx, fake):
    relation = peers({"cluster_address": "10.0.0.12:9094"}, {"cluster_address": "10.0.0.11:9094"})

    out = ctx.run(ctx.on.relation_changed(relation), cluster_state(relation))

    assert fake.flag("cluster.listen-address") == ["0.0.0.0:9094"]
    assert fake.flag("cluster.advertise-address") == ["10.0.0.10:9094"]
    assert fake.flag("cluster.peer") == ["10.0.0.11:9094", "10.0.0.12:9094"]
    assert out.opened_ports == {
        testing.TCPPort(9093),
        testing.TCPPort(9094),
        testing.UDPPort(9094),
    }
    assert out.unit_status == testing.ActiveStatus(
        "serving on :9093; clustered with 2 peers; no receiver (config-file is empty)"
    )


def test_a_new_peer_restarts_alertmanager_with_it(ctx, fake, settled):
    relation = peers({"cluster_address": "10.0.0.11:9094"})
    before = settled(cluster_state(relation))
    grown = dataclasses.replace(
        relation,
        peers_data={
            1: {"cluster_address": "10.0.0.11:9094"},
            2: {"cluster_address": "10.0.0.12:9094"},
        },
    )

    ctx.run(ctx.on.relation_changed(grown), dataclasses.replace(before, relations=[grown]))

    assert fake.actions == ["restart"]
    assert fake.flag("cluster.peer") == ["10.0.0.11:9094", "10.0.0.12:9094"]


def test_the_last_peer_leaving_turns_clustering_off(ctx, fake, settled):
    relation = peers({"cluster_address": "10.0.0.11:9094"})
    before = settled(cluster_state(relation))
    alone = dataclasses.replace(relation, peers_data={})

    out = ctx.run(
        ctx.on.relation_departed(alone, remote_unit=1),
        dataclasses.replace(before, relations=[alone]),
    )

    assert fake.actions == ["restart"]
    assert fake.flag("cluster.listen-address") == [""]
    assert out.opened_ports == {testing.TCPPort(9093)}


def test_an_unchanged_cluster_restarts_nothing(ctx, fake, settled):
    relation = peers({"cluster_address": "10.0.0.11:9094"})
    before = settled(cluster_state(relation))

    ctx.run(ctx.on.relation_changed(before.get_relation(relation.id), remote_unit=1), before)

    assert fake.actions == []
    assert fake.writes == []


def test_a_peer_without_an_address_yet_is_waited_for(ctx, fake):
    relation = peers({})

    out = ctx.run(ctx.on.relation_joined(relation, remote_unit=1), cluster_state(relation))

    # Alone until the peer's address comes (its relation-changed restarts once, clustered).
    assert fake.flag("cluster.listen-address") == [""]
    assert out.unit_status == testing.ActiveStatus(
        "serving on :9093; 1 peer without a usable cluster address (see juju debug-log);"
        " no receiver (config-file is empty)"
    )


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.11",  # no port
        "10.0.0.11:9094 --web.listen-address=:80",  # a second flag
        "10.0.0.11:9094/x",
        "http://10.0.0.11:9094",
        "10.0.0.11:99999",
        "fd00::11:9094",  # an IPv6 address without brackets
        "user@10.0.0.11:9094",
        "10.0.0.11:9094\n--cluster.peer=evil:1",
        "näme:9094",
        "x" * 300 + ":9094",
    ],
)
def test_an_invalid_peer_address_is_left_out_with_a_warning(ctx, fake, address):
    relation = peers({"cluster_address": address}, {"cluster_address": "10.0.0.12:9094"})

    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=1), cluster_state(relation))

    assert fake.flag("cluster.peer") == ["10.0.0.12:9094"]
    warnings = [line.message for line in ctx.juju_log if line.level == "WARNING"]
    assert any("alertmanager/1" in message and "left out" in message for message in warnings)
    assert "1 peer without a usable cluster address" in out.unit_status.message


def test_an_ipv6_peer_is_named_in_brackets(ctx, fake):
    relation = peers({"cluster_address": "[fd00::11]:9094"})

    ctx.run(ctx.on.relation_changed(relation, remote_unit=1), cluster_state(relation))

    assert fake.flag("cluster.peer") == ["[fd00::11]:9094"]


def test_a_peer_claiming_this_unit_s_own_address_is_not_named(ctx, fake):
    relation = peers({"cluster_address": "10.0.0.10:9094"}, {"cluster_address": "10.0.0.11:9094"})

    ctx.run(ctx.on.relation_changed(relation, remote_unit=1), cluster_state(relation))

    assert fake.flag("cluster.peer") == ["10.0.0.11:9094"]


def test_without_an_own_address_peers_are_still_named(ctx, fake):
    relation = peers({"cluster_address": "10.0.0.11:9094"})
    no_network = testing.Network(PEERS, bind_addresses=[], ingress_addresses=[])

    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=1),
        state(relations=[relation], networks=[no_network]),
    )

    assert fake.flag("cluster.advertise-address") == []
    assert fake.flag("cluster.peer") == ["10.0.0.11:9094"]
    assert "cluster_address" not in out.get_relation(relation.id).local_unit_data
