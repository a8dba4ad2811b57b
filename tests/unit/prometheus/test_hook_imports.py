"""What a hook loads: a settled unit's update-status imports no HTTP or PromQL code.

Every hook is a new Python process, so whatever the charm imports is paid for at every
update-status. Each check runs in a fresh interpreter, which is the only place where "not
imported yet" means something.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).parent
# What a hook that changes nothing has no use for: apt's library (only installing needs it), HTTP
# (urllib.request pulls in http.client and email) and the compiled PromQL parser. ops 3 imports
# the HTTP modules itself (ops.pebble), so for those the check is that the charm adds nothing
# on top of them; apt's and PromQL's code must not be loaded at all.
HEAVY = {
    "charmlibs.apt",
    "urllib.request",
    "http.client",
    "email",
    "email.message",
    "promql_parser",
    "prometheus.promql",
}
NEVER = {"charmlibs.apt", "promql_parser", "prometheus.promql"}

SETTLED_UPDATE_STATUS = """
import json, sys
import conftest, charm, relations
from ops import testing
from prometheus import rules
from test_metrics_endpoint import MODEL, RULES, relation

fake = conftest.FakePrometheus()
ctx = testing.Context(charm.PrometheusCharm)
rel = relation([], alert_rules=json.dumps(RULES))
state = testing.State(model=MODEL, leader=True, relations=[rel])
# The hook that settles the unit, with rules made without the parser (the one under test must
# not make them again, so it never gets to use them).
made = rules.Rules([{"name": "g", "rules": [{"alert": "A", "expr": "up == 0"}]}])
real, relations.rules.cos_rules = relations.rules.cos_rules, lambda *args: made
with fake.patched():
    settled = ctx.run(ctx.on.config_changed(), state)
relations.rules.cos_rules = real
before = set(sys.modules)
with fake.patched():
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
    path = [str(HERE), str(HERE.parents[2] / "charms" / "prometheus" / "src")]
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path[:0] = {path!r}\n{code}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_a_settled_units_update_status_imports_no_http_or_promql_code():
    loaded = modules(SETTLED_UPDATE_STATUS)

    assert not HEAVY & set(loaded["new"])
    assert not NEVER & set(loaded["all"])


def test_importing_the_charm_adds_no_http_or_promql_code_to_ops():
    loaded = modules(IMPORT_CHARM)

    assert not HEAVY & set(loaded["new"])
    assert not NEVER & set(loaded["all"])
    # The modules a hook needs are there: what is lazy is only what some hooks need.
    assert {"prometheus.config_file", "prometheus.reload", "relations"} <= set(loaded["all"])
