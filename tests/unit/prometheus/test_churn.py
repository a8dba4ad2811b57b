"""Idempotence and churn: what a long life of hooks does to the machine.

Every hook run a second time must write, reload and restart nothing. A seeded random sequence of
100 events (config changes, relations joining and departing, leader flips, upgrades) must end in
the same files as a fresh install of the final state, with one reload per change of
prometheus.yml or rules, one restart per change of flags, and nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from typing import Any

import charm
import pytest
from conftest import FakePrometheus
from ops import testing

MODEL = testing.Model(name="lab", uuid="2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f")
CONFIG_CHOICES = {
    "web-port": [9090, 9091, 80],
    "scrape-interval": ["15s", "30s"],
    "retention-time": ["15d", "30d"],
    "retention-size": ["80%", "10GB", ""],
    "external-labels": ["", "site=lab"],
    "scrape-jobs": ["", "- job_name: node\n  static_configs: [{targets: ['10.0.0.5:9100']}]"],
    "log-level": ["info", "debug"],
}
INVALID_CONFIG = {"web-port": 0, "scrape-interval": "1.5m", "external-labels": "site"}


def metrics_endpoint(app: str, units: int) -> testing.Relation:
    jobs = [{"job_name": "app", "static_configs": [{"targets": ["*:8080"]}]}]
    rules = {"groups": [{"name": app, "rules": [{"alert": "Down", "expr": "up == 0"}]}]}
    return testing.Relation(
        "metrics-endpoint",
        remote_app_name=app,
        remote_app_data={"scrape_jobs": json.dumps(jobs), "alert_rules": json.dumps(rules)},
        remote_units_data={
            n: {"prometheus_scrape_unit_address": f"10.1.0.{n + 1}"} for n in range(units)
        },
    )


def target(app: str, units: int) -> testing.Relation:
    return testing.Relation(
        "target",
        remote_app_name=app,
        remote_units_data={
            n: {"hostname": f"10.2.0.{n + 1}", "port": "9100"} for n in range(units)
        },
    )


def grafana() -> testing.Relation:
    return testing.Relation("grafana-source", remote_app_name="grafana")


def settled_state(**kwargs) -> testing.State:
    kwargs.setdefault("relations", [metrics_endpoint("web", 2), target("node", 2), grafana()])
    return testing.State(model=MODEL, leader=True, **kwargs)


EVENTS: dict[str, Callable[[testing.Context, testing.State], Any]] = {
    "install": lambda ctx, s: ctx.on.install(),
    "start": lambda ctx, s: ctx.on.start(),
    "config-changed": lambda ctx, s: ctx.on.config_changed(),
    "upgrade-charm": lambda ctx, s: ctx.on.upgrade_charm(),
    "update-status": lambda ctx, s: ctx.on.update_status(),
    "leader-elected": lambda ctx, s: ctx.on.leader_elected(),
    "metrics-endpoint-relation-changed": lambda ctx, s: ctx.on.relation_changed(
        s.get_relations("metrics-endpoint")[0], remote_unit=0
    ),
    "target-relation-changed": lambda ctx, s: ctx.on.relation_changed(
        s.get_relations("target")[0], remote_unit=1
    ),
    "target-relation-departed": lambda ctx, s: ctx.on.relation_departed(
        s.get_relations("target")[0], remote_unit=1, departing_unit=1
    ),
    "grafana-source-relation-joined": lambda ctx, s: ctx.on.relation_joined(
        s.get_relations("grafana-source")[0], remote_unit=0
    ),
}


@pytest.mark.parametrize("event", EVENTS)
def test_every_event_run_twice_does_nothing_the_second_time(ctx, fake: FakePrometheus, event):
    fake.is_installed = fake.is_running = False
    before = settled_state()
    first = ctx.run(EVENTS[event](ctx, before), before)
    fake.settle()

    second = ctx.run(EVENTS[event](ctx, first), first)

    assert fake.writes == []
    assert fake.actions == []
    assert second.unit_status == first.unit_status


# --- churn ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Machine:
    """One unit's life: its Juju state, the machine (a fake) and what each hook did to it."""

    fake: FakePrometheus
    state: testing.State
    ctx: testing.Context = dataclasses.field(
        default_factory=lambda: testing.Context(charm.PrometheusCharm)
    )
    hooks_that_changed_files: int = 0
    reloads_and_restarts: int = 0

    def run(self, make_event: Callable[[testing.Context], Any]) -> None:
        """Run one hook; check it reloaded or restarted exactly for what it changed."""
        before = (self.fake.config, dict(self.fake.rules), self.fake.args)
        was_running = self.fake.is_running
        was_installed = self.fake.is_installed
        self.fake.settle()
        with self.fake.patched():
            self.state = self.ctx.run(make_event(self.ctx), self.state)
        files_changed = (self.fake.config, self.fake.rules) != before[:2]
        flags_changed = self.fake.args != before[2]
        if not was_installed:
            # The package starts Prometheus with its defaults; the charm restarts it.
            expected = ["restart"] if self.fake.is_installed else []
        elif not was_running:
            expected = ["start"] if self.fake.is_running else []
        elif flags_changed:
            expected = ["restart"]
        elif files_changed:
            expected = ["reload"]
        else:
            expected = []
        actions = [a for a in self.fake.actions if a.split()[0] not in ("install", "low-ports")]
        assert actions == expected
        # The drop-in for a port below 1024 is there exactly when the port needs it.
        port = self.fake.flag("web.listen-address")
        assert self.fake.low_ports == (port is not None and int(port.lstrip(":")) < 1024)
        self.hooks_that_changed_files += files_changed or flags_changed
        self.reloads_and_restarts += len(actions)


def random_step(rng: random.Random, machine: Machine) -> None:
    """Change one thing about the unit's world, at random, and run the hook Juju would run."""
    state = machine.state
    kind = rng.choice(["config", "config", "join", "depart", "leader", "upgrade", "status"])
    relations = [
        r
        for r in state.relations
        if isinstance(r, testing.Relation) and r.endpoint in ("metrics-endpoint", "target")
    ]
    if kind == "config":
        # Mostly valid changes; now and then an invalid value, fixed by the next config change.
        config = {k: v for k, v in state.config.items() if INVALID_CONFIG.get(k) != v}
        option = rng.choice(sorted(CONFIG_CHOICES))
        config[option] = rng.choice(CONFIG_CHOICES[option])
        if rng.random() < 0.15:
            option = rng.choice(sorted(INVALID_CONFIG))
            config[option] = INVALID_CONFIG[option]
        machine.state = dataclasses.replace(state, config=config)
        machine.run(lambda ctx: ctx.on.config_changed())
    elif kind == "join" or (kind == "depart" and not relations):
        build = rng.choice([metrics_endpoint, target])
        relation = build(f"app{rng.randrange(1000)}", rng.randint(1, 3))
        machine.state = dataclasses.replace(state, relations=[*state.relations, relation])
        machine.run(lambda ctx: ctx.on.relation_changed(relation, remote_unit=0))
    elif kind == "depart":
        relation = rng.choice(relations)
        units = dict(relation.remote_units_data)
        if len(units) > 1:
            gone = max(units)
            del units[gone]
            relation = dataclasses.replace(relation, remote_units_data=units)
            machine.state = dataclasses.replace(
                state, relations=[r if r.id != relation.id else relation for r in state.relations]
            )
            machine.run(
                lambda ctx: ctx.on.relation_departed(
                    relation, remote_unit=gone, departing_unit=gone
                )
            )
        else:
            machine.run(lambda ctx: ctx.on.relation_broken(relation))
            machine.state = dataclasses.replace(
                machine.state,
                relations=[r for r in machine.state.relations if r.id != relation.id],
            )
    elif kind == "leader":
        machine.state = dataclasses.replace(state, leader=not state.leader)
        machine.run(
            lambda ctx: ctx.on.leader_elected() if not state.leader else ctx.on.update_status()
        )
    elif kind == "upgrade":
        machine.run(lambda ctx: ctx.on.upgrade_charm())
    else:
        machine.run(lambda ctx: ctx.on.update_status())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_100_random_events_end_like_a_fresh_install_with_one_action_per_change(seed: int):
    rng = random.Random(seed)
    fake = FakePrometheus()
    fake.is_installed = fake.is_running = False
    machine = Machine(fake, settled_state())
    machine.run(lambda ctx: ctx.on.install())
    for _ in range(100):
        random_step(rng, machine)
    # A fresh install can only match when the final config is valid: make it so.
    machine.state = dataclasses.replace(machine.state, config={})
    machine.run(lambda ctx: ctx.on.config_changed())

    fresh = FakePrometheus()
    fresh.is_installed = fresh.is_running = False
    final = dataclasses.replace(
        machine.state,
        relations=[
            dataclasses.replace(r, local_app_data={}, local_unit_data={})
            for r in machine.state.relations
        ],
        stored_states=[],
    )
    Machine(fresh, final).run(lambda ctx: ctx.on.install())

    assert (fake.config, fake.rules, fake.args, fake.low_ports) == (
        fresh.config,
        fresh.rules,
        fresh.args,
        fresh.low_ports,
    )
    assert machine.reloads_and_restarts == machine.hooks_that_changed_files
    assert machine.hooks_that_changed_files > 10, "too few changes for the test to mean much"
