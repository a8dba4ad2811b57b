"""Two real Alertmanagers clustered with the charm's flags notify once, not twice.

Prometheus sends every alert to every Alertmanager unit; clustered units gossip their
notification log and wait their turn (--cluster.peer-timeout, 15s a position), so that only one
notifies. The route's group_interval (20s here; 5m by default) is longer than that 15s: with a
1s one, seen here, a unit waiting its turn sent a state that a newer notification had already
replaced (a firing after the resolution). Each Alertmanager here runs the flags the charm
writes for a unit with one peer, with one change the test needs: both run on this one host, so
each listens for gossip on its own loopback port instead of 0.0.0.0:9094 (and advertises and
names those ports). A control with the same two Alertmanagers unclustered shows the test can
tell: they notify twice.
"""

from __future__ import annotations

import contextlib
import pathlib
import time
from collections.abc import Iterator

import alertmanager_processes as am
import pytest
from alertmanager import flags, paths

pytestmark = [am.needs_alertmanager, pytest.mark.slow]
# Long enough for the second position's turn (15s) and its check of the notification log.
SETTLE = 25
GROUP_INTERVAL = "20s"


@contextlib.contextmanager
def pair(
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    hook: str,
    *,
    clustered: bool = True,
    group_wait: str = "1s",
) -> Iterator[list[am.RunningAlertmanager]]:
    """Start two Alertmanagers with the charm's files and flags; yield them once both serve."""
    web = [am.free_port(), am.free_port()]
    gossip = [am.free_port(), am.free_port()]
    with contextlib.ExitStack() as stack:
        running = []
        for me, other in ((0, 1), (1, 0)):
            monkeypatch.setattr(paths, "PATHS", am.local_paths(tmp_path / f"am{me}"))
            cluster = (
                flags.Cluster(f"127.0.0.1:{gossip[me]}", (f"127.0.0.1:{gossip[other]}",))
                if clustered
                else None
            )
            config = am.webhook_config(hook, group_wait=group_wait, group_interval=GROUP_INTERVAL)
            am.configure(web[me], config, cluster=cluster)
            replace = {"--cluster.listen-address": f"127.0.0.1:{gossip[me]}"} if clustered else {}
            log = tmp_path / f"am{me}.log"
            running.append(stack.enter_context(am.start_from_flags(log, replace=replace)))
        if clustered:
            # Settled: each sees both, and its gossip has stopped changing (about 10s).
            am.wait_for(
                lambda: all(
                    r.get("/api/v2/status")["cluster"]["status"] == "ready"
                    and len(r.get("/api/v2/status")["cluster"]["peers"]) == 2
                    for r in running
                ),
                timeout=60,
                what="the two Alertmanagers to settle as one cluster",
            )
        yield running


def test_the_charm_s_flags_make_a_cluster_of_two(tmp_path, monkeypatch):
    with am.Webhook() as hook, pair(tmp_path, monkeypatch, hook.url) as running:
        statuses = [r.get("/api/v2/status")["cluster"] for r in running]
        enabled = [r.metric("alertmanager_cluster_enabled") for r in running]

    assert [s["status"] for s in statuses] == ["ready", "ready"]
    assert all(len(s["peers"]) == 2 for s in statuses)
    assert enabled == [1, 1]


def test_an_alert_sent_to_both_notifies_once_and_its_resolution_once(tmp_path, monkeypatch):
    with am.Webhook() as hook, pair(tmp_path, monkeypatch, hook.url) as running:
        pushed = time.time()
        for alertmanager in running:  # as Prometheus does
            alertmanager.post_alerts([am.alert("LabPowerLow")])
        firing = am.wait_for(lambda: hook.of("firing"), what="the firing notification")
        time.sleep(SETTLE)
        for alertmanager in running:
            alertmanager.post_alerts([am.alert("LabPowerLow", resolved=True)])
        am.wait_for(lambda: hook.of("resolved"), timeout=60, what="the resolution")
        time.sleep(SETTLE)

    assert len(hook.of("firing")) == 1
    assert len(hook.of("resolved")) == 1
    print(
        f"\nclustered, both up: {len(hook.of('firing'))} firing and"
        f" {len(hook.of('resolved'))} resolved deliveries"
        f" (firing after {firing[0].at - pushed:.2f}s)"
    )


def test_one_notification_when_one_of_them_stops_in_the_middle(tmp_path, monkeypatch):
    with am.Webhook() as hook, pair(tmp_path, monkeypatch, hook.url, group_wait="5s") as running:
        for alertmanager in running:
            alertmanager.post_alerts([am.alert("LabFanStopped", started=0)])
        # Stopped within its group_wait, before either could notify.
        running[0].stop()
        assert hook.deliveries == []
        stopped = time.time()
        firing = am.wait_for(
            lambda: hook.of("firing"), timeout=SETTLE + 10, what="the survivor's notification"
        )
        time.sleep(SETTLE)
        running[1].post_alerts([am.alert("LabFanStopped", resolved=True)])
        am.wait_for(lambda: hook.of("resolved"), timeout=60, what="the resolution")
        time.sleep(SETTLE)

    assert len(hook.of("firing")) == 1
    assert len(hook.of("resolved")) == 1
    print(
        f"\nclustered, one stopped mid-way: {len(hook.of('firing'))} firing and"
        f" {len(hook.of('resolved'))} resolved deliveries; the survivor notified"
        f" {firing[0].at - stopped:.1f}s after the other stopped"
    )


def test_control_two_unclustered_alertmanagers_notify_twice(tmp_path, monkeypatch):
    with (
        am.Webhook() as hook,
        pair(tmp_path, monkeypatch, hook.url, clustered=False) as running,
    ):
        for alertmanager in running:
            alertmanager.post_alerts([am.alert("LabPowerLow")])
        am.wait_for(lambda: len(hook.of("firing")) >= 2, what="both notifications")
        time.sleep(3)

    assert len(hook.of("firing")) == 2
    print(f"\nunclustered control: {len(hook.of('firing'))} firing deliveries")
