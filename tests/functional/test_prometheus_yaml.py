"""prometheus.yml and rule files as the charm writes them, read by promtool and Prometheus.

The charm writes them as JSON (prometheus/yaml_writer.py). Prometheus reads prometheus.yml with
gopkg.in/yaml.v2 and rule files with yaml.v3, not with PyYAML: a file that PyYAML reads back
right could still be refused by them (an escape such as a JSON surrogate pair, a character YAML
does not allow in a file, a key longer than YAML's limit) or reach Prometheus changed (a folded
line break). Here the real promtool checks files full of such strings and the real Prometheus
hands every one of them back unchanged: in its own view of the configuration, in the labels of
the series it scrapes and in the rules it loaded; and it reads an operator's scrape-jobs from
the charm's file exactly as it reads them from the operator's own YAML.
"""

from __future__ import annotations

import json
import shutil

import prometheus.config_file
import prometheus.flags
import prometheus.jobs
import prometheus.operator_jobs
import prometheus.paths
import prometheus.reload
import prometheus.topology
import prometheus.yaml_writer
import pytest
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
# that they are read back as text is tests/unit/prometheus/test_yaml_writer.py.
WORD_NAMES = ["on", "OFF", "y", "N", "yes", "No", "true", "FALSE", "null", "Null"]


def hostile_labels() -> dict[str, str]:
    labels = {f"v{n}": value for n, value in enumerate(HOSTILE_VALUES)}
    labels.update({name: f"{name} as a name" for name in WORD_NAMES})
    return labels


def configure(port: int, jobs: list[dict], rules: dict[str, str] | None = None) -> None:
    config = prometheus.config_file.render_config(
        scrape_interval="1s",
        scrape_timeout="1s",
        evaluation_interval="1s",
        external_labels={"on": "yes", "site": "\u65e5\u672c"},
        scrape_configs=[prometheus.jobs.self_job(port, "", {}), *jobs],
    )
    prometheus.config_file.install_config(config, rules or {})
    prometheus.flags.write_flags(
        prometheus.flags.flags(
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
    configure(port, [], {"hostile.rules": prometheus.config_file.render_rules({"groups": groups})})
    assert (paths.rules_dir / "hostile.rules").exists()  # promtool accepted it

    running = start_prometheus()

    [group] = running.get("/api/v1/rules")["data"]["groups"]
    assert group["name"] == 'group: "one" #1'
    hostile, annotated = group["rules"]
    assert hostile["labels"] == hostile_labels()
    assert annotated["annotations"] == annotations


def test_the_longest_label_name_a_relation_may_send_is_read_by_prometheus(
    paths, start_prometheus, port, metrics_server, wait_for
):
    name = "n" * (prometheus.yaml_writer.MAX_KEY_LENGTH - 2)  # quoted, at YAML's limit
    app_data = {
        "scrape_jobs": json.dumps(
            [
                {
                    "job_name": "long",
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{metrics_server}"], "labels": {name: "v"}}
                    ],
                }
            ]
        )
    }
    topology = prometheus.topology.Topology("lab", "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f", "w")
    [job] = prometheus.jobs.cos_jobs(app_data, {}, topology, scrape_interval="1s")
    configure(port, [job])  # promtool checked it

    running = start_prometheus()

    [series] = wait_for(lambda: running.query("lab_widgets"), what="a scrape")
    assert series["metric"][name] == "v"


# An operator's scrape-jobs, with what YAML 1.1 gives types to, an anchor, an alias and a merge
# key (Prometheus reads strictly: a merged key may not be set again). Prometheus reads scalars
# as their text where it wants text (label names and values, params) and typed where it wants a
# type; the charm keeps keys, floats and timestamps as text and writes the rest typed, so the
# two agree. (A non-canonical number or boolean where Prometheus wants text, `0x1F` or `yes`,
# would reach it canonical: the option's description says to quote such text.)
OPERATOR_JOBS = """
- job_name: typed
  honor_labels: yes
  honor_timestamps: off
  sample_limit: 0x10
  label_limit: 1_000
  scrape_interval: 1s
  scrape_timeout: ~
  params: {on: [a], version: [1.10]}
  static_configs:
  - targets: ['127.0.0.1:1']
    labels: &labels {version: 1.10, since: 2001-12-14, at: 2001-12-14t21:59:43.10-05:00,
                     on: x, Off: 'y', ratio: .inf, e: 1e3, n: 31}
  - targets: ['127.0.0.1:2']
    labels: *labels
- job_name: merged
  static_configs:
  - targets: ['127.0.0.1:3']
    labels:
      <<: *labels
      site: lab
"""


def test_prometheus_reads_an_operators_jobs_from_the_charms_file_as_from_their_own_yaml(
    paths, start_prometheus, port
):
    configure(port, prometheus.operator_jobs.parse_user_jobs(OPERATOR_JOBS))
    running = start_prometheus()
    from_the_charms_file = yaml.safe_load(running.get("/api/v1/status/config")["data"]["yaml"])
    # The operator's own text as prometheus.yml, after the same self-scrape job.
    self_job = json.dumps(prometheus.jobs.self_job(port, "", {}))
    paths.config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n- {self_job}{OPERATOR_JOBS}"
    )

    prometheus.reload.reload(timeout=10)

    from_their_yaml = yaml.safe_load(running.get("/api/v1/status/config")["data"]["yaml"])
    assert from_the_charms_file["scrape_configs"] == from_their_yaml["scrape_configs"]
    typed = from_their_yaml["scrape_configs"][1]
    assert typed["static_configs"][0]["labels"]["version"] == "1.10"  # not nothing
