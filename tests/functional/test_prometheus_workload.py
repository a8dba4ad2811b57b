"""The workload module against the real Prometheus and promtool (no Juju, no systemd).

Files are rendered by the same functions the charm calls, relation data goes through the same
parsers, and Prometheus is started from the flags file exactly as systemd would start it.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import loopback
import metrics_endpoint
import prometheus.config_file
import prometheus.flags
import prometheus.jobs
import prometheus.paths
import prometheus.reload
import prometheus.rules
import prometheus.service
import prometheus.topology
import pytest
import yaml

pytestmark = pytest.mark.skipif(
    not (shutil.which("prometheus") and shutil.which("promtool")),
    reason="needs the prometheus package (apt install prometheus)",
)

LAB = prometheus.topology.Topology("lab", "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f", "prometheus")
APP = prometheus.topology.Topology("lab", LAB.model_uuid, "widgets")


def configure(
    port: int,
    *,
    jobs: Sequence[Mapping[str, Any]] = (),
    rules: Mapping[str, str] | None = None,
    external_url: str = "",
    retention_size: str = "",
) -> prometheus.config_file.Installed:
    """Render and install prometheus.yml and flags the way the charm's reconcile does."""
    prefix = urllib.parse.urlsplit(external_url).path.rstrip("/")
    config = prometheus.config_file.render_config(
        scrape_interval="1s",
        scrape_timeout="1s",
        evaluation_interval="1s",
        external_labels={"site": "lab"},
        scrape_configs=[prometheus.jobs.self_job(port, prefix, LAB.labels("prometheus/0")), *jobs],
    )
    result = prometheus.config_file.install_config(config, rules or {})
    prometheus.flags.write_flags(
        prometheus.flags.flags(
            port=port,
            retention_time="2d",
            retention_size=retention_size,
            external_url=external_url,
            log_level="warn",
        )
    )
    return result


def relation_jobs(metrics_port: int) -> list[dict[str, Any]]:
    """The jobs for a COS metrics-endpoint relation whose one unit serves on `metrics_port`."""
    app_data = {
        "scrape_metadata": json.dumps(
            {
                "model": APP.model,
                "model_uuid": APP.model_uuid,
                "application": APP.application,
                "unit": "widgets/0",
                "charm_name": "widgets",
            }
        ),
        "scrape_jobs": json.dumps(
            [
                {"job_name": "app", "static_configs": [{"targets": [f"*:{metrics_port}"]}]},
            ]
        ),
    }
    units = {
        "widgets/0": {
            "prometheus_scrape_unit_address": "127.0.0.1",
            "prometheus_scrape_unit_name": "widgets/0",
        }
    }
    topology = prometheus.topology.cos_topology(app_data, APP)
    return prometheus.jobs.cos_jobs(app_data, units, topology, scrape_interval="1s")


def target_health(running: Any, job: str) -> str | None:
    health = {t["labels"]["job"]: t["health"] for t in running.targets()}
    return health.get(job)


def test_rendered_files_start_prometheus_under_its_route_prefix(
    paths, start_prometheus, port, wait_for
):
    configure(port, external_url=f"http://localhost:{port}/prom/", retention_size="1024MB")

    running = start_prometheus()

    flags = running.get("/api/v1/status/flags")["data"]
    assert flags["storage.tsdb.retention.time"] == "2d"
    assert flags["storage.tsdb.retention.size"] == "1GiB"
    assert flags["web.route-prefix"] == "/prom"
    assert flags["log.level"] == "warn"
    wait_for(lambda: target_health(running, "prometheus") == "up", what="self-scrape up")
    loaded = yaml.safe_load(running.get("/api/v1/status/config")["data"]["yaml"])
    assert loaded["global"]["external_labels"] == {"site": "lab"}
    [series] = running.query('up{job="prometheus"}')
    assert series["metric"]["juju_unit"] == "prometheus/0"
    # The charm's own checks find it under the prefix: readiness, and a reload's confirmation.
    assert prometheus.service.ready()
    assert 0 < prometheus.reload.reload(timeout=10) < 10


def test_percentage_retention_size_in_bytes_is_accepted(paths, start_prometheus, port):
    size = int(prometheus.flags.tsdb_filesystem_size() * 0.8)
    configure(port, retention_size=f"{size}B")

    running = start_prometheus()

    assert running.get("/api/v1/status/flags")["data"]["storage.tsdb.retention.size"]


def test_target_from_relation_data_is_scraped_with_topology_labels(
    paths, start_prometheus, metrics_server, port, wait_for
):
    jobs = relation_jobs(metrics_server)
    configure(port, jobs=jobs)

    running = start_prometheus()

    [job] = jobs
    wait_for(lambda: target_health(running, job["job_name"]) == "up", what="relation target up")
    [series] = running.query("lab_widgets")
    assert series["value"][1] == "42"
    assert {k: v for k, v in series["metric"].items() if k.startswith("juju_")} == {
        "juju_model": "lab",
        "juju_model_uuid": APP.model_uuid,
        "juju_application": "widgets",
        # scrape_metadata names the charm: COS's Prometheus labels targets with it too.
        "juju_charm": "widgets",
        "juju_unit": "widgets/0",
    }


def test_legacy_http_relation_target_is_scraped(
    paths, start_prometheus, metrics_server, port, wait_for
):
    job = prometheus.jobs.http_job(
        {"web/0": {"private-address": "127.0.0.1", "port": str(metrics_server)}},
        prometheus.topology.Topology("lab", LAB.model_uuid, "web"),
    )
    assert job is not None
    configure(port, jobs=[job])

    running = start_prometheus()

    wait_for(lambda: target_health(running, job["job_name"]) == "up", what="http target up")


def test_changed_config_is_applied_by_reload_signal_in_the_same_process(
    paths, start_prometheus, metrics_server, port, wait_for
):
    configure(port)
    running = start_prometheus()
    pid = running.process.pid
    before = running.get("/api/v1/status/runtimeinfo")["data"]

    jobs = relation_jobs(metrics_server)
    result = configure(port, jobs=jobs)
    seconds = prometheus.reload.reload()

    # reload() returned: Prometheus's own metrics confirmed it. Check the effect independently.
    assert result.changed
    assert 0 < seconds < 10
    loaded = yaml.safe_load(running.get("/api/v1/status/config")["data"]["yaml"])
    assert [job["job_name"] for job in loaded["scrape_configs"]][1:] == [jobs[0]["job_name"]]
    after = running.get("/api/v1/status/runtimeinfo")["data"]
    assert after["reloadConfigSuccess"]
    # The same process, not restarted: the PID that got SIGHUP is alive and started no later.
    assert running.process.pid == pid
    assert running.process.poll() is None
    assert after["startTime"] == before["startTime"]
    wait_for(lambda: running.query("lab_widgets"), what="the new job's series")


@pytest.mark.parametrize("path", ["/-/quit", "/-/reload"])
def test_lifecycle_endpoints_are_refused_and_prometheus_keeps_running(
    paths, start_prometheus, port, path
):
    configure(port)
    running = start_prometheus()

    request = urllib.request.Request(f"{running.base_url}{path}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)

    assert refused.value.code == 403  # "Lifecycle API is not enabled."
    time.sleep(0.5)  # a quit would take effect at once
    assert running.process.poll() is None
    assert "Ready" in running.get("/-/ready")


def test_the_charms_file_and_pyyamls_block_yaml_of_it_are_one_config_promtool_accepts(paths):
    units = {f"w/{n}": {"prometheus_scrape_unit_address": f"10.0.0.{n}"} for n in range(50)}
    job = {"static_configs": [{"targets": ["*:80"], "labels": {"note": "x: 'y' \"z\" #"}}]}
    charms = prometheus.config_file.render_config(
        scrape_interval="15s",
        scrape_timeout="10s",
        evaluation_interval="15s",
        external_labels={"site": "lab", "empty": "", "yes": "true"},
        scrape_configs=[
            # An operator's job, with a bool, among the charm's own.
            {"job_name": "own", "sample_limit": 10, "honor_labels": True, "params": {}},
            *prometheus.jobs.cos_jobs(
                {"scrape_jobs": json.dumps([job])}, units, APP, scrape_interval="15s"
            ),
        ],
    )
    # The same configuration as block YAML, as the charm wrote it before it wrote JSON (the live
    # file a charm upgrade finds, and must still count the jobs of).
    block = prometheus.paths.HEADER + yaml.safe_dump(yaml.safe_load(charms), sort_keys=False)

    assert yaml.safe_load(block) == yaml.safe_load(charms)
    for text in (charms, block):
        assert prometheus.config_file.install_config(text, {}).changed
        assert prometheus.config_file.check_live_config() is None
        assert prometheus.config_file.job_count() == 51


def test_unchanged_config_writes_nothing(paths, port):
    configure(port)
    config_mtime = paths.config.stat().st_mtime_ns
    flags_mtime = paths.defaults.stat().st_mtime_ns
    time.sleep(0.01)

    result = configure(port)

    assert not result.changed
    assert paths.config.stat().st_mtime_ns == config_mtime
    assert paths.defaults.stat().st_mtime_ns == flags_mtime


GROUP_A = "groups:\n- name: a\n  rules:\n  - alert: A\n    expr: up == 0\n"
GROUP_B = "groups:\n- name: a\n  rules:\n  - alert: B\n    expr: up == 2\n"


def test_a_change_to_the_rules_alone_is_a_change(paths, port):
    configure(port, rules={"juju_a.rules": GROUP_A})
    config_mtime = paths.config.stat().st_mtime_ns

    result = configure(port, rules={"juju_a.rules": GROUP_B})

    assert result.changed  # so the charm reloads Prometheus
    assert (paths.rules_dir / "juju_a.rules").read_text() == GROUP_B
    assert paths.config.stat().st_mtime_ns == config_mtime


def test_a_refused_rule_file_alone_changes_nothing(paths, port):
    configure(port, rules={"juju_a.rules": GROUP_A})

    result = configure(port, rules={"juju_a.rules": GROUP_A, "juju_b.rules": "groups: ["})

    assert not result.changed  # nothing to reload for
    assert list(result.rejected_rules) == ["juju_b.rules"]
    assert sorted(p.name for p in paths.rules_dir.iterdir()) == ["juju_a.rules"]


def test_files_are_replaced_in_place_when_the_temp_dir_is_another_filesystem(
    paths, port, monkeypatch
):
    # A lab machine may mount /tmp as tmpfs: a file staged there cannot be renamed into /etc.
    other = pathlib.Path("/dev/shm")
    paths.config_dir.mkdir(parents=True)
    if not other.is_dir() or other.stat().st_dev == paths.config_dir.stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's files")
    with tempfile.TemporaryDirectory(dir=other) as elsewhere:
        monkeypatch.setattr(tempfile, "tempdir", elsewhere)

        result = configure(port, rules={"juju_a.rules": GROUP_A})

    assert result.changed
    assert (paths.rules_dir / "juju_a.rules").read_text() == GROUP_A
    assert prometheus.config_file.check_live_config() is None


def cos_relation(topology: prometheus.topology.Topology, target_port: int, **app_data: str):
    """The jobs and rules of a COS metrics-endpoint relation with one unit on 127.0.0.1."""
    data = {
        "scrape_metadata": json.dumps(
            {
                "model": topology.model,
                "model_uuid": topology.model_uuid,
                "application": topology.application,
                "unit": f"{topology.application}/0",
                "charm_name": topology.application,
            }
        ),
        "scrape_jobs": json.dumps(
            [{"job_name": "app", "static_configs": [{"targets": [f"*:{target_port}"]}]}]
        ),
        **app_data,
    }
    units = {f"{topology.application}/0": {"prometheus_scrape_unit_address": "127.0.0.1"}}
    declared = prometheus.topology.cos_topology(data, topology)
    return (
        prometheus.jobs.cos_jobs(data, units, declared, scrape_interval="1s"),
        prometheus.rules.cos_rules(data, declared),
    )


def test_rules_as_cos_sends_them_load_scoped_and_fire_only_for_their_application(
    paths, start_prometheus, port, wait_for
):
    # The wire format of canonical/prometheus-k8s-operator's prometheus_scrape provider (via
    # cosl's AlertRules): groups named <model>_<uuid8>_<app>_<name>_rules, every rule labelled
    # with juju_model, juju_model_uuid, juju_application and juju_charm; expressions as written
    # (`up < 1`, COS's own HostDown) or already scoped by the provider's cos-tool.
    labels = {**APP.labels(), "juju_charm": "widgets"}
    alert_rules = {
        "groups": [
            {
                "name": "lab_2f5e6d0a_widgets_HostHealth_rules",
                "rules": [
                    {
                        "alert": "HostDown",
                        "expr": "up < 1",
                        "for": "0s",  # COS sends 5m; 0s so that it fires within the test
                        "labels": {"severity": "critical", **labels},
                        "annotations": {"summary": "Host '{{ $labels.instance }}' is down."},
                    },
                    {
                        "alert": "HostMetricsMissing",
                        "expr": "absent(up)",
                        "for": "0s",
                        "labels": {"severity": "warning", **labels},
                    },
                ],
            },
            {
                "name": "lab_2f5e6d0a_widgets_app_rules",
                "rules": [
                    {
                        "record": "widgets:up:avg",
                        "expr": 'avg(up{juju_application="widgets",juju_model="lab",'
                        f'juju_model_uuid="{APP.model_uuid}"}})',
                        "labels": labels,
                    }
                ],
            },
        ]
    }
    # Two applications whose targets are both down: nothing listens on these ports.
    widgets_port, db_port = loopback.free_port(), loopback.free_port()
    widgets_jobs, rules = cos_relation(APP, widgets_port, alert_rules=json.dumps(alert_rules))
    db_jobs, _ = cos_relation(prometheus.topology.Topology("lab", APP.model_uuid, "db"), db_port)
    assert rules.left_out == 0
    configure(
        port,
        jobs=[*widgets_jobs, *db_jobs],
        rules={
            "juju_lab_2f5e6d0a_widgets.rules": prometheus.config_file.render_rules(
                {"groups": rules.groups}
            )
        },
    )

    running = start_prometheus()

    loaded = {
        rule["name"]: rule
        for group in running.get("/api/v1/rules")["data"]["groups"]
        for rule in group["rules"]
    }
    assert set(loaded) == {"HostDown", "HostMetricsMissing", "widgets:up:avg"}
    # As Prometheus prints a selector: matchers in name order.
    scope = f'juju_application="widgets",juju_model="lab",juju_model_uuid="{APP.model_uuid}"'
    assert loaded["HostDown"]["query"] == f"up{{{scope}}} < 1"
    assert loaded["HostMetricsMissing"]["query"] == f"absent(up{{{scope}}})"
    assert loaded["HostDown"]["labels"] == {"severity": "critical", **labels}

    # Both targets are down, so an unscoped `up < 1` would fire twice.
    def up_by_instance() -> dict[str, str]:
        return {r["metric"]["instance"]: r["value"][1] for r in running.query("up")}

    down = {f"127.0.0.1:{widgets_port}": "0", f"127.0.0.1:{db_port}": "0"}
    try:
        wait_for(lambda: down.items() <= up_by_instance().items(), timeout=30, what="both down")
    except pytest.fail.Exception:
        pytest.fail(f"both targets were not down within 30 s; up by instance: {up_by_instance()}")
    firing = wait_for(
        lambda: [
            a for a in running.get("/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"
        ],
        timeout=30,
        what="HostDown to fire",
    )
    time.sleep(2)  # two more evaluations: nothing else may start firing
    alerts = running.get("/api/v1/alerts")["data"]["alerts"]
    assert [(a["labels"]["alertname"], a["labels"]["instance"]) for a in alerts] == [
        ("HostDown", f"127.0.0.1:{widgets_port}")
    ]
    assert firing[0]["labels"]["juju_application"] == "widgets"
    [record] = wait_for(lambda: running.query("widgets:up:avg"), what="the recording rule")
    assert record["value"][1] == "0"


def test_the_node_exporter_charms_rules_are_all_kept_by_this_charms_parser():
    sender = metrics_endpoint.Topology("lab", APP.model_uuid, "node", "node/0", "node-exporter")
    app_data = metrics_endpoint.app_data(sender, 9100)  # as its leader writes it
    sent = [r["alert"] for g in metrics_endpoint.alert_rules(sender)["groups"] for r in g["rules"]]

    rules = prometheus.rules.cos_rules(app_data, prometheus.topology.cos_topology(app_data, APP))

    assert rules.left_out == 0
    assert [rule["alert"] for group in rules.groups for rule in group["rules"]] == sent
    for rule in (rule for group in rules.groups for rule in group["rules"]):
        assert rule["labels"]["juju_application"] == "node"
        assert rule["labels"]["juju_charm"] == "node-exporter"


def test_promtool_rejection_keeps_the_live_files(paths, port):
    configure(port)
    before = paths.config.read_text()
    # The operator's own scrape-jobs are only shape-checked by the charm: promtool judges them.
    bad_job = {
        "job_name": "slow",
        "scrape_interval": "5s",
        "scrape_timeout": "30s",
        "static_configs": [{"targets": ["localhost:1"]}],
    }

    with pytest.raises(
        prometheus.config_file.ConfigError, match="scrape timeout greater than scrape"
    ):
        configure(port, jobs=[bad_job])

    assert paths.config.read_text() == before
    assert prometheus.config_file.check_live_config() is None


def test_promtool_rejects_unknown_keys_and_bad_targets(paths, port):
    configure(port)

    for bad_job in (
        {"job_name": "x", "no_such_key": 1, "static_configs": [{"targets": ["a:1"]}]},
        {"job_name": "x", "static_configs": [{"targets": ["a:1/path"]}]},
    ):
        with pytest.raises(prometheus.config_file.ConfigError):
            configure(port, jobs=[bad_job])


@pytest.mark.parametrize(
    ("global_settings", "job"),
    [
        pytest.param(
            {"scrape_interval": "15s", "scrape_timeout": "20s"}, {}, id="timeout>interval"
        ),
        pytest.param({"scrape_interval": "1.5m"}, {}, id="fractional duration"),
        pytest.param({"external_labels": {"1site": "lab"}}, {}, id="bad label name"),
        pytest.param({}, {"scrape_interval": "5s", "scrape_timeout": "6s"}, id="job timeout"),
        pytest.param(
            {},
            {"static_configs": [{"targets": ["a:1"], "labels": {"a-b": "c"}}]},
            id="bad target label name",
        ),
    ],
)
def test_promtool_refuses_what_the_charm_refuses(paths, global_settings, job):
    """The charm's own checks mirror Prometheus's rules: promtool says no to the same things."""
    config = {
        "global": {"scrape_interval": "15s", "scrape_timeout": "10s", **global_settings},
        "scrape_configs": [
            {"job_name": "x", "static_configs": [{"targets": ["a:1"]}], **job},
        ],
    }

    with pytest.raises(prometheus.config_file.ConfigError):
        prometheus.config_file.install_config(yaml.safe_dump(config), {})

    assert not paths.config.exists()


def test_duplicate_job_names_are_refused_by_promtool(paths):
    job = {"job_name": "x", "static_configs": [{"targets": ["a:1"]}]}

    with pytest.raises(prometheus.config_file.ConfigError, match="found multiple scrape configs"):
        prometheus.config_file.install_config(yaml.safe_dump({"scrape_configs": [job, job]}), {})


def test_rule_file_with_bad_promql_is_left_out_and_the_rest_installed(paths, port):
    good = prometheus.config_file.render_rules(
        {
            "groups": [
                {"name": "g", "rules": [{"record": "job:up:sum", "expr": "sum by (job) (up)"}]}
            ]
        }
    )
    bad = prometheus.config_file.render_rules(
        {"groups": [{"name": "g", "rules": [{"alert": "Broken", "expr": "up =="}]}]}
    )

    result = configure(port, rules={"good.rules": good, "bad.rules": bad})

    assert set(result.rejected_rules) == {"bad.rules"}
    assert "parse error" in result.rejected_rules["bad.rules"]
    assert sorted(p.name for p in paths.rules_dir.iterdir()) == ["good.rules"]
    assert prometheus.config_file.check_live_config() is None


def test_stale_rule_files_are_removed(paths, port):
    rules = prometheus.config_file.render_rules(
        {
            "groups": [
                {"name": "g", "rules": [{"record": "job:up:sum", "expr": "sum by (job) (up)"}]}
            ]
        }
    )
    configure(port, rules={"juju_gone.rules": rules})

    result = configure(port, rules={})

    assert result.changed
    assert list(paths.rules_dir.iterdir()) == []


def test_validate_reports_a_broken_live_file(paths, port):
    configure(port)
    paths.config.write_text("global: [not, a, mapping]\n")

    error = prometheus.config_file.check_live_config()

    # promtool's complaint as one line, without its "FAILED:" prefix.
    assert error is not None
    assert error.startswith("parsing YAML file prometheus.yml: ")
    assert "cannot unmarshal !!seq" in error
    assert "\n" not in error


def test_reload_refused_by_prometheus_raises_its_reason(paths, start_prometheus, port):
    configure(port)
    running = start_prometheus()
    # Only a file changed behind the charm's back can get past promtool into a reload.
    paths.config.write_text("global: [not, a, mapping]\n")

    with pytest.raises(prometheus.reload.ReloadError) as refused:
        prometheus.reload.reload(timeout=10)

    assert str(refused.value).startswith("couldn't load configuration")
    assert "cannot unmarshal !!seq" in str(refused.value)
    assert running.process.poll() is None


def test_a_second_refused_reload_is_told_from_one_not_done_yet(paths, start_prometheus, port):
    configure(port)
    start_prometheus()
    paths.config.write_text("global: [not, a, mapping]\n")
    with pytest.raises(prometheus.reload.ReloadError, match="couldn't load configuration"):
        prometheus.reload.reload(timeout=10)
    # prometheus_config_last_reload_successful is 0 already: no metric changes this time.
    paths.config.write_text("global: {scrape_interval: often}\n")

    with pytest.raises(prometheus.reload.ReloadError) as again:
        prometheus.reload.reload(timeout=10)

    assert "not a valid duration string" in str(again.value)


def test_a_reload_after_a_refused_one_is_confirmed_when_it_works(paths, start_prometheus, port):
    configure(port)
    running = start_prometheus()
    good = paths.config.read_text()
    paths.config.write_text("global: [not, a, mapping]\n")
    with pytest.raises(prometheus.reload.ReloadError):
        prometheus.reload.reload(timeout=10)
    paths.config.write_text(good)

    prometheus.reload.reload(timeout=10)

    assert running.get("/api/v1/status/runtimeinfo")["data"]["reloadConfigSuccess"]


def test_a_signal_that_never_reaches_prometheus_is_not_taken_for_a_reload(
    paths, start_prometheus, port, monkeypatch
):
    # systemd said yes but Prometheus got nothing (ExecReload aimed elsewhere): its metrics still
    # show the last reload, successful and old. That is no confirmation of this one.
    configure(port)
    running = start_prometheus()
    monkeypatch.setattr(prometheus.reload, "signal_reload", lambda: None)

    with pytest.raises(prometheus.reload.ReloadError) as unconfirmed:
        prometheus.reload.reload(timeout=1)

    assert str(unconfirmed.value) == (
        "Prometheus did not confirm the reload within 1s (see journalctl -u prometheus)"
    )
    assert running.get("/api/v1/status/runtimeinfo")["data"]["reloadConfigSuccess"]


def test_a_reload_systemctl_cannot_deliver_is_a_reload_error_with_its_words(
    paths, start_prometheus, port, monkeypatch
):
    # The service died between the hook's health check and the reload (seen on a real machine
    # in systemd's restart loop): the hook must not crash on it.
    configure(port)
    start_prometheus()

    def refuse() -> None:
        raise prometheus.reload.systemd.SystemdError(
            "Command ['systemctl', 'reload', 'prometheus'] failed with returncode 1. systemctl"
            " output:\nstdout: \nstderr: prometheus.service is not active, cannot reload.\n"
        )

    monkeypatch.setattr(prometheus.reload, "signal_reload", refuse)

    with pytest.raises(prometheus.reload.ReloadError) as refused:
        prometheus.reload.reload(timeout=1)

    assert str(refused.value) == (
        "systemctl could not reload prometheus: prometheus.service is not active, cannot reload."
    )


def test_a_rule_file_prometheus_cannot_load_is_the_reason_given(paths, start_prometheus, port):
    configure(port)
    start_prometheus()
    # promtool passed it; Prometheus cannot read it (as when permissions are wrong).
    unreadable = paths.rules_dir / "juju_x.rules"
    unreadable.write_text("groups: [")

    with pytest.raises(prometheus.reload.ReloadError) as refused:
        prometheus.reload.reload(timeout=10)

    assert "juju_x.rules" in str(refused.value)


def test_hostile_relation_strings_cannot_inject_yaml(paths, port):
    app_data = {
        "scrape_jobs": json.dumps(
            [
                {
                    "job_name": "ok",
                    "metrics_path": "/m'etrics\"",
                    "static_configs": [
                        {
                            "targets": ["*:9100"],
                            "labels": {
                                "note": 'x"\n- job_name: evil',
                                "quote": '": {}, [& *a !!python',
                            },
                        }
                    ],
                }
            ]
        ),
    }
    units = {"widgets/0": {"prometheus_scrape_unit_address": "127.0.0.1"}}
    jobs = prometheus.jobs.cos_jobs(app_data, units, APP, scrape_interval="1s")
    label_only = {
        "scrape_jobs": json.dumps(
            [
                {
                    "job_name": "ok",
                    "static_configs": [
                        {
                            "targets": ["*:9100"],
                            "labels": {"quote": '": {}, [& *a !!python/object'},
                        }
                    ],
                }
            ]
        ),
    }
    jobs += prometheus.jobs.cos_jobs(label_only, units, APP, scrape_interval="1s")

    configure(port, jobs=jobs)

    rendered = yaml.safe_load(paths.config.read_text())
    names = [job["job_name"] for job in rendered["scrape_configs"]]
    assert names == ["prometheus", "juju_lab_2f5e6d0a_widgets_prometheus_scrape_ok-0"]
    labels = rendered["scrape_configs"][1]["static_configs"][0]["labels"]
    assert labels["quote"] == '": {}, [& *a !!python/object'
    assert prometheus.config_file.check_live_config() is None


def test_version_comes_from_the_binary():
    version = prometheus.service.version()

    assert version is not None
    assert version[0].isdigit()


def test_filesystem_size_of_a_tsdb_not_created_yet(paths):
    assert not paths.tsdb.exists()

    size = prometheus.flags.tsdb_filesystem_size()

    stat = os.statvfs(paths.config_dir.parents[1])
    assert size == stat.f_blocks * stat.f_frsize


def test_installed_sees_the_package():
    assert prometheus.service.installed()


@pytest.mark.parametrize(
    ("size", "shown"),
    [("512KB", "512KiB"), ("500MB", "500MiB"), ("3PB", "3PiB"), ("7EB", "7EiB")],
)
def test_each_size_unit_the_option_takes_starts_prometheus(
    paths, start_prometheus, port, size, shown
):
    configure(port, retention_size=size)

    running = start_prometheus()

    assert running.get("/api/v1/status/flags")["data"]["storage.tsdb.retention.size"] == shown


def test_job_count_reads_the_live_file(paths, port):
    assert prometheus.config_file.job_count() == 0  # nothing installed yet

    configure(port, jobs=relation_jobs(port + 1))

    # The self-scrape job and the relation's one unit job.
    assert prometheus.config_file.job_count() == 2


def test_8eb_is_read_as_a_negative_size_which_is_why_the_option_refuses_it(
    paths, start_prometheus, port
):
    configure(port, retention_size="8EB")

    running = start_prometheus()

    assert running.get("/api/v1/status/flags")["data"]["storage.tsdb.retention.size"] == "-8EiB"
