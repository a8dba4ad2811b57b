"""Grafana's APT repository on this machine: its signing key, the source, the version pin.

Grafana OSS comes from https://apt.grafana.com, trusted only through a key with the pinned
fingerprint, and kept within one major version by an apt preferences file; or from a .deb file
the operator attached. Installing goes through lab_monitoring.packages (no recommends, apt's own
error line).
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from lab_monitoring import files, packages

import grafana
from grafana import paths

logger = logging.getLogger(__name__)

KEY_URL = "https://apt.grafana.com/gpg.key"
# Grafana Labs' APT signing key (https://apt.grafana.com). Anything else is refused.
KEY_FINGERPRINT = "B53AE77BADB630A683046005963FA27710458545"
# Every Grafana release is in the one `stable` suite: the version pin picks the major.
REPOSITORY_URI = "https://apt.grafana.com stable main"
# The record type of a fingerprint in `gpg --with-colons` output (doc/DETAILS in GnuPG).
FINGERPRINT_RECORD = "fpr"  # codespell:ignore fpr
# A signing key is a few kB; anything much larger is not the file we asked for.
MAX_KEY_BYTES = 1 << 20
# apt_preferences(5): from 990 up to 999 a pinned version wins over every other candidate
# (the repository's newer majors have 500, a Default-Release 990), yet below 1000 apt never
# downgrades to it. So apt itself keeps Grafana in the pinned major and never takes it back a
# major, whatever runs `apt upgrade` (the charm refuses a lower major before apt runs, too).
PIN_PRIORITY = 999
_MAJOR = re.compile(r"(?:\d+:)?(?P<major>\d+)\.")


class InstallError(grafana.GrafanaError):
    """Grafana could not be installed: no key, no network, apt refused; the message says why."""


class KeyMismatchError(InstallError):
    """The key served at KEY_URL is not the pinned Grafana Labs key."""


# --- what is installed ------------------------------------------------------------------------


def installed() -> bool:
    """Return True if the grafana package is installed."""
    return packages.installed(grafana.PACKAGE)


def installed_version() -> str:
    """Return the installed Grafana version, such as "12.3.1"; "" if it is not installed."""
    return packages.installed_version(grafana.PACKAGE)


def major_of(version: str) -> int | None:
    """Return the major version of a Debian version string ("12.3.1" -> 12), None if none."""
    found = _MAJOR.match(version)
    return int(found["major"]) if found else None


def sha256(path: Path) -> str:
    """Return the SHA-256 of a file, to notice a newly attached resource."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- installing -------------------------------------------------------------------------------


def install_from_repository(major: int, download: Callable[[str], bytes] | None = None) -> None:
    """Install (or upgrade to) the newest Grafana OSS of `major` from apt.grafana.com.

    An installed Grafana of an older major is upgraded in place; Grafana migrates its database
    when it next starts. The caller never asks for an older major than the installed one.

    Raises:
        KeyMismatchError: the downloaded key is not Grafana's; nothing was written.
        InstallError: the key could not be fetched or apt failed; the repository's keyring,
            source and pin are not left behind.
    """
    add_repository(download or fetch)
    pin(major)
    try:
        packages.install(grafana.PACKAGE)
    except packages.InstallError as e:
        # A source apt cannot reach makes every `apt-get update --error-on=any` on the machine
        # fail (plain `apt-get update` only warns), and that is what charmlibs-apt runs: the
        # Prometheus and node-exporter charms' installs on this machine would fail too (seen on
        # a real machine: tests/machine/test_grafana.py). The next hook writes them again.
        remove_repository()
        raise InstallError(f"apt could not install {grafana.PACKAGE}: {e}") from None


def install_from_file(deb: Path) -> None:
    """Install (or upgrade to) a Grafana .deb file; its dependencies come from the archive.

    The operator chose this file: the charm's repository, key and version pin are removed
    first, so that neither apt nor an `apt upgrade` later replaces it with another version.

    Raises:
        InstallError: apt refused the file.
    """
    remove_repository()
    try:
        # A path with a slash: apt-get installs the file and resolves its dependencies.
        packages.install(str(deb.absolute()), update=False)
    except packages.InstallError as e:
        raise InstallError(f"apt could not install {deb.name}: {e}") from None


# --- the repository ---------------------------------------------------------------------------


def repository_line() -> str:
    """Return the apt source line of Grafana's repository, signed by the pinned key only."""
    return f"deb [signed-by={paths.PATHS.keyring}] {REPOSITORY_URI}\n"


def add_repository(download: Callable[[str], bytes] | None = None) -> None:
    """Add apt.grafana.com as an apt source signed by the pinned key (both files root, 0644).

    Raises:
        KeyMismatchError: the downloaded key is not Grafana's; nothing was written.
        InstallError: the key could not be fetched.
    """
    key = (download or fetch)(KEY_URL)
    check_key(key)
    files.write(paths.PATHS.keyring, key, mode=0o644)
    files.write(paths.PATHS.apt_source, repository_line(), mode=0o644)


def render_pin(major: int) -> str:
    """Return the apt preferences that keep the grafana package within `major`."""
    return (
        f"Explanation: Written by the grafana charm: Grafana {major}.x (option grafana-version)\n"
        f"Package: {grafana.PACKAGE}\n"
        f"Pin: version {major}.*\n"
        f"Pin-Priority: {PIN_PRIORITY}\n"
    )


def pin(major: int) -> bool:
    """Keep apt's grafana within `major` (root, 0644); return True if the pin changed."""
    return files.write(paths.PATHS.apt_preferences, render_pin(major), mode=0o644)


def remove_repository() -> None:
    """Remove apt.grafana.com's source, keyring and version pin from the machine's apt."""
    for path in (paths.PATHS.apt_source, paths.PATHS.keyring, paths.PATHS.apt_preferences):
        path.unlink(missing_ok=True)


# --- the signing key --------------------------------------------------------------------------


def fetch(url: str) -> bytes:
    """Return the body of an HTTPS GET, with certificate checks and a timeout.

    Through the hook's proxy settings, if any: apt.grafana.com is on the Internet.
    """
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (fixed https URL)
            return response.read(MAX_KEY_BYTES)
    except (urllib.error.URLError, OSError) as e:
        raise InstallError(f"cannot download {url}: {e}") from None


def primary_key_fingerprints(key: bytes) -> list[str]:
    """Return the fingerprint of every primary key in an OpenPGP key file, as gpg reads it.

    Raises:
        InstallError: gpg is missing or cannot read the data as a key.
    """
    if shutil.which("gpg") is None:
        raise InstallError("gpg is not installed (apt install gpg)")
    # A throwaway home: --show-keys imports nothing, but gpg still wants a home directory.
    with tempfile.TemporaryDirectory() as home:
        result = subprocess.run(
            ["gpg", "--homedir", home, "--batch", "--show-keys", "--with-colons"],
            input=key,
            capture_output=True,
            check=False,
        )
    if result.returncode != 0:
        raise InstallError(f"gpg cannot read the key: {result.stderr.decode(errors='replace')}")
    fingerprints: list[str] = []
    key_type = ""
    # --with-colons lists each key ("pub" primary, "sub" subkey) followed by its fingerprint
    # record. Subkeys are trusted through their primary key's signature, so only primaries are
    # pinned.
    for line in result.stdout.decode(errors="replace").splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sub"):
            key_type = fields[0]
        elif fields[0] == FINGERPRINT_RECORD and key_type == "pub" and len(fields) > 9:
            fingerprints.append(fields[9].upper())
            key_type = ""
    return fingerprints


def check_key(key: bytes, expected: str | None = None) -> None:
    """Accept `key` only if it holds primary keys and each one has the pinned fingerprint.

    Raises:
        KeyMismatchError: a primary key is missing or has another fingerprint.
    """
    expected = expected or KEY_FINGERPRINT
    found = primary_key_fingerprints(key)
    if not found or any(fingerprint != expected for fingerprint in found):
        shown = ", ".join(found) or "no key"
        raise KeyMismatchError(
            f"{KEY_URL} served {shown}, not the pinned Grafana key {expected}; nothing installed"
        )
