"""Alerts reach a receiver: pushed to a real Alertmanager, and fired by a real Prometheus rule.

The Alertmanager runs the charm's files and flags with an operator config-file whose one
receiver is a webhook of the test's own on loopback. The Prometheus is Debian's, configured
with the `alerting.alertmanagers` that lab_monitoring's alertmanager_dispatch requirer builds
from the databag this charm's provider writes: the wire format is checked end to end.
"""

from __future__ import annotations

import contextlib
import datetime
import pathlib
import shutil
import time
from collections.abc import Iterator

import alertmanager_processes as am
import pytest
import yaml
from alertmanager import paths
from lab_monitoring.interfaces import alertmanager_dispatch

pytestmark = [am.needs_alertmanager, pytest.mark.slow]


@pytest.fixture
def live(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> paths.Paths:
    where = am.local_paths(tmp_path / "alertmanager")
    monkeypatch.setattr(paths, "PATHS", where)
    return where


@pytest.fixture
def webhook() -> Iterator[am.Webhook]:
    with am.Webhook() as receiver:
        yield receiver


@pytest.fixture
def alertmanager(live, webhook, port, tmp_path) -> Iterator[am.RunningAlertmanager]:
    """The charm's Alertmanager, alone, under a route prefix, notifying the test's webhook."""
    am.configure(port, am.webhook_config(webhook.url), external_url=f"http://localhost:{port}/am/")
    with am.start_from_flags(tmp_path / "alertmanager.log") as running:
        yield running


def test_a_pushed_alert_notifies_once_and_its_resolution_once(alertmanager, webhook):
    pushed = time.time()
    alertmanager.post_alerts([am.alert("LabDiskFull", juju_application="storage")])

    firing = am.wait_for(lambda: webhook.of("firing"), what="the firing notification")
    alertmanager.post_alerts([am.alert("LabDiskFull", resolved=True, juju_application="storage")])
    resolved = am.wait_for(lambda: webhook.of("resolved"), what="the resolved notification")
    time.sleep(3)  # three group intervals: a second notification of either would have come

    assert len(webhook.of("firing")) == 1
    assert len(webhook.of("resolved")) == 1
    [alert] = firing[0].body["alerts"]
    assert alert["labels"] == {"alertname": "LabDiskFull", "juju_application": "storage"}
    assert resolved[0].body["alerts"][0]["status"] == "resolved"
    # Links in notifications point where web-external-url says users reach Alertmanager.
    assert firing[0].body["externalURL"].endswith("/am")
    print(
        f"\npushed alert: firing delivered after {firing[0].at - pushed:.2f}s,"
        f" deliveries: {len(webhook.of('firing'))} firing, {len(webhook.of('resolved'))} resolved"
    )


@contextlib.contextmanager
def prometheus(tmp: pathlib.Path, run_process, target: str, alerting: list[dict]) -> Iterator[str]:
    """A Prometheus scraping `target` every second, with one rule, sending to `alerting`."""
    address = f"127.0.0.1:{am.free_port()}"
    (tmp / "rules.yml").write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "lab",
                        "rules": [
                            {
                                "alert": "LabWidgetBroken",
                                "expr": "lab_widget_broken == 1",
                                "labels": {"severity": "warning"},
                            }
                        ],
                    }
                ]
            }
        )
    )
    (tmp / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(tmp / "rules.yml")],
                "alerting": {"alertmanagers": alerting},
                "scrape_configs": [
                    {"job_name": "widgets", "static_configs": [{"targets": [target]}]}
                ],
            }
        )
    )
    command = [
        "prometheus",
        f"--config.file={tmp / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address={address}",
    ]
    with run_process(command, f"http://{address}/-/ready", tmp / "prometheus.log"):
        yield f"http://{address}"


def active_at(prometheus_url: str) -> float | None:
    """When Prometheus's LabWidgetBroken alert became active (its rule's evaluation time)."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{prometheus_url}/api/v1/alerts", timeout=5) as response:
        alerts = json.loads(response.read())["data"]["alerts"]
    for alert in alerts:
        if alert["labels"]["alertname"] == "LabWidgetBroken" and alert["state"] == "firing":
            stamp = alert["activeAt"].replace("Z", "+00:00")
            return datetime.datetime.fromisoformat(_seconds_to_micro(stamp)).timestamp()
    return None


def _seconds_to_micro(stamp: str) -> str:
    """Python 3.10's fromisoformat takes at most six fraction digits; Prometheus writes nine."""
    head, dot, rest = stamp.partition(".")
    if not dot:
        return stamp
    digits = "".join(c for c in rest if c.isdigit())
    zone = rest[len(digits) :]
    return f"{head}.{digits[:6]}{zone}"


@pytest.mark.skipif(not shutil.which("prometheus"), reason="needs the prometheus package")
def test_a_prometheus_rule_firing_reaches_the_webhook_and_so_does_its_resolution(
    alertmanager, webhook, port, tmp_path, run_process
):
    # What this charm's provider publishes for the unit, read by the requirer half.
    databag = alertmanager_dispatch.unit_data(f"http://127.0.0.1:{port}/am")
    target = alertmanager_dispatch.parse_unit(databag)
    assert target is not None
    alerting = alertmanager_dispatch.alertmanagers([target])
    assert alerting == [
        {
            "scheme": "http",
            "path_prefix": "/am",
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
        }
    ]
    (tmp_path / "prometheus").mkdir()
    with (
        am.MetricsPage("lab_widget_broken 0\n") as widgets,
        prometheus(tmp_path / "prometheus", run_process, widgets.address, alerting) as url,
    ):
        time.sleep(2)  # a few evaluations with the widget fine
        widgets.body = "lab_widget_broken 1\n"
        fired = am.wait_for(lambda: active_at(url), what="the rule to fire")
        firing = am.wait_for(lambda: webhook.of("firing"), timeout=30, what="the notification")
        widgets.body = "lab_widget_broken 0\n"
        fixed = time.time()
        resolved = am.wait_for(lambda: webhook.of("resolved"), timeout=30, what="the resolution")
        time.sleep(3)

    delay = firing[0].at - fired
    [alert] = firing[0].body["alerts"]
    assert alert["labels"]["alertname"] == "LabWidgetBroken"
    assert alert["labels"]["severity"] == "warning"
    assert len(webhook.of("firing")) == 1
    assert len(webhook.of("resolved")) == 1
    assert 0 < delay < 20
    print(
        f"\nrule fired -> webhook: {delay:.2f}s (group_wait 1s);"
        f" metric fixed -> resolution delivered: {resolved[0].at - fixed:.2f}s;"
        f" deliveries: {len(webhook.of('firing'))} firing, {len(webhook.of('resolved'))} resolved"
    )
