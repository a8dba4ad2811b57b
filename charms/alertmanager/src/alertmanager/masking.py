"""The secrets of an alertmanager.yml: masked for show-config, kept out of every message.

The rule, by the key that holds a value (any level of the file, case-insensitive):

- a key naming a secret: one containing `password`, `secret`, `token` or `credentials`, one
  that is `key` or ends in `_key` (api_key, service_key, routing_key, user_key,
  opsgenie_api_key, ...), and the keys that hold a URL with a token in it: `url` (webhooks),
  `webhook_url`, and `api_url` and every `*_api_url` (slack_api_url, ...). Its whole value is
  masked, a list or mapping under it included. Keys ending in `_file` are not secrets: they
  name a file that holds one (password_file, api_url_file, key_file, ...), and are shown.
- any other text that is a URL (`scheme://...`): its user and password (`user:pass@`) and its
  query string are masked, the rest shown (a proxy_url, say).

This covers every field Alertmanager 0.23 to 0.26 itself types as a secret (config.Secret and
config.SecretURL in config/config.go and config/notifiers.go: auth_password, auth_secret,
service_key, routing_key, api_key, api_secret, user_key, token, bot_token, slack's api_url,
webhook url, webhook_url, credentials, client_secret, password), and masks some public
endpoints besides (an opsgenie api_url, say): showing too little is the safe side.

A masked value reads `<secret>`, as Alertmanager's own API shows its secrets.

Messages from amtool or Alertmanager can quote the file (a URL that does not parse is quoted
whole, a YAML type error quotes the first characters of a value): `redact` replaces every
masked value in them before they reach a log, a status or an action result.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

MASK = "<secret>"
_SECRET_WORDS = ("password", "secret", "token", "credentials")
_SECRET_URL_KEYS = frozenset({"url", "webhook_url", "api_url"})
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_MIN_QUERY_SECRET = 4


def is_secret_key(key: object) -> bool:
    """Return True if the value under `key` is a secret (see the module docstring)."""
    name = str(key).lower()
    if name.endswith("_file"):
        return False
    return (
        any(word in name for word in _SECRET_WORDS)
        or name == "key"
        or name.endswith("_key")
        or name in _SECRET_URL_KEYS
        or name.endswith("_api_url")
    )


def mask(data: Any) -> tuple[Any, set[str]]:
    """Return `data` (parsed YAML) with its secrets masked, and the set of texts masked."""
    found: set[str] = set()
    return _mask(data, found), found


def secrets_of(text: str | None) -> set[str]:
    """Return the secret texts of an alertmanager.yml; an empty set if it does not parse."""
    import yaml

    if not text:
        return set()
    try:
        data = _load(text)
    except yaml.YAMLError:
        return set()
    return mask(data)[1]


def masked_yaml(text: str) -> str:
    """Return an alertmanager.yml with its secrets masked (comments are not kept).

    Raises:
        ValueError: it is not YAML; the message says where, without quoting the file.
    """
    import yaml

    try:
        data = _load(text)
    except yaml.YAMLError as e:
        raise ValueError(yaml_problem(e)) from None
    masked, _ = mask(data)
    return yaml.safe_dump(masked, sort_keys=False, allow_unicode=True, width=1000)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in `text` (as written, or quoted as Go and JSON quote it) by the mask.

    Also the form a YAML type error shows a value longer than ten characters in (its first
    seven, then `...`: gopkg.in/yaml.v2's decoder, terror()).
    """
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        forms.add(secret)
        forms.add(json.dumps(secret)[1:-1])
        if len(secret) > 10:
            forms.add(f"`{secret[:7]}...`")
    if not forms:
        return text
    # One pass, longest first: a mask just written is never searched again.
    pattern = re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))
    return pattern.sub(MASK, text)


def yaml_problem(error: Exception) -> str:
    """Say where and why YAML did not parse, without quoting the text (it may hold secrets)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or "not valid YAML"
    if mark is None:
        return str(problem)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"


def _mask(value: Any, found: set[str]) -> Any:
    if isinstance(value, dict):
        return {
            key: _hide(item, found) if is_secret_key(key) else _mask(item, found)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask(item, found) for item in value]
    if isinstance(value, str) and _URL.match(value):
        return _mask_url(value, found)
    return value


def _hide(value: Any, found: set[str]) -> Any:
    """Mask a secret key's whole value, each leaf of a list or mapping under it."""
    if isinstance(value, dict):
        return {key: _hide(item, found) for key, item in value.items()}
    if isinstance(value, list):
        return [_hide(item, found) for item in value]
    if value is None or value == "":
        return value
    found.add(str(value))
    return MASK


def _mask_url(url: str, found: set[str]) -> str:
    """Mask the user, password and query of a URL; keep the rest."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # an unbalanced [ in the host, say: nothing of it can be trusted
        found.add(url)
        return MASK
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at and not parts.query:
        return url
    found.add(url)
    if userinfo:
        found.update(filter(None, (userinfo, userinfo.partition(":")[2])))
    if parts.query:
        found.add(parts.query)
        # Each value on its own too (not the names); a value of a few characters is no secret,
        # and searching for it would garble every message.
        values = (value for _, value in urllib.parse.parse_qsl(parts.query))
        found.update(value for value in values if len(value) >= _MIN_QUERY_SECRET)
    netloc = f"{MASK}@{host}" if at else host
    query = MASK if parts.query else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _load(text: str) -> Any:
    """Parse YAML with the safe loader (libyaml's when PyYAML has it)."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
