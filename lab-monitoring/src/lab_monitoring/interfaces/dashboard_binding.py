"""Binding a related dashboard to this Grafana: data source references and topology dropdowns.

The half of the `grafana-dashboard` requirer that rewrites a dashboard's JSON once
grafana_dashboard.py has decoded and validated it (the wire format is described there).

What COS's requirer does with a template, and this module too (GrafanaDashboardConsumer and
CharmedDashboard._convert_dashboard_fields, _replace_template_fields, _template_panels,
_manage_dashboard_uid; `dashboards` for duplicates):
- a dashboard without `uid` gets `dashboard_alt_uid`;
- `__inputs` (a marketplace export's data source placeholders) are dropped; data source
  references are bound to the template variables `${prometheusds}` / `${lokids}`, which the
  requirer adds (type `datasource`, query `prometheus` / `loki`) unless the dashboard has
  variables of those names; a dashboard's own data source variable of either type that gets
  rebound is removed; Grafana then picks a data source of the right type at view time;
- with `inject_dropdowns`, the variables juju_model, juju_model_uuid, juju_application and
  juju_unit (label_values queries on `up`) are added unless present, and a panel query's
  equality matcher on one of them (`juju_application="$juju_application"`) becomes a regex
  matcher: the dropdowns' "All" is `.*`, which an equality never matches. COS's requirer ends
  with the same matchers (CosTool.inject_label_matchers turns `="$juju` into `=~"$juju` in
  every expression it rewrites; grafana_k8s grafana_dashboard LIBPATCH 51); the MySQL machine
  charm's "MySQL Handlers" panel has such a matcher in its source;
- of several dashboards with one uid, the one with the highest (version, relation id,
  content) is kept.

Kept different on purpose, each a defect of COS's requirer that a lab would hit:
- data source references are bound everywhere Grafana reads one: every panel (also inside
  collapsed rows), every target, every query variable, every annotation; COS binds top-level
  panels and legacy rows only, which leaves a marketplace export's `${DS_PROMETHEUS}` in its
  targets and variables, where Grafana reports "data source not found". A reference to a data
  source uid this Grafana has, or to a built-in one, is left as it is.
- expressions are not rewritten with topology matchers: COS does so with its cos-tool binary
  when the charm ships it and, without it, leaves them as they are (CosTool.
  inject_label_matchers), as here. The dropdowns are added; dashboards written for COS use
  `$juju_model` and the like in their own expressions.
- the dropdowns are added in their natural order (model, model uuid, application, unit, then
  the data source variables) ahead of the dashboard's own; COS inserts them one by one at the
  front, which reverses them when the dashboard already has variables.
- a uid Grafana would refuse (longer than 40 or outside [A-Za-z0-9_-]) is replaced like a
  missing one; a dashboard without a title is skipped (Grafana's provisioning refuses it:
  pkg/services/provisioning/dashboards/types.go createDashboardJSON).
- the file name is `juju_<application>_<uid>.json` from Juju's application name and the
  validated uid; COS names files after the remote `charm` field, unchecked.
- relation ids are compared as numbers when resolving duplicates (COS compares the strings
  of its peer data keys, so relation 10 loses to relation 9).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

_PLUGIN_ID = re.compile(r"[a-z][a-z0-9_-]{0,63}")

# Grafana's variable syntaxes: $name, ${name}, ${name:format}, ${name.field}, [[name]].
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?:[.:][^}]*)?\}|\[\[(\w+)(?::\w+)?\]\]")

# Built-in data sources: annotations and queries of Grafana itself, mixed, dashboard.
_BUILTIN_NAMES = frozenset({"-- Grafana --", "-- Mixed --", "-- Dashboard --", "grafana"})
_BUILTIN_TYPES = frozenset({"grafana", "datasource", "__expr__"})

# COS's variable names for the two data source types it binds (DATASOURCE_TEMPLATE_DROPDOWNS).
VARIABLES = {"prometheus": "prometheusds", "loki": "lokids"}

TOPOLOGY_LABELS = ("juju_model", "juju_model_uuid", "juju_application", "juju_unit")


def bind(dashboard: dict[str, Any], datasources: Mapping[str, str], *, inject_dropdowns: bool):
    """Bind every data source reference of `dashboard` (in place), as COS's requirer does.

    Afterwards each reference is unset, a Grafana built-in, a uid of `datasources`, or a data
    source variable that the dashboard defines.

    Raises:
        ValueError: `templating` is not an object holding a list.
    """
    templating = dashboard.setdefault("templating", {"list": []})
    if not isinstance(templating, dict):
        raise ValueError("templating is not an object")
    variables = templating.setdefault("list", [])
    if not isinstance(variables, list):
        raise ValueError("templating.list is not a list")
    # Grafana cannot read a variable that is not an object; such entries go.
    variables[:] = [v for v in variables if isinstance(v, dict)]
    inputs = dashboard.pop("__inputs", None)
    # Variable name -> the data source type it selects.
    types = _variable_types(variables)
    ours = [d for d in _dropdowns(inject_dropdowns) if d["name"] not in _names(variables)]
    variables[:0] = ours
    types.update(_variable_types(ours))
    if inject_dropdowns:
        _match_all_topology(dashboard)
    rebound: set[str] = set()
    binder = _Binder(datasources, _input_types(inputs), types, variables, rebound)
    for holder in _references(dashboard):
        holder["datasource"] = binder.bind(holder.get("datasource"))
    if not rebound:
        return
    # A variable of the dashboard's own that no longer has a user goes, as in COS.
    text = json.dumps({k: v for k, v in dashboard.items() if k != "templating"})
    text += json.dumps([v for v in variables if v.get("name") not in rebound])
    used = {next(n for n in m.groups() if n) for m in _VARIABLE.finditer(text)}
    variables[:] = [v for v in variables if v.get("name") not in rebound - used]


class _Binder:
    def __init__(
        self,
        datasources: Mapping[str, str],
        inputs: Mapping[str, str],
        types: dict[str, str],
        variables: list[Any],
        rebound: set[str],
    ):
        self._datasources = datasources
        self._inputs = inputs
        self._types = types
        self._names = _names(variables)
        self._variables = variables
        self._rebound = rebound

    def bind(self, reference: object) -> object:
        """Return `reference`, or a reference to the variable of its type if it resolves not."""
        if reference is None or reference == "":
            return reference
        if isinstance(reference, str):
            bound = self._bound_uid(reference, None)
            return reference if bound is None else bound
        if isinstance(reference, dict):
            ref_type = reference.get("type")
            uid = reference.get("uid")
            if isinstance(ref_type, str) and ref_type in _BUILTIN_TYPES:
                return reference
            known_type = isinstance(ref_type, str) and _PLUGIN_ID.fullmatch(ref_type)
            if uid is None or uid == "":
                # Grafana takes the default data source (of that type, if one is given).
                return reference if known_type else None
            if not isinstance(uid, str):
                if not known_type:
                    return None
                return {**reference, "uid": f"${{{self._variable_for(str(ref_type))}}}"}
            bound = self._bound_uid(uid, ref_type if isinstance(ref_type, str) else None)
            return reference if bound is None else {**reference, "uid": bound}
        # Neither a name nor an object: Grafana cannot read it; its default is used instead.
        return None

    def _bound_uid(self, uid: str, ref_type: str | None) -> str | None:
        """Return the variable to use instead of `uid`, or None if `uid` resolves as it is."""
        if uid in _BUILTIN_NAMES or uid in self._datasources:
            return None
        name = _variable_name(uid)
        if name is not None and name in self._types:
            var_type = self._types[name]
            variable = VARIABLES.get(var_type)
            if variable is None or variable == name:
                return None  # a variable of the dashboard's own, of a type COS leaves alone
            self._rebound.add(name)
            return f"${{{variable}}}"
        if name is not None and name in self._names:
            return None  # a variable the dashboard defines (ours included)
        # The placeholder's declared type, else the reference's own, else COS's guess for a
        # reference of unknown type (_template_panels).
        guessed = self._inputs.get(name, "") if name is not None else ""
        if not _PLUGIN_ID.fullmatch(guessed):
            guessed = ref_type or ""
        if not _PLUGIN_ID.fullmatch(guessed):
            guessed = "loki" if "loki" in uid.lower() else "prometheus"
        return f"${{{self._variable_for(guessed)}}}"

    def _variable_for(self, source_type: str) -> str:
        """Return the data source variable for `source_type`, added to the dashboard if new."""
        name = VARIABLES.get(source_type) or f"{re.sub(r'[^A-Za-z0-9_]', '_', source_type)}ds"
        if name not in self._names:
            self._variables.append(_datasource_variable(name, source_type))
            self._types[name] = source_type
            self._names.add(name)
        return name


def _variable_name(reference: str) -> str | None:
    match = _VARIABLE.fullmatch(reference)
    return next(n for n in match.groups() if n) if match else None


def _panels(dashboard: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Yield every panel of `dashboard`: top level, inside legacy rows and collapsed rows."""
    panels: list[Any] = list(_list(dashboard.get("panels")))
    for row in _list(dashboard.get("rows")):
        if isinstance(row, dict):
            panels.extend(_list(row.get("panels")))
    seen = 0
    while panels and seen < 100_000:
        panel = panels.pop()
        seen += 1
        if isinstance(panel, dict):
            yield panel
            panels.extend(_list(panel.get("panels")))


def _targets(panel: dict[str, Any]) -> Iterable[dict[str, Any]]:
    return (t for t in _list(panel.get("targets")) if isinstance(t, dict))


# `label="$juju_x"` or `label="${juju_x}"` for a dropdown juju_x; not `!=`, `=~` or `!~`.
_TOPOLOGY_EQUALITY = re.compile(
    r'(?<![!=~<>])=\s*"(\$(?:\{(?:%s)\}|(?:%s)\b))"' % (("|".join(TOPOLOGY_LABELS),) * 2)
)


def _match_all_topology(dashboard: dict[str, Any]) -> None:
    """Make equality matchers on the topology dropdowns regex matchers, so that "All" matches."""
    for panel in _panels(dashboard):
        for target in _targets(panel):
            expr = target.get("expr")
            if isinstance(expr, str):
                target["expr"] = _TOPOLOGY_EQUALITY.sub(r'=~"\1"', expr)


def _references(dashboard: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Yield every object of `dashboard` that may hold a `datasource` reference."""
    for panel in _panels(dashboard):
        if "datasource" in panel:
            yield panel
        yield from (t for t in _targets(panel) if "datasource" in t)
    templating = dashboard.get("templating")
    for variable in _list(templating.get("list") if isinstance(templating, dict) else None):
        # A data source variable's own fields name a type, not a data source.
        is_reference = isinstance(variable, dict) and variable.get("type") != "datasource"
        if is_reference and "datasource" in variable:
            yield variable
    annotations = dashboard.get("annotations")
    for annotation in _list(annotations.get("list") if isinstance(annotations, dict) else None):
        if isinstance(annotation, dict) and "datasource" in annotation:
            yield annotation


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _names(variables: list[Any]) -> set[str]:
    return {v["name"] for v in variables if isinstance(v, dict) and isinstance(v.get("name"), str)}


def _input_types(inputs: object) -> dict[str, str]:
    """Return the data source placeholders of a marketplace export: name -> plugin type."""
    types = {}
    for item in _list(inputs):
        if isinstance(item, dict) and item.get("type") == "datasource":
            name, plugin = item.get("name"), item.get("pluginId") or item.get("pluginName")
            if isinstance(name, str) and isinstance(plugin, str):
                types[name] = plugin.lower()
    return types


def _variable_types(variables: list[Any]) -> dict[str, str]:
    """Return the dashboard's data source variables: name -> the type they select."""
    types = {}
    for variable in variables:
        if isinstance(variable, dict) and variable.get("type") == "datasource":
            name, query = variable.get("name"), variable.get("query")
            if isinstance(name, str):
                types[name] = query.lower() if isinstance(query, str) else ""
    return types


def _datasource_variable(name: str, source_type: str) -> dict[str, Any]:
    """A data source variable as COS adds them (DATASOURCE_TEMPLATE_DROPDOWNS)."""
    label = "Prometheus" if source_type == "prometheus" else source_type.capitalize()
    return {
        "description": None,
        "error": None,
        "hide": 0,
        "includeAll": True,
        "label": f"{label} datasource",
        "multi": True,
        "name": name,
        "options": [],
        "query": source_type,
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
        "type": "datasource",
    }


def _topology_variable(label: str, name: str, query: str) -> dict[str, Any]:
    """A topology dropdown as COS adds them (TOPOLOGY_TEMPLATE_DROPDOWNS)."""
    return {
        "allValue": ".*",
        "datasource": "${prometheusds}",
        "definition": query,
        "description": None,
        "error": None,
        "hide": 0,
        "includeAll": True,
        "label": label,
        "multi": True,
        "name": name,
        "query": {"query": query, "refId": "StandardVariableQuery"},
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
        "sort": 0,
        "tagValuesQuery": "",
        "tags": [],
        "tagsQuery": "",
        "type": "query",
        "useTags": False,
    }


def _dropdowns(inject_topology: bool) -> list[dict[str, Any]]:
    """The variables COS adds: topology dropdowns if asked, then the two data source ones."""
    model = 'juju_model=~"$juju_model"'
    uuid = f'{model},juju_model_uuid=~"$juju_model_uuid"'
    app = f'{uuid},juju_application=~"$juju_application"'
    topology = [
        _topology_variable("Juju model", "juju_model", "label_values(up,juju_model)"),
        _topology_variable(
            "Juju model uuid", "juju_model_uuid", f"label_values(up{{{model}}},juju_model_uuid)"
        ),
        _topology_variable(
            "Juju application", "juju_application", f"label_values(up{{{uuid}}},juju_application)"
        ),
        _topology_variable("Juju unit", "juju_unit", f"label_values(up{{{app}}},juju_unit)"),
    ]
    sources = [_datasource_variable(name, kind) for kind, name in VARIABLES.items()]
    return copy.deepcopy((topology if inject_topology else []) + sources)
