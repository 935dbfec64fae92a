"""How DICOM values read on screen: one place, so every screen writes a date the same way."""

from __future__ import annotations


def display_date(text: str) -> str:
    """``20240131`` → ``2024-01-31``; anything that is not a DA value is returned as it is."""
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text
