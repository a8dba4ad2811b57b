"""Hypothesis profiles for every property test; pick one with HYPOTHESIS_PROFILE=<name>.

`default` keeps a plain `tox` run short; `ci` tries five times as many examples. No deadline
in either: CI machines are noisy, and a slow example is not a bug.
"""

import os

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # tox's `packed` env runs tests/unit/repo without hypothesis.
    pass
else:
    settings.register_profile(
        "default",
        max_examples=100,
        deadline=None,
        # Charm hooks through ops.testing take milliseconds, not microseconds.
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile(
        "ci", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
