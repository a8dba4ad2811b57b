"""Why a Prometheus did not start, read from what the real binary logs when it fails.

The charm reads these lines from the journal (tests/machine covers that path on a real systemd);
here the real `prometheus` fails the ways a lab meets, and the reason the charm would show is
checked against its own output.
"""

from __future__ import annotations

import socket
import subprocess

import prometheus.service


def fail(*args: str) -> list[str]:
    """Run prometheus until it exits; return what it logged, oldest line first."""
    result = subprocess.run(
        ["prometheus", *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode != 0, "prometheus was expected to fail"
    return (result.stdout + result.stderr).splitlines()


def test_a_taken_port_is_named_with_the_cause(tmp_path, port):
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {scrape_interval: 15s}\n")
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        log = fail(
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        )

    reason = prometheus.service.failure_reason(log)

    assert reason == f"prometheus cannot listen on 127.0.0.1:{port}: address already in use"


def test_an_unknown_flag_is_quoted(tmp_path):
    log = fail("--no-such-flag")

    reason = prometheus.service.failure_reason(log)

    assert reason.startswith("prometheus failed to start: ")
    assert "no-such-flag" in reason


def test_an_unreadable_config_says_what_prometheus_said(tmp_path, port):
    config = tmp_path / "prometheus.yml"
    config.write_text("scrape_configs: [{job_name: x, static_configs: [{targets: 5}]}]\n")

    log = fail(
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    )
    reason = prometheus.service.failure_reason(log)

    # Prometheus's msg, then its err: what failed, then why.
    assert reason.startswith(
        f"prometheus failed to start: Error loading config (--config.file={config}): "
        f"parsing YAML file {config}: yaml: unmarshal errors:"
    )
