"""Grafana never runs with admin/admin, whatever order a unit's first events come in.

Grafana gives its first administrator the password it finds when it first starts, and
admin/admin without one (GRAFANA-FACTS.md item 4). So grafana-server must never start before
the admin password file holds the secret's password. A unit's first hooks can come in many
orders: install, the peer relation (created, then changed when a peer joins), leadership, and
for a non-leader the secret the leader created (told by secret-changed, or found on the next
update-status). Every order is walked here, for a unit that becomes the leader and for one that
does not, and checked after every hook.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import admin_password
import charm
import pytest
from grafana_testing import (
    CHARM_DIR,
    MODEL,
    NO_DEB,
    STORED_PASSWORD,
    FakeGrafana,
    password_secret,
    secret_key_secret,
)
from ops import testing

LEADER_ARRIVALS = ("install", "peers-created", "peers-changed", "leadership")
FOLLOWER_ARRIVALS = ("install", "peers-created", "peers-changed", "secret")
TOLD_BY = ("secret-changed", "update-status")


def orders(arrivals: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Every order of `arrivals` in which the peer relation is created before it changes."""
    for order in itertools.permutations(arrivals):
        if order.index("peers-created") < order.index("peers-changed"):
            yield order


LEADER_ORDERS = list(orders(LEADER_ARRIVALS))
FOLLOWER_ORDERS = [(order, event) for order in orders(FOLLOWER_ARRIVALS) for event in TOLD_BY]


@dataclasses.dataclass
class Unit:
    """One unit's Juju state and machine, and what the rest of the application has done."""

    fake: FakeGrafana
    state: testing.State
    leader_made_secret: bool = False  # for a follower: the (other) leader created the secret
    ctx: testing.Context = dataclasses.field(
        default_factory=lambda: testing.Context(charm.GrafanaCharm, charm_root=CHARM_DIR)
    )

    def run(self, event: Callable[[testing.Context], Any]) -> None:
        with self.fake.patched():
            self.state = self.ctx.run(event(self.ctx), self.state)

    def peers(self) -> testing.PeerRelation | None:
        found = (r for r in self.state.relations if isinstance(r, testing.PeerRelation))
        return next(found, None)

    def replace_peers(self, relation: testing.PeerRelation) -> None:
        others = [r for r in self.state.relations if r.endpoint != "grafana-peers"]
        self.state = dataclasses.replace(self.state, relations=[*others, relation])

    def leader_app_data(self) -> dict[str, str]:
        """The peer app data another leader wrote: the first password generation, if any."""
        return {admin_password.GENERATION_KEY: "1"} if self.leader_made_secret else {}


def arrive(unit: Unit, arrival: str, told_by: str = "secret-changed") -> None:
    """Change the unit's world as `arrival` says and run the hook Juju runs for it."""
    if arrival == "install":
        unit.run(lambda ctx: ctx.on.install())
    elif arrival == "peers-created":
        relation = testing.PeerRelation("grafana-peers", local_app_data=unit.leader_app_data())
        unit.replace_peers(relation)
        unit.run(lambda ctx: ctx.on.relation_created(relation))
    elif arrival == "peers-changed":
        current = unit.peers()
        assert current is not None
        relation = dataclasses.replace(current, peers_data={1: {}})
        unit.replace_peers(relation)
        unit.run(lambda ctx: ctx.on.relation_changed(relation, remote_unit=1))
    elif arrival == "leadership":
        unit.state = dataclasses.replace(unit.state, leader=True)
        unit.run(lambda ctx: ctx.on.leader_elected())
    elif arrival == "secret":
        # The leader (another unit) created the secret, and bumped the generation if the peer
        # relation was there. Juju shows the application's secret to its other units as one
        # they track (juju/juju#15127); Scenario needs owner=None to send them secret-changed.
        unit.leader_made_secret = True
        # It creates the secret_key secret in the same hook (shared_database).
        secret = dataclasses.replace(password_secret(), owner=None)
        key = dataclasses.replace(secret_key_secret(), owner=None)
        unit.state = dataclasses.replace(unit.state, secrets=[secret, key])
        current = unit.peers()
        if current is not None:
            unit.replace_peers(dataclasses.replace(current, local_app_data=unit.leader_app_data()))
        if told_by == "secret-changed":
            unit.run(lambda ctx: ctx.on.secret_changed(secret))
        else:
            unit.run(lambda ctx: ctx.on.update_status())


def fresh_unit() -> Unit:
    resources = {testing.Resource(name="grafana-deb", path=NO_DEB)}
    return Unit(FakeGrafana(), testing.State(leader=False, model=MODEL, resources=resources))


def check_never_started_without_the_password(unit: Unit, password: str | None, after: str):
    starts = [start.password_file for start in unit.fake.starts]
    assert all(file == password for file in starts), f"after {after}: started with {starts}"
    if password is None:
        assert not unit.fake.running, f"after {after}: running before the password is known"
        assert unit.state.unit_status == testing.WaitingStatus(
            "waiting for the leader to create the admin password"
        ), after


def check_settled(unit: Unit, password: str) -> None:
    """Grafana runs with the secret's password, set without the CLI, and nothing is left to do."""
    fake = unit.fake
    assert fake.running
    assert fake.accepts("admin", password)
    assert not fake.accepts("admin", "admin")
    assert fake.passwords_set == 0, "the password reached Grafana after its first start"
    assert unit.state.unit_status.name == "active", unit.state.unit_status
    fake.actions.clear()
    fake.api_calls.clear()
    unit.run(lambda ctx: ctx.on.update_status())
    assert (fake.actions, fake.api_calls) == ([], [])


def test_the_walk_covers_every_order():
    assert len(LEADER_ORDERS) == 12
    assert len(FOLLOWER_ORDERS) == 24


@pytest.mark.parametrize("order", LEADER_ORDERS, ids="/".join)
def test_a_unit_that_becomes_leader_never_starts_grafana_without_the_password(order):
    unit = fresh_unit()
    password = None
    for arrival in order:
        arrive(unit, arrival)
        if unit.state.leader:
            password = "generated-password-1"
        check_never_started_without_the_password(unit, password, arrival)

    assert password is not None
    assert unit.fake.generated == 1
    assert unit.state.get_secret(label=admin_password.SECRET_LABEL).tracked_content == {
        "password": password
    }
    check_settled(unit, password)


@pytest.mark.parametrize(
    ("order", "told_by"),
    FOLLOWER_ORDERS,
    ids=lambda v: "/".join(v) if isinstance(v, tuple) else v,
)
def test_a_follower_never_starts_grafana_before_the_leaders_secret(order, told_by):
    unit = fresh_unit()
    password = None
    for arrival in order:
        arrive(unit, arrival, told_by)
        if unit.leader_made_secret:
            password = STORED_PASSWORD
        check_never_started_without_the_password(unit, password, arrival)

    assert password is not None
    assert unit.fake.generated == 0
    check_settled(unit, password)
