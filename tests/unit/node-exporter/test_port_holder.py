"""Who holds a taken port, read from a /proc tree, and how a failed start says it.

The tree is a temporary directory laid out as the kernel lays out /proc (net/tcp, net/tcp6,
<pid>/fd links, comm, cmdline, cgroup); tests/functional reads the real one with a real process
holding a port, and tests/machine a real exporter that cannot start.
"""

from __future__ import annotations

import os
import pathlib

import pytest
from lab_monitoring import status
from node_exporter import exporter, paths, ports

HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
    "   uid  timeout inode\n"
)
TAKEN_LOG = [
    'ts=2025-01-01T00:00:00.000Z caller=node_exporter.go:199 level=info msg="Listening on"'
    " address=:9100",
    "ts=2025-01-01T00:00:00.001Z caller=node_exporter.go:202 level=error"
    ' err="listen tcp :9100: bind: address already in use"',
]


class Proc:
    """A /proc tree under a temporary directory."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        (root / "net").mkdir(parents=True)
        (root / "net" / "tcp").write_text(HEADER)
        (root / "net" / "tcp6").write_text(HEADER)

    def socket(self, port: int, inode: int, *, state: str = "0A", v6: bool = False) -> None:
        """Add a TCP socket bound to `port` on every address, in `state` (0A: LISTEN)."""
        local = f"{'0' * 32 if v6 else '00000000'}:{port:04X}"
        remote = f"{'0' * 32 if v6 else '00000000'}:0000"
        line = (
            f"   0: {local} {remote} {state} 00000000:00000000 00:00000000 00000000"
            f"   114        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
        )
        table = self.root / "net" / ("tcp6" if v6 else "tcp")
        table.write_text(table.read_text() + line)

    def process(
        self,
        pid: int,
        comm: str,
        *,
        sockets: tuple[int, ...] = (),
        cmdline: str = "",
        cgroup: str = "0::/user.slice/user-0.slice/session-1.scope",
    ) -> None:
        """Add a process with open descriptors on `sockets` (and a file, as every one has)."""
        proc = self.root / str(pid)
        (proc / "fd").mkdir(parents=True)
        (proc / "comm").write_text(comm + "\n")
        (proc / "cmdline").write_text((cmdline or comm) + "\0")
        (proc / "cgroup").write_text(cgroup + "\n")
        os.symlink("/dev/null", proc / "fd" / "0")
        for fd, inode in enumerate(sockets, start=3):
            os.symlink(f"socket:[{inode}]", proc / "fd" / str(fd))


def held(port: int) -> ports.Holder:
    """The holder of `port`, which a test has given one."""
    found = ports.holder(port)
    assert found is not None
    return found


@pytest.fixture
def proc(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Proc:
    monkeypatch.setattr(paths, "PATHS", paths.Paths(proc=tmp_path / "proc"))
    return Proc(tmp_path / "proc")


# --- who holds the port --------------------------------------------------------------------


def test_the_process_listening_on_the_port_is_found_with_its_pid(proc):
    proc.socket(9100, 5555)
    proc.process(800, "sshd", sockets=(4444,))
    proc.process(1234, "python3", sockets=(5555,))

    assert ports.holder(9100) == ports.Holder(1234, "python3", "")


def test_an_ipv6_socket_counts(proc):
    proc.socket(9100, 5555, v6=True)
    proc.process(1234, "node_exporter", sockets=(5555,))

    assert ports.holder(9100) == ports.Holder(1234, "node_exporter", "")


def test_nothing_holds_a_port_without_a_listening_socket(proc):
    proc.socket(9101, 5555)  # another port
    proc.socket(9100, 6666, state="01")  # ESTABLISHED: a connection, not a listener
    proc.process(1234, "python3", sockets=(5555, 6666))

    assert ports.holder(9100) is None


def test_of_processes_sharing_the_socket_the_lowest_pid_is_named(proc):
    proc.socket(9100, 5555)
    proc.process(2000, "worker", sockets=(5555,))
    proc.process(1999, "master", sockets=(5555,))

    assert ports.holder(9100) == ports.Holder(1999, "master", "")


def test_a_socket_whose_process_this_machine_cannot_see_has_no_pid(proc):
    # The host's process, seen from a container that shares the host's network.
    proc.socket(9100, 5555)
    proc.process(1, "systemd", sockets=(7777,))

    assert ports.holder(9100) == ports.Holder(None)


def test_a_name_cut_short_by_the_kernel_is_completed_from_the_program(proc):
    proc.socket(9100, 5555)
    proc.process(
        77,
        "prometheus-node",
        sockets=(5555,),
        cmdline="/usr/bin/prometheus-node-exporter\0--web.listen-address=:9100",
    )

    assert held(9100).name == "prometheus-node-exporter"


def test_a_program_name_that_is_not_the_process_s_is_not_taken_for_it(proc):
    proc.socket(9100, 5555)
    proc.process(77, "a-fifteen-chars", sockets=(5555,), cmdline="/usr/bin/python3\0x.py")

    assert held(9100).name == "a-fifteen-chars"


def test_a_hostile_process_name_is_shown_plain_and_short(proc):
    proc.socket(9100, 5555)
    proc.process(77, "x" * 15, sockets=(5555,), cmdline="/opt/" + "x" * 100 + '"$(id)";\n')

    assert held(9100).name == "x" * 32


def test_a_name_with_spaces_or_quotes_is_made_plain(proc):
    proc.socket(9100, 5555)
    proc.process(77, 'a "b"\tc', sockets=(5555,))

    assert held(9100).name == "a??b??c"


@pytest.mark.parametrize(
    ("cgroup", "unit", "snap"),
    [
        ("0::/system.slice/nginx.service", "nginx.service", ""),
        ("1:name=systemd:/system.slice/nginx.service", "nginx.service", ""),
        (
            "0::/system.slice/snap.node-exporter.node-exporter.service",
            "snap.node-exporter.node-exporter.service",
            "node-exporter",
        ),
        (
            "0::/system.slice/snap.node-exporter_lab.node-exporter.service",
            "snap.node-exporter_lab.node-exporter.service",
            "node-exporter",
        ),
        ("0::/user.slice/user-0.slice/session-1.scope", "", ""),
        ("0::/", "", ""),
    ],
)
def test_the_systemd_unit_and_snap_come_from_the_process_s_cgroup(proc, cgroup, unit, snap):
    proc.socket(9100, 5555)
    proc.process(77, "daemon", sockets=(5555,), cgroup=cgroup)

    found = held(9100)

    assert (found.unit, found.snap) == (unit, snap)


def test_a_descriptor_closed_while_it_is_read_does_not_hide_the_socket(proc):
    proc.socket(9100, 5555)
    proc.process(77, "python3", sockets=(5555,))
    # The descriptor of the fd listing itself is gone by the time it is read.
    (proc.root / "77" / "fd" / "2").write_text("")

    assert ports.holder(9100) == ports.Holder(77, "python3", "")


def test_a_process_gone_while_it_is_read_is_skipped(proc):
    proc.socket(9100, 5555)
    (proc.root / "66").mkdir()  # its fd directory went with it
    proc.process(77, "python3", sockets=(5555,))

    assert ports.holder(9100) == ports.Holder(77, "python3", "")


# --- what a start that found its port taken says -------------------------------------------


def test_the_collectors_exporter_is_named_with_what_to_do(proc):
    proc.socket(9100, 5555)
    proc.process(
        4321,
        "node_exporter",
        sockets=(5555,),
        cgroup="0::/system.slice/snap.node-exporter.node-exporter.service",
    )

    assert exporter.failure_reason(TAKEN_LOG) == (
        "port 9100 is taken by node_exporter (pid 4321) of snap node-exporter"
        " (opentelemetry-collector): set this charm's port, or do not attach node-exporter"
        " where the collector runs"
    )


def test_a_service_holding_the_port_is_named_with_its_unit(proc):
    proc.socket(9100, 5555)
    proc.process(900, "nginx", sockets=(5555,), cgroup="0::/system.slice/nginx.service")

    assert exporter.failure_reason(TAKEN_LOG) == (
        "port 9100 is taken by nginx (pid 900, nginx.service): set this charm's port,"
        " or stop nginx.service"
    )


def test_a_process_outside_any_service_is_named(proc):
    proc.socket(9100, 5555)
    proc.process(1234, "python3", sockets=(5555,))

    assert exporter.failure_reason(TAKEN_LOG) == (
        "port 9100 is taken by python3 (pid 1234): set this charm's port, or stop python3"
    )


def test_a_holder_this_machine_cannot_see_is_said_so(proc):
    proc.socket(9100, 5555)

    assert exporter.failure_reason(TAKEN_LOG) == (
        "port 9100 is taken by a process not visible from this machine: set this charm's port,"
        " or free the port"
    )


def test_a_port_freed_since_keeps_the_exporter_s_own_words(proc):
    assert exporter.failure_reason(TAKEN_LOG) == (
        "prometheus-node-exporter cannot listen on :9100: address already in use"
    )


def test_a_low_port_refused_is_not_looked_up(proc):
    proc.socket(80, 5555)
    proc.process(1234, "nginx", sockets=(5555,))
    log = ['level=error err="listen tcp :80: bind: permission denied"']

    assert exporter.failure_reason(log) == (
        "prometheus-node-exporter cannot listen on :80: permission denied"
    )


def test_the_longest_holder_still_fits_one_status_line(proc):
    proc.socket(65535, 5555)
    proc.process(
        4194304,
        "x" * 15,
        sockets=(5555,),
        cmdline="x" * 200,
        cgroup=f"0::/system.slice/{'y' * 200}.service",
    )
    log = ['level=error err="listen tcp :65535: bind: address already in use"']

    reason = exporter.failure_reason(log)

    assert reason.startswith(f"port 65535 is taken by {'x' * 32} (pid 4194304, ")
    assert status.one_line(reason) == reason
