"""Each charm packs on its own, so shared libraries are copies: they must never drift apart."""

import pathlib
import re

CHARMS = pathlib.Path(__file__).parents[3] / "charms"


def _libraries() -> dict[str, dict[str, bytes]]:
    """Map each library path (relative to lib/) to the bytes each charm carries."""
    found: dict[str, dict[str, bytes]] = {}
    for path in CHARMS.glob("*/lib/charms/**/*.py"):
        charm = path.relative_to(CHARMS).parts[0]
        relative = str(path.relative_to(CHARMS / charm / "lib"))
        found.setdefault(relative, {})[charm] = path.read_bytes()
    return found


def test_grafana_source_library_is_in_both_charms():
    copies = _libraries()["charms/prometheus/v0/grafana_source.py"]
    assert sorted(copies) == ["grafana", "prometheus"]


def test_every_shared_library_copy_is_identical():
    drifted = {
        library: sorted(copies)
        for library, copies in _libraries().items()
        if len(set(copies.values())) > 1
    }
    assert not drifted, f"copies differ, re-copy from the owner charm: {drifted}"


def test_each_library_declares_the_api_of_its_directory_and_charmhub_metadata():
    # charmcraft publish-lib and fetch-lib read LIBID, LIBAPI and LIBPATCH from the file, and
    # a library in charms/<charm>/v<N>/ must declare LIBAPI = N.
    ids: dict[str, str] = {}
    for library, copies in _libraries().items():
        if library.endswith("__init__.py"):
            continue
        text = next(iter(copies.values())).decode()
        api = int(pathlib.PurePath(library).parent.name.removeprefix("v"))
        assert f"\nLIBAPI = {api}\n" in text, library
        assert re.search(r"\nLIBPATCH = [1-9][0-9]*\n", text), library
        # Charmhub's id for the library: 32 hex digits, and no two libraries share one.
        [libid] = re.findall(r'\nLIBID = "([0-9a-f]{32})"\n', text)
        assert libid not in ids, f"{library} has the LIBID of {ids.get(libid)}"
        ids[libid] = library
    assert len(ids) >= 2
