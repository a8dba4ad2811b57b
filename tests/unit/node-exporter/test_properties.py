"""Properties over random and hostile option values: no hook raises, no unsafe flag is written.

Whatever an operator types into `port`, `collectors` and `log-level`, the unit ends Active with
flags made only of what it asked for, or Blocked with a message naming the option, and then
the flags file is left as it was.
"""

from __future__ import annotations

import re
from unittest import mock

import charm
from hypothesis import given
from hypothesis import strategies as st
from node_exporter_testing import COLLECTORS, FakeMachine, state
from ops import testing

_FLAG = re.compile(
    r"--web\.listen-address=:[0-9]+|--log\.level=(debug|info|warn|error)"
    r"|--(no-)?collector\.[a-z][a-z0-9_]*"
)
_WORD = st.one_of(
    st.sampled_from([*COLLECTORS, "gpu", "Processes", "--collector.cpu", '"', "$(id)", "a=b"]),
    st.text(max_size=12),
)


@st.composite
def collectors(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.tuples(st.booleans(), _WORD), max_size=6))
    separator = draw(st.sampled_from([",", " ", ", ", "\n", "\t"]))
    return separator.join(("-" if off else "") + word for off, word in words)


options = st.fixed_dictionaries(
    {},
    optional={
        "port": st.one_of(st.integers(-(2**40), 2**40), st.integers(0, 70000)),
        "collectors": collectors(),
        "log-level": st.one_of(st.sampled_from(["debug", "info", "warn", "error"]), st.text()),
    },
)


@given(config=options)
def test_any_option_values_end_active_with_safe_flags_or_blocked_naming_the_option(config):
    machine = FakeMachine()
    ctx = testing.Context(charm.NodeExporterCharm)
    with mock.patch.multiple(charm, **machine.modules()):
        out = ctx.run(ctx.on.config_changed(), state(config=config))

    if isinstance(out.unit_status, testing.ActiveStatus):
        assert machine.args is not None
        assert all(_FLAG.fullmatch(arg) for arg in machine.args), machine.args
        assert machine.args[0] == f"--web.listen-address=:{config.get('port', 9100)}"
    else:
        assert isinstance(out.unit_status, testing.BlockedStatus), out.unit_status
        assert out.unit_status.message.split(":")[0] in config, out.unit_status
        assert machine.args is None
        assert machine.actions == []
