"""Idempotence and churn: what a long life of hooks does to the machine.

Every hook run a second time must write, restart and call nothing. A seeded random sequence of
100 events (config changes, data sources joining and departing, leader flips, upgrades) must end
in the same files as a fresh install of the final state, with one restart per change of
grafana.ini, one provisioning reload per other change of data sources, and nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from typing import Any

import charm
import pytest
from grafana_testing import CHARM_DIR, FakeGrafana, state
from ops import testing

CONFIG_CHOICES = {
    "port": [3000, 3001],
    "admin-user": ["admin"],
    "allow-anonymous-access": [False, True],
    "anonymous-role": ["Viewer", "Editor"],
    "root-url": ["", "http://localhost:3000/"],
    "log-level": ["info", "debug"],
}
INVALID_CONFIG = {"port": 0, "anonymous-role": "Owner", "log-level": "loud"}


def cos_source(app: str, units: int) -> testing.Relation:
    data = {"model": "lab", "application": app, "type": "prometheus"}
    return testing.Relation(
        "grafana-source",
        remote_app_name=app,
        remote_app_data={"grafana_source_data": json.dumps(data)},
        remote_units_data={
            n: {"grafana_source_host": f"http://10.0.{n}.5:9090"} for n in range(units)
        },
    )


def legacy_source(app: str, units: int) -> testing.Relation:
    return testing.Relation(
        "grafana-source",
        remote_app_name=app,
        remote_units_data={
            n: {"type": "prometheus", "url": f"http://10.1.{n}.5:9090"} for n in range(units)
        },
    )


def with_sources() -> testing.State:
    before = state()
    sources = [cos_source("prom", 2), legacy_source("legacy", 2)]
    return dataclasses.replace(before, relations=[*before.relations, *sources])


def source(s: testing.State, app: str) -> testing.Relation:
    return next(
        r for r in s.relations if isinstance(r, testing.Relation) and r.remote_app_name == app
    )


EVENTS: dict[str, Callable[[testing.Context, testing.State], Any]] = {
    "install": lambda ctx, s: ctx.on.install(),
    "start": lambda ctx, s: ctx.on.start(),
    "config-changed": lambda ctx, s: ctx.on.config_changed(),
    "upgrade-charm": lambda ctx, s: ctx.on.upgrade_charm(),
    "update-status": lambda ctx, s: ctx.on.update_status(),
    "leader-elected": lambda ctx, s: ctx.on.leader_elected(),
    "grafana-source-relation-changed": lambda ctx, s: ctx.on.relation_changed(
        source(s, "prom"), remote_unit=0
    ),
    "grafana-source-relation-departed": lambda ctx, s: ctx.on.relation_departed(
        source(s, "legacy"), remote_unit=1, departing_unit=1
    ),
}


@pytest.mark.parametrize("event", EVENTS)
def test_every_event_run_twice_does_nothing_the_second_time(ctx, fake: FakeGrafana, event):
    before = with_sources()
    first = ctx.run(EVENTS[event](ctx, before), before)
    fake.actions.clear()
    fake.api_calls.clear()
    passwords_set = fake.passwords_set

    second = ctx.run(EVENTS[event](ctx, first), first)

    assert fake.actions == []
    assert fake.api_calls == []
    assert fake.passwords_set == passwords_set
    assert second.unit_status == first.unit_status


# --- churn ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Machine:
    """One unit's life: its Juju state, the machine (a fake) and what each hook did to it."""

    fake: FakeGrafana
    state: testing.State
    ctx: testing.Context = dataclasses.field(
        default_factory=lambda: testing.Context(charm.GrafanaCharm, charm_root=CHARM_DIR)
    )
    changes: int = 0
    restarts_and_reloads: int = 0

    def run(self, make_event: Callable[[testing.Context], Any]) -> None:
        """Run one hook; check it restarted or reloaded exactly for what it changed."""
        before = dict(self.fake.files)
        was_running = self.fake.running
        self.fake.actions.clear()
        self.fake.api_calls.clear()
        with self.fake.patched():
            self.state = self.ctx.run(make_event(self.ctx), self.state)
        changed = {k for k in self.fake.files if self.fake.files[k] != before.get(k)}
        service = [kind for kind, _ in self.fake.actions if kind in ("start", "restart")]
        reloads = [call for call in self.fake.api_calls if call == "reload datasources"]
        if not was_running:
            # The first hook writes grafana.ini, so Grafana starts by a restart.
            assert len(service) == 1
        elif "grafana.ini" in changed:
            assert (service, reloads) == (["restart"], [])
        elif "datasources" in changed:
            assert (service, reloads) == ([], ["reload datasources"])
        else:
            assert (service, reloads) == ([], [])
        self.changes += bool(changed) and was_running
        self.restarts_and_reloads += (len(service) + len(reloads)) * was_running


def random_step(rng: random.Random, machine: Machine) -> None:
    """Change one thing about the unit's world, at random, and run the hook Juju would run."""
    current = machine.state
    kind = rng.choice(["config", "config", "join", "depart", "leader", "upgrade", "status"])
    sources = [r for r in current.relations if isinstance(r, testing.Relation)]
    if kind == "config":
        # Mostly valid changes; now and then an invalid value, fixed by the next config change.
        config = {k: v for k, v in current.config.items() if INVALID_CONFIG.get(k) != v}
        option = rng.choice(sorted(CONFIG_CHOICES))
        config[option] = rng.choice(CONFIG_CHOICES[option])
        if rng.random() < 0.15:
            option = rng.choice(sorted(INVALID_CONFIG))
            config[option] = INVALID_CONFIG[option]
        machine.state = dataclasses.replace(current, config=config)
        machine.run(lambda ctx: ctx.on.config_changed())
    elif kind == "join" or not sources:
        build = rng.choice([cos_source, legacy_source])
        relation = build(f"prom{rng.randrange(1000)}", rng.randint(1, 3))
        machine.state = dataclasses.replace(current, relations=[*current.relations, relation])
        machine.run(lambda ctx: ctx.on.relation_changed(relation, remote_unit=0))
    elif kind == "depart":
        relation = rng.choice(sources)
        units = dict(relation.remote_units_data)
        if len(units) > 1:
            gone = max(units)
            del units[gone]
            smaller = dataclasses.replace(relation, remote_units_data=units)
            relations = [smaller if r.id == relation.id else r for r in current.relations]
            machine.state = dataclasses.replace(current, relations=relations)
            machine.run(
                lambda ctx: ctx.on.relation_departed(
                    smaller, remote_unit=gone, departing_unit=gone
                )
            )
        else:
            machine.run(lambda ctx: ctx.on.relation_broken(relation))
            relations = [r for r in machine.state.relations if r.id != relation.id]
            machine.state = dataclasses.replace(machine.state, relations=relations)
    elif kind == "leader":
        machine.state = dataclasses.replace(current, leader=not current.leader)
        machine.run(lambda ctx: ctx.on.leader_elected())
    elif kind == "upgrade":
        machine.run(lambda ctx: ctx.on.upgrade_charm())
    else:
        machine.run(lambda ctx: ctx.on.update_status())


def provisioned(fake: FakeGrafana) -> tuple[Any, ...]:
    """What Grafana would serve: grafana.ini, dashboards and the data sources (not deletions)."""
    return fake.files["grafana.ini"], fake.dashboards, fake.datasources()["datasources"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_100_random_events_end_like_a_fresh_install_with_one_action_per_change(seed: int):
    rng = random.Random(seed)
    machine = Machine(FakeGrafana(), with_sources())
    machine.run(lambda ctx: ctx.on.install())
    for _ in range(100):
        random_step(rng, machine)
    # A fresh install can only match when the final config is valid: make it so.
    machine.state = dataclasses.replace(machine.state, config={})
    machine.run(lambda ctx: ctx.on.config_changed())

    final = dataclasses.replace(
        machine.state,
        relations=[
            dataclasses.replace(r, local_app_data={}, local_unit_data={})
            if r.endpoint == "grafana-source"
            else r
            for r in machine.state.relations
        ],
        stored_states=[],
    )
    fresh = Machine(FakeGrafana(), final)
    fresh.run(lambda ctx: ctx.on.install())

    assert provisioned(machine.fake) == provisioned(fresh.fake)
    # Data sources removed along the way are deleted in Grafana, never the current ones.
    current = {source["name"] for source in machine.fake.datasources()["datasources"]}
    deleted = {source["name"] for source in machine.fake.datasources()["deleteDatasources"]}
    assert not current & deleted
    assert machine.restarts_and_reloads == machine.changes
    assert machine.changes > 10, "too few changes for the test to mean much"
