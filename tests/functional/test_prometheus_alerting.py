"""Prometheus's alerting as the charm renders it, with a real Prometheus and real Alertmanagers.

prometheus.yml's `alerting` section is rendered by the charm's functions from the databags
Alertmanager units publish (the COS `alertmanager_dispatch` format this repository's Alertmanager
writes, and the legacy `http` one), installed with the real promtool together with Prometheus's
own health rules, and loaded by Debian's or Ubuntu's Prometheus on loopback. Two real
Alertmanagers (`prometheus-alertmanager`), one under a route prefix, must then hold the alerts
Prometheus raises: the health rules' Watchdog, which always fires, with this Prometheus's
topology labels.

The Alertmanagers are started here from a minimal configuration (one receiver without
integrations); this file runs on the Prometheus charm's lock, which does not carry the
Alertmanager charm's modules (tests/functional/test_alertmanager_delivery.py drives those).
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import alerting
import loopback
import prometheus.config_file
import prometheus.flags
import prometheus.jobs
import prometheus.reload
import prometheus.topology
import pytest
from lab_monitoring.interfaces import alertmanager_dispatch, prometheus_scrape

pytestmark = pytest.mark.skipif(
    not all(shutil.which(b) for b in ("prometheus", "promtool", "prometheus-alertmanager")),
    reason="needs the prometheus and prometheus-alertmanager packages",
)

UUID = "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"
ME = prometheus_scrape.Topology("lab", UUID, "prometheus", "prometheus/0", "prometheus")
SELF = prometheus.topology.Topology("lab", UUID, "prometheus")
# A receiver without integrations: alerts are held and listed, nobody is notified.
AM_CONFIG = """\
route:
  receiver: nobody
  group_by: [alertname]
  group_wait: 1s
receivers:
  - name: nobody
"""


class Alertmanager:
    """A running Alertmanager: where Prometheus reaches it, and the alerts it holds."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.base_url}/api/v2/alerts", timeout=5) as response:
            return json.loads(response.read())

    def alert(self, name: str) -> dict[str, Any] | None:
        return next((a for a in self.alerts() if a["labels"]["alertname"] == name), None)


@pytest.fixture
def start_alertmanager(
    tmp_path: pathlib.Path, run_process
) -> Iterator[Callable[[str], Alertmanager]]:
    """Return `start(route_prefix)`, which runs a real Alertmanager on a free loopback port."""
    with contextlib.ExitStack() as stack:

        def start(route_prefix: str = "") -> Alertmanager:
            port = loopback.free_port()
            home = tmp_path / f"alertmanager-{port}"
            home.mkdir()
            (home / "alertmanager.yml").write_text(AM_CONFIG)
            base_url = f"http://127.0.0.1:{port}{route_prefix}"
            command = [
                "prometheus-alertmanager",
                f"--config.file={home / 'alertmanager.yml'}",
                f"--storage.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--web.external-url={base_url}/",
                # One Alertmanager, no cluster (and no gossip port to collide with the other).
                "--cluster.listen-address=",
            ]
            stack.enter_context(run_process(command, f"{base_url}/-/ready", home / "log"))
            return Alertmanager(base_url)

        yield start


def install(
    port: int, alertmanagers: list[dict[str, Any]], rules: dict[str, str] | None = None
) -> prometheus.config_file.Installed:
    """Render and install prometheus.yml, the health rules and the flags as the charm does."""
    config = prometheus.config_file.render_config(
        scrape_interval="1s",
        scrape_timeout="1s",
        evaluation_interval="1s",
        external_labels={},
        scrape_configs=[prometheus.jobs.self_job(port, "", SELF.labels("prometheus/0"))],
        alertmanagers=alertmanagers,
    )
    files = {alerting.HEALTH_RULES_FILE: alerting.health_rules(ME), **(rules or {})}
    result = prometheus.config_file.install_config(config, files)
    prometheus.flags.write_flags(
        prometheus.flags.flags(
            port=port, retention_time="1d", retention_size="", external_url="", log_level="info"
        )
    )
    return result


# A related application's rules file, as the charm writes one (scoped to the sender).
WIDGETS = prometheus.topology.Topology("lab", UUID, "widgets")
WIDGET_RULES = {
    f"juju_{WIDGETS.identifier}.rules": prometheus.config_file.render_rules(
        {
            "groups": [
                {
                    "name": "widgets",
                    "rules": [
                        {
                            "alert": "LabWidgetBroken",
                            "expr": "vector(1)",
                            # Firing once the Alertmanagers are discovered (within 5s of a
                            # start): an alert due before that is dropped (see below).
                            "for": "10s",
                            "labels": {"severity": "warning", **WIDGETS.labels()},
                        }
                    ],
                }
            ]
        }
    )
}


def dispatch_alertmanagers(*urls: str, legacy: dict[str, str] | None = None) -> list[dict]:
    """`alerting.alertmanagers` for provider databags, read by the requirer's parsers."""
    targets = [alertmanager_dispatch.parse_unit(alertmanager_dispatch.unit_data(u)) for u in urls]
    found = [t for t in targets if t is not None]
    if legacy is not None:
        target = alerting.legacy_target("am-legacy/0", legacy)
        assert target is not None
        found.append(target)
    return alertmanager_dispatch.alertmanagers(found)


def discovered(running: Any) -> list[str]:
    """The Alertmanager URLs Prometheus sends to (GET /api/v1/alertmanagers)."""
    return sorted(
        a["url"] for a in running.get("/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    )


def firing(running: Any, name: str) -> bool:
    """Whether Prometheus's alert `name` is firing (GET /api/v1/alerts)."""
    return any(
        alert["labels"]["alertname"] == name and alert["state"] == "firing"
        for alert in running.get("/api/v1/alerts")["data"]["alerts"]
    )


def test_the_rendered_alerting_section_and_health_rules_pass_promtool(paths, port):
    alertmanagers = dispatch_alertmanagers(
        "http://10.0.0.5:9093",
        "https://[fd00::5]:9093/am",
        legacy={"hostname": "am.lab", "port": "9093"},
    )

    result = install(port, alertmanagers)

    assert result.changed
    assert result.rejected_rules == {}
    assert (paths.rules_dir / alerting.HEALTH_RULES_FILE).is_file()
    assert prometheus.config_file.check_live_config() is None


@pytest.mark.slow
def test_alerts_reach_every_related_alertmanager_with_their_topology(
    paths, port, start_prometheus, start_alertmanager, wait_for
):
    prefixed = start_alertmanager("/am")
    root = start_alertmanager("")
    root_port = root.base_url.rsplit(":", 1)[1]
    alertmanagers = dispatch_alertmanagers(
        prefixed.base_url, legacy={"hostname": "127.0.0.1", "port": root_port}
    )
    assert [(a["scheme"], a["path_prefix"]) for a in alertmanagers] == [
        ("http", "/"),
        ("http", "/am"),
    ]
    install(port, alertmanagers, WIDGET_RULES)
    started = time.time()
    running = start_prometheus()
    expected = sorted(
        [f"http://127.0.0.1:{root_port}/api/v2/alerts", f"{prefixed.base_url}/api/v2/alerts"]
    )
    wait_for(lambda: discovered(running) == expected, what="both Alertmanagers in Prometheus")
    discovered_after = time.time() - started

    # A related charm's rule: once firing, Prometheus sends it to both.
    wait_for(lambda: firing(running, "LabWidgetBroken"), what="the rule to fire")
    fired = time.time()
    held = wait_for(lambda: prefixed.alert("LabWidgetBroken"), what="the alert in Alertmanager")
    delay = time.time() - fired
    assert wait_for(lambda: root.alert("LabWidgetBroken"), what="the alert in the legacy one")
    assert held["labels"] == {
        "alertname": "LabWidgetBroken",
        "severity": "warning",
        **WIDGETS.labels(),
    }
    assert held["status"]["state"] == "active"

    # Prometheus's own Watchdog, with this Prometheus's topology. It fired at the first
    # evaluation, before the Alertmanagers were discovered; Prometheus sends a firing alert
    # again every minute (--rules.alert.resend-delay), so it arrives within about a minute.
    watchdog = wait_for(lambda: prefixed.alert("Watchdog"), timeout=90, what="the Watchdog")
    watchdog_after = time.time() - started
    assert watchdog["labels"] == {"alertname": "Watchdog", "severity": "none", **ME.rule_labels}
    assert wait_for(lambda: root.alert("Watchdog"), what="the Watchdog in the legacy one")
    print(
        f"\nAlertmanagers discovered {discovered_after:.2f}s after start;"
        f" rule firing in Prometheus -> listed by Alertmanager: {delay:.2f}s"
        f" (evaluation 1s, polled every 0.1s); Watchdog listed {watchdog_after:.1f}s after start"
    )


def test_an_alertmanager_that_leaves_is_dropped_on_the_confirmed_reload(
    paths, port, start_prometheus, start_alertmanager, wait_for
):
    first = start_alertmanager("")
    second = start_alertmanager("")
    install(port, dispatch_alertmanagers(first.base_url, second.base_url))
    running = start_prometheus()
    wait_for(lambda: len(discovered(running)) == 2, what="both Alertmanagers")

    # The second unit departs: the charm renders again and reloads.
    assert install(port, dispatch_alertmanagers(first.base_url)).changed
    seconds = prometheus.reload.reload()
    reloaded = time.time()

    only_first = [f"{first.base_url}/api/v2/alerts"]
    wait_for(lambda: discovered(running) == only_first, what="the departed one to go")
    print(
        f"\nreload without the departed Alertmanager confirmed in {seconds:.2f}s;"
        f" gone from /api/v1/alertmanagers {time.time() - reloaded:.2f}s later"
    )
