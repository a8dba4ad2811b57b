"""Files a charm owns on its machine: written whole, only when they change, never half-readable.

Every writer compares first and returns whether the file changed, so that a charm reloads or
restarts its service only when something did. A file is written under a temporary name in its
own directory, its owner and mode set before its content goes in, then renamed over the old one:
a reader (the service, another unit's hook) sees the old file or the new one, and a secret is
never readable by the wrong user, not even for a moment.
"""

from __future__ import annotations

import grp
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

# What a flag may hold in an `ARGS="..."` line: systemd splits $ARGS on whitespace and the
# EnvironmentFile reader would take quotes and backslashes as its own.
SAFE_FLAG = re.compile(r"--[a-z][a-z0-9._-]*(?:=[A-Za-z0-9\-._~:/?#\[\]@!&()*+,;=%]*)?")
_ARGS_LINE = re.compile(r'^ARGS="(.*)"$', re.MULTILINE)


def read(path: Path) -> str | None:
    """Return a text file's content, None if there is no such file."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def write(
    path: Path, content: str | bytes, *, mode: int = 0o644, group: str | None = None
) -> bool:
    """Replace `path` with `content` unless it already holds it; return True if it changed.

    The file is root's, in `group` when given (root's group when the group does not exist yet:
    on a machine without the package, say). Mode and group are put right even when the content
    is unchanged; that alone is not a change the service would notice, so it returns False.
    Missing directories are created (see make_directories).
    """
    data = content.encode() if isinstance(content, str) else content
    gid = _gid(group)
    try:
        unchanged = path.read_bytes() == data
    except FileNotFoundError:
        unchanged = False
    if unchanged:
        stat = path.stat()
        if stat.st_mode & 0o777 != mode or stat.st_gid != gid:
            os.chown(path, 0, gid)
            os.chmod(path, mode)
        return False
    make_directories(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # Owner and mode first, content second.
        os.fchown(fd, 0, gid)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def make_directories(directory: Path) -> None:
    """Create `directory` and its missing parents as root, mode 0755 whatever the umask.

    A first hook on a fresh machine may write where the package has not made a directory yet,
    and the service's own user must be able to walk into it.
    """
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir()
        os.chmod(path, 0o755)  # noqa: S103 (the service's user must walk into it)


def args_line(args: Sequence[str], header: str) -> str:
    """Return the text of an /etc/default file whose `ARGS=` the packaged unit passes on.

    Raises:
        ValueError: a flag would not survive systemd's word splitting (a bug in the caller).
    """
    for arg in args:
        if not isinstance(arg, str) or not SAFE_FLAG.fullmatch(arg):
            raise ValueError(f"unsafe command-line flag {arg!r}")
    return f'{header}ARGS="{" ".join(args)}"\n'


def read_args(path: Path) -> list[str]:
    """Return the flags of an /etc/default file's `ARGS="..."` line (empty without one)."""
    found = _ARGS_LINE.search(read(path) or "")
    return found.group(1).split() if found else []


def _gid(group: str | None) -> int:
    if group is None:
        return 0
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        logger.warning("group %s does not exist (yet): the file stays root's", group)
        return 0
