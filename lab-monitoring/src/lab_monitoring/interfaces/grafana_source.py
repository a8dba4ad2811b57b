"""The `grafana-source` relation (interface `grafana_datasource`), both halves.

A provider (a Prometheus) tells a requirer (a Grafana) where its HTTP API is; the requirer
provisions one data source per provider unit. Two wire formats exist in the wild and this
library speaks both, so a charm using it works with Canonical's COS charms and with the legacy
`prometheus2` / `grafana` charms that labs still run.

COS format (the provider writes):
    app data  `grafana_source_data`: JSON {"model", "model_uuid", "application", "type",
              "extra_fields", "secure_extra_fields"} (leader only)
    unit data `grafana_source_host`: this unit's server URL (older COS charms write `host:port`)
    app data  `grafana_source_app_host`: one URL for the whole application (COS v1, whose
              providers publish this by default and often no unit URL at all)
    the requirer writes back app data `grafana_uid`, `datasource_uids` (JSON: unit -> uid),
    `app_datasource_uid` (the application-level data source's uid, absent when there is none)
    and `grafana_base_url` (where users reach Grafana, for links)

Legacy format (the provider writes unit data, plain strings):
    `type`, `url`, `description`; `username` and `password` only when both are set.

Provider use (in the charm's reconcile):

    from lab_monitoring.interfaces import grafana_source
    self.grafana_source = grafana_source.GrafanaSourceProvider(self)
    ...
    self.grafana_source.publish(f"http://{address}:{port}", description="Prometheus on ...")
    # Another type, with jsonData for the data source (an Alertmanager's implementation):
    self.grafana_source.publish(url, source_type="alertmanager",
                                extra_fields={"implementation": "prometheus"})

Requirer use:

    self.grafana_source = grafana_source.GrafanaSourceRequirer(self)
    ...
    sources = self.grafana_source.sources()      # validated, sorted, never raises on remote data
    self.grafana_source.publish_uids(grafana_uid, sources, base_url="http://10.0.0.7:3000/")

Relation data comes from another administrator's charm: every field is validated here, invalid
units are skipped with a logged warning, and nothing a remote charm writes can raise out of
`sources()`. COS `secure_extra_fields` are not used (secrets do not belong in relation data), and
only flat `extra_fields` with scalar values are passed on as jsonData.

Validated values may still contain `$`. Grafana expands `$VAR`, `${VAR}` and `$__file{...}` in
every string of a provisioning file, so a requirer that writes one must escape `$` as `$$`;
otherwise a remote charm could have Grafana read local files into a data source.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import logging
import math
import re
import urllib.parse
from collections.abc import Mapping

import ops

from lab_monitoring import relation_data, status

logger = logging.getLogger(__name__)

DEFAULT_RELATION_NAME = "grafana-source"

MAX_URL_LENGTH = 2048
MAX_TEXT_LENGTH = 256
MAX_EXTRA_FIELDS = 32
# Grafana limits a data source uid to 40 characters of [a-zA-Z0-9_-].
MAX_UID_LENGTH = 40

# Grafana plugin ids: "prometheus", "loki", "grafana-pyroscope-datasource", ...
_TYPE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
# Juju model and application names: lowercase letters, digits and single hyphens.
_JUJU_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# A DNS name: dot-separated labels of letters, digits, hyphens (and `_`, which labs do use).
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?")
# Printable ASCII without space: what a URL may contain once percent-encoded.
_URL_CHARS = re.compile(r"[\x21-\x7e]+")


@dataclasses.dataclass(frozen=True)
class DataSource:
    """One provider server, validated and ready to provision in Grafana.

    Usually one provider unit's server; `unit` is "" for the application-level data source a
    COS v1 provider publishes (one URL for the whole application).
    """

    uid: str
    name: str
    type: str
    url: str
    unit: str
    application: str
    model: str
    relation_id: int
    wire_format: str
    description: str = ""
    basic_auth_user: str | None = None
    basic_auth_password: str | None = dataclasses.field(default=None, repr=False)
    json_data: Mapping[str, str | int | float | bool] = dataclasses.field(default_factory=dict)


def validate_url(url: object) -> str:
    """Return `url` if it is a plain http(s) URL with a host; raise ValueError otherwise."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"url must be a non-empty string, got {status.show(url)}")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"url is longer than {MAX_URL_LENGTH} characters")
    if not _URL_CHARS.fullmatch(url):
        raise ValueError(
            f"url has whitespace, control or non-ASCII characters: {status.show(url)}"
        )
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"url must start with http:// or https://, got {status.show(url)}")
    try:
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        raise ValueError(f"url has an invalid port: {status.show(url)}") from None
    if not parts.hostname or port == 0:
        raise ValueError(f"url has no host or a zero port: {status.show(url)}")
    if not _is_host(parts.hostname):
        raise ValueError(f"url host is neither a DNS name nor an IP address: {status.show(url)}")
    if parts.username is not None:
        # Not shown: what is before the `@` may be a password.
        raise ValueError(f"url must not carry credentials (user:password@): host {parts.hostname}")
    if parts.query or parts.fragment:
        # Not shown either: a query such as ?token=... may hold a secret.
        raise ValueError(f"url must not carry a query or a fragment: host {parts.hostname}")
    return url


def _is_host(host: str) -> bool:
    if len(host) <= 253 and _HOSTNAME.fullmatch(host):
        return True
    if "%" in host:
        # An IPv6 zone (fe80::1%eth0) names an interface of the sender's machine, not of this one.
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def datasource_uid(model: str, application: str, unit_number: int) -> str:
    """Return the Grafana data source uid of a provider unit.

    It depends only on the unit's model, application and number, so it survives leader changes,
    charm upgrades and Grafana redeploys. Juju names never contain `_`, so the readable form
    `model_application_N` is unambiguous; names too long for Grafana's 40 characters are hashed.
    """
    return _uid(model, application, str(unit_number))


def app_datasource_uid(model: str, application: str) -> str:
    """Return the Grafana data source uid of a provider's application-level data source.

    `model_application` never equals a unit's `model_application_N` (Juju names have no `_`),
    and the hashed forms hash different text.
    """
    return _uid(model, application)


def _uid(*parts: str) -> str:
    readable = "_".join(parts)
    if len(readable) <= MAX_UID_LENGTH:
        return readable
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return f"juju-{digest[: MAX_UID_LENGTH - 5]}"


class GrafanaSourceProvider(ops.Object):
    """The provider half: publish this unit's server to every related Grafana."""

    def __init__(self, charm: ops.CharmBase, relation_name: str = DEFAULT_RELATION_NAME):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name

    def publish(
        self,
        url: str,
        *,
        source_type: str = "prometheus",
        description: str = "",
        extra_fields: Mapping[str, str | int | float | bool] | None = None,
    ) -> bool:
        """Write both wire formats to every relation; return True if any databag changed.

        `extra_fields` go to the COS format's `extra_fields`, which a requirer passes on as the
        data source's jsonData (an Alertmanager needs `implementation`, say); the legacy format
        has no place for them. They must be what a requirer keeps: at most 32 flat fields named
        like Grafana's jsonData keys, each a short printable text, a number or a bool.

        Raises:
            ValueError: `url`, `source_type`, `description` or `extra_fields` is invalid (a bug
                in the caller).
        """
        validate_url(url)
        if not _TYPE.fullmatch(source_type):
            raise ValueError(f"source type {source_type!r} is not a Grafana plugin id")
        _check_text("description", description)
        extra = dict(extra_fields or {})
        if len(extra) > MAX_EXTRA_FIELDS:
            raise ValueError(f"more than {MAX_EXTRA_FIELDS} extra fields")
        for key, value in extra.items():
            if not _FIELD_NAME.fullmatch(key) or not _is_scalar(value):
                raise ValueError(f"extra field {key!r}: {value!r} is not a flat jsonData field")
        model = self._charm.model
        unit_data = {
            "grafana_source_host": url,
            "type": source_type,
            "url": url,
            "description": description,
        }
        app_data = {
            "grafana_source_data": json.dumps(
                {
                    "model": model.name,
                    "model_uuid": model.uuid,
                    "application": model.app.name,
                    "type": source_type,
                    "extra_fields": extra,
                    "secure_extra_fields": {},
                },
                sort_keys=True,
            )
        }
        changed = False
        for relation in model.relations[self._relation_name]:
            changed |= relation_data.update(relation.data[model.unit], unit_data)
            if model.unit.is_leader():
                changed |= relation_data.update(relation.data[model.app], app_data)
        return changed


class GrafanaSourceRequirer(ops.Object):
    """The requirer half: read every provider unit's data source, validated."""

    def __init__(self, charm: ops.CharmBase, relation_name: str = DEFAULT_RELATION_NAME):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name

    def sources(self) -> list[DataSource]:
        """Return every valid data source, in a stable order.

        One per provider unit, plus one for the application when a COS v1 provider publishes
        `grafana_source_app_host` (it comes first among its application's). COS keys are
        preferred; legacy keys are the fallback. A unit whose data is missing or invalid is
        skipped with a warning (it may simply not have written its data yet), except the
        empty units of a provider that publishes only its application's URL.
        """
        found: list[DataSource] = []
        for relation in self._charm.model.relations[self._relation_name]:
            if relation.app is None:
                continue
            app_data = relation.data[relation.app]
            cos_app = _parse_cos_app_data(app_data.get("grafana_source_data"))
            app_source = None
            app_host = app_data.get("grafana_source_app_host")
            if cos_app is not None and app_host:
                try:
                    app_source = self._app_source(relation, app_host, cos_app)
                    found.append(app_source)
                except ValueError as e:
                    logger.warning("grafana-source: ignoring %s: %s", relation.app.name, e)
            for unit in relation.units:
                data = relation.data[unit]
                if app_source and not data.get("grafana_source_host") and "type" not in data:
                    continue  # COS v1 application mode: units publish no URL of their own.
                try:
                    found.append(self._source(relation, unit, cos_app))
                except ValueError as e:
                    logger.warning("grafana-source: ignoring %s: %s", unit.name, e)
        return sorted(found, key=lambda s: (s.model, s.application, _unit_number(s.unit)))

    def publish_uids(
        self, grafana_uid: str, sources: list[DataSource], *, base_url: str | None = None
    ) -> bool:
        """Tell each provider its data sources' uids (and Grafana's URL); True if anything changed.

        Only the leader may write application data; on other units this does nothing.
        """
        model = self._charm.model
        if not model.unit.is_leader():
            return False
        changed = False
        for relation in model.relations[self._relation_name]:
            mine = [s for s in sources if s.relation_id == relation.id]
            uids = {s.unit: s.uid for s in mine if s.unit}
            wanted = {
                "grafana_uid": grafana_uid,
                "datasource_uids": json.dumps(uids, sort_keys=True),
            }
            if base_url is not None:
                wanted["grafana_base_url"] = base_url
            app_uid = next((s.uid for s in mine if not s.unit), None)
            if app_uid is not None:
                wanted["app_datasource_uid"] = app_uid
            # Without one, an earlier app_datasource_uid goes: the provider stopped publishing.
            changed |= relation_data.update(
                relation.data[model.app], wanted, owned=("app_datasource_uid",)
            )
        return changed

    def _app_source(
        self, relation: ops.Relation, host: str, cos_app: Mapping[str, object]
    ) -> DataSource:
        application = relation.app.name if relation.app else ""
        model = str(cos_app["model"])
        return DataSource(
            uid=app_datasource_uid(model, application),
            name=f"{model}/{application}",
            type=str(cos_app["type"]),
            url=validate_url(host if "://" in host else f"http://{host}"),
            unit="",
            application=application,
            model=model,
            relation_id=relation.id,
            wire_format="cos",
            json_data=_extra_fields(cos_app.get("extra_fields"), application),
        )

    def _source(
        self, relation: ops.Relation, unit: ops.Unit, cos_app: Mapping[str, object] | None
    ) -> DataSource:
        data = relation.data[unit]
        application = relation.app.name if relation.app else unit.app.name
        number = _unit_number(unit.name)
        host = data.get("grafana_source_host")
        if cos_app is not None and host:
            model = str(cos_app["model"])
            url = validate_url(host if "://" in host else f"http://{host}")
            return DataSource(
                uid=datasource_uid(model, application, number),
                name=f"{model}/{unit.name}",
                type=str(cos_app["type"]),
                url=url,
                unit=unit.name,
                application=application,
                model=model,
                relation_id=relation.id,
                wire_format="cos",
                json_data=_extra_fields(cos_app.get("extra_fields"), unit.name),
            )
        if "type" not in data:
            raise ValueError("no data source published yet (neither COS nor legacy keys)")
        source_type = data["type"]
        if not _TYPE.fullmatch(source_type):
            raise ValueError(f"type {status.show(source_type)} is not a Grafana plugin id")
        user, password = data.get("username"), data.get("password")
        if (user is None) != (password is None):
            raise ValueError("legacy username and password must be set together")
        if user is not None:
            _check_text("username", user)
            _check_text("password", password, show=False)
        description = data.get("description", "")
        _check_text("description", description)
        model = self._charm.model.name
        return DataSource(
            uid=datasource_uid(model, application, number),
            name=f"{model}/{unit.name}",
            type=source_type,
            url=validate_url(data.get("url", "")),
            unit=unit.name,
            application=application,
            model=model,
            relation_id=relation.id,
            wire_format="legacy",
            description=description,
            basic_auth_user=user,
            basic_auth_password=password,
        )


def _parse_cos_app_data(raw: str | None) -> dict[str, object] | None:
    """Return the COS `grafana_source_data` if present and valid, else None (with a warning)."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # deeply nested JSON exhausts the parser's stack
        logger.warning("grafana-source: grafana_source_data is not JSON: %s", status.show(raw))
        return None
    if not isinstance(data, dict):
        logger.warning(
            "grafana-source: grafana_source_data is not an object: %s", status.show(raw)
        )
        return None
    model, source_type = data.get("model"), data.get("type")
    if not isinstance(model, str) or not _JUJU_NAME.fullmatch(model) or len(model) > 63:
        logger.warning("grafana-source: bad model in grafana_source_data: %s", status.show(model))
        return None
    if not isinstance(source_type, str) or not _TYPE.fullmatch(source_type):
        logger.warning(
            "grafana-source: bad type in grafana_source_data: %s", status.show(source_type)
        )
        return None
    return data


def _extra_fields(raw: object, unit: str) -> dict[str, str | int | float | bool]:
    """Keep the flat, scalar, well-named COS extra_fields; drop the rest with a warning."""
    if raw is None or raw == {}:
        return {}
    if not isinstance(raw, dict):
        logger.warning("grafana-source: %s: extra_fields is not an object, ignored", unit)
        return {}
    kept: dict[str, str | int | float | bool] = {}
    for key, value in raw.items():
        if _FIELD_NAME.fullmatch(str(key)) and _is_scalar(value) and len(kept) < MAX_EXTRA_FIELDS:
            kept[key] = value
        else:
            logger.warning("grafana-source: %s: extra field %s ignored", unit, status.show(key))
    return kept


def _is_scalar(value: object) -> bool:
    """Return True for a value jsonData can hold safely: short text, a number or a bool."""
    if isinstance(value, str):
        return len(value) <= MAX_TEXT_LENGTH and value.isprintable()
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (bool, int))


def _check_text(field: str, value: object, *, show: bool = True) -> None:
    """Raise ValueError unless `value` is a short single line of printable text."""
    if not isinstance(value, str) or len(value) > MAX_TEXT_LENGTH or not value.isprintable():
        shown = status.show(value) if show else "(hidden)"
        raise ValueError(f"{field} must be printable text of at most {MAX_TEXT_LENGTH}: {shown}")


def _unit_number(unit_name: str) -> int:
    """Return the number of a unit name; -1 for "" (an application-level data source)."""
    return int(unit_name.rsplit("/", 1)[1]) if unit_name else -1
