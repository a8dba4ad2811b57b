"""Fixtures for the Grafana charm's ops.testing tests (the doubles are in grafana_testing.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# grafana_testing puts the charm's src on sys.path, so it is imported first.
from grafana_testing import CHARM_DIR, STORED_PASSWORD, FakeGrafana, charm
from ops import testing


@pytest.fixture
def fake() -> Iterator[FakeGrafana]:
    with FakeGrafana().patched() as fake:
        yield fake


@pytest.fixture
def ctx() -> testing.Context[charm.GrafanaCharm]:
    return testing.Context(charm.GrafanaCharm, charm_root=CHARM_DIR)


@pytest.fixture
def installed(fake: FakeGrafana) -> FakeGrafana:
    """A machine where an earlier hook installed Grafana and started it with the password."""
    return fake.installed_with_password(STORED_PASSWORD)
