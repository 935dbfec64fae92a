"""Counts in words, and which study columns a width leaves room for."""

from __future__ import annotations

from tuiviewer.widgets.study_table import OPTIONAL, REQUIRED, fit_columns
from tuiviewer.widgets.wording import plural


def test_counts_are_pluralised_right() -> None:
    assert plural(1, "study") == "1 study"
    assert plural(0, "study") == "0 studies"
    assert plural(1, "job") == "1 job"
    assert plural(2, "job") == "2 jobs"
    assert plural(3, "unreadable file") == "3 unreadable files"
    assert plural(2, "series") == "2 series"


def test_a_narrow_table_keeps_the_required_columns_and_gives_the_rest_to_the_description() -> None:
    narrow = fit_columns(78, REQUIRED, OPTIONAL)
    assert list(narrow)[:5] == ["state", "patient", "date", "mod", "desc"]
    assert sum(width + 2 for width in narrow.values()) <= 78
    assert narrow["desc"] > 22  # the room the optional columns could not use
    wide = fit_columns(200, REQUIRED, OPTIONAL)
    assert set(wide) == {c.key for c in (*REQUIRED, *OPTIONAL)}
    assert sum(width + 2 for width in wide.values()) == 200
