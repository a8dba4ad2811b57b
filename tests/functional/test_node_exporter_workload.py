"""The node-exporter workload module against the real exporter binary and real files.

Flags are written by the same functions the charm calls and the exporter is started from the
flags file the way the packaged systemd unit starts it (`prometheus-node-exporter $ARGS`).
Sharing one exporter between units is run on real claim files in a temporary directory; the
systemd side (start, restart, stop) is the lead's machine tier.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pathlib
import re
import shlex
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import loopback
import pytest
from node_exporter import exporter, flags, sharing
from node_exporter import paths as workload_paths

pytestmark = pytest.mark.skipif(
    not shutil.which(exporter.BINARY),
    reason="needs the prometheus-node-exporter package (apt install prometheus-node-exporter)",
)

A = "node-exporter/0"
B = "node-exporter/1"
OTHER = "rack-exporter/0"


@pytest.fixture
def paths(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> workload_paths.Paths:
    """Point the module's files at a temporary directory with a Juju-like agents directory."""
    tmp_paths = workload_paths.Paths(
        defaults=tmp_path / "etc" / "default" / "prometheus-node-exporter",
        claims=tmp_path / "var" / "lib" / "node-exporter-charm" / "claims",
        agents=tmp_path / "var" / "lib" / "juju" / "agents",
    )
    monkeypatch.setattr(workload_paths, "PATHS", tmp_paths)
    for unit in (A, B, OTHER):
        agent_dir(unit).mkdir(parents=True)
    return tmp_paths


def agent_dir(unit: str) -> pathlib.Path:
    """The Juju agent directory of `unit` under the test's agents directory."""
    agents = workload_paths.PATHS.agents
    assert agents is not None
    return agents / ("unit-" + unit.replace("/", "-"))


def args_in(paths: workload_paths.Paths) -> list[str]:
    """What systemd passes the exporter: `$ARGS` from the EnvironmentFile, split into words."""
    text = paths.defaults.read_text()
    return shlex.split(text.split("ARGS=", 1)[1])[0].split()


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def collectors_run(text: str) -> set[str]:
    return set(re.findall(r'node_scrape_collector_success\{collector="([a-z0-9_]+)"\}', text))


@pytest.fixture
def start_exporter(
    paths: workload_paths.Paths, tmp_path: pathlib.Path, run_process: Callable[..., Any]
) -> Iterator[Callable[[], int]]:
    """Return a function that starts the exporter from the flags file and waits until it serves."""
    with contextlib.ExitStack() as started:

        def start() -> int:
            args = args_in(paths)
            port = flags.port_of(args)
            assert port is not None
            log = tmp_path / f"exporter-{port}.log"
            started.enter_context(
                run_process([exporter.BINARY, *args], f"http://127.0.0.1:{port}/metrics", log)
            )
            return port

        yield start


# --- the binary ---------------------------------------------------------------------------


def test_known_collectors_come_from_the_binarys_help():
    known = exporter.known_collectors()

    for name in ("cpu", "diskstats", "filesystem", "loadavg", "meminfo", "netdev", "uname"):
        assert known.get(name) is True, name
    assert known.get("processes") is False
    # Debian's and Ubuntu's builds switch the systemd collector on (upstream leaves it off);
    # the README and the NodeSystemdUnitFailed rule count on it.
    assert known.get("systemd") is True
    assert len(known) > 30


def test_every_collector_the_help_lists_is_a_flag_the_binary_accepts_both_ways():
    known = exporter.known_collectors()
    switches = [f"--collector.{name}" for name in known]
    switches += [f"--no-collector.{name}" for name in known]

    # kingpin parses every flag before acting on --help: an unknown one fails the whole run.
    result = subprocess.run(
        [exporter.BINARY, *switches, "--help"], capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_collector_flag_is_refused_by_the_binary():
    result = subprocess.run(
        [exporter.BINARY, "--collector.gpu", "--help"], capture_output=True, text=True
    )

    assert result.returncode != 0
    assert "gpu" in result.stdout + result.stderr


def test_version_comes_from_the_binary():
    # Which stream kingpin prints the version to depends on its version: read both.
    result = subprocess.run(
        [exporter.BINARY, "--version"], capture_output=True, text=True, check=True
    )

    version = exporter.version()

    assert version
    assert re.match(r"[0-9]+\.[0-9]+\.[0-9]+", version)
    assert f"version {version}" in result.stdout + result.stderr


def test_installed_sees_the_package():
    assert exporter.installed()


# --- flags --------------------------------------------------------------------------------


def test_written_flags_start_the_exporter_with_those_collectors(paths, start_exporter):
    port = loopback.free_port()
    flags.write(
        flags.render(port=port, collectors={"processes": True, "cpu": False}, log_level="warn")
    )

    start_exporter()

    text = metrics(port)
    assert "processes" in collectors_run(text)
    assert "cpu" not in collectors_run(text)
    assert "meminfo" in collectors_run(text)
    assert "node_processes_threads" in text


def test_flags_file_is_what_the_packaged_unit_reads(paths):
    flags.write(flags.render(port=9100, collectors={}, log_level="info"))

    text = paths.defaults.read_text()
    assert text.startswith("# Managed by the node-exporter charm")
    assert text.splitlines()[-1] == 'ARGS="--web.listen-address=:9100 --log.level=info"'


def test_unchanged_flags_are_not_written_again(paths):
    args = flags.render(port=9100, collectors={"systemd": True}, log_level="info")
    assert flags.write(args)
    before = paths.defaults.stat().st_mtime_ns

    assert not flags.write(args)
    assert paths.defaults.stat().st_mtime_ns == before


def test_files_are_replaced_in_place_when_the_temp_dir_is_another_filesystem(paths, monkeypatch):
    # A lab machine may mount /tmp as tmpfs: a file staged there cannot be renamed into /etc.
    other = pathlib.Path("/dev/shm")
    paths.defaults.parent.mkdir(parents=True)
    if not other.is_dir() or other.stat().st_dev == paths.defaults.parent.stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's files")
    with tempfile.TemporaryDirectory(dir=other) as elsewhere:
        monkeypatch.setattr(tempfile, "tempdir", elsewhere)
        args = flags.render(port=9100, collectors={}, log_level="info")

        assert flags.write(args)
        assert sharing.claim(A, args).unit == A

    assert paths.defaults.read_text().endswith(
        'ARGS="--web.listen-address=:9100 --log.level=info"\n'
    )
    assert paths.defaults.stat().st_mode & 0o777 == 0o644  # the packaged unit reads it as root


def test_a_flag_that_would_break_the_args_line_is_refused(paths):
    with pytest.raises(ValueError, match="unsafe"):
        flags.write(['--web.listen-address=:9100" --web.config.file=/x'])

    assert not paths.defaults.exists()


# --- sharing one exporter -----------------------------------------------------------------

WIDE = flags.render(port=9100, collectors={}, log_level="info")
NARROW = flags.render(port=9200, collectors={"wifi": False}, log_level="warn")


def test_the_first_claim_owns_the_exporter(paths):
    owner = sharing.claim(B, WIDE)

    assert owner == sharing.Claim(B, tuple(WIDE))
    assert json.loads((paths.claims / "unit-node-exporter-1.json").read_text()) == {
        "unit": B,
        "args": WIDE,
    }


def test_the_unit_that_sorts_first_owns_it_whoever_claims_last(paths):
    sharing.claim(OTHER, NARROW)
    sharing.claim(B, WIDE)

    assert sharing.claim(A, WIDE).unit == A
    assert sharing.claim(OTHER, NARROW).unit == A
    assert [c.unit for c in sharing.live_claims()] == [A, B, OTHER]


def test_unit_numbers_sort_as_numbers(paths):
    for number in (10, 9, 100):
        agent_dir(f"node-exporter/{number}").mkdir()
        sharing.claim(f"node-exporter/{number}", WIDE)

    assert sharing.live_claims()[0].unit == "node-exporter/9"


def test_every_unit_writes_the_owners_flags_so_nothing_flips(paths):
    for unit, args in [(OTHER, NARROW), (A, WIDE), (OTHER, NARROW), (A, WIDE)]:
        flags.write(sharing.claim(unit, args).args)

    assert args_in(paths) == WIDE
    assert not flags.write(sharing.claim(OTHER, NARROW).args)


def test_releasing_the_owner_hands_the_exporter_to_the_next(paths):
    sharing.claim(A, WIDE)
    sharing.claim(OTHER, NARROW)

    owner = sharing.release(A)

    assert owner == sharing.Claim(OTHER, tuple(NARROW))


def test_releasing_the_last_claim_leaves_nothing(paths):
    sharing.claim(A, WIDE)

    assert sharing.release(A) is None
    assert not paths.claims.exists()


def test_releasing_a_unit_that_never_claimed_is_harmless(paths):
    sharing.claim(A, WIDE)

    assert sharing.release(B) == sharing.Claim(A, tuple(WIDE))


def test_a_claim_of_a_unit_no_longer_on_the_machine_is_dropped(paths, caplog):
    sharing.claim(A, WIDE)
    sharing.claim(OTHER, NARROW)
    # Juju removed node-exporter/0 without its remove hook (juju remove-unit --force).
    agent_dir(A).rmdir()

    with caplog.at_level(logging.WARNING):
        owner = sharing.claim(OTHER, NARROW)

    assert owner.unit == OTHER
    assert not (paths.claims / "unit-node-exporter-0.json").exists()
    assert "node-exporter/0, which is no longer on this machine" in caplog.text


def test_the_asking_unit_is_alive_whatever_its_agent_directory_says(paths):
    agent_dir(B).rmdir()

    assert sharing.claim(B, WIDE).unit == B


def test_without_juju_agents_nothing_counts_as_stale(paths, monkeypatch):
    # A machine without Juju (the lead's machine tier runs the module unpatched there).
    monkeypatch.setattr(
        workload_paths,
        "PATHS",
        workload_paths.Paths(
            defaults=paths.defaults, claims=paths.claims, agents=paths.claims.parent / "nowhere"
        ),
    )
    sharing.claim(A, WIDE)

    assert sharing.claim(OTHER, NARROW).unit == A


def test_an_unreadable_claim_is_ignored_with_a_warning(paths, caplog):
    sharing.claim(OTHER, NARROW)
    (paths.claims / "unit-node-exporter-0.json").write_text("{not json")
    (paths.claims / "unit-node-exporter-1.json").write_text('{"unit": "x", "args": []}')

    with caplog.at_level(logging.WARNING):
        owner = sharing.claim(OTHER, NARROW)

    assert owner.unit == OTHER
    assert caplog.text.count("ignoring unreadable claim") == 2


def test_a_claim_with_unsafe_flags_is_ignored(paths):
    sharing.claim(OTHER, NARROW)
    (paths.claims / "unit-node-exporter-0.json").write_text(
        json.dumps({"unit": A, "args": ["--web.config.file=/tmp/x y"]})
    )

    assert sharing.claim(OTHER, NARROW).unit == OTHER


def test_owner_handover_moves_the_real_exporter_to_the_successors_port(paths, start_exporter):
    first = flags.render(port=loopback.free_port(), collectors={}, log_level="info")
    second = flags.render(port=loopback.free_port(), collectors={}, log_level="info")
    flags.write(sharing.claim(A, first).args)
    flags.write(sharing.claim(OTHER, second).args)
    assert start_exporter() == flags.port_of(first)

    owner = sharing.release(A)
    assert owner is not None
    changed = flags.write(owner.args)

    assert changed
    assert start_exporter() == flags.port_of(second)
    assert "node_exporter_build_info" in metrics(flags.port_of(second) or 0)


def test_the_shipped_paths_are_machine_wide_and_the_packages_own():
    # Every unit on the machine (each with its own charm directory) must find the same claims;
    # the flags file is the one the packaged unit's EnvironmentFile= names.
    shipped = workload_paths.Paths()
    assert shipped.claims == pathlib.Path("/var/lib/node-exporter-charm/claims")
    assert shipped.defaults == pathlib.Path("/etc/default/prometheus-node-exporter")
    assert shipped.agents == pathlib.Path("/var/lib/juju/agents")
