"""The `relabel_configs` of a COS scrape job, kept only when they cannot rewrite the topology.

A probe job (blackbox-style) only works with its relabelling: it moves the probed address to
the `target` URL parameter and points `__address__` at the exporter. COS's Prometheus takes a
sender's relabel_configs as they come (canonical/prometheus-k8s-operator,
lib/charms/prometheus_k8s/v0/prometheus_scrape.py, `ALLOWED_KEYS` and
`PrometheusConfig.sanitize_scrape_config`, LIBPATCH 61, commit 432c227d6561); here each rule
is checked so that:

- no rule can write, rename or drop a `juju_*` label (so a charm cannot file its series under
  another application), the `job` label, or a `__` label other than those a scrape target is
  made of (`__address__`, `__metrics_path__`, `__param_<name>`, `__tmp_<name>`);
- every field has the type and syntax Prometheus 2.31 (jammy's) accepts, so promtool cannot
  refuse the whole prometheus.yml over one sender's rule. Regexes are Go's RE2 syntax, which
  Python's `re` reads differently in places; only a subset both read alike is accepted.

What is refused and why:
- `labelmap` writes label names made from a regex over label names: whether the result can be
  `juju_*` depends on RE2's reading of the regex, which this charm cannot run;
- `labelkeep` drops every label its regex does not match, the topology with them;
- `labeldrop` is kept only with a literal label name as its regex (it then matches exactly that
  name), and not a protected one;
- `lowercase`, `uppercase`, `keepequal`, `dropequal` are unknown to Prometheus 2.31;
- `replace` and `hashmod` need a literal `target_label` (no `$1`: a name built from capture
  groups could be anything) that is not protected. `keep` and `drop` only choose targets.

A job whose relabel_configs are refused is dropped whole (`validate` raises InvalidError):
scraped without its relabelling, a probe job would scrape the probed address itself.
"""

from __future__ import annotations

import re
from typing import Any

from prometheus import checks

MAX_RULES = 32
_MAX_SOURCE_LABELS = 16
_MAX_REGEX = 512
_MAX_MODULUS = 2**64 - 1
_ACTIONS = ("replace", "keep", "drop", "hashmod", "labeldrop")
_REFUSED_ACTIONS = {
    "labelmap": "could write juju_* label names",
    "labelkeep": "would drop the juju_* topology",
    "lowercase": "is unknown to Prometheus 2.31",
    "uppercase": "is unknown to Prometheus 2.31",
    "keepequal": "is unknown to Prometheus 2.31",
    "dropequal": "is unknown to Prometheus 2.31",
}
_FIELDS = {
    "action",
    "source_labels",
    "separator",
    "target_label",
    "regex",
    "modulus",
    "replacement",
}
# Labels a rule may write beginning with __: those that say where and how to scrape a target,
# and __tmp_ (Prometheus's documented scratch prefix). All __ labels are removed after
# relabelling.
_WRITABLE_RESERVED = re.compile(r"__address__|__metrics_path__|__(?:param|tmp)_[A-Za-z0-9_]+")
# Escapes RE2 and Python read alike: the classes \d \w \s (and negations) and escaped
# punctuation. Anything else after a backslash (\b, \z, \pL, \x41, \Q, backreferences) differs
# or exists in one only.
_ESCAPABLE = set(r"dDwWsS.\*+?()[]{}|^$-/")


def validate(raw: object) -> list[dict[str, Any]]:
    """Return a job's relabel_configs, every field checked; raise InvalidError if one is unsafe."""
    if not isinstance(raw, list):
        raise checks.InvalidError("relabel_configs must be a list")
    if len(raw) > MAX_RULES:
        raise checks.InvalidError(f"relabel_configs has {len(raw)} rules, more than {MAX_RULES}")
    return [_rule(rule, n) for n, rule in enumerate(raw)]


def _rule(raw: object, n: int) -> dict[str, Any]:
    where = f"relabel_configs[{n}]"
    if not isinstance(raw, dict):
        raise checks.InvalidError(f"{where} must be an object")
    unknown = sorted(str(key) for key in raw if key not in _FIELDS)
    if unknown:
        raise checks.InvalidError(f"{where} has unknown fields {checks.show(unknown)}")
    action = raw.get("action", "replace")
    if not isinstance(action, str):
        raise checks.InvalidError(f"{where}: action {checks.show(action)} is not supported")
    if action in _REFUSED_ACTIONS:
        raise checks.InvalidError(f"{where}: action {action} {_REFUSED_ACTIONS[action]}")
    if action not in _ACTIONS:
        raise checks.InvalidError(f"{where}: action {checks.show(action)} is not supported")
    rule: dict[str, Any] = {"action": action}
    if "regex" in raw:
        rule["regex"] = regex(raw["regex"], f"{where} regex")
    if action == "labeldrop":
        # Prometheus allows only `regex` beside this action.
        if set(raw) - {"action", "regex"}:
            raise checks.InvalidError(f"{where}: labeldrop takes only a regex")
        _writable(rule.get("regex"), f"{where} labeldrop regex")
        return rule
    if "source_labels" in raw:
        rule["source_labels"] = _source_labels(raw["source_labels"], where)
    if "separator" in raw:
        separator = raw["separator"]
        rule["separator"] = (
            separator
            if separator == ""
            else checks.text_value(separator, f"{where} separator", limit=64)
        )
    if "replacement" in raw:
        rule["replacement"] = _replacement(raw["replacement"], f"{where} replacement")
    return rule | _target(raw, action, where)


def _target(raw: dict[str, Any], action: str, where: str) -> dict[str, Any]:
    """Return a rule's target_label and modulus, for the actions that take them."""
    target: dict[str, Any] = {}
    if action in ("replace", "hashmod"):
        target["target_label"] = _writable(raw.get("target_label"), f"{where} target_label")
    elif "target_label" in raw:
        raise checks.InvalidError(f"{where}: target_label means nothing to {action}")
    if action == "hashmod":
        modulus = raw.get("modulus")
        if type(modulus) is not int or not 0 < modulus <= _MAX_MODULUS:
            raise checks.InvalidError(f"{where}: hashmod needs a modulus from 1 to 2^64-1")
        target["modulus"] = modulus
    elif "modulus" in raw:
        raise checks.InvalidError(f"{where}: modulus means nothing to {action}")
    return target


def _source_labels(raw: object, where: str) -> list[str]:
    """Label names to read: any valid name, juju_* and __ included (reading is harmless)."""
    if not isinstance(raw, list) or not 0 < len(raw) <= _MAX_SOURCE_LABELS:
        raise checks.InvalidError(
            f"{where} source_labels must be a list of 1 to {_MAX_SOURCE_LABELS} label names"
        )
    return [checks.match(name, checks.LABEL_NAME, f"{where} source label") for name in raw]


def _writable(name: object, what: str) -> str:
    """Return `name` if it is a literal label name a sender's rule may write (or drop)."""
    checks.match(name, checks.LABEL_NAME, what)
    assert isinstance(name, str)
    if name.startswith("juju_") or name == "job":
        raise checks.InvalidError(f"{what} {checks.show(name)} is set by this charm")
    if name.startswith("__") and not _WRITABLE_RESERVED.fullmatch(name):
        raise checks.InvalidError(f"{what} {checks.show(name)} is a reserved label")
    return name


def _replacement(raw: object, what: str) -> str:
    """A replacement is a label value with $1/${1} references: any printable text, or empty."""
    if raw == "":
        return raw
    return checks.text_value(raw, what)


def regex(raw: object, what: str) -> str:
    """Return `raw` if it is a regex Go's RE2 surely compiles; raise InvalidError if unsure.

    Accepted: printable ASCII up to 512 characters that Python compiles, using only literals,
    `.`, `|`, `^`, `$`, groups `(...)` and `(?:...)`, classes `[...]` (no POSIX `[:name:]`,
    no `]` first), the quantifiers `* + ?` each optionally lazy, and the escapes in
    `_ESCAPABLE`. Refused although RE2 may accept: `{n,m}` counts (RE2 caps them at 1000 and
    the size of nested ones, Python does not), flags and named groups `(?...)`.
    """
    if not isinstance(raw, str) or len(raw) > _MAX_REGEX:
        raise checks.InvalidError(f"{what} must be text of up to {_MAX_REGEX} characters")
    if not (raw.isascii() and raw.isprintable()):
        raise checks.InvalidError(f"{what} {checks.show(raw)} is not printable ASCII")
    i = 0
    # 0: after an atom; 1: after a quantifier; 2: after a lazy quantifier such as `*?`.
    state = 0
    while i < len(raw):
        char = raw[i]
        if char == "\\":
            if i + 1 >= len(raw) or raw[i + 1] not in _ESCAPABLE:
                raise checks.InvalidError(f"{what} {checks.show(raw)} has an unsupported escape")
            i, state = i + 2, 0
            continue
        if char in "{}":
            raise checks.InvalidError(f"{what} {checks.show(raw)}: repeat counts are refused")
        if raw.startswith("(?", i) and not raw.startswith("(?:", i):
            raise checks.InvalidError(f"{what} {checks.show(raw)}: only (?:...) groups allowed")
        if raw.startswith(("[]", "[^]", "[:", "[[", "[^["), i):
            raise checks.InvalidError(f"{what} {checks.show(raw)} has an unsupported class")
        if char in "*+?":
            # `*?` is lazy in both; `*+`, `?+`, `**`, `*??` are possessive or an error in
            # Python and an error in RE2. (Inside a class this refuses `[*+]`: erring safe.)
            if state == 2 or (state == 1 and char != "?"):
                raise checks.InvalidError(f"{what} {checks.show(raw)} repeats a repetition")
            state += 1
        else:
            state = 0
        i += 1
    try:
        re.compile(raw)
    except (re.error, RecursionError, OverflowError):
        raise checks.InvalidError(f"{what} {checks.show(raw)} is not a regex") from None
    return raw
