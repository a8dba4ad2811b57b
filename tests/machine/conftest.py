"""Fixtures of the machine tier: each test gets a freshly booted systemd machine.

The tier needs root, mmdebstrap and systemd-nspawn (`apt install mmdebstrap systemd-container`).
Without them it skips with the reason, except under CI (CI=true), where a missing prerequisite
is an error: CI installs them, so their absence means CI is broken, not that there is nothing to
test. Machines share the host's network, so one run holds a host-wide lock (machine.py).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import juju
import machine as machine_module
from machine import Image, Machine


@pytest.fixture(scope="session")
def image(request: pytest.FixtureRequest) -> Iterator[Image]:
    """The root filesystem every machine boots (built once, then cached).

    The fixture holds the host-wide machine lock for the whole session. pytest's summary says
    which image it was, whether it was built (and how long that took), and how long another
    run kept the lock.
    """
    missing = machine_module.missing_prerequisites()
    found = None
    if not missing:
        found = Image.from_environment()
        missing = machine_module.missing_prerequisites(found)
    if missing:
        reason = "the machine tier needs " + "; ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI installs these: is .ci/run broken?)", pytrace=False)
        pytest.skip(reason)
    assert found is not None
    asked = time.monotonic()
    with machine_module.exclusive_host():
        locked = time.monotonic()
        cached = found.rootfs.is_dir()
        found.ensure()
        built = time.monotonic()
        news = [f"image {found.key}", "cached" if cached else f"built in {built - locked:.0f} s"]
        if locked - asked >= 1:
            news.append(f"after {locked - asked:.0f} s waiting for another run's lock")
        _say(request, ", ".join(news))
        yield found
    leftovers = machine_module.leftover_mounts()
    assert not leftovers, f"the machine tier left mounts behind: {leftovers}"


# What the session fixtures did (image built or cached, waits), shown in pytest's summary.
NEWS = pytest.StashKey[list[str]]()


def _say(request: pytest.FixtureRequest, line: str) -> None:
    """Add a line to the summary's "machine tier" section."""
    request.config.stash.setdefault(NEWS, []).append(line)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Show what the session fixtures did, with the test outcomes."""
    news = config.stash.get(NEWS, [])
    if news:
        terminalreporter.write_sep("-", "machine tier")
        for line in news:
            terminalreporter.write_line(line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def venvs(image: Image, request: pytest.FixtureRequest) -> pathlib.Path:
    """The overlay layer with every charm's venv (built once per image and lock files)."""
    started = time.monotonic()
    layer = juju.venv_layer(image)
    _say(request, f"charm venvs ready in {time.monotonic() - started:.0f} s")
    return layer


@pytest.fixture
def machine(
    image: Image, venvs: pathlib.Path, request: pytest.FixtureRequest
) -> Iterator[Machine]:
    """A freshly booted machine; its journal is printed when the test fails.

    The repository is mounted read-only at /lab (the charms run from there). Downloaded .debs
    are kept in a host directory between machines, as a local mirror would: an install still
    goes through apt and dpkg from nothing, only without fetching the same file again.
    """
    debs = machine_module.cache_dir() / "debs"
    (debs / "partial").mkdir(parents=True, exist_ok=True)
    with Machine.boot(
        image,
        layers=[venvs],
        binds=[(juju.REPO, juju.REPO_INSIDE)],
        writable_binds=[(debs, "/var/cache/apt/archives")],
    ) as booted:
        yield booted
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            with contextlib.suppress(Exception):
                journal = booted.run("journalctl", "-n", "150", "--no-pager", check=False).stdout
                print(f"--- journal of {booted.name} ---\n{journal}")
