"""tools/deploy.py picks the overlays and .charm files a deploy on LXD, MAAS and noble needs."""

from __future__ import annotations

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parents[3] / "tools"))
import deploy

OVERLAYS = deploy.ROOT / "bundles" / "overlays"


@pytest.mark.parametrize(
    ("maas", "noble", "overlays"),
    [
        (False, False, []),
        (True, False, ["maas.yaml"]),
        (False, True, ["noble.yaml"]),
        (True, True, ["noble.yaml", "maas-noble.yaml"]),
    ],
)
def test_each_lab_gets_its_overlays_in_order(maas, noble, overlays):
    chosen = deploy.overlays_for(maas=maas, noble=noble)

    assert chosen == [OVERLAYS / name for name in overlays]


@pytest.mark.parametrize(("noble", "platform"), [(False, "22.04"), (True, "24.04")])
def test_the_charm_files_are_those_of_the_release_deployed(noble, platform):
    files = deploy.charm_files(overlays=deploy.overlays_for(maas=False, noble=noble))

    assert files == {
        app: deploy.ROOT / "charms" / app / f"{app}_ubuntu-{platform}-amd64.charm"
        for app in ("prometheus", "grafana", "node-exporter", "alertmanager")
    }


def test_the_command_line_takes_noble():
    assert deploy.parse_args(["--noble", "--maas"]).noble
    assert not deploy.parse_args([]).noble
