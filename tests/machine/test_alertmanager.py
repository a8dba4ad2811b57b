"""The Alertmanager charm on a real systemd machine: the real package, unit, files and service.

Nothing is patched: the install hook runs apt-get, the service is the packaged
prometheus-alertmanager.service, files land in /etc/prometheus and /etc/default, and the tests
look at what a user would (`systemctl`, the journal, the HTTP API on 127.0.0.1, which the
machine shares with the host).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest
from juju import Status, Unit
from machine import Machine, port_taken, wait_for

SERVICE = "prometheus-alertmanager"
CONFIG = "/etc/prometheus/alertmanager.yml"
DEFAULTS = "/etc/default/prometheus-alertmanager"
SECRET_URL = "http://127.0.0.1:9/hook/machine-secret-token"
WEBHOOK = f"""\
route:
  receiver: hook
  group_by: [alertname]
receivers:
  - name: hook
    webhook_configs:
      - url: {SECRET_URL}
"""


def api(path: str, port: int = 9093) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        body = response.read()
    return json.loads(body) if path.startswith("/api/") else body.decode()


def ready(port: int = 9093) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5) as response:
        return response.status == 200


def metric(name: str, port: int = 9093) -> float | None:
    for line in api("/metrics", port).splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            return float(value)
    return None


def service(machine: Machine, *properties: str) -> dict[str, str]:
    out = machine.run(
        "systemctl", "show", SERVICE, *(f"--property={p}" for p in properties)
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def main_pid(machine: Machine) -> int:
    return int(service(machine, "MainPID")["MainPID"])


def argv(machine: Machine) -> list[str]:
    return machine.run("cat", f"/proc/{main_pid(machine)}/cmdline").stdout.split("\0")


def installed(machine: Machine, package: str) -> bool:
    status = machine.run("dpkg-query", "-W", "-f=${Status}", package, check=False).stdout
    return status == "install ok installed"


def starts(machine: Machine) -> int:
    """How many times an Alertmanager process started on this machine (its own log line)."""
    return machine.journal(SERVICE, lines=1000).count('msg="Starting Alertmanager"')


@pytest.fixture
def unit(machine: Machine) -> Unit:
    """An Alertmanager unit whose install hook has run (package installed, service started)."""
    alertmanager = Unit(machine, "alertmanager")
    result = alertmanager.run("install")
    assert result.status.name == "active", result.status
    wait_for(ready, what="Alertmanager to be ready")
    return alertmanager


def test_install_from_nothing_runs_the_charm_s_config_never_the_example(machine: Machine):
    assert not installed(machine, SERVICE)
    alertmanager = Unit(machine, "alertmanager")

    result = alertmanager.run("install")

    assert result.status == Status(
        "active", "serving on :9093; no receiver (config-file is empty)"
    )
    assert installed(machine, SERVICE)
    wait_for(ready, what="Alertmanager to be ready")
    live = api("/api/v2/status")["config"]["original"]
    assert "receiver: nobody" in live
    assert "team-X" not in live
    # The package's postinst could not start it (masked): the one start is the charm's.
    assert starts(machine) == 1
    assert machine.run("systemctl", "is-enabled", SERVICE).stdout.strip() == "enabled"
    # The packaged unit the charm relies on (service.py's docstring).
    unit_file = machine.run("systemctl", "cat", SERVICE).stdout
    for line in (
        "User=prometheus",
        "EnvironmentFile=/etc/default/prometheus-alertmanager",
        "ExecStart=/usr/bin/prometheus-alertmanager $ARGS",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
    ):
        assert line in unit_file.splitlines(), unit_file
    assert "--cluster.listen-address=" in argv(machine)
    recommends = machine.sh(
        f"apt-cache depends --recommends {SERVICE} | sed -n 's/.*Recommends: //p'"
    )
    for package in recommends.split():
        assert not installed(machine, package), package
    assert alertmanager.opened_ports == [9093]
    assert result.status.name == "active"


def test_the_config_is_readable_by_root_and_alertmanager_s_group_only(unit: Unit):
    unit.config["config-file"] = WEBHOOK
    assert unit.run("config_changed").status.name == "active"

    modes = unit.machine.run("stat", "-c", "%a %U:%G", CONFIG, DEFAULTS).stdout.split("\n")

    assert modes[0] == "640 root:prometheus"
    assert modes[1].startswith("644 root:")
    assert "machine-secret-token" not in str(unit.stored)


def test_a_config_change_reloads_with_the_same_pid(unit: Unit):
    machine = unit.machine
    pid = main_pid(machine)
    before = metric("alertmanager_config_last_reload_success_timestamp_seconds")

    unit.config["config-file"] = WEBHOOK
    result = unit.run("config_changed")

    assert result.status == Status("active", "serving on :9093")
    assert main_pid(machine) == pid
    assert "receiver: hook" in api("/api/v2/status")["config"]["original"]
    after = metric("alertmanager_config_last_reload_success_timestamp_seconds")
    assert before is not None
    assert after is not None
    assert after > before


def test_a_config_amtool_refuses_blocks_and_the_old_one_keeps_running(unit: Unit):
    machine = unit.machine
    unit.config["config-file"] = WEBHOOK
    assert unit.run("config_changed").status.name == "active"
    before, pid = machine.path(CONFIG).read_bytes(), main_pid(machine)

    unit.config["config-file"] = WEBHOOK.replace("receiver: hook", "receiver: pager")
    result = unit.run("config_changed")

    assert result.status == Status(
        "blocked",
        'amtool refused the config, the old one stays: undefined receiver "pager" used in route',
    )
    assert machine.path(CONFIG).read_bytes() == before
    assert main_pid(machine) == pid
    assert "receiver: hook" in api("/api/v2/status")["config"]["original"]
    assert result.status == unit.run("update_status").status


def test_a_reload_alertmanager_refuses_blocks_with_its_reason_from_the_journal(unit: Unit):
    machine = unit.machine
    pid = main_pid(machine)
    # A template only root can read: amtool (run as root) accepts it, Alertmanager
    # (User=prometheus) cannot load it.
    private = machine.path("/etc/prometheus/private.tmpl")
    private.write_text('{{ define "lab" }}lab{{ end }}\n')
    private.chmod(0o600)
    unit.config["config-file"] = WEBHOOK + "templates: [/etc/prometheus/private.tmpl]\n"

    result = unit.run("config_changed")

    assert result.status.name == "blocked"
    assert result.status.message.startswith(
        "alertmanager refused to reload, still on the old config: "
    )
    assert "permission denied" in result.status.message
    print(f"\nrefused reload: {result.status}")
    assert main_pid(machine) == pid
    assert "receiver: nobody" in api("/api/v2/status")["config"]["original"]
    assert metric("alertmanager_config_last_reload_successful") == 0

    private.chmod(0o644)
    result = unit.run("update_status")

    assert result.status == Status("active", "serving on :9093")
    assert main_pid(machine) == pid
    assert "receiver: hook" in api("/api/v2/status")["config"]["original"]


def test_show_config_and_check_config_on_the_live_file(unit: Unit):
    unit.config["config-file"] = WEBHOOK
    assert unit.run("config_changed").status.name == "active"

    shown = unit.run("action", action="show-config")
    checked = unit.run("action", action="check-config")

    assert shown.action_results is not None
    assert "machine-secret-token" not in shown.action_results["content"]
    assert "url: <secret>" in shown.action_results["content"]
    assert checked.action_results == {"valid": "true"}


def test_a_flag_change_restarts_with_a_new_pid(unit: Unit):
    machine = unit.machine
    pid = main_pid(machine)

    unit.config["log-level"] = "debug"
    result = unit.run("config_changed")

    assert result.status.name == "active", result.status
    assert main_pid(machine) != pid
    assert "--log.level=debug" in argv(machine)


def test_a_taken_port_is_blocked_with_its_cause_and_update_status_does_not_loop(unit: Unit):
    machine = unit.machine
    with port_taken() as taken:
        unit.config["web-port"] = taken
        result = unit.run("config_changed")

        assert result.status == Status(
            "blocked", f"alertmanager cannot listen on :{taken}: address already in use"
        )
        restarts = service(machine, "NRestarts", "InvocationID")
        assert unit.run("update_status").status == result.status
        assert service(machine, "NRestarts", "InvocationID") == restarts

    unit.config["web-port"] = 9093
    assert unit.run("config_changed").status.name == "active"
    wait_for(ready, what="Alertmanager back on :9093")


def test_a_peer_restarts_it_clustered_and_its_leaving_restarts_it_alone(unit: Unit):
    machine = unit.machine
    unit.networks = {"alertmanager-peers": "127.0.0.1"}
    relation = unit.relate(
        "alertmanager-peers",
        "alertmanager",
        units_data={1: {"cluster_address": "127.0.0.2:9094"}},
        kind="peer",
    )

    result = unit.run("relation_changed", relation=relation, remote_unit="alertmanager/1")

    assert re.match(r"serving on :9093; clustered with 1 peer", result.status.message)
    flags = argv(machine)
    assert "--cluster.listen-address=0.0.0.0:9094" in flags
    assert "--cluster.advertise-address=127.0.0.1:9094" in flags
    assert "--cluster.peer=127.0.0.2:9094" in flags
    wait_for(lambda: api("/api/v2/status")["cluster"]["status"] != "disabled", what="clustering")
    assert unit.relation(relation)["local_unit_data"]["cluster_address"] == "127.0.0.1:9094"

    unit.relation(relation)["peers_data"] = {}
    result = unit.run("relation_departed", relation=relation, remote_unit="alertmanager/1")

    assert result.status.name == "active"
    assert "--cluster.listen-address=" in argv(machine)
    wait_for(lambda: api("/api/v2/status")["cluster"]["status"] == "disabled", what="alone")


def test_remove_stops_and_disables_without_blocking(unit: Unit):
    machine = unit.machine

    result = unit.run("remove")

    assert result.status.name != "blocked", result.status
    assert machine.run("systemctl", "is-active", SERVICE, check=False).stdout.strip() == "inactive"
    assert (
        machine.run("systemctl", "is-enabled", SERVICE, check=False).stdout.strip() == "disabled"
    )
    with pytest.raises(urllib.error.URLError):
        ready()
