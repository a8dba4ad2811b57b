"""prometheus.yml and rule files as written: exactly the data, whoever writes each part.

The charm writes plain data (dicts with str keys, lists, str, int: everything scrape.py builds
from relation data) itself, and leaves anything else (an operator's scrape-jobs with booleans,
floats, dates, anchors) to PyYAML, in the same document. These tests read the files back with
PyYAML; tests/functional/test_prometheus_yaml.py has Prometheus itself read them.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Any
from unittest import mock

import prometheus
import pytest
import scrape
import yaml
from hypothesis import given
from hypothesis import strategies as st

# Every bare word YAML 1.1 reads as a bool or null: gopkg.in/yaml.v2 v2.4.0 resolve.go
# (resolveMapList) has y/n too, PyYAML's resolver has the rest. Either must read them as text.
YAML11_WORDS = ["y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"]
FRAGMENTS = [
    *YAML11_WORDS,
    '"',
    "'",
    "\\",
    "\\n",
    "\\ud83d\\ude00",  # a JSON surrogate pair, as text
    "\\U0001F600",
    "\n",
    "\r",
    "\t",
    "\x00",
    "\x1b",
    "\x7f",
    "\x85",  # a YAML 1.1 line break
    "\u2028",
    "\u2029",
    "\ufeff",
    "\ufffe",
    "\xa0",
    "\xe9",
    "\u65e5\u672c",
    "\U0001f600",
    "\U0010ffff",
    "- ",
    ": ",
    " #",
    "#",
    "&a",
    "*a",
    "!!int",
    "!",
    "%YAML",
    "@",
    "`",
    "|",
    ">",
    "{",
    "}",
    "[",
    "]",
    ",",
    "?",
    "---",
    "...",
    "<<",
    " ",
    "0x1F",
    "1_000",
    "1:30",
    "1e3",
    ".inf",
    "2001-12-14",
    "15s",
    "=",
]


def any_case(word: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(word, upper, strict=True))
    )


hostile_strings = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), max_size=6).map("".join),
    st.sampled_from(YAML11_WORDS).flatmap(any_case),
    st.text(),
)
ints = st.integers() | st.sampled_from([0, -1, 2**63 - 1, 2**64 - 1, -(2**63), 10**100])
# Keys short enough that even all escaped (\U0001F600 for each) the charm writes them itself.
keys = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True),
    st.sampled_from(YAML11_WORDS).flatmap(any_case),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=2), max_size=3).map("".join),
    st.text(max_size=12),
)
plain_data = st.recursive(
    hostile_strings | ints,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=25,
)
plain_documents = st.dictionaries(keys, plain_data, max_size=5)
# What an operator's scrape-jobs may also hold once yaml.safe_load has read it.
other_scalars = st.one_of(
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.dates(),
    st.datetimes(),
    st.binary(max_size=8),
)
other_data = st.recursive(
    other_scalars | hostile_strings | ints,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(keys | st.integers() | st.booleans(), inner, max_size=3)
    ),
    max_leaves=10,
)


@pytest.fixture
def pyyaml_calls() -> Iterator[list[Any]]:
    """Record what the charm hands PyYAML to write (the data PyYAML writes, in order)."""
    calls: list[Any] = []
    real = prometheus._pyyaml

    def spy(data: dict[str, Any]) -> str:
        calls.append(data)
        return real(data)

    with mock.patch.object(prometheus, "_pyyaml", spy):
        yield calls


def render(scrape_configs: list[Any], external_labels: dict[str, str] | None = None) -> str:
    return prometheus.render_config(
        scrape_interval="15s",
        scrape_timeout="10s",
        evaluation_interval="15s",
        external_labels=external_labels or {},
        scrape_configs=scrape_configs,
    )


@given(document=plain_documents)
def test_plain_data_is_read_back_exactly_and_written_without_pyyaml(document):
    with mock.patch.object(prometheus, "_pyyaml", side_effect=AssertionError("PyYAML called")):
        text = prometheus.render_rules(document)

    assert yaml.safe_load(text) == document
    assert text.isascii()


@given(
    jobs=st.lists(st.dictionaries(keys, plain_data, max_size=4), max_size=4),
    labels=st.dictionaries(keys, hostile_strings, max_size=4),
)
def test_plain_scrape_configs_are_read_back_exactly(jobs, labels):
    with mock.patch.object(prometheus, "_pyyaml", side_effect=AssertionError("PyYAML called")):
        text = render(jobs, labels)

    loaded = yaml.safe_load(text)
    assert loaded["scrape_configs"] == jobs
    assert loaded["global"].get("external_labels", {}) == labels


@given(
    jobs=st.lists(
        st.one_of(
            st.dictionaries(keys, plain_data, max_size=3),
            st.dictionaries(keys, other_data, min_size=1, max_size=3),
        ),
        max_size=6,
    )
)
def test_a_document_of_plain_and_other_jobs_is_read_back_exactly(jobs):
    with mock.patch.object(prometheus, "_pyyaml", wraps=prometheus._pyyaml) as pyyaml:
        text = render(jobs)

    assert yaml.safe_load(text)["scrape_configs"] == jobs
    plain = [is_plain(job) for job in jobs]
    if all(plain):
        pyyaml.assert_not_called()
    else:
        # One PyYAML call for the document, a token in place of each plain job.
        [call] = pyyaml.call_args_list
        handed = call.args[0]["scrape_configs"]
        assert [type(job) is str for job in handed] == plain


def is_plain(data: object) -> bool:
    """Whether `data` is dicts with short str keys, lists, str and int only."""
    if type(data) is str or type(data) is int:
        return True
    if type(data) is list:
        return all(map(is_plain, data))
    if type(data) is dict:
        return all(type(key) is str and short(key) and is_plain(v) for key, v in data.items())
    return False


def short(key: str) -> bool:
    try:
        prometheus._key(key)
    except prometheus._NotPlainError:
        return False
    return True


def test_prometheus_yml_reads_as_prometheus_documents_it():
    job = scrape.http_job(
        {"node/0": {"hostname": "10.0.0.1", "port": "9100"}},
        scrape.Topology("lab", "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f", "node"),
    )
    assert job is not None
    job["params"] = {"module": ["http_2xx"], "on": ["yes"]}
    job["sample_limit"] = 100

    text = render([job], {"site": "lab", "y": "n"})

    assert text == prometheus._HEADER + (
        "global:\n"
        '  scrape_interval: "15s"\n'
        '  scrape_timeout: "10s"\n'
        '  evaluation_interval: "15s"\n'
        "  external_labels:\n"
        '    site: "lab"\n'
        '    "y": "n"\n'
        "rule_files:\n"
        '- "juju-rules/*.rules"\n'
        "scrape_configs:\n"
        '- job_name: "juju_lab_2f5e6d0a_node_target"\n'
        '  metrics_path: "/metrics"\n'
        "  static_configs:\n"
        "  - targets:\n"
        '    - "10.0.0.1:9100"\n'
        "    labels:\n"
        '      juju_model: "lab"\n'
        '      juju_model_uuid: "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"\n'
        '      juju_application: "node"\n'
        '      juju_unit: "node/0"\n'
        "  params:\n"
        "    module:\n"
        '    - "http_2xx"\n'
        '    "on":\n'
        '    - "yes"\n'
        "  sample_limit: 100\n"
    )


@pytest.mark.parametrize("word", YAML11_WORDS)
def test_yaml11_words_are_quoted_as_keys_in_any_case(word):
    spellings = {word, word.upper(), word.capitalize()}

    text = prometheus.render_rules(dict.fromkeys(spellings, "x"))

    for spelling in spellings:
        assert f'\n"{spelling}": "x"\n' in f"\n{text}"


def test_characters_beyond_the_basic_plane_are_escaped_whole_for_yaml_v2():
    # JSON would write \ud83d\ude00, a surrogate pair, which gopkg.in/yaml.v2 refuses.
    text = prometheus.render_rules({"a": "\U0001f600 \\ud83d"})

    assert '"\\U0001f600 \\\\ud83d"' in text
    assert yaml.safe_load(text) == {"a": "\U0001f600 \\ud83d"}


def test_a_lone_surrogate_is_left_to_pyyaml():
    # No YAML can carry one (yaml.v2 refuses the escape), so the charm's writer does not try.
    with mock.patch.object(prometheus, "_pyyaml", return_value="written by PyYAML\n") as pyyaml:
        text = prometheus.render_rules({"a": "\ud800"})

    pyyaml.assert_called_once_with({"a": "\ud800"})
    assert text == f"{prometheus._HEADER}written by PyYAML\n"


def test_a_key_too_long_for_an_implicit_key_is_left_to_pyyaml(pyyaml_calls):
    key = "k" * 200

    text = prometheus.render_rules({"groups": [{key: "v"}]})

    assert pyyaml_calls
    assert yaml.safe_load(text) == {"groups": [{key: "v"}]}


def test_operator_jobs_with_aliases_are_not_multiplied():
    # Each level refers nine times to the one above: 9**5 strings if written out in full.
    lines = ['- job_name: bomb\n  l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"  l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 5)]
    jobs = scrape.parse_user_jobs("\n".join(lines))

    text = render([scrape.self_job(9090, "", {}), *jobs])

    assert len(text) < 5000
    assert yaml.safe_load(text)["scrape_configs"][1] == jobs[0]


def test_a_list_that_contains_itself_is_left_to_pyyaml():
    [job] = scrape.parse_user_jobs("- job_name: loop\n  x: &x [a, *x]")

    text = render([job])

    loaded = yaml.safe_load(text)["scrape_configs"][0]
    assert loaded["x"][1] is loaded["x"]


def test_jobs_sharing_a_dict_are_each_read_back_whole():
    params = {"module": ["icmp"]}
    jobs = [{"job_name": f"probe-{n}", "params": params} for n in range(3)]

    text = render(jobs)

    assert yaml.safe_load(text)["scrape_configs"] == jobs


class IndentedDumper(yaml.SafeDumper):
    """PyYAML laid out otherwise: lists in mappings indented, not at their key's column."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def test_pyyaml_writes_the_whole_document_if_its_layout_is_not_the_one_expected():
    jobs = [{"job_name": "plain"}, {"job_name": "other", "honor_labels": True}]

    with mock.patch.object(prometheus, "_DUMPER", IndentedDumper):
        text = render(jobs)

    assert yaml.safe_load(text)["scrape_configs"] == jobs
    assert "plain-" not in text
    assert re.search(r"^  - job_name: plain$", text, re.MULTILINE)


def test_rules_as_cos_sends_them_are_read_back_exactly():
    groups = [
        {
            "name": 'widgets: "alerts" #1',
            "interval": "1m",
            "rules": [
                {
                    "alert": "Down",
                    "expr": 'up{juju_application="widgets"}\n  < 1',
                    "for": "5m",
                    "labels": {"severity": "page", "on": "call"},
                    "annotations": {"summary": "{{ $labels.instance }} is down\n\tsince 5m"},
                },
                {"record": "job:up:sum", "expr": "sum by (job) (up)"},
            ],
        }
    ]

    text = prometheus.render_rules({"groups": groups})

    assert yaml.safe_load(text) == {"groups": groups}


def test_an_operator_job_keeps_what_only_pyyaml_writes():
    job = {
        "job_name": "mine",
        "honor_labels": True,
        "scrape_interval": None,
        "sample_limit": 1.5,
        "when": datetime.date(2020, 1, 2),
        1: "one",
    }
    plain = {"job_name": "juju_x", "static_configs": [{"targets": ["h:1"]}]}

    text = render([plain, job, plain])

    assert yaml.safe_load(text)["scrape_configs"] == [plain, job, plain]
