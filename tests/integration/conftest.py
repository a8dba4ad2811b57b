"""Deploy the bundle once, into a temporary model, for the whole integration run.

Only the controller the user points at is used: JUJU_CONTROLLER if set, else juju's current
controller. Without juju or a reachable controller every test is skipped with the reason. The
model is destroyed afterwards unless pytest runs with --keep-models.
"""

import importlib.util
import pathlib
import types
from collections.abc import Iterator

import jubilant
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The tests compute data source uids with the shared library, as the Grafana charm does.
GET_A_CONTROLLER = (
    "get one with `sudo snap install concierge --classic && sudo concierge prepare -p machine`"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--keep-models",
        action="store_true",
        default=False,
        help="keep the temporary model after the run, to look at what went wrong",
    )


def _load_deploy_tool() -> types.ModuleType:
    # tools/deploy.py (`tox -e deploy`) knows how to find the controller, pack and stage the
    # bundle; the tests use it so that they deploy exactly what users deploy.
    spec = importlib.util.spec_from_file_location("deploy_tool", ROOT / "tools" / "deploy.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


deploy_tool = _load_deploy_tool()


@pytest.fixture(scope="session")
def charm_files() -> dict[str, pathlib.Path]:
    """Each application's packed .charm in the repository."""
    return deploy_tool.charm_files()


@pytest.fixture(scope="session")
def juju(
    request: pytest.FixtureRequest, charm_files: dict[str, pathlib.Path]
) -> Iterator[jubilant.Juju]:
    """A temporary model on the user's controller with the bundle deployed and settled."""
    try:
        controller = deploy_tool.find_controller()
    except deploy_tool.NoControllerError as e:
        pytest.skip(f"no Juju controller to deploy to: {e.reason}; {GET_A_CONTROLLER}")
    try:
        deploy_tool.ensure_packed(charm_files.values(), only_missing=True)
    except deploy_tool.DeployError as e:
        pytest.fail(str(e))

    keep = bool(request.config.getoption("--keep-models"))
    with jubilant.temp_model(keep=keep, controller=controller) as juju:
        # Installing Grafana from its APT repository and Prometheus from the archive takes
        # minutes on a fresh LXD container; every later wait adds or upgrades units too.
        juju.wait_timeout = 20 * 60
        with deploy_tool.juju_readable_tempdir() as staging:
            bundle, _ = deploy_tool.stage_bundle(pathlib.Path(staging))
            juju.deploy(bundle)
        juju.wait(deploy_tool.settled, error=jubilant.any_error)
        yield juju
