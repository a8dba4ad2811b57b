"""The archive's prometheus-alertmanager package: installed before its service ever starts.

The package's postinst enables and starts prometheus-alertmanager.service at once, with the
package's example alertmanager.yml (mail to example.org through a fake SMTP server, routes for
made-up teams) and clustering on 0.0.0.0:9094, with which Alertmanager does not start on a
machine without a private address to advertise (prometheus/alertmanager#1434). So the unit is
masked before apt-get runs: the postinst's `deb-systemd-invoke start` is refused (it ignores
that), and its `deb-systemd-helper unmask` only removes masks that deb-systemd-helper made
itself (/usr/bin/deb-systemd-helper, unmask_service: no state file, no unmask). The unit stays
masked until the charm has written its own configuration and flags and starts it
(service.start unmasks it).
"""

from __future__ import annotations

import re
import subprocess

from lab_monitoring import packages

PACKAGE = "prometheus-alertmanager"
SERVICE = "prometheus-alertmanager"
# The system user and group the package creates (postinst: adduser --group prometheus); the
# packaged unit runs as User=prometheus. Shared with the prometheus package on one machine.
GROUP = "prometheus"

InstallError = packages.InstallError


def installed() -> bool:
    """Return True if the prometheus-alertmanager package is installed."""
    return packages.installed(PACKAGE)


def install() -> None:
    """Install the package without its recommends, its service masked so that it stays stopped.

    Raises:
        InstallError: apt failed; the message is apt's own error line.
    """
    # A mask is a link in /etc/systemd/system, allowed before the unit file exists.
    subprocess.run(["systemctl", "mask", SERVICE], capture_output=True, check=False)
    packages.install(PACKAGE)


def version() -> str | None:
    """Return the version of the installed binary, such as `0.23.0`, or None."""
    try:
        out = subprocess.run(
            ["prometheus-alertmanager", "--version"], check=True, capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    # "alertmanager, version 0.25.0 (branch: debian/sid, ...)", on stdout or stderr by version.
    match = re.search(r"version (\S+)", out.stdout + out.stderr)
    return match.group(1) if match else None
