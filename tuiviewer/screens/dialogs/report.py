"""The report editor's questions: resume a draft, write an addendum, leave unsaved text.

Each is a :class:`~tuiviewer.screens.dialogs.common.QuestionDialog` whose Esc answer leaves
things as they were: Esc resumes the draft, goes back instead of writing an addendum, stays in
an editor whose text could not be saved.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from textual.app import App

from tuiviewer.screens.dialogs.common import Option, QuestionDialog


class DraftChoice(Enum):
    """The answers to "a draft of this report exists: resume it?" (Esc resumes)."""

    RESUME = "resume"
    START_OVER = "start over"


class FinalChoice(Enum):
    """The answers to "this study has a final report: write an addendum?" (Esc goes back)."""

    ADDENDUM = "addendum"
    NEW_REPORT = "new report"
    BACK = "back"


class LeaveChoice(Enum):
    """Leaving an editor whose draft cannot be saved (Esc stays)."""

    STAY = "stay"
    SAVE_ELSEWHERE = "save elsewhere"
    LOSE = "lose"


def ask_resume(app: App[Any], saved: str, answer: Callable[[DraftChoice], None]) -> None:
    """A draft saved at ``saved`` exists: resume it, or start over keeping it as the backup."""
    QuestionDialog(
        f"A draft of this report was saved {saved}. Resume it?",
        [
            Option(DraftChoice.RESUME, "Resume", key="y", id="resume"),
            Option(
                DraftChoice.START_OVER,
                "Start over (keep the draft as a backup)",
                key="n",
                destructive=True,
                id="start-over",
            ),
        ],
        escape=DraftChoice.RESUME,
    ).ask(app, answer)


def ask_addendum(app: App[Any], answer: Callable[[FinalChoice], None]) -> None:
    """The study has a final report: an addendum to it, a new report, or back."""
    QuestionDialog(
        "This study already has a final report (shown on the left). A signed report "
        "is never changed: write an addendum to it?",
        [
            Option(FinalChoice.ADDENDUM, "Addendum", key="y", id="yes"),
            Option(FinalChoice.NEW_REPORT, "New report", key="n", id="new-report"),
            Option(FinalChoice.BACK, "Back", key="b", id="back"),
        ],
        escape=FinalChoice.BACK,
    ).ask(app, answer)


def ask_before_leaving(app: App[Any], reason: str, answer: Callable[[LeaveChoice], None]) -> None:
    """The text is only in memory: stay (Esc), save it elsewhere, or explicitly lose it."""
    QuestionDialog(
        f"The draft could not be saved: {reason}\nWhat you typed is only in this editor.",
        [
            Option(LeaveChoice.STAY, "Stay in the editor", id="stay"),
            Option(LeaveChoice.SAVE_ELSEWHERE, "Save it elsewhere…", key="s", id="elsewhere"),
            Option(LeaveChoice.LOSE, "Leave and lose it", key="l", destructive=True, id="lose"),
        ],
        escape=LeaveChoice.STAY,
    ).ask(app, answer)
