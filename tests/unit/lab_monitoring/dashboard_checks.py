"""Helpers of the grafana_dashboard tests: an independent check that references resolve."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

BUILTINS = {"-- Grafana --", "-- Mixed --", "-- Dashboard --", "grafana"}
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]")
FILE_NAME = re.compile(r"juju_[a-z0-9]+(?:-[a-z0-9]+)*_[A-Za-z0-9_-]{1,40}\.json")


def references(node: Any) -> Iterator[tuple[str, Any]]:
    """Yield (path, value) of every `datasource` key anywhere in a dashboard.

    Data source variables are not references, and are left out.
    """
    stack: list[tuple[str, Any]] = [("", node)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                if key == "datasource" and value.get("type") != "datasource":
                    yield f"{path}/{key}", child
                else:
                    stack.append((f"{path}/{key}", child))
        elif isinstance(value, list):
            stack.extend((f"{path}/{i}", child) for i, child in enumerate(value))


def unresolved(dashboard: Mapping[str, Any], datasources: Mapping[str, str]) -> list[str]:
    """Return the paths of references that Grafana could not resolve in `dashboard`."""
    variables = {
        v.get("name")
        for v in dashboard.get("templating", {}).get("list", [])
        if isinstance(v, dict)
    }
    bad = []
    for path, value in references(dashboard):
        if value is None or value == "":
            continue
        if isinstance(value, dict):
            if value.get("type") in ("grafana", "datasource", "__expr__"):
                continue
            value = value.get("uid")
            if value is None or value == "":
                continue
        if not isinstance(value, str):
            bad.append(path)
            continue
        if value in BUILTINS or value in datasources:
            continue
        match = VARIABLE.fullmatch(value)
        if match and next(g for g in match.groups() if g) in variables:
            continue
        bad.append(path)
    return bad
