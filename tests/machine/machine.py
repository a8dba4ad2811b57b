"""A real machine for the tests: a Debian or Ubuntu root filesystem booted with systemd as PID 1.

The image is built once with mmdebstrap, from the archive the host's apt uses when the machine
runs the host's own release, else from the release's own archive (DEFAULT_SOURCES) or the one
given in MACHINE_APT_SOURCES, and cached as a directory. Each `Machine` boots an overlay of it
(the image and any extra layers read-only, the machine's own writes in a scratch directory that
is thrown away) with `systemd-nspawn --boot`, and runs commands inside with `nsenter`. It
shares the host's network (the host has no systemd, machined or bridge to give it another), so
its apt reaches the same archive, and services it starts answer on the host's 127.0.0.1.

Environment (all optional):
    MACHINE_DIST          the release to boot: bookworm (Debian 12), jammy (Ubuntu 22.04) or
                          noble (Ubuntu 24.04), or any release MACHINE_APT_SOURCES serves
                          (default: the host's own, its VERSION_CODENAME)
    MACHINE_APT_SOURCES   `deb` lines for it, separated by `|` (default: the host's apt sources
                          when MACHINE_DIST is the host's release, else DEFAULT_SOURCES)
    MACHINE_KEYRING       the keyring mmdebstrap checks that archive with (default: for an
                          Ubuntu release from any sources but the host's own, Ubuntu's archive
                          key, fetched from the archive and checked against the pinned
                          UBUNTU_ARCHIVE_KEY (see ubuntu_archive_keyring); else the host apt's
                          own trusted keys)
    MACHINE_CACHE         where images, keyrings, layers, wheels and .debs are kept
                          (default: ~/.cache/monitoring-charms)

For example, on a Debian 12 host, `MACHINE_DIST=noble tox -e machine` builds (once, about a
minute) and boots Ubuntu 24.04 with noble's own Prometheus, node exporter, systemd and Python.

Verified recipe and its traps: shared/design/ENVIRONMENT.md ("A real systemd machine").
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

# What the tests need inside: systemd as PID 1, Python for the charm, and the tools the charms'
# workload modules call (apt comes with minbase; gpg for the Grafana key check; journalctl
# with systemd). Nothing the charms install themselves is preinstalled.
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-venv",
    "procps",
    "curl",
    "ca-certificates",
    "iproute2",
    "gpg",
)
# Bump when _prepare_image changes, so cached images are rebuilt.
IMAGE_REVISION = 2
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UBUNTU = ("focal", "jammy", "noble")
# The archive for a release that is not the host's own (Ubuntu: universe holds prometheus).
DEFAULT_SOURCES = {
    "jammy": (
        "deb http://archive.ubuntu.com/ubuntu jammy main universe",
        "deb http://archive.ubuntu.com/ubuntu jammy-updates main universe",
        "deb http://security.ubuntu.com/ubuntu jammy-security main universe",
    ),
    "noble": (
        "deb http://archive.ubuntu.com/ubuntu noble main universe",
        "deb http://archive.ubuntu.com/ubuntu noble-updates main universe",
        "deb http://security.ubuntu.com/ubuntu noble-security main universe",
    ),
    "bookworm": (
        "deb http://deb.debian.org/debian bookworm main",
        "deb http://deb.debian.org/debian bookworm-updates main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
    ),
}
# Where a host whose apt does not trust Ubuntu's archive (a Debian host) gets Ubuntu's keyring
# (see ubuntu_archive_keyring). Only files by name: the archive answers no directory listing.
UBUNTU_ARCHIVE = "http://archive.ubuntu.com/ubuntu"
UBUNTU_KEYRING_DEB = "pool/main/u/ubuntu-keyring/ubuntu-keyring_2021.03.26_all.deb"
# "Ubuntu Archive Automatic Signing Key (2018) <ftpmaster@ubuntu.com>" (key id 871920D1991BC93C),
# the primary key that signs jammy's and noble's InRelease: shown by `gpg --show-keys` of the
# package's usr/share/keyrings/ubuntu-archive-keyring.gpg and by gpgv's VALIDSIG on both
# releases' InRelease (checked 2026-12-05). Pinned, so a substituted .deb is not trusted.
UBUNTU_ARCHIVE_KEY = "F6ECB3762474EDA9D21B7022871920D1991BC93C"
LOCK_FILE = pathlib.Path("/run/lock/monitoring-charms-machine.lock")


T = TypeVar("T")


class MachineError(RuntimeError):
    """The machine could not be built, booted or reached; the message says what failed."""


def cache_dir() -> pathlib.Path:
    """Return the directory that keeps images and wheels between runs."""
    default = pathlib.Path.home() / ".cache" / "monitoring-charms"
    path = pathlib.Path(os.environ.get("MACHINE_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def host_release() -> str:
    """Return the host's release codename (bookworm, jammy, ...)."""
    return _codename(pathlib.Path("/etc/os-release").read_text(), "the host")


def _codename(os_release: str, whose: str) -> str:
    """Return VERSION_CODENAME from the text of an os-release file."""
    for line in os_release.splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME":
            return value.strip().strip('"')
    raise MachineError(f"{whose}'s /etc/os-release has no VERSION_CODENAME")


def missing_prerequisites(image: Image | None = None) -> list[str]:
    """Return what this host lacks to build and boot machines (empty when it has it all).

    With `image`, also what building that image needs beyond mmdebstrap.
    """
    missing = []
    if os.geteuid() != 0:
        missing.append("root (mmdebstrap and systemd-nspawn need it)")
    tools = [
        ("mmdebstrap", "mmdebstrap"),
        ("systemd-nspawn", "systemd-container"),
        ("nsenter", "util-linux"),
        ("unshare", "util-linux"),
    ]
    if image is not None and image.ubuntu_key:
        tools += [("dpkg-deb", "dpkg"), ("gpgv", "gpgv"), ("gpg", "gpg")]  # the key check
    for tool, package in tools:
        if shutil.which(tool) is None:
            missing.append(f"{tool} (apt install {package})")
    return missing


def _host_sources(release: str) -> list[str]:
    """Return the host's own apt sources for `release`, as one-line `deb` entries."""
    out = subprocess.run(
        ["apt-get", "indextargets", "--format", "$(REPO_URI) $(RELEASE) $(COMPONENT)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = []
    for entry in sorted(set(out.splitlines())):
        uri, suite, component = entry.split()
        if suite == release or suite.startswith(f"{release}-"):
            lines.append(f"deb {uri} {suite} {component}")
    # One line per suite with all of its components.
    merged: dict[tuple[str, str], list[str]] = {}
    for line in lines:
        _, uri, suite, component = line.split()
        merged.setdefault((uri, suite), []).append(component)
    return [f"deb {uri} {suite} {' '.join(c)}" for (uri, suite), c in sorted(merged.items())]


def _apt_options() -> list[str]:
    """Return the host's Check-Valid-Until/Check-Date settings (an archive snapshot needs them)."""
    options = []
    for key in ("Acquire::Check-Valid-Until", "Acquire::Check-Date"):
        value = subprocess.run(
            ["apt-config", "dump", "--format", "%v", key], capture_output=True, text=True
        ).stdout.strip()
        if value:
            options.append(f'{key} "{value}";')
    return options


@dataclasses.dataclass(frozen=True)
class Image:
    """A cached root filesystem for one release."""

    release: str
    sources: tuple[str, ...]
    apt_options: tuple[str, ...]
    # The keyring mmdebstrap checks the archive with ("": the host apt's own trusted keys).
    keyring: str = ""
    # Check the archive with Ubuntu's pinned key instead, fetched when the image is built.
    ubuntu_key: bool = False

    @classmethod
    def from_environment(cls) -> Image:
        """Return the image the environment asks for (see the module docstring)."""
        release = os.environ.get("MACHINE_DIST") or host_release()
        given = os.environ.get("MACHINE_APT_SOURCES", "")
        own = False
        if given:
            sources = [s.strip() for s in given.split("|") if s.strip()]
        elif release == host_release():
            sources, own = _host_sources(release), True
        elif release in DEFAULT_SOURCES:
            sources = list(DEFAULT_SOURCES[release])
        else:
            raise MachineError(f"no apt sources known for {release}: set MACHINE_APT_SOURCES")
        if not sources:
            raise MachineError(f"the host's apt has no sources for {release}")
        keyring = os.environ.get("MACHINE_KEYRING", "")
        # The host's own sources are signed by keys its apt trusts (on GitHub's runners, some
        # not Ubuntu's); any other Ubuntu archive is checked with Ubuntu's pinned key.
        ubuntu_key = release in UBUNTU and not keyring and not own
        return cls(release, tuple(sources), tuple(_apt_options()), keyring, ubuntu_key)

    @property
    def key(self) -> str:
        """A name that changes whenever what goes into the image changes."""
        text = "\n".join(
            (str(IMAGE_REVISION), self.release, *self.sources, *self.apt_options, *self.packages)
        )
        return f"{self.release}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"

    @property
    def packages(self) -> tuple[str, ...]:
        """What the image holds besides the essential packages.

        minbase gives no apt on Ubuntu (seen with mmdebstrap 1.3.5 building jammy), and the
        machine's own apt must trust its archive: apt and the release's keyring are asked for.
        """
        keyring = "ubuntu-keyring" if self.release in UBUNTU else "debian-archive-keyring"
        return (*PACKAGES, "apt", keyring)

    @property
    def rootfs(self) -> pathlib.Path:
        """Where the image's root filesystem is cached (never booted itself: see Machine)."""
        return cache_dir() / "images" / self.key

    def ensure(self) -> pathlib.Path:
        """Build the image unless it is cached; return its root. About 30-60 s to build."""
        if self.rootfs.is_dir():
            return self.rootfs
        self.rootfs.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.rootfs.with_suffix(".lock")):
            if self.rootfs.is_dir():  # built by another process meanwhile
                return self.rootfs
            partial = self.rootfs.with_suffix(".partial")
            _remove_tree(partial)
            keyring = self.keyring
            if self.ubuntu_key:
                keyring = str(ubuntu_archive_keyring(self.release))
            command = [
                "mmdebstrap",
                "--variant=minbase",
                f"--include={','.join(self.packages)}",
                *(f"--aptopt={option}" for option in self.apt_options),
                *((f"--keyring={keyring}",) if keyring else ()),
                # Keep the package lists: the charms' own `apt-get update` is then quick.
                "--skip=cleanup/apt/lists",
                self.release,
                str(partial),
                *self.sources,
            ]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                _remove_tree(partial)
                raise MachineError(f"mmdebstrap failed:\n{result.stderr[-3000:]}")
            _prepare_image(partial, self)
            partial.rename(self.rootfs)
        return self.rootfs


def ubuntu_archive_keyring(release: str) -> pathlib.Path:
    """Return a keyring holding only Ubuntu's archive key, checked against `release` (cached).

    The key comes from the archive's own ubuntu-keyring package and is trusted only once it
    verifies the release's InRelease as the pinned UBUNTU_ARCHIVE_KEY, so neither a key from the
    host nor one handed over by hand is needed to build an Ubuntu image on a Debian host.
    """
    keyring = cache_dir() / "keyrings" / f"ubuntu-{release}-{UBUNTU_ARCHIVE_KEY[-16:]}.gpg"
    if keyring.exists():
        return keyring
    keyring.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ubuntu-keyring-") as scratch:
        work = pathlib.Path(scratch)
        deb = _download(f"{UBUNTU_ARCHIVE}/{UBUNTU_KEYRING_DEB}", work / "ubuntu-keyring.deb")
        _step("unpacking ubuntu-keyring", ["dpkg-deb", "-x", str(deb), str(work / "deb")])
        shipped = work / "deb" / "usr" / "share" / "keyrings" / "ubuntu-archive-keyring.gpg"
        if not shipped.is_file():
            raise MachineError(f"Ubuntu keyring: {UBUNTU_KEYRING_DEB} has no {shipped.name}")
        in_release = _download(f"{UBUNTU_ARCHIVE}/dists/{release}/InRelease", work / "InRelease")
        status = _step(
            f"checking {release}'s InRelease",
            ["gpgv", "--status-fd", "1", "--keyring", str(shipped), str(in_release)],
            check=False,
        ).decode(errors="replace")
        # VALIDSIG <signing key> <date> ... <primary key>: a good signature, and by whom.
        signers = [
            line.split()[-1]
            for line in status.splitlines()
            if line.startswith("[GNUPG:] VALIDSIG ")
        ]
        if UBUNTU_ARCHIVE_KEY not in signers:
            raise MachineError(
                f"Ubuntu keyring: {release}'s InRelease is not signed by the pinned key "
                f"{UBUNTU_ARCHIVE_KEY} with {UBUNTU_KEYRING_DEB}'s keyring (gpgv said:\n{status})"
            )
        (work / "gnupg").mkdir(mode=0o700)
        exported = _step(
            f"exporting {UBUNTU_ARCHIVE_KEY}",
            [
                "gpg",
                "--homedir",
                str(work / "gnupg"),
                "--batch",
                "--no-default-keyring",
                "--keyring",
                str(shipped),
                "--export",
                UBUNTU_ARCHIVE_KEY,
            ],
        )
        if not exported:
            raise MachineError(f"Ubuntu keyring: gpg exported nothing for {UBUNTU_ARCHIVE_KEY}")
        # Written aside, then renamed: another run may be building the same keyring.
        partial = keyring.with_name(f"{keyring.name}.{os.getpid()}.partial")
        partial.write_bytes(exported)
        partial.rename(keyring)
    return keyring


def _download(url: str, target: pathlib.Path) -> pathlib.Path:
    """Fetch `url` into `target` on the host; return `target`."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            target.write_bytes(response.read())
    except OSError as e:
        raise MachineError(f"Ubuntu keyring: downloading {url} failed: {e}") from e
    return target


def _step(what: str, command: list[str], *, check: bool = True) -> bytes:
    """Run one step of the keyring check; return its standard output."""
    try:
        result = subprocess.run(command, capture_output=True)
    except OSError as e:
        raise MachineError(f"Ubuntu keyring: {what} failed: {e}") from e
    if check and result.returncode != 0:
        error = result.stderr.decode(errors="replace")
        raise MachineError(f"Ubuntu keyring: {what} failed ({' '.join(command)}):\n{error}")
    return result.stdout


@contextlib.contextmanager
def _locked(path: pathlib.Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def exclusive_host() -> Iterator[None]:
    """Keep other machine-tier runs on this host out while the block runs.

    Machines share the host's network: two runs at once would fight over the same ports.
    """
    with _locked(LOCK_FILE):
        yield


class Machine:
    """One booted container. Use `Machine.boot(...)` as a context manager."""

    def __init__(self, root: pathlib.Path, name: str, nspawn: subprocess.Popen[bytes]):
        self.root = root
        self.name = name
        self._nspawn = nspawn

    @classmethod
    @contextlib.contextmanager
    def boot(
        cls,
        image: Image,
        *,
        layers: Sequence[pathlib.Path] = (),
        binds: Sequence[tuple[pathlib.Path, str]] = (),
        writable_binds: Sequence[tuple[pathlib.Path, str]] = (),
    ) -> Iterator[Machine]:
        """Boot a fresh machine from `image`, yield it, and always power it off.

        The root is an overlay: `layers` (directories, the first on top) over the image, both
        read-only, with the machine's own writes in a scratch directory that is thrown away
        afterwards. `binds` are (host directory, path inside) pairs mounted read-only;
        `writable_binds` are mounted read-write.
        """
        lower = [*layers, image.ensure()]
        scratch = pathlib.Path(tempfile.mkdtemp(prefix="machine-", dir=_scratch_dir()))
        name = f"lab-{uuid.uuid4().hex[:8]}"
        root = scratch / "root"
        machine = None
        try:
            for directory in ("root", "upper", "work"):
                (scratch / directory).mkdir()
            options = (
                f"lowerdir={':'.join(str(p) for p in lower)},"
                f"upperdir={scratch / 'upper'},workdir={scratch / 'work'}"
            )
            subprocess.run(
                ["mount", "-t", "overlay", "overlay", "-o", options, str(root)], check=True
            )
            _prepare(root, name)
            log = (scratch / f"{name}.nspawn.log").open("wb")
            # A host without systemd as PID 1 (this project's CI machines) has no machined or
            # dbus: register nowhere and stay in nspawn's own cgroup. A host with systemd
            # (GitHub's runners) gives the container a scope of its own, as usual.
            host_systemd = pathlib.Path("/run/systemd/system").is_dir()
            command = [
                "systemd-nspawn",
                "--boot",
                f"--directory={root}",
                f"--machine={name}",
                *(() if host_systemd else ("--register=no", "--keep-unit")),
                # The host's resolver, even over a symlink to systemd-resolved's stub (jammy's
                # image has one, and its resolved would have no upstream in a shared network).
                "--resolv-conf=replace-host",
                "--console=passive",
                *(f"--bind-ro={host}:{inside}" for host, inside in binds),
                *(f"--bind={host}:{inside}" for host, inside in writable_binds),
            ]
            nspawn = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
            log.close()
            machine = cls(root, name, nspawn)
            machine._wait_booted()
            yield machine
        finally:
            if machine is not None:
                machine.poweroff()
            if os.path.ismount(root):
                subprocess.run(["umount", str(root)], check=True)
            _remove_tree(scratch)

    @property
    def release(self) -> str:
        """The machine's release codename (jammy, noble, bookworm), from its /etc/os-release."""
        return _codename(self.run("cat", "/etc/os-release").stdout, self.name)

    def changes(self, inside: str) -> pathlib.Path:
        """Return the host path of what the machine itself wrote under `inside` (its layer)."""
        return self.root.parent / "upper" / inside.lstrip("/")

    # --- inside the machine -------------------------------------------------------------------

    @property
    def pid1(self) -> int:
        """The host PID of the container's systemd (nspawn's only child)."""
        children = _children(self._nspawn.pid)
        if not children:
            raise MachineError(f"{self.name} has no init process: {self.boot_log()}")
        return children[0]

    def run(
        self,
        *command: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 300,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the machine as root; raise MachineError if `check` and it fails."""
        variables = {"PATH": PATH, "LANG": "C.UTF-8", "HOME": "/root", **(env or {})}
        result = subprocess.run(
            [
                "nsenter",
                f"--target={self.pid1}",
                "--all",
                "env",
                "-i",
                *(f"{k}={v}" for k, v in variables.items()),
                *command,
            ],
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise MachineError(
                f"{' '.join(command)} exited {result.returncode} in {self.name}:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def sh(self, script: str, *, check: bool = True) -> str:
        """Run a shell script inside the machine; return its standard output."""
        return self.run("sh", "-ec", script, check=check).stdout

    def path(self, inside: str) -> pathlib.Path:
        """Return the host path of a file inside the machine (to read it without nsenter)."""
        return self.root / inside.lstrip("/")

    def journal(self, unit: str, lines: int = 60) -> str:
        """Return the last lines the journal holds for a systemd unit."""
        return self.run(
            "journalctl", "-u", unit, "-n", str(lines), "--no-pager", "-o", "cat", check=False
        ).stdout

    def endless_restarts(self, service: str) -> None:
        """Make systemd restart `service` for as long as it keeps dying (no start limit).

        A packaged unit gives up after five tries in about a second, so a status collected a
        moment later usually finds it `failed`; without the limit every instant of the loop
        (`active` 40% of the time on jammy's prometheus.service, `auto-restart` the rest) is
        there for the hooks to meet.
        """
        dropin = self.path(f"/etc/systemd/system/{service}.service.d/test-endless.conf")
        dropin.parent.mkdir(parents=True, exist_ok=True)
        dropin.write_text("[Unit]\nStartLimitIntervalSec=0\n")
        self.run("systemctl", "daemon-reload")

    def boot_log(self) -> str:
        """Return what systemd-nspawn printed (the container's console)."""
        log = self.root.parent / f"{self.name}.nspawn.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    # --- lifecycle ----------------------------------------------------------------------------

    def _wait_booted(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        state = "not started"
        while state not in ("running", "degraded"):
            if self._nspawn.poll() is not None or time.monotonic() > deadline:
                raise MachineError(f"{self.name} did not boot ({state}):\n{self.boot_log()}")
            time.sleep(0.05)
            # nspawn's child execs systemd a moment after it is forked; until systemd listens,
            # systemctl says "offline".
            if _command(self._nspawn.pid) != "systemd":
                continue
            state = self.run(
                "systemctl", "is-system-running", "--wait", check=False, timeout=timeout
            ).stdout.strip()

    def poweroff(self, timeout: float = 30) -> None:
        """Power the machine off; kill its nspawn (only that process group) if it hangs."""
        if self._nspawn.poll() is None:
            with contextlib.suppress(MachineError, subprocess.TimeoutExpired):
                self.run("systemctl", "poweroff", "--no-block", check=False, timeout=10)
            try:
                self._nspawn.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # nspawn runs in its own session; signal only that process group.
                os.killpg(self._nspawn.pid, signal.SIGKILL)
                self._nspawn.wait(timeout=10)


def _prepare_image(root: pathlib.Path, image: Image) -> None:
    """Settings every machine of the image shares (see ENVIRONMENT.md's traps)."""
    if image.apt_options:
        conf = root / "etc" / "apt" / "apt.conf.d" / "99machine-tier"
        conf.write_text("\n".join(image.apt_options) + "\n")
    # dpkg's fsync per file is slow on an overlay and buys nothing on a throwaway machine.
    (root / "etc" / "dpkg" / "dpkg.cfg.d" / "unsafe-io").write_text("force-unsafe-io\n")
    # A machine-id is generated at boot; an empty file makes systemd do that quietly.
    (root / "etc" / "machine-id").write_text("")


def _prepare(root: pathlib.Path, name: str) -> None:
    """Give one machine its name."""
    (root / "etc" / "hostname").write_text(f"{name}\n")
    # Without localhost in /etc/hosts, Prometheus's self-scrape of localhost:PORT is down.
    (root / "etc" / "hosts").write_text(
        f"127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n127.0.1.1 {name}\n"
    )


def _scratch_dir() -> pathlib.Path:
    path = cache_dir() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _remove_tree(path: pathlib.Path) -> None:
    """Remove an unpacked machine, refusing if anything is still mounted below it."""
    mounted = [m for m in _mount_points() if m == str(path) or m.startswith(f"{path}/")]
    if mounted:
        raise MachineError(f"still mounted under {path}: {mounted}")
    shutil.rmtree(path, ignore_errors=True)


def _mount_points() -> list[str]:
    lines = pathlib.Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4] for line in lines]


def leftover_mounts() -> list[str]:
    """Return mount points under the scratch directory (there should never be any)."""
    scratch = str(_scratch_dir())
    return [m for m in _mount_points() if m.startswith(f"{scratch}/")]


def _children(pid: int) -> list[int]:
    """Return the PIDs whose parent is `pid`."""
    children = []
    # Not Path.glob("[0-9]*/stat"): it stats each match, and a process that exits meanwhile
    # makes that raise ProcessLookupError (ESRCH) from inside glob, where nothing catches it.
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        with contextlib.suppress(OSError):
            # The command name is in parentheses and may hold spaces: split after it.
            fields = pathlib.Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children.append(int(name))
    return sorted(children)


def _command(parent: int) -> str:
    """Return the command name of `parent`'s first child ("" if it has none)."""
    children = _children(parent)
    if not children:
        return ""
    with contextlib.suppress(OSError):
        return pathlib.Path(f"/proc/{children[0]}/comm").read_text().strip()
    return ""


def wheels(python_version: str, requirements: Sequence[str]) -> pathlib.Path:
    """Download (once) the wheels for `requirements` on the host; return their directory.

    pip inside the machine cannot verify PyPI's certificate chain on every host (ENVIRONMENT.md,
    trap 1), so the host downloads and the machine installs with `--no-index`.
    """
    text = "\n".join(sorted(requirements))
    key = hashlib.sha256(f"{python_version}\n{text}".encode()).hexdigest()[:12]
    target = cache_dir() / "wheels" / f"cp{python_version.replace('.', '')}-{key}"
    if (target / ".complete").exists():
        return target
    with _locked(target.with_suffix(".lock")):
        if (target / ".complete").exists():
            return target
        target.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--only-binary=:all:",
                f"--python-version={python_version}",
                "--platform=manylinux2014_x86_64",
                "--implementation=cp",
                f"--dest={target}",
                *requirements,
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise MachineError(f"pip download failed:\n{result.stderr[-3000:]}")
        (target / ".complete").write_text(text)
    return target


def wait_for(condition: Callable[[], T], *, timeout: float = 30, what: str = "it") -> T:
    """Poll `condition` until it returns something truthy; raise AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = condition()
        except (OSError, ValueError, KeyError) as e:
            last_error, result = e, None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} ({last_error})")
        time.sleep(0.2)


@contextlib.contextmanager
def port_taken() -> Iterator[int]:
    """Hold a free TCP port on every address, as another service would; yield its number.

    Machines share the host's network, so a service in the machine cannot bind it either.
    """
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as held:
        held.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        held.bind(("::", 0))
        held.listen()
        yield held.getsockname()[1]
