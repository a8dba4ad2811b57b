"""Which process holds a TCP port on this machine, read from /proc like `ss -ltnp` reads it.

The kernel lists the sockets of the reader's network namespace in /proc/net/tcp and tcp6: one
line per socket with its local address and port (hex), its state (0A for LISTEN) and its inode.
A process holds a socket when one of its /proc/<pid>/fd links reads `socket:[<inode>]`. No
package is needed (jammy and noble alike), and root, as hooks run, can read every process's
descriptors. A process of another PID namespace that shares this network (the host, seen from a
container that shares its network) shows its socket but not itself.
"""

from __future__ import annotations

import dataclasses
import os
import re

from . import paths

_LISTEN = "0A"  # TCP_LISTEN in include/net/tcp_states.h, as /proc/net/tcp writes it
_SOCKET = re.compile(r"socket:\[([0-9]+)\]")
# The kernel keeps 15 characters of a process's name in /proc/<pid>/comm (TASK_COMM_LEN - 1).
_COMM_LENGTH = 15
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@:+-]")


@dataclasses.dataclass(frozen=True)
class Holder:
    """A process that listens on a port, as far as this machine can see it."""

    pid: int | None  # None: the socket is there, its process is not visible from here
    name: str = ""
    unit: str = ""  # the systemd unit it runs in ("" if none)

    @property
    def snap(self) -> str:
        """The snap whose service it is ("" if none); snapd names those snap.<snap>.<app>."""
        if not self.unit.startswith("snap."):
            return ""
        # A parallel install (snap install node-exporter_lab) is <snap>_<instance>.
        return self.unit.split(".")[1].partition("_")[0]


def holder(port: int) -> Holder | None:
    """Return who listens on TCP `port` (on any address), None if nothing does now."""
    inodes = _listening(port)
    if not inodes:
        return None
    for pid in _pids():
        if _holds(pid, inodes):
            return Holder(pid, _name(pid), _unit(pid))
    return Holder(None)


def _listening(port: int) -> set[str]:
    """Return the inodes of the listening TCP sockets (IPv4 and IPv6) bound to `port`."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (paths.PATHS.proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue  # no IPv6 on this kernel, say
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            local_port = fields[1].rpartition(":")[2]
            if int(local_port, 16) == port and fields[9] != "0":
                inodes.add(fields[9])
    return inodes


def _pids() -> list[int]:
    """Return the PIDs this machine shows, lowest first (a parent before the workers it forks)."""
    try:
        names = os.listdir(paths.PATHS.proc)
    except OSError:
        return []
    return sorted(int(name) for name in names if name.isdigit())


def _holds(pid: int, inodes: set[str]) -> bool:
    fd_dir = paths.PATHS.proc / str(pid) / "fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return False  # gone meanwhile, or not ours to read
    for fd in fds:
        try:
            link = os.readlink(fd_dir / fd)
        except OSError:
            continue  # closed since the listing (the listing's own descriptor, say)
        socket = _SOCKET.fullmatch(link)
        if socket and socket.group(1) in inodes:
            return True
    return False


def _name(pid: int) -> str:
    """Return the process's name: its comm, or its program's file name where comm is cut short."""
    proc = paths.PATHS.proc / str(pid)
    comm = _read(proc / "comm").strip()
    program = os.path.basename(_read(proc / "cmdline").split("\0")[0])
    if len(comm) >= _COMM_LENGTH and program.startswith(comm):
        comm = program  # prometheus-node-exporter, whose comm is prometheus-node
    return _safe(comm, 32) or "?"


def _unit(pid: int) -> str:
    """Return the systemd service the process runs in, "" if none (a login session, say)."""
    for line in _read(paths.PATHS.proc / str(pid) / "cgroup").splitlines():
        # cgroup v2 "0::/system.slice/x.service", v1 "1:name=systemd:/system.slice/x.service"
        for part in reversed(line.partition(":")[2].partition(":")[2].split("/")):
            if part.endswith(".service"):
                return _safe(part, 48)
    return ""


def _read(path: os.PathLike[str]) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(4096)
    except OSError:
        return ""


def _safe(text: str, limit: int) -> str:
    """Any process can name itself: keep a status line plain and short."""
    return _UNSAFE.sub("?", text)[:limit]
