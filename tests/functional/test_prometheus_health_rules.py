"""Prometheus's own health rules, as the charm loads them, under the real `promtool test rules`.

The rules file ships with the charm (charms/prometheus/src/prometheus_alert_rules/), its
selectors marked `%%juju_topology%%`; it is rendered for a Prometheus application here as the
charm renders it, then promtool evaluates it over synthetic series and says which alerts fire
with which labels: the rules are checked against Prometheus's own evaluator, not a belief.
"""

from __future__ import annotations

import pathlib
import subprocess
from typing import Any

import pytest
import yaml
from lab_monitoring.interfaces import prometheus_scrape

RULES = (
    pathlib.Path(__file__).parents[2]
    / "charms"
    / "prometheus"
    / "src"
    / "prometheus_alert_rules"
    / "prometheus.rules"
)
UUID = "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"
ME = prometheus_scrape.Topology("lab", UUID, "prometheus", "prometheus/0", "prometheus")
# The labels of this Prometheus's own series (its self-scrape job) and of its alerts.
SELF = f'juju_model="lab",juju_model_uuid="{UUID}",juju_application="prometheus"'
ALERT_LABELS = ME.rule_labels


def promtool_test(
    tmp_path: pathlib.Path, tests: list[dict[str, Any]], *, annotations: bool = False
) -> str:
    """Run `promtool test rules` on the rendered rules; return its output (fail if it fails).

    promtool compares annotations exactly; unless `annotations`, they are left out of the
    rules so that a test pins when an alert fires and with which labels, not its wording.
    """
    rules = prometheus_scrape.rules_from_files([RULES], ME)
    if not annotations:
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
    return result.stdout


def test_the_rendered_rules_pass_promtool_check(tmp_path):
    (tmp_path / "rules.yml").write_text(
        yaml.safe_dump(prometheus_scrape.rules_from_files([RULES], ME))
    )

    result = subprocess.run(
        ["promtool", "check", "rules", "rules.yml"], cwd=tmp_path, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_the_watchdog_always_fires_with_this_prometheus_s_topology(tmp_path):
    promtool_test(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [],
                "alert_rule_test": [
                    {
                        "eval_time": "1m",
                        "alertname": "Watchdog",
                        "exp_alerts": [{"exp_labels": {"severity": "none", **ALERT_LABELS}}],
                    }
                ],
            }
        ],
    )


def test_targets_down_alert_once_unless_their_own_charm_alerts_on_them(tmp_path):
    node = (
        f'juju_model="lab",juju_model_uuid="{UUID}",juju_application="node",'
        'job="juju_lab_2f5e6d0a_node_prometheus_scrape_node-0",instance="10.0.0.5:9100"'
    )
    web = SELF.replace('"prometheus"', '"web"')
    promtool_test(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    # The operator's own scrape-jobs entry: no juju_* labels.
                    {"series": 'up{job="site",instance="10.0.0.9:9100"}', "values": "0x10"},
                    # A legacy `target` relation's job.
                    {
                        "series": f'up{{job="juju_lab_2f5e6d0a_web_target",{web},'
                        'instance="10.0.0.7:80"}',
                        "values": "0x10",
                    },
                    # node-exporter's target: its charm sends NodeDown; no second alert here.
                    {"series": f"up{{{node}}}", "values": "0x10"},
                    # This Prometheus scraping itself: fine.
                    {"series": f'up{{job="prometheus",{SELF}}}', "values": "1x10"},
                ],
                "alert_rule_test": [
                    {"eval_time": "4m", "alertname": "PrometheusTargetDown", "exp_alerts": []},
                    {
                        "eval_time": "6m",
                        "alertname": "PrometheusTargetDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "job": "site",
                                    "instance": "10.0.0.9:9100",
                                    **ALERT_LABELS,
                                }
                            },
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "job": "juju_lab_2f5e6d0a_web_target",
                                    "instance": "10.0.0.7:80",
                                    **ALERT_LABELS,
                                }
                            },
                        ],
                    },
                ],
            }
        ],
    )


@pytest.mark.parametrize(
    ("alertname", "series", "values", "eval_time", "severity"),
    [
        ("PrometheusRuleEvaluationFailures", "prometheus_rule_evaluation_failures_total",
         "0+1x10", "5m", "warning"),
        ("PrometheusNotificationsFailing", "prometheus_notifications_errors_total",
         "0+1x30", "20m", "critical"),
        ("PrometheusNotificationsDropped", "prometheus_notifications_dropped_total",
         "0+2x30", "15m", "warning"),
        ("PrometheusTSDBCompactionsFailing", "prometheus_tsdb_compactions_failed_total",
         "0 1x200", "2h", "warning"),
        ("PrometheusConfigReloadFailed", "prometheus_config_last_reload_successful",
         "0x30", "15m", "warning"),
    ],
)  # fmt: skip
def test_each_health_rule_fires_on_its_own_prometheus_s_trouble(
    tmp_path, alertname, series, values, eval_time, severity
):
    mine = f'{series}{{job="prometheus",instance="localhost:9090",{SELF}}}'
    # Another application's Prometheus in the same model: not this one's trouble.
    other = mine.replace('juju_application="prometheus"', 'juju_application="other"')
    # Both have an Alertmanager (only PrometheusNotificationsDropped asks).
    discovered = mine.replace(series, "prometheus_notifications_alertmanagers_discovered", 1)
    other_discovered = discovered.replace(
        'juju_application="prometheus"', 'juju_application="other"'
    )
    promtool_test(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    {"series": mine, "values": values},
                    {"series": other, "values": values},
                    {"series": discovered, "values": "1x30"},
                    {"series": other_discovered, "values": "1x30"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": eval_time,
                        "alertname": alertname,
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": severity,
                                    "job": "prometheus",
                                    "instance": "localhost:9090",
                                    **ALERT_LABELS,
                                }
                            }
                        ],
                    }
                ],
            }
        ],
    )


@pytest.mark.parametrize(
    ("discovered", "values", "eval_time"),
    [
        ("0x30", "0+2x30", "20m"),  # no Alertmanager: every alert counts as dropped
        ("1x30", "0 0 0 2 2x30", "6m"),  # two dropped once, after a start: the resend delivers
    ],
)
def test_dropped_notifications_alert_only_when_an_alertmanager_keeps_missing_them(
    tmp_path, discovered, values, eval_time
):
    labels = f'job="prometheus",instance="localhost:9090",{SELF}'
    promtool_test(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": f"prometheus_notifications_dropped_total{{{labels}}}",
                        "values": values,
                    },
                    {
                        "series": f"prometheus_notifications_alertmanagers_discovered{{{labels}}}",
                        "values": discovered,
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": eval_time,
                        "alertname": "PrometheusNotificationsDropped",
                        "exp_alerts": [],
                    }
                ],
            }
        ],
    )


def test_a_healthy_prometheus_raises_nothing_but_the_watchdog(tmp_path):
    healthy = [
        ("prometheus_rule_evaluation_failures_total", "0x30"),
        ("prometheus_notifications_errors_total", "0x30"),
        ("prometheus_notifications_dropped_total", "0x30"),
        ("prometheus_tsdb_compactions_failed_total", "0x30"),
        ("prometheus_config_last_reload_successful", "1x30"),
        ("up", "1x30"),
    ]
    names = [
        "PrometheusTargetDown",
        "PrometheusRuleEvaluationFailures",
        "PrometheusNotificationsFailing",
        "PrometheusNotificationsDropped",
        "PrometheusTSDBCompactionsFailing",
        "PrometheusConfigReloadFailed",
    ]
    promtool_test(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'{name}{{job="prometheus",{SELF}}}', "values": values}
                    for name, values in healthy
                ],
                "alert_rule_test": [
                    {"eval_time": "25m", "alertname": name, "exp_alerts": []} for name in names
                ],
            }
        ],
    )


def test_annotations_render_with_the_alert_s_own_labels(tmp_path):
    promtool_test(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'up{job="site",instance="10.0.0.9:9100"}', "values": "0x10"}
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "6m",
                        "alertname": "PrometheusTargetDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "job": "site",
                                    "instance": "10.0.0.9:9100",
                                    **ALERT_LABELS,
                                },
                                "exp_annotations": {
                                    "summary": "10.0.0.9:9100 (site) is down",
                                    "description": (
                                        "Prometheus has not been able to scrape 10.0.0.9:9100"
                                        " of job site for 5 minutes: the service is down,"
                                        " unreachable or serves no metrics at that path."
                                    ),
                                },
                            }
                        ],
                    }
                ],
            }
        ],
        annotations=True,
    )
