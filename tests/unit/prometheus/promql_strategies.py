"""Hypothesis strategies for PromQL expressions, written as a person would write them.

`expressions()` draws well-typed expressions (so that most of them parse) over what Prometheus
2.31 evaluates: selectors with every matcher type and awkward label values (quotes, backslashes,
newlines, non-ASCII), written with every quoting style and escape PromQL allows; range selectors,
offsets and subqueries with and without a step; the 2.31 functions with their argument types;
every aggregation with by/without and parameters; every binary operator with bool, on/ignoring
and group_left/group_right; parentheses, unary minus, and numbers in every notation. Operands of
binary operators are sometimes left unparenthesised so that precedence is exercised too.

Shared by the unit properties (round trip through the parser) and the functional ones (the
same expressions judged by the real Prometheus and promtool).
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

# No Latin-1 (U+0080-U+00FF): with backslash escapes around, promql.scope refuses those on
# purpose (see its docstring); a separate test covers that refusal.
_VALUE_CHARS = st.sampled_from(
    [
        *"abcxyz019_-.:/ ",
        '"',
        "'",
        "\\",
        "\n",
        "\t",
        "`",
        "{",
        "}",
        "#",
        "\u03b5",
        "\u20ac",
        "\U0001f600",
    ]
)
_METRICS = ["up", "node_load1", "http_requests_total", "job:rate:5m", "process_cpu_seconds_total"]
_LABELS = ["job", "instance", "mode", "le", "code", "device", "_x", "a1"]
_REGEXES = ["a|b", ".*", ".+", "[0-9]+", "5..", "node|prometheus", "\\d+", "(x)?y"]
_DURATION_MS = (
    ("ms", 1),
    ("s", 1000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 7 * 86_400_000),
    ("y", 365 * 86_400_000),
)

VECTOR_FUNCTIONS = [
    "abs",
    "ceil",
    "floor",
    "exp",
    "ln",
    "log2",
    "log10",
    "sqrt",
    "sgn",
    "sort",
    "sort_desc",
    "timestamp",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "cos",
    "cosh",
    "sin",
    "sinh",
    "tan",
    "tanh",
    "deg",
    "rad",
    "absent",
]
DATE_FUNCTIONS = [
    "day_of_month",
    "day_of_week",
    "days_in_month",
    "hour",
    "minute",
    "month",
    "year",
]
RANGE_FUNCTIONS = [
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "changes",
    "resets",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "present_over_time",
    "absent_over_time",
]
SIMPLE_AGGREGATIONS = ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"]
ARITHMETIC = ["+", "-", "*", "/", "%", "^", "atan2"]
COMPARISONS = ["==", "!=", ">", "<", ">=", "<="]
SET_OPERATORS = ["and", "or", "unless"]


@st.composite
def durations(draw: st.DrawFn) -> str:
    """A positive duration, sometimes in two units (1h30m), as PromQL writes them."""
    unit, _ = draw(st.sampled_from(_DURATION_MS[1:6]))
    text = f"{draw(st.integers(1, 90))}{unit}"
    if unit in ("h", "m") and draw(st.booleans()):
        text += f"{draw(st.integers(1, 59))}{'m' if unit == 'h' else 's'}"
    elif draw(st.integers(0, 9)) == 0:
        text = draw(st.sampled_from(["1500ms", "1y", "2w", "90s", "250ms"]))
    return text


@st.composite
def quoted(draw: st.DrawFn, value: str) -> str:
    """Write `value` as a PromQL string literal, in one of the ways PromQL allows."""
    style = draw(st.sampled_from(["double", "single", "raw", "escaped"]))
    if style == "raw" and "`" not in value:
        return f"`{value}`"
    if style == "single":
        body = value.replace("\\", "\\\\").replace("'", "\\'")
        return "'" + body.replace("\n", "\\n").replace("\t", "\\t") + "'"
    if style == "escaped":
        # Every character through an escape: \xNN below 0x80, \u/\U above, octal sometimes.
        parts = []
        for char in value:
            code = ord(char)
            if code < 0x80:
                octal = draw(st.booleans())
                parts.append(f"\\{code:03o}" if octal else f"\\x{code:02x}")
            elif code <= 0xFFFF:
                parts.append(f"\\u{code:04x}")
            else:
                parts.append(f"\\U{code:08x}")
        return '"' + "".join(parts) + '"'
    body = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + body.replace("\n", "\\n").replace("\t", "\\t") + '"'


@st.composite
def matchers(draw: st.DrawFn, *, named: bool) -> str:
    """A `{...}` matcher list; without a metric name it has a non-empty matcher."""
    parts = []
    if not named:
        parts.append(f"__name__={draw(quoted(draw(st.sampled_from(_METRICS))))}")
    for _ in range(draw(st.integers(0, 3))):
        label = draw(st.sampled_from(_LABELS))
        op = draw(st.sampled_from(["=", "!=", "=~", "!~"]))
        if op in ("=~", "!~"):
            value = draw(st.sampled_from(_REGEXES))
        else:
            value = draw(st.text(_VALUE_CHARS, max_size=8))
        parts.append(f"{label}{op}{draw(quoted(value))}")
    space = draw(st.sampled_from(["", " "]))
    comma = draw(st.sampled_from([",", ", "]))
    if named and not parts and draw(st.booleans()):
        return ""
    trailing = "," if parts and draw(st.integers(0, 5)) == 0 else ""
    return "{" + space + comma.join(parts) + trailing + space + "}"


@st.composite
def selectors(draw: st.DrawFn) -> str:
    """An instant vector selector, sometimes with an offset."""
    if draw(st.integers(0, 4)) == 0:
        text = draw(matchers(named=False))
    else:
        text = draw(st.sampled_from(_METRICS)) + draw(matchers(named=True))
    if draw(st.integers(0, 4)) == 0:
        text += f" offset {draw(durations())}"
    return text


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """A number literal in one of PromQL's notations."""
    return draw(
        st.one_of(
            st.integers(0, 10**6).map(str),
            st.floats(0, 1e6, allow_nan=False, allow_infinity=False).map(repr),
            st.sampled_from(
                ["0.5", ".5", "5.", "1e3", "1E-3", "2.5e+10", "0x1F", "0XFF", "Inf", "NaN", "inf"]
            ),
        )
    )


@st.composite
def ranges(draw: st.DrawFn, depth: int) -> str:
    """A range vector: a range selector or a subquery (step optional), maybe with an offset."""
    if depth <= 0 or draw(st.integers(0, 2)) > 0:
        selector = draw(selectors())
        name_and_matchers, _, offset = selector.partition(" offset ")
        text = f"{name_and_matchers}[{draw(durations())}]"
        return f"{text} offset {offset}" if offset else text
    inner = draw(vectors(depth - 1))
    step = draw(st.one_of(st.just(""), durations()))
    text = f"({inner})[{draw(durations())}:{step}]"
    if draw(st.integers(0, 3)) == 0:
        text += f" offset {draw(durations())}"
    return text


@st.composite
def scalars(draw: st.DrawFn, depth: int) -> str:
    """A scalar expression."""
    choices = ["number", "number", "time", "pi"]
    if depth > 0:
        choices += ["scalar", "binary", "paren", "minus"]
    kind = draw(st.sampled_from(choices))
    if kind == "number":
        return draw(numbers())
    if kind == "time":
        return "time()"
    if kind == "pi":
        return "pi()"
    if kind == "scalar":
        return f"scalar({draw(vectors(depth - 1))})"
    if kind == "paren":
        return f"({draw(scalars(depth - 1))})"
    if kind == "minus":
        return f"-({draw(scalars(depth - 1))})"
    op = draw(st.sampled_from([*ARITHMETIC, *COMPARISONS]))
    lhs, rhs = draw(scalars(depth - 1)), draw(scalars(depth - 1))
    bool_ = " bool" if op in COMPARISONS else ""
    return f"({lhs}) {op}{bool_} ({rhs})"


def _label_list(draw: st.DrawFn) -> str:
    names = draw(st.lists(st.sampled_from(_LABELS), max_size=3, unique=True))
    return "(" + ", ".join(names) + ")"


@st.composite
def vectors(draw: st.DrawFn, depth: int = 3) -> str:
    """An instant vector expression."""
    if depth <= 0:
        return draw(selectors())
    kind = draw(
        st.sampled_from(
            [
                *["selector", "selector", "function", "range_function", "aggregation"],
                *["binary", "binary", "paren", "minus", "special", "date"],
            ]
        )
    )
    if kind == "selector":
        return draw(selectors())
    if kind == "function":
        return f"{draw(st.sampled_from(VECTOR_FUNCTIONS))}({draw(vectors(depth - 1))})"
    if kind == "date":
        name = draw(st.sampled_from(DATE_FUNCTIONS))
        return f"{name}({draw(st.one_of(st.just(''), vectors(depth - 1)))})"
    if kind == "range_function":
        return f"{draw(st.sampled_from(RANGE_FUNCTIONS))}({draw(ranges(depth - 1))})"
    if kind == "paren":
        return f"({draw(vectors(depth - 1))})"
    if kind == "minus":
        return f"-{draw(selectors())}" if draw(st.booleans()) else f"-({draw(vectors(depth - 1))})"
    if kind == "special":
        return draw(_special(depth))
    if kind == "aggregation":
        return draw(_aggregation(depth))
    return draw(_binary(depth))


@st.composite
def _special(draw: st.DrawFn, depth: int) -> str:
    """Functions whose arguments are not just one vector."""
    inner = draw(vectors(depth - 1))
    scalar = draw(scalars(depth - 1))
    label = draw(st.sampled_from(_LABELS))

    def label_replace() -> str:
        regex = draw(quoted(draw(st.sampled_from(_REGEXES))))
        replacement = draw(quoted(draw(st.sampled_from(["$1", "${1}x", "", "a b"]))))
        return f'label_replace({inner}, "{label}", {replacement}, "job", {regex})'

    def label_join() -> str:
        sources = "".join(f', "{n}"' for n in draw(st.lists(st.sampled_from(_LABELS), max_size=3)))
        separator = draw(quoted(draw(st.text(_VALUE_CHARS, max_size=2))))
        return f'label_join({inner}, "{label}", {separator}{sources})'

    forms: list[Callable[[], str]] = [
        lambda: f"histogram_quantile({scalar}, {inner})",
        lambda: f"round({inner}{', ' + scalar if draw(st.booleans()) else ''})",
        lambda: f"clamp({inner}, {scalar}, {draw(scalars(depth - 1))})",
        lambda: f"{draw(st.sampled_from(['clamp_min', 'clamp_max']))}({inner}, {scalar})",
        label_replace,
        label_join,
        lambda: f"vector({scalar})",
        lambda: f"quantile_over_time({scalar}, {draw(ranges(depth - 1))})",
        lambda: f"predict_linear({draw(ranges(depth - 1))}, {scalar})",
        lambda: f"holt_winters({draw(ranges(depth - 1))}, 0.5, 0.5)",
    ]
    return draw(st.sampled_from(forms))()


@st.composite
def _aggregation(draw: st.DrawFn, depth: int) -> str:
    inner = draw(vectors(depth - 1))
    op = draw(
        st.sampled_from([*SIMPLE_AGGREGATIONS, "topk", "bottomk", "quantile", "count_values"])
    )
    if op in ("topk", "bottomk"):
        args = f"{draw(st.sampled_from(['1', '3', '(2)']))}, {inner}"
    elif op == "quantile":
        args = f"{draw(st.sampled_from(['0.9', '0.5', 'scalar(up)']))}, {inner}"
    elif op == "count_values":
        args = f"{draw(quoted(draw(st.sampled_from(['value', 'v']))))}, {inner}"
    else:
        args = inner
    grouping = draw(st.sampled_from(["", "by", "without"]))
    if not grouping:
        return f"{op}({args})"
    labels = _label_list(draw)
    if draw(st.booleans()):
        return f"{op} {grouping} {labels} ({args})"
    return f"{op}({args}) {grouping} {labels}"


@st.composite
def _binary(draw: st.DrawFn, depth: int) -> str:
    family = draw(st.sampled_from(["arithmetic", "comparison", "set"]))
    op = draw(
        st.sampled_from(
            {"arithmetic": ARITHMETIC, "comparison": COMPARISONS, "set": SET_OPERATORS}[family]
        )
    )
    lhs = draw(vectors(depth - 1))
    rhs_scalar = family != "set" and draw(st.integers(0, 3)) == 0
    rhs = draw(scalars(depth - 1)) if rhs_scalar else draw(vectors(depth - 1))
    words = [op]
    if family == "comparison" and draw(st.booleans()):
        words.append("bool")
    if not rhs_scalar and draw(st.booleans()):
        words += [draw(st.sampled_from(["on", "ignoring"])), _label_list(draw)]
        if family != "set" and draw(st.booleans()):
            words += [draw(st.sampled_from(["group_left", "group_right"])), _label_list(draw)]
    # Arithmetic chains stay unparenthesised now and then, so precedence is parsed too.
    bare = family == "arithmetic" and draw(st.booleans())
    if not bare:
        lhs, rhs = f"({lhs})", f"({rhs})"
    return f"{lhs} {' '.join(words)} {rhs}"


@st.composite
def expressions(draw: st.DrawFn) -> str:
    """An expression a rule could hold: a vector, sometimes a scalar, sometimes a comment."""
    text = draw(vectors()) if draw(st.integers(0, 9)) else draw(scalars(2))
    if draw(st.integers(0, 9)) == 0:
        text += '  # a comment, with a " quote'
    return text
