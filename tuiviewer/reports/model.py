"""What a radiology report is, independent of how it is stored (draft JSON, DICOM SR, text).

A report is a tuple of sections (Clinical information, Technique, Comparison, Findings,
Impression, Recommendation, Addendum), key images, a status (preliminary or final), the reader
and, for a new version or an addendum, references to the documents it replaces. Every section
kind carries its codes from PS3.16: the CID 7001 heading of its CONTAINER and the CID 7002
concept of its TEXT item, so the SR writer, the SR reader and the Markdown parser agree on one
table. All values are frozen: edits produce new reports with :func:`dataclasses.replace`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from tuiviewer.exceptions import TuiviewerError

__all__ = [
    "Code",
    "DocumentRef",
    "DraftError",
    "KeyImage",
    "Report",
    "ReportError",
    "ReportStatus",
    "Section",
    "SectionKind",
    "DIAGNOSTIC_IMAGING_REPORT",
    "REPORT_TITLES",
    "make_addendum",
    "sign",
]


class ReportError(TuiviewerError):
    """A report cannot be built, parsed, read or written; the message says where."""

    title = "Report"


class DraftError(ReportError):
    """A report draft cannot be saved or read; the previous draft on disk is intact."""

    title = "Report draft"


@dataclass(frozen=True)
class Code:
    """A coded concept (PS3.3 Table 8.8-1 Code Sequence Macro): value, scheme, meaning."""

    value: str
    """Code Value (0008,0100)."""
    scheme: str
    """Coding Scheme Designator (0008,0102): ``LN`` (LOINC), ``DCM``, ``RFC5646``..."""
    meaning: str
    """Code Meaning (0008,0104), shown to people."""

    def same_concept(self, other: Code) -> bool:
        """Equal value and scheme; the meaning is only a label and may differ between writers."""
        return self.value == other.value and self.scheme == other.scheme


DIAGNOSTIC_IMAGING_REPORT = Code("18748-4", "LN", "Diagnostic Imaging Report")
"""The generic CID 7000 document title."""

#: PS3.16 CID 7000 "Diagnostic Imaging Report Document Title" (the LOINC part), by code value.
#: Templates may name any of these as their title.
REPORT_TITLES: dict[str, Code] = {
    code.value: code
    for code in (
        DIAGNOSTIC_IMAGING_REPORT,
        Code("11528-7", "LN", "Radiology Report"),
        Code("25045-6", "LN", "CT Report"),
        Code("24627-2", "LN", "CT Chest Report"),
        Code("24725-4", "LN", "CT Head Report"),
        Code("41806-1", "LN", "CT Abdomen Report"),
        Code("25056-3", "LN", "MRI Report"),
        Code("24590-2", "LN", "MRI Head Report"),
        Code("18756-7", "LN", "MRI Spine Report"),
        Code("25061-3", "LN", "Ultrasound Report"),
        Code("11525-3", "LN", "Ultrasound Obstetric and Gyn Report"),
        Code("43468-8", "LN", "X-Ray Report"),
        Code("49512-7", "LN", "Fluoroscopy Study Report"),
        Code("24606-6", "LN", "Mammography Screening Report"),
        Code("49118-3", "LN", "Nuclear Medicine Report"),
        Code("44136-0", "LN", "PET Scan Report"),
        Code("38269-7", "LN", "DEXA Skeletal System Study Report"),
        Code("42148-7", "LN", "Echocardiography Report"),
        Code("47048-4", "LN", "Diagnostic Interventional Radiology Report"),
    )
}


class ReportStatus(Enum):
    """Where a report stands, as encoded in the SR Document General Module (PS3.3 C.17.2).

    ``PRELIMINARY``: Preliminary Flag (0040,A496) PRELIMINARY, Completion Flag (0040,A491)
    PARTIAL, Verification Flag (0040,A493) UNVERIFIED. ``FINAL``: FINAL, COMPLETE and VERIFIED,
    with a Verifying Observer Sequence (0040,A073) naming the reader (C.17.2.1).
    """

    PRELIMINARY = "preliminary"
    FINAL = "final"


@dataclass(frozen=True)
class _SectionCodes:
    title: str
    heading: Code
    """CID 7001 "Diagnostic Imaging Report Heading": the section CONTAINER's concept name."""
    item: Code
    """CID 7002 "Diagnostic Imaging Report Element": the concept name of the TEXT item."""
    synonyms: tuple[str, ...]
    """Lower-case headings accepted in Markdown besides the title and the heading meaning."""


class SectionKind(Enum):
    """The report sections tuiviewer writes, in report order (PS3.16 TID 2001 headings)."""

    HISTORY = "history"
    TECHNIQUE = "technique"
    COMPARISON = "comparison"
    FINDINGS = "findings"
    IMPRESSION = "impression"
    RECOMMENDATION = "recommendation"
    ADDENDUM = "addendum"

    @property
    def title(self) -> str:
        """The heading shown to the user (``Clinical information``)."""
        return _CODES[self].title

    @property
    def heading(self) -> Code:
        """CID 7001 concept name of the section's CONTAINER."""
        return _CODES[self].heading

    @property
    def item(self) -> Code:
        """CID 7002 concept name of the section's TEXT item."""
        return _CODES[self].item

    @property
    def names(self) -> tuple[str, ...]:
        """Every lower-case heading that means this section in Markdown."""
        codes = _CODES[self]
        return tuple(
            dict.fromkeys(
                (codes.title.lower(), codes.heading.meaning.lower(), self.value, *codes.synonyms)
            )
        )

    @classmethod
    def from_name(cls, name: str) -> SectionKind | None:
        """The section a heading names (case-insensitive, synonyms accepted), or None."""
        wanted = " ".join(name.strip().strip(":").split()).lower()
        for kind in cls:
            if wanted in kind.names:
                return kind
        return None

    @classmethod
    def from_heading(cls, code: Code) -> SectionKind | None:
        """The section whose CID 7001 heading is ``code`` (LOINC, or the older DCM code)."""
        for kind in cls:
            if code.same_concept(kind.heading):
                return kind
        for kind, dcm in _DCM_HEADINGS.items():
            if code.value == dcm and code.scheme == "DCM":
                return kind
        return None


# PS3.16 CID 7001 lists LOINC codes; CID 7002 mixes LOINC (History) and DCM codes. The Addendum
# heading has no matching CID 7002 element, and an addendum adds findings, so its TEXT is a
# Finding (121071).
_CODES: dict[SectionKind, _SectionCodes] = {
    SectionKind.HISTORY: _SectionCodes(
        "Clinical information",
        Code("11329-0", "LN", "History"),
        Code("11329-0", "LN", "History"),
        ("clinical history", "indication", "indications", "clinical details"),
    ),
    SectionKind.TECHNIQUE: _SectionCodes(
        "Technique",
        Code("55111-9", "LN", "Current Procedure Descriptions"),
        Code("121065", "DCM", "Procedure Description"),
        ("procedure", "procedure description", "protocol"),
    ),
    SectionKind.COMPARISON: _SectionCodes(
        "Comparison",
        Code("18834-2", "LN", "Previous Findings"),
        Code("121069", "DCM", "Previous Finding"),
        ("comparisons", "prior studies", "priors"),
    ),
    SectionKind.FINDINGS: _SectionCodes(
        "Findings",
        Code("59776-5", "LN", "Findings"),
        Code("121071", "DCM", "Finding"),
        ("finding", "report"),
    ),
    SectionKind.IMPRESSION: _SectionCodes(
        "Impression",
        Code("19005-8", "LN", "Impressions"),
        Code("121073", "DCM", "Impression"),
        ("conclusion", "conclusions", "summary"),
    ),
    SectionKind.RECOMMENDATION: _SectionCodes(
        "Recommendation",
        Code("18783-1", "LN", "Recommendations"),
        Code("121075", "DCM", "Recommendation"),
        ("advice", "follow-up", "follow up"),
    ),
    SectionKind.ADDENDUM: _SectionCodes(
        "Addendum",
        Code("55107-7", "LN", "Addendum"),
        Code("121071", "DCM", "Finding"),
        ("addenda",),
    ),
}

# Earlier editions of CID 7001 used DCM codes; other writers still do (PS3.16 CID 7001 note).
_DCM_HEADINGS: dict[SectionKind, str] = {
    SectionKind.HISTORY: "121060",
    SectionKind.TECHNIQUE: "121064",
    SectionKind.COMPARISON: "121068",
    SectionKind.FINDINGS: "121070",
    SectionKind.IMPRESSION: "121072",
    SectionKind.RECOMMENDATION: "121074",
    SectionKind.ADDENDUM: "121078",
}

KEY_IMAGES_HEADING = Code("55113-5", "LN", "Key Images")
"""CID 7001 heading of the container that holds the key images."""
KEY_IMAGE_PURPOSE = Code("121080", "DCM", "Best illustration of finding")
"""CID 7003 purpose of reference: the concept name of each key IMAGE item."""


@dataclass(frozen=True)
class Section:
    """One section of the report: its kind and the text the reader wrote."""

    kind: SectionKind
    text: str


@dataclass(frozen=True)
class KeyImage:
    """An image (or one frame of it) the reader marked as illustrating the report."""

    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    frame: int | None = None
    """Frame number from 1 for multi-frame images; None for the whole (single-frame) image."""


@dataclass(frozen=True)
class DocumentRef:
    """Where an SR document is: what a Predecessor Documents Sequence item points at."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str = "1.2.840.10008.5.1.4.1.1.88.11"
    """Basic Text SR Storage unless the predecessor was another SR class."""


@dataclass(frozen=True)
class Report:
    """A radiology report's content and sign-off state."""

    sections: tuple[Section, ...]
    """In display order; sections with blank text are kept for the editor but not written."""
    key_images: tuple[KeyImage, ...] = ()
    status: ReportStatus = ReportStatus.PRELIMINARY
    reader: str | None = None
    """The radiologist (DICOM PN, ``Family^Given`` or free text): observer, and verifier when
    final."""
    organization: str | None = None
    """The reader's organization (Verifying Organization (0040,A027) when final)."""
    signed_at: dt.datetime | None = None
    """When the reader signed (Verification DateTime); None while preliminary."""
    predecessors: tuple[DocumentRef, ...] = ()
    """Documents this one replaces or extends (Predecessor Documents Sequence)."""
    title: Code = DIAGNOSTIC_IMAGING_REPORT
    """Document title from CID 7000."""
    language: str = "en"
    """RFC 5646 language tag of the text (TID 1204)."""
    document: DocumentRef | None = field(default=None, compare=False)
    """Where this report is stored as an SR, when it was read from one (not part of content)."""

    def section(self, kind: SectionKind) -> Section | None:
        """The first section of ``kind``, or None."""
        return next((s for s in self.sections if s.kind is kind), None)

    def text_of(self, kind: SectionKind) -> str:
        """The text of the first section of ``kind`` ("" when absent)."""
        found = self.section(kind)
        return found.text if found is not None else ""

    def written_sections(self) -> tuple[Section, ...]:
        """Sections with text, trailing blanks removed: what an SR or an export holds."""
        return tuple(Section(s.kind, _clean(s.text)) for s in self.sections if s.text.strip())

    @property
    def is_empty(self) -> bool:
        """No section has text and no image is marked."""
        return not self.written_sections() and not self.key_images

    def with_text(self, kind: SectionKind, text: str) -> Report:
        """A copy with the first ``kind`` section's text replaced (appended if absent)."""
        sections = list(self.sections)
        for index, existing in enumerate(sections):
            if existing.kind is kind:
                sections[index] = Section(kind, text)
                break
        else:
            sections.append(Section(kind, text))
        return replace(self, sections=tuple(sections))

    # --- JSON (drafts) --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_dict` reads back to an equal report."""
        return {
            "sections": [{"kind": s.kind.value, "text": s.text} for s in self.sections],
            "key_images": [
                {
                    "sop_class_uid": k.sop_class_uid,
                    "sop_instance_uid": k.sop_instance_uid,
                    "study_uid": k.study_uid,
                    "series_uid": k.series_uid,
                    "frame": k.frame,
                }
                for k in self.key_images
            ],
            "status": self.status.value,
            "reader": self.reader,
            "organization": self.organization,
            "signed_at": self.signed_at.isoformat() if self.signed_at else None,
            "predecessors": [_ref_dict(p) for p in self.predecessors],
            "title": [self.title.value, self.title.scheme, self.title.meaning],
            "language": self.language,
            "document": _ref_dict(self.document) if self.document else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Inverse of :meth:`to_dict`.

        Raises:
            ReportError: a key is missing or has the wrong type (the message names it).
        """
        try:
            sections = tuple(
                Section(SectionKind(item["kind"]), str(item["text"])) for item in data["sections"]
            )
            keys = tuple(
                KeyImage(
                    str(k["sop_class_uid"]),
                    str(k["sop_instance_uid"]),
                    str(k["study_uid"]),
                    str(k["series_uid"]),
                    None if k.get("frame") is None else int(k["frame"]),
                )
                for k in data.get("key_images", [])
            )
            signed = data.get("signed_at")
            title = data.get("title") or list(_code_tuple(DIAGNOSTIC_IMAGING_REPORT))
            document = data.get("document")
            return cls(
                sections=sections,
                key_images=keys,
                status=ReportStatus(data.get("status", "preliminary")),
                reader=data.get("reader"),
                organization=data.get("organization"),
                signed_at=dt.datetime.fromisoformat(signed) if signed else None,
                predecessors=tuple(_ref_from(p) for p in data.get("predecessors", [])),
                title=Code(str(title[0]), str(title[1]), str(title[2])),
                language=str(data.get("language", "en")),
                document=_ref_from(document) if document else None,
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ReportError(f"The saved report is not valid: {exc!r}.") from exc


def _clean(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


def _code_tuple(code: Code) -> tuple[str, str, str]:
    return code.value, code.scheme, code.meaning


def _ref_dict(ref: DocumentRef) -> dict[str, str]:
    return {
        "study_uid": ref.study_uid,
        "series_uid": ref.series_uid,
        "sop_instance_uid": ref.sop_instance_uid,
        "sop_class_uid": ref.sop_class_uid,
    }


def _ref_from(data: dict[str, Any]) -> DocumentRef:
    return DocumentRef(
        str(data["study_uid"]),
        str(data["series_uid"]),
        str(data["sop_instance_uid"]),
        str(data.get("sop_class_uid", "1.2.840.10008.5.1.4.1.1.88.11")),
    )


# --- sign-off ---------------------------------------------------------------------------------


def sign(
    report: Report,
    reader: str,
    *,
    organization: str | None = None,
    at: dt.datetime | None = None,
) -> Report:
    """The final version of ``report``, signed by ``reader``.

    A report that was already stored as an SR (``report.document`` set, e.g. a preliminary
    report sent to the PACS) is never changed in place: the signed version references it in
    its predecessors, and the SR writer gives it a new SOP Instance UID.

    Raises:
        ReportError: ``reader`` is blank, or the report has no text.
    """
    if not reader.strip():
        raise ReportError("A final report needs the reader's name; none was given.")
    if report.is_empty:
        raise ReportError("The report is empty: write at least one section before signing.")
    predecessors = report.predecessors
    if report.document is not None and report.document not in predecessors:
        predecessors = (*predecessors, report.document)
    return replace(
        report,
        status=ReportStatus.FINAL,
        reader=reader.strip(),
        organization=organization if organization is not None else report.organization,
        signed_at=at or dt.datetime.now().astimezone(),
        predecessors=predecessors,
        document=None,
    )


def make_addendum(original: Report, text: str) -> Report:
    """A new report holding the full ``original`` plus an Addendum section with ``text``.

    ``original`` must have been read from an SR (its ``document`` is the predecessor). The
    result is preliminary until :func:`sign` is applied.

    Raises:
        ReportError: ``text`` is blank, or ``original`` has no stored document to reference.
    """
    if not text.strip():
        raise ReportError("The addendum is empty: write its text first.")
    if original.document is None:
        raise ReportError(
            "An addendum must reference the report it adds to, but this report was not read "
            "from a stored SR document."
        )
    return replace(
        original,
        sections=(*original.written_sections(), Section(SectionKind.ADDENDUM, text)),
        status=ReportStatus.PRELIMINARY,
        signed_at=None,
        predecessors=(original.document,),
        document=None,
    )
