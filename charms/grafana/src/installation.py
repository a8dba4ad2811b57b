"""Which Grafana the unit installs: the attached grafana-deb, else a major from its repository.

The operator chooses the major with the grafana-version option. A higher major than the
installed one is an upgrade in place (apt; Grafana migrates its database forward when it next
starts: "You can upgrade to any of the supported releases from any supported release",
grafana.com/docs/grafana/latest/upgrade-guide/). A lower one is refused with a Blocked status:
Grafana's migrations are one-way ("Sometimes this can cause issues if you later want to
downgrade", its upgrade docs), and a Grafana on a database a newer one migrated may not start.
"""

from __future__ import annotations

import logging
from pathlib import Path

import ops
import ops.framework
from lab_monitoring import status

import config
import grafana
from grafana import apt_source

logger = logging.getLogger(__name__)

RESOURCE = "grafana-deb"


def ensure(
    model: ops.Model, stored: ops.framework.BoundStoredState, options: config.GrafanaConfig
) -> ops.StatusBase | None:
    """Install Grafana as the resource or the options say; None once it is, else why not.

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
        wanted = options.grafana_major
        installed = apt_source.installed_version()
        current = apt_source.major_of(installed)
        if installed and (current is None or current == wanted):
            # Also pins a Grafana installed before the option existed.
            apt_source.pin(wanted)
        elif current is not None and current > wanted:
            return ops.BlockedStatus(
                f"grafana-version: {options.grafana_version!r} would downgrade the installed "
                f"Grafana {installed}: set it to '{current}'"
            )
        else:  # not installed yet, or an older major: the operator asked for this one
            apt_source.install_from_repository(wanted)
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
