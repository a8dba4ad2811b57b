"""Words for status lines and log lines: short, on one line, and showing untrusted text safely."""

from __future__ import annotations

import json

# Juju shows a status message on one line; a long one is cut.
STATUS_LIMIT = 200


def one_line(text: str, limit: int = STATUS_LIMIT) -> str:
    """Squeeze `text` onto one line of at most `limit` characters ("..." where it is cut)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else f"{line[: limit - 3]}..."


def quote(value: str) -> str:
    """Quote a config value the way the operator would type it (JSON string rules)."""
    return json.dumps(value)


def show(value: object, limit: int = 60) -> str:
    """Render untrusted data (relation data, a remote file) for a message: escaped, cut short.

    A string is shown as a JSON string, anything else by repr; past `limit` characters the rest
    is left out and counted, so a hostile value cannot flood a log line or a status.
    """
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"
