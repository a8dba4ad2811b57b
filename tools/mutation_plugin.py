"""The pytest plugin that tools/mutation.py loads into every test process (`-p mutation_plugin`).

Driven by environment variables, so a plain pytest run is unaffected:

MUTATION_SELECT    a file of test node ids, one a line: only those tests run.
MUTATION_ORDER     a JSON file {node id: seconds}: the cheapest modules and tests run first, so
                   that `pytest -x` stops early (a module's tests stay together: module-scoped
                   fixtures such as a running Prometheus are set up once).
MUTATION_EXAMPLES  Hypothesis examples per property test (a profile named `mutation`, which
                   also skips shrinking: the first failing example is enough).
MUTATION_RECORD    where to write, as JSON, how long each test took and which test failed first.

Under `coverage run` it also labels every line a test executes with that test's node id (a
coverage "dynamic context"); lines executed outside any test (imports, collection) keep the
empty label. That is how the mutation tool knows which tests can see a given line.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("MUTATION_EXAMPLES"):
    from hypothesis import HealthCheck, Phase, settings

    settings.register_profile(
        "mutation",
        max_examples=int(os.environ["MUTATION_EXAMPLES"]),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        # A failing example kills the mutant as it is: shrinking it (promtool runs included)
        # only turns the kill into a timeout.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    # tests/conftest.py, imported after this plugin, loads the profile this names.
    os.environ["HYPOTHESIS_PROFILE"] = "mutation"

_durations: dict[str, float] = {}
_state: dict[str, Any] = {"failed": None, "selected": None}


def _coverage() -> Any:
    try:
        import coverage
    except ImportError:
        return None
    return coverage.Coverage.current()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep only the tests named in MUTATION_SELECT, cheapest first as MUTATION_ORDER says."""
    if select := os.environ.get("MUTATION_SELECT"):
        wanted = set(Path(select).read_text().splitlines())
        config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in wanted])
        items[:] = [item for item in items if item.nodeid in wanted]
        _state["selected"] = len(items)
    if order := os.environ.get("MUTATION_ORDER"):
        items[:] = ordered(items, json.loads(Path(order).read_text()))


def ordered(items: list[Any], seconds: dict[str, float]) -> list[Any]:
    """Sort tests by the cost of their module, then their own; unknown tests cost 1 s."""
    module_cost: dict[str, float] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        module_cost[module] = module_cost.get(module, 0.0) + seconds.get(item.nodeid, 1.0)

    def key(item: Any) -> tuple[float, str, float]:
        module = item.nodeid.split("::")[0]
        return module_cost[module], module, seconds.get(item.nodeid, 1.0)

    return sorted(items, key=key)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Time each test (setup, call and teardown) and label the lines it runs with its id."""
    cov = _coverage()
    if cov is not None:
        cov.switch_context(item.nodeid)
    started = time.perf_counter()
    yield
    _durations[item.nodeid] = time.perf_counter() - started
    if cov is not None:
        cov.switch_context("")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember the first test that failed (the one that killed the mutant)."""
    if report.failed and _state["failed"] is None:
        _state["failed"] = report.nodeid


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A module that no longer imports also kills the mutant."""
    if report.failed and _state["failed"] is None:
        _state["failed"] = f"{report.nodeid} (collection error)"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the record for the mutation tool."""
    record = os.environ.get("MUTATION_RECORD")
    if record:
        Path(record).write_text(json.dumps({"durations": _durations, **_state}))
