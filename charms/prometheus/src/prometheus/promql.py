r"""Scope a PromQL expression to one Juju application, on its parsed form.

A related charm's alert rule such as `up < 1` must only see that charm's own series, or it fires
for every target of every application (COS's Prometheus does the same with its cos-tool). So
every vector selector in the expression gets the sender's topology as equality matchers, and any
matcher the sender put on those labels itself is replaced:

    scope('up < 1', {"juju_application": "db"}) == 'up{juju_application="db"} < 1'

The expression is parsed with `promql_parser` (Python bindings of the Rust crate of the same name,
which follows Prometheus's own grammar and type checks). Its printer is not used: in 0.12 it
leaves quotes and newlines in label values unescaped, prints a subquery without a step
(`x[5m:]`) as a range selector (`x[5m]`) and rounds durations to whole seconds. This module
renders the tree itself, node by node, and checks every result by parsing it again.

Only what Prometheus 2.31 (jammy's) evaluates by default is accepted; everything else is
refused with `RefusedError`, whose message says what:

- an expression that does not parse, or is nested more deeply than the renderer recurses;
- the `@` modifier and negative offsets (2.31 parses them, but only evaluates them behind
  `--enable-feature`, so such a rule would load and then fail at every evaluation);
- functions and aggregations that 2.31 does not have (`limitk`, `sort_by_label`, `info`, ...);
- syntax of later Prometheus versions that the parser knows: `or` inside braces, quoted
  (UTF-8) label names, `fill()` on binary operators (a quoted metric name, `{"a.b"}`, is
  kept: the parser turns it into a `__name__` matcher, which 2.31 reads);
- a string with a Latin-1 character in an expression that has backslash escapes: Go reads
  `"\xff"` as the byte 0xff, this parser as the character U+00FF, so the rendering could not
  be trusted to mean the same.

No ops import: rules.py calls `scope` for each rule it accepts.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import promql_parser

# What Prometheus 2.31 knows. Source: promql/parser/functions.go and lex.go (`key`) at v2.31.2.
FUNCTIONS = frozenset(
    [
        "abs",
        "absent",
        "absent_over_time",
        "acos",
        "acosh",
        "asin",
        "asinh",
        "atan",
        "atanh",
        "avg_over_time",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "cos",
        "cosh",
        "count_over_time",
        "days_in_month",
        "day_of_month",
        "day_of_week",
        "deg",
        "delta",
        "deriv",
        "exp",
        "floor",
        "histogram_quantile",
        "holt_winters",
        "hour",
        "idelta",
        "increase",
        "irate",
        "label_replace",
        "label_join",
        "last_over_time",
        "ln",
        "log10",
        "log2",
        "max_over_time",
        "min_over_time",
        "minute",
        "month",
        "pi",
        "predict_linear",
        "present_over_time",
        "quantile_over_time",
        "rad",
        "rate",
        "resets",
        "round",
        "scalar",
        "sgn",
        "sin",
        "sinh",
        "sort",
        "sort_desc",
        "sqrt",
        "stddev_over_time",
        "stdvar_over_time",
        "sum_over_time",
        "tan",
        "tanh",
        "time",
        "timestamp",
        "vector",
        "year",
    ]
)
AGGREGATIONS = frozenset(
    [
        "sum",
        "avg",
        "count",
        "min",
        "max",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "count_values",
        "quantile",
    ]
)
BINARY_OPERATORS = frozenset(
    [
        "+",
        "-",
        "*",
        "/",
        "%",
        "^",
        "==",
        "!=",
        ">",
        "<",
        ">=",
        "<=",
        "and",
        "or",
        "unless",
        "atan2",
    ]
)

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# The parser's enums compare equal but do not hash, hence pairs rather than dicts.
_MATCH_OPS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)
_GROUP_SIDES = (
    (promql_parser.VectorMatchCardinality.ManyToOne, "group_left"),
    (promql_parser.VectorMatchCardinality.OneToMany, "group_right"),
)
_DURATION_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


def _register_holt_winters() -> None:
    """Teach the parser holt_winters, which 2.31 has (Prometheus 3 and the crate renamed it).

    Arguments and result as in 2.31's promql/parser/functions.go: (matrix, scalar, scalar).
    """
    value = promql_parser.ValueType
    function = promql_parser.Function(
        "holt_winters", [value.Matrix, value.Scalar, value.Scalar], value.Vector
    )
    # ValueError: already known (registered before in this process, or built in again one day).
    with contextlib.suppress(ValueError):
        promql_parser.register_extra_functions([function])


_register_holt_winters()


class RefusedError(ValueError):
    """The expression cannot be scoped; the message says why."""


def scope(expr: str, labels: Mapping[str, str]) -> str:
    """Return `expr` with `labels` as equality matchers on every vector selector.

    Matchers on those label names already in the expression are replaced. With no labels this
    renders the expression as parsed, which is how its round trip is tested.

    Raises:
        RefusedError: the expression does not parse, or uses something this module refuses (see the
            module's docstring).
    """
    tree = _parse(expr)
    if "\\" in expr:
        _refuse_latin1_strings(tree)
    try:
        text = _Renderer(labels).render(tree)
    except RecursionError:
        raise RefusedError("the expression is nested too deeply") from None
    # The renderer is checked on every expression it renders: its output must parse, and
    # rendering that again (adding the same labels again) must give the same text.
    try:
        again = _Renderer(labels).render(_parse(text))
    except (RefusedError, RecursionError):
        again = None
    if again != text:
        raise RefusedError("the expression could not be rendered back faithfully")
    return text


def _parse(expr: str) -> promql_parser.Expr:
    try:
        return promql_parser.parse(expr)
    except ValueError as e:
        raise RefusedError(f"not valid PromQL: {e}") from None


class _Renderer:
    """Render a parsed expression as PromQL text, adding matchers to every vector selector."""

    def __init__(self, labels: Mapping[str, str]) -> None:
        for name in labels:
            _label_name(name)
        self._labels = dict(labels)
        self._render: dict[type, Callable[[Any], str]] = {
            promql_parser.AggregateExpr: self._aggregate,
            promql_parser.BinaryExpr: self._binary,
            promql_parser.Call: self._call,
            promql_parser.MatrixSelector: self._matrix,
            promql_parser.NumberLiteral: self._number,
            promql_parser.ParenExpr: self._paren,
            promql_parser.StringLiteral: self._string,
            promql_parser.SubqueryExpr: self._subquery,
            promql_parser.UnaryExpr: self._unary,
            promql_parser.VectorSelector: self._vector,
        }

    def render(self, node: object) -> str:
        render = self._render.get(type(node))
        if render is None:
            raise RefusedError(f"unknown kind of expression {type(node).__name__}")
        return render(node)

    def _aggregate(self, node: promql_parser.AggregateExpr) -> str:
        op = str(node.op)
        if op not in AGGREGATIONS:
            raise RefusedError(f"aggregation {op} is not in Prometheus 2.31")
        grouping = ""
        if node.modifier is not None:
            keyword = "by" if node.modifier.type == promql_parser.AggModifierType.By else "without"
            grouping = f" {keyword} {_label_list(node.modifier.labels)} "
        param = f"{self.render(node.param)}, " if node.param is not None else ""
        return f"{op}{grouping}({param}{self.render(node.expr)})"

    def _binary(self, node: promql_parser.BinaryExpr) -> str:
        op = str(node.op)
        if op not in BINARY_OPERATORS:
            raise RefusedError(f"operator {op} is not in Prometheus 2.31")
        words = [op]
        modifier = node.modifier
        if modifier is not None:
            fill = modifier.fill_values
            if fill is not None and (fill.lhs is not None or fill.rhs is not None):
                raise RefusedError("fill() is not in Prometheus 2.31")
            if modifier.return_bool:
                words.append("bool")
            if modifier.matching is not None:
                include = modifier.matching.type == promql_parser.LabelModifierType.Include
                words += ["on" if include else "ignoring", _label_list(modifier.matching.labels)]
            side = next((word for card, word in _GROUP_SIDES if card == modifier.card), None)
            if side:
                words += [side, _label_list(modifier.group_labels or [])]
        return f"{self.render(node.lhs)} {' '.join(words)} {self.render(node.rhs)}"

    def _call(self, node: promql_parser.Call) -> str:
        name = node.func.name
        if name not in FUNCTIONS:
            raise RefusedError(f"function {name} is not in Prometheus 2.31")
        return f"{name}({', '.join(self.render(arg) for arg in node.args)})"

    def _matrix(self, node: promql_parser.MatrixSelector) -> str:
        selector = node.vector_selector
        return f"{self._selector(selector)}[{_duration(node.range)}]{_offset(selector)}"

    def _number(self, node: promql_parser.NumberLiteral) -> str:
        value = node.val
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Inf" if value > 0 else "-Inf"
        if value == 0:
            return "-0" if math.copysign(1, value) < 0 else "0"  # 1 / -0 is -Inf
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        # repr is the shortest text that reads back as the same float, as Go's parser reads it.
        return repr(value)

    def _paren(self, node: promql_parser.ParenExpr) -> str:
        return f"({self.render(node.expr)})"

    def _string(self, node: promql_parser.StringLiteral) -> str:
        return _quote(node.val)

    def _subquery(self, node: promql_parser.SubqueryExpr) -> str:
        if node.at is not None:
            raise RefusedError("the @ modifier is off by default in Prometheus 2.31")
        step = _duration(node.step) if node.step is not None else ""
        offset = _offset_text(node.offset)
        return f"{self.render(node.expr)}[{_duration(node.range)}:{step}]{offset}"

    def _unary(self, node: promql_parser.UnaryExpr) -> str:
        # The parser keeps only unary minus (a unary plus is dropped, as it changes nothing).
        return f"-{self.render(node.expr)}"

    def _vector(self, node: promql_parser.VectorSelector) -> str:
        return f"{self._selector(node)}{_offset(node)}"

    def _selector(self, node: promql_parser.VectorSelector) -> str:
        """Render a selector without its offset, with the scoping matchers."""
        if node.at is not None:
            raise RefusedError("the @ modifier is off by default in Prometheus 2.31")
        if node.matchers.or_matchers:
            raise RefusedError("`or` inside a selector's braces is not in Prometheus 2.31")
        matchers = [
            f"{_label_name(m.name)}{_match_op(m.op)}{_quote(m.value)}"
            for m in node.matchers.matchers
            if m.name not in self._labels
        ]
        matchers += [f"{label}={_quote(value)}" for label, value in self._labels.items()]
        return f"{node.name or ''}{{{','.join(matchers)}}}"


def _match_op(op: promql_parser.MatchOp) -> str:
    return next(text for known, text in _MATCH_OPS if known == op)


def _offset(selector: promql_parser.VectorSelector) -> str:
    return _offset_text(selector.offset)


def _offset_text(offset: datetime.timedelta | None) -> str:
    if offset is None:
        return ""
    if offset < datetime.timedelta(0):
        raise RefusedError("negative offsets are off by default in Prometheus 2.31")
    return f" offset {_duration(offset)}"


def _duration(delta: datetime.timedelta) -> str:
    """Render a duration in its largest whole unit (PromQL durations are in milliseconds)."""
    ms = round(delta / datetime.timedelta(milliseconds=1))
    unit, size = next((u, s) for u, s in _DURATION_UNITS if ms % s == 0)
    return f"{ms // size}{unit}"


def _label_name(name: str) -> str:
    if not _LABEL_NAME.fullmatch(name):
        raise RefusedError(f"label name {json.dumps(name)} needs Prometheus 3 (UTF-8 names)")
    return name


def _label_list(names: list[str]) -> str:
    return f"({', '.join(_label_name(n) for n in names)})"


def _quote(text: str) -> str:
    """Quote `text` as a PromQL (Go) double-quoted string that reads back as exactly `text`."""
    out = []
    for char in text:
        if char in '"\\':
            out.append(f"\\{char}")
        elif char == "\n":
            out.append("\\n")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            # Control characters: Go's \xNN below 0x80 is the same character.
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return f'"{"".join(out)}"'


def _refuse_latin1_strings(tree: promql_parser.Expr) -> None:
    r"""Refuse strings with U+0080..U+00FF: they may come from `\xNN`, which Go reads as a byte."""

    def check(node: promql_parser.Expr) -> None:
        values: list[str] = []
        if isinstance(node, promql_parser.StringLiteral):
            values.append(node.val)
        elif isinstance(node, promql_parser.VectorSelector):
            values += [m.value for m in node.matchers.matchers]
        elif isinstance(node, promql_parser.MatrixSelector):
            values += [m.value for m in node.vector_selector.matchers.matchers]
        if any("\x80" <= char <= "\xff" for value in values for char in value):
            raise RefusedError(
                "a string with a character from U+0080 to U+00FF in an expression with "
                "backslash escapes (Prometheus reads \\xNN as a byte, not a character)"
            )

    promql_parser.walk(tree, check)
