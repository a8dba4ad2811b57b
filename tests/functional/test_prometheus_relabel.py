"""A COS probe job's relabel_configs, as this charm keeps them, run by the real Prometheus.

A blackbox-style sender's job lists the sites to probe as targets and relabels each: the site
goes to the `target` URL parameter (and the `instance` label), the address becomes the
exporter's. Built by prometheus.jobs from relation data, checked by the real promtool when the
file is installed, and scraped by the real Prometheus: the exporter is asked for each site and
the series carry the sender's topology with juju_charm, as COS's Prometheus labels them.
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import prometheus.config_file
import prometheus.flags
import prometheus.jobs
import prometheus.relabel
import prometheus.topology
import pytest

pytestmark = pytest.mark.skipif(
    not (shutil.which("prometheus") and shutil.which("promtool")),
    reason="needs the prometheus package (apt install prometheus)",
)

UUID = "7c0ffee0-1234-4abc-8def-0123456789ab"
TOPOLOGY = {
    "juju_model": "edge",
    "juju_model_uuid": UUID,
    "juju_application": "blackbox",
    "juju_charm": "blackbox-exporter",
}
SITES = ["example.com:443", "10.1.1.1:8080"]


@pytest.fixture
def exporter() -> Iterator[tuple[int, list[dict[str, list[str]]]]]:
    """A stand-in blackbox exporter: /probe answers probe_success 1 and records its query."""
    asked: list[dict[str, list[str]]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/probe":
                self.send_error(404)
                return
            asked.append(urllib.parse.parse_qs(url.query))
            body = b"# TYPE probe_success gauge\nprobe_success 1\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], asked
    finally:
        server.shutdown()
        server.server_close()


def configure(port: int, jobs: list[dict[str, Any]]) -> None:
    """Write prometheus.yml (promtool checks it, or ConfigError) and the flags, as the charm."""
    config = prometheus.config_file.render_config(
        scrape_interval="1s",
        scrape_timeout="1s",
        evaluation_interval="1s",
        external_labels={},
        scrape_configs=[prometheus.jobs.self_job(port, "", {}), *jobs],
    )
    prometheus.config_file.install_config(config, {})
    prometheus.flags.write_flags(
        prometheus.flags.flags(
            port=port, retention_time="1d", retention_size="", external_url="", log_level="warn"
        )
    )


def cos_jobs(scrape_jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The jobs the charm builds from a blackbox sender's relation data."""
    app_data = {
        "scrape_metadata": json.dumps(
            {
                "model": "edge",
                "model_uuid": UUID,
                "application": "blackbox",
                "unit": "blackbox/0",
                "charm_name": "blackbox-exporter",
            }
        ),
        "scrape_jobs": json.dumps(scrape_jobs),
    }
    fallback = prometheus.topology.Topology("lab", UUID, "blackbox")
    topology = prometheus.topology.cos_topology(app_data, fallback)
    return prometheus.jobs.cos_jobs(app_data, {}, topology, scrape_interval="1s")


def test_a_probe_job_keeps_its_relabelling_and_its_series_carry_the_cos_topology(
    paths, start_prometheus, port, exporter, wait_for
):
    exporter_port, asked = exporter
    probe = {
        "job_name": "probe",
        "metrics_path": "/probe",
        "params": {"module": ["http_2xx"]},
        "static_configs": [{"targets": SITES, "labels": {"site": "lab"}}],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": f"127.0.0.1:{exporter_port}"},
        ],
    }
    [job] = cos_jobs([probe])
    assert len(job["relabel_configs"]) == 3
    configure(port, [job])  # promtool accepted the file, or ConfigError

    running = start_prometheus()

    def series() -> list[dict[str, Any]]:
        found = running.query("probe_success")
        return found if len(found) == len(SITES) else []

    found = wait_for(series, what="a probe of each site")
    assert sorted((s["metric"] for s in found), key=lambda m: m["instance"]) == [
        {
            "__name__": "probe_success",
            "job": "juju_edge_7c0ffee0_blackbox_prometheus_scrape_probe",
            "instance": site,
            "site": "lab",
            **TOPOLOGY,
        }
        for site in sorted(SITES)
    ]
    # The exporter, not the site, was scraped, and asked to probe each site.
    assert {(q["target"][0], q["module"][0]) for q in asked} == {
        (site, "http_2xx") for site in SITES
    }


# Regexes prometheus.relabel accepts, each chosen at a place where Python's re and Go's RE2
# could part: the real promtool must accept every one.
ACCEPTED_REGEXES = [
    "(.*)",
    "",
    r"([^:]+)(?::\d+)?",
    r"a+?b*?c??",
    r"\.\$\[\]\(\)\{\}\|\^\*\+\?\\\-\/",
    "x|",
    "()",
    r"[\d\w\s\D\W\S]",
    "[--/]",
    "[a-]",
    "[^a-z0-9_]+",
    "(?:(?:(?:a)))",
    r"\d+\.\d+\.\d+\.\d+",
    "(" * 200 + ")" * 200,
]


# And some it refuses: Python-only syntax (possessive, lookbehind), syntax the two read
# differently (POSIX classes, \Z, repeat counts), and what Python refuses though RE2 may not.
REFUSED_REGEXES = ["a*+", "(?<=a)b", "[[:alpha:]]", r"\Z", "a{2}", "(?i)x", "^*", "$?"]


def test_promtool_accepts_every_regex_the_charm_keeps(paths, port):
    kept = [r for r in ACCEPTED_REGEXES + REFUSED_REGEXES if _accepted(r)]
    assert kept == ACCEPTED_REGEXES
    job = {
        "job_name": "regexes",
        "static_configs": [{"targets": ["127.0.0.1:1"]}],
        "relabel_configs": [
            {"action": "keep", "source_labels": ["__address__"], "regex": r} for r in kept
        ],
    }

    configure(port, [job])  # raises ConfigError with promtool's message if it refuses one


def _accepted(regex: str) -> bool:
    try:
        prometheus.relabel.regex(regex, "regex")
    except prometheus.relabel.checks.InvalidError:
        return False
    return True
