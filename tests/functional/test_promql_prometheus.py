"""The expression rewrite (src/promql.py) judged by the real Prometheus and promtool.

Prometheus's /api/v1/format_query prints the tree Prometheus itself parses from a query. For
every generated expression Prometheus accepts, the rewrite without labels must print to the same
tree, and the scoped rewrite must be a valid rule for promtool whose every selector (in
Prometheus's own reading of it) carries the topology.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import urllib.error
from pathlib import Path

import prometheus.promql
import promql_parser
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "prometheus"))
from promql_strategies import expressions

pytestmark = pytest.mark.skipif(
    not (shutil.which("prometheus") and shutil.which("promtool")),
    reason="needs the prometheus package (apt install prometheus)",
)

TOPOLOGY = {
    "juju_model": "lab",
    "juju_model_uuid": "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f",
    "juju_application": "widgets",
}


def formatted(running, expr: str) -> str | None:
    """Prometheus's own printing of `expr`, or None if Prometheus refuses it."""
    try:
        return running.get("/api/v1/format_query", query=expr)["data"]
    except urllib.error.HTTPError as e:
        if e.code != 400:  # 400: a query Prometheus cannot parse
            raise
        return None


def promtool_check_rule(expr: str) -> subprocess.CompletedProcess[str]:
    rules = {
        "groups": [
            {
                "name": "g",
                "rules": [
                    {"alert": "A", "expr": expr, "labels": TOPOLOGY},
                    {"record": "job:x:sum", "expr": expr},
                ],
            }
        ]
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "x.rules")
        path.write_text(yaml.safe_dump(rules))
        return subprocess.run(
            ["promtool", "check", "rules", str(path)], capture_output=True, text=True
        )


# Each example costs two to four HTTP queries and one promtool run (~50 ms).
@settings(
    max_examples=min(60, settings().max_examples),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(expr=expressions())
def test_prometheus_reads_the_rewrite_as_the_original_plus_the_topology(
    self_scraping_prometheus, expr: str
):
    original = formatted(self_scraping_prometheus, expr)
    if original is None:
        event("Prometheus refuses the generated expression")
        return
    try:
        rendered = prometheus.promql.scope(expr, {})
    except prometheus.promql.RefusedError as e:
        # Prometheus reads it, the parser does not: the rule is left out, never mangled.
        event(f"valid for Prometheus, refused by the rewrite: {str(e)[:60]}")
        return
    event("checked")

    scoped = prometheus.promql.scope(expr, TOPOLOGY)

    assert formatted(self_scraping_prometheus, rendered) == original, rendered
    as_prometheus_reads_it = formatted(self_scraping_prometheus, scoped)
    assert as_prometheus_reads_it is not None, scoped
    found: list[promql_parser.VectorSelector] = []
    promql_parser.walk(
        promql_parser.parse(as_prometheus_reads_it),
        lambda n: found.append(n) if isinstance(n, promql_parser.VectorSelector) else None,
    )
    for selector in found:
        labels = {m.name: m.value for m in selector.matchers.matchers}
        assert {k: labels.get(k) for k in TOPOLOGY} == TOPOLOGY, as_prometheus_reads_it
    check = promtool_check_rule(scoped)
    assert check.returncode == 0, check.stdout + check.stderr
