"""Debian packages from the machine's archive (or a .deb file): install, and what is installed.

charmlibs-apt refreshes the cache; the install itself goes through apt-get because
charmlibs-apt cannot pass --no-install-recommends (its install options are fixed), and the
packages these charms use recommend more than a lab asked for (prometheus recommends
prometheus-node-exporter; prometheus-node-exporter recommends textfile collectors run by timers).
A failure is said in one line, apt's own.

charmlibs-apt is imported only by install(): every hook imports this module (through
packaged_service), but only a hook that installs needs apt's code. Importing it (with fileinput
and glob) took 1.3 ms with bytecode cached and 8 ms without, on a machine where bare `ops` takes
about 120 ms: every hook paid it (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import subprocess


class InstallError(Exception):
    """apt could not install the package; the message is apt's own error line."""


def installed(package: str) -> bool:
    """Return True if dpkg has `package` installed (not merely known or half-configured)."""
    return _dpkg_query(package, "${Status}") == "install ok installed"


def installed_version(package: str) -> str:
    """Return the installed version of `package` as dpkg knows it, "" if it is not installed."""
    return _dpkg_query(package, "${Version}") if installed(package) else ""


def install(package: str, *, update: bool = True) -> None:
    """Install an archive package, or a .deb given by path, without its recommended packages.

    The archive's package lists are refreshed first unless `update` is False. A package's
    postinst may enable and start its service (Debian's and Ubuntu's do). A path (anything with
    a `/`) is a .deb file: apt-get installs it and takes its dependencies from the archive.

    Raises:
        InstallError: apt failed (no network, no such package in the configured archive, ...).
    """
    if update:
        from charmlibs import apt  # here, not at module import: see the module's docstring

        try:
            apt.update()
        except subprocess.CalledProcessError as e:
            # charmlibs-apt captures apt-get's output (and logs it): its first `E:` line says
            # which source failed ("E: Failed to fetch https://..."); juju debug-log has the rest.
            stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else ""
            if "E:" in stderr:
                raise InstallError(apt_error(stderr)) from None
            raise InstallError(f"apt-get update failed (exit {e.returncode})") from None
    result = subprocess.run(
        [
            "apt-get",
            "install",
            "--yes",
            "--no-install-recommends",
            # Keep a configuration file an operator edited (charmlibs-apt's choice too).
            "--option=Dpkg::Options::=--force-confold",
            package,
        ],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise InstallError(apt_error(result.stderr))


def apt_error(stderr: str) -> str:
    """Return the line of apt's output that says why it failed: its first `E:` line.

    apt names the cause first and sums up after it: "E: Could not get lock ... held by process
    1234" before "E: Unable to acquire the dpkg frontend lock", "E: Failed to fetch <url> ..."
    before "E: Some index files failed to download". Without an `E:` line, the last line.
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E:")]
    if errors:
        return errors[0]
    return lines[-1] if lines else "apt-get failed without a message"


def _dpkg_query(package: str, field: str) -> str:
    """Return one dpkg-query field of `package`; "" if dpkg does not know it."""
    try:
        result = subprocess.run(
            ["dpkg-query", "--show", f"--showformat={field}", package],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:  # no dpkg at all: nothing is installed
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""
