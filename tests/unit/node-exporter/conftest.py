"""Fixtures for the node-exporter charm's ops.testing tests (doubles: node_exporter_testing)."""

from __future__ import annotations

import pytest

# node_exporter_testing puts the charm's src on sys.path, so it is imported first.
from node_exporter_testing import FakeMachine, charm
from ops import testing


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> FakeMachine:
    """One machine, swapped in for the workload modules the charm calls."""
    fake = FakeMachine()
    for name, module in fake.modules().items():
        monkeypatch.setattr(f"charm.{name}", module)
    return fake


@pytest.fixture
def ctx() -> testing.Context[charm.NodeExporterCharm]:
    return testing.Context(charm.NodeExporterCharm)
