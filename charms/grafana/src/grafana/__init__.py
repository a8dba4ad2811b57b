"""Grafana OSS on this machine, one module per thing the charm touches; no Juju here.

    paths         every file and directory location (PATHS, which tests point elsewhere)
    apt_source    Grafana's APT repository, its signing key, the version pin; installing
    ini           grafana.ini and the admin password file it names
    provisioning  the data source and dashboard provisioning files
    service       grafana-server: start, health, stop, why it died
    cli           the admin password, set through `grafana cli`
    api           the few HTTP API calls the charm makes (on loopback)

None of them imports ops, so each is tested on its own (tests/functional, tests/machine).
Every write compares first and reports whether anything changed: the charm restarts Grafana
only when grafana.ini changed and otherwise asks it to re-read its provisioning files.
"""

PACKAGE = "grafana"
SERVICE = "grafana-server"
# The user the packaged unit runs grafana-server as (packaging/deb/control/postinst creates it).
USER = "grafana"


class GrafanaError(Exception):
    """Grafana could not be installed, configured or reached; the message says why."""
