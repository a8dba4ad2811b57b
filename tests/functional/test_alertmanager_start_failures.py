"""Why an Alertmanager did not start, read from what the real binary logs when it fails.

The charm reads these lines from the journal (tests/machine covers that path on a real
systemd); here the real `prometheus-alertmanager` fails the ways a lab meets, started with the
flags the charm writes, and the reason the charm would show is checked against its output.
"""

from __future__ import annotations

import pathlib
import socket
import subprocess

import alertmanager_processes as am
import pytest
from alertmanager import flags, paths, service

pytestmark = am.needs_alertmanager


@pytest.fixture
def live(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> paths.Paths:
    where = am.local_paths(tmp_path)
    monkeypatch.setattr(paths, "PATHS", where)
    return where


def fail(args: list[str]) -> list[str]:
    """Run prometheus-alertmanager until it exits; return what it logged, oldest line first."""
    result = subprocess.run(
        ["prometheus-alertmanager", *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0, "alertmanager was expected to fail"
    return (result.stdout + result.stderr).splitlines()


def test_a_taken_web_port_is_named_with_the_cause(live, port):
    am.configure(port)
    with socket.socket() as held:
        held.bind(("", port))
        held.listen()
        log = fail(am.written_args())

    assert service.failure_reason(log) == (
        f"alertmanager cannot listen on :{port}: address already in use"
    )


def test_a_taken_cluster_port_is_named_as_the_cluster_s(live, port):
    cluster_port = am.free_port()
    am.configure(port, cluster=flags.Cluster(f"127.0.0.1:{cluster_port}", ("127.0.0.1:1",)))
    args = [
        f"--cluster.listen-address=127.0.0.1:{cluster_port}"
        if arg.startswith("--cluster.listen-address=")
        else arg
        for arg in am.written_args()
    ]
    with socket.socket() as held:
        held.bind(("127.0.0.1", cluster_port))
        held.listen()
        log = fail(args)

    assert service.failure_reason(log) == (
        f"alertmanager cannot listen on 127.0.0.1:{cluster_port} (cluster): address already in use"
    )


def test_an_unknown_flag_is_quoted(live):
    log = fail(["--no-such-flag"])

    reason = service.failure_reason(log)

    assert reason.startswith("alertmanager failed to start: ")
    assert "no-such-flag" in reason


def test_a_config_it_cannot_read_says_what_alertmanager_said(live, port):
    am.configure(port)
    live.config.unlink()

    reason = service.failure_reason(fail(am.written_args()))

    assert reason == (
        "alertmanager failed to start: Loading configuration file failed: "
        f"open {live.config}: no such file or directory"
    )


def test_a_secret_in_a_start_failure_is_masked(live, port):
    token = "https://hooks.lab/T0/B0/xoxb-start-secret"
    receivers = f"receivers:\n  - name: x\n    webhook_configs: [{{url: '{token}'}}]\n"
    am.configure(port, f"route: {{receiver: x}}\n{receivers}")
    # A hand edit past amtool, then a start: Alertmanager quotes the URL it cannot parse.
    live.config.write_text(live.config.read_text().replace("https:", "ht tp:"))

    reason = service.failure_reason(fail(am.written_args()))

    assert reason.startswith("alertmanager failed to start: Loading configuration file failed: ")
    assert "xoxb" not in reason
    assert "<secret>" in reason


def test_nothing_recognisable_still_points_at_the_journal():
    assert service.failure_reason([]) == (
        "alertmanager failed to start (see journalctl -u prometheus-alertmanager)"
    )
