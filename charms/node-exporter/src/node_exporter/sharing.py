"""Sharing one exporter: the claims by which a machine's node-exporter units agree on its owner.

A machine has one `prometheus-node-exporter` service and one flags file, but it can carry several
node-exporter units: one per principal application placed on it, of the same node-exporter
application or of different ones. Each unit writes a *claim* (its unit name and the flags it
wants) into `paths.PATHS.claims`; the *owner* is the live claim whose unit sorts first
(application name, then unit number), and the flags file always holds the owner's flags,
whichever unit writes it. So every unit writes the same flags (no restart ping-pong), the
exporter keeps running while any claim is left, and the unit that removes the last claim stops
it.

A claim whose unit's agent directory (`/var/lib/juju/agents/unit-<app>-<n>`) is gone is stale,
from a unit removed without its remove hook, and is dropped: Juju removes that directory when it
takes a unit off the machine (juju/juju internal/worker/deployer/nested.go, RecallUnit). Hooks of
the units on one machine never run at the same time (Juju's machine lock:
https://documentation.ubuntu.com/juju/latest/reference/resource-compute/list-of-commands-available-on-a-compute-resource-provisioned-by-juju/list-of-juju-introspect-macros/juju_machine_lock),
and every file is replaced atomically, so a reader never sees half a claim.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
from collections.abc import Sequence

from lab_monitoring import files

from . import paths

logger = logging.getLogger(__name__)

_UNIT = re.compile(r"([a-z][a-z0-9-]*)/([0-9]+)")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One unit's wish for the machine's exporter: the flags it wants."""

    unit: str
    args: tuple[str, ...]

    @property
    def application(self) -> str:
        """The unit's application."""
        return self.unit.rpartition("/")[0]

    @property
    def tag(self) -> str:
        """The unit's Juju tag, which names its agent directory and its claim file."""
        return "unit-" + self.unit.replace("/", "-")

    def sort_key(self) -> tuple[str, int]:
        """Owner order: application name, then unit number."""
        return (self.application, int(self.unit.rpartition("/")[2]))


def claim(unit: str, args: Sequence[str]) -> Claim:
    """Record that `unit` wants the exporter to run with `args`; return the owner's claim.

    The owner's flags are what the flags file must hold (see the module docstring).

    Raises:
        ValueError: the unit name or a flag is malformed (a bug in the caller).
    """
    mine = _claim(unit, args)
    claims = paths.PATHS.claims
    files.write(claims / f"{mine.tag}.json", json.dumps({"unit": unit, "args": list(args)}))
    return live_claims(unit)[0]


def release(unit: str) -> Claim | None:
    """Withdraw `unit`'s claim; return the owner that is left, None if no claim is left."""
    mine = _claim(unit, ())
    claims = paths.PATHS.claims
    (claims / f"{mine.tag}.json").unlink(missing_ok=True)
    left = live_claims()
    if not left:
        with contextlib.suppress(OSError):
            claims.rmdir()
    return left[0] if left else None


def live_claims(me: str | None = None) -> list[Claim]:
    """Return the live claims, owner first; stale and unreadable ones are dropped with a warning.

    `me` is the unit asking: it is alive whatever its agent directory says.
    """
    claims = paths.PATHS.claims
    found = []
    for path in sorted(claims.glob("*.json")) if claims.is_dir() else []:
        try:
            data = json.loads(path.read_text())
            found_claim = _claim(data["unit"], data["args"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            logger.warning("ignoring unreadable claim %s: %s", path.name, e)
            continue
        if found_claim.unit != me and _is_stale(found_claim):
            logger.warning(
                "dropping the claim of %s, which is no longer on this machine", found_claim.unit
            )
            path.unlink(missing_ok=True)
            continue
        found.append(found_claim)
    return sorted(found, key=Claim.sort_key)


def _claim(unit: str, args: Sequence[str]) -> Claim:
    if not isinstance(unit, str) or not _UNIT.fullmatch(unit):
        raise ValueError(f"not a unit name: {unit!r}")
    if not isinstance(args, (list, tuple)):
        raise ValueError(f"flags must be a list, not {args!r}")
    files.args_line(args, "")  # raises ValueError for an unsafe flag
    return Claim(unit, tuple(args))


def _is_stale(found: Claim) -> bool:
    agents = paths.PATHS.agents
    if agents is None or not agents.is_dir():
        return False  # not a Juju machine: nothing to check against
    return not (agents / found.tag).is_dir()
