"""Counts in words: "1 study", "2 studies", never "1 studies"."""

from __future__ import annotations

IRREGULAR = {"study": "studies", "series": "series", "match": "matches"}


def plural(count: int, noun: str) -> str:
    """``count`` and ``noun``, the noun's last word in the plural unless ``count`` is 1
    (``plural(2, "unreadable file")`` is ``"2 unreadable files"``)."""
    if count == 1:
        return f"{count} {noun}"
    head, _, last = noun.rpartition(" ")
    many = IRREGULAR.get(last, last + "s")
    return f"{count} {head + ' ' if head else ''}{many}"
