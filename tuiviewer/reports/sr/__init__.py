"""Reports as DICOM Structured Reports: the SR classes and codes that writing and reading share.

:mod:`.build` writes a report as a TID 2000 Basic Text SR, :mod:`.read` reads any SR back,
:mod:`.context` gathers what an SR copies from the study it reports on.
"""

from __future__ import annotations

from tuiviewer.reports.model import Code

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
EXTENSIBLE_SR = "1.2.840.10008.5.1.4.1.1.88.35"
#: The general-purpose SR classes a narrative report may use (PS3.4 B.5). Dose, CAD and key
#: object selection documents have classes of their own and are not reports.
SR_STORAGE_CLASSES = frozenset(
    {BASIC_TEXT_SR, ENHANCED_SR, COMPREHENSIVE_SR, COMPREHENSIVE_3D_SR, EXTENSIBLE_SR}
)
_SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."


def is_sr_class(uid: str) -> bool:
    """Whether ``uid`` is one of the SR storage classes (dose and CAD SRs included)."""
    return uid.startswith(_SR_PREFIX)


# PS3.16 TID 1204, 1002 and 1003 concept names.
LANGUAGE = Code("121049", "DCM", "Language of Content Item and Descendants")
OBSERVER_TYPE = Code("121005", "DCM", "Observer Type")
PERSON = Code("121006", "DCM", "Person")
PERSON_NAME = Code("121008", "DCM", "Person Observer Name")
PERSON_ORG = Code("121009", "DCM", "Person Observer's Organization Name")
