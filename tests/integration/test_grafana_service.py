"""A real grafana-server that cannot start: the unit says why, and recovers once it can.

The unit and machine tiers read Grafana's failure from log lines quoted from its source; here a
real Grafana from the .deb meets a port another program already holds on its machine.
"""

import time

import jubilant

HOLDER = "juju-test-port-holder"


def grafana_unit(status: jubilant.Status) -> str:
    units = status.apps["grafana"].units
    return min(units, key=lambda unit: int(unit.rsplit("/", 1)[1]))


def message(juju: jubilant.Juju, unit: str) -> str:
    return juju.status().apps["grafana"].units[unit].workload_status.message


def test_a_port_already_in_use_blocks_with_grafanas_reason(juju: jubilant.Juju):
    unit = grafana_unit(juju.status())
    port = 3005
    # Another program on the machine holds the port: a transient systemd unit, so it outlives
    # this ssh session (python3 is on every Ubuntu image; it binds every address).
    juju.ssh(
        unit, f"sudo systemd-run --unit={HOLDER} python3 -m http.server {port} --directory /tmp"
    )
    try:
        juju.config("grafana", {"port": port})
        juju.wait(
            lambda s: jubilant.all_blocked(s, "grafana") and jubilant.all_agents_idle(s),
            error=jubilant.any_error,
        )
        assert message(juju, unit) == f"grafana cannot listen on :{port}: address already in use"

        # update-status (every five minutes by default; sooner here) leaves it Blocked with the
        # cause: the charm does not start it again with the same grafana.ini for an hour.
        juju.cli("model-config", "update-status-hook-interval=10s")
        try:
            time.sleep(40)
        finally:
            juju.cli("model-config", "--reset", "update-status-hook-interval")
        assert message(juju, unit) == f"grafana cannot listen on :{port}: address already in use"
    finally:
        juju.ssh(unit, f"sudo systemctl stop {HOLDER}")
        juju.config("grafana", reset="port")

    # A new grafana.ini (the port back to its default) is tried at once.
    juju.wait(
        lambda s: jubilant.all_active(s) and jubilant.all_agents_idle(s),
        error=jubilant.any_error,
    )
    assert message(juju, unit).startswith("serving on :3000")
