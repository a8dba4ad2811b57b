"""Hostile relation data rendered by the real charm code gives a prometheus.yml promtool accepts.

The Prometheus charm runs through ops.testing with its real workload modules: prometheus.jobs
and prometheus.rules validate the relation data, prometheus.config_file renders it and checks it
with the real promtool before writing it to a temporary directory. Only the service calls
(systemd) are replaced. Whatever the related charms wrote, promtool must never refuse the
file: a refusal would block the unit and keep every other change from being applied.
"""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys
import tempfile
from unittest import mock

import prometheus.paths
import prometheus.reload
import prometheus.service
from hypothesis import given, settings
from ops import testing

ROOT = pathlib.Path(__file__).parents[2]
sys.path[:0] = [
    str(ROOT / "tests" / "unit" / "prometheus"),
]
# Loaded by path: the Grafana tests in this process also put a module named `charm` on sys.path.
_spec = importlib.util.spec_from_file_location(
    "prometheus_charm", ROOT / "charms" / "prometheus" / "src" / "charm.py"
)
assert _spec
assert _spec.loader
prometheus_charm = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = prometheus_charm  # dataclasses look their module up there
_spec.loader.exec_module(prometheus_charm)

from relation_strategies import MODEL, Related, related  # noqa: E402

# promtool takes ~50 ms a call and each example calls it two to four times.
EXAMPLES = min(40, settings().max_examples)


@settings(max_examples=EXAMPLES)
@given(related())
def test_promtool_accepts_every_prometheus_yml_rendered_from_relation_data(
    given_related: list[Related],
):
    relations = [r.relation for r in given_related]
    state = testing.State(model=MODEL, leader=True, relations=relations)
    ctx = testing.Context(prometheus_charm.PrometheusCharm)
    with tempfile.TemporaryDirectory() as tmp:
        paths = prometheus.paths.Paths(
            config_dir=pathlib.Path(tmp, "etc"),
            defaults=pathlib.Path(tmp, "default"),
            tsdb=pathlib.Path(tmp, "metrics2"),
        )
        with (
            mock.patch.object(prometheus.paths, "PATHS", paths),
            mock.patch.multiple(
                prometheus.service,
                installed=lambda: True,
                health=lambda: prometheus.service.packaged_service.Health.UP,
                allow_low_ports=lambda port: False,
                restart=lambda: True,
            ),
            mock.patch.object(prometheus.reload, "reload", return_value=0.0),
        ):
            out = ctx.run(ctx.on.config_changed(), state)
        check = subprocess.run(
            ["promtool", "check", "config", str(paths.config)], capture_output=True, text=True
        )

    assert out.unit_status.name == "active", out.unit_status.message
    assert check.returncode == 0, check.stderr
