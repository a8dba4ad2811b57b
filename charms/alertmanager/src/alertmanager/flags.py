"""Alertmanager's command line, in the /etc/default file whose `ARGS=` the packaged unit passes.

Only flags that Alertmanager 0.23 (Ubuntu 22.04) knows, unchanged up to 0.26 (Ubuntu 24.04):
cmd/alertmanager/main.go at v0.23.0 and v0.26.0.

Clustering: Alertmanagers that know each other gossip their silences and notification log over
a cluster port (TCP and UDP), so that of the alerts Prometheus sends to each of them only one
notifies. A unit alone runs with `--cluster.listen-address=` (empty: no cluster), because
clustering is on by default (0.0.0.0:9094) and then needs a private address to advertise,
which a machine may not have (prometheus/alertmanager#1434). With peers it listens on
0.0.0.0:9094, advertises the address its peers know it by, and names each of them once.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Sequence

from lab_monitoring import files

from alertmanager import paths

CLUSTER_PORT = 9094
LOG_LEVELS = ("debug", "info", "warn", "error")
HEADER = "# Managed by the alertmanager charm: edits are overwritten. Use its config instead.\n"


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This unit's place in an Alertmanager cluster: its own address and its peers' (host:port)."""

    advertise: str | None
    peers: tuple[str, ...]


def flags(*, port: int, external_url: str, log_level: str, cluster: Cluster | None) -> list[str]:
    """Return the command-line flags for these settings; `cluster` None for a unit alone."""
    args = [
        f"--config.file={paths.PATHS.config}",
        f"--storage.path={paths.PATHS.storage}",
        f"--web.listen-address=:{port}",
        f"--log.level={log_level}",
    ]
    if external_url:
        args.append(f"--web.external-url={external_url}")
    if cluster is None:
        args.append("--cluster.listen-address=")
        return args
    args.append(f"--cluster.listen-address=0.0.0.0:{CLUSTER_PORT}")
    if cluster.advertise:
        args.append(f"--cluster.advertise-address={cluster.advertise}")
    args += [f"--cluster.peer={peer}" for peer in sorted(set(cluster.peers))]
    return args


def write(args: Sequence[str]) -> bool:
    """Write the flags to the file the packaged unit reads; return True if it changed.

    Raises:
        ValueError: a flag would not survive systemd's word splitting (a bug in the caller).
    """
    return files.write(paths.PATHS.defaults, files.args_line(args, HEADER))


def live() -> dict[str, str]:
    """Return the written flags as a mapping (a repeated flag: its last value)."""
    written: dict[str, str] = {}
    for arg in files.read_args(paths.PATHS.defaults):
        name, _, value = arg.partition("=")
        written[name] = value
    return written


def local_url(path: str) -> str:
    """Return the loopback URL of `path` for the written flags (port and route prefix)."""
    written = live()
    port = written.get("--web.listen-address", ":9093").rpartition(":")[2] or "9093"
    prefix = urllib.parse.urlsplit(written.get("--web.external-url", "")).path.rstrip("/")
    return f"http://127.0.0.1:{port}{prefix}{path}"
