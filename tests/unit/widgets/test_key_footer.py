"""Which keys the footer keeps when they do not all fit, and how it writes them."""

from __future__ import annotations

from textual.binding import Binding

from tuiviewer.widgets.key_footer import FooterEntry, fit, rank_of


def entry(key: str, description: str, order: int, *, on_app: bool = False) -> FooterEntry:
    binding = Binding(key, key, description)
    display = {"escape": "esc", "question_mark": "?"}.get(key, key)
    return FooterEntry(binding, display, True, "", rank_of(binding, on_app), order)


SCREEN = [
    entry("o", "Open", 0),
    entry("W", "Report", 1),
    entry("r", "Read report", 2),
    entry("s", "Status filter", 3),
    entry("p", "Priors", 4),
    entry("slash", "Filters", 5),
]
APP = [
    entry("f1", "Worklist", 10, on_app=True),
    entry("f2", "PACS", 11, on_app=True),
    entry("f9", "Report", 12, on_app=True),
    entry("q", "Quit", 13, on_app=True),
    entry("question_mark", "Help", 14, on_app=True),
]


def written(entries: list[FooterEntry], short: bool) -> list[str]:
    return [f"{e.key_display} {e.words(short)}" for e in entries]


def test_everything_fits_roomy_in_a_wide_terminal() -> None:
    kept, compact, short = fit(SCREEN + APP, 200)
    assert (compact, short) == (False, False)
    assert written(kept, short)[:6] == [
        "o Open", "W Report", "r Read report", "s Status filter", "p Priors", "slash Filters"
    ]  # fmt: skip
    # Help right after the screen's keys, then the report, the F-keys, Quit.
    assert written(kept, short)[6:] == ["? Help", "f9 Report", "f1 Worklist", "f2 PACS", "q Quit"]


def test_narrow_drops_the_app_keys_before_the_screen_keys_and_keeps_help() -> None:
    kept, compact, short = fit(SCREEN + APP, 80)
    shown = written(kept, short)
    assert compact and not short
    assert shown[:7] == [
        "o Open", "W Report", "r Read report", "s Status filter", "p Priors", "slash Filters",
        "? Help",
    ]  # fmt: skip
    assert sum(e.width(compact, short) for e in kept) <= 80


def test_too_narrow_for_full_words_writes_the_first_word_and_never_loses_help() -> None:
    kept, compact, short = fit(SCREEN + APP, 60)
    assert compact and short
    shown = written(kept, short)
    assert "r Read" in shown and "s Status" in shown and "? Help" in shown
    assert sum(e.width(compact, short) for e in kept) <= 60
    # Very narrow: the screen's last keys go, Esc and Help stay.
    back = entry("escape", "Back", 20)
    kept, compact, short = fit([back, *SCREEN, *APP], 24)
    shown = written(kept, short)
    assert shown == ["esc Back", "o Open", "? Help"]
