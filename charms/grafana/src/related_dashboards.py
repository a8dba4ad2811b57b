"""The dashboards related charms send over `grafana-dashboard`, ready to provision as files.

Reading, validating and binding them is lab_monitoring's grafana_dashboard (COS's format, with
its size limits and its duplicate rule); this adds what only this charm knows: the data
sources it provisions and the dashboards it ships itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from lab_monitoring.interfaces import grafana_dashboard, grafana_source

from grafana import provisioning

logger = logging.getLogger(__name__)


def collect(
    requirer: grafana_dashboard.GrafanaDashboardRequirer,
    sources: Sequence[grafana_source.DataSource],
    shipped: Path,
) -> dict[str, str]:
    """Return file name -> dashboard JSON of every usable related dashboard.

    Data source references are bound to `sources` (their uids and types); refused templates
    are logged and reported back to their senders (leader only, in COS's `event` field). A
    dashboard with the uid of one in `shipped` is left out: Grafana would keep only one of
    them, and which one would depend on the order it reads the files in.
    """
    found = requirer.dashboards({source.uid: source.type for source in sources})
    requirer.publish_errors()
    ours = provisioning.shipped_uids(shipped)
    wanted = {}
    for dashboard in found:
        if dashboard.uid in ours:
            logger.warning(
                "grafana-dashboard: %s: skipping %s: uid %s is a dashboard this charm ships",
                dashboard.application,
                dashboard.template,
                dashboard.uid,
            )
            continue
        wanted[dashboard.file_name] = dashboard.content
    return wanted
