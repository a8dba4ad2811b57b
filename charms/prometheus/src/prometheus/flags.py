"""Prometheus's command line: the ARGS the packaged systemd unit reads from /etc/default.

A change here needs a restart (a reload re-reads prometheus.yml, not the flags), so the flags
file is written compare-then-write and reports whether it changed.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Sequence

from lab_monitoring import files

from prometheus import paths


def flags(
    *,
    port: int,
    retention_time: str,
    retention_size: str,
    external_url: str,
    log_level: str,
    remote_write_receiver: bool = False,
    version: str | None = None,
) -> list[str]:
    """Return the command-line flags for these settings, as the installed `version` takes them.

    `remote_write_receiver` switches on POST /api/v1/write (receive-remote-write).
    """
    args = [
        f"--config.file={paths.PATHS.config}",
        f"--storage.tsdb.path={paths.PATHS.tsdb}",
        f"--storage.tsdb.retention.time={retention_time}",
        f"--web.listen-address=:{port}",
        # No --web.enable-lifecycle: it would let anyone who reaches the port POST /-/quit.
        # The charm reloads with SIGHUP instead (see reload.py).
        f"--log.level={log_level}",
    ]
    if retention_size:
        args.append(f"--storage.tsdb.retention.size={retention_size}")
    if external_url:
        args.append(f"--web.external-url={external_url}")
    if remote_write_receiver:
        args.append(receiver_flag(version))
    return args


def receiver_flag(version: str | None) -> str:
    """Return the flag that turns the remote-write receiver on in Prometheus `version`.

    Before 2.33 it is a feature flag (jammy's 2.31 refuses the later flag as an unknown long
    flag); 2.33 added --web.enable-remote-write-receiver and deprecated the feature name, which
    3.0 dropped (prometheus/prometheus CHANGELOG.md, 2.33.0 and 3.0.0). An unknown version
    gets the feature flag: every 2.x from 2.25 on takes it.
    """
    match = re.match(r"(\d+)\.(\d+)", version or "")
    if match and (int(match.group(1)), int(match.group(2))) >= (2, 33):
        return "--web.enable-remote-write-receiver"
    return "--enable-feature=remote-write-receiver"


def write_flags(args: Sequence[str]) -> bool:
    """Write the flags to the file the packaged systemd unit reads; return True if it changed.

    Raises:
        ValueError: a flag would not survive systemd's word splitting (a bug in the caller).
    """
    return files.write(paths.PATHS.defaults, files.args_line(args, paths.HEADER))


def tsdb_filesystem_size() -> int:
    """Return the size in bytes of the filesystem that holds (or will hold) the TSDB."""
    path = paths.PATHS.tsdb
    # Before the package is installed the TSDB directory does not exist yet.
    while not path.exists():
        path = path.parent
    stat = os.statvfs(path)
    return stat.f_blocks * stat.f_frsize


def local_url(path: str) -> str:
    """Return the loopback URL of `path` for the written flags (their port and route prefix)."""
    written = dict(arg.partition("=")[::2] for arg in files.read_args(paths.PATHS.defaults))
    port = written.get("--web.listen-address", ":9090").rpartition(":")[2] or "9090"
    prefix = urllib.parse.urlsplit(written.get("--web.external-url", "")).path.rstrip("/")
    return f"http://127.0.0.1:{port}{prefix}{path}"
