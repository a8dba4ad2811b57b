"""The documentation agrees with the charms, its links lead somewhere, and the README stays short.

Every charm directory with a charmcraft.yaml is found here, so a new charm needs no change to
this file: only its sections in docs/configuration.md, docs/actions.md and docs/relations.md,
each under a heading that ends with the charm's name in backticks, `## Grafana (`grafana`)`.
"""

from __future__ import annotations

import ast
import pathlib
import re
from collections.abc import Iterator

import pytest
import yaml

ROOT = pathlib.Path(__file__).parents[3]
DOCS = ROOT / "docs"
CHARMS = sorted(path.parent.name for path in (ROOT / "charms").glob("*/charmcraft.yaml"))
README_MAX_LINES = 150
# What the README, CONTRIBUTING.md and the docs link to: each must point at a file that exists.
LINKED_PAGES = sorted(
    [
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        *DOCS.glob("*.md"),
        *(ROOT / "charms").glob("*/README.md"),
    ]
)
# History belongs in commit messages, not in what users read.
HISTORY = re.compile(
    r"\bissues?\s*#?\d+|\b(?:before|after|since|until)\s+(?:the\s+)?issue\b", re.I
)
_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def charmcraft(name: str) -> dict:
    return yaml.safe_load((ROOT / "charms" / name / "charmcraft.yaml").read_text())


def prose(path: pathlib.Path) -> str:
    """A Markdown file without its fenced code blocks (whose `#` lines are no headings)."""
    return _FENCE.sub("", path.read_text())


def section(page: str, name: str) -> str:
    """The text under `page`'s heading that ends with (`name`), down to the next as high."""
    text = prose(DOCS / page)
    heading = re.compile(rf"^(#{{2,6}}) .*\(`{re.escape(name)}`\)[ \t]*$", re.M)
    found = list(heading.finditer(text))
    assert len(found) == 1, (
        f"docs/{page} needs exactly one heading ending in (`{name}`), found {len(found)}"
    )
    level = len(found[0].group(1))
    rest = text[found[0].end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def subsections(text: str, level: int = 3) -> dict[str, str]:
    """The `### `name`` subsections of a section, by name."""
    parts = re.split(rf"^{'#' * level} `([^`]+)`[ \t]*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def tables(text: str) -> Iterator[tuple[list[str], dict[str, list[str]]]]:
    """Each Markdown table: its header, and its rows keyed by their first cell's `name`."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not (line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---")):
            continue
        if i > 0 and lines[i - 1].startswith("|"):
            continue  # not the header: a row of a table that started earlier
        rows = {}
        for row in lines[i + 2 :]:
            if not row.startswith("|"):
                break
            row_cells = cells(row)
            key = re.fullmatch(r"`([^`]+)`", row_cells[0])
            if key:
                rows[key.group(1)] = row_cells
        yield cells(line), rows


def table(text: str, first_column: str) -> tuple[list[str], dict[str, list[str]]]:
    """The one table whose header starts with `first_column`."""
    found = [t for t in tables(text) if t[0][0] == first_column]
    assert len(found) == 1, f"expected one table headed `{first_column}`, found {len(found)}"
    return found[0]


def shown(value: object) -> str:
    """A default as the docs show it: `15s`, `false`, `""`."""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"`{text}`" if text else '`""`'


def missing_and_extra(documented: set[str], declared: set[str], what: str) -> None:
    assert not declared - documented, f"{what}: not documented: {sorted(declared - documented)}"
    assert not documented - declared, (
        f"{what}: documented but not in charmcraft.yaml: {sorted(documented - declared)}"
    )


# --- configuration.md, actions.md, relations.md against charmcraft.yaml ------------------------


@pytest.mark.parametrize("name", CHARMS)
def test_every_option_is_documented_with_its_type_and_default(name: str):
    options = charmcraft(name).get("config", {}).get("options", {})
    header, rows = table(section("configuration.md", name), "option")
    type_column, default_column = header.index("type"), header.index("default")

    missing_and_extra(set(rows), set(options), f"docs/configuration.md, {name} options")
    for option, spec in options.items():
        assert rows[option][type_column] == spec["type"], f"{name} {option}: wrong type"
        assert rows[option][default_column] == shown(spec.get("default", "")), (
            f"docs/configuration.md: wrong default for {name} {option}"
        )


@pytest.mark.parametrize("name", CHARMS)
def test_every_action_and_parameter_is_documented(name: str):
    actions = charmcraft(name).get("actions") or {}
    documented = subsections(section("actions.md", name))

    missing_and_extra(set(documented), set(actions), f"docs/actions.md, {name} actions")
    for action, spec in actions.items():
        params = spec.get("params") or {}
        rows: dict[str, list[str]] = {}
        header: list[str] = []
        if params:
            header, rows = table(documented[action], "parameter")
        missing_and_extra(set(rows), set(params), f"docs/actions.md, {name} {action} parameters")
        for param, param_spec in params.items():
            assert rows[param][header.index("type")] == param_spec["type"], (
                f"docs/actions.md: wrong type for {name} {action} {param}"
            )
            if "default" in param_spec:
                assert rows[param][header.index("default")] == shown(param_spec["default"]), (
                    f"docs/actions.md: wrong default for {name} {action} {param}"
                )


@pytest.mark.parametrize("name", CHARMS)
def test_every_action_refuses_parameters_it_does_not_declare(name: str):
    # docs/actions.md promises that Juju refuses unknown parameters.
    for action, spec in (charmcraft(name).get("actions") or {}).items():
        assert spec.get("additionalProperties") is False, (
            f"{name} {action}: add `additionalProperties: false` to charmcraft.yaml"
        )


@pytest.mark.parametrize("name", CHARMS)
def test_every_endpoint_is_documented_with_its_role_and_interface(name: str):
    meta = charmcraft(name)
    declared = {
        endpoint: (role, spec["interface"])
        for role in ("provides", "requires", "peers")
        for endpoint, spec in (meta.get(role) or {}).items()
    }
    header, rows = table(section("relations.md", name), "endpoint")
    role_column, interface_column = header.index("role"), header.index("interface")

    missing_and_extra(set(rows), set(declared), f"docs/relations.md, {name} endpoints")
    for endpoint, (role, interface) in declared.items():
        assert rows[endpoint][role_column].split()[0] == role, f"{name} {endpoint}: wrong role"
        assert rows[endpoint][interface_column] == f"`{interface}`", (
            f"{name} {endpoint}: wrong interface"
        )


@pytest.mark.parametrize("name", CHARMS)
def test_every_alert_rule_a_charm_ships_is_listed(name: str):
    rule_files = sorted((ROOT / "charms" / name / "src").glob("prometheus_alert_rules/*.rules"))
    alerts = [
        rule["alert"]
        for path in rule_files
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    text = prose(DOCS / "relations.md")

    for alert in alerts:
        assert f"| `{alert}` |" in text, f"docs/relations.md does not list {name}'s {alert}"


# --- troubleshooting.md against the charms' status messages ------------------------------------


def _status_texts(
    call: ast.Call, assigned: dict[str, list[ast.Assign]]
) -> Iterator[ast.Constant | ast.JoinedStr]:
    """The string expressions a status call's message may come from."""
    pending = list(call.args[:1])
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Constant | ast.JoinedStr):
            yield node
        elif isinstance(node, ast.Subscript):  # f"..."[:120]
            pending.append(node.value)
        elif isinstance(node, ast.BoolOp):  # a recorded cause or ("a default message")
            pending.extend(node.values)
        elif isinstance(node, ast.IfExp):
            pending.extend((node.body, node.orelse))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "one_line":
            pending.extend(node.args[:1])
        elif isinstance(node, ast.Name):
            # The variable's last assignment above the call.
            earlier = [a for a in assigned.get(node.id, []) if a.lineno < call.lineno]
            if earlier:
                pending.append(max(earlier, key=lambda a: a.lineno).value)


def _shape(text: ast.Constant | ast.JoinedStr, constants: dict[str, str]) -> str:
    """A regex of the message: its literal parts, and anything but a `|` where values go."""
    values = [text] if isinstance(text, ast.Constant) else text.values
    pieces = []
    for value in values:
        if isinstance(value, ast.FormattedValue):
            # A module's string constant (node_exporter.SERVICE) is as good as a literal.
            pieces.append(constants.get(ast.unparse(value.value), "\0"))
        else:
            pieces.append(str(getattr(value, "value", "")))
    literal = re.sub(r"\s+", " ", "".join(pieces)).strip()
    return re.sub(r"(\[\^\|\]\+\?)+", "[^|]+?", "[^|]+?".join(map(re.escape, literal.split("\0"))))


def _string_constants(sources: list[pathlib.Path]) -> dict[str, str]:
    """Module-level `NAME = "text"` of a charm's modules, as `NAME` and as `module.NAME`."""
    constants = {}
    for path in sources:
        for node in ast.parse(path.read_text()).body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                name = node.targets[0].id
                constants[f"{path.stem}.{name}"] = constants[name] = node.value.value
    return constants


def status_messages() -> Iterator[tuple[str, str]]:
    """(where, shape) of each Blocked or Waiting message the charms' code spells out."""
    for charm in CHARMS:
        sources = sorted((ROOT / "charms" / charm / "src").glob("**/*.py"))
        constants = _string_constants(sources)
        for path in sources:
            for where, text in _status_calls(path):
                yield where, _shape(text, constants)


def _status_calls(path: pathlib.Path) -> Iterator[tuple[str, ast.Constant | ast.JoinedStr]]:
    for function in ast.walk(ast.parse(path.read_text())):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        assigned: dict[str, list[ast.Assign]] = {}
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                assigned.setdefault(node.targets[0].id, []).append(node)
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("BlockedStatus", "WaitingStatus"):
                for text in _status_texts(node, assigned):
                    yield f"{path.relative_to(ROOT)}:{node.lineno}", text


def test_the_status_messages_are_found():
    assert len(set(status_messages())) >= 15


@pytest.mark.parametrize(("where", "shape"), sorted(set(status_messages())))
def test_every_blocked_and_waiting_message_is_in_troubleshooting(where: str, shape: str):
    text = " ".join(prose(DOCS / "troubleshooting.md").split())

    assert re.search(shape, text), (
        f"docs/troubleshooting.md does not explain the status set at {where}: {shape}"
    )


# --- the pages themselves ----------------------------------------------------------------------


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()

    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; keep it under {README_MAX_LINES}, the rest in docs/"
    )


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))], ids=str)
def test_no_history_in_what_users_read(page: pathlib.Path):
    found = [m.group(0) for m in HISTORY.finditer(page.read_text())]

    assert not found, f"{page.relative_to(ROOT)} narrates history: {found}"


def anchors(page: pathlib.Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown page."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+?)[ \t]*$", prose(page), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in found:
            n += 1
            anchor = f"{slug}-{n}"
        found.add(anchor)
    return found


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading(page: pathlib.Path):
    for target in _LINK.findall(prose(page)):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page

        assert linked.exists(), f"{page.relative_to(ROOT)} links to {target}: no such file"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), (
                f"{page.relative_to(ROOT)} links to {target}: no such heading"
            )


def test_the_docs_index_links_every_page():
    index = prose(DOCS / "index.md")
    linked = {target.partition("#")[0] for target in _LINK.findall(index)}
    pages = {path.name for path in DOCS.glob("*.md")} - {"index.md"}

    assert not pages - linked, f"docs/index.md does not list {sorted(pages - linked)}"
