"""Why an exporter did not start, read from what the real binary logs when it fails.

The charm reads these lines from the journal (tests/machine covers that path on a real
systemd); here the real `prometheus-node-exporter` fails the ways a lab meets, and the reason the
charm would show is checked against its own output.
"""

from __future__ import annotations

import os
import pathlib
import pwd
import shutil
import socket
import subprocess

import pytest
from node_exporter import exporter

pytestmark = pytest.mark.skipif(
    not shutil.which(exporter.BINARY),
    reason="needs the prometheus-node-exporter package (apt install prometheus-node-exporter)",
)


def fail(*args: str, user: str | None = None) -> list[str]:
    """Run the exporter until it exits; return what it logged, oldest line first."""
    command = [exporter.BINARY, *args]
    if user:
        # As the packaged unit runs it: an unprivileged user without capabilities.
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode != 0, "the exporter was expected to fail"
    return (result.stdout + result.stderr).splitlines()


def test_a_taken_port_is_named_with_the_cause(port):
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        log = fail(f"--web.listen-address=127.0.0.1:{port}")

    reason = exporter.failure_reason(log)

    assert reason == (
        f"prometheus-node-exporter cannot listen on 127.0.0.1:{port}: address already in use"
    )


def test_a_collector_s_complaint_from_the_next_attempt_is_not_taken_for_the_cause(port):
    # Seen on a booted machine (tests/machine): systemd restarts the exporter at once, and when
    # the charm reads the journal, the next attempt has only got as far as a collector's error
    # (a container has no /run/udev/data), after the line that made the first attempt exit.
    udev = "--path.udev.data=/nonexistent"
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        first = fail(f"--web.listen-address=127.0.0.1:{port}", udev)
        second = fail(f"--web.listen-address=127.0.0.1:{port}", udev)
    complaint = next(
        i for i, line in enumerate(second) if "level=error collector=diskstats" in line
    )

    reason = exporter.failure_reason(first + second[: complaint + 1])

    assert reason == (
        f"prometheus-node-exporter cannot listen on 127.0.0.1:{port}: address already in use"
    )


def test_an_unknown_flag_is_quoted():
    log = fail("--no-such-flag")

    reason = exporter.failure_reason(log)

    assert reason == "prometheus-node-exporter failed to start: unknown long flag '--no-such-flag'"


def test_a_collector_that_cannot_be_created_gives_the_panic_not_its_trace(port):
    # Two filesystem flags that exclude each other make the collector's constructor fail, and
    # node_exporter panics with a goroutine trace (node_exporter.go, newHandler).
    log = fail(
        f"--web.listen-address=127.0.0.1:{port}",
        "--collector.filesystem.ignored-mount-points=^/a",
        "--collector.filesystem.mount-points-exclude=^/b",
    )

    reason = exporter.failure_reason(log)

    assert reason.startswith(
        "prometheus-node-exporter failed to start: Couldn't create metrics handler: "
    )
    assert "mutually exclusive" in reason


def _unprivileged_port_start() -> int:
    path = pathlib.Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    return int(path.read_text()) if path.exists() else 1024


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to run the exporter as prometheus")
@pytest.mark.skipif(
    _unprivileged_port_start() <= 1, reason="this kernel lets anyone bind low ports"
)
def test_a_low_port_without_the_capability_is_permission_denied():
    try:
        pwd.getpwnam("prometheus")
    except KeyError:
        pytest.skip("no user prometheus (the prometheus-node-exporter package creates it)")

    # The kernel checks the capability before whether the port is free: any low port will do.
    log = fail("--web.listen-address=127.0.0.1:1", user="prometheus")

    reason = exporter.failure_reason(log)

    assert reason == "prometheus-node-exporter cannot listen on 127.0.0.1:1: permission denied"
