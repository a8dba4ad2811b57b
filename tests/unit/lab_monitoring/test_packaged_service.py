"""The packaged_service library's pure parts: log parsing, the low-port drop-in, crash signs.

Starting a real unit and reading the real journal is exercised on a systemd machine
(tests/machine/test_prometheus.py); these pin the decisions that do not need one.
"""

from __future__ import annotations

import pytest
from lab_monitoring import packaged_service


def test_logfmt_reads_quoted_values_as_go_services_write_them():
    line = (
        "ts=2026-11-25T19:51:55.117Z caller=main.go:802 level=error "
        'msg="Unable to start web listener" err="listen tcp :80: bind: permission denied"'
    )

    fields = packaged_service.logfmt(line)

    assert fields["level"] == "error"
    assert fields["msg"] == "Unable to start web listener"
    assert fields["err"] == "listen tcp :80: bind: permission denied"


@pytest.mark.parametrize(
    "line", ["prometheus: error: unknown long flag '--x', try --help", "", "just words"]
)
def test_logfmt_of_a_line_that_is_not_logfmt_is_empty(line):
    assert packaged_service.logfmt(line) == {}


@pytest.fixture
def systemd_dir(tmp_path, monkeypatch):
    """Drop-ins go to a temporary directory; daemon-reloads are counted."""
    reloads: list[str] = []
    monkeypatch.setattr(packaged_service, "SYSTEMD_DIR", tmp_path)
    monkeypatch.setattr(packaged_service.systemd, "daemon_reload", lambda: reloads.append("x"))
    return tmp_path, reloads


def test_a_low_port_gets_a_drop_in_with_the_capability_and_a_daemon_reload(systemd_dir):
    directory, reloads = systemd_dir

    changed = packaged_service.allow_low_ports("prometheus", True, "prometheus")

    dropin = directory / "prometheus.service.d" / packaged_service.DROPIN_NAME
    text = dropin.read_text()
    assert changed
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in text
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in text
    assert "PrivateUsers=no" in text
    assert reloads == ["x"]


def test_the_same_drop_in_again_changes_nothing(systemd_dir):
    _, reloads = systemd_dir
    packaged_service.allow_low_ports("prometheus", True, "prometheus")

    changed = packaged_service.allow_low_ports("prometheus", True, "prometheus")

    assert not changed
    assert reloads == ["x"]


def test_a_high_port_removes_the_drop_in(systemd_dir):
    directory, reloads = systemd_dir
    packaged_service.allow_low_ports("grafana-server", True, "grafana")

    changed = packaged_service.allow_low_ports("grafana-server", False, "grafana")

    assert changed
    assert not (directory / "grafana-server.service.d" / packaged_service.DROPIN_NAME).exists()
    assert reloads == ["x", "x"]


def test_no_drop_in_and_none_wanted_touches_nothing(systemd_dir):
    directory, reloads = systemd_dir

    assert not packaged_service.allow_low_ports("prometheus", False, "prometheus")
    assert list(directory.iterdir()) == []
    assert reloads == []


def test_the_shipped_drop_in_directory_is_systemd_s():
    assert str(packaged_service.SYSTEMD_DIR) == "/etc/systemd/system"


@pytest.mark.parametrize(
    ("unit", "died"),
    [
        ({"ActiveState": "active", "SubState": "running", "NRestarts": "0"}, False),
        ({"ActiveState": "activating", "SubState": "start", "NRestarts": "0"}, False),
        # Seen on a real machine 0.3 s after `systemctl restart` of a Prometheus on :80.
        ({"ActiveState": "active", "SubState": "running", "NRestarts": "1"}, True),
        ({"ActiveState": "activating", "SubState": "auto-restart", "NRestarts": "0"}, True),
        ({"ActiveState": "failed", "SubState": "failed", "NRestarts": "4"}, True),
        # A unit without Restart= (or after StartLimitBurst was reset) fails with no restarts.
        ({"ActiveState": "failed", "SubState": "failed", "NRestarts": "0"}, True),
        ({"ActiveState": "inactive", "SubState": "dead", "NRestarts": "0"}, True),
    ],
)
def test_what_counts_as_a_crash(unit, died):
    assert packaged_service._died(unit) is died


@pytest.mark.parametrize(
    ("failure", "failed_settings", "seconds_ago", "held_back"),
    [
        ("cannot listen on :80", "port=80", 0, True),
        ("cannot listen on :80", "port=80", 3599, True),
        ("cannot listen on :80", "port=80", 3600, False),  # an hour later: tried again
        ("cannot listen on :80", "port=81", 0, False),  # other settings: tried at once
        ("", "port=80", 0, False),  # the last start worked
    ],
)
def test_a_failed_start_is_held_back_for_an_hour_with_the_same_settings(
    failure, failed_settings, seconds_ago, held_back
):
    now = 1_800_000_000.0
    assert packaged_service.START_RETRY_SECONDS == 3600
    record = {"failure": failure, "settings": failed_settings, "at": now - seconds_ago}

    assert packaged_service.StartGuard(record).held_back("port=80", now) is held_back


def test_a_held_back_start_is_not_made():
    now = 1_800_000_000.0
    record = {"failure": "cannot listen on :80", "settings": "port=80", "at": now - 10}
    made: list[str] = []

    def start() -> bool:
        made.append("x")
        return True

    outcome = packaged_service.StartGuard(record).start("port=80", start, now)

    assert outcome is None
    assert made == []


def test_a_failed_start_is_recorded_with_its_settings_and_time():
    record: dict[str, object] = {}

    def dies() -> bool:
        raise packaged_service.StartError("prometheus cannot listen on :80: permission denied")

    outcome = packaged_service.StartGuard(record).start("port=80", dies, 1000.0)

    assert outcome is packaged_service.Outcome.FAILED
    assert record == {
        "failure": "prometheus cannot listen on :80: permission denied",
        "settings": "port=80",
        "at": 1000.0,
    }


@pytest.mark.parametrize(("up", "outcome"), [(True, "up"), (False, "starting")])
def test_a_start_that_works_forgets_the_last_failure(up, outcome):
    record = {"failure": "cannot listen on :80", "settings": "port=80", "at": 1000.0}
    guard = packaged_service.StartGuard(record)

    started = guard.start("port=81", lambda: up, 1001.0)

    assert started is not None
    assert started.value == outcome
    assert guard.failure == ""


def test_systemctl_refusing_is_not_recorded_as_a_failed_start():
    record: dict[str, object] = {}

    def refused() -> bool:
        raise packaged_service.systemd.SystemdError("Unit prometheus.service not found.")

    with pytest.raises(packaged_service.systemd.SystemdError):
        packaged_service.StartGuard(record).start("port=80", refused, 1000.0)
    assert record == {}


def test_a_start_that_dies_raises_the_services_own_reason(monkeypatch):
    died = packaged_service.Started(packaged_service.Outcome.FAILED, ["err=taken"])
    monkeypatch.setattr(packaged_service, "start", lambda *args, **kwargs: died)

    with pytest.raises(packaged_service.StartError) as raised:
        packaged_service.confirmed_start("x", lambda: True, lambda log: f"why: {log[0]}")

    assert str(raised.value) == "why: err=taken"


@pytest.mark.parametrize(("outcome", "up"), [("up", True), ("starting", False)])
def test_a_start_that_lives_says_whether_it_serves_yet(monkeypatch, outcome, up):
    started = packaged_service.Started(packaged_service.Outcome(outcome))
    monkeypatch.setattr(packaged_service, "start", lambda *args, **kwargs: started)

    assert packaged_service.confirmed_start("x", lambda: True, lambda log: "") is up


@pytest.mark.parametrize(
    ("unit", "ready", "health"),
    [
        # The states measured on jammy's prometheus.service while its port was taken: each of
        # systemd's five tries is `active running` for a moment, `auto-restart` in between,
        # then `failed`. Every one of them is a failing service, never a starting one.
        ({"ActiveState": "active", "SubState": "running", "NRestarts": "2"}, False, "failing"),
        (
            {"ActiveState": "activating", "SubState": "auto-restart", "NRestarts": "1"},
            False,
            "failing",
        ),
        ({"ActiveState": "failed", "SubState": "failed", "NRestarts": "4"}, False, "failing"),
        # A process systemd brought back after a crash, serving again: up.
        ({"ActiveState": "active", "SubState": "running", "NRestarts": "1"}, True, "up"),
        ({"ActiveState": "active", "SubState": "running", "NRestarts": "0"}, True, "up"),
        # Alive since its last start, not ready yet (a large TSDB loading): starting.
        ({"ActiveState": "active", "SubState": "running", "NRestarts": "0"}, False, "starting"),
        ({"ActiveState": "activating", "SubState": "start", "NRestarts": "0"}, False, "starting"),
        ({"ActiveState": "inactive", "SubState": "dead", "NRestarts": "0"}, False, "stopped"),
        ({"ActiveState": "deactivating", "SubState": "stop-sigterm"}, False, "stopped"),
    ],
)
def test_health_reads_systemds_restart_loop_as_failing(monkeypatch, unit, ready, health):
    monkeypatch.setattr(packaged_service, "state", lambda service: unit)

    assert packaged_service.health("prometheus", lambda: ready).value == health


def test_health_does_not_ask_a_crashing_service_whether_it_is_ready(monkeypatch):
    asked: list[str] = []
    failed = {"ActiveState": "failed", "SubState": "failed", "NRestarts": "4"}
    monkeypatch.setattr(packaged_service, "state", lambda service: failed)

    packaged_service.health("prometheus", lambda: bool(asked.append("ready")))

    assert asked == []
