r"""prometheus.yml and rule files written as JSON, which every YAML reader takes as YAML.

A JSON document is YAML 1.2, and with three cares YAML 1.1 too, which is what Prometheus reads
prometheus.yml with (gopkg.in/yaml.v2 v2.4.0, in 2.31 and 2.42; rule files with yaml.v3):

- Characters are written as themselves (`ensure_ascii=False`, so the live file stays readable),
  except those a YAML file may not hold literally (yaml.v2's reader refuses U+007F-U+009F but
  U+0085, U+FFFE and U+FFFF: "control characters are not allowed"), those YAML 1.1 reads as line
  breaks inside a quoted string and would fold (U+0085, U+2028, U+2029) and the byte order mark:
  those become `\uXXXX` escapes, which YAML 1.1 has. JSON's own escapes (\" \\ \n \t ...)
  are YAML's. A character beyond U+FFFF is written literally: JSON's escape for it, a
  surrogate pair, is refused by yaml.v2 ("found invalid Unicode character escape code"), its
  literal form is not (checked with the real promtool and Prometheus: tests/functional). A lone
  surrogate cannot be carried at all: ValueError.
- A mapping key is read by YAML only up to 1024 characters (an implicit key; yaml.v2 then says
  "did not find expected ',' or '}'"): keys must stay within MAX_KEY_LENGTH, which the
  validators of everything that reaches these files ensure.
- No NaN or infinity (JSON has none; ValueError), and only dicts with str keys, lists, str, int,
  bool and None: what the validators produce (the scrape-jobs option is read so that it gives
  only those, see operator_jobs.py).

The layout: mappings and lists are one entry per line down to `expand` levels, and written on
one line below that: one static config (targets and labels) or one rule per line.

Why this and not a YAML emitter of the charm's own (what came before: ~195 lines, PyYAML for
whatever it did not handle) or PyYAML's. Measured at 10/100/1,000/5,000 units of a COS relation
(one job per unit), medians of two runs on a loaded 2-CPU machine, Prometheus 2.42's promtool:

    units  render ms,        render+promtool+install  read back ms,  file KiB and lines,
           own/this/PyYAML   CPU ms, own/this/PyYAML  own/this       own; this
    10     0.0/0.1/0.6       27/27/26                 0.6/0.0        3, 126; 4, 93
    100    0.4/0.6/7         30/30/33                 14/0.2         32, 1116; 35, 723
    1000   6/6/69            63/69/131                112/1.9        317, 11016; 348, 7023
    5000   36/47/580         226/237/618              1330/20        1595, 55016; 1751, 35023

Rendering and promtool cost about the same (within 5%: promtool dominates). What decides it:
every hook reads the live file back (collect-status counts its jobs), and the json module's
parser reads it 60 times faster than libyaml (20 ms against 1.3 s at 5,000 units); the file has
one static config or one rule per line (a third fewer lines, longer ones); and this is about 40
lines of code with one path for every input, where the own writer was 195 with two.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Room for the two quotes and an escape or two under YAML's 1024-character limit on a key.
MAX_KEY_LENGTH = 1000
# One line per entry down to this many levels; see the module docstring.
EXPAND = 4

# json.dumps's C encoder (one line: it is the pure-Python encoder that indents).
_ONE_LINE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(", ", ": ")).encode
# What is escaped after encoding (JSON only writes these inside strings): see the docstring.
_NOT_LITERAL = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")


def dump(data: dict[str, Any], *, expand: int = EXPAND) -> str:
    """Return `data` as a YAML document (in JSON form), mappings and lists expanded `expand` deep.

    Raises:
        ValueError: a string holds a lone surrogate, or a float is not finite.
        TypeError: something else than dict, list, str, int, bool or None.
    """
    out: list[str] = []
    _write(data, "", expand, out)
    return _NOT_LITERAL.sub(_escape, "".join(out)) + "\n"


def fits_as_key(key: str) -> bool:
    """Return True if `key` can be written as a mapping key (see MAX_KEY_LENGTH)."""
    return len(_NOT_LITERAL.sub(_escape, _ONE_LINE(key))) <= MAX_KEY_LENGTH


def _write(value: Any, indent: str, expand: int, out: list[str]) -> None:
    """Write `value`; a non-empty dict or list `expand` > 0 gets one line per entry."""
    if expand <= 0 or not value or type(value) not in (dict, list):
        out.append(_ONE_LINE(value))
        return
    inner = f"\n{indent}  "
    if type(value) is dict:
        out.append("{")
        for n, (key, item) in enumerate(value.items()):
            if type(key) is not str:
                raise TypeError(f"a mapping key must be a str, not {type(key).__name__}")
            out.append(f"{',' if n else ''}{inner}{_ONE_LINE(key)}: ")
            _write(item, indent + "  ", expand - 1, out)
        out.append(f"\n{indent}}}")
    else:
        out.append("[")
        for n, item in enumerate(value):
            out.append(f"{',' if n else ''}{inner}")
            _write(item, indent + "  ", expand - 1, out)
        out.append(f"\n{indent}]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if "\ud800" <= char <= "\udfff":
        raise ValueError("a lone surrogate (from a \\uD800-\\uDFFF escape) cannot be written")
    return f"\\u{ord(char):04x}"
