"""The exporter's command line: flags from settings, and the flags file the packaged unit reads.

The packaged unit runs `prometheus-node-exporter $ARGS` with ARGS from its EnvironmentFile=
(`paths.PATHS.defaults`). The file is written compare-then-write, so the charm restarts the
exporter only when its flags changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from lab_monitoring import files

from . import paths

DEFAULT_PORT = 9100  # the exporter's own default, when its flags do not name one
LOG_LEVELS = ("debug", "info", "warn", "error")
_HEADER = "# Managed by the node-exporter charm: edits are overwritten. Use its config instead.\n"
_COLLECTOR = re.compile(r"[a-z][a-z0-9_]*")
_LISTEN_FLAG = re.compile(r"--web\.listen-address=\S*:([0-9]+)")


class InvalidError(ValueError):
    """A setting is not acceptable; the message says why, quoting the value."""


def parse_collectors(text: str) -> dict[str, bool]:
    """Parse `processes,-wifi` into {"processes": True, "wifi": False}.

    Raises:
        InvalidError: a word is not a collector name, or a collector is switched both ways.
    """
    switches: dict[str, bool] = {}
    for word in text.replace(",", " ").split():
        enable = not word.startswith("-")
        name = word.removeprefix("-")
        if not _COLLECTOR.fullmatch(name):
            raise InvalidError(
                f"{json.dumps(word)} is not a collector name (lower-case letters, digits and _;"
                ' "-" in front to switch it off)'
            )
        if switches.get(name, enable) != enable:
            raise InvalidError(f"{json.dumps(name)} is switched both on and off")
        switches[name] = enable
    return switches


def render(*, port: int, collectors: Mapping[str, bool], log_level: str) -> list[str]:
    """Return the command-line flags for these settings (only flags 1.3.1 knows).

    Collectors come sorted, so the same settings always give the same flags.
    """
    args = [f"--web.listen-address=:{port}", f"--log.level={log_level}"]
    for name in sorted(collectors):
        args.append(f"--collector.{name}" if collectors[name] else f"--no-collector.{name}")
    return args


def port_of(args: Sequence[str]) -> int | None:
    """Return the port a set of flags listens on, None if they do not say."""
    for arg in args:
        match = _LISTEN_FLAG.fullmatch(arg)
        if match:
            return int(match.group(1))
    return None


def write(args: Sequence[str]) -> bool:
    """Write the flags to the file the packaged systemd unit reads; return True if it changed.

    Raises:
        ValueError: a flag would not survive systemd's word splitting (a bug in the caller).
    """
    return files.write(paths.PATHS.defaults, files.args_line(args, _HEADER))


def local_port() -> int:
    """Return the port the flags file makes the exporter listen on."""
    return port_of(files.read_args(paths.PATHS.defaults)) or DEFAULT_PORT
