"""Status lines, untrusted text in messages, and databag writes that wake nobody for nothing."""

from __future__ import annotations

import pytest
from lab_monitoring import relation_data, status


def test_one_line_folds_whitespace_and_cuts_long_text_with_an_ellipsis():
    assert status.one_line("a\n  b\tc") == "a b c"
    cut = status.one_line("x" * 300)
    assert len(cut) == 200
    assert cut.endswith("...")


def test_quote_shows_a_config_value_as_the_operator_types_it():
    assert status.quote("2 weeks") == '"2 weeks"'


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("a\nb", '"a\\nb"'),
        (42, "42"),
        (None, "None"),
        ("x" * 100, '"' + "x" * 59 + "...(102 chars)"),
    ],
)
def test_show_escapes_and_cuts_untrusted_values(value, shown):
    assert status.show(value) == shown


def test_update_writes_only_what_differs():
    databag = {"a": "1", "b": "2"}

    assert relation_data.update(databag, {"a": "1", "b": "3"})
    assert databag == {"a": "1", "b": "3"}
    assert not relation_data.update(databag, {"a": "1"})


def test_update_deletes_owned_keys_no_longer_published_and_keeps_others():
    databag = {"mine": "x", "old": "y", "theirs": "z"}

    assert relation_data.update(databag, {"mine": "x"}, owned=("old", "gone"))
    assert databag == {"mine": "x", "theirs": "z"}
