"""The bundle and the MAAS overlay agree with the charms they deploy; no Juju needed.

Juju only finds most bundle mistakes halfway through a deploy (a typo in an endpoint, a charm
path that points nowhere, a machine no application uses). This test finds them first: it loads
the bundle and the overlay, merges them the way `juju deploy --overlay` does, and checks the
result against each charm's charmcraft.yaml. With REQUIRE_PACKED=1 (CI, after packing) it also
opens the packed charms the bundle names.
"""

import copy
import os
import pathlib
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
CHARMS = ROOT / "charms"
BUNDLE = ROOT / "bundles" / "monitoring.yaml"
OVERLAYS = ROOT / "bundles" / "overlays"
OVERLAY = OVERLAYS / "maas.yaml"
NOBLE = OVERLAYS / "noble.yaml"
MAAS_NOBLE = OVERLAYS / "maas-noble.yaml"
ROLES = ("provides", "requires")
# Every charm provides `juju-info` (interface juju-info) without declaring it; subordinates
# attach to principals through it.
# https://documentation.ubuntu.com/juju/3.6/reference/application/#application-endpoint
IMPLICIT = {"juju-info": ("provides", {"interface": "juju-info"})}

Doc = dict[str, Any]


# --- Juju's overlay merge -------------------------------------------------------------------


def resolve_charm_paths(doc: Doc, directory: pathlib.Path) -> Doc:
    """Return a copy of a bundle document whose relative charm paths are absolute.

    Juju resolves a path starting with `.` against the directory of the file that names it, so
    a path in an overlay is relative to the overlay, not to the bundle.
    """
    doc = copy.deepcopy(doc)
    for spec in (doc.get("applications") or {}).values():
        charm = (spec or {}).get("charm")
        if isinstance(charm, str) and charm.startswith("."):
            spec["charm"] = os.path.abspath(directory / charm)
    return doc


def merge_overlay(base: Doc, overlay: Doc) -> Doc:
    """Return base with overlay applied, by the rules of juju/charm's ReadAndMergeBundleData.

    Machines replace the base's; relations append; an application merges key by key (an empty
    one removes the application and its relations); other top-level scalars overwrite.
    """
    merged = copy.deepcopy(base)
    for key, value in copy.deepcopy(overlay).items():
        if key == "applications":
            for name, spec in (value or {}).items():
                _merge_application(merged, name, spec)
        elif key == "relations":
            merged["relations"] = [*(merged.get("relations") or []), *value]
        elif key == "machines":
            if value is not None:
                merged["machines"] = value
        else:
            merged[key] = value
    return merged


def _merge_application(bundle: Doc, name: str, overlay_spec: Doc | None) -> None:
    applications = bundle.setdefault("applications", {})
    if not overlay_spec:
        applications.pop(name, None)
        bundle["relations"] = [
            pair
            for pair in bundle.get("relations") or []
            if name not in (endpoint.split(":")[0] for endpoint in pair)
        ]
        return
    spec = applications.setdefault(name, {})
    for key, value in overlay_spec.items():
        if isinstance(value, dict) and value:
            # Maps (options, annotations, bindings) merge; a null value deletes its key.
            inner = {**(spec.get(key) or {}), **value}
            spec[key] = {k: v for k, v in inner.items() if v is not None}
        else:
            # Scalars and lists overwrite; an empty map clears the base's.
            spec[key] = value


def deployable(bundle: Doc, *overlays: Doc) -> Doc:
    """What Juju deploys from BUNDLE's document and overlays read from bundles/overlays/."""
    merged = resolve_charm_paths(bundle, BUNDLE.parent)
    for overlay in overlays:
        merged = merge_overlay(merged, resolve_charm_paths(overlay, OVERLAYS))
    return merged


# --- the checker ----------------------------------------------------------------------------


def load_charm(charm_dir: pathlib.Path) -> Doc:
    """The charmcraft.yaml of one charm directory."""
    return yaml.safe_load((charm_dir / "charmcraft.yaml").read_text())


def packed_names(charm: Doc) -> set[str]:
    """File names `charmcraft pack` writes for this charm: one per platform."""
    return {f"{charm['name']}_{platform}.charm" for platform in charm["platforms"]}


def packed_base(charm: Doc, path: str) -> str:
    """The base (`ubuntu@22.04`) a packed file of this charm runs on, from its platform."""
    platform = pathlib.Path(path).stem.removeprefix(f"{charm['name']}_")
    build_for = charm["platforms"][platform]["build-for"]
    return build_for[0].rpartition(":")[0]


def problems(bundle: Doc) -> list[str]:
    """Everything in a merged, path-resolved bundle that Juju would reject or deploy wrongly."""
    found: list[str] = []
    applications: dict[str, Doc] = bundle.get("applications") or {}
    machines: dict[str, Doc] = bundle.get("machines") or {}
    charms: dict[str, Doc] = {}
    for app, spec in applications.items():
        charm = _check_charm_path(app, str(spec.get("charm", "")), found)
        if charm is not None:
            charms[app] = charm

    # Each application runs on its own `base:` or the bundle's default-base, which must be
    # the base its .charm was packed for; a machine's base must be that of what it carries.
    default_base = str(bundle.get("default-base", "")).removesuffix("/stable")
    bases: dict[str, str] = {}
    for app, charm in charms.items():
        spec = applications[app]
        base = str(spec.get("base") or default_base).removesuffix("/stable")
        wanted = packed_base(charm, spec["charm"])
        if base != wanted:
            found.append(f"{app}: base {base!r} (default-base or its own) is not {wanted!r}")
        bases[app] = wanted
    for number, machine in machines.items():
        carried = {
            bases[app]
            for app, spec in applications.items()
            if app in bases and number in (str(t).rpartition(":")[2] for t in spec.get("to", []))
        }
        if not (machine or {}).get("base"):
            found.append(f"machine {number} has no base")
        elif carried and {machine["base"].removesuffix("/stable")} != carried:
            found.append(f"machine {number}: base {machine['base']!r} is not {sorted(carried)}")

    used: set[str] = set()
    for app, spec in applications.items():
        if charms.get(app, {}).get("subordinate"):
            found += _check_subordinate(app, spec, bundle.get("relations") or [], charms)
        else:
            found += _check_placement(app, spec, machines, applications, used)
    found += [
        f"machine {number} is not used by any application" for number in machines.keys() - used
    ]

    for pair in bundle.get("relations") or []:
        found += _check_relation(pair, charms)
    return found


def _endpoint(charm: Doc, name: str) -> tuple[str, Doc] | None:
    """(role, spec) of a charm's provides or requires endpoint, implicit ones included."""
    for role in ROLES:
        if name in (charm.get(role) or {}):
            return role, charm[role][name]
    return IMPLICIT.get(name)


def _check_subordinate(
    app: str, spec: Doc, relations: list[list[str]], charms: dict[str, Doc]
) -> list[str]:
    """Check that a subordinate has no units of its own and is attached to a principal.

    Juju refuses num_units and placements for a subordinate (juju/juju
    internal/charm/bundledata.go, verifyApplications); its units come from container-scoped
    relations to principals, and without one it deploys nothing.
    """
    found = []
    if spec.get("num_units"):
        found.append(f"{app}: is subordinate but has num_units {spec['num_units']}")
    if spec.get("to"):
        found.append(f"{app}: is subordinate but has a placement {spec['to']}")
    principals = set()
    for pair in relations:
        (app_a, _, name_a), (app_b, _, name_b) = (endpoint.partition(":") for endpoint in pair)
        for mine, name, other in ((app_a, name_a, app_b), (app_b, name_b, app_a)):
            endpoint = _endpoint(charms[app], name) if mine == app else None
            container = endpoint is not None and endpoint[1].get("scope") == "container"
            if container and other in charms and not charms[other].get("subordinate"):
                principals.add(other)
    if not principals:
        found.append(f"{app}: is subordinate but attached to no principal (juju-info)")
    return found


def _check_charm_path(app: str, path: str, found: list[str]) -> Doc | None:
    """Return the charmcraft.yaml behind a bundle's charm path, or record why there is none."""
    charm_dir = pathlib.Path(path).parent
    if not path.startswith("/") or charm_dir.parent != CHARMS:
        found.append(f"{app}: charm {path!r} is not a file in {CHARMS}/<name>/")
        return None
    if not (charm_dir / "charmcraft.yaml").is_file():
        found.append(f"{app}: {charm_dir} has no charmcraft.yaml")
        return None
    charm = load_charm(charm_dir)
    if charm["name"] != charm_dir.name or pathlib.Path(path).name not in packed_names(charm):
        found.append(f"{app}: charm {path!r} is not what charmcraft packs: {packed_names(charm)}")
        return None
    return charm


def _check_placement(
    app: str, spec: Doc, machines: dict[str, Doc], applications: dict[str, Doc], used: set[str]
) -> list[str]:
    """Check an application's `to:` against its num_units and the bundle's machines."""
    to = spec.get("to")
    if to is None:
        return []
    found: list[str] = []
    if len(to) != spec.get("num_units", 1):
        found.append(f"{app}: num_units {spec.get('num_units', 1)} but {len(to)} placements")
    for target in to:
        # "0", "lxd:0", "new", "lxd:new", "other-app/0": the part after the container type.
        machine = str(target).rpartition(":")[2]
        if machine == "new":
            continue
        if machine in machines:
            used.add(machine)
        elif not ("/" in machine and machine.split("/")[0] in applications):
            found.append(f"{app}: placement {target!r} names no machine or unit of this bundle")
    return found


def _check_relation(pair: list[str], charms: dict[str, Doc]) -> list[str]:
    """Check that a relation joins a provides and a requires endpoint of the same interface."""
    ends: list[tuple[str, str]] = []
    for endpoint in pair:
        app, _, name = endpoint.partition(":")
        if app not in charms:
            return [f"relation {pair}: {app!r} is not an application with a known charm"]
        if not name:
            return [f"relation {pair}: name the endpoint ({app}:<endpoint>)"]
        charm = charms[app]
        if name in (charm.get("peers") or {}):
            return [f"relation {pair}: {endpoint} is a peer endpoint"]
        found = _endpoint(charm, name)
        if found is None:
            return [f"relation {pair}: charm {charm['name']} has no endpoint {name!r}"]
        ends.append((found[0], found[1]["interface"]))
    (role_a, interface_a), (role_b, interface_b) = ends
    if interface_a != interface_b:
        return [f"relation {pair}: interfaces differ ({interface_a} and {interface_b})"]
    if role_a == role_b:
        return [f"relation {pair}: both endpoints are {role_a}, one must provide"]
    return []


# --- the real files -------------------------------------------------------------------------


@pytest.fixture
def bundle() -> Doc:
    return yaml.safe_load(BUNDLE.read_text())


@pytest.fixture
def overlay() -> Doc:
    return yaml.safe_load(OVERLAY.read_text())


def test_bundle_alone_is_consistent_with_the_charms(bundle: Doc):
    assert problems(deployable(bundle)) == []


def test_bundle_with_maas_overlay_is_consistent_with_the_charms(bundle: Doc, overlay: Doc):
    assert problems(deployable(bundle, overlay)) == []


def test_bundle_with_the_noble_overlay_is_consistent_with_the_charms(bundle: Doc):
    noble = yaml.safe_load(NOBLE.read_text())

    assert problems(deployable(bundle, noble)) == []


def test_noble_on_maas_is_consistent_and_puts_noble_on_the_same_tagged_machines(bundle: Doc):
    noble, maas_noble = (yaml.safe_load(p.read_text()) for p in (NOBLE, MAAS_NOBLE))
    maas = yaml.safe_load(OVERLAY.read_text())

    merged = deployable(bundle, noble, maas_noble)

    assert problems(merged) == []
    assert {m["base"] for m in merged["machines"].values()} == {"ubuntu@24.04"}
    # Everything else is the MAAS overlay's: the same tags and placements.
    for machine in maas["machines"].values():
        machine["base"] = "ubuntu@24.04"
    assert merged["machines"] == maas["machines"]
    assert maas_noble["applications"] == maas["applications"]


def test_jammy_machines_cannot_carry_the_noble_charms(bundle: Doc, overlay: Doc):
    noble = yaml.safe_load(NOBLE.read_text())

    found = problems(deployable(bundle, noble, overlay))

    assert "machine 0: base 'ubuntu@22.04' is not ['ubuntu@24.04']" in found


@pytest.mark.parametrize("release", ["22.04", "24.04"])
def test_bundle_deploys_every_charm_from_its_packed_file(bundle: Doc, release: str):
    overlays = [yaml.safe_load(NOBLE.read_text())] if release == "24.04" else []
    charms = {
        app: spec["charm"] for app, spec in deployable(bundle, *overlays)["applications"].items()
    }

    platform = f"ubuntu-{release}-amd64"
    assert charms == {
        "prometheus": str(CHARMS / "prometheus" / f"prometheus_{platform}.charm"),
        "grafana": str(CHARMS / "grafana" / f"grafana_{platform}.charm"),
        "node-exporter": str(CHARMS / "node-exporter" / f"node-exporter_{platform}.charm"),
        "alertmanager": str(CHARMS / "alertmanager" / f"alertmanager_{platform}.charm"),
    }


def test_bundle_relates_datasource_scrape_and_dashboard_endpoints(bundle: Doc):
    relations = {frozenset(pair) for pair in bundle["relations"]}

    assert relations == {
        frozenset({"prometheus:grafana-source", "grafana:grafana-source"}),
        frozenset({"grafana:metrics-endpoint", "prometheus:metrics-endpoint"}),
        frozenset({"node-exporter:juju-info", "prometheus:juju-info"}),
        frozenset({"node-exporter:juju-info", "grafana:juju-info"}),
        frozenset({"node-exporter:metrics-endpoint", "prometheus:metrics-endpoint"}),
        frozenset({"prometheus:alertmanager", "alertmanager:alerting"}),
        frozenset({"alertmanager:grafana-source", "grafana:grafana-source"}),
        frozenset({"alertmanager:metrics-endpoint", "prometheus:metrics-endpoint"}),
        frozenset({"prometheus:grafana-dashboard", "grafana:grafana-dashboard"}),
        frozenset({"node-exporter:grafana-dashboard", "grafana:grafana-dashboard"}),
        frozenset({"alertmanager:grafana-dashboard", "grafana:grafana-dashboard"}),
    }


def test_node_exporter_is_a_subordinate_on_both_machines(bundle: Doc):
    assert load_charm(CHARMS / "node-exporter")["subordinate"] is True
    assert "num_units" not in bundle["applications"]["node-exporter"]
    attached = {
        other.partition(":")[0]
        for pair in bundle["relations"]
        if "node-exporter:juju-info" in pair
        for other in pair
        if other != "node-exporter:juju-info"
    }
    assert attached == {"prometheus", "grafana"}


def test_bundle_alone_needs_no_tags_or_machines_so_it_deploys_on_lxd(bundle: Doc):
    assert "machines" not in bundle
    for app, spec in bundle["applications"].items():
        assert spec.keys() <= {"charm", "num_units", "options", "to"}
        # Only beside another application's unit, which needs no machines section.
        for target in spec.get("to", []):
            other, _, number = target.partition("/")
            assert other in bundle["applications"], (app, target)
            assert number.isdigit(), (app, target)


@pytest.mark.parametrize(
    "overlays", [[], ["maas.yaml"], ["noble.yaml"], ["noble.yaml", "maas-noble.yaml"]]
)
def test_alertmanager_runs_on_prometheus_s_machine(bundle: Doc, overlays: list[str]):
    merged = deployable(bundle, *(yaml.safe_load((OVERLAYS / n).read_text()) for n in overlays))

    prometheus = merged["applications"]["prometheus"]
    alertmanager = merged["applications"]["alertmanager"]
    assert alertmanager["num_units"] == prometheus["num_units"] == 1
    # On MAAS the tagged machine Prometheus is placed on, elsewhere beside its unit.
    assert alertmanager["to"] == prometheus.get("to", ["prometheus/0"])
    # That machine's node-exporter already reports on it: no second exporter unit there.
    assert not any("alertmanager:juju-info" in pair for pair in merged["relations"])


def test_maas_overlay_puts_each_application_on_its_tagged_machine(bundle: Doc, overlay: Doc):
    merged = deployable(bundle, overlay)

    tags = {
        app: [merged["machines"][machine]["constraints"] for machine in spec["to"]]
        for app, spec in merged["applications"].items()
        if "to" in spec
    }
    assert tags == {
        "prometheus": ["tags=prometheus"],
        "grafana": ["tags=grafana"],
        "alertmanager": ["tags=prometheus"],
    }
    # The subordinate follows its principals: no placement, no machine of its own.
    assert merged["applications"]["node-exporter"].keys() == {"charm"}


@pytest.mark.parametrize("release", ["22.04", "24.04"])
@pytest.mark.parametrize("app", ["prometheus", "grafana", "node-exporter", "alertmanager"])
def test_packed_charm_is_the_one_the_bundle_expects(bundle: Doc, app: str, release: str):
    overlays = [yaml.safe_load(NOBLE.read_text())] if release == "24.04" else []
    path = pathlib.Path(deployable(bundle, *overlays)["applications"][app]["charm"])
    if not path.is_file():
        if os.environ.get("REQUIRE_PACKED") == "1":
            pytest.fail(f"{path} is missing although REQUIRE_PACKED=1: pack first")
        pytest.skip(f"{path.name} is not packed (tox -e pack; CI sets REQUIRE_PACKED=1)")
    charm = load_charm(path.parent)

    with zipfile.ZipFile(path) as archive:
        metadata = yaml.safe_load(archive.read("metadata.yaml"))
        manifest = yaml.safe_load(archive.read("manifest.yaml"))

    assert metadata["name"] == charm["name"] == app
    for role in (*ROLES, "peers"):
        assert metadata.get(role) == charm.get(role), f"{role} in the archive differ"
    assert manifest["bases"] == [
        {"name": "ubuntu", "channel": release, "architectures": ["amd64"]}
    ]


# --- the checker catches broken bundles -----------------------------------------------------


def _set_charm(path: str) -> Callable[[Doc, Doc], None]:
    def mutate(bundle: Doc, overlay: Doc) -> None:
        bundle["applications"]["prometheus"]["charm"] = path

    return mutate


def _set_relation(pair: list[str]) -> Callable[[Doc, Doc], None]:
    def mutate(bundle: Doc, overlay: Doc) -> None:
        bundle["relations"][0] = pair

    return mutate


def _overlay_charm_path(bundle: Doc, overlay: Doc) -> None:
    # The same text as in the bundle, but Juju reads it relative to bundles/overlays/.
    overlay["applications"]["grafana"]["charm"] = (
        "../charms/grafana/grafana_ubuntu-22.04-amd64.charm"
    )


def _machine_without_base(bundle: Doc, overlay: Doc) -> None:
    del overlay["machines"]["1"]["base"]


def _unused_machine(bundle: Doc, overlay: Doc) -> None:
    overlay["machines"]["2"] = {"base": "ubuntu@22.04", "constraints": "tags=spare"}


def _two_units_one_placement(bundle: Doc, overlay: Doc) -> None:
    bundle["applications"]["grafana"]["num_units"] = 2


def _placement_on_missing_machine(bundle: Doc, overlay: Doc) -> None:
    overlay["applications"]["grafana"]["to"] = ["7"]


def _noble_default_base(bundle: Doc, overlay: Doc) -> None:
    bundle["default-base"] = "ubuntu@24.04/stable"


def _noble_application(bundle: Doc, overlay: Doc) -> None:
    bundle["applications"]["grafana"]["base"] = "ubuntu@24.04"


def _focal_machine(bundle: Doc, overlay: Doc) -> None:
    overlay["machines"]["0"]["base"] = "ubuntu@20.04"


def _subordinate_with_units(bundle: Doc, overlay: Doc) -> None:
    bundle["applications"]["node-exporter"]["num_units"] = 2


def _subordinate_placed(bundle: Doc, overlay: Doc) -> None:
    overlay["applications"]["node-exporter"] = {"to": ["0"]}


def _subordinate_without_principal(bundle: Doc, overlay: Doc) -> None:
    bundle["relations"] = [p for p in bundle["relations"] if "node-exporter:juju-info" not in p]


def _juju_info_on_a_subordinate_only(bundle: Doc, overlay: Doc) -> None:
    bundle["relations"] = [p for p in bundle["relations"] if "node-exporter:juju-info" not in p]
    bundle["relations"].append(["node-exporter:juju-info", "prometheus:metrics-endpoint"])


BROKEN = {
    "charm path without the platform": (
        _set_charm("../charms/prometheus/prometheus.charm"),
        "is not what charmcraft packs",
    ),
    "charm path relative to the wrong directory": (
        _set_charm("./charms/prometheus/prometheus_ubuntu-22.04-amd64.charm"),
        "is not a file in",
    ),
    "charm from Charmhub instead of the packed file": (_set_charm("prometheus2"), "is not a file"),
    "charm path repeated in the overlay": (_overlay_charm_path, "grafana: charm"),
    "endpoint typo": (
        _set_relation(["prometheus:grafana-sources", "grafana:grafana-source"]),
        "has no endpoint 'grafana-sources'",
    ),
    "endpoint left to Juju to guess": (
        _set_relation(["prometheus", "grafana:grafana-source"]),
        "name the endpoint",
    ),
    "unknown application": (
        _set_relation(["prometheus2:grafana-source", "grafana:grafana-source"]),
        "'prometheus2' is not an application",
    ),
    "interfaces differ": (
        _set_relation(["prometheus:grafana-source", "grafana:metrics-endpoint"]),
        "interfaces differ",
    ),
    "two requirers": (
        _set_relation(["prometheus:metrics-endpoint", "prometheus:metrics-endpoint"]),
        "both endpoints are requires",
    ),
    "peer endpoint": (
        _set_relation(["grafana:grafana-peers", "prometheus:grafana-source"]),
        "is a peer endpoint",
    ),
    "machine without base": (_machine_without_base, "machine 1 has no base"),
    "machine nobody uses": (_unused_machine, "machine 2 is not used"),
    "num_units disagrees with to": (_two_units_one_placement, "num_units 2 but 1 placements"),
    "placement on a missing machine": (_placement_on_missing_machine, "placement '7'"),
    "default-base not the charms' base": (_noble_default_base, "(default-base or its own)"),
    "an application's own base not its charm's": (
        _noble_application,
        "grafana: base 'ubuntu@24.04'",
    ),
    "machine base not the charms' base": (_focal_machine, "machine 0: base 'ubuntu@20.04'"),
    "subordinate with units": (_subordinate_with_units, "is subordinate but has num_units 2"),
    "subordinate placed on a machine": (_subordinate_placed, "is subordinate but has a placement"),
    "subordinate attached to nothing": (
        _subordinate_without_principal,
        "attached to no principal",
    ),
    "juju-info to the wrong endpoint": (_juju_info_on_a_subordinate_only, "interfaces differ"),
    "unknown endpoint on a principal": (
        _set_relation(["node-exporter:juju-info", "grafana:juju-infos"]),
        "has no endpoint 'juju-infos'",
    ),
}


@pytest.mark.parametrize(("mutate", "expected"), BROKEN.values(), ids=BROKEN.keys())
def test_checker_reports_a_broken_bundle(
    bundle: Doc, overlay: Doc, mutate: Callable[[Doc, Doc], None], expected: str
):
    mutate(bundle, overlay)

    found = problems(deployable(bundle, overlay))

    assert any(expected in problem for problem in found), found


# --- the merge itself -----------------------------------------------------------------------


BASE = {
    "default-base": "ubuntu@22.04/stable",
    "machines": {"0": {"constraints": "mem=4G"}, "1": {}},
    "applications": {
        "a": {"charm": "a", "num_units": 1, "options": {"x": 1, "y": 2}, "to": ["0"]},
        "b": {"charm": "b"},
    },
    "relations": [["a:r", "b:r"]],
}


def test_merge_replaces_machines_whole():
    merged = merge_overlay(BASE, {"machines": {"5": {"base": "ubuntu@22.04"}}})

    assert merged["machines"] == {"5": {"base": "ubuntu@22.04"}}


def test_merge_merges_maps_and_a_null_deletes_a_key():
    merged = merge_overlay(BASE, {"applications": {"a": {"options": {"y": 3, "x": None}}}})

    assert merged["applications"]["a"]["options"] == {"y": 3}
    assert merged["applications"]["a"]["charm"] == "a"


def test_merge_overwrites_scalars_and_lists():
    merged = merge_overlay(
        BASE, {"default-base": "ubuntu@24.04", "applications": {"a": {"num_units": 2, "to": []}}}
    )

    assert merged["default-base"] == "ubuntu@24.04"
    assert merged["applications"]["a"]["num_units"] == 2
    assert merged["applications"]["a"]["to"] == []


def test_merge_appends_relations_and_adds_new_applications():
    merged = merge_overlay(
        BASE, {"applications": {"c": {"charm": "c"}}, "relations": [["c", "a"]]}
    )

    assert merged["relations"] == [["a:r", "b:r"], ["c", "a"]]
    assert merged["applications"]["c"] == {"charm": "c"}


def test_merge_empty_application_removes_it_and_its_relations():
    merged = merge_overlay(BASE, {"applications": {"b": None}})

    assert "b" not in merged["applications"]
    assert merged["relations"] == []


def test_merge_leaves_its_inputs_alone():
    before = copy.deepcopy(BASE)

    merge_overlay(BASE, {"machines": {}, "applications": {"a": {"options": {"x": 9}}}})

    assert before == BASE


def test_overlay_charm_paths_resolve_relative_to_the_overlay():
    overlay = {"applications": {"a": {"charm": "../a_amd64.charm"}, "b": {"charm": "b"}}}

    resolved = resolve_charm_paths(overlay, OVERLAY.parent)

    assert resolved["applications"]["a"]["charm"] == str(ROOT / "bundles" / "a_amd64.charm")
    assert resolved["applications"]["b"]["charm"] == "b"
