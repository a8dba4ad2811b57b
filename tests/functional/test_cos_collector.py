"""A COS-instrumented machine charm's metrics, rules and dashboards reach us through the collector.

The chain of Canonical's machine recipe, with real binaries where this machine has them:

- PostgreSQL: Debian's, as a throwaway loopback cluster (test_grafana_postgresql._cluster).
- Its exporter: Debian's `prometheus-postgres-exporter` (0.11.1 here), the exporter the
  PostgreSQL machine charm runs from its snap on port 9187 and hands to the collector over
  `cos-agent` (canonical/postgresql-operator src/charm.py COSAgentProvider metrics_endpoints).
- MySQL: Debian's MariaDB 10.11 stands in for the MySQL 8.0 the MySQL machine charm's snap
  ships (no MySQL server in Debian 12); its exporter is Debian's `prometheus-mysqld-exporter`
  0.14.0, the version that snap stages (canonical/charmed-mysql-snap a682a1a snap/snapcraft.yaml),
  run with the snap's collector flags (snap/local/start-mysqld-exporter.sh EXPORTER_OPTS), which
  the MySQL charm hands to the collector on port 9104 (canonical/mysql-operator src/charm.py
  COSAgentProvider metrics_endpoints, src/constants.py MYSQL_EXPORTER_PORT). What MariaDB cannot
  show: MySQL's group replication tables (the charm's cluster panels and replication rules).
- The collector: Canonical's `opentelemetry-collector` is an OpenTelemetry binary (a snap) that is
  not available here. A second real Prometheus stands in for it: it scrapes the exporter with the
  job and labels the collector gives a cos-agent job and pushes to our Prometheus over remote
  write, to the URL our charm publishes. What the stand-in cannot show: the collector's own
  pipeline (OTLP conversion, `add_metric_suffixes: false`, its WAL and queue settings).
- Our Prometheus: configured by the Prometheus charm itself (ops.testing, real workload modules,
  real promtool; only systemd calls are replaced) from the `receive-remote-write` databag as the
  collector writes it, then started from the flags file the charm wrote.
- Our Grafana: there is no Grafana binary here. The dashboard the collector forwards goes
  through the code the Grafana charm runs on `grafana-dashboard` (lab_monitoring's
  grafana_dashboard.from_app_data, which GrafanaDashboardRequirer.dashboards calls) into the
  provisioned file; every panel query of that file then runs against our Prometheus with the
  template variables filled in as Grafana fills them.

The formats, as read in the collector's and the database charms' repositories
(canonical/opentelemetry-collector-operator 0357b4b, canonical/postgresql-operator 9251d5d,
canonical/mysql-operator 8b73ff3):

- scrape job (lib/charms/grafana_agent/v0/cos_agent.py LIBPATCH 26: COSAgentProvider._scrape_jobs
  turns metrics_endpoints into `{"metrics_path", "static_configs": [{"targets":
  ["localhost:<port>"]}]}` named `<app>_default_<8 hex>`; COSAgentRequirer.metrics_jobs adds
  juju_model, juju_model_uuid, juju_application, juju_unit to each static config, no juju_charm;
  src/charm.py puts them in the collector's prometheus receiver).
- remote write (lib/charms/prometheus_k8s/v1/prometheus_remote_write.py LIBPATCH 18): the
  collector reads our unit's `remote_write` `{"url"}` (PrometheusRemoteWriteConsumer.endpoints)
  and writes app data `alert_rules` `{"groups": [...]}` (_push_alerts_to_relation_databag)
  from the rule files it saved per principal (src/integrations.py _add_alerts: the principal's
  cos-agent `metrics_alert_rules` as they came, cosl's AlertRules: groups named
  `<model>_<uuid8>_<app>_<group>_rules`, each rule labelled with the principal's juju_model,
  juju_model_uuid, juju_application, juju_charm; cosl keeps labels already present, so the
  collector does not relabel them as its own).
- dashboards (lib/charms/grafana_k8s/v0/grafana_dashboard.py LIBPATCH 51, src/integrations.py
  forward_dashboards and _add_dashboards, cos_agent.py COSAgentRequirer.dashboards): the
  principal's dashboard with uid DashboardPath40UID(charm, path), saved by the collector as
  `juju_<title>-cos-agent-<app>-<relation id>-<uid>.json` and sent as a template of charm
  `opentelemetry-collector`, LZMA+base64 `content`, the collector's juju_topology,
  inject_dropdowns true.

The database charms' dashboards and rules are not copied here: cos_collector/
postgresql_operator.json and mysql_operator.json hold the facts the test needs (queries,
variables, rule expressions), extracted by cos_collector/extract.py from a named commit; the
dashboards and databags are assembled from them here. One collector application serves both
principals, as one subordinate related to both would: its app databag carries both principals'
rules and dashboards.
"""

from __future__ import annotations

import contextlib
import getpass
import importlib.util
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from typing import Any
from unittest import mock

import loopback
import prometheus.paths
import prometheus.reload
import prometheus.service
import pytest
from lab_monitoring.interfaces import grafana_dashboard, remote_write
from ops import testing

ROOT = pathlib.Path(__file__).parents[2]
APPS = ("postgresql", "mysql")
FACTS = {
    app: json.loads(
        (pathlib.Path(__file__).parent / f"cos_collector/{app}_operator.json").read_text()
    )
    for app in APPS
}
DASHBOARD_PATH = "src/grafana_dashboards/postgresql-metrics.json"
MYSQL_DASHBOARD_PATH = "src/grafana_dashboards/mysql-metrics.json"

NEEDED = (
    "prometheus", "prometheus-postgres-exporter", "prometheus-mysqld-exporter", "mariadbd",
    "mariadb-install-db",
)  # fmt: skip
pytestmark = pytest.mark.skipif(
    not all(shutil.which(command) for command in NEEDED)
    or not any(pathlib.Path("/usr/lib/postgresql").glob("*/bin/initdb")),
    reason="needs prometheus, prometheus-postgres-exporter, postgresql, mariadb-server and "
    "prometheus-mysqld-exporter (apt)",
)

# Loaded by path: other functional tests put a module named `charm` on sys.path.
_spec = importlib.util.spec_from_file_location(
    "prometheus_charm_cos_collector", ROOT / "charms/prometheus/src/charm.py"
)
assert _spec
assert _spec.loader
prometheus_charm = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = prometheus_charm
_spec.loader.exec_module(prometheus_charm)

UUID = "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"
MODEL = testing.Model(name="lab", uuid=UUID)


def scrape_labels(app: str) -> dict[str, str]:
    """What COSAgentRequirer.metrics_jobs puts on the principal's job (no juju_charm)."""
    return {
        "juju_model": "lab",
        "juju_model_uuid": UUID,
        "juju_application": app,
        "juju_unit": f"{app}/0",
    }


def rule_labels(app: str) -> dict[str, str]:
    """The labels of the principal's rules: cosl's JujuTopology.label_matcher_dict."""
    return {
        "juju_model": "lab",
        "juju_model_uuid": UUID,
        "juju_application": app,
        "juju_charm": app,
    }


# The 8-hex suffix is a hash of the job (cos_agent._dict_hash_except_key); any value will do.
JOBS = {"postgresql": "postgresql_default_5f1c0e2a", "mysql": "mysql_default_0c4e9b17"}
# Each exporter's own health series (1 while it reaches its database) and its "down" rule.
UP = {"postgresql": "pg_up", "mysql": "mysql_up"}
DOWN_RULE = {"postgresql": "PostgresqlDown", "mysql": "MySQLDown"}
# What Grafana substitutes for its own variables (a 15 s scrape interval's $__rate_interval).
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}


def _import_pg() -> Any:
    """The PostgreSQL cluster helper of test_grafana_postgresql (one way to start one).

    That module puts the Grafana charm's source first on sys.path; it is taken off again, so
    that `config` or `relations` imported later are still the Prometheus charm's.
    """
    before = list(sys.path)
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    try:
        import test_grafana_postgresql
    finally:
        sys.path[:] = before
    return test_grafana_postgresql


@pytest.fixture(scope="module")
def pg_exporter(run_process: Any) -> Iterator[int]:
    """A real PostgreSQL and Debian's postgres_exporter scraping it; yield the exporter's port."""
    pg = _import_pg()
    with tempfile.TemporaryDirectory(prefix="collector-pg-") as directory:
        base = pathlib.Path(directory)
        cluster = pg._cluster(base)
        pg_port = next(cluster)
        try:
            port = loopback.free_port()
            # The superuser over the cluster's socket (local auth is trust there), as the
            # charm's exporter reads every pg_stat view with its monitoring user.
            dsn = (
                f"host={base / 'sockets'} port={pg_port} user=postgres dbname=postgres"
                " sslmode=disable"
            )
            command = [
                "env", f"DATA_SOURCE_NAME={dsn}", "prometheus-postgres-exporter",
                f"--web.listen-address=127.0.0.1:{port}",
            ]  # fmt: skip
            with run_process(command, f"http://127.0.0.1:{port}/metrics", base / "exporter.log"):
                yield port
        finally:
            next(cluster, None)


def _mariadb_sql(socket_path: pathlib.Path, sql: str) -> subprocess.CompletedProcess[bytes]:
    """Run `sql` as MariaDB's root over its socket (socket authentication: this OS user)."""
    client = ["mariadb", "--no-defaults", f"--socket={socket_path}", "-u", "root", "-e", sql]
    return subprocess.run(client, capture_output=True)


@contextlib.contextmanager
def _mariadb(base: pathlib.Path, wait_for: Any) -> Iterator[pathlib.Path]:
    """A throwaway MariaDB on a unix socket only; yield the socket's path."""
    data, socket_path = base / "data", base / "mysqld.sock"
    as_root = ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses root otherwise
    subprocess.run(
        ["mariadb-install-db", "--no-defaults", *as_root, f"--datadir={data}",
         "--auth-root-authentication-method=socket",
         f"--auth-root-socket-user={getpass.getuser()}", "--skip-test-db"],
        check=True, capture_output=True,
    )  # fmt: skip
    log = base / "mariadb.log"
    server = subprocess.Popen(
        ["mariadbd", "--no-defaults", *as_root, f"--datadir={data}", f"--socket={socket_path}",
         "--skip-networking", f"--pid-file={base / 'mariadb.pid'}", f"--log-error={log}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def ready() -> bool:
        assert server.poll() is None, log.read_text() if log.exists() else "mariadbd exited"
        return _mariadb_sql(socket_path, "SELECT 1").returncode == 0

    try:
        wait_for(ready, timeout=30, what="MariaDB to answer on its socket")
        yield socket_path
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def mysql_exporter(run_process: Any, wait_for: Any) -> Iterator[int]:
    """A real MariaDB and Debian's mysqld_exporter with the MySQL charm's snap's flags."""
    with tempfile.TemporaryDirectory(prefix="collector-mysql-") as directory:
        base = pathlib.Path(directory)
        with _mariadb(base, wait_for) as socket_path:
            # The exporter's documented grants; the MySQL charm's monitoring user has them
            # through its charmed_stats role, capped at 3 connections as there.
            _mariadb_sql(
                socket_path,
                "CREATE USER 'exporter'@'localhost' IDENTIFIED BY 'exporter-test'"
                " WITH MAX_USER_CONNECTIONS 3;"
                " GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO 'exporter'@'localhost';",
            ).check_returncode()
            port = loopback.free_port()
            # snap/local/start-mysqld-exporter.sh: the same DSN form and these collectors off.
            snap_flags = [
                f"--no-collect.{c}"
                for c in (
                    "binlog_size", "info_schema.processlist", "info_schema.tables",
                    "info_schema.tablestats", "info_schema.userstats",
                    "info_schema.query_response_time", "perf_schema.indexiowaits",
                    "perf_schema.tableiowaits", "perf_schema.tablelocks",
                    "auto_increment.columns",
                )
            ]  # fmt: skip
            command = [
                "env", f"DATA_SOURCE_NAME=exporter:exporter-test@unix({socket_path})/",
                "prometheus-mysqld-exporter", *snap_flags,
                f"--web.listen-address=127.0.0.1:{port}",
            ]  # fmt: skip
            with run_process(command, f"http://127.0.0.1:{port}/metrics", base / "exporter.log"):
                yield port


def forwarded_rules() -> dict[str, Any]:
    """The `alert_rules` the collector writes: each principal's groups as cosl renamed them."""
    groups = []
    for app in APPS:
        for rules in FACTS[app]["rules"].values():
            for group in rules["groups"]:
                # cosl's AlertRules._from_dict: prefixed, then _sanitize_metric_name.
                name = re.sub(
                    r"[^a-zA-Z0-9_:]", "_", f"lab_{UUID[:8]}_{app}_{group['name']}_rules"
                )
                groups.append(
                    {
                        "name": name,
                        "rules": [
                            {**rule, "labels": {**rule.get("labels", {}), **rule_labels(app)}}
                            for rule in group["rules"]
                        ],
                    }
                )
    return {"groups": groups}


def configure_ours(port: int, rules: Mapping[str, Any] | None = None) -> testing.State:
    """Run the Prometheus charm with the collector related on receive-remote-write."""
    relation = testing.Relation(
        "receive-remote-write",
        remote_app_name="otelcol",
        remote_app_data={"alert_rules": json.dumps(rules or forwarded_rules())},
        remote_units_data={0: {}},
    )
    network = testing.Network(
        "receive-remote-write",
        bind_addresses=[testing.BindAddress([testing.Address("127.0.0.1")])],
        ingress_addresses=["127.0.0.1"],
    )
    state = testing.State(
        model=MODEL,
        leader=True,
        relations=[relation],
        networks={network},
        config={
            "web-port": port,
            "scrape-interval": "1s",
            "scrape-timeout": "1s",
            "evaluation-interval": "1s",
        },
    )
    ctx = testing.Context(prometheus_charm.PrometheusCharm)
    with (
        mock.patch.multiple(
            prometheus.service,
            installed=lambda: True,
            health=lambda: prometheus.service.packaged_service.Health.UP,
            allow_low_ports=lambda port: False,
            restart=lambda: True,
        ),
        mock.patch.object(prometheus.reload, "reload", return_value=0.0),
    ):
        out = ctx.run(ctx.on.relation_changed(relation), state)
    assert out.unit_status.name == "active", out.unit_status.message
    return out


@pytest.fixture(scope="module")
def lab(
    pg_exporter: int,
    mysql_exporter: int,
    tmp_path_factory: pytest.TempPathFactory,
    scraping_prometheus: Any,
    prometheus_process: Any,
) -> Iterator[dict[str, Any]]:
    """Ours (configured by the charm, running) with the collector stand-in pushing into it."""
    tmp = tmp_path_factory.mktemp("collector")
    port = loopback.free_port()
    paths = prometheus.paths.Paths(
        config_dir=tmp / "etc", defaults=tmp / "default", tsdb=tmp / "metrics2"
    )
    with mock.patch.object(prometheus.paths, "PATHS", paths):
        out = configure_ours(port)
    [relation] = out.relations
    published = json.loads(relation.local_unit_data["remote_write"])
    # What systemd does with the packaged unit: `prometheus $ARGS` from the flags file.
    args = shlex.split(paths.defaults.read_text().split("ARGS=", 1)[1])[0].split()
    with prometheus_process(args, tmp / "ours.log", f"http://127.0.0.1:{port}") as ours:
        exporters = {"postgresql": pg_exporter, "mysql": mysql_exporter}
        jobs = [
            {
                "job_name": JOBS[app],
                "metrics_path": "/metrics",
                "static_configs": [
                    {"targets": [f"localhost:{exporters[app]}"], "labels": scrape_labels(app)}
                ],
                "tls_config": {"insecure_skip_verify": True},
            }
            for app in APPS
        ]
        sender_dir = tmp / "collector"
        sender_dir.mkdir()
        with scraping_prometheus(
            sender_dir, jobs, remote_write=[{"url": published["url"]}]
        ) as collector:
            yield {
                "ours": ours,
                "collector": collector,
                "published": published,
                "paths": paths,
                "exporters": exporters,
            }


def test_ours_publishes_its_write_url_and_turns_its_receiver_on(lab):
    assert lab["published"] == {"url": remote_write.write_url(lab["ours"].base_url)}
    assert lab["published"]["url"].endswith("/api/v1/write")
    assert "--web.enable-remote-write-receiver" in lab["paths"].defaults.read_text()


def _raw_samples(running: Any, selector: str, at: float, window: int) -> tuple[int, int]:
    result = running.get("/api/v1/query", query=f"{selector}[{window}s]", time=f"{at:.3f}")
    series = result["data"]["result"]
    return len(series), sum(len(s["values"]) for s in series)


@pytest.mark.parametrize("app", APPS)
def test_exporter_samples_arrive_in_ours_with_the_collectors_labels(lab, wait_for, app):
    ours, collector = lab["ours"], lab["collector"]
    arrived = wait_for(
        lambda: ours.query(f'{UP[app]}{{juju_application="{app}"}}'),
        timeout=60,
        what=f"{UP[app]} pushed into ours",
    )
    [series] = arrived
    assert series["metric"] == {
        "__name__": UP[app],
        "job": JOBS[app],
        "instance": f"localhost:{lab['exporters'][app]}",
        **scrape_labels(app),
    }
    assert series["value"][1] == "1"  # the exporter reaches the real database

    time.sleep(15)
    end = time.time() - 3

    def sent_past_end() -> bool:
        sent = collector.query(
            "min(prometheus_remote_storage_queue_highest_sent_timestamp_seconds)"
        )
        return bool(sent) and float(sent[0]["value"][1]) >= end

    wait_for(sent_past_end, timeout=30, what="the collector's queue to send up to the window end")
    # Our own rules' ALERTS series carry the job label too: only what was pushed is compared.
    selector = f'{{job="{JOBS[app]}",__name__!~"ALERTS|ALERTS_FOR_STATE"}}'
    sent = _raw_samples(collector, selector, end, 10)
    got = _raw_samples(ours, selector, end, 10)
    print(
        f"\ncollector path, {app}, 10 s window: {sent[0]} series / {sent[1]} samples scraped, "
        f"{got[0]} series / {got[1]} samples in ours"
    )
    assert sent[1] > 1000
    assert got == sent


@pytest.mark.parametrize("app", APPS)
def test_forwarded_rules_load_in_ours_scoped_to_their_principal(lab, wait_for, app):
    ours = lab["ours"]
    expected = {
        rule["alert"]
        for rules in FACTS[app]["rules"].values()
        for group in rules["groups"]
        for rule in group["rules"]
    }

    def loaded() -> list[dict[str, Any]]:
        groups = ours.get("/api/v1/rules")["data"]["groups"]
        rules = [
            r for g in groups for r in g["rules"] if r["labels"].get("juju_application") == app
        ]
        return rules if all(r.get("lastEvaluation", "").startswith("2") for r in rules) else []

    rules = wait_for(loaded, timeout=30, what="the forwarded rules to be evaluated")
    assert {r["name"] for r in rules} == expected
    matchers = [f'{k}="{v}"' for k, v in rule_labels(app).items() if k != "juju_charm"]
    scoped = [r for r in rules if all(m in r["query"] for m in matchers)]
    unhealthy = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    print(
        f"\nforwarded rules: {len(expected)} sent, {len(rules)} loaded, {len(scoped)} scoped "
        f"to {app}, {len(unhealthy)} unhealthy"
    )
    assert len(scoped) == len(rules)
    assert unhealthy == []
    # The exporter is up and reaches its database: its down alert does not fire.
    states = {r["name"]: r["state"] for r in rules}
    assert states[DOWN_RULE[app]] == "inactive"
    if app == "postgresql":
        assert states["PostgresqlExporterError"] == "inactive"
    if app == "mysql":
        # MariaDB has no group replication: the rule that asks for an ONLINE PRIMARY member
        # (absent(), `for: 0m`) fires, for the MySQL application alone.
        assert states["MySQLClusterNoPrimary"] == "firing"
        [alert] = next(r for r in rules if r["name"] == "MySQLClusterNoPrimary")["alerts"]
        assert {k: alert["labels"][k] for k in rule_labels(app)} == rule_labels(app)
    # Scoped to the sender: the same rule's query finds the pushed series only under its topology.
    [down] = [r for r in rules if r["name"] == DOWN_RULE[app]]
    assert down["query"].endswith(" == 0"), down["query"]
    unscoped = down["query"].removesuffix(" == 0")
    assert ours.query(unscoped)
    assert not ours.query(
        unscoped.replace(f'juju_application="{app}"', 'juju_application="other"')
    )


def _written_rules(tmp: pathlib.Path, rules: Mapping[str, Any]) -> dict[str, str]:
    """The rule files the charm writes for `rules` in the collector's databag."""
    paths = prometheus.paths.Paths(
        config_dir=tmp / "etc", defaults=tmp / "default", tsdb=tmp / "metrics2"
    )
    with mock.patch.object(prometheus.paths, "PATHS", paths):
        configure_ours(loopback.free_port(), rules)
    return {
        str(path.relative_to(tmp)): path.read_text()
        for path in sorted(paths.config_dir.rglob("*"))
        if path.is_file() and "juju_" in path.name
    }


def test_rules_the_collectors_cos_tool_already_scoped_are_written_the_same(tmp_path):
    # The PostgreSQL charm ships no cos-tool, so its expressions leave it as written; the
    # collector ships one (its charmcraft.yaml part `cos-tool`), and its AlertRules adds each
    # rule's own juju_model, juju_model_uuid and juju_application matchers before the databag.
    # cos-tool cannot run here: the matchers are put in with our own scoper, which shows that
    # expressions already scoped to the sender are taken as they are.
    from prometheus import promql

    plain = forwarded_rules()
    scoped = json.loads(json.dumps(plain))
    for group in scoped["groups"]:
        for rule in group["rules"]:
            app = rule["labels"]["juju_application"]
            topology = {k: v for k, v in rule_labels(app).items() if k != "juju_charm"}
            rule["expr"] = promql.scope(rule["expr"], topology)
            assert f'juju_application="{app}"' in rule["expr"]

    from_plain = _written_rules(tmp_path / "plain", plain)
    from_scoped = _written_rules(tmp_path / "scoped", scoped)
    # One rule file per principal the collector forwards for.
    assert sorted(from_plain) == [
        f"etc/juju-rules/juju_lab_{UUID[:8]}_{app}.rules" for app in sorted(APPS)
    ]
    assert from_scoped == from_plain


# Dashboards


def assembled_dashboard(app: str, path: str) -> dict[str, Any]:
    """One of a database charm's dashboards rebuilt from the extracted facts."""
    facts = FACTS[app]["dashboards"][path]
    source = {"type": "prometheus", "uid": "${prometheusds}"}
    panels = [
        {
            "id": n,
            "title": p["title"],
            "type": "timeseries",
            "datasource": source,
            "targets": [
                {"expr": e, "refId": chr(65 + i), "datasource": source}
                for i, e in enumerate(p["exprs"])
            ],
        }
        for n, p in enumerate(facts["panels"], 1)
    ]
    return {
        "title": facts["title"],
        # cos_agent.COSAgentProvider._dashboards replaces the uid with the charm's path uid.
        "uid": grafana_dashboard.path40_uid(app, path),
        "templating": {"list": facts["variables"]},
        "panels": panels,
        "schemaVersion": 19,
        "version": 1,
    }


def collector_databag(tmp: pathlib.Path) -> str:
    """The collector's `dashboards` app data with every dashboard its principals sent."""
    charm_dir = tmp / "otelcol-charm"
    directory = charm_dir / "grafana_dashboards"
    directory.mkdir(parents=True)
    paths = []
    # Each principal's cos-agent relation with the collector (ids as Juju would number them).
    for relation_id, app in enumerate(APPS, 4):
        for source in FACTS[app]["dashboards"]:
            dashboard = assembled_dashboard(app, source)
            # integrations._add_dashboards: juju_<title>-<charm>-<relation id>-<uid>.json, where
            # charm is cos-agent-<app> (COSAgentRequirer.dashboards).
            title = dashboard["title"].replace(" ", "_").replace("/", "_").lower()
            name = f"juju_{title}-cos-agent-{app}-{relation_id}-{dashboard['uid']}.json"
            path = directory / name
            path.write_text(json.dumps(dashboard))
            paths.append(path)
    templates = grafana_dashboard.templates_from_files(
        paths,
        charm="opentelemetry-collector",
        charm_dir=charm_dir,
        topology={
            "model": "lab",
            "model_uuid": UUID,
            "application": "otelcol",
            "unit": "otelcol/0",
        },
        inject_dropdowns=True,
    )
    return grafana_dashboard.app_data(templates)["dashboards"]


def provisioned(tmp: pathlib.Path) -> list[dict[str, Any]]:
    """Each dashboard as our Grafana provisions it, read back from its file."""
    raw = collector_databag(tmp)
    found = grafana_dashboard.from_app_data(raw, "otelcol", 9, {"lab_prometheus_0": "prometheus"})
    files = []
    for dashboard in found:
        path = tmp / dashboard.file_name
        path.write_text(dashboard.content)
        files.append(json.loads(path.read_text()))
    return files


def _regex_escape(value: str) -> str:
    """Grafana's prometheusSpecialRegexEscape for values of a multi-value variable."""
    return re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\1", value)


def _query_result_lines(ours: Any, expr: str) -> list[str]:
    """Grafana's query_result(): one `name{k="v",...} value timestamp` text per series."""
    lines = []
    for series in ours.query(expr):
        labels = dict(series["metric"])
        name = labels.pop("__name__", "")
        inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines.append(f"{name}{{{inner}}} {series['value'][1]} {int(series['value'][0] * 1000)}")
    return lines


def _label_values(ours: Any, query: str) -> list[str]:
    match = re.fullmatch(r"label_values\((?:(.*),)?\s*(\w+)\s*\)", query.strip(), re.S)
    assert match, query
    selector, label = match.groups()
    if not selector:
        return ours.get(f"/api/v1/label/{label}/values")["data"]
    series = ours.get("/api/v1/series", **{"match[]": selector})["data"]
    return sorted({s[label] for s in series if label in s})


def variable_values(ours: Any, dashboard: dict[str, Any]) -> dict[str, str]:
    """Fill each variable in order as Grafana does on load, with its default selection."""
    values: dict[str, str] = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        query = substitute(query, values)
        if query.startswith("query_result("):
            found = _query_result_lines(ours, query[len("query_result(") : -1])
        else:
            found = _label_values(ours, query)
        regex = variable.get("regex") or ""
        if regex:
            pattern = re.compile(regex.strip("/"))
            matched = [pattern.match(f) for f in found]
            found = [m.group(1) if m.groups() else m.group() for m in matched if m]
        found = list(dict.fromkeys(found))
        if variable.get("includeAll"):
            # "All" is the first option; without allValue Grafana joins every value.
            all_value = variable.get("allValue")
            values[variable["name"]] = all_value or (
                "(" + "|".join(_regex_escape(f) for f in found) + ")" if len(found) > 1
                else _regex_escape(found[0]) if found else ""
            )  # fmt: skip
        else:
            # The first option; none when the query finds nothing (Grafana's "None", value "").
            values[variable["name"]] = found[0] if found else ""
    return values


def substitute(expr: str, values: Mapping[str, str]) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(f"${{{name}}}", values[name]).replace(f"${name}", values[name])
    return expr


def _metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr, flags=re.I)
    words = {"by", "without", "on", "ignoring", "bool", "and", "or", "unless", "offset"}
    return {
        m.group()
        for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
        if not expr[m.end() :].lstrip().startswith("(") and m.group().lower() not in words
    }


def run_panels(ours: Any, dashboard: dict[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """Run every panel query as Grafana does (a range query); sort them by outcome."""
    now = time.time()
    total, returning, empty, errors = 0, 0, [], []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            total += 1
            expr = substitute(target["expr"], values)
            assert "$" not in expr, expr
            answer = ours.get(
                "/api/v1/query_range", query=expr, start=f"{now - 120:.0f}", end=f"{now:.0f}",
                step="15",
            )  # fmt: skip
            if answer.get("status") != "success":
                errors.append((panel["title"], expr, answer))
            elif answer["data"]["result"]:
                returning += 1
            else:
                missing = sorted(m for m in _metric_names(expr) if not ours.query(f"count({m})"))
                reason = (
                    f"not exported here: {', '.join(missing)}" if missing
                    else "its metrics exist; the expression's filter leaves none"
                )  # fmt: skip
                empty.append((panel["title"], target["expr"], reason))
    return {"total": total, "returning": returning, "empty": empty, "errors": errors}


def test_every_forwarded_dashboard_query_runs_against_ours(lab, tmp_path, wait_for):
    ours = lab["ours"]
    # [5m] ranges need two samples: wait for a few pushed scrapes.
    for app in APPS:
        wait_for(
            lambda app=app: ours.query(f"count_over_time({UP[app]}[1m]) >= 5"),
            timeout=60,
            what=f"five pushed scrapes of {app}'s exporter",
        )
    dashboards = {d["title"]: d for d in provisioned(tmp_path)}
    assert sorted(dashboards) == ["MySQL Exporter", "Patroni", "PostgreSQL", "pgBackRest"]
    # The uid each charm gave its dashboard survives the collector and our Grafana.
    assert dashboards["PostgreSQL"]["uid"] == grafana_dashboard.path40_uid(
        "postgresql", DASHBOARD_PATH
    )
    assert dashboards["MySQL Exporter"]["uid"] == grafana_dashboard.path40_uid(
        "mysql", MYSQL_DASHBOARD_PATH
    )
    outcomes = {}
    for title, dashboard in dashboards.items():
        names = [v["name"] for v in dashboard["templating"]["list"]]
        assert names[:4] == ["juju_model", "juju_model_uuid", "juju_application", "juju_unit"]
        values = variable_values(ours, dashboard)
        outcomes[title] = run_panels(ours, dashboard, values)
        # Its instance drop-down finds the exporter the collector scraped.
        if title == "PostgreSQL":
            assert values["instance"] == f"localhost:{lab['exporters']['postgresql']}"
        if title == "MySQL Exporter":
            assert values["instance"] == f"localhost:{lab['exporters']['mysql']}"

    for title, outcome in outcomes.items():
        print(f"\nforwarded dashboard {title!r}: {outcome['returning']} of {outcome['total']} "
              "queries return series")  # fmt: skip
        for panel, expr, reason in outcome["empty"]:
            print(f"  no series: {panel!r}: {expr}\n    {reason}")
    # Every query parses and runs.
    assert [o["errors"] for o in outcomes.values()] == [[], [], [], []]
    # The PostgreSQL dashboard is over postgres_exporter's metrics: every query returns series.
    assert outcomes["PostgreSQL"]["returning"] == outcomes["PostgreSQL"]["total"] == 45
    # The MySQL dashboard: all but two, over server variables MySQL 8.0 has not either
    # (innodb_additional_mem_pool_size went in MySQL 5.7; TokuDB is Percona's engine). Its
    # "MySQL Handlers" query returns series only because equality matchers on the dropdowns
    # are made regex matchers (dashboard_binding), as COS's Grafana makes them.
    mysql = outcomes["MySQL Exporter"]
    assert (mysql["returning"], mysql["total"]) == (55, 57)
    # The others' empty queries are over metrics nobody exports here (patroni, pgbackrest).
    for outcome in outcomes.values():
        assert [e for e in outcome["empty"] if not e[2].startswith("not exported")] == []
