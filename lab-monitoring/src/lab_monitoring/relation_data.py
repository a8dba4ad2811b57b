"""Writing a relation databag: only what changed, and only the keys this charm owns.

Every write to a databag that Juju sees as a change wakes the other side's relation-changed
hook, even when the value is the same as before; so values are compared first.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, MutableMapping


def update(
    databag: MutableMapping[str, str], wanted: Mapping[str, str], *, owned: Collection[str] = ()
) -> bool:
    """Make `databag` hold `wanted`; return True if anything was written.

    Keys of `owned` that `wanted` lacks are deleted (a value this charm no longer publishes);
    other keys are left as they are (another writer's, or an older version's).
    """
    changed = False
    for key in owned:
        if key not in wanted and key in databag:
            del databag[key]
            changed = True
    for key, value in wanted.items():
        if databag.get(key) != value:
            databag[key] = value
            changed = True
    return changed
