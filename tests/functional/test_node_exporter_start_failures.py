"""Why an exporter did not start, read from what the real binary logs when it fails.

The charm reads these lines from the journal (tests/machine covers that path on a real
systemd); here the real `prometheus-node-exporter` fails the ways a lab meets, and the reason the
charm would show is checked against its own output. A taken port is said with the process that
holds it, found in this machine's real /proc.
"""

from __future__ import annotations

import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from node_exporter import exporter, ports

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


@pytest.fixture
def holder(port: int, tmp_path: pathlib.Path) -> Iterator[subprocess.Popen[str]]:
    """A process of the test's own that listens on `port`, named as the collector's exporter is.

    It is Python under the name node_exporter (a link to the interpreter), so that the kernel
    gives it that name, as it does the node-exporter snap's binary.
    """
    program = tmp_path / "node_exporter"
    program.symlink_to(sys.executable)
    listen = (
        "import socket, sys, time\n"
        "s = socket.socket()\n"
        f"s.bind(('127.0.0.1', {port}))\n"
        "s.listen()\n"
        "print('listening', flush=True)\n"
        "time.sleep(120)\n"
    )
    process = subprocess.Popen([str(program), "-c", listen], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "listening\n"
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_port_taken_by_another_process_names_it_and_its_pid(port, holder):
    log = fail(f"--web.listen-address=127.0.0.1:{port}")

    reason = exporter.failure_reason(log)

    # How it ends depends on where this test runs: the remedy names the systemd service the
    # process runs in, if any (a CI runner's), else the process.
    assert reason.startswith(f"port {port} is taken by node_exporter (pid {holder.pid}"), reason
    assert "set this charm's port, or stop " in reason


def test_the_holder_of_a_port_is_read_from_this_machine_s_proc(port, holder):
    found = ports.holder(port)

    assert found is not None
    assert (found.pid, found.name) == (holder.pid, "node_exporter")


def test_an_ipv6_listener_of_this_process_is_found(port):
    with socket.socket(socket.AF_INET6) as held:
        try:
            held.bind(("::1", port))
        except OSError as e:
            pytest.skip(f"no IPv6 loopback here: {e}")
        held.listen()

        found = ports.holder(port)

    assert found is not None
    assert found.pid == os.getpid()


def test_a_free_port_has_no_holder(port):
    assert ports.holder(port) is None


def test_a_taken_port_is_named_with_the_cause(port):
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        log = fail(f"--web.listen-address=127.0.0.1:{port}")

    # Read once the port is free again: nobody to name, the exporter's own words.
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
