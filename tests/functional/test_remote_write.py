"""Remote write with real Prometheus binaries on loopback: into this charm's Prometheus, and out.

Receive side: our Prometheus runs with the flags the charm writes for a related sender, and a
second real Prometheus, configured as a sender is (a `remote_write` to the URL the charm
publishes), pushes into it.

Send side: our Prometheus runs with the prometheus.yml the charm renders for a receiver (its
remote_write entries, queue settings and replica label) and pushes into a second real
Prometheus with its receiver on; the samples are counted on both sides over the same window,
also across a minute in which the receiver is down. Credentials are checked against a loopback
store that records what it is sent.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import loopback
import prometheus.config_file
import prometheus.flags
import prometheus.jobs
import prometheus.remote_storage
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


def configure(
    port: int,
    *,
    receiver: bool = False,
    version: str | None = None,
    option_urls: tuple[str, ...] = (),
    relation_urls: tuple[str, ...] = (),
    credentials: prometheus.remote_storage.Credentials | None = None,
) -> None:
    """Install prometheus.yml and the flags as the charm's reconcile does for these relations."""
    config = prometheus.config_file.render_config(
        scrape_interval="1s",
        scrape_timeout="1s",
        evaluation_interval="1s",
        external_labels={},
        scrape_configs=[prometheus.jobs.self_job(port, "", LAB.labels("prometheus/0"))],
        remote_write=prometheus.remote_storage.entries(
            option_urls, relation_urls, credentials=credentials, replica="lab/prometheus/0"
        ),
    )
    prometheus.remote_storage.write_credentials(credentials)
    # promtool (2.42 here) checks the rendered remote_write entries before they are installed.
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


# Send side


@contextlib.contextmanager
def receiving_prometheus(prometheus_process: Any, tmp: Any, port: int) -> Iterator[Any]:
    """Run a real Prometheus with its receiver on at `port`, its TSDB in `tmp` (kept)."""
    args = [
        f"--config.file={tmp / 'receiver.yml'}",
        f"--storage.tsdb.path={tmp / 'receiver-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-remote-write-receiver",
    ]
    (tmp / "receiver.yml").write_text("global: {}\n")
    with prometheus_process(args, tmp / "receiver.log", f"http://127.0.0.1:{port}") as running:
        yield running


def sample_count(running: Any, at: float, window: int) -> int:
    """Count the raw samples of our self-scrape job in the `window` seconds up to `at`."""
    # The raw samples themselves (a range selector), not count_over_time: that drops the metric
    # name, and the series of one target then clash.
    query = f'{{job="prometheus",juju_unit="prometheus/0"}}[{window}s]'
    result = running.get("/api/v1/query", query=query, time=f"{at:.3f}")["data"]["result"]
    return sum(len(series["values"]) for series in result)


def sent_up_to(ours: Any) -> float:
    """The newest sample time our queues have sent (0 before the first send)."""
    result = ours.query("min(prometheus_remote_storage_queue_highest_sent_timestamp_seconds)")
    return float(result[0]["value"][1]) if result else 0.0


def test_every_sample_our_config_sends_arrives_in_a_real_receiver(
    paths, start_prometheus, port, prometheus_process, tmp_path, wait_for
):
    receiver_port = loopback.free_port()
    url = remote_write.write_url(f"http://127.0.0.1:{receiver_port}")
    with receiving_prometheus(prometheus_process, tmp_path, receiver_port) as receiver:
        configure(port, relation_urls=(url,))
        ours = start_prometheus()
        time.sleep(25)
        end = time.time() - 2
        wait_for(lambda: sent_up_to(ours) >= end, timeout=30, what="our queue to send up to end")
        sent = sample_count(ours, end, 20)
        arrived = sample_count(receiver, end, 20)
        [series] = receiver.query('up{job="prometheus"}')

    print(f"\nremote write, 20 s window: {sent} samples in ours, {arrived} arrived")
    assert sent > 500  # some 40 series scraped every second
    assert arrived == sent
    # Upstream the series say which Prometheus sent them.
    assert series["metric"]["prometheus_replica"] == "lab/prometheus/0"
    assert series["metric"]["juju_unit"] == "prometheus/0"


def test_a_minute_in_which_the_receiver_is_down_still_arrives(
    paths, start_prometheus, port, prometheus_process, tmp_path, wait_for
):
    receiver_port = loopback.free_port()
    url = remote_write.write_url(f"http://127.0.0.1:{receiver_port}")
    with receiving_prometheus(prometheus_process, tmp_path, receiver_port):
        configure(port, relation_urls=(url,))
        ours = start_prometheus()
        time.sleep(10)
        down_at = time.time()
    # The receiver is stopped (SIGTERM, as systemd stops it) for 60 s; ours keeps scraping.
    time.sleep(60)
    back_at = time.time()
    with receiving_prometheus(prometheus_process, tmp_path, receiver_port) as receiver:
        wait_for(
            lambda: sent_up_to(ours) >= back_at + 5,
            timeout=60,
            what="our queue to catch up after the outage",
        )
        caught_up = time.time() - back_at
        end = back_at + 5
        window = round(end - (down_at - 5))
        sent = sample_count(ours, end, window)
        arrived = sample_count(receiver, end, window)
        outage = sample_count(ours, back_at, 60)
        outage_arrived = sample_count(receiver, back_at, 60)
        failed = ours.query("sum(prometheus_remote_storage_samples_failed_total)")
        retried = ours.query("sum(prometheus_remote_storage_samples_retried_total)")

    print(
        f"\nreceiver down 60 s: {window} s window, {sent} samples in ours, {arrived} arrived"
        f" ({sent - arrived} lost); the outage minute: {outage} in ours, {outage_arrived}"
        f" arrived; caught up {caught_up:.1f} s after the receiver came back;"
        f" retried {retried[0]['value'][1]}, failed {failed[0]['value'][1]}"
    )
    assert outage > 1000
    assert outage_arrived == outage
    assert arrived == sent
    assert failed[0]["value"][1] == "0"


class _Store(http.server.BaseHTTPRequestHandler):
    """A remote-write store on loopback that keeps each request's Authorization header."""

    seen: list[str | None]
    answer: int

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append(self.headers.get("Authorization"))
        self.send_response(self.answer)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def store(answer: int = 204) -> Iterator[tuple[str, list[str | None]]]:
    """Serve a recording store; yield its write URL and the headers it was sent."""
    handler = type("Store", (_Store,), {"seen": [], "answer": answer})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/push", handler.seen
    finally:
        server.shutdown()
        server.server_close()


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_basic_auth_is_read_from_the_password_file_and_a_new_password_needs_no_reload(
    paths, start_prometheus, port, wait_for
):
    with store() as (url, seen):
        credentials = prometheus.remote_storage.Credentials("prom", "first-password")
        configure(port, option_urls=(url,), credentials=credentials)
        assert "first-password" not in paths.config.read_text()
        ours = start_prometheus()
        wait_for(lambda: basic("prom", "first-password") in seen, what="a first push")

        rotated = prometheus.remote_storage.Credentials("prom", "second-password")
        prometheus.remote_storage.write_credentials(rotated)
        wait_for(lambda: seen[-1] == basic("prom", "second-password"), what="the new password")

        reloads = ours.query("prometheus_config_last_reload_success_timestamp_seconds")
    # Prometheus read the new file without a reload: it still runs the config it started with.
    assert len(reloads) == 1
    assert None not in seen


def test_a_token_is_read_from_its_credentials_file(paths, start_prometheus, port, wait_for):
    with store() as (url, seen):
        credentials = prometheus.remote_storage.Credentials(token="tok-0123456789")
        configure(port, option_urls=(url,), credentials=credentials)
        start_prometheus()
        wait_for(lambda: seen, what="a first push")

    assert set(seen) == {"Bearer tok-0123456789"}


def test_a_store_that_refuses_costs_its_samples_but_not_the_other_receiver(
    paths, start_prometheus, port, prometheus_process, tmp_path, wait_for
):
    receiver_port = loopback.free_port()
    good = remote_write.write_url(f"http://127.0.0.1:{receiver_port}")
    with (
        store(answer=401) as (refusing, seen),
        receiving_prometheus(prometheus_process, tmp_path, receiver_port) as receiver,
    ):
        configure(port, option_urls=(refusing,), relation_urls=(good,))
        ours = start_prometheus()
        failed = wait_for(
            lambda: ours.query("prometheus_remote_storage_samples_failed_total > 0"),
            timeout=30,
            what="the refused samples to be counted",
        )
        arrived = wait_for(lambda: receiver.query("up"), what="samples at the other receiver")

    assert failed[0]["metric"]["url"] == refusing
    assert arrived
    assert seen
