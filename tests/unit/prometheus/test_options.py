"""Every config option: what a good value does, and what a bad value says (and leaves alone)."""

from __future__ import annotations

import pytest
from ops import testing

MODEL = testing.Model(name="lab", uuid="2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f")


def state(config: dict | None = None) -> testing.State:
    return testing.State(model=MODEL, leader=True, config=config or {})


def test_defaults(ctx, fake):
    ctx.run(ctx.on.config_changed(), state())

    assert fake.parsed_config()["global"] == {
        "scrape_interval": "15s",
        "scrape_timeout": "10s",
        "evaluation_interval": "15s",
    }
    assert fake.args == [
        "--config.file=/etc/prometheus/prometheus.yml",
        "--storage.tsdb.path=/var/lib/prometheus/metrics2",
        "--storage.tsdb.retention.time=15d",
        "--web.listen-address=:9090",
        "--log.level=info",
        f"--storage.tsdb.retention.size={int(fake.filesystem_bytes * 0.8)}B",
    ]


def test_web_port_moves_listener_self_scrape_and_opened_port(ctx, fake):
    before = testing.State(
        model=MODEL, config={"web-port": 9100}, opened_ports={testing.TCPPort(9090)}
    )

    out = ctx.run(ctx.on.config_changed(), before)

    assert fake.flag("web.listen-address") == ":9100"
    assert fake.jobs()["prometheus"]["static_configs"][0]["targets"] == ["localhost:9100"]
    assert out.opened_ports == {testing.TCPPort(9100)}
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9100")


@pytest.mark.parametrize(
    ("option", "value", "key"),
    [
        ("scrape-interval", "30s", "scrape_interval"),
        ("scrape-timeout", "5s", "scrape_timeout"),
        ("evaluation-interval", "1m30s", "evaluation_interval"),
    ],
)
def test_global_durations_go_to_prometheus_yml(ctx, fake, option, value, key):
    ctx.run(ctx.on.config_changed(), state({option: value}))

    assert fake.parsed_config()["global"][key] == value


@pytest.mark.parametrize(
    ("option", "value", "flag", "expected"),
    [
        ("retention-time", "2w", "storage.tsdb.retention.time", "2w"),
        ("retention-size", "10GB", "storage.tsdb.retention.size", "10GB"),
        ("retention-size", "50%", "storage.tsdb.retention.size", f"{50 * 2**30}B"),
        ("retention-size", "12.5%", "storage.tsdb.retention.size", f"{int(12.5 * 2**30)}B"),
        ("retention-size", "", "storage.tsdb.retention.size", None),
        (
            "web-external-url",
            "https://lab.example.com/prom/",
            "web.external-url",
            "https://lab.example.com/prom/",
        ),
        ("web-external-url", "", "web.external-url", None),
        ("log-level", "debug", "log.level", "debug"),
        ("log-level", "warn", "log.level", "warn"),
    ],
)
def test_flag_options(ctx, fake, option, value, flag, expected):
    ctx.run(ctx.on.config_changed(), state({option: value}))

    assert fake.flag(flag) == expected


def test_retention_percentage_is_of_the_filesystem_holding_the_tsdb(ctx, fake):
    fake.filesystem_bytes = 1000

    ctx.run(ctx.on.config_changed(), state({"retention-size": "80%"}))

    assert fake.flag("storage.tsdb.retention.size") == "800B"


def test_external_url_path_becomes_the_self_scrape_prefix(ctx, fake):
    ctx.run(ctx.on.config_changed(), state({"web-external-url": "http://localhost:9090/prom/"}))

    assert fake.jobs()["prometheus"]["metrics_path"] == "/prom/metrics"


def test_external_labels(ctx, fake):
    ctx.run(ctx.on.config_changed(), state({"external-labels": "site=lab, env = dev,"}))

    assert fake.parsed_config()["global"]["external_labels"] == {"site": "lab", "env": "dev"}


def test_scrape_jobs_are_added_after_the_self_scrape_job(ctx, fake):
    jobs = """
- job_name: node
  static_configs:
    - targets: ["10.0.0.5:9100", "10.0.0.6:9100"]
- job_name: blackbox
  metrics_path: /probe
  params: {module: [http_2xx]}
  static_configs:
    - targets: ["https://example.com"]
"""
    out = ctx.run(ctx.on.config_changed(), state({"scrape-jobs": jobs}))

    assert list(fake.jobs()) == ["prometheus", "node", "blackbox"]
    assert fake.jobs()["blackbox"]["params"] == {"module": ["http_2xx"]}
    assert out.unit_status == testing.ActiveStatus("serving 3 scrape jobs on :9090")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("web-port", 0, "web-port: 0 is not a port number (1-65535)"),
        ("web-port", 70000, "web-port: 70000 is not a port number (1-65535)"),
        ("scrape-interval", "15", 'scrape-interval: "15" is not a duration (try 15s)'),
        ("scrape-interval", "1.5m", 'scrape-interval: "1.5m" is not a duration (try 15s)'),
        ("scrape-interval", "0s", 'scrape-interval: "0s" must be longer than zero'),
        ("scrape-timeout", "ten", 'scrape-timeout: "ten" is not a duration (try 10s)'),
        ("scrape-timeout", "20s", 'scrape-timeout: "20s" is longer than scrape-interval "15s"'),
        (
            "evaluation-interval",
            "1 minute",
            'evaluation-interval: "1 minute" is not a duration (try 15s)',
        ),
        ("retention-time", "2 weeks", 'retention-time: "2 weeks" is not a duration (try 14d)'),
        ("retention-time", "0", 'retention-time: "0" must be longer than zero'),
        (
            "retention-size",
            "lots",
            'retention-size: "lots" is not a size or a percentage (try 10GB or 80%)',
        ),
        (
            "retention-size",
            "10 GB",
            'retention-size: "10 GB" is not a size or a percentage (try 10GB or 80%)',
        ),
        (
            "retention-size",
            "10gb",
            'retention-size: "10gb" is not a size or a percentage (try 10GB or 80%)',
        ),
        ("retention-size", "150%", 'retention-size: "150%" is not between 0% and 100%'),
        ("retention-size", "0%", 'retention-size: "0%" is not between 0% and 100%'),
        (
            "external-labels",
            "site",
            'external-labels: "site" is not key=value (try site=lab,env=dev)',
        ),
        (
            "external-labels",
            "1site=lab",
            'external-labels: "1site" is not a label name (letters, digits and _)',
        ),
        (
            "external-labels",
            "__name__=x",
            'external-labels: "__name__" is not a label name (letters, digits and _)',
        ),
        ("external-labels", "a=1,a=2", 'external-labels: "a" is given twice'),
        (
            "external-labels",
            "a=b=c",
            'external-labels: "a=b=c" is not key=value (try site=lab,env=dev)',
        ),
        ("scrape-jobs", "- job_name: [", "scrape-jobs: not valid YAML at line 1"),
        # A character YAML does not allow: PyYAML says so before parsing, with no line.
        ("scrape-jobs", "- job_name: a\x07", "scrape-jobs: not valid YAML"),
        (
            "scrape-jobs",
            "job_name: node",
            "scrape-jobs: must be a YAML list of scrape configs (- job_name: ...)",
        ),
        ("scrape-jobs", "- static_configs: []", "scrape-jobs: entry 1 has no job_name"),
        ("scrape-jobs", "- job_name: a\n- job_name: a", 'scrape-jobs: job_name "a" is used twice'),
        (
            "scrape-jobs",
            "- job_name: prometheus",
            'scrape-jobs: job_name "prometheus" is reserved (the charm uses "prometheus" and '
            '"juju_...")',
        ),
        (
            "scrape-jobs",
            "- job_name: juju_mine",
            'scrape-jobs: job_name "juju_mine" is reserved (the charm uses "prometheus" and '
            '"juju_...")',
        ),
        # What prometheus.yml (JSON) could not carry as the operator meant it.
        (
            "scrape-jobs",
            "- job_name: a\n  x: !!binary aGk=",
            "scrape-jobs: !!binary at line 2 is not supported",
        ),
        (
            "scrape-jobs",
            "- job_name: a\n  x: !!set {a}",
            "scrape-jobs: !!set at line 2 is not supported",
        ),
        (
            "scrape-jobs",
            "- job_name: a\n  x: !!timestamp 2001-12-14",
            "scrape-jobs: !!timestamp at line 2 is not supported",
        ),
        (
            "scrape-jobs",
            "- job_name: a\n  ? [k]\n  : v",
            "scrape-jobs: the key at line 2 is not text",
        ),
        (
            "scrape-jobs",
            "- job_name: loop\n  x: &x [a, *x]",
            "scrape-jobs: a YAML alias refers to a value it is inside of",
        ),
        (
            "scrape-jobs",
            "- job_name: bomb\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"  l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]\n" for n in range(1, 6)),
            "scrape-jobs: more than 100000 values once its YAML aliases are written out",
        ),
        (
            "scrape-jobs",
            "- job_name: deep\n  x: " + "[" * 60 + "]" * 60,
            "scrape-jobs: nested more than 50 levels deep",
        ),
        (
            "scrape-jobs",
            "- job_name: deeper\n  x: " + "[" * 3000 + "]" * 3000,
            "scrape-jobs: nested more than 50 levels deep",
        ),
        (
            "scrape-jobs",
            '- job_name: a\n  x: "\\ud800"',
            'scrape-jobs: "\\ud800" holds a UTF-16 surrogate, which YAML cannot carry'
            " (write the character itself, or \\U0001F600 for one beyond U+FFFF)",
        ),
        # A JSON surrogate pair is two lone surrogates to YAML (and refused by Prometheus's).
        (
            "scrape-jobs",
            '- job_name: a\n  x: "\\ud83d\\ude00"',
            'scrape-jobs: "\\ud83d\\ude00" holds a UTF-16 surrogate, which YAML cannot carry'
            " (write the character itself, or \\U0001F600 for one beyond U+FFFF)",
        ),
        (
            "scrape-jobs",
            '- job_name: a\n  "\\udc00": v',
            'scrape-jobs: the key "\\udc00" holds a UTF-16 surrogate',
        ),
        (
            "scrape-jobs",
            f"- job_name: a\n  ? {'k' * 1000}\n  : v",
            f'scrape-jobs: the key "{"k" * 59}...(1002 chars) is longer than YAML allows'
            " (1000 characters as written)",
        ),
        (
            "web-external-url",
            "lab.example.com",
            'web-external-url: "lab.example.com" is not an http(s) URL (try http://localhost:9090/)',
        ),
        (
            "web-external-url",
            "ftp://lab/",
            'web-external-url: "ftp://lab/" is not an http(s) URL (try http://localhost:9090/)',
        ),
        (
            "web-external-url",
            "http://lab/?x=1",
            'web-external-url: "http://lab/?x=1" is not an http(s) URL (try http://localhost:9090/)',
        ),
        (
            "web-external-url",
            "http://lab/ --web.enable-admin-api",
            'web-external-url: "http://lab/ --web.enable-admin-api" is not an http(s) URL '
            "(try http://localhost:9090/)",
        ),
        (
            "web-external-url",
            'http://lab/"$(reboot)',
            'web-external-url: "http://lab/\\"$(reboot)" is not an http(s) URL: it has quotes, '
            "backslashes or other unsafe characters",
        ),
        ("log-level", "verbose", 'log-level: "verbose" is not one of debug, info, warn, error'),
        ("log-level", "warning", 'log-level: "warning" is not one of debug, info, warn, error'),
    ],
)
def test_bad_value_blocks_naming_the_option_and_changes_nothing(
    ctx, fake, settled, option, value, message
):
    settled(state())

    out = ctx.run(ctx.on.config_changed(), state({option: value}))

    assert out.unit_status == testing.BlockedStatus(message)
    assert fake.writes == []
    assert fake.actions == []
