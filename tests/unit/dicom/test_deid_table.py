"""The de-identification profile is data generated from the standard: the generator reads
PS3.15's DocBook table, and the shipped table is what the export applies."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from tuiviewer.dicom.deid.profile import BASIC_PROFILE, load_basic_profile

ROOT = Path(__file__).resolve().parents[3]

# The shape of PS3.15's DocBook source (part15.xml), cut down to three rows of Table E.1-1.
DOCBOOK = """<?xml version="1.0" encoding="utf-8"?>
<book xmlns="http://docbook.org/ns/docbook" xmlns:xml="http://www.w3.org/XML/1998/namespace">
 <table xml:id="table_E.1-1" label="E.1-1">
  <thead><tr>
   <th><para>Attribute Name</para></th><th><para>Tag</para></th>
   <th><para>Retd. (from PS3.6)</para></th>
   <th><para>In Std. Comp. IOD (from PS3.3)</para></th><th><para>Basic Prof.</para></th>
   <th><para>Rtn. Safe Priv. Opt.</para></th>
  </tr></thead>
  <tbody>
   <tr><td><para>Accession Number</para></td><td><para>(0008,0050)</para></td>
       <td><para>N</para></td><td><para>Y</para></td><td><para>Z</para></td><td><para/></td></tr>
   <tr><td><para>Curve Data</para></td><td><para>(50xx,xxxx)</para></td><td><para>Y</para></td>
       <td><para>N</para></td><td><para>X</para></td><td><para/></td></tr>
   <tr><td><para>Referenced Image Sequence</para></td><td><para>(0008,1140)</para></td>
       <td><para>N</para></td><td><para>Y</para></td><td><para>X/Z/U*</para></td><td><para/></td></tr>
  </tbody>
 </table>
</book>
"""


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deid_table", ROOT / "scripts" / "deid_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generator_reads_the_basic_profile_column_of_the_standards_table(
    tmp_path: Path,
) -> None:
    source = tmp_path / "part15.xml"
    source.write_text(DOCBOOK, encoding="utf-8")
    rows = generator().from_docbook(source)
    # The repeating group (50xx,xxxx) is left to the export, which handles curves by group.
    assert rows == [
        (0x00080050, "Z", "Accession Number"),
        (0x00081140, "X/Z/U*", "Referenced Image Sequence"),
    ]
    text = generator().to_csv(rows, "a test table")
    assert "00080050,Z,Accession Number" in text.splitlines()
    assert "a test table" in text


def test_the_shipped_table_regenerates_to_itself(tmp_path: Path) -> None:
    shipped = ROOT / "tuiviewer" / "dicom" / "deid" / "basic_profile.csv"
    text = shipped.read_text(encoding="utf-8")
    names = {
        int(line.split(",")[0], 16): line.split(",", 2)[2]
        for line in text.splitlines()[1:]
        if not line.startswith(("#", "tag,"))
    }
    rows = [(tag, action, names[tag]) for tag, action in load_basic_profile().items()]
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    regenerated = generator().to_csv(rows, "x")
    body = [line for line in regenerated.splitlines() if not line.startswith("#")]
    assert body == [line for line in text.splitlines() if not line.startswith("#")]
    assert "commit 9822968" in header, "the table says where it came from"


def test_the_export_applies_614_attributes_of_the_2024b_table() -> None:
    assert len(BASIC_PROFILE) == 614
    assert BASIC_PROFILE[0x00100010] == "Z"  # Patient's Name: emptied
    assert BASIC_PROFILE[0x00080018] == "U"  # SOP Instance UID: replaced consistently
    assert BASIC_PROFILE[0x00081030] == "X"  # Study Description: removed
