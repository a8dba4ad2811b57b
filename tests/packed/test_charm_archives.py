"""The packed charms: run after packing (`tox -e packed`); fails if a piece is missing.

A charm is a zip that Juju unpacks and runs through `dispatch`; these are the pieces without
which a unit errors on its first hook.
"""

import pathlib
import zipfile

import pytest
import yaml

ROOT = pathlib.Path(__file__).parents[2]
CHARMS = ROOT / "charms"
# Each charm and its workload module.
WORKLOADS = {
    "prometheus": "prometheus/service",
    "grafana": "grafana/service",
    "node-exporter": "node_exporter/exporter",
    "alertmanager": "alertmanager/service",
}
NAMES = tuple(WORKLOADS)
# The shared package, built into every charm's venv from ../../lab-monitoring.
SHARED = ROOT / "lab-monitoring" / "src" / "lab_monitoring"
# Every charm is packed once per Ubuntu release it runs on (charmcraft.yaml's platforms).
PLATFORMS = {"22.04": "ubuntu-22.04-amd64", "24.04": "ubuntu-24.04-amd64"}


def archive(name: str, release: str = "22.04") -> zipfile.ZipFile:
    path = CHARMS / name / f"{name}_{PLATFORMS[release]}.charm"
    assert path.is_file(), f"{path} is missing: pack first (tox -e pack, or .ci/pack in CI)"
    return zipfile.ZipFile(path)


@pytest.mark.parametrize("name", NAMES)
def test_archive_has_dispatch_and_charm_code(name: str):
    files = set(archive(name).namelist())

    for required in ("dispatch", "manifest.yaml", "src/charm.py", f"src/{WORKLOADS[name]}.py"):
        assert required in files, f"{name}: {required} not packed"


@pytest.mark.parametrize("name", NAMES)
def test_archive_venv_carries_the_shared_package_as_it_is_in_the_repository(name: str):
    charm = archive(name)
    packed = {
        f.split("/site-packages/", 1)[1]: f
        for f in charm.namelist()
        if "/site-packages/lab_monitoring/" in f and f.endswith(".py")
    }
    sources = {
        str(path.relative_to(SHARED.parent)): path.read_bytes() for path in SHARED.rglob("*.py")
    }

    assert sorted(packed) == sorted(sources)
    assert all(charm.read(packed[name]) == text for name, text in sources.items())


@pytest.mark.parametrize("name", NAMES)
def test_archive_venv_carries_the_runtime_dependencies(name: str):
    files = archive(name).namelist()

    for package in ("ops", "yaml", "charmlibs/apt", "charmlibs/systemd"):
        assert any(f"/site-packages/{package}/__init__.py" in f for f in files), (
            f"{name}: {package} missing from the packed venv"
        )


def test_prometheus_archive_carries_the_promql_parser_and_its_compiled_module():
    files = archive("prometheus").namelist()

    packed = [f for f in files if "/site-packages/promql_parser/" in f]
    assert any(f.endswith("/__init__.py") for f in packed), "promql_parser missing"
    assert any(f.endswith(".so") for f in packed), "promql_parser's extension missing"


@pytest.mark.parametrize("release", PLATFORMS)
@pytest.mark.parametrize("name", NAMES)
def test_each_release_has_its_archive_built_for_that_release(name: str, release: str):
    charm = archive(name, release)
    manifest = yaml.safe_load(charm.read("manifest.yaml"))

    bases = [(b["name"], b["channel"], b["architectures"]) for b in manifest["bases"]]
    assert bases == [("ubuntu", release, ["amd64"])]
    assert {"dispatch", "src/charm.py"} <= set(charm.namelist())


@pytest.mark.parametrize("name", NAMES)
def test_archive_charmcraft_yaml_names_the_charm(name: str):
    metadata = yaml.safe_load(archive(name).read("metadata.yaml"))

    assert metadata["name"] == name


def test_grafana_archive_ships_only_its_own_dashboard():
    dashboards = [f for f in archive("grafana").namelist() if f.startswith("src/dashboards/")]

    assert dashboards == ["src/dashboards/grafana-overview.json"]


@pytest.mark.parametrize(
    ("name", "dashboard"),
    [("prometheus", "prometheus-overview.json"), ("node-exporter", "node-overview.json")],
)
def test_archive_ships_the_dashboard_it_sends_to_grafana(name: str, dashboard: str):
    assert f"src/grafana_dashboards/{dashboard}" in archive(name).namelist()


def test_node_exporter_archive_is_a_subordinate_with_its_alert_rules():
    charm = archive("node-exporter")
    metadata = yaml.safe_load(charm.read("metadata.yaml"))

    assert metadata["subordinate"] is True
    assert metadata["requires"]["juju-info"] == {"interface": "juju-info", "scope": "container"}
    assert "src/metrics_endpoint.py" in charm.namelist()
    rules = "src/prometheus_alert_rules/node.rules"
    assert charm.read(rules) == (CHARMS / "node-exporter" / rules).read_bytes()
