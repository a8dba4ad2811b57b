"""Remote write with real Prometheus binaries on loopback: into this charm's Prometheus, and out.

Receive side: our Prometheus runs with the flags the charm writes for a related sender, and a
second real Prometheus, configured as a sender is (a `remote_write` to the URL the charm
publishes), pushes into it.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from typing import Any

import prometheus.config_file
import prometheus.flags
import prometheus.jobs
import prometheus.service
import prometheus.topology
import pytest
from lab_monitoring.interfaces import remote_write

pytestmark = pytest.mark.skipif(
    not (shutil.which("prometheus") and shutil.which("promtool")),
    reason="needs the prometheus package (apt install prometheus)",
)

LAB = prometheus.topology.Topology("lab", "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f", "prometheus")
# The labels the opentelemetry-collector gives what it scrapes for a principal.
MYSQL = {
    "juju_model": "lab",
    "juju_model_uuid": LAB.model_uuid,
    "juju_application": "mysql",
    "juju_unit": "mysql/0",
    "juju_charm": "mysql",
}


def configure(port: int, *, receiver: bool, version: str | None) -> None:
    """Install prometheus.yml and the flags as the charm's reconcile does for these relations."""
    config = prometheus.config_file.render_config(
        scrape_interval="1s",
        scrape_timeout="1s",
        evaluation_interval="1s",
        external_labels={},
        scrape_configs=[prometheus.jobs.self_job(port, "", LAB.labels("prometheus/0"))],
    )
    prometheus.config_file.install_config(config, {})
    prometheus.flags.write_flags(
        prometheus.flags.flags(
            port=port,
            retention_time="1d",
            retention_size="",
            external_url="",
            log_level="warn",
            remote_write_receiver=receiver,
            version=version,
        )
    )


def post_status(url: str) -> int:
    """POST an empty body to `url`; return the HTTP status."""
    request = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_without_a_sender_the_write_path_is_refused(paths, start_prometheus, port):
    configure(port, receiver=False, version=prometheus.service.version())
    start_prometheus()

    assert post_status(remote_write.write_url(f"http://127.0.0.1:{port}")) == 404


@pytest.mark.parametrize("version", [None, "2.42.0+ds"], ids=["feature-flag", "own-flag"])
def test_a_real_prometheus_pushes_into_ours_and_its_samples_keep_their_labels(
    paths, start_prometheus, port, scraping_prometheus, metrics_server, tmp_path, wait_for, version
):
    # version None renders 2.31's feature flag, which 2.42 still takes; the installed one is
    # 2.42 here, which gets --web.enable-remote-write-receiver.
    configure(port, receiver=True, version=version)
    ours = start_prometheus()
    flag = prometheus.flags.receiver_flag(version)
    assert flag in (tmp_path / "etc" / "default" / "prometheus").read_text()
    url = remote_write.write_url(f"http://127.0.0.1:{port}")
    widgets = {
        "job_name": "mysql",
        "static_configs": [{"targets": [f"127.0.0.1:{metrics_server}"], "labels": MYSQL}],
    }

    sender = tmp_path / "sender"
    sender.mkdir()
    with scraping_prometheus(sender, [widgets], remote_write=[{"url": url}]):
        arrived: list[dict[str, Any]] = wait_for(
            lambda: ours.query('lab_widgets{juju_application="mysql"}'),
            timeout=60,
            what="pushed samples in our Prometheus",
        )

    [series] = arrived
    assert series["metric"] == {
        "__name__": "lab_widgets",
        "instance": f"127.0.0.1:{metrics_server}",
        "job": "mysql",
        **MYSQL,
    }
    assert series["value"][1] == "42"
