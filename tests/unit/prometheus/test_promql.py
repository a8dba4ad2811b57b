"""Scoping PromQL expressions to their sender (src/promql.py), on the parsed expression.

The round trip is checked against the parser itself: whatever `scope` renders must parse back
to the same tree as the original (the parser's full debug form, and a structural form built
here from its attributes, independent of the renderer), except for the topology matchers it
adds. tests/functional/test_promql_prometheus.py holds the same expressions against the real
Prometheus and promtool.
"""

from __future__ import annotations

import re
from typing import Any

import promql_parser
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus import promql
from promql_strategies import expressions

TOPOLOGY = {
    "juju_model": "lab",
    "juju_model_uuid": "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f",
    "juju_application": "widgets",
}
SCOPE = ",".join(f'{name}="{value}"' for name, value in TOPOLOGY.items())


def shape(node: Any, drop: frozenset[str] = frozenset()) -> tuple[Any, ...]:
    """The tree as nested tuples, from the parser's attributes, leaving out matchers in `drop`."""

    def go(child: Any) -> Any:
        return None if child is None else shape(child, drop)

    def at(n: Any) -> Any:
        return None if n.at is None else str(n.at)

    def modifier(m: Any) -> Any:
        if m is None:
            return None
        matching = m.matching and (str(m.matching.type), tuple(m.matching.labels))
        return (str(m.card), m.return_bool, matching, tuple(m.group_labels or ()))

    parts: dict[str, Any] = {
        "VectorSelector": lambda n: (
            n.name,
            tuple((str(m.op), m.name, m.value) for m in n.matchers.matchers if m.name not in drop),
            n.offset,
            at(n),
        ),
        "MatrixSelector": lambda n: (go(n.vector_selector), n.range),
        "SubqueryExpr": lambda n: (go(n.expr), n.range, n.step, n.offset, at(n)),
        "Call": lambda n: (n.func.name, tuple(go(a) for a in n.args)),
        "AggregateExpr": lambda n: (
            str(n.op),
            n.modifier and (str(n.modifier.type), tuple(n.modifier.labels)),
            go(n.param),
            go(n.expr),
        ),
        "BinaryExpr": lambda n: (str(n.op), modifier(n.modifier), go(n.lhs), go(n.rhs)),
        "ParenExpr": lambda n: (go(n.expr),),
        "UnaryExpr": lambda n: (go(n.expr),),
        "NumberLiteral": lambda n: (repr(n.val),),
        "StringLiteral": lambda n: (n.val,),
    }
    kind = type(node).__name__
    return (kind, *parts[kind](node))


def selectors(text: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []
    promql_parser.walk(
        promql_parser.parse(text),
        lambda n: found.append(n) if isinstance(n, promql_parser.VectorSelector) else None,
    )
    return found


def parsed_or_none(text: str) -> promql_parser.Expr | None:
    try:
        return promql_parser.parse(text)
    except ValueError:
        return None


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(expressions())
def test_rendering_parses_back_to_the_same_tree(expr: str):
    original = parsed_or_none(expr)
    event("parsed" if original is not None else "the generator wrote invalid PromQL")
    if original is None:
        return

    text = promql.scope(expr, {})

    again = promql_parser.parse(text)
    assert repr(again) == repr(original), text
    assert shape(again) == shape(original), text


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(expressions())
def test_every_selector_gets_the_topology_and_nothing_else_changes(expr: str):
    original = parsed_or_none(expr)
    if original is None:
        return

    scoped = promql.scope(expr, TOPOLOGY)

    found = selectors(scoped)
    event(f"{min(len(found), 5)}+ selectors" if len(found) >= 5 else f"{len(found)} selectors")
    for selector in found:
        topology = [m for m in selector.matchers.matchers if m.name in TOPOLOGY]
        assert {(m.name, m.value) for m in topology} == set(TOPOLOGY.items()), scoped
        assert len(topology) == len(TOPOLOGY)
        assert all(m.op == promql_parser.MatchOp.Equal for m in topology)
    drop = frozenset(TOPOLOGY)
    assert shape(promql_parser.parse(scoped), drop) == shape(original, drop), scoped


@given(
    st.one_of(
        st.text(st.sampled_from(list("up{}[]()\"=~!,:5m+-*/^ @#\\`'xyzaonbgl_0.")), max_size=40),
        st.text(max_size=20),
        expressions().flatmap(lambda e: st.integers(0, len(e)).map(lambda n: e[:n])),
    )
)
def test_any_text_is_scoped_or_refused_never_an_error(text: str):
    try:
        scoped = promql.scope(text, TOPOLOGY)
    except promql.RefusedError as e:
        event(f"refused: {str(e).split(':')[0][:40]}")
        return
    event("scoped")
    assert all({m.name for m in s.matchers.matchers} >= set(TOPOLOGY) for s in selectors(scoped))


def test_a_cos_host_down_rule_sees_only_its_application():
    assert promql.scope("up < 1", TOPOLOGY) == f"up{{{SCOPE}}} < 1"


def test_absent_is_scoped_like_any_selector():
    assert promql.scope("absent(up)", TOPOLOGY) == f"absent(up{{{SCOPE}}})"


def test_topology_matchers_the_sender_wrote_are_replaced():
    expr = 'up{juju_application="someone-else", juju_model=~".*", job="node"} == 0'

    assert promql.scope(expr, TOPOLOGY) == f'up{{job="node",{SCOPE}}} == 0'


def test_an_expression_already_scoped_by_cos_tool_stays_the_same():
    once = promql.scope('rate(x_total{code="500"}[5m]) > 0.1', TOPOLOGY)

    assert promql.scope(once, TOPOLOGY) == once


def test_range_selectors_and_subqueries_keep_offsets_and_steps():
    expr = "max_over_time(rate(x[90s] offset 1500ms)[1h:]) + min_over_time(y[10m:1m] offset 1w)"

    assert promql.scope(expr, {"juju_application": "a"}) == (
        'max_over_time(rate(x{juju_application="a"}[90s] offset 1500ms)[1h:])'
        ' + min_over_time(y{juju_application="a"}[10m:1m] offset 7d)'
    )


def test_label_values_with_quotes_backslashes_and_newlines_stay_exact():
    expr = r'up{path="C:\\dir\"x\"\n", note=`raw"' + "'`}"

    scoped = promql.scope(expr, {"juju_application": "a"})

    [selector] = selectors(scoped)
    values = {m.name: m.value for m in selector.matchers.matchers}
    assert values == {"path": 'C:\\dir"x"\n', "note": "raw\"'", "juju_application": "a"}


def test_only_quotes_backslashes_and_control_characters_are_escaped_in_values():
    scoped = promql.scope('up{path="X\\"Y\\\\Z\\t"}', {"juju_application": "a"})

    assert scoped == 'up{path="X\\"Y\\\\Z\\x09",juju_application="a"}'


@pytest.mark.parametrize(
    ("expr", "scoped"),
    [
        ("topk(5, up)", 'topk(5, up{juju_application="a"})'),
        ("quantile by (job) (0.9, x)", 'quantile by (job) (0.9, x{juju_application="a"})'),
        ('count_values("v", up)', 'count_values("v", up{juju_application="a"})'),
        ("sum without (i) (up)", 'sum without (i) (up{juju_application="a"})'),
    ],
)
def test_aggregations_keep_their_parameter_and_grouping(expr: str, scoped: str):
    assert promql.scope(expr, {"juju_application": "a"}) == scoped


def test_negative_zero_keeps_its_sign():
    # 1 / -0 is -Inf, 1 / 0 is +Inf: the sign of a zero is part of the rule's meaning.
    assert promql.scope("1 / -0", {"juju_application": "a"}) == "1 / -0"
    assert promql.scope("up * 0", {"juju_application": "a"}) == 'up{juju_application="a"} * 0'


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ('up{job="a" or job="b"}', "`or` inside a selector's braces is not in Prometheus 2.31"),
        ("up offset -5m", "negative offsets are off by default in Prometheus 2.31"),
        ("up @ 1609746000", "the @ modifier is off by default in Prometheus 2.31"),
    ],
)
def test_the_reason_for_a_refusal_is_whole(expr: str, message: str):
    with pytest.raises(promql.RefusedError) as refused:
        promql.scope(expr, TOPOLOGY)

    assert str(refused.value) == message


def test_holt_winters_from_prometheus_2_31_is_known():
    assert promql.scope("holt_winters(x[5m], 0.5, 0.5)", {"juju_application": "a"}) == (
        'holt_winters(x{juju_application="a"}[5m], 0.5, 0.5)'
    )


# Every construct the rewrite refuses, with the reason it gives.
REFUSED = [
    pytest.param("up @ 1609746000", "@ modifier", id="@ timestamp"),
    pytest.param("rate(up[5m] @ end())", "@ modifier", id="@ end()"),
    pytest.param("max_over_time(up[5m:1m] @ start())", "@ modifier", id="@ on a subquery"),
    pytest.param("up offset -5m", "negative offsets", id="negative offset"),
    pytest.param("max_over_time(up[5m:] offset -1m)", "negative offsets", id="negative sub"),
    pytest.param("limitk(2, up)", "aggregation limitk", id="limitk"),
    pytest.param("limit_ratio(0.5, up)", "aggregation limit_ratio", id="limit_ratio"),
    pytest.param('sort_by_label(up, "job")', "function sort_by_label", id="sort_by_label"),
    pytest.param("day_of_year()", "function day_of_year", id="day_of_year"),
    pytest.param("histogram_count(up)", "function histogram_count", id="histogram_count"),
    pytest.param("mad_over_time(up[5m])", "function mad_over_time", id="mad_over_time"),
    pytest.param("info(up)", "function info", id="info"),
    pytest.param("double_exponential_smoothing(up[5m], 0.5, 0.5)", "function", id="dexp"),
    pytest.param('up{job="a" or job="b"}', "`or` inside", id="or in braces"),
    pytest.param('up{"my.label"="x"}', "label name", id="quoted label name"),
    pytest.param("up > fill(0) up", "fill()", id="fill"),
    pytest.param("up > fill_left(0) up", "fill()", id="fill_left"),
    pytest.param("up > fill_right(1) up", "fill()", id="fill_right"),
    pytest.param(r'up{job="\xff"}', "U+0080 to U+00FF", id="byte escape"),
    pytest.param(r'up{job="\u00e9", x=~"\\d"}', "U+0080 to U+00FF", id="latin-1 with escapes"),
    pytest.param("(" * 600 + "up" + ")" * 600, "nested too deeply", id="deep nesting"),
    pytest.param("up ==", "not valid PromQL", id="unparsable"),
    pytest.param("rate(up)", "not valid PromQL", id="type error"),
    pytest.param("up offset 0s", "not valid PromQL", id="zero offset (parser refuses)"),
    pytest.param('{job=""}', "not valid PromQL", id="only empty matchers"),
    # Valid in Prometheus, refused by the parser (0.12), which reads escapes in raw strings.
    pytest.param(r"up{job=~`\d+`}", "not valid PromQL", id="backslash in a raw string"),
]


@pytest.mark.parametrize(("expr", "reason"), REFUSED)
def test_what_the_rewrite_refuses_it_says_why(expr: str, reason: str):
    with pytest.raises(promql.RefusedError, match=re.escape(reason)):
        promql.scope(expr, TOPOLOGY)


def test_a_quoted_metric_name_becomes_a_name_matcher_that_2_31_reads():
    assert promql.scope('{"my.metric"}', {"juju_application": "a"}) == (
        '{__name__="my.metric",juju_application="a"}'
    )


def test_latin_1_without_escapes_is_kept():
    assert promql.scope('up{city="Orléans"}', {"juju_application": "a"}) == (
        'up{city="Orléans",juju_application="a"}'
    )
