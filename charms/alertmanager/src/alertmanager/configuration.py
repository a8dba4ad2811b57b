"""alertmanager.yml and its notification templates: rendered, checked by amtool, installed.

A new configuration is staged in a private temporary directory (alertmanager.yml and the
templates file beside it, which it names by a relative path) and checked there with
`amtool check-config`, which loads it the way Alertmanager does, templates included. Only a
configuration amtool accepts replaces the live files; amtool's complaint, with every secret
masked, is the error otherwise. Files are written compare-then-write, mode 0640, root and the
package's group: Alertmanager (User=prometheus) reads them, other users do not (receivers hold
passwords and tokens).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from lab_monitoring import files

from alertmanager import masking, package, paths

HEADER = (
    "# Managed by the alertmanager charm: edits are overwritten. Use its config-file and\n"
    "# templates-file options instead.\n"
)
# What the charm runs while config-file is empty: every alert grouped per application and
# alert name (the juju_* labels are those COS and this repository's Prometheus put on every
# alert) and sent to a receiver without integrations. The timings are Alertmanager's defaults,
# written out so that show-config says them.
DEFAULT_CONFIG = """\
# config-file is empty: no receiver is configured, so alerts notify nobody. They are still
# grouped, and listed by `amtool alert query` and in Grafana's Alertmanager data source.
route:
  receiver: nobody
  group_by: [juju_model, juju_model_uuid, juju_application, alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: nobody
"""
_FAILED = re.compile(r"FAILED: (.*)")


class ConfigError(Exception):
    """amtool refused a configuration; the message is amtool's, with every secret masked."""


def parse(config_file: str) -> dict[str, Any]:
    """Return the operator's alertmanager.yml, parsed; it must be a YAML mapping.

    Raises:
        ValueError: it is not YAML, or not a mapping; the message never quotes the text.
    """
    import yaml

    try:
        data = yaml.load(config_file, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as e:
        raise ValueError(f"not YAML: {masking.yaml_problem(e)}") from None
    if not isinstance(data, dict):
        raise ValueError("not a YAML mapping (an alertmanager.yml has keys such as route:)")
    return data


def render(config_file: str, templates: str) -> str:
    """Return alertmanager.yml: the operator's config-file, or the default one.

    The operator's text is kept as written (comments too). With templates, the file the charm
    writes them to is added to its `templates:` list, and the text is written anew by PyYAML.
    """
    if not config_file.strip():
        body = DEFAULT_CONFIG
        if templates:
            body += f"templates:\n  - {paths.TEMPLATES_NAME}\n"
        return HEADER + body
    if not templates:
        return HEADER + config_file.rstrip("\n") + "\n"
    import yaml

    data = parse(config_file)
    listed = data.get("templates") or []
    if not isinstance(listed, list):
        listed = [listed]  # amtool says what is wrong with it
    if paths.TEMPLATES_NAME not in listed:
        listed = [*listed, paths.TEMPLATES_NAME]
    data["templates"] = listed
    return HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


def install(config: str, templates: str) -> bool:
    """Check alertmanager.yml and the templates with amtool, then install them if they pass.

    Returns True if a live file changed. Nothing is checked or written when the live files
    already match. Without templates, the templates file is removed.

    Raises:
        ConfigError: amtool refused them (its words, secrets masked); nothing was written.
    """
    live = paths.PATHS
    if files.read(live.config) == config and (files.read(live.templates) or "") == templates:
        return False
    with tempfile.TemporaryDirectory(prefix="alertmanager-charm-") as tmp:  # mode 0700
        stage = Path(tmp)
        (stage / live.config.name).write_text(config)
        if templates:
            (stage / paths.TEMPLATES_NAME).write_text(templates)
        error = _amtool(stage / live.config.name)
        if error is not None:
            error = error.replace(f"{stage}/", f"{live.config_dir}/")
            raise ConfigError(masking.redact(error, masking.secrets_of(config)))
    # Templates first: the live configuration never names a file that is not there yet.
    changed = False
    if templates:
        changed |= files.write(live.templates, templates, mode=0o640, group=package.GROUP)
    elif live.templates.exists():
        live.templates.unlink()
        changed = True
    changed |= files.write(live.config, config, mode=0o640, group=package.GROUP)
    return changed


def check_live() -> str | None:
    """Run amtool on the live alertmanager.yml; return its complaint (secrets masked), or None."""
    error = _amtool(paths.PATHS.config)
    if error is None:
        return None
    return masking.redact(error, masking.secrets_of(files.read(paths.PATHS.config)))


def show_live() -> str:
    """Return the live alertmanager.yml with every secret masked.

    Raises:
        FileNotFoundError: there is no live alertmanager.yml.
        ValueError: it is not YAML (a hand edit); the message says where, not what.
    """
    text = paths.PATHS.config.read_text()
    return masking.masked_yaml(text)


def _amtool(config: Path) -> str | None:
    """Run `amtool check-config` on a file; return its complaint as one line, or None.

    amtool prints `Checking '<file>'  FAILED: <reason>` (and `  FAILED: <reason>` for the
    templates), a YAML error going on over indented lines, on stdout (cli/check_config.go,
    0.23 to 0.26).
    """
    result = subprocess.run(
        ["amtool", "check-config", str(config)], capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        return None
    reasons: list[str] = []
    collecting = False
    for line in result.stdout.splitlines():
        failed = _FAILED.search(line)
        if failed:
            reasons.append(failed.group(1).strip())
            collecting = True
        elif collecting and line.startswith("  ") and not line.startswith(" - "):
            reasons[-1] += f" {line.strip()}"
        else:
            collecting = False
    if reasons:
        return "; ".join(reasons)
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines()]
    return " ".join(line for line in lines if line) or f"amtool exited with {result.returncode}"
