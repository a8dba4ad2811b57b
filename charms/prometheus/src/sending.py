"""Where this Prometheus remote-writes: the send-remote-write relation and the options.

The Juju side of prometheus/remote_storage.py: it reads the receivers' URLs from the relation
(lab_monitoring's remote_write parses them) and the credentials for remote-write-urls from the
Juju secret the operator granted, and says why the option's URLs are left out when that secret
cannot be used. Alert rules stay here: nothing is written to the relation (see
docs/scale-out.md).
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import ops
from lab_monitoring import status
from lab_monitoring.interfaces import remote_write

import config
from prometheus import remote_storage

logger = logging.getLogger(__name__)


class Plan(NamedTuple):
    """The remote_write entries for prometheus.yml, and what they need."""

    entries: list[dict[str, Any]]
    # For the files the entries name; None when no URL of the option is sent with credentials.
    credentials: remote_storage.Credentials | None
    # Why remote-write-urls are not sent to, for the status; "" when they are (or there are none).
    problem: str


def plan(charm: ops.CharmBase, options: config.PrometheusConfig) -> Plan:
    """Return where to send samples: the option's URLs (with credentials) and the relation's."""
    option_urls = options.write_urls
    credentials = None
    problem = ""
    if options.remote_write_credentials and option_urls:
        try:
            credentials = read_credentials(charm.model, options.remote_write_credentials)
        except ValueError as e:
            problem = status.one_line(f"{e}; not sending to remote-write-urls")
            logger.error("remote-write-urls left out: %s", e)
            option_urls = []
    entries = remote_storage.entries(
        option_urls,
        remote_write.endpoints(charm),
        credentials=credentials,
        replica=f"{charm.model.name}/{charm.unit.name}",
    )
    return Plan(entries, credentials, problem)


def read_credentials(model: ops.Model, secret_id: str) -> remote_storage.Credentials:
    """Return the credentials in the user secret `secret_id`, its latest revision.

    Raises:
        ValueError: the secret is missing, not granted to this application (or revoked), or
            does not hold credentials; the message names the option and never a value.
    """
    option = f"remote-write-credentials: secret {secret_id}"
    try:
        content = model.get_secret(id=secret_id).get_content(refresh=True)
    except ops.SecretNotFoundError:
        raise ValueError(
            f"{option} not found or not granted (juju grant-secret <name> {model.app.name})"
        ) from None
    except ops.ModelError as e:
        # Juju says "permission denied" when the grant was revoked; its words name no value.
        raise ValueError(f"{option} cannot be read: {status.one_line(str(e), 80)}") from None
    try:
        return remote_storage.parse_credentials(content)
    except ValueError as e:
        raise ValueError(f"{option}: {e}") from None
