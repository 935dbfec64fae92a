"""Counts in words, and which study columns a width leaves room for."""

from __future__ import annotations

from tuiviewer.dicom.rows import StudyRow
from tuiviewer.widgets.study_table import OPTIONAL, REQUIRED, StudyTable, fit_columns
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


def _row(uid: str, name: str, modalities: tuple[str, ...]) -> StudyRow:
    return StudyRow(
        uid=uid, date="20261201", time="", description="RT plan", accession="", patient_name=name,
        patient_id="", birth_date="", sex="", modalities=modalities, series_count=None,
        instance_count=None, referring_physician="",
    )  # fmt: skip


def test_the_modality_and_inbox_columns_fit_what_is_listed_at_80_columns() -> None:
    from tuiviewer.widgets.inbox_table import InboxTable

    rows = {
        "1": _row("1", "Last^First^mid^pre", ("RTPLAN",)),
        "2": _row("2", "A^B", ("CT", "SR")),
    }
    widths = StudyTable(rows, {}).fit(80)
    assert widths["mod"] == len("RTPLAN"), "RTPLAN in full, not RTPLA"
    assert sum(width + 2 for width in widths.values()) <= 78
    inbox = InboxTable(rows, {}).fit(80)
    assert {"state", "patient", "date", "desc", "sender", "reply"} <= set(inbox)
    assert sum(width + 2 for width in inbox.values()) <= 78
    assert "mod" in InboxTable(rows, {}).fit(120)
