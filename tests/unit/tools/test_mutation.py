"""tools/mutation.py: the mutants it makes, which tests it picks, and how it counts.

The operators are checked by behaviour: a mutant is executed and must do what the issue says a
broken line does (a package check that always answers yes, a missing mkdir, a world-readable
file). One end-to-end run on a tiny repository checks the whole loop, and that the working tree
is never written.
"""

from __future__ import annotations

import argparse
import ast
import json
import pathlib
import sys
import textwrap
from typing import Any

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parents[3] / "tools"))

import mutation
import mutation_plugin


def mutants(source: str) -> list[mutation.Mutant]:
    return mutation.mutants_of("demo.py", textwrap.dedent(source).encode())


def changes(source: str) -> set[tuple[str, str, str]]:
    return {(m.operator, m.original, m.replacement) for m in mutants(source)}


def load(mutant: mutation.Mutant, source: str, **names: Any) -> dict[str, Any]:
    """Execute the mutated module with `names` predefined; return its namespace."""
    namespace = dict(names)
    exec(mutant.apply(textwrap.dedent(source).encode()), namespace)  # noqa: S102
    return namespace


INSTALLED = """
def installed():
    try:
        lookup("prometheus")
    except KeyError:
        return False
    return True
"""


def test_a_package_check_can_be_made_to_always_answer_yes():
    def lookup(name: str) -> None:
        raise KeyError(name)

    answers = []
    for mutant in mutants(INSTALLED):
        try:
            answers.append(load(mutant, INSTALLED, lookup=lookup)["installed"]())
        except KeyError:
            answers.append("raised")

    # lookup() deleted, the handler emptied, or its `return False` made `return True`
    assert answers.count(True) == 3


def test_an_emptied_handler_and_an_unhandled_error_are_both_made():
    assert {("handler", "return False", "pass"), ("handler", "return False", "raise")} <= changes(
        INSTALLED
    )


def test_statements_with_effects_are_deleted():
    source = """
    def write(path, text):
        path.parent.mkdir(parents=True, exist_ok=True)
        systemd.service_enable("grafana-server")
        self.state.installed = True
        changed |= True
        raise Failed("apt-get failed")
    """
    deleted = {original for operator, original, _ in changes(source) if operator == "delete"}

    assert deleted == {
        "path.parent.mkdir(parents=True, exist_ok=True)",
        'systemd.service_enable("grafana-server")',
        "self.state.installed = True",
        "changed |= True",
        'raise Failed("apt-get failed")',
    }


def test_a_failed_command_can_be_ignored():
    source = """
    def install(result):
        if result.returncode != 0:
            raise RuntimeError("apt-get install failed")
        return "installed"
    """
    failed = type("Result", (), {"returncode": 100})()
    outcomes = []
    for mutant in mutants(source):
        try:
            outcomes.append(load(mutant, source)["install"](failed))
        except RuntimeError:
            outcomes.append("raised")

    assert "installed" in outcomes


def test_a_file_mode_is_made_world_readable_and_back():
    assert ("mode", "0o640", "0o644") in changes("write(path, mode=0o640)")
    assert ("mode", "0o644", "0o640") in changes("write(path, mode=0o644)")


def test_comparisons_booleans_not_and_arithmetic_are_flipped():
    found = changes("""
    def f(a, b):
        if a < b and not a in b:
            return a + b
        total -= b
        return -a
    """)

    assert {
        ("compare", "a < b", "(a <= b)"),  # in parentheses wherever precedence could matter
        ("boolean", "a < b and not a in b", "a < b or not a in b"),
        ("not", "not a in b", "(a in b)"),
        ("not", "a < b and not a in b", "not (a < b and not a in b)"),
        ("arithmetic", "a + b", "a - b"),
        ("arithmetic", " -= ", " += "),
        ("unary", "-a", "a"),
        ("return", "return a + b", "return None"),
    } <= found


def test_negating_an_equality_is_left_to_the_comparison_operator():
    found = changes("if a == b:\n    pass\n")

    assert ("compare", "a == b", "a != b") in found
    assert not [change for change in found if change[0] == "not"]


def test_constants_strings_and_f_strings_change():
    found = changes('x = f(True, 3, 0.5, "key", f"{a}/metrics")\n')

    assert {
        ("constant", "True", "False"),
        ("number", "3", "4"),
        ("number", "0.5", "1.0"),
        ("string", '"key"', "'XXkeyXX'"),
        ("string", 'f"{a}/metrics"', "f'XX{a}/metrics'"),
    } <= found


@pytest.mark.parametrize(
    ("source", "dropped"),
    [
        ("chown(tmp, group=GROUP)", "chown(tmp)"),
        ("run(cmd, env=env, check=False)", "run(cmd, check=False)"),
        ("run(\n    env=env,\n)", "run(\n    )"),
    ],
)
def test_a_variable_keyword_argument_is_left_out_with_its_comma(source: str, dropped: str):
    (mutant,) = [m for m in mutants(source) if m.operator == "keyword"]

    assert mutant.apply(source.encode()).decode() == dropped


def test_joins_and_formats_of_strings_are_not_arithmetic():
    source = 'p = path / "name"\nq = "x" + y\nr = "%s" % y\ns = f"{x}" + y\n'
    assert not [c for c in changes(source) if c[0] == "arithmetic"]


def test_docstrings_annotations_logging_and_the_main_guard_are_left_alone():
    source = '''
    """Module docstring."""
    def f(x: "str" = None) -> "int":
        """Function docstring."""
        logger.warning("could not %s", x)
    if __name__ == "__main__":
        main("x")
    '''
    assert mutants(source) == []


def test_every_mutant_compiles_changes_the_tree_and_only_its_own_span():
    path = "lab-monitoring/src/lab_monitoring/packaged_service.py"
    source = (pathlib.Path(__file__).parents[3] / path).read_bytes()
    original = ast.dump(ast.parse(source))

    found = mutation.mutants_of(path, source)

    assert len(found) > 100
    for m in found:
        mutated = m.apply(source)
        assert ast.dump(ast.parse(mutated)) != original, m
        assert mutated[: m.start] == source[: m.start]
        assert mutated.endswith(source[m.end :])


# Which files, which tests, in which environment


def tree(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


UNIT = mutation.Run("charms/one", ("tests/unit/one",))
FUNCTIONAL = mutation.Run("charms/other", ("tests/functional/t1*.py",))
SHARED = mutation.Run("shared", ("tests/unit/shared",))
TARGETS = (
    mutation.Target(
        "charms/one/src/**/*.py",
        runs=(UNIT, FUNCTIONAL),
        machine=mutation.Run(".", ("tests/machine/test_one*.py",), group="repo"),
    ),
    mutation.Target("shared/src/shared/**/*.py", runs=(SHARED, UNIT)),
    mutation.Target("charms/future/src/**/*.py", runs=(mutation.Run("f", ("tests/unit/f",)),)),
)


def test_the_table_resolves_to_existing_files_and_tests_in_their_projects(
    tmp_path: pathlib.Path,
):
    root = tree(tmp_path, {
        "charms/one/src/charm.py": "", "charms/one/src/work/service.py": "",
        "shared/src/shared/__init__.py": "", "shared/src/shared/interfaces/x.py": "",
        "tests/unit/one/test_a.py": "", "tests/functional/t1_a.py": "",
        "tests/unit/shared/test_s.py": "",
    })  # fmt: skip

    files = {f.path: f for f in mutation.source_files(root, TARGETS)}

    # Recursive: a workload package under src/ and the shared package's subpackages count.
    assert sorted(files) == [
        "charms/one/src/charm.py",
        "charms/one/src/work/service.py",
        "shared/src/shared/__init__.py",
        "shared/src/shared/interfaces/x.py",
    ]
    assert files["charms/one/src/work/service.py"].runs == (
        UNIT,
        mutation.Run("charms/other", ("tests/functional/t1_a.py",)),
    )
    # No machine tests yet: no machine tier.
    assert files["charms/one/src/charm.py"].machine is None
    assert files["shared/src/shared/interfaces/x.py"].runs == (SHARED, UNIT)


def test_file_picks_files_of_the_table_only(tmp_path: pathlib.Path):
    root = tree(tmp_path, {"charms/one/src/charm.py": "", "shared/src/shared/a.py": ""})

    picked = mutation.source_files(root, TARGETS, [str(root / "shared/src/shared/a.py")])

    assert [f.path for f in picked] == ["shared/src/shared/a.py"]
    with pytest.raises(SystemExit, match="not a file to mutate"):
        mutation.source_files(root, TARGETS, [str(root / "README.md")])


def test_each_process_runs_on_its_projects_lock_in_the_worker_copy(tmp_path: pathlib.Path):
    command = mutation.uv_command(tmp_path, UNIT, "-m", "pytest", "tests/unit/one")

    assert command == [
        "uv", "run", "--locked", "--no-sync", "--group", "unit",
        "--project", str(tmp_path / "charms/one"), "python", "-m", "pytest", "tests/unit/one",
    ]  # fmt: skip


def baseline(lines: dict[int, set[str]]) -> mutation.Baseline:
    durations = {"t::a": 1.0, "t::b": 2.0, "t::c": 4.0}
    return mutation.Baseline(seconds=10.0, durations=durations, lines={"m.py": lines})


def a_mutant(line: int, end_line: int | None = None) -> mutation.Mutant:
    return mutation.Mutant("m.py", line, end_line or line, "number", "1", "2", 0, 1)


RUN_UNIT = mutation.Run("p", ("unit",))
RUN_FUNCTIONAL = mutation.Run("p", ("functional",))
FILE = mutation.SourceFile("m.py", (RUN_UNIT, RUN_FUNCTIONAL), None)


def test_only_the_tests_that_ran_the_line_are_run_the_cheapest_process_first():
    baselines = {
        RUN_UNIT: baseline({3: {"t::c"}, 4: {"t::a", "t::b"}}),
        RUN_FUNCTIONAL: baseline({4: {"t::a"}}),
    }

    steps = mutation.plan(a_mutant(3, 4), FILE, baselines, factor=3)

    assert [(s.run, s.tests) for s in steps] == [
        (RUN_FUNCTIONAL, ("t::a",)),
        (RUN_UNIT, ("t::a", "t::b", "t::c")),
    ]
    assert steps[0].timeout == 10 + 3 * (3.0 + 1.0)  # startup (10 s - 7 s of tests) + t::a


def test_a_line_run_at_import_runs_every_test_and_an_unrun_line_none():
    baselines = {RUN_UNIT: baseline({1: {"", "t::a"}}), RUN_FUNCTIONAL: baseline({})}

    assert [s.tests for s in mutation.plan(a_mutant(1), FILE, baselines, factor=3)] == [None]
    assert mutation.plan(a_mutant(2), FILE, baselines, factor=3) == []


def test_kill_rate_counts_timeouts_as_killed_over_the_mutants_that_ran():
    statuses = (
        ["killed"] * 6 + ["timeout"] * 2 + ["survived"] * 2 + ["uncovered", "unsampled", "error"]
    )
    results = [mutation.Result(a_mutant(i + 1), status) for i, status in enumerate(statuses)]

    row = mutation.summary(results)["m.py"]

    assert row["mutants"] == 13
    assert row["covered"] == 12
    assert row["kill rate"] == 80.0
    assert mutation.summary(results)["total"]["kill rate"] == 80.0


def test_survivors_are_listed_with_the_mutation_and_the_original_line(tmp_path: pathlib.Path):
    (tmp_path / "m.py").write_text("import os\n\nMODE = 0o640  # owner and group\n")
    survivor = mutation.Mutant("m.py", 3, 3, "mode", "0o640", "0o644", 18, 23)
    results = [mutation.Result(survivor, "survived"), mutation.Result(a_mutant(1), "killed")]

    assert mutation.survivors(results, tmp_path) == (
        "m.py:3  mode: `0o640` -> `0o644`\n       3 | MODE = 0o640  # owner and group"
    )


def test_tests_run_cheapest_module_first_and_stay_with_their_module():
    class Item:
        def __init__(self, nodeid: str) -> None:
            self.nodeid = nodeid

    items = [Item(n) for n in ("slow.py::a", "slow.py::b", "fast.py::a", "fast.py::b")]
    seconds = {"slow.py::a": 5.0, "slow.py::b": 0.1, "fast.py::a": 2.0, "fast.py::b": 1.0}

    ordered = [item.nodeid for item in mutation_plugin.ordered(items, seconds)]

    assert ordered == ["fast.py::b", "fast.py::a", "slow.py::b", "slow.py::a"]


# The whole loop, on a tiny repository

DEMO = """\
def installed(lookup):
    try:
        lookup()
    except KeyError:
        return False
    return True


def mode():
    return 0o640
"""
DEMO_TESTS = """\
from lab_monitoring import demo


def test_installed():
    assert demo.installed(lambda: None)


def test_mode_is_set():
    assert demo.mode()
"""
MACHINE_TESTS = (
    DEMO_TESTS.replace("assert demo.mode()", "assert demo.mode() == 0o640")
    + """

def test_not_installed():
    def missing():
        raise KeyError("demo")

    assert not demo.installed(missing)
"""
)
REPOSITORY = pathlib.Path(__file__).parents[3]
DEMO_FILE = "lab-monitoring/src/lab_monitoring/demo.py"


def options(**overrides: Any) -> argparse.Namespace:
    args = mutation.parse_args(["--workers", "1", "--examples", "1"])
    vars(args).update(overrides)
    return args


def demo_repository(tmp_path: pathlib.Path) -> pathlib.Path:
    """The demo module in a real uv project: the shared package's pyproject and lock.

    The tests import it from that project's environment (an editable install), as the charms'
    tests import the shared package: a mutant is only seen if the worker copy has its own.
    """
    project = REPOSITORY / "lab-monitoring"
    return tree(tmp_path / "repo", {
        "pyproject.toml": "",
        "lab-monitoring/pyproject.toml": (project / "pyproject.toml").read_text(),
        "lab-monitoring/uv.lock": (project / "uv.lock").read_text(),
        "lab-monitoring/src/lab_monitoring/__init__.py": "",
        DEMO_FILE: DEMO,
        "tests/unit/demo/test_demo.py": DEMO_TESTS,
        "tests/machine/test_demo_machine.py": MACHINE_TESTS,
        "tools/mutation_plugin.py": pathlib.Path(mutation_plugin.__file__).read_text(),
    })  # fmt: skip


DEMO_UNIT = mutation.Run("lab-monitoring", ("tests/unit/demo",))
DEMO_TARGETS = (
    mutation.Target(
        "lab-monitoring/src/lab_monitoring/**/*.py",
        runs=(DEMO_UNIT,),
        machine=mutation.Run("lab-monitoring", ("tests/machine",)),
    ),
)


@pytest.mark.slow
def test_a_run_kills_reports_tries_the_machine_tier_and_leaves_the_tree_alone(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
):
    root = demo_repository(tmp_path)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}

    code = mutation.run(root, DEMO_TARGETS, options(json=tmp_path / "out.json", with_machine=True))

    assert code == 0
    out = capsys.readouterr().out
    # Listed while it survives the unit tests, with the mutation and the original line:
    assert f"  survived: {DEMO_FILE}:10 mode: `0o640` -> `0o644`\n" in out
    assert f"{DEMO_FILE}  " in out  # its row in the table
    result = json.loads((tmp_path / "out.json").read_text())
    by_change = {(m["line"], m["replacement"]): m for m in result["mutants"]}
    assert (by_change[(6, "False")]["status"], by_change[(6, "False")]["tier"]) == (
        "killed",
        "tests",
    )
    # Survived the unit tests (they never check the mode), killed by the machine tier:
    assert (by_change[(10, "0o644")]["status"], by_change[(10, "0o644")]["tier"]) == (
        "killed",
        "machine",
    )
    # On a line no unit test runs (no KeyError), killed by the machine tier:
    assert by_change[(5, "True")]["status"] == "killed"
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_a_retest_runs_only_the_earlier_survivors_and_a_new_test_kills_them(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
):
    root = demo_repository(tmp_path)
    targets = (mutation.Target("lab-monitoring/src/lab_monitoring/*.py", runs=(DEMO_UNIT,)),)
    mutation.run(root, targets, options(json=tmp_path / "first.json"))
    first = json.loads((tmp_path / "first.json").read_text())["mutants"]
    survived = {m["id"] for m in first if m["status"] == "survived"}
    assert survived, "the demo's unit tests were meant to leave survivors"
    # The test the first run showed missing: the mode is exactly 0o640.
    tests = root / "tests" / "unit" / "demo" / "test_demo.py"
    tests.write_text(
        tests.read_text().replace("assert demo.mode()", "assert demo.mode() == 0o640")
    )

    mutation.run(
        root, targets, options(json=tmp_path / "second.json", retest=tmp_path / "first.json")
    )

    second = {
        m["id"]: m["status"] for m in json.loads((tmp_path / "second.json").read_text())["mutants"]
    }
    ran = ("killed", "survived", "timeout")
    tested = {mutant_id for mutant_id, status in second.items() if status in ran}
    assert tested == survived
    mode_mutant = next(m["id"] for m in first if m["replacement"] == "0o644")
    assert second[mode_mutant] == "killed"
