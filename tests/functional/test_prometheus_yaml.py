"""prometheus.yml and rule files as the charm writes them, read by promtool and Prometheus.

Prometheus reads prometheus.yml with gopkg.in/yaml.v2 and rule files with yaml.v3, not with
PyYAML: a file that PyYAML reads back right could still be refused by them (an escape such as
a JSON surrogate pair, a character YAML does not allow in a file) or reach Prometheus changed
(a folded line break). Here the real promtool checks files full of such strings and the real
Prometheus hands every one of them back unchanged: in its own view of the configuration, in
the labels of the series it scrapes and in the rules it loaded.
"""

from __future__ import annotations

import shutil

import prometheus
import pytest
import scrape
import yaml

pytestmark = pytest.mark.skipif(
    not (shutil.which("prometheus") and shutil.which("promtool")),
    reason="needs the prometheus package (apt install prometheus)",
)

# Label values that mean something to YAML or to a naive writer, each on its own label.
HOSTILE_VALUES = [
    'say "hi"',
    "it's",
    "back\\slash",
    "two\nlines",
    "tab\there",
    "cr\r",
    "\x01\x1b\x7f",
    "nel\x85",  # a YAML 1.1 line break
    "ls\u2028ps\u2029",
    "\ufeffbom",
    "\xe9t\xe9 \u65e5\u672c",
    "\U0001f600 \U0010fffd",
    "\\ud83d\\ude00",  # a JSON surrogate pair, as text
    "- item",
    "key: value",
    "# comment",
    "&anchor",
    "*alias",
    "!!int",
    "%YAML 1.1",
    "@at",
    "`tick",
    "{flow: map}",
    "[flow, seq]",
    "| >",
    "---",
    "...",
    " leading",
    "trailing ",
    "on",
    "Off",
    "yes",
    "N",
    "~",
    "null",
    "0x1F",
    "1:30",
    "1e3",
    ".inf",
    "2001-12-14",
]
# Label names that are YAML 1.1 bools or nulls when written bare (yaml.v2 resolve.go).
# Prometheus decodes label names into strings, so it would read them right bare too; the test
# that they are quoted is tests/unit/prometheus/test_render_yaml.py.
WORD_NAMES = ["on", "OFF", "y", "N", "yes", "No", "true", "FALSE", "null", "Null"]


def hostile_labels() -> dict[str, str]:
    labels = {f"v{n}": value for n, value in enumerate(HOSTILE_VALUES)}
    labels.update({name: f"{name} as a name" for name in WORD_NAMES})
    return labels


def configure(port: int, jobs: list[dict], rules: dict[str, str] | None = None) -> None:
    config = prometheus.render_config(
        scrape_interval="1s",
        scrape_timeout="1s",
        evaluation_interval="1s",
        external_labels={"on": "yes", "site": "\u65e5\u672c"},
        scrape_configs=[scrape.self_job(port, "", {}), *jobs],
    )
    prometheus.install_config(config, rules or {})
    prometheus.write_flags(
        prometheus.flags(
            port=port, retention_time="1d", retention_size="", external_url="", log_level="warn"
        )
    )


def test_prometheus_reads_back_every_hostile_label_and_param_as_written(
    paths, start_prometheus, port, metrics_server, wait_for
):
    labels = hostile_labels()
    jobs = [
        {
            "job_name": "hostile",
            "static_configs": [{"targets": [f"127.0.0.1:{metrics_server}"], "labels": labels}],
        },
        {
            "job_name": "probe",
            "params": {"on": ["yes", "a b"], "module": ["http_2xx"]},
            "static_configs": [{"targets": ["127.0.0.1:1"]}],
        },
    ]
    configure(port, jobs)  # promtool checked it

    running = start_prometheus()

    live = yaml.safe_load(running.get("/api/v1/status/config")["data"]["yaml"])
    assert live["global"]["external_labels"] == {"on": "yes", "site": "\u65e5\u672c"}
    by_name = {job["job_name"]: job for job in live["scrape_configs"]}
    assert by_name["hostile"]["static_configs"][0]["labels"] == labels
    assert by_name["probe"]["params"] == {"on": ["yes", "a b"], "module": ["http_2xx"]}
    [series] = wait_for(lambda: running.query('lab_widgets{job="hostile"}'), what="a scrape")
    assert series["metric"] == {
        **labels,
        "__name__": "lab_widgets",
        "job": "hostile",
        "instance": f"127.0.0.1:{metrics_server}",
    }


def test_prometheus_loads_hostile_rule_labels_and_annotations_as_written(
    paths, start_prometheus, port
):
    annotations = {
        "summary": "{{ $labels.instance }} is down:\n\t- since 5m\n",
        **{f"a{n}": value for n, value in enumerate(HOSTILE_VALUES)},
    }
    expr = 'up{job="prometheus"}\n  < 0 # never'
    groups = [
        {
            "name": 'group: "one" #1',
            "rules": [
                {"alert": "Hostile", "expr": expr, "labels": hostile_labels()},
                {"alert": "Annotated", "expr": expr, "annotations": annotations},
            ],
        }
    ]
    configure(port, [], {"hostile.rules": prometheus.render_rules({"groups": groups})})
    assert (paths.rules_dir / "hostile.rules").exists()  # promtool accepted it

    running = start_prometheus()

    [group] = running.get("/api/v1/rules")["data"]["groups"]
    assert group["name"] == 'group: "one" #1'
    hostile, annotated = group["rules"]
    assert hostile["labels"] == hostile_labels()
    assert annotated["annotations"] == annotations
