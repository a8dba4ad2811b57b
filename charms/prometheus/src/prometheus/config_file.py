"""prometheus.yml and the charm's rule files: rendered, checked with promtool, installed.

A new file goes live only once promtool accepts it (with the rule files it names), staged in a
temporary directory first; a rule file promtool refuses is left out, the rest still installs.
Every write is compare-then-write and reports whether it changed, so the charm reloads only
when something did.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from lab_monitoring import files

from prometheus import paths, yaml_writer

_RULES_FILE = re.compile(r"[A-Za-z0-9_.-]+\.rules")
# A rule file: group and rule settings one per line; labels and annotations on one line each.
_RULES_EXPAND = 5


class ConfigError(Exception):
    """promtool rejected a configuration; the message is promtool's."""


class Installed(NamedTuple):
    """What `install_config` did."""

    changed: bool
    rejected_rules: Mapping[str, str] = MappingProxyType({})


def render_config(
    *,
    scrape_interval: str,
    scrape_timeout: str,
    evaluation_interval: str,
    external_labels: Mapping[str, str],
    scrape_configs: Sequence[Mapping[str, Any]],
    alertmanagers: Sequence[Mapping[str, Any]] = (),
    remote_write: Sequence[Mapping[str, Any]] = (),
) -> str:
    """Return prometheus.yml for these settings and (already validated) scrape configs.

    `alertmanagers` are `alerting.alertmanagers` entries; without any, no `alerting` section.
    `remote_write`: the entries of prometheus.yml's remote_write list (remote_storage.entries).
    """
    global_config: dict[str, Any] = {
        "scrape_interval": scrape_interval,
        "scrape_timeout": scrape_timeout,
        "evaluation_interval": evaluation_interval,
    }
    if external_labels:
        global_config["external_labels"] = dict(external_labels)
    config: dict[str, Any] = {"global": global_config}
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [dict(entry) for entry in alertmanagers]}
    config |= {
        # Relative to prometheus.yml, so a staged copy checks against staged rules.
        "rule_files": [f"{paths.RULES_DIR_NAME}/*.rules"],
        "scrape_configs": [dict(job) for job in scrape_configs],
    }
    if remote_write:
        config["remote_write"] = [dict(entry) for entry in remote_write]
    return paths.HEADER + yaml_writer.dump(config)


def render_rules(groups: Mapping[str, Any]) -> str:
    """Return a rules file for `{"groups": [...]}`."""
    return paths.HEADER + yaml_writer.dump(dict(groups), expand=_RULES_EXPAND)


def install_config(config: str, rules: Mapping[str, str]) -> Installed:
    """Check prometheus.yml and rule files with promtool, then install what passed.

    Everything is staged in a temporary directory first. A rule file promtool rejects is left
    out (and reported in `rejected_rules`); if prometheus.yml itself is rejected nothing is
    written and ConfigError is raised. Stale rule files in the charm's rules directory are
    removed. Nothing is checked or written when the live files already match.

    Raises:
        ConfigError: promtool rejected prometheus.yml (the message is promtool's).
    """
    for name in rules:
        if not _RULES_FILE.fullmatch(name):
            raise ValueError(f"bad rules file name {name!r}")
    live_rules = _live_rules()
    if rules == live_rules and files.read(paths.PATHS.config) == config:
        return Installed(changed=False)

    rejected: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="prometheus-charm-") as tmp:
        stage = Path(tmp)
        (stage / paths.RULES_DIR_NAME).mkdir()
        for name, text in rules.items():
            staged = stage / paths.RULES_DIR_NAME / name
            staged.write_text(text)
            # Files identical to live ones passed this check when they were installed.
            if live_rules.get(name) != text:
                error = _promtool(stage, "check", "rules", f"{paths.RULES_DIR_NAME}/{name}")
                if error:
                    rejected[name] = error
                    staged.unlink()
        (stage / "prometheus.yml").write_text(config)
        error = _promtool(stage, "check", "config", "prometheus.yml")
        if error:
            raise ConfigError(error)

    kept = {name: text for name, text in rules.items() if name not in rejected}
    changed = _sync_rules(kept, live_rules)
    # 0640 and group prometheus: scrape-jobs may hold credentials.
    changed |= files.write(paths.PATHS.config, config, mode=0o640, group=paths.GROUP)
    return Installed(changed=changed, rejected_rules=rejected)


def check_live_config() -> str | None:
    """Run promtool on the live prometheus.yml (and its rules); return its error, or None."""
    return _promtool(paths.PATHS.config_dir, "check", "config", paths.PATHS.config.name)


def job_count() -> int:
    """Return how many scrape jobs the live prometheus.yml has (0 if it is not there)."""
    text = files.read(paths.PATHS.config) or ""
    try:
        # After the header line the charm's file is JSON (see yaml_writer).
        config = json.loads(text.partition("\n")[2] if text.startswith("#") else text)
    except ValueError:
        config = _yaml(text)  # not the charm's (yet): a file written by hand or by an older one
    if not isinstance(config, dict):
        return 0
    jobs = config.get("scrape_configs")
    return len(jobs) if isinstance(jobs, list) else 0


def _yaml(text: str) -> object:
    import yaml  # only for a file the charm did not write (see job_count)

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError:
        return None


def _promtool(cwd: Path, *args: str) -> str | None:
    """Run promtool in `cwd`; return its complaint as one line, or None if it is satisfied."""
    result = subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode == 0:
        return None
    lines = (line.strip() for line in (result.stderr or result.stdout).splitlines())
    return " ".join(line.removeprefix("FAILED:").strip() for line in lines if line) or (
        f"promtool exited with {result.returncode}"
    )


def _live_rules() -> dict[str, str]:
    rules_dir = paths.PATHS.rules_dir
    if not rules_dir.is_dir():
        return {}
    return {path.name: path.read_text() for path in sorted(rules_dir.glob("*.rules"))}


def _sync_rules(rules: Mapping[str, str], live: Mapping[str, str]) -> bool:
    """Make the rules directory hold exactly `rules`; return True if anything changed."""
    rules_dir = paths.PATHS.rules_dir
    rules_dir.mkdir(parents=True, exist_ok=True)
    changed = False
    for name in live.keys() - rules.keys():
        (rules_dir / name).unlink()
        changed = True
    for name, text in rules.items():
        changed |= files.write(rules_dir / name, text)
    return changed
