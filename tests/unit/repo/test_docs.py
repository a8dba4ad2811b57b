"""The README documents every charm's options (with defaults), actions, endpoints and alerts."""

import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).parents[3]
README = (ROOT / "README.md").read_text()
# Each charm's section of the README.
SECTIONS = {
    "prometheus": "The Prometheus charm",
    "grafana": "The Grafana charm",
    "node-exporter": "The node-exporter charm",
}


def charmcraft(name: str) -> dict:
    return yaml.safe_load((ROOT / "charms" / name / "charmcraft.yaml").read_text())


def readme_rows(section: str) -> dict[str, list[str]]:
    """Table rows of one `## ` section of the README, keyed by their first (backticked) cell."""
    text = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`([a-z-]+)`", cells[0]) if line.startswith("|") else None
        if match:
            rows[match.group(1)] = cells[1:]
    return rows


@pytest.mark.parametrize("name", SECTIONS)
def test_every_option_is_documented_with_its_default(name: str):
    rows = readme_rows(SECTIONS[name])

    for option, spec in charmcraft(name)["config"]["options"].items():
        assert option in rows, f"README does not document {name} option {option}"
        default = spec["default"]
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        expected = f"`{shown}`" if shown else '`""`'
        assert rows[option][0] == expected, f"README: wrong default for {name} {option}"


@pytest.mark.parametrize("name", SECTIONS)
def test_every_action_and_endpoint_is_documented(name: str):
    rows = readme_rows(SECTIONS[name])
    meta = charmcraft(name)
    endpoints = {**meta.get("provides", {}), **meta.get("requires", {})}

    for documented in [*meta.get("actions", {}), *endpoints]:
        assert documented in rows, f"README does not document {name} {documented}"


def test_every_charm_has_a_readme_section():
    charms = sorted(p.parent.name for p in (ROOT / "charms").glob("*/charmcraft.yaml"))

    assert charms == sorted(SECTIONS)


def test_every_node_exporter_alert_rule_is_listed_in_both_readmes():
    rules = yaml.safe_load(
        (ROOT / "charms/node-exporter/src/prometheus_alert_rules/node.rules").read_text()
    )
    names = [rule["alert"] for group in rules["groups"] for rule in group["rules"]]
    charm_readme = (ROOT / "charms/node-exporter/README.md").read_text()

    assert names
    for name in names:
        assert f"| `{name}` |" in README.split("## The node-exporter charm\n", 1)[1]
        assert f"| `{name}` |" in charm_readme
