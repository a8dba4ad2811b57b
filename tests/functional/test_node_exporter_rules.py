"""The alert rules the node-exporter charm sends, on the real Prometheus rule engine.

Two layers, both on the rule file exactly as the charm publishes it (metrics_endpoint.alert_rules,
scoped to application node-exporter of model lab), loaded from a rule file (not through the
Prometheus charm's relation parser):

- `promtool test rules` (Prometheus's own rule engine over synthetic series, on a simulated
  clock): each rule fires once its `for:` has passed, not before, not for healthy series and not
  for another application's identical series. Annotations are dropped from this copy only,
  so that the expected alerts need not repeat their prose; the live test checks them.
- A live Prometheus scraping real exporters every second: a healthy one, a sick one (a private
  mount namespace holds a nearly full tmpfs and a tmpfs being filled, and `--path.procfs` points
  the filesystem and meminfo collectors at a crafted mount list and meminfo), a target nobody
  answers, and a page shaped like the systemd collector's output (no systemd here; the shape is
  that of node_exporter's collector/systemd_linux.go, unit_state with labels name, state,
  type, one series per state). The sick targets are also scraped under another application's
  labels. Exactly the expected alerts go pending (their condition holds; promtool's layer shows
  they fire after `for:`), with their annotations rendered, and none for the healthy or foreign
  series.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import loopback
import metrics_endpoint
import pytest
import yaml
from node_exporter import exporter

pytestmark = pytest.mark.skipif(
    not (shutil.which("promtool") and shutil.which("prometheus")),
    reason="needs the prometheus package (apt install prometheus)",
)

UUID = "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"
TOPOLOGY = metrics_endpoint.Topology(
    "lab", UUID, "node-exporter", "node-exporter/0", "node-exporter"
)
RULE_LABELS = {
    "juju_model": "lab",
    "juju_model_uuid": UUID,
    "juju_application": "node-exporter",
    "juju_charm": "node-exporter",
}
RULES = ["NodeDown", "NodeFilesystemAlmostFull", "NodeFilesystemFillingUp",
         "NodeMemoryExhausted", "NodeSystemdUnitFailed"]  # fmt: skip


def write_rules(path: pathlib.Path, *, annotations: bool = True) -> pathlib.Path:
    rules = metrics_endpoint.alert_rules(TOPOLOGY)
    if not annotations:
        for group in rules["groups"]:
            for rule in group["rules"]:
                rule.pop("annotations", None)
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


def test_promtool_accepts_the_rules_as_the_charm_sends_them(tmp_path):
    result = subprocess.run(
        ["promtool", "check", "rules", str(write_rules(tmp_path / "node.rules"))],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULES)} rules found" in result.stdout


# --- promtool test rules: each rule on a simulated clock ----------------------------------


def target(unit: int = 0, app: str = "node-exporter") -> dict[str, str]:
    """The labels our Prometheus gives a node-exporter unit's series (scrape.cos_jobs)."""
    return {
        "job": f"juju_lab_2f5e6d0a_{app}_prometheus_scrape_node-{unit}",
        "instance": f"10.0.0.{10 + unit}:9100",
        "juju_model": "lab",
        "juju_model_uuid": UUID,
        "juju_application": app,
        "juju_unit": f"{app}/{unit}",
    }


def series(metric: str, labels: Mapping[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f"{k}={json.dumps(v)}" for k, v in labels.items())
    return {"series": f"{metric}{{{inner}}}", "values": values}


def alert(name: str, severity: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {"exp_labels": {**labels, **RULE_LABELS, "severity": severity}}


SICK, HEALTHY, FOREIGN = target(0), target(1), target(0, app="other-app")
ROOT_FS = {"device": "/dev/vda1", "fstype": "ext4", "mountpoint": "/"}
DATA_FS = {"device": "/dev/vdb", "fstype": "ext4", "mountpoint": "/data"}
SNAP_FS = {"device": "/dev/loop3", "fstype": "squashfs", "mountpoint": "/snap/core/1"}


def filesystem(labels: Mapping[str, str], avail: str, size: str, readonly: str) -> list[dict]:
    return [
        series("node_filesystem_avail_bytes", labels, avail),
        series("node_filesystem_size_bytes", labels, size),
        series("node_filesystem_readonly", labels, readonly),
    ]


CASES: dict[str, dict[str, Any]] = {
    "NodeDown": {
        "series": [
            series("up", SICK, "1 1 0x30"),
            series("up", HEALTHY, "1x30"),
            series("up", FOREIGN, "0x30"),
        ],
        # Down from minute 2; `for: 5m`.
        "quiet_at": "6m",
        "fires_at": "8m",
        "alerts": [alert("NodeDown", "critical", SICK)],
    },
    "NodeFilesystemAlmostFull": {
        "series": [
            *filesystem({**SICK, **ROOT_FS}, "5x30", "100x30", "0x30"),
            *filesystem({**SICK, **DATA_FS}, "50x30", "100x30", "0x30"),
            *filesystem({**SICK, **SNAP_FS}, "0x30", "100x30", "1x30"),
            *filesystem({**FOREIGN, **ROOT_FS}, "5x30", "100x30", "0x30"),
        ],
        # 5% free from minute 0; `for: 15m`.
        "quiet_at": "14m",
        "fires_at": "16m",
        "alerts": [alert("NodeFilesystemAlmostFull", "warning", {**SICK, **ROOT_FS})],
    },
    "NodeFilesystemFillingUp": {
        "series": [
            # 35% free, losing 0.1% a minute: empty in under 6 hours.
            *filesystem({**SICK, **ROOT_FS}, "35-0.1x200", "100x200", "0x200"),
            # Losing as fast, but 80% free: not yet a worry.
            *filesystem({**SICK, **DATA_FS}, "80-0.1x200", "100x200", "0x200"),
            # 35% free and steady.
            *filesystem({**HEALTHY, **ROOT_FS}, "35x200", "100x200", "0x200"),
            *filesystem({**FOREIGN, **ROOT_FS}, "35-0.1x200", "100x200", "0x200"),
        ],
        # The prediction needs two samples (minute 1); `for: 1h`.
        "quiet_at": "55m",
        "fires_at": "65m",
        "alerts": [alert("NodeFilesystemFillingUp", "warning", {**SICK, **ROOT_FS})],
    },
    "NodeMemoryExhausted": {
        "series": [
            series("node_memory_MemAvailable_bytes", SICK, "3x30"),
            series("node_memory_MemTotal_bytes", SICK, "100x30"),
            series("node_memory_MemAvailable_bytes", HEALTHY, "50x30"),
            series("node_memory_MemTotal_bytes", HEALTHY, "100x30"),
            series("node_memory_MemAvailable_bytes", FOREIGN, "3x30"),
            series("node_memory_MemTotal_bytes", FOREIGN, "100x30"),
        ],
        "quiet_at": "4m",
        "fires_at": "6m",
        "alerts": [alert("NodeMemoryExhausted", "critical", SICK)],
    },
    "NodeSystemdUnitFailed": {
        "series": [
            series(
                "node_systemd_unit_state",
                {**SICK, "name": "broken.service", "state": state, "type": "simple"},
                f"{int(state == 'failed')}x30",
            )
            for state in ("active", "activating", "deactivating", "inactive", "failed")
        ]
        + [
            series(
                "node_systemd_unit_state",
                {**SICK, "name": "fine.service", "state": "failed", "type": "simple"},
                "0x30",
            ),
            series(
                "node_systemd_unit_state",
                {**FOREIGN, "name": "broken.service", "state": "failed", "type": "simple"},
                "1x30",
            ),
        ],
        "quiet_at": "4m",
        "fires_at": "6m",
        "alerts": [
            alert(
                "NodeSystemdUnitFailed",
                "warning",
                {**SICK, "name": "broken.service", "state": "failed", "type": "simple"},
            )
        ],
    },
}


def test_every_rule_has_a_case():
    assert sorted(CASES) == sorted(RULES)


def promtool_test(
    tmp: pathlib.Path, input_series: list[dict], checks: list[dict]
) -> subprocess.CompletedProcess[str]:
    """Run `promtool test rules` on the charm's rules (without annotations) over these series."""
    write_rules(tmp / "node.rules", annotations=False)
    test = {
        "rule_files": ["node.rules"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": input_series, "alert_rule_test": checks}],
    }
    (tmp / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    return subprocess.run(
        ["promtool", "test", "rules", "test.yml"], cwd=tmp, capture_output=True, text=True
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_fires_after_its_for_and_only_for_the_sick_series_of_its_application(tmp_path, name):
    case = CASES[name]

    result = promtool_test(
        tmp_path,
        case["series"],
        [
            {"eval_time": case["quiet_at"], "alertname": name, "exp_alerts": []},
            {"eval_time": case["fires_at"], "alertname": name, "exp_alerts": case["alerts"]},
        ],
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_layer_fails_when_a_rule_would_not_fire(tmp_path):
    """The harness itself: expecting an alert that cannot come makes promtool fail."""
    never = [alert("NodeDown", "critical", SICK)]

    result = promtool_test(
        tmp_path,
        [series("up", SICK, "1x30")],
        [{"eval_time": "10m", "alertname": "NodeDown", "exp_alerts": never}],
    )

    assert result.returncode != 0
    assert "NodeDown" in result.stdout + result.stderr


# --- a live Prometheus scraping real exporters -------------------------------------------

MIB = 1024 * 1024
MEMINFO = (
    "MemTotal:       {total} kB\nMemFree:        {free} kB\nMemAvailable:   {available} kB\n"
    "Buffers:           1024 kB\nCached:           65536 kB\n"
    "SwapTotal:            0 kB\nSwapFree:             0 kB\n"
)
# node_exporter's systemd collector, one unit per state (collector/systemd_linux.go).
SYSTEMD_STATES = ("active", "activating", "deactivating", "inactive", "failed")


def systemd_page(units: Mapping[str, str]) -> bytes:
    lines = ["# HELP node_systemd_unit_state Systemd unit", "# TYPE node_systemd_unit_state gauge"]
    for name, current in units.items():
        for state in SYSTEMD_STATES:
            value = int(state == current)
            lines.append(
                f'node_systemd_unit_state{{name="{name}",state="{state}",type="simple"}} {value}'
            )
    return ("\n".join(lines) + "\n").encode()


@contextlib.contextmanager
def exporter_with_filesystems(
    run_process: Callable[..., Any],
    tmp: pathlib.Path,
    *,
    used: Mapping[str, int],
    growing: str | None,
    mem_available_percent: int,
) -> Iterator[int]:
    """Run the real exporter in a private mount namespace with 16 MiB tmpfs filesystems.

    `used` maps each filesystem's name to the MiB written before the exporter starts; the
    `growing` one then gets 32 KiB more every quarter of a second. The exporter reads the mount
    list and meminfo from a crafted procfs directory, and statfs()s the real tmpfs mounts.
    Yields the exporter's port.
    """
    procfs = tmp / "proc"
    (procfs / "1").mkdir(parents=True)
    mounts = ""
    script = ["set -e"]
    for name, mib in used.items():
        mountpoint = tmp / "fs" / name
        mountpoint.mkdir(parents=True)
        mounts += f"tmpfs {mountpoint} tmpfs rw,relatime,size=16384k 0 0\n"
        script += [
            f"mount -t tmpfs -o size=16m tmpfs {mountpoint}",
            f"dd if=/dev/zero of={mountpoint}/fill bs=1M count={mib} 2>/dev/null",
        ]
    (procfs / "1" / "mounts").write_text(mounts)
    (procfs / "mounts").write_text(mounts)
    total = 4 * 1024 * 1024
    (procfs / "meminfo").write_text(
        MEMINFO.format(
            total=total, free=total // 100, available=total * mem_available_percent // 100
        )
    )
    if growing:
        script.append(
            "(while dd if=/dev/zero bs=32k count=1 2>/dev/null"
            f" >> {tmp / 'fs' / growing}/fill; do sleep 0.25; done) &"
        )
    port = loopback.free_port()
    script.append(
        f"exec {exporter.BINARY} --web.listen-address=127.0.0.1:{port}"
        f" --path.procfs={procfs} --collector.disable-defaults"
        " --collector.filesystem --collector.meminfo"
    )
    # A user namespace too, so that mounting needs no root (CI runners are not root).
    command = [
        "unshare", "--user", "--map-root-user", "--mount", "--propagation", "private",
        "sh", "-ec", "\n".join(script),
    ]  # fmt: skip
    with run_process(command, f"http://127.0.0.1:{port}/metrics", tmp / "exporter.log"):
        yield port


def static_job(name: str, port: int, unit: str, app: str = "node-exporter") -> dict[str, Any]:
    labels = {
        "juju_model": "lab",
        "juju_model_uuid": UUID,
        "juju_application": app,
        "juju_unit": unit,
    }
    return {
        "job_name": name,
        "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": labels}],
    }


def namespaces_work() -> bool:
    if not (shutil.which("unshare") and shutil.which(exporter.BINARY)):
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    )
    return probe.returncode == 0


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
    run_process: Callable[..., Any],
    scraping_prometheus: Callable[..., Any],
) -> Iterator[Any]:
    """A Prometheus evaluating the charm's rules every second over healthy and sick machines."""
    if not namespaces_work():
        pytest.skip("needs prometheus-node-exporter and unprivileged user+mount namespaces")
    tmp = tmp_path_factory.mktemp("rules-live")
    with contextlib.ExitStack() as stack:
        healthy = stack.enter_context(
            exporter_with_filesystems(
                run_process,
                tmp / "healthy",
                used={"steady": 8},
                growing=None,
                mem_available_percent=50,
            )
        )
        sick = stack.enter_context(
            exporter_with_filesystems(
                run_process,
                tmp / "sick",
                used={"full": 15, "growing": 10},
                growing="growing",
                mem_available_percent=2,
            )
        )
        systemd = stack.enter_context(
            loopback.metrics_server(
                systemd_page({"broken.service": "failed", "fine.service": "active"})
            )
        )
        nobody = loopback.free_port()
        jobs = [
            static_job("healthy", healthy, "node-exporter/0"),
            static_job("sick", sick, "node-exporter/1"),
            static_job("systemd", systemd, "node-exporter/2"),
            static_job("down", nobody, "node-exporter/3"),
            static_job("other-sick", sick, "other-app/1", app="other-app"),
            static_job("other-systemd", systemd, "other-app/2", app="other-app"),
            static_job("other-down", nobody, "other-app/3", app="other-app"),
        ]
        rules = write_rules(tmp / "node.rules")
        yield stack.enter_context(scraping_prometheus(tmp, jobs, rule_files=[rules]))


def alerts(running: Any) -> list[dict[str, Any]]:
    return running.get("/api/v1/alerts")["data"]["alerts"]


def key(found: Mapping[str, Any]) -> tuple[str, str, str]:
    labels = found["labels"]
    detail = labels.get("mountpoint", "").rsplit("/", 1)[-1] or labels.get("name", "")
    return (labels["alertname"], labels["juju_unit"], detail)


EXPECTED = {
    ("NodeDown", "node-exporter/3", ""),
    ("NodeFilesystemAlmostFull", "node-exporter/1", "full"),
    ("NodeFilesystemFillingUp", "node-exporter/1", "growing"),
    ("NodeMemoryExhausted", "node-exporter/1", ""),
    ("NodeSystemdUnitFailed", "node-exporter/2", "broken.service"),
}


@pytest.fixture(scope="module")
def pending(live: Any, wait_for: Callable[..., Any]) -> list[dict[str, Any]]:
    """The alerts once every expected one is pending (a growing filesystem takes a few scrapes)."""
    return wait_for(
        lambda: (found := alerts(live)) and {key(a) for a in found} >= EXPECTED and found,
        timeout=30,
        what="the expected alerts to go pending",
    )


def test_rules_load_and_evaluate_without_errors(live, pending):
    groups = live.get("/api/v1/rules")["data"]["groups"]

    assert [g["name"] for g in groups] == ["lab_2f5e6d0a_node_exporter_node_rules"]
    assert [r["name"] for r in groups[0]["rules"]] == RULES
    assert {r["health"] for r in groups[0]["rules"]} == {"ok"}


def test_exactly_the_sick_machines_of_this_application_have_pending_alerts(pending):
    assert {key(a) for a in pending} == EXPECTED
    assert {a["state"] for a in pending} == {"pending"}


def test_no_alert_for_another_applications_identical_trouble(pending):
    assert {a["labels"]["juju_application"] for a in pending} == {"node-exporter"}


def test_alerts_carry_the_topology_and_severity_labels(pending):
    for found in pending:
        assert RULE_LABELS.items() <= found["labels"].items()
        assert found["labels"]["severity"] in ("warning", "critical")


def test_annotations_render_with_the_machines_details(pending):
    by_name = {a["labels"]["alertname"]: a["annotations"] for a in pending}

    assert by_name["NodeDown"]["summary"] == "Machine of node-exporter/3 is down"
    assert "node-exporter/3 in model lab" in by_name["NodeDown"]["description"]
    assert by_name["NodeFilesystemAlmostFull"]["summary"].endswith(
        "/fs/full on node-exporter/1 is almost full"
    )
    assert "% of " in by_name["NodeFilesystemAlmostFull"]["description"]
    assert "fills up within a day" in by_name["NodeFilesystemFillingUp"]["summary"]
    assert by_name["NodeMemoryExhausted"]["summary"] == "node-exporter/1 is out of memory"
    assert by_name["NodeMemoryExhausted"]["description"].startswith("Only 2% of the memory")
    assert by_name["NodeSystemdUnitFailed"]["summary"] == (
        "broken.service failed on node-exporter/2"
    )
    for rendered in by_name.values():
        assert "{{" not in json.dumps(rendered)
