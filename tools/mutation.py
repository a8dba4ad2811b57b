"""Mutation testing of the charms' code: when one line breaks, does a test fail?

    python tools/mutation.py [--file PATH]... [--sample N] [--seed S] [--workers N]
                             [--examples N] [--json PATH] [--list] [--with-machine]
                             [--fail-under PCT]                  (or: tox -e mutation -- ...)

Each mutant is the source with one small change: a comparison, `and`/`or` or arithmetic
operator swapped, `not` removed or added, a constant, number or string changed, a file mode
made world-readable (0o640 <-> 0o644), a call statement, raise, attribute or item assignment
deleted, a variable keyword argument left out (`group=GROUP`), `return x` made `return None`,
an exception handler emptied (`pass`) or made to re-raise. Docstrings, annotations, logging
calls and `if __name__ == "__main__"` are left alone. For the chosen files:

1. Baseline: each test process the files map to in TARGETS runs once, unmutated, under
   coverage.py; every executed line is labelled with the tests that executed it (lines run at
   import carry no test: every test of that process may depend on them). It must pass.
2. A mutant on a line no test executes is counted as uncovered and not run. Any other mutant is
   applied in a private copy of the repository (one per worker, under the system's temporary
   directory and removed at the end: the working tree is never written), and only the tests
   that executed its line run, cheapest process, module and test first: `pytest -x`, quiet, no
   cache, a fixed Hypothesis seed, --examples examples per property test (20: fewer than
   plain `tox`, for speed), and a timeout of 10 s + 3 x their baseline time. A failing test
   kills the mutant; a clean pass means it survived; mutants run in random order, so an
   interrupted run (Ctrl-C, SIGTERM) still reports a fair sample.

Every test process runs as `tox -e unit` runs it: in its uv project's own locked environment
(`uv run --locked --group unit --project charms/<name> pytest ...`), created once per worker
copy, so that the shared package, an editable install there, is the copy's mutated one. One
process per charm: every charm has a module named `charm`. The shared package's mutants run
against its own tests and every charm's, since every charm runs it.

The kill rate of a file is (killed + timed out) / (killed + survived + timed out) over the
mutants on covered lines: a mutant that makes the tests hang is caught, as a hung hook would be.

A slower tier can be named per target (`machine=`, e.g. tests/machine/test_prometheus*.py).
With --with-machine, after the normal run, every survivor and every uncovered mutant of such a
target is applied in a worker copy and that tier runs there, whole (no coverage is measured
inside its container), one mutant at a time (one container at a time), with a timeout from one
unmutated run of it; a failure kills the mutant ("tier": "machine" in the JSON). That works as
long as the machine tests take the charm code from the checkout they run in (paths relative to
their own file, as the unit tests do), which is what makes them test the mutant.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True, order=True)
class Run:
    """One pytest process: test paths in one uv project's locked environment.

    `tests` are paths or globs relative to the root (in TARGETS; expanded once resolved), run
    with `uv run --locked --group <group> --project <project> python -m pytest <tests>`.
    """

    project: str
    tests: tuple[str, ...]
    group: str = "unit"


@dataclasses.dataclass(frozen=True)
class Target:
    """Source files to mutate (a recursive glob) and the test processes that exercise them.

    Test paths that do not exist are left out, so a line can name tests that are still to come.
    """

    sources: str
    runs: tuple[Run, ...]
    machine: Run | None = None


def _unit(charm: str) -> Run:
    return Run(f"charms/{charm}", (f"tests/unit/{charm}",))


# The Prometheus and node-exporter functional tests drive both workloads on Prometheus's lock.
PROMETHEUS_LOCK = "charms/prometheus"
# test_prom* also matches promtool and PromQL tests; the dashboards run against a real Prometheus.
PROMETHEUS_FUNCTIONAL = ("tests/functional/test_prom*.py", "tests/functional/test_dashboards.py")


def _machine(*tests: str) -> Run:
    return Run(".", tests, group="repo")


# One line per charm and one for the shared package: its sources (recursive: workload packages
# included), its test processes (fastest first), its machine tier.
TARGETS = (
    Target(
        "charms/prometheus/src/**/*.py",
        runs=(_unit("prometheus"), Run(PROMETHEUS_LOCK, PROMETHEUS_FUNCTIONAL)),
        machine=_machine("tests/machine/test_prometheus*.py"),
    ),
    Target(
        "charms/grafana/src/**/*.py",
        runs=(_unit("grafana"), Run("charms/grafana", ("tests/functional/test_grafana*.py",))),
        machine=_machine("tests/machine/test_grafana*.py"),
    ),
    Target(
        "charms/node-exporter/src/**/*.py",
        runs=(
            _unit("node-exporter"),
            Run(PROMETHEUS_LOCK, ("tests/functional/test_node_exporter*.py",)),
        ),
        machine=_machine("tests/machine/test_node_exporter*.py"),
    ),
    # The shared package: its own tests, then every charm's (every charm runs it).
    Target(
        "lab-monitoring/src/lab_monitoring/**/*.py",
        runs=(
            Run("lab-monitoring", ("tests/unit/lab_monitoring",)),
            _unit("prometheus"),
            _unit("grafana"),
            _unit("node-exporter"),
            # packaged_service's log parsing, fed by the real binaries' own failures.
            Run(PROMETHEUS_LOCK, ("tests/functional/test_*start_failures.py",)),
        ),
        # packaged_service starts, confirms and stops real units only there.
        machine=_machine("tests/machine/test_*.py"),
    ),
)

# ---------------------------------------------------------------------------------------------
# Mutants
# ---------------------------------------------------------------------------------------------

_LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
_LOGGERS = {"logger", "log", "logging"}
_COMPARE_SWAP: dict[type, type] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,  # codespell:ignore
    ast.NotIn: ast.In,  # codespell:ignore
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
# Comparisons whose swap above is their negation: adding `not` to them would repeat it.
_NEGATED = {ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.Is, ast.IsNot}  # codespell:ignore
_ARITHMETIC_SWAP: dict[type, type] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
}
_OPERATOR_TEXT = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.BitOr: "|", ast.BitAnd: "&", ast.LShift: "<<", ast.RShift: ">>",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One change to one file: bytes [start, end) replaced by `replacement`."""

    file: str  # relative to the repository root
    line: int
    end_line: int
    operator: str
    original: str
    replacement: str
    start: int
    end: int

    @property
    def id(self) -> str:
        """Stable across runs while the file is unchanged (tests may change freely)."""
        return f"{self.file}:{self.line}:{self.start}:{self.operator}:{self.replacement}"

    @property
    def description(self) -> str:
        """What changed, shortened to one line."""
        return f"{self.operator}: `{_short(self.original)}` -> `{_short(self.replacement)}`"

    def apply(self, source: bytes) -> bytes:
        """Return `source` with this mutation made."""
        return source[: self.start] + self.replacement.encode() + source[self.end :]


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _is_log_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _LOG_METHODS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in _LOGGERS
    )


def _is_main_guard(node: ast.AST) -> bool:
    """`if __name__ == "__main__":` (run by Juju, never in-process) or `if TYPE_CHECKING:`."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
        return True
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
    )


class _Finder(ast.NodeVisitor):
    """Walks a module and records (node span, operator, replacement) for every mutation.

    Left alone: docstrings, annotations (never evaluated: `from __future__ import annotations`),
    logging calls (message wording is not behaviour), f-string internals (their positions are
    unreliable before Python 3.12), and `if __name__ == "__main__"` / `if TYPE_CHECKING` blocks.
    """

    def __init__(self, source: bytes) -> None:
        self.source = source
        self.line_starts = [0]
        for i, byte in enumerate(source):
            if byte == ord("\n"):
                self.line_starts.append(i + 1)
        self.parents: dict[ast.AST, ast.AST] = {}
        self.found: list[tuple[int, int, int, int, str, str]] = []

    # Positions and text

    def _span(self, node: Any) -> tuple[int, int]:
        start = self.line_starts[node.lineno - 1] + node.col_offset
        end = self.line_starts[node.end_lineno - 1] + node.end_col_offset
        return start, end

    def _text(self, node: ast.AST) -> str:
        start, end = self._span(node)
        return self.source[start:end].decode()

    def _expr(self, node: ast.expr, replacement: ast.expr) -> str:
        """`replacement` as source that can stand where `node` stands."""
        text = ast.unparse(replacement)
        parent = self.parents.get(node)
        bare = (
            isinstance(parent, (ast.stmt, ast.keyword, ast.List, ast.Tuple, ast.Set, ast.Dict))
            or (isinstance(parent, ast.Call) and node is not parent.func)
            or isinstance(replacement, (ast.Constant, ast.Name, ast.Attribute, ast.Call))
        )
        return text if bare else f"({text})"

    def _add(self, node: Any, operator: str, replacement: str) -> None:
        start, end = self._span(node)
        self.found.append((node.lineno, node.end_lineno, start, end, operator, replacement))

    def _add_span(self, first: Any, last: Any, operator: str, replacement: str) -> None:
        start, _ = self._span(first)
        _, end = self._span(last)
        self.found.append((first.lineno, last.end_lineno, start, end, operator, replacement))

    # Traversal

    def visit_Module(self, node: ast.Module) -> None:
        for parent in ast.walk(node):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        self.generic_visit(node)

    def _visit_all(self, nodes: Iterable[ast.AST | None]) -> None:
        for child in nodes:
            if child is not None:
                self.visit(child)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        args = node.args
        self._visit_all(node.decorator_list)
        self._visit_all(args.defaults)
        self._visit_all(args.kw_defaults)
        self._visit_all(node.body)

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._delete_if_stateful(node, node.target)
        self._visit_all([node.value])

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._add(node, "string", ast.unparse(ast.JoinedStr([ast.Constant("XX"), *node.values])))

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) or _is_log_call(node.value):
            return  # a docstring, or a log line
        if isinstance(node.value, (ast.Call, ast.Await)):
            self._add(node, "delete", "pass")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if _is_log_call(node):
            return
        arguments = sorted([*node.args, *node.keywords], key=self._span)
        for i, argument in enumerate(arguments):
            # A constant argument is mutated in place; a variable one is left out instead.
            if not isinstance(argument, ast.keyword) or argument.arg is None:
                continue
            if isinstance(argument.value, ast.Constant):
                continue
            start, end = self._span(argument)
            if i + 1 < len(arguments):  # `f(a, k=v, b)`: drop `k=v, `
                end = self._span(arguments[i + 1])[0]
            elif i > 0:  # `f(a, k=v)`: drop `, k=v`
                start = self._span(arguments[i - 1])[1]
            else:  # `f(k=v,)`: drop everything between the parentheses
                end = self._span(node)[1] - 1
            line = argument.lineno
            self.found.append((line, argument.end_lineno or line, start, end, "keyword", ""))
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        if _is_main_guard(node):
            return
        self._negate(node.test)
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:
        self._negate(node.test)
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self._negate(node.test)
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        for condition in node.ifs:
            self._negate(condition)
        self.generic_visit(node)

    def _negate(self, test: ast.expr) -> None:
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return  # removing the `not` is the mutant
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in _NEGATED:
            return  # `a == b` -> `a != b` already is the negation
        self._add(test, "not", f"not ({self._text(test)})")

    # Operators

    def visit_Compare(self, node: ast.Compare) -> None:
        for i, op in enumerate(node.ops):
            ops = list(node.ops)
            ops[i] = _COMPARE_SWAP[type(op)]()
            self._add(
                node, "compare", self._expr(node, ast.Compare(node.left, ops, node.comparators))
            )
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        swapped = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self._add(node, "boolean", self._expr(node, ast.BoolOp(swapped, node.values)))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, (ast.Not, ast.USub, ast.Invert)):
            self._add(
                node,
                "not" if isinstance(node.op, ast.Not) else "unary",
                self._expr(node, node.operand),
            )
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        swap = _ARITHMETIC_SWAP.get(type(node.op))
        # `path / "name"`, `"a" + "b"` and `"%s" % x` are joins and formats, not arithmetic.
        stringy = any(
            isinstance(side, ast.JoinedStr)
            or (isinstance(side, ast.Constant) and isinstance(side.value, (str, bytes)))
            for side in (node.left, node.right)
        )
        if swap and not stringy:
            self._add(
                node, "arithmetic", self._expr(node, ast.BinOp(node.left, swap(), node.right))
            )
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        swap = _ARITHMETIC_SWAP.get(type(node.op))
        if swap:
            # Only the operator between target and value changes: `x |= f()` -> `x &= f()`.
            start, end = self._span(node.target)[1], self._span(node.value)[0]
            op = f" {_OPERATOR_TEXT[swap]}= "
            self.found.append((node.lineno, node.lineno, start, end, "arithmetic", op))
        self._add(node, "delete", "pass")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            self._add(node, "constant", repr(not value))
        elif isinstance(value, int):
            if self._text(node).lower().startswith("0o"):
                # A file mode: flip the bit that lets every user read it (0o640 <-> 0o644).
                self._add(node, "mode", oct(value ^ 0o004))
            else:
                self._add(node, "number", repr(value + 1))
        elif isinstance(value, float):
            self._add(node, "number", repr(value * 2 if value else 1.0))
        elif isinstance(value, str):
            self._add(node, "string", repr(f"XX{value}XX"))

    # Statements

    def _delete_if_stateful(self, node: ast.stmt, target: ast.expr) -> None:
        # Deleting `x = ...` only makes a NameError; deleting `self.x = ...` or `d[k] = ...`
        # loses state someone else reads.
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            self._add(node, "delete", "pass")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets[:1]:
            self._delete_if_stateful(node, target)
        self.generic_visit(node)

    def visit_Raise(self, node: ast.Raise) -> None:
        self._add(node, "delete", "pass")
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        self._add(node, "delete", "pass")
        self.generic_visit(node)

    def visit_Continue(self, node: ast.Continue) -> None:
        self._add(node, "delete", "pass")

    def visit_Break(self, node: ast.Break) -> None:
        self._add(node, "delete", "pass")

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None and not isinstance(node.value, ast.Constant):
            self._add(node, "return", "return None")
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        first, last = node.body[0], node.body[-1]
        if not (len(node.body) == 1 and isinstance(first, ast.Pass)):
            self._add_span(first, last, "handler", "pass")  # the error is swallowed
        if not (len(node.body) == 1 and isinstance(first, ast.Raise) and first.exc is None):
            self._add_span(first, last, "handler", "raise")  # the error is not handled
        self._visit_all(node.body)  # not the exception types: that is the `raise` mutant


def mutants_of(path: str, source: bytes) -> list[Mutant]:
    """Return every mutant of one file, in source order."""
    finder = _Finder(source)
    finder.visit(ast.parse(source))
    result: dict[tuple[int, int, str], Mutant] = {}
    for line, end_line, start, end, operator, replacement in finder.found:
        original = source[start:end].decode()
        mutant = Mutant(path, line, end_line, operator, original, replacement, start, end)
        result.setdefault((start, end, replacement), mutant)
    return sorted(result.values(), key=lambda m: (m.start, m.end, m.operator, m.replacement))


# ---------------------------------------------------------------------------------------------
# What to mutate and which tests to run
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """A file to mutate and the test processes (test paths resolved) that exercise it."""

    path: str
    runs: tuple[Run, ...]
    machine: Run | None


def _expand(root: Path, run: Run | None) -> Run | None:
    """`run` with its globs resolved against the tree; None if none of its tests exist."""
    if run is None:
        return None
    found: list[str] = []
    for pattern in run.tests:
        found += sorted(str(p.relative_to(root)) for p in root.glob(pattern))
    return dataclasses.replace(run, tests=tuple(found)) if found else None


def source_files(
    root: Path, targets: Sequence[Target], only: Sequence[str] = ()
) -> list[SourceFile]:
    """Resolve the table against the tree; `only` limits it to these paths."""
    files = []
    for target in targets:
        runs = tuple(run for run in (_expand(root, r) for r in target.runs) if run)
        machine = _expand(root, target.machine)
        for path in sorted(root.glob(target.sources)):
            if path.is_file():
                files.append(SourceFile(str(path.relative_to(root)), runs, machine))
    if only:
        wanted = {str(Path(p).resolve().relative_to(root.resolve())) for p in only}
        if unknown := wanted - {f.path for f in files}:
            raise SystemExit(f"not a file to mutate (see TARGETS): {', '.join(sorted(unknown))}")
        files = [f for f in files if f.path in wanted]
    return files


@dataclasses.dataclass
class Baseline:
    """One unmutated run of a test process under coverage."""

    seconds: float
    durations: dict[str, float]
    # source file -> line -> node ids of the tests that ran it ("" = at import or collection)
    lines: dict[str, dict[int, set[str]]]

    @property
    def startup(self) -> float:
        """Seconds the process spends outside tests (interpreter, imports, collection)."""
        return max(self.seconds - sum(self.durations.values()), 0.0)


@dataclasses.dataclass(frozen=True)
class Options:
    """What every pytest process of a run shares."""

    seed: int = 0
    examples: int = 20
    timeout_factor: float = 3.0


@dataclasses.dataclass(frozen=True)
class Step:
    """One pytest process a mutant runs: all of `run`, or only `tests` of it."""

    run: Run
    tests: tuple[str, ...] | None
    timeout: float


def plan(
    mutant: Mutant, file: SourceFile, baselines: dict[Run, Baseline], factor: float
) -> list[Step]:
    """Return the test processes that can see `mutant`, each limited to the tests that do."""
    steps = []
    lines = range(mutant.line, mutant.end_line + 1)
    for run in file.runs:
        baseline = baselines[run]
        hits = baseline.lines.get(file.path, {})
        contexts = set().union(*(hits.get(line, set()) for line in lines))
        if "" in contexts:  # run at import: every test of the process depends on it
            tests, expected = None, sum(baseline.durations.values())
        elif contexts:
            tests = tuple(sorted(contexts))
            expected = sum(baseline.durations.get(t, 0.0) for t in tests)
        else:
            continue
        steps.append(Step(run, tests, 10 + factor * (baseline.startup + expected)))
    return sorted(steps, key=lambda step: step.timeout)  # the cheapest process first


# ---------------------------------------------------------------------------------------------
# Running tests in private copies of the repository
# ---------------------------------------------------------------------------------------------

_IGNORE = shutil.ignore_patterns(
    ".git", ".tox", ".venv*", "__pycache__", ".hypothesis", ".pytest_cache", ".ruff_cache",
    "*.charm", "build", "parts", "prime", "stage", "overlay", ".coverage*",
)  # fmt: skip


class Workspace:
    """A private copy of the repository in which one mutant at a time is applied."""

    def __init__(self, root: Path, directory: Path) -> None:
        self.dir = directory
        shutil.copytree(root, directory, ignore=_IGNORE, symlinks=True)
        self._saved: dict[str, bytes] = {}
        self._synced: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def applied(self, mutant: Mutant) -> Iterator[None]:
        """Make `mutant` for the duration of the block."""
        target = self.dir / mutant.file
        self._saved[mutant.file] = target.read_bytes()
        target.write_bytes(mutant.apply(self._saved[mutant.file]))
        try:
            yield
        finally:
            for path, data in self._saved.items():
                (self.dir / path).write_bytes(data)
            self._saved.clear()

    def command(self, run: Run, *python: str) -> list[str]:
        """`python <python...>` in `run`'s project environment of this copy, made on first use.

        The environment is the copy's own (its .venv is not copied), so that an editable
        install of the shared package is the copy's, the one the mutant is applied to.
        """
        project = str(self.dir / run.project)
        with self._lock:
            if (run.project, run.group) not in self._synced:
                synced = subprocess.run(
                    ["uv", "sync", "--locked", "--group", run.group, "--project", project],
                    cwd=self.dir, env=_uv_env(), capture_output=True, text=True, check=False,
                )  # fmt: skip
                if synced.returncode != 0:
                    raise SystemExit(f"uv sync of {run.project} failed:\n{synced.stderr}")
                self._synced.add((run.project, run.group))
        return uv_command(self.dir, run, *python)


def uv_command(directory: Path, run: Run, *python: str) -> list[str]:
    """`python <python...>` in `run`'s project environment under `directory` (synced already)."""
    project = str(directory / run.project)
    return ["uv", "run", "--locked", "--no-sync", "--group", run.group, "--project", project,
            "python", *python]  # fmt: skip


def _uv_env() -> dict[str, str]:
    """The environment for uv: each project's own .venv, whatever tox or a shell activated."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    }
    return {**env, "UV_NO_PROGRESS": "1"}


@dataclasses.dataclass
class Outcome:
    """How one pytest process ended."""

    status: str  # passed, failed, timeout, error
    seconds: float
    record: dict[str, Any]
    log: str


class Processes:
    """Every running pytest process group, so that an interrupt can end them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: set[int] = set()
        self.stopping = False

    def run(
        self, cmd: list[str], cwd: Path, env: dict[str, str], timeout: float, log: Path
    ) -> int | None:
        """Run `cmd` in its own process group; None if it timed out (the group is killed)."""
        with log.open("wb") as out, self._lock:
            if self.stopping:
                raise KeyboardInterrupt
            process = subprocess.Popen(
                cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            self._groups.add(process.pid)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            # Also ends what the tests started (a Prometheus server, say) and left behind.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            with self._lock:
                self._groups.discard(process.pid)

    def kill_all(self) -> None:
        """End every running process group; start no new ones."""
        with self._lock:
            self.stopping = True
            for group in self._groups:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)


def run_pytest(
    processes: Processes,
    workspace: Workspace,
    run: Run,
    *,
    tests: Sequence[str] | None,
    timeout: float,
    options: Options,
    order: dict[str, float] | None = None,
    coverage_of: Sequence[str] = (),
) -> Outcome:
    """Run one pytest process in `workspace`; under coverage of `coverage_of` if given."""
    scratch = workspace.dir / ".mutation"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    env = {
        **_uv_env(),
        "PYTHONDONTWRITEBYTECODE": "1",  # a stale .pyc must never hide a mutant
        "PYTHONPATH": os.pathsep.join(
            [str(workspace.dir / "tools"), os.environ.get("PYTHONPATH", "")]
        ),
        "HYPOTHESIS_STORAGE_DIRECTORY": str(scratch / "hypothesis"),  # no replay across mutants
        "MUTATION_RECORD": str(scratch / "record.json"),
        "MUTATION_EXAMPLES": str(options.examples),
        "PY_COLORS": "0",
    }
    args = ["-q", "--no-header", "-p", "no:cacheprovider", "-p", "mutation_plugin"]
    args += [f"--hypothesis-seed={options.seed}", *run.tests]
    if tests is not None:
        (scratch / "select").write_text("\n".join(tests) + "\n")
        env["MUTATION_SELECT"] = str(scratch / "select")
    if order:
        (scratch / "order.json").write_text(json.dumps(order))
        env["MUTATION_ORDER"] = str(scratch / "order.json")
    if coverage_of:
        rc = scratch / "coveragerc"
        include = ",".join(str(workspace.dir / path) for path in coverage_of)
        rc.write_text(f"[run]\ndata_file = {scratch / 'coverage'}\ninclude = {include}\n")
        env["COVERAGE_CORE"] = "ctrace"  # the only core that records per-test contexts
        cmd = workspace.command(
            run, "-m", "coverage", "run", f"--rcfile={rc}", "-m", "pytest", *args
        )
    else:
        cmd = workspace.command(run, "-m", "pytest", "-x", *args)
    started = time.monotonic()
    code = processes.run(cmd, workspace.dir, env, timeout, scratch / "log")
    seconds = time.monotonic() - started
    log = (scratch / "log").read_text(errors="replace")
    record = (
        json.loads((scratch / "record.json").read_text())
        if (scratch / "record.json").exists()
        else {}
    )
    if code is None:
        status = "timeout"
    elif code == 0:
        status = "passed"
    elif code in (1, 2) or code < 0:  # failed, or a module no longer imports, or a crash
        status = "failed"
    else:  # 3-5: internal or usage error, nothing collected: a fault of this tool
        status = "error"
    if coverage_of and status == "passed":
        record["lines"] = _covered_lines(scratch / "coverage", workspace.dir)
    return Outcome(status, seconds, record, log)


def _covered_lines(data_file: Path, base: Path) -> dict[str, dict[int, set[str]]]:
    import coverage

    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    lines: dict[str, dict[int, set[str]]] = {}
    for measured in data.measured_files():
        by_line = data.contexts_by_lineno(measured)
        lines[str(Path(measured).relative_to(base))] = {n: set(c) for n, c in by_line.items()}
    return lines


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    """What happened to one mutant."""

    mutant: Mutant
    status: str  # killed, survived, timeout, error, uncovered, unsampled
    seconds: float = 0.0
    killed_by: str | None = None
    tier: str | None = None  # "tests" or "machine" once it ran


class Session:
    """Worker copies of the repository, and the pytest processes running in them."""

    def __init__(self, root: Path, workers: int, options: Options) -> None:
        self.options = options
        self.workers = workers
        self.baselines: dict[Run, Baseline] = {}
        self.processes = Processes()
        self._started = time.monotonic()
        self.baseline_seconds = 0.0
        self._tmp = Path(tempfile.mkdtemp(prefix="mutation-"))
        self._free: queue.Queue[Workspace] = queue.Queue()
        try:
            for i in range(workers):
                self._free.put(Workspace(root, self._tmp / f"worker-{i}"))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """End every test process and remove every copy."""
        self.processes.kill_all()
        shutil.rmtree(self._tmp, ignore_errors=True)

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Workspace]:
        """Borrow a copy of the repository for one job."""
        ws = self._free.get()
        try:
            yield ws
        finally:
            self._free.put(ws)

    def map(
        self, job: Callable[[Any], Any], items: Sequence[Any], workers: int = 0
    ) -> Iterator[Any]:
        """Run `job` over `items` in parallel; yield the results as they come."""
        with ThreadPoolExecutor(workers or self.workers) as pool:
            futures = [pool.submit(job, item) for item in items]
            try:
                for future in as_completed(futures):
                    yield future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                self.processes.kill_all()
                raise

    def baseline(self, runs: Sequence[Run], files: Sequence[SourceFile]) -> dict[Run, Baseline]:
        """Run each test process once, unmutated, under coverage of `files`."""
        measured = [f.path for f in files]

        def one(run: Run) -> tuple[Run, Baseline]:
            with self.workspace() as ws:
                outcome = run_pytest(
                    self.processes, ws, run, tests=None, timeout=3600, options=self.options,
                    coverage_of=measured,
                )  # fmt: skip
            if outcome.status != "passed":
                tail = "\n".join(outcome.log.splitlines()[-30:])
                raise SystemExit(f"the unmutated tests do not pass ({_describe(run)}):\n{tail}")
            lines = outcome.record["lines"]
            return run, Baseline(outcome.seconds, outcome.record["durations"], lines)

        self.baselines.update(self.map(one, runs))
        self.baseline_seconds = self.elapsed()
        return self.baselines

    def elapsed(self) -> float:
        """Seconds since the session began."""
        return time.monotonic() - self._started

    def test(self, mutant: Mutant, steps: Sequence[Step]) -> Result:
        """Run the planned test processes against `mutant` until one of them fails."""
        started = time.monotonic()
        with self.workspace() as ws, ws.applied(mutant):
            for step in steps:
                baseline = self.baselines.get(step.run)
                outcome = run_pytest(
                    self.processes, ws, step.run, tests=step.tests, timeout=step.timeout,
                    options=self.options, order=baseline.durations if baseline else None,
                )  # fmt: skip
                if outcome.status != "passed":
                    status = {"failed": "killed", "timeout": "timeout"}.get(
                        outcome.status, "error"
                    )
                    why = outcome.record.get("failed") or _last_line(outcome.log)
                    return Result(mutant, status, time.monotonic() - started, why)
        return Result(mutant, "survived", time.monotonic() - started)


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"


def _describe(run: Run) -> str:
    return f"{' '.join(run.tests)} on {run.project}'s lock"


def machine_stage(session: Session, files: dict[str, SourceFile], results: list[Result]) -> None:
    """Run the survivors and the uncovered mutants against their target's machine tier.

    One at a time (each machine test boots a container) and without test selection: coverage
    is not measured inside the container, so every machine test of the target runs.
    """
    tiers = {f.machine for f in files.values() if f.machine is not None}
    if not tiers:
        raise SystemExit("--with-machine: the chosen files have no machine tests (TARGETS)")
    seconds: dict[Run, float] = {}
    for run in tiers:
        with session.workspace() as ws:
            outcome = run_pytest(
                session.processes, ws, run, tests=None, timeout=7200, options=session.options
            )
        if outcome.status != "passed":
            raise SystemExit(f"the unmutated machine tests do not pass:\n{outcome.log[-3000:]}")
        seconds[run] = outcome.seconds
    todo = [
        r
        for r in results
        if r.status in ("survived", "uncovered") and files[r.mutant.file].machine
    ]
    print(f"machine tier: {len(todo)} mutants, one at a time", flush=True)

    def one(result: Result) -> tuple[Result, Result]:
        machine = files[result.mutant.file].machine
        assert machine is not None  # only such files' mutants are in `todo`
        step = Step(machine, None, 60 + session.options.timeout_factor * seconds[machine])
        return result, session.test(result.mutant, [step])

    for result, machine in session.map(one, todo, workers=1):
        if machine.status != "survived":
            result.status, result.killed_by, result.tier = (
                machine.status,
                machine.killed_by,
                "machine",
            )
        result.seconds += machine.seconds


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

COLUMNS = (
    "mutants",
    "uncovered",
    "covered",
    "killed",
    "survived",
    "timeout",
    "error",
    "kill rate",
    "seconds",
)


def summary(results: Sequence[Result]) -> dict[str, dict[str, Any]]:
    """Per-file figures and their total; the kill rate counts timeouts as killed."""
    counts: dict[str, dict[str, Any]] = {"total": dict.fromkeys(COLUMNS, 0)}
    for result in results:
        for name in (result.mutant.file, "total"):
            row = counts.setdefault(name, dict.fromkeys(COLUMNS, 0))
            row["mutants"] += 1
            row["seconds"] += result.seconds
            if result.status in row:
                row[result.status] += 1
    rows = {name: row for name, row in counts.items() if name != "total"}
    for row in [*rows.values(), counts["total"]]:
        row["covered"] = row["mutants"] - row["uncovered"]
        ran = row["killed"] + row["survived"] + row["timeout"]
        row["kill rate"] = round(100 * (row["killed"] + row["timeout"]) / ran, 1) if ran else None
        row["seconds"] = round(row["seconds"], 1)
    return {**rows, "total": counts["total"]}


def table(rows: dict[str, dict[str, Any]]) -> str:
    """The per-file figures as an aligned text table."""
    width = max(len(name) for name in rows)
    lines = [f"{'file':<{width}}  " + "  ".join(f"{c:>9}" for c in COLUMNS)]
    for name, row in rows.items():
        cells = []
        for column in COLUMNS:
            value = row[column]
            text = "-" if value is None else f"{value}%" if column == "kill rate" else f"{value:g}"
            cells.append(f"{text:>9}")
        lines.append(f"{name:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


def survivors(results: Sequence[Result], root: Path) -> str:
    """Every mutant that survived or made a tool error: where, what, and the original line."""
    lines = []
    sources: dict[str, list[str]] = {}
    for result in sorted(results, key=lambda r: (r.mutant.file, r.mutant.start, r.mutant.id)):
        if result.status not in ("survived", "error"):
            continue
        m = result.mutant
        text = sources.setdefault(m.file, (root / m.file).read_text().splitlines())
        note = f"  [tool error: {result.killed_by}]" if result.status == "error" else ""
        lines.append(f"{m.file}:{m.line}  {m.description}{note}")
        lines.append(f"    {m.line:>4} | {text[m.line - 1].strip()}")
    return "\n".join(lines)


def as_json(results: Sequence[Result], options: dict[str, Any]) -> dict[str, Any]:
    """Everything, for comparing one run with a later one (match mutants by `id`)."""
    return {
        **options,
        "files": summary(results),
        "mutants": [
            {
                "id": r.mutant.id,
                "file": r.mutant.file,
                "line": r.mutant.line,
                "operator": r.mutant.operator,
                "original": r.mutant.original,
                "replacement": r.mutant.replacement,
                "status": r.status,
                "tier": r.tier,
                "killed_by": r.killed_by,
                "seconds": round(r.seconds, 2),
            }
            for r in sorted(results, key=lambda r: (r.mutant.file, r.mutant.start, r.mutant.id))
        ],
    }


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--file", action="append", default=[], help="mutate only this file (repeatable)"
    )
    parser.add_argument("--sample", type=int, metavar="N", help="test N random covered mutants")
    parser.add_argument(
        "--seed", type=int, default=0, help="for --sample and Hypothesis (default 0)"
    )
    parser.add_argument(
        "--examples", type=int, default=20, help="per Hypothesis test (default 20)"
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="default: CPU count"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every result here")
    parser.add_argument("--list", action="store_true", help="print the mutants and stop")
    parser.add_argument("--timeout-factor", type=float, default=3.0, help="x baseline (default 3)")
    parser.add_argument("--with-machine", action="store_true", help="survivors: machine tier too")
    parser.add_argument(
        "--retest",
        type=Path,
        metavar="JSON",
        help="test only the survivors of an earlier --json run (same source files)",
    )
    parser.add_argument(
        "--fail-under", type=float, metavar="PCT", help="exit 1 if a file is below"
    )
    return parser.parse_args(argv)


def run(root: Path, targets: Sequence[Target], args: argparse.Namespace) -> int:
    """Mutate, test, report; return the exit status."""
    started = time.monotonic()
    files = {f.path: f for f in source_files(root, targets, args.file)}
    mutants = [m for f in files.values() for m in mutants_of(f.path, (root / f.path).read_bytes())]
    if args.list:
        for m in mutants:
            print(f"{m.file}:{m.line}  {m.description}")
        print(f"{len(mutants)} mutants in {len(files)} files")
        return 0
    session = Session(root, args.workers, Options(args.seed, args.examples, args.timeout_factor))
    try:
        results = test_all(session, files, mutants, args)
        baseline_seconds = session.baseline_seconds
        if args.with_machine:
            machine_stage(session, files, results)
    finally:
        session.close()
    timing = {
        "wall_seconds": round(time.monotonic() - started),
        "baseline_seconds": round(baseline_seconds),
    }
    return report(root, results, args, timing)


def test_all(
    session: Session,
    files: dict[str, SourceFile],
    mutants: Sequence[Mutant],
    args: argparse.Namespace,
) -> list[Result]:
    """Measure the baseline, then run every (or a sample of the) mutants on covered lines."""
    runs = sorted({run for f in files.values() for run in f.runs})
    print(f"{len(mutants)} mutants in {len(files)} files; baseline: {len(runs)} test processes "
          f"under coverage, {args.workers} workers", flush=True)  # fmt: skip
    baselines = session.baseline(runs, list(files.values()))
    results, todo = [], []
    for m in mutants:
        steps = plan(m, files[m.file], baselines, args.timeout_factor)
        if steps:
            todo.append((m, steps))
        else:
            results.append(Result(m, "uncovered"))
    if args.retest is not None:
        # After new tests: only what survived before needs running again. Ids hold while the
        # source files are unchanged; a survivor whose id is gone is reported, not guessed at.
        earlier = json.loads(args.retest.read_text())["mutants"]
        wanted = {m["id"] for m in earlier if m["status"] in ("survived", "error")}
        kept = [job for job in todo if job[0].id in wanted]
        missing = wanted - {m.id for m, _ in kept}
        if missing:
            print(f"{len(missing)} earlier survivors are not mutants of these files any more:")
            print("\n".join(f"  {mutant_id}" for mutant_id in sorted(missing)))
        results += [Result(m, "unsampled") for m, _ in todo if m.id not in wanted]
        todo = kept
    elif args.sample is not None and args.sample < len(todo):
        # Sampling, not cryptography.
        chosen = set(random.Random(args.seed).sample(range(len(todo)), args.sample))  # noqa: S311
        results += [Result(m, "unsampled") for i, (m, _) in enumerate(todo) if i not in chosen]
        todo = [job for i, job in enumerate(todo) if i in chosen]
    # In random order: a run stopped early (Ctrl-C, SIGTERM) still reports a fair sample.
    random.Random(args.seed).shuffle(todo)  # noqa: S311
    print(f"baseline {session.baseline_seconds:.0f}s; testing {len(todo)} mutants on covered "
          f"lines ({len(results)} not run)", flush=True)  # fmt: skip
    finished: set[str] = set()
    try:
        for result in session.map(lambda job: session.test(job[0], job[1]), todo):
            result.tier = "tests"
            results.append(result)
            finished.add(result.mutant.id)
            if result.status in ("survived", "error"):
                print(f"  {result.status}: {result.mutant.file}:{result.mutant.line} "
                      f"{result.mutant.description}", flush=True)  # fmt: skip
            if len(finished) % max(1, len(todo) // 40) == 0:
                print(f"[{len(finished)}/{len(todo)}] {session.elapsed():.0f}s", flush=True)
    except KeyboardInterrupt:
        # Report what finished; the rest counts as not run, like an unsampled mutant.
        print(f"interrupted after {len(finished)} of {len(todo)} mutants", flush=True)
        results += [Result(m, "unsampled") for m, _ in todo if m.id not in finished]
    return results


def report(
    root: Path, results: Sequence[Result], args: argparse.Namespace, timing: dict[str, int]
) -> int:
    """Print the survivors and the table, write the JSON; return the exit status."""
    rows = summary(results)
    print("\nsurviving mutants (file:line, the mutation, the original line):")
    print(survivors(results, root) or "none")
    print(f"\n{table(rows)}\n")
    print(f"wall time {timing['wall_seconds']}s (baseline {timing['baseline_seconds']}s), "
          f"{args.workers} workers, seed {args.seed}, "
          f"{args.examples} Hypothesis examples")  # fmt: skip
    if args.json:
        options = {"seed": args.seed, "sample": args.sample, "examples": args.examples,
                   "workers": args.workers, **timing}  # fmt: skip
        args.json.write_text(json.dumps(as_json(results, options), indent=1) + "\n")
    if any(row["error"] for row in rows.values()):
        return 1
    if args.fail_under is not None:
        low = [f for f, row in rows.items() if (row["kill rate"] or 100) < args.fail_under]
        if low:
            print(f"below {args.fail_under}%: {', '.join(low)}")
            return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `python tools/mutation.py --help`."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # tox and CI stop with SIGTERM: report anyway
    return run(ROOT, TARGETS, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
