"""Write <charm>_operator.json: the facts of a database machine charm the tests need.

Not the charm's files: from its dashboards only what Grafana turns into queries (title, uid,
each template variable's name, type, query, regex, includeAll, multi; each panel's title and
its targets' expr), from its alert rule files only each rule's name, expr, `for` and labels
(no annotations). Run from the repository root with a clone of the charm's repository:

    python3 tests/functional/cos_collector/extract.py postgresql /path/to/postgresql-operator
    python3 tests/functional/cos_collector/extract.py mysql /path/to/mysql-operator

It records the commit it read (git rev-parse HEAD of that clone).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

# Per charm: its repository, the dashboards its COSAgentProvider sends (the default
# ./src/grafana_dashboards) and the rule files of its metrics_rules_dir.
CHARMS = {
    "postgresql": {
        "repository": "canonical/postgresql-operator",
        "dashboards": [
            "src/grafana_dashboards/postgresql-metrics.json",
            "src/grafana_dashboards/postgresql-patroni-metrics.json",
            "src/grafana_dashboards/postgresql-pgbackrest-metrics.json",
        ],
        "rules": [
            "src/prometheus_alert_rules/postgresql_rules.yaml",
            "src/prometheus_alert_rules/patroni_rules.yaml",
            "src/prometheus_alert_rules/pgbackrest_rules.yaml",
            "src/prometheus_alert_rules/pgbouncer_rules.yaml",
        ],
    },
    "mysql": {
        "repository": "canonical/mysql-operator",
        "dashboards": ["src/grafana_dashboards/mysql-metrics.json"],
        "rules": [
            "src/alert_rules/prometheus/general_rules.yaml",
            "src/alert_rules/prometheus/replication_rules.yaml",
        ],
    },
}
VARIABLE_KEYS = ("name", "type", "query", "regex", "includeAll", "multi", "allValue")


def panels(items: list) -> list:
    found = []
    for panel in items:
        found.append(panel)
        found += panels(panel.get("panels", []))
    return found


def dashboard_facts(path: Path) -> dict:
    d = json.loads(path.read_text())
    return {
        "title": d["title"],
        "uid": d["uid"],
        "variables": [{k: v[k] for k in VARIABLE_KEYS if k in v} for v in d["templating"]["list"]],
        "panels": [
            {
                "title": p.get("title", ""),
                "exprs": [t["expr"] for t in p["targets"] if "expr" in t],
            }
            for p in panels(d.get("panels", []))
            if p.get("targets")
        ],
    }


def rule_facts(path: Path) -> dict:
    groups = yaml.safe_load(path.read_text())["groups"]
    keys = ("alert", "expr", "for", "labels")
    return {
        "groups": [
            {"name": g["name"], "rules": [{k: r[k] for k in keys if k in r} for r in g["rules"]]}
            for g in groups
        ]
    }


def main(charm: str, clone: Path) -> None:
    spec = CHARMS[charm]
    commit = subprocess.run(
        ["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    facts = {
        "source": {
            "repository": spec["repository"],
            "commit": commit,
            "extracted_by": Path(__file__).name,
        },
        "dashboards": {p: dashboard_facts(clone / p) for p in spec["dashboards"]},
        "rules": {p: rule_facts(clone / p) for p in spec["rules"]},
    }
    out = Path(__file__).with_name(f"{charm}_operator.json")
    out.write_text(json.dumps(facts, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
