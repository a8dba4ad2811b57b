"""prometheus.yml and rule files as written: JSON that YAML 1.1 readers read back exactly.

The charm writes every file with prometheus/yaml_writer.py. These tests read the files back
with PyYAML (a YAML 1.1 reader, like Prometheus's gopkg.in/yaml.v2) and with json;
tests/functional/test_prometheus_yaml.py has Prometheus itself read them.
"""

from __future__ import annotations

import json
import math
import unicodedata

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from prometheus import config_file, jobs, operator_jobs, paths, topology, yaml_writer

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
    "\x9f",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\ufffe",
    "\uffff",
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
UUID = "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"


def any_case(word: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(word, upper, strict=True))
    )


# Text without lone surrogates (no YAML file can carry one: see the tests below).
characters = st.characters(exclude_categories=["Cs"])
hostile_strings = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS) | st.text(characters, max_size=4), max_size=6).map(
        "".join
    ),
    st.sampled_from(YAML11_WORDS).flatmap(any_case),
    st.text(characters),
)
ints = st.integers() | st.sampled_from([0, -1, 2**63 - 1, 2**64 - 1, -(2**63), 10**100])
keys = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True),
    st.sampled_from(YAML11_WORDS).flatmap(any_case),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(characters, max_size=2), max_size=3).map(
        "".join
    ),
    st.text(characters, max_size=12),
)
data = st.recursive(
    hostile_strings | ints | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=25,
)
documents = st.dictionaries(keys, data, max_size=5)


def render(scrape_configs: list, external_labels: dict[str, str] | None = None) -> str:
    return config_file.render_config(
        scrape_interval="15s",
        scrape_timeout="10s",
        evaluation_interval="15s",
        external_labels=external_labels or {},
        scrape_configs=scrape_configs,
    )


def body(text: str) -> str:
    """The file without the charm's header line."""
    assert text.startswith(paths.HEADER)
    return text.removeprefix(paths.HEADER)


@given(document=documents, expand=st.integers(0, 6))
def test_any_document_is_read_back_exactly_by_yaml_and_json(document, expand):
    text = yaml_writer.dump(document, expand=expand)

    assert yaml.safe_load(text) == document
    assert json.loads(text) == document


@given(
    scrape_configs=st.lists(st.dictionaries(keys, data, max_size=4), max_size=4),
    labels=st.dictionaries(keys, hostile_strings, max_size=4),
)
def test_scrape_configs_and_labels_are_read_back_exactly(scrape_configs, labels):
    text = render(scrape_configs, labels)

    loaded = yaml.safe_load(text)
    assert loaded["scrape_configs"] == scrape_configs
    assert loaded["global"].get("external_labels", {}) == labels


@given(text=hostile_strings)
def test_only_characters_a_yaml_file_may_hold_literally_are_written_literally(text):
    written = yaml_writer.dump({"a": text})

    # yaml.v2's reader refuses U+007F-U+009F (but U+0085), U+FFFE and U+FFFF; U+0085, U+2028
    # and U+2029 are line breaks to YAML 1.1; U+FEFF is the byte order mark. JSON escapes the
    # other control characters.
    for char in written:
        assert char == "\n" or unicodedata.category(char) != "Cc", repr(char)
        assert char not in "\u2028\u2029\ufeff\ufffe\uffff", repr(char)


def test_prometheus_yml_reads_as_prometheus_documents_it():
    job = jobs.http_job(
        {"node/0": {"hostname": "10.0.0.1", "port": "9100"}},
        topology.Topology("lab", UUID, "node"),
    )
    assert job is not None
    job["params"] = {"module": ["http_2xx"], "on": ["yes"]}
    job["sample_limit"] = 100

    text = render([job], {"site": "lab", "y": "n"})

    assert text == paths.HEADER + (
        "{\n"
        '  "global": {\n'
        '    "scrape_interval": "15s",\n'
        '    "scrape_timeout": "10s",\n'
        '    "evaluation_interval": "15s",\n'
        '    "external_labels": {\n'
        '      "site": "lab",\n'
        '      "y": "n"\n'
        "    }\n"
        "  },\n"
        '  "rule_files": [\n'
        '    "juju-rules/*.rules"\n'
        "  ],\n"
        '  "scrape_configs": [\n'
        "    {\n"
        '      "job_name": "juju_lab_2f5e6d0a_node_target",\n'
        '      "metrics_path": "/metrics",\n'
        '      "static_configs": [\n'
        '        {"targets": ["10.0.0.1:9100"], "labels": {"juju_model": "lab",'
        f' "juju_model_uuid": "{UUID}", "juju_application": "node", "juju_unit": "node/0"}}}}\n'
        "      ],\n"
        '      "params": {\n'
        '        "module": ["http_2xx"],\n'
        '        "on": ["yes"]\n'
        "      },\n"
        '      "sample_limit": 100\n'
        "    }\n"
        "  ]\n"
        "}\n"
    )


def test_a_rule_file_has_one_line_per_rule_setting():
    groups = [{"name": "g", "rules": [{"alert": "A", "expr": "up < 1", "labels": {"a": "b"}}]}]

    text = config_file.render_rules({"groups": groups})

    assert body(text) == (
        "{\n"
        '  "groups": [\n'
        "    {\n"
        '      "name": "g",\n'
        '      "rules": [\n'
        "        {\n"
        '          "alert": "A",\n'
        '          "expr": "up < 1",\n'
        '          "labels": {"a": "b"}\n'
        "        }\n"
        "      ]\n"
        "    }\n"
        "  ]\n"
        "}\n"
    )


@pytest.mark.parametrize("word", YAML11_WORDS)
def test_yaml11_words_are_read_back_as_text_as_keys_and_values_in_any_case(word):
    spellings = {word, word.upper(), word.capitalize()}
    document = {spelling: spelling for spelling in spellings}

    text = config_file.render_rules(document)

    assert yaml.safe_load(text) == document


def test_characters_beyond_the_basic_plane_are_written_literally_for_yaml_v2():
    # JSON's escape would be \ud83d\ude00, a surrogate pair, which gopkg.in/yaml.v2 refuses.
    text = yaml_writer.dump({"a": "\U0001f600 \\ud83d"})

    assert '"\U0001f600 \\\\ud83d"' in text
    assert yaml.safe_load(text) == {"a": "\U0001f600 \\ud83d"}


@pytest.mark.parametrize("char", ["\x7f", "\x85", "\x9f", "\u2028", "\u2029", "\ufeff", "\ufffe"])
def test_characters_yaml_would_refuse_or_fold_are_escaped(char):
    text = yaml_writer.dump({"a": f"x{char}y"})

    assert f'"x\\u{ord(char):04x}y"' in text
    assert yaml.safe_load(text) == {"a": f"x{char}y"}


def test_a_lone_surrogate_cannot_be_written():
    with pytest.raises(ValueError, match="lone surrogate"):
        yaml_writer.dump({"a": "\ud800"})


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_float_yaml_and_json_read_differently_cannot_be_written(value):
    with pytest.raises(ValueError, match="Out of range float"):
        yaml_writer.dump({"a": value})


@pytest.mark.parametrize("key", [1, True, None])
def test_a_key_that_is_not_text_cannot_be_written(key):
    with pytest.raises(TypeError, match="mapping key must be a str"):
        yaml_writer.dump({key: "v"})


def test_keys_fit_until_yaml_s_limit_on_a_key():
    assert yaml_writer.fits_as_key("k" * (yaml_writer.MAX_KEY_LENGTH - 2))
    assert not yaml_writer.fits_as_key("k" * (yaml_writer.MAX_KEY_LENGTH - 1))
    # Escaped characters count as written: six each.
    assert not yaml_writer.fits_as_key("\x7f" * 200)


def test_operator_jobs_with_aliases_are_written_out_in_full():
    jobs_text = (
        "- job_name: a\n  tls_config: &tls {insecure_skip_verify: true}\n"
        "  static_configs: [{targets: ['h:1']}]\n"
        "- job_name: b\n  tls_config: *tls\n  static_configs: [{targets: ['h:2']}]\n"
    )
    parsed = operator_jobs.parse_user_jobs(jobs_text)

    text = render(parsed)

    written = yaml.safe_load(text)["scrape_configs"]
    assert written == yaml.safe_load(jobs_text)
    # Copies, not YAML anchors: the file is JSON.
    assert body(text).count('"insecure_skip_verify": true') == 2


def test_jobs_sharing_a_dict_are_each_read_back_whole():
    params = {"module": ["icmp"]}
    scrape_configs = [{"job_name": f"probe-{n}", "params": params} for n in range(3)]

    text = render(scrape_configs)

    assert yaml.safe_load(text)["scrape_configs"] == scrape_configs


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

    text = config_file.render_rules({"groups": groups})

    assert yaml.safe_load(text) == {"groups": groups}


def test_an_operator_job_keeps_its_booleans_nulls_and_typed_text():
    jobs_text = (
        "- job_name: mine\n"
        "  honor_labels: yes\n"
        "  scrape_interval: ~\n"
        "  static_configs:\n"
        "  - targets: ['h:1']\n"
        "    labels: {version: 1.10, since: 2001-12-14, on: x, 1: one, ratio: .inf}\n"
    )
    plain = {"job_name": "juju_x", "static_configs": [{"targets": ["h:1"]}]}

    text = render([plain, *operator_jobs.parse_user_jobs(jobs_text), plain])

    written = yaml.safe_load(text)["scrape_configs"]
    assert written == [
        plain,
        {
            "job_name": "mine",
            "honor_labels": True,
            "scrape_interval": None,
            "static_configs": [
                {
                    "targets": ["h:1"],
                    # As Prometheus reads label names and values: the text as typed.
                    "labels": {
                        "version": "1.10",
                        "since": "2001-12-14",
                        "on": "x",
                        "1": "one",
                        "ratio": ".inf",
                    },
                }
            ],
        },
        plain,
    ]
