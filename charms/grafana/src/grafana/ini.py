"""grafana.ini, and the admin password file it names.

Both are root's and readable by group grafana only (mode 0640): grafana-server runs as user
grafana and reads them itself, and the password file is a secret.
"""

from __future__ import annotations

from collections.abc import Sequence

from lab_monitoring import files

from grafana import paths


def render_config(
    *,
    port: int,
    admin_user: str,
    allow_anonymous_access: bool,
    anonymous_role: str,
    root_url: str,
    log_level: str,
    secret_key: bool = False,
    database: str = "",
    ha_advertise: str = "",
    ha_peers: Sequence[str] = (),
) -> str:
    """Return grafana.ini for already validated settings.

    Keys are those of Grafana's conf/defaults.ini. The paths are spelt out (the packaged
    systemd unit passes them on the command line) so that `grafana cli`, which only reads this
    file, works on the same database as the server.

    `secret_key`: name the application's key file in [security] secret_key (read by
    pkg/setting/setting.go readSecuritySettings; without it Grafana uses defaults.ini's public
    SW2YcwTIb9zpOOhoPsMm). `database`: a `[database]` section (grafana.database.render_section);
    empty for Grafana's own sqlite. `ha_peers`: every unit's HA_PORT address, for
    [unified_alerting] (pkg/setting/setting_unified_alerting.go: ha_listen_address defaults to
    0.0.0.0:9094, Alertmanager's cluster port, so it is always moved when peers are given).
    """
    where = paths.PATHS
    root = f"root_url = {root_url}\n" if root_url else ""
    anonymous = "true" if allow_anonymous_access else "false"
    return (
        "# Written by the grafana charm; edits are overwritten. Use `juju config grafana`.\n"
        "[paths]\n"
        f"data = {where.data}\n"
        f"logs = {where.logs}\n"
        f"plugins = {where.plugins}\n"
        f"provisioning = {where.provisioning}\n"
        "\n[server]\n"
        f"http_port = {port}\n"
        f"{root}"
        "\n[security]\n"
        f"admin_user = {admin_user}\n"
        # Read when Grafana creates its database, so the first administrator is never
        # admin/admin; later changes go through cli.set_admin_password.
        f"admin_password = $__file{{{where.admin_password}}}\n"
        + (f"secret_key = $__file{{{where.secret_key}}}\n" if secret_key else "")
        + database
        + _unified_alerting(ha_advertise, ha_peers)
        + "\n[auth.anonymous]\n"
        f"enabled = {anonymous}\n"
        f"org_role = {anonymous_role}\n"
        "\n[log]\n"
        f"level = {log_level}\n"
        "\n[analytics]\n"
        "reporting_enabled = false\n"
        "check_for_updates = false\n"
        "check_for_plugin_updates = false\n"
    )


def write_config(text: str) -> bool:
    """Install grafana.ini (root:grafana 0640); return True if it changed."""
    return files.write(paths.PATHS.config, text, mode=0o640, group=paths.PATHS.group)


def write_admin_password(password: str) -> bool:
    """Install the admin password file grafana.ini names (root:grafana 0640); True if changed.

    Grafana runs as user grafana and reads the file itself, so group grafana must read it;
    nobody else may. Exactly the password: Grafana's file expander trims whitespace anyway.
    """
    return files.write(paths.PATHS.admin_password, password, mode=0o640, group=paths.PATHS.group)


# Grafana-managed alerting's gossip port: not Alertmanager's 9094, which a Prometheus-lab machine
# may run next to Grafana (the alertmanager charm's cluster port).
HA_PORT = 9095


def _unified_alerting(advertise: str, peers: Sequence[str]) -> str:
    if not peers:
        return ""  # Grafana forms no cluster without ha_peers (one unit, or sqlite)
    return (
        "\n[unified_alerting]\n"
        f"ha_listen_address = 0.0.0.0:{HA_PORT}\n"
        f"ha_advertise_address = {advertise}\n"
        f"ha_peers = {','.join(peers)}\n"
    )


def write_secret_key(key: str) -> bool:
    """Install the [security] secret_key file (root:grafana 0640); True if it changed."""
    return files.write(paths.PATHS.secret_key, key, mode=0o640, group=paths.PATHS.group)
