"""The Basic Application Level Confidentiality Profile (PS3.15 Table E.1-1) as data.

The table lives in ``basic_profile.csv`` beside this module, generated from the standard by
``scripts/deid_table.py`` (which says where the current one came from): a new edition of the
standard is a regenerated file and a reviewed diff, not hand edits to code.
"""

from __future__ import annotations

import csv
from importlib import resources

TABLE_FILE = "basic_profile.csv"


def load_basic_profile() -> dict[int, str]:
    """Tag → Basic Profile action code (D, Z, X, K, U or a compound code such as X/Z/D).

    Raises:
        ValueError: the shipped table is damaged (a tag that is not 8 hex digits, no action).
    """
    text = resources.files(__package__).joinpath(TABLE_FILE).read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    table: dict[int, str] = {}
    for row in rows:
        tag, action = row["tag"], row["action"]
        if len(tag) != 8 or not action:
            raise ValueError(f"{TABLE_FILE}: row {row!r} is not tag,action,name.")
        table[int(tag, 16)] = action
    return table


#: PS3.15 Table E.1-1, column "Basic Prof.": tag -> action code.
BASIC_PROFILE: dict[int, str] = load_basic_profile()
