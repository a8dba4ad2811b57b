"""Which Grafana a unit installs: the grafana-version major from the repository, or the .deb.

The fake repository serves the newest release of each major (grafana_testing.RELEASES); the
pin and the source are the fake machine's `pinned` and `repository`. What apt itself does with
the pin file is checked with a real apt in tests/machine/test_grafana.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from grafana_testing import DEFAULT_RELEASE, RELEASES, STORED_PASSWORD, FakeGrafana, state
from ops import testing

ACTIVE = testing.ActiveStatus("serving on :3000 with 0 data sources")


def installs(fake: FakeGrafana) -> list[tuple[str, str]]:
    """What the hooks did to the package and to Grafana's repository, in order."""
    kinds = ("install", "upgrade", "pin", "remove")
    return [action for action in fake.actions if action[0] in kinds]


# --- the major from the repository ------------------------------------------------------------


def test_the_default_is_12_the_newest_major_every_fact_was_checked_for(ctx, fake):
    out = ctx.run(ctx.on.install(), state())

    assert RELEASES[12] == DEFAULT_RELEASE
    assert (fake.version, fake.pinned, fake.repository) == (RELEASES[12], 12, True)
    assert out.workload_version == RELEASES[12]
    assert out.unit_status == ACTIVE


@pytest.mark.parametrize("major", sorted(RELEASES))
def test_each_supported_major_is_installed_and_pinned(ctx, fake, major):
    out = ctx.run(ctx.on.install(), state(config={"grafana-version": str(major)}))

    assert (fake.version, fake.pinned) == (RELEASES[major], major)
    assert out.unit_status == ACTIVE


def test_raising_the_major_upgrades_grafana_in_place_without_a_charm_restart(ctx, installed):
    before = ctx.run(ctx.on.update_status(), state())
    installed.settle()

    out = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(before, config={"grafana-version": "13"})
    )

    assert installs(installed) == [
        ("install", "repository"),
        ("upgrade", f"{RELEASES[12]} to {RELEASES[13]}"),
    ]
    assert installed.pinned == 13
    assert out.workload_version == RELEASES[13]
    # grafana.ini did not change: the package's own upgrade restart is the only one.
    assert ("restart", "grafana-server") not in installed.actions
    assert installed.accepts("admin", STORED_PASSWORD)
    assert out.unit_status == ACTIVE


def test_a_lower_major_is_refused_naming_the_option_and_the_installed_version(ctx, installed):
    before = ctx.run(ctx.on.update_status(), state())
    files = dict(installed.files)
    installed.settle()

    out = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(before, config={"grafana-version": "11"})
    )

    assert out.unit_status == testing.BlockedStatus(
        f"grafana-version: '11' would downgrade the installed Grafana {RELEASES[12]}: "
        "set it to '12'"
    )
    # Nothing touched: not the package, not the pin, not the files, not the service.
    assert installed.actions == []
    assert (installed.version, installed.pinned) == (RELEASES[12], 12)
    assert installed.files == files
    assert installed.running


def test_setting_the_installed_major_again_unblocks_without_touching_anything(ctx, installed):
    before = ctx.run(ctx.on.update_status(), state())
    blocked = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(before, config={"grafana-version": "10"})
    )
    installed.settle()

    out = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(blocked, config={"grafana-version": "12"})
    )

    assert installed.actions == []
    assert out.unit_status == ACTIVE


def test_a_grafana_installed_before_the_option_existed_is_pinned_not_reinstalled(ctx, fake):
    # An earlier revision of the charm installed whatever apt.grafana.com's stable served.
    fake.installed_with_password(STORED_PASSWORD)
    fake.repository, fake.pinned = True, None

    out = ctx.run(ctx.on.upgrade_charm(), state())

    assert installs(fake) == [("pin", "12")]
    assert out.unit_status == ACTIVE


def test_a_newer_grafana_from_before_the_option_blocks_until_the_option_says_so(ctx, fake):
    fake.installed_with_password(STORED_PASSWORD, version=RELEASES[13])
    fake.pinned = None

    blocked = ctx.run(ctx.on.upgrade_charm(), state())
    out = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(blocked, config={"grafana-version": "13"})
    )

    assert blocked.unit_status == testing.BlockedStatus(
        f"grafana-version: '12' would downgrade the installed Grafana {RELEASES[13]}: "
        "set it to '13'"
    )
    assert installs(fake) == [("pin", "13")]
    assert out.unit_status == ACTIVE


def test_an_upgrade_apt_cannot_do_blocks_and_is_tried_again(ctx, installed):
    before = ctx.run(ctx.on.update_status(), state(config={"grafana-version": "12"}))
    installed.install_error = installed.apt_source.InstallError(
        "apt could not install grafana: E: Failed to fetch https://apt.grafana.com/..."
    )
    wanted = dataclasses.replace(before, config={"grafana-version": "13"})

    blocked = ctx.run(ctx.on.config_changed(), wanted)
    installed.install_error = None
    out = ctx.run(ctx.on.update_status(), blocked)

    assert blocked.unit_status == testing.BlockedStatus(
        "install failed, retrying: apt could not install grafana: E: Failed to fetch "
        "https://apt.grafana.com/..."
    )
    assert installed.version == RELEASES[13]
    assert out.unit_status == ACTIVE


# --- the grafana-deb resource ignores the pin --------------------------------------------------


def test_an_attached_deb_is_installed_whatever_the_option_and_unpins_grafana(
    ctx, fake, tmp_path: Path
):
    deb = tmp_path / "grafana.deb"
    deb.write_text("grafana 11.3.0 deb")
    resources = {testing.Resource(name="grafana-deb", path=deb)}

    out = ctx.run(ctx.on.install(), state(resources=resources, config={"grafana-version": "13"}))

    assert installs(fake) == [("install", "grafana 11.3.0 deb")]
    assert (fake.version, fake.pinned, fake.repository) == ("11.3.0", None, False)
    assert out.unit_status == ACTIVE


def test_attaching_a_deb_to_a_unit_installed_from_the_repository_drops_the_repository(
    ctx, installed, tmp_path: Path
):
    before = ctx.run(ctx.on.update_status(), state())
    installed.settle()
    deb = tmp_path / "grafana.deb"
    deb.write_text("grafana 12.4.0 deb")

    ctx.run(
        ctx.on.upgrade_charm(),
        dataclasses.replace(before, resources={testing.Resource(name="grafana-deb", path=deb)}),
    )

    assert installs(installed) == [("install", "grafana 12.4.0 deb")]
    assert (installed.pinned, installed.repository) == (None, False)


# --- removal ----------------------------------------------------------------------------------


def test_remove_takes_grafanas_source_keyring_and_pin_away_after_stopping_it(ctx, installed):
    before = ctx.run(ctx.on.update_status(), state())
    installed.settle()

    out = ctx.run(ctx.on.remove(), before)

    assert installed.actions == [("stop", "grafana-server"), ("remove", "repository")]
    assert (installed.repository, installed.pinned) == (False, None)
    assert out.unit_status == testing.MaintenanceStatus(
        "removing: grafana-server stopped and disabled"
    )
