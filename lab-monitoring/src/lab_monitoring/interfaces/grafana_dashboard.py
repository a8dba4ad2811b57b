"""The `grafana-dashboard` relation (interface `grafana_dashboard`), both halves, COS format.

A provider (Prometheus, node-exporter, Alertmanager; Canonical's opentelemetry-collector on
its `grafana-dashboards-provider` endpoint) sends dashboards; a requirer (Grafana) provisions
them as files. The format, as COS writes and reads it (canonical/grafana-k8s-operator
lib/charms/grafana_k8s/v0/grafana_dashboard.py, LIBPATCH 48 at 382e463, and LIBPATCH 51 as
vendored by canonical/opentelemetry-collector-operator at 0357b4b):

provider app data (leader) `dashboards`: JSON `{"templates": {...}, "uuid": ...}`
    (GrafanaDashboardProvider._upset_dashboards_on_relation). `uuid` is a nonce that makes
    Juju see a change: LIBPATCH 48 writes a random uuid4, LIBPATCH 51 the first 8 bytes of
    shake_128 over the templates dumped with sorted keys, in hex (`_data_hash`), so the value
    only changes with the templates. Each template, keyed `file:<file stem>`
    (CharmedDashboard.load_dashboards_from_dir, _content_to_dashboard_object):
      `charm`: the provider charm's name;
      `content`: the dashboard JSON (json.dumps of the file's object), LZMA-compressed with
          Python's defaults (xz container, preset 6) and base64-encoded (cosl's
          src/cosl/utils.py LZMABase64.compress); before that the provider replaces the
          dashboard's `uid` with cosl's DashboardPath40UID.generate(charm, path relative to
          the charm directory) = shake_256 of `charm-path`, 20 bytes in hex, unless it is
          already such a 40-hex uid (CharmedDashboard._replace_uid), and adds the tag
          `charm: <charm>` unless one starts so (_add_tags);
      `juju_topology`: `{"model", "model_uuid", "application", "unit"}`, `{}` when
          `inject_dropdowns` is false;
      `inject_dropdowns`: whether the requirer adds the Juju topology dropdowns;
      `dashboard_alt_uid`: shake_256 of `<charm>-<key>`, 8 bytes in hex (_generate_alt_uid).
requirer app data (leader) `event`: JSON `{"errors": [{"dashboard_id", "error"}]}` for
    templates it could not read (GrafanaDashboardConsumer._render_dashboards_and_signal_changed;
    the provider reads `valid` and `errors` in _on_grafana_dashboard_relation_changed).

What the requirer does with each template (COS's behaviour, and where this one differs on
purpose) is in dashboard_binding.py.

Untrusted input: sizes are limited before and after decompression (MAX_* below), the LZMA
stream is decompressed into a bounded buffer, and anything malformed is skipped with a logged
reason; `dashboards()` never raises on remote data. `$` is not escaped: Grafana reads a
provisioned dashboard file as plain JSON (pkg/services/provisioning/dashboards/
file_reader.go, FileReader.readDashboardFromFile: io.ReadAll then simplejson.NewJson), and
only the provisioning YAML goes through its environment expansion (types.go, the
values.StringValue fields of `configs`); in a dashboard `$` is Grafana's own variable syntax.

cosl (PyPI) is not a dependency: it would bring pydantic, pydantic-core, annotated-types,
typing-inspection, tenacity and diskcache (cosl 1.11.3 resolves 7 packages more than ops; 8.1
MiB installed, 2.9 MB zipped into a charm), and `import ops, cosl` (cosl's __init__ imports
its rule and topology modules, pydantic included, even for `cosl.utils`) took a median 466 ms
against 266 ms for `import ops` alone (Python 3.10, ops 3.9, 15 runs each): 1.75x, where the
hooks' budget is 1.10x; lzma and base64 cost about 1 ms. The format needs four lines of the
standard library; their source is cited above.

Provider use (in the charm's reconcile):

    grafana_dashboard.publish(self, self.charm_dir / "src" / "grafana_dashboards")

Requirer use (in Grafana's reconcile):

    dashboards = grafana_dashboard.GrafanaDashboardRequirer(self).dashboards(
        {source.uid: source.type for source in sources}
    )
    for dashboard in dashboards:
        files.write(directory / dashboard.file_name, dashboard.content)
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import logging
import lzma
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import ops

from lab_monitoring import relation_data, status
from lab_monitoring.interfaces.dashboard_binding import bind

logger = logging.getLogger(__name__)

DEFAULT_RELATION_NAME = "grafana-dashboard"

# One template's `content` (base64). The opentelemetry-collector's largest dashboard (node
# exporter full, 663 KB of JSON) encodes to 21 KB.
MAX_ENCODED = 2 * 1024 * 1024
# One dashboard once decompressed; the largest dashboards of grafana.com are about 1 MB.
MAX_DASHBOARD = 8 * 1024 * 1024
# A whole `dashboards` value, and how many templates one relation may send.
MAX_DATABAG = 16 * 1024 * 1024
MAX_TEMPLATES = 200
# Everything one call decompresses, over all relations: a bound on memory and time.
MAX_TOTAL = 64 * 1024 * 1024
MAX_TITLE = 1024
# What the LZMA decoder may allocate: its dictionary; COS's preset 6 needs 9 MiB, preset 9 65.
MAX_LZMA_MEMORY = 128 * 1024 * 1024

# A Grafana dashboard uid (pkg/util/shortid_generator.go IsValidShortUID, 40 at most).
_UID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_PATH40_UID = re.compile(r"[0-9a-f]{40}")
_JUJU_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclasses.dataclass(frozen=True)
class Dashboard:
    """One dashboard, validated and bound, ready to write as a provisioning file."""

    uid: str
    title: str
    version: int
    application: str
    relation_id: int
    # The provider's key of the template (`file:<name>`), for messages only.
    template: str
    file_name: str
    content: str = dataclasses.field(repr=False)


# The format


def encode(text: str) -> str:
    """Compress and encode dashboard JSON as COS does (cosl LZMABase64.compress)."""
    return base64.b64encode(lzma.compress(text.encode("utf-8"))).decode("ascii")


def decode(content: object, *, limit: int = MAX_DASHBOARD) -> str:
    """Return the text of an encoded template; raise ValueError on anything else.

    At most MAX_ENCODED characters are read and at most `limit` bytes are decompressed, so a
    small stream that inflates to gigabytes is refused without being inflated.
    """
    if not isinstance(content, str):
        raise ValueError("content is not a string")
    if len(content) > MAX_ENCODED:
        raise ValueError(f"content is longer than {MAX_ENCODED} characters")
    try:
        compressed = base64.b64decode(content.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError("content is not base64") from None
    # The stream's header sets the decoder's dictionary size: bound the memory it may take.
    decompressor = lzma.LZMADecompressor(memlimit=MAX_LZMA_MEMORY)
    try:
        data = decompressor.decompress(compressed, max_length=limit + 1)
    except lzma.LZMAError as e:
        raise ValueError(f"content is not LZMA data: {e}") from None
    if len(data) > limit:
        raise ValueError(f"content decompresses to more than {limit} bytes")
    if not decompressor.eof:
        raise ValueError("content is a truncated LZMA stream")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("content is not UTF-8") from None


def path40_uid(charm: str, path: str) -> str:
    """Return the uid COS gives a charm's dashboard file (cosl DashboardPath40UID.generate)."""
    return hashlib.shake_256(f"{charm}-{path}".encode()).hexdigest(20)


def alt_uid(charm: str, key: str) -> str:
    """Return a template's `dashboard_alt_uid` (CharmedDashboard._generate_alt_uid)."""
    return hashlib.shake_256(f"{charm}-{key}".encode()).hexdigest(8)


# Provider half


def templates_from_files(
    paths: Iterable[Path],
    *,
    charm: str,
    charm_dir: Path,
    topology: Mapping[str, str],
    inject_dropdowns: bool = True,
) -> dict[str, dict[str, Any]]:
    """Return the templates of dashboard files as COS's provider builds them.

    Raises:
        ValueError: a file is not a JSON object (a defect of the charm that ships it).
    """
    templates: dict[str, dict[str, Any]] = {}
    for path in paths:
        dashboard = json.loads(path.read_text())
        if not isinstance(dashboard, dict):
            raise ValueError(f"{path}: a dashboard must be a JSON object")
        if not _PATH40_UID.fullmatch(str(dashboard.get("uid", ""))):
            relative = path.relative_to(charm_dir) if path.is_absolute() else path
            dashboard["uid"] = path40_uid(charm, str(relative))
        tags = dashboard.get("tags")
        tags = list(tags) if isinstance(tags, list) else []
        if not any(isinstance(t, str) and t.startswith("charm: ") for t in tags):
            tags.append(f"charm: {charm}")
        dashboard["tags"] = tags
        key = f"file:{path.stem}"
        templates[key] = {
            "charm": charm,
            "content": encode(json.dumps(dashboard)),
            "juju_topology": dict(topology) if inject_dropdowns else {},
            "inject_dropdowns": inject_dropdowns,
            "dashboard_alt_uid": alt_uid(charm, key),
        }
    return templates


def app_data(templates: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Return the provider's application data for `templates` (stable for the same input)."""
    nonce = hashlib.shake_128(json.dumps(templates, sort_keys=True).encode()).digest(8).hex()
    return {"dashboards": json.dumps({"templates": templates, "uuid": nonce})}


def publish(
    charm: ops.CharmBase,
    directory: Path,
    *,
    inject_dropdowns: bool = True,
    relation_name: str = DEFAULT_RELATION_NAME,
) -> bool:
    """Send the directory's *.json dashboards to every related Grafana (leader).

    Returns True if a databag changed. The directory is read only when there is something to
    send: every hook of every unit calls this, update-status included.
    """
    relations = charm.model.relations[relation_name]
    if not relations or not charm.unit.is_leader():
        return False
    model = charm.model
    topology = {
        "model": model.name,
        "model_uuid": model.uuid,
        "application": model.app.name,
        "unit": model.unit.name,
    }
    templates = templates_from_files(
        sorted(directory.glob("*.json")),
        charm=charm.meta.name,
        charm_dir=charm.charm_dir,
        topology=topology,
        inject_dropdowns=inject_dropdowns,
    )
    wanted = app_data(templates)
    changed = False
    for relation in relations:
        changed |= relation_data.update(relation.data[charm.app], wanted)
    return changed


# Requirer half


class GrafanaDashboardRequirer(ops.Object):
    """The requirer half: every related application's dashboards, validated and bound."""

    def __init__(self, charm: ops.CharmBase, relation_name: str = DEFAULT_RELATION_NAME):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name
        self._errors: dict[int, list[dict[str, str]]] = {}

    def dashboards(self, datasources: Mapping[str, str]) -> list[Dashboard]:
        """Return the dashboards to provision, one per uid, sorted by file name.

        `datasources` maps the uid of each data source Grafana has to its type; references
        to them are kept, every other reference is bound to a data source variable.
        """
        found: list[Dashboard] = []
        budget = _Budget(MAX_TOTAL)
        self._errors = {}
        for relation in self._charm.model.relations[self._relation_name]:
            if relation.app is None:
                continue
            raw = relation.data[relation.app].get("dashboards")
            errors = self._errors.setdefault(relation.id, [])
            found.extend(
                from_app_data(
                    raw, relation.app.name, relation.id, datasources, budget=budget, errors=errors
                )
            )
        return resolve_duplicates(found)

    def publish_errors(self) -> bool:
        """Tell each provider which of its templates were refused (leader); True if changed.

        Call after `dashboards()`; the provider reads `valid` and `errors` as COS writes them.
        """
        model = self._charm.model
        if not model.unit.is_leader():
            return False
        changed = False
        for relation in model.relations[self._relation_name]:
            errors = self._errors.get(relation.id, [])
            event = {"errors": errors, "valid": not errors}
            wanted = {"event": json.dumps(event, sort_keys=True)}
            changed |= relation_data.update(relation.data[model.app], wanted)
        return changed


class _Budget:
    """How many decompressed bytes one call may still spend."""

    def __init__(self, total: int):
        self.left = total


def from_app_data(
    raw: str | None,
    application: str,
    relation_id: int,
    datasources: Mapping[str, str],
    *,
    budget: _Budget | None = None,
    errors: list[dict[str, str]] | None = None,
) -> list[Dashboard]:
    """Return the valid dashboards of one provider's `dashboards` value (never raises).

    Each refused template is logged and, when `errors` is given, appended to it as COS's
    `event` lists them: {"dashboard_id": <key>, "error": <reason>}.
    """
    budget = budget or _Budget(MAX_TOTAL)
    errors = errors if errors is not None else []
    try:
        templates = _templates(raw)
    except ValueError as e:
        logger.warning("grafana-dashboard: %s: dashboards ignored: %s", application, e)
        return []
    found = []
    for key, template in templates.items():
        try:
            found.append(_dashboard(key, template, application, relation_id, datasources, budget))
        except ValueError as e:
            logger.warning(
                "grafana-dashboard: %s: skipping %s: %s", application, status.show(key), e
            )
            errors.append({"dashboard_id": status.show(key, 100), "error": str(e)})
    return found


def resolve_duplicates(dashboards: Iterable[Dashboard]) -> list[Dashboard]:
    """Keep one dashboard per uid, as COS does: the highest (version, relation id, content)."""
    kept: dict[str, Dashboard] = {}
    for dashboard in dashboards:
        other = kept.get(dashboard.uid)
        if other is None or _rank(dashboard) > _rank(other):
            if other is not None:
                logger.warning(
                    "grafana-dashboard: uid %s sent twice, keeping %s's version %d",
                    dashboard.uid,
                    dashboard.application,
                    dashboard.version,
                )
            kept[dashboard.uid] = dashboard
    return sorted(kept.values(), key=lambda d: d.file_name)


def _rank(dashboard: Dashboard) -> tuple[int, int, str]:
    return (dashboard.version, dashboard.relation_id, dashboard.content)


def _templates(raw: str | None) -> dict[str, Any]:
    if not raw:
        raise ValueError("no dashboards published yet")
    if len(raw) > MAX_DATABAG:
        raise ValueError(f"longer than {MAX_DATABAG} characters")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValueError(f"not JSON: {status.show(raw)}") from None
    templates = data.get("templates") if isinstance(data, dict) else None
    if not isinstance(templates, dict):
        raise ValueError("no object of templates")
    if len(templates) > MAX_TEMPLATES:
        raise ValueError(f"more than {MAX_TEMPLATES} templates")
    return templates


def _dashboard(
    key: str,
    template: object,
    application: str,
    relation_id: int,
    datasources: Mapping[str, str],
    budget: _Budget,
) -> Dashboard:
    if not isinstance(template, dict):
        raise ValueError("template is not an object")
    if budget.left <= 0:
        raise ValueError(f"the dashboards of all relations exceed {MAX_TOTAL} bytes")
    text = decode(template.get("content"), limit=min(MAX_DASHBOARD, budget.left))
    budget.left -= len(text)
    try:
        dashboard = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("content is not JSON") from None
    if not isinstance(dashboard, dict):
        raise ValueError("content is not a JSON object")
    if not isinstance(dashboard.get("panels", []), list) or not isinstance(
        dashboard.get("rows", []), list
    ):
        raise ValueError("panels and rows must be lists")
    if "panels" not in dashboard and "rows" not in dashboard:
        raise ValueError("content is not a dashboard: it has neither panels nor rows")
    title = dashboard.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
        raise ValueError(f"the dashboard has no usable title: {status.show(title)}")
    uid = _uid(dashboard.get("uid"), template, key)
    dashboard["uid"] = uid
    # Read as COS reads it: any true JSON value asks for the dropdowns.
    bind(dashboard, datasources, inject_dropdowns=bool(template.get("inject_dropdowns", True)))
    return Dashboard(
        uid=uid,
        title=title,
        version=_version(dashboard.get("version")),
        application=application,
        relation_id=relation_id,
        template=key,
        file_name=f"juju_{application}_{uid}.json",
        content=json.dumps(dashboard),
    )


def _version(version: object) -> int:
    """Return the dashboard's version as COS reads it (int(version)), 0 when it has none."""
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    if isinstance(version, str) and re.fullmatch(r"-?[0-9]{1,18}", version.strip()):
        return int(version)
    return 0


def _uid(uid: object, template: Mapping[str, Any], key: str) -> str:
    """Return the dashboard's uid, or its template's alternative, or one derived as COS does."""
    if isinstance(uid, str) and _UID.fullmatch(uid):
        return uid
    alternative = template.get("dashboard_alt_uid")
    if isinstance(alternative, str) and _UID.fullmatch(alternative):
        return alternative
    charm = template.get("charm")
    return alt_uid(charm if isinstance(charm, str) else "", key)
