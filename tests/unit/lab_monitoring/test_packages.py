"""apt's failures said in one line, and what dpkg says is installed.

The real apt-get and dpkg run in tests/machine (an install from nothing, an archive that does
not answer); these pin which line of apt's output is the reason.
"""

from __future__ import annotations

import subprocess

import pytest
from charmlibs import apt
from lab_monitoring import packages


@pytest.mark.parametrize(
    ("stderr", "said"),
    [
        (
            "W: Some index files failed to download.\nE: Unable to locate package prometheus\n",
            "E: Unable to locate package prometheus",
        ),
        (
            "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1234\n"
            "E: Unable to acquire the dpkg frontend lock, is another process using it?\n",
            # The first line names the cause (which process); the last only sums up.
            "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1234",
        ),
        (
            "dpkg: error processing package x (--configure)\n",
            "dpkg: error processing package x (--configure)",
        ),
        ("", "apt-get failed without a message"),
    ],
)
def test_apt_s_own_error_line_is_the_reason(stderr, said):
    assert packages.apt_error(stderr) == said


def test_an_update_failure_says_so_with_apt_s_exit_code(monkeypatch):
    def fails() -> None:
        raise subprocess.CalledProcessError(100, ["apt-get", "update"])

    monkeypatch.setattr(apt, "update", fails)

    with pytest.raises(packages.InstallError) as raised:
        packages.install("prometheus")

    assert str(raised.value) == "apt-get update failed (exit 100)"


def test_a_package_dpkg_does_not_know_is_not_installed():
    assert not packages.installed("no-such-package-for-lab-monitoring")
    assert packages.installed_version("no-such-package-for-lab-monitoring") == ""


@pytest.mark.parametrize(
    ("stderr", "said"),
    [
        (
            b"E: Failed to fetch https://apt.grafana.com/dists/stable/InRelease  Could not connect"
            b"\nE: Some index files failed to download. They have been ignored, or old ones used "
            b"instead.\n",
            # Which source failed, not apt's summary after it.
            "E: Failed to fetch https://apt.grafana.com/dists/stable/InRelease  Could not connect",
        ),
        # apt translates its messages; under a Latin-1 locale they are not UTF-8.
        (b"E: Impossible de r\xe9cup\xe9rer x\n", "E: Impossible de r\ufffdcup\ufffdrer x"),
        (b"W: only a warning\n", "apt-get update failed (exit 100)"),
    ],
)
def test_an_update_failure_says_what_apt_said(monkeypatch, stderr, said):
    # charmlibs-apt's update captures apt-get's output: stderr is bytes.
    def fails() -> None:
        raise subprocess.CalledProcessError(100, ["apt-get", "update"], stderr=stderr)

    monkeypatch.setattr(apt, "update", fails)

    with pytest.raises(packages.InstallError) as raised:
        packages.install("prometheus")

    assert str(raised.value) == said
