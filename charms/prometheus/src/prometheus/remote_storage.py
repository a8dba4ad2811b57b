"""Where this Prometheus sends its samples: remote_write entries and the files they read.

The entries go into prometheus.yml; the password or token they name is in a file of its own.

No ops import: the charm reads the Juju secret and the relation, and passes plain values in.

Credentials never go into prometheus.yml: basic auth names a `password_file`, a bearer token
an `authorization.credentials_file` (both in Prometheus since before 2.31, jammy's; the
`authorization` section since 2.26). Prometheus reads these files on every request, so a new
password needs no reload.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from lab_monitoring import files

from prometheus import paths

# Added to every series sent upstream that does not carry it already, so that two units (or two
# Prometheus applications) scraping the same targets stay two series upstream.
REPLICA_LABEL = "prometheus_replica"
# Queue settings, all known to 2.31: the defaults Prometheus took on in 2.33 (2.31's are
# capacity 2500, max_samples_per_send 500, max_shards 200, max_backoff 100ms), which retry a
# receiver that is down every 5 s rather than ten times a second. A receiver that is down or
# answers 5xx is retried without end from the WAL, so nothing is lost while the WAL still
# holds the samples (about two hours: the head block's span). 429 (a store's rate limit) is
# retried too rather than dropped.
QUEUE = {
    "capacity": 10000,
    "max_shards": 50,
    "min_shards": 1,
    "max_samples_per_send": 2000,
    "batch_send_deadline": "5s",
    "min_backoff": "30ms",
    "max_backoff": "5s",
    "retry_on_http_429": True,
}
PASSWORD_FILE = "password"  # noqa: S105 (a file name)
TOKEN_FILE = "token"  # noqa: S105 (a file name)
# Characters a password or token may not hold: it goes into an HTTP header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Credentials(NamedTuple):
    """Basic auth (username and password) or a bearer token, for remote-write-urls."""

    username: str = ""
    password: str = ""
    token: str = ""


def parse_credentials(content: Mapping[str, str]) -> Credentials:
    """Return the credentials a secret holds: `username` and `password`, or `token`.

    Raises:
        ValueError: the keys do not make one of the two; the message names keys, never values.
    """
    keys = sorted(content)
    basic = set(keys) == {"username", "password"}
    if not basic and keys != ["token"]:
        raise ValueError(
            f"the secret must hold username and password, or token (it holds {', '.join(keys)})"
        )
    for key, value in content.items():
        # Prometheus trims what it reads from a password or token file: no spaces at the ends.
        if not value or _CONTROL.search(value) or value != value.strip():
            raise ValueError(
                f"the secret's {key} is empty, holds control characters or starts or ends"
                " with a space"
            )
    if basic and ":" in content["username"]:
        raise ValueError("the secret's username holds a colon, which basic auth cannot send")
    return Credentials(**content)


def entries(
    option_urls: Sequence[str],
    relation_urls: Sequence[str],
    *,
    credentials: Credentials | None,
    replica: str,
) -> list[dict[str, Any]]:
    """Return a remote_write entry for each URL: the option's with `credentials`, then the rest.

    A URL both in the option and from a relation is written once, with the credentials.
    """
    found = []
    for url in dict.fromkeys([*option_urls, *relation_urls]):
        entry: dict[str, Any] = {"url": url, "remote_timeout": "30s"}
        if credentials and url in option_urls:
            entry.update(_auth(credentials))
        entry["write_relabel_configs"] = [
            # Only where the label is missing: a regex matches the whole (here empty) value.
            {
                "source_labels": [REPLICA_LABEL],
                "regex": "",
                "target_label": REPLICA_LABEL,
                "replacement": replica,
            }
        ]
        entry["queue_config"] = dict(QUEUE)
        found.append(entry)
    return found


def write_credentials(credentials: Credentials | None) -> bool:
    """Write the password or token file the entries name; return True if anything changed.

    The file is root:prometheus 0640; the other one, and both without credentials, are removed.
    """
    directory = paths.PATHS.remote_write_dir
    wanted = {}
    if credentials and credentials.token:
        wanted[TOKEN_FILE] = credentials.token
    elif credentials:
        wanted[PASSWORD_FILE] = credentials.password
    changed = False
    for name in (PASSWORD_FILE, TOKEN_FILE):
        path = directory / name
        if name in wanted:
            changed |= files.write(path, wanted[name], mode=0o640, group=paths.GROUP)
        elif path.exists():
            path.unlink()
            changed = True
    return changed


def _auth(credentials: Credentials) -> dict[str, Any]:
    directory = paths.PATHS.remote_write_dir
    if credentials.token:
        return {
            "authorization": {"type": "Bearer", "credentials_file": str(directory / TOKEN_FILE)}
        }
    return {
        "basic_auth": {
            "username": credentials.username,
            "password_file": str(directory / PASSWORD_FILE),
        }
    }
