"""Grafana's provisioning files the charm owns: its data sources and its dashboards.

Grafana reads them when it starts and when asked to (api.GrafanaClient.reload_*), so a changed
data source or dashboard needs no restart. Data source text comes from relations, i.e. from
another administrator's charm: it is escaped for Grafana's `$` expansion and written as YAML
data, never spliced into the file.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import yaml
from lab_monitoring import files

from grafana import paths

logger = logging.getLogger(__name__)


class DataSource(Protocol):
    """What a data source needs to be provisioned (the shared library's DataSource has it)."""

    @property
    def uid(self) -> str: ...  # noqa: D102
    @property
    def name(self) -> str: ...  # noqa: D102
    @property
    def type(self) -> str: ...  # noqa: D102
    @property
    def url(self) -> str: ...  # noqa: D102
    @property
    def basic_auth_user(self) -> str | None: ...  # noqa: D102
    @property
    def basic_auth_password(self) -> str | None: ...  # noqa: D102
    @property
    def json_data(self) -> Mapping[str, str | int | float | bool]: ...  # noqa: D102


# --- data sources -----------------------------------------------------------------------------


def _literal(value: str) -> str:
    """Escape `$` so Grafana stores the text as it is.

    Grafana expands $VAR, ${VAR} and $__file{...}/$__env{...} in every string of a provisioning
    file, and `$$` is its escape for a literal `$` (pkg/services/provisioning/values/values.go
    interpolateValue): without this a data source name or URL from a relation could read files
    or environment variables into Grafana.
    """
    return value.replace("$", "$$")


def _datasource_entry(source: DataSource, *, default: bool) -> dict[str, object]:
    entry: dict[str, object] = {
        "uid": _literal(source.uid),
        "name": _literal(source.name),
        "type": _literal(source.type),
        "access": "proxy",
        "orgId": 1,
        "url": _literal(source.url),
        "isDefault": default,
        "editable": False,
    }
    if source.json_data:
        entry["jsonData"] = {
            key: _literal(value) if isinstance(value, str) else value
            for key, value in sorted(source.json_data.items())
        }
    if source.basic_auth_user is not None and source.basic_auth_password is not None:
        entry["basicAuth"] = True
        entry["basicAuthUser"] = _literal(source.basic_auth_user)
        entry["secureJsonData"] = {"basicAuthPassword": _literal(source.basic_auth_password)}
    return entry


def provisioned_names(text: str | None) -> tuple[set[str], set[str]]:
    """Return the (datasources, deleteDatasources) names of a provisioning file we wrote."""
    try:
        doc = yaml.safe_load(text or "") or {}
    except yaml.YAMLError:
        logger.warning("%s is not YAML; not deleting what it held", paths.PATHS.datasources)
        return set(), set()

    def names(key: str) -> set[str]:
        items = doc.get(key) if isinstance(doc, dict) else None
        if not isinstance(items, list):
            return set()
        return {i["name"] for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)}

    return names("datasources"), names("deleteDatasources")


def render_datasources(
    sources: Sequence[DataSource], previous: str | None = None, *, keep_deletions: bool = False
) -> str:
    """Return the data source provisioning file: one entry per source, the first the default.

    Data sources in `previous` (the file now on disk) that are gone are listed under
    deleteDatasources, which Grafana applies before the upserts. With `keep_deletions` the
    previous deletions stay listed too, for when Grafana has not read that file yet.
    A source whose uid or name repeats an earlier one is left out with a warning.
    """
    entries: list[dict[str, object]] = []
    uids: set[str] = set()
    for source in sources:
        entry = _datasource_entry(source, default=not entries)
        if entry["uid"] in uids or any(e["name"] == entry["name"] for e in entries):
            logger.warning("data source %r repeats a uid or name; left out", source.name)
            continue
        uids.add(str(entry["uid"]))
        entries.append(entry)
    current = {str(e["name"]) for e in entries}
    before, deleted_before = provisioned_names(previous)
    gone = before | deleted_before if keep_deletions else before
    doc = {
        "apiVersion": 1,
        "deleteDatasources": [{"name": name, "orgId": 1} for name in sorted(gone - current)],
        "datasources": entries,
    }
    return "# Written by the grafana charm from its grafana-source relations.\n" + yaml.safe_dump(
        doc, sort_keys=False, default_flow_style=False, allow_unicode=False, width=1000
    )


def read_datasources() -> str | None:
    """Return the data source provisioning file on disk, or None."""
    return files.read(paths.PATHS.datasources)


def write_datasources(text: str) -> bool:
    """Install the data source provisioning file; return True if it changed.

    It may hold data source passwords, so only root and Grafana can read it.
    """
    return files.write(paths.PATHS.datasources, text, mode=0o640, group=paths.PATHS.group)


# --- dashboards -------------------------------------------------------------------------------

# The name of a dashboard file from a relation: `juju_<application>_<uid>.json`, built by
# lab_monitoring's grafana_dashboard from Juju's application name and a validated uid. Checked
# again here, where it becomes a path: nothing else may land in (or outside) the directory.
RELATED_NAME = re.compile(r"juju_[a-z0-9]+(?:-[a-z0-9]+)*_[A-Za-z0-9_-]{1,40}\.json")


def render_dashboard_provider() -> str:
    """Return the provisioning file that loads the charm's dashboards from PATHS.dashboards."""
    doc = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "juju",
                "orgId": 1,
                "folder": "Juju",
                "type": "file",
                # A file the charm removes (its relation or sender went) deletes the dashboard;
                # with true Grafana would only unprovision it and keep it for good
                # (pkg/services/provisioning/dashboards/file_reader.go,
                # handleMissingDashboardFiles). Deleting a provisioned dashboard in the UI is
                # refused either way.
                "disableDeletion": False,
                # The charm owns these dashboards: UI edits would be lost on the next write.
                "allowUiUpdates": False,
                # Grafana's file reader walks the directory this often (pollChanges); the charm
                # also asks for a reload (POST /api/admin/provisioning/dashboards/reload) after
                # it changed a file, so a change shows at once and no restart is needed.
                "updateIntervalSeconds": 30,
                "options": {"path": str(paths.PATHS.dashboards)},
            }
        ],
    }
    return "# Written by the grafana charm.\n" + yaml.safe_dump(doc, sort_keys=False)


def shipped_uids(shipped: Path) -> set[str]:
    """Return the uids of the dashboards the charm ships in `shipped`."""
    uids = set()
    for path in shipped.glob("*.json"):
        uid = json.loads(path.read_text()).get("uid")
        if isinstance(uid, str):
            uids.add(uid)
    return uids


def write_dashboards(shipped: Path, related: Mapping[str, str] | None = None) -> bool:
    """Install the dashboard provider, every shipped *.json and `related`; True if any changed.

    `related` maps a file name (RELATED_NAME) to the dashboard JSON a relation sent; a name
    that is not one is left out with a warning. Files no longer wanted (a charm upgrade, a
    relation or sender gone) are removed.
    """
    directory = paths.PATHS.dashboards
    provider = render_dashboard_provider()
    changed = files.write(paths.PATHS.dashboard_provider, provider, mode=0o644)
    wanted: dict[str, str | bytes] = {
        p.name: p.read_bytes() for p in sorted(shipped.glob("*.json"))
    }
    for name, content in sorted((related or {}).items()):
        if not RELATED_NAME.fullmatch(name) or name in wanted:
            logger.warning("not provisioning a dashboard file named %r", name)
            continue
        wanted[name] = content
    for name, content in wanted.items():
        changed |= files.write(directory / name, content, mode=0o644)
    for stale in directory.glob("*.json"):
        if stale.name not in wanted:
            stale.unlink()
            changed = True
    return changed
