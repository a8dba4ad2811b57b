r"""The `scrape-jobs` option: the operator's own scrape_configs entries, as YAML.

Only the shape is checked here (a list of mappings with unique, unreserved job names); the
content is the operator's own Prometheus config, which promtool judges before it is used. What
is checked is that it can be written into prometheus.yml as it was meant (yaml_writer writes
JSON): YAML is read as PyYAML's safe loader reads YAML 1.1, except that

- mapping keys, floats and timestamps stay the text the operator typed: Prometheus reads keys
  and label values as text (yaml.v2 keeps a scalar's own text when it decodes it into a
  string), so `version: 1.10` stays "1.10", not 1.1, `on: x` names the label "on" and a date
  label stays as written; no option of a scrape config is a float or a time;
- explicit tags that give other types (!!binary, !!set, !!omap, !!pairs, !!float, !!timestamp)
  are refused with their line;
- aliases (`*name`) are written out as copies, up to MAX_VALUES values once expanded (a few
  lines of nested aliases can stand for billions); an alias inside itself is refused;
- a string holding a UTF-16 surrogate (a "\ud800" escape: PyYAML reads a JSON-style pair
  "\ud83d\ude00" as two, and yaml.v2 refuses them) or a key too long for YAML is refused.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from prometheus import checks, jobs, yaml_writer

# Values (scalars, lists and mappings) the jobs may hold once aliases are written out.
MAX_VALUES = 100_000
# Nesting deeper than any scrape config (and than PyYAML's and json's recursion can follow).
MAX_DEPTH = 50
_SURROGATE = re.compile("[\ud800-\udfff]")
_TAG = "tag:yaml.org,2002:"
_FLOAT_OR_TIMESTAMP = (f"{_TAG}float", f"{_TAG}timestamp")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, with keys, floats and timestamps kept as text (see above)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
        self.flatten_mapping(node)  # merge keys (`<<: *base`), which yaml.v2 also supports
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line = key_node.start_mark.line + 1
                raise checks.InvalidError(f"the key at line {line} is not text")
            mapping[key_node.value] = self.construct_object(value_node, deep=deep)
        return mapping

    def refuse_tag(self, node: yaml.Node) -> None:
        tag = node.tag.replace(_TAG, "!!")
        raise checks.InvalidError(f"{tag} at line {node.start_mark.line + 1} is not supported")


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _FLOAT_OR_TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _name in ("binary", "set", "omap", "pairs", "float", "timestamp"):
    _Loader.add_constructor(f"{_TAG}{_name}", _Loader.refuse_tag)


def parse_user_jobs(text: str) -> list[dict[str, Any]]:
    """Parse the `scrape-jobs` option: a YAML list of scrape_configs entries.

    Raises:
        InvalidError: it is not such a list, or holds what cannot be written (see the module).
    """
    if not text.strip():
        return []
    try:
        parsed = yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise checks.InvalidError(f"not valid YAML{line}") from None
    except RecursionError:
        raise checks.InvalidError(f"nested more than {MAX_DEPTH} levels deep") from None
    if not isinstance(parsed, list) or not all(isinstance(job, dict) for job in parsed):
        raise checks.InvalidError("must be a YAML list of scrape configs (- job_name: ...)")
    seen: set[str] = set()
    for number, job in enumerate(parsed, start=1):
        name = job.get("job_name")
        if not isinstance(name, str) or not name.strip():
            raise checks.InvalidError(f"entry {number} has no job_name")
        if name == jobs.SELF_JOB or name.startswith(jobs.RELATION_JOB_PREFIX):
            raise checks.InvalidError(
                f'job_name {checks.show(name)} is reserved (the charm uses "prometheus"'
                f' and "{jobs.RELATION_JOB_PREFIX}...")'
            )
        if name in seen:
            raise checks.InvalidError(f"job_name {checks.show(name)} is used twice")
        seen.add(name)
    _check_writable(parsed)
    return parsed


def _check_writable(parsed: list[Any]) -> None:
    """Raise InvalidError for what yaml_writer cannot write as the operator meant it."""
    count = 0
    # Depth-first, without recursion: (value, depth, the containers it is inside).
    stack: list[tuple[Any, int, frozenset[int]]] = [(parsed, 0, frozenset())]
    while stack:
        value, depth, inside = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise checks.InvalidError(
                f"more than {MAX_VALUES} values once its YAML aliases are written out"
            )
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise checks.InvalidError(
                    f"{checks.show(value)} holds a UTF-16 surrogate, which YAML cannot carry"
                    " (write the character itself, or \\U0001F600 for one beyond U+FFFF)"
                )
            continue
        if not isinstance(value, (dict, list)):
            continue  # int, bool or None: the loader makes nothing else
        if id(value) in inside:
            raise checks.InvalidError("a YAML alias refers to a value it is inside of")
        if depth >= MAX_DEPTH:
            raise checks.InvalidError(f"nested more than {MAX_DEPTH} levels deep")
        within = inside | {id(value)}
        if isinstance(value, dict):
            for key in value:
                if _SURROGATE.search(key):
                    raise checks.InvalidError(
                        f"the key {checks.show(key)} holds a UTF-16 surrogate"
                    )
                if not yaml_writer.fits_as_key(key):
                    raise checks.InvalidError(
                        f"the key {checks.show(key)} is longer than YAML allows"
                        f" ({yaml_writer.MAX_KEY_LENGTH} characters as written)"
                    )
            items = list(value.values())
        else:
            items = value
        stack.extend((item, depth + 1, within) for item in items)
