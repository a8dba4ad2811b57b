"""The README documents every option, action and endpoint the charms declare, with its default."""

import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).parents[3]
README = (ROOT / "README.md").read_text()
CHARMS = ("prometheus", "grafana")


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


@pytest.mark.parametrize("name", CHARMS)
def test_every_option_is_documented_with_its_default(name: str):
    rows = readme_rows(f"The {name.capitalize()} charm")

    for option, spec in charmcraft(name)["config"]["options"].items():
        assert option in rows, f"README does not document {name} option {option}"
        default = spec["default"]
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        expected = f"`{shown}`" if shown else '`""`'
        assert rows[option][0] == expected, f"README: wrong default for {name} {option}"


@pytest.mark.parametrize("name", CHARMS)
def test_every_action_and_endpoint_is_documented(name: str):
    rows = readme_rows(f"The {name.capitalize()} charm")
    meta = charmcraft(name)
    endpoints = {**meta.get("provides", {}), **meta.get("requires", {})}

    for documented in [*meta["actions"], *endpoints]:
        assert documented in rows, f"README does not document {name} {documented}"
