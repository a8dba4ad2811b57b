"""The node-exporter charm on a real systemd machine: the real package, unit, journal and files.

Nothing is patched: the install hook runs apt-get, the service is the packaged
prometheus-node-exporter.service, its flags go to /etc/default/prometheus-node-exporter, and the
tests look at what a user would (`systemctl`, /proc, the exporter's /metrics and Prometheus's
HTTP API on 127.0.0.1, which the machine shares with the host). Where Prometheus scrapes the
exporter, it is the Prometheus charm's own unit on the same machine, fed exactly the relation
data the node-exporter unit published.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from juju import Status, Unit
from machine import Machine, port_taken, wait_for

sys.path.insert(0, str(Path(__file__).parents[2] / "tools"))

import loopback

PACKAGE = SERVICE = BINARY = "prometheus-node-exporter"
DEFAULTS = "/etc/default/prometheus-node-exporter"
DROPIN = "/etc/systemd/system/prometheus-node-exporter.service.d/juju-low-ports.conf"
CLAIMS = "/var/lib/node-exporter-charm/claims"


def metrics(port: int = 9100) -> str:
    """GET the exporter's /metrics on this host's loopback (the machine shares it)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


def prometheus_api(path: str, **params: str) -> Any:
    """GET a Prometheus API path on 127.0.0.1:9090."""
    query = urllib.parse.urlencode(params)
    url = f"http://127.0.0.1:9090{path}" + (f"?{query}" if query else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def query(promql: str) -> list[dict[str, Any]]:
    return prometheus_api("/api/v1/query", query=promql)["data"]["result"]


def service(machine: Machine, *properties: str) -> dict[str, str]:
    """Return `systemctl show prometheus-node-exporter` properties."""
    out = machine.run(
        "systemctl", "show", SERVICE, *(f"--property={p}" for p in properties)
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def main_pid(machine: Machine) -> int:
    return int(service(machine, "MainPID")["MainPID"])


def argv(machine: Machine, pid: int) -> list[str]:
    # The machine's /proc is its own mount: read it from inside.
    return machine.run("cat", f"/proc/{pid}/cmdline").stdout.split("\0")


def is_active(machine: Machine) -> str:
    return machine.run("systemctl", "is-active", SERVICE, check=False).stdout.strip()


def is_active_later(machine: Machine, seconds: float = 3) -> str:
    """`systemctl is-active` a few seconds after the hook: did it stay up (or stay down)?"""
    time.sleep(seconds)
    return is_active(machine)


def is_enabled(machine: Machine) -> str:
    return machine.run("systemctl", "is-enabled", SERVICE, check=False).stdout.strip()


def installed_packages(machine: Machine) -> set[str]:
    out = machine.run("dpkg-query", "-W", "-f=${Package} ${Status}\n").stdout
    return {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}


def flags_file(machine: Machine) -> bytes:
    return machine.path(DEFAULTS).read_bytes()


def machine_address(machine: Machine) -> str:
    """The machine's own address, as Juju would give it to a relation (it is the host's)."""
    out = machine.run("ip", "-4", "-o", "addr", "show", "scope", "global").stdout
    found = re.search(r"inet ([0-9.]+)/", out)
    return found.group(1) if found else "127.0.0.1"


def unseen_holder(port: int) -> str:
    """The Blocked status for a port held by a process outside the machine's PID namespace."""
    return (
        f"port {port} is taken by a process not visible from this machine:"
        " set this charm's port, or free the port"
    )


def observed(test: str, **facts: Any) -> None:
    """Print what a scenario saw (pytest -rP shows it): the figures behind the issue's table."""
    print(f"observed {test}: " + ", ".join(f"{k}={v}" for k, v in facts.items()))


def exporter(machine: Machine, app: str = "node-exporter", principal: str = "ubuntu") -> Unit:
    """A node-exporter unit attached to a principal (juju-info), before any hook."""
    unit = Unit(machine, "node-exporter", app=app)
    unit.relate("juju-info", principal, kind="subordinate")
    return unit


@pytest.fixture
def unit(machine: Machine) -> Unit:
    """A node-exporter unit whose install hook has run: the exporter serves on :9100."""
    installed = exporter(machine)
    result = installed.run("install")
    assert result.status == Status("active", "exporting on :9100"), result.status
    wait_for(metrics, what="the exporter on :9100")
    return installed


# --- install, flags, options ---------------------------------------------------------------


def test_install_from_nothing_exports_on_9100_without_recommends(machine: Machine):
    assert PACKAGE not in installed_packages(machine)
    before = installed_packages(machine)
    unit = exporter(machine)

    result = unit.run("install")

    assert result.status == Status("active", "exporting on :9100")
    assert "node_exporter_build_info" in metrics()
    assert is_enabled(machine) == "enabled"
    pid = main_pid(machine)
    assert "--web.listen-address=:9100" in argv(machine, pid)
    # The package recommends prometheus-node-exporter-collectors (textfile scripts on timers).
    recommends = machine.sh(
        f"apt-cache depends --recommends {PACKAGE} | sed -n 's/.*Recommends: //p'"
    ).split()
    new = installed_packages(machine) - before
    assert PACKAGE in new
    assert not new & set(recommends), new & set(recommends)
    assert "prometheus-node-exporter-collectors" not in new
    assert unit.opened_ports == [9100]
    later = is_active_later(machine)
    assert later == "active"
    observed("install", status=result.status, pid=pid, active_later=later, new=sorted(new))


def test_an_apt_failure_blocks_with_apt_s_reason_and_the_next_hook_installs(machine: Machine):
    # An archive that does not have the package (a broken mirror, a wrong pocket).
    machine.sh("mv /etc/apt/sources.list /root/sources.list && rm -rf /var/lib/apt/lists/*")
    unit = exporter(machine)

    result = unit.run("install")

    assert result.status == Status(
        "blocked",
        f"could not install {PACKAGE} (retrying): E: Unable to locate package {PACKAGE}",
    )
    assert not machine.path(CLAIMS).exists()
    machine.sh("mv /root/sources.list /etc/apt/sources.list")
    again = unit.run("update_status")
    assert again.status == Status("active", "exporting on :9100")
    assert "node_exporter_build_info" in metrics()
    observed("apt failure", status=result.status, then=again.status)


def test_a_collectors_change_restarts_with_the_flag_and_a_quiet_hook_keeps_the_pid(unit: Unit):
    machine = unit.machine
    pid = main_pid(machine)

    unit.config["collectors"] = "processes"
    result = unit.run("config_changed")

    assert result.status == Status("active", "exporting on :9100")
    new_pid = main_pid(machine)
    assert new_pid != pid
    assert "--collector.processes" in argv(machine, new_pid)
    assert "node_processes_threads" in metrics()
    written = machine.path(DEFAULTS).stat().st_mtime_ns
    for event in ("update_status", "config_changed", "upgrade_charm"):
        quiet = unit.run(event)
        assert quiet.status == Status("active", "exporting on :9100"), event
        assert main_pid(machine) == new_pid, event
    assert machine.path(DEFAULTS).stat().st_mtime_ns == written
    later = is_active_later(machine)
    assert later == "active"
    observed("flags", status=result.status, pid_before=pid, pid_after=new_pid, active_later=later)


def test_an_unknown_collector_blocks_naming_it_and_leaves_the_flags_alone(unit: Unit):
    machine = unit.machine
    before, pid = flags_file(machine), main_pid(machine)
    # Judged against the installed binary: its --help lists processes but no gpu collector.
    help_text = machine.run(BINARY, "--help", check=False)
    assert "--collector.processes" in help_text.stdout + help_text.stderr
    assert "--collector.gpu" not in help_text.stdout + help_text.stderr
    version_text = machine.run(BINARY, "--version", check=False)
    version = re.search(r"version (\S+)", version_text.stdout + version_text.stderr)
    assert version

    unit.config["collectors"] = "processes,gpu"
    result = unit.run("config_changed")

    assert result.status == Status(
        "blocked",
        f'collectors: "gpu" is not a collector of node_exporter {version.group(1)}'
        f" (see {BINARY} --help)",
    )
    assert flags_file(machine) == before
    assert main_pid(machine) == pid
    observed(
        "unknown collector", status=result.status, pid_before=pid, pid_after=main_pid(machine)
    )


def test_an_external_stop_is_repaired_by_update_status(unit: Unit):
    machine = unit.machine
    pid = main_pid(machine)
    machine.run("systemctl", "stop", SERVICE)
    assert is_active(machine) == "inactive"

    result = unit.run("update_status")

    assert result.status == Status("active", "exporting on :9100")
    assert main_pid(machine) not in (0, pid)
    assert "node_exporter_build_info" in metrics()
    observed("external stop", status=result.status, pid_before=pid, pid_after=main_pid(machine))


# --- start failures and low ports ----------------------------------------------------------


def test_a_port_in_use_blocks_with_the_cause_and_update_status_does_not_loop(unit: Unit):
    machine = unit.machine
    pid = main_pid(machine)
    with port_taken() as taken:
        unit.config["port"] = taken
        result = unit.run("config_changed")

        # The port is held by this test's process on the host, whose network the machine
        # shares but whose processes it does not see: the charm finds the socket, not its owner.
        reason = unseen_holder(taken)
        assert result.status == Status("blocked", reason)
        # systemd retries it a few times itself, then gives up.
        wait_for(lambda: is_active(machine) == "failed", what="systemd to give up")
        attempts = service(machine, "NRestarts", "InvocationID")
        again = unit.run("update_status")
        assert again.status == Status("blocked", reason)
        # No new start attempt: the same invocation, no more restarts.
        assert service(machine, "NRestarts", "InvocationID") == attempts
        later = is_active_later(machine)
        assert later == "failed"

    # Once the operator picks a free port, it serves again.
    unit.config["port"] = 9100
    fixed = unit.run("config_changed")
    assert fixed.status == Status("active", "exporting on :9100")
    assert "node_exporter_build_info" in metrics()
    observed(
        "port in use",
        status=result.status,
        pid_before=pid,
        pid_after=0,
        active_later=later,
        restarts=attempts["NRestarts"],
        then=fixed.status,
    )


def test_a_taken_port_is_blocked_with_its_cause_at_every_instant_of_the_restart_loop(
    unit: Unit,
):
    machine = unit.machine
    machine.endless_restarts(SERVICE)
    with port_taken() as taken:
        unit.config["port"] = taken
        cause = unseen_holder(taken)

        statuses = [unit.run("config_changed").status]
        statuses += [unit.run("update_status").status for _ in range(10)]

        assert int(service(machine, "NRestarts")["NRestarts"]) > 0  # still looping
        assert statuses == [Status("blocked", cause)] * 11

    # The port is free: systemd's next try comes up and the next hook says so.
    wait_for(lambda: "node_exporter_build_info" in metrics(taken), what="the exporter")
    assert unit.run("update_status").status == Status("active", f"exporting on :{taken}")


def test_the_collectors_exporter_on_9100_is_named_and_another_port_serves(machine: Machine):
    # As Canonical's opentelemetry-collector charm leaves a machine: the node-exporter snap's
    # node_exporter in the snap's systemd service, on :9100. Here it is Python under that name
    # (the kernel names a process after the file it runs), in a service of the snap's name.
    machine.run("ln", "-s", "/usr/bin/python3", "/usr/local/bin/node_exporter")
    listen = (
        "import socket, time\n"
        "s = socket.create_server(('', 9100), family=socket.AF_INET6, dualstack_ipv6=True)\n"
        "time.sleep(3600)\n"
    )
    snap_service = "snap.node-exporter.node-exporter.service"
    machine.run(
        "systemd-run", f"--unit={snap_service}", "/usr/local/bin/node_exporter", "-c", listen
    )
    wait_for(lambda: machine.run("ss", "-Hltn", "sport = :9100").stdout.strip(), what=":9100")
    pid = int(
        machine.run("systemctl", "show", snap_service, "--property=MainPID", "--value").stdout
    )
    unit = exporter(machine)

    result = unit.run("install")

    assert result.status == Status(
        "blocked",
        f"port 9100 is taken by node_exporter (pid {pid}) of snap node-exporter"
        " (opentelemetry-collector): set this charm's port, or do not attach node-exporter"
        " where the collector runs",
    )
    # The operator's first remedy: another port for this charm's exporter.
    port = loopback.free_port()
    unit.config["port"] = port
    fixed = unit.run("config_changed")
    assert fixed.status == Status("active", f"exporting on :{port}")
    assert "node_exporter_build_info" in metrics(port)
    observed("collector's exporter on 9100", status=result.status, then=fixed.status)


def test_a_port_below_1024_serves_as_the_unprivileged_user(unit: Unit):
    machine = unit.machine
    pid = main_pid(machine)

    unit.config["port"] = 80
    result = unit.run("config_changed")

    assert result.status == Status("active", "exporting on :80")
    assert "node_exporter_build_info" in metrics(80)
    new_pid = main_pid(machine)
    owner = machine.run("ps", "-o", "user=", "-p", str(new_pid)).stdout.strip()
    assert owner == "prometheus"
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in machine.path(DROPIN).read_text()
    assert unit.opened_ports == [80]
    later = is_active_later(machine)
    assert later == "active"
    observed("port 80", status=result.status, pid_before=pid, pid_after=new_pid, user=owner)

    unit.config["port"] = 9100
    back = unit.run("config_changed")
    assert back.status == Status("active", "exporting on :9100")
    assert not machine.path(DROPIN).exists()
    assert "node_exporter_build_info" in metrics()


def test_remove_stops_disables_and_drops_the_drop_in_without_blocking(unit: Unit):
    machine = unit.machine
    unit.config["port"] = 80
    assert unit.run("config_changed").status == Status("active", "exporting on :80")

    result = unit.run("remove")

    assert result.status == Status("maintenance", f"removing: {SERVICE} stopped and disabled")
    assert is_active(machine) == "inactive"
    assert is_enabled(machine) == "disabled"
    assert not machine.path(DROPIN).exists()
    with pytest.raises(urllib.error.URLError):
        metrics(80)
    observed("remove", status=result.status, active=is_active(machine))


# --- scraped by the Prometheus charm -------------------------------------------------------


def fail_a_systemd_unit(machine: Machine, name: str) -> None:
    """Make a systemd unit on the machine fail, as a broken service of a lab would."""
    machine.path(f"/etc/systemd/system/{name}").write_text(
        "[Unit]\nDescription=A unit that fails\n[Service]\nType=oneshot\nExecStart=/bin/false\n"
    )
    machine.run("systemctl", "daemon-reload")
    machine.run("systemctl", "start", name, check=False)
    state = machine.run("systemctl", "is-failed", name, check=False).stdout.strip()
    assert state == "failed"


def test_a_related_prometheus_scrapes_it_with_juju_topology_and_sees_a_failed_unit(unit: Unit):
    # One test for what Prometheus sees of the machine: each needs both charms installed.
    machine = unit.machine
    fail_a_systemd_unit(machine, "lab-broken.service")
    address = machine_address(machine)
    unit.networks["metrics-endpoint"] = address
    relation = unit.relate("metrics-endpoint", "prometheus")
    unit.run("relation_joined", relation=relation, remote_unit="prometheus/0")
    published = unit.relation(relation)
    assert published["local_unit_data"]["prometheus_scrape_unit_address"] == address
    prometheus = Unit(
        machine,
        "prometheus",
        config={"scrape-interval": "5s", "scrape-timeout": "5s", "evaluation-interval": "5s"},
    )
    assert prometheus.run("install").status.name == "active"
    # Exactly what the node-exporter unit published, as Juju would hand it over.
    scrape = prometheus.relate(
        "metrics-endpoint",
        "node-exporter",
        app_data=dict(published["local_app_data"]),
        units_data={0: dict(published["local_unit_data"])},
    )

    result = prometheus.run("relation_changed", relation=scrape, remote_unit="node-exporter/0")

    assert result.status.name == "active", result.status
    up = wait_for(
        lambda: query('up{juju_application="node-exporter"} == 1'),
        timeout=60,
        what="Prometheus to scrape the exporter",
    )
    labels = up[0]["metric"]
    assert labels["instance"] == f"{address}:9100"
    assert labels["juju_model"] == unit.model[0]
    assert labels["juju_model_uuid"] == unit.model[1]
    assert labels["juju_unit"] == "node-exporter/0"
    failed = query('node_systemd_unit_state{state="failed",name="lab-broken.service"} == 1')
    assert failed[0]["metric"]["juju_unit"] == "node-exporter/0"
    # Prometheus loaded every rule node-exporter sent, labelled with its topology, and
    # NodeSystemdUnitFailed is pending for the failed unit (it fires once its `for`, 5m, passes).
    # Prometheus's own health rules (prometheus_health.rules) are loaded beside them.
    names = [rule["alert"] for group in rules_sent(published) for rule in group["rules"]]
    groups = prometheus_api("/api/v1/rules")["data"]["groups"]
    model, model_uuid = unit.model
    sender_file = f"juju_{model}_{model_uuid[:8]}_node-exporter.rules"
    assert {Path(group["file"]).name for group in groups} == {
        sender_file,
        "prometheus_health.rules",
    }
    loaded = {
        rule["name"]: rule
        for group in groups
        if Path(group["file"]).name == sender_file
        for rule in group["rules"]
    }
    assert sorted(loaded) == sorted(names)
    assert loaded["NodeDown"]["labels"]["juju_application"] == "node-exporter"
    pending = wait_for(
        lambda: [
            alert
            for alert in prometheus_api("/api/v1/alerts")["data"]["alerts"]
            if alert["labels"]["alertname"] == "NodeSystemdUnitFailed"
        ],
        timeout=60,
        what="NodeSystemdUnitFailed to be pending",
    )
    assert [alert["labels"]["name"] for alert in pending] == ["lab-broken.service"]
    assert pending[0]["state"] == "pending"
    assert pending[0]["labels"]["juju_unit"] == "node-exporter/0"
    observed("scraped", up=up[0]["value"][1], labels=labels, rules_loaded=sorted(loaded))
    observed("systemd unit failed", series=failed[0]["metric"], alert=pending[0])


def rules_sent(published: dict[str, Any]) -> list[dict[str, Any]]:
    """The alert rule groups a node-exporter unit published (app data `alert_rules`)."""
    return json.loads(published["local_app_data"]["alert_rules"])["groups"]


# --- two units of two principals on one machine --------------------------------------------


def test_two_units_share_one_exporter_and_the_last_removed_stops_it(machine: Machine):
    first = exporter(machine, app="node-exporter", principal="prometheus")
    second = exporter(machine, app="rack-exporter", principal="grafana")
    assert first.run("install").status == Status("active", "exporting on :9100")
    pid, written = main_pid(machine), flags_file(machine)

    joined = second.run("install")

    assert joined.status == Status("active", "exporting on :9100 (run by node-exporter/0)")
    assert second.opened_ports == []
    for _ in range(2):
        for each in (first, second):
            each.run("update_status")
            assert flags_file(machine) == written
            assert main_pid(machine) == pid
    assert sorted(p.name for p in machine.path(CLAIMS).iterdir()) == [
        "unit-node-exporter-0.json",
        "unit-rack-exporter-0.json",
    ]

    gone = first.run("remove")
    assert gone.status == Status("maintenance", f"removing: rack-exporter/0 runs {SERVICE} now")
    assert is_active_later(machine) == "active"
    assert main_pid(machine) == pid  # same settings: no restart
    took_over = second.run("update_status")
    assert took_over.status == Status("active", "exporting on :9100")
    assert second.opened_ports == [9100]

    last = second.run("remove")
    assert last.status == Status("maintenance", f"removing: {SERVICE} stopped and disabled")
    assert is_active(machine) == "inactive"
    assert is_enabled(machine) == "disabled"
    observed(
        "two units",
        second=joined.status,
        pid=pid,
        after_first_removed=took_over.status,
        after_last_removed=is_active(machine),
    )
