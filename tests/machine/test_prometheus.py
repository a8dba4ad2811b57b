"""The Prometheus charm on a real systemd machine: the real package, unit, files and service.

Nothing is patched: the charm's install hook runs apt-get, the service is the packaged
prometheus.service, files land in /etc/prometheus, and the tests look at what a user would
(`systemctl`, the journal, the HTTP API on 127.0.0.1, which the machine shares with the host).
"""

from __future__ import annotations

import base64
import http.server
import json
import pathlib
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
import yaml
from juju import Status, Unit
from machine import Machine, port_taken, wait_for

sys.path.insert(0, str(pathlib.Path(__file__).parents[2] / "tools"))
import loopback

CONFIG = "/etc/prometheus/prometheus.yml"
DEFAULTS = "/etc/default/prometheus"
TSDB = "/var/lib/prometheus/metrics2"
# The packaged prometheus.service's Restart= on each release the tier boots: jammy's
# (2.31.2+ds1-1ubuntu1.22.04.3) and Debian 12's restart a Prometheus that exits with an error;
# noble's (2.45.3+ds-2ubuntu0.3) only one killed by a signal, so a start that fails on a taken
# port fails once and stays failed, with no restart loop.
RESTART_POLICY = {"bookworm": "on-failure", "jammy": "on-failure", "noble": "on-abnormal"}


def api(path: str, port: int = 9090, **params: str) -> Any:
    """GET a Prometheus API path on this host's loopback (the machine shares it)."""
    query = urllib.parse.urlencode(params)
    url = f"http://127.0.0.1:{port}{path}" + (f"?{query}" if query else "")
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def ready(port: int = 9090) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5) as response:
        return response.status == 200


def service(machine: Machine, *properties: str) -> dict[str, str]:
    """Return `systemctl show prometheus` properties."""
    out = machine.run(
        "systemctl", "show", "prometheus", *(f"--property={p}" for p in properties)
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def main_pid(machine: Machine) -> int:
    return int(service(machine, "MainPID")["MainPID"])


def is_active(machine: Machine) -> str:
    return machine.run("systemctl", "is-active", "prometheus", check=False).stdout.strip()


def restarts_on_failure(machine: Machine) -> bool:
    """Whether the release's packaged unit restarts a Prometheus that exits with an error."""
    policy = service(machine, "Restart")["Restart"]
    assert policy == RESTART_POLICY.get(machine.release), (machine.release, policy)
    return policy == "on-failure"


def installed(machine: Machine, package: str) -> bool:
    status = machine.run("dpkg-query", "-W", "-f=${Status}", package, check=False).stdout
    return status == "install ok installed"


def files(machine: Machine) -> dict[str, bytes]:
    """The files the charm manages, byte for byte."""
    paths = [
        CONFIG,
        DEFAULTS,
        *(str(p) for p in machine.path("/etc/prometheus/juju-rules").glob("*")),
    ]
    return {p: machine.path(p).read_bytes() for p in paths if machine.path(p).exists()}


@pytest.fixture
def unit(machine: Machine) -> Unit:
    """A Prometheus unit whose install hook has run (package installed, service started)."""
    prometheus = Unit(machine, "prometheus")
    result = prometheus.run("install")
    assert result.status.name == "active", result.status
    wait_for(ready, what="Prometheus to be ready")
    return prometheus


def test_install_from_nothing_starts_prometheus_without_recommends(machine: Machine):
    assert not installed(machine, "prometheus")
    prometheus = Unit(machine, "prometheus")

    result = prometheus.run("install")

    assert result.status == Status("active", "serving 1 scrape job on :9090")
    assert installed(machine, "prometheus")
    wait_for(ready, what="Prometheus to be ready")
    assert machine.run("systemctl", "is-enabled", "prometheus").stdout.strip() == "enabled"
    # The package recommends prometheus-node-exporter, which this charm does not manage.
    recommends = machine.sh(
        "apt-cache depends --recommends prometheus | sed -n 's/.*Recommends: //p'"
    )
    for package in recommends.split():
        assert not installed(machine, package), package
    assert prometheus.opened_ports == [9090]


def test_an_apt_failure_blocks_with_apt_s_reason_and_the_next_hook_installs(machine: Machine):
    # An archive that does not have the package (a broken mirror, a wrong pocket).
    machine.sh("mv /etc/apt/sources.list /root/sources.list && rm -rf /var/lib/apt/lists/*")
    prometheus = Unit(machine, "prometheus")

    result = prometheus.run("install")

    assert result.status == Status(
        "blocked",
        "could not install prometheus (retrying): E: Unable to locate package prometheus",
    )
    assert not machine.path(CONFIG).exists()
    machine.sh("mv /root/sources.list /etc/apt/sources.list")
    result = prometheus.run("update_status")
    assert result.status == Status("active", "serving 1 scrape job on :9090")
    assert installed(machine, "prometheus")


def test_installed_files_have_the_promised_modes(unit: Unit):
    machine = unit.machine
    stat = machine.run("stat", "-c", "%a %U:%G", CONFIG, DEFAULTS).stdout.split("\n")
    # prometheus.yml may hold scrape-jobs credentials: only root and Prometheus read it.
    assert stat[0] == "640 root:prometheus"
    assert stat[1].startswith("644 root:")


def test_a_config_change_reloads_with_the_same_pid_and_queries_keep_answering(unit: Unit):
    machine = unit.machine
    pid = main_pid(machine)
    failures: list[str] = []
    stop = threading.Event()

    def query_all_the_time() -> None:
        while not stop.is_set():
            try:
                api("/api/v1/query", query="up")
            except (OSError, ValueError) as e:
                failures.append(str(e))

    querying = threading.Thread(target=query_all_the_time)
    querying.start()
    try:
        unit.config["scrape-interval"] = "20s"
        result = unit.run("config_changed")
    finally:
        stop.set()
        querying.join()

    assert result.status.name == "active", result.status
    assert main_pid(machine) == pid
    live = api("/api/v1/status/config")["data"]["yaml"]
    assert "scrape_interval: 20s" in live
    assert failures == []


def test_the_reload_action_goes_through_systemd_and_reports_a_refusal_with_its_reason(
    unit: Unit,
):
    machine = unit.machine
    pid = main_pid(machine)

    result = unit.run("action", action="reload")
    assert result.action_failure is None
    assert result.action_results is not None
    assert result.action_results["duration-ms"] >= 0

    # Someone edits the live file by hand, past promtool: SIGHUP makes Prometheus refuse it.
    live = machine.path(CONFIG).read_text()
    edited, edits = re.subn(r'"scrape_interval": "15s"', '"scrape_interval": "1x"', live, count=1)
    assert edits == 1, live
    machine.path(CONFIG).write_text(edited)
    result = unit.run("action", action="reload")

    assert result.action_failure is not None
    assert result.action_failure.startswith("Prometheus refused to reload: ")
    assert "1x" in result.action_failure
    assert main_pid(machine) == pid
    assert is_active(machine) == "active"
    metrics = urllib.request.urlopen("http://127.0.0.1:9090/metrics", timeout=5).read().decode()
    assert "prometheus_config_last_reload_successful 0" in metrics
    result = unit.run("action", action="validate-configuration")
    assert result.action_results is not None
    assert result.action_results["valid"] == "false"


def test_a_flag_change_restarts_with_a_new_pid(unit: Unit):
    machine = unit.machine
    pid = main_pid(machine)

    unit.config["retention-time"] = "3d"
    result = unit.run("config_changed")

    assert result.status.name == "active", result.status
    new_pid = main_pid(machine)
    assert new_pid != pid
    argv = machine.run("cat", f"/proc/{new_pid}/cmdline").stdout.split("\0")
    assert "--storage.tsdb.retention.time=3d" in argv
    wait_for(ready, what="Prometheus to be ready after the restart")


def test_a_related_target_is_scraped(unit: Unit):
    with loopback.metrics_server(b"lab_widgets 42\n") as target_port:
        relation = unit.relate(
            "target",
            "widget",
            units_data={0: {"hostname": "127.0.0.1", "port": str(target_port)}},
        )
        result = unit.run("relation_changed", relation=relation, remote_unit="widget/0")

        assert result.status.message == "serving 2 scrape jobs on :9090"
        up = wait_for(
            lambda: api("/api/v1/query", query='up{juju_application="widget"} == 1')["data"][
                "result"
            ],
            timeout=40,
            what="the related target to be scraped",
        )
        assert up[0]["metric"]["juju_unit"] == "widget/0"


# Label values the charm's JSON file must carry to the archive's own Prometheus unchanged
# (jammy's 2.31 reads prometheus.yml with gopkg.in/yaml.v2 and rule files with yaml.v3).
HOSTILE = {
    "astral": "\U0001f600 \U0010fffd",
    "breaks": "nel\x85 ls\u2028 ps\u2029",
    "controls": "del\x7f c1\x9f bom\ufeff",
    "quotes": 'say "hi" it\'s back\\slash',
    "yaml": "- item: {flow} [seq] &a *a !!int # no",
    "cjk": "\u65e5\u672c",
    "on": "yes",
}


def test_the_charms_files_reach_the_archives_prometheus_as_written(unit: Unit):
    # As an operator would write them (PyYAML escapes what YAML may not hold literally).
    job = {
        "job_name": "hostile",
        "static_configs": [{"targets": ["127.0.0.1:1"], "labels": HOSTILE}],
    }
    unit.config["scrape-jobs"] = yaml.safe_dump([job], allow_unicode=False, width=10**6)
    rule = {
        "alert": "Hostile",
        "expr": "up < 0",
        "labels": {"severity": "none"},
        # Relation data may hold no control characters (they are refused): the printable ones.
        "annotations": {name: value for name, value in HOSTILE.items() if value.isprintable()},
    }
    relation = unit.relate(
        "metrics-endpoint",
        "widgets",
        app_data={"alert_rules": json.dumps({"groups": [{"name": "g", "rules": [rule]}]})},
        units_data={0: {}},
    )

    result = unit.run("relation_changed", relation=relation, remote_unit="widgets/0")

    assert result.status == Status("active", "serving 2 scrape jobs on :9090"), result.status
    # Prometheus updates its targets a few seconds after a reload.
    [target] = wait_for(
        lambda: [
            t
            for t in api("/api/v1/targets")["data"]["activeTargets"]
            if t["scrapePool"] == "hostile"
        ],
        what="the hostile job's target",
    )
    assert target["labels"] == {
        **HOSTILE,
        "job": "hostile",
        "instance": "127.0.0.1:1",
    }
    # The relation's group; Prometheus's own health rules are the other.
    [group] = [g for g in api("/api/v1/rules")["data"]["groups"] if g["name"] == "g"]
    [loaded] = group["rules"]
    assert loaded["annotations"] == rule["annotations"]


class AlertReceiver:
    """An Alertmanager stand-in on loopback: records each POST of alerts Prometheus makes."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, list[dict[str, Any]]]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append((self.path, json.loads(body or b"[]")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alert_names(self) -> set[str]:
        return {alert["labels"]["alertname"] for _, alerts in self.posts for alert in alerts}


def test_the_archives_prometheus_loads_the_alerting_section_and_its_health_rules(unit: Unit):
    receiver = AlertReceiver()
    try:
        relation = unit.relate(
            "alertmanager",
            "alertmanager",
            units_data={0: {"url": f"http://127.0.0.1:{receiver.port}/am"}},
        )

        result = unit.run("relation_changed", relation=relation, remote_unit="alertmanager/0")

        assert result.status == Status("active", "serving 1 scrape job on :9090"), result.status
        listed = wait_for(
            lambda: api("/api/v1/alertmanagers")["data"]["activeAlertmanagers"],
            what="the Alertmanager in Prometheus",
        )
        health = [
            g
            for g in api("/api/v1/rules")["data"]["groups"]
            if g["name"].endswith("_health_rules")
        ]
        # The Watchdog is sent again every minute (the first send may precede discovery).
        wait_for(lambda: "Watchdog" in receiver.alert_names(), timeout=100, what="the Watchdog")
    finally:
        receiver.server.shutdown()

    assert [a["url"] for a in listed] == [f"http://127.0.0.1:{receiver.port}/am/api/v2/alerts"]
    assert [len(g["rules"]) for g in health] == [7]
    assert {path for path, _ in receiver.posts} == {"/am/api/v2/alerts"}


def test_an_invalid_option_blocks_and_leaves_the_live_files_alone(unit: Unit):
    machine = unit.machine
    before, pid = files(machine), main_pid(machine)

    unit.config["retention-time"] = "2 weeks"
    result = unit.run("config_changed")

    assert result.status.name == "blocked"
    assert result.status.message == 'retention-time: "2 weeks" is not a duration (try 14d)'
    assert files(machine) == before
    assert main_pid(machine) == pid


def test_scrape_jobs_that_promtool_refuses_block_and_leave_the_live_files_alone(unit: Unit):
    machine = unit.machine
    before, pid = files(machine), main_pid(machine)

    unit.config["scrape-jobs"] = (
        "- job_name: bad\n  relabel_configs: [{source_labels: [a], regex: '(unclosed'}]\n"
        "  static_configs: [{targets: ['localhost:1']}]\n"
    )
    result = unit.run("config_changed")

    assert result.status.name == "blocked"
    assert result.status.message.startswith("promtool rejected the config (check scrape-jobs)")
    assert files(machine) == before
    assert main_pid(machine) == pid


def test_a_port_below_1024_serves(unit: Unit):
    machine = unit.machine

    unit.config["web-port"] = 80
    result = unit.run("config_changed")

    assert result.status == Status("active", "serving 1 scrape job on :80")
    assert wait_for(lambda: ready(80), what="Prometheus on :80")
    assert is_active(machine) == "active"


def test_a_port_in_use_blocks_with_the_cause_and_update_status_does_not_loop(unit: Unit):
    machine = unit.machine
    with port_taken() as taken:
        unit.config["web-port"] = taken
        result = unit.run("config_changed")

        assert result.status.name == "blocked"
        assert result.status.message == (
            f"prometheus cannot listen on :{taken}: address already in use"
        )
        restarts = service(machine, "NRestarts", "InvocationID")
        result = unit.run("update_status")
        assert result.status.message.startswith(f"prometheus cannot listen on :{taken}")
        # No new start attempt: the same invocation, no more restarts.
        assert service(machine, "NRestarts", "InvocationID") == restarts

    # Once the operator picks a free port, it serves again.
    unit.config["web-port"] = 9090
    result = unit.run("config_changed")
    assert result.status.name == "active", result.status
    assert wait_for(ready, what="Prometheus back on :9090")


def test_a_taken_port_is_blocked_with_its_cause_at_every_instant_of_the_restart_loop(
    unit: Unit,
):
    machine = unit.machine
    loops = restarts_on_failure(machine)
    machine.endless_restarts("prometheus")
    with port_taken() as taken:
        unit.config["web-port"] = taken
        cause = f"prometheus cannot listen on :{taken}: address already in use"

        statuses = [unit.run("config_changed").status]
        statuses += [unit.run("update_status").status for _ in range(10)]

        after = service(machine, "NRestarts", "ActiveState")
        if loops:
            assert int(after["NRestarts"]) > 0  # still looping
        else:
            # No loop on this release: one try, failed, and nothing restarts it.
            assert after == {"NRestarts": "0", "ActiveState": "failed"}
        assert statuses == [Status("blocked", cause)] * 11

    if loops:
        # The port is free: systemd's next try comes up and the next hook says so.
        wait_for(lambda: ready(taken), what=f"Prometheus on :{taken}")
        assert unit.run("update_status").status.name == "active"
    else:
        # The port is free, but no try comes: the charm holds the same flags back for an hour
        # (packaged_service.start_held_back) and keeps saying why it is down.
        assert unit.run("update_status").status == Status("blocked", cause)
        assert is_active(machine) == "failed"


def test_an_external_stop_is_repaired_by_update_status(unit: Unit):
    machine = unit.machine
    machine.run("systemctl", "stop", "prometheus")
    assert is_active(machine) == "inactive"

    result = unit.run("update_status")

    assert result.status.name == "active", result.status
    assert is_active(machine) == "active"
    wait_for(ready, what="Prometheus to be ready again")


def test_a_crash_is_repaired_by_systemd_where_the_unit_says_so_else_by_the_next_hook(
    unit: Unit,
):
    machine = unit.machine
    pid = main_pid(machine)

    # Go dumps its goroutines and exits with status 2 on SIGQUIT, as on a panic: to systemd,
    # a process that exited with an error, not one killed by a signal.
    machine.run("kill", "-QUIT", str(pid))

    if restarts_on_failure(machine):
        wait_for(lambda: main_pid(machine) not in (0, pid), what="systemd to restart Prometheus")
        assert service(machine, "NRestarts")["NRestarts"] == "1"
    else:
        wait_for(lambda: is_active(machine) == "failed", what="Prometheus to be down")
        assert service(machine, "NRestarts", "MainPID") == {"NRestarts": "0", "MainPID": "0"}
        # Down until a hook comes: update-status, every 5 minutes by default.
        result = unit.run("update_status")
        assert result.status == Status("active", "serving 1 scrape job on :9090")
        assert main_pid(machine) not in (0, pid)
    wait_for(ready, what="Prometheus to be ready again")
    assert unit.run("update_status").status == Status("active", "serving 1 scrape job on :9090")


def test_upgrade_charm_keeps_the_samples(unit: Unit):
    machine = unit.machine
    first = wait_for(
        lambda: api("/api/v1/query", query="up")["data"]["result"],
        what="a first self-scrape",
    )
    sampled_at = str(first[0]["value"][0])
    pid = main_pid(machine)

    result = unit.run("upgrade_charm")

    assert result.status.name == "active", result.status
    assert main_pid(machine) == pid
    # The sample taken before the upgrade is still there.
    again = api("/api/v1/query", query="up", time=sampled_at)["data"]["result"]
    assert again, "the TSDB lost the samples taken before the upgrade"
    assert machine.path(TSDB).is_dir()


def test_remove_stops_and_disables_without_blocking(unit: Unit):
    machine = unit.machine

    result = unit.run("remove")

    assert result.status.name != "blocked", result.status
    assert is_active(machine) == "inactive"
    assert (
        machine.run("systemctl", "is-enabled", "prometheus", check=False).stdout.strip()
        == "disabled"
    )
    with pytest.raises(urllib.error.URLError):
        ready()


def test_a_related_sender_switches_the_receiver_on_and_its_pushed_samples_arrive(
    unit: Unit, tmp_path: pathlib.Path
):
    machine = unit.machine
    unit.networks["receive-remote-write"] = "127.0.0.1"
    relation = unit.relate("receive-remote-write", "otelcol", units_data={0: {}})

    result = unit.run("relation_joined", relation=relation, remote_unit="otelcol/0")

    assert result.status.name == "active", result.status
    published = json.loads(unit.relation(relation)["local_unit_data"]["remote_write"])
    assert published == {"url": "http://127.0.0.1:9090/api/v1/write"}
    wait_for(ready, what="Prometheus to be ready after the restart")
    argv = machine.run("cat", f"/proc/{main_pid(machine)}/cmdline").stdout.split("\0")
    found = re.search(r"version (\d+)\.(\d+)", machine.run("prometheus", "--version").stdout)
    assert found, "prometheus --version said no version"
    # The archive's own Prometheus runs with the flag the charm chose for it (2.31 on jammy: the
    # feature flag, as 2.31 has no other; noble's 2.45 and Debian's 2.42: the flag of its own).
    wanted = (
        "--enable-feature=remote-write-receiver"
        if (int(found[1]), int(found[2])) < (2, 33)
        else "--web.enable-remote-write-receiver"
    )
    assert [arg for arg in argv if "remote-write-receiver" in arg] == [wanted], argv
    # A real Prometheus (the host's) pushes a sample through the published URL.
    with loopback.metrics_server(b"lab_pushed 7\n") as target_port:
        config = tmp_path / "sender.yml"
        job = {
            "job_name": "pushed",
            "scrape_interval": "1s",
            "static_configs": [
                {"targets": [f"127.0.0.1:{target_port}"], "labels": {"juju_unit": "mysql/0"}}
            ],
        }
        config.write_text(yaml.safe_dump({"scrape_configs": [job], "remote_write": [published]}))
        sender_port = loopback.free_port()
        with subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'sender-data'}",
                f"--web.listen-address=127.0.0.1:{sender_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as sender:
            try:
                pushed = wait_for(
                    lambda: api("/api/v1/query", query="lab_pushed")["data"]["result"],
                    timeout=60,
                    what="the pushed sample in the unit's Prometheus",
                )
            finally:
                sender.terminate()
    assert pushed[0]["metric"]["juju_unit"] == "mysql/0"
    assert pushed[0]["value"][1] == "7"

    result = unit.run("relation_broken", relation=relation)
    unit.unrelate(relation)

    assert result.status.name == "active", result.status
    argv = machine.run("cat", f"/proc/{main_pid(machine)}/cmdline").stdout.split("\0")
    assert not [arg for arg in argv if "remote-write-receiver" in arg], argv


def test_remote_write_with_basic_auth_from_a_secret_reaches_a_store(unit: Unit):
    machine = unit.machine
    seen: list[str | None] = []

    class Store(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append(self.headers.get("Authorization"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Store)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret_id = "secret:d5cc2q7mp25c77b8d3vg"
    unit.secrets.append(
        {
            "id": secret_id,
            "owner": None,
            "tracked_content": {"username": "lab", "password": "pw-2"},
        }
    )
    unit.config["remote-write-urls"] = f"http://127.0.0.1:{server.server_address[1]}/push"
    unit.config["remote-write-credentials"] = secret_id
    try:
        # The archive's promtool checks the rendered remote_write entries (queue settings,
        # password_file, write_relabel_configs) before they go live: active means it took them.
        result = unit.run("config_changed")
        assert result.status == Status("active", "serving 1 scrape job on :9090"), result.status
        wait_for(lambda: seen, timeout=60, what="a first remote write")
    finally:
        server.shutdown()
        server.server_close()

    expected = "Basic " + base64.b64encode(b"lab:pw-2").decode()
    assert set(seen) == {expected}
    password = "/etc/prometheus/juju-remote-write/password"
    assert machine.run("stat", "-c", "%a %U %G", password).stdout.split() == [
        "640",
        "root",
        "prometheus",
    ]
    assert b"pw-2" not in machine.path(CONFIG).read_bytes()
