"""Fixtures for the Alertmanager charm's ops.testing tests (doubles: alertmanager_testing.py)."""

from __future__ import annotations

import pytest

# alertmanager_testing puts the charm's src on sys.path, so it is imported first.
from alertmanager_testing import (
    FakeConfiguration,
    FakeFlags,
    FakeMachine,
    FakePackage,
    FakeService,
    charm,
)
from ops import testing


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeMachine:
    machine = FakeMachine()
    monkeypatch.setattr("charm.package", FakePackage(machine))
    monkeypatch.setattr("charm.configuration", FakeConfiguration(machine))
    monkeypatch.setattr("charm.flags", FakeFlags(machine))
    monkeypatch.setattr("charm.service", FakeService(machine))
    return machine


@pytest.fixture
def ctx() -> testing.Context[charm.AlertmanagerCharm]:
    return testing.Context(charm.AlertmanagerCharm)


@pytest.fixture
def settled(ctx: testing.Context[charm.AlertmanagerCharm], fake: FakeMachine):
    """Return a function that runs config-changed once on a state and clears the fake's log.

    Tests of "what changes next" start from a unit that has already configured Alertmanager.
    """

    def settle(before: testing.State) -> testing.State:
        out = ctx.run(ctx.on.config_changed(), before)
        fake.settle()
        return out

    return settle
