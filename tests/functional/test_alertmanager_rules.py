"""Alertmanager's alert rules, as the charm sends them, under the real promtool and Alertmanager.

The rules file ships with the charm (charms/alertmanager/src/prometheus_alert_rules/), its
selectors marked `%%juju_topology%%`; it is rendered for an Alertmanager application as the
charm renders it, then `promtool test rules` evaluates it over synthetic series. The series the
rules read are checked on a real Alertmanager too: their names, their labels, and that they move
when a notification fails or a reload is refused.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import time
from typing import Any

import alertmanager_processes as am
import pytest
import standins
import yaml
from alertmanager import paths, service
from lab_monitoring.interfaces import prometheus_scrape

RULES = (
    am.ROOT / "charms" / "alertmanager" / "src" / "prometheus_alert_rules" / "alertmanager.rules"
)
UUID = "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"
ME = prometheus_scrape.Topology("lab", UUID, "alertmanager", "alertmanager/0", "alertmanager")
SELF = f'juju_model="lab",juju_model_uuid="{UUID}",juju_application="alertmanager"'
OTHER = SELF.replace('"alertmanager"', '"other-am"')

needs_promtool = pytest.mark.skipif(not shutil.which("promtool"), reason="needs promtool")


def promtool_test(tmp_path: pathlib.Path, tests: list[dict[str, Any]]) -> None:
    """Run `promtool test rules` on the rendered rules (annotations left out); fail if it fails."""
    rules = prometheus_scrape.rules_from_files([RULES], ME)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    (tmp_path / "test.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests})
    )
    result = subprocess.run(
        ["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_the_rendered_rules_pass_promtool_check(tmp_path):
    (tmp_path / "rules.yml").write_text(
        yaml.safe_dump(prometheus_scrape.rules_from_files([RULES], ME))
    )

    result = subprocess.run(
        ["promtool", "check", "rules", "rules.yml"], cwd=tmp_path, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rules found" in result.stdout


@needs_promtool
def test_failing_notifications_alert_after_ten_minutes_for_this_application_only(tmp_path):
    name = "alertmanager_notifications_failed_total"
    unit = f'{SELF},juju_unit="alertmanager/0"'
    failing = f'{name}{{{unit},integration="webhook"}}'
    fine = f'{name}{{{unit},integration="email"}}'
    elsewhere = f'{name}{{{OTHER},integration="webhook"}}'
    promtool_test(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    {"series": failing, "values": "0+1x30"},
                    {"series": fine, "values": "0x30"},
                    {"series": elsewhere, "values": "0+1x30"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "8m",
                        "alertname": "AlertmanagerNotificationsFailing",
                        "exp_alerts": [],
                    },
                    {
                        "eval_time": "15m",
                        "alertname": "AlertmanagerNotificationsFailing",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    **ME.rule_labels,
                                    "juju_unit": "alertmanager/0",
                                    "integration": "webhook",
                                    "severity": "warning",
                                }
                            }
                        ],
                    },
                ],
            }
        ],
    )


@needs_promtool
def test_a_refused_reload_alerts_after_five_minutes_and_clears_when_one_works(tmp_path):
    series = f'alertmanager_config_last_reload_successful{{{SELF},juju_unit="alertmanager/0"}}'
    promtool_test(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    {"series": series, "values": "1 1 0 0 0 0 0 0 0 1 1"},
                    {
                        "series": f"alertmanager_config_last_reload_successful{{{OTHER}}}",
                        "values": "0x10",
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "5m",
                        "alertname": "AlertmanagerConfigReloadFailing",
                        "exp_alerts": [],
                    },
                    {
                        "eval_time": "7m",
                        "alertname": "AlertmanagerConfigReloadFailing",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    **ME.rule_labels,
                                    "juju_unit": "alertmanager/0",
                                    "severity": "warning",
                                }
                            }
                        ],
                    },
                    {
                        "eval_time": "10m",
                        "alertname": "AlertmanagerConfigReloadFailing",
                        "exp_alerts": [],
                    },
                ],
            }
        ],
    )


def failed_notifications(running: am.RunningAlertmanager) -> dict[str, float]:
    """alertmanager_notifications_failed_total by integration, from the real /metrics page."""
    found = {}
    for line in running.get("/metrics").splitlines():
        if line.startswith("alertmanager_notifications_failed_total{"):
            labels, _, value = line.rpartition(" ")
            integration = labels.split('integration="', 1)[1].split('"', 1)[0]
            found[integration] = float(value)
    return found


@am.needs_alertmanager
def test_the_series_the_rules_read_move_on_a_real_alertmanager(tmp_path, monkeypatch, port):
    monkeypatch.setattr(paths, "PATHS", am.local_paths(tmp_path))
    # A webhook nobody listens on: every notification fails.
    am.configure(port, am.webhook_config(f"http://127.0.0.1:{am.free_port()}/hook"))
    log = tmp_path / "alertmanager.log"
    with am.start_from_flags(log) as running:
        monkeypatch.setattr(service, "signal_reload", standins.sighup(lambda: running.process.pid))
        monkeypatch.setattr(service, "journal", standins.journal_of(log))
        # Every integration's counter exists from the start, at 0.
        assert failed_notifications(running)["webhook"] == 0
        assert running.metric("alertmanager_config_last_reload_successful") == 1

        running.post_alerts([am.alert("LabDoorOpen")])
        am.wait_for(
            lambda: failed_notifications(running)["webhook"] > 0,
            timeout=60,
            what="a failed webhook notification to be counted",
        )
        paths.PATHS.config.write_text("route: {receiver: nope}\nreceivers: [{name: x}]\n")
        with pytest.raises(service.ReloadError):
            service.reload(timeout=10)
        time.sleep(0.1)

        assert running.metric("alertmanager_config_last_reload_successful") == 0
