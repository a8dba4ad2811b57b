"""Grafana from its real APT repository: the version pin, a refused downgrade, removal.

The unit tier checks the charm's choices against a fake, the machine tier the pin against a real
apt and stand-in packages; here apt.grafana.com serves the real Grafana .debs. Every test leaves
the bundle's model as it found it.
"""

import pathlib
from collections.abc import Iterator

import jubilant
import pytest

PIN = "/etc/apt/preferences.d/grafana"
SOURCES = "/etc/apt/sources.list.d/grafana.list"
KEYRING = "/etc/apt/keyrings/grafana.asc"
DEFAULT_MAJOR = "12"


def settled(status: jubilant.Status) -> bool:
    return jubilant.all_active(status) and jubilant.all_agents_idle(status)


def grafana_version(juju: jubilant.Juju, unit: str) -> str:
    return juju.ssh(unit, "dpkg-query -W -f='${Version}' grafana").strip()


def apt_files(juju: jubilant.Juju, target: str) -> list[str]:
    """Which of Grafana's apt files exist on a unit's or a machine's filesystem."""
    found = juju.ssh(target, f"ls -1 {SOURCES} {KEYRING} {PIN} 2>/dev/null || true")
    return sorted(found.split())


def test_the_bundle_installs_the_newest_grafana_of_the_default_major(juju: jubilant.Juju):
    policy = juju.ssh("grafana/0", "apt-cache policy grafana")
    candidate = next(line for line in policy.splitlines() if "Candidate:" in line)

    assert grafana_version(juju, "grafana/0").startswith(f"{DEFAULT_MAJOR}.")
    assert candidate.split()[-1].startswith(f"{DEFAULT_MAJOR}.")
    assert f"Pin: version {DEFAULT_MAJOR}.*" in juju.ssh("grafana/0", f"cat {PIN}")
    # apt.grafana.com's stable suite still carries older majors: the pin picked one.
    assert "13." in policy or "11." in policy


def test_a_lower_major_is_refused_and_grafana_left_as_it_is(juju: jubilant.Juju):
    before = grafana_version(juju, "grafana/0")
    juju.config("grafana", {"grafana-version": "11"})
    try:
        juju.wait(
            lambda s: jubilant.all_blocked(s, "grafana") and jubilant.all_agents_idle(s),
            error=jubilant.any_error,
        )
        message = juju.status().apps["grafana"].units["grafana/0"].workload_status.message

        assert message == (
            f"grafana-version: '11' would downgrade the installed Grafana {before}: "
            f"set it to '{DEFAULT_MAJOR}'"
        )
        assert grafana_version(juju, "grafana/0") == before
    finally:
        juju.config("grafana", reset="grafana-version")
        juju.wait(settled, error=jubilant.any_error)


@pytest.fixture
def second_grafana(
    juju: jubilant.Juju, charm_files: dict[str, pathlib.Path]
) -> Iterator[tuple[str, str]]:
    """Another Grafana application, on a machine of its own, removed afterwards."""
    juju.deploy(
        charm_files["grafana"],
        "grafana-apt",
        config={"grafana-version": "12"},
        base="ubuntu@22.04",
    )
    juju.wait(lambda s: settled(s) and "grafana-apt" in s.apps, error=jubilant.any_error)
    machine = juju.status().apps["grafana-apt"].units["grafana-apt/0"].machine
    try:
        yield "grafana-apt/0", machine
    finally:
        if "grafana-apt" in juju.status().apps:
            juju.remove_application("grafana-apt")
            juju.wait(lambda s: "grafana-apt" not in s.apps)
        juju.cli("remove-machine", machine, "--force")


def test_raising_the_major_upgrades_grafana_in_place(
    juju: jubilant.Juju, second_grafana: tuple[str, str]
):
    unit, _ = second_grafana
    password = juju.run(unit, "get-admin-password").results["admin-password"]

    juju.config("grafana-apt", {"grafana-version": "13"})
    juju.wait(
        lambda s: grafana_version(juju, unit).startswith("13.") and settled(s),
        error=jubilant.any_error,
    )

    assert "Pin: version 13.*" in juju.ssh(unit, f"cat {PIN}")
    # Same database, migrated: the administrator and the password are still there.
    assert juju.run(unit, "get-admin-password").results["admin-password"] == password


def test_removing_the_unit_takes_grafanas_apt_source_keyring_and_pin_away(
    juju: jubilant.Juju, second_grafana: tuple[str, str]
):
    unit, machine = second_grafana
    assert apt_files(juju, unit) == sorted([KEYRING, SOURCES, PIN])

    juju.remove_unit(unit)
    juju.wait(lambda s: not s.apps["grafana-apt"].units)

    assert apt_files(juju, machine) == []
    # The machine's strict apt updates (what other charms run) still work.
    juju.ssh(machine, "sudo apt-get update --error-on=any")
