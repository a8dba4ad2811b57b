"""Validators shared by everything that turns options and relation data into Prometheus config.

Each returns the value it accepts (normalised where Prometheus would read it otherwise) or
raises InvalidError saying why, with the untrusted value shown short and escaped (`show`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from prometheus import yaml_writer

# https://prometheus.io/docs/prometheus/latest/configuration/configuration/#duration
# ASCII digits only: Python's \d also takes other scripts' digits, which Prometheus refuses.
_DURATION = re.compile(
    r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?"
    r"(?:([0-9]+)ms)?"
)
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
# Prometheus holds a duration in int64 nanoseconds (about 292 years) and refuses longer ones.
_MAX_DURATION_SECONDS = (2**63 - 1) / 1e9
# A label name is also a mapping key in the files, which YAML limits (yaml_writer).
LABEL_NAME = re.compile(rf"[a-zA-Z_][a-zA-Z0-9_]{{0,{yaml_writer.MAX_KEY_LENGTH - 3}}}")
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_DNS_LABEL}(?:\.{_DNS_LABEL})*\.?")
# A URL path as RFC 3986 allows it, minus `?` and `#` (a scrape path has no query here).
PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]{0,255}")
JUJU_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
UNIT_NAME = re.compile(r"[a-z][a-z0-9-]*/\d+")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TEXT_LIMIT = 1024


class InvalidError(ValueError):
    """A value from a config option or relation is not acceptable; the message says why."""


def duration_seconds(text: object) -> float:
    """Return the seconds in a Prometheus duration such as `1m30s`; raise InvalidError if none."""
    if text == "0":
        return 0.0
    match = _DURATION.fullmatch(text) if isinstance(text, str) and text else None
    if match is None:
        raise InvalidError(f"{show(text)} is not a duration")
    seconds = sum(
        int(n) * unit for n, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if n
    )
    if seconds > _MAX_DURATION_SECONDS:
        raise InvalidError(f"{show(text)} is longer than Prometheus allows (292y)")
    return seconds


def parse_external_labels(text: str) -> dict[str, str]:
    """Parse `key=value,key=value` into a dict; raise InvalidError naming the bad pair."""
    labels: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or "=" in value or not value:
            raise InvalidError(f"{show(pair)} is not key=value (try site=lab,env=dev)")
        if not LABEL_NAME.fullmatch(key) or key.startswith("__"):
            raise InvalidError(f"{show(key)} is not a label name (letters, digits and _)")
        if key in labels:
            raise InvalidError(f"{show(key)} is given twice")
        labels[key] = text_value(value, "label value")
    return labels


def labels(raw: object) -> dict[str, str]:
    """Validate remote labels: proper names (not __reserved or juju_*) and printable values."""
    if not isinstance(raw, dict):
        raise InvalidError("labels must be an object")
    clean = {}
    for key, value in raw.items():
        match(key, LABEL_NAME, "label name")
        if key.startswith("__") or key.startswith("juju_"):
            raise InvalidError(f"label name {show(key)} is reserved")
        clean[key] = text_value(value, f"label {key}")
    return clean


def target(value: object) -> str:
    """Validate a `host[:port]` target."""
    if not isinstance(value, str):
        raise InvalidError(f"target {show(value)} is not a string")
    if value.startswith("["):  # [IPv6]:port
        address, bracket, rest = value[1:].partition("]")
        if not bracket or ipaddress.ip_address(host(address).strip("[]")).version != 6:
            raise InvalidError(f"target {show(value)} is not [IPv6 address]:port")
        if rest:
            if not rest.startswith(":"):
                raise InvalidError(f"target {show(value)} is not host:port")
            port(rest[1:])
        return value
    if value.count(":") > 1:
        # Without brackets an IPv6 address and a port cannot be told apart (Go's
        # net.SplitHostPort refuses it at scrape time).
        raise InvalidError(
            f"target {show(value)} is not host:port (an IPv6 address needs brackets: [::1]:9100)"
        )
    address, sep, number = value.rpartition(":")
    if not sep:
        address = number
    host(address)
    if sep:
        port(number)
    return value


def host(value: object) -> str:
    """Return a hostname or IP address fit for a target (IPv6 in brackets)."""
    if not isinstance(value, str):
        raise InvalidError(f"address {show(value)} is not a string")
    # An IPv6 zone (fe80::1%eth0) names an interface of the remote machine, not of this one,
    # and Python accepts any text after the `%`.
    if "%" in value:
        raise InvalidError(f"address {show(value)} has an IPv6 zone, which is not routable here")
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME.fullmatch(value):
            raise InvalidError(f"address {show(value)} is not a hostname or IP") from None
        return value
    return f"[{ip}]" if ip.version == 6 else str(ip)


def port(value: object) -> int:
    """Return a TCP port number given as a number or as ASCII digits."""
    text = str(value)
    # isdigit() alone also takes "²" (which int() refuses) and other scripts' digits.
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise InvalidError(f"port {show(value)} is not a number from 1 to 65535")
    return int(text)


def is_match(value: object, pattern: re.Pattern[str]) -> bool:
    """Return True if `value` is a str that `pattern` matches whole."""
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def match(value: object, pattern: re.Pattern[str], what: str) -> str:
    """Return `value` if `pattern` matches it whole; raise InvalidError naming `what` if not."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidError(f"{what} {show(value)} is not valid")
    return value


def text_value(
    value: object, what: str, *, multiline: bool = False, limit: int = TEXT_LIMIT
) -> str:
    """Return `value` if it is non-empty printable text (newlines and tabs if `multiline`)."""
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidError(f"{what} must be text of 1 to {limit} characters, not {show(value)}")
    visible = value.replace("\n", "").replace("\t", "") if multiline else value
    if not visible.isprintable():
        raise InvalidError(f"{what} has control characters: {show(value)}")
    return value


def json_value(raw: str, what: str) -> Any:
    """Decode remote JSON; anything undecodable (even absurdly nested) is InvalidError."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidError(f"{what} is not JSON") from None


def unit_sort_key(unit_name: str) -> tuple[str, int]:
    """Sort units by application, then by number (app/10 after app/9)."""
    app, _, number = unit_name.rpartition("/")
    return (app, int(number) if number.isdigit() else -1)


def reason(error: Exception) -> str:
    """Say why remote data was refused, without echoing more than a short excerpt of it."""
    if isinstance(error, KeyError):
        return f"missing key {show(error.args[0])}"
    return str(error) if isinstance(error, InvalidError) else type(error).__name__


def show(value: object, limit: int = 60) -> str:
    """Render untrusted data for a message: quoted, escaped and cut short."""
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"
