"""Deploy the monitoring bundle into a new model of the current Juju controller.

Run by `tox -e deploy` (add `-- --maas` for the MAAS overlay). On a fresh Ubuntu machine with a
controller it packs both charms when needed, adds a model, deploys bundles/monitoring.yaml,
waits until every unit is active and idle, and prints Grafana's URL and admin password.

The integration tests (tests/integration/conftest.py) reuse `find_controller`, `ensure_packed`
and `stage_bundle`, so the tests deploy exactly what this command deploys.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jubilant
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "monitoring.yaml"
MAAS_OVERLAY = ROOT / "bundles" / "overlays" / "maas.yaml"
# Ubuntu 24.04: every application from its noble .charm, and on MAAS noble machines.
NOBLE_OVERLAY = ROOT / "bundles" / "overlays" / "noble.yaml"
MAAS_NOBLE_OVERLAY = ROOT / "bundles" / "overlays" / "maas-noble.yaml"
# What `charmcraft pack` reads: a .charm older than any of these is stale.
CHARM_SOURCES = ("charmcraft.yaml", "pyproject.toml", "uv.lock", "src")
# The shared package every charm carries (see charms/*/charmcraft.yaml's part).
SHARED = ROOT / "lab-monitoring"
# charmcraft builds in a container that sees the charm's directory only, unless told to mount
# the whole repository, which the charms' parts need for the shared package.
PACK_ENV = {"CHARMCRAFT_EXPERIMENTAL_MONOREPO": "1"}

HOW_TO_GET_A_CONTROLLER = """\
Deploying needs a Juju controller: {reason}.

Set one up on this Ubuntu machine with concierge (installs Juju, LXD and charmcraft):

    sudo snap install concierge --classic && sudo concierge prepare -p machine

or by hand:

    sudo snap install juju lxd && lxd init --auto && juju bootstrap localhost

then run this again. To use another controller: `juju switch <name>` or JUJU_CONTROLLER=<name>."""


class DeployError(Exception):
    """A failure the user can act on: main() prints the message, not a traceback."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class NoControllerError(DeployError):
    """No juju command, no controller, or it does not answer; says how to get one."""

    def __init__(self, reason: str):
        super().__init__(HOW_TO_GET_A_CONTROLLER.format(reason=reason), 2)
        self.reason = reason


def find_controller() -> str:
    """Return the controller the user points at (JUJU_CONTROLLER, else the current one).

    Raises:
        NoControllerError: if there is no juju, no controller, or it does not answer.
    """
    if shutil.which("juju") is None:
        raise NoControllerError("the juju command is not installed")
    name = os.environ.get("JUJU_CONTROLLER")
    if not name:
        listing = subprocess.run(
            ["juju", "controllers", "--format", "json"], capture_output=True, text=True
        )
        if listing.returncode == 0 and listing.stdout.strip():
            name = json.loads(listing.stdout).get("current-controller")
    if not name:
        raise NoControllerError("juju has no current controller")
    try:
        # Listing models goes through the controller's API: it proves the controller answers.
        subprocess.run(
            ["juju", "models", "--controller", name, "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        raise NoControllerError(f"controller {name!r} did not answer within 60s") from None
    except subprocess.CalledProcessError as e:
        last_line = "".join(e.stderr.strip().splitlines()[-1:])
        raise NoControllerError(f"controller {name!r} does not answer ({last_line})") from None
    return name


def overlays_for(*, maas: bool, noble: bool) -> list[Path]:
    """The overlays a deploy on MAAS and/or Ubuntu 24.04 adds to the bundle, in order."""
    if noble:
        return [NOBLE_OVERLAY, *([MAAS_NOBLE_OVERLAY] if maas else [])]
    return [MAAS_OVERLAY] if maas else []


def charm_files(bundle: Path = BUNDLE, overlays: Iterable[Path] = ()) -> dict[str, Path]:
    """The packed charm file of each application, as an absolute path, overlays applied.

    A charm path in an overlay is relative to the overlay, as Juju reads it.
    """
    files = _charm_files_of(bundle)
    for overlay in overlays:
        files.update(_charm_files_of(overlay))
    return files


def _charm_files_of(bundle: Path) -> dict[str, Path]:
    applications = yaml.safe_load(bundle.read_text())["applications"]
    applications = {app: spec for app, spec in applications.items() if (spec or {}).get("charm")}
    return {app: (bundle.parent / spec["charm"]).resolve() for app, spec in applications.items()}


def is_stale(charm_file: Path) -> bool:
    """True if the .charm is missing or older than a source file of its charm."""
    if not charm_file.is_file():
        return True
    built = charm_file.stat().st_mtime
    for source in (*(charm_file.parent / name for name in CHARM_SOURCES), SHARED):
        files = source.rglob("*") if source.is_dir() else [source]
        if any(f.is_file() and f.stat().st_mtime > built for f in files):
            return True
    return False


def ensure_packed(charm_files: Iterable[Path], *, only_missing: bool = False) -> None:
    """Run `charmcraft pack` for each charm whose file is missing (or stale, unless only_missing).

    Raises:
        DeployError: if charmcraft is not installed or a pack fails.
    """
    for charm_file in charm_files:
        if charm_file.is_file() and (only_missing or not is_stale(charm_file)):
            continue
        if shutil.which("charmcraft") is None:
            raise DeployError(
                f"{charm_file.name} needs packing and charmcraft is not installed:"
                " sudo snap install charmcraft --classic",
                2,
            )
        print(f"Packing {charm_file.parent.name} (charmcraft pack, a few minutes)...", flush=True)
        packing = subprocess.run(
            ["charmcraft", "pack"], cwd=charm_file.parent, env={**os.environ, **PACK_ENV}
        )
        if packing.returncode != 0:
            raise DeployError(f"charmcraft pack failed in {charm_file.parent}")
        if not charm_file.is_file():
            raise DeployError(f"charmcraft pack did not write {charm_file}")


def juju_readable_tempdir() -> tempfile.TemporaryDirectory[str]:
    """A temporary directory the juju command can read, even when it is a confined snap.

    The juju snap cannot read /tmp; jubilant uses ~/snap/juju/common for its own files too.
    """
    juju = shutil.which("juju") or ""
    if "/snap/" not in juju:
        return tempfile.TemporaryDirectory(prefix="monitoring-")
    common = Path.home() / "snap" / "juju" / "common"
    common.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="monitoring-", dir=common)


def stage_bundle(directory: Path, overlays: Iterable[Path] = ()) -> tuple[Path, list[Path]]:
    """Write the bundle and overlays into directory, with absolute paths to copies of the charms.

    jubilant copies a bundle file elsewhere before a snap juju reads it, which breaks paths
    relative to the bundle; and the juju snap cannot read charms outside the user's home. So the
    charms are copied next to the staged bundle and named by absolute paths.
    """
    staged: list[Path] = []
    for source in (BUNDLE, *overlays):
        doc: dict[str, Any] = yaml.safe_load(source.read_text())
        for app, spec in (doc.get("applications") or {}).items():
            charm = (spec or {}).get("charm")
            if isinstance(charm, str) and charm.startswith("."):
                copy = directory / f"{app}.charm"
                shutil.copyfile((source.parent / charm).resolve(), copy)
                spec["charm"] = str(copy)
        target = directory / f"{len(staged)}-{source.name}"
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
        staged.append(target)
    return staged[0], staged[1:]


def settled(status: jubilant.Status) -> bool:
    """Every application and unit active, and every unit agent idle."""
    return jubilant.all_active(status) and jubilant.all_agents_idle(status)


def deploy(controller: str, model: str, overlays: list[Path], timeout: float) -> jubilant.Juju:
    """Add the model, deploy the staged bundle into it and wait until it settles."""
    juju = jubilant.Juju()
    try:
        juju.add_model(model, controller=controller)
    except jubilant.CLIError as e:
        raise DeployError(
            f"cannot add model {model!r} on {controller!r}: {e.stderr.strip()}"
        ) from None
    print(f"Deploying into {juju.model}...", flush=True)
    with juju_readable_tempdir() as staging:
        bundle, staged_overlays = stage_bundle(Path(staging), overlays)
        juju.deploy(bundle, overlays=staged_overlays)
    try:
        juju.wait(settled, error=jubilant.any_error, timeout=timeout)
    except jubilant.WaitError:
        raise DeployError(
            f"a unit went into error; see `juju status -m {juju.model}`"
            f" and `juju debug-log -m {juju.model}`"
        ) from None
    except TimeoutError:
        raise DeployError(
            f"not settled after {timeout:.0f}s; Juju carries on: `juju status -m {juju.model}"
            " --watch 5s`, then `juju run grafana/leader get-admin-password`"
        ) from None
    return juju


def print_login(juju: jubilant.Juju, *, tunnel: bool) -> None:
    """Print Grafana's URL and the admin login from the get-admin-password action."""
    try:
        task = juju.run("grafana/leader", "get-admin-password")
    except jubilant.TaskError as e:
        raise DeployError(
            f"get-admin-password failed: {e.task.message or e.task.status}"
        ) from None
    password = task.results.get("admin-password")
    if not password:
        raise DeployError(
            f"get-admin-password returned no password ({task.message or task.results}); set a new"
            f" one with `juju run -m {juju.model} grafana/leader reset-admin-password`"
        )
    unit = next(iter(juju.status().apps["grafana"].units.values()))
    url = task.results.get("url") or f"http://{unit.public_address}:3000"
    print(f"\nGrafana:  {url}\nuser:     {task.results.get('username', 'admin')}")
    print(f"password: {password}")
    if tunnel:
        address = unit.public_address
        print(
            f"\nFrom your workstation: ssh -L 8001:{address}:3000 ubuntu@{address}"
            "\nthen open http://localhost:8001"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of `tox -e deploy -- [options]`."""
    parser = argparse.ArgumentParser(
        description="Deploy the monitoring bundle into a new model of the current controller."
    )
    parser.add_argument(
        "--maas", action="store_true", help="add bundles/overlays/maas.yaml (tagged machines)"
    )
    parser.add_argument(
        "--noble",
        action="store_true",
        help="Ubuntu 24.04: add bundles/overlays/noble.yaml (and maas-noble.yaml with --maas)",
    )
    parser.add_argument("--model", default="monitoring", help="name of the new model")
    parser.add_argument(
        "--no-pack", action="store_true", help="use the .charm files as they are, never pack"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds to wait for active/idle"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Deploy, wait, print the login; return the exit code."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        controller = find_controller()
        overlays = overlays_for(maas=args.maas, noble=args.noble)
        charms = charm_files(overlays=overlays)
        if args.no_pack:
            missing = [str(c) for c in charms.values() if not c.is_file()]
            if missing:
                raise DeployError(f"--no-pack, but not packed: {', '.join(missing)}")
        else:
            ensure_packed(charms.values())
        juju = deploy(controller, args.model, overlays, args.timeout)
        print_login(juju, tunnel=args.maas)
    except DeployError as e:
        print(e, file=sys.stderr)
        return e.exit_code
    except jubilant.CLIError as e:
        print(f"{' '.join(e.cmd)} failed:\n{e.stderr.strip()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
