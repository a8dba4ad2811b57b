"""Grafana on the Charmhub PostgreSQL charm: two units share one database, then it is removed.

What the functional tier cannot show, since no Grafana binary runs there: a real Grafana reads
the grafana.ini `[database]` the charm writes, migrates the schema, and a second unit serves
what the first one stored. Needs a Juju controller (skipped without one, see conftest.py) and
Charmhub access for `postgresql` 16/stable. The test puts the bundle back as it found it.
"""

import base64
import json
import urllib.request

import jubilant

POSTGRESQL = "postgresql"


def units(juju: jubilant.Juju) -> list[str]:
    return sorted(juju.status().apps["grafana"].units, key=lambda u: int(u.rsplit("/", 1)[1]))


def grafana_ini(juju: jubilant.Juju, unit: str) -> str:
    return juju.ssh(unit, "sudo cat /etc/grafana/grafana.ini")


def admin(juju: jubilant.Juju) -> tuple[str, str]:
    task = juju.run("grafana/leader", "get-admin-password")
    return task.results["username"], task.results["admin-password"]


def api(juju: jubilant.Juju, unit: str, path: str, body: dict | None = None) -> dict:
    address = juju.status().apps["grafana"].units[unit].public_address
    user, password = admin(juju)
    request = urllib.request.Request(
        f"http://{address}:3000{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def settled(juju: jubilant.Juju) -> None:
    juju.wait(
        lambda s: jubilant.all_active(s) and jubilant.all_agents_idle(s), error=jubilant.any_error
    )


def test_two_units_share_the_related_postgresql(juju: jubilant.Juju):
    juju.deploy(POSTGRESQL, channel="16/stable")
    try:
        juju.integrate("grafana:database", f"{POSTGRESQL}:database")
        settled(juju)
        first = units(juju)[0]
        assert "type = postgres" in grafana_ini(juju, first)
        assert "secret_key = $__file{/etc/grafana/secret-key}" in grafana_ini(juju, first)

        juju.add_unit("grafana")
        settled(juju)
        first, second = units(juju)[:2]
        ini = grafana_ini(juju, second)
        assert "type = postgres" in ini
        assert ":9095" in ini
        assert ":9094" not in ini

        # What one unit stores, the other serves: the database is shared.
        dashboard = {"dashboard": {"title": "shared-by-postgresql", "panels": []}}
        created = api(juju, first, "/api/dashboards/db", dashboard)
        seen = api(juju, second, f"/api/dashboards/uid/{created['uid']}")
        assert seen["dashboard"]["title"] == "shared-by-postgresql"

        # The relation removed: blocked, not an empty sqlite.
        juju.remove_relation("grafana:database", f"{POSTGRESQL}:database")
        juju.wait(
            lambda s: jubilant.all_blocked(s, "grafana") and jubilant.all_agents_idle(s),
            error=jubilant.any_error,
        )
        message = juju.status().apps["grafana"].units[first].workload_status.message
        assert message.startswith("database relation removed")
        juju.run("grafana/leader", "confirm-database-switch")
        settled(juju)
        assert "type = postgres" not in grafana_ini(juju, first)
    finally:
        for unit in units(juju)[1:]:
            juju.remove_unit(unit)
        juju.remove_application(POSTGRESQL, destroy_storage=True, force=True)
        juju.wait(
            lambda s: POSTGRESQL not in s.apps and jubilant.all_agents_idle(s),
            error=jubilant.any_error,
        )
        if jubilant.any_blocked(juju.status(), "grafana"):  # the relation went with it
            juju.run("grafana/leader", "confirm-database-switch")
        settled(juju)
