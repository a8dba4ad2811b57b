"""What a hook loads: a settled unit's update-status imports no apt or HTTP code.

Every hook is a new Python process, so whatever the charm imports is paid for at every
update-status (`tox -e bench` prints the cost against bare ops). Each check runs in a fresh
interpreter, which is the only place where "not imported yet" means something. The settling hook
and update-status run against this charm's test doubles, so what is checked is what the charm
and the modules it imports load, not what a real install would.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).parent
# What a hook that changes nothing has no use for: apt's library (only installing needs it) and
# HTTP (urllib.request pulls in http.client and email). ops 3 imports the HTTP modules itself
# (ops.pebble), so for those the check is that the charm adds nothing on top of them; apt's code
# must not be loaded at all.
HEAVY = {"charmlibs.apt", "urllib.request", "http.client", "email", "email.message"}
NEVER = {"charmlibs.apt"}

SETTLED_UPDATE_STATUS = """
import json, sys
from grafana_testing import STORED_PASSWORD, CHARM_DIR, FakeGrafana, charm, state
from ops import testing
ctx = testing.Context(charm.GrafanaCharm, charm_root=CHARM_DIR)
with FakeGrafana().patched() as fake:
    fake.installed_with_password(STORED_PASSWORD)
    settled = ctx.run(ctx.on.config_changed(), state())
before = set(sys.modules)
with FakeGrafana().patched() as fake:
    fake.installed_with_password(STORED_PASSWORD)
    out = ctx.run(ctx.on.update_status(), settled)
assert out.unit_status.name == "active", out.unit_status
print(json.dumps({"new": sorted(set(sys.modules) - before), "all": sorted(sys.modules)}))
"""

IMPORT_CHARM = """
import json, sys
import ops
before = set(sys.modules)
import charm
print(json.dumps({"new": sorted(set(sys.modules) - before), "all": sorted(sys.modules)}))
"""


def modules(code: str) -> dict[str, list[str]]:
    """Run `code` in a fresh interpreter (tests and charm importable); return what it printed."""
    path = [str(HERE), str(HERE.parents[2] / "charms" / "grafana" / "src")]
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path[:0] = {path!r}\n{code}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_a_settled_units_update_status_imports_no_apt_or_http_code():
    loaded = modules(SETTLED_UPDATE_STATUS)

    assert not HEAVY & set(loaded["new"])
    assert not NEVER & set(loaded["all"])


def test_importing_the_charm_adds_no_apt_or_http_code_to_ops():
    loaded = modules(IMPORT_CHARM)

    assert not HEAVY & set(loaded["new"])
    assert not NEVER & set(loaded["all"])
    # The modules a hook needs are there: what is lazy is only what some hooks need.
    assert {"grafana.ini", "grafana.provisioning", "grafana.service", "admin_password"} <= set(
        loaded["all"]
    )
