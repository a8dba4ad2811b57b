"""Which Grafana the unit installs: the attached grafana-deb file, else Grafana's repository."""

from __future__ import annotations

import logging
from pathlib import Path

import ops
import ops.framework
from lab_monitoring import status

import grafana
from grafana import apt_source

logger = logging.getLogger(__name__)

RESOURCE = "grafana-deb"


def ensure(model: ops.Model, stored: ops.framework.BoundStoredState) -> ops.StatusBase | None:
    """Install Grafana from the resource or the repository; None once it is, else why not.

    `stored` is the charm's StoredState: `deb_sha256` remembers the resource last installed.
    """
    deb = deb_resource(model)
    try:
        if deb is not None:
            digest = apt_source.sha256(deb)
            if digest != stored.deb_sha256 or not apt_source.installed():
                apt_source.install_from_file(deb)
                stored.deb_sha256 = digest
            return None
        if not apt_source.installed():
            apt_source.install_from_repository()
    except apt_source.KeyMismatchError as e:
        return ops.BlockedStatus(str(e))
    except grafana.GrafanaError as e:
        # Usually the network or a mirror; update-status tries again.
        logger.error("installing grafana failed: %s", e)
        return ops.BlockedStatus(status.one_line(f"install failed, retrying: {e}"))
    return None


def deb_resource(model: ops.Model) -> Path | None:
    """Return the attached grafana-deb file, or None if none (or an empty one) is.

    ops raises NameError for a resource charmcraft.yaml does not declare and ModelError when
    none is attached; Juju gives an empty file for a 0-byte upload (GRAFANA-FACTS item 10).
    """
    try:
        path = model.resources.fetch(RESOURCE)
    except (ops.ModelError, NameError):
        return None
    return path if path.stat().st_size > 0 else None
